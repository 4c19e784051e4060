// Type declarations for trigger-chat-wasm/react (hand-written). Mirrors the hooks of
// `@trigger.dev/sdk/chat/react` that apply to a browser transport.

import type { ChatRequestOptions, UIMessage } from "ai";
import type {
  ChatConnectionState,
  InferChatClientData,
  InferChatUIMessage,
  SubAgentMessages,
  SubAgentMessagesOptions,
  TriggerChatTransport,
  TriggerChatTransportOptions,
} from "./index.js";

export type {
  ChatConnectionState,
  ChatTransportEvent,
  InferChatUIMessage,
  ChatTransportSendSource,
  TriggerChatTransportOptions,
} from "./index.js";

/** A Trigger.dev task type (`typeof myChat`), told apart from a UI message type by its `trigger`. */
type AnyTaskLike = { id: string; trigger: (...args: any[]) => any };

/** The UI message type the hook's type parameter stands for. */
type HookMessage<T> = T extends AnyTaskLike ? InferChatUIMessage<T> : T extends UIMessage ? T : UIMessage;

/** The `clientData` type the hook's type parameter stands for (a plain record when it says none). */
type HookClientData<T> = T extends AnyTaskLike
  ? InferChatClientData<T> extends Record<string, unknown>
    ? InferChatClientData<T>
    : Record<string, unknown>
  : Record<string, unknown>;

/** The `task` option: the task's own id when the type parameter is a task type. */
type HookTaskId<T> = T extends { id: infer Id extends string; trigger: (...args: any[]) => any } ? Id : string;

/**
 * Options of `useTriggerChatTransport`: the transport's options. `onSessionChange`, `onEvent`,
 * `clientData`, `accessToken`, `startSession` and `fetch` are live (a new value is used by the
 * next send once React has committed the render that gave it); the others are read once, when the
 * transport is created (remount with a new `key` to change them).
 *
 * @typeParam T - the agent's task type (`typeof myChat`, as with `@trigger.dev/sdk`: `task` must
 *   then be its id, and `clientData` has its type), or your UI message type.
 * @typeParam TClientData - the shape of `clientData` (from the task type when `T` is one).
 */
export type UseTriggerChatTransportOptions<
  T = UIMessage,
  TClientData extends Record<string, unknown> = HookClientData<T>,
> = Omit<TriggerChatTransportOptions<TClientData>, "task"> & {
  /** The agent's task id; checked against the task type when `T` is one. */
  task: HookTaskId<T>;
};

/**
 * Creates one `TriggerChatTransport` per component instance and keeps it for the component's
 * lifetime. It is disposed when the component really unmounts (not by React StrictMode's
 * simulated unmount). A reply streaming when the component unmounts is detached, not stopped:
 * the agent finishes it and the chat's next mount resumes it (`useChat({ resume: true })`). For a
 * `useChat` that switches chat ids without unmounting, add `useDetachOnLeave`.
 *
 * ```tsx
 * import type { myChat } from "@/trigger/chat"; // a type-only import: nothing reaches the bundle
 * type Msg = InferChatUIMessage<typeof myChat>;
 *
 * const transport = useTriggerChatTransport<typeof myChat>({
 *   task: "my-chat",                      // checked against the task's id
 *   startSession: ({ chatId, clientData }) => startChatSession(chatId, clientData),
 *   accessToken: ({ chatId }) => mintChatToken(chatId),
 *   clientData: { userId: user.id },      // live: the next send uses the new value
 * });
 * const { messages, sendMessage } = useChat<Msg>({ id: chatId, transport });
 * ```
 *
 * Without the agent's type at hand, pass your UI message type and the `clientData` shape
 * instead: `useTriggerChatTransport<MyMessage, { userId: string }>`.
 */
export declare function useTriggerChatTransport<
  T = UIMessage,
  TClientData extends Record<string, unknown> = HookClientData<T>,
>(options: UseTriggerChatTransportOptions<T, TClientData>): TriggerChatTransport<HookMessage<T>, TClientData>;

/** Options of `useMultiTabChat`. */
export type UseMultiTabChatOptions = {
  /**
   * How long (ms) a tab keeps broadcasting after it released its claim, so the final renders of a
   * reply reach the other tabs. @default 1500
   */
  releaseGraceMs?: number;
  /** Minimum interval (ms) between two broadcasts while a reply streams. @default 50 */
  throttleMs?: number;
};

