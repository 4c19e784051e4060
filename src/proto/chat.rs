//! Per-chat state: the token, the `.out` cursor, the turn in flight, and the closed flag.
//!
//! Rules this module owns (each fixes a weakness of the JavaScript transport):
//! - The cursor only moves forward ([`Cursor::advance`]), whether it comes from a record, another
//!   tab or `seedResumeCursor`; a record at or below it is a duplicate and is dropped (W35).
//! - While a turn is in flight, the *persisted* cursor is the one from before the turn, so a
//!   reload replays the whole turn and `resumeStreamIsReplay` holds (W26). In memory the cursor
//!   keeps advancing, so a reconnect in the same tab resumes exactly where it stopped.
//! - An outstanding turn (sent, no boundary seen yet — including one that was stopped) makes
//!   the next subscription hold data until that turn's boundary has passed (see `turn`).

use super::session::{PendingSend, PersistedSession};
#[allow(unused_imports)]
use crate::prelude::*;

/// The `.out` resume cursor: the highest `seq_num` seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor(Option<u64>);

impl Cursor {
    /// A cursor at `seq`, or at the start of the stream.
    pub fn new(seq: Option<u64>) -> Cursor {
        Cursor(seq)
    }

    /// Parses a persisted `lastEventId` (a decimal `seq_num`); anything else is the start.
    pub fn parse(last_event_id: Option<&str>) -> Cursor {
        Cursor(last_event_id.and_then(|s| s.trim().parse::<u64>().ok()))
    }

    /// The highest `seq_num` seen.
    pub fn get(self) -> Option<u64> {
        self.0
    }

    /// Moves to `seq` if it is newer; returns whether it was (false = duplicate or older).
    pub fn advance(&mut self, seq: u64) -> bool {
        match self.0 {
            Some(current) if seq <= current => false,
            _ => {
                self.0 = Some(seq);
                true
            }
        }
    }

    /// The `Last-Event-ID` header value, if any.
    pub fn header_value(self) -> Option<String> {
        self.0.map(super::json::u64_string)
    }
}

/// Everything the transport knows about one chat.
#[derive(Debug, Clone, Default)]
pub struct ChatState {
    /// The session-scoped public access token, once the session exists.
    pub token: Option<String>,
    /// The live cursor (advances on every record).
    pub cursor: Cursor,
    /// The cursor from before the turn in flight; what is persisted while streaming.
    pub turn_start: Option<Cursor>,
    /// The `.in` seq of the last send whose boundary has not been seen.
    pub active_input_seq: Option<u64>,
    /// Whether a turn is streaming (`None`: unknown, e.g. hydrated without the field).
    pub is_streaming: Option<bool>,
    /// Terminal: the session was closed.
    pub closed: bool,
    /// The reason given when the session was closed.
    pub closed_reason: Option<String>,
    /// The highest `.in` seq the agent is known to have consumed (`session-in-event-id` of the
    /// boundaries seen here or reported by another tab).
    pub consumed_input_seq: Option<u64>,
    /// The send not yet acknowledged, kept across reloads (see [`PendingSend`]).
    pub pending_send: Option<PendingSend>,
    /// `pending_send` was loaded from storage and no send of this tab has taken it over: another
    /// tab may be sending it.
    pub pending_loaded: bool,
}

impl ChatState {
    /// State restored from a persisted session (the JS transport's hydration rules: a session
    /// persisted mid-turn resumes from its turn start).
    pub fn from_persisted(p: &PersistedSession) -> ChatState {
        let cursor = Cursor::parse(p.last_event_id.as_deref());
        ChatState {
            token: Some(p.public_access_token.clone()).filter(|t| !t.is_empty()),
            cursor,
            turn_start: (p.is_streaming == Some(true)).then_some(cursor),
            active_input_seq: p.active_input_seq,
            is_streaming: p.is_streaming,
            closed: p.closed,
            closed_reason: p.closed_reason.clone(),
            consumed_input_seq: p.consumed_input_seq,
            pending_send: p.pending_send.clone(),
            pending_loaded: p.pending_send.is_some(),
        }
    }

