//! `POST /realtime/v1/sessions/{id}/in/append` and CORS.
mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn append_returns_seq_and_is_idempotent_on_part_id() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-in", None).await;
    let post = |part: Option<&'static str>, body: Value| {
        let (url, pat) = (url.clone(), pat.clone());
        async move {
            let mut req = client()
                .post(format!("{url}/realtime/v1/sessions/c-in/in/append"))
                .bearer_auth(pat)
                .json(&body);
            if let Some(p) = part {
                req = req.header("x-part-id", p);
            }
            req.send().await.unwrap()
        }
    };
    let first = post(Some("part-a"), message_chunk("c-in", "one")).await;
    assert_eq!(first.status(), 200);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(first.headers().contains_key(h), "{h}");
    }
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"ok": true, "seq": 0})
    );
    let again: Value = post(Some("part-a"), message_chunk("c-in", "one"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["seq"], 0, "same X-Part-Id, same seq");
    let stop: Value = post(None, json!({"kind": "stop"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stop["seq"], 1);
    let no_part: Value = post(None, json!({"kind": "stop"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        no_part["seq"], 2,
        "without X-Part-Id every call is a new record"
    );
    let st = state(&url, "c-in").await;
    assert_eq!(st["inRecords"].as_array().unwrap().len(), 3);
    assert_eq!(st["inRecords"][0]["partId"], "part-a");
}

#[tokio::test]
async fn bad_input_is_a_json_400() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-bad", None).await;
    for body in [
        "{oops",
        "",
        "[1]",
        r#"{"kind":"nope"}"#,
        r#"{"kind":"message"}"#,
    ] {
        let res = client()
            .post(format!("{url}/realtime/v1/sessions/c-bad/in/append"))
            .bearer_auth(&pat)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body:?}");
        assert_eq!(res.json::<Value>().await.unwrap()["ok"], false);
    }
}

#[tokio::test]
async fn auth_unknown_closed_and_oversized() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-x", None).await;
    let other = token_for(&url, "c-y", None).await;
    let chunk = message_chunk("c-x", "hi");
    assert_eq!(append(&url, "c-x", "bad", &chunk).await.status(), 401);
    assert_eq!(append(&url, "c-x", &other, &chunk).await.status(), 403);
    assert_eq!(
        append(&url, "c-missing", SECRET, &chunk).await.status(),
        404
    );

    let big = json!({"kind": "message", "payload": {"chatId": "c-x", "trigger": "submit-message",
        "message": user_message(&"a".repeat((1 << 20) + 10))}});
    let res = append(&url, "c-x", &pat, &big).await;
    assert_eq!(res.status(), 413);
    assert!(res.headers().contains_key("access-control-allow-origin"));
    // Under 1 MiB raw, but over it once JSON-wrapped as a record body.
    let quotes = json!({"kind": "message", "payload": {"chatId": "c-x", "trigger": "submit-message",
        "message": user_message(&"\"".repeat(600 << 10))}});
    assert_eq!(append(&url, "c-x", &pat, &quotes).await.status(), 413);

    client()
        .post(format!("{url}/api/v1/sessions/c-x/close"))
        .bearer_auth(SECRET)
        .json(&json!({"reason": "done here"}))
        .send()
        .await
        .unwrap();
    let res = append(&url, "c-x", &pat, &chunk).await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert_eq!(body["code"], "session_closed");
    assert_eq!(body["closedReason"], "done here");
}

#[tokio::test]
async fn injected_append_failures_then_success() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-fail", None).await;
    faults(
        &url,
        "c-fail",
        json!({"appendFailures": {"status": 429, "count": 2}}),
    )
    .await;
    for _ in 0..2 {
        let res = append(&url, "c-fail", &pat, &json!({"kind": "stop"})).await;
        assert_eq!(res.status(), 429);
        let reset: u64 = res.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset > chat_devserver::clock::now_ms());
        assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    }
    assert_eq!(
        append(&url, "c-fail", &pat, &json!({"kind": "stop"}))
            .await
            .status(),
        200
    );
    faults(
        &url,
        "c-fail",
        json!({"appendFailures": {"status": 500, "count": 1}}),
    )
    .await;
    assert_eq!(
        append(&url, "c-fail", &pat, &json!({"kind": "stop"}))
            .await
            .status(),
        500
    );
    assert_eq!(
        append(&url, "c-fail", &pat, &json!({"kind": "stop"}))
            .await
            .status(),
        200
    );
    assert_eq!(
        state(&url, "c-fail").await["inRecords"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn cors_on_preflight_success_and_errors() {
    let server = start().await;
    let url = server.url();
    let pre = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{url}/realtime/v1/sessions/c/in/append"),
        )
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, x-part-id, x-custom",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:5173");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "authorization",
        "content-type",
        "last-event-id",
        "x-peek-settled",
        "timeout-seconds",
        "x-part-id",
        "x-custom",
    ] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));

    for res in [
        client()
            .get(format!("{url}/realtime/v1/sessions/nope/out"))
            .header("origin", "http://a.test")
            .send()
            .await
            .unwrap(),
        client()
            .get(format!("{url}/api/nothing-here"))
            .header("origin", "http://a.test")
            .send()
            .await
            .unwrap(),
        client()
            .post(format!("{url}/__admin/reset"))
            .header("origin", "http://a.test")
            .send()
            .await
            .unwrap(),
    ] {
        let h = res.headers();
        assert_eq!(
            h["access-control-allow-origin"],
            "http://a.test",
            "{}",
            res.url()
        );
        let exposed = h["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for name in ["x-session-settled", "x-ratelimit-reset", "x-stream-version"] {
            assert!(exposed.contains(name));
        }
    }
    let missing = client()
        .get(format!("{url}/api/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["access-control-allow-origin"], "*");
    assert_eq!(missing.json::<Value>().await.unwrap()["ok"], false);
}
