//! Reload and resume: persisted sessions, `reconnectToStream`, stop after resume, abort
//! semantics, and storage that is missing or corrupt.
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A transport persisting to localStorage under `namespace` (a "page" of the app).
fn page(namespace: &str) -> (Transport, JsValue) {
    let extra = object(&[("persistence", object(&[("namespace", namespace.into())]))]);
    let made = make_options(SERVER, &extra);
    let transport = transport_with(&get(&made, "options"));
    (transport, get(&made, "calls"))
}

fn reconnect_request(chat: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let mut pairs = vec![("chatId", JsValue::from_str(chat))];
    pairs.extend(extra.iter().cloned());
    object(&pairs)
}

async fn log_of(chat: &str) -> Vec<JsValue> {
    let log = ok(admin(SERVER, chat, "log", "GET", &JsValue::UNDEFINED)).await;
    js_sys::Array::from(&log).iter().collect()
}

/// The stops in the chat's request log 300 ms after there are `n` (polled for up to 5 s: a
/// stop after an abort is not waited for; the 300 ms let a duplicate show), or as many as
/// there are then.
async fn stops_reaching(chat: &str, n: usize) -> usize {
    for _ in 0..50 {
        if stops_in(&log_of(chat).await) >= n {
            break;
        }
        ok(sleep(100)).await;
    }
    ok(sleep(300)).await;
    stops_in(&log_of(chat).await)
}

