//! `bedrock-guard report`: the audit-log summary on the terminal, as JSON and as an HTML page.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::support::Scratch;

fn audit_fixture() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reconcile/audit.log")
        .to_string_lossy()
        .into_owned()
}

const CALLER: &str = "sub:system:serviceaccount:shop:checkout";

#[test]
fn report_counts_callers_models_reasons_and_hourly_tokens() {
    let s = Scratch::new("report-json");
    let out = s.run(&["report", &audit_fixture(), "--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        doc["totals"],
        json!({"requests": 5, "allowed": 3, "denied": 2, "dryRunDenied": 1, "forwarded": 4,
               "inputTokens": 66, "outputTokens": 206})
    );
    assert_eq!(doc["from"], "2026-11-30T10:00:09Z");
    assert_eq!(doc["to"], "2026-11-30T10:04:00Z");
    assert_eq!(
        doc["callers"],
        json!([{"caller": CALLER, "groups": ["shop"], "requests": 5, "allowed": 3, "denied": 2,
                "dryRunDenied": 1, "inputTokens": 66, "outputTokens": 206}])
    );
    let models: Vec<_> = doc["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap(),
                m["requests"].as_u64().unwrap(),
                m["inputTokens"].as_u64().unwrap(),
                m["outputTokens"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        models,
        [
            ("amazon.titan-text-express-v1", 1, 9, 21),
            ("anthropic.claude-3-haiku-20240307-v1:0", 2, 27, 100),
            ("meta.llama3-70b-instruct-v1:0", 1, 0, 0),
            ("us.anthropic.claude-3-5-haiku-20241022-v1:0", 1, 30, 85),
        ]
    );
    assert_eq!(
        doc["reasons"],
        json!([{"reason": "model_denied", "denied": 0, "dryRunDenied": 1},
               {"reason": "model_not_allowed", "denied": 1, "dryRunDenied": 0}])
    );
    let hourly = doc["hourly"].as_array().unwrap();
    assert_eq!(hourly.len(), 4);
    assert!(hourly.iter().all(|h| h["hour"] == "2026-11-30T10:00Z"));
    assert_eq!(
        hourly[1],
        json!({"hour": "2026-11-30T10:00Z", "caller": CALLER,
               "model": "anthropic.claude-3-haiku-20240307-v1:0", "requests": 2,
               "inputTokens": 27, "outputTokens": 100})
    );
    assert!(out.stderr.contains("3 line(s) skipped"), "{}", out.stderr);
}

#[test]
fn report_splits_hours_and_callers_without_identity() {
    let s = Scratch::new("report-hours");
    let line = |time: &str, akid: &str, model: &str, input: u64, output: u64| {
        format!(
            "{{\"eventTime\":\"{time}\",\"accessKeyId\":\"{akid}\",\"userIdentity\":null,\
             \"requestParameters\":{{\"modelId\":\"{model}\"}},\"decision\":\"allow\",\
             \"reason\":\"allowed\",\"mode\":\"enforce\",\"upstreamStatus\":200,\
             \"inputTokens\":{input},\"outputTokens\":{output}}}\n"
        )
    };
    let log = [
        line("2026-11-30T09:59:59.999Z", "AKIAONE", "m.a", 1, 2),
        line("2026-11-30T10:00:00.000Z", "AKIAONE", "m.a", 10, 20),
        line("2026-11-30T10:30:00.000Z", "AKIAONE", "m.a", 100, 200),
        line("2026-11-30T10:30:00.000Z", "AKIATWO", "m.a", 1000, 2000),
    ]
    .concat();
    let path = s.write("a.log", &log);
    let out = s.run(&["report", &path, "--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let rows: Vec<_> = doc["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["hour"].as_str().unwrap(),
                h["caller"].as_str().unwrap(),
                h["requests"].as_u64().unwrap(),
                h["inputTokens"].as_u64().unwrap(),
                h["outputTokens"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-11-30T09:00Z", "key:AKIAONE", 1, 1, 2),
            ("2026-11-30T10:00Z", "key:AKIAONE", 2, 110, 220),
            ("2026-11-30T10:00Z", "key:AKIATWO", 1, 1000, 2000),
        ]
    );
    // The terminal form shows the same rows.
    let text = s.run(&["report", &path]);
    assert_eq!(text.code, 0);
    let row = text
        .stdout
        .lines()
        .find(|l| l.contains("2026-11-30T10:00Z") && l.contains("key:AKIAONE"))
        .unwrap();
    let cells: Vec<_> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["2026-11-30T10:00Z", "key:AKIAONE", "m.a", "2", "110", "220"]
    );
}

#[test]
fn html_page_is_self_contained_and_shows_the_numbers() {
    let s = Scratch::new("report-html");
    let page = s.path("report.html");
    let out = s.run(&["report", &audit_fixture(), "--html", page.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("Callers: 1"), "{}", out.stdout);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    for needle in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(needle), "page holds {needle:?}");
    }
    assert!(html.contains("<div data-total=\"records\"><dt>records</dt><dd>5</dd></div>"));
    assert!(html.contains(
        "<div data-total=\"dryRunDenied\"><dt>denied in dry-run (let through)</dt><dd>1</dd></div>"
    ));
    assert!(
        html.contains("<div data-total=\"outputTokens\"><dt>output tokens</dt><dd>206</dd></div>")
    );
    assert!(html.contains(&format!("<tr data-caller=\"{CALLER}\">")));
    assert!(html.contains(
        "<tr data-reason=\"model_not_allowed\"><td data-col=\"reason\">model_not_allowed</td>\
         <td class=\"n\" data-col=\"denied\">1</td>"
    ));
    // Four models, four hourly rows, one chart per section.
    assert_eq!(html.matches("<tr data-model=").count(), 4);
    assert_eq!(html.matches("<tr data-hour=").count(), 4);
    for chart in [
        "callers-chart",
        "models-chart",
        "reasons-chart",
        "hourly-chart",
    ] {
        assert!(html.contains(&format!("<svg id=\"{chart}\"")), "{chart}");
    }
}

#[test]
fn html_escapes_everything_taken_from_the_log() {
    let s = Scratch::new("report-xss");
    let hostile = "<script>alert(1)</script>";
    let attr = "\\\"><img src=x onerror=alert(2)>";
    let log = format!(
        "{{\"eventTime\":\"2026-11-30T10:00:00.000Z\",\"userIdentity\":{{\"subject\":\"{hostile}\",\
         \"groups\":[\"{attr}\"]}},\"accessKeyId\":null,\"requestParameters\":{{\"modelId\":\
         \"<svg onload=alert(3)>\"}},\"decision\":\"deny\",\"reason\":\"</td><b>x</b>\",\
         \"mode\":\"enforce\"}}\n"
    );
    let path = s.write("x.log", &log);
    let page = s.path("x.html");
    let out = s.run(&["report", &path, "--html", page.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let html = std::fs::read_to_string(&page).unwrap();
    for raw in ["<script", "<img", "<svg onload", "<b>x</b>"] {
        assert!(!html.contains(raw), "unescaped {raw:?} in the page");
    }
    assert!(html.contains("sub:&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(html.contains("data-model=\"&lt;svg onload=alert(3)&gt;\""));
    assert!(html.contains("&lt;/td&gt;&lt;b&gt;x&lt;/b&gt;"));
}

#[test]
fn report_refuses_a_malformed_record_with_its_line() {
    let s = Scratch::new("report-bad");
    let path = s.write(
        "bad.log",
        "-\nnot json at all\n{\"eventTime\":\"2026-11-30T10:00:00.000Z\",\"decision\":\"allow\",\
         \"reason\":\"allowed\",\"mode\":\"enforce\",\"inputTokens\":\"12\"}\n",
    );
    let out = s.run(&["report", &path]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("bad.log:3: inputTokens: neither a non-negative integer nor null"),
        "{}",
        out.stderr
    );
    let out = s.run(&["report"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("AUDIT_LOG is required"),
        "{}",
        out.stderr
    );
}
