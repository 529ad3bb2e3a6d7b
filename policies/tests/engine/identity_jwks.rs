//! JWKS parsing and provider configuration.

use crate::identity_support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use policies::identity::{
    Algorithm, IdentityConfigError, Jwks, JwksError, KeySet, SkipReason, MAX_JWKS_BYTES,
    MAX_JWKS_KEYS,
};
use serde_json::{json, Value};

fn parse(doc: Value) -> Result<Jwks, JwksError> {
    Jwks::parse(doc.to_string().as_bytes())
}

fn parse_keys(keys: Vec<Value>) -> Result<Jwks, JwksError> {
    parse(json!({ "keys": keys }))
}

/// An RSA JWK with the given modulus bytes and e = 65537.
fn rsa_with_modulus(n: &[u8]) -> Value {
    json!({"kty": "RSA", "kid": "k", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode(n)})
}

#[test]
fn parses_rsa_ec_and_ed25519_keys_with_their_algorithms() {
    let set = jwks_a();
    assert_eq!(
        set.kids().collect::<Vec<_>>(),
        [KID_EC_A, KID_ED_A, KID_RSA_A]
    );
    let rsa = set.get(KID_RSA_A).unwrap();
    assert!(rsa.allows(Algorithm::RS256) && rsa.allows(Algorithm::PS512));
    assert!(!rsa.allows(Algorithm::ES256) && !rsa.allows(Algorithm::HS256));
    assert_eq!(set.get(KID_EC_A).unwrap().algorithms(), [Algorithm::ES256]);
    assert_eq!(set.get(KID_ED_A).unwrap().algorithms(), [Algorithm::EdDSA]);
    assert!(set.skipped().is_empty());
}

#[test]
fn key_alg_pins_the_key_to_that_algorithm() {
    let set = parse_keys(vec![jwk("rsa_a", "k", Some("PS384"))]).unwrap();
    assert_eq!(set.get("k").unwrap().algorithms(), [Algorithm::PS384]);
}

#[test]
fn ec_key_without_alg_gets_its_curves_algorithm() {
    let set = parse_keys(vec![jwk("ec_p256", "k", None)]).unwrap();
    assert_eq!(set.get("k").unwrap().algorithms(), [Algorithm::ES256]);
}

#[test]
fn accepts_ordinary_extra_members() {
    // what IdPs publish next to the key: use, x5c, x5t, and unknown top-level members
    let mut key = jwk("rsa_a", "k", Some("RS256"));
    key["use"] = json!("sig");
    key["x5c"] = json!(["MIIB"]);
    key["x5t"] = json!("abc");
    key["key_ops"] = json!(["verify"]);
    assert_eq!(
        parse(json!({"keys": [key], "issuer": "x"})).unwrap().len(),
        1
    );
}

#[test]
fn refuses_oct_key() {
    // {"kty":"oct","k":...}: from_jwk would turn it into an HMAC secret
    let oct = json!({"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldA"});
    let err = parse_keys(vec![jwk("rsa_a", KID_RSA_A, None), oct]).unwrap_err();
    assert_eq!(err, JwksError::SymmetricKey { index: 1 });
}

#[test]
fn refuses_oct_key_even_when_marked_for_encryption() {
    let oct = json!({"kty": "oct", "kid": "e", "use": "enc", "k": "c2VjcmV0"});
    assert_eq!(
        parse_keys(vec![oct]).unwrap_err(),
        JwksError::SymmetricKey { index: 0 }
    );
}

#[test]
fn refuses_hmac_alg_on_an_asymmetric_key() {
    let err = parse_keys(vec![jwk("rsa_a", "k", Some("HS256"))]).unwrap_err();
    assert_eq!(err, JwksError::SymmetricAlgorithm { index: 0 });
    let err = parse_keys(vec![jwk("ec_p256", "k", Some("none"))]).unwrap_err();
    assert_eq!(err, JwksError::SymmetricAlgorithm { index: 0 });
}

#[test]
fn refuses_private_key_material() {
    let mut key = jwk("ec_p256", "k", None);
    key["d"] = json!("AAAA");
    let err = parse_keys(vec![key]).unwrap_err();
    assert_eq!(
        err,
        JwksError::PrivateKeyMaterial {
            index: 0,
            member: "d"
        }
    );
}

