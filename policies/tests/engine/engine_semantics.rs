//! Issue 9: what a bundle says is what the engine enforces. Named tests per class, and a
//! property over generated bundles and requests: whenever the engine allows, the model it allows
//! matches no enforced deny pattern (compared without regard to case), has an allowed geography,
//! and is not opaque unless an ARN pattern allowed it.

use policies::matcher::Pattern;
use policies::request::{parse_body_model_id, ModelRef};
use policies::{decide, CompiledPolicy, Decision, Reason, RequestFacts};
use proptest::prelude::*;
use serde_json::{json, Value};

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const AGENT_HOST: &str = "bedrock-agent-runtime.us-east-1.amazonaws.com";
const ACCOUNT: &str = "123456789012";

fn base_bundle(rules: Value) -> Value {
    json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "semantics", "revision": "1" },
        "endpoints": [
            { "host": HOST, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] },
            { "host": AGENT_HOST, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }
        ],
        "accounts": [ACCOUNT],
        "rules": rules
    })
}

fn compile(v: &Value) -> Result<CompiledPolicy, policies::BundleError> {
    CompiledPolicy::from_json(v.to_string().as_bytes())
}

fn policy(v: &Value) -> CompiledPolicy {
    compile(v).expect("bundle compiles")
}

fn demo_like() -> CompiledPolicy {
    policy(&base_bundle(json!([
        { "id": "claude", "effect": "allow", "models": ["*"], "operations": ["Converse", "StartAsyncInvoke", "InvokeInlineAgent", "Retrieve"] },
        { "id": "no-opus", "effect": "deny", "models": ["*claude-opus*"] },
        { "id": "no-meta", "effect": "deny", "models": ["meta.*"] }
    ])))
}

fn encode(id: &str) -> String {
    id.replace(':', "%3A").replace('/', "%2F")
}

fn converse(p: &CompiledPolicy, model: &str) -> Decision {
    let path = format!("/model/{}/converse", encode(model));
    let facts = RequestFacts {
        method: b"POST",
        path: path.as_bytes(),
        authority: HOST.as_bytes(),
        scheme: b"https",
        ..RequestFacts::default()
    };
    decide(p, &facts)
}

fn post_json(p: &CompiledPolicy, authority: &str, path: &str, body: &Value) -> Decision {
    let body = body.to_string();
    let headers: [(&str, &[u8]); 1] = [("content-type", b"application/json")];
    let facts = RequestFacts {
        method: b"POST",
        path: path.as_bytes(),
        authority: authority.as_bytes(),
        scheme: b"https",
        headers: &headers,
        body: Some(body.as_bytes()),
        ..RequestFacts::default()
    };
    decide(p, &facts)
}

fn get(p: &CompiledPolicy, path: &str) -> Decision {
    let facts = RequestFacts {
        method: b"GET",
        path: path.as_bytes(),
        authority: HOST.as_bytes(),
        scheme: b"https",
        ..RequestFacts::default()
    };
    decide(p, &facts)
}

fn refused(d: &Decision, reason: Reason) {
    assert_eq!(d.reason, reason, "{d:?}");
}

// ---- 1. case -------------------------------------------------------------------------------

#[test]
fn case_variant_of_a_denied_model_is_model_invalid() {
    let p = demo_like();
    refused(
        &converse(&p, "us.anthropic.claude-Opus-4-1-20250805-v1:0"),
        Reason::ModelInvalid,
    );
    refused(
        &converse(&p, "Meta.llama3-8b-instruct-v1:0"),
        Reason::ModelInvalid,
    );
    // The lower-case forms are decided by the deny rules.
    refused(
        &converse(&p, "us.anthropic.claude-opus-4-1-20250805-v1:0"),
        Reason::ModelDenied,
    );
    refused(
        &converse(&p, "meta.llama3-8b-instruct-v1:0"),
        Reason::ModelDenied,
    );
}

