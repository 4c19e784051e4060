//! `multiTab`: one writer per chat across the tabs of an origin, read-only tabs kept in sync.
//!
//! Ownership is decided by `proto::tabs::TabCoordinator` (claims on the JS coordinator's
//! BroadcastChannel, wire-compatible with it). Where the browser has Web Locks, a send first
//! takes the chat's writer lock (`ifAvailable`), so two tabs sending at the same moment cannot
//! both win (the JS coordinator's race, M1); the lock also outlives throttled heartbeats of a
//! background tab and dies with a crashed one. The claim is released when the turn ends
//! however it ends — completion, stop, error, a failed send (M4) — and on `pagehide` and
//! dispose.

use super::action::Action;
use super::ops::PendingTurn;
use super::Driver;
#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::chat::Cursor;
use crate::proto::json::Json;
use crate::proto::tabs::{writer_lock_name, Effect, Message, TabCoordinator};
use crate::proto::Error;

/// How often the writer locks of other tabs' claims are looked at.
const LOCK_POLL_MS: u64 = 1_000;

/// The multi-tab state of a driver.
#[derive(Debug)]
pub(super) struct Tabs {
    coordinator: TabCoordinator,
    /// The host has `navigator.locks`.
    locks: bool,
    /// The tick timer and when it is due.
    timer: Option<(u32, u64)>,
    /// A `locks.query()` is out, issued at this time.
    querying: Option<u64>,
    /// Sends waiting for their chat's writer lock.
    pub(super) waiting: Vec<PendingTurn>,
    /// Chats whose lock request waits in the lock's queue (`multiTabSend: "queue"`).
    queued: Vec<String>,
    /// Chats whose writer lock this tab holds.
    held: Vec<String>,
    /// Channel messages that could not be read (malformed, or a type this tab does not know).
    ignored: u32,
    /// Disposed: no tick timer (no lock polling) until the transport is used again.
    parked: bool,
}

impl Tabs {
    pub(super) fn who(&mut self) {
        self.coordinator.who(None);
    }

    pub(super) fn new(tab_id: &str, locks: bool) -> Tabs {
        Tabs {
            coordinator: TabCoordinator::new(tab_id),
            locks,
            timer: None,
            querying: None,
            waiting: Vec::new(),
            queued: Vec::new(),
            held: Vec::new(),
            ignored: 0,
            parked: false,
        }
    }
}

impl Driver {
    /// Claims the chat of a send: `Some` go ahead (this tab owns it, or `multiTab` is off);
    /// `None` when it waits for the writer lock (it resumes in `lock_result`) or was refused
    /// (`read_only_tab`, reported already).
    pub(super) fn claim_for_send(
        &mut self,
        pending: PendingTurn,
        now_ms: u64,
    ) -> Option<PendingTurn> {
        let may_queue = self.config.queue_sends && self.replay_stream(pending.op).is_none();
        // A chat id too long for a tab message (over 256 characters) cannot be announced: that
        // chat goes uncoordinated, as without `multiTab`, rather than refusing every send.
        let Some(tabs) = self
            .tabs
            .as_mut()
            .filter(|_| crate::proto::tabs::fits_id(&pending.chat_id))
        else {
            return Some(pending);
        };
        let chat_id = pending.chat_id.clone();
        // Claims that timed out meanwhile (this tab disposed, its timer parked) are let go
        // first: the send takes the chat rather than being refused on a stale owner.
        tabs.coordinator.tick(now_ms);
        if tabs.coordinator.has_claim(&chat_id) {
            return Some(pending);
        }
        // A lock-backed owner that died (a crashed tab) freed its lock at once: try it rather
        // than wait for the claim to time out.
        let owner_locked = tabs.locks && tabs.coordinator.owner_has_lock(&chat_id);
        // `multiTabSend: "queue"`: wait in the writer lock's queue for the owner's turn to end.
        // Not a saved send replayed by a reload: that one is left to the tab that owns the chat.
        let queue = tabs.locks && may_queue;
        // (A replay while this tab waits in the lock's queue: another tab has the chat.)
        let taken = tabs.coordinator.is_read_only(&chat_id) && !owner_locked;
        if !queue && (taken || tabs.queued.contains(&chat_id)) {
            self.refuse_turn(pending, Error::ReadOnlyTab, now_ms);
            return None;
        }
        // This tab still holds the lock (its turn runs on after a lock-less tab's claim beat
        // its own): asking for it again would wait behind itself, so it claims at once.
        let held = tabs.held.contains(&chat_id);
        if tabs.locks && !held {
            self.wait_for_lock(pending, queue);
            return None;
        }
        let claimed = tabs.coordinator.claim(&chat_id, now_ms, held);
        self.tab_effects(now_ms);
        match claimed {
            Ok(()) => Some(pending),
            Err(error) => {
                self.refuse_turn(pending, error, now_ms);
                None
            }
        }
    }

