//! The wasm transport against the emulator, in real browsers: sends, streams, turns, events.
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use trigger_chat_wasm::bindings::WasmTransport;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn transport(extra: &JsValue) -> (WasmTransport, JsValue) {
    let made = make_options(SERVER, extra);
    let transport = WasmTransport::new(get(&made, "options")).expect("valid options");
    (transport, get(&made, "calls"))
}

#[wasm_bindgen_test]
async fn a_message_streams_the_agents_reply_and_closes_on_its_turn_complete() {
    let chat = new_chat_id("basic");
    let (t, calls) = transport(&JsValue::UNDEFINED);
    let messages = array(&[user_message("u1", "hello there")]);
    let stream = ok(t.send_messages(send_request(&chat, &messages, &JsValue::UNDEFINED))).await;
    let chunks = ok(read_all(&stream)).await;
    assert_eq!(text_of(&chunks), "You said: hello there");
    let kinds = strings(&types(&chunks));
    assert_eq!(kinds.first().map(String::as_str), Some("start"));
    assert_eq!(kinds.last().map(String::as_str), Some("finish"));
    assert_eq!(get(&calls, "startSession").as_f64(), Some(1.0));
    let events = strings(&event_types(&calls));
    for expected in ["message-sent", "stream-connected", "first-chunk", "turn-completed"] {
        assert!(events.iter().any(|e| e == expected), "missing {expected} in {events:?}");
    }
}
