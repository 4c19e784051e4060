//! Persisted session state: the JS `ChatSessionPersistedState` shape and our storage record.

use trigger_chat_wasm::proto::json::Json;
use trigger_chat_wasm::proto::session::{
    storage_key, PendingSend, PersistedSession, DEFAULT_STORAGE_NAMESPACE,
};

fn full() -> PersistedSession {
    PersistedSession {
        public_access_token: "eyJhbGciOiJIUzI1NiJ9.eyJzIjoxfQ.sig".into(),
        last_event_id: Some("41".into()),
        active_input_seq: Some(7),
        is_streaming: Some(true),
        closed: true,
        closed_reason: Some("user-ended".into()),
        consumed_input_seq: None,
        pending_send: None,
    }
}

#[test]
fn js_shape_has_camel_case_fields_in_to_persisted_order() {
    assert_eq!(
        full().to_js_shape_json().to_json_string(),
        r#"{"publicAccessToken":"eyJhbGciOiJIUzI1NiJ9.eyJzIjoxfQ.sig","lastEventId":"41","activeInputSeq":7,"isStreaming":true,"closed":true,"closedReason":"user-ended"}"#
    );
}

#[test]
fn js_shape_omits_unset_fields_and_closed_false() {
    assert_eq!(
        PersistedSession::new("tok")
            .to_js_shape_json()
            .to_json_string(),
        r#"{"publicAccessToken":"tok"}"#
    );
}

#[test]
fn js_shape_round_trips() {
    let session = full();
    assert_eq!(
        PersistedSession::from_json(&session.to_js_shape_json()).unwrap(),
        session
    );
    let minimal = PersistedSession::new("tok");
    assert_eq!(
        PersistedSession::from_json(&minimal.to_js_shape_json()).unwrap(),
        minimal
    );
}

#[test]
fn from_json_ignores_unknown_and_wrongly_typed_fields() {
    let value = Json::parse(
        r#"{"publicAccessToken":"tok","lastEventId":true,"activeInputSeq":-3,"isStreaming":"yes","closed":"true","closedReason":5,"runId":"run_1"}"#,
    )
    .unwrap();
    assert_eq!(
        PersistedSession::from_json(&value).unwrap(),
        PersistedSession::new("tok")
    );
}

#[test]
fn from_json_accepts_numeric_last_event_id_and_string_input_seq() {
    let value = Json::parse(r#"{"publicAccessToken":"tok","lastEventId":12,"activeInputSeq":"3"}"#)
        .unwrap();
    let session = PersistedSession::from_json(&value).unwrap();
    assert_eq!(session.last_event_id.as_deref(), Some("12"));
    assert_eq!(session.active_input_seq, Some(3));
}

#[test]
fn from_json_without_a_usable_token_is_a_storage_error() {
    for text in [
        r#"{}"#,
        r#"{"publicAccessToken":""}"#,
        r#"{"publicAccessToken":1}"#,
        "[]",
        "null",
    ] {
        let err = PersistedSession::from_json(&Json::parse(text).unwrap()).unwrap_err();
        assert_eq!(err.code(), "storage", "input {text}");
    }
}

#[test]
fn storage_record_round_trips_for_the_same_chat() {
    let raw = full().encode_for_storage("chat-1");
    assert!(raw.starts_with(r#"{"v":1,"chatId":"chat-1","session":{"publicAccessToken":"#));
    assert_eq!(
        PersistedSession::decode_from_storage(&raw, "chat-1").unwrap(),
        full()
    );
}

#[test]
fn storage_record_for_another_chat_version_or_garbage_is_rejected() {
    let raw = full().encode_for_storage("chat-1");
    let cases = [
        (raw.as_str(), "chat-2"),
        (
            r#"{"v":2,"chatId":"chat-1","session":{"publicAccessToken":"t"}}"#,
            "chat-1",
        ),
        (
            r#"{"chatId":"chat-1","session":{"publicAccessToken":"t"}}"#,
            "chat-1",
        ),
        (r#"{"v":1,"chatId":"chat-1"}"#, "chat-1"),
        (r#"{"v":1,"chatId":"chat-1","session":{}}"#, "chat-1"),
        ("", "chat-1"),
        ("{\"v\":1,", "chat-1"),
        ("\u{0}\u{ffff}garbage", "chat-1"),
    ];
    for (raw, chat_id) in cases {
        let err = PersistedSession::decode_from_storage(raw, chat_id).unwrap_err();
        assert_eq!(err.code(), "storage", "record {raw:?}");
    }
}

#[test]
fn storage_error_messages_never_contain_the_token() {
    let raw =
        r#"{"v":1,"chatId":"chat-1","session":{"publicAccessToken":"eyJhbGciOi.eyJzdWIi.sig","#;
    let err = PersistedSession::decode_from_storage(raw, "chat-1").unwrap_err();
    assert!(!err.to_string().contains("eyJ"));
}

#[test]
fn storage_keys_are_namespaced_versioned_and_encoded() {
    assert_eq!(
        storage_key(DEFAULT_STORAGE_NAMESPACE, "chat-1"),
        "trigger-chat-wasm:v1:chat-1"
    );
    assert_eq!(storage_key("app", "a:b/c d"), "app:v1:a%3Ab%2Fc%20d");
    assert_ne!(storage_key("app", "a:b"), storage_key("app:a", "b"));
}

#[test]
fn a_pending_send_round_trips_and_an_unusable_one_reads_as_none() {
    let mut session = PersistedSession::new("tok");
    session.pending_send = Some(PendingSend {
        part_id: "p-1".into(),
        body: r#"{"kind":"message","payload":{"message":{"id":"u1"}}}"#.into(),
        source: "submit-message".into(),
        message_id: None,
        created_ms: 1_700_000_000_000,
        reachable_since_ms: Some(1_700_000_000_500),
        turn_start: Some(41),
        consumed: Some(7),
    });
    let json = session.to_js_shape_json();
    assert_eq!(
        json.to_json_string(),
        r#"{"publicAccessToken":"tok","pendingSend":{"partId":"p-1","body":"{\"kind\":\"message\",\"payload\":{\"message\":{\"id\":\"u1\"}}}","source":"submit-message","createdAt":1700000000000,"reachableSince":1700000000500,"turnStart":41,"consumed":7}}"#
    );
    assert_eq!(PersistedSession::from_json(&json).unwrap(), session);
    for bad in [
        r#"{"partId":"p","body":"not json","source":"submit-message","createdAt":1}"#,
        r#"{"partId":"","body":"{}","source":"submit-message","createdAt":1}"#,
        r#"{"partId":"p","body":"{}","source":"stop","createdAt":1}"#,
        r#"{"partId":"p","body":"{}","source":"action"}"#,
        r#""p""#,
    ] {
        let value = Json::parse(&format!(
            r#"{{"publicAccessToken":"tok","pendingSend":{bad}}}"#
        ))
        .unwrap();
        assert_eq!(
            PersistedSession::from_json(&value).unwrap(),
            PersistedSession::new("tok"),
            "{bad}"
        );
    }
}
