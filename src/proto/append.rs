//! What to do after each attempt of one logical `.in/append` (one body, one `X-Part-Id`).
//!
//! client-protocol.mdx, Step 3: appends are idempotent on `X-Part-Id`, a 500 is "safe to
//! retry", and a 429 should wait until `x-ratelimit-reset`. The JS transport retries none of
//! these (W4) and refreshes only on auth errors. The policy here:
//!
//! | failure | next step |
//! |---|---|
//! | 401 / 403 | refresh the token once, retry |
//! | 404 | recreate the session once (when `startSession` exists), retry |
//! | 429 | wait until the reset (at most [`MAX_RATE_LIMIT_WAIT_MS`]), retry |
//! | 5xx, network, timeout | back off, retry, at most [`MAX_TRANSIENT_RETRIES`] times |
//! | network or timeout while the browser is offline | wait for the network, retry; not counted |
//! | 409 `session_closed`, 413, other 4xx, abort | give up |
//!
//! Waiting for the network has one bound: the server keeps an `X-Part-Id` claim for five
//! minutes, so no attempt goes out later than [`RETRY_WINDOW_MS`] after the first attempt that
//! may have reached it (one started while the browser was online, or one it answered). A
//! message written offline waits as long as the browser stays offline; one whose request may
//! have landed is given up rather than risk being appended twice.

use super::retry::{rate_limit_wait_ms, Backoff};
use super::Error;
#[allow(unused_imports)]
use crate::prelude::*;

/// Retries after 5xx, network errors, timeouts and 429s, in total.
pub const MAX_TRANSIENT_RETRIES: u32 = 5;
/// A 429 whose reset is further away than this fails instead of waiting.
pub const MAX_RATE_LIMIT_WAIT_MS: u64 = 60_000;
/// How long one append attempt may take before it counts as a network failure (W6).
pub const APPEND_TIMEOUT_MS: u64 = 30_000;

/// How long after the first attempt that may have reached the server a retry may still go out:
/// below the server's five-minute `X-Part-Id` claim, with room for the request's own latency.
pub const RETRY_WINDOW_MS: u64 = 4 * 60_000;
/// While offline, how often to try again without an `online` event (a wrong `navigator.onLine`
/// must not park a send for good).
pub const OFFLINE_RECHECK_MS: u64 = 5_000;

const BACKOFF: Backoff = Backoff {
    initial_ms: 300,
    max_ms: 5_000,
    factor: 2.0,
    jitter: 0.5,
    max_attempts: None,
};

/// The next step after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Ask `accessToken({ chatId })` for a new token, then retry.
    RefreshToken,
    /// Ask `startSession` for a new session, then retry.
    RecreateSession,
    /// Wait, then retry with the same body and part id.
    RetryAfter {
        /// How long to wait.
        delay_ms: u64,
    },
    /// The browser is offline: retry when it is back (an `online` event), or after `delay_ms`.
    WaitForNetwork {
        /// The longest wait.
        delay_ms: u64,
    },
    /// Stop and report this error.
    GiveUp(Error),
}

/// The retry state of one logical append.
#[derive(Debug, Default, Clone)]
pub struct AppendPolicy {
    refreshed: bool,
    recreated: bool,
    transient_retries: u32,
    /// When the first attempt that may have reached the server started.
    reachable_since_ms: Option<u64>,
    /// An attempt started while online is in flight.
    in_flight: bool,
    /// An attempt ended without proof that it did not land: no answer (a network failure, a
    /// timeout) to one started online, or a 5xx. A 4xx proves its attempt was refused.
    unsure: bool,
}

impl AppendPolicy {
    /// A fresh policy for a new logical append.
    pub fn new() -> AppendPolicy {
        AppendPolicy::default()
    }

    /// Attempts made so far beyond the first (for events and tests).
    pub fn retries(&self) -> u32 {
        self.transient_retries + u32::from(self.refreshed) + u32::from(self.recreated)
    }

    /// An attempt starts at `now_ms`; `offline` says the browser reports no network (such an
    /// attempt cannot reach the server).
    pub fn on_attempt(&mut self, offline: bool, now_ms: u64) {
        if !offline && self.reachable_since_ms.is_none() {
            self.reachable_since_ms = Some(now_ms);
        }
        self.in_flight = !offline;
    }

    /// The server answered an attempt with `status`: the server was reached, whatever the
    /// browser said of the network. Below 500 (a failure here) the append was refused.
    pub fn on_answer(&mut self, status: u16, now_ms: u64) {
        self.on_attempt(false, now_ms);
        self.in_flight = false;
        self.unsure |= status >= 500;
    }

