// Type declarations for trigger-chat-wasm (hand-written; the runtime is index.js + WebAssembly).
//
// The names and shapes mirror `@trigger.dev/sdk/chat` (v4.8.3), so switching is an import change:
//
//   - import { TriggerChatTransport } from "@trigger.dev/sdk/chat";
//   + import { TriggerChatTransport } from "trigger-chat-wasm";
//
// Additions over the JavaScript transport are marked "(trigger-chat-wasm)".

import type { ChatRequestOptions, ChatTransport, ModelMessage, UIMessage, UIMessageChunk } from "ai";

/** Which Sessions endpoint a request goes to: `"in"` (appends) or `"out"` (the SSE stream). */
export type ChatTransportEndpoint = "in" | "out";

/** Context passed to the `baseURL` resolver and to the `fetch` override. */
export type ChatTransportEndpointContext = {
  endpoint: ChatTransportEndpoint;
  chatId: string;
};

/** The function form of `baseURL`: returns the API base for one request. */
export type ChatBaseURLResolver = (ctx: ChatTransportEndpointContext) => string;

/**
 * Replaces `fetch` for the transport's own requests (appends, the `.out` stream and the
 * `headStart` POST, whose `ctx.endpoint` is `"head-start"`). Receives the resolved URL, the
 * `RequestInit` the transport built, and which endpoint it is for; must resolve to a `Response`
 * equivalent to what `globalThis.fetch(url, init)` would return.
 */
export type ChatFetchOverride = {
  // Declared as a method so that its parameters are checked bivariantly: an override typed with
  // the SDK's `ChatTransportEndpointContext` (`endpoint: "in" | "out"`) is accepted as it is.
  bivarianceHack(
    url: string,
    init: RequestInit,
    ctx: { endpoint: ChatTransportEndpoint | "head-start"; chatId: string },
  ): Promise<Response>;
}["bivarianceHack"];

/**
 * A function type whose parameters are checked bivariantly (as a method's are), for members the
 * SDK declares as properties but whose parameters name the transport's message type: a typed
 * transport then still passes where the plain `TriggerChatTransport` type is expected.
 */
type Bivariant<A extends unknown[], R> = { bivarianceHack(...args: A): R }["bivarianceHack"];

/**
 * An `onEvent` handler. Declared as a method so that its parameter is checked bivariantly: a
 * handler typed with the SDK's `ChatTransportEvent` (which lacks this package's `storage-error`
 * and `connection-state` events) is accepted as it is.
 */
export type ChatEventHandler = {
  bivarianceHack(event: ChatTransportEvent): void | Promise<void>;
}["bivarianceHack"];

/** Which path a send-lifecycle event came from. */
export type ChatTransportSendSource =
  | "submit-message"
  | "regenerate-message"
  | "steer"
  | "action"
  | "stop"
  /** The first turn of a chat, posted to the `headStart` handler. */
  | "head-start";

/** The input boundary that settled one `sendAction` call (see `ChatActionOptions.onSettled`). */
export type ChatActionSettlement = {
  /** The `.in` sequence number of this action's append. */
  inputSeq: number;
  /** The agent's committed input cursor from the turn-complete record (at or after `inputSeq`). */
  sessionInEventId: string;
  /** The `.out` cursor of that turn-complete record. */
  lastEventId?: string;
};

/** Options of `transport.sendAction`. */
export type ChatActionOptions = {
  abortSignal?: AbortSignal;
  /** Per-action metadata, merged over the transport's `clientData`. */
  metadata?: Record<string, unknown>;
  /** (trigger-chat-wasm) Extra headers for this action's append. */
  headers?: Record<string, string> | Headers;
  /**
   * Called at most once, when a turn-complete record confirms the agent processed this action.
   * Not called after cancellation or a stream error. Exceptions thrown by it are ignored.
   */
  onSettled?: (settlement: ChatActionSettlement) => void;
};

/**
 * Stable error codes. Every error the transport throws, rejects with, errors a stream with or
 * reports in an event is an `Error` carrying one of these as `.code` — except an object thrown
 * by your `startSession` or `accessToken`, which is passed on as is (any other thrown value
 * becomes `callback_failed`, with the value as `cause`). (A `fetch` override or a
 * `baseURL` function that throws counts as a network failure: retried, then `network`.)
 */
