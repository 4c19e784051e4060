//! Backoff and rate-limit waits: clock and randomness are parameters.

use trigger_chat_wasm::proto::retry::{
    parse_rate_limit_reset, rate_limit_wait_ms, reset_ms, Backoff,
};

const BACKOFF: Backoff = Backoff {
    initial_ms: 500,
    max_ms: 10_000,
    factor: 2.0,
    jitter: 0.5,
    max_attempts: Some(4),
};

#[test]
fn delays_grow_exponentially_and_cap() {
    let delays: Vec<_> = (1..=8)
        .map(|attempt| BACKOFF.delay_ms(attempt, 0.0))
        .collect();
    assert_eq!(
        delays,
        [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]
    );
    assert_eq!(BACKOFF.delay_ms(0, 0.0), 500);
    assert_eq!(BACKOFF.delay_ms(u32::MAX, 0.0), 10_000);
}

#[test]
fn jitter_removes_at_most_its_fraction() {
    assert_eq!(BACKOFF.delay_ms(3, 1.0), 1_000);
    assert_eq!(BACKOFF.delay_ms(3, 0.5), 1_500);
    // Out-of-range and NaN samples are clamped, never producing a longer or negative wait.
    assert_eq!(BACKOFF.delay_ms(3, 7.0), 1_000);
    assert_eq!(BACKOFF.delay_ms(3, -1.0), 2_000);
    assert_eq!(BACKOFF.delay_ms(3, f64::NAN), 2_000);
    let mut wild = BACKOFF;
    wild.jitter = 3.0;
    assert_eq!(wild.delay_ms(3, 1.0), 0);
}

#[test]
fn degenerate_factors_do_not_shrink_or_explode() {
    for factor in [0.0, 0.5, -2.0, f64::NAN, f64::INFINITY] {
        let backoff = Backoff { factor, ..BACKOFF };
        assert_eq!(backoff.delay_ms(5, 0.0), 500, "factor {factor}");
    }
}

#[test]
fn should_retry_counts_total_attempts() {
    assert!(BACKOFF.should_retry(0));
    assert!(BACKOFF.should_retry(3));
    assert!(!BACKOFF.should_retry(4));
    let forever = Backoff {
        max_attempts: None,
        ..BACKOFF
    };
    assert!(forever.should_retry(u32::MAX));
}

#[test]
fn rate_limit_waits_until_the_reset_time() {
    let now_ms = 1_764_000_000_000;
    assert_eq!(
        rate_limit_wait_ms(Some(now_ms + 1_250), now_ms, 1_000, 60_000),
        1_250
    );
    // Never sooner than the backoff given.
    assert_eq!(
        rate_limit_wait_ms(Some(now_ms + 1_250), now_ms, 2_000, 60_000),
        2_000
    );
    // Seconds-looking values are seconds (the header is read once, as milliseconds).
    assert_eq!(reset_ms(1_764_000_005), 1_764_000_005_000);
    assert_eq!(reset_ms(now_ms + 1), now_ms + 1);
    assert_eq!(
        rate_limit_wait_ms(Some(reset_ms(1_764_000_005)), now_ms, 2_000, 60_000),
        5_000
    );
    // Past resets (a client clock ahead of the server's): the backoff, not at once. Far
    // future: capped. Missing: fallback (also capped).
    assert_eq!(
        rate_limit_wait_ms(Some(now_ms - 1), now_ms, 2_000, 60_000),
        2_000
    );
    assert_eq!(rate_limit_wait_ms(Some(now_ms - 1), now_ms, 0, 60_000), 0);
    assert_eq!(
        rate_limit_wait_ms(Some(now_ms + 3_600_000), now_ms, 2_000, 60_000),
        60_000
    );
    assert_eq!(rate_limit_wait_ms(None, now_ms, 2_000, 60_000), 2_000);
    assert_eq!(rate_limit_wait_ms(None, now_ms, 90_000, 60_000), 60_000);
    assert_eq!(
        rate_limit_wait_ms(Some(u64::MAX), now_ms, 2_000, 60_000),
        60_000
    );
}

#[test]
fn rate_limit_reset_header_parsing() {
    assert_eq!(
        parse_rate_limit_reset(" 1764000000000 "),
        Some(1_764_000_000_000)
    );
    for bad in ["", "soon", "-5", "1.5", "1e12", "99999999999999999999999"] {
        assert_eq!(parse_rate_limit_reset(bad), None, "{bad:?}");
    }
}
