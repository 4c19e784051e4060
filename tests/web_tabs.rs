//! `multiTab: true` in real browsers: several transports in one page are several tabs (each
//! has its own tab id and BroadcastChannel; Web Locks are shared by the origin), plus a raw
//! channel speaking the JS coordinator's messages as a tab running the official transport.
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn tab() -> (Transport, JsValue) {
    let extra = object(&[("multiTab", true.into())]);
    let made = make_options(SERVER, &extra);
    (transport_with(&get(&made, "options")), get(&made, "calls"))
}

/// Waits until the tab's transport is running (its BroadcastChannel open).
async fn started(t: &Transport) {
    let request = object(&[("chatId", new_chat_id("warmup").into())]);
    ok(t.reconnect_to_stream(&request)).await;
}

fn message(chat: &str, id: &str, text: &str) -> JsValue {
    send_request(chat, &array(&[user_message(id, text)]), &JsValue::UNDEFINED)
}

async fn appends(chat: &str) -> usize {
    let log = ok(admin(SERVER, chat, "log", "GET", &JsValue::UNDEFINED)).await;
    js_sys::Array::from(&log)
        .iter()
        .filter(|e| {
            get(e, "path")
                .as_string()
                .is_some_and(|p| p.ends_with("/in/append"))
        })
        .count()
}

/// Waits up to `ms` for `t.isReadOnly(chat)` to become `read_only`.
async fn read_only_within(ms: u32, t: &Transport, chat: &str, read_only: bool) -> bool {
    let (t, chat) = (t.clone(), chat.to_owned());
    eventually(ms, move || t.is_read_only(&chat) == read_only).await
}

#[wasm_bindgen_test]
async fn two_tabs_sending_at_once_put_exactly_one_turn_on_the_server() {
    let chat = new_chat_id("race");
    let (a, _) = tab();
    let (b, _) = tab();
    // Both start at the same moment; the writer lock lets exactly one through.
    let first = a.send_messages(&message(&chat, "a1", "from a"));
    let second = b.send_messages(&message(&chat, "b1", "from b"));
    let (ra, rb) = (
        wasm_bindgen_futures::JsFuture::from(first).await,
        wasm_bindgen_futures::JsFuture::from(second).await,
    );
    let (winner, loser) = match (ra, rb) {
        (Ok(stream), Err(error)) | (Err(error), Ok(stream)) => (stream, error),
        (ra, rb) => panic!(
            "exactly one send must win: {:?} / {:?}",
            ra.is_ok(),
            rb.is_ok()
        ),
    };
    assert_eq!(
        get(&loser, "code").as_string().as_deref(),
        Some("read_only_tab")
    );
    // The JS transport's message, word for word (apps written for it match on it).
    assert_eq!(
        get(&loser, "message").as_string().as_deref(),
        Some("This chat is active in another tab")
    );
    ok(read_all(&winner)).await;
    assert_eq!(appends(&chat).await, 1, "one turn reached the server");
}

#[wasm_bindgen_test]
async fn the_other_tab_is_read_only_while_one_streams_and_can_send_after() {
    let chat = new_chat_id("readonly");
    let (a, _) = tab();
    let (b, _) = tab();
    let seen = listen(&b);
    let stream = ok(a.send_messages(&message(&chat, "a1", "slow from a"))).await;
    ok(read_n(&stream, 3)).await;
    assert!(a.has_claim(&chat));
    assert!(
        read_only_within(5_000, &b, &chat, true).await,
        "B sees A's claim"
    );
    // A's messages reach B live (what useMultiTabChat broadcasts).
    let messages = array(&[user_message("a1", "slow from a")]);
    a.broadcast_messages(&chat, &messages);
    let seen2 = seen.clone();
    assert!(
        eventually(5_000, move || js_sys::Array::from(&get(&seen2, "messages"))
            .length()
            > 0)
        .await,
        "B receives A's messages"
    );
    // B cannot send meanwhile, and nothing is sent for its attempt.
    let error = rejected(b.send_messages(&message(&chat, "b1", "me too"))).await;
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("read_only_tab")
    );
    assert_eq!(appends(&chat).await, 1);
    ok(read_all(&stream)).await;
    assert!(
        read_only_within(5_000, &b, &chat, false).await,
        "released at turn end"
    );
    let reply = ok(read_all(
        &ok(b.send_messages(&message(&chat, "b2", "my turn"))).await,
    ))
    .await;
    assert_eq!(text_of(&reply), "You said: my turn");
    // B's cursor moved with A's turn: its own reply holds nothing of A's.
    assert_eq!(
        strings(&types(&reply))
            .iter()
            .filter(|t| *t == "start")
            .count(),
        1
    );
}

