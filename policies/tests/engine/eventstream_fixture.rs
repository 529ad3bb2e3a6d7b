//! The test encoder against known-good frames: the hex fixtures in
//! `tests/fixtures/eventstream/` were written by this encoder and then parsed by botocore's
//! `EventStreamBuffer` (which checks both CRCs and decodes every header type); see the README
//! there for the check and its output. A change to the encoder, or to what the reader makes of
//! these bytes, fails here.

use crate::eventstream_support::*;
use policies::eventstream::{crc32, EventStreamReader};

const CONVERSE: &str = include_str!("../fixtures/eventstream/converse_stream.hex");
const INVOKE: &str = include_str!("../fixtures/eventstream/invoke_stream.hex");
const EXCEPTION: &str = include_str!("../fixtures/eventstream/exception.hex");
const ALL_TYPES: &str = include_str!("../fixtures/eventstream/all_header_types.hex");

fn all_header_types() -> Vec<u8> {
    frame(
        &[
            ("true", Value::True),
            ("false", Value::False),
            ("byte", Value::Byte(-7)),
            ("short", Value::Short(-300)),
            ("int", Value::Int(70_000)),
            ("long", Value::Long(-5_000_000_000)),
            ("bytes", Value::Bytes(&[0, 1, 2, 0xff])),
            ("string", Value::Str("caf\u{e9}")),
            ("timestamp", Value::Timestamp(1_700_000_000_123)),
            (
                "uuid",
                Value::Uuid([
                    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89,
                    0xab, 0xcd, 0xef,
                ]),
            ),
            (":message-type", Value::Str("event")),
            (":event-type", Value::Str("chunk")),
        ],
        b"{}",
    )
}

fn throttle() -> Vec<u8> {
    exception(
        "throttlingException",
        "Too many requests, please wait before trying again.",
    )
}

/// Prints the fixtures (run with `--ignored --nocapture` to regenerate them).
#[test]
#[ignore]
fn dump_fixtures() {
    for (name, bytes) in [
        ("converse_stream", converse_stream(25, 40)),
        ("invoke_stream", invoke_stream(12, 34)),
        ("exception", throttle()),
        ("all_header_types", all_header_types()),
    ] {
        println!("{name} {}", to_hex(&bytes));
    }
}

#[test]
fn crc32_matches_the_standard_check_value_and_the_bitwise_encoder() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
    let bytes = converse_stream(1, 2);
    for end in 0..bytes.len() {
        assert_eq!(crc32(&bytes[..end]), crc32_bitwise(&bytes[..end]));
    }
}

#[test]
fn encoder_reproduces_the_converse_stream_fixture() {
    assert_eq!(converse_stream(25, 40), from_hex(CONVERSE));
}

#[test]
fn encoder_reproduces_the_invoke_stream_fixture() {
    assert_eq!(invoke_stream(12, 34), from_hex(INVOKE));
}

#[test]
fn encoder_reproduces_the_exception_fixture() {
    assert_eq!(throttle(), from_hex(EXCEPTION));
}

#[test]
fn encoder_reproduces_the_all_header_types_fixture() {
    assert_eq!(all_header_types(), from_hex(ALL_TYPES));
}

#[test]
fn reader_takes_usage_from_the_converse_stream_fixture() {
    let got = read_all(&from_hex(CONVERSE));
    assert_eq!(got.usage, Some((25, 40)));
    assert_eq!((got.frames, got.malformed, got.exceptions), (6, 0, 0));
}

#[test]
fn reader_takes_usage_from_the_invoke_stream_fixture() {
    let got = read_all(&from_hex(INVOKE));
    assert_eq!(got.usage, Some((12, 34)));
    assert_eq!((got.frames, got.malformed, got.exceptions), (4, 0, 0));
}

#[test]
fn reader_counts_the_exception_fixture() {
    let got = read_all(&from_hex(EXCEPTION));
    assert_eq!(got.usage, None);
    assert_eq!((got.frames, got.malformed, got.exceptions), (1, 0, 1));
    assert_eq!(got.last_exception.as_deref(), Some("throttlingException"));
}

#[test]
fn reader_skips_every_header_value_type() {
    let mut reader = EventStreamReader::new();
    reader.push(&from_hex(ALL_TYPES));
    reader.finish();
    assert_eq!((reader.frames(), reader.malformed_frames()), (1, 0));
    assert_eq!(reader.usage(), None);
}
