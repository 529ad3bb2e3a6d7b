//! `bedrock-guard validate`, `--help` and exit codes.

use crate::support::*;

const GOOD_HEAD: &str = r#"{
  "apiVersion": "bedrock-guard/v1",
  "kind": "PolicyBundle",
  "metadata": { "name": "t", "revision": "1" },
  "endpoints": [ { "host": "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", "region": "us-east-1" } ],
"#;

#[test]
fn demo_bundle_is_valid_with_rule_count_and_digest() {
    let demo = example("demo.json");
    let out = run(&["validate", demo.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(": ok (5 rules, digest sha256:"),
        "{}",
        out.stdout
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "validate",
        "digest",
        "keygen",
        "sign",
        "verify",
        "explain",
        "test",
        "ecds",
        "schema",
        "report",
        "reconcile",
    ] {
        let out = run(&[cmd, "--help"]);
        assert_eq!(out.code, 0, "{cmd}: {}", out.all());
        assert!(
            out.stdout.contains("Usage: bedrock-guard"),
            "{cmd}: {}",
            out.stdout
        );
    }
    let top = run(&["--help"]);
    assert_eq!(top.code, 0);
    assert!(top.stdout.contains("Commands:"));
}

#[test]
fn unknown_command_and_option_are_usage_errors() {
    assert_eq!(run(&["frobnicate"]).code, 2);
    let out = run(&["validate", "--nope", "x.json"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--nope"), "{}", out.stderr);
    assert_eq!(run(&["validate"]).code, 2);
}

#[test]
fn unreadable_file_exits_2() {
    let out = run(&["validate", "does-not-exist.json"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot read does-not-exist.json"),
        "{}",
        out.stderr
    );
}

#[test]
fn semantic_errors_name_path_and_line_column() {
    let s = Scratch::new("validate-sem");
    let f = s.write(
        "b.json",
        &format!(
            "{GOOD_HEAD}  \"rules\": [\n    {{ \"id\": \"a\", \"effect\": \"allow\",\n      \"models\": [\"ok.model\", \"bad model\"] }}\n  ]\n}}\n"
        ),
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("b.json:8:30: error: rules[0].models[1]: \"bad model\" contains ' '"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("b.json: invalid (1 error)"));
}

#[test]
fn every_semantic_error_is_reported() {
    let s = Scratch::new("validate-all");
    let f = s.write(
        "b.json",
        r#"{"apiVersion": "bedrock-guard/v2", "kind": "PolicyBundle", "metadata": {"name": "T"},
  "endpoints": [], "rules": [{"id": "a", "effect": "allow"}]}"#,
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1);
    for path in [
        "apiVersion",
        "metadata.name",
        "metadata.revision",
        "endpoints",
        "rules[0]",
    ] {
        assert!(
            out.stdout.contains(&format!("error: {path}: ")),
            "{path}: {}",
            out.stdout
        );
    }
    // A missing field points at its parent.
    assert!(
        out.stdout
            .contains("b.json:1:60: error: metadata.revision: required"),
        "{}",
        out.stdout
    );
}

#[test]
fn unknown_field_is_reported_at_its_name() {
    let s = Scratch::new("validate-unknown");
    let f = s.write(
        "b.json",
        &format!("{GOOD_HEAD}  \"rules\": [\n    {{ \"id\": \"a\", \"effect\": \"deny\", \"modles\": [] }}\n  ]\n}}\n"),
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("b.json:7:36: error: rules[0].modles: unknown field `modles`"),
        "{}",
        out.stdout
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let s = Scratch::new("validate-syntax");
    let f = s.write(
        "b.json",
        "{\n  \"kind\": \"PolicyBundle\",\n  \"rules\": [,]\n}\n",
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("b.json:3:13: error: "),
        "{}",
        out.stdout
    );
}

#[test]
fn duplicate_keys_are_refused_with_position() {
    let s = Scratch::new("validate-dup");
    let f = s.write(
        "b.json",
        "{\"kind\": \"PolicyBundle\",\n \"kind\": \"PolicyBundle\"}",
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("b.json:2:7: error: duplicate member name \"kind\""),
        "{}",
        out.stdout
    );
}

#[test]
fn yaml_bundle_is_valid() {
    let s = Scratch::new("validate-yaml");
    let f = s.write("demo.yaml", DEMO_YAML);
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("demo.yaml: ok (5 rules"));
}

#[test]
fn yaml_errors_point_into_the_yaml_source() {
    let s = Scratch::new("validate-yaml-err");
    let text = DEMO_YAML
        .replace("  name: demo", "  name: Demo_Bundle")
        .replace(
            "    effect: deny\n    models: [\"global.*\"]",
            "    effect: deny\n    modelz: [\"global.*\"]",
        );
    let f = s.write("bad.yaml", &text);
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("bad.yaml:44:5: error: rules[3].modelz: unknown field `modelz`"),
        "{}",
        out.stdout
    );
    let fixed = text.replace("modelz", "models");
    let f = s.write("bad2.yaml", &fixed);
    let out = s.run(&["validate", &f]);
    assert!(
        out.stdout.contains("bad2.yaml:5:3: error: metadata.name: "),
        "{}",
        out.stdout
    );
}

#[test]
fn yaml_syntax_and_float_errors_have_positions() {
    let s = Scratch::new("validate-yaml-syntax");
    let f = s.write(
        "a.yaml",
        "apiVersion: bedrock-guard/v1\nlimits:\n  max_body_bytes: 1.5\n",
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("a.yaml:3:19: error: number 1.5 is not an integer"),
        "{}",
        out.stdout
    );
    let f = s.write("b.yaml", "kind: [unclosed\n");
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("b.yaml:2:"), "{}", out.stdout);
}

#[test]
fn warnings_do_not_fail_unless_strict() {
    let s = Scratch::new("validate-warn");
    let f = s.write(
        "w.json",
        &format!(
            "{GOOD_HEAD}  \"rules\": [\n    {{ \"id\": \"g\", \"effect\": \"allow\", \"models\": [\"global.anthropic.claude-*\"] }},\n    {{ \"id\": \"g2\", \"effect\": \"allow\", \"models\": [\"global.anthropic.claude-*\"], \"operations\": [\"Converse\"] }},\n    {{ \"id\": \"g3\", \"effect\": \"allow\", \"operations\": [\"Converse\"], \"models\": [\"global.anthropic.claude-*\"] }},\n    {{ \"id\": \"n\", \"effect\": \"deny\", \"models\": [\"global.*\"] }},\n    {{ \"id\": \"u\", \"effect\": \"allow\", \"models\": [\"Anthropic.Claude-3\", \"mymodel\"] }}\n  ]\n}}\n"
        ),
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 0, "{}", out.all());
    let o = &out.stdout;
    assert!(
        o.contains("w.json:7:5: warning: rules[0]: can never allow anything"),
        "{o}"
    );
    assert!(
        o.contains("warning: rules[2]: repeats rules[1] (\"g2\")"),
        "{o}"
    );
    assert!(
        o.contains("warning: rules[4].models[0]: \"Anthropic.Claude-3\" has uppercase"),
        "{o}"
    );
    assert!(
        o.contains("warning: rules[4].models[1]: \"mymodel\" has no '.'"),
        "{o}"
    );
    let strict = s.run(&["validate", "--strict", &f]);
    assert_eq!(strict.code, 1);
    assert!(
        strict.stdout.contains("failed (--strict"),
        "{}",
        strict.stdout
    );
}

#[test]
fn a_dry_run_deny_does_not_make_an_allow_unreachable() {
    let s = Scratch::new("validate-dry");
    let f = s.write(
        "w.json",
        &format!(
            "{GOOD_HEAD}  \"rules\": [\n    {{ \"id\": \"g\", \"effect\": \"allow\", \"models\": [\"global.anthropic.claude-*\"] }},\n    {{ \"id\": \"n\", \"effect\": \"deny\", \"mode\": \"dry-run\", \"models\": [\"global.*\"] }}\n  ]\n}}\n"
        ),
    );
    let out = s.run(&["validate", "--strict", &f]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn several_files_exit_with_the_worst_status() {
    let s = Scratch::new("validate-many");
    let good = example("demo.json");
    let bad = s.write("bad.json", "{}");
    let out = s.run(&["validate", good.to_str().unwrap(), &bad]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains(": ok ("));
    let out = s.run(&["validate", good.to_str().unwrap(), "missing.json"]);
    assert_eq!(out.code, 2);
}

#[test]
fn stdin_is_read_for_dash() {
    let s = Scratch::new("validate-stdin");
    let out = s.run_stdin(&["validate", "-"], &demo_text());
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.starts_with("-: ok (5 rules"));
}

#[test]
fn unknown_field_does_not_hide_the_rest_of_the_bundle() {
    let s = Scratch::new("validate-unknown-and-region");
    let f = s.write(
        "b.json",
        r#"{
  "apiVersion": "bedrock-guard/v1",
  "kind": "PolicyBundle",
  "metadata": { "name": "t", "revision": "1" },
  "endpoints": [ { "host": "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com", "region": "us-west-2" } ],
  "rules": [
    { "id": "a", "effect": "allow", "models": ["amazon.titan-text-express-v1"], "bogus": true }
  ]
}
"#,
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    let o = &out.stdout;
    assert!(
        o.contains("b.json:7:81: error: rules[0].bogus: unknown field `bogus`"),
        "{o}"
    );
    assert!(
        o.contains("b.json:5:20: error: endpoints[0].host: \"vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com\" names region \"us-east-1\" but the endpoint's region is \"us-west-2\""),
        "{o}"
    );
    assert!(o.contains("b.json: invalid (2 errors)"), "{o}");
    // Schema problems first, in document order, then the rest.
    let unknown = o.find("rules[0].bogus").unwrap_or(usize::MAX);
    let region = o.find("endpoints[0].host").unwrap_or(0);
    assert!(unknown < region, "{o}");
}

#[test]
fn wrong_types_and_nulls_are_reported_with_the_semantic_errors() {
    let s = Scratch::new("validate-types");
    let f = s.write(
        "b.json",
        &format!(
            "{GOOD_HEAD}  \"identity\": \"none\",\n  \"limits\": {{ \"max_body_bytes\": \"big\" }},\n  \"rules\": [\n    {{ \"id\": \"a\", \"effect\": \"permit\", \"models\": [\"ok.model\", 5] }},\n    {{ \"id\": \"b\", \"effect\": \"allow\", \"models\": [\"bad model\"], \"description\": null }}\n  ]\n}}\n"
        ),
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    let o = &out.stdout;
    for line in [
        "b.json:6:3: error: identity: invalid type: string \"none\", expected struct Identity",
        "b.json:7:15: error: limits.max_body_bytes: invalid type: string \"big\", expected u64",
        "b.json:9:18: error: rules[0].effect: unknown variant `permit`",
        "b.json:9:61: error: rules[0].models[1]: invalid type: integer `5`, expected a string",
        "b.json:10:62: error: rules[1].description: null is not allowed",
        "b.json:10:48: error: rules[1].models[0]: \"bad model\" contains ' '",
    ] {
        assert!(o.contains(line), "{line}\n{o}");
    }
    // Nothing about the placeholders that stood in for the refused values (an identity
    // without providers, a body limit of 0, a rule without an effect).
    assert!(o.contains("b.json: invalid (6 errors)"), "{o}");
}

#[test]
fn yaml_unknown_field_and_semantic_error_are_reported_together() {
    let s = Scratch::new("validate-yaml-both");
    let text = DEMO_YAML
        .replace("  name: demo", "  name: Demo_Bundle")
        .replace(
            "    effect: deny\n    models: [\"global.*\"]",
            "    effect: deny\n    modelz: [\"global.*\"]",
        );
    let f = s.write("bad.yaml", &text);
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    let o = &out.stdout;
    assert!(
        o.contains("bad.yaml:44:5: error: rules[3].modelz: unknown field `modelz`"),
        "{o}"
    );
    assert!(o.contains("bad.yaml:5:3: error: metadata.name: "), "{o}");
    // The rule without its (misspelt) models is a deny rule matching everything: valid.
    assert!(o.contains("bad.yaml: invalid (2 errors)"), "{o}");
}

const RUNTIME_VPCE: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com";
const AGENT_VPCE: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-agent-runtime.us-east-1.vpce.amazonaws.com";

/// A valid bundle: `endpoints` (host, region) pairs, extra top-level members, and rules.
fn lint_bundle(
    endpoints: &[(&str, &str)],
    extra: serde_json::Value,
    rules: serde_json::Value,
) -> String {
    let mut v = serde_json::json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "t", "revision": "1" },
        "endpoints": endpoints.iter().map(|(host, region)| {
            if host.starts_with("vpce-") {
                serde_json::json!({ "host": host, "region": region })
            } else {
                serde_json::json!({ "host": host, "region": region, "private_dns": true, "cidrs": ["10.0.0.0/8"] })
            }
        }).collect::<Vec<_>>(),
        "rules": rules,
    });
    for (k, x) in extra.as_object().cloned().unwrap_or_default() {
        v[k] = x;
    }
    serde_json::to_string_pretty(&v).unwrap()
}

/// `validate` and `validate --strict` of a bundle: (stdout, strict exit code).
fn lint(name: &str, text: &str) -> (String, i32) {
    let s = Scratch::new(name);
    let f = s.write("b.json", text);
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 0, "{}", out.all());
    let strict = s.run(&["validate", "--strict", &f]);
    (out.stdout, strict.code)
}

