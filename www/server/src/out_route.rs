//! `GET /realtime/v1/sessions/{id-or-externalId}/out` (client-protocol.mdx "Step 2").
//!
//! Contract: `Accept: text/event-stream` required (else 400); token with `read:sessions:{chat}`;
//! `X-Stream-Version: v2` on the response (protocol-notes #1); `Last-Event-ID: n` resumes at
//! `n + 1`; `Timeout-Seconds` (1–600, default 60) of silence since the last record ends the
//! long-poll with `data: [DONE]` (protocol-notes #10); `X-Peek-Settled: 1` closes right after
//! draining when the newest non-command record is a `turn-complete`, with
//! `X-Session-Settled: true`. Keep-alive, never `Connection: close` (protocol-notes #9).
//! Each connection writes through a small bounded channel, so a slow reader slows the writer.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::app::App;
use crate::auth::{authenticate, authorize, Access};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::faults::FaultSet;
use crate::session::Session;
use crate::sse::{event_stream_response, tiny_pieces, Framing};

/// Records per `batch` event at most…
pub const MAX_BATCH_RECORDS: usize = 500;
/// …and about this many bytes.
pub const MAX_BATCH_BYTES: usize = 256 << 10;
/// `Timeout-Seconds` when absent or unparsable.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 60;

type Chunk = Result<Bytes, io::Error>;

