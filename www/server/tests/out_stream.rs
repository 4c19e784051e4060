//! `GET /realtime/v1/sessions/{id}/out`: auth, framing, resume, long-poll end, pings, settled
//! peek, trim and seq continuity.
mod common;

use std::time::Duration;

use chat_devserver::{jwt, Config};
use common::*;
use serde_json::Value;

const SEC5: Duration = Duration::from_secs(5);

async fn get_out(url: &str, chat: &str, auth: Option<&str>, accept: bool) -> reqwest::Response {
    let mut req = client().get(format!("{url}/realtime/v1/sessions/{chat}/out"));
    if let Some(auth) = auth {
        req = req.bearer_auth(auth);
    }
    if accept {
        req = req.header("accept", "text/event-stream");
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn auth_scope_accept_and_not_found() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-auth", None).await;
    let other = token_for(&url, "c-other", None).await;
    let expired = jwt::mint(
        SECRET,
        "env",
        jwt::session_scopes("c-auth"),
        -5,
        chat_devserver::clock::now_ms(),
    );
    let foreign = jwt::mint(
        "another-key",
        "env",
        jwt::session_scopes("c-auth"),
        60,
        chat_devserver::clock::now_ms(),
    );
    let ghost = jwt::mint(
        SECRET,
        "env",
        jwt::session_scopes("ghost"),
        60,
        chat_devserver::clock::now_ms(),
    );

    assert_eq!(get_out(&url, "c-auth", None, true).await.status(), 401);
    assert_eq!(
        get_out(&url, "c-auth", Some("garbage"), true)
            .await
            .status(),
        401
    );
    let res = get_out(&url, "c-auth", Some(&expired), true).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "token_expired");
    assert_eq!(
        get_out(&url, "c-auth", Some(&foreign), true).await.status(),
        401
    );
    assert_eq!(
        get_out(&url, "c-auth", Some(&other), true).await.status(),
        403
    );
    let res = get_out(&url, "ghost", Some(&ghost), true).await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["ok"], false);
    assert_eq!(get_out(&url, "ghost", Some(&pat), true).await.status(), 403);
    assert_eq!(
        get_out(&url, "c-auth", Some(&pat), false).await.status(),
        400
    );

    // The session_… form works with the externalId token.
    let id = state(&url, "c-auth").await["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let out = read_out(&url, &id, &pat, &[("timeout-seconds", "1")], SEC5, never).await;
    assert_eq!(out.status, 200);
}

#[tokio::test]
async fn stream_headers_and_batch_framing() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-frame", Some("hi there")).await;
    let out = read_out(&url, "c-frame", &pat, &[], SEC5, turn_completes(1)).await;
    assert_eq!(out.headers["x-stream-version"], "v2");
    assert_eq!(out.headers["content-type"], "text/event-stream");
    assert!(out.headers.get("connection").is_none_or(|v| v != "close"));
    assert!(out.headers.get("x-session-settled").is_none());
    let batch = &out.events[0];
    assert_eq!(batch.event.as_deref(), Some("batch"));
    let id = batch.id.as_deref().unwrap();
    assert_eq!(id.split(',').count(), 3, "S2-style id line {id}");
    let body = batch.json();
    let records = body["records"].as_array().unwrap();
    assert_eq!(body["tail"]["seq_num"], records.len());
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r["seq_num"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..records.len() as u64).collect::<Vec<_>>());
    let data = &records[0];
    assert_eq!(data["headers"], serde_json::json!([]));
    let envelope: Value = serde_json::from_str(data["body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["data"]["type"], "start");
    assert!(envelope["data"]["messageId"].is_string());
    assert!(envelope["id"].is_string());
    let types: Vec<String> = out
        .chunks()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("start"));
    assert_eq!(types.last().map(String::as_str), Some("finish"));
    assert!(types.iter().filter(|t| *t == "text-delta").count() >= 2);
}

#[tokio::test]
async fn last_event_id_resumes_and_bad_ids_start_over() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-resume", Some("one two three")).await;
    let all = read_out(&url, "c-resume", &pat, &[], SEC5, turn_completes(1))
        .await
        .records();
    let resumed = read_out(
        &url,
        "c-resume",
        &pat,
        &[("last-event-id", "3")],
        SEC5,
        turn_completes(1),
    )
    .await;
    let seqs: Vec<u64> = resumed
        .records()
        .iter()
        .map(|r| r["seq_num"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.first(), Some(&4));
    assert_eq!(resumed.records().len(), all.len() - 4);
    let bogus = read_out(
        &url,
        "c-resume",
        &pat,
        &[("last-event-id", "0,1,106")],
        SEC5,
        turn_completes(1),
    )
    .await;
    assert_eq!(bogus.records().len(), all.len());
}

#[tokio::test]
async fn timeout_seconds_ends_an_idle_long_poll_with_done() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-idle", None).await;
    let out = read_out(
        &url,
        "c-idle",
        &pat,
        &[("timeout-seconds", "1")],
        SEC5,
        never,
    )
    .await;
    assert!(!out.cut);
    assert_eq!(out.events.last().unwrap().data, "[DONE]");
    assert!(
        out.elapsed >= Duration::from_millis(900) && out.elapsed < Duration::from_secs(3),
        "{:?}",
        out.elapsed
    );
    // Out of range values are clamped (0 → 1 s).
    let out = read_out(
        &url,
        "c-idle",
        &pat,
        &[("timeout-seconds", "0")],
        SEC5,
        never,
    )
    .await;
    assert!(out.elapsed < Duration::from_secs(3));
}

