//! The wasm transport against the emulator, in real browsers: sends, streams, turns, events.
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn transport(extra: &JsValue) -> (Transport, JsValue) {
    let made = make_options(SERVER, extra);
    let transport = transport_with(&get(&made, "options"));
    (transport, get(&made, "calls"))
}

/// The `code` of the error a send of `text` on `chat` rejects with.
async fn send_fails_with(t: &Transport, chat: &str, id: &str, text: &str) -> Option<String> {
    let messages = array(&[user_message(id, text)]);
    let error =
        rejected(t.send_messages(&send_request(chat, &messages, &JsValue::UNDEFINED))).await;
    get(&error, "code").as_string()
}

/// An `onSettled` callback and the settlements it has been called with.
fn settle_recorder() -> (js_sys::Array, Closure<dyn FnMut(JsValue)>) {
    let settled = js_sys::Array::new();
    let record = settled.clone();
    let on_settled = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
        record.push(&s);
    });
    (settled, on_settled)
}

/// The session state of `chat` after one exchange, made through a transport of its own.
async fn a_session(chat: &str) -> JsValue {
    let (first, _) = transport(&JsValue::UNDEFINED);
    send_text(&first, chat, "u1", "one").await;
    let session = first.get_session(chat);
    first.dispose();
    session
}

#[wasm_bindgen_test]
async fn a_message_streams_the_agents_reply_and_closes_on_its_turn_complete() {
    let chat = new_chat_id("basic");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    let messages = array(&[user_message("u1", "hello there")]);
    let stream = ok(t.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED))).await;
    let chunks = ok(read_all(&stream)).await;
    assert_eq!(text_of(&chunks), "You said: hello there");
    let kinds = strings(&types(&chunks));
    assert_eq!(kinds.first().map(String::as_str), Some("start"));
    assert_eq!(kinds.last().map(String::as_str), Some("finish"));
    assert_eq!(get(&calls, "startSession").as_f64(), Some(1.0));
    let events = strings(&event_types(&calls));
    for expected in [
        "message-sent",
        "stream-connected",
        "first-chunk",
        "turn-completed",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "missing {expected} in {events:?}"
        );
    }
}

async fn send_text(t: &Transport, chat: &str, id: &str, text: &str) -> JsValue {
    let messages = array(&[user_message(id, text)]);
    let stream = ok(t.send_messages(&send_request(chat, &messages, &JsValue::UNDEFINED))).await;
    ok(read_all(&stream)).await
}

async fn request_log(chat: &str) -> Vec<JsValue> {
    let log = ok(admin(SERVER, chat, "log", "GET", &JsValue::UNDEFINED)).await;
    js_sys::Array::from(&log).iter().collect()
}

fn header(entry: &JsValue, name: &str) -> Option<String> {
    get(&get(entry, "headers"), name).as_string()
}

fn is_append(entry: &JsValue) -> bool {
    get(entry, "path")
        .as_string()
        .is_some_and(|p| p.ends_with("/in/append"))
}

#[wasm_bindgen_test]
async fn each_turn_streams_only_its_own_reply() {
    let chat = new_chat_id("turns");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    assert_eq!(
        text_of(&send_text(&t, &chat, "u1", "first").await),
        "You said: first"
    );
    assert_eq!(
        text_of(&send_text(&t, &chat, "u2", "second").await),
        "You said: second"
    );
    assert_eq!(
        get(&calls, "startSession").as_f64(),
        Some(1.0),
        "one session for the chat"
    );
    let session = t.get_session(&chat);
    assert_eq!(get(&session, "isStreaming").as_bool(), Some(false));
    assert!(get(&session, "lastEventId").as_string().is_some());
    assert!(get(&session, "activeInputSeq").is_undefined());
}

#[wasm_bindgen_test]
async fn regenerate_sends_no_message_and_streams_the_new_answer() {
    let chat = new_chat_id("regen");
    let (t, _) = transport(&JsValue::UNDEFINED);
    send_text(&t, &chat, "u1", "ping").await;
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "ping")]),
        &object(&[
            ("trigger", "regenerate-message".into()),
            ("messageId", "a1".into()),
            (
                "body",
                object(&[("message", "must not leak".into()), ("extra", 7.into())]),
            ),
        ]),
    );
    let chunks = ok(read_all(&ok(t.send_messages(&request)).await)).await;
    assert_eq!(text_of(&chunks), "Regenerated: You said: ping");
    let payload = last_append_payload(&chat).await;
    assert_eq!(
        get(&payload, "trigger").as_string().as_deref(),
        Some("regenerate-message")
    );
    assert!(
        get(&payload, "message").is_undefined(),
        "body.message leaked (W19)"
    );
    assert_eq!(get(&payload, "extra").as_f64(), Some(7.0));
    assert_eq!(
        get(&payload, "messageId").as_string().as_deref(),
        Some("a1")
    );
}

