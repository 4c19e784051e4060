//! `WasmTransport`: the wasm side of `TriggerChatTransport`. Methods mirror the JS class; the
//! glue in `pkg-template/index.js` adds the lazy instantiation and the `ReadableStream`s.

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::options::{self, get, json};
use super::stream::WasmStream;
use crate::proto::chat::ChatState;
use crate::proto::json::Json;
use crate::proto::wire::Trigger;
use crate::web::errors::{error_to_js, fail_to_js};
use crate::web::storage::{persisted_from_js, persisted_to_js};
use crate::web::transport::{ActionRequest, SendRequest, Transport};
use crate::web::Fail;

/// The transport behind one `TriggerChatTransport`.
#[wasm_bindgen]
pub struct WasmTransport {
    inner: Transport,
}

fn js_err(fail: Fail) -> JsValue {
    fail_to_js(&fail)
}

#[wasm_bindgen]
impl WasmTransport {
    /// Parses the options (a clear `invalid_option` error per bad field).
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<WasmTransport, JsValue> {
        let parsed = options::parse(&options).map_err(js_err)?;
        Ok(WasmTransport {
            inner: Transport::new(parsed.config, parsed.callbacks, parsed.sessions),
        })
    }

    /// `ChatTransport.sendMessages`.
    #[wasm_bindgen(js_name = sendMessages)]
    pub fn send_messages(&self, request: JsValue) -> Promise {
        let transport = self.inner.clone();
        future_to_promise(async move {
            let request = parse_send(&request).map_err(js_err)?;
            let handle = transport.send_messages(request).await.map_err(js_err)?;
            Ok(WasmStream::new(handle).into())
        })
    }

    /// `ChatTransport.reconnectToStream`: a stream, or `null` when nothing can be streaming.
    #[wasm_bindgen(js_name = reconnectToStream)]
    pub fn reconnect_to_stream(&self, request: JsValue) -> Result<Option<WasmStream>, JsValue> {
        let chat_id = options::string(get(&request, "chatId"), "chatId")
            .map_err(|e| error_to_js(&e))?
            .unwrap_or_default();
        let signal = options::signal(get(&request, "abortSignal"));
        let stop_on_abort = get(&request, "stopOnAbort").is_truthy();
        let headers =
            options::headers(&get(&request, "headers"), "headers").map_err(|e| error_to_js(&e))?;
        Ok(self
            .inner
            .reconnect_to_stream(&chat_id, signal.as_ref(), stop_on_abort, headers)
            .map(WasmStream::new))
    }

    /// `sendAction(chatId, action, { abortSignal, metadata, onSettled })`.
    #[wasm_bindgen(js_name = sendAction)]
    pub fn send_action(&self, chat_id: String, action: JsValue, options: JsValue) -> Promise {
        let transport = self.inner.clone();
        future_to_promise(async move {
            let request = (|| -> Result<ActionRequest, Fail> {
                Ok(ActionRequest {
                    chat_id,
                    action: json(&action, "action")?.unwrap_or(Json::Null),
                    metadata: json(&get(&options, "metadata"), "metadata")?,
                    headers: options::headers(&get(&options, "headers"), "headers")?,
                    signal: options::signal(get(&options, "abortSignal")),
                    on_settled: options::function(get(&options, "onSettled"), "onSettled")?,
                })
            })()
            .map_err(js_err)?;
            let handle = transport.send_action(request).await.map_err(js_err)?;
            Ok(WasmStream::new(handle).into())
        })
    }

