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
//! code change and a change to the golden tests (`policies/tests/engine/audit_record.rs` pins
//! the exact key set).
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

mod json;
mod record;
mod redact;

pub use json::format_rfc3339_millis;
pub use record::{
    AuditRecord, BundleInfo, CredentialType, MAX_GROUPS, MAX_MODELS, MAX_MODEL_ID_BYTES,
};
pub use redact::{looks_like_secret, vpc_endpoint_id, MAX_TEXT_BYTES, REDACTED, TRUNCATED};