#[wasm_bindgen_test]
async fn actions_stream_their_turn_and_settle() {
    let chat = new_chat_id("action");
    let (t, _) = transport(&JsValue::UNDEFINED);
    send_text(&t, &chat, "u1", "hi").await;
    let (settled, on_settled) = settle_recorder();
    let options = object(&[("onSettled", on_settled.as_ref().clone())]);
    let action = object(&[("type", "undo".into())]);
    let stream = ok(t.send_action(&chat, &action, &options)).await;
    let chunks = ok(read_all(&stream)).await;
    assert_eq!(text_of(&chunks), r#"Action received: {"type":"undo"}"#);
    assert_eq!(settled.length(), 1, "onSettled fires once");
    assert!(get(&settled.get(0), "inputSeq").as_f64().is_some());
    // An action through useChat: `body.action` becomes `trigger: "action"`.
    let request = send_request(
        &chat,
        &array(&[]),
        &object(&[(
            "body",
            object(&[("action", object(&[("type", "redo".into())]))]),
        )]),
    );
    let chunks = ok(read_all(&ok(t.send_messages(&request)).await)).await;
    assert_eq!(text_of(&chunks), r#"Action received: {"type":"redo"}"#);
    // As in the JS transport: `body.action: null` is an action too, and `sendAction` without
    // one leaves the field out (JSON has no `undefined`).
    let request = send_request(
        &chat,
        &array(&[]),
        &object(&[("body", object(&[("action", JsValue::NULL)]))]),
    );
    ok(read_all(&ok(t.send_messages(&request)).await)).await;
    let payload = last_append_payload(&chat).await;
    assert_eq!(
        get(&payload, "trigger").as_string().as_deref(),
        Some("action")
    );
    assert!(get(&payload, "action").is_null());
    ok(read_all(
        &ok(t.send_action(&chat, &JsValue::UNDEFINED, &object(&[]))).await,
    ))
    .await;
    let payload = last_append_payload(&chat).await;
    assert_eq!(
        get(&payload, "trigger").as_string().as_deref(),
        Some("action")
    );
    let keys = js_sys::Object::keys(payload.unchecked_ref::<js_sys::Object>());
    assert!(!keys.includes(&"action".into(), 0), "no action key");
}

/// The `payload` of the chat's latest `.in/append`.
async fn last_append_payload(chat: &str) -> JsValue {
    let log = request_log(chat).await;
    let body = log
        .iter()
        .rev()
        .find(|e| is_append(e))
        .map(|e| get(e, "body"))
        .unwrap();
    get(
        &js_sys::JSON::parse(&body.as_string().unwrap()).unwrap(),
        "payload",
    )
}

#[wasm_bindgen_test]
async fn client_data_is_merged_under_request_metadata() {
    let chat = new_chat_id("meta");
    let extra = object(&[(
        "clientData",
        object(&[("user", "ada".into()), ("plan", "free".into())]),
    )]);
    let (t, _) = transport(&extra);
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "whoami")]),
        &object(&[("metadata", object(&[("plan", "pro".into())]))]),
    );
    let chunks = ok(read_all(&ok(t.send_messages(&request)).await)).await;
    let text = text_of(&chunks);
    assert!(
        text.contains(r#"metadata={"user":"ada","plan":"pro"}"#),
        "per-request metadata wins: {text}"
    );
    assert!(
        text.contains(r#"clientData={"user":"ada","plan":"free"}"#),
        "{text}"
    );
    // setClientData takes effect on the next send.
    t.set_client_data(&object(&[("user", "grace".into())]));
    let text = text_of(&send_text(&t, &chat, "u2", "whoami").await);
    assert!(text.contains(r#"metadata={"user":"grace"}"#), "{text}");

    // A value that cannot be sent does not throw where it is set (a hook sets it during render):
    // the sends that would carry it fail, until a good value replaces it.
    t.set_client_data(&object(&[("n", js_sys::BigInt::from(1u32).into())]));
    assert_eq!(
        send_fails_with(&t, &chat, "u3", "whoami").await.as_deref(),
        Some("invalid_option")
    );
    t.set_client_data(&object(&[("user", "lin".into())]));
    let text = text_of(&send_text(&t, &chat, "u4", "whoami").await);
    assert!(text.contains(r#"metadata={"user":"lin"}"#), "{text}");
}

#[wasm_bindgen_test]
async fn client_data_that_cannot_be_sent_from_the_start_fails_only_the_sends_until_replaced() {
    let chat = new_chat_id("bad-client-data");
    let bad = object(&[("n", js_sys::BigInt::from(1u32).into())]);
    let (t, _) = transport(&object(&[("clientData", bad)]));
    assert_eq!(
        send_fails_with(&t, &chat, "u1", "whoami").await.as_deref(),
        Some("invalid_option")
    );
    // The rest of the transport works (nothing to stop here)...
    assert_eq!(ok(t.stop_generation(&chat)).await.as_bool(), Some(false));
    // ...and a good value set later is the one sent.
    t.set_client_data(&object(&[("user", "ada".into())]));
    let text = text_of(&send_text(&t, &chat, "u2", "whoami").await);
    assert!(text.contains(r#"metadata={"user":"ada"}"#), "{text}");
}

#[wasm_bindgen_test]
async fn callbacks_given_by_setters_before_first_use_are_the_ones_used() {
    // Options with neither `startSession` nor `accessToken`: alone they are refused.
    let options = get(&make_options(SERVER, &JsValue::UNDEFINED), "options");
    let start = get(&options, "startSession");
    let token = get(&options, "accessToken");
    for name in ["startSession", "accessToken"] {
        js_sys::Reflect::delete_property(options.unchecked_ref::<js_sys::Object>(), &name.into())
            .unwrap();
    }
    let t = transport_with(&options);
    t.set_start_session(&start);
    t.set_access_token(&token);
    let chat = new_chat_id("setters");
    let chunks = send_text(&t, &chat, "u1", "hello").await;
    assert_eq!(text_of(&chunks), "You said: hello");
}

#[wasm_bindgen_test]
async fn headers_are_sent_but_cannot_replace_the_transports_own() {
    let chat = new_chat_id("headers");
    let extra = object(&[(
        "headers",
        object(&[
            ("X-App", "demo".into()),
            ("authorization", "Bearer not-the-token".into()),
            ("x-part-id", "fixed".into()),
        ]),
    )]);
    let (t, _) = transport(&extra);
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "hi")]),
        &object(&[("headers", object(&[("X-Request", "r1".into())]))]),
    );
    ok(read_all(&ok(t.send_messages(&request)).await)).await;
    let log = request_log(&chat).await;
    let append = log.iter().find(|e| is_append(e)).unwrap();
    assert_eq!(header(append, "x-app").as_deref(), Some("demo"));
    assert_eq!(
        header(append, "x-request").as_deref(),
        Some("r1"),
        "per-request headers (W19)"
    );
    let auth = header(append, "authorization").unwrap();
    assert!(
        auth.starts_with("Bearer ey"),
        "the session token, not the option: {auth}"
    );
    assert_ne!(header(append, "x-part-id").as_deref(), Some("fixed"));
    let out = log
        .iter()
        .find(|e| {
            get(e, "path")
                .as_string()
                .is_some_and(|p| p.ends_with("/out"))
        })
        .unwrap();
    assert!(header(out, "authorization")
        .unwrap()
        .starts_with("Bearer ey"));
    assert_eq!(header(out, "accept").as_deref(), Some("text/event-stream"));
    assert_eq!(header(out, "x-app").as_deref(), Some("demo"));
}

#[wasm_bindgen_test]
async fn a_header_fetch_would_refuse_fails_the_send_with_invalid_option_and_nothing_sent() {
    let chat = new_chat_id("unsendable-header");
    let (t, _) = transport(&JsValue::UNDEFINED);
    for (name, value) in [("X-City", "東京"), ("X-Two", "a\r\nX-Injected: 1")] {
        let request = send_request(
            &chat,
            &array(&[user_message("u1", "hi")]),
            &object(&[("headers", object(&[(name, value.into())]))]),
        );
        let error = rejected(t.send_messages(&request)).await;
        assert_eq!(
            get(&error, "code").as_string().as_deref(),
            Some("invalid_option"),
            "{name}: not a network failure after retries"
        );
    }
    assert!(
        !request_log(&chat).await.iter().any(is_append),
        "nothing was sent"
    );
    // A Latin-1 value goes out.
    let request = send_request(
        &chat,
        &array(&[user_message("u2", "hi")]),
        &object(&[("headers", object(&[("X-Name", "Zoë".into())]))]),
    );
    ok(read_all(&ok(t.send_messages(&request)).await)).await;
    assert!(request_log(&chat).await.iter().any(is_append));
}

/// The header check agrees with the browser's own `Headers` on every edge of its rules: the
/// characters `fetch` trims (and the ones it does not), Latin-1, NUL and line breaks inside.
#[wasm_bindgen_test]
fn the_header_check_agrees_with_the_browsers_headers() {
    let accepts = js_sys::Function::new_with_args(
        "n, v",
        "try { new Headers([[n, v]]); return true } catch (e) { return false }",
    );
    let cases = [
        ("x-key", "abc"),
        ("x-key", " padded\t"),
        ("x-key", "abc\r\n"),
        ("x-key", "\n\r lead"),
        ("x-key", "a\nb"),
        ("x-key", "a\rb"),
        ("x-key", "k\n\u{a0}"),
        ("x-key", "\u{a0}\nk"),
        ("x-key", "k\n\u{b}"),
        ("x-key", "k\n\u{c}"),
        ("x-key", "k\n\u{85}"),
        ("x-key", "Zo\u{eb}"),
        ("x-key", "\u{ff}"),
        ("x-key", "\u{100}"),
        ("x-key", "a\0b"),
        ("x-key", ""),
        ("x key", "v"),
        ("x:key", "v"),
        ("", "v"),
        ("X-!#$%&'*+-.^_`|~", "v"),
    ];
    for (name, value) in cases {
        let browser = accepts
            .call2(&JsValue::NULL, &name.into(), &value.into())
            .unwrap()
            .as_bool()
            .unwrap();
        assert_eq!(
            trigger_chat_wasm::proto::headers::is_sendable(name, value),
            browser,
            "{name:?}: {value:?}"
        );
    }
}

#[wasm_bindgen_test]
async fn chat_ids_are_percent_encoded_into_paths() {
    let chat = format!("{}/ü ?#", new_chat_id("enc"));
    let (t, _) = transport(&JsValue::UNDEFINED);
    assert_eq!(
        text_of(&send_text(&t, &chat, "u1", "hi").await),
        "You said: hi"
    );
    let log = request_log(&chat).await;
    let path = log
        .iter()
        .find(|e| is_append(e))
        .and_then(|e| get(e, "path").as_string())
        .unwrap();
    assert!(path.contains("%2F%C3%BC%20%3F%23"), "{path}");
}

#[wasm_bindgen_test]
async fn an_oversized_message_fails_at_once_with_a_clear_error() {
    let chat = new_chat_id("big");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    send_text(&t, &chat, "u1", "hi").await;
    let big = "x".repeat(1_100_000);
    let request = send_request(
        &chat,
        &array(&[user_message("u2", &big)]),
        &JsValue::UNDEFINED,
    );
    let error = rejected(t.send_messages(&request)).await;
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("payload_too_large")
    );
    assert_eq!(get(&error, "status").as_f64(), Some(413.0));
    let appends = request_log(&chat)
        .await
        .iter()
        .filter(|e| is_append(e))
        .count();
    assert_eq!(appends, 1, "nothing was sent for the oversized message");
    let events = strings(&event_types(&calls));
    assert_eq!(
        events.last().map(String::as_str),
        Some("message-send-failed")
    );
}

#[wasm_bindgen_test]
async fn a_closed_session_refuses_sends_and_reconnects() {
    let chat = new_chat_id("closed");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    let chunks = send_text(&t, &chat, "u1", "goodbye").await;
    assert!(!text_of(&chunks).is_empty());
    assert_eq!(t.session_status(&chat), "closed");
    let events = strings(&event_types(&calls));
    assert!(events.iter().any(|e| e == "session-closed"), "{events:?}");
    let before = request_log(&chat).await.len();
    let request = send_request(
        &chat,
        &array(&[user_message("u2", "again")]),
        &JsValue::UNDEFINED,
    );
    let error = rejected(t.send_messages(&request)).await;
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("session_closed")
    );
    assert_eq!(
        request_log(&chat).await.len(),
        before,
        "refused without a request"
    );
    let resumed = ok(t.reconnect_to_stream(&object(&[("chatId", chat.as_str().into())]))).await;
    assert!(resumed.is_null());
    assert_eq!(get(&t.get_session(&chat), "closed").as_bool(), Some(true));
}

#[wasm_bindgen_test]
async fn events_carry_the_js_transports_fields() {
    let chat = new_chat_id("events");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    send_text(&t, &chat, "u1", "hi").await;
    let events: Vec<JsValue> = js_sys::Array::from(&get(&calls, "events")).iter().collect();
    let find = |kind: &str| {
        events
            .iter()
            .find(|e| get(e, "type").as_string().as_deref() == Some(kind))
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} event"))
    };
    let sent = find("message-sent");
    assert_eq!(
        get(&sent, "chatId").as_string().as_deref(),
        Some(chat.as_str())
    );
    assert_eq!(
        get(&sent, "source").as_string().as_deref(),
        Some("submit-message")
    );
    assert_eq!(get(&sent, "messageId").as_string().as_deref(), Some("u1"));
    assert_eq!(get(&sent, "partId").as_string().map(|p| p.len()), Some(36));
    assert!(get(&sent, "bodyBytes").as_f64().unwrap() > 50.0);
    assert!(get(&sent, "durationMs").as_f64().is_some());
    assert!(get(&sent, "timestamp").as_f64().unwrap() > 1.6e12);
    let first = find("first-chunk");
    assert_eq!(
        get(&first, "chunkType").as_string().as_deref(),
        Some("start")
    );
    assert_eq!(get(&first, "messageId").as_string().as_deref(), Some("u1"));
    let done = find("turn-completed");
    assert!(get(&done, "lastEventId").as_string().is_some());
    assert!(get(&done, "sinceSendMs").as_f64().is_some());
    let connected = find("stream-connected");
    assert_eq!(get(&connected, "resumed").as_bool(), Some(false));
    // No event or session state ever carries the token outside `publicAccessToken`.
    let token = get(&t.get_session(&chat), "publicAccessToken")
        .as_string()
        .unwrap();
    for e in &events {
        let text = js_sys::JSON::stringify(e).unwrap().as_string().unwrap();
        assert!(!text.contains(&token), "token leaked into {text}");
    }
}

