//! The engine's `jsonwebtoken` crypto provider (`policies::jose::PROVIDER`), called directly so
//! that these tests exercise its verifiers whatever provider the test process installed first:
//! every algorithm the guard accepts verifies a good signature and refuses a changed one, a key
//! of another family or an HMAC algorithm is an error (never a verification), and a short
//! Ed25519 key is an error rather than a panic. The guard's module is built without the
//! `signing` feature, so there this provider is the only one.

use crate::identity_support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey};
use p384::ecdsa::signature::Signer as _;
use policies::jose::{self, PROVIDER};

const MESSAGE: &[u8] = b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0";

fn verifies(alg: Algorithm, key: &DecodingKey, signature: &[u8]) -> bool {
    let verifier = (PROVIDER.verifier_factory)(&alg, key).expect("a usable key");
    assert_eq!(verifier.algorithm(), alg);
    verifier.verify(MESSAGE, &signature.to_vec()).is_ok()
}

fn signed_by_fixture(alg: Algorithm, private_key: &str) -> Vec<u8> {
    let b64 = jsonwebtoken::crypto::sign(MESSAGE, &encoding_key(alg, private_key), alg).unwrap();
    URL_SAFE_NO_PAD.decode(b64).unwrap()
}

fn public(name: &str) -> DecodingKey {
    let pem = fixture(name);
    if name.starts_with("rsa") {
        DecodingKey::from_rsa_pem(&pem).unwrap()
    } else if name.starts_with("ec") {
        DecodingKey::from_ec_pem(&pem).unwrap()
    } else {
        DecodingKey::from_ed_pem(&pem).unwrap()
    }
}

fn assert_good_and_changed(alg: Algorithm, key: &DecodingKey, signature: Vec<u8>) {
    assert!(verifies(alg, key, &signature), "{alg:?}: a good signature");
    let mut changed = signature.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    assert!(
        !verifies(alg, key, &changed),
        "{alg:?}: a changed signature"
    );
    assert!(
        !verifies(alg, key, &signature[..last]),
        "{alg:?}: a short signature"
    );
    let verifier = (PROVIDER.verifier_factory)(&alg, key).unwrap();
    assert!(
        verifier.verify(b"another message", &signature).is_err(),
        "{alg:?}: another message"
    );
}

#[test]
fn every_rsa_algorithm_verifies_and_refuses_a_changed_signature() {
    let pem_key = public("rsa_a.pub.pem");
    let jwk = jwk("rsa_a", KID_RSA_A, None);
    let components =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    for alg in jose::RSA_ALGORITHMS {
        let signature = signed_by_fixture(alg, "rsa_a.key.pem");
        assert_good_and_changed(alg, &pem_key, signature.clone());
        assert_good_and_changed(alg, &components, signature);
        // Another RSA key: the signature does not verify.
        let other = signed_by_fixture(alg, "rsa_b.key.pem");
        assert!(
            !verifies(alg, &pem_key, &other),
            "{alg:?}: B's signature on A's key"
        );
    }
    // PKCS#1 v1.5 and PSS are not interchangeable.
    let pkcs1 = signed_by_fixture(Algorithm::RS256, "rsa_a.key.pem");
    assert!(!verifies(Algorithm::PS256, &pem_key, &pkcs1));
}

#[test]
fn es256_and_eddsa_verify_and_refuse_a_changed_signature() {
    let signature = signed_by_fixture(Algorithm::ES256, "ec_p256.key.pem");
    assert_good_and_changed(Algorithm::ES256, &public("ec_p256.pub.pem"), signature);
    let signature = signed_by_fixture(Algorithm::EdDSA, "ed25519.key.pem");
    assert_good_and_changed(Algorithm::EdDSA, &public("ed25519.pub.pem"), signature);
}

#[test]
fn es384_verifies_and_refuses_a_changed_signature() {
    let signing = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap();
    let signature: p384::ecdsa::Signature = signing.sign(MESSAGE);
    let point = signing.verifying_key().to_encoded_point(false);
    let key = DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        &URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    )
    .unwrap();
    assert_good_and_changed(Algorithm::ES384, &key, signature.to_bytes().to_vec());
    // An ES256 verifier refuses a P-384 key.
    assert!((PROVIDER.verifier_factory)(&Algorithm::ES256, &key).is_err());
}

