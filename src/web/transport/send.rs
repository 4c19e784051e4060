//! The operations: sends (messages, actions, steering), stop, resume, and session bookkeeping.

use std::rc::Rc;

use js_sys::Function;
use web_sys::AbortSignal;

use super::append::{Append, Source};
use super::stream::{Kind, StreamOptions};
use super::{Chat, Event, StreamHandle, Transport};
use crate::proto::chat::Cursor;
use crate::proto::headers::HeaderList;
use crate::proto::json::Json;
use crate::proto::turn::{Hold, InputSeq};
use crate::proto::wire::{
    check_append_body_size, merge_metadata, slim_message_for_wire, InputChunk, Trigger, WirePayload,
};
use crate::proto::Error;
use crate::web::abort::on_abort;
use crate::web::globals::{now, random_uuid};
use crate::web::Fail;

/// `sendMessages` as the AI SDK calls it, parsed.
pub(crate) struct SendRequest {
    pub chat_id: String,
    pub trigger: Trigger,
    /// The AI SDK's `messageId` (the message to regenerate).
    pub message_id: Option<String>,
    /// `messages.at(-1)` as JSON.
    pub last_message: Option<Json>,
    /// Its `id`.
    pub last_message_id: Option<String>,
    /// `ChatRequestOptions.body`, without `action`.
    pub body: Option<Json>,
    /// `body.action`: the request is an action sent through `useChat`.
    pub action: Option<Json>,
    pub metadata: Option<Json>,
    pub headers: Option<HeaderList>,
    pub signal: Option<AbortSignal>,
}

/// `sendAction(chatId, action, { abortSignal, metadata, onSettled })`, parsed.
pub(crate) struct ActionRequest {
    pub chat_id: String,
    pub action: Json,
    pub metadata: Option<Json>,
    pub headers: Option<HeaderList>,
    pub signal: Option<AbortSignal>,
    pub on_settled: Option<Function>,
}

/// One turn-producing append, ready to go.
struct TurnSend {
    source: Source,
    body: String,
    message_id: Option<String>,
    headers: Option<HeaderList>,
    signal: Option<AbortSignal>,
    on_settled: Option<Function>,
}

impl Transport {
    /// `sendMessages`: appends the message and returns the stream of the turn that answers it.
    pub(crate) async fn send_messages(&self, request: SendRequest) -> Result<StreamHandle, Fail> {
        let chat = self.chat(&request.chat_id);
        refuse_if_closed(&chat)?;
        if let Some(action) = request.action {
            return self
                .send_action(ActionRequest {
                    chat_id: request.chat_id,
                    action,
                    metadata: request.metadata,
                    headers: request.headers,
                    signal: request.signal,
                    on_settled: None,
                })
                .await;
        }
        let message = match (request.trigger, request.last_message) {
            (Trigger::SubmitMessage, None) => {
                return Err(Error::InvalidOption {
                    name: "messages".into(),
                    message: "'submit-message' needs at least one message".into(),
                }
                .into())
            }
            (Trigger::SubmitMessage, Some(message)) => Some(slim_message_for_wire(&message)),
            (_, _) => None,
        };
        let client_data = self.client_data();
        let payload = WirePayload {
            body: request.body,
            message,
            chat_id: request.chat_id.clone(),
            trigger: request.trigger,
            message_id: request.message_id.clone(),
            metadata: merge_metadata(client_data.as_ref(), request.metadata.as_ref()),
            action: None,
        };
        let source = if request.trigger == Trigger::RegenerateMessage {
            Source::RegenerateMessage
        } else {
            Source::SubmitMessage
        };
        self.send_turn(
            &chat,
            TurnSend {
                source,
                body: payload.to_input_chunk().to_json_string(),
                message_id: request.message_id.or(request.last_message_id),
                headers: request.headers,
                signal: request.signal,
                on_settled: None,
            },
        )
        .await
    }

    /// `sendAction`: appends `{ trigger: "action", action }` and returns the stream of the turn
    /// it causes.
    pub(crate) async fn send_action(&self, request: ActionRequest) -> Result<StreamHandle, Fail> {
        let chat = self.chat(&request.chat_id);
        refuse_if_closed(&chat)?;
        let client_data = self.client_data();
        let mut payload = WirePayload::new(&request.chat_id, Trigger::Action);
        payload.metadata = merge_metadata(client_data.as_ref(), request.metadata.as_ref());
        payload.action = Some(request.action);
        self.send_turn(
            &chat,
            TurnSend {
                source: Source::Action,
                body: payload.to_input_chunk().to_json_string(),
                message_id: None,
                headers: request.headers,
                signal: request.signal,
                on_settled: request.on_settled,
            },
        )
        .await
    }

