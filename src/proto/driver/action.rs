//! What the driver asks its host (the JS I/O layer) to do, and how a result or an error is
//! described to it.

#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::headers::HeaderList;
pub use crate::proto::json::{push_u64, u64_string};
use crate::proto::json::{write_json_string, Json};
use crate::proto::Error;

/// Which session channel a request is for (the `endpoint` of the `fetch` and `baseURL`
/// options' context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST …/in/append`.
    In,
    /// `GET …/out` (SSE).
    Out,
    /// `POST <headStart URL>`: the first turn through the app's own route handler. The
    /// request's `path` is that URL as given; no session token is ever sent there.
    HeadStart,
}

impl Endpoint {
    /// `"in"` / `"out"` / `"head-start"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::In => "in",
            Endpoint::Out => "out",
            Endpoint::HeadStart => "head-start",
        }
    }
}

/// The app callback a [`Action::Call`] invokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    /// `startSession({ taskId, chatId, clientData })`.
    StartSession,
    /// `accessToken({ chatId })`.
    AccessToken,
}

/// An error as the host must present it to the app.
#[derive(Clone, Debug, PartialEq)]
pub enum ErrorRef {
    /// One of the crate's typed errors (the host builds an `Error` with `code` and `status`).
    Ours(Error),
    /// A value an app callback threw; the host keeps it under this id and passes it on as is.
    Thrown(u32),
}

impl From<Error> for ErrorRef {
    fn from(error: Error) -> ErrorRef {
        ErrorRef::Ours(error)
    }
}

/// What an operation resolves to.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A stream the host wraps in a `ReadableStream` (`sendMessages`, `sendAction`).
    Stream(u32),
    /// A boolean (`stopGeneration`, `sendPendingMessage`).
    Bool(bool),
    /// Nothing (`preload`).
    Unit,
    /// The chat's `ChatSessionPersistedState` (`start`).
    Session(Json),
}

/// One thing for the host to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start an HTTP request. `path` starts with `/realtime/v1/sessions/…`; the host prefixes
    /// the base URL it resolves for `endpoint` and `chat_id`.
    Fetch {
        /// Request id (results come back under it).
        id: u32,
        /// The chat (for the `fetch` and `baseURL` options' context).
        chat_id: String,
        /// `.in` or `.out`.
        endpoint: Endpoint,
        /// The path and query after the base URL.
        path: String,
        /// Request headers, final.
        headers: HeaderList,
        /// POST body (`.in/append`); `None` for the `.out` GET.
        body: Option<String>,
    },
    /// Read the next chunk of a `.out` response body.
    Read {
        /// The request.
        fetch: u32,
    },
    /// Abort a request (its late results are ignored).
    Abort {
        /// The request.
        fetch: u32,
    },
    /// Call back `timer(id)` after `ms`.
    SetTimer {
        /// Timer id.
        id: u32,
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Cancel a timer.
    ClearTimer {
        /// Timer id.
        id: u32,
    },
    /// Invoke an app callback; report with `callback_ok` / `callback_failed`.
    Call {
        /// Call id.
        id: u32,
        /// Which callback.
        callback: Callback,
        /// The chat.
        chat_id: String,
        /// `clientData` for `startSession`.
        client_data: Option<Json>,
    },
    /// Settle an operation's promise successfully.
    Resolve {
        /// Operation id.
        op: u32,
        /// The value.
        value: Value,
    },
    /// Reject an operation's promise.
    Reject {
        /// Operation id.
        op: u32,
        /// The error.
        error: ErrorRef,
    },
    /// Chunks are ready for a stream (take them with `take_chunks`).
    Chunks {
        /// Stream id.
        stream: u32,
    },
    /// A stream ended normally.
    End {
        /// Stream id.
        stream: u32,
    },
    /// A stream failed.
    Fail {
        /// Stream id.
        stream: u32,
        /// The error.
        error: ErrorRef,
    },
    /// Call `onEvent` with this `ChatTransportEvent` (JSON object text, `error` added by the
    /// host when present).
    Event {
        /// The event without its `error` field.
        json: String,
        /// The event's `error`, if any.
        error: Option<ErrorRef>,
    },
    /// Save the chat's state and call `onSessionChange(chatId, state)`; `None` means removed.
    Persist {
        /// The chat.
        chat_id: String,
        /// `ChatSessionPersistedState` as JSON, or `None` (removed).
        state: Option<Json>,
    },
    /// Call the `onSettled` option given with operation `op` (`sendAction`).
    Settled {
        /// The `sendAction` operation.
        op: u32,
        /// `{ inputSeq, sessionInEventId, lastEventId }`.
        info: Json,
    },
    /// Post a tab-coordination message on the BroadcastChannel.
    Broadcast {
        /// The message object.
        message: Json,
    },
    /// Tell the read-only listeners.
    ReadOnly {
        /// The chat.
        chat_id: String,
        /// Whether this tab is read-only for it now.
        read_only: bool,
    },
    /// Tell the messages listeners (another tab's conversation, newer than ours).
    TabMessages {
        /// The chat.
        chat_id: String,
        /// The UI messages array.
        messages: Json,
    },
    /// `navigator.locks.request(name, { ifAvailable: true })`, or with `wait` queued behind the
    /// holder (abortable: a `LockRelease` of a lock still waited for cancels the request);
    /// report with `lock_result`.
    LockRequest {
        /// The chat whose writer lock to take.
        chat_id: String,
        /// The lock's name.
        name: String,
        /// Wait for the lock (`multiTabSend: "queue"`) rather than give up when it is held.
        wait: bool,
    },
    /// Release a held writer lock, or cancel a waiting request for it.
    LockRelease {
        /// The chat.
        chat_id: String,
        /// The lock's name.
        name: String,
    },
    /// `navigator.locks.query()`; report the held names with `lock_status`.
    LockQuery,
}