#[test]
fn skips_keys_not_for_signatures_and_reports_them() {
    let mut enc = jwk("rsa_b", "enc-1", Some("RSA-OAEP"));
    enc["use"] = json!("enc");
    let mut wrap = jwk("rsa_b", "wrap-1", None);
    wrap["key_ops"] = json!(["wrapKey"]);
    let set = parse_keys(vec![enc, jwk("rsa_a", KID_RSA_A, None), wrap]).unwrap();
    assert_eq!(set.kids().collect::<Vec<_>>(), [KID_RSA_A]);
    let skipped: Vec<_> = set
        .skipped()
        .iter()
        .map(|s| (s.index, s.kid.as_deref(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            (0, Some("enc-1"), SkipReason::NotForSignatures),
            (2, Some("wrap-1"), SkipReason::NotForSignatures)
        ]
    );
}

#[test]
fn skips_unsupported_types_curves_and_algorithms() {
    let keys = vec![
        json!({"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"}),
        json!({"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": "AA"}),
        json!({"kty": "PQC", "kid": "future"}),
        jwk("rsa_a", "oaep", Some("RSA-OAEP")),
        jwk("ec_p256", "es512", Some("ES512")),
    ];
    let set = parse_keys(keys).unwrap();
    assert!(set.is_empty());
    let reasons: Vec<_> = set.skipped().iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "unsupported_curve",
            "unsupported_curve",
            "unsupported_key_type",
            "unsupported_algorithm",
            "unsupported_algorithm"
        ]
    );
}

#[test]
fn refuses_missing_or_empty_kid() {
    let mut key = jwk("rsa_a", "k", None);
    key.as_object_mut().unwrap().remove("kid");
    assert_eq!(
        parse_keys(vec![key]).unwrap_err(),
        JwksError::MissingKid { index: 0 }
    );
    let key = jwk("rsa_a", "", None);
    assert_eq!(
        parse_keys(vec![key]).unwrap_err(),
        JwksError::MissingKid { index: 0 }
    );
}

#[test]
fn refuses_duplicate_kids() {
    let keys = vec![jwk("rsa_a", "same", None), jwk("ec_p256", "same", None)];
    assert_eq!(
        parse_keys(keys).unwrap_err(),
        JwksError::DuplicateKid { index: 1 }
    );
}

#[test]
fn refuses_duplicate_json_members() {
    let doc = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"a","kid":"b","x":"{}"}}]}}"#,
        jwk("ed25519", "k", None)["x"].as_str().unwrap()
    );
    assert_eq!(
        Jwks::parse(doc.as_bytes()).unwrap_err(),
        JwksError::DuplicateMember
    );
}

#[test]
fn refuses_documents_that_are_not_key_sets() {
    for doc in [json!({"keys": {}}), json!([]), json!({"key": []})] {
        assert_eq!(parse(doc).unwrap_err(), JwksError::NotAKeySet);
    }
    assert_eq!(Jwks::parse(b"{\"keys\":[").unwrap_err(), JwksError::Json);
    assert_eq!(
        parse_keys(vec![json!("k")]).unwrap_err(),
        JwksError::KeyNotAnObject { index: 0 }
    );
}

#[test]
fn empty_key_set_is_valid() {
    assert!(parse_keys(vec![]).unwrap().is_empty());
}

#[test]
fn refuses_oversized_documents_and_too_many_keys() {
    let big = vec![b' '; MAX_JWKS_BYTES + 1];
    assert_eq!(Jwks::parse(&big).unwrap_err(), JwksError::TooLarge);
    let many = (0..=MAX_JWKS_KEYS)
        .map(|i| jwk("ed25519", &format!("k{i}"), None))
        .collect();
    assert_eq!(parse_keys(many).unwrap_err(), JwksError::TooManyKeys);
}

