use policies::bundle::FieldError;
use policies::{compile, parse_bundle, BundleError, CompiledPolicy, Mode};
use serde_json::{json, Value};

const DEMO: &[u8] = include_bytes!("../../examples/demo.json");

/// A valid bundle exercising every section.
fn base() -> Value {
    json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "acme-prod", "revision": "42" },
        "mode": "enforce",
        "identity": {
            "header": "x-workload-identity",
            "providers": [{
                "name": "corp-idp",
                "issuer": "https://idp.acme.example",
                "audiences": ["bedrock-egress"],
                "algorithms": ["RS256", "ES256"],
                "jwks": { "keys": [{ "kty": "RSA", "kid": "k1", "n": "oX-xr3Fud1GT5g8Z6Tdx8-WlECEmggSDZTu7cyQRRJgD8NHhF_TNqY18j-yD8Zstd5gsgF8qtK78zA-n-uSpDqzU-S4ojS-wsxjRpUqReM5VOIxb_49khfJfhk9H41Dg3Zy_KbYWLeRsBm-MV5Ht1qaGjrGBkfhaidKnOEKysLaJ_fyfnmDtn1F-wHQmeaKtY-s4S42iGP-YP7H1MIzxwqY_PMcvuVhqCxaP-oDq3mYH_dkRDyll4T8YF-kS1qyoumzbeAJ6Wxrx0SCepvuZ2z_zvoACOhLhGHmvwoH_J5PH4xTD5IvW3jZ58x7-n9SjdtFSX_zzeudQNZkUMMN6Gw", "e": "AQAB", "use": "sig" }] },
                "remote_jwks": { "cluster": "idp_jwks", "path": "/.well-known/jwks.json", "refresh_seconds": 300 },
                "leeway_seconds": 30,
                "principal_claim": "sub",
                "groups_claim": "groups"
            }]
        },
        "endpoints": [
            { "host": "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", "region": "us-east-1" },
            { "host": "bedrock-runtime.us-east-1.amazonaws.com", "region": "us-east-1", "private_dns": true, "cidrs": ["10.20.0.0/16", "fd00:10::/32"] }
        ],
        "accounts": ["123456789012"],
        "credentials": { "allow_bearer_api_keys": false },
        "limits": { "max_body_bytes": 1048576 },
        "rules": [
            { "id": "ml-platform-claude", "effect": "allow",
              "principals": { "groups": ["ml-platform"], "claims": { "team": ["ml-*"] } },
              "models": ["anthropic.claude-sonnet-4-*", "us.anthropic.claude-*"],
              "operations": ["Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream", "CountTokens"] },
            { "id": "no-global-profiles", "effect": "deny", "models": ["global.*"] }
        ]
    })
}

fn compile_value(v: &Value) -> Result<CompiledPolicy, BundleError> {
    CompiledPolicy::from_json(v.to_string().as_bytes())
}

/// Mutate the base bundle and return its validation error.
fn invalid(mutate: impl FnOnce(&mut Value)) -> BundleError {
    let mut v = base();
    mutate(&mut v);
    match compile_value(&v) {
        Ok(_) => panic!("bundle unexpectedly valid: {v}"),
        Err(e) => e,
    }
}

fn push_rule(v: &mut Value, rule: Value) {
    v["rules"].as_array_mut().expect("rules").push(rule);
}

/// Assert that the error has a problem at exactly `path` whose message contains `needle`.
#[track_caller]
fn assert_field(err: &BundleError, path: &str, needle: &str) {
    let found: Vec<&FieldError> = err
        .field_errors()
        .iter()
        .filter(|e| e.path == path)
        .collect();
    assert!(
        found.iter().any(|e| e.message.contains(needle)),
        "expected {path}: …{needle}… in:\n{err}"
    );
}

#[track_caller]
fn assert_json_error(err: &BundleError, needle: &str) {
    match err {
        BundleError::Json { message, line, .. } => {
            assert!(
                message.contains(needle),
                "message {message:?} lacks {needle:?}"
            );
            assert!(*line >= 1);
        }
        other => panic!("expected a JSON error, got {other}"),
    }
}

// ---- valid bundles -------------------------------------------------------------------------

#[test]
fn demo_bundle_compiles() {
    let policy = CompiledPolicy::from_json(DEMO).expect("demo.json must compile");
    assert_eq!(policy.name(), "demo");
    assert_eq!(policy.revision(), "1");
    assert_eq!(policy.mode(), Mode::Enforce);
    assert_eq!(policy.max_body_bytes(), 1_048_576);
    assert_eq!(policy.identity_header(), "x-workload-identity");
    assert_eq!(policy.rule_count(), 5);
    let ep = policy
        .endpoint("bedrock-runtime.us-east-1.amazonaws.com")
        .expect("endpoint");
    assert_eq!(ep.region, "us-east-1");
    assert_eq!(ep.partition, "aws");
    assert!(ep.cidrs[0].contains("127.0.0.1".parse().unwrap()));
}

#[test]
fn full_base_bundle_compiles() {
    let policy = compile_value(&base()).expect("base bundle must compile");
    assert_eq!(policy.identity_providers().len(), 1);
    assert!(policy.accounts().unwrap().contains("123456789012"));
}

#[test]
fn parse_then_compile_is_the_same_as_from_json() {
    let bundle = parse_bundle(DEMO).unwrap();
    assert!(compile(&bundle).is_ok());
    assert!(policies::bundle::validate(&bundle).is_ok());
}

