//! Per-chat state that survives a reload.
//!
//! Two shapes: the JS transport's `ChatSessionPersistedState` (what `sessions` and
//! `onSessionChange` exchange with the app, camelCase fields) and our own localStorage record,
//! which wraps that shape in a versioned envelope `{"v":1,"chatId":…,"session":{…}}` so a
//! record written by another version, or for another chat, is recognised instead of misread.

use super::error::Error;
use super::json::Json;
use super::url::encode_uri_component;
#[allow(unused_imports)]
use crate::prelude::*;

/// Version of the storage envelope this build writes and reads.
pub const STORAGE_VERSION: u64 = 1;

/// Default localStorage key prefix.
pub const DEFAULT_STORAGE_NAMESPACE: &str = "trigger-chat-wasm";

/// The state of one chat's session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistedSession {
    /// The session token for `.in` / `.out`.
    pub public_access_token: String,
    /// The `.out` resume cursor (S2 `seq_num` as a decimal string).
    pub last_event_id: Option<String>,
    /// The `.in` seq of the last send whose turn has not completed.
    pub active_input_seq: Option<u64>,
    /// Whether a turn was streaming when this was saved.
    pub is_streaming: Option<bool>,
    /// The session is closed for good.
    pub closed: bool,
    /// Why it was closed.
    pub closed_reason: Option<String>,
    /// The highest `.in` seq the agent is known to have consumed (from turn boundaries). Not in
    /// the JS transport's state; it lets the next send know whether an earlier turn may still
    /// be writing.
    pub consumed_input_seq: Option<u64>,
    /// A send whose append the server had not acknowledged (the outbox of one): a later page
    /// sends it again, with the same part id, from `reconnectToStream`. Not in the JS
    /// transport's state.
    pub pending_send: Option<PendingSend>,
}

/// A send saved until the server acknowledges it (`pendingSend`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingSend {
    /// Its `X-Part-Id` (the server's idempotency key).
    pub part_id: String,
    /// The append body, as JSON text.
    pub body: String,
    /// `submit-message`, `regenerate-message` or `action`.
    pub source: String,
    /// The AI SDK's `messageId`, when it had one.
    pub message_id: Option<String>,
    /// When the send was made (ms since the epoch).
    pub created_ms: u64,
    /// When its first attempt that may have reached the server started, if any: no attempt
    /// goes out later than the retry window after it (the server's claim on the part id).
    pub reachable_since_ms: Option<u64>,
    /// The `.out` seq its turn starts after (`None`: the session's start; saved as `null`). A
    /// later page reads its turn from here, even once a transcript's cursor was seeded past its
    /// answer. A state saved without the field starts at its `lastEventId`.
    pub turn_start: Option<u64>,
    /// The highest `.in` seq known consumed when it was made (`consumed`): a later page that
    /// reads its turn from `turn_start` holds what comes before its reply from there, not from
    /// what the chat learned since.
    pub consumed: Option<u64>,
}

impl PendingSend {
    fn to_json(&self) -> Json {
        let mut members = vec![
            ("partId".to_owned(), Json::from(self.part_id.as_str())),
            ("body".to_owned(), Json::from(self.body.as_str())),
            ("source".to_owned(), Json::from(self.source.as_str())),
        ];
        if let Some(id) = &self.message_id {
            members.push(("messageId".to_owned(), Json::from(id.as_str())));
        }
        members.push(("createdAt".to_owned(), Json::from(self.created_ms)));
        if let Some(ms) = self.reachable_since_ms {
            members.push(("reachableSince".to_owned(), Json::from(ms)));
        }
        let start = self.turn_start.map_or(Json::Null, Json::from);
        members.push(("turnStart".to_owned(), start));
        if let Some(seq) = self.consumed {
            members.push(("consumed".to_owned(), Json::from(seq)));
        }
        Json::Object(members)
    }

