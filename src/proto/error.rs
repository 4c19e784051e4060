//! The crate's one error type.
//!
//! Every fallible path in the crate returns [`Error`]. The bindings turn it into a JS `Error` whose
//! `code` is [`Error::code`] (stable, snake_case; apps switch on it) and whose `status` is
//! [`Error::status`]. Messages never carry credentials: the transport never puts request headers
//! into an error, and every message taken from a server body or a JS exception goes through
//! [`redact_secrets`] when it is displayed.

#[allow(unused_imports)]
use crate::prelude::*;
use core::fmt;

use super::json::{push_u64, Json};

mod redact;
pub use redact::redact_secrets;

/// Longest server-provided message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 200;

/// Everything that can go wrong, as data.
///
/// ```
/// use trigger_chat_wasm::proto::Error;
///
/// let body = r#"{"ok":false,"error":"Cannot append to a closed session","code":"session_closed","closedReason":"user-ended"}"#;
/// let err = Error::from_http_status(409, body);
/// assert_eq!(err.code(), "session_closed");
/// assert_eq!(err.status(), Some(409));
/// assert_eq!(err.to_string(), "the chat session is closed: user-ended");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The session is closed (HTTP 409 `code: "session_closed"`, or a `session-closed` control
    /// record). Terminal: do not retry, do not reconnect.
    SessionClosed {
        /// The reason given to `chat.close({ reason })`, when there was one.
        closed_reason: Option<String>,
    },
    /// HTTP 401: the access token is missing, invalid or expired.
    Unauthorized {
        /// The server's `error` text, if any.
        message: Option<String>,
    },
    /// HTTP 403: the token lacks the scope for this session.
    Forbidden {
        /// The server's `error` text, if any.
        message: Option<String>,
    },
    /// HTTP 404: the session does not exist in this environment.
    NotFound {
        /// The server's `error` text, if any.
        message: Option<String>,
    },
    /// HTTP 413, or an `.in/append` body caught by the client-side size check.
    PayloadTooLarge {
        /// Size of the rejected body, when known.
        size_bytes: Option<usize>,
        /// The limit it broke, when known.
        limit_bytes: Option<usize>,
    },
    /// HTTP 429.
    RateLimited {
        /// `x-ratelimit-reset` as a Unix epoch in milliseconds, when the server sent it.
        reset_epoch_ms: Option<u64>,
    },
    /// HTTP 5xx.
    Server {
        /// The HTTP status (500..=599).
        status: u16,
        /// The server's `error` text, if any.
        message: Option<String>,
    },
    /// Any other non-success HTTP status.
    Http {
        /// The HTTP status.
        status: u16,
        /// The server's `error` text, if any.
        message: Option<String>,
    },
    /// The request never got an HTTP response (offline, DNS, CORS, connection reset).
    Network {
        /// What the platform reported.
        message: String,
    },
    /// The server sent data we cannot read: bad SSE, bad JSON, missing fields.
    Protocol {
        /// A short description; never the offending data itself.
        message: String,
    },
    /// Persisted state could not be read or written (storage missing, full, corrupt).
    Storage {
        /// A short description.
        message: String,
    },
    /// The caller aborted the operation.
    Aborted,
    /// Another tab owns this chat; this tab may only watch it.
    ReadOnlyTab,
    /// An option or argument has an unusable value.
    InvalidOption {
        /// The option or field name, as the user spelled it (`"baseURL"`, `"accessToken"`).
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// No record or ping arrived on `.out` for too long.
    StreamStalled {
        /// How long the stream was silent, when known.
        idle_ms: Option<u64>,
    },
    /// A callback the operation needs was not configured (e.g. `startSession`).
    MissingCallback {
        /// The callback's option name.
        name: String,
    },
}

impl Error {
    /// The stable, snake_case code apps switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::SessionClosed { .. } => "session_closed",
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
            Error::NotFound { .. } => "not_found",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::RateLimited { .. } => "rate_limited",
            Error::Server { .. } => "server",
            Error::Http { .. } => "http",
            Error::Network { .. } => "network",
            Error::Protocol { .. } => "protocol",
            Error::Storage { .. } => "storage",
            Error::Aborted => "aborted",
            Error::ReadOnlyTab => "read_only_tab",
            Error::InvalidOption { .. } => "invalid_option",
            Error::StreamStalled { .. } => "stream_stalled",
            Error::MissingCallback { .. } => "missing_callback",
        }
    }

    /// The HTTP status this error stands for, if any. A closed session reports 409 like the JS
    /// transport's `sessionClosedError`, whether it came from an append or from the stream.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::SessionClosed { .. } => Some(409),
            Error::Unauthorized { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::PayloadTooLarge { .. } => Some(413),
            Error::RateLimited { .. } => Some(429),
            Error::Server { status, .. } | Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A [`Error::Protocol`] with a short description.
    pub fn protocol(message: impl Into<String>) -> Error {
        Error::Protocol {
            message: message.into(),
        }
    }

    /// A [`Error::Storage`] with a short description.
    pub fn storage(message: impl Into<String>) -> Error {
        Error::Storage {
            message: message.into(),
        }
    }

    /// Map a non-success HTTP response to an error.
    ///
    /// `body_text` is the response body as text. The Sessions API answers failures with
    /// `{ "ok": false, "error": "<message>", "code"?: "...", "closedReason"?: "..." }`
    /// (client-protocol.mdx, Step 3); `code: "session_closed"` means the session is closed
    /// whatever the status (the docs say "Key on `code`, not the message"). The message is taken
    /// from `error`, or from the raw text when the body is not JSON, with secrets redacted and
    /// cut to ~200 characters.
    pub fn from_http_status(status: u16, body_text: &str) -> Error {
        let parsed = Json::parse(body_text).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|json| json.get(name))
                .and_then(Json::as_str)
        };
        if field("code") == Some("session_closed") {
            return Error::SessionClosed {
                closed_reason: field("closedReason").map(sanitize_message),
            };
        }
        let message = match (&parsed, field("error")) {
            (_, Some(text)) => Some(sanitize_message(text)),
            (None, _) if !body_text.trim().is_empty() => Some(sanitize_message(body_text.trim())),
            _ => None,
        }
        .filter(|text| !text.is_empty());
        match status {
            401 => Error::Unauthorized { message },
            403 => Error::Forbidden { message },
            404 => Error::NotFound { message },
            413 => Error::PayloadTooLarge {
                size_bytes: None,
                limit_bytes: None,
            },
            429 => Error::RateLimited {
                reset_epoch_ms: None,
            },
            500..=599 => Error::Server { status, message },
            _ => Error::Http { status, message },
        }
    }

    /// Whether retrying the same request later can succeed (5xx, 429, network, stalls).
    /// Appends are idempotent on `X-Part-Id`, so this holds for them too.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Server { .. }
                | Error::RateLimited { .. }
                | Error::Network { .. }
                | Error::StreamStalled { .. }
        )
    }
}

