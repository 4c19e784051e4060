//! The transport driver natively, against a scripted host: every request, timer and callback
//! the driver asks for is answered by the test, with a virtual clock.
#![cfg(not(target_arch = "wasm32"))]

use trigger_chat_wasm::proto::append::{APPEND_TIMEOUT_MS, OFFLINE_RECHECK_MS, RETRY_WINDOW_MS};
use trigger_chat_wasm::proto::driver::{
    Action, Callback, Driver, Endpoint, ErrorRef, SendRequest, Stored, Value, Wake,
};
use trigger_chat_wasm::proto::headers::HeaderList;
use trigger_chat_wasm::proto::json::Json;
use trigger_chat_wasm::proto::Error;

/// A host that records what the driver asks and lets the test answer.
struct Host {
    d: Driver,
    now: u64,
    fetches: Vec<Action>,
    reads: Vec<u32>,
    timers: Vec<(u32, u64)>,
    calls: Vec<(u32, Callback)>,
    resolved: Vec<(u32, Value)>,
    rejected: Vec<(u32, ErrorRef)>,
    events: Vec<String>,
    /// `connection-state` events, as `"<state>/<pendingSends>"` (kept apart from `events`).
    links: Vec<String>,
    persisted: Vec<(String, Option<Json>)>,
    chunks: Vec<String>,
    ended: Vec<u32>,
    /// Every `End` action, repeats included (`ended` keeps each stream once, as a host does).
    end_actions: Vec<u32>,
    failed: Vec<(u32, ErrorRef)>,
    aborted: Vec<u32>,
    other: Vec<Action>,
}

const OPTIONS: &str =
    r#"{"task":"chat","types":{"startSession":"function","accessToken":"function"}}"#;

impl Host {
    fn new(options: &str) -> Host {
        let d = Driver::new(&Json::parse(options).unwrap(), 7).unwrap();
        let mut host = Host {
            d,
            now: 1_000_000,
            fetches: vec![],
            reads: vec![],
            timers: vec![],
            calls: vec![],
            resolved: vec![],
            rejected: vec![],
            events: vec![],
            links: vec![],
            persisted: vec![],
            chunks: vec![],
            ended: vec![],
            end_actions: vec![],
            failed: vec![],
            aborted: vec![],
            other: vec![],
        };
        host.pump();
        host
    }

    fn pump(&mut self) {
        for action in self.d.drain() {
            match action {
                Action::Fetch { .. } => self.fetches.push(action),
                Action::Read { fetch } => self.reads.push(fetch),
                Action::Abort { fetch } => self.aborted.push(fetch),
                Action::SetTimer { id, ms } => self.timers.push((id, self.now + ms)),
                Action::ClearTimer { id } => self.timers.retain(|(t, _)| *t != id),
                Action::Call { id, callback, .. } => self.calls.push((id, callback)),
                Action::Resolve { op, value } => self.resolved.push((op, value)),
                Action::Reject { op, error } => self.rejected.push((op, error)),
                Action::Chunks { stream } => {
                    let text = self.d.take_chunks(stream);
                    self.chunks.push(text);
                }
                // (As a host does: a stream already ended stays ended, once.)
                Action::End { stream } => {
                    self.end_actions.push(stream);
                    if !self.ended.contains(&stream) {
                        self.ended.push(stream);
                    }
                }
                Action::Fail { stream, error } => self.failed.push((stream, error)),
                Action::Event { json, .. } if json.contains(r#""type":"connection-state""#) => {
                    let event = Json::parse(&json).unwrap();
                    let state = event.get("state").and_then(Json::as_str).unwrap();
                    let pending = event.get("pendingSends").and_then(Json::as_u64).unwrap();
                    self.links.push(format!("{state}/{pending}"));
                }
                Action::Event { json, .. } => self.events.push(json),
                Action::Persist { chat_id, state } => self.persisted.push((chat_id, state)),
                other => self.other.push(other),
            }
        }
    }

    fn send(&mut self, chat: &str, text: &str, part: &str) -> u32 {
        let request = Json::parse(&format!(
            r#"{{"chatId":"{chat}","trigger":"submit-message","message":{{"id":"u","role":"user","parts":[{{"type":"text","text":"{text}"}}]}}}}"#
        ))
        .unwrap();
        let op = self
            .d
            .send_messages(SendRequest::from_json(&request).unwrap(), part, self.now);
        self.pump();
        op
    }

    fn answer_call(&mut self, token: &str) {
        let (id, _) = self.calls.remove(0);
        self.d.callback_ok(id, token, false, self.now);
        self.pump();
    }

    /// Takes the oldest request for `endpoint`: (id, path, headers as pairs, body).
    fn take_fetch(
        &mut self,
        endpoint: Endpoint,
    ) -> (u32, String, Vec<(String, String)>, Option<String>) {
        let i = self
            .fetches
            .iter()
            .position(|f| matches!(f, Action::Fetch { endpoint: e, .. } if *e == endpoint))
            .unwrap_or_else(|| panic!("no {endpoint:?} fetch in {:?}", self.fetches));
        match self.fetches.remove(i) {
            Action::Fetch {
                id,
                path,
                headers,
                body,
                ..
            } => (
                id,
                path,
                headers
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
                body,
            ),
            _ => unreachable!(),
        }
    }

    /// Whether a request for `endpoint` is waiting (and takes it).
    fn take_fetch_opt(&mut self, endpoint: Endpoint) -> Option<u32> {
        let i = self
            .fetches
            .iter()
            .position(|f| matches!(f, Action::Fetch { endpoint: e, .. } if *e == endpoint))?;
        match self.fetches.remove(i) {
            Action::Fetch { id, .. } => Some(id),
            _ => None,
        }
    }

    fn header(headers: &[(String, String)], name: &str) -> Option<String> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// The token an `Authorization: Bearer …` header carries.
    fn bearer(headers: &[(String, String)]) -> Option<String> {
        Host::header(headers, "authorization")?
            .strip_prefix("Bearer ")
            .map(str::to_owned)
    }

    fn fire_timers(&mut self, advance_ms: u64) {
        self.now += advance_ms;
        let due: Vec<u32> = self
            .timers
            .iter()
            .filter(|(_, at)| *at <= self.now)
            .map(|(id, _)| *id)
            .collect();
        self.timers.retain(|(_, at)| *at > self.now);
        for id in due {
            self.d.timer(id, self.now);
            self.pump();
        }
    }

    fn stream_of(&self, op: u32) -> u32 {
        match self.resolved.iter().find(|(o, _)| *o == op) {
            Some((_, Value::Stream(id))) => *id,
            other => panic!(
                "op {op} not resolved to a stream: {other:?} (rejected: {:?})",
                self.rejected
            ),
        }
    }

    /// Operation `op` was rejected with an abort.
    fn assert_aborted(&self, op: u32) {
        assert!(
            matches!(
                self.rejected.iter().find(|(o, _)| *o == op),
                Some((_, ErrorRef::Ours(Error::Aborted)))
            ),
            "{op}: {:?}",
            self.rejected
        );
    }

