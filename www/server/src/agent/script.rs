//! The scripted agent's decisions: which reply a wire payload gets. Pure and deterministic; the
//! table is documented in `www/server/README.md` ("Scripted agent") — keep the two in sync.

use serde_json::Value;

use super::Memory;

/// Number of deltas in a `slow` reply, and the pause before each.
pub const SLOW_DELTAS: usize = 40;
pub const SLOW_INTERVAL_MS: u64 = 100;
/// Batches a `research` sub-agent forwards (one text delta each, between the first and the last
/// batch), and the pause before each.
pub const SUB_AGENT_BATCHES: usize = 12;
pub const SUB_AGENT_INTERVAL_MS: u64 = 250;
/// `inspect`: how long its tool runs, then the summary's deltas and the pause before each.
pub const INSPECT_TOOL_MS: u64 = 1500;
pub const INSPECT_DELTAS: usize = 10;
pub const INSPECT_INTERVAL_MS: u64 = 250;
/// Upper bounds for `stream N size K`.
pub const MAX_STREAM_DELTAS: u64 = 10_000_000;
pub const MAX_STREAM_DELTA_BYTES: usize = 512 << 10;

/// How fast a text reply is streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// All deltas at once (one word per delta).
    Instant,
    /// `deltas` deltas, each after `interval_ms`.
    Slow { deltas: usize, interval_ms: u64 },
}

/// What a turn does.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// A text answer; `message_id` continues an existing assistant message when set.
    Text {
        message_id: Option<String>,
        text: String,
        pacing: Pacing,
        message_metadata: Option<Value>,
    },
    /// `count` text deltas as fast as the reader takes them, generated lazily.
    Stream {
        count: u64,
        delta_bytes: Option<usize>,
    },
    /// A `getWeather` call that needs approval; the turn ends at the approval request.
    ToolCall { city: String },
    /// A `research` tool that delegates to a sub-agent and forwards its reply as transient
    /// `data-subagent` batches (`chat.forwardSubAgent`), then answers.
    Research { topic: String },
    /// An `inspectDocument` tool step, then a summary step; user messages that arrive on `.in`
    /// meanwhile are injected at the step boundary (`pendingMessages` with `shouldInject: () =>
    /// true`), later ones become the next turn.
    Inspect { topic: String },
    /// The approval-responded assistant message came back: run (or skip) the tool and answer.
    ToolResume {
        message_id: String,
        tool_call_id: String,
        approved: bool,
    },
    /// An `error` chunk, then the turn ends.
    Error { text: String },
    /// Answer, then close the session (like `chat.close()` inside an agent).
    Goodbye,
    /// `trigger: "close"`: close the session, no reply.
    Close,
    /// Nothing to do (a `preload` append): no records at all.
    Ignore,
}