#[test]
fn upper_case_geography_prefix_is_model_invalid_not_a_base_model() {
    let mut v = base_bundle(json!([
        { "id": "any", "effect": "allow", "models": ["*"], "operations": ["Converse"] }
    ]));
    v["network"] = json!({ "profile_geographies": ["us"] });
    let p = policy(&v);
    refused(
        &converse(&p, "EU.anthropic.claude-sonnet-4-20250514-v1:0"),
        Reason::ModelInvalid,
    );
    refused(
        &converse(&p, "eu.anthropic.claude-sonnet-4-20250514-v1:0"),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn upper_case_in_lower_case_arn_types_is_model_invalid() {
    let p = demo_like();
    for arn in [
        "arn:aws:bedrock:us-east-1::foundation-model/Anthropic.claude-3",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/US.anthropic.claude-3",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/ABC123def456",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/ABC123def456",
    ] {
        refused(&converse(&p, arn), Reason::ModelInvalid);
    }
}

#[test]
fn deny_patterns_match_opaque_ids_without_regard_to_case() {
    let p = policy(&base_bundle(json!([
        { "id": "prompts", "effect": "allow", "models": ["arn:aws:bedrock:us-east-1:123456789012:prompt/*"], "operations": ["Converse"] },
        { "id": "no-bad-prompt", "effect": "deny", "models": ["arn:aws:bedrock:us-east-1:123456789012:prompt/badprompt1*"] }
    ])));
    refused(
        &converse(
            &p,
            "arn:aws:bedrock:us-east-1:123456789012:prompt/BADPROMPT1:1",
        ),
        Reason::ModelDenied,
    );
    assert!(converse(
        &p,
        "arn:aws:bedrock:us-east-1:123456789012:prompt/GOODPROMPT:1"
    )
    .is_allow());
}

// ---- 2. ARN resource types -----------------------------------------------------------------

#[test]
fn foundation_model_arn_with_geography_prefix_gets_profile_checks() {
    let p = demo_like();
    refused(
        &converse(
            &p,
            "arn:aws:bedrock:us-east-1::foundation-model/us.anthropic.claude-opus-4-1-20250805-v1:0",
        ),
        Reason::ModelDenied,
    );
    refused(
        &converse(
            &p,
            "arn:aws:bedrock:us-east-1::foundation-model/eu.anthropic.claude-sonnet-4-20250514-v1:0",
        ),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn application_profile_shaped_ids_under_transparent_types_are_opaque() {
    let p = demo_like();
    for arn in [
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/a1b2c3d4e5f6",
        "arn:aws:bedrock:us-east-1::foundation-model/a1b2c3d4e5f6",
    ] {
        let m = parse_body_model_id(arn).unwrap();
        assert!(m.is_opaque(), "{arn}");
        refused(&converse(&p, arn), Reason::ModelNotAllowed);
    }
}

#[test]
fn two_dots_make_a_profile_whatever_the_first_label() {
    let p = demo_like();
    refused(
        &converse(&p, "u5.anthropic.claude-sonnet-4-20250514-v1:0"),
        Reason::RegionNotAllowed,
    );
}

// ---- 3. rules that omit models -------------------------------------------------------------

#[test]
fn allow_rule_naming_a_model_carrying_operation_must_name_models() {
    for ops in [
        json!(["StartAsyncInvoke", "GetAsyncInvoke", "ListAsyncInvokes"]),
        json!(["Retrieve"]),
        json!(["Converse"]),
        json!(["InvokeInlineAgent"]),
    ] {
        let v = base_bundle(json!([{ "id": "r", "effect": "allow", "operations": ops }]));
        let e = compile(&v).expect_err("must be refused");
        assert!(e.has_path("rules[0].models"), "{e}");
    }
    // Operations that name no model may go without models.
    let v = base_bundle(json!([
        { "id": "reads", "effect": "allow", "operations": ["GetAsyncInvoke", "ListAsyncInvokes", "ApplyGuardrail"] }
    ]));
    assert!(compile(&v).is_ok());
}

#[test]
fn model_less_request_needs_a_rule_that_covers_its_operation() {
    let p = policy(&base_bundle(json!([
        { "id": "rerank", "effect": "allow", "models": ["amazon.rerank-*"], "operations": ["Retrieve"] },
        { "id": "models-only", "effect": "allow", "models": ["anthropic.*"] }
    ])));
    // Retrieve names its knowledge base: list it.
    let mut with_kb = base_bundle(json!([
        { "id": "rerank", "effect": "allow", "models": ["amazon.rerank-*"], "operations": ["Retrieve"] },
        { "id": "models-only", "effect": "allow", "models": ["anthropic.*"] }
    ]));
    with_kb["resources"] = json!({ "knowledge_bases": ["KB12345678"] });
    let pk = policy(&with_kb);
    let body = json!({ "retrievalQuery": { "text": "q" } });
    let d = post_json(
        &pk,
        AGENT_HOST,
        "/knowledgebases/KB12345678/retrieve",
        &body,
    );
    assert!(d.is_allow(), "{d:?}");
    assert_eq!(d.rule_id.as_deref(), Some("rerank"));
    // Without the knowledge base listed, Retrieve is refused before the rules.
    let d = post_json(&p, AGENT_HOST, "/knowledgebases/KB12345678/retrieve", &body);
    refused(&d, Reason::ResourceNotAllowed);
    // A rule that only lists models says nothing about a model-less operation.
    let d = post_json(
        &pk,
        AGENT_HOST,
        "/retrieveAndGenerate",
        &json!({ "input": { "text": "q" } }),
    );
    refused(&d, Reason::OperationNotAllowed);
}

#[test]
fn star_never_allows_an_opaque_resource() {
    let p = demo_like();
    refused(
        &converse(
            &p,
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
        ),
        Reason::ModelNotAllowed,
    );
    refused(
        &converse(&p, "my_provisioned_model"),
        Reason::ModelNotAllowed,
    );
}

// ---- 5. every ARN a request names ----------------------------------------------------------

#[test]
fn async_invocation_arn_in_the_path_is_checked() {
    let p = policy(&base_bundle(json!([
        { "id": "reads", "effect": "allow", "operations": ["GetAsyncInvoke"] }
    ])));
    let path = |arn: &str| format!("/async-invoke/{}", encode(arn));
    assert!(get(
        &p,
        &path("arn:aws:bedrock:us-east-1:123456789012:async-invoke/abcdefghijkl")
    )
    .is_allow());
    refused(
        &get(
            &p,
            &path("arn:aws:bedrock:us-east-1:999999999999:async-invoke/abcdefghijkl"),
        ),
        Reason::AccountNotAllowed,
    );
    refused(
        &get(
            &p,
            &path("arn:aws:bedrock:eu-west-1:123456789012:async-invoke/abcdefghijkl"),
        ),
        Reason::RegionNotAllowed,
    );
    refused(
        &get(
            &p,
            &path("arn:aws-cn:bedrock:us-east-1:123456789012:async-invoke/abcdefghijkl"),
        ),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn guardrail_in_the_path_is_listed_and_its_arn_checked() {
    let mut v = base_bundle(json!([
        { "id": "g", "effect": "allow", "operations": ["ApplyGuardrail"] }
    ]));
    v["resources"] = json!({ "guardrails": ["gr0abc123", "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1*"] });
    let p = policy(&v);
    let apply = |id: &str| {
        post_json(
            &p,
            HOST,
            &format!("/guardrail/{}/version/1/apply", encode(id)),
            &json!({ "source": "INPUT", "content": [] }),
        )
    };
    assert!(apply("gr0abc123").is_allow());
    assert!(apply("arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1xyz").is_allow());
    refused(&apply("other"), Reason::ResourceNotAllowed);
    refused(
        &apply("arn:aws:bedrock:us-east-1:999999999999:guardrail/gr1xyz"),
        Reason::AccountNotAllowed,
    );
    refused(
        &apply("arn:aws:bedrock:us-west-2:123456789012:guardrail/gr1xyz"),
        Reason::RegionNotAllowed,
    );
}

#[test]
fn model_arns_in_agent_bodies_are_checked_like_path_models() {
    let p = demo_like();
    let body = json!({
        "foundationModel": "anthropic.claude-3-haiku-20240307-v1:0",
        "knowledgeBases": [{ "retrievalConfiguration": { "vectorSearchConfiguration": {
            "rerankingConfiguration": { "bedrockRerankingConfiguration": { "modelConfiguration": {
                "modelArn": "arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0" } } } } } }]
    });
    refused(
        &post_json(&p, AGENT_HOST, "/agents/s1", &body),
        Reason::RegionNotAllowed,
    );
}

// ---- 6. side doors -------------------------------------------------------------------------

fn async_body(output: Value) -> Value {
    json!({ "modelId": "anthropic.claude-3-haiku-20240307-v1:0", "modelInput": { "s3Uri": "s3://anything/ignored" },
            "outputDataConfig": { "s3OutputDataConfig": output } })
}

#[test]
fn start_async_invoke_is_refused_when_no_output_location_is_listed() {
    let p = demo_like();
    refused(
        &post_json(
            &p,
            HOST,
            "/async-invoke",
            &async_body(json!({ "s3Uri": "s3://acme-out/a/" })),
        ),
        Reason::ResourceNotAllowed,
    );
}

#[test]
fn start_async_invoke_output_location_kms_key_and_owner_are_checked() {
    let mut v = base_bundle(json!([
        { "id": "any", "effect": "allow", "models": ["*"], "operations": ["StartAsyncInvoke"] }
    ]));
    v["resources"] = json!({
        "s3_outputs": ["s3://acme-out/async/*", "s3://acme-whole"],
        "kms_keys": ["arn:aws:kms:us-east-1:123456789012:key/*"]
    });
    let p = policy(&v);
    let ok = |o: Value| post_json(&p, HOST, "/async-invoke", &async_body(o));
    assert!(ok(json!({ "s3Uri": "s3://acme-out/async/run1/" })).is_allow());
    assert!(ok(json!({ "s3Uri": "s3://acme-whole/x" })).is_allow());
    assert!(ok(json!({ "s3Uri": "s3://acme-whole" })).is_allow());
    assert!(ok(
        json!({ "s3Uri": "s3://acme-out/async/r", "bucketOwner": ACCOUNT,
        "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/0123abcd-0123-abcd-0123-0123456789ab" })
    )
    .is_allow());
    for (o, reason) in [
        (
            json!({ "s3Uri": "s3://acme-out/elsewhere/" }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "s3Uri": "s3://acme-wholesale/x" }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "s3Uri": "s3://ACME-out/async/x" }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "s3Uri": "https://acme-out/async/x" }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "s3Uri": "s3://acme-out/async/x", "bucketOwner": "999999999999" }),
            Reason::AccountNotAllowed,
        ),
        (
            json!({ "s3Uri": "s3://acme-out/async/x", "kmsKeyId": "arn:aws:kms:us-east-1:999999999999:key/k" }),
            Reason::AccountNotAllowed,
        ),
        (
            json!({ "s3Uri": "s3://acme-out/async/x", "kmsKeyId": "alias/mine" }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "s3Uri": "s3://acme-out/async/x", "S3Uri": "s3://x/y" }),
            Reason::BodyUnparseable,
        ),
        (
            json!({ "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k" }),
            Reason::BodyUnparseable,
        ),
    ] {
        refused(&ok(o.clone()), reason);
    }
}

#[test]
fn inline_agent_resources_are_refused_unless_listed() {
    let mut v = base_bundle(json!([
        { "id": "agents", "effect": "allow",
          "models": ["anthropic.*", "arn:aws:bedrock:us-east-1:123456789012:agent-alias/AGENT00001/ALIAS00001"],
          "operations": ["InvokeInlineAgent"] }
    ]));
    v["resources"] = json!({
        "lambdas": ["arn:aws:lambda:us-east-1:123456789012:function:tools-*"],
        "knowledge_bases": ["KB12345678"],
        "guardrails": ["gr0abc123"],
        "kms_keys": ["arn:aws:kms:us-east-1:123456789012:key/*"]
    });
    let p = policy(&v);
    let agent = |extra: Value| {
        let mut body = json!({ "foundationModel": "anthropic.claude-3-haiku-20240307-v1:0", "inputText": "hi" });
        for (k, val) in extra.as_object().unwrap() {
            body[k] = val.clone();
        }
        post_json(&p, AGENT_HOST, "/agents/s1", &body)
    };
    let everything = json!({
        "actionGroups": [{ "actionGroupExecutor": { "lambda": "arn:aws:lambda:us-east-1:123456789012:function:tools-a" } }],
        "knowledgeBases": [{ "knowledgeBaseId": "KB12345678" }],
        "guardrailConfiguration": { "guardrailIdentifier": "gr0abc123", "guardrailVersion": "1" },
        "customerEncryptionKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0123",
        "collaboratorConfigurations": [{ "agentAliasArn": "arn:aws:bedrock:us-east-1:123456789012:agent-alias/AGENT00001/ALIAS00001" }]
    });
    assert!(agent(everything).is_allow());
    for (extra, reason) in [
        (
            json!({ "customOrchestration": { "executor": { "lambda": "arn:aws:lambda:us-east-1:123456789012:function:orch" } } }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "promptOverrideConfiguration": { "overrideLambda": "arn:aws:lambda:us-east-1:123456789012:function:p" } }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "collaborators": [{ "actionGroups": [{ "actionGroupExecutor": { "lambda": "arn:aws:lambda:us-east-1:123456789012:function:x" } }] }] }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "actionGroups": [{ "actionGroupExecutor": { "lambda": "arn:aws:lambda:us-west-2:123456789012:function:tools-a" } }] }),
            Reason::RegionNotAllowed,
        ),
        (
            json!({ "knowledgeBases": [{ "knowledgeBaseId": "KBOTHER" }] }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "guardrailConfiguration": { "guardrailIdentifier": "zz", "guardrailVersion": "1" } }),
            Reason::ResourceNotAllowed,
        ),
        (
            json!({ "customerEncryptionKeyArn": "arn:aws:kms:us-east-1:999999999999:key/0123" }),
            Reason::AccountNotAllowed,
        ),
        (
            json!({ "collaboratorConfigurations": [{ "agentAliasArn": "arn:aws:bedrock:us-east-1:123456789012:agent-alias/AGENT00002/ALIAS00002" }] }),
            Reason::ModelNotAllowed,
        ),
        (
            json!({ "actionGroups": [{ "actionGroupExecutor": { "lambda": 7 } }] }),
            Reason::BodyUnparseable,
        ),
        (
            json!({ "actionGroups": [{ "actionGroupExecutor": { "Lambda": "x" } }] }),
            Reason::BodyUnparseable,
        ),
    ] {
        refused(&agent(extra.clone()), reason);
    }
}

