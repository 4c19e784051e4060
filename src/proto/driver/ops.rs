//! Operations the app starts: sends (messages, actions, steering), stop, start — each one
//! reliable `.in/append` (same body and `X-Part-Id` on every attempt; the retry policy is
//! `proto::append`) and, for a turn, the subscription that streams the answer.

use super::action::{Action, Endpoint, ErrorRef, Value};
use super::auth::{UsedToken, Waiter};
use super::events::EventBuilder;
use super::link::Link;
use super::stream::{Kind, SubOptions};
use super::Driver;
#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::append::{AppendPolicy, NextStep, APPEND_TIMEOUT_MS};
use crate::proto::chat::Cursor;
use crate::proto::headers::HeaderList;
use crate::proto::json::Json;
use crate::proto::session::PendingSend;
use crate::proto::turn::{Hold, InputSeq};
use crate::proto::url::{session_path, SessionChannel};
use crate::proto::wire::{
    check_append_body_size, merge_metadata, slim_message_for_wire, AppendResponse, InputChunk,
    Trigger, WirePayload,
};
use crate::proto::Error;

/// The largest append body saved for a later page (`pendingSend`): localStorage is small.
const MAX_SAVED_BODY: usize = 256 * 1024;

/// Steering messages remembered per chat (answered ones are forgotten first, then the oldest).
const MAX_STEERS: usize = 32;
/// Stops remembered per chat (see `Chat::stops`); more than one per turn is never sent.
const MAX_STOPS: usize = 8;

/// A steering message this tab appended (`sendPendingMessage`).
#[derive(Debug, Clone)]
pub(super) struct Steer {
    message_id: Option<String>,
    seq: u64,
    /// A boundary said the agent consumed it (injected, or answered by a turn).
    answered: bool,
}

/// What a send of a steering message's id does.
#[derive(Debug, Clone, Copy)]
enum Adopt {
    /// Streams the turn that answers the steering message with `.in` seq `seq`; appends nothing.
    Owed(u64),
    /// The agent already consumed it: nothing to append, nothing more to stream.
    Answered,
}

/// The `source` of `message-sent` / `message-send-failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    SubmitMessage,
    RegenerateMessage,
    Steer,
    Action,
    Stop,
    HeadStart,
}

impl Source {
    /// The sources a saved send can have (see `PendingSend`).
    fn of_saved(name: &str) -> Option<Source> {
        match name {
            "submit-message" => Some(Source::SubmitMessage),
            "regenerate-message" => Some(Source::RegenerateMessage),
            "action" => Some(Source::Action),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Source::SubmitMessage => "submit-message",
            Source::RegenerateMessage => "regenerate-message",
            Source::Steer => "steer",
            Source::Action => "action",
            Source::Stop => "stop",
            Source::HeadStart => "head-start",
        }
    }
}

/// What an operation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OpKind {
    /// A turn-producing send; `stream` streams its answer.
    Turn { stream: u32 },
    /// `stopGeneration`.
    Stop,
    /// `sendPendingMessage`.
    Steer,
    /// `start` / `preload`.
    Start,
}

/// One append in progress.
#[derive(Debug)]
struct Append {
    body: String,
    part_id: String,
    source: Source,
    message_id: Option<String>,
    headers: HeaderList,
    policy: AppendPolicy,
    started_ms: u64,
    token: UsedToken,
    fetch: Option<u32>,
    timer: Option<u32>,
    /// Waiting for the network: the `online` event retries at once.
    parked: bool,
}

/// A turn-producing send waiting for its chat's ownership.
#[derive(Debug)]
pub(super) struct PendingTurn {
    pub(super) op: u32,
    pub(super) chat_id: String,
    source: Source,
    body: String,
    message_id: Option<String>,
    headers: HeaderList,
    part_id: String,
    /// The `headStart` request body, when the chat had no session at the send.
    head_start: Option<String>,
    /// The id of the message sent, when it may be a steering message of this tab (already on
    /// `.in`: see [`Adopt`], decided when the send starts).
    steer_id: Option<String>,
}

/// An operation in flight.
#[derive(Debug)]
pub(super) struct Op {
    id: u32,
    chat: String,
    kind: OpKind,
    append: Option<Append>,
    /// The caller aborted: its promise is already rejected; a turn that lands anyway is
    /// stopped.
    aborted: bool,
    /// A send, action, steering message or stop (`pendingSends` counts it), not a `start`.
    send: bool,
    /// A saved send that `reconnectToStream` sent again: nobody holds its promise, so a failure
    /// fails its stream.
    replay: bool,
    /// A saved send's creation time and `reachableSince`, for its append.
    saved: Option<(u64, Option<u64>)>,
    /// Ended by `dispose` (not by its caller): its saved copy stays for a later page.
    keep_saved: bool,
    /// Where its turn's stream started reading: the turn's start when the append lands, even
    /// if that stream is gone by then (the page left the chat).
    start: Cursor,
    /// The highest `.in` seq its stream counted as consumed before its own (saved with it).
    consumed: Option<u64>,
    /// The lowest `.in` seq its append can have: one past every seq the chat knew of before
    /// the append was first made. It stands in for a seq the answer leaves out (a retry whose
    /// first attempt landed, on a server that answers repeats without one).
    floor: Option<u64>,
}

/// `sendMessages` as the host passes it (`messages.at(-1)` only).
#[derive(Debug, Default)]
pub struct SendRequest {
    /// `chatId`.
    pub chat_id: String,
    /// `regenerate-message` or (anything else) `submit-message`.
    pub trigger: Option<String>,
    /// The AI SDK's `messageId`.
    pub message_id: Option<String>,
    /// The last message.
    pub message: Option<Json>,
    /// `ChatRequestOptions.body`.
    pub body: Option<Json>,
    /// `ChatRequestOptions.metadata`.
    pub metadata: Option<Json>,
    /// `ChatRequestOptions.headers`.
    pub headers: HeaderList,
    /// The whole history (`messages`): the host passes it only with `headStart` set.
    pub messages: Option<Json>,
}

impl SendRequest {
    /// Reads `{ chatId, trigger, messageId, message, body, metadata, headers }`.
    pub fn from_json(request: &Json) -> Result<SendRequest, Error> {
        let chat_id = request
            .get("chatId")
            .and_then(Json::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::InvalidOption {
                name: "chatId".into(),
                message: "is required".into(),
            })?;
        let text = |key: &str| request.get(key).and_then(Json::as_str).map(str::to_owned);
        let some = |key: &str| request.get(key).filter(|v| !v.is_null()).cloned();
        Ok(SendRequest {
            chat_id: chat_id.into(),
            trigger: text("trigger"),
            message_id: text("messageId"),
            message: some("message"),
            body: some("body"),
            metadata: some("metadata"),
            headers: super::config::header_list(request.get("headers"), "headers")?,
            messages: some("messages").filter(|m| m.as_array().is_some()),
        })
    }
}

impl Op {
    pub(super) fn chat_id(&self) -> &str {
        &self.chat
    }

    /// Whether this operation appends (or will append) the part `part_id`.
    pub(super) fn sends_part(&self, part_id: &str) -> bool {
        self.append.as_ref().is_some_and(|a| a.part_id == part_id)
    }

    /// What this operation adds to its chat's connection state (see `link`), and whether it
    /// counts as a pending send (`start` / `preload` does not).
    pub(super) fn link(&self) -> (Link, bool) {
        let link = match &self.append {
            // Waiting for a token, the chat's ownership or a head start.
            None => Link::Connecting,
            // Waiting to retry (its timer is then a backoff, not a request timeout), or retrying.
            Some(a)
                if a.parked
                    || (a.fetch.is_none() && a.timer.is_some())
                    || a.policy.retries() > 0 =>
            {
                Link::Reconnecting
            }
            Some(_) => Link::Connecting,
        };
        (link, self.send && !self.aborted)
    }
}

impl Driver {
    fn new_op(&mut self, chat: &str, kind: OpKind, send: bool) -> u32 {
        let id = self.next_id();
        self.ops.push(Op {
            id,
            chat: chat.into(),
            kind,
            append: None,
            aborted: false,
            send,
            replay: false,
            saved: None,
            keep_saved: false,
            start: Cursor::default(),
            consumed: None,
            floor: None,
        });
        id
    }

    fn reject_now(&mut self, op: u32, error: ErrorRef) {
        self.actions.push(Action::Reject { op, error });
    }

