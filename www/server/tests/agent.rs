//! The scripted agent and the run lifecycle, seen from the wire.
mod common;

use std::time::{Duration, Instant};

use chat_devserver::Config;
use common::*;
use serde_json::{json, Value};

const SEC10: Duration = Duration::from_secs(10);

fn types(out: &OutRead) -> Vec<String> {
    out.chunks()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn stop_aborts_a_slow_turn_with_abort_then_turn_complete() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-stop", None).await;
    say(&url, "c-stop", &pat, "slow please").await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    let stop_seq = append(&url, "c-stop", &pat, &json!({"kind": "stop"})).await;
    assert_eq!(stop_seq.status(), 200);
    let out = read_out(&url, "c-stop", &pat, &[], SEC10, turn_completes(1)).await;
    let t = types(&out);
    assert_eq!(t.last().map(String::as_str), Some("abort"));
    let deltas = t.iter().filter(|t| *t == "text-delta").count();
    assert!((1..40).contains(&deltas), "{deltas} deltas before the stop");
    let boundary = out.records().last().cloned().unwrap();
    assert_eq!(control(&boundary).as_deref(), Some("turn-complete"));
    assert_eq!(
        header(&boundary, "session-in-event-id").as_deref(),
        Some("1")
    );
    let st = state(&url, "c-stop").await;
    assert_eq!(st["currentTurnActive"], false);
    assert_eq!(st["inRecords"][1]["consumed"], true);
}

#[tokio::test]
async fn a_stop_between_turns_is_a_no_op() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-idle-stop", None).await;
    append(&url, "c-idle-stop", &pat, &json!({"kind": "stop"})).await;
    say(&url, "c-idle-stop", &pat, "still fine").await;
    let out = read_out(&url, "c-idle-stop", &pat, &[], SEC10, turn_completes(1)).await;
    assert_eq!(out.text(), "You said: still fine");
    assert!(!types(&out).contains(&"abort".to_string()));
}

#[tokio::test]
async fn idle_runs_exit_and_the_next_append_continues_them() {
    let config = Config {
        run_idle_timeout_ms: 150,
        ..Config::default()
    };
    let server = start_with(config).await;
    let url = server.url();
    let pat = token_for(&url, "c-run", Some("one")).await;
    let _ = read_out(&url, "c-run", &pat, &[], SEC10, turn_completes(1)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let st = state(&url, "c-run").await;
    assert_eq!(st["runActive"], false);
    assert_eq!(st["runs"], 1);
    say(&url, "c-run", &pat, "two").await;
    let out = read_out(
        &url,
        "c-run",
        &pat,
        &[("last-event-id", &st["lastSeq"].to_string())],
        SEC10,
        turn_completes(1),
    )
    .await;
    assert_eq!(out.text(), "You said: two");
    let st2 = state(&url, "c-run").await;
    assert_eq!(st2["runs"], 2);
    assert_ne!(st2["currentRunId"], st["currentRunId"]);
}

#[tokio::test]
async fn upgrade_swaps_the_run_before_the_reply() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-up", None).await;
    admin(&url, reqwest::Method::POST, "/chats/c-up/upgrade", None).await;
    say(&url, "c-up", &pat, "hello").await;
    let out = read_out(&url, "c-up", &pat, &[], SEC10, turn_completes(1)).await;
    let records = out.records();
    assert_eq!(control(&records[0]).as_deref(), Some("upgrade-required"));
    assert_eq!(records[0]["body"], "");
    assert_eq!(out.text(), "You said: hello");
    assert_eq!(state(&url, "c-up").await["runs"], 2);
}

#[tokio::test]
async fn tool_call_needs_approval_and_resumes() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-tool", None).await;
    say(&url, "c-tool", &pat, "weather in Lima").await;
    let first = read_out(&url, "c-tool", &pat, &[], SEC10, turn_completes(1)).await;
    assert_eq!(
        types(&first),
        [
            "start",
            "start-step",
            "tool-input-start",
            "tool-input-delta",
            "tool-input-available",
            "tool-approval-request",
            "finish-step",
            "finish"
        ]
    );
    let chunks = first.chunks();
    let message_id = chunks[0]["messageId"].as_str().unwrap().to_string();
    let call = chunks[5]["toolCallId"].as_str().unwrap().to_string();
    let approval = chunks[5]["approvalId"].as_str().unwrap().to_string();
    let last = first.records().last().unwrap()["seq_num"].to_string();

    let reply = json!({"kind": "message", "payload": {"chatId": "c-tool", "trigger": "submit-message",
        "message": {"id": message_id, "role": "assistant", "parts": [{"type": "tool-getWeather",
            "toolCallId": call, "state": "approval-responded", "approval": {"id": approval, "approved": true}}]}}});
    assert_eq!(append(&url, "c-tool", &pat, &reply).await.status(), 200);
    let second = read_out(
        &url,
        "c-tool",
        &pat,
        &[("last-event-id", &last)],
        SEC10,
        turn_completes(1),
    )
    .await;
    let chunks = second.chunks();
    assert_eq!(chunks[0]["messageId"], message_id.as_str());
    let output = chunks
        .iter()
        .find(|c| c["type"] == "tool-output-available")
        .unwrap();
    assert_eq!(output["output"]["city"], "Lima");
    assert_eq!(second.text(), "The weather in Lima is sunny, 21°C.");
}