export type TriggerChatErrorCode =
  | "session_closed"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "payload_too_large"
  | "rate_limited"
  | "server"
  | "http"
  | "network"
  | "protocol"
  | "storage"
  | "aborted"
  | "read_only_tab"
  | "invalid_option"
  | "stream_stalled"
  | "missing_callback"
  | "callback_failed";

/**
 * (trigger-chat-wasm) The errors this package produces: real `Error`s with a stable `code` and,
 * for HTTP failures, the `status` (a closed session reports 409).
 *
 * ```ts
 * try { await sendMessage({ text }); } catch (e) {
 *   if (isTriggerChatError(e) && e.code === "session_closed") showClosedBanner();
 * }
 * ```
 */
export interface TriggerChatError extends Error {
  code: TriggerChatErrorCode;
  status?: number;
  /** `session_closed`: the reason the session was closed with, when one was given. */
  closedReason?: string;
  /** `rate_limited`: when the limit resets (`x-ratelimit-reset`), as Unix milliseconds. */
  resetAt?: number;
}

/** (trigger-chat-wasm) Whether `error` is an error produced by this package (an `Error` whose `code` is a `TriggerChatErrorCode`). */
export declare function isTriggerChatError(error: unknown): error is TriggerChatError;

/**
 * Lifecycle events passed to `onEvent`. Same union as `@trigger.dev/sdk/chat`, plus
 * `storage-error` and `connection-state` (trigger-chat-wasm). Exceptions thrown by the callback
 * are swallowed.
 */
export type ChatTransportEvent =
  | {
      /** The chat's run waits for its deployment; messages are queued durably meanwhile. */
      type: "run-pending-version";
      chatId: string;
      timestamp: number;
      source: "start" | "send" | "head-start" | "upgrade";
    }
  | {
      /** An append was acknowledged by the server (after any token refresh). */
      type: "message-sent";
      chatId: string;
      timestamp: number;
      messageId?: string;
      source: ChatTransportSendSource;
      durationMs: number;
      /** The append's idempotency key (`X-Part-Id`). */
      partId?: string;
      /** Size of the request body in bytes. */
      bodyBytes?: number;
    }
  | {
      /** An append failed for good. */
      type: "message-send-failed";
      chatId: string;
      timestamp: number;
      messageId?: string;
      source: ChatTransportSendSource;
      error: Error;
      status?: number;
      durationMs: number;
      partId?: string;
      bodyBytes?: number;
    }
  | {
      /**
       * A stream's first connection was accepted (`.out`, or the `headStart` response); a send's
       * is reported once its message is accepted, after `message-sent`.
       */
      type: "stream-connected";
      chatId: string;
      timestamp: number;
      resumed: boolean;
      lastEventId?: string;
      messageId?: string;
    }
  | {
      /** The stream failed and will not recover by itself. */
      type: "stream-error";
      chatId: string;
      timestamp: number;
      error: Error;
      status?: number;
    }
  | {
      /** The session was closed (by the agent, by the backend, or a send was refused). */
      type: "session-closed";
      chatId: string;
      timestamp: number;
      reason?: string;
      source: "stream" | "append";
    }
  | {
      /** The first chunk of a turn's response. */
      type: "first-chunk";
      chatId: string;
      timestamp: number;
      chunkType?: string;
      lastEventId?: string;
      messageId?: string;
      /** Milliseconds since the send that started this turn (time to first token). */
      sinceSendMs?: number;
    }
  | {
      /** The agent finished a turn. */
      type: "turn-completed";
      chatId: string;
      timestamp: number;
      lastEventId?: string;
      sessionInEventId?: string;
      messageId?: string;
      /** Milliseconds since the send that started this turn. */
      sinceSendMs?: number;
    }
  | {
      /**
       * (trigger-chat-wasm) Reading or writing the persisted session failed (storage full,
       * blocked, corrupt, or a custom `persistence` callback threw). The transport keeps working
       * from memory.
       */
      type: "storage-error";
      chatId: string;
      timestamp: number;
      error: Error;
    }
  | {
      /**
       * (trigger-chat-wasm) The chat's connection state changed, or how many of its sends wait
       * for the server (see `ChatConnectionState`).
       */
      type: "connection-state";
      chatId: string;
      timestamp: number;
      state: ChatConnectionState["state"];
      previous: ChatConnectionState["state"];
      pendingSends: number;
    };

