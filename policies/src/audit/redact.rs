//! Redaction and bounding: turning untrusted bytes into values safe to record (bounded,
//! UTF-8-repaired text with the credential backstop, token fingerprints, re-printed addresses,
//! the VPC endpoint id parsed from a host name).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::json::push_u64;
use crate::aws;

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
pub(super) fn bounded(input: &[u8], max: usize) -> String {
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

/// The address part of `ip`, `ip:port` or `[v6]:port`; bounded text for anything else.
pub(super) fn source_ip(input: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(input) {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return ip_text(addr.ip());
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return ip_text(ip);
        }
    }
    text(input)
}

/// `ip:port` or `[v6]:port` re-printed, a bare address re-printed; bounded text for anything
/// else.
pub(super) fn socket_address(input: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(input) {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return match addr {
                SocketAddr::V4(v4) => {
                    let mut out = ipv4_text(*v4.ip());
                    out.push(':');
                    push_u64(&mut out, u64::from(v4.port()));
                    out
                }
                SocketAddr::V6(_) => addr.to_string(),
            };
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return ip_text(ip);
        }
    }
    text(input)
}

/// An address as `Display` prints it. IPv4 (every request's source and upstream, in practice)
/// is printed digit by digit, without the formatting machinery; IPv6 (RFC 5952's shortest
/// form) by `Display`.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => ipv4_text(v4),
        IpAddr::V6(_) => ip.to_string(),
    }
}

fn ipv4_text(ip: Ipv4Addr) -> String {
    let mut out = String::with_capacity(21);
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_u64(&mut out, u64::from(octet));
    }
    out
}

/// The VPC endpoint id (`vpce-` + 8 or 17 hex digits, lower-cased) of an endpoint-specific
/// PrivateLink host name such as
/// `vpce-0a1b2c3d4e5f67890-abcd1234[-us-east-1a].bedrock-runtime.us-east-1.vpce.amazonaws.com`
/// (a `:port` and a trailing dot are ignored, case is not significant). The name is read by
/// `aws::parse_vpce_host`, the reader zonal-name matching uses too (any partition's DNS
/// suffix). `None` for any other host.
pub fn vpc_endpoint_id(host: &[u8]) -> Option<String> {
    let host = strip_port(host);
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.len() > 253 {
        return None;
    }
    let lower = std::str::from_utf8(host).ok()?.to_ascii_lowercase();
    aws::parse_vpce_host(&lower).map(|name| name.label.endpoint_id.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `vpcEndpointId` comes from the same reader as zonal-name matching and bundle
    /// validation (`aws::parse_vpce_host`), so it follows that grammar where the audit's own
    /// parser used to differ.
    #[test]
    fn vpc_endpoint_id_follows_the_shared_grammar() {
        for (host, expected) in [
            // Every partition's suffix (this parser knew only amazonaws.com and .com.cn).
            (
                "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.eusc-de-east-1.vpce.amazonaws.eu",
                Some("vpce-0a1b2c3d4e5f67890"),
            ),
            (
                "vpce-0a1b2c3d-abcd1234.bedrock-runtime.us-iso-east-1.vpce.c2s.ic.gov",
                Some("vpce-0a1b2c3d"),
            ),
            // An endpoint id has 8 or 17 hex digits (9 to 16 used to be read as one).
            ("vpce-0a1b2c3d4-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", None),
            // Exactly `<service>.<region>` before `vpce` (one label, or three, used to do).
            ("vpce-0a1b2c3d-abcd1234.bedrock-runtime.vpce.amazonaws.com", None),
            ("vpce-0a1b2c3d-abcd1234.a.bedrock-runtime.us-east-1.vpce.amazonaws.com", None),
            ("vpce-0a1b2c3d-abcd1234.bedrock-runtime.useast1.vpce.amazonaws.com", None),
            // Unchanged: the documentation's short DNS label, any zone, case, port, dot.
            ("vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com", Some("vpce-1a2b3c4d")),
            (
                "VPCE-0A1B2C3D-ABCD1234-US-WEST-2A.Bedrock-Runtime.US-EAST-1.VPCE.AMAZONAWS.COM.:443",
                Some("vpce-0a1b2c3d"),
            ),
        ] {
            assert_eq!(vpc_endpoint_id(host.as_bytes()).as_deref(), expected, "{host}");
        }
    }
}

/// The audit line's numbers, timestamp and addresses are printed without the formatting
/// machinery: the same text as `Display` / `format!` would give.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod printed_like_display {
    use proptest::prelude::*;

    use super::super::json::{format_rfc3339_millis, push_padded};
    use super::*;

    proptest! {
        #[test]
        fn numbers(n in any::<u64>(), width in 0usize..24) {
            let mut out = String::new();
            push_padded(&mut out, n, width);
            prop_assert_eq!(out, format!("{n:0width$}"));
        }

        #[test]
        fn addresses(octets in any::<[u8; 4]>(), port in any::<u16>(), v6 in any::<[u16; 8]>()) {
            let v4 = Ipv4Addr::from(octets);
            let sock = SocketAddr::from((v4, port));
            prop_assert_eq!(socket_address(sock.to_string().as_bytes()), sock.to_string());
            prop_assert_eq!(source_ip(sock.to_string().as_bytes()), v4.to_string());
            prop_assert_eq!(source_ip(v4.to_string().as_bytes()), v4.to_string());
            let ip6 = std::net::Ipv6Addr::from(v6);
            let sock6 = SocketAddr::from((ip6, port));
            prop_assert_eq!(socket_address(sock6.to_string().as_bytes()), sock6.to_string());
            prop_assert_eq!(source_ip(sock6.to_string().as_bytes()), ip6.to_string());
        }

        #[test]
        fn timestamps(ms in 0u64..=253_402_300_799_999) {
            let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
            // Independent check of the fields' widths and separators.
            let t = format_rfc3339_millis(ms);
            prop_assert_eq!(t.len(), 24, "{}", t);
            prop_assert!(t.ends_with('Z'));
            prop_assert_eq!(&t[20..23], format!("{:03}", ms % 1000));
            prop_assert_eq!(&t[17..19], format!("{:02}", secs % 60));
        }
    }
}
