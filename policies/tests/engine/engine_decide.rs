//! End-to-end decisions: request facts in, decision out, against a small test bundle.

use policies::{
    decide, evaluate_body, evaluate_head, CompiledPolicy, Decision, HeadOutcome, Mode, Operation,
    Pending, Reason, RequestFacts,
};
use serde_json::{json, Value};
use std::net::IpAddr;

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const VPCE: &str = "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com";
const GOV: &str = "bedrock-runtime.us-gov-west-1.amazonaws.com";
const SONNET_35: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const APP_PROFILE: &str =
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6";

fn bundle() -> Value {
    json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "engine-tests", "revision": "7" },
        "endpoints": [
            { "host": HOST, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] },
            { "host": VPCE, "region": "us-east-1" },
            { "host": GOV, "region": "us-gov-west-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }
        ],
        "accounts": ["123456789012"],
        "resources": {
            "s3_outputs": ["s3://acme-bedrock-out/async/*"],
            "knowledge_bases": ["KB12345678"],
            "guardrails": ["abc123"]
        },
        "limits": { "max_body_bytes": 4096 },
        "rules": [
            { "id": "claude", "effect": "allow",
              "models": [SONNET_35, "anthropic.claude-sonnet-4-*", "anthropic.claude-3-haiku-*",
                         "anthropic.claude-opus-4-1-20250805-v1:0", "us.anthropic.claude-*",
                         "global.anthropic.claude-*", "amazon.titan-text-express-v1"],
              "operations": ["Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream",
                             "StartAsyncInvoke", "ChatCompletions", "AnthropicMessages"] },
            { "id": "app-profile", "effect": "allow", "models": [APP_PROFILE], "operations": ["Converse", "InvokeModel"] },
            { "id": "count-anything", "effect": "allow", "models": ["*"], "operations": ["CountTokens"] },
            { "id": "guardrails", "effect": "allow", "operations": ["ApplyGuardrail", "ListAsyncInvokes"] },
            { "id": "rag", "effect": "allow", "models": ["anthropic.claude-*"], "operations": ["RetrieveAndGenerate"] },
            { "id": "retrieve", "effect": "allow", "models": ["amazon.rerank-*"], "operations": ["Retrieve"] },
            { "id": "no-opus", "effect": "deny", "models": ["*claude-opus*"] },
            { "id": "no-3-sonnet", "effect": "deny", "models": ["anthropic.claude-3-sonnet-*"] },
            { "id": "no-global", "effect": "deny", "models": ["global.*"] },
            { "id": "watch-haiku", "effect": "deny", "mode": "dry-run", "models": ["anthropic.claude-3-haiku-*"] },
            { "id": "watch-meta", "effect": "deny", "mode": "dry-run", "models": ["meta.*"] }
        ]
    })
}

fn policy_from(v: &Value) -> CompiledPolicy {
    CompiledPolicy::from_json(v.to_string().as_bytes()).expect("test bundle compiles")
}

fn policy() -> CompiledPolicy {
    policy_from(&bundle())
}

fn dry_run_policy() -> CompiledPolicy {
    let mut v = bundle();
    v["mode"] = json!("dry-run");
    policy_from(&v)
}

/// An owned request, turned into `RequestFacts` for each decision.
#[derive(Clone)]
struct Req {
    method: String,
    path: String,
    authority: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    original_destination: Option<IpAddr>,
    caller: policies::identity::Caller,
}

impl Req {
    fn new(method: &str, path: &str) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            authority: HOST.into(),
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: None,
            original_destination: None,
            caller: Default::default(),
        }
    }

    fn post(path: &str) -> Req {
        Req::new("POST", path)
    }

    fn by_caller(mut self, caller: policies::identity::Caller) -> Req {
        self.caller = caller;
        self
    }

    fn get(path: &str) -> Req {
        let mut r = Req::new("GET", path);
        r.headers.clear();
        r
    }

    /// A path-carried model as boto3 encodes it (`:` → `%3A`, `/` → `%2F`).
    fn converse(model: &str) -> Req {
        Req::post(&format!("/model/{}/converse", encode(model)))
    }

    fn authority(mut self, authority: &str) -> Req {
        self.authority = authority.into();
        self
    }

    fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.as_bytes().to_vec()));
        self
    }

    fn original_destination(mut self, addr: &str) -> Req {
        self.original_destination = Some(addr.parse().expect("test address"));
        self
    }

    fn without_header(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| n != name);
        self
    }

    fn body(mut self, body: &str) -> Req {
        let len = body.len().to_string();
        self.headers
            .push(("content-length".into(), len.into_bytes()));
        self.body = Some(body.as_bytes().to_vec());
        self
    }

    fn json(self, body: Value) -> Req {
        self.body(&body.to_string())
    }

    fn with_facts<T>(&self, f: impl FnOnce(&RequestFacts) -> T) -> T {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let facts = RequestFacts {
            method: self.method.as_bytes(),
            path: self.path.as_bytes(),
            authority: self.authority.as_bytes(),
            scheme: b"https",
            headers: &headers,
            body: self.body.as_deref(),
            original_destination: self.original_destination,
            caller: self.caller.clone(),
            token: None,
        };
        f(&facts)
    }

    fn decide(&self, policy: &CompiledPolicy) -> Decision {
        self.with_facts(|facts| decide(policy, facts))
    }
}

fn encode(model: &str) -> String {
    model.replace(':', "%3A").replace('/', "%2F")
}

fn chat(model: &str) -> Req {
    Req::post("/openai/v1/chat/completions")
        .json(json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] }))
}

#[track_caller]
fn assert_allowed(d: &Decision, rule: &str) {
    assert_eq!(d.reason, Reason::Allowed, "{d:?}");
    assert_eq!(d.rule_id.as_deref(), Some(rule), "{d:?}");
    assert_eq!(d.mode, Mode::Enforce);
}

#[track_caller]
fn assert_refused(d: &Decision, reason: Reason) {
    assert_eq!(d.reason, reason, "{d:?}");
    assert_eq!(d.mode, Mode::Enforce, "{d:?}");
    assert!(!d.lets_through());
}

// ---- models in the path --------------------------------------------------------------------

#[test]
fn allows_listed_model_on_converse() {
    let d = Req::converse(SONNET_35).decide(&policy());
    assert_allowed(&d, "claude");
    assert_eq!(d.operation, Some(Operation::Converse));
    assert_eq!(d.models, vec![SONNET_35.to_string()]);
}

#[test]
fn allows_model_matching_a_wildcard_pattern() {
    let d = Req::converse("anthropic.claude-sonnet-4-20250514-v1:0").decide(&policy());
    assert_allowed(&d, "claude");
}

