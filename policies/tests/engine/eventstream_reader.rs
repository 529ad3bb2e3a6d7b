//! The incremental event-stream reader: usage from ConverseStream and
//! InvokeModelWithResponseStream bodies however they are chunked, exceptions, and every way a
//! frame can be malformed (counted once, parsing stops, nothing panics).

use crate::eventstream_support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use policies::eventstream::{
    crc32, usage_from_headers, EventStreamReader, MAX_FRAME_BYTES, MAX_HEADERS_BYTES,
    MAX_INSPECTED_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES,
};

fn usage_only(input: u64, output: u64) -> Outcome {
    Outcome {
        usage: Some((input, output)),
        frames: 0,
        malformed: 0,
        exceptions: 0,
        last_exception: None,
    }
}

fn finished(body: &[u8]) -> EventStreamReader {
    let mut reader = EventStreamReader::new();
    reader.push(body);
    reader.finish();
    reader
}

// ---- usage, however the body is cut ---------------------------------------------------------

#[test]
fn converse_stream_usage_in_one_piece() {
    let got = read_all(&converse_stream(25, 40));
    assert_eq!(
        got,
        Outcome {
            frames: 6,
            ..usage_only(25, 40)
        }
    );
}

#[test]
fn converse_stream_usage_byte_by_byte() {
    let body = converse_stream(25, 40);
    assert_eq!(read_chunks(body.chunks(1)), read_all(&body));
}

#[test]
fn converse_stream_usage_split_at_every_byte() {
    let body = converse_stream(25, 40);
    let whole = read_all(&body);
    for cut in 0..=body.len() {
        let (a, b) = body.split_at(cut);
        assert_eq!(read_chunks([a, b]), whole, "cut at {cut}");
    }
}

#[test]
fn small_stream_split_at_every_pair_of_boundaries() {
    let body = [metadata(3, 4), exception("throttlingException", "slow")].concat();
    let whole = read_all(&body);
    assert_eq!(whole.usage, Some((3, 4)));
    assert_eq!(whole.exceptions, 1);
    for i in 0..=body.len() {
        for j in i..=body.len() {
            let got = read_chunks([&body[..i], &body[i..j], &body[j..]]);
            assert_eq!(got, whole, "cuts at {i} and {j}");
        }
    }
}

#[test]
fn invoke_stream_usage_from_the_final_chunk_metrics() {
    let body = invoke_stream(12, 34);
    let got = read_all(&body);
    assert_eq!(
        got,
        Outcome {
            frames: 4,
            ..usage_only(12, 34)
        }
    );
    assert_eq!(read_chunks(body.chunks(1)), got);
    for cut in 0..=body.len() {
        let (a, b) = body.split_at(cut);
        assert_eq!(read_chunks([a, b]), got, "cut at {cut}");
    }
}

#[test]
fn invoke_stream_chunk_without_padding_is_still_decoded() {
    let inner =
        "{\"amazon-bedrock-invocationMetrics\":{\"inputTokenCount\":1,\"outputTokenCount\":2}}";
    let encoded = STANDARD.encode(inner);
    let unpadded = encoded.trim_end_matches('=');
    assert_ne!(
        encoded.len(),
        unpadded.len(),
        "pick an input that needs padding"
    );
    let body = event("chunk", &format!("{{\"bytes\":\"{unpadded}\"}}"));
    assert_eq!(read_all(&body).usage, Some((1, 2)));
}

#[test]
fn invoke_stream_chunk_with_escaped_slash_in_base64_is_decoded() {
    // Base64 of these bytes contains '/', which a JSON encoder may write as "\/".
    let inner = "{\"amazon-bedrock-invocationMetrics\":{\"inputTokenCount\":5,\"outputTokenCount\":6},\"x\":\"\u{3ff}\u{3ff}\u{3ff}?\"}";
    let encoded = STANDARD.encode(inner);
    assert!(encoded.contains('/'), "{encoded}");
    let body = event(
        "chunk",
        &format!("{{\"bytes\":\"{}\"}}", encoded.replace('/', "\\/")),
    );
    assert_eq!(read_all(&body).usage, Some((5, 6)));
}

