//! `.in/append` bodies, payload shaping, the slim approval message, URLs.
//!
//! The `slim_*` cases were produced by running the official `slimSubmitMessageForWire`
//! (`@trigger.dev/sdk@4.8.3`, ai-shared.js) in Node 20 on each input: our output must be
//! byte-identical.

use trigger_chat_wasm::proto::json::Json;
use trigger_chat_wasm::proto::url::{encode_uri_component, session_path, SessionChannel};
use trigger_chat_wasm::proto::wire::{
    check_append_body_size, merge_metadata, slim_message_for_wire, AppendResponse, InputChunk,
    Trigger, WirePayload, MAX_APPEND_BODY_BYTES,
};

fn json(text: &str) -> Json {
    Json::parse(text).unwrap()
}

fn assert_slim(input: &str, expected: &str) {
    assert_eq!(
        slim_message_for_wire(&json(input)).to_json_string(),
        expected
    );
}

#[test]
fn stop_chunk_is_exactly_kind_stop() {
    assert_eq!(
        InputChunk::Stop { message: None }.to_json_string(),
        r#"{"kind":"stop"}"#
    );
    assert_eq!(
        InputChunk::Stop {
            message: Some("user \"cancelled\"".into())
        }
        .to_json_string(),
        r#"{"kind":"stop","message":"user \"cancelled\""}"#
    );
}