    /// The host's answer to `LockRequest`: whether the writer lock of `chat_id` was granted.
    pub fn lock_result(&mut self, chat_id: &str, granted: bool, now_ms: u64) {
        let Some(tabs) = self.tabs.as_mut() else {
            if granted {
                self.actions.push(Action::LockRelease {
                    name: writer_lock_name(chat_id),
                    chat_id: chat_id.into(),
                });
            }
            return;
        };
        let (waiting, rest): (Vec<_>, Vec<_>) = core::mem::take(&mut tabs.waiting)
            .into_iter()
            .partition(|p| p.chat_id == chat_id);
        tabs.waiting = rest;
        let queued = tabs.queued.len();
        tabs.queued.retain(|c| c != chat_id);
        if waiting.is_empty() && !granted {
            return; // an answer nobody waits for (the sends were aborted): nothing to release
        }
        let requeue = !granted && tabs.queued.len() == queued && self.config.queue_sends;
        let mut answered = Vec::new();
        for pending in waiting {
            if self.op_aborted(pending.op) {
                self.finish_op(pending.op, Err(Error::Aborted.into()));
            } else if requeue && self.replay_stream(pending.op).is_none() {
                // The lock was busy: a send that may queue waits for it now (it arrived while
                // a reloaded saved send, which does not queue, asked whether it was free).
                self.wait_for_lock(pending, true);
            } else {
                answered.push(pending);
            }
        }
        if granted && answered.is_empty() {
            // Nobody wants it any more (the sends were aborted while they waited).
            self.actions.push(Action::LockRelease {
                name: writer_lock_name(chat_id),
                chat_id: chat_id.into(),
            });
            return;
        }
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        let claimed = if granted {
            tabs.held.push(chat_id.into());
            tabs.coordinator.claim(chat_id, now_ms, true)
        } else {
            Err(Error::ReadOnlyTab)
        };
        self.tab_effects(now_ms);
        if claimed.is_err() {
            self.release_claim(chat_id, now_ms);
        }
        for pending in answered {
            match &claimed {
                Ok(()) => self.start_claimed_turn(pending, now_ms),
                Err(error) => self.refuse_turn(pending, error.clone(), now_ms),
            }
        }
        // A send aborted while it waited for the lock leaves nothing to hold it for.
        self.release_if_idle(chat_id, now_ms);
    }

