//! `UsageScanner::push` on arbitrary chunkings of a unary answer's body.
//!
//! Input: the first byte picks the chunk size (0: the whole body in one push), the rest is the
//! response body. Oracle: no panic; the counts are the same for one push, the chosen chunk size
//! and byte-at-a-time; counts found are exactly serde_json's reading of the body's top-level
//! `usage` object (an object, not duplicated, counters non-negative integers); the scanner's
//! size is fixed whatever the body.
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
    // Whatever is counted, serde_json reads in the same body.
    let value: Value = serde_json::from_slice(body).expect("counted in a body serde_json refuses");
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
