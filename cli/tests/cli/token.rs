//! `explain --token` and a case's `request.token`: a real identity token, verified with the
//! bundle's own identity providers (inline JWKS, or a file standing in for a remote JWKS) at a
//! given time, so the CLI decides exactly as the filter would.

use crate::identity_support::*;
use crate::support::*;
use policies::identity::Algorithm;
use serde_json::{json, Value};

const SONNET: &str = "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
const TITAN: &str = "/model/amazon.titan-text-express-v1/invoke";

/// Provider `idp-a` (issuer A) has its keys inline; `idp-b` (issuer B) fetches them remotely.
/// `idp-a` reads groups from `roles`. One rule per provider, each scoped to principals.
fn bundle() -> Value {
    json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "token-test", "revision": "1" },
        "identity": {
            "header": "x-workload-identity",
            "providers": [
                {
                    "name": "idp-a",
                    "issuer": ISS_A,
                    "audiences": [AUD],
                    "algorithms": ["RS256"],
                    "jwks": { "keys": [jwk("rsa_a", KID_RSA_A, Some("RS256"))] },
                    "groups_claim": "roles"
                },
                {
                    "name": "idp-b",
                    "issuer": ISS_B,
                    "audiences": [AUD],
                    "algorithms": ["RS256"],
                    "remote_jwks": { "cluster": "idp_b_jwks", "path": "/keys",
                                     "refresh_seconds": 300, "max_stale_seconds": 3600 }
                }
            ]
        },
        "endpoints": [
            { "host": "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com",
              "region": "us-east-1", "cidrs": ["10.20.0.0/16"] }
        ],
        "rules": [
            { "id": "ml-platform-claude", "effect": "allow",
              "principals": { "groups": ["ml-platform"] },
              "models": ["anthropic.claude-sonnet-4-*"],
              "operations": ["Converse"] },
            { "id": "batch-titan", "effect": "allow",
              "principals": { "subjects": ["batch-*"] },
              "models": ["amazon.titan-text-express-v1"],
              "operations": ["InvokeModel"] }
        ]
    })
}

/// A scratch directory holding the bundle (`bundle.json`) and B's keys (`idp-b.jwks.json`).
fn setup(tag: &str) -> Scratch {
    let s = Scratch::new(tag);
    s.write("bundle.json", &bundle().to_string());
    s.write(
        "idp-b.jwks.json",
        &json!({ "keys": [jwk("rsa_b", KID_RSA_B, Some("RS256"))] }).to_string(),
    );
    s
}

/// A token of issuer A in group ml-platform (through its `roles` claim), valid at [`NOW`].
fn ml_token() -> String {
    let mut c = claims();
    c["roles"] = json!(["ml-platform", "readers"]);
    mint_a(&c)
}

/// A token of issuer B for a batch job, valid at [`NOW`].
fn batch_token_b() -> String {
    let mut c = claims();
    c["iss"] = json!(ISS_B);
    c["sub"] = json!("batch-report");
    mint(Algorithm::RS256, "rsa_b.key.pem", KID_RSA_B, &c)
}

fn now() -> String {
    NOW.to_string()
}

fn explain_json(s: &Scratch, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["explain", "bundle.json", "--json"];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    assert_eq!(out.code, 0, "{}", out.all());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    (out, v)
}

fn assert_no_token(out: &Output, token: &str) {
    assert!(!token.is_empty());
    assert!(
        !out.all().contains(token),
        "the token leaked into the output:\n{}",
        out.all()
    );
    // Not even its signature or claims segment.
    for segment in token.split('.') {
        assert!(!out.all().contains(segment), "a token segment leaked");
    }
}

