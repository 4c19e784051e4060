//! Incremental decoder for `text/event-stream`, after the WHATWG HTML standard §9.2.6
//! "Interpreting an event stream"
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>).
//!
//! Push bytes as they arrive, in any split; pull events. Line terminators are ASCII, so the
//! decoder buffers the raw bytes of the one unfinished line and decodes whole lines as UTF-8:
//! a character split across two pushes decodes exactly as if it had arrived in one piece, and
//! every input byte is scanned once (O(total bytes)).

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::collections::VecDeque;

use super::error::Error;

/// Default cap on one line, and on one event's joined `data`, in bytes (4 MiB). A batch event's
/// `data:` line holds many records: an S2 read batch is at most 1 MiB of records, and each
/// record body is a JSON string inside it, whose escaping can double a quote-heavy body (a large
/// tool output). Twice that and more means a broken stream (or many `data:` lines that never
/// end their event), not one a reconnect would read differently.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Longest `id:` value kept; a longer one is ignored like one holding NUL. Every event carries a
/// copy of the last id, so a server sending a 2 MiB id and then thousands of tiny events would
/// otherwise make gigabytes of copies out of one read. (S2's ids are decimal sequence numbers.)
pub const MAX_ID_BYTES: usize = 256;

/// A line buffer larger than this is not kept for reuse after the line completes.
const KEEP_LINE_CAPACITY_BYTES: usize = 64 * 1024;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `"message"` when the block had none.
    pub event: String,
    /// The `data:` lines joined with `\n` (no trailing newline).
    pub data: String,
    /// The last event ID buffer at dispatch: the most recent valid `id:` of the stream so far,
    /// not necessarily from this block (§9.2.6 keeps it across events).
    pub id: String,
    /// A valid `retry:` field from this event's own block, if there was one. The value also
    /// updates [`SseDecoder::retry_ms`], which outlives the block.
    pub retry_ms: Option<u64>,
}

/// Push bytes, pull events.
///
/// ```
/// use trigger_chat_wasm::proto::sse::SseDecoder;
///
/// let mut decoder = SseDecoder::new();
/// decoder.push(b"event: ping\ndata: {\"timestamp\":1}\r").unwrap();
/// assert!(decoder.next_event().is_none()); // the block is not finished yet
/// decoder.push(b"\n\r\n").unwrap();
/// let event = decoder.next_event().unwrap();
/// assert_eq!((event.event.as_str(), event.data.as_str()), ("ping", "{\"timestamp\":1}"));
/// ```
#[derive(Debug)]
pub struct SseDecoder {
    max_line_bytes: usize,
    /// Raw bytes of the unfinished line carried over from earlier pushes.
    line: Vec<u8>,
    /// The previous push ended with CR: a LF opening the next push ends the same line.
    skip_leading_lf: bool,
    /// How many bytes of a UTF-8 BOM have been matched at the start of the stream;
    /// `None` once the start of the stream is past.
    bom_matched: Option<usize>,
    data: String,
    event_type: String,
    last_event_id: String,
    retry_ms: Option<u64>,
    block_retry_ms: Option<u64>,
    events: VecDeque<SseEvent>,
    /// A line or an event's data broke the cap; pushes fail until `finish` or `reset`.
    failed: bool,
}

