//! Tokens and sessions: the app's `startSession` and `accessToken` callbacks, each called at
//! most once at a time per chat (concurrent callers share the call in flight, W7's "not
//! single-flight").

use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use super::{Chat, Event, Transport};
use crate::proto::json::Json;
use crate::proto::Error;
use crate::web::errors::fail_to_js;
use crate::web::Fail;

impl Transport {
    /// The chat's token; when there is none, the session is started (`startSession`) or, without
    /// that callback, the token is asked of `accessToken`.
    pub(crate) async fn ensure_token(&self, chat: &Rc<Chat>) -> Result<String, Fail> {
        let token = chat.state.borrow().token.clone();
        if let Some(token) = token {
            return Ok(token);
        }
        let has_start = self.0.callbacks.borrow().start_session.is_some();
        if has_start {
            self.start_session(chat, false).await
        } else {
            self.refresh_token(chat, None).await
        }
    }

    /// `startSession({ taskId, chatId, clientData })`, shared by concurrent callers. With
    /// `replace`, the result replaces a session the server no longer knows (404).
    pub(crate) async fn start_session(
        &self,
        chat: &Rc<Chat>,
        replace: bool,
    ) -> Result<String, Fail> {
        let in_flight = chat.starting.borrow().clone();
        let promise = match in_flight {
            Some(promise) => promise,
            None => {
                let this = self.clone();
                let owner = chat.clone();
                let promise = future_to_promise(async move {
                    let result = this.run_start_session(&owner, replace).await;
                    owner.starting.borrow_mut().take();
                    result.map(JsValue::from).map_err(|fail| fail_to_js(&fail))
                });
                *chat.starting.borrow_mut() = Some(promise.clone());
                promise
            }
        };
        settle_token(promise).await
    }

    async fn run_start_session(&self, chat: &Chat, replace: bool) -> Result<String, Fail> {
        let callback = self.0.callbacks.borrow().start_session.clone();
        let Some(callback) = callback else {
            return Err(Error::MissingCallback {
                name: "startSession".into(),
            }
            .into());
        };
        let params = Object::new();
        let client_data = self.client_data().unwrap_or_else(Json::object);
        let _ = Reflect::set(
            &params,
            &"taskId".into(),
            &self.0.config.task.as_str().into(),
        );
        let _ = Reflect::set(&params, &"chatId".into(), &chat.id.as_str().into());
        let _ = Reflect::set(&params, &"clientData".into(), &json_to_js(&client_data));
        let result = call_async(&callback, &params.into()).await?;
        let token = token_from(&result).ok_or_else(|| Error::InvalidOption {
            name: "startSession".into(),
            message: "the callback did not return a publicAccessToken".into(),
        })?;
        let pending_version = Reflect::get(&result, &"pendingVersion".into())
            .map(|v| v.is_truthy())
            .unwrap_or(false);
        {
            let mut state = chat.state.borrow_mut();
            if replace {
                state.replace_session(token.clone());
            } else {
                state.token = Some(token.clone());
                state.is_streaming.get_or_insert(false);
            }
        }
        self.persist(chat);
        if pending_version {
            self.emit(Event::new("run-pending-version", &chat.id).str("source", Some("start")));
        }
        Ok(token)
    }

    /// A fresh token from `accessToken({ chatId })` (or, without it, from `startSession`, which
    /// is idempotent and returns a fresh token), shared by concurrent callers. When `stale` is
    /// given and the chat already holds a different token, that one is returned instead: another
    /// caller refreshed meanwhile.
    pub(crate) async fn refresh_token(
        &self,
        chat: &Rc<Chat>,
        stale: Option<&str>,
    ) -> Result<String, Fail> {
        if let Some(stale) = stale {
            let current = chat.state.borrow().token.clone();
            if let Some(current) = current.filter(|t| t != stale) {
                return Ok(current);
            }
        }
        let (has_access, has_start) = {
            let callbacks = self.0.callbacks.borrow();
            (
                callbacks.access_token.is_some(),
                callbacks.start_session.is_some(),
            )
        };
        if !has_access {
            if has_start {
                return self.start_session(chat, false).await;
            }
            return Err(Error::MissingCallback {
                name: "accessToken".into(),
            }
            .into());
        }
        let in_flight = chat.refreshing.borrow().clone();
        let promise = match in_flight {
            Some(promise) => promise,
            None => {
                let this = self.clone();
                let owner = chat.clone();
                let promise = future_to_promise(async move {
                    let result = this.run_refresh(&owner).await;
                    owner.refreshing.borrow_mut().take();
                    result.map(JsValue::from).map_err(|fail| fail_to_js(&fail))
                });
                *chat.refreshing.borrow_mut() = Some(promise.clone());
                promise
            }
        };
        settle_token(promise).await
    }

    async fn run_refresh(&self, chat: &Chat) -> Result<String, Fail> {
        let callback = self.0.callbacks.borrow().access_token.clone();
        let Some(callback) = callback else {
            return Err(Error::MissingCallback {
                name: "accessToken".into(),
            }
            .into());
        };
        let params = Object::new();
        let _ = Reflect::set(&params, &"chatId".into(), &chat.id.as_str().into());
        let result = call_async(&callback, &params.into()).await?;
        let token = token_from(&result).ok_or_else(|| Error::InvalidOption {
            name: "accessToken".into(),
            message: "the callback did not return a token string".into(),
        })?;
        chat.state.borrow_mut().token = Some(token.clone());
        self.persist(chat);
        Ok(token)
    }
}

/// Calls an app callback and awaits its result; what it throws or rejects with is passed on.
async fn call_async(callback: &Function, arg: &JsValue) -> Result<JsValue, Fail> {
    let returned = callback
        .call1(&JsValue::UNDEFINED, arg)
        .map_err(Fail::Thrown)?;
    JsFuture::from(Promise::resolve(&returned))
        .await
        .map_err(Fail::Thrown)
}

/// A token: a non-empty string, or an object's non-empty `publicAccessToken`.
fn token_from(value: &JsValue) -> Option<String> {
    value
        .as_string()
        .or_else(|| {
            Reflect::get(value, &"publicAccessToken".into())
                .ok()
                .and_then(|v| v.as_string())
        })
        .filter(|t| !t.is_empty())
}

async fn settle_token(promise: Promise) -> Result<String, Fail> {
    JsFuture::from(promise)
        .await
        .map(|v| v.as_string().unwrap_or_default())
        .map_err(Fail::Thrown)
}

/// A JSON value as a JS value (through the browser's `JSON.parse`).
pub(crate) fn json_to_js(json: &Json) -> JsValue {
    js_sys::JSON::parse(&json.to_json_string()).unwrap_or(JsValue::UNDEFINED)
}
