//! The audit record: golden lines for allowed, denied, dry-run and streamed requests, the fixed
//! schema, and each validated field (time, access key id, VPC endpoint id, source and upstream
//! addresses, bounds).

use std::sync::Arc;

use policies::audit::{
    format_rfc3339_millis, vpc_endpoint_id, AuditRecord, BundleInfo, CredentialType, MAX_GROUPS,
    MAX_MODELS, MAX_TEXT_BYTES, REDACTED, TRUNCATED,
};
use policies::eventstream::EventStreamReader;
use policies::{Decision, Mode, Operation, Reason};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// 2024-02-29T12:00:00.123Z
const T: u64 = 1_709_208_000_123;
const VPCE_HOST: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com";
const TOKEN: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0cmFpbmVyIn0.c2ln";

/// Every key of a line, in order.
const KEYS: [&str; 32] = [
    "eventVersion",
    "eventTime",
    "eventSource",
    "requestID",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userIdentity",
    "accessKeyId",
    "credentialType",
    "requestParameters",
    "endpoint",
    "vpcEndpointId",
    "decision",
    "reason",
    "detail",
    "ruleId",
    "mode",
    "bundleName",
    "bundleRevision",
    "bundleDigest",
    "bundleKeyId",
    "status",
    "upstreamStatus",
    "upstreamAddress",
    "upstreamRequestId",
    "latencyMs",
    "inputTokens",
    "outputTokens",
    "streamErrors",
    "streamExceptions",
    "streamExceptionType",
];

fn top_level_keys() -> Vec<&'static str> {
    KEYS.to_vec()
}