fn queueing_tab() -> Transport {
    let extra = object(&[("multiTab", true.into()), ("multiTabSend", "queue".into())]);
    transport_with(&get(&make_options(SERVER, &extra), "options"))
}

/// `sendingMessageId(chatId)`, not bound in `support` (only this suite uses it).
fn sending_message_id(t: &Transport, chat: &str) -> Option<String> {
    let method = js_sys::Function::from(get(t, "sendingMessageId"));
    method.call1(t, &chat.into()).unwrap().as_string()
}

#[wasm_bindgen_test]
async fn with_multi_tab_send_queue_a_tab_sends_after_the_owners_turn_instead_of_failing() {
    let chat = new_chat_id("queue");
    let a = queueing_tab();
    let b = queueing_tab();
    let c = queueing_tab();
    for t in [&a, &b, &c] {
        started(t).await;
    }
    let stream = ok(a.send_messages(&message(&chat, "a1", "slow from a"))).await;
    ok(read_n(&stream, 3)).await;
    assert!(
        read_only_within(5_000, &b, &chat, true).await,
        "B sees A's claim"
    );
    // B's send waits for A's turn: nothing of it reaches the server meanwhile.
    let queued = b.send_messages(&message(&chat, "b1", "queued by b"));
    ok(sleep(300)).await;
    assert_eq!(sending_message_id(&b, &chat).as_deref(), Some("b1"));
    assert_eq!(appends(&chat).await, 1, "B's message waits");
    // A's turn ends and B's goes, on B's stream, with nothing of A's reply in it.
    let first = ok(read_all(&stream)).await;
    assert!(
        text_of(&first).starts_with("Slow reply to"),
        "A's whole reply first"
    );
    let reply = ok(read_all(&ok(queued).await)).await;
    assert_eq!(text_of(&reply), "You said: queued by b");
    assert_eq!(appends(&chat).await, 2);
    assert_eq!(
        sending_message_id(&b, &chat),
        None,
        "forgotten at its turn's end"
    );
    assert!(
        read_only_within(5_000, &a, &chat, false).await,
        "B released the chat"
    );

    // A queued send whose signal is aborted gives up its place: it is never sent, and the
    // tab behind it goes next.
    let stream = ok(a.send_messages(&message(&chat, "a2", "slow again"))).await;
    ok(read_n(&stream, 3)).await;
    assert!(read_only_within(5_000, &b, &chat, true).await);
    assert!(read_only_within(5_000, &c, &chat, true).await);
    let controller = web_sys::AbortController::new().unwrap();
    let extra = object(&[("abortSignal", controller.signal().into())]);
    let request = send_request(&chat, &array(&[user_message("b2", "never")]), &extra);
    let given_up = b.send_messages(&request);
    let behind = c.send_messages(&message(&chat, "c1", "after a"));
    ok(sleep(100)).await;
    controller.abort();
    let error = rejected(given_up).await;
    assert_eq!(get(&error, "code").as_string().as_deref(), Some("aborted"));
    assert_eq!(sending_message_id(&b, &chat), None);
    ok(read_all(&stream)).await;
    let reply = ok(read_all(&ok(behind).await)).await;
    assert_eq!(text_of(&reply), "You said: after a");
    ok(sleep(300)).await;
    assert_eq!(
        appends(&chat).await,
        4,
        "A's two, B's first and C's: not the aborted one"
    );
    assert!(!b.has_claim(&chat), "the aborted send left no claim behind");
}

