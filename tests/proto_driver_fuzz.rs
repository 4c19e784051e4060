//! The whole driver under random call sequences: an app calling every method in any order, a
//! host answering (or not) each request, timer and callback at random, servers answering with
//! any status or a broken body, tabs posting any message, storage holding anything. A panic in
//! the shipped module kills it for the whole tab, so the first property is that nothing panics;
//! then that no operation settles twice, and that once the app disposes the transport and the
//! network has answered, every operation has settled and nothing is left running. Seeded xorshift: a failure names its
//! seed and replays.
//!
//! Longer, with other seeds: `PROTO_FUZZ_SEQUENCES=5000 PROTO_FUZZ_SEED=9 cargo test --release
//! --test proto_driver_fuzz`.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use trigger_chat_wasm::proto::driver::{
    Action, Driver, Endpoint, SendRequest, Stored, Value, Wake,
};
use trigger_chat_wasm::proto::headers::HeaderList;
use trigger_chat_wasm::proto::json::Json;
use trigger_chat_wasm::proto::session::PersistedSession;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Removes and returns a random element.
    fn take<T>(&mut self, items: &mut Vec<T>) -> Option<T> {
        if items.is_empty() {
            return None;
        }
        let i = self.below(items.len());
        Some(items.swap_remove(i))
    }
}

const OPTIONS: [&str; 8] = [
    r#"{"task":"chat","types":{"startSession":"function","accessToken":"function"}}"#,
    r#"{"task":"chat","types":{"accessToken":"function"},"sessions":{"c1":{"publicAccessToken":"t","lastEventId":"4","isStreaming":true,"activeInputSeq":2}}}"#,
    r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b"}"#,
    r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":false,"tabId":"tab-b","multiTabSend":"queue"}"#,
    r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b","multiTabSend":"queue"}"#,
    r#"{"task":"chat","types":{"startSession":"function","accessToken":"function"},"watch":true}"#,
    r#"{"task":"chat","types":{"startSession":"function","accessToken":"function"},"headStart":"/api/chat"}"#,
    r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b","headStart":"/api/chat"}"#,
];

const CHATS: [&str; 3] = ["c1", "c/2 ü", "c3"];

const STORED: [&str; 7] = [
    r#"{"publicAccessToken":"t","lastEventId":"1","isStreaming":false,"pendingSend":{"partId":"p","body":"{\"kind\":\"message\",\"payload\":{}}","source":"submit-message","createdAt":1,"turnStart":null}}"#,
    r#"{"publicAccessToken":"t","lastEventId":"9","isStreaming":true,"activeInputSeq":3,"consumedInputSeq":2}"#,
    r#"{"publicAccessToken":"t","closed":true,"closedReason":"done"}"#,
    r#"{"publicAccessToken":"t","lastEventId":"18446744073709551615","activeInputSeq":"99999999999999999999"}"#,
    r#"{"publicAccessToken":""}"#,
    r#"{"v":1,"#,
    r#"[1,2,3]"#,
];

const TAB_MESSAGES: [&str; 10] = [
    r#"{"type":"claim","chatId":"c1","tabId":"tab-a","v":1}"#,
    r#"{"type":"heartbeat","chatId":"c1","tabId":"tab-a"}"#,
    r#"{"type":"release","chatId":"c1","tabId":"tab-a"}"#,
    r#"{"type":"session","chatId":"c1","tabId":"tab-a","session":{"lastEventId":"7","consumedInputSeq":3}}"#,
    r#"{"type":"session","chatId":"c3","tabId":"tab-a","session":{"lastEventId":"18446744073709551615"}}"#,
    r#"{"type":"messages","chatId":"c1","tabId":"tab-a","messages":[{"id":"m","role":"user","parts":[]}],"v":9007199254740991}"#,
    r#"{"type":"removed","chatId":"c1","tabId":"tab-a","v":3}"#,
    r#"{"type":"who","tabId":"tab-c"}"#,
    r#"{"type":"claim","chatId":"c3","tabId":"tab-b","v":1}"#,
    r#"{"type":7,"chatId":[],"tabId":null}"#,
];

