//! One `.out` subscription, pulled by the `ReadableStream` the host wraps around it.
//!
//! Nothing is read from the network until the consumer pulls: `pull` asks the host for the next
//! body chunk (`Read`), the chunk goes SSE decoder → records → cursor dedupe → `Turn`, and the
//! data bodies it yields answer the pull (`Chunks`). A slow consumer slows the socket instead of
//! filling memory (the JS transport reads eagerly, W25). Connection ends go to
//! `ReconnectPolicy`; a lifecycle wake (`online`, back to visible, `pageshow`) reconnects now.

use super::action::{Action, Endpoint, ErrorRef, Value};
use super::auth::{UsedToken, Waiter};
use super::events::EventBuilder;
use super::link::Link;
use super::ops::Source;
use super::Driver;
#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::chat::Cursor;
use crate::proto::headers::HeaderList;
use crate::proto::json::{push_u64, write_json_string, Json};
use crate::proto::reconnect::{
    ConnectionEnd, Reconnect, ReconnectPolicy, OFFLINE_RECHECK_MS, TURN_IDLE_LIMIT_MS,
};
use crate::proto::records::{decode_event, Control, StreamEvent};
use crate::proto::sse::SseDecoder;
use crate::proto::turn::{Hold, InputSeq, Outcome, Turn};
use crate::proto::url::{session_path, SessionChannel};
use crate::proto::Error;

/// How long to wait for `.out` response headers before the attempt counts as failed.
const CONNECT_TIMEOUT_MS: u64 = 30_000;

/// What a subscription serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// The answer to this tab's own send.
    Send,
    /// `reconnectToStream` after a reload or remount.
    Resume,
    /// A first turn through the app's `headStart` handler: one POST whose response body is
    /// the turn's UI message chunks as SSE, with the session token in a response header.
    HeadStart,
}

/// A head-start send waiting for its response headers.
#[derive(Debug)]
struct HeadStartSend {
    op: u32,
    started_ms: u64,
    body_bytes: usize,
    message_id: Option<String>,
    /// The request, kept while it may be sent again: every attempt so far started offline, so
    /// none can have reached the handler (a POST without an idempotency key).
    request: Option<(String, HeaderList)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// The turn is over: deliver what is buffered, then end.
    Finished,
    /// Closed locally (stop, supersede, abort, cancel, dispose): end now.
    Closed,
    /// Failed: the next pull gets the error.
    Failed,
}

/// A lifecycle signal from the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The connection is probably dead (`online`, `pageshow` from bfcache, visible after a
    /// long absence): reconnect now.
    Reconnect,
    /// Skip any backoff wait (visible again after a short absence).
    RetryNow,
}

/// Options of a new subscription.
pub(super) struct SubOptions {
    pub kind: Kind,
    pub start: Cursor,
    pub input_seq: InputSeq,
    pub hold: Hold,
    pub peek_settled: bool,
    pub headers: HeaderList,
    /// The `sendAction` operation whose `onSettled` the accepted boundary calls.
    pub settle_op: Option<u32>,
    /// `watch` mode: follow every turn instead of ending at the first boundary.
    pub standing: bool,
}

#[derive(Debug)]
enum Conn {
    None,
    /// Waiting for a token from the app.
    Token,
    Connecting {
        fetch: u32,
        timer: u32,
    },
    Open {
        fetch: u32,
        decoder: SseDecoder,
        settled: bool,
        alive: bool,
        /// A `Read` is outstanding; its stall timer.
        reading: Option<u32>,
    },
    Backoff {
        timer: u32,
    },
}

/// Data bodies waiting for the consumer, as the JSON text of an array.
#[derive(Debug, Default)]
struct Ready {
    text: String,
    count: usize,
    /// Where each body ends in `text` (UTF-8 byte offsets, comma-separated): a host whose
    /// `JSON.parse` of the whole array fails reads the bodies one by one (bodies are never
    /// parsed here), and drops only the ones that are not JSON.
    ends: String,
}

impl Ready {
    fn push(&mut self, body: &str) {
        self.text.push(if self.count == 0 { '[' } else { ',' });
        self.text.push_str(body);
        if self.count > 0 {
            self.ends.push(',');
        }
        push_u64(&mut self.ends, self.text.len() as u64);
        self.count += 1;
    }

    /// The array's text and where its bodies end.
    fn take(&mut self) -> (String, String) {
        self.count = 0;
        let mut text = core::mem::take(&mut self.text);
        text.push(']');
        (text, core::mem::take(&mut self.ends))
    }
}

/// A subscription.
#[derive(Debug)]
pub(super) struct Sub {
    id: u32,
    chat: String,
    kind: Kind,
    cursor: Cursor,
    start: Cursor,
    turn: Turn,
    policy: ReconnectPolicy,
    phase: Phase,
    failure: Option<ErrorRef>,
    conn: Conn,
    ready: Ready,
    taken: Option<String>,
    /// Where the bodies of the last text taken end (see [`Ready`]).
    taken_ends: String,
    pull_pending: bool,
    headers: HeaderList,
    peek_settled: bool,
    settle_op: Option<u32>,
    connected_once: bool,
    /// Connected before its send's append was accepted: `stream-connected` waits for that (the
    /// JS transport opens the stream only then, so its event always follows `message-sent`).
    connect_unreported: bool,
    settled_seen: bool,
    last_token: UsedToken,
    /// A 404 already sent this subscription to repair the session once.
    repaired: bool,
    /// Follows every turn (`watch` mode): a boundary starts the next turn instead of ending.
    standing: bool,
    /// `Kind::HeadStart` before its response: the send to settle.
    head_start: Option<HeadStartSend>,
    /// `Kind::HeadStart`: a chunk reached the consumer.
    delivered: bool,
    /// The last connection ended after delivering and the next one follows at once (a long
    /// poll's routine end): still live as far as the app can tell.
    renewing: bool,
    /// A 429 asked for no new connection before this time: a page wake (`online`, a visible
    /// tab) does not cut its wait short.
    hold_until_ms: u64,
}

impl Sub {
    pub(super) fn id(&self) -> u32 {
        self.id
    }

    pub(super) fn chat_id(&self) -> &str {
        &self.chat
    }

    /// What this subscription adds to its chat's connection state (see `link`).
    pub(super) fn link(&self) -> Link {
        if self.phase != Phase::Open {
            return Link::Idle;
        }
        match self.conn {
            Conn::Open { .. } => Link::Live,
            Conn::Backoff { .. } => Link::Reconnecting,
            // Renewing a connection that ended after delivering (a token about to expire may be
            // refreshed first): no gap the app should see.
            _ if self.renewing => Link::Live,
            // A token refresh mid-stream (a 401 on a reconnect).
            Conn::Token if self.connected_once => Link::Reconnecting,
            _ if self.connected_once || self.policy.failures() > 0 => Link::Reconnecting,
            _ => Link::Connecting,
        }
    }
}

impl Driver {
    /// Opens a subscription as the chat's active one (closing the one it supersedes) and
    /// starts connecting.
    pub(super) fn open_sub(&mut self, chat: usize, options: SubOptions, now_ms: u64) -> u32 {
        let id = self.next_id();
        let chat_id = self.chats[chat].id.clone();
        if let Some(previous) = self.chats[chat].active.replace(id) {
            self.close_stream(previous, now_ms);
        }
        self.subs.push(Sub {
            id,
            chat: chat_id,
            kind: options.kind,
            cursor: options.start,
            start: options.start,
            turn: Turn::new(options.input_seq, options.hold),
            policy: if options.standing {
                ReconnectPolicy::standing(now_ms)
            } else {
                ReconnectPolicy::new(now_ms)
            },
            phase: Phase::Open,
            failure: None,
            conn: Conn::None,
            ready: Ready::default(),
            taken: None,
            taken_ends: String::new(),
            pull_pending: false,
            headers: options.headers,
            peek_settled: options.peek_settled,
            settle_op: options.settle_op,
            connected_once: false,
            connect_unreported: false,
            settled_seen: false,
            last_token: UsedToken::default(),
            repaired: false,
            standing: options.standing,
            head_start: None,
            delivered: false,
            renewing: false,
            hold_until_ms: 0,
        });
        if options.kind != Kind::HeadStart {
            self.connect(id, now_ms);
        }
        id
    }