    fn kinds(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| {
                Json::parse(e)
                    .unwrap()
                    .get("type")
                    .and_then(Json::as_str)
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

fn batch(records: &[(u64, &str)], boundary: Option<(u64, Option<u64>)>) -> Vec<u8> {
    let mut items: Vec<String> = records
        .iter()
        .map(|(seq, delta)| {
            let body = format!(
                r#"{{"data":{{"type":"text-delta","id":"t","delta":"{delta}"}},"id":"p{seq}"}}"#
            );
            format!(
                r#"{{"seq_num":{seq},"timestamp":1,"body":{},"headers":[]}}"#,
                Json::from(body.as_str()).to_json_string()
            )
        })
        .collect();
    if let Some((seq, in_id)) = boundary {
        let mut headers =
            r#"[["trigger-control","turn-complete"],["public-access-token","fresh"]"#.to_owned();
        if let Some(in_id) = in_id {
            headers.push_str(&format!(r#",["session-in-event-id","{in_id}"]"#));
        }
        headers.push(']');
        items.push(format!(
            r#"{{"seq_num":{seq},"timestamp":1,"body":"","headers":{headers}}}"#
        ));
    }
    let last = records
        .iter()
        .map(|r| r.0)
        .chain(boundary.map(|b| b.0))
        .max()
        .unwrap_or(0);
    format!(
        "event: batch\ndata: {{\"records\":[{}],\"tail\":{{\"seq_num\":{},\"timestamp\":1}}}}\n\n",
        items.join(","),
        last + 1
    )
    .into_bytes()
}

fn texts(chunks: &[String]) -> String {
    let mut out = String::new();
    for chunk in chunks {
        for body in Json::parse(chunk).unwrap().as_array().unwrap() {
            if let Some(d) = body
                .get("data")
                .and_then(|d| d.get("delta"))
                .and_then(Json::as_str)
            {
                out.push_str(d);
            }
        }
    }
    out
}

/// A started chat: session started, one send accepted with `.in` seq `seq`, `.out` open.
fn sent(host: &mut Host, chat: &str, seq: u64) -> (u32, u32) {
    let op = host.send(chat, "hi", "part-1");
    if !host.calls.is_empty() {
        host.answer_call("tok-1");
    }
    acknowledged(host, op, seq)
}

/// Send `op`'s append is accepted with `.in` seq `seq`, and its `.out` opens: (stream, out).
fn acknowledged(host: &mut Host, op: u32, seq: u64) -> (u32, u32) {
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(
        append,
        200,
        &format!(r#"{{"ok":true,"seq":{seq}}}"#),
        None,
        host.now,
    );
    host.pump();
    let stream = host.stream_of(op);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    (stream, out)
}

#[test]
fn the_ends_of_the_bodies_taken_split_them_for_a_host_whose_parse_failed() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 0);
    host.d.pull(stream, host.now);
    host.d.fetch_bytes(
        out,
        &batch(&[(0, "ünï"), (1, "€ \\\" x"), (2, "z")], None),
        host.now,
    );
    host.pump();
    let text = host.chunks.last().unwrap().clone();
    let ends = host.d.chunk_ends(stream).unwrap();
    let mut start = 1;
    let mut bodies = Vec::new();
    for end in ends.split(',') {
        let end: usize = end.parse().unwrap();
        bodies.push(Json::parse(&text[start..end]).unwrap());
        start = end + 1;
    }
    assert_eq!(
        start,
        text.len(),
        "the last body ends before the closing bracket"
    );
    assert_eq!(Json::Array(bodies), Json::parse(&text).unwrap());
}

#[test]
fn stream_connected_follows_message_sent_even_when_the_stream_opens_first() {
    // `.out` opens in parallel with the append; the JS transport opens it only once the append
    // is accepted, so an app may take `stream-connected` for "sent". It keeps that order.
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hello", "part-1");
    host.answer_call("tok-1");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    assert!(!host.kinds().iter().any(|k| k == "stream-connected"));
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.pump();
    host.stream_of(op);
    let kinds = host.kinds();
    let at = |kind: &str| kinds.iter().position(|k| k == kind);
    assert!(at("message-sent") < at("stream-connected"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "stream-connected").count(), 1);
    // A send whose append fails reports no connection at all, as in the JS transport.
    host.events.clear();
    let op = host.send("c1", "again", "part-2");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.d
        .fetch_text(append, 400, r#"{"error":"bad"}"#, None, host.now);
    host.pump();
    assert!(host.rejected.iter().any(|(o, _)| *o == op));
    assert!(
        !host.kinds().iter().any(|k| k == "stream-connected"),
        "{:?}",
        host.kinds()
    );
}

#[test]
fn a_send_streams_its_reply_and_ends_on_its_own_boundary() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hello", "part-1");
    assert_eq!(host.calls.len(), 1, "the session is started first");
    assert_eq!(host.calls[0].1, Callback::StartSession);
    host.answer_call("tok-1");
    let (append, path, headers, body) = host.take_fetch(Endpoint::In);
    assert_eq!(path, "/realtime/v1/sessions/c1/in/append");
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-1"));
    assert_eq!(
        Host::header(&headers, "x-part-id").as_deref(),
        Some("part-1")
    );
    assert!(body
        .unwrap()
        .starts_with(r#"{"kind":"message","payload":{"message":"#));
    // `.out` opened in parallel with the append (the cursor is known): no round trip lost.
    let (out, out_path, out_headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(out_path, "/realtime/v1/sessions/c1/out");
    assert_eq!(
        Host::header(&out_headers, "accept").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(Host::header(&out_headers, "x-peek-settled"), None);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(op);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    assert!(
        host.reads.is_empty(),
        "nothing is read before the consumer pulls"
    );
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.reads, vec![out]);
    host.d.fetch_bytes(
        out,
        &batch(&[(0, "Hel"), (1, "lo")], Some((2, Some(4)))),
        host.now,
    );
    host.pump();
    assert_eq!(texts(&host.chunks), "Hello");
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
    assert!(
        host.aborted.contains(&out),
        "the connection closes with the turn"
    );
    let kinds = host.kinds();
    for kind in [
        "message-sent",
        "stream-connected",
        "first-chunk",
        "turn-completed",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    let (_, last) = host.persisted.last().unwrap();
    let last = last.as_ref().unwrap();
    assert_eq!(
        last.get("publicAccessToken").and_then(Json::as_str),
        Some("fresh")
    );
    assert_eq!(last.get("lastEventId").and_then(Json::as_str), Some("2"));
    assert_eq!(last.get("isStreaming").and_then(Json::as_bool), Some(false));
}

#[test]
fn server_errors_are_retried_with_the_same_part_id_after_a_backoff() {
    let mut host = Host::new(OPTIONS);
    host.send("c1", "hi", "part-7");
    host.answer_call("tok");
    let (first, _, h1, b1) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(first, 503, r#"{"ok":false,"error":"busy"}"#, None, host.now);
    host.pump();
    assert!(host.fetches.iter().all(|f| !matches!(
        f,
        Action::Fetch {
            endpoint: Endpoint::In,
            ..
        }
    )));
    host.fire_timers(5_000);
    retried_as(&mut host, &h1, &b1);
}

/// The next append is a retry of the one sent with `headers` and `body`: the same `X-Part-Id`
/// and the same body.
fn retried_as(host: &mut Host, headers: &[(String, String)], body: &Option<String>) {
    let (_, _, again, again_body) = host.take_fetch(Endpoint::In);
    assert_eq!(
        Host::header(headers, "x-part-id"),
        Host::header(&again, "x-part-id")
    );
    assert_eq!(*body, again_body, "the same body");
}

#[test]
fn a_429_on_out_reconnects_no_sooner_than_its_reset() {
    let mut host = Host::new(OPTIONS);
    host.now = 1_700_000_000_000; // a real clock: the reset is epoch milliseconds
    let (stream, out) = sent(&mut host, "c1", 0);
    host.d.pull(stream, host.now);
    host.pump();
    host.d.fetch_failed(out, "connection reset", host.now);
    host.pump();
    host.fire_timers(1_000);
    let (reconnect, _, _, _) = host.take_fetch(Endpoint::Out);
    // Rate limited until 8 s from now: the backoff alone would be under 5 s.
    let reset = host.now + 8_000;
    host.d.fetch_text(reconnect, 429, "", Some(reset), host.now);
    host.pump();
    host.fire_timers(2_000);
    // The tab comes back into view, the browser says online: neither cuts the wait short.
    host.d.wake(Wake::RetryNow, host.now);
    host.d.wake(Wake::Reconnect, host.now);
    host.pump();
    host.fire_timers(3_000);
    assert_eq!(
        host.take_fetch_opt(Endpoint::Out),
        None,
        "not before the reset"
    );
    host.fire_timers(3_000);
    assert!(host.take_fetch_opt(Endpoint::Out).is_some(), "at the reset");
}

#[test]
fn a_429_on_an_append_retries_no_sooner_than_its_reset_with_the_same_part_id() {
    let mut host = Host::new(OPTIONS);
    host.now = 1_700_000_000_000; // a real clock: the reset is epoch milliseconds
    host.send("c1", "hi", "part-429");
    host.answer_call("tok");
    let (first, _, h1, b1) = host.take_fetch(Endpoint::In);
    // Rate limited until 12 s from now: the first backoff alone would be under 2 s.
    let reset = host.now + 12_000;
    host.d.fetch_text(first, 429, "", Some(reset), host.now);
    host.pump();
    host.fire_timers(6_000);
    host.d.wake(Wake::RetryNow, host.now);
    host.pump();
    host.fire_timers(5_000);
    assert_eq!(
        host.take_fetch_opt(Endpoint::In),
        None,
        "not before the reset"
    );
    host.fire_timers(2_000);
    retried_as(&mut host, &h1, &b1);
}

#[test]
fn a_429_whose_reset_has_passed_on_this_clock_still_waits_the_backoff() {
    let mut host = Host::new(OPTIONS);
    host.now = 1_700_000_000_000;
    host.send("c1", "hi", "part-429-past");
    host.answer_call("tok");
    let (first, _, h1, b1) = host.take_fetch(Endpoint::In);
    // The client's clock runs 3 s ahead of the server's: its reset 2 s away reads as past.
    host.d
        .fetch_text(first, 429, "", Some(host.now - 1_000), host.now);
    host.pump();
    assert_eq!(
        host.take_fetch_opt(Endpoint::In),
        None,
        "not retried at once"
    );
    host.fire_timers(100);
    assert_eq!(host.take_fetch_opt(Endpoint::In), None, "nor within 100 ms");
    host.fire_timers(1_000);
    retried_as(&mut host, &h1, &b1);
}

#[test]
fn a_401_on_a_reconnect_mid_stream_refreshes_the_token() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 0);
    host.d.pull(stream, host.now);
    host.pump();
    // The stream drops; the reconnect meets a 401.
    host.d.fetch_failed(out, "connection reset", host.now);
    host.pump();
    host.fire_timers(1_000); // a short backoff first
    let (reconnect, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_text(reconnect, 401, "", None, host.now);
    host.pump();
    assert_eq!(host.calls.len(), 1);
    assert_eq!(
        host.calls[0].1,
        Callback::AccessToken,
        "the stream's 401 refreshes (W7)"
    );
    host.answer_call("tok-2");
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-2"));
    assert_eq!(Host::header(&headers, "last-event-id"), None);
}

/// The append and the stream are refused with the same token. The stream's 401 refreshes it;
/// when the append's 401 arrives only after that refresh, the append uses the refreshed token
/// instead of calling `accessToken` again — even when the refresh returned the very same
/// text (JWTs minted in the same second with the same claims are byte-equal).
#[test]
fn a_second_401_after_a_refresh_that_returned_the_same_text_does_not_refresh_again() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-1");
    host.answer_call("tok-same");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_text(out, 401, "", None, host.now);
    host.pump();
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::AccessToken);
    host.answer_call("tok-same");
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-same"));
    // The append's 401, for the token from before the refresh, arrives now.
    host.d.fetch_text(append, 401, "", None, host.now);
    host.pump();
    assert!(host.calls.is_empty(), "refreshed once: {:?}", host.calls);
    let (retry, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-same"));
    // Still refused: both give up with a typed error instead of refreshing in a loop.
    host.d.fetch_text(retry, 401, "", None, host.now);
    host.d.fetch_text(out, 401, "", None, host.now);
    host.pump();
    assert!(host.calls.is_empty(), "{:?}", host.calls);
    let (_, error) = host
        .rejected
        .iter()
        .find(|(o, _)| *o == op)
        .expect("the send is rejected");
    assert!(
        matches!(error, ErrorRef::Ours(e) if e.code() == "unauthorized"),
        "{error:?}"
    );
}

#[test]
fn start_resolves_to_the_state_or_rejects_when_the_chat_is_removed_meanwhile() {
    let mut host = Host::new(OPTIONS);
    let op = host.d.start("c1", host.now);
    host.pump();
    host.answer_call("tok-1");
    let state = match host.resolved.iter().find(|(o, _)| *o == op) {
        Some((_, Value::Session(state))) => state.clone(),
        other => panic!("start not resolved to a state: {other:?}"),
    };
    assert_eq!(
        state.get("publicAccessToken").and_then(Json::as_str),
        Some("tok-1")
    );

    // Removed while `startSession` runs: no state to give, so the start is aborted (it never
    // resolves to nothing), and the late token is not kept.
    let op = host.d.start("c2", host.now);
    host.pump();
    host.d.remove_session("c2", host.now);
    host.pump();
    host.answer_call("tok-2");
    assert!(host.resolved.iter().all(|(o, _)| *o != op));
    host.assert_aborted(op);
    assert_eq!(host.d.get_session("c2"), None);
}

/// The `storage-error` events among `actions`: (chat id, the error's message).
fn storage_errors(actions: Vec<Action>) -> Vec<(String, String)> {
    actions
        .into_iter()
        .filter_map(|action| match action {
            Action::Event {
                json,
                error: Some(ErrorRef::Ours(error)),
            } if json.contains(r#""type":"storage-error""#) => {
                let chat = Json::parse(&json).unwrap();
                let chat = chat
                    .get("chatId")
                    .and_then(Json::as_str)
                    .unwrap()
                    .to_owned();
                Some((chat, error.to_string()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn unreadable_sessions_entries_start_their_chat_empty_instead_of_failing_the_transport() {
    // `null` is what `onSessionChange` reports for a removed chat; an app that saves those
    // hands them back.
    let options = r#"{"task":"chat","types":{"startSession":"function"},"sessions":{
        "good":{"publicAccessToken":"t","lastEventId":"9"},
        "removed":null,
        "no-token":{"lastEventId":"3"},
        "bad-token":{"publicAccessToken":"eyJ\nXYZ"},
        "garbage":"x"}}"#;
    let mut d = Driver::new(&Json::parse(options).unwrap(), 7).unwrap();
    let good = d.get_session("good").unwrap();
    assert_eq!(good.get("lastEventId").and_then(Json::as_str), Some("9"));
    assert!(!d.knows("removed"), "left to storage, as a chat not listed");
    assert!(d.knows("no-token") && d.get_session("no-token").is_none());
    assert!(d.knows("garbage") && d.get_session("garbage").is_none());
    // A token `fetch` cannot send would fail every request as a network failure, never asking
    // for another: the chat starts empty instead (and the token is in no message).
    assert!(d.knows("bad-token") && d.get_session("bad-token").is_none());
    let mut errors = storage_errors(d.drain());
    errors.sort();
    let unusable = "storage error: persisted session has no usable publicAccessToken";
    assert_eq!(
        errors,
        [
            ("bad-token".to_owned(), unusable.to_owned()),
            (
                "garbage".to_owned(),
                "storage error: persisted session is not an object".to_owned()
            ),
            ("no-token".to_owned(), unusable.to_owned()),
        ]
    );

    // The same words for a stored record that is not JSON: one "storage error: ", not two.
    d.hydrate("torn", Stored::Record("{\"v\":1,"), 0);
    let errors = storage_errors(d.drain());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].1.matches("error:").count(), 1, "{}", errors[0].1);
}

#[test]
fn a_cursor_seeded_before_the_session_survives_a_set_session_without_one() {
    let mut host = Host::new(OPTIONS);
    // A transcript was loaded (its cursor seeded) before the app set the chat's session from a
    // database row that has no cursor.
    host.d.seed_resume_cursor("c1", "500");
    let token_only = Json::parse(r#"{"publicAccessToken":"t"}"#).unwrap();
    host.d.set_session("c1", &token_only, host.now).unwrap();
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("500"));
    // A cursor in the state set wins.
    host.d.seed_resume_cursor("c2", "500");
    let with_cursor = Json::parse(r#"{"publicAccessToken":"t","lastEventId":"7"}"#).unwrap();
    host.d.set_session("c2", &with_cursor, host.now).unwrap();
    let state = host.d.get_session("c2").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("7"));
    // A chat that had a session takes the new state as it is.
    host.d.set_session("c1", &token_only, host.now).unwrap();
    assert_eq!(host.d.get_session("c1").unwrap().get("lastEventId"), None);
}

#[test]
fn a_closed_session_rejects_with_its_code_and_is_remembered() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "p");
    host.answer_call("tok");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(
        append,
        409,
        r#"{"ok":false,"error":"closed","code":"session_closed","closedReason":"done"}"#,
        None,
        host.now,
    );
    host.pump();
    let (rejected_op, error) = host.rejected.last().unwrap();
    assert_eq!(*rejected_op, op);
    assert!(
        matches!(error, ErrorRef::Ours(Error::SessionClosed { closed_reason: Some(r) }) if r == "done")
    );
    assert!(host.kinds().iter().any(|k| k == "session-closed"));
    assert!(host.d.is_closed("c1"));
    let before = host.fetches.len();
    let second = host.send("c1", "again", "p2");
    assert_eq!(host.fetches.len(), before, "refused without a request");
    assert!(host.rejected.iter().any(|(o, _)| *o == second));
    // Every other path that appends is refused the same way (W39): an action, a steering
    // message, a stop.
    let action = host.d.send_action(
        "c1",
        Some(Json::parse(r#"{"type":"undo"}"#).unwrap()),
        None,
        HeaderList::new(),
        "p3",
        host.now,
    );
    host.pump();
    let closed = |host: &Host, op: u32| {
        host.rejected
            .iter()
            .any(|(o, e)| *o == op && matches!(e, ErrorRef::Ours(Error::SessionClosed { .. })))
    };
    assert!(closed(&host, action), "the action: {:?}", host.rejected);
    let message =
        Json::parse(r#"{"id":"s1","role":"user","parts":[{"type":"text","text":"x"}]}"#).unwrap();
    let steer = host
        .d
        .send_pending_message("c1", message, None, "p4", host.now);
    host.pump();
    assert!(
        closed(&host, steer)
            || host
                .resolved
                .iter()
                .any(|(o, v)| *o == steer && matches!(v, Value::Bool(false))),
        "the steering message is not delivered: {:?} {:?}",
        host.rejected,
        host.resolved
    );
    let stop = host.d.stop_generation("c1", "p5", host.now);
    host.pump();
    assert!(
        !host
            .resolved
            .iter()
            .any(|(o, v)| *o == stop && matches!(v, Value::Bool(true))),
        "no stop is sent"
    );
    assert_eq!(host.fetches.len(), before, "none of them made a request");
}

#[test]
fn a_silent_connection_is_replaced_from_the_cursor() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 0);
    host.d.pull(stream, host.now);
    host.pump();
    host.d
        .fetch_bytes(out, &batch(&[(10, "a")], None), host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    host.fire_timers(31_000);
    assert!(
        host.aborted.contains(&out),
        "a stalled connection is dropped"
    );
    host.fire_timers(10_000);
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("10")
    );
}

#[test]
fn stall_timeout_ms_sets_how_long_a_silent_connection_is_kept() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"stallTimeoutMs":5000}"#;
    let mut host = Host::new(options);
    let (stream, out) = sent(&mut host, "c1", 0);
    host.d.pull(stream, host.now);
    host.pump();
    host.d
        .fetch_bytes(out, &batch(&[(10, "a")], None), host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    host.fire_timers(4_000);
    assert!(!host.aborted.contains(&out), "kept before 5 s");
    host.fire_timers(1_500);
    assert!(host.aborted.contains(&out), "dropped after 5 s, not 30");
}

#[test]
fn a_reload_resumes_from_the_turn_start_and_an_idle_chat_peeks() {
    let mut host = Host::new(OPTIONS);
    host.d.hydrate(
        "busy",
        Stored::Record(r#"{"v":1,"chatId":"busy","session":{"publicAccessToken":"t","lastEventId":"41","activeInputSeq":3,"isStreaming":true}}"#), 0,
    );
    let stream = host
        .d
        .reconnect("busy", Default::default(), host.now)
        .unwrap();
    host.pump();
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("41")
    );
    assert_eq!(
        Host::header(&headers, "x-peek-settled"),
        None,
        "a send is in flight"
    );
    host.d.cancel(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream], "a cancelled stream ends");
    host.ended.clear();

    host.d.hydrate(
        "idle",
        Stored::Shape(r#"{"publicAccessToken":"t","lastEventId":"9"}"#),
        0,
    );
    let stream = host
        .d
        .reconnect("idle", Default::default(), host.now)
        .unwrap();
    host.pump();
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "x-peek-settled").as_deref(),
        Some("1")
    );
    host.d.fetch_open(out, true, host.now);
    host.d.fetch_end(out, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream], "a settled session ends at once");

    host.d.hydrate(
        "done",
        Stored::Shape(r#"{"publicAccessToken":"t","isStreaming":false}"#),
        0,
    );
    assert_eq!(host.d.reconnect("done", Default::default(), host.now), None);
}

#[test]
fn stop_closes_the_stream_at_once_and_appends_one_stop() {
    let mut host = Host::new(OPTIONS);
    let (stream, _) = sent(&mut host, "c1", 2);
    let stop = host.d.stop_generation("c1", "stop-part", host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
    let (id, _, headers, body) = host.take_fetch(Endpoint::In);
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
    assert_eq!(
        Host::header(&headers, "x-part-id").as_deref(),
        Some("stop-part")
    );
    host.d
        .fetch_text(id, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    assert!(host
        .resolved
        .iter()
        .any(|(o, v)| *o == stop && *v == Value::Bool(true)));
    // The same turn is not stopped twice.
    let again = host.d.stop_generation("c1", "stop-2", host.now);
    host.pump();
    assert!(host.fetches.is_empty());
    assert!(host
        .resolved
        .iter()
        .any(|(o, v)| *o == again && *v == Value::Bool(true)));
}

#[test]
fn a_stop_for_a_session_that_is_gone_starts_no_new_one() {
    let mut host = Host::new(OPTIONS);
    // A reload mid-turn, and meanwhile the server dropped the session.
    host.d.hydrate(
        "c1",
        Stored::Shape(r#"{"publicAccessToken":"t","lastEventId":"4","isStreaming":true}"#),
        0,
    );
    let stop = host.d.stop_generation("c1", "stop-gone", host.now);
    host.pump();
    let (id, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(id, 404, "", None, host.now);
    host.pump();
    host.fire_timers(10_000);
    assert!(host.calls.is_empty(), "startSession: {:?}", host.calls);
    assert!(host.take_fetch_opt(Endpoint::In).is_none());
    assert!(host.resolved.contains(&(stop, Value::Bool(false))));
}

#[test]
fn the_next_send_after_a_stop_drops_the_stopped_turns_output() {
    let mut host = Host::new(OPTIONS);
    let (_, _) = sent(&mut host, "c1", 2);
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    let op = host.send("c1", "next", "p2");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(op);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    host.chunks.clear();
    // The stopped turn's tail and boundary, then the new turn.
    host.d
        .fetch_bytes(out, &batch(&[(5, "old")], Some((6, Some(3)))), host.now);
    host.d
        .fetch_bytes(out, &batch(&[(7, "new")], Some((8, Some(4)))), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "new");
}

/// Records of an agent on the prior wire shape: text deltas, then a `trigger:turn-complete`
/// data record (no `session-in-event-id`) at `boundary`.
fn legacy_batch(records: &[(u64, &str)], boundary: u64) -> Vec<u8> {
    let mut items: Vec<String> = records
        .iter()
        .map(|(seq, delta)| {
            let body = format!(r#"{{"data":{{"type":"text-delta","id":"t","delta":"{delta}"}}}}"#);
            format!(
                r#"{{"seq_num":{seq},"timestamp":1,"body":{},"headers":[]}}"#,
                Json::from(body.as_str()).to_json_string()
            )
        })
        .collect();
    let end = r#"{"data":{"type":"trigger:turn-complete","publicAccessToken":"fresh"}}"#;
    items.push(format!(
        r#"{{"seq_num":{boundary},"timestamp":1,"body":{},"headers":[]}}"#,
        Json::from(end).to_json_string()
    ));
    format!(
        "event: batch\ndata: {{\"records\":[{}],\"tail\":{{\"seq_num\":{},\"timestamp\":1}}}}\n\n",
        items.join(","),
        boundary + 1
    )
    .into_bytes()
}

#[test]
fn an_agent_on_the_prior_wire_shape_streams_every_reply_and_ends_each_on_its_boundary() {
    let mut host = Host::new(OPTIONS);
    let (first, out) = sent(&mut host, "c1", 0);
    host.d.pull(first, host.now);
    host.pump();
    host.d
        .fetch_bytes(out, &legacy_batch(&[(1, "one")], 2), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "one");
    host.d.pull(first, host.now);
    host.pump();
    assert!(host.ended.contains(&first));
    // Its boundaries never say which input they answer: later sends stream at once.
    for (seq, (text, at)) in [("two", 3u64), ("three", 5)].into_iter().enumerate() {
        let (stream, out) = accepted_send(&mut host, &format!("p{seq}"), seq as u64 + 1);
        host.chunks.clear();
        host.d
            .fetch_bytes(out, &legacy_batch(&[(at, text)], at + 1), host.now);
        host.pump();
        assert_eq!(texts(&host.chunks), text);
        host.d.pull(stream, host.now);
        host.pump();
        assert!(
            host.ended.contains(&stream),
            "{text}: ended on its boundary"
        );
    }
    // The agent is upgraded: its boundaries say what they answer again, and a send after a
    // stopped turn holds that turn's tail out again.
    let (_, out) = accepted_send(&mut host, "p3", 3);
    host.d
        .fetch_bytes(out, &batch(&[(7, "new")], Some((8, Some(3)))), host.now);
    host.pump();
    accepted_send(&mut host, "p4", 4);
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":5}"#, None, host.now);
    host.pump();
    let (_, out) = accepted_send(&mut host, "p6", 6);
    host.chunks.clear();
    host.d
        .fetch_bytes(out, &batch(&[(9, "-tail")], None), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "", "the stopped turn's tail is held");
}

/// A send of `c1` (session already known) accepted with `.in` seq `seq`: its stream, pulled,
/// and its `.out` connection, open.
fn accepted_send(host: &mut Host, part: &str, seq: u64) -> (u32, u32) {
    let op = host.send("c1", "next", part);
    let (stream, out) = acknowledged(host, op, seq);
    host.d.pull(stream, host.now);
    host.pump();
    (stream, out)
}

#[test]
fn after_a_reload_a_send_to_an_agent_on_the_prior_wire_shape_streams_at_once() {
    // The page that saw the agent's boundaries went away; this one knows nothing of what the
    // agent consumed (its boundaries never say). The send reads back from just before the
    // cursor, finds the last turn's boundary in the prior shape, and streams as the page before
    // did, instead of holding the whole reply to its end.
    let mut host = Host::new(OPTIONS);
    host.d.hydrate(
        "c1",
        Stored::Shape(r#"{"publicAccessToken":"t","lastEventId":"2","isStreaming":false}"#),
        0,
    );
    let (stream, out) = accepted_send(&mut host, "p", 2);
    host.d
        .fetch_bytes(out, &legacy_batch(&[(1, "one")], 2), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "", "the last turn is only read back");
    host.d
        .fetch_bytes(out, &batch(&[(3, "tw")], None), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "tw", "live, before the boundary");
    host.d.pull(stream, host.now);
    host.d
        .fetch_bytes(out, &legacy_batch(&[(4, "o")], 5), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "two");
    host.d.pull(stream, host.now);
    host.pump();
    assert!(host.ended.contains(&stream), "ended on its boundary");
}

#[test]
fn a_stream_whose_numbering_started_over_is_read_from_its_new_start() {
    // The chat was idle past the server's retention: its `.out` stream was dropped and made
    // again, numbered from 0. The stream's tail, below the cursor, says so; the records are
    // not taken for ones already seen (the reply would never show, and the send would stall).
    let mut host = Host::new(OPTIONS);
    host.d.hydrate(
        "c1",
        Stored::Shape(
            r#"{"publicAccessToken":"t","lastEventId":"500","isStreaming":false,"consumedInputSeq":40}"#,
        ),
        0,
    );
    let (stream, out) = accepted_send(&mut host, "p", 41);
    // The server started the read at its tail (past what it was asked from), after the reply
    // had begun: the connection is made again, from the new start.
    host.d
        .fetch_bytes(out, &batch(&[(1, "lo")], None), host.now);
    host.pump();
    assert!(host.aborted.contains(&out));
    host.fire_timers(5_000);
    let (again, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::header(&headers, "last-event-id"), None);
    host.d.fetch_open(again, false, host.now);
    host.d.fetch_bytes(
        again,
        &batch(&[(0, "Hel"), (1, "lo")], Some((2, Some(41)))),
        host.now,
    );
    host.pump();
    assert_eq!(texts(&host.chunks), "Hello");
    host.d.pull(stream, host.now);
    host.pump();
    assert!(host.ended.contains(&stream), "ended on its boundary");
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("2"));
    // The next send reads on from the new numbering.
    let (_, out_two) = {
        let op = host.send("c1", "again", "p2");
        let (append, _, _, _) = host.take_fetch(Endpoint::In);
        host.d
            .fetch_text(append, 200, r#"{"ok":true,"seq":42}"#, None, host.now);
        host.pump();
        (host.stream_of(op), host.take_fetch(Endpoint::Out))
    };
    assert_eq!(
        Host::header(&out_two.2, "last-event-id").as_deref(),
        Some("2")
    );
}

/// A whole turn (input 1), then turn 2 streams a little and is stopped (the stop is input 3),
/// and the next message is sent as input 4: its `.out` connection.
fn a_stopped_turn_then_the_next_message(host: &mut Host) -> u32 {
    let (first, out) = sent(host, "c1", 1);
    host.d.pull(first, host.now);
    host.d
        .fetch_bytes(out, &batch(&[(1, "one")], Some((2, Some(1)))), host.now);
    host.pump();
    let (second, out) = accepted_send(host, "p2", 2);
    host.d
        .fetch_bytes(out, &batch(&[(3, "two")], None), host.now);
    host.pump();
    assert!(!host.ended.contains(&second));
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    accepted_send(host, "p4", 4).1
}

#[test]
fn a_send_answered_without_a_seq_after_a_stopped_turn_does_not_end_on_that_turns_boundary() {
    // The answer to the append carries no seq (a retry whose first attempt landed, on a server
    // that answers repeats without one; an older webapp). Its seq is still past every input the
    // chat knew of when it was made (the stopped turn 2 and the stop 3): the stopped turn's
    // boundary is not taken for this send's, nor its tail for this reply.
    let mut host = Host::new(OPTIONS);
    let (first, out) = sent(&mut host, "c1", 1);
    host.d.pull(first, host.now);
    host.d
        .fetch_bytes(out, &batch(&[(1, "one")], Some((2, Some(1)))), host.now);
    host.pump();
    let (second, out) = accepted_send(&mut host, "p2", 2);
    host.d
        .fetch_bytes(out, &batch(&[(3, "two")], None), host.now);
    host.pump();
    assert!(!host.ended.contains(&second));
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    let op = host.send("c1", "next", "p4");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(op);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.chunks.clear();
    host.d.fetch_bytes(
        out,
        &batch(&[(4, "-tail of two")], Some((5, Some(3)))),
        host.now,
    );
    host.d
        .fetch_bytes(out, &batch(&[(6, "four")], Some((7, Some(4)))), host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "four");
    assert!(host.ended.contains(&stream));
}

/// A new page from `host`'s saved state of `c1`: its resumed stream, pulled, and its `.out`.
fn reloaded_and_resumed(host: &Host) -> (Host, u32, u32) {
    let mut page = Host::new(OPTIONS);
    page.d
        .hydrate("c1", Stored::Shape(&stored_state(host, "c1")), 0);
    let resumed = page
        .d
        .reconnect("c1", Default::default(), page.now)
        .unwrap();
    page.pump();
    let (out, _, _, _) = page.take_fetch(Endpoint::Out);
    page.d.fetch_open(out, false, page.now);
    page.d.pull(resumed, page.now);
    page.pump();
    (page, resumed, out)
}

#[test]
fn a_reload_before_a_stopped_turns_boundary_does_not_show_its_tail_as_the_next_reply() {
    let mut host = Host::new(OPTIONS);
    // The page reloads before turn 2's boundary came by.
    a_stopped_turn_then_the_next_message(&mut host);
    let (mut page, resumed, out) = reloaded_and_resumed(&host);
    // Turn 2's tail and boundary (the agent never read the stop), then turn 4.
    page.d
        .fetch_bytes(out, &batch(&[(4, "-tail")], Some((5, Some(2)))), page.now);
    page.d
        .fetch_bytes(out, &batch(&[(6, "four")], Some((7, Some(4)))), page.now);
    page.pump();
    page.d.pull(resumed, page.now);
    page.pump();
    assert_eq!(texts(&page.chunks), "four");
    assert!(page.ended.contains(&resumed));

    // A reload after the stopped turn's boundary: the stop no boundary answers is saved as
    // consumed, and the resumed reply streams before its own boundary.
    let mut host = Host::new(OPTIONS);
    let out = a_stopped_turn_then_the_next_message(&mut host);
    host.d
        .fetch_bytes(out, &batch(&[(4, "-tail")], Some((5, Some(2)))), host.now);
    host.pump();
    assert_eq!(
        last_persisted(&host, "consumedInputSeq").and_then(|v| v.as_u64()),
        Some(3)
    );
    let (mut page, _, out) = reloaded_and_resumed(&host);
    page.d
        .fetch_bytes(out, &batch(&[(6, "four")], None), page.now);
    page.pump();
    assert_eq!(texts(&page.chunks), "four", "streamed before its boundary");
}

#[test]
fn after_a_stop_that_no_boundary_answers_the_next_reply_still_streams() {
    // The stopped turn's boundary names the stopped message (2), not the stop (3): an agent
    // that ended the turn before it read the stop, which it then skips between turns.
    let mut host = Host::new(OPTIONS);
    sent(&mut host, "c1", 2);
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    let (next, out) = accepted_send(&mut host, "p2", 4);
    host.chunks.clear();
    host.d
        .fetch_bytes(out, &batch(&[(5, "old")], Some((6, Some(2)))), host.now);
    host.d
        .fetch_bytes(out, &batch(&[(7, "new")], None), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "new", "streamed before its boundary");
    assert!(!host.ended.contains(&next));
    // Saved at once: a reload now resumes from past the stopped turn's tail, not into it.
    assert_eq!(
        last_persisted(&host, "lastEventId")
            .as_ref()
            .and_then(Json::as_str),
        Some("6")
    );

    // The same when the next send is made before the stop's response comes back: it waits
    // for it (`.in` is read in arrival order: appended first, it would be the turn stopped).
    let mut host = Host::new(OPTIONS);
    sent(&mut host, "c1", 2);
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    let op = host.send("c1", "next", "p2");
    assert!(
        host.fetches.is_empty(),
        "held behind the stop: {:?}",
        host.fetches
    );
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.pump();
    let stream2 = host.stream_of(op);
    host.d.pull(stream2, host.now);
    host.chunks.clear();
    host.d
        .fetch_bytes(out, &batch(&[(5, "old")], Some((6, Some(2)))), host.now);
    host.d
        .fetch_bytes(out, &batch(&[(7, "new")], None), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "new");
}

#[test]
fn state_saved_without_consumed_input_seq_streams_the_next_reply_at_once() {
    // What an app that stores the JavaScript transport's fields in its own database hands back.
    let options = r#"{"task":"chat","types":{"accessToken":"function"},"sessions":{"c1":{"publicAccessToken":"t","lastEventId":"9","isStreaming":false}}}"#;
    let mut host = Host::new(options);
    let op = host.send("c1", "next", "p1");
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    // Two records before the cursor: the last turn's boundary, which says what was consumed,
    // is there (even with a trim record after it).
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("7")
    );
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":5}"#, None, host.now);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    host.d.pull(host.stream_of(op), host.now);
    host.d
        .fetch_bytes(out, &batch(&[], Some((9, Some(4)))), host.now);
    host.d
        .fetch_bytes(out, &batch(&[(10, "a"), (11, "b")], None), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "ab", "streamed before its boundary");
    assert!(host.ended.is_empty());
    // The turn starts at that boundary (what a reload replays from).
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("9"));

    // The boundary read again has no `session-in-event-id` (a first turn started by session
    // create reads nothing from `.in`): it is never taken for this send's own. Nothing was
    // learnt, so a send with earlier inputs holds its reply to its own boundary.
    for seq in [0, 5] {
        let mut host = Host::new(options);
        let op = host.send("c1", "next", "p1");
        let (out, _, _, _) = host.take_fetch(Endpoint::Out);
        let (append, _, _, _) = host.take_fetch(Endpoint::In);
        host.d.fetch_text(
            append,
            200,
            &format!(r#"{{"ok":true,"seq":{seq}}}"#),
            None,
            host.now,
        );
        host.d.fetch_open(out, false, host.now);
        host.pump();
        let stream = host.stream_of(op);
        host.d.pull(stream, host.now);
        host.d
            .fetch_bytes(out, &batch(&[], Some((9, None))), host.now);
        host.d
            .fetch_bytes(out, &batch(&[(10, "a"), (11, "b")], None), host.now);
        host.pump();
        let at_once = if seq == 0 { "ab" } else { "" };
        assert_eq!(texts(&host.chunks), at_once, "seq {seq}");
        assert!(
            host.ended.is_empty(),
            "the old boundary did not end it (seq {seq})"
        );
        host.d
            .fetch_bytes(out, &batch(&[], Some((12, Some(seq)))), host.now);
        host.pump();
        if seq == 0 {
            host.d.pull(stream, host.now); // (its data was taken already)
            host.pump();
        }
        assert_eq!(texts(&host.chunks), "ab", "seq {seq}");
        if host.ended.is_empty() {
            host.d.pull(stream, host.now);
            host.pump();
        }
        assert_eq!(
            host.ended,
            vec![stream],
            "ended at its own boundary (seq {seq})"
        );
    }

    // Without a cursor (a tab that got the token from startSession), `.out` is read from its
    // start: the earlier turns replay first and are not this reply.
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 2);
    host.d.pull(stream, host.now);
    host.d.fetch_bytes(
        out,
        &batch(&[(0, "old"), (1, "er")], Some((2, Some(1)))),
        host.now,
    );
    host.d
        .fetch_bytes(out, &batch(&[(3, "new")], None), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "new");
}

#[test]
fn stop_generation_before_the_server_has_the_message_aborts_the_send_instead() {
    // The chat's first message, while startSession runs: nothing goes out.
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "p1");
    assert_eq!(host.calls.len(), 1);
    let stop = host.d.stop_generation("c1", "s1", host.now);
    host.pump();
    assert!(matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op));
    assert!(host.resolved.contains(&(stop, Value::Bool(true))));
    host.answer_call("tok");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "neither the message nor a stop"
    );
    assert_eq!(
        host.d.stream_count(),
        0,
        "the aborted send's stream is forgotten"
    );

    // A message waiting to be sent again after a 500 (it may have landed): no stop overtakes it
    // on `.in`; if it lands, its turn is stopped.
    let mut host = Host::new(OPTIONS);
    let (first, out) = sent(&mut host, "c1", 1);
    host.d.pull(first, host.now);
    host.d
        .fetch_bytes(out, &batch(&[], Some((2, Some(1)))), host.now);
    host.pump();
    assert_eq!(host.ended, vec![first]);
    let op = host.send("c1", "again", "p2");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(append, 500, "", None, host.now);
    host.pump();
    let stop = host.d.stop_generation("c1", "s2", host.now);
    host.pump();
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "no stop before the message"
    );
    assert!(matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op));
    assert!(host.resolved.contains(&(stop, Value::Bool(true))));
    host.fire_timers(10_000);
    let (retry, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("p2"));
    host.d
        .fetch_text(retry, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    let (_, _, headers, body) = host.take_fetch(Endpoint::In);
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
    assert_eq!(
        Host::header(&headers, "x-part-id").as_deref(),
        Some("p2-stop")
    );
    assert_eq!(host.d.stream_count(), 0);
}

#[test]
fn a_send_aborted_in_flight_that_lands_after_a_newer_send_leaves_that_one_alone() {
    let mut host = Host::new(OPTIONS);
    let (first, out) = sent(&mut host, "c1", 1);
    host.d.pull(first, host.now);
    host.d
        .fetch_bytes(out, &batch(&[], Some((2, Some(1)))), host.now);
    host.pump();
    let a = host.send("c1", "stopped", "pa");
    let (append_a, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.abort_op(a, host.now);
    host.pump();
    // The user sends again while A's append is still on the wire; then A lands.
    let b = host.send("c1", "next", "pb");
    let (append_b, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append_a, 200, r#"{"ok":true,"seq":2}"#, None, host.now);
    host.pump();
    // Whichever of B and a stop the agent read first, a stop could end B's turn: none is sent,
    // and B is neither aborted nor stopped.
    assert!(host.take_fetch_opt(Endpoint::In).is_none(), "no stop");
    assert!(!host.rejected.iter().any(|(o, _)| *o == b), "B goes on");
    host.d
        .fetch_text(append_b, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(b);
    assert!(host.take_fetch_opt(Endpoint::In).is_none(), "no stop for B");
    // B's reply streams once A's turn has ended; A's reply is not shown as B's.
    host.d.pull(stream, host.now);
    host.chunks.clear();
    // (A's `.out` request was aborted with its stream.)
    let mut out_b = host.take_fetch(Endpoint::Out).0;
    while host.aborted.contains(&out_b) {
        out_b = host.take_fetch(Endpoint::Out).0;
    }
    host.d.fetch_open(out_b, false, host.now);
    host.d
        .fetch_bytes(out_b, &batch(&[(3, "a's")], Some((4, Some(2)))), host.now);
    host.d
        .fetch_bytes(out_b, &batch(&[(5, "mine")], Some((6, Some(3)))), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "mine");
    host.d.pull(stream, host.now);
    host.pump();
    // (A's stream, which nobody was given, ended when A was aborted.)
    assert_eq!(host.ended.first(), Some(&first));
    assert_eq!(host.ended.last(), Some(&stream));
    assert_eq!(host.ended.len(), 3);

    // The same when the newer send was acknowledged first and its turn streams (through its
    // own stream or, after the chat was left and shown again, a resumed one).
    let a3 = host.send("c1", "stopped again", "pa3");
    let (append_a3, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.abort_op(a3, host.now);
    host.pump();
    let b3 = host.send("c1", "newer", "pb3");
    acknowledged(&mut host, b3, 5);
    host.d
        .fetch_text(append_a3, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.pump();
    assert!(host.take_fetch_opt(Endpoint::In).is_none(), "no stop");
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("activeInputSeq").and_then(Json::as_u64), Some(5));
    assert_eq!(state.get("isStreaming").and_then(Json::as_bool), Some(true));
    // (A fresh start for the last case.)
    host.d.remove_session("c1", host.now);
    host.pump();
    host.fetches.clear();
    let (first, out) = sent(&mut host, "c1", 1);
    host.d.pull(first, host.now);
    host.d
        .fetch_bytes(out, &batch(&[], Some((2, Some(1)))), host.now);
    host.pump();

    // Without a newer send, the turn a late aborted send started is stopped.
    let a2 = host.send("c1", "stopped too", "pa2");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.abort_op(a2, host.now);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.pump();
    let (_, _, headers, body) = host.take_fetch(Endpoint::In);
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
    assert_eq!(
        Host::header(&headers, "x-part-id").as_deref(),
        Some("pa2-stop")
    );
}

/// `multiTab` in tab B of a browser without Web Locks.
const LOCKLESS_TAB_B: &str = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":false,"tabId":"tab-b"}"#;

const QUEUE_OPTIONS: &str = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b","multiTabSend":"queue"}"#;

/// Another tab (`tab-a`) announces that it owns `c1` and holds its writer lock.
fn claimed_by_another_tab(host: &mut Host) {
    host.d.tab_message(
        r#"{"type":"claim","chatId":"c1","tabId":"tab-a","at":1,"lock":true,"v":1}"#,
        host.now,
    );
    host.pump();
    assert!(host.d.is_read_only("c1"));
}

/// Tab A claims "c1" now the way the JavaScript coordinator does (no Web Lock behind it).
fn claimed_by_a_tab_without_locks(host: &mut Host) {
    let claim = format!(
        r#"{{"type":"claim","chatId":"c1","tabId":"tab-a","timestamp":{}}}"#,
        host.now
    );
    host.d.tab_message(&claim, host.now);
    host.pump();
}

/// The writer-lock actions the driver asked for since the last call, oldest first:
/// `"lock"` / `"lock-wait"` / `"unlock"`.
fn lock_actions(host: &mut Host) -> Vec<&'static str> {
    let mut kinds = vec![];
    host.other.retain(|a| match a {
        Action::LockRequest { wait, .. } => {
            kinds.push(if *wait { "lock-wait" } else { "lock" });
            false
        }
        Action::LockRelease { .. } => {
            kinds.push("unlock");
            false
        }
        _ => true,
    });
    kinds
}

#[test]
fn with_multi_tab_send_queue_a_send_waits_for_the_owners_turn_instead_of_failing() {
    let mut host = Host::new(QUEUE_OPTIONS);
    claimed_by_another_tab(&mut host);
    let op = host.send("c1", "hi", "p");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    assert!(
        host.rejected.is_empty() && host.calls.is_empty(),
        "waits, refused nothing"
    );
    assert!(!host.kinds().iter().any(|k| k == "message-send-failed"));
    // The other tab's turn is long; heartbeats keep its claim alive; the send keeps waiting.
    for _ in 0..6 {
        host.d.tab_message(
            r#"{"type":"heartbeat","chatId":"c1","tabId":"tab-a","v":1}"#,
            host.now,
        );
        host.fire_timers(5_000);
    }
    assert!(host.rejected.is_empty() && host.calls.is_empty());
    // Its turn ends and the browser hands the lock over: this tab owns the chat and sends.
    host.d.lock_result("c1", true, host.now);
    host.pump();
    assert!(host.d.has_claim("c1") && !host.d.is_read_only("c1"));
    host.answer_call("tok");
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("p"));
    host.d
        .fetch_text(append, 200, r#"{"seq":4}"#, None, host.now);
    host.pump();
    assert!(
        host.resolved.iter().any(|(o, _)| *o == op),
        "the send resolves to its stream"
    );

    // Without the option the same send is refused at once, as the JS transport does.
    let mut host = Host::new(&QUEUE_OPTIONS.replace(r#","multiTabSend":"queue""#, ""));
    claimed_by_another_tab(&mut host);
    let op = host.send("c1", "hi", "p");
    assert_eq!(
        lock_actions(&mut host),
        ["lock"],
        "only if the lock is free"
    );
    host.d.lock_result("c1", false, host.now);
    host.pump();
    assert!(
        matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::ReadOnlyTab))) if *o == op)
    );
    assert!(lock_actions(&mut host).is_empty(), "and not asked again");
}

#[test]
fn stop_generation_aborts_a_send_queued_behind_another_tabs_turn() {
    let mut host = Host::new(QUEUE_OPTIONS);
    // This tab follows the other tab's turn (resumed: the state says it streams).
    host.d.hydrate(
        "c1",
        Stored::Shape(
            r#"{"publicAccessToken":"t","lastEventId":"9","isStreaming":true,"activeInputSeq":4}"#,
        ),
        0,
    );
    claimed_by_another_tab(&mut host);
    let op = host.send("c1", "hi", "p");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    host.d.stop_generation("c1", "stop-1", host.now);
    host.pump();
    host.assert_aborted(op);
    assert_eq!(
        lock_actions(&mut host),
        ["unlock"],
        "its place in the queue is given up"
    );
    // Granted anyway (a late grant): nothing of it goes out.
    host.d.lock_result("c1", true, host.now);
    host.pump();
    let sends_it = host.fetches.iter().any(|f| {
        matches!(f, Action::Fetch { endpoint: Endpoint::In, body: Some(b), .. } if b.contains(r#""text":"hi""#))
    });
    assert!(!sends_it, "{:?}", host.fetches);
}

#[test]
fn a_queued_send_that_is_aborted_or_disposed_ends_at_once_and_gives_up_its_place() {
    let mut host = Host::new(QUEUE_OPTIONS);
    claimed_by_another_tab(&mut host);
    let first = host.send("c1", "one", "p1");
    let second = host.send("c1", "two", "p2");
    assert_eq!(
        lock_actions(&mut host),
        ["lock-wait"],
        "one request per chat"
    );
    host.d.abort_op(first, host.now);
    host.pump();
    assert!(
        matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == first)
    );
    assert!(
        lock_actions(&mut host).is_empty(),
        "the other send still waits"
    );
    host.d.abort_op(second, host.now);
    host.pump();
    assert!(
        matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == second)
    );
    assert_eq!(
        lock_actions(&mut host),
        ["unlock"],
        "the request is cancelled"
    );
    // A grant that raced the cancel is handed straight back: no claim, nothing sent.
    host.other.clear();
    host.d.lock_result("c1", true, host.now);
    host.pump();
    assert_eq!(lock_actions(&mut host), ["unlock"]);
    assert!(!host.d.has_claim("c1") && host.calls.is_empty());
    assert!(
        !host
            .other
            .iter()
            .any(|a| matches!(a, Action::Broadcast { .. })),
        "no claim broadcast"
    );

    // `dispose()` ends a queued send the same way.
    let op = host.send("c1", "three", "p3");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    host.d.dispose(host.now);
    host.pump();
    assert!(matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op));
    assert_eq!(lock_actions(&mut host), ["unlock"]);
    assert!(host.calls.is_empty() && host.take_fetch_opt(Endpoint::In).is_none());

    // An answer that comes after every send it was for was aborted releases nothing: here the
    // tab owns the chat meanwhile, and keeps it.
    let mut host = Host::new(QUEUE_OPTIONS);
    let op = host.send("c9", "x", "p9");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    host.d.abort_op(op, host.now);
    host.pump();
    assert_eq!(lock_actions(&mut host), ["unlock"]);
    let owned = host.send("c9", "y", "p10");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    host.d.lock_result("c9", true, host.now);
    host.pump();
    assert!(host.d.has_claim("c9"));
    host.d.lock_result("c9", false, host.now); // the first request's late answer
    host.pump();
    assert!(host.d.has_claim("c9"), "the running send keeps its claim");
    assert!(lock_actions(&mut host).is_empty());
    assert!(!host.rejected.iter().any(|(o, _)| *o == owned));
}

#[test]
fn a_reloaded_saved_send_is_not_queued_but_a_send_beside_it_is() {
    let mut host = Host::new(QUEUE_OPTIONS);
    let stream = replaying_saved_send(&mut host);
    assert_eq!(
        lock_actions(&mut host),
        ["lock"],
        "the replay only asks if the lock is free"
    );
    let op = host.send("c1", "hi", "p2");
    assert!(lock_actions(&mut host).is_empty());
    // Another tab holds it: the replay is left to that tab, the user's send waits its turn.
    host.d.lock_result("c1", false, host.now);
    host.pump();
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
    assert!(!host.rejected.iter().any(|(o, _)| *o == op));
    host.d.lock_result("c1", true, host.now);
    host.pump();
    let (_, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("p2"));
    // A reload's saved send while this tab waits in the lock's queue is left to the owner.
    host.d.hydrate("c3", Stored::Shape(SAVED_SEND), 0);
    let queued = host.send("c3", "hi", "p4");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    let replay = host
        .d
        .reconnect("c3", Default::default(), host.now)
        .expect("a stream for the saved send");
    host.pump();
    assert!(
        lock_actions(&mut host).is_empty(),
        "it does not join the queue"
    );
    host.d.pull(replay, host.now);
    host.pump();
    assert!(host.ended.contains(&replay));
    assert!(!host.rejected.iter().any(|(o, _)| *o == queued));
    // A queued request that fails (not a busy lock: an error) refuses what waited on it.
    let op = host.send("c2", "hi", "p3");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    host.d.lock_result("c2", false, host.now);
    host.pump();
    assert!(
        matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::ReadOnlyTab))) if *o == op)
    );
}

#[test]
fn a_failed_lock_query_drops_no_claim() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b"}"#;
    let mut host = Host::new(options);
    let claim = format!(
        r#"{{"type":"claim","chatId":"c1","tabId":"tab-a","lock":true,"at":{}}}"#,
        host.now - 10
    );
    host.d.tab_message(&claim, host.now);
    host.pump();
    assert!(host.d.is_read_only("c1"));
    // A query made after the claim could not be answered (`navigator.locks.query()` rejected):
    // nothing is known.
    host.now += 100;
    host.d.lock_status(None, host.now, host.now);
    host.pump();
    assert!(host.d.is_read_only("c1"), "the owner's claim stands");
    // A later query that answers says the lock is gone: the chat is free.
    host.now += 100;
    host.d.lock_status(Some(&[]), host.now, host.now);
    host.pump();
    assert!(!host.d.is_read_only("c1"));
}