    /// Whether operation `op` was aborted (or is gone).
    pub(super) fn op_aborted(&self, op: u32) -> bool {
        self.op_index(op).is_none_or(|i| self.ops[i].aborted)
    }

    pub(super) fn op_index(&self, op: u32) -> Option<usize> {
        self.ops.iter().position(|o| o.id == op)
    }

    /// `sendMessages`; the operation resolves to the stream of the answering turn.
    pub fn send_messages(&mut self, request: SendRequest, part_id: &str, now_ms: u64) -> u32 {
        let chat = self.chat_mut(&request.chat_id);
        if let Some(action) = request.body.as_ref().and_then(|b| b.get("action")).cloned() {
            // An action sent through `useChat` (`body.action`; `null` too, as in the JS
            // transport, which tests `!== undefined`).
            return self.send_action(
                &request.chat_id,
                Some(action),
                request.metadata,
                request.headers,
                part_id,
                now_ms,
            );
        }
        let op = self.new_op(&request.chat_id, OpKind::Start, true);
        if let Err(error) = self.refuse_if_unusable(chat) {
            self.finish_op(op, Err(error.into()));
            return op;
        }
        let regenerate = request.trigger.as_deref() == Some("regenerate-message");
        let message = match (&request.message, regenerate) {
            (_, true) => None,
            (Some(message), false) => Some(slim_message_for_wire(message)),
            (None, false) => {
                let error = Error::InvalidOption {
                    name: "messages".into(),
                    message: "'submit-message' needs at least one message".into(),
                };
                self.finish_op(op, Err(error.into()));
                return op;
            }
        };
        let last_id = request
            .message
            .as_ref()
            .and_then(|m| m.get("id"))
            .and_then(Json::as_str)
            .map(str::to_owned);
        let mut body = request.body;
        if let Some(Json::Object(members)) = body.as_mut() {
            members.retain(|(k, _)| k != "action");
        }
        let trigger = if regenerate {
            Trigger::RegenerateMessage
        } else {
            Trigger::SubmitMessage
        };
        let metadata = merge_metadata(self.client_data.as_ref(), request.metadata.as_ref());
        // A chat without a session starts through the app's `headStart` handler, which gets
        // the whole history (the JS transport's wire: the request body, then these fields).
        let head_start = match (&self.config.head_start, &request.messages) {
            (Some(_), Some(messages)) if self.chats[chat].state.token.is_none() => {
                let mut wire = match &body {
                    Some(object @ Json::Object(_)) => object.clone(),
                    _ => Json::object(),
                };
                wire.set("headStartMessages", messages.clone());
                wire.set("chatId", Json::String(request.chat_id.clone()));
                wire.set("trigger", Json::String(trigger.as_str().into()));
                if let Some(id) = &request.message_id {
                    wire.set("messageId", Json::String(id.clone()));
                }
                if let Some(metadata) = &metadata {
                    wire.set("metadata", metadata.clone());
                }
                Some(wire.to_json_string())
            }
            _ => None,
        };
        let payload = WirePayload {
            body,
            message,
            chat_id: request.chat_id.clone(),
            trigger,
            message_id: request.message_id.clone(),
            metadata,
            action: None,
        };
        let source = if regenerate {
            Source::RegenerateMessage
        } else {
            Source::SubmitMessage
        };
        // A steering message sent again (`usePendingMessages`' follow-up, without `messageId`);
        // not an edit of one (`sendMessage({ text, messageId })`), which is new text to send.
        let steer_id = last_id
            .clone()
            .filter(|_| !regenerate && request.message_id.is_none());
        let message_id = request.message_id.or(last_id);
        let body = payload.to_input_chunk().to_json_string();
        self.start_turn(
            op,
            chat,
            source,
            body,
            message_id,
            request.headers,
            part_id,
            head_start,
            steer_id,
            now_ms,
        );
        op
    }

    /// `sendAction`; the operation resolves to the stream of the turn it causes.
    pub fn send_action(
        &mut self,
        chat_id: &str,
        action: Option<Json>,
        metadata: Option<Json>,
        headers: HeaderList,
        part_id: &str,
        now_ms: u64,
    ) -> u32 {
        let chat = self.chat_mut(chat_id);
        let op = self.new_op(chat_id, OpKind::Start, true);
        if let Err(error) = self.refuse_if_unusable(chat) {
            self.finish_op(op, Err(error.into()));
            return op;
        }
        let mut payload = WirePayload::new(chat_id, Trigger::Action);
        payload.metadata = merge_metadata(self.client_data.as_ref(), metadata.as_ref());
        payload.action = action; // (`undefined` is left out, as JSON leaves it out)
        let body = payload.to_input_chunk().to_json_string();
        self.start_turn(
            op,
            chat,
            Source::Action,
            body,
            None,
            headers,
            part_id,
            None,
            None,
            now_ms,
        );
        op
    }

    /// Refuses a closed chat, and one whose id cannot be a path segment (see [`unaddressable`]).
    fn refuse_if_unusable(&self, chat: usize) -> Result<(), Error> {
        match self.chats.get(chat) {
            Some(c) if c.state.closed => Err(Error::SessionClosed {
                closed_reason: c.state.closed_reason.clone(),
            }),
            Some(c) if unaddressable(&c.id) => Err(Error::InvalidOption {
                name: "chatId".into(),
                message: "'.' and '..' are not chat ids".into(),
            }),
            _ => Ok(()),
        }
    }

    /// The common path of turn-producing sends: the size check, then the chat's ownership
    /// (`multiTab`), then the turn.
    #[allow(clippy::too_many_arguments)]
    fn start_turn(
        &mut self,
        op: u32,
        chat: usize,
        source: Source,
        body: String,
        message_id: Option<String>,
        headers: HeaderList,
        part_id: &str,
        head_start: Option<String>,
        steer_id: Option<String>,
        now_ms: u64,
    ) {
        if let Err(error) = check_append_body_size(&body) {
            self.send_event(
                chat,
                source,
                Err(&error.clone().into()),
                0,
                message_id.as_deref(),
                part_id,
                body.len(),
            );
            self.finish_op(op, Err(error.into()));
            return;
        }
        let pending = PendingTurn {
            op,
            chat_id: self.chats[chat].id.clone(),
            source,
            body,
            message_id,
            headers,
            part_id: part_id.into(),
            head_start,
            steer_id,
        };
        if let Some(pending) = self.claim_for_send(pending, now_ms) {
            self.start_claimed_turn(pending, now_ms);
        }
    }

