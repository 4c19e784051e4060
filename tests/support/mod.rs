//! Shared helpers of the browser test suites (tests/web_*.rs). They drive the package's real
//! `TriggerChatTransport` — `pkg-template/transport.js` (loaded as a module snippet) around the
//! crate's `WasmDriver` — against the emulator, with option objects whose callbacks call the
//! emulator's customer endpoints like a real app.
#![allow(dead_code)]

use js_sys::{Object, Promise, Reflect};
use trigger_chat_wasm::bindings::WasmDriver;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The emulator (`www/server`) started by `scripts/test`; with `wasm-pack test`, start it
/// yourself: `cargo run -p chat-devserver -- --port 8787`.
pub const SERVER: &str = match option_env!("CHAT_SERVER_URL") {
    Some(url) => url,
    None => "http://127.0.0.1:8787",
};

#[wasm_bindgen(module = "/pkg-template/transport.js")]
extern "C" {
    #[wasm_bindgen(js_name = createTransportClass)]
    fn create_transport_class(load: &js_sys::Function) -> JsValue;
    /// How the host merges the deltas of one read (`coalesceDeltas`).
    #[wasm_bindgen(js_name = mergeDeltas)]
    pub fn merge_deltas(chunks: &JsValue) -> JsValue;
}

/// The package's `TriggerChatTransport`, as JS sees it.
#[wasm_bindgen]
extern "C" {
    #[derive(Clone)]
    pub type Transport;
    #[wasm_bindgen(method, js_name = sendMessages)]
    pub fn send_messages(this: &Transport, request: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = reconnectToStream)]
    pub fn reconnect_to_stream(this: &Transport, request: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = sendAction)]
    pub fn send_action(
        this: &Transport,
        chat_id: &str,
        action: &JsValue,
        options: &JsValue,
    ) -> Promise;
    #[wasm_bindgen(method, js_name = stopGeneration)]
    pub fn stop_generation(this: &Transport, chat_id: &str) -> Promise;
    #[wasm_bindgen(method, js_name = sendPendingMessage)]
    pub fn send_pending_message(this: &Transport, chat_id: &str, message: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = getSession)]
    pub fn get_session(this: &Transport, chat_id: &str) -> JsValue;
    #[wasm_bindgen(method, catch, js_name = setSession)]
    pub fn set_session(this: &Transport, chat_id: &str, session: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, js_name = removeSession)]
    pub fn remove_session(this: &Transport, chat_id: &str);
    #[wasm_bindgen(method, js_name = setStartSession)]
    pub fn set_start_session(this: &Transport, callback: &JsValue);
    #[wasm_bindgen(method, js_name = setAccessToken)]
    pub fn set_access_token(this: &Transport, callback: &JsValue);
    #[wasm_bindgen(method, js_name = seedResumeCursor)]
    pub fn seed_resume_cursor(this: &Transport, chat_id: &str, last_event_id: &str);
    #[wasm_bindgen(method, js_name = sessionStatus)]
    pub fn session_status(this: &Transport, chat_id: &str) -> String;
    #[wasm_bindgen(method, js_name = setClientData)]
    pub fn set_client_data(this: &Transport, data: &JsValue);
    #[wasm_bindgen(method, js_name = setOnSessionChange)]
    pub fn set_on_session_change(this: &Transport, callback: &JsValue);
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Transport);
    #[wasm_bindgen(method, js_name = isReadOnly)]
    pub fn is_read_only(this: &Transport, chat_id: &str) -> bool;
    #[wasm_bindgen(method, js_name = hasClaim)]
    pub fn has_claim(this: &Transport, chat_id: &str) -> bool;
    #[wasm_bindgen(method, js_name = ignoredTabMessages)]
    pub fn ignored_tab_messages(this: &Transport) -> u32;
    #[wasm_bindgen(method, js_name = connectionState)]
    pub fn connection_state(this: &Transport, chat_id: &str) -> JsValue;
    #[wasm_bindgen(method, js_name = broadcastMessages)]
    pub fn broadcast_messages(this: &Transport, chat_id: &str, messages: &JsValue);
}

#[wasm_bindgen(inline_js = r#"
export function newTransport(Class, options) { return new Class(options); }

export function makeOptions(base, extra) {
  const calls = { startSession: 0, accessToken: 0, events: [], sessions: [] };
  const options = {
    task: "chat-agent",
    baseURL: base,
    persistence: "none",
    startSession: async ({ taskId, chatId, clientData }) => {
      calls.startSession++;
      const res = await fetch(`${base}/api/chat/${encodeURIComponent(chatId)}/start`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ taskId, clientData }),
      });
      if (!res.ok) throw new Error(`start failed: ${res.status}`);
      return await res.json();
    },
    accessToken: async ({ chatId }) => {
      calls.accessToken++;
      const res = await fetch(`${base}/api/chat/${encodeURIComponent(chatId)}/token`, { method: "POST" });
      if (!res.ok) throw new Error(`token failed: ${res.status}`);
      const body = await res.json();
      return body.publicAccessToken ?? body.token;
    },
    onEvent: (event) => calls.events.push(event),
    onSessionChange: (chatId, session) => calls.sessions.push([chatId, session]),
    ...(extra ?? {}),
  };
  return { options, calls };
}

