//! Identifiers in Trigger.dev's friendly-id style (`session_…`, `run_…`). Random, so a browser that
//! kept a session id from an earlier server process gets a clean 404 instead of a collision.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn random_suffix(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new `session_…` friendly id.
pub fn session_id() -> String {
    format!("session_{}", random_suffix(25))
}

/// A new `run_…` friendly id.
pub fn run_id() -> String {
    format!("run_{}", random_suffix(25))
}

/// An `X-Part-Id` for an append that came without one.
pub fn part_id() -> String {
    format!("srv_{}", random_suffix(21))
}
