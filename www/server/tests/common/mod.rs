//! Shared helpers of the HTTP-level tests: an in-process server on port 0, a reqwest client,
//! session setup the way a backend does it, and a small SSE reader.
#![allow(dead_code)]

use std::time::Duration;

use chat_devserver::{Config, RunningServer};
use futures_util::StreamExt;
use serde_json::{json, Value};

pub const SECRET: &str = chat_devserver::config::DEFAULT_SECRET_KEY;

pub async fn start_with(config: Config) -> RunningServer {
    chat_devserver::start(Config { port: 0, ..config })
        .await
        .expect("server starts")
}

pub async fn start() -> RunningServer {
    start_with(Config::default()).await
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn user_message(text: &str) -> Value {
    json!({"id": format!("u-{text}"), "role": "user", "parts": [{"type": "text", "text": text}]})
}

/// `POST /api/v1/sessions` with the secret key; `first` = Some(text) starts a first turn.
pub async fn create_session(url: &str, chat: &str, first: Option<&str>) -> Value {
    let mut base = json!({"chatId": chat, "trigger": "preload", "metadata": {"userId": "u1"}});
    if let Some(text) = first {
        base["trigger"] = json!("submit-message");
        base["message"] = user_message(text);
    }
    let res = client()
        .post(format!("{url}/api/v1/sessions"))
        .bearer_auth(SECRET)
        .json(
            &json!({"type": "chat.agent", "externalId": chat, "taskIdentifier": "ai-chat",
                      "triggerConfig": {"basePayload": base}}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "create: {}", res.status());
    res.json().await.unwrap()
}

/// Creates a session and returns its public access token.
pub async fn token_for(url: &str, chat: &str, first: Option<&str>) -> String {
    create_session(url, chat, first).await["publicAccessToken"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn append(url: &str, chat: &str, token: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{url}/realtime/v1/sessions/{chat}/in/append"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub fn message_chunk(chat: &str, text: &str) -> Value {
    json!({"kind": "message", "payload": {"chatId": chat, "trigger": "submit-message",
           "message": user_message(text)}})
}

/// Sends a user message and returns its `.in` seq.
pub async fn say(url: &str, chat: &str, token: &str, text: &str) -> u64 {
    let res = append(url, chat, token, &message_chunk(chat, text)).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["seq"].as_u64().unwrap()
}

pub async fn admin(url: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = client().request(method, format!("{url}/__admin{path}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "admin {path}: {}", res.status());
    res.json().await.unwrap()
}

pub async fn faults(url: &str, chat: &str, faults: Value) {
    admin(
        url,
        reqwest::Method::POST,
        &format!("/chats/{chat}/faults"),
        Some(faults),
    )
    .await;
}

pub async fn state(url: &str, chat: &str) -> Value {
    admin(
        url,
        reqwest::Method::GET,
        &format!("/chats/{chat}/state"),
        None,
    )
    .await
}

/// One SSE event.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Parses complete events from SSE text (LF or CRLF, comments ignored).
pub fn parse_events(text: &str) -> Vec<Event> {
    let normalized = text.replace("\r\n", "\n");
    let mut events = Vec::new();
    let mut blocks: Vec<&str> = normalized.split("\n\n").collect();
    blocks.pop(); // the part after the last blank line is not a complete event yet
    for block in blocks {
        let mut ev = Event::default();
        let mut data = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') || line.is_empty() {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => ev.event = Some(value.to_string()),
                "id" => ev.id = Some(value.to_string()),
                "data" => data.push(value.to_string()),
                _ => {}
            }
        }
        if !data.is_empty() {
            ev.data = data.join("\n");
            events.push(ev);
        }
    }
    events
}

/// How a `.out` read ended.
#[derive(Debug)]
pub struct OutRead {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub events: Vec<Event>,
    /// The body ended with a transport error (an abrupt cut).
    pub cut: bool,
    pub elapsed: Duration,
    pub pieces: usize,
}

impl OutRead {
    /// All records of all batch events, in order.
    pub fn records(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e.event.as_deref() == Some("batch"))
            .flat_map(|e| e.json()["records"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// The chunks of the data records.
    pub fn chunks(&self) -> Vec<Value> {
        self.records()
            .iter()
            .filter(|r| r["headers"].as_array().is_none_or(|h| h.is_empty()))
            .map(|r| {
                serde_json::from_str::<Value>(r["body"].as_str().unwrap()).unwrap()["data"].clone()
            })
            .collect()
    }

    pub fn text(&self) -> String {
        self.chunks()
            .iter()
            .filter(|c| c["type"] == "text-delta")
            .map(|c| c["delta"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The control subtype of a record, if any.
pub fn control(record: &Value) -> Option<String> {
    record["headers"]
        .as_array()?
        .iter()
        .find_map(|h| (h[0] == "trigger-control").then(|| h[1].as_str().unwrap().to_string()))
}

pub fn header(record: &Value, name: &str) -> Option<String> {
    record["headers"]
        .as_array()?
        .iter()
        .find_map(|h| (h[0] == name).then(|| h[1].as_str().unwrap().to_string()))
}

/// GETs `.out` with `extra` headers and reads until the body ends, `stop(events)` says so, or
/// `limit` passes.
pub async fn read_out(
    url: &str,
    chat: &str,
    token: &str,
    extra: &[(&str, &str)],
    limit: Duration,
    stop: impl Fn(&[Event]) -> bool,
) -> OutRead {
    let started = std::time::Instant::now();
    let mut req = client()
        .get(format!("{url}/realtime/v1/sessions/{chat}/out"))
        .bearer_auth(token)
        .header("accept", "text/event-stream");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let mut body = res.bytes_stream();
    let mut raw = Vec::new();
    let mut cut = false;
    let mut pieces = 0;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(Err(_))) => {
                cut = true;
                break;
            }
            Ok(Some(Ok(bytes))) => {
                pieces += 1;
                raw.extend_from_slice(&bytes);
                let text = String::from_utf8_lossy(&raw);
                if stop(&parse_events(&text)) {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    OutRead {
        status,
        headers,
        events: parse_events(&text),
        text,
        cut,
        elapsed: started.elapsed(),
        pieces,
    }
}

/// Stop condition: `n` turn-complete records seen.
pub fn turn_completes(n: usize) -> impl Fn(&[Event]) -> bool {
    move |events: &[Event]| {
        events
            .iter()
            .filter(|e| e.event.as_deref() == Some("batch"))
            .flat_map(|e| e.json()["records"].as_array().cloned().unwrap_or_default())
            .filter(|r| control(r).as_deref() == Some("turn-complete"))
            .count()
            >= n
    }
}

pub fn never(_: &[Event]) -> bool {
    false
}