fn stops_in(log: &[JsValue]) -> usize {
    log.iter()
        .filter(|e| {
            get(e, "body")
                .as_string()
                .is_some_and(|b| b.contains(r#""kind":"stop""#))
        })
        .count()
}

async fn turn_active(chat: &str) -> bool {
    let state = ok(admin(SERVER, chat, "state", "GET", &JsValue::UNDEFINED)).await;
    get(&state, "currentTurnActive").as_bool().unwrap_or(false)
}

async fn send(t: &Transport, chat: &str, id: &str, text: &str, extra: &JsValue) -> JsValue {
    let request = send_request(chat, &array(&[user_message(id, text)]), extra);
    ok(t.send_messages(&request)).await
}

#[wasm_bindgen_test]
async fn a_reload_mid_reply_replays_the_whole_turn_exactly_once() {
    let chat = new_chat_id("reload");
    let namespace = new_chat_id("ns");
    let (a, _) = page(&namespace);
    let stream = send(&a, &chat, "u1", "slow story", &JsValue::UNDEFINED).await;
    let partial = ok(read_n(&stream, 6)).await;
    assert!(js_sys::Array::from(&partial).length() >= 6);
    a.dispose(); // the page goes away without stopping the agent
    let (b, calls) = page(&namespace);
    let persisted = b.get_session(&chat);
    assert_eq!(get(&persisted, "isStreaming").as_bool(), Some(true));
    let resumed = ok(b.reconnect_to_stream(&reconnect_request(&chat, &[]))).await;
    assert!(!resumed.is_null(), "a turn is in flight");
    let chunks = ok(read_all(&resumed)).await;
    let kinds = strings(&types(&chunks));
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("start"),
        "replayed from the turn start"
    );
    assert_eq!(kinds.iter().filter(|k| *k == "start").count(), 1);
    assert_eq!(kinds.last().map(String::as_str), Some("finish"));
    // Every delta once, in order: nothing lost or repeated in the middle either.
    assert_eq!(text_of(&chunks), slow_reply("slow story"));
    assert_eq!(
        stops_in(&log_of(&chat).await),
        0,
        "a reload does not stop the agent"
    );
    let events: Vec<JsValue> = js_sys::Array::from(&get(&calls, "events")).iter().collect();
    let connected = events
        .iter()
        .find(|e| get(e, "type").as_string().as_deref() == Some("stream-connected"))
        .unwrap();
    assert_eq!(get(connected, "resumed").as_bool(), Some(true));
    assert_eq!(
        get(&b.get_session(&chat), "isStreaming").as_bool(),
        Some(false)
    );
}

#[wasm_bindgen_test]
async fn resuming_an_idle_chat_returns_nothing_or_closes_at_once() {
    let chat = new_chat_id("idle");
    let namespace = new_chat_id("ns");
    let (a, _) = page(&namespace);
    ok(read_all(
        &send(&a, &chat, "u1", "hi", &JsValue::UNDEFINED).await,
    ))
    .await;
    // isStreaming === false was persisted: nothing to resume, no request.
    let (b, _) = page(&namespace);
    let before = log_of(&chat).await.len();
    assert!(ok(b.reconnect_to_stream(&reconnect_request(&chat, &[])))
        .await
        .is_null());
    assert_eq!(log_of(&chat).await.len(), before);
    // An app that persisted only token + cursor (no isStreaming): the server says "settled".
    let session = a.get_session(&chat);
    let hydrated = object(&[
        ("publicAccessToken", get(&session, "publicAccessToken")),
        ("lastEventId", get(&session, "lastEventId")),
    ]);
    let extra = object(&[
        ("persistence", "none".into()),
        ("sessions", object(&[(chat.as_str(), hydrated)])),
    ]);
    let made = make_options(SERVER, &extra);
    let c = transport_with(&get(&made, "options"));
    let started = js_sys::Date::now();
    let resumed = ok(c.reconnect_to_stream(&reconnect_request(&chat, &[]))).await;
    let chunks = ok(read_all(&resumed)).await;
    assert_eq!(js_sys::Array::from(&chunks).length(), 0);
    assert!(
        js_sys::Date::now() - started < 5_000.0,
        "closed on X-Session-Settled, no long poll"
    );
    let log = log_of(&chat).await;
    let peek = log
        .last()
        .map(|e| get(&get(e, "headers"), "x-peek-settled"));
    assert_eq!(peek.and_then(|v| v.as_string()).as_deref(), Some("1"));
}

#[wasm_bindgen_test]
async fn stop_after_a_reload_stops_the_servers_turn() {
    let chat = new_chat_id("stop");
    let namespace = new_chat_id("ns");
    let (a, _) = page(&namespace);
    let stream = send(&a, &chat, "u1", "slow and long", &JsValue::UNDEFINED).await;
    ok(read_n(&stream, 4)).await;
    a.dispose();
    let (b, _) = page(&namespace);
    let resumed = ok(b.reconnect_to_stream(&reconnect_request(&chat, &[]))).await;
    ok(read_n(&resumed, 6)).await;
    let stopped = ok(b.stop_generation(&chat)).await;
    assert_eq!(stopped.as_bool(), Some(true));
    ok(read_all(&resumed)).await; // ends cleanly
    assert_eq!(stops_in(&log_of(&chat).await), 1);
    for _ in 0..40 {
        if !turn_active(&chat).await {
            break;
        }
        ok(sleep(100)).await;
    }
    assert!(!turn_active(&chat).await, "the agent stopped");
    // A second stop for the same turn is not sent again.
    ok(b.stop_generation(&chat)).await;
    assert_eq!(stops_in(&log_of(&chat).await), 1);
    // The next turn carries none of the stopped turn's output.
    let next = ok(read_all(
        &send(&b, &chat, "u2", "next", &JsValue::UNDEFINED).await,
    ))
    .await;
    assert_eq!(text_of(&next), "You said: next");
}

#[wasm_bindgen_test]
async fn aborting_an_owning_send_stops_the_turn_but_aborting_a_resume_only_detaches() {
    let chat = new_chat_id("abort");
    let namespace = new_chat_id("ns");
    let (a, _) = page(&namespace);
    let controller = web_sys::AbortController::new().unwrap();
    let extra = object(&[("abortSignal", controller.signal().into())]);
    let stream = send(&a, &chat, "u1", "slow one", &extra).await;
    ok(read_n(&stream, 3)).await;
    controller.abort();
    ok(read_all(&stream)).await;
    assert_eq!(
        stops_reaching(&chat, 1).await,
        1,
        "abort stops the owned turn (W13)"
    );

    let second = send(&a, &chat, "u2", "slow two", &JsValue::UNDEFINED).await;
    ok(read_n(&second, 3)).await;
    a.dispose();
    let (b, _) = page(&namespace);
    let detach = web_sys::AbortController::new().unwrap();
    let request = reconnect_request(&chat, &[("abortSignal", detach.signal().into())]);
    let resumed = ok(b.reconnect_to_stream(&request)).await;
    ok(read_n(&resumed, 3)).await;
    detach.abort();
    ok(read_all(&resumed)).await;
    ok(sleep(300)).await;
    assert_eq!(
        stops_in(&log_of(&chat).await),
        1,
        "a resumed stream only detaches"
    );

    // Unless the resume asks for it (`stopOnAbort: true`).
    let third = send(&b, &chat, "u3", "slow three", &JsValue::UNDEFINED).await;
    ok(read_n(&third, 3)).await;
    b.dispose();
    let (c, _) = page(&namespace);
    let stopper = web_sys::AbortController::new().unwrap();
    let request = reconnect_request(
        &chat,
        &[
            ("abortSignal", stopper.signal().into()),
            ("stopOnAbort", true.into()),
        ],
    );
    let resumed = ok(c.reconnect_to_stream(&request)).await;
    ok(read_n(&resumed, 3)).await;
    stopper.abort();
    ok(read_all(&resumed)).await;
    assert_eq!(
        stops_reaching(&chat, 2).await,
        2,
        "stopOnAbort: the abort stops the agent"
    );
}

#[wasm_bindgen_test]
async fn corrupt_storage_degrades_to_memory_with_a_warning() {
    let chat = new_chat_id("corrupt");
    let namespace = new_chat_id("ns");
    let key = format!("{namespace}:v1:{chat}");
    storage_set(&key, "{\"v\":1,\"chatId\":");
    let (t, calls) = page(&namespace);
    let chunks = ok(read_all(
        &send(&t, &chat, "u1", "hi", &JsValue::UNDEFINED).await,
    ))
    .await;
    assert_eq!(text_of(&chunks), "You said: hi");
    assert!(strings(&event_types(&calls))
        .iter()
        .any(|e| e == "storage-error"));
    // The good state replaced the corrupt entry.
    let stored = storage_get(&key).unwrap();
    assert!(stored.contains("publicAccessToken"), "{stored}");
}

#[wasm_bindgen_test]
async fn the_js_persistence_contract_works_and_reports_removal_with_null() {
    let chat = new_chat_id("contract");
    let throwing = js_sys::Function::new_with_args("chatId, session", "throw new Error('app bug')");
    let extra = object(&[("persistence", "none".into())]);
    let made = make_options(SERVER, &extra);
    let options = get(&made, "options");
    let calls = get(&made, "calls");
    let t = transport_with(&options);
    ok(read_all(
        &send(&t, &chat, "u1", "hi", &JsValue::UNDEFINED).await,
    ))
    .await;
    // The live array (js_sys::Array::from would copy it).
    let sessions: js_sys::Array = get(&calls, "sessions").unchecked_into();
    assert!(
        sessions.length() >= 2,
        "start, send and turn-complete are reported"
    );
    let last = js_sys::Array::from(&sessions.get(sessions.length() - 1));
    assert_eq!(last.get(0).as_string().as_deref(), Some(chat.as_str()));
    assert_eq!(get(&last.get(1), "isStreaming").as_bool(), Some(false));
    t.remove_session(&chat);
    let last = js_sys::Array::from(&sessions.get(sessions.length() - 1));
    assert!(
        last.get(1).is_null(),
        "removal is reported as null (W16): {:?}",
        js_sys::JSON::stringify(&sessions.into())
    );
    // A throwing onSessionChange never breaks a send (W15).
    t.set_on_session_change(&throwing.into());
    let chunks = ok(read_all(
        &send(&t, &chat, "u2", "still", &JsValue::UNDEFINED).await,
    ))
    .await;
    assert_eq!(text_of(&chunks), "You said: still");
}

#[wasm_bindgen_test]
async fn a_watcher_follows_every_turn_of_another_device_on_one_stream() {
    let chat = new_chat_id("watch");
    let (sender, _) = page(&new_chat_id("ns"));
    let first = send(&sender, &chat, "u1", "hello", &JsValue::UNDEFINED).await;
    ok(read_all(&first)).await;

    // Another device: only the session state, and `watch: true`.
    let sessions = object(&[(chat.as_str(), sender.get_session(&chat))]);
    let extra = object(&[("watch", true.into()), ("sessions", sessions)]);
    let made = make_options(SERVER, &extra);
    let watcher = transport_with(&get(&made, "options"));
    let stream = ok(watcher.reconnect_to_stream(&reconnect_request(&chat, &[]))).await;
    assert!(
        !stream.is_null(),
        "a watcher needs no turn in flight (a plain resume would return null here)"
    );

    for (id, text) in [("u2", "second"), ("u3", "third")] {
        let reply = send(&sender, &chat, id, text, &JsValue::UNDEFINED).await;
        ok(read_all(&reply)).await;
    }
    let chunks = ok(read_until(&stream, "finish", 2)).await;
    let text = text_of(&chunks);
    assert!(
        text.contains("second") && text.contains("third"),
        "both later turns arrive on the one stream: {text}"
    );
    assert!(
        !text.contains("hello"),
        "it starts from the session's cursor: {text}"
    );
    let kinds = strings(&types(&chunks));
    assert_eq!(
        kinds.iter().filter(|k| *k == "start").count(),
        2,
        "{kinds:?}"
    );
    // (The second boundary may come after the reply's `finish`: polled.)
    let calls = get(&made, "calls");
    let completed = move || {
        strings(&event_types(&calls))
            .iter()
            .filter(|e| *e == "turn-completed")
            .count()
    };
    let completed2 = completed.clone();
    assert!(
        eventually(5_000, move || completed2() == 2).await,
        "turn-completed events: {}",
        completed()
    );
    assert_eq!(
        ok(state_after(&stream, 400)).await.as_string().as_deref(),
        Some("open"),
        "the stream stays open for the next turn"
    );
    watcher.dispose();
    sender.dispose();
}

/// A transport that starts from `saved` (the app's stored session), persisting nothing.
fn reloaded(chat: &str, saved: &JsValue, extra: &[(&str, JsValue)]) -> (Transport, JsValue) {
    let mut pairs = vec![
        ("persistence", JsValue::from_str("none")),
        ("sessions", object(&[(chat, saved.clone())])),
    ];
    pairs.extend(extra.iter().cloned());
    let made = make_options(SERVER, &object(&pairs));
    (transport_with(&get(&made, "options")), get(&made, "calls"))
}

async fn replay_all(t: &Transport, chat: &str) -> JsValue {
    let resumed = ok(t.reconnect_to_stream(&reconnect_request(chat, &[]))).await;
    assert!(
        !resumed.is_null(),
        "the stored session says a turn is in flight"
    );
    ok(read_all(&resumed)).await
}

fn count_of(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[wasm_bindgen_test]
async fn a_replay_merges_the_deltas_that_arrive_together_and_shows_the_same_reply() {
    let chat = new_chat_id("coalesce");
    let (a, _) = page(&new_chat_id("ns"));
    let stream = send(&a, &chat, "u1", "stream 400", &JsValue::UNDEFINED).await;
    // What the app had stored when the send returned: the turn in flight, cursor at its start.
    let saved = a.get_session(&chat);
    assert_eq!(get(&saved, "isStreaming").as_bool(), Some(true));
    ok(read_all(&stream)).await;

    // Reloads after the reply finished: the whole turn is replayed, as fast as it can be read.
    let (merged, _) = reloaded(&chat, &saved, &[]);
    let merged = replay_all(&merged, &chat).await;
    let (one_by_one, _) = reloaded(&chat, &saved, &[("coalesceDeltas", false.into())]);
    let one_by_one = replay_all(&one_by_one, &chat).await;

    assert_eq!(text_of(&merged), text_of(&one_by_one), "the same reply");
    let merged_kinds = strings(&types(&merged));
    let single_kinds = strings(&types(&one_by_one));
    assert_eq!(
        count_of(&single_kinds, "text-delta"),
        400,
        "one chunk per record when off"
    );
    let deltas = count_of(&merged_kinds, "text-delta");
    assert!(
        (1..=100).contains(&deltas),
        "{deltas} text-deltas: the replay arrives in a few reads"
    );
    let others = |kinds: &[String]| -> Vec<String> {
        kinds
            .iter()
            .filter(|k| *k != "text-delta")
            .cloned()
            .collect()
    };
    assert_eq!(
        others(&merged_kinds),
        others(&single_kinds),
        "every other chunk as sent"
    );
}

#[wasm_bindgen_test]
fn only_consecutive_plain_deltas_of_one_part_are_merged() {
    let input = js_sys::JSON::parse(
        r#"[
          {"type":"text-start","id":"t1"},
          {"type":"text-delta","id":"t1","delta":"a"},
          {"type":"text-delta","id":"t1","delta":"b"},
          {"type":"text-delta","id":"t2","delta":"x"},
          {"type":"text-delta","id":"t2","delta":"y","providerMetadata":{"p":{}}},
          {"type":"text-delta","id":"t2","delta":"z"},
          {"type":"reasoning-delta","id":"t2","delta":"r1"},
          {"type":"reasoning-delta","id":"t2","delta":"r2"},
          {"type":"tool-input-delta","toolCallId":"c1","inputTextDelta":"{\"a\""},
          {"type":"tool-input-delta","toolCallId":"c1","inputTextDelta":":1}"},
          {"type":"tool-input-delta","toolCallId":"c2","inputTextDelta":"{}"},
          {"type":"text-delta","id":"t1","delta":5},
          {"type":"text-delta","id":"t1","delta":"c"},
          null,
          {"type":"text-delta","id":"t1","delta":"d"},
          {"type":"text-end","id":"t1"}
        ]"#,
    )
    .unwrap();
    let merged = merge_deltas(&input);
    let expected = js_sys::JSON::parse(
        r#"[
          {"type":"text-start","id":"t1"},
          {"type":"text-delta","id":"t1","delta":"ab"},
          {"type":"text-delta","id":"t2","delta":"x"},
          {"type":"text-delta","id":"t2","delta":"y","providerMetadata":{"p":{}}},
          {"type":"text-delta","id":"t2","delta":"z"},
          {"type":"reasoning-delta","id":"t2","delta":"r1r2"},
          {"type":"tool-input-delta","toolCallId":"c1","inputTextDelta":"{\"a\":1}"},
          {"type":"tool-input-delta","toolCallId":"c2","inputTextDelta":"{}"},
          {"type":"text-delta","id":"t1","delta":5},
          {"type":"text-delta","id":"t1","delta":"c"},
          null,
          {"type":"text-delta","id":"t1","delta":"d"},
          {"type":"text-end","id":"t1"}
        ]"#,
    )
    .unwrap();
    let text = |v: &JsValue| String::from(js_sys::JSON::stringify(v).unwrap());
    assert_eq!(text(&merged), text(&expected));
    let first = js_sys::Array::from(&input).get(1);
    assert_eq!(
        get(&first, "delta").as_string().as_deref(),
        Some("a"),
        "the input is left alone"
    );
}