    /// The common path of every turn-producing send. The `.out` subscription opens before the
    /// append (the cursor is known), so the first chunk is not a round trip late (W32).
    async fn send_turn(&self, chat: &Rc<Chat>, send: TurnSend) -> Result<StreamHandle, Fail> {
        let part_id = random_uuid();
        if let Err(error) = check_append_body_size(&send.body) {
            let fail = Fail::from(error);
            self.emit(
                Event::new("message-send-failed", &chat.id)
                    .error(&fail)
                    .str("source", Some(send.source.as_str()))
                    .num("durationMs", Some(0.0))
                    .str("messageId", send.message_id.as_deref())
                    .str("partId", Some(&part_id))
                    .num("bodyBytes", Some(send.body.len() as f64)),
            );
            return Err(fail);
        }
        if let Err(fail) = self.ensure_token(chat).await {
            self.emit(
                Event::new("message-send-failed", &chat.id)
                    .error(&fail)
                    .str("source", Some(send.source.as_str()))
                    .str("messageId", send.message_id.as_deref()),
            );
            return Err(fail);
        }
        let (start, hold) = {
            let state = chat.state.borrow();
            let hold = if state.has_outstanding_turn() {
                Hold::UntilBoundary
            } else if state.cursor.get().is_none() {
                Hold::UntilCaughtUp
            } else {
                Hold::Off
            };
            (state.cursor, hold)
        };
        let stream = StreamHandle::open(
            self,
            chat,
            StreamOptions {
                kind: Kind::Send,
                start,
                input_seq: InputSeq::Pending,
                hold,
                peek_settled: false,
                headers: send.headers.clone(),
                on_settled: send.on_settled,
            },
        );
        stream.prefetch();
        *chat.last_send.borrow_mut() = Some((send.message_id.clone(), now()));
        let result = self
            .append(
                chat,
                Append {
                    source: send.source,
                    body: &send.body,
                    part_id: &part_id,
                    message_id: send.message_id.as_deref(),
                    headers: send.headers.as_ref(),
                    signal: send.signal.as_ref(),
                },
            )
            .await;
        let response = match result {
            Ok(response) => response,
            Err(fail) => {
                stream.close_locally();
                return Err(fail);
            }
        };
        chat.state.borrow_mut().begin_turn(response.seq, start);
        chat.stopped_turn.set(None);
        stream.set_input_seq(response.seq);
        self.persist(chat);
        if let Some(signal) = &send.signal {
            self.stop_on_abort(chat, &stream, signal, true);
        }
        Ok(stream)
    }

    /// What aborting the caller's signal does to a stream: it always detaches locally; for the
    /// tab's own turn (`stop_turn`) it also stops the agent through the same reliable path as
    /// `stopGeneration` (the JS transport fires a stop and forgets it, W13).
    fn stop_on_abort(
        &self,
        chat: &Rc<Chat>,
        stream: &StreamHandle,
        signal: &AbortSignal,
        stop_turn: bool,
    ) {
        let weak_stream = stream.downgrade();
        let transport = Rc::downgrade(&self.0);
        let chat_id = chat.id.clone();
        let abort = move || {
            let weak_stream = weak_stream.clone();
            let transport = transport.clone();
            let chat_id = chat_id.clone();
            // Work happens outside the listener: closing the stream drops this listener.
            wasm_bindgen_futures::spawn_local(async move {
                let Some(stream) = weak_stream.upgrade() else {
                    return;
                };
                if !stream.is_open() {
                    return;
                }
                let transport = transport.upgrade().map(Transport);
                match transport {
                    Some(transport) if stop_turn && stream.is_active() => {
                        let _ = transport.stop_generation(&chat_id).await;
                    }
                    _ => stream.close_locally(),
                }
            });
        };
        if signal.aborted() {
            abort();
        } else {
            stream.hold_abort_listener(on_abort(signal, abort));
        }
    }

    /// `reconnectToStream`: resumes the turn in flight from its start (the AI SDK replaces what
    /// it had, `resumeStreamIsReplay`), or `None` when nothing can be streaming.
    pub(crate) fn reconnect_to_stream(
        &self,
        chat_id: &str,
        signal: Option<&AbortSignal>,
        stop_on_abort: bool,
        headers: Option<HeaderList>,
    ) -> Option<StreamHandle> {
        let chat = self.chat(chat_id);
        let (may_stream, active_input_seq, start) = {
            let state = chat.state.borrow();
            (
                state.may_be_streaming(),
                state.active_input_seq,
                state.resume_cursor(),
            )
        };
        let already = chat.active.borrow().as_ref().is_some_and(|s| s.is_open());
        if !may_stream || already {
            return None;
        }
        let stream = StreamHandle::open(
            self,
            &chat,
            StreamOptions {
                kind: Kind::Resume,
                start,
                input_seq: active_input_seq.map_or(InputSeq::Unknown, InputSeq::Known),
                hold: Hold::Off,
                // Only when no send is known to be in flight may the server close at once on a
                // settled session; with one, its boundary is still to come.
                peek_settled: active_input_seq.is_none(),
                headers,
                on_settled: None,
            },
        );
        if let Some(signal) = signal {
            self.stop_on_abort(&chat, &stream, signal, stop_on_abort);
        }
        Some(stream)
    }

