//! Byte-exact `tests/fixtures/*.sse` streams through `SseDecoder` and `decode_event`, with the
//! exact events and records each must give. The same files feed the re-chunking property test
//! (`proto_props.rs`) and the fuzz test (`proto_fuzz.rs`).

use trigger_chat_wasm::proto::records::{
    decode_event, Batch, Control, ControlKind, Record, RecordKind, StreamEvent, Tail,
};
use trigger_chat_wasm::proto::sse::{SseDecoder, SseEvent};

fn decode_all(bytes: &[u8]) -> (Vec<SseEvent>, SseDecoder) {
    let mut decoder = SseDecoder::new();
    decoder.push(bytes).unwrap();
    decoder.finish();
    let mut events = Vec::new();
    while let Some(event) = decoder.next_event() {
        events.push(event);
    }
    (events, decoder)
}

fn event(event: &str, data: &str, id: &str, retry_ms: Option<u64>) -> SseEvent {
    SseEvent {
        event: event.into(),
        data: data.into(),
        id: id.into(),
        retry_ms,
    }
}

fn stream_events(bytes: &[u8]) -> Vec<StreamEvent> {
    decode_all(bytes)
        .0
        .iter()
        .map(|event| decode_event(event).unwrap())
        .collect()
}

fn batch(event: &StreamEvent) -> &Batch {
    match event {
        StreamEvent::Batch(batch) => batch,
        other => panic!("expected a batch, got {other:?}"),
    }
}

fn control(record: &Record) -> &Control {
    match &record.kind {
        RecordKind::Control(control) => control,
        other => panic!("expected a control record, got {other:?}"),
    }
}

fn data_body(record: &Record) -> &str {
    match &record.kind {
        RecordKind::Data { body } => body,
        other => panic!("expected a data record, got {other:?}"),
    }
}

const DOCS_BATCH: &str = r#"{"records":[{"seq_num":0,"timestamp":1712150400000,"body":"{\"data\":{\"type\":\"text-delta\",\"id\":\"msg_1\",\"delta\":\"pong\"},\"id\":\"abc\"}"}],"tail":{"seq_num":10,"timestamp":1712150400500}}"#;
const DOCS_PING: &str =
    r#"{"timestamp":1712150405000,"tail":{"seq_num":10,"timestamp":1712150400500}}"#;

fn assert_docs_stream(bytes: &[u8]) {
    let (events, decoder) = decode_all(bytes);
    assert_eq!(
        events,
        vec![
            event("batch", DOCS_BATCH, "0,1,106", None),
            // The id buffer persists across events (WHATWG): the ping carries the batch's id.
            event("ping", DOCS_PING, "0,1,106", None),
            event("message", "[DONE]", "0,1,106", None),
        ]
    );
    assert_eq!(decoder.last_event_id(), "0,1,106");

    let decoded = stream_events(bytes);
    let first = batch(&decoded[0]);
    assert_eq!(first.records.len(), 1);
    assert_eq!(first.records[0].seq_num, 0);
    assert_eq!(first.records[0].timestamp, 1_712_150_400_000);
    assert_eq!(
        data_body(&first.records[0]),
        r#"{"data":{"type":"text-delta","id":"msg_1","delta":"pong"},"id":"abc"}"#
    );
    let tail = Tail {
        seq_num: 10,
        timestamp: 1_712_150_400_500,
    };
    assert_eq!(first.tail, Some(tail));
    assert_eq!(
        decoded[1],
        StreamEvent::Ping {
            timestamp: Some(1_712_150_405_000),
            tail: Some(tail)
        }
    );
    assert_eq!(decoded[2], StreamEvent::Done);
}

#[test]
fn docs_example_stream_lf() {
    assert_docs_stream(include_bytes!("fixtures/docs_stream.sse"));
}

#[test]
fn docs_example_stream_crlf_gives_identical_events() {
    assert_docs_stream(include_bytes!("fixtures/docs_stream_crlf.sse"));
}

#[test]
fn docs_example_stream_cr_only_gives_identical_events() {
    assert_docs_stream(include_bytes!("fixtures/docs_stream_cr.sse"));
}