export function userMessage(id, text) {
  return { id, role: "user", parts: [{ type: "text", text }] };
}

export function sendRequest(chatId, messages, extra) {
  return { trigger: "submit-message", chatId, messageId: undefined, messages, abortSignal: undefined, ...(extra ?? {}) };
}

export async function readAll(stream) {
  const chunks = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  reader.releaseLock();
  return chunks;
}

export async function readN(stream, n) {
  const chunks = [];
  const reader = stream.getReader();
  while (chunks.length < n) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  reader.releaseLock();
  return chunks;
}

export async function readUntil(stream, type, count) {
  const chunks = [];
  const reader = stream.getReader();
  let seen = 0;
  while (seen < count) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    if (value.type === type) seen++;
  }
  reader.releaseLock();
  return chunks;
}

// "open" when no read settles within `ms` (then cancels the stream), "done" or "chunk" otherwise.
export async function stateAfter(stream, ms) {
  const reader = stream.getReader();
  const next = reader.read().then(({ done }) => (done ? "done" : "chunk"), () => "error");
  const state = await Promise.race([next, new Promise((r) => setTimeout(() => r("open"), ms))]);
  await reader.cancel();
  return state;
}

export function textOf(chunks) {
  return chunks.filter((c) => c.type === "text-delta").map((c) => c.delta).join("");
}

export function types(chunks) {
  return chunks.map((c) => c.type);
}

export async function admin(base, chatId, path, method, body) {
  const res = await fetch(`${base}/__admin/chats/${encodeURIComponent(chatId)}/${path}`, {
    method: method ?? "GET",
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function newChatId(prefix) {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

// The page going away (or into the back/forward cache): what a tab sees before it is closed.
export function pageHide() { window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false })); }
export function storageSet(key, value) { localStorage.setItem(key, value); }
export function storageGet(key) { return localStorage.getItem(key) ?? undefined; }

// Records what a transport's tab listeners see.
export function listen(t) {
  const seen = { readOnly: [], messages: [] };
  t.addReadOnlyListener((chatId, readOnly) => seen.readOnly.push([chatId, readOnly]));
  t.addMessagesListener((chatId, messages) => seen.messages.push([chatId, messages]));
  return seen;
}

// Waits until `predicate()` holds (polling), up to `ms`; resolves to whether it did.
export async function until(predicate, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (predicate()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return predicate();
}

// An app whose `onEvent` disposes the transport when an event of `type` arrives (a callback
// that calls back into the transport mid-flush).
export function disposeOn(t, type) {
  t.setOnEvent((event) => {
    if (event.type === type) t.dispose();
  });
}

// Whether a raw tab (jsTab) received a `type` message about `chatId`.
export function sawMessage(tab, type, chatId) {
  return tab.received.some((m) => m?.type === type && m?.chatId === chatId);
}

// A raw BroadcastChannel speaking the JS coordinator's messages (a tab running the official
// transport): `{type, chatId, tabId}`; `received` collects what our tabs post.
export function jsTab(tabId) {
  const channel = new BroadcastChannel("trigger-chat-tab-coord");
  const received = [];
  channel.onmessage = (e) => received.push(e.data);
  let heartbeat = null;
  return {
    received,
    post: (m) => channel.postMessage(m),
    claim(chatId) {
      channel.postMessage({ type: "claim", chatId, tabId });
      heartbeat = setInterval(() => channel.postMessage({ type: "heartbeat", chatId, tabId }), 5000);
    },
    release(chatId) {
      clearInterval(heartbeat);
      channel.postMessage({ type: "release", chatId, tabId });
    },
    crash() {
      clearInterval(heartbeat);
      channel.close();
    },
    close() {
      clearInterval(heartbeat);
      channel.close();
    },
  };
}

// The ChatTransportEvent types in order, without `connection-state` (which changes alongside
// the others; tests of it read `calls.events` directly).
export function eventTypes(calls) {
  return calls.events.map((e) => e.type).filter((t) => t !== "connection-state");
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = newTransport)]
    fn new_transport(class: &JsValue, options: &JsValue) -> Transport;
    #[wasm_bindgen(js_name = makeOptions)]
    pub fn make_options(base: &str, extra: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = userMessage)]
    pub fn user_message(id: &str, text: &str) -> JsValue;
    #[wasm_bindgen(js_name = sendRequest)]
    pub fn send_request(chat_id: &str, messages: &JsValue, extra: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = readAll)]
    pub fn read_all(stream: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = readN)]
    pub fn read_n(stream: &JsValue, n: u32) -> Promise;
    /// Reads until `count` chunks of `type` arrived (or the stream ended).
    #[wasm_bindgen(js_name = readUntil)]
    pub fn read_until(stream: &JsValue, chunk_type: &str, count: u32) -> Promise;
    /// `"open"` when nothing settles a read within `ms` (the stream is then cancelled).
    #[wasm_bindgen(js_name = stateAfter)]
    pub fn state_after(stream: &JsValue, ms: u32) -> Promise;
    #[wasm_bindgen(js_name = textOf)]
    pub fn text_of(chunks: &JsValue) -> String;
    pub fn types(chunks: &JsValue) -> js_sys::Array;
    pub fn admin(base: &str, chat_id: &str, path: &str, method: &str, body: &JsValue) -> Promise;
    pub fn sleep(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = newChatId)]
    pub fn new_chat_id(prefix: &str) -> String;
    #[wasm_bindgen(js_name = pageHide)]
    pub fn page_hide();
    #[wasm_bindgen(js_name = storageSet)]
    pub fn storage_set(key: &str, value: &str);
    #[wasm_bindgen(js_name = storageGet)]
    pub fn storage_get(key: &str) -> Option<String>;
    #[wasm_bindgen(js_name = eventTypes)]
    pub fn event_types(calls: &JsValue) -> js_sys::Array;
    pub fn listen(t: &Transport) -> JsValue;
    pub fn until(predicate: &js_sys::Function, ms: u32) -> Promise;
    #[wasm_bindgen(js_name = jsTab)]
    pub fn js_tab(tab_id: &str) -> JsValue;
    #[wasm_bindgen(js_name = disposeOn)]
    pub fn dispose_on(t: &Transport, event_type: &str);
    #[wasm_bindgen(js_name = sawMessage)]
    pub fn saw_message(tab: &JsValue, message_type: &str, chat_id: &str) -> bool;
}

