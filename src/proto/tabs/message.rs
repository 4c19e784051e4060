//! The messages on the tab channel, read strictly and written in the JS coordinator's shape.

use super::{MAX_ID_CHARS, MAX_MESSAGES_JSON_BYTES, PROTOCOL_VERSION};
#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::json::Json;
use crate::proto::Error;

/// Largest integer a JS number holds exactly; `at` and `version` above it are rejected.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Room for the envelope around a `messages` array in [`Message::parse_text`].
const ENVELOPE_BYTES: usize = 4 * MAX_ID_CHARS + 1024;

/// The body of a `claim` or `heartbeat`: this tab owns `chat_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The chat.
    pub chat_id: String,
    /// The owning tab.
    pub tab_id: String,
    /// When the claim was made (`Date.now()` ms). Absent from JS tabs, which then rank by
    /// arrival.
    pub at: Option<u64>,
    /// The owner also holds the chat's writer Web Lock (absent: `false`).
    pub lock: bool,
}

/// One message on the tab channel.
///
/// JS shapes, plus our fields (`v`, `at`, `lock`, `version`) and the `who` type, which JS tabs
/// ignore:
///
/// | variant | JSON |
/// |---|---|
/// | `Claim` | `{type:"claim", chatId, tabId, at?, lock?, v}` |
/// | `Heartbeat` | `{type:"heartbeat", chatId, tabId, at?, lock?, v}` |
/// | `Release` | `{type:"release", chatId, tabId, at?, v}` |
/// | `Who` | `{type:"who", tabId, chatId?, v}`: owners answer with a heartbeat per chat |
/// | `Messages` | `{type:"messages", chatId, tabId, messages:[…], version?, v}` |
/// | `Session` | `{type:"session", chatId, tabId, session:{lastEventId?}, version?, v}` |
/// | `Removed` | `{type:"removed", chatId, tabId, v}`: the chat's state was removed |
///
/// ```
/// use trigger_chat_wasm::proto::tabs::{Claim, Message};
///
/// let text = r#"{"type":"claim","chatId":"c1","tabId":"js-tab"}"#; // from a JS tab
/// let msg = Message::parse_text(text).unwrap();
/// let claim = Claim { chat_id: "c1".into(), tab_id: "js-tab".into(), at: None, lock: false };
/// assert_eq!(msg, Message::Claim(claim));
/// assert_eq!(
///     msg.into_json_text(),
///     r#"{"type":"claim","chatId":"c1","tabId":"js-tab","lock":false,"v":1}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A tab takes a chat.
    Claim(Claim),
    /// An owner is still alive (and, from us, answers `who`).
    Heartbeat(Claim),
    /// A tab gives a chat back.
    Release {
        /// The chat.
        chat_id: String,
        /// The releasing tab.
        tab_id: String,
        /// The `at` of the claim being released (absent from JS tabs).
        at: Option<u64>,
    },
    /// A tab joined: owners, answer with a heartbeat (for `chat_id` only, when given).
    Who {
        /// The asking tab.
        tab_id: String,
        /// Only this chat, or all.
        chat_id: Option<String>,
    },
    /// The owner's copy of the conversation.
    Messages {
        /// The chat.
        chat_id: String,
        /// The sending tab.
        tab_id: String,
        /// The UI messages, a JSON array, untouched.
        messages: Json,
        /// Monotonic per chat; absent from JS tabs.
        version: Option<u64>,
    },
    /// The owner's `.out` cursor after a turn.
    Session {
        /// The chat.
        chat_id: String,
        /// The sending tab.
        tab_id: String,
        /// The resume cursor (`Last-Event-ID`), if the sender had one.
        last_event_id: Option<String>,
        /// The highest `.in` seq the agent had consumed at that point (`session.consumedInputSeq`;
        /// absent from JS tabs).
        consumed_input_seq: Option<u64>,
        /// Monotonic per chat; absent from JS tabs.
        version: Option<u64>,
    },
    /// A tab removed the chat's state (`removeSession`): the others forget theirs.
    Removed {
        /// The chat.
        chat_id: String,
        /// The sending tab.
        tab_id: String,
    },
}

impl Message {
    /// Read a message from its JSON text (`JSON.stringify(event.data)`), refusing oversized
    /// text before parsing it. See [`Message::parse`].
    pub fn parse_text(text: &str) -> Result<Message, Error> {
        if text.len() > MAX_MESSAGES_JSON_BYTES + ENVELOPE_BYTES {
            return Err(Error::protocol("tab message too large"));
        }
        Message::from_json(Json::parse(text)?)
    }

    /// [`Message::from_json`] on a borrowed value (copies a `messages` array).
    pub fn parse(value: &Json) -> Result<Message, Error> {
        Message::from_json(value.clone())
    }