#[test]
fn docs_example_stream_with_bom_gives_identical_events() {
    let bytes = include_bytes!("fixtures/docs_stream_bom.sse");
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
    assert_docs_stream(bytes);
}

#[test]
fn error_event_is_a_plain_text_reason_after_the_batch() {
    let bytes = include_bytes!("fixtures/error_event.sse");
    let decoded = stream_events(bytes);
    assert_eq!(decoded.len(), 2);
    assert_eq!(batch(&decoded[0]).max_seq(), Some(11));
    assert_eq!(
        decoded[1],
        StreamEvent::Error("stream backend restarting".into())
    );
}

#[test]
fn comments_retry_and_odd_fields() {
    let (events, decoder) = decode_all(include_bytes!("fixtures/comments_retry.sse"));
    assert_eq!(
        events,
        vec![
            event("ping", r#"{"timestamp":1}"#, "5", None),
            // `data` without a colon is a data field with an empty value.
            event("message", "", "5", None),
            // Leading space: exactly one is removed; `id` without a colon clears the id.
            event("message", "first\nsecond\n two leading spaces", "", None),
            // An id containing NUL is ignored; `retry: 250` belongs to this block.
            event("message", "after NUL id", "", Some(250)),
        ]
    );
    // `retry: 1000` (space after the colon) was accepted, then 250 replaced it; `retry:abc`
    // was ignored. The unterminated last event was dropped at finish.
    assert_eq!(decoder.retry_ms(), Some(250));
}

#[test]
fn comments_retry_first_block_sets_retry_without_an_event() {
    let bytes = include_bytes!("fixtures/comments_retry.sse");
    let mut decoder = SseDecoder::new();
    let end_of_first_block = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| i + 2)
        .unwrap();
    decoder.push(&bytes[..end_of_first_block]).unwrap();
    assert_eq!(decoder.retry_ms(), Some(1000));
    assert_eq!(decoder.next_event(), None);
}

#[test]
fn full_turn_with_control_and_trim_records() {
    let decoded = stream_events(include_bytes!("fixtures/turn_complete.sse"));
    assert_eq!(decoded.len(), 2);
    let first = batch(&decoded[0]);
    let second = batch(&decoded[1]);
    assert_eq!(
        first.records.iter().map(|r| r.seq_num).collect::<Vec<_>>(),
        [20, 21, 22]
    );
    // An empty headers array is still a data record.
    assert_eq!(
        data_body(&first.records[0]),
        r#"{"data":{"type":"start","messageId":"asst-1"},"id":"p20"}"#
    );
    // Multi-byte UTF-8 survives the SSE and the batch JSON untouched.
    assert_eq!(
        data_body(&first.records[2]),
        r#"{"data":{"type":"text-delta","id":"t1","delta":"héllo 👋 世界"},"id":"p22"}"#
    );
    assert_eq!(first.tail, None);

    assert_eq!(
        data_body(&second.records[1]),
        r#"{"data":{"type":"finish"},"id":"p24"}"#
    );
    let boundary = control(&second.records[2]);
    assert_eq!(
        boundary,
        &Control {
            kind: ControlKind::TurnComplete,
            public_access_token: Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaGF0In0.c2ln".into()),
            session_in_event_id: Some(42),
            session_in_event_id_raw: Some("42".into()),
            session_closed: false,
            closed_reason: None,
            legacy: false,
        }
    );
    assert_eq!(
        second.records[3].kind,
        RecordKind::Command { op: "trim".into() }
    );
    // The trim record is skipped but still moves the cursor to 26.
    assert_eq!(second.max_seq(), Some(26));
    assert!(second.records[3].kind.advances_cursor());
    assert_eq!(second.tail.map(|t| t.seq_num), Some(27));
}

