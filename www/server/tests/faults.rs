//! Fault injection and the request log (the test-only `/__admin/` API).
mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const SEC5: Duration = Duration::from_secs(5);
const TEXT: &str = "alpha beta gamma delta epsilon zeta eta theta iota kappa";

/// A session whose first turn (the echo of [`TEXT`]) is already on `.out`.
async fn with_turn(url: &str, chat: &str) -> String {
    let pat = token_for(url, chat, Some(TEXT)).await;
    for _ in 0..100 {
        if state(url, chat).await["turns"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pat
}

#[tokio::test]
async fn drop_after_records_cuts_the_body_once() {
    let server = start().await;
    let url = server.url();
    let pat = with_turn(&url, "c-drop").await;
    faults(&url, "c-drop", json!({"dropAfterRecords": 4})).await;
    let cut = read_out(&url, "c-drop", &pat, &[], SEC5, never).await;
    assert!(cut.cut, "the body ends with an error, not a clean end");
    assert_eq!(cut.records().len(), 4);
    assert!(!cut.text.contains("[DONE]"));
    // The counter fired: the next connection is whole.
    let whole = read_out(
        &url,
        "c-drop",
        &pat,
        &[("last-event-id", "3")],
        SEC5,
        turn_completes(1),
    )
    .await;
    assert!(!whole.cut);
    assert_eq!(whole.records()[0]["seq_num"], 4);
    assert_eq!(
        format!("{}{}", cut.text(), whole.text()),
        format!("You said: {TEXT}")
    );
}

#[tokio::test]
async fn error_event_then_clean_close() {
    let server = start().await;
    let url = server.url();
    let pat = with_turn(&url, "c-err").await;
    faults(&url, "c-err", json!({"errorEventAfterRecords": 2})).await;
    let out = read_out(&url, "c-err", &pat, &[], SEC5, never).await;
    assert!(!out.cut);
    assert_eq!(out.records().len(), 2);
    let last = out.events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert!(!out.text.contains("[DONE]"));
}

#[tokio::test]
async fn framing_faults_keep_the_events() {
    let server = start().await;
    let url = server.url();
    let pat = with_turn(&url, "c-frame").await;
    let plain = read_out(&url, "c-frame", &pat, &[], SEC5, turn_completes(1)).await;
    faults(
        &url,
        "c-frame",
        json!({"crlf": true, "comments": true, "tinyWrites": true}),
    )
    .await;
    let odd = read_out(&url, "c-frame", &pat, &[], SEC5, turn_completes(1)).await;
    assert!(odd.text.contains("\r\n"));
    assert!(odd.text.lines().any(|l| l.starts_with(':')));
    assert!(
        odd.pieces > plain.pieces * 10,
        "{} vs {} pieces",
        odd.pieces,
        plain.pieces
    );
    assert_eq!(odd.records(), plain.records());

    admin(&url, Method::DELETE, "/chats/c-frame/faults", None).await;
    faults(&url, "c-frame", json!({"duplicateRecords": true})).await;
    let dup = read_out(
        &url,
        "c-frame",
        &pat,
        &[("timeout-seconds", "1")],
        SEC5,
        never,
    )
    .await;
    assert_eq!(dup.records().len(), 2 * plain.records().len());
}

#[tokio::test]
async fn out_failures_latency_and_ping_interval() {
    let server = start().await;
    let url = server.url();
    let pat = with_turn(&url, "c-misc").await;
    faults(
        &url,
        "c-misc",
        json!({"outFailures": {"status": 503, "count": 1}, "latencyMs": 300, "pingIntervalMs": 50}),
    )
    .await;
    let started = Instant::now();
    let failed = read_out(&url, "c-misc", &pat, &[], SEC5, never).await;
    assert_eq!(failed.status, 503);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "latency applied"
    );
    let out = read_out(
        &url,
        "c-misc",
        &pat,
        &[("last-event-id", "999")],
        Duration::from_millis(600),
        never,
    )
    .await;
    assert_eq!(out.status, 200);
    let pings = out
        .events
        .iter()
        .filter(|e| e.event.as_deref() == Some("ping"))
        .count();
    assert!(pings >= 3, "{pings} pings");
}

#[tokio::test]
async fn token_ttl_fault_shortens_minted_tokens() {
    let server = start().await;
    let url = server.url();
    faults(&url, "c-ttl", json!({"tokenTtlSeconds": 1})).await;
    let pat = token_for(&url, "c-ttl", None).await;
    assert_eq!(
        append(&url, "c-ttl", &pat, &json!({"kind": "stop"}))
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = append(&url, "c-ttl", &pat, &json!({"kind": "stop"})).await;
    assert_eq!(res.status(), 401);
    let bad = client()
        .post(format!("{url}/__admin/chats/c-ttl/faults"))
        .json(&json!({"unknownFault": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn request_log_records_what_the_client_sent() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-log", None).await;
    client()
        .post(format!("{url}/realtime/v1/sessions/c-log/in/append"))
        .bearer_auth(&pat)
        .header("x-part-id", "p-1")
        .json(&json!({"kind": "stop"}))
        .send()
        .await
        .unwrap();
    let log = admin(&url, Method::GET, "/chats/c-log/log", None).await;
    let log = log.as_array().unwrap();
    assert_eq!(log[0]["method"], "POST");
    assert_eq!(log[0]["path"], "/api/v1/sessions");
    assert_eq!(log[0]["status"], 201);
    let append = &log[1];
    assert_eq!(append["path"], "/realtime/v1/sessions/c-log/in/append");
    assert_eq!(append["headers"]["authorization"], format!("Bearer {pat}"));
    assert_eq!(append["headers"]["x-part-id"], "p-1");
    assert_eq!(
        serde_json::from_str::<Value>(append["body"].as_str().unwrap()).unwrap(),
        json!({"kind": "stop"})
    );
    assert!(append["atMs"].as_u64().unwrap() > 0);
    assert_eq!(append["status"], 200);

    // The session_… form is logged under the chat id too; admin requests are not logged.
    let id = state(&url, "c-log").await["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let _ = read_out(&url, &id, &pat, &[("timeout-seconds", "1")], SEC5, never).await;
    let log = admin(&url, Method::GET, "/chats/c-log/log", None).await;
    assert_eq!(log.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn reset_forgets_everything_and_ends_streams() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-reset", None).await;
    faults(&url, "c-reset", json!({"crlf": true})).await;
    let reader = {
        let (url, pat) = (url.clone(), pat.clone());
        tokio::spawn(async move { read_out(&url, "c-reset", &pat, &[], SEC5, never).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(state(&url, "c-reset").await["openOutConnections"], 1);
    admin(&url, Method::POST, "/reset", None).await;
    let out = reader.await.unwrap();
    assert!(
        out.elapsed < Duration::from_secs(2),
        "stream ended by the reset"
    );
    // A client that goes away is noticed without waiting for the next write.
    let leaver = token_for(&url, "c-leave", None).await;
    let _ = read_out(
        &url,
        "c-leave",
        &leaver,
        &[],
        Duration::from_millis(300),
        never,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state(&url, "c-leave").await["openOutConnections"], 0);
    assert_eq!(state(&url, "c-reset").await["exists"], false);
    assert_eq!(
        admin(&url, Method::GET, "/chats/c-reset/faults", None).await,
        json!({})
    );
    assert_eq!(
        append(&url, "c-reset", &pat, &json!({"kind": "stop"}))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn append_without_seq_answers_ok_only() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-noseq", None).await;
    faults(&url, "c-noseq", json!({"appendWithoutSeq": true})).await;
    let res = append(&url, "c-noseq", &pat, &message_chunk("c-noseq", "hi")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"ok": true}));
    assert_eq!(
        state(&url, "c-noseq").await["inRecords"][0]["seq"],
        0,
        "stored all the same"
    );
}
