//! `AuditRecord::to_json_line` with every text field set from fuzz bytes.
//!
//! Input: structured (`arbitrary`): a Decision (reason, mode, operation, detail, rule id,
//! models) and every setter's argument, raw bytes for the request-derived ones. Oracle: no
//! panic; the line is printable ASCII, serde_json parses it, the keys are exactly the fixed
//! schema in order (nested objects too), text values are bounded and never look like a
//! credential unless replaced by the redaction marker.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use fuzz_support::{leading_object_keys, object_keys};
use libfuzzer_sys::fuzz_target;
use policies::audit::{
    looks_like_secret, AuditRecord, BundleInfo, CredentialType, MAX_MODEL_ID_BYTES, MAX_TEXT_BYTES,
    REDACTED, TRUNCATED,
};
use policies::eventstream::EventStreamReader;
use policies::{Decision, Mode, Operation, Reason};
use serde_json::Value;

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
const IDENTITY_KEYS: [&str; 4] = ["issuer", "subject", "groups", "tokenFingerprint"];
/// Values written through the bounded, redacting text path.
const TEXT_FIELDS: [&str; 11] = [
    "requestID",
    "awsRegion",
    "sourceIPAddress",
    "endpoint",
    "detail",
    "ruleId",
    "bundleName",
    "bundleRevision",
    "bundleDigest",
    "upstreamAddress",
    "upstreamRequestId",
];

/// `identity(issuer, subject, groups)`.
type IdentityArgs<'a> = (&'a [u8], &'a [u8], Vec<&'a [u8]>);

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    reason: u8,
    dry_run: bool,
    operation: Option<u8>,
    detail: String,
    rule_id: Option<String>,
    models: Vec<String>,
    event_time_ms: u64,
    request_id: Option<&'a [u8]>,
    region: Option<&'a [u8]>,
    source: Option<&'a [u8]>,
    identity: Option<IdentityArgs<'a>>,
    token: Option<&'a [u8]>,
    access_key_id: Option<&'a [u8]>,
    credential_type: Option<u8>,
    endpoint: Option<&'a [u8]>,
    bundle: Option<(&'a [u8], &'a [u8], &'a [u8])>,
    status: Option<u16>,
    upstream_status: Option<u16>,
    upstream_address: Option<&'a [u8]>,
    upstream_request_id: Option<&'a [u8]>,
    latency_ms: Option<u64>,
    tokens: Option<(u64, u64)>,
    stream: Option<&'a [u8]>,
    /// A second decision applied over the first (the shell's order).
    reapply: Option<(u8, String)>,
}

fn pick<T: Copy>(all: &[T], i: u8) -> T {
    all[usize::from(i) % all.len()]
}

fn decision(reason: Reason, detail: String, input: &Input) -> Decision {
    let mut d = match input.operation {
        Some(op) if reason == Reason::Allowed => {
            Decision::allow(input.rule_id.clone(), pick(&Operation::ALL, op), Vec::new())
        }
        _ => Decision::deny(reason, detail.clone()),
    };
    d.detail = detail;
    d.rule_id = input.rule_id.clone();
    d.mode = if input.dry_run {
        Mode::DryRun
    } else {
        Mode::Enforce
    };
    d.operation = input.operation.map(|op| pick(&Operation::ALL, op));
    d.models = input.models.clone();
    d
}

