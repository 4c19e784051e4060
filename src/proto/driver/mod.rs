//! The whole transport as one sans-IO state machine (quinn-proto's shape): the host feeds in
//! calls and I/O results with the time, and performs the [`Action`]s that come out.
//!
//! The host is the small JS layer in `pkg-template/transport.js`: it makes the `fetch`es, reads
//! bodies when asked, runs timers, calls the app's callbacks, talks to `BroadcastChannel` and
//! Web Locks, and wraps streams in `ReadableStream`s. Every decision — what to send, when to
//! retry, which records reach the app, what to persist, which events fire — is made here and
//! tested natively.
//!
//! Driving contract:
//! - after every call, take [`Driver::drain`] and perform the actions in order;
//! - a `Fetch` is answered by exactly one of `fetch_text` (`.in`, or a non-200 `.out`),
//!   `fetch_open` (a 200 `.out`), `fetch_failed`; an open `.out` then gets `fetch_bytes` or
//!   `fetch_end` (or `fetch_failed`) once per `Read`; results for aborted requests are ignored;
//! - a `SetTimer` is answered by `timer(id)` unless cleared; a `Call` by `callback_ok` or
//!   `callback_failed`;
//! - before any call naming a chat the driver does not know (`knows`), hand it the stored state
//!   with `hydrate`.

#[allow(unused_imports)]
use crate::prelude::*;
mod action;
mod auth;
mod config;
mod events;
mod link;
mod ops;
mod stream;
mod tabs;

pub use action::{
    push_u64, u64_string, write_actions, write_error, Action, Callback, Endpoint, ErrorRef, Value,
};
pub use config::{header_list, Config};
pub use ops::SendRequest;
pub use stream::{json_string, Wake};

use crate::proto::chat::ChatState;
use crate::proto::json::Json;
use crate::proto::session::PersistedSession;
use crate::proto::table::Table;
use crate::proto::Error;
use auth::TokenCall;
use events::EventBuilder;
use ops::Op;
use stream::Sub;

/// Per-chat bookkeeping.
#[derive(Debug)]
struct Chat {
    id: String,
    state: ChatState,
    /// The subscription that currently serves the chat.
    active: Option<u32>,
    /// `startSession` / `accessToken` in flight.
    token_call: Option<TokenCall>,
    /// How many tokens those callbacks have handed this chat (see [`auth::UsedToken`]).
    token_epoch: u32,
    /// A token not to refresh early again (see [`Driver::token_for`]).
    early_skip: Option<String>,
    /// Message id and time of the last turn-producing send (event attribution).
    last_send: Option<(Option<String>, u64)>,
    storage_warned: bool,
    /// The agent ends turns in the prior wire shape (a `trigger:turn-complete` data record),
    /// which says nothing of the inputs it consumed: sends cannot hold by seq, they stream.
    legacy: bool,
    /// `activeInputSeq` of the turn a stop was already sent for.
    stopped_turn: Option<Option<u64>>,
    /// Sends made while the chat's `headStart` request waits for its response (and the
    /// session it brings): they follow it.
    after_head_start: Vec<ops::PendingTurn>,
    /// Sends made while a stop of the chat is on its way to `.in`: they follow it, so the
    /// agent never takes the stop for the turn a later message starts.
    after_stop: Vec<ops::PendingTurn>,
    /// Fingerprints of the states this page saved (and reported) last, newest last: see
    /// `set_session`.
    saved: Vec<u64>,
    /// Steering messages of this tab (`sendPendingMessage`). One that no boundary has consumed
    /// is answered by a turn of its own (see `owe_steer_turn`).
    steers: Vec<ops::Steer>,
    /// `.in` seqs of this tab's latest stops: no boundary answers them (see `turn::Turn`).
    stops: Vec<u64>,
    /// The connection state last reported (`connection-state`).
    link: link::Report,
}