#[test]
fn escaped_spelling_of_a_resource_key_is_refused() {
    let p = demo_like();
    let body = r#"{"foundationModel":"anthropic.claude-3-haiku-20240307-v1:0","actionGroups":[{"actionGroupExecutor":{"lambd\u0061":"arn:aws:lambda:us-east-1:123456789012:function:x"}}]}"#;
    let headers: [(&str, &[u8]); 1] = [("content-type", b"application/json")];
    let facts = RequestFacts {
        method: b"POST",
        path: b"/agents/s1",
        authority: AGENT_HOST.as_bytes(),
        scheme: b"https",
        headers: &headers,
        body: Some(body.as_bytes()),
        ..RequestFacts::default()
    };
    refused(&decide(&p, &facts), Reason::BodyUnparseable);
}

#[test]
fn resource_lists_are_validated_with_their_paths() {
    let mut v = base_bundle(json!([]));
    v["resources"] = json!({
        "s3_outputs": ["s3://acme-*/x", "acme/x", "s3://ok-bucket/x"],
        "lambdas": ["arn:aws:s3:::bucket"],
        "kms_keys": ["key/123"],
        "knowledge_bases": ["this-is-not-an-id"],
        "guardrails": ["UPPER"]
    });
    let e = compile(&v).expect_err("invalid");
    for path in [
        "resources.s3_outputs[0]",
        "resources.s3_outputs[1]",
        "resources.lambdas[0]",
        "resources.kms_keys[0]",
        "resources.knowledge_bases[0]",
        "resources.guardrails[0]",
    ] {
        assert!(e.has_path(path), "{path}: {e}");
    }
    assert!(!e.has_path("resources.s3_outputs[2]"), "{e}");
}