#[wasm_bindgen_test]
async fn bad_options_are_rejected_with_the_field_name() {
    let cases = [
        (object(&[]), "task"),
        (object(&[("task", "t".into())]), "accessToken"),
        (
            object(&[("task", "t".into()), ("accessToken", "nope".into())]),
            "accessToken",
        ),
        (
            object(&[
                ("task", "t".into()),
                ("startSession", js_sys::Function::new_no_args("").into()),
                ("streamTimeoutSeconds", 0.into()),
            ]),
            "streamTimeoutSeconds",
        ),
        (
            // NaN would be `null` as JSON: not given.
            object(&[
                ("task", "t".into()),
                ("startSession", js_sys::Function::new_no_args("").into()),
                ("stallTimeoutMs", f64::NAN.into()),
            ]),
            "stallTimeoutMs",
        ),
        (
            object(&[
                ("task", "t".into()),
                ("startSession", js_sys::Function::new_no_args("").into()),
                ("persistence", "sessionStorage".into()),
            ]),
            "persistence",
        ),
        (
            object(&[
                ("task", "t".into()),
                ("startSession", js_sys::Function::new_no_args("").into()),
                ("persistence", object(&[("namespace", 5.into())])),
            ]),
            "persistence",
        ),
    ];
    for (options, field) in cases {
        // The constructor never throws (useChat builds it during render); the first use does.
        let t = transport_with(&options);
        let request = send_request("c", &array(&[user_message("u1", "x")]), &JsValue::UNDEFINED);
        let error = rejected(t.send_messages(&request)).await;
        assert_eq!(
            get(&error, "code").as_string().as_deref(),
            Some("invalid_option")
        );
        let message = get(&error, "message").as_string().unwrap();
        assert!(message.contains(field), "{message}");
    }
}

