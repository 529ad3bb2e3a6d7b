//! `bedrock-guard validate`, `--help` and exit codes.

mod cli_support;
use cli_support::*;

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
        "validate", "digest", "keygen", "sign", "verify", "explain", "test", "ecds", "schema",
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
            .contains("bad.yaml:42:5: error: rules[3].modelz: unknown field `modelz`"),
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
