//! `bedrock-guard test`: case files, the summary line CI parses, and exit codes.

use crate::support::*;

fn demo() -> String {
    example("demo.json").to_string_lossy().into_owned()
}

#[test]
fn shipped_demo_cases_all_pass() {
    let cases = example("demo.cases.json");
    let out = run(&["test", &demo(), "--cases", cases.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let last = out.stdout.lines().last().unwrap();
    let (passed, failed) = last.split_once(" passed, ").unwrap();
    assert_eq!(failed, "0 failed");
    assert!(passed.parse::<usize>().unwrap() >= 25, "{last}");
}

#[test]
fn shipped_demo_cases_cover_every_refusal_class() {
    let text = std::fs::read_to_string(example("demo.cases.json")).unwrap();
    for reason in [
        "allowed",
        "model_not_allowed",
        "model_denied",
        "model_unparseable",
        "operation_unknown",
        "query_not_allowed",
        "body_unparseable",
        "body_too_large",
        "region_not_allowed",
        "account_not_allowed",
        "destination_not_privatelink",
        "bearer_key_not_allowed",
        "header_invalid",
        "connect_not_allowed",
    ] {
        let shown = reason == "allowed" || text.contains(&format!("\"reason\": \"{reason}\""));
        assert!(shown, "no case expects {reason}");
    }
    for rule in [
        "claude-and-titan",
        "app-profile-by-arn",
        "guardrails",
        "no-global-profiles",
        "no-opus",
    ] {
        assert!(
            text.contains(&format!("\"rule\": \"{rule}\"")),
            "no case decided by {rule}"
        );
    }
}

#[test]
fn the_same_cases_pass_against_the_yaml_bundle() {
    let s = Scratch::new("cases-yaml");
    let b = s.write("demo.yaml", DEMO_YAML);
    let cases = example("demo.cases.json");
    let out = s.run(&["test", &b, "--cases", cases.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn failing_cases_print_one_line_each_and_exit_1() {
    let s = Scratch::new("cases-fail");
    let cases = s.write(
        "c.yaml",
        r#"
- name: opus is allowed (wrong on purpose)
  request: { path: "/model/anthropic.claude-opus-4-20250514-v1%3A0/converse" }
  expect: { verdict: allow }
- name: titan is allowed
  request: { path: /model/amazon.titan-text-express-v1/invoke }
  expect: { verdict: allow, rule: claude-and-titan, mode: enforce }
- name: wrong rule
  request: { path: "/model/global.anthropic.claude-sonnet-4-20250514-v1%3A0/converse" }
  expect: { verdict: deny, reason: model_denied, rule: no-opus }
"#,
    );
    let out = s.run(&["test", &demo(), "--cases", &cases]);
    assert_eq!(out.code, 1, "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with("FAIL cases[0] \"opus is allowed (wrong on purpose)\": expected verdict=allow; got verdict=deny reason=model_denied rule=no-opus"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("FAIL cases[2] \"wrong rule\""),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "1 passed, 2 failed");
}

#[test]
fn verbose_lists_passing_cases() {
    let s = Scratch::new("cases-verbose");
    let cases = s.write(
        "c.json",
        r#"[{"name": "t", "request": {"path": "/model/amazon.titan-text-express-v1/invoke"}, "expect": {"verdict": "allow"}}]"#,
    );
    let out = s.run(&["test", &demo(), "--cases", &cases, "-v"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "ok   cases[0] \"t\"\n1 passed, 0 failed\n");
}

#[test]
fn a_malformed_case_file_exits_2_naming_the_case() {
    let s = Scratch::new("cases-bad");
    let cases = s.write(
        "c.json",
        "{\"cases\": [\n {\"name\": \"a\", \"request\": {\"path\": \"/x\"}, \"expect\": {\"verdict\": \"allow\"}},\n {\"name\": \"b\", \"request\": {\"path\": \"/x\"}, \"expect\": {\"verdict\": \"deny\", \"reason\": \"nope\"}}]}",
    );
    let out = s.run(&["test", &demo(), "--cases", &cases]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("c.json:3:")
            && out
                .stderr
                .contains("cases[1].expect.reason: unknown reason \"nope\""),
        "{}",
        out.stderr
    );
    let cases = s.write(
        "d.json",
        r#"[{"name": "a", "request": {"path": "/x"}, "expct": {}}]"#,
    );
    let out = s.run(&["test", &demo(), "--cases", &cases]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("[0]: unknown field `expct`"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_invalid_bundle_fails_every_case() {
    let s = Scratch::new("cases-invalid-bundle");
    let b = s.write("b.json", "{}");
    let cases = example("demo.cases.json");
    let out = s.run(&["test", &b, "--cases", cases.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.lines().last().unwrap().starts_with("0 passed, "),
        "{}",
        out.stdout
    );
}