    /// The state to persist, or `None` before the session has a token.
    pub fn to_persisted(&self) -> Option<PersistedSession> {
        let token = self.token.clone()?;
        let cursor = self.turn_start.unwrap_or(self.cursor);
        Some(PersistedSession {
            public_access_token: token,
            last_event_id: cursor.header_value(),
            active_input_seq: self.active_input_seq,
            is_streaming: self.is_streaming,
            closed: self.closed,
            closed_reason: self.closed_reason.clone(),
            consumed_input_seq: self.consumed_input_seq,
            pending_send: self.pending_send.clone(),
        })
    }

    /// A boundary said the agent consumed `.in` up to `seq`.
    pub fn note_consumed(&mut self, seq: u64) {
        if self.consumed_input_seq.is_none_or(|known| seq > known) {
            self.consumed_input_seq = Some(seq);
        }
    }

    /// The highest `.in` seq a send made now may count as consumed before its own: a stopped
    /// or unfinished turn of this tab is still unanswered input (`adopt`: the seq of the
    /// steering message whose turn the send streams, which is not).
    pub fn consumed_before_send(&self, adopt: Option<u64>) -> Option<u64> {
        match (self.consumed_input_seq, self.active_input_seq) {
            (known, Some(outstanding)) if adopt != Some(outstanding) => {
                known.filter(|k| *k >= outstanding)
            }
            (known, _) => known,
        }
    }

    /// Whether an earlier turn may still be writing to `.out`: a send or resume started now must
    /// hold data until that turn's boundary has gone by.
    pub fn has_outstanding_turn(&self) -> bool {
        self.is_streaming == Some(true) || self.active_input_seq.is_some()
    }

    /// Whether `reconnectToStream` has anything to resume (the JS rule: only a strict
    /// `isStreaming === false`, a closed session or a missing token mean "nothing").
    pub fn may_be_streaming(&self) -> bool {
        self.token.is_some() && !self.closed && self.is_streaming != Some(false)
    }

    /// An append for a new turn was accepted with `.in` seq `seq`; `start` is the cursor from
    /// when the send began (its subscription may already have read past it).
    pub fn begin_turn(&mut self, seq: Option<u64>, start: Cursor) {
        self.active_input_seq = seq;
        self.is_streaming = Some(true);
        self.turn_start = Some(start);
    }

    /// An earlier turn's boundary at `seq` went by while this turn streamed: a reload need not
    /// replay anything before it.
    /// Whether the turn start moved (it is then worth saving).
    pub fn skip_turn_start_to(&mut self, seq: u64) -> bool {
        self.turn_start
            .as_mut()
            .is_some_and(|start| start.advance(seq))
    }

    /// Where a resumed subscription starts reading: the turn start while a turn is in flight
    /// (a resume replays the whole turn), otherwise the cursor.
    pub fn resume_cursor(&self) -> Cursor {
        self.turn_start.unwrap_or(self.cursor)
    }

