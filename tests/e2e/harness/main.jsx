// Test harness for trigger-chat-wasm/react under React StrictMode (development build). The test
// drives it through `window.harness`; nothing here is part of the demo.
import { Chat, useChat } from "@ai-sdk/react";
import { Activity, StrictMode, Suspense, memo, startTransition, useEffect, useLayoutEffect } from "react";
import { createRoot } from "react-dom/client";
import { TriggerChatTransport } from "trigger-chat-wasm";
import {
  // The SDK's React entry exports these too (undeclared in its types): JavaScript imports them.
  collectInjectedMessageIds,
  injectedMessageIdsOf,
  injectedMessagesOf,
  isInjectionPart,
  useChatActions,
  useDetachOnLeave,
  useLoadTranscript,
  useMultiTabChat,
  usePendingMessages,
  useSubAgentMessages,
  useTriggerChatTransport,
} from "trigger-chat-wasm/react";

// Count dispose() per instance (methods are bound from the prototype at construction).
const disposed = new Map();
const realDispose = TriggerChatTransport.prototype.dispose;
TriggerChatTransport.prototype.dispose = function dispose() {
  disposed.set(this, (disposed.get(this) ?? 0) + 1);
  return realDispose.call(this);
};

const post = async (path) =>
  (await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })).json();

const state = { transports: new Set(), current: null, renders: 0, events: [], calls: [], subAgents: [], subAgentSeen: {}, memoCards: {} };

const textOf = (message) => (message?.parts ?? []).map((p) => (p.type === "text" ? p.text : "")).join("");

function Probe({ chatId, clientData, sendInLayoutEffect, onEventTag, tag, headStart, resume = false, suspend = false, bareFetch = false }) {
  state.renders++;
  const transport = useTriggerChatTransport({
    task: "ai-chat",
    baseURL: location.origin,
    // New functions every render, tagged by the `tag` prop: the transport must call the latest.
    startSession: ({ chatId }) => {
      state.calls.push(`${tag}:startSession`);
      return post(`/api/chat/${encodeURIComponent(chatId)}/start`);
    },
    accessToken: async ({ chatId }) => {
      state.calls.push(`${tag}:accessToken`);
      return (await post(`/api/chat/${encodeURIComponent(chatId)}/token`)).publicAccessToken;
    },
    // `bareFetch`: the browser's own, as apps pass it (it throws when called as a method).
    fetch: bareFetch
      ? window.fetch
      : (url, init) => {
          state.calls.push(`${tag}:fetch`);
          // As an override written for the SDK's transport may: it only ever saw absolute URLs
          // (`new URL` throws on a relative one, such as a relative `headStart`).
          return fetch(new URL(url), init);
        },
    onSessionChange: () => state.calls.push(`${tag}:onSessionChange`),
    clientData,
    // A new function every render, tagged by the prop: the transport must call the latest one.
    onEvent: (event) => state.events.push(`${onEventTag}:${event.type}`),
    headStart,
  });
  state.transports.add(transport);
  useEffect(() => {
    state.current = transport; // the instance React committed
  }, [transport]);
  const subAgents = useSubAgentMessages({ throttleMs: 50 });
  const { messages, setMessages, sendMessage, status } = useChat({ id: chatId, transport, resume, onData: subAgents.onData });
  const { sendAction } = useChatActions({ sendMessage });
  // A `sendMessage` wrapper that throws at once (the app's own validation, say).
  const throwing = useChatActions({
    sendMessage: () => {
      state.throwingCalls = (state.throwingCalls ?? 0) + 1;
      throw new Error("refused by the app");
    },
  });
  const pending = usePendingMessages({ transport, chatId, status, messages, setMessages, sendMessage });
  state.chat = { messages, status, sendMessage, sendAction, throwingAction: throwing.sendAction, pending };
  // What the screen shows: the callbacks of the render React committed (a render in a transition
  // that never commits leaves them as they were).
  useLayoutEffect(() => {
    state.committed = { chatId, sendAction, steer: pending.steer, queue: pending.queue };
  });
  // What a tool card would show for each sub-agent call: live while it runs, then the output.
  state.subAgents = messages.flatMap((m) =>
    m.parts
      .filter((p) => p.type === "tool-research")
      .map((p) => ({
        toolCallId: p.toolCallId,
        state: p.state,
        live: textOf(subAgents.get(p.toolCallId)),
        output: textOf(p.output),
      })),
  );
  for (const card of state.subAgents) {
    const seen = (state.subAgentSeen[card.toolCallId] ??= []);
    if (card.live && seen.at(-1) !== card.live) seen.push(card.live);
  }

  // A send made right after the render that changed an option, before passive effects
  // (useEffect) run: it must already see the new option.
  useLayoutEffect(() => {
    if (sendInLayoutEffect) void sendMessage({ text: sendInLayoutEffect });
  }, [sendInLayoutEffect]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <>
      {state.subAgents.map((card) => (
        <MemoCard key={card.toolCallId} subAgents={subAgents} toolCallId={card.toolCallId} />
      ))}
      {suspend && <Suspender />}
    </>
  );
}

