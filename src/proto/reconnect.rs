//! When a `.out` connection ends, whether and when to open the next one.
//!
//! A turn's output can span many connections: the long poll ends after `Timeout-Seconds` of
//! silence (`data: [DONE]`), proxies cut idle sockets, the server sends `event: error` while
//! its backend restarts. The rules:
//! - the turn is over (its boundary arrived, or the stream was settled or stopped) → finish;
//! - a connection that showed the server alive (any record or ping) and then ended → reconnect
//!   at once; the server is fine, the turn is just long (the JS transport's ping-blind stall
//!   timer gave up after six quiet minutes, W8). Unless it brought no new record and lasted
//!   under [`MIN_RENEWAL_MS`]: a server (or a proxy, or a crash-looping backend) that ends
//!   every connection right after a ping or a replayed batch would otherwise be asked again in
//!   a tight loop; those back off, without counting toward the failure limit;
//! - a failed or silent connection (network error, 5xx, 429, no bytes before the stall
//!   timeout, end without any event) → back off; after [`MAX_SILENT_CONNECTIONS`] in a row,
//!   fail the stream instead of retrying forever in silence (W9); a 429 waits at least until
//!   its `x-ratelimit-reset` (at most [`MAX_RATE_LIMIT_WAIT_MS`]), as an append does;
//! - 401/403 → refresh the token and reconnect, on *every* connection, not only the first
//!   (W7); a second auth failure right after a refresh fails the stream;
//! - malformed data, 4xx other than auth and 429, a closed session → fail at once;
//! - pings keep a connection alive but not a turn: no record at all for
//!   [`TURN_IDLE_LIMIT_MS`] while the turn is open means the run is gone → fail;
//! - while the browser reports no network, a failed, stalled or silent connection says nothing
//!   about the server: wait for the network (an `online` event, or
//!   [`OFFLINE_RECHECK_MS`]) without counting it, so a tunnel or a closed lid does not fail
//!   the stream; time offline does not count toward the idle limit either.
//!
//! A standing subscription (`watch` mode: a viewer that follows every turn) has no turn of its
//! own to finish or to time out: it reconnects after every end, backing off while the server
//! is silent or failing, and fails only on errors a retry cannot fix (auth still refused after
//! a refresh, a closed session, other 4xx, malformed data).

use super::append::MAX_RATE_LIMIT_WAIT_MS;
pub use super::append::OFFLINE_RECHECK_MS;
use super::retry::{rate_limit_wait_ms, Backoff};
use super::Error;
#[allow(unused_imports)]
use crate::prelude::*;

/// Consecutive connections without a sign of life before the stream fails.
pub const MAX_SILENT_CONNECTIONS: u32 = 6;

/// A connection that ends sooner than this with no new record is not a routine renewal of the
/// long poll: the next one waits (see the module docs).
pub const MIN_RENEWAL_MS: u64 = 1_000;

/// A turn with no record for this long fails with `stream_stalled`, pings or not.
pub const TURN_IDLE_LIMIT_MS: u64 = 10 * 60_000;

/// Without a byte from the server for this long, a connection counts as dead. The server pings
/// about every 5 s, so this is several missed pings.
pub const DEFAULT_STALL_TIMEOUT_MS: u64 = 30_000;

const BACKOFF: Backoff = Backoff {
    initial_ms: 250,
    max_ms: 5_000,
    factor: 2.0,
    jitter: 0.5,
    max_attempts: None,
};

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The body ended (EOF or `[DONE]`) or the server sent `event: error`. `alive` is whether
    /// the connection delivered any record or ping first.
    Ended {
        /// Whether any record or ping arrived on it.
        alive: bool,
    },
    /// No byte arrived within the stall timeout.
    Stalled,
    /// The request or the body read failed.
    Failed(Error),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconnect {
    /// Open a new connection from the cursor after `delay_ms`.
    After {
        /// How long to wait first (0: at once).
        delay_ms: u64,
    },
    /// Get a fresh token from `accessToken`, then reconnect at once.
    RefreshToken,
    /// End the stream cleanly.
    Finish,
    /// Error the stream.
    Fail(Error),
}

/// Reconnect state of one subscription.
#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    silent: u32,
    just_refreshed: bool,
    last_record_ms: u64,
    standing: bool,
    /// When the current connection was accepted.
    connected_ms: u64,
    /// The current connection brought a new record.
    fresh: bool,
    /// Short connections in a row that brought nothing new (see [`MIN_RENEWAL_MS`]).
    quick: u32,
}

