//! The audit record: one JSON line per request, written from an allowlist of named fields.
//!
//! # What can never be in a record
//!
//! [`AuditRecord`] has no field that can hold a request or response body, a header map, a raw
//! path or query string, an `Authorization` value, a SigV4 signature, a session token, a
//! Bedrock API key or a JWT. Every value is one of:
//!
//! * a fixed vocabulary (`eventName`, `decision`, `reason`, `mode`, `credentialType`, ...),
//! * a number (`status`, `latencyMs`, token counts, ...),
//! * a value validated against a narrow grammar (`accessKeyId` is `[A-Z0-9]{16,128}`,
//!   `vpcEndpointId` is parsed from a `vpce-…` host name, `sourceIPAddress` is re-printed from a
//!   parsed address, `upstreamAddress` is re-printed from a parsed socket address,
//!   `tokenFingerprint` is 12 hex digits of SHA-256, the stream exception type is
//!   `[A-Za-z]{1,64}`), or
//! * a short identifier (request id, region, endpoint host, issuer, subject, groups, rule id,
//!   bundle metadata, canonical model ids), bounded in length ([`MAX_TEXT_BYTES`]), with
//!   invalid UTF-8 replaced by U+FFFD, and, as a backstop only, replaced by [`REDACTED`] when it
//!   looks like credential material (`Signature=`, `X-Amz-Security-Token`, `bedrock-api-key-`,
//!   `ABSK…`, `eyJ….`, `Bearer `, ...).
//!
//! There is deliberately no "extra fields" map and no way to add a header: a new field is a
//! code change and a change to the golden tests (`tests/audit_*.rs` pins the exact key set).
//!
//! # The line
//!
//! [`AuditRecord::to_json_line`] writes the JSON by hand. Every key is always present (`null`
//! when unknown), in a fixed order, so each line has the same schema. The output is printable
//! ASCII only: `"` and `\` are escaped, control characters, DEL and every non-ASCII character
//! (U+2028 and U+2029 included) are written as `\uXXXX` escapes, so no sink can split the line
//! or be confused by its encoding (CVE-2024-45808, CVE-2025-25294, CVE-2023-27488). The line has
//! no trailing newline.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::decision::{Decision, Mode, Reason};
use crate::eventstream::EventStreamReader;
use crate::request::Operation;

/// Longest text value kept from the request, configuration or identity, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 256;
/// Longest model id kept (canonical ids and ARNs are at most 2048 characters).
pub const MAX_MODEL_ID_BYTES: usize = 2048;
/// Most groups kept in `userIdentity.groups`.
pub const MAX_GROUPS: usize = 32;
/// Most model ids kept in `requestParameters.modelId`.
pub const MAX_MODELS: usize = 16;
/// Appended to a value (or added as the last array element) when something was cut off.
pub const TRUNCATED: &str = "\u{2026}[truncated]";
/// Replaces a whole value that looks like credential material.
pub const REDACTED: &str = "[redacted]";

const EVENT_VERSION: &str = "1.0";
const EVENT_SOURCE: &str = "bedrock-guard";
/// 9999-12-31T23:59:59.999Z: RFC 3339 has four-digit years, so later times are clamped.
const MAX_EVENT_TIME_MS: u64 = 253_402_300_799_999;

/// How the caller authenticated to AWS (decided by the credentials module, recorded here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialType {
    SigV4,
    BedrockApiKeyShortTerm,
    BedrockApiKeyLongTerm,
    None,
}

impl CredentialType {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::SigV4 => "sigv4",
            CredentialType::BedrockApiKeyShortTerm => "api-key-short-term",
            CredentialType::BedrockApiKeyLongTerm => "api-key-long-term",
            CredentialType::None => "none",
        }
    }
}

/// The loaded bundle's identification. Built once per configuration and shared by every record
/// (so a record costs no copy of it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BundleInfo {
    name: Option<String>,
    revision: Option<String>,
    digest: Option<String>,
    key_id: Option<String>,
}

