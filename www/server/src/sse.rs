//! SSE framing of `.out`, as S2 writes it (client-protocol.mdx "Stream format (S2)"):
//!
//! ```text
//! id: 0,1,106
//! event: batch
//! data: {"records":[…],"tail":{"seq_num":1,"timestamp":…}}
//!
//! event: ping
//! data: {"timestamp":…,"tail":{…}}
//!
//! data: [DONE]
//! ```
//!
//! Test faults can change the framing (CRLF line ends, `:` comment lines) without changing the
//! events a conforming parser sees.

use std::sync::Arc;

use bytes::Bytes;

use crate::outlog::{StoredRecord, Tail};

/// Framing variations (all `false` is the normal wire).
#[derive(Debug, Clone, Copy, Default)]
pub struct Framing {
    pub crlf: bool,
    pub comments: bool,
}

impl Framing {
    fn eol(&self) -> &'static str {
        if self.crlf {
            "\r\n"
        } else {
            "\n"
        }
    }

    /// Builds one event from `(field, value)` lines.
    fn event(&self, lines: &[(&str, &str)]) -> Bytes {
        let eol = self.eol();
        let mut out = String::with_capacity(lines.iter().map(|(_, v)| v.len() + 8).sum());
        if self.comments {
            out.push_str(": injected comment before the event");
            out.push_str(eol);
        }
        for (i, (field, value)) in lines.iter().enumerate() {
            if self.comments && i > 0 {
                out.push(':');
                out.push_str(eol);
            }
            out.push_str(field);
            out.push_str(": ");
            out.push_str(value);
            out.push_str(eol);
        }
        out.push_str(eol);
        Bytes::from(out)
    }

    /// `event: batch` with `records` (non-empty) and the tail.
    pub fn batch(&self, records: &[Arc<StoredRecord>], tail: Tail) -> Bytes {
        let first = records.first().map_or(0, |r| r.seq);
        let last = records.last().map_or(0, |r| r.seq);
        let offset = records
            .last()
            .map_or(0, |r| r.start_offset + r.json.len() as u64);
        let size: usize = records.iter().map(|r| r.json.len() + 1).sum();
        let mut data = Vec::with_capacity(size + 80);
        data.extend_from_slice(b"{\"records\":[");
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                data.push(b',');
            }
            data.extend_from_slice(&record.json);
        }
        data.extend_from_slice(b"],\"tail\":");
        data.extend_from_slice(tail_json(tail).as_bytes());
        data.push(b'}');
        // Record JSON comes from serde_json: always UTF-8.
        let data = String::from_utf8(data).unwrap_or_default();
        let id = format!("{first},{},{offset}", last + 1);
        self.event(&[("id", &id), ("event", "batch"), ("data", &data)])
    }

    /// `event: ping` with the current time and tail.
    pub fn ping(&self, now_ms: u64, tail: Tail) -> Bytes {
        let data = format!("{{\"timestamp\":{now_ms},\"tail\":{}}}", tail_json(tail));
        self.event(&[("event", "ping"), ("data", &data)])
    }

    /// `event: error` with a plain-text reason; the response ends after it.
    pub fn error(&self, reason: &str) -> Bytes {
        self.event(&[("event", "error"), ("data", reason)])
    }

    /// `data: [DONE]`, sent once before a clean end.
    pub fn done(&self) -> Bytes {
        self.event(&[("data", "[DONE]")])
    }
}

fn tail_json(tail: Tail) -> String {
    format!(
        "{{\"seq_num\":{},\"timestamp\":{}}}",
        tail.seq_num, tail.timestamp
    )
}

/// Cuts `bytes` into 1–7 byte pieces (mid-line, mid-UTF-8), for the `tinyWrites` fault.
pub fn tiny_pieces(bytes: &Bytes) -> Vec<Bytes> {
    const SIZES: [usize; 7] = [1, 3, 2, 7, 5, 4, 6];
    let mut out = Vec::with_capacity(bytes.len() / 3 + 1);
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let end = (at + SIZES[i % SIZES.len()]).min(bytes.len());
        out.push(bytes.slice(at..end));
        at = end;
        i += 1;
    }
    out
}

/// A `text/event-stream` response (no caching) whose body is what arrives on `rx`, in order.
pub fn event_stream_response(
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let body =
        axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        }));
    let mut response = axum::response::Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::NewRecord;

    fn record(seq: u64) -> Arc<StoredRecord> {
        let r = NewRecord::data(r#"{"type":"start"}"#, "p");
        Arc::new(StoredRecord {
            seq,
            timestamp: 5,
            kind: r.kind.clone(),
            json: r.to_json(seq, 5),
            start_offset: 0,
        })
    }

    #[test]
    fn batch_event_shape() {
        let tail = Tail {
            seq_num: 2,
            timestamp: 5,
        };
        let text =
            String::from_utf8(Framing::default().batch(&[record(1)], tail).to_vec()).unwrap();
        assert!(text.starts_with("id: 1,2,"));
        assert!(text.contains("\nevent: batch\ndata: {\"records\":[{\"seq_num\":1,"));
        assert!(text.ends_with(",\"tail\":{\"seq_num\":2,\"timestamp\":5}}\n\n"));
    }

    #[test]
    fn crlf_and_comments_only_change_the_framing() {
        let f = Framing {
            crlf: true,
            comments: true,
        };
        let text = String::from_utf8(f.done().to_vec()).unwrap();
        assert_eq!(
            text,
            ": injected comment before the event\r\ndata: [DONE]\r\n\r\n"
        );
    }

    #[test]
    fn tiny_pieces_rejoin() {
        let b = Bytes::from("héllo wörld, this is an event\n\n");
        let pieces = tiny_pieces(&b);
        assert!(pieces.iter().all(|p| (1..=7).contains(&p.len())));
        assert_eq!(pieces.concat(), b.to_vec());
    }
}
