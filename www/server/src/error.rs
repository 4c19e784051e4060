//! Every error leaves as JSON `{ "ok": false, "error": "<message>", ...extra }` with a proper status
//! (CORS is added by the outer layer, so browsers can read it).

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// An HTTP error answer (boxed: handlers return it by value through `Result`).
#[derive(Debug)]
pub struct ApiError(Box<ErrorParts>);

#[derive(Debug)]
struct ErrorParts {
    status: StatusCode,
    message: String,
    extra: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(Box::new(ErrorParts {
            status,
            message: message.into(),
            extra: Map::new(),
            headers: Vec::new(),
        }))
    }

    /// The HTTP status of this answer.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body exceeds the {limit}-byte limit"),
        )
    }

    /// The closed-session refusal: 409 with the stable `session_closed` code.
    pub fn session_closed(message: &str, reason: Option<&str>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
            .with("code", json!("session_closed"))
            .with("closedReason", json!(reason))
    }

    /// Adds a field next to `ok` and `error`.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.0.extra.insert(key.to_string(), value);
        self
    }

    /// Adds a response header (names and values come from this crate, never from input).
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value) {
            self.0.headers.push((HeaderName::from_static(name), v));
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let parts = *self.0;
        let mut body = Map::new();
        body.insert("ok".into(), Value::Bool(false));
        body.insert("error".into(), Value::String(parts.message));
        body.extend(parts.extra);
        let mut response = (parts.status, Json(Value::Object(body))).into_response();
        for (name, value) in parts.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Reads a whole request body, answering 413 when it is larger than `limit` bytes.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(_) => Err(ApiError::bad_request("Could not read the request body")),
    }
}

/// Parses a JSON body; malformed input is a 400 with the parser's position.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::bad_request(format!("Malformed JSON body: {err}")))
}
