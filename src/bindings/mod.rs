//! The `#[wasm_bindgen]` surface — the only one in the crate: [`WasmDriver`], the sans-IO
//! [`Driver`] with plain values in and out (strings, numbers, bytes), so the JS glue in
//! `pkg-template/transport.js` stays small and the wasm needs no web-sys at all.

#[allow(unused_imports)]
use crate::prelude::*;
use wasm_bindgen::prelude::*;

use crate::proto::driver::{
    header_list, write_actions, write_error, Driver, ErrorRef, SendRequest, Stored, Wake,
};
use crate::proto::json::Json;
use crate::proto::Error;

/// The transport state machine, driven by `pkg-template/transport.js`.
#[wasm_bindgen]
pub struct WasmDriver {
    inner: Driver,
    actions: String,
}

fn now(now_ms: f64) -> u64 {
    if now_ms.is_finite() && now_ms > 0.0 {
        now_ms as u64
    } else {
        0
    }
}

fn error_text(error: Error) -> String {
    let mut out = String::new();
    write_error(&ErrorRef::Ours(error), &mut out);
    out
}

/// Parses optional JSON text (`""` = absent).
fn json(text: &str, name: &str) -> Result<Option<Json>, Error> {
    if text.is_empty() {
        return Ok(None);
    }
    Json::parse(text)
        .map(Some)
        .map_err(|_| Error::InvalidOption {
            name: name.into(),
            message: "must be JSON-serializable, nested at most 512 levels deep".into(),
        })
}

#[wasm_bindgen]
impl WasmDriver {
    /// A driver for the options JSON; throws the error description (JSON text) of the first bad
    /// field.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &str, seed: f64) -> Result<WasmDriver, JsValue> {
        let options = json(options, "options").and_then(|o| {
            o.ok_or_else(|| Error::InvalidOption {
                name: "options".into(),
                message: "must be an object".into(),
            })
        });
        let driver = options
            .and_then(|o| Driver::new(&o, seed as u64))
            .map_err(thrown)?;
        Ok(WasmDriver {
            inner: driver,
            actions: String::new(),
        })
    }

    /// The pending actions as a JSON array.
    pub fn drain(&mut self) -> String {
        let actions = self.inner.drain();
        self.actions.clear();
        write_actions(&actions, &mut self.actions);
        core::mem::take(&mut self.actions)
    }

    /// `sendMessages`: returns the operation id.
    #[wasm_bindgen(js_name = sendMessages)]
    pub fn send_messages(&mut self, request: &str, part_id: &str, now_ms: f64) -> u32 {
        let parsed =
            json(request, "request").and_then(|r| SendRequest::from_json(&r.unwrap_or(Json::Null)));
        match parsed {
            Ok(request) => self.inner.send_messages(request, part_id, now(now_ms)),
            Err(error) => self.inner.failed_op(error),
        }
    }

    /// The consumer pulls from stream `id`.
    pub fn pull(&mut self, id: u32, now_ms: f64) {
        self.inner.pull(id, now(now_ms));
    }

    /// The record bodies announced by the last `chunks` action of stream `id`.
    #[wasm_bindgen(js_name = takeChunks)]
    pub fn take_chunks(&mut self, id: u32) -> String {
        self.inner.take_chunks(id)
    }

    /// The next body chunk of a `.out` response.
    #[wasm_bindgen(js_name = fetchBytes)]
    pub fn fetch_bytes(&mut self, id: u32, bytes: &[u8], now_ms: f64) {
        self.inner.fetch_bytes(id, bytes, now(now_ms));
    }

    /// A request completed with a whole body (`reset`: `x-ratelimit-reset`, NaN when absent).
    #[wasm_bindgen(js_name = fetchText)]
    pub fn fetch_text(&mut self, id: u32, status: u16, text: &str, reset: f64, now_ms: f64) {
        let reset = (reset.is_finite() && reset >= 0.0).then_some(reset as u64);
        self.inner.fetch_text(id, status, text, reset, now(now_ms));
    }

    /// Every call off the hot path, by number (`crate::ops`, which says what `chat`, `text`,
    /// `a` and `b` are for each): `"1"` for true, a number's digits, JSON text, or nothing;
    /// throws the error description of an unusable `setSession` state, client data or
    /// `reconnectToStream` headers.
    pub fn call(
        &mut self,
        op: u8,
        chat: &str,
        text: &str,
        a: f64,
        b: f64,
        now_ms: f64,
    ) -> Result<Option<String>, JsValue> {
        use crate::ops::*;
        let now = now(now_ms);
        let d = &mut self.inner;
        let yes = |v: bool| v.then(|| String::from("1"));
        let number = |n: u32| Some(crate::proto::driver::u64_string(u64::from(n)));
        Ok(match op {
            KNOWS => yes(d.knows(chat)),
            STOP_GENERATION => number(d.stop_generation(chat, text, now)),
            START => number(d.start(chat, now)),
            GET_SESSION => d.get_session(chat).map(|s| s.to_json_string()),
            IS_CLOSED => yes(d.is_closed(chat)),
            CLOSED_REASON => d.closed_reason(chat),
            IS_READ_ONLY => yes(d.is_read_only(chat)),
            HAS_CLAIM => yes(d.has_claim(chat)),
            IGNORED_TAB_MESSAGES => number(d.ignored_tab_messages()),
            CHUNK_ENDS => d.chunk_ends(a as u32),
            SEND_ACTION | SEND_PENDING_MESSAGE => {
                // `text`: the JSON texts and the part id, NUL-separated (JSON text has none).
                let mut parts = text.split('\0');
                let mut next = || parts.next().unwrap_or_default();
                let (first, metadata) = (next(), next());
                let parsed = if op == SEND_ACTION {
                    let (headers, part_id) = (next(), next());
                    (|| {
                        let action = json(first, "action")?;
                        let metadata = json(metadata, "metadata")?;
                        let headers = header_list(json(headers, "headers")?.as_ref(), "headers")?;
                        Ok(d.send_action(chat, action, metadata, headers, part_id, now))
                    })()
                } else {
                    let part_id = next();
                    json(first, "message").and_then(|message| {
                        let metadata = json(metadata, "metadata")?;
                        let message = message.ok_or_else(|| Error::InvalidOption {
                            name: "message".into(),
                            message: "is required".into(),
                        })?;
                        Ok(d.send_pending_message(chat, message, metadata, part_id, now))
                    })
                };
                number(parsed.unwrap_or_else(|error| d.failed_op(error)))
            }
            RECONNECT => {
                let headers = json(text, "headers")
                    .and_then(|h| header_list(h.as_ref(), "headers"))
                    .map_err(thrown)?;
                d.reconnect(chat, headers, now).and_then(number)
            }
            _ => {
                self.act(op, chat, text, a, b, now)?;
                None
            }
        })
    }
}

