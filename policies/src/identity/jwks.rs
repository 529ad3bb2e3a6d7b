//! Strict JWKS parsing into ready-to-use decoding keys.
//!
//! Accepted: RSA (`n`, `e`; modulus 2048..=4096 bits), EC (P-256, P-384) and OKP (Ed25519)
//! public keys, each with a unique non-empty `kid`. A key's `alg`, when present, pins it to that
//! one algorithm; without `alg` an RSA key may verify RS*/PS*, an EC key the algorithm of its
//! curve, an Ed25519 key EdDSA (the provider's own list narrows this further at verify time).
//!
//! Errors (the whole document is refused, so the caller keeps the previous keys): invalid or
//! duplicate-member JSON, no `keys` array, a `kty: oct` key, any private key member, a missing or
//! duplicate `kid`, a bad parameter, a modulus outside the size bounds, an `alg` of the HMAC
//! family or `none`, an `alg` that contradicts the key type or curve.
//!
//! Skipped and reported ([`Jwks::skipped`]): keys for another use (`use` other than `sig`,
//! `key_ops` without `verify`), unsupported key types, curves and algorithms (`RSA-OAEP`,
//! `ES512`, `X25519`, ...). IdPs publish such keys next to their signing keys.
//!
//! Why 4096 bits rather than 8192: the `rsa` crate the engine verifies with (`crate::jose`, as
//! `jsonwebtoken`'s `rust_crypto` backend does) refuses larger moduli at verification time
//! (`RsaPublicKey::MAX_SIZE`), so a larger key would load and then fail every token as
//! `bad_signature`. Refusing it at load time names the problem.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::jose::RSA_ALGORITHMS;
use crate::json::{self, JsonErrorKind};

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most entries (usable or skipped) in one JWKS document.
pub const MAX_JWKS_KEYS: usize = 64;
/// Smallest RSA modulus accepted, in bits.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (see the module documentation).
pub(crate) const MAX_RSA_BITS: usize = 4096;

/// Members that carry private key material in RSA, EC and OKP JWKs (RFC 7518 §6, RFC 8037).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// A parsed JWKS: usable verification keys by `kid`, plus the entries that were skipped.
#[derive(Clone)]
pub struct Jwks {
    keys: BTreeMap<String, VerifyingKey>,
    skipped: Vec<SkippedKey>,
    digest: [u8; 32],
}

/// One usable key: the decoding key built once, and the algorithms it may verify.
#[derive(Clone)]
pub struct VerifyingKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl VerifyingKey {
    /// The algorithms this key may verify (one when the JWK names its `alg`).
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Whether the key may verify a token signed with `alg`.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("family", &self.key.family())
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

/// A JWKS entry that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// The entry's `kid`, when it had a string one (an identifier published by the IdP).
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a JWKS entry was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// `use` is not `sig`, or `key_ops` does not include `verify`.
    NotForSignatures,
    /// `kty` is neither `RSA`, `EC` nor `OKP`.
    UnsupportedKeyType,
    /// An EC or OKP curve other than P-256, P-384 and Ed25519.
    UnsupportedCurve,
    /// An `alg` that is not a signature algorithm verified here (e.g. `RSA-OAEP`, `ES512`).
    UnsupportedAlgorithm,
}

impl SkipReason {
    /// A stable code for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotForSignatures => "not_for_signatures",
            SkipReason::UnsupportedKeyType => "unsupported_key_type",
            SkipReason::UnsupportedCurve => "unsupported_curve",
            SkipReason::UnsupportedAlgorithm => "unsupported_algorithm",
        }
    }
}

