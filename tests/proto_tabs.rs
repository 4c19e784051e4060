//! Tab ownership, one rule at a time: wire messages (JS-compatible, strictly validated), claims,
//! crossing claims, heartbeats, timeouts, Web Lock reports, and versioned conversation copies.
//! The randomized network simulation is in `proto_tabs_sim.rs`.

use trigger_chat_wasm::proto::json::Json;
use trigger_chat_wasm::proto::tabs::{
    writer_lock_name, Claim, Effect, Message, TabCoordinator, CLAIM_TIMEOUT_MS,
    HEARTBEAT_INTERVAL_MS, MAX_ID_CHARS, MAX_MESSAGES_JSON_BYTES,
};
use trigger_chat_wasm::proto::Error;

const CHAT: &str = "chat-1";

fn tab(id: &str) -> TabCoordinator {
    let mut tab = TabCoordinator::new(id);
    tab.take_effects();
    tab
}

/// A conversation of one UI message, as JSON text.
fn ui(id: &str) -> String {
    format!(r#"[{{"id":"{id}","role":"assistant","parts":[]}}]"#)
}

fn parse(text: &str) -> Message {
    Message::parse_text(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

/// The broadcasts among `effects`, as the JSON text the channel would carry.
fn posted(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Broadcast(message) => Some(message.clone().into_json_text()),
            _ => None,
        })
        .collect()
}

/// Deliver everything `from` has queued to each of `to` (through JSON text, like the channel).
fn deliver(from: &mut TabCoordinator, to: &mut [&mut TabCoordinator], now_ms: u64) -> Vec<Effect> {
    let effects = from.take_effects();
    for text in posted(&effects) {
        for tab in to.iter_mut() {
            tab.receive(parse(&text), now_ms);
        }
    }
    effects
}

fn read_only_changes(effects: &[Effect]) -> Vec<bool> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::ReadOnlyChanged { read_only, .. } => Some(*read_only),
            _ => None,
        })
        .collect()
}

fn claim_msg(tab: &str, at: Option<u64>, lock: bool) -> Message {
    Message::Claim(Claim {
        chat_id: CHAT.into(),
        tab_id: tab.into(),
        at,
        lock,
    })
}

fn heartbeat_msg(tab: &str, at: Option<u64>, lock: bool) -> Message {
    Message::Heartbeat(Claim {
        chat_id: CHAT.into(),
        tab_id: tab.into(),
        at,
        lock,
    })
}

// ---------------------------------------------------------------------------------------------
// Wire messages