// ---- the property ----------------------------------------------------------------------------

fn id_strategy() -> impl Strategy<Value = String> {
    let geo = prop::sample::select(vec!["", "us.", "eu.", "US.", "global.", "apac.", "x1."]);
    let provider = prop::sample::select(vec![
        "anthropic",
        "Anthropic",
        "meta",
        "META",
        "amazon",
        "cohere",
    ]);
    let model = prop::sample::select(vec![
        "claude-opus-4-1-v1:0",
        "claude-Opus-4-v1:0",
        "claude-sonnet-4-v1:0",
        "llama3-8b-v1:0",
        "titan-text-v1",
    ]);
    let plain = (geo, provider, model).prop_map(|(g, p, m)| format!("{g}{p}.{m}"));
    let arn_kind = prop::sample::select(vec![
        "foundation-model",
        "inference-profile",
        "application-inference-profile",
        "prompt",
        "agent-alias",
    ]);
    let account = prop::sample::select(vec!["", "123456789012", "999999999999"]);
    let arn = (arn_kind, account, plain.clone(), "[a-zA-Z0-9]{4,12}").prop_map(
        |(kind, account, plain, opaque)| {
            let id = if kind.contains("profile") && kind.starts_with("app")
                || kind == "prompt"
                || kind == "agent-alias"
            {
                opaque
            } else {
                plain
            };
            format!("arn:aws:bedrock:us-east-1:{account}:{kind}/{id}")
        },
    );
    prop_oneof![plain, arn, "[a-zA-Z0-9_]{3,10}"]
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "*",
        "*claude-opus*",
        "*CLAUDE-OPUS*",
        "meta.*",
        "Meta.*",
        "anthropic.*",
        "us.*",
        "*sonnet*",
        "arn:aws:bedrock:us-east-1:123456789012:*",
        "arn:aws:bedrock:*:prompt/*",
        "amazon.titan-text-v1",
    ])
    .prop_map(str::to_owned)
}