#[test]
fn a_disposed_transport_polls_no_locks_and_asks_who_owns_what_when_used_again() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b"}"#;
    let mut host = Host::new(options);
    let claim = format!(
        r#"{{"type":"claim","chatId":"c1","tabId":"tab-a","lock":true,"at":{}}}"#,
        host.now
    );
    host.d.tab_message(&claim, host.now);
    host.pump();
    assert!(!host.timers.is_empty(), "another tab's lock is watched");
    host.d.dispose(host.now);
    host.pump();
    assert!(host.timers.is_empty(), "{:?}", host.timers);
    host.other.clear();
    host.fire_timers(60_000);
    assert!(!host.other.iter().any(|a| matches!(a, Action::LockQuery)));

    // Used again (or shown from the back/forward cache): it asks the others, and watches again.
    host.d.rejoin(host.now);
    host.pump();
    let who = host.other.iter().any(|a| {
        matches!(a, Action::Broadcast { message } if message.get("type").and_then(Json::as_str) == Some("who"))
    });
    assert!(who, "{:?}", host.other);
    assert!(!host.timers.is_empty());
}

#[test]
fn a_chat_id_too_long_to_announce_is_sent_uncoordinated() {
    for locks in [false, true] {
        let options = format!(
            r#"{{"task":"chat","types":{{"startSession":"function"}},"multiTab":true,"locks":{locks},"tabId":"tab-a"}}"#
        );
        let mut host = Host::new(&options);
        let long = "c".repeat(300);
        host.send(&long, "hi", "p");
        assert!(host.rejected.is_empty(), "{:?}", host.rejected);
        assert_eq!(host.calls.len(), 1, "the send goes ahead (locks: {locks})");
        assert!(!host.d.is_read_only(&long) && !host.d.has_claim(&long));
    }
}

/// The `version` of each `session` message this tab broadcast since `host.other` was cleared.
fn session_versions(host: &Host) -> Vec<u64> {
    host.other
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast { message }
                if message.get("type").and_then(Json::as_str) == Some("session") =>
            {
                message.get("version").and_then(Json::as_u64)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_cursor_broadcast_after_the_clock_stepped_back_is_still_newer_than_the_last() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":false,"tabId":"tab-a"}"#;
    let mut host = Host::new(options);
    host.now = 1_700_000_000_000;
    let (stream, out) = sent(&mut host, "c1", 1);
    host.d.pull(stream, host.now);
    host.other.clear();
    host.d
        .fetch_bytes(out, &batch(&[(1, "one")], Some((2, Some(1)))), host.now);
    host.pump();
    let first = session_versions(&host);
    assert_eq!(first.len(), 1, "{:?}", host.other);
    // The system clock steps back ten minutes before the next turn ends.
    host.now -= 600_000;
    let (_, out) = accepted_send(&mut host, "p2", 2);
    host.other.clear();
    host.d
        .fetch_bytes(out, &batch(&[(3, "two")], Some((4, Some(2)))), host.now);
    host.pump();
    let second = session_versions(&host);
    assert_eq!(second.len(), 1, "{:?}", host.other);
    assert!(second[0] > first[0], "{second:?} after {first:?}");
}

/// This tab streams a turn under the writer lock; then a tab without Web Locks (the JS
/// transport) turns out to have claimed the chat earlier, and its claim wins:
/// (host, stream, out).
fn locked_turn_then_lost_claim(options: &str) -> (Host, u32, u32) {
    let mut host = Host::new(options);
    let op = host.send("c1", "hi", "p");
    host.d.lock_result("c1", true, host.now);
    host.pump();
    host.answer_call("tok");
    let (stream, out) = acknowledged(&mut host, op, 1);
    host.d.pull(stream, host.now);
    host.other.clear();
    let theirs = format!(
        r#"{{"type":"claim","chatId":"c1","tabId":"js-tab","at":{}}}"#,
        host.now - 1_000
    );
    host.d.tab_message(&theirs, host.now);
    host.pump();
    (host, stream, out)
}

#[test]
fn a_claim_lost_to_a_tab_without_locks_keeps_the_lock_until_the_turn_ends() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b"}"#;
    let (mut host, stream, out) = locked_turn_then_lost_claim(options);
    assert!(host.d.is_read_only("c1") && !host.d.has_claim("c1"));
    let released = |host: &Host| {
        host.other
            .iter()
            .any(|a| matches!(a, Action::LockRelease { .. }))
    };
    assert!(
        !released(&host),
        "the lock is kept while this tab's turn runs"
    );
    host.d
        .fetch_bytes(out, &batch(&[(2, "ok")], Some((3, Some(1)))), host.now);
    host.pump();
    assert!(released(&host), "and given back when it ends");
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
}

#[test]
fn after_a_lost_claim_a_send_of_the_tab_that_still_holds_the_lock_does_not_wait_for_itself() {
    let reject = QUEUE_OPTIONS.replace(r#","multiTabSend":"queue""#, "");
    for options in [QUEUE_OPTIONS, reject.as_str()] {
        lost_claim_then_sends(options);
    }
}

fn lost_claim_then_sends(options: &str) {
    let (mut host, _, _) = locked_turn_then_lost_claim(options);
    assert!(host.d.is_read_only("c1"));
    host.other.clear();
    // The lock-less tab owns the chat: refused at once (a queue needs the lock), never parked
    // behind this tab's own lock.
    let second = host.send("c1", "again", "p2");
    assert!(
        matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::ReadOnlyTab))) if *o == second)
    );
    assert!(!host
        .other
        .iter()
        .any(|a| matches!(a, Action::LockRequest { .. })));
    // Once it gives the chat back, a send goes ahead under the lock this tab holds.
    host.d.tab_message(
        r#"{"type":"release","chatId":"c1","tabId":"js-tab"}"#,
        host.now,
    );
    host.pump();
    let third = host.send("c1", "now", "p3");
    assert!(host.rejected.iter().all(|(o, _)| *o != third));
    assert!(host.d.has_claim("c1"));
    assert!(host.take_fetch_opt(Endpoint::In).is_some(), "its append");
    // The lock this tab holds was never given up meanwhile (another tab could have taken it).
    assert!(!host
        .other
        .iter()
        .any(|a| matches!(a, Action::LockRelease { .. })));
}

#[test]
fn with_web_locks_a_send_waits_for_the_writer_lock() {
    let options = LOCKED_TAB_A;
    let mut host = Host::new(options);
    assert!(
        host.other
            .iter()
            .any(|a| matches!(a, Action::Broadcast { .. })),
        "joins with `who`"
    );
    let op = host.send("c1", "hi", "p");
    assert!(host.other.iter().any(
        |a| matches!(a, Action::LockRequest { name, .. } if name == "trigger-chat:c1:writer")
    ));
    assert!(host.calls.is_empty(), "nothing happens before the lock");
    host.d.lock_result("c1", false, host.now);
    host.pump();
    assert!(
        matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::ReadOnlyTab))) if *o == op)
    );
    let op = host.send("c1", "hi", "p2");
    host.d.lock_result("c1", true, host.now);
    host.pump();
    assert!(host.d.has_claim("c1"));
    assert_eq!(host.calls.len(), 1, "the send proceeds");
    host.answer_call("tok");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(append, 500, "", None, host.now);
    host.pump();
    // A failed send gives the claim back (the JS coordinator leaks it, M4) — after its retries.
    for _ in 0..10 {
        host.fire_timers(10_000);
        if let Some(i) = host.fetches.iter().position(|f| {
            matches!(
                f,
                Action::Fetch {
                    endpoint: Endpoint::In,
                    ..
                }
            )
        }) {
            let (id, _, _, _) = host.take_fetch(Endpoint::In);
            let _ = i;
            host.d.fetch_text(id, 500, "", None, host.now);
            host.pump();
        }
    }
    assert!(host.rejected.iter().any(|(o, _)| *o == op));
    assert_eq!(
        host.d.stream_count(),
        0,
        "the failed send's stream is forgotten"
    );
    assert!(!host.d.has_claim("c1"));
    assert!(host.other.iter().any(
        |a| matches!(a, Action::LockRelease { name, .. } if name == "trigger-chat:c1:writer")
    ));
}

/// `multiTab` with Web Locks, as tab `tab-a`.
const LOCKED_TAB_A: &str = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-a"}"#;

/// A `multiTab` tab (`tab-a`, Web Locks) whose send of `c1` holds the writer lock; the send's
/// op and, once the append is accepted, its stream.
fn owned_send(host: &mut Host, part: &str) -> u32 {
    let op = host.send("c1", "hi", part);
    host.d.lock_result("c1", true, host.now);
    host.pump();
    assert!(host.d.has_claim("c1"));
    if !host.calls.is_empty() {
        host.answer_call("tok");
    }
    op
}

/// [`owned_send`] whose append the server accepts as `.in` seq `seq`: (op, its stream).
fn accepted_owned_send(host: &mut Host, part: &str, seq: u64) -> (u32, u32) {
    let op = owned_send(host, part);
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let accepted = format!(r#"{{"ok":true,"seq":{seq}}}"#);
    host.d.fetch_text(append, 200, &accepted, None, host.now);
    host.pump();
    (op, host.stream_of(op))
}

#[test]
fn a_stop_gives_the_chat_back_to_the_other_tabs() {
    let options = LOCKED_TAB_A;
    // stopGeneration while the reply streams.
    let mut host = Host::new(options);
    let (_, stream) = accepted_owned_send(&mut host, "p1", 1);
    host.other.clear();
    host.d.stop_generation("c1", "stop-1", host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream], "the stream closes at once");
    // Until the agent has the stop, another tab's message could reach the turn it stops.
    assert!(host.d.has_claim("c1"), "held while the stop is on its way");
    assert!(lock_actions(&mut host).is_empty());
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":2}"#, None, host.now);
    host.pump();
    assert!(!host.d.has_claim("c1"), "the stop released the claim");
    assert_eq!(lock_actions(&mut host), ["unlock"]);
    assert!(host.other.iter().any(
        |a| matches!(a, Action::Broadcast { message } if message.get("type").and_then(Json::as_str) == Some("release"))
    ));
    // useChat's stop(): the send's signal aborts its stream, which stops the turn.
    let (_, second) = accepted_owned_send(&mut host, "p2", 3);
    assert_ne!(second, stream);
    host.other.clear();
    host.d.abort_stream(second, true, "stop-2", host.now);
    host.pump();
    let (stop, _, _, body) = host.take_fetch(Endpoint::In);
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.pump();
    assert!(!host.d.has_claim("c1"));
    assert_eq!(lock_actions(&mut host), ["unlock"]);
    // A send aborted while its append was on the wire, which then lands: the turn it started
    // is stopped, and the chat is free again.
    let op = owned_send(&mut host, "p3");
    host.other.clear();
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.abort_op(op, host.now);
    host.pump();
    assert!(host.d.has_claim("c1"), "the append may still land");
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":5}"#, None, host.now);
    host.pump();
    let (stop, _, _, body) = host.take_fetch(Endpoint::In);
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":6}"#, None, host.now);
    host.pump();
    assert!(!host.d.has_claim("c1"));
    assert_eq!(lock_actions(&mut host), ["unlock"]);
}

#[test]
fn a_session_the_server_forgot_is_recreated_and_read_from_its_start() {
    let mut host = Host::new(OPTIONS);
    host.d.hydrate(
        "gone",
        Stored::Shape(r#"{"publicAccessToken":"old","lastEventId":"41","isStreaming":false}"#),
        0,
    );
    let request = Json::parse(
        r#"{"chatId":"gone","message":{"id":"u","role":"user","parts":[{"type":"text","text":"hi"}]}}"#,
    )
    .unwrap();
    let op = host
        .d
        .send_messages(SendRequest::from_json(&request).unwrap(), "p", host.now);
    host.pump();
    let (out, _, out_headers, _) = host.take_fetch(Endpoint::Out);
    // Two records early: the state does not say what the agent consumed (see
    // `state_saved_without_consumed_input_seq_streams_the_next_reply_at_once`).
    assert_eq!(
        Host::header(&out_headers, "last-event-id").as_deref(),
        Some("39")
    );
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    // Both meet a 404; one startSession call repairs both.
    host.d.fetch_text(
        out,
        404,
        r#"{"ok":false,"error":"no such session"}"#,
        None,
        host.now,
    );
    host.d.fetch_text(
        append,
        404,
        r#"{"ok":false,"error":"no such session"}"#,
        None,
        host.now,
    );
    host.pump();
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::StartSession);
    host.answer_call("new");
    let (out, _, out_headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&out_headers, "last-event-id"),
        None,
        "the new session is read from its start"
    );
    assert_eq!(
        Host::header(&out_headers, "authorization").as_deref(),
        Some("Bearer new")
    );
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("p"));
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(op);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    host.d
        .fetch_bytes(out, &batch(&[(0, "fresh")], Some((1, None))), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "fresh");
    assert!(host.failed.is_empty());
}

#[test]
fn unreadable_tab_messages_are_counted_and_change_nothing() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":false,"tabId":"tab-a"}"#;
    let mut host = Host::new(options);
    assert_eq!(host.d.ignored_tab_messages(), 0);
    for junk in [
        "7",
        "\"claim\"",
        "not json",
        r#"{"type":"claim"}"#,
        r#"{"type":"claim","chatId":1,"tabId":"x"}"#,
        r#"{"type":"messages","chatId":"c1","tabId":"x","messages":"nope"}"#,
    ] {
        host.d.tab_message(junk, host.now);
    }
    assert_eq!(host.d.ignored_tab_messages(), 6);
    assert!(!host.d.is_read_only("c1"));
    // A well-formed claim is not counted, and takes effect.
    let claim = format!(
        r#"{{"type":"claim","chatId":"c1","tabId":"tab-b","timestamp":{}}}"#,
        host.now
    );
    host.d.tab_message(&claim, host.now);
    assert_eq!(host.d.ignored_tab_messages(), 6);
    assert!(host.d.is_read_only("c1"));
    // Without multiTab nothing is read, so nothing is counted.
    let mut single = Host::new(r#"{"task":"chat","types":{"startSession":"function"}}"#);
    single.d.tab_message("7", single.now);
    assert_eq!(single.d.ignored_tab_messages(), 0);
}

const WATCH_OPTIONS: &str =
    r#"{"task":"chat","types":{"startSession":"function","accessToken":"function"},"watch":true}"#;

/// A record of [`mixed_batch`].
enum Rec {
    /// `seq`, text delta.
    Delta(u64, &'static str),
    /// `seq`, the `.in` seq the turn boundary consumed.
    Boundary(u64, u64),
}

/// One SSE `batch` event holding `records` in order.
fn mixed_batch(records: &[Rec]) -> Vec<u8> {
    let mut items = Vec::new();
    for record in records {
        items.push(match record {
            Rec::Delta(seq, delta) => {
                let body = format!(r#"{{"data":{{"type":"text-delta","id":"t","delta":"{delta}"}}}}"#);
                format!(
                    r#"{{"seq_num":{seq},"timestamp":1,"body":{},"headers":[]}}"#,
                    Json::from(body.as_str()).to_json_string()
                )
            }
            Rec::Boundary(seq, in_id) => format!(
                r#"{{"seq_num":{seq},"timestamp":1,"body":"","headers":[["trigger-control","turn-complete"],["public-access-token","tok-{seq}"],["session-in-event-id","{in_id}"]]}}"#
            ),
        });
    }
    format!(
        "event: batch\ndata: {{\"records\":[{}]}}\n\n",
        items.join(",")
    )
    .into_bytes()
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[test]
fn watch_mode_follows_every_turn_on_one_stream_until_the_session_closes() {
    let mut host = Host::new(WATCH_OPTIONS);
    host.d.hydrate(
        "w",
        Stored::Shape(r#"{"publicAccessToken":"t","lastEventId":"9","isStreaming":false}"#),
        0,
    );
    let stream = host
        .d
        .reconnect("w", Default::default(), host.now)
        .expect("a watcher needs no turn in flight");
    host.pump();
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("9")
    );
    assert_eq!(
        Host::header(&headers, "x-peek-settled"),
        None,
        "a watcher waits for turns"
    );
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    // Turn 1 ends and turn 2 begins inside one batch; turn 2 ends in the next one.
    host.d.fetch_bytes(
        out,
        &mixed_batch(&[
            Rec::Delta(10, "one "),
            Rec::Boundary(11, 1),
            Rec::Delta(12, "two"),
        ]),
        host.now,
    );
    host.pump();
    assert!(host.ended.is_empty(), "the boundary does not end a watcher");
    let (_, state) = host.persisted.last().unwrap();
    let state = state.as_ref().unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("11"));
    assert_eq!(
        state.get("publicAccessToken").and_then(Json::as_str),
        Some("tok-11"),
        "each boundary's token is adopted"
    );
    host.d.pull(stream, host.now);
    host.pump();
    host.d
        .fetch_bytes(out, &mixed_batch(&[Rec::Boundary(13, 2)]), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "one two");
    let kinds = host.kinds();
    assert_eq!(count(&kinds, "first-chunk"), 2, "{kinds:?}");
    assert_eq!(count(&kinds, "turn-completed"), 2, "{kinds:?}");
    assert_eq!(count(&kinds, "stream-connected"), 1, "{kinds:?}");

    // The long poll ends: the watcher comes back from its cursor with the newest token.
    host.d.fetch_end(out, host.now);
    host.pump();
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("13")
    );
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-13"));
    // An outage far longer than a turn's patience: the watcher keeps trying, backing off.
    let mut out = out;
    for _ in 0..12 {
        host.d.fetch_failed(out, "offline", host.now);
        host.pump();
        assert!(
            host.take_fetch_opt(Endpoint::Out).is_none(),
            "backs off first"
        );
        host.fire_timers(60_000);
        out = host.take_fetch(Endpoint::Out).0;
    }
    assert!(host.failed.is_empty(), "{:?}", host.failed);
    assert!(host.ended.is_empty());

    // A closed session ends the watch, cleanly.
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    let closed = r#"event: batch
data: {"records":[{"seq_num":14,"timestamp":1,"body":"","headers":[["trigger-control","session-closed"],["session-closed-reason","done"]]}]}

"#;
    host.d.fetch_bytes(out, closed.as_bytes(), host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream], "the pending pull gets the end");
    assert!(host.kinds().iter().any(|k| k == "session-closed"));
    assert_eq!(host.d.reconnect("w", Default::default(), host.now), None);
}

#[test]
fn in_watch_mode_a_send_still_ends_at_its_own_boundary() {
    let mut host = Host::new(WATCH_OPTIONS);
    host.d.hydrate("nobody", Stored::Nothing, 0);
    assert_eq!(
        host.d.reconnect("nobody", Default::default(), host.now),
        None,
        "no session, nothing to watch"
    );
    let (stream, out) = sent(&mut host, "c", 4);
    host.d.pull(stream, host.now);
    host.pump();
    host.d
        .fetch_bytes(out, &batch(&[(0, "a")], Some((1, Some(4)))), host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(
        host.ended,
        vec![stream],
        "useChat's send leaves `streaming` (the JS transport's never ends, W23)"
    );
    // Between turns the watcher attaches again and sees no peek: it waits for the next turn.
    let watcher = host.d.reconnect("c", Default::default(), host.now);
    host.pump();
    assert!(watcher.is_some());
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::header(&headers, "x-peek-settled"), None);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("1")
    );
}

const HEAD_START_OPTIONS: &str = r#"{"task":"chat","types":{"startSession":"function","accessToken":"function"},"headStart":"/api/chat","clientData":{"plan":"pro"}}"#;

/// A first send with the whole history, as the host passes it when `headStart` is set.
fn head_start_send(host: &mut Host, chat: &str) -> u32 {
    let request = Json::parse(&format!(
        r#"{{"chatId":"{chat}","trigger":"submit-message","messageId":"m2","messages":[{{"id":"u0","role":"user","parts":[]}},{{"id":"u1","role":"user","parts":[{{"type":"text","text":"hi"}}]}}],"message":{{"id":"u1","role":"user","parts":[{{"type":"text","text":"hi"}}]}},"body":{{"extra":1}},"metadata":{{"m":2}}}}"#
    ))
    .unwrap();
    let op = host.d.send_messages(
        SendRequest::from_json(&request).unwrap(),
        "part-hs",
        host.now,
    );
    host.pump();
    op
}

