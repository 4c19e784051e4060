//! Per-chat fault injection (test-only; set through `POST /__admin/chats/{chatId}/faults`).
//! A patch merges into the chat's set; counters are consumed as they fire.

use serde::{Deserialize, Serialize};

/// `{status, count}`: the next `count` requests answer `status`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatusCount {
    pub status: u16,
    pub count: u32,
}

/// The fault set of one chat; every field is optional and `None` means "off".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSet {
    /// Cut the `.out` connection abruptly (no terminating chunk) after this many more records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_after_records: Option<u64>,
    /// Send `event: error` and end the response after this many more records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_event_after_records: Option<u64>,
    /// Send every batch event twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_records: Option<bool>,
    /// Split every SSE write into 1–7 byte pieces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiny_writes: Option<bool>,
    /// End SSE lines with CRLF.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crlf: Option<bool>,
    /// Add `:` comment lines between and inside events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<bool>,
    /// The next `count` `.in/append` calls fail with `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append_failures: Option<StatusCount>,
    /// The next `count` `.in/append` calls are stored, then answered with `status` instead
    /// of `{ok, seq}` (the answer lost on its way back: a retry with the same `X-Part-Id`
    /// gets the stored seq).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append_lost_answers: Option<StatusCount>,
    /// The next `count` `.out` requests fail with `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_failures: Option<StatusCount>,
    /// Lifetime of tokens minted for this chat (negative: already expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ttl_seconds: Option<i64>,
    /// Delay before handling every API request of this chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Ping interval of this chat's `.out` streams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_interval_ms: Option<u64>,
    /// The pause before each delta of this chat's slow replies (default 100 ms): tests that
    /// reload mid-reply give a slow machine room to come back before the reply is over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_interval_ms: Option<u64>,
    /// `true`: the chat's run is parked, waiting for the deployment that carries its version
    /// (version skew protection). Session create, every append and the head-start answer say
    /// `pendingVersion`; the agent takes nothing from `.in` until this is set back to `false`
    /// (the deployment lands), and then answers everything that waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_version: Option<bool>,
    /// `true`: appends answer `{"ok": true}` without `seq`, as older webapps do and as a retry
    /// whose idempotency claim was lost does (the client then takes any boundary as its turn's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append_without_seq: Option<bool>,
}

impl FaultSet {
    /// Overlays the fields `patch` sets.
    pub fn merge(&mut self, patch: FaultSet) {
        macro_rules! take {
            ($($f:ident),*) => { $( if patch.$f.is_some() { self.$f = patch.$f; } )* };
        }
        take!(
            drop_after_records,
            error_event_after_records,
            duplicate_records,
            tiny_writes,
            crlf,
            comments,
            append_failures,
            append_lost_answers,
            out_failures,
            token_ttl_seconds,
            latency_ms,
            ping_interval_ms,
            slow_interval_ms,
            pending_version,
            append_without_seq
        );
    }

    /// Rejects statuses that are not HTTP errors.
    pub fn validate(&self) -> Result<(), String> {
        for (name, f) in [
            ("appendFailures", self.append_failures),
            ("appendLostAnswers", self.append_lost_answers),
            ("outFailures", self.out_failures),
        ] {
            if let Some(f) = f {
                if !(400..=599).contains(&f.status) {
                    return Err(format!("{name}.status must be 400..=599"));
                }
            }
        }
        if self.ping_interval_ms == Some(0) {
            return Err("pingIntervalMs must be positive".into());
        }
        if self
            .slow_interval_ms
            .is_some_and(|ms| !(1..=2_000).contains(&ms))
        {
            return Err("slowIntervalMs must be 1..=2000".into());
        }
        Ok(())
    }

    /// Takes one injected failure from `slot`, if armed.
    pub fn take_failure(slot: &mut Option<StatusCount>) -> Option<u16> {
        let armed = slot.as_mut()?;
        if armed.count == 0 {
            *slot = None;
            return None;
        }
        armed.count -= 1;
        let status = armed.status;
        if armed.count == 0 {
            *slot = None;
        }
        Some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_overlays_and_counters_run_out() {
        let mut set: FaultSet = serde_json::from_str(r#"{"crlf":true,"latencyMs":5}"#).unwrap();
        set.merge(
            serde_json::from_str(r#"{"latencyMs":9,"appendFailures":{"status":500,"count":2}}"#)
                .unwrap(),
        );
        assert_eq!(set.crlf, Some(true));
        assert_eq!(set.latency_ms, Some(9));
        assert_eq!(FaultSet::take_failure(&mut set.append_failures), Some(500));
        assert_eq!(FaultSet::take_failure(&mut set.append_failures), Some(500));
        assert_eq!(FaultSet::take_failure(&mut set.append_failures), None);
    }

    #[test]
    fn unknown_fields_and_bad_statuses_are_refused() {
        assert!(serde_json::from_str::<FaultSet>(r#"{"dropAfter":1}"#).is_err());
        let set: FaultSet =
            serde_json::from_str(r#"{"outFailures":{"status":200,"count":1}}"#).unwrap();
        assert!(set.validate().is_err());
        for (ms, ok) in [(0, false), (1, true), (2_000, true), (2_001, false)] {
            let set: FaultSet =
                serde_json::from_value(serde_json::json!({ "slowIntervalMs": ms })).unwrap();
            assert_eq!(set.validate().is_ok(), ok, "slowIntervalMs {ms}");
        }
    }
}
