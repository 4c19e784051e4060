//! One subscription's view of `.out`: which records reach the consumer and when the turn is over.
//!
//! Driving contract (client-protocol.mdx, "turn-complete control record"): a turn-complete belongs
//! to *this* send only if its `session-in-event-id` is ≥ the `seq` the send's `.in/append`
//! returned; a lower one is an earlier turn's boundary and is skipped. A boundary without the
//! header (the first turn, started by session create, or a legacy agent) is accepted.
//!
//! Two things the JavaScript transport gets wrong are decided here instead:
//! - **Earlier-turn data never leaks into this stream (W11).** When the caller knows an earlier
//!   turn may still be writing (a send while a turn was outstanding, or after a stop), data is
//!   *held* rather than forwarded. An earlier boundary discards what was held; this send's own
//!   boundary releases it. Nothing is lost if the stopped turn never writes a boundary: the
//!   hold is simply released at ours (W12, no manual `clearSupersedeGate`).
//! - **A chat read from an unknown position** (no cursor: a new chat, or one whose state was
//!   removed) may replay earlier turns first. Data is held until the subscription has caught up
//!   with the stream's tail (`tail` on batches and pings) or an earlier boundary went by, so a
//!   new chat streams at once and an old one never shows a previous answer as this one.
//! - **The append and the subscription run in parallel.** `.out` is opened before the append's
//!   `seq` is known, so a boundary that arrives first waits (with everything after it) until
//!   [`Turn::set_input_seq`] decides whose it is.
//!
//! The machine only sees records newer than the cursor; deduplication by `seq_num` happens
//! before (see [`super::chat::Cursor`]).

use super::records::{Control, ControlKind, Record, RecordKind};
#[allow(unused_imports)]
use crate::prelude::*;
use alloc::collections::VecDeque;

/// Data held back beyond this many bytes is released instead of growing without bound: a turn
/// that outlives its hold is more likely ours than an earlier one's.
pub const MAX_HELD_BYTES: usize = 4 * 1024 * 1024;

/// What the subscription knows about the `.in` seq of the send it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSeq {
    /// The append is still in flight; a boundary must wait for it.
    Pending,
    /// The append returned this seq.
    Known(u64),
    /// No correlation is possible (a resume without a recorded send, or a server that returned
    /// no seq): every boundary is accepted.
    Unknown,
}

/// When data is held back instead of delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Deliver at once.
    Off,
    /// An earlier turn is still writing: hold until a boundary decides whose data it is.
    UntilBoundary,
    /// The position in the stream is unknown: hold until caught up with the tail (or a
    /// boundary).
    UntilCaughtUp,
}

/// The consumer-visible effect of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A data record body (`{"data": UIMessageChunk, "id": …}` JSON text) for the consumer.
    /// `first` is true for the first one of this subscription (the `first-chunk` event).
    Data {
        /// Raw JSON text of the record body.
        body: String,
        /// Whether this is the first data record delivered by this subscription.
        first: bool,
        /// `seq_num` of the record.
        seq_num: u64,
    },
    /// This send's turn is over: the stream closes after the data before it.
    TurnComplete(Control),
    /// An earlier turn's boundary went by (its held data, if any, was discarded).
    SkippedBoundary {
        /// How many held data records were discarded with it.
        discarded: usize,
        /// `seq_num` of the boundary record.
        seq_num: u64,
    },
    /// The session was closed by the agent or from outside: terminal.
    SessionClosed {
        /// The reason given to `close`, if any.
        reason: Option<String>,
    },
    /// A new agent version is pending for the next run (`run-pending-version`, source "upgrade").
    PendingVersion,
    /// The run was swapped for a newer version mid-turn; the stream continues.
    UpgradeRequired,
}

/// Correlates the records of one `.out` subscription with the send it serves.
#[derive(Debug)]
pub struct Turn {
    input_seq: InputSeq,
    hold: Hold,
    held: VecDeque<(u64, String)>,
    held_bytes: usize,
    deferred: VecDeque<Record>,
    delivered_data: bool,
    finished: bool,
}

impl Turn {
    /// A subscription for a send whose `.in` seq is `input_seq`, holding data as `hold` says.
    pub fn new(input_seq: InputSeq, hold: Hold) -> Turn {
        Turn {
            input_seq,
            hold,
            held: VecDeque::new(),
            held_bytes: 0,
            deferred: VecDeque::new(),
            delivered_data: false,
            finished: false,
        }
    }

