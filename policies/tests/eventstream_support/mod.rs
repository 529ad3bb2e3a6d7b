//! Shared helpers for the `eventstream_*` and `audit_*` tests: an event-stream frame encoder
//! (the library only reads frames) and the canned Bedrock streams built with it.
//!
//! The encoder computes CRC32 bit by bit, independently of the library's table, so the two
//! cross-check each other; its output is pinned by the hex fixtures in
//! `tests/fixtures/eventstream/`, which botocore's `EventStreamBuffer` parses (see the README
//! there).
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A header value of each of the ten wire types.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    True,
    False,
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(&'a [u8]),
    Str(&'a str),
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// Bitwise CRC-32 (IEEE, reflected, 0xEDB88320).
pub fn crc32_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The wire bytes of one header section.
pub fn encode_headers(headers: &[(&str, Value<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(u8::try_from(name.len()).unwrap());
        out.extend_from_slice(name.as_bytes());
        match value {
            Value::True => out.push(0),
            Value::False => out.push(1),
            Value::Byte(v) => {
                out.push(2);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::Short(v) => {
                out.push(3);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::Int(v) => {
                out.push(4);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::Long(v) => {
                out.push(5);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::Bytes(v) => {
                out.push(6);
                out.extend_from_slice(&u16::try_from(v.len()).unwrap().to_be_bytes());
                out.extend_from_slice(v);
            }
            Value::Str(v) => {
                out.push(7);
                out.extend_from_slice(&u16::try_from(v.len()).unwrap().to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            Value::Timestamp(v) => {
                out.push(8);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::Uuid(v) => {
                out.push(9);
                out.extend_from_slice(v);
            }
        }
    }
    out
}

/// One frame from raw header bytes and a payload.
pub fn frame_raw(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = u32::try_from(12 + headers.len() + payload.len() + 4).unwrap();
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&u32::try_from(headers.len()).unwrap().to_be_bytes());
    let prelude_crc = crc32_bitwise(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    let message_crc = crc32_bitwise(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// One frame.
pub fn frame(headers: &[(&str, Value<'_>)], payload: &[u8]) -> Vec<u8> {
    frame_raw(&encode_headers(headers), payload)
}

/// A 12-byte prelude with a correct CRC and arbitrary lengths (for bounds tests).
pub fn prelude(total: u32, headers_len: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&headers_len.to_be_bytes());
    let crc = crc32_bitwise(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An `event` frame as Bedrock sends it: `:event-type`, `:content-type`, `:message-type`.
pub fn event(event_type: &str, json: &str) -> Vec<u8> {
    frame(
        &[
            (":event-type", Value::Str(event_type)),
            (":content-type", Value::Str("application/json")),
            (":message-type", Value::Str("event")),
        ],
        json.as_bytes(),
    )
}

/// A modelled exception frame.
pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", Value::Str(exception_type)),
            (":content-type", Value::Str("application/json")),
            (":message-type", Value::Str("exception")),
        ],
        format!("{{\"message\":\"{message}\"}}").as_bytes(),
    )
}

/// A ConverseStream `metadata` event (with the random `p` padding Bedrock adds).
pub fn metadata(input: u64, output: u64) -> Vec<u8> {
    event(
        "metadata",
        &format!(
            "{{\"metrics\":{{\"latencyMs\":512}},\"p\":\"abcdefghij\",\"usage\":{{\"inputTokens\":{input},\"outputTokens\":{output},\"totalTokens\":{}}}}}",
            input + output
        ),
    )
}

/// An InvokeModelWithResponseStream `chunk` event carrying `model_json` base64-encoded.
pub fn chunk(model_json: &str) -> Vec<u8> {
    event(
        "chunk",
        &format!(
            "{{\"bytes\":\"{}\",\"p\":\"abcd\"}}",
            STANDARD.encode(model_json)
        ),
    )
}

/// The final Anthropic chunk of an InvokeModelWithResponseStream response.
pub fn final_chunk(input: u64, output: u64) -> Vec<u8> {
    chunk(&format!(
        "{{\"type\":\"message_stop\",\"amazon-bedrock-invocationMetrics\":{{\"inputTokenCount\":{input},\"outputTokenCount\":{output},\"invocationLatency\":812,\"firstByteLatency\":301}}}}"
    ))
}

/// A whole ConverseStream response body reporting `(input, output)` tokens.
pub fn converse_stream(input: u64, output: u64) -> Vec<u8> {
    [
        event("messageStart", "{\"p\":\"abc\",\"role\":\"assistant\"}"),
        event(
            "contentBlockDelta",
            "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hello\"},\"p\":\"abcdef\"}",
        ),
        event(
            "contentBlockDelta",
            "{\"contentBlockIndex\":0,\"delta\":{\"text\":\" world\"},\"p\":\"ab\"}",
        ),
        event(
            "contentBlockStop",
            "{\"contentBlockIndex\":0,\"p\":\"abcd\"}",
        ),
        event(
            "messageStop",
            "{\"p\":\"abcdefgh\",\"stopReason\":\"end_turn\"}",
        ),
        metadata(input, output),
    ]
    .concat()
}

/// A whole InvokeModelWithResponseStream (Anthropic) response body.
pub fn invoke_stream(input: u64, output: u64) -> Vec<u8> {
    [
        chunk("{\"type\":\"message_start\",\"message\":{\"role\":\"assistant\",\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}"),
        chunk("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}"),
        chunk("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}"),
        final_chunk(input, output),
    ]
    .concat()
}

/// The library reader's observable state, for comparing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub usage: Option<(u64, u64)>,
    pub frames: u64,
    pub malformed: u64,
    pub exceptions: u64,
    pub last_exception: Option<String>,
}

pub fn outcome(reader: &policies::eventstream::EventStreamReader) -> Outcome {
    Outcome {
        usage: reader.usage(),
        frames: reader.frames(),
        malformed: reader.malformed_frames(),
        exceptions: reader.exceptions(),
        last_exception: reader.last_exception().map(str::to_string),
    }
}

/// Feeds `chunks` in order to a new reader and returns its outcome (without `finish`).
pub fn read_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut reader = policies::eventstream::EventStreamReader::new();
    for chunk in chunks {
        reader.push(chunk);
    }
    outcome(&reader)
}

/// Feeds the whole body in one push.
pub fn read_all(body: &[u8]) -> Outcome {
    read_chunks([body])
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex to bytes; lines starting with `#` are comments, whitespace is ignored.
pub fn from_hex(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(str::bytes)
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    assert!(digits.iter().all(u8::is_ascii_hexdigit));
    let pairs = digits.chunks_exact(2);
    assert!(pairs.remainder().is_empty(), "odd number of hex digits");
    pairs
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}
