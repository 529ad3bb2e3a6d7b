//! Oracles and fixtures shared by the fuzz targets.
//!
//! Every oracle here is written independently of the engine (different code, simplest possible
//! form) so that a target can compare the engine's answer with a second opinion instead of only
//! checking that it did not panic:
//!
//! * [`label_decode`] / [`raw_model_label`]: the Smithy restJson1 rule for a path label (split
//!   the raw path on `/`, then percent-decode the segment exactly once);
//! * [`top_level_members`] / [`object_keys`]: serde_json's reading of a JSON object, member by
//!   member, in document order (values kept raw, so duplicates stay visible and numbers beyond
//!   `f64` do not make serde_json fail where the engine legitimately succeeds);
//! * the fixed JWT key set, clock and known-valid tokens of the `jwt` target;
//! * the demo bundle of the `decide` target.

use std::fmt;
use std::sync::OnceLock;

use policies::identity::{Algorithm, Jwks, KeySet, ProviderSpec};
use policies::CompiledPolicy;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

// ---------------------------------------------------------------------------------- paths

/// Decode `%XX` escapes exactly once; `None` when a `%` is not followed by two hex digits.
pub fn label_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            out.push(b);
            rest = tail;
        }
    }
    Some(out)
}

/// The raw `{modelId}` label of `/model/{modelId}/{operation}` (query removed, raw `/` split).
pub fn raw_model_label(raw_path: &[u8]) -> Option<&[u8]> {
    let path = raw_path.split(|&b| b == b'?').next()?;
    let segments: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    match segments.as_slice() {
        [b"", b"model", label, _operation] => Some(label),
        _ => None,
    }
}

/// `[A-Za-z0-9._:/-]{1,2048}`: the only alphabet a canonical model id may use.
pub fn canonical_alphabet(id: &str) -> bool {
    (1..=2048).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
}

/// Does a `/`-separated component of the (decoded) id read `.` or `..`?
pub fn has_dot_component(id: &str) -> bool {
    id.split('/').any(|c| c == "." || c == "..")
}

/// Does a raw path segment (query removed) decode, once, to `.` or `..`?
pub fn has_dot_segment(raw_path: &[u8]) -> bool {
    let path = raw_path.split(|&b| b == b'?').next().unwrap_or_default();
    path.split(|&b| b == b'/').any(|segment| {
        let decoded = label_decode(segment).unwrap_or_else(|| segment.to_vec());
        decoded == b"." || decoded == b".."
    })
}

/// What an AWS SDK puts in the path for a model id (Smithy `label::fmt_string`, non-greedy):
/// every byte outside the RFC 3986 unreserved set percent-encoded, `/` and `:` included.
pub fn smithy_label_encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len() * 3);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ----------------------------------------------------------------------------------- JSON

/// The members of one JSON object, in document order, duplicates kept.
struct Members<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Members<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MembersVisitor<V> {
            type Value = Members<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<V>, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<V>()?;
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

/// serde_json's view of a document that must be one object: its top-level members in order,
/// values raw. Errors for anything serde_json refuses (syntax, trailing data, bad UTF-8, lone
/// surrogates, depth beyond 128) or a non-object.
pub fn top_level_members(json: &[u8]) -> Result<Vec<(String, Box<RawValue>)>, serde_json::Error> {
    serde_json::from_slice::<Members<Box<RawValue>>>(json).map(|m| m.0)
}

/// The keys of a JSON object, in order, duplicates kept.
pub fn object_keys(json: &str) -> Result<Vec<String>, serde_json::Error> {
    serde_json::from_str::<Members<IgnoredAny>>(json)
        .map(|m| m.0.into_iter().map(|(k, _)| k).collect())
}

/// The keys of the JSON object `json` starts with (whatever follows it is not read).
pub fn leading_object_keys(json: &str) -> Result<Vec<String>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    Members::<IgnoredAny>::deserialize(&mut de).map(|m| m.0.into_iter().map(|(k, _)| k).collect())
}

// ------------------------------------------------------------------------------------ JWT

/// The fixed clock of the `jwt` target (2027-01-15T08:00:00Z, as in the engine's tests).
pub const JWT_NOW: u64 = 1_800_000_000;
pub const JWT_ISSUER_A: &str = "https://idp-a.example";
pub const JWT_ISSUER_B: &str = "https://idp-b.example";
pub const JWT_AUDIENCE: &str = "bedrock-egress";
pub const KID_RSA_A: &str = "rsa-a-1";
pub const KID_EC_A: &str = "ec-a-1";
pub const KID_RSA_B: &str = "rsa-b-1";