impl BundleInfo {
    /// `metadata.name`, `metadata.revision` and the bundle digest (e.g. `sha256:…`), bounded.
    pub fn new(
        name: impl AsRef<[u8]>,
        revision: impl AsRef<[u8]>,
        digest: impl AsRef<[u8]>,
    ) -> BundleInfo {
        BundleInfo {
            name: non_empty(text(name.as_ref())),
            revision: non_empty(text(revision.as_ref())),
            digest: non_empty(text(digest.as_ref())),
            key_id: None,
        }
    }

    /// The id of the key that verified the bundle's signature (`None`: unsigned).
    pub fn signed_by(mut self, key_id: Option<&str>) -> BundleInfo {
        self.key_id = key_id.and_then(|k| non_empty(text(k.as_bytes())));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct UserIdentity {
    issuer: Option<String>,
    subject: Option<String>,
    groups: Vec<String>,
    token_fingerprint: Option<String>,
}

/// One audit record. Build it with [`AuditRecord::from_decision`], complete it with the
/// setters as the request and response pass, then write it with [`AuditRecord::to_json_line`].
///
/// Setters take `&mut self` and return `&mut Self`, so they chain, and work the same whether
/// the record is being built or is stored in a stream context waiting for the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    event_time_ms: u64,
    request_id: Option<String>,
    operation: Option<Operation>,
    region: Option<String>,
    source_ip: Option<String>,
    identity: Option<UserIdentity>,
    access_key_id: Option<String>,
    credential_type: Option<CredentialType>,
    models: Vec<String>,
    endpoint: Option<String>,
    vpc_endpoint_id: Option<String>,
    allow: bool,
    reason: Reason,
    detail: Option<String>,
    rule_id: Option<String>,
    mode: Mode,
    bundle: Option<Arc<BundleInfo>>,
    status: Option<u16>,
    upstream_status: Option<u16>,
    upstream_address: Option<String>,
    latency_ms: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    stream_errors: Option<u64>,
    stream_exceptions: Option<u64>,
    stream_exception_type: Option<String>,
}

impl AuditRecord {
    /// A record for `decision`, timed at `event_time_ms` (Unix milliseconds, from the host
    /// clock). Verdict, reason, detail, rule, mode, operation and model ids come from the
    /// decision. `status` starts as the refusal status when the request is refused, and unknown
    /// when it goes upstream (set it from the response with [`AuditRecord::status`]).
    pub fn from_decision(decision: &Decision, event_time_ms: u64) -> AuditRecord {
        let mut models = Vec::with_capacity(decision.models.len().min(MAX_MODELS + 1));
        for model in decision.models.iter().take(MAX_MODELS) {
            models.push(bounded(model.as_bytes(), MAX_MODEL_ID_BYTES));
        }
        if decision.models.len() > MAX_MODELS {
            models.push(TRUNCATED.to_string());
        }
        AuditRecord {
            event_time_ms,
            request_id: None,
            operation: decision.operation,
            region: None,
            source_ip: None,
            identity: None,
            access_key_id: None,
            credential_type: None,
            models,
            endpoint: None,
            vpc_endpoint_id: None,
            allow: decision.is_allow(),
            reason: decision.reason,
            detail: non_empty(text(decision.detail.as_bytes())),
            rule_id: decision.rule_id.as_deref().map(|r| text(r.as_bytes())),
            mode: decision.mode,
            bundle: None,
            status: if decision.lets_through() {
                None
            } else {
                Some(decision.status())
            },
            upstream_status: None,
            upstream_address: None,
            latency_ms: None,
            input_tokens: None,
            output_tokens: None,
            stream_errors: None,
            stream_exceptions: None,
            stream_exception_type: None,
        }
    }

    /// Replace the verdict part (verdict, reason, detail, rule, mode, operation, models and the
    /// refusal status) with `decision`'s, keeping the request context already recorded. The
    /// shell builds the record's context before the engine decides.
    pub fn apply_decision(&mut self, decision: &Decision) -> &mut Self {
        let fresh = AuditRecord::from_decision(decision, self.event_time_ms);
        self.operation = fresh.operation.or(self.operation);
        if !fresh.models.is_empty() {
            self.models = fresh.models;
        }
        self.allow = fresh.allow;
        self.reason = fresh.reason;
        self.detail = fresh.detail;
        self.rule_id = fresh.rule_id;
        self.mode = fresh.mode;
        self.status = fresh.status;
        self
    }