    /// `stopGeneration`: stops the turn in flight. The local stream closes at once; the stop is
    /// appended with its own part id and the full retry path. Returns whether a stop was sent
    /// (or had already been sent for this turn).
    pub(crate) async fn stop_generation(&self, chat_id: &str) -> Result<bool, Fail> {
        let chat = self.chat(chat_id);
        let (has_token, closed, outstanding, streaming, seq) = {
            let state = chat.state.borrow();
            (
                state.token.is_some(),
                state.closed,
                state.has_outstanding_turn(),
                state.is_streaming,
                state.active_input_seq,
            )
        };
        let active = chat.active.borrow_mut().take();
        if let Some(stream) = &active {
            stream.close_locally();
        }
        if !has_token || closed {
            return Ok(false);
        }
        // Nothing in flight that this tab knows of (W30: the JS transport appends anyway).
        if active.is_none() && !outstanding && streaming == Some(false) {
            return Ok(false);
        }
        if chat.stopped_turn.get() == Some(seq) {
            return Ok(true);
        }
        chat.stopped_turn.set(Some(seq));
        chat.state.borrow_mut().stop_turn();
        self.persist(&chat);
        let body = InputChunk::Stop { message: None }.to_json_string();
        let part_id = random_uuid();
        let sent = self
            .append(
                &chat,
                Append {
                    source: Source::Stop,
                    body: &body,
                    part_id: &part_id,
                    message_id: None,
                    headers: None,
                    signal: None,
                },
            )
            .await;
        if sent.is_err() {
            chat.stopped_turn.set(None);
        }
        Ok(sent.is_ok())
    }

    /// `sendPendingMessage`: a steering message during a turn. It does not touch the stream in
    /// flight. `false` when there is no session or the append failed.
    pub(crate) async fn send_pending_message(
        &self,
        chat_id: &str,
        message: Json,
        message_id: Option<String>,
        metadata: Option<Json>,
    ) -> bool {
        let chat = self.chat(chat_id);
        if chat.state.borrow().token.is_none() {
            return false;
        }
        let client_data = self.client_data();
        let mut payload = WirePayload::new(chat_id, Trigger::SubmitMessage);
        payload.message = Some(message);
        payload.metadata = merge_metadata(client_data.as_ref(), metadata.as_ref());
        let body = payload.to_input_chunk().to_json_string();
        if check_append_body_size(&body).is_err() {
            return false;
        }
        let part_id = random_uuid();
        self.append(
            &chat,
            Append {
                source: Source::Steer,
                body: &body,
                part_id: &part_id,
                message_id: message_id.as_deref(),
                headers: None,
                signal: None,
            },
        )
        .await
        .is_ok()
    }

    /// Marks the session closed (once): `session-closed` event, persisted, streams closed.
    pub(crate) fn close_chat(&self, chat: &Rc<Chat>, reason: Option<String>, source: &str) {
        let newly = chat.state.borrow_mut().close(reason.clone());
        if !newly {
            return;
        }
        self.emit(
            Event::new("session-closed", &chat.id)
                .str("reason", reason.as_deref())
                .str("source", Some(source)),
        );
        self.persist(chat);
    }

    /// `start` / `preload`: the session exists afterwards.
    pub(crate) async fn start(&self, chat_id: &str) -> Result<(), Fail> {
        let chat = self.chat(chat_id);
        self.ensure_token(&chat).await.map(|_| ())
    }

    /// `seedResumeCursor`: moves the cursor forward to `last_event_id` (never back).
    pub(crate) fn seed_resume_cursor(&self, chat_id: &str, last_event_id: &str) {
        let Some(seq) = Cursor::parse(Some(last_event_id)).get() else {
            return;
        };
        let chat = self.chat(chat_id);
        let moved = chat.state.borrow_mut().seed_cursor(seq);
        if moved {
            self.persist(&chat);
        }
    }
}

fn refuse_if_closed(chat: &Chat) -> Result<(), Fail> {
    let state = chat.state.borrow();
    if state.closed {
        return Err(Error::SessionClosed {
            closed_reason: state.closed_reason.clone(),
        }
        .into());
    }
    Ok(())
}
