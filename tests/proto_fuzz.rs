//! Bounded randomized fuzzing of the decoders (cargo-fuzz needs nightly, which this toolchain
//! does not have). Mutates the fixtures and random bytes, and checks that nothing panics, that
//! re-chunking never changes the events, and that JSON we accept re-reads to the same value.
//!
//! Run alone, longer, with another seed:
//! `PROTO_FUZZ_SECONDS=60 PROTO_FUZZ_SEED=7 cargo test --release --test proto_fuzz -- --nocapture`
#![cfg(not(target_arch = "wasm32"))]

use std::time::{Duration, Instant};

use trigger_chat_wasm::proto::error::Error;
use trigger_chat_wasm::proto::json::Json;
use trigger_chat_wasm::proto::records::{decode_batch, decode_event};
use trigger_chat_wasm::proto::session::PersistedSession;
use trigger_chat_wasm::proto::sse::{SseDecoder, SseEvent};
use trigger_chat_wasm::proto::wire::{slim_message_for_wire, AppendResponse};

const FIXTURES: [&[u8]; 10] = [
    include_bytes!("fixtures/docs_stream.sse"),
    include_bytes!("fixtures/docs_stream_crlf.sse"),
    include_bytes!("fixtures/docs_stream_cr.sse"),
    include_bytes!("fixtures/docs_stream_bom.sse"),
    include_bytes!("fixtures/error_event.sse"),
    include_bytes!("fixtures/comments_retry.sse"),
    include_bytes!("fixtures/turn_complete.sse"),
    include_bytes!("fixtures/legacy_control.sse"),
    include_bytes!("fixtures/session_closed.sse"),
    include_bytes!("fixtures/pending_version.sse"),
];

/// Byte strings worth splicing in: terminators, field names, JSON structure, escapes, broken
/// UTF-8 and the markers the classifier looks for.
const DICTIONARY: [&[u8]; 24] = [
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b":",
    b"data: ",
    b"event: batch\n",
    b"event: ping\n",
    b"id: ",
    b"retry: ",
    b"\xEF\xBB\xBF",
    b"\xF0\x9F\x91",
    b"\xFF",
    b"\0",
    b"[DONE]",
    b"{",
    b"}",
    b"[",
    b"\"",
    b"\\u",
    b"\\ud83d",
    b"\\\"trigger:",
    b"\"seq_num\":",
    b"[\"\",\"trim\"]",
];

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let at = at.min(input.len() - 1);
                input[at] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            2 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + rng.below(64)).min(input.len());
                let copy = input[at..end].to_vec();
                let to = rng.below(input.len() + 1);
                input.splice(to..to, copy);
            }
            4 => input.insert(at, rng.next() as u8),
            _ => {
                let end = (at + rng.below(8)).min(input.len());
                for byte in &mut input[at..end] {
                    *byte = rng.next() as u8;
                }
            }
        }
    }
}

fn decode(bytes: &[u8], rng: Option<&mut Rng>, max_line_bytes: usize) -> (Vec<SseEvent>, bool) {
    let mut decoder = SseDecoder::with_max_line_bytes(max_line_bytes);
    let mut failed = false;
    match rng {
        None => failed = decoder.push(bytes).is_err(),
        Some(rng) => {
            let mut rest = bytes;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(1 + rng.below(rest.len().min(64)));
                if decoder.push(chunk).is_err() {
                    failed = true;
                    break;
                }
                rest = tail;
            }
        }
    }
    decoder.finish();
    (
        std::iter::from_fn(|| decoder.next_event()).collect(),
        failed,
    )
}

fn check_json(text: &str) {
    if let Ok(value) = Json::parse(text) {
        let written = value.to_json_string();
        assert_eq!(
            Json::parse(&written).as_ref(),
            Ok(&value),
            "re-read of {written:?}"
        );
        let _ = slim_message_for_wire(&value);
        let _ = PersistedSession::from_json(&value);
    }
    let _ = AppendResponse::parse(text);
    let _ = decode_batch(text);
    let _ = PersistedSession::decode_from_storage(text, "chat-1");
    let _ = Error::from_http_status(400, text).to_string();
}

#[test]
fn fuzz_decoders_for_a_bounded_time() {
    let seconds: f64 = std::env::var("PROTO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let seed: u64 = std::env::var("PROTO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CAFE_F00D_D00D);
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut iterations = 0u64;
    while Instant::now() < deadline {
        iterations += 1;
        let mut input = if rng.below(8) == 0 {
            (0..rng.below(256)).map(|_| rng.next() as u8).collect()
        } else {
            FIXTURES[rng.below(FIXTURES.len())].to_vec()
        };
        mutate(&mut rng, &mut input);

        let max_line_bytes = if rng.below(4) == 0 {
            rng.below(128)
        } else {
            usize::MAX
        };
        let whole = decode(&input, None, max_line_bytes);
        let split = decode(&input, Some(&mut rng), max_line_bytes);
        assert_eq!(
            split, whole,
            "re-chunking changed the events (seed {seed}, iteration {iterations})"
        );

        for event in &whole.0 {
            let _ = decode_event(event);
            check_json(&event.data);
        }
        check_json(&String::from_utf8_lossy(&input));
    }
    eprintln!("proto_fuzz: {iterations} iterations in {seconds} s (seed {seed})");
    assert!(iterations > 0);
}