#[test]
fn multiple_metadata_events_last_wins() {
    let body = [metadata(1, 2), metadata(10, 20), metadata(100, 200)].concat();
    assert_eq!(read_all(&body).usage, Some((100, 200)));
}

#[test]
fn multiple_metrics_chunks_last_wins() {
    let body = [final_chunk(1, 2), final_chunk(7, 8)].concat();
    assert_eq!(read_all(&body).usage, Some((7, 8)));
}

#[test]
fn stream_without_usage_event_reports_none() {
    let body = converse_stream(1, 1);
    let without_metadata = &body[..body.len() - metadata(1, 1).len()];
    let got = read_all(without_metadata);
    assert_eq!((got.usage, got.frames, got.malformed), (None, 5, 0));
}

#[test]
fn empty_input_changes_nothing() {
    let mut reader = EventStreamReader::new();
    reader.push(&[]);
    reader.finish();
    assert_eq!(outcome(&reader), read_all(&[]));
    assert_eq!((reader.frames(), reader.malformed_frames()), (0, 0));
}

#[test]
fn frame_with_no_headers_and_no_payload_is_a_valid_frame() {
    let got = read_all(&frame_raw(&[], &[]));
    assert_eq!((got.frames, got.malformed), (1, 0));
}

// ---- what is not usage ----------------------------------------------------------------------

#[test]
fn metrics_text_inside_the_completion_is_not_usage() {
    // The model wrote the metrics key as text: it is inside a string, not a top-level member.
    let body = chunk(
        "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"\\\"amazon-bedrock-invocationMetrics\\\":{\\\"inputTokenCount\\\":1,\\\"outputTokenCount\\\":1}\"}}",
    );
    assert_eq!(read_all(&body).usage, None);
}

#[test]
fn nested_metrics_object_is_not_usage() {
    let body = chunk(
        "{\"delta\":{\"amazon-bedrock-invocationMetrics\":{\"inputTokenCount\":1,\"outputTokenCount\":1}}}",
    );
    assert_eq!(read_all(&body).usage, None);
}

#[test]
fn metrics_under_a_duplicated_key_is_not_usage() {
    let body = chunk(
        "{\"amazon-bedrock-invocationMetrics\":{\"inputTokenCount\":1,\"outputTokenCount\":1},\"amazon-bedrock-invocationMetrics\":{\"inputTokenCount\":9,\"outputTokenCount\":9}}",
    );
    assert_eq!(read_all(&body).usage, None);
}

#[test]
fn usage_with_negative_fractional_or_missing_counts_is_ignored() {
    for usage in [
        "{\"inputTokens\":-1,\"outputTokens\":2}",
        "{\"inputTokens\":1.5,\"outputTokens\":2}",
        "{\"inputTokens\":\"1\",\"outputTokens\":2}",
        "{\"outputTokens\":2}",
        "null",
    ] {
        let body = event("metadata", &format!("{{\"usage\":{usage}}}"));
        let got = read_all(&body);
        assert_eq!(
            (got.usage, got.frames, got.malformed),
            (None, 1, 0),
            "{usage}"
        );
    }
}

#[test]
fn unparseable_usage_payloads_are_not_malformed_frames() {
    for payload in [
        "",
        "not json",
        "{\"bytes\":\"!!!not base64\"}",
        "{\"bytes\":7}",
    ] {
        for body in [event("metadata", payload), event("chunk", payload)] {
            let got = read_all(&body);
            assert_eq!(
                (got.usage, got.frames, got.malformed),
                (None, 1, 0),
                "{payload}"
            );
        }
    }
}

#[test]
fn usage_in_an_event_of_another_type_is_ignored() {
    let payload = "{\"usage\":{\"inputTokens\":1,\"outputTokens\":2}}";
    assert_eq!(read_all(&event("messageStop", payload)).usage, None);
    let no_message_type = frame(
        &[(":event-type", Value::Str("metadata"))],
        payload.as_bytes(),
    );
    assert_eq!(read_all(&no_message_type).usage, None);
}

