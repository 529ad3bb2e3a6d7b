//! Incremental reader of `application/vnd.amazon.eventstream` response bodies, for token usage.
//!
//! The proxy passes the response through unchanged and feeds each body chunk, as it passes, to
//! [`EventStreamReader::push`]. The reader keeps only what it needs of the current frame: the
//! 12-byte prelude, the frame's headers (at most [`MAX_HEADERS_BYTES`]) and, for the two events
//! that carry usage (`metadata` in ConverseStream, `chunk` in InvokeModelWithResponseStream),
//! their payload (at most [`MAX_INSPECTED_PAYLOAD_BYTES`]). Other payloads are only run through
//! the CRC. Inspected payloads are zeroed as soon as the frame is done; only numbers are kept.
//!
//! Framing (all integers big-endian):
//!
//! ```text
//! [total_length u32][headers_length u32][prelude_crc u32]   prelude_crc = CRC32(bytes 0..8)
//! [headers: headers_length bytes]
//! [payload: total_length - headers_length - 16 bytes]
//! [message_crc u32]                                         message_crc = CRC32(bytes 0..total_length-4)
//! ```
//!
//! A frame whose CRCs do not match, whose lengths are out of bounds or whose headers do not
//! parse counts as malformed, and the reader stops parsing for good: after a bad length there
//! is no safe way to find the next frame boundary. `push` never fails and never panics; what
//! was learnt from earlier (valid) frames is kept.
//!
//! Usage is taken only from frames whose message CRC matched:
//!
//! * ConverseStream: the `metadata` event, `{"usage":{"inputTokens":N,"outputTokens":M,…},…}`.
//! * InvokeModelWithResponseStream: a `chunk` event, `{"bytes":"<base64>"}`, whose decoded model
//!   JSON has a top-level `"amazon-bedrock-invocationMetrics":{"inputTokenCount":N,
//!   "outputTokenCount":M,…}`. Decoded chunks are searched for the key first; only a chunk that
//!   contains it is parsed (as a whole, so the key has to be a real top-level member, not text
//!   inside the completion).
//!
//! When several events report usage, the last one wins.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::Deserialize;

/// Largest headers section accepted (botocore's limit).
pub const MAX_HEADERS_BYTES: u32 = 128 * 1024;
/// Largest payload accepted (botocore's limit): a frame botocore would read is never called
/// malformed here. Payloads are not buffered (unless inspected), so this costs no memory.
pub const MAX_PAYLOAD_BYTES: u32 = 24 * 1024 * 1024;
/// Largest `total_length` accepted.
pub const MAX_FRAME_BYTES: u32 = PRELUDE_LEN + MAX_HEADERS_BYTES + MAX_PAYLOAD_BYTES + CRC_LEN;
/// Largest `metadata` / `chunk` payload that is inspected for usage; larger ones are checked
/// (CRC) but not inspected. The events that carry usage are small.
pub const MAX_INSPECTED_PAYLOAD_BYTES: u32 = 1024 * 1024;

const PRELUDE_LEN: u32 = 12;
const CRC_LEN: u32 = 4;
/// Longest exception type name kept.
const MAX_EXCEPTION_NAME: usize = 64;
/// Buffers grown past this are released after their frame rather than kept for the next.
const KEEP_CAPACITY: usize = 64 * 1024;

const METRICS_KEY: &[u8] = b"\"amazon-bedrock-invocationMetrics\"";

/// Standard alphabet, padding optional (SDK encoders pad; be lenient about it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

// ------------------------------------------------------------------------------ CRC32

// `i < 256` by the loop condition; `get_mut` is not usable in a const fn on this MSRV.
#[allow(clippy::indexing_slicing)]
const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32_TABLE: [u32; 256] = crc32_table();