/**
 * Keeps the tabs of one chat in sync. Requires `multiTab: true` on the transport; without it the
 * hook is inert (`isReadOnly` stays false).
 *
 * - `isReadOnly` is true while another tab owns the chat (is sending or streaming a turn): disable
 *   the composer. Sends from a read-only tab reject with code `read_only_tab`, or with
 *   `multiTabSend: "queue"` wait for that tab's turn (then keep the composer enabled).
 * - The owning tab broadcasts its messages (throttled to animation frames), and keeps doing so for
 *   a short grace period after its claim is released, so the final state of a reply reaches the
 *   others.
 * - Only a tab that held the claim broadcasts: a tab that becomes writable, or one that just
 *   opened, never pushes its own (possibly stale) copy over the owner's.
 * - Read-only tabs apply what they receive with `setMessages`; the owner ignores broadcasts
 *   unless its own send is in flight (it then takes in the previous owner's last copy). A tab's
 *   own message and reply stay in every copy it applies, and a message waiting for its turn
 *   behind another tab is never broadcast.
 * - When another tab takes the chat right after this tab's turn, this tab sends the chat's
 *   current messages at once (not the last rendered ones), then stops broadcasting.
 *
 * `setMessages` must accept an updater function, as `useChat`'s and React's setters do: copies
 * are merged into the chat's current messages. Wrap a setter that only takes arrays:
 * `(u) => set(typeof u === "function" ? u(get()) : u)`.
 *
 * ```tsx
 * const { messages, setMessages } = useChat({ id: chatId, transport });
 * const { isReadOnly } = useMultiTabChat(transport, chatId, messages, setMessages);
 * <textarea disabled={isReadOnly} placeholder={isReadOnly ? "Active in another tab" : "Message"} />
 * ```
 */
export declare function useMultiTabChat<T = UIMessage>(
  /** `null` / `undefined` (no transport yet): inert, never read-only. */
  transport: TriggerChatTransport<any, any> | null | undefined,
  /** `null` / `undefined` (no chat yet): inert, never read-only. */
  chatId: string | null | undefined,
  messages: T[],
  setMessages: (messages: T[] | ((messages: T[]) => T[])) => void,
  options?: UseMultiTabChatOptions,
): { isReadOnly: boolean };

/**
 * Sends custom actions through `useChat`, so the agent's response streams into the message list
 * and `status`, `error` and `stop` behave as for a message: `sendAction(action)` is
 * `sendMessage(undefined, { body: { action } })`, which the transport sends as
 * `trigger: "action"`.
 *
 * ```tsx
 * const { sendMessage } = useChat({ id: chatId, transport });
 * const { sendAction } = useChatActions({ sendMessage });
 * <button onClick={() => sendAction({ type: "undo" })}>Undo</button>
 * ```
 */
export declare function useChatActions(options: {
  /** `useChat`'s `sendMessage`. */
  sendMessage: (
    message: undefined,
    options?: { body?: object; headers?: Record<string, string> | Headers },
  ) => Promise<void> | void;
}): {
  /** Sends an action; resolves when `useChat` has finished the request. */
  sendAction: (action: unknown) => Promise<void>;
};

/** What a transcript loader (e.g. `chat.createLoadTranscriptAction`) returns. */
export type LoadTranscriptResult<TUIMessage extends UIMessage = UIMessage> = {
  messages: TUIMessage[];
  /** Where the loaded history ends on the session's streams. */
  cursors?: { lastOutEventId?: string; lastInEventId?: string };
  /** Pass as `before` to load the page before this one. */
  nextCursor?: string;
};

export type UseLoadTranscriptOptions = {
  /** Seed this transport's resume cursor from the transcript, so the stream does not replay it. */
  transport?: Pick<TriggerChatTransport, "seedResumeCursor">;
  /** Passed to the loader. */
  limit?: number;
};

/**
 * Moves `transport`'s resume cursor for `chatId` to `cursors.lastOutEventId` (forward only; held
 * until the session exists). Returns whether a cursor was given.
 */
export declare function seedTranscriptCursor(
  transport: Pick<TriggerChatTransport, "seedResumeCursor">,
  chatId: string,
  cursors: { lastOutEventId?: string } | undefined,
): boolean;

/**
 * Loads a chat's history to render before the chat connects, again when `chatId` or `limit`
 * changes (`undefined` loads nothing); with `options.transport`, seeds its resume cursor.
 *
 * ```tsx
 * const { messages, isLoading } = useLoadTranscript(chatId, loadTranscript, { transport });
 * ```
 */
export declare function useLoadTranscript<TUIMessage extends UIMessage = UIMessage>(
  chatId: string | undefined,
  load: (params: { chatId: string; limit?: number }) => Promise<LoadTranscriptResult<TUIMessage>>,
  options?: UseLoadTranscriptOptions,
): {
  messages: TUIMessage[];
  isLoading: boolean;
  error: Error | undefined;
  /** Pass as `before` to load the page before this one. */
  nextCursor: string | undefined;
};

/**
 * Renders sub-agents streamed with `chat.forwardSubAgent` while they run. Pass `onData` to
 * `useChat`; `get(toolCallId)` is the sub-agent's message so far (fall back to the tool part's
 * `output` for finished calls and reloaded history). Re-renders at most once per `throttleMs`
 * (default 100).
 *
 * ```tsx
 * const subAgents = useSubAgentMessages();
 * const { messages } = useChat({ transport, onData: subAgents.onData });
 * const message = subAgents.get(part.toolCallId) ?? part.output;
 * ```
 */