#[test]
fn chunk_over_the_inspection_limit_is_checked_but_not_inspected() {
    let filler = "x".repeat(MAX_INSPECTED_PAYLOAD_BYTES as usize);
    let inner = format!(
        "{{\"amazon-bedrock-invocationMetrics\":{{\"inputTokenCount\":1,\"outputTokenCount\":1}},\"f\":\"{filler}\"}}"
    );
    let got = read_all(&chunk(&inner));
    assert_eq!((got.usage, got.frames, got.malformed), (None, 1, 0));
}

// ---- exceptions -----------------------------------------------------------------------------

#[test]
fn exception_frame_is_counted_with_its_type() {
    let body = [
        converse_stream(5, 6),
        exception("throttlingException", "Too many requests"),
    ]
    .concat();
    let got = read_all(&body);
    assert_eq!(got.exceptions, 1);
    assert_eq!(got.last_exception.as_deref(), Some("throttlingException"));
    assert_eq!(got.usage, Some((5, 6)));
}

#[test]
fn last_exception_type_is_kept() {
    let body = [
        exception("modelStreamErrorException", "a"),
        exception("internalServerException", "b"),
    ]
    .concat();
    let got = read_all(&body);
    assert_eq!(got.exceptions, 2);
    assert_eq!(
        got.last_exception.as_deref(),
        Some("internalServerException")
    );
}

#[test]
fn error_frame_counts_with_its_error_code() {
    let body = frame(
        &[
            (":message-type", Value::Str("error")),
            (":error-code", Value::Str("InternalFailure")),
            (":error-message", Value::Str("boom")),
        ],
        b"",
    );
    let got = read_all(&body);
    assert_eq!(got.exceptions, 1);
    assert_eq!(got.last_exception.as_deref(), Some("InternalFailure"));
}

#[test]
fn exception_with_an_invalid_type_name_is_counted_without_a_name() {
    let long = "a".repeat(65);
    for name in [
        "throttling\nException",
        "x\"y",
        "",
        "caf\u{e9}",
        long.as_str(),
    ] {
        let body = [
            exception("throttlingException", "first"),
            exception(name, "second"),
        ]
        .concat();
        let got = read_all(&body);
        assert_eq!((got.exceptions, got.last_exception), (2, None), "{name:?}");
    }
    let longest = "a".repeat(64);
    let got = read_all(&exception(&longest, "m"));
    assert_eq!(got.last_exception.as_deref(), Some(longest.as_str()));
}

// ---- malformed frames -----------------------------------------------------------------------

#[test]
fn corrupted_prelude_crc_is_malformed_and_stops_parsing() {
    let mut body = [metadata(1, 2), metadata(3, 4)].concat();
    let second = metadata(1, 2).len();
    body[second + 9] ^= 0x01; // prelude CRC of the second frame
    let got = read_all(&body);
    assert_eq!((got.usage, got.frames, got.malformed), (Some((1, 2)), 1, 1));
}

#[test]
fn corrupted_length_is_caught_by_the_prelude_crc() {
    let mut body = metadata(1, 2);
    body[3] ^= 0x04;
    let got = read_all(&body);
    assert_eq!((got.usage, got.frames, got.malformed), (None, 0, 1));
}

#[test]
fn corrupted_payload_fails_the_message_crc() {
    let mut body = metadata(1, 2);
    let at = body.len() - 10;
    body[at] ^= 0x20;
    let got = read_all(&body);
    assert_eq!((got.usage, got.frames, got.malformed), (None, 0, 1));
}

#[test]
fn corrupted_message_crc_is_malformed() {
    let mut body = metadata(1, 2);
    let last = body.len() - 1;
    body[last] ^= 0xff;
    let got = read_all(&body);
    assert_eq!((got.usage, got.frames, got.malformed), (None, 0, 1));
}

#[test]
fn frames_after_a_malformed_frame_are_ignored() {
    let mut body = [metadata(1, 2), metadata(3, 4), metadata(5, 6)].concat();
    let second = metadata(1, 2).len();
    body[second + 20] ^= 0x01; // a header byte of the second frame
    let mut reader = EventStreamReader::new();
    reader.push(&body);
    reader.push(&metadata(7, 8));
    reader.push(&exception("throttlingException", "x"));
    assert!(reader.is_poisoned());
    assert_eq!(reader.usage(), Some((1, 2)));
    assert_eq!(
        (
            reader.frames(),
            reader.malformed_frames(),
            reader.exceptions()
        ),
        (1, 1, 0)
    );
}