/// Running CRC32 state (not yet inverted at the end); start from `!0`.
fn crc32_update(mut state: u32, data: &[u8]) -> u32 {
    for &byte in data {
        let index = usize::from((state as u8) ^ byte);
        state = CRC32_TABLE.get(index).copied().unwrap_or(0) ^ (state >> 8);
    }
    state
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0x04C11DB7), as zlib's `crc32`: the checksum of
/// an event-stream prelude and frame. Public so that tests can build frames.
pub fn crc32(data: &[u8]) -> u32 {
    !crc32_update(!0, data)
}

// ------------------------------------------------------------------------------ the reader

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prelude,
    Headers,
    Payload,
    MessageCrc,
    /// A malformed frame was seen: everything after it is ignored.
    Poisoned,
}

/// A validated exception type name, kept inline.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Name {
    bytes: [u8; MAX_EXCEPTION_NAME],
    len: usize,
}

impl Name {
    /// `[A-Za-z]{1,64}`, else `None`.
    fn parse(value: &[u8]) -> Option<Name> {
        if value.is_empty()
            || value.len() > MAX_EXCEPTION_NAME
            || !value.iter().all(u8::is_ascii_alphabetic)
        {
            return None;
        }
        let mut bytes = [0u8; MAX_EXCEPTION_NAME];
        bytes.get_mut(..value.len())?.copy_from_slice(value);
        Some(Name {
            bytes,
            len: value.len(),
        })
    }

    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(..self.len)?).ok()
    }
}

/// What a frame is, as far as usage and errors go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Other,
    Metadata,
    Chunk,
    /// `:message-type` `exception` (`:exception-type`) or `error` (`:error-code`); the name when
    /// it is a valid one.
    Exception(Option<Name>),
}

/// Incremental event-stream reader. See the module documentation.
#[derive(Clone)]
pub struct EventStreamReader {
    phase: Phase,
    /// Prelude bytes of the current frame (`filled` of them so far).
    prelude: [u8; 12],
    /// Message CRC bytes of the current frame (`filled` of them so far).
    trailer: [u8; 4],
    filled: usize,
    /// Bytes left in the current headers or payload section.
    remaining: u32,
    payload_len: u32,
    /// Running CRC of the current frame.
    crc: u32,
    headers: Vec<u8>,
    kind: Kind,
    inspect: bool,
    /// Payload of an inspected event (content: zeroed after use).
    payload: Vec<u8>,
    /// Decoded chunk (content: zeroed after use).
    decoded: Vec<u8>,
    frames: u64,
    malformed: u64,
    exceptions: u64,
    last_exception: Option<Name>,
    usage: Option<(u64, u64)>,
}

impl Default for EventStreamReader {
    fn default() -> Self {
        EventStreamReader::new()
    }
}

impl fmt::Debug for EventStreamReader {
    /// Counters only: the buffers may hold content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStreamReader")
            .field("frames", &self.frames)
            .field("malformed", &self.malformed)
            .field("exceptions", &self.exceptions)
            .field("last_exception", &self.last_exception())
            .field("usage", &self.usage)
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl EventStreamReader {
    /// A reader at the start of a response body.
    pub fn new() -> EventStreamReader {
        EventStreamReader {
            phase: Phase::Prelude,
            prelude: [0; 12],
            trailer: [0; 4],
            filled: 0,
            remaining: 0,
            payload_len: 0,
            crc: !0,
            headers: Vec::new(),
            kind: Kind::Other,
            inspect: false,
            payload: Vec::new(),
            decoded: Vec::new(),
            frames: 0,
            malformed: 0,
            exceptions: 0,
            last_exception: None,
            usage: None,
        }
    }

    /// Feeds the next bytes of the response body, split anywhere.
    pub fn push(&mut self, chunk: &[u8]) {
        let mut input = chunk;
        while !input.is_empty() {
            match self.phase {
                Phase::Poisoned => return,
                Phase::Prelude => {
                    fill(&mut self.prelude, &mut self.filled, &mut input);
                    if self.filled == self.prelude.len() {
                        self.start_frame();
                    }
                }
                Phase::Headers => {
                    let part = take(&mut input, self.remaining);
                    self.crc = crc32_update(self.crc, part);
                    self.headers.extend_from_slice(part);
                    self.remaining = self.remaining.saturating_sub(len_u32(part));
                    if self.remaining == 0 {
                        self.end_headers();
                    }
                }
                Phase::Payload => {
                    let part = take(&mut input, self.remaining);
                    self.crc = crc32_update(self.crc, part);
                    if self.inspect {
                        self.payload.extend_from_slice(part);
                    }
                    self.remaining = self.remaining.saturating_sub(len_u32(part));
                    if self.remaining == 0 {
                        self.start_trailer();
                    }
                }
                Phase::MessageCrc => {
                    fill(&mut self.trailer, &mut self.filled, &mut input);
                    if self.filled == self.trailer.len() {
                        self.end_frame();
                    }
                }
            }
        }
    }

    /// Tells the reader the body ended. A frame left incomplete counts as malformed.
    pub fn finish(&mut self) {
        if self.has_partial_frame() {
            self.poison();
        }
    }

    /// Token usage `(input, output)` from the last event that reported it.
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.usage
    }

