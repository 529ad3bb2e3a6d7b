//! Shared helpers for the `identity_*` tests: fixture keys, providers, token minting.
//!
//! Keys are the committed test-only fixtures in `policies/tests/fixtures/identity/` (see its
//! README). Tokens are minted with `jsonwebtoken::encode`, or, when a test needs exact header or
//! claims bytes (duplicate members, odd types), by signing hand-written JSON with
//! `jsonwebtoken::crypto::sign`, so that the property under test is the only thing wrong.
//! The CLI's tests include this module too (`cli/tests/cli/main.rs`).
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use policies::identity::{Algorithm, IdentityError, Jwks, KeySet, ProviderSpec, VerifiedToken};
use serde_json::{json, Value};

/// The fixed clock of every test: 2027-01-15T08:00:00Z.
pub const NOW: u64 = 1_800_000_000;
pub const ISS_A: &str = "https://idp-a.example";
pub const ISS_B: &str = "https://idp-b.example";
pub const AUD: &str = "bedrock-egress";
pub const SUB: &str = "spiffe://cluster.local/ns/ml/sa/trainer";

pub const KID_RSA_A: &str = "rsa-a-1";
pub const KID_EC_A: &str = "ec-a-1";
pub const KID_ED_A: &str = "ed-a-1";
pub const KID_RSA_B: &str = "rsa-b-1";

/// `policies/tests/fixtures/identity/<name>`; the path holds from the engine's crate and from the
/// CLI's (`cli/tests/cli/main.rs` includes this module).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../policies/tests/fixtures/identity/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A public JWK fixture (`rsa_a`, `rsa_b`, `ec_p256`, `ed25519`) with `kid` and optional `alg`.
pub fn jwk(name: &str, kid: &str, alg: Option<&str>) -> Value {
    let mut key: Value = serde_json::from_slice(&fixture(&format!("{name}.jwk.json"))).unwrap();
    key["kid"] = json!(kid);
    if let Some(alg) = alg {
        key["alg"] = json!(alg);
    }
    key
}

pub fn jwks(keys: Vec<Value>) -> Jwks {
    Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

/// Issuer A: RS256, ES256 and EdDSA.
pub fn provider_a() -> ProviderSpec {
    ProviderSpec::new(
        "idp-a",
        ISS_A,
        vec![AUD.to_owned()],
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
    )
}

/// Issuer B: RS256.
pub fn provider_b() -> ProviderSpec {
    ProviderSpec::new("idp-b", ISS_B, vec![AUD.to_owned()], vec![Algorithm::RS256])
}

/// A's keys: `rsa-a-1` (RSA A, no `alg`), `ec-a-1` (ES256), `ed-a-1` (EdDSA).
pub fn jwks_a() -> Jwks {
    jwks(vec![
        jwk("rsa_a", KID_RSA_A, None),
        jwk("ec_p256", KID_EC_A, Some("ES256")),
        jwk("ed25519", KID_ED_A, Some("EdDSA")),
    ])
}

/// B's keys: `rsa-b-1` (RSA B, RS256).
pub fn jwks_b() -> Jwks {
    jwks(vec![jwk("rsa_b", KID_RSA_B, Some("RS256"))])
}

pub fn keyset_with(specs: Vec<ProviderSpec>) -> KeySet {
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut keys = KeySet::new(specs).unwrap();
    for name in names {
        let set = match name.as_str() {
            "idp-a" => jwks_a(),
            "idp-b" => jwks_b(),
            other => panic!("no fixture keys for {other}"),
        };
        keys.set_keys(&name, set).unwrap();
    }
    keys
}

/// Providers A and B with their fixture keys.
pub fn keyset() -> KeySet {
    keyset_with(vec![provider_a(), provider_b()])
}

/// Valid claims for issuer A at [`NOW`]: issued a minute ago, expiring in ten.
pub fn claims() -> Value {
    json!({
        "iss": ISS_A,
        "aud": AUD,
        "sub": SUB,
        "iat": NOW - 60,
        "exp": NOW + 600,
    })
}

pub fn encoding_key(alg: Algorithm, private_key: &str) -> EncodingKey {
    // The engine's provider, as in the guard (the first one used becomes the process's).
    policies::jose::ensure_provider();
    let pem = fixture(private_key);
    match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            EncodingKey::from_rsa_pem(&pem).unwrap()
        }
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
            EncodingKey::from_rsa_pem(&pem).unwrap()
        }
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
        other => panic!("no fixture for {other:?}"),
    }
}

/// A token signed with `jsonwebtoken::encode` (header `typ: JWT`, the given `kid`).
pub fn mint(alg: Algorithm, private_key: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &encoding_key(alg, private_key)).unwrap()
}

/// RS256 with issuer A's RSA key.
pub fn mint_a(claims: &Value) -> String {
    mint(Algorithm::RS256, "rsa_a.key.pem", KID_RSA_A, claims)
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs exact header and claims bytes (the JSON is not re-serialised).
pub fn mint_raw(alg: Algorithm, private_key: &str, header_json: &str, claims_json: &str) -> String {
    let message = format!(
        "{}.{}",
        b64(header_json.as_bytes()),
        b64(claims_json.as_bytes())
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &encoding_key(alg, private_key), alg)
            .unwrap();
    format!("{message}.{signature}")
}

/// RS256 with issuer A's RSA key over exact JSON.
pub fn mint_raw_a(header_json: &str, claims_json: &str) -> String {
    mint_raw(Algorithm::RS256, "rsa_a.key.pem", header_json, claims_json)
}

/// The standard header of [`mint_raw_a`] tokens.
pub fn header_a() -> String {
    format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{KID_RSA_A}"}}"#)
}

/// Verifies with the default key set at [`NOW`].
pub fn check(token: &str) -> Result<VerifiedToken, IdentityError> {
    policies::identity::verify(token.as_bytes(), &keyset(), NOW)
}

/// The error for a token that must be refused.
pub fn refused(token: &str) -> IdentityError {
    match check(token) {
        Ok(verified) => panic!("token accepted: {:?}", verified.principal),
        Err(error) => error,
    }
}
