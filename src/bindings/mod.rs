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
            .map_err(|e| JsValue::from_str(&error_text(e)))?;
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

    /// Whether the chat's stored state is loaded.
    pub fn knows(&self, chat: &str) -> bool {
        self.inner.knows(chat)
    }

    /// Loads a chat's stored state: `kind` 0 nothing, 1 a localStorage record, 2 a persisted
    /// state object as JSON.
    pub fn hydrate(&mut self, chat: &str, kind: u8, text: &str) {
        let stored = match kind {
            1 => Stored::Record(text),
            2 => Stored::Shape(text),
            _ => Stored::Nothing,
        };
        self.inner.hydrate(chat, stored);
    }

    /// Storage failed for a chat (`storage-error`, once per chat).
    #[wasm_bindgen(js_name = storageFailed)]
    pub fn storage_failed(&mut self, chat: &str, message: &str) {
        self.inner.storage_failed(chat, message);
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

    /// `sendAction`: returns the operation id.
    #[wasm_bindgen(js_name = sendAction)]
    pub fn send_action(
        &mut self,
        chat: &str,
        action: &str,
        metadata: &str,
        headers: &str,
        part_id: &str,
        now_ms: f64,
    ) -> u32 {
        let parsed = (|| {
            let action = json(action, "action")?;
            let metadata = json(metadata, "metadata")?;
            let headers = header_list(json(headers, "headers")?.as_ref(), "headers")?;
            Ok::<_, Error>((action, metadata, headers))
        })();
        match parsed {
            Ok((action, metadata, headers)) => {
                self.inner
                    .send_action(chat, action, metadata, headers, part_id, now(now_ms))
            }
            Err(error) => self.inner.failed_op(error),
        }
    }

    /// `stopGeneration`: returns the operation id.
    #[wasm_bindgen(js_name = stopGeneration)]
    pub fn stop_generation(&mut self, chat: &str, part_id: &str, now_ms: f64) -> u32 {
        self.inner.stop_generation(chat, part_id, now(now_ms))
    }

    /// `sendPendingMessage`: returns the operation id.
    #[wasm_bindgen(js_name = sendPendingMessage)]
    pub fn send_pending_message(
        &mut self,
        chat: &str,
        message: &str,
        metadata: &str,
        part_id: &str,
        now_ms: f64,
    ) -> u32 {
        let parsed = json(message, "message").and_then(|m| Ok((m, json(metadata, "metadata")?)));
        match parsed {
            Ok((Some(message), metadata)) => {
                self.inner
                    .send_pending_message(chat, message, metadata, part_id, now(now_ms))
            }
            Ok((None, _)) => self.inner.failed_op(Error::InvalidOption {
                name: "message".into(),
                message: "is required".into(),
            }),
            Err(error) => self.inner.failed_op(error),
        }
    }

    /// `start` / `preload`: returns the operation id.
    pub fn start(&mut self, chat: &str, now_ms: f64) -> u32 {
        self.inner.start(chat, now(now_ms))
    }

    /// `reconnectToStream`: the stream id, or `undefined` when nothing can be streaming; throws
    /// the error description of unusable `headers`.
    pub fn reconnect(
        &mut self,
        chat: &str,
        headers: &str,
        now_ms: f64,
    ) -> Result<Option<u32>, JsValue> {
        let headers = json(headers, "headers")
            .and_then(|h| header_list(h.as_ref(), "headers"))
            .map_err(|e| JsValue::from_str(&error_text(e)))?;
        Ok(self.inner.reconnect(chat, headers, now(now_ms)))
    }

    /// The consumer pulls from stream `id`.
    pub fn pull(&mut self, id: u32, now_ms: f64) {
        self.inner.pull(id, now(now_ms));
    }

    /// The consumer cancelled stream `id`.
    pub fn cancel(&mut self, id: u32, now_ms: f64) {
        self.inner.cancel(id, now(now_ms));
    }

    /// The record bodies announced by the last `chunks` action of stream `id`.
    #[wasm_bindgen(js_name = takeChunks)]
    pub fn take_chunks(&mut self, id: u32) -> String {
        self.inner.take_chunks(id)
    }

    /// The caller's abort signal fired during operation `op`.
    #[wasm_bindgen(js_name = abortOp)]
    pub fn abort_op(&mut self, op: u32, now_ms: f64) {
        self.inner.abort_op(op, now(now_ms));
    }

    /// The caller's abort signal fired for stream `id` (`stop_turn`: the stream owns its turn).
    #[wasm_bindgen(js_name = abortStream)]
    pub fn abort_stream(&mut self, id: u32, stop_turn: bool, part_id: &str, now_ms: f64) {
        self.inner.abort_stream(id, stop_turn, part_id, now(now_ms));
    }

    /// A lifecycle signal: 0 reconnect now, 1 retry now.
    pub fn wake(&mut self, kind: u8, now_ms: f64) {
        let wake = if kind == 0 {
            Wake::Reconnect
        } else {
            Wake::RetryNow
        };
        self.inner.wake(wake, now(now_ms));
    }

    /// A 200 `.out` response arrived.
    #[wasm_bindgen(js_name = fetchOpen)]
    pub fn fetch_open(&mut self, id: u32, settled: bool, now_ms: f64) {
        self.inner.fetch_open(id, settled, now(now_ms));
    }

    /// A 2xx `headStart` response arrived (`token`: its `X-Trigger-Chat-Access-Token`, empty
    /// when missing).
    #[wasm_bindgen(js_name = headStartOpen)]
    pub fn head_start_open(&mut self, id: u32, token: &str, pending_version: bool, now_ms: f64) {
        self.inner
            .head_start_open(id, token, pending_version, now(now_ms));
    }

    /// The next body chunk of a `.out` response.
    #[wasm_bindgen(js_name = fetchBytes)]
    pub fn fetch_bytes(&mut self, id: u32, bytes: &[u8], now_ms: f64) {
        self.inner.fetch_bytes(id, bytes, now(now_ms));
    }

    /// A `.out` body ended.
    #[wasm_bindgen(js_name = fetchEnd)]
    pub fn fetch_end(&mut self, id: u32, now_ms: f64) {
        self.inner.fetch_end(id, now(now_ms));
    }

    /// A request completed with a whole body (`reset`: `x-ratelimit-reset`, NaN when absent).
    #[wasm_bindgen(js_name = fetchText)]
    pub fn fetch_text(&mut self, id: u32, status: u16, text: &str, reset: f64, now_ms: f64) {
        let reset = (reset.is_finite() && reset >= 0.0).then_some(reset as u64);
        self.inner.fetch_text(id, status, text, reset, now(now_ms));
    }

    /// A request or body read failed.
    #[wasm_bindgen(js_name = fetchFailed)]
    pub fn fetch_failed(&mut self, id: u32, message: &str, now_ms: f64) {
        self.inner.fetch_failed(id, message, now(now_ms));
    }

    /// `navigator.onLine === false` changed (reported before the next call).
    #[wasm_bindgen(js_name = setOffline)]
    pub fn set_offline(&mut self, offline: bool, now_ms: f64) {
        self.inner.set_offline(offline, now(now_ms));
    }

    /// Timer `id` fired.
    pub fn timer(&mut self, id: u32, now_ms: f64) {
        self.inner.timer(id, now(now_ms));
    }

    /// An app callback returned a token.
    #[wasm_bindgen(js_name = callbackOk)]
    pub fn callback_ok(&mut self, call: u32, token: &str, pending_version: bool, now_ms: f64) {
        self.inner
            .callback_ok(call, token, pending_version, now(now_ms));
    }

    /// An app callback threw (the glue keeps the value as `thrown`).
    #[wasm_bindgen(js_name = callbackFailed)]
    pub fn callback_failed(&mut self, call: u32, thrown: u32, now_ms: f64) {
        self.inner.callback_failed(call, thrown, now(now_ms));
    }

    /// `getSession`: the persisted state as JSON text.
    #[wasm_bindgen(js_name = getSession)]
    pub fn get_session(&self, chat: &str) -> Option<String> {
        self.inner.get_session(chat).map(|s| s.to_json_string())
    }

    /// `setSession`; throws the error description on a bad state.
    #[wasm_bindgen(js_name = setSession)]
    pub fn set_session(&mut self, chat: &str, state: &str, now_ms: f64) -> Result<(), JsValue> {
        json(state, "session")
            .and_then(|s| {
                let state = s.unwrap_or(Json::Null);
                self.inner.set_session(chat, &state, now(now_ms))
            })
            .map_err(|e| JsValue::from_str(&error_text(e)))
    }

    /// `removeSession`.
    #[wasm_bindgen(js_name = removeSession)]
    pub fn remove_session(&mut self, chat: &str, now_ms: f64) {
        self.inner.remove_session(chat, now(now_ms));
    }

    /// `seedResumeCursor`.
    #[wasm_bindgen(js_name = seedResumeCursor)]
    pub fn seed_resume_cursor(&mut self, chat: &str, last_event_id: &str) {
        self.inner.seed_resume_cursor(chat, last_event_id);
    }

    /// Whether the session is closed.
    #[wasm_bindgen(js_name = isClosed)]
    pub fn is_closed(&self, chat: &str) -> bool {
        self.inner.is_closed(chat)
    }

    /// Why the session was closed.
    #[wasm_bindgen(js_name = closedReason)]
    pub fn closed_reason(&self, chat: &str) -> Option<String> {
        self.inner.closed_reason(chat)
    }

    /// `setClientData` (JSON text, `""` = none); throws on unserializable data.
    #[wasm_bindgen(js_name = setClientData)]
    pub fn set_client_data(&mut self, client_data: &str) -> Result<(), JsValue> {
        let data =
            json(client_data, "clientData").map_err(|e| JsValue::from_str(&error_text(e)))?;
        self.inner.set_client_data(data);
        Ok(())
    }

    /// Which of `accessToken` / `startSession` exist now.
    #[wasm_bindgen(js_name = setCallbacks)]
    pub fn set_callbacks(&mut self, has_access_token: bool, has_start_session: bool) {
        self.inner
            .set_callbacks(has_access_token, has_start_session);
    }

    /// `dispose()`.
    pub fn dispose(&mut self, now_ms: f64) {
        self.inner.dispose(now(now_ms));
    }

    /// `multiTab`: the answer to a `lock` action.
    #[wasm_bindgen(js_name = lockResult)]
    pub fn lock_result(&mut self, chat: &str, granted: bool, now_ms: f64) {
        self.inner.lock_result(chat, granted, now(now_ms));
    }

    /// `multiTab`: the answer to a `lockquery` action (held lock names as a JSON array, or
    /// anything else when the query failed).
    #[wasm_bindgen(js_name = lockStatus)]
    pub fn lock_status(&mut self, held: &str, queried_at_ms: f64, now_ms: f64) {
        let names: Option<Vec<String>> = json(held, "held").ok().flatten().and_then(|j| {
            j.as_array().map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
        });
        self.inner
            .lock_status(names.as_deref(), now(queried_at_ms), now(now_ms));
    }

    /// `multiTab`: a BroadcastChannel message (JSON text).
    #[wasm_bindgen(js_name = tabMessage)]
    pub fn tab_message(&mut self, text: &str, now_ms: f64) {
        self.inner.tab_message(text, now(now_ms));
    }

    /// `multiTab`: the transport is used again after `dispose`, or the page is shown from the
    /// back/forward cache (`pageshow` with `persisted`).
    pub fn rejoin(&mut self, now_ms: f64) {
        self.inner.rejoin(now(now_ms));
    }

    /// `multiTab`: `pagehide`.
    #[wasm_bindgen(js_name = pageHide)]
    pub fn page_hide(&mut self, now_ms: f64) {
        self.inner.page_hide(now(now_ms));
    }

    /// `broadcastMessages(chatId, messages)` (messages as JSON text).
    #[wasm_bindgen(js_name = broadcastMessages)]
    pub fn broadcast_messages(&mut self, chat: &str, messages: &str, now_ms: f64) {
        self.inner.broadcast_messages(chat, messages, now(now_ms));
    }

    /// `isReadOnly(chatId)`.
    #[wasm_bindgen(js_name = isReadOnly)]
    pub fn is_read_only(&self, chat: &str) -> bool {
        self.inner.is_read_only(chat)
    }

    /// `ignoredTabMessages()`.
    #[wasm_bindgen(js_name = ignoredTabMessages)]
    pub fn ignored_tab_messages(&self) -> u32 {
        self.inner.ignored_tab_messages()
    }

    /// `hasClaim(chatId)`.
    #[wasm_bindgen(js_name = hasClaim)]
    pub fn has_claim(&self, chat: &str) -> bool {
        self.inner.has_claim(chat)
    }
}
