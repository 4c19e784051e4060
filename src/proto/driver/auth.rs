//! Tokens: the app's `startSession` and `accessToken` callbacks, at most one call in flight per
//! chat; everything that needs the token meanwhile waits for that call (the JS transport calls
//! `accessToken` once per failure, W7). A JWT whose `exp` is less than [`EARLY_REFRESH_MS`]
//! away is refreshed before it is used rather than after the server refuses it (F8): a page
//! woken after an hour does not start every chat with a 401.

use super::action::{Action, Callback, ErrorRef};
use super::events::EventBuilder;
use super::Driver;
#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::append::OFFLINE_RECHECK_MS;
use crate::proto::Error;

/// A token that expires sooner than this is refreshed before a request uses it.
pub(super) const EARLY_REFRESH_MS: u64 = 30_000;

/// Whether `token` is a JWT that expires within [`EARLY_REFRESH_MS`] of `now_ms`.
fn expiring(token: &str, now_ms: u64) -> bool {
    crate::proto::jwt::expires_at_ms(token)
        .is_some_and(|exp| exp <= now_ms.saturating_add(EARLY_REFRESH_MS))
}

/// Who waits for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiter {
    /// An operation (an append).
    Op(u32),
    /// A subscription (a `.out` connection).
    Sub(u32),
}

/// What the call in flight will do with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// `startSession`; with `replace`, for a session the server no longer knows (404).
    Start { replace: bool },
    /// `accessToken`.
    Refresh,
}

/// The token a request carried, with the chat's token epoch at the time. Comparing texts alone
/// is not enough to tell whether a refresh happened since: two JWTs minted in the same second
/// with the same claims are byte-equal, so a refresh can hand back the very text that was just
/// refused. The epoch counts the tokens our callbacks returned, and tells those apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct UsedToken {
    text: String,
    epoch: u32,
}

impl UsedToken {
    pub(super) fn text(&self) -> &str {
        &self.text
    }
}

/// A callback call in flight.
#[derive(Debug)]
pub(super) struct TokenCall {
    /// The call's id (0 while none is in flight).
    id: u32,
    kind: TokenKind,
    waiters: Vec<Waiter>,
    /// The callback failed while the browser was offline: it is called again when this timer
    /// fires or the network is back.
    retry: Option<u32>,
    /// Asked for only because the token is about to expire: if it fails, the waiters go ahead
    /// with the token they have (it may still be good; the server decides).
    early: bool,
}

impl TokenCall {
    /// Whether `waiter` waits for it.
    pub(super) fn waits(&self, waiter: Waiter) -> bool {
        self.waiters.contains(&waiter)
    }
}

impl Driver {
    /// The chat's token, or `None` after asking for one (`waiter` resumes when it comes): when
    /// the chat has none, or when its JWT expires within [`EARLY_REFRESH_MS`]. Not refreshed
    /// early: a token whose early refresh failed (it is used, and a 401 refreshes it as usual),
    /// and none at all once a callback handed over a token already expiring (`early_off`).
    pub(super) fn token_for(&mut self, chat: usize, waiter: Waiter, now_ms: u64) -> Option<String> {
        let c = self.chats.get(chat)?;
        if let Some(token) = c.state.token.clone() {
            let skip = self.early_off || c.early_skip.as_deref() == Some(token.as_str());
            if skip || !expiring(&token, now_ms) {
                return Some(token);
            }
            self.request_token(chat, self.refresh_kind(), waiter, true);
            return None;
        }
        let kind = if self.config.has_start_session {
            TokenKind::Start { replace: false }
        } else {
            TokenKind::Refresh
        };
        self.request_token(chat, kind, waiter, false);
        None
    }

    /// `token`, as used now by a request for `chat_id`.
    pub(super) fn use_token(&self, chat_id: &str, token: String) -> UsedToken {
        let chat = self.chat_index(chat_id);
        UsedToken {
            text: token,
            epoch: chat.map_or(0, |c| self.chats[c].token_epoch),
        }
    }

    /// The chat's token if it is newer than `used`: a different text (a turn-complete record,
    /// another tab), or one a callback returned since `used` was taken.
    pub(super) fn newer_token(&self, chat: usize, used: &UsedToken) -> Option<String> {
        let c = self.chats.get(chat)?;
        let current = c.state.token.as_ref()?;
        (*current != used.text || c.token_epoch != used.epoch).then(|| current.clone())
    }

    /// A fresh token because `stale` was refused, or `None` after asking for one. Another
    /// caller may have refreshed meanwhile: then the newer token is used at once.
    pub(super) fn refresh_token(
        &mut self,
        chat: usize,
        stale: &UsedToken,
        waiter: Waiter,
    ) -> Option<String> {
        if let Some(current) = self.newer_token(chat, stale) {
            return Some(current);
        }
        self.request_token(chat, self.refresh_kind(), waiter, false);
        None
    }

    /// The call that refreshes a token: `accessToken`, or without it `startSession`, which is
    /// idempotent and returns a fresh token.
    fn refresh_kind(&self) -> TokenKind {
        if self.config.has_access_token {
            TokenKind::Refresh
        } else {
            TokenKind::Start { replace: false }
        }
    }

