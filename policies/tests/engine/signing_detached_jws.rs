//! Bundle signatures: detached JWS over the canonical form, key loading, and every refusal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use policies::canonical;
use policies::signing::{self, Algorithm, PrivateKey, PublicKey, SigningError, JWS_TYPE};

const BUNDLE: &[u8] = br#"{"kind": "PolicyBundle", "apiVersion": "bedrock-guard/v1",
  "metadata": {"name": "t", "revision": "7"}, "rules": []}"#;
const SAME_BUNDLE_REORDERED: &[u8] = br#"{"apiVersion":"bedrock-guard/v1","kind":"PolicyBundle","rules":[],"metadata":{"revision":"7","name":"t"}}"#;
const OTHER_BUNDLE: &[u8] = br#"{"kind": "PolicyBundle", "apiVersion": "bedrock-guard/v1",
  "metadata": {"name": "t", "revision": "8"}, "rules": []}"#;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/identity/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key(alg: Algorithm, seed_byte: u8) -> PrivateKey {
    PrivateKey::from_seed(alg, &[seed_byte; 32], None).unwrap()
}

fn public(k: &PrivateKey) -> Vec<PublicKey> {
    vec![k.public().clone()]
}

/// Re-assemble a JWS with a different protected header, signed by `k` (to test header rules
/// with a signature that is otherwise valid).
fn jws_with_header(header: &str, k: &PrivateKey) -> String {
    let h = URL_SAFE_NO_PAD.encode(header);
    let input = format!(
        "{h}.{}",
        URL_SAFE_NO_PAD.encode(canonical::canonicalize(BUNDLE).unwrap())
    );
    let alg = match k.alg() {
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
    };
    let pem = k.to_pkcs8_pem();
    let enc = match k.alg() {
        Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    };
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &enc, alg).unwrap();
    format!("{h}..{sig}")
}

#[test]
fn eddsa_signature_verifies_and_names_its_key() {
    let k = key(Algorithm::EdDSA, 1);
    let jws = signing::sign(BUNDLE, &k).unwrap();
    assert_eq!(
        signing::verify(BUNDLE, Some(&jws), &public(&k)),
        Ok(Some(k.kid().to_string()))
    );
}

#[test]
fn es256_signature_verifies() {
    let k = key(Algorithm::ES256, 2);
    let jws = signing::sign(BUNDLE, &k).unwrap();
    assert_eq!(
        signing::verify(BUNDLE, Some(&jws), &public(&k)),
        Ok(Some(k.kid().to_string()))
    );
}

#[test]
fn signature_survives_key_reordering_and_whitespace() {
    let k = key(Algorithm::EdDSA, 3);
    let jws = signing::sign(BUNDLE, &k).unwrap();
    assert!(signing::verify(SAME_BUNDLE_REORDERED, Some(&jws), &public(&k)).is_ok());
}

