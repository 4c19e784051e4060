//! The emulated environment: sessions by id and by externalId, per-chat faults and request logs,
//! token minting with the environment's secret key, and the `.in` rate-limit window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::agent::{self, Boot, Memory};
use crate::clock::now_ms;
use crate::config::Config;
use crate::faults::FaultSet;
use crate::ids;
use crate::jwt;
use crate::reqlog::{self, LoggedRequest};
use crate::session::{LiveRun, Session, SessionState};

/// Appends allowed per window, environment-wide (generous, like the real default).
pub const RATE_LIMIT: u64 = 1_000_000;
/// Length of a rate-limit window.
pub const RATE_WINDOW_MS: u64 = 60_000;

/// What a chat has besides its session (it may exist before the session does).
#[derive(Debug, Default)]
pub struct ChatAux {
    pub faults: FaultSet,
    pub log: VecDeque<LoggedRequest>,
}

/// `POST /api/v1/sessions` input, validated.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub session_type: String,
    pub external_id: Option<String>,
    pub task_identifier: String,
    pub trigger_config: Value,
    pub tags: Value,
    pub metadata: Value,
    pub expires_at: Value,
}

/// Result of an idempotent create.
#[derive(Debug)]
pub enum CreateOutcome {
    Created(Arc<Session>),
    Cached(Arc<Session>),
}

/// Why a create was refused.
#[derive(Debug)]
pub enum CreateError {
    /// The (taskIdentifier, externalId) session exists and is closed (409).
    Closed { reason: Option<String> },
    /// The externalId belongs to a session of another task (409).
    OtherTask { task_identifier: String },
}

/// Rate-limit headers of an append.
#[derive(Debug, Clone, Copy)]
pub struct RateInfo {
    pub limit: u64,
    pub remaining: u64,
    pub reset_ms: u64,
    pub allowed: bool,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, Arc<Session>>,
    by_external: HashMap<String, String>,
    chats: HashMap<String, ChatAux>,
    next_index: u64,
    rate_window_start_ms: u64,
    rate_count: u64,
}

/// The whole emulated environment.
#[derive(Debug)]
pub struct Store {
    pub config: Arc<Config>,
    inner: Mutex<Inner>,
}