    /// A send whose chat this tab now owns. The `.out` subscription opens as soon as the token
    /// is known, in parallel with the append (the cursor is known), so the first chunk is not a
    /// round trip late (W32).
    pub(super) fn start_claimed_turn(&mut self, pending: PendingTurn, now_ms: u64) {
        if let Some(chat) = self.chat_index(&pending.chat_id) {
            if self.head_start_pending(chat) {
                // Superseding the chat's first turn now would drop the session its handler
                // is creating: this send follows once the response is here.
                self.chats[chat].after_head_start.push(pending);
                return;
            }
            if self.stop_pending(&pending.chat_id) {
                // `.in` is read in arrival order: appended now, this message could land before
                // the stop (retried after a 5xx, or waiting for a token), which would then
                // stop the turn this message starts. It is saved meanwhile, as a send on its
                // way is (a page that goes away leaves it to the next one).
                let op = pending.op;
                self.chats[chat].after_stop.push(pending);
                self.save_send(chat, op, now_ms);
                return;
            }
        }
        let PendingTurn {
            op,
            chat_id,
            source,
            body,
            message_id,
            headers,
            part_id,
            head_start,
            steer_id,
        } = pending;
        let chat = self.chat_mut(&chat_id);
        if let Err(error) = self.refuse_if_unusable(chat) {
            if let Some(stream) = self.replay_stream(op) {
                self.fail_sub(stream, error.clone().into(), now_ms);
            }
            // (One held behind a stop was saved: it ends here, and no later page sends it.)
            self.unsave_part(chat, &part_id);
            self.finish_op(op, Err(error.into()));
            self.release_if_idle(&chat_id, now_ms);
            return;
        }
        if let Some(head_start) = head_start.filter(|_| self.chats[chat].state.token.is_none()) {
            let stream =
                self.open_head_start(chat, op, head_start, message_id.clone(), headers, now_ms);
            if let Some(o) = self.ops.iter_mut().find(|o| o.id == op) {
                o.kind = OpKind::Turn { stream };
            }
            self.chats[chat].last_send = Some((message_id, now_ms));
            return;
        }
        let adopt = match steer_id.and_then(|id| self.adopt(chat, &id)) {
            Some(Adopt::Owed(seq)) => {
                self.unsave_part(chat, &part_id); // (nothing to append)
                Some(seq)
            }
            Some(Adopt::Answered) => {
                self.unsave_part(chat, &part_id);
                // Its answer went by already; appending it again would have it answered twice.
                let stream = self.next_id();
                self.finish_op(op, Ok(Value::Stream(stream)));
                self.release_if_idle(&chat_id, now_ms);
                return;
            }
            None => None,
        };
        // A saved send's stream was opened when `reconnectToStream` asked for it.
        let opened = self.op_index(op).and_then(|i| match self.ops[i].kind {
            OpKind::Turn { stream } if self.sub_open(stream) => Some(stream),
            _ => None,
        });
        let stream = match opened {
            Some(stream) => stream,
            None if self.replay_stream(op).is_some() => {
                // Nobody reads it any more (cancelled while it waited for the chat): it stays
                // saved for a later page.
                self.finish_op(op, Err(Error::Aborted.into()));
                self.release_if_idle(&chat_id, now_ms);
                return;
            }
            None => self.open_send_sub(chat, op, source, adopt, false, headers.clone(), now_ms),
        };
        if let Some(o) = self.ops.iter_mut().find(|o| o.id == op) {
            o.kind = OpKind::Turn { stream };
        }
        self.chats[chat].last_send = Some((message_id.clone(), now_ms));
        if let Some(seq) = adopt {
            // Nothing to append: the agent has the message already.
            self.turn_accepted(op, chat, stream, Some(seq), now_ms);
            self.finish_op(op, Ok(Value::Stream(stream)));
            return;
        }
        self.begin_append(
            op, chat, source, body, message_id, headers, &part_id, now_ms,
        );
    }

    /// Opens the subscription that streams a send's turn (`adopt`: the `.in` seq of the
    /// steering message whose turn it is, when it appends nothing; `replay`: a saved send sent
    /// again, whose turn may be over already).
    #[allow(clippy::too_many_arguments)]
    fn open_send_sub(
        &mut self,
        chat: usize,
        op: u32,
        source: Source,
        adopt: Option<u64>,
        replay: bool,
        headers: HeaderList,
        now_ms: u64,
    ) -> u32 {
        let (start, early, consumed) = {
            let state = &self.chats[chat].state;
            // A stopped or unfinished turn of this tab is still unanswered input (an adopted
            // steering message is the turn this send streams).
            let consumed = state.consumed_before_send(adopt);
            // Nothing known of earlier inputs (state saved in the JavaScript transport's shape,
            // without `consumedInputSeq`): read from two records before the cursor, where the
            // last boundary usually is (a trim record follows it), to learn what the agent
            // consumed (`Turn::look_back`). Otherwise no boundary would come before this send's
            // own, and the whole reply would be held to its end. (Not for a replayed saved send:
            // the boundary there may be its own.)
            let early = state.cursor.get().filter(|_| consumed.is_none() && !replay);
            // A replayed send reads its turn from where it was made: a transcript's cursor
            // seeded since may be past its answer (the server dedupes the append to that turn).
            let made_at = state
                .pending_send
                .as_ref()
                .map(|p| (p.turn_start, p.consumed));
            let (start, consumed) = match (early, made_at) {
                (Some(seq), _) => (Cursor::new(seq.checked_sub(2)), consumed),
                // (What the chat knows was consumed now it may have learned past that start:
                // the send holds from what was known when it was made, if that was saved.)
                (None, Some((at, then))) if replay && at < state.cursor.get() => {
                    (Cursor::new(at), then)
                }
                (None, _) => (state.cursor, consumed),
            };
            (start, early, consumed)
        };
        let stream = self.open_sub(
            chat,
            SubOptions {
                kind: Kind::Send,
                start,
                input_seq: InputSeq::Pending,
                hold: if self.chats[chat].legacy {
                    Hold::Off
                } else {
                    Hold::BySeq { consumed }
                },
                peek_settled: false,
                headers,
                settle_op: (source == Source::Action).then_some(op),
                // A send's stream ends at its own boundary, in watch mode too (the JS
                // transport's never ends there, W23).
                standing: false,
            },
            now_ms,
        );
        if let Some(floor) = early {
            self.look_back(stream, floor);
        }
        // (Where its turn starts: `look_back` moves the stream's start up to the cursor.)
        let turn_start = self.sub_start_cursor(stream).unwrap_or(start);
        // (Not for a saved send made on another page: it may have landed before the seqs this
        // page has learned since.)
        let floor = (!replay).then(|| self.known_input_seq(chat)).flatten();
        if let Some(i) = self.op_index(op) {
            self.ops[i].start = turn_start;
            self.ops[i].consumed = consumed;
            self.ops[i].floor = floor.map(|k| k.saturating_add(1));
        }
        self.stops_unanswered(chat, stream, now_ms);
        stream
    }

    /// The highest `.in` seq the chat knows of: consumed, outstanding, a steering message's or a
    /// stop's of this tab.
    fn known_input_seq(&self, chat: usize) -> Option<u64> {
        let c = &self.chats[chat];
        // (`None` is below every `Some`.)
        let mut known = c.state.consumed_input_seq.max(c.state.active_input_seq);
        for s in &c.steers {
            known = known.max(Some(s.seq));
        }
        for &seq in &c.stops {
            known = known.max(Some(seq));
        }
        known
    }

    /// Every send of `chat_id` starts its turn at the beginning of the (new) session.
    pub(super) fn reset_op_starts(&mut self, chat_id: &str) {
        for o in self.ops.iter_mut().filter(|o| o.chat == chat_id) {
            o.start = Cursor::default();
            o.consumed = None;
            o.floor = None;
        }
    }

    /// The send whose turn stream `stream` reads starts its turn at `start` (see `Op::start`),
    /// in a session read anew: what was known of its `.in` seqs was the old session's, unless
    /// `same_inputs` (only `.out` was numbered again).
    pub(super) fn set_op_start(&mut self, stream: u32, start: Cursor, same_inputs: bool) {
        for o in self.ops.iter_mut() {
            if o.kind == (OpKind::Turn { stream }) {
                o.start = start;
                if !same_inputs {
                    o.consumed = None;
                    o.floor = None;
                }
            }
        }
    }

    /// The turn of a send is on `.in` with seq `seq`: the chat streams it from where its
    /// subscription started, and the subscription correlates its boundary.
    fn turn_accepted(&mut self, op: u32, chat: usize, stream: u32, seq: Option<u64>, now_ms: u64) {
        let start = self
            .sub_start_cursor(stream)
            .or_else(|| self.op_index(op).map(|i| self.ops[i].start))
            .unwrap_or(self.chats[chat].state.cursor);
        self.chats[chat].state.begin_turn(seq, start);
        self.chats[chat].stopped_turn = None;
        self.persist(chat);
        self.sub_input_seq(stream, seq, now_ms);
    }

    /// Whether a send of `message_id` is one of this tab's steering messages. One still owed is
    /// adopted only when no other input of this tab is outstanding but owed steering messages
    /// and a turn it stopped (another turn's boundary could pass for the steering message's).
    fn adopt(&self, chat: usize, message_id: &str) -> Option<Adopt> {
        let c = &self.chats[chat];
        let steer = c
            .steers
            .iter()
            .find(|s| s.message_id.as_deref() == Some(message_id))?;
        if steer.answered {
            return Some(Adopt::Answered);
        }
        // (A turn this tab stopped counts as free too: a stop drops nothing queued on `.in`, so
        // the agent still answers the steering message with a turn of its own, and a second
        // append would be answered a second time (W29). The stopped turn's boundary cannot
        // pass for that turn's: its consumed cursor is held back behind the waiting message.)
        let free = c.state.active_input_seq.is_none_or(|seq| {
            c.steers.iter().any(|s| s.seq == seq && !s.answered)
                || (c.stopped_turn == Some(Some(seq)) && steer.seq > seq)
        });
        free.then_some(Adopt::Owed(steer.seq))
    }