const SSE: [&str; 9] = [
    "event: batch\ndata: {\"records\":[{\"seq_num\":5,\"timestamp\":1,\"body\":\"{\\\"data\\\":{\\\"type\\\":\\\"text-delta\\\",\\\"id\\\":\\\"t\\\",\\\"delta\\\":\\\"a\\\"},\\\"id\\\":\\\"x\\\"}\",\"headers\":[]}],\"tail\":{\"seq_num\":6,\"timestamp\":1}}\n\n",
    "event: batch\ndata: {\"records\":[{\"seq_num\":6,\"timestamp\":1,\"body\":\"\",\"headers\":[[\"trigger-control\",\"turn-complete\"],[\"public-access-token\",\"fresh\"],[\"session-in-event-id\",\"3\"]]}],\"tail\":{\"seq_num\":7,\"timestamp\":1}}\n\n",
    "event: batch\ndata: {\"records\":[{\"seq_num\":8,\"timestamp\":1,\"body\":\"\",\"headers\":[[\"trigger-control\",\"turn-complete\"]]}],\"tail\":{\"seq_num\":9,\"timestamp\":1}}\n\n",
    "event: batch\ndata: {\"records\":[{\"seq_num\":2,\"timestamp\":1,\"body\":\"\",\"headers\":[[\"trigger-control\",\"session-closed\"]]}]}\n\n",
    "event: batch\ndata: {\"records\":[{\"seq_num\":3,\"timestamp\":1,\"body\":\"not json\",\"headers\":[]}]}\n\n",
    "event: ping\ndata: {\"tail\":{\"seq_num\":4,\"timestamp\":1}}\n\n",
    "event: error\ndata: {\"error\":\"boom\"}\n\n",
    "data: [DONE]\n\n",
    "data: {\"type\":\"text-delta\",\"id\":\"t\",\"delta\":\"h\"}\n\ndata: {\"type\":\"trigger:turn-complete\"}\n\ndata: {\"type\":\"trigger:session-state\",\"lastEventId\":\"4\"}\n\n",
];

