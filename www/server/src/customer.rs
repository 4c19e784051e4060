//! The customer's side of a real app — what a Next.js server action would do with the secret key,
//! so that the browser never sees it:
//!
//! - `POST /api/chat/{chatId}/start`  `{taskId?, clientData?}` → `{publicAccessToken, sessionId, runId}`
//!   (the transport's `startSession` callback). Creates or looks up the session with the body
//!   `chat.createStartSessionAction` sends: `basePayload {messages: [], trigger: "preload",
//!   metadata: clientData, chatId}`, `externalId: chatId`.
//! - `POST /api/chat/{chatId}/token` → `{publicAccessToken}` (the `accessToken` callback): a fresh
//!   session-scoped token signed with the secret key.
//! - `GET /api/chat/config` → `{mode, baseURL}` so the demo knows where the transport should go.
//!
//! In emulator mode these call the in-process emulator. With `TRIGGER_SECRET_KEY` set they talk
//! to real Trigger.dev through [`crate::remote`] (REAL MODE, untested here). There is no user
//! authentication: this is a development server.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;
use crate::clock::now_ms;
use crate::error::{parse_json, read_body, ApiError};
use crate::jwt;
use crate::remote::RemoteClient;
use crate::sessions_api::{create_session, MAX_API_BODY_BYTES};

/// Task id when `/start` gets none.
pub const DEFAULT_TASK_ID: &str = "ai-chat";

/// Where the customer endpoints send their Trigger.dev calls.
#[derive(Debug)]
pub enum Backend {
    /// The in-process emulator.
    Emulator,
    /// REAL MODE: Trigger.dev at `TRIGGER_API_URL`.
    Remote(RemoteClient),
}

/// The session-create body `chat.createStartSessionAction` sends for a chat.
pub fn start_request(chat_id: &str, task_id: &str, client_data: Value) -> Value {
    json!({
        "type": "chat.agent",
        "externalId": chat_id,
        "taskIdentifier": task_id,
        "triggerConfig": {
            "basePayload": {
                "messages": [],
                "trigger": "preload",
                "metadata": client_data,
                "chatId": chat_id,
            },
            "tags": [format!("chat:{chat_id}")],
        },
    })
}

pub async fn start(
    State(app): State<Arc<App>>,
    Path(chat_id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, MAX_API_BODY_BYTES).await?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_json(&bytes)?
    };
    let task_id = body
        .get("taskId")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or(DEFAULT_TASK_ID);
    let client_data = body.get("clientData").cloned().unwrap_or(json!({}));
    let request = start_request(&chat_id, task_id, client_data);
    let created = match &app.customer {
        Backend::Emulator => create_session(&app, request)?.body,
        Backend::Remote(remote) => remote.create_session(&request).await?,
    };
    let field = |k: &str| created.get(k).cloned().unwrap_or(Value::Null);
    if !field("publicAccessToken").is_string() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "Session create returned no publicAccessToken",
        ));
    }
    let mut answer = json!({
        "publicAccessToken": field("publicAccessToken"),
        "sessionId": field("id"),
        "runId": field("runId"),
        "isCached": field("isCached"),
    });
    // Like the SDK's `createStartSessionAction`: only when the run waits for its deployment.
    if field("pendingVersion") == Value::Bool(true) {
        answer["pendingVersion"] = Value::Bool(true);
    }
    Ok(Json(answer))
}

pub async fn token(
    State(app): State<Arc<App>>,
    Path(chat_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let token = match &app.customer {
        Backend::Emulator => app.store.mint_session_token(&app.store.chat_key(&chat_id)),
        Backend::Remote(remote) => {
            let claims = remote.jwt_claims().await?;
            jwt::mint_with(
                &remote.secret_key,
                claims,
                jwt::session_scopes(&chat_id),
                app.config.token_ttl_seconds,
                now_ms(),
            )
        }
    };
    Ok(Json(json!({ "publicAccessToken": token })))
}

pub async fn config(State(app): State<Arc<App>>, headers: HeaderMap) -> Json<Value> {
    match &app.customer {
        Backend::Emulator => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map_or_else(|| app.local_addr.to_string(), str::to_string);
            Json(json!({ "mode": "emulator", "baseURL": format!("http://{host}") }))
        }
        Backend::Remote(remote) => Json(json!({ "mode": "trigger", "baseURL": remote.api_url })),
    }
}