    /// Reads one back; anything unusable reads as none (it is never worth failing the session).
    /// `cursor`: the state's `lastEventId`, where one saved without `turnStart` starts.
    fn from_json(value: &Json, cursor: Option<u64>) -> Option<PendingSend> {
        let text = |key: &str| value.get(key).and_then(Json::as_str).map(str::to_owned);
        let source = text("source")?;
        if !matches!(
            source.as_str(),
            "submit-message" | "regenerate-message" | "action"
        ) {
            return None;
        }
        let created_ms = value.get("createdAt").and_then(seq_of)?;
        Some(PendingSend {
            part_id: text("partId").filter(|p| !p.is_empty())?,
            body: text("body").filter(|b| Json::parse(b).is_ok())?,
            source,
            message_id: text("messageId"),
            created_ms,
            // Unreadable, read the safe way: it may have reached the server since it was made
            // (its retry window runs), and its turn is read from the session's start (from the
            // cursor, a reply the cursor was seeded past would never be seen to end).
            reachable_since_ms: match value.get("reachableSince") {
                None | Some(Json::Null) => None,
                Some(since) => Some(seq_of(since).unwrap_or(created_ms)),
            },
            turn_start: match value.get("turnStart") {
                Some(start) => seq_of(start),
                None => cursor,
            },
            consumed: value.get("consumed").and_then(seq_of),
        })
    }
}

impl PersistedSession {
    /// A fresh session holding only its token.
    pub fn new(public_access_token: &str) -> PersistedSession {
        PersistedSession {
            public_access_token: public_access_token.to_owned(),
            ..PersistedSession::default()
        }
    }

    /// The JS `ChatSessionPersistedState` object: `publicAccessToken`, then `lastEventId`,
    /// `activeInputSeq`, `isStreaming`, `closed` (only when true) and `closedReason`, each left
    /// out when unset — what `JSON.stringify` makes of the JS transport's `toPersisted`.
    ///
    /// ```
    /// use trigger_chat_wasm::proto::session::PersistedSession;
    /// let mut session = PersistedSession::new("tok");
    /// session.last_event_id = Some("41".into());
    /// session.is_streaming = Some(false);
    /// assert_eq!(
    ///     session.to_js_shape_json().to_json_string(),
    ///     r#"{"publicAccessToken":"tok","lastEventId":"41","isStreaming":false}"#
    /// );
    /// ```
    pub fn to_js_shape_json(&self) -> Json {
        let mut members = vec![(
            "publicAccessToken".to_owned(),
            Json::from(self.public_access_token.as_str()),
        )];
        if let Some(last_event_id) = &self.last_event_id {
            members.push(("lastEventId".to_owned(), Json::from(last_event_id.as_str())));
        }
        if let Some(seq) = self.active_input_seq {
            members.push(("activeInputSeq".to_owned(), Json::from(seq)));
        }
        if let Some(is_streaming) = self.is_streaming {
            members.push(("isStreaming".to_owned(), Json::from(is_streaming)));
        }
        if self.closed {
            members.push(("closed".to_owned(), Json::from(true)));
        }
        if let Some(reason) = &self.closed_reason {
            members.push(("closedReason".to_owned(), Json::from(reason.as_str())));
        }
        if let Some(seq) = self.consumed_input_seq {
            members.push(("consumedInputSeq".to_owned(), Json::from(seq)));
        }
        if let Some(pending) = &self.pending_send {
            members.push(("pendingSend".to_owned(), pending.to_json()));
        }
        Json::Object(members)
    }