/// Appends `bytes` decoded as UTF-8, each invalid sequence (and a truncated one at the end)
/// replaced by U+FFFD — `String::from_utf8_lossy`'s result, without its iterator machinery
/// (about 1 KB of wasm).
fn push_lossy(out: &mut String, mut bytes: &[u8]) {
    loop {
        match core::str::from_utf8(bytes) {
            Ok(text) => return out.push_str(text),
            Err(error) => {
                let (valid, rest) = bytes.split_at(error.valid_up_to());
                out.push_str(core::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                bytes = rest
                    .get(error.error_len().unwrap_or(rest.len())..)
                    .unwrap_or_default();
            }
        }
    }
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder with the default 4 MiB line cap.
    pub fn new() -> Self {
        Self::with_max_line_bytes(DEFAULT_MAX_LINE_BYTES)
    }

    /// A decoder that rejects any line longer than `max_line_bytes` (terminator excluded), and
    /// any event whose `data` lines add up to more than that (one `\n` per line included).
    pub fn with_max_line_bytes(max_line_bytes: usize) -> Self {
        SseDecoder {
            max_line_bytes,
            line: Vec::new(),
            skip_leading_lf: false,
            bom_matched: Some(0),
            data: String::new(),
            event_type: String::new(),
            last_event_id: String::new(),
            retry_ms: None,
            block_retry_ms: None,
            events: VecDeque::new(),
            failed: false,
        }
    }

    /// Feed the next bytes of the stream. Completed events queue up for [`Self::next_event`].
    ///
    /// A line longer than the cap, or an event whose data grows past it, is
    /// [`Error::Protocol`], whatever the split; the events before it stay queued, and further
    /// pushes fail until [`Self::finish`] or [`Self::reset`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.failed {
            return Err(Error::protocol(
                "event stream line or event too long (decoder not reset)",
            ));
        }
        let mut bytes = self.strip_bom(bytes);
        if bytes.is_empty() {
            return Ok(());
        }
        if self.skip_leading_lf {
            self.skip_leading_lf = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        // §9.2.5: "end-of-line = ( cr lf / cr / lf )".
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (segment, rest) = bytes.split_at(end);
            let mut after = rest.get(1..).unwrap_or_default();
            if rest.first() == Some(&b'\r') {
                match after.first() {
                    Some(b'\n') => after = after.get(1..).unwrap_or_default(),
                    None => self.skip_leading_lf = true,
                    Some(_) => {}
                }
            }
            self.complete_line(segment)?;
            bytes = after;
        }
        if self.line.len() + bytes.len() > self.max_line_bytes {
            return Err(self.fail("line"));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// The next dispatched event, oldest first.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.events.pop_front()
    }

    /// The last event ID buffer: the most recent valid `id:` value (empty before any).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time from the most recent valid `retry:` field, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// End of stream. §9.2.6: "Once the end of the file is reached, any pending data must be
    /// discarded. (If the file ends in the middle of an event, before the final empty line, the
    /// incomplete event is not dispatched.)" Queued events, the last event ID and the retry
    /// time are kept (an `EventSource` keeps them across reconnections); the next push is the
    /// start of a new stream (a BOM is stripped again) and a line-cap failure is cleared.
    pub fn finish(&mut self) {
        self.line.clear();
        self.skip_leading_lf = false;
        self.bom_matched = Some(0);
        self.data.clear();
        self.event_type.clear();
        self.block_retry_ms = None;
        self.failed = false;
    }

    /// Forget everything, including queued events, the last event ID and the retry time.
    pub fn reset(&mut self) {
        *self = Self::with_max_line_bytes(self.max_line_bytes);
    }

    fn fail(&mut self, what: &str) -> Error {
        self.failed = true;
        self.line = Vec::new();
        self.data = String::new();
        let mut message = String::from("event stream ");
        message.push_str(what);
        message.push_str(" longer than ");
        crate::proto::json::push_u64(&mut message, self.max_line_bytes as u64);
        message.push_str(" bytes");
        Error::protocol(message)
    }

    /// §9.2.6: "The UTF-8 decode algorithm strips one leading UTF-8 Byte Order Mark (BOM), if
    /// any." Matches a BOM split across pushes; a partial match that fails is given back as
    /// ordinary line bytes.
    fn strip_bom<'a>(&mut self, mut bytes: &'a [u8]) -> &'a [u8] {
        while let Some(matched) = self.bom_matched {
            let Some((&first, rest)) = bytes.split_first() else {
                return bytes;
            };
            if BOM.get(matched) == Some(&first) {
                bytes = rest;
                self.bom_matched = (matched + 1 < BOM.len()).then_some(matched + 1);
            } else {
                self.line
                    .extend_from_slice(BOM.get(..matched).unwrap_or_default());
                self.bom_matched = None;
            }
        }
        bytes
    }

    /// `segment` ends a line; the line is the buffered bytes plus `segment`.
    fn complete_line(&mut self, segment: &[u8]) -> Result<(), Error> {
        if self.line.len() + segment.len() > self.max_line_bytes {
            return Err(self.fail("line"));
        }
        let within_cap = if self.line.is_empty() {
            self.process_line(segment)
        } else {
            self.line.extend_from_slice(segment);
            let mut line = core::mem::take(&mut self.line);
            let within_cap = self.process_line(&line);
            if line.capacity() <= KEEP_LINE_CAPACITY_BYTES {
                line.clear();
                self.line = line;
            }
            within_cap
        };
        if !within_cap {
            return Err(self.fail("event data"));
        }
        Ok(())
    }

    /// §9.2.6, the four cases for a line. `false` when the event's data would pass the cap.
    fn process_line(&mut self, line: &[u8]) -> bool {
        // "If the line is empty (a blank line): Dispatch the event."
        if line.is_empty() {
            self.dispatch();
            return true;
        }
        // "If the line starts with a U+003A COLON character (:): Ignore the line."
        if line.first() == Some(&b':') {
            return true;
        }
        // "If the line contains a U+003A COLON character: collect the characters on the line
        // before the first colon [as field], ... after the first colon [as value]. If value
        // starts with a U+0020 SPACE character, remove it." Otherwise the whole line is the
        // field and the value is empty.
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let (field, rest) = line.split_at(colon);
                let value = rest.get(1..).unwrap_or_default();
                (field, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        self.process_field(field, value)
    }

    /// §9.2.6 "process the field". `false` when the event's data would pass the cap.
    fn process_field(&mut self, field: &[u8], value: &[u8]) -> bool {
        match field {
            b"event" => {
                self.event_type.clear();
                push_lossy(&mut self.event_type, value);
            }
            b"data" => {
                // Counted in input bytes (a lossy decode can only grow invalid input).
                if self.data.len() + value.len() + 1 > self.max_line_bytes {
                    return false;
                }
                push_lossy(&mut self.data, value);
                self.data.push('\n');
            }
            // "If the field value does not contain U+0000 NULL, then set the last event ID
            // buffer to the field value. Otherwise, ignore the field." (Also ignored: a value
            // over `MAX_ID_BYTES`.)
            b"id" if !value.contains(&0) && value.len() <= MAX_ID_BYTES => {
                self.last_event_id.clear();
                push_lossy(&mut self.last_event_id, value);
            }
            // "If the field value consists of only ASCII digits, then interpret the field value
            // as an integer in base ten, and set the event stream's reconnection time to that
            // integer. Otherwise, ignore the field." (Too many digits saturate.)
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let retry_ms = value.iter().fold(0u64, |acc, &digit| {
                    acc.saturating_mul(10)
                        .saturating_add(u64::from(digit - b'0'))
                });
                self.retry_ms = Some(retry_ms);
                self.block_retry_ms = Some(retry_ms);
            }
            // "Otherwise: The field is ignored."
            _ => {}
        }
        true
    }

    /// §9.2.6 "dispatch the event".
    fn dispatch(&mut self) {
        let retry_ms = self.block_retry_ms.take();
        // "If the data buffer is an empty string, set the data buffer and the event type buffer
        // to the empty string and return."
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        // "If the data buffer's last character is a U+000A LINE FEED (LF) character, then
        // remove the last character from the data buffer."
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            core::mem::take(&mut self.event_type)
        };
        self.events.push_back(SseEvent {
            event,
            data: core::mem::take(&mut self.data),
            id: self.last_event_id.clone(),
            retry_ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::push_lossy;

    #[test]
    fn push_lossy_matches_from_utf8_lossy() {
        // Every sequence of up to four bytes drawn from ASCII, continuation bytes, every kind of
        // lead byte and the never-valid ones, plus longer mixed samples.
        let alphabet = [
            b'a', 0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5,
            0xFF,
        ];
        let mut inputs: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = inputs
                .iter()
                .filter(|i| i.len() == inputs.last().map_or(0, Vec::len))
                .flat_map(|i| {
                    alphabet.iter().map(move |b| {
                        let mut next = i.clone();
                        next.push(*b);
                        next
                    })
                })
                .collect();
            inputs.extend(longer);
        }
        inputs.push("héllo → 世界 🦀".as_bytes().to_vec());
        inputs.push(b"ok\xF0\x9F\xA6trunc\xE2\x82".to_vec());
        inputs.push(b"\xED\xA0\x80 surrogate \xF4\x90\x80\x80 too big".to_vec());
        for input in &inputs {
            let mut out = String::from("prefix:");
            push_lossy(&mut out, input);
            assert_eq!(
                out,
                format!("prefix:{}", String::from_utf8_lossy(input)),
                "{input:02x?}"
            );
        }
        assert!(inputs.len() > 50_000);
    }
}