    /// Complete frames whose CRCs matched.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Malformed frames (bad CRC, lengths or headers; a truncated frame after
    /// [`EventStreamReader::finish`]). Parsing stops at the first, so this is 0 or 1.
    pub fn malformed_frames(&self) -> u64 {
        self.malformed
    }

    /// Frames with `:message-type` `exception` or `error` (errors arrive inside an HTTP 200).
    pub fn exceptions(&self) -> u64 {
        self.exceptions
    }

    /// The type of the last exception (`:exception-type`, or `:error-code` for an `error`),
    /// when it was a valid name (`[A-Za-z]{1,64}`).
    pub fn last_exception(&self) -> Option<&str> {
        self.last_exception.as_ref().and_then(Name::as_str)
    }

    /// Whether a malformed frame stopped the reader.
    pub fn is_poisoned(&self) -> bool {
        self.phase == Phase::Poisoned
    }

    /// Whether some bytes of a frame have been read but not the whole frame.
    pub fn has_partial_frame(&self) -> bool {
        match self.phase {
            Phase::Prelude => self.filled > 0,
            Phase::Headers | Phase::Payload | Phase::MessageCrc => true,
            Phase::Poisoned => false,
        }
    }

    fn poison(&mut self) {
        self.malformed = self.malformed.saturating_add(1);
        self.phase = Phase::Poisoned;
        // Nothing more will be read: zero what was held and give the memory back.
        for buf in [&mut self.headers, &mut self.payload, &mut self.decoded] {
            buf.fill(0);
            *buf = Vec::new();
        }
    }

    fn start_frame(&mut self) {
        let [t0, t1, t2, t3, h0, h1, h2, h3, c0, c1, c2, c3] = self.prelude;
        let total = u32::from_be_bytes([t0, t1, t2, t3]);
        let headers_len = u32::from_be_bytes([h0, h1, h2, h3]);
        let prelude_crc = u32::from_be_bytes([c0, c1, c2, c3]);
        let prelude_ok = crc32(&[t0, t1, t2, t3, h0, h1, h2, h3]) == prelude_crc;
        let payload_len = total
            .checked_sub(PRELUDE_LEN + CRC_LEN)
            .and_then(|rest| rest.checked_sub(headers_len));
        let payload_len = match payload_len {
            Some(p)
                if prelude_ok
                    && total <= MAX_FRAME_BYTES
                    && headers_len <= MAX_HEADERS_BYTES
                    && p <= MAX_PAYLOAD_BYTES =>
            {
                p
            }
            _ => return self.poison(),
        };
        self.crc = crc32_update(!0, &self.prelude);
        self.payload_len = payload_len;
        self.headers.clear();
        self.remaining = headers_len;
        if headers_len == 0 {
            self.end_headers();
        } else {
            self.phase = Phase::Headers;
        }
    }