fn sse_chunks(chunks: &[&str]) -> Vec<u8> {
    chunks
        .iter()
        .map(|c| format!("data: {c}\n\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn head_start_posts_the_first_turn_to_the_handler_and_later_turns_go_to_in() {
    let mut host = Host::new(HEAD_START_OPTIONS);
    let op = head_start_send(&mut host, "h");
    assert!(host.calls.is_empty(), "the handler creates the session");
    let (post, path, headers, body) = host.take_fetch(Endpoint::HeadStart);
    assert_eq!(path, "/api/chat");
    assert_eq!(Host::header(&headers, "authorization"), None);
    assert_eq!(
        Host::header(&headers, "content-type").as_deref(),
        Some("application/json")
    );
    let body = Json::parse(&body.unwrap()).unwrap();
    assert_eq!(body.get("extra").and_then(Json::as_u64), Some(1));
    assert_eq!(body.get("chatId").and_then(Json::as_str), Some("h"));
    assert_eq!(
        body.get("trigger").and_then(Json::as_str),
        Some("submit-message")
    );
    assert_eq!(body.get("messageId").and_then(Json::as_str), Some("m2"));
    assert_eq!(
        body.get("headStartMessages")
            .and_then(Json::as_array)
            .map(<[Json]>::len),
        Some(2),
        "the whole history"
    );
    let metadata = body.get("metadata").unwrap();
    assert_eq!(metadata.get("plan").and_then(Json::as_str), Some("pro"));
    assert_eq!(metadata.get("m").and_then(Json::as_u64), Some(2));
    assert!(host.resolved.is_empty(), "settles with the response");

    host.d.head_start_open(post, "tok-hs", true, host.now);
    host.pump();
    let stream = host.stream_of(op);
    let (_, state) = host.persisted.last().unwrap();
    let state = state.as_ref().unwrap();
    assert_eq!(
        state.get("publicAccessToken").and_then(Json::as_str),
        Some("tok-hs")
    );
    assert_eq!(state.get("isStreaming").and_then(Json::as_bool), Some(true));
    let sent = Json::parse(&host.events[0]).unwrap();
    assert_eq!(
        sent.get("type").and_then(Json::as_str),
        Some("message-sent")
    );
    assert_eq!(
        sent.get("source").and_then(Json::as_str),
        Some("head-start")
    );
    assert_eq!(sent.get("messageId").and_then(Json::as_str), Some("m2"));
    assert!(sent.get("partId").is_none());
    assert!(host.kinds().iter().any(|k| k == "run-pending-version"));

    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.reads, vec![post]);
    host.d.fetch_bytes(
        post,
        &sse_chunks(&[
            r#"{"type":"start","messageId":"a1"}"#,
            r#"{"type":"text-delta","id":"t","delta":"Hi "}"#,
            // A frame that is not JSON is dropped (as the JS transport drops it).
            r#"{"type":"text-delta","id":"t","#,
            r#"{"type":"text-delta","id":"t","delta":"there"}"#,
            r#"{"type":"trigger:turn-complete"}"#,
            r#"{"type":"trigger:session-state","lastEventId":"7"}"#,
        ]),
        host.now,
    );
    host.pump();
    assert_eq!(texts(&host.chunks), "Hi there");
    let delivered: Vec<Json> = host
        .chunks
        .iter()
        .flat_map(|c| Json::parse(c).unwrap().as_array().unwrap().to_vec())
        .collect();
    assert_eq!(delivered.len(), 3, "control chunks never reach the app");
    host.d.fetch_end(post, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
    let kinds = host.kinds();
    for kind in ["stream-connected", "first-chunk", "turn-completed"] {
        assert_eq!(count(&kinds, kind), 1, "{kind} in {kinds:?}");
    }
    let (_, state) = host.persisted.last().unwrap();
    let state = state.as_ref().unwrap();
    assert_eq!(
        state.get("lastEventId").and_then(Json::as_str),
        Some("7"),
        "the turn's boundary"
    );
    assert_eq!(
        state.get("isStreaming").and_then(Json::as_bool),
        Some(false)
    );

    // Turn 2: straight to `.in` with the handler's token, `.out` from one record before the
    // handler's cursor (nothing is known of consumed inputs: it reads the boundary).
    let op = host.send("h", "again", "part-2");
    assert!(host.calls.is_empty());
    let (append, path, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(path, "/realtime/v1/sessions/h/in/append");
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-hs"));
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("5")
    );
    assert!(host.take_fetch_opt(Endpoint::HeadStart).is_none());
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":1}"#, None, host.now);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    let stream = host.stream_of(op);
    host.chunks.clear();
    host.d.pull(stream, host.now);
    host.pump();
    // Turn 1's boundary says it answered input 0, so turn 2's data streams before its own
    // boundary.
    host.d.fetch_bytes(
        out,
        &mixed_batch(&[Rec::Boundary(7, 0), Rec::Delta(8, "next")]),
        host.now,
    );
    host.pump();
    assert_eq!(texts(&host.chunks), "next");
    assert!(!host.ended.contains(&stream));
}

#[test]
fn with_multi_tab_a_head_start_turn_takes_the_writer_lock_and_gives_it_back_at_its_end() {
    let options = r#"{"task":"chat","types":{"startSession":"function","accessToken":"function"},"headStart":"/api/chat","multiTab":true,"locks":true,"tabId":"tab-a"}"#;
    let mut host = Host::new(options);
    let op = head_start_send(&mut host, "h");
    assert!(host
        .other
        .iter()
        .any(|a| matches!(a, Action::LockRequest { name, .. } if name == "trigger-chat:h:writer")));
    assert!(
        host.take_fetch_opt(Endpoint::HeadStart).is_none(),
        "nothing is posted before the lock"
    );
    host.d.lock_result("h", true, host.now);
    host.pump();
    assert!(host.d.has_claim("h"));
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    host.d.head_start_open(post, "tok-hs", false, host.now);
    host.pump();
    let stream = host.stream_of(op);
    host.d.pull(stream, host.now);
    host.pump();
    host.d.fetch_bytes(
        post,
        &sse_chunks(&[
            r#"{"type":"start","messageId":"a1"}"#,
            r#"{"type":"text-delta","id":"t","delta":"Hi"}"#,
        ]),
        host.now,
    );
    host.pump();
    assert!(host.d.has_claim("h"), "held while the turn streams");
    host.other.clear();
    host.d.pull(stream, host.now);
    host.pump();
    host.d.fetch_bytes(
        post,
        &sse_chunks(&[
            r#"{"type":"trigger:turn-complete"}"#,
            r#"{"type":"trigger:session-state","lastEventId":"7"}"#,
        ]),
        host.now,
    );
    host.d.fetch_end(post, host.now);
    host.pump();
    assert!(host.ended.contains(&stream));
    assert!(!host.d.has_claim("h"), "released at the turn's end (M5)");
    assert!(host
        .other
        .iter()
        .any(|a| matches!(a, Action::LockRelease { name, .. } if name == "trigger-chat:h:writer")));
}

#[test]
fn an_oversized_steering_message_is_refused_and_reported() {
    let mut host = Host::new(OPTIONS);
    sent(&mut host, "c1", 1);
    let text = "x".repeat(1_100_000);
    let message = Json::parse(&format!(
        r#"{{"id":"s1","role":"user","parts":[{{"type":"text","text":"{text}"}}]}}"#
    ))
    .unwrap();
    let steer = host
        .d
        .send_pending_message("c1", message, None, "p-big", host.now);
    host.pump();
    assert!(host.take_fetch_opt(Endpoint::In).is_none(), "never sent");
    assert!(host
        .resolved
        .iter()
        .any(|(o, v)| *o == steer && matches!(v, Value::Bool(false))));
    let failed = Json::parse(host.events.last().unwrap()).unwrap();
    let field = |k: &str| failed.get(k).and_then(Json::as_str).map(str::to_owned);
    assert_eq!(field("type").as_deref(), Some("message-send-failed"));
    assert_eq!(field("source").as_deref(), Some("steer"));
    assert_eq!(field("partId").as_deref(), Some("p-big"));
    assert_eq!(failed.get("status").and_then(Json::as_u64), Some(413));
}

#[test]
fn stream_connected_and_first_chunk_report_the_cursors_the_js_transport_reports() {
    // A state saved by the JS transport (no `consumedInputSeq`): the send's stream reads from
    // two records before the cursor to learn what the agent consumed.
    let options = r#"{"task":"chat","types":{"accessToken":"function"},"sessions":{"c1":{"publicAccessToken":"t","lastEventId":"9","isStreaming":false}}}"#;
    let mut host = Host::new(options);
    let op = host.send("c1", "hi", "p1");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("7")
    );
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    let stream = host.stream_of(op);
    host.d.pull(stream, host.now);
    host.pump();
    host.d.fetch_bytes(
        out,
        &batch(&[(10, "a"), (11, "b")], Some((12, Some(4)))),
        host.now,
    );
    host.pump();
    let event = |kind: &str| {
        host.events
            .iter()
            .map(|e| Json::parse(e).unwrap())
            .find(|e| e.get("type").and_then(Json::as_str) == Some(kind))
            .unwrap()
    };
    let cursor = |e: Json| {
        e.get("lastEventId")
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    // The cursor the stream starts from; the first data record's own id.
    assert_eq!(cursor(event("stream-connected")).as_deref(), Some("9"));
    assert_eq!(cursor(event("first-chunk")).as_deref(), Some("10"));
}

#[test]
fn a_head_start_replys_first_chunk_has_no_event_id() {
    // The handler's chunks carry no `.out` id (a cursor seeded before the session is no id of
    // theirs): the event has none, as in the JS transport.
    let mut host = Host::new(HEAD_START_OPTIONS);
    host.d.seed_resume_cursor("h", "5");
    let op = head_start_send(&mut host, "h");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    host.d.head_start_open(post, "tok-hs", false, host.now);
    host.pump();
    let stream = host.stream_of(op);
    host.d.pull(stream, host.now);
    host.pump();
    let start = r#"{"type":"start","messageId":"a1"}"#;
    host.d.fetch_bytes(post, &sse_chunks(&[start]), host.now);
    host.pump();
    let first = host.events.iter().find(|e| e.contains(r#""first-chunk""#));
    let first = Json::parse(first.expect("first-chunk")).unwrap();
    assert_eq!(first.get("lastEventId"), None);
}

#[test]
fn a_failed_head_start_rejects_the_send_and_the_next_send_tries_again() {
    let mut host = Host::new(HEAD_START_OPTIONS);
    let op = head_start_send(&mut host, "h");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    host.d.fetch_text(post, 500, "boom", None, host.now);
    host.pump();
    match host.rejected.as_slice() {
        [(o, ErrorRef::Ours(e))] => {
            assert_eq!(*o, op);
            assert_eq!(e.status(), Some(500));
        }
        other => panic!("{other:?}"),
    }
    let failed = Json::parse(host.events.last().unwrap()).unwrap();
    assert_eq!(
        failed.get("type").and_then(Json::as_str),
        Some("message-send-failed")
    );
    assert_eq!(
        failed.get("source").and_then(Json::as_str),
        Some("head-start")
    );
    assert!(!host.kinds().iter().any(|k| k == "stream-error"));

    // No token header: a clear protocol error, and still no session.
    let op = head_start_send(&mut host, "h");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    host.d.head_start_open(post, "", false, host.now);
    host.pump();
    assert!(host.aborted.contains(&post));
    match host.rejected.last() {
        Some((o, ErrorRef::Ours(Error::Protocol { message }))) => {
            assert_eq!(*o, op);
            assert!(message.contains("X-Trigger-Chat-Access-Token"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // Aborted before the response: the request is cancelled and nothing lingers.
    let op = head_start_send(&mut host, "h");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    host.d.abort_op(op, host.now);
    host.pump();
    assert!(host.aborted.contains(&post));
    assert!(matches!(
        host.rejected.last(),
        Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op
    ));
    assert_eq!(host.d.reconnect("h", Default::default(), host.now), None);
    head_start_send(&mut host, "h");
    assert!(
        host.take_fetch_opt(Endpoint::HeadStart).is_some(),
        "still no session: the next first turn goes to the handler again"
    );
}

#[test]
fn a_head_start_turn_can_be_stopped_through_in() {
    let mut host = Host::new(HEAD_START_OPTIONS);
    let op = head_start_send(&mut host, "h");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    host.d.head_start_open(post, "tok-hs", false, host.now);
    host.pump();
    let stream = host.stream_of(op);
    assert_eq!(
        host.d.reconnect("h", Default::default(), host.now),
        None,
        "no second subscription on top of the head-start stream (W21)"
    );
    host.d.pull(stream, host.now);
    host.pump();
    host.d.stop_generation("h", "part-stop", host.now);
    host.pump();
    assert!(host.ended.contains(&stream));
    assert!(host.aborted.contains(&post));
    let (_, _, headers, body) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-hs"));
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
}

#[test]
fn a_watcher_that_attaches_again_mid_turn_replays_that_turn_from_its_start() {
    let mut host = Host::new(WATCH_OPTIONS);
    host.d.hydrate(
        "w",
        Stored::Shape(r#"{"publicAccessToken":"t","lastEventId":"9"}"#),
        0,
    );
    let stream = host.d.reconnect("w", Default::default(), host.now).unwrap();
    host.pump();
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    host.d.fetch_bytes(
        out,
        &mixed_batch(&[
            Rec::Delta(10, "a"),
            Rec::Boundary(11, 1),
            Rec::Delta(12, "b"),
        ]),
        host.now,
    );
    host.pump();
    // A remount (or React StrictMode) lets go of the stream mid-turn and attaches again.
    host.d.cancel(stream, host.now);
    host.pump();
    assert!(host
        .d
        .reconnect("w", Default::default(), host.now)
        .is_some());
    host.pump();
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("11"),
        "from the boundary, not from inside the next turn"
    );
    let session = host.d.get_session("w").unwrap();
    assert_eq!(
        session.get("lastEventId").and_then(Json::as_str),
        Some("11")
    );
}

#[test]
fn a_send_made_while_the_head_start_request_waits_follows_it_through_in() {
    let mut host = Host::new(HEAD_START_OPTIONS);
    let first = head_start_send(&mut host, "h");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    let second = head_start_send(&mut host, "h");
    assert!(
        host.take_fetch_opt(Endpoint::HeadStart).is_none() && !host.aborted.contains(&post),
        "the first request keeps going; the second send waits"
    );
    assert!(host.calls.is_empty() && host.rejected.is_empty());
    assert_eq!(
        host.links.last().map(String::as_str),
        Some("connecting/2"),
        "both sends are pending"
    );
    host.d.head_start_open(post, "tok-hs", false, host.now);
    host.pump();
    host.stream_of(first); // the first send resolved to its stream
    let (_, path, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(path, "/realtime/v1/sessions/h/in/append");
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-hs"));
    assert!(
        host.calls.is_empty(),
        "no startSession: the handler's session is used"
    );
    assert!(
        host.aborted.contains(&post),
        "once it has its session, the later send supersedes the first stream, as any later send does"
    );
    assert!(!host.rejected.iter().any(|(o, _)| *o == second));

    // When the handler fails, the send that waited fails with its error.
    let mut host = Host::new(HEAD_START_OPTIONS);
    let first = head_start_send(&mut host, "h");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    let second = head_start_send(&mut host, "h");
    host.d.fetch_text(post, 503, "down", None, host.now);
    host.pump();
    let statuses: Vec<(u32, Option<u16>)> = host
        .rejected
        .iter()
        .map(|(o, e)| match e {
            ErrorRef::Ours(e) => (*o, e.status()),
            _ => (*o, None),
        })
        .collect();
    assert_eq!(statuses, vec![(first, Some(503)), (second, Some(503))]);
    assert!(host.take_fetch_opt(Endpoint::In).is_none());
}

/// The consumer pulls, `bytes` arrive on `.out`, and the consumer pulls again (past the end
/// when they hold the turn's boundary).
fn read_through(host: &mut Host, stream: u32, out: u32, bytes: &[u8]) {
    host.d.pull(stream, host.now);
    host.pump();
    host.d.fetch_bytes(out, bytes, host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
}

/// The server accepts append `append` as `.in` seq `seq`; `stream`'s `.out` opens and reads
/// `bytes`.
fn accept_and_read(host: &mut Host, append: u32, seq: u64, stream: u32, bytes: &[u8]) {
    let accepted = format!(r#"{{"ok":true,"seq":{seq}}}"#);
    host.d.fetch_text(append, 200, &accepted, None, host.now);
    host.pump();
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    read_through(host, stream, out, bytes);
}

/// `sendPendingMessage(chat, {id: "s1", …})`, answered with `.in` seq `seq`.
fn steer(host: &mut Host, chat: &str, seq: u64) -> u32 {
    let message =
        Json::parse(r#"{"id":"s1","role":"user","parts":[{"type":"text","text":"in French"}]}"#)
            .unwrap();
    let op = host
        .d
        .send_pending_message(chat, message, None, "part-s", host.now);
    host.pump();
    let (append, _, _, body) = host.take_fetch(Endpoint::In);
    assert!(body.unwrap().contains(r#""id":"s1""#));
    host.d.fetch_text(
        append,
        200,
        &format!(r#"{{"ok":true,"seq":{seq}}}"#),
        None,
        host.now,
    );
    host.pump();
    assert!(
        matches!(host.resolved.last(), Some((o, Value::Bool(true))) if *o == op),
        "{:?}",
        host.resolved
    );
    op
}

/// `sendMessages` whose last message is the steering message `s1`.
fn send_steer_message(host: &mut Host, chat: &str) -> u32 {
    let request = Json::parse(&format!(
        r#"{{"chatId":"{chat}","trigger":"submit-message","message":{{"id":"s1","role":"user","parts":[{{"type":"text","text":"in French"}}]}}}}"#
    ))
    .unwrap();
    let op = host.d.send_messages(
        SendRequest::from_json(&request).unwrap(),
        "part-2",
        host.now,
    );
    host.pump();
    op
}

/// Send `part-1` (`.in` seq 4) streams; steering message `s1` lands as seq 5; the turn ends
/// having consumed input 4 only, so the agent answers 5 with a turn of its own. The send's
/// stream.
fn a_turn_that_leaves_a_steering_message_owed(host: &mut Host) -> u32 {
    let (stream, out) = sent(host, "c1", 4);
    steer(host, "c1", 5);
    read_through(
        host,
        stream,
        out,
        &batch(&[(0, "Sure")], Some((1, Some(4)))),
    );
    stream
}

/// useChat sends the steering message `s1` of [`a_turn_that_leaves_a_steering_message_owed`]:
/// nothing is appended again.
fn send_steer_message_again(host: &mut Host) {
    send_steer_message(host, "c1");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "no second append"
    );
}

fn last_persisted(host: &Host, key: &str) -> Option<Json> {
    let (_, state) = host.persisted.last().unwrap();
    state.as_ref().unwrap().get(key).cloned()
}

#[test]
fn a_steering_message_the_turn_left_unconsumed_is_streamed_by_a_send_of_it_without_a_second_append()
{
    let mut host = Host::new(OPTIONS);
    let stream = a_turn_that_leaves_a_steering_message_owed(&mut host);
    assert_eq!(
        host.ended,
        vec![stream],
        "the send's stream ends at its boundary"
    );
    assert_eq!(
        last_persisted(&host, "isStreaming"),
        Some(Json::Bool(true)),
        "the chat stays streaming for the steering message's turn"
    );
    assert_eq!(
        last_persisted(&host, "activeInputSeq"),
        Some(Json::from(5u64))
    );
    assert_eq!(last_persisted(&host, "lastEventId"), Some(Json::from("1")));

    // useChat sends the message that was steered: nothing is appended again, and the stream
    // reads the turn that answers it.
    let sent_before = host.kinds().iter().filter(|k| *k == "message-sent").count();
    let op = send_steer_message(&mut host, "c1");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "no second append"
    );
    let adopted = host.stream_of(op);
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("1")
    );
    host.d.fetch_open(out, false, host.now);
    host.chunks.clear();
    read_through(
        &mut host,
        adopted,
        out,
        &batch(&[(2, "Bien "), (3, "sûr")], Some((4, Some(5)))),
    );
    assert_eq!(texts(&host.chunks), "Bien sûr");
    assert!(host.ended.contains(&adopted));
    assert_eq!(
        last_persisted(&host, "isStreaming"),
        Some(Json::Bool(false))
    );
    assert_eq!(
        host.kinds().iter().filter(|k| *k == "message-sent").count(),
        sent_before,
        "nothing was sent"
    );

    // Answered: a send of it again appends nothing and has nothing to stream.
    let again = send_steer_message(&mut host, "c1");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "not sent twice"
    );
    assert!(host.take_fetch_opt(Endpoint::Out).is_none());
    let empty = host.stream_of(again);
    host.d.pull(empty, host.now);
    host.pump();
    assert!(host.ended.contains(&empty), "an empty stream");

    // A new session (setSession) knows nothing of the old one's inputs: an ordinary send.
    host.d
        .set_session(
            "c1",
            &Json::parse(r#"{"publicAccessToken":"t2","isStreaming":false}"#).unwrap(),
            host.now,
        )
        .unwrap();
    send_steer_message(&mut host, "c1");
    assert!(host.take_fetch_opt(Endpoint::In).is_some());
}

#[test]
fn the_state_this_page_saved_handed_back_by_set_session_forgets_nothing() {
    // An app store bound both ways hands each reported state back (from an effect, later).
    let mut host = Host::new(OPTIONS);
    a_turn_that_leaves_a_steering_message_owed(&mut host);
    let reported = host.d.get_session("c1").unwrap();
    host.d.set_session("c1", &reported, host.now).unwrap();
    host.pump();
    // The steering message is still known as this tab's: its turn is streamed, not sent again.
    send_steer_message_again(&mut host);
    assert!(host.take_fetch_opt(Endpoint::Out).is_some());
}

/// Tab B (no Web Locks) of chat c1 after a whole turn of its own (input 4).
fn after_a_turn_in_tab_b() -> Host {
    let mut host = Host::new(LOCKLESS_TAB_B);
    let (stream, out) = sent(&mut host, "c1", 4);
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(0, "Sure")], Some((1, Some(4)))),
    );
    host
}

#[test]
fn the_state_saved_last_handed_back_after_news_kept_in_memory_forgets_nothing() {
    // Another tab's news (its turn's cursor) is kept in memory only; the app's store then hands
    // back the state this page saved before it: that echo changes nothing either.
    let mut host = after_a_turn_in_tab_b();
    let reported = host.d.get_session("c1").unwrap();
    claimed_by_a_tab_without_locks(&mut host);
    let news = r#"{"type":"session","chatId":"c1","tabId":"tab-a","session":{"lastEventId":"9"}}"#;
    host.d.tab_message(news, host.now);
    host.pump();
    host.persisted.clear();
    host.d.set_session("c1", &reported, host.now).unwrap();
    host.pump();
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("9"));
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
}

#[test]
fn late_echoes_of_earlier_saves_and_echoes_after_a_failed_save_change_nothing() {
    // A store bound both ways through a round trip: the echo of a send's save (with its
    // `pendingSend`) arrives after the append's answer was saved.
    let mut host = Host::new(OPTIONS);
    after_a_turn(&mut host);
    host.send("c1", "hi", "part-2");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let with_send = host.d.get_session("c1").unwrap();
    assert!(with_send.to_json_string().contains("part-2"));
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":7}"#, None, host.now);
    host.pump();
    let answered = host.d.get_session("c1").unwrap();
    host.persisted.clear();
    host.d.set_session("c1", &with_send, host.now).unwrap();
    host.pump();
    // Not applied; the store is told the state as it is now, once (its echo settles).
    assert_eq!(host.d.get_session("c1").unwrap(), answered);
    assert_eq!(host.persisted.len(), 1, "{:?}", host.persisted);
    assert_eq!(host.persisted[0].1.as_ref(), Some(&answered));
    host.persisted.clear();
    host.d.set_session("c1", &answered, host.now).unwrap();
    host.pump();
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
    // Storage fails: the echo of what was reported is still recognised (it used to be applied
    // and saved again, failing again, without end).
    host.d.storage_failed("c1", "quota exceeded");
    host.d.set_session("c1", &answered, host.now).unwrap();
    host.pump();
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
}

#[test]
fn a_store_with_a_second_writer_settles_on_the_state_set_last() {
    // This tab saved S; another writer puts X in the shared store, whose change feed hands
    // this tab X, then S (its own write, late), then X's echo.
    let mut host = Host::new(OPTIONS);
    after_a_turn(&mut host);
    let s = host.d.get_session("c1").unwrap();
    let x = Json::parse(r#"{"publicAccessToken":"t2","lastEventId":"40","isStreaming":false}"#)
        .unwrap();
    host.persisted.clear();
    host.d.set_session("c1", &x, host.now).unwrap();
    host.pump();
    assert_eq!(host.persisted.len(), 1, "X saved and reported");
    host.d.set_session("c1", &s, host.now).unwrap();
    host.pump();
    assert_eq!(
        host.d.get_session("c1").unwrap(),
        x,
        "S's late echo is not applied"
    );
    let reported = host.persisted.len();
    host.d.set_session("c1", &x, host.now).unwrap();
    host.d.set_session("c1", &s, host.now).unwrap();
    host.pump();
    assert_eq!(host.d.get_session("c1").unwrap(), x);
    assert!(host.persisted.len() <= reported + 1, "{:?}", host.persisted);
}

#[test]
fn a_late_echo_in_a_tab_another_tab_has_the_chat_from_writes_nothing() {
    let options = LOCKLESS_TAB_B;
    let mut host = Host::new(options);
    after_a_turn(&mut host);
    let older = host.d.get_session("c1").unwrap();
    host.d.seed_resume_cursor("c1", "5");
    host.pump();
    claimed_by_a_tab_without_locks(&mut host);
    assert!(host.d.is_read_only("c1"));
    host.persisted.clear();
    host.d.set_session("c1", &older, host.now).unwrap();
    host.pump();
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
}

#[test]
fn a_store_that_keeps_numbers_as_strings_hands_back_an_echo_that_changes_nothing() {
    let mut host = Host::new(OPTIONS);
    a_turn_that_leaves_a_steering_message_owed(&mut host);
    let reported = host.d.get_session("c1").unwrap().to_json_string();
    let as_strings = reported
        .replace(r#""consumedInputSeq":4"#, r#""consumedInputSeq":"4""#)
        .replace(r#""activeInputSeq":5"#, r#""activeInputSeq":"5""#);
    assert_ne!(as_strings, reported);
    host.persisted.clear();
    host.d
        .set_session("c1", &Json::parse(&as_strings).unwrap(), host.now)
        .unwrap();
    host.pump();
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
    // The steering message is still known as this tab's: its turn is streamed, not sent again.
    send_steer_message_again(&mut host);
}

#[test]
fn a_steering_message_consumed_by_the_turn_is_not_owed() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 4);
    steer(&mut host, "c1", 5);
    // Injected mid-turn: the boundary consumed 5 as well.
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(0, "Sure")], Some((1, Some(5)))),
    );
    assert_eq!(host.ended, vec![stream]);
    assert_eq!(
        last_persisted(&host, "isStreaming"),
        Some(Json::Bool(false))
    );
    assert_eq!(last_persisted(&host, "activeInputSeq"), None);
    assert_eq!(host.d.reconnect("c1", Default::default(), host.now), None);
    let op = send_steer_message(&mut host, "c1");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "the agent has it already: not appended again"
    );
    let empty = host.stream_of(op);
    host.d.pull(empty, host.now);
    host.pump();
    assert!(host.ended.contains(&empty));
    // The user edits that message (`sendMessage({ text, messageId: "s1" })`): new text, sent.
    let request = Json::parse(
        r#"{"chatId":"c1","trigger":"submit-message","messageId":"s1","message":{"id":"s1","role":"user","parts":[{"type":"text","text":"in German"}]}}"#,
    )
    .unwrap();
    host.d.send_messages(
        SendRequest::from_json(&request).unwrap(),
        "part-3",
        host.now,
    );
    host.pump();
    let (_, _, _, body) = host.take_fetch(Endpoint::In);
    assert!(body.unwrap().contains("in German"), "the edit is appended");
}

#[test]
fn after_a_stop_a_send_of_an_unconsumed_steering_message_streams_its_turn_without_a_second_append()
{
    let mut host = Host::new(OPTIONS);
    let (stream, _) = sent(&mut host, "c1", 4);
    steer(&mut host, "c1", 5);
    host.d.pull(stream, host.now);
    host.pump();
    // Stopped before its boundary. A stop drops nothing queued: the agent answers the steering
    // message (input 5) with a turn of its own, so the hook's follow-up send of it must not
    // append it again (it would be answered twice, W29).
    host.d.stop_generation("c1", "part-stop", host.now);
    host.pump();
    let (stop, _, _, body) = host.take_fetch(Endpoint::In);
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
    host.d
        .fetch_text(stop, 200, r#"{"ok":true,"seq":6}"#, None, host.now);
    host.pump();
    host.chunks.clear();
    let op = send_steer_message(&mut host, "c1");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "no second append"
    );
    let follow = host.stream_of(op);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(follow, host.now);
    // The stopped turn's tail and boundary (its cursor held back at 4), then the steering
    // message's own turn.
    host.d.fetch_bytes(
        out,
        &batch(&[(7, "stopped tail")], Some((8, Some(4)))),
        host.now,
    );
    host.d
        .fetch_bytes(out, &batch(&[(9, "Bonjour")], None), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "Bonjour");
    host.d.pull(follow, host.now);
    host.d
        .fetch_bytes(out, &batch(&[], Some((10, Some(6)))), host.now);
    host.pump();
    host.d.pull(follow, host.now);
    host.pump();
    assert!(host.ended.contains(&follow), "ended on its boundary");
}

#[test]
fn a_steering_message_after_the_turn_is_owed_and_reconnect_streams_its_turn() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 4);
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(0, "Sure")], Some((1, Some(4)))),
    );
    assert_eq!(
        last_persisted(&host, "isStreaming"),
        Some(Json::Bool(false))
    );

    // Between turns, a steering message starts a turn of its own.
    steer(&mut host, "c1", 5);
    assert_eq!(last_persisted(&host, "isStreaming"), Some(Json::Bool(true)));
    assert_eq!(
        last_persisted(&host, "activeInputSeq"),
        Some(Json::from(5u64))
    );
    let resumed = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .expect("the owed turn can be resumed");
    host.pump();
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "x-peek-settled"),
        None,
        "its boundary is still to come, even if the session looks settled now"
    );
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("1")
    );
    host.d.fetch_open(out, false, host.now);
    host.chunks.clear();
    read_through(
        &mut host,
        resumed,
        out,
        &batch(&[(2, "Oui")], Some((3, Some(5)))),
    );
    assert_eq!(texts(&host.chunks), "Oui");
    assert!(host.ended.contains(&resumed));
    assert_eq!(
        last_persisted(&host, "isStreaming"),
        Some(Json::Bool(false))
    );
}