// A tool card as apps write one: memoised on its props (the store and the call id, neither of
// which a sub-agent chunk changes in the message), so it renders again only if the store object
// is a new one.
const MemoCard = memo(function MemoCard({ subAgents, toolCallId }) {
  state.memoCards[toolCallId] = textOf(subAgents.get(toolCallId));
  return null;
});

// useLoadTranscript with a scripted loader: "history of <chatId>", cursor 41, or a failure.
const transcriptState = { loads: [], result: null, transport: null };
function TranscriptProbe({ chatId, fail }) {
  const transport = useTriggerChatTransport({
    task: "ai-chat",
    baseURL: location.origin,
    persistence: "none",
    startSession: ({ chatId }) => post(`/api/chat/${encodeURIComponent(chatId)}/start`),
  });
  transcriptState.transport = transport;
  const load = async ({ chatId, limit }) => {
    transcriptState.loads.push({ chatId, limit });
    // Slow enough that a test sees it loading, however busy the machine (CI saw 30 ms pass).
    await new Promise((r) => setTimeout(r, 300));
    if (fail) throw new Error(`no transcript for ${chatId}`);
    const text = `history of ${chatId}`;
    return { messages: [{ id: "h1", role: "user", parts: [{ type: "text", text }] }], cursors: { lastOutEventId: "41" }, nextCursor: "page-2" };
  };
  transcriptState.result = useLoadTranscript(chatId, load, { transport, limit: 20 });
  return null;
}

// A transport shared by the chat panes below it (created once near the top of an app), and a
// pane that shows one chat: `useDetachOnLeave` when `detach` is set.
const shared = { transport: null, pane: null, layoutCleanups: 0 };
// Suspends forever while rendered: its Suspense boundary hides the content already shown (layout
// effects are cleaned up, passive ones are not) until it is gone.
const never = new Promise(() => {});
function Suspender() {
  throw never;
}
function SharedShell({ chatId, showPane = true, detach = false, suspend = false }) {
  const transport = useTriggerChatTransport({
    task: "ai-chat",
    baseURL: location.origin,
    startSession: ({ chatId }) => post(`/api/chat/${encodeURIComponent(chatId)}/start`),
    accessToken: async ({ chatId }) => (await post(`/api/chat/${encodeURIComponent(chatId)}/token`)).publicAccessToken,
  });
  shared.transport = transport;
  if (!showPane) return null;
  return (
    <Suspense fallback={null}>
      <Pane transport={transport} chatId={chatId} detach={detach} />
      {suspend && <Suspender />}
    </Suspense>
  );
}
function Pane({ transport, chatId, detach }) {
  const { messages, sendMessage, status, stop } = useChat({ id: chatId, transport, resume: true });
  useDetachOnLeave(detach ? transport : null, chatId);
  shared.pane = { chatId, messages, sendMessage, status, stop };
  // How often React cleaned up the pane's layout effects (hidden by Suspense, unmounted, ...).
  useLayoutEffect(() => () => void shared.layoutCleanups++, []);
  return null;
}

