//! `Json`: strict RFC 8259 reading, `JSON.stringify`-identical writing.

use trigger_chat_wasm::proto::json::{write_json_string, Json, MAX_DEPTH};

fn roundtrip(text: &str) -> String {
    Json::parse(text).unwrap().to_json_string()
}

#[test]
fn compact_input_round_trips_byte_for_byte() {
    for text in [
        r#"{"a":[1,-2.5,3e10,0,-0,1E+2,true,false,null],"b":{"c":"d"},"":""}"#,
        r#"[]"#,
        r#"{}"#,
        r#""just a string""#,
        r#"18446744073709551616"#,
        r#"[[[[]]]]"#,
    ] {
        assert_eq!(roundtrip(text), text);
    }
}

#[test]
fn whitespace_is_dropped_on_write() {
    assert_eq!(
        roundtrip(" {\n\t\"a\" : [ 1 , 2 ] ,\r\n \"b\":null } "),
        r#"{"a":[1,2],"b":null}"#
    );
}

#[test]
fn string_escaping_matches_json_stringify() {
    // Expected text produced by Node 20: JSON.stringify("\u0000\u0001\b\t\n\u000b\f\r\u001f\u007f\u2028\u2029\"\\/é👋")
    let input = "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}\u{2028}\u{2029}\"\\/é👋";
    let mut out = String::new();
    write_json_string(&mut out, input);
    assert_eq!(
        out,
        "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\u{7f}\u{2028}\u{2029}\\\"\\\\/é👋\""
    );
}