    /// Read a `ChatSessionPersistedState` object, tolerantly: apps hand these in from their
    /// own databases.
    ///
    /// Only a missing, non-string or unsendable (empty, or not visible ASCII) `publicAccessToken` is an error
    /// ([`Error::Storage`]): without it the session is unusable. Unknown fields are ignored, and
    /// so is any other field of the wrong type (it reads as unset). Accepted alternates:
    /// `lastEventId` as a number, `activeInputSeq` as a decimal string.
    pub fn from_json(value: &Json) -> Result<PersistedSession, Error> {
        if value.as_object().is_none() {
            return Err(Error::storage("persisted session is not an object"));
        }
        let public_access_token = value
            .get("publicAccessToken")
            .and_then(Json::as_str)
            // (One `fetch` cannot send, a line break in it say, would fail every request as a
            // network failure, and no 401 would ever ask for a new one.)
            .filter(|token| crate::proto::headers::is_bearer_token(token))
            .ok_or_else(|| Error::storage("persisted session has no usable publicAccessToken"))?;
        let last_event_id = match value.get("lastEventId") {
            Some(Json::String(id)) => Some(id.clone()),
            Some(number @ Json::Number(_)) => number.as_u64().map(crate::proto::json::u64_string),
            _ => None,
        };
        let active_input_seq = value.get("activeInputSeq").and_then(seq_of);
        Ok(PersistedSession {
            public_access_token: public_access_token.to_owned(),
            active_input_seq,
            is_streaming: value.get("isStreaming").and_then(Json::as_bool),
            closed: value.get("closed").and_then(Json::as_bool) == Some(true),
            closed_reason: value
                .get("closedReason")
                .and_then(Json::as_str)
                .map(str::to_owned),
            consumed_input_seq: value.get("consumedInputSeq").and_then(seq_of),
            pending_send: value.get("pendingSend").and_then(|send| {
                let cursor = last_event_id
                    .as_deref()
                    .and_then(|id| id.trim().parse().ok());
                PendingSend::from_json(send, cursor)
            }),
            last_event_id,
        })
    }

    /// The localStorage record: `{"v":1,"chatId":"…","session":{…JS shape…}}`.
    pub fn encode_for_storage(&self, chat_id: &str) -> String {
        Json::Object(vec![
            ("v".to_owned(), Json::from(STORAGE_VERSION)),
            ("chatId".to_owned(), Json::from(chat_id)),
            ("session".to_owned(), self.to_js_shape_json()),
        ])
        .to_json_string()
    }

    /// Read a localStorage record written by [`Self::encode_for_storage`] for `chat_id`.
    /// Corrupt JSON, another version, another chat, or an unusable session is
    /// [`Error::Storage`]; the caller drops the record and starts over.
    pub fn decode_from_storage(raw: &str, chat_id: &str) -> Result<PersistedSession, Error> {
        let record =
            Json::parse(raw).map_err(|_| Error::storage("stored session is not valid JSON"))?;
        match record.get("v").and_then(Json::as_u64) {
            Some(STORAGE_VERSION) => {}
            Some(version) => {
                let mut message = String::from("stored session has version ");
                crate::proto::json::push_u64(&mut message, version);
                message.push_str(", expected 1");
                return Err(Error::storage(message));
            }
            None => return Err(Error::storage("stored session has no version")),
        }
        if record.get("chatId").and_then(Json::as_str) != Some(chat_id) {
            return Err(Error::storage("stored session belongs to another chat"));
        }
        let session = record
            .get("session")
            .ok_or_else(|| Error::storage("stored record has no session"))?;
        PersistedSession::from_json(session)
    }
}

/// The localStorage key for a chat: `<namespace>:v1:<encodeURIComponent(chatId)>`.
/// Encoding keeps a `:` in a chat id from colliding with another namespace's keys.
///
/// ```
/// use trigger_chat_wasm::proto::session::{storage_key, DEFAULT_STORAGE_NAMESPACE};
/// assert_eq!(storage_key(DEFAULT_STORAGE_NAMESPACE, "a:b"), "trigger-chat-wasm:v1:a%3Ab");
/// ```
pub fn storage_key(namespace: &str, chat_id: &str) -> String {
    let mut key = String::from(namespace);
    key.push_str(":v");
    crate::proto::json::push_u64(&mut key, STORAGE_VERSION);
    key.push(':');
    key.push_str(&encode_uri_component(chat_id));
    key
}

/// A seq (or a time) as a number or a decimal string (an app's store may keep either).
fn seq_of(value: &Json) -> Option<u64> {
    match value {
        Json::String(seq) if seq.bytes().all(|b| b.is_ascii_digit()) => seq.parse().ok(),
        other => other.as_u64(),
    }
}
