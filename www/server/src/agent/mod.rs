//! The emulated runs of a session. A run reads `.in` in arrival order: a message starts a turn,
//! a stop aborts the running turn (or is a no-op between turns). With nothing to do for
//! `--run-idle-timeout-ms` the run exits; the next append starts a continuation run on the same
//! session, and `seq_num` simply continues (client-protocol.mdx "Continuations").

mod script;
mod turn;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

pub use script::{message_text, plan, split_deltas, Pacing, Plan, SLOW_DELTAS, SLOW_INTERVAL_MS};

use crate::ids;
use crate::session::{LiveRun, Session, SessionState};
use crate::store::Store;

/// A tool call waiting for its approval.
#[derive(Debug, Clone)]
pub struct PendingTool {
    pub city: String,
}

/// What the scripted agent remembers across turns (and runs) of one session.
#[derive(Debug, Default)]
pub struct Memory {
    pub last_user_text: Option<String>,
    pub tools: HashMap<String, PendingTool>,
    /// Counter for message, text-part, tool-call and approval ids.
    pub next_id: u64,
}

/// How a run starts.
#[derive(Debug)]
pub enum Boot {
    /// Session create with `basePayload.trigger: "submit-message"`: answer it first.
    FirstTurn(Value),
    /// Preload or continuation: wait for `.in`.
    Idle,
}

/// Starts a run task for `session` (the caller has already recorded it in `state.run`).
pub fn spawn_run(store: Arc<Store>, session: Arc<Session>, boot: Boot) {
    tokio::spawn(run_loop(store, session, boot));
}

/// Attaches a continuation run if none is live; the caller spawns it after unlocking.
pub fn attach_continuation(st: &mut SessionState) -> bool {
    if st.run.is_some() || st.is_closed() {
        return false;
    }
    let id = ids::run_id();
    st.run = Some(LiveRun {
        id: id.clone(),
        end_requested: false,
    });
    st.current_run_id = id;
    st.runs_started += 1;
    true
}

enum Next {
    Turn(Value),
    Skip,
    Wait,
    Exit,
}

async fn run_loop(store: Arc<Store>, session: Arc<Session>, boot: Boot) {
    // Capped (~49 days) so the deadline arithmetic cannot overflow.
    let idle = Duration::from_millis(store.config.run_idle_timeout_ms.min(u32::MAX as u64));
    let mut wake = session.subscribe_wake();
    if let Boot::FirstTurn(payload) = boot {
        landed(&store, &session, &mut wake).await;
        let start = {
            let mut st = session.state();
            let go = !st.is_closed();
            st.turn_active = go;
            go
        };
        if start {
            turn::run_turn(&store, &session, payload).await;
        }
    }
    let mut deadline = Instant::now() + idle;
    loop {
        if session.is_killed() {
            return;
        }
        if store.parked(session.chat_key()) {
            // Nothing is taken from `.in` until the deployment lands; then the run goes on
            // (unless it was closed, ended or killed meanwhile: the step below sees to that).
            landed(&store, &session, &mut wake).await;
            deadline = Instant::now() + idle;
        }
        let next = {
            let mut st = session.state();
            next_step(&mut st, Instant::now() >= deadline)
        };
        match next {
            Next::Exit => {
                // Records that arrived while an end-run was pending still get an answer.
                let restart = {
                    let mut st = session.state();
                    st.next_unconsumed().is_some() && attach_continuation(&mut st)
                };
                if restart && !session.is_killed() {
                    spawn_run(store.clone(), session.clone(), Boot::Idle);
                }
                return;
            }
            Next::Skip => deadline = Instant::now() + idle,
            Next::Turn(payload) => {
                turn::run_turn(&store, &session, payload).await;
                deadline = Instant::now() + idle;
            }
            Next::Wait => {
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = sleep_until(deadline) => {}
                }
            }
        }
    }
}

/// Waits while the chat's run is parked for its deployment (the `pendingVersion` fault; a fault
/// patch wakes the session). `false` when it was killed, closed or ended meanwhile.
pub(crate) async fn landed(
    store: &Store,
    session: &Session,
    wake: &mut watch::Receiver<u64>,
) -> bool {
    loop {
        if session.is_killed() {
            return false;
        }
        if !store.parked(session.chat_key()) {
            return true;
        }
        {
            let st = session.state();
            if st.is_closed() || st.run.as_ref().is_some_and(|r| r.end_requested) {
                return false;
            }
        }
        if wake.changed().await.is_err() {
            return false;
        }
    }
}

/// One decision of the run loop, under the session lock.
fn next_step(st: &mut SessionState, idle_expired: bool) -> Next {
    let ending = st.is_closed() || st.run.as_ref().is_none_or(|r| r.end_requested);
    if ending {
        st.run = None;
        return Next::Exit;
    }
    let Some(record) = st.next_unconsumed() else {
        if idle_expired {
            st.run = None;
            return Next::Exit;
        }
        return Next::Wait;
    };
    record.consumed = true;
    if record.is_stop() {
        return Next::Skip;
    }
    let payload = record.chunk.get("payload").cloned().unwrap_or(Value::Null);
    st.turn_active = true;
    Next::Turn(payload)
}
