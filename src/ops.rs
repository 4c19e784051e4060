//! The numbers of the driver's calls off the hot path, which all go through one export,
//! `WasmDriver::call(op, chat, text, a, b, now)` (`src/bindings`): each export costs a shim in
//! the module and another in its JS glue, so one export for some thirty rarely made calls keeps
//! both smaller (≈ 4 KiB gzip together). `chat` and `text` are its string arguments, `a` and `b`
//! its numbers (a flag is `b != 0`); it answers text (`"1"` for true, a number's digits, JSON)
//! or nothing. `pkg-template/transport.js` declares the same constants, and a native test
//! (`tests/ops.rs`) keeps the two in step.

macro_rules! ops {
    ($($(#[$doc:meta])* $name:ident = $n:literal,)*) => {
        $($(#[$doc])* pub const $name: u8 = $n;)*
        /// Every call's name and number.
        pub const ALL: &[(&str, u8)] = &[$((stringify!($name), $n),)*];
    };
}

ops! {
    /// `chat`: whether its stored state is loaded (`"1"` or nothing).
    KNOWS = 0,
    /// `chat`, `text` its stored state, `a` what that is: 0 nothing, 1 a localStorage record,
    /// 2 a persisted state as JSON.
    HYDRATE = 1,
    /// `chat`, `text` why storage failed.
    STORAGE_FAILED = 2,
    /// `chat`, `text` a part id: `stopGeneration`; the operation id.
    STOP_GENERATION = 3,
    /// `chat`: `start` / `preload`; the operation id.
    START = 4,
    /// `a` an operation whose caller's signal fired.
    ABORT_OP = 5,
    /// `a` a stream whose caller's signal fired, `b` whether it stops its turn (with part id
    /// `text`).
    ABORT_STREAM = 6,
    /// `a` a stream its consumer cancelled.
    CANCEL = 7,
    /// `a`: 0 reconnect now, 1 retry now.
    WAKE = 8,
    /// `b`: whether `navigator.onLine` is `false`.
    SET_OFFLINE = 9,
    /// `a` a timer that fired.
    TIMER = 10,
    /// `a` a `.out` request answered 200, `b` with `X-Session-Settled: true`.
    FETCH_OPEN = 11,
    /// `a` a `headStart` request answered 2xx, `text` its token (empty when missing), `b` its
    /// pending-version flag.
    HEAD_START_OPEN = 12,
    /// `a` a `.out` body that ended.
    FETCH_END = 13,
    /// `a` a request or body read that failed, `text` why.
    FETCH_FAILED = 14,
    /// `a` an app callback that returned token `text` (`b`: its `pendingVersion`).
    CALLBACK_OK = 15,
    /// `a` an app callback that threw, `b` the id the glue keeps the thrown value under.
    CALLBACK_FAILED = 16,
    /// `chat`: its state as JSON, or nothing.
    GET_SESSION = 17,
    /// `chat`, `text` its new state as JSON; throws the error description of a bad state.
    SET_SESSION = 18,
    /// `chat`: `removeSession`.
    REMOVE_SESSION = 19,
    /// `chat`, `text` a `lastEventId`: `seedResumeCursor`.
    SEED_RESUME_CURSOR = 20,
    /// `chat`: whether its session is closed (`"1"` or nothing).
    IS_CLOSED = 21,
    /// `chat`: why its session was closed, or nothing.
    CLOSED_REASON = 22,
    /// `text` the client data as JSON (empty: none); throws the error description of unusable
    /// JSON.
    SET_CLIENT_DATA = 23,
    /// `a`: whether `accessToken` exists now, `b`: whether `startSession` does.
    SET_CALLBACKS = 24,
    /// `dispose()`.
    DISPOSE = 25,
    /// `chat`, `b`: whether its writer lock was granted.
    LOCK_RESULT = 26,
    /// `text` the held lock names as a JSON array (anything else: the query failed), `a` when
    /// it was asked.
    LOCK_STATUS = 27,
    /// `text` a `BroadcastChannel` message.
    TAB_MESSAGE = 28,
    /// The transport is used again after `dispose`, or shown from the back/forward cache.
    REJOIN = 29,
    /// `pagehide`.
    PAGE_HIDE = 30,
    /// `chat`, `text` its conversation as JSON: `broadcastMessages`.
    BROADCAST_MESSAGES = 31,
    /// `chat`: whether another tab owns it (`"1"` or nothing).
    IS_READ_ONLY = 32,
    /// `chat`: whether this tab owns it (`"1"` or nothing).
    HAS_CLAIM = 33,
    /// How many tab messages were ignored.
    IGNORED_TAB_MESSAGES = 34,
    /// `chat`, `text` per-request headers as JSON: `reconnectToStream`; the stream id, or
    /// nothing when nothing can be streaming; throws the error description of unusable
    /// headers.
    RECONNECT = 35,
    /// `a` a stream: where the bodies of the text it last took end, as UTF-8 byte offsets
    /// (`"12,40"`), for a host whose `JSON.parse` of them all failed.
    CHUNK_ENDS = 36,
    /// `chat`, `text` the action, metadata and per-request headers as JSON texts (empty: none)
    /// and a part id, NUL-separated: `sendAction`; the operation id.
    SEND_ACTION = 37,
    /// `chat`, `text` the message and metadata as JSON texts and a part id, NUL-separated:
    /// `sendPendingMessage`; the operation id.
    SEND_PENDING_MESSAGE = 38,
}
