//! `WasmStream`: what the JS glue's `ReadableStream` pulls from.

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::web::errors::fail_to_js;
use crate::web::transport::StreamHandle;

/// One subscription to a chat's `.out`. `next()` resolves to the JSON text of an array of
/// record bodies (`[{"data": chunk, "id": …}, …]`), or `undefined` at the end.
#[wasm_bindgen]
pub struct WasmStream {
    handle: StreamHandle,
}

impl WasmStream {
    pub(crate) fn new(handle: StreamHandle) -> WasmStream {
        WasmStream { handle }
    }
}

#[wasm_bindgen]
impl WasmStream {
    /// The next batch of record bodies, or `undefined` when the stream is over.
    pub fn next(&self) -> Promise {
        let handle = self.handle.clone();
        future_to_promise(async move {
            match handle.next().await {
                Ok(Some(batch)) => Ok(JsValue::from(batch)),
                Ok(None) => Ok(JsValue::UNDEFINED),
                Err(fail) => Err(fail_to_js(&fail)),
            }
        })
    }

    /// The consumer cancelled: close without stopping the agent (like the JS transport).
    pub fn cancel(&self) {
        self.handle.close_locally();
    }
}