    /// The token counts recorded so far (from headers or a stream).
    pub fn token_counts(&self) -> Option<(u64, u64)> {
        self.input_tokens.zip(self.output_tokens)
    }

    /// Malformed event-stream frames seen in the response, when it was a stream.
    pub fn malformed_frames(&self) -> Option<u64> {
        self.stream_errors
    }

    /// `requestID`: the request id the client sees (`x-amzn-RequestId`, or Envoy's id).
    pub fn request_id(&mut self, id: impl AsRef<[u8]>) -> &mut Self {
        self.request_id = non_empty(text(id.as_ref()));
        self
    }

    /// `awsRegion`: the region of the endpoint the request was bound for.
    pub fn region(&mut self, region: impl AsRef<[u8]>) -> &mut Self {
        self.region = non_empty(text(region.as_ref()));
        self
    }

    /// `sourceIPAddress`: the downstream address. `ip`, `ip:port` and `[v6]:port` are reduced
    /// to the address; anything else is kept as bounded text.
    pub fn source_address(&mut self, address: impl AsRef<[u8]>) -> &mut Self {
        self.source_ip = non_empty(source_ip(address.as_ref()));
        self
    }

    /// `userIdentity.issuer`, `.subject` and `.groups` of the verified principal. Never pass
    /// the token itself: use [`AuditRecord::token_fingerprint`] for that.
    pub fn identity<I, G>(
        &mut self,
        issuer: impl AsRef<[u8]>,
        subject: impl AsRef<[u8]>,
        groups: I,
    ) -> &mut Self
    where
        I: IntoIterator<Item = G>,
        G: AsRef<[u8]>,
    {
        let identity = self.identity.get_or_insert_with(UserIdentity::default);
        identity.issuer = non_empty(text(issuer.as_ref()));
        identity.subject = non_empty(text(subject.as_ref()));
        identity.groups.clear();
        let mut groups = groups.into_iter();
        for group in groups.by_ref().take(MAX_GROUPS) {
            identity.groups.push(text(group.as_ref()));
        }
        if groups.next().is_some() {
            identity.groups.push(TRUNCATED.to_string());
        }
        self
    }

    /// `userIdentity.tokenFingerprint`: the first 12 hex digits of the SHA-256 of the identity
    /// token, so records of one token can be correlated (also for an invalid token) without the
    /// token. The token is hashed here and not kept.
    pub fn token_fingerprint(&mut self, token: &[u8]) -> &mut Self {
        let digest = Sha256::digest(token);
        let mut hex = String::with_capacity(12);
        for byte in digest.iter().take(6) {
            push_hex_byte(&mut hex, *byte);
        }
        self.identity
            .get_or_insert_with(UserIdentity::default)
            .token_fingerprint = Some(hex);
        self
    }

    /// `accessKeyId`: the access key id only (from the SigV4 `Credential` scope or a decoded
    /// short-term API key). Anything but `[A-Z0-9]{16,128}` is not recorded.
    pub fn access_key_id(&mut self, akid: impl AsRef<[u8]>) -> &mut Self {
        let akid = akid.as_ref();
        let valid = (16..=128).contains(&akid.len())
            && akid
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        self.access_key_id = if valid {
            std::str::from_utf8(akid).ok().map(str::to_string)
        } else {
            None
        };
        self
    }

    /// `credentialType`.
    pub fn credential_type(&mut self, kind: CredentialType) -> &mut Self {
        self.credential_type = Some(kind);
        self
    }

    /// `endpoint` (the `:authority` host) and, when it is an endpoint-specific PrivateLink name,
    /// `vpcEndpointId`.
    pub fn endpoint(&mut self, host: impl AsRef<[u8]>) -> &mut Self {
        let host = host.as_ref();
        self.endpoint = non_empty(text(host));
        self.vpc_endpoint_id = vpc_endpoint_id(host);
        self
    }

    /// `bundleName`, `bundleRevision`, `bundleDigest`.
    pub fn bundle(&mut self, bundle: Arc<BundleInfo>) -> &mut Self {
        self.bundle = Some(bundle);
        self
    }

