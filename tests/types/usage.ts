// Compile-only usage of the public types, the way an app writes it. `tsc --noEmit -p tests/types`
// must pass; each `@ts-expect-error` line must stay an error (a missing error fails the check).
import { useChat } from "@ai-sdk/react";
import { lastAssistantMessageIsCompleteWithApprovalResponses } from "ai";
import type { ChatTransport, UIMessage, UIMessageChunk } from "ai";
import {
  TriggerChatTransport,
  SUB_AGENT_DATA_TYPE,
  createChatTransport,
  createSubAgentMessages,
  init,
  isTriggerChatError,
  type AccessTokenParams,
  type ChatConnectionState,
  type ChatActionOptions,
  type ChatActionSettlement,
  type ChatBaseURLResolver,
  type ChatFetchOverride,
  type ChatSessionPersistedState,
  type ChatSessionStore,
  type ChatTransportEndpoint,
  type ChatTransportEndpointContext,
  type ChatTransportEvent,
  type ChatTransportSendSource,
  type StartSessionParams,
  type StartSessionResult,
  type SubAgentChunkBatch,
  type SubAgentDataChunk,
  type TriggerChatError,
  type TriggerChatTransportOptions,
} from "trigger-chat-wasm";
import {
  seedTranscriptCursor,
  useChatActions,
  useLoadTranscript,
  useMultiTabChat,
  useConnectionState,
  useDetachOnLeave,
  usePendingMessages,
  useSubAgentMessages,
  useTriggerChatTransport,
  type LoadTranscriptResult,
  type PendingMessage,
} from "trigger-chat-wasm/react";

// A typed UI message, as `chat.withUIMessage<...>()` agents declare it.
type MyMessage = UIMessage<
  { model?: string },
  { status: { text: string } },
  { getWeather: { input: { city: string }; output: { tempC: number } } }
>;

type ClientData = { userId: string; plan: "free" | "pro" };

// --- the customer endpoints, typed with the exported parameter types ------------------------
async function startChatSession(params: StartSessionParams<ClientData>): Promise<StartSessionResult> {
  const res = await fetch(`/api/chat/${encodeURIComponent(params.chatId)}/start`, {
    method: "POST",
    body: JSON.stringify({ taskId: params.taskId, clientData: params.clientData }),
  });
  return (await res.json()) as StartSessionResult;
}

async function mintToken({ chatId }: AccessTokenParams): Promise<string> {
  const res = await fetch(`/api/chat/${encodeURIComponent(chatId)}/token`, { method: "POST" });
  return ((await res.json()) as { publicAccessToken: string }).publicAccessToken;
}

