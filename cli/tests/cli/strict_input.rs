//! Strict reading of policy bundles (issue 9) through the command line: a `null` anywhere is an
//! error under its field path and line, a member name written with a backslash escape is
//! refused, in JSON and in YAML, by every command that reads a bundle. The engine's own entry
//! points are tested in `policies/tests/engine/bundle_strict_json.rs`.

use crate::support::*;

use serde_json::Value;

use crate::strict_bundle_support::{base, text, with_escaped_name};

// ---------------------------------------------------------------- shipped examples

#[test]
fn every_shipped_example_bundle_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).expect("examples directory") {
        let name = entry.expect("entry").path().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".cases.json") {
            continue;
        }
        let out = run(&["validate", &name]);
        assert_eq!(out.code, 0, "{name}: {}", out.all());
        seen += 1;
    }
    assert!(seen >= 2, "found {seen} example bundles");
}

// ---------------------------------------------------------------- the CLI, JSON and YAML

const YAML_HEAD: &str = r#"apiVersion: bedrock-guard/v1
kind: PolicyBundle
metadata:
  name: strict
  revision: "1"
endpoints:
  - host: vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com
    region: us-east-1
"#;

/// A YAML list whose entries are all commented out is `null`, not `[]`.
const YAML_COMMENTED_OUT: &str = r#"network:
  profile_geographies:
    # - us
    # - eu
rules:
  - id: ml
    effect: allow
    models: [anthropic.claude-sonnet-4-*]
"#;

#[test]
fn validate_reports_a_commented_out_yaml_list_with_its_path_and_line() {
    let s = Scratch::new("strict-yaml-null");
    let f = s.write("b.yaml", &format!("{YAML_HEAD}{YAML_COMMENTED_OUT}"));
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains(
            "b.yaml:10:3: error: network.profile_geographies: null is not allowed; omit the field or give a value"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("b.yaml: invalid (1 error)"),
        "{}",
        out.stdout
    );
}

#[test]
fn validate_reports_every_yaml_null_with_its_position() {
    let s = Scratch::new("strict-yaml-nulls");
    let f = s.write(
        "b.yaml",
        &format!(
            "{YAML_HEAD}accounts:\nrules:\n  - id: ml\n    effect: allow\n    principals: ~\n    models: [a.b, null]\n"
        ),
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    let mut at = 0;
    for line in [
        "b.yaml:9:1: error: accounts: null is not allowed",
        "b.yaml:13:5: error: rules[0].principals: null is not allowed",
        "b.yaml:14:19: error: rules[0].models[1]: null is not allowed; remove the element",
        "b.yaml: invalid (3 errors)",
    ] {
        // In document order.
        let found = out.stdout.get(at..).and_then(|rest| rest.find(line));
        assert!(found.is_some(), "{line}\n{}", out.stdout);
        at += found.unwrap_or_default() + line.len();
    }
}

#[test]
fn validate_reports_a_json_null_with_its_path_and_line() {
    let s = Scratch::new("strict-json-null");
    let mut v = base();
    v["rules"][0]["principals"] = Value::Null;
    let f = s.write("b.json", &text(&v));
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    let line = text(&v)
        .lines()
        .position(|l| l.contains(r#""principals": null"#))
        .expect("line")
        + 1;
    assert!(
        out.stdout.contains(&format!(
            "b.json:{line}:7: error: rules[0].principals: null is not allowed; omit the field or give a value"
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn validate_refuses_escaped_names_in_json_and_yaml_with_their_line() {
    let s = Scratch::new("strict-escapes");
    let json = with_escaped_name("mode", r"m\u006fde");
    let line = json
        .lines()
        .position(|l| l.contains(r#""m\u006fde""#))
        .expect("line")
        + 1;
    let f = s.write("b.json", &json);
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains(&format!(
            "b.json:{line}:13: error: mode: the member name is written with a backslash escape"
        )),
        "{}",
        out.stdout
    );
    let f = s.write(
        "b.yaml",
        &format!("{YAML_HEAD}rules:\n  - id: ml\n    \"e\\x66fect\": allow\n    models: [a.b]\n"),
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains(
            "b.yaml:11:5: error: rules[0].effect: the member name is written with a backslash escape"
        ),
        "{}",
        out.stdout
    );
    // Plain double-quoted YAML keys and escapes in values are fine.
    let f = s.write(
        "ok.yaml",
        &format!(
            "{YAML_HEAD}rules:\n  - \"id\": \"m\\x6c\"\n    \"effect\": allow\n    models: [a.b]\n"
        ),
    );
    let out = s.run(&["validate", &f]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn every_command_that_reads_a_bundle_refuses_a_null() {
    let s = Scratch::new("strict-commands");
    let yaml = s.write("b.yaml", &format!("{YAML_HEAD}{YAML_COMMENTED_OUT}"));
    let mut v = base();
    v["accounts"] = Value::Null;
    let json = s.write("b.json", &text(&v));
    assert_eq!(s.run(&["keygen", "--out", "k"]).code, 0);
    let cases = s.write(
        "cases.json",
        r#"[{"name": "x", "request": {"method": "GET", "path": "/async-invoke",
             "authority": "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com"},
             "expect": {"verdict": "deny"}}]"#,
    );
    for file in [&yaml, &json] {
        let commands: [Vec<&str>; 6] = [
            vec!["validate", file],
            vec!["digest", file],
            vec!["sign", file, "--key", "k.key.pem", "--out", "-"],
            vec!["ecds", file, "--out-dir", "."],
            vec!["test", file, "--cases", &cases],
            vec![
                "explain",
                file,
                "--method",
                "GET",
                "--path",
                "/async-invoke",
                "--authority",
                "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com",
            ],
        ];
        for args in commands {
            let out = s.run(&args);
            assert_ne!(out.code, 0, "{args:?} accepted a null:\n{}", out.all());
            assert!(
                out.all()
                    .contains(": null is not allowed; omit the field or give a value"),
                "{args:?}:\n{}",
                out.all()
            );
        }
    }
}
