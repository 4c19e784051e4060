//! A chat's connection state as the app sees it (the `connection-state` event, which the host
//! also keeps for `connectionState(chatId)`): one word for the whole chat, worked out from its subscriptions and
//! pending operations after every call, so no transition can be missed.
//!
//! The states, by precedence:
//! - `offline`: the browser reports no network and a send or a stream of the chat waits for it;
//! - `reconnecting`: something failed and is being retried (a stream backing off or reopening
//!   after a silent or failed connection, an append waiting to retry);
//! - `live`: a stream is open (or renewing a connection that just delivered);
//! - `connecting`: a send is on its way or a stream is opening, nothing failed yet;
//! - `idle`: nothing in flight.

use super::events::EventBuilder;
use super::Driver;
#[allow(unused_imports)]
use crate::prelude::*;

/// What one subscription or operation contributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) enum Link {
    #[default]
    Idle,
    Connecting,
    Live,
    Reconnecting,
    Offline,
}

impl Link {
    fn as_str(self) -> &'static str {
        match self {
            Link::Idle => "idle",
            Link::Connecting => "connecting",
            Link::Live => "live",
            Link::Reconnecting => "reconnecting",
            Link::Offline => "offline",
        }
    }
}

/// A chat's state and how many of its sends, actions and stops are not yet acknowledged.
pub(super) type Report = (Link, u32);

impl Driver {
    /// The chat's connection state now.
    fn link_of(&self, chat_id: &str) -> Report {
        let mut link = Link::Idle;
        for sub in self.subs.iter().filter(|s| s.chat_id() == chat_id) {
            link = link.max(sub.link());
        }
        let mut pending = 0;
        for op in self.ops.iter().filter(|o| o.chat_id() == chat_id) {
            let (l, counts) = op.link();
            link = link.max(l);
            pending += u32::from(counts);
        }
        if self.offline && matches!(link, Link::Connecting | Link::Reconnecting) {
            link = Link::Offline;
        }
        (link, pending)
    }

    /// A chat about to be forgotten (`removeSession`) ends `idle`, if it was not already.
    pub(super) fn report_removed(&mut self, chat: usize) {
        self.report(chat, Report::default());
    }

    /// Emits `connection-state` for every chat whose state or pending count changed since the
    /// last report. Runs before each drain, so it sees the outcome of the whole call.
    pub(super) fn report_links(&mut self) {
        for i in 0..self.chats.len() {
            let now = self.link_of(&self.chats[i].id);
            self.report(i, now);
        }
    }

    fn report(&mut self, chat: usize, now: Report) {
        let before = core::mem::replace(&mut self.chats[chat].link, now);
        if now == before {
            return;
        }
        let mut event = EventBuilder::new("connection-state", &self.chats[chat].id);
        event
            .str("state", now.0.as_str())
            .str("previous", before.0.as_str())
            .num("pendingSends", u64::from(now.1));
        self.emit(event, None);
    }
}
