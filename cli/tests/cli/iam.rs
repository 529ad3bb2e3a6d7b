//! `bedrock-guard iam`: the shape of the AWS-side policies, the `aws` bundle field's
//! validation, and the errors. Whether the policies are valid IAM and decide as the engine does
//! is checked end to end in `tests/test_iam_policy.py` (parliament and an IAM evaluator).

use crate::support::*;
use serde_json::Value;

fn iam(args: &[&str]) -> Value {
    let out = run(args);
    assert_eq!(out.code, 0, "{}", out.all());
    serde_json::from_str(&out.stdout).unwrap()
}

fn statements<'a>(out: &'a Value, doc: &str) -> &'a Vec<Value> {
    out["policies"][doc]["Statement"].as_array().unwrap()
}

fn by_sid<'a>(out: &'a Value, doc: &str, sid: &str) -> &'a Value {
    statements(out, doc)
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("{doc} has no statement {sid}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn maps_operations_to_actions_and_patterns_to_arns_in_the_endpoint_region() {
    let demo = example("demo.json");
    let out = iam(&["iam", demo.to_str().unwrap()]);
    assert_eq!(
        strings(&out["actions"]["Converse"]["model"]),
        ["bedrock:InvokeModel"]
    );
    assert_eq!(
        strings(&out["actions"]["ConverseStream"]["model"]),
        ["bedrock:InvokeModelWithResponseStream"]
    );
    let allow = by_sid(&out, "identity_policy", "AllowRule0Models");
    let resources = strings(&allow["Resource"]);
    assert!(resources.contains(
        &"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"
    ));
    assert!(resources.contains(
        &"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-*"
    ));
    assert!(strings(&allow["Action"]).contains(&"bedrock:CountTokens"));
    // The cross-Region profile's destinations, only through that profile.
    let dest = by_sid(&out, "identity_policy", "AllowRule0ProfileDestinations0");
    assert_eq!(
        strings(&dest["Resource"]),
        ["arn:aws:bedrock:*::foundation-model/anthropic.claude-*"]
    );
    assert_eq!(
        strings(&dest["Condition"]["ArnLike"]["bedrock:InferenceProfileArn"]),
        ["arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-*"]
    );
    // Deny rules are explicit denies.
    let deny = by_sid(&out, "identity_policy", "DenyRule4");
    assert_eq!(deny["Effect"], "Deny");
    assert!(
        strings(&deny["Resource"]).contains(&"arn:aws:bedrock:*:*:foundation-model/*claude-opus*")
    );
    // PrivateLink only, no API keys (the demo does not allow them).
    let vpce = by_sid(&out, "identity_policy", "DenyModelsOutsidePrivateLink");
    assert_eq!(
        strings(&vpce["Condition"]["StringNotEquals"]["aws:SourceVpce"]),
        ["vpce-0a1b2c3d4e5f67890"]
    );
    by_sid(&out, "identity_policy", "DenyBedrockApiKeys");
    assert!(out["policies"].get("service_control_policy").is_none());
}

#[test]
fn the_endpoint_policy_restricts_principals_to_the_bundles_accounts() {
    let demo = example("demo.json");
    let out = iam(&["iam", demo.to_str().unwrap()]);
    for s in statements(&out, "vpc_endpoint_policy") {
        assert_eq!(s["Principal"], "*");
        if s["Effect"] == "Allow" {
            assert_eq!(
                strings(&s["Condition"]["StringEquals"]["aws:PrincipalAccount"]),
                ["123456789012"],
                "{s}"
            );
        }
    }
    let identity = example("identity.json");
    let out = iam(&["iam", identity.to_str().unwrap()]);
    let allow = by_sid(&out, "vpc_endpoint_policy", "AllowRule0Models");
    assert_eq!(
        allow["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
        "o-a1b2c3d4e5"
    );
}

#[test]
fn scp_denies_invocation_logging_and_has_no_allow() {
    let demo = example("demo.json");
    let out = iam(&["iam", demo.to_str().unwrap(), "--scp"]);
    let scp = statements(&out, "service_control_policy");
    assert!(scp
        .iter()
        .all(|s| s["Effect"] == "Deny" && s.get("Principal").is_none()));
    let logging = by_sid(&out, "service_control_policy", "DenyModelInvocationLogging");
    assert_eq!(
        strings(&logging["Action"]),
        ["bedrock:PutModelInvocationLoggingConfiguration"]
    );
}

#[test]
fn lists_what_iam_cannot_express() {
    let identity = example("identity.json");
    let out = iam(&["iam", identity.to_str().unwrap()]);
    let classes: Vec<(&str, &str)> = out["cannot_express"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["class"].as_str().unwrap(), e["subject"].as_str().unwrap()))
        .collect();
    assert!(classes.contains(&("jwt_principals", "rules[0] (ml-platform-claude)")));
    assert!(classes.contains(&("jwt_principals", "rules[2] (no-interns-opus)")));
    assert!(classes.contains(&("dry_run", "rules[3] (watch-haiku)")));
    assert!(classes.iter().any(|(c, _)| *c == "request_body"));
    // A deny rule with principals is not written as a deny for everyone.
    assert!(statements(&out, "identity_policy")
        .iter()
        .all(|s| s["Sid"] != "DenyRule2" && s["Sid"] != "DenyRule3"));
}

