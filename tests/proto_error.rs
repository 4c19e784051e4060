//! Error codes, statuses, HTTP mapping and redaction.

use trigger_chat_wasm::proto::error::redact_secrets;
use trigger_chat_wasm::proto::Error;

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjaGF0LTEiLCJzY29wZXMiOltdfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#[test]
fn http_statuses_map_to_stable_codes() {
    let cases = [
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not_found"),
        (409, "http"),
        (413, "payload_too_large"),
        (429, "rate_limited"),
        (500, "server"),
        (503, "server"),
        (400, "http"),
        (418, "http"),
    ];
    for (status, code) in cases {
        let err = Error::from_http_status(status, "");
        assert_eq!(err.code(), code, "status {status}");
        assert_eq!(err.status(), Some(status), "status {status}");
    }
}

#[test]
fn closed_session_body_becomes_session_closed_with_reason() {
    let err = Error::from_http_status(
        409,
        r#"{"ok":false,"error":"Cannot append to a closed session","code":"session_closed","closedReason":"user-ended"}"#,
    );
    assert_eq!(
        err,
        Error::SessionClosed {
            closed_reason: Some("user-ended".into())
        }
    );
    assert_eq!(err.status(), Some(409));
    let err = Error::from_http_status(
        409,
        r#"{"ok":false,"error":"closed","code":"session_closed","closedReason":null}"#,
    );
    assert_eq!(
        err,
        Error::SessionClosed {
            closed_reason: None
        }
    );
    assert_eq!(err.to_string(), "the chat session is closed");
}

#[test]
fn server_error_text_is_kept_short() {
    let err = Error::from_http_status(500, r#"{"ok":false,"error":"S2 unavailable"}"#);
    assert_eq!(err.to_string(), "server error (HTTP 500): S2 unavailable");
    let long = format!(r#"{{"ok":false,"error":"{}"}}"#, "x".repeat(5_000));
    let message = Error::from_http_status(400, &long).to_string();
    assert!(
        message.chars().count() < 260,
        "{} chars",
        message.chars().count()
    );
    assert!(message.ends_with('…'));
    // A non-JSON body (an HTML error page) is used as the message, trimmed and cut.
    let err = Error::from_http_status(502, "  <html>Bad gateway</html>\n");
    assert_eq!(
        err.to_string(),
        "server error (HTTP 502): <html>Bad gateway</html>"
    );
}

#[test]
fn tokens_in_bodies_are_redacted() {
    let body = format!(r#"{{"ok":false,"error":"token {JWT} expired"}}"#);
    let message = Error::from_http_status(401, &body).to_string();
    assert!(!message.contains("eyJ"), "{message}");
    assert!(message.contains("token [redacted] expired"), "{message}");
    let raw = format!("Authorization: Bearer {JWT}");
    let message = Error::from_http_status(400, &raw).to_string();
    assert!(!message.contains(JWT), "{message}");
}

#[test]
fn display_redacts_messages_built_elsewhere() {
    let err = Error::Network {
        message: format!("fetch failed with header Authorization: Bearer {JWT}"),
    };
    assert!(!err.to_string().contains("eyJ"));
    let err = Error::InvalidOption {
        name: "accessToken".into(),
        message: "got tr_dev_abc123XYZ, a secret key".into(),
    };
    assert_eq!(
        err.to_string(),
        "invalid option `accessToken`: got [redacted], a secret key"
    );
}

#[test]
fn redaction_keeps_surrounding_text_and_unicode() {
    assert_eq!(redact_secrets(&format!("é {JWT}, ok")), "é [redacted], ok");
}

#[test]
fn every_variant_has_a_distinct_code_and_a_message() {
    let all = [
        Error::SessionClosed {
            closed_reason: None,
        },
        Error::Unauthorized { message: None },
        Error::Forbidden { message: None },
        Error::NotFound { message: None },
        Error::PayloadTooLarge {
            size_bytes: None,
            limit_bytes: None,
        },
        Error::RateLimited {
            reset_epoch_ms: Some(1),
        },
        Error::Server {
            status: 500,
            message: None,
        },
        Error::Http {
            status: 400,
            message: None,
        },
        Error::Network {
            message: "offline".into(),
        },
        Error::protocol("bad"),
        Error::storage("full"),
        Error::Aborted,
        Error::ReadOnlyTab,
        Error::InvalidOption {
            name: "baseURL".into(),
            message: "empty".into(),
        },
        Error::StreamStalled {
            idle_ms: Some(60_000),
        },
        Error::MissingCallback {
            name: "startSession".into(),
        },
    ];
    let mut codes: Vec<_> = all.iter().map(Error::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    // The JavaScript side lists them too: `isTriggerChatError` and the `TriggerChatErrorCode` type.
    let (js, dts) = (
        include_str!("../pkg-template/index.js"),
        include_str!("../pkg-template/index.d.ts"),
    );
    for code in &codes {
        let quoted = format!("\"{code}\"");
        assert!(js.contains(&quoted), "{code} missing from index.js");
        assert!(
            dts.contains(&format!("| {quoted}")),
            "{code} missing from index.d.ts"
        );
    }
    assert!(all.iter().all(|e| !e.to_string().is_empty()));
    assert_eq!(
        Error::MissingCallback {
            name: "startSession".into()
        }
        .to_string(),
        "`startSession` is not configured"
    );
    assert_eq!(Error::Aborted.status(), None);
}

#[test]
fn transient_errors_are_the_retryable_ones() {
    assert!(Error::from_http_status(503, "").is_transient());
    assert!(Error::from_http_status(429, "").is_transient());
    assert!(!Error::from_http_status(401, "").is_transient());
    assert!(!Error::from_http_status(413, "").is_transient());
    assert!(!Error::SessionClosed {
        closed_reason: None
    }
    .is_transient());
}
