//! What the client sends on `.in/append` and what comes back (client-protocol.mdx Step 3).
//!
//! ```text
//! type ChatInputChunk =
//!   | { kind: "message"; payload: ChatTaskWirePayload }
//!   | { kind: "stop"; message?: string };
//! ```

use super::error::Error;
use super::json::{write_json_string, Json};
#[allow(unused_imports)]
use crate::prelude::*;

/// The `.in/append` HTTP body cap: 1 MiB (client-protocol.mdx FAQ "What's the maximum size of a
/// single `.in/append` body?").
pub const MAX_APPEND_BODY_BYTES: usize = 1_048_576;

/// Reject an `.in/append` body the server would answer with 413, before sending it.
pub fn check_append_body_size(body: &str) -> Result<(), Error> {
    if body.len() > MAX_APPEND_BODY_BYTES {
        return Err(Error::PayloadTooLarge {
            size_bytes: Some(body.len()),
            limit_bytes: Some(MAX_APPEND_BODY_BYTES),
        });
    }
    Ok(())
}

/// One `.in/append` body.
///
/// ```
/// use trigger_chat_wasm::proto::wire::InputChunk;
/// assert_eq!(InputChunk::Stop { message: None }.to_json_string(), r#"{"kind":"stop"}"#);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum InputChunk {
    /// `{"kind":"message","payload":…}` with a [`WirePayload`]'s JSON.
    Message(Json),
    /// `{"kind":"stop"}`, with an optional note for the agent's stop handler.
    Stop {
        /// Surfaces in the agent's stop handler.
        message: Option<String>,
    },
}

impl InputChunk {
    /// The body text, byte-identical to `JSON.stringify(chunk)` in the JS transport.
    pub fn to_json_string(&self) -> String {
        let mut out = String::new();
        match self {
            InputChunk::Message(payload) => {
                out.push_str(r#"{"kind":"message","payload":"#);
                payload.write(&mut out);
                out.push('}');
            }
            InputChunk::Stop { message } => {
                out.push_str(r#"{"kind":"stop""#);
                if let Some(message) = message {
                    out.push_str(r#","message":"#);
                    write_json_string(&mut out, message);
                }
                out.push('}');
            }
        }
        out
    }
}

/// `ChatTaskWirePayload.trigger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A new user message, or a tool-approval / HITL answer.
    SubmitMessage,
    /// Regenerate the last assistant message; carries no `message`.
    RegenerateMessage,
    /// Warm the agent before the first message.
    Preload,
    /// End the conversation.
    Close,
    /// A custom action (`action` field).
    Action,
    /// chat.headStart's first turn.
    HandoverPrepare,
}

impl Trigger {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::SubmitMessage => "submit-message",
            Trigger::RegenerateMessage => "regenerate-message",
            Trigger::Preload => "preload",
            Trigger::Close => "close",
            Trigger::Action => "action",
            Trigger::HandoverPrepare => "handover-prepare",
        }
    }
}

/// The keys the transport owns in a payload: a caller's `body` never supplies them.
const TRANSPORT_KEYS: [&str; 6] = [
    "message",
    "chatId",
    "trigger",
    "messageId",
    "metadata",
    "action",
];

/// Builder for `ChatTaskWirePayload`.
///
/// Shape: `{ ...body, message?, chatId, trigger, messageId?, metadata?, action? }`. Keys of
/// `body` (the AI SDK's per-request `body` option) come first, except the transport's own keys,
/// which `body` can never set; `None` fields are left out like `undefined` in `JSON.stringify`.
/// Unlike the JS transport (weakness W19), a `body.message` does not leak into a
/// `regenerate-message` payload.
///
/// ```
/// use trigger_chat_wasm::proto::json::Json;
/// use trigger_chat_wasm::proto::wire::{Trigger, WirePayload};
///
/// let mut payload = WirePayload::new("chat-1", Trigger::RegenerateMessage);
/// payload.body = Json::parse(r#"{"temperature":0.2,"message":"stale"}"#).ok();
/// payload.message_id = Some("m-9".into());
/// assert_eq!(
///     payload.to_json().to_json_string(),
///     r#"{"temperature":0.2,"chatId":"chat-1","trigger":"regenerate-message","messageId":"m-9"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WirePayload {
    /// Extra fields from the caller; ignored unless an object.
    pub body: Option<Json>,
    /// The one new message (submit-message only), already slimmed.
    pub message: Option<Json>,
    /// The chat id.
    pub chat_id: String,
    /// What the agent should do.
    pub trigger: Trigger,
    /// The AI SDK's `messageId` (regenerate).
    pub message_id: Option<String>,
    /// The agent's `clientData`, see [`merge_metadata`].
    pub metadata: Option<Json>,
    /// The action (trigger `action`).
    pub action: Option<Json>,
}

impl WirePayload {
    /// A payload with only `chatId` and `trigger`.
    pub fn new(chat_id: &str, trigger: Trigger) -> WirePayload {
        WirePayload {
            body: None,
            message: None,
            chat_id: chat_id.to_owned(),
            trigger,
            message_id: None,
            metadata: None,
            action: None,
        }
    }