#[test]
fn hmac_and_keys_of_another_family_are_errors_not_verifications() {
    let rsa = public("rsa_a.pub.pem");
    let ec = public("ec_p256.pub.pem");
    let ed = public("ed25519.pub.pem");
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let secret = DecodingKey::from_secret(b"a shared secret");
        for key in [&secret, &rsa] {
            let error = (PROVIDER.verifier_factory)(&alg, key).err().unwrap();
            assert_eq!(error.kind(), &ErrorKind::InvalidAlgorithm, "{alg:?}");
        }
    }
    for (alg, key) in [
        (Algorithm::RS256, &ec),
        (Algorithm::PS256, &ed),
        (Algorithm::ES256, &rsa),
        (Algorithm::ES384, &ed),
        (Algorithm::EdDSA, &ec),
    ] {
        let error = (PROVIDER.verifier_factory)(&alg, key).err().unwrap();
        assert_eq!(error.kind(), &ErrorKind::InvalidKeyFormat, "{alg:?}");
    }
}

#[test]
fn a_short_or_bad_key_is_an_error_not_a_panic() {
    let short_ed = DecodingKey::from_ed_der(&[1u8; 31]);
    let error = (PROVIDER.verifier_factory)(&Algorithm::EdDSA, &short_ed)
        .err()
        .unwrap();
    assert_eq!(error.kind(), &ErrorKind::InvalidEddsaKey);
    let not_a_point = DecodingKey::from_ec_der(&[4u8; 65]);
    let error = (PROVIDER.verifier_factory)(&Algorithm::ES256, &not_a_point)
        .err()
        .unwrap();
    assert_eq!(error.kind(), &ErrorKind::InvalidEcdsaKey);
    // An RSA key whose DER does not parse: every signature is refused.
    let garbage = DecodingKey::from_rsa_der(b"not der");
    assert!(!verifies(Algorithm::RS256, &garbage, &[0u8; 256]));
}

#[test]
fn signing_is_delegated_with_the_signing_feature() {
    // The CLI's build (the default features): bundles are signed through this provider.
    let encoding = encoding_key(Algorithm::EdDSA, "ed25519.key.pem");
    let signer = (PROVIDER.signer_factory)(&Algorithm::EdDSA, &encoding).unwrap();
    let signature = signer.try_sign(MESSAGE).unwrap();
    assert!(verifies(
        Algorithm::EdDSA,
        &public("ed25519.pub.pem"),
        &signature
    ));
}

#[test]
fn every_use_of_jsonwebtoken_crypto_goes_through_the_engine_provider() {
    // Without the `signing` feature (the guard's module), a `jsonwebtoken` crypto call made
    // before `policies::jose::ensure_provider` installs jsonwebtoken's fallback provider, which
    // panics: the VM would go down at its first token or signed bundle. So the engine and the
    // plugin call jsonwebtoken's crypto only through `jose::{verify, sign, jwk_from_encoding_key}`.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut scanned = 0;
    let mut stack = vec![root.join("policies/src"), root.join("plugin/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("jose.rs") {
                continue;
            }
            scanned += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line
                    .replace("jose::verify(", "")
                    .replace("jose::sign(", "")
                    .replace("jose::jwk_from_encoding_key(", "");
                for direct in [
                    "crypto::verify(",
                    "crypto::sign(",
                    "from_encoding_key(",
                    "jsonwebtoken::decode",
                    "jsonwebtoken::encode",
                    "DecodingKey::from_jwk(",
                    "install_default(",
                ] {
                    assert!(
                        !code.contains(direct) || code.trim_start().starts_with("//"),
                        "{}:{}: `{direct}` outside policies/src/jose.rs",
                        path.display(),
                        n + 1
                    );
                }
            }
        }
    }
    assert!(
        scanned > 30,
        "control: the sources were read ({scanned} files)"
    );
}