const ALLOW_TITAN: &str = "amazon.titan-text-express-v1";

#[test]
fn deny_on_a_geography_no_endpoint_may_use_can_never_fire() {
    let rules = serde_json::json!([
        { "id": "titan", "effect": "allow", "models": [ALLOW_TITAN], "operations": ["Converse"] },
        { "id": "no-global", "effect": "deny", "models": ["global.*"] },
        { "id": "no-eu", "effect": "deny", "models": ["eu.anthropic.*"], "mode": "dry-run" }
    ]);
    let only_us = serde_json::json!({ "network": { "profile_geographies": ["us"] } });
    let (o, strict) = lint(
        "validate-dead-geo",
        &lint_bundle(&[(RUNTIME_VPCE, "us-east-1")], only_us, rules.clone()),
    );
    assert!(
        o.contains("warning: rules[1]: can never fire: every request it matches is refused before the rules: \"global.*\" names global cross-region profiles, refused at the geography check (region_not_allowed): network.profile_geographies does not list \"global\""),
        "{o}"
    );
    assert!(
        o.contains("warning: rules[2]: can never fire: every request it matches is refused before the rules: \"eu.anthropic.*\""),
        "{o}"
    );
    assert_eq!(strict, 1, "{o}");
    // Without the list, global profiles are allowed everywhere (the deny decides them); eu
    // ones still never serve us-east-1.
    let (o, _) = lint(
        "validate-dead-geo-default",
        &lint_bundle(&[(RUNTIME_VPCE, "us-east-1")], serde_json::json!({}), rules),
    );
    assert!(!o.contains("rules[1]: can never fire"), "{o}");
    assert!(
        o.contains("rules[2]: can never fire: every request it matches is refused before the rules: \"eu.anthropic.*\" names eu cross-region profiles, refused at the geography check (region_not_allowed): the eu geography does not serve us-east-1"),
        "{o}"
    );
}

