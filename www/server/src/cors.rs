//! CORS on every response — errors, 404s, SSE and preflight included — so an app or a test page on
//! another port can call everything (browsers can then read 401/409/413/429 statuses and the
//! rate-limit headers).

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Request headers always allowed (requested ones are allowed too).
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, Accept, Last-Event-ID, \
    X-Peek-Settled, Timeout-Seconds, X-Part-Id, X-Trigger-Source, X-Trigger-Branch";
/// Response headers a page may read.
pub const EXPOSE_HEADERS: &str = "X-Session-Settled, X-Stream-Version, x-ratelimit-limit, \
    x-ratelimit-remaining, x-ratelimit-reset, Retry-After, x-trigger-jwt, x-trigger-jwt-claims, \
    X-Trigger-Chat-Id, X-Trigger-Chat-Access-Token, X-Trigger-Chat-Pending-Version";
const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

fn add_common(h: &mut HeaderMap, origin: Option<&HeaderValue>) {
    match origin {
        Some(origin) => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        None => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The middleware: answers preflights itself, decorates everything else.
pub async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let requested = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty());
        let allow = match requested {
            Some(r) => format!("{ALLOW_HEADERS}, {r}"),
            None => ALLOW_HEADERS.to_string(),
        };
        let h = response.headers_mut();
        add_common(h, origin.as_ref());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        if let Ok(v) = HeaderValue::from_str(&allow) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        if request
            .headers()
            .contains_key("access-control-request-private-network")
        {
            h.insert(
                "access-control-allow-private-network",
                HeaderValue::from_static("true"),
            );
        }
        return response;
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    add_common(h, origin.as_ref());
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    response
}