    /// `sendPendingMessage(chatId, message, metadata?)` → `Promise<boolean>`.
    #[wasm_bindgen(js_name = sendPendingMessage)]
    pub fn send_pending_message(
        &self,
        chat_id: String,
        message: JsValue,
        metadata: JsValue,
    ) -> Promise {
        let transport = self.inner.clone();
        future_to_promise(async move {
            let message_id = get(&message, "id").as_string();
            let message = json(&message, "message").map_err(|e| error_to_js(&e))?;
            let metadata = json(&metadata, "metadata").map_err(|e| error_to_js(&e))?;
            let Some(message) = message else {
                return Ok(JsValue::FALSE);
            };
            let sent = transport
                .send_pending_message(&chat_id, message, message_id, metadata)
                .await;
            Ok(JsValue::from_bool(sent))
        })
    }

    /// `stopGeneration(chatId)` → `Promise<boolean>`.
    #[wasm_bindgen(js_name = stopGeneration)]
    pub fn stop_generation(&self, chat_id: String) -> Promise {
        let transport = self.inner.clone();
        future_to_promise(async move {
            let sent = transport.stop_generation(&chat_id).await.map_err(js_err)?;
            Ok(JsValue::from_bool(sent))
        })
    }

    /// `start(chatId)` → the persisted session state.
    pub fn start(&self, chat_id: String) -> Promise {
        let transport = self.inner.clone();
        future_to_promise(async move {
            transport.start(&chat_id).await.map_err(js_err)?;
            Ok(session_of(&transport, &chat_id))
        })
    }

    /// The persisted state of a chat, or `undefined`.
    #[wasm_bindgen(js_name = getSession)]
    pub fn get_session(&self, chat_id: String) -> JsValue {
        session_of(&self.inner, &chat_id)
    }

    /// Replaces a chat's session state (`closed` is honoured, unlike the JS transport, W17).
    #[wasm_bindgen(js_name = setSession)]
    pub fn set_session(&self, chat_id: String, session: JsValue) -> Result<(), JsValue> {
        let persisted = persisted_from_js(&session).map_err(js_err)?;
        let chat = self.inner.chat(&chat_id);
        *chat.state.borrow_mut() = ChatState::from_persisted(&persisted);
        self.inner.persist(&chat);
        Ok(())
    }

    /// Forgets a chat: closes its stream, removes its stored state and calls
    /// `onSessionChange(chatId, null)`.
    #[wasm_bindgen(js_name = removeSession)]
    pub fn remove_session(&self, chat_id: String) {
        if let Some(chat) = self.inner.forget_chat(&chat_id) {
            let active = chat.active.borrow_mut().take();
            if let Some(stream) = active {
                stream.close_locally();
            }
        }
        self.inner.unpersist(&chat_id);
    }

    /// `seedResumeCursor(chatId, lastEventId)`: moves the cursor forward, never back.
    #[wasm_bindgen(js_name = seedResumeCursor)]
    pub fn seed_resume_cursor(&self, chat_id: String, last_event_id: String) {
        self.inner.seed_resume_cursor(&chat_id, &last_event_id);
    }

    /// `"open"` or `"closed"`.
    #[wasm_bindgen(js_name = sessionStatus)]
    pub fn session_status(&self, chat_id: String) -> String {
        let closed = self.inner.chat(&chat_id).state.borrow().closed;
        if closed { "closed" } else { "open" }.into()
    }

    /// Why the session was closed, if it was and a reason was given.
    #[wasm_bindgen(js_name = sessionClosedReason)]
    pub fn session_closed_reason(&self, chat_id: String) -> Option<String> {
        self.inner
            .chat(&chat_id)
            .state
            .borrow()
            .closed_reason
            .clone()
    }

    /// Swaps `onSessionChange`.
    #[wasm_bindgen(js_name = setOnSessionChange)]
    pub fn set_on_session_change(&self, callback: JsValue) -> Result<(), JsValue> {
        let f = options::function(callback, "onSessionChange").map_err(|e| error_to_js(&e))?;
        self.inner.0.callbacks.borrow_mut().on_session_change = f;
        Ok(())
    }