#[test]
fn denies_unlisted_model() {
    let d = Req::converse("cohere.command-r-v1:0").decide(&policy());
    assert_refused(&d, Reason::ModelNotAllowed);
    assert_eq!(d.operation, Some(Operation::Converse));
    assert_eq!(d.models, vec!["cohere.command-r-v1:0".to_string()]);
    assert_eq!(d.rule_id, None);
}

#[test]
fn denies_listed_model_on_an_operation_the_rule_does_not_name() {
    let d = Req::post(&format!(
        "/model/{}/invoke-with-bidirectional-stream",
        encode(SONNET_35)
    ))
    .decide(&policy());
    assert_refused(&d, Reason::ModelNotAllowed);
    assert_eq!(
        d.operation,
        Some(Operation::InvokeModelWithBidirectionalStream)
    );
}

#[test]
fn explicit_deny_wins_over_allow() {
    let d = Req::converse("anthropic.claude-opus-4-1-20250805-v1:0").decide(&policy());
    assert_refused(&d, Reason::ModelDenied);
    assert_eq!(d.rule_id.as_deref(), Some("no-opus"));
}

#[test]
fn deny_on_a_base_model_also_blocks_its_cross_region_profile() {
    // `us.anthropic.claude-*` allows the profile, but invoking a profile needs the base model,
    // which `no-3-sonnet` denies (as IAM would).
    let d = Req::converse("us.anthropic.claude-3-sonnet-20240229-v1:0").decide(&policy());
    assert_refused(&d, Reason::ModelDenied);
    assert_eq!(d.rule_id.as_deref(), Some("no-3-sonnet"));
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-sonnet-20240229-v1:0";
    let d = Req::converse(arn).decide(&policy());
    assert_eq!(d.rule_id.as_deref(), Some("no-3-sonnet"), "{d:?}");
}

#[test]
fn global_profile_is_denied_even_though_allowed() {
    let d = Req::converse("global.anthropic.claude-sonnet-4-5-20250929-v1:0").decide(&policy());
    assert_refused(&d, Reason::ModelDenied);
    assert_eq!(d.rule_id.as_deref(), Some("no-global"));
}

#[test]
fn profile_prefix_is_not_allowed_by_a_base_model_pattern() {
    // `amazon.titan-text-express-v1` must not allow the `us.` profile of that model. (The
    // `eu.` profile this test used to name is now refused earlier: `eu` does not serve
    // us-east-1.)
    let d = Req::converse("us.amazon.titan-text-express-v1").decide(&policy());
    assert_refused(&d, Reason::ModelNotAllowed);
}

#[test]
fn model_matching_is_case_sensitive() {
    let d = Req::converse("Anthropic.claude-3-5-sonnet-20240620-v1:0").decide(&policy());
    assert_ne!(d.reason, Reason::Allowed, "{d:?}");
}

#[test]
fn raw_colon_in_path_is_the_same_model() {
    let d = Req::post(&format!("/model/{SONNET_35}/invoke")).decide(&policy());
    assert_allowed(&d, "claude");
    assert_eq!(d.operation, Some(Operation::InvokeModel));
}

#[test]
fn double_encoded_model_id_is_unparseable() {
    let d = Req::post("/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse")
        .decide(&policy());
    assert_refused(&d, Reason::ModelUnparseable);
    assert_eq!(d.operation, Some(Operation::Converse));
}

#[test]
fn unknown_path_is_operation_unknown() {
    let d = Req::post(&format!("/model/{}/invoke-async", encode(SONNET_35))).decide(&policy());
    assert_refused(&d, Reason::OperationUnknown);
}

#[test]
fn query_string_on_converse_is_refused() {
    let d = Req::post(&format!(
        "/model/{}/converse?X-Amz-Signature=abc",
        encode(SONNET_35)
    ))
    .decide(&policy());
    assert_refused(&d, Reason::QueryNotAllowed);
}

// ---- ARNs ----------------------------------------------------------------------------------

#[test]
fn allows_foundation_model_arn_by_its_model_id() {
    let arn = format!("arn:aws:bedrock:us-east-1::foundation-model/{SONNET_35}");
    let d = Req::converse(&arn).decide(&policy());
    assert_allowed(&d, "claude");
    assert_eq!(d.models, vec![arn]);
}

#[test]
fn allows_inference_profile_arn_by_its_profile_pattern() {
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0";
    assert_allowed(&Req::converse(arn).decide(&policy()), "claude");
}