export declare function useSubAgentMessages<TUIMessage extends UIMessage = UIMessage>(
  options?: Pick<SubAgentMessagesOptions, "throttleMs">,
): Pick<SubAgentMessages<TUIMessage>, "onData" | "get">;

/** A message `usePendingMessages` holds while the agent answers. */
export type PendingMessage = {
  id: string;
  text: string;
  /** `"steering"`: sent to the running turn; `"queued"`: waits for the next one. */
  mode: "steering" | "queued";
  /** The agent confirmed it injected the message (it then leaves the list). */
  injected: boolean;
};

/** A message recorded in an injection point (`data-pending-message-injected` part). */
export type InjectedMessage = { id: string; text: string };

/** Options of `usePendingMessages` (the same as `@trigger.dev/sdk/chat/react`'s). */
export type UsePendingMessagesOptions<TUIMessage extends UIMessage = UIMessage> = {
  transport: Pick<TriggerChatTransport<any, any>, "sendPendingMessage">;
  chatId: string;
  /** `useChat`'s `status`. */
  status: string;
  /** `useChat`'s `messages`: injection points are read from them. */
  messages: TUIMessage[];
  /** `useChat`'s `setMessages` (accepted for compatibility; not needed). */
  setMessages?: (messages: TUIMessage[] | ((previous: TUIMessage[]) => TUIMessage[])) => void;
  /**
   * `useChat`'s `sendMessage`. Called with `{ text }`, or with a steering message the agent did
   * not inject (`{ id, role: "user", parts }`): the transport then streams the turn answering it
   * instead of sending it again.
   */
  sendMessage: (
    message: { text: string } | { id: string; role: "user"; parts: TUIMessage["parts"] },
    options?: ChatRequestOptions,
  ) => unknown;
  /** Sent as the request metadata with every message the hook sends. */
  metadata?: Record<string, unknown>;
};

export type UsePendingMessagesReturn = {
  /** Messages waiting: steering ones not yet injected, and queued ones. */
  pending: PendingMessage[];
  /**
   * While the turn streams, a steering message for it; while it is `submitted`, or while the
   * end-of-turn follow-up is being sent, a queued one; otherwise a send.
   */
  steer: (text: string) => void;
  /** While the agent answers, a message for the next turn; otherwise a send. */
  queue: (text: string) => void;
  /** Sends a queued message to the running turn now, while it streams (otherwise nothing). */
  promoteToSteering: (id: string) => void;
  /** Whether an assistant message part is an injection point. */
  isInjectionPoint: (part: unknown) => boolean;
  /** The ids of the messages injected at an injection point. */
  getInjectedMessageIds: (part: unknown) => string[];
  /** The `{ id, text }` of the messages injected at an injection point. */
  getInjectedMessages: (part: unknown) => InjectedMessage[];
};

/**
 * Steering and queued messages while the agent answers (`pendingMessages` on the agent).
 * `steer(text)` sends to the running turn through `transport.sendPendingMessage`; the agent
 * injects it between steps (an injection point part in the reply) or answers it as the next
 * turn, which the hook then shows through `sendMessage` without sending it again (the JS hook
 * sends it a second time). `queue(text)` waits for the end of the turn; queued messages go out
 * as one. A steering message that could not be delivered goes out as a queued one.
 */
export declare function usePendingMessages<TUIMessage extends UIMessage = UIMessage>(
  options: UsePendingMessagesOptions<TUIMessage>,
): UsePendingMessagesReturn;

/**
 * (trigger-chat-wasm) The chat's connection state, kept current: `{ state, pendingSends }` (see
 * `ChatConnectionState`). For a status line such as "Offline: 1 message waiting" or
 * "Reconnecting…". `idle` without a transport or chat id.
 */
export declare function useConnectionState(
  transport: Pick<TriggerChatTransport, "connectionState" | "addConnectionListener" | "removeConnectionListener"> | null | undefined,
  chatId: string | null | undefined,
): ChatConnectionState;

/**
 * (trigger-chat-wasm) Leaving a chat keeps its reply going. Call it right after `useChat` in the
 * component that shows `chatId`, when the transport is shared (created higher up): unmounting
 * that component, or switching its `useChat` to another chat id, makes useChat call
 * `chat.stop()`; with this hook that detaches the reply instead of stopping the agent, and the
 * chat's next mount resumes it. The stop button still stops the agent (for a resumed reply, have
 * it call `transport.stopGeneration(chatId)` too: `stop()` only detaches a resumed stream).
 *
 * ```tsx
 * const { messages, stop } = useChat({ id: chatId, transport, resume: true });
 * useDetachOnLeave(transport, chatId);
 * ```
 */
export declare function useDetachOnLeave(
  transport: TriggerChatTransport<any, any> | null | undefined,
  chatId: string | null | undefined,
): void;