#[tokio::test]
async fn actions_errors_whoami_and_goodbye() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-misc", None).await;
    let action = json!({"kind": "message", "payload": {"chatId": "c-misc", "trigger": "action", "action": {"type": "undo"}}});
    append(&url, "c-misc", &pat, &action).await;
    let out = read_out(&url, "c-misc", &pat, &[], SEC10, turn_completes(1)).await;
    assert_eq!(out.text(), r#"Action received: {"type":"undo"}"#);

    let cursor = out.records().last().unwrap()["seq_num"].to_string();
    say(&url, "c-misc", &pat, "an error please").await;
    let out = read_out(
        &url,
        "c-misc",
        &pat,
        &[("last-event-id", &cursor)],
        SEC10,
        turn_completes(1),
    )
    .await;
    assert_eq!(types(&out), ["start", "error"]);
    let records = out.records();
    let boundary = records
        .iter()
        .find(|r| control(r).as_deref() == Some("turn-complete"))
        .unwrap();
    assert_eq!(
        header(boundary, "public-access-token"),
        None,
        "an errored turn's boundary has no token"
    );

    let cursor = out.records().last().unwrap()["seq_num"].to_string();
    let whoami = json!({"kind": "message", "payload": {"chatId": "c-misc", "trigger": "submit-message",
        "message": user_message("whoami"), "metadata": {"userId": "u1", "plan": "pro"}}});
    append(&url, "c-misc", &pat, &whoami).await;
    let out = read_out(
        &url,
        "c-misc",
        &pat,
        &[("last-event-id", &cursor)],
        SEC10,
        turn_completes(1),
    )
    .await;
    assert_eq!(
        out.text(),
        r#"whoami: metadata={"userId":"u1","plan":"pro"} clientData={"userId":"u1"}"#
    );

    let cursor = out.records().last().unwrap()["seq_num"].to_string();
    say(&url, "c-misc", &pat, "goodbye").await;
    let out = read_out(
        &url,
        "c-misc",
        &pat,
        &[("last-event-id", &cursor)],
        SEC10,
        turn_completes(1),
    )
    .await;
    let boundary = out
        .records()
        .into_iter()
        .find(|r| control(r).as_deref() == Some("turn-complete"))
        .unwrap();
    assert_eq!(header(&boundary, "session-closed").as_deref(), Some("true"));
    assert_eq!(
        header(&boundary, "session-closed-reason").as_deref(),
        Some("agent-closed")
    );
    assert_eq!(
        append(&url, "c-misc", &pat, &json!({"kind": "stop"}))
            .await
            .status(),
        409
    );
    // After the closing boundary (and its trim), a `session-closed` record of its own: the
    // tail is no `turn-complete`, so a settled peek does not settle.
    let seq = boundary["seq_num"].to_string();
    let after = read_out(
        &url,
        "c-misc",
        &pat,
        &[("last-event-id", &seq), ("x-peek-settled", "1")],
        SEC10,
        |events: &[Event]| {
            events
                .iter()
                .filter(|e| e.event.as_deref() == Some("batch"))
                .flat_map(|e| e.json()["records"].as_array().cloned().unwrap_or_default())
                .any(|r| control(&r).as_deref() == Some("session-closed"))
        },
    )
    .await;
    assert!(after.headers.get("x-session-settled").is_none());
    let kinds: Vec<_> = after.records().iter().map(control).collect();
    assert_eq!(kinds.last(), Some(&Some("session-closed".to_string())));
}

