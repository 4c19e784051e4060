//! `POST /api/v1/sessions`, close, get, JWT claims and the tokens themselves.
mod common;

use chat_devserver::jwt;
use common::*;
use serde_json::{json, Value};

fn create_body(chat: &str) -> Value {
    json!({"type": "chat.agent", "externalId": chat, "taskIdentifier": "ai-chat",
           "triggerConfig": {"basePayload": {"chatId": chat, "trigger": "preload"}},
           "tags": ["chat:x"], "metadata": {"k": 1}})
}

async fn post_create(url: &str, auth: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{url}/api/v1/sessions"))
        .bearer_auth(auth)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn create_is_idempotent_with_fresh_tokens() {
    let server = start().await;
    let url = server.url();
    let first = post_create(&url, SECRET, &create_body("c1")).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().contains_key("x-trigger-jwt"));
    let first: Value = first.json().await.unwrap();
    for field in [
        "id",
        "externalId",
        "type",
        "taskIdentifier",
        "triggerConfig",
        "currentRunId",
        "tags",
        "metadata",
        "closedAt",
        "closedReason",
        "expiresAt",
        "createdAt",
        "updatedAt",
        "runId",
        "publicAccessToken",
        "isCached",
    ] {
        assert!(first.get(field).is_some(), "missing {field}");
    }
    assert!(first["id"].as_str().unwrap().starts_with("session_"));
    assert_eq!(first["isCached"], false);
    assert_eq!(first["runId"], first["currentRunId"]);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = post_create(&url, SECRET, &create_body("c1")).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["isCached"], true);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["runId"], first["runId"], "no duplicate run");
    assert_ne!(
        again["publicAccessToken"], first["publicAccessToken"],
        "fresh token"
    );
    assert_eq!(state(&url, "c1").await["runs"], 1);
}

#[tokio::test]
async fn tokens_are_session_scoped_hs256_with_a_60_minute_default() {
    let server = start().await;
    let body = create_session(&server.url(), "c-tok", None).await;
    let token = body["publicAccessToken"].as_str().unwrap();
    let claims = jwt::verify(SECRET, token, chat_devserver::clock::now_ms()).unwrap();
    assert_eq!(claims.iss, "https://id.trigger.dev");
    assert_eq!(claims.aud, "https://api.trigger.dev");
    assert!(claims.public);
    assert_eq!(
        claims.scopes,
        ["read:sessions:c-tok", "write:sessions:c-tok"]
    );
    let lifetime = claims.exp - claims.iat;
    assert!((3600..=3601).contains(&lifetime), "{lifetime}");
    let header = token.split('.').next().unwrap();
    use base64::Engine;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&header).unwrap()["alg"],
        "HS256"
    );
}

#[tokio::test]
async fn create_needs_the_secret_key_and_valid_input() {
    let server = start().await;
    let url = server.url();
    assert_eq!(
        post_create(&url, "nope", &create_body("c")).await.status(),
        401
    );
    let pat = token_for(&url, "c-pat", None).await;
    assert_eq!(
        post_create(&url, &pat, &create_body("c")).await.status(),
        403
    );
    for bad in [
        json!({"taskIdentifier": "t", "triggerConfig": {"basePayload": {}}}),
        json!({"type": "chat.agent", "triggerConfig": {"basePayload": {}}}),
        json!({"type": "chat.agent", "taskIdentifier": "t"}),
        json!({"type": "chat.agent", "taskIdentifier": "t", "externalId": "session_x",
               "triggerConfig": {"basePayload": {}}}),
        json!({"type": "chat.agent", "taskIdentifier": "t",
               "triggerConfig": {"basePayload": {"trigger": "action"}}}),
        json!([1, 2]),
    ] {
        let res = post_create(&url, SECRET, &bad).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["ok"], false);
        assert!(body["error"].is_string());
    }
    let malformed = client()
        .post(format!("{url}/api/v1/sessions"))
        .bearer_auth(SECRET)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(malformed.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("Malformed JSON"));
}

#[tokio::test]
async fn close_is_idempotent_and_blocks_recreate() {
    let server = start().await;
    let url = server.url();
    let created = create_session(&url, "c-close", None).await;
    let id = created["id"].as_str().unwrap();
    let close = |name: String, body: Option<Value>| {
        let url = url.clone();
        async move {
            let mut req = client()
                .post(format!("{url}/api/v1/sessions/{name}/close"))
                .bearer_auth(SECRET);
            if let Some(body) = body {
                req = req.json(&body);
            }
            req.send().await.unwrap()
        }
    };
    let first = close(id.to_string(), Some(json!({"reason": "user-ended"}))).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["closedReason"], "user-ended");
    assert!(first["closedAt"].is_string());
    // Again, by externalId and without a body: same row, reason kept.
    let again: Value = close("c-close".into(), None).await.json().await.unwrap();
    assert_eq!(again["closedAt"], first["closedAt"]);
    assert_eq!(again["closedReason"], "user-ended");

    let recreate = post_create(&url, SECRET, &create_body("c-close")).await;
    assert_eq!(recreate.status(), 409);
    let body: Value = recreate.json().await.unwrap();
    assert_eq!(body["code"], "session_closed");
    assert_eq!(body["closedReason"], "user-ended");

    let long = "x".repeat(257);
    assert_eq!(
        close(id.to_string(), Some(json!({"reason": long})))
            .await
            .status(),
        400
    );
    assert_eq!(close("unknown-chat".into(), None).await.status(), 404);
}

#[tokio::test]
async fn get_returns_the_row_and_claims_route_the_environment() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-get", None).await;
    let row: Value = client()
        .get(format!("{url}/api/v1/sessions/c-get"))
        .bearer_auth(&pat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(row["externalId"], "c-get");
    let claims: Value = client()
        .post(format!("{url}/api/v1/auth/jwt/claims"))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claims["pub"], true);
    assert!(claims["sub"].is_string());
}

#[tokio::test]
async fn submit_message_in_base_payload_starts_the_first_turn() {
    let server = start().await;
    let url = server.url();
    let pat = token_for(&url, "c-first", Some("hello")).await;
    let out = read_out(
        &url,
        "c-first",
        &pat,
        &[],
        std::time::Duration::from_secs(5),
        turn_completes(1),
    )
    .await;
    assert_eq!(out.text(), "You said: hello");
    let records = out.records();
    let boundary = records.last().unwrap();
    assert_eq!(control(boundary).as_deref(), Some("turn-complete"));
    assert!(header(boundary, "public-access-token").is_some());
    assert_eq!(
        header(boundary, "session-in-event-id"),
        None,
        "nothing was read from .in"
    );
    assert_eq!(boundary["body"], "");
}