    /// Swaps `onEvent`.
    #[wasm_bindgen(js_name = setOnEvent)]
    pub fn set_on_event(&self, callback: JsValue) -> Result<(), JsValue> {
        let f = options::function(callback, "onEvent").map_err(|e| error_to_js(&e))?;
        self.inner.0.callbacks.borrow_mut().on_event = f;
        Ok(())
    }

    /// Swaps `accessToken`.
    #[wasm_bindgen(js_name = setAccessToken)]
    pub fn set_access_token(&self, callback: JsValue) -> Result<(), JsValue> {
        let f = options::function(callback, "accessToken").map_err(|e| error_to_js(&e))?;
        self.inner.0.callbacks.borrow_mut().access_token = f;
        Ok(())
    }

    /// Swaps `startSession`.
    #[wasm_bindgen(js_name = setStartSession)]
    pub fn set_start_session(&self, callback: JsValue) -> Result<(), JsValue> {
        let f = options::function(callback, "startSession").map_err(|e| error_to_js(&e))?;
        self.inner.0.callbacks.borrow_mut().start_session = f;
        Ok(())
    }

    /// Swaps `fetch`.
    #[wasm_bindgen(js_name = setFetch)]
    pub fn set_fetch(&self, callback: JsValue) -> Result<(), JsValue> {
        let f = options::function(callback, "fetch").map_err(|e| error_to_js(&e))?;
        self.inner.0.callbacks.borrow_mut().fetch = f;
        Ok(())
    }

    /// Swaps `clientData` (used by the next send).
    #[wasm_bindgen(js_name = setClientData)]
    pub fn set_client_data(&self, client_data: JsValue) -> Result<(), JsValue> {
        let data = json(&client_data, "clientData").map_err(|e| error_to_js(&e))?;
        self.inner.0.callbacks.borrow_mut().client_data = data;
        Ok(())
    }

    /// Closes every stream. Sessions stay (a later send reconnects).
    pub fn dispose(&self) {
        self.inner.dispose();
    }
}

fn session_of(transport: &Transport, chat_id: &str) -> JsValue {
    let persisted = transport.chat(chat_id).state.borrow().to_persisted();
    match persisted {
        Some(p) => persisted_to_js(&p),
        None => JsValue::UNDEFINED,
    }
}

/// `{ trigger, chatId, messageId, messages, abortSignal, body, metadata, headers }`.
fn parse_send(request: &JsValue) -> Result<SendRequest, Fail> {
    let chat_id = options::string(get(request, "chatId"), "chatId")?.ok_or_else(|| {
        crate::proto::Error::InvalidOption {
            name: "chatId".into(),
            message: "is required".into(),
        }
    })?;
    let trigger = match get(request, "trigger").as_string().as_deref() {
        Some("regenerate-message") => Trigger::RegenerateMessage,
        _ => Trigger::SubmitMessage,
    };
    let messages = get(request, "messages");
    let last = if Array::is_array(&messages) {
        let array = Array::from(&messages);
        let len = array.length();
        if len > 0 {
            Some(array.get(len - 1))
        } else {
            None
        }
    } else {
        None
    };
    let last_message = match &last {
        Some(m) => json(m, "messages")?,
        None => None,
    };
    let last_message_id = last.as_ref().and_then(|m| get(m, "id").as_string());
    let body_value = get(request, "body");
    let action_value = get(&body_value, "action");
    let action = if action_value.is_undefined() {
        None
    } else {
        json(&action_value, "body.action")?
    };
    let mut body = json(&body_value, "body")?;
    if let Some(Json::Object(members)) = body.as_mut() {
        members.retain(|(key, _)| key != "action");
    }
    Ok(SendRequest {
        chat_id,
        trigger,
        message_id: get(request, "messageId").as_string(),
        last_message,
        last_message_id,
        body,
        action,
        metadata: json(&get(request, "metadata"), "metadata")?,
        headers: options::headers(&get(request, "headers"), "headers")?,
        signal: options::signal(get(request, "abortSignal")),
    })
}
