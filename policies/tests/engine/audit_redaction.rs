//! Redaction and injection: the record is built from named fields only, so a request full of
//! secrets yields a line with none of them; a secret pasted into an identifier field is
//! replaced whole; and no value, however crafted, can add, remove or change another field.

use policies::audit::{
    looks_like_secret, AuditRecord, BundleInfo, CredentialType, REDACTED, TRUNCATED,
};
use policies::{Decision, Mode, Operation, Reason};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::Arc;

const T: u64 = 1_709_208_000_123;

// Canary secrets (all fake).
const SIGNATURE: &str = "deadbeefcafef00d0123456789abcdef0123456789abcdef0123456789abcdef";
const SESSION_TOKEN: &str =
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDcanarySessionTokenValue0123456789";
const SHORT_TERM_KEY: &str = "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249Q2FsbFdpdGhCZWFyZXJUb2tlbiZYLUFtei1DcmVkZW50aWFsPUFTSUFDQU5BUlk";
const LONG_TERM_KEY: &str =
    "ABSKQmVkcm9ja0FQSUtleS1jYW5yLWF0LTEyMzQ1Njc4OTAxMjpjYW5hcnlzZWNyZXRjYW5hcnlzZWNyZXQ=";
/// Header `{"alg":"ES256","kid":"ec-a-1"}`, claims
/// `{"iss":"https://idp.acme.example","sub":"trainer","groups":["ml-platform"]}`, fake signature.
const JWT: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjLWEtMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5hY21lLmV4YW1wbGUiLCJzdWIiOiJ0cmFpbmVyIiwiZ3JvdXBzIjpbIm1sLXBsYXRmb3JtIl19.Y2FuYXJ5c2lnbmF0dXJlY2FuYXJ5c2lnbmF0dXJl";
const PRESIGNED_QUERY: &str = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIACANARY0123456789%2F20240229%2Fus-east-1%2Fbedrock%2Faws4_request&X-Amz-Security-Token=canarytoken&X-Amz-Signature=feedface0123";
const PROMPT: &str = "Summarise the canary-project-falcon merger memo";
const AKID: &str = "ASIAIOSFODNN7EXAMPLE";

/// What a proxy sees of one request: every header, the raw path, the body.
struct Request {
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn request_full_of_secrets() -> Request {
    Request {
        path: format!("/model/anthropic.claude-sonnet-4-6/converse{PRESIGNED_QUERY}"),
        headers: vec![
            (":authority", "bedrock-runtime.us-east-1.amazonaws.com".to_string()),
            (
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={AKID}/20240229/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature={SIGNATURE}"
                ),
            ),
            ("x-amz-security-token", SESSION_TOKEN.to_string()),
            ("x-amz-date", "20240229T120000Z".to_string()),
            ("x-api-key", LONG_TERM_KEY.to_string()),
            ("x-bearer", format!("Bearer {SHORT_TERM_KEY}")),
            ("x-workload-identity", JWT.to_string()),
            ("x-amzn-bedrock-request-metadata", format!("{{\"note\":\"{PROMPT}\"}}")),
            ("cookie", format!("session={SESSION_TOKEN}")),
            ("x-request-id", "5c1f8a2e-0d1b-4e7a-9c3d-2b6f4a8e1c0d".to_string()),
            ("user-agent", format!("Boto3/1.44 {SIGNATURE}")),
        ],
        body: format!("{{\"messages\":[{{\"role\":\"user\",\"content\":[{{\"text\":\"{PROMPT}\"}}]}}]}}"),
    }
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap()
}

/// What the plugin does: pick the named, validated facts and nothing else.
fn record_for(request: &Request, decision: &Decision) -> String {
    // The access key id from the Credential scope (the credentials module's job).
    let authorization = header(request, "authorization");
    let akid = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let mut record = AuditRecord::from_decision(decision, T);
    record
        .request_id(header(request, "x-request-id"))
        .region("us-east-1")
        .source_address("10.20.3.4:40000")
        .identity("https://idp.acme.example", "trainer", ["ml-platform"])
        .token_fingerprint(&policies::identity::TokenHash::of(
            header(request, "x-workload-identity").as_bytes(),
        ))
        .access_key_id(akid)
        .credential_type(CredentialType::SigV4)
        .endpoint(header(request, ":authority"))
        .bundle(Arc::new(BundleInfo::new("acme-prod", "42", "sha256:00ff")))
        .status(decision.status())
        .latency_ms(3);
    record.to_json_line()
}