#[wasm_bindgen_test]
async fn a_tab_without_the_cursor_never_shows_an_earlier_answer_as_its_own() {
    let chat = new_chat_id("nocursor");
    let (a, _) = transport(&JsValue::UNDEFINED);
    assert_eq!(
        text_of(&send_text(&a, &chat, "u1", "first").await),
        "You said: first"
    );
    // Another tab (no stored state) reads the stream from its start: the first turn replays
    // before its own reply (the JS transport forwards it, W11).
    let (b, _) = transport(&JsValue::UNDEFINED);
    let chunks = send_text(&b, &chat, "u2", "second").await;
    assert_eq!(text_of(&chunks), "You said: second");
    assert_eq!(
        strings(&types(&chunks))
            .iter()
            .filter(|k| *k == "start")
            .count(),
        1
    );
}

#[wasm_bindgen_test]
async fn an_action_can_open_a_fresh_chat() {
    let chat = new_chat_id("fresh-action");
    let (t, _) = transport(&JsValue::UNDEFINED);
    let request = send_request(
        &chat,
        &array(&[]),
        &object(&[(
            "body",
            object(&[("action", object(&[("type", "ping".into())]))]),
        )]),
    );
    let chunks = ok(read_all(&ok(t.send_messages(&request)).await)).await;
    assert_eq!(text_of(&chunks), r#"Action received: {"type":"ping"}"#);
}

#[wasm_bindgen_test]
async fn a_module_that_failed_to_load_is_loaded_again_by_the_next_call() {
    let chat = new_chat_id("reload-module");
    let made = make_options(SERVER, &JsValue::UNDEFINED);
    let t = transport_of(&flaky_transport_class(), &get(&made, "options"));
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "hi")]),
        &JsValue::UNDEFINED,
    );
    let error = rejected(t.send_messages(&request)).await;
    let message = get(&error, "message").as_string().unwrap_or_default();
    assert!(message.contains("could not be fetched"), "{message}");
    // One of this package's errors, with the browser's as its cause.
    assert_eq!(get(&error, "code").as_string().as_deref(), Some("network"));
    assert!(get(&error, "cause").is_object());
    // Back online: the same transport works.
    let chunks = ok(read_all(&ok(t.send_messages(&request)).await)).await;
    assert_eq!(text_of(&chunks), "You said: hi");
}

