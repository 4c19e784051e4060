// The I/O layer of trigger-chat-wasm's TriggerChatTransport.
//
// Every decision lives in the WebAssembly driver (Rust, `src/proto/driver`): what to send, when
// to retry or reconnect, which records reach the app, what to persist, which events fire. This
// file only performs what the driver asks — fetch, body reads, timers, the app's callbacks,
// storage, BroadcastChannel, Web Locks, page lifecycle — and reports the results back, with
// the time. It imports nothing, so the browser test suites load it as is.

const DEFAULT_BASE_URL = "https://api.trigger.dev";
const STORAGE_VERSION = 1;
const TAB_CHANNEL = "trigger-chat-tab-coord";
const READ_SLICE = 64 * 1024;

function partId() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  const b = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = (Math.random() * 256) | 0;
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** An `Error` from the driver's description `{code, message, status?, closedReason?, resetAt?}`. */
export function makeError(d) {
  const e = new Error(d.message ?? d.code);
  e.name = d.code === "aborted" ? "AbortError" : d.status ? "TriggerApiError" : "TriggerChatError";
  e.code = d.code;
  if (d.status !== undefined) e.status = d.status;
  if (d.closedReason !== undefined) e.closedReason = d.closedReason;
  if (d.resetAt !== undefined) e.resetAt = d.resetAt;
  return e;
}

// The driver's calls off the hot path share one export, `call(op, chat, text, a, b, now)`:
// their numbers, as in src/ops.rs (which says what each takes; tests/ops.rs keeps them in step).
const KNOWS = 0, HYDRATE = 1, STORAGE_FAILED = 2, STOP_GENERATION = 3, START = 4, ABORT_OP = 5,
  ABORT_STREAM = 6, CANCEL = 7, WAKE = 8, SET_OFFLINE = 9, TIMER = 10, FETCH_OPEN = 11,
  HEAD_START_OPEN = 12, FETCH_END = 13, FETCH_FAILED = 14, CALLBACK_OK = 15, CALLBACK_FAILED = 16,
  GET_SESSION = 17, SET_SESSION = 18, REMOVE_SESSION = 19, SEED_RESUME_CURSOR = 20, IS_CLOSED = 21,
  CLOSED_REASON = 22, SET_CLIENT_DATA = 23, SET_CALLBACKS = 24, DISPOSE = 25, LOCK_RESULT = 26,
  LOCK_STATUS = 27, TAB_MESSAGE = 28, REJOIN = 29, PAGE_HIDE = 30, BROADCAST_MESSAGES = 31,
  IS_READ_ONLY = 32, HAS_CLAIM = 33, IGNORED_TAB_MESSAGES = 34, RECONNECT = 35, CHUNK_ENDS = 36,
  SEND_ACTION = 37, SEND_PENDING_MESSAGE = 38;
// (`chat` has no default: a chat id that is not a string fails as it would in any method.)
const call = (d, op, chat, text = "", a = 0, b = 0) => d.call(op, chat, text, a, b, Date.now());
const callOn = (d, op, id, b = 0, text = "") => call(d, op, "", text, id, b);

// What the driver throws (an error description as JSON text) as an Error.
const described = (e) => (typeof e === "string" ? makeError(JSON.parse(e)) : e);

const IDLE_LINK = Object.freeze({ state: "idle", pendingSends: 0 });

// An app callback may be async: its rejection is handled (by `onError`, or dropped) instead of
// surfacing as an unhandled rejection.
function caught(value, onError) {
  if (typeof value?.then === "function") value.then(undefined, onError ?? (() => {}));
}

// A number JSON cannot carry (NaN, ±Infinity) goes as text, so the option is refused rather
// than read as not given.
// A failure's words. Any value can be thrown or rejected with, even one that cannot become
// text (`Object.create(null)`, a revoked Proxy, a throwing `message` getter): a catch block
// that threw in turn would leave a request unanswered until its timer.
const textOf = (e) => {
  try {
    return String(e?.message ?? e);
  } catch {
    return "an error that has no text";
  }
};
const finite = (v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v);

// What the browser says of the network; only a definite "offline" counts.
const offline = () => globalThis.navigator?.onLine === false;

// Whether Web Locks work here: an opaque origin (a sandboxed iframe) or a site whose storage the
// user blocked has `navigator.locks`, but it refuses every request (SecurityError). There a
// `multiTab` tab coordinates by claims alone, as where Web Locks are missing.
async function locksWork() {
  const locks = globalThis.navigator?.locks;
  if (typeof locks?.request !== "function") return false;
  try {
    await locks.query();
    return true;
  } catch {
    return false;
  }
}

// A BroadcastChannel, or null where the browser refuses one (then there is no `multiTab`).
function openTabChannel() {
  try {
    return new BroadcastChannel(TAB_CHANNEL);
  } catch {
    return null;
  }
}

// The text field of a delta chunk that may be merged with the next one of its part: only the
// plain shape (anything more, such as `providerMetadata`, is delivered as sent).
function deltaField(c) {
  const field =
    c?.type === "text-delta" || c?.type === "reasoning-delta"
      ? typeof c.id === "string" && "delta"
      : c?.type === "tool-input-delta" && typeof c.toolCallId === "string" && "inputTextDelta";
  return field && typeof c[field] === "string" && Object.keys(c).length === 3 ? field : undefined;
}

/**
 * Merges each run of consecutive deltas of one part (`text-delta` / `reasoning-delta` with the
 * same `id`, `tool-input-delta` with the same `toolCallId`) into one chunk. The AI SDK's reducer
 * ends in the same state; it just has one update to make instead of many.
 */
export function mergeDeltas(chunks) {
  const out = [];
  let lastField; // the text field of out's last chunk when it is a mergeable delta
  let copied = false; // out's last chunk is our copy, extended in place
  for (const c of chunks) {
    const field = deltaField(c);
    const last = out[out.length - 1];
    if (field !== undefined && field === lastField && last.type === c.type && last.id === c.id && last.toolCallId === c.toolCallId) {
      if (!copied) out[out.length - 1] = { ...last };
      copied = true;
      out[out.length - 1][field] += c[field];
      continue;
    }
    out.push(c);
    lastField = field;
    copied = false;
  }
  return out;
}

function optionsError(name, message) {
  return makeError({ code: "invalid_option", message: `invalid option \`${name}\`: ${message}` });
}

function json(value, name) {
  if (value === undefined) return "";
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    throw optionsError(name, "must be JSON-serializable");
  }
}

// A relative URL resolved as `fetch` resolves it (against the document's base); an absolute one,
// or one that cannot be resolved here, goes as it is.
function absolute(url) {
  try {
    return /^[a-z][\w+.-]*:/i.test(url) ? url : new URL(url, document.baseURI).href;
  } catch {
    return url; // no document (a worker), or no base to resolve against
  }
}

function headerPairs(headers) {
  if (headers == null) return undefined;
  if (typeof headers.forEach === "function" && typeof headers.get === "function") {
    const pairs = [];
    headers.forEach((v, k) => pairs.push([k, v]));
    return pairs;
  }
  return headers;
}

