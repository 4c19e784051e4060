//! A small JSON reader and writer (RFC 8259), in place of serde_json (wasm size budget).
//!
//! Reading is strict: one value, optional surrounding whitespace, nothing else. Numbers keep
//! their source text so they round-trip exactly (a 64-bit `seq_num` is never squeezed through an
//! `f64`). Writing is compact and escapes strings exactly like JavaScript's `JSON.stringify`,
//! so a payload built here is byte-identical to what the JS transport sends for the same value.
//!
//! Two differences from `JSON.stringify(JSON.parse(text))` remain, both by design:
//! numbers are written as their source text (`1.0` stays `1.0`, JS writes `1`), and object
//! members are written in stored order with duplicates kept (JS keeps the last value of a
//! duplicate and puts integer-like keys first).

use super::error::Error;
#[allow(unused_imports)]
use crate::prelude::*;

mod parse;

/// Deepest nesting of arrays and objects [`Json::parse`] accepts (as deep as JSON from an app
/// goes in practice: a tool output holding a syntax tree, say; twice as deep still fits the
/// stack of a debug build in the browser).
pub const MAX_DEPTH: usize = 512;

/// A JSON value.
///
/// ```
/// use trigger_chat_wasm::proto::json::Json;
///
/// let value = Json::parse(r#"{"seq":18446744073709551615,"ok":true}"#).unwrap();
/// assert_eq!(value.get("seq").and_then(Json::as_u64), Some(u64::MAX));
/// assert_eq!(value.to_json_string(), r#"{"seq":18446744073709551615,"ok":true}"#);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as its JSON source text (round-trips exactly).
    Number(String),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: members in insertion order. Duplicate keys are kept; [`Json::get`] returns
    /// the last one, as `JSON.parse` would.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parse exactly one JSON value. Malformed input, or nesting deeper than [`MAX_DEPTH`], is
    /// [`Error::Protocol`] with the byte offset (never the text itself, which may hold a token).
    pub fn parse(text: &str) -> Result<Json, Error> {
        parse::parse_document(text)
    }

    /// An empty object.
    pub fn object() -> Json {
        Json::Object(Vec::new())
    }

    /// The member `key` of an object (the last one when duplicated); `None` otherwise.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// Remove the member `key` of an object (every copy of it) and return its last value.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        let Json::Object(members) = self else {
            return None;
        };
        let mut found = None;
        members.retain_mut(|(name, value)| {
            if name == key {
                found = Some(core::mem::replace(value, Json::Null));
                false
            } else {
                true
            }
        });
        found
    }

    /// Set the member `key` of an object: replaces the last existing copy in place, or appends.
    /// Does nothing on a non-object.
    pub fn set(&mut self, key: &str, value: Json) {
        if let Json::Object(members) = self {
            match members.iter_mut().rev().find(|(name, _)| name == key) {
                Some((_, slot)) => *slot = value,
                None => members.push((key.to_owned(), value)),
            }
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    /// The number, if this is a non-negative integer written without fraction or exponent that
    /// fits a `u64` (`42` yes; `42.0`, `4.2e1`, `-1` no).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(raw) if raw.bytes().all(|b| b.is_ascii_digit()) => raw.parse().ok(),
            _ => None,
        }
    }

    /// The number as an `f64` (may round, like JavaScript).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(raw) => raw.parse().ok(),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(value) => Some(*value),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// Append the compact JSON text of this value to `out`.
    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Number(raw) => out.push_str(raw),
            Json::String(text) => write_json_string(out, text),
            Json::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (index, (name, value)) in members.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_json_string(out, name);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The compact JSON text of this value.
    pub fn to_json_string(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

impl From<bool> for Json {
    fn from(value: bool) -> Json {
        Json::Bool(value)
    }
}

impl From<u64> for Json {
    fn from(value: u64) -> Json {
        Json::Number(u64_string(value))
    }
}

impl From<i64> for Json {
    fn from(value: i64) -> Json {
        let mut text = String::new();
        if value < 0 {
            text.push('-');
        }
        push_u64(&mut text, value.unsigned_abs());
        Json::Number(text)
    }
}

/// Appends the decimal digits of `value` (without `core::fmt`, which is large in wasm).
pub fn push_u64(out: &mut String, value: u64) {
    // Most significant digit first; no digit buffer, so nothing to index (see proto::table).
    let mut divisor = 1u64;
    while value / divisor >= 10 {
        divisor *= 10;
    }
    loop {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        if divisor == 1 {
            break;
        }
        divisor /= 10;
    }
}

/// `value` in decimal.
pub fn u64_string(value: u64) -> String {
    let mut out = String::new();
    push_u64(&mut out, value);
    out
}

impl From<&str> for Json {
    fn from(value: &str) -> Json {
        Json::String(value.to_owned())
    }
}

impl From<String> for Json {
    fn from(value: String) -> Json {
        Json::String(value)
    }
}

impl From<Vec<Json>> for Json {
    fn from(items: Vec<Json>) -> Json {
        Json::Array(items)
    }
}

/// Append `text` as a JSON string literal, escaped like `JSON.stringify`: `"` and `\` get a
/// backslash; U+0008/09/0A/0C/0D become `\b \t \n \f \r`; other controls below U+0020 become
/// `\u00xx` (lowercase hex); everything else, including U+2028/U+2029 and DEL, is copied as
/// UTF-8. Runs without escapes are copied in one piece.
pub fn write_json_string(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push('"');
    let mut run_start = 0;
    for (index, &byte) in text.as_bytes().iter().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `index` is an ASCII byte, so both slice ends are char boundaries.
        out.push_str(text.get(run_start..index).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        } else {
            out.push_str(escape);
        }
        run_start = index + 1;
    }
    out.push_str(text.get(run_start..).unwrap_or_default());
    out.push('"');
}