#[wasm_bindgen_test]
async fn a_failed_send_releases_the_claim() {
    let chat = new_chat_id("leak");
    let (a, _) = tab();
    let (b, _) = tab();
    ok(read_all(
        &ok(a.send_messages(&message(&chat, "a0", "hi"))).await,
    ))
    .await;
    // B runs and listens from here on: it must hear the failing send's claim, then its release.
    started(&b).await;
    let seen = listen(&b);
    ok(admin(
        SERVER,
        &chat,
        "faults",
        "POST",
        &object(&[(
            "appendFailures",
            object(&[("status", 422.into()), ("count", 1.into())]),
        )]),
    ))
    .await;
    rejected(a.send_messages(&message(&chat, "a1", "fails"))).await;
    assert!(
        !a.has_claim(&chat),
        "no claim leaked (the JS coordinator's M4)"
    );
    let (seen2, chat2) = (seen.clone(), chat.clone());
    let heard = move || {
        js_sys::Array::from(&get(&seen2, "readOnly"))
            .iter()
            .filter(|entry| {
                js_sys::Array::from(entry).get(0).as_string().as_deref() == Some(chat2.as_str())
            })
            .map(|entry| js_sys::Array::from(&entry).get(1).as_bool())
            .collect::<Vec<_>>()
    };
    let heard2 = heard.clone();
    assert!(
        eventually(5_000, move || heard2() == [Some(true), Some(false)]).await,
        "B saw the claim and its release: {:?}",
        heard()
    );
    assert!(!b.is_read_only(&chat));
    let reply = ok(read_all(
        &ok(b.send_messages(&message(&chat, "b1", "ok"))).await,
    ))
    .await;
    assert_eq!(text_of(&reply), "You said: ok");
}

#[wasm_bindgen_test]
async fn a_late_tab_learns_the_claim_within_a_second() {
    let chat = new_chat_id("late");
    let (a, _) = tab();
    let stream = ok(a.send_messages(&message(&chat, "a1", "slow reply"))).await;
    ok(read_n(&stream, 2)).await;
    let (c, _) = tab();
    let _seen = listen(&c); // starts the tab: it asks who owns what
    assert!(
        read_only_within(5_000, &c, &chat, true).await,
        "a late joiner is not blind (M3)"
    );
    ok(a.stop_generation(&chat)).await;
    ok(read_all(&stream)).await;
}

#[wasm_bindgen_test]
async fn a_js_transport_tab_and_ours_respect_each_others_claims() {
    let chat = new_chat_id("interop");
    let js = js_tab("js-tab-1");
    let (ours, _) = tab();
    let _seen = listen(&ours);
    started(&ours).await;
    // The JS tab claims: ours becomes read-only and refuses to send.
    let claim = js_sys::Reflect::get(&js, &"claim".into()).unwrap();
    js_sys::Function::from(claim)
        .call1(&js, &chat.as_str().into())
        .unwrap();
    assert!(read_only_within(5_000, &ours, &chat, true).await);
    let error = rejected(ours.send_messages(&message(&chat, "o1", "no"))).await;
    assert_eq!(
        get(&error, "code").as_string().as_deref(),
        Some("read_only_tab")
    );
    // It releases: ours can send, and announces its claim in the JS coordinator's shape.
    let release = js_sys::Reflect::get(&js, &"release".into()).unwrap();
    js_sys::Function::from(release)
        .call1(&js, &chat.as_str().into())
        .unwrap();
    assert!(read_only_within(5_000, &ours, &chat, false).await);
    let stream = ok(ours.send_messages(&message(&chat, "o2", "now"))).await;
    let received = get(&js, "received");
    let chat4 = chat.clone();
    let received2 = received.clone();
    assert!(
        eventually(5_000, move || {
            js_sys::Array::from(&received2).iter().any(|m| {
                get(&m, "type").as_string().as_deref() == Some("claim")
                    && get(&m, "chatId").as_string().as_deref() == Some(chat4.as_str())
                    && get(&m, "tabId").as_string().is_some()
            })
        })
        .await,
        "the JS tab saw {{type: 'claim', chatId, tabId}}"
    );
    ok(read_all(&stream)).await;
    let close = js_sys::Reflect::get(&js, &"close".into()).unwrap();
    js_sys::Function::from(close).call0(&js).unwrap();
}

#[wasm_bindgen_test]
async fn a_js_tabs_earlier_claim_is_learned_from_its_heartbeat() {
    let chat = new_chat_id("jsearly");
    let js = js_tab("js-tab-early");
    let claim = js_sys::Function::from(js_sys::Reflect::get(&js, &"claim".into()).unwrap());
    claim.call1(&js, &chat.as_str().into()).unwrap();
    // Ours opens after the claim went by; the JS coordinator does not answer `who`, but its
    // next heartbeat creates the claim here (its own tabs stay blind to it, M3).
    let (ours, _) = tab();
    let _seen = listen(&ours);
    assert!(read_only_within(6_000, &ours, &chat, true).await);
    let close = js_sys::Function::from(js_sys::Reflect::get(&js, &"close".into()).unwrap());
    close.call0(&js).unwrap();
}

