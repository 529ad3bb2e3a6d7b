//! "How a request is decided" (docs/policy.md) is the engine's order: the table there equals
//! `engine::DECISION_STEPS`, and a request that fails two checks is refused by the earlier one.

use policies::engine::DECISION_STEPS;
use policies::{decide, CompiledPolicy, Decision, Reason, RequestFacts};
use serde_json::json;

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const AGENT_HOST: &str = "bedrock-agent-runtime.us-east-1.amazonaws.com";

fn policy() -> CompiledPolicy {
    let bundle = json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "order", "revision": "1" },
        "endpoints": [
            { "host": HOST, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] },
            { "host": AGENT_HOST, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }
        ],
        "network": { "profile_geographies": ["us"] },
        "accounts": ["123456789012"],
        "resources": { "s3_outputs": ["s3://acme-out/async/*"], "lambdas": ["arn:aws:lambda:us-east-1:123456789012:function:ok-*"] },
        "rules": [
            { "id": "some", "effect": "allow", "models": ["anthropic.*", "us.anthropic.*", "amazon.*"],
              "operations": ["Converse", "StartAsyncInvoke", "InvokeInlineAgent"] },
            { "id": "no-opus", "effect": "deny", "models": ["*opus*"] }
        ]
    });
    CompiledPolicy::from_json(bundle.to_string().as_bytes()).expect("bundle compiles")
}

fn run(
    method: &str,
    path: &str,
    authority: &str,
    headers: &[(&str, &[u8])],
    body: Option<&[u8]>,
) -> Decision {
    let facts = RequestFacts {
        method: method.as_bytes(),
        path: path.as_bytes(),
        authority: authority.as_bytes(),
        scheme: b"https",
        headers,
        body,
        ..RequestFacts::default()
    };
    decide(&policy(), &facts)
}

fn converse(model: &str, authority: &str, headers: &[(&str, &[u8])]) -> Decision {
    let path = format!(
        "/model/{}/converse",
        model.replace(':', "%3A").replace('/', "%2F")
    );
    run("POST", &path, authority, headers, None)
}

fn position(reason: Reason) -> usize {
    DECISION_STEPS
        .iter()
        .position(|(_, reasons)| reasons.contains(&reason))
        .unwrap_or(usize::MAX)
}

#[test]
fn docs_table_lists_exactly_the_engine_steps_in_order() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md"))
        .expect("docs/policy.md");
    let section = doc
        .split("## How a request is decided")
        .nth(1)
        .expect("docs/policy.md has a 'How a request is decided' section");
    let rows: Vec<(String, Vec<String>)> = section
        .lines()
        .skip_while(|l| !l.starts_with("| # |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let reasons = cells[3]
                .split(',')
                .map(|r| r.trim().trim_matches('`').to_string())
                .collect();
            (cells[2].to_string(), reasons)
        })
        .collect();
    let expected: Vec<(String, Vec<String>)> = DECISION_STEPS
        .iter()
        .map(|(name, reasons)| {
            (
                name.to_string(),
                reasons.iter().map(|r| r.as_str().to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(rows, expected);
    // Every reason code a decision can carry is in some step.
    for reason in Reason::ALL {
        assert!(position(reason) != usize::MAX, "{reason} is in no step");
    }
}

fn step(name: &str) -> usize {
    DECISION_STEPS
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// `d` failed the checks of steps `earlier` and `later`: it must carry `reason`, one of the
/// earlier step's codes, and the table must list `earlier` first.
fn assert_earlier_wins(d: &Decision, earlier: &str, reason: Reason, later: &str) {
    assert!(
        step(earlier) < step(later),
        "table order: {earlier} before {later}"
    );
    assert!(DECISION_STEPS[step(earlier)].1.contains(&reason));
    assert_eq!(d.reason, reason, "{d:?}");
}

#[test]
fn destination_before_credential_and_model() {
    let d = converse("meta.llama3", "evil.example.com", &[]);
    assert_earlier_wins(
        &d,
        "destination",
        Reason::DestinationNotPrivatelink,
        "allow rules",
    );
}

#[test]
fn credential_before_model() {
    let auth = b"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-west-2/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000";
    let d = converse("Meta.llama3", HOST, &[("authorization", auth)]);
    assert_earlier_wins(
        &d,
        "credential",
        Reason::RegionNotAllowed,
        "model id and body head",
    );
}

#[test]
fn model_arn_before_deny_rules() {
    let d = converse(
        "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-opus-4",
        HOST,
        &[],
    );
    assert_earlier_wins(
        &d,
        "model ARNs",
        Reason::RegionNotAllowed,
        "enforced deny rules",
    );
}

#[test]
fn resources_before_geography_and_rules() {
    let body = json!({
        "modelId": "eu.anthropic.claude-opus-4",
        "outputDataConfig": { "s3OutputDataConfig": { "s3Uri": "s3://elsewhere/x" } }
    })
    .to_string();
    let d = run(
        "POST",
        "/async-invoke",
        HOST,
        &[("content-type", b"application/json")],
        Some(body.as_bytes()),
    );
    assert_earlier_wins(&d, "resources", Reason::ResourceNotAllowed, "geography");
}

#[test]
fn geography_before_deny_rules() {
    let d = converse("eu.anthropic.claude-opus-4", HOST, &[]);
    assert_earlier_wins(
        &d,
        "geography",
        Reason::RegionNotAllowed,
        "enforced deny rules",
    );
}

#[test]
fn deny_rules_before_allow_rules() {
    let d = converse("meta.opus-lookalike", HOST, &[]);
    assert_earlier_wins(
        &d,
        "enforced deny rules",
        Reason::ModelDenied,
        "allow rules",
    );
}

#[test]
fn body_model_case_before_resources() {
    let body = json!({
        "foundationModel": "Anthropic.claude-x",
        "actionGroups": [{ "actionGroupExecutor": { "lambda": "arn:aws:lambda:us-east-1:123456789012:function:bad" } }]
    })
    .to_string();
    let d = run(
        "POST",
        "/agents/s1",
        AGENT_HOST,
        &[("content-type", b"application/json")],
        Some(body.as_bytes()),
    );
    assert_earlier_wins(&d, "body", Reason::ModelInvalid, "resources");
}