impl Error {
    /// The human-readable message (what `Display` writes). Built without `core::fmt`, which
    /// would cost the wasm several kilobytes.
    pub fn message(&self) -> String {
        let mut out = String::new();
        // ": <message>" with secrets redacted, or nothing.
        let suffix = |out: &mut String, message: &Option<String>| {
            if let Some(text) = message {
                out.push_str(": ");
                out.push_str(&redact_secrets(text));
            }
        };
        let status_text = |out: &mut String, prefix: &str, status: u16| {
            out.push_str(prefix);
            push_u64(out, u64::from(status));
            out.push(')');
        };
        match self {
            Error::SessionClosed { closed_reason } => {
                out.push_str("the chat session is closed");
                suffix(&mut out, closed_reason);
            }
            Error::Unauthorized { message } => {
                out.push_str(
                    "unauthorized (HTTP 401): the access token is missing, invalid or expired",
                );
                suffix(&mut out, message);
            }
            Error::Forbidden { message } => {
                out.push_str(
                    "forbidden (HTTP 403): the access token does not grant access to this session",
                );
                suffix(&mut out, message);
            }
            Error::NotFound { message } => {
                out.push_str("not found (HTTP 404): the session does not exist");
                suffix(&mut out, message);
            }
            Error::PayloadTooLarge {
                size_bytes,
                limit_bytes,
            } => match (size_bytes, limit_bytes) {
                (Some(size), Some(limit)) => {
                    out.push_str("payload too large: ");
                    push_u64(&mut out, *size as u64);
                    out.push_str(" bytes exceeds the ");
                    push_u64(&mut out, *limit as u64);
                    out.push_str("-byte limit");
                }
                _ => out.push_str("payload too large (HTTP 413)"),
            },
            Error::RateLimited { reset_epoch_ms } => {
                out.push_str("rate limited (HTTP 429)");
                if let Some(reset) = reset_epoch_ms {
                    out.push_str(": the limit resets at Unix time ");
                    push_u64(&mut out, *reset);
                    out.push_str(" ms");
                }
            }
            Error::Server { status, message } => {
                status_text(&mut out, "server error (HTTP ", *status);
                suffix(&mut out, message);
            }
            Error::Http { status, message } => {
                status_text(&mut out, "request failed (HTTP ", *status);
                suffix(&mut out, message);
            }
            Error::Network { message } => {
                out.push_str("network error: ");
                out.push_str(&redact_secrets(message));
            }
            Error::Protocol { message } => {
                out.push_str("protocol error: ");
                out.push_str(&redact_secrets(message));
            }
            Error::Storage { message } => {
                out.push_str("storage error: ");
                out.push_str(&redact_secrets(message));
            }
            Error::Aborted => out.push_str("the operation was aborted"),
            // The JS transport's words exactly: apps without `code` match on them.
            Error::ReadOnlyTab => out.push_str("This chat is active in another tab"),
            Error::InvalidOption { name, message } => {
                out.push_str("invalid option `");
                out.push_str(name);
                out.push_str("`: ");
                out.push_str(&redact_secrets(message));
            }
            Error::StreamStalled { idle_ms } => {
                out.push_str("stream stalled: nothing received");
                if let Some(ms) = idle_ms {
                    out.push_str(" for ");
                    push_u64(&mut out, *ms);
                    out.push_str(" ms");
                }
            }
            Error::MissingCallback { name } => {
                out.push('`');
                out.push_str(name);
                out.push_str("` is not configured");
            }
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for Error {}

/// Redact, cut to [`MAX_MESSAGE_CHARS`] and trim a server-provided message.
pub(crate) fn sanitize_message(text: &str) -> String {
    let redacted = redact_secrets(text.trim());
    match redacted.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => {
            let mut short = redacted.get(..cut).unwrap_or_default().to_owned();
            short.push('…');
            short
        }
        None => redacted,
    }
}
