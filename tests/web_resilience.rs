//! The wasm transport when things go wrong: server errors, rate limits, expired tokens, dropped
//! connections, odd SSE framing, malformed data. Faults are injected per chat by the emulator.
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

async fn send_text(t: &Transport, chat: &str, id: &str, text: &str) -> JsValue {
    let messages = array(&[user_message(id, text)]);
    let stream = ok(t.send_messages(&send_request(chat, &messages, &JsValue::UNDEFINED))).await;
    ok(read_all(&stream)).await
}

async fn faults(chat: &str, patch: JsValue) {
    ok(admin(SERVER, chat, "faults", "POST", &patch)).await;
}

async fn log_of(chat: &str) -> Vec<JsValue> {
    let log = ok(admin(SERVER, chat, "log", "GET", &JsValue::UNDEFINED)).await;
    js_sys::Array::from(&log).iter().collect()
}

fn path_ends(entry: &JsValue, suffix: &str) -> bool {
    get(entry, "path")
        .as_string()
        .is_some_and(|p| p.ends_with(suffix))
}

/// The chat's `.in/append` requests after the warm-up turn of [`started`], oldest first.
async fn appends_after_warm_up(chat: &str) -> Vec<JsValue> {
    let mut appends: Vec<JsValue> = log_of(chat)
        .await
        .into_iter()
        .filter(|e| path_ends(e, "/in/append"))
        .collect();
    if !appends.is_empty() {
        appends.remove(0);
    }
    appends
}

fn part_id(entry: &JsValue) -> Option<String> {
    get(&get(entry, "headers"), "x-part-id").as_string()
}

fn status_count(status: u16, count: u32) -> JsValue {
    object(&[("status", status.into()), ("count", count.into())])
}

/// A started chat: one turn done, so later faults hit a known session.
async fn started(prefix: &str) -> (String, Transport, JsValue) {
    let chat = new_chat_id(prefix);
    let (t, calls) = transport(&JsValue::UNDEFINED);
    send_text(&t, &chat, "u0", "warm up").await;
    (chat, t, calls)
}

#[wasm_bindgen_test]
async fn server_errors_on_append_are_retried_with_the_same_part_id() {
    let (chat, t, _) = started("retry500").await;
    faults(&chat, object(&[("appendFailures", status_count(500, 2))])).await;
    assert_eq!(
        text_of(&send_text(&t, &chat, "u1", "again").await),
        "You said: again"
    );
    let appends = appends_after_warm_up(&chat).await;
    assert_eq!(appends.len(), 3, "two failures, then success");
    let ids: Vec<_> = appends.iter().map(part_id).collect();
    assert!(
        ids[0].is_some() && ids.iter().all(|id| *id == ids[0]),
        "{ids:?}"
    );
}

#[wasm_bindgen_test]
async fn a_rate_limited_append_waits_and_retries() {
    let (chat, t, _) = started("retry429").await;
    faults(&chat, object(&[("appendFailures", status_count(429, 1))])).await;
    assert_eq!(
        text_of(&send_text(&t, &chat, "u1", "limited").await),
        "You said: limited"
    );
    let appends = log_of(&chat)
        .await
        .iter()
        .filter(|e| path_ends(e, "/in/append"))
        .count();
    assert_eq!(appends, 3, "warm-up, the 429, the retry");
}

#[wasm_bindgen_test]
async fn persistent_server_errors_fail_the_send_with_a_typed_error() {
    let (chat, t, calls) = started("fail503").await;
    faults(&chat, object(&[("appendFailures", status_count(503, 50))])).await;
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "x")]),
        &JsValue::UNDEFINED,
    );
    let error = rejected(t.send_messages(&request)).await;
    assert_eq!(get(&error, "code").as_string().as_deref(), Some("server"));
    assert_eq!(get(&error, "status").as_f64(), Some(503.0));
    let events = strings(&event_types(&calls));
    assert_eq!(
        events.last().map(String::as_str),
        Some("message-send-failed")
    );
    ok(admin(
        SERVER,
        &chat,
        "faults",
        "DELETE",
        &JsValue::UNDEFINED,
    ))
    .await;
    assert_eq!(
        text_of(&send_text(&t, &chat, "u2", "later").await),
        "You said: later"
    );
}