#[test]
fn deny_that_can_also_match_other_ids_is_not_reported() {
    let only_us = serde_json::json!({ "network": { "profile_geographies": ["us"] } });
    for denied in [
        // a provider, not a geography: base model ids have none
        serde_json::json!(["anthropic.*"]),
        // one pattern that can fire is enough
        serde_json::json!(["global.*", "*opus*"]),
        // a geography the list allows
        serde_json::json!(["us.*"]),
        // `global*` also matches `globalx.y.z`, not a known geography
        serde_json::json!(["global*"]),
    ] {
        let rules = serde_json::json!([
            { "id": "titan", "effect": "allow", "models": [ALLOW_TITAN], "operations": ["Converse"] },
            { "id": "d", "effect": "deny", "models": denied }
        ]);
        let (o, strict) = lint(
            "validate-live-deny",
            &lint_bundle(&[(RUNTIME_VPCE, "us-east-1")], only_us.clone(), rules),
        );
        assert!(!o.contains("warning"), "{denied}: {o}");
        assert_eq!(strict, 0, "{denied}: {o}");
    }
}

#[test]
fn deny_on_arns_no_request_can_bring_to_the_rules_can_never_fire() {
    let rules = serde_json::json!([
        { "id": "titan", "effect": "allow", "models": [ALLOW_TITAN], "operations": ["Converse"] },
        { "id": "west", "effect": "deny", "models": ["arn:aws:bedrock:us-west-2:*"] },
        { "id": "china", "effect": "deny", "models": ["ARN:AWS-CN:*"] },
        { "id": "iam-global", "effect": "deny", "models": ["arn:aws:bedrock::*"] },
        { "id": "stranger", "effect": "deny", "models": ["arn:aws:bedrock:us-east-1:999999999999:*"] },
        { "id": "eu-profile", "effect": "deny", "models": ["arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.*"] },
        // near misses: may fire
        { "id": "ours", "effect": "deny", "models": ["arn:aws:bedrock:us-east-1:123456789012:*"] },
        { "id": "any-region", "effect": "deny", "models": ["arn:aws:bedrock:*:999999999999:*"] },
        { "id": "us-profile", "effect": "deny", "models": ["arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.*"] }
    ]);
    let extra = serde_json::json!({ "accounts": ["123456789012"] });
    let (o, strict) = lint(
        "validate-dead-arn",
        &lint_bundle(&[(RUNTIME_VPCE, "us-east-1")], extra, rules),
    );
    for (i, why) in [
        (1, "\"arn:aws:bedrock:us-west-2:*\" names ARNs in region \"us-west-2\", which no endpoint is in (region_not_allowed)"),
        (2, "\"ARN:AWS-CN:*\" names ARNs in partition \"aws-cn\", which no endpoint is in (region_not_allowed)"),
        (3, "\"arn:aws:bedrock::*\" names ARNs without a region, which are always refused (region_not_allowed)"),
        (4, "\"arn:aws:bedrock:us-east-1:999999999999:*\" names ARNs of account 999999999999, which is not in accounts (account_not_allowed)"),
        (5, "names eu cross-region profiles, refused at the geography check (region_not_allowed): the eu geography does not serve us-east-1"),
    ] {
        assert!(
            o.contains(&format!("warning: rules[{i}]: can never fire: every request it matches is refused before the rules: ")),
            "{i}: {o}"
        );
        assert!(o.contains(why), "{i}: {o}");
    }
    for i in 6..=8 {
        assert!(!o.contains(&format!("rules[{i}]")), "{i}: {o}");
    }
    assert_eq!(strict, 1);
}

