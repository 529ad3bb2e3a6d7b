//! `keygen`, `sign` and `verify` through the command line.

use crate::support::*;

fn keygen(s: &Scratch, prefix: &str, alg: &str) {
    let out = s.run(&["keygen", "--out", prefix, "--alg", alg]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn keygen_writes_three_files_with_a_private_key_0600() {
    let s = Scratch::new("keygen");
    keygen(&s, "ops", "EdDSA");
    assert!(s
        .read("ops.key.pem")
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(s
        .read("ops.pub.pem")
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let jwk: serde_json::Value = serde_json::from_str(&s.read("ops.pub.jwk.json")).unwrap();
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["alg"], "EdDSA");
    assert!(jwk.get("d").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.path("ops.key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let s = Scratch::new("keygen-force");
    keygen(&s, "k", "EdDSA");
    let before = s.read("k.key.pem");
    let out = s.run(&["keygen", "--out", "k"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("exists"), "{}", out.stderr);
    assert_eq!(s.read("k.key.pem"), before);
    assert_eq!(s.run(&["keygen", "--out", "k", "--force"]).code, 0);
    assert_ne!(s.read("k.key.pem"), before);
}

#[test]
fn keygen_refuses_an_unknown_algorithm() {
    let out = run(&["keygen", "--out", "k", "--alg", "RS256"]);
    assert_eq!(out.code, 2);
}

#[test]
fn sign_then_verify_succeeds_for_both_algorithms() {
    for alg in ["EdDSA", "ES256"] {
        let s = Scratch::new("sign-verify");
        keygen(&s, "k", alg);
        let b = s.write("bundle.json", &demo_text());
        let out = s.run(&["sign", &b, "--key", "k.key.pem"]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(s.read("bundle.json.jws").contains(".."));
        let out = s.run(&[
            "verify",
            &b,
            "--sig",
            "bundle.json.jws",
            "--pub",
            "k.pub.pem",
        ]);
        assert_eq!(out.code, 0, "{alg}: {}", out.all());
        assert!(
            out.stdout.contains(&format!("signature ok (alg {alg}")),
            "{}",
            out.stdout
        );
        // The JWK verifies as well, and --sig defaults to FILE.jws.
        let out = s.run(&["verify", &b, "--pub", "k.pub.jwk.json"]);
        assert_eq!(out.code, 0, "{}", out.all());
    }
}

#[test]
fn signature_covers_the_canonical_form_so_yaml_verifies_too() {
    let s = Scratch::new("sign-yaml");
    keygen(&s, "k", "EdDSA");
    let json = s.write("bundle.json", &demo_text());
    let yaml = s.write("bundle.yaml", DEMO_YAML);
    assert_eq!(
        s.run(&["sign", &json, "--key", "k.key.pem", "--out", "b.jws"])
            .code,
        0
    );
    let out = s.run(&["verify", &yaml, "--sig", "b.jws", "--pub", "k.pub.pem"]);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn a_tampered_bundle_fails_verification() {
    let s = Scratch::new("sign-tamper");
    keygen(&s, "k", "EdDSA");
    let b = s.write("bundle.json", &demo_text());
    assert_eq!(s.run(&["sign", &b, "--key", "k.key.pem"]).code, 0);
    s.write(
        "bundle.json",
        &demo_text().replace("\"no-opus\"", "\"no-opus-x\""),
    );
    let out = s.run(&["verify", &b, "--pub", "k.pub.pem"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("signature verification failed: the signature does not verify"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_wrong_key_fails_verification() {
    let s = Scratch::new("sign-wrong-key");
    keygen(&s, "a", "EdDSA");
    keygen(&s, "b", "EdDSA");
    let b = s.write("bundle.json", &demo_text());
    assert_eq!(s.run(&["sign", &b, "--key", "a.key.pem"]).code, 0);
    let out = s.run(&["verify", &b, "--pub", "b.pub.pem"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("no trusted key has id"),
        "{}",
        out.stdout
    );
    // Same kid, different key: a bad signature.
    assert_eq!(
        s.run(&["sign", &b, "--key", "a.key.pem", "--kid", "ops"])
            .code,
        0
    );
    let jwk = s.read("b.pub.jwk.json").replace(
        &format!(
            "\"kid\": {}",
            serde_json::from_str::<serde_json::Value>(&s.read("b.pub.jwk.json")).unwrap()["kid"]
        ),
        "\"kid\": \"ops\"",
    );
    s.write("b-ops.jwk.json", &jwk);
    let out = s.run(&["verify", &b, "--pub", "b-ops.jwk.json"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("does not verify with key \"ops\""),
        "{}",
        out.stdout
    );
}

#[test]
fn an_unsigned_bundle_fails_when_keys_are_pinned() {
    let s = Scratch::new("sign-missing");
    keygen(&s, "k", "EdDSA");
    let b = s.write("bundle.json", &demo_text());
    let out = s.run(&["verify", &b, "--pub", "k.pub.pem"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.contains("not signed"), "{}", out.stdout);
}

#[test]
fn verify_needs_a_pinned_key_and_readable_inputs() {
    let s = Scratch::new("sign-usage");
    let b = s.write("bundle.json", &demo_text());
    assert_eq!(s.run(&["verify", &b]).code, 2);
    assert_eq!(s.run(&["verify", &b, "--pub", "missing.pem"]).code, 2);
    s.write("junk.pem", "not a key");
    assert_eq!(s.run(&["verify", &b, "--pub", "junk.pem"]).code, 2);
}

#[test]
fn sign_refuses_an_invalid_bundle() {
    let s = Scratch::new("sign-invalid");
    keygen(&s, "k", "EdDSA");
    let b = s.write("bundle.json", &demo_text().replace("\"demo\"", "\"Demo!\""));
    let out = s.run(&["sign", &b, "--key", "k.key.pem"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("metadata.name"), "{}", out.all());
    assert!(!s.path("bundle.json.jws").exists());
}

#[test]
fn sign_refuses_a_public_key() {
    let s = Scratch::new("sign-pub");
    keygen(&s, "k", "EdDSA");
    let b = s.write("bundle.json", &demo_text());
    let out = s.run(&["sign", &b, "--key", "k.pub.pem"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("public key"), "{}", out.stderr);
}
