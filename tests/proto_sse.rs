//! `SseDecoder` rules from WHATWG HTML §9.2.6, one behaviour per test.

use trigger_chat_wasm::proto::sse::{SseDecoder, SseEvent, MAX_ID_BYTES};

fn drain(decoder: &mut SseDecoder) -> Vec<SseEvent> {
    std::iter::from_fn(|| decoder.next_event()).collect()
}

fn decode_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    for chunk in chunks {
        decoder.push(chunk).unwrap();
    }
    drain(&mut decoder)
}

fn datas(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

#[test]
fn crlf_split_across_pushes_is_one_line_end() {
    // If the CR ending one push and the LF opening the next counted as two line ends, the LF
    // would be a blank line and "a" would be dispatched on its own.
    let events = decode_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r\n"]);
    assert_eq!(datas(&events), ["a\nb"]);
}

#[test]
fn cr_then_cr_is_two_line_ends() {
    let events = decode_chunks(&[b"data: a\r", b"\rdata: b\r\r"]);
    assert_eq!(datas(&events), ["a", "b"]);
}

#[test]
fn lone_lf_after_cr_in_next_push_is_not_a_blank_line() {
    // If "\r" + "\n" across pushes were two terminators, "\n" would be a blank line and
    // dispatch an event with only "x".
    let events = decode_chunks(&[b"data: x\r", b"\n", b"data: y\n\n"]);
    assert_eq!(datas(&events), ["x\ny"]);
}

#[test]
fn multibyte_utf8_split_across_pushes_decodes_exactly() {
    let text = "data: 👋 é 世\n\n".as_bytes();
    for cut in 0..text.len() {
        let events = decode_chunks(&[&text[..cut], &text[cut..]]);
        assert_eq!(datas(&events), ["👋 é 世"], "cut at byte {cut}");
    }
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let events = decode_chunks(&[b"data: a\xFFb\xE2\x82\n\n"]);
    assert_eq!(datas(&events), ["a\u{FFFD}b\u{FFFD}"]);
}

#[test]
fn bom_split_across_pushes_is_stripped_once() {
    let events = decode_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"]);
    assert_eq!(datas(&events), ["x"]);
    // A second BOM is content: the line's field name becomes "\u{FEFF}data", an unknown field.
    let events = decode_chunks(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n"]);
    assert_eq!(datas(&events), ["y"]);
}

#[test]
fn partial_bom_is_kept_as_line_bytes() {
    // EF BB then 'd': not a BOM; the two bytes start the field name, so the field is unknown.
    let events = decode_chunks(&[b"\xEF\xBB", b"data: x\n\ndata: y\n\n"]);
    assert_eq!(datas(&events), ["y"]);
}

#[test]
fn event_type_defaults_to_message_and_resets_after_dispatch() {
    let events = decode_chunks(&[b"event: batch\ndata: 1\n\ndata: 2\n\n"]);
    assert_eq!(events[0].event, "batch");
    assert_eq!(events[1].event, "message");
}

#[test]
fn block_without_data_dispatches_nothing_and_resets_event_type() {
    let events = decode_chunks(&[b"event: ping\n\ndata: after\n\n"]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "message");
}

#[test]
fn only_one_trailing_newline_is_stripped() {
    let events = decode_chunks(&[b"data: a\ndata:\n\n"]);
    assert_eq!(datas(&events), ["a\n"]);
}

#[test]
fn value_keeps_colons_after_the_first() {
    let events = decode_chunks(&[b"data: {\"a\":\"b:c\"}\n\n"]);
    assert_eq!(datas(&events), [r#"{"a":"b:c"}"#]);
}

#[test]
fn field_names_are_case_sensitive() {
    let events = decode_chunks(&[b"Data: no\nDATA: no\ndata: yes\n\n"]);
    assert_eq!(datas(&events), ["yes"]);
}

#[test]
fn retry_with_space_after_colon_is_accepted_and_non_digits_ignored() {
    let mut decoder = SseDecoder::new();
    decoder.push(b"retry: 1000\n\n").unwrap();
    assert_eq!(decoder.retry_ms(), Some(1000));
    decoder
        .push(b"retry: 10s\nretry: -5\nretry:\nretry: 1 0\n\n")
        .unwrap();
    assert_eq!(decoder.retry_ms(), Some(1000));
    decoder.push(b"retry:99999999999999999999999\n\n").unwrap();
    assert_eq!(decoder.retry_ms(), Some(u64::MAX));
}

#[test]
fn retry_in_the_same_block_is_reported_on_the_event() {
    let events = decode_chunks(&[b"retry: 3000\ndata: a\n\ndata: b\n\n"]);
    assert_eq!(events[0].retry_ms, Some(3000));
    assert_eq!(events[1].retry_ms, None);
}

#[test]
fn last_event_id_persists_until_changed_and_nul_ids_are_ignored() {
    let mut decoder = SseDecoder::new();
    decoder
        .push(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0\ndata: c\n\nid:\ndata: d\n\n")
        .unwrap();
    let ids: Vec<_> = drain(&mut decoder).into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["1", "1", "1", ""]);
    assert_eq!(decoder.last_event_id(), "");
}

#[test]
fn an_overlong_id_is_ignored_so_events_do_not_each_copy_it() {
    let mut decoder = SseDecoder::new();
    let over = "9".repeat(MAX_ID_BYTES + 1);
    let longest = "5".repeat(MAX_ID_BYTES);
    let input = format!("id: 7\ndata: a\n\nid: {over}\ndata\n\nid: {longest}\ndata\n\n");
    decoder.push(input.as_bytes()).unwrap();
    let ids: Vec<_> = drain(&mut decoder).into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["7", "7", longest.as_str()]);
}

#[test]
fn finish_drops_the_incomplete_event_but_keeps_id_and_retry() {
    let mut decoder = SseDecoder::new();
    decoder
        .push(b"retry: 500\nid: 9\ndata: done\n\ndata: half")
        .unwrap();
    decoder.finish();
    assert_eq!(datas(&drain(&mut decoder)), ["done"]);
    assert_eq!(decoder.last_event_id(), "9");
    assert_eq!(decoder.retry_ms(), Some(500));
    // The next push is a new stream: the half line is gone, a BOM is stripped again.
    decoder.push(b"\xEF\xBB\xBFdata: next\n\n").unwrap();
    let events = drain(&mut decoder);
    assert_eq!(datas(&events), ["next"]);
    assert_eq!(events[0].id, "9");
}

#[test]
fn event_without_final_blank_line_is_not_dispatched() {
    let mut decoder = SseDecoder::new();
    decoder.push(b"data: a\n").unwrap();
    decoder.finish();
    assert!(decoder.next_event().is_none());
}

#[test]
fn a_line_over_the_cap_is_a_protocol_error_in_any_split() {
    let line = [b"data: ".as_slice(), &[b'x'; 64], b"\n\n"].concat();
    // One push.
    let mut decoder = SseDecoder::with_max_line_bytes(32);
    let err = decoder.push(&line).unwrap_err();
    assert_eq!(err.code(), "protocol");
    // Many pushes: the buffered partial line trips the cap.
    let mut decoder = SseDecoder::with_max_line_bytes(32);
    let results: Vec<_> = line.chunks(5).map(|c| decoder.push(c)).collect();
    assert!(results.iter().any(Result::is_err));
    // A line exactly at the cap is fine.
    let mut decoder = SseDecoder::with_max_line_bytes(8);
    decoder.push(b"data: ab\n\n").unwrap();
    assert_eq!(datas(&drain(&mut decoder)), ["ab"]);
}

#[test]
fn the_default_cap_takes_a_full_batch_of_quote_heavy_records() {
    // One S2 read batch: up to 1 MiB of records. Each body is a JSON string inside the batch's
    // JSON, so a body full of quotes (a large tool output) comes out about twice its size.
    let body = format!("{{\"o\":\"{}\"}}", "\\\"".repeat(512 * 1024));
    let escaped = body.replace('\\', "\\\\").replace('"', "\\\"");
    let line = format!(
        "event: batch\ndata: {{\"records\":[{{\"seq_num\":1,\"body\":\"{escaped}\"}}]}}\n\n"
    );
    assert!(line.len() > 2 * 1024 * 1024, "{}", line.len());
    let mut decoder = SseDecoder::new();
    for chunk in line.as_bytes().chunks(64 * 1024) {
        decoder.push(chunk).unwrap();
    }
    let events = drain(&mut decoder);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].data.len(),
        line.len() - "event: batch\ndata: \n\n".len()
    );
}

#[test]
fn events_before_an_overlong_line_are_kept_and_reset_recovers() {
    let mut decoder = SseDecoder::with_max_line_bytes(16);
    let err = decoder
        .push(b"data: ok\n\ndata: this line is far too long\n\n")
        .unwrap_err();
    assert_eq!(err.code(), "protocol");
    assert_eq!(datas(&drain(&mut decoder)), ["ok"]);
    // Poisoned until reset: a later valid push still fails.
    assert!(decoder.push(b"data: x\n\n").is_err());
    decoder.reset();
    decoder.push(b"data: x\n\n").unwrap();
    assert_eq!(datas(&drain(&mut decoder)), ["x"]);
}

#[test]
fn an_event_whose_data_lines_pass_the_cap_is_a_protocol_error_in_any_split() {
    // Short lines, each under the cap, that never end their event: the joined data is capped
    // too, so a server that never sends the blank line cannot grow memory without bound.
    let stream = [
        b"data: ok\n\n".as_slice(),
        &b"data: 0123456789\n".repeat(10),
    ]
    .concat();
    for split in [stream.len(), 7, 1] {
        let mut decoder = SseDecoder::with_max_line_bytes(64);
        let results: Vec<_> = stream.chunks(split).map(|c| decoder.push(c)).collect();
        let err = results
            .into_iter()
            .find_map(Result::err)
            .expect("over the cap");
        assert_eq!(err.code(), "protocol");
        assert!(err.to_string().contains("event data"), "{err}");
        assert_eq!(datas(&drain(&mut decoder)), ["ok"]);
    }
    // Lines adding up to exactly the cap (each counted with its joining newline) are fine:
    // 5 × ("0123456789" + 1) = 55, + "abcdefgh" + 1 = 64.
    let mut decoder = SseDecoder::with_max_line_bytes(64);
    let exact = [&b"data: 0123456789\n".repeat(5)[..], b"data: abcdefgh\n\n"].concat();
    decoder.push(&exact).unwrap();
    assert_eq!(datas(&drain(&mut decoder))[0].len(), 63);
}

#[test]
fn large_data_line_in_many_small_pushes() {
    let payload = "y".repeat(300_000);
    let stream = format!("event: batch\ndata: {payload}\n\n");
    let mut decoder = SseDecoder::new();
    for chunk in stream.as_bytes().chunks(1000) {
        decoder.push(chunk).unwrap();
    }
    let events = drain(&mut decoder);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data.len(), 300_000);
}

#[test]
fn many_events_stream_in_linear_time() {
    // 100k small records: must finish well under a second even in a debug build.
    let one =
        "event: batch\ndata: {\"records\":[{\"seq_num\":1,\"timestamp\":2,\"body\":\"x\"}]}\n\n";
    let stream = one.repeat(100_000);
    let started = std::time::Instant::now();
    let mut decoder = SseDecoder::new();
    let mut count = 0;
    for chunk in stream.as_bytes().chunks(16 * 1024) {
        decoder.push(chunk).unwrap();
        while decoder.next_event().is_some() {
            count += 1;
        }
    }
    assert_eq!(count, 100_000);
    assert!(
        started.elapsed().as_secs() < 5,
        "took {:?}",
        started.elapsed()
    );
}