#[test]
fn truncated_stream_has_no_usage_and_counts_only_at_finish() {
    let body = converse_stream(25, 40);
    let cut = &body[..body.len() - 7];
    let mut reader = EventStreamReader::new();
    reader.push(cut);
    assert_eq!(reader.usage(), None);
    assert!(reader.has_partial_frame());
    assert_eq!(reader.malformed_frames(), 0);
    reader.finish();
    assert_eq!((reader.frames(), reader.malformed_frames()), (5, 1));
    reader.finish();
    assert_eq!(reader.malformed_frames(), 1);
}

#[test]
fn truncation_at_every_length_never_yields_usage_or_panics() {
    let body = converse_stream(25, 40);
    for len in 0..body.len() {
        let reader = finished(&body[..len]);
        assert_eq!(reader.usage(), None, "len {len}");
        assert!(reader.malformed_frames() <= 1);
    }
    assert_eq!(finished(&body).malformed_frames(), 0);
}

#[test]
fn oversized_total_length_is_malformed_without_buffering() {
    let mut reader = EventStreamReader::new();
    reader.push(&prelude(u32::MAX, 0));
    assert!(reader.is_poisoned());
    assert!(!reader.has_partial_frame());
    reader.push(&vec![0u8; 1 << 20]);
    assert_eq!((reader.frames(), reader.malformed_frames()), (0, 1));
}

#[test]
fn payload_over_the_limit_is_malformed() {
    let total = 16 + 10 + MAX_PAYLOAD_BYTES + 1;
    let got = read_all(&prelude(total, 10));
    assert_eq!(got.malformed, 1);
    // At the limit the frame is accepted and read (only its prelude so far).
    let mut reader = EventStreamReader::new();
    reader.push(&prelude(16 + MAX_PAYLOAD_BYTES, 0));
    assert!(!reader.is_poisoned());
    assert!(reader.has_partial_frame());
}

#[test]
fn headers_over_the_limit_are_malformed() {
    let headers_len = MAX_HEADERS_BYTES + 1;
    let got = read_all(&prelude(16 + headers_len, headers_len));
    assert_eq!(got.malformed, 1);
}

#[test]
fn header_length_beyond_total_length_is_malformed() {
    for (total, headers_len) in [(100, 85), (100, 200), (16, 1), (16, u32::MAX)] {
        let got = read_all(&prelude(total, headers_len));
        assert_eq!(got.malformed, 1, "total {total} headers {headers_len}");
    }
}

#[test]
fn total_length_below_the_minimum_is_malformed() {
    for total in [0, 1, 12, 15] {
        let got = read_all(&prelude(total, 0));
        assert_eq!(got.malformed, 1, "total {total}");
    }
}

#[test]
fn unknown_header_value_type_is_malformed() {
    for value_type in [10u8, 11, 0xff] {
        let headers = [&[4u8][..], b"name", &[value_type], &[0, 0, 0, 0]].concat();
        let got = read_all(&frame_raw(&headers, b"{}"));
        assert_eq!((got.frames, got.malformed), (0, 1), "type {value_type}");
    }
}

#[test]
fn header_value_running_past_the_section_is_malformed() {
    let mut cases = Vec::new();
    for (value_type, short) in [(2u8, 0usize), (3, 1), (4, 3), (5, 7), (8, 7), (9, 15)] {
        cases.push([&[1u8, b'x', value_type][..], &vec![0u8; short]].concat());
    }
    cases.push(vec![1, b'x', 7, 0, 5, b'a', b'b']); // string of 5, 2 present
    cases.push(vec![1, b'x', 6, 0]); // byte array length cut
    cases.push(vec![9, b'x']); // name of 9, 1 present
    cases.push(vec![1, b'x']); // no type byte
    for headers in cases {
        let got = read_all(&frame_raw(&headers, b""));
        assert_eq!((got.frames, got.malformed), (0, 1), "{headers:?}");
    }
}