    /// The payload object.
    pub fn to_json(&self) -> Json {
        let mut members: Vec<(String, Json)> = match &self.body {
            Some(Json::Object(body)) => body
                .iter()
                .filter(|(key, _)| !TRANSPORT_KEYS.contains(&key.as_str()))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        if let Some(message) = &self.message {
            members.push(("message".to_owned(), message.clone()));
        }
        members.push(("chatId".to_owned(), Json::from(self.chat_id.as_str())));
        members.push(("trigger".to_owned(), Json::from(self.trigger.as_str())));
        if let Some(message_id) = &self.message_id {
            members.push(("messageId".to_owned(), Json::from(message_id.as_str())));
        }
        if let Some(metadata) = &self.metadata {
            members.push(("metadata".to_owned(), metadata.clone()));
        }
        if let Some(action) = &self.action {
            members.push(("action".to_owned(), action.clone()));
        }
        Json::Object(members)
    }

    /// The whole `.in/append` body: `{"kind":"message","payload":{…}}`.
    pub fn to_input_chunk(&self) -> InputChunk {
        InputChunk::Message(self.to_json())
    }
}

/// The `metadata` to send: the transport-wide `clientData` shallow-merged with the per-request
/// `metadata` (per-request keys win), like the JS `{...clientData, ...metadata}`.
///
/// Only objects take part: `null`, strings, arrays and other non-objects count as absent (the
/// JS spread turned a string into `{"0":…,"1":…}`, weakness W38). `None` when neither is an
/// object. An empty object still counts as present.
pub fn merge_metadata(client_data: Option<&Json>, metadata: Option<&Json>) -> Option<Json> {
    let client_data = client_data.and_then(Json::as_object);
    let metadata = metadata.and_then(Json::as_object);
    if client_data.is_none() && metadata.is_none() {
        return None;
    }
    let mut merged = Json::object();
    for (key, value) in client_data.into_iter().chain(metadata).flatten() {
        merged.set(key, value.clone());
    }
    Some(merged)
}

/// Tool-part states the client advances and ships back (HITL `addToolOutput` and approvals).
fn is_wire_advanceable_state(state: Option<&str>) -> bool {
    matches!(
        state,
        Some("output-available" | "output-error" | "approval-responded" | "output-denied")
    )
}

/// Slim an outgoing `submit-message` message, like the JS `slimSubmitMessageForWire`.
///
/// An assistant message with at least one tool part (`type` `tool-*` or `dynamic-tool`) in an
/// advanced state (`output-available`, `output-error`, `approval-responded`, `output-denied`)
/// becomes `{id, role, parts}` with only those parts, each cut to
/// `type, toolCallId, state, toolName (dynamic-tool only), output | errorText, approval`.
/// The agent overlays exactly these fields onto the message it rebuilt from its snapshot, so
/// text, reasoning and tool inputs (often hundreds of KiB) stay off the wire. Every other
/// message is returned unchanged. Absent fields stay absent; `null` ones are kept.
pub fn slim_message_for_wire(message: &Json) -> Json {
    if message.get("role").and_then(Json::as_str) != Some("assistant") {
        return message.clone();
    }
    let advanced: Vec<&Json> = message
        .get("parts")
        .and_then(Json::as_array)
        .unwrap_or_default()
        .iter()
        .filter(|part| {
            let is_tool = part
                .get("type")
                .and_then(Json::as_str)
                .is_some_and(|t| t.starts_with("tool-") || t == "dynamic-tool");
            is_tool && is_wire_advanceable_state(part.get("state").and_then(Json::as_str))
        })
        .collect();
    if advanced.is_empty() {
        return message.clone();
    }
    let slim_parts = advanced.into_iter().map(slim_tool_part).collect();
    let mut slim = Vec::with_capacity(3);
    if let Some(id) = message.get("id") {
        slim.push(("id".to_owned(), id.clone()));
    }
    slim.push(("role".to_owned(), Json::from("assistant")));
    slim.push(("parts".to_owned(), Json::Array(slim_parts)));
    Json::Object(slim)
}

fn slim_tool_part(part: &Json) -> Json {
    let mut slim = Json::object();
    let mut copy = |key: &str| {
        if let Some(value) = part.get(key) {
            slim.set(key, value.clone());
        }
    };
    copy("type");
    copy("toolCallId");
    copy("state");
    let part_type = part.get("type").and_then(Json::as_str);
    if part_type == Some("dynamic-tool") && part.get("toolName").and_then(Json::as_str).is_some() {
        copy("toolName");
    }
    match part.get("state").and_then(Json::as_str) {
        Some("output-available") => {
            copy("output");
            copy("approval");
        }
        Some("output-error") => {
            copy("errorText");
            copy("approval");
        }
        _ => copy("approval"),
    }
    slim
}

/// A 2xx `.in/append` answer: `{ "ok": true, "seq": <number>, "pendingVersion"?: true }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendResponse {
    /// The appended record's `.in` sequence number, to correlate the turn that answers it.
    /// `None` when missing or not a non-negative integer (older servers, lost idempotency claim).
    pub seq: Option<u64>,
    /// The run waits for a newer deployment (`run-pending-version` event).
    pub pending_version: bool,
}

impl AppendResponse {
    /// Parse leniently: any unreadable body is "no seq, not pending".
    pub fn parse(body_text: &str) -> AppendResponse {
        let Ok(json) = Json::parse(body_text) else {
            return AppendResponse::default();
        };
        AppendResponse {
            seq: json.get("seq").and_then(Json::as_u64),
            pending_version: json.get("pendingVersion").and_then(Json::as_bool) == Some(true),
        }
    }
}
