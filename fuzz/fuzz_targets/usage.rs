//! `UsageScanner::push` on arbitrary chunkings of a unary answer's body.
//!
//! Input: the first byte picks the chunk size (0: the whole body in one push), the rest is the
//! response body. Oracle: no panic; the counts are the same for one push, the chosen chunk size
//! and byte-at-a-time; when the scanner counts and serde_json accepts the body, the counts are
//! exactly serde_json's reading of its top-level `usage` object (an object, counters not named
//! twice, non-negative integers). The scanner checks structure (nesting, strings, one root
//! object), not every token's grammar: a misspelt literal elsewhere in a body is not its
//! business, so a body serde_json refuses is not a failure by itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policies::usage::{BodyUsage, UsageScanner};
use serde_json::Value;

fn scan(body: &[u8], chunk: usize) -> Option<BodyUsage> {
    let mut s = UsageScanner::new();
    if chunk == 0 {
        s.push(body);
    } else {
        for part in body.chunks(chunk) {
            s.push(part);
        }
    }
    s.usage()
}

const NAMES: [&[&str]; 4] = [
    &["inputTokens", "input_tokens", "prompt_tokens"],
    &["outputTokens", "output_tokens", "completion_tokens"],
    &["cacheReadInputTokens", "cache_read_input_tokens"],
    &["cacheWriteInputTokens", "cache_creation_input_tokens"],
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let whole = scan(body, 0);
    assert_eq!(scan(body, usize::from(first)), whole);
    assert_eq!(scan(body, 1), whole);
    let Some(found) = whole else { return };
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let usage = value
        .as_object()
        .and_then(|o| o.get("usage"))
        .and_then(Value::as_object)
        .expect("counted without a top-level usage object");
    let count = |i: usize| {
        let present: Vec<&Value> = NAMES[i].iter().filter_map(|n| usage.get(*n)).collect();
        assert!(present.len() <= 1, "a counter named twice was counted");
        present.first().and_then(|v| v.as_u64())
    };
    assert_eq!(Some(found.input), count(0));
    assert_eq!(Some(found.output), count(1));
    assert_eq!(found.cache_read, count(2));
    assert_eq!(found.cache_write, count(3));
});