    /// Posts a chat's first turn to the `headStart` URL (the chat has no session yet) and
    /// returns the stream of its answer; operation `op` settles when the response arrives. Only
    /// the options' and the request's headers go there, never a session token.
    pub(super) fn open_head_start(
        &mut self,
        chat: usize,
        op: u32,
        body: String,
        message_id: Option<String>,
        headers: HeaderList,
        now_ms: u64,
    ) -> u32 {
        let id = self.open_sub(
            chat,
            SubOptions {
                kind: Kind::HeadStart,
                start: Cursor::default(),
                input_seq: InputSeq::Unknown,
                hold: Hold::Off,
                peek_settled: false,
                headers,
                settle_op: None,
                standing: false,
            },
            now_ms,
        );
        let Some(i) = self.sub_index(id) else {
            return id;
        };
        let mut request_headers = self.config.headers.clone();
        request_headers.extend(&self.subs[i].headers);
        request_headers.set("Content-Type", "application/json");
        self.subs[i].head_start = Some(HeadStartSend {
            op,
            started_ms: now_ms,
            body_bytes: body.len(),
            message_id,
            request: Some((body, request_headers)),
        });
        self.post_head_start(i);
        id
    }

    /// The network is back: head-start requests that waited for it go out now.
    pub(super) fn retry_parked_head_starts(&mut self) {
        // Each pass takes the subscription out of `Backoff`, so this ends.
        while let Some(i) = self
            .subs
            .iter()
            .position(|s| s.kind == Kind::HeadStart && matches!(s.conn, Conn::Backoff { .. }))
        {
            if let Conn::Backoff { timer } = self.subs[i].conn {
                self.actions.push(Action::ClearTimer { id: timer });
            }
            self.subs[i].conn = Conn::None;
            self.post_head_start(i);
        }
    }

    /// Sends the head-start request of subscription `i`. One started online may reach the
    /// handler: it is not kept for another attempt.
    fn post_head_start(&mut self, i: usize) {
        let (fetch, timer) = (self.next_id(), self.next_id());
        let offline = self.offline;
        let sub = &mut self.subs[i];
        let Some(send) = sub.head_start.as_mut() else {
            return;
        };
        let Some((body, headers)) = (if offline {
            send.request.clone()
        } else {
            send.request.take()
        }) else {
            return;
        };
        sub.conn = Conn::Connecting { fetch, timer };
        self.actions.push(Action::Fetch {
            id: fetch,
            path: self.config.head_start.clone().unwrap_or_default(),
            chat_id: sub.chat.clone(),
            endpoint: Endpoint::HeadStart,
            headers,
            body: Some(body),
        });
        self.actions.push(Action::SetTimer {
            id: timer,
            ms: CONNECT_TIMEOUT_MS,
        });
    }

    /// A 2xx `headStart` response arrived, with its `X-Trigger-Chat-Access-Token` (empty when
    /// missing) and whether `X-Trigger-Chat-Pending-Version` is `1`. The chat now has its
    /// session: later turns go to `.in` directly.
    pub fn head_start_open(&mut self, fetch: u32, token: &str, pending_version: bool, now_ms: u64) {
        let Some(i) = self.sub_by_fetch(fetch) else {
            self.actions.push(Action::Abort { fetch });
            return;
        };
        let Conn::Connecting { timer, .. } = self.subs[i].conn else {
            return;
        };
        self.actions.push(Action::ClearTimer { id: timer });
        let id = self.subs[i].id;
        if !crate::proto::headers::is_bearer_token(token) {
            self.actions.push(Action::Abort { fetch });
            self.subs[i].conn = Conn::None;
            let error = Error::protocol(
                "the headStart response has no usable X-Trigger-Chat-Access-Token header (a \
                 cross-origin handler must expose it)",
            );
            self.head_start_failed(id, error.into(), now_ms);
            return;
        }
        let Some(send) = self.subs[i].head_start.take() else {
            return;
        };
        let sub = &mut self.subs[i];
        sub.renewing = false;
        sub.conn = Conn::Open {
            fetch,
            decoder: SseDecoder::new(),
            settled: false,
            alive: false,
            reading: None,
        };
        sub.connected_once = true;
        let chat_id = sub.chat.clone();
        let chat = self.chat_mut(&chat_id);
        let c = &mut self.chats[chat];
        c.state.token = Some(token.into());
        c.token_epoch = c.token_epoch.wrapping_add(1);
        c.state.begin_turn(None, Cursor::default());
        c.stopped_turn = None;
        self.persist(chat);
        self.send_event(
            chat,
            Source::HeadStart,
            Ok(()),
            now_ms.saturating_sub(send.started_ms),
            send.message_id.as_deref(),
            "",
            send.body_bytes,
        );
        if pending_version {
            let mut event = EventBuilder::new("run-pending-version", &chat_id);
            event.str("source", "head-start");
            self.emit(event, None);
        }
        let mut event = EventBuilder::new("stream-connected", &chat_id);
        event
            .flag("resumed", false)
            .str_opt("messageId", send.message_id.as_deref());
        self.emit(event, None);
        self.finish_op(send.op, Ok(Value::Stream(id)));
        self.service(id, now_ms);
        self.after_head_start(chat, Ok(()), now_ms);
    }

    /// Whether the chat's `headStart` request is waiting for its response.
    pub(super) fn head_start_pending(&self, chat: usize) -> bool {
        self.chats[chat]
            .active
            .and_then(|a| self.sub_index(a))
            .is_some_and(|i| self.subs[i].head_start.is_some())
    }

    /// The head-start send failed before its response: `message-send-failed`, the send rejects,
    /// its stream is dropped.
    fn head_start_failed(&mut self, id: u32, error: ErrorRef, now_ms: u64) {
        let Some(i) = self.sub_index(id) else { return };
        let Some(send) = self.subs[i].head_start.take() else {
            return;
        };
        self.drop_conn(i);
        if self.subs[i].phase == Phase::Open {
            self.subs[i].phase = Phase::Closed;
        }
        let chat_id = self.subs[i].chat.clone();
        let chat = self.chat_mut(&chat_id);
        self.send_event(
            chat,
            Source::HeadStart,
            Err(&error),
            0,
            send.message_id.as_deref(),
            "",
            send.body_bytes,
        );
        self.finish_op(send.op, Err(error.clone()));
        // Nobody holds this stream: forget it (and free the chat).
        if self.chats[chat].active == Some(id) {
            self.chats[chat].active = None;
        }
        self.forget_stream(id);
        self.after_head_start(chat, Err(error), now_ms);
        self.release_if_idle(&chat_id, now_ms);
    }

