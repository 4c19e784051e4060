//! The `#[wasm_bindgen]` surface — the only one in the crate. `WasmTransport` and `WasmStream`
//! are internal classes: the hand-written `TriggerChatTransport` in `pkg-template/index.js`
//! wraps them (lazy, shared wasm instantiation; a real `ReadableStream` around `WasmStream`).

mod options;
mod stream;
mod transport;

pub use stream::WasmStream;
pub use transport::WasmTransport;