#[test]
fn header_is_exactly_alg_kid_typ_and_payload_is_detached() {
    let k = key(Algorithm::EdDSA, 4);
    let jws = signing::sign(BUNDLE, &k).unwrap();
    let (header, rest) = jws.split_once('.').unwrap();
    assert!(rest.starts_with('.'), "payload part must be empty: {jws}");
    let header = String::from_utf8(URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(
        header,
        format!(
            r#"{{"alg":"EdDSA","kid":"{}","typ":"{JWS_TYPE}"}}"#,
            k.kid()
        )
    );
}

#[test]
fn refuses_a_tampered_bundle() {
    let k = key(Algorithm::EdDSA, 5);
    let jws = signing::sign(BUNDLE, &k).unwrap();
    assert!(matches!(
        signing::verify(OTHER_BUNDLE, Some(&jws), &public(&k)),
        Err(SigningError::BadSignature(_))
    ));
}

#[test]
fn refuses_a_signature_by_another_key_under_the_same_kid() {
    let signer = key(Algorithm::EdDSA, 6).with_kid("ops-2025").unwrap();
    let pinned = key(Algorithm::EdDSA, 7).with_kid("ops-2025").unwrap();
    let jws = signing::sign(BUNDLE, &signer).unwrap();
    assert!(matches!(
        signing::verify(BUNDLE, Some(&jws), &public(&pinned)),
        Err(SigningError::BadSignature(_))
    ));
}

#[test]
fn refuses_an_unknown_kid() {
    let jws = signing::sign(BUNDLE, &key(Algorithm::EdDSA, 8)).unwrap();
    assert!(matches!(
        signing::verify(BUNDLE, Some(&jws), &public(&key(Algorithm::EdDSA, 9))),
        Err(SigningError::UnknownKey(_))
    ));
}

#[test]
fn refuses_a_missing_signature_when_keys_are_pinned() {
    let k = key(Algorithm::EdDSA, 10);
    assert_eq!(
        signing::verify(BUNDLE, None, &public(&k)),
        Err(SigningError::Missing)
    );
}

#[test]
fn checks_nothing_when_no_keys_are_pinned() {
    assert_eq!(signing::verify(BUNDLE, None, &[]), Ok(None));
}

#[test]
fn refuses_an_algorithm_outside_eddsa_and_es256() {
    let k = key(Algorithm::EdDSA, 11);
    let jws = jws_with_header(
        &format!(
            r#"{{"alg":"HS256","kid":"{}","typ":"{JWS_TYPE}"}}"#,
            k.kid()
        ),
        &k,
    );
    assert_eq!(
        signing::verify(BUNDLE, Some(&jws), &public(&k)),
        Err(SigningError::AlgorithmNotAllowed("HS256".into()))
    );
}

#[test]
fn refuses_an_algorithm_other_than_the_keys() {
    let k = key(Algorithm::EdDSA, 12);
    let jws = jws_with_header(
        &format!(
            r#"{{"alg":"ES256","kid":"{}","typ":"{JWS_TYPE}"}}"#,
            k.kid()
        ),
        &k,
    );
    assert!(matches!(
        signing::verify(BUNDLE, Some(&jws), &public(&k)),
        Err(SigningError::AlgorithmMismatch { .. })
    ));
}

#[test]
fn refuses_a_header_member_besides_alg_kid_typ() {
    let k = key(Algorithm::EdDSA, 13);
    let jws = jws_with_header(
        &format!(
            r#"{{"alg":"EdDSA","b64":false,"kid":"{}","typ":"{JWS_TYPE}"}}"#,
            k.kid()
        ),
        &k,
    );
    assert!(matches!(
        signing::verify(BUNDLE, Some(&jws), &public(&k)),
        Err(SigningError::Header(m)) if m.contains("b64")
    ));
}

#[test]
fn refuses_a_repeated_header_member() {
    let k = key(Algorithm::EdDSA, 14);
    let jws = jws_with_header(
        &format!(
            r#"{{"alg":"EdDSA","alg":"EdDSA","kid":"{}","typ":"{JWS_TYPE}"}}"#,
            k.kid()
        ),
        &k,
    );
    assert!(matches!(
        signing::verify(BUNDLE, Some(&jws), &public(&k)),
        Err(SigningError::Header(m)) if m.contains("duplicate")
    ));
}

#[test]
fn refuses_a_wrong_typ() {
    let k = key(Algorithm::EdDSA, 15);
    let jws = jws_with_header(
        &format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"JWT"}}"#, k.kid()),
        &k,
    );
    assert!(matches!(
        signing::verify(BUNDLE, Some(&jws), &public(&k)),
        Err(SigningError::Header(_))
    ));
}

#[test]
fn refuses_an_attached_payload() {
    let k = key(Algorithm::EdDSA, 16);
    let jws = signing::sign(BUNDLE, &k).unwrap();
    let payload = URL_SAFE_NO_PAD.encode(canonical::canonicalize(BUNDLE).unwrap());
    let attached = jws.replacen("..", &format!(".{payload}."), 1);
    assert_eq!(
        signing::verify(BUNDLE, Some(&attached), &public(&k)),
        Err(SigningError::AttachedPayload)
    );
}