#[test]
fn js_tab_messages_are_understood() {
    let claim = parse(r#"{"type":"claim","chatId":"c","tabId":"js"}"#);
    assert_eq!(
        claim,
        Message::Claim(Claim {
            chat_id: "c".into(),
            tab_id: "js".into(),
            at: None,
            lock: false
        })
    );
    let release = parse(r#"{"type":"release","chatId":"c","tabId":"js"}"#);
    assert_eq!(
        release,
        Message::Release {
            chat_id: "c".into(),
            tab_id: "js".into(),
            at: None
        }
    );
    assert!(matches!(
        parse(r#"{"type":"heartbeat","chatId":"c","tabId":"js"}"#),
        Message::Heartbeat(Claim {
            at: None,
            lock: false,
            ..
        })
    ));
    let messages = parse(
        r#"{"type":"messages","chatId":"c","tabId":"js","messages":[{"id":"m1","role":"user","parts":[]}]}"#,
    );
    let Message::Messages {
        messages, version, ..
    } = messages
    else {
        panic!("not messages");
    };
    assert_eq!(version, None);
    assert_eq!(
        messages.to_json_string(),
        r#"[{"id":"m1","role":"user","parts":[]}]"#
    );
    // The JS transport posts `{lastEventId: state.lastEventId}`; undefined disappears in JSON.
    assert_eq!(
        parse(r#"{"type":"session","chatId":"c","tabId":"js","session":{"lastEventId":"42"}}"#),
        Message::Session {
            chat_id: "c".into(),
            tab_id: "js".into(),
            last_event_id: Some("42".into()),
            consumed_input_seq: None,
            version: None
        }
    );
    assert!(matches!(
        parse(r#"{"type":"session","chatId":"c","tabId":"js","session":{}}"#),
        Message::Session {
            last_event_id: None,
            ..
        }
    ));
}

#[test]
fn our_messages_keep_the_js_shape_and_add_fields() {
    let mut a = TabCoordinator::new("tab-a");
    a.claim(CHAT, 1_700_000_000_000, true).unwrap();
    a.broadcast_messages(CHAT, Json::parse(r#"[{"id":"m1"}]"#).unwrap(), 7)
        .unwrap();
    a.broadcast_session(CHAT, "99", None, 3).unwrap();
    a.release(CHAT);
    a.announce_removed(CHAT);
    assert_eq!(
        posted(&a.take_effects()),
        [
            r#"{"type":"who","tabId":"tab-a","v":1}"#,
            r#"{"type":"claim","chatId":"chat-1","tabId":"tab-a","at":1700000000000,"lock":true,"v":1}"#,
            r#"{"type":"messages","chatId":"chat-1","tabId":"tab-a","messages":[{"id":"m1"}],"version":7,"v":1}"#,
            r#"{"type":"session","chatId":"chat-1","tabId":"tab-a","session":{"lastEventId":"99"},"version":3,"v":1}"#,
            r#"{"type":"release","chatId":"chat-1","tabId":"tab-a","at":1700000000000,"v":1}"#,
            r#"{"type":"removed","chatId":"chat-1","tabId":"tab-a","v":1}"#,
        ]
    );
}

#[test]
fn every_message_round_trips() {
    let messages = [
        claim_msg("t", Some(5), true),
        heartbeat_msg("t", None, false),
        Message::Release {
            chat_id: "c".into(),
            tab_id: "t".into(),
            at: Some(9),
        },
        Message::Who {
            tab_id: "t".into(),
            chat_id: Some("c".into()),
        },
        Message::Who {
            tab_id: "t".into(),
            chat_id: None,
        },
        Message::Messages {
            chat_id: "c".into(),
            tab_id: "t".into(),
            messages: Json::parse(&ui("x")).unwrap(),
            version: Some(1),
        },
        Message::Session {
            chat_id: "c".into(),
            tab_id: "t".into(),
            last_event_id: Some("18446744073709551615".into()),
            consumed_input_seq: None,
            version: None,
        },
        Message::Removed {
            chat_id: "c".into(),
            tab_id: "t".into(),
        },
    ];
    for message in messages {
        assert_eq!(Message::parse(&message.to_owned().into_json()), Ok(message));
    }
}

#[test]
fn malformed_messages_are_rejected_with_a_protocol_error() {
    let long = "x".repeat(MAX_ID_CHARS + 1);
    let cases = [
        String::from("[]"),
        String::from("null"),
        String::from(r#"{"chatId":"c","tabId":"t"}"#),
        String::from(r#"{"type":"grab","chatId":"c","tabId":"t"}"#),
        String::from(r#"{"type":7,"chatId":"c","tabId":"t"}"#),
        String::from(r#"{"type":"claim","chatId":"","tabId":"t"}"#),
        String::from(r#"{"type":"claim","tabId":"t"}"#),
        String::from(r#"{"type":"claim","chatId":"c","tabId":42}"#),
        String::from(r#"{"type":"claim","chatId":"c"}"#),
        format!(r#"{{"type":"claim","chatId":"{long}","tabId":"t"}}"#),
        format!(r#"{{"type":"claim","chatId":"c","tabId":"{long}"}}"#),
        String::from(r#"{"type":"claim","chatId":"c","tabId":"t","at":-1}"#),
        String::from(r#"{"type":"claim","chatId":"c","tabId":"t","at":1.5}"#),
        String::from(r#"{"type":"claim","chatId":"c","tabId":"t","at":"5"}"#),
        String::from(r#"{"type":"claim","chatId":"c","tabId":"t","at":9007199254740992}"#),
        String::from(r#"{"type":"claim","chatId":"c","tabId":"t","lock":"yes"}"#),
        String::from(r#"{"type":"claim","chatId":"c","tabId":"t","v":"1"}"#),
        String::from(r#"{"type":"who","tabId":"t","chatId":""}"#),
        String::from(r#"{"type":"messages","chatId":"c","tabId":"t"}"#),
        String::from(r#"{"type":"messages","chatId":"c","tabId":"t","messages":{"0":1}}"#),
        String::from(r#"{"type":"messages","chatId":"c","tabId":"t","messages":[null]}"#),
        String::from(
            r#"{"type":"messages","chatId":"c","tabId":"t","messages":[{"id":"m","role":"user"}]}"#,
        ),
        String::from(
            r#"{"type":"messages","chatId":"c","tabId":"t","messages":[{"id":1,"role":"user","parts":[]}]}"#,
        ),
        String::from(r#"{"type":"messages","chatId":"c","tabId":"t","messages":[],"version":-3}"#),
        String::from(r#"{"type":"session","chatId":"c","tabId":"t"}"#),
        String::from(r#"{"type":"session","chatId":"c","tabId":"t","session":"42"}"#),
        String::from(r#"{"type":"session","chatId":"c","tabId":"t","session":{"lastEventId":42}}"#),
        format!(
            r#"{{"type":"session","chatId":"c","tabId":"t","session":{{"lastEventId":"{long}"}}}}"#
        ),
        String::from(r#"{"type":"removed","tabId":"t"}"#),
        String::from(r#"{"type":"removed","chatId":7,"tabId":"t"}"#),
        String::from(r#"{"type":"claim","chatId":"c","tabId":"t""#),
    ];
    for text in cases {
        let err = Message::parse_text(&text).expect_err(&text);
        assert_eq!(err.code(), "protocol", "{text}");
        // The error never echoes the (possibly huge or hostile) input.
        assert!(err.to_string().len() < 200, "{text}");
    }
}

#[test]
fn ids_are_limited_in_characters_not_bytes() {
    let id = "é".repeat(MAX_ID_CHARS); // 512 bytes
    let text = format!(r#"{{"type":"claim","chatId":"{id}","tabId":"t"}}"#);
    assert_eq!(parse(&text).chat_id(), Some(id.as_str()));
    let id = "é".repeat(MAX_ID_CHARS + 1);
    let text = format!(r#"{{"type":"claim","chatId":"{id}","tabId":"t"}}"#);
    assert!(Message::parse_text(&text).is_err());
}

#[test]
fn null_fields_count_as_absent_and_unknown_fields_are_ignored() {
    let message = parse(
        r#"{"type":"claim","chatId":"c","tabId":"t","at":null,"lock":null,"v":null,"future":{"x":1}}"#,
    );
    assert_eq!(
        message,
        Message::Claim(Claim {
            chat_id: "c".into(),
            tab_id: "t".into(),
            at: None,
            lock: false
        })
    );
}

#[test]
fn oversized_conversations_are_refused_on_both_sides() {
    let big = Json::Array(vec![Json::from("y".repeat(MAX_MESSAGES_JSON_BYTES))]);
    let mut a = tab("tab-a");
    let err = a.broadcast_messages(CHAT, big.clone(), 1).unwrap_err();
    assert_eq!(err.code(), "protocol");
    assert!(a.take_effects().is_empty());
    let message = Json::Object(vec![
        ("type".into(), "messages".into()),
        ("chatId".into(), "c".into()),
        ("tabId".into(), "t".into()),
        ("messages".into(), big),
    ]);
    assert!(Message::parse(&message).is_err());
    assert!(Message::parse_text(&message.to_json_string()).is_err());
    // Just under the cap is fine.
    let fits = Json::Array(vec![Json::from("y".repeat(MAX_MESSAGES_JSON_BYTES - 16))]);
    a.broadcast_messages(CHAT, fits, 1).unwrap();
    // Not an array: refused before it reaches the channel.
    assert!(a.broadcast_messages(CHAT, Json::object(), 2).is_err());
}

// ---------------------------------------------------------------------------------------------
// Claims

#[test]
fn joining_asks_who_owns_what() {
    let mut a = TabCoordinator::new("tab-a");
    assert_eq!(
        posted(&a.take_effects()),
        [r#"{"type":"who","tabId":"tab-a","v":1}"#]
    );
}

#[test]
fn a_claimed_chat_is_read_only_elsewhere_and_its_send_is_refused() {
    let mut a = tab("tab-a");
    let mut b = tab("tab-b");
    a.claim(CHAT, 1_000, false).unwrap();
    assert!(a.has_claim(CHAT));
    assert!(!a.is_read_only(CHAT));
    deliver(&mut a, &mut [&mut b], 1_005);
    assert_eq!(read_only_changes(&b.take_effects()), [true]);
    assert!(b.is_read_only(CHAT));
    assert!(!b.has_claim(CHAT));
    assert_eq!(b.owner(CHAT), Some("tab-a"));
    let err = b.claim(CHAT, 1_010, false).unwrap_err();
    assert_eq!(err, Error::ReadOnlyTab);
    assert_eq!(err.code(), "read_only_tab");
    assert!(
        b.take_effects().is_empty(),
        "a refused claim announces nothing"
    );
    // Another chat is unaffected.
    b.claim("chat-2", 1_020, false).unwrap();
}

#[test]
fn release_frees_the_chat_for_everyone() {
    let mut a = tab("tab-a");
    let mut b = tab("tab-b");
    a.claim(CHAT, 1_000, false).unwrap();
    deliver(&mut a, &mut [&mut b], 1_001);
    b.take_effects();
    a.release(CHAT);
    assert!(!a.has_claim(CHAT));
    deliver(&mut a, &mut [&mut b], 1_002);
    assert_eq!(read_only_changes(&b.take_effects()), [false]);
    assert!(!b.is_read_only(CHAT));
    b.claim(CHAT, 1_003, false).unwrap();
    // Releasing what we do not own says nothing.
    a.release(CHAT);
    a.release("never-claimed");
    assert!(a.take_effects().is_empty());
}

#[test]
fn a_release_or_claim_dated_far_ahead_is_forged_and_changes_nothing() {
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000), false), 1_001);
    // Believed, it would free the chat and overtake every later claim of tab-a.
    b.receive(
        Message::Release {
            chat_id: CHAT.into(),
            tab_id: "tab-a".into(),
            at: Some(9_000_000_000_000_000),
        },
        1_002,
    );
    assert!(b.is_read_only(CHAT));
    b.receive(claim_msg("tab-a", Some(5_000), false), 5_001);
    b.receive(
        Message::Release {
            chat_id: CHAT.into(),
            tab_id: "tab-a".into(),
            at: Some(5_000),
        },
        5_002,
    );
    assert!(!b.is_read_only(CHAT), "a genuine release still frees it");
    b.receive(claim_msg("tab-a", Some(6_000), false), 6_001);
    assert!(b.is_read_only(CHAT), "and tab-a's next claim counts");

    // A claim dated far ahead is forged too: believed, it would outrank every later release.
    let mut c = tab("tab-c");
    c.receive(
        claim_msg("tab-a", Some(9_000_000_000_000_000), false),
        1_000,
    );
    assert!(!c.is_read_only(CHAT));
    c.receive(
        heartbeat_msg("tab-a", Some(9_000_000_000_000_000), false),
        1_001,
    );
    assert!(!c.is_read_only(CHAT));
}

#[test]
fn only_the_owner_can_release_a_claim() {
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000), false), 1_001);
    b.receive(
        Message::Release {
            chat_id: CHAT.into(),
            tab_id: "tab-c".into(),
            at: None,
        },
        1_002,
    );
    assert!(b.is_read_only(CHAT), "tab-c cannot free tab-a's chat");
    // A release of tab-a's *earlier* claim, overtaken by its newer one, frees nothing either.
    b.receive(claim_msg("tab-a", Some(2_000), false), 2_001);
    b.receive(
        Message::Release {
            chat_id: CHAT.into(),
            tab_id: "tab-a".into(),
            at: Some(1_000),
        },
        2_002,
    );
    assert!(b.is_read_only(CHAT));
    b.receive(
        Message::Release {
            chat_id: CHAT.into(),
            tab_id: "tab-a".into(),
            at: Some(2_000),
        },
        2_003,
    );
    assert!(!b.is_read_only(CHAT));
}

#[test]
fn a_claim_overtaken_by_its_own_release_stays_released() {
    let mut b = tab("tab-b");
    b.receive(
        Message::Release {
            chat_id: CHAT.into(),
            tab_id: "tab-a".into(),
            at: Some(1_000),
        },
        1_010,
    );
    b.receive(claim_msg("tab-a", Some(1_000), false), 1_020);
    b.receive(heartbeat_msg("tab-a", Some(1_000), false), 1_030);
    assert!(!b.is_read_only(CHAT));
    // tab-a's next claim is newer, so it counts.
    b.receive(claim_msg("tab-a", Some(1_040), false), 1_050);
    assert!(b.is_read_only(CHAT));
}

#[test]
fn claiming_twice_in_one_millisecond_still_orders_the_claims() {
    let mut a = tab("tab-a");
    a.claim(CHAT, 1_000, false).unwrap();
    a.release(CHAT);
    a.claim(CHAT, 1_000, false).unwrap();
    let texts = posted(&a.take_effects());
    assert!(texts[0].contains(r#""at":1000"#), "{texts:?}");
    assert!(texts[1].contains(r#""at":1000"#), "{texts:?}");
    assert!(texts[2].contains(r#""at":1001"#), "{texts:?}");
    // A tab that saw the release still accepts the second claim.
    let mut b = tab("tab-b");
    for text in &texts {
        b.receive(parse(text), 1_002);
    }
    assert_eq!(b.owner(CHAT), Some("tab-a"));
}

#[test]
fn reclaiming_an_owned_chat_reannounces_it_with_the_original_time() {
    let mut a = tab("tab-a");
    a.claim(CHAT, 1_000, false).unwrap();
    a.claim(CHAT, 3_000, false).unwrap();
    let texts = posted(&a.take_effects());
    assert_eq!(texts.len(), 2);
    assert_eq!(texts[0], texts[1], "the rank of the claim does not worsen");
}

#[test]
fn own_messages_are_ignored() {
    let mut a = tab("tab-a");
    a.claim(CHAT, 1_000, false).unwrap();
    let texts = posted(&a.take_effects());
    a.receive(parse(&texts[0]), 1_001);
    a.receive(heartbeat_msg("tab-a", Some(1), false), 1_002);
    a.receive(
        Message::Release {
            chat_id: CHAT.into(),
            tab_id: "tab-a".into(),
            at: None,
        },
        1_003,
    );
    assert!(a.has_claim(CHAT));
    assert!(a.take_effects().is_empty());
}

#[test]
fn release_all_gives_back_every_chat_on_pagehide() {
    let mut a = tab("tab-a");
    let mut b = tab("tab-b");
    for chat in ["c1", "c2", "c3"] {
        a.claim(chat, 1_000, false).unwrap();
    }
    deliver(&mut a, &mut [&mut b], 1_001);
    b.take_effects();
    a.release_all();
    assert_eq!(a.owned().count(), 0);
    deliver(&mut a, &mut [&mut b], 1_002);
    assert_eq!(read_only_changes(&b.take_effects()), [false, false, false]);
}

// ---------------------------------------------------------------------------------------------
// Crossing claims (M1) and JS tabs

#[test]
fn crossing_claims_leave_exactly_one_owner_the_earliest() {
    let mut a = tab("tab-a");
    let mut b = tab("tab-b");
    // Both claim before hearing the other.
    a.claim(CHAT, 1_000, false).unwrap();
    b.claim(CHAT, 1_003, false).unwrap();
    let from_a = posted(&a.take_effects());
    let from_b = posted(&b.take_effects());
    a.receive(parse(&from_b[0]), 1_050);
    // a ranks first: it keeps the chat and tells b.
    let a_effects = a.take_effects();
    assert!(a.has_claim(CHAT));
    assert_eq!(posted(&a_effects).len(), 1);
    b.receive(parse(&from_a[0]), 1_060);
    let b_effects = b.take_effects();
    assert_eq!(
        b_effects,
        [
            Effect::LostClaim {
                chat_id: CHAT.into()
            },
            Effect::ReadOnlyChanged {
                chat_id: CHAT.into(),
                read_only: true
            },
        ]
    );
    assert!(!b.has_claim(CHAT));
    assert_eq!(b.owner(CHAT), Some("tab-a"));
    // a's re-announcement changes nothing further at b.
    b.receive(parse(&posted(&a_effects)[0]), 1_070);
    assert!(b.take_effects().is_empty());
}

#[test]
fn equal_claim_times_go_to_the_smaller_tab_id() {
    let mut a = tab("tab-a");
    let mut b = tab("tab-b");
    a.claim(CHAT, 1_000, false).unwrap();
    b.claim(CHAT, 1_000, false).unwrap();
    deliver(&mut a, &mut [&mut b], 1_010);
    deliver(&mut b, &mut [&mut a], 1_010);
    assert!(a.has_claim(CHAT));
    assert!(!b.has_claim(CHAT));
    assert_eq!(b.owner(CHAT), Some("tab-a"));
}

#[test]
fn a_third_tab_agrees_whichever_claim_it_hears_first() {
    for order in [[0, 1], [1, 0]] {
        let mut c = tab("tab-c");
        let claims = [
            claim_msg("tab-z", Some(1_000), false),
            claim_msg("tab-a", Some(1_004), false),
        ];
        for index in order {
            c.receive(claims[index].clone(), 1_100);
        }
        assert_eq!(
            c.owner(CHAT),
            Some("tab-z"),
            "earliest claim wins, not tab id"
        );
    }
}

#[test]
fn a_js_claim_ranks_by_its_arrival() {
    // Earlier timestamped claim beats a JS claim that arrives later...
    let mut a = tab("tab-a");
    a.claim(CHAT, 1_000, false).unwrap();
    a.take_effects();
    a.receive(
        parse(r#"{"type":"claim","chatId":"chat-1","tabId":"js"}"#),
        1_020,
    );
    assert!(a.has_claim(CHAT));
    assert_eq!(
        posted(&a.take_effects()).len(),
        1,
        "the JS tab is told who owns"
    );
    // ...and a JS claim that arrived first beats a later timestamped one.
    let mut c = tab("tab-c");
    c.receive(
        parse(r#"{"type":"claim","chatId":"chat-1","tabId":"js"}"#),
        1_000,
    );
    c.receive(claim_msg("tab-a", Some(1_010), false), 1_020);
    assert_eq!(c.owner(CHAT), Some("js"));
    // A JS tab's repeated claim (it re-claims on every send) keeps its first rank.
    c.receive(
        parse(r#"{"type":"claim","chatId":"chat-1","tabId":"js"}"#),
        5_000,
    );
    c.receive(claim_msg("tab-a", Some(1_010), false), 5_010);
    assert_eq!(c.owner(CHAT), Some("js"));
}

#[test]
fn a_js_owner_makes_us_read_only_and_its_release_frees_us() {
    let mut b = tab("tab-b");
    b.receive(
        parse(r#"{"type":"claim","chatId":"chat-1","tabId":"js"}"#),
        1_000,
    );
    assert!(b.claim(CHAT, 1_001, false).is_err());
    b.receive(
        parse(r#"{"type":"release","chatId":"chat-1","tabId":"js"}"#),
        1_002,
    );
    b.claim(CHAT, 1_003, false).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Heartbeats, who, timeouts

#[test]
fn a_heartbeat_reveals_an_owner_we_never_heard_claim() {
    let mut late = tab("tab-late");
    late.receive(
        parse(r#"{"type":"heartbeat","chatId":"chat-1","tabId":"js"}"#),
        1_000,
    );
    assert!(late.is_read_only(CHAT));
    assert_eq!(late.owner(CHAT), Some("js"));
    assert!(late.claim(CHAT, 1_001, false).is_err());
}

#[test]
fn owners_answer_who_at_once_so_a_late_tab_is_never_blind() {
    let mut a = tab("tab-a");
    a.claim("c1", 1_000, true).unwrap();
    a.claim("c2", 1_000, false).unwrap();
    a.take_effects();
    let mut late = TabCoordinator::new("tab-late");
    deliver(&mut late, &mut [&mut a], 1_500);
    let replies = a.take_effects();
    assert_eq!(posted(&replies).len(), 2);
    for text in posted(&replies) {
        late.receive(parse(&text), 1_600);
    }
    assert_eq!(late.owner("c1"), Some("tab-a"));
    assert_eq!(late.owner("c2"), Some("tab-a"));
    assert_eq!(late.lock_checks().collect::<Vec<_>>(), ["c1"]);
    // A `who` about one chat gets one answer.
    a.receive(
        Message::Who {
            tab_id: "x".into(),
            chat_id: Some("c2".into()),
        },
        1_700,
    );
    let only = posted(&a.take_effects());
    assert_eq!(only.len(), 1);
    assert!(only[0].contains(r#""chatId":"c2""#));
}

#[test]
fn owners_heartbeat_every_interval() {
    let mut a = tab("tab-a");
    a.claim(CHAT, 0, false).unwrap();
    a.take_effects();
    assert_eq!(a.next_tick_ms(), Some(HEARTBEAT_INTERVAL_MS - 250));
    let mut sent = Vec::new();
    for now in (0..=30_000).step_by(1_000) {
        a.tick(now);
        if !posted(&a.take_effects()).is_empty() {
            sent.push(now);
        }
    }
    assert_eq!(sent, [5_000, 10_000, 15_000, 20_000, 25_000, 30_000]);
    // A timer firing a little early still heartbeats.
    a.tick(34_900);
    assert_eq!(posted(&a.take_effects()).len(), 1);
}

#[test]
fn a_silent_owner_is_dropped_after_the_timeout_not_before() {
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000), false), 1_000);
    b.take_effects();
    assert_eq!(b.next_tick_ms(), Some(1_000 + CLAIM_TIMEOUT_MS + 1));
    b.tick(1_000 + CLAIM_TIMEOUT_MS);
    assert!(b.is_read_only(CHAT));
    b.receive(heartbeat_msg("tab-a", Some(1_000), false), 9_000);
    b.tick(1_000 + CLAIM_TIMEOUT_MS + 1);
    assert!(b.is_read_only(CHAT), "the heartbeat refreshed it");
    b.tick(9_000 + CLAIM_TIMEOUT_MS + 1);
    assert!(!b.is_read_only(CHAT));
    assert_eq!(read_only_changes(&b.take_effects()), [false]);
    assert_eq!(b.next_tick_ms(), None, "nothing left to time");
}

#[test]
fn a_claim_can_be_taken_over_once_its_owner_timed_out_even_before_a_tick() {
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000), false), 1_000);
    b.take_effects();
    assert!(b.claim(CHAT, 1_000 + CLAIM_TIMEOUT_MS, false).is_err());
    b.claim(CHAT, 1_001 + CLAIM_TIMEOUT_MS, false).unwrap();
    let effects = b.take_effects();
    assert_eq!(read_only_changes(&effects), [false]);
    assert!(b.has_claim(CHAT));
}

#[test]
fn a_clock_jumping_back_does_not_pin_a_dead_claim() {
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000_000), false), 1_000_000);
    b.tick(5_000); // the wall clock went back by ~16 minutes
    assert!(b.is_read_only(CHAT));
    b.tick(5_000 + CLAIM_TIMEOUT_MS + 1);
    assert!(!b.is_read_only(CHAT));
}

#[test]
fn an_owner_that_hears_a_weaker_rival_heartbeat_reasserts_itself() {
    // A JS tab that lost a race keeps heartbeating (it never drops its own claim).
    let mut a = tab("tab-a");
    a.claim(CHAT, 1_000, false).unwrap();
    a.take_effects();
    a.receive(
        parse(r#"{"type":"heartbeat","chatId":"chat-1","tabId":"js"}"#),
        6_000,
    );
    assert!(a.has_claim(CHAT));
    let texts = posted(&a.take_effects());
    assert_eq!(texts.len(), 1);
    assert!(texts[0].starts_with(r#"{"type":"claim""#));
}

// ---------------------------------------------------------------------------------------------
// Web Locks

#[test]
fn the_writer_lock_name_is_per_chat() {
    assert_eq!(writer_lock_name("a:b"), "trigger-chat:a:b:writer");
}

#[test]
fn a_held_lock_keeps_a_throttled_owner_alive() {
    // A background owner's timers are throttled to once a minute: no heartbeats for 60 s.
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000), true), 1_010);
    assert_eq!(b.lock_checks().collect::<Vec<_>>(), [CHAT]);
    for now in (5_000..=61_000).step_by(5_000) {
        b.lock_status(CHAT, true, now);
        b.tick(now + 5);
        assert!(b.is_read_only(CHAT), "dropped at {now}");
    }
    // Without the lock (a JS owner, or no Web Locks), the same silence drops the claim: M6.
    let mut c = tab("tab-c");
    c.receive(claim_msg("tab-a", Some(1_000), false), 1_010);
    assert_eq!(c.lock_checks().count(), 0);
    c.lock_status(CHAT, true, 10_000); // ignored: not lock-backed
    c.tick(11_011);
    assert!(!c.is_read_only(CHAT));
}

#[test]
fn a_free_lock_drops_a_dead_owner_at_once() {
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000), true), 1_010);
    b.take_effects();
    b.lock_status(CHAT, false, 1_500);
    assert_eq!(read_only_changes(&b.take_effects()), [false]);
    assert!(!b.is_read_only(CHAT));
    assert_eq!(b.lock_checks().count(), 0);
}

#[test]
fn a_lock_query_older_than_the_claim_does_not_drop_it() {
    // The query was issued before tab-a took the lock and answered after its claim arrived.
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000), true), 1_010);
    b.lock_status(CHAT, false, 1_010);
    b.lock_status(CHAT, false, 900);
    assert!(b.is_read_only(CHAT));
}

#[test]
fn holding_the_lock_overrides_a_stale_lock_backed_claim_at_once() {
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(1_000), true), 1_010);
    b.take_effects();
    // The browser granted tab-b the writer lock, so tab-a no longer holds it.
    b.claim(CHAT, 1_100, true).unwrap();
    assert!(b.has_claim(CHAT));
    assert_eq!(read_only_changes(&b.take_effects()), [false]);
    // tab-a's heartbeat, sent before it let go, arrives late: tab-b keeps the chat.
    b.receive(heartbeat_msg("tab-a", Some(1_000), true), 1_150);
    assert!(b.has_claim(CHAT));
    // A third tab that heard both agrees, in either order.
    for order in [[0, 1], [1, 0]] {
        let mut c = tab("tab-c");
        let claims = [
            claim_msg("tab-a", Some(1_000), true),
            claim_msg("tab-b", Some(1_100), true),
        ];
        for index in order {
            c.receive(claims[index].clone(), 1_200);
        }
        assert_eq!(c.owner(CHAT), Some("tab-b"));
    }
}

#[test]
fn holding_the_lock_does_not_override_a_js_owner() {
    let mut b = tab("tab-b");
    b.receive(
        parse(r#"{"type":"claim","chatId":"chat-1","tabId":"js"}"#),
        1_000,
    );
    assert_eq!(b.claim(CHAT, 1_001, true), Err(Error::ReadOnlyTab));
}

#[test]
fn an_earlier_lockless_claim_beats_a_lock_backed_one() {
    let mut a = tab("tab-a");
    a.claim(CHAT, 1_005, true).unwrap();
    a.take_effects();
    a.receive(claim_msg("tab-l", Some(1_000), false), 1_050);
    assert!(!a.has_claim(CHAT));
    assert!(a.take_effects().contains(&Effect::LostClaim {
        chat_id: CHAT.into()
    }));
}

// ---------------------------------------------------------------------------------------------
// Conversation copies and session cursors

fn messages_msg(from: &str, version: Option<u64>, text: &str) -> Message {
    Message::Messages {
        chat_id: CHAT.into(),
        tab_id: from.into(),
        messages: Json::Array(vec![Json::from(text)]),
        version,
    }
}

fn applied(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Messages { messages, .. } => Some(messages.to_json_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_older_conversation_never_replaces_a_newer_one() {
    let mut b = tab("tab-b");
    b.receive(messages_msg("tab-a", Some(2), "two"), 1_000);
    b.receive(messages_msg("tab-a", Some(1), "one"), 1_001); // overtaken in flight
    b.receive(messages_msg("tab-a", Some(2), "two again"), 1_002);
    b.receive(messages_msg("tab-a", Some(3), "three"), 1_003);
    assert_eq!(applied(&b.take_effects()), [r#"["two"]"#, r#"["three"]"#]);
    assert_eq!(b.messages_version(CHAT), Some(3));
}

#[test]
fn a_readers_flush_on_release_cannot_revert_the_owners_reply() {
    // M8: tab-b (read-only) re-broadcasts the copy it has, keeping its version.
    let mut a = tab("tab-a");
    let mut b = tab("tab-b");
    a.claim(CHAT, 1_000, false).unwrap();
    a.broadcast_messages(CHAT, Json::parse(&ui("partial")).unwrap(), 1)
        .unwrap();
    deliver(&mut a, &mut [&mut b], 1_010);
    assert_eq!(applied(&b.take_effects()), [ui("partial")]);
    a.broadcast_messages(CHAT, Json::parse(&ui("final")).unwrap(), 2)
        .unwrap();
    a.release(CHAT);
    a.take_effects(); // the final copy is lost in flight (M7)
    let version = b.messages_version(CHAT).unwrap();
    b.broadcast_messages(CHAT, Json::parse(&ui("partial")).unwrap(), version)
        .unwrap();
    deliver(&mut b, &mut [&mut a], 1_020);
    assert!(
        applied(&a.take_effects()).is_empty(),
        "tab-a keeps its final reply"
    );
}

#[test]
fn unversioned_js_copies_apply_except_in_the_owning_tab() {
    let js = format!(
        r#"{{"type":"messages","chatId":"chat-1","tabId":"js","messages":{}}}"#,
        ui("js copy")
    );
    let mut reader = tab("tab-b");
    reader.receive(messages_msg("tab-a", Some(5), "v5"), 1_000);
    reader.receive(parse(&js), 1_001);
    assert_eq!(
        applied(&reader.take_effects()),
        [r#"["v5"]"#.to_owned(), ui("js copy")]
    );
    let mut owner = tab("tab-a");
    owner.claim(CHAT, 1_000, false).unwrap();
    owner.receive(parse(&js), 1_001);
    assert!(applied(&owner.take_effects()).is_empty());
}

fn session_msg(version: Option<u64>, last_event_id: Option<&str>) -> Message {
    Message::Session {
        chat_id: CHAT.into(),
        tab_id: "tab-a".into(),
        last_event_id: last_event_id.map(str::to_owned),
        consumed_input_seq: None,
        version,
    }
}

fn cursors(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Session { last_event_id, .. } => Some(last_event_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_resume_cursor_never_moves_back() {
    let mut b = tab("tab-b");
    b.receive(claim_msg("tab-a", Some(999), false), 999);
    b.receive(session_msg(Some(1), Some("9")), 1_000);
    b.receive(session_msg(Some(2), Some("10")), 1_001); // numeric, not "10" < "9"
    b.receive(session_msg(Some(3), Some("8")), 1_002); // newer version, older cursor
    b.receive(session_msg(Some(2), Some("11")), 1_003); // older version
    b.receive(session_msg(None, Some("10")), 1_004); // a JS tab, same cursor
    b.receive(session_msg(None, Some("7")), 1_005); // a JS tab, behind
    b.receive(session_msg(Some(9), None), 1_006); // nothing to apply
    b.receive(session_msg(None, Some("12")), 1_007);
    assert_eq!(cursors(&b.take_effects()), ["9", "10", "12"]);
}

#[test]
fn a_tab_does_not_apply_a_cursor_older_than_the_one_it_broadcast() {
    let mut a = tab("tab-a");
    a.broadcast_session(CHAT, "50", None, 4).unwrap();
    a.take_effects();
    let mut stale = session_msg(Some(5), Some("40"));
    if let Message::Session { tab_id, .. } = &mut stale {
        *tab_id = "tab-b".into();
    }
    a.receive(stale, 1_000);
    assert!(cursors(&a.take_effects()).is_empty());
    assert!(a.broadcast_session(CHAT, "", None, 6).is_err());
}

#[test]
fn a_flood_of_other_chats_never_evicts_our_own_claim() {
    // The channel is origin-wide: every chat of every tab passes through it.
    let mut a = tab("tab-a");
    a.claim(CHAT, 1_000, false).unwrap();
    for i in 0..2_000u64 {
        let chat_id = format!("other-{i}");
        a.receive(
            Message::Claim(Claim {
                chat_id: chat_id.clone(),
                tab_id: "tab-b".into(),
                at: Some(1_000 + i),
                lock: false,
            }),
            1_000 + i,
        );
        a.receive(messages_msg_for(&chat_id, i), 1_000 + i);
    }
    assert!(a.has_claim(CHAT));
    assert_eq!(a.owned().collect::<Vec<_>>(), [CHAT]);
    assert!(a.is_read_only("other-1999"), "recent claims are kept");
    // A chat whose claim was forgotten is said to be writable again (a UI showing it read-only
    // would otherwise stay so: its owner's release finds nothing to clear).
    assert!(!a.is_read_only("other-0"));
    let freed = a
        .take_effects()
        .into_iter()
        .any(|e| matches!(e, Effect::ReadOnlyChanged { chat_id, read_only: false } if chat_id == "other-0"));
    assert!(freed);
}

fn messages_msg_for(chat_id: &str, version: u64) -> Message {
    Message::Messages {
        chat_id: chat_id.into(),
        tab_id: "tab-b".into(),
        messages: Json::Array(Vec::new()),
        version: Some(version),
    }
}

#[test]
fn a_copy_versioned_far_ahead_of_the_clock_is_ignored_and_freezes_nothing() {
    let mut b = tab("tab-c");
    let now = 1_700_000_000_000;
    b.receive(messages_msg_for(CHAT, 9_007_199_254_740_991), now);
    assert!(
        !b.take_effects()
            .iter()
            .any(|e| matches!(e, Effect::Messages { .. })),
        "a forged version is not applied"
    );
    // The owner's genuine copies still get through.
    b.receive(messages_msg_for(CHAT, now + 5), now + 5);
    assert!(b
        .take_effects()
        .iter()
        .any(|e| matches!(e, Effect::Messages { .. })));
}

#[test]
fn a_cursor_is_taken_only_from_the_tab_that_owns_the_chat() {
    let mut b = tab("tab-b");
    b.receive(session_msg(Some(1), Some("9")), 1_000);
    assert!(
        cursors(&b.take_effects()).is_empty(),
        "nobody owns the chat"
    );
    b.receive(claim_msg("tab-c", Some(1_001), false), 1_001);
    b.receive(session_msg(Some(2), Some("10")), 1_002);
    assert!(cursors(&b.take_effects()).is_empty(), "tab-c owns it");
    let release = Message::Release {
        chat_id: CHAT.into(),
        tab_id: "tab-c".into(),
        at: Some(1_002),
    };
    b.receive(release, 1_002);
    b.receive(claim_msg("tab-a", Some(1_003), false), 1_003);
    b.receive(session_msg(Some(3), Some("11")), 1_004);
    assert_eq!(cursors(&b.take_effects()), ["11"]);
    // A JS tab releases the chat before it posts the turn's cursor (and says no `at`).
    let js = |text: &str| parse(&text.replace("TAB", "js").replace("CHAT", CHAT));
    let release = r#"{"type":"release","chatId":"CHAT","tabId":"tab-a","at":1005}"#;
    b.receive(js(release), 1_005);
    b.receive(
        js(r#"{"type":"claim","chatId":"CHAT","tabId":"TAB"}"#),
        1_006,
    );
    b.receive(
        js(r#"{"type":"release","chatId":"CHAT","tabId":"TAB"}"#),
        1_007,
    );
    let posted =
        r#"{"type":"session","chatId":"CHAT","tabId":"TAB","session":{"lastEventId":"12"}}"#;
    b.receive(js(posted), 1_008);
    assert_eq!(cursors(&b.take_effects()), ["12"]);
}