const RSA_A_JWK: &str = include_str!("../../policies/tests/fixtures/identity/rsa_a.jwk.json");
const EC_P256_JWK: &str = include_str!("../../policies/tests/fixtures/identity/ec_p256.jwk.json");
const RSA_B_JWK: &str = include_str!("../../policies/tests/fixtures/identity/rsa_b.jwk.json");

/// The only tokens that may verify: committed seeds, minted by `fuzz/tools/mint-jwt-seeds.sh`
/// (exp 2100-01-01, far after [`JWT_NOW`]).
pub const VALID_TOKENS: [&[u8]; 3] = [
    include_bytes!("../seeds/jwt/valid_rs256").as_slice(),
    include_bytes!("../seeds/jwt/valid_es256").as_slice(),
    include_bytes!("../seeds/jwt/valid_rs256_issuer_b").as_slice(),
];

fn jwk_with(jwk: &str, kid: &str, alg: &str) -> serde_json::Value {
    let mut key: serde_json::Value = serde_json::from_str(jwk).expect("fixture JWK is JSON");
    key["kid"] = serde_json::Value::from(kid);
    key["alg"] = serde_json::Value::from(alg);
    key
}

/// Issuer A (RS256 + ES256 keys), issuer B (RS256): the committed test-only fixture keys,
/// loaded through `Jwks::parse` like a fetched JWKS document.
pub fn jwt_keyset() -> KeySet {
    let provider_a = ProviderSpec::new(
        "idp-a",
        JWT_ISSUER_A,
        vec![JWT_AUDIENCE.to_owned()],
        vec![Algorithm::RS256, Algorithm::ES256],
    );
    let mut provider_b = ProviderSpec::new(
        "idp-b",
        JWT_ISSUER_B,
        vec![JWT_AUDIENCE.to_owned()],
        vec![Algorithm::RS256],
    );
    // 100 years: the valid seed (iat JWT_NOW - 60, exp 2100) fits, `iat: 0` does not.
    provider_b.max_lifetime_seconds = Some(100 * 365 * 86_400);
    let jwks_a = serde_json::json!({ "keys": [
        jwk_with(RSA_A_JWK, KID_RSA_A, "RS256"),
        jwk_with(EC_P256_JWK, KID_EC_A, "ES256"),
    ]});
    let jwks_b = serde_json::json!({ "keys": [jwk_with(RSA_B_JWK, KID_RSA_B, "RS256")] });
    let mut keys = KeySet::new(vec![provider_a, provider_b]).expect("fixture providers");
    let parse = |doc: serde_json::Value| {
        Jwks::parse(doc.to_string().as_bytes()).expect("fixture JWKS parses")
    };
    keys.set_keys("idp-a", parse(jwks_a)).expect("provider a");
    keys.set_keys("idp-b", parse(jwks_b)).expect("provider b");
    keys
}

/// A JWKS document with the three fixture keys (for the `jwks` target's sanity check).
pub fn fixture_jwks_document() -> String {
    serde_json::json!({ "keys": [
        jwk_with(RSA_A_JWK, KID_RSA_A, "RS256"),
        jwk_with(EC_P256_JWK, KID_EC_A, "ES256"),
        jwk_with(RSA_B_JWK, KID_RSA_B, "RS256"),
    ]})
    .to_string()
}

// --------------------------------------------------------------------------------- bundle

const DEMO_BUNDLE: &[u8] = include_bytes!("../../policies/examples/demo.json");