    /// A send waits for its chat's writer lock; the first one for the chat asks for it: if it
    /// is free (`ifAvailable`), or with `queue` (`multiTabSend: "queue"`) in the lock's queue.
    /// (One request per chat: a send that arrives while a reloaded saved send asks whether the
    /// lock is free waits for that answer, then queues.)
    fn wait_for_lock(&mut self, pending: PendingTurn, queue: bool) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        let chat_id = pending.chat_id.clone();
        let first = !tabs.waiting.iter().any(|p| p.chat_id == chat_id);
        tabs.waiting.push(pending);
        if first {
            if queue {
                tabs.queued.push(chat_id.clone());
            }
            self.actions.push(Action::LockRequest {
                name: writer_lock_name(&chat_id),
                chat_id,
                wait: queue,
            });
        }
    }

    /// An aborted send that waits in its chat's writer lock queue ends now, and a lock request
    /// no send waits for any more is cancelled. (A send waiting for an `ifAvailable` answer
    /// ends with that answer, which comes at once.)
    pub(super) fn drop_waiting_send(&mut self, op: u32) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        let Some(i) = tabs.waiting.iter().position(|p| p.op == op) else {
            return;
        };
        let chat_id = tabs.waiting[i].chat_id.clone();
        if !tabs.queued.contains(&chat_id) {
            return;
        }
        tabs.waiting.remove(i);
        if !tabs.waiting.iter().any(|p| p.chat_id == chat_id) {
            tabs.queued.retain(|c| *c != chat_id);
            self.actions.push(Action::LockRelease {
                name: writer_lock_name(&chat_id),
                chat_id,
            });
        }
        self.finish_op(op, Err(Error::Aborted.into()));
    }

    /// `dispose()`: sends queued behind another tab's turn end (aborted), and their lock
    /// requests are cancelled; one that waits for an `ifAvailable` answer is aborted, and ends
    /// with that answer (a lock granted then is handed straight back).
    pub(super) fn abort_queued_sends(&mut self, now_ms: u64) {
        while let Some(op) = self.tabs.as_ref().and_then(|t| {
            let p = t.waiting.iter().find(|p| t.queued.contains(&p.chat_id))?;
            Some(p.op)
        }) {
            self.drop_waiting_send(op);
        }
        let waiting: Vec<u32> = self
            .tabs
            .as_ref()
            .map(|t| t.waiting.iter().map(|p| p.op).collect())
            .unwrap_or_default();
        for op in waiting {
            // (Its saved copy stays, as for a send `dispose()` ends offline.)
            self.abort(op, false, now_ms);
        }
    }

    /// Releases this tab's claim (and writer lock) on `chat_id`, unless a turn of it is still
    /// running or waiting here.
    pub(super) fn release_if_idle(&mut self, chat_id: &str, now_ms: u64) {
        if self.tabs.is_none() {
            return;
        }
        let active = self
            .chat_index(chat_id)
            .is_some_and(|c| self.chats[c].active.is_some());
        if active || self.turn_pending(chat_id) {
            return;
        }
        self.release_claim(chat_id, now_ms);
    }

    fn release_claim(&mut self, chat_id: &str, now_ms: u64) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        if tabs.coordinator.has_claim(chat_id) {
            tabs.coordinator.release(chat_id);
        }
        let held = tabs.held.len();
        tabs.held.retain(|c| c != chat_id);
        if tabs.held.len() != held {
            self.actions.push(Action::LockRelease {
                name: writer_lock_name(chat_id),
                chat_id: chat_id.into(),
            });
        }
        self.tab_effects(now_ms);
    }

    /// `pagehide` (and `dispose`): give up every claim so other tabs can write at once.
    pub fn page_hide(&mut self, now_ms: u64) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        tabs.coordinator.release_all();
        for chat_id in core::mem::take(&mut tabs.held) {
            self.actions.push(Action::LockRelease {
                name: writer_lock_name(&chat_id),
                chat_id,
            });
        }
        self.tab_effects(now_ms);
    }

    /// `dispose`, after [`Self::page_hide`]: the tick timer stops, so a transport nobody uses
    /// polls no locks; [`Self::rejoin`] starts it again.
    pub(super) fn park_tabs(&mut self) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        tabs.parked = true;
        if let Some((timer, _)) = tabs.timer.take() {
            self.actions.push(Action::ClearTimer { id: timer });
        }
    }

    /// The tab is back (used again after `dispose`, or shown from the back/forward cache): what
    /// it knew of the other tabs may be stale, so it asks them who owns what (`who`).
    pub fn rejoin(&mut self, now_ms: u64) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        tabs.parked = false;
        tabs.who();
        self.tab_effects(now_ms);
    }

    /// A message from another tab (`BroadcastChannel`), as JSON text. Malformed ones are
    /// counted ([`Self::ignored_tab_messages`]) and ignored; nothing here throws.
    pub fn tab_message(&mut self, text: &str, now_ms: u64) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        let Ok(message) = Message::parse_text(text) else {
            tabs.ignored = tabs.ignored.saturating_add(1);
            return;
        };
        if let Message::Removed { chat_id, tab_id } = &message {
            // Another tab's `removeSession`: here, at the top of a host call, where no caller
            // holds an index into the chats this removes.
            if *tab_id != tabs.coordinator.tab_id() {
                let chat_id = chat_id.clone();
                self.forget_chat(&chat_id, false, now_ms);
            }
            return;
        }
        tabs.coordinator.receive(message, now_ms);
        self.tab_effects(now_ms);
    }

    /// `broadcastMessages(chatId, messages)`: this tab's conversation for the other tabs,
    /// stamped with a version newer than any it has seen, so stale copies never win.
    pub fn broadcast_messages(&mut self, chat_id: &str, messages: &str, now_ms: u64) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        let Ok(messages) = Json::parse(messages) else {
            return;
        };
        let version = now_ms.max(
            tabs.coordinator
                .messages_version(chat_id)
                .map_or(0, |v| v.saturating_add(1)),
        );
        let _ = tabs
            .coordinator
            .broadcast_messages(chat_id, messages, version);
        self.tab_effects(now_ms);
    }

    /// Tells the other tabs where the chat's stream stands (after a turn completed here).
    pub(super) fn broadcast_cursor(&mut self, chat: usize, now_ms: u64) {
        let Some(cursor) = self
            .chats
            .get(chat)
            .and_then(|c| c.state.cursor.header_value())
        else {
            return;
        };
        let chat_id = self.chats[chat].id.clone();
        let consumed = self.chats[chat].state.consumed_input_seq;
        if let Some(tabs) = self.tabs.as_mut() {
            // Newer than any seen, as for conversations: after the clock stepped back, a
            // version from it would read as stale to the tabs that saw the last one.
            let version = now_ms.max(
                tabs.coordinator
                    .session_version(&chat_id)
                    .map_or(0, |v| v.saturating_add(1)),
            );
            let _ = tabs
                .coordinator
                .broadcast_session(&chat_id, &cursor, consumed, version);
            self.tab_effects(now_ms);
        }
    }

    /// `ignoredTabMessages()`: how many channel messages this tab could not read and ignored
    /// (malformed or hostile ones, or a type it does not know). 0 without `multiTab`.
    pub fn ignored_tab_messages(&self) -> u32 {
        self.tabs.as_ref().map_or(0, |t| t.ignored)
    }

    /// `isReadOnly(chatId)`: another tab owns the chat.
    pub fn is_read_only(&self, chat_id: &str) -> bool {
        self.tabs
            .as_ref()
            .is_some_and(|t| t.coordinator.is_read_only(chat_id))
    }

    /// Whether this tab holds the chat's writer lock.
    pub(super) fn holds_lock(&self, chat_id: &str) -> bool {
        self.tabs
            .as_ref()
            .is_some_and(|t| t.held.iter().any(|c| c == chat_id))
    }

    /// `hasClaim(chatId)`: this tab owns the chat.
    pub fn has_claim(&self, chat_id: &str) -> bool {
        self.tabs
            .as_ref()
            .is_some_and(|t| t.coordinator.has_claim(chat_id))
    }

    /// The host's answer to `LockQuery`: the names of the locks held (by any tab), issued at
    /// `queried_at_ms`.
    pub fn lock_status(&mut self, held: Option<&[String]>, queried_at_ms: u64, now_ms: u64) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        tabs.querying = None;
        // `None`: the query failed. Nothing is known of the locks, so no claim is dropped for
        // want of one; claims still expire without heartbeats.
        if let Some(held) = held {
            let checks: Vec<String> = tabs.coordinator.lock_checks().map(str::to_owned).collect();
            for chat_id in checks {
                let name = writer_lock_name(&chat_id);
                let is_held = held.contains(&name);
                tabs.coordinator
                    .lock_status(&chat_id, is_held, queried_at_ms);
            }
        }
        tabs.coordinator.tick(now_ms);
        self.tab_effects(now_ms);
    }

    /// `removeSession` here: the other tabs forget the chat too.
    pub(super) fn announce_removed(&mut self, chat_id: &str, now_ms: u64) {
        if let Some(tabs) = self.tabs.as_mut() {
            tabs.coordinator.announce_removed(chat_id);
            self.tab_effects(now_ms);
        }
    }

    /// The tick timer fired: ask about locks first when some claim depends on one.
    pub(super) fn tabs_timer(&mut self, timer: u32, now_ms: u64) -> bool {
        let Some(tabs) = self.tabs.as_mut() else {
            return false;
        };
        if tabs.timer.map(|t| t.0) != Some(timer) {
            return false;
        }
        tabs.timer = None;
        if tabs.locks && tabs.coordinator.lock_checks().next().is_some() {
            if tabs.querying.is_none() {
                tabs.querying = Some(now_ms);
                self.actions.push(Action::LockQuery);
            }
            return true;
        }
        tabs.coordinator.tick(now_ms);
        self.tab_effects(now_ms);
        true
    }

    /// Turns the coordinator's effects into actions and keeps its timer set.
    pub(super) fn tab_effects(&mut self, now_ms: u64) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        let effects = tabs.coordinator.take_effects();
        let mut lost = Vec::new();
        for effect in effects {
            match effect {
                Effect::Broadcast(message) => self.actions.push(Action::Broadcast {
                    message: message.into_json(),
                }),
                Effect::ReadOnlyChanged { chat_id, read_only } => {
                    if read_only {
                        self.forget_loaded_send(&chat_id);
                    }
                    self.actions.push(Action::ReadOnly { chat_id, read_only })
                }
                Effect::Messages {
                    chat_id, messages, ..
                } => self.actions.push(Action::TabMessages { chat_id, messages }),
                Effect::Session {
                    chat_id,
                    last_event_id,
                    consumed_input_seq,
                } => {
                    // Another tab finished a turn: move this tab's cursor up (never back), and
                    // learn which inputs that turn answered. In memory only, as the JS
                    // transport does: that tab has saved the newer state (token, `closed`), and
                    // this tab's copy written now would put its older token back over it.
                    if let (Some(chat), Some(seq)) = (
                        self.chat_index(&chat_id),
                        Cursor::parse(Some(&last_event_id)).get(),
                    ) {
                        if let Some(consumed) = consumed_input_seq {
                            self.note_consumed(chat, consumed);
                        }
                        self.chats[chat].state.seed_cursor(seq);
                    }
                }
                Effect::LostClaim { chat_id } => lost.push(chat_id),
            }
        }
        // A claim lost to a tab without Web Locks: this tab's turn (if one runs) goes on, so
        // its writer lock is kept until the turn ends, and no tab waiting for it starts a third.
        for chat_id in lost {
            self.release_if_idle(&chat_id, now_ms);
        }
        self.schedule_tabs(now_ms);
    }

    fn schedule_tabs(&mut self, now_ms: u64) {
        let id = self.next_id;
        let Some(tabs) = self.tabs.as_mut().filter(|t| !t.parked) else {
            return;
        };
        let Some(mut due) = tabs.coordinator.next_tick_ms() else {
            return;
        };
        // While another tab owns a chat with its Web Lock, look at the lock every second: a
        // crashed owner's lock is gone at once, and the read-only state should follow quickly.
        if tabs.locks && tabs.coordinator.lock_checks().next().is_some() {
            due = due.min(now_ms.saturating_add(LOCK_POLL_MS));
        }
        if tabs.querying.is_some() || tabs.timer.is_some_and(|(_, at)| at <= due) {
            return;
        }
        if let Some((old, _)) = tabs.timer.take() {
            self.actions.push(Action::ClearTimer { id: old });
        }
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        tabs.timer = Some((id, due));
        self.actions.push(Action::SetTimer {
            id,
            ms: due.saturating_sub(now_ms),
        });
    }
}