#[wasm_bindgen_test]
async fn a_crashed_tabs_claim_expires_and_hostile_messages_are_ignored() {
    let chat = new_chat_id("crash");
    let js = js_tab("js-tab-crash");
    let (ours, _) = tab();
    let _seen = listen(&ours);
    started(&ours).await;
    let post = js_sys::Function::from(js_sys::Reflect::get(&js, &"post".into()).unwrap());
    // Garbage on the channel: ignored and counted, never thrown.
    let ignored_before = ours.ignored_tab_messages();
    for junk in [
        JsValue::from(7),
        JsValue::from_str("claim"),
        object(&[("type", "claim".into())]),
        object(&[
            ("type", "claim".into()),
            ("chatId", 1.into()),
            ("tabId", "x".into()),
        ]),
        object(&[
            ("type", "messages".into()),
            ("chatId", chat.as_str().into()),
            ("tabId", "x".into()),
            ("messages", "nope".into()),
        ]),
        // Not JSON at all (JSON.stringify throws on a BigInt).
        object(&[("type", js_sys::BigInt::from(1u32).into())]),
        // Far over the size a tab message may have (a 5 MB string): not even read.
        object(&[
            ("type", "messages".into()),
            ("chatId", chat.as_str().into()),
            ("tabId", "x".into()),
            ("messages", "x".repeat(5_000_000).into()),
        ]),
    ] {
        post.call1(&js, &junk).unwrap();
    }
    let ours1 = ours.clone();
    assert!(
        eventually(5_000, move || ours1.ignored_tab_messages()
            == ignored_before + 7)
        .await,
        "7 junk messages counted, got {}",
        ours.ignored_tab_messages() - ignored_before
    );
    let claim = js_sys::Function::from(js_sys::Reflect::get(&js, &"claim".into()).unwrap());
    claim.call1(&js, &chat.as_str().into()).unwrap();
    assert!(read_only_within(5_000, &ours, &chat, true).await);
    let crash = js_sys::Function::from(js_sys::Reflect::get(&js, &"crash".into()).unwrap());
    crash.call0(&js).unwrap();
    let started = js_sys::Date::now();
    assert!(
        read_only_within(16_000, &ours, &chat, false).await,
        "the crashed tab's claim expired"
    );
    let waited = js_sys::Date::now() - started;
    assert!(waited <= 15_500.0, "expired after {waited} ms");
    let reply = ok(read_all(
        &ok(ours.send_messages(&message(&chat, "o1", "free"))).await,
    ))
    .await;
    assert_eq!(text_of(&reply), "You said: free");
}

#[wasm_bindgen_test]
async fn a_disposed_tab_coordinates_again_when_used_again() {
    let chat = new_chat_id("revive");
    let (a, _) = tab();
    let (b, _) = tab();
    started(&a).await;
    started(&b).await;
    // dispose() closes A's channel; A's next send must claim the chat where B can see it.
    a.dispose();
    let stream = ok(a.send_messages(&message(&chat, "a1", "slow after dispose"))).await;
    ok(read_n(&stream, 3)).await;
    assert!(a.has_claim(&chat));
    assert!(
        read_only_within(5_000, &b, &chat, true).await,
        "B sees the claim of a transport used again after dispose()"
    );
    ok(read_all(&stream)).await;
    assert!(
        read_only_within(5_000, &b, &chat, false).await,
        "and its release"
    );
}

#[wasm_bindgen_test]
async fn a_tab_disposed_from_its_own_event_callback_still_gives_its_claim_back() {
    let chat = new_chat_id("dispose-in-callback");
    let (a, _) = tab();
    started(&a).await;
    let other = js_tab("other-tab");
    dispose_on(&a, "first-chunk");
    let stream = ok(a.send_messages(&message(&chat, "a1", "slow please"))).await;
    // The stream closes with the dispose (it used to fail with `protocol`: the batch's chunks
    // were gone by the time the host took them).
    ok(read_all(&stream)).await;
    let (watcher, chat_id) = (other.clone(), chat.clone());
    assert!(
        eventually(5_000, move || saw_message(&watcher, "claim", &chat_id)).await,
        "the send claimed the chat"
    );
    let (watcher, chat_id) = (other.clone(), chat.clone());
    assert!(
        eventually(5_000, move || saw_message(&watcher, "release", &chat_id)).await,
        "the release was broadcast before the channel closed"
    );
}