const APPEND_ANSWERS: [(u16, &str); 9] = [
    (200, r#"{"ok":true,"seq":3}"#),
    (200, r#"{"ok":true}"#),
    (200, r#"{"ok":true,"seq":1,"pendingVersion":true}"#),
    (200, "garbage"),
    (401, ""),
    (404, r#"{"error":"not found"}"#),
    (
        409,
        r#"{"ok":false,"code":"session_closed","closedReason":"bye"}"#,
    ),
    (429, ""),
    (503, ""),
];

#[derive(Default)]
struct World {
    now: u64,
    fetches: Vec<(u32, Endpoint)>,
    reading: Vec<u32>,
    timers: Vec<u32>,
    calls: Vec<u32>,
    ops: Vec<u32>,
    streams: Vec<u32>,
    settled: HashSet<u32>,
    parts: u32,
    /// The last `.out` seq written.
    seq: u64,
    /// Chats whose writer lock was asked for; lock queries asked.
    locks: Vec<String>,
    queries: u32,
    /// The latest states reported to `onSessionChange`.
    reported: Vec<(String, Json)>,
}

impl World {
    /// Takes in what the driver asked for; fails on an operation settled twice.
    fn absorb(&mut self, d: &mut Driver, seed: u64) {
        for action in d.drain() {
            match action {
                Action::Fetch { id, endpoint, .. } => self.fetches.push((id, endpoint)),
                Action::Read { fetch } => self.reading.push(fetch),
                Action::Abort { fetch } => {
                    self.fetches.retain(|(f, _)| *f != fetch);
                    self.reading.retain(|f| *f != fetch);
                }
                Action::SetTimer { id, .. } => self.timers.push(id),
                Action::ClearTimer { id } => self.timers.retain(|t| *t != id),
                Action::Call { id, .. } => self.calls.push(id),
                Action::Persist {
                    chat_id,
                    state: Some(state),
                } => {
                    if self.reported.len() == 8 {
                        self.reported.remove(0);
                    }
                    self.reported.push((chat_id, state));
                }
                Action::LockRequest { chat_id, .. } => self.locks.push(chat_id),
                Action::LockQuery => self.queries += 1,
                Action::Resolve { op, value } => {
                    assert!(
                        self.settled.insert(op),
                        "seed {seed}: op {op} settled twice"
                    );
                    if let Value::Stream(stream) = value {
                        self.streams.push(stream);
                    }
                }
                Action::Reject { op, .. } => {
                    assert!(
                        self.settled.insert(op),
                        "seed {seed}: op {op} settled twice"
                    );
                }
                Action::End { stream } | Action::Fail { stream, .. } => {
                    self.streams.retain(|s| *s != stream);
                }
                _ => {}
            }
        }
    }

    fn part(&mut self) -> String {
        self.parts += 1;
        format!("part-{}", self.parts)
    }
}

fn step(d: &mut Driver, w: &mut World, rng: &mut Rng) {
    w.now = w.now.saturating_add(rng.below(1_500) as u64);
    if rng.next() % 20_000 == 0 {
        // A host clock gone wrong (the bindings turn a huge `Date.now()` into `u64::MAX`).
        w.now = u64::MAX - rng.below(100_000) as u64;
    }
    let now = w.now;
    let chat = rng.pick(&CHATS);
    if rng.chance(80) {
        return host_step(d, w, rng, now);
    }
    match rng.below(30) {
        0..=3 => {
            let trigger = rng.pick(&["submit-message", "regenerate-message", "bogus"]);
            let body = rng.pick(&[
                "",
                r#","body":{"action":{"type":"undo"}}"#,
                r#","body":{"action":null}"#,
            ]);
            let message = format!(
                r#"{{"id":"m{}","role":"user","parts":[{{"type":"text","text":"hi"}}]}}"#,
                w.parts
            );
            // (The whole history too, as the host passes it to a `headStart` handler.)
            let history = if rng.chance(50) {
                format!(r#","messages":[{message}]"#)
            } else {
                String::new()
            };
            let text = format!(
                r#"{{"chatId":"{chat}","trigger":"{trigger}","message":{message}{history}{body}}}"#
            );
            if let Ok(request) = SendRequest::from_json(&Json::parse(&text).unwrap()) {
                let part = w.part();
                w.ops.push(d.send_messages(request, &part, now));
            }
        }
        4 => {
            let part = w.part();
            let action = rng
                .chance(50)
                .then(|| Json::parse(r#"{"type":"redo"}"#).unwrap());
            w.ops
                .push(d.send_action(chat, action, None, HeaderList::new(), &part, now));
        }
        5 | 6 => {
            let part = w.part();
            w.ops.push(d.stop_generation(chat, &part, now));
        }
        7 => {
            let part = w.part();
            let message = Json::parse(r#"{"id":"s1","role":"user","parts":[]}"#).unwrap();
            w.ops
                .push(d.send_pending_message(chat, message, None, &part, now));
        }
        8 => w.ops.push(d.start(chat, now)),
        9 => {
            if let Some(&op) = w.ops.get(rng.below(w.ops.len())) {
                d.abort_op(op, now);
            }
        }
        10 | 11 => {
            if let Some(stream) = d.reconnect(chat, HeaderList::new(), now) {
                w.streams.push(stream);
            }
        }
        12..=14 => {
            if let Some(&s) = w.streams.get(rng.below(w.streams.len())) {
                d.pull(s, now);
                let _ = d.take_chunks(s);
            }
        }
        15 => {
            if let Some(s) = rng.take(&mut w.streams) {
                if rng.chance(50) {
                    d.cancel(s, now);
                } else {
                    let part = w.part();
                    d.abort_stream(s, rng.chance(50), &part, now);
                }
            }
        }
        16 => d.remove_session(chat, now),
        17 => {
            let stored = rng.pick(&STORED);
            if let Ok(json) = Json::parse(stored) {
                let _ = d.set_session(chat, &json, now);
            }
        }
        18 => d.seed_resume_cursor(chat, rng.pick(&["3", "99", "x", "18446744073709551615"])),
        19 => {
            if rng.chance(20) {
                d.dispose(now);
            } else {
                d.page_hide(now);
                d.rejoin(now);
            }
        }
        20 => d.set_offline(rng.chance(50), now),
        21 => d.wake(
            if rng.chance(50) {
                Wake::Reconnect
            } else {
                Wake::RetryNow
            },
            now,
        ),
        22 => d.tab_message(rng.pick(&TAB_MESSAGES), now),
        23 => d.lock_result(chat, rng.chance(60), now),
        24 => d.lock_status(None, now, now),
        25 => {
            let stored = rng.pick(&STORED);
            // As localStorage holds it (for this chat or another), or as an app's store does.
            let record = Json::parse(stored)
                .ok()
                .and_then(|json| PersistedSession::from_json(&json).ok())
                .map(|p| p.encode_for_storage(if rng.chance(90) { chat } else { "c3" }));
            match record {
                Some(record) if rng.chance(50) => d.hydrate(chat, Stored::Record(&record), now),
                _ if rng.chance(10) => d.hydrate(chat, Stored::Record(stored), now),
                _ => d.hydrate(chat, Stored::Shape(stored), now),
            }
        }
        26 => d.storage_failed(chat, "quota exceeded"),
        27 => {
            // An app store bound both ways hands back a state it was told (perhaps late).
            if let Some(state) = w.reported.get(rng.below(w.reported.len())).cloned() {
                let _ = d.set_session(&state.0, &state.1, now);
            }
        }
        28 => {
            let data = rng
                .chance(70)
                .then(|| Json::parse(r#"{"plan":"pro"}"#).unwrap());
            d.set_client_data(data);
            d.set_callbacks(rng.chance(80), rng.chance(80));
        }
        _ => {
            let _ = d.get_session(chat);
            let messages = rng.pick(&[r#"[{"id":"m","role":"user","parts":[]}]"#, "{", "[]"]);
            d.broadcast_messages(chat, messages, now);
        }
    }
}

/// The host: a callback returns, a timer fires, or the network answers.
fn host_step(d: &mut Driver, w: &mut World, rng: &mut Rng, now: u64) {
    match rng.below(13) {
        0 | 1 => {
            if let Some(call) = rng.take(&mut w.calls) {
                if rng.chance(85) {
                    d.callback_ok(call, "tok", rng.chance(5), now);
                } else {
                    d.callback_failed(call, 1, now);
                }
            }
        }
        2 => {
            if let Some(id) = rng.take(&mut w.timers) {
                d.timer(id, now);
            }
        }
        3 => {
            if let Some(chat) = rng.take(&mut w.locks) {
                d.lock_result(&chat, rng.chance(80), now);
            } else if w.queries > 0 {
                w.queries -= 1;
                let held = vec![format!("trigger-chat:{}:writer", rng.pick(&CHATS))];
                let held = rng.chance(50).then_some(held.as_slice());
                d.lock_status(held, now, now);
            }
        }
        4..=6 => {
            // The app reads its streams.
            for s in w.streams.clone() {
                d.pull(s, now);
                let _ = d.take_chunks(s);
            }
        }
        _ => answer(d, w, rng, now),
    }
}

/// The network answers one request (or one read of a body).
fn answer(d: &mut Driver, w: &mut World, rng: &mut Rng, now: u64) {
    if !w.reading.is_empty() && rng.chance(60) {
        let fetch = w.reading.swap_remove(rng.below(w.reading.len()));
        match rng.below(10) {
            0 => d.fetch_end(fetch, now),
            1 => d.fetch_failed(fetch, "connection reset", now),
            2 => {
                let len = rng.below(64);
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                d.fetch_bytes(fetch, &bytes, now);
            }
            3..=6 => {
                // A reply: data records, perhaps its boundary (or another turn's).
                let mut records = Vec::new();
                for _ in 0..=rng.below(3) {
                    w.seq += 1;
                    records.push(format!(
                        r#"{{"seq_num":{},"timestamp":1,"body":"{{\"data\":{{\"type\":\"text-delta\",\"id\":\"t\",\"delta\":\"a\"}}}}","headers":[]}}"#,
                        w.seq
                    ));
                }
                if rng.chance(50) {
                    w.seq += 1;
                    let token = rng.pick(&["", r#",["public-access-token","fresh"]"#]);
                    records.push(format!(
                        r#"{{"seq_num":{},"timestamp":1,"body":"","headers":[["trigger-control","turn-complete"],["session-in-event-id","{}"]{token}]}}"#,
                        w.seq,
                        rng.below(6)
                    ));
                }
                let sse = format!(
                    "event: batch\ndata: {{\"records\":[{}],\"tail\":{{\"seq_num\":{},\"timestamp\":1}}}}\n\n",
                    records.join(","),
                    w.seq + 1
                );
                d.fetch_bytes(fetch, sse.as_bytes(), now);
            }
            _ => {
                let sse = rng.pick(&SSE).as_bytes();
                // Any split of the bytes.
                let cut = rng.below(sse.len() + 1);
                d.fetch_bytes(fetch, &sse[..cut], now);
                if rng.chance(70) {
                    d.fetch_bytes(fetch, &sse[cut..], now);
                }
            }
        }
        return;
    }
    let Some((fetch, endpoint)) = rng.take(&mut w.fetches) else {
        return;
    };
    match endpoint {
        Endpoint::In => {
            if rng.chance(10) {
                d.fetch_failed(fetch, "offline", now);
            } else {
                let (status, body) = APPEND_ANSWERS[rng.below(APPEND_ANSWERS.len())];
                let reset = (status == 429).then_some(now / 1000 + 1);
                d.fetch_text(fetch, status, body, reset, now);
            }
        }
        Endpoint::HeadStart => match rng.below(3) {
            0 => d.head_start_open(fetch, "tok-hs", rng.chance(10), now),
            1 => d.head_start_open(fetch, "", false, now),
            _ => d.fetch_text(fetch, 500, "boom", None, now),
        },
        _ => match rng.below(12) {
            0 => d.fetch_text(fetch, 401, "", None, now),
            1 => d.fetch_text(fetch, 404, "", None, now),
            2 => d.fetch_failed(fetch, "reset", now),
            _ => d.fetch_open(fetch, rng.chance(10), now),
        },
    }
}

fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let options = Json::parse(OPTIONS[rng.below(OPTIONS.len())]).unwrap();
    let mut d = Driver::new(&options, seed).expect("valid options");
    let mut w = World::default();
    for _ in 0..steps {
        step(&mut d, &mut w, &mut rng);
        w.absorb(&mut d, seed);
    }
    // Everything ends: the app leaves, the network answers the rest, the timers fire.
    d.dispose(w.now);
    w.absorb(&mut d, seed);
    for _ in 0..steps {
        if w.fetches.is_empty() && w.reading.is_empty() && w.timers.is_empty() && w.calls.is_empty()
        {
            break;
        }
        w.now = w.now.saturating_add(60_000);
        let now = w.now;
        answer(&mut d, &mut w, &mut rng, now);
        if let Some(id) = rng.take(&mut w.timers) {
            d.timer(id, w.now);
        }
        if let Some(call) = rng.take(&mut w.calls) {
            d.callback_ok(call, "tok", false, w.now);
        }
        w.absorb(&mut d, seed);
    }
    let quiet = w.fetches.is_empty() && w.reading.is_empty() && w.timers.is_empty();
    assert!(
        quiet && w.calls.is_empty(),
        "seed {seed}: still busy after the drain"
    );
    // ...and every operation the app started has settled, one way or the other.
    let open: Vec<&u32> = w.ops.iter().filter(|o| !w.settled.contains(o)).collect();
    assert!(open.is_empty(), "seed {seed}: never settled: {open:?}");
}

#[test]
fn random_call_sequences_never_panic_and_settle_every_operation_once() {
    let sequences = std::env::var("PROTO_FUZZ_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000u64);
    let first = std::env::var("PROTO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1u64);
    for seed in first..first + sequences {
        let outcome = catch_unwind(AssertUnwindSafe(|| run(seed, 400)));
        assert!(outcome.is_ok(), "seed {seed} panicked (see above)");
    }
}