/// The text of a UIMessage's `text` parts.
pub fn message_text(message: &Value) -> String {
    message
        .get("parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default()
}

/// The default echo answer.
pub fn echo(text: &str) -> String {
    format!("You said: {text}")
}

/// Decides the turn for one `ChatTaskWirePayload`; `base_payload` is the session's
/// `triggerConfig.basePayload` (its `metadata` is the clientData from session start).
pub fn plan(payload: &Value, memory: &mut Memory, base_payload: &Value) -> Plan {
    let trigger = payload
        .get("trigger")
        .and_then(Value::as_str)
        .unwrap_or("submit-message");
    match trigger {
        "action" => {
            let action = payload.get("action").cloned().unwrap_or(Value::Null);
            // `{"type":"slow"}`: answered over four seconds, like a slow message.
            if action.get("type").and_then(Value::as_str) == Some("slow") {
                return Plan::Text {
                    message_id: None,
                    text: slow_text("action"),
                    pacing: Pacing::Slow {
                        deltas: SLOW_DELTAS,
                        interval_ms: SLOW_INTERVAL_MS,
                    },
                    message_metadata: None,
                };
            }
            return text(format!("Action received: {action}"));
        }
        "regenerate-message" => {
            return match &memory.last_user_text {
                Some(last) => text(format!("Regenerated: {}", echo(last))),
                None => text("Regenerated: there is nothing to regenerate yet.".into()),
            };
        }
        "close" => return Plan::Close,
        "preload" => return Plan::Ignore,
        "submit-message" | "handover-prepare" => {}
        other => {
            return Plan::Error {
                text: format!("Unsupported trigger {other:?}"),
            }
        }
    }
    let Some(message) = payload.get("message") else {
        return Plan::Error {
            text: "submit-message without a message".into(),
        };
    };
    if message.get("role").and_then(Value::as_str) == Some("assistant") {
        return assistant_continuation(message);
    }
    let user_text = message_text(message);
    memory.last_user_text = Some(user_text.clone());
    let lower = user_text.to_ascii_lowercase();
    if let Some((count, delta_bytes)) = parse_stream(&lower) {
        return Plan::Stream { count, delta_bytes };
    }
    if lower.contains("slow") {
        return Plan::Text {
            message_id: None,
            text: slow_text(&user_text),
            pacing: Pacing::Slow {
                deltas: SLOW_DELTAS,
                interval_ms: SLOW_INTERVAL_MS,
            },
            message_metadata: None,
        };
    }
    if lower.contains("weather") {
        return Plan::ToolCall {
            city: city_of(&user_text),
        };
    }
    if lower.contains("inspect") {
        return Plan::Inspect {
            topic: words_after(&user_text, "inspect", "the document"),
        };
    }
    if lower.contains("research") {
        return Plan::Research {
            topic: words_after(&user_text, "research", "agents"),
        };
    }
    if lower.contains("error") {
        return Plan::Error {
            text: "Scripted error: you asked for an error.".into(),
        };
    }
    if lower.contains("whoami") {
        let metadata = payload.get("metadata").cloned().unwrap_or(Value::Null);
        let client_data = base_payload.get("metadata").cloned().unwrap_or(Value::Null);
        return Plan::Text {
            message_id: None,
            text: format!("whoami: metadata={metadata} clientData={client_data}"),
            pacing: Pacing::Instant,
            message_metadata: Some(serde_json::json!({ "metadata": metadata })),
        };
    }
    if lower.contains("goodbye") {
        return Plan::Goodbye;
    }
    text(echo(&user_text))
}

fn text(text: String) -> Plan {
    Plan::Text {
        message_id: None,
        text,
        pacing: Pacing::Instant,
        message_metadata: None,
    }
}

/// An assistant message on `.in`: a tool-approval response (resume the tool) or a HITL tool
/// output (acknowledge it).
fn assistant_continuation(message: &Value) -> Plan {
    let message_id = message
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let parts = message.get("parts").and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        let state = part.get("state").and_then(Value::as_str);
        let call = part.get("toolCallId").and_then(Value::as_str);
        if let (Some("approval-responded"), Some(call)) = (state, call) {
            let approved = part
                .pointer("/approval/approved")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return Plan::ToolResume {
                message_id,
                tool_call_id: call.to_string(),
                approved,
            };
        }
    }
    Plan::Text {
        message_id: Some(message_id),
        text: "Thanks, I received the tool result.".into(),
        pacing: Pacing::Instant,
        message_metadata: None,
    }
}

/// `stream N` / `stream N size K` anywhere in the (lower-cased) text.
fn parse_stream(lower: &str) -> Option<(u64, Option<usize>)> {
    let words: Vec<&str> = lower.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "stream")?;
    let count = words.get(at + 1)?.parse::<u64>().ok()?;
    let size = match (words.get(at + 2), words.get(at + 3)) {
        (Some(&"size"), Some(k)) => k.parse::<usize>().ok(),
        _ => None,
    };
    Some((
        count.min(MAX_STREAM_DELTAS),
        size.map(|k| k.clamp(1, MAX_STREAM_DELTA_BYTES)),
    ))
}

/// `Slow reply to "…": 1 2 3 … 40.` (split into exactly [`SLOW_DELTAS`] deltas by the turn).
fn slow_text(user_text: &str) -> String {
    let numbers: Vec<String> = (1..=SLOW_DELTAS).map(|i| i.to_string()).collect();
    format!("Slow reply to {user_text:?}: {}.", numbers.join(" "))
}

/// The city after "weather in", else Paris.
fn city_of(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let Some(at) = lower.find("weather in ") else {
        return "Paris".into();
    };
    let rest = &text[at + "weather in ".len()..];
    let city: String = rest
        .chars()
        .take_while(|c| !matches!(c, '.' | '?' | '!' | ',' | '\n'))
        .collect();
    let city = city.trim();
    if city.is_empty() {
        "Paris".into()
    } else {
        city.to_string()
    }
}