#[wasm_bindgen_test]
async fn remove_session_in_one_tab_is_forgotten_by_the_other_which_does_not_write_it_back() {
    let chat = new_chat_id("removed");
    let namespace = new_chat_id("ns");
    let tab_in = |namespace: &str| {
        let extra = object(&[
            ("multiTab", true.into()),
            ("persistence", object(&[("namespace", namespace.into())])),
        ]);
        let made = make_options(SERVER, &extra);
        (transport_with(&get(&made, "options")), get(&made, "calls"))
    };
    let (a, _) = tab_in(&namespace);
    let (b, b_calls) = tab_in(&namespace);
    started(&b).await;
    ok(read_all(
        &ok(a.send_messages(&message(&chat, "a1", "hello"))).await,
    ))
    .await;
    // B reads the chat's saved state (nothing streams: no stream back).
    let request = object(&[("chatId", chat.clone().into())]);
    assert!(ok(b.reconnect_to_stream(&request)).await.is_null());
    assert!(!b.get_session(&chat).is_undefined(), "B holds the session");
    let key = format!("{namespace}:v1:{}", js_sys::encode_uri_component(&chat));
    assert!(storage_get(&key).is_some());

    a.remove_session(&chat);
    // A saves a new session at once (as a send right after the removal would), before B hears
    // of the removal: B must not clear it.
    let newer = format!(r#"{{"v":1,"chatId":"{chat}","session":{{"publicAccessToken":"newer"}}}}"#);
    storage_set(&key, &newer);
    let (b2, chat2) = (b.clone(), chat.clone());
    let afresh = eventually(5_000, move || {
        get(&b2.get_session(&chat2), "publicAccessToken")
            .as_string()
            .as_deref()
            == Some("newer")
    })
    .await;
    assert!(afresh, "B forgets what it held and reads the chat afresh");
    assert_eq!(
        storage_get(&key).as_deref(),
        Some(newer.as_str()),
        "B cleared nothing"
    );
    let told_null = js_sys::Array::from(&get(&b_calls, "sessions"))
        .iter()
        .any(|entry| js_sys::Array::from(&entry).get(1).is_null());
    assert!(
        !told_null,
        "only the removing tab reports null (the app's own store may hold A's new session)"
    );

    // The chat starts over from A (the stored token it meets is refreshed); B leaves it alone.
    ok(read_all(
        &ok(a.send_messages(&message(&chat, "a2", "again"))).await,
    ))
    .await;
    let stored = storage_get(&key).unwrap_or_default();
    assert!(
        stored.contains("publicAccessToken") && !stored.contains("newer"),
        "{stored}"
    );
}

#[wasm_bindgen_test]
async fn a_page_that_goes_away_mid_reply_frees_the_chat_for_the_other_tabs_at_once() {
    let chat = new_chat_id("pagehide");
    let (a, _) = tab();
    let (b, _) = tab();
    started(&b).await;
    let stream = ok(a.send_messages(&message(&chat, "a1", "slow from a"))).await;
    ok(read_n(&stream, 3)).await;
    assert!(
        read_only_within(5_000, &b, &chat, true).await,
        "B sees A's claim"
    );
    // `pagehide` (the only event a closing page reliably gets): A gives the chat back now, not
    // when its lock is found free or its claim times out (10 s).
    page_hide();
    assert!(
        read_only_within(5_000, &b, &chat, false).await,
        "B may send at once"
    );
    assert!(!a.has_claim(&chat));
    ok(read_all(&stream)).await;
}

#[wasm_bindgen_test]
async fn a_send_made_while_the_module_loads_then_a_dispose_ends_as_it_would_once_loaded() {
    let chat = new_chat_id("dispose-while-loading");
    // A fresh transport: its first call waits for the module; the page unmounts meanwhile.
    let (a, _) = tab();
    let send = a.send_messages(&message(&chat, "a1", "hello"));
    a.dispose();
    // As a send made and disposed at once on a loaded transport: it waited for the writer
    // lock, and the dispose ended it. It used to go out after the dispose, its claim unheard
    // by the other tabs (the channel was closed).
    let error = rejected(send).await;
    assert_eq!(
        get(&error, "name").as_string().as_deref(),
        Some("AbortError")
    );
    ok(sleep(300)).await;
    assert!(!a.has_claim(&chat), "no claim left behind");
    assert_eq!(appends(&chat).await, 0, "nothing was sent");
}

/// What useTriggerChatTransport does to its transport as its component mounts (`true`: the
/// "leaving" flag down) or unmounts (`false`: up).
fn mounted(t: &Transport, mounted: bool) {
    let detach = js_sys::Symbol::for_("trigger-chat-wasm.detachAborts");
    let flag: js_sys::Function = js_sys::Reflect::get(t, &detach).unwrap().into();
    flag.call2(t, &JsValue::NULL, &JsValue::from_bool(!mounted))
        .unwrap();
}

/// A fresh transport's first call, a send to `chat`, waits for the module; its component
/// unmounts meanwhile: the "leaving" flag up, the send's signal aborted (useChat's stop on
/// unmount), then `dispose()`. Returns the send.
fn left_while_loading(t: &Transport, chat: &str) -> js_sys::Promise {
    mounted(t, false);
    let controller = web_sys::AbortController::new().unwrap();
    let extra = object(&[("abortSignal", controller.signal().into())]);
    let send = t.send_messages(&send_request(
        chat,
        &array(&[user_message("a1", "hello")]),
        &extra,
    ));
    controller.abort();
    t.dispose();
    send
}

/// `a` was not disposed under its component: it still hears another tab take `chat` (a
/// disposed transport's channel is closed).
async fn still_running(a: &Transport, chat: &str) {
    let (b, _) = tab();
    let reply = ok(b.send_messages(&message(chat, "b1", "slow from b"))).await;
    ok(read_n(&reply, 3)).await;
    assert!(
        read_only_within(5_000, a, chat, true).await,
        "the transport was disposed under its component"
    );
    ok(read_all(&reply)).await;
}

#[wasm_bindgen_test]
async fn a_send_its_page_left_while_the_module_loaded_is_sent_before_the_dispose() {
    let chat = new_chat_id("left-while-loading");
    let (a, _) = tab();
    let send = left_while_loading(&a, &chat);
    // As on a loaded transport: leaving does not give the message up; the dispose waits for it.
    let _ = wasm_bindgen_futures::JsFuture::from(send).await;
    let mut sent = 0;
    for _ in 0..50 {
        sent = appends(&chat).await;
        if sent > 0 {
            break;
        }
        ok(sleep(100)).await;
    }
    assert_eq!(sent, 1, "the message reached the agent");
    let a2 = a.clone();
    let chat2 = chat.clone();
    assert!(
        eventually(3_000, move || !a2.has_claim(&chat2)).await,
        "disposed once it was sent"
    );
}

#[wasm_bindgen_test]
async fn a_component_back_before_its_left_send_settled_keeps_its_transport() {
    let chat = new_chat_id("back-while-loading");
    // As above, but the component mounts again (the hook lowers the flag) before the send it
    // left has settled (the server is slow): the dispose deferred for that send is called off.
    let slow = object(&[("latencyMs", 1_500.into())]);
    ok(admin(SERVER, &chat, "faults", "POST", &slow)).await;
    let (a, _) = tab();
    let send = left_while_loading(&a, &chat);
    ok(sleep(700)).await; // the module loaded; the send is on its way
    mounted(&a, true);
    let _ = wasm_bindgen_futures::JsFuture::from(send).await;
    ok(admin(
        SERVER,
        &chat,
        "faults",
        "DELETE",
        &JsValue::UNDEFINED,
    ))
    .await;
    for _ in 0..50 {
        if appends(&chat).await > 0 {
            break;
        }
        ok(sleep(100)).await;
    }
    ok(sleep(500)).await;
    still_running(&a, &chat).await;
}

#[wasm_bindgen_test]
async fn a_component_back_before_the_module_loaded_keeps_its_transport() {
    let chat = new_chat_id("back-before-load");
    // Hidden (flag up, signal aborted, dispose) and shown again (flag down) while the module
    // still loads: the dispose deferred to the load is called off.
    let (a, _) = tab();
    let send = left_while_loading(&a, &chat);
    mounted(&a, true);
    let _ = wasm_bindgen_futures::JsFuture::from(send).await;
    ok(sleep(300)).await;
    still_running(&a, &chat).await;
}
