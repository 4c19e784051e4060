//! `POST /api/chat/head-start` — the customer's `chat.headStart` route handler (fast-starts.mdx
//! "Head Start"), as the browser transport sees it. The transport posts a chat's first turn here
//! while it has no session: `{...body, headStartMessages, chatId, trigger, messageId?, metadata}`.
//!
//! The real handler creates the session, runs the first LLM step in the customer's process and
//! hands the rest of the turn to the agent. This one creates the session the same way `/start`
//! does, gives the last message to the emulated agent as the turn's `.in` input (the real
//! handover also goes through `.in`, so the turn's `.out` boundary names that input), and relays
//! the turn's `.out` records to the browser in the handler's format:
//!
//! - headers `X-Trigger-Chat-Id` and `X-Trigger-Chat-Access-Token` (the session token the
//!   transport hydrates from), `Content-Type: text/event-stream`;
//! - body: `data: <UIMessageChunk JSON>` frames, then `data: {"type":"trigger:turn-complete"}`
//!   and `data: {"type":"trigger:session-state","lastEventId":"<seq of the boundary record>"}`
//!   (the real handler reports the last `.out` record it saw, which is the boundary), then EOF.
//!
//! Emulator mode only: with a real Trigger.dev backend, run `chat.headStart` in your own server.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::app::App;
use crate::clock::now_ms;
use crate::customer::{start_request, Backend, DEFAULT_TASK_ID};
use crate::error::{parse_json, read_body, ApiError};
use crate::ids;
use crate::in_route::push_input;
use crate::records::RecordKind;
use crate::session::Session;
use crate::sessions_api::{create_session, MAX_API_BODY_BYTES};
use crate::sse::event_stream_response;

/// The handler gives up on a turn that writes nothing for this long.
const IDLE_LIMIT: Duration = Duration::from_secs(600);

type Chunk = Result<Bytes, io::Error>;

pub async fn head_start(State(app): State<Arc<App>>, body: Body) -> Result<Response, ApiError> {
    if !matches!(app.customer, Backend::Emulator) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "headStart is emulated only; with real Trigger.dev, serve chat.headStart from your app",
        ));
    }
    let bytes = read_body(body, MAX_API_BODY_BYTES).await?;
    let body = parse_json(&bytes)?;
    let chat_id = body
        .get("chatId")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("chatId is required"))?
        .to_string();
    let message = body
        .get("headStartMessages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .cloned()
        .ok_or_else(|| ApiError::bad_request("headStartMessages must be a non-empty array"))?;
    let metadata = body.get("metadata").cloned().unwrap_or(json!({}));
    let created = create_session(
        &app,
        start_request(&chat_id, DEFAULT_TASK_ID, metadata.clone()),
    )?
    .body;
    let token = created
        .get("publicAccessToken")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let session = app
        .store
        .find(&chat_id)
        .ok_or_else(|| ApiError::not_found("the session just created is gone"))?;
    let from = session.out.last_seq().map_or(0, |s| s + 1);
    let mut payload = json!({
        "message": message,
        "chatId": chat_id,
        "trigger": body.get("trigger").cloned().unwrap_or(json!("submit-message")),
        "metadata": metadata,
    });
    if let Some(id) = body.get("messageId").filter(|v| v.is_string()) {
        payload["messageId"] = id.clone();
    }
    let input = json!({ "kind": "message", "payload": payload });
    let seq = push_input(&app, &session, input, ids::part_id(), now_ms())?;

    let (tx, rx) = mpsc::channel::<Chunk>(16);
    tokio::spawn(relay(session, from, seq, tx));
    let mut response = event_stream_response(rx);
    let h = response.headers_mut();
    h.insert(
        "x-vercel-ai-ui-message-stream",
        HeaderValue::from_static("v1"),
    );
    for (name, value) in [
        ("x-trigger-chat-id", chat_id.as_str()),
        ("x-trigger-chat-access-token", token.as_str()),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            h.insert(name, value);
        }
    }
    if created.get("pendingVersion") == Some(&Value::Bool(true)) {
        // Only when parked; the handler's own first step would still stream.
        h.insert(
            "x-trigger-chat-pending-version",
            HeaderValue::from_static("1"),
        );
    }
    Ok(response)
}

/// One `data:` frame.
fn frame(chunk: &Value) -> Bytes {
    Bytes::from(format!("data: {chunk}\n\n"))
}

/// The UI chunk inside a stored data record (`body` is `{"data": chunk, "id": …}` as a string).
fn chunk_of(record_json: &[u8]) -> Option<Value> {
    let record: Value = serde_json::from_slice(record_json).ok()?;
    let body: Value = serde_json::from_str(record.get("body")?.as_str()?).ok()?;
    body.get("data").cloned()
}

/// The `.in` seq a boundary record says its turn consumed.
fn consumed_by(record_json: &[u8]) -> Option<u64> {
    let record: Value = serde_json::from_slice(record_json).ok()?;
    record
        .get("headers")?
        .as_array()?
        .iter()
        .find(|h| h.get(0).and_then(Value::as_str) == Some("session-in-event-id"))?
        .get(1)?
        .as_str()?
        .parse()
        .ok()
}

/// Relays `.out` records from `cursor` until the boundary of the turn that answers `.in` seq
/// `input` (or a closed session, the client leaving, or [`IDLE_LIMIT`] without progress).
async fn relay(session: Arc<Session>, mut cursor: u64, input: u64, tx: mpsc::Sender<Chunk>) {
    let mut tail_rx = session.out.subscribe();
    let mut deadline = Instant::now() + IDLE_LIMIT;
    loop {
        tail_rx.borrow_and_update();
        let batch = session.out.read(cursor, 500, 256 << 10);
        for record in &batch.records {
            cursor = record.seq + 1;
            deadline = Instant::now() + IDLE_LIMIT;
            // An earlier turn's boundary (the session already had a turn in flight) is not this
            // turn's end.
            let done = record.kind.is_turn_complete()
                && consumed_by(&record.json).is_none_or(|consumed| consumed >= input);
            let frames = match &record.kind {
                RecordKind::Data => chunk_of(&record.json).map(|c| vec![frame(&c)]),
                RecordKind::Control(_) if done => Some(vec![
                    frame(&json!({ "type": "trigger:turn-complete" })),
                    frame(&json!({
                        "type": "trigger:session-state",
                        "lastEventId": record.seq.to_string(),
                    })),
                ]),
                RecordKind::Control(kind) if kind == "session-closed" => return,
                _ => None,
            };
            for bytes in frames.into_iter().flatten() {
                // A client that stops reading holds the task no longer than the idle limit.
                match tokio::time::timeout_at(deadline, tx.send(Ok(bytes))).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            if done {
                return;
            }
        }
        if !batch.records.is_empty() {
            continue;
        }
        tokio::select! {
            _ = tx.closed() => return,
            changed = tail_rx.changed() => if changed.is_err() { return },
            _ = sleep_until(deadline) => return,
        }
    }
}