/// Why a JWKS document was refused. Key positions are indexes into `keys`; values from the
/// document are never included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is longer than [`MAX_JWKS_BYTES`].
    #[error("JWKS document larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not one JSON document in UTF-8.
    #[error("JWKS document is not valid JSON")]
    Json,
    /// An object with the same member twice, at any depth.
    #[error("JWKS document has a duplicate JSON member")]
    DuplicateMember,
    /// Not an object with a `keys` array.
    #[error("JWKS document is not an object with a \"keys\" array")]
    NotAKeySet,
    /// More than [`MAX_JWKS_KEYS`] entries.
    #[error("JWKS document has more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
    /// An entry of `keys` is not an object.
    #[error("keys[{index}] is not a JSON object")]
    KeyNotAnObject {
        /// Position in `keys`.
        index: usize,
    },
    /// A `kty: oct` key: a published shared secret.
    #[error("keys[{index}]: kty \"oct\" (a symmetric secret) is refused")]
    SymmetricKey {
        /// Position in `keys`.
        index: usize,
    },
    /// A private key member (`d`, `p`, `q`, ...).
    #[error("keys[{index}] carries private key material ({member})")]
    PrivateKeyMaterial {
        /// Position in `keys`.
        index: usize,
        /// The member's name.
        member: &'static str,
    },
    /// An `alg` of the HMAC family, or `none`.
    #[error("keys[{index}]: alg of the HMAC family or \"none\" is refused")]
    SymmetricAlgorithm {
        /// Position in `keys`.
        index: usize,
    },
    /// A usable key without a non-empty string `kid`.
    #[error("keys[{index}] has no non-empty string kid")]
    MissingKid {
        /// Position in `keys`.
        index: usize,
    },
    /// Two usable keys with the same `kid`.
    #[error("keys[{index}] repeats the kid of an earlier key")]
    DuplicateKid {
        /// Position in `keys` of the second one.
        index: usize,
    },
    /// A key parameter (`kty`, `crv`, `n`, `e`, `x`, `y`, `use`, `key_ops`, `alg`) missing,
    /// of the wrong type, or not a valid value.
    #[error("keys[{index}]: parameter {param} is missing or invalid")]
    BadParameter {
        /// Position in `keys`.
        index: usize,
        /// The parameter's name.
        param: &'static str,
    },
    /// An RSA modulus outside 2048 to 4096 bits.
    #[error(
        "keys[{index}]: RSA modulus of {bits} bits is outside {MIN_RSA_BITS}..={MAX_RSA_BITS}"
    )]
    RsaKeySize {
        /// Position in `keys`.
        index: usize,
        /// The modulus's size, in bits.
        bits: usize,
    },
    /// An `alg` that contradicts the key type or curve (`ES256` on an RSA key).
    #[error("keys[{index}]: alg does not match the key type or curve")]
    AlgorithmMismatch {
        /// Position in `keys`.
        index: usize,
    },
    /// The parameters do not make a valid public key (a point off the curve, ...).
    #[error("keys[{index}]: not a valid public key")]
    InvalidKey {
        /// Position in `keys`.
        index: usize,
    },
}

impl Jwks {
    /// A key set with no keys (every token then gets `unknown_key`).
    pub fn empty() -> Jwks {
        Jwks::from_keys(BTreeMap::new(), Vec::new())
    }

    /// Parses a JWKS document (RFC 7517 §5) strictly. See the module documentation.
    pub fn parse(document: &[u8]) -> Result<Jwks, JwksError> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let value = json::parse(document, json::Options::JOSE).map_err(|e| match e.kind() {
            JsonErrorKind::DuplicateMember => JwksError::DuplicateMember,
            _ => JwksError::Json,
        })?;
        let entries = match value.get("keys") {
            Some(Value::Array(entries)) => entries,
            _ => return Err(JwksError::NotAKeySet),
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let mut keys = BTreeMap::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let Value::Object(jwk) = entry else {
                return Err(JwksError::KeyNotAnObject { index });
            };
            match parse_key(index, jwk)? {
                Parsed::Key(kid, key) => {
                    if keys.contains_key(&kid) {
                        return Err(JwksError::DuplicateKid { index });
                    }
                    keys.insert(kid, key);
                }
                Parsed::Skipped(reason) => skipped.push(SkippedKey {
                    index,
                    kid: jwk.get("kid").and_then(Value::as_str).map(str::to_owned),
                    reason,
                }),
            }
        }
        Ok(Jwks::from_keys(keys, skipped))
    }

    fn from_keys(keys: BTreeMap<String, VerifyingKey>, skipped: Vec<SkippedKey>) -> Jwks {
        let digest = digest_keys(&keys);
        Jwks {
            keys,
            skipped,
            digest,
        }
    }

    /// These keys plus `other`'s; on a `kid` present in both, this set's key wins (inline
    /// keys pinned in the bundle take precedence over fetched ones).
    pub fn merged_with(&self, other: &Jwks) -> Jwks {
        let mut keys = other.keys.clone();
        for (kid, key) in &self.keys {
            keys.insert(kid.clone(), key.clone());
        }
        let mut skipped = self.skipped.clone();
        skipped.extend(other.skipped.iter().cloned());
        Jwks::from_keys(keys, skipped)
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// The usable keys' ids, sorted.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Entries that were skipped (count them as warnings).
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// SHA-256 over the usable keys (kid, algorithms, key material), independent of member
    /// order and of skipped entries: equal digests mean the same verification behaviour.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("keys", &self.keys)
            .field("skipped", &self.skipped)
            .finish()
    }
}

