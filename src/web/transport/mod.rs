//! The transport: per-chat state, the app's callbacks, persistence and events. The operations
//! live in `send` (appends and their streams), `stream` (one `.out` subscription), `auth`
//! (tokens and sessions) and `append` (one reliable `.in/append`).
//!
//! Re-entrancy rule: app callbacks (`onEvent`, `onSessionChange`, `accessToken`, …) may call
//! back into the transport, so no `RefCell` borrow is ever held while one runs, or across an
//! `.await`.

mod append;
mod auth;
mod events;
mod send;
mod stream;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::JsValue;

pub(crate) use events::Event;
pub(crate) use send::{ActionRequest, SendRequest};
pub(crate) use stream::StreamHandle;

use super::storage::{persisted_to_js, Persistence};
use super::Fail;
use crate::proto::chat::ChatState;
use crate::proto::headers::HeaderList;
use crate::proto::json::Json;
use crate::proto::session::PersistedSession;
use crate::proto::url::{session_path, SessionChannel};

/// Default `Timeout-Seconds` for `.out` (the JS transport's `streamTimeoutSeconds` default).
pub(crate) const DEFAULT_STREAM_TIMEOUT_SECONDS: u32 = 120;
/// Default API origin.
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.trigger.dev";

/// `baseURL`: a string, or `(ctx: { endpoint, chatId }) => string`.
pub(crate) enum BaseUrl {
    Fixed(String),
    Resolver(Function),
}

/// Options fixed at construction.
pub(crate) struct Config {
    pub task: String,
    pub base_url: BaseUrl,
    pub stream_base_url: Option<String>,
    pub headers: HeaderList,
    pub stream_timeout_seconds: u32,
    pub stall_timeout_ms: u64,
    pub persistence: Persistence,
}

/// Options the app can change after construction (`setAccessToken`, `setClientData`, …).
#[derive(Default)]
pub(crate) struct Callbacks {
    pub access_token: Option<Function>,
    pub start_session: Option<Function>,
    pub fetch: Option<Function>,
    pub on_event: Option<Function>,
    pub on_session_change: Option<Function>,
    pub client_data: Option<Json>,
}

/// One chat.
pub(crate) struct Chat {
    pub id: String,
    pub state: RefCell<ChatState>,
    /// The subscription that currently serves this chat (a newer send supersedes it).
    pub active: RefCell<Option<StreamHandle>>,
    /// `startSession` in flight (resolves to the token).
    pub starting: RefCell<Option<js_sys::Promise>>,
    /// `accessToken` in flight (resolves to the token).
    pub refreshing: RefCell<Option<js_sys::Promise>>,
    /// The last turn-producing send: message id and `Date.now()` (event attribution).
    pub last_send: RefCell<Option<(Option<String>, u64)>>,
    /// Whether a storage failure was already reported for this chat.
    pub storage_warned: Cell<bool>,
    /// The `activeInputSeq` of the turn a stop was already sent for (one stop per turn).
    pub stopped_turn: Cell<Option<Option<u64>>>,
}

/// The shared inside of a `TriggerChatTransport`.
pub(crate) struct Inner {
    pub config: Config,
    pub callbacks: RefCell<Callbacks>,
    chats: RefCell<HashMap<String, Rc<Chat>>>,
    pub disposed: Cell<bool>,
}

/// Cheap handle; clones share the transport.
#[derive(Clone)]
pub(crate) struct Transport(pub(crate) Rc<Inner>);

impl Transport {
    /// A transport with `hydrated` sessions (the `sessions` option) taking precedence over
    /// stored ones.
    pub(crate) fn new(
        config: Config,
        callbacks: Callbacks,
        hydrated: Vec<(String, PersistedSession)>,
    ) -> Transport {
        let transport = Transport(Rc::new(Inner {
            config,
            callbacks: RefCell::new(callbacks),
            chats: RefCell::new(HashMap::new()),
            disposed: Cell::new(false),
        }));
        for (chat_id, session) in hydrated {
            transport.insert_chat(&chat_id, ChatState::from_persisted(&session));
        }
        transport
    }

    fn insert_chat(&self, chat_id: &str, state: ChatState) -> Rc<Chat> {
        let chat = Rc::new(Chat {
            id: chat_id.to_owned(),
            state: RefCell::new(state),
            active: RefCell::new(None),
            starting: RefCell::new(None),
            refreshing: RefCell::new(None),
            last_send: RefCell::new(None),
            storage_warned: Cell::new(false),
            stopped_turn: Cell::new(None),
        });
        self.0
            .chats
            .borrow_mut()
            .insert(chat_id.to_owned(), chat.clone());
        chat
    }