#[test]
fn minimal_bundle_gets_defaults() {
    let v = json!({
        "apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle",
        "metadata": { "name": "m", "revision": "r" },
        "endpoints": [{ "host": "vpce-0a1b2c3d-abcd1234.bedrock-runtime.eu-central-2.vpce.amazonaws.com", "region": "eu-central-2" }]
    });
    let policy = compile_value(&v).unwrap();
    assert_eq!(policy.mode(), Mode::Enforce);
    assert_eq!(policy.max_body_bytes(), 1_048_576);
    assert_eq!(policy.identity_header(), "x-workload-identity");
    assert!(policy.accounts().is_none());
    assert!(!policy.credentials().allow_bearer_api_keys);
    assert_eq!(policy.rule_count(), 0);
}

#[test]
fn dry_run_mode_and_custom_limits_are_kept() {
    let mut v = base();
    v["mode"] = json!("dry-run");
    v["limits"]["max_body_bytes"] = json!(25_000_000);
    v["identity"]["header"] = json!("authorization");
    let policy = compile_value(&v).unwrap();
    assert_eq!(policy.mode(), Mode::DryRun);
    assert_eq!(policy.max_body_bytes(), 25_000_000);
    assert_eq!(policy.identity_header(), "authorization");
}

#[test]
fn partitions_follow_the_endpoint_region() {
    let mut v = base();
    v["endpoints"] = json!([
        { "host": "bedrock-runtime.us-gov-west-1.amazonaws.com", "region": "us-gov-west-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] },
        { "host": "bedrock-runtime.cn-north-1.amazonaws.com.cn", "region": "cn-north-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }
    ]);
    let policy = compile_value(&v).unwrap();
    assert_eq!(policy.endpoints()[0].partition, "aws-us-gov");
    assert_eq!(policy.endpoints()[1].partition, "aws-cn");
}

// ---- top level and metadata ----------------------------------------------------------------

#[test]
fn rejects_other_api_version() {
    let e = invalid(|v| v["apiVersion"] = json!("bedrock-guard/v2"));
    assert_field(&e, "apiVersion", "bedrock-guard/v1");
}

#[test]
fn rejects_missing_api_version_and_kind() {
    let e = invalid(|v| {
        v.as_object_mut().unwrap().remove("apiVersion");
        v["kind"] = json!("Bundle");
    });
    assert_field(&e, "apiVersion", "required");
    assert_field(&e, "kind", "PolicyBundle");
}

#[test]
fn rejects_missing_metadata() {
    let e = invalid(|v| {
        v.as_object_mut().unwrap().remove("metadata");
    });
    assert_field(&e, "metadata", "required");
}

#[test]
fn rejects_bad_bundle_name() {
    let e = invalid(|v| v["metadata"]["name"] = json!("Acme_Prod"));
    assert_field(&e, "metadata.name", "a-z, 0-9");
    let e = invalid(|v| v["metadata"]["name"] = json!("a".repeat(64)));
    assert_field(&e, "metadata.name", "1 to 63");
}

#[test]
fn rejects_bad_revision() {
    let e = invalid(|v| v["metadata"]["revision"] = json!(""));
    assert_field(&e, "metadata.revision", "empty");
    let e = invalid(|v| v["metadata"]["revision"] = json!("x".repeat(65)));
    assert_field(&e, "metadata.revision", "at most 64");
    let e = invalid(|v| v["metadata"]["revision"] = json!("1\n2"));
    assert_field(&e, "metadata.revision", "visible ASCII");
    let e = invalid(|v| {
        v["metadata"].as_object_mut().unwrap().remove("revision");
    });
    assert_field(&e, "metadata.revision", "required");
}

#[test]
fn rejects_unknown_mode_value() {
    let e = invalid(|v| v["mode"] = json!("audit"));
    assert_json_error(&e, "audit");
}

// ---- identity ------------------------------------------------------------------------------

#[test]
fn rejects_uppercase_or_pseudo_identity_header() {
    let e = invalid(|v| v["identity"]["header"] = json!("X-Workload-Identity"));
    assert_field(&e, "identity.header", "lowercase");
    let e = invalid(|v| v["identity"]["header"] = json!(":authority"));
    assert_field(&e, "identity.header", "pseudo-header");
    let e = invalid(|v| v["identity"]["header"] = json!("x_workload_identity"));
    assert_field(&e, "identity.header", "underscore");
}

#[test]
fn rejects_reserved_identity_header() {
    for name in [
        "host",
        "content-type",
        "x-amz-security-token",
        "x-forwarded-for",
        "x-envoy-original-path",
        "x-api-key",
    ] {
        let e = invalid(|v| v["identity"]["header"] = json!(name));
        assert_field(&e, "identity.header", "reserved");
    }
}

#[test]
fn rejects_identity_without_providers() {
    let e = invalid(|v| v["identity"]["providers"] = json!([]));
    assert_field(&e, "identity.providers", "at least one provider");
}

#[test]
fn rejects_duplicate_provider_name_and_issuer() {
    let e = invalid(|v| {
        let p = v["identity"]["providers"][0].clone();
        v["identity"]["providers"].as_array_mut().unwrap().push(p);
    });
    assert_field(&e, "identity.providers[1].name", "duplicate provider name");
    assert_field(&e, "identity.providers[1].issuer", "duplicate issuer");
}

#[test]
fn rejects_non_https_issuer_and_fragment() {
    let e = invalid(|v| v["identity"]["providers"][0]["issuer"] = json!("http://idp.acme.example"));
    assert_field(&e, "identity.providers[0].issuer", "https://");
    let e =
        invalid(|v| v["identity"]["providers"][0]["issuer"] = json!("https://idp.acme.example/#x"));
    assert_field(&e, "identity.providers[0].issuer", "fragment");
    let e = invalid(|v| v["identity"]["providers"][0]["issuer"] = json!("https://"));
    assert_field(&e, "identity.providers[0].issuer", "no host");
}

#[test]
fn rejects_empty_audiences_and_algorithms() {
    let e = invalid(|v| {
        v["identity"]["providers"][0]["audiences"] = json!([]);
        v["identity"]["providers"][0]["algorithms"] = json!([]);
    });
    assert_field(
        &e,
        "identity.providers[0].audiences",
        "at least one audience",
    );
    assert_field(
        &e,
        "identity.providers[0].algorithms",
        "at least one algorithm",
    );
}

#[test]
fn refuses_hmac_algorithms_with_a_clear_message() {
    let e = invalid(|v| v["identity"]["providers"][0]["algorithms"] = json!(["RS256", "HS256"]));
    assert_field(
        &e,
        "identity.providers[0].algorithms[1]",
        "HMAC algorithms need a shared secret; not supported in bundles",
    );
}

#[test]
fn rejects_unknown_and_duplicate_algorithm() {
    let e = invalid(|v| {
        v["identity"]["providers"][0]["algorithms"] = json!(["RS256", "rs256", "none", "RS256"])
    });
    assert_field(
        &e,
        "identity.providers[0].algorithms[1]",
        "unknown algorithm \"rs256\"",
    );
    assert_field(&e, "identity.providers[0].algorithms[2]", "never accepted");
    assert_field(&e, "identity.providers[0].algorithms[3]", "duplicate");
}

#[test]
fn refuses_symmetric_jwks_keys() {
    let e = invalid(|v| {
        v["identity"]["providers"][0]["jwks"]["keys"][0] = json!({ "kty": "oct", "kid": "s" })
    });
    assert_field(&e, "identity.providers[0].jwks.keys[0].kty", "\"oct\"");
}

#[test]
fn refuses_jwks_key_without_kid_or_with_private_material() {
    let e = invalid(|v| {
        v["identity"]["providers"][0]["jwks"]["keys"] = json!([
            { "kty": "EC", "crv": "P-256", "x": "a", "y": "b" },
            { "kty": "RSA", "kid": "r", "n": "n", "e": "AQAB", "d": "secret" },
            "not-a-key",
            { "kty": "RSA", "kid": "r", "n": "n", "e": "AQAB", "use": "enc" }
        ])
    });
    assert_field(&e, "identity.providers[0].jwks.keys[0].kid", "required");
    assert_field(
        &e,
        "identity.providers[0].jwks.keys[1].d",
        "private key material",
    );
    assert_field(&e, "identity.providers[0].jwks.keys[2]", "JSON Web Key");
    assert_field(
        &e,
        "identity.providers[0].jwks.keys[3].kid",
        "duplicate key id",
    );
    assert_field(&e, "identity.providers[0].jwks.keys[3].use", "sig");
}

#[test]
fn rejects_provider_without_any_keys() {
    let e = invalid(|v| {
        let p = v["identity"]["providers"][0].as_object_mut().unwrap();
        p.remove("jwks");
        p.remove("remote_jwks");
    });
    assert_field(&e, "identity.providers[0]", "jwks, remote_jwks");
    let e = invalid(|v| {
        let p = v["identity"]["providers"][0].as_object_mut().unwrap();
        p.remove("remote_jwks");
        p.insert("jwks".into(), json!({ "keys": [] }));
    });
    assert_field(
        &e,
        "identity.providers[0].jwks.keys",
        "no token could ever be verified",
    );
}

#[test]
fn rejects_bad_remote_jwks() {
    let e = invalid(
        |v| v["identity"]["providers"][0]["remote_jwks"] = json!({ "cluster": "idp", "path": "jwks.json", "refresh_seconds": 10, "max_stale_seconds": 5 }),
    );
    assert_field(
        &e,
        "identity.providers[0].remote_jwks.path",
        "start with '/'",
    );
    assert_field(
        &e,
        "identity.providers[0].remote_jwks.refresh_seconds",
        "30 to 86400",
    );
    assert_field(
        &e,
        "identity.providers[0].remote_jwks.max_stale_seconds",
        "less than refresh_seconds",
    );
    let e = invalid(|v| {
        v["identity"]["providers"][0]["remote_jwks"] =
            json!({ "path": "/jwks", "refresh_seconds": 86401 })
    });
    assert_field(&e, "identity.providers[0].remote_jwks.cluster", "required");
    assert_field(
        &e,
        "identity.providers[0].remote_jwks.refresh_seconds",
        "out of range",
    );
}

#[test]
fn rejects_excessive_leeway() {
    let e = invalid(|v| v["identity"]["providers"][0]["leeway_seconds"] = json!(301));
    assert_field(&e, "identity.providers[0].leeway_seconds", "0 to 300");
}

#[test]
fn rejects_bad_token_size_and_lifetime_bounds() {
    let e = invalid(|v| {
        v["identity"]["providers"][0]["max_token_bytes"] = json!(65_537);
        v["identity"]["providers"][0]["max_lifetime_seconds"] = json!(0);
    });
    assert_field(&e, "identity.providers[0].max_token_bytes", "1 to 65536");
    assert_field(
        &e,
        "identity.providers[0].max_lifetime_seconds",
        "at least 1",
    );
}

// ---- endpoints, accounts, credentials, limits ---------------------------------------------

#[test]
fn requires_at_least_one_endpoint() {
    let e = invalid(|v| v["endpoints"] = json!([]));
    assert_field(&e, "endpoints", "at least one endpoint");
}

#[test]
fn rejects_malformed_hosts() {
    let cases = [
        ("Bedrock-Runtime.us-east-1.amazonaws.com", "lowercase"),
        ("bedrock-runtime.us-east-1.amazonaws.com.", "end with a dot"),
        ("bedrock-runtime.us-east-1.amazonaws.com:443", "port"),
        ("10.20.0.5", "IP address"),
        ("[fd00::1]", "IP address"),
        ("bedrock..amazonaws.com", "empty label"),
        ("bedrock_runtime.amazonaws.com", "label"),
    ];
    for (host, needle) in cases {
        let e = invalid(|v| v["endpoints"][1]["host"] = json!(host));
        assert_field(&e, "endpoints[1].host", needle);
    }
    let e = invalid(|v| v["endpoints"][1]["host"] = json!("a".repeat(254)));
    assert_field(&e, "endpoints[1].host", "at most 253");
}

#[test]
fn rejects_duplicate_hosts() {
    let e = invalid(|v| v["endpoints"][1]["host"] = v["endpoints"][0]["host"].clone());
    assert_field(&e, "endpoints[1].host", "duplicate host");
}

#[test]
fn rejects_bad_region_and_region_host_mismatch() {
    let e = invalid(|v| v["endpoints"][0]["region"] = json!("us-east"));
    assert_field(&e, "endpoints[0].region", "not an AWS region");
    let e = invalid(|v| v["endpoints"][0]["region"] = json!("us-west-2"));
    assert_field(&e, "endpoints[0].host", "names region \"us-east-1\"");
}

#[test]
fn rejects_bad_cidrs() {
    let e = invalid(|v| {
        v["endpoints"][1]["cidrs"] = json!([
            "10.20.0.1/16",
            "10.0.0.0",
            "300.0.0.0/8",
            "10.0.0.0/33",
            "fd00::/200",
            "10.30.0.0/16",
            "10.30.0.0/16"
        ])
    });
    assert_field(
        &e,
        "endpoints[1].cidrs[0]",
        "host bits set (did you mean 10.20.0.0/16?)",
    );
    assert_field(&e, "endpoints[1].cidrs[1]", "no prefix length");
    assert_field(&e, "endpoints[1].cidrs[2]", "not an IPv4 or IPv6 address");
    assert_field(&e, "endpoints[1].cidrs[3]", "at most 32");
    assert_field(&e, "endpoints[1].cidrs[4]", "at most 128");
    assert_field(&e, "endpoints[1].cidrs[6]", "duplicate");
}

#[test]
fn private_dns_endpoint_needs_cidrs() {
    let e = invalid(|v| v["endpoints"][1]["cidrs"] = json!([]));
    assert_field(&e, "endpoints[1].cidrs", "private_dns");
}

#[test]
fn rejects_malformed_accounts() {
    let e = invalid(|v| {
        v["accounts"] = json!([
            "12345678901",
            "1234567890123",
            "12345678901a",
            "123456789012",
            "123456789012"
        ])
    });
    assert_field(&e, "accounts[0]", "12-digit");
    assert_field(&e, "accounts[1]", "12-digit");
    assert_field(&e, "accounts[2]", "12-digit");
    assert_field(&e, "accounts[4]", "duplicate");
    let e = invalid(|v| v["accounts"] = json!([]));
    assert_field(&e, "accounts", "omit the field");
}

#[test]
fn long_term_keys_need_bearer_keys() {
    let e = invalid(|v| v["credentials"] = json!({ "allow_long_term_api_keys": true }));
    assert_field(
        &e,
        "credentials.allow_long_term_api_keys",
        "allow_bearer_api_keys",
    );
}

#[test]
fn rejects_out_of_range_body_limit() {
    let e = invalid(|v| v["limits"]["max_body_bytes"] = json!(0));
    assert_field(&e, "limits.max_body_bytes", "out of range");
    let e = invalid(|v| v["limits"]["max_body_bytes"] = json!(25_000_001));
    assert_field(&e, "limits.max_body_bytes", "out of range");
}

// ---- rules ---------------------------------------------------------------------------------

#[test]
fn rejects_rule_without_id_or_effect() {
    let e = invalid(|v| v["rules"][1] = json!({ "models": ["x.y"] }));
    assert_field(&e, "rules[1].id", "required");
    assert_field(&e, "rules[1].effect", "required");
}

#[test]
fn rejects_bad_and_duplicate_rule_ids() {
    let e = invalid(|v| v["rules"][1]["id"] = json!("-bad id"));
    assert_field(&e, "rules[1].id", "A-Z, a-z, 0-9");
    let e = invalid(|v| v["rules"][1]["id"] = json!("ml-platform-claude"));
    assert_field(
        &e,
        "rules[1].id",
        "duplicate rule id \"ml-platform-claude\" (also rules[0])",
    );
}

#[test]
fn rejects_mode_on_allow_rule() {
    let e = invalid(|v| v["rules"][0]["mode"] = json!("dry-run"));
    assert_field(&e, "rules[0].mode", "only deny rules take a mode");
}

#[test]
fn accepts_mode_on_deny_rule() {
    let mut v = base();
    v["rules"][1]["mode"] = json!("dry-run");
    assert!(compile_value(&v).is_ok());
}

#[test]
fn rejects_allow_rule_that_would_allow_everything() {
    let e = invalid(|v| push_rule(v, json!({ "id": "all", "effect": "allow" })));
    assert_field(
        &e,
        "rules[2]",
        "would allow everything; name models or operations",
    );
}

#[test]
fn accepts_deny_rule_without_models_or_operations() {
    let mut v = base();
    push_rule(
        &mut v,
        json!({ "id": "kill-switch", "effect": "deny", "mode": "dry-run" }),
    );
    assert!(compile_value(&v).is_ok());
}

#[test]
fn rejects_bad_model_patterns() {
    let e = invalid(|v| {
        v["rules"][0]["models"] = json!([
            "anthropic.claude 3",
            "",
            "x".repeat(2049),
            "anthropic.claude-é",
            "ok.model",
            "ok.model"
        ])
    });
    assert_field(&e, "rules[0].models[0]", "contains ' '");
    assert_field(&e, "rules[0].models[1]", "empty");
    assert_field(&e, "rules[0].models[2]", "at most 2048");
    assert_field(&e, "rules[0].models[3]", "contains 'é'");
    assert_field(&e, "rules[0].models[5]", "duplicate pattern");
}

#[test]
fn accepts_longest_model_pattern() {
    let mut v = base();
    v["rules"][1]["models"] = json!(["a".repeat(2048)]);
    assert!(compile_value(&v).is_ok());
}

#[test]
fn rejects_empty_models_and_operations_lists() {
    let e = invalid(|v| {
        v["rules"][1]["models"] = json!([]);
        v["rules"][1]["operations"] = json!([]);
    });
    assert_field(&e, "rules[1].models", "must not be empty");
    assert_field(&e, "rules[1].operations", "must not be empty");
}

#[test]
fn rejects_unknown_operation_listing_known_ones() {
    let e = invalid(|v| v["rules"][0]["operations"] = json!(["Converse", "Invoke"]));
    assert_field(
        &e,
        "rules[0].operations[1]",
        "unknown operation \"Invoke\" (known: InvokeModel, InvokeModelWithResponseStream, Converse",
    );
}

#[test]
fn rejects_duplicate_operation() {
    let e = invalid(|v| v["rules"][0]["operations"] = json!(["Converse", "Converse"]));
    assert_field(&e, "rules[0].operations[1]", "duplicate operation");
}

#[test]
fn rejects_models_on_rule_with_only_model_less_operations() {
    let e = invalid(|v| v["rules"][1]["operations"] = json!(["ApplyGuardrail", "GetAsyncInvoke"]));
    assert_field(&e, "rules[1].models", "can never match");
}

#[test]
fn rejects_principals_without_identity_block() {
    let e = invalid(|v| {
        v.as_object_mut().unwrap().remove("identity");
    });
    assert_field(&e, "rules[0].principals", "identity block");
}

#[test]
fn rejects_empty_principals_and_bad_principal_patterns() {
    let e = invalid(|v| v["rules"][0]["principals"] = json!({}));
    assert_field(
        &e,
        "rules[0].principals",
        "names no subjects, groups or claims",
    );
    let e = invalid(|v| {
        v["rules"][0]["principals"] = json!({ "subjects": [""], "claims": { "team": [] } })
    });
    assert_field(&e, "rules[0].principals.subjects[0]", "empty");
    assert_field(
        &e,
        "rules[0].principals.claims.team",
        "at least one pattern",
    );
}

#[test]
fn rejects_duplicate_claim_name() {
    let text = base().to_string().replace(
        r#""claims":{"team":["ml-*"]}"#,
        r#""claims":{"team":["a"],"team":["b"]}"#,
    );
    let e = CompiledPolicy::from_json(text.as_bytes()).unwrap_err();
    // The strict pre-pass of `parse_bundle` (duplicates at any depth) answers first.
    assert_json_error(
        &e,
        "duplicate member name \"team\" in rules[0].principals.claims",
    );
}

// ---- JSON-level errors ---------------------------------------------------------------------

#[test]
fn rejects_unknown_top_level_field() {
    let e = invalid(|v| v["rule"] = json!([]));
    assert_json_error(&e, "unknown field `rule`");
}

#[test]
fn rejects_unknown_nested_fields() {
    let e = invalid(|v| v["rules"][0]["model"] = json!(["x.y"]));
    assert_json_error(&e, "unknown field `model`");
    let e = invalid(|v| v["endpoints"][0]["hosts"] = json!("x"));
    assert_json_error(&e, "unknown field `hosts`");
    let e = invalid(|v| v["identity"]["providers"][0]["audience"] = json!("x"));
    assert_json_error(&e, "unknown field `audience`");
    let e = invalid(|v| v["identity"]["providers"][0]["remote_jwks"]["refresh"] = json!(60));
    assert_json_error(&e, "unknown field `refresh`");
    let e = invalid(|v| v["metadata"]["labels"] = json!({}));
    assert_json_error(&e, "unknown field `labels`");
    let e = invalid(|v| v["rules"][0]["principals"]["users"] = json!(["a"]));
    assert_json_error(&e, "unknown field `users`");
}

#[test]
fn rejects_duplicate_json_field() {
    let e =
        parse_bundle(br#"{"apiVersion": "bedrock-guard/v1", "apiVersion": "bedrock-guard/v1"}"#)
            .unwrap_err();
    assert_json_error(&e, "duplicate member name \"apiVersion\"");
}

#[test]
fn rejects_wrong_types() {
    let e = invalid(|v| v["metadata"]["revision"] = json!(42));
    assert_json_error(&e, "invalid type");
    let e = invalid(|v| v["limits"]["max_body_bytes"] = json!(-1));
    assert_json_error(&e, "invalid value");
    let e = invalid(|v| v["rules"][0]["effect"] = json!("permit"));
    assert_json_error(&e, "unknown variant `permit`");
}

#[test]
fn json_syntax_error_reports_line_and_column() {
    let text = b"{\n  \"apiVersion\": \"bedrock-guard/v1\",\n  \"kind\": \"PolicyBundle\"\n  \"mode\": \"enforce\"\n}";
    match parse_bundle(text).unwrap_err() {
        BundleError::Json {
            line,
            column,
            message,
        } => {
            assert_eq!(line, 4);
            assert_eq!(column, 3);
            assert!(message.contains("expected `,` or `}`"), "{message}");
            assert!(!message.contains("at line"), "{message}");
        }
        other => panic!("expected JSON error, got {other}"),
    }
}

#[test]
fn json_error_display_names_position() {
    let e = parse_bundle(b"[").unwrap_err();
    assert!(e.to_string().starts_with("line 1, column 1: "), "{e}");
    assert!(e.field_errors().is_empty());
}

#[test]
fn reports_all_errors_together_one_per_line() {
    let e = invalid(|v| {
        v["metadata"]["name"] = json!("Bad Name");
        v["endpoints"][0]["region"] = json!("mars-1");
        v["rules"][0]["models"][1] = json!("bad model");
        v["rules"][0]["operations"][2] = json!("Invoke");
        v["identity"]["providers"][0]["algorithms"][1] = json!("HS512");
    });
    let paths: Vec<&str> = e.field_errors().iter().map(|f| f.path.as_str()).collect();
    for expected in [
        "metadata.name",
        "endpoints[0].region",
        "rules[0].models[1]",
        "rules[0].operations[2]",
        "identity.providers[0].algorithms[1]",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    let text = e.to_string();
    assert_eq!(text.lines().count(), e.field_errors().len());
    assert!(text
        .lines()
        .any(|l| l.starts_with("rules[0].operations[2]: unknown operation \"Invoke\"")));
    assert!(e.has_path("metadata.name"));
}

// ---- endpoint shapes, FIPS and profile geographies -----------------------------------------

const VPCE_HOST: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com";

/// The base bundle with `endpoint` as its only endpoint.
fn with_endpoint0(endpoint: Value) -> Result<CompiledPolicy, BundleError> {
    let mut v = base();
    v["endpoints"] = json!([endpoint]);
    compile_value(&v)
}

#[track_caller]
fn endpoint0_invalid(endpoint: Value, path: &str, needle: &str) {
    match with_endpoint0(endpoint.clone()) {
        Ok(_) => panic!("endpoint unexpectedly valid: {endpoint}"),
        Err(e) => assert_field(&e, path, needle),
    }
}

#[test]
fn service_name_without_private_dns_is_refused_at_its_private_dns_field() {
    for host in [
        "bedrock-runtime.us-east-1.amazonaws.com",
        "bedrock-runtime-fips.us-east-1.amazonaws.com",
        "bedrock-agent-runtime.us-east-1.amazonaws.com",
        "bedrock-runtime.us-east-1.api.aws",
        "bedrock-mantle.us-east-1.api.aws",
    ] {
        endpoint0_invalid(
            json!({ "host": host, "region": "us-east-1", "cidrs": ["10.0.0.0/8"] }),
            "endpoints[0].private_dns",
            "private DNS",
        );
        assert!(
            with_endpoint0(json!({ "host": host, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }))
                .is_ok(),
            "{host}"
        );
    }
}

#[test]
fn vpce_name_with_private_dns_is_refused() {
    endpoint0_invalid(
        json!({ "host": VPCE_HOST, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }),
        "endpoints[0].private_dns",
        "service names only",
    );
}

#[test]
fn vpce_names_with_8_or_17_hex_ids_and_every_service_are_accepted() {
    for host in [
        VPCE_HOST,
        "vpce-0a1b2c3d-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com",
        "vpce-0a1b2c3d-0000zzzz.bedrock-runtime-fips.us-east-1.vpce.amazonaws.com",
        "vpce-0a1b2c3d-abcd1234.bedrock-agent-runtime.us-east-1.vpce.amazonaws.com",
        "vpce-0a1b2c3d-abcd1234.bedrock-agent-runtime-fips.us-east-1.vpce.amazonaws.com",
        "vpce-0a1b2c3d-abcd1234.bedrock-mantle.us-east-1.vpce.amazonaws.com",
        "vpce-0a1b2c3d4e5f67890-abcd1234-us-east-1c.bedrock-runtime.us-east-1.vpce.amazonaws.com",
    ] {
        assert!(
            with_endpoint0(json!({ "host": host, "region": "us-east-1" })).is_ok(),
            "{host}"
        );
    }
}

#[test]
fn malformed_vpce_ids_are_refused() {
    for label in [
        "vpce-0a1b2c3-abcd1234",
        "vpce-0a1b2c3d4-abcd1234",
        "vpce-0a1b2c3d4e5f6789-abcd1234",
        "vpce-0a1b2c3d4e5f678901-abcd1234",
        "vpce-0a1b2c3g-abcd1234",
        "vpce-0a1b2c3d-abcd123",
        "vpce-0a1b2c3d-abcd12345",
        "vpce-0a1b2c3d",
        "vpc-0a1b2c3d-abcd1234",
        "vpce0a1b2c3d-abcd1234",
    ] {
        let host = format!("{label}.bedrock-runtime.us-east-1.vpce.amazonaws.com");
        endpoint0_invalid(
            json!({ "host": host, "region": "us-east-1" }),
            "endpoints[0].host",
            "VPC endpoint label",
        );
    }
}

#[test]
fn zonal_vpce_name_must_name_a_zone_of_its_region() {
    for zone in [
        "us-west-2a",
        "us-east-1",
        "us-east-1ab",
        "us-east-11",
        "az1",
    ] {
        let host =
            format!("vpce-0a1b2c3d-abcd1234-{zone}.bedrock-runtime.us-east-1.vpce.amazonaws.com");
        endpoint0_invalid(
            json!({ "host": host, "region": "us-east-1" }),
            "endpoints[0].host",
            "VPC endpoint label",
        );
    }
}

#[test]
fn hosts_that_are_not_bedrock_data_plane_names_are_refused() {
    let cases = [
        (
            "bedrock.us-east-1.amazonaws.com",
            "not a Bedrock data-plane service",
        ),
        (
            "bedrock-agent.us-east-1.amazonaws.com",
            "not a Bedrock data-plane service",
        ),
        (
            "bedrock-runtime.us-east-1.example.com",
            "not under an AWS DNS suffix",
        ),
        ("proxy.internal", "not under an AWS DNS suffix"),
        (
            "x.bedrock-runtime.us-east-1.amazonaws.com",
            "not a Bedrock endpoint name",
        ),
        (
            "bedrock-mantle.us-east-1.amazonaws.com",
            "bedrock-mantle.us-east-1.api.aws",
        ),
        (
            "vpce-0a1b2c3d-abcd1234.bedrock-runtime.us-east-1.vpce.api.aws",
            "not a Bedrock endpoint name",
        ),
        (
            "bedrock-runtime.useast1.amazonaws.com",
            "not an AWS region name",
        ),
    ];
    for (host, needle) in cases {
        endpoint0_invalid(
            json!({ "host": host, "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] }),
            "endpoints[0].host",
            needle,
        );
    }
}

#[test]
fn dns_suffix_must_belong_to_the_region_partition() {
    endpoint0_invalid(
        json!({ "host": "bedrock-runtime.cn-north-1.amazonaws.com", "region": "cn-north-1",
                "private_dns": true, "cidrs": ["10.0.0.0/8"] }),
        "endpoints[0].host",
        "does not belong to region \"cn-north-1\"",
    );
    endpoint0_invalid(
        json!({ "host": "bedrock-runtime.us-east-1.amazonaws.com.cn", "region": "us-east-1",
                "private_dns": true, "cidrs": ["10.0.0.0/8"] }),
        "endpoints[0].host",
        "does not belong to region \"us-east-1\"",
    );
}

#[test]
fn fips_flag_must_match_the_host() {
    endpoint0_invalid(
        json!({ "host": VPCE_HOST, "region": "us-east-1", "fips": true }),
        "endpoints[0].fips",
        "not a FIPS endpoint",
    );
    let fips = VPCE_HOST.replace("bedrock-runtime", "bedrock-runtime-fips");
    let policy =
        with_endpoint0(json!({ "host": fips, "region": "us-east-1", "fips": true })).unwrap();
    assert!(policy.endpoints()[0].fips);
    // The FIPS property is read from the host; the flag may be left out.
    let policy = with_endpoint0(json!({ "host": fips, "region": "us-east-1" })).unwrap();
    assert!(policy.endpoints()[0].fips);
}

#[test]
fn fips_required_refuses_every_non_fips_endpoint() {
    let e = invalid(|v| v["network"] = json!({ "fips_required": true }));
    assert_field(&e, "endpoints[0].host", "fips_required");
    assert_field(&e, "endpoints[1].host", "fips_required");

    let mut v = base();
    v["network"] = json!({ "fips_required": true });
    v["endpoints"] = json!([
        { "host": VPCE_HOST.replace("bedrock-runtime", "bedrock-runtime-fips"), "region": "us-east-1" },
        { "host": "bedrock-runtime-fips.us-east-1.amazonaws.com", "region": "us-east-1", "private_dns": true, "cidrs": ["10.20.0.0/16"] },
        { "host": "bedrock-agent-runtime-fips.us-east-1.api.aws", "region": "us-east-1", "private_dns": true, "cidrs": ["fd00::/8"] }
    ]);
    let policy = compile_value(&v).expect("all-FIPS bundle compiles");
    assert!(policy.fips_required());

    v["endpoints"][2] = json!({ "host": "bedrock-mantle.us-east-1.api.aws", "region": "us-east-1", "private_dns": true, "cidrs": ["fd00::/8"] });
    let e = compile_value(&v).unwrap_err();
    assert_field(&e, "endpoints[2].host", "not a FIPS endpoint");
}

#[test]
fn profile_geographies_are_validated() {
    let e = invalid(|v| {
        v["network"] =
            json!({ "profile_geographies": ["us", "US", "x", "toolongname", "-us", "us", "e u"] })
    });
    assert_field(&e, "network.profile_geographies[1]", "profile prefix");
    assert_field(&e, "network.profile_geographies[2]", "profile prefix");
    assert_field(&e, "network.profile_geographies[3]", "profile prefix");
    assert_field(&e, "network.profile_geographies[4]", "profile prefix");
    assert_field(&e, "network.profile_geographies[5]", "duplicate geography");
    assert_field(&e, "network.profile_geographies[6]", "profile prefix");
    assert!(!e.has_path("network.profile_geographies[0]"));
}

#[test]
fn profile_geographies_default_to_unrestricted_and_may_be_empty() {
    let policy = compile_value(&base()).unwrap();
    assert_eq!(policy.profile_geographies(), None);
    assert!(!policy.fips_required());
    let mut v = base();
    v["network"] = json!({ "profile_geographies": [] });
    assert_eq!(
        compile_value(&v).unwrap().profile_geographies(),
        Some(&[][..])
    );
    v["network"] = json!({ "profile_geographies": ["us", "global", "sa"] });
    let policy = compile_value(&v).unwrap();
    assert_eq!(
        policy.profile_geographies().unwrap(),
        ["us".to_string(), "global".into(), "sa".into()]
    );
}

#[test]
fn network_refuses_unknown_fields() {
    let mut v = base();
    v["network"] = json!({ "fips": true });
    let e = compile_value(&v).unwrap_err();
    assert_json_error(&e, "unknown field `fips`");
}

#[test]
fn an_unusable_inline_key_is_reported_with_errors_elsewhere() {
    let e = invalid(|v| {
        v["metadata"]["name"] = json!("Not_A_Name");
        v["identity"]["providers"][0]["jwks"]["keys"][0]["n"] = json!("AQAB");
    });
    assert!(e.has_path("metadata.name"), "{e}");
    assert!(e.has_path("identity.providers[0].jwks"), "{e}");
    assert!(e.to_string().contains("RSA modulus"), "{e}");
}

// ---- alerts --------------------------------------------------------------------------------

fn eventbridge_alerts() -> Value {
    json!({
        "cluster": "eventbridge",
        "format": "eventbridge",
        "event_bus": "arn:aws:events:us-east-1:123456789012:event-bus/security",
        "endpoint": "vpce-0123456789abcdef0-abcd1234.events.us-east-1.vpce.amazonaws.com"
    })
}

#[test]
fn eventbridge_alerts_compile_with_their_defaults() {
    let mut v = base();
    v["alerts"] = eventbridge_alerts();
    let policy = compile_value(&v).expect("valid");
    let alerts = policy.alerts().expect("alerts");
    assert!(alerts.is_eventbridge());
    assert_eq!(alerts.batch_size(), 10, "the PutEvents limit");
    assert_eq!(alerts.max_attempts(), 4);
    assert_eq!(alerts.source(), "bedrock-guard");
    assert_eq!(alerts.detail_type(), "Bedrock request denied");
    // A plain bus name and an explicit "/" path are fine too.
    v["alerts"]["event_bus"] = json!("security-alerts");
    v["alerts"]["path"] = json!("/");
    v["alerts"]["batch_size"] = json!(3);
    v["alerts"]["source"] = json!("acme.bedrock-guard");
    assert_eq!(
        compile_value(&v)
            .expect("valid")
            .alerts()
            .expect("alerts")
            .batch_size(),
        3
    );
}

#[test]
fn json_alerts_keep_their_defaults() {
    let mut v = base();
    v["alerts"] = json!({ "cluster": "sink", "path": "/events" });
    let policy = compile_value(&v).expect("valid");
    let alerts = policy.alerts().expect("alerts");
    assert!(!alerts.is_eventbridge());
    assert_eq!(alerts.batch_size(), 20);
    assert_eq!(alerts.max_attempts(), 1);
}

#[test]
fn rejects_bad_eventbridge_alerts_naming_each_field() {
    let e = invalid(|v| {
        v["alerts"] = json!({ "cluster": "eventbridge", "format": "eventbridge", "batch_size": 11 })
    });
    assert_field(&e, "alerts.event_bus", "required");
    assert_field(&e, "alerts.endpoint", "required");
    assert_field(&e, "alerts.batch_size", "at most 10 entries");
    let e = invalid(|v| {
        let mut a = eventbridge_alerts();
        a["event_bus"] = json!("arn:aws:sqs:us-east-1:123456789012:queue");
        a["endpoint"] = json!("https://events.us-east-1.amazonaws.com");
        a["path"] = json!("/events");
        a["max_attempts"] = json!(11);
        a["source"] = json!("aws.bedrock");
        a["detail_type"] = json!("");
        v["alerts"] = a;
    });
    assert_field(&e, "alerts.event_bus", "not an event bus");
    assert_field(&e, "alerts.endpoint", "not a host name");
    assert_field(&e, "alerts.path", "go to \"/\"");
    assert_field(&e, "alerts.max_attempts", "1 to 10");
    assert_field(&e, "alerts.source", "reserved");
    assert_field(&e, "alerts.detail_type", "1 to 128");
    let e = invalid(|v| v["alerts"] = json!({ "cluster": "c", "path": "/", "format": "sns" }));
    assert_field(&e, "alerts.format", "\"json\" or \"eventbridge\"");
    let e = invalid(|v| {
        v["alerts"] = json!({ "cluster": "c", "path": "/e", "event_bus": "b", "max_attempts": 2 })
    });
    assert_field(&e, "alerts.event_bus", "only with");
    assert_field(&e, "alerts.max_attempts", "only with");
    let e = invalid(|v| v["alerts"] = json!({ "cluster": "c", "path": "/e", "batch_size": 501 }));
    assert_field(&e, "alerts.batch_size", "1 to 500");
}