#[wasm_bindgen_test]
async fn an_expired_token_is_refreshed_once_for_the_append_and_the_stream() {
    let chat = new_chat_id("expired");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    // Tokens minted for this chat are already expired; the refresh gets a good one.
    faults(&chat, object(&[("tokenTtlSeconds", (-10).into())])).await;
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "hi")]),
        &JsValue::UNDEFINED,
    );
    let error = rejected(t.send_messages(&request)).await;
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("unauthorized")
    );
    assert_eq!(
        get(&calls, "accessToken").as_f64(),
        Some(1.0),
        "refreshed once, not in a loop"
    );
    faults(&chat, object(&[("tokenTtlSeconds", 3600.into())])).await;
    assert_eq!(
        text_of(&send_text(&t, &chat, "u2", "now").await),
        "You said: now"
    );
    assert_eq!(get(&calls, "accessToken").as_f64(), Some(2.0));
}

#[wasm_bindgen_test]
async fn a_token_that_expires_mid_stream_is_refreshed_on_reconnect() {
    let chat = new_chat_id("midexpiry");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    // Every token minted for this chat lives 1 s; the slow reply takes 4 s and its connection
    // drops after ~2.5 s, so the reconnect meets a 401 (the JS transport's W7).
    faults(
        &chat,
        object(&[
            ("tokenTtlSeconds", 1.into()),
            ("dropAfterRecords", 25.into()),
        ]),
    )
    .await;
    let chunks = send_text(&t, &chat, "u1", "slow please").await;
    assert_eq!(text_of(&chunks), slow_reply("slow please"));
    let kinds = strings(&types(&chunks));
    assert_eq!(
        kinds.iter().filter(|k| *k == "start").count(),
        1,
        "no duplicate start"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("finish"));
    assert!(get(&calls, "accessToken").as_f64().unwrap() >= 1.0);
    let refused = log_of(&chat)
        .await
        .iter()
        .filter(|e| path_ends(e, "/out") && get(e, "status").as_f64() == Some(401.0))
        .count();
    assert!(refused >= 1, "a reconnect met the expired token");
}

#[wasm_bindgen_test]
async fn a_token_about_to_expire_is_refreshed_before_the_next_send_not_after_a_401() {
    let chat = new_chat_id("nearexpiry");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    // Tokens for this chat live 35 s: fresh at the first send (5 s to spare on a slow
    // machine), within 30 s of their end after a 6 s wait.
    faults(&chat, object(&[("tokenTtlSeconds", 35.into())])).await;
    send_text(&t, &chat, "u1", "first").await;
    assert_eq!(get(&calls, "accessToken").as_f64(), Some(0.0));
    ok(sleep(6_000)).await;
    assert_eq!(
        text_of(&send_text(&t, &chat, "u2", "second").await),
        "You said: second"
    );
    assert_eq!(
        get(&calls, "accessToken").as_f64(),
        Some(1.0),
        "refreshed once, before it was used"
    );
    let refused: Vec<u16> = log_of(&chat)
        .await
        .iter()
        .filter_map(|e| get(e, "status").as_f64())
        .map(|s| s as u16)
        .filter(|s| *s >= 400)
        .collect();
    assert!(refused.is_empty(), "no request was refused: {refused:?}");
}

#[wasm_bindgen_test]
async fn a_dropped_connection_mid_reply_resumes_without_duplicates() {
    let (chat, t, _) = started("drop").await;
    let full = text_of(&send_text(&t, &chat, "u1", "slow reference").await);
    faults(&chat, object(&[("dropAfterRecords", 7.into())])).await;
    let chunks = send_text(&t, &chat, "u2", "slow reference").await;
    assert_eq!(text_of(&chunks), full, "the same reply, each delta once");
    let outs = log_of(&chat)
        .await
        .iter()
        .filter(|e| path_ends(e, "/out"))
        .count();
    assert!(outs >= 4, "reconnected ({outs} .out requests)");
}

#[wasm_bindgen_test]
async fn odd_framing_and_duplicates_decode_to_the_same_reply() {
    let (chat, t, _) = started("framing").await;
    faults(
        &chat,
        object(&[
            ("tinyWrites", true.into()),
            ("crlf", true.into()),
            ("comments", true.into()),
            ("duplicateRecords", true.into()),
        ]),
    )
    .await;
    let chunks = send_text(&t, &chat, "u1", "héllo wörld ✓ 🚀").await;
    assert_eq!(text_of(&chunks), "You said: héllo wörld ✓ 🚀");
    let kinds = strings(&types(&chunks));
    assert_eq!(kinds.iter().filter(|k| *k == "start").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "finish").count(), 1);
}