    /// A turn of the chat is over (or none was in flight when a steering message landed): if a
    /// steering message of this tab is still unconsumed, the agent answers it with a turn of its
    /// own, so the chat stays streaming for that one — a reload or `reconnectToStream` (and a
    /// send of that message, see `adopt`) picks the turn up from here. No boundary with a
    /// `session-in-event-id` yet means nothing was read from `.in` (protocol-notes #3).
    pub(super) fn owe_steer_turn(&mut self, chat: usize) {
        let c = &mut self.chats[chat];
        if c.state.closed {
            c.steers.clear();
            return;
        }
        let consumed = c.state.consumed_input_seq;
        for steer in c.steers.iter_mut() {
            steer.answered |= consumed.is_some_and(|k| steer.seq <= k);
        }
        let owed = c.steers.iter().filter(|s| !s.answered).map(|s| s.seq).min();
        if let Some(next) = owed {
            let cursor = c.state.cursor;
            c.state.begin_turn(Some(next), cursor);
        }
    }

    /// The chat's `headStart` request settled: the sends that waited for it go ahead with the
    /// session it brought, or fail with its error. Those whose caller gave up are dropped.
    pub(super) fn after_head_start(
        &mut self,
        chat: usize,
        result: Result<(), ErrorRef>,
        now_ms: u64,
    ) {
        let waiting = core::mem::take(&mut self.chats[chat].after_head_start);
        for pending in waiting {
            let aborted = self.op_aborted(pending.op);
            match &result {
                _ if aborted => self.finish_op(pending.op, Err(Error::Aborted.into())),
                Ok(()) => self.start_claimed_turn(pending, now_ms),
                Err(error) => self.refuse_turn(pending, error.clone(), now_ms),
            }
        }
    }

    /// Whether a stop of the chat is on its way to `.in`.
    fn stop_pending(&self, chat_id: &str) -> bool {
        self.ops
            .iter()
            .any(|o| o.chat == chat_id && o.kind == OpKind::Stop && o.append.is_some())
    }

    /// A stop of the chat settled: the sends that waited for it go ahead (once no other stop
    /// is on its way). Those whose caller gave up end.
    fn after_stop(&mut self, chat_id: &str, now_ms: u64) {
        if self.stop_pending(chat_id) {
            return;
        }
        let Some(chat) = self.chat_index(chat_id) else {
            return;
        };
        for pending in core::mem::take(&mut self.chats[chat].after_stop) {
            if self.op_aborted(pending.op) {
                self.finish_op(pending.op, Err(Error::Aborted.into()));
            } else if let Some(pending) = self.claim_for_send(pending, now_ms) {
                // (Claimed again: the chat may have been given up meanwhile, by `pagehide`.)
                self.start_claimed_turn(pending, now_ms);
            }
        }
    }

    /// A send of this tab that has not reached `.in` yet: waiting for the writer lock, a head
    /// start or a stop.
    fn held(&self, op: u32) -> Option<&PendingTurn> {
        self.held_where(|p| p.op == op)
    }

    fn held_where(&self, f: impl Fn(&PendingTurn) -> bool) -> Option<&PendingTurn> {
        if let Some(p) = self
            .tabs
            .as_ref()
            .and_then(|t| t.waiting.iter().find(|p| f(p)))
        {
            return Some(p);
        }
        for c in &self.chats {
            if let Some(p) = c.after_stop.iter().find(|p| f(p)) {
                return Some(p);
            }
            if let Some(p) = c.after_head_start.iter().find(|p| f(p)) {
                return Some(p);
            }
        }
        None
    }

    /// Whether a send of this tab carries `part_id`: its append on its way, or held.
    pub(super) fn sending_part(&self, part_id: &str) -> bool {
        self.ops.iter().any(|o| o.sends_part(part_id))
            || self.held_where(|p| p.part_id == part_id).is_some()
    }

    /// A send refused before anything was sent (`read_only_tab`): `message-send-failed`, then
    /// the rejection.
    pub(super) fn refuse_turn(
        &mut self,
        pending: PendingTurn,
        error: impl Into<ErrorRef>,
        now_ms: u64,
    ) {
        let error: ErrorRef = error.into();
        if let Some(stream) = self.replay_stream(pending.op) {
            // A saved send that cannot go now (another tab has the chat): this tab leaves it to
            // that tab and stays out of the way (it neither sends it nor writes it back), and
            // the stream asked for ends quietly.
            self.forget_loaded_send(&pending.chat_id);
            self.finish_op(pending.op, Err(error));
            self.close_stream(stream, now_ms);
            return;
        }
        if let Some(chat) = self.chat_index(&pending.chat_id) {
            // (One held behind a stop was saved: refused, no later page sends it.)
            self.unsave_part(chat, &pending.part_id);
            self.send_event(
                chat,
                pending.source,
                Err(&error),
                0,
                pending.message_id.as_deref(),
                &pending.part_id,
                pending.body.len(),
            );
        }
        self.finish_op(pending.op, Err(error));
    }

    /// A turn of this tab runs on the chat: it holds the writer lock, a send of it was
    /// claimed there, or the chat's stream answers a send of it. (Not a send that waits for the
    /// lock, a stop, a steering message or `start`: none makes the chat this tab's.)
    pub(super) fn own_turn(&self, chat_id: &str) -> bool {
        self.holds_lock(chat_id)
            || self
                .ops
                .iter()
                .any(|o| o.chat == chat_id && matches!(o.kind, OpKind::Turn { .. }))
            || self
                .chat_index(chat_id)
                .and_then(|c| self.chats[c].active)
                .is_some_and(|sub| self.answers_send(sub))
    }

    /// Whether a send of this tab for `chat_id` is in flight or waiting.
    pub(super) fn turn_pending(&self, chat_id: &str) -> bool {
        self.ops.iter().any(|o| {
            // (A stop in flight too: the chat is not free before the agent has it, or another
            // tab's message could reach the turn it stops.)
            o.chat == chat_id
                && o.append.is_some()
                && matches!(o.kind, OpKind::Turn { .. } | OpKind::Stop)
        }) || self
            .tabs
            .as_ref()
            .is_some_and(|t| t.waiting.iter().any(|p| p.chat_id == chat_id))
            || self
                .chat_index(chat_id)
                .is_some_and(|c| !self.chats[c].after_stop.is_empty())
    }

    #[allow(clippy::too_many_arguments)]
    fn begin_append(
        &mut self,
        op: u32,
        chat: usize,
        source: Source,
        body: String,
        message_id: Option<String>,
        headers: HeaderList,
        part_id: &str,
        now_ms: u64,
    ) {
        if let Some(o) = self.ops.iter_mut().find(|o| o.id == op) {
            let mut policy = AppendPolicy::new();
            let mut started_ms = now_ms;
            if let Some((created_ms, reachable_since_ms)) = o.saved.take() {
                // A saved send keeps its age and its window.
                started_ms = created_ms;
                policy.restore_reachable_since(reachable_since_ms);
            }
            o.append = Some(Append {
                body,
                part_id: part_id.into(),
                source,
                message_id,
                headers,
                policy,
                started_ms,
                token: UsedToken::default(),
                fetch: None,
                timer: None,
                parked: false,
            });
        }
        if let Err(error) = self.refuse_if_unusable(chat) {
            self.append_done(op, Err(error.into()), now_ms);
            return;
        }
        match self.token_for(chat, Waiter::Op(op), now_ms) {
            Some(token) => self.append_attempt(op, token, now_ms),
            // Saved now rather than at its first attempt, which waits for a token.
            None => self.keep_pending_send(op),
        }
    }

    /// The token an operation waited for is here (or could not be had).
    pub(super) fn op_token_ready(&mut self, op: u32, result: Result<(), ErrorRef>, now_ms: u64) {
        let Some(i) = self.op_index(op) else {
            return;
        };
        if let Err(error) = result {
            if self.ops[i].append.is_some() {
                self.append_done(op, Err(error), now_ms);
            } else {
                self.finish_op(op, Err(error));
            }
            return;
        }
        let chat = self.ops[i].chat.clone();
        let token = self
            .chat_index(&chat)
            .and_then(|c| self.chats[c].state.token.clone());
        match (self.ops[i].kind, token) {
            // A chat removed while its session was being created has no state to give: the
            // start ends as aborted (the type promises a state, as the JS transport's does).
            (OpKind::Start, _) => match self.get_session(&chat) {
                Some(session) => self.finish_op(op, Ok(Value::Session(session))),
                None => self.finish_op(op, Err(Error::Aborted.into())),
            },
            (_, Some(token)) => self.append_attempt(op, token, now_ms),
            (_, None) => self.append_done(op, Err(Error::Aborted.into()), now_ms),
        }
    }

