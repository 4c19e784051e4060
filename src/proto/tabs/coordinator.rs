//! One tab's view of who owns which chat, driven by calls and returning effects.

use super::copies::Copies;
use super::effect::Effect;
use super::message::{check_messages, fits_id, Claim, Message};
use super::owner::Owner;
use super::{CLAIM_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS};
#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::json::Json;
use crate::proto::table::Table;
use crate::proto::Error;

/// A heartbeat is due this much before its interval ends, so a timer that fires a little early
/// (or a `Date.now()` a millisecond behind the timer's clock) does not skip a whole interval.
const TIMER_SLACK_MS: u64 = 250;

/// How far ahead of this tab's clock a copy's version may be (see `receive`): versions are
/// times, raised by 1 per change beyond them.
const MAX_VERSION_AHEAD_MS: u64 = 24 * 3_600_000;

/// Chats tracked per tab before unowned ones are forgotten (the channel is origin-wide).
const MAX_TRACKED_CHATS: usize = 256;

#[derive(Clone, Debug)]
struct ChatEntry {
    chat_id: String,
    owner: Option<Owner>,
    /// The `at` of our latest claim here; the next one is later even within the same ms.
    my_last_at: u64,
    /// The last release heard: (tab, at). Older claims of that tab arriving late are stale.
    released: Option<(String, u64)>,
    /// The other tab that owned the chat last (released it, or lost it to a newer claim): the
    /// JS transport releases a chat before it posts that turn's cursor.
    last_owner: Option<String>,
    copies: Copies,
}

/// One tab's coordinator: which chats it owns, which other tabs own, and what to tell them.
///
/// See the [module documentation](super) for the contract the browser layer follows.
///
/// ```
/// use trigger_chat_wasm::proto::tabs::{Effect, Message, TabCoordinator};
///
/// let mut a = TabCoordinator::new("tab-a");
/// let mut b = TabCoordinator::new("tab-b");
/// a.take_effects(); // the `who` each posts on joining
/// b.take_effects();
///
/// a.claim("chat-1", 2_000, false).unwrap();
/// let Some(Effect::Broadcast(claim)) = a.take_effects().pop() else { panic!() };
/// b.receive(Message::parse_text(&claim.into_json_text()).unwrap(), 2_010);
///
/// assert!(b.is_read_only("chat-1"));
/// assert_eq!(b.owner("chat-1"), Some("tab-a"));
/// assert!(b.claim("chat-1", 2_020, false).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct TabCoordinator {
    tab_id: String,
    chats: Table<ChatEntry>,
    effects: Vec<Effect>,
}

impl TabCoordinator {
    /// A coordinator for the tab `tab_id`; asks the owners to announce themselves (a `who`
    /// broadcast is the first effect).
    pub fn new(tab_id: &str) -> TabCoordinator {
        let mut coordinator = TabCoordinator {
            tab_id: tab_id.to_owned(),
            chats: Table::new(),
            effects: Vec::new(),
        };
        coordinator.who(None);
        coordinator
    }

    /// This tab's id.
    pub fn tab_id(&self) -> &str {
        &self.tab_id
    }