#[test]
fn submit_message_payload_matches_the_documented_shape() {
    let mut payload = WirePayload::new("conversation-123", Trigger::SubmitMessage);
    payload.message = Some(json(
        r#"{"id":"msg-2","role":"user","parts":[{"type":"text","text":"Tell me more"}]}"#,
    ));
    payload.metadata = Some(json(r#"{"userId":"user-456"}"#));
    assert_eq!(
        payload.to_input_chunk().to_json_string(),
        concat!(
            r#"{"kind":"message","payload":{"message":{"id":"msg-2","role":"user","parts":[{"type":"text","text":"Tell me more"}]},"#,
            r#""chatId":"conversation-123","trigger":"submit-message","metadata":{"userId":"user-456"}}}"#
        )
    );
}

#[test]
fn action_payload_has_no_message() {
    let mut payload = WirePayload::new("conversation-123", Trigger::Action);
    payload.action = Some(json(r#"{"type":"undo"}"#));
    assert_eq!(
        payload.to_json().to_json_string(),
        r#"{"chatId":"conversation-123","trigger":"action","action":{"type":"undo"}}"#
    );
}

#[test]
fn body_fields_come_first_and_cannot_override_transport_keys() {
    let mut payload = WirePayload::new("c1", Trigger::SubmitMessage);
    payload.body = Some(json(
        r#"{"temperature":0.2,"chatId":"evil","trigger":"close","metadata":{"x":1},"messageId":"m","action":"a","extra":{"a":[1]}}"#,
    ));
    payload.message = Some(json(r#"{"id":"u","role":"user","parts":[]}"#));
    assert_eq!(
        payload.to_json().to_json_string(),
        r#"{"temperature":0.2,"extra":{"a":[1]},"message":{"id":"u","role":"user","parts":[]},"chatId":"c1","trigger":"submit-message"}"#
    );
}

#[test]
fn regenerate_does_not_leak_body_message() {
    // The JS transport sends {"message":"leak",...} here (weakness W19).
    let mut payload = WirePayload::new("c1", Trigger::RegenerateMessage);
    payload.body = Some(json(r#"{"message":"leak","temperature":0.2}"#));
    payload.message_id = Some("m1".into());
    let text = payload.to_json().to_json_string();
    assert_eq!(
        text,
        r#"{"temperature":0.2,"chatId":"c1","trigger":"regenerate-message","messageId":"m1"}"#
    );
}

#[test]
fn non_object_body_is_ignored() {
    let mut payload = WirePayload::new("c1", Trigger::Preload);
    payload.body = Some(json(r#""abc""#));
    assert_eq!(
        payload.to_json().to_json_string(),
        r#"{"chatId":"c1","trigger":"preload"}"#
    );
}

#[test]
fn every_trigger_has_its_wire_spelling() {
    let spellings: Vec<_> = [
        Trigger::SubmitMessage,
        Trigger::RegenerateMessage,
        Trigger::Preload,
        Trigger::Close,
        Trigger::Action,
        Trigger::HandoverPrepare,
    ]
    .iter()
    .map(|t| t.as_str())
    .collect();
    assert_eq!(
        spellings,
        [
            "submit-message",
            "regenerate-message",
            "preload",
            "close",
            "action",
            "handover-prepare"
        ]
    );
}

#[test]
fn metadata_merge_is_shallow_and_per_request_wins() {
    let merged = merge_metadata(
        Some(&json(r#"{"userId":"u1","model":"a","nested":{"x":1}}"#)),
        Some(&json(r#"{"model":"b","nested":{"y":2}}"#)),
    );
    assert_eq!(
        merged.unwrap().to_json_string(),
        r#"{"userId":"u1","model":"b","nested":{"y":2}}"#
    );
}

#[test]
fn metadata_merge_absent_and_non_object_cases() {
    assert_eq!(merge_metadata(None, None), None);
    assert_eq!(merge_metadata(Some(&Json::Null), None), None);
    // A string is not spread character-wise (JS weakness W38): it is ignored.
    assert_eq!(merge_metadata(None, Some(&json(r#""abc""#))), None);
    assert_eq!(
        merge_metadata(Some(&json(r#"{"a":1}"#)), Some(&json("[1,2]")))
            .unwrap()
            .to_json_string(),
        r#"{"a":1}"#
    );
    // An empty object still counts as present, like `{}` in JS.
    assert_eq!(
        merge_metadata(Some(&json("{}")), None).map(|m| m.to_json_string()),
        Some("{}".to_owned())
    );
    assert_eq!(
        merge_metadata(None, Some(&json(r#"{"b":2}"#))).map(|m| m.to_json_string()),
        Some(r#"{"b":2}"#.to_owned())
    );
}

#[test]
fn append_response_is_parsed_leniently() {
    assert_eq!(
        AppendResponse::parse(r#"{"ok":true,"seq":42}"#),
        AppendResponse {
            seq: Some(42),
            pending_version: false
        }
    );
    assert_eq!(
        AppendResponse::parse(r#"{"ok":true,"seq":7,"pendingVersion":true}"#),
        AppendResponse {
            seq: Some(7),
            pending_version: true
        }
    );
    for body in [
        "",
        "not json",
        r#"{"seq":"42"}"#,
        r#"{"seq":-1}"#,
        r#"{"seq":1.5}"#,
        "[]",
    ] {
        assert_eq!(AppendResponse::parse(body).seq, None, "body {body:?}");
    }
    assert!(!AppendResponse::parse(r#"{"pendingVersion":"true"}"#).pending_version);
}

#[test]
fn append_body_size_check_at_the_1_mib_cap() {
    assert!(check_append_body_size(&"x".repeat(MAX_APPEND_BODY_BYTES)).is_ok());
    let err = check_append_body_size(&"x".repeat(MAX_APPEND_BODY_BYTES + 1)).unwrap_err();
    assert_eq!(err.code(), "payload_too_large");
    assert_eq!(err.status(), Some(413));
    assert_eq!(
        err.to_string(),
        "payload too large: 1048577 bytes exceeds the 1048576-byte limit"
    );
    // Bytes, not characters: 'é' is two bytes in UTF-8.
    assert!(check_append_body_size(&"é".repeat(MAX_APPEND_BODY_BYTES / 2 + 1)).is_err());
}

#[test]
fn encode_uri_component_matches_javascript() {
    // Expected output from Node 20's encodeURIComponent on the same input.
    assert_eq!(
        encode_uri_component("a b/c?d#e&f=g+h%i:j@k,l;m$n!o~p*q'r(s)t_u.v-w é 👋"),
        "a%20b%2Fc%3Fd%23e%26f%3Dg%2Bh%25i%3Aj%40k%2Cl%3Bm%24n!o~p*q'r(s)t_u.v-w%20%C3%A9%20%F0%9F%91%8B"
    );
    assert_eq!(encode_uri_component(""), "");
}

#[test]
fn session_paths_trim_every_trailing_slash() {
    assert_eq!(
        session_path(
            "https://api.trigger.dev",
            "chat-1",
            SessionChannel::InAppend
        ),
        "https://api.trigger.dev/realtime/v1/sessions/chat-1/in/append"
    );
    assert_eq!(
        session_path("https://api.trigger.dev///", "a/b c", SessionChannel::Out),
        "https://api.trigger.dev/realtime/v1/sessions/a%2Fb%20c/out"
    );
    assert_eq!(
        session_path("http://localhost:3000/proxy/", "x", SessionChannel::Out),
        "http://localhost:3000/proxy/realtime/v1/sessions/x/out"
    );
}

#[test]
fn slim_output_available_keeps_only_the_output() {
    assert_slim(
        r#"{"id":"a1","role":"assistant","metadata":{"x":1},"parts":[{"type":"step-start"},{"type":"reasoning","text":"long thinking"},{"type":"text","text":"Let me check"},{"type":"tool-getWeather","toolCallId":"c1","state":"output-available","input":{"city":"Paris"},"output":{"temp":21},"providerExecuted":false,"callProviderMetadata":{"a":1}},{"type":"tool-search","toolCallId":"c0","state":"input-available","input":{"q":"x"}}]}"#,
        r#"{"id":"a1","role":"assistant","parts":[{"type":"tool-getWeather","toolCallId":"c1","state":"output-available","output":{"temp":21}}]}"#,
    );
}

#[test]
fn slim_output_error_keeps_error_text_and_approval() {
    assert_slim(
        r#"{"id":"a2","role":"assistant","parts":[{"type":"tool-x","toolCallId":"c2","state":"output-error","input":{},"errorText":"boom","approval":{"id":"ap","approved":true}}]}"#,
        r#"{"id":"a2","role":"assistant","parts":[{"type":"tool-x","toolCallId":"c2","state":"output-error","errorText":"boom","approval":{"id":"ap","approved":true}}]}"#,
    );
}

#[test]
fn slim_approval_responded_keeps_the_approval() {
    assert_slim(
        r#"{"id":"a3","role":"assistant","parts":[{"type":"tool-sendEmail","toolCallId":"call-1","state":"approval-responded","input":{"to":"a"},"approval":{"id":"approval-1","approved":true}}]}"#,
        r#"{"id":"a3","role":"assistant","parts":[{"type":"tool-sendEmail","toolCallId":"call-1","state":"approval-responded","approval":{"id":"approval-1","approved":true}}]}"#,
    );
}

#[test]
fn slim_output_denied_keeps_the_approval() {
    assert_slim(
        r#"{"id":"a4","role":"assistant","parts":[{"type":"tool-sendEmail","toolCallId":"call-1","state":"output-denied","input":{"to":"a"},"approval":{"id":"approval-1","approved":false,"reason":"no"}}]}"#,
        r#"{"id":"a4","role":"assistant","parts":[{"type":"tool-sendEmail","toolCallId":"call-1","state":"output-denied","approval":{"id":"approval-1","approved":false,"reason":"no"}}]}"#,
    );
}

#[test]
fn slim_dynamic_tool_keeps_tool_name_and_null_approval() {
    assert_slim(
        r#"{"id":"a5","role":"assistant","parts":[{"type":"dynamic-tool","toolName":"mcp_lookup","toolCallId":"c5","state":"output-available","input":{},"output":"ok","approval":null},{"type":"tool-named","toolName":"ignored","toolCallId":"c6","state":"output-available","output":null}]}"#,
        r#"{"id":"a5","role":"assistant","parts":[{"type":"dynamic-tool","toolCallId":"c5","state":"output-available","toolName":"mcp_lookup","output":"ok","approval":null},{"type":"tool-named","toolCallId":"c6","state":"output-available","output":null}]}"#,
    );
}

#[test]
fn slim_dynamic_tool_drops_a_non_string_tool_name() {
    assert_slim(
        r#"{"id":"a6","role":"assistant","parts":[{"type":"dynamic-tool","toolName":7,"toolCallId":"c7","state":"approval-responded"}]}"#,
        r#"{"id":"a6","role":"assistant","parts":[{"type":"dynamic-tool","toolCallId":"c7","state":"approval-responded"}]}"#,
    );
}

#[test]
fn slim_user_message_is_untouched() {
    assert_slim(
        r#"{"id":"u1","role":"user","parts":[{"type":"tool-x","toolCallId":"c","state":"output-available","output":1}]}"#,
        r#"{"id":"u1","role":"user","parts":[{"type":"tool-x","toolCallId":"c","state":"output-available","output":1}]}"#,
    );
}

#[test]
fn slim_assistant_without_advanced_tool_parts_is_untouched() {
    assert_slim(
        r#"{"id":"a7","role":"assistant","parts":[{"type":"text","text":"hi"},{"type":"tool-x","toolCallId":"c","state":"approval-requested","input":{}}]}"#,
        r#"{"id":"a7","role":"assistant","parts":[{"type":"text","text":"hi"},{"type":"tool-x","toolCallId":"c","state":"approval-requested","input":{}}]}"#,
    );
}

#[test]
fn slim_absent_fields_stay_absent_and_junk_parts_are_dropped() {
    assert_slim(
        r#"{"role":"assistant","parts":[{"type":"tool-x","state":"output-available"},"junk",null,[1]]}"#,
        r#"{"role":"assistant","parts":[{"type":"tool-x","state":"output-available"}]}"#,
    );
}

#[test]
fn slim_leaves_non_objects_and_odd_parts_alone() {
    assert_eq!(slim_message_for_wire(&Json::Null), Json::Null);
    let odd =
        r#"{"id":"a","role":"assistant","parts":{"type":"tool-x","state":"output-available"}}"#;
    assert_slim(odd, odd);
}
