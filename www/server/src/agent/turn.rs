//! Executes one turn: streams AI SDK `UIMessageChunk`s as data records, then the `turn-complete`
//! control record (refreshed `public-access-token`, `session-in-event-id` once anything was read
//! from `.in`, `session-closed` when the turn closed the session) and, from the second boundary
//! on, an S2 `trim` back to the previous boundary (protocol-notes #3, #4). A stop or a close
//! mid-turn streams an `abort` chunk and still ends with the boundary (protocol-notes #8).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use super::script::{
    message_text, plan, research_text, split_deltas, Pacing, Plan, INSPECT_DELTAS,
    INSPECT_INTERVAL_MS, INSPECT_TOOL_MS, SUB_AGENT_BATCHES, SUB_AGENT_INTERVAL_MS,
};
use super::PendingTool;
use crate::ids;
use crate::records::{NewRecord, PUBLIC_ACCESS_TOKEN, SESSION_IN_EVENT_ID};
use crate::session::{closed_headers, LiveRun, Session};
use crate::store::Store;

/// Records appended per lock in `stream N` mode.
const STREAM_GROUP: u64 = 256;

/// Why a turn stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    Stopped,
    Closed,
    Killed,
}

/// How a turn ended.
enum End {
    Done,
    Interrupted(Interrupt),
    /// Nothing was written (a `preload` append).
    Silent,
    /// The turn failed (an `error` chunk): its boundary carries no refreshed token, as the
    /// real agent's does not (client-protocol.mdx: "optional and may be absent on some turns
    /// (for example an errored turn)").
    Errored,
}

struct Turn<'a> {
    store: &'a Arc<Store>,
    session: &'a Arc<Session>,
    wake: watch::Receiver<u64>,
    part_prefix: String,
    parts: u64,
}

/// Runs one turn for `payload`; the caller has set `turn_active`.
pub(super) async fn run_turn(store: &Arc<Store>, session: &Arc<Session>, payload: Value) {
    let (plan, part_prefix, parks) = {
        let mut st = session.state();
        let mut parks = false;
        if st.upgrade_pending {
            // `chat.requestUpgrade()` at turn start: the run is swapped before any output, and
            // the new run streams the whole reply (client-protocol.mdx "upgrade-required").
            // A new run that waits for its deployment is announced first (`pending-version`).
            st.upgrade_pending = false;
            parks = std::mem::take(&mut st.upgrade_parks);
            if parks {
                session
                    .out
                    .append(NewRecord::control("pending-version", vec![]));
            }
            let id = ids::run_id();
            let end_requested = st.run.as_ref().is_some_and(|r| r.end_requested);
            st.run = Some(LiveRun {
                id: id.clone(),
                end_requested,
            });
            st.current_run_id = id;
            st.runs_started += 1;
            session
                .out
                .append(NewRecord::control("upgrade-required", vec![]));
        }
        let base = st
            .trigger_config
            .get("basePayload")
            .cloned()
            .unwrap_or(Value::Null);
        st.agent.next_id += 1;
        let prefix = format!("{}-{}", st.current_run_id, st.agent.next_id);
        (plan(&payload, &mut st.agent, &base), prefix, parks)
    };
    if parks {
        // The new run answers once its deployment lands (`pendingVersion: false`).
        store.with_chat(session.chat_key(), |c| {
            c.faults.pending_version = Some(true);
        });
        super::landed(store, session, &mut session.subscribe_wake()).await;
    }
    let mut turn = Turn {
        store,
        session,
        wake: session.subscribe_wake(),
        part_prefix,
        parts: 0,
    };
    let end = match turn.execute(plan).await {
        Ok(end) => end,
        Err(interrupt) => End::Interrupted(interrupt),
    };
    turn.finish(end);
}

