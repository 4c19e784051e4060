//! One subscription's view of `.out`: which records reach the consumer and when the turn is over.
//!
//! Driving contract (client-protocol.mdx, "turn-complete control record"): a turn-complete belongs
//! to *this* send only if its `session-in-event-id` is ≥ the `seq` the send's `.in/append`
//! returned; a lower one is an earlier turn's boundary and is skipped. A boundary without the
//! header (the first turn, started by session create, or a legacy agent) is accepted.
//!
//! Two things the JavaScript transport gets wrong are decided here instead:
//! - **Earlier-turn data never reaches this stream (W11).** `.in` inputs are answered in order,
//!   and a boundary's `session-in-event-id` says which inputs the agent has consumed. A send
//!   with seq `S` can see another turn's data only while some input below `S` has no boundary
//!   yet: a turn this tab stopped, a turn of another tab (perhaps one that crashed mid-turn), an
//!   action. So data is *held* until every input below `S` is known to be consumed (from the
//!   boundaries seen here, or remembered for the chat); an earlier boundary discards what was
//!   held before it, and this send's own boundary releases the rest. Nothing is lost if a
//!   stopped turn never writes its boundary: the hold is released at ours (W12, no manual
//!   `clearSupersedeGate`). A send whose earlier inputs are all known to be answered — the
//!   usual case — streams at once.
//! - **The append and the subscription run in parallel.** `.out` is opened before the append's
//!   `seq` is known, so data waits for it, and a boundary that arrives first waits (with
//!   everything after it) until [`Turn::set_input_seq`] decides whose it is.
//!
//! The machine only sees records newer than the cursor; deduplication by `seq_num` happens
//! before (see [`super::chat::Cursor`]).

use super::records::{Control, ControlKind, Record, RecordKind};
#[allow(unused_imports)]
use crate::prelude::*;
use alloc::collections::VecDeque;

/// Data held back beyond this many bytes is dropped instead of growing without bound; if it
/// turns out to be this send's, it is read again from `.out` ([`Outcome::Reread`]).
pub const MAX_HELD_BYTES: usize = 4 * 1024 * 1024;

/// What a held record costs besides its body (its slot, its allocation): counted so that a
/// flood of tiny records cannot hold hundreds of megabytes under the cap.
pub const HELD_RECORD_COST: usize = 64;

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

/// Whether data may need holding back (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Deliver at once (a resume replays its own turn from its start).
    Off,
    /// A send: hold data until every `.in` input below its seq is known to be consumed.
    /// `consumed` is the highest consumed seq known when the send began.
    BySeq {
        /// The highest `.in` seq known to be consumed, if any.
        consumed: Option<u64>,
    },
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
        /// Its `session-in-event-id`: inputs up to here are consumed.
        consumed: Option<u64>,
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
    /// Held data past [`MAX_HELD_BYTES`] was dropped, and it was this send's after all: read
    /// `.out` again from this seq on (what comes before it was delivered or was not ours).
    Reread(u64),
}

/// Correlates the records of one `.out` subscription with the send it serves.
#[derive(Debug)]
pub struct Turn {
    input_seq: InputSeq,
    /// Whether the seq rule applies (a send); off for a resume.
    by_seq: bool,
    /// The highest `.in` seq known to be consumed.
    consumed: Option<u64>,
    /// `.in` inputs that never get a boundary of their own (this tab's stops): the agent
    /// answers them by ending the turn they stop, or skips them between turns.
    unanswered: Vec<u64>,
    /// Records up to this `.out` seq are read again only to learn what the agent consumed (see
    /// [`Turn::look_back`]).
    lookback: Option<u64>,
    /// Data is currently held (the rule did not clear the stream yet).
    holding: bool,
    held: VecDeque<(u64, String)>,
    held_bytes: usize,
    /// Held data went past the cap from this `.out` seq on and was dropped.
    dropped_from: Option<u64>,
    deferred: VecDeque<Record>,
    /// The `.out` seq of the last record taken in (not deferred, not looked back at).
    taken: Option<u64>,
    delivered_data: bool,
    finished: bool,
}

