//! Per chat, the newest conversation copy and resume cursor a tab has: what keeps a stale
//! `messages` or `session` broadcast from overwriting a newer one (JS weaknesses M7, M8, M10).

#[allow(unused_imports)]
use crate::prelude::*;
/// The versions this tab has sent or applied for one chat.
#[derive(Clone, Debug, Default)]
pub(super) struct Copies {
    messages_version: Option<u64>,
    session_version: Option<u64>,
    last_event_id: Option<String>,
}

impl Copies {
    /// The newest conversation version sent or applied.
    pub(super) fn messages_version(&self) -> Option<u64> {
        self.messages_version
    }

    /// Whether a received conversation copy replaces ours (and record it). Versioned: only if
    /// newer. Unversioned (a JS tab): always, as in JS, unless this tab owns the chat: the
    /// owner's copy is the newest there is, and a JS tab only posts while it believes it owns
    /// the chat or as a reader's flush of a possibly stale copy.
    pub(super) fn accept_messages(&mut self, version: Option<u64>, we_own: bool) -> bool {
        match version {
            Some(version) => newer(&mut self.messages_version, version),
            None => !we_own,
        }
    }

    /// The newest cursor version sent or applied.
    pub(super) fn session_version(&self) -> Option<u64> {
        self.session_version
    }

    /// We sent a copy with `version`.
    pub(super) fn sent_messages(&mut self, version: u64) {
        newer(&mut self.messages_version, version);
    }

    /// Whether a received cursor moves ours forward (and record it). A versioned one must also
    /// be newer than the last versioned one applied.
    pub(super) fn accept_session(&mut self, last_event_id: &str, version: Option<u64>) -> bool {
        let stale_version = version.is_some_and(|v| self.session_version.is_some_and(|k| v <= k));
        if stale_version || !moves_forward(self.last_event_id.as_deref(), last_event_id) {
            return false;
        }
        if version.is_some() {
            self.session_version = version;
        }
        self.last_event_id = Some(last_event_id.to_owned());
        true
    }

    /// We sent our cursor with `version`.
    pub(super) fn sent_session(&mut self, last_event_id: &str, version: u64) {
        newer(&mut self.session_version, version);
        if moves_forward(self.last_event_id.as_deref(), last_event_id) {
            self.last_event_id = Some(last_event_id.to_owned());
        }
    }
}

/// Record `version` if it is newer than `known`; whether it was.
fn newer(known: &mut Option<u64>, version: u64) -> bool {
    let fresh = known.is_none_or(|known| version > known);
    if fresh {
        *known = Some(version);
    }
    fresh
}

/// Whether the cursor `incoming` is ahead of `known`: numerically when both are decimal
/// `seq_num`s, otherwise whenever it differs.
fn moves_forward(known: Option<&str>, incoming: &str) -> bool {
    match (known.and_then(decimal), decimal(incoming)) {
        (Some(known), Some(incoming)) => incoming > known,
        _ => known != Some(incoming),
    }
}

fn decimal(text: &str) -> Option<u64> {
    match text.bytes().all(|b| b.is_ascii_digit()) {
        true => text.parse().ok(),
        false => None,
    }
}