fn assert_no_canary(line: &str) {
    let request = request_full_of_secrets();
    let mut canaries = vec![
        SIGNATURE,
        &SIGNATURE[..16],
        SESSION_TOKEN,
        &SESSION_TOKEN[..20],
        SHORT_TERM_KEY,
        "bedrock-api-key-YmVk",
        LONG_TERM_KEY,
        "ABSKQmVk",
        JWT,
        "eyJhbGci",
        "eyJpc3Mi",
        PRESIGNED_QUERY,
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Credential",
        "Signature=",
        "Credential=",
        "Bearer",
        "canarytoken",
        "feedface",
        PROMPT,
        "falcon",
        "?",
        "/converse",
        "cookie",
        "Boto3",
    ];
    canaries.push(&request.body);
    canaries.push(&request.path);
    for canary in canaries {
        assert!(!line.contains(canary), "{canary:?} leaked into {line}");
    }
}

#[test]
fn request_full_of_secrets_yields_a_line_with_none_of_them() {
    let request = request_full_of_secrets();
    let allow = Decision::allow(
        Some("ml-platform-claude".to_string()),
        Operation::Converse,
        vec!["anthropic.claude-sonnet-4-6".to_string()],
    );
    let deny = Decision::deny(Reason::QueryNotAllowed, "query parameters are not allowed")
        .with_operation(Operation::Converse);
    let dry_run = deny.clone().with_rule(None, Mode::DryRun);
    for decision in [allow, deny, dry_run] {
        let line = record_for(&request, &decision);
        assert_no_canary(&line);
        let parsed: Value = serde_json::from_str(&line).unwrap();
        // The identifiers are there, the secrets are not.
        assert_eq!(parsed["accessKeyId"], AKID);
        assert_eq!(parsed["requestID"], "5c1f8a2e-0d1b-4e7a-9c3d-2b6f4a8e1c0d");
        assert_eq!(parsed["userIdentity"]["subject"], "trainer");
        assert_eq!(
            parsed["userIdentity"]["tokenFingerprint"]
                .as_str()
                .unwrap()
                .len(),
            12
        );
        assert_eq!(parsed["reason"], decision.reason.as_str());
    }
}

/// Every free-text setter, by name.
type Setter = fn(&mut AuditRecord, &str);

const SETTERS: [(&str, Setter); 7] = [
    ("requestID", |r, v| {
        r.request_id(v);
    }),
    ("awsRegion", |r, v| {
        r.region(v);
    }),
    ("sourceIPAddress", |r, v| {
        r.source_address(v);
    }),
    ("endpoint", |r, v| {
        r.endpoint(v);
    }),
    ("issuer", |r, v| {
        r.identity(v, "s", ["g"]);
    }),
    ("subject", |r, v| {
        r.identity("i", v, ["g"]);
    }),
    ("group", |r, v| {
        r.identity("i", "s", [v]);
    }),
];

fn field<'a>(parsed: &'a Value, name: &str) -> &'a Value {
    match name {
        "issuer" | "subject" => &parsed["userIdentity"][name],
        "group" => &parsed["userIdentity"]["groups"][0],
        "modelId" => &parsed["requestParameters"]["modelId"],
        _ => &parsed[name],
    }
}

fn secrets() -> Vec<String> {
    vec![
        format!("Signature={SIGNATURE}"),
        format!("X-Amz-Security-Token={SESSION_TOKEN}"),
        SHORT_TERM_KEY.to_string(),
        LONG_TERM_KEY.to_string(),
        JWT.to_string(),
        format!("bedrock-runtime.us-east-1.amazonaws.com{PRESIGNED_QUERY}"),
        format!("Bearer {SHORT_TERM_KEY}"),
        format!("AWS4-HMAC-SHA256 Credential={AKID}/20240229"),
        format!("x-amz-signature={SIGNATURE}"),
    ]
}