impl Store {
    pub fn new(config: Arc<Config>) -> Arc<Store> {
        Arc::new(Store {
            config,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A session by `session_…` id or by externalId.
    pub fn find(&self, id_or_external: &str) -> Option<Arc<Session>> {
        let inner = self.lock();
        let id = inner
            .by_external
            .get(id_or_external)
            .map_or(id_or_external, String::as_str);
        inner.sessions.get(id).cloned()
    }

    /// The chat key a URL name refers to (the externalId when the session is known).
    pub fn chat_key(&self, id_or_external: &str) -> String {
        self.find(id_or_external)
            .map_or_else(|| id_or_external.to_string(), |s| s.chat_key().to_string())
    }

    /// Runs `f` on a chat's faults and log (created on first use).
    pub fn with_chat<R>(&self, chat_key: &str, f: impl FnOnce(&mut ChatAux) -> R) -> R {
        let mut inner = self.lock();
        f(inner.chats.entry(chat_key.to_string()).or_default())
    }

    /// A copy of a chat's faults.
    pub fn faults(&self, chat_key: &str) -> FaultSet {
        let inner = self.lock();
        inner
            .chats
            .get(chat_key)
            .map(|c| c.faults.clone())
            .unwrap_or_default()
    }

    /// Whether the chat's run waits for its deployment (the `pendingVersion` fault).
    pub fn parked(&self, chat_key: &str) -> bool {
        let inner = self.lock();
        inner
            .chats
            .get(chat_key)
            .is_some_and(|c| c.faults.pending_version == Some(true))
    }

    pub fn log_request(&self, chat_key: &str, entry: LoggedRequest) {
        self.with_chat(chat_key, |chat| reqlog::push(&mut chat.log, entry));
    }

    /// A session-scoped token (`read:`/`write:sessions:{chat}`), with the chat's TTL fault.
    pub fn mint_session_token(&self, chat_key: &str) -> String {
        let ttl = self
            .faults(chat_key)
            .token_ttl_seconds
            .unwrap_or(self.config.token_ttl_seconds);
        jwt::mint(
            &self.config.secret_key,
            jwt::EMULATOR_ENV_ID,
            jwt::session_scopes(chat_key),
            ttl,
            now_ms(),
        )
    }

    /// The run-scoped token real Trigger puts in `x-trigger-jwt` (useless for sessions).
    pub fn mint_run_token(&self, run_id: &str) -> String {
        jwt::mint(
            &self.config.secret_key,
            jwt::EMULATOR_ENV_ID,
            vec![
                format!("read:runs:{run_id}"),
                format!("write:inputStreams:{run_id}"),
            ],
            self.config.token_ttl_seconds,
            now_ms(),
        )
    }

    /// Counts an append against the environment's window.
    pub fn rate_check(&self, now: u64) -> RateInfo {
        let mut inner = self.lock();
        if now >= inner.rate_window_start_ms + RATE_WINDOW_MS {
            inner.rate_window_start_ms = now;
            inner.rate_count = 0;
        }
        let allowed = inner.rate_count < RATE_LIMIT;
        if allowed {
            inner.rate_count += 1;
        }
        RateInfo {
            limit: RATE_LIMIT,
            remaining: RATE_LIMIT - inner.rate_count,
            reset_ms: inner.rate_window_start_ms + RATE_WINDOW_MS,
            allowed,
        }
    }

    /// Idempotent on (taskIdentifier, externalId): creates the row and triggers its first run,
    /// or returns the live row with the write-through fields updated.
    pub fn create_or_get(
        self: &Arc<Self>,
        spec: CreateSpec,
        now: u64,
    ) -> Result<CreateOutcome, CreateError> {
        let mut inner = self.lock();
        if let Some(ext) = &spec.external_id {
            if let Some(session) = inner
                .by_external
                .get(ext)
                .and_then(|id| inner.sessions.get(id))
                .cloned()
            {
                if session.task_identifier != spec.task_identifier {
                    return Err(CreateError::OtherTask {
                        task_identifier: session.task_identifier.clone(),
                    });
                }
                let mut st = session.state();
                if st.is_closed() {
                    return Err(CreateError::Closed {
                        reason: st.closed_reason.clone(),
                    });
                }
                st.trigger_config = spec.trigger_config;
                st.tags = spec.tags;
                st.metadata = spec.metadata;
                st.expires_at = spec.expires_at;
                st.updated_at_ms = now;
                drop(st);
                return Ok(CreateOutcome::Cached(session));
            }
        }
        inner.next_index += 1;
        let run_id = ids::run_id();
        let base_payload = spec
            .trigger_config
            .get("basePayload")
            .cloned()
            .unwrap_or(Value::Null);
        let state = SessionState {
            session_type: spec.session_type,
            trigger_config: spec.trigger_config,
            tags: spec.tags,
            metadata: spec.metadata,
            expires_at: spec.expires_at,
            updated_at_ms: now,
            closed_at_ms: None,
            closed_reason: None,
            in_records: Vec::new(),
            part_ids: HashMap::new(),
            run: Some(LiveRun {
                id: run_id.clone(),
                end_requested: false,
            }),
            current_run_id: run_id,
            runs_started: 1,
            turn_active: false,
            turns_completed: 0,
            upgrade_pending: false,
            upgrade_parks: false,
            last_turn_complete_seq: None,
            agent: Memory::default(),
        };
        let session = Arc::new(Session::new(
            ids::session_id(),
            spec.external_id.clone(),
            spec.task_identifier,
            inner.next_index,
            now,
            state,
        ));
        inner.sessions.insert(session.id.clone(), session.clone());
        if let Some(ext) = spec.external_id {
            inner.by_external.insert(ext, session.id.clone());
        }
        drop(inner);
        let submits = base_payload.get("trigger").and_then(Value::as_str) == Some("submit-message")
            && base_payload.get("message").is_some_and(Value::is_object);
        let boot = if submits {
            Boot::FirstTurn(base_payload)
        } else {
            Boot::Idle
        };
        agent::spawn_run(self.clone(), session.clone(), boot);
        Ok(CreateOutcome::Created(session))
    }

    /// Forgets every session, fault and log; running agents and open streams end.
    pub fn reset(&self) {
        let sessions: Vec<Arc<Session>> = {
            let mut inner = self.lock();
            inner.by_external.clear();
            inner.chats.clear();
            inner.sessions.drain().map(|(_, s)| s).collect()
        };
        for session in sessions {
            session.kill();
        }
    }
}
