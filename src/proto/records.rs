//! Trigger.dev's S2 events on `session.out`, decoded from SSE events.
//!
//! client-protocol.mdx "Stream format (S2)": four event types arrive — `batch` (records),
//! `ping` (keepalive with an optional `tail`), `error` (plain-text reason; the connection then
//! closes without `[DONE]`) and a bare `data: [DONE]` before EOF. "Records on session.out":
//! records are told apart by `headers` — an S2 command record has an empty first header name,
//! a Trigger control record has a `trigger-control` header, anything else is a data record
//! whose body is the JSON text `{"data": UIMessageChunk, "id": partId}`.
//!
//! Data bodies stay JSON text: the web layer hands them to the browser's `JSON.parse`.

use super::error::Error;
use super::headers::is_bearer_token;
use super::json::Json;
use super::sse::SseEvent;
#[allow(unused_imports)]
use crate::prelude::*;

/// Header carrying the control subtype on control records.
pub const TRIGGER_CONTROL_HEADER: &str = "trigger-control";
/// Header carrying a refreshed session token on `turn-complete`.
pub const PUBLIC_ACCESS_TOKEN_HEADER: &str = "public-access-token";
/// Header carrying the agent's committed `.in` cursor on `turn-complete` (decimal).
pub const SESSION_IN_EVENT_ID_HEADER: &str = "session-in-event-id";
/// Header marking the session closed (`"true"`), on `session-closed` and on `turn-complete`.
pub const SESSION_CLOSED_HEADER: &str = "session-closed";
/// Header carrying the reason a session was closed.
pub const SESSION_CLOSED_REASON_HEADER: &str = "session-closed-reason";

/// What one SSE event on `.out` means.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// `event: batch`: records.
    Batch(Batch),
    /// `event: ping`: keepalive. Unreadable ping data gives `None`s, not an error: a ping
    /// carries nothing the client must have.
    Ping {
        /// The server's clock at the ping, Unix ms.
        timestamp: Option<u64>,
        /// The live edge of the stream, on backends that report it.
        tail: Option<Tail>,
    },
    /// `event: error`: the read failed server-side; the text is the reason. Resume from the
    /// cursor like after a dropped connection.
    Error(String),
    /// `data: [DONE]` (under any event name): the server is closing the stream.
    Done,
    /// Any other event: ignored.
    Other,
}

/// The records of one `batch` event.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Records in arrival order.
    pub records: Vec<Record>,
    /// The live edge of the stream, when reported.
    pub tail: Option<Tail>,
}

impl Batch {
    /// The highest `seq_num` in the batch. Every record advances the resume cursor, including
    /// command records and skipped ones (see [`RecordKind::advances_cursor`]).
    pub fn max_seq(&self) -> Option<u64> {
        self.records.iter().map(|record| record.seq_num).max()
    }
}

/// S2's tail: the next `seq_num` to be written. Caught up when `highest seq_num + 1 == seq_num`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    /// The tail's sequence number.
    pub seq_num: u64,
    /// Its timestamp, Unix ms (0 when the server omitted it).
    pub timestamp: u64,
}

/// One record of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// S2's per-session sequence number: the `Last-Event-ID` to resume after this record.
    pub seq_num: u64,
    /// When S2 stored the record, Unix ms (0 when the server omitted it).
    pub timestamp: u64,
    /// What the record is.
    pub kind: RecordKind,
}

/// The three record kinds, plus legacy chunks to drop.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordKind {
    /// A data record: `body` is the JSON text `{"data": UIMessageChunk, "id": partId}`.
    Data {
        /// The record body, unparsed.
        body: String,
    },
    /// A Trigger control record (or its legacy data-record form).
    Control(Control),
    /// An S2 command record (first header name `""`), e.g. `trim`: advances the cursor only.
    Command {
        /// The command, from the first header's value.
        op: String,
    },
    /// Nothing to deliver: a legacy `trigger:*` chunk other than turn-complete and
    /// upgrade-required, or a data record with an empty body (the JS client drops a
    /// `null` chunk the same way).
    Skip,
}

impl RecordKind {
    /// Whether this record moves the resume cursor: always. client-protocol.mdx: "Always
    /// advance the resume cursor — even for records you skip", so a reconnect with
    /// `Last-Event-ID` lands past command records and dropped chunks instead of replaying them.
    pub fn advances_cursor(&self) -> bool {
        true
    }
}

