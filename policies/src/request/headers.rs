//! Header-level checks that come before routing.
//!
//! The proxy hands in every header pair (Envoy's wasm accessors would return only the first of
//! a repeated header, so repeats are refused here rather than guessed). Values are arbitrary
//! bytes and are only ever compared as bytes; only header *names*, which come from a fixed list
//! or the configuration, appear in error messages.

use crate::decision::Reason;
use crate::request::RequestFacts;

/// Headers that must appear at most once: anything a signature, the destination, the body
/// framing or the identity depends on.
const SINGLE_HEADERS: [&str; 14] = [
    ":authority",
    ":method",
    ":path",
    ":scheme",
    "host",
    "authorization",
    "x-amz-security-token",
    "x-amz-date",
    "x-amz-content-sha256",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "x-api-key",
];

const AUTHORITY: usize = 0;
const HOST: usize = 4;
const CONTENT_TYPE: usize = 9;
const CONTENT_LENGTH: usize = 10;
const CONTENT_ENCODING: usize = 11;
/// Single-valued headers whose values never contain a comma (indices into `SINGLE_HEADERS`).
const COMMA_FREE: [usize; 8] = [AUTHORITY, HOST, 6, 7, 8, CONTENT_TYPE, CONTENT_LENGTH, 13];

/// What the head of a request says about its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadInfo {
    /// `content-length`, when present and well-formed.
    pub content_length: Option<u64>,
    /// `content-type` is `application/json` (parameters allowed, case-insensitive type).
    pub content_type_json: bool,
    /// `content-encoding` is absent or `identity`.
    pub content_encoding_identity: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("CONNECT is not allowed")]
    Connect,
    #[error("protocol upgrade is not allowed")]
    Upgrade,
    #[error("method is not an uppercase token")]
    MethodMalformed,
    /// The header name comes from the fixed list or the configured identity header.
    #[error("header {0} appears more than once")]
    Duplicate(String),
    #[error("request has no authority")]
    AuthorityMissing,
    #[error("host header does not match the authority")]
    HostMismatch,
    #[error("content-length is not a decimal number")]
    ContentLengthInvalid,
}

impl HeaderError {
    pub fn reason(&self) -> Reason {
        match self {
            HeaderError::Connect | HeaderError::Upgrade => Reason::ConnectNotAllowed,
            HeaderError::AuthorityMissing | HeaderError::HostMismatch => {
                Reason::DestinationNotPrivatelink
            }
            HeaderError::MethodMalformed
            | HeaderError::Duplicate(_)
            | HeaderError::ContentLengthInvalid => Reason::HeaderInvalid,
        }
    }
}

/// Check the request head: method shape, CONNECT/Upgrade, duplicated security-relevant
/// headers (including `identity_header`), `host` vs `:authority`, and body-describing headers.
///
/// The `:authority` pair in `facts.headers`, when present, must equal `facts.authority` too
/// (both come from the proxy; a difference means the facts are inconsistent).
pub fn check_head(facts: &RequestFacts, identity_header: &str) -> Result<HeadInfo, HeaderError> {
    if facts.method == b"CONNECT" {
        return Err(HeaderError::Connect);
    }
    if facts.method.is_empty() || !facts.method.iter().all(u8::is_ascii_uppercase) {
        return Err(HeaderError::MethodMalformed);
    }

    let mut counts = [0u32; SINGLE_HEADERS.len()];
    let mut values: [Option<&[u8]>; SINGLE_HEADERS.len()] = [None; SINGLE_HEADERS.len()];
    let mut identity_count = 0u32;
    for &(name, value) in facts.headers {
        if name.eq_ignore_ascii_case("upgrade") {
            return Err(HeaderError::Upgrade);
        }
        if name.eq_ignore_ascii_case("connection") && has_token(value, b"upgrade") {
            return Err(HeaderError::Upgrade);
        }
        if !identity_header.is_empty() && name.eq_ignore_ascii_case(identity_header) {
            identity_count = identity_count.saturating_add(1);
        }
        let known = SINGLE_HEADERS
            .iter()
            .position(|n| name.eq_ignore_ascii_case(n));
        if let Some(i) = known {
            if let (Some(count), Some(slot)) = (counts.get_mut(i), values.get_mut(i)) {
                // Envoy's HTTP/1 codec folds a repeated header into one comma-joined value:
                // for headers that can never contain a comma, a comma is a repeat.
                let folded = COMMA_FREE.contains(&i) && value.contains(&b',');
                *count = count.saturating_add(if folded { 2 } else { 1 });
                slot.get_or_insert(value);
            }
        }
    }
    if let Some((name, _)) = SINGLE_HEADERS
        .iter()
        .zip(counts)
        .find(|&(_, count)| count > 1)
    {
        return Err(HeaderError::Duplicate((*name).to_owned()));
    }
    let identity_folded = facts.headers.iter().any(|&(name, value)| {
        !identity_header.eq_ignore_ascii_case("authorization")
            && name.eq_ignore_ascii_case(identity_header)
            && value.contains(&b',')
    });
    if identity_count > 1 || identity_folded {
        return Err(HeaderError::Duplicate(identity_header.to_ascii_lowercase()));
    }

    let value = |i: usize| values.get(i).copied().flatten();
    if facts.authority.is_empty() {
        return Err(HeaderError::AuthorityMissing);
    }
    for i in [AUTHORITY, HOST] {
        if let Some(v) = value(i) {
            if !v.eq_ignore_ascii_case(facts.authority) {
                return Err(HeaderError::HostMismatch);
            }
        }
    }

    let content_length = match value(CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(parse_content_length(v).ok_or(HeaderError::ContentLengthInvalid)?),
    };
    Ok(HeadInfo {
        content_length,
        content_type_json: value(CONTENT_TYPE).is_some_and(is_json_media_type),
        content_encoding_identity: value(CONTENT_ENCODING)
            .is_none_or(|v| v.eq_ignore_ascii_case(b"identity")),
    })
}

/// One or more ASCII digits that fit in a `u64`.
fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// The media type (before any `;`, without surrounding spaces or tabs) is `application/json`.
fn is_json_media_type(v: &[u8]) -> bool {
    let media = v.split(|&b| b == b';').next().unwrap_or_default();
    trim_ows(media).eq_ignore_ascii_case(b"application/json")
}

/// Does the comma-separated list contain `token` (case-insensitive, optional whitespace)?
fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|item| trim_ows(item).eq_ignore_ascii_case(token))
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}
