//! One `.out` subscription, pulled by the JS `ReadableStream` it backs.
//!
//! Each `next()` returns the data records that one network read produced, as the JSON text of
//! an array of record bodies, which the JS glue parses once (`JSON.parse`) and enqueues. Nothing
//! is read from the network until the consumer pulls, so a slow consumer slows the socket
//! instead of filling memory (the JS transport reads eagerly, W25).
//!
//! Per read: bytes → `SseDecoder` → `records::decode_event` → cursor dedupe → `Turn` →
//! outcomes (data for the consumer, events, state). Connection ends go to `ReconnectPolicy`.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::JsValue;

use super::append::http_error;
use super::{Chat, Event, Inner, Transport};
use crate::proto::chat::Cursor;
use crate::proto::headers::HeaderList;
use crate::proto::json::Json;
use crate::proto::reconnect::{ConnectionEnd, Reconnect, ReconnectPolicy};
use crate::proto::records::{decode_event, StreamEvent};
use crate::proto::sse::SseDecoder;
use crate::proto::turn::{Hold, InputSeq, Outcome, Turn};
use crate::proto::url::SessionChannel;
use crate::proto::Error;
use crate::web::abort::OnAbort;
use crate::web::globals::{global_property, now, random};
use crate::web::http::{fetch, AbortOnDrop, BodyReader, Endpoint, Request};
use crate::web::lifecycle::{Wake, WakeListeners};
use crate::web::runtime::{race, sleep, Either, Notify};
use crate::web::Fail;
use wasm_bindgen::JsCast;

/// How long to wait for `.out` response headers before counting the attempt as failed.
const CONNECT_TIMEOUT_MS: u64 = 30_000;

/// What the subscription serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The response to this tab's own send (`sendMessages` / `sendAction`).
    Send,
    /// `reconnectToStream` after a reload or remount.
    Resume,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading.
    Open,
    /// The turn is over: deliver what is buffered, then end.
    Finished,
    /// Closed locally (stop, supersede, abort, cancel, dispose): end now.
    Closed,
    /// Failed: the next pull gets the error.
    Failed,
}

/// Options of a new subscription.
pub(crate) struct StreamOptions {
    pub kind: Kind,
    /// Where reading starts (`Last-Event-ID`); the subscription's own cursor from then on.
    pub start: Cursor,
    pub input_seq: InputSeq,
    pub hold: Hold,
    pub peek_settled: bool,
    pub headers: Option<HeaderList>,
    pub on_settled: Option<Function>,
}

struct Connection {
    reader: BodyReader,
    decoder: SseDecoder,
    settled: bool,
    alive: bool,
    ended: bool,
    // Dropped last: aborting the request after the reader is cancelled.
    _abort: Option<AbortOnDrop>,
}

/// Data bodies waiting for the consumer, as the JSON text of an array.
#[derive(Default)]
struct Ready {
    text: String,
    count: usize,
}

impl Ready {
    fn push(&mut self, body: &str) {
        self.text.push(if self.count == 0 { '[' } else { ',' });
        self.text.push_str(body);
        self.count += 1;
    }

    fn take(&mut self) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        self.count = 0;
        let mut text = std::mem::take(&mut self.text);
        text.push(']');
        Some(text)
    }
}

struct Shared {
    transport: Weak<Inner>,
    chat: Rc<Chat>,
    options: StreamOptions,
    cursor: Cell<Cursor>,
    turn: RefCell<Turn>,
    policy: RefCell<ReconnectPolicy>,
    conn: RefCell<Option<Connection>>,
    ready: RefCell<Ready>,
    phase: Cell<Phase>,
    failure: RefCell<Option<Fail>>,
    wake: Notify,
    wake_kind: Cell<Option<Wake>>,
    connected_once: Cell<bool>,
    prefetching: Cell<bool>,
    prefetch_failure: RefCell<Option<Fail>>,
    settled_once: Cell<bool>,
    last_token: RefCell<Option<String>>,
    lifecycle: RefCell<Option<WakeListeners>>,
    on_abort: RefCell<Option<OnAbort>>,
}

