//! Per-chat request log (test-only, `GET /__admin/chats/{chatId}/log`): what the client sent,
//! Authorization included, so tests can check which token went out.

use std::collections::{BTreeMap, VecDeque};

use axum::http::{HeaderMap, Method, Uri};
use serde::Serialize;

/// Entries kept per chat (oldest dropped first).
pub const MAX_ENTRIES_PER_CHAT: usize = 5_000;
/// Bodies are kept up to this many bytes.
pub const MAX_BODY_BYTES: usize = 256 << 10;

/// One logged request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Lower-case names; repeated headers are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as text (lossy UTF-8), `""` when empty.
    pub body: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    /// Unix ms when the request arrived.
    pub at_ms: u64,
    /// The response status (the status line of an SSE stream).
    pub status: u16,
}

impl LoggedRequest {
    pub fn new(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8], at_ms: u64) -> Self {
        let mut map = BTreeMap::<String, String>::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            map.entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let kept = &body[..body.len().min(MAX_BODY_BYTES)];
        LoggedRequest {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_string(), |p| p.to_string()),
            headers: map,
            body: String::from_utf8_lossy(kept).into_owned(),
            body_truncated: kept.len() < body.len(),
            at_ms,
            status: 0,
        }
    }
}

/// Appends to a chat's log, keeping it bounded.
pub fn push(log: &mut VecDeque<LoggedRequest>, entry: LoggedRequest) {
    if log.len() >= MAX_ENTRIES_PER_CHAT {
        log.pop_front();
    }
    log.push_back(entry);
}
