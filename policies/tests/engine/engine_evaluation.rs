//! `evaluate`: the one value the engine hands the shell (issue 13 item 1). What the shell needs
//! later (the endpoint for the response-time check and the quarantine, the credential, the
//! token's hash, the canonical models) is in it, and the audit record is built from it.

use std::net::IpAddr;

use policies::audit::{AuditRecord, CredentialType};
use policies::credentials::Credential;
use policies::identity::{Caller, TokenHash};
use policies::{evaluate, CompiledPolicy, HeadOutcome, Reason, RequestFacts};
use serde_json::{json, Value};

const REGIONAL: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com";
const ZONAL: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234-us-east-1a.bedrock-runtime.us-east-1.vpce.amazonaws.com";
const SIGV4: &[u8] = b"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261130/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn policy() -> CompiledPolicy {
    let bundle = json!({
        "apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle",
        "metadata": {"name": "evaluation", "revision": "1"},
        "endpoints": [
            {"host": "bedrock-runtime.us-west-2.amazonaws.com", "region": "us-west-2",
             "private_dns": true, "cidrs": ["10.1.0.0/16"]},
            {"host": REGIONAL, "region": "us-east-1", "cidrs": ["10.20.0.0/16"]}
        ],
        "rules": [
            {"id": "titan", "effect": "allow", "models": ["amazon.titan-text-express-v1", "meta.*"],
             "operations": ["InvokeModel"]},
            {"id": "no-llama", "effect": "deny", "models": ["meta.llama3-8b-instruct-v1:0"]}
        ]
    });
    CompiledPolicy::from_json(bundle.to_string().as_bytes()).unwrap()
}