#[wasm_bindgen_test]
async fn a_server_error_event_mid_stream_resumes() {
    let (chat, t, _) = started("errevent").await;
    faults(&chat, object(&[("errorEventAfterRecords", 4.into())])).await;
    let chunks = send_text(&t, &chat, "u1", "slow error-free words").await;
    let kinds = strings(&types(&chunks));
    assert_eq!(kinds.first().map(String::as_str), Some("start"));
    assert_eq!(kinds.last().map(String::as_str), Some("finish"));
    assert_eq!(text_of(&chunks), slow_reply("slow error-free words"));
    let opened = log_of(&chat)
        .await
        .iter()
        .filter(|e| path_ends(e, "/out"))
        .count();
    assert!(
        opened >= 3,
        "the error event was met and the stream resumed ({opened})"
    );
}

#[wasm_bindgen_test]
async fn stream_open_failures_are_retried() {
    let (chat, t, _) = started("out500").await;
    faults(&chat, object(&[("outFailures", status_count(500, 2))])).await;
    assert_eq!(
        text_of(&send_text(&t, &chat, "u1", "ok").await),
        "You said: ok"
    );
}

#[wasm_bindgen_test]
async fn malformed_stream_data_is_a_protocol_error_not_a_dead_module() {
    let chat = new_chat_id("garbage");
    // The app's fetch hook lets the test play a broken server for `.out` only.
    let made = make_options(SERVER, &JsValue::UNDEFINED);
    let options = get(&made, "options");
    let garbage = js_sys::Function::new_with_args(
        "url, init, ctx",
        "if (ctx.endpoint === 'out' && !globalThis.__healed) {
           return Promise.resolve(new Response('event: batch\\ndata: {\"records\": [{\"seq_num\": \"x\"}\\n\\n', { status: 200, headers: { 'content-type': 'text/event-stream' } }));
         }
         return fetch(url, init);",
    );
    js_sys::Reflect::set(&options, &"fetch".into(), &garbage).unwrap();
    let t = transport_with(&options);
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "hi")]),
        &JsValue::UNDEFINED,
    );
    let stream = ok(t.send_messages(&request)).await;
    let error = rejected(read_all(&stream)).await;
    assert_eq!(get(&error, "code").as_string().as_deref(), Some("protocol"));
    let calls = get(&made, "calls");
    assert!(strings(&event_types(&calls))
        .iter()
        .any(|e| e == "stream-error"));
    // The module still works: the next send streams normally.
    js_sys::Reflect::set(&js_sys::global(), &"__healed".into(), &true.into()).unwrap();
    assert_eq!(
        text_of(&send_text(&t, &chat, "u2", "again").await),
        "You said: again"
    );
}

#[wasm_bindgen_test]
async fn a_network_chunk_larger_than_a_read_slice_decodes_whole() {
    let chat = new_chat_id("hugechunk");
    // One 500 KB body chunk (several read slices) holding 2000 records of multi-byte text,
    // so slice boundaries fall inside records and inside UTF-8 sequences.
    let made = make_options(SERVER, &JsValue::UNDEFINED);
    let options = get(&made, "options");
    let huge = js_sys::Function::new_with_args(
        "url, init, ctx",
        "if (ctx.endpoint !== 'out') return fetch(url, init);
         const records = [];
         for (let i = 0; i < 2000; i++) {
           const delta = 'é🚀' + String(i).padStart(4, '0') + 'ü'.repeat(100);
           const body = JSON.stringify({ data: { type: 'text-delta', id: 't', delta }, id: 'p' + i });
           records.push({ seq_num: i, timestamp: 1, body, headers: [] });
         }
         records.push({ seq_num: 2000, timestamp: 1, body: '',
           headers: [['trigger-control', 'turn-complete']] });
         const text = 'event: batch\\ndata: ' + JSON.stringify({ records, tail: { seq_num: 2001, timestamp: 1 } }) + '\\n\\n';
         const bytes = new TextEncoder().encode(text);
         globalThis.__hugeChunkBytes = bytes.length;
         const body = new ReadableStream({ start(c) { c.enqueue(bytes); } });
         return Promise.resolve(new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }));",
    );
    js_sys::Reflect::set(&options, &"fetch".into(), &huge).unwrap();
    let t = transport_with(&options);
    let request = send_request(
        &chat,
        &array(&[user_message("u1", "hi")]),
        &JsValue::UNDEFINED,
    );
    let stream = ok(t.send_messages(&request)).await;
    let chunks = ok(read_all(&stream)).await;
    let bytes = js_sys::Reflect::get(&js_sys::global(), &"__hugeChunkBytes".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        bytes > 4.0 * 65536.0,
        "the chunk spans several slices ({bytes} bytes)"
    );
    let expected: String = (0..2000)
        .map(|i| format!("é🚀{i:04}{}", "ü".repeat(100)))
        .collect();
    assert_eq!(text_of(&chunks), expected);
}

