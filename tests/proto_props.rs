//! Property tests: any re-chunking of a stream gives the same events as one push
//! (STYLE.md §2), and JSON written by us reads back to the same value.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use trigger_chat_wasm::proto::json::{write_json_string, Json};
use trigger_chat_wasm::proto::records::decode_event;
use trigger_chat_wasm::proto::sse::{SseDecoder, SseEvent};

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

/// Decode `bytes` split at `cuts` (positions, any order, out-of-range ones clamped).
/// Returns the events, whether a push failed, and the decoder's final id and retry.
fn decode_split(
    bytes: &[u8],
    cuts: &[usize],
    max_line_bytes: usize,
) -> (Vec<SseEvent>, bool, String, Option<u64>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    cuts.sort_unstable();
    let mut decoder = SseDecoder::with_max_line_bytes(max_line_bytes);
    let mut failed = false;
    let mut start = 0;
    for end in cuts.into_iter().chain([bytes.len()]) {
        if decoder.push(&bytes[start..end]).is_err() {
            failed = true;
            break;
        }
        start = end;
    }
    decoder.finish();
    let events: Vec<_> = std::iter::from_fn(|| decoder.next_event()).collect();
    (
        events,
        failed,
        decoder.last_event_id().to_owned(),
        decoder.retry_ms(),
    )
}

const FIELDS: [&[u8]; 8] = [
    b"data",
    b"data",
    b"event",
    b"id",
    b"retry",
    b"",
    b"x-unknown",
    "\u{feff}data".as_bytes(),
];
const SEPARATORS: [&[u8]; 4] = [b": ", b":", b"", b":  "];
const VALUE_TOKENS: [&[u8]; 16] = [
    b"a",
    b" ",
    b":",
    b"1",
    "\u{e9}".as_bytes(),
    "\u{4e16}".as_bytes(),
    "\u{1f44b}".as_bytes(),
    b"\xFF",
    b"\xF0\x9F",
    b"\0",
    b"[DONE]",
    br#"{"records":[]}"#,
    b"\xEF\xBB\xBF",
    b"batch",
    b"7",
    b"\t",
];
const ENDINGS: [&[u8]; 3] = [b"\n", b"\r\n", b"\r"];

/// A generated stream: each line is a field, a separator and up to four value tokens (which
/// include multi-byte UTF-8, invalid bytes, NUL and a BOM), then a random line ending, often
/// followed by a blank line. Drawn from plain integers so generation stays cheap.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::collection::vec((any::<u32>(), any::<u8>()), 0..24),
    )
        .prop_map(|(bom, lines)| {
            let mut out = Vec::new();
            if bom {
                out.extend_from_slice(b"\xEF\xBB\xBF");
            }
            for (bits, ending_bits) in lines {
                let pick = |shift: u32, modulo: usize| ((bits >> shift) as usize) % modulo;
                out.extend_from_slice(FIELDS[pick(0, FIELDS.len())]);
                out.extend_from_slice(SEPARATORS[pick(3, SEPARATORS.len())]);
                for token in 0..pick(5, 5) {
                    out.extend_from_slice(
                        VALUE_TOKENS[pick(8 + 4 * token as u32, VALUE_TOKENS.len())],
                    );
                }
                let ending = ENDINGS[usize::from(ending_bits) % ENDINGS.len()];
                out.extend_from_slice(ending);
                if ending_bits & 0x80 != 0 {
                    out.extend_from_slice(ending);
                }
            }
            out
        })
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<u64>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        ".*".prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((".*", inner), 0..6).prop_map(Json::Object),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_rechunking_of_a_fixture_gives_identical_events(
        index in 0..FIXTURES.len(),
        cuts in prop::collection::vec(0usize..2048, 0..40),
    ) {
        let bytes = FIXTURES[index];
        let whole = decode_split(bytes, &[], usize::MAX);
        let split = decode_split(bytes, &cuts, usize::MAX);
        prop_assert_eq!(&split, &whole);
        prop_assert!(!whole.0.is_empty());
        for event in &whole.0 {
            prop_assert!(decode_event(event).is_ok());
        }
    }

    #[test]
    fn any_rechunking_of_a_generated_stream_gives_identical_events(
        bytes in stream(),
        cuts in prop::collection::vec(0usize..512, 0..40),
    ) {
        let whole = decode_split(&bytes, &[], usize::MAX);
        let split = decode_split(&bytes, &cuts, usize::MAX);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn the_line_cap_fails_identically_in_any_split(
        bytes in stream(),
        cuts in prop::collection::vec(0usize..512, 0..40),
        max_line_bytes in 0usize..24,
    ) {
        let whole = decode_split(&bytes, &[], max_line_bytes);
        let split = decode_split(&bytes, &cuts, max_line_bytes);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn written_json_reads_back_to_the_same_value(value in json_value()) {
        let text = value.to_json_string();
        let parsed = Json::parse(&text).unwrap();
        prop_assert_eq!(&parsed, &value);
        prop_assert_eq!(parsed.to_json_string(), text);
    }

    #[test]
    fn any_string_survives_escaping(text in "\\PC*|[\\x00-\\x1f\"\\\\]*") {
        let mut out = String::new();
        write_json_string(&mut out, &text);
        prop_assert_eq!(Json::parse(&out).unwrap(), Json::String(text));
    }
}
