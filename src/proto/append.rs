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
//! | 409 `session_closed`, 413, other 4xx, abort | give up |

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
    /// Stop and report this error.
    GiveUp(Error),
}

/// The retry state of one logical append.
#[derive(Debug, Default, Clone)]
pub struct AppendPolicy {
    refreshed: bool,
    recreated: bool,
    transient_retries: u32,
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

    /// Decides after a failed attempt. `can_recreate` says whether `startSession` is
    /// configured; `now_ms` and `random01` feed the rate-limit wait and the backoff jitter.
    pub fn after_failure(
        &mut self,
        error: Error,
        can_recreate: bool,
        now_ms: u64,
        random01: f64,
    ) -> NextStep {
        match &error {
            Error::Unauthorized { .. } | Error::Forbidden { .. } if !self.refreshed => {
                self.refreshed = true;
                NextStep::RefreshToken
            }
            Error::NotFound { .. } if can_recreate && !self.recreated => {
                self.recreated = true;
                NextStep::RecreateSession
            }
            Error::RateLimited { reset_epoch_ms } => {
                let fallback_ms = BACKOFF.delay_ms(self.transient_retries + 1, random01);
                let wait_ms = rate_limit_wait_ms(*reset_epoch_ms, now_ms, fallback_ms, u64::MAX);
                if wait_ms > MAX_RATE_LIMIT_WAIT_MS || !self.take_transient() {
                    return NextStep::GiveUp(error);
                }
                NextStep::RetryAfter { delay_ms: wait_ms }
            }
            Error::Server { .. } | Error::Network { .. } => {
                if !self.take_transient() {
                    return NextStep::GiveUp(error);
                }
                NextStep::RetryAfter {
                    delay_ms: BACKOFF.delay_ms(self.transient_retries, random01),
                }
            }
            _ => NextStep::GiveUp(error),
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
            policy.after_failure(unauthorized.clone(), true, 0, 0.0),
            NextStep::RefreshToken
        );
        assert_eq!(
            policy.after_failure(Error::Forbidden { message: None }, true, 0, 0.0),
            NextStep::GiveUp(Error::Forbidden { message: None })
        );
    }

    #[test]
    fn missing_session_is_recreated_once_when_possible() {
        let not_found = Error::NotFound { message: None };
        let mut policy = AppendPolicy::new();
        assert_eq!(
            policy.after_failure(not_found.clone(), true, 0, 0.0),
            NextStep::RecreateSession
        );
        assert_eq!(
            policy.after_failure(not_found.clone(), true, 0, 0.0),
            NextStep::GiveUp(not_found.clone())
        );
        let mut without_start = AppendPolicy::new();
        assert_eq!(
            without_start.after_failure(not_found.clone(), false, 0, 0.0),
            NextStep::GiveUp(not_found)
        );
    }

    #[test]
    fn server_errors_back_off_and_are_bounded() {
        let mut policy = AppendPolicy::new();
        let mut delays = Vec::new();
        for _ in 0..MAX_TRANSIENT_RETRIES {
            match policy.after_failure(server(), true, 0, 0.0) {
                NextStep::RetryAfter { delay_ms } => delays.push(delay_ms),
                other => panic!("expected a retry, got {other:?}"),
            }
        }
        assert_eq!(delays, vec![300, 600, 1_200, 2_400, 4_800]);
        assert_eq!(
            policy.after_failure(server(), true, 0, 0.0),
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
            policy.after_failure(limited, true, now_ms, 0.0),
            NextStep::RetryAfter { delay_ms: 1_500 }
        );
        let far = Error::RateLimited {
            reset_epoch_ms: Some(now_ms + 10 * 60_000),
        };
        assert_eq!(
            policy.after_failure(far.clone(), true, now_ms, 0.0),
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
                policy.after_failure(error.clone(), true, 0, 0.0),
                NextStep::GiveUp(error)
            );
        }
    }
}