enum Parsed {
    Key(String, VerifyingKey),
    Skipped(SkipReason),
}

fn parse_key(index: usize, jwk: &Map<String, Value>) -> Result<Parsed, JwksError> {
    let bad = |param: &'static str| JwksError::BadParameter { index, param };
    let kty = jwk.get("kty").and_then(Value::as_str).ok_or(bad("kty"))?;
    // Refusals that hold whatever the key claims to be for: a published secret or private key.
    if kty == "oct" {
        return Err(JwksError::SymmetricKey { index });
    }
    if let Some(member) = PRIVATE_MEMBERS.into_iter().find(|m| jwk.contains_key(*m)) {
        return Err(JwksError::PrivateKeyMaterial { index, member });
    }
    match jwk.get("use") {
        None => {}
        Some(Value::String(usage)) if usage == "sig" => {}
        Some(Value::String(_)) => return Ok(Parsed::Skipped(SkipReason::NotForSignatures)),
        Some(_) => return Err(bad("use")),
    }
    match jwk.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) => {
            if ops.iter().any(|op| !op.is_string()) {
                return Err(bad("key_ops"));
            }
            if !ops.iter().any(|op| op.as_str() == Some("verify")) {
                return Ok(Parsed::Skipped(SkipReason::NotForSignatures));
            }
        }
        Some(_) => return Err(bad("key_ops")),
    }
    let pinned = match jwk.get("alg") {
        None => None,
        Some(Value::String(alg)) => match alg.as_str() {
            "HS256" | "HS384" | "HS512" | "none" => {
                return Err(JwksError::SymmetricAlgorithm { index })
            }
            other => match signature_algorithm(other) {
                Some(alg) => Some(alg),
                None => return Ok(Parsed::Skipped(SkipReason::UnsupportedAlgorithm)),
            },
        },
        Some(_) => return Err(bad("alg")),
    };
    let (key, family_algorithms): (DecodingKey, Vec<Algorithm>) = match kty {
        "RSA" => (rsa_key(index, jwk)?, RSA_ALGORITHMS.to_vec()),
        "EC" => match jwk.get("crv").and_then(Value::as_str).ok_or(bad("crv"))? {
            "P-256" => (
                ec_key(index, jwk, 32, Algorithm::ES256)?,
                vec![Algorithm::ES256],
            ),
            "P-384" => (
                ec_key(index, jwk, 48, Algorithm::ES384)?,
                vec![Algorithm::ES384],
            ),
            _ => return Ok(Parsed::Skipped(SkipReason::UnsupportedCurve)),
        },
        "OKP" => match jwk.get("crv").and_then(Value::as_str).ok_or(bad("crv"))? {
            "Ed25519" => (ed25519_key(index, jwk)?, vec![Algorithm::EdDSA]),
            _ => return Ok(Parsed::Skipped(SkipReason::UnsupportedCurve)),
        },
        _ => return Ok(Parsed::Skipped(SkipReason::UnsupportedKeyType)),
    };
    let algorithms = match pinned {
        None => family_algorithms,
        Some(alg) if family_algorithms.contains(&alg) => vec![alg],
        Some(_) => return Err(JwksError::AlgorithmMismatch { index }),
    };
    let kid = match jwk.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        _ => return Err(JwksError::MissingKid { index }),
    };
    Ok(Parsed::Key(kid, VerifyingKey { key, algorithms }))
}

/// The asymmetric JWS algorithms this module verifies, by their exact RFC 7518 names.
pub(crate) fn signature_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

