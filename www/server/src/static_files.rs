//! Serves the built demo (`www/dist`): files as they are, unknown paths fall back to
//! `index.html` (a single-page app). Without a built demo, `/` explains how to build it.

use std::path::Path;

use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;

/// A router that only has a fallback: the static files, or the "not built" page.
pub fn router<S: Clone + Send + Sync + 'static>(dir: Option<&Path>) -> Router<S> {
    match dir {
        Some(dir) => Router::new().fallback_service(
            ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .fallback(ServeFile::new(dir.join("index.html"))),
        ),
        None => Router::new().fallback(not_built),
    }
}

async fn not_built(uri: Uri) -> Response {
    if uri.path() == "/" {
        return Html(
            "<!doctype html><title>chat-devserver</title><h1>chat-devserver</h1>\
             <p>The demo is not built (no <code>www/dist</code>). Build it, or pass \
             <code>--static-dir</code>. The Trigger.dev emulator API is up.</p>",
        )
        .into_response();
    }
    (ApiError::new(
        StatusCode::NOT_FOUND,
        format!("No route for {}", uri.path()),
    ))
    .into_response()
}