    fn end_headers(&mut self) {
        let Some(kind) = parse_headers(&self.headers) else {
            return self.poison();
        };
        self.kind = kind;
        self.inspect = matches!(kind, Kind::Metadata | Kind::Chunk)
            && self.payload_len <= MAX_INSPECTED_PAYLOAD_BYTES;
        self.payload.clear();
        self.remaining = self.payload_len;
        if self.payload_len == 0 {
            self.start_trailer();
        } else {
            self.phase = Phase::Payload;
        }
    }

    fn start_trailer(&mut self) {
        self.filled = 0;
        self.phase = Phase::MessageCrc;
    }

    fn end_frame(&mut self) {
        if u32::from_be_bytes(self.trailer) != !self.crc {
            return self.poison();
        }
        self.frames = self.frames.saturating_add(1);
        match self.kind {
            Kind::Exception(name) => {
                self.exceptions = self.exceptions.saturating_add(1);
                self.last_exception = name;
            }
            Kind::Metadata if self.inspect => {
                if let Some(usage) = converse_usage(&self.payload) {
                    self.usage = Some(usage);
                }
            }
            Kind::Chunk if self.inspect => {
                if let Some(usage) = chunk_usage(&self.payload, &mut self.decoded) {
                    self.usage = Some(usage);
                }
                release(&mut self.decoded);
            }
            Kind::Metadata | Kind::Chunk | Kind::Other => {}
        }
        release(&mut self.payload);
        release(&mut self.headers);
        self.kind = Kind::Other;
        self.inspect = false;
        self.filled = 0;
        self.phase = Phase::Prelude;
    }
}

/// Zeroes and empties a buffer, and gives back its memory when it grew large.
fn release(buf: &mut Vec<u8>) {
    buf.fill(0);
    buf.clear();
    if buf.capacity() > KEEP_CAPACITY {
        *buf = Vec::new();
    }
}

fn len_u32(part: &[u8]) -> u32 {
    u32::try_from(part.len()).unwrap_or(u32::MAX)
}

/// Splits off up to `n` bytes from the front of `input`.
fn take<'a>(input: &mut &'a [u8], n: u32) -> &'a [u8] {
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
    let (head, rest) = input.split_at_checked(n).unwrap_or((input, &[]));
    *input = rest;
    head
}

/// Moves bytes from `input` into `buf[*filled..]`.
fn fill(buf: &mut [u8], filled: &mut usize, input: &mut &[u8]) {
    let want = buf.len().saturating_sub(*filled);
    let part = take(input, u32::try_from(want).unwrap_or(u32::MAX));
    if let Some(dst) = buf.get_mut(*filled..*filled + part.len()) {
        dst.copy_from_slice(part);
    }
    *filled += part.len();
}

// ------------------------------------------------------------------------------ headers

/// Reads `n` bytes from the front of `h`, or `None` if there are fewer.
fn read<'a>(h: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = h.split_at_checked(n)?;
    *h = rest;
    Some(head)
}

fn read_u8(h: &mut &[u8]) -> Option<u8> {
    read(h, 1)?.first().copied()
}