#[test]
fn deny_on_operations_refused_for_an_unlisted_resource_can_never_fire() {
    let rules = serde_json::json!([
        { "id": "titan", "effect": "allow", "models": [ALLOW_TITAN], "operations": ["Converse"] },
        { "id": "no-async", "effect": "deny", "operations": ["StartAsyncInvoke", "ApplyGuardrail"] },
        { "id": "mixed", "effect": "deny", "models": ["*opus*"], "operations": ["StartAsyncInvoke", "Converse"] }
    ]);
    let (o, _) = lint(
        "validate-dead-resource",
        &lint_bundle(
            &[(RUNTIME_VPCE, "us-east-1")],
            serde_json::json!({}),
            rules.clone(),
        ),
    );
    assert!(
        o.contains("warning: rules[1]: can never fire: every request it matches is refused before the rules: StartAsyncInvoke is always refused (resource_not_allowed): resources.s3_outputs lists nothing; ApplyGuardrail is always refused (resource_not_allowed): resources.guardrails lists nothing"),
        "{o}"
    );
    assert!(!o.contains("rules[2]"), "{o}");
    let listed = serde_json::json!({ "resources": { "s3_outputs": ["s3://acme-out"], "guardrails": ["abc123"] } });
    let (o, _) = lint(
        "validate-live-resource",
        &lint_bundle(&[(RUNTIME_VPCE, "us-east-1")], listed, rules),
    );
    assert!(!o.contains("warning"), "{o}");
}