#[test]
fn a_boundary_that_read_nothing_from_in_leaves_a_steering_message_owed() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 0);
    steer(&mut host, "c1", 1);
    // No `session-in-event-id` (a first turn the session started itself): nothing was consumed.
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(0, "Hi")], Some((1, None))),
    );
    assert!(host.ended.contains(&stream));
    assert_eq!(last_persisted(&host, "isStreaming"), Some(Json::Bool(true)));
    assert_eq!(
        last_persisted(&host, "activeInputSeq"),
        Some(Json::from(1u64))
    );
    send_steer_message(&mut host, "c1");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "adopted, not sent again"
    );
}

/// What the host does: report `navigator.onLine === false` when it changes, before its next
/// call into the driver.
fn go_offline(host: &mut Host, offline: bool) {
    host.d.set_offline(offline, host.now);
    host.pump();
}

/// A request fails without a response (the browser refuses it offline).
fn refuse(host: &mut Host, fetch: u32) {
    host.d.fetch_failed(fetch, "Failed to fetch", host.now);
    host.pump();
}

/// Refuses every request the driver asked for, and returns how many appends there were.
fn refuse_all(host: &mut Host) -> usize {
    let mut appends = 0;
    while let Some(fetch) = host.take_fetch_opt(Endpoint::In) {
        refuse(host, fetch);
        appends += 1;
    }
    while let Some(fetch) = host.take_fetch_opt(Endpoint::Out) {
        refuse(host, fetch);
    }
    appends
}

/// A chat with one finished turn (session started, cursor known), then the network goes.
fn offline_after_a_turn(host: &mut Host) {
    after_a_turn(host);
    go_offline(host, true);
}

/// A chat "c1" with one finished turn (session started, cursor known).
fn after_a_turn(host: &mut Host) {
    let (stream, out) = sent(host, "c1", 0);
    read_through(host, stream, out, &batch(&[(0, "a")], Some((1, Some(0)))));
    assert_eq!(host.ended, vec![stream]);
    host.chunks.clear();
}

#[test]
fn a_message_written_offline_waits_as_long_as_the_network_is_gone_then_goes_out_once() {
    let mut host = Host::new(OPTIONS);
    offline_after_a_turn(&mut host);
    let op = host.send("c1", "hi", "part-9");
    // Ten minutes offline: far past the ~10 s the retry budget lasts online, and past the
    // 4-minute window, which does not apply (no attempt could reach the server). A tab shown
    // again meanwhile (`wake`) changes nothing.
    let mut attempts = refuse_all(&mut host);
    for round in 0..(10 * 60_000 / OFFLINE_RECHECK_MS) {
        if round == 7 {
            host.d.wake(Wake::Reconnect, host.now);
            host.pump();
        }
        host.fire_timers(OFFLINE_RECHECK_MS);
        attempts += refuse_all(&mut host);
    }
    assert!(attempts > 100, "{attempts} attempts");
    assert!(host.rejected.is_empty(), "{:?}", host.rejected);
    assert!(host.failed.is_empty(), "{:?}", host.failed);
    assert!(!host.kinds().iter().any(|k| k == "message-send-failed"));
    // Back online: out at once, with the same part id, without waiting for the recheck.
    go_offline(&mut host, false);
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(
        Host::header(&headers, "x-part-id").as_deref(),
        Some("part-9")
    );
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":1}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(op);
    host.fire_timers(OFFLINE_RECHECK_MS); // the stream's own recheck
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(2, "ok")], Some((3, Some(1)))),
    );
    assert_eq!(texts(&host.chunks), "ok");
    assert_eq!(count(&host.kinds(), "message-sent"), 2, "one per message");
}

#[test]
fn a_stream_that_loses_the_network_mid_turn_waits_for_it_and_resumes_from_its_cursor() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 0);
    read_through(&mut host, stream, out, &batch(&[(0, "Hel")], None));
    go_offline(&mut host, true);
    refuse(&mut host, out);
    // A minute offline: ten times the silent connections that fail a stream online.
    for _ in 0..12 {
        host.fire_timers(OFFLINE_RECHECK_MS);
        refuse_all(&mut host);
    }
    assert!(host.failed.is_empty(), "{:?}", host.failed);
    // `online`: the host reports it, then wakes the streams.
    go_offline(&mut host, false);
    host.d.wake(Wake::Reconnect, host.now);
    host.pump();
    let (again, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("0")
    );
    host.d.fetch_open(again, false, host.now);
    host.pump();
    read_through(
        &mut host,
        stream,
        again,
        &batch(&[(1, "lo")], Some((2, Some(0)))),
    );
    assert_eq!(texts(&host.chunks), "Hello");
    assert_eq!(host.ended, vec![stream]);
}

#[test]
fn a_send_whose_first_attempt_may_have_landed_is_not_retried_past_the_part_ids_claim() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-3");
    host.answer_call("tok-1");
    // Sent while online; the answer is lost as the network goes.
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let started = host.now;
    go_offline(&mut host, true);
    refuse(&mut host, append);
    while host.rejected.is_empty() {
        host.fire_timers(OFFLINE_RECHECK_MS);
        assert!(host.now <= started + RETRY_WINDOW_MS + OFFLINE_RECHECK_MS);
        if let Some(again) = host.take_fetch_opt(Endpoint::In) {
            assert!(
                host.now <= started + RETRY_WINDOW_MS,
                "a retry past the claim"
            );
            refuse(&mut host, again);
        }
        refuse_all(&mut host);
    }
    assert!(matches!(
        host.rejected.last(),
        Some((o, ErrorRef::Ours(Error::Network { .. }))) if *o == op
    ));
    assert_eq!(count(&host.kinds(), "message-send-failed"), 1);
}

#[test]
fn a_token_refresh_that_waits_for_the_network_does_not_reopen_the_window() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-4");
    host.answer_call("tok-1");
    let started = host.now;
    // Online: the first attempt may land, but its answer is lost; the retry meets a 401.
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    refuse(&mut host, append);
    host.fire_timers(1_000);
    let (again, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(again, 401, "", None, host.now);
    host.pump();
    let (call, callback) = host.calls.remove(0);
    assert_eq!(callback, Callback::AccessToken);
    // The refresh fails offline and is made again until the network is back, six minutes on.
    go_offline(&mut host, true);
    host.d.callback_failed(call, 1, host.now);
    host.pump();
    while host.now < started + 6 * 60_000 {
        host.fire_timers(OFFLINE_RECHECK_MS);
        while !host.calls.is_empty() {
            let (call, _) = host.calls.remove(0);
            host.d.callback_failed(call, 1, host.now);
            host.pump();
        }
        refuse_all(&mut host);
    }
    assert!(host.rejected.is_empty());
    go_offline(&mut host, false);
    host.answer_call("tok-2");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "the part id's claim may have expired: no second append"
    );
    assert!(matches!(
        host.rejected.last(),
        Some((o, ErrorRef::Ours(Error::Network { .. }))) if *o == op
    ));
}

#[test]
fn a_first_send_offline_calls_start_session_again_once_the_network_is_back() {
    let mut host = Host::new(OPTIONS);
    go_offline(&mut host, true);
    let op = host.send("c1", "hi", "part-1");
    // The app's startSession could not reach its server.
    for _ in 0..3 {
        let (call, callback) = host.calls.remove(0);
        assert_eq!(callback, Callback::StartSession);
        host.d.callback_failed(call, 1, host.now);
        host.pump();
        assert!(host.rejected.is_empty(), "{:?}", host.rejected);
        assert!(host.calls.is_empty(), "no call before the recheck");
        host.fire_timers(OFFLINE_RECHECK_MS);
    }
    let (call, _) = host.calls.remove(0);
    host.d.callback_failed(call, 1, host.now);
    host.pump();
    // Back online: called again at once.
    go_offline(&mut host, false);
    assert_eq!(host.calls.len(), 1);
    host.answer_call("tok-1");
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-1"));
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    host.stream_of(op);
    // Online, a throwing callback still rejects at once.
    let mut online = Host::new(OPTIONS);
    let op = online.send("c2", "hi", "part-2");
    let (call, _) = online.calls.remove(0);
    online.d.callback_failed(call, 1, online.now);
    online.pump();
    assert!(matches!(online.rejected.last(), Some((o, ErrorRef::Thrown(1))) if *o == op));
}

#[test]
fn an_aborted_send_that_never_left_never_goes_out() {
    // Aborted while its startSession waits for the network.
    let mut host = Host::new(OPTIONS);
    go_offline(&mut host, true);
    let op = host.send("c1", "hi", "part-1");
    let (call, _) = host.calls.remove(0);
    host.d.callback_failed(call, 1, host.now);
    host.pump();
    host.d.abort_op(op, host.now);
    host.pump();
    assert!(matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op));
    assert!(host.timers.is_empty(), "timers left: {:?}", host.timers);
    go_offline(&mut host, false);
    host.fire_timers(10 * OFFLINE_RECHECK_MS);
    assert!(
        host.calls.is_empty(),
        "startSession again: {:?}",
        host.calls
    );
    assert!(host.fetches.is_empty(), "{:?}", host.fetches);

    // Aborted while an attempt made offline is in flight: it ends at that attempt's failure.
    let mut host = Host::new(OPTIONS);
    offline_after_a_turn(&mut host);
    let op = host.send("c1", "hi", "part-2");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.abort_op(op, host.now);
    host.pump();
    refuse(&mut host, append);
    refuse_all(&mut host);
    go_offline(&mut host, false);
    host.fire_timers(10 * OFFLINE_RECHECK_MS);
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "no append, no stop: {:?}",
        host.fetches
    );
    assert!(host.timers.is_empty(), "timers left: {:?}", host.timers);
}

#[test]
fn a_send_aborted_after_answers_that_refused_it_never_goes_out() {
    // Each answer below 500 says the append was not written: an abort ends the send there,
    // whether it waits for a rate limit's reset, a new token, or a new session.
    for status in [429u16, 401, 404] {
        let mut host = Host::new(OPTIONS);
        host.now = 1_700_000_000_000;
        let op = host.send("c1", "hi", "part-refused");
        host.answer_call("tok");
        let (append, _, _, _) = host.take_fetch(Endpoint::In);
        let reset = Some(host.now + 30_000);
        host.d.fetch_text(append, status, "", reset, host.now);
        host.pump();
        host.d.abort_op(op, host.now);
        host.pump();
        assert!(
            matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op),
            "{status}"
        );
        // The token or the session it waited for arrives anyway; the reset passes.
        if !host.calls.is_empty() {
            host.answer_call("tok-2");
        }
        host.fire_timers(60_000);
        assert!(
            host.take_fetch_opt(Endpoint::In).is_none(),
            "{status}: no append, no stop: {:?}",
            host.fetches
        );
    }

    // After an attempt that timed out, it may have landed: the retry still goes, and a stop
    // follows if it did.
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-unsure");
    host.answer_call("tok");
    let (_, _, h1, b1) = host.take_fetch(Endpoint::In);
    host.fire_timers(APPEND_TIMEOUT_MS); // the attempt times out
    host.fire_timers(6_000); // the backoff passes
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(append, 429, "", None, host.now);
    host.pump();
    host.d.abort_op(op, host.now);
    host.pump();
    host.fire_timers(10_000);
    retried_as(&mut host, &h1, &b1);
}

#[test]
fn dispose_offline_ends_the_sends_that_never_left_with_their_timers() {
    let mut host = Host::new(OPTIONS);
    offline_after_a_turn(&mut host);
    // One send waits to append, one (in a new chat) for its startSession.
    let parked = host.send("c1", "hi", "part-1");
    refuse_all(&mut host);
    let starting = host.send("c2", "hi", "part-2");
    let (call, _) = host.calls.remove(0);
    host.d.callback_failed(call, 1, host.now);
    host.pump();
    host.d.dispose(host.now);
    host.pump();
    for op in [parked, starting] {
        host.assert_aborted(op);
    }
    assert!(host.timers.is_empty(), "timers left: {:?}", host.timers);
    go_offline(&mut host, false);
    host.fire_timers(10 * OFFLINE_RECHECK_MS);
    assert!(host.calls.is_empty() && host.fetches.is_empty());
    // The page went away, not the message: it stays saved for the chat's next resume.
    assert!(stored_state(&host, "c1").contains(r#""partId":"part-1""#));
    assert!(host
        .d
        .reconnect("c1", Default::default(), host.now)
        .is_some());
    host.pump();
    let (_, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(
        Host::header(&headers, "x-part-id").as_deref(),
        Some("part-1")
    );
}

#[test]
fn an_aborted_send_gives_its_writer_lock_back_and_sends_nothing_it_had_not_sent() {
    let options = LOCKED_TAB_A;
    let lock_released = |host: &Host| {
        host.other.iter().any(
            |a| matches!(a, Action::LockRelease { name, .. } if name == "trigger-chat:c1:writer"),
        )
    };
    // Aborted while `startSession` runs (online): no append, no stop, the claim is given back.
    let mut host = Host::new(options);
    let op = host.send("c1", "hi", "p1");
    host.d.lock_result("c1", true, host.now);
    host.pump();
    assert!(host.d.has_claim("c1"));
    host.d.abort_op(op, host.now);
    host.pump();
    assert!(matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op));
    assert!(!host.d.has_claim("c1"), "another tab may send now");
    assert!(lock_released(&host));
    host.answer_call("tok");
    host.fire_timers(60_000);
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "nothing was sent, so nothing to append or stop"
    );

    // Aborted while it waits for the lock: when the lock comes, it is given back at once.
    let mut host = Host::new(options);
    let op = host.send("c1", "hi", "p2");
    host.d.abort_op(op, host.now);
    host.pump();
    host.d.lock_result("c1", true, host.now);
    host.pump();
    assert!(host.calls.is_empty(), "no startSession for an aborted send");
    assert!(!host.d.has_claim("c1"));
    assert!(lock_released(&host));
}

#[test]
fn a_head_start_request_sent_offline_goes_again_once_the_network_is_back_and_never_twice() {
    let mut host = Host::new(HEAD_START_OPTIONS);
    go_offline(&mut host, true);
    let op = head_start_send(&mut host, "h");
    let (post, _, _, first_body) = host.take_fetch(Endpoint::HeadStart);
    refuse(&mut host, post);
    // A minute offline: the request reached no one, so it is sent again, never failed.
    for _ in 0..12 {
        host.fire_timers(OFFLINE_RECHECK_MS);
        let (again, _, _, body) = host.take_fetch(Endpoint::HeadStart);
        assert_eq!(body, first_body, "the same request");
        refuse(&mut host, again);
    }
    assert!(host.rejected.is_empty(), "{:?}", host.rejected);
    // Back online: it goes out at once and is answered.
    go_offline(&mut host, false);
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    host.d.head_start_open(post, "tok-h", false, host.now);
    host.pump();
    host.stream_of(op);
    assert!(host.timers.iter().all(|(_, at)| *at > host.now));

    // Sent online and unanswered, it may have reached the handler: it fails rather than run
    // the first turn twice, offline or not.
    let mut host = Host::new(HEAD_START_OPTIONS);
    let op = head_start_send(&mut host, "h2");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    go_offline(&mut host, true);
    refuse(&mut host, post);
    assert!(
        matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Network { .. }))) if *o == op)
    );
    host.fire_timers(10 * OFFLINE_RECHECK_MS);
    go_offline(&mut host, false);
    assert!(host.take_fetch_opt(Endpoint::HeadStart).is_none());

    // Aborted while it waits: nothing is sent and no timer is left.
    let mut host = Host::new(HEAD_START_OPTIONS);
    go_offline(&mut host, true);
    let op = head_start_send(&mut host, "h3");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    refuse(&mut host, post);
    host.d.abort_op(op, host.now);
    host.pump();
    assert!(matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op));
    go_offline(&mut host, false);
    host.fire_timers(10 * OFFLINE_RECHECK_MS);
    assert!(host.take_fetch_opt(Endpoint::HeadStart).is_none());
    assert!(host.timers.is_empty(), "timers left: {:?}", host.timers);
}

#[test]
fn the_connection_state_follows_a_send_from_connecting_to_live_to_idle() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-1");
    assert_eq!(host.links, ["connecting/1"], "startSession is under way");
    host.answer_call("tok-1");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    assert_eq!(host.links, ["connecting/1", "connecting/0"], "acknowledged");
    let stream = host.stream_of(op);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    assert_eq!(host.links.last().unwrap(), "live/0");
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(0, "a")], Some((1, Some(0)))),
    );
    assert_eq!(host.ended, vec![stream]);
    assert_eq!(
        host.links,
        ["connecting/1", "connecting/0", "live/0", "idle/0"]
    );
}

#[test]
fn a_stream_is_reconnecting_only_after_a_failure_not_when_it_renews_a_connection() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 0);
    read_through(&mut host, stream, out, &batch(&[(0, "a")], None));
    host.links.clear();
    // The long poll ends after delivering: renewed at once, still live.
    host.d.fetch_end(out, host.now);
    host.pump();
    let (renewed, _, _, _) = host.take_fetch(Endpoint::Out);
    assert!(host.links.is_empty(), "{:?}", host.links);
    // A connection that fails: backing off, then reopening, then live again.
    refuse(&mut host, renewed);
    assert_eq!(host.links, ["reconnecting/0"]);
    host.fire_timers(10_000);
    let (again, _, _, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        host.links,
        ["reconnecting/0"],
        "still reconnecting while it reopens"
    );
    host.d.fetch_open(again, false, host.now);
    host.pump();
    assert_eq!(host.links, ["reconnecting/0", "live/0"]);
}

#[test]
fn a_send_retrying_after_a_server_error_is_reconnecting_with_one_pending_send() {
    let mut host = Host::new(OPTIONS);
    host.send("c1", "hi", "part-7");
    host.answer_call("tok");
    let (first, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(first, 503, r#"{"ok":false,"error":"busy"}"#, None, host.now);
    host.pump();
    assert_eq!(host.links, ["connecting/1", "reconnecting/1"]);
    host.fire_timers(5_000);
    let (second, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(second, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    // The `.out` request opened in parallel has not answered yet.
    assert_eq!(
        host.links,
        ["connecting/1", "reconnecting/1", "connecting/0"]
    );
}

#[test]
fn a_send_made_offline_reports_offline_until_the_network_is_back() {
    let mut host = Host::new(OPTIONS);
    offline_after_a_turn(&mut host);
    host.links.clear();
    let op = host.send("c1", "hi", "part-9");
    refuse_all(&mut host);
    host.fire_timers(OFFLINE_RECHECK_MS);
    refuse_all(&mut host);
    assert_eq!(host.links, ["offline/1"]);
    // `online`: the host reports it and wakes the streams, then takes the actions.
    host.d.set_offline(false, host.now);
    host.d.wake(Wake::Reconnect, host.now);
    host.pump();
    assert_eq!(host.links, ["offline/1", "connecting/1"]);
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":1}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(op);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(2, "ok")], Some((3, Some(1)))),
    );
    assert_eq!(
        host.links,
        [
            "offline/1",
            "connecting/1",
            "connecting/0",
            "live/0",
            "idle/0"
        ]
    );
}

#[test]
fn a_stream_waiting_for_the_network_stays_offline_until_it_is_back() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 0);
    read_through(&mut host, stream, out, &batch(&[(0, "Hel")], None));
    host.links.clear();
    go_offline(&mut host, true);
    refuse(&mut host, out);
    // A minute of rechecks, each one a connection attempt the browser refuses.
    for _ in 0..12 {
        host.fire_timers(OFFLINE_RECHECK_MS);
        refuse_all(&mut host);
    }
    assert_eq!(host.links, ["offline/0"], "one change, no flapping");
    host.d.set_offline(false, host.now);
    host.d.wake(Wake::Reconnect, host.now);
    host.pump();
    let (again, _, _, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(host.links, ["offline/0", "reconnecting/0"]);
    host.d.fetch_open(again, false, host.now);
    host.pump();
    assert_eq!(host.links, ["offline/0", "reconnecting/0", "live/0"]);
}

#[test]
fn removing_a_session_ends_its_sends_and_reports_it_idle() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-1");
    let (old_call, _) = host.calls.remove(0);
    assert_eq!(host.links, ["connecting/1"], "waiting for startSession");
    host.d.remove_session("c1", host.now);
    host.pump();
    assert_eq!(host.links, ["connecting/1", "idle/0"]);
    assert!(
        matches!(host.rejected.as_slice(), [(o, ErrorRef::Ours(Error::Aborted))] if *o == op),
        "{:?}",
        host.rejected
    );
    // The app's late answer to the forgotten call changes nothing.
    host.d.callback_ok(old_call, "tok-old", false, host.now);
    host.pump();
    assert!(host.fetches.is_empty(), "{:?}", host.fetches);
    // The same chat id again starts from nothing and ends idle.
    let again = host.send("c1", "hi", "part-2");
    host.answer_call("tok-2");
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-2"));
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(again);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.pump();
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(0, "a")], Some((1, Some(0)))),
    );
    assert_eq!(host.links.last().map(String::as_str), Some("idle/0"));
}

/// The chat's last persisted state, as JSON text (what the next page loads).
fn stored_state(host: &Host, chat: &str) -> String {
    let (_, state) = host
        .persisted
        .iter()
        .rev()
        .find(|(c, _)| c == chat)
        .expect("persisted");
    state.as_ref().expect("not removed").to_json_string()
}

#[test]
fn empty_batches_keep_a_connection_alive_but_not_a_turn() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 1);
    host.d.pull(stream, host.now);
    host.pump();
    // A minute apart, each connection brings an empty batch and ends: the server is there, the
    // turn is not. It fails once no record came for the turn's idle limit (ten minutes).
    fails_after_the_idle_limit(&mut host, stream, out, &batch(&[], None));
}

/// Connections a minute apart, each bringing `bytes` and ending, until the turn fails: it does
/// so with `stream_stalled` after ten minutes.
fn fails_after_the_idle_limit(host: &mut Host, stream: u32, mut out: u32, bytes: &[u8]) {
    let mut connections = 0;
    while host.failed.is_empty() && connections < 30 {
        connections += 1;
        host.d.fetch_bytes(out, bytes, host.now);
        host.d.fetch_end(out, host.now);
        host.pump();
        host.fire_timers(60_000);
        if let Some(next) = host.take_fetch_opt(Endpoint::Out) {
            out = next;
            host.d.fetch_open(out, false, host.now);
            host.pump();
        }
    }
    assert!(
        matches!(host.failed.as_slice(), [(s, ErrorRef::Ours(Error::StreamStalled { .. }))] if *s == stream),
        "{:?} after {connections} connections",
        host.failed
    );
    assert!((10..=12).contains(&connections), "{connections}");
}