#[test]
fn accepts_a_document_of_exactly_max_jwks_bytes_with_max_jwks_keys() {
    // N keys in a document padded with whitespace to exactly N bytes: accepted whole.
    let keys: Vec<_> = (0..MAX_JWKS_KEYS)
        .map(|i| jwk("ed25519", &format!("k{i}"), None))
        .collect();
    let mut doc = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
    assert!(doc.len() < MAX_JWKS_BYTES);
    doc.resize(MAX_JWKS_BYTES, b' ');
    let parsed = Jwks::parse(&doc).unwrap();
    assert_eq!(parsed.len(), MAX_JWKS_KEYS);
    // One more byte, or one more key: refused as a whole (the last good keys stay).
    doc.push(b' ');
    assert_eq!(Jwks::parse(&doc).unwrap_err(), JwksError::TooLarge);
    let keys: Vec<_> = (0..=MAX_JWKS_KEYS)
        .map(|i| jwk("ed25519", &format!("k{i}"), None))
        .collect();
    let doc = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
    assert!(doc.len() <= MAX_JWKS_BYTES);
    assert_eq!(Jwks::parse(&doc).unwrap_err(), JwksError::TooManyKeys);
    assert_eq!(
        (MAX_JWKS_BYTES, MAX_JWKS_KEYS),
        (262_144, 64),
        "docs/operations.md, Bounds"
    );
}

#[test]
fn refuses_rsa_modulus_below_2048_bits() {
    let mut n = vec![0xc1u8; 128]; // 1024 bits, odd
    n[127] = 0x01;
    let err = parse_keys(vec![rsa_with_modulus(&n)]).unwrap_err();
    assert_eq!(
        err,
        JwksError::RsaKeySize {
            index: 0,
            bits: 1024
        }
    );
}

#[test]
fn refuses_rsa_modulus_above_4096_bits() {
    // 4104 bits: the rust_crypto backend would refuse it at every verification
    let n = vec![0xffu8; 513];
    let err = parse_keys(vec![rsa_with_modulus(&n)]).unwrap_err();
    assert_eq!(
        err,
        JwksError::RsaKeySize {
            index: 0,
            bits: 4104
        }
    );
}

#[test]
fn accepts_rsa_modulus_with_a_leading_zero_octet() {
    let mut key = jwk("rsa_a", "k", None);
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    key["n"] = json!(URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat()));
    assert_eq!(parse_keys(vec![key]).unwrap().len(), 1);
}

#[test]
fn refuses_bad_rsa_parameters() {
    let mut even = vec![0xffu8; 256];
    even[255] = 0xfe;
    let err = parse_keys(vec![rsa_with_modulus(&even)]).unwrap_err();
    assert_eq!(
        err,
        JwksError::BadParameter {
            index: 0,
            param: "n"
        }
    );
    for e in ["AQ", "Ag", "AQAA", "AQAAAAAB"] {
        // 1, 2, 65536 (even), 2^40+1 (too large)
        let mut key = jwk("rsa_a", "k", None);
        key["e"] = json!(e);
        let err = parse_keys(vec![key]).unwrap_err();
        assert_eq!(
            err,
            JwksError::BadParameter {
                index: 0,
                param: "e"
            },
            "{e}"
        );
    }
    let mut padded = jwk("rsa_a", "k", None);
    padded["e"] = json!("AQAB=");
    let err = parse_keys(vec![padded]).unwrap_err();
    assert_eq!(
        err,
        JwksError::BadParameter {
            index: 0,
            param: "e"
        }
    );
}