#[wasm_bindgen_test]
async fn head_start_streams_the_first_turn_and_later_turns_go_to_the_session() {
    let chat = new_chat_id("head-start");
    let url = format!("{SERVER}/api/chat/head-start");
    let (t, calls) = transport(&object(&[("headStart", url.into())]));
    let first = send_text(&t, &chat, "u1", "hello there").await;
    assert_eq!(text_of(&first), "You said: hello there");
    let kinds = strings(&types(&first));
    assert!(
        !kinds.iter().any(|k| k.starts_with("trigger:")),
        "the handler's control chunks stay inside the transport: {kinds:?}"
    );
    assert_eq!(
        get(&calls, "startSession").as_f64(),
        Some(0.0),
        "the handler created the session"
    );
    let session = t.get_session(&chat);
    assert!(get(&session, "publicAccessToken").is_string());
    assert_eq!(get(&session, "isStreaming").as_bool(), Some(false));
    assert!(get(&session, "lastEventId").is_string());
    let sources: Vec<String> = js_sys::Array::from(&get(&calls, "events"))
        .iter()
        .filter(|e| get(e, "type").as_string().as_deref() == Some("message-sent"))
        .filter_map(|e| get(&e, "source").as_string())
        .collect();
    assert_eq!(sources, ["head-start"]);

    // The second turn goes to `.in` with the handler's token and streams only its own reply.
    let messages = array(&[
        user_message("u1", "hello there"),
        user_message("u2", "and again"),
    ]);
    let stream = ok(t.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED))).await;
    let second = ok(read_all(&stream)).await;
    assert_eq!(text_of(&second), "You said: and again");
    assert_eq!(get(&calls, "startSession").as_f64(), Some(0.0));
    let appends = request_log(&chat)
        .await
        .into_iter()
        .filter(is_append)
        .count();
    assert_eq!(
        appends, 1,
        "only the second turn was appended by the browser"
    );
}