/**
 * (trigger-chat-wasm) What a chat is doing on the network, for a status line
 * (`connectionState(chatId)`, `addConnectionListener`, the `connection-state` event).
 */
export type ChatConnectionState = {
  /**
   * - `idle`: nothing in flight;
   * - `connecting`: a send is on its way or a stream is opening, nothing has failed;
   * - `live`: a stream is open and reading;
   * - `reconnecting`: a connection or a send failed and is being retried;
   * - `offline`: the browser reports no network; a send or stream waits for it.
   */
  state: "idle" | "connecting" | "live" | "reconnecting" | "offline";
  /** Sends, actions, steering messages and stops the server has not acknowledged yet. */
  pendingSends: number;
};

/** Arguments of the `accessToken` callback. */
export type AccessTokenParams = {
  /** The conversation id (the `id` given to `useChat`). */
  chatId: string;
};

/** Arguments of the `startSession` callback. */
export type StartSessionParams<TClientData = Record<string, unknown>> = {
  /** The `task` option of the transport. */
  taskId: string;
  /** The conversation id. */
  chatId: string;
  /** The transport's current `clientData` (`{}` when unset). */
  clientData: TClientData;
};

/** What the `startSession` callback resolves to. */
export type StartSessionResult = {
  /** The session-scoped public access token. */
  publicAccessToken: string;
  /** Passed through from the session create; makes the transport emit `run-pending-version`. */
  pendingVersion?: boolean;
};

/** The per-chat state the transport persists so a reload can resume. */
export type ChatSessionPersistedState = {
  publicAccessToken: string;
  /** The `.out` resume cursor. */
  lastEventId?: string;
  /** The `.in` sequence of the last send this client owned. */
  activeInputSeq?: number;
  isStreaming?: boolean;
  /** Set once the session is closed; a reload does not retry a dead session. */
  closed?: boolean;
  closedReason?: string;
  /**
   * (trigger-chat-wasm) The highest `.in` seq the agent is known to have answered; lets the next
   * send stream at once. Keep it when you store the state; the JS transport ignores it.
   */
  consumedInputSeq?: number;
  /**
   * (trigger-chat-wasm) A send the server had not acknowledged when this was saved (one made
   * offline, say). The next page's `reconnectToStream` sends it again with the same part id and
   * streams its turn. Keep it when you store the state; the JS transport ignores it.
   */
  pendingSend?: {
    partId: string;
    /** The append body, as JSON text. */
    body: string;
    source: "submit-message" | "regenerate-message" | "action";
    messageId?: string;
    /** When the send was made (ms since the epoch). */
    createdAt: number;
    /** When an attempt that may have reached the server first started (ms since the epoch). */
    reachableSince?: number;
    /** The `.out` event id its turn starts after (`null`: the session's start; absent, in a
     * state saved before this field: `lastEventId`). */
    turnStart?: number | null;
    /** The highest `.in` seq known consumed when it was made. */
    consumed?: number;
  };
};

/**
 * (trigger-chat-wasm) Your own storage for the per-chat session state, called synchronously
 * (`load` must answer at once, with the state or its JSON text — a Promise is a `storage-error`;
 * `save` and `remove` may be async: a chat's next write waits for the one in flight, 10 s at
 * most, then a `storage-error`). Any callback may be omitted, but not all three. Exceptions and
 * rejections become `storage-error` events, never failures.
 */
export type ChatSessionStore = {
  load?(chatId: string): ChatSessionPersistedState | string | null | undefined;
  save?(chatId: string, state: ChatSessionPersistedState): void | Promise<void>;
  remove?(chatId: string): void | Promise<void>;
};

/**
 * (trigger-chat-wasm) Where session state is kept between page loads:
 * - `"localStorage"` (default): one versioned JSON entry per chat under the `trigger-chat-wasm`
 *   namespace; missing, full or corrupt storage never throws.
 * - `{ namespace }`: localStorage under your namespace.
 * - `"none"`: memory only (use `sessions` + `onSessionChange` to persist in your database).
 * - a `ChatSessionStore`.
 */