/// A subscription; clones share it.
#[derive(Clone)]
pub(crate) struct StreamHandle(Rc<Shared>);

impl StreamHandle {
    /// A subscription for `chat`, registered as the chat's active stream (closing the one it
    /// supersedes). It connects on the first pull — or at once via [`StreamHandle::prefetch`].
    pub(crate) fn open(
        transport: &Transport,
        chat: &Rc<Chat>,
        options: StreamOptions,
    ) -> StreamHandle {
        let turn = Turn::new(options.input_seq, options.hold);
        let handle = StreamHandle(Rc::new(Shared {
            transport: Rc::downgrade(&transport.0),
            chat: chat.clone(),
            cursor: Cell::new(options.start),
            options,
            turn: RefCell::new(turn),
            policy: RefCell::new(ReconnectPolicy::new(now())),
            conn: RefCell::new(None),
            ready: RefCell::new(Ready::default()),
            phase: Cell::new(Phase::Open),
            failure: RefCell::new(None),
            wake: Notify::default(),
            wake_kind: Cell::new(None),
            connected_once: Cell::new(false),
            prefetching: Cell::new(false),
            prefetch_failure: RefCell::new(None),
            settled_once: Cell::new(false),
            last_token: RefCell::new(None),
            lifecycle: RefCell::new(None),
            on_abort: RefCell::new(None),
        }));
        let weak = Rc::downgrade(&handle.0);
        let listeners = WakeListeners::install(Rc::new(move |kind| {
            if let Some(shared) = weak.upgrade() {
                shared.wake_kind.set(Some(kind));
                shared.wake.notify();
            }
        }));
        *handle.0.lifecycle.borrow_mut() = Some(listeners);
        let previous = chat.active.borrow_mut().replace(handle.clone());
        if let Some(previous) = previous {
            previous.close_locally();
        }
        handle
    }

    /// Keeps `guard` (an abort-signal listener) alive as long as the stream.
    pub(crate) fn hold_abort_listener(&self, guard: OnAbort) {
        *self.0.on_abort.borrow_mut() = Some(guard);
    }

    /// A weak reference for callbacks that must not keep the stream alive.
    pub(crate) fn downgrade(&self) -> WeakStream {
        WeakStream(Rc::downgrade(&self.0))
    }

    /// Whether this is the chat's current subscription.
    pub(crate) fn is_active(&self) -> bool {
        self.0
            .chat
            .active
            .borrow()
            .as_ref()
            .is_some_and(|a| Rc::ptr_eq(&a.0, &self.0))
    }

    /// Whether the stream is still reading (not finished, closed or failed).
    pub(crate) fn is_open(&self) -> bool {
        self.0.phase.get() == Phase::Open
    }

    /// The append returned: correlate with `seq`.
    pub(crate) fn set_input_seq(&self, seq: Option<u64>) {
        let mut outcomes = Vec::new();
        self.0.turn.borrow_mut().set_input_seq(seq, &mut outcomes);
        self.apply(outcomes);
    }

    /// Ends the stream now, without an error (stop, supersede, abort, cancel, dispose).
    pub(crate) fn close_locally(&self) {
        if self.0.phase.get() == Phase::Open {
            self.0.phase.set(Phase::Closed);
        }
        self.0.conn.borrow_mut().take();
        self.0.wake.notify();
        self.release();
    }