#[test]
fn a_server_replaying_records_already_seen_keeps_a_connection_alive_but_not_a_turn() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 1);
    read_through(&mut host, stream, out, &batch(&[(1, "a")], None));
    // Every connection, a minute apart, brings the same record again and ends.
    fails_after_the_idle_limit(&mut host, stream, out, &batch(&[(1, "a")], None));
}

#[test]
fn connections_that_end_right_after_a_ping_are_not_reopened_in_a_tight_loop() {
    let mut host = Host::new(OPTIONS);
    let (stream, mut out) = sent(&mut host, "c1", 1);
    host.d.pull(stream, host.now);
    host.pump();
    let ping = b"event: ping\ndata: {}\n\n";
    let mut opened = 0;
    // Ten seconds of a server that pings and hangs up at once.
    let until = host.now + 10_000;
    while host.now < until {
        host.d.fetch_bytes(out, ping, host.now);
        host.d.fetch_end(out, host.now);
        host.pump();
        host.fire_timers(10);
        while let Some(next) = host.take_fetch_opt(Endpoint::Out) {
            opened += 1;
            out = next;
            host.d.fetch_open(out, false, host.now);
            host.pump();
        }
    }
    // Backed off, not given up: it keeps reconnecting, at most every second or so.
    assert!((3..=8).contains(&opened), "{opened} connections in 10 s");
    assert!(
        host.failed.is_empty(),
        "backing off is not failing: {:?}",
        host.failed
    );
}

#[test]
fn records_behind_a_boundary_that_waits_for_the_append_pause_the_reader() {
    // A saved send replayed on reload: its stream is read before the append answers.
    let mut host = Host::new(OPTIONS);
    let (stream, append, out) = replay_reading(&mut host);
    assert_eq!(host.reads, vec![out]);
    host.reads.clear();
    // A boundary before the append's answer: which turn it ends is unknown until then, so it
    // waits, and nothing more is read (what comes after would have to wait too, unbounded).
    host.d
        .fetch_bytes(out, &batch(&[], Some((2, Some(1)))), host.now);
    host.pump();
    assert!(host.reads.is_empty(), "paused: {:?}", host.reads);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    assert_eq!(host.reads, vec![out], "reading again once the seq is known");
    host.d
        .fetch_bytes(out, &batch(&[(4, "mine")], Some((5, Some(3)))), host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "mine");
    assert_eq!(host.ended, vec![stream]);
}

#[test]
fn records_behind_a_waiting_boundary_do_not_move_the_cursor_past_the_turn_it_ends() {
    let mut host = Host::new(OPTIONS);
    let (stream, append, out) = replay_reading(&mut host);
    // The replayed send's turn had run already: its reply, its boundary, and the next turn's
    // first record arrive before the append's answer.
    host.d.fetch_bytes(
        out,
        &mixed_batch(&[
            Rec::Delta(2, "mine"),
            Rec::Boundary(3, 4),
            Rec::Delta(4, "next"),
        ]),
        host.now,
    );
    host.pump();
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":4}"#, None, host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "mine");
    assert_eq!(host.ended, vec![stream]);
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(
        state.get("lastEventId").and_then(Json::as_str),
        Some("3"),
        "the next turn's record is still ahead of the cursor"
    );
    assert_eq!(
        last_persisted(&host, "lastEventId")
            .as_ref()
            .and_then(Json::as_str),
        Some("3")
    );
}

#[test]
fn a_send_the_page_took_with_it_is_sent_again_by_the_next_page_once() {
    let mut page1 = Host::new(OPTIONS);
    offline_after_a_turn(&mut page1);
    page1.send("c1", "written in a tunnel", "part-9");
    let (first, _, _, sent_body) = page1.take_fetch(Endpoint::In);
    refuse(&mut page1, first);
    refuse_all(&mut page1);
    let saved = stored_state(&page1, "c1");
    let state = Json::parse(&saved).unwrap();
    let pending = state.get("pendingSend").expect("the send is saved");
    assert_eq!(pending.get("partId").and_then(Json::as_str), Some("part-9"));
    assert_eq!(
        pending.get("body").and_then(Json::as_str),
        sent_body.as_deref()
    );
    assert!(
        pending.get("reachableSince").is_none(),
        "no attempt could land"
    );

    // The page goes away; the next one loads the chat and resumes it, online.
    let mut page2 = Host::new(OPTIONS);
    page2.now = page1.now + 3_600_000;
    page2.d.hydrate("c1", Stored::Shape(&saved), 0);
    let stream = page2
        .d
        .reconnect("c1", Default::default(), page2.now)
        .expect("the saved send's stream");
    page2.pump();
    let (append, _, headers, body) = page2.take_fetch(Endpoint::In);
    assert_eq!(
        Host::header(&headers, "x-part-id").as_deref(),
        Some("part-9")
    );
    assert_eq!(body, sent_body, "the same body");
    accept_and_read(
        &mut page2,
        append,
        1,
        stream,
        &batch(&[(2, "ok")], Some((3, Some(1)))),
    );
    assert_eq!(texts(&page2.chunks), "ok");
    assert_eq!(page2.ended, vec![stream]);
    let last = Json::parse(&stored_state(&page2, "c1")).unwrap();
    assert!(last.get("pendingSend").is_none(), "acknowledged: forgotten");
    let sent = page2
        .events
        .iter()
        .map(|e| Json::parse(e).unwrap())
        .find(|e| e.get("type").and_then(Json::as_str) == Some("message-sent"))
        .expect("message-sent");
    assert_eq!(sent.get("partId").and_then(Json::as_str), Some("part-9"));
    // A third page finds nothing to send.
    let mut page3 = Host::new(OPTIONS);
    page3
        .d
        .hydrate("c1", Stored::Shape(&stored_state(&page2, "c1")), 0);
    assert_eq!(page3.d.reconnect("c1", Default::default(), page3.now), None);
    page3.pump();
    assert!(page3.take_fetch_opt(Endpoint::In).is_none());
}

#[test]
fn a_saved_send_that_may_have_landed_is_dropped_after_the_retry_window() {
    let mut page1 = Host::new(OPTIONS);
    after_a_turn(&mut page1);
    // Online: the attempt may land; the saved copy says since when.
    page1.send("c1", "hi", "part-5");
    page1.take_fetch(Endpoint::In);
    let saved = stored_state(&page1, "c1");
    let pending = Json::parse(&saved).unwrap();
    let since = pending
        .get("pendingSend")
        .and_then(|p| p.get("reachableSince"))
        .and_then(Json::as_u64);
    assert_eq!(since, Some(page1.now));

    // Within the window a later page sends it again (the server dedupes the part id)...
    let mut soon = Host::new(OPTIONS);
    soon.now = page1.now + 60_000;
    soon.d.hydrate("c1", Stored::Shape(&saved), 0);
    assert!(soon
        .d
        .reconnect("c1", Default::default(), soon.now)
        .is_some());
    soon.pump();
    assert!(soon.take_fetch_opt(Endpoint::In).is_some());

    // ...after it, a second copy could be appended: it is reported and dropped.
    let mut late = Host::new(OPTIONS);
    late.now = page1.now + RETRY_WINDOW_MS + 1;
    late.d.hydrate("c1", Stored::Shape(&saved), 0);
    assert_eq!(late.d.reconnect("c1", Default::default(), late.now), None);
    late.pump();
    assert!(late.take_fetch_opt(Endpoint::In).is_none());
    let failed = Json::parse(late.events.last().unwrap()).unwrap();
    assert_eq!(
        failed.get("type").and_then(Json::as_str),
        Some("message-send-failed")
    );
    assert_eq!(failed.get("partId").and_then(Json::as_str), Some("part-5"));
    let last = Json::parse(&stored_state(&late, "c1")).unwrap();
    assert!(last.get("pendingSend").is_none());
}

#[test]
fn with_multi_tab_a_saved_send_waits_for_the_chat_and_stays_saved_if_another_tab_has_it() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b"}"#;
    let saved = r#"{"publicAccessToken":"t","lastEventId":"1","isStreaming":false,"pendingSend":{"partId":"p","body":"{\"kind\":\"message\",\"payload\":{}}","source":"submit-message","createdAt":1}}"#;
    // Another tab holds the chat's writer lock: nothing is sent, the stream ends quietly, and
    // the send stays saved.
    let mut host = Host::new(options);
    host.d.hydrate("c1", Stored::Shape(saved), 0);
    let stream = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .expect("a stream for the saved send");
    host.pump();
    assert!(host.other.iter().any(
        |a| matches!(a, Action::LockRequest { name, .. } if name == "trigger-chat:c1:writer")
    ));
    host.d.lock_result("c1", false, host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
    assert!(host.failed.is_empty() && host.take_fetch_opt(Endpoint::In).is_none());
    assert!(!host.kinds().iter().any(|k| k == "message-send-failed"));
    assert!(host
        .persisted
        .iter()
        .all(|(_, s)| s.as_ref().is_some_and(|s| s.get("pendingSend").is_some())));

    // This tab gets the lock: the saved send goes, on the stream returned at once.
    let mut host = Host::new(options);
    host.d.hydrate("c1", Stored::Shape(saved), 0);
    let stream = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .expect("a stream for the saved send");
    host.pump();
    host.d.lock_result("c1", true, host.now);
    host.pump();
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("p"));
    let read = batch(&[(2, "ok")], Some((3, Some(4))));
    accept_and_read(&mut host, append, 4, stream, &read);
    assert_eq!(texts(&host.chunks), "ok");
    assert_eq!(host.ended, vec![stream]);
}

/// A persisted state carrying a saved send `p`, as another page left it.
const SAVED_SEND: &str = r#"{"publicAccessToken":"t","lastEventId":"1","isStreaming":false,"pendingSend":{"partId":"p","body":"{\"kind\":\"message\",\"payload\":{}}","source":"submit-message","createdAt":1}}"#;

/// [`replaying_saved_send`] with its append out and its `.out` open and read from, before the
/// append's answer: (stream, append, out).
fn replay_reading(host: &mut Host) -> (u32, u32, u32) {
    let stream = replaying_saved_send(host);
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    (stream, append, out)
}

/// A page that loaded [`SAVED_SEND`] resumes the chat: the stream of the send it replays.
fn replaying_saved_send(host: &mut Host) -> u32 {
    host.d.hydrate("c1", Stored::Shape(SAVED_SEND), 0);
    let stream = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .expect("the saved send's stream");
    host.pump();
    stream
}

#[test]
fn a_chat_left_and_opened_again_while_its_replayed_send_is_on_its_way_streams_that_turn() {
    // A new page replays a saved send; the app leaves the chat (its stream is let go, the send
    // goes on) and comes back before the server has answered the append. The stream the app gets
    // back is that send's turn: there is nothing else to resume (the chat was not streaming).
    let mut host = Host::new(OPTIONS);
    let first = replaying_saved_send(&mut host);
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (first_out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.abort_stream(first, false, "x", host.now);
    host.pump();
    assert_eq!(host.ended, vec![first]);
    assert!(host.aborted.contains(&first_out));
    let again = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .expect("the replayed send's turn");
    host.pump();
    assert_ne!(again, first);
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "not appended twice"
    );
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("1")
    );
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(again, host.now);
    host.d.fetch_bytes(
        out,
        &batch(&[(2, "Hel"), (3, "lo")], Some((4, Some(3)))),
        host.now,
    );
    host.pump();
    assert_eq!(texts(&host.chunks), "Hello");
    host.d.pull(again, host.now);
    host.pump();
    assert_eq!(host.ended, vec![first, again]);
    let state = host.d.get_session("c1").unwrap();
    assert!(!state.to_json_string().contains("pendingSend"), "{state:?}");
}

#[test]
fn a_tab_that_only_loaded_a_saved_send_never_writes_it_back_once_another_tab_has_the_chat() {
    let options = LOCKLESS_TAB_B;
    let mut host = Host::new(options);
    host.d.hydrate("c1", Stored::Shape(SAVED_SEND), 0);
    // Tab A (which made the send) owns the chat: this tab leaves the send to it...
    claimed_by_a_tab_without_locks(&mut host);
    assert!(host.d.is_read_only("c1"));
    assert_eq!(host.d.reconnect("c1", Default::default(), host.now), None);
    host.pump();
    assert!(host.take_fetch_opt(Endpoint::In).is_none());
    // ...and when A's turn ends, this tab learns the cursor without writing its own copy of the
    // chat over A's newer one (an older token, `closed` unset, or the send A has acknowledged,
    // which a later page would send a second time).
    let done = r#"{"type":"session","chatId":"c1","tabId":"tab-a","session":{"lastEventId":"9"}}"#;
    host.persisted.clear();
    host.d.tab_message(done, host.now);
    host.pump();
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("9"));
    // Should it save later (its own send), the send it only loaded is not in it.
    assert!(!state.to_json_string().contains("pendingSend"));
}

#[test]
fn a_tab_that_loads_a_saved_send_while_another_tab_has_the_chat_lets_it_go() {
    // The other tab (a later page of the one that made the send) has the chat and the send;
    // this tab loads the chat afterwards. Kept, the send would go out a second time from here
    // once the chat is free again, past the server's five minutes of dedupe.
    let options = LOCKLESS_TAB_B;
    let mut host = Host::new(options);
    claimed_by_a_tab_without_locks(&mut host);
    host.d.hydrate("c1", Stored::Shape(SAVED_SEND), 0);
    assert!(host.d.is_read_only("c1"));
    let state = host.d.get_session("c1").unwrap();
    assert!(!state.to_json_string().contains("pendingSend"), "{state:?}");
    // Tab A's turn ends and it lets the chat go: later, nothing is sent again from here.
    host.d.tab_message(
        r#"{"type":"release","chatId":"c1","tabId":"tab-a"}"#,
        host.now,
    );
    host.pump();
    host.now += 6 * 60_000;
    assert!(host
        .d
        .reconnect("c1", Default::default(), host.now)
        .is_none());
    host.pump();
    assert!(host.take_fetch_opt(Endpoint::In).is_none());
}

#[test]
fn aborting_a_send_forgets_its_saved_copy_and_a_newer_send_does_not_replace_one_in_flight() {
    let mut host = Host::new(OPTIONS);
    after_a_turn(&mut host);
    let op = host.send("c1", "first", "part-1");
    host.take_fetch(Endpoint::In); // in flight, no answer yet
    assert!(stored_state(&host, "c1").contains(r#""partId":"part-1""#));
    // A newer send while the first is in flight: the first stays the one saved.
    host.send("c1", "second", "part-2");
    assert!(stored_state(&host, "c1").contains(r#""partId":"part-1""#));
    assert!(!host.kinds().iter().any(|k| k == "message-send-failed"));
    // The app aborts the first: a later page must not send it.
    host.d.abort_op(op, host.now);
    host.pump();
    assert!(!stored_state(&host, "c1").contains(r#""partId":"part-1""#));
}

#[test]
fn a_saved_send_waits_while_a_turn_is_in_flight_and_survives_a_session_recreated_for_it() {
    // A turn streams: the reload resumes it; the saved send stays for later.
    let streaming = SAVED_SEND.replace(r#""isStreaming":false"#, r#""isStreaming":true"#);
    let mut host = Host::new(OPTIONS);
    host.d.hydrate("c1", Stored::Shape(&streaming), 0);
    assert!(host
        .d
        .reconnect("c1", Default::default(), host.now)
        .is_some());
    host.pump();
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "no append: a resume"
    );
    assert!(host.take_fetch_opt(Endpoint::Out).is_some());

    // The session is gone (404): it is recreated for the send, which stays saved meanwhile.
    let mut host = Host::new(OPTIONS);
    replaying_saved_send(&mut host);
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 404, r#"{"error":"not found"}"#, None, host.now);
    host.pump();
    assert_eq!(host.calls.len(), 1, "startSession recreates it");
    host.answer_call("tok-new");
    let saved = stored_state(&host, "c1");
    assert!(
        saved.contains(r#""publicAccessToken":"tok-new""#),
        "{saved}"
    );
    assert!(saved.contains(r#""partId":"p""#), "{saved}");
    let (again, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("p"));
    host.d
        .fetch_text(again, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    assert!(!stored_state(&host, "c1").contains("pendingSend"));
}

#[test]
fn a_quiet_tool_call_kept_alive_by_pings_outlasts_six_minutes_on_one_connection() {
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 0);
    host.d.pull(stream, host.now);
    host.pump();
    host.d
        .fetch_bytes(out, &batch(&[(1, "Let me check.")], None), host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    // Eight minutes of nothing but the server's pings, one every 5 s: the JS transport's stall
    // timer ignored pings and gave up after six quiet minutes (W8).
    for _ in 0..(8 * 60 / 5) {
        host.fire_timers(5_000);
        host.d
            .fetch_bytes(out, b"event: ping\ndata: {\"timestamp\":1}\n\n", host.now);
        host.pump();
    }
    assert!(host.failed.is_empty(), "{:?}", host.failed);
    assert!(!host.aborted.contains(&out), "the connection was kept");
    assert_eq!(host.take_fetch_opt(Endpoint::Out), None, "and not replaced");
    host.d
        .fetch_bytes(out, &batch(&[(2, " Done.")], Some((3, Some(0)))), host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "Let me check. Done.");
    assert_eq!(host.ended, vec![stream]);
}

#[test]
fn an_append_that_hangs_is_abandoned_after_30_s_and_sent_again_with_its_part_id() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-9");
    host.answer_call("tok");
    let (first, _, h1, b1) = host.take_fetch(Endpoint::In);
    host.fire_timers(29_000);
    assert!(!host.aborted.contains(&first), "not before 30 s");
    host.fire_timers(1_000);
    assert!(
        host.aborted.contains(&first),
        "the hung request is aborted (W6)"
    );
    host.fire_timers(5_000); // the backoff
    let (second, _, h2, b2) = host.take_fetch(Endpoint::In);
    assert_eq!(
        Host::header(&h1, "x-part-id"),
        Host::header(&h2, "x-part-id")
    );
    assert_eq!(b1, b2);
    host.d
        .fetch_text(second, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    let _ = host.stream_of(op);
    assert!(host.rejected.is_empty(), "{:?}", host.rejected);
}

/// A JWT (unsigned: the client reads, never verifies) whose `exp` is `exp_s`, told apart by `tag`.
fn jwt(exp_s: u64, tag: &str) -> String {
    fn b64url(bytes: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }
    let claims = format!(r#"{{"sub":"{tag}","exp":{exp_s}}}"#);
    format!(
        "{}.{}.c2ln",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(claims.as_bytes())
    )
}

/// The chat `chat` holds `token` (a state set by the app, as after a reload).
fn holding(host: &mut Host, chat: &str, token: &str) {
    let state = Json::parse(&format!(r#"{{"publicAccessToken":"{token}"}}"#)).unwrap();
    host.d.set_session(chat, &state, host.now).unwrap();
    host.pump();
    host.persisted.clear();
}

#[test]
fn the_jwt_helper_writes_what_the_driver_reads() {
    use trigger_chat_wasm::proto::jwt::expires_at_ms;
    assert_eq!(expires_at_ms(&jwt(1_234, "a")), Some(1_234_000));
    assert_eq!(expires_at_ms(&jwt(99, "abcd")), Some(99_000));
    assert_eq!(expires_at_ms("tok-1"), None);
    assert_eq!(expires_at_ms("a.%%%.c"), None, "not base64url");
    assert_eq!(expires_at_ms("a.e30.c"), None, "no exp in {{}}");
    assert_eq!(expires_at_ms("a.b.c.d"), None, "four parts");
    // {"exp":1700000000.75} and {"exp":-5}
    assert_eq!(
        expires_at_ms("a.eyJleHAiOjE3MDAwMDAwMDAuNzV9.c"),
        Some(1_700_000_000_000)
    );
    assert_eq!(expires_at_ms("a.eyJleHAiOi01fQ.c"), None);
    // {"exp":1.7e9}
    assert_eq!(expires_at_ms("a.eyJleHAiOjEuN2U5fQ.c"), None);
}

#[test]
fn a_token_about_to_expire_is_refreshed_before_a_send_uses_it_not_after_a_401() {
    let mut host = Host::new(OPTIONS);
    let now_s = host.now / 1000;
    let old = jwt(now_s + 20, "old");
    holding(&mut host, "c1", &old);
    let op = host.send("c1", "hi", "part-1");
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "nothing goes out with a token 20 s from its end"
    );
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::AccessToken);
    let new = jwt(now_s + 3_600, "new");
    host.answer_call(&new);
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(new.as_str()));
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    let _ = host.stream_of(op);
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(new.as_str()));
    assert!(host.calls.is_empty(), "an hour left: used as it is");
    assert_eq!(
        last_persisted(&host, "publicAccessToken")
            .as_ref()
            .and_then(Json::as_str),
        Some(new.as_str()),
        "the new token is saved"
    );
    // An hour on, `start` resolves with the session as it is (the next request refreshes)...
    host.now += 3_580_000;
    let start = host.d.start("c1", host.now);
    host.pump();
    assert!(host.calls.is_empty(), "{:?}", host.calls);
    assert!(matches!(
        host.resolved.iter().find(|(o, _)| *o == start),
        Some((_, Value::Session(_)))
    ));
    // ...and a send refreshes that one early in its turn.
    host.send("c1", "later", "part-2");
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::AccessToken);
    assert!(host.take_fetch_opt(Endpoint::In).is_none());

    // Tokens that say nothing of their end (not JWTs, or without `exp`) are used until refused.
    for token in ["tok-opaque".to_owned(), "a.e30.c".to_owned()] {
        let mut host = Host::new(OPTIONS);
        holding(&mut host, "c1", &token);
        host.send("c1", "hi", "part-1");
        let (_, _, headers, _) = host.take_fetch(Endpoint::In);
        assert_eq!(Host::bearer(&headers), Some(token));
        assert!(host.calls.is_empty());
    }
    // Without `accessToken`, `startSession` (idempotent) gives the fresh token.
    let mut host = Host::new(r#"{"task":"chat","types":{"startSession":"function"}}"#);
    holding(&mut host, "c1", &old);
    host.send("c1", "hi", "part-1");
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::StartSession);
}

#[test]
fn an_early_refresh_that_fails_or_hands_back_an_expiring_token_does_not_hold_the_send() {
    // The refresh throws: the send goes ahead with the token held (it may still be good), and
    // that token is not refreshed early again.
    let mut host = Host::new(OPTIONS);
    let now_s = host.now / 1000;
    let old = jwt(now_s + 20, "old");
    holding(&mut host, "c1", &old);
    let op = host.send("c1", "hi", "part-1");
    let (call, _) = host.calls.remove(0);
    host.d.callback_failed(call, 1, host.now);
    host.pump();
    assert!(host.rejected.is_empty(), "{:?}", host.rejected);
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(old.as_str()));
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    let _ = host.stream_of(op);
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(old.as_str()));
    assert!(host.calls.is_empty(), "{:?}", host.calls);

    // The refresh hands back a token that is itself about to expire (a clock that is off, or
    // tokens shorter-lived than the margin): it is used, not refreshed in a loop.
    let mut host = Host::new(OPTIONS);
    holding(&mut host, "c1", &old);
    let op = host.send("c1", "hi", "part-1");
    let short = jwt(now_s + 5, "short");
    host.answer_call(&short);
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(short.as_str()));
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    let _ = host.stream_of(op);
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(short.as_str()));
    assert!(host.calls.is_empty(), "{:?}", host.calls);
}

/// A send goes out with a token 40 s from its end; 15 s on, a second send refreshes that token
/// early (`accessToken` is called) while the first append is still out:
/// (first send, its append, second send).
fn early_refresh_beside_an_append(host: &mut Host) -> (u32, u32, u32) {
    let now_s = host.now / 1000;
    holding(host, "c1", &jwt(now_s + 40, "t"));
    let first = host.send("c1", "hi", "part-1");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.now += 15_000;
    let second = host.send("c1", "again", "part-2");
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::AccessToken);
    (first, append, second)
}

#[test]
fn a_401_that_joins_an_early_refresh_makes_its_failure_an_error() {
    let mut host = Host::new(OPTIONS);
    // The append made with the token is refused, and needs that refresh.
    let (op, append, start) = early_refresh_beside_an_append(&mut host);
    host.d.fetch_text(append, 401, "", None, host.now);
    host.pump();
    assert_eq!(host.calls.len(), 1, "one call, shared");
    let (call, _) = host.calls.remove(0);
    host.d.callback_failed(call, 1, host.now);
    host.pump();
    assert!(host.calls.is_empty(), "{:?}", host.calls);
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "no retry with the refused token"
    );
    for op in [op, start] {
        assert!(
            matches!(
                host.rejected.iter().find(|(o, _)| *o == op),
                Some((_, ErrorRef::Thrown(1)))
            ),
            "op {op}: {:?}",
            host.rejected
        );
    }
}

#[test]
fn a_reconnect_refreshes_a_token_that_expired_while_the_stream_was_open() {
    let mut host = Host::new(OPTIONS);
    let now_s = host.now / 1000;
    // A token of one minute (the same holds for an hour's, an hour on).
    let first = jwt(now_s + 60, "first");
    let op = host.send("c1", "hi", "part-1");
    host.answer_call(&first);
    let (stream, out) = acknowledged(&mut host, op, 0);
    host.d.pull(stream, host.now);
    host.pump();
    // The connection drops 35 s on, with 25 s left on the token.
    host.now += 35_000;
    host.d.fetch_failed(out, "connection reset", host.now);
    host.pump();
    host.fire_timers(1_000);
    assert!(
        host.take_fetch_opt(Endpoint::Out).is_none(),
        "no request with the old token"
    );
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::AccessToken);
    let second = jwt(now_s + 7_300, "second");
    host.answer_call(&second);
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(second.as_str()));
}

#[test]
fn a_callback_token_that_cannot_go_in_a_header_is_refused_with_a_clear_error() {
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-1");
    host.answer_call("tok\n1");
    assert!(host.take_fetch_opt(Endpoint::In).is_none());
    assert!(
        matches!(
            host.rejected.iter().find(|(o, _)| *o == op),
            Some((_, ErrorRef::Ours(Error::InvalidOption { name, .. }))) if name == "startSession"
        ),
        "{:?}",
        host.rejected
    );
    assert_eq!(host.d.get_session("c1"), None, "not kept");
}