    /// Read a message. Strict: a known `type`; `chatId` / `tabId` non-empty strings of at most
    /// [`MAX_ID_CHARS`]; `at`, `version`, `v` non-negative integers a JS number holds exactly;
    /// `lock` a boolean; `messages` an array of at most [`MAX_MESSAGES_JSON_BYTES`];
    /// `session` an object whose `lastEventId` is a string. Unknown fields are ignored; `null`
    /// counts as absent. Anything else is [`Error::Protocol`]. A `messages` array is moved,
    /// not copied.
    pub fn from_json(mut value: Json) -> Result<Message, Error> {
        let value = &mut value;
        let kind = value
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::protocol("tab message without a type"))?;
        let tab_id = id(value, "tabId")?;
        number(value, "v")?;
        let message = match kind {
            "claim" | "heartbeat" => {
                let claim = Claim {
                    chat_id: id(value, "chatId")?,
                    tab_id,
                    at: number(value, "at")?,
                    lock: match present(value, "lock") {
                        None => false,
                        Some(Json::Bool(lock)) => *lock,
                        Some(_) => return Err(Error::protocol("tab message with a bad lock")),
                    },
                };
                if kind == "claim" {
                    Message::Claim(claim)
                } else {
                    Message::Heartbeat(claim)
                }
            }
            "release" => Message::Release {
                chat_id: id(value, "chatId")?,
                tab_id,
                at: number(value, "at")?,
            },
            "who" => Message::Who {
                tab_id,
                chat_id: match present(value, "chatId") {
                    None => None,
                    Some(_) => Some(id(value, "chatId")?),
                },
            },
            "messages" => {
                let chat_id = id(value, "chatId")?;
                let version = number(value, "version")?;
                let messages = value
                    .remove("messages")
                    .ok_or_else(|| Error::protocol("tab messages without messages"))?;
                check_messages(&messages)?;
                // Each one a UI message (a string `id` and `role`, an array of `parts`): an app
                // renders what it is handed, and `m.parts.map` throws on `null`.
                if let Json::Array(list) = &messages {
                    for m in list {
                        if m.get("id").and_then(Json::as_str).is_none()
                            || m.get("role").and_then(Json::as_str).is_none()
                            || !matches!(m.get("parts"), Some(Json::Array(_)))
                        {
                            return Err(Error::protocol("tab message not a UI message"));
                        }
                    }
                }
                Message::Messages {
                    chat_id,
                    tab_id,
                    messages,
                    version,
                }
            }
            "session" => {
                let chat_id = id(value, "chatId")?;
                let session = match value.get("session") {
                    Some(session @ Json::Object(_)) => session,
                    _ => return Err(Error::protocol("tab session without a session object")),
                };
                let last_event_id = match present(session, "lastEventId") {
                    None => None,
                    Some(Json::String(text)) if text.is_empty() => None,
                    Some(Json::String(text)) if fits_id(text) => Some(text.clone()),
                    Some(_) => return Err(Error::protocol("tab session with a bad lastEventId")),
                };
                Message::Session {
                    chat_id,
                    tab_id,
                    last_event_id,
                    consumed_input_seq: session
                        .get("consumedInputSeq")
                        .and_then(Json::as_u64)
                        .filter(|n| *n <= MAX_SAFE_INTEGER),
                    version: number(value, "version")?,
                }
            }
            "removed" => Message::Removed {
                chat_id: id(value, "chatId")?,
                tab_id,
            },
            _ => return Err(Error::protocol("unknown tab message type")),
        };
        Ok(message)
    }

    /// The sending tab.
    pub fn tab_id(&self) -> &str {
        match self {
            Message::Claim(claim) | Message::Heartbeat(claim) => &claim.tab_id,
            Message::Release { tab_id, .. }
            | Message::Who { tab_id, .. }
            | Message::Messages { tab_id, .. }
            | Message::Session { tab_id, .. }
            | Message::Removed { tab_id, .. } => tab_id,
        }
    }

    /// The chat it is about (`None` for a `who` about every chat).
    pub fn chat_id(&self) -> Option<&str> {
        match self {
            Message::Claim(claim) | Message::Heartbeat(claim) => Some(&claim.chat_id),
            Message::Who { chat_id, .. } => chat_id.as_deref(),
            Message::Release { chat_id, .. }
            | Message::Messages { chat_id, .. }
            | Message::Session { chat_id, .. }
            | Message::Removed { chat_id, .. } => Some(chat_id),
        }
    }

    /// The JSON object to post (consumes the message, so a large `messages` array is moved,
    /// not copied).
    pub fn into_json(self) -> Json {
        let kind = match &self {
            Message::Claim(_) => "claim",
            Message::Heartbeat(_) => "heartbeat",
            Message::Release { .. } => "release",
            Message::Who { .. } => "who",
            Message::Messages { .. } => "messages",
            Message::Session { .. } => "session",
            Message::Removed { .. } => "removed",
        };
        let mut fields: Vec<(String, Json)> = Vec::with_capacity(7);
        let mut put = |key: &str, value: Json| fields.push((key.to_owned(), value));
        put("type", kind.into());
        match self {
            Message::Claim(claim) | Message::Heartbeat(claim) => {
                put("chatId", claim.chat_id.into());
                put("tabId", claim.tab_id.into());
                if let Some(at) = claim.at {
                    put("at", at.into());
                }
                put("lock", claim.lock.into());
            }
            Message::Release {
                chat_id,
                tab_id,
                at,
            } => {
                put("chatId", chat_id.into());
                put("tabId", tab_id.into());
                if let Some(at) = at {
                    put("at", at.into());
                }
            }
            Message::Removed { chat_id, tab_id } => {
                put("chatId", chat_id.into());
                put("tabId", tab_id.into());
            }
            Message::Who { tab_id, chat_id } => {
                put("tabId", tab_id.into());
                if let Some(chat_id) = chat_id {
                    put("chatId", chat_id.into());
                }
            }
            Message::Messages {
                chat_id,
                tab_id,
                messages,
                version,
            } => {
                put("chatId", chat_id.into());
                put("tabId", tab_id.into());
                put("messages", messages);
                if let Some(version) = version {
                    put("version", version.into());
                }
            }
            Message::Session {
                chat_id,
                tab_id,
                last_event_id,
                consumed_input_seq,
                version,
            } => {
                put("chatId", chat_id.into());
                put("tabId", tab_id.into());
                let mut session = Json::object();
                if let Some(last_event_id) = last_event_id {
                    session.set("lastEventId", last_event_id.into());
                }
                if let Some(seq) = consumed_input_seq {
                    session.set("consumedInputSeq", seq.into());
                }
                put("session", session);
                if let Some(version) = version {
                    put("version", version.into());
                }
            }
        }
        put("v", PROTOCOL_VERSION.into());
        Json::Object(fields)
    }

    /// The compact JSON text of [`Message::into_json`].
    pub fn into_json_text(self) -> String {
        self.into_json().to_json_string()
    }
}