#[wasm_bindgen_test]
async fn a_steering_message_too_late_for_the_turn_streams_through_a_send_of_it_without_a_second_append(
) {
    let chat = new_chat_id("steer");
    let (t, _) = transport(&JsValue::UNDEFINED);
    let ask = user_message("u1", "inspect the spec");
    let stream = ok(t.send_messages(&send_request(
        &chat,
        &array(std::slice::from_ref(&ask)),
        &JsValue::UNDEFINED,
    )))
    .await;
    // While the tool runs (1.5 s): injected at the step boundary.
    ok(read_until(&stream, "tool-input-available", 1)).await;
    let early = user_message("s1", "answer in French");
    assert_eq!(
        ok(t.send_pending_message(&chat, &early)).await.as_bool(),
        Some(true)
    );
    let head = ok(read_until(&stream, "text-delta", 1)).await;
    let kinds = strings(&types(&head));
    assert!(
        kinds.iter().any(|k| k == "data-pending-message-injected"),
        "{kinds:?}"
    );
    // The summary streams: too late for this turn, so the agent answers it next.
    let late = user_message("s2", "and in German");
    assert_eq!(
        ok(t.send_pending_message(&chat, &late)).await.as_bool(),
        Some(true)
    );
    let rest = ok(read_all(&stream)).await;
    assert!(
        text_of(&rest).ends_with("Steered by: answer in French."),
        "{}",
        text_of(&rest)
    );
    assert_eq!(
        get(&t.get_session(&chat), "isStreaming").as_bool(),
        Some(true)
    );

    let messages = array(&[ask, late]);
    let follow = ok(t.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED))).await;
    assert_eq!(
        text_of(&ok(read_all(&follow)).await),
        "You said: and in German"
    );
    // Answered now: the same message again streams nothing and is not sent.
    let again = ok(t.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED))).await;
    assert_eq!(js_sys::Array::from(&ok(read_all(&again)).await).length(), 0);
    let appends = request_log(&chat)
        .await
        .into_iter()
        .filter(is_append)
        .count();
    assert_eq!(appends, 3, "the question and each steering message once");
    assert_eq!(
        get(&t.get_session(&chat), "isStreaming").as_bool(),
        Some(false)
    );
}

#[wasm_bindgen_test]
async fn remove_and_set_session_before_first_use_apply_in_the_order_called() {
    let chat = new_chat_id("early-remove");
    let session = a_session(&chat).await;
    let none = js_sys::JSON::parse(r#"{"persistence":"none"}"#).unwrap();

    // Removed, then set (a "reset to this state" before the module loaded): the state is used.
    let (t, calls) = transport(&none);
    t.remove_session(&chat);
    t.set_session(&chat, &session).unwrap();
    assert_eq!(
        get(&t.get_session(&chat), "publicAccessToken"),
        get(&session, "publicAccessToken")
    );
    let chunks = send_text(&t, &chat, "u2", "two").await;
    assert_eq!(text_of(&chunks), "You said: two");
    assert_eq!(get(&calls, "startSession").as_f64(), Some(0.0));
    t.dispose();

    // Set, then removed: the chat has no session, so the next send starts one.
    let (t, calls) = transport(&none);
    t.set_session(&chat, &session).unwrap();
    t.remove_session(&chat);
    assert!(t.get_session(&chat).is_undefined());
    send_text(&t, &new_chat_id("early-remove-warmup"), "w", "warm up").await;
    assert!(t.get_session(&chat).is_undefined());
    let chunks = send_text(&t, &chat, "u3", "three").await;
    assert_eq!(text_of(&chunks), "You said: three");
    assert_eq!(get(&calls, "startSession").as_f64(), Some(2.0));
    t.dispose();

    // A cursor seeded, then the chat removed, then set without a cursor: nothing of the seed is
    // left (the removal came after it).
    let (t, _) = transport(&none);
    let fresh = new_chat_id("early-seed");
    t.seed_resume_cursor(&fresh, "500");
    t.remove_session(&fresh);
    let token_only = object(&[("publicAccessToken", get(&session, "publicAccessToken"))]);
    t.set_session(&fresh, &token_only).unwrap();
    send_text(&t, &new_chat_id("early-seed-warmup"), "w", "warm up").await;
    assert!(get(&t.get_session(&fresh), "lastEventId").is_undefined());
}

#[wasm_bindgen_test]
async fn an_unreadable_sessions_entry_starts_that_chat_afresh_and_breaks_no_other() {
    let chat = new_chat_id("bad-entry");
    let session = a_session(&chat).await;

    let sessions = js_sys::Object::new();
    js_sys::Reflect::set(&sessions, &chat.as_str().into(), &session).unwrap();
    let other = new_chat_id("bad-entry-other");
    let bad = js_sys::JSON::parse(r#"{"lastEventId":"3"}"#).unwrap();
    js_sys::Reflect::set(&sessions, &other.as_str().into(), &bad).unwrap();
    js_sys::Reflect::set(&sessions, &"removed".into(), &JsValue::NULL).unwrap();
    let extra = object(&[
        ("persistence", "none".into()),
        ("sessions", sessions.into()),
    ]);
    let (t, calls) = transport(&extra);
    assert!(
        t.get_session(&other).is_undefined(),
        "no session before the module loads"
    );
    let chunks = send_text(&t, &chat, "u2", "two").await;
    assert_eq!(text_of(&chunks), "You said: two");
    assert_eq!(get(&calls, "startSession").as_f64(), Some(0.0));
    let events = strings(&event_types(&calls));
    assert_eq!(
        events.iter().filter(|e| *e == "storage-error").count(),
        1,
        "{events:?}"
    );
    let chunks = send_text(&t, &other, "u1", "fresh").await;
    assert_eq!(text_of(&chunks), "You said: fresh");
    assert_eq!(get(&calls, "startSession").as_f64(), Some(1.0));
}

#[wasm_bindgen_test]
async fn set_session_before_first_use_checks_its_argument_and_is_used() {
    let chat = new_chat_id("set-session");
    let session = a_session(&chat).await;
    assert!(get(&session, "publicAccessToken").is_string());

    // A fresh transport whose driver does not exist yet (nothing was sent through it).
    let (t, calls) = transport(&js_sys::JSON::parse(r#"{"persistence":"none"}"#).unwrap());
    let bad = js_sys::JSON::parse(r#"{"publicAccessToken":""}"#).unwrap();
    let error = t
        .set_session(&chat, &bad)
        .expect_err("a state without a token throws");
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("invalid_option")
    );
    t.set_session(&chat, &session)
        .expect("a good state is taken");
    // The bad call broke nothing: the next send uses the state that was set.
    let chunks = send_text(&t, &chat, "u2", "two").await;
    assert_eq!(text_of(&chunks), "You said: two");
    assert_eq!(get(&calls, "startSession").as_f64(), Some(0.0));
}

#[wasm_bindgen_test]
async fn an_action_sent_and_never_read_still_runs_to_its_end() {
    let chat = new_chat_id("action-forgotten");
    let (t, _) = transport(&JsValue::UNDEFINED);
    send_text(&t, &chat, "u1", "hi").await;
    let (settled, on_settled) = settle_recorder();
    let options = object(&[("onSettled", on_settled.as_ref().clone())]);
    // A reply that takes four seconds, in many records: a stream that reads only when asked
    // would stop after the first.
    let action = object(&[("type", "slow".into())]);
    // `onClick={() => transport.sendAction(chatId, { type: "slow" })}`: never read.
    let _stream = ok(t.send_action(&chat, &action, &options)).await;
    for _ in 0..100 {
        if settled.length() > 0 {
            break;
        }
        ok(sleep(100)).await;
    }
    assert_eq!(settled.length(), 1, "onSettled fired without a reader");
    assert_eq!(
        get(&t.get_session(&chat), "isStreaming").as_bool(),
        Some(false),
        "the turn ended"
    );
}

#[wasm_bindgen_test]
async fn a_send_aborted_while_the_transport_gets_ready_sends_nothing() {
    let chat = new_chat_id("abort-early");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    let controller = web_sys::AbortController::new().unwrap();
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "never mind")]),
        &object(&[("abortSignal", controller.signal().into())]),
    );
    let pending = t.send_messages(&request);
    controller.abort();
    let error = rejected(pending).await;
    assert_eq!(get(&error, "code").as_string().as_deref(), Some("aborted"));
    ok(sleep(300)).await;
    assert_eq!(
        get(&calls, "startSession").as_f64(),
        Some(0.0),
        "no session made for it"
    );
    let log = ok(admin(SERVER, &chat, "log", "GET", &JsValue::UNDEFINED)).await;
    assert_eq!(
        js_sys::Array::from(&log).length(),
        0,
        "nothing reached the server"
    );
}

