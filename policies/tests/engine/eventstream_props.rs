//! Property tests for the event-stream reader: arbitrary bytes never panic, chunking never
//! changes the result, and any single corrupted byte of a valid stream is caught.

use crate::eventstream_support::*;
use policies::eventstream::EventStreamReader;
use proptest::prelude::*;

/// A valid stream mixing every kind of frame the reader treats specially.
fn mixed_stream(a: u64, b: u64) -> Vec<u8> {
    [
        converse_stream(a, b),
        exception("modelStreamErrorException", "oops"),
        invoke_stream(b, a),
        event("contentBlockDelta", "{\"delta\":{\"text\":\"x\"}}"),
    ]
    .concat()
}

/// Cuts `body` at the given (unsorted, possibly repeated, out-of-range) points.
fn cut<'a>(body: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = points.iter().map(|p| p % (body.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for p in points {
        pieces.push(&body[start..p]);
        start = p;
    }
    pieces.push(&body[start..]);
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)
    ) {
        let mut reader = EventStreamReader::new();
        for chunk in &chunks {
            reader.push(chunk);
        }
        reader.finish();
        prop_assert!(reader.malformed_frames() <= 1);
        prop_assert!(!reader.has_partial_frame());
    }

    #[test]
    fn random_bytes_after_a_valid_prelude_never_panic(
        total in 16u32..512,
        headers_len in 0u32..512,
        rest in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut body = prelude(total, headers_len);
        body.extend_from_slice(&rest);
        let mut reader = EventStreamReader::new();
        reader.push(&body);
        reader.finish();
        prop_assert!(reader.malformed_frames() <= 1);
        prop_assert!(reader.frames() <= 1);
    }

    #[test]
    fn random_header_sections_never_panic(
        headers in proptest::collection::vec(any::<u8>(), 0..256),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // Correct CRCs, so only the header parser stands between the bytes and the reader.
        let body = frame_raw(&headers, &payload);
        let got = read_all(&body);
        prop_assert_eq!(got.frames + got.malformed, 1);
    }

    #[test]
    fn random_chunkings_of_a_valid_stream_agree(
        a in 0u64..1_000_000,
        b in 0u64..1_000_000,
        points in proptest::collection::vec(any::<usize>(), 0..24),
    ) {
        let body = mixed_stream(a, b);
        let whole = read_all(&body);
        prop_assert_eq!(whole.usage, Some((b, a)));
        prop_assert_eq!(whole.frames, 12);
        prop_assert_eq!(whole.malformed, 0);
        prop_assert_eq!(whole.exceptions, 1);
        prop_assert_eq!(read_chunks(cut(&body, &points)), whole);
    }

    #[test]
    fn valid_usage_survives_trailing_garbage(
        a in any::<u64>(),
        b in any::<u64>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let body = [metadata(a.min(u64::MAX - b), b), garbage].concat();
        let got = read_all(&body);
        prop_assert_eq!(got.usage, Some((a.min(u64::MAX - b), b)));
    }

    #[test]
    fn any_single_corrupted_byte_is_caught(
        index in any::<usize>(),
        flip in 1u8..=255,
        points in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let mut body = mixed_stream(25, 40);
        let at = index % body.len();
        body[at] ^= flip;
        let mut reader = EventStreamReader::new();
        for piece in cut(&body, &points) {
            reader.push(piece);
        }
        reader.finish();
        // CRC32 catches every error burst of up to 32 bits; a changed length is caught by the
        // prelude CRC. So the frame holding the byte, and everything after, is never read.
        prop_assert_eq!(reader.malformed_frames(), 1);
        prop_assert!(reader.frames() < 12);
    }
}
