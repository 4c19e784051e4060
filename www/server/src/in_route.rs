//! `POST /realtime/v1/sessions/{id-or-externalId}/in/append` (client-protocol.mdx "Step 3").
//!
//! One `ChatInputChunk` per call → `{ok: true, seq}`. Idempotent on `X-Part-Id` for five minutes
//! (same id → same seq, one record). 409 `session_closed` once closed; 413 over 1 MiB (raw, or
//! as the JSON-wrapped record); 429 with `x-ratelimit-*`. A session whose run has exited gets a
//! continuation run here.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::agent::{self, Boot};
use crate::app::App;
use crate::auth::{authenticate, authorize, Access};
use crate::clock::now_ms;
use crate::error::{parse_json, read_body, ApiError};
use crate::faults::FaultSet;
use crate::ids;
use crate::session::{InRecord, Session, PART_ID_WINDOW_MS};
use crate::store::{RateInfo, RATE_LIMIT};

/// The append body cap, and the cap of the record it becomes.
pub const MAX_APPEND_BYTES: usize = 1 << 20;
/// Longest `X-Part-Id` accepted.
pub const MAX_PART_ID_LEN: usize = 256;

fn rate_headers(error: ApiError, rate: RateInfo) -> ApiError {
    error
        .header("x-ratelimit-limit", rate.limit.to_string())
        .header("x-ratelimit-remaining", rate.remaining.to_string())
        .header("x-ratelimit-reset", rate.reset_ms.to_string())
}

/// An injected failure; a 429 carries rate-limit headers that reset in one second.
fn injected(status: u16, now: u64, fault: &str) -> ApiError {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error = ApiError::new(code, format!("Injected failure ({fault})"));
    if status != 429 {
        return error;
    }
    let rate = RateInfo {
        limit: RATE_LIMIT,
        remaining: 0,
        reset_ms: now + 1000,
        allowed: false,
    };
    rate_headers(error, rate).header("retry-after", "1".into())
}

/// Checks the `ChatInputChunk` union: `{kind:"message", payload:{…}}` or `{kind:"stop"}`.
fn validate(chunk: &Value) -> Result<(), ApiError> {
    match chunk.get("kind").and_then(Value::as_str) {
        Some("stop") => Ok(()),
        Some("message") if chunk.get("payload").is_some_and(Value::is_object) => Ok(()),
        Some("message") => Err(ApiError::bad_request(
            "kind \"message\" needs an object payload",
        )),
        _ => Err(ApiError::bad_request(
            "Body must be a ChatInputChunk: {\"kind\":\"message\",\"payload\":{…}} or {\"kind\":\"stop\"}",
        )),
    }
}

/// Records a `ChatInputChunk` on the session's `.in` (idempotent on `part_id` for five
/// minutes), wakes the agent, and gives a session whose run has exited a continuation run.
/// Returns the input's seq.
pub fn push_input(
    app: &App,
    session: &Arc<Session>,
    chunk: Value,
    part_id: String,
    now: u64,
) -> Result<u64, ApiError> {
    let (seq, continuation) = {
        let mut st = session.state();
        if st.is_closed() {
            return Err(ApiError::session_closed(
                "Cannot append to a closed session",
                st.closed_reason.as_deref(),
            ));
        }
        st.part_ids
            .retain(|_, (_, at)| now.saturating_sub(*at) < PART_ID_WINDOW_MS);
        if let Some((seq, _)) = st.part_ids.get(&part_id) {
            (*seq, false)
        } else {
            let seq = st.in_records.len() as u64;
            st.in_records.push(InRecord {
                seq,
                part_id: part_id.clone(),
                chunk,
                at_ms: now,
                consumed: false,
            });
            st.part_ids.insert(part_id, (seq, now));
            (seq, agent::attach_continuation(&mut st))
        }
    };
    if continuation {
        agent::spawn_run(app.store.clone(), session.clone(), Boot::Idle);
    }
    session.wake();
    Ok(seq)
}

pub async fn append(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let caller = authenticate(&headers, &app.config.secret_key, now)?;
    let session = authorize(&app.store, &caller, &name, Access::Write)?;
    let chat = session.chat_key().to_string();
    if let Some(status) = app.store.with_chat(&chat, |c| {
        FaultSet::take_failure(&mut c.faults.append_failures)
    }) {
        return Err(injected(status, now, "appendFailures"));
    }
    let rate = app.store.rate_check(now);
    if !rate.allowed {
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
        return Err(rate_headers(error, rate));
    }
    let bytes = read_body(body, MAX_APPEND_BYTES).await?;
    let chunk = parse_json(&bytes)?;
    validate(&chunk)?;
    // S2 meters a record as 8 + the body after JSON-wrapping it as a string.
    let wrapped =
        serde_json::to_string(&String::from_utf8_lossy(&bytes)).map_or(usize::MAX, |s| s.len());
    if 8 + wrapped > MAX_APPEND_BYTES {
        return Err(ApiError::payload_too_large(MAX_APPEND_BYTES));
    }
    let part_id = headers
        .get("x-part-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    if part_id.as_ref().is_some_and(|p| p.len() > MAX_PART_ID_LEN) {
        return Err(ApiError::bad_request("X-Part-Id is too long"));
    }
    let part_id = part_id.unwrap_or_else(ids::part_id);
    let seq = push_input(&app, &session, chunk, part_id, now)?;
    if let Some(status) = app.store.with_chat(&chat, |c| {
        FaultSet::take_failure(&mut c.faults.append_lost_answers)
    }) {
        return Err(injected(status, now, "appendLostAnswers"));
    }
    let mut answer = json!({ "ok": true, "seq": seq });
    if app.store.faults(&chat).append_without_seq == Some(true) {
        answer = json!({ "ok": true });
    }
    if app.store.parked(&chat) {
        // On every append while the run waits for its deployment.
        answer["pendingVersion"] = json!(true);
    }
    let mut response = Json(answer).into_response();
    let h = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", rate.limit),
        ("x-ratelimit-remaining", rate.remaining),
        ("x-ratelimit-reset", rate.reset_ms),
    ] {
        h.insert(name, HeaderValue::from(value));
    }
    Ok(response)
}