    /// Asks `startSession` for a new session after a 404 (`waiter` resumes when it comes).
    pub(super) fn recreate_session(&mut self, chat: usize, waiter: Waiter) {
        self.request_token(chat, TokenKind::Start { replace: true }, waiter, false);
    }

    /// `early`: only because the token is about to expire (see [`TokenCall::early`]).
    fn request_token(&mut self, chat: usize, kind: TokenKind, waiter: Waiter, early: bool) {
        let Some(c) = self.chats.get_mut(chat) else {
            return;
        };
        if let Some(call) = c.token_call.as_mut() {
            if !call.waiters.contains(&waiter) {
                call.waiters.push(waiter);
            }
            let replace = TokenKind::Start { replace: true };
            if call.early && kind == replace {
                // An early refresh cannot bring the new session a 404 asks for: it gives way
                // (its answer, when it comes, matches no call) to a `startSession` for everyone.
                call.kind = replace;
                call.early = false;
                if let Some(timer) = call.retry.take() {
                    self.actions.push(Action::ClearTimer { id: timer });
                }
                return self.call_token(chat);
            }
            // Whatever the call in flight returns is a fresh token: share it. (Someone who
            // needs it, not just prefers it, makes its failure an error.)
            call.early &= early;
            return;
        }
        c.token_call = Some(TokenCall {
            id: 0,
            kind,
            waiters: vec![waiter],
            retry: None,
            early,
        });
        self.call_token(chat);
    }

    /// Calls the app's callback for the chat's token call.
    fn call_token(&mut self, chat: usize) {
        let id = self.next_id();
        let client_data = self.client_data.clone();
        let Some(c) = self.chats.get_mut(chat) else {
            return;
        };
        let Some(call) = c.token_call.as_mut() else {
            return;
        };
        call.id = id;
        call.retry = None;
        let callback = match call.kind {
            TokenKind::Start { .. } => Callback::StartSession,
            TokenKind::Refresh => Callback::AccessToken,
        };
        let chat_id = c.id.clone();
        self.actions.push(Action::Call {
            id,
            callback,
            chat_id,
            client_data: match callback {
                Callback::StartSession => {
                    Some(client_data.unwrap_or_else(crate::proto::json::Json::object))
                }
                Callback::AccessToken => None,
            },
        });
    }

    /// The retry timer of a token call that failed offline.
    pub(super) fn token_timer(&mut self, timer: u32) -> bool {
        let Some(chat) = self.chats.iter().position(|c| {
            c.token_call
                .as_ref()
                .is_some_and(|t| t.retry == Some(timer))
        }) else {
            return false;
        };
        self.call_token(chat);
        true
    }

    /// `waiter` no longer wants a token (an aborted send that never left, a closed stream). A
    /// call that no open stream or pending operation still wants is dropped with its timer if
    /// it waits for the network, and if it is in flight when an operation was the last to want
    /// it.
    pub(super) fn forget_waiter(&mut self, waiter: Waiter) {
        for chat in 0..self.chats.len() {
            let Some(mut call) = self.chats[chat].token_call.take() else {
                continue;
            };
            let had = call.waits(waiter);
            call.waiters
                .retain(|w| *w != waiter && self.wants_token(*w));
            // One in flight that an aborted send was the last to want is let go too: its
            // answer, when it comes, matches no call, and the next request asks afresh instead
            // of waiting for a callback that may never settle. (Not for a stream: one that
            // closes is often replaced at once, by a stream that needs the same call.)
            let let_go = call.retry.is_some() || (had && matches!(waiter, Waiter::Op(_)));
            if !call.waiters.is_empty() || !let_go {
                self.chats[chat].token_call = Some(call);
            } else if let Some(timer) = call.retry {
                self.actions.push(Action::ClearTimer { id: timer });
            }
        }
    }

    /// Whether `waiter`'s stream is still open, or its operation pending.
    fn wants_token(&self, waiter: Waiter) -> bool {
        match waiter {
            Waiter::Op(id) => self.op_index(id).is_some(),
            Waiter::Sub(id) => self.sub_open(id),
        }
    }

    /// The network is back: token calls that failed offline are made again now.
    pub(super) fn retry_parked_calls(&mut self) {
        while let Some((chat, timer)) = self.chats.iter().enumerate().find_map(|(i, c)| {
            let timer = c.token_call.as_ref()?.retry?;
            Some((i, timer))
        }) {
            self.actions.push(Action::ClearTimer { id: timer });
            self.call_token(chat);
        }
    }

    /// The chat whose token call in flight is `call` (0 is no call: a parked one).
    fn call_chat(&self, call: u32) -> Option<usize> {
        self.chats.iter().position(|c| {
            c.token_call
                .as_ref()
                .is_some_and(|t| t.id == call && call != 0)
        })
    }

    fn take_call(&mut self, call: u32) -> Option<(usize, TokenCall)> {
        let chat = self.call_chat(call)?;
        let taken = self.chats[chat].token_call.take()?;
        Some((chat, taken))
    }