#[test]
fn non_utf8_header_name_or_string_is_malformed() {
    let name = [&[2u8, 0xff, 0xfe][..], &[0]].concat();
    let value = vec![1, b'x', 7, 0, 2, 0xc3, 0x28];
    for headers in [name, value] {
        let got = read_all(&frame_raw(&headers, b""));
        assert_eq!((got.frames, got.malformed), (0, 1));
    }
}

#[test]
fn repeated_standard_header_is_malformed() {
    let body = frame(
        &[
            (":message-type", Value::Str("event")),
            (":event-type", Value::Str("metadata")),
            (":message-type", Value::Str("exception")),
        ],
        b"{}",
    );
    assert_eq!(read_all(&body).malformed, 1);
}

#[test]
fn standard_header_of_another_type_matches_nothing() {
    let body = frame(
        &[
            (":message-type", Value::Bytes(b"event")),
            (":event-type", Value::Str("metadata")),
        ],
        b"{\"usage\":{\"inputTokens\":1,\"outputTokens\":2}}",
    );
    let got = read_all(&body);
    assert_eq!((got.usage, got.frames, got.malformed), (None, 1, 0));
}

#[test]
fn debug_output_shows_counters_not_content() {
    let mut reader = EventStreamReader::new();
    let body = converse_stream(25, 40);
    reader.push(&body[..body.len() - 30]);
    let shown = format!("{reader:?}");
    assert!(shown.contains("frames: 5"), "{shown}");
    assert!(
        !shown.contains("usage\\\":{")
            && !shown.contains("Hello")
            && !shown.contains("inputTokens")
    );
}

// ---- response headers -----------------------------------------------------------------------

#[test]
fn usage_from_headers_reads_both_counts() {
    assert_eq!(
        usage_from_headers(Some(b"12"), Some(b"345")),
        Some((12, 345))
    );
    assert_eq!(usage_from_headers(Some(b"0"), Some(b"0")), Some((0, 0)));
    assert_eq!(
        usage_from_headers(Some(b"18446744073709551615"), Some(b"00000000000000000001")),
        Some((u64::MAX, 1))
    );
}

#[test]
fn usage_from_headers_needs_both_headers_of_digits_only() {
    let bad: [&[u8]; 9] = [
        b"",
        b" 12",
        b"12 ",
        b"+12",
        b"-1",
        b"1e3",
        b"0x10",
        b"18446744073709551616",
        b"\xd9\xa1",
    ];
    for value in bad {
        assert_eq!(
            usage_from_headers(Some(value), Some(b"1")),
            None,
            "{value:?}"
        );
        assert_eq!(
            usage_from_headers(Some(b"1"), Some(value)),
            None,
            "{value:?}"
        );
    }
    assert_eq!(usage_from_headers(None, Some(b"1")), None);
    assert_eq!(usage_from_headers(Some(b"1"), None), None);
}

#[test]
fn every_single_byte_corruption_is_caught() {
    let body = [
        converse_stream(25, 40),
        exception("throttlingException", "x"),
        invoke_stream(1, 2),
    ]
    .concat();
    for at in 0..body.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut corrupt = body.clone();
            corrupt[at] ^= flip;
            let reader = finished(&corrupt);
            assert_eq!(reader.malformed_frames(), 1, "byte {at} ^ {flip:#x}");
            assert!(reader.frames() < 11);
        }
    }
}

// ---- the reader's bounds, at their numbers -----------------------------------------------------

/// `base` followed by filler headers (byte arrays under unknown names) up to exactly `len`
/// bytes of header section.
fn headers_of_len(base: &[u8], len: usize) -> Vec<u8> {
    // One filler header costs 1 + 9 (name) + 1 (type) + 2 (length) bytes besides its value.
    const OVERHEAD: usize = 13;
    let mut out = base.to_vec();
    for n in 0.. {
        let room = len - out.len();
        if room == 0 {
            break;
        }
        assert!(room >= OVERHEAD, "cannot pad {room} bytes");
        // Values of at most 60 000 bytes, and never leave less room than one more header.
        let value = if room - OVERHEAD > 60_000 {
            (room - 2 * OVERHEAD).min(60_000)
        } else {
            room - OVERHEAD
        };
        let name = format!("x-fill-{n:02}");
        let fill = vec![b'f'; value];
        out.extend_from_slice(&encode_headers(&[(name.as_str(), Value::Bytes(&fill))]));
    }
    assert_eq!(out.len(), len);
    out
}

