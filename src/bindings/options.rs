//! JS values → Rust, once, at the boundary: options at construction, request objects per call.
//! Each bad field is reported by name (`invalid_option`).

use js_sys::{Function, Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::proto::headers::HeaderList;
use crate::proto::json::Json;
use crate::proto::reconnect::DEFAULT_STALL_TIMEOUT_MS;
use crate::proto::session::{PersistedSession, DEFAULT_STORAGE_NAMESPACE};
use crate::proto::Error;
use crate::web::storage::{persisted_from_js, Persistence};
use crate::web::transport::{
    BaseUrl, Callbacks, Config, DEFAULT_BASE_URL, DEFAULT_STREAM_TIMEOUT_SECONDS,
};
use crate::web::Fail;

/// `object[key]`, `undefined` when absent or unreadable.
pub(crate) fn get(object: &JsValue, key: &str) -> JsValue {
    if !object.is_object() && !object.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn invalid(name: &str, message: &str) -> Error {
    Error::InvalidOption {
        name: name.into(),
        message: message.into(),
    }
}

/// An optional function option.
pub(crate) fn function(value: JsValue, name: &str) -> Result<Option<Function>, Error> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .dyn_into::<Function>()
        .map(Some)
        .map_err(|_| invalid(name, "must be a function"))
}

/// An optional string option.
pub(crate) fn string(value: JsValue, name: &str) -> Result<Option<String>, Error> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| invalid(name, "must be a string"))
}

/// Any JSON-serializable value (`undefined` → `None`).
pub(crate) fn json(value: &JsValue, name: &str) -> Result<Option<Json>, Error> {
    if value.is_undefined() {
        return Ok(None);
    }
    let text = JSON::stringify(value)
        .map_err(|_| invalid(name, "must be JSON-serializable"))?
        .as_string();
    match text {
        Some(text) => Json::parse(&text)
            .map(Some)
            .map_err(|_| invalid(name, "must be JSON-serializable")),
        None => Ok(None),
    }
}

/// A header record (`{ name: value }`) or a `Headers` instance.
pub(crate) fn headers(value: &JsValue, name: &str) -> Result<Option<HeaderList>, Error> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let mut list = HeaderList::new();
    if let Ok(headers) = value.clone().dyn_into::<web_sys::Headers>() {
        let entries = js_sys::try_iter(&headers)
            .ok()
            .flatten()
            .ok_or_else(|| invalid(name, "could not be read"))?;
        for entry in entries.flatten() {
            let name_value = js_sys::Array::from(&entry);
            if let (Some(n), Some(v)) =
                (name_value.get(0).as_string(), name_value.get(1).as_string())
            {
                list.set(&n, v);
            }
        }
        return Ok(Some(list));
    }
    let object = value
        .dyn_ref::<Object>()
        .ok_or_else(|| invalid(name, "must be an object of header values"))?;
    for entry in Object::entries(object).iter() {
        let pair = js_sys::Array::from(&entry);
        let (Some(n), value) = (pair.get(0).as_string(), pair.get(1)) else {
            continue;
        };
        if value.is_undefined() {
            continue;
        }
        let value = value
            .as_string()
            .ok_or_else(|| invalid(name, "header values must be strings"))?;
        list.set(&n, value);
    }
    Ok(Some(list))
}

/// An optional `AbortSignal`.
pub(crate) fn signal(value: JsValue) -> Option<web_sys::AbortSignal> {
    value.dyn_into::<web_sys::AbortSignal>().ok()
}

/// Everything the constructor takes.
pub(crate) struct Parsed {
    pub config: Config,
    pub callbacks: Callbacks,
    pub sessions: Vec<(String, PersistedSession)>,
}