#[wasm_bindgen(inline_js = r#"
// The page's view of the network, switchable: `navigator.onLine` and the `offline` / `online`
// events as the browser reports them, and a `fetch` option that is refused the way a browser
// refuses requests with no network (a TypeError, nothing reaches the server).
export function offlineSwitch() {
  const real = Object.getOwnPropertyDescriptor(Navigator.prototype, "onLine");
  const net = { offline: false, refused: 0 };
  Object.defineProperty(navigator, "onLine", {
    configurable: true,
    get: () => !net.offline && real.get.call(navigator),
  });
  net.fetch = (url, init) => {
    if (!net.offline) return fetch(url, init);
    net.refused++;
    return Promise.reject(new TypeError("Failed to fetch"));
  };
  net.set = (offline) => {
    net.offline = offline;
    window.dispatchEvent(new Event(offline ? "offline" : "online"));
  };
  net.restore = () => delete navigator.onLine;
  return net;
}

// A page that freezes (as one closed or discarded by the browser): from `freeze()` on, its
// requests never leave.
export function freezable(fetchFn) {
  const page = { frozen: false };
  page.fetch = (url, init) => (page.frozen ? new Promise(() => {}) : fetchFn(url, init));
  page.freeze = () => (page.frozen = true);
  return page;
}

export function settledWithin(promise, ms) {
  return Promise.race([
    promise.then(() => "resolved", () => "rejected"),
    new Promise((r) => setTimeout(() => r("pending"), ms)),
  ]);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = offlineSwitch)]
    fn offline_switch() -> JsValue;
    #[wasm_bindgen(js_name = settledWithin)]
    fn settled_within(promise: &js_sys::Promise, ms: u32) -> js_sys::Promise;
    fn freezable(fetch: &JsValue) -> JsValue;
}

fn set_offline(net: &JsValue, offline: bool) {
    let set: js_sys::Function = get(net, "set").into();
    set.call1(net, &offline.into()).unwrap();
}

#[wasm_bindgen_test]
async fn a_send_made_offline_waits_for_the_network_then_goes_out_once() {
    let net = offline_switch();
    let chat = new_chat_id("offline");
    let (t, calls) = transport(&object(&[("fetch", get(&net, "fetch"))]));
    send_text(&t, &chat, "u0", "warm up").await;

    set_offline(&net, true);
    let messages = array(&[user_message("u1", "written offline")]);
    let send = t.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED));
    // Longer than the retry budget lasts online (five backoffs, at most 9.3 s).
    let state = ok(settled_within(&send, 10_000)).await;
    assert_eq!(
        state.as_string().as_deref(),
        Some("pending"),
        "the send waits"
    );
    assert!(get(&net, "refused").as_f64().unwrap() >= 2.0);
    let link = t.connection_state(&chat);
    assert_eq!(get(&link, "state").as_string().as_deref(), Some("offline"));
    assert_eq!(get(&link, "pendingSends").as_f64(), Some(1.0));

    set_offline(&net, false);
    let stream = ok(send).await;
    let chunks = ok(read_all(&stream)).await;
    assert_eq!(text_of(&chunks), "You said: written offline");
    let link = t.connection_state(&chat);
    assert_eq!(get(&link, "state").as_string().as_deref(), Some("idle"));
    // The same story as events, in order, ending idle.
    let states: Vec<String> = js_sys::Array::from(&get(&calls, "events"))
        .iter()
        .filter(|e| get(e, "type").as_string().as_deref() == Some("connection-state"))
        .filter_map(|e| get(&e, "state").as_string())
        .collect();
    let offline = states
        .iter()
        .position(|s| s == "offline")
        .expect("offline reported");
    assert!(states[offline..].iter().any(|s| s == "live"), "{states:?}");
    assert_eq!(
        states.last().map(String::as_str),
        Some("idle"),
        "{states:?}"
    );
    let appends: Vec<JsValue> = log_of(&chat)
        .await
        .into_iter()
        .filter(|e| path_ends(e, "/in/append"))
        .collect();
    assert_eq!(
        appends.len(),
        2,
        "one append per message reached the server"
    );
    let restore: js_sys::Function = get(&net, "restore").into();
    restore.call0(&net).unwrap();
}

