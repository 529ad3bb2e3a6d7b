//! The scanner against serde_json: any split of a valid body gives the counts a whole-body
//! parse gives; random bytes never panic and give the same answer however they are split;
//! nesting is bounded.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

fn scan(body: &[u8]) -> Option<BodyUsage> {
    let mut s = UsageScanner::new();
    s.push(body);
    s.usage()
}

fn scan_split(body: &[u8], cuts: &[usize]) -> Option<BodyUsage> {
    let mut s = UsageScanner::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut from = 0;
    for cut in cuts {
        s.push(&body[from..cut]);
        from = cut;
    }
    s.push(&body[from..]);
    s.usage()
}

const NAMES: [&[&str]; 4] = [
    &["inputTokens", "input_tokens", "prompt_tokens"],
    &["outputTokens", "output_tokens", "completion_tokens"],
    &["cacheReadInputTokens", "cache_read_input_tokens"],
    &["cacheWriteInputTokens", "cache_creation_input_tokens"],
];

/// What the scanner must find, from serde_json's whole-body parse.
fn reference(body: &[u8]) -> Option<BodyUsage> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let usage = value.as_object()?.get("usage")?.as_object()?;
    let mut counts = [None; 4];
    for (i, names) in NAMES.iter().enumerate() {
        let present: Vec<&Value> = names.iter().filter_map(|n| usage.get(*n)).collect();
        if present.len() > 1 {
            return None; // the same counter twice (across dialects): refused
        }
        counts[i] = present.first().and_then(|v| v.as_u64());
    }
    Some(BodyUsage {
        input: counts[0]?,
        output: counts[1]?,
        cache_read: counts[2],
        cache_write: counts[3],
    })
}

#[test]
fn a_converse_answer_gives_its_usage() {
    let body = br#"{"metrics":{"latencyMs":412},"output":{"message":{"role":"assistant",
        "content":[{"text":"{\"usage\":{\"inputTokens\":1}} \\\" }"}]}},"stopReason":"end_turn",
        "usage":{"inputTokens":25,"outputTokens":118,"totalTokens":143,
        "cacheReadInputTokens":1024,"cacheWriteInputTokens":0,
        "cacheDetails":[{"inputTokens":7,"ttl":"5m"}]}}"#;
    let want = BodyUsage {
        input: 25,
        output: 118,
        cache_read: Some(1024),
        cache_write: Some(0),
    };
    assert_eq!(scan(body), Some(want));
    assert_eq!(reference(body), Some(want));
    for cut in 0..body.len() {
        assert_eq!(scan_split(body, &[cut]), Some(want), "cut at {cut}");
    }
}

#[test]
fn anthropic_and_openai_bodies_give_their_usage() {
    let anthropic = br#"{"id":"msg_1","type":"message","content":[{"type":"text","text":"hi"}],
        "usage":{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":4,
        "output_tokens":6}}"#;
    assert_eq!(
        scan(anthropic),
        Some(BodyUsage {
            input: 12,
            output: 6,
            cache_read: Some(4),
            cache_write: Some(3)
        })
    );
    let openai = br#"{"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,
        "total_tokens":11,"prompt_tokens_details":{"cached_tokens":1}}}"#;
    assert_eq!(
        scan(openai),
        Some(BodyUsage {
            input: 9,
            output: 2,
            cache_read: None,
            cache_write: None
        })
    );
}