/// `messages` must be an array of bounded size; shared with
/// [`TabCoordinator::broadcast_messages`](super::TabCoordinator::broadcast_messages).
pub(super) fn check_messages(messages: &Json) -> Result<(), Error> {
    if !matches!(messages, Json::Array(_)) {
        return Err(Error::protocol("tab messages is not an array"));
    }
    let mut budget = MAX_MESSAGES_JSON_BYTES;
    if !fits_json(messages, &mut budget) {
        return Err(Error::protocol("tab messages too large"));
    }
    Ok(())
}

/// Whether `id` is usable as a chat id, tab id or cursor.
pub(crate) fn fits_id(id: &str) -> bool {
    !id.is_empty()
        && (id.len() <= MAX_ID_CHARS
            || (id.len() <= 4 * MAX_ID_CHARS && char_count(id) <= MAX_ID_CHARS))
}

/// `text.chars().count()` as a plain loop: the count of bytes that start a character. (The std
/// version is a 900-byte vectorised routine, wasted on ids of at most a few hundred bytes.)
fn char_count(text: &str) -> usize {
    text.bytes().filter(|&b| b & 0xc0 != 0x80).count()
}

/// The member `key`, with `null` counted as absent.
fn present<'a>(value: &'a Json, key: &str) -> Option<&'a Json> {
    value.get(key).filter(|member| !member.is_null())
}

fn id(value: &Json, key: &str) -> Result<String, Error> {
    match value.get(key) {
        Some(Json::String(text)) if fits_id(text) => Ok(text.clone()),
        _ => Err(Error::protocol("tab message with a missing or bad id")),
    }
}

fn number(value: &Json, key: &str) -> Result<Option<u64>, Error> {
    match present(value, key) {
        None => Ok(None),
        Some(member) => match member.as_u64() {
            Some(n) if n <= MAX_SAFE_INTEGER => Ok(Some(n)),
            _ => Err(Error::protocol("tab message with a bad number")),
        },
    }
}

/// Subtract roughly the JSON text length of `value` from `budget`; `false` once it runs out.
fn fits_json(value: &Json, budget: &mut usize) -> bool {
    let own = match value {
        Json::Null | Json::Bool(_) => 5,
        Json::Number(text) | Json::String(text) => text.len() + 2,
        Json::Array(items) => items.len() + 1,
        Json::Object(members) => members.len() * 4 + 1,
    };
    let Some(left) = budget.checked_sub(own) else {
        return false;
    };
    *budget = left;
    match value {
        Json::Array(items) => items.iter().all(|item| fits_json(item, budget)),
        Json::Object(members) => members.iter().all(|(key, member)| {
            budget
                .checked_sub(key.len())
                .map(|left| *budget = left)
                .is_some()
                && fits_json(member, budget)
        }),
        _ => true,
    }
}