    /// `status`: the HTTP status sent to the client.
    pub fn status(&mut self, status: u16) -> &mut Self {
        self.status = Some(status);
        self
    }

    /// `upstreamStatus`: the HTTP status the upstream answered with (also when the filter
    /// withheld that answer and the client got a refusal: `status` is then the refusal's).
    pub fn upstream_status(&mut self, status: u16) -> &mut Self {
        self.upstream_status = Some(status);
        self
    }

    /// `upstreamAddress`: the address the answer came from (Envoy's `upstream.address`).
    /// `ip:port` and `[v6]:port` are re-printed from the parsed address (a bare address is
    /// kept as an address); anything else is kept as bounded text.
    pub fn upstream_address(&mut self, address: impl AsRef<[u8]>) -> &mut Self {
        self.upstream_address = non_empty(socket_address(address.as_ref()));
        self
    }

    /// `latencyMs`: from the request's first byte to the last byte of the response.
    pub fn latency_ms(&mut self, ms: u64) -> &mut Self {
        self.latency_ms = Some(ms);
        self
    }

    /// `inputTokens`, `outputTokens` (from the `X-Amzn-Bedrock-*-Token-Count` response headers,
    /// see [`crate::eventstream::usage_from_headers`]).
    pub fn tokens(&mut self, input: u64, output: u64) -> &mut Self {
        self.input_tokens = Some(input);
        self.output_tokens = Some(output);
        self
    }

    /// Everything a response stream reader learnt: token usage (when the stream reported it),
    /// `streamErrors` (malformed frames), `streamExceptions` and `streamExceptionType`.
    pub fn stream(&mut self, reader: &EventStreamReader) -> &mut Self {
        if let Some((input, output)) = reader.usage() {
            self.tokens(input, output);
        }
        self.stream_errors = Some(reader.malformed_frames());
        self.stream_exceptions = Some(reader.exceptions());
        self.stream_exception_type = reader.last_exception().map(str::to_string);
        self
    }

    /// The record as one line of JSON (no trailing newline; printable ASCII only).
    pub fn to_json_line(&self) -> String {
        let mut out = String::with_capacity(self.size_hint());
        let mut obj = Obj::open(&mut out);
        obj.str("eventVersion", Some(EVENT_VERSION));
        obj.key("eventTime");
        obj.out.push('"');
        push_rfc3339_millis(obj.out, self.event_time_ms);
        obj.out.push('"');
        obj.str("eventSource", Some(EVENT_SOURCE));
        obj.str("requestID", self.request_id.as_deref());
        obj.str("eventName", self.operation.map(Operation::as_str));
        obj.str("awsRegion", self.region.as_deref());
        obj.str("sourceIPAddress", self.source_ip.as_deref());
        obj.key("userIdentity");
        match &self.identity {
            None => obj.out.push_str("null"),
            Some(identity) => {
                let mut inner = Obj::open(obj.out);
                inner.str("issuer", identity.issuer.as_deref());
                inner.str("subject", identity.subject.as_deref());
                inner.key("groups");
                push_str_array(inner.out, &identity.groups);
                inner.str("tokenFingerprint", identity.token_fingerprint.as_deref());
                inner.close();
            }
        }
        obj.str("accessKeyId", self.access_key_id.as_deref());
        obj.str(
            "credentialType",
            self.credential_type.map(CredentialType::as_str),
        );
        obj.key("requestParameters");
        match self.models.as_slice() {
            [] => obj.out.push_str("null"),
            models => {
                let mut inner = Obj::open(obj.out);
                inner.key("modelId");
                match models {
                    [single] => push_json_str(inner.out, single),
                    many => push_str_array(inner.out, many),
                }
                inner.close();
            }
        }
        obj.str("endpoint", self.endpoint.as_deref());
        obj.str("vpcEndpointId", self.vpc_endpoint_id.as_deref());
        obj.str("decision", Some(if self.allow { "allow" } else { "deny" }));
        obj.str("reason", Some(self.reason.as_str()));
        obj.str("detail", self.detail.as_deref());
        obj.str("ruleId", self.rule_id.as_deref());
        obj.str("mode", Some(self.mode.as_str()));
        let bundle = self.bundle.as_deref();
        obj.str("bundleName", bundle.and_then(|b| b.name.as_deref()));
        obj.str("bundleRevision", bundle.and_then(|b| b.revision.as_deref()));
        obj.str("bundleDigest", bundle.and_then(|b| b.digest.as_deref()));
        obj.str("bundleKeyId", bundle.and_then(|b| b.key_id.as_deref()));
        obj.num("status", self.status.map(u64::from));
        obj.num("upstreamStatus", self.upstream_status.map(u64::from));
        obj.str("upstreamAddress", self.upstream_address.as_deref());
        obj.num("latencyMs", self.latency_ms);
        obj.num("inputTokens", self.input_tokens);
        obj.num("outputTokens", self.output_tokens);
        obj.num("streamErrors", self.stream_errors);
        obj.num("streamExceptions", self.stream_exceptions);
        obj.str("streamExceptionType", self.stream_exception_type.as_deref());
        obj.close();
        out
    }

