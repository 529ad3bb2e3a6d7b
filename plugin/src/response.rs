//! The refusal an AWS SDK understands: 403 (413 for size), `x-amzn-ErrorType:
//! AccessDeniedException`, `x-amzn-RequestId`, JSON `{"message": "bedrock-guard: <reason>: ..."}`.
//!
//! Never a 5xx or 429 and never a retry hint (`retry-after`, `x-amz-retry-after`): botocore's
//! standard and legacy retry handlers retry 500/502/503/504, 429 and throttling or
//! `RequestTimeout` error codes, and a policy decision does not change on retry.

use policies::Decision;

use crate::host::Host;

/// Header carrying the stable reason code, for operators and tests.
pub const REASON_HEADER: &str = "x-bedrock-guard-reason";

/// Send the refusal for `decision`. `request_id` must already be a safe token.
pub fn refuse(host: &impl Host, decision: &Decision, request_id: &str) {
    let status = decision.status();
    let body = decision.error_body();
    let headers = [
        ("content-type", "application/json"),
        ("x-amzn-errortype", "AccessDeniedException"),
        ("x-amzn-requestid", request_id),
        (REASON_HEADER, decision.reason.as_str()),
    ];
    if let Err(err) = host.send_local_response(u32::from(status), &headers, body.as_bytes()) {
        // The stream is gone (client reset): nothing more can be sent, and nothing was forwarded.
        log::warn!("bedrock-guard: could not send refusal: {err:?}");
    }
}

/// A request id for the error: Envoy's own `x-request-id` when it is a plain token (it is a
/// UUID that Envoy generates), otherwise one derived from the context id.
pub fn request_id(from_envoy: Option<&[u8]>, context_id: u32) -> String {
    match from_envoy {
        Some(v)
            if !v.is_empty()
                && v.len() <= 64
                && v.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') =>
        {
            String::from_utf8_lossy(v).into_owned()
        }
        _ => format!("bedrock-guard-{context_id:08x}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::request_id;

    #[test]
    fn request_id_keeps_envoy_uuid() {
        let uuid = b"3f2a1c4e-9d8b-4a7f-8e6d-5c4b3a2f1e0d";
        assert_eq!(
            request_id(Some(uuid), 7),
            "3f2a1c4e-9d8b-4a7f-8e6d-5c4b3a2f1e0d"
        );
    }

    #[test]
    fn request_id_never_echoes_unsafe_bytes() {
        assert_eq!(
            request_id(Some(b"a\r\nx-evil: 1"), 7),
            "bedrock-guard-00000007"
        );
        assert_eq!(request_id(Some(b"\xC0\xA7"), 7), "bedrock-guard-00000007");
        assert_eq!(request_id(None, 255), "bedrock-guard-000000ff");
    }
}