    /// An app callback returned `token` (`pending_version`: `startSession`'s flag).
    pub fn callback_ok(&mut self, call: u32, token: &str, pending_version: bool, now_ms: u64) {
        let Some((chat, taken)) = self.take_call(call) else {
            return;
        };
        // (A token read from a response body often ends with a newline; `fetch` would have
        // trimmed it from the header anyway.)
        let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        let bytes = token.as_bytes();
        let from = bytes.iter().position(|b| !ws(b)).unwrap_or(bytes.len());
        let to = bytes.iter().rposition(|b| !ws(b)).map_or(from, |i| i + 1);
        let token = token.get(from..to).unwrap_or_default();
        if !crate::proto::headers::is_bearer_token(token) && taken.early {
            return self.early_refresh_failed(chat, taken, now_ms);
        }
        if !crate::proto::headers::is_bearer_token(token) {
            let name = match taken.kind {
                TokenKind::Start { .. } => "startSession",
                TokenKind::Refresh => "accessToken",
            };
            let error = ErrorRef::Ours(Error::InvalidOption {
                name: name.into(),
                message: "the callback returned no token, or one that cannot be sent in a header"
                    .into(),
            });
            for waiter in taken.waiters {
                self.resume(waiter, Err(error.clone()), now_ms);
            }
            return;
        }
        {
            let c = &mut self.chats[chat];
            c.token_epoch = c.token_epoch.wrapping_add(1);
            // Handed over about to expire: this page's clock is off, or tokens live less than
            // the margin (or the app hands out a cached one near its end). Early refreshes
            // would only add calls then (each turn's token would look expiring too): until a
            // callback hands over a fresh token, tokens are used until the server refuses them.
            self.early_off = expiring(token, now_ms);
            let state = &mut c.state;
            match taken.kind {
                TokenKind::Start { replace: true } => {
                    // The old session's `.in` seqs mean nothing in the new one.
                    state.replace_session(token.into());
                    c.steers.clear();
                    c.stops.clear();
                }
                TokenKind::Start { replace: false } => {
                    state.token = Some(token.into());
                    state.is_streaming.get_or_insert(false);
                }
                TokenKind::Refresh => state.token = Some(token.into()),
            }
        }
        self.persist(chat);
        if taken.kind == (TokenKind::Start { replace: true }) {
            let chat_id = self.chats[chat].id.clone();
            self.session_replaced(&chat_id, now_ms);
        }
        if pending_version && matches!(taken.kind, TokenKind::Start { .. }) {
            let mut event = EventBuilder::new("run-pending-version", &self.chats[chat].id);
            event.str("source", "start");
            self.emit(event, None);
        }
        for waiter in taken.waiters {
            self.resume(waiter, Ok(()), now_ms);
        }
    }

    /// An app callback threw; the host keeps the thrown value as `thrown`.
    /// While the browser is offline the failure is taken for the network's (`startSession` is
    /// idempotent on the chat id, `accessToken` mints): the callback is called again when the
    /// network is back, or every [`OFFLINE_RECHECK_MS`], and whoever waits keeps waiting (a
    /// call no one waits for any more is not made again).
    pub fn callback_failed(&mut self, call: u32, thrown: u32, now_ms: u64) {
        let Some(chat) = self.call_chat(call) else {
            return;
        };
        let wanted = self.chats[chat]
            .token_call
            .as_ref()
            .is_some_and(|t| t.waiters.iter().any(|w| self.wants_token(*w)));
        if self.offline && wanted {
            let timer = self.next_id();
            if let Some(t) = self.chats[chat].token_call.as_mut() {
                t.id = 0;
                t.retry = Some(timer);
            }
            // A stream renewing its connection is not live while it waits for the network.
            self.not_renewing(chat);
            self.actions.push(Action::SetTimer {
                id: timer,
                ms: OFFLINE_RECHECK_MS,
            });
            return;
        }
        let Some(taken) = self.chats[chat].token_call.take() else {
            return;
        };
        if taken.early {
            return self.early_refresh_failed(chat, taken, now_ms);
        }
        for waiter in taken.waiters {
            self.resume(waiter, Err(ErrorRef::Thrown(thrown)), now_ms);
        }
    }

    /// A refresh asked for only because the token is about to expire gave nothing: that token
    /// may still be good, so the waiters use it (the server decides), and it is not refreshed
    /// early again.
    fn early_refresh_failed(&mut self, chat: usize, taken: TokenCall, now_ms: u64) {
        let c = &mut self.chats[chat];
        c.early_skip = c.state.token.clone();
        for waiter in taken.waiters {
            self.resume(waiter, Ok(()), now_ms);
        }
    }

    fn resume(&mut self, waiter: Waiter, result: Result<(), ErrorRef>, now_ms: u64) {
        match waiter {
            Waiter::Op(id) => self.op_token_ready(id, result, now_ms),
            Waiter::Sub(id) => self.sub_token_ready(id, result, now_ms),
        }
    }
}