impl ReconnectPolicy {
    /// A fresh policy for a subscription opened at `now_ms`.
    pub fn new(now_ms: u64) -> ReconnectPolicy {
        ReconnectPolicy {
            silent: 0,
            just_refreshed: false,
            last_record_ms: now_ms,
            standing: false,
            connected_ms: now_ms,
            fresh: false,
            quick: 0,
        }
    }

    /// A policy for a standing subscription (`watch` mode), opened at `now_ms`.
    pub fn standing(now_ms: u64) -> ReconnectPolicy {
        ReconnectPolicy {
            standing: true,
            ..ReconnectPolicy::new(now_ms)
        }
    }

    /// How many connections in a row failed or delivered nothing (0 while all is well).
    pub fn failures(&self) -> u32 {
        self.silent
    }

    /// A ping arrived: the server is alive.
    pub fn on_ping(&mut self) {
        self.silent = 0;
        self.just_refreshed = false;
    }

    /// A new record arrived (not one already seen): the server and the turn are alive.
    pub fn on_record(&mut self, now_ms: u64) {
        self.on_ping();
        self.last_record_ms = now_ms;
        self.fresh = true;
    }

    /// The send's append landed: its turn starts now, whatever the stream saw before (the
    /// idle limit counts from here).
    pub fn on_turn_start(&mut self, now_ms: u64) {
        self.last_record_ms = self.last_record_ms.max(now_ms);
    }

    /// A connection was accepted (HTTP 200) at `now_ms`: the token works.
    pub fn on_connected(&mut self, now_ms: u64) {
        self.just_refreshed = false;
        self.connected_ms = now_ms;
        self.fresh = false;
    }

    /// A connection that showed the server alive has ended: at once if it was a renewal of the
    /// long poll, otherwise after a backoff.
    fn renew(&mut self, now_ms: u64, random01: f64) -> Reconnect {
        self.silent = 0;
        if self.fresh || now_ms.saturating_sub(self.connected_ms) >= MIN_RENEWAL_MS {
            self.quick = 0;
            return Reconnect::After { delay_ms: 0 };
        }
        self.quick = self.quick.saturating_add(1);
        Reconnect::After {
            delay_ms: BACKOFF.delay_ms(self.quick, random01),
        }
    }

