//! TEST-ONLY routes under `/__admin/` (on by default in emulator mode, off with `--no-admin`).
//! `{chatId}` is the chat id (externalId) or the `session_…` id. No authentication: never expose
//! this server beyond localhost.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::app::App;
use crate::error::{read_body, ApiError};
use crate::faults::FaultSet;
use crate::session::Session;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/__admin/reset", post(reset))
        .route(
            "/__admin/chats/{chat_id}/faults",
            post(set_faults).delete(clear_faults).get(get_faults),
        )
        .route(
            "/__admin/chats/{chat_id}/log",
            get(get_log).delete(clear_log),
        )
        .route("/__admin/chats/{chat_id}/state", get(state))
        .route("/__admin/chats/{chat_id}/upgrade", post(upgrade))
        .route("/__admin/chats/{chat_id}/end-run", post(end_run))
        .route("/__admin/chats/{chat_id}/renumber-out", post(renumber_out))
}

/// The session of `chat_id`, or a 404.
fn session_of(app: &App, chat_id: &str) -> Result<Arc<Session>, ApiError> {
    app.store
        .find(chat_id)
        .ok_or_else(|| ApiError::not_found(format!("No session for {chat_id}")))
}

/// The chat's `.out` stream is made again, numbered from 0 (see `OutLog::renumber`).
async fn renumber_out(
    State(app): State<Arc<App>>,
    Path(chat_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = session_of(&app, &chat_id)?;
    session.out.renumber();
    // The agent's next trim has no earlier boundary to go back to in the new numbering.
    session.state().last_turn_complete_seq = None;
    Ok(Json(json!({ "ok": true })))
}

async fn reset(State(app): State<Arc<App>>) -> Json<Value> {
    app.store.reset();
    Json(json!({ "ok": true }))
}

async fn set_faults(
    State(app): State<Arc<App>>,
    Path(chat_id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, 64 << 10).await?;
    let patch: FaultSet = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("Bad fault set: {e}")))?;
    patch.validate().map_err(ApiError::bad_request)?;
    let chat = app.store.chat_key(&chat_id);
    let merged = app.store.with_chat(&chat, |c| {
        c.faults.merge(patch);
        c.faults.clone()
    });
    // A run parked for its deployment looks again (`pendingVersion: false` lands it).
    if let Some(session) = app.store.find(&chat_id) {
        session.wake();
    }
    Ok(Json(json!(merged)))
}

async fn clear_faults(State(app): State<Arc<App>>, Path(chat_id): Path<String>) -> Json<Value> {
    let chat = app.store.chat_key(&chat_id);
    app.store
        .with_chat(&chat, |c| c.faults = FaultSet::default());
    if let Some(session) = app.store.find(&chat_id) {
        session.wake();
    }
    Json(json!({}))
}

async fn get_faults(State(app): State<Arc<App>>, Path(chat_id): Path<String>) -> Json<Value> {
    Json(json!(app.store.faults(&app.store.chat_key(&chat_id))))
}

async fn get_log(State(app): State<Arc<App>>, Path(chat_id): Path<String>) -> Json<Value> {
    let chat = app.store.chat_key(&chat_id);
    Json(app.store.with_chat(&chat, |c| json!(c.log)))
}

async fn clear_log(State(app): State<Arc<App>>, Path(chat_id): Path<String>) -> Json<Value> {
    let chat = app.store.chat_key(&chat_id);
    app.store.with_chat(&chat, |c| c.log.clear());
    Json(json!({ "ok": true }))
}

async fn state(State(app): State<Arc<App>>, Path(chat_id): Path<String>) -> Json<Value> {
    let Some(session) = app.store.find(&chat_id) else {
        return Json(json!({
            "exists": false, "closed": false, "closedReason": null, "lastSeq": null,
            "turns": 0, "runs": 0, "currentTurnActive": false, "openOutConnections": 0,
            "inRecords": [],
        }));
    };
    let st = session.state();
    let in_records: Vec<Value> = st
        .in_records
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "partId": r.part_id,
                "kind": r.chunk.get("kind"),
                "body": r.chunk,
                "atMs": r.at_ms,
                "consumed": r.consumed,
            })
        })
        .collect();
    Json(json!({
        "exists": true,
        "sessionId": session.id,
        "chatId": session.chat_key(),
        "closed": st.is_closed(),
        "closedReason": st.closed_reason,
        "lastSeq": session.out.last_seq(),
        "tail": session.out.tail().seq_num,
        "turns": st.turns_completed,
        "runs": st.runs_started,
        "currentRunId": st.current_run_id,
        "runActive": st.run.is_some(),
        "currentTurnActive": st.turn_active,
        "upgradePending": st.upgrade_pending,
        "openOutConnections": session.open_out_connections.load(Ordering::SeqCst),
        "inRecords": in_records,
    }))
}

/// Body (optional): `{"pendingVersion": true}` — the new run waits for its deployment.
async fn upgrade(
    State(app): State<Arc<App>>,
    Path(chat_id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let session = session_of(&app, &chat_id)?;
    let bytes = read_body(body, 1 << 10).await?;
    let parks = if bytes.is_empty() {
        false
    } else {
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("Bad upgrade body: {e}")))?;
        body.get("pendingVersion") == Some(&Value::Bool(true))
    };
    let mut st = session.state();
    st.upgrade_pending = true;
    st.upgrade_parks = parks;
    Ok(Json(json!({ "ok": true })))
}

async fn end_run(
    State(app): State<Arc<App>>,
    Path(chat_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = session_of(&app, &chat_id)?;
    let had_run = {
        let mut st = session.state();
        match st.run.as_mut() {
            Some(run) => {
                run.end_requested = true;
                true
            }
            None => false,
        }
    };
    session.wake();
    Ok(Json(json!({ "ok": true, "hadRun": had_run })))
}
