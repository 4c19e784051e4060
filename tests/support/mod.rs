//! Shared helpers of the browser test suites (tests/web_*.rs): the emulator's address, option
//! objects whose callbacks call the emulator's customer endpoints like a real app, and readers.
#![allow(dead_code)]

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The emulator (`www/server`) started by `scripts/test`; with `wasm-pack test`, start it
/// yourself: `cargo run -p chat-devserver -- --port 8787`.
pub const SERVER: &str = match option_env!("CHAT_SERVER_URL") {
    Some(url) => url,
    None => "http://127.0.0.1:8787",
};

#[wasm_bindgen(inline_js = r#"
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
  for (;;) {
    const text = await stream.next();
    if (text === undefined) break;
    for (const body of JSON.parse(text)) if (body && body.data != null) chunks.push(body.data);
  }
  return chunks;
}

export async function readN(stream, n) {
  const chunks = [];
  while (chunks.length < n) {
    const text = await stream.next();
    if (text === undefined) break;
    for (const body of JSON.parse(text)) if (body && body.data != null) chunks.push(body.data);
  }
  return chunks;
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

export function storageSet(key, value) { localStorage.setItem(key, value); }
export function storageGet(key) { return localStorage.getItem(key) ?? undefined; }

export function eventTypes(calls) {
  return calls.events.map((e) => e.type);
}
"#)]
extern "C" {
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
    #[wasm_bindgen(js_name = textOf)]
    pub fn text_of(chunks: &JsValue) -> String;
    pub fn types(chunks: &JsValue) -> js_sys::Array;
    pub fn admin(base: &str, chat_id: &str, path: &str, method: &str, body: &JsValue) -> Promise;
    pub fn sleep(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = newChatId)]
    pub fn new_chat_id(prefix: &str) -> String;
    #[wasm_bindgen(js_name = storageSet)]
    pub fn storage_set(key: &str, value: &str);
    #[wasm_bindgen(js_name = storageGet)]
    pub fn storage_get(key: &str) -> Option<String>;
    #[wasm_bindgen(js_name = eventTypes)]
    pub fn event_types(calls: &JsValue) -> js_sys::Array;
}

/// `obj[key]`.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Awaits a promise, panicking (failing the test) on rejection.
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