    /// An attempt ended without an answer (a network failure, a timeout).
    pub fn on_no_answer(&mut self) {
        self.unsure |= self.in_flight;
        self.in_flight = false;
    }

    /// When the first attempt that may have reached the server started.
    pub fn reachable_since(&self) -> Option<u64> {
        self.reachable_since_ms
    }

    /// An earlier page saved this append with `reachable_since_ms`: the earliest time counts.
    /// What its attempts on that page did is not known: it may have landed.
    pub fn restore_reachable_since(&mut self, reachable_since_ms: Option<u64>) {
        if let Some(t) = reachable_since_ms {
            self.reachable_since_ms = Some(self.reachable_since_ms.map_or(t, |own| own.min(t)));
            self.unsure = true;
        }
    }

    /// Whether an attempt may have appended the message: one in flight that was started
    /// online, or one that ended with no answer or a 5xx. (Every answer below 500 to a
    /// failed attempt says it was not appended.)
    pub fn may_have_landed(&self) -> bool {
        self.in_flight || self.unsure
    }

    /// Whether an attempt at `now_ms` could append the message a second time: the part id's
    /// claim on the server may have expired since the first attempt that may have landed.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.reachable_since_ms
            .is_some_and(|t| now_ms > t.saturating_add(RETRY_WINDOW_MS))
    }

    /// Decides after a failed attempt. `can_recreate` says whether `startSession` is
    /// configured; `offline` whether the browser reports no network; `now_ms` and `random01`
    /// feed the rate-limit wait and the backoff jitter.
    pub fn after_failure(
        &mut self,
        error: Error,
        can_recreate: bool,
        offline: bool,
        now_ms: u64,
        random01: f64,
    ) -> NextStep {
        let delay_ms = match &error {
            Error::Unauthorized { .. } | Error::Forbidden { .. } if !self.refreshed => {
                self.refreshed = true;
                return NextStep::RefreshToken;
            }
            Error::NotFound { .. } if can_recreate && !self.recreated => {
                self.recreated = true;
                return NextStep::RecreateSession;
            }
            Error::RateLimited { reset_epoch_ms } => {
                let fallback_ms = BACKOFF.delay_ms(self.transient_retries + 1, random01);
                let wait_ms = rate_limit_wait_ms(*reset_epoch_ms, now_ms, fallback_ms, u64::MAX);
                if wait_ms > MAX_RATE_LIMIT_WAIT_MS || !self.take_transient() {
                    return NextStep::GiveUp(error);
                }
                wait_ms
            }
            Error::Network { .. } if offline => OFFLINE_RECHECK_MS,
            Error::Server { .. } | Error::Network { .. } => {
                if !self.take_transient() {
                    return NextStep::GiveUp(error);
                }
                BACKOFF.delay_ms(self.transient_retries, random01)
            }
            _ => return NextStep::GiveUp(error),
        };
        if self.expired(now_ms.saturating_add(delay_ms)) {
            NextStep::GiveUp(error)
        } else if offline && matches!(error, Error::Network { .. }) {
            NextStep::WaitForNetwork { delay_ms }
        } else {
            NextStep::RetryAfter { delay_ms }
        }
    }

    fn take_transient(&mut self) -> bool {
        if self.transient_retries >= MAX_TRANSIENT_RETRIES {
            return false;
        }
        self.transient_retries += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Error {
        Error::Server {
            status: 503,
            message: None,
        }
    }

    #[test]
    fn auth_errors_refresh_once_then_give_up() {
        let mut policy = AppendPolicy::new();
        let unauthorized = Error::Unauthorized { message: None };
        assert_eq!(
            policy.after_failure(unauthorized.clone(), true, false, 0, 0.0),
            NextStep::RefreshToken
        );
        assert_eq!(
            policy.after_failure(Error::Forbidden { message: None }, true, false, 0, 0.0),
            NextStep::GiveUp(Error::Forbidden { message: None })
        );
    }

    #[test]
    fn missing_session_is_recreated_once_when_possible() {
        let not_found = Error::NotFound { message: None };
        let mut policy = AppendPolicy::new();
        assert_eq!(
            policy.after_failure(not_found.clone(), true, false, 0, 0.0),
            NextStep::RecreateSession
        );
        assert_eq!(
            policy.after_failure(not_found.clone(), true, false, 0, 0.0),
            NextStep::GiveUp(not_found.clone())
        );
        let mut without_start = AppendPolicy::new();
        assert_eq!(
            without_start.after_failure(not_found.clone(), false, false, 0, 0.0),
            NextStep::GiveUp(not_found)
        );
    }

    #[test]
    fn server_errors_back_off_and_are_bounded() {
        let mut policy = AppendPolicy::new();
        let mut delays = Vec::new();
        for _ in 0..MAX_TRANSIENT_RETRIES {
            match policy.after_failure(server(), true, false, 0, 0.0) {
                NextStep::RetryAfter { delay_ms } => delays.push(delay_ms),
                other => panic!("expected a retry, got {other:?}"),
            }
        }
        assert_eq!(delays, vec![300, 600, 1_200, 2_400, 4_800]);
        assert_eq!(
            policy.after_failure(server(), true, false, 0, 0.0),
            NextStep::GiveUp(server())
        );
    }

    #[test]
    fn rate_limits_wait_until_the_reset() {
        let mut policy = AppendPolicy::new();
        let now_ms = 1_700_000_000_000;
        let limited = Error::RateLimited {
            reset_epoch_ms: Some(now_ms + 1_500),
        };
        assert_eq!(
            policy.after_failure(limited, true, false, now_ms, 0.0),
            NextStep::RetryAfter { delay_ms: 1_500 }
        );
        let far = Error::RateLimited {
            reset_epoch_ms: Some(now_ms + 10 * 60_000),
        };
        assert_eq!(
            policy.after_failure(far.clone(), true, false, now_ms, 0.0),
            NextStep::GiveUp(far)
        );
    }

    #[test]
    fn terminal_errors_are_not_retried() {
        for error in [
            Error::SessionClosed {
                closed_reason: None,
            },
            Error::PayloadTooLarge {
                size_bytes: Some(2_000_000),
                limit_bytes: Some(1_048_576),
            },
            Error::Http {
                status: 422,
                message: None,
            },
            Error::Aborted,
        ] {
            let mut policy = AppendPolicy::new();
            assert_eq!(
                policy.after_failure(error.clone(), true, false, 0, 0.0),
                NextStep::GiveUp(error)
            );
        }
    }

    fn network() -> Error {
        Error::Network {
            message: "Failed to fetch".into(),
        }
    }

    #[test]
    fn offline_failures_wait_for_the_network_without_using_the_budget() {
        let mut policy = AppendPolicy::new();
        let mut now_ms = 0;
        // A message written offline: every attempt starts offline, so none can have landed and
        // the wait has no end.
        for _ in 0..1_000 {
            policy.on_attempt(true, now_ms);
            assert_eq!(
                policy.after_failure(network(), true, true, now_ms, 0.0),
                NextStep::WaitForNetwork {
                    delay_ms: OFFLINE_RECHECK_MS
                }
            );
            now_ms += OFFLINE_RECHECK_MS;
        }
        assert_eq!(policy.retries(), 0);
        // Back online, the usual budget is still whole.
        policy.on_attempt(false, now_ms);
        for _ in 0..MAX_TRANSIENT_RETRIES {
            assert!(matches!(
                policy.after_failure(network(), true, false, now_ms, 0.0),
                NextStep::RetryAfter { .. }
            ));
        }
        assert_eq!(
            policy.after_failure(network(), true, false, now_ms, 0.0),
            NextStep::GiveUp(network())
        );
    }

    #[test]
    fn no_retry_goes_out_after_the_part_ids_claim_may_have_expired() {
        let mut policy = AppendPolicy::new();
        // The first attempt went out online and its answer was lost: it may have landed.
        policy.on_attempt(false, 1_000);
        let mut now_ms = 1_000;
        let mut waits = 0;
        loop {
            policy.on_attempt(true, now_ms);
            match policy.after_failure(network(), true, true, now_ms, 0.0) {
                NextStep::WaitForNetwork { delay_ms } => {
                    waits += 1;
                    now_ms += delay_ms;
                    assert!(now_ms <= 1_000 + RETRY_WINDOW_MS);
                }
                NextStep::GiveUp(error) => {
                    assert_eq!(error, network());
                    break;
                }
                other => panic!("expected a wait or the end, got {other:?}"),
            }
        }
        assert_eq!(waits, RETRY_WINDOW_MS / OFFLINE_RECHECK_MS);
        // A rate limit whose reset lies beyond the window ends it too.
        let mut limited = AppendPolicy::new();
        limited.on_attempt(false, 0);
        let error = Error::RateLimited {
            reset_epoch_ms: Some(RETRY_WINDOW_MS - 30_000 + 50_000),
        };
        assert_eq!(
            limited.after_failure(error.clone(), true, false, RETRY_WINDOW_MS - 30_000, 0.0),
            NextStep::GiveUp(error)
        );
    }

    #[test]
    fn offline_does_not_change_answers_from_the_server() {
        let mut policy = AppendPolicy::new();
        assert!(matches!(
            policy.after_failure(server(), true, true, 0, 0.0),
            NextStep::RetryAfter { .. }
        ));
        assert_eq!(policy.retries(), 1);
    }
}