#[tokio::test]
async fn pings_carry_the_tail() {
    let server = start_with(Config {
        ping_interval_ms: 100,
        ..Config::default()
    })
    .await;
    let url = server.url();
    let pat = token_for(&url, "c-ping", Some("x")).await;
    let out = read_out(
        &url,
        "c-ping",
        &pat,
        &[("last-event-id", "1000")],
        Duration::from_millis(450),
        never,
    )
    .await;
    let pings: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.event.as_deref() == Some("ping"))
        .collect();
    assert!(pings.len() >= 3, "{} pings", pings.len());
    let ping = pings[0].json();
    assert!(ping["timestamp"].as_u64().unwrap() > 0);
    assert_eq!(ping["tail"]["seq_num"], state(&url, "c-ping").await["tail"]);
}

#[tokio::test]
async fn peek_settled_closes_fast_only_after_a_turn_complete() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-peek", Some("done")).await;
    let _ = read_out(&url, "c-peek", &pat, &[], SEC5, turn_completes(1)).await;
    let out = read_out(
        &url,
        "c-peek",
        &pat,
        &[("x-peek-settled", "1"), ("last-event-id", "2")],
        SEC5,
        never,
    )
    .await;
    assert_eq!(out.headers["x-session-settled"], "true");
    assert!(out.elapsed < Duration::from_secs(2));
    assert!(!out.records().is_empty(), "residual records are drained");
    assert_eq!(out.events.last().unwrap().data, "[DONE]");

    // Mid-turn: no settled header, the stream stays open.
    let pat2 = token_for(&url, "c-peek2", Some("slow please")).await;
    let out = read_out(
        &url,
        "c-peek2",
        &pat2,
        &[("x-peek-settled", "1")],
        Duration::from_millis(700),
        never,
    )
    .await;
    assert!(out.headers.get("x-session-settled").is_none());
    assert!(out.elapsed >= Duration::from_millis(650));
}

#[tokio::test]
async fn turns_trim_and_seq_continue_across_runs() {
    let server = start_with(Config {
        trim_delay_ms: 0,
        ..Config::default()
    })
    .await;
    let url = server.url();
    let pat = token_for(&url, "c-seq", Some("first")).await;
    let t1 = read_out(&url, "c-seq", &pat, &[], SEC5, turn_completes(1))
        .await
        .records();
    let tc1 = t1.last().unwrap()["seq_num"].as_u64().unwrap();

    let in_seq = say(&url, "c-seq", &pat, "second").await;
    let resume = tc1.to_string();
    let t2 = read_out(
        &url,
        "c-seq",
        &pat,
        &[("last-event-id", &resume)],
        SEC5,
        turn_completes(1),
    )
    .await
    .records();
    assert_eq!(t2[0]["seq_num"].as_u64().unwrap(), tc1 + 1);
    let tc2 = t2
        .iter()
        .find(|r| control(r).as_deref() == Some("turn-complete"))
        .unwrap();
    assert_eq!(header(tc2, "session-in-event-id"), Some(in_seq.to_string()));
    let refreshed = header(tc2, "public-access-token").unwrap();
    assert!(jwt::verify(SECRET, &refreshed, chat_devserver::clock::now_ms()).is_ok());

    // After the second boundary: a trim command record back to the first boundary.
    let trim = read_out(
        &url,
        "c-seq",
        &pat,
        &[
            ("last-event-id", &tc2["seq_num"].to_string()),
            ("timeout-seconds", "1"),
        ],
        SEC5,
        never,
    )
    .await
    .records();
    assert_eq!(trim[0]["headers"], serde_json::json!([["", "trim"]]));
    // Records before the first boundary are gone; a cursor from the start clamps forward.
    let from_start = read_out(
        &url,
        "c-seq",
        &pat,
        &[("timeout-seconds", "1")],
        SEC5,
        never,
    )
    .await
    .records();
    assert_eq!(from_start[0]["seq_num"].as_u64().unwrap(), tc1);

    // A continuation run continues the numbering.
    admin(&url, reqwest::Method::POST, "/chats/c-seq/end-run", None).await;
    for _ in 0..100 {
        if state(&url, "c-seq").await["runActive"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    say(&url, "c-seq", &pat, "third").await;
    let last = trim.last().unwrap()["seq_num"].as_u64().unwrap();
    let t3 = read_out(
        &url,
        "c-seq",
        &pat,
        &[("last-event-id", &last.to_string())],
        SEC5,
        turn_completes(1),
    )
    .await;
    assert_eq!(t3.records()[0]["seq_num"].as_u64().unwrap(), last + 1);
    assert_eq!(t3.text(), "You said: third");
    assert_eq!(state(&url, "c-seq").await["runs"], 2);
}

#[tokio::test]
async fn keep_alive_connection_is_reused_after_done() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-ka", Some("x")).await;
    let c = client();
    for _ in 0..2 {
        let res = c
            .get(format!("{url}/realtime/v1/sessions/c-ka/out"))
            .bearer_auth(&pat)
            .header("accept", "text/event-stream")
            .header("x-peek-settled", "1")
            .send()
            .await
            .unwrap();
        assert!(res.headers().get("connection").is_none());
        assert!(res.text().await.unwrap().contains("[DONE]"));
    }
}