    /// Ends `op` instead of another attempt when none may go out: it was aborted and nothing of
    /// it can have reached the server, or the part id's claim may have expired since.
    /// `window`: also check the claim (before an attempt; after a failure, the server's answer
    /// comes first).
    fn unsendable(&mut self, op: u32, window: bool, now_ms: u64) -> bool {
        let Some(i) = self.op_index(op) else {
            return true;
        };
        let Some(a) = self.ops[i].append.as_ref() else {
            return true;
        };
        let error = if self.ops[i].aborted && !a.policy.may_have_landed() {
            Error::Aborted
        } else if window && a.policy.expired(now_ms) {
            Error::Network {
                message: "no answer from the server within the retry window".into(),
            }
        } else {
            return false;
        };
        self.append_done(op, Err(error.into()), now_ms);
        true
    }

    fn append_attempt(&mut self, op: u32, token: String, now_ms: u64) {
        if self.unsendable(op, true, now_ms) {
            return;
        }
        let fetch = self.next_id();
        let timer = self.next_id();
        let Some(i) = self.op_index(op) else {
            return;
        };
        let used = self.use_token(&self.ops[i].chat, token);
        let o = &mut self.ops[i];
        let chat_id = o.chat.clone();
        let Some(append) = o.append.as_mut() else {
            return;
        };
        let mut headers = self.config.headers.clone();
        headers.extend(&append.headers);
        headers.set("Content-Type", "application/json");
        let mut auth = String::from("Bearer ");
        auth.push_str(used.text());
        headers.set("Authorization", auth);
        headers.set("x-trigger-source", "sdk");
        headers.set("X-Part-Id", append.part_id.as_str());
        append.token = used;
        append.fetch = Some(fetch);
        append.timer = Some(timer);
        append.parked = false;
        append.policy.on_attempt(self.offline, now_ms);
        let body = append.body.clone();
        // Saved (or brought up to date) before it goes: a later page must know it, and whether
        // this attempt may land.
        self.keep_pending_send(op);
        self.actions.push(Action::Fetch {
            id: fetch,
            path: session_path("", &chat_id, SessionChannel::InAppend),
            chat_id,
            endpoint: Endpoint::In,
            headers,
            body: Some(body),
        });
        self.actions.push(Action::SetTimer {
            id: timer,
            ms: APPEND_TIMEOUT_MS,
        });
    }

    /// The op whose append request is `fetch`.
    fn op_by_fetch(&self, fetch: u32) -> Option<usize> {
        self.ops
            .iter()
            .position(|o| o.append.as_ref().is_some_and(|a| a.fetch == Some(fetch)))
    }

    /// An append answered (`status`, body `text`, `x-ratelimit-reset`).
    pub(super) fn append_response(
        &mut self,
        fetch: u32,
        status: u16,
        text: &str,
        reset: Option<u64>,
        now_ms: u64,
    ) -> bool {
        let Some(i) = self.op_by_fetch(fetch) else {
            return false;
        };
        let op = self.ops[i].id;
        self.clear_append_request(i);
        if let Some(append) = self.ops[i].append.as_mut() {
            append.policy.on_answer(status, now_ms);
        }
        if (200..300).contains(&status) {
            self.append_done(op, Ok(AppendResponse::parse(text)), now_ms);
            return true;
        }
        self.keep_pending_send(op);
        let mut error = Error::from_http_status(status, text);
        if let Error::RateLimited { reset_epoch_ms } = &mut error {
            *reset_epoch_ms = reset;
        }
        self.append_failed(op, error, now_ms);
        true
    }

    /// An append request failed without a response (or timed out: `fetch` was aborted).
    pub(super) fn append_request_failed(&mut self, fetch: u32, message: &str, now_ms: u64) -> bool {
        let Some(i) = self.op_by_fetch(fetch) else {
            return false;
        };
        let op = self.ops[i].id;
        self.clear_append_request(i);
        if let Some(append) = self.ops[i].append.as_mut() {
            append.policy.on_no_answer();
        }
        let error = Error::Network {
            message: message.into(),
        };
        self.append_failed(op, error, now_ms);
        true
    }

    /// Timers of appends: the attempt timeout and the retry wait.
    pub(super) fn append_timer(&mut self, timer: u32, now_ms: u64) -> bool {
        let Some(i) = self
            .ops
            .iter()
            .position(|o| o.append.as_ref().is_some_and(|a| a.timer == Some(timer)))
        else {
            return false;
        };
        let op = self.ops[i].id;
        let in_flight = self.ops[i].append.as_ref().and_then(|a| a.fetch);
        if let Some(fetch) = in_flight {
            // The attempt took too long (W6: the JS transport waits forever).
            self.actions.push(Action::Abort { fetch });
            return self.append_request_failed(fetch, "the append timed out", now_ms);
        }
        if let Some(append) = self.ops[i].append.as_mut() {
            append.timer = None;
        }
        let chat = self.ops[i].chat.clone();
        let Some(chat) = self.chat_index(&chat) else {
            return true;
        };
        if let Some(token) = self.token_for(chat, Waiter::Op(op), now_ms) {
            self.append_attempt(op, token, now_ms);
        }
        true
    }

    /// The network is back: appends waiting for it go out now.
    pub(super) fn retry_parked_appends(&mut self, now_ms: u64) {
        // Each retry clears the append's timer, so this ends.
        while let Some(timer) = self
            .ops
            .iter()
            .find_map(|o| o.append.as_ref().filter(|a| a.parked)?.timer)
        {
            self.actions.push(Action::ClearTimer { id: timer });
            self.append_timer(timer, now_ms);
        }
    }

    fn clear_append_request(&mut self, i: usize) {
        if let Some(append) = self.ops[i].append.as_mut() {
            append.fetch = None;
            if let Some(timer) = append.timer.take() {
                self.actions.push(Action::ClearTimer { id: timer });
            }
        }
    }

    fn append_failed(&mut self, op: u32, error: Error, now_ms: u64) {
        if self.unsendable(op, false, now_ms) {
            return;
        }
        let random = self.random();
        let Some(i) = self.op_index(op) else {
            return;
        };
        // A stop for a session that no longer exists has nothing to stop: no new session.
        let can_recreate = self.config.has_start_session && self.ops[i].kind != OpKind::Stop;
        let (step, stale) = match self.ops[i].append.as_mut() {
            Some(append) => (
                append
                    .policy
                    .after_failure(error, can_recreate, self.offline, now_ms, random),
                append.token.clone(),
            ),
            None => return,
        };
        let chat_id = self.ops[i].chat.clone();
        let Some(chat) = self.chat_index(&chat_id) else {
            return;
        };
        match step {
            NextStep::RefreshToken => {
                if let Some(token) = self.refresh_token(chat, &stale, Waiter::Op(op)) {
                    self.append_attempt(op, token, now_ms);
                }
            }
            NextStep::RecreateSession => self.recreate_session(chat, Waiter::Op(op)),
            NextStep::RetryAfter { delay_ms } | NextStep::WaitForNetwork { delay_ms } => {
                let parked = matches!(step, NextStep::WaitForNetwork { .. });
                let timer = self.next_id();
                if let Some(append) = self.ops[i].append.as_mut() {
                    append.timer = Some(timer);
                    append.parked = parked;
                }
                self.actions.push(Action::SetTimer {
                    id: timer,
                    ms: delay_ms,
                });
            }
            NextStep::GiveUp(error) => {
                if let Error::SessionClosed { closed_reason } = &error {
                    self.close_chat(chat, closed_reason.clone(), "append");
                }
                self.append_done(op, Err(error.into()), now_ms);
            }
        }
    }

