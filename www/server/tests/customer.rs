//! The customer endpoints (`/api/chat/*`), in emulator mode and in "real Trigger.dev" mode
//! pointed at a second emulator (the only way to exercise that code path here).
mod common;

use chat_devserver::config::RemoteTrigger;
use chat_devserver::{jwt, Config};
use common::*;
use serde_json::{json, Value};

async fn post(url: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = client().post(format!("{url}{path}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn start_creates_or_finds_the_session_and_token_mints() {
    let server = start().await;
    let url = server.url();
    let res = post(
        &url,
        "/api/chat/c-cust/start",
        Some(json!({"taskId": "ai-chat", "clientData": {"userId": "u9"}})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.unwrap();
    let pat = first["publicAccessToken"].as_str().unwrap();
    assert!(first["sessionId"].as_str().unwrap().starts_with("session_"));
    assert_eq!(first["isCached"], false);
    // The session was created the way chat.createStartSessionAction does it: preload + clientData.
    let row: Value = client()
        .get(format!("{url}/api/v1/sessions/c-cust"))
        .bearer_auth(pat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = &row["triggerConfig"]["basePayload"];
    assert_eq!(base["trigger"], "preload");
    assert_eq!(base["chatId"], "c-cust");
    assert_eq!(base["metadata"], json!({"userId": "u9"}));
    assert_eq!(state(&url, "c-cust").await["turns"], 0, "preload waits");

    let again: Value = post(&url, "/api/chat/c-cust/start", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["sessionId"], first["sessionId"]);
    assert_eq!(again["isCached"], true);

    let token: Value = post(&url, "/api/chat/c-cust/token", None)
        .await
        .json()
        .await
        .unwrap();
    let claims = jwt::verify(
        SECRET,
        token["publicAccessToken"].as_str().unwrap(),
        chat_devserver::clock::now_ms(),
    )
    .unwrap();
    assert_eq!(
        claims.scopes,
        ["read:sessions:c-cust", "write:sessions:c-cust"]
    );

    let config: Value = client()
        .get(format!("{url}/api/chat/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["mode"], "emulator");
    assert_eq!(config["baseURL"], url);

    let bad = client()
        .post(format!("{url}/api/chat/c-cust/start"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn chat_ids_with_slashes_round_trip() {
    let server = start().await;
    let url = server.url();
    let res: Value = post(&url, "/api/chat/team%2Fchat-1/start", None)
        .await
        .json()
        .await
        .unwrap();
    let pat = res["publicAccessToken"].as_str().unwrap();
    say(&url, "team%2Fchat-1", pat, "hi").await;
    let st = state(&url, "team%2Fchat-1").await;
    assert_eq!(st["chatId"], "team/chat-1");
    let log = admin(&url, reqwest::Method::GET, "/chats/team%2Fchat-1/log", None).await;
    assert_eq!(log.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn real_mode_talks_to_the_configured_trigger_api() {
    let trigger = start_with(Config {
        secret_key: "tr_dev_remote".into(),
        ..Config::default()
    })
    .await;
    let app = start_with(Config {
        remote: Some(RemoteTrigger {
            api_url: trigger.url(),
            secret_key: "tr_dev_remote".into(),
        }),
        ..Config::default()
    })
    .await;
    let started: Value = post(
        &app.url(),
        "/api/chat/c-real/start",
        Some(json!({"clientData": {"a": 1}})),
    )
    .await
    .json()
    .await
    .unwrap();
    let pat = started["publicAccessToken"].as_str().unwrap().to_string();
    // The session lives on the "Trigger.dev" side, and its token works there.
    assert_eq!(state(&trigger.url(), "c-real").await["exists"], true);
    assert_eq!(state(&app.url(), "c-real").await["exists"], false);
    let log = admin(
        &trigger.url(),
        reqwest::Method::GET,
        "/chats/c-real/log",
        None,
    )
    .await;
    assert_eq!(log[0]["headers"]["authorization"], "Bearer tr_dev_remote");

    let minted: Value = post(&app.url(), "/api/chat/c-real/token", None)
        .await
        .json()
        .await
        .unwrap();
    let minted = minted["publicAccessToken"].as_str().unwrap();
    let claims = jwt::verify("tr_dev_remote", minted, chat_devserver::clock::now_ms()).unwrap();
    assert_eq!(
        claims.sub,
        jwt::EMULATOR_ENV_ID,
        "sub comes from /api/v1/auth/jwt/claims"
    );
    for token in [pat.as_str(), minted] {
        assert_eq!(
            append(&trigger.url(), "c-real", token, &json!({"kind": "stop"}))
                .await
                .status(),
            200
        );
    }
    let config: Value = client()
        .get(format!("{}/api/chat/config", app.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config, json!({"mode": "trigger", "baseURL": trigger.url()}));

    // Errors pass through with their status and code.
    client()
        .post(format!("{}/api/v1/sessions/c-real/close", trigger.url()))
        .bearer_auth("tr_dev_remote")
        .send()
        .await
        .unwrap();
    let closed = post(&app.url(), "/api/chat/c-real/start", None).await;
    assert_eq!(closed.status(), 409);
    assert_eq!(
        closed.json::<Value>().await.unwrap()["code"],
        "session_closed"
    );
}

#[tokio::test]
async fn head_start_creates_the_session_and_streams_the_first_turn_with_the_handlers_framing() {
    let server = start().await;
    let url = server.url();
    let res = post(
        &url,
        "/api/chat/head-start",
        Some(json!({
            "headStartMessages": [user_message("hello there")],
            "chatId": "c-hs",
            "trigger": "submit-message",
            "metadata": {"userId": "u1"},
        })),
    )
    .await;
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-trigger-chat-id"], "c-hs");
    let pat = headers["x-trigger-chat-access-token"]
        .to_str()
        .unwrap()
        .to_string();
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), res.text())
        .await
        .expect("the response ends after the turn")
        .unwrap();
    let chunks: Vec<Value> = parse_events(&text).iter().map(Event::json).collect();
    let types: Vec<&str> = chunks.iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"start"), "{types:?}");
    assert!(types.contains(&"text-delta"), "{types:?}");
    let n = types.len();
    assert_eq!(
        types[n - 2..],
        ["trigger:turn-complete", "trigger:session-state"]
    );
    let last_event_id: u64 = chunks[n - 1]["lastEventId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // The token works on `.in` and `.out`; the boundary at lastEventId names the handler's input.
    let out = read_out(
        &url,
        "c-hs",
        &pat,
        &[],
        std::time::Duration::from_secs(5),
        turn_completes(1),
    )
    .await;
    let boundary = out
        .records()
        .into_iter()
        .find(|r| control(r).as_deref() == Some("turn-complete"))
        .unwrap();
    assert_eq!(boundary["seq_num"].as_u64(), Some(last_event_id));
    assert_eq!(
        header(&boundary, "session-in-event-id").as_deref(),
        Some("0")
    );
    assert_eq!(say(&url, "c-hs", &pat, "and again").await, 1);

    let bad = post(
        &url,
        "/api/chat/head-start",
        Some(json!({"chatId": "c-hs2"})),
    )
    .await;
    assert_eq!(bad.status(), 400);
}