#[wasm_bindgen_test]
async fn a_resume_given_up_while_the_transport_loads_leaves_the_chat_to_the_next_one() {
    // React StrictMode's first mount, or a resume that a newer one aborted: both are asked
    // before the transport is ready.
    let chat = new_chat_id("resume-race");
    let namespace = new_chat_id("ns");
    let (a, _) = page(&namespace);
    let stream = send(&a, &chat, "u1", "slow story", &JsValue::UNDEFINED).await;
    ok(read_n(&stream, 3)).await;
    a.dispose();
    let (b, _) = page(&namespace);
    let first = web_sys::AbortController::new().unwrap();
    let given_up = b.reconnect_to_stream(&reconnect_request(
        &chat,
        &[("abortSignal", first.signal().into())],
    ));
    first.abort();
    let newer = b.reconnect_to_stream(&reconnect_request(&chat, &[]));
    assert!(ok(given_up).await.is_null());
    let resumed = ok(newer).await;
    assert!(!resumed.is_null(), "the newer resume gets the turn");
    let kinds = strings(&types(&ok(read_all(&resumed)).await));
    assert_eq!(kinds.last().map(String::as_str), Some("finish"));
}

#[wasm_bindgen_test]
async fn a_resume_with_unusable_headers_rejects_naming_them() {
    let chat = new_chat_id("badheaders");
    let (b, _) = page(&new_chat_id("ns"));
    // (A number would be sent as `fetch` writes it; an object is refused.)
    let headers = object(&[("X-B", "3".into()), ("X-C", js_sys::Object::new().into())]);
    let error =
        rejected(b.reconnect_to_stream(&reconnect_request(&chat, &[("headers", headers)]))).await;
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("invalid_option")
    );
    let message = get(&error, "message").as_string().unwrap();
    assert!(message.contains("headers"), "{message}");
}