#[test]
fn secret_pasted_into_a_request_field_is_replaced_whole() {
    for secret in secrets() {
        for (name, set) in SETTERS {
            let mut record =
                AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
            set(&mut record, &secret);
            let line = record.to_json_line();
            let parsed: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(field(&parsed, name), REDACTED, "{name} <- {secret}");
            assert_no_canary(&line);
        }
    }
}

#[test]
fn secret_in_a_decision_or_bundle_field_is_replaced_whole() {
    for secret in secrets() {
        let mut decision = Decision::deny(Reason::ModelNotAllowed, secret.clone())
            .with_rule(Some(secret.clone()), Mode::Enforce);
        // A client can put a JWT-shaped string in the model id path segment.
        decision.models = vec![secret.clone()];
        let mut record = AuditRecord::from_decision(&decision, T);
        record.bundle(Arc::new(
            BundleInfo::new(&secret, &secret, &secret).signed_by(Some(secret.as_str())),
        ));
        let line = record.to_json_line();
        let parsed: Value = serde_json::from_str(&line).unwrap();
        for name in [
            "detail",
            "ruleId",
            "modelId",
            "bundleName",
            "bundleRevision",
            "bundleDigest",
            "bundleKeyId",
        ] {
            assert_eq!(field(&parsed, name), REDACTED, "{name} <- {secret}");
        }
        assert_no_canary(&line);
    }
}

#[test]
fn identifiers_are_not_mistaken_for_secrets() {
    for value in [
        "anthropic.claude-sonnet-4-6",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6",
        "spiffe://cluster.local/ns/ml/sa/trainer",
        "https://idp.acme.example",
        "ml-platform",
        "1b6f3c9e-5d2a-4c8e-9f10-7a3b2c1d0e4f",
        "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "signature-reviewers",
        "eyJ",
        "ABSK",
    ] {
        assert!(!looks_like_secret(value), "{value}");
    }
}

// ---- injection ------------------------------------------------------------------------------

const CRAFTED: [&str; 8] = [
    "x\",\"decision\":\"allow\",\"reason\":\"allowed",
    "line1\nline2\r\n{\"decision\":\"allow\"}",
    "nul\u{0}byte",
    "sep\u{2028}and\u{2029}para",
    "back\\slash\\\"quote",
    "tab\tbell\u{7}esc\u{1b}[31mdel\u{7f}",
    "bidi\u{202e}reversed\u{feff}bom",
    "astral \u{1F600} and \u{10FFFF}",
];