#[test]
fn what_is_not_the_top_level_usage_object_is_never_counted() {
    for body in [
        // Nested usage objects, usage in an array, usage not an object, counters nested.
        r#"{"output":{"usage":{"inputTokens":1,"outputTokens":2}}}"#,
        r#"[{"usage":{"inputTokens":1,"outputTokens":2}}]"#,
        r#"{"usage":[{"inputTokens":1,"outputTokens":2}]}"#,
        r#"{"usage":"{\"inputTokens\":1,\"outputTokens\":2}"}"#,
        r#"{"usage":{"x":{"inputTokens":1,"outputTokens":2}}}"#,
        r#"{"usage":{"inputTokens":[1],"outputTokens":2}}"#,
        // Not counters: fraction, exponent, sign, string, leading zero, too large, literal.
        r#"{"usage":{"inputTokens":1.0,"outputTokens":2}}"#,
        r#"{"usage":{"inputTokens":1e3,"outputTokens":2}}"#,
        r#"{"usage":{"inputTokens":-1,"outputTokens":2}}"#,
        r#"{"usage":{"inputTokens":"1","outputTokens":2}}"#,
        r#"{"usage":{"inputTokens":01,"outputTokens":2}}"#,
        r#"{"usage":{"inputTokens":18446744073709551616,"outputTokens":2}}"#,
        r#"{"usage":{"inputTokens":null,"outputTokens":2}}"#,
        // Only one of the two.
        r#"{"usage":{"outputTokens":2}}"#,
    ] {
        assert_eq!(scan(body.as_bytes()), None, "{body}");
        assert_eq!(reference(body.as_bytes()), None, "{body}");
    }
    assert_eq!(
        scan(br#"{"usage":{"inputTokens":18446744073709551615,"outputTokens":0}}"#)
            .map(|u| u.input),
        Some(u64::MAX)
    );
}

#[test]
fn duplicates_escaped_names_and_malformed_bodies_give_no_counts() {
    for body in [
        // Duplicates: serde_json would keep the last; the scanner refuses to guess.
        r#"{"usage":{"inputTokens":1,"outputTokens":2},"usage":{"inputTokens":3,"outputTokens":4}}"#,
        r#"{"usage":{"inputTokens":1,"outputTokens":2,"inputTokens":3}}"#,
        r#"{"usage":{"inputTokens":1,"outputTokens":2,"input_tokens":3}}"#,
        r#"{"usage":5,"usage":{"inputTokens":1,"outputTokens":2}}"#,
        // An escaped name where names are compared (this one spells `usage`).
        r#"{"\u0075sage":{"inputTokens":1,"outputTokens":2}}"#,
        r#"{"usage":{"input\u0054okens":1,"outputTokens":2}}"#,
        // Malformed: unterminated, mismatched, trailing text, two roots, unclosed string.
        r#"{"usage":{"inputTokens":1,"outputTokens":2}"#,
        r#"{"usage":{"inputTokens":1,"outputTokens":2]}"#,
        r#"{"usage":{"inputTokens":1,"outputTokens":2}} x"#,
        r#"{"usage":{"inputTokens":1,"outputTokens":2}}{}"#,
        r#"{"usage":{"inputTokens":1,"outputTokens":2}, "a":"}"#,
        r#"{"usage":{"inputTokens":1,"outputTokens":2}}}"#,
        "",
    ] {
        assert_eq!(scan(body.as_bytes()), None, "{body}");
    }
    // Escapes in values and in names nobody compares (below the top level, outside usage)
    // are fine.
    let body = br#"{"a":{"c\\d":"\"}"},"usage":{"inputTokens":1,"outputTokens":2,"x":{"\n":3}}}"#;
    assert_eq!(scan(body).map(|u| (u.input, u.output)), Some((1, 2)));
    // Trailing whitespace is fine; long names match nothing.
    let long = format!(
        "{{\"{}\":1,\"usage\":{{\"inputTokens\":1,\"outputTokens\":2}}}}\n ",
        "x".repeat(100)
    );
    assert_eq!(scan(long.as_bytes()).map(|u| u.output), Some(2));
}

#[test]
fn nesting_is_bounded() {
    let depth = MAX_DEPTH as usize;
    let ok = format!(
        "{{\"a\":{}{}{},\"usage\":{{\"inputTokens\":1,\"outputTokens\":2}}}}",
        "[".repeat(depth - 1),
        "",
        "]".repeat(depth - 1)
    );
    assert_eq!(scan(ok.as_bytes()).map(|u| u.input), Some(1));
    let deep = format!(
        "{{\"a\":{}{},\"usage\":{{\"inputTokens\":1,\"outputTokens\":2}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(scan(deep.as_bytes()), None);
    // A million open brackets: no growth, no panic, no counts.
    let mut s = UsageScanner::new();
    s.push(b"{\"a\":");
    for _ in 0..1000 {
        s.push(&[b'['; 1000]);
    }
    assert_eq!(s.usage(), None);
    assert!(std::mem::size_of::<UsageScanner>() <= 160);
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        Just(json!("{\"usage\":{\"inputTokens\":1}}")),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_ ]{0,40}",
        Just("usage".to_string()),
        prop::sample::select(NAMES.concat()).prop_map(str::to_string),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A counter's value: mostly a count, sometimes something else.
fn counter() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any::<u64>().prop_map(|n| json!(n)),
        1 => (0u64..1000).prop_map(|n| json!(n)),
        1 => leaf(),
    ]
}

/// A body shaped like an answer: random members, maybe a `usage` object of counters (each in
/// a dialect picked at random, sometimes two dialects of one counter) and random members.
fn body() -> impl Strategy<Value = Value> {
    let usage = (
        prop::collection::vec((0usize..3, counter(), any::<bool>()), 4),
        prop::collection::btree_map("[a-z]{1,12}", value(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(fields, extra, twice)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            for (i, (dialect, v, present)) in fields.into_iter().enumerate() {
                let names = NAMES[i];
                if present || i < 2 {
                    m.insert(names[dialect % names.len()].to_string(), v.clone());
                }
                if twice && i == 0 {
                    m.insert(names[(dialect + 1) % names.len()].to_string(), v);
                }
            }
            Value::Object(m)
        });
    (
        prop::collection::btree_map(key(), value(), 0..5),
        prop::option::weighted(0.8, prop_oneof![4 => usage, 1 => value()]),
    )
        .prop_map(|(members, usage)| {
            let mut m: Map<String, Value> = members.into_iter().collect();
            if let Some(u) = usage {
                m.insert("usage".into(), u);
            }
            Value::Object(m)
        })
}

proptest! {
    #[test]
    fn any_split_of_a_valid_body_gives_serde_jsons_counts(
        body in body(),
        pretty in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let text = if pretty {
            serde_json::to_vec_pretty(&body).unwrap()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let want = reference(&text);
        prop_assert_eq!(scan(&text), want);
        prop_assert_eq!(scan_split(&text, &cuts), want);
    }

    #[test]
    fn random_bytes_never_panic_and_any_split_agrees(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        prop_assert_eq!(scan_split(&bytes, &cuts), scan(&bytes));
    }

    #[test]
    fn json_ish_bytes_never_count_what_serde_json_would_not(
        bytes in prop::collection::vec(prop::sample::select(
            b"{}[]:,\" \\0123456789.-eusagtkninputTokensoutputTokens".to_vec()), 0..200),
    ) {
        // Whatever the scanner counts in a body serde_json accepts, serde_json finds too.
        if let (Some(found), Ok(_)) = (scan(&bytes), serde_json::from_slice::<Value>(&bytes)) {
            prop_assert_eq!(Some(found), reference(&bytes));
        }
    }
}
