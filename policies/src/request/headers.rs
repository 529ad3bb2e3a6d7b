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
    /// `content-type` declares JSON read as UTF-8: `application/json` (any case), with at most
    /// one parameter, `charset=utf-8` (see [`json_content_type`]).
    pub content_type_json: bool,
    /// Why `content-type` does not (`None` when `content_type_json`).
    pub content_type_error: Option<ContentTypeError>,
    /// `content-encoding` is absent or `identity`.
    pub content_encoding_identity: bool,
}

impl HeadInfo {
    /// Why a body-carried operation may not read this body as JSON by its `content-type`
    /// (`None`: it may).
    pub fn content_type_refusal(&self) -> Option<ContentTypeError> {
        if self.content_type_json {
            None
        } else {
            Some(
                self.content_type_error
                    .unwrap_or(ContentTypeError::NotApplicationJson),
            )
        }
    }
}

/// Why a `content-type` does not declare a body the engine may read, which is JSON in UTF-8.
///
/// The engine reads the body as UTF-8 JSON; a `content-type` that lets the upstream read it any
/// other way (another charset, another media type it may parse differently) is refused rather
/// than guessed about. The value itself is never echoed (header values are arbitrary bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContentTypeError {
    /// No `content-type`.
    #[error("content-type is missing; the body must be sent as application/json")]
    Missing,
    /// A media type other than `application/json` (`text/plain`, `application/x-amz-json-1.1`,
    /// ...).
    #[error("content-type must be application/json")]
    NotApplicationJson,
    /// A charset other than `utf-8` (`utf-16`, `latin1`, `utf8`).
    #[error("content-type charset must be utf-8: the body is read as UTF-8 JSON")]
    CharsetNotUtf8,
    /// `charset="utf-8"`.
    #[error("content-type charset is quoted; write charset=utf-8")]
    CharsetQuoted,
    /// `charset` given twice.
    #[error("content-type has more than one charset parameter")]
    CharsetRepeated,
    /// A parameter other than `charset`.
    #[error("content-type has a parameter other than charset (application/json defines none)")]
    UnknownParameter,
    /// A parameter that is not `name=value` (`charset = utf-8`, an empty one, ...).
    #[error("content-type has a malformed parameter (expected ; charset=utf-8)")]
    MalformedParameter,
}

/// Why the head of a request was refused ([`HeaderError::reason`] gives the code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A `CONNECT` request: a tunnel the filter cannot inspect (`connect_not_allowed`).
    #[error("CONNECT is not allowed")]
    Connect,
    /// An `upgrade` header, or `connection: upgrade` (`connect_not_allowed`).
    #[error("protocol upgrade is not allowed")]
    Upgrade,
    /// An empty method, or one that is not upper-case letters (`header_invalid`).
    #[error("method is not an uppercase token")]
    MethodMalformed,
    /// A security-relevant header more than once, or folded into one comma-joined value
    /// (`header_invalid`). The header name comes from the fixed list or the configured
    /// identity header.
    #[error("header {0} appears more than once")]
    Duplicate(String),
    /// An empty `:authority` (`destination_not_privatelink`).
    #[error("request has no authority")]
    AuthorityMissing,
    /// `host` (or a `:authority` pair in the header map) differs from the authority
    /// (`destination_not_privatelink`).
    #[error("host header does not match the authority")]
    HostMismatch,
    /// A `content-length` that is not a decimal number (`header_invalid`).
    #[error("content-length is not a decimal number")]
    ContentLengthInvalid,
}

impl HeaderError {
    /// The reason code the refusal carries (given with each variant).
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
    let content_type_error = json_content_type(value(CONTENT_TYPE)).err();
    Ok(HeadInfo {
        content_length,
        content_type_json: content_type_error.is_none(),
        content_type_error,
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

/// Check a `content-type` value (`None`: absent) for a body read as UTF-8 JSON.
///
/// Accepted, exactly: optional whitespace, `application/json` in any case, then parameters in
/// the RFC 9110 syntax (`*( OWS ";" OWS [ name "=" value ] )`, empty ones allowed) of which
/// there may be one, `charset`, whose value is the token `utf-8` in any case. This is what
/// botocore sends for every restJson1 body-carried operation (`application/json`) and what
/// common HTTP clients add (`; charset=utf-8`). Refused: any other media type (`text/json`,
/// `application/jsonx`, `application/json-patch+json`, `application/x-amz-json-1.1`), any
/// other charset (`utf-16`, `latin1`, `utf8`), a quoted or repeated charset, any other
/// parameter, and anything malformed (whitespace around `=`, a parameter without `=`).
pub fn json_content_type(value: Option<&[u8]>) -> Result<(), ContentTypeError> {
    let value = value.ok_or(ContentTypeError::Missing)?;
    let mut parts = value.split(|&b| b == b';');
    let media = parts.next().unwrap_or_default();
    if !trim_ows(media).eq_ignore_ascii_case(b"application/json") {
        return Err(ContentTypeError::NotApplicationJson);
    }
    let mut charset_seen = false;
    for part in parts {
        let parameter = trim_ows(part);
        if parameter.is_empty() {
            continue;
        }
        let Some(eq) = parameter.iter().position(|&b| b == b'=') else {
            return Err(ContentTypeError::MalformedParameter);
        };
        let (name, rest) = parameter.split_at(eq);
        let value = rest.get(1..).unwrap_or_default();
        if !is_token(name) {
            return Err(ContentTypeError::MalformedParameter);
        }
        if !name.eq_ignore_ascii_case(b"charset") {
            return Err(ContentTypeError::UnknownParameter);
        }
        if charset_seen {
            return Err(ContentTypeError::CharsetRepeated);
        }
        charset_seen = true;
        if value.first() == Some(&b'"') {
            return Err(ContentTypeError::CharsetQuoted);
        }
        if !is_token(value) {
            return Err(ContentTypeError::MalformedParameter);
        }
        if !value.eq_ignore_ascii_case(b"utf-8") {
            return Err(ContentTypeError::CharsetNotUtf8);
        }
    }
    Ok(())
}

/// An RFC 9110 token: one or more `tchar`.
fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
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