#[wasm_bindgen_test]
async fn a_send_left_waiting_by_a_page_that_went_away_is_sent_by_the_next_page_once() {
    let net = offline_switch();
    let chat = new_chat_id("outbox");
    let storage = object(&[("namespace", new_chat_id("ns").into())]);
    let page1 = freezable(&get(&net, "fetch"));
    let (a, _) = transport(&object(&[
        ("fetch", get(&page1, "fetch")),
        ("persistence", storage.clone()),
    ]));
    send_text(&a, &chat, "u0", "warm up").await;

    set_offline(&net, true);
    let messages = array(&[user_message("u1", "written offline")]);
    let send = a.send_messages(&send_request(&chat, &messages, &JsValue::UNDEFINED));
    let state = ok(settled_within(&send, 1_500)).await;
    assert_eq!(state.as_string().as_deref(), Some("pending"));
    // The page goes away with its send; later the browser is online again.
    let freeze: js_sys::Function = get(&page1, "freeze").into();
    freeze.call0(&page1).unwrap();
    set_offline(&net, false);

    let (b, calls) = transport(&object(&[("persistence", storage)]));
    let request = object(&[("chatId", chat.clone().into())]);
    let stream = ok(b.reconnect_to_stream(&request)).await;
    assert!(!stream.is_null(), "the saved send's turn");
    let chunks = ok(read_all(&stream)).await;
    assert_eq!(text_of(&chunks), "You said: written offline");
    let appends = log_of(&chat)
        .await
        .into_iter()
        .filter(|e| path_ends(e, "/in/append"))
        .count();
    assert_eq!(appends, 2, "the warm-up and the saved send, once");
    assert!(strings(&event_types(&calls)).contains(&"message-sent".to_string()));
    let stored = b.get_session(&chat);
    assert!(
        get(&stored, "pendingSend").is_undefined(),
        "acknowledged: forgotten"
    );
    let restore: js_sys::Function = get(&net, "restore").into();
    restore.call0(&net).unwrap();
}

#[wasm_bindgen_test]
async fn an_append_whose_answer_was_lost_is_retried_and_answered_once() {
    // The server stored the message, but its answer never came back (a 502 from a proxy): the
    // retry, with the same X-Part-Id, gets the stored seq, and the agent answers once.
    let (chat, t, _) = started("lostanswer").await;
    faults(
        &chat,
        object(&[("appendLostAnswers", status_count(502, 1))]),
    )
    .await;
    let chunks = send_text(&t, &chat, "u1", "only once").await;
    assert_eq!(text_of(&chunks), "You said: only once");
    let appends = appends_after_warm_up(&chat).await;
    assert_eq!(appends.len(), 2, "the lost answer, then the retry");
    assert!(part_id(&appends[0]).is_some());
    assert_eq!(part_id(&appends[0]), part_id(&appends[1]));
    let state = ok(admin(SERVER, &chat, "state", "GET", &JsValue::UNDEFINED)).await;
    let records = js_sys::Array::from(&get(&state, "inRecords")).length();
    assert_eq!(records, 2, "the warm-up and this message, each stored once");
    assert_eq!(get(&state, "turns").as_f64(), Some(2.0));
}

#[wasm_bindgen_test]
async fn a_stream_the_server_numbered_again_from_zero_still_shows_the_next_reply() {
    let chat = new_chat_id("renumbered");
    let (t, _) = transport(&JsValue::UNDEFINED);
    // A long first reply: the chat's cursor ends well past where the new numbering starts.
    let first = send_text(&t, &chat, "u1", "stream 40").await;
    assert!(!text_of(&first).is_empty());
    // The server dropped the chat's idle `.out` stream and made it again, numbered from 0.
    ok(admin(
        SERVER,
        &chat,
        "renumber-out",
        "POST",
        &JsValue::UNDEFINED,
    ))
    .await;
    assert_eq!(
        text_of(&send_text(&t, &chat, "u2", "two").await),
        "You said: two"
    );
    // And a new page, from the state saved in the new numbering.
    let saved = t.get_session(&chat);
    let (page, _) = transport(&object(&[("sessions", object(&[(chat.as_str(), saved)]))]));
    assert_eq!(
        text_of(&send_text(&page, &chat, "u3", "three").await),
        "You said: three"
    );
}