#[test]
fn a_replayed_send_whose_page_left_before_the_answer_keeps_its_turn_start() {
    let mut host = Host::new(OPTIONS);
    let stream = replaying_saved_send(&mut host);
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.pull(stream, host.now);
    host.pump();
    // The app leaves the chat: the stream is let go at once (no read needed), the send goes on.
    host.d.abort_stream(stream, false, "x", host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
    // The next page resumes that turn from where the stream would have read it, not from the
    // start of the session (which would replay every earlier turn into this reply).
    lands_with_its_turn_starting_at(&mut host, append, "1");
}

/// A page that loaded the chat state `saved` (and seeded the cursor `seed`) resumes the chat:
/// its saved send goes out again, the server answers it with `.in` seq `seq`, and its stream is
/// open and pulled. (stream, its `.out` fetch, the `Last-Event-ID` it reads from.)
fn replayed(
    host: &mut Host,
    saved: &str,
    seed: Option<&str>,
    seq: u64,
) -> (u32, u32, Option<String>) {
    host.d.hydrate("c1", Stored::Shape(saved), 0);
    if let Some(seed) = seed {
        host.d.seed_resume_cursor("c1", seed);
    }
    let stream = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .expect("the saved send's stream");
    host.pump();
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    let accepted = format!(r#"{{"ok":true,"seq":{seq}}}"#);
    host.d.fetch_text(append, 200, &accepted, None, host.now);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    (stream, out, Host::header(&headers, "last-event-id"))
}

#[test]
fn a_replayed_send_reads_its_turn_from_where_it_was_made_even_past_a_seeded_cursor() {
    // The page that made the send went away before its answer, but the server had the message:
    // the agent answered it. The next page shows the app's transcript, which has that answer,
    // and seeds its cursor past it; then the saved send goes out again, and the server's dedupe
    // answers with its first seq. Read from the seeded cursor, its boundary would never come.
    let mut host = Host::new(OPTIONS);
    let (stream, out, from) = replayed(&mut host, SAVED_SEND, Some("9"), 3);
    assert_eq!(
        from.as_deref(),
        Some("1"),
        "read from where the send was made"
    );
    host.d.fetch_bytes(
        out,
        &batch(&[(2, "Hel"), (3, "lo")], Some((4, Some(3)))),
        host.now,
    );
    host.pump();
    assert_eq!(texts(&host.chunks), "Hello");
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("9"));
    assert_eq!(
        state.get("isStreaming").and_then(Json::as_bool),
        Some(false)
    );
}

/// A new page loads `saved` for `c1` (and seeds its cursor to `seed`), resumes the chat, and its
/// `.out` opens and is pulled: (stream, its `.out` fetch, the `Last-Event-ID` it reads from).
fn resumed(host: &mut Host, saved: &str, seed: Option<&str>) -> (u32, u32, Option<String>) {
    host.d.hydrate("c1", Stored::Shape(saved), 0);
    if let Some(seed) = seed {
        host.d.seed_resume_cursor("c1", seed);
    }
    let stream = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .expect("a resume");
    host.pump();
    let (out, _, headers, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.d.pull(stream, host.now);
    host.pump();
    (stream, out, Host::header(&headers, "last-event-id"))
}

#[test]
fn a_first_turn_resumed_after_a_seeded_cursor_reads_from_the_session_start() {
    // A chat's first message (no cursor yet) was acknowledged as input 1 and the page closed
    // mid-reply. The agent finished; the next page loads the app's transcript, which seeds the
    // cursor past that turn's boundary. Resumed from the seeded cursor, the turn's boundary would
    // never be read: the stream would wait until it stalled. It reads from the session start.
    let saved = r#"{"publicAccessToken":"t","isStreaming":true,"activeInputSeq":1}"#;
    let mut host = Host::new(OPTIONS);
    let (stream, out, from) = resumed(&mut host, saved, Some("9"));
    assert_eq!(from, None, "from the start");
    host.d.fetch_bytes(
        out,
        &batch(&[(1, "Hel"), (2, "lo")], Some((3, Some(1)))),
        host.now,
    );
    host.pump();
    assert_eq!(texts(&host.chunks), "Hello");
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.ended, vec![stream]);
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("9"));
    // A chat saved mid-turn without the input it sent (the JS transport's state) still resumes
    // from the seeded cursor: from the start, it would replay every earlier turn into the reply.
    let mut host = Host::new(OPTIONS);
    let js_state = r#"{"publicAccessToken":"t","isStreaming":true}"#;
    let (_, _, from) = resumed(&mut host, js_state, Some("9"));
    assert_eq!(from.as_deref(), Some("9"));
}

#[test]
fn a_turn_resumed_from_the_session_start_shows_none_of_the_earlier_turns() {
    // The chat had no cursor when it sent input 3 (a session found again by `startSession`, or
    // `sessions` with only a token), so its turn is resumed from the session start, where the
    // earlier turns are read again first.
    for saved in [
        r#"{"publicAccessToken":"t","isStreaming":true,"activeInputSeq":3}"#,
        r#"{"publicAccessToken":"t","isStreaming":true,"activeInputSeq":3,"consumedInputSeq":2}"#,
    ] {
        let mut host = Host::new(OPTIONS);
        let (stream, out, from) = resumed(&mut host, saved, None);
        assert_eq!(from, None, "{saved}");
        host.d
            .fetch_bytes(out, &batch(&[(1, "one ")], Some((2, Some(1)))), host.now);
        host.d
            .fetch_bytes(out, &batch(&[(3, "two ")], Some((4, Some(2)))), host.now);
        host.d
            .fetch_bytes(out, &batch(&[(5, "three")], None), host.now);
        host.pump();
        assert_eq!(texts(&host.chunks), "three", "{saved}");
        host.d.pull(stream, host.now);
        host.d
            .fetch_bytes(out, &batch(&[], Some((6, Some(3)))), host.now);
        host.pump();
        host.d.pull(stream, host.now);
        host.pump();
        assert!(host.ended.contains(&stream), "{saved}");
    }
}

#[test]
fn a_replayed_send_read_from_before_the_cursor_streams_only_its_own_turn() {
    // The send was made while another turn (input 4) streamed, and saved as starting in the
    // middle of it; a later page finished that turn, so the chat knows input 4 was consumed.
    // Read from the send's start, the rest of that turn must not pass for the send's reply.
    let saved = r#"{"publicAccessToken":"t","lastEventId":"9","isStreaming":false,"consumedInputSeq":4,"pendingSend":{"partId":"p","body":"{\"kind\":\"message\",\"payload\":{}}","source":"submit-message","createdAt":1,"turnStart":1}}"#;
    let mut host = Host::new(OPTIONS);
    let (stream, out, from) = replayed(&mut host, saved, None, 5);
    assert_eq!(from.as_deref(), Some("1"));
    host.d
        .fetch_bytes(out, &batch(&[(2, "other")], Some((3, Some(4)))), host.now);
    host.d
        .fetch_bytes(out, &batch(&[(4, "mine")], Some((5, Some(5)))), host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "mine");
    assert_eq!(host.ended, vec![stream]);

    // Saved with what was known then (input 4 still running): the same.
    let saved = saved.replace(r#""turnStart":1"#, r#""turnStart":1,"consumed":3"#);
    let mut host = Host::new(OPTIONS);
    let (_, out, _) = replayed(&mut host, &saved, None, 5);
    host.d
        .fetch_bytes(out, &batch(&[(2, "other")], Some((3, Some(4)))), host.now);
    host.d
        .fetch_bytes(out, &batch(&[(4, "mine")], Some((5, Some(5)))), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "mine");
}

#[test]
fn a_replayed_send_read_from_before_the_cursor_streams_its_reply_at_once_when_it_may() {
    // Its page had read part of its reply (the cursor moved past its turn start) and knew input
    // 4 answered when it made the send: the deduped replay (seq 5) streams as it arrives.
    let saved = r#"{"publicAccessToken":"t","lastEventId":"60","isStreaming":false,"consumedInputSeq":4,"pendingSend":{"partId":"p","body":"{\"kind\":\"message\",\"payload\":{}}","source":"submit-message","createdAt":1,"turnStart":50,"consumed":4}}"#;
    let mut host = Host::new(OPTIONS);
    let (_, out, from) = replayed(&mut host, saved, None, 5);
    assert_eq!(from.as_deref(), Some("50"));
    host.d
        .fetch_bytes(out, &batch(&[(51, "a"), (52, "b")], None), host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "ab", "not held to the reply's end");
}

#[test]
fn a_chats_first_message_saved_for_the_next_page_is_read_from_the_sessions_start() {
    let mut host = Host::new(OPTIONS);
    host.send("c1", "hi", "p1");
    host.answer_call("tok");
    host.take_fetch(Endpoint::In);
    let saved = host.persisted.last().unwrap().1.clone().unwrap();
    let pending = saved.get("pendingSend").unwrap();
    assert_eq!(pending.get("turnStart"), Some(&Json::Null));
    // The app's row has the cursor its server wrote after the reply (`onTurnComplete`).
    let mut state = saved.to_json_string();
    state = state.replacen('{', r#"{"lastEventId":"12","#, 1);
    let mut host = Host::new(OPTIONS);
    host.d.hydrate("c1", Stored::Shape(&state), 0);
    host.d
        .reconnect("c1", Default::default(), host.now)
        .expect("the saved send's stream");
    host.pump();
    host.take_fetch(Endpoint::In);
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::header(&headers, "last-event-id"), None);
}

#[test]
fn a_saved_send_remembers_where_its_turn_starts() {
    // The send's turn start is saved with it, and stays when a seeded cursor is saved over
    // the chat's own; a state saved before sends kept it starts at the state's cursor.
    let mut host = Host::new(OPTIONS);
    let (stream, out) = sent(&mut host, "c1", 1);
    host.d.pull(stream, host.now);
    host.pump();
    host.d
        .fetch_bytes(out, &batch(&[(0, "a")], Some((1, Some(1)))), host.now);
    host.pump();
    host.send("c1", "next", "p2");
    host.take_fetch(Endpoint::In);
    let saved = host.persisted.last().unwrap().1.clone().unwrap();
    let pending = saved.get("pendingSend").expect("saved while on its way");
    assert_eq!(pending.get("turnStart").and_then(Json::as_u64), Some(1));
    assert_eq!(pending.get("consumed").and_then(Json::as_u64), Some(1));
    host.d.seed_resume_cursor("c1", "9");
    host.pump();
    let saved = host.persisted.last().unwrap().1.clone().unwrap();
    assert_eq!(saved.get("lastEventId").and_then(Json::as_str), Some("9"));
    let pending = saved.get("pendingSend").unwrap();
    assert_eq!(pending.get("turnStart").and_then(Json::as_u64), Some(1));
    let mut host = Host::new(OPTIONS);
    host.d.hydrate("c1", Stored::Shape(SAVED_SEND), 0);
    host.d.seed_resume_cursor("c1", "9");
    host.pump();
    let saved = host.persisted.last().unwrap().1.clone().unwrap();
    let pending = saved.get("pendingSend").unwrap();
    assert_eq!(pending.get("turnStart").and_then(Json::as_u64), Some(1));
}

/// `append` lands: the chat streams its turn, saved as starting at `.out` seq `start`.
fn lands_with_its_turn_starting_at(host: &mut Host, append: u32, start: &str) {
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("isStreaming").and_then(Json::as_bool), Some(true));
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some(start));
}

#[test]
fn a_stream_closed_while_nobody_reads_it_ends_at_once() {
    let mut host = Host::new(OPTIONS);
    let (stream, _) = sent(&mut host, "c1", 1);
    // Never pulled (an action sent and forgotten); a newer send supersedes it.
    host.send("c1", "next", "part-2");
    assert_eq!(host.end_actions, vec![stream], "no pull needed to end it");
    // A pull after that (a host that had not seen the end yet) is answered with the end too,
    // never left waiting.
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(host.end_actions, vec![stream, stream]);
}

#[test]
fn an_aborted_send_that_lands_beside_another_turn_gives_the_chat_back() {
    let options = LOCKED_TAB_A;
    let mut host = Host::new(options);
    // A streams; B is sent over it, then `stop()` aborts B while its append is on the wire.
    accepted_owned_send(&mut host, "pa", 1);
    let b = host.send("c1", "next", "pb");
    let (append_b, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.abort_op(b, host.now);
    host.pump();
    assert!(host.d.has_claim("c1"), "held while B may land");
    // B lands beside A's turn: it is not stopped (that could end A), and nothing of this tab
    // streams or sends any more.
    host.d
        .fetch_text(append_b, 200, r#"{"ok":true,"seq":2}"#, None, host.now);
    host.pump();
    assert!(host.take_fetch_opt(Endpoint::In).is_none(), "no stop");
    assert!(
        !host.d.has_claim("c1"),
        "the chat is free for the other tabs"
    );
}

#[test]
fn a_resumed_turn_whose_session_the_server_forgot_ends_quietly() {
    let mut host = Host::new(OPTIONS);
    host.d.hydrate(
        "c1",
        Stored::Shape(
            r#"{"publicAccessToken":"t","lastEventId":"9","isStreaming":true,"activeInputSeq":4}"#,
        ),
        0,
    );
    let stream = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .unwrap();
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_text(out, 404, "", None, host.now);
    host.pump();
    // Nothing to resume: no session made for it, no read of a new one from its start (which
    // would hang on a boundary that never comes, or replay other turns).
    assert!(host.calls.is_empty(), "{:?}", host.calls);
    assert!(host.take_fetch_opt(Endpoint::Out).is_none());
    assert_eq!(host.ended, vec![stream]);
    assert!(host.failed.is_empty());
    assert_eq!(
        last_persisted(&host, "isStreaming"),
        Some(Json::Bool(false))
    );
}

#[test]
fn an_early_refresh_that_hands_back_no_usable_token_goes_ahead_with_the_one_held() {
    let mut host = Host::new(OPTIONS);
    let now_s = host.now / 1000;
    let old = jwt(now_s + 20, "old");
    holding(&mut host, "c1", &old);
    let op = host.send("c1", "hi", "part-1");
    host.answer_call("");
    assert!(host.rejected.is_empty(), "{:?}", host.rejected);
    let (_, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(old.as_str()));
    // Not asked again for that token.
    host.send("c1", "again", "part-2");
    assert!(host.calls.is_empty(), "{:?}", host.calls);
    let _ = op;
}

#[test]
fn a_token_with_a_trailing_newline_is_used_trimmed() {
    let mut host = Host::new(OPTIONS);
    host.send("c1", "hi", "part-1");
    host.answer_call("tok-1\n");
    let (_, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some("tok-1"));
}

#[test]
fn after_a_callback_hands_over_a_token_already_expiring_no_token_is_refreshed_early() {
    // A clock far ahead of the server's: every token looks expired here. The first one from a
    // callback shows it; later ones (from turn-complete records) are not refreshed before each
    // turn, which would only add a call per turn.
    let mut host = Host::new(OPTIONS);
    let now_s = host.now / 1000;
    host.send("c1", "hi", "part-1");
    host.answer_call(&jwt(now_s - 500, "skewed"));
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    holding(&mut host, "c2", &jwt(now_s - 100, "from-a-turn"));
    host.send("c2", "hi", "part-2");
    assert!(host.calls.is_empty(), "{:?}", host.calls);
    assert!(host.take_fetch_opt(Endpoint::In).is_some());
}

#[test]
fn a_send_whose_stream_went_before_the_append_landed_starts_its_turn_at_the_cursor() {
    // State in the JavaScript transport's shape (no `consumedInputSeq`): the send's stream
    // reads two records back to learn what the agent consumed, but its turn starts at the
    // cursor, also when that stream is gone by the time the append lands.
    let mut host = Host::new(OPTIONS);
    host.d.hydrate(
        "c1",
        Stored::Shape(r#"{"publicAccessToken":"t","lastEventId":"9","isStreaming":false}"#),
        0,
    );
    host.send("c1", "hi", "part-1");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("7")
    );
    host.d.dispose(host.now);
    host.pump();
    lands_with_its_turn_starting_at(&mut host, append, "9");
}

#[test]
fn a_send_whose_stream_went_keeps_no_turn_start_from_a_session_the_server_replaced() {
    let mut host = Host::new(OPTIONS);
    host.d.hydrate(
        "c1",
        Stored::Shape(
            r#"{"publicAccessToken":"t","lastEventId":"42","isStreaming":false,"consumedInputSeq":3}"#,
        ), 0,
    );
    host.send("c1", "hi", "part-1");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    // The stream goes (the page is disposed) while the append is out; the server has forgotten
    // the session, so the append recreates it and lands in the new one.
    host.d.dispose(host.now);
    host.pump();
    host.d.fetch_text(append, 404, "", None, host.now);
    host.pump();
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::StartSession);
    host.answer_call("tok-new");
    let (retry, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(retry, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
    host.pump();
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("isStreaming").and_then(Json::as_bool), Some(true));
    assert_eq!(
        state.get("lastEventId"),
        None,
        "the new session's turn starts at its beginning, not at the old session's 42"
    );
}

/// A reply streaming live, with a session token 40 s from its end: its `.out` connection.
fn live_with_a_token_ending_in_40_s(host: &mut Host) -> u32 {
    let now_s = host.now / 1000;
    let op = host.send("c1", "hi", "part-1");
    host.answer_call(&jwt(now_s + 40, "t"));
    let (stream, out) = acknowledged(host, op, 1);
    read_through(host, stream, out, &batch(&[(1, "a")], None));
    out
}

#[test]
fn a_renewal_whose_early_token_refresh_waits_for_the_network_reports_offline() {
    let mut host = Host::new(OPTIONS);
    let out = live_with_a_token_ending_in_40_s(&mut host);
    // 15 s on the long poll ends (a routine renewal) with the token 25 s from its end, and
    // the network has just gone: the early refresh cannot reach the app's server.
    host.now += 15_000;
    go_offline(&mut host, true);
    host.d.fetch_end(out, host.now);
    host.pump();
    assert_eq!(host.calls.len(), 1);
    let (call, _) = host.calls.remove(0);
    host.d.callback_failed(call, 1, host.now);
    host.pump();
    assert_eq!(
        host.links.last().map(String::as_str),
        Some("offline/0"),
        "{:?}",
        host.links
    );
}

#[test]
fn early_refreshes_come_back_once_a_callback_hands_over_a_fresh_token() {
    let mut host = Host::new(OPTIONS);
    let now_s = host.now / 1000;
    // An app that caches its token until near its end: one handed over with 25 s left.
    let op = host.send("c1", "hi", "part-1");
    host.answer_call(&jwt(now_s + 25, "cached"));
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(append, 401, "", None, host.now);
    host.pump();
    host.answer_call(&jwt(now_s + 3_600, "fresh"));
    let _ = acknowledged(&mut host, op, 1);
    // Near that one's end, a send refreshes it first again.
    host.now += 3_580_000;
    holding(&mut host, "c2", &jwt(now_s + 3_600, "other"));
    host.send("c2", "later", "part-2");
    assert_eq!(host.calls.len(), 1, "{:?}", host.calls);
    assert_eq!(host.calls[0].1, Callback::AccessToken);
}

#[test]
fn a_renewal_that_refreshes_an_expiring_token_first_stays_live() {
    let mut host = Host::new(OPTIONS);
    let out = live_with_a_token_ending_in_40_s(&mut host);
    host.now += 15_000;
    host.links.clear();
    host.d.fetch_end(out, host.now);
    host.pump();
    assert_eq!(host.calls.len(), 1, "refreshed before the next connection");
    assert!(
        host.links.iter().all(|l| l.starts_with("live")),
        "{:?}",
        host.links
    );
}

#[test]
fn a_404_during_an_early_refresh_gets_a_new_session_not_that_refresh() {
    let mut host = Host::new(OPTIONS);
    let now_s = host.now / 1000;
    // The first append finds the session gone.
    let (first, append, second) = early_refresh_beside_an_append(&mut host);
    host.d.fetch_text(append, 404, "", None, host.now);
    host.pump();
    assert_eq!(host.calls.len(), 2);
    assert_eq!(
        host.calls[1].1,
        Callback::StartSession,
        "a new session is asked for"
    );
    // The early refresh's answer comes first: it is for the old session, and is not used.
    host.answer_call(&jwt(now_s + 7_200, "old-session"));
    assert!(host.take_fetch_opt(Endpoint::In).is_none());
    let fresh = jwt(now_s + 7_200, "new-session");
    host.answer_call(&fresh);
    for _ in 0..2 {
        let (append, _, headers, _) = host.take_fetch(Endpoint::In);
        assert_eq!(Host::bearer(&headers).as_deref(), Some(fresh.as_str()));
        host.d
            .fetch_text(append, 200, r#"{"ok":true,"seq":0}"#, None, host.now);
        host.pump();
    }
    assert!(host.rejected.is_empty(), "{:?}", host.rejected);
    let _ = (first, second);
}

#[test]
fn remove_session_gives_up_a_queued_sends_place_in_the_lock_queue() {
    let mut host = Host::new(QUEUE_OPTIONS);
    claimed_by_another_tab(&mut host);
    let op = host.send("c1", "one", "p1");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    host.d.remove_session("c1", host.now);
    host.pump();
    assert!(matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op));
    assert_eq!(
        lock_actions(&mut host),
        ["unlock"],
        "the request is cancelled"
    );
}

/// The `removed` messages among the broadcasts since the last call.
fn removed_broadcasts(host: &mut Host) -> Vec<Json> {
    host.other
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast { message }
                if message.get("type").and_then(Json::as_str) == Some("removed") =>
            {
                Some(message.clone())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn remove_session_in_one_tab_is_forgotten_by_the_others_without_touching_storage() {
    // Tab A removes the chat: it tells the other tabs.
    let mut a = Host::new(LOCKED_TAB_A);
    accepted_owned_send(&mut a, "pa", 1);
    a.other.clear();
    a.d.remove_session("c1", a.now);
    a.pump();
    let told = removed_broadcasts(&mut a);
    assert_eq!(told.len(), 1);
    assert_eq!(
        told[0].to_json_string(),
        r#"{"type":"removed","chatId":"c1","tabId":"tab-a","v":1}"#
    );

    // Tab B had the chat (its own reply streaming, the writer lock held): it ends the stream,
    // gives the chat back, forgets the state and writes nothing (A may have saved a new
    // session since); the app heard `null` from A.
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b"}"#;
    let mut b = Host::new(options);
    let stream = {
        let op = b.send("c1", "mine", "pb");
        b.d.lock_result("c1", true, b.now);
        b.pump();
        b.answer_call("tok");
        let (append, _, _, _) = b.take_fetch(Endpoint::In);
        b.d.fetch_text(append, 200, r#"{"ok":true,"seq":1}"#, None, b.now);
        b.pump();
        b.stream_of(op)
    };
    b.d.pull(stream, b.now);
    b.pump();
    let (out, _, _, _) = b.take_fetch(Endpoint::Out);
    b.d.fetch_bytes(out, &batch(&[(3, "a")], None), b.now);
    b.pump();
    assert!(b.d.get_session("c1").is_some());
    b.persisted.clear();
    b.other.clear();
    b.links.clear();
    b.d.tab_message(&told[0].to_json_string(), b.now);
    b.pump();
    assert!(b.ended.contains(&stream), "its stream ends");
    assert_eq!(b.links, ["idle/0"], "its connection state says so");
    assert!(b.d.get_session("c1").is_none());
    assert!(b.persisted.is_empty(), "{:?}", b.persisted);
    assert!(!b.d.has_claim("c1"));
    assert_eq!(
        lock_actions(&mut b),
        ["unlock"],
        "the writer lock goes back"
    );
    assert!(b
        .other
        .iter()
        .any(|x| matches!(x, Action::Broadcast { message }
        if message.get("type").and_then(Json::as_str) == Some("release"))));
    assert!(removed_broadcasts(&mut b).is_empty(), "not told on");
}

#[test]
fn dispose_ends_a_send_that_waits_for_the_writer_lock_and_hands_a_late_grant_back() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b"}"#;
    let mut host = Host::new(options);
    let op = host.send("c1", "hi", "p1");
    assert_eq!(lock_actions(&mut host), ["lock"]);
    host.d.dispose(host.now);
    host.pump();
    assert!(
        matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::Aborted))) if *o == op),
        "{:?}",
        host.rejected
    );
    // The browser grants the lock after all: it goes straight back, and nothing is sent or
    // claimed by a transport that was disposed.
    host.other.clear();
    host.d.lock_result("c1", true, host.now);
    host.pump();
    assert_eq!(lock_actions(&mut host), ["unlock"]);
    assert!(!host.d.has_claim("c1"));
    assert!(host.calls.is_empty() && host.take_fetch_opt(Endpoint::In).is_none());
}

#[test]
fn a_send_after_the_owners_claim_timed_out_unseen_takes_the_chat() {
    // A claim of a tab without Web Locks (the JavaScript transport's), whose release this tab
    // missed (it was disposed); the send comes before this tab's timer looks at claims again.
    let options = LOCKLESS_TAB_B;
    let mut host = Host::new(options);
    claimed_by_a_tab_without_locks(&mut host);
    assert!(host.d.is_read_only("c1"));
    host.now += 11_000;
    host.send("c1", "hi", "p1");
    assert!(host.rejected.is_empty(), "{:?}", host.rejected);
    assert!(host.d.has_claim("c1"));
}