#[test]
fn a_valid_token_allows_through_a_principal_scoped_rule() {
    let s = setup("valid");
    let token = ml_token();
    let (out, v) = explain_json(&s, &["--path", SONNET, "--token", &token, "--now", &now()]);
    assert_eq!(v["verdict"], "allow", "{v}");
    assert_eq!(v["rule"], "ml-platform-claude");
    assert_eq!(v["caller"]["status"], "verified");
    assert_eq!(v["caller"]["subject"], SUB);
    assert_eq!(v["caller"]["groups"], json!(["ml-platform", "readers"]));
    assert_eq!(v["caller"]["issuer"], ISS_A);
    assert_eq!(v["caller"]["verified_at"], NOW);
    assert_eq!(
        v["caller"]["token_fingerprint"],
        policies::identity::fingerprint(token.as_bytes())
    );
    let rule0 = &v["rules"][0];
    assert_eq!(rule0["principal_matches"], true, "{rule0}");
    assert_no_token(&out, &token);

    // The text report names the verified caller and its groups.
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        SONNET,
        "--token",
        &token,
        "--now",
        &now(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(&format!(
            "caller:     {SUB} (groups: ml-platform, readers; token "
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("verdict:    allow"), "{}", out.stdout);
    assert!(out.stdout.contains("principals match"), "{}", out.stdout);
    assert_no_token(&out, &token);
}

#[test]
fn the_providers_groups_claim_decides_group_membership() {
    // `groups` is not this provider's groups claim: the caller is in no group.
    let s = setup("groups-claim");
    let mut c = claims();
    c["groups"] = json!(["ml-platform"]);
    let token = mint_a(&c);
    let (_, v) = explain_json(&s, &["--path", SONNET, "--token", &token, "--now", &now()]);
    assert_eq!(v["caller"]["status"], "verified");
    assert_eq!(v["caller"]["groups"], json!([]));
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["reason"], "model_not_allowed");
}

#[test]
fn a_token_signed_with_another_key_is_bad_signature() {
    let s = setup("bad-sig");
    let mut c = claims();
    c["roles"] = json!(["ml-platform"]);
    // B's private key under A's key id.
    let token = mint(Algorithm::RS256, "rsa_b.key.pem", KID_RSA_A, &c);
    let (out, v) = explain_json(&s, &["--path", SONNET, "--token", &token, "--now", &now()]);
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["reason"], "identity_invalid");
    assert_eq!(v["detail"], "bad_signature");
    assert_eq!(v["caller"]["status"], "invalid");
    assert_eq!(v["caller"]["error"], "bad_signature");
    assert_no_token(&out, &token);
}

#[test]
fn a_token_with_a_key_id_the_provider_lacks_is_unknown_key() {
    let s = setup("unknown-kid");
    let mut c = claims();
    c["roles"] = json!(["ml-platform"]);
    let token = mint(Algorithm::RS256, "rsa_a.key.pem", "rsa-a-rotated", &c);
    let (_, v) = explain_json(&s, &["--path", SONNET, "--token", &token, "--now", &now()]);
    assert_eq!(v["reason"], "identity_invalid");
    assert_eq!(v["detail"], "unknown_key");
}

#[test]
fn a_token_for_another_audience_is_bad_audience() {
    let s = setup("bad-aud");
    let mut c = claims();
    c["aud"] = json!("some-other-service");
    c["roles"] = json!(["ml-platform"]);
    let token = mint_a(&c);
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        SONNET,
        "--token",
        &token,
        "--now",
        &now(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    for want in [
        "verdict:    deny",
        "reason:     identity_invalid",
        "detail:     bad_audience",
        "refused at 1800000000: bad_audience",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?} in\n{}",
            out.stdout
        );
    }
    assert_no_token(&out, &token);
}

#[test]
fn a_token_is_expired_at_a_later_now_and_valid_at_an_earlier_one() {
    let s = setup("expired");
    let token = ml_token(); // exp = NOW + 600; leeway 30 s
    let later = (NOW + 600 + 30).to_string();
    let (_, v) = explain_json(&s, &["--path", SONNET, "--token", &token, "--now", &later]);
    assert_eq!(v["reason"], "identity_invalid");
    assert_eq!(v["detail"], "expired");
    let just_in_time = (NOW + 600 + 29).to_string();
    let (_, v) = explain_json(
        &s,
        &["--path", SONNET, "--token", &token, "--now", &just_in_time],
    );
    assert_eq!(v["verdict"], "allow", "{v}");
}