#[wasm_bindgen_test]
async fn a_session_set_before_first_use_is_saved_without_waiting_for_a_send() {
    let chat = new_chat_id("set-early");
    let session = a_session(&chat).await;
    let (t, calls) = transport(&JsValue::UNDEFINED);
    t.set_session(&chat, &session).unwrap();
    for _ in 0..50 {
        if js_sys::Array::from(&get(&calls, "sessions")).length() > 0 {
            break;
        }
        ok(sleep(20)).await;
    }
    let sessions = js_sys::Array::from(&get(&calls, "sessions"));
    assert_eq!(sessions.length(), 1, "onSessionChange told at once");
    assert_eq!(
        js_sys::Array::from(&sessions.get(0)).get(0).as_string(),
        Some(chat)
    );
}

#[wasm_bindgen_test]
async fn an_async_save_that_rejects_is_a_storage_error_not_an_unhandled_rejection() {
    let chat = new_chat_id("async-save");
    let save = js_sys::Function::new_with_args("", "return Promise.reject(new Error('quota'));");
    let extra = object(&[("persistence", object(&[("save", save.into())]))]);
    let (t, calls) = transport(&extra);
    assert_eq!(
        text_of(&send_text(&t, &chat, "u1", "hi").await),
        "You said: hi"
    );
    let seen = calls.clone();
    assert!(
        eventually(5_000, move || strings(&event_types(&seen))
            .iter()
            .any(|e| e == "storage-error"))
        .await,
        "the rejection is reported: {:?}",
        strings(&event_types(&calls))
    );
}

#[wasm_bindgen_test]
async fn a_token_needed_after_both_callbacks_were_removed_is_a_missing_callback_error() {
    let chat = new_chat_id("no-callbacks");
    let (t, _) = transport(&JsValue::UNDEFINED);
    t.set_start_session(&JsValue::UNDEFINED);
    t.set_access_token(&JsValue::UNDEFINED);
    assert_eq!(
        send_fails_with(&t, &chat, "u1", "hi").await.as_deref(),
        Some("missing_callback")
    );
}