#[test]
fn refuses_ec_point_not_on_the_curve() {
    let mut key = jwk("ec_p256", "k", None);
    key["y"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
    assert_eq!(
        parse_keys(vec![key]).unwrap_err(),
        JwksError::InvalidKey { index: 0 }
    );
}

#[test]
fn refuses_wrong_coordinate_lengths() {
    let mut key = jwk("ec_p256", "k", None);
    key["x"] = json!(URL_SAFE_NO_PAD.encode([1u8; 48]));
    let err = parse_keys(vec![key]).unwrap_err();
    assert_eq!(
        err,
        JwksError::BadParameter {
            index: 0,
            param: "x"
        }
    );
}

#[test]
fn refuses_short_ed25519_key_instead_of_panicking() {
    // jsonwebtoken's EdDSA verifier slices the first 32 bytes: a 31-byte key must never reach it
    let mut key = jwk("ed25519", "k", None);
    key["x"] = json!(URL_SAFE_NO_PAD.encode([9u8; 31]));
    let err = parse_keys(vec![key]).unwrap_err();
    assert_eq!(
        err,
        JwksError::BadParameter {
            index: 0,
            param: "x"
        }
    );
}

#[test]
fn refuses_alg_that_contradicts_the_key() {
    for (name, alg) in [
        ("ec_p256", "ES384"),
        ("rsa_a", "ES256"),
        ("ed25519", "RS256"),
    ] {
        let err = parse_keys(vec![jwk(name, "k", Some(alg))]).unwrap_err();
        assert_eq!(
            err,
            JwksError::AlgorithmMismatch { index: 0 },
            "{name} {alg}"
        );
    }
}

#[test]
fn refuses_non_string_use() {
    let mut key = jwk("rsa_a", "k", None);
    key["use"] = json!(["sig"]);
    let err = parse_keys(vec![key]).unwrap_err();
    assert_eq!(
        err,
        JwksError::BadParameter {
            index: 0,
            param: "use"
        }
    );
}

#[test]
fn error_messages_name_positions_not_values() {
    let err = parse_keys(vec![jwk("rsa_a", "secret-kid", Some("HS256"))]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("keys[0]") && !message.contains("secret-kid"),
        "{message}"
    );
}

#[test]
fn digest_ignores_member_order_and_skipped_keys_but_not_key_changes() {
    let mut enc = jwk("rsa_b", "enc", None);
    enc["use"] = json!("enc");
    let a = jwks(vec![jwk("rsa_a", "1", None), jwk("ec_p256", "2", None)]);
    let b = jwks(vec![
        jwk("ec_p256", "2", None),
        enc,
        jwk("rsa_a", "1", None),
    ]);
    assert_eq!(a.digest(), b.digest());
    let c = jwks(vec![jwk("rsa_b", "1", None), jwk("ec_p256", "2", None)]);
    assert_ne!(a.digest(), c.digest());
    let d = jwks(vec![
        jwk("rsa_a", "1", Some("RS256")),
        jwk("ec_p256", "2", None),
    ]);
    assert_ne!(a.digest(), d.digest());
}

// ---- provider configuration ----------------------------------------------------------------

#[test]
fn refuses_duplicate_provider_names_and_issuers() {
    let mut same_name = provider_b();
    same_name.name = "idp-a".to_owned();
    let err = KeySet::new(vec![provider_a(), same_name]).unwrap_err();
    assert_eq!(err, IdentityConfigError::DuplicateName("idp-a".to_owned()));
    let mut same_issuer = provider_b();
    same_issuer.issuer = ISS_A.to_owned();
    let err = KeySet::new(vec![provider_a(), same_issuer]).unwrap_err();
    assert_eq!(
        err,
        IdentityConfigError::DuplicateIssuer {
            provider: "idp-b".to_owned()
        }
    );
}

type Breakage = fn(&mut policies::identity::ProviderSpec);

#[test]
fn refuses_unusable_provider_settings() {
    let cases: Vec<(Breakage, &str)> = vec![
        (|s| s.audiences.clear(), "audiences"),
        (|s| s.audiences.push(String::new()), "audiences"),
        (|s| s.algorithms.clear(), "no algorithms"),
        (|s| s.algorithms = vec![Algorithm::HS512], "HS512"),
        (|s| s.issuer.clear(), "empty issuer"),
        (|s| s.leeway_seconds = 301, "leeway"),
        (|s| s.max_lifetime_seconds = Some(0), "max_lifetime"),
        (|s| s.principal_claim.clear(), "principal_claim"),
        (|s| s.max_token_bytes = 0, "max_token_bytes"),
        (|s| s.max_token_bytes = 64 * 1024 + 1, "max_token_bytes"),
    ];
    for (breakage, expected) in cases {
        let mut spec = provider_a();
        breakage(&mut spec);
        let message = KeySet::new(vec![spec]).unwrap_err().to_string();
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn set_keys_refuses_unknown_provider_and_reports_changes() {
    let mut keys = KeySet::new(vec![provider_a()]).unwrap();
    let err = keys.set_keys("idp-z", jwks_a()).unwrap_err();
    assert_eq!(
        err,
        IdentityConfigError::UnknownProvider("idp-z".to_owned())
    );
    assert!(keys.set_keys("idp-a", jwks_a()).unwrap());
    assert!(!keys.set_keys("idp-a", jwks_a()).unwrap());
    assert_eq!(keys.keys("idp-a").unwrap().len(), 3);
}

#[test]
fn provider_without_keys_reports_unknown_key() {
    let keys = KeySet::new(vec![provider_a()]).unwrap();
    let err = policies::identity::verify(mint_a(&claims()).as_bytes(), &keys, NOW).unwrap_err();
    assert_eq!(err.as_str(), "unknown_key");
}