impl Turn {
    /// A subscription for a send whose `.in` seq is `input_seq`, holding data as `hold` says.
    pub fn new(input_seq: InputSeq, hold: Hold) -> Turn {
        let (by_seq, consumed) = match hold {
            Hold::Off => (false, None),
            Hold::BySeq { consumed } => (true, consumed),
        };
        let mut turn = Turn {
            input_seq,
            by_seq,
            consumed,
            unanswered: Vec::new(),
            lookback: None,
            holding: by_seq,
            held: VecDeque::new(),
            held_bytes: 0,
            dropped_from: None,
            deferred: VecDeque::new(),
            taken: None,
            delivered_data: false,
            finished: false,
        };
        turn.holding = !turn.clear();
        turn
    }

    /// Whether no earlier input can still be writing: data from here on is this send's.
    fn clear(&self) -> bool {
        if !self.by_seq {
            return true;
        }
        match self.input_seq {
            InputSeq::Pending => false,
            InputSeq::Unknown | InputSeq::Known(0) => true,
            InputSeq::Known(seq) => self.consumed.is_some_and(|k| {
                let mut next = k.saturating_add(1);
                while next < seq && self.unanswered.contains(&next) {
                    next += 1;
                }
                next >= seq
            }),
        }
    }

    /// The send knows nothing of consumed inputs and its stream starts a little before the
    /// chat's cursor `floor`, where the last boundary usually is: records up to `floor` only
    /// tell what the agent consumed (never this send's data, never its boundary). If they tell
    /// nothing, data is held as before.
    pub fn look_back(&mut self, floor: u64) {
        self.lookback = Some(floor);
    }

    /// The `.out` stream was numbered again from the start: its records are all new, none is
    /// read back.
    pub fn forget_look_back(&mut self) {
        if self.lookback.take().is_some() {
            self.holding = !self.clear();
        }
    }

    /// Whether `seq` is known to be an input no boundary will answer.
    pub fn is_unanswered(&self, seq: u64) -> bool {
        self.unanswered.contains(&seq)
    }

    /// `seq` is an input that no boundary will answer (a stop): it does not hold data back.
    pub fn add_unanswered(&mut self, seq: u64, out: &mut Vec<Outcome>) {
        self.unanswered.push(seq);
        if !self.finished {
            self.recheck(out);
        }
    }

    /// Releases what is held once the rule clears the stream.
    fn recheck(&mut self, out: &mut Vec<Outcome>) {
        if self.holding && self.clear() && self.deferred.is_empty() {
            self.release_held(out);
        }
    }

    /// The session was replaced (`startSession` after a 404) and is read again from its start.
    /// What was known of consumed inputs came from the old session, and what is held or
    /// deferred are its records: forget both. (`startSession` may well return the same session —
    /// it is idempotent — and its earlier turns then replay; they must not pass as this send's.)
    /// Data already delivered stays delivered.
    pub fn restart_session(&mut self) {
        self.consumed = None;
        self.lookback = None;
        self.unanswered.clear();
        self.drop_held();
        self.dropped_from = None;
        self.deferred.clear();
        self.holding = self.by_seq && !self.delivered_data && !self.clear();
    }

    /// Whether this send's boundary has been accepted (or the session closed).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether data is currently held back.
    pub fn is_holding(&self) -> bool {
        self.holding
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
        if let Some(floor) = self.lookback {
            if record.seq_num <= floor {
                if let RecordKind::Control(c) = &record.kind {
                    match (&c.kind, c.session_in_event_id) {
                        (ControlKind::TurnComplete, Some(k)) => {
                            self.consumed = Some(self.consumed.map_or(k, |known| known.max(k)));
                            out.push(Outcome::SkippedBoundary {
                                discarded: 0,
                                seq_num: record.seq_num,
                                consumed: Some(k),
                            });
                        }
                        // The agent writes the prior wire shape, whose boundaries never say
                        // what they consumed: held, the reply would wait for its end. Its
                        // send streams at once and ends at the next boundary (as the chat's
                        // `legacy` flag has it, which a new page does not know).
                        (ControlKind::TurnComplete, None) if c.legacy => self.by_seq = false,
                        _ => {}
                    }
                }
                return;
            }
            self.lookback = None;
            self.holding = !self.clear();
        }
        if !self.deferred.is_empty() {
            self.deferred.push_back(record);
            return;
        }
        let seq_num = record.seq_num;
        if self.input_seq == InputSeq::Pending
            && matches!(&record.kind, RecordKind::Control(c) if c.kind == ControlKind::TurnComplete)
        {
            self.deferred.push_back(record);
            return;
        }
        self.taken = Some(seq_num);
        match record.kind {
            RecordKind::Data { body } => self.on_data(seq_num, body, out),
            RecordKind::Control(control) => self.on_control(seq_num, control, out),
            RecordKind::Command { .. } | RecordKind::Skip => {}
        }
    }

