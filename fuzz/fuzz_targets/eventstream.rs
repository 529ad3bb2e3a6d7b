//! `EventStreamReader::push` on arbitrary chunkings, then `finish`.
//!
//! Input: the first byte picks the chunk size (0: the whole body in one push), the rest is the
//! response body. Oracle: no panic; the reader learns exactly the same thing whatever the
//! chunking (compared with a single push and with byte-at-a-time pushes); it stops for good
//! after the first malformed frame. Memory is bounded by libFuzzer's -rss_limit_mb.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policies::eventstream::{usage_from_headers, EventStreamReader};

#[derive(Debug, PartialEq, Eq)]
struct Learnt {
    usage: Option<(u64, u64)>,
    frames: u64,
    malformed: u64,
    exceptions: u64,
    last_exception: Option<String>,
    poisoned: bool,
    partial: bool,
}

fn learnt(r: &EventStreamReader) -> Learnt {
    Learnt {
        usage: r.usage(),
        frames: r.frames(),
        malformed: r.malformed_frames(),
        exceptions: r.exceptions(),
        last_exception: r.last_exception().map(str::to_owned),
        poisoned: r.is_poisoned(),
        partial: r.has_partial_frame(),
    }
}

fn read(body: &[u8], chunk: usize) -> (Learnt, Learnt) {
    let mut reader = EventStreamReader::new();
    if chunk == 0 {
        reader.push(body);
    } else {
        for part in body.chunks(chunk) {
            reader.push(part);
            reader.push(&[]);
        }
    }
    let before = learnt(&reader);
    reader.finish();
    let after = learnt(&reader);
    // More bytes after poisoning change nothing.
    if after.poisoned {
        reader.push(body);
        assert_eq!(learnt(&reader), after);
    }
    (before, after)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let whole = read(body, 0);
    let chunked = read(body, usize::from(split));
    assert_eq!(
        whole, chunked,
        "chunk size {split} changes what the reader learns"
    );
    if body.len() <= 4096 {
        assert_eq!(whole, read(body, 1), "byte-at-a-time reading differs");
    }
    let (_, after) = whole;
    assert!(after.malformed <= 1);
    assert!(!after.partial);
    assert!(after.exceptions <= after.frames);
    if let Some(name) = &after.last_exception {
        assert!((1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphabetic()));
    }

    let (input, output) = body.split_at(body.len() / 2);
    let _ = usage_from_headers(Some(input), Some(output));
    let _ = usage_from_headers(Some(body), None);
});