/// Parses a headers section; `None` when it is malformed (lengths out of bounds, unknown value
/// type, a name or string value that is not UTF-8, a repeated `:message-type`, `:event-type`,
/// `:exception-type` or `:error-code`).
fn parse_headers(mut h: &[u8]) -> Option<Kind> {
    let mut message_type: Option<&[u8]> = None;
    let mut event_type: Option<&[u8]> = None;
    let mut exception_type: Option<&[u8]> = None;
    let mut error_code: Option<&[u8]> = None;
    while !h.is_empty() {
        let name_len = read_u8(&mut h)?;
        let name = read(&mut h, usize::from(name_len))?;
        std::str::from_utf8(name).ok()?;
        let value_type = read_u8(&mut h)?;
        let string = match value_type {
            // bool true, bool false: no value bytes
            0 | 1 => None,
            // int8, int16, int32, int64, timestamp (int64 ms), uuid
            2 | 3 | 4 | 5 | 8 | 9 => {
                let len = match value_type {
                    2 => 1,
                    3 => 2,
                    4 => 4,
                    9 => 16,
                    _ => 8,
                };
                read(&mut h, len)?;
                None
            }
            // byte array, string: u16 length
            6 | 7 => {
                let len = read(&mut h, 2)?;
                let len = u16::from_be_bytes([*len.first()?, *len.get(1)?]);
                let value = read(&mut h, usize::from(len))?;
                if value_type == 7 {
                    std::str::from_utf8(value).ok()?;
                    Some(value)
                } else {
                    None
                }
            }
            _ => return None,
        };
        let slot = match name {
            b":message-type" => &mut message_type,
            b":event-type" => &mut event_type,
            b":exception-type" => &mut exception_type,
            b":error-code" => &mut error_code,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        // A standard header of another type reads as an empty string: never a match.
        *slot = Some(string.unwrap_or(b""));
    }
    Some(match message_type {
        Some(b"event") => match event_type {
            Some(b"metadata") => Kind::Metadata,
            Some(b"chunk") => Kind::Chunk,
            _ => Kind::Other,
        },
        Some(b"exception") => Kind::Exception(exception_type.and_then(Name::parse)),
        Some(b"error") => Kind::Exception(error_code.and_then(Name::parse)),
        _ => Kind::Other,
    })
}

// ------------------------------------------------------------------------------ usage

#[derive(Deserialize)]
struct MetadataEvent {
    usage: Option<ConverseUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseUsage {
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Deserialize)]
struct ChunkEvent<'a> {
    #[serde(borrow)]
    bytes: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ModelChunk {
    #[serde(rename = "amazon-bedrock-invocationMetrics")]
    metrics: Option<InvocationMetrics>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvocationMetrics {
    input_token_count: u64,
    output_token_count: u64,
}

/// `usage` of a ConverseStream `metadata` event payload.
fn converse_usage(payload: &[u8]) -> Option<(u64, u64)> {
    let event: MetadataEvent = serde_json::from_slice(payload).ok()?;
    let usage = event.usage?;
    Some((usage.input_tokens, usage.output_tokens))
}

/// Invocation metrics of an InvokeModelWithResponseStream `chunk` event payload. `decoded` is
/// scratch space for the decoded model chunk.
fn chunk_usage(payload: &[u8], decoded: &mut Vec<u8>) -> Option<(u64, u64)> {
    let event: ChunkEvent<'_> = serde_json::from_slice(payload).ok()?;
    let bytes = event.bytes?;
    decoded.clear();
    BASE64.decode_vec(bytes.as_bytes(), decoded).ok()?;
    if !contains(decoded, METRICS_KEY) {
        return None;
    }
    let chunk: ModelChunk = serde_json::from_slice(decoded).ok()?;
    let metrics = chunk.metrics?;
    Some((metrics.input_token_count, metrics.output_token_count))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, _)) = needle.split_first() else {
        return true;
    };
    haystack.iter().enumerate().any(|(i, &b)| {
        b == first
            && haystack
                .get(i..)
                .is_some_and(|rest| rest.starts_with(needle))
    })
}

/// Token usage from the `X-Amzn-Bedrock-Input-Token-Count` and
/// `X-Amzn-Bedrock-Output-Token-Count` response headers: both present, each 1 to 20 ASCII
/// digits that fit a `u64`, else `None`.
pub fn usage_from_headers(input: Option<&[u8]>, output: Option<&[u8]>) -> Option<(u64, u64)> {
    Some((token_count(input?)?, token_count(output?)?))
}

fn token_count(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}
