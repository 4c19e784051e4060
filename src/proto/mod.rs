//! Pure-Rust protocol core: no I/O, no clock, no JS types.
//!
//! Plain data in, plain data out; time and randomness are parameters. The web layer feeds bytes
//! and events in and performs what comes back. Everything here is tested natively.
//!
//! - [`sse`]: incremental `text/event-stream` decoder (push bytes, pull events);
//! - [`records`]: S2 `batch` / `ping` / `error` / `[DONE]` events → records, classified;
//! - [`wire`]: `.in/append` bodies, payload shaping, the append response;
//! - [`session`]: per-chat persisted state and its storage record;
//! - [`tabs`]: which tab may send on a chat (claim / heartbeat / release, Web Locks);
//! - [`retry`]: backoff and rate-limit waits;
//! - [`url`]: session URLs and `encodeURIComponent`;
//! - [`json`]: the small JSON reader/writer the rest uses (no serde in the wasm);
//! - [`error`]: the crate's one [`Error`] type;
//! - [`driver`]: the whole transport as one sans-IO state machine;
//! - [`chat`]: per-chat state (token, cursor, turn in flight, closed);
//! - [`turn`]: which records of a subscription reach the consumer, and when its turn is over;
//! - [`append`]: the retry policy of one `.in/append`;
//! - [`reconnect`]: the reconnect policy of one `.out` subscription;
//! - [`headers`]: case-insensitive request header lists;
//! - [`ids`]: client-made identifiers;
//! - [`jwt`]: when a token expires (its `exp` claim);
//! - [`table`]: a `Vec` for rows addressed by position, failing without `core::fmt`.

#[allow(unused_imports)]
use crate::prelude::*;
pub mod append;
pub mod chat;
pub mod driver;
pub mod error;
pub mod headers;
pub mod ids;
pub mod json;
pub mod jwt;
pub mod reconnect;
pub mod records;
pub mod retry;
pub mod session;
pub mod sse;
pub mod table;
pub mod tabs;
pub mod turn;
pub mod url;
pub mod wire;

pub use error::Error;
