//! The bundle the strict-reading tests start from, shared by the engine's tests
//! (`bundle_strict_json.rs`) and the command line's (`cli/tests/cli/strict_input.rs`, which
//! includes this module by path).
#![allow(dead_code)]

use serde_json::{json, Value};

/// A valid bundle with identity, claims, inline JWKs, accounts and geographies.
pub fn base() -> Value {
    json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "strict", "revision": "1" },
        "mode": "enforce",
        "identity": {
            "providers": [{
                "name": "corp-idp",
                "issuer": "https://idp.acme.example",
                "audiences": ["bedrock-egress"],
                "algorithms": ["ES256"],
                "jwks": { "keys": [{ "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
                                     "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] }
            }]
        },
        "endpoints": [
            { "host": "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com",
              "region": "us-east-1" }
        ],
        "network": { "profile_geographies": ["us"] },
        "accounts": ["123456789012"],
        "rules": [
            { "id": "ml", "effect": "allow",
              "principals": { "groups": ["ml"], "claims": { "team": ["ml-*"] } },
              "models": ["anthropic.claude-sonnet-4-*", "us.anthropic.claude-*"],
              "operations": ["Converse"] },
            { "id": "no-opus", "effect": "deny", "models": ["*claude-opus*"] }
        ]
    })
}

pub fn text(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("serialises")
}

/// Replace the first `"name":` of the base bundle's text with `"escaped":`.
pub fn with_escaped_name(name: &str, escaped: &str) -> String {
    let t = text(&base());
    let needle = format!("\"{name}\":");
    assert!(t.contains(&needle), "{needle} not in the base bundle");
    t.replacen(&needle, &format!("\"{escaped}\":"), 1)
}