// Two "tabs" in one page (each transport has its own tab id and BroadcastChannel; Web Locks are
// the origin's), both with multiTabSend: "queue" and useMultiTabChat, as two browser tabs are.
const tabs = { a: null, b: null, duplicates: [] };
function TabPane({ name, chatId, arraySetter, noSync = false, noChatId = false, onFinish }) {
  const transport = useTriggerChatTransport({
    task: "ai-chat",
    baseURL: location.origin,
    multiTab: true,
    multiTabSend: "queue",
    startSession: ({ chatId }) => post(`/api/chat/${encodeURIComponent(chatId)}/start`),
    accessToken: async ({ chatId }) => (await post(`/api/chat/${encodeURIComponent(chatId)}/token`)).publicAccessToken,
  });
  // Renders at most every 100 ms, as apps often set it: what a tab has rendered lags its chat.
  const { messages, setMessages, sendMessage, status } = useChat({ id: chatId, transport, experimental_throttle: 100, onFinish });
  // `arraySetter`: a setter that throws on an updater (it spreads its argument).
  const set = arraySetter ? (list) => setMessages([...list]) : setMessages;
  // `noSync`: the app stops syncing this pane (a transport it passes as `null`, as while one is
  // being set up): the hook is inert, and the pane is not read-only.
  // `noChatId`: the app has no chat id for the hook yet (useChat made its own): inert too.
  const { isReadOnly } = useMultiTabChat(noSync ? null : transport, noChatId ? undefined : chatId, messages, set);
  // Every state either tab ever rendered with one message twice.
  const ids = messages.map((m) => m.id);
  if (new Set(ids).size !== ids.length) tabs.duplicates.push(`${name}: ${ids.join(" ")}`);
  tabs[name] = { messages, sendMessage, status, isReadOnly, transport, chatId };
  return null;
}
function TwoTabs({ chatId, arraySetter = "", dropB = false, noSyncB = false, noChatIdB = false, leaveAOnFinish = false, dropA = false }) {
  // `dropB`: B's pane (and the transport its hook owns) unmounts, as on a client-side navigation.
  // `leaveAOnFinish`: A's pane leaves as its reply finishes (an app that navigates in
  // `onFinish`), before it has rendered the reply's last chunks.
  const onFinish = leaveAOnFinish ? () => void ((props = { ...props, dropA: true }), render()) : undefined;
  return (
    <>
      {!dropA && <TabPane name="a" chatId={chatId} arraySetter={arraySetter.includes("a")} onFinish={onFinish} />}
      {!dropB && <TabPane name="b" chatId={chatId} arraySetter={arraySetter.includes("b")} noSync={noSyncB} noChatId={noChatIdB} />}
    </>
  );
}

let root = null;
let props = null;
let View = Probe;
function render() {
  // `strict: false`: as a production build runs (no double effects).
  const view = hideable(<View {...props} />);
  root.render(props.strict === false ? view : <StrictMode>{view}</StrictMode>);
}
// A `Chat` that lives outside the component (an app's store, or a chat kept across routes) with
// a transport made once: useChat({ chat }) neither stops its reply when the view is hidden nor
// when it unmounts.
let external = null;
function ExternalChatView({ chatId }) {
  if (external?.chatId !== chatId) {
    const transport = new TriggerChatTransport({
      task: "ai-chat",
      baseURL: location.origin,
      startSession: ({ chatId: id }) => post(`/api/chat/${encodeURIComponent(id)}/start`),
      accessToken: async ({ chatId: id }) => (await post(`/api/chat/${encodeURIComponent(id)}/token`)).publicAccessToken,
    });
    external = { chatId, transport, chat: new Chat({ id: chatId, transport }) };
  }
  const { transport, chat } = external;
  const { messages, setMessages, sendMessage, status } = useChat({ chat });
  const pending = usePendingMessages({ transport, chatId, status, messages, setMessages, sendMessage });
  state.chat = { messages, status, sendMessage, pending };
  return null;
}

// With a `hidden` prop, the view sits in an <Activity> (how Next.js keeps a route it left):
// hidden, its effects are cleaned up and its state kept; shown again, its effects run again.
function hideable(view) {
  return "hidden" in props ? <Activity mode={props.hidden ? "hidden" : "visible"}>{view}</Activity> : view;
}