    /// Starts connecting now, in parallel with the append (the first pull picks it up).
    pub(crate) fn prefetch(&self) {
        if self.0.prefetching.replace(true) {
            return;
        }
        let handle = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            // A failure is handed to the first pull, which decides what it means.
            match handle.connect().await {
                Ok(conn) => {
                    if handle.0.phase.get() == Phase::Open && handle.0.conn.borrow().is_none() {
                        *handle.0.conn.borrow_mut() = Some(conn);
                    }
                }
                Err(fail) => *handle.0.prefetch_failure.borrow_mut() = Some(fail),
            }
            handle.0.prefetching.set(false);
            handle.0.wake.notify();
        });
    }

    /// The next batch for the consumer: the JSON text of an array of record bodies, or `None`
    /// at the end of the stream.
    pub(crate) async fn next(&self) -> Result<Option<String>, Fail> {
        let s = &self.0;
        loop {
            if let Some(batch) = s.ready.borrow_mut().take() {
                return Ok(Some(batch));
            }
            match s.phase.get() {
                Phase::Open => {}
                Phase::Finished | Phase::Closed => {
                    self.release();
                    return Ok(None);
                }
                Phase::Failed => {
                    self.release();
                    let failure = s.failure.borrow_mut().take();
                    return Err(failure.unwrap_or_else(|| Error::Aborted.into()));
                }
            }
            let taken = s.conn.borrow_mut().take();
            let mut conn = match taken {
                Some(conn) => conn,
                None if s.prefetching.get() => {
                    s.wake.notified().await;
                    continue;
                }
                None => match self.connect_or_take_prefetch_failure().await {
                    Ok(conn) => conn,
                    Err(Fail::Error(error)) => {
                        self.after_end(ConnectionEnd::Failed(error), false).await;
                        continue;
                    }
                    Err(thrown) => {
                        self.fail(thrown);
                        continue;
                    }
                },
            };
            if s.phase.get() != Phase::Open {
                continue;
            }
            let stall_ms = self.transport().map_or(0, |t| t.0.config.stall_timeout_ms);
            let read = race(
                race(conn.reader.read(None), sleep(stall_ms)),
                s.wake.notified(),
            )
            .await;
            match read {
                Either::Left(Either::Left(Ok(Some(bytes)))) => {
                    if let Err(error) = self.process(&mut conn, &bytes) {
                        self.after_end(ConnectionEnd::Failed(error), conn.settled)
                            .await;
                        continue;
                    }
                    if conn.ended {
                        let end = ConnectionEnd::Ended { alive: conn.alive };
                        self.after_end(end, conn.settled).await;
                    } else if s.phase.get() == Phase::Open {
                        *s.conn.borrow_mut() = Some(conn);
                    }
                }
                Either::Left(Either::Left(Ok(None))) => {
                    conn.decoder.finish();
                    let end = ConnectionEnd::Ended { alive: conn.alive };
                    self.after_end(end, conn.settled).await;
                }
                Either::Left(Either::Left(Err(fail))) => match fail {
                    Fail::Error(error) => {
                        self.after_end(ConnectionEnd::Failed(error), conn.settled)
                            .await
                    }
                    thrown => self.fail(thrown),
                },
                Either::Left(Either::Right(())) => {
                    self.after_end(ConnectionEnd::Stalled, conn.settled).await;
                }
                Either::Right(()) => {
                    // Closed, superseded, or a lifecycle wake: reconnect unless told to keep going.
                    if s.wake_kind.take() == Some(Wake::RetryNow) && s.phase.get() == Phase::Open {
                        *s.conn.borrow_mut() = Some(conn);
                    }
                }
            }
        }
    }

    async fn connect_or_take_prefetch_failure(&self) -> Result<Connection, Fail> {
        let failure = self.0.prefetch_failure.borrow_mut().take();
        match failure {
            Some(fail) => Err(fail),
            None => self.connect().await,
        }
    }

    fn transport(&self) -> Option<Transport> {
        self.0.transport.upgrade().map(Transport)
    }

    async fn connect(&self) -> Result<Connection, Fail> {
        let s = &self.0;
        let transport = self.transport().ok_or(Error::Aborted)?;
        let token = transport.ensure_token(&s.chat).await?;
        *s.last_token.borrow_mut() = Some(token.clone());
        let config = &transport.0.config;
        let mut headers = config.headers.clone();
        if let Some(extra) = &s.options.headers {
            headers.extend(extra);
        }
        headers.set("Accept", "text/event-stream");
        headers.set("Authorization", format!("Bearer {token}"));
        headers.set("Timeout-Seconds", config.stream_timeout_seconds.to_string());
        let cursor = s.cursor.get().header_value();
        if let Some(cursor) = &cursor {
            headers.set("Last-Event-ID", cursor.as_str());
        }
        if s.options.peek_settled {
            headers.set("X-Peek-Settled", "1");
        }
        let request = Request {
            method: "GET",
            url: transport.url(&s.chat.id, SessionChannel::Out),
            headers,
            body: None,
            endpoint: Endpoint::Out,
            chat_id: &s.chat.id,
        };
        let abort = AbortOnDrop::new();
        let signal = abort.as_ref().map(AbortOnDrop::signal);
        let fetch_override = transport.fetch_override();
        let attempt = race(
            fetch(fetch_override.as_ref(), &request, signal.as_ref()),
            sleep(CONNECT_TIMEOUT_MS),
        );
        let response = match race(attempt, s.wake.notified()).await {
            Either::Left(Either::Left(result)) => result?,
            Either::Left(Either::Right(())) => {
                return Err(Error::Network {
                    message: "no response from the stream".into(),
                }
                .into())
            }
            Either::Right(()) => {
                s.wake_kind.take();
                return Err(Error::Network {
                    message: "reconnecting".into(),
                }
                .into());
            }
        };
        if response.status != 200 {
            let text = response.text().await;
            return Err(http_error(&response, &text).into());
        }
        let settled = response
            .header("X-Session-Settled")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let reader = response
            .body_reader()
            .ok_or_else(|| Error::protocol("the stream response has no body"))?;
        s.policy.borrow_mut().on_connected();
        if !s.connected_once.replace(true) {
            let message_id = s.chat.last_send.borrow().as_ref().and_then(|l| l.0.clone());
            transport.emit(
                Event::new("stream-connected", &s.chat.id)
                    .flag("resumed", s.options.kind == Kind::Resume)
                    .str("lastEventId", cursor.as_deref())
                    .str("messageId", message_id.as_deref()),
            );
        }
        Ok(Connection {
            reader,
            decoder: SseDecoder::new(),
            settled,
            alive: false,
            ended: false,
            _abort: abort,
        })
    }

    /// Feeds one network read through the decoder, the cursor and the turn.
    fn process(&self, conn: &mut Connection, bytes: &[u8]) -> Result<(), Error> {
        let s = &self.0;
        conn.decoder.push(bytes)?;
        let mut outcomes = Vec::new();
        while let Some(event) = conn.decoder.next_event() {
            if s.phase.get() != Phase::Open || s.turn.borrow().is_finished() {
                break;
            }
            match decode_event(&event)? {
                StreamEvent::Batch(batch) => {
                    conn.alive = true;
                    s.policy.borrow_mut().on_record(now());
                    for record in batch.records {
                        if s.turn.borrow().is_finished() {
                            // The records after our boundary are the next turn's: the cursor
                            // must not pass them.
                            break;
                        }
                        // Dedupe on this subscription's cursor (a resume replays the turn on
                        // purpose); the chat's cursor only ever moves forward.
                        let mut cursor = s.cursor.get();
                        if cursor.advance(record.seq_num) {
                            s.cursor.set(cursor);
                            s.chat.state.borrow_mut().cursor.advance(record.seq_num);
                            s.turn.borrow_mut().on_record(record, &mut outcomes);
                        }
                    }
                    self.check_caught_up(batch.tail.map(|t| t.seq_num), &mut outcomes);
                    self.apply(std::mem::take(&mut outcomes));
                }
                StreamEvent::Ping { tail, .. } => {
                    conn.alive = true;
                    s.policy.borrow_mut().on_ping();
                    self.check_caught_up(tail.map(|t| t.seq_num), &mut outcomes);
                    self.apply(std::mem::take(&mut outcomes));
                }
                StreamEvent::Error(_) | StreamEvent::Done => {
                    conn.ended = true;
                    break;
                }
                StreamEvent::Other => {}
            }
        }
        Ok(())
    }

    /// Tells the turn when the subscription has reached the live edge (`tail` is the next seq
    /// to be written). A server that reports no tail counts as caught up after each batch.
    fn check_caught_up(&self, tail: Option<u64>, outcomes: &mut Vec<Outcome>) {
        let next = self.0.cursor.get().get().map_or(0, |c| c + 1);
        if tail.is_none_or(|tail| next >= tail) {
            self.0.turn.borrow_mut().on_caught_up(outcomes);
        }
    }

    /// Performs the outcomes of the turn machine.
    fn apply(&self, outcomes: Vec<Outcome>) {
        if outcomes.is_empty() {
            return;
        }
        let s = &self.0;
        let Some(transport) = self.transport() else {
            return;
        };
        for outcome in outcomes {
            match outcome {
                Outcome::Data { body, first, .. } => {
                    if first {
                        self.emit_first_chunk(&transport, &body);
                    }
                    s.ready.borrow_mut().push(&body);
                }
                Outcome::TurnComplete(control) => {
                    s.chat
                        .state
                        .borrow_mut()
                        .complete_turn(control.public_access_token.clone());
                    if control.session_closed {
                        transport.close_chat(&s.chat, control.closed_reason.clone(), "stream");
                    }
                    let cursor = s.chat.state.borrow().cursor.header_value();
                    let (message_id, since_send_ms) = attribution(&s.chat);
                    transport.emit(
                        Event::new("turn-completed", &s.chat.id)
                            .str("lastEventId", cursor.as_deref())
                            .str(
                                "sessionInEventId",
                                control.session_in_event_id_raw.as_deref(),
                            )
                            .str("messageId", message_id.as_deref())
                            .num("sinceSendMs", since_send_ms),
                    );
                    transport.persist(&s.chat);
                    self.settle_action(&control, cursor.as_deref());
                    s.phase.set(Phase::Finished);
                }
                Outcome::SkippedBoundary { seq_num, .. } => {
                    if self.is_active() {
                        s.chat.state.borrow_mut().skip_turn_start_to(seq_num);
                    }
                }
                Outcome::UpgradeRequired => {}
                Outcome::SessionClosed { reason } => {
                    transport.close_chat(&s.chat, reason, "stream");
                    if s.phase.get() == Phase::Open {
                        s.phase.set(Phase::Finished);
                    }
                }
                Outcome::PendingVersion => transport.emit(
                    Event::new("run-pending-version", &s.chat.id).str("source", Some("upgrade")),
                ),
            }
        }
    }

    fn emit_first_chunk(&self, transport: &Transport, body: &str) {
        let chunk_type = Json::parse(body).ok().and_then(|json| {
            json.get("data")
                .and_then(|d| d.get("type"))
                .and_then(Json::as_str)
                .map(str::to_owned)
        });
        let cursor = self.0.chat.state.borrow().cursor.header_value();
        let (message_id, since_send_ms) = attribution(&self.0.chat);
        transport.emit(
            Event::new("first-chunk", &self.0.chat.id)
                .str("chunkType", chunk_type.as_deref())
                .str("lastEventId", cursor.as_deref())
                .str("messageId", message_id.as_deref())
                .num("sinceSendMs", since_send_ms),
        );
    }

    /// `sendAction`'s `onSettled`: once, when the accepted boundary covers the action's seq.
    fn settle_action(&self, control: &crate::proto::records::Control, last_event_id: Option<&str>) {
        let Some(callback) = self.0.options.on_settled.as_ref() else {
            return;
        };
        let InputSeq::Known(input_seq) = self.0.turn.borrow().input_seq() else {
            return;
        };
        let Some(consumed) = control.session_in_event_id else {
            return;
        };
        if consumed < input_seq {
            return;
        }
        let info = Object::new();
        let _ = Reflect::set(
            &info,
            &"inputSeq".into(),
            &JsValue::from_f64(input_seq as f64),
        );
        if let Some(raw) = &control.session_in_event_id_raw {
            let _ = Reflect::set(&info, &"sessionInEventId".into(), &raw.as_str().into());
        }
        if let Some(id) = last_event_id {
            let _ = Reflect::set(&info, &"lastEventId".into(), &id.into());
        }
        let _ = callback.call1(&JsValue::UNDEFINED, &info);
    }

    /// Decides what follows the end of a connection, waiting if it says so.
    async fn after_end(&self, end: ConnectionEnd, settled: bool) {
        let s = &self.0;
        if settled {
            s.settled_once.set(true);
        }
        if s.phase.get() != Phase::Open {
            return;
        }
        let turn_open = !s.turn.borrow().is_finished() && !s.settled_once.get();
        let decision = s
            .policy
            .borrow_mut()
            .after_end(end, turn_open, now(), random());
        match decision {
            Reconnect::After { delay_ms } => self.wait(delay_ms).await,
            Reconnect::RefreshToken => {
                let Some(transport) = self.transport() else {
                    return;
                };
                let stale = s.last_token.borrow().clone();
                if let Err(fail) = transport.refresh_token(&s.chat, stale.as_deref()).await {
                    self.fail(fail);
                }
            }
            Reconnect::Finish => {
                // A settled session has nothing in flight: say so, like the JS transport.
                if self.is_active() {
                    let changed = {
                        let mut state = s.chat.state.borrow_mut();
                        let streaming = state.is_streaming == Some(true);
                        if streaming {
                            state.abandon_turn();
                        }
                        streaming
                    };
                    if changed {
                        if let Some(transport) = self.transport() {
                            transport.persist(&s.chat);
                        }
                    }
                }
                s.phase.set(Phase::Finished);
            }
            Reconnect::Fail(error) => {
                if let Error::SessionClosed { closed_reason } = &error {
                    if let Some(transport) = self.transport() {
                        transport.close_chat(&s.chat, closed_reason.clone(), "stream");
                    }
                }
                self.fail(error.into());
            }
        }
    }

    /// Waits before reconnecting; a lifecycle wake or a close cuts it short. While the browser
    /// says it is offline, waits for the `online` event instead of burning attempts.
    async fn wait(&self, delay_ms: u64) {
        let offline = global_property("navigator")
            .dyn_ref::<Object>()
            .and_then(|n| Reflect::get(n, &"onLine".into()).ok())
            .is_some_and(|v| v == JsValue::FALSE);
        let delay_ms = if offline { 60_000 } else { delay_ms };
        if delay_ms == 0 {
            return;
        }
        let _ = race(sleep(delay_ms), self.0.wake.notified()).await;
        self.0.wake_kind.take();
    }

    /// Fails the stream: the error reaches the consumer at its next pull.
    fn fail(&self, fail: Fail) {
        let s = &self.0;
        if s.phase.get() != Phase::Open {
            return;
        }
        s.phase.set(Phase::Failed);
        if let Some(transport) = self.transport() {
            if self.is_active() {
                s.chat.state.borrow_mut().abandon_turn();
                transport.persist(&s.chat);
            }
            transport.emit(Event::new("stream-error", &s.chat.id).error(&fail));
        }
        *s.failure.borrow_mut() = Some(fail);
        s.wake.notify();
    }

    /// Unregisters from the chat and drops the connection and listeners.
    fn release(&self) {
        let s = &self.0;
        s.conn.borrow_mut().take();
        s.lifecycle.borrow_mut().take();
        s.on_abort.borrow_mut().take();
        let mut active = s.chat.active.borrow_mut();
        if active.as_ref().is_some_and(|a| Rc::ptr_eq(&a.0, &self.0)) {
            active.take();
        }
    }
}

/// A stream reference that does not keep it alive.
#[derive(Clone)]
pub(crate) struct WeakStream(Weak<Shared>);

impl WeakStream {
    pub(crate) fn upgrade(&self) -> Option<StreamHandle> {
        self.0.upgrade().map(StreamHandle)
    }
}

/// `messageId` and `sinceSendMs` of the chat's last turn-producing send.
fn attribution(chat: &Chat) -> (Option<String>, Option<f64>) {
    match chat.last_send.borrow().as_ref() {
        Some((message_id, at_ms)) => (
            message_id.clone(),
            Some(now().saturating_sub(*at_ms) as f64),
        ),
        None => (None, None),
    }
}
