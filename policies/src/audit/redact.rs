//! Redaction and bounding: turning untrusted bytes into values safe to record (bounded,
//! UTF-8-repaired text with the credential backstop, token fingerprints, re-printed addresses,
//! the VPC endpoint id parsed from a host name).

use std::net::{IpAddr, SocketAddr};

use sha2::{Digest, Sha256};

use super::json::push_hex_byte;

/// Longest text value kept from the request, configuration or identity, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 256;
/// Appended to a value (or added as the last array element) when something was cut off.
pub const TRUNCATED: &str = "\u{2026}[truncated]";
/// Replaces a whole value that looks like credential material.
pub const REDACTED: &str = "[redacted]";

/// Bounded, UTF-8-repaired text, replaced whole by [`REDACTED`] if it looks like credential
/// material.
pub(super) fn text(input: &[u8]) -> String {
    bounded(input, MAX_TEXT_BYTES)
}

/// At most `max` bytes of `input` as UTF-8 (each invalid sequence becomes U+FFFD), cut at a
/// character boundary and marked with [`TRUNCATED`] when cut, or [`REDACTED`] when what was kept
/// looks like credential material.
pub fn bounded(input: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(input.len().min(max));
    let mut truncated = false;
    'chunks: for chunk in input.utf8_chunks() {
        for c in chunk.valid().chars() {
            if out.len() + c.len_utf8() > max {
                truncated = true;
                break 'chunks;
            }
            out.push(c);
        }
        if !chunk.invalid().is_empty() {
            if out.len() + '\u{FFFD}'.len_utf8() > max {
                truncated = true;
                break;
            }
            out.push('\u{FFFD}');
        }
    }
    if looks_like_secret(&out) {
        return REDACTED.to_string();
    }
    if truncated {
        out.push_str(TRUNCATED);
    }
    out
}

/// Markers of credential material, compared ASCII case-insensitively.
const SECRET_MARKERS: [&str; 7] = [
    "signature=",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
    "bedrock-api-key-",
    "bearer ",
    "aws4-hmac-sha256",
];

/// The backstop: does `s` contain a credential marker, something shaped like a JWT
/// (`eyJ` + 8 base64url characters + `.`) or a long-term Bedrock key (`ABSK` + 16 base64
/// characters)? The allowlist of fields is the guarantee; this catches a secret pasted into an
/// identifier field (a model id, a subject, a request id).
pub fn looks_like_secret(s: &str) -> bool {
    let bytes = s.as_bytes();
    let contains_ci = |needle: &str| {
        bytes
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    if SECRET_MARKERS.iter().any(|m| contains_ci(m)) {
        return true;
    }
    let b64url = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    let b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    let mut i = 0;
    while let Some(rest) = bytes.get(i..) {
        if rest.is_empty() {
            break;
        }
        if let Some(tail) = rest.strip_prefix(b"eyJ") {
            let run = tail.iter().take_while(|b| b64url(b)).count();
            if run >= 8 && tail.get(run) == Some(&b'.') {
                return true;
            }
        }
        if let Some(tail) = rest.strip_prefix(b"ABSK") {
            if tail.iter().take_while(|b| b64(b)).count() >= 16 {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// The first 12 hex digits of the SHA-256 of an identity token (the token is hashed here and
/// not kept).
pub(super) fn token_fingerprint(token: &[u8]) -> String {
    let digest = Sha256::digest(token);
    let mut hex = String::with_capacity(12);
    for byte in digest.iter().take(6) {
        push_hex_byte(&mut hex, *byte);
    }
    hex
}

/// The address part of `ip`, `ip:port` or `[v6]:port`; bounded text for anything else.
pub(super) fn source_ip(input: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(input) {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return addr.ip().to_string();
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return ip.to_string();
        }
    }
    text(input)
}

/// `ip:port` or `[v6]:port` re-printed, a bare address re-printed; bounded text for anything
/// else.
pub(super) fn socket_address(input: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(input) {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return addr.to_string();
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return ip.to_string();
        }
    }
    text(input)
}

/// The VPC endpoint id (`vpce-` + 8 to 17 hex digits, lower-cased) of an endpoint-specific
/// PrivateLink host name such as
/// `vpce-0a1b2c3d4e5f67890-abcd1234[-us-east-1a].bedrock-runtime.us-east-1.vpce.amazonaws.com`
/// (a `:port` and a trailing dot are ignored). `None` for any other host.
pub fn vpc_endpoint_id(host: &[u8]) -> Option<String> {
    let host = strip_port(host);
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.len() > 253 {
        return None;
    }
    let lower = host.to_ascii_lowercase();
    let rest = [".vpce.amazonaws.com", ".vpce.amazonaws.com.cn"]
        .iter()
        .find_map(|suffix| lower.strip_suffix(suffix.as_bytes()))?;
    let mut labels = rest.split(|&b| b == b'.');
    let first = labels.next()?;
    // The service and region labels between the endpoint label and the suffix.
    let mut middle = 0;
    for label in labels {
        if label.is_empty()
            || !label
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return None;
        }
        middle += 1;
    }
    if middle == 0 {
        return None;
    }
    let id = first.strip_prefix(b"vpce-")?;
    let hex_len = id.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if !(8..=17).contains(&hex_len) {
        return None;
    }
    let (hex, tail) = id.split_at_checked(hex_len)?;
    // `-<dns suffix>` and optionally `-<availability zone>`.
    let tail = tail.strip_prefix(b"-")?;
    if tail.is_empty()
        || tail.starts_with(b"-")
        || tail.ends_with(b"-")
        || !tail
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return None;
    }
    let mut out = String::with_capacity(5 + hex.len());
    out.push_str("vpce-");
    out.extend(hex.iter().map(|&b| char::from(b)));
    Some(out)
}

/// `name:port` to `name` (a host name or IPv4 address; bracketed IPv6 is left alone).
fn strip_port(host: &[u8]) -> &[u8] {
    let Some(colon) = host.iter().rposition(|&b| b == b':') else {
        return host;
    };
    match host.split_at_checked(colon) {
        Some((name, port))
            if !name.contains(&b':')
                && port.len() > 1
                && port.iter().skip(1).all(u8::is_ascii_digit) =>
        {
            name
        }
        _ => host,
    }
}