#[test]
fn escapes_decode_and_re_escape_like_javascript() {
    let parsed = Json::parse(r#""a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u001F""#).unwrap();
    assert_eq!(parsed.as_str(), Some("a\"b\\c/d\u{8}\u{c}\n\r\tAé\u{1f}"));
    // `\/` and `\u0041` are not re-escaped; control characters use lowercase hex.
    assert_eq!(parsed.to_json_string(), r#""a\"b\\c/d\b\f\n\r\tAé\u001f""#);
}

#[test]
fn surrogate_pairs_combine_and_lone_surrogates_become_replacement() {
    assert_eq!(
        Json::parse(r#""\ud83d\udc4b""#).unwrap().as_str(),
        Some("👋")
    );
    assert_eq!(
        Json::parse(r#""\uD83D\uDC4B""#).unwrap().as_str(),
        Some("👋")
    );
    assert_eq!(
        Json::parse(r#""\ud83dx""#).unwrap().as_str(),
        Some("\u{FFFD}x")
    );
    assert_eq!(
        Json::parse(r#""\udc4b""#).unwrap().as_str(),
        Some("\u{FFFD}")
    );
    // High followed by a non-low escape: the second escape stands on its own.
    assert_eq!(
        Json::parse(r#""\ud83d\u0041""#).unwrap().as_str(),
        Some("\u{FFFD}A")
    );
    // Two highs then a low: first is lone, second pairs.
    assert_eq!(
        Json::parse(r#""\ud83d\ud83d\udc4b""#).unwrap().as_str(),
        Some("\u{FFFD}👋")
    );
    // Lone high at the very end of the string.
    assert_eq!(
        Json::parse(r#""\ud83d""#).unwrap().as_str(),
        Some("\u{FFFD}")
    );
}

#[test]
fn malformed_inputs_are_protocol_errors() {
    for text in [
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "[,1]",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "0x10",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "True",
        r#""abc"#,
        r#""a\x""#,
        r#""\u12""#,
        r#""\u12G4""#,
        "\"tab\there\"",
        "\"nl\nhere\"",
        "1 2",
        "[] []",
        "{} x",
        "\u{feff}{}",
        "'single'",
        r#"{"a":1}}"#,
    ] {
        let err = Json::parse(text).unwrap_err();
        assert_eq!(err.code(), "protocol", "input {text:?}");
    }
}

#[test]
fn error_messages_give_the_offset_but_never_the_text() {
    let err = Json::parse(r#"{"token":"eyJhbGciOi.eyJzdWIi.sig" oops}"#).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("byte 35"), "{message}");
    assert!(!message.contains("eyJ"), "{message}");
}

#[test]
fn nesting_limit_is_128_and_deeper_input_errors_without_overflow() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(Json::parse(&ok).is_ok());
    let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(Json::parse(&too_deep).unwrap_err().code(), "protocol");
    let objects = format!(
        "{}1{}",
        r#"{"a":"#.repeat(MAX_DEPTH + 1),
        "}".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(Json::parse(&objects).unwrap_err().code(), "protocol");
    // A megabyte of '[' must fail fast, not overflow the stack.
    assert!(Json::parse(&"[".repeat(1 << 20)).is_err());
}

#[test]
fn as_u64_only_for_plain_non_negative_integers() {
    let value = |text: &str| Json::parse(text).unwrap();
    assert_eq!(value("0").as_u64(), Some(0));
    assert_eq!(value("18446744073709551615").as_u64(), Some(u64::MAX));
    for text in [
        "18446744073709551616",
        "-1",
        "1.0",
        "1e3",
        "-0",
        r#""5""#,
        "true",
        "null",
    ] {
        assert_eq!(value(text).as_u64(), None, "{text}");
    }
    assert_eq!(value("1e3").as_f64(), Some(1000.0));
    assert_eq!(value("-2.5").as_f64(), Some(-2.5));
}

#[test]
fn accessors_return_none_on_the_wrong_type() {
    let value = Json::parse(r#"{"s":"x","b":true,"a":[1],"o":{},"n":null}"#).unwrap();
    assert_eq!(value.get("s").and_then(Json::as_str), Some("x"));
    assert_eq!(value.get("b").and_then(Json::as_bool), Some(true));
    assert_eq!(
        value.get("a").and_then(Json::as_array).map(<[Json]>::len),
        Some(1)
    );
    assert_eq!(
        value.get("o").and_then(Json::as_object).map(<[_]>::len),
        Some(0)
    );
    assert!(value.get("n").is_some_and(Json::is_null));
    assert_eq!(value.get("s").and_then(Json::as_bool), None);
    assert_eq!(value.get("b").and_then(Json::as_str), None);
    assert_eq!(value.get("missing"), None);
    assert_eq!(Json::parse("[1]").unwrap().get("0"), None);
}

#[test]
fn duplicate_keys_read_the_last_value() {
    let value = Json::parse(r#"{"a":1,"a":2}"#).unwrap();
    assert_eq!(value.get("a").and_then(Json::as_u64), Some(2));
}

#[test]
fn set_and_remove_edit_objects_in_place() {
    let mut value = Json::parse(r#"{"a":1,"b":2}"#).unwrap();
    value.set("a", Json::from("x"));
    value.set("c", Json::from(true));
    assert_eq!(value.to_json_string(), r#"{"a":"x","b":2,"c":true}"#);
    assert_eq!(value.remove("b"), Some(Json::from(2u64)));
    assert_eq!(value.remove("b"), None);
    assert_eq!(value.to_json_string(), r#"{"a":"x","c":true}"#);
}

#[test]
fn unicode_passes_through_unchanged() {
    let text = r#"{"text":"héllo 👋 世界 \u2028"}"#;
    let value = Json::parse(text).unwrap();
    assert_eq!(
        value.get("text").and_then(Json::as_str),
        Some("héllo 👋 世界 \u{2028}")
    );
    assert_eq!(
        value.to_json_string(),
        "{\"text\":\"héllo 👋 世界 \u{2028}\"}"
    );
}

#[test]
fn a_large_batch_parses_quickly() {
    let record = r#"{"seq_num":1,"timestamp":1712150400000,"body":"{\"data\":{\"type\":\"text-delta\",\"id\":\"t\",\"delta\":\"hello world\"},\"id\":\"p\"}"}"#;
    let text = format!("{{\"records\":[{}]}}", vec![record; 50_000].join(","));
    let started = std::time::Instant::now();
    let value = Json::parse(&text).unwrap();
    assert_eq!(
        value
            .get("records")
            .and_then(Json::as_array)
            .map(<[Json]>::len),
        Some(50_000)
    );
    assert!(
        started.elapsed().as_secs() < 5,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn integers_are_written_in_decimal_at_every_digit_boundary() {
    use trigger_chat_wasm::proto::json::u64_string;
    for value in [0, 1, 9, 10, 11, 99, 100, 101, 1_000_000, 4_294_967_296] {
        assert_eq!(u64_string(value), value.to_string());
    }
    assert_eq!(u64_string(u64::MAX), "18446744073709551615");
    assert_eq!(
        u64_string(10_000_000_000_000_000_000),
        "10000000000000000000"
    );
}