impl WasmDriver {
    /// The calls of [`WasmDriver::call`] that answer nothing.
    fn act(
        &mut self,
        op: u8,
        chat: &str,
        text: &str,
        a: f64,
        b: f64,
        now: u64,
    ) -> Result<(), JsValue> {
        use crate::ops::*;
        let id = a as u32;
        let flag = b != 0.0;
        let d = &mut self.inner;
        match op {
            HYDRATE => {
                let stored = match id {
                    1 => Stored::Record(text),
                    2 => Stored::Shape(text),
                    _ => Stored::Nothing,
                };
                d.hydrate(chat, stored, now);
            }
            STORAGE_FAILED => d.storage_failed(chat, text),
            ABORT_OP => d.abort_op(id, now),
            ABORT_STREAM => d.abort_stream(id, flag, text, now),
            CANCEL => d.cancel(id, now),
            WAKE => d.wake(
                if id == 0 {
                    Wake::Reconnect
                } else {
                    Wake::RetryNow
                },
                now,
            ),
            SET_OFFLINE => d.set_offline(flag, now),
            TIMER => d.timer(id, now),
            FETCH_OPEN => d.fetch_open(id, flag, now),
            HEAD_START_OPEN => d.head_start_open(id, text, flag, now),
            FETCH_END => d.fetch_end(id, now),
            FETCH_FAILED => d.fetch_failed(id, text, now),
            CALLBACK_OK => d.callback_ok(id, text, flag, now),
            CALLBACK_FAILED => d.callback_failed(id, b as u32, now),
            SET_SESSION => {
                let state = json(text, "session").map_err(thrown)?;
                d.set_session(chat, &state.unwrap_or(Json::Null), now)
                    .map_err(thrown)?;
            }
            REMOVE_SESSION => d.remove_session(chat, now),
            SEED_RESUME_CURSOR => d.seed_resume_cursor(chat, text),
            SET_CLIENT_DATA => d.set_client_data(json(text, "clientData").map_err(thrown)?),
            SET_CALLBACKS => d.set_callbacks(a != 0.0, flag),
            DISPOSE => d.dispose(now),
            LOCK_RESULT => d.lock_result(chat, flag, now),
            LOCK_STATUS => {
                let names: Option<Vec<String>> = json(text, "held").ok().flatten().and_then(|j| {
                    j.as_array().map(|a| {
                        a.iter()
                            .filter_map(|n| n.as_str().map(str::to_owned))
                            .collect()
                    })
                });
                d.lock_status(names.as_deref(), self::now(a), now);
            }
            TAB_MESSAGE => d.tab_message(text, now),
            REJOIN => d.rejoin(now),
            PAGE_HIDE => d.page_hide(now),
            BROADCAST_MESSAGES => d.broadcast_messages(chat, text, now),
            _ => {}
        }
        Ok(())
    }
}

/// An error description for JS to throw.
fn thrown(error: Error) -> JsValue {
    JsValue::from_str(&error_text(error))
}