    /// The chat, loading its stored state the first time it is asked for.
    pub(crate) fn chat(&self, chat_id: &str) -> Rc<Chat> {
        if let Some(chat) = self.0.chats.borrow().get(chat_id) {
            return chat.clone();
        }
        let loaded = self.0.config.persistence.load(chat_id);
        let state = match loaded {
            Ok(Some(session)) => ChatState::from_persisted(&session),
            Ok(None) => ChatState::default(),
            Err(fail) => {
                self.storage_failed(chat_id, None, fail);
                ChatState::default()
            }
        };
        // A callback run by `storage_failed` may have created the chat meanwhile.
        if let Some(chat) = self.0.chats.borrow().get(chat_id) {
            return chat.clone();
        }
        self.insert_chat(chat_id, state)
    }

    /// Forgets a chat in memory (storage is the caller's business).
    pub(crate) fn forget_chat(&self, chat_id: &str) -> Option<Rc<Chat>> {
        self.0.chats.borrow_mut().remove(chat_id)
    }

    /// Every known chat.
    pub(crate) fn chats(&self) -> Vec<Rc<Chat>> {
        self.0.chats.borrow().values().cloned().collect()
    }

    /// The URL of `channel` for `chat_id`, from `baseURL` (or `streamBaseURL` for `.out`).
    pub(crate) fn url(&self, chat_id: &str, channel: SessionChannel) -> String {
        let config = &self.0.config;
        let base = match (&config.stream_base_url, channel) {
            (Some(stream), SessionChannel::Out) => stream.clone(),
            _ => match &config.base_url {
                BaseUrl::Fixed(base) => base.clone(),
                BaseUrl::Resolver(f) => {
                    let ctx = Object::new();
                    let endpoint = match channel {
                        SessionChannel::InAppend => "in",
                        SessionChannel::Out => "out",
                    };
                    let _ = Reflect::set(&ctx, &"endpoint".into(), &endpoint.into());
                    let _ = Reflect::set(&ctx, &"chatId".into(), &chat_id.into());
                    f.call1(&JsValue::UNDEFINED, &ctx)
                        .ok()
                        .and_then(|v| v.as_string())
                        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
                }
            },
        };
        session_path(&base, chat_id, channel)
    }

    /// The `fetch` option, if set.
    pub(crate) fn fetch_override(&self) -> Option<Function> {
        self.0.callbacks.borrow().fetch.clone()
    }

    /// Saves the chat's state and tells `onSessionChange`. Failures of either never reach the
    /// caller: storage failures become one warning event per chat, callback exceptions are
    /// swallowed (the JS transport let them escape, W15).
    pub(crate) fn persist(&self, chat: &Chat) {
        let persisted = chat.state.borrow().to_persisted();
        let Some(persisted) = persisted else { return };
        if let Err(fail) = self.0.config.persistence.save(&chat.id, &persisted) {
            self.storage_failed(&chat.id, Some(chat), fail);
        }
        let callback = self.0.callbacks.borrow().on_session_change.clone();
        if let Some(callback) = callback {
            let _ = callback.call2(
                &JsValue::UNDEFINED,
                &JsValue::from_str(&chat.id),
                &persisted_to_js(&persisted),
            );
        }
    }

    /// Removes the chat's stored state and tells `onSessionChange(chatId, null)` (W16).
    pub(crate) fn unpersist(&self, chat_id: &str) {
        if let Err(fail) = self.0.config.persistence.remove(chat_id) {
            self.storage_failed(chat_id, None, fail);
        }
        let callback = self.0.callbacks.borrow().on_session_change.clone();
        if let Some(callback) = callback {
            let _ = callback.call2(
                &JsValue::UNDEFINED,
                &JsValue::from_str(chat_id),
                &JsValue::NULL,
            );
        }
    }

    fn storage_failed(&self, chat_id: &str, chat: Option<&Chat>, fail: Fail) {
        if let Some(chat) = chat {
            if chat.storage_warned.replace(true) {
                return;
            }
        }
        self.emit(Event::new("storage-error", chat_id).error(&fail));
    }

    /// Calls `onEvent`; exceptions are swallowed.
    pub(crate) fn emit(&self, event: Event) {
        let callback = self.0.callbacks.borrow().on_event.clone();
        if let Some(callback) = callback {
            let _ = callback.call1(&JsValue::UNDEFINED, &event.into_js());
        }
    }

    /// The `clientData` option as JSON.
    pub(crate) fn client_data(&self) -> Option<Json> {
        self.0.callbacks.borrow().client_data.clone()
    }

    /// Closes every stream (`dispose()` / `close()`).
    pub(crate) fn dispose(&self) {
        self.0.disposed.set(true);
        for chat in self.chats() {
            let active = chat.active.borrow_mut().take();
            if let Some(stream) = active {
                stream.close_locally();
            }
        }
    }
}
