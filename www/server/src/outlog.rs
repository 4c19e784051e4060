//! The emulated S2 stream behind `session.out`: records with a session-wide monotonic `seq_num`,
//! each serialized once (every reader shares the bytes), a tail watch for long-polls, and `trim`.
//!
//! Memory stays bounded for huge turns ("stream 1000000"): the agent waits while it is more than
//! a window ahead of the fastest reader (`wait_for_room`), and the oldest records are evicted past
//! a retention cap. A reader whose cursor was evicted or trimmed resumes at the first surviving
//! record, as S2 does ("the read silently clamps forward").

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::records::{NewRecord, RecordKind};

/// The agent pauses while this many records are not yet written to any reader…
pub const FLOW_WINDOW_RECORDS: u64 = 50_000;
/// …or this many bytes.
pub const FLOW_WINDOW_BYTES: u64 = 32 << 20;
/// Records beyond this count are evicted, oldest first.
pub const MAX_RETAINED_RECORDS: usize = 200_000;
/// Records beyond this many bytes are evicted, oldest first.
pub const MAX_RETAINED_BYTES: u64 = 128 << 20;

/// One record with its position.
#[derive(Debug)]
pub struct StoredRecord {
    pub seq: u64,
    pub timestamp: u64,
    pub kind: RecordKind,
    /// `{"seq_num":…,"timestamp":…,"headers":…,"body":…}`
    pub json: Bytes,
    /// Bytes of all records before this one (feeds the S2-style `id:` line).
    pub start_offset: u64,
}

/// `tail` of a batch or ping: the seq the next record will get, and the last record's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    pub seq_num: u64,
    pub timestamp: u64,
}

/// A read from the log.
#[derive(Debug)]
pub struct Batch {
    pub records: Vec<Arc<StoredRecord>>,
    /// Where the next read continues.
    pub next: u64,
    pub tail: Tail,
}

#[derive(Debug, Default)]
struct Inner {
    records: VecDeque<Arc<StoredRecord>>,
    first_seq: u64,
    next_seq: u64,
    last_timestamp: u64,
    total_bytes: u64,
    retained_bytes: u64,
    last_non_command: Option<RecordKind>,
}

/// The log of one session's `.out` stream.
#[derive(Debug)]
pub struct OutLog {
    inner: Mutex<Inner>,
    tail_tx: watch::Sender<u64>,
    delivered_tx: watch::Sender<u64>,
}

impl Default for OutLog {
    fn default() -> Self {
        OutLog {
            inner: Mutex::new(Inner::default()),
            tail_tx: watch::channel(0).0,
            delivered_tx: watch::channel(0).0,
        }
    }
}

impl OutLog {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends records in order and wakes readers once; returns the last seq written.
    pub fn append_all(&self, records: impl IntoIterator<Item = NewRecord>) -> Option<u64> {
        let mut last = None;
        {
            let mut inner = self.lock();
            for record in records {
                let seq = inner.next_seq;
                let timestamp = now_ms().max(inner.last_timestamp);
                let json = record.to_json(seq, timestamp);
                let stored = StoredRecord {
                    seq,
                    timestamp,
                    kind: record.kind.clone(),
                    start_offset: inner.total_bytes,
                    json,
                };
                inner.total_bytes += stored.json.len() as u64;
                inner.retained_bytes += stored.json.len() as u64;
                if record.kind != RecordKind::Command {
                    inner.last_non_command = Some(record.kind);
                }
                inner.records.push_back(Arc::new(stored));
                inner.next_seq = seq + 1;
                inner.last_timestamp = timestamp;
                last = Some(seq);
            }
            while inner.records.len() > MAX_RETAINED_RECORDS
                || inner.retained_bytes > MAX_RETAINED_BYTES
            {
                pop_front(&mut inner);
            }
        }
        if let Some(seq) = last {
            self.tail_tx.send_replace(seq + 1);
        }
        last
    }

    /// Appends one record; returns its seq.
    pub fn append(&self, record: NewRecord) -> u64 {
        self.append_all([record]).unwrap_or_default()
    }

    /// The stream is dropped and made again, numbered from 0 (what the real server does to an
    /// idle chat's `.out` past its retention): readers asked from past the new tail read on
    /// from it.
    pub fn renumber(&self) {
        *self.lock() = Inner::default();
        self.delivered_tx.send_replace(0);
        self.tail_tx.send_replace(0);
    }

    /// Applies an S2 trim: records before `seq` are gone.
    pub fn trim_before(&self, seq: u64) {
        let mut inner = self.lock();
        if seq > inner.next_seq {
            // A trim point from before the stream was made again (`renumber`): nothing to trim.
            return;
        }
        while inner.first_seq < seq && !inner.records.is_empty() {
            pop_front(&mut inner);
        }
    }