    /// The head-start response body: SSE `data:` frames of UI message chunks, plus the
    /// handler's in-band `trigger:turn-complete` and `trigger:session-state` (`.out` cursor).
    fn process_head_start(
        &mut self,
        i: usize,
        decoder: &mut SseDecoder,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<(), Error> {
        decoder.push(bytes)?;
        let chat_id = self.subs[i].chat.clone();
        let chat = self.chat_mut(&chat_id);
        while let Some(event) = decoder.next_event() {
            if self.subs[i].phase != Phase::Open {
                break;
            }
            let data = event.data.trim();
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            // A frame that is not JSON is dropped, as the JS transport drops it: the handler's
            // own output, not the session's records (no cursor, nothing to resume from).
            let Ok(chunk) = Json::parse(data) else {
                continue;
            };
            match chunk.get("type").and_then(Json::as_str) {
                Some("trigger:turn-complete") => {
                    self.chats[chat].state.complete_turn(None);
                    self.turn_completed(chat, None, now_ms);
                }
                Some("trigger:session-state") => {
                    let seq = chunk
                        .get("lastEventId")
                        .and_then(Json::as_str)
                        .and_then(|s| s.parse::<u64>().ok());
                    // `lastEventId` is the `.out` seq of the turn's boundary record. Nothing is
                    // known of consumed inputs (the in-band chunk does not say), so the next
                    // send's stream starts a little early and reads that boundary, which names
                    // the `.in` input the turn answered (see `open_send_sub`).
                    if let Some(cursor) = seq {
                        if self.chats[chat].state.cursor.advance(cursor) {
                            self.persist(chat);
                            self.broadcast_cursor(chat, now_ms);
                        }
                    }
                }
                _ => {
                    let mut body = String::from("{\"data\":");
                    body.push_str(data);
                    body.push('}');
                    if !self.subs[i].delivered {
                        self.subs[i].delivered = true;
                        self.first_chunk_event(chat, &body, None, now_ms);
                    }
                    self.subs[i].ready.push(&body);
                }
            }
        }
        Ok(())
    }

    /// Whether stream `id` answers a send of this tab (not a resume).
    pub(super) fn answers_send(&self, id: u32) -> bool {
        self.sub_index(id)
            .is_some_and(|i| !matches!(self.subs[i].kind, Kind::Resume))
    }

    fn sub_index(&self, id: u32) -> Option<usize> {
        self.subs.iter().position(|s| s.id == id)
    }

    /// Whether stream `id` is still open.
    pub(super) fn sub_open(&self, id: u32) -> bool {
        self.sub_index(id)
            .is_some_and(|i| self.subs[i].phase == Phase::Open)
    }

    pub(super) fn sub_start_cursor(&self, id: u32) -> Option<Cursor> {
        self.sub_index(id).map(|i| self.subs[i].start)
    }

    /// `reconnectToStream`: resumes the turn in flight from its start (the AI SDK replaces
    /// what it had, `resumeStreamIsReplay`), or `None` when nothing can be streaming.
    ///
    /// In `watch` mode the stream follows every turn of an open session from the cursor (the
    /// turn in flight from its start) and stays open across boundaries until the session
    /// closes or the consumer lets go; only a missing or closed session gives `None`.
    pub fn reconnect(&mut self, chat_id: &str, headers: HeaderList, now_ms: u64) -> Option<u32> {
        if super::ops::unaddressable(chat_id) {
            return None;
        }
        let watch = self.config.watch;
        let chat = self.chat_mut(chat_id);
        let c = &self.chats[chat];
        let open = c
            .active
            .and_then(|a| self.sub_index(a))
            .is_some_and(|i| self.subs[i].phase == Phase::Open);
        if open {
            return None;
        }
        if !watch {
            // A send an earlier page saved and the server never acknowledged goes out now.
            if let Some(stream) = self.replay_pending_send(chat, &headers, now_ms) {
                return Some(stream);
            }
        }
        let c = &self.chats[chat];
        let available = if watch {
            c.state.token.is_some() && !c.state.closed
        } else {
            c.state.may_be_streaming()
        };
        if !available {
            return None;
        }
        let active_input_seq = c.state.active_input_seq;
        let start = c.state.resume_cursor();
        // The send it resumes may have begun while an earlier input was unanswered (a stopped
        // turn, one whose stream failed): it holds as that send did, so the earlier turn's
        // tail after its start is not shown as this turn's. (With every earlier input known
        // to be answered, it streams at once.)
        let hold = match (active_input_seq, c.state.consumed_input_seq) {
            // From the session start (no cursor when the send was made), the earlier turns are
            // read again first: held until the boundaries read say they are over, whatever the
            // chat knew was consumed.
            (Some(_), _) if !watch && start.get().is_none() => Hold::BySeq { consumed: None },
            (Some(_), Some(consumed)) if !watch => Hold::BySeq {
                consumed: Some(consumed),
            },
            _ => Hold::Off,
        };
        let stream = self.open_sub(
            chat,
            SubOptions {
                kind: Kind::Resume,
                start,
                input_seq: active_input_seq.map_or(InputSeq::Unknown, InputSeq::Known),
                hold,
                // With a send known to be in flight its boundary is still to come: no fast
                // close on a settled session. A watcher waits for turns to come anyway.
                peek_settled: !watch && active_input_seq.is_none(),
                headers,
                settle_op: None,
                standing: watch,
            },
            now_ms,
        );
        self.stops_unanswered(chat, stream, now_ms);
        Some(stream)
    }

    /// The agent consumed `chat`'s inputs up to `seq`. A stop of this page right after them is
    /// consumed too: no boundary answers it, and once the turn it stopped is over no turn
    /// will. (So the state saved says so, and a resume after a reload, which knows nothing of
    /// this page's stops, does not wait for one.)
    pub(super) fn note_consumed(&mut self, chat: usize, seq: u64) {
        let c = &mut self.chats[chat];
        c.state.note_consumed(seq);
        while let Some(next) = c.state.consumed_input_seq.map(|k| k.saturating_add(1)) {
            if !c.stops.contains(&next) {
                break;
            }
            c.state.note_consumed(next);
        }
    }

    /// Stream `stream` of chat `chat` waits for no boundary to answer the chat's stops.
    pub(super) fn stops_unanswered(&mut self, chat: usize, stream: u32, now_ms: u64) {
        // (A copy: what this calls must not be able to shorten the list under the loop.)
        let chat_id = self.chats[chat].id.clone();
        for seq in self.chats[chat].stops.clone() {
            self.unanswered_input(&chat_id, Some(stream), seq, now_ms);
        }
    }

    /// The consumer wants more (`ReadableStream` pull). Answered by `Chunks`, `End` or `Fail`.
    pub fn pull(&mut self, id: u32, now_ms: u64) {
        let Some(i) = self.sub_index(id) else {
            // Unknown: already over.
            self.actions.push(Action::End { stream: id });
            return;
        };
        self.subs[i].pull_pending = true;
        self.service(id, now_ms);
    }

    /// Forgets a closed stream no caller holds.
    pub(super) fn forget_stream(&mut self, id: u32) {
        if let Some(i) = self.sub_index(id) {
            if self.subs[i].phase != Phase::Open {
                self.drop_conn(i);
                self.subs.swap_remove(i);
            }
        }
    }

    /// The number of streams the driver keeps (tests: none outlives its use).
    #[doc(hidden)]
    pub fn stream_count(&self) -> usize {
        self.subs.len()
    }

    /// The consumer cancelled: close without stopping the agent (like the JS transport).
    pub fn cancel(&mut self, id: u32, now_ms: u64) {
        self.close_stream(id, now_ms);
        if let Some(i) = self.sub_index(id) {
            self.subs.swap_remove(i);
        }
    }

    /// The JSON text of the bodies announced by the last `Chunks` action for `id`.
    pub fn take_chunks(&mut self, id: u32) -> String {
        match self.sub_index(id) {
            Some(i) => self.subs[i].taken.take().unwrap_or_default(),
            None => String::new(),
        }
    }

    /// Where each body of the text last taken for `id` ends (see [`Ready`]).
    pub fn chunk_ends(&self, id: u32) -> Option<String> {
        self.sub_index(id).map(|i| self.subs[i].taken_ends.clone())
    }

    /// The caller aborted a stream's signal. An owning stream (`stop_turn`) stops the agent's
    /// turn through the reliable stop path (the JS transport fires and forgets, W13); otherwise
    /// it only detaches.
    pub fn abort_stream(&mut self, id: u32, stop_turn: bool, part_id: &str, now_ms: u64) {
        let Some(i) = self.sub_index(id) else {
            return;
        };
        if self.subs[i].phase != Phase::Open {
            return;
        }
        let chat_id = self.subs[i].chat.clone();
        let active = self.chat_index(&chat_id).and_then(|c| self.chats[c].active) == Some(id);
        if stop_turn {
            // A saved send replayed for this stream is given up with it, as an aborted send
            // is (a turn it lands anyway is stopped).
            if let Some(op) = self.replay_op_of(id) {
                self.abort_op(op, now_ms);
                return;
            }
        }
        if stop_turn && active {
            self.stop_generation(&chat_id, part_id, now_ms);
        } else {
            self.close_stream(id, now_ms);
        }
    }

    /// A page lifecycle signal.
    pub fn wake(&mut self, wake: Wake, now_ms: u64) {
        if wake == Wake::Reconnect {
            // Back from the bfcache or offline: ask who owns what again.
            if let Some(tabs) = self.tabs.as_mut() {
                tabs.who();
            }
            self.tab_effects(now_ms);
        }
        let ids: Vec<u32> = self.subs.iter().map(|s| s.id).collect();
        for id in ids {
            let Some(i) = self.sub_index(id) else {
                continue;
            };
            let head_start = self.subs[i].kind == Kind::HeadStart;
            if self.subs[i].phase != Phase::Open
                || (head_start && !matches!(self.subs[i].conn, Conn::Backoff { .. }))
            {
                // A head-start response cannot be asked for again (one that waits for the
                // network was never sent).
                continue;
            }
            match (&self.subs[i].conn, wake) {
                (Conn::Backoff { .. }, _) if now_ms < self.subs[i].hold_until_ms => {}
                (Conn::Backoff { timer }, _) => {
                    let timer = *timer;
                    self.actions.push(Action::ClearTimer { id: timer });
                    self.subs[i].conn = Conn::None;
                    self.connect(id, now_ms);
                }
                (Conn::Open { .. } | Conn::Connecting { .. }, Wake::Reconnect) => {
                    self.drop_conn(i);
                    self.connect(id, now_ms);
                }
                _ => {}
            }
        }
    }

    /// Opens a connection from the subscription's cursor once the token is known.
    fn connect(&mut self, id: u32, now_ms: u64) {
        let Some(i) = self.sub_index(id) else { return };
        if self.subs[i].phase != Phase::Open {
            return;
        }
        if self.subs[i].kind == Kind::HeadStart {
            // Only a head-start request that waited for the network is sent again.
            return self.post_head_start(i);
        }
        let chat_id = self.subs[i].chat.clone();
        let Some(chat) = self.chat_index(&chat_id) else {
            return;
        };
        self.subs[i].conn = Conn::Token;
        if let Some(token) = self.token_for(chat, Waiter::Sub(id), now_ms) {
            self.connect_with(id, token, now_ms);
        }
    }

    pub(super) fn sub_token_ready(&mut self, id: u32, result: Result<(), ErrorRef>, now_ms: u64) {
        let Some(i) = self.sub_index(id) else { return };
        if !matches!(self.subs[i].conn, Conn::Token) {
            return;
        }
        match result {
            Err(error) => {
                self.subs[i].conn = Conn::None;
                self.fail_sub(id, error, now_ms);
            }
            Ok(()) => {
                let chat_id = self.subs[i].chat.clone();
                let token = self
                    .chat_index(&chat_id)
                    .and_then(|c| self.chats[c].state.token.clone());
                match token {
                    Some(token) => self.connect_with(id, token, now_ms),
                    None => self.fail_sub(id, Error::Aborted.into(), now_ms),
                }
            }
        }
    }

    fn connect_with(&mut self, id: u32, token: String, _now_ms: u64) {
        let fetch = self.next_id();
        let timer = self.next_id();
        let Some(i) = self.sub_index(id) else { return };
        let used = self.use_token(&self.subs[i].chat, token);
        let sub = &mut self.subs[i];
        let mut headers = self.config.headers.clone();
        headers.extend(&sub.headers);
        headers.set("Accept", "text/event-stream");
        let mut auth = String::from("Bearer ");
        auth.push_str(used.text());
        headers.set("Authorization", auth);
        headers.set(
            "Timeout-Seconds",
            super::action::u64_string(self.config.stream_timeout_seconds),
        );
        // (Also when it sends neither: they are the transport's, never the app's.)
        match sub.cursor.header_value() {
            Some(cursor) => headers.set("Last-Event-ID", cursor),
            None => headers.remove("Last-Event-ID"),
        }
        if sub.peek_settled {
            headers.set("X-Peek-Settled", "1");
        } else {
            headers.remove("X-Peek-Settled");
        }
        sub.last_token = used;
        sub.conn = Conn::Connecting { fetch, timer };
        let chat_id = sub.chat.clone();
        self.actions.push(Action::Fetch {
            id: fetch,
            path: session_path("", &chat_id, SessionChannel::Out),
            chat_id,
            endpoint: Endpoint::Out,
            headers,
            body: None,
        });
        self.actions.push(Action::SetTimer {
            id: timer,
            ms: CONNECT_TIMEOUT_MS,
        });
    }

    fn sub_by_fetch(&self, fetch: u32) -> Option<usize> {
        self.subs.iter().position(|s| match s.conn {
            Conn::Connecting { fetch: f, .. } | Conn::Open { fetch: f, .. } => f == fetch,
            _ => false,
        })
    }

    /// A `.out` response with status 200 arrived (`settled`: `X-Session-Settled: true`).
    pub fn fetch_open(&mut self, fetch: u32, settled: bool, now_ms: u64) {
        let Some(i) = self.sub_by_fetch(fetch) else {
            self.actions.push(Action::Abort { fetch });
            return;
        };
        if let Conn::Connecting { timer, .. } = self.subs[i].conn {
            self.actions.push(Action::ClearTimer { id: timer });
        }
        let sub = &mut self.subs[i];
        sub.renewing = false;
        sub.conn = Conn::Open {
            fetch,
            decoder: SseDecoder::new(),
            settled,
            alive: false,
            reading: None,
        };
        sub.policy.on_connected(now_ms);
        let first = !sub.connected_once;
        sub.connected_once = true;
        let id = sub.id;
        if first {
            if sub.turn.input_seq() == InputSeq::Pending {
                sub.connect_unreported = true;
            } else {
                self.report_connected(i);
            }
        }
        self.service(id, now_ms);
    }

    /// `stream-connected` for subscription `i`.
    fn report_connected(&mut self, i: usize) {
        // (The cursor it starts from, as the JS transport reports it: not where a send that
        // looks back at the last boundary first reads.)
        let sub = &mut self.subs[i];
        sub.connect_unreported = false;
        let (kind, chat_id, cursor) = (sub.kind, sub.chat.clone(), sub.start.header_value());
        let message_id = self
            .chat_index(&chat_id)
            .and_then(|c| self.chats[c].last_send.as_ref())
            .and_then(|l| l.0.clone());
        let mut event = EventBuilder::new("stream-connected", &chat_id);
        event
            .flag("resumed", kind == Kind::Resume)
            .str_opt("lastEventId", cursor.as_deref())
            .str_opt("messageId", message_id.as_deref());
        self.emit(event, None);
    }

    /// A `.out` request failed before a 200 (`status` and body `text`, `x-ratelimit-reset`).
    pub(super) fn sub_http_error(
        &mut self,
        fetch: u32,
        status: u16,
        text: &str,
        reset: Option<u64>,
        now_ms: u64,
    ) -> bool {
        let Some(i) = self.sub_by_fetch(fetch) else {
            return false;
        };
        let mut error = Error::from_http_status(status, text);
        if let Error::RateLimited { reset_epoch_ms } = &mut error {
            *reset_epoch_ms = reset;
        }
        let id = self.subs[i].id;
        self.drop_conn(i);
        self.after_end(id, ConnectionEnd::Failed(error), false, now_ms);
        true
    }

    /// A `.out` request or body read failed (network).
    pub(super) fn sub_failed(&mut self, fetch: u32, message: &str, now_ms: u64) -> bool {
        let Some(i) = self.sub_by_fetch(fetch) else {
            return false;
        };
        let id = self.subs[i].id;
        let settled = matches!(self.subs[i].conn, Conn::Open { settled: true, .. });
        self.drop_conn(i);
        let error = Error::Network {
            message: message.into(),
        };
        self.after_end(id, ConnectionEnd::Failed(error), settled, now_ms);
        true
    }

    /// The next chunk of a `.out` body.
    pub fn fetch_bytes(&mut self, fetch: u32, bytes: &[u8], now_ms: u64) {
        let Some(i) = self.sub_by_fetch(fetch) else {
            self.actions.push(Action::Abort { fetch });
            return;
        };
        let id = self.subs[i].id;
        let mut conn = core::mem::replace(&mut self.subs[i].conn, Conn::None);
        let Conn::Open {
            decoder,
            settled,
            alive,
            reading,
            ..
        } = &mut conn
        else {
            self.subs[i].conn = conn;
            return;
        };
        if let Some(timer) = reading.take() {
            self.actions.push(Action::ClearTimer { id: timer });
        }
        let (settled, result) = (*settled, self.process(i, decoder, alive, bytes, now_ms));
        match result {
            Err(error) => {
                self.actions.push(Action::Abort { fetch });
                self.after_end(id, ConnectionEnd::Failed(error), settled, now_ms);
            }
            Ok(ended) => {
                let Some(i) = self.sub_index(id) else { return };
                let alive = matches!(conn, Conn::Open { alive: true, .. });
                if ended || self.subs[i].phase != Phase::Open {
                    self.actions.push(Action::Abort { fetch });
                    if ended && self.subs[i].phase == Phase::Open {
                        self.after_end(id, ConnectionEnd::Ended { alive }, settled, now_ms);
                    } else {
                        self.service(id, now_ms);
                    }
                } else {
                    self.subs[i].conn = conn;
                    self.service(id, now_ms);
                }
            }
        }
    }

    /// The `.out` body ended.
    pub fn fetch_end(&mut self, fetch: u32, now_ms: u64) {
        let Some(i) = self.sub_by_fetch(fetch) else {
            return;
        };
        let id = self.subs[i].id;
        let (settled, alive) = match &self.subs[i].conn {
            Conn::Open { settled, alive, .. } => (*settled, *alive),
            _ => (false, false),
        };
        self.drop_conn(i);
        self.after_end(id, ConnectionEnd::Ended { alive }, settled, now_ms);
    }

    /// Timers of subscriptions: connect timeout, stall timeout, backoff.
    pub(super) fn sub_timer(&mut self, timer: u32, now_ms: u64) -> bool {
        let Some(i) = self.subs.iter().position(|s| match s.conn {
            Conn::Connecting { timer: t, .. } | Conn::Backoff { timer: t } => t == timer,
            Conn::Open { reading, .. } => reading == Some(timer),
            _ => false,
        }) else {
            return false;
        };
        let id = self.subs[i].id;
        match self.subs[i].conn {
            Conn::Backoff { .. } => {
                self.subs[i].conn = Conn::None;
                self.connect(id, now_ms);
            }
            Conn::Connecting { fetch, .. } => {
                self.subs[i].conn = Conn::None;
                self.actions.push(Action::Abort { fetch });
                let error = Error::Network {
                    message: if self.subs[i].kind == Kind::HeadStart {
                        "no response from the headStart handler".into()
                    } else {
                        "no response from the stream".into()
                    },
                };
                self.after_end(id, ConnectionEnd::Failed(error), false, now_ms);
            }
            Conn::Open { fetch, settled, .. } => {
                self.subs[i].conn = Conn::None;
                self.actions.push(Action::Abort { fetch });
                self.after_end(id, ConnectionEnd::Stalled, settled, now_ms);
            }
            _ => {}
        }
        true
    }

    /// Feeds bytes through the decoder, the cursor and the turn. `Ok(true)`: the server ended
    /// the connection (`[DONE]` or `event: error`).
    fn process(
        &mut self,
        i: usize,
        decoder: &mut SseDecoder,
        alive: &mut bool,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<bool, Error> {
        if self.subs[i].kind == Kind::HeadStart {
            return self
                .process_head_start(i, decoder, bytes, now_ms)
                .map(|()| false);
        }
        decoder.push(bytes)?;
        let chat = self.chat_index(&self.subs[i].chat);
        let mut outcomes = Vec::new();
        let mut ended = false;
        while let Some(event) = decoder.next_event() {
            {
                let sub = &self.subs[i];
                if sub.phase != Phase::Open || sub.turn.is_finished() {
                    break;
                }
            }
            let tail = match decode_event(&event)? {
                StreamEvent::Batch(batch) => {
                    *alive = true;
                    if batch
                        .tail
                        .is_some_and(|t| self.renumbered(i, chat, t.seq_num))
                    {
                        ended = true;
                        break;
                    }
                    // An empty batch, or one of records already seen (a server replaying the
                    // same ones), shows the server alive, as a ping does, but not the turn.
                    self.subs[i].policy.on_ping();
                    for record in batch.records {
                        let sub = &mut self.subs[i];
                        if sub.turn.is_finished() || sub.phase != Phase::Open {
                            // Records after this send's boundary are the next turn's: the
                            // cursor must not pass them.
                            break;
                        }
                        let seq = record.seq_num;
                        // Dedupe on this subscription's cursor (a resume replays the turn on
                        // purpose); the chat's cursor only moves forward.
                        if !sub.cursor.advance(seq) {
                            continue;
                        }
                        sub.policy.on_record(now_ms);
                        sub.turn.on_record(record, &mut outcomes);
                        if matches!(outcomes.last(), Some(Outcome::Reread(_))) {
                            // (The cursor moves back in `apply`; the connection ends here.)
                            ended = true;
                            break;
                        }
                        let next_turn = sub.standing
                            && sub.turn.is_finished()
                            && matches!(
                                outcomes.last(),
                                Some(Outcome::TurnComplete(c)) if !c.session_closed
                            );
                        if next_turn {
                            // A watcher follows the next turn on the same connection.
                            sub.turn = Turn::new(InputSeq::Unknown, Hold::Off);
                        }
                        // (Not past a record that waits behind a boundary: see `Turn::taken`.)
                        let taken = !sub.turn.awaits_input_seq();
                        if let Some(c) = chat.and_then(|c| self.chats.get_mut(c)).filter(|_| taken)
                        {
                            c.state.cursor.advance(seq);
                        }
                        if next_turn {
                            // The boundary is persisted with the cursor at the boundary, before
                            // the next turn's records move it: a reload replays that turn whole.
                            self.apply(i, core::mem::take(&mut outcomes), now_ms);
                        }
                    }
                    if ended {
                        self.apply(i, core::mem::take(&mut outcomes), now_ms);
                        break;
                    }
                    batch.tail.map(|t| t.seq_num)
                }
                StreamEvent::Ping { tail, .. } => {
                    *alive = true;
                    self.subs[i].policy.on_ping();
                    if tail.is_some_and(|t| self.renumbered(i, chat, t.seq_num)) {
                        ended = true;
                        break;
                    }
                    tail.map(|t| t.seq_num)
                }
                StreamEvent::Error(_) | StreamEvent::Done => {
                    ended = true;
                    break;
                }
                StreamEvent::Other => continue,
            };
            let _ = tail;
            self.apply(i, core::mem::take(&mut outcomes), now_ms);
        }
        Ok(ended)
    }

    /// A tail (the seq the stream writes next) below a cursor: the stream was dropped and made
    /// again, numbered from 0 (an idle chat past the server's retention). Its records are new:
    /// the cursors start over, or every record would pass for one already seen. (Strictly
    /// below: a server whose tail is the last written seq never passes for a new stream.)
    /// (Judged by where this stream reads from, which the server has seen: a cursor seeded from
    /// a transcript may run ahead of what a stream that reads from before it has reached.)
    /// Returns whether it was: the connection is then made again, to read from the new start
    /// (a read asked from past the tail starts at the tail, past records already written).
    fn renumbered(&mut self, i: usize, chat: Option<usize>, tail: u64) -> bool {
        let sub = &mut self.subs[i];
        if sub.cursor.get().is_none_or(|c| tail >= c) {
            return false;
        }
        sub.cursor = Cursor::default();
        sub.start = Cursor::default();
        sub.turn.forget_look_back();
        let id = sub.id;
        self.set_op_start(id, Cursor::default(), true);
        if let Some(c) = chat {
            let state = &mut self.chats[c].state;
            if state.cursor.get().is_some_and(|at| tail < at) {
                // (A turn in flight started in the old numbering too.)
                state.cursor = Cursor::default();
                if let Some(start) = state.turn_start.as_mut() {
                    *start = Cursor::default();
                }
                self.persist(c);
            }
        }
        true
    }

    /// The send stream `id` starts a little before the chat's cursor `floor` to learn what the
    /// agent consumed (`Turn::look_back`); its turn starts at `floor` all the same.
    pub(super) fn look_back(&mut self, id: u32, floor: u64) {
        if let Some(i) = self.sub_index(id) {
            self.subs[i].turn.look_back(floor);
            self.subs[i].start = Cursor::new(Some(floor));
        }
    }

    /// `seq` is an input of `chat_id` no boundary will answer (a stop): it holds none of the
    /// data of the chat's streams (`only`: of that one).
    pub(super) fn unanswered_input(
        &mut self,
        chat_id: &str,
        only: Option<u32>,
        seq: u64,
        now_ms: u64,
    ) {
        while let Some(i) = self.subs.iter().position(|s| {
            s.chat == chat_id && only.is_none_or(|id| id == s.id) && !s.turn.is_unanswered(seq)
        }) {
            let id = self.subs[i].id;
            let mut outcomes = Vec::new();
            self.subs[i].turn.add_unanswered(seq, &mut outcomes);
            self.apply(i, outcomes, now_ms);
            self.service(id, now_ms);
        }
    }

    /// The append of the send this stream serves returned.
    pub(super) fn sub_input_seq(&mut self, id: u32, seq: Option<u64>, now_ms: u64) {
        let Some(i) = self.sub_index(id) else { return };
        self.subs[i].policy.on_turn_start(now_ms);
        if self.subs[i].connect_unreported {
            self.report_connected(i);
        }
        let mut outcomes = Vec::new();
        self.subs[i].turn.set_input_seq(seq, &mut outcomes);
        // The records that waited behind a boundary are taken in (or dropped, past this turn's
        // end): the chat's cursor follows those taken.
        let taken = self.subs[i].turn.taken();
        let chat = self.chat_index(&self.subs[i].chat);
        if let (Some(seq), Some(c)) = (taken, chat) {
            self.chats[c].state.cursor.advance(seq);
        }
        self.apply(i, outcomes, now_ms);
        self.service(id, now_ms);
    }

    /// Performs the turn machine's outcomes.
    fn apply(&mut self, i: usize, outcomes: Vec<Outcome>, now_ms: u64) {
        for outcome in outcomes {
            let Some(sub) = self.subs.get_mut(i) else {
                return;
            };
            let chat_id = sub.chat.clone();
            let id = sub.id;
            let active = self
                .chat_index(&chat_id)
                .is_some_and(|c| self.chats[c].active == Some(id));
            let chat = self.chat_mut(&chat_id);
            match outcome {
                Outcome::Data {
                    body,
                    first,
                    seq_num,
                } => {
                    if first {
                        self.first_chunk_event(chat, &body, Some(seq_num), now_ms);
                    }
                    self.subs[i].ready.push(&body);
                }
                Outcome::TurnComplete(control) => {
                    if let Some(seq) = control.session_in_event_id {
                        self.note_consumed(chat, seq);
                    }
                    // (The latest boundary's shape: an agent upgraded since writes the new one.)
                    self.chats[chat].legacy = control.legacy;
                    self.chats[chat]
                        .state
                        .complete_turn(control.public_access_token.clone());
                    if control.session_closed {
                        self.close_chat(chat, control.closed_reason.clone(), "stream");
                    } else if !self.subs[i].standing {
                        self.owe_steer_turn(chat);
                    }
                    let cursor = self.turn_completed(
                        chat,
                        control.session_in_event_id_raw.as_deref(),
                        now_ms,
                    );
                    self.settle_action(i, &control, cursor.as_deref());
                    if self.subs[i].standing && !control.session_closed {
                        // The next turn is nobody's send as far as this watcher knows.
                        self.chats[chat].last_send = None;
                        self.chats[chat].state.pass_boundary();
                    } else {
                        self.subs[i].phase = Phase::Finished;
                    }
                }
                Outcome::SkippedBoundary {
                    seq_num, consumed, ..
                } => {
                    if let Some(seq) = consumed {
                        self.note_consumed(chat, seq);
                    }
                    // Saved at once: a reload before this turn's own boundary must not replay
                    // the earlier turn's tail into it.
                    if active && self.chats[chat].state.skip_turn_start_to(seq_num) {
                        self.persist(chat);
                    }
                }
                Outcome::UpgradeRequired => {}
                Outcome::Reread(from) => {
                    let sub = &mut self.subs[i];
                    sub.cursor = Cursor::new(from.checked_sub(1));
                    // A connection waiting for a token or backing off reads from the cursor
                    // when it opens; one open (not the one `process` holds, which ends there)
                    // is made again.
                    if matches!(sub.conn, Conn::Open { .. } | Conn::Connecting { .. }) {
                        self.drop_conn(i);
                        self.connect(id, now_ms);
                    }
                }
                Outcome::SessionClosed { reason } => {
                    self.close_chat(chat, reason, "stream");
                    if self.subs[i].phase == Phase::Open {
                        self.subs[i].phase = Phase::Finished;
                    }
                }
                Outcome::PendingVersion => {
                    let mut event = EventBuilder::new("run-pending-version", &chat_id);
                    event.str("source", "upgrade");
                    self.emit(event, None);
                }
            }
        }
    }

    /// A turn of the chat completed (its state already says so): `turn-completed`, then the
    /// state is saved and the cursor shared with the other tabs. Returns the cursor.
    fn turn_completed(
        &mut self,
        chat: usize,
        session_in_event_id: Option<&str>,
        now_ms: u64,
    ) -> Option<String> {
        let cursor = self.chats[chat].state.cursor.header_value();
        let mut event = EventBuilder::new("turn-completed", &self.chats[chat].id);
        event
            .str_opt("lastEventId", cursor.as_deref())
            .str_opt("sessionInEventId", session_in_event_id);
        self.attribution(chat, &mut event, now_ms);
        self.emit(event, None);
        self.persist(chat);
        self.broadcast_cursor(chat, now_ms);
        cursor
    }

    fn attribution(&self, chat: usize, event: &mut EventBuilder, now_ms: u64) {
        if let Some((message_id, at_ms)) = &self.chats[chat].last_send {
            event
                .str_opt("messageId", message_id.as_deref())
                .num("sinceSendMs", now_ms.saturating_sub(*at_ms));
        }
    }

    /// `first-chunk`; `lastEventId` is that record's own id (`seq`; the head-start stream's
    /// chunks have none, and the event none either, as in the JS transport).
    fn first_chunk_event(&mut self, chat: usize, body: &str, seq: Option<u64>, now_ms: u64) {
        let chunk_type = Json::parse(body).ok().and_then(|json| {
            json.get("data")
                .and_then(|d| d.get("type"))
                .and_then(Json::as_str)
                .map(str::to_owned)
        });
        let chat_id = self.chats[chat].id.clone();
        let cursor = seq.map(crate::proto::json::u64_string);
        let mut event = EventBuilder::new("first-chunk", &chat_id);
        event
            .str_opt("chunkType", chunk_type.as_deref())
            .str_opt("lastEventId", cursor.as_deref());
        self.attribution(chat, &mut event, now_ms);
        self.emit(event, None);
    }

    /// `sendAction`'s `onSettled`: once, when the accepted boundary covers the action's seq.
    fn settle_action(&mut self, i: usize, control: &Control, last_event_id: Option<&str>) {
        let sub = &self.subs[i];
        let (Some(op), InputSeq::Known(input_seq), Some(consumed)) = (
            sub.settle_op,
            sub.turn.input_seq(),
            control.session_in_event_id,
        ) else {
            return;
        };
        if consumed < input_seq {
            return;
        }
        let mut info = String::new();
        let mut w = super::action::ObjectWriter::new(&mut info);
        w.num("inputSeq", input_seq);
        if let Some(raw) = &control.session_in_event_id_raw {
            w.str("sessionInEventId", raw);
        }
        if let Some(id) = last_event_id {
            w.str("lastEventId", id);
        }
        w.finish();
        if let Ok(info) = Json::parse(&info) {
            self.actions.push(Action::Settled { op, info });
        }
    }

    /// Decides what follows the end of a connection.
    fn after_end(&mut self, id: u32, end: ConnectionEnd, settled: bool, now_ms: u64) {
        let random = self.random();
        let Some(i) = self.sub_index(id) else { return };
        let sub = &mut self.subs[i];
        sub.conn = Conn::None;
        sub.renewing = end == (ConnectionEnd::Ended { alive: true });
        if settled {
            sub.settled_seen = true;
        }
        if sub.phase != Phase::Open {
            self.service(id, now_ms);
            return;
        }
        if sub.kind == Kind::HeadStart {
            // One response, nothing to reconnect to; but a request sent offline that got no
            // answer reached no one: it is sent again when the network is back.
            let resend = sub.head_start.as_ref().is_some_and(|s| s.request.is_some());
            let unanswered = matches!(
                end,
                ConnectionEnd::Failed(Error::Network { .. }) | ConnectionEnd::Stalled
            );
            if self.offline && resend && unanswered {
                let timer = self.next_id();
                self.subs[i].conn = Conn::Backoff { timer };
                self.actions.push(Action::SetTimer {
                    id: timer,
                    ms: OFFLINE_RECHECK_MS,
                });
                return;
            }
            let sub = &mut self.subs[i];
            if sub.head_start.is_some() {
                let error = match end {
                    ConnectionEnd::Failed(error) => error,
                    _ => Error::Network {
                        message: "no response from the headStart handler".into(),
                    },
                };
                self.head_start_failed(id, error.into(), now_ms);
                return;
            }
            match end {
                ConnectionEnd::Ended { .. } => {
                    // The handler closed the response: the first turn is over, whether or not
                    // the agent took part (a pure-text first step writes no boundary).
                    let chat_id = sub.chat.clone();
                    let chat = self.chat_mut(&chat_id);
                    let c = &mut self.chats[chat];
                    if c.active == Some(id) && c.state.is_streaming == Some(true) {
                        c.state.complete_turn(None);
                        self.persist(chat);
                    }
                    self.subs[i].phase = Phase::Finished;
                    self.service(id, now_ms);
                }
                ConnectionEnd::Stalled => {
                    let error = Error::StreamStalled {
                        idle_ms: Some(TURN_IDLE_LIMIT_MS),
                    };
                    self.fail_sub(id, error.into(), now_ms);
                }
                ConnectionEnd::Failed(error) => self.fail_sub(id, error.into(), now_ms),
            }
            return;
        }
        let not_found = matches!(end, ConnectionEnd::Failed(Error::NotFound { .. }));
        if not_found && sub.kind == Kind::Resume && !sub.standing {
            // The turn it resumes (after a reload) was in a session the server no longer has:
            // there is nothing to resume. (A send recreates the session.)
            return self.finish_quietly(id, now_ms);
        }
        if not_found && !sub.repaired {
            // The session is gone (a stored token outlived it). The append path recreates it
            // with `startSession`; wait for that (or start it) and read the new session from
            // its beginning, rather than failing the stream (the JS transport's W10).
            sub.repaired = true;
            let stale = sub.last_token.clone();
            let chat_id = sub.chat.clone();
            let chat = self.chat_mut(&chat_id);
            if self.newer_token(chat, &stale).is_some() {
                self.reset_cursor(id);
                self.connect(id, now_ms);
                return;
            }
            if self.config.has_start_session {
                self.subs[i].conn = Conn::Token;
                self.recreate_session(chat, Waiter::Sub(id));
                return;
            }
        }
        let rate_limited = matches!(end, ConnectionEnd::Failed(Error::RateLimited { .. }));
        let sub = &mut self.subs[i];
        let turn_open = !sub.turn.is_finished() && !sub.settled_seen;
        match sub
            .policy
            .after_end(end, turn_open, self.offline, now_ms, random)
        {
            Reconnect::After { delay_ms: 0 } => self.connect(id, now_ms),
            Reconnect::After { delay_ms } => {
                let timer = self.next_id();
                self.subs[i].conn = Conn::Backoff { timer };
                self.subs[i].hold_until_ms = if rate_limited {
                    now_ms.saturating_add(delay_ms)
                } else {
                    0
                };
                self.actions.push(Action::SetTimer {
                    id: timer,
                    ms: delay_ms,
                });
            }
            Reconnect::RefreshToken => {
                let stale = self.subs[i].last_token.clone();
                let chat_id = self.subs[i].chat.clone();
                let chat = self.chat_mut(&chat_id);
                self.subs[i].conn = Conn::Token;
                if let Some(token) = self.refresh_token(chat, &stale, Waiter::Sub(id)) {
                    self.connect_with(id, token, now_ms);
                }
            }
            // A settled session has nothing in flight: say so, like the JS transport.
            Reconnect::Finish => self.finish_quietly(id, now_ms),
            Reconnect::Fail(error) => {
                if let Error::SessionClosed { closed_reason } = &error {
                    let chat_id = self.subs[i].chat.clone();
                    let chat = self.chat_mut(&chat_id);
                    self.close_chat(chat, closed_reason.clone(), "stream");
                }
                self.fail_sub(id, error.into(), now_ms);
            }
        }
    }

    /// A subscription reads a (new) session from its beginning, knowing nothing of its inputs.
    fn reset_cursor(&mut self, id: u32) {
        if let Some(i) = self.sub_index(id) {
            let sub = &mut self.subs[i];
            sub.cursor = Cursor::default();
            sub.start = Cursor::default();
            sub.turn.restart_session();
        }
        self.set_op_start(id, Cursor::default(), false);
    }

    /// Ends stream `id` without an error, and the chat's turn with it if the stream drove it.
    fn finish_quietly(&mut self, id: u32, now_ms: u64) {
        let Some(i) = self.sub_index(id) else { return };
        let chat_id = self.subs[i].chat.clone();
        let chat = self.chat_mut(&chat_id);
        let c = &mut self.chats[chat];
        if c.active == Some(id) && c.state.is_streaming == Some(true) {
            c.state.abandon_turn();
            self.persist(chat);
        }
        self.subs[i].phase = Phase::Finished;
        self.service(id, now_ms);
    }

    /// The streams waiting for `chat`'s token call are no longer renewing a live connection.
    pub(super) fn not_renewing(&mut self, chat: usize) {
        let Some(call) = self.chats.get(chat).and_then(|c| c.token_call.as_ref()) else {
            return;
        };
        for sub in self.subs.iter_mut() {
            if call.waits(Waiter::Sub(sub.id)) {
                sub.renewing = false;
            }
        }
    }

    /// The chat's session was replaced (`startSession` after a 404): its subscriptions read the
    /// new one from the start — a cursor from the old session would skip the whole reply. A
    /// resumed one ends: the turn it resumed was in the old session. Sends whose stream is gone
    /// start their turns at the new session's beginning too.
    pub(super) fn session_replaced(&mut self, chat_id: &str, now_ms: u64) {
        self.reset_op_starts(chat_id);
        let ids: Vec<u32> = self
            .subs
            .iter()
            .filter(|s| s.chat == chat_id && s.phase == Phase::Open && s.kind != Kind::HeadStart)
            .map(|s| s.id)
            .collect();
        for id in ids {
            let resumed = self
                .sub_index(id)
                .is_some_and(|i| self.subs[i].kind == Kind::Resume && !self.subs[i].standing);
            if resumed {
                self.finish_quietly(id, now_ms);
                continue;
            }
            self.reset_cursor(id);
            let Some(i) = self.sub_index(id) else {
                continue;
            };
            if matches!(
                self.subs[i].conn,
                Conn::Connecting { .. } | Conn::Open { .. }
            ) {
                self.drop_conn(i);
                self.connect(id, now_ms);
            }
        }
    }

    /// Fails the stream: `stream-error`, and the error reaches the consumer at its pull.
    pub(super) fn fail_sub(&mut self, id: u32, error: ErrorRef, now_ms: u64) {
        let Some(i) = self.sub_index(id) else { return };
        if self.subs[i].phase != Phase::Open {
            return;
        }
        self.subs[i].phase = Phase::Failed;
        self.subs[i].failure = Some(error.clone());
        let chat_id = self.subs[i].chat.clone();
        let chat = self.chat_mut(&chat_id);
        if self.chats[chat].active == Some(id) {
            self.chats[chat].state.abandon_turn();
            self.persist(chat);
        }
        let mut event = EventBuilder::new("stream-error", &chat_id);
        if let ErrorRef::Ours(e) = &error {
            event.num_opt("status", e.status().map(u64::from));
        }
        self.emit(event, Some(error));
        self.service(id, now_ms);
    }

    /// Ends the stream now without an error.
    pub(super) fn close_stream(&mut self, id: u32, now_ms: u64) {
        let Some(i) = self.sub_index(id) else { return };
        if self.subs[i].phase == Phase::Open {
            self.subs[i].phase = Phase::Closed;
            // A token call that waits for the network only for this stream ends with it.
            self.forget_waiter(Waiter::Sub(id));
        }
        self.service(id, now_ms);
    }

    /// Drops the connection: aborts its request and clears its timers.
    fn drop_conn(&mut self, i: usize) {
        let conn = core::mem::replace(&mut self.subs[i].conn, Conn::None);
        match conn {
            Conn::Connecting { fetch, timer } => {
                self.actions.push(Action::Abort { fetch });
                self.actions.push(Action::ClearTimer { id: timer });
            }
            Conn::Open { fetch, reading, .. } => {
                self.actions.push(Action::Abort { fetch });
                if let Some(timer) = reading {
                    self.actions.push(Action::ClearTimer { id: timer });
                }
            }
            Conn::Backoff { timer } => self.actions.push(Action::ClearTimer { id: timer }),
            Conn::None | Conn::Token => {}
        }
    }

    /// Answers a pending pull when it can, asks for more bytes when it must, and tidies up a
    /// stream that is over.
    fn service(&mut self, id: u32, now_ms: u64) {
        let Some(i) = self.sub_index(id) else { return };
        let phase = self.subs[i].phase;
        if phase != Phase::Open && self.subs[i].head_start.is_some() {
            // Closed (aborted, superseded, stopped, disposed) before the response came.
            return self.head_start_failed(id, Error::Aborted.into(), now_ms);
        }
        if phase != Phase::Open {
            self.drop_conn(i);
            let chat_id = self.subs[i].chat.clone();
            if let Some(c) = self.chat_index(&chat_id) {
                if self.chats[c].active == Some(id) {
                    self.chats[c].active = None;
                    // The turn this tab drove is over however it ended: free the chat.
                    self.release_if_idle(&chat_id, now_ms);
                }
            }
        }
        let Some(i) = self.sub_index(id) else { return };
        let sub = &mut self.subs[i];
        // A stream closed here (superseded, stopped, cancelled, disposed) ends now, read or not:
        // one nobody reads (a fire-and-forget `sendAction`) would otherwise stay, with the host's
        // listeners, until the page goes. (A later pull of it is answered with its end.)
        if !sub.pull_pending && phase != Phase::Closed {
            return;
        }
        if sub.ready.count > 0 && phase != Phase::Closed {
            sub.pull_pending = false;
            let (text, ends) = sub.ready.take();
            sub.taken = Some(text);
            sub.taken_ends = ends;
            self.actions.push(Action::Chunks { stream: id });
            return;
        }
        match phase {
            Phase::Open => {
                // A head-start handler sends no pings: only a turn's idle limit applies there.
                let stall_ms = if sub.kind == Kind::HeadStart {
                    TURN_IDLE_LIMIT_MS
                } else {
                    self.config.stall_timeout_ms
                };
                // Records past a boundary that waits for this send's `.in` seq are kept until
                // the append answers: nothing more is read meanwhile, so they stay few.
                let paused = sub.turn.awaits_input_seq();
                if let Conn::Open { fetch, reading, .. } = &mut sub.conn {
                    if reading.is_none() && !paused {
                        let fetch = *fetch;
                        let timer = self.next_id;
                        self.next_id = self.next_id.wrapping_add(1).max(1);
                        *reading = Some(timer);
                        self.actions.push(Action::Read { fetch });
                        self.actions.push(Action::SetTimer {
                            id: timer,
                            ms: stall_ms,
                        });
                    }
                }
            }
            Phase::Finished | Phase::Closed => {
                sub.pull_pending = false;
                self.actions.push(Action::End { stream: id });
                self.subs.swap_remove(i);
            }
            Phase::Failed => {
                sub.pull_pending = false;
                let error = sub.failure.take().unwrap_or(ErrorRef::Ours(Error::Aborted));
                self.actions.push(Action::Fail { stream: id, error });
                self.subs.swap_remove(i);
            }
        }
    }
}

/// Appends `text` as a JSON string (for tests and hosts).
pub fn json_string(text: &str) -> String {
    let mut out = String::new();
    write_json_string(&mut out, text);
    out
}