thread_local! {
    /// The class, made once: its driver factory builds this crate's `WasmDriver`.
    static CLASS: JsValue = {
        let factory = Closure::<dyn FnMut(String, f64) -> JsValue>::new(|options: String, seed: f64| {
            match WasmDriver::new(&options, seed) {
                Ok(driver) => JsValue::from(driver),
                Err(error) => wasm_bindgen::throw_val(error),
            }
        })
        .into_js_value();
        let load = Closure::<dyn FnMut() -> JsValue>::new(move || Promise::resolve(&factory).into())
            .into_js_value();
        create_transport_class(load.unchecked_ref())
    };
}

/// A `TriggerChatTransport` for `options`.
pub fn transport_with(options: &JsValue) -> Transport {
    CLASS.with(|class| new_transport(class, options))
}

/// A `TriggerChatTransport` class whose first attempt to load the module fails (offline).
pub fn flaky_transport_class() -> JsValue {
    let factory =
        Closure::<dyn FnMut(String, f64) -> JsValue>::new(|options: String, seed: f64| {
            match WasmDriver::new(&options, seed) {
                Ok(driver) => JsValue::from(driver),
                Err(error) => wasm_bindgen::throw_val(error),
            }
        })
        .into_js_value();
    let mut attempts = 0;
    let load = Closure::<dyn FnMut() -> JsValue>::new(move || {
        attempts += 1;
        if attempts == 1 {
            Promise::reject(&js_sys::Error::new("the module could not be fetched")).into()
        } else {
            Promise::resolve(&factory).into()
        }
    })
    .into_js_value();
    create_transport_class(load.unchecked_ref())
}

/// A transport of `class` (see [`flaky_transport_class`]).
pub fn transport_of(class: &JsValue, options: &JsValue) -> Transport {
    new_transport(class, options)
}

/// `obj[key]`.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Awaits a promise, panicking (failing the test) on rejection.
/// Waits up to `ms` for `f()`.
pub async fn eventually(ms: u32, f: impl Fn() -> bool + 'static) -> bool {
    let predicate = Closure::<dyn Fn() -> bool>::new(f);
    let function: &js_sys::Function = predicate.as_ref().unchecked_ref();
    ok(until(function, ms)).await.as_bool() == Some(true)
}

pub async fn ok(promise: Promise) -> JsValue {
    match JsFuture::from(promise).await {
        Ok(v) => v,
        Err(e) => panic!("promise rejected: {e:?}"),
    }
}

/// Awaits a promise that must reject; returns the rejection.
pub async fn rejected(promise: Promise) -> JsValue {
    match JsFuture::from(promise).await {
        Ok(v) => panic!("expected a rejection, got {v:?}"),
        Err(e) => e,
    }
}

/// A JS array from values.
pub fn array(items: &[JsValue]) -> JsValue {
    items.iter().collect::<js_sys::Array>().into()
}

/// A plain object from pairs.
pub fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

/// Strings of a JS array.
pub fn strings(array: &js_sys::Array) -> Vec<String> {
    array.iter().filter_map(|v| v.as_string()).collect()
}

/// The emulator's whole slow reply to `user_text` (`www/server/src/agent/script.rs`):
/// `Slow reply to "…": 1 2 3 … 40.`
pub fn slow_reply(user_text: &str) -> String {
    let numbers: Vec<String> = (1..=40).map(|n| n.to_string()).collect();
    format!("Slow reply to {user_text:?}: {}.", numbers.join(" "))
}
