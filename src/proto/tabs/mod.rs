//! Which tab may send on a chat: claim / heartbeat / release over a BroadcastChannel, with
//! Web Locks where the browser has them. Pure: the caller passes `now_ms` and does the I/O.
//!
//! Wire-compatible with the JS transport's `ChatTabCoordinator` (channel
//! [`CHANNEL_NAME`], messages `claim` / `release` / `heartbeat` / `messages` / `session` keyed by
//! `chatId` and `tabId`), so a tab running the JS transport and a tab running this one share a
//! chat. Everything we add is an extra field or an extra message type the JS side ignores; see
//! [`Message`].
//!
//! # Driving contract (the browser layer)
//!
//! - One [`TabCoordinator`] per transport instance, with a unique `tab_id`
//!   ([`crate::proto::ids::uuid_v4_from_bytes`]). `now_ms` is always `Date.now()`: claim times
//!   are compared across tabs, so it must be a clock every tab shares (not `performance.now()`).
//! - After every call, perform [`TabCoordinator::take_effects`] in order:
//!   [`Effect::Broadcast`] → `channel.postMessage(JSON.parse(message.into_json_text()))`,
//!   swallowing errors; [`Effect::ReadOnlyChanged`] → read-only listeners;
//!   [`Effect::Messages`] / [`Effect::Session`] → apply to this tab's chat;
//!   [`Effect::LostClaim`] → release the chat's writer lock once this tab's turn on it ends.
//! - Incoming: [`Message::parse_text`]`(JSON.stringify(event.data))`, then
//!   [`TabCoordinator::receive`]. A parse error (or a throwing `stringify`) is counted and
//!   dropped, never thrown.
//! - Sending: with Web Locks, first `navigator.locks.request(writer_lock_name(chat), {ifAvailable:
//!   true})`; no lock → read-only; lock → [`TabCoordinator::claim`] with `lock_backed = true`,
//!   and give the lock back if that fails. Hold the lock until [`TabCoordinator::release`].
//!   Without Web Locks, claim with `lock_backed = false`.
//! - Release on turn complete, stop, closed session and on *any* failure after the claim (the
//!   JS transport leaked it, M4); [`TabCoordinator::release_all`] on `pagehide` and dispose;
//!   [`TabCoordinator::who`] again on `pageshow` from the bfcache.
//! - Timer: run at [`TabCoordinator::next_tick_ms`], and at least every
//!   [`HEARTBEAT_INTERVAL_MS`] while it returns `Some`. On each run, if
//!   [`TabCoordinator::lock_checks`] lists chats, take `q = Date.now()`, await
//!   `navigator.locks.query()`, report each with [`TabCoordinator::lock_status`]`(chat, held, q)`,
//!   *then* call [`TabCoordinator::tick`] (so a lock-confirmed claim is refreshed before it could
//!   time out).
//!
//! # How it differs from the JS coordinator
//!
//! - Crossing claims (M1) are settled by a rank every tab computes the same way: earliest `at`
//!   wins (a JS tab's claim has no `at` and ranks by its arrival), then the smaller `tabId`;
//!   between two lock-backed claims the *later* wins (locks are exclusive, so the earlier
//!   holder has let go and its message is stale). A winner that hears a rival re-announces
//!   itself; a loser gets [`Effect::LostClaim`]. A claim is denied, not ignored (M2:
//!   [`Error::ReadOnlyTab`](crate::proto::Error::ReadOnlyTab)).
//! - A heartbeat creates a claim it did not know, and a joining tab asks `who` (M3).
//! - A lock-backed claim is kept alive by the lock while its tab's timers are throttled, and
//!   dropped as soon as the lock is free (M6); a crashed JS owner still takes 10–15 s.
//! - `release` carries the claim's `at`, so a release overtaken by a newer claim of the same tab
//!   is ignored, and a claim overtaken by its own release stays released.
//! - `messages` / `session` carry a `version`; older ones never overwrite newer (M7, M8), and a
//!   session cursor never moves back (M10). Unversioned `messages` (JS tabs) apply as in JS,
//!   except in the tab that owns the chat: there they can only be a non-owner's stale copy (M8).
//! - Messages are validated ([`Message::parse`]) and carry `v: 1` (M10).

#[allow(unused_imports)]
use crate::prelude::*;
mod coordinator;
mod copies;
mod effect;
mod message;
mod owner;

pub use coordinator::TabCoordinator;
pub use effect::Effect;
pub(crate) use message::fits_id;
pub use message::{Claim, Message};

/// The BroadcastChannel every tab of the origin shares (the JS transport's name).
pub const CHANNEL_NAME: &str = "trigger-chat-tab-coord";

/// The protocol version this build writes as `v` on every message.
pub const PROTOCOL_VERSION: u64 = 1;

/// An owner announces each claim this often ([`TabCoordinator::tick`]).
pub const HEARTBEAT_INTERVAL_MS: u64 = 5_000;

/// Another tab's claim not heard from (nor confirmed by its lock) for longer than this is dropped.
/// With ticks at most [`HEARTBEAT_INTERVAL_MS`] apart, a dead owner is gone 10–15 s after its last
/// heartbeat.
pub const CLAIM_TIMEOUT_MS: u64 = 10_000;

/// Longest `chatId`, `tabId` or `lastEventId` accepted, in characters.
pub const MAX_ID_CHARS: usize = 256;

/// Largest `messages` array accepted, as JSON text (escapes aside).
pub const MAX_MESSAGES_JSON_BYTES: usize = 4 << 20;

/// Name of the Web Lock a tab holds while it owns `chat_id`.
///
/// ```
/// use trigger_chat_wasm::proto::tabs::writer_lock_name;
///
/// assert_eq!(writer_lock_name("chat-1"), "trigger-chat:chat-1:writer");
/// ```
pub fn writer_lock_name(chat_id: &str) -> String {
    let mut name = String::with_capacity(chat_id.len() + 20);
    name.push_str("trigger-chat:");
    name.push_str(chat_id);
    name.push_str(":writer");
    name
}