    /// The append is over: events, then what the operation does with the outcome.
    fn append_done(&mut self, op: u32, result: Result<AppendResponse, ErrorRef>, now_ms: u64) {
        let Some(i) = self.op_index(op) else {
            return;
        };
        let Some(append) = self.ops[i].append.take() else {
            return;
        };
        if let Some(timer) = append.timer {
            self.actions.push(Action::ClearTimer { id: timer });
        }
        let chat_id = self.ops[i].chat.clone();
        let kind = self.ops[i].kind;
        let aborted = self.ops[i].aborted;
        let floor = self.ops[i].floor;
        let replay = self.ops[i].replay;
        let keep_saved = self.ops[i].keep_saved;
        let chat = self.chat_mut(&chat_id);
        let saved = &mut self.chats[chat].state.pending_send;
        // Kept for the next page only while the server may not have it: once acknowledged, no
        // page may send it again.
        let unsaved = (!keep_saved || result.is_ok())
            && saved.as_ref().is_some_and(|p| p.part_id == append.part_id);
        if unsaved {
            *saved = None;
        }
        let duration_ms = now_ms.saturating_sub(append.started_ms);
        self.send_event(
            chat,
            append.source,
            result.as_ref().map(|_| ()),
            duration_ms,
            append.message_id.as_deref(),
            &append.part_id,
            append.body.len(),
        );
        if let Ok(response) = &result {
            if response.pending_version {
                let mut event = EventBuilder::new("run-pending-version", &chat_id);
                event.str("source", "send");
                self.emit(event, None);
            }
        }
        match (kind, result) {
            (OpKind::Turn { stream }, Ok(response)) => {
                // The caller gave up while the append was in flight, but it landed. Unless a
                // newer turn is the chat's now — a send of this tab on its way, another turn
                // streaming (shown by its send's stream or a resumed one), any turn in `watch`
                // mode — the turn it started is stopped: a stop then could end that other turn.
                let state = &self.chats[chat].state;
                let other_turn = state.is_streaming == Some(true)
                    && state
                        .active_input_seq
                        .is_some_and(|s| Some(s) != response.seq);
                let newer = aborted
                    && (other_turn
                        || self.config.watch
                        || self.ops.iter().any(|o| {
                            o.chat == chat_id && !o.aborted && matches!(o.kind, OpKind::Turn { .. })
                        }));
                if !newer {
                    self.turn_accepted(op, chat, stream, response.seq.or(floor), now_ms);
                    if aborted {
                        let part_id = {
                            let mut id = append.part_id.clone();
                            id.push_str("-stop");
                            id
                        };
                        self.stop_turn(chat, &part_id, false, false, now_ms);
                    }
                }
                if newer && unsaved {
                    self.persist(chat);
                }
                self.finish_op(op, Ok(Value::Stream(stream)));
                // Aborted for a newer turn, or its stream already ended (failed, or left while
                // the append was on its way): nothing of this tab runs for the chat, which is
                // free for the other tabs. (With its stream open this does nothing.)
                self.release_if_idle(&chat_id, now_ms);
            }
            (OpKind::Turn { stream }, Err(error)) => {
                if unsaved {
                    self.persist(chat);
                }
                if replay {
                    // Its stream is all the app has of it.
                    self.fail_sub(stream, error.clone(), now_ms);
                }
                self.close_stream(stream, now_ms);
                self.finish_op(op, Err(error));
                // The stream closed while the send was still pending: the claim outlived it.
                self.release_if_idle(&chat_id, now_ms);
            }
            (OpKind::Steer, Ok(response)) => {
                if let Some(seq) = response.seq {
                    let steers = &mut self.chats[chat].steers;
                    if steers.len() == MAX_STEERS {
                        let oldest = steers.iter().position(|s| s.answered).unwrap_or(0);
                        steers.remove(oldest);
                    }
                    steers.push(Steer {
                        message_id: append.message_id.clone(),
                        seq,
                        answered: false,
                    });
                    let idle = self.chats[chat].active.is_none()
                        && self.chats[chat].state.is_streaming != Some(true);
                    if idle {
                        // No turn in flight to consume it: it starts one.
                        self.owe_steer_turn(chat);
                        self.persist(chat);
                    }
                }
                self.finish_op(op, Ok(Value::Bool(true)));
            }
            (OpKind::Stop, Ok(response)) => {
                if let Some(seq) = response.seq {
                    // No boundary will answer it: the chat's sends must not wait for one.
                    let stops = &mut self.chats[chat].stops;
                    if stops.len() == MAX_STOPS {
                        stops.remove(0);
                    }
                    stops.push(seq);
                    // (After the boundary of the turn it stopped: consumed at once, and saved.)
                    let known = self.chats[chat].state.consumed_input_seq;
                    if let Some(known) = known {
                        self.note_consumed(chat, known);
                        if self.chats[chat].state.consumed_input_seq != Some(known) {
                            self.persist(chat);
                        }
                    }
                    self.unanswered_input(&chat_id, None, seq, now_ms);
                }
                self.finish_op(op, Ok(Value::Bool(true)));
                self.after_stop(&chat_id, now_ms);
                // The agent has the stop: the chat is free for other tabs.
                self.release_if_idle(&chat_id, now_ms);
            }
            (OpKind::Stop, result) | (OpKind::Steer, result) => {
                if result.is_err() && kind == OpKind::Stop {
                    self.chats[chat].stopped_turn = None;
                }
                self.finish_op(op, Ok(Value::Bool(result.is_ok())));
                if kind == OpKind::Stop {
                    self.after_stop(&chat_id, now_ms);
                }
                self.release_if_idle(&chat_id, now_ms);
            }
            (OpKind::Start, _) => self.finish_op(op, Ok(Value::Unit)),
        }
    }