    /// The `.out` seq of the last record this turn took in: the chat's cursor may move up to
    /// it, but not past it to records deferred behind a boundary, which the boundary may turn
    /// out to end this turn before (they are then the next turn's).
    pub fn taken(&self) -> Option<u64> {
        self.taken
    }

    /// Whether records wait behind a boundary for [`Turn::set_input_seq`] (the reader pauses:
    /// they are kept in full, unlike held data, so they must stay few).
    pub fn awaits_input_seq(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// The append returned: `Some(seq)` correlates, `None` (no seq in the response) accepts any
    /// boundary. Records deferred behind a boundary are processed now.
    pub fn set_input_seq(&mut self, seq: Option<u64>, out: &mut Vec<Outcome>) {
        self.input_seq = match seq {
            Some(seq) => InputSeq::Known(seq),
            None => InputSeq::Unknown,
        };
        let deferred = core::mem::take(&mut self.deferred);
        let taken = self.taken;
        for record in deferred {
            self.on_record(record, out);
            if let Some(Outcome::Reread(_)) = out.last() {
                // Read again from before the boundary: what came after it is read again too,
                // and the chat's cursor stays before it.
                self.taken = taken;
                self.deferred.clear();
                return;
            }
        }
        if !self.finished {
            self.recheck(out);
        }
    }

    fn on_data(&mut self, seq_num: u64, body: String, out: &mut Vec<Outcome>) {
        if self.is_holding() {
            if self.dropped_from.is_some() {
                return;
            }
            self.held_bytes += body.len() + HELD_RECORD_COST;
            self.held.push_back((seq_num, body));
            if self.held_bytes > MAX_HELD_BYTES {
                self.dropped_from = self.held.front().map(|h| h.0);
                self.drop_held();
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

    /// What is held is this send's. Returns `false` if it was dropped and is read again.
    fn release_held(&mut self, out: &mut Vec<Outcome>) -> bool {
        self.holding = false;
        self.held_bytes = 0;
        if let Some(from) = self.dropped_from.take() {
            out.push(Outcome::Reread(from));
            return false;
        }
        while let Some((seq_num, body)) = self.held.pop_front() {
            self.deliver(seq_num, body, out);
        }
        true
    }

    fn drop_held(&mut self) {
        self.held.clear();
        self.held_bytes = 0;
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
        if let Some(consumed) = control.session_in_event_id {
            self.consumed = Some(self.consumed.map_or(consumed, |k| k.max(consumed)));
        }
        if self.is_earlier_boundary(&control) {
            // What was held so far belongs to that earlier turn (or one before it).
            let discarded = self.held.len();
            self.drop_held();
            self.dropped_from = None;
            // An earlier turn that closed the session closes it for us too.
            if control.session_closed {
                self.finished = true;
                out.push(Outcome::SessionClosed {
                    reason: control.closed_reason,
                });
                return;
            }
            out.push(Outcome::SkippedBoundary {
                discarded,
                seq_num,
                consumed: control.session_in_event_id,
            });
            self.holding = !self.clear();
            return;
        }
        // (Data dropped past the cap is read again first; this boundary comes again after it.)
        if self.release_held(out) {
            self.finished = true;
            out.push(Outcome::TurnComplete(control));
        }
    }

    fn is_earlier_boundary(&self, control: &Control) -> bool {
        match (self.input_seq, control.session_in_event_id) {
            (InputSeq::Known(seq), Some(consumed)) => consumed < seq,
            // A header-less boundary while data is held is an earlier turn's (the first turn
            // reads nothing from `.in`, so it carries no cursor), unless the agent writes the
            // prior wire shape, whose boundaries never carry one: then it is ours.
            (InputSeq::Known(_), None) => self.is_holding() && !control.legacy,
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

    #[test]
    fn a_boundary_in_the_prior_wire_shape_is_never_an_earlier_turns() {
        // Nothing known of consumed inputs (a reload): the send holds, and its own legacy
        // boundary, which carries no cursor, releases what it held.
        let mut turn = Turn::new(InputSeq::Known(2), Hold::BySeq { consumed: None });
        let mut out = Vec::new();
        turn.on_record(data(5, "a"), &mut out);
        assert!(delivered(&out).is_empty());
        let mut end = boundary(6, None);
        if let RecordKind::Control(c) = &mut end.kind {
            c.legacy = true;
        }
        turn.on_record(end, &mut out);
        assert_eq!(delivered(&out), vec![5]);
        assert!(matches!(out.last(), Some(Outcome::TurnComplete(_))));
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
                seq_num: 20,
                consumed: Some(6)
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
        let mut turn = Turn::new(InputSeq::Known(9), Hold::BySeq { consumed: Some(7) });
        let mut out = Vec::new();
        turn.on_record(data(30, "old"), &mut out);
        turn.on_record(data(31, "old"), &mut out);
        assert!(out.is_empty(), "held, not delivered");
        turn.on_record(boundary(32, Some(8)), &mut out);
        assert_eq!(
            out,
            vec![Outcome::SkippedBoundary {
                discarded: 2,
                seq_num: 32,
                consumed: Some(8)
            }]
        );
        turn.on_record(data(33, "new"), &mut out);
        turn.on_record(boundary(34, Some(9)), &mut out);
        assert_eq!(delivered(&out), vec![33]);
        assert!(turn.is_finished());
    }

    #[test]
    fn a_replaced_session_forgets_the_old_sessions_consumed_inputs() {
        // Held for input 2 with input 1 known consumed; then the session is replaced and read
        // from its start: it turns out to be the same session (startSession is idempotent), so
        // turns 0 and 1 replay. Neither may pass as ours.
        let mut turn = Turn::new(InputSeq::Pending, Hold::BySeq { consumed: Some(1) });
        let mut out = Vec::new();
        turn.on_record(data(20, "stale"), &mut out);
        turn.restart_session();
        turn.on_record(data(1, "one"), &mut out);
        turn.on_record(boundary(2, Some(0)), &mut out);
        turn.on_record(data(3, "two"), &mut out);
        turn.on_record(boundary(4, Some(1)), &mut out);
        turn.set_input_seq(Some(2), &mut out);
        turn.on_record(data(5, "three"), &mut out);
        turn.on_record(boundary(6, Some(2)), &mut out);
        assert_eq!(delivered(&out), vec![5]);
        assert!(matches!(out.last(), Some(Outcome::TurnComplete(_))));
        // A new session (the send is its input 0) streams at once.
        let mut turn = Turn::new(InputSeq::Pending, Hold::BySeq { consumed: Some(1) });
        let mut out = Vec::new();
        turn.restart_session();
        turn.set_input_seq(Some(0), &mut out);
        turn.on_record(data(1, "fresh"), &mut out);
        assert_eq!(delivered(&out), vec![1]);
    }

    #[test]
    fn held_data_is_ours_when_the_stopped_turn_never_wrote_a_boundary() {
        let mut turn = Turn::new(InputSeq::Known(9), Hold::BySeq { consumed: Some(7) });
        let mut out = Vec::new();
        turn.on_record(data(40, "mine"), &mut out);
        turn.on_record(data(41, "mine"), &mut out);
        turn.on_record(boundary(42, Some(9)), &mut out);
        assert_eq!(delivered(&out), vec![40, 41]);
        assert!(matches!(out.last(), Some(Outcome::TurnComplete(_))));
    }

    #[test]
    fn a_header_less_boundary_is_an_earlier_turns_but_input_0_is_still_unanswered() {
        let mut turn = Turn::new(InputSeq::Known(1), Hold::BySeq { consumed: None });
        let mut out = Vec::new();
        turn.on_record(data(1, "first turn"), &mut out);
        turn.on_record(boundary(2, None), &mut out);
        assert_eq!(
            out,
            vec![Outcome::SkippedBoundary {
                discarded: 1,
                seq_num: 2,
                consumed: None
            }]
        );
        // The first turn (session create) reads no input; input 0 still has no boundary.
        assert!(turn.is_holding());
        turn.on_record(data(3, "input 0's answer"), &mut out);
        turn.on_record(boundary(4, Some(0)), &mut out);
        assert!(!turn.is_holding());
        turn.on_record(data(5, "mine"), &mut out);
        assert_eq!(delivered(&out), vec![5]);
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
    fn a_send_streams_at_once_when_every_earlier_input_is_answered() {
        // The first input of a chat, or one right after the last consumed: no hold.
        for (seq, consumed) in [(0, None), (5, Some(4)), (5, Some(9))] {
            let mut turn = Turn::new(InputSeq::Known(seq), Hold::BySeq { consumed });
            let mut out = Vec::new();
            turn.on_record(data(1, "mine"), &mut out);
            assert_eq!(delivered(&out), vec![1], "seq {seq}, consumed {consumed:?}");
        }
    }

    #[test]
    fn stops_between_the_consumed_input_and_the_send_hold_nothing() {
        let mut turn = Turn::new(InputSeq::Known(6), Hold::BySeq { consumed: Some(2) });
        let mut out = Vec::new();
        turn.on_record(data(1, "held"), &mut out);
        assert!(out.is_empty());
        turn.add_unanswered(4, &mut out);
        assert!(out.is_empty(), "3 and 5 are still unanswered");
        turn.add_unanswered(3, &mut out);
        turn.add_unanswered(5, &mut out);
        assert_eq!(delivered(&out), vec![1]);
    }

    #[test]
    fn a_new_session_forgets_the_old_ones_stops() {
        // `.in` seqs start again in a new session: an old stop's seq may be a real input there.
        let mut turn = Turn::new(InputSeq::Known(3), Hold::BySeq { consumed: Some(1) });
        let mut out = Vec::new();
        turn.add_unanswered(2, &mut out);
        turn.restart_session();
        assert!(!turn.is_unanswered(2));
        turn.on_record(data(1, "old"), &mut out);
        assert!(
            delivered(&out).is_empty(),
            "held: nothing is known of the new session"
        );
    }

    #[test]
    fn a_huge_session_in_event_id_never_overflows() {
        // The largest seq a header can carry: u64::MAX + 1 would trap the wasm module.
        let mut turn = Turn::new(
            InputSeq::Pending,
            Hold::BySeq {
                consumed: Some(u64::MAX),
            },
        );
        let mut out = Vec::new();
        turn.add_unanswered(u64::MAX, &mut out);
        turn.set_input_seq(Some(5), &mut out);
        turn.on_record(data(1, "mine"), &mut out);
        assert_eq!(delivered(&out), vec![1]);
    }

    #[test]
    fn data_waits_for_the_appends_seq_then_for_earlier_inputs() {
        // A tab that knows nothing of the chat (a crashed owner's turn may be in flight).
        let mut turn = Turn::new(InputSeq::Pending, Hold::BySeq { consumed: None });
        let mut out = Vec::new();
        turn.on_record(data(0, "their turn"), &mut out);
        turn.set_input_seq(Some(1), &mut out);
        assert!(out.is_empty(), "input 0 has no boundary yet");
        turn.on_record(data(1, "their turn"), &mut out);
        turn.on_record(boundary(2, Some(0)), &mut out);
        assert_eq!(
            out,
            vec![Outcome::SkippedBoundary {
                discarded: 2,
                seq_num: 2,
                consumed: Some(0)
            }]
        );
        turn.on_record(data(3, "mine"), &mut out);
        assert_eq!(delivered(&out), vec![3], "live once input 0 is answered");
        // A send whose earlier input is answered streams as soon as its seq is known.
        let mut turn = Turn::new(InputSeq::Pending, Hold::BySeq { consumed: Some(3) });
        let mut out = Vec::new();
        turn.on_record(data(7, "mine"), &mut out);
        assert!(out.is_empty());
        turn.set_input_seq(Some(4), &mut out);
        assert_eq!(delivered(&out), vec![7]);
    }

    #[test]
    fn session_closed_is_terminal() {
        let mut turn = Turn::new(InputSeq::Known(2), Hold::BySeq { consumed: Some(0) });
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

    /// Four records of a third of the cap each, from `first` on: past the cap.
    fn past_the_cap(turn: &mut Turn, first: u64, out: &mut Vec<Outcome>) {
        let big = "x".repeat(MAX_HELD_BYTES / 3);
        for seq in first..first + 4 {
            turn.on_record(data(seq, &big), out);
        }
    }

    #[test]
    fn held_data_past_the_cap_is_dropped_and_read_again_once_it_proves_ours() {
        let mut turn = Turn::new(InputSeq::Known(2), Hold::BySeq { consumed: Some(0) });
        let mut out = Vec::new();
        past_the_cap(&mut turn, 1, &mut out);
        assert!(out.is_empty());
        assert!(turn.held.is_empty(), "nothing is kept past the cap");
        turn.on_record(boundary(5, Some(2)), &mut out);
        assert_eq!(out, vec![Outcome::Reread(1)]);
        assert!(!turn.is_finished() && !turn.is_holding());
        // Read again from seq 1, the records are delivered and the boundary ends the turn.
        out.clear();
        past_the_cap(&mut turn, 1, &mut out);
        turn.on_record(boundary(5, Some(2)), &mut out);
        assert_eq!(delivered(&out), vec![1, 2, 3, 4]);
        assert!(matches!(out.last(), Some(Outcome::TurnComplete(_))));
        assert!(turn.is_finished());
    }

    #[test]
    fn held_data_past_the_cap_that_was_an_earlier_turns_is_never_shown() {
        let mut turn = Turn::new(InputSeq::Known(2), Hold::BySeq { consumed: Some(0) });
        let mut out = Vec::new();
        past_the_cap(&mut turn, 1, &mut out);
        // The first turn's boundary carries no cursor: still an earlier turn's.
        turn.on_record(boundary(5, None), &mut out);
        turn.on_record(data(6, "old"), &mut out);
        turn.on_record(boundary(7, Some(1)), &mut out);
        turn.on_record(data(8, "mine"), &mut out);
        turn.on_record(boundary(9, Some(2)), &mut out);
        assert!(!out.iter().any(|o| matches!(o, Outcome::Reread(_))));
        assert_eq!(delivered(&out), vec![8]);
        assert!(turn.is_finished());
    }

    #[test]
    fn held_data_past_the_cap_is_read_again_when_the_inputs_before_prove_consumed() {
        let mut turn = Turn::new(InputSeq::Pending, Hold::BySeq { consumed: Some(0) });
        let mut out = Vec::new();
        past_the_cap(&mut turn, 3, &mut out);
        assert!(out.is_empty());
        turn.set_input_seq(Some(1), &mut out);
        assert_eq!(out, vec![Outcome::Reread(3)]);
    }

    #[test]
    fn a_deferred_boundary_that_proves_dropped_data_ours_replays_nothing_after_it() {
        let mut turn = Turn::new(InputSeq::Pending, Hold::BySeq { consumed: Some(0) });
        let mut out = Vec::new();
        past_the_cap(&mut turn, 1, &mut out);
        // The append is slow: its boundary waits, and the next turn's records behind it.
        turn.on_record(boundary(5, Some(1)), &mut out);
        turn.on_record(data(6, "next turn"), &mut out);
        turn.on_record(boundary(7, Some(2)), &mut out);
        assert!(out.is_empty());
        turn.set_input_seq(Some(1), &mut out);
        assert_eq!(out, vec![Outcome::Reread(1)]);
        assert_eq!(
            turn.taken(),
            Some(4),
            "the cursor stays before the boundary"
        );
        assert!(!turn.is_finished() && !turn.awaits_input_seq());
        // Read again: the reply, then its boundary.
        out.clear();
        past_the_cap(&mut turn, 1, &mut out);
        turn.on_record(boundary(5, Some(1)), &mut out);
        assert_eq!(delivered(&out), vec![1, 2, 3, 4]);
        assert!(turn.is_finished());
    }

    #[test]
    fn tiny_held_records_count_what_they_cost_not_just_their_bodies() {
        let mut turn = Turn::new(InputSeq::Known(2), Hold::BySeq { consumed: Some(0) });
        let mut out = Vec::new();
        let most = (MAX_HELD_BYTES / HELD_RECORD_COST + 1) as u64;
        let mut seq = 0;
        while turn.dropped_from.is_none() && seq < 4_000_000 {
            seq += 1;
            turn.on_record(data(seq, ""), &mut out);
        }
        assert!(seq <= most, "dropped after {seq} records, not ~4M");
        for _ in 0..1000 {
            seq += 1;
            turn.on_record(data(seq, ""), &mut out);
        }
        assert!(out.is_empty() && turn.held.is_empty() && turn.is_holding());
    }
}