export type ChatSessionPersistence = "localStorage" | "none" | { namespace: string } | ChatSessionStore;

type ClientDataOf<TClientData> =
  TClientData extends Record<string, unknown> ? TClientData : Record<string, unknown>;

/**
 * The payload type of a Trigger.dev task type (`typeof myChat`), read structurally from its
 * `trigger` method, so these declarations need no dependency on `@trigger.dev/sdk`.
 */
type TaskPayloadOf<TTask> = TTask extends { id: string; trigger: (payload: infer P, ...rest: any[]) => any }
  ? P
  : never;

/**
 * The UI message type of a chat agent task, as `@trigger.dev/sdk` infers it
 * (`chat.withUIMessage<Msg>().agent(...)` gives `Msg`); `UIMessage` for any other type.
 * ```ts
 * import type { myChat } from "@/trigger/chat"; // a type-only import: nothing reaches the bundle
 * type Msg = InferChatUIMessage<typeof myChat>;
 * ```
 */
export type InferChatUIMessage<TTask> = TTask extends unknown // (one union member at a time)
  ? [TaskPayloadOf<TTask>] extends [never]
    ? UIMessage
    : TaskPayloadOf<TTask> extends { message?: infer M }
      ? Extract<M, UIMessage> extends never
        ? UIMessage
        : Extract<M, UIMessage>
      : UIMessage
  : never;

/**
 * The `clientData` type of a chat agent task (its `clientDataSchema`'s input), as
 * `@trigger.dev/sdk/chat` infers it: `Record<string, unknown>` for a task without a schema, and
 * for any other type.
 */
export type InferChatClientData<TTask> = TTask extends unknown // (one union member at a time)
  ? [TaskPayloadOf<TTask>] extends [never]
    ? Record<string, unknown>
    : TaskPayloadOf<TTask> extends { metadata?: infer D }
      ? unknown extends D
        ? Record<string, unknown>
        : D
      : Record<string, unknown>
  : never;

/**
 * What a chat agent task receives for one trigger (the `payload` of a `message` record on the
 * session's `.in` stream), as `@trigger.dev/sdk/chat` types it. The transport writes `message`,
 * `chatId`, `trigger`, `messageId`, `metadata` and `action`; the other fields come from the
 * server side (continuations, channels, `headStart` handovers).
 */
export type ChatTaskWirePayload<TMessage extends UIMessage = UIMessage, TMetadata = unknown> = {
  /** The one new message of this trigger (absent for `regenerate-message`, `preload`, `close`, `action`). */
  message?: TMessage;
  /** The conversation a `headStart` handler hands over with its first turn. */
  headStartMessages?: TMessage[];
  chatId: string;
  trigger: "submit-message" | "regenerate-message" | "preload" | "close" | "action" | "handover-prepare";
  messageId?: string;
  /** `clientData` merged under the request's `metadata`. */
  metadata?: TMetadata;
  /** The action of a `trigger: "action"` record (`sendAction`). */
  action?: unknown;
  actionSource?: "client" | "webhook" | "channel";
  channelEvent?: {
    connectorId: string;
    event: unknown;
    source: string;
    headers: Record<string, string>;
    deliveryId: string;
    externalDeliveryId?: string;
  };
  continuation?: boolean;
  previousRunId?: string;
  idleTimeoutInSeconds?: number;
  sessionId?: string;
};

/**
 * One record body on a session's `.in` stream. This transport appends `message` and `stop`
 * records; `handover` and `handover-skip` are written by a `headStart` handler on the server.
 */
export type ChatInputChunk<TMessage extends UIMessage = UIMessage, TMetadata = unknown> =
  | { kind: "message"; payload: ChatTaskWirePayload<TMessage, TMetadata> }
  | { kind: "stop"; message?: string }
  | {
      kind: "handover";
      /** The handler's first-step response, as AI SDK `ModelMessage`s. */
      partialAssistantMessage: ModelMessage[];
      messageId?: string;
      isFinal: boolean;
    }
  | { kind: "handover-skip" };

