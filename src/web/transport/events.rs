//! `ChatTransportEvent` objects for `onEvent`, with the JS transport's type names and fields.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

use crate::web::errors::fail_to_js;
use crate::web::globals::now_ms;
use crate::web::Fail;

/// One event under construction.
pub(crate) struct Event(Object);

impl Event {
    /// `{ type, chatId, timestamp }`.
    pub(crate) fn new(kind: &str, chat_id: &str) -> Event {
        let event = Event(Object::new());
        event
            .set("type", &kind.into())
            .set("chatId", &chat_id.into())
            .set("timestamp", &now_ms().into())
    }

    fn set(self, key: &str, value: &JsValue) -> Event {
        let _ = Reflect::set(&self.0, &JsValue::from_str(key), value);
        self
    }

    /// A string field, left out when `None`.
    pub(crate) fn str(self, key: &str, value: Option<&str>) -> Event {
        match value {
            Some(v) => self.set(key, &JsValue::from_str(v)),
            None => self,
        }
    }

    /// A number field, left out when `None`.
    pub(crate) fn num(self, key: &str, value: Option<f64>) -> Event {
        match value {
            Some(v) => self.set(key, &JsValue::from_f64(v)),
            None => self,
        }
    }

    /// A boolean field.
    pub(crate) fn flag(self, key: &str, value: bool) -> Event {
        self.set(key, &JsValue::from_bool(value))
    }

    /// `error` (a JS `Error`) and, for HTTP failures, `status`.
    pub(crate) fn error(self, fail: &Fail) -> Event {
        let status = fail.as_error().and_then(|e| e.status()).map(f64::from);
        self.set("error", &fail_to_js(fail)).num("status", status)
    }

    /// The finished object.
    pub(crate) fn into_js(self) -> JsValue {
        self.0.into()
    }
}
