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

/// Deepest nesting of arrays and objects [`Json::parse`] accepts.
pub const MAX_DEPTH: usize = 128;

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
        let mut parser = Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        };
        parser.skip_whitespace();
        let value = parser.value(0)?;
        parser.skip_whitespace();
        if parser.pos != parser.bytes.len() {
            return Err(parser.error("unexpected data after the value"));
        }
        Ok(value)
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
        Json::Number(value.to_string())
    }
}

impl From<i64> for Json {
    fn from(value: i64) -> Json {
        Json::Number(value.to_string())
    }
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

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::protocol(format!("invalid JSON at byte {}: {what}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// RFC 8259 §2: insignificant whitespace is space, tab, LF and CR only.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, Error> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, Error> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, Error> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested deeper than 128 levels"));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, Error> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested deeper than 128 levels"));
        }
        self.pos += 1; // '{'
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<Json, Error> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.error("leading zero in a number"));
                }
            }
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit after '.'"));
            }
            self.skip_digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit in the exponent"));
            }
            self.skip_digits();
        }
        // All bytes from `start` to `pos` are ASCII, so this slice is on char boundaries.
        let raw = self.text.get(start..self.pos).unwrap_or_default();
        Ok(Json::Number(raw.to_owned()))
    }

    fn skip_digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    /// RFC 8259 §7. Unescaped runs are copied in bulk; a string without escapes is one copy.
    fn string(&mut self) -> Result<String, Error> {
        self.pos += 1; // opening '"'
        let mut run_start = self.pos;
        let mut decoded: Option<String> = None;
        loop {
            // Find the next byte that ends the run: '"', '\' or a (forbidden) control.
            let run_len = self
                .bytes
                .get(self.pos..)
                .unwrap_or_default()
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let Some(run_len) = run_len else {
                self.pos = self.bytes.len();
                return Err(self.error("unterminated string"));
            };
            self.pos += run_len;
            // The byte at `pos` is ASCII, so `run_start..pos` is on char boundaries.
            let run = self.text.get(run_start..self.pos).unwrap_or_default();
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(match decoded {
                        None => run.to_owned(),
                        Some(mut text) => {
                            text.push_str(run);
                            text
                        }
                    });
                }
                Some(b'\\') => {
                    let text = decoded.get_or_insert_with(String::new);
                    text.push_str(run);
                    self.pos += 1;
                    self.escape(text)?;
                    run_start = self.pos;
                }
                _ => return Err(self.error("control character in a string")),
            }
        }
    }

    /// One escape after the backslash. `\uXXXX` surrogate pairs combine; a lone surrogate
    /// becomes U+FFFD (what `TextDecoder` would make of it once re-encoded as UTF-8).
    fn escape(&mut self, out: &mut String) -> Result<(), Error> {
        let Some(byte) = self.peek() else {
            return Err(self.error("unterminated escape"));
        };
        self.pos += 1;
        let simple = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let ch = match unit {
                    0xD800..=0xDBFF => self.low_surrogate_after(unit),
                    0xDC00..=0xDFFF => '\u{FFFD}',
                    _ => char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'),
                };
                out.push(ch);
                return Ok(());
            }
            _ => {
                self.pos -= 1;
                return Err(self.error("invalid escape"));
            }
        };
        out.push(simple);
        Ok(())
    }

    /// After a high surrogate: consume a following `\uDC00`–`\uDFFF` and combine, or leave the
    /// input alone (it is parsed as its own escape) and yield U+FFFD.
    fn low_surrogate_after(&mut self, high: u16) -> char {
        let save = self.pos;
        if self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") {
            self.pos += 2;
            if let Ok(low @ 0xDC00..=0xDFFF) = self.hex4() {
                let code = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                return char::from_u32(code).unwrap_or('\u{FFFD}');
            }
        }
        self.pos = save;
        '\u{FFFD}'
    }

    fn hex4(&mut self) -> Result<u16, Error> {
        let mut unit: u16 = 0;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.error("expected 4 hex digits after \\u")),
            };
            unit = (unit << 4) | u16::from(digit);
            self.pos += 1;
        }
        Ok(unit)
    }
}