#[wasm_bindgen_test]
async fn a_custom_store_may_keep_the_state_as_json_text_but_not_load_it_asynchronously() {
    let chat = new_chat_id("store-text");
    let session = a_session(&chat).await;
    let text = js_sys::JSON::stringify(&session).unwrap();
    let literal: String = js_sys::JSON::stringify(&text).unwrap().into();
    // `load` hands back the JSON text it stored: the session is taken from it.
    let load = js_sys::Function::new_with_args("", &format!("return {literal};"));
    let extra = object(&[("persistence", object(&[("load", load.into())]))]);
    let (t, calls) = transport(&extra);
    assert_eq!(
        text_of(&send_text(&t, &chat, "u2", "again").await),
        "You said: again"
    );
    assert_eq!(
        get(&calls, "startSession").as_f64(),
        Some(0.0),
        "the stored session was used"
    );
    // `load` returns a Promise: said plainly, and the chat starts afresh.
    let chat = new_chat_id("store-async");
    let load = js_sys::Function::new_with_args("", "return Promise.resolve(null);");
    let extra = object(&[("persistence", object(&[("load", load.into())]))]);
    let (t, calls) = transport(&extra);
    assert_eq!(
        text_of(&send_text(&t, &chat, "u1", "hi").await),
        "You said: hi"
    );
    let events = js_sys::Array::from(&get(&calls, "events"));
    let said = events.iter().any(|e| {
        get(&e, "type").as_string().as_deref() == Some("storage-error")
            && get(&get(&e, "error"), "message")
                .as_string()
                .is_some_and(|m| m.contains("Promise"))
    });
    assert!(said, "a storage-error names the Promise");
}

/// The `source`s of the `run-pending-version` events recorded so far.
fn pending_sources(calls: &JsValue) -> Vec<String> {
    js_sys::Array::from(&get(calls, "events"))
        .iter()
        .filter(|e| get(e, "type").as_string().as_deref() == Some("run-pending-version"))
        .filter_map(|e| get(&e, "source").as_string())
        .collect()
}

/// Parks the chat's run for its deployment (`true`) or lands it (`false`).
async fn park(chat: &str, parked: bool) {
    let body = object(&[("pendingVersion", parked.into())]);
    ok(admin(SERVER, chat, "faults", "POST", &body)).await;
}

#[wasm_bindgen_test]
async fn a_run_parked_for_its_deployment_is_reported_from_start_send_and_upgrade() {
    let chat = new_chat_id("pending-version");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    park(&chat, true).await;
    let messages = array(&[user_message("u1", "after the deploy")]);
    let stream = ok(t.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED))).await;
    assert_eq!(pending_sources(&calls), ["start", "send"]);
    park(&chat, false).await;
    assert_eq!(
        text_of(&ok(read_all(&stream)).await),
        "You said: after the deploy"
    );

    // A handover whose new run waits: `pending-version` on `.out`, then the reply.
    let body = object(&[("pendingVersion", true.into())]);
    ok(admin(SERVER, &chat, "upgrade", "POST", &body)).await;
    let messages = array(&[
        user_message("u1", "after the deploy"),
        user_message("u2", "hello v3"),
    ]);
    let stream = ok(t.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED))).await;
    let calls_now = calls.clone();
    let upgrade = move || pending_sources(&calls_now).iter().any(|s| s == "upgrade");
    assert!(
        eventually(5_000, upgrade).await,
        "{:?}",
        pending_sources(&calls)
    );
    // The append may be answered after the handover parked the new run: then it says so too.
    let sources = pending_sources(&calls);
    let later: Vec<&str> = sources[2..].iter().map(String::as_str).collect();
    assert!(
        sources[..2] == ["start", "send"] && (later == ["upgrade"] || later == ["send", "upgrade"]),
        "{sources:?}"
    );
    park(&chat, false).await;
    assert_eq!(text_of(&ok(read_all(&stream)).await), "You said: hello v3");
}

#[wasm_bindgen_test]
async fn head_start_to_a_parked_run_is_reported_through_the_cors_exposed_header() {
    let chat = new_chat_id("head-start-pending");
    let url = format!("{SERVER}/api/chat/head-start");
    let (t, calls) = transport(&object(&[("headStart", url.into())]));
    park(&chat, true).await;
    // The deployment lands once the handler has answered (Firefox resolves the handler's
    // response only with its first bytes, and here the whole turn waits for the deployment).
    let landing = chat.clone();
    wasm_bindgen_futures::spawn_local(async move {
        // (It has answered once the message is on `.in`.)
        for _ in 0..100 {
            let state = admin(SERVER, &landing, "state", "GET", &JsValue::UNDEFINED);
            let answered = wasm_bindgen_futures::JsFuture::from(state)
                .await
                .is_ok_and(|s| js_sys::Array::from(&get(&s, "inRecords")).length() > 0);
            if answered {
                break;
            }
            wasm_bindgen_futures::JsFuture::from(sleep(50)).await.ok();
        }
        park(&landing, false).await;
    });
    let messages = array(&[user_message("u1", "parked")]);
    let stream = ok(t.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED))).await;
    assert_eq!(pending_sources(&calls), ["head-start"]);
    assert_eq!(text_of(&ok(read_all(&stream)).await), "You said: parked");
}
