//! `fetch` with an abort guard, and a streaming body reader.
//!
//! Every request goes through the app's `fetch` option when it gave one (called as
//! `fetch(url, init, { endpoint, chatId })`, like the JS transport), otherwise the global
//! `fetch`. Dropping an [`AbortOnDrop`] aborts its requests; dropping a [`BodyReader`] cancels
//! the body, so the connection closes rather than draining in the background.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, ReadableStreamDefaultReader};

use super::globals::global_property;
use super::Fail;
use crate::proto::headers::HeaderList;
use crate::proto::Error;

/// Which session channel a request is for (`ctx.endpoint` of the `fetch` and `baseURL` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `.in/append`.
    In,
    /// `.out` (SSE).
    Out,
}

impl Endpoint {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Endpoint::In => "in",
            Endpoint::Out => "out",
        }
    }
}

/// An HTTP request to make.
pub(crate) struct Request<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: HeaderList,
    pub body: Option<&'a str>,
    pub endpoint: Endpoint,
    pub chat_id: &'a str,
}

/// An `AbortController` that aborts when dropped.
pub(crate) struct AbortOnDrop(AbortController);

impl AbortOnDrop {
    /// A fresh controller, or `None` where `AbortController` is missing.
    pub(crate) fn new() -> Option<AbortOnDrop> {
        AbortController::new().ok().map(AbortOnDrop)
    }

    pub(crate) fn signal(&self) -> AbortSignal {
        self.0.signal()
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A response whose headers have arrived.
pub(crate) struct Response {
    pub status: u16,
    raw: web_sys::Response,
}

impl Response {
    /// A response header (case-insensitive, as `Headers.get`).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.raw.headers().get(name).ok().flatten()
    }

    /// The whole body as text; failures read as an empty body.
    pub(crate) async fn text(&self) -> String {
        let Ok(promise) = self.raw.text() else {
            return String::new();
        };
        JsFuture::from(promise)
            .await
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    }

    /// A reader over the body, or `None` when there is none.
    pub(crate) fn body_reader(&self) -> Option<BodyReader> {
        let body = self.raw.body()?;
        let reader = body
            .get_reader()
            .dyn_into::<ReadableStreamDefaultReader>()
            .ok()?;
        Some(BodyReader { reader })
    }
}

/// Makes `request` through `fetch_override` or the global `fetch`.
pub(crate) async fn fetch(
    fetch_override: Option<&Function>,
    request: &Request<'_>,
    signal: Option<&AbortSignal>,
) -> Result<Response, Fail> {
    let init = Object::new();
    let set = |key: &str, value: &JsValue| {
        let _ = Reflect::set(&init, &JsValue::from_str(key), value);
    };
    set("method", &JsValue::from_str(request.method));
    let headers = Object::new();
    for (name, value) in request.headers.iter() {
        let _ = Reflect::set(
            &headers,
            &JsValue::from_str(name),
            &JsValue::from_str(value),
        );
    }
    set("headers", &headers);
    if let Some(body) = request.body {
        set("body", &JsValue::from_str(body));
    }
    if let Some(signal) = signal {
        set("signal", signal);
    }
    let url = JsValue::from_str(&request.url);
    let called = match fetch_override {
        Some(f) => {
            let ctx = Object::new();
            let _ = Reflect::set(&ctx, &"endpoint".into(), &request.endpoint.as_str().into());
            let _ = Reflect::set(&ctx, &"chatId".into(), &request.chat_id.into());
            f.call3(&JsValue::UNDEFINED, &url, &init, &ctx)
        }
        None => match global_property("fetch").dyn_into::<Function>() {
            Ok(f) => f.call2(&js_sys::global(), &url, &init),
            Err(_) => {
                return Err(Error::Network {
                    message: "fetch is not available in this environment".into(),
                }
                .into())
            }
        },
    };
    let result = match called {
        Ok(value) => JsFuture::from(Promise::resolve(&value)).await,
        Err(thrown) => Err(thrown),
    };
    let value = result.map_err(|e| network_failure(&e, signal))?;
    let raw = value
        .dyn_into::<web_sys::Response>()
        .map_err(|_| Error::protocol("the fetch option did not return a Response"))?;
    Ok(Response {
        status: raw.status(),
        raw,
    })
}

/// A rejected fetch or read: an abort when the signal fired, otherwise a network failure.
pub(crate) fn network_failure(error: &JsValue, signal: Option<&AbortSignal>) -> Fail {
    if signal.is_some_and(|s| s.aborted()) {
        return Error::Aborted.into();
    }
    let message = Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "the request failed".into());
    Error::Network { message }.into()
}

/// Reads a response body chunk by chunk; cancels the body when dropped.
pub(crate) struct BodyReader {
    reader: ReadableStreamDefaultReader,
}

impl BodyReader {
    /// The next chunk of bytes, or `None` at the end of the body.
    pub(crate) async fn read(&self, signal: Option<&AbortSignal>) -> Result<Option<Vec<u8>>, Fail> {
        let result = JsFuture::from(self.reader.read())
            .await
            .map_err(|e| network_failure(&e, signal))?;
        let done = Reflect::get(&result, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true);
        if done {
            return Ok(None);
        }
        let value = Reflect::get(&result, &"value".into()).unwrap_or(JsValue::UNDEFINED);
        match value.dyn_into::<Uint8Array>() {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(_) => {
                Err(Error::protocol("the response body yielded something other than bytes").into())
            }
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        // Awaiting the cancel promise (rather than ignoring it) keeps a rejection from
        // surfacing as an unhandled one.
        let cancelled = JsFuture::from(self.reader.cancel());
        wasm_bindgen_futures::spawn_local(async move {
            let _ = cancelled.await;
        });
    }
}