fn geo_list() -> impl Strategy<Value = Option<Vec<&'static str>>> {
    prop_oneof![
        Just(None),
        prop::sample::subsequence(vec!["us", "eu", "global", "apac"], 0..4).prop_map(Some)
    ]
}

fn folded_matches(pattern: &str, s: &str) -> bool {
    Pattern::new(&pattern.to_ascii_lowercase()).matches(&s.to_ascii_lowercase())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn an_allowed_model_is_never_denied_by_case_never_out_of_geography_never_opaque_by_wildcard(
        allow in prop::collection::vec(pattern_strategy(), 1..4),
        deny in prop::collection::vec(pattern_strategy(), 0..3),
        geos in geo_list(),
        id in id_strategy(),
    ) {
        let mut allow = allow;
        allow.sort();
        allow.dedup();
        let mut deny = deny;
        deny.sort();
        deny.dedup();
        let mut rules = vec![json!({ "id": "a", "effect": "allow", "models": allow, "operations": ["Converse"] })];
        if !deny.is_empty() {
            rules.push(json!({ "id": "d", "effect": "deny", "models": deny }));
        }
        let mut v = base_bundle(Value::Array(rules));
        if let Some(g) = &geos {
            v["network"] = json!({ "profile_geographies": g });
        }
        let p = policy(&v);
        let d = converse(&p, &id);
        if d.is_allow() {
            let m = parse_body_model_id(&id).expect("an allowed id parses");
            let mut names = vec![m.canonical().to_owned()];
            if let Some(r) = m.resource_id() { names.push(r.to_owned()); }
            if let Some(prefix) = m.profile_prefix() {
                let rid = m.resource_id().unwrap_or(m.canonical());
                names.push(rid.trim_start_matches(prefix).trim_start_matches('.').to_owned());
            }
            for pat in &deny {
                for n in &names {
                    prop_assert!(!folded_matches(pat, n), "allowed {id} although deny {pat} matches {n}");
                }
            }
            if let Some(prefix) = m.profile_prefix() {
                let ok = match &geos {
                    Some(list) => list.contains(&prefix),
                    None => ["us", "global"].contains(&prefix),
                };
                prop_assert!(ok, "allowed {id} with geography {prefix} (list {geos:?})");
            }
            if m.is_opaque() {
                let by_arn = matches!(m, ModelRef::Arn(_))
                    && allow.iter().any(|a| a.starts_with("arn:") && Pattern::new(a).matches(m.canonical()));
                let by_name = matches!(m, ModelRef::Plain { .. }) && allow.iter().any(|a| a == m.canonical());
                prop_assert!(by_arn || by_name, "opaque {id} allowed by a wildcard");
            }
        }
    }
}
