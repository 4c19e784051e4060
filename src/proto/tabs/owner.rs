//! A claim as one tab records it, and the rank that settles crossing claims.

use super::message::Claim;
#[allow(unused_imports)]
use crate::prelude::*;

/// Who owns a chat, as this tab believes.
#[derive(Clone, Debug)]
pub(super) struct Owner {
    pub(super) tab_id: String,
    pub(super) mine: bool,
    /// When the claim was made: the claimant's `Date.now()`, or (JS tabs) its arrival here.
    pub(super) at: u64,
    /// The claimant holds the chat's writer Web Lock.
    pub(super) lock: bool,
    /// Ours: when we last announced it. Theirs: when we last heard from it or saw its lock.
    pub(super) seen_ms: u64,
    /// Theirs: when this claim (tab, at) was first recorded; a lock query issued before that
    /// may predate the lock.
    pub(super) since_ms: u64,
}

impl Owner {
    /// Whether `self` outranks `other` (a different tab). Every tab ranks the same way: the
    /// earliest claim wins, then the smaller tab id. But of two lock-backed claims the later
    /// wins: locks are exclusive, so the earlier holder has already let go and its message is
    /// stale.
    pub(super) fn beats(&self, other: &Owner) -> bool {
        if self.at != other.at {
            return (self.lock && other.lock) == (self.at > other.at);
        }
        self.tab_id < other.tab_id
    }

    /// This claim as a `claim` / `heartbeat` body.
    pub(super) fn claim(&self, chat_id: &str) -> Claim {
        Claim {
            chat_id: chat_id.to_owned(),
            tab_id: self.tab_id.clone(),
            at: Some(self.at),
            lock: self.lock,
        }
    }
}