#[tokio::test]
async fn closing_an_idle_session_writes_a_session_closed_record() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-shut", None).await;
    client()
        .post(format!("{url}/api/v1/sessions/c-shut/close"))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    let any_record = |events: &[Event]| events.iter().any(|e| e.event.as_deref() == Some("batch"));
    let out = read_out(
        &url,
        "c-shut",
        &pat,
        &[("x-peek-settled", "1")],
        SEC10,
        any_record,
    )
    .await;
    // Only a `turn-complete` tail settles: the client reads the close record instead.
    assert!(out.headers.get("x-session-settled").is_none());
    let records = out.records();
    assert_eq!(control(&records[0]).as_deref(), Some("session-closed"));
    assert_eq!(
        header(&records[0], "session-closed").as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn a_huge_stream_is_flow_controlled_and_complete() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-big", None).await;
    let n: u64 = 200_000;
    say(&url, "c-big", &pat, &format!("stream {n}")).await;
    // Nobody reads yet: the agent stops one window ahead instead of buffering everything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = state(&url, "c-big").await;
    assert!(st["lastSeq"].as_u64().unwrap() <= chat_devserver::outlog::FLOW_WINDOW_RECORDS + 300);
    assert_eq!(st["currentTurnActive"], true);

    let started = Instant::now();
    let mut res = client()
        .get(format!("{url}/realtime/v1/sessions/c-big/out"))
        .bearer_auth(&pat)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut tail = Vec::new();
    let mut total = 0usize;
    let mut events = 0usize;
    while let Some(bytes) = res.chunk().await.unwrap() {
        total += bytes.len();
        tail.extend_from_slice(&bytes);
        events += bytes.windows(12).filter(|w| w == b"event: batch").count();
        if tail.len() > 4096 {
            tail.drain(..tail.len() - 4096);
        }
        if String::from_utf8_lossy(&tail).contains("turn-complete") {
            break;
        }
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&tail);
    assert!(
        text.contains(&format!(r#"\"delta\":\"{} \""#, n - 1)),
        "last delta present"
    );
    assert!(
        events < (n as usize) / 100,
        "{events} batch events: records are batched"
    );
    assert!(total > (n as usize) * 50);
    eprintln!("{n} records, {total} bytes, {events} events in {elapsed:?}");
}

#[tokio::test]
async fn close_during_a_turn_aborts_it_and_stamps_the_boundary() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-close-mid", Some("slow then closed")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client()
        .post(format!("{url}/api/v1/sessions/c-close-mid/close"))
        .bearer_auth(SECRET)
        .json(&json!({"reason": "admin"}))
        .send()
        .await
        .unwrap();
    let out = read_out(&url, "c-close-mid", &pat, &[], SEC10, turn_completes(1)).await;
    assert_eq!(types(&out).last().map(String::as_str), Some("abort"));
    let boundary = out.records().last().cloned().unwrap();
    assert_eq!(header(&boundary, "session-closed").as_deref(), Some("true"));
    assert_eq!(
        header(&boundary, "session-closed-reason").as_deref(),
        Some("admin")
    );
    let st = state(&url, "c-close-mid").await;
    assert_eq!(st["closed"], true);
    assert_eq!(st["runActive"], false);
}

#[tokio::test]
async fn messages_sent_mid_turn_are_answered_next() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-queue", Some("slow first")).await;
    let second = say(&url, "c-queue", &pat, "queued second").await;
    let out = read_out(&url, "c-queue", &pat, &[], SEC10, turn_completes(2)).await;
    assert!(out.text().ends_with("You said: queued second"));
    let boundaries: Vec<_> = out
        .records()
        .into_iter()
        .filter(|r| control(r).as_deref() == Some("turn-complete"))
        .collect();
    assert_eq!(header(&boundaries[0], "session-in-event-id"), None);
    assert_eq!(
        header(&boundaries[1], "session-in-event-id"),
        Some(second.to_string())
    );
}

#[tokio::test]
async fn a_parked_run_says_pending_version_and_answers_once_it_lands() {
    let server = start().await;
    let url = server.url();
    faults(&url, "c-park", json!({"pendingVersion": true})).await;
    let created = create_session(&url, "c-park", None).await;
    assert_eq!(created["pendingVersion"], true, "session create says so");
    let pat = created["publicAccessToken"].as_str().unwrap().to_string();
    let res = append(&url, "c-park", &pat, &message_chunk("c-park", "later")).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(
        (answer["seq"].as_u64(), &answer["pendingVersion"]),
        (Some(0), &json!(true))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let parked = state(&url, "c-park").await;
    assert_eq!(parked["turns"], 0, "nothing is answered while parked");
    assert_eq!(parked["inRecords"][0]["consumed"], false);

    faults(&url, "c-park", json!({"pendingVersion": false})).await; // the deployment lands
    let out = read_out(&url, "c-park", &pat, &[], SEC10, turn_completes(1)).await;
    assert_eq!(out.text(), "You said: later");
    let res = append(&url, "c-park", &pat, &message_chunk("c-park", "now")).await;
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer.get("pendingVersion"), None, "landed: no longer said");
}

#[tokio::test]
async fn an_upgrade_to_a_parked_run_writes_pending_version_first() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-up-park", None).await;
    admin(
        &url,
        reqwest::Method::POST,
        "/chats/c-up-park/upgrade",
        Some(json!({"pendingVersion": true})),
    )
    .await;
    say(&url, "c-up-park", &pat, "hello").await;
    // Read for a while: the two records come, and no reply while the new run waits.
    let head = read_out(
        &url,
        "c-up-park",
        &pat,
        &[],
        Duration::from_millis(800),
        never,
    )
    .await;
    let records = head.records();
    let controls: Vec<_> = records.iter().map(control).collect();
    assert_eq!(
        controls,
        [
            Some("pending-version".to_string()),
            Some("upgrade-required".to_string())
        ],
        "the handover, and nothing else while the new run waits"
    );
    faults(&url, "c-up-park", json!({"pendingVersion": false})).await;
    let out = read_out(
        &url,
        "c-up-park",
        &pat,
        &[("last-event-id", "1")],
        SEC10,
        turn_completes(1),
    )
    .await;
    assert_eq!(out.text(), "You said: hello");
    assert_eq!(state(&url, "c-up-park").await["runs"], 2);
}