#[test]
fn the_default_time_is_the_clock() {
    let s = setup("clock");
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut c = claims();
    c["roles"] = json!(["ml-platform"]);
    c["iat"] = json!(t - 60);
    c["exp"] = json!(t + 600);
    let fresh = mint_a(&c);
    let (_, v) = explain_json(&s, &["--path", SONNET, "--token", &fresh]);
    assert_eq!(v["verdict"], "allow", "{v}");
    // A token that expired an hour ago is refused without --now.
    c["iat"] = json!(t - 7200);
    c["exp"] = json!(t - 3600);
    let stale = mint_a(&c);
    let (_, v) = explain_json(&s, &["--path", SONNET, "--token", &stale]);
    assert_eq!(v["detail"], "expired", "{v}");
}

#[test]
fn the_token_can_be_read_from_a_file() {
    let s = setup("token-file");
    let token = ml_token();
    s.write("token.jwt", &format!("{token}\n"));
    let (out, v) = explain_json(
        &s,
        &["--path", SONNET, "--token", "@token.jwt", "--now", &now()],
    );
    assert_eq!(v["verdict"], "allow", "{v}");
    assert_no_token(&out, &token);
}

#[test]
fn a_remote_provider_verifies_with_its_keys_from_a_jwks_file() {
    let s = setup("remote");
    let token = batch_token_b();
    let (out, v) = explain_json(
        &s,
        &[
            "--path",
            TITAN,
            "--token",
            &token,
            "--now",
            &now(),
            "--jwks",
            "idp-b=idp-b.jwks.json",
        ],
    );
    assert_eq!(v["verdict"], "allow", "{v}");
    assert_eq!(v["rule"], "batch-titan");
    assert_eq!(v["caller"]["subject"], "batch-report");
    assert_eq!(v["caller"]["issuer"], ISS_B);
    assert_no_token(&out, &token);

    // The stand-in file holds other keys: the filter would say unknown_key.
    s.write(
        "other.jwks.json",
        &json!({ "keys": [jwk("ec_p256", "ec-b-1", Some("ES256"))] }).to_string(),
    );
    let (_, v) = explain_json(
        &s,
        &[
            "--path",
            TITAN,
            "--token",
            &token,
            "--now",
            &now(),
            "--jwks",
            "idp-b=other.jwks.json",
        ],
    );
    assert_eq!(v["reason"], "identity_invalid");
    assert_eq!(v["detail"], "unknown_key");
}

#[test]
fn a_remote_provider_without_a_jwks_file_is_a_usage_error_naming_it() {
    let s = setup("remote-missing");
    let token = batch_token_b();
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        TITAN,
        "--token",
        &token,
        "--now",
        &now(),
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("\"idp-b\""), "{}", out.stderr);
    assert!(out.stderr.contains("--jwks idp-b=FILE"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_no_token(&out, &token);
}

#[test]
fn jwks_files_must_name_a_remote_provider_of_the_bundle() {
    let s = setup("jwks-names");
    let token = ml_token();
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        SONNET,
        "--token",
        &token,
        "--jwks",
        "idp-c=idp-b.jwks.json",
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("\"idp-c\""), "{}", out.stderr);
    assert!(out.stderr.contains("idp-a, idp-b"), "{}", out.stderr);

    // idp-a's keys are inline: no file stands in for them.
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        SONNET,
        "--jwks",
        "idp-a=idp-b.jwks.json",
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("no remote_jwks"), "{}", out.stderr);

    // Not PROVIDER=FILE; a file that is not a JWKS.
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        SONNET,
        "--jwks",
        "idp-b",
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    s.write("garbage.json", "{\"keys\": 3}");
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        SONNET,
        "--jwks",
        "idp-b=garbage.json",
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("garbage.json"), "{}", out.stderr);

    // test takes the same flag.
    s.write(
        "one.cases.json",
        r#"[{"name":"x","request":{"path":"/x"},"expect":{"verdict":"deny"}}]"#,
    );
    let out = s.run(&[
        "test",
        "bundle.json",
        "--cases",
        "one.cases.json",
        "--jwks",
        "nope=idp-b.jwks.json",
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("\"nope\""), "{}", out.stderr);
}