    /// Settles and forgets an operation (an aborted one was rejected already).
    pub(super) fn finish_op(&mut self, op: u32, result: Result<Value, ErrorRef>) {
        let Some(i) = self.op_index(op) else {
            return;
        };
        let removed = self.ops.swap_remove(i);
        if let OpKind::Turn { stream } = removed.kind {
            if (removed.aborted || result.is_err()) && !removed.replay {
                // The caller never gets this send's stream, so never reads or cancels it.
                self.forget_stream(stream);
            }
        }
        if removed.aborted {
            return;
        }
        self.actions.push(match result {
            Ok(value) => Action::Resolve { op, value },
            Err(error) => Action::Reject { op, error },
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_event(
        &mut self,
        chat: usize,
        source: Source,
        result: Result<(), &ErrorRef>,
        duration_ms: u64,
        message_id: Option<&str>,
        part_id: &str,
        body_bytes: usize,
    ) {
        let chat_id = self.chats[chat].id.clone();
        let (kind, error) = match result {
            Ok(()) => ("message-sent", None),
            Err(error) => ("message-send-failed", Some(error.clone())),
        };
        let mut event = EventBuilder::new(kind, &chat_id);
        event
            .str("source", source.as_str())
            .num("durationMs", duration_ms)
            .str_opt("messageId", message_id)
            .str_opt("partId", (!part_id.is_empty()).then_some(part_id))
            .num("bodyBytes", body_bytes as u64);
        if let Some(ErrorRef::Ours(e)) = &error {
            event.num_opt("status", e.status().map(u64::from));
        }
        self.emit(event, error);
    }

    /// `stopGeneration`: stops the turn in flight. The local stream closes at once; the stop is
    /// appended with its own part id and the full retry path. Resolves to whether a stop was
    /// sent (or already had been for this turn) or a send not yet acknowledged was aborted.
    pub fn stop_generation(&mut self, chat_id: &str, part_id: &str, now_ms: u64) -> u32 {
        let chat = self.chat_mut(chat_id);
        // A send the server has not acknowledged has no turn to stop yet: it is aborted instead
        // (a stop appended now could reach `.in` before it). One that may have landed is
        // stopped when it does; one that cannot have is never sent.
        // A send that is not a turn yet is given up too: one queued behind another tab's turn
        // (`multiTabSend: "queue"`), or held behind a head start or an earlier stop.
        let mut cancelled = false;
        while let Some(send) = self.ops.iter().find(|o| {
            o.chat == chat_id
                && !o.aborted
                && (matches!(o.kind, OpKind::Turn { .. }) || self.held(o.id).is_some())
        }) {
            let send = send.id;
            self.abort(send, true, now_ms);
            cancelled = true;
        }
        self.stop_turn(chat, part_id, cancelled, true, now_ms)
    }

    /// Appends a stop for the chat's turn in flight (once per turn); `close`: the chat's stream
    /// closes at once (not for a send aborted in flight that landed late: the chat's stream may
    /// be a newer send's by then). The chat is freed for other tabs once the agent has the stop.
    fn stop_turn(
        &mut self,
        chat: usize,
        part_id: &str,
        cancelled: bool,
        close: bool,
        now_ms: u64,
    ) -> u32 {
        let chat_id = self.chats[chat].id.clone();
        let op = self.new_op(&chat_id, OpKind::Stop, true);
        let active = if close { self.chats[chat].active } else { None };
        let state = &self.chats[chat].state;
        let seq = state.active_input_seq;
        let nothing =
            active.is_none() && !state.has_outstanding_turn() && state.is_streaming == Some(false);
        let done = if state.token.is_none() || state.closed || nothing {
            Some(cancelled)
        } else {
            // The same turn is not stopped twice.
            (self.chats[chat].stopped_turn == Some(seq)).then_some(true)
        };
        if let Some(sent) = done {
            self.close_active(chat, active, now_ms);
            self.finish_op(op, Ok(Value::Bool(sent)));
            self.release_if_idle(&chat_id, now_ms);
            return op;
        }
        self.chats[chat].stopped_turn = Some(seq);
        self.chats[chat].state.stop_turn();
        self.persist(chat);
        let body = InputChunk::Stop { message: None }.to_json_string();
        self.begin_append(
            op,
            chat,
            Source::Stop,
            body,
            None,
            HeaderList::new(),
            part_id,
            now_ms,
        );
        // (After the append: the stream's end must not free the chat before the stop is in.)
        self.close_active(chat, active, now_ms);
        op
    }

    /// Closes the chat's stream `active` (the one a stop ends) at once.
    fn close_active(&mut self, chat: usize, active: Option<u32>, now_ms: u64) {
        if let Some(stream) = active {
            self.close_stream(stream, now_ms);
            self.chats[chat].active = None;
        }
    }

    /// `sendPendingMessage`: a steering message during a turn; resolves to whether it was
    /// appended (false without a session). The stream in flight is untouched.
    pub fn send_pending_message(
        &mut self,
        chat_id: &str,
        message: Json,
        metadata: Option<Json>,
        part_id: &str,
        now_ms: u64,
    ) -> u32 {
        let chat = self.chat_mut(chat_id);
        let op = self.new_op(chat_id, OpKind::Steer, true);
        if self.chats[chat].state.token.is_none() {
            self.finish_op(op, Ok(Value::Bool(false)));
            return op;
        }
        let message_id = message.get("id").and_then(Json::as_str).map(str::to_owned);
        let mut payload = WirePayload::new(chat_id, Trigger::SubmitMessage);
        payload.message = Some(message);
        payload.metadata = merge_metadata(self.client_data.as_ref(), metadata.as_ref());
        let body = payload.to_input_chunk().to_json_string();
        if let Err(error) = check_append_body_size(&body) {
            // (Reported as the other sends report it; the JS transport's comes from the 413.)
            let bytes = body.len();
            let id = message_id.as_deref();
            self.send_event(
                chat,
                Source::Steer,
                Err(&error.into()),
                0,
                id,
                part_id,
                bytes,
            );
            self.finish_op(op, Ok(Value::Bool(false)));
            return op;
        }
        self.begin_append(
            op,
            chat,
            Source::Steer,
            body,
            message_id,
            HeaderList::new(),
            part_id,
            now_ms,
        );
        op
    }

    /// `start` / `preload`: resolves to the session state once the session exists.
    pub fn start(&mut self, chat_id: &str, now_ms: u64) -> u32 {
        let chat = self.chat_mut(chat_id);
        let op = self.new_op(chat_id, OpKind::Start, false);
        // A session with a token is there already, even one about to expire (the next request
        // refreshes it): `start` asks for nothing then.
        let held = self.chats[chat].state.token.is_some();
        if held || self.token_for(chat, Waiter::Op(op), now_ms).is_some() {
            self.op_token_ready(op, Ok(()), now_ms);
        }
        op
    }

    /// The caller aborted operation `op` (a send whose append is in flight): its promise is
    /// rejected with an abort at once; if the append lands anyway, that turn is stopped.
    pub fn abort_op(&mut self, op: u32, now_ms: u64) {
        self.abort(op, true, now_ms);
    }

    /// Aborts `op`; `unsave`: also forget its saved copy (the caller gave it up, rather than the
    /// page going away).
    pub(super) fn abort(&mut self, op: u32, unsave: bool, now_ms: u64) {
        let Some(i) = self.op_index(op) else {
            return;
        };
        if self.ops[i].aborted {
            return;
        }
        self.ops[i].aborted = true;
        // (Set before the stream closes: closing it may end operations, and `i` with them.)
        self.ops[i].keep_saved = !unsave;
        if let OpKind::Turn { stream } = self.ops[i].kind {
            self.close_stream(stream, now_ms);
        }
        if unsave {
            // The caller gave it up: a later page must not send it again.
            self.unsave(op);
        }
        self.reject_now(op, Error::Aborted.into());
        self.drop_waiting_send(op);
        // Nothing of it can have reached the server and no attempt is in flight: it ends here
        // rather than at its next attempt, and stops waiting for a token.
        let unsent = self.op_index(op).is_some_and(|i| {
            self.ops[i]
                .append
                .as_ref()
                .is_some_and(|a| a.fetch.is_none() && !a.policy.may_have_landed())
        });
        if unsent {
            self.forget_waiter(Waiter::Op(op));
            self.append_done(op, Err(Error::Aborted.into()), now_ms);
        }
    }

    /// The replayed send whose stream is `stream`, while it is not acknowledged.
    pub(super) fn replay_op_of(&self, stream: u32) -> Option<u32> {
        self.ops
            .iter()
            .find(|o| o.replay && o.kind == OpKind::Turn { stream })
            .map(|o| o.id)
    }

    /// The stream of a saved send that `reconnectToStream` replays (see `replay_pending_send`).
    pub(super) fn replay_stream(&self, op: u32) -> Option<u32> {
        let o = &self.ops[self.op_index(op)?];
        match o.kind {
            OpKind::Turn { stream } if o.replay => Some(stream),
            _ => None,
        }
    }

    /// Saves a turn's append in the chat's state until the server acknowledges it
    /// (`pendingSend`), or brings the saved copy up to date (when an attempt that may land
    /// starts). One send is saved per chat: a newer one does not replace one still in flight.
    /// Bodies over [`MAX_SAVED_BODY`] stay in memory only; a watcher saves nothing.
    fn keep_pending_send(&mut self, op: u32) {
        let Some(o) = self.op_index(op).map(|i| &self.ops[i]) else {
            return;
        };
        if !matches!(o.kind, OpKind::Turn { .. }) {
            return;
        }
        let Some(chat) = self.chat_index(&o.chat) else {
            return;
        };
        self.save_send(chat, op, 0);
    }

    /// Saves send `op` as the chat's `pendingSend`: its append on its way (see
    /// [`Self::keep_pending_send`]), or the send held for it (made at `now_ms`: behind a stop).
    fn save_send(&mut self, chat: usize, op: u32, now_ms: u64) {
        let append = self.op_index(op).and_then(|i| self.ops[i].append.as_ref());
        // Where its turn starts, and what its stream counted as consumed before it: one held
        // behind a stop has no stream yet, and its turn comes after what the chat has read.
        let (source, part_id, body, message_id, created_ms, reachable_since_ms, made) = match append
        {
            Some(a) => (
                a.source,
                &a.part_id,
                &a.body,
                &a.message_id,
                a.started_ms,
                a.policy.reachable_since(),
                self.op_index(op).map_or((None, None), |i| {
                    (self.ops[i].start.get(), self.ops[i].consumed)
                }),
            ),
            None => match self.held(op) {
                Some(p) => {
                    let state = &self.chats[chat].state;
                    let made = (state.cursor.get(), state.consumed_before_send(None));
                    (
                        p.source,
                        &p.part_id,
                        &p.body,
                        &p.message_id,
                        now_ms,
                        None,
                        made,
                    )
                }
                None => return,
            },
        };
        let saved_source = matches!(
            source,
            Source::SubmitMessage | Source::RegenerateMessage | Source::Action
        );
        if !saved_source || body.len() > MAX_SAVED_BODY || self.config.watch {
            return;
        }
        let state = &self.chats[chat].state;
        if let Some(p) = state.pending_send.as_ref() {
            if p.part_id == *part_id {
                if p.reachable_since_ms == reachable_since_ms && !state.pending_loaded {
                    return; // up to date
                }
            } else if self.sending_part(&p.part_id) {
                return; // that one is still in flight: it stays the one saved
            }
        }
        // (Where its turn starts and what was consumed before it stay as first saved: a pair
        // from one moment.)
        let (turn_start, consumed) = match state.pending_send.as_ref() {
            Some(p) if p.part_id == *part_id => (p.turn_start, p.consumed),
            _ => made,
        };
        let entry = PendingSend {
            part_id: part_id.clone(),
            body: body.clone(),
            source: source.as_str().into(),
            message_id: message_id.clone(),
            created_ms,
            reachable_since_ms,
            turn_start,
            consumed,
        };
        let part_id = entry.part_id.clone();
        let state = &mut self.chats[chat].state;
        state.pending_loaded = false;
        if let Some(p) = state.pending_send.replace(entry) {
            if p.part_id != part_id {
                // An earlier page's send that nobody sent again: this newer one replaces it.
                self.report_unsent(chat, &p, Error::Aborted);
            }
        }
        self.persist(chat);
    }

    /// Forgets the saved copy of `op`'s append, or of the send held for it (and says so to
    /// storage).
    fn unsave(&mut self, op: u32) {
        let Some(o) = self.op_index(op).map(|i| &self.ops[i]) else {
            return;
        };
        let held = self.held(op).map(|p| &p.part_id);
        let Some(part) = o.append.as_ref().map(|a| &a.part_id).or(held).cloned() else {
            return;
        };
        if let Some(chat) = self.chat_index(&o.chat) {
            self.unsave_part(chat, &part);
        }
    }

    /// Forgets the chat's saved send if it is the one with `part_id`.
    fn unsave_part(&mut self, chat: usize, part_id: &str) {
        let state = &mut self.chats[chat].state;
        if state
            .pending_send
            .as_ref()
            .is_some_and(|p| p.part_id == part_id)
        {
            state.pending_send = None;
            self.persist(chat);
        }
    }

    /// Another tab has the chat: a saved send this tab only loaded is that tab's to send (or was
    /// sent already); this tab must not write it back.
    pub(super) fn forget_loaded_send(&mut self, chat_id: &str) {
        if let Some(chat) = self.chat_index(chat_id) {
            let state = &mut self.chats[chat].state;
            if state.pending_loaded {
                state.pending_send = None;
                state.pending_loaded = false;
            }
        }
    }

    /// `message-send-failed` for a saved send that will not be sent.
    fn report_unsent(&mut self, chat: usize, saved: &PendingSend, error: Error) {
        let source = Source::of_saved(&saved.source).unwrap_or(Source::SubmitMessage);
        let body_bytes = saved.body.len();
        self.send_event(
            chat,
            source,
            Err(&error.into()),
            0,
            saved.message_id.as_deref(),
            &saved.part_id,
            body_bytes,
        );
    }

    /// `reconnectToStream` on a chat with a saved send the server never acknowledged (the page
    /// that made it went away first): it goes out again with its part id, and its turn is the
    /// stream returned. One whose first attempt that may have landed is older than the retry
    /// window is dropped instead (a second copy could be appended): `message-send-failed`.
    pub(super) fn replay_pending_send(
        &mut self,
        chat: usize,
        headers: &HeaderList,
        now_ms: u64,
    ) -> Option<u32> {
        let c = &self.chats[chat];
        let saved = c.state.pending_send.clone()?;
        if c.state.token.is_none() || c.state.is_streaming == Some(true) {
            // A turn is in flight: resume it; the saved send waits for a later page.
            return None;
        }
        let replaying = self.ops.iter().position(|o| o.replay && o.chat == c.id);
        if let Some(i) = replaying.filter(|&i| !self.ops[i].aborted && !c.state.closed) {
            // Replayed already, and its stream let go (the app left the chat and came back)
            // while the append is still on its way: a new stream reads that send's turn.
            let op = self.ops[i].id;
            if matches!(self.ops[i].kind, OpKind::Turn { stream } if self.sub_open(stream)) {
                return None;
            }
            let source = Source::of_saved(&saved.source)?;
            let stream = self.open_send_sub(chat, op, source, None, true, headers.clone(), now_ms);
            if let Some(i) = self.op_index(op) {
                self.ops[i].kind = OpKind::Turn { stream };
            }
            return Some(stream);
        }
        if replaying.is_some() || self.sending_part(&saved.part_id) {
            // Given up, or this page's own send of it is still going (the host resumes once it
            // lands).
            return None;
        }
        if c.state.closed {
            self.chats[chat].state.pending_send = None;
            self.persist(chat);
            let reason = self.chats[chat].state.closed_reason.clone();
            let error = Error::SessionClosed {
                closed_reason: reason,
            };
            self.report_unsent(chat, &saved, error);
            return None;
        }
        let source = Source::of_saved(&saved.source)?;
        if self.is_read_only(&c.id) {
            // The tab that owns the chat has it (or sent it): this tab lets it go.
            let chat_id = c.id.clone();
            self.forget_loaded_send(&chat_id);
            return None;
        }
        let mut window = AppendPolicy::new();
        window.restore_reachable_since(saved.reachable_since_ms);
        if window.expired(now_ms) {
            self.chats[chat].state.pending_send = None;
            self.persist(chat);
            let error = Error::Network {
                message:
                    "not sent: the page that made it went away and its retry window has passed"
                        .into(),
            };
            self.report_unsent(chat, &saved, error);
            return None;
        }
        let chat_id = self.chats[chat].id.clone();
        let op = self.new_op(&chat_id, OpKind::Start, true);
        // Its stream now (the app is waiting for one); its append once the chat is this tab's.
        let stream = self.open_send_sub(chat, op, source, None, true, headers.clone(), now_ms);
        if let Some(i) = self.op_index(op) {
            let o = &mut self.ops[i];
            o.replay = true;
            o.saved = Some((saved.created_ms, saved.reachable_since_ms));
            o.kind = OpKind::Turn { stream };
        }
        self.start_turn(
            op,
            chat,
            source,
            saved.body,
            saved.message_id,
            headers.clone(),
            &saved.part_id,
            None,
            None,
            now_ms,
        );
        Some(stream)
    }

    /// `removeSession`: the chat's operations end now with `aborted` (an append in flight is
    /// abandoned; it may still land), and so does the wait for a token or a turn of the chat.
    pub(super) fn end_ops_of(&mut self, chat_id: &str, now_ms: u64) {
        while let Some(i) = self.ops.iter().position(|o| o.chat == chat_id) {
            let op = self.ops[i].id;
            if let Some(append) = self.ops[i].append.take() {
                if let Some(fetch) = append.fetch {
                    self.actions.push(Action::Abort { fetch });
                }
                if let Some(timer) = append.timer {
                    self.actions.push(Action::ClearTimer { id: timer });
                }
            }
            if let OpKind::Turn { stream } = self.ops[i].kind {
                self.close_stream(stream, now_ms);
            }
            self.forget_waiter(Waiter::Op(op));
            // One in the writer lock's queue gives up its place (and the request with it).
            self.drop_waiting_send(op);
            self.finish_op(op, Err(Error::Aborted.into()));
        }
        // (Ended above: the sends held behind a stop must not keep the chat claimed.)
        if let Some(c) = self.chat_index(chat_id) {
            self.chats[c].after_stop.clear();
        }
        self.release_if_idle(chat_id, now_ms);
    }

    /// `dispose` while offline: the sends none of whose attempts can have reached the server
    /// are aborted (a saved copy stays: the chat's next `reconnectToStream` sends it).
    pub(super) fn abort_unsent(&mut self, now_ms: u64) {
        // Each abort marks its operation, so this ends.
        while let Some(op) = self
            .ops
            .iter()
            .find(|o| {
                !o.aborted
                    && matches!(o.kind, OpKind::Turn { .. })
                    && o.append
                        .as_ref()
                        .is_some_and(|a| !a.policy.may_have_landed())
            })
            .map(|o| o.id)
        {
            self.abort(op, false, now_ms);
        }
    }

    /// An operation that failed before it started (e.g. an unreadable request): its promise is
    /// rejected with `error`.
    pub fn failed_op(&mut self, error: Error) -> u32 {
        let op = self.next_id();
        self.reject_now(op, error.into());
        op
    }
}

/// `.` and `..` (a chat id taken from a route, say) stay what they are when percent-encoded:
/// URL parsing reads `%2e` as a dot, so `…/sessions/../out` would send the token to
/// `…/realtime/v1/out`. No request is made for such a chat.
pub(super) fn unaddressable(chat_id: &str) -> bool {
    chat_id == "." || chat_id == ".."
}