/** Options of `new TriggerChatTransport(options)`. */
export type TriggerChatTransportOptions<TClientData = Record<string, unknown>> = {
  /** The Trigger.dev task id of the chat agent; passed to `startSession` as `taskId`. */
  task: string;
  /**
   * Returns a fresh session-scoped token for an existing session. Called when a request gets a
   * 401/403, before a JWT within 30 s of its `exp` is used, and for a chat without a stored
   * token when there is no `startSession`.
   * At least one of `accessToken` and `startSession` is required.
   */
  accessToken?: (params: AccessTokenParams) => string | Promise<string>;
  /**
   * Creates (or finds) the session of a chat and returns its token. Called by `start`/`preload`,
   * by the first send of a chat without a stored token, when a stored session is gone (404),
   * and to refresh tokens when there is no `accessToken`.
   */
  startSession?: (params: StartSessionParams<ClientDataOf<TClientData>>) => Promise<StartSessionResult>;
  /** The Trigger.dev API base, or a resolver per request. @default "https://api.trigger.dev" */
  baseURL?: string | ChatBaseURLResolver;
  /** @deprecated Use the function form of `baseURL`. Wins over `baseURL` for `.out`. */
  streamBaseURL?: string;
  /** Replaces `fetch` for appends, the stream and the `headStart` request (its URL resolved against the page). */
  fetch?: ChatFetchOverride;
  /** Lifecycle events; see `ChatTransportEvent`. */
  onEvent?: ChatEventHandler;
  /** Extra headers on every request (the transport's own `Authorization` always wins). */
  headers?: Record<string, string> | Headers;
  /**
   * Sent as `Timeout-Seconds` on every `.out` request: a whole number from 1 to 600 (other
   * values make every call reject with `invalid_option`). @default 120
   */
  streamTimeoutSeconds?: number;
  /** Default metadata merged under each send's `metadata`; also passed to `startSession`. */
  clientData?: ClientDataOf<TClientData>;
  /** Session state to start from, keyed by chat id (e.g. loaded from your database); `null`: none. */
  sessions?: Record<string, ChatSessionPersistedState | null>;
  /** Called when a chat's session state changes; `null` when the chat is removed (`removeSession`). */
  onSessionChange?: (chatId: string, session: ChatSessionPersistedState | null) => void | Promise<void>;
  /**
   * Coordinate tabs of this browser: one tab at a time sends on a chat, the others are read-only
   * and mirror its messages (see `useMultiTabChat`). A no-op without BroadcastChannel.
   * @default false
   */
  multiTab?: boolean;
  /**
   * (trigger-chat-wasm, multiTab) What a send does while another tab owns the chat:
   * `"reject"` fails it with `read_only_tab` before anything is sent (the JS transport's
   * behaviour); `"queue"` waits for that tab's turn to end, then sends (the tabs take turns in
   * the order they asked: the writer Web Lock's queue). Aborting the send's signal or
   * `dispose()` gives up the place. `"queue"` needs Web Locks; without them sends are refused.
   * @default "reject"
   */
  multiTabSend?: "reject" | "queue";
  /**
   * Read-only viewer mode: `reconnectToStream` returns a stream for any open session (no turn
   * need be in flight) that follows every turn from the resume cursor and stays open across
   * turn boundaries until the session closes or the stream is cancelled; it reconnects through
   * outages without giving up. A send still streams only its own turn (and ends the watcher's
   * stream, as in the JS transport). Turns off `multiTab`.
   * @default false
   */
  watch?: boolean;
  /**
   * URL of the app's `chat.headStart` route handler. A send on a chat with no session posts its
   * whole history there (never with a session token); the handler creates the session and
   * streams the first turn, and its `X-Trigger-Chat-Access-Token` response header becomes the
   * chat's session, so later turns go to the session directly. A cross-origin handler must
   * expose that header (CORS).
   */
  headStart?: string;
  /** (trigger-chat-wasm) Where session state persists. @default "localStorage" */
  persistence?: ChatSessionPersistence;
  /**
   * (trigger-chat-wasm) Reconnect a stream that delivered nothing (not even a ping) for this
   * long: a whole number from 1000 to 3600000 (other values make every call reject with
   * `invalid_option`). @default 30000
   */
  stallTimeoutMs?: number;
  /**
   * (trigger-chat-wasm) Merge consecutive deltas of one part that arrive together (a replay
   * after a reload, a reconnect, a reader that fell behind) into one chunk, so `useChat` renders
   * a catch-up a few times instead of once per token. The reply is the same; live tokens, which
   * arrive one by one, are delivered as they come. Only the plain delta shapes are merged.
   * @default true
   */
  coalesceDeltas?: boolean;
};