// --- events: an exhaustive switch over the union ----------------------------------------------
function describe(event: ChatTransportEvent): string {
  switch (event.type) {
    case "message-sent":
      return `${event.source} sent in ${event.durationMs} ms (${event.bodyBytes ?? 0} bytes)`;
    case "message-send-failed":
      return `${event.source} failed: ${event.error.message} ${event.status ?? ""}`;
    case "stream-connected":
      return event.resumed ? `resumed from ${event.lastEventId ?? "start"}` : "connected";
    case "first-chunk":
      return `first ${event.chunkType ?? "chunk"} after ${event.sinceSendMs ?? 0} ms`;
    case "turn-completed":
      return `turn done (${event.sessionInEventId ?? "?"})`;
    case "stream-error":
      return `stream error ${event.error.message}`;
    case "session-closed":
      return `closed (${event.reason ?? "no reason"}) via ${event.source}`;
    case "run-pending-version":
      return `waiting for deployment (${event.source})`;
    case "storage-error":
      return `storage: ${event.error.message}`;
    case "connection-state":
      return `${event.previous} -> ${event.state} (${event.pendingSends} waiting)`;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

const source: ChatTransportSendSource = "steer";
const endpoint: ChatTransportEndpoint = "out";
const resolveBase: ChatBaseURLResolver = (ctx: ChatTransportEndpointContext) =>
  ctx.endpoint === "out" ? "https://stream.example" : "https://api.example";
const tracingFetch: ChatFetchOverride = (url, init, ctx) => {
  const headers = new Headers(init.headers);
  headers.set("x-endpoint", ctx.endpoint);
  return fetch(url, { ...init, headers });
};

// --- a custom persistence object (e.g. IndexedDB-backed cache, here a Map) ---------------------
const saved = new Map<string, ChatSessionPersistedState>();
const store: ChatSessionStore = {
  load: (chatId) => saved.get(chatId),
  save: (chatId, state) => {
    saved.set(chatId, { ...state, lastEventId: state.lastEventId });
  },
  remove: (chatId) => {
    saved.delete(chatId);
  },
};

// --- vanilla construction --------------------------------------------------------------------
const options: TriggerChatTransportOptions<ClientData> = {
  task: "ai-chat",
  baseURL: resolveBase,
  startSession: startChatSession,
  accessToken: mintToken,
  clientData: { userId: "u1", plan: "pro" },
  onEvent: (event) => console.log(describe(event)),
  onSessionChange: (chatId, session) => {
    if (session === null) saved.delete(chatId);
    else saved.set(chatId, session);
  },
  fetch: tracingFetch,
  headers: { "x-app": "demo" },
  streamTimeoutSeconds: 60,
  stallTimeoutMs: 30_000,
  multiTab: true,
  multiTabSend: "queue",
  persistence: store,
};
const vanilla = new TriggerChatTransport<MyMessage, ClientData>(options);
const asChatTransport: ChatTransport<MyMessage> = vanilla;
const inferred = new TriggerChatTransport({
  task: "ai-chat",
  accessToken: () => "pat",
  clientData: { tenant: "acme" },
  persistence: { namespace: "my-app" },
});
inferred.setClientData({ tenant: "globex" });
// headStart (a chat's first turn through the app's handler) and watch (a read-only viewer).
const fastStart = new TriggerChatTransport({
  task: "ai-chat",
  accessToken: mintToken,
  headStart: "/api/chat",
  fetch: (url, init, ctx) => (ctx.endpoint === "head-start" ? fetch(url, init) : tracingFetch(url, init, ctx)),
});
const viewer = new TriggerChatTransport({ task: "ai-chat", accessToken: mintToken, watch: true });
void [fastStart, viewer];
// @ts-expect-error headStart is the handler's URL
new TriggerChatTransport({ task: "ai-chat", accessToken: mintToken, headStart: true });
// @ts-expect-error clientData keeps the shape the transport was created with
inferred.setClientData({ tenant: 42 });
const factory = createChatTransport({ task: "ai-chat", startSession: startChatSession, persistence: "none" });
factory.setStartSession(startChatSession);
// @ts-expect-error persistence is "localStorage" | "none" | {namespace} | {load, save, remove}
new TriggerChatTransport({ task: "ai-chat", accessToken: mintToken, persistence: "sessionStorage" });
// @ts-expect-error multiTabSend is "reject" | "queue"
new TriggerChatTransport({ task: "ai-chat", accessToken: mintToken, multiTab: true, multiTabSend: "wait" });
// @ts-expect-error `task` is required
new TriggerChatTransport({ accessToken: mintToken });

async function vanillaFlow(): Promise<void> {
  await init();
  await init(new URL("https://cdn.example/trigger_chat_wasm_bg.wasm"));
  const settled: ChatActionOptions = {
    metadata: { source: "toolbar" },
    onSettled: (s: ChatActionSettlement) => console.log(s.inputSeq, s.sessionInEventId, s.lastEventId),
  };
  const stream: ReadableStream<UIMessageChunk> = await vanilla.sendAction("chat-1", { type: "undo" }, settled);
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    if (r.value.type === "text-delta") console.log(r.value.delta);
  }
  const resumed = await vanilla.reconnectToStream({ chatId: "chat-1", stopOnAbort: false });
  if (resumed) await resumed.cancel();
  const stopped: boolean = await vanilla.stopGeneration("chat-1");
  const steered: boolean = await vanilla.sendPendingMessage("chat-1", {
    id: "m1",
    role: "user",
    parts: [{ type: "text", text: "also include Rome" }],
  });
  const session: ChatSessionPersistedState | undefined = vanilla.getSession("chat-1");
  if (session) vanilla.setSession("chat-2", { ...session, isStreaming: false });
  vanilla.seedResumeCursor("chat-1", "42");
  const status: "open" | "closed" = vanilla.sessionStatus("chat-1");
  const reason: string | undefined = vanilla.sessionClosedReason("chat-1");
  const started: ChatSessionPersistedState | undefined = await vanilla.start("chat-3");
  await vanilla.preload("chat-4");
  vanilla.removeSession("chat-4");
  const readOnly: boolean = vanilla.isReadOnly("chat-1") || vanilla.hasClaim("chat-1");
  const sending: string | null = vanilla.sendingMessageId("chat-1");
  console.log(sending);
  const onReadOnly = (chatId: string, isReadOnly: boolean) => console.log(chatId, isReadOnly);
  vanilla.addReadOnlyListener(onReadOnly);
  vanilla.removeReadOnlyListener(onReadOnly);
  const onMessages = (chatId: string, messages: MyMessage[]) => console.log(chatId, messages.length);
  vanilla.addMessagesListener(onMessages);
  vanilla.removeMessagesListener(onMessages);
  vanilla.broadcastMessages("chat-1", []);
  const replay: true = vanilla.resumeStreamIsReplay;
  console.log(stopped, steered, status, reason, started, readOnly, replay, source, endpoint, asChatTransport);
  vanilla.setOnEvent(undefined);
  vanilla.setFetch(undefined);
  vanilla.dispose();
  vanilla.close();
  try {
    await vanilla.sendMessages({
      trigger: "submit-message",
      chatId: "chat-1",
      messageId: undefined,
      messages: [],
      abortSignal: undefined,
    });
  } catch (error) {
    if (isTriggerChatError(error)) {
      const typed: TriggerChatError = error;
      if (typed.code === "session_closed" || typed.code === "read_only_tab") console.log(typed.status);
      // @ts-expect-error codes are a closed set
      if (typed.code === "closed") console.log("never");
    }
  }
}

// --- React ------------------------------------------------------------------------------------
export function ChatPage({ chatId, initial }: { chatId: string; initial: MyMessage[] }) {
  const transport = useTriggerChatTransport<MyMessage, ClientData>({
    task: "ai-chat",
    baseURL: "https://api.example",
    startSession: startChatSession,
    accessToken: mintToken,
    clientData: { userId: "u1", plan: "free" },
    onEvent: (event) => {
      if (event.type === "session-closed") console.log(event.reason);
    },
    multiTab: true,
  });
  const subAgents = useSubAgentMessages({ throttleMs: 50 });
  const { messages, setMessages, sendMessage, stop, status, error, addToolApprovalResponse } = useChat<MyMessage>({
    id: chatId,
    onData: subAgents.onData,
    messages: initial,
    transport,
    resume: initial.length > 0,
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  });
  const { isReadOnly } = useMultiTabChat(transport, chatId, messages, setMessages, { releaseGraceMs: 2000 });
  // No transport yet (created in an effect, or after sign-in): inert.
  const inert: boolean = useMultiTabChat(null, chatId, messages, setMessages).isReadOnly;
  if (inert) console.log("never read-only without a transport");
  const { sendAction } = useChatActions({ sendMessage });
  const steering = usePendingMessages({ transport, chatId, status, messages, setMessages, sendMessage, metadata: { model: "m" } });
  const waiting: PendingMessage[] = steering.pending.filter((p) => p.mode === "queued" && !p.injected);
  const onSteer = (text: string) => (status === "streaming" ? steering.steer(text) : steering.queue(text));
  // @ts-expect-error steer takes the text
  steering.steer({ text: "x" });
  void [waiting, onSteer, steering.promoteToSteering];
  const loadTranscript = async ({ chatId, limit }: { chatId: string; limit?: number }): Promise<LoadTranscriptResult<MyMessage>> => ({
    messages: initial.slice(-(limit ?? 50)),
    cursors: { lastOutEventId: chatId.length > 0 ? "41" : undefined },
  });
  const history = useLoadTranscript(chatId, loadTranscript, { transport, limit: 50 });
  const older: MyMessage[] = history.isLoading ? [] : history.messages;
  const link: ChatConnectionState = useConnectionState(transport, chatId);
  const offlineWithSends: boolean = link.state === "offline" && link.pendingSends > 0;
  // @ts-expect-error not a state
  const unknownState: ChatConnectionState["state"] = "disconnected";
  const fromMethod: ChatConnectionState = transport.connectionState(chatId);
  const onLink = (id: string, state: ChatConnectionState) => console.log(id, state.state);
  transport.addConnectionListener(onLink);
  transport.removeConnectionListener(onLink);
  void [offlineWithSends, unknownState, fromMethod, useConnectionState(null, undefined)];
  const detached: void = useDetachOnLeave(transport, chatId);
  useDetachOnLeave(null, undefined);
  // @ts-expect-error the chat id is a string
  useDetachOnLeave(transport, 42);
  void detached;
  const seeded: boolean = seedTranscriptCursor(transport, chatId, { lastOutEventId: history.nextCursor });
  void [older, seeded, history.error?.message];

  for (const message of messages) {
    for (const part of message.parts) {
      if (part.type === "tool-getWeather" && part.state === "approval-requested") {
        void addToolApprovalResponse({ id: part.approval.id, approved: true });
      }
      if (part.type === "tool-getWeather" && part.state === "output-available") {
        const temperature: number = part.output.tempC;
        console.log(temperature);
      }
      if (part.type === "data-status") console.log(part.data.text);
      if (steering.isInjectionPoint(part)) {
        for (const injected of steering.getInjectedMessages(part)) console.log(injected.id, injected.text);
        const ids: string[] = steering.getInjectedMessageIds(part);
        void ids;
      }
      if (part.type === "tool-getWeather") {
        const live: UIMessage | undefined = subAgents.get(part.toolCallId);
        console.log(live?.parts.length);
        // @ts-expect-error get takes the parent tool call's id, a string
        subAgents.get(1);
      }
    }
  }

  const onStop = () => {
    void stop();
    void transport.stopGeneration(chatId);
  };
  const onSend = (text: string) => {
    if (!isReadOnly && status === "ready") void sendMessage({ text });
  };
  const onUndo = () => sendAction({ type: "undo" }).then(() => undefined);
  if (error && isTriggerChatError(error) && error.code === "session_closed") return null;
  void vanillaFlow;
  return { onStop, onSend, onUndo };
}

// Sub-agent messages without React.
const subAgentStore = createSubAgentMessages({ throttleMs: 0, onChange: () => console.log("changed") });
const batch: SubAgentChunkBatch = { toolCallId: "call_1", seq: 0, chunks: [{ type: "start", messageId: "m" }] };
const forwarded: SubAgentDataChunk = { type: SUB_AGENT_DATA_TYPE, data: batch, transient: true };
subAgentStore.onData(forwarded);
const rebuilt: UIMessage | undefined = subAgentStore.get("call_1");
void rebuilt;
subAgentStore.dispose();
// @ts-expect-error the data chunk's type is the literal "data-subagent"
const wrongType: SubAgentDataChunk = { type: "data-other", data: batch, transient: true };
void wrongType;