    /// The effects queued by the calls so far, oldest first.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        core::mem::take(&mut self.effects)
    }

    /// Ask owners to announce their claims (all chats, or one). Done by [`TabCoordinator::new`];
    /// repeat after the page comes back from the bfcache.
    pub fn who(&mut self, chat_id: Option<&str>) {
        self.effects.push(Effect::Broadcast(Message::Who {
            tab_id: self.tab_id.clone(),
            chat_id: chat_id.map(str::to_owned),
        }));
    }

    /// Take `chat_id` for sending. Denied with [`Error::ReadOnlyTab`] while another tab's live
    /// claim is known. `lock_backed`: the browser layer holds the chat's writer lock
    /// ([`super::writer_lock_name`]), so every lock-backed claim of another tab is stale and is
    /// dropped first. Claiming a chat this tab owns re-announces it.
    pub fn claim(&mut self, chat_id: &str, now_ms: u64, lock_backed: bool) -> Result<(), Error> {
        if !fits_id(chat_id) {
            return Err(Error::protocol("chat id too long or empty"));
        }
        let effects = &mut self.effects;
        let entry = entry_for(&mut self.chats, effects, chat_id);
        if let Some(theirs) = entry.owner.as_ref().filter(|owner| !owner.mine) {
            let timed_out = now_ms.saturating_sub(theirs.seen_ms) > CLAIM_TIMEOUT_MS;
            if !(timed_out || (lock_backed && theirs.lock)) {
                return Err(Error::ReadOnlyTab);
            }
            entry.owner = None;
            effects.push(read_only(chat_id, false));
        }
        let owner = match &mut entry.owner {
            Some(mine) => {
                mine.lock = lock_backed;
                mine
            }
            None => {
                let at = now_ms.max(entry.my_last_at.saturating_add(1));
                entry.my_last_at = at;
                entry.owner.insert(Owner {
                    tab_id: self.tab_id.clone(),
                    mine: true,
                    at,
                    lock: lock_backed,
                    seen_ms: now_ms,
                    since_ms: now_ms,
                })
            }
        };
        owner.seen_ms = now_ms;
        effects.push(Effect::Broadcast(Message::Claim(owner.claim(chat_id))));
        Ok(())
    }

    /// Give `chat_id` back, if this tab owns it.
    pub fn release(&mut self, chat_id: &str) {
        let Some(entry) = self.chats.iter_mut().find(|entry| entry.chat_id == chat_id) else {
            return;
        };
        if let Some(mine) = entry.owner.take_if(|owner| owner.mine) {
            self.effects.push(Effect::Broadcast(Message::Release {
                chat_id: entry.chat_id.clone(),
                tab_id: mine.tab_id,
                at: Some(mine.at),
            }));
        }
    }

    /// Tell the other tabs that this tab removed `chat_id`'s state (`removeSession`).
    pub fn announce_removed(&mut self, chat_id: &str) {
        if fits_id(chat_id) {
            self.effects.push(Effect::Broadcast(Message::Removed {
                chat_id: chat_id.to_owned(),
                tab_id: self.tab_id.clone(),
            }));
        }
    }

    /// Give back every chat this tab owns (`pagehide`, dispose).
    pub fn release_all(&mut self) {
        let owned: Vec<String> = self.owned().map(str::to_owned).collect();
        for chat_id in owned {
            self.release(&chat_id);
        }
    }

    /// Apply a message from the channel (taken by value: a `messages` array moves on into
    /// [`Effect::Messages`]). Our own messages are ignored.
    pub fn receive(&mut self, message: Message, now_ms: u64) {
        if message.tab_id() == self.tab_id {
            return;
        }
        // A copy versioned far ahead of this browser's clock (every tab of it shares one) is
        // forged: believed, it would make every later genuine copy look stale, for good.
        let forged = |version: &Option<u64>| {
            version.is_some_and(|v| v > now_ms.saturating_add(MAX_VERSION_AHEAD_MS))
        };
        match message {
            // (A claim dated far ahead would outrank its tab's every later release.)
            Message::Claim(claim) | Message::Heartbeat(claim) if !forged(&claim.at) => {
                self.on_claim(&claim, now_ms)
            }
            Message::Claim(_) | Message::Heartbeat(_) => {}
            // (A release dated far ahead would overtake every later claim of its tab.)
            Message::Release {
                chat_id,
                tab_id,
                at,
            } if !forged(&at) => self.on_release(&chat_id, &tab_id, at),
            Message::Release { .. } => {}
            Message::Who { chat_id, .. } => {
                for entry in &self.chats {
                    if chat_id
                        .as_ref()
                        .is_some_and(|wanted| *wanted != entry.chat_id)
                    {
                        continue;
                    }
                    if let Some(mine) = entry.owner.as_ref().filter(|owner| owner.mine) {
                        // Answered as a `claim`: a JS coordinator creates a claim entry only
                        // from a `claim` (a heartbeat just refreshes one it already has).
                        let claim = mine.claim(&entry.chat_id);
                        self.effects.push(Effect::Broadcast(Message::Claim(claim)));
                    }
                }
            }
            Message::Messages { ref version, .. } if forged(version) => {}
            Message::Session { ref version, .. } if forged(version) => {}
            Message::Messages {
                chat_id,
                messages,
                version,
                ..
            } => {
                let entry = entry_for(&mut self.chats, &mut self.effects, &chat_id);
                let we_own = entry.owner.as_ref().is_some_and(|owner| owner.mine);
                if entry.copies.accept_messages(version, we_own) {
                    self.effects.push(Effect::Messages {
                        chat_id,
                        messages,
                        version,
                    });
                }
            }
            Message::Session {
                chat_id,
                tab_id,
                last_event_id: Some(last_event_id),
                consumed_input_seq,
                version,
            } => {
                let entry = entry_for(&mut self.chats, &mut self.effects, &chat_id);
                // Only the owner's, or the last owner's (a JS tab releases first): a cursor and a
                // consumed seq are believed as they are (they only move forward), so one from
                // any tab could hold this tab's sends wrong (a reader's is the owner's again:
                // nothing is lost by skipping it).
                let owners = entry
                    .owner
                    .as_ref()
                    .is_some_and(|owner| !owner.mine && owner.tab_id == tab_id)
                    || entry.last_owner.as_deref() == Some(tab_id.as_str());
                if owners && entry.copies.accept_session(&last_event_id, version) {
                    self.effects.push(Effect::Session {
                        chat_id,
                        last_event_id,
                        consumed_input_seq,
                    });
                }
            }
            Message::Session { .. } => {}
            // The driver forgets the chat itself (`Driver::tab_message`): nothing to track here.
            Message::Removed { .. } => {}
        }
    }

    fn on_claim(&mut self, claim: &Claim, now_ms: u64) {
        let effects = &mut self.effects;
        let entry = entry_for(&mut self.chats, effects, &claim.chat_id);
        if let (Some(at), Some((tab, released_at))) = (claim.at, &entry.released) {
            if *tab == claim.tab_id && at <= *released_at {
                return; // overtaken by its own release
            }
        }
        let incoming = Owner {
            tab_id: claim.tab_id.clone(),
            mine: false,
            at: claim.at.unwrap_or(now_ms),
            lock: claim.lock,
            seen_ms: now_ms,
            since_ms: now_ms,
        };
        match &mut entry.owner {
            None => {
                entry.owner = Some(incoming);
                effects.push(read_only(&claim.chat_id, true));
            }
            Some(known) if !known.mine && known.tab_id == claim.tab_id => {
                known.seen_ms = known.seen_ms.max(now_ms);
                if claim.at.is_some_and(|at| at > known.at) {
                    *known = incoming; // the same tab's newer claim
                }
            }
            Some(known) if incoming.beats(known) => {
                let lost = known.mine;
                if !lost {
                    entry.last_owner = Some(known.tab_id.clone());
                }
                entry.owner = Some(incoming);
                if lost {
                    effects.push(Effect::LostClaim {
                        chat_id: claim.chat_id.clone(),
                    });
                    effects.push(read_only(&claim.chat_id, true));
                }
            }
            Some(known) if known.mine => {
                // The rival believes it owns the chat: tell it ours ranks first.
                let ours = known.claim(&claim.chat_id);
                effects.push(Effect::Broadcast(Message::Claim(ours)));
            }
            Some(_) => {}
        }
    }

    fn on_release(&mut self, chat_id: &str, tab_id: &str, at: Option<u64>) {
        let entry = entry_for(&mut self.chats, &mut self.effects, chat_id);
        if let Some(at) = at {
            entry.released = Some((tab_id.to_owned(), at));
        }
        let theirs = entry.owner.take_if(|owner| {
            !owner.mine && owner.tab_id == tab_id && at.is_none_or(|at| at >= owner.at)
        });
        if let Some(theirs) = theirs {
            entry.last_owner = Some(theirs.tab_id);
            self.effects.push(read_only(chat_id, false));
        }
    }

    /// Heartbeat this tab's claims that are due and drop other tabs' claims not heard from for
    /// [`CLAIM_TIMEOUT_MS`]. Call at [`TabCoordinator::next_tick_ms`], at least every
    /// [`HEARTBEAT_INTERVAL_MS`].
    pub fn tick(&mut self, now_ms: u64) {
        for entry in &mut self.chats {
            let Some(owner) = &mut entry.owner else {
                continue;
            };
            if now_ms < owner.seen_ms {
                owner.seen_ms = now_ms; // the clock went back: restart the count from here
            }
            if owner.mine {
                let due_ms = owner
                    .seen_ms
                    .saturating_add(HEARTBEAT_INTERVAL_MS - TIMER_SLACK_MS);
                if now_ms >= due_ms {
                    owner.seen_ms = now_ms;
                    // Announced as a `claim` for the JS coordinator's sake (see `who`): its
                    // late-opened tabs learn the owner from it; ours treat both alike.
                    let claim = owner.claim(&entry.chat_id);
                    self.effects.push(Effect::Broadcast(Message::Claim(claim)));
                }
            } else if now_ms - owner.seen_ms > CLAIM_TIMEOUT_MS {
                entry.owner = None;
                self.effects.push(read_only(&entry.chat_id, false));
            }
        }
    }

    /// When [`TabCoordinator::tick`] next has work: the earliest heartbeat due or claim expiry.
    /// `None` when this tab knows no claim at all.
    pub fn next_tick_ms(&self) -> Option<u64> {
        self.chats
            .iter()
            .filter_map(|entry| entry.owner.as_ref())
            .map(|owner| match owner.mine {
                true => owner
                    .seen_ms
                    .saturating_add(HEARTBEAT_INTERVAL_MS - TIMER_SLACK_MS),
                false => owner.seen_ms.saturating_add(CLAIM_TIMEOUT_MS + 1),
            })
            .min()
    }

    /// The chats whose writer lock the browser layer should look up in `navigator.locks.query()`
    /// and report with [`TabCoordinator::lock_status`]: those another tab owns with a lock.
    pub fn lock_checks(&self) -> impl Iterator<Item = &str> + '_ {
        self.chats
            .iter()
            .filter(|entry| entry.owner.as_ref().is_some_and(|o| !o.mine && o.lock))
            .map(|entry| entry.chat_id.as_str())
    }

    /// What a lock query issued at `queried_at_ms` said about `chat_id`'s writer lock. Held:
    /// another tab's lock-backed claim stays alive without heartbeats (its timers may be
    /// throttled in the background). Not held: that tab is gone or done, the claim is dropped
    /// now, unless it was recorded after the query was issued (the lock may postdate it).
    pub fn lock_status(&mut self, chat_id: &str, held: bool, queried_at_ms: u64) {
        let Some(entry) = self.chats.iter_mut().find(|entry| entry.chat_id == chat_id) else {
            return;
        };
        let Some(theirs) = entry.owner.as_mut().filter(|o| !o.mine && o.lock) else {
            return;
        };
        if held {
            theirs.seen_ms = theirs.seen_ms.max(queried_at_ms);
        } else if theirs.since_ms < queried_at_ms {
            entry.owner = None;
            self.effects.push(read_only(chat_id, false));
        }
    }

    /// Send this tab's conversation to the others. `messages` must be a JSON array (at most
    /// [`super::MAX_MESSAGES_JSON_BYTES`]). `version` orders copies of this chat across tabs:
    /// raise it with every local change, e.g. `max(Date.now(), messages_version(chat) + 1)`,
    /// which also stays ahead of a previous owner's copies; re-sending a copy received from
    /// another tab keeps that copy's version, so it overwrites nothing newer.
    pub fn broadcast_messages(
        &mut self,
        chat_id: &str,
        messages: Json,
        version: u64,
    ) -> Result<(), Error> {
        check_messages(&messages)?;
        if !fits_id(chat_id) {
            return Err(Error::protocol("chat id too long or empty"));
        }
        let entry = entry_for(&mut self.chats, &mut self.effects, chat_id);
        entry.copies.sent_messages(version);
        self.effects.push(Effect::Broadcast(Message::Messages {
            chat_id: chat_id.to_owned(),
            tab_id: self.tab_id.clone(),
            messages,
            version: Some(version),
        }));
        Ok(())
    }

    /// Send this tab's resume cursor to the others (after a completed turn), ordered by `version`
    /// like [`TabCoordinator::broadcast_messages`].
    pub fn broadcast_session(
        &mut self,
        chat_id: &str,
        last_event_id: &str,
        consumed_input_seq: Option<u64>,
        version: u64,
    ) -> Result<(), Error> {
        if !fits_id(chat_id) || !fits_id(last_event_id) {
            return Err(Error::protocol("chat id or cursor too long or empty"));
        }
        let entry = entry_for(&mut self.chats, &mut self.effects, chat_id);
        entry.copies.sent_session(last_event_id, version);
        self.effects.push(Effect::Broadcast(Message::Session {
            chat_id: chat_id.to_owned(),
            tab_id: self.tab_id.clone(),
            last_event_id: Some(last_event_id.to_owned()),
            consumed_input_seq,
            version: Some(version),
        }));
        Ok(())
    }

    /// The version of the newest conversation copy sent or applied here for `chat_id`.
    pub fn messages_version(&self, chat_id: &str) -> Option<u64> {
        self.find(chat_id)
            .and_then(|entry| entry.copies.messages_version())
    }

    /// The newest cursor version sent or applied for `chat_id` (see [`Self::broadcast_session`]).
    pub fn session_version(&self, chat_id: &str) -> Option<u64> {
        self.find(chat_id)
            .and_then(|entry| entry.copies.session_version())
    }

    /// Whether the tab that owns `chat_id` holds its writer Web Lock (so a free lock means it is
    /// gone).
    pub fn owner_has_lock(&self, chat_id: &str) -> bool {
        self.find(chat_id)
            .and_then(|entry| entry.owner.as_ref())
            .is_some_and(|owner| !owner.mine && owner.lock)
    }

    /// Whether another tab owns `chat_id`, as far as this tab knows.
    pub fn is_read_only(&self, chat_id: &str) -> bool {
        self.owner_of(chat_id).is_some_and(|owner| !owner.mine)
    }

    /// Whether this tab owns `chat_id`.
    pub fn has_claim(&self, chat_id: &str) -> bool {
        self.owner_of(chat_id).is_some_and(|owner| owner.mine)
    }

    /// The tab that owns `chat_id` (this one included), as far as this tab knows.
    pub fn owner(&self, chat_id: &str) -> Option<&str> {
        self.owner_of(chat_id).map(|owner| owner.tab_id.as_str())
    }

    /// The chats this tab owns.
    pub fn owned(&self) -> impl Iterator<Item = &str> + '_ {
        self.chats
            .iter()
            .filter(|entry| entry.owner.as_ref().is_some_and(|owner| owner.mine))
            .map(|entry| entry.chat_id.as_str())
    }

    fn find(&self, chat_id: &str) -> Option<&ChatEntry> {
        self.chats.iter().find(|entry| entry.chat_id == chat_id)
    }

    fn owner_of(&self, chat_id: &str) -> Option<&Owner> {
        self.find(chat_id).and_then(|entry| entry.owner.as_ref())
    }
}