impl Action {
    /// Writes the action as the JSON object the host dispatches on (`t` is the kind).
    pub fn write(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        match self {
            Action::Fetch {
                id,
                chat_id,
                endpoint,
                path,
                headers,
                body,
            } => {
                w.str("t", "fetch")
                    .num("id", *id as u64)
                    .str("chat", chat_id);
                w.str("endpoint", endpoint.as_str()).str("path", path);
                w.key("headers");
                w.out.push('[');
                for (i, (name, value)) in headers.iter().enumerate() {
                    if i > 0 {
                        w.out.push(',');
                    }
                    w.out.push('[');
                    write_json_string(w.out, name);
                    w.out.push(',');
                    write_json_string(w.out, value);
                    w.out.push(']');
                }
                w.out.push(']');
                if let Some(body) = body {
                    w.str("body", body);
                }
            }
            Action::Read { fetch } => {
                w.str("t", "read").num("id", *fetch as u64);
            }
            Action::Abort { fetch } => {
                w.str("t", "abort").num("id", *fetch as u64);
            }
            Action::SetTimer { id, ms } => {
                w.str("t", "timer").num("id", *id as u64).num("ms", *ms);
            }
            Action::ClearTimer { id } => {
                w.str("t", "untimer").num("id", *id as u64);
            }
            Action::Call {
                id,
                callback,
                chat_id,
                client_data,
            } => {
                let name = match callback {
                    Callback::StartSession => "startSession",
                    Callback::AccessToken => "accessToken",
                };
                w.str("t", "call").num("id", *id as u64).str("name", name);
                w.str("chat", chat_id);
                if let Some(data) = client_data {
                    w.json("clientData", data);
                }
            }
            Action::Resolve { op, value } => {
                w.str("t", "resolve").num("op", *op as u64);
                match value {
                    Value::Stream(id) => {
                        w.num("stream", *id as u64);
                    }
                    Value::Bool(b) => {
                        w.key("value");
                        w.out.push_str(if *b { "true" } else { "false" });
                    }
                    Value::Unit => {}
                    Value::Session(state) => {
                        w.json("value", state);
                    }
                }
            }
            Action::Reject { op, error } => {
                w.str("t", "reject").num("op", *op as u64);
                w.error(error);
            }
            Action::Chunks { stream } => {
                w.str("t", "chunks").num("stream", *stream as u64);
            }
            Action::End { stream } => {
                w.str("t", "end").num("stream", *stream as u64);
            }
            Action::Fail { stream, error } => {
                w.str("t", "fail").num("stream", *stream as u64);
                w.error(error);
            }
            Action::Event { json, error } => {
                w.str("t", "event").key("event");
                w.out.push_str(json);
                if let Some(error) = error {
                    w.error(error);
                }
            }
            Action::Persist { chat_id, state } => {
                w.str("t", "persist").str("chat", chat_id);
                if let Some(state) = state {
                    w.json("state", state);
                }
            }
            Action::Settled { op, info } => {
                w.str("t", "settled")
                    .num("op", *op as u64)
                    .json("info", info);
            }
            Action::Broadcast { message } => {
                w.str("t", "broadcast").json("message", message);
            }
            Action::ReadOnly { chat_id, read_only } => {
                w.str("t", "readonly").str("chat", chat_id).key("value");
                w.out.push_str(if *read_only { "true" } else { "false" });
            }
            Action::TabMessages { chat_id, messages } => {
                w.str("t", "messages")
                    .str("chat", chat_id)
                    .json("messages", messages);
            }
            Action::LockRequest {
                chat_id,
                name,
                wait,
            } => {
                w.str("t", "lock").str("chat", chat_id).str("name", name);
                if *wait {
                    w.num("wait", 1);
                }
            }
            Action::LockRelease { chat_id, name } => {
                w.str("t", "unlock").str("chat", chat_id).str("name", name);
            }
            Action::LockQuery => {
                w.str("t", "lockquery");
            }
        }
        w.finish();
    }
}

