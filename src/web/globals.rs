//! The few JavaScript globals the crate calls, declared once. They exist in every browser,
//! worker and Node-like runtime; anything that may be missing is looked up and checked instead.

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
    /// `Date.now()`: wall-clock milliseconds (event timestamps, rate-limit resets).
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    pub(crate) fn now_ms() -> f64;
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    pub(crate) fn random() -> f64;
}

/// `globalThis[name]`, or `undefined` when absent or when reading it throws.
pub(crate) fn global_property(name: &str) -> JsValue {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// `Date.now()` as whole milliseconds.
pub(crate) fn now() -> u64 {
    let ms = now_ms();
    if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    }
}

/// A random v4 UUID: `crypto.randomUUID()` where it exists (secure contexts), otherwise
/// `crypto.getRandomValues`, otherwise `Math.random` (the JS transport requires a secure
/// context here, W24).
pub(crate) fn random_uuid() -> String {
    let crypto = global_property("crypto");
    if let Ok(f) = Reflect::get(&crypto, &JsValue::from_str("randomUUID")) {
        if let Some(f) = f.dyn_ref::<Function>() {
            if let Some(s) = f.call0(&crypto).ok().and_then(|v| v.as_string()) {
                return s;
            }
        }
    }
    let mut bytes = [0u8; 16];
    let filled = Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .and_then(|f| {
            let array = js_sys::Uint8Array::new_with_length(16);
            f.call1(&crypto, &array).ok()?;
            array.copy_to(&mut bytes);
            Some(())
        });
    if filled.is_none() {
        for b in bytes.iter_mut() {
            *b = (random() * 256.0) as u8;
        }
    }
    crate::proto::ids::uuid_v4_from_bytes(bytes)
}