/** The request `useChat` passes to `sendMessages`. */
export type TriggerChatSendOptions<UI_MESSAGE extends UIMessage = UIMessage> = {
  trigger: "submit-message" | "regenerate-message";
  chatId: string;
  messageId: string | undefined;
  messages: UI_MESSAGE[];
  abortSignal: AbortSignal | undefined;
} & ChatRequestOptions;

/** The request `useChat` passes to `reconnectToStream`. */
export type TriggerChatReconnectOptions = {
  chatId: string;
  abortSignal?: AbortSignal | undefined;
  /** Whether aborting this stream also stops the agent's turn. @default false */
  stopOnAbort?: boolean;
} & ChatRequestOptions;

/**
 * A `ChatTransport` for the AI SDK's `useChat` that talks to a Trigger.dev chat agent over
 * Sessions. Construction is synchronous and safe during server-side rendering; in a browser it
 * starts loading the WebAssembly module (once per page; see `init()`).
 *
 * ```ts
 * const transport = new TriggerChatTransport({
 *   task: "ai-chat",
 *   startSession: ({ chatId, clientData }) => startChatSession(chatId, clientData),
 *   accessToken: ({ chatId }) => mintChatToken(chatId),
 * });
 * const { messages, sendMessage } = useChat({ id: chatId, transport });
 * ```
 *
 * Methods are bound: they can be passed around detached from the instance.
 *
 * @typeParam UI_MESSAGE - your UI message type (as given to `useChat<UI_MESSAGE>`).
 * @typeParam TClientData - the shape of `clientData` (inferred from the options).
 */
export declare class TriggerChatTransport<
  UI_MESSAGE extends UIMessage = UIMessage,
  TClientData extends Record<string, unknown> = Record<string, unknown>,