    /// Up to `max_records` records / about `max_bytes` bytes from `from` (clamped forward to the
    /// first surviving record).
    pub fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Batch {
        let inner = self.lock();
        let start = from.max(inner.first_seq);
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let skip = (start - inner.first_seq) as usize;
        for record in inner.records.iter().skip(skip) {
            if records.len() >= max_records || (bytes >= max_bytes && !records.is_empty()) {
                break;
            }
            bytes += record.json.len();
            records.push(record.clone());
        }
        let next = records
            .last()
            .map_or(start.min(inner.next_seq), |r| r.seq + 1);
        Batch {
            records,
            next,
            tail: tail_of(&inner),
        }
    }

    /// The current tail.
    pub fn tail(&self) -> Tail {
        tail_of(&self.lock())
    }

    /// Seq of the newest record, if any was ever written.
    pub fn last_seq(&self) -> Option<u64> {
        self.lock().next_seq.checked_sub(1)
    }

    /// The settled peek: is the newest non-command record a `turn-complete`?
    pub fn ends_with_turn_complete(&self) -> bool {
        self.lock()
            .last_non_command
            .as_ref()
            .is_some_and(RecordKind::is_turn_complete)
    }

    /// A receiver that changes whenever records are appended (value: next seq).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tail_tx.subscribe()
    }

    /// A reader has written every record before `next` to its socket.
    pub fn mark_delivered(&self, next: u64) {
        self.delivered_tx.send_if_modified(|v| {
            let moved = next > *v;
            if moved {
                *v = next;
            }
            moved
        });
    }

    /// Flow control for the agent: resolves once the fastest reader is within the window.
    pub async fn wait_for_room(&self) {
        let mut rx = self.delivered_tx.subscribe();
        loop {
            let delivered = *rx.borrow_and_update();
            if self.has_room(delivered) || rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn has_room(&self, delivered: u64) -> bool {
        let inner = self.lock();
        let pending_records = inner.next_seq.saturating_sub(delivered);
        let delivered_offset = if delivered < inner.first_seq {
            inner.total_bytes - inner.retained_bytes
        } else {
            let idx = (delivered - inner.first_seq) as usize;
            inner
                .records
                .get(idx)
                .map_or(inner.total_bytes, |r| r.start_offset)
        };
        pending_records <= FLOW_WINDOW_RECORDS
            && inner.total_bytes - delivered_offset <= FLOW_WINDOW_BYTES
    }
}

fn pop_front(inner: &mut Inner) {
    if let Some(record) = inner.records.pop_front() {
        inner.retained_bytes -= record.json.len() as u64;
        inner.first_seq = record.seq + 1;
    }
}

fn tail_of(inner: &Inner) -> Tail {
    Tail {
        seq_num: inner.next_seq,
        timestamp: inner.last_timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(i: u64) -> NewRecord {
        NewRecord::data(
            r#"{"type":"text-delta","id":"t","delta":"x"}"#,
            &format!("p{i}"),
        )
    }

    #[test]
    fn seqs_are_monotonic_and_reads_page() {
        let log = OutLog::default();
        assert_eq!(log.last_seq(), None);
        log.append_all((0..10).map(text));
        let b = log.read(0, 4, usize::MAX);
        assert_eq!(
            b.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(b.next, 4);
        assert_eq!(b.tail.seq_num, 10);
        assert_eq!(log.read(10, 4, usize::MAX).records.len(), 0);
        assert_eq!(log.read(10, 4, usize::MAX).next, 10);
    }

    #[test]
    fn trim_clamps_old_cursors_forward() {
        let log = OutLog::default();
        log.append_all((0..10).map(text));
        log.trim_before(6);
        let b = log.read(2, 100, usize::MAX);
        assert_eq!(b.records.first().map(|r| r.seq), Some(6));
        assert_eq!(log.last_seq(), Some(9));
    }

    #[test]
    fn a_stream_made_again_is_numbered_from_zero_and_old_cursors_read_on_from_its_tail() {
        let log = OutLog::default();
        log.append_all((0..10).map(text));
        log.renumber();
        assert_eq!(log.last_seq(), None);
        let b = log.read(11, 100, usize::MAX);
        assert!(b.records.is_empty());
        assert_eq!((b.next, b.tail.seq_num), (0, 0));
        log.append_all((0..3).map(text));
        // A trim point from the old numbering (the agent's last boundary) trims nothing.
        log.trim_before(9);
        let b = log.read(b.next, 100, usize::MAX);
        assert_eq!(
            b.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(b.tail.seq_num, 3);
    }

    #[test]
    fn settled_peek_walks_past_command_records() {
        let log = OutLog::default();
        log.append(text(0));
        assert!(!log.ends_with_turn_complete());
        log.append(NewRecord::control("turn-complete", vec![]));
        log.append(NewRecord::trim(0));
        assert!(log.ends_with_turn_complete());
    }

    #[test]
    fn flow_control_needs_a_reader_beyond_the_window() {
        let log = OutLog::default();
        log.append_all((0..FLOW_WINDOW_RECORDS + 1).map(text));
        assert!(!log.has_room(0));
        log.mark_delivered(FLOW_WINDOW_RECORDS);
        assert!(log.has_room(FLOW_WINDOW_RECORDS));
    }
}