    /// Decides after a connection ended. `turn_open` is false once the turn's boundary was
    /// accepted, or when there is nothing to wait for (a settled session); `offline` is
    /// whether the browser reports no network.
    pub fn after_end(
        &mut self,
        end: ConnectionEnd,
        turn_open: bool,
        offline: bool,
        now_ms: u64,
        random01: f64,
    ) -> Reconnect {
        if let ConnectionEnd::Failed(error) = &end {
            match error {
                Error::Unauthorized { .. } | Error::Forbidden { .. } => {
                    if self.just_refreshed {
                        return Reconnect::Fail(error.clone());
                    }
                    self.just_refreshed = true;
                    return Reconnect::RefreshToken;
                }
                Error::Server { .. } | Error::Network { .. } | Error::RateLimited { .. } => {}
                _ => return Reconnect::Fail(error.clone()),
            }
        }
        // A 429 with a reset: no sooner than the server asked (the backoff is the floor).
        let reset_wait_ms = match &end {
            ConnectionEnd::Failed(Error::RateLimited {
                reset_epoch_ms: reset @ Some(_),
            }) => rate_limit_wait_ms(*reset, now_ms, 0, MAX_RATE_LIMIT_WAIT_MS),
            _ => 0,
        };
        // A response (5xx, 429) proves a network; anything else while offline proves nothing,
        // and the time offline counts toward no limit (the idle one included).
        let unanswered = !matches!(
            end,
            ConnectionEnd::Failed(Error::Server { .. } | Error::RateLimited { .. })
                | ConnectionEnd::Ended { alive: true }
        );
        if offline && unanswered && (self.standing || turn_open) {
            self.last_record_ms = now_ms;
            return Reconnect::After {
                delay_ms: OFFLINE_RECHECK_MS,
            };
        }
        if self.standing {
            if end == (ConnectionEnd::Ended { alive: true }) {
                return self.renew(now_ms, random01);
            }
            self.silent = self.silent.saturating_add(1);
            return Reconnect::After {
                delay_ms: BACKOFF.delay_ms(self.silent, random01).max(reset_wait_ms),
            };
        }
        if !turn_open {
            return Reconnect::Finish;
        }
        let idle_ms = now_ms.saturating_sub(self.last_record_ms);
        if idle_ms >= TURN_IDLE_LIMIT_MS {
            return Reconnect::Fail(Error::StreamStalled {
                idle_ms: Some(idle_ms),
            });
        }
        if end == (ConnectionEnd::Ended { alive: true }) {
            return self.renew(now_ms, random01);
        }
        self.silent += 1;
        if self.silent >= MAX_SILENT_CONNECTIONS {
            return Reconnect::Fail(match end {
                ConnectionEnd::Failed(error) => error,
                ConnectionEnd::Stalled | ConnectionEnd::Ended { .. } => {
                    Error::StreamStalled { idle_ms: None }
                }
            });
        }
        Reconnect::After {
            delay_ms: BACKOFF.delay_ms(self.silent, random01).max(reset_wait_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_on_out_waits_for_its_reset_within_a_minute() {
        let now = 1_700_000_000_000;
        let limited = |reset| {
            ConnectionEnd::Failed(Error::RateLimited {
                reset_epoch_ms: reset,
            })
        };
        let mut policy = ReconnectPolicy::new(now);
        // Reset in 7 s (epoch milliseconds): the wait is the reset, not the 250 ms backoff.
        assert_eq!(
            policy.after_end(limited(Some(now + 7_000)), true, false, now, 0.5),
            Reconnect::After { delay_ms: 7_000 }
        );
        // In epoch seconds, as the header often is (read as milliseconds where it comes in).
        let in_seconds = crate::proto::retry::reset_ms((now + 3_000) / 1_000);
        assert_eq!(
            policy.after_end(limited(Some(in_seconds)), true, false, now, 0.5),
            Reconnect::After { delay_ms: 3_000 }
        );
        // Far away: capped at a minute. Past, or absent: the backoff alone.
        assert_eq!(
            policy.after_end(limited(Some(now + 3_600_000)), true, false, now, 0.5),
            Reconnect::After {
                delay_ms: MAX_RATE_LIMIT_WAIT_MS
            }
        );
        let Reconnect::After { delay_ms: past } =
            policy.after_end(limited(Some(now - 5)), true, false, now, 0.5)
        else {
            panic!("a 429 is retried");
        };
        let Reconnect::After { delay_ms: absent } =
            policy.after_end(limited(None), true, false, now, 0.5)
        else {
            panic!("a 429 is retried");
        };
        assert!(
            past > 0 && past <= 5_000 && absent > 0 && absent <= 5_000,
            "{past} {absent}"
        );
        // They still count: the sixth silent connection fails the stream with the 429.
        assert_eq!(
            policy.after_end(limited(None), true, false, now, 0.5),
            Reconnect::Fail(Error::RateLimited {
                reset_epoch_ms: None
            })
        );
        // A standing subscription waits for the reset too.
        let mut standing = ReconnectPolicy::standing(now);
        assert_eq!(
            standing.after_end(limited(Some(now + 9_000)), false, false, now, 0.5),
            Reconnect::After { delay_ms: 9_000 }
        );
    }

    #[test]
    fn a_standing_subscription_never_finishes_or_gives_up_on_silence() {
        let mut policy = ReconnectPolicy::standing(0);
        assert_eq!(
            policy.after_end(
                ConnectionEnd::Ended { alive: true },
                false,
                false,
                MIN_RENEWAL_MS,
                0.0
            ),
            Reconnect::After { delay_ms: 0 }
        );
        let day = 24 * 3_600_000;
        let mut delays = Vec::new();
        for _ in 0..50 {
            let network = Error::Network {
                message: "offline".into(),
            };
            match policy.after_end(ConnectionEnd::Failed(network), false, false, day, 0.0) {
                Reconnect::After { delay_ms } => delays.push(delay_ms),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays[..3], [250, 500, 1_000]);
        assert!(delays[10..].iter().all(|&d| d == 5_000), "{delays:?}");
        assert!(matches!(
            policy.after_end(ConnectionEnd::Stalled, true, false, day, 0.0),
            Reconnect::After { .. }
        ));
        let closed = Error::SessionClosed {
            closed_reason: None,
        };
        assert!(matches!(
            policy.after_end(ConnectionEnd::Failed(closed), true, false, day, 0.0),
            Reconnect::Fail(Error::SessionClosed { .. })
        ));
        let unauthorized = ConnectionEnd::Failed(Error::Unauthorized { message: None });
        assert_eq!(
            policy.after_end(unauthorized.clone(), true, false, day, 0.0),
            Reconnect::RefreshToken
        );
        assert!(matches!(
            policy.after_end(unauthorized, true, false, day, 0.0),
            Reconnect::Fail(Error::Unauthorized { .. })
        ));
    }

    #[test]
    fn a_finished_turn_ends_the_stream() {
        let mut policy = ReconnectPolicy::new(0);
        assert_eq!(
            policy.after_end(ConnectionEnd::Ended { alive: true }, false, false, 0, 0.0),
            Reconnect::Finish
        );
    }

    #[test]
    fn a_live_server_is_reconnected_at_once_forever() {
        let mut policy = ReconnectPolicy::new(0);
        // The long poll ends after its timeout: each connection lasts a while, or brings news.
        for k in 0..100 {
            let now = k * 5_000;
            policy.on_connected(now);
            if k % 2 == 0 {
                policy.on_record(now);
            }
            let end = now + if k % 2 == 0 { 10 } else { MIN_RENEWAL_MS };
            assert_eq!(
                policy.after_end(ConnectionEnd::Ended { alive: true }, true, false, end, 0.0),
                Reconnect::After { delay_ms: 0 }
            );
        }
    }

    #[test]
    fn connections_that_end_right_after_a_ping_back_off_without_failing() {
        for mut policy in [ReconnectPolicy::new(0), ReconnectPolicy::standing(0)] {
            let mut delays = Vec::new();
            for k in 0..10 {
                let now = k * 10_000;
                policy.on_connected(now);
                policy.on_ping();
                match policy.after_end(
                    ConnectionEnd::Ended { alive: true },
                    true,
                    false,
                    now + 5,
                    0.0,
                ) {
                    Reconnect::After { delay_ms } => delays.push(delay_ms),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(delays[..4], [250, 500, 1_000, 2_000]);
            assert!(delays[5..].iter().all(|&d| d == 5_000), "{delays:?}");
            // A connection that brings a new record is news again: at once.
            policy.on_connected(200_000);
            policy.on_record(200_000);
            assert_eq!(
                policy.after_end(
                    ConnectionEnd::Ended { alive: true },
                    true,
                    false,
                    200_005,
                    0.0
                ),
                Reconnect::After { delay_ms: 0 }
            );
            policy.on_connected(210_000);
            assert_eq!(
                policy.after_end(
                    ConnectionEnd::Ended { alive: true },
                    true,
                    false,
                    210_005,
                    0.0
                ),
                Reconnect::After { delay_ms: 250 },
                "the backoff starts over"
            );
        }
    }

    #[test]
    fn silent_connections_back_off_and_then_fail() {
        let mut policy = ReconnectPolicy::new(0);
        let mut delays = Vec::new();
        for _ in 1..MAX_SILENT_CONNECTIONS {
            match policy.after_end(ConnectionEnd::Stalled, true, false, 0, 0.0) {
                Reconnect::After { delay_ms } => delays.push(delay_ms),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, vec![250, 500, 1_000, 2_000, 4_000]);
        assert!(matches!(
            policy.after_end(ConnectionEnd::Stalled, true, false, 0, 0.0),
            Reconnect::Fail(Error::StreamStalled { .. })
        ));
    }

    #[test]
    fn a_sign_of_life_resets_the_budget() {
        let mut policy = ReconnectPolicy::new(0);
        for _ in 0..10 {
            for _ in 1..MAX_SILENT_CONNECTIONS {
                let network = Error::Network {
                    message: "reset".into(),
                };
                assert!(matches!(
                    policy.after_end(ConnectionEnd::Failed(network), true, false, 0, 0.5),
                    Reconnect::After { .. }
                ));
            }
            policy.on_ping();
        }
    }

    #[test]
    fn auth_failures_refresh_on_every_connection_but_not_twice_in_a_row() {
        let mut policy = ReconnectPolicy::new(0);
        let unauthorized = ConnectionEnd::Failed(Error::Unauthorized { message: None });
        assert_eq!(
            policy.after_end(unauthorized.clone(), true, false, 0, 0.0),
            Reconnect::RefreshToken
        );
        assert!(matches!(
            policy.after_end(unauthorized.clone(), true, false, 0, 0.0),
            Reconnect::Fail(Error::Unauthorized { .. })
        ));
        let mut policy = ReconnectPolicy::new(0);
        assert_eq!(
            policy.after_end(unauthorized.clone(), true, false, 0, 0.0),
            Reconnect::RefreshToken
        );
        policy.on_connected(0);
        assert_eq!(
            policy.after_end(unauthorized, true, false, 0, 0.0),
            Reconnect::RefreshToken,
            "an expiry later in the stream refreshes again (W7)"
        );
    }

    #[test]
    fn pings_alone_do_not_keep_a_dead_turn_open_forever() {
        let mut policy = ReconnectPolicy::new(0);
        policy.on_record(1_000);
        let alive = ConnectionEnd::Ended { alive: true };
        assert_eq!(
            policy.after_end(
                alive.clone(),
                true,
                false,
                1_000 + TURN_IDLE_LIMIT_MS - 1,
                0.0
            ),
            Reconnect::After { delay_ms: 0 }
        );
        assert_eq!(
            policy.after_end(alive, true, false, 1_000 + TURN_IDLE_LIMIT_MS, 0.0),
            Reconnect::Fail(Error::StreamStalled {
                idle_ms: Some(TURN_IDLE_LIMIT_MS)
            })
        );
    }

    #[test]
    fn the_idle_limit_counts_from_the_turns_start() {
        // A boundary read at 1 000, then the append took long to land (it waited for the
        // network): the turn it starts is not idle from the start.
        let mut policy = ReconnectPolicy::new(0);
        policy.on_record(1_000);
        let landed = 1_000 + 2 * TURN_IDLE_LIMIT_MS;
        policy.on_turn_start(landed);
        let alive = ConnectionEnd::Ended { alive: true };
        assert_eq!(
            policy.after_end(alive, true, false, landed + 1, 0.0),
            Reconnect::After { delay_ms: 0 }
        );
    }

    #[test]
    fn protocol_and_client_errors_fail_at_once() {
        for error in [
            Error::protocol("bad batch"),
            Error::NotFound { message: None },
            Error::SessionClosed {
                closed_reason: None,
            },
        ] {
            let mut policy = ReconnectPolicy::new(0);
            assert_eq!(
                policy.after_end(ConnectionEnd::Failed(error.clone()), true, false, 0, 0.0),
                Reconnect::Fail(error)
            );
        }
    }

    #[test]
    fn offline_ends_wait_for_the_network_without_counting() {
        let network = || {
            ConnectionEnd::Failed(Error::Network {
                message: "Failed to fetch".into(),
            })
        };
        let wait = Reconnect::After {
            delay_ms: OFFLINE_RECHECK_MS,
        };
        let mut policy = ReconnectPolicy::new(0);
        let mut now_ms = 0;
        // Far more dead connections than the silent limit: offline, none of them counts.
        for end in [
            network(),
            ConnectionEnd::Stalled,
            ConnectionEnd::Ended { alive: false },
        ]
        .into_iter()
        .cycle()
        .take(3 * MAX_SILENT_CONNECTIONS as usize)
        {
            assert_eq!(policy.after_end(end, true, true, now_ms, 0.0), wait);
            now_ms += OFFLINE_RECHECK_MS;
        }
        // Back online, the silent limit is whole again.
        for _ in 1..MAX_SILENT_CONNECTIONS {
            assert!(matches!(
                policy.after_end(network(), true, false, now_ms, 0.0),
                Reconnect::After { delay_ms } if delay_ms > 0
            ));
        }
        assert!(matches!(
            policy.after_end(network(), true, false, now_ms, 0.0),
            Reconnect::Fail(Error::Network { .. })
        ));
        // Time offline does not count toward the idle limit: an hour offline, then online,
        // the limit is still whole; a finished turn still finishes.
        let mut idle = ReconnectPolicy::new(0);
        let hour = 3_600_000;
        assert_eq!(idle.after_end(network(), true, true, hour, 0.0), wait);
        assert!(matches!(
            idle.after_end(network(), true, false, hour + TURN_IDLE_LIMIT_MS - 1, 0.0),
            Reconnect::After { .. }
        ));
        assert!(matches!(
            idle.after_end(network(), true, false, hour + TURN_IDLE_LIMIT_MS, 0.0),
            Reconnect::Fail(Error::StreamStalled { .. })
        ));
        assert_eq!(
            idle.after_end(network(), false, true, 0, 0.0),
            Reconnect::Finish
        );
        // A standing subscription waits the same way.
        let mut standing = ReconnectPolicy::standing(0);
        assert_eq!(standing.after_end(network(), false, true, 0, 0.0), wait);
    }

    #[test]
    fn an_answer_from_the_server_counts_even_when_offline_is_reported() {
        let mut policy = ReconnectPolicy::new(0);
        let server = || {
            ConnectionEnd::Failed(Error::Server {
                status: 503,
                message: None,
            })
        };
        for _ in 1..MAX_SILENT_CONNECTIONS {
            assert!(matches!(
                policy.after_end(server(), true, true, 0, 0.0),
                Reconnect::After { delay_ms } if delay_ms != OFFLINE_RECHECK_MS
            ));
        }
        assert!(matches!(
            policy.after_end(server(), true, true, 0, 0.0),
            Reconnect::Fail(Error::Server { .. })
        ));
    }
}