/// Where the stored state of a chat came from (see [`Driver::hydrate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    /// Nothing stored.
    Nothing,
    /// The localStorage record text, as written by [`PersistedSession::encode_for_storage`].
    Record(&'a str),
    /// A `ChatSessionPersistedState` as JSON text (from the app's `persistence.load`).
    Shape(&'a str),
}

/// The transport state machine.
#[derive(Debug)]
pub struct Driver {
    config: Config,
    client_data: Option<Json>,
    chats: Table<Chat>,
    ops: Table<Op>,
    subs: Table<Sub>,
    actions: Vec<Action>,
    next_id: u32,
    rng: u64,
    disposed: bool,
    tabs: Option<tabs::Tabs>,
    /// The browser reports no network (`navigator.onLine === false`): failures without a
    /// response wait for it instead of counting (see `append` and `reconnect`).
    offline: bool,
    /// No early token refresh any more (see `Driver::token_for`).
    early_off: bool,
    /// The last states of chats removed (`removeSession`, here or in another tab), newest
    /// last: each as its fingerprint keyed by the chat ([`removed_key`]), and when: see
    /// `set_session`.
    removed: Vec<(u64, u64)>,
}

impl Driver {
    /// A driver for the options object `options` (see [`Config::parse`]); `seed` feeds the
    /// jitter of retries and the part ids' randomness comes from the host.
    pub fn new(options: &Json, seed: u64) -> Result<Driver, Error> {
        let mut config = Config::parse(options)?;
        let sessions = core::mem::take(&mut config.sessions);
        let mut driver = Driver {
            client_data: config.client_data.take(),
            config,
            chats: Table::new(),
            ops: Table::new(),
            subs: Table::new(),
            actions: Vec::new(),
            next_id: 1,
            rng: seed | 1,
            disposed: false,
            tabs: None,
            offline: false,
            early_off: false,
            removed: Vec::new(),
        };
        if driver.config.multi_tab {
            driver.tabs = Some(tabs::Tabs::new(&driver.config.tab_id, driver.config.locks));
            driver.tab_effects(0);
        }
        for (chat_id, session) in sessions {
            driver.loaded(&chat_id, session.map(Some));
        }
        Ok(driver)
    }

    /// The actions to perform, in order.
    pub fn drain(&mut self) -> Vec<Action> {
        self.report_links();
        core::mem::take(&mut self.actions)
    }

    /// Whether the chat's state is loaded (otherwise call [`Driver::hydrate`] first).
    pub fn knows(&self, chat_id: &str) -> bool {
        self.chat_index(chat_id).is_some()
    }

    /// Loads the stored state of a chat the driver does not know yet. Unreadable storage is
    /// reported once as a `storage-error` event and the chat starts empty.
    /// A state of a chat removed less than 10 s before `now_ms` (see `set_session`) reads as
    /// nothing: a store not yet told (another tab's removal, a write still on its way) would
    /// bring the chat back.
    pub fn hydrate(&mut self, chat_id: &str, stored: Stored<'_>, now_ms: u64) {
        if self.knows(chat_id) {
            return;
        }
        let decoded = match stored {
            Stored::Nothing => Ok(None),
            Stored::Record(text) => PersistedSession::decode_from_storage(text, chat_id).map(Some),
            Stored::Shape(text) => Json::parse(text)
                .and_then(|json| PersistedSession::from_json(&json))
                .map(Some),
        };
        // (Fingerprinted only while some removal is remembered: a saved send makes it long.)
        let removed = |p: &PersistedSession| {
            !self.removed.is_empty()
                && self.removed_lately(chat_id, fingerprint(&p.to_js_shape_json()), now_ms)
        };
        let decoded = decoded.map(|d| d.filter(|p| !removed(p)));
        self.loaded(chat_id, decoded);
    }

    /// Takes in a chat's state as read from storage or from the `sessions` option: unreadable,
    /// the chat starts empty and one `storage-error` says why.
    fn loaded(&mut self, chat_id: &str, decoded: Result<Option<PersistedSession>, Error>) {
        let state = match decoded {
            Ok(Some(session)) => ChatState::from_persisted(&session),
            Ok(None) => ChatState::default(),
            Err(error) => {
                // The reason without its kind ("storage error: " is added once, below).
                let message = match error {
                    Error::Storage { message } | Error::Protocol { message } => message,
                    other => other.message(),
                };
                self.insert_chat(chat_id, ChatState::default());
                self.storage_failed(chat_id, &message);
                return;
            }
        };
        self.insert_chat(chat_id, state);
        if self.is_read_only(chat_id) {
            // Another tab has the chat already: a saved send loaded now is that tab's (it read
            // it, or sent it); this tab must neither send it later nor write it back.
            self.forget_loaded_send(chat_id);
        }
    }

    /// The host could not save or load a chat's state: one `storage-error` event per chat.
    pub fn storage_failed(&mut self, chat_id: &str, message: &str) {
        if let Some(i) = self.chat_index(chat_id) {
            if self.chats[i].storage_warned {
                return;
            }
            self.chats[i].storage_warned = true;
        }
        let error = ErrorRef::Ours(Error::storage(message));
        self.emit(EventBuilder::new("storage-error", chat_id), Some(error));
    }

    /// `setClientData`: used by the next send and session start.
    pub fn set_client_data(&mut self, client_data: Option<Json>) {
        self.client_data = client_data.filter(|v| !v.is_null());
    }

    /// `setAccessToken` / `setStartSession`: which callbacks exist now.
    pub fn set_callbacks(&mut self, has_access_token: bool, has_start_session: bool) {
        self.config.has_access_token = has_access_token;
        self.config.has_start_session = has_start_session;
    }

    /// `getSession`: the chat's `ChatSessionPersistedState`.
    pub fn get_session(&self, chat_id: &str) -> Option<Json> {
        let i = self.chat_index(chat_id)?;
        self.chats[i]
            .state
            .to_persisted()
            .map(|p| p.to_js_shape_json())
    }

    /// `setSession`: replaces the chat's state (`closed` honoured, unlike the JS transport,
    /// W17); its stream keeps running on the new state.
    pub fn set_session(&mut self, chat_id: &str, session: &Json, now_ms: u64) -> Result<(), Error> {
        let persisted = PersistedSession::from_json(session)?;
        let echo = fingerprint(&persisted.to_js_shape_json());
        // A removed chat's state handed back soon after (by a store that echoes through a
        // round trip, or an effect that ran with the store's old value) does not bring it back.
        // Later, it is the app restoring the session, and applies.
        if self.removed_lately(chat_id, echo, now_ms) {
            return Ok(());
        }
        let i = self.chat_mut(chat_id);
        // A state this page saved (reported to `onSessionChange`) lately, handed back: an app
        // store bound both ways, perhaps late (a round trip through a database, after newer
        // saves, after a state the app set, or after changes this tab keeps in memory only),
        // perhaps after storage failed. Nothing changes, and nothing this tab knows beyond it
        // (its steering messages and stops, the cursor past a turn's start, another tab's news)
        // is forgotten. Applied, an echo of an older save would bring that state back, and
        // echoes could alternate without end. (So an app that sets one of those states again
        // gets the current one reported instead.)
        if self.chats[i].saved.contains(&echo) {
            if self.chats[i].saved.last() != Some(&echo) {
                // An older one: the store is told the state as it is now, whose echo settles.
                // (`persist` tells nothing in a tab that another has the chat from: what it
                // knows beyond the owner's saves it keeps in memory only.)
                self.persist(i);
            }
            return Ok(());
        }
        let mut state = ChatState::from_persisted(&persisted);
        // A cursor `seedResumeCursor` gave the chat before it had a session is kept when the
        // state set says none (as the JS transport does): the stream then opens past the
        // transcript already shown instead of replaying it.
        let held = &self.chats[i].state;
        if persisted.last_event_id.is_none() && held.token.is_none() {
            if let Some(seq) = held.cursor.get() {
                state.seed_cursor(seq);
            }
        }
        let own = self.chats[i]
            .state
            .pending_send
            .take()
            .filter(|p| self.sending_part(&p.part_id));
        if state.pending_send.is_none() && own.is_some() {
            // A send of this tab still in flight stays saved.
            state.pending_send = own;
            state.pending_loaded = false;
        }
        self.chats[i].state = state;
        self.chats[i].steers.clear();
        self.chats[i].stops.clear();
        // The state this page saved last is not saved or reported again: an `onSessionChange`
        // that hands each state back later (a two-way binding to an app store) would otherwise
        // never settle. (One never saved here, from `sessions` say, is.)
        let now = (self.chats[i].state.to_persisted()).map(|p| fingerprint(&p.to_js_shape_json()));
        if now.as_ref() != self.chats[i].saved.last() {
            self.persist(i);
        }
        Ok(())
    }

    /// Whether the state with fingerprint `print` is one of the last of `chat_id`'s, removed
    /// less than 10 s ago.
    fn removed_lately(&self, chat_id: &str, print: u64, now_ms: u64) -> bool {
        let key = removed_key(chat_id) ^ print;
        self.removed
            .iter()
            .any(|&(k, at)| k == key && lately(at, now_ms))
    }

    /// `removeSession`: forgets the chat, ends its sends (`aborted`) and its stream, and reports
    /// `null` (W16).
    /// The other tabs are told, and forget the chat too.
    pub fn remove_session(&mut self, chat_id: &str, now_ms: u64) {
        self.forget_chat(chat_id, true, now_ms);
    }

    /// Forgets a chat: its sends end (`aborted`) and its stream closes. `here`: `removeSession`
    /// in this tab, which tells the other tabs (first, so none takes the chat this tab frees
    /// before it hears), clears storage and reports `null` to `onSessionChange`. Otherwise
    /// another tab did all that, and may have saved a new session since: this tab only drops
    /// what it held in memory (its next use of the chat reads storage again).
    pub(super) fn forget_chat(&mut self, chat_id: &str, here: bool, now_ms: u64) {
        if here {
            self.announce_removed(chat_id, now_ms);
        }
        self.end_ops_of(chat_id, now_ms);
        if let Some(active) = self.chat_index(chat_id).and_then(|i| self.chats[i].active) {
            self.close_stream(active, now_ms);
        }
        if let Some(i) = self.chat_index(chat_id) {
            // (In every tab: a `connection-state` listener must not keep the old state.)
            self.report_removed(i);
            // (All of them stale: they go; too many: the oldest go.)
            let stale = self
                .removed
                .last()
                .is_some_and(|&(_, at)| !lately(at, now_ms));
            if stale {
                self.removed.clear();
            }
            // Its last saves, and the state it has (perhaps loaded and never saved here).
            let chat = removed_key(chat_id);
            let c = &mut self.chats[i];
            if let Some(state) = c.state.to_persisted() {
                let print = fingerprint(&state.to_js_shape_json());
                if c.saved.last() != Some(&print) {
                    c.saved.push(print);
                }
            }
            for &print in &self.chats[i].saved {
                if self.removed.len() >= REMOVED_STATES {
                    self.removed.remove(0);
                }
                self.removed.push((chat ^ print, now_ms));
            }
            self.chats.swap_remove(i);
        }
        if here {
            self.actions.push(Action::Persist {
                chat_id: chat_id.into(),
                state: None,
            });
        }
    }

    /// `seedResumeCursor`: moves the cursor forward to `last_event_id`, never back.
    pub fn seed_resume_cursor(&mut self, chat_id: &str, last_event_id: &str) {
        let Some(seq) = crate::proto::chat::Cursor::parse(Some(last_event_id)).get() else {
            return;
        };
        let i = self.chat_mut(chat_id);
        if self.chats[i].state.seed_cursor(seq) {
            self.persist(i);
        }
    }

    /// `sessionStatus`: whether the session is closed.
    pub fn is_closed(&self, chat_id: &str) -> bool {
        self.chat_index(chat_id)
            .is_some_and(|i| self.chats[i].state.closed)
    }

    /// `sessionClosedReason`.
    pub fn closed_reason(&self, chat_id: &str) -> Option<String> {
        let i = self.chat_index(chat_id)?;
        self.chats[i].state.closed_reason.clone()
    }

    /// `dispose()` / `close()`: closes every stream; later calls still work.
    pub fn dispose(&mut self, now_ms: u64) {
        self.disposed = true;
        let ids: Vec<u32> = self.subs.iter().map(Sub::id).collect();
        for id in ids {
            self.close_stream(id, now_ms);
        }
        if self.offline {
            // Sends that wait for the network and never left end here, with their timers.
            self.abort_unsent(now_ms);
        }
        self.abort_queued_sends(now_ms);
        // Sends held behind a stop end too; their saved copies stay for the next page.
        let held: Vec<u32> = self
            .chats
            .iter()
            .flat_map(|c| c.after_stop.iter().map(|p| p.op))
            .collect();
        for op in held {
            self.abort(op, false, now_ms);
        }
        self.page_hide(now_ms);
        self.park_tabs();
    }

    /// A request finished with a whole body: an `.in/append` (any status), or a `.out` that
    /// failed before streaming (non-200). `reset` is `x-ratelimit-reset`.
    pub fn fetch_text(
        &mut self,
        fetch: u32,
        status: u16,
        text: &str,
        reset: Option<u64>,
        now_ms: u64,
    ) {
        // (As Unix milliseconds: what the error's `resetAt` says.)
        let reset = reset.map(crate::proto::retry::reset_ms);
        if !self.append_response(fetch, status, text, reset, now_ms) {
            self.sub_http_error(fetch, status, text, reset, now_ms);
        }
    }

    /// What the browser says of the network (`navigator.onLine === false`); the host reports
    /// every change before its next call. Back online, whatever waited for the network goes
    /// at once.
    pub fn set_offline(&mut self, offline: bool, now_ms: u64) {
        let back = self.offline && !offline;
        self.offline = offline;
        if back {
            self.retry_parked_calls();
            self.retry_parked_appends(now_ms);
            self.retry_parked_head_starts();
        }
    }

    /// A request failed without a response, or a body read failed.
    pub fn fetch_failed(&mut self, fetch: u32, message: &str, now_ms: u64) {
        if !self.append_request_failed(fetch, message, now_ms) {
            self.sub_failed(fetch, message, now_ms);
        }
    }

    /// A timer set by `SetTimer` fired.
    pub fn timer(&mut self, id: u32, now_ms: u64) {
        if !self.append_timer(id, now_ms) && !self.sub_timer(id, now_ms) && !self.token_timer(id) {
            self.tabs_timer(id, now_ms);
        }
    }

    // ---- internals shared by the submodules ----

    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// A uniform sample in `[0, 1)` (xorshift64*; jitter only).
    fn random(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chat_index(&self, chat_id: &str) -> Option<usize> {
        self.chats.iter().position(|c| c.id == chat_id)
    }

    fn insert_chat(&mut self, chat_id: &str, state: ChatState) -> usize {
        self.chats.push(Chat {
            id: chat_id.into(),
            state,
            active: None,
            token_call: None,
            token_epoch: 0,
            early_skip: None,
            last_send: None,
            storage_warned: false,
            legacy: false,
            stopped_turn: None,
            after_head_start: Vec::new(),
            after_stop: Vec::new(),
            saved: Vec::new(),
            steers: Vec::new(),
            stops: Vec::new(),
            link: link::Report::default(),
        });
        self.chats.len() - 1
    }

    /// The chat's index, created empty when unknown (the host hydrates first when it can).
    fn chat_mut(&mut self, chat_id: &str) -> usize {
        match self.chat_index(chat_id) {
            Some(i) => i,
            None => self.insert_chat(chat_id, ChatState::default()),
        }
    }

    /// Saves the chat's state and tells `onSessionChange` (nothing before it has a token).
    fn persist(&mut self, chat: usize) {
        // Not by a tab that another has the chat from, unless a turn of its own still runs
        // there (its claim lost to a tab without Web Locks): what it knows beyond the owner's
        // saves it keeps in memory only (its copy would put an older token, cursor or turn over
        // the owner's, and drop the owner's saved send). The state is still remembered as one
        // it was told, for `set_session` to know its echo.
        let quiet = self
            .chats
            .get(chat)
            .is_some_and(|c| self.is_read_only(&c.id) && !self.own_turn(&c.id));
        let Some(c) = self.chats.get_mut(chat) else {
            return;
        };
        if let Some(state) = c.state.to_persisted() {
            let json = state.to_js_shape_json();
            let print = fingerprint(&json);
            if c.saved.last() != Some(&print) {
                if c.saved.len() == SAVED_FINGERPRINTS {
                    c.saved.remove(0);
                }
                c.saved.push(print);
            }
            if quiet {
                return;
            }
            self.actions.push(Action::Persist {
                chat_id: c.id.clone(),
                state: Some(json),
            });
        }
    }

    fn emit(&mut self, event: EventBuilder, error: Option<ErrorRef>) {
        self.actions.push(Action::Event {
            json: event.finish(),
            error,
        });
    }

    /// Marks the session closed (once): `session-closed` event, persisted.
    fn close_chat(&mut self, chat: usize, reason: Option<String>, source: &str) {
        let Some(c) = self.chats.get_mut(chat) else {
            return;
        };
        if !c.state.close(reason.clone()) {
            return;
        }
        c.steers.clear();
        let id = c.id.clone();
        let mut event = EventBuilder::new("session-closed", &id);
        event.str_opt("reason", reason.as_deref());
        event.str("source", source);
        self.emit(event, None);
        self.persist(chat);
    }
}

/// How many of a chat's latest saves `set_session` recognises when an app hands them back.
const SAVED_FINGERPRINTS: usize = 16;

/// How many states of removed chats `set_session` remembers, to ignore them handed back late.
const REMOVED_STATES: usize = 1024;

/// How long after `removeSession` a chat's last states handed back count as late echoes.
const REMOVED_ECHO_MS: u64 = 10_000;

/// Whether `at` was less than [`REMOVED_ECHO_MS`] ago (not if the clock went back past it).
fn lately(at: u64, now_ms: u64) -> bool {
    now_ms >= at && now_ms - at < REMOVED_ECHO_MS
}

/// A fingerprint of a saved state's JS shape (FNV-1a of its JSON text): what `set_session`
/// compares.
fn fingerprint(state: &Json) -> u64 {
    fnv(&state.to_json_string())
}

/// What a removed chat's state fingerprints are XORed with, so one chat's never match
/// another's.
fn removed_key(chat_id: &str) -> u64 {
    fnv(chat_id).rotate_left(1)
}

/// FNV-1a of `text`.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