> implements ChatTransport<UI_MESSAGE>
{
  constructor(options: TriggerChatTransportOptions<TClientData>);

  /** A reconnect replays the turn in flight from its start, so the AI SDK replaces, not appends. */
  readonly resumeStreamIsReplay: true;

  /** `ChatTransport.sendMessages`: appends the message and streams the agent's answer. */
  sendMessages: Bivariant<[options: TriggerChatSendOptions<UI_MESSAGE>], Promise<ReadableStream<UIMessageChunk>>>;

  /**
   * `ChatTransport.reconnectToStream`: resumes the turn in flight after a reload, or `null` when
   * nothing is streaming, the session is closed, or this transport already has a stream open
   * for the chat (a send's own, or a watcher).
   */
  reconnectToStream: (options: TriggerChatReconnectOptions) => Promise<ReadableStream<UIMessageChunk> | null>;

  /** Sends a custom action (`trigger: "action"`) and streams the agent's response to it. */
  sendAction: (chatId: string, action: unknown, options?: ChatActionOptions) => Promise<ReadableStream<UIMessageChunk>>;

  /**
   * Sends a steering message while a turn streams, without interrupting it. Resolves `false` when
   * the chat has no session, the message is over the 1 MiB limit, or the append failed; rejects
   * with `invalid_option` while `clientData` cannot be sent, and with `aborted` if the chat is
   * removed meanwhile.
   */
  sendPendingMessage: Bivariant<[chatId: string, message: UI_MESSAGE, metadata?: Record<string, unknown>], Promise<boolean>>;

  /**
   * Stops the agent's current turn (appends `{kind: "stop"}`) and ends the local stream. Works
   * after a resume too, where `useChat`'s `stop()` cannot reach the agent. A message the server
   * has not acknowledged yet is aborted instead (its send rejects with `aborted`). Resolves
   * whether a stop was sent or a send aborted (or a stop was already sent for this turn); `false`
   * when nothing was streaming or the stop could not be sent.
   */
  stopGeneration: (chatId: string) => Promise<boolean>;

  /**
   * Makes sure the chat has a session now and returns its state: with a stored token it calls
   * nothing; otherwise `startSession` (or `accessToken` without it). Rejects with `aborted` if
   * the chat is removed with `removeSession` meanwhile.
   */
  start(chatId: string): Promise<ChatSessionPersistedState>;

  /** `start(chatId)`, for warming up a chat before the first message. */
  preload(chatId: string): Promise<void>;

  /** The persisted state of a chat, if the transport knows it. */
  getSession: (chatId: string) => ChatSessionPersistedState | undefined;

  /**
   * Replaces a chat's session state (`closed` is honoured). Throws `invalid_option` for a state
   * without a `publicAccessToken`.
   */
  setSession(chatId: string, session: ChatSessionPersistedState): void;

  /** (trigger-chat-wasm) Forgets a chat: closes its stream, removes its stored state, calls `onSessionChange(chatId, null)`; with `multiTab`, the other tabs drop what they held of it. */
  removeSession(chatId: string): void;

  /**
   * @deprecated Does nothing; kept so code written for the JavaScript transport still runs. There,
   * a stopped turn that never writes its turn-complete gates out later output until this is
   * called (W12); here a stop gates nothing, and a reply behind such a turn arrives at the latest
   * with its own turn-complete.
   */
  clearSupersedeGate: (chatId: string) => void;

  /** Sets the `.out` resume cursor from a loaded transcript; never moves a cursor back. */
  seedResumeCursor: (chatId: string, lastEventId: string) => void;

  /** `"closed"` once the session has been closed, otherwise `"open"`. */
  sessionStatus: (chatId: string) => "open" | "closed";

  /** Why the session was closed, when a reason was given. */
  sessionClosedReason: (chatId: string) => string | undefined;

  /** Replaces `onSessionChange`; takes effect for the next change. */
  setOnSessionChange(callback: ((chatId: string, session: ChatSessionPersistedState | null) => void) | undefined): void;
  /** Replaces `onEvent`; takes effect for the next event. */
  setOnEvent(callback: ChatEventHandler | undefined): void;
  /**
   * Replaces `clientData`; the next send uses it. Never throws: a value that cannot be sent as
   * JSON (a `BigInt`, a cycle) fails the sends that would carry it with `invalid_option`.
   */
  setClientData(clientData: TClientData | undefined): void;
  /** Replaces `accessToken`; the next token refresh uses it. */
  setAccessToken(callback: ((params: AccessTokenParams) => string | Promise<string>) | undefined): void;
  /** Replaces `startSession`; the next session start uses it. */
  setStartSession(
    callback: ((params: StartSessionParams<TClientData>) => Promise<StartSessionResult>) | undefined,
  ): void;
  /** Replaces the `fetch` override; the next request (and stream reconnect) uses it. */
  setFetch(callback: ChatFetchOverride | undefined): void;

  /**
   * (multiTab) Whether another tab currently owns this chat; sends from this tab then reject
   * with `read_only_tab` (or, with `multiTabSend: "queue"`, wait for that tab's turn to end).
   */
  isReadOnly(chatId: string): boolean;
  /**
   * (trigger-chat-wasm) The id of the oldest message this tab sent to `chatId` whose turn has
   * not ended here (queued behind another tab, on its way, or streaming its reply); `null`
   * otherwise. `useMultiTabChat` keeps that message when another tab's copy arrives.
   */
  sendingMessageId(chatId: string): string | null;
  /** (multiTab) Whether this tab currently owns this chat (it is sending or streaming a turn). */
  hasClaim(chatId: string): boolean;
  /**
   * (trigger-chat-wasm, multiTab) How many messages on the tab channel this transport could not
   * read and ignored (malformed, hostile, or of an unknown type). Diagnostics; never throws.
   */
  ignoredTabMessages(): number;
  /** (multiTab) Called when another tab takes or releases a chat. */
  addReadOnlyListener(listener: (chatId: string, isReadOnly: boolean) => void): void;
  removeReadOnlyListener(listener: (chatId: string, isReadOnly: boolean) => void): void;
  /**
   * (multiTab) Sends this tab's messages of a chat to the other tabs. The transport stamps each
   * broadcast with a version; receivers drop broadcasts older than one they already applied.
   */
  broadcastMessages(chatId: string, messages: readonly unknown[]): void;
  /** (multiTab) Called with another tab's messages of a chat (never with stale ones). */
  addMessagesListener(listener: (chatId: string, messages: UI_MESSAGE[]) => void): void;
  removeMessagesListener(listener: (chatId: string, messages: UI_MESSAGE[]) => void): void;
  /** (trigger-chat-wasm) What the chat is doing on the network now. */
  connectionState(chatId: string): ChatConnectionState;
  /** (trigger-chat-wasm) Called on every change of a chat's `connectionState`. */
  addConnectionListener(listener: (chatId: string, state: ChatConnectionState) => void): void;
  removeConnectionListener(listener: (chatId: string, state: ChatConnectionState) => void): void;

  /**
   * Closes every open stream and releases tab coordination; sends waiting for the network end
   * with `aborted`. Sessions stay stored, and the transport still works afterwards.
   */
  dispose(): void;
  /** `ChatTransport.close` (ai@7): the same as `dispose()`. */
  close(): void;
}