pub async fn out(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&headers, &app.config.secret_key, now_ms())?;
    let session = authorize(&app.store, &caller, &name, Access::Read)?;
    let accepts = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !accepts {
        return Err(ApiError::bad_request(
            "session.out is an SSE stream: send Accept: text/event-stream",
        ));
    }
    let chat = session.chat_key().to_string();
    if let Some(status) = app.store.with_chat(&chat, |c| {
        FaultSet::take_failure(&mut c.faults.out_failures)
    }) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(ApiError::new(status, "Injected failure (outFailures)"));
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // A non-integer Last-Event-ID (e.g. the S2 `id:` triple) falls back to the beginning.
    let cursor = text("last-event-id")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |n| n.saturating_add(1));
    let timeout_s = text("timeout-seconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT_SECONDS, |s| s.clamp(1, 600));
    let peek = matches!(text("x-peek-settled"), Some("1" | "true"));
    // (Only a `turn-complete` tail settles, closed or not: client-protocol.mdx "X-Peek-Settled".
    // A closed session's tail is its `session-closed` record, which the client reads.)
    let settled = peek && session.out.ends_with_turn_complete();

    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let stream = Connection {
        app: app.clone(),
        session,
        chat,
        cursor,
        timeout: Duration::from_secs(timeout_s),
        settled,
        tx,
    };
    tokio::spawn(stream.run());
    let mut response = event_stream_response(rx);
    let h = response.headers_mut();
    h.insert("x-stream-version", HeaderValue::from_static("v2"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if settled {
        h.insert("x-session-settled", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// What the fault set says about the records about to be sent.
struct Cut {
    take: usize,
    then: Option<Ending>,
}

enum Ending {
    Drop,
    ErrorEvent,
}

struct Connection {
    app: Arc<App>,
    session: Arc<Session>,
    chat: String,
    cursor: u64,
    timeout: Duration,
    settled: bool,
    tx: mpsc::Sender<Chunk>,
}

/// The client went away.
struct Gone;

impl Connection {
    async fn send(&self, bytes: Bytes, tiny: bool) -> Result<(), Gone> {
        if !tiny {
            return self.tx.send(Ok(bytes)).await.map_err(|_| Gone);
        }
        for piece in tiny_pieces(&bytes) {
            self.tx.send(Ok(piece)).await.map_err(|_| Gone)?;
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Waits until hyper has taken everything queued and had a moment to flush it: a body error
    /// aborts the connection at once, dropping whatever is still buffered.
    async fn drained(&self) {
        while self.tx.capacity() < self.tx.max_capacity() && !self.tx.is_closed() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// Consumes the drop / error counters for `available` records.
    fn cut(&self, available: usize) -> (Cut, FaultSet) {
        self.app.store.with_chat(&self.chat, |chat| {
            let f = &mut chat.faults;
            let armed = [f.drop_after_records, f.error_event_after_records];
            let take = armed
                .iter()
                .flatten()
                .fold(available as u64, |n, k| n.min(*k)) as usize;
            let mut then = None;
            for (slot, ending) in [
                (&mut f.error_event_after_records, Ending::ErrorEvent),
                (&mut f.drop_after_records, Ending::Drop),
            ] {
                if let Some(k) = slot {
                    *k -= take as u64;
                    if *k == 0 {
                        *slot = None;
                        then = Some(ending);
                    }
                }
            }
            (Cut { take, then }, f.clone())
        })
    }

    async fn run(mut self) {
        let session = self.session.clone();
        session.open_out_connections.fetch_add(1, Ordering::SeqCst);
        let _ = self.pump().await;
        session.open_out_connections.fetch_sub(1, Ordering::SeqCst);
    }

    async fn pump(&mut self) -> Result<(), Gone> {
        let mut tail_rx = self.session.out.subscribe();
        let mut wake_rx = self.session.subscribe_wake();
        let mut idle_deadline = Instant::now() + self.timeout;
        let mut next_ping = Instant::now() + self.ping_interval();
        loop {
            let faults = self.app.store.faults(&self.chat);
            let framing = Framing {
                crlf: faults.crlf == Some(true),
                comments: faults.comments == Some(true),
            };
            let tiny = faults.tiny_writes == Some(true);
            if self.session.is_killed() {
                return self.send(framing.done(), tiny).await;
            }
            tail_rx.borrow_and_update();
            let batch = self
                .session
                .out
                .read(self.cursor, MAX_BATCH_RECORDS, MAX_BATCH_BYTES);
            if !batch.records.is_empty() {
                let (cut, faults) = self.cut(batch.records.len());
                let records = &batch.records[..cut.take];
                if let Some(last) = records.last() {
                    let event = framing.batch(records, batch.tail);
                    self.send(event.clone(), tiny).await?;
                    if faults.duplicate_records == Some(true) {
                        self.send(event, tiny).await?;
                    }
                    self.cursor = last.seq + 1;
                    self.session.out.mark_delivered(self.cursor);
                    idle_deadline = Instant::now() + self.timeout;
                }
                match cut.then {
                    Some(Ending::Drop) => {
                        self.drained().await;
                        let cut = io::Error::new(io::ErrorKind::ConnectionReset, "injected drop");
                        let _ = self.tx.send(Err(cut)).await;
                        return Ok(());
                    }
                    Some(Ending::ErrorEvent) => {
                        return self
                            .send(framing.error("injected stream error"), tiny)
                            .await;
                    }
                    None => continue,
                }
            }
            self.cursor = batch.next;
            if self.settled {
                return self.send(framing.done(), tiny).await;
            }
            tokio::select! {
                // The client went away (hyper dropped the body): stop at once.
                _ = self.tx.closed() => return Err(Gone),
                changed = tail_rx.changed() => if changed.is_err() { return Ok(()) },
                _ = wake_rx.changed() => {}
                _ = sleep_until(next_ping) => {
                    let ping = framing.ping(now_ms(), self.session.out.tail());
                    self.send(ping, tiny).await?;
                    next_ping = Instant::now() + self.ping_interval();
                }
                _ = sleep_until(idle_deadline) => {
                    return self.send(framing.done(), tiny).await;
                }
            }
        }
    }

    fn ping_interval(&self) -> Duration {
        let ms = self
            .app
            .store
            .faults(&self.chat)
            .ping_interval_ms
            .unwrap_or(self.app.config.ping_interval_ms);
        Duration::from_millis(ms.clamp(1, 3_600_000))
    }
}