impl Turn<'_> {
    fn new_id(&self, kind: &str) -> String {
        let mut st = self.session.state();
        st.agent.next_id += 1;
        format!("{kind}_{}_{}", self.session.index, st.agent.next_id)
    }

    /// Is the turn over before its time? Takes a pending stop.
    fn check(&self) -> Result<(), Interrupt> {
        if self.session.is_killed() {
            return Err(Interrupt::Killed);
        }
        let mut st = self.session.state();
        if st.is_closed() {
            return Err(Interrupt::Closed);
        }
        if st.take_stop() {
            return Err(Interrupt::Stopped);
        }
        Ok(())
    }

    fn record(&mut self, chunk_json: &str) -> NewRecord {
        self.parts += 1;
        NewRecord::data(chunk_json, &format!("{}-{}", self.part_prefix, self.parts))
    }

    fn emit(&mut self, chunk: Value) {
        let record = self.record(&chunk.to_string());
        self.session.out.append(record);
    }

    /// Sleeps `ms`, waking early for a stop, close or kill.
    async fn pause(&mut self, ms: u64) -> Result<(), Interrupt> {
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            self.check()?;
            tokio::select! {
                _ = sleep_until(deadline) => return self.check(),
                _ = self.wake.changed() => {}
            }
        }
    }

    /// Flow control: waits until a reader is close enough to the head of `.out`.
    async fn room(&mut self) -> Result<(), Interrupt> {
        loop {
            self.check()?;
            tokio::select! {
                _ = self.session.out.wait_for_room() => return Ok(()),
                _ = self.wake.changed() => {}
            }
        }
    }

    fn start(&mut self, message_id: &str, metadata: Option<Value>) {
        match metadata {
            Some(m) => {
                self.emit(json!({"type":"start","messageId":message_id,"messageMetadata":m}))
            }
            None => self.emit(json!({"type":"start","messageId":message_id})),
        }
    }

    /// A message whose first step calls tool `name`: `start`, `start-step`, then the call's
    /// input streamed in one delta and made available.
    fn tool_call_start(&mut self, message_id: &str, call: &str, name: &str, input: &Value) {
        self.start(message_id, None);
        self.emit(json!({"type":"start-step"}));
        self.emit(json!({"type":"tool-input-start","toolCallId":call,"toolName":name}));
        self.emit(
            json!({"type":"tool-input-delta","toolCallId":call,"inputTextDelta":input.to_string()}),
        );
        self.emit(
            json!({"type":"tool-input-available","toolCallId":call,"toolName":name,"input":input}),
        );
    }

    async fn text_step(&mut self, text: &str, pacing: Pacing) -> Result<(), Interrupt> {
        let id = self.new_id("txt");
        self.emit(json!({"type":"start-step"}));
        self.emit(json!({"type":"text-start","id":id}));
        let (pieces, interval_ms) = match pacing {
            Pacing::Instant => (split_deltas(text, None), 0),
            Pacing::Slow {
                deltas,
                interval_ms,
            } => {
                let faults = self.store.faults(self.session.chat_key());
                let interval_ms = faults.slow_interval_ms.unwrap_or(interval_ms);
                (split_deltas(text, Some(deltas)), interval_ms)
            }
        };
        for delta in pieces {
            if interval_ms > 0 {
                self.pause(interval_ms).await?;
            } else {
                self.check()?;
            }
            self.emit(json!({"type":"text-delta","id":id,"delta":delta}));
        }
        self.emit(json!({"type":"text-end","id":id}));
        self.emit(json!({"type":"finish-step"}));
        Ok(())
    }

    async fn execute(&mut self, plan: Plan) -> Result<End, Interrupt> {
        match plan {
            Plan::Text {
                message_id,
                text,
                pacing,
                message_metadata,
            } => {
                let mid = message_id.unwrap_or_else(|| self.new_id("msg"));
                self.start(&mid, message_metadata);
                self.text_step(&text, pacing).await?;
                self.emit(json!({"type":"finish","finishReason":"stop"}));
            }
            Plan::Stream { count, delta_bytes } => self.stream(count, delta_bytes).await?,
            Plan::Research { topic } => self.research(&topic).await?,
            Plan::Inspect { topic } => self.inspect(&topic).await?,
            Plan::ToolCall { city } => {
                let mid = self.new_id("msg");
                let call = self.new_id("call");
                let approval = self.new_id("appr");
                let input = json!({ "city": city });
                self.session
                    .state()
                    .agent
                    .tools
                    .insert(call.clone(), PendingTool { city });
                self.tool_call_start(&mid, &call, "getWeather", &input);
                self.emit(
                    json!({"type":"tool-approval-request","approvalId":approval,"toolCallId":call}),
                );
                self.emit(json!({"type":"finish-step"}));
                self.emit(json!({"type":"finish","finishReason":"tool-calls"}));
            }
            Plan::ToolResume {
                message_id,
                tool_call_id,
                approved,
            } => {
                let city = self
                    .session
                    .state()
                    .agent
                    .tools
                    .remove(&tool_call_id)
                    .map_or_else(|| "Paris".to_string(), |t| t.city);
                self.start(&message_id, None);
                self.emit(json!({"type":"start-step"}));
                let answer = if approved {
                    let output = json!({"city": city, "forecast": "sunny", "temperatureC": 21});
                    self.emit(json!({"type":"tool-output-available","toolCallId":tool_call_id,"output":output}));
                    format!("The weather in {city} is sunny, 21°C.")
                } else {
                    self.emit(json!({"type":"tool-output-denied","toolCallId":tool_call_id}));
                    "Okay, I won't look up the weather.".to_string()
                };
                self.emit(json!({"type":"finish-step"}));
                self.text_step(&answer, Pacing::Instant).await?;
                self.emit(json!({"type":"finish","finishReason":"stop"}));
            }
            Plan::Error { text } => {
                let mid = self.new_id("msg");
                self.start(&mid, None);
                self.emit(json!({"type":"error","errorText":text}));
                return Ok(End::Errored);
            }
            Plan::Goodbye => {
                let mid = self.new_id("msg");
                self.start(&mid, None);
                let text = "Goodbye! This conversation is now closed.";
                self.text_step(text, Pacing::Instant).await?;
                self.emit(json!({"type":"finish","finishReason":"stop"}));
                self.session
                    .close(Some("agent-closed".into()), crate::clock::now_ms());
            }
            Plan::Close => {
                self.session
                    .close(Some("client-close".into()), crate::clock::now_ms());
            }
            Plan::Ignore => return Ok(End::Silent),
        }
        Ok(End::Done)
    }

    /// `research <topic>`: a tool whose `execute` runs a sub-agent and forwards its chunks with
    /// `chat.forwardSubAgent` — transient `data-subagent` parts, `seq` from 0 per tool call —
    /// then returns the sub-agent's final message as the tool's output.
    async fn research(&mut self, topic: &str) -> Result<(), Interrupt> {
        let mid = self.new_id("msg");
        let call = self.new_id("call");
        let sub_mid = self.new_id("sub");
        let sub_text = self.new_id("txt");
        self.tool_call_start(&mid, &call, "research", &json!({ "topic": topic }));
        let text = research_text(topic);
        let mut batches = vec![vec![
            json!({"type":"start","messageId":sub_mid}),
            json!({"type":"start-step"}),
            json!({"type":"text-start","id":sub_text}),
        ]];
        for delta in split_deltas(&text, Some(SUB_AGENT_BATCHES - 2)) {
            batches.push(vec![
                json!({"type":"text-delta","id":sub_text,"delta":delta}),
            ]);
        }
        batches.push(vec![
            json!({"type":"text-end","id":sub_text}),
            json!({"type":"finish-step"}),
            json!({"type":"finish","finishReason":"stop"}),
        ]);
        for (seq, chunks) in batches.into_iter().enumerate() {
            self.pause(SUB_AGENT_INTERVAL_MS).await?;
            let batch = json!({"toolCallId":call,"seq":seq,"chunks":chunks});
            self.emit(json!({"type":"data-subagent","transient":true,"data":batch}));
        }
        let output = json!({"id":sub_mid,"role":"assistant","parts":[
            {"type":"step-start"},{"type":"text","text":text,"state":"done"}]});
        self.emit(json!({"type":"tool-output-available","toolCallId":call,"output":output}));
        self.emit(json!({"type":"finish-step"}));
        let answer = format!("The research on {topic} is done.");
        self.text_step(&answer, Pacing::Instant).await?;
        self.emit(json!({"type":"finish","finishReason":"stop"}));
        Ok(())
    }

    /// `inspect <topic>`: a tool step, then the summary. At the step boundary the user messages
    /// that arrived on `.in` during the turn are injected — consumed (so this turn's boundary
    /// covers their seq) and confirmed with a `data-pending-message-injected` part — and the
    /// summary says so; one that arrives after that boundary is answered as the next turn.
    async fn inspect(&mut self, topic: &str) -> Result<(), Interrupt> {
        let mid = self.new_id("msg");
        let call = self.new_id("call");
        self.tool_call_start(&mid, &call, "inspectDocument", &json!({ "topic": topic }));
        self.pause(INSPECT_TOOL_MS).await?;
        let findings = "The document describes a chat application.";
        let output = json!({ "topic": topic, "findings": findings });
        self.emit(json!({"type":"tool-output-available","toolCallId":call,"output":output}));
        self.emit(json!({"type":"finish-step"}));
        let steered = self.take_pending_messages();
        let mut summary = format!("Summary of {topic}: {findings}");
        if !steered.is_empty() {
            let ids: Vec<&str> = steered.iter().map(|(id, _)| id.as_str()).collect();
            let messages: Vec<Value> = steered
                .iter()
                .map(|(id, text)| json!({ "id": id, "text": text }))
                .collect();
            let marker = self.new_id("inj");
            self.emit(json!({"type":"data-pending-message-injected","id":marker,
                "data":{"messageIds":ids,"messages":messages}}));
            let texts: Vec<&str> = steered.iter().map(|(_, text)| text.as_str()).collect();
            summary.push_str(&format!(" Steered by: {}.", texts.join("; ")));
        }
        let pacing = Pacing::Slow {
            deltas: INSPECT_DELTAS,
            interval_ms: INSPECT_INTERVAL_MS,
        };
        self.text_step(&summary, pacing).await?;
        self.emit(json!({"type":"finish","finishReason":"stop"}));
        Ok(())
    }

    /// The user messages waiting on `.in` (in order, up to the first other record), taken for
    /// injection: `(message id, text)`.
    fn take_pending_messages(&mut self) -> Vec<(String, String)> {
        let mut st = self.session.state();
        let mut taken = Vec::new();
        for record in st.in_records.iter_mut().filter(|r| !r.consumed) {
            let payload = record.chunk.get("payload");
            let message = payload.and_then(|p| p.get("message"));
            let steerable = !record.is_stop()
                && payload
                    .and_then(|p| p.get("trigger"))
                    .and_then(Value::as_str)
                    == Some("submit-message")
                && message.and_then(|m| m.get("role")).and_then(Value::as_str) == Some("user");
            let Some(message) = message.filter(|_| steerable) else {
                break;
            };
            let id = message
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            taken.push((id, message_text(message)));
            record.consumed = true;
        }
        taken
    }

    /// `stream N [size K]`: deltas are generated group by group, never the whole reply at once,
    /// and built without a JSON serializer (ids and deltas are plain ASCII).
    async fn stream(&mut self, count: u64, delta_bytes: Option<usize>) -> Result<(), Interrupt> {
        let mid = self.new_id("msg");
        let id = self.new_id("txt");
        let fixed: Option<String> =
            delta_bytes.map(|k| (0..k).map(|i| (b'a' + (i % 26) as u8) as char).collect());
        self.start(&mid, None);
        self.emit(json!({"type":"start-step"}));
        self.emit(json!({"type":"text-start","id":id}));
        let plain = NewRecord::is_plain(&id) && NewRecord::is_plain(&self.part_prefix);
        let mut i = 0u64;
        while i < count {
            self.room().await?;
            let end = (i + STREAM_GROUP).min(count);
            let mut group = Vec::with_capacity((end - i) as usize);
            for n in i..end {
                let numbered;
                let delta = match &fixed {
                    Some(text) => text.as_str(),
                    None => {
                        numbered = format!("{n} ");
                        numbered.as_str()
                    }
                };
                self.parts += 1;
                let part_id = format!("{}-{}", self.part_prefix, self.parts);
                group.push(if plain {
                    NewRecord::plain_text_delta(&id, delta, &part_id)
                } else {
                    let chunk = json!({"type":"text-delta","id":id,"delta":delta}).to_string();
                    NewRecord::data(&chunk, &part_id)
                });
            }
            self.session.out.append_all(group);
            i = end;
            tokio::task::yield_now().await;
        }
        self.emit(json!({"type":"text-end","id":id}));
        self.emit(json!({"type":"finish-step"}));
        self.emit(json!({"type":"finish","finishReason":"stop"}));
        Ok(())
    }

    /// The boundary: `abort` when interrupted, then `turn-complete` (+ `trim`), atomically with
    /// clearing `turn_active` so a concurrent close either sees the turn or writes its own record.
    fn finish(&mut self, end: End) {
        match end {
            End::Interrupted(Interrupt::Killed) => {
                self.session.state().turn_active = false;
                return;
            }
            End::Silent => {
                let mut st = self.session.state();
                if st.is_closed() {
                    // A close that arrived during this (silent) turn still has to be told.
                    let headers = closed_headers(&st);
                    self.session
                        .out
                        .append(NewRecord::control("session-closed", headers));
                }
                st.turn_active = false;
                return;
            }
            End::Interrupted(_) => self.emit(json!({"type":"abort"})),
            End::Done | End::Errored => {}
        }
        let mut headers = vec![];
        if !matches!(end, End::Errored) {
            let token = self.store.mint_session_token(self.session.chat_key());
            headers.push((PUBLIC_ACCESS_TOKEN.to_string(), token));
        }
        let mut st = self.session.state();
        if let Some(in_seq) = st.in_event_id() {
            headers.push((SESSION_IN_EVENT_ID.to_string(), in_seq.to_string()));
        }
        if st.is_closed() {
            headers.extend(closed_headers(&st));
        }
        let out = &self.session.out;
        let boundary = out.append(NewRecord::control("turn-complete", headers));
        if let Some(previous) = st.last_turn_complete_seq {
            out.append(NewRecord::trim(previous));
            // S2 applies a trim eventually: a reader still in the previous turn (a next turn
            // that completes at once, e.g. a queued message) reads it to its end meanwhile.
            let delay = self.store.config.trim_delay_ms;
            if delay == 0 {
                out.trim_before(previous);
            } else {
                let session = self.session.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    session.out.trim_before(previous);
                });
            }
        }
        if st.is_closed() {
            // As the real agent after `chat.close()`: a record of its own after the boundary,
            // so `.out`'s tail is no `turn-complete` and a settled peek does not settle.
            out.append(NewRecord::control("session-closed", closed_headers(&st)));
        }
        st.last_turn_complete_seq = Some(boundary);
        st.turn_active = false;
        st.turns_completed += 1;
    }
}
