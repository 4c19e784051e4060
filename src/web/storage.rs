//! Where each chat's session state is kept between page loads.
//!
//! `persistence: "localStorage"` (the default) keeps one versioned JSON entry per chat under a
//! namespaced key; `"none"` keeps nothing; `{ load, save, remove }` hands the JS-shaped
//! `ChatSessionPersistedState` to the app. Storage that is missing (SSR, a worker, a sandboxed
//! iframe), full or corrupt yields an error the transport reports as a warning event — it never
//! stops a send.

use js_sys::{Function, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::Fail;
use crate::proto::json::Json;
use crate::proto::session::{self, PersistedSession};
use crate::proto::Error;

/// The persistence backend chosen by the `persistence` option.
pub(crate) enum Persistence {
    /// `localStorage`, keys prefixed by the namespace.
    Local { namespace: String },
    /// Nothing is kept.
    Memory,
    /// The app's own `{ load(chatId), save(chatId, state), remove(chatId) }`.
    Custom {
        target: JsValue,
        load: Option<Function>,
        save: Option<Function>,
        remove: Option<Function>,
    },
}

fn local_storage() -> Result<web_sys::Storage, Error> {
    // Reading `localStorage` itself can throw (SecurityError in sandboxed frames).
    let value = Reflect::get(&js_sys::global(), &JsValue::from_str("localStorage"))
        .map_err(|_| Error::storage("localStorage is not accessible"))?;
    value
        .dyn_into::<web_sys::Storage>()
        .map_err(|_| Error::storage("localStorage is not available"))
}

impl Persistence {
    /// The stored state of `chat_id`, if any.
    pub(crate) fn load(&self, chat_id: &str) -> Result<Option<PersistedSession>, Fail> {
        match self {
            Persistence::Memory => Ok(None),
            Persistence::Local { namespace } => {
                let storage = local_storage()?;
                let key = session::storage_key(namespace, chat_id);
                let text = storage
                    .get_item(&key)
                    .map_err(|_| Error::storage("localStorage.getItem failed"))?;
                match text {
                    None => Ok(None),
                    Some(text) => Ok(Some(PersistedSession::decode_from_storage(&text, chat_id)?)),
                }
            }
            Persistence::Custom { target, load, .. } => {
                let Some(load) = load else { return Ok(None) };
                let value = load
                    .call1(target, &JsValue::from_str(chat_id))
                    .map_err(Fail::Thrown)?;
                if value.is_null() || value.is_undefined() {
                    return Ok(None);
                }
                Ok(Some(persisted_from_js(&value)?))
            }
        }
    }

    /// Stores the state of `chat_id`.
    pub(crate) fn save(&self, chat_id: &str, state: &PersistedSession) -> Result<(), Fail> {
        match self {
            Persistence::Memory => Ok(()),
            Persistence::Local { namespace } => {
                let storage = local_storage()?;
                let key = session::storage_key(namespace, chat_id);
                let text = state.encode_for_storage(chat_id);
                storage.set_item(&key, &text).map_err(|_| {
                    Error::storage("localStorage.setItem failed (storage full?)").into()
                })
            }
            Persistence::Custom { target, save, .. } => {
                let Some(save) = save else { return Ok(()) };
                save.call2(target, &JsValue::from_str(chat_id), &persisted_to_js(state))
                    .map(|_| ())
                    .map_err(Fail::Thrown)
            }
        }
    }

    /// Forgets `chat_id`.
    pub(crate) fn remove(&self, chat_id: &str) -> Result<(), Fail> {
        match self {
            Persistence::Memory => Ok(()),
            Persistence::Local { namespace } => {
                let storage = local_storage()?;
                storage
                    .remove_item(&session::storage_key(namespace, chat_id))
                    .map_err(|_| Error::storage("localStorage.removeItem failed").into())
            }
            Persistence::Custom { target, remove, .. } => {
                let Some(remove) = remove else { return Ok(()) };
                remove
                    .call1(target, &JsValue::from_str(chat_id))
                    .map(|_| ())
                    .map_err(Fail::Thrown)
            }
        }
    }
}

/// `ChatSessionPersistedState` (a JS object) → Rust.
pub(crate) fn persisted_from_js(value: &JsValue) -> Result<PersistedSession, Fail> {
    let text = JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| Error::storage("the session state is not JSON-serializable"))?;
    let json = Json::parse(&text)?;
    Ok(PersistedSession::from_json(&json)?)
}

/// Rust → `ChatSessionPersistedState` (a plain JS object with the JS transport's field names).
pub(crate) fn persisted_to_js(state: &PersistedSession) -> JsValue {
    JSON::parse(&state.to_js_shape_json().to_json_string()).unwrap_or(JsValue::NULL)
}
