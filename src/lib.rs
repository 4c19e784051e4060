//! trigger-chat-wasm: a Trigger.dev chat transport for the Vercel AI SDK, compiled to WebAssembly.
//!
//! Two layers, one direction only (see the README's design notes):
//! - [`proto`]: pure Rust — the protocol and the whole transport as a sans-IO state machine
//!   ([`proto::driver`]), tested natively;
//! - `bindings` (wasm32 only): the `#[wasm_bindgen]` surface the JS I/O layer
//!   (`pkg-template/transport.js`) drives.
#![deny(missing_docs)]

pub mod proto;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