fuzz_target!(|input: Input| {
    let reason = pick(&Reason::ALL, input.reason);
    let d = decision(reason, input.detail.clone(), &input);
    let mut record = AuditRecord::from_decision(&d, input.event_time_ms);
    if let Some(v) = input.request_id {
        record.request_id(v);
    }
    if let Some(v) = input.region {
        record.region(v);
    }
    if let Some(v) = input.source {
        record.source_address(v);
    }
    if let Some((issuer, subject, groups)) = &input.identity {
        record.identity(issuer, subject, groups.iter());
    }
    if let Some(v) = input.token {
        record.token_fingerprint(&policies::identity::TokenHash::of(v));
    }
    if let Some(v) = input.access_key_id {
        record.access_key_id(v);
    }
    if let Some(v) = input.credential_type {
        let kinds = [
            CredentialType::SigV4,
            CredentialType::BedrockApiKeyShortTerm,
            CredentialType::BedrockApiKeyLongTerm,
            CredentialType::None,
        ];
        record.credential_type(pick(&kinds, v));
    }
    if let Some(v) = input.endpoint {
        record.endpoint(v);
    }
    if let Some((name, revision, digest)) = input.bundle {
        record.bundle(Arc::new(BundleInfo::new(name, revision, digest)));
    }
    if let Some(v) = input.status {
        record.status(v);
    }
    if let Some(v) = input.upstream_status {
        record.upstream_status(v);
    }
    if let Some(v) = input.upstream_address {
        record.upstream_address(v);
    }
    if let Some(v) = input.upstream_request_id {
        record.upstream_request_id(v);
    }
    if let Some(v) = input.latency_ms {
        record.latency_ms(v);
    }
    if let Some((i, o)) = input.tokens {
        record.tokens(i, o);
    }
    if let Some(body) = input.stream {
        let mut reader = EventStreamReader::new();
        reader.push(body);
        reader.finish();
        record.stream(&reader);
    }
    let mut final_allow = d.is_allow();
    if let Some((r, detail)) = &input.reapply {
        let second = decision(pick(&Reason::ALL, *r), detail.clone(), &input);
        final_allow = second.is_allow();
        record.apply_decision(&second);
    }

    let line = record.to_json_line();
    assert!(
        line.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "not printable ASCII: {line}"
    );
    let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(
        object_keys(&line).expect("keys"),
        KEYS,
        "schema changed: {line}"
    );
    let obj = value.as_object().expect("object");

    assert_eq!(obj["decision"], if final_allow { "allow" } else { "deny" });
    for field in TEXT_FIELDS {
        check_text(field, &obj[field], MAX_TEXT_BYTES);
    }
    match &obj["userIdentity"] {
        Value::Null => {}
        Value::Object(inner) => {
            let at = line
                .find("\"userIdentity\":{")
                .expect("userIdentity object")
                + 15;
            let keys = leading_object_keys(&line[at..]).expect("identity keys");
            assert_eq!(keys, IDENTITY_KEYS, "userIdentity keys: {line}");
            check_text("issuer", &inner["issuer"], MAX_TEXT_BYTES);
            check_text("subject", &inner["subject"], MAX_TEXT_BYTES);
            let groups = inner["groups"].as_array().expect("groups is an array");
            for g in groups {
                check_text("groups", g, MAX_TEXT_BYTES);
            }
            if let Some(fp) = inner["tokenFingerprint"].as_str() {
                assert!(fp.len() == 12 && fp.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
        other => panic!("userIdentity is {other}"),
    }
    match &obj["requestParameters"] {
        Value::Null => {}
        Value::Object(inner) => {
            let at = line.find("\"requestParameters\":{").expect("object") + 20;
            let keys = leading_object_keys(&line[at..]).expect("requestParameters keys");
            assert_eq!(keys, ["modelId"], "requestParameters: {line}");
            match &inner["modelId"] {
                Value::Array(models) => models
                    .iter()
                    .for_each(|m| check_text("modelId", m, MAX_MODEL_ID_BYTES)),
                single => check_text("modelId", single, MAX_MODEL_ID_BYTES),
            }
        }
        other => panic!("requestParameters is {other}"),
    }
    if let Some(akid) = obj["accessKeyId"].as_str() {
        assert!(akid
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    }
    if let Some(id) = obj["vpcEndpointId"].as_str() {
        assert!(id.starts_with("vpce-") && id[5..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
});

fn check_text(field: &str, value: &Value, max: usize) {
    let Some(text) = value.as_str() else {
        assert!(value.is_null(), "{field} is {value}");
        return;
    };
    assert!(
        text.len() <= max + TRUNCATED.len(),
        "{field} is {} bytes",
        text.len()
    );
    assert!(
        text == REDACTED || !looks_like_secret(text),
        "{field} looks like a secret: {text:?}"
    );
}
