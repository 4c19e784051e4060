//! Record classification rules (client-protocol.mdx "Records on session.out").

use trigger_chat_wasm::proto::records::{
    decode_batch, decode_event, Control, ControlKind, RecordKind, StreamEvent,
};
use trigger_chat_wasm::proto::sse::SseEvent;

fn sse(event: &str, data: &str) -> SseEvent {
    SseEvent {
        event: event.into(),
        data: data.into(),
        id: String::new(),
        retry_ms: None,
    }
}

/// The kind of the single record in `{"records":[<record>]}`.
fn kind_of(record_json: &str) -> RecordKind {
    let batch = decode_batch(&format!(r#"{{"records":[{record_json}]}}"#)).unwrap();
    assert_eq!(batch.records.len(), 1);
    batch.records.into_iter().next().unwrap().kind
}

fn control_of(headers_json: &str) -> Control {
    match kind_of(&format!(
        r#"{{"seq_num":1,"timestamp":2,"body":"","headers":{headers_json}}}"#
    )) {
        RecordKind::Control(control) => control,
        other => panic!("expected control, got {other:?}"),
    }
}

#[test]
fn record_without_headers_is_data_with_the_raw_body() {
    let kind = kind_of(
        r#"{"seq_num":1,"timestamp":2,"body":"{\"data\":{\"type\":\"text-delta\",\"delta\":\"hi\"},\"id\":\"p\"}"}"#,
    );
    assert_eq!(
        kind,
        RecordKind::Data {
            body: r#"{"data":{"type":"text-delta","delta":"hi"},"id":"p"}"#.into()
        }
    );
}

#[test]
fn record_with_unrelated_headers_is_data() {
    let kind = kind_of(
        r#"{"seq_num":1,"timestamp":2,"body":"{\"data\":{}}","headers":[["x-foo","bar"]]}"#,
    );
    assert!(matches!(kind, RecordKind::Data { .. }));
}

#[test]
fn empty_first_header_name_is_a_command_whatever_follows() {
    assert_eq!(
        kind_of(
            r#"{"seq_num":1,"timestamp":2,"body":"opaque","headers":[["","fence"],["trigger-control","turn-complete"]]}"#
        ),
        RecordKind::Command { op: "fence".into() }
    );
}

#[test]
fn empty_header_name_later_in_the_list_is_not_a_command() {
    let kind = kind_of(
        r#"{"seq_num":1,"timestamp":2,"body":"","headers":[["trigger-control","turn-complete"],["","trim"]]}"#,
    );
    assert!(matches!(kind, RecordKind::Control(_)));
}

#[test]
fn a_closed_reason_is_kept_short_and_without_secrets() {
    // It is saved with the chat and repeated in every later send's error.
    let long = "x".repeat(100_000);
    let headers = format!(
        r#"[["trigger-control","turn-complete"],["session-closed","true"],["session-closed-reason","{long} eyJa.eyJb.c"]]"#
    );
    let reason = control_of(&headers).closed_reason.unwrap();
    assert_eq!(
        reason.chars().count(),
        201,
        "200 characters and an ellipsis"
    );
    let headers =
        r#"[["trigger-control","turn-complete"],["session-closed-reason","leaked eyJa.eyJb.c"]]"#;
    assert_eq!(
        control_of(headers).closed_reason.as_deref(),
        Some("leaked [redacted]")
    );
}

#[test]
fn turn_complete_carries_token_cursor_and_closed_flag() {
    let control = control_of(
        r#"[["trigger-control","turn-complete"],["public-access-token","tok-2"],["session-in-event-id","42"],["session-closed","true"],["session-closed-reason","done"]]"#,
    );
    assert_eq!(control.kind, ControlKind::TurnComplete);
    assert_eq!(control.public_access_token.as_deref(), Some("tok-2"));
    assert_eq!(control.session_in_event_id, Some(42));
    assert!(control.session_closed);
    assert_eq!(control.closed_reason.as_deref(), Some("done"));
    assert!(!control.legacy);
}

#[test]
fn a_token_that_cannot_go_in_a_header_is_not_adopted() {
    for bad in ["tok 2", "tok\\n2", "tök", "tok\\u00002", ""] {
        let control = control_of(&format!(
            r#"[["trigger-control","turn-complete"],["public-access-token","{bad}"]]"#
        ));
        assert_eq!(control.public_access_token, None, "{bad:?}");
    }
}

#[test]
fn turn_complete_without_in_event_id_means_accept() {
    let control = control_of(r#"[["trigger-control","turn-complete"]]"#);
    assert_eq!(control.session_in_event_id, None);
    assert_eq!(control.session_in_event_id_raw, None);
    assert_eq!(control.public_access_token, None);
}

#[test]
fn session_in_event_id_must_be_a_plain_decimal() {
    for raw in ["42abc", "-1", " 42", "4.2", "", "99999999999999999999999"] {
        let control = control_of(&format!(
            r#"[["trigger-control","turn-complete"],["session-in-event-id","{raw}"]]"#
        ));
        assert_eq!(control.session_in_event_id, None, "raw {raw:?}");
        assert_eq!(control.session_in_event_id_raw.as_deref(), Some(raw));
    }
    let control =
        control_of(r#"[["trigger-control","turn-complete"],["session-in-event-id","0"]]"#);
    assert_eq!(control.session_in_event_id, Some(0));
}

#[test]
fn session_closed_header_must_be_exactly_true() {
    for value in ["TRUE", "1", "yes", "false"] {
        let control = control_of(&format!(
            r#"[["trigger-control","turn-complete"],["session-closed","{value}"]]"#
        ));
        assert!(!control.session_closed, "value {value:?}");
    }
}

#[test]
fn first_matching_header_wins() {
    let control = control_of(
        r#"[["trigger-control","upgrade-required"],["trigger-control","turn-complete"],["public-access-token","first"],["public-access-token","second"]]"#,
    );
    assert_eq!(control.kind, ControlKind::UpgradeRequired);
    assert_eq!(control.public_access_token.as_deref(), Some("first"));
}

#[test]
fn empty_public_access_token_counts_as_absent() {
    let control = control_of(r#"[["trigger-control","turn-complete"],["public-access-token",""]]"#);
    assert_eq!(control.public_access_token, None);
}

#[test]
fn all_documented_control_subtypes() {
    for (value, kind) in [
        ("turn-complete", ControlKind::TurnComplete),
        ("upgrade-required", ControlKind::UpgradeRequired),
        ("session-closed", ControlKind::SessionClosed),
        ("pending-version", ControlKind::PendingVersion),
        ("handover", ControlKind::Unknown("handover".into())),
    ] {
        let control = control_of(&format!(r#"[["trigger-control","{value}"]]"#));
        assert_eq!(control.kind, kind);
    }
}

#[test]
fn empty_trigger_control_value_falls_back_to_data() {
    let kind = kind_of(
        r#"{"seq_num":1,"timestamp":2,"body":"{\"data\":{\"type\":\"text-delta\"}}","headers":[["trigger-control",""]]}"#,
    );
    assert!(matches!(kind, RecordKind::Data { .. }));
}

#[test]
fn legacy_turn_complete_takes_token_from_the_chunk() {
    let kind = kind_of(
        r#"{"seq_num":1,"timestamp":2,"body":"{\"data\":{\"type\":\"trigger:turn-complete\",\"publicAccessToken\":\"legacy-tok\"},\"id\":\"x\"}"}"#,
    );
    let RecordKind::Control(control) = kind else {
        panic!("expected control");
    };
    assert_eq!(control.kind, ControlKind::TurnComplete);
    assert!(control.legacy);
    assert_eq!(control.public_access_token.as_deref(), Some("legacy-tok"));
}

#[test]
fn legacy_form_is_ignored_when_a_control_header_exists() {
    let control = control_of(r#"[["trigger-control","pending-version"]]"#);
    assert_eq!(control.kind, ControlKind::PendingVersion);
    let kind = kind_of(
        r#"{"seq_num":1,"timestamp":2,"body":"{\"data\":{\"type\":\"trigger:turn-complete\"}}","headers":[["trigger-control","upgrade-required"]]}"#,
    );
    let RecordKind::Control(control) = kind else {
        panic!("expected control");
    };
    assert_eq!(control.kind, ControlKind::UpgradeRequired);
    assert!(!control.legacy);
}

#[test]
fn other_legacy_trigger_chunks_are_skipped() {
    assert_eq!(
        kind_of(
            r#"{"seq_num":1,"timestamp":2,"body":"{\"data\":{\"type\":\"trigger:session-state\"}}"}"#
        ),
        RecordKind::Skip
    );
}

#[test]
fn trigger_text_inside_a_chunk_is_still_data() {
    let kind = kind_of(
        r#"{"seq_num":1,"timestamp":2,"body":"{\"data\":{\"type\":\"text-delta\",\"delta\":\"\\\"trigger:turn-complete\\\"\"}}"}"#,
    );
    assert!(matches!(kind, RecordKind::Data { .. }));
    // A malformed body mentioning "trigger: is passed through for the page to handle.
    let kind = kind_of(r#"{"seq_num":1,"timestamp":2,"body":"{\"trigger:"}"#);
    assert_eq!(
        kind,
        RecordKind::Data {
            body: r#"{"trigger:"#.into()
        }
    );
}

#[test]
fn empty_or_missing_body_without_control_is_skipped() {
    assert_eq!(
        kind_of(r#"{"seq_num":1,"timestamp":2,"body":""}"#),
        RecordKind::Skip
    );
    assert_eq!(kind_of(r#"{"seq_num":1,"timestamp":2}"#), RecordKind::Skip);
    assert_eq!(
        kind_of(r#"{"seq_num":1,"timestamp":2,"body":"  "}"#),
        RecordKind::Skip
    );
}

#[test]
fn missing_or_non_integer_seq_num_fails_the_batch() {
    for record in [
        r#"{"timestamp":2,"body":"x"}"#,
        r#"{"seq_num":"5","timestamp":2,"body":"x"}"#,
        r#"{"seq_num":1.5,"timestamp":2,"body":"x"}"#,
        r#"{"seq_num":-1,"timestamp":2,"body":"x"}"#,
        r#""not an object""#,
    ] {
        let data = format!(r#"{{"records":[{{"seq_num":1,"body":"ok"}},{record}]}}"#);
        let err = decode_batch(&data).unwrap_err();
        assert_eq!(err.code(), "protocol", "record {record}");
    }
}

#[test]
fn malformed_batches_are_protocol_errors() {
    for data in [
        "",
        "{",
        "[]",
        r#"{"records":{}}"#,
        r#"{"tail":{"seq_num":1}}"#,
        "null",
    ] {
        let err = decode_event(&sse("batch", data)).unwrap_err();
        assert_eq!(err.code(), "protocol", "data {data:?}");
    }
}

#[test]
fn missing_timestamp_reads_as_zero_and_bad_tail_is_dropped() {
    let batch =
        decode_batch(r#"{"records":[{"seq_num":3,"body":"x"}],"tail":{"seq_num":"4"}}"#).unwrap();
    assert_eq!(batch.records[0].timestamp, 0);
    assert_eq!(batch.tail, None);
}

#[test]
fn seq_numbers_above_2_pow_53_are_exact() {
    let batch = decode_batch(r#"{"records":[{"seq_num":9007199254740993,"body":"x"}]}"#).unwrap();
    assert_eq!(batch.records[0].seq_num, 9_007_199_254_740_993);
}

#[test]
fn max_seq_covers_every_record_and_empty_batches() {
    let batch = decode_batch(r#"{"records":[{"seq_num":5,"body":"x"},{"seq_num":7,"body":"","headers":[["","trim"]]},{"seq_num":6,"body":"y"}]}"#).unwrap();
    assert_eq!(batch.max_seq(), Some(7));
    assert!(batch.records.iter().all(|r| r.kind.advances_cursor()));
    let empty = decode_batch(r#"{"records":[]}"#).unwrap();
    assert_eq!(empty.max_seq(), None);
}

#[test]
fn event_names_route_as_documented() {
    assert_eq!(
        decode_event(&sse("error", "backend restarting")).unwrap(),
        StreamEvent::Error("backend restarting".into())
    );
    assert_eq!(
        decode_event(&sse("message", "[DONE]")).unwrap(),
        StreamEvent::Done
    );
    assert_eq!(
        decode_event(&sse("batch", "[DONE]")).unwrap(),
        StreamEvent::Done
    );
    assert_eq!(
        decode_event(&sse("message", "{}")).unwrap(),
        StreamEvent::Other
    );
    assert_eq!(
        decode_event(&sse("future", "{}")).unwrap(),
        StreamEvent::Other
    );
}

#[test]
fn pings_are_lenient() {
    assert_eq!(
        decode_event(&sse("ping", r#"{"timestamp":1712150405000}"#)).unwrap(),
        StreamEvent::Ping {
            timestamp: Some(1_712_150_405_000),
            tail: None
        }
    );
    assert_eq!(
        decode_event(&sse("ping", "not json")).unwrap(),
        StreamEvent::Ping {
            timestamp: None,
            tail: None
        }
    );
}