/// Parses `TriggerChatTransportOptions`.
pub(crate) fn parse(options: &JsValue) -> Result<Parsed, Fail> {
    if !options.is_object() {
        return Err(invalid("options", "must be an object").into());
    }
    let task = string(get(options, "task"), "task")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("task", "is required (the chat agent's task id)"))?;
    for unsupported in ["watch", "headStart"] {
        if get(options, unsupported).is_truthy() {
            return Err(invalid(unsupported, "is not supported by trigger-chat-wasm yet").into());
        }
    }
    let base = get(options, "baseURL");
    let base_url = if let Some(f) = base.dyn_ref::<Function>() {
        BaseUrl::Resolver(f.clone())
    } else {
        BaseUrl::Fixed(string(base, "baseURL")?.unwrap_or_else(|| DEFAULT_BASE_URL.into()))
    };
    let timeout = get(options, "streamTimeoutSeconds");
    let stream_timeout_seconds = match timeout.as_f64() {
        None if timeout.is_undefined() => DEFAULT_STREAM_TIMEOUT_SECONDS,
        Some(s) if s.is_finite() && (1.0..=600.0).contains(&s) => s as u32,
        _ => return Err(invalid("streamTimeoutSeconds", "must be a number from 1 to 600").into()),
    };
    let stall = get(options, "stallTimeoutMs");
    let stall_timeout_ms = match stall.as_f64() {
        None if stall.is_undefined() => DEFAULT_STALL_TIMEOUT_MS,
        Some(ms) if ms.is_finite() && ms >= 1_000.0 => ms as u64,
        _ => return Err(invalid("stallTimeoutMs", "must be a number of at least 1000").into()),
    };
    let config = Config {
        task,
        base_url,
        stream_base_url: string(get(options, "streamBaseURL"), "streamBaseURL")?,
        headers: headers(&get(options, "headers"), "headers")?.unwrap_or_default(),
        stream_timeout_seconds,
        stall_timeout_ms,
        persistence: persistence(&get(options, "persistence"))?,
    };
    let callbacks = Callbacks {
        access_token: function(get(options, "accessToken"), "accessToken")?,
        start_session: function(get(options, "startSession"), "startSession")?,
        fetch: function(get(options, "fetch"), "fetch")?,
        on_event: function(get(options, "onEvent"), "onEvent")?,
        on_session_change: function(get(options, "onSessionChange"), "onSessionChange")?,
        client_data: json(&get(options, "clientData"), "clientData")?,
    };
    if callbacks.access_token.is_none() && callbacks.start_session.is_none() {
        return Err(invalid("accessToken", "accessToken or startSession is required").into());
    }
    let mut sessions = Vec::new();
    let hydrate = get(options, "sessions");
    if let Some(object) = hydrate.dyn_ref::<Object>() {
        for entry in Object::entries(object).iter() {
            let pair = js_sys::Array::from(&entry);
            let Some(chat_id) = pair.get(0).as_string() else {
                continue;
            };
            let session = persisted_from_js(&pair.get(1))
                .map_err(|_| invalid("sessions", "each entry needs a publicAccessToken string"))?;
            sessions.push((chat_id, session));
        }
    } else if !hydrate.is_undefined() && !hydrate.is_null() {
        return Err(invalid("sessions", "must be an object keyed by chat id").into());
    }
    Ok(Parsed {
        config,
        callbacks,
        sessions,
    })
}

fn persistence(value: &JsValue) -> Result<Persistence, Error> {
    if value.is_undefined() || value.is_null() {
        return Ok(Persistence::Local {
            namespace: DEFAULT_STORAGE_NAMESPACE.into(),
        });
    }
    if let Some(kind) = value.as_string() {
        return match kind.as_str() {
            "localStorage" => Ok(Persistence::Local {
                namespace: DEFAULT_STORAGE_NAMESPACE.into(),
            }),
            "none" => Ok(Persistence::Memory),
            _ => Err(invalid(
                "persistence",
                "must be \"localStorage\", \"none\" or an object",
            )),
        };
    }
    if value.as_bool() == Some(false) {
        return Ok(Persistence::Memory);
    }
    if !value.is_object() {
        return Err(invalid(
            "persistence",
            "must be \"localStorage\", \"none\" or an object",
        ));
    }
    if let Some(namespace) = string(get(value, "namespace"), "persistence.namespace")? {
        return Ok(Persistence::Local { namespace });
    }
    Ok(Persistence::Custom {
        target: value.clone(),
        load: function(get(value, "load"), "persistence.load")?,
        save: function(get(value, "save"), "persistence.save")?,
        remove: function(get(value, "remove"), "persistence.remove")?,
    })
}
