//! Errors as JavaScript sees them: real `Error` objects with a stable `code` and, for HTTP
//! failures, `status` (plus `closedReason` / `resetAt` where they apply). HTTP failures are
//! named `TriggerApiError` like the JS transport's; the rest `TriggerChatError`.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

use super::Fail;
use crate::proto::Error;

/// A JS `Error` for `error`. An abort is named `AbortError`, which the AI SDK treats as a
/// clean stop rather than a failure.
pub(crate) fn error_to_js(error: &Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    if *error == Error::Aborted {
        js.set_name("AbortError");
        let _ = Reflect::set(&js, &"code".into(), &"aborted".into());
        return js.into();
    }
    let status = error.status();
    js.set_name(if status.is_some() {
        "TriggerApiError"
    } else {
        "TriggerChatError"
    });
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(&js, &JsValue::from_str(key), &value);
    };
    set("code", JsValue::from_str(error.code()));
    if let Some(status) = status {
        set("status", JsValue::from(status));
    }
    match error {
        Error::SessionClosed {
            closed_reason: Some(reason),
        } => set("closedReason", JsValue::from_str(reason)),
        Error::RateLimited {
            reset_epoch_ms: Some(reset),
        } => set("resetAt", JsValue::from_f64(*reset as f64)),
        _ => {}
    }
    js.into()
}

/// The JS value for a failure: our typed error, or the app's own thrown value as it was.
pub(crate) fn fail_to_js(fail: &Fail) -> JsValue {
    match fail {
        Fail::Error(error) => error_to_js(error),
        Fail::Thrown(value) => value.clone(),
    }
}