#[test]
fn operation_of_a_service_without_an_endpoint_is_reported() {
    let rules = serde_json::json!([
        { "id": "agents", "effect": "allow", "models": ["anthropic.claude-*"],
          "operations": ["InvokeInlineAgent", "RetrieveAndGenerate", "Converse"] },
        { "id": "chat", "effect": "allow", "models": ["openai.*"], "operations": ["ChatCompletions"] }
    ]);
    let (o, strict) = lint(
        "validate-no-agent-endpoint",
        &lint_bundle(
            &[(RUNTIME_VPCE, "us-east-1")],
            serde_json::json!({}),
            rules.clone(),
        ),
    );
    assert!(
        o.contains("warning: rules[0].operations[0]: allows InvokeInlineAgent, a bedrock-agent-runtime operation, but no endpoint is a bedrock-agent-runtime endpoint"),
        "{o}"
    );
    assert!(
        o.contains("warning: rules[0].operations[1]: allows RetrieveAndGenerate, a bedrock-agent-runtime operation"),
        "{o}"
    );
    assert!(!o.contains("operations[2]"), "{o}");
    assert!(!o.contains("rules[1]"), "{o}");
    assert_eq!(strict, 1);
    // With an agent-runtime endpoint, Converse is the one no endpoint serves.
    let (o, strict) = lint(
        "validate-agent-endpoint",
        &lint_bundle(
            &[
                (AGENT_VPCE, "us-east-1"),
                ("bedrock-mantle.us-east-1.api.aws", "us-east-1"),
            ],
            serde_json::json!({}),
            rules.clone(),
        ),
    );
    assert!(
        !o.contains("operations[0]") && !o.contains("operations[1]"),
        "{o}"
    );
    assert!(
        o.contains("warning: rules[0].operations[2]: allows Converse, a bedrock-runtime operation, but no endpoint is a bedrock-runtime endpoint"),
        "{o}"
    );
    // ChatCompletions is served by bedrock-mantle too.
    assert!(!o.contains("rules[1]"), "{o}");
    assert_eq!(strict, 1);
    let (o, strict) = lint(
        "validate-both-endpoints",
        &lint_bundle(
            &[(RUNTIME_VPCE, "us-east-1"), (AGENT_VPCE, "us-east-1")],
            serde_json::json!({}),
            rules,
        ),
    );
    assert!(!o.contains("warning"), "{o}");
    assert_eq!(strict, 0);
}

#[test]
fn upper_case_in_a_deny_pattern_is_not_reported() {
    // Deny patterns match without regard to case.
    let rules = serde_json::json!([
        { "id": "titan", "effect": "allow", "models": [ALLOW_TITAN], "operations": ["Converse"] },
        { "id": "no-opus", "effect": "deny", "models": ["Anthropic.Claude-Opus*"] }
    ]);
    let (o, strict) = lint(
        "validate-deny-case",
        &lint_bundle(&[(RUNTIME_VPCE, "us-east-1")], serde_json::json!({}), rules),
    );
    assert!(!o.contains("warning"), "{o}");
    assert_eq!(strict, 0);
}