    /// Whether this send's boundary has been accepted (or the session closed).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether data is currently being held back.
    pub fn is_holding(&self) -> bool {
        self.hold != Hold::Off
    }

    /// The subscription reached the live edge of the stream: data held only because the
    /// position was unknown is released.
    pub fn on_caught_up(&mut self, out: &mut Vec<Outcome>) {
        if self.hold == Hold::UntilCaughtUp && self.deferred.is_empty() && !self.finished {
            self.release_held(out);
        }
    }

    /// Whether any data record has been delivered.
    pub fn delivered_data(&self) -> bool {
        self.delivered_data
    }

    /// The seq this subscription correlates with, if known.
    pub fn input_seq(&self) -> InputSeq {
        self.input_seq
    }

    /// Feeds one record (already deduplicated by `seq_num`); effects are appended to `out`.
    pub fn on_record(&mut self, record: Record, out: &mut Vec<Outcome>) {
        if self.finished {
            return;
        }
        if !self.deferred.is_empty() {
            self.deferred.push_back(record);
            return;
        }
        let seq_num = record.seq_num;
        match record.kind {
            RecordKind::Data { body } => self.on_data(seq_num, body, out),
            RecordKind::Control(control) => {
                if self.input_seq == InputSeq::Pending && control.kind == ControlKind::TurnComplete
                {
                    self.deferred.push_back(Record {
                        seq_num,
                        timestamp: record.timestamp,
                        kind: RecordKind::Control(control),
                    });
                } else {
                    self.on_control(seq_num, control, out);
                }
            }
            RecordKind::Command { .. } | RecordKind::Skip => {}
        }
    }

    /// The append returned: `Some(seq)` correlates, `None` (no seq in the response) accepts any
    /// boundary. Records deferred behind a boundary are processed now.
    pub fn set_input_seq(&mut self, seq: Option<u64>, out: &mut Vec<Outcome>) {
        self.input_seq = match seq {
            Some(seq) => InputSeq::Known(seq),
            None => InputSeq::Unknown,
        };
        let deferred = core::mem::take(&mut self.deferred);
        for record in deferred {
            self.on_record(record, out);
        }
    }

    fn on_data(&mut self, seq_num: u64, body: String, out: &mut Vec<Outcome>) {
        if self.is_holding() {
            self.held_bytes += body.len();
            self.held.push_back((seq_num, body));
            if self.held_bytes > MAX_HELD_BYTES {
                self.release_held(out);
            }
            return;
        }
        self.deliver(seq_num, body, out);
    }

    fn deliver(&mut self, seq_num: u64, body: String, out: &mut Vec<Outcome>) {
        let first = !self.delivered_data;
        self.delivered_data = true;
        out.push(Outcome::Data {
            body,
            first,
            seq_num,
        });
    }

    fn release_held(&mut self, out: &mut Vec<Outcome>) {
        self.hold = Hold::Off;
        self.held_bytes = 0;
        while let Some((seq_num, body)) = self.held.pop_front() {
            self.deliver(seq_num, body, out);
        }
    }

    fn on_control(&mut self, seq_num: u64, control: Control, out: &mut Vec<Outcome>) {
        match control.kind {
            ControlKind::TurnComplete => self.on_boundary(seq_num, control, out),
            ControlKind::SessionClosed => {
                // A close is terminal whoever's turn it interrupts; held data is not ours to show.
                self.finished = true;
                out.push(Outcome::SessionClosed {
                    reason: control.closed_reason,
                });
            }
            ControlKind::PendingVersion => out.push(Outcome::PendingVersion),
            ControlKind::UpgradeRequired => out.push(Outcome::UpgradeRequired),
            ControlKind::Unknown(_) => {}
        }
    }

    fn on_boundary(&mut self, seq_num: u64, control: Control, out: &mut Vec<Outcome>) {
        if self.is_earlier_boundary(&control) {
            let discarded = self.held.len();
            self.held.clear();
            self.held_bytes = 0;
            self.hold = Hold::Off;
            // An earlier turn that closed the session closes it for us too.
            if control.session_closed {
                self.finished = true;
                out.push(Outcome::SessionClosed {
                    reason: control.closed_reason,
                });
                return;
            }
            out.push(Outcome::SkippedBoundary { discarded, seq_num });
            return;
        }
        self.release_held(out);
        self.finished = true;
        out.push(Outcome::TurnComplete(control));
    }

