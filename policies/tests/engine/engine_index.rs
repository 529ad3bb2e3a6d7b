//! The rule index (`bundle::compile::RuleIndex`) only narrows which rules the engine tries: the
//! filter's decision (`decide`, which tries the indexed candidates) must equal the decision of
//! the linear scan over every rule in bundle order (`decide_traced`, the reference `explain`
//! shows), for every operation, model form and caller below, including case variants (deny
//! matching ignores case), ARNs and their resource ids, system profiles (denied through their
//! base model), opaque resources, rules without `models`, principals and dry-run rules.

use std::sync::Arc;

use policies::identity::{Caller, Principal};
use policies::{decide, decide_traced, CompiledPolicy, RequestFacts};
use serde_json::json;

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";

fn policy() -> CompiledPolicy {
    let bundle = json!({
        "apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle",
        "metadata": {"name": "index", "revision": "1"},
        "identity": {"providers": [{"name": "p", "issuer": "https://i.example",
            "audiences": ["a"], "algorithms": ["RS256"],
            "remote_jwks": {"cluster": "jwks", "path": "/keys"}}]},
        "endpoints": [{"host": HOST, "region": "us-east-1", "private_dns": true,
                       "cidrs": ["10.0.0.0/8"]}],
        "accounts": ["123456789012"],
        "rules": [
            {"id": "d-opus", "effect": "deny", "models": ["*Claude-OPUS*"]},
            {"id": "d-llama-dry", "effect": "deny", "mode": "dry-run", "models": ["meta.llama3-*"]},
            {"id": "d-interns", "effect": "deny", "principals": {"groups": ["interns"]}},
            {"id": "d-exact", "effect": "deny", "models": ["amazon.titan-text-lite-v1"]},
            {"id": "d-q", "effect": "deny", "models": ["cohere.command-r?-v1:0"]},
            {"id": "a-literal", "effect": "allow", "operations": ["InvokeModel"],
             "models": ["amazon.titan-text-express-v1", "amazon.titan-text-lite-v1"]},
            {"id": "a-prefix", "effect": "allow", "operations": ["Converse", "InvokeModel"],
             "models": ["anthropic.claude-*", "us.anthropic.*"]},
            {"id": "a-ml", "effect": "allow", "principals": {"groups": ["ml"]},
             "models": ["meta.*", "cohere.*", "mistral.mistral-large-*"]},
            {"id": "a-arn", "effect": "allow",
             "models": ["arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/*"]},
            {"id": "a-opaque-name", "effect": "allow", "models": ["my-provisioned"]},
            {"id": "a-general", "effect": "allow", "operations": ["Converse"],
             "models": ["*-v2:0", "ai21.j?-ultra-v1"]},
            {"id": "a-late-literal", "effect": "allow", "models": ["anthropic.claude-3-haiku-20240307-v1:0"]}
        ]
    });
    CompiledPolicy::from_json(bundle.to_string().as_bytes()).unwrap()
}

fn caller(groups: &[&str]) -> Caller {
    Caller::Verified(Arc::new(Principal {
        issuer: "https://i.example".into(),
        subject: "s".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        claims: serde_json::Map::new(),
    }))
}

#[test]
fn the_indexed_decision_is_the_linear_scans() {
    let p = policy();
    let models = [
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-opus-4-20250514-v1:0",
        "ANTHROPIC.CLAUDE-OPUS-4-20250514-V1:0",
        "Anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "us.anthropic.claude-opus-4-20250514-v1:0",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "amazon.titan-text-express-v1",
        "amazon.titan-text-lite-v1",
        "AMAZON.TITAN-TEXT-LITE-V1",
        "meta.llama3-8b-instruct-v1:0",
        "meta.llama2-13b-chat-v1",
        "cohere.command-r-v1:0",
        "cohere.command-r+-v1:0",
        "mistral.mistral-large-2402-v1:0",
        "ai21.jamba-instruct-v1:0",
        "ai21.j2-ultra-v1",
        "stability.sd3-large-v1:0",
        "x.y-v2:0",
        "my-provisioned",
        "other-provisioned",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-20250514-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-20250514-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123",
    ];
    let callers = [
        Caller::Missing,
        caller(&[]),
        caller(&["ml"]),
        caller(&["interns", "ml"]),
    ];
    let mut compared = 0;
    for model in models {
        let encoded = model.replace(':', "%3A").replace('/', "%2F");
        for action in ["converse", "invoke", "converse-stream", "count-tokens"] {
            let path = format!("/model/{encoded}/{action}");
            for who in &callers {
                let facts = RequestFacts {
                    method: b"POST",
                    path: path.as_bytes(),
                    authority: HOST.as_bytes(),
                    scheme: b"https",
                    headers: &[("content-type", b"application/json")],
                    caller: who.clone(),
                    ..RequestFacts::default()
                };
                let indexed = decide(&p, &facts);
                let (linear, _) = decide_traced(&p, &facts);
                assert_eq!(indexed, linear, "{path} {who:?}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, models.len() * 4 * callers.len());
}