fn facts<'a>(
    authority: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a [u8])],
) -> RequestFacts<'a> {
    RequestFacts {
        method: b"POST",
        path: path.as_bytes(),
        authority: authority.as_bytes(),
        scheme: b"https",
        headers,
        ..RequestFacts::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_zonal_name_is_bound_to_its_regional_entry_for_every_later_check() {
    let p = policy();
    let headers = [("authorization", SIGV4)];
    let e = evaluate(
        &p,
        &facts(
            ZONAL,
            "/model/amazon.titan-text-express-v1/invoke",
            &headers,
        ),
    );
    let HeadOutcome::Decided(d) = &e.outcome else {
        panic!("{:?}", e.outcome)
    };
    assert_eq!(d.reason, Reason::Allowed);
    assert_eq!(d.models, ["amazon.titan-text-express-v1"]);
    assert_eq!(e.target.host().map(|h| h.as_str()), Some(ZONAL));
    assert_eq!(
        e.target.endpoint(&p).map(|ep| ep.host.as_str()),
        Some(REGIONAL)
    );
    assert_eq!(e.region(&p), Some("us-east-1"));
    // The quarantine key is the bundle entry, so every zone of it is quarantined together.
    assert_eq!(e.target.quarantine_key(&p), Some(REGIONAL));
    assert!(e.target.upstream_allowed(&p, ip("10.20.3.4")));
    assert!(
        !e.target.upstream_allowed(&p, ip("10.1.3.4")),
        "another entry's range"
    );
    assert!(
        matches!(e.credential, Credential::SigV4(s) if s.access_key_id == "AKIAIOSFODNN7EXAMPLE")
    );
}

#[test]
fn an_unlisted_authority_keeps_its_canonical_name_and_no_address_is_allowed() {
    let p = policy();
    let e = evaluate(
        &p,
        &facts(
            "Bedrock-Runtime.EU-West-1.amazonaws.com:443",
            "/model/amazon.titan-text-express-v1/invoke",
            &[],
        ),
    );
    let HeadOutcome::Decided(d) = &e.outcome else {
        panic!()
    };
    assert_eq!(d.reason, Reason::DestinationNotPrivatelink);
    assert!(e.target.endpoint(&p).is_none());
    assert_eq!(
        e.target.quarantine_key(&p),
        Some("bedrock-runtime.eu-west-1.amazonaws.com")
    );
    assert!(!e.target.upstream_allowed(&p, ip("10.20.3.4")));
    assert_eq!(e.region(&p), None);
    assert_eq!(e.credential, Credential::None);

    let e = evaluate(
        &p,
        &facts(
            "user@host",
            "/model/amazon.titan-text-express-v1/invoke",
            &[],
        ),
    );
    assert!(e.target.host().is_none());
    assert_eq!(e.target.quarantine_key(&p), None);
}

/// What the record says comes from the evaluation: region, credential type and access key,
/// the token's fingerprint (from the one hash), verdict and canonical models, also when the
/// request is refused before the model step.
#[test]
fn the_audit_record_is_built_from_the_evaluation() {
    let p = policy();
    let token = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    let hash = TokenHash::of(token);
    let headers = [("authorization", SIGV4)];
    for (path, reason, models) in [
        (
            "/model/amazon.titan-text-express-v1/invoke",
            "allowed",
            json!("amazon.titan-text-express-v1"),
        ),
        (
            "/model/meta.llama3-8b-instruct-v1%3A0/invoke",
            "model_denied",
            json!("meta.llama3-8b-instruct-v1:0"),
        ),
    ] {
        let mut f = facts(REGIONAL, path, &headers);
        f.caller = Caller::Anonymous;
        f.token = Some(hash);
        let e = evaluate(&p, &f);
        let record: Value =
            serde_json::from_str(&AuditRecord::from_evaluation(&p, &e, 0).to_json_line()).unwrap();
        assert_eq!(record["reason"], reason);
        assert_eq!(record["requestParameters"]["modelId"], models);
        assert_eq!(record["awsRegion"], "us-east-1");
        assert_eq!(record["credentialType"], CredentialType::SigV4.as_str());
        assert_eq!(record["accessKeyId"], "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            record["userIdentity"]["tokenFingerprint"],
            hash.fingerprint()
        );
    }
    // A request waiting for its body is recorded with its operation and a placeholder verdict
    // the body decision replaces.
    let e = evaluate(
        &p,
        &facts(
            REGIONAL,
            "/openai/v1/chat/completions",
            &[("content-type", b"application/json")],
        ),
    );
    assert!(matches!(e.outcome, HeadOutcome::NeedBody(_)));
    let record: Value =
        serde_json::from_str(&AuditRecord::from_evaluation(&p, &e, 0).to_json_line()).unwrap();
    assert_eq!(record["eventName"], "ChatCompletions");
    assert_eq!(record["reason"], "policy_unavailable");
    assert_eq!(record["credentialType"], Value::Null);
}

#[test]
fn the_literal_models_are_the_rules_names_without_wildcards_once_each() {
    assert_eq!(
        policy().literal_models(),
        [
            "amazon.titan-text-express-v1",
            "meta.llama3-8b-instruct-v1:0"
        ]
    );
}

#[test]
fn the_rule_ids_are_in_bundle_order_and_the_literal_groups_once_each() {
    let bundle = json!({
        "apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle",
        "metadata": {"name": "labels", "revision": "1"},
        "identity": {"providers": [{"name": "idp", "issuer": "https://idp.example",
            "audiences": ["bedrock"], "algorithms": ["ES256"], "jwks": {"keys": [{
                "kty": "EC", "crv": "P-256", "kid": "k1",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}}]},
        "endpoints": [{"host": REGIONAL, "region": "us-east-1", "cidrs": ["10.20.0.0/16"]}],
        "rules": [
            {"id": "team-a", "effect": "allow", "models": ["*"],
             "principals": {"groups": ["team-a", "ml-*"]}},
            {"id": "no.llama", "effect": "deny", "models": ["meta.*"],
             "principals": {"groups": ["contractors", "team-a"], "subjects": ["bob"]}},
            {"id": "everyone", "effect": "allow", "models": ["amazon.*"]}
        ]
    });
    let p = CompiledPolicy::from_json(bundle.to_string().as_bytes()).unwrap();
    assert_eq!(
        p.rule_ids().collect::<Vec<_>>(),
        ["team-a", "no.llama", "everyone"]
    );
    assert_eq!(p.literal_groups(), ["team-a", "contractors"]);
    assert!(policy().literal_groups().is_empty());
}