/// The entry for `chat_id`, created if new. When full, the oldest unowned entry is forgotten,
/// else the oldest claim of another tab (a flood of claims cannot grow the table): that chat
/// is then no longer read-only here, and `effects` says so.
fn entry_for<'a>(
    chats: &'a mut Table<ChatEntry>,
    effects: &mut Vec<Effect>,
    chat_id: &str,
) -> &'a mut ChatEntry {
    let index = match chats.iter().position(|entry| entry.chat_id == chat_id) {
        Some(index) => index,
        None => {
            if chats.len() >= MAX_TRACKED_CHATS {
                let unowned = chats.iter().position(|entry| entry.owner.is_none());
                let theirs = || {
                    chats
                        .iter()
                        .position(|e| e.owner.as_ref().is_some_and(|o| !o.mine))
                };
                if let Some(index) = unowned.or_else(theirs) {
                    let evicted = chats.remove(index);
                    if evicted.owner.is_some() {
                        effects.push(read_only(&evicted.chat_id, false));
                    }
                }
            }
            chats.push(ChatEntry {
                chat_id: chat_id.to_owned(),
                owner: None,
                my_last_at: 0,
                released: None,
                last_owner: None,
                copies: Copies::default(),
            });
            chats.len() - 1
        }
    };
    &mut chats[index] // in bounds: found, or just pushed
}

fn read_only(chat_id: &str, read_only: bool) -> Effect {
    Effect::ReadOnlyChanged {
        chat_id: chat_id.to_owned(),
        read_only,
    }
}
