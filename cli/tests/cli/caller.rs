//! The CLI decides as a verified caller when a test case (`request.caller`) or `explain`
//! (`--caller-sub`, `--caller-group`, `--caller-claim`) says who is calling, so bundles with an
//! identity block can be tested like any other. Real tokens (`token`, `--token`): token.rs.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bedrock-guard");
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../policies/examples/identity.json"
);
const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../policies/examples/identity.cases.json"
);
const SONNET: &str = "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse";

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run bedrock-guard");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn identity_example_cases_pass_with_callers() {
    let (code, out) = run(&["test", EXAMPLE, "--cases", CASES]);
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with("10 passed, 0 failed"), "{out}");
}

#[test]
fn a_case_expecting_the_wrong_verdict_for_a_caller_fails() {
    let dir = std::env::temp_dir().join(format!("cli-caller-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = dir.join("wrong.cases.json");
    std::fs::write(
        &cases,
        r#"{"cases":[{"name":"web group wrongly expected to pass",
            "request":{"path":"/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse",
                       "caller":{"subject":"svc","groups":["web"]}},
            "expect":{"verdict":"allow"}}]}"#,
    )
    .unwrap();
    let (code, out) = run(&["test", EXAMPLE, "--cases", cases.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("0 passed, 1 failed"), "{out}");
    assert!(out.contains("model_not_allowed"), "{out}");
}

#[test]
fn a_caller_without_a_subject_is_refused_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("cli-caller-sub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = dir.join("nosub.cases.json");
    std::fs::write(
        &cases,
        r#"{"cases":[{"name":"x","request":{"path":"/x","caller":{"groups":["ml"]}},
            "expect":{"verdict":"deny"}}]}"#,
    )
    .unwrap();
    let (code, out) = run(&["test", EXAMPLE, "--cases", cases.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("subject"), "{out}");
}

#[test]
fn explain_as_a_group_member_allows_and_lists_the_principal_match() {
    let (code, out) = run(&[
        "explain",
        EXAMPLE,
        "--path",
        SONNET,
        "--caller-sub",
        "svc",
        "--caller-group",
        "ml-platform",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let text = v.to_string();
    assert!(text.contains("\"allow\""), "{text}");
    assert!(text.contains("\"principal_matches\":true"), "{text}");
}

#[test]
fn explain_without_a_caller_is_identity_missing() {
    let (code, out) = run(&["explain", EXAMPLE, "--path", SONNET]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("identity_missing"), "{out}");
    assert!(out.contains("no caller given"), "{out}");
}

#[test]
fn explain_claims_need_a_subject() {
    let (code, out) = run(&[
        "explain",
        EXAMPLE,
        "--path",
        SONNET,
        "--caller-claim",
        "team=x",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--caller-sub"), "{out}");
}

#[test]
fn explain_names_the_caller_it_decided_for() {
    let (code, out) = run(&[
        "explain",
        EXAMPLE,
        "--path",
        SONNET,
        "--caller-sub",
        "svc",
        "--caller-group",
        "ml-platform",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("caller:     svc (given by hand, not verified; groups: ml-platform)"),
        "{out}"
    );

    // A bundle without an identity block decides as an anonymous caller, whoever is given.
    let demo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/examples/demo.json"
    );
    let (code, out) = run(&["explain", demo, "--path", SONNET, "--caller-sub", "svc"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("caller:     anonymous"), "{out}");
}
