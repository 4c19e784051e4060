//! Retry timing. No clock and no random source inside: the caller passes `now_ms` and a
//! uniform `random01` in `[0, 1)`, so tests pin both.

#[allow(unused_imports)]
use crate::prelude::*;
/// Bounded exponential backoff with jitter.
///
/// Attempt `n` (1-based) waits `min(initial_ms * factor^(n-1), max_ms) * (1 - jitter * random01)`.
///
/// ```
/// use trigger_chat_wasm::proto::retry::Backoff;
/// let backoff = Backoff { initial_ms: 1_000, max_ms: 8_000, factor: 2.0, jitter: 0.5, max_attempts: Some(5) };
/// assert_eq!(backoff.delay_ms(1, 0.0), 1_000);
/// assert_eq!(backoff.delay_ms(3, 0.0), 4_000);
/// assert_eq!(backoff.delay_ms(9, 0.0), 8_000); // capped
/// assert_eq!(backoff.delay_ms(3, 1.0), 2_000); // full jitter removes half
/// assert!(backoff.should_retry(4) && !backoff.should_retry(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Wait before the first retry.
    pub initial_ms: u64,
    /// Longest wait.
    pub max_ms: u64,
    /// Growth per attempt (values below 1 are treated as 1).
    pub factor: f64,
    /// Largest fraction of the wait removed at random, `0..=1` (clamped).
    pub jitter: f64,
    /// Attempts allowed in total, the first one included; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// 1 s doubling to 30 s, up to 30% jitter, no attempt limit.
    fn default() -> Self {
        Backoff {
            initial_ms: 1_000,
            max_ms: 30_000,
            factor: 2.0,
            jitter: 0.3,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The wait before retrying after failed attempt number `attempt` (1-based; 0 reads as 1).
    /// `random01` is a uniform sample in `[0, 1)`; out-of-range or NaN values are clamped.
    pub fn delay_ms(&self, attempt: u32, random01: f64) -> u64 {
        let max_ms = self.max_ms as f64;
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        // `powi` overflows to +inf, which `min` then caps; nothing here can be NaN.
        // (A loop, not `powi`: `no_std` has no float intrinsics; `exponent` is capped anyway.)
        let mut base_ms = self.initial_ms as f64;
        for _ in 0..exponent.min(64) {
            base_ms *= factor;
            if base_ms >= max_ms {
                break;
            }
        }
        let base_ms = base_ms.min(max_ms);
        let jitter = clamp01(self.jitter);
        let random01 = clamp01(random01);
        // `as` saturates float → int conversions, so the result is always in 0..=max.
        (base_ms * (1.0 - jitter * random01) + 0.5) as u64
    }

    /// Whether another attempt is allowed after `attempts_made` attempts.
    pub fn should_retry(&self, attempts_made: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempts_made < max)
    }
}

fn clamp01(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// Values below this are taken as Unix seconds rather than milliseconds (1e11 ms is 1973;
/// 1e11 s is the year 5138).
const SECONDS_EPOCH_LIMIT: u64 = 100_000_000_000;

/// An `x-ratelimit-reset` value as Unix milliseconds (one that looks like seconds is read as
/// seconds).
pub fn reset_ms(reset: u64) -> u64 {
    if reset < SECONDS_EPOCH_LIMIT {
        reset.saturating_mul(1_000)
    } else {
        reset
    }
}

/// How long to wait after a 429 before retrying with the same `X-Part-Id`.
///
/// client-protocol.mdx FAQ "What happens on rate-limit (429)?": `x-ratelimit-reset` is the Unix
/// ms epoch when the bucket refills; back off until then (`reset_epoch_ms`: milliseconds, as
/// [`reset_ms`] reads the header), and never sooner than `fallback_ms` (the backoff: a reset
/// already past, as a client clock ahead of the server's reads it, is no reason to retry at
/// once). Never longer than `cap_ms`.
///
/// ```
/// use trigger_chat_wasm::proto::retry::{rate_limit_wait_ms, reset_ms};
/// let now_ms = 1_700_000_000_000;
/// assert_eq!(rate_limit_wait_ms(Some(now_ms + 2_500), now_ms, 1_000, 60_000), 2_500);
/// let in_seconds = reset_ms(1_700_000_003);
/// assert_eq!(rate_limit_wait_ms(Some(in_seconds), now_ms, 1_000, 60_000), 3_000);
/// assert_eq!(rate_limit_wait_ms(None, now_ms, 1_000, 60_000), 1_000);
/// assert_eq!(rate_limit_wait_ms(Some(now_ms - 2_000), now_ms, 1_000, 60_000), 1_000);
/// ```
pub fn rate_limit_wait_ms(
    reset_epoch_ms: Option<u64>,
    now_ms: u64,
    fallback_ms: u64,
    cap_ms: u64,
) -> u64 {
    let until_reset = reset_epoch_ms.map_or(0, |reset| reset.saturating_sub(now_ms));
    until_reset.max(fallback_ms).min(cap_ms)
}

/// Read an `x-ratelimit-reset` header value: a non-negative integer, surrounding whitespace
/// allowed. Anything else is `None`.
pub fn parse_rate_limit_reset(header_value: &str) -> Option<u64> {
    let text = header_value.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
