// trigger-chat-wasm — TriggerChatTransport for the AI SDK's useChat, backed by WebAssembly.
//
// Safe to import during server-side rendering: nothing here touches a browser global or
// instantiates WebAssembly at import time. The module is instantiated once, on first use, and
// shared by every transport in the page. The constructor is synchronous, so `useChat` can build
// a transport during render.
import initWasm, { WasmTransport } from "./trigger_chat_wasm.js";

let loading;

/**
 * Instantiates the WebAssembly module (once per page). Transports call it themselves; call it
 * early to warm up, or pass where the `.wasm` file lives when it is served from elsewhere.
 */
export function init(moduleOrPath) {
  if (!loading) {
    loading = initWasm(moduleOrPath === undefined ? undefined : { module_or_path: moduleOrPath });
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

// Before the module is ready, a stored session can still be read (same JSON the wasm writes).
function storedSession(options, chatId) {
  const hydrated = options.sessions?.[chatId];
  if (hydrated) return hydrated;
  const persistence = options.persistence ?? "localStorage";
  try {
    if (persistence === "localStorage" || typeof persistence?.namespace === "string") {
      const namespace = typeof persistence === "string" ? "trigger-chat-wasm" : persistence.namespace;
      const raw = globalThis.localStorage?.getItem(`${namespace}:v1:${encodeURIComponent(chatId)}`);
      return raw ? JSON.parse(raw).session ?? undefined : undefined;
    }
    if (typeof persistence?.load === "function") return persistence.load(chatId) ?? undefined;
  } catch {
    // Missing or corrupt storage reads as "no session", as in the wasm.
  }
  return undefined;
}

/** Whether `error` came from this package (an `Error` with a string `code`). */
export function isTriggerChatError(error) {
  return error instanceof Error && typeof error.code === "string";
}

function protocolError(message) {
  const error = new Error(message);
  error.name = "TriggerChatError";
  error.code = "protocol";
  return error;
}

// A ReadableStream<UIMessageChunk> pulled from a WasmStream: each pull parses one batch of record
// bodies with the browser's JSON.parse and enqueues their `data`. Nothing is read from the
// network until the consumer asks (backpressure).
function toReadableStream(wasmStream) {
  let live = true;
  const release = () => {
    if (live) {
      live = false;
      wasmStream.free();
    }
  };
  return new ReadableStream({
    async pull(controller) {
      for (;;) {
        let text;
        try {
          text = await wasmStream.next();
        } catch (error) {
          release();
          controller.error(error);
          return;
        }
        if (text === undefined) {
          release();
          controller.close();
          return;
        }
        let bodies;
        try {
          bodies = JSON.parse(text);
        } catch {
          wasmStream.cancel();
          release();
          controller.error(protocolError("the stream carried a record body that is not JSON"));
          return;
        }
        let enqueued = 0;
        for (let i = 0; i < bodies.length; i++) {
          const body = bodies[i];
          const chunk = body !== null && typeof body === "object" ? body.data : undefined;
          if (chunk != null) {
            controller.enqueue(chunk);
            enqueued++;
          }
        }
        // A pull must deliver something or end; otherwise a waiting reader would hang.
        if (enqueued > 0) return;
      }
    },
    cancel() {
      if (live) wasmStream.cancel();
      release();
    },
  });
}

const SETTERS = [
  "setOnSessionChange",
  "setOnEvent",
  "setClientData",
  "setAccessToken",
  "setStartSession",
  "setFetch",
];

/**
 * A `ChatTransport` for the AI SDK's `useChat` that talks to a Trigger.dev chat agent over
 * Sessions. Same options, methods and events as `TriggerChatTransport` from
 * `@trigger.dev/sdk/chat`.
 */
export class TriggerChatTransport {
  /** A reconnect replays the turn in flight from its start; the AI SDK replaces, not appends. */
  resumeStreamIsReplay = true;

  #options;
  #inner = null;
  #loading = null;
  #pending = new Map();
  #disposed = false;

  constructor(options) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("TriggerChatTransport: options must be an object");
    }
    this.#options = { ...options };
    for (const name of [
      "sendMessages",
      "reconnectToStream",
      "sendAction",
      "sendPendingMessage",
      "stopGeneration",
      "start",
      "preload",
      "getSession",
      "setSession",
      "removeSession",
      "seedResumeCursor",
      "sessionStatus",
      "sessionClosedReason",
      "dispose",
      "close",
      ...SETTERS,
    ]) {
      this[name] = this[name].bind(this);
    }
    // In a browser, start fetching the module now so the first send does not wait for it. The
    // wasm-side transport itself is created on first use: an instance that is built and dropped
    // (React StrictMode renders twice and discards one) holds no browser resources.
    if (typeof window !== "undefined") init().catch(() => {});
  }

  #ready() {
    if (this.#inner) return Promise.resolve(this.#inner);
    this.#loading ??= init().then(() => {
      const inner = new WasmTransport(this.#options);
      for (const [name, value] of this.#pending) inner[name](value);
      this.#pending.clear();
      if (this.#disposed) inner.dispose();
      this.#inner = inner;
      return inner;
    });
    return this.#loading;
  }

  async sendMessages(options) {
    const inner = await this.#ready();
    return toReadableStream(await inner.sendMessages(options));
  }

  async reconnectToStream(options) {
    const inner = await this.#ready();
    const stream = inner.reconnectToStream(options);
    return stream ? toReadableStream(stream) : null;
  }

  async sendAction(chatId, action, options) {
    const inner = await this.#ready();
    return toReadableStream(await inner.sendAction(chatId, action, options ?? {}));
  }

  async sendPendingMessage(chatId, message, metadata) {
    return (await this.#ready()).sendPendingMessage(chatId, message, metadata);
  }

  async stopGeneration(chatId) {
    return (await this.#ready()).stopGeneration(chatId);
  }

  async start(chatId) {
    return (await this.#ready()).start(chatId);
  }

  async preload(chatId) {
    await this.start(chatId);
  }

  getSession(chatId) {
    return this.#inner ? this.#inner.getSession(chatId) : storedSession(this.#options, chatId);
  }

  setSession(chatId, session) {
    if (this.#inner) return this.#inner.setSession(chatId, session);
    this.#options.sessions = { ...this.#options.sessions, [chatId]: session };
  }

  removeSession(chatId) {
    if (this.#inner) return this.#inner.removeSession(chatId);
    this.#ready().then((inner) => inner.removeSession(chatId), () => {});
  }

  seedResumeCursor(chatId, lastEventId) {
    if (this.#inner) return this.#inner.seedResumeCursor(chatId, String(lastEventId));
    this.#ready().then((inner) => inner.seedResumeCursor(chatId, String(lastEventId)), () => {});
  }

  sessionStatus(chatId) {
    if (this.#inner) return this.#inner.sessionStatus(chatId);
    return storedSession(this.#options, chatId)?.closed ? "closed" : "open";
  }

  sessionClosedReason(chatId) {
    if (this.#inner) return this.#inner.sessionClosedReason(chatId);
    return storedSession(this.#options, chatId)?.closedReason;
  }

  #set(name, value) {
    if (this.#inner) return this.#inner[name](value);
    this.#pending.set(name, value); // the latest value of each setter wins
  }

  /** Replaces `onSessionChange`. */
  setOnSessionChange(callback) {
    this.#set("setOnSessionChange", callback);
  }

  /** Replaces `onEvent`. */
  setOnEvent(callback) {
    this.#set("setOnEvent", callback);
  }

  /** Replaces `clientData`; the next send uses it. */
  setClientData(clientData) {
    this.#set("setClientData", clientData);
  }

  /** Replaces `accessToken`. */
  setAccessToken(callback) {
    this.#set("setAccessToken", callback);
  }

  /** Replaces `startSession`. */
  setStartSession(callback) {
    this.#set("setStartSession", callback);
  }

  /** Replaces `fetch`. */
  setFetch(callback) {
    this.#set("setFetch", callback);
  }

  /** Closes every stream this transport has open. */
  dispose() {
    this.#disposed = true;
    this.#inner?.dispose();
  }

  /** `ChatTransport.close` (ai@7): the same as `dispose()`. */
  close() {
    this.dispose();
  }
}

/** `new TriggerChatTransport(options)`. */
export function createChatTransport(options) {
  return new TriggerChatTransport(options);
}