#[test]
fn foundation_model_arn_in_other_region_is_refused() {
    let arn = format!("arn:aws:bedrock:us-west-2::foundation-model/{SONNET_35}");
    assert_refused(
        &Req::converse(&arn).decide(&policy()),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn foundation_model_arn_without_region_is_refused() {
    let arn = format!("arn:aws:bedrock:::foundation-model/{SONNET_35}");
    assert_refused(
        &Req::converse(&arn).decide(&policy()),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn arn_from_another_partition_is_refused() {
    let arn = format!("arn:aws-us-gov:bedrock:us-east-1::foundation-model/{SONNET_35}");
    assert_refused(
        &Req::converse(&arn).decide(&policy()),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn gov_cloud_endpoint_accepts_gov_cloud_arns() {
    let arn = format!("arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/{SONNET_35}");
    assert_allowed(
        &Req::converse(&arn).authority(GOV).decide(&policy()),
        "claude",
    );
    let commercial = format!("arn:aws:bedrock:us-gov-west-1::foundation-model/{SONNET_35}");
    assert_refused(
        &Req::converse(&commercial).authority(GOV).decide(&policy()),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn denies_model_arn_from_other_account() {
    let arn = "arn:aws:bedrock:us-east-1:999999999999:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0";
    let d = Req::converse(arn).decide(&policy());
    assert_refused(&d, Reason::AccountNotAllowed);
    assert_eq!(d.models, vec![arn.to_string()]);
}

#[test]
fn any_account_is_accepted_when_accounts_is_not_set() {
    let mut v = bundle();
    v.as_object_mut().unwrap().remove("accounts");
    let arn = "arn:aws:bedrock:us-east-1:999999999999:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0";
    assert_allowed(&Req::converse(arn).decide(&policy_from(&v)), "claude");
}

#[test]
fn opaque_application_profile_needs_arn_pattern() {
    assert_allowed(&Req::converse(APP_PROFILE).decide(&policy()), "app-profile");
    let other = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/zzzzzzzzzzzz";
    assert_refused(
        &Req::converse(other).decide(&policy()),
        Reason::ModelNotAllowed,
    );
}

#[test]
fn star_pattern_never_allows_opaque_resources() {
    let count = |model: &str| {
        Req::post(&format!("/model/{}/count-tokens", encode(model))).decide(&policy())
    };
    assert_allowed(&count(SONNET_35), "count-anything");
    assert_refused(&count(APP_PROFILE), Reason::ModelNotAllowed);
    let provisioned = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefabcdef";
    assert_refused(&count(provisioned), Reason::ModelNotAllowed);
}

#[test]
fn arn_pattern_with_wildcard_allows_opaque_resources() {
    let mut v = bundle();
    v["rules"][1]["models"] =
        json!(["arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/*"]);
    let other = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/zzzzzzzzzzzz";
    assert_allowed(
        &Req::converse(other).decide(&policy_from(&v)),
        "app-profile",
    );
}

#[test]
fn bare_opaque_name_needs_an_exact_pattern() {
    // A plain id without a `.` can only name an opaque resource (a provisioned model's name).
    let count = Req::post("/model/my-provisioned-claude/count-tokens");
    assert_refused(&count.decide(&policy()), Reason::ModelNotAllowed);
    let mut v = bundle();
    v["rules"][1]["models"] = json!([APP_PROFILE, "my-provisioned-claude"]);
    let d = Req::converse("my-provisioned-claude").decide(&policy_from(&v));
    assert_allowed(&d, "app-profile");
}

// ---- dry run -------------------------------------------------------------------------------

#[test]
fn dry_run_rule_lets_request_through_and_records_denial() {
    let d = Req::converse("anthropic.claude-3-haiku-20240307-v1:0").decide(&policy());
    assert_eq!(d.reason, Reason::ModelDenied);
    assert_eq!(d.mode, Mode::DryRun);
    assert_eq!(d.rule_id.as_deref(), Some("watch-haiku"));
    assert!(d.lets_through());
    assert!(!d.is_allow());
}

#[test]
fn dry_run_rule_does_not_hide_a_missing_allow() {
    let d = Req::converse("meta.llama3-1-70b-instruct-v1:0").decide(&policy());
    assert_refused(&d, Reason::ModelNotAllowed);
}

#[test]
fn enforced_deny_wins_over_dry_run_deny() {
    let mut v = bundle();
    v["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "no-haiku", "effect": "deny", "models": ["*haiku*"] }));
    let d = Req::converse("anthropic.claude-3-haiku-20240307-v1:0").decide(&policy_from(&v));
    assert_refused(&d, Reason::ModelDenied);
    assert_eq!(d.rule_id.as_deref(), Some("no-haiku"));
}

#[test]
fn dry_run_bundle_records_every_refusal_without_blocking() {
    let p = dry_run_policy();
    let d = Req::converse("cohere.command-r-v1:0").decide(&p);
    assert_eq!((d.reason, d.mode), (Reason::ModelNotAllowed, Mode::DryRun));
    let d = Req::converse("anthropic.claude-opus-4-1-20250805-v1:0").decide(&p);
    assert_eq!((d.reason, d.mode), (Reason::ModelDenied, Mode::DryRun));
    assert_eq!(d.rule_id.as_deref(), Some("no-opus"));
    let d = Req::post("/nope").decide(&p);
    assert_eq!((d.reason, d.mode), (Reason::OperationUnknown, Mode::DryRun));
    let d = Req::converse(SONNET_35)
        .authority("bedrock-runtime.us-east-1.amazonaws.com.evil.com")
        .decide(&p);
    assert_eq!(
        (d.reason, d.mode),
        (Reason::DestinationNotPrivatelink, Mode::DryRun)
    );
    assert!(d.lets_through());
    assert_allowed(&Req::converse(SONNET_35).decide(&p), "claude");
}

#[test]
fn dry_run_bundle_still_enforces_body_too_large_and_connect() {
    let p = dry_run_policy();
    let big = chat(&"a".repeat(5000));
    assert_refused(&big.decide(&p), Reason::BodyTooLarge);
    let connect = Req::new("CONNECT", "/").without_header("content-type");
    assert_refused(&connect.decide(&p), Reason::ConnectNotAllowed);
}

// ---- destination ---------------------------------------------------------------------------

#[test]
fn unknown_authority_is_not_privatelink() {
    let d = Req::converse(SONNET_35)
        .authority("bedrock-runtime.us-west-2.amazonaws.com")
        .decide(&policy());
    assert_refused(&d, Reason::DestinationNotPrivatelink);
    assert_eq!(d.operation, Some(Operation::Converse));
}

#[test]
fn lookalike_authorities_are_refused() {
    for authority in [
        "bedrock-runtime.us-east-1.amazonaws.com.evil.com",
        "evil-bedrock-runtime.us-east-1.amazonaws.com",
        "bedrock-runtime.us-east-1.amazonaws.com.",
        "bedrock-runtime.us-east-1.amazonaws.com:8443",
        "bedrock-runtime.us-east-1.amazonaws.com:443:443",
        "user@bedrock-runtime.us-east-1.amazonaws.com",
        "10.0.0.1",
    ] {
        let d = Req::converse(SONNET_35)
            .authority(authority)
            .decide(&policy());
        assert_refused(&d, Reason::DestinationNotPrivatelink);
    }
}

#[test]
fn authority_with_port_443_or_uppercase_is_the_endpoint() {
    let d = Req::converse(SONNET_35)
        .authority("bedrock-runtime.us-east-1.amazonaws.com:443")
        .decide(&policy());
    assert_allowed(&d, "claude");
    let d = Req::converse(SONNET_35)
        .authority("Bedrock-Runtime.US-EAST-1.amazonaws.com")
        .decide(&policy());
    assert_allowed(&d, "claude");
    assert_allowed(
        &Req::converse(SONNET_35).authority(VPCE).decide(&policy()),
        "claude",
    );
}

// ---- head checks ---------------------------------------------------------------------------

#[test]
fn connect_is_refused() {
    let d = Req::new("CONNECT", "/").decide(&policy());
    assert_refused(&d, Reason::ConnectNotAllowed);
}

#[test]
fn repeated_authorization_header_is_refused() {
    let d = Req::converse(SONNET_35)
        .header("authorization", "AWS4-HMAC-SHA256 a")
        .header("authorization", "AWS4-HMAC-SHA256 b")
        .decide(&policy());
    assert_refused(&d, Reason::HeaderInvalid);
}

#[test]
fn repeated_identity_header_is_refused() {
    let d = Req::converse(SONNET_35)
        .header("x-workload-identity", "a")
        .header("x-workload-identity", "b")
        .decide(&policy());
    assert_refused(&d, Reason::HeaderInvalid);
}

// ---- models in the body --------------------------------------------------------------------

#[test]
fn head_asks_for_the_body_of_body_carried_models() {
    let p = policy();
    let outcome =
        chat("us.anthropic.claude-3-5-sonnet-20241022-v2:0").with_facts(|f| evaluate_head(&p, f));
    assert_eq!(
        outcome,
        HeadOutcome::NeedBody(Pending {
            operation: Operation::ChatCompletions,
            max_body_bytes: 4096,
            endpoint_region: "us-east-1".into(),
            principal: None,
            path_resource: None,
        })
    );
}

#[test]
fn allows_body_carried_model() {
    let d = chat("us.anthropic.claude-3-5-sonnet-20241022-v2:0").decide(&policy());
    assert_allowed(&d, "claude");
    assert_eq!(d.operation, Some(Operation::ChatCompletions));
    assert_eq!(
        d.models,
        vec!["us.anthropic.claude-3-5-sonnet-20241022-v2:0".to_string()]
    );
}

#[test]
fn denies_unlisted_body_carried_model() {
    let d = chat("openai.gpt-oss-120b-1:0").decide(&policy());
    assert_refused(&d, Reason::ModelNotAllowed);
    assert_eq!(d.models, vec!["openai.gpt-oss-120b-1:0".to_string()]);
}

#[test]
fn allows_async_invoke_model_id() {
    let body = json!({ "modelId": "amazon.titan-text-express-v1", "modelInput": {},
        "outputDataConfig": { "s3OutputDataConfig": { "s3Uri": "s3://acme-bedrock-out/async/run-1" } } });
    let d = Req::post("/async-invoke").json(body).decide(&policy());
    assert_allowed(&d, "claude");
    assert_eq!(d.operation, Some(Operation::StartAsyncInvoke));
}

#[test]
fn body_model_duplicate_key_is_refused() {
    let d = Req::post("/openai/v1/chat/completions")
        .body(&format!(
            r#"{{"model":"{SONNET_35}","model":"cohere.command-r-v1:0","messages":[]}}"#
        ))
        .decide(&policy());
    assert_refused(&d, Reason::BodyUnparseable);
    assert_eq!(d.operation, Some(Operation::ChatCompletions));
}

#[test]
fn escaped_model_key_is_refused() {
    let d = Req::post("/openai/v1/chat/completions")
        .body(&format!(r#"{{"mod\u0065l":"{SONNET_35}","messages":[]}}"#))
        .decide(&policy());
    assert_refused(&d, Reason::BodyUnparseable);
}

#[test]
fn non_json_content_type_is_refused_before_reading_the_body() {
    let p = policy();
    let req = chat(SONNET_35)
        .without_header("content-type")
        .header("content-type", "text/plain");
    match req.with_facts(|f| evaluate_head(&p, f)) {
        HeadOutcome::Decided(d) => assert_refused(&d, Reason::BodyUnparseable),
        other => panic!("expected a decision, got {other:?}"),
    }
}

#[test]
fn encoded_body_is_refused() {
    let d = chat(SONNET_35)
        .header("content-encoding", "gzip")
        .decide(&policy());
    assert_refused(&d, Reason::BodyUnparseable);
}

#[test]
fn declared_body_over_the_limit_is_refused_with_413() {
    let p = policy();
    let req = chat(SONNET_35)
        .without_header("content-length")
        .header("content-length", "4097");
    match req.with_facts(|f| evaluate_head(&p, f)) {
        HeadOutcome::Decided(d) => {
            assert_refused(&d, Reason::BodyTooLarge);
            assert_eq!(d.status(), 413);
        }
        other => panic!("expected a decision, got {other:?}"),
    }
}

#[test]
fn body_longer_than_the_limit_is_refused_with_413() {
    let p = policy();
    let pending = Pending {
        operation: Operation::ChatCompletions,
        max_body_bytes: 10,
        endpoint_region: "us-east-1".into(),
        principal: None,
        path_resource: None,
    };
    let d = evaluate_body(
        &p,
        &pending,
        br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0"}"#,
    );
    assert_refused(&d, Reason::BodyTooLarge);
    assert_eq!(d.operation, Some(Operation::ChatCompletions));
}

#[test]
fn empty_body_for_a_body_field_operation_is_unparseable() {
    let d = Req::post("/openai/v1/chat/completions")
        .body("")
        .decide(&policy());
    assert_refused(&d, Reason::BodyUnparseable);
    let p = policy();
    let pending = Pending {
        operation: Operation::AnthropicMessages,
        max_body_bytes: 4096,
        endpoint_region: "us-east-1".into(),
        principal: None,
        path_resource: None,
    };
    assert_refused(&evaluate_body(&p, &pending, b""), Reason::BodyUnparseable);
}

#[test]
fn body_model_arn_goes_through_region_checks() {
    let arn = format!("arn:aws:bedrock:eu-west-1::foundation-model/{SONNET_35}");
    assert_refused(&chat(&arn).decide(&policy()), Reason::RegionNotAllowed);
}

#[test]
fn body_model_with_bad_characters_is_unparseable() {
    assert_refused(
        &chat("anthropic.claude-3-5-sonnet-20240620-v1:0 ").decide(&policy()),
        Reason::ModelUnparseable,
    );
}

// ---- agent runtime: several or no models ---------------------------------------------------

fn rag(model_arns: &[&str]) -> Req {
    let configs: Vec<Value> = model_arns
        .iter()
        .map(|arn| json!({ "knowledgeBaseId": "KB12345678", "modelArn": arn }))
        .collect();
    Req::post("/retrieveAndGenerate").json(json!({
        "input": { "text": "q" },
        "retrieveAndGenerateConfiguration": { "type": "KNOWLEDGE_BASE", "configs": configs }
    }))
}

#[test]
fn agent_request_is_allowed_when_every_model_is_allowed() {
    let a = format!("arn:aws:bedrock:us-east-1::foundation-model/{SONNET_35}");
    let b = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0";
    let d = rag(&[&a, b]).decide(&policy());
    assert_allowed(&d, "rag");
    assert_eq!(d.models.len(), 2);
}

#[test]
fn agent_request_is_refused_when_one_model_is_not_allowed() {
    let a = format!("arn:aws:bedrock:us-east-1::foundation-model/{SONNET_35}");
    let b = "arn:aws:bedrock:us-east-1::foundation-model/cohere.command-r-v1:0";
    let d = rag(&[&a, b]).decide(&policy());
    assert_refused(&d, Reason::ModelNotAllowed);
    assert!(d.detail.contains("cohere.command-r-v1:0"), "{}", d.detail);
}

#[test]
fn agent_request_without_model_is_decided_on_its_operation() {
    let body = json!({ "retrievalQuery": { "text": "q" } });
    let d = Req::post("/knowledgebases/KB12345678/retrieve")
        .json(body.clone())
        .decide(&policy());
    assert_allowed(&d, "retrieve");
    assert!(d.models.is_empty());
    // A request that names no model is allowed by a rule that names its operation
    // explicitly, whatever models the rule lists ...
    let d = Req::post("/retrieveAndGenerate")
        .json(json!({ "input": { "text": "q" } }))
        .decide(&policy());
    assert_allowed(&d, "rag");
    assert!(d.models.is_empty());
    // ... never by a rule that only lists models (it says nothing about the operation).
    let mut v = bundle();
    for rule in v["rules"].as_array_mut().unwrap() {
        if rule["id"] == "rag" {
            rule.as_object_mut().unwrap().remove("operations");
        }
    }
    let d = Req::post("/retrieveAndGenerate")
        .json(json!({ "input": { "text": "q" } }))
        .decide(&policy_from(&v));
    assert_refused(&d, Reason::OperationNotAllowed);
}

// ---- operations without a model ------------------------------------------------------------

#[test]
fn model_less_operation_is_allowed_by_an_operation_rule() {
    let d = Req::post("/guardrail/abc123/version/1/apply")
        .json(json!({ "source": "INPUT", "content": [] }))
        .decide(&policy());
    assert_allowed(&d, "guardrails");
    assert_eq!(d.operation, Some(Operation::ApplyGuardrail));
    assert_allowed(&Req::get("/async-invoke").decide(&policy()), "guardrails");
}

#[test]
fn model_less_operation_without_a_rule_is_not_allowed() {
    let d = Req::get("/async-invoke/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aasync-invoke%2Fabcdef123456").decide(&policy());
    assert_eq!(d.operation, Some(Operation::GetAsyncInvoke), "{d:?}");
    assert_refused(&d, Reason::OperationNotAllowed);
}

#[test]
fn deny_rule_without_models_blocks_an_operation() {
    let mut v = bundle();
    v["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "no-lists", "effect": "deny", "operations": ["ListAsyncInvokes"] }));
    let d = Req::get("/async-invoke").decide(&policy_from(&v));
    assert_refused(&d, Reason::OperationNotAllowed);
    assert_eq!(d.rule_id.as_deref(), Some("no-lists"));
}

// ---- principals ----------------------------------------------------------------------------

fn verified(subject: &str, groups: &[&str], claims: Value) -> policies::identity::Caller {
    let claims = match claims {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    policies::identity::Caller::Verified(std::sync::Arc::new(policies::identity::Principal {
        issuer: "https://idp.example".into(),
        subject: subject.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        claims,
    }))
}

fn identity_policy() -> CompiledPolicy {
    let mut v = bundle();
    v["identity"] = json!({ "providers": [{
        "name": "idp", "issuer": "https://idp.example", "audiences": ["bedrock"], "algorithms": ["RS256"],
        "remote_jwks": { "cluster": "idp", "path": "/jwks" }
    }]});
    v["rules"].as_array_mut().unwrap().push(json!({
        "id": "team-cohere", "effect": "allow", "principals": { "groups": ["ml"] },
        "models": ["cohere.command-r-v1:0"], "operations": ["Converse"]
    }));
    v["rules"].as_array_mut().unwrap().push(json!({
        "id": "team-claims", "effect": "allow",
        "principals": { "subjects": ["svc-*"], "claims": { "team": ["research-*"] } },
        "models": ["mistral.mistral-large-2407-v1:0"], "operations": ["Converse"]
    }));
    v["rules"].as_array_mut().unwrap().push(json!({
        "id": "deny-interns", "effect": "deny", "principals": { "groups": ["interns"] }, "models": ["*"]
    }));
    policy_from(&v)
}

#[test]
fn bundle_with_identity_refuses_a_request_without_a_verified_caller() {
    let p = identity_policy();
    let d = Req::converse(SONNET_35).decide(&p);
    assert_refused(&d, Reason::IdentityMissing);
    let d = Req::converse(SONNET_35)
        .by_caller(policies::identity::Caller::Missing)
        .decide(&p);
    assert_refused(&d, Reason::IdentityMissing);
}

#[test]
fn invalid_token_is_refused_with_the_verifier_detail() {
    let p = identity_policy();
    let d = Req::converse(SONNET_35)
        .by_caller(policies::identity::Caller::Invalid(
            policies::identity::IdentityError::Expired,
        ))
        .decide(&p);
    assert_refused(&d, Reason::IdentityInvalid);
    assert_eq!(d.detail, "expired");
}

#[test]
fn unavailable_keys_are_policy_unavailable_never_allowed() {
    let d = Req::converse(SONNET_35)
        .by_caller(policies::identity::Caller::Unavailable)
        .decide(&identity_policy());
    assert_refused(&d, Reason::PolicyUnavailable);
}

#[test]
fn group_rule_allows_members_only() {
    let p = identity_policy();
    let member =
        Req::converse("cohere.command-r-v1:0").by_caller(verified("alice", &["ml"], json!({})));
    assert_allowed(&member.decide(&p), "team-cohere");
    let outsider =
        Req::converse("cohere.command-r-v1:0").by_caller(verified("bob", &["mlx"], json!({})));
    assert_refused(&outsider.decide(&p), Reason::ModelNotAllowed);
}

#[test]
fn rule_without_principals_allows_every_verified_caller() {
    let d = Req::converse(SONNET_35)
        .by_caller(verified("bob", &[], json!({})))
        .decide(&identity_policy());
    assert_allowed(&d, "claude");
}

#[test]
fn deny_rule_on_a_group_wins_over_allow() {
    let d = Req::converse("cohere.command-r-v1:0")
        .by_caller(verified("carol", &["ml", "interns"], json!({})))
        .decide(&identity_policy());
    assert_refused(&d, Reason::ModelDenied);
    assert_eq!(d.rule_id.as_deref(), Some("deny-interns"));
}

#[test]
fn subject_and_claim_conditions_must_both_match() {
    let p = identity_policy();
    let model = "mistral.mistral-large-2407-v1:0";
    let both = verified("svc-batch", &[], json!({ "team": "research-nlp" }));
    assert_allowed(
        &Req::converse(model).by_caller(both).decide(&p),
        "team-claims",
    );
    let wrong_subject = verified("alice", &[], json!({ "team": "research-nlp" }));
    assert_refused(
        &Req::converse(model).by_caller(wrong_subject).decide(&p),
        Reason::ModelNotAllowed,
    );
    let wrong_claim = verified("svc-batch", &[], json!({ "team": "sales" }));
    assert_refused(
        &Req::converse(model).by_caller(wrong_claim).decide(&p),
        Reason::ModelNotAllowed,
    );
    let claim_array = verified(
        "svc-batch",
        &[],
        json!({ "team": ["sales", "research-cv"] }),
    );
    assert_allowed(
        &Req::converse(model).by_caller(claim_array).decide(&p),
        "team-claims",
    );
}

// ---- decision shape ------------------------------------------------------------------------

#[test]
fn deny_message_is_aws_shaped_and_names_the_reason() {
    let d = Req::converse("anthropic.claude-opus-4-1-20250805-v1:0").decide(&policy());
    assert_eq!(d.status(), 403);
    assert!(
        d.message().starts_with("bedrock-guard: model_denied: "),
        "{}",
        d.message()
    );
    assert!(d.error_body().contains("no-opus"));
}

// ---- destination: zonal names, ports, original destination --------------------------------

const VPCE_ZONAL: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234-us-east-1b.bedrock-runtime.us-east-1.vpce.amazonaws.com";

#[test]
fn zonal_vpce_name_reaches_its_listed_endpoint() {
    assert_allowed(
        &Req::converse(SONNET_35)
            .authority(VPCE_ZONAL)
            .decide(&policy()),
        "claude",
    );
    let other_region = VPCE_ZONAL.replace("-us-east-1b.", "-us-west-2b.");
    let d = Req::converse(SONNET_35)
        .authority(&other_region)
        .decide(&policy());
    assert_refused(&d, Reason::DestinationNotPrivatelink);
}

#[test]
fn plain_http_port_80_is_the_endpoint_and_8443_is_not() {
    assert_allowed(
        &Req::converse(SONNET_35)
            .authority(&format!("{HOST}:80"))
            .decide(&policy()),
        "claude",
    );
    let d = Req::converse(SONNET_35)
        .authority(&format!("{HOST}:8443"))
        .decide(&policy());
    assert_refused(&d, Reason::DestinationNotPrivatelink);
    assert!(d.detail.contains("port"), "{d:?}");
}

#[test]
fn original_destination_inside_the_endpoint_cidrs_is_allowed() {
    let d = Req::converse(SONNET_35)
        .original_destination("10.1.2.3")
        .decide(&policy());
    assert_allowed(&d, "claude");
}

#[test]
fn original_destination_outside_the_endpoint_cidrs_is_refused() {
    let d = Req::converse(SONNET_35)
        .original_destination("52.94.133.131")
        .decide(&policy());
    assert_refused(&d, Reason::DestinationNotPrivatelink);
    assert!(d.detail.contains("outside the endpoint's cidrs"), "{d:?}");
}

#[test]
fn original_destination_to_a_vpce_entry_without_cidrs_is_refused() {
    let d = Req::converse(SONNET_35)
        .authority(VPCE)
        .original_destination("10.1.2.3")
        .decide(&policy());
    assert_refused(&d, Reason::DestinationNotPrivatelink);
    assert!(d.detail.contains("cannot be verified"), "{d:?}");
}

// ---- credentials ---------------------------------------------------------------------------

const SIG: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
const SHORT_KEY: &str = "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249";
const LONG_KEY: &str = "ABSKQmVkcm9ja0FQSUtleS1hYmNkLWF0LTEyMzQ1Njc4OTAxMjpzZWNyZXQ=";

fn sigv4(region: &str, service: &str, signed: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250830/{region}/{service}/aws4_request, SignedHeaders={signed}, Signature={SIG}"
    )
}

fn policy_with_credentials(bearer: bool, long_term: bool) -> CompiledPolicy {
    let mut v = bundle();
    v["credentials"] =
        json!({ "allow_bearer_api_keys": bearer, "allow_long_term_api_keys": long_term });
    policy_from(&v)
}

#[test]
fn sigv4_scoped_to_the_endpoint_region_and_bedrock_is_allowed() {
    let d = Req::converse(SONNET_35)
        .header(
            "authorization",
            &sigv4("us-east-1", "bedrock", "content-type;host;x-amz-date"),
        )
        .decide(&policy());
    assert_allowed(&d, "claude");
    let bare_commas = sigv4("us-east-1", "bedrock", "host").replace(", ", ",");
    let d = Req::converse(SONNET_35)
        .header("authorization", &bare_commas)
        .decide(&policy());
    assert_allowed(&d, "claude");
}

#[test]
fn sigv4_scope_in_another_region_is_region_not_allowed() {
    let d = Req::converse(SONNET_35)
        .header("authorization", &sigv4("us-west-2", "bedrock", "host"))
        .decide(&policy());
    assert_refused(&d, Reason::RegionNotAllowed);
    assert!(d.detail.contains("region us-west-2"), "{d:?}");
    assert!(!d.detail.contains(SIG));
}

#[test]
fn sigv4_scope_for_service_bedrock_runtime_is_refused() {
    let d = Req::converse(SONNET_35)
        .header(
            "authorization",
            &sigv4("us-east-1", "bedrock-runtime", "host"),
        )
        .decide(&policy());
    assert_refused(&d, Reason::RegionNotAllowed);
    assert!(d.detail.contains("service bedrock-runtime"), "{d:?}");
    assert!(d.detail.contains("expects bedrock"), "{d:?}");
}

#[test]
fn mantle_endpoint_expects_the_bedrock_mantle_signing_name() {
    const MANTLE: &str = "bedrock-mantle.us-east-1.api.aws";
    let mut v = bundle();
    v["endpoints"].as_array_mut().unwrap().push(
        json!({ "host": MANTLE, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }),
    );
    let p = policy_from(&v);
    let req = chat("us.anthropic.claude-3-5-sonnet-20241022-v2:0").authority(MANTLE);
    let d = req
        .clone()
        .header(
            "authorization",
            &sigv4("us-east-1", "bedrock-mantle", "host"),
        )
        .decide(&p);
    assert_allowed(&d, "claude");
    let d = req
        .header("authorization", &sigv4("us-east-1", "bedrock", "host"))
        .decide(&p);
    assert_refused(&d, Reason::RegionNotAllowed);
    assert!(d.detail.contains("expects bedrock-mantle"), "{d:?}");
}

#[test]
fn malformed_sigv4_is_header_invalid() {
    for header in [
        sigv4("us-east-1", "bedrock", "host").replace(&format!(", Signature={SIG}"), ""),
        format!(
            "{}, Credential=AKIAIOSFODNN7EXAMPLE/20250830/us-west-2/bedrock/aws4_request",
            sigv4("us-east-1", "bedrock", "host")
        ),
        sigv4("us-east-1", "bedrock", "host").replace("AWS4-HMAC-SHA256", "aws4-hmac-sha256"),
        "Basic dXNlcjpwdw==".to_string(),
    ] {
        let d = Req::converse(SONNET_35)
            .header("authorization", &header)
            .decide(&policy());
        assert_refused(&d, Reason::HeaderInvalid);
    }
}

#[test]
fn signing_the_identity_header_is_header_invalid_when_identity_is_verified() {
    let signed = sigv4(
        "us-east-1",
        "bedrock",
        "host;x-amz-date;x-workload-identity",
    );
    let d = Req::converse(SONNET_35)
        .header("authorization", &signed)
        .by_caller(verified("svc", &[], json!({})))
        .decide(&identity_policy());
    assert_refused(&d, Reason::HeaderInvalid);
    assert!(d.detail.contains("x-workload-identity"), "{d:?}");
}

#[test]
fn signing_a_header_named_like_the_identity_header_is_fine_without_identity() {
    // Without identity providers the filter never removes that header, so signing it is harmless.
    let signed = sigv4(
        "us-east-1",
        "bedrock",
        "host;x-amz-date;x-workload-identity",
    );
    let d = Req::converse(SONNET_35)
        .header("authorization", &signed)
        .decide(&policy());
    assert_allowed(&d, "claude");
}

#[test]
fn bedrock_api_keys_follow_the_credentials_settings() {
    // (allow_bearer_api_keys, allow_long_term_api_keys) -> (short-term allowed, long-term allowed)
    let cases = [
        ((false, false), (false, false)),
        ((true, false), (true, false)),
        ((true, true), (true, true)),
    ];
    for ((bearer, long_term), (short_ok, long_ok)) in cases {
        let p = policy_with_credentials(bearer, long_term);
        for (key, ok, kind) in [
            (SHORT_KEY, short_ok, "short-term Bedrock API key"),
            (LONG_KEY, long_ok, "long-term Bedrock API key"),
        ] {
            let d = Req::converse(SONNET_35)
                .header("authorization", &format!("Bearer {key}"))
                .decide(&p);
            if ok {
                assert_allowed(&d, "claude");
            } else {
                assert_refused(&d, Reason::BearerKeyNotAllowed);
                assert!(d.detail.contains(kind), "{d:?}");
                assert!(!d.detail.contains(key));
            }
        }
    }
}

#[test]
fn api_key_in_x_api_key_is_a_bearer_key_too() {
    let req = Req::post("/anthropic/v1/messages")
        .json(json!({ "model": SONNET_35, "max_tokens": 10, "messages": [] }))
        .header("x-api-key", SHORT_KEY);
    // Refused at the head, before the body is read.
    let p = policy();
    let outcome = req.with_facts(|f| evaluate_head(&p, f));
    match outcome {
        HeadOutcome::Decided(d) => assert_refused(&d, Reason::BearerKeyNotAllowed),
        other => panic!("expected a head refusal, got {other:?}"),
    }
    assert_allowed(&req.decide(&policy_with_credentials(true, false)), "claude");
    let long = Req::post("/anthropic/v1/messages")
        .json(json!({ "model": SONNET_35, "max_tokens": 10, "messages": [] }))
        .header("x-api-key", LONG_KEY);
    let d = long.decide(&policy_with_credentials(true, false));
    assert_refused(&d, Reason::BearerKeyNotAllowed);
    assert!(d.detail.contains("long-term Bedrock API key"), "{d:?}");
}

#[test]
fn unknown_bearer_token_needs_every_bearer_setting() {
    let req = Req::converse(SONNET_35).header("authorization", "Bearer sk-something-else");
    assert_refused(&req.decide(&policy()), Reason::BearerKeyNotAllowed);
    assert_refused(
        &req.decide(&policy_with_credentials(true, false)),
        Reason::BearerKeyNotAllowed,
    );
    assert_allowed(&req.decide(&policy_with_credentials(true, true)), "claude");
}

#[test]
fn authorization_and_x_api_key_together_are_header_invalid() {
    let d = Req::converse(SONNET_35)
        .header("authorization", &sigv4("us-east-1", "bedrock", "host"))
        .header("x-api-key", SHORT_KEY)
        .decide(&policy_with_credentials(true, true));
    assert_refused(&d, Reason::HeaderInvalid);
}

#[test]
fn authorization_carrying_the_identity_token_is_not_a_credential() {
    let mut v = bundle();
    v["identity"] = json!({ "header": "authorization", "providers": [{
        "name": "idp", "issuer": "https://idp.example", "audiences": ["bedrock"], "algorithms": ["RS256"],
        "remote_jwks": { "cluster": "idp", "path": "/jwks" }
    }]});
    let d = Req::converse(SONNET_35)
        .header("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
        .by_caller(verified("svc", &[], json!({})))
        .decide(&policy_from(&v));
    assert_allowed(&d, "claude");
}

#[test]
fn credential_refusals_are_recorded_in_a_dry_run_bundle() {
    let d = Req::converse(SONNET_35)
        .header("authorization", &format!("Bearer {SHORT_KEY}"))
        .decide(&dry_run_policy());
    assert_eq!(d.reason, Reason::BearerKeyNotAllowed);
    assert_eq!(d.mode, Mode::DryRun);
}

// ---- cross-region profile geographies ------------------------------------------------------

fn policy_with_geographies(geographies: Value) -> CompiledPolicy {
    let mut v = bundle();
    v["network"] = json!({ "profile_geographies": geographies });
    policy_from(&v)
}

#[test]
fn global_profile_is_refused_when_geographies_are_us_only() {
    let p = policy_with_geographies(json!(["us"]));
    let d = Req::converse("global.anthropic.claude-sonnet-4-5-20250929-v1:0").decide(&p);
    assert_refused(&d, Reason::RegionNotAllowed);
    assert_eq!(
        d.detail,
        "cross-region profile geography `global` is not allowed"
    );
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0";
    assert_refused(&Req::converse(arn).decide(&p), Reason::RegionNotAllowed);
    assert_allowed(
        &Req::converse("us.anthropic.claude-3-5-sonnet-20241022-v2:0").decide(&p),
        "claude",
    );
}

#[test]
fn eu_profile_on_a_us_endpoint_is_refused() {
    let d = Req::converse("eu.anthropic.claude-sonnet-4-20250514-v1:0").decide(&policy());
    assert_refused(&d, Reason::RegionNotAllowed);
    assert!(
        d.detail.contains("`eu`") && d.detail.contains("us-east-1"),
        "{d:?}"
    );
    for model in [
        "apac.anthropic.claude-sonnet-4-20250514-v1:0",
        "jp.anthropic.claude-haiku-4-5-20251001-v1:0",
        "ca.anthropic.claude-sonnet-4-20250514-v1:0",
        "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ] {
        assert_refused(
            &Req::converse(model).decide(&policy()),
            Reason::RegionNotAllowed,
        );
    }
    // Also when the model is carried in the body.
    assert_refused(
        &chat("eu.anthropic.claude-sonnet-4-20250514-v1:0").decide(&policy()),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn us_profile_on_a_us_endpoint_is_allowed() {
    assert_allowed(
        &Req::converse("us.anthropic.claude-3-5-sonnet-20241022-v2:0").decide(&policy()),
        "claude",
    );
    assert_allowed(
        &chat("us.anthropic.claude-3-5-sonnet-20241022-v2:0").decide(&policy()),
        "claude",
    );
}

#[test]
fn us_profile_on_a_gov_cloud_endpoint_is_refused_and_us_gov_is_not() {
    let d = Req::converse("us.anthropic.claude-3-5-sonnet-20241022-v2:0")
        .authority(GOV)
        .decide(&policy());
    assert_refused(&d, Reason::RegionNotAllowed);
    let d = Req::converse("us-gov.anthropic.claude-3-5-sonnet-20241022-v2:0")
        .authority(GOV)
        .decide(&policy());
    // Past the geography check; no rule allows this profile.
    assert_refused(&d, Reason::ModelNotAllowed);
}

#[test]
fn unknown_geography_is_allowed_only_when_listed() {
    let mut v = bundle();
    v["rules"].as_array_mut().unwrap().push(
        json!({ "id": "sa", "effect": "allow", "models": ["sa.*"], "operations": ["Converse"] }),
    );
    let model = "sa.anthropic.claude-sonnet-4-20250514-v1:0";
    let d = Req::converse(model).decide(&policy_from(&v));
    assert_refused(&d, Reason::RegionNotAllowed);
    assert!(d.detail.contains("not a known geography"), "{d:?}");
    v["network"] = json!({ "profile_geographies": ["us", "sa"] });
    assert_allowed(&Req::converse(model).decide(&policy_from(&v)), "sa");
}

#[test]
fn empty_geography_list_refuses_every_cross_region_profile() {
    let p = policy_with_geographies(json!([]));
    assert_refused(
        &Req::converse("us.anthropic.claude-3-5-sonnet-20241022-v2:0").decide(&p),
        Reason::RegionNotAllowed,
    );
    assert_allowed(&Req::converse(SONNET_35).decide(&p), "claude");
}

#[test]
fn listing_a_geography_does_not_make_it_serve_another_region() {
    let p = policy_with_geographies(json!(["us", "eu"]));
    assert_refused(
        &Req::converse("eu.anthropic.claude-sonnet-4-20250514-v1:0").decide(&p),
        Reason::RegionNotAllowed,
    );
}

// ---- refusals before the rules record the model the path names -----------------------------

#[track_caller]
fn assert_refused_naming(d: &Decision, reason: Reason, model: &str) {
    assert_refused(d, reason);
    assert_eq!(d.models, vec![model.to_string()], "{d:?}");
}

#[test]
fn destination_refusal_records_the_path_model() {
    let d = Req::converse(SONNET_35)
        .authority("bedrock-runtime.us-west-2.amazonaws.com")
        .decide(&policy());
    assert_refused_naming(&d, Reason::DestinationNotPrivatelink, SONNET_35);
    assert_eq!(d.operation, Some(Operation::Converse));
    let d = Req::converse(SONNET_35)
        .original_destination("52.94.133.131")
        .decide(&policy());
    assert_refused_naming(&d, Reason::DestinationNotPrivatelink, SONNET_35);
}

#[test]
fn sigv4_scope_refusal_records_the_path_model() {
    let d = Req::converse(SONNET_35)
        .header("authorization", &sigv4("us-west-2", "bedrock", "host"))
        .decide(&policy());
    assert_refused_naming(&d, Reason::RegionNotAllowed, SONNET_35);
    assert!(d.detail.contains("credential scope"), "{d:?}");
    let d = Req::converse(SONNET_35)
        .header("authorization", "Basic dXNlcjpwdw==")
        .decide(&policy());
    assert_refused_naming(&d, Reason::HeaderInvalid, SONNET_35);
}

#[test]
fn bearer_key_refusal_records_the_path_model() {
    let d = Req::converse(SONNET_35)
        .header("authorization", &format!("Bearer {SHORT_KEY}"))
        .decide(&policy());
    assert_refused_naming(&d, Reason::BearerKeyNotAllowed, SONNET_35);
    let d = Req::converse(SONNET_35)
        .header("authorization", "Bearer sk-something-else")
        .decide(&policy());
    assert_refused_naming(&d, Reason::BearerKeyNotAllowed, SONNET_35);
}

#[test]
fn identity_refusals_record_the_path_model() {
    use policies::identity::{Caller, IdentityError};
    let p = identity_policy();
    let missing = Req::converse(SONNET_35).decide(&p);
    assert_refused_naming(&missing, Reason::IdentityMissing, SONNET_35);
    let invalid = Req::converse(SONNET_35)
        .by_caller(Caller::Invalid(IdentityError::LifetimeTooLong))
        .decide(&p);
    assert_refused_naming(&invalid, Reason::IdentityInvalid, SONNET_35);
    assert_eq!(invalid.detail, "lifetime_too_long");
    let unavailable = Req::converse(SONNET_35)
        .by_caller(Caller::Unavailable)
        .decide(&p);
    assert_refused_naming(&unavailable, Reason::PolicyUnavailable, SONNET_35);
}

#[test]
fn early_refusal_records_a_model_arn_canonically() {
    // The ARN as boto3 sends it (`:` and `/` percent-encoded), recorded decoded.
    let d = Req::converse(APP_PROFILE).decide(&identity_policy());
    assert_refused_naming(&d, Reason::IdentityMissing, APP_PROFILE);
}

#[test]
fn early_refusal_records_no_model_that_does_not_parse() {
    // Double-encoded (`%253A`) and upper-case ids would be refused at the model step: the
    // earlier refusal keeps its reason and records no model.
    let double = Req::post("/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse")
        .authority("bedrock-runtime.us-west-2.amazonaws.com")
        .decide(&policy());
    assert_refused(&double, Reason::DestinationNotPrivatelink);
    assert!(double.models.is_empty(), "{double:?}");
    let upper = Req::converse("Anthropic.Claude-3-Haiku-20240307-v1:0").decide(&identity_policy());
    assert_refused(&upper, Reason::IdentityMissing);
    assert!(upper.models.is_empty(), "{upper:?}");
}

#[test]
fn early_refusal_of_a_body_carried_model_reads_no_body() {
    // Refused at the head: the body (which names a model) is not read for a refusal.
    let d = chat(SONNET_35)
        .header("authorization", &format!("Bearer {SHORT_KEY}"))
        .decide(&policy());
    assert_refused(&d, Reason::BearerKeyNotAllowed);
    assert_eq!(d.operation, Some(Operation::ChatCompletions));
    assert!(d.models.is_empty(), "{d:?}");
}

#[test]
fn early_refusal_in_a_dry_run_bundle_records_the_model_too() {
    let d = Req::converse(SONNET_35)
        .authority("bedrock-runtime.us-west-2.amazonaws.com")
        .decide(&dry_run_policy());
    assert_eq!(d.reason, Reason::DestinationNotPrivatelink);
    assert_eq!(d.mode, Mode::DryRun);
    assert_eq!(d.models, vec![SONNET_35.to_string()]);
}

#[test]
fn audit_record_of_an_identity_refusal_names_the_model() {
    let d = Req::converse(SONNET_35).decide(&identity_policy());
    let record = policies::audit::AuditRecord::from_decision(&d, 0);
    let line: Value = serde_json::from_str(&record.to_json_line()).unwrap();
    assert_eq!(line["reason"], "identity_missing");
    assert_eq!(line["eventName"], "Converse");
    assert_eq!(line["requestParameters"], json!({ "modelId": SONNET_35 }));
}