function storageKey(namespace, chatId) {
  return `${namespace}:v${STORAGE_VERSION}:${encodeURIComponent(chatId)}`;
}

// How the React hooks reach `#detachAll` / `#detaching` (a registered symbol, so react.js needs
// no import from here; not part of the public API).
const DETACH_ABORTS = Symbol.for("trigger-chat-wasm.detachAborts");
const LEFT_SENDS = Symbol.for("trigger-chat-wasm.leftSends");

/**
 * The `TriggerChatTransport` class, given `load`, which resolves to a function making a driver
 * from the options JSON and a random seed (the package passes the wasm-bindgen `WasmDriver`).
 */
export function createTransportClass(load) {
  let factory;
  // A failed load (the .wasm not reachable) is retried by the next call, not cached. It rejects
  // as this package's errors do (`network`, the browser's error as `cause`).
  const ready = () =>
    (factory ??= load().catch((error) => {
      factory = undefined;
      const e = makeError({
        code: "network",
        message: `could not load the WebAssembly module: ${error?.message ?? error}`,
      });
      e.cause = error;
      throw e;
    }));

  return class TriggerChatTransport {
    /** A reconnect replays the turn in flight from its start; the AI SDK replaces, not appends. */
    resumeStreamIsReplay = true;

    #o;
    #d = null;
    #loading = null;
    #pending = new Map();
    #clientDataError; // the error of a `setClientData` value that cannot be sent, until a good one
    #early = []; // setSession / removeSession / seedResumeCursor before the driver exists, in order
    #disposed = false;
    #offline = false;
    #fetches = new Map();
    #timers = new Map();
    #ops = new Map();
    #streams = new Map();
    #thrown = new Map();
    #nextThrown = 1;
    #wake = null;
    #readOnlyListeners = new Set();
    #messagesListeners = new Set();
    #connectionListeners = new Set();
    // The last `connection-state` of each chat that is not idle (frozen: handed out as is).
    #links = new Map();
    #flushing = false;
    #afterFlush = null;
    #reporting = null; // { chatId, state } while onSessionChange runs
    #writing = new Map(); // chatId → { state last written, queued: the write after the one in flight }
    #uses = 0; // calls that needed the driver, and mounts (see #loaded)
    #usesAtDispose = 0;
    // Raised by the React hooks while a chat's component unmounts (or switches chats): the
    // `chat.stop()` that useChat calls then detaches the stream instead of stopping the agent
    // (W14). `#detachAll` for every chat; `#detaching` counts per chat id.
    #detachAll = false;
    #detaching = new Map();
    // Chats whose flag just went down, until the next task: an abort that reaches us through a
    // microtask (a signal already aborted when a send got going) still counts as leaving.
    #justLeft = new Set();

    constructor(options) {
      if (options === null || typeof options !== "object") {
        throw makeError({ code: "invalid_option", message: "TriggerChatTransport: options must be an object" });
      }
      this.#o = { ...options };
      for (const name of Object.getOwnPropertyNames(TriggerChatTransport.prototype)) {
        if (name !== "constructor" && typeof this[name] === "function") this[name] = this[name].bind(this);
      }
      // In a browser, start fetching the module now; the driver itself is made on first use,
      // so an instance built and dropped during render holds nothing.
      if (typeof window !== "undefined") ready().catch(() => {});
    }

    // ---- driver plumbing ----

    // #ready() for the calls that send `clientData` (to the agent or to `startSession`).
    async #forSend() {
      const d = await this.#ready();
      if (this.#clientDataError) throw this.#clientDataError;
      return d;
    }

    async #ready() {
      // A call after dispose() uses the transport again (also while the module loads: a later
      // dispose() then wins, as it would once loaded).
      this.#uses++;
      if (this.#disposed) this.#revive();
      return this.#d ?? this.#loaded();
    }

    #loaded() {
      this.#loading ??= ready().then(async (make) => {
        const o = this.#o;
        // A watcher only reads, so it takes no part in tab coordination (as in the JS transport).
        let multiTab = !!o.multiTab && !o.watch && typeof BroadcastChannel === "function";
        if (multiTab) {
          const probe = openTabChannel();
          probe?.close();
          multiTab = !!probe;
        }
        const locks = multiTab && (await locksWork());
        const types = {};
        for (const k of ["accessToken", "startSession", "fetch", "onEvent", "onSessionChange", "baseURL"]) {
          // A callback given by a setter before the module loaded counts (the setter is applied
          // just after; one that removes a callback is too, as it would be once loaded).
          const setter = `set${k[0].toUpperCase()}${k.slice(1)}`;
          // (`null` counts as not given, as in the JS transport.)
          types[k] = typeof this.#pending.get(setter) === "function" ? "function" : typeof (o[k] ?? undefined);
        }
        const config = {
          task: o.task,
          types,
          headers: headerPairs(o.headers),
          streamTimeoutSeconds: finite(o.streamTimeoutSeconds),
          stallTimeoutMs: finite(o.stallTimeoutMs),
          sessions: o.sessions,
          multiTab,
          multiTabSend: o.multiTabSend,
          tabId: partId(),
          locks,
          watch: !!o.watch,
          headStart: o.headStart,
        };
        const p = o.persistence;
        const store = typeof p === "object" && p !== null && ["load", "save", "remove"].some((k) => typeof p[k] === "function");
        if (!(p == null || p === "localStorage" || p === "none" || typeof p?.namespace === "string" || store)) {
          throw makeError({
            code: "invalid_option",
            message: 'invalid option `persistence`: must be "localStorage", "none", { namespace } or { load, save, remove }',
          });
        }
        let d;
        try {
          d = make(json(config, "options"), Math.random() * 2 ** 52);
        } catch (e) {
          throw described(e);
        }
        this.#d = d;
        this.#multiTab = config.multiTab;
        // Disposed while the module loaded, after calls that wait for it: those go first (a
        // send claims the chat on the tab channel), then the dispose, in the order they were
        // made — as once loaded. (A call after the dispose revived the transport already.)
        const disposedMeanwhile = this.#disposed;
        this.#disposed = false;
        // `clientData` as `setClientData` takes it (a value that cannot be sent fails the sends
        // that would carry it, not the transport), unless a later one is queued below.
        if (!this.#pending.has("setClientData")) this.#set("setClientData", o.clientData);
        if (config.multiTab) this.#openChannel();
        const pending = [...[...this.#pending].map(([name, value]) => [name, [value]]), ...this.#early];
        this.#pending.clear();
        this.#early = [];
        for (const [name, args] of pending) {
          try {
            this[name](...args);
          } catch {
            // Checked when it was called (setSession); setClientData does not throw.
          }
        }
        this.#flush();
        if (disposedMeanwhile) {
          const uses = this.#usesAtDispose;
          // (After the waiting calls' continuations; unless the transport was used since.) A
          // send its page left meanwhile (the component unmounted) is still sent, as once
          // loaded: the dispose waits for it, as useTriggerChatTransport's does.
          const dispose = () => this.#uses === uses && this.dispose();
          setTimeout(() => {
            const left = this[LEFT_SENDS]();
            if (left) left.then(dispose);
            else dispose();
          }, 0);
        }
        return d;
      });
      this.#loading.catch(() => {
        if (!this.#d) this.#loading = null; // try again at the next call
      });
      return this.#loading;
    }

    #run(call) {
      if (!this.#d) return;
      this.#net(this.#d);
      call(this.#d);
      this.#flush();
    }

    // The driver learns what the browser says of the network before any call that may start a
    // request (a failure while offline waits for the network instead of counting).
    #net(d) {
      const off = offline();
      if (off !== this.#offline) {
        this.#offline = off;
        call(d, SET_OFFLINE, "", "", 0, off);
      }
    }

    #flush() {
      // An app callback that calls the transport lands here again: the running loop performs
      // what that call added after what it is performing, so actions keep the driver's order.
      if (this.#flushing) return;
      this.#flushing = true;
      const d = this.#d;
      try {
        for (;;) {
          const text = d.drain();
          if (text === "[]") return;
          for (const a of JSON.parse(text)) {
            try {
              this.#perform(a);
            } catch {
              // An action must never break the loop (app callbacks are guarded below too).
            }
          }
        }
      } finally {
        this.#flushing = false;
        const after = this.#afterFlush;
        this.#afterFlush = null;
        after?.();
      }
    }

    // Loads a chat's stored state the first time the driver meets it.
    #ensure(chatId) {
      const d = this.#d;
      if (call(d, KNOWS, chatId)) return;
      const p = this.#o.persistence ?? "localStorage";
      try {
        if (p === "localStorage" || typeof p?.namespace === "string") {
          const ns = typeof p === "string" ? "trigger-chat-wasm" : p.namespace;
          const raw = globalThis.localStorage?.getItem(storageKey(ns, chatId));
          call(d, HYDRATE, chatId, raw ?? "", raw == null ? 0 : 1);
        } else if (this.#writing.has(chatId)) {
          // A write still on its way to the store: its state, not what `load` may still hold.
          const { state } = this.#writing.get(chatId);
          call(d, HYDRATE, chatId, state ? JSON.stringify(state) : "", state ? 2 : 0);
        } else if (typeof p?.load === "function") {
          const state = p.load(chatId);
          if (typeof state?.then === "function") {
            state.then(undefined, () => {});
            throw new Error("persistence.load must return the state itself, not a Promise");
          }
          // (A state stored as JSON text is taken as such.)
          const text = typeof state === "string" ? state : JSON.stringify(state);
          call(d, HYDRATE, chatId, state == null ? "" : text, state == null ? 0 : 2);
        } else {
          call(d, HYDRATE, chatId);
        }
      } catch (e) {
        call(d, HYDRATE, chatId);
        call(d, STORAGE_FAILED, chatId, textOf(e));
      }
    }

    #error(desc) {
      if (desc.thrown !== undefined) {
        // (Forgotten only after 32 later failures: still an Error.)
        return this.#thrown.get(desc.thrown) ?? makeError({ code: "callback_failed", message: "startSession or accessToken failed" });
      }
      return makeError(desc);
    }

    #keep(value) {
      const id = this.#nextThrown++;
      this.#thrown.set(id, value);
      if (this.#thrown.size > 32) this.#thrown.delete(this.#thrown.keys().next().value);
      return id;
    }

    // An operation: the driver call returns its id; a later resolve/reject action settles it.
    #op(call, extra) {
      return new Promise((resolve, reject) => {
        this.#net(this.#d);
        let id;
        try {
          id = call(this.#d);
        } catch (error) {
          extra?.untrack?.();
          throw error;
        }
        // The op object itself (not a copy): an abort marks it (`left`) after this point.
        this.#ops.set(id, Object.assign(extra ?? {}, { resolve, reject }));
        this.#flush();
      });
    }

    #perform(a) {
      switch (a.t) {
        case "fetch":
          return this.#fetch(a);
        case "read":
          return this.#read(a.id);
        case "abort":
          return this.#abort(a.id);
        case "timer":
          this.#timers.set(
            a.id,
            setTimeout(() => {
              this.#timers.delete(a.id);
              this.#run((d) => callOn(d, TIMER, a.id));
            }, a.ms),
          );
          return;
        case "untimer":
          clearTimeout(this.#timers.get(a.id));
          this.#timers.delete(a.id);
          return;
        case "call":
          return this.#call(a);
        case "resolve": {
          const op = this.#ops.get(a.op);
          this.#ops.delete(a.op);
          if (!op) return;
          op.cleanup?.();
          op.markSettled?.();
          if (a.stream === undefined || op.left) {
            op.untrack?.();
            this.#settlers.delete(a.op);
          }
          if (a.stream !== undefined && op.left) {
            // Sent after its page left the chat: nobody reads this stream. Let it go (the turn
            // goes on; the chat's next reconnectToStream resumes it) and hand back an ended one.
            this.#run((d) => callOn(d, CANCEL, a.stream));
            return op.resolve(new ReadableStream({ start: (c) => c.close() }));
          }
          if (a.stream !== undefined) {
            if (op.sent) op.sent.started = true;
            const stream = this.#stream(a.stream, op.signal, op.stopTurn, op.chatId, op.eager);
            // However the stream ends, its action's onSettled is not called after it.
            this.#streams.get(a.stream).untrack = () => {
              op.untrack?.();
              this.#settlers.delete(a.op);
            };
            return op.resolve(stream);
          }
          return op.resolve(a.value);
        }
        case "reject": {
          const op = this.#ops.get(a.op);
          this.#ops.delete(a.op);
          this.#settlers.delete(a.op);
          op?.cleanup?.();
          op?.markSettled?.();
          op?.untrack?.();
          return op?.reject(this.#error(a.error));
        }
        case "chunks":
          return this.#chunks(a.stream);
        case "end":
        case "fail": {
          const s = this.#streams.get(a.stream);
          if (!s) return;
          this.#streams.delete(a.stream);
          s.cleanup?.();
          s.untrack?.();
          this.#unwatch();
          if (a.t === "end") s.controller?.close();
          else s.controller?.error(this.#error(a.error));
          s.done?.();
          return;
        }
        case "event": {
          const event = a.event;
          event.timestamp = Date.now();
          if (a.error) event.error = this.#error(a.error);
          const link = event.type === "connection-state" && Object.freeze({ state: event.state, pendingSends: event.pendingSends });
          if (link) {
            if (link.state === "idle" && !link.pendingSends) this.#links.delete(event.chatId);
            else this.#links.set(event.chatId, link);
          }
          try {
            caught(this.#o.onEvent?.(event));
          } catch {
            // The app's observer never breaks the transport.
          }
          if (link) {
            for (const fn of this.#connectionListeners) {
              try {
                caught(fn(event.chatId, link));
              } catch {
                // Listener errors stay with the listener.
              }
            }
          }
          return;
        }
        case "persist":
          return this.#persist(a.chat, a.state ?? null);
        case "settled": {
          const onSettled = this.#settlers.get(a.op);
          this.#settlers.delete(a.op);
          try {
            caught(onSettled?.(a.info));
          } catch {
            // Same as onEvent.
          }
          return;
        }
        case "broadcast":
          return this.#broadcast(a.message);
        case "readonly":
          for (const fn of this.#readOnlyListeners) {
            try {
              caught(fn(a.chat, a.value));
            } catch {
              // Listener errors stay with the listener.
            }
          }
          return;
        case "messages":
          for (const fn of this.#messagesListeners) {
            try {
              caught(fn(a.chat, a.messages));
            } catch {
              // Listener errors stay with the listener.
            }
          }
          return;
        case "lock":
          return this.#lock(a.chat, a.name, a.wait === 1);
        case "unlock":
          return this.#unlock(a.name);
        case "lockquery":
          return this.#lockQuery();
      }
    }

    #settlers = new Map();

    #base(endpoint, chatId) {
      const o = this.#o;
      let base;
      if (endpoint === "out" && o.streamBaseURL && typeof o.streamBaseURL === "string") base = o.streamBaseURL;
      else if (typeof o.baseURL === "function") base = o.baseURL({ endpoint, chatId });
      else base = o.baseURL ?? DEFAULT_BASE_URL;
      return String(base).replace(/\/+$/, "");
    }

    async #fetch(a) {
      const controller = typeof AbortController === "function" ? new AbortController() : null;
      const entry = { controller, reader: null };
      this.#fetches.set(a.id, entry);
      const init = {
        method: a.body === undefined ? "GET" : "POST",
        headers: Object.fromEntries(a.headers),
        signal: controller?.signal,
      };
      if (a.body !== undefined) init.body = a.body;
      const headStart = a.endpoint === "head-start";
      try {
        // (A `baseURL` function that throws fails this attempt, like a network error.)
        // (`headStart` may be relative: a `fetch` override gets it resolved, as overrides
        // written for the JS transport only ever see absolute URLs.)
        const url = headStart ? absolute(a.path) : this.#base(a.endpoint, a.chat) + a.path;
        const f = this.#o.fetch;
        const res = await (f ? f(url, init, { endpoint: a.endpoint, chatId: a.chat }) : fetch(url, init));
        if (this.#fetches.get(a.id) !== entry) {
          res.body?.cancel().catch(() => {});
          return;
        }
        // A body to read: a 2xx head-start response or a 200 `.out`.
        if (headStart ? res.ok : a.endpoint === "out" && res.status === 200) {
          entry.reader = res.body?.getReader() ?? null;
          if (!entry.reader) throw new Error(`the ${headStart ? "headStart" : "stream"} response has no body`);
          // (A `fetch` override may answer with a Response-like object without headers.)
          const h = (name) => res.headers?.get?.(name) ?? null;
          if (headStart) {
            const token = h("X-Trigger-Chat-Access-Token") ?? "";
            const pending = h("X-Trigger-Chat-Pending-Version") === "1";
            return this.#run((d) => callOn(d, HEAD_START_OPEN, a.id, pending, token));
          }
          const settled = h("X-Session-Settled") === "true";
          return this.#run((d) => callOn(d, FETCH_OPEN, a.id, settled));
        }
        // An append's answer or an error's text: small. More (a proxy's error page, a hostile
        // server) is not copied into the module: the first 64 KiB say what went wrong.
        const text = String((await res.text?.().catch(() => "")) ?? "").slice(0, 65536);
        let reset = Number(res.headers?.get?.("x-ratelimit-reset") ?? NaN);
        // A proxy's or CDN's 429 may say `Retry-After` (seconds) instead.
        const after = res.headers?.get?.("retry-after");
        if (!(reset > 0) && /^\d{1,9}$/.test(after)) reset = Date.now() + after * 1000;
        if (this.#fetches.get(a.id) !== entry) return;
        this.#fetches.delete(a.id);
        this.#run((d) => d.fetchText(a.id, res.status, text, reset, Date.now()));
      } catch (e) {
        if (this.#fetches.get(a.id) !== entry) return;
        this.#fetches.delete(a.id);
        entry.reader?.cancel().catch(() => {});
        this.#run((d) => callOn(d, FETCH_FAILED, a.id, 0, textOf(e)));
      }
    }

    async #read(id) {
      const entry = this.#fetches.get(id);
      if (!entry?.reader) return;
      try {
        let value = entry.rest;
        entry.rest = null;
        if (value) {
          // The rest of a large chunk, one slice per pull: the consumer takes each slice's
          // chunks before the next is decoded (a microtask apart, so memory stays bounded; the
          // page renders once the reader waits for the network again).
          await null;
          if (this.#fetches.get(id) !== entry) return;
        } else {
          const r = await entry.reader.read();
          if (this.#fetches.get(id) !== entry) return;
          if (r.done) {
            this.#fetches.delete(id);
            this.#run((d) => callOn(d, FETCH_END, id));
            return;
          }
          value = r.value;
        }
        // A chunk is copied into wasm memory whole, and that memory never shrinks: hand over at
        // most READ_SLICE bytes at a time so a multi-megabyte network chunk cannot grow it for good.
        if (value.length > READ_SLICE) {
          entry.rest = value.subarray(READ_SLICE);
          value = value.subarray(0, READ_SLICE);
        }
        this.#run((d) => d.fetchBytes(id, value, Date.now()));
      } catch (e) {
        if (this.#fetches.get(id) !== entry) return;
        this.#fetches.delete(id);
        this.#run((d) => callOn(d, FETCH_FAILED, id, 0, textOf(e)));
      }
    }

    #abort(id) {
      const entry = this.#fetches.get(id);
      if (!entry) return;
      this.#fetches.delete(id);
      entry.reader?.cancel().catch(() => {});
      entry.controller?.abort();
    }

    async #call(a) {
      const o = this.#o;
      try {
        const start = a.name === "startSession";
        const fn = start ? o.startSession : o.accessToken;
        // Both removed by their setters since the transport was made.
        if (typeof fn !== "function") throw makeError({ code: "missing_callback", message: `${a.name} is not set` });
        const r = await fn(start ? { taskId: o.task, chatId: a.chat, clientData: a.clientData ?? {} } : { chatId: a.chat });
        const token = typeof r === "string" ? r : r?.publicAccessToken;
        this.#run((d) => callOn(d, CALLBACK_OK, a.id, !!r?.pendingVersion, typeof token === "string" ? token : ""));
      } catch (e) {
        // An error object is passed on as thrown. Anything else (`undefined`, a string) would
        // reach the AI SDK as no error at all, which fails reading its `name`: an Error holds it.
        const thrown = this.#keep(
          (typeof e === "object" && e !== null) || typeof e === "function"
            ? e
            : Object.assign(makeError({ code: "callback_failed", message: `${a.name} failed without an Error (${e === null ? "null" : typeof e})` }), { cause: e }),
        );
        this.#run((d) => callOn(d, CALLBACK_FAILED, a.id, thrown));
      }
    }

    // A custom store's writes of one chat land in the order made: one that is async is waited
    // for, and only the latest of those made meanwhile follows it (each is the whole state).
    // One that has not settled after 10 s holds nothing back any more (a `storage-error`).
    // Meanwhile the chat's state is the one last written, not what `load` may still return.
    #write(chatId, state, run, failed) {
      const w = this.#writing.get(chatId);
      if (w) return void Object.assign(w, { state, queued: [run, failed] });
      // (Marked before it runs: a write made from inside it waits too.)
      const entry = { state, queued: null };
      this.#writing.set(chatId, entry);
      let timer;
      const next = () => {
        if (this.#writing.get(chatId) !== entry) return;
        clearTimeout(timer);
        this.#writing.delete(chatId);
        const q = entry.queued;
        if (!q) return;
        try {
          this.#write(chatId, entry.state, ...q);
        } catch (e) {
          q[1](e);
        }
      };
      let r;
      try {
        r = run();
      } catch (e) {
        failed(e);
        return next();
      }
      if (typeof r?.then !== "function") return next();
      timer = setTimeout(() => (failed(new Error("a persistence write did not settle in 10 s")), next()), 10000);
      try {
        r.then(next, (e) => (failed(e), next()));
      } catch (e) {
        failed(e);
        next();
      }
    }

    #persist(chatId, state) {
      const p = this.#o.persistence ?? "localStorage";
      // A save or remove that fails, at once or later (async), is one `storage-error`.
      const failed = (e) => this.#run((d) => call(d, STORAGE_FAILED, chatId, textOf(e)));
      try {
        if (p === "localStorage" || typeof p?.namespace === "string") {
          const ns = typeof p === "string" ? "trigger-chat-wasm" : p.namespace;
          const key = storageKey(ns, chatId);
          if (state) {
            const record = JSON.stringify({ v: STORAGE_VERSION, chatId, session: state });
            globalThis.localStorage.setItem(key, record);
          } else {
            globalThis.localStorage?.removeItem(key);
          }
        } else if (typeof p === "object" && p !== null) {
          this.#write(chatId, state, () => (state ? p.save?.(chatId, state) : p.remove?.(chatId)), failed);
        }
      } catch (e) {
        failed(e);
      }
      const outer = this.#reporting;
      this.#reporting = { chatId, state };
      try {
        caught(this.#o.onSessionChange?.(chatId, state));
      } catch {
        // A throwing persistence hook never breaks a send (the JS transport let it, W15).
      } finally {
        this.#reporting = outer;
      }
    }

    // A ReadableStream<UIMessageChunk> pulled from driver stream `id`: each pull delivers the
    // data of one batch of records; nothing is read from the network until the consumer asks.
    #stream(id, signal, stopTurn, chatId, eager = false) {
      const s = { controller: null, done: null, cleanup: null };
      this.#streams.set(id, s);
      this.#watch();
      if (signal) {
        const onAbort = () => {
          const stop = !!stopTurn && !this.#leaving(chatId);
          this.#run((d) => callOn(d, ABORT_STREAM, id, stop, partId()));
        };
        if (signal.aborted) queueMicrotask(onAbort);
        else {
          signal.addEventListener("abort", onAbort, { once: true });
          s.cleanup = () => signal.removeEventListener("abort", onAbort);
        }
      }
      return new ReadableStream({
        start: (controller) => {
          s.controller = controller;
        },
        pull: () =>
          new Promise((resolve) => {
            s.done = resolve;
            this.#run((d) => d.pull(id, Date.now()));
          }),
        cancel: () => {
          this.#streams.delete(id);
          s.cleanup?.();
          s.untrack?.();
          this.#unwatch();
          this.#run((d) => callOn(d, CANCEL, id));
        },
      }, eager ? { highWaterMark: Infinity } : undefined);
    }

    #chunks(id) {
      const s = this.#streams.get(id);
      const text = this.#d.takeChunks(id);
      // Nothing taken: the stream ended within this same batch (an event callback disposed the
      // transport or removed the chat), and its `end` action follows.
      if (!s || text === "") return;
      let bodies;
      try {
        bodies = JSON.parse(text);
      } catch {
        // A record body that is not JSON (truncated, say): the others are read one by one, by
        // where each ends (UTF-8 byte offsets), and only it is dropped, as the JS transport
        // drops it. The turn goes on.
        bodies = [];
        const bytes = new TextEncoder().encode(text);
        const utf8 = new TextDecoder();
        let start = 1; // past "["
        for (const end of (callOn(this.#d, CHUNK_ENDS, id) ?? "").split(",")) {
          try {
            bodies.push(JSON.parse(utf8.decode(bytes.subarray(start, +end))));
          } catch {
            // Not JSON: dropped.
          }
          start = +end + 1; // past ","
        }
      }
      let chunks = [];
      for (let i = 0; i < bodies.length; i++) {
        const b = bodies[i];
        const chunk = b !== null && typeof b === "object" ? b.data : undefined;
        if (chunk != null) chunks.push(chunk);
      }
      // Deltas that arrived together (a backlog: a resume, a reconnect, a slow consumer) are
      // merged, so the app renders a catch-up once per read rather than once per token.
      if (this.#o.coalesceDeltas !== false) chunks = mergeDeltas(chunks);
      for (const chunk of chunks) s.controller.enqueue(chunk);
      // A pull must deliver something or end, or a waiting reader would hang.
      if (chunks.length === 0) return queueMicrotask(() => this.#run((d) => d.pull(id, Date.now())));
      s.done?.();
    }

    // Page lifecycle, listened to while streams are open.
    #watch() {
      if (this.#wake || typeof window === "undefined" || typeof document === "undefined") return;
      let hiddenSince = 0;
      const wake = (kind) => this.#run((d) => callOn(d, WAKE, kind));
      const onOnline = () => wake(0);
      const onPageShow = (e) => e.persisted && wake(0);
      const onVisibility = () => {
        if (document.visibilityState === "hidden") return (hiddenSince = Date.now());
        const away = hiddenSince ? Date.now() - hiddenSince : 0;
        hiddenSince = 0;
        wake(away >= 30_000 ? 0 : 1);
      };
      window.addEventListener("online", onOnline);
      window.addEventListener("pageshow", onPageShow);
      document.addEventListener("visibilitychange", onVisibility);
      this.#wake = () => {
        window.removeEventListener("online", onOnline);
        window.removeEventListener("pageshow", onPageShow);
        document.removeEventListener("visibilitychange", onVisibility);
      };
    }

    #unwatch() {
      if (this.#streams.size === 0 && this.#wake) {
        this.#wake();
        this.#wake = null;
      }
    }

    // ---- multi-tab (BroadcastChannel + Web Locks) ----

    #channel = null;
    #multiTab = false;
    #locks = new Map();
    #lockWaits = new Map(); // name → AbortController of a queued lock request
    #releases = new Map(); // chatId → when this tab last released its claim
    #offPageHide = null;

    #openChannel() {
      const channel = openTabChannel();
      if (!channel) return;
      channel.unref?.(); // Node: an open channel must not keep the process alive
      channel.onmessage = (e) => {
        let text;
        try {
          text = JSON.stringify(e.data);
        } catch {
          // not JSON: not ours
        }
        // Not JSON, or longer than the driver takes (a 4 MiB conversation and its envelope):
        // counted as ignored (an empty text is unreadable) without copying it into the module.
        if (typeof text !== "string" || text.length > 4_300_000) text = "";
        this.#run((d) => call(d, TAB_MESSAGE, "", text));
      };
      this.#channel = channel;
      if (typeof window !== "undefined") {
        const onPageHide = () => this.#run((d) => call(d, PAGE_HIDE, ""));
        // Back from the back/forward cache: what this tab knew of the others may be stale.
        const onPageShow = (e) => e.persisted && this.#run((d) => call(d, REJOIN, ""));
        window.addEventListener("pagehide", onPageHide);
        window.addEventListener("pageshow", onPageShow);
        this.#offPageHide = () => {
          window.removeEventListener("pagehide", onPageHide);
          window.removeEventListener("pageshow", onPageShow);
        };
      }
    }

    // Used again after `dispose()`: the tab coordination comes back with the first call.
    #revive() {
      this.#disposed = false;
      this.#afterFlush = null;
      if (!this.#multiTab) return;
      if (!this.#channel) this.#openChannel();
      // (Also when the channel never closed: disposed and used again within one flush.)
      this.#run((d) => call(d, REJOIN, ""));
    }

    // (useMultiTabChat) When this tab last released its claim on `chatId` (0: never): a turn can
    // begin and end between two renders.
    [Symbol.for("trigger-chat-wasm.releasedAt")](chatId) {
      return this.#releases.get(chatId) ?? 0;
    }

    #broadcast(message) {
      // This tab gave a chat back (its claims and releases are the only ones it posts).
      if (message?.type === "release") this.#releases.set(message.chatId, Date.now());
      try {
        this.#channel?.postMessage(message);
      } catch {
        // A closed channel or an uncloneable message: the other tabs catch up later.
      }
    }

    // Holds the chat's writer lock until `unlock`: the browser releases it if the tab dies.
    // `wait` (multiTabSend: "queue"): queued behind the holder; `unlock` before the grant
    // cancels the request, and a cancelled request reports nothing.
    #lock(chat, name, wait) {
      const cancel = wait ? new AbortController() : null;
      if (cancel) this.#lockWaits.set(name, cancel);
      navigator.locks
        .request(name, cancel ? { signal: cancel.signal } : { ifAvailable: true }, (lock) => {
          if (this.#lockWaits.get(name) === cancel) this.#lockWaits.delete(name);
          if (!lock) return this.#run((d) => call(d, LOCK_RESULT, chat));
          return new Promise((release) => {
            this.#locks.set(name, release);
            this.#run((d) => call(d, LOCK_RESULT, chat, "", 0, 1));
          });
        })
        .catch(() => {
          if (cancel?.signal.aborted) return;
          if (this.#lockWaits.get(name) === cancel) this.#lockWaits.delete(name);
          this.#run((d) => call(d, LOCK_RESULT, chat));
        });
    }

    #unlock(name) {
      const waiting = this.#lockWaits.get(name);
      this.#lockWaits.delete(name);
      waiting?.abort();
      const release = this.#locks.get(name);
      this.#locks.delete(name);
      release?.();
    }

    async #lockQuery() {
      const queriedAt = Date.now();
      let names = null;
      try {
        const state = await navigator.locks.query();
        names = (state.held ?? []).map((l) => l.name);
      } catch {
        // Unknown (null): no claim is dropped for it; claims then expire by heartbeat only.
      }
      this.#run((d) => call(d, LOCK_STATUS, "", JSON.stringify(names), queriedAt));
    }

    /** `multiTab`: whether another tab owns the chat (this one may only watch it). */
    isReadOnly(chatId) {
      return this.#d ? !!call(this.#d, IS_READ_ONLY, chatId) : false;
    }

    /** `multiTab`: whether this tab owns the chat. */
    hasClaim(chatId) {
      return this.#d ? !!call(this.#d, HAS_CLAIM, chatId) : false;
    }

    /** `multiTab`: how many channel messages this tab could not read and ignored. */
    ignoredTabMessages() {
      return this.#d ? +call(this.#d, IGNORED_TAB_MESSAGES, "") : 0;
    }

    /** `multiTab`: `fn(chatId, isReadOnly)` on every change. */
    addReadOnlyListener(fn) {
      this.#readOnlyListeners.add(fn);
      if (this.#o.multiTab) this.#ready().catch(() => {});
    }

    removeReadOnlyListener(fn) {
      this.#readOnlyListeners.delete(fn);
    }

    /** `multiTab`: sends this tab's messages to the other tabs (versioned: stale ones lose). */
    broadcastMessages(chatId, messages) {
      // Before the module has loaded, this tab owns no chat: it has no conversation to share.
      if (!this.#d) return;
      let text;
      try {
        text = JSON.stringify(messages);
      } catch {
        return;
      }
      this.#run((d) => call(d, BROADCAST_MESSAGES, chatId, text));
    }

    /** `multiTab`: `fn(chatId, messages)` when another tab's newer conversation arrives. */
    addMessagesListener(fn) {
      this.#messagesListeners.add(fn);
      if (this.#o.multiTab) this.#ready().catch(() => {});
    }

    removeMessagesListener(fn) {
      this.#messagesListeners.delete(fn);
    }

    /**
     * The chat's connection: `{ state, pendingSends }`, `state` one of `idle`, `connecting`,
     * `live`, `reconnecting`, `offline`; `pendingSends` counts sends, actions and stops not yet
     * acknowledged by the server. Frozen, and the same object until the state changes.
     */
    connectionState(chatId) {
      return this.#links.get(chatId) ?? IDLE_LINK;
    }

    /** `fn(chatId, { state, pendingSends })` on every change (the `connection-state` event). */
    addConnectionListener(fn) {
      this.#connectionListeners.add(fn);
    }

    removeConnectionListener(fn) {
      this.#connectionListeners.delete(fn);
    }

    // ---- the ChatTransport API ----

    // A send whose signal was aborted while the module loaded never starts (unless the abort is
    // the app leaving the chat, which does not give a message up).
    // (`left`: the abort came while the module loaded, and was the app leaving the chat — judged
    // when it came, see #whileLoading.)
    #abortedEarly(signal, chatId, left) {
      if (signal?.aborted && !left && !this.#leaving(chatId)) {
        throw makeError({ code: "aborted", message: "the operation was aborted" });
      }
    }

    // Awaits the module for a send, noting whether an abort meanwhile was the app leaving the
    // chat: the flag that says so is down again by the time a slow load ends.
    async #whileLoading(signal, chatId) {
      let left = !!signal?.aborted && this.#leaving(chatId);
      const on = () => (left = this.#leaving(chatId));
      signal?.addEventListener?.("abort", on, { once: true });
      try {
        const d = await this.#forSend();
        return [d, left];
      } finally {
        signal?.removeEventListener?.("abort", on);
      }
    }

    async sendMessages(options) {
      const { chatId, trigger, messageId, messages, body, metadata, headers, abortSignal } = options;
      const [d, left] = await this.#whileLoading(abortSignal, chatId);
      this.#abortedEarly(abortSignal, chatId, left);
      this.#ensure(chatId);
      const request = {
        chatId,
        trigger,
        messageId,
        message: Array.isArray(messages) ? messages[messages.length - 1] : undefined,
        // The whole history goes only to a `headStart` handler: a chat's first turn.
        messages: this.#o.headStart && Array.isArray(messages) && call(d, GET_SESSION, chatId) === undefined ? messages : undefined,
        body,
        metadata,
        headers: headerPairs(headers),
      };
      const text = json(request, "messages");
      const op = { signal: abortSignal, stopTurn: true, chatId };
      // A new message (not an edit of an earlier one, which rewrites what follows it).
      const sent = trigger === "submit-message" && messageId == null ? request.message?.id : undefined;
      if (typeof sent === "string") [op.sent, op.untrack] = this.#track(chatId, sent);
      return this.#op((d) => {
        const id = d.sendMessages(text, partId(), Date.now());
        this.#abortable(id, abortSignal, op, left);
        return id;
      }, op);
    }

    // chatId → the messages this tab sent whose turn has not ended here, oldest first:
    // `{ messageId, started }` (`started`: the send resolved to its turn's stream).
    #sending = new Map();

    // Notes that `messageId` was sent to `chatId`: its entry, and a function (idempotent) that
    // forgets it.
    #track(chatId, messageId) {
      const entry = { messageId, started: false };
      const list = this.#sending.get(chatId) ?? [];
      list.push(entry);
      this.#sending.set(chatId, list);
      const untrack = () => {
        const at = list.indexOf(entry);
        if (at >= 0) list.splice(at, 1);
        if (list.length === 0 && this.#sending.get(chatId) === list) this.#sending.delete(chatId);
      };
      return [entry, untrack];
    }

    /**
     * The id of the oldest message this tab sent to `chatId` whose turn has not ended here:
     * waiting for another tab's turn (`multiTabSend: "queue"`), on its way, or streaming its
     * reply. `null` otherwise. `useMultiTabChat` keeps that message, and what follows it, when
     * another tab's copy of the conversation arrives.
     */
    sendingMessageId(chatId) {
      return this.#sending.get(chatId)?.[0].messageId ?? null;
    }

    // (useMultiTabChat) The oldest message of this tab for `chatId` whose send has not started
    // its turn yet (waiting for another tab's turn, or for the server to take it).
    [Symbol.for("trigger-chat-wasm.unstartedMessageId")](chatId) {
      return this.#sending.get(chatId)?.find((e) => !e.started)?.messageId ?? null;
    }

    // Whether an abort of `chatId`'s stream now is the app leaving the chat (see #detachAll).
    #leaving(chatId) {
      return this.#detachAll || this.#detaching.has(chatId) || this.#justLeft.has(chatId);
    }

    // While the send's append is in flight, its abort rejects at once (W6). When the abort is the
    // app leaving the chat, the send goes on instead (the message is not lost) and its stream is
    // detached as it arrives.
    #abortable(id, signal, op, left) {
      if (!signal) return;
      const onAbort = () => {
        if (!left && !this.#leaving(op.chatId)) return this.#run((d) => callOn(d, ABORT_OP, id));
        op.left = true;
        op.leftSettled ??= new Promise((r) => (op.markSettled = r));
      };
      if (signal.aborted) return queueMicrotask(onAbort);
      signal.addEventListener("abort", onAbort, { once: true });
      op.cleanup = () => signal.removeEventListener("abort", onAbort);
    }

    async reconnectToStream(options) {
      const d = await this.#ready();
      const { chatId, abortSignal, stopOnAbort, headers } = options;
      // Given up while the module loaded (React StrictMode's first mount, or a newer resume
      // that aborted this one): opening it now would make the newer one find the chat taken.
      if (abortSignal?.aborted) return null;
      this.#ensure(chatId);
      this.#net(d);
      let id;
      try {
        id = call(d, RECONNECT, chatId, json(headerPairs(headers), "headers"));
        if (id !== undefined) id = +id;
      } catch (e) {
        this.#flush(); // what loading the chat and the network state queued
        throw described(e);
      }
      this.#flush();
      if (id === undefined) {
        // The chat was left while its message was on its way, and that send is still going
        // (offline, or being retried): its turn is what there is to resume, once it is sent.
        const left = [...this.#ops.values()].find((o) => o.left && o.chatId === chatId);
        if (!left || abortSignal?.aborted) return null;
        let onAbort;
        const aborted = new Promise((r) => abortSignal?.addEventListener("abort", (onAbort = r), { once: true }));
        const gaveUp = await Promise.race([left.leftSettled.then(() => false), aborted.then(() => true)]);
        abortSignal?.removeEventListener("abort", onAbort);
        if (gaveUp || this.#disposed) return null;
        return this.reconnectToStream(options);
      }
      return this.#stream(id, abortSignal, !!stopOnAbort, chatId);
    }

    async sendAction(chatId, action, options = {}) {
      const { abortSignal, metadata, headers, onSettled } = options;
      const [d, left] = await this.#whileLoading(abortSignal, chatId);
      const texts = [json(action, "action"), json(metadata, "metadata"), json(headerPairs(headers), "headers")];
      this.#abortedEarly(abortSignal, chatId, left);
      this.#ensure(chatId);
      // `eager`: its stream reads on by itself (as the JS transport's does), so an action sent
      // and forgotten (`onClick={() => transport.sendAction(…)}`) still runs to its end.
      const op = { signal: abortSignal, stopTurn: true, chatId, eager: true };
      return this.#op((d) => {
        // (JSON text holds no NUL: the texts and the part id go as one, NUL-separated.)
        const id = +call(d, SEND_ACTION, chatId, [...texts, partId()].join("\0"));
        if (typeof onSettled === "function") this.#settlers.set(id, onSettled);
        this.#abortable(id, abortSignal, op, left);
        return id;
      }, op);
    }

    async sendPendingMessage(chatId, message, metadata) {
      const d = await this.#forSend();
      const texts = [json(message, "message"), json(metadata, "metadata")];
      this.#ensure(chatId);
      return this.#op((d) => +call(d, SEND_PENDING_MESSAGE, chatId, [...texts, partId()].join("\0")));
    }

    async stopGeneration(chatId) {
      await this.#ready();
      this.#ensure(chatId);
      return this.#op((d) => +call(d, STOP_GENERATION, chatId, partId()));
    }

    async start(chatId) {
      await this.#forSend();
      this.#ensure(chatId);
      return this.#op((d) => +call(d, START, chatId));
    }

    async preload(chatId) {
      await this.start(chatId);
    }

    getSession(chatId) {
      if (!this.#d) return this.#storedSession(chatId);
      this.#ensure(chatId);
      const text = call(this.#d, GET_SESSION, chatId);
      return text === undefined ? undefined : JSON.parse(text);
    }

    // Before the module is ready, a stored session can still be read.
    #storedSession(chatId) {
      const o = this.#o;
      for (let i = this.#early.length - 1; i >= 0; i--) {
        const [name, [id, state]] = this.#early[i];
        if (id === chatId && name !== "seedResumeCursor") return state; // undefined once removed
      }
      const given = o.sessions?.[chatId];
      // As the driver will take it: `null` leaves the chat to storage; an entry without a token
      // is no session.
      if (given != null) return typeof given.publicAccessToken === "string" ? given : undefined;
      const p = o.persistence ?? "localStorage";
      try {
        if (p === "localStorage" || typeof p?.namespace === "string") {
          const ns = typeof p === "string" ? "trigger-chat-wasm" : p.namespace;
          const raw = globalThis.localStorage?.getItem(storageKey(ns, chatId));
          return raw ? (JSON.parse(raw).session ?? undefined) : undefined;
        }
        if (typeof p?.load === "function") {
          // Read as `#ensure` will: JSON text is parsed, a Promise is no state (and an error).
          const state = p.load(chatId);
          if (typeof state?.then === "function") return void state.then(undefined, () => {});
          const session = typeof state === "string" ? JSON.parse(state) : state;
          return typeof session?.publicAccessToken === "string" ? session : undefined;
        }
      } catch {
        // Missing or corrupt storage reads as "no session".
      }
      return undefined;
    }

    setSession(chatId, session) {
      // The driver's own check, made here too for a call that comes before the driver exists
      // (queued: one bad state must not break the transport's construction).
      if (typeof session?.publicAccessToken !== "string" || !session.publicAccessToken) {
        throw makeError({ code: "invalid_option", message: "setSession: the session needs a publicAccessToken" });
      }
      // (Loading the module then applies it, so storage and onSessionChange see it now.)
      if (!this.#d) return void (this.#early.push(["setSession", [chatId, session]]), this.#ready().catch(() => {}));
      this.#ensure(chatId);
      const body = json(session, "session");
      // `onSessionChange` handing back the state it is being told (a two-way binding to an app
      // store) changes nothing. Applied, it could be older than a state already on its way to
      // the callback, and the two would replace each other for good.
      const r = this.#reporting;
      if (r?.chatId === chatId && (r.state === session || JSON.stringify(r.state) === body)) return;
      try {
        call(this.#d, SET_SESSION, chatId, body);
      } catch (e) {
        throw described(e);
      }
      this.#flush();
    }

    removeSession(chatId) {
      // Queued with setSession's and seedResumeCursor's, applied in the order called.
      if (!this.#d) return void (this.#early.push(["removeSession", [chatId]]), this.#ready().catch(() => {}));
      // (Loaded first: what it held is remembered, so a late echo of it does not bring it back.)
      this.#ensure(chatId);
      this.#run((d) => call(d, REMOVE_SESSION, chatId));
    }

    // The JavaScript transport's escape for a stopped turn that never wrote its turn-complete
    // (W12): there, later output stays gated out until this is called. Here a stop gates
    // nothing, so there is nothing to clear; kept so code written for it still runs.
    clearSupersedeGate(_chatId) {}

    seedResumeCursor(chatId, lastEventId) {
      if (!this.#d) return void (this.#early.push(["seedResumeCursor", [chatId, lastEventId]]), this.#ready().catch(() => {}));
      this.#ensure(chatId);
      this.#run((d) => call(d, SEED_RESUME_CURSOR, chatId, String(lastEventId)));
    }

    sessionStatus(chatId) {
      if (!this.#d) return this.#storedSession(chatId)?.closed ? "closed" : "open";
      this.#ensure(chatId);
      return call(this.#d, IS_CLOSED, chatId) ? "closed" : "open";
    }

    sessionClosedReason(chatId) {
      if (!this.#d) return this.#storedSession(chatId)?.closedReason;
      this.#ensure(chatId);
      return call(this.#d, CLOSED_REASON, chatId);
    }

    #set(name, value) {
      if (!this.#d) return void this.#pending.set(name, value);
      const o = this.#o;
      switch (name) {
        case "setOnSessionChange":
          o.onSessionChange = value;
          return;
        case "setOnEvent":
          o.onEvent = value;
          return;
        case "setFetch":
          o.fetch = value;
          return;
        case "setAccessToken":
          o.accessToken = value;
          break;
        case "setStartSession":
          o.startSession = value;
          break;
        case "setClientData":
          // Never throws (the JS transport's only stores it, and React hooks call this during
          // render): a value that cannot be sent fails the sends that would carry it instead.
          o.clientData = value;
          try {
            call(this.#d, SET_CLIENT_DATA, "", json(value, "clientData"));
            this.#clientDataError = undefined;
          } catch (e) {
            this.#clientDataError = described(e);
          }
          return;
      }
      call(this.#d, SET_CALLBACKS, "", "", typeof o.accessToken === "function", typeof o.startSession === "function");
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

    // (chatId, true) raises the flag for one chat, (chatId, false) lowers it (counted: two
    // components may show one chat); (null, on) sets it for every chat.
    [DETACH_ABORTS](chatId, on) {
      if (chatId == null) {
        this.#detachAll = !!on;
        // (Mounted again: a dispose deferred while the module loaded is called off, see #loaded.)
        if (!on) this.#uses++;
        return;
      }
      const n = (this.#detaching.get(chatId) ?? 0) + (on ? 1 : -1);
      if (n > 0) return void this.#detaching.set(chatId, n);
      if (this.#detaching.delete(chatId)) {
        this.#justLeft.add(chatId);
        setTimeout(() => this.#justLeft.delete(chatId), 0);
      }
    }

    // (useTriggerChatTransport) Settles once every send made before its page left the chat has
    // settled (sent, or failed); undefined when there is none.
    [LEFT_SENDS]() {
      const left = [...this.#ops.values()].filter((o) => o.left && o.leftSettled);
      return left.length ? Promise.all(left.map((o) => o.leftSettled)) : undefined;
    }

    /** Closes every stream this transport has open and gives up its tab claims. */
    dispose() {
      this.#disposed = true;
      this.#usesAtDispose = this.#uses;
      this.#run((d) => call(d, DISPOSE, ""));
      const close = () => {
        // (Used again meanwhile, by an app callback of the dispose's own flush: kept open.)
        if (!this.#disposed) return;
        this.#offPageHide?.();
        this.#channel?.close();
        this.#channel = null;
      };
      // Called from an app callback mid-flush: the claim releases it queued go out first.
      if (this.#flushing) this.#afterFlush = close;
      else close();
    }

    /** `ChatTransport.close` (ai@7): the same as `dispose()`. */
    close() {
      this.dispose();
    }
  };
}