fn b64_param(
    index: usize,
    jwk: &Map<String, Value>,
    param: &'static str,
) -> Result<Vec<u8>, JwksError> {
    jwk.get(param)
        .and_then(Value::as_str)
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .ok_or(JwksError::BadParameter { index, param })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

fn rsa_key(index: usize, jwk: &Map<String, Value>) -> Result<DecodingKey, JwksError> {
    let n_raw = b64_param(index, jwk, "n")?;
    let e_raw = b64_param(index, jwk, "e")?;
    let n = strip_leading_zeros(&n_raw);
    let e = strip_leading_zeros(&e_raw);
    let bits = match n.first() {
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(JwksError::RsaKeySize { index, bits });
    }
    if n.last().is_none_or(|low| low % 2 == 0) {
        return Err(JwksError::BadParameter { index, param: "n" });
    }
    // The exponent bounds of the `rsa` crate (odd, 3..2^33), checked here so that a bad key
    // fails at load time instead of failing every verification.
    let exponent = if e.len() <= 5 {
        e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    } else {
        0
    };
    if exponent < 3 || exponent % 2 == 0 || exponent >= (1u64 << 33) {
        return Err(JwksError::BadParameter { index, param: "e" });
    }
    Ok(DecodingKey::from_rsa_raw_components(n, e))
}

fn ec_key(
    index: usize,
    jwk: &Map<String, Value>,
    coordinate_len: usize,
    alg: Algorithm,
) -> Result<DecodingKey, JwksError> {
    let x = b64_param(index, jwk, "x")?;
    let y = b64_param(index, jwk, "y")?;
    if x.len() != coordinate_len {
        return Err(JwksError::BadParameter { index, param: "x" });
    }
    if y.len() != coordinate_len {
        return Err(JwksError::BadParameter { index, param: "y" });
    }
    // Uncompressed SEC1 point, which is what `DecodingKey::from_ec_components` builds.
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key = DecodingKey::from_ec_der(&point);
    probe(index, &key, alg)?;
    Ok(key)
}

fn ed25519_key(index: usize, jwk: &Map<String, Value>) -> Result<DecodingKey, JwksError> {
    let x = b64_param(index, jwk, "x")?;
    // Exactly 32 bytes: jsonwebtoken's EdDSA verifier slices the first 32 bytes of the key.
    if x.len() != 32 {
        return Err(JwksError::BadParameter { index, param: "x" });
    }
    let key = DecodingKey::from_ed_der(&x);
    probe(index, &key, Algorithm::EdDSA)?;
    Ok(key)
}

/// Builds the verifier once so that a point that is not on the curve (or an invalid Ed25519
/// encoding) is refused at load time. A key error surfaces as `Err`; the dummy signature only
/// ever gives `Ok(false)`.
fn probe(index: usize, key: &DecodingKey, alg: Algorithm) -> Result<(), JwksError> {
    crate::jose::verify("AA", b"probe", key, alg)
        .map(|_| ())
        .map_err(|_| JwksError::InvalidKey { index })
}

fn algorithm_code(alg: Algorithm) -> u8 {
    match alg {
        Algorithm::RS256 => 1,
        Algorithm::RS384 => 2,
        Algorithm::RS512 => 3,
        Algorithm::PS256 => 4,
        Algorithm::PS384 => 5,
        Algorithm::PS512 => 6,
        Algorithm::ES256 => 7,
        Algorithm::ES384 => 8,
        Algorithm::EdDSA => 9,
        // Never stored in a key set (the HMAC family is refused at parse time).
        _ => 0,
    }
}

fn digest_keys(keys: &BTreeMap<String, VerifyingKey>) -> [u8; 32] {
    fn field(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    let mut hasher = Sha256::new();
    for (kid, key) in keys {
        field(&mut hasher, kid.as_bytes());
        let algorithms: Vec<u8> = key
            .algorithms
            .iter()
            .map(|alg| algorithm_code(*alg))
            .collect();
        field(&mut hasher, &algorithms);
        let family: u8 = match key.key.family() {
            AlgorithmFamily::Rsa => 1,
            AlgorithmFamily::Ec => 2,
            AlgorithmFamily::Ed => 3,
            AlgorithmFamily::Hmac => 4,
        };
        field(&mut hasher, &[family]);
        match key.key.kind() {
            DecodingKeyKind::SecretOrDer(bytes) => field(&mut hasher, bytes),
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                field(&mut hasher, n);
                field(&mut hasher, e);
            }
        }
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_ignore_leading_zero_octets() {
        let mut n = vec![0u8, 0x01];
        n.extend(std::iter::repeat_n(0xffu8, 255));
        // 0x01 followed by 255 bytes: 1 + 255 * 8 = 2041 bits, below the minimum.
        let doc = serde_json::json!({"keys":[{"kty":"RSA","kid":"k","e":"AQAB",
            "n": URL_SAFE_NO_PAD.encode(&n)}]});
        let err = Jwks::parse(doc.to_string().as_bytes()).err();
        assert_eq!(
            err,
            Some(JwksError::RsaKeySize {
                index: 0,
                bits: 2041
            })
        );
    }
}
