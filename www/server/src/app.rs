//! Shared state and the route table. Layers, outermost first: CORS → request log + latency fault
//! (chat routes only) → handlers; anything else falls through to the static demo.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::Value;

use crate::config::Config;
use crate::customer::{self, Backend};
use crate::error::{read_body, ApiError};
use crate::remote::RemoteClient;
use crate::reqlog::LoggedRequest;
use crate::store::Store;
use crate::{admin, clock, cors, head_start, in_route, out_route, sessions_api, static_files};

/// Everything handlers share.
#[derive(Debug)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub customer: Backend,
    pub local_addr: SocketAddr,
}

impl App {
    pub fn new(config: Config, local_addr: SocketAddr) -> std::io::Result<Arc<App>> {
        let customer = match &config.remote {
            Some(remote) => {
                Backend::Remote(RemoteClient::new(remote).map_err(std::io::Error::other)?)
            }
            None => Backend::Emulator,
        };
        let config = Arc::new(config);
        Ok(Arc::new(App {
            store: Store::new(config.clone()),
            config,
            customer,
            local_addr,
        }))
    }
}

/// The complete router.
pub fn router(app: Arc<App>) -> Router {
    let chat_routes = Router::new()
        .route("/api/v1/sessions", post(sessions_api::create))
        .route("/api/v1/sessions/{id}", get(sessions_api::get_one))
        .route("/api/v1/sessions/{id}/close", post(sessions_api::close))
        .route("/realtime/v1/sessions/{id}/out", get(out_route::out))
        .route(
            "/realtime/v1/sessions/{id}/in/append",
            post(in_route::append),
        )
        .route("/api/chat/{chat_id}/start", post(customer::start))
        .route("/api/chat/{chat_id}/token", post(customer::token))
        .layer(middleware::from_fn_with_state(app.clone(), log_requests));
    let mut router = Router::new()
        .merge(chat_routes)
        .route("/api/v1/auth/jwt/claims", post(sessions_api::jwt_claims))
        .route("/api/chat/config", get(customer::config))
        .route("/api/chat/head-start", post(head_start::head_start))
        .route("/api/{*rest}", any(no_route))
        .route("/realtime/{*rest}", any(no_route))
        .route("/__admin/{*rest}", any(no_route));
    if app.config.admin {
        router = router.merge(admin::routes());
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .merge(static_files::router(app.config.static_dir.as_deref()))
        .layer(middleware::from_fn(cors::cors))
        .with_state(app)
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!("No route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Decodes `%XX` escapes of a path segment (invalid escapes stay as they are).
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The chat a request touches, from its path (or, for session create, its body's externalId).
fn chat_of(app: &App, path: &str, body: &[u8]) -> Option<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let name = match segments.as_slice() {
        ["realtime", "v1", "sessions", id, ..] | ["api", "v1", "sessions", id, ..] => *id,
        ["api", "chat", chat_id, _] => return Some(percent_decode(chat_id)),
        ["api", "v1", "sessions"] => {
            let body: Value = serde_json::from_slice(body).ok()?;
            return body
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        _ => return None,
    };
    Some(app.store.chat_key(&percent_decode(name)))
}

/// Logs every request that touches a chat (method, path, headers, body, status) and applies the
/// chat's `latencyMs` fault before handling it.
async fn log_requests(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let at_ms = clock::now_ms();
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body, sessions_api::MAX_API_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let response = error.into_response();
            if let Some(chat) = chat_of(&app, parts.uri.path(), &[]) {
                let mut entry =
                    LoggedRequest::new(&parts.method, &parts.uri, &parts.headers, b"", at_ms);
                entry.status = response.status().as_u16();
                entry.body_truncated = true;
                app.store.log_request(&chat, entry);
            }
            return response;
        }
    };
    let Some(chat) = chat_of(&app, parts.uri.path(), &bytes) else {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    let mut entry = LoggedRequest::new(&parts.method, &parts.uri, &parts.headers, &bytes, at_ms);
    if let Some(ms) = app.store.faults(&chat).latency_ms.filter(|ms| *ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    entry.status = response.status().as_u16();
    app.store.log_request(&chat, entry);
    response
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_escapes_and_keeps_bad_ones() {
        assert_eq!(percent_decode("c%2F1"), "c/1");
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