#[test]
fn bearer_keys_allowed_short_term_only_denies_long_term_keys() {
    let scratch = Scratch::new("iam-bearer");
    let text = demo_text().replace(
        r#""credentials": { "allow_bearer_api_keys": false }"#,
        r#""credentials": { "allow_bearer_api_keys": true }"#,
    );
    let file = scratch.write("b.json", &text);
    let out = iam(&["iam", &file]);
    let s = by_sid(&out, "identity_policy", "DenyLongTermBedrockApiKeys");
    assert_eq!(
        s["Condition"]["StringEquals"]["bedrock:BearerTokenType"],
        "LONG_TERM"
    );
    assert!(statements(&out, "identity_policy")
        .iter()
        .all(|s| s["Sid"] != "DenyBedrockApiKeys"));
}

#[test]
fn service_name_endpoints_alone_need_a_vpce_id() {
    let scratch = Scratch::new("iam-vpce");
    let text = demo_text().replace(
        r#",
    { "host": "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", "region": "us-east-1" }"#,
        "",
    );
    assert_ne!(text, demo_text());
    let file = scratch.write("b.json", &text);
    let out = run(&["iam", &file]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("endpoints[0] (bedrock-runtime.us-east-1.amazonaws.com)"),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("--vpce-id"), "{}", out.all());
    let out = iam(&["iam", &file, "--vpce-id", "vpce-11112222"]);
    assert_eq!(strings(&out["vpc_endpoint_ids"]), ["vpce-11112222"]);
    let bad = run(&["iam", &file, "--vpce-id", "vpce-XYZ"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("\"vpce-XYZ\" is not a VPC endpoint id"),
        "{}",
        bad.all()
    );
}

#[test]
fn the_aws_field_is_validated_with_its_path() {
    let scratch = Scratch::new("iam-aws-field");
    for (aws, path, message) in [
        (r#"{}"#, "aws:", "is empty"),
        (
            r#"{ "principal_accounts": [] }"#,
            "aws.principal_accounts:",
            "is empty",
        ),
        (
            r#"{ "principal_accounts": ["12345"] }"#,
            "aws.principal_accounts[0]:",
            "12-digit",
        ),
        (
            r#"{ "principal_accounts": ["123456789012", "123456789012"] }"#,
            "aws.principal_accounts[1]:",
            "duplicate account",
        ),
        (
            r#"{ "principal_org_id": "o-SHORT" }"#,
            "aws.principal_org_id:",
            "AWS Organizations id",
        ),
        (
            r#"{ "principal_org": "o-a1b2c3d4e5" }"#,
            "principal_org",
            "unknown field",
        ),
    ] {
        let text = demo_text().replace(
            r#""aws": { "principal_accounts": ["123456789012"] }"#,
            &format!(r#""aws": {aws}"#),
        );
        let file = scratch.write("b.json", &text);
        let out = run(&["validate", &file]);
        assert_eq!(out.code, 1, "{aws}: {}", out.all());
        assert!(
            out.stdout.contains(path) || out.stderr.contains(path),
            "{aws}: {}",
            out.all()
        );
        assert!(out.all().contains(message), "{aws}: {}", out.all());
    }
}