#[test]
fn refuses_malformed_compact_serialisations() {
    let k = key(Algorithm::EdDSA, 17);
    for bad in ["", "abc", "a.b", "a..b..c", "!!..!!"] {
        assert!(
            signing::verify(BUNDLE, Some(bad), &public(&k)).is_err(),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn loads_openssl_pkcs8_and_spki_keys() {
    for (private, public_pem) in [
        ("ed25519.key.pem", "ed25519.pub.pem"),
        ("ec_p256.key.pem", "ec_p256.pub.pem"),
    ] {
        let k = PrivateKey::parse(&fixture(private)).unwrap();
        let pubs = PublicKey::parse(&fixture(public_pem)).unwrap();
        assert_eq!(pubs, vec![k.public().clone()], "{private}");
        let jws = signing::sign(BUNDLE, &k).unwrap();
        assert!(
            signing::verify(BUNDLE, Some(&jws), &pubs).is_ok(),
            "{private}"
        );
    }
}

#[test]
fn public_jwk_and_pem_name_the_same_key() {
    let from_jwk = PublicKey::parse(&fixture("ed25519.jwk.json")).unwrap();
    let from_pem = PublicKey::parse(&fixture("ed25519.pub.pem")).unwrap();
    assert_eq!(from_jwk, from_pem);
}

#[test]
fn kid_defaults_to_the_rfc7638_thumbprint() {
    // RFC 8037, appendix A.3: the thumbprint of the example Ed25519 key.
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let k = PublicKey::from_jwk(&jwk).unwrap();
    assert_eq!(k.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

#[test]
fn private_jwk_round_trips_to_its_public_key() {
    // RFC 8037, appendix A.1.
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
        "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let k = PrivateKey::from_jwk(&jwk).unwrap();
    assert_eq!(k.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

#[test]
fn a_private_jwk_is_refused_as_a_pinned_key() {
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
        "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    assert!(matches!(
        PublicKey::from_jwk(&jwk),
        Err(SigningError::Key(_))
    ));
}

#[test]
fn refuses_rsa_keys() {
    assert!(PrivateKey::parse(&fixture("rsa_a.key.pem")).is_err());
    assert!(PublicKey::parse(&fixture("rsa_a.pub.pem")).is_err());
}

#[test]
fn refuses_a_p256_point_off_the_curve() {
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])});
    assert!(PublicKey::from_jwk(&jwk).is_err());
}

#[test]
fn generated_keys_round_trip_through_pem_and_jwk() {
    for alg in Algorithm::ALL {
        let k = key(alg, 20);
        let again = PrivateKey::parse(k.to_pkcs8_pem().as_bytes()).unwrap();
        assert_eq!(again.public(), k.public());
        let pem = PublicKey::parse(k.public().to_pem().as_bytes()).unwrap();
        let jwk = PublicKey::from_jwk(&k.public().to_jwk()).unwrap();
        assert_eq!(pem, vec![k.public().clone()]);
        assert_eq!(jwk, *k.public());
    }
}

#[test]
fn plugin_config_carries_bundle_and_signature() {
    let k = key(Algorithm::EdDSA, 21);
    let jws = signing::sign(BUNDLE, &k).unwrap();
    let value = canonical::parse_strict(BUNDLE).unwrap();
    let text = signing::plugin_config(&value, Some(&jws)).unwrap();
    let opened = signing::parse_plugin_config(text.as_bytes()).unwrap();
    assert_eq!(opened.signature.as_deref(), Some(jws.as_str()));
    assert_eq!(opened.digest, canonical::digest(BUNDLE).unwrap());
    assert_eq!(
        signing::verify_canonical(&opened.canonical, &jws, &public(&k)),
        Ok(k.kid().to_string())
    );
}

#[test]
fn plugin_config_may_be_the_bare_bundle() {
    let opened = signing::parse_plugin_config(BUNDLE).unwrap();
    assert_eq!(opened.signature, None);
    assert_eq!(opened.canonical, canonical::canonicalize(BUNDLE).unwrap());
}

#[test]
fn plugin_config_refuses_extra_envelope_members() {
    let text = br#"{"bundle": {"kind": "PolicyBundle"}, "signature": "x", "keys": []}"#;
    assert!(matches!(
        signing::parse_plugin_config(text),
        Err(SigningError::Config(_))
    ));
}

#[test]
fn plugin_config_refuses_duplicate_members_anywhere() {
    let text = br#"{"bundle": {"kind": "PolicyBundle", "kind": "Other"}}"#;
    assert!(matches!(
        signing::parse_plugin_config(text),
        Err(SigningError::Bundle(_))
    ));
}

#[test]
fn digest_is_sha256_of_the_canonical_form() {
    let digest = canonical::digest(BUNDLE).unwrap();
    assert_eq!(digest, canonical::digest(SAME_BUNDLE_REORDERED).unwrap());
    assert_ne!(digest, canonical::digest(OTHER_BUNDLE).unwrap());
    assert!(digest.starts_with("sha256:") && digest.len() == 7 + 64);
}