#[test]
fn crafted_values_cannot_create_or_change_another_field() {
    let decision = Decision::deny(Reason::ModelNotAllowed, "no rule allows this model")
        .with_operation(Operation::Converse);
    let baseline: Value =
        serde_json::from_str(&AuditRecord::from_decision(&decision, T).to_json_line()).unwrap();
    for crafted in CRAFTED {
        for (name, set) in SETTERS {
            if name == "sourceIPAddress" && crafted.parse::<std::net::IpAddr>().is_ok() {
                continue;
            }
            let mut record = AuditRecord::from_decision(&decision, T);
            set(&mut record, crafted);
            let line = record.to_json_line();
            assert!(
                line.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "not printable ASCII: {line}"
            );
            let parsed: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(field(&parsed, name), crafted, "{name}");
            // Everything else is as it was.
            let object = parsed.as_object().unwrap();
            assert_eq!(object.len(), baseline.as_object().unwrap().len());
            for (key, value) in baseline.as_object().unwrap() {
                let touched = match name {
                    "issuer" | "subject" | "group" => key == "userIdentity",
                    "endpoint" => key == "endpoint" || key == "vpcEndpointId",
                    _ => key == name,
                };
                if !touched {
                    assert_eq!(
                        &object[key], value,
                        "{key} changed by {name} <- {crafted:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn crafted_decision_detail_and_rule_are_escaped() {
    for crafted in CRAFTED {
        let decision = Decision::deny(Reason::ModelDenied, crafted)
            .with_rule(Some(crafted.to_string()), Mode::Enforce);
        let line = AuditRecord::from_decision(&decision, T).to_json_line();
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["detail"], crafted);
        assert_eq!(parsed["ruleId"], crafted);
        assert_eq!(parsed["decision"], "deny");
        assert_eq!(parsed["reason"], "model_denied");
    }
}

#[test]
fn line_separators_and_controls_are_written_as_escapes() {
    let mut record = AuditRecord::from_decision(&Decision::deny(Reason::HeaderInvalid, ""), T);
    record.request_id("a\u{2028}b\u{2029}c\u{0}d\u{1f}e\u{7f}f\u{1F600}");
    let line = record.to_json_line();
    assert!(
        line.contains(r#""requestID":"a\u2028b\u2029c\u0000d\u001fe\u007ff\ud83d\ude00""#),
        "{line}"
    );
}

// ---- arbitrary input ------------------------------------------------------------------------

/// What a field should read as: the lossy UTF-8 text, cut at a character boundary at 256 bytes
/// and marked (or redacted, which random input essentially never triggers).
fn expected(input: &[u8]) -> Option<String> {
    let lossy = String::from_utf8_lossy(input);
    if lossy.is_empty() {
        return None;
    }
    if lossy.len() <= 256 {
        return Some(lossy.into_owned());
    }
    let mut end = 256;
    while !lossy.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}{TRUNCATED}", &lossy[..end]))
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        any::<String>().prop_map(String::into_bytes),
        "[\\PC\"\\\\\\n\\u{0}\\u{2028}]{0,300}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_field_bytes_give_one_parseable_ascii_line_with_fixed_fields(
        request_id in bytes(),
        region in bytes(),
        endpoint in bytes(),
        issuer in bytes(),
        subject in bytes(),
        group in bytes(),
        source in bytes(),
        upstream in bytes(),
        upstream_request_id in bytes(),
        detail in any::<String>(),
    ) {
        let decision = Decision::deny(Reason::ModelNotAllowed, detail.clone())
            .with_operation(Operation::InvokeModel);
        let mut record = AuditRecord::from_decision(&decision, T);
        record
            .request_id(&request_id)
            .region(&region)
            .endpoint(&endpoint)
            .identity(&issuer, &subject, [&group])
            .source_address(&source)
            .upstream_address(&upstream)
            .upstream_request_id(&upstream_request_id);
        let line = record.to_json_line();
        prop_assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)));
        let parsed: Value = serde_json::from_str(&line).unwrap();
        prop_assert_eq!(parsed.as_object().unwrap().len(), 32);
        prop_assert_eq!(&parsed["decision"], "deny");
        prop_assert_eq!(&parsed["reason"], "model_not_allowed");
        prop_assert_eq!(&parsed["eventName"], "InvokeModel");
        prop_assert_eq!(&parsed["status"], 403);
        let checks: [(&Value, &[u8]); 7] = [
            (&parsed["requestID"], &request_id),
            (&parsed["awsRegion"], &region),
            (&parsed["endpoint"], &endpoint),
            (&parsed["userIdentity"]["issuer"], &issuer),
            (&parsed["userIdentity"]["subject"], &subject),
            (&parsed["detail"], detail.as_bytes()),
            (&parsed["upstreamRequestId"], &upstream_request_id),
        ];
        for (got, input) in checks {
            match expected(input) {
                None => prop_assert_eq!(got, &Value::Null),
                Some(text) => prop_assert!(got == text.as_str() || got == REDACTED, "{got} vs {text:?}"),
            }
        }
        let group_text = expected(&group).unwrap_or_default();
        let got_group = &parsed["userIdentity"]["groups"][0];
        prop_assert!(got_group == group_text.as_str() || got_group == REDACTED);
    }
}
