//! `bedrock-guard explain`: the engine's decision plus a rule-by-rule explanation.

use crate::cli_support::*;

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
        "rules[4] no-opus (deny enforce): operation any; models 1 of 1 match -> MATCH (decided)",
        "rules[3] no-global-profiles (deny enforce): operation any; models 0 of 1 match -> no match",
        "rules[0] claude-and-titan (allow enforce): operation match; models 1 of 1 match -> not considered",
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
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5);
    assert_eq!(rules[0]["decided"], true);
    assert_eq!(rules[0]["matched"], true);
    assert_eq!(rules[2]["operation_matches"], false);
    assert_eq!(rules[4]["considered"], true);
    assert_eq!(rules[4]["matched"], false);
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
