//! REAL TRIGGER.DEV MODE (`TRIGGER_SECRET_KEY` set). The two calls a customer backend makes to
//! Trigger.dev, done the way `chat.createStartSessionAction` in `@trigger.dev/sdk` does them:
//! `POST {api}/api/v1/sessions` with the secret key, and `POST {api}/api/v1/auth/jwt/claims` whose
//! claims are then signed locally with the secret key.
//!
//! Nothing here can be tested against real Trigger.dev from this repository; the Rust tests point
//! it at a second emulator instead (`tests/customer.rs`, `real_mode_talks_to_the_configured_trigger_api`).

use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::config::RemoteTrigger;
use crate::error::ApiError;

/// An HTTP client for one Trigger.dev environment.
#[derive(Debug, Clone)]
pub struct RemoteClient {
    http: reqwest::Client,
    pub api_url: String,
    pub secret_key: String,
}

impl RemoteClient {
    pub fn new(remote: &RemoteTrigger) -> Result<RemoteClient, String> {
        // reqwest is built without a default crypto provider (no aws-lc / OpenSSL); use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("chat-devserver/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(RemoteClient {
            http,
            api_url: remote.api_url.clone(),
            secret_key: remote.secret_key.clone(),
        })
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.api_url))
            .bearer_auth(&self.secret_key)
            .header("x-trigger-source", "sdk");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                format!("Trigger.dev unreachable: {e}"),
            )
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(parsed);
        }
        // Pass the status through (409 session_closed matters to the transport).
        let code = axum::http::StatusCode::from_u16(status.as_u16())
            .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
        let mut error = ApiError::new(code, format!("Trigger.dev answered {status}: {text}"));
        for key in ["code", "closedReason"] {
            if let Some(v) = parsed.get(key) {
                error = error.with(key, v.clone());
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            error = error.with("hint", json!("check TRIGGER_SECRET_KEY"));
        }
        Err(error)
    }

    /// `POST /api/v1/sessions`; returns the response body.
    pub async fn create_session(&self, body: &Value) -> Result<Value, ApiError> {
        self.post("/api/v1/sessions", Some(body)).await
    }

    /// `POST /api/v1/auth/jwt/claims`: the environment's base claims (`sub`, `pub`, …).
    pub async fn jwt_claims(&self) -> Result<Map<String, Value>, ApiError> {
        match self.post("/api/v1/auth/jwt/claims", None).await? {
            Value::Object(claims) => Ok(claims),
            _ => Err(ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "Trigger.dev returned no JWT claims",
            )),
        }
    }
}
