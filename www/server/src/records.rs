//! Records on `session.out`, shaped exactly like real Trigger.dev's (client-protocol.mdx "Records
//! on session.out"):
//!
//! | kind    | headers                                    | body                              |
//! |---------|--------------------------------------------|-----------------------------------|
//! | data    | `[]`                                       | `{"data": <UIMessageChunk>, "id": <partId>}` as a JSON string |
//! | control | `[["trigger-control", <subtype>], ...]`    | `""`                              |
//! | command | `[["", "trim"]]`                           | opaque (base64 of the 8-byte seq) |

use base64::Engine;
use bytes::Bytes;

/// Header carrying the control subtype.
pub const TRIGGER_CONTROL: &str = "trigger-control";
/// Refreshed token on `turn-complete`.
pub const PUBLIC_ACCESS_TOKEN: &str = "public-access-token";
/// Highest `.in` seq the turn committed to (absent on the basePayload-started first turn).
pub const SESSION_IN_EVENT_ID: &str = "session-in-event-id";
/// `"true"` on a `session-closed` record or a `turn-complete` that closes the session.
pub const SESSION_CLOSED: &str = "session-closed";
/// Optional close reason next to [`SESSION_CLOSED`].
pub const SESSION_CLOSED_REASON: &str = "session-closed-reason";

/// What a record is, for the settled peek and the admin state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    Data,
    Control(String),
    Command,
}

impl RecordKind {
    pub fn is_turn_complete(&self) -> bool {
        matches!(self, RecordKind::Control(s) if s == "turn-complete")
    }
}

/// A record before the log gives it a `seq_num` and a timestamp.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub kind: RecordKind,
    pub headers: Vec<(String, String)>,
    /// The record body as a JSON string literal (quoted and escaped), ready for the wire.
    pub body_literal: String,
}

impl NewRecord {
    /// A data record; `chunk_json` must be one serialized `UIMessageChunk`.
    pub fn data(chunk_json: &str, part_id: &str) -> NewRecord {
        let id = serde_json::to_string(part_id).unwrap_or_else(|_| "\"\"".into());
        let body = format!("{{\"data\":{chunk_json},\"id\":{id}}}");
        NewRecord {
            kind: RecordKind::Data,
            headers: Vec::new(),
            body_literal: serde_json::to_string(&body).unwrap_or_else(|_| "\"\"".into()),
        }
    }

    /// Whether `s` needs no JSON escaping, even inside a JSON string inside a JSON string
    /// (ASCII letters, digits, space, `-`, `_`).
    pub fn is_plain(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" -_".contains(&b))
    }

    /// A `text-delta` data record built without a JSON serializer (the `stream N` hot path).
    /// The caller guarantees [`NewRecord::is_plain`] for all three strings (otherwise the JSON
    /// would be invalid).
    pub fn plain_text_delta(text_id: &str, delta: &str, part_id: &str) -> NewRecord {
        NewRecord {
            kind: RecordKind::Data,
            headers: Vec::new(),
            body_literal: format!(
                "\"{{\\\"data\\\":{{\\\"type\\\":\\\"text-delta\\\",\\\"id\\\":\\\"{text_id}\\\",\\\"delta\\\":\\\"{delta}\\\"}},\\\"id\\\":\\\"{part_id}\\\"}}\""
            ),
        }
    }

    /// A Trigger control record (`turn-complete`, `upgrade-required`, `session-closed`, …).
    pub fn control(subtype: &str, extra: Vec<(String, String)>) -> NewRecord {
        let mut headers = vec![(TRIGGER_CONTROL.to_string(), subtype.to_string())];
        headers.extend(extra);
        NewRecord {
            kind: RecordKind::Control(subtype.to_string()),
            headers,
            body_literal: "\"\"".to_string(),
        }
    }

    /// The S2 `trim` command record: everything before `trim_to_seq` goes.
    pub fn trim(trim_to_seq: u64) -> NewRecord {
        NewRecord {
            kind: RecordKind::Command,
            headers: vec![(String::new(), "trim".to_string())],
            body_literal: format!(
                "\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(trim_to_seq.to_be_bytes())
            ),
        }
    }

    /// The record as it appears inside a batch's `records` array.
    pub fn to_json(&self, seq_num: u64, timestamp: u64) -> Bytes {
        let headers = serde_json::to_string(&self.headers).unwrap_or_else(|_| "[]".to_string());
        let body = &self.body_literal;
        Bytes::from(format!(
            "{{\"seq_num\":{seq_num},\"timestamp\":{timestamp},\"headers\":{headers},\"body\":{body}}}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_record_wraps_the_chunk_in_a_json_string() {
        let r = NewRecord::data(r#"{"type":"text-delta","id":"t","delta":"hi"}"#, "p1");
        let json: serde_json::Value = serde_json::from_slice(&r.to_json(7, 99)).unwrap();
        assert_eq!(json["seq_num"], 7);
        assert_eq!(json["headers"], serde_json::json!([]));
        let body: serde_json::Value = serde_json::from_str(json["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["id"], "p1");
        assert_eq!(body["data"]["delta"], "hi");
    }

    #[test]
    fn the_fast_text_delta_matches_the_general_path() {
        let general = NewRecord::data(
            r#"{"type":"text-delta","id":"txt_1","delta":"42 "}"#,
            "run_x-1-7",
        );
        let fast = NewRecord::plain_text_delta("txt_1", "42 ", "run_x-1-7");
        assert_eq!(fast.to_json(1, 2), general.to_json(1, 2));
        assert!(!NewRecord::is_plain("a\"b"));
    }

    #[test]
    fn trim_is_a_command_record() {
        let json: serde_json::Value =
            serde_json::from_slice(&NewRecord::trim(10).to_json(12, 0)).unwrap();
        assert_eq!(json["headers"], serde_json::json!([["", "trim"]]));
        assert_eq!(json["body"], "AAAAAAAAAAo=");
    }
}