/// `policies/examples/demo.json`, compiled once.
pub fn demo_policy() -> &'static CompiledPolicy {
    static POLICY: OnceLock<CompiledPolicy> = OnceLock::new();
    POLICY.get_or_init(|| CompiledPolicy::from_json(DEMO_BUNDLE).expect("demo bundle compiles"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_decode_is_single_pass() {
        assert_eq!(label_decode(b"a%252Fb").unwrap(), b"a%2Fb");
        assert_eq!(label_decode(b"a%2fb%3A0").unwrap(), b"a/b:0");
        assert!(label_decode(b"%2").is_none());
        assert!(label_decode(b"%+1").is_none());
        assert!(label_decode(b"%zz").is_none());
    }

    #[test]
    fn model_label_is_third_raw_segment() {
        assert_eq!(raw_model_label(b"/model/a%2Fb/invoke"), Some(&b"a%2Fb"[..]));
        assert_eq!(raw_model_label(b"/model/a/b/invoke"), None);
        assert_eq!(raw_model_label(b"/model/a/invoke?x=1"), Some(&b"a"[..]));
    }

    #[test]
    fn members_keep_duplicates_and_big_numbers() {
        let m = top_level_members(br#"{"model":"a","x":1e400,"model":"b"}"#).unwrap();
        assert_eq!(m.len(), 3);
        assert!(top_level_members(b"[1]").is_err());
        assert_eq!(
            object_keys(r#"{"a":{"b":1},"c":null}"#).unwrap(),
            ["a", "c"]
        );
        assert_eq!(
            leading_object_keys(r#"{"b":"}","a":1},"x":2}"#).unwrap(),
            ["b", "a"]
        );
    }

    #[test]
    fn smithy_encoding_encodes_reserved() {
        assert_eq!(smithy_label_encode("arn:aws/x~y"), "arn%3Aaws%2Fx~y");
    }
}

/// Each JWT seed is refused for the reason its name says (so the corpus really covers those
/// classes rather than failing early on a minting mistake).
#[cfg(test)]
mod jwt_seed_tests {
    use super::*;
    use policies::identity::{verify, IdentityError, Malformed};

    fn seed(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/seeds/jwt/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn jwt_seeds_fail_for_their_class() {
        use IdentityError as E;
        use Malformed as M;
        let keys = jwt_keyset();
        let expect: &[(&str, IdentityError)] = &[
            ("alg_none", E::AlgorithmNotAllowed),
            ("alg_none_mixed_case", E::AlgorithmNotAllowed),
            ("hs256_confusion", E::AlgorithmNotAllowed),
            ("alg_mismatch_es256_on_rsa_key", E::AlgorithmNotAllowed),
            ("psychic_signature", E::BadSignature),
            ("jku", M::ForbiddenHeader("jku").into()),
            ("x5u", M::ForbiddenHeader("x5u").into()),
            ("jwk_embedded", M::ForbiddenHeader("jwk").into()),
            ("x5c", M::ForbiddenHeader("x5c").into()),
            ("crit", M::ForbiddenHeader("crit").into()),
            ("typ_wrong", M::BadHeader("typ").into()),
            ("kid_missing", M::BadHeader("kid").into()),
            (
                "kid_traversal",
                E::UnknownKey {
                    provider: "idp-a".into(),
                },
            ),
            (
                "kid_cross_issuer",
                E::UnknownKey {
                    provider: "idp-a".into(),
                },
            ),
            ("padded", M::Charset.into()),
            ("whitespace", M::Charset.into()),
            ("trailing_newline", M::Charset.into()),
            ("jwe_five_segments", M::Shape.into()),
            ("two_segments", M::Shape.into()),
            ("empty_signature", E::BadSignature),
            ("signature_trailing_bits", M::Base64.into()),
            ("payload_trailing_bits", M::Base64.into()),
            ("exp_string", M::ClaimType("exp").into()),
            ("nbf_string", M::ClaimType("nbf").into()),
            ("exp_missing", M::MissingClaim("exp").into()),
            ("exp_negative", M::ClaimType("exp").into()),
            ("expired", E::Expired),
            ("nbf_future", E::NotYetValid),
            ("iss_array", M::ClaimType("iss").into()),
            ("iss_unknown", E::UnknownIssuer),
            ("aud_missing", E::BadAudience),
            ("aud_object", M::ClaimType("aud").into()),
            ("sub_empty", M::Principal.into()),
            ("groups_object", M::Groups.into()),
            ("lifetime_too_long_issuer_b", E::LifetimeTooLong),
            ("duplicate_header_alg", M::DuplicateMember.into()),
            ("escaped_duplicate_alg", M::DuplicateMember.into()),
            ("duplicate_claim_sub", M::DuplicateMember.into()),
            ("claims_not_object", M::NotAnObject.into()),
            ("lone_surrogate", M::Json.into()),
        ];
        for (name, want) in expect {
            let got = verify(&seed(name), &keys, JWT_NOW).map(|_| ()).unwrap_err();
            assert_eq!(&got, want, "seed {name}");
        }
        for token in VALID_TOKENS {
            verify(token, &keys, JWT_NOW).unwrap();
        }
    }
}