    fn is_earlier_boundary(&self, control: &Control) -> bool {
        match (self.input_seq, control.session_in_event_id) {
            (InputSeq::Known(seq), Some(consumed)) => consumed < seq,
            // A header-less boundary while data is held is an earlier turn's (the first turn
            // reads nothing from `.in`, so it carries no cursor).
            (InputSeq::Known(_), None) => self.is_holding(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seq: u64, text: &str) -> Record {
        Record {
            seq_num: seq,
            timestamp: 0,
            kind: RecordKind::Data {
                body: format!("{{\"data\":{{\"type\":\"text-delta\",\"delta\":\"{text}\"}}}}"),
            },
        }
    }

    fn boundary(seq: u64, in_id: Option<u64>) -> Record {
        Record {
            seq_num: seq,
            timestamp: 0,
            kind: RecordKind::Control(Control {
                kind: ControlKind::TurnComplete,
                public_access_token: Some(format!("tok{seq}")),
                session_in_event_id: in_id,
                session_in_event_id_raw: in_id.map(|v| v.to_string()),
                session_closed: false,
                closed_reason: None,
                legacy: false,
            }),
        }
    }

    fn delivered(out: &[Outcome]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                Outcome::Data { seq_num, .. } => Some(*seq_num),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn streams_data_and_closes_on_own_boundary() {
        let mut turn = Turn::new(InputSeq::Known(3), Hold::Off);
        let mut out = Vec::new();
        turn.on_record(data(10, "a"), &mut out);
        turn.on_record(data(11, "b"), &mut out);
        turn.on_record(boundary(12, Some(3)), &mut out);
        assert_eq!(delivered(&out), vec![10, 11]);
        assert!(matches!(out[0], Outcome::Data { first: true, .. }));
        assert!(matches!(out[1], Outcome::Data { first: false, .. }));
        assert!(matches!(out[2], Outcome::TurnComplete(_)));
        assert!(turn.is_finished());
        // Nothing after the boundary reaches the consumer.
        turn.on_record(data(13, "c"), &mut out);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn skips_an_earlier_turns_boundary_and_keeps_reading() {
        let mut turn = Turn::new(InputSeq::Known(7), Hold::Off);
        let mut out = Vec::new();
        turn.on_record(boundary(20, Some(6)), &mut out);
        assert_eq!(
            out,
            vec![Outcome::SkippedBoundary {
                discarded: 0,
                seq_num: 20
            }]
        );
        assert!(!turn.is_finished());
        turn.on_record(data(21, "x"), &mut out);
        turn.on_record(boundary(22, Some(7)), &mut out);
        assert!(turn.is_finished());
        assert_eq!(delivered(&out), vec![21]);
    }

    #[test]
    fn header_less_boundary_is_accepted_when_nothing_is_outstanding() {
        let mut turn = Turn::new(InputSeq::Known(0), Hold::Off);
        let mut out = Vec::new();
        turn.on_record(boundary(5, None), &mut out);
        assert!(turn.is_finished());
    }

    #[test]
    fn held_data_of_an_earlier_turn_is_discarded_at_its_boundary() {
        let mut turn = Turn::new(InputSeq::Known(9), Hold::UntilBoundary);
        let mut out = Vec::new();
        turn.on_record(data(30, "old"), &mut out);
        turn.on_record(data(31, "old"), &mut out);
        assert!(out.is_empty(), "held, not delivered");
        turn.on_record(boundary(32, Some(8)), &mut out);
        assert_eq!(
            out,
            vec![Outcome::SkippedBoundary {
                discarded: 2,
                seq_num: 32
            }]
        );
        turn.on_record(data(33, "new"), &mut out);
        turn.on_record(boundary(34, Some(9)), &mut out);
        assert_eq!(delivered(&out), vec![33]);
        assert!(turn.is_finished());
    }

    #[test]
    fn held_data_is_ours_when_the_stopped_turn_never_wrote_a_boundary() {
        let mut turn = Turn::new(InputSeq::Known(9), Hold::UntilBoundary);
        let mut out = Vec::new();
        turn.on_record(data(40, "mine"), &mut out);
        turn.on_record(data(41, "mine"), &mut out);
        turn.on_record(boundary(42, Some(9)), &mut out);
        assert_eq!(delivered(&out), vec![40, 41]);
        assert!(matches!(out.last(), Some(Outcome::TurnComplete(_))));
    }

    #[test]
    fn header_less_boundary_ends_the_hold_as_the_earlier_turns() {
        let mut turn = Turn::new(InputSeq::Known(1), Hold::UntilBoundary);
        let mut out = Vec::new();
        turn.on_record(data(1, "first turn"), &mut out);
        turn.on_record(boundary(2, None), &mut out);
        assert_eq!(
            out,
            vec![Outcome::SkippedBoundary {
                discarded: 1,
                seq_num: 2
            }]
        );
        assert!(!turn.is_holding());
    }

    #[test]
    fn a_boundary_before_the_append_returns_waits_for_its_seq() {
        let mut turn = Turn::new(InputSeq::Pending, Hold::Off);
        let mut out = Vec::new();
        turn.on_record(data(1, "a"), &mut out);
        turn.on_record(boundary(2, Some(4)), &mut out);
        turn.on_record(data(3, "b"), &mut out);
        turn.on_record(boundary(4, Some(5)), &mut out);
        assert_eq!(
            delivered(&out),
            vec![1],
            "data before any boundary streams at once"
        );
        turn.set_input_seq(Some(5), &mut out);
        assert_eq!(delivered(&out), vec![1, 3]);
        assert!(matches!(out[1], Outcome::SkippedBoundary { .. }));
        assert!(turn.is_finished());
    }

    #[test]
    fn no_seq_in_the_append_response_accepts_the_next_boundary() {
        let mut turn = Turn::new(InputSeq::Pending, Hold::Off);
        let mut out = Vec::new();
        turn.on_record(boundary(2, Some(0)), &mut out);
        assert!(out.is_empty());
        turn.set_input_seq(None, &mut out);
        assert!(turn.is_finished());
    }

    #[test]
    fn an_unknown_position_holds_until_caught_up_or_an_earlier_boundary() {
        // A new chat: the first batch is this turn's, caught up at once.
        let mut turn = Turn::new(InputSeq::Known(0), Hold::UntilCaughtUp);
        let mut out = Vec::new();
        turn.on_record(data(0, "mine"), &mut out);
        assert!(out.is_empty());
        turn.on_caught_up(&mut out);
        assert_eq!(delivered(&out), vec![0]);
        turn.on_record(data(1, "more"), &mut out);
        assert_eq!(delivered(&out), vec![0, 1], "live after catching up");

        // An old chat read from the start: the earlier turn is dropped at its boundary.
        let mut turn = Turn::new(InputSeq::Known(4), Hold::UntilCaughtUp);
        let mut out = Vec::new();
        turn.on_record(data(0, "old"), &mut out);
        turn.on_record(boundary(1, Some(3)), &mut out);
        turn.on_record(data(2, "new"), &mut out);
        turn.on_caught_up(&mut out);
        assert_eq!(delivered(&out), vec![2]);
    }

    #[test]
    fn session_closed_is_terminal() {
        let mut turn = Turn::new(InputSeq::Known(2), Hold::UntilBoundary);
        let mut out = Vec::new();
        turn.on_record(data(1, "x"), &mut out);
        turn.on_record(
            Record {
                seq_num: 2,
                timestamp: 0,
                kind: RecordKind::Control(Control {
                    kind: ControlKind::SessionClosed,
                    public_access_token: None,
                    session_in_event_id: None,
                    session_in_event_id_raw: None,
                    session_closed: true,
                    closed_reason: Some("done".into()),
                    legacy: false,
                }),
            },
            &mut out,
        );
        assert_eq!(
            out,
            vec![Outcome::SessionClosed {
                reason: Some("done".into())
            }]
        );
        assert!(turn.is_finished());
    }

    #[test]
    fn held_data_past_the_cap_is_released() {
        let mut turn = Turn::new(InputSeq::Known(2), Hold::UntilBoundary);
        let mut out = Vec::new();
        let big = "x".repeat(MAX_HELD_BYTES / 3);
        turn.on_record(data(1, &big), &mut out);
        turn.on_record(data(2, &big), &mut out);
        assert!(out.is_empty());
        turn.on_record(data(3, &big), &mut out);
        assert_eq!(delivered(&out), vec![1, 2, 3]);
        assert!(!turn.is_holding());
    }
}