fn parse(record: &AuditRecord) -> Value {
    let line = record.to_json_line();
    assert!(!line.contains('\n'));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn fingerprint(token: &[u8]) -> String {
    Sha256::digest(token)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bundle() -> Arc<BundleInfo> {
    Arc::new(BundleInfo::new(
        "acme-prod",
        "42",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ))
}

/// The request context every golden record shares.
/// Bedrock's own request id for the call (`x-amzn-RequestId`, CloudTrail's `requestID`).
const UPSTREAM_RID: &str = "6f1c2d3e-4b5a-4968-8776-5a4b3c2d1e0f";

fn with_context(record: &mut AuditRecord) -> &mut AuditRecord {
    record
        .request_id("1b6f3c9e-5d2a-4c8e-9f10-7a3b2c1d0e4f")
        .region("us-east-1")
        .source_address("10.20.3.4:51514")
        .identity(
            "https://idp.acme.example",
            "spiffe://cluster.local/ns/ml/sa/trainer",
            ["ml-platform", "eng"],
        )
        .token_fingerprint(&policies::identity::TokenHash::of(TOKEN))
        .access_key_id("AKIAIOSFODNN7EXAMPLE")
        .credential_type(CredentialType::SigV4)
        .endpoint(VPCE_HOST)
        .bundle(bundle())
}

fn identity() -> Value {
    json!({
        "issuer": "https://idp.acme.example",
        "subject": "spiffe://cluster.local/ns/ml/sa/trainer",
        "groups": ["ml-platform", "eng"],
        "tokenFingerprint": fingerprint(TOKEN),
    })
}

// ---- golden lines ---------------------------------------------------------------------------

#[test]
fn golden_allowed_request() {
    let decision = Decision::allow(
        Some("ml-platform-claude".to_string()),
        Operation::Converse,
        vec!["anthropic.claude-sonnet-4-6".to_string()],
    );
    let mut record = AuditRecord::from_decision(&decision, T);
    with_context(&mut record)
        .status(200)
        .upstream_status(200)
        .upstream_address("10.20.1.17:443")
        .upstream_request_id(UPSTREAM_RID)
        .latency_ms(812)
        .tokens(25, 40);
    assert_eq!(
        parse(&record),
        json!({
            "eventVersion": "1.0",
            "eventTime": "2024-02-29T12:00:00.123Z",
            "eventSource": "bedrock-guard",
            "requestID": "1b6f3c9e-5d2a-4c8e-9f10-7a3b2c1d0e4f",
            "eventName": "Converse",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "10.20.3.4",
            "userIdentity": identity(),
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "credentialType": "sigv4",
            "requestParameters": {"modelId": "anthropic.claude-sonnet-4-6"},
            "endpoint": VPCE_HOST,
            "vpcEndpointId": "vpce-0a1b2c3d4e5f67890",
            "decision": "allow",
            "reason": "allowed",
            "detail": null,
            "ruleId": "ml-platform-claude",
            "mode": "enforce",
            "bundleName": "acme-prod",
            "bundleRevision": "42",
            "bundleDigest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "bundleKeyId": null,
            "bundleKeyId": null,
            "status": 200,
            "upstreamStatus": 200,
            "upstreamAddress": "10.20.1.17:443",
            "upstreamRequestId": UPSTREAM_RID,
            "latencyMs": 812,
            "inputTokens": 25,
            "outputTokens": 40,
            "streamErrors": null,
            "streamExceptions": null,
            "streamExceptionType": null,
        })
    );
}

#[test]
fn golden_denied_request() {
    let mut decision = Decision::deny(Reason::ModelNotAllowed, "no rule allows this model")
        .with_operation(Operation::InvokeModel);
    decision.models = vec![
        "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-70b-instruct-v1:0".to_string(),
    ];
    let mut record = AuditRecord::from_decision(&decision, 1_800_000_000_000);
    with_context(&mut record).latency_ms(1);
    assert_eq!(
        parse(&record),
        json!({
            "eventVersion": "1.0",
            "eventTime": "2027-01-15T08:00:00.000Z",
            "eventSource": "bedrock-guard",
            "requestID": "1b6f3c9e-5d2a-4c8e-9f10-7a3b2c1d0e4f",
            "eventName": "InvokeModel",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "10.20.3.4",
            "userIdentity": identity(),
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "credentialType": "sigv4",
            "requestParameters": {"modelId": "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-70b-instruct-v1:0"},
            "endpoint": VPCE_HOST,
            "vpcEndpointId": "vpce-0a1b2c3d4e5f67890",
            "decision": "deny",
            "reason": "model_not_allowed",
            "detail": "no rule allows this model",
            "ruleId": null,
            "mode": "enforce",
            "bundleName": "acme-prod",
            "bundleRevision": "42",
            "bundleDigest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "bundleKeyId": null,
            "bundleKeyId": null,
            "status": 403,
            "upstreamStatus": null,
            "upstreamAddress": null,
            "upstreamRequestId": null,
            "latencyMs": 1,
            "inputTokens": null,
            "outputTokens": null,
            "streamErrors": null,
            "streamExceptions": null,
            "streamExceptionType": null,
        })
    );
}

#[test]
fn golden_denied_before_identity_and_routing() {
    // An invalid token: no principal, only the token's fingerprint; nothing else known.
    let decision = Decision::deny(Reason::IdentityInvalid, "expired");
    let mut record = AuditRecord::from_decision(&decision, 0);
    record
        .request_id("req-1")
        .token_fingerprint(&policies::identity::TokenHash::of(TOKEN))
        .credential_type(CredentialType::None)
        .endpoint("bedrock-runtime.us-east-1.amazonaws.com:443");
    let got = parse(&record);
    assert_eq!(got["eventTime"], "1970-01-01T00:00:00.000Z");
    assert_eq!(got["eventName"], Value::Null);
    assert_eq!(
        got["userIdentity"],
        json!({"issuer": null, "subject": null, "groups": [], "tokenFingerprint": fingerprint(TOKEN)})
    );
    assert_eq!(got["requestParameters"], Value::Null);
    assert_eq!(
        got["endpoint"],
        "bedrock-runtime.us-east-1.amazonaws.com:443"
    );
    assert_eq!(got["vpcEndpointId"], Value::Null);
    assert_eq!(got["credentialType"], "none");
    assert_eq!(got["decision"], "deny");
    assert_eq!(got["reason"], "identity_invalid");
    assert_eq!(got["detail"], "expired");
    assert_eq!(got["status"], 403);
    assert_eq!(got["bundleDigest"], Value::Null);
}

#[test]
fn golden_dry_run_denial() {
    let decision = Decision::deny(Reason::ModelDenied, "denied by rule")
        .with_operation(Operation::InvokeModelWithResponseStream)
        .with_rule(Some("no-global-profiles".to_string()), Mode::DryRun);
    let mut decision = decision;
    decision.models = vec!["global.anthropic.claude-sonnet-4-6".to_string()];
    let mut record = AuditRecord::from_decision(&decision, T);
    assert_eq!(
        parse(&record)["status"],
        Value::Null,
        "goes upstream: status comes later"
    );
    with_context(&mut record)
        .status(200)
        .upstream_status(200)
        .latency_ms(95);
    let got = parse(&record);
    let expected = json!({
        "eventVersion": "1.0",
        "eventTime": "2024-02-29T12:00:00.123Z",
        "eventSource": "bedrock-guard",
        "requestID": "1b6f3c9e-5d2a-4c8e-9f10-7a3b2c1d0e4f",
        "eventName": "InvokeModelWithResponseStream",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.20.3.4",
        "userIdentity": identity(),
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "credentialType": "sigv4",
        "requestParameters": {"modelId": "global.anthropic.claude-sonnet-4-6"},
        "endpoint": VPCE_HOST,
        "vpcEndpointId": "vpce-0a1b2c3d4e5f67890",
        "decision": "deny",
        "reason": "model_denied",
        "detail": "denied by rule",
        "ruleId": "no-global-profiles",
        "mode": "dry-run",
        "bundleName": "acme-prod",
        "bundleRevision": "42",
        "bundleDigest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "bundleKeyId": null,
        "status": 200,
        "upstreamStatus": 200,
        "upstreamAddress": null,
        "upstreamRequestId": null,
        "latencyMs": 95,
        "inputTokens": null,
        "outputTokens": null,
        "streamErrors": null,
        "streamExceptions": null,
        "streamExceptionType": null,
    });
    assert_eq!(got, expected);
}

#[test]
fn golden_streamed_request() {
    let decision = Decision::allow(
        Some("ml-platform-claude".to_string()),
        Operation::ConverseStream,
        vec!["us.anthropic.claude-sonnet-4-6".to_string()],
    );
    let mut reader = EventStreamReader::new();
    let body = [
        crate::eventstream_support::converse_stream(1200, 345),
        crate::eventstream_support::exception("throttlingException", "slow down"),
    ]
    .concat();
    for piece in body.chunks(7) {
        reader.push(piece);
    }
    reader.finish();
    let mut record = AuditRecord::from_decision(&decision, T);
    with_context(&mut record)
        .credential_type(CredentialType::BedrockApiKeyShortTerm)
        .endpoint("bedrock-runtime.us-east-1.amazonaws.com")
        .status(200)
        .upstream_status(200)
        .latency_ms(4021)
        .stream(&reader);
    let expected = json!({
        "eventVersion": "1.0",
        "eventTime": "2024-02-29T12:00:00.123Z",
        "eventSource": "bedrock-guard",
        "requestID": "1b6f3c9e-5d2a-4c8e-9f10-7a3b2c1d0e4f",
        "eventName": "ConverseStream",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.20.3.4",
        "userIdentity": identity(),
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "credentialType": "api-key-short-term",
        "requestParameters": {"modelId": "us.anthropic.claude-sonnet-4-6"},
        "endpoint": "bedrock-runtime.us-east-1.amazonaws.com",
        "vpcEndpointId": null,
        "decision": "allow",
        "reason": "allowed",
        "detail": null,
        "ruleId": "ml-platform-claude",
        "mode": "enforce",
        "bundleName": "acme-prod",
        "bundleRevision": "42",
        "bundleDigest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "bundleKeyId": null,
        "status": 200,
        "upstreamStatus": 200,
        "upstreamAddress": null,
        "upstreamRequestId": null,
        "latencyMs": 4021,
        "inputTokens": 1200,
        "outputTokens": 345,
        "streamErrors": 0,
        "streamExceptions": 1,
        "streamExceptionType": "throttlingException",
    });
    assert_eq!(parse(&record), expected);
}

#[test]
fn golden_response_withheld_from_outside_the_privatelink_ranges() {
    // Allowed and forwarded; the answer came from an address outside the endpoint's cidrs, so
    // the filter replaced it: the record keeps what the upstream really said and where it came
    // from, and what the client got.
    let allowed = Decision::allow(
        Some("ml-platform-claude".to_string()),
        Operation::Converse,
        vec!["anthropic.claude-sonnet-4-6".to_string()],
    );
    let mut record = AuditRecord::from_decision(&allowed, T);
    with_context(&mut record);
    let withheld = Decision::deny(
        Reason::DestinationNotPrivatelink,
        "the response came from an address outside the endpoint's PrivateLink ranges",
    );
    record
        .upstream_status(200)
        .upstream_address("203.0.113.9:443")
        .apply_decision(&withheld)
        .latency_ms(31);
    let got = parse(&record);
    assert_eq!(got["eventName"], "Converse");
    assert_eq!(
        got["requestParameters"],
        json!({"modelId": "anthropic.claude-sonnet-4-6"})
    );
    assert_eq!(got["decision"], "deny");
    assert_eq!(got["reason"], "destination_not_privatelink");
    assert_eq!(got["ruleId"], Value::Null);
    assert_eq!(got["mode"], "enforce");
    assert_eq!(got["status"], 403);
    assert_eq!(got["upstreamStatus"], 200);
    assert_eq!(got["upstreamAddress"], "203.0.113.9:443");
}

#[test]
fn streamed_request_with_a_broken_stream_counts_the_error_and_keeps_header_tokens() {
    let decision = Decision::allow(None, Operation::InvokeModelWithResponseStream, vec![]);
    let mut body = crate::eventstream_support::invoke_stream(3, 4);
    let last = body.len() - 1;
    body[last] ^= 1;
    let mut reader = EventStreamReader::new();
    reader.push(&body);
    reader.finish();
    let mut record = AuditRecord::from_decision(&decision, T);
    record.tokens(9, 9).stream(&reader);
    let got = parse(&record);
    assert_eq!(
        (got["inputTokens"].clone(), got["outputTokens"].clone()),
        (json!(9), json!(9))
    );
    assert_eq!(got["streamErrors"], 1);
    assert_eq!(got["streamExceptions"], 0);
}

// ---- schema ---------------------------------------------------------------------------------

#[test]
fn every_line_has_the_same_keys_in_the_same_order() {
    let minimal = AuditRecord::from_decision(&Decision::deny(Reason::PolicyUnavailable, ""), 0);
    let mut full = AuditRecord::from_decision(
        &Decision::allow(Some("r".into()), Operation::Converse, vec!["a.b".into()]),
        T,
    );
    with_context(&mut full)
        .tokens(1, 2)
        .stream(&EventStreamReader::new());
    for record in [minimal, full] {
        let line = record.to_json_line();
        let parsed = parse(&record);
        let object = parsed.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = top_level_keys();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        // Order: each key appears after the previous one in the line.
        let mut from = 0;
        for key in top_level_keys() {
            let needle = format!("\"{key}\":");
            let at = line[from..]
                .find(&needle)
                .unwrap_or_else(|| panic!("{key} out of order"));
            from += at + needle.len();
        }
    }
}

#[test]
fn user_identity_and_request_parameters_have_fixed_keys() {
    let mut record = AuditRecord::from_decision(
        &Decision::allow(None, Operation::Converse, vec!["a.b".into(), "c.d".into()]),
        T,
    );
    record.identity("i", "s", Vec::<String>::new());
    let got = parse(&record);
    assert_eq!(
        got["userIdentity"],
        json!({"issuer": "i", "subject": "s", "groups": [], "tokenFingerprint": null})
    );
    assert_eq!(got["requestParameters"], json!({"modelId": ["a.b", "c.d"]}));
}

#[test]
fn credential_types_have_stable_names() {
    let names: Vec<&str> = [
        CredentialType::SigV4,
        CredentialType::BedrockApiKeyShortTerm,
        CredentialType::BedrockApiKeyLongTerm,
        CredentialType::None,
    ]
    .iter()
    .map(|c| c.as_str())
    .collect();
    assert_eq!(
        names,
        ["sigv4", "api-key-short-term", "api-key-long-term", "none"]
    );
}

#[test]
fn every_reason_and_operation_is_written_by_its_stable_name() {
    for reason in Reason::ALL {
        let record = AuditRecord::from_decision(&Decision::deny(reason, ""), T);
        let got = parse(&record);
        assert_eq!(got["reason"], reason.as_str());
        assert_eq!(
            got["decision"],
            if reason == Reason::Allowed {
                "allow"
            } else {
                "deny"
            }
        );
        if reason == Reason::Allowed {
            assert_eq!(
                got["status"],
                Value::Null,
                "allowed: status comes from the response"
            );
        } else {
            assert_eq!(got["status"], reason.status());
        }
    }
    for op in Operation::ALL {
        let record = AuditRecord::from_decision(&Decision::allow(None, op, vec![]), T);
        assert_eq!(parse(&record)["eventName"], op.as_str());
    }
}

// ---- eventTime ------------------------------------------------------------------------------

#[test]
fn event_time_is_rfc3339_utc_with_milliseconds() {
    for (ms, expected) in [
        (0, "1970-01-01T00:00:00.000Z"),
        (86_399_999, "1970-01-01T23:59:59.999Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (T, "2024-02-29T12:00:00.123Z"),
        (1_800_000_000_000, "2027-01-15T08:00:00.000Z"),
        (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ] {
        assert_eq!(format_rfc3339_millis(ms), expected, "{ms}");
    }
}

#[test]
fn event_time_after_year_9999_is_clamped() {
    assert_eq!(
        format_rfc3339_millis(253_402_300_800_000),
        "9999-12-31T23:59:59.999Z"
    );
    assert_eq!(format_rfc3339_millis(u64::MAX), "9999-12-31T23:59:59.999Z");
}

/// Day-by-day oracle: walk years, then months.
fn naive_date(ms: u64) -> String {
    // Divisible by 4 and not by 100, or by 400.
    let leap = |y: u64| matches!((y % 4, y % 100, y % 400), (0, 1.., _) | (_, _, 0));
    let mut days = ms / 86_400_000;
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let months = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    let rem = ms % 86_400_000;
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        month + 1,
        days + 1,
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

proptest! {
    #[test]
    fn event_time_agrees_with_a_day_by_day_count(ms in 0u64..=253_402_300_799_999) {
        prop_assert_eq!(format_rfc3339_millis(ms), naive_date(ms));
    }
}

// ---- validated fields -----------------------------------------------------------------------

fn akid(value: &[u8]) -> Value {
    let mut record = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
    record.access_key_id(value);
    parse(&record)["accessKeyId"].clone()
}

#[test]
fn access_key_id_is_kept_only_when_well_formed() {
    assert_eq!(akid(b"AKIAIOSFODNN7EXAMPLE"), "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(akid(b"ASIA0123456789ABCDEF"), "ASIA0123456789ABCDEF");
    assert_eq!(akid(&[b'A'; 16]), "A".repeat(16));
    assert_eq!(akid(&[b'A'; 128]), "A".repeat(128));
    for bad in [
        &b"AKIAIOSFODNN7EXAMPL"[..15],
        &[b'A'; 129][..],
        b"akiaiosfodnn7example",
        b"AKIAIOSFODNN7EXAMPLE/20240229/us-east-1/bedrock/aws4_request",
        b"AKIAIOSFODNN7EXAMPLE\n",
        b"BedrockAPIKey-abcd-at-123456789012",
        b"",
    ] {
        assert_eq!(akid(bad), Value::Null, "{bad:?}");
    }
}

#[test]
fn vpc_endpoint_id_is_parsed_from_endpoint_specific_names() {
    for (host, expected) in [
        (VPCE_HOST, Some("vpce-0a1b2c3d4e5f67890")),
        (
            "vpce-0a1b2c3d4e5f67890-abcd1234-us-east-1a.bedrock-runtime.us-east-1.vpce.amazonaws.com",
            Some("vpce-0a1b2c3d4e5f67890"),
        ),
        ("vpce-1a2b3c4d-5e6f.bedrock-runtime.us-east-1.vpce.amazonaws.com", Some("vpce-1a2b3c4d")),
        (
            "VPCE-0A1B2C3D4E5F67890-ABCD1234.Bedrock-Runtime.US-EAST-1.VPCE.AMAZONAWS.COM.",
            Some("vpce-0a1b2c3d4e5f67890"),
        ),
        (
            "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com:443",
            Some("vpce-0a1b2c3d4e5f67890"),
        ),
        (
            "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.cn-north-1.vpce.amazonaws.com.cn",
            Some("vpce-0a1b2c3d4e5f67890"),
        ),
        ("bedrock-runtime.us-east-1.amazonaws.com", None),
        ("vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com.evil.example", None),
        ("vpce-0a1b2c3d4e5f67890-abcd1234.vpce.amazonaws.com", None),
        ("vpce-0a1b2c3d4e5f67890.bedrock-runtime.us-east-1.vpce.amazonaws.com", None),
        ("vpce-0a1b2c3d4e5f67890-.bedrock-runtime.us-east-1.vpce.amazonaws.com", None),
        ("vpce-xyz-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", None),
        ("vpce-0a1b2c3-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", None),
        ("vpce-0a1b2c3d4e5f678901-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", None),
        ("evil-vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", None),
        ("vpce-0a1b2c3d4e5f67890-abcd1234.bedrock runtime.us-east-1.vpce.amazonaws.com", None),
        ("vpce-0a1b2c3d4e5f67890-abcd1234..us-east-1.vpce.amazonaws.com", None),
        ("", None),
    ] {
        assert_eq!(vpc_endpoint_id(host.as_bytes()).as_deref(), expected, "{host}");
    }
}

fn source(address: &[u8]) -> Value {
    let mut record = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
    record.source_address(address);
    parse(&record)["sourceIPAddress"].clone()
}

#[test]
fn source_address_is_reduced_to_the_ip() {
    assert_eq!(source(b"10.20.3.4:51514"), "10.20.3.4");
    assert_eq!(source(b"10.20.3.4"), "10.20.3.4");
    assert_eq!(source(b"[2001:db8::1]:443"), "2001:db8::1");
    assert_eq!(source(b"2001:db8::1"), "2001:db8::1");
    assert_eq!(source(b"envoy://internal\n"), "envoy://internal\n");
    assert_eq!(source(b""), Value::Null);
}

fn upstream(address: &[u8]) -> Value {
    let mut record = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
    record.upstream_address(address);
    parse(&record)["upstreamAddress"].clone()
}

#[test]
fn upstream_address_is_reprinted_from_the_parsed_address() {
    assert_eq!(upstream(b"10.20.1.17:443"), "10.20.1.17:443");
    assert_eq!(upstream(b"10.20.1.17"), "10.20.1.17");
    assert_eq!(upstream(b"[2001:db8:0::1]:443"), "[2001:db8::1]:443");
    assert_eq!(upstream(b"2001:db8::1"), "2001:db8::1");
    // Anything else is bounded, escaped text (the line stays one printable-ASCII object).
    assert_eq!(upstream(b"/var/run/x.sock\n\"}"), "/var/run/x.sock\n\"}");
    let record = {
        let mut r = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
        r.upstream_address([b"\xff\"\n".as_slice(), "\u{2028}".as_bytes()].concat());
        r.to_json_line()
    };
    assert!(
        record.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "{record}"
    );
    assert_eq!(upstream(b"x-amz-security-token=abc"), REDACTED);
    assert_eq!(upstream(b""), Value::Null);
}

#[test]
fn upstream_request_id_is_bounded_escaped_text() {
    let rid = |id: &[u8]| {
        let mut r = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
        r.upstream_request_id(id);
        (parse(&r)["upstreamRequestId"].clone(), r.to_json_line())
    };
    assert_eq!(rid(UPSTREAM_RID.as_bytes()).0, UPSTREAM_RID);
    assert_eq!(rid(b"").0, Value::Null);
    let (got, line) = rid(b"id\"}\n\xff");
    assert_eq!(got, "id\"}\n\u{fffd}");
    assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)), "{line}");
    let (long, _) = rid("r".repeat(MAX_TEXT_BYTES + 10).as_bytes());
    assert_eq!(long, "r".repeat(MAX_TEXT_BYTES) + TRUNCATED);
    assert_eq!(rid(b"x-amz-security-token=abc").0, REDACTED);
}

#[test]
fn long_values_are_cut_at_a_character_boundary_and_marked() {
    let long = "a".repeat(MAX_TEXT_BYTES - 1) + "\u{e9}\u{e9}";
    let mut record = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
    record.request_id(&long);
    let got = parse(&record)["requestID"].as_str().unwrap().to_string();
    assert_eq!(got, "a".repeat(MAX_TEXT_BYTES - 1) + TRUNCATED);
    let exact = "b".repeat(MAX_TEXT_BYTES);
    record.request_id(&exact);
    assert_eq!(parse(&record)["requestID"], exact.as_str());
}

#[test]
fn invalid_utf8_is_replaced() {
    let mut record = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
    record.request_id(b"ab\xffcd\xe2\x82");
    assert_eq!(parse(&record)["requestID"], "ab\u{fffd}cd\u{fffd}");
}

#[test]
fn group_and_model_lists_are_capped_and_marked() {
    let groups: Vec<String> = (0..MAX_GROUPS + 5).map(|i| format!("g{i}")).collect();
    let models: Vec<String> = (0..MAX_MODELS + 1).map(|i| format!("p.m{i}")).collect();
    let mut record = AuditRecord::from_decision(
        &Decision::allow(None, Operation::InvokeInlineAgent, models.clone()),
        T,
    );
    record.identity("i", "s", &groups);
    let got = parse(&record);
    let mut expected_groups: Vec<&str> = groups[..MAX_GROUPS].iter().map(String::as_str).collect();
    expected_groups.push(TRUNCATED);
    assert_eq!(got["userIdentity"]["groups"], json!(expected_groups));
    let mut expected_models: Vec<&str> = models[..MAX_MODELS].iter().map(String::as_str).collect();
    expected_models.push(TRUNCATED);
    assert_eq!(got["requestParameters"]["modelId"], json!(expected_models));
}

#[test]
fn long_model_arns_are_kept_whole() {
    let arn = format!(
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/{}",
        "a".repeat(1500)
    );
    let record = AuditRecord::from_decision(
        &Decision::allow(None, Operation::Converse, vec![arn.clone()]),
        T,
    );
    assert_eq!(parse(&record)["requestParameters"]["modelId"], arn.as_str());
}

#[test]
fn bundle_info_is_shared_not_copied() {
    let shared = bundle();
    let mut a = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
    let mut b = a.clone();
    a.bundle(Arc::clone(&shared));
    b.bundle(Arc::clone(&shared));
    assert_eq!(Arc::strong_count(&shared), 3);
    assert_eq!(parse(&a)["bundleRevision"], "42");
    assert_eq!(parse(&b)["bundleName"], "acme-prod");
}

/// A request that ended before it could be decided (its body never completed) is recorded with
/// the verdict it is counted under, and the status the client really got: none when Envoy sent
/// no answer, Envoy's own when it sent one (a 408 request timeout), never an invented refusal.
#[test]
fn an_undecided_request_keeps_the_status_the_client_got() {
    let gone = Decision::deny(Reason::BodyUnparseable, "the body never completed")
        .with_operation(Operation::ChatCompletions);
    let held = Decision::allow(None, Operation::ChatCompletions, vec![]);
    let mut record = AuditRecord::from_decision(&held, T);
    record.undecided(&gone);
    let got = parse(&record);
    assert_eq!(got["decision"], "deny");
    assert_eq!(got["reason"], "body_unparseable");
    assert_eq!(got["detail"], "the body never completed");
    assert_eq!(got["eventName"], "ChatCompletions");
    assert_eq!(got["status"], Value::Null);
    assert_eq!(got["upstreamStatus"], Value::Null);

    let mut record = AuditRecord::from_decision(&held, T);
    record.status(408).undecided(&gone);
    assert_eq!(parse(&record)["status"], 408);
}