#[test]
fn legacy_trigger_chunks_become_controls_or_are_skipped() {
    let decoded = stream_events(include_bytes!("fixtures/legacy_control.sse"));
    let records = &batch(&decoded[0]).records;
    assert_eq!(
        data_body(&records[0]),
        r#"{"data":{"type":"text-delta","id":"t1","delta":"old agent"},"id":"p30"}"#
    );
    let turn_complete = control(&records[1]);
    assert_eq!(turn_complete.kind, ControlKind::TurnComplete);
    assert!(turn_complete.legacy);
    assert_eq!(
        turn_complete.public_access_token.as_deref(),
        Some("eyJhbGciOiJIUzI1NiJ9.eyJsZWdhY3kiOjF9.c2ln")
    );
    assert_eq!(turn_complete.session_in_event_id, None);
    let upgrade = control(&records[2]);
    assert_eq!(upgrade.kind, ControlKind::UpgradeRequired);
    assert!(upgrade.legacy);
    assert_eq!(upgrade.public_access_token, None);
    assert_eq!(records[3].kind, RecordKind::Skip);
    // `"trigger:` inside a text delta is text, not a control.
    assert!(data_body(&records[4]).contains(r#"say \"trigger:turn-complete\""#));
}

#[test]
fn session_closed_on_turn_complete_and_as_its_own_record() {
    let decoded = stream_events(include_bytes!("fixtures/session_closed.sse"));
    let records = &batch(&decoded[0]).records;
    let boundary = control(&records[0]);
    assert_eq!(boundary.kind, ControlKind::TurnComplete);
    assert!(boundary.session_closed);
    assert_eq!(boundary.closed_reason.as_deref(), Some("user-ended"));
    assert_eq!(boundary.session_in_event_id, Some(7));
    let closed = control(&records[1]);
    assert_eq!(closed.kind, ControlKind::SessionClosed);
    assert_eq!(closed.closed_reason.as_deref(), Some("user-ended"));
    // The record form has no `session-closed: true` header; its kind says it all.
    assert!(!closed.session_closed);
}

#[test]
fn pending_version_upgrade_and_unknown_controls() {
    let decoded = stream_events(include_bytes!("fixtures/pending_version.sse"));
    let records = &batch(&decoded[0]).records;
    assert_eq!(control(&records[0]).kind, ControlKind::PendingVersion);
    assert_eq!(control(&records[1]).kind, ControlKind::UpgradeRequired);
    // A non-decimal session-in-event-id is kept raw but reads as absent (accept the boundary).
    let boundary = control(&records[2]);
    assert_eq!(boundary.session_in_event_id, None);
    assert_eq!(boundary.session_in_event_id_raw.as_deref(), Some("0,1"));
    assert_eq!(
        control(&records[3]).kind,
        ControlKind::Unknown("future-thing".into())
    );
}

#[test]
fn every_fixture_gives_the_same_events_when_fed_one_byte_at_a_time() {
    for (name, bytes) in FIXTURES {
        let (whole, _) = decode_all(bytes);
        let mut decoder = SseDecoder::new();
        for byte in bytes.iter() {
            decoder.push(std::slice::from_ref(byte)).unwrap();
        }
        decoder.finish();
        let mut split = Vec::new();
        while let Some(event) = decoder.next_event() {
            split.push(event);
        }
        assert_eq!(split, whole, "fixture {name}");
        assert!(!whole.is_empty(), "fixture {name} decodes to nothing");
    }
}

const FIXTURES: [(&str, &[u8]); 10] = [
    ("docs_stream", include_bytes!("fixtures/docs_stream.sse")),
    (
        "docs_stream_crlf",
        include_bytes!("fixtures/docs_stream_crlf.sse"),
    ),
    (
        "docs_stream_cr",
        include_bytes!("fixtures/docs_stream_cr.sse"),
    ),
    (
        "docs_stream_bom",
        include_bytes!("fixtures/docs_stream_bom.sse"),
    ),
    ("error_event", include_bytes!("fixtures/error_event.sse")),
    (
        "comments_retry",
        include_bytes!("fixtures/comments_retry.sse"),
    ),
    (
        "turn_complete",
        include_bytes!("fixtures/turn_complete.sse"),
    ),
    (
        "legacy_control",
        include_bytes!("fixtures/legacy_control.sse"),
    ),
    (
        "session_closed",
        include_bytes!("fixtures/session_closed.sse"),
    ),
    (
        "pending_version",
        include_bytes!("fixtures/pending_version.sse"),
    ),
];