/// Writes a JSON array of actions.
pub fn write_actions(actions: &[Action], out: &mut String) {
    out.push('[');
    for (i, action) in actions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        action.write(out);
    }
    out.push(']');
}

/// Writes the error description the host turns into a JS `Error`:
/// `{"code":…,"message":…,"status"?:…,"closedReason"?:…,"resetAt"?:…}` or `{"thrown":id}`.
pub fn write_error(error: &ErrorRef, out: &mut String) {
    let mut w = ObjectWriter::new(out);
    match error {
        ErrorRef::Thrown(id) => {
            w.num("thrown", *id as u64);
        }
        ErrorRef::Ours(error) => {
            w.str("code", error.code()).str("message", &error.message());
            if let Some(status) = error.status() {
                w.num("status", status as u64);
            }
            match error {
                Error::SessionClosed {
                    closed_reason: Some(reason),
                } => {
                    w.str("closedReason", reason);
                }
                Error::RateLimited {
                    reset_epoch_ms: Some(reset),
                } => {
                    w.num("resetAt", *reset);
                }
                _ => {}
            }
        }
    }
    w.finish();
}

/// A tiny writer of flat JSON objects (no `format!`: keeps the wasm small).
pub(crate) struct ObjectWriter<'a> {
    pub(crate) out: &'a mut String,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    pub(crate) fn new(out: &'a mut String) -> ObjectWriter<'a> {
        out.push('{');
        ObjectWriter { out, first: true }
    }

    pub(crate) fn key(&mut self, key: &str) -> &mut Self {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_json_string(self.out, key);
        self.out.push(':');
        self
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        write_json_string(self.out, value);
        self
    }

    pub(crate) fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        push_u64(self.out, value);
        self
    }

    pub(crate) fn json(&mut self, key: &str, value: &Json) -> &mut Self {
        self.key(key);
        value.write(self.out);
        self
    }

    fn error(&mut self, error: &ErrorRef) -> &mut Self {
        self.key("error");
        write_error(error, self.out);
        self
    }

    pub(crate) fn finish(self) {
        self.out.push('}');
    }
}
