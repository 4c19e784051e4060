//! One emulated Session row: its `.out` log, its `.in` records, its run bookkeeping and the
//! scripted agent's memory. Lock order: `Store` → `Session::state` → `OutLog` (never backwards).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::agent::Memory;
use crate::clock::iso8601;
use crate::outlog::OutLog;
use crate::records::{self, NewRecord};

/// How long an `X-Part-Id` stays an idempotency key.
pub const PART_ID_WINDOW_MS: u64 = 5 * 60 * 1000;

/// One record on `.in`.
#[derive(Debug, Clone)]
pub struct InRecord {
    pub seq: u64,
    pub part_id: String,
    /// The `ChatInputChunk` as sent.
    pub chunk: Value,
    pub at_ms: u64,
    /// The agent has taken it (a stop counts when it aborted a turn or was read while idle).
    pub consumed: bool,
}

impl InRecord {
    pub fn is_stop(&self) -> bool {
        self.chunk.get("kind").and_then(Value::as_str) == Some("stop")
    }
}

/// The run currently attached to the session.
#[derive(Debug, Clone)]
pub struct LiveRun {
    pub id: String,
    /// `/__admin/…/end-run`: exit after the current turn (or now, when idle).
    pub end_requested: bool,
}

/// Mutable session data, behind [`Session::state`].
#[derive(Debug)]
pub struct SessionState {
    pub session_type: String,
    pub trigger_config: Value,
    pub tags: Value,
    pub metadata: Value,
    pub expires_at: Value,
    pub updated_at_ms: u64,
    pub closed_at_ms: Option<u64>,
    pub closed_reason: Option<String>,
    pub in_records: Vec<InRecord>,
    /// `X-Part-Id` → (`.in` seq, first seen at).
    pub part_ids: HashMap<String, (u64, u64)>,
    pub run: Option<LiveRun>,
    /// The newest run's id (kept after it exits, as `currentRunId`).
    pub current_run_id: String,
    pub runs_started: u64,
    pub turn_active: bool,
    pub turns_completed: u64,
    /// `/__admin/…/upgrade`: the next turn emits `upgrade-required` and swaps the run.
    pub upgrade_pending: bool,
    /// With `upgrade_pending`: the new run waits for its deployment, so `pending-version` goes
    /// on `.out` before `upgrade-required`, and the chat is parked (the `pendingVersion` fault).
    pub upgrade_parks: bool,
    pub last_turn_complete_seq: Option<u64>,
    pub agent: Memory,
}

impl SessionState {
    pub fn is_closed(&self) -> bool {
        self.closed_at_ms.is_some()
    }

    /// `session-in-event-id` for a turn boundary, computed like Trigger's router:
    /// `min(highest consumed seq, earliest pending message seq − 1)`; `None` before anything was
    /// read from `.in`.
    pub fn in_event_id(&self) -> Option<u64> {
        let highest = self
            .in_records
            .iter()
            .filter(|r| r.consumed)
            .map(|r| r.seq)
            .max()?;
        let pending = self
            .in_records
            .iter()
            .find(|r| !r.consumed && !r.is_stop())
            .map(|r| r.seq.saturating_sub(1));
        Some(pending.map_or(highest, |p| highest.min(p)))
    }

    /// The first `.in` record the agent has not taken yet.
    pub fn next_unconsumed(&mut self) -> Option<&mut InRecord> {
        self.in_records.iter_mut().find(|r| !r.consumed)
    }

    /// Takes the first pending stop, if any (it aborts the running turn).
    pub fn take_stop(&mut self) -> bool {
        match self
            .in_records
            .iter_mut()
            .find(|r| !r.consumed && r.is_stop())
        {
            Some(stop) => {
                stop.consumed = true;
                true
            }
            None => false,
        }
    }
}

/// A session and everything attached to it.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub external_id: Option<String>,
    pub task_identifier: String,
    pub created_at_ms: u64,
    /// Small per-process number, used in deterministic message ids.
    pub index: u64,
    pub out: OutLog,
    pub open_out_connections: AtomicUsize,
    state: Mutex<SessionState>,
    wake_tx: watch::Sender<u64>,
    killed: AtomicBool,
}

impl Session {
    pub fn new(
        id: String,
        external_id: Option<String>,
        task_identifier: String,
        index: u64,
        now_ms: u64,
        state: SessionState,
    ) -> Session {
        Session {
            id,
            external_id,
            task_identifier,
            created_at_ms: now_ms,
            index,
            out: OutLog::default(),
            open_out_connections: AtomicUsize::new(0),
            state: Mutex::new(state),
            wake_tx: watch::channel(0).0,
            killed: AtomicBool::new(false),
        }
    }

    /// The key faults, logs and token scopes use: the externalId, else the session id.
    pub fn chat_key(&self) -> &str {
        self.external_id.as_deref().unwrap_or(&self.id)
    }

    /// Both names a URL may use for this session.
    pub fn names(&self) -> Vec<&str> {
        let mut names = vec![self.id.as_str()];
        if let Some(ext) = &self.external_id {
            names.push(ext);
        }
        names
    }

    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the run loop and any running turn (new `.in` record, close, end-run, kill).
    pub fn wake(&self) {
        self.wake_tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe_wake(&self) -> watch::Receiver<u64> {
        self.wake_tx.subscribe()
    }

    /// Stops the agent and every `.out` stream of this session for good (admin reset).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Closes the session (idempotent: the first close's time and reason stay). When no turn is
    /// running, a `session-closed` control record goes on `.out` right away; a running turn
    /// stamps its own `turn-complete` instead. Returns whether this call closed it.
    pub fn close(&self, reason: Option<String>, now_ms: u64) -> bool {
        let mut st = self.state();
        if st.is_closed() {
            return false;
        }
        st.closed_at_ms = Some(now_ms);
        st.closed_reason = reason;
        st.updated_at_ms = now_ms;
        if !st.turn_active {
            self.out
                .append(NewRecord::control("session-closed", closed_headers(&st)));
        }
        drop(st);
        self.wake();
        true
    }

    /// The row as `POST /api/v1/sessions` and `GET /api/v1/sessions/{id}` return it.
    pub fn row_json(&self, st: &SessionState) -> Value {
        json!({
            "id": self.id,
            "externalId": self.external_id,
            "type": st.session_type,
            "taskIdentifier": self.task_identifier,
            "triggerConfig": st.trigger_config,
            "currentRunId": st.current_run_id,
            "tags": st.tags,
            "metadata": st.metadata,
            "closedAt": st.closed_at_ms.map(iso8601),
            "closedReason": st.closed_reason,
            "expiresAt": st.expires_at,
            "createdAt": iso8601(self.created_at_ms),
            "updatedAt": iso8601(st.updated_at_ms),
        })
    }
}

/// `session-closed: true` plus the reason, for the close record or a closing turn-complete.
pub fn closed_headers(st: &SessionState) -> Vec<(String, String)> {
    let mut headers = vec![(records::SESSION_CLOSED.to_string(), "true".to_string())];
    if let Some(reason) = &st.closed_reason {
        headers.push((records::SESSION_CLOSED_REASON.to_string(), reason.clone()));
    }
    headers
}
