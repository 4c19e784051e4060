//! trigger-chat-wasm: a Trigger.dev chat transport for the Vercel AI SDK, compiled to WebAssembly.
//!
//! Layers, one direction only (see the README's design notes):
//! - [`proto`]: pure Rust protocol logic, tested natively;
//! - `web` (wasm32 only): the browser side, the only user of web-sys/js-sys;
//! - `bindings` (wasm32 only): the `#[wasm_bindgen]` surface.
#![deny(missing_docs)]

pub mod proto;

#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
