//! `POST /api/v1/sessions`, `GET /api/v1/sessions/{id}`, `POST /api/v1/sessions/{id}/close` and
//! `POST /api/v1/auth/jwt/claims` (client-protocol.mdx "Step 1", "Closing the conversation"; the
//! claims route is what the SDK's token minting asks before signing locally).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;
use crate::auth::{authenticate, authorize, require_secret_key, Access};
use crate::clock::now_ms;
use crate::error::{parse_json, read_body, ApiError};
use crate::jwt;
use crate::store::{CreateError, CreateOutcome, CreateSpec};

/// Body cap of the JSON API routes.
pub const MAX_API_BODY_BYTES: usize = 1 << 20;
/// Longest close reason.
pub const MAX_CLOSE_REASON: usize = 256;

/// A created or cached session, as the create route answers it.
pub struct Created {
    pub status: StatusCode,
    pub body: Value,
    pub run_id: String,
}

fn spec_from(body: Value) -> Result<CreateSpec, ApiError> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::bad_request("Body must be a JSON object"));
    };
    let string = |v: Option<&Value>, name: &str| -> Result<Option<String>, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
        }
    };
    let session_type = string(body.get("type"), "type")?
        .ok_or_else(|| ApiError::bad_request("type is required (use \"chat.agent\")"))?;
    let task_identifier = string(body.get("taskIdentifier"), "taskIdentifier")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("taskIdentifier is required"))?;
    let external_id = string(body.get("externalId"), "externalId")?;
    if let Some(ext) = &external_id {
        if ext.is_empty() || ext.starts_with("session_") {
            return Err(ApiError::bad_request(
                "externalId must be non-empty and cannot start with session_",
            ));
        }
    }
    let trigger_config = body.remove("triggerConfig").unwrap_or(Value::Null);
    let Some(base) = trigger_config.get("basePayload").filter(|b| b.is_object()) else {
        return Err(ApiError::bad_request(
            "triggerConfig.basePayload is required",
        ));
    };
    match base.get("trigger").and_then(Value::as_str) {
        None | Some("preload" | "submit-message") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "basePayload.trigger {other:?} is not valid for the first run (preload or submit-message)"
            )))
        }
    }
    let tags = body.remove("tags").unwrap_or(json!([]));
    let tags_ok = tags
        .as_array()
        .is_some_and(|t| t.len() <= 10 && t.iter().all(Value::is_string));
    if !tags_ok {
        return Err(ApiError::bad_request("tags must be up to 10 strings"));
    }
    let expires_at = string(body.get("expiresAt"), "expiresAt")?.map_or(Value::Null, Value::String);
    Ok(CreateSpec {
        session_type,
        external_id,
        task_identifier,
        trigger_config,
        tags,
        metadata: body.remove("metadata").unwrap_or(Value::Null),
        expires_at,
    })
}

/// Creates or returns the session described by `body` (already authorized as the environment).
pub fn create_session(app: &App, body: Value) -> Result<Created, ApiError> {
    let spec = spec_from(body)?;
    let (session, cached) = match app.store.create_or_get(spec, now_ms()) {
        Ok(CreateOutcome::Created(s)) => (s, false),
        Ok(CreateOutcome::Cached(s)) => (s, true),
        Err(CreateError::Closed { reason }) => {
            return Err(ApiError::session_closed(
                "Session is closed; use a new externalId",
                reason.as_deref(),
            ))
        }
        Err(CreateError::OtherTask { task_identifier }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("externalId belongs to a session of task {task_identifier:?}"),
            )
            .with("code", json!("external_id_conflict")))
        }
    };
    let token = app.store.mint_session_token(session.chat_key());
    let st = session.state();
    let mut row = session.row_json(&st);
    row["runId"] = json!(st.current_run_id);
    row["publicAccessToken"] = json!(token);
    row["isCached"] = json!(cached);
    if app.store.parked(session.chat_key()) {
        // Optional on the real server too: absent reads as `false`.
        row["pendingVersion"] = json!(true);
    }
    Ok(Created {
        status: if cached {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        body: row,
        run_id: st.current_run_id.clone(),
    })
}

pub async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_secret_key(&headers, &app.config.secret_key, now_ms())?;
    let bytes = read_body(body, MAX_API_BODY_BYTES).await?;
    let created = create_session(&app, parse_json(&bytes)?)?;
    // Real Trigger adds the run-trigger machinery's run-scoped token; clients must ignore it.
    let run_token = app.store.mint_run_token(&created.run_id);
    let claims = json!({
        "sub": jwt::EMULATOR_ENV_ID,
        "scopes": [format!("read:runs:{}", created.run_id), format!("write:inputStreams:{}", created.run_id)],
    });
    let mut response = (created.status, Json(created.body)).into_response();
    let h = response.headers_mut();
    if let Ok(v) = run_token.parse() {
        h.insert("x-trigger-jwt", v);
    }
    if let Ok(v) = claims.to_string().parse() {
        h.insert("x-trigger-jwt-claims", v);
    }
    Ok(response)
}

pub async fn get_one(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&headers, &app.config.secret_key, now_ms())?;
    let session = authorize(&app.store, &caller, &name, Access::Read)?;
    let st = session.state();
    Ok(Json(session.row_json(&st)))
}

pub async fn close(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&headers, &app.config.secret_key, now_ms())?;
    let session = authorize(&app.store, &caller, &name, Access::Admin)?;
    let bytes = read_body(body, MAX_API_BODY_BYTES).await?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_json(&bytes)?
    };
    let reason = match body.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r.chars().count() <= MAX_CLOSE_REASON => Some(r.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "reason must be a string of at most 256 characters",
            ))
        }
    };
    session.close(reason, now_ms());
    let st = session.state();
    Ok(Json(session.row_json(&st)))
}

pub async fn jwt_claims(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_secret_key(&headers, &app.config.secret_key, now_ms())?;
    Ok(Json(json!({ "sub": jwt::EMULATOR_ENV_ID, "pub": true })))
}
