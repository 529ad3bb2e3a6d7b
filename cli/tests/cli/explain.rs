//! `bedrock-guard explain`: the engine's decision plus its own trace of the rules it tried.

use serde_json::{json, Value};

use crate::support::*;

fn demo() -> String {
    example("demo.json").to_string_lossy().into_owned()
}

#[test]
fn explains_a_denied_model_with_the_deciding_rule() {
    let out = run(&[
        "explain",
        &demo(),
        "--path",
        "/model/us.anthropic.claude-opus-4-20250514-v1%3A0/converse",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let o = &out.stdout;
    for want in [
        "verdict:    deny",
        "reason:     model_denied",
        "detail:     denied by rule no-opus",
        "rule:       no-opus",
        "mode:       enforce",
        "operation:  Converse",
        "models:     us.anthropic.claude-opus-4-20250514-v1:0",
        "step:       enforced deny rules",
        // In the order the engine tried them: deny rules first, and the enforced deny ends it.
        "  rules[3] no-global-profiles (deny enforce): operation any; models 0 of 1 match -> no match\n  \
         rules[4] no-opus (deny enforce): operation any; models 1 of 1 match -> MATCH (decided)\n",
        "rules[0] claude-and-titan (allow enforce) -> not considered",
        "rules[2] guardrails (allow enforce) -> not considered",
    ] {
        assert!(o.contains(want), "missing {want:?} in\n{o}");
    }
}

#[test]
fn explains_an_allow_as_json() {
    let out = run(&[
        "explain",
        &demo(),
        "--method",
        "POST",
        "--path",
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        "--authority",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "--header",
        "content-type: application/json",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["reason"], "allowed");
    assert_eq!(v["rule"], "claude-and-titan");
    assert_eq!(v["operation"], "Converse");
    assert_eq!(v["models"][0], "anthropic.claude-3-5-sonnet-20240620-v1:0");
    assert_eq!(v["status"], 200);
    assert_eq!(v["step"], "allowed");
    assert_eq!(v["rules_reached"], true);
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5);
    assert_eq!(rules[0]["decided"], true);
    assert_eq!(rules[0]["matched"], true);
    assert_eq!(rules[0]["operation_matches"], true);
    assert_eq!(rules[0]["models_matched"], 1);
    assert_eq!(
        rules[0]["matched_models"],
        json!(["anthropic.claude-3-5-sonnet-20240620-v1:0"])
    );
    // The deny rules were tried first, then the first allow rule allowed the model: the engine
    // never tried the other allow rules, so nothing is said about them.
    let order: Vec<_> = rules.iter().map(|r| r["order"].clone()).collect();
    assert_eq!(
        order,
        [json!(2), json!(null), json!(null), json!(0), json!(1)]
    );
    assert_eq!(rules[2]["considered"], false);
    assert_eq!(rules[2]["operation_matches"], Value::Null);
    assert_eq!(rules[4]["considered"], true);
    assert_eq!(rules[4]["matched"], false);
    assert_eq!(rules[4]["models_matched"], 0);
}

#[test]
fn explains_a_dry_run_deny_after_the_allow_rule_that_passed_it() {
    let out = run(&[
        "explain",
        &example("identity.json").to_string_lossy(),
        "--path",
        "/model/anthropic.claude-sonnet-4-haiku-v1%3A0/converse",
        "--caller-sub",
        "system:serviceaccount:ml:trainer",
        "--caller-group",
        "ml-platform",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (&v["verdict"], &v["reason"], &v["rule"], &v["mode"]),
        (
            &json!("deny"),
            &json!("model_denied"),
            &json!("watch-haiku"),
            &json!("dry-run")
        )
    );
    assert_eq!(v["step"], "dry-run deny rules");
    let rules = v["rules"].as_array().unwrap();
    // rules[2] names principals the trainer does not match; rules[3] matched in dry-run and
    // decided once an allow rule (rules[0]) had allowed the model.
    assert_eq!(rules[2]["principal_matches"], false);
    assert_eq!(rules[2]["matched"], false);
    assert_eq!(rules[3]["mode"], "dry-run");
    assert_eq!(rules[3]["decided"], true);
    assert_eq!(rules[0]["principal_matches"], true);
    assert_eq!(rules[0]["matched"], true);
    assert_eq!(rules[0]["decided"], false);
    assert_eq!(rules[1]["considered"], false);
}

#[test]
fn a_request_refused_before_the_rules_names_the_step() {
    let out = run(&[
        "explain",
        &demo(),
        "--path",
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        "--authority",
        "bedrock-runtime.us-west-2.amazonaws.com",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let o = &out.stdout;
    for want in [
        "reason:     destination_not_privatelink",
        "step:       destination",
        "  not reached: the request was refused at step \"destination\" (destination_not_privatelink) before any rule was tried",
        "rules[4] no-opus (deny enforce) -> not considered",
    ] {
        assert!(o.contains(want), "missing {want:?} in\n{o}");
    }
}

/// `explain` prints the engine's trace; it must not work the matching out again (issue 13).
#[test]
fn explain_matches_no_rule_itself() {
    let source = include_str!("../../src/explain.rs");
    for building_block in [
        "PatternSet",
        "ModelMatcher",
        "model_allowed_by",
        "model_denied_by",
        "claim_strings",
        "schema::Rule",
        "parse_body_model_id",
    ] {
        assert!(
            !source.contains(building_block),
            "cli/src/explain.rs uses {building_block}: render the engine's trace instead"
        );
    }
}

#[test]
fn explains_a_structural_refusal_without_rules() {
    let out = run(&[
        "explain",
        &demo(),
        "--path",
        "/model/x%252Fy/converse",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["reason"], "model_unparseable");
    assert_eq!(v["step"], "model id and body head");
    assert_eq!(v["rules_reached"], false);
    assert!(v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["considered"] == false));
    assert_eq!(v["status"], 403);
    assert!(v["response_body"]
        .as_str()
        .unwrap()
        .contains("bedrock-guard: model_unparseable"));
}

#[test]
fn reads_a_body_file() {
    let s = Scratch::new("explain-body");
    s.write(
        "body.json",
        r#"{"model": "openai.gpt-oss-20b-1:0", "messages": []}"#,
    );
    let out = s.run(&[
        "explain",
        &demo(),
        "--path",
        "/openai/v1/chat/completions",
        "-H",
        "Content-Type: application/json",
        "--body",
        "body.json",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "allow", "{}", out.stdout);
    assert_eq!(v["operation"], "ChatCompletions");
}

#[test]
fn reads_a_raw_absolute_form_request() {
    let s = Scratch::new("explain-raw");
    s.write(
        "req.http",
        "POST http://bedrock-runtime.us-east-1.amazonaws.com/openai/v1/chat/completions HTTP/1.1\r\n\
         Host: bedrock-runtime.us-east-1.amazonaws.com\r\n\
         Content-Type: application/json\r\n\
         Content-Length: 32\r\n\r\n\
         {\"model\": \"meta.llama3-8b-v1:0\"}xxxxx",
    );
    let out = s.run(&["explain", &demo(), "--request", "req.http", "--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["reason"], "model_not_allowed", "{}", out.stdout);
    assert_eq!(v["models"][0], "meta.llama3-8b-v1:0");
    assert_eq!(
        v["request"]["authority"],
        "bedrock-runtime.us-east-1.amazonaws.com"
    );
}

#[test]
fn reads_a_raw_origin_form_request() {
    let s = Scratch::new("explain-origin");
    s.write(
        "req.http",
        "POST /model/amazon.titan-text-express-v1/invoke HTTP/1.1\nHost: evil.example\n\n{}",
    );
    let out = s.run(&["explain", &demo(), "--request", "req.http", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["reason"], "destination_not_privatelink", "{}", out.stdout);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["explain", &demo()]).code, 2);
    assert_eq!(
        run(&["explain", &demo(), "--path", "/x", "--header", "nocolon"]).code,
        2
    );
    assert_eq!(
        run(&["explain", &demo(), "--path", "/x", "--request", "r"]).code,
        2
    );
    assert_eq!(
        run(&["explain", &demo(), "--request", "missing.http"]).code,
        2
    );
}

#[test]
fn an_invalid_bundle_exits_1() {
    let s = Scratch::new("explain-invalid");
    let b = s.write("b.json", "{}");
    assert_eq!(s.run(&["explain", &b, "--path", "/x"]).code, 1);
}