#[test]
fn a_send_whose_stream_failed_before_its_append_was_answered_gives_the_chat_back() {
    let mut host = Host::new(LOCKED_TAB_A);
    host.send("c1", "hi", "p");
    host.d.lock_result("c1", true, host.now);
    host.pump();
    host.answer_call("tok");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    // `.out` fails for good (a 400) while the append is still on its way.
    host.d
        .fetch_text(out, 400, r#"{"error":"bad request"}"#, None, host.now);
    host.pump();
    assert!(host.d.has_claim("c1"), "the send is still pending");
    host.other.clear();
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    assert!(
        !host.d.has_claim("c1"),
        "nothing of this tab runs for the chat: the other tabs may write"
    );
    assert!(host.other.iter().any(
        |a| matches!(a, Action::LockRelease { name, .. } if name == "trigger-chat:c1:writer")
    ));
}

#[test]
fn a_send_kept_for_the_next_page_that_lands_after_dispose_is_no_longer_saved() {
    let mut host = Host::new(OPTIONS);
    offline_after_a_turn(&mut host);
    host.send("c1", "hi", "part-1");
    refuse_all(&mut host);
    // `navigator.onLine` is wrong: the recheck's attempt goes out, and the page goes away
    // (`dispose`) while it is in flight. The message is kept for the next page...
    host.fire_timers(OFFLINE_RECHECK_MS);
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.dispose(host.now);
    host.pump();
    assert!(stored_state(&host, "c1").contains(r#""partId":"part-1""#));
    // ...until the server acknowledges it: then no later page sends it again.
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":1}"#, None, host.now);
    host.pump();
    assert!(
        !stored_state(&host, "c1").contains("part-1"),
        "{}",
        stored_state(&host, "c1")
    );
}

/// A turn of "c1" is stopped (part id `s`) and the stop's append is answered 503, so it waits
/// for its retry; the user sends the next message (part id `p2`) meanwhile: its operation.
fn sent_while_a_stop_is_retried(host: &mut Host) -> u32 {
    sent(host, "c1", 2);
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(stop, 503, "", None, host.now);
    host.pump();
    host.send("c1", "next", "p2")
}

#[test]
fn a_message_sent_while_a_stop_is_retried_follows_the_stop_on_in() {
    let mut host = Host::new(OPTIONS);
    let op = sent_while_a_stop_is_retried(&mut host);
    assert!(host.fetches.is_empty(), "{:?}", host.fetches);
    host.fire_timers(10_000);
    let (retry, _, headers, body) = host.take_fetch(Endpoint::In);
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("s"));
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "the message waits"
    );
    host.d
        .fetch_text(retry, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    let (_, _, headers, body) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("p2"));
    assert!(body.unwrap().contains(r#""text":"next""#));
    assert!(host.rejected.is_empty());
    let _ = op;

    // A stop that fails for good lets the message go too; stopGeneration gives up one held.
    let mut host = Host::new(OPTIONS);
    sent(&mut host, "c1", 2);
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    let held = host.send("c1", "next", "p2");
    host.d.stop_generation("c1", "s2", host.now);
    host.pump();
    host.assert_aborted(held);
    let op = host.send("c1", "again", "p3");
    host.d
        .fetch_text(stop, 400, r#"{"error":"bad"}"#, None, host.now);
    host.pump();
    let (_, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::header(&headers, "x-part-id").as_deref(), Some("p3"));
    assert!(
        host.take_fetch_opt(Endpoint::In).is_none(),
        "the one given up never goes"
    );
    assert!(host.rejected.iter().all(|(o, _)| *o != op));
}

#[test]
fn set_session_with_the_state_this_page_saved_last_saves_and_reports_nothing_and_a_changed_one_is_saved(
) {
    // A send on its way: its state, saved with the send, handed back later (an app store's
    // effect) changes nothing.
    let mut host = Host::new(OPTIONS);
    after_a_turn(&mut host);
    host.send("c1", "hi", "part-2");
    let _append = host.take_fetch(Endpoint::In);
    let saved = host.d.get_session("c1").unwrap();
    assert!(saved.to_json_string().contains("part-2"));
    host.persisted.clear();
    host.d.set_session("c1", &saved, host.now).unwrap();
    host.pump();
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);

    // A saved send loaded from an earlier page, and a state set without it: saved so.
    let mut host = Host::new(OPTIONS);
    host.d.hydrate("c1", Stored::Shape(SAVED_SEND), 0);
    let without =
        Json::parse(r#"{"publicAccessToken":"t","lastEventId":"1","isStreaming":false}"#).unwrap();
    host.d.set_session("c1", &without, host.now).unwrap();
    host.pump();
    assert!(
        !stored_state(&host, "c1").contains("pendingSend"),
        "{}",
        stored_state(&host, "c1")
    );

    // A state from `sessions` (never saved by this page) is saved when set again.
    let options = r#"{"task":"chat","types":{"accessToken":"function"},"sessions":{"c1":{"publicAccessToken":"t","lastEventId":"9"}}}"#;
    let mut host = Host::new(options);
    let given = host.d.get_session("c1").unwrap();
    host.d.set_session("c1", &given, host.now).unwrap();
    host.pump();
    assert_eq!(host.persisted.len(), 1, "{:?}", host.persisted);
}

#[test]
fn a_message_held_behind_a_stop_is_saved_for_the_next_page_and_forgotten_when_given_up() {
    let held = |host: &mut Host| {
        let op = sent_while_a_stop_is_retried(host);
        assert!(host.take_fetch_opt(Endpoint::In).is_none(), "held");
        assert!(
            stored_state(host, "c1").contains(r#""partId":"p2""#),
            "saved"
        );
        op
    };
    // The page goes away (dispose): the send ends, its saved copy stays, and it is not sent
    // when the stop goes through.
    let mut host = Host::new(OPTIONS);
    let op = held(&mut host);
    host.d.dispose(host.now);
    host.pump();
    host.assert_aborted(op);
    host.fire_timers(10_000);
    let (retry, _, _, body) = host.take_fetch(Endpoint::In);
    assert_eq!(body.as_deref(), Some(r#"{"kind":"stop"}"#));
    host.d
        .fetch_text(retry, 200, r#"{"ok":true,"seq":3}"#, None, host.now);
    host.pump();
    assert!(host.take_fetch_opt(Endpoint::In).is_none());
    assert!(
        stored_state(&host, "c1").contains(r#""partId":"p2""#),
        "for the next page"
    );

    // The caller gives it up (its abort signal): the saved copy goes too.
    let mut host = Host::new(OPTIONS);
    let op = held(&mut host);
    host.d.abort_op(op, host.now);
    host.pump();
    assert!(
        !stored_state(&host, "c1").contains("p2"),
        "{}",
        stored_state(&host, "c1")
    );

    // The stop finds the session closed: the message fails, and no later page sends it.
    let mut host = Host::new(OPTIONS);
    let op = held(&mut host);
    host.fire_timers(10_000);
    let (retry, _, _, _) = host.take_fetch(Endpoint::In);
    let closed = r#"{"ok":false,"error":"closed","code":"session_closed"}"#;
    host.d.fetch_text(retry, 409, closed, None, host.now);
    host.pump();
    assert!(
        matches!(
            host.rejected.iter().find(|(o, _)| *o == op),
            Some((_, ErrorRef::Ours(Error::SessionClosed { .. })))
        ),
        "{:?}",
        host.rejected
    );
    assert!(
        !stored_state(&host, "c1").contains("p2"),
        "{}",
        stored_state(&host, "c1")
    );
}

#[test]
fn remove_session_while_a_message_waits_behind_a_stop_gives_the_chat_back() {
    let mut host = Host::new(LOCKED_TAB_A);
    let (_, stream) = accepted_owned_send(&mut host, "p1", 1);
    host.d.stop_generation("c1", "s", host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    let (stop, _, _, _) = host.take_fetch(Endpoint::In);
    host.d.fetch_text(stop, 503, "", None, host.now);
    host.pump();
    let op = host.send("c1", "next", "p2");
    assert!(host.take_fetch_opt(Endpoint::In).is_none(), "held");
    host.other.clear();
    host.d.remove_session("c1", host.now);
    host.pump();
    host.assert_aborted(op);
    assert!(!host.d.has_claim("c1"), "the other tabs may have the chat");
    assert_eq!(lock_actions(&mut host), ["unlock"]);
}

#[test]
fn stop_generation_gives_up_a_send_waiting_for_the_head_start_request() {
    let mut host = Host::new(HEAD_START_OPTIONS);
    head_start_send(&mut host, "h");
    let (post, _, _, _) = host.take_fetch(Endpoint::HeadStart);
    let second = head_start_send(&mut host, "h");
    host.d.stop_generation("h", "s", host.now);
    host.pump();
    host.assert_aborted(second);
    host.d.head_start_open(post, "tok-hs", false, host.now);
    host.pump();
    let mut bodies = vec![];
    while host.fetches.iter().any(|f| {
        matches!(
            f,
            Action::Fetch {
                endpoint: Endpoint::In,
                ..
            }
        )
    }) {
        let (_, _, _, body) = host.take_fetch(Endpoint::In);
        bodies.push(body.unwrap_or_default());
    }
    assert!(
        !bodies.iter().any(|b| b.contains(r#""kind":"message""#)),
        "the message given up is not appended: {bodies:?}"
    );
}

#[test]
fn a_removed_chats_state_handed_back_soon_after_does_not_bring_it_back() {
    // An app store bound both ways echoes a save after `removeSession` (a round trip through
    // a database), or an effect runs with the store's old value.
    let mut host = Host::new(OPTIONS);
    after_a_turn(&mut host);
    let s = host.d.get_session("c1").unwrap();
    host.d.remove_session("c1", host.now);
    host.pump();
    host.persisted.clear();
    host.now += 2_000;
    host.d.set_session("c1", &s, host.now).unwrap();
    host.pump();
    assert!(host.d.get_session("c1").is_none());
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
    // A new session the app sets for the chat applies.
    let x = Json::parse(r#"{"publicAccessToken":"t2","lastEventId":"40","isStreaming":false}"#)
        .unwrap();
    host.d.set_session("c1", &x, host.now).unwrap();
    host.pump();
    assert_eq!(host.d.get_session("c1").unwrap(), x);
    assert_eq!(host.persisted.len(), 1, "{:?}", host.persisted);
    // Later, the removed one set again is the app restoring it: it applies.
    host.now += 8_000;
    host.persisted.clear();
    host.d.set_session("c1", &s, host.now).unwrap();
    host.pump();
    assert_eq!(host.d.get_session("c1").unwrap(), s);
    assert_eq!(host.persisted.len(), 1, "{:?}", host.persisted);
}

#[test]
fn a_chat_another_tab_removed_is_not_brought_back_by_this_tabs_late_echo() {
    let options = LOCKLESS_TAB_B;
    let mut host = Host::new(options);
    after_a_turn(&mut host);
    let s = host.d.get_session("c1").unwrap();
    let removed = r#"{"type":"removed","chatId":"c1","tabId":"tab-a","v":1}"#;
    host.d.tab_message(removed, host.now);
    host.pump();
    assert!(host.d.get_session("c1").is_none());
    host.persisted.clear();
    host.d.set_session("c1", &s, host.now + 500).unwrap();
    host.pump();
    assert!(host.d.get_session("c1").is_none());
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
}

#[test]
fn a_tab_another_has_the_chat_from_saves_nothing_when_it_sees_that_tabs_turn_end() {
    // Tab B follows tab A's turn (read-only). A's turn ends and A sends again at once (a tool
    // loop): storage holds A's newer state when B's stream reaches the first boundary. B must
    // not write its copy over it (it would say no turn is streaming, and drop A's saved send).
    let options = LOCKLESS_TAB_B;
    let mut host = Host::new(options);
    host.d.hydrate(
        "c1",
        Stored::Record(r#"{"v":1,"chatId":"c1","session":{"publicAccessToken":"t","lastEventId":"3","activeInputSeq":1,"isStreaming":true}}"#), 0,
    );
    claimed_by_a_tab_without_locks(&mut host);
    assert!(host.d.is_read_only("c1"));
    let stream = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .unwrap();
    host.pump();
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    host.d.fetch_open(out, false, host.now);
    host.persisted.clear();
    read_through(
        &mut host,
        stream,
        out,
        &batch(&[(4, "Sure")], Some((5, Some(1)))),
    );
    assert!(host.ended.contains(&stream), "the turn it followed ended");
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
}

#[test]
fn removing_many_chats_at_once_keeps_each_from_coming_back_and_a_loaded_state_counts_too() {
    // A "delete all" over 40 chats, each loaded from `sessions` and never saved here; the app's
    // store then hands the first one's state back.
    let mut host = Host::new(OPTIONS);
    let state = |i: usize| {
        Json::parse(&format!(
            r#"{{"publicAccessToken":"t{i}","lastEventId":"9","isStreaming":false}}"#
        ))
        .unwrap()
    };
    for i in 0..40 {
        let chat = format!("c{i}");
        host.d
            .hydrate(&chat, Stored::Shape(&state(i).to_json_string()), 0);
        host.d.remove_session(&chat, host.now);
    }
    host.pump();
    host.persisted.clear();
    host.d
        .set_session("c0", &state(0), host.now + 1_000)
        .unwrap();
    host.pump();
    assert!(host.d.get_session("c0").is_none());
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
}

#[test]
fn an_echo_of_a_save_older_than_the_last_four_is_still_recognised() {
    // A store bound both ways with a slow round trip: a turn and the next one's saves go out
    // before the first save's echo comes back.
    let mut host = Host::new(OPTIONS);
    after_a_turn(&mut host);
    let first = host.d.get_session("c1").unwrap();
    for (i, seq) in [(2, 8), (3, 9), (4, 10)] {
        let op = host.send("c1", "more", &format!("part-{i}"));
        let (stream, out) = acknowledged(&mut host, op, seq);
        read_through(
            &mut host,
            stream,
            out,
            &batch(&[(3 * seq, "ok")], Some((3 * seq + 1, Some(seq)))),
        );
    }
    let now = host.d.get_session("c1").unwrap();
    assert_ne!(now, first);
    host.persisted.clear();
    host.d.set_session("c1", &first, host.now).unwrap();
    host.pump();
    assert_eq!(host.d.get_session("c1").unwrap(), now, "not applied");
}

#[test]
fn a_rate_limit_reset_given_in_seconds_is_reported_in_milliseconds() {
    let mut host = Host::new(OPTIONS);
    host.now = 1_700_000_000_000;
    let op = host.send("c1", "hi", "part-429");
    host.answer_call("tok");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    // An hour away (not waited for), as Unix seconds.
    let reset_s = host.now / 1_000 + 3_600;
    host.d.fetch_text(append, 429, "", Some(reset_s), host.now);
    host.pump();
    let error = host.rejected.iter().find(|(id, _)| *id == op).map(|r| &r.1);
    let Some(ErrorRef::Ours(Error::RateLimited { reset_epoch_ms })) = error else {
        panic!("{error:?}");
    };
    assert_eq!(*reset_epoch_ms, Some(reset_s * 1_000));
}

#[test]
fn a_start_session_that_never_settles_is_asked_again_once_its_send_is_aborted() {
    // The app's backend hangs; the user stops the send and sends again.
    let mut host = Host::new(OPTIONS);
    let first = host.send("c1", "hi", "part-1");
    assert_eq!(host.calls.len(), 1);
    let (hung, _) = host.calls.remove(0);
    host.d.abort_op(first, host.now);
    host.pump();
    let again = host.send("c1", "hi again", "part-2");
    assert_eq!(host.calls.len(), 1, "asked again");
    assert_eq!(host.calls[0].1, Callback::StartSession);
    // The hung call's answer, when it comes, matches no call.
    host.d.callback_ok(hung, "late", false, host.now);
    host.pump();
    assert!(host.take_fetch_opt(Endpoint::In).is_none());
    host.answer_call("tok");
    let (append, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(
        Host::header(&headers, "authorization").as_deref(),
        Some("Bearer tok")
    );
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":1}"#, None, host.now);
    host.pump();
    assert!(host.stream_of(again) > 0);
}

#[test]
fn the_apps_headers_cannot_set_the_streams_cursor_or_peek() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"headers":{"last-event-id":"99","X-PEEK-SETTLED":"1","x-app":"a"}}"#;
    let mut host = Host::new(options);
    let op = host.send("c1", "hi", "part-1");
    host.answer_call("tok");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":1}"#, None, host.now);
    host.pump();
    let _ = host.stream_of(op);
    let (_, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(Host::header(&headers, "last-event-id"), None);
    assert_eq!(Host::header(&headers, "x-peek-settled"), None);
    assert_eq!(Host::header(&headers, "x-app").as_deref(), Some("a"));
}

#[test]
fn a_tab_whose_claim_was_lost_mid_turn_still_saves_its_turn() {
    // Its turn runs on (with Web Locks it holds the writer lock; without, its stream answers its
    // send); the tab that won the claim never had it.
    for locks in [true, false] {
        let options = format!(
            r#"{{"task":"chat","types":{{"startSession":"function"}},"multiTab":true,"locks":{locks},"tabId":"tab-b"}}"#
        );
        let (mut host, stream, out) = locked_turn_then_lost_claim(&options);
        assert!(host.d.is_read_only("c1"));
        host.persisted.clear();
        host.d
            .fetch_bytes(out, &batch(&[(2, "ok")], Some((3, Some(1)))), host.now);
        host.pump();
        host.d.pull(stream, host.now);
        host.pump();
        assert!(
            !host.persisted.is_empty(),
            "its turn's end is saved (locks: {locks})"
        );
        let saved = host.persisted.last().and_then(|p| p.1.clone()).unwrap();
        assert_eq!(
            saved.get("isStreaming").and_then(Json::as_bool),
            Some(false)
        );
        assert_eq!(saved.get("lastEventId").and_then(Json::as_str), Some("3"));
    }
}

#[test]
fn a_state_told_to_a_tab_another_has_the_chat_from_is_known_as_an_echo_once_it_writes() {
    // A store shared by the tabs hands read-only tab B the owner's states S1, S2; the owner
    // lets go, and S1's late echo reaches B: not applied over S2.
    let options = LOCKLESS_TAB_B;
    let mut host = Host::new(options);
    claimed_by_a_tab_without_locks(&mut host);
    let s1 = Json::parse(
        r#"{"publicAccessToken":"t1","lastEventId":"3","activeInputSeq":1,"isStreaming":true}"#,
    )
    .unwrap();
    let s2 =
        Json::parse(r#"{"publicAccessToken":"t2","lastEventId":"9","isStreaming":false}"#).unwrap();
    host.d.set_session("c1", &s1, host.now).unwrap();
    host.d.set_session("c1", &s2, host.now).unwrap();
    host.pump();
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
    let release = r#"{"type":"release","chatId":"c1","tabId":"tab-a"}"#;
    host.d.tab_message(release, host.now);
    host.pump();
    assert!(!host.d.is_read_only("c1"));
    host.d.set_session("c1", &s1, host.now).unwrap();
    host.pump();
    assert_eq!(host.d.get_session("c1").unwrap(), s2);
}

#[test]
fn a_removed_chats_state_set_after_the_clock_went_back_is_applied() {
    let mut host = Host::new(OPTIONS);
    host.now = 1_700_000_000_000;
    after_a_turn(&mut host);
    let s = host.d.get_session("c1").unwrap();
    host.d.remove_session("c1", host.now);
    host.pump();
    // The clock is set back an hour: no telling how long ago the removal was.
    host.d.set_session("c1", &s, host.now - 3_600_000).unwrap();
    host.pump();
    assert_eq!(host.d.get_session("c1").unwrap(), s);
}

#[test]
fn a_send_waiting_for_the_owners_turn_does_not_make_a_reader_save() {
    // Tab B follows tab A's chat and has a message queued behind A's turn: still a reader.
    let mut host = Host::new(QUEUE_OPTIONS);
    host.d.hydrate(
        "c1",
        Stored::Shape(
            r#"{"publicAccessToken":"t","lastEventId":"3","isStreaming":true,"activeInputSeq":1}"#,
        ),
        host.now,
    );
    claimed_by_another_tab(&mut host);
    let _queued = host.send("c1", "later", "p");
    assert_eq!(lock_actions(&mut host), ["lock-wait"]);
    host.persisted.clear();
    host.d.seed_resume_cursor("c1", "50");
    host.pump();
    assert!(host.persisted.is_empty(), "{:?}", host.persisted);
}

#[test]
fn a_removed_chats_state_loaded_soon_after_reads_as_nothing() {
    // Another tab removed the chat; this tab's store (a write still on its way, a cache not yet
    // told) hands back the old state.
    let mut host = Host::new(OPTIONS);
    after_a_turn(&mut host);
    let s = host.d.get_session("c1").unwrap().to_json_string();
    host.d.remove_session("c1", host.now);
    host.pump();
    host.d.hydrate("c1", Stored::Shape(&s), host.now + 1_000);
    assert!(host.d.get_session("c1").is_none());
}

#[test]
fn a_stream_replaced_while_its_token_is_refreshed_shares_the_call_in_flight() {
    // A reload with a token about to expire: the resumed stream asks `accessToken`; a send
    // replaces that stream before the answer. One call, whose answer both use.
    let mut host = Host::new(OPTIONS);
    let now_s = host.now / 1000;
    host.d.hydrate(
        "c1",
        Stored::Shape(&format!(
            r#"{{"publicAccessToken":"{}","lastEventId":"3","isStreaming":true,"activeInputSeq":1}}"#,
            jwt(now_s + 20, "old")
        )),
        host.now,
    );
    let _resumed = host
        .d
        .reconnect("c1", Default::default(), host.now)
        .unwrap();
    host.pump();
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.calls[0].1, Callback::AccessToken);
    let _op = host.send("c1", "hi", "part-2");
    assert_eq!(host.calls.len(), 1, "no second call: {:?}", host.calls);
    let new = jwt(now_s + 3_600, "new");
    host.answer_call(&new);
    let (_, _, headers, _) = host.take_fetch(Endpoint::In);
    assert_eq!(Host::bearer(&headers).as_deref(), Some(new.as_str()));
}

#[test]
fn a_late_echo_in_a_tab_whose_own_turn_runs_after_a_lost_claim_gets_the_current_state() {
    let options = r#"{"task":"chat","types":{"startSession":"function"},"multiTab":true,"locks":true,"tabId":"tab-b"}"#;
    let (mut host, _stream, _out) = locked_turn_then_lost_claim(options);
    assert!(host.d.is_read_only("c1"));
    let saved: Vec<Json> = host.persisted.iter().filter_map(|p| p.1.clone()).collect();
    assert!(saved.len() >= 2, "{saved:?}");
    let current = host.d.get_session("c1").unwrap();
    host.persisted.clear();
    host.d.set_session("c1", &saved[0], host.now).unwrap();
    host.pump();
    assert_eq!(host.d.get_session("c1").unwrap(), current, "not applied");
    assert_eq!(host.persisted.len(), 1, "{:?}", host.persisted);
    assert_eq!(host.persisted[0].1.as_ref(), Some(&current));
}

#[test]
fn a_held_reply_past_the_cap_is_read_again_once_its_boundary_proves_it_this_sends() {
    // Resumed from the session start, input 3's reply is held until a boundary says whose it
    // is. Past the cap what is held is dropped (it may be an earlier turn's, never to be shown);
    // once the boundary proves it this send's, `.out` is read again from its first record.
    let saved = r#"{"publicAccessToken":"t","isStreaming":true,"activeInputSeq":3}"#;
    let mut host = Host::new(OPTIONS);
    let (stream, out, _) = resumed(&mut host, saved, None);
    let big = "x".repeat(1_500_000);
    for seq in 1..=3 {
        host.d
            .fetch_bytes(out, &batch(&[(seq, &big)], None), host.now);
    }
    host.d
        .fetch_bytes(out, &batch(&[], Some((4, Some(3)))), host.now);
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(texts(&host.chunks), "");
    assert!(host.ended.is_empty());
    let (again, _, headers, _) = host.take_fetch(Endpoint::Out);
    assert_eq!(
        Host::header(&headers, "last-event-id").as_deref(),
        Some("0")
    );
    host.d.fetch_open(again, false, host.now);
    for seq in 1..=3 {
        host.d
            .fetch_bytes(again, &batch(&[(seq, &big)], None), host.now);
        host.d.pull(stream, host.now);
        host.pump();
    }
    host.d
        .fetch_bytes(again, &batch(&[], Some((4, Some(3)))), host.now);
    host.d.pull(stream, host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert_eq!(texts(&host.chunks).len(), 3 * big.len());
    assert_eq!(host.ended, vec![stream]);
}

#[test]
fn a_session_message_from_a_tab_that_does_not_own_the_chat_moves_nothing() {
    // Believed, a forged cursor and consumed seq would let the next send take a stopped turn's
    // tail for its reply, and mark every steering message answered.
    let mut host = after_a_turn_in_tab_b();
    let before = host.d.get_session("c1").unwrap().to_json_string();
    let forged = r#"{"type":"session","chatId":"c1","tabId":"tab-x","session":{"lastEventId":"99","consumedInputSeq":9007199254740991},"v":1}"#;
    host.d.tab_message(forged, host.now);
    host.pump();
    assert_eq!(host.d.get_session("c1").unwrap().to_json_string(), before);
    // From the owner, the same news is taken.
    claimed_by_a_tab_without_locks(&mut host);
    let news = forged.replace("tab-x", "tab-a");
    host.d.tab_message(&news, host.now);
    host.pump();
    let state = host.d.get_session("c1").unwrap();
    assert_eq!(state.get("lastEventId").and_then(Json::as_str), Some("99"));
}

#[test]
fn a_409_session_closed_on_out_closes_the_chat_and_fails_its_stream_with_that_code() {
    // W10: the session was closed on the server while the stream (re)connected.
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-1");
    host.answer_call("tok-1");
    let (append, _, _, _) = host.take_fetch(Endpoint::In);
    host.d
        .fetch_text(append, 200, r#"{"ok":true,"seq":1}"#, None, host.now);
    host.pump();
    let stream = host.stream_of(op);
    let (out, _, _, _) = host.take_fetch(Endpoint::Out);
    let closed = r#"{"ok":false,"error":"closed","code":"session_closed","closedReason":"gone"}"#;
    host.d.fetch_text(out, 409, closed, None, host.now);
    host.pump();
    host.d.pull(stream, host.now);
    host.pump();
    assert!(host.d.is_closed("c1"));
    let event = host
        .events
        .iter()
        .map(|e| Json::parse(e).unwrap())
        .find(|e| e.get("type").and_then(Json::as_str) == Some("session-closed"))
        .expect("a session-closed event");
    assert_eq!(event.get("source").and_then(Json::as_str), Some("stream"));
    assert_eq!(event.get("reason").and_then(Json::as_str), Some("gone"));
    assert!(
        matches!(host.failed.last(), Some((s, ErrorRef::Ours(Error::SessionClosed { .. }))) if *s == stream),
        "{:?}",
        host.failed
    );
    assert!(
        host.take_fetch_opt(Endpoint::Out).is_none(),
        "not reconnected"
    );
}

#[test]
fn a_send_whose_start_session_fails_emits_message_send_failed() {
    // W22: the JS transport emits nothing for a failure before the append.
    let mut host = Host::new(OPTIONS);
    let op = host.send("c1", "hi", "part-1");
    let (call, callback) = host.calls.remove(0);
    assert_eq!(callback, Callback::StartSession);
    host.d.callback_failed(call, 1, host.now);
    host.pump();
    assert!(matches!(host.rejected.last(), Some((o, _)) if *o == op));
    let event = host
        .events
        .iter()
        .map(|e| Json::parse(e).unwrap())
        .find(|e| e.get("type").and_then(Json::as_str) == Some("message-send-failed"))
        .expect("a message-send-failed event");
    assert_eq!(
        event.get("source").and_then(Json::as_str),
        Some("submit-message")
    );
    // (The error itself goes beside the event's JSON, to be attached as an object.)
    assert_eq!(event.get("partId").and_then(Json::as_str), Some("part-1"));
}

#[test]
fn chat_ids_dot_and_dot_dot_are_refused_before_any_request() {
    // Percent-encoding leaves dots alone and URL parsing reads `%2e` as one: the token would go
    // to `…/realtime/v1/out`.
    for id in [".", ".."] {
        let mut host = Host::new(OPTIONS);
        let op = host.send(id, "hi", "p");
        if !host.calls.is_empty() {
            host.answer_call("tok");
        }
        assert!(
            matches!(host.rejected.last(), Some((o, ErrorRef::Ours(Error::InvalidOption { name, .. }))) if *o == op && name == "chatId"),
            "{id}: {:?}",
            host.rejected
        );
        assert!(host.fetches.is_empty(), "{id}: {:?}", host.fetches);
        assert_eq!(host.d.reconnect(id, Default::default(), host.now), None);
    }
    // Three dots are a plain segment.
    let mut host = Host::new(OPTIONS);
    host.send("...", "hi", "p");
    host.answer_call("tok");
    let (_, path, _, _) = host.take_fetch(Endpoint::In);
    assert!(path.contains("/sessions/.../"), "{path}");
}