window.harness = {
  injectionHelpers(messages) {
    const parts = messages.flatMap((m) => m.parts);
    return {
      isInjectionPart: parts.map(isInjectionPart),
      ids: parts.map(injectedMessageIdsOf),
      messages: parts.map(injectedMessagesOf),
      all: collectInjectedMessageIds(messages),
    };
  },
  mountTabs(chatId, arraySetter = "", extra = {}) {
    root = createRoot(document.getElementById("root"));
    View = TwoTabs;
    props = { chatId, arraySetter, ...extra };
    render();
  },
  tab(name) {
    const t = tabs[name];
    if (name === "a" && props?.dropA) return { gone: true };
    return {
      status: t.status,
      isReadOnly: t.isReadOnly,
      sending: t.transport.sendingMessageId(t.chatId),
      texts: t.messages.map((m) => `${m.role}: ${textOf(m)}`),
    };
  },
  tabSend: (name, text) => void tabs[name].sendMessage({ text }),
  tabDuplicates: () => tabs.duplicates.slice(),
  dropTabB: () => {
    props = { ...props, dropB: true };
    render();
  },
  stopSyncingTabB: () => {
    props = { ...props, noSyncB: true };
    render();
  },
  mountShared(chatId, extra = {}) {
    root = createRoot(document.getElementById("root"));
    View = SharedShell;
    props = { chatId, ...extra };
    render();
  },
  pane() {
    const p = shared.pane;
    return { chatId: p.chatId, status: p.status, texts: p.messages.map((m) => `${m.role}: ${textOf(m)}`) };
  },
  paneSend: (text) => shared.pane.sendMessage({ text }),
  paneStop: () => shared.pane.stop(),
  layoutCleanups: () => shared.layoutCleanups,
  mount(chatId, extra = {}) {
    root = createRoot(document.getElementById("root"));
    View = Probe;
    props = { chatId, clientData: { v: 1 }, sendInLayoutEffect: undefined, onEventTag: "first", tag: "first", ...extra };
    render();
  },
  update(patch) {
    props = { ...props, ...patch };
    render();
  },
  // A render in a transition (as a router's navigation is): with `suspend: true` it never
  // commits, and the screen keeps the previous one.
  updateInTransition(patch) {
    props = { ...props, ...patch };
    startTransition(() => render());
  },
  committed: () => ({ chatId: state.committed?.chatId }),
  committedAction: (action) => state.committed.sendAction(action),
  committedQueue: (text) => state.committed.queue(text),
  unmount() {
    root.unmount();
    root = null;
  },
  mountExternal(chatId, extra = {}) {
    root = createRoot(document.getElementById("root"));
    View = ExternalChatView;
    props = { chatId, ...extra };
    render();
  },
  mountTranscript(chatId, fail = false, extra = {}) {
    root = createRoot(document.getElementById("root"));
    props = { chatId, fail, ...extra };
    root.render(<StrictMode>{hideable(<TranscriptProbe {...props} />)}</StrictMode>);
  },
  updateTranscript(patch) {
    props = { ...props, ...patch };
    root.render(<StrictMode>{hideable(<TranscriptProbe {...props} />)}</StrictMode>);
  },
  transcript() {
    const r = transcriptState.result;
    return {
      texts: r.messages.map((m) => m.parts.map((p) => p.text).join("")),
      isLoading: r.isLoading,
      error: r.error?.message,
      nextCursor: r.nextCursor,
      loads: transcriptState.loads.slice(),
    };
  },
  async transcriptSession(chatId) {
    await transcriptState.transport.start(chatId);
    return transcriptState.transport.getSession(chatId);
  },
  send(text) {
    return state.chat.sendMessage({ text });
  },
  action(action) {
    return state.chat.sendAction(action);
  },
  /** How a sendAction whose sendMessage throws fails ("threw" or "rejected"), and whether that
   * sendMessage was called before sendAction returned (as the JS hook's async function does). */
  throwingAction() {
    const before = state.throwingCalls ?? 0;
    try {
      const result = state.chat.throwingAction({ type: "x" });
      const when = (state.throwingCalls ?? 0) > before ? "called at once" : "called later";
      return result.then(
        () => `${when}, resolved`,
        (e) => `${when}, rejected: ${e.message}`,
      );
    } catch (e) {
      return `threw: ${e.message}`;
    }
  },
  texts() {
    const { pending } = state.chat;
    const partText = (p) =>
      p.type === "text"
        ? p.text
        : pending.isInjectionPoint(p)
          ? `[injected: ${pending.getInjectedMessages(p).map((m) => m.text).join("; ")}]`
          : "";
    return state.chat.messages.map((m) => `${m.role}: ${m.parts.map(partText).join("")}`);
  },
  steer: (text) => state.chat.pending.steer(text),
  queue: (text) => state.chat.pending.queue(text),
  pending: () => state.chat.pending.pending,
  status: () => state.chat.status,
  subAgents: () => ({ cards: state.subAgents, seen: state.subAgentSeen, memo: state.memoCards }),
  events: () => state.events.slice(),
  calls: () => state.calls.slice(),
  info() {
    return {
      transports: state.transports.size,
      renders: state.renders,
      currentDisposed: disposed.get(state.current) ?? 0,
      totalDisposed: [...disposed.values()].reduce((a, b) => a + b, 0),
    };
  },
};