#[test]
fn token_and_caller_together_are_refused() {
    let s = setup("both");
    let token = ml_token();
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        SONNET,
        "--token",
        &token,
        "--caller-sub",
        "svc",
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("not both"), "{}", out.stderr);
    assert_no_token(&out, &token);

    let cases = json!({ "cases": [{
        "name": "both",
        "request": { "path": SONNET, "token": token,
                     "caller": { "subject": "svc", "groups": ["ml-platform"] } },
        "expect": { "verdict": "allow" }
    }]});
    s.write(
        "both.cases.json",
        &serde_json::to_string_pretty(&cases).unwrap(),
    );
    let out = s.run(&["test", "bundle.json", "--cases", "both.cases.json"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("cases[0].request.token"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`caller`"), "{}", out.stderr);
    assert!(out.stderr.contains("not both"), "{}", out.stderr);
    assert_no_token(&out, &token);
}

#[test]
fn a_token_and_the_identity_header_together_are_refused() {
    let s = setup("twice");
    let token = ml_token();
    let header = format!("x-workload-identity: {token}");
    let out = s.run(&[
        "explain",
        "bundle.json",
        "--path",
        SONNET,
        "--header",
        &header,
        "--token",
        &token,
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("x-workload-identity"), "{}", out.stderr);
    assert_no_token(&out, &token);

    // The header alone is verified as the filter verifies it.
    let (_, v) = explain_json(
        &s,
        &["--path", SONNET, "--header", &header, "--now", &now()],
    );
    assert_eq!(v["verdict"], "allow", "{v}");
}

#[test]
fn a_token_for_a_bundle_without_identity_is_refused() {
    let token = ml_token();
    let out = run(&[
        "explain",
        &example("demo.json").to_string_lossy(),
        "--path",
        SONNET,
        "--token",
        &token,
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("no identity block"), "{}", out.stderr);
    assert_no_token(&out, &token);
}

#[test]
fn a_case_file_with_tokens_jwks_and_now_runs_reproducibly() {
    let s = setup("cases");
    std::fs::create_dir_all(s.path("keys")).unwrap();
    std::fs::rename(s.path("idp-b.jwks.json"), s.path("keys/idp-b.jwks.json")).unwrap();
    let ml = ml_token();
    let batch = batch_token_b();
    let mut c = claims();
    c["aud"] = json!("elsewhere");
    let wrong_aud = mint_a(&c);
    let wrong_key = mint(Algorithm::RS256, "rsa_b.key.pem", KID_RSA_A, &claims());
    let cases = json!({
        "now": NOW,
        "jwks": { "idp-b": "keys/idp-b.jwks.json" },
        "cases": [
            { "name": "ml-platform token may converse with sonnet",
              "request": { "path": SONNET, "token": ml },
              "expect": { "verdict": "allow", "rule": "ml-platform-claude" } },
            { "name": "batch token from the remote provider may invoke titan",
              "request": { "path": TITAN, "token": batch },
              "expect": { "verdict": "allow", "rule": "batch-titan" } },
            { "name": "the batch token is not in ml-platform",
              "request": { "path": SONNET, "token": batch },
              "expect": { "verdict": "deny", "reason": "model_not_allowed" } },
            { "name": "wrong audience",
              "request": { "path": SONNET, "token": wrong_aud },
              "expect": { "verdict": "deny", "reason": "identity_invalid" } },
            { "name": "wrong key",
              "request": { "path": SONNET, "token": wrong_key },
              "expect": { "verdict": "deny", "reason": "identity_invalid" } },
            { "name": "no token",
              "request": { "path": SONNET },
              "expect": { "verdict": "deny", "reason": "identity_missing" } }
        ]
    });
    // The cases file lives elsewhere: `jwks` paths are relative to it.
    let cases_path = s.write(
        "token.cases.json",
        &serde_json::to_string_pretty(&cases).unwrap(),
    );
    let other = Scratch::new("cases-cwd");
    let out = other.run(&[
        "test",
        &s.path("bundle.json").to_string_lossy(),
        "--cases",
        &cases_path,
        "-v",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.ends_with("6 passed, 0 failed\n"),
        "{}",
        out.stdout
    );
    for token in [&ml, &batch, &wrong_aud, &wrong_key] {
        assert_no_token(&out, token);
    }

    // --now on the command line wins over the file's: now every token has expired.
    let later = (NOW + 3600).to_string();
    let out = other.run(&[
        "test",
        &s.path("bundle.json").to_string_lossy(),
        "--cases",
        &cases_path,
        "--now",
        &later,
    ]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.contains("3 passed, 3 failed"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "FAIL cases[0] \"ml-platform token may converse with sonnet\": expected verdict=allow \
             rule=ml-platform-claude; got verdict=deny reason=identity_invalid"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(expired)"), "{}", out.stdout);
    for token in [&ml, &batch, &wrong_aud, &wrong_key] {
        assert_no_token(&out, token);
    }
}

#[test]
fn a_case_expecting_allow_for_a_bad_token_fails_with_the_filters_detail() {
    let s = setup("ci-fail");
    let mut c = claims();
    c["aud"] = json!("elsewhere");
    c["roles"] = json!(["ml-platform"]);
    let token = mint_a(&c);
    let cases = json!([{ "name": "wrongly expected to pass",
                         "request": { "path": SONNET, "token": token },
                         "expect": { "verdict": "allow" } }]);
    s.write("c.json", &cases.to_string());
    let out = s.run(&["test", "bundle.json", "--cases", "c.json", "--now", &now()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("got verdict=deny reason=identity_invalid rule=- mode=enforce"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(bad_audience)"), "{}", out.stdout);
    assert!(
        out.stdout.ends_with("0 passed, 1 failed\n"),
        "{}",
        out.stdout
    );
    assert_no_token(&out, &token);
}

#[test]
fn a_case_for_a_remote_provider_without_keys_is_a_usage_error() {
    let s = setup("cases-remote");
    let token = batch_token_b();
    let cases = json!({ "now": NOW, "cases": [{ "name": "batch",
        "request": { "path": TITAN, "token": token },
        "expect": { "verdict": "allow" } }] });
    s.write("c.json", &cases.to_string());
    let out = s.run(&["test", "bundle.json", "--cases", "c.json"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("cases[0] \"batch\""), "{}", out.stderr);
    assert!(out.stderr.contains("\"idp-b\""), "{}", out.stderr);
    assert!(out.stderr.contains("--jwks idp-b=FILE"), "{}", out.stderr);
    assert!(out.stderr.contains("\"jwks\""), "{}", out.stderr);
    assert_no_token(&out, &token);

    // The flag supplies the keys.
    let out = s.run(&[
        "test",
        "bundle.json",
        "--cases",
        "c.json",
        "--jwks",
        "idp-b=idp-b.jwks.json",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn a_malformed_token_is_reported_without_echoing_it() {
    let s = setup("malformed");
    let junk = "not-a-jwt-at-all-but-secret-ish";
    let (out, v) = explain_json(&s, &["--path", SONNET, "--token", junk]);
    assert_eq!(v["reason"], "identity_invalid");
    assert_eq!(v["detail"], "malformed");
    assert!(!out.all().contains(junk), "{}", out.all());
}