    /// This chat's turn boundary was accepted; `token` is the refreshed token it carried.
    pub fn complete_turn(&mut self, token: Option<String>) {
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            self.token = Some(token);
        }
        self.active_input_seq = None;
        self.is_streaming = Some(false);
        self.turn_start = None;
    }

    /// A watcher passed this chat's turn boundary: until the next one, resuming and persisting
    /// start here, so a re-attach or a reload replays the next turn whole.
    pub fn pass_boundary(&mut self) {
        self.turn_start = Some(self.cursor);
    }

    /// A stop was sent. The turn's boundary is still to come, so `active_input_seq` stays set:
    /// the next send holds the stopped turn's remaining output back.
    pub fn stop_turn(&mut self) {
        self.is_streaming = Some(false);
        self.turn_start = None;
    }

    /// A stream ended without its boundary (error, settled or abandoned). The turn's fate is
    /// unknown, so it stays outstanding for the next send's hold.
    pub fn abandon_turn(&mut self) {
        self.is_streaming = Some(false);
        self.turn_start = None;
    }

    /// Marks the session closed; returns false when it already was.
    pub fn close(&mut self, reason: Option<String>) -> bool {
        if self.closed {
            return false;
        }
        self.closed = true;
        if reason.is_some() {
            self.closed_reason = reason;
        }
        self.is_streaming = Some(false);
        self.turn_start = None;
        self.active_input_seq = None;
        true
    }

    /// A new session replaced a missing one (404 → `startSession`): the old cursor means nothing.
    pub fn replace_session(&mut self, token: String) {
        // The send that found the session gone is still to be acknowledged (its turn starts
        // in the new session).
        if let Some(send) = self.pending_send.as_mut() {
            send.turn_start = None;
            send.consumed = None;
        }
        *self = ChatState {
            token: Some(token),
            pending_send: self.pending_send.take(),
            pending_loaded: self.pending_loaded,
            ..ChatState::default()
        };
    }

    /// Moves the cursor forward to `seq` (from another tab or `seedResumeCursor`); never back.
    /// Returns whether it moved. A turn in flight from the session start resumes from the new
    /// cursor (else it would replay every earlier turn) unless the input it answers is known:
    /// then its boundary may lie before that cursor, and from the start it is read and held.
    pub fn seed_cursor(&mut self, seq: u64) -> bool {
        let moved = self.cursor.advance(seq);
        if let Some(start) = self.turn_start.as_mut() {
            if start.get().is_none() && self.active_input_seq.is_none() {
                *start = self.cursor;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persisted(last: Option<&str>, streaming: Option<bool>) -> PersistedSession {
        PersistedSession {
            public_access_token: "pat".into(),
            last_event_id: last.map(str::to_owned),
            active_input_seq: Some(4),
            is_streaming: streaming,
            closed: false,
            closed_reason: None,
            consumed_input_seq: None,
            pending_send: None,
        }
    }

    #[test]
    fn cursor_never_moves_backwards() {
        let mut c = Cursor::new(None);
        assert!(c.advance(0));
        assert!(c.advance(5));
        assert!(!c.advance(5), "same seq is a duplicate");
        assert!(!c.advance(3), "older seq is a duplicate");
        assert_eq!(c.get(), Some(5));
        assert_eq!(c.header_value().as_deref(), Some("5"));
        assert_eq!(Cursor::parse(Some("0,1,106")).get(), None);
        assert_eq!(Cursor::parse(Some("42")).get(), Some(42));
    }

    #[test]
    fn a_saved_send_starts_where_it_says_or_at_the_saved_cursor_until_its_session_is_replaced() {
        let load = |send: &str| {
            let json = format!(
                r#"{{"publicAccessToken":"pat","lastEventId":"7","pendingSend":{{"partId":"p","body":"{{}}","source":"submit-message","createdAt":1{send}}}}}"#
            );
            let p = PersistedSession::from_json(&crate::proto::json::Json::parse(&json).unwrap());
            ChatState::from_persisted(&p.unwrap())
        };
        let start = |chat: &ChatState| chat.pending_send.as_ref().unwrap().turn_start;
        assert_eq!(start(&load(r#","turnStart":3"#)), Some(3));
        assert_eq!(
            start(&load(r#","turnStart":null"#)),
            None,
            "the session's start"
        );
        // One that cannot be read: the session's start (read from the cursor, a reply the
        // cursor was seeded past would never be seen to end).
        assert_eq!(start(&load(r#","turnStart":"soon""#)), None);
        // Saved before sends kept their turn start: the state's cursor was it.
        let mut chat = load("");
        assert_eq!(start(&chat), Some(7));
        // An unreadable `reachableSince` is read as "since it was made": its retry window runs
        // (read as never reached, it could be sent again after the server's dedupe forgot it).
        let since = |chat: &ChatState| chat.pending_send.as_ref().unwrap().reachable_since_ms;
        assert_eq!(since(&load(r#","reachableSince":{}"#)), Some(1));
        assert_eq!(since(&load(r#","reachableSince":5"#)), Some(5));
        assert_eq!(since(&load("")), None);
        // A new session (404 → startSession): the send stays, its old `.out` seq means nothing.
        chat.replace_session("new".into());
        let send = chat.pending_send.as_ref().unwrap();
        assert_eq!((send.part_id.as_str(), send.turn_start), ("p", None));
    }

    #[test]
    fn persisted_cursor_stays_at_turn_start_while_streaming() {
        let mut chat = ChatState::from_persisted(&persisted(Some("10"), Some(false)));
        chat.begin_turn(Some(7), chat.cursor);
        chat.cursor.advance(11);
        chat.cursor.advance(12);
        let p = chat.to_persisted().unwrap();
        assert_eq!(p.last_event_id.as_deref(), Some("10"));
        assert_eq!(p.is_streaming, Some(true));
        assert_eq!(p.active_input_seq, Some(7));
        chat.complete_turn(Some("fresh".into()));
        let p = chat.to_persisted().unwrap();
        assert_eq!(p.last_event_id.as_deref(), Some("12"));
        assert_eq!(p.public_access_token, "fresh");
        assert_eq!(p.active_input_seq, None);
        assert_eq!(p.is_streaming, Some(false));
    }

    #[test]
    fn hydrating_mid_turn_resumes_from_the_persisted_turn_start() {
        let mut chat = ChatState::from_persisted(&persisted(Some("10"), Some(true)));
        assert!(chat.may_be_streaming());
        chat.cursor.advance(15);
        assert_eq!(
            chat.to_persisted().unwrap().last_event_id.as_deref(),
            Some("10")
        );
    }

    #[test]
    fn stopped_turn_stays_outstanding_until_its_boundary() {
        let mut chat = ChatState::from_persisted(&persisted(Some("1"), Some(false)));
        chat.begin_turn(Some(2), chat.cursor);
        chat.stop_turn();
        assert!(!chat.may_be_streaming());
        assert!(chat.has_outstanding_turn());
        chat.complete_turn(None);
        assert!(!chat.has_outstanding_turn());
        assert_eq!(
            chat.token.as_deref(),
            Some("pat"),
            "no token in the boundary keeps the old one"
        );
    }

    #[test]
    fn the_turn_start_skips_past_earlier_boundaries_only_forward() {
        let mut chat = ChatState::from_persisted(&persisted(Some("10"), Some(false)));
        chat.begin_turn(Some(3), Cursor::new(Some(10)));
        chat.cursor.advance(20);
        chat.skip_turn_start_to(14);
        chat.skip_turn_start_to(12);
        assert_eq!(chat.resume_cursor().get(), Some(14));
        assert_eq!(
            chat.to_persisted().unwrap().last_event_id.as_deref(),
            Some("14")
        );
        chat.complete_turn(None);
        assert_eq!(chat.resume_cursor().get(), Some(20));
    }

    #[test]
    fn close_is_one_way_and_reported_once() {
        let mut chat = ChatState::from_persisted(&persisted(None, Some(true)));
        assert!(chat.close(Some("user-ended".into())));
        assert!(!chat.close(None));
        assert_eq!(chat.closed_reason.as_deref(), Some("user-ended"));
        assert!(!chat.may_be_streaming());
        assert!(chat.to_persisted().unwrap().closed);
    }

    #[test]
    fn seeding_moves_forward_only() {
        let mut chat = ChatState::from_persisted(&persisted(Some("8"), None));
        assert!(!chat.seed_cursor(3));
        assert!(chat.seed_cursor(9));
        assert_eq!(chat.cursor.get(), Some(9));
    }

    #[test]
    fn a_replaced_session_forgets_the_old_cursor() {
        let mut chat = ChatState::from_persisted(&persisted(Some("8"), Some(true)));
        chat.replace_session("new".into());
        assert_eq!(chat.cursor.get(), None);
        assert_eq!(chat.token.as_deref(), Some("new"));
        assert!(!chat.has_outstanding_turn());
    }
}
