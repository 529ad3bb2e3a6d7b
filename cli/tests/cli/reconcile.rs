//! `bedrock-guard reconcile`: the audit log joined with CloudTrail (fixtures in
//! `tests/fixtures/reconcile/`, variants derived here so each finding comes from one change).

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::support::{Output, Scratch};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reconcile")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn clean_trail() -> Value {
    serde_json::from_str(&fixture_text("cloudtrail-clean.json")).unwrap()
}

/// The Bedrock runtime record of the clean trail whose requestID (Bedrock's) ends with `suffix`.
fn event_mut<'a>(trail: &'a mut Value, suffix: &str) -> &'a mut Value {
    trail["Records"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["requestID"] == format!("b6a4c2d0-5e1f-4a3b-8c7d-10000000{suffix}").as_str())
        .unwrap()
}

fn run_json(s: &Scratch, audit: &str, trails: &[&str], extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["reconcile", "--audit", audit, "--cloudtrail"];
    args.extend_from_slice(trails);
    args.extend_from_slice(extra);
    args.push("--json");
    let out = s.run(&args);
    let doc = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.all()));
    (out, doc)
}

fn fixture_path(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

#[test]
fn clean_trail_reconciles() {
    let s = Scratch::new("rec-clean");
    let (out, doc) = run_json(
        &s,
        &fixture_path("audit.log"),
        &[&fixture_path("cloudtrail-clean.json")],
        &["--slack", "0"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(doc["matched"], 4);
    assert_eq!(doc["findings"], 0);
    // The InvokeModel through the `us.` profile ran in us-west-2: accepted, counted.
    assert_eq!(doc["routedCrossRegion"], 1);
    assert_eq!(doc["audit"]["records"], 5);
    assert_eq!(doc["audit"]["forwarded"], 4);
    assert_eq!(doc["audit"]["skippedLines"], 3);
    assert_eq!(doc["cloudtrail"]["events"], 4);
    assert_eq!(doc["cloudtrail"]["ignored"], 2);
    assert_eq!(doc["window"]["start"], "2026-11-30T10:00:10Z");
    assert_eq!(doc["window"]["end"], "2026-11-30T10:04:00Z");
    // Text form.
    let text = s.run(&[
        "reconcile",
        "--audit",
        &fixture_path("audit.log"),
        "--cloudtrail",
        &fixture_path("cloudtrail-clean.json"),
        "--slack",
        "0",
    ]);
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stdout.contains("reconciled: no findings"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("matched: 4;"), "{}", text.stdout);
    assert!(text.stderr.contains("3 line(s) skipped"), "{}", text.stderr);
}

#[test]
fn gzip_trail_files_read_like_plain_ones() {
    let s = Scratch::new("rec-gz");
    let gz = s.path("111122223333_CloudTrail_us-east-1_20261130T1005Z_abcdEFGH12345678.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(fixture_text("cloudtrail-clean.json").as_bytes())
        .unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let (out, doc) = run_json(
        &s,
        &fixture_path("audit.log"),
        &[gz.to_str().unwrap()],
        &["--slack", "0"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(doc["matched"], 4);
    assert_eq!(doc["cloudtrail"]["events"], 4);
    // The same events in a second, plain file are counted once.
    let (out, doc) = run_json(
        &s,
        &fixture_path("audit.log"),
        &[gz.to_str().unwrap(), &fixture_path("cloudtrail-clean.json")],
        &["--slack", "0"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(doc["cloudtrail"]["duplicates"], 4);
    assert_eq!(doc["matched"], 4);
    // A damaged gzip file is bad input that names the file.
    let bad = s.path("broken.json.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
    let out = s.run(&[
        "reconcile",
        "--audit",
        &fixture_path("audit.log"),
        "--cloudtrail",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("broken.json.gz: not a readable gzip file"),
        "{}",
        out.stderr
    );
}

#[test]
fn calls_around_the_guard_are_reported_by_principal_source_ip_and_vpc_endpoint() {
    let s = Scratch::new("rec-around");
    // A second unseen call, through a VPC endpoint the guard does not front.
    let mut around: Value = serde_json::from_str(&fixture_text("cloudtrail-around.json")).unwrap();
    let mut second = around["Records"][0].clone();
    second["requestID"] = json!("d9e8f7a6-0000-4b1c-9d2e-200000000002");
    second["eventTime"] = json!("2026-11-30T10:03:30Z");
    second["vpcEndpointId"] = json!("vpce-0fedcba9876543210");
    second["sourceIPAddress"] = json!("10.1.7.9");
    around["Records"].as_array_mut().unwrap().push(second);
    let around_path = s.write("around.json", &around.to_string());
    let (out, doc) = run_json(
        &s,
        &fixture_path("audit.log"),
        &[&fixture_path("cloudtrail-clean.json"), &around_path],
        &["--slack", "0"],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(doc["findings"], 2);
    let unseen = doc["aroundGuard"].as_array().unwrap();
    assert_eq!(unseen.len(), 2);
    assert_eq!(
        unseen[0]["requestID"],
        "d9e8f7a6-0000-4b1c-9d2e-200000000001"
    );
    assert_eq!(
        unseen[0]["principal"],
        "arn:aws:sts::111122223333:assumed-role/batch-role/nightly"
    );
    assert_eq!(unseen[0]["eventTime"], "2026-11-30T10:02:30Z");
    assert_eq!(unseen[0]["vpcEndpointId"], Value::Null);
    let by = &doc["aroundGuardBy"];
    assert_eq!(
        by["principal"],
        json!({"arn:aws:sts::111122223333:assumed-role/batch-role/nightly": 2})
    );
    assert_eq!(
        by["sourceIPAddress"],
        json!({"203.0.113.50": 1, "10.1.7.9": 1})
    );
    assert_eq!(
        by["vpcEndpointId"],
        json!({"(none)": 1, "vpce-0fedcba9876543210": 1})
    );
    assert_eq!(doc["missingFromCloudTrail"], json!([]));
    // The text report names them too.
    let text = s.run(&[
        "reconcile",
        "--audit",
        &fixture_path("audit.log"),
        "--cloudtrail",
        &fixture_path("cloudtrail-clean.json"),
        &around_path,
        "--slack",
        "0",
    ]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("Calls in CloudTrail the guard never saw (egress around the guard): 2"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("203.0.113.50"), "{}", text.stdout);
    assert!(text.stdout.contains("2 finding(s)"), "{}", text.stdout);
}

#[test]
fn forwarded_calls_missing_from_cloudtrail_are_reported_dry_run_denials_included() {
    let s = Scratch::new("rec-missing");
    let mut trail = clean_trail();
    // Drop the event of the dry-run denial (audit line 7) that the guard let through.
    trail["Records"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["requestID"] != "b6a4c2d0-5e1f-4a3b-8c7d-100000000004");
    let path = s.write("trail.json", &trail.to_string());
    let (out, doc) = run_json(&s, &fixture_path("audit.log"), &[&path], &["--slack", "0"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let missing = doc["missingFromCloudTrail"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{doc}");
    assert_eq!(missing[0]["auditLine"], 7);
    assert_eq!(missing[0]["decision"], "deny");
    assert_eq!(missing[0]["mode"], "dry-run");
    assert_eq!(
        missing[0]["upstreamRequestId"],
        "b6a4c2d0-5e1f-4a3b-8c7d-100000000004"
    );
    assert_eq!(
        missing[0]["requestID"],
        "3f1e0c2a-1d7b-4c55-9a0e-000000000004"
    );
    // The refused request (never forwarded) is never expected in CloudTrail.
    assert_eq!(doc["findings"], 1);
    assert_eq!(doc["aroundGuard"], json!([]));
}

#[test]
fn a_forwarded_record_with_a_null_upstream_request_id_cannot_be_joined() {
    let s = Scratch::new("rec-null");
    let log = fixture_text("audit.log").replace(
        "\"upstreamRequestId\":\"b6a4c2d0-5e1f-4a3b-8c7d-100000000002\"",
        "\"upstreamRequestId\":null",
    );
    let audit = s.write("audit.log", &log);
    let (out, doc) = run_json(
        &s,
        &audit,
        &[&fixture_path("cloudtrail-clean.json")],
        &["--slack", "0"],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(doc["withoutUpstreamRequestId"][0]["auditLine"], 4);
    // CloudTrail's event of that call is then one the guard did not (verifiably) see.
    assert_eq!(
        doc["aroundGuard"][0]["requestID"],
        "b6a4c2d0-5e1f-4a3b-8c7d-100000000002"
    );
    assert_eq!(doc["findings"], 2);
}

#[test]
fn a_log_without_upstream_request_ids_is_refused_as_unjoinable() {
    let s = Scratch::new("rec-old");
    let log: String = fixture_text("audit.log")
        .lines()
        .map(|l| {
            if let Some(i) = l.find(",\"upstreamRequestId\"") {
                format!("{}}}\n", &l[..i])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let audit = s.write("old.log", &log);
    let out = s.run(&[
        "reconcile",
        "--audit",
        &audit,
        "--cloudtrail",
        &fixture_path("cloudtrail-clean.json"),
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("old.log:3: a forwarded record without an upstreamRequestId"),
        "{}",
        out.stderr
    );
}

#[test]
fn model_region_and_operation_disagreements_are_reported() {
    let s = Scratch::new("rec-disagree");
    let mut trail = clean_trail();
    event_mut(&mut trail, "0001")["requestParameters"]["modelId"] =
        json!("anthropic.claude-3-sonnet-20240229-v1:0");
    event_mut(&mut trail, "0004")["awsRegion"] = json!("us-west-2");
    event_mut(&mut trail, "0005")["eventName"] = json!("Converse");
    let path = s.write("trail.json", &trail.to_string());
    let (out, doc) = run_json(&s, &fixture_path("audit.log"), &[&path], &["--slack", "0"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let d = doc["disagreements"].as_array().unwrap();
    let fields: Vec<_> = d
        .iter()
        .map(|x| {
            (
                x["field"].as_str().unwrap(),
                x["guard"].as_str().unwrap(),
                x["cloudtrail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (
                "model",
                "anthropic.claude-3-haiku-20240307-v1:0",
                "anthropic.claude-3-sonnet-20240229-v1:0"
            ),
            ("region", "us-east-1", "us-west-2"),
            ("operation", "ConverseStream", "Converse"),
        ]
    );
    assert_eq!(d[0]["auditLine"], 3);
    assert_eq!(doc["matched"], 4);
    assert_eq!(doc["findings"], 3);
}

#[test]
fn another_inference_region_is_accepted_for_profiles_only() {
    let s = Scratch::new("rec-xregion");
    let mut trail = clean_trail();
    // A base-model id cannot run in another Region: flagged.
    event_mut(&mut trail, "0001")["additionalEventData"] = json!({"inferenceRegion": "eu-west-1"});
    // An application inference profile (opaque ARN) may: accepted, like the `us.` profile.
    let app = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6";
    event_mut(&mut trail, "0005")["requestParameters"]["modelId"] = json!(app);
    event_mut(&mut trail, "0005")["additionalEventData"] = json!({"inferenceRegion": "us-east-2"});
    let path = s.write("trail.json", &trail.to_string());
    let log = fixture_text("audit.log").replace(
        "\"eventName\":\"ConverseStream\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"10.0.3.17\",\"userIdentity\":{\"issuer\":\"https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE\",\"subject\":\"system:serviceaccount:shop:checkout\",\"groups\":[\"shop\"],\"tokenFingerprint\":\"sha256:0f3c\"},\"accessKeyId\":\"ASIAEXAMPLEKEYID0001\",\"credentialType\":\"sigv4\",\"requestParameters\":{\"modelId\":\"anthropic.claude-3-haiku-20240307-v1:0\"}",
        &format!("\"eventName\":\"ConverseStream\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"10.0.3.17\",\"userIdentity\":{{\"issuer\":\"https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE\",\"subject\":\"system:serviceaccount:shop:checkout\",\"groups\":[\"shop\"],\"tokenFingerprint\":\"sha256:0f3c\"}},\"accessKeyId\":\"ASIAEXAMPLEKEYID0001\",\"credentialType\":\"sigv4\",\"requestParameters\":{{\"modelId\":\"{app}\"}}"),
    );
    assert!(log.contains(app));
    let audit = s.write("audit.log", &log);
    let (out, doc) = run_json(&s, &audit, &[&path], &["--slack", "0"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(doc["routedCrossRegion"], 2);
    let d = doc["disagreements"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{doc}");
    assert_eq!(d[0]["field"], "inferenceRegion");
    assert_eq!(d[0]["guard"], "us-east-1");
    assert_eq!(d[0]["cloudtrail"], "eu-west-1");
}

#[test]
fn only_the_overlap_of_both_inputs_shrunk_by_the_slack_is_judged() {
    let s = Scratch::new("rec-window");
    // An unseen call after the audit log ends, and a forwarded record before CloudTrail begins.
    let mut around: Value = serde_json::from_str(&fixture_text("cloudtrail-around.json")).unwrap();
    around["Records"][0]["eventTime"] = json!("2026-11-30T11:00:00Z");
    let late = s.write("late.json", &around.to_string());
    let early_record = fixture_text("audit.log")
        .lines()
        .find(|l| l.contains("100000000001"))
        .unwrap()
        .replace("2026-11-30T10:00:09.812Z", "2026-11-30T09:00:00.000Z")
        .replace("100000000001", "100000000009");
    let audit = s.write(
        "audit.log",
        &format!("{early_record}\n{}", fixture_text("audit.log")),
    );
    let (out, doc) = run_json(
        &s,
        &audit,
        &[&fixture_path("cloudtrail-clean.json"), &late],
        &["--slack", "0"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(doc["notJudged"], json!({"audit": 1, "cloudtrail": 1}));
    assert_eq!(doc["window"]["start"], "2026-11-30T10:00:10Z");
    assert_eq!(doc["window"]["end"], "2026-11-30T10:04:00Z");

    // Inside the overlap the unseen call is flagged with --slack 0, not with the default 300 s
    // (the fixtures span four minutes: no window is left).
    let inside = fixture_path("cloudtrail-around.json");
    let clean = fixture_path("cloudtrail-clean.json");
    let (out, doc) = run_json(
        &s,
        &fixture_path("audit.log"),
        &[&clean, &inside],
        &["--slack", "0"],
    );
    assert_eq!(
        (out.code, doc["aroundGuard"].as_array().unwrap().len()),
        (1, 1)
    );
    let (out, doc) = run_json(&s, &fixture_path("audit.log"), &[&clean, &inside], &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(doc["window"], Value::Null);
    assert_eq!(doc["notJudged"]["cloudtrail"], 1);
    assert_eq!(doc["matched"], 4);
    // A slack of 60 s leaves 10:01:10 .. 10:03:00, which holds the unseen call (10:02:30).
    let (out, doc) = run_json(
        &s,
        &fixture_path("audit.log"),
        &[&clean, &inside],
        &["--slack", "60"],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(doc["window"]["start"], "2026-11-30T10:01:10Z");
    assert_eq!(doc["window"]["end"], "2026-11-30T10:03:00Z");
}

#[test]
fn malformed_input_is_refused_with_its_location() {
    let s = Scratch::new("rec-bad");
    let clean = fixture_path("cloudtrail-clean.json");
    let audit = fixture_path("audit.log");
    let cases: Vec<(String, String, &str)> = vec![
        (
            audit.clone(),
            s.write("norecords.json", r#"{"records": []}"#),
            "norecords.json: not a CloudTrail log file: no \"Records\" array",
        ),
        (
            audit.clone(),
            s.write("notjson.json", "Records"),
            "notjson.json: not a CloudTrail log file (one JSON object)",
        ),
        (
            audit.clone(),
            {
                let mut t = clean_trail();
                event_mut(&mut t, "0002")
                    .as_object_mut()
                    .unwrap()
                    .remove("requestID");
                s.write("noid.json", &t.to_string())
            },
            "noid.json: Records[2]: requestID: missing",
        ),
        (
            s.write(
                "bad.log",
                "-\n{\"eventTime\":\"2026-11-30T10:00:00Z\",\"decision\":\"maybe\"}\n",
            ),
            clean.clone(),
            "bad.log:2: decision: \"maybe\" is neither",
        ),
        (
            s.write(
                "trunc.log",
                "{\"eventTime\":\"2026-11-30T10:00:00Z\",\"decis\n",
            ),
            clean.clone(),
            "trunc.log:1: a line that starts with `{` is not one strict JSON object",
        ),
        (
            s.write("empty.log", "-\n\n"),
            clean.clone(),
            "empty.log: no audit records",
        ),
    ];
    for (audit, trail, want) in cases {
        let out = s.run(&["reconcile", "--audit", &audit, "--cloudtrail", &trail]);
        assert_eq!(out.code, 2, "{want}: {}", out.all());
        assert!(out.stderr.contains(want), "want {want:?} in {}", out.stderr);
    }
    let out = s.run(&["reconcile", "--audit", &audit]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--cloudtrail FILE... is required"),
        "{}",
        out.stderr
    );
    let out = s.run(&[
        "reconcile",
        "--audit",
        &audit,
        "--cloudtrail",
        &clean,
        "--slack",
        "5m",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--slack: \"5m\""), "{}", out.stderr);
}