/// A control record's meaning and its sibling headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    /// The `trigger-control` subtype.
    pub kind: ControlKind,
    /// A refreshed session token (`public-access-token`; legacy: `data.publicAccessToken`).
    /// An empty value counts as absent, as in the JS client.
    pub public_access_token: Option<String>,
    /// `session-in-event-id` when it is a plain decimal that fits a u64. `None` when absent or
    /// anything else: correlation then accepts the boundary (a first turn has no header).
    pub session_in_event_id: Option<u64>,
    /// `session-in-event-id` as sent.
    pub session_in_event_id_raw: Option<String>,
    /// `session-closed: true`: the session was closed during this turn.
    pub session_closed: bool,
    /// `session-closed-reason`.
    pub closed_reason: Option<String>,
    /// Decoded from a legacy `trigger:*` data record rather than headers.
    pub legacy: bool,
}

/// `trigger-control` subtypes (wireProtocol.js `TRIGGER_CONTROL_SUBTYPE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlKind {
    /// The agent finished a turn.
    TurnComplete,
    /// The run was swapped for a newer version; later records come from the new run.
    UpgradeRequired,
    /// The session was closed.
    SessionClosed,
    /// The run waits for a deployment of a newer version.
    PendingVersion,
    /// A subtype this client does not know.
    Unknown(String),
}

impl ControlKind {
    fn from_header(value: &str) -> ControlKind {
        match value {
            "turn-complete" => ControlKind::TurnComplete,
            "upgrade-required" => ControlKind::UpgradeRequired,
            "session-closed" => ControlKind::SessionClosed,
            "pending-version" => ControlKind::PendingVersion,
            other => ControlKind::Unknown(other.to_owned()),
        }
    }
}

/// Decode one SSE event from `.out`.
///
/// ```
/// use trigger_chat_wasm::proto::records::{decode_event, RecordKind, StreamEvent};
/// use trigger_chat_wasm::proto::sse::SseEvent;
///
/// let event = SseEvent {
///     event: "batch".into(),
///     data: r#"{"records":[{"seq_num":7,"timestamp":1,"body":"","headers":[["","trim"]]}]}"#.into(),
///     id: "7,8,0".into(),
///     retry_ms: None,
/// };
/// let StreamEvent::Batch(batch) = decode_event(&event).unwrap() else { panic!() };
/// assert_eq!(batch.records[0].kind, RecordKind::Command { op: "trim".into() });
/// assert_eq!(batch.max_seq(), Some(7));
/// ```
pub fn decode_event(event: &SseEvent) -> Result<StreamEvent, Error> {
    if event.data == "[DONE]" {
        return Ok(StreamEvent::Done);
    }
    match event.event.as_str() {
        "batch" => decode_batch(&event.data).map(StreamEvent::Batch),
        "ping" => Ok(decode_ping(&event.data)),
        "error" => Ok(StreamEvent::Error(event.data.clone())),
        _ => Ok(StreamEvent::Other),
    }
}

/// Decode the data of a `batch` event. Bad JSON, a missing `records` array, or a record
/// without an integer `seq_num` fails the whole batch with [`Error::Protocol`]: without the
/// cursor the client could not resume past it. A malformed `tail` is dropped.
pub fn decode_batch(data: &str) -> Result<Batch, Error> {
    let mut root = Json::parse(data)?;
    let tail = root.get("tail").and_then(decode_tail);
    let Some(Json::Array(raw_records)) = root.remove("records") else {
        return Err(Error::protocol("batch without a records array"));
    };
    let mut records = Vec::with_capacity(raw_records.len());
    for (index, raw) in raw_records.into_iter().enumerate() {
        records.push(decode_record(index, raw)?);
    }
    Ok(Batch { records, tail })
}

fn decode_ping(data: &str) -> StreamEvent {
    let parsed = Json::parse(data).ok();
    StreamEvent::Ping {
        timestamp: parsed
            .as_ref()
            .and_then(|json| json.get("timestamp"))
            .and_then(Json::as_u64),
        tail: parsed
            .as_ref()
            .and_then(|json| json.get("tail"))
            .and_then(decode_tail),
    }
}

fn decode_tail(tail: &Json) -> Option<Tail> {
    Some(Tail {
        seq_num: tail.get("seq_num")?.as_u64()?,
        timestamp: tail.get("timestamp").and_then(Json::as_u64).unwrap_or(0),
    })
}

fn decode_record(index: usize, mut raw: Json) -> Result<Record, Error> {
    let seq_num = raw.get("seq_num").and_then(Json::as_u64).ok_or_else(|| {
        let mut message = String::from("batch record ");
        crate::proto::json::push_u64(&mut message, index as u64);
        message.push_str(" has no integer seq_num");
        Error::protocol(message)
    })?;
    let timestamp = raw.get("timestamp").and_then(Json::as_u64).unwrap_or(0);
    let headers = Headers::from_json(raw.get("headers"));
    let body = match raw.remove("body") {
        Some(Json::String(body)) => body,
        _ => String::new(),
    };
    Ok(Record {
        seq_num,
        timestamp,
        kind: classify(&headers, body),
    })
}

