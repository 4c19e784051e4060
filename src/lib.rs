//! trigger-chat-wasm: a Trigger.dev chat transport for the Vercel AI SDK, compiled to WebAssembly.
//!
//! Two layers, one direction only (see the README's design notes):
//! - [`proto`]: pure Rust — the protocol and the whole transport as a sans-IO state machine
//!   ([`proto::driver`]), tested natively;
//! - `bindings` (wasm32 only): the `#[wasm_bindgen]` surface the JS I/O layer
//!   (`pkg-template/transport.js`) drives.
#![deny(missing_docs)]
// The shipped wasm (`--features slim`, what scripts/build uses) is `no_std`: without std's panic
// machinery and its `core::fmt` the module is ~10 KB smaller. Tests and native builds use std.
#![cfg_attr(all(feature = "slim", not(test)), no_std)]

extern crate alloc;

/// What the crate uses from `alloc`, imported everywhere so `no_std` and std builds read alike.
#[allow(unused_imports)]
pub(crate) mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

/// Talc: smaller and faster than the default dlmalloc in wasm.
#[cfg(all(feature = "slim", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// Nothing in the crate panics on input (see the tests); should something panic anyway, the
/// module traps instead of formatting a message nobody reads.
#[cfg(all(feature = "slim", target_arch = "wasm32"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

pub mod ops;
pub mod proto;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