fn metadata_headers() -> Vec<u8> {
    encode_headers(&[
        (":event-type", Value::Str("metadata")),
        (":content-type", Value::Str("application/json")),
        (":message-type", Value::Str("event")),
    ])
}

#[test]
fn headers_of_exactly_the_limit_are_read_and_one_more_byte_is_malformed() {
    let usage = br#"{"usage":{"inputTokens":3,"outputTokens":4}}"#;
    let at = frame_raw(
        &headers_of_len(&metadata_headers(), MAX_HEADERS_BYTES as usize),
        usage,
    );
    let got = read_all(&[at.as_slice(), &metadata(1, 2)].concat());
    assert_eq!((got.usage, got.frames, got.malformed), (Some((1, 2)), 2, 0));
    // The usage of the frame at the limit itself is read too.
    assert_eq!(read_all(&at).usage, Some((3, 4)));
    let over = frame_raw(
        &headers_of_len(&metadata_headers(), MAX_HEADERS_BYTES as usize + 1),
        usage,
    );
    let got = read_all(&[over.as_slice(), &metadata(1, 2)].concat());
    assert_eq!((got.usage, got.frames, got.malformed), (None, 0, 1));
}

#[test]
fn a_frame_of_exactly_max_frame_bytes_is_read_and_the_stream_goes_on() {
    // The largest frame there can be: headers and payload both at their limits.
    let headers = headers_of_len(&metadata_headers(), MAX_HEADERS_BYTES as usize);
    // Framed here with the library's table CRC: the bitwise one of `frame_raw` takes seconds
    // over 24 MiB in a debug build.
    let total = MAX_FRAME_BYTES;
    let mut big = Vec::with_capacity(total as usize);
    big.extend_from_slice(&total.to_be_bytes());
    big.extend_from_slice(&MAX_HEADERS_BYTES.to_be_bytes());
    big.extend_from_slice(&crc32(&big).to_be_bytes());
    big.extend_from_slice(&headers);
    big.resize(big.len() + MAX_PAYLOAD_BYTES as usize, b' ');
    big.extend_from_slice(&crc32(&big).to_be_bytes());
    assert_eq!(big.len(), MAX_FRAME_BYTES as usize);
    let mut reader = EventStreamReader::new();
    for part in big.chunks(64 * 1024) {
        reader.push(part);
    }
    reader.push(&metadata(5, 6));
    reader.finish();
    assert_eq!(
        (reader.usage(), reader.frames(), reader.malformed_frames()),
        (Some((5, 6)), 2, 0)
    );
    // One byte more (in the payload) and the frame is malformed at its prelude: nothing after it
    // is read, and nothing of it was buffered.
    let mut reader = EventStreamReader::new();
    reader.push(&prelude(MAX_FRAME_BYTES + 1, MAX_HEADERS_BYTES));
    assert!(reader.is_poisoned());
    reader.push(&metadata(5, 6));
    assert_eq!((reader.usage(), reader.malformed_frames()), (None, 1));
}

#[test]
fn a_payload_of_exactly_the_inspection_limit_is_inspected_and_one_byte_more_is_not() {
    let usage = r#"{"usage":{"inputTokens":7,"outputTokens":8},"p":""#;
    let padded = |len: usize| {
        let mut json = usage.to_owned();
        json.push_str(&"x".repeat(len - usage.len() - 2));
        json.push_str("\"}");
        assert_eq!(json.len(), len);
        frame_raw(&metadata_headers(), json.as_bytes())
    };
    let at = read_all(&padded(MAX_INSPECTED_PAYLOAD_BYTES as usize));
    assert_eq!((at.usage, at.frames, at.malformed), (Some((7, 8)), 1, 0));
    let over = read_all(&padded(MAX_INSPECTED_PAYLOAD_BYTES as usize + 1));
    assert_eq!((over.usage, over.frames, over.malformed), (None, 1, 0));
}