/// A record's `[name, value]` header pairs. Entries without a string name are ignored; a value
/// that is not a string reads as absent (a number reads as its text).
struct Headers {
    entries: Vec<(String, Option<String>)>,
    /// `headers[0][0] === ""`: the S2 command marker, judged on the raw first entry.
    is_command: bool,
}

impl Headers {
    fn from_json(raw: Option<&Json>) -> Headers {
        let raw_entries = raw.and_then(Json::as_array).unwrap_or_default();
        let name_of = |entry: &Json| -> Option<String> {
            entry.as_array()?.first()?.as_str().map(str::to_owned)
        };
        let value_of = |entry: &Json| -> Option<String> {
            match entry.as_array()?.get(1)? {
                Json::String(text) => Some(text.clone()),
                Json::Number(raw) => Some(raw.clone()),
                _ => None,
            }
        };
        let is_command = raw_entries
            .first()
            .and_then(name_of)
            .is_some_and(|name| name.is_empty());
        let entries = raw_entries
            .iter()
            .filter_map(|entry| Some((name_of(entry)?, value_of(entry))))
            .collect();
        Headers {
            entries,
            is_command,
        }
    }

    /// wireProtocol.js `headerValue`: the first entry with this name.
    fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(entry_name, _)| entry_name == name)
            .and_then(|(_, value)| value.as_deref())
    }
}

fn classify(headers: &Headers, body: String) -> RecordKind {
    if headers.is_command {
        let op = headers
            .entries
            .first()
            .and_then(|(_, value)| value.clone())
            .unwrap_or_default();
        return RecordKind::Command { op };
    }
    // An empty `trigger-control` value is no control (the JS client tests it for truthiness).
    if let Some(subtype) = headers
        .get(TRIGGER_CONTROL_HEADER)
        .filter(|v| !v.is_empty())
    {
        let raw_in_id = headers.get(SESSION_IN_EVENT_ID_HEADER).map(str::to_owned);
        return RecordKind::Control(Control {
            kind: ControlKind::from_header(subtype),
            public_access_token: headers
                .get(PUBLIC_ACCESS_TOKEN_HEADER)
                .filter(|token| is_bearer_token(token))
                .map(str::to_owned),
            session_in_event_id: raw_in_id.as_deref().and_then(parse_decimal_u64),
            session_in_event_id_raw: raw_in_id,
            session_closed: headers.get(SESSION_CLOSED_HEADER) == Some("true"),
            // Kept and shown in errors: redacted and short, as a server error's text is.
            closed_reason: headers
                .get(SESSION_CLOSED_REASON_HEADER)
                .map(crate::proto::error::sanitize_message),
            legacy: false,
        });
    }
    classify_data(body)
}

/// A plain decimal: ASCII digits only, at least one, fits a u64.
fn parse_decimal_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether `body` has a JSON string starting `trigger:` (a quote followed by `trigger:`). A quote
/// scan rather than `str::contains`, whose substring searcher is 2 KB of wasm.
fn mentions_trigger_string(body: &str) -> bool {
    let mut rest = body.as_bytes();
    while let Some(quote) = rest.iter().position(|&b| b == b'"') {
        rest = rest.get(quote + 1..).unwrap_or_default();
        if rest.starts_with(b"trigger:") {
            return true;
        }
    }
    false
}

/// Data record, or the legacy control form ("Prior wire shape" in client-protocol.mdx):
/// `{"data":{"type":"trigger:turn-complete", ...}}`. The body is only parsed when it contains
/// `"trigger:`, so ordinary chunks cost one substring scan.
fn classify_data(body: String) -> RecordKind {
    if body.trim().is_empty() {
        return RecordKind::Skip;
    }
    if !mentions_trigger_string(&body) {
        return RecordKind::Data { body };
    }
    let Ok(parsed) = Json::parse(&body) else {
        return RecordKind::Data { body };
    };
    let Some(chunk) = parsed.get("data") else {
        return RecordKind::Data { body };
    };
    let legacy_control = |kind: ControlKind, token: Option<String>| {
        RecordKind::Control(Control {
            kind,
            public_access_token: token,
            session_in_event_id: None,
            session_in_event_id_raw: None,
            session_closed: false,
            closed_reason: None,
            legacy: true,
        })
    };
    match chunk.get("type").and_then(Json::as_str) {
        Some("trigger:turn-complete") => {
            let token = chunk
                .get("publicAccessToken")
                .and_then(Json::as_str)
                .filter(|token| is_bearer_token(token))
                .map(str::to_owned);
            legacy_control(ControlKind::TurnComplete, token)
        }
        Some("trigger:upgrade-required") => legacy_control(ControlKind::UpgradeRequired, None),
        Some(other) if other.starts_with("trigger:") => RecordKind::Skip,
        _ => RecordKind::Data { body },
    }
}