    /// A capacity that a typical line fits in without growing.
    fn size_hint(&self) -> usize {
        let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let identity = self.identity.as_ref().map_or(0, |i| {
            len(&i.issuer) + len(&i.subject) + i.groups.iter().map(|g| g.len() + 3).sum::<usize>()
        });
        768 + len(&self.request_id)
            + len(&self.endpoint)
            + len(&self.upstream_address)
            + len(&self.detail)
            + len(&self.rule_id)
            + identity
            + self.models.iter().map(|m| m.len() + 3).sum::<usize>()
    }
}

// ------------------------------------------------------------------------------ JSON writing

/// A JSON object being written: tracks the comma.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_json_str(self.out, key);
        self.out.push(':');
    }

    fn str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => push_json_str(self.out, v),
            None => self.out.push_str("null"),
        }
    }

    fn num(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            // Writing to a String cannot fail.
            Some(n) => {
                let _ = write!(self.out, "{n}");
            }
            None => self.out.push_str("null"),
        }
    }

    fn close(self) {
        self.out.push('}');
    }
}

fn push_str_array(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, item);
    }
    out.push(']');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(nibble: u8) -> char {
    char::from(HEX.get(usize::from(nibble & 0x0f)).copied().unwrap_or(b'0'))
}

fn push_hex_byte(out: &mut String, byte: u8) {
    out.push(hex_digit(byte >> 4));
    out.push(hex_digit(byte));
}

/// Writes `s` as a JSON string of printable ASCII: `"` and `\` escaped, and every character
/// outside U+0020..U+007E written as a `\uXXXX` escape (surrogate pairs above U+FFFF), with the
/// short forms for `\n`, `\r`, `\t`, `\b`, `\f`.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    let [hi, lo] = unit.to_be_bytes();
                    push_hex_byte(out, hi);
                    push_hex_byte(out, lo);
                }
            }
        }
    }
    out.push('"');
}

// ------------------------------------------------------------------------------ time

/// Unix milliseconds as RFC 3339 UTC with milliseconds, e.g. `2024-02-29T12:00:00.123Z`.
/// Times after 9999-12-31T23:59:59.999Z are written as that instant.
pub fn format_rfc3339_millis(unix_ms: u64) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339_millis(&mut out, unix_ms);
    out
}

fn push_rfc3339_millis(out: &mut String, unix_ms: u64) {
    let ms = unix_ms.min(MAX_EVENT_TIME_MS);
    let secs = ms / 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms % 1000
    );
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day). Counts in 400-year eras
/// of 146097 days, with years starting on 1 March so the leap day is the last day of a year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 719468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

// ------------------------------------------------------------------------------ values

/// Bounded, UTF-8-repaired text, replaced whole by [`REDACTED`] if it looks like credential
/// material.
fn text(input: &[u8]) -> String {
    bounded(input, MAX_TEXT_BYTES)
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
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

/// The address part of `ip`, `ip:port` or `[v6]:port`; bounded text for anything else.
fn source_ip(input: &[u8]) -> String {
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
fn socket_address(input: &[u8]) -> String {
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