/** `new TriggerChatTransport(options)`. */
export declare function createChatTransport<
  UI_MESSAGE extends UIMessage = UIMessage,
  TClientData extends Record<string, unknown> = Record<string, unknown>,
>(options: TriggerChatTransportOptions<TClientData>): TriggerChatTransport<UI_MESSAGE, TClientData>;

/** What `init` accepts: where the `.wasm` file is, or its bytes, or a compiled module. */
export type TriggerChatWasmSource =
  | RequestInfo
  | URL
  | Response
  | BufferSource
  | WebAssembly.Module;

/**
 * (trigger-chat-wasm) Instantiates the WebAssembly module, once per page. A transport built in a
 * browser starts it from the default place; call it early to warm up, or to load the `.wasm`
 * from another place (a CDN URL, bytes, a precompiled module, or a promise of one) — before
 * building a transport, or a transport's load from the default place is used if it works.
 * Rejections do not stick: a later call retries (a promise or a `Response` is read only once:
 * after one fails, pass a new one).
 */
export declare function init(
  moduleOrPath?: TriggerChatWasmSource | Promise<TriggerChatWasmSource>,
): Promise<void>;

/** The data part type that carries a sub-agent's chunks on the parent chat's stream. */
export declare const SUB_AGENT_DATA_TYPE = "data-subagent";

/** The payload of a forwarded `data-subagent` part. */
export type SubAgentChunkBatch = {
  /** The parent tool call the sub-agent runs inside. */
  toolCallId: string;
  /** This batch's position in the sub-agent's stream, from 0. */
  seq: number;
  /** The sub-agent's chunks, in stream order. */
  chunks: UIMessageChunk[];
};

/** The transient data chunk `chat.forwardSubAgent` writes to the parent chat's stream. */
export type SubAgentDataChunk = {
  type: typeof SUB_AGENT_DATA_TYPE;
  data: SubAgentChunkBatch;
  transient: true;
};

/** Options of {@link createSubAgentMessages}. */
export type SubAgentMessagesOptions = {
  /**
   * Minimum time between two updates of the messages `get` returns (and two `onChange` calls).
   * Each chunk is reduced once as it arrives, whatever this is. @default 100
   */
  throttleMs?: number;
  /** Called after one or more sub-agent messages changed. Exceptions are swallowed. */
  onChange?: () => void;
};

/** Sub-agent messages rebuilt from forwarded chunks. See {@link createSubAgentMessages}. */
export type SubAgentMessages<TUIMessage extends UIMessage = UIMessage> = {
  /** Pass to `useChat({ onData })`, or call it with every data part you receive. */
  onData: (part: { type: string; data?: unknown }) => void;
  /** The sub-agent's message so far for a parent tool call; `undefined` before its first update. */
  get: (toolCallId: string) => TUIMessage | undefined;
  /** Stops the updates and drops every message. */
  dispose: () => void;
};

/**
 * Rebuilds the messages of sub-agents streamed with `chat.forwardSubAgent` from the transient
 * `data-subagent` parts on the parent chat's stream, with the AI SDK's reducer. Batches a resumed
 * stream replays are skipped by their `seq`, so a reload mid-turn does not duplicate content.
 * React apps use `useSubAgentMessages` from `trigger-chat-wasm/react`.
 */
export declare function createSubAgentMessages<TUIMessage extends UIMessage = UIMessage>(
  options?: SubAgentMessagesOptions,
): SubAgentMessages<TUIMessage>;