/// The words after `keyword` (ASCII, matched case-insensitively), else `default`.
fn words_after(text: &str, keyword: &str, default: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .find(keyword)
        .map_or("", |at| &text[at + keyword.len()..]);
    let topic = rest.trim().trim_end_matches(['.', '?', '!']).trim();
    if topic.is_empty() {
        default.into()
    } else {
        topic.to_string()
    }
}

/// The sub-agent's reply to `research <topic>`: [`SUB_AGENT_BATCHES`] − 2 numbered findings.
pub fn research_text(topic: &str) -> String {
    let findings: Vec<String> = (1..=SUB_AGENT_BATCHES - 2)
        .map(|i| format!("finding {i}"))
        .collect();
    format!("Report on {topic}: {}.", findings.join(", "))
}

/// Splits a reply into word deltas (each keeps its trailing space), or into exactly `n` pieces.
pub fn split_deltas(text: &str, pieces: Option<usize>) -> Vec<String> {
    let words: Vec<String> = text
        .split_inclusive(' ')
        .map(str::to_string)
        .collect::<Vec<_>>();
    let Some(n) = pieces else {
        return if words.is_empty() {
            vec![String::new()]
        } else {
            words
        };
    };
    let n = n.max(1);
    let mut out = vec![String::new(); n];
    let total = words.len().max(1);
    for (i, word) in words.into_iter().enumerate() {
        out[(i * n / total).min(n - 1)].push_str(&word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(text: &str) -> Value {
        json!({"chatId":"c","trigger":"submit-message",
               "message":{"id":"u1","role":"user","parts":[{"type":"text","text":text}]}})
    }

    fn plan_for(payload: Value) -> Plan {
        plan(&payload, &mut Memory::default(), &json!({}))
    }

    #[test]
    fn trigger_table() {
        assert!(matches!(plan_for(user("hi")), Plan::Text { text, .. } if text == "You said: hi"));
        assert!(matches!(
            plan_for(user("be SLOW")),
            Plan::Text {
                pacing: Pacing::Slow { .. },
                ..
            }
        ));
        assert_eq!(
            plan_for(user("Weather in Oslo?")),
            Plan::ToolCall {
                city: "Oslo".into()
            }
        );
        assert!(matches!(
            plan_for(user("make an error")),
            Plan::Error { .. }
        ));
        assert_eq!(
            plan_for(user("stream 1000000 size 64")),
            Plan::Stream {
                count: 1_000_000,
                delta_bytes: Some(64)
            }
        );
        assert_eq!(plan_for(user("goodbye")), Plan::Goodbye);
        assert_eq!(
            plan_for(user("Research wasm size!")),
            Plan::Research {
                topic: "wasm size".into()
            }
        );
        assert_eq!(
            plan_for(user("Inspect the spec.")),
            Plan::Inspect {
                topic: "the spec".into()
            }
        );
        assert_eq!(
            plan_for(user("research")),
            Plan::Research {
                topic: "agents".into()
            }
        );
        assert_eq!(
            plan_for(json!({"trigger":"preload","chatId":"c"})),
            Plan::Ignore
        );
        let action = plan_for(json!({"trigger":"action","action":{"type":"undo"}}));
        assert!(
            matches!(action, Plan::Text { text, .. } if text == r#"Action received: {"type":"undo"}"#)
        );
        let slow = plan_for(json!({"trigger":"action","action":{"type":"slow"}}));
        assert!(matches!(
            slow,
            Plan::Text {
                pacing: Pacing::Slow { .. },
                ..
            }
        ));
    }

    #[test]
    fn approval_response_resumes_the_tool() {
        let msg = json!({"trigger":"submit-message","message":{"id":"m1","role":"assistant","parts":[
            {"type":"tool-getWeather","toolCallId":"call_1","state":"approval-responded",
             "approval":{"id":"a1","approved":false}}]}});
        assert_eq!(
            plan_for(msg),
            Plan::ToolResume {
                message_id: "m1".into(),
                tool_call_id: "call_1".into(),
                approved: false
            }
        );
    }

    #[test]
    fn deltas_rejoin_to_the_text() {
        let t = slow_text("go slow");
        let d = split_deltas(&t, Some(SLOW_DELTAS));
        assert_eq!(d.len(), SLOW_DELTAS);
        assert_eq!(d.concat(), t);
        assert!(d.iter().all(|p| !p.is_empty()));
        assert_eq!(split_deltas("a b c", None), ["a ", "b ", "c"]);
        assert_eq!(split_deltas("", None), [""]);
    }
}
