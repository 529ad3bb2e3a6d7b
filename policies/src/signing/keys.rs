//! Signing keys: the `Algorithm`s bundles may be signed with, `PublicKey` and `PrivateKey`,
//! and the PEM, DER (SPKI, PKCS#8, SEC1) and JWK parsing and encoding they are read and
//! written with.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{b64url_decode, key_error, SigningError};
use crate::canonical;

/// Longest key id accepted.
const MAX_KID_LEN: usize = 256;

/// A signature algorithm bundles may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519.
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl Algorithm {
    /// Both algorithms, the default (`EdDSA`) first.
    pub const ALL: [Algorithm; 2] = [Algorithm::EdDSA, Algorithm::ES256];

    /// The JOSE name (`EdDSA`, `ES256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
        }
    }

    /// Parse a JOSE name (exact spelling).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(super) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }

    /// Length of the raw signature (and of each public coordinate times two for ES256).
    pub(super) fn signature_len(self) -> usize {
        64
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// DER templates. Every Ed25519 and uncompressed P-256 key of one kind has the same encoding
// up to the key bytes, so fixed prefixes are both exact and strict.
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];
/// PKCS#8 v1 (RFC 8410) Ed25519 private key: prefix + 32-byte seed.
const ED25519_PKCS8_V1_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// PKCS#8 v2 (OneAsymmetricKey) Ed25519 key with its public key: prefix + seed + `81 21 00` + public.
const ED25519_PKCS8_V2_PREFIX: &[u8] = &[
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// PKCS#8 P-256 private key without the optional public key: prefix + 32-byte scalar.
const P256_PKCS8_SHORT_PREFIX: &[u8] = &[
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];
/// PKCS#8 P-256 private key with its public key (as OpenSSL writes them): prefix + scalar +
/// `a1 44 03 42 00 04` + x + y.
const P256_PKCS8_FULL_PREFIX: &[u8] = &[
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];
const P256_PKCS8_PUBLIC_TAG: &[u8] = &[0xa1, 0x44, 0x03, 0x42, 0x00, 0x04];

/// A public key that bundle signatures can be verified with.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub(super) alg: Algorithm,
    pub(super) kid: String,
    /// Ed25519: the 32-byte key. P-256: the 32-byte x coordinate.
    x: Vec<u8>,
    /// P-256: the 32-byte y coordinate. Empty for Ed25519.
    y: Vec<u8>,
    pub(super) decoding: DecodingKey,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg && self.kid == other.kid && self.x == other.x && self.y == other.y
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// A key from its raw public bytes (`y` empty for Ed25519). `kid` defaults to the
    /// RFC 7638 thumbprint. The point is checked to be a valid key.
    fn from_raw(
        alg: Algorithm,
        x: &[u8],
        y: &[u8],
        kid: Option<&str>,
    ) -> Result<PublicKey, SigningError> {
        let decoding = match alg {
            Algorithm::EdDSA => {
                if x.len() != 32 || !y.is_empty() {
                    return Err(key_error("an Ed25519 public key is 32 bytes"));
                }
                DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(x))
            }
            Algorithm::ES256 => {
                if x.len() != 32 || y.len() != 32 {
                    return Err(key_error(
                        "a P-256 public key has 32-byte x and y coordinates",
                    ));
                }
                DecodingKey::from_ec_components(
                    &URL_SAFE_NO_PAD.encode(x),
                    &URL_SAFE_NO_PAD.encode(y),
                )
            }
        }
        .map_err(|e| key_error(format!("unusable {alg} public key: {e}")))?;
        // A zero signature never verifies; the call only fails when the key itself is not a
        // valid point, which is what this checks.
        let probe = URL_SAFE_NO_PAD.encode([0u8; 64]);
        if crate::jose::verify(&probe, b"probe", &decoding, alg.jwt()).is_err() {
            return Err(key_error(format!("not a valid {alg} public key")));
        }
        let mut key = PublicKey {
            alg,
            kid: String::new(),
            x: x.to_vec(),
            y: y.to_vec(),
            decoding,
        };
        key.kid = match kid {
            Some(kid) => {
                check_kid(kid)?;
                kid.to_string()
            }
            None => key.thumbprint(),
        };
        Ok(key)
    }

    /// A key from a DER `SubjectPublicKeyInfo` (Ed25519, or P-256 uncompressed).
    fn from_spki_der(der: &[u8], kid: Option<&str>) -> Result<PublicKey, SigningError> {
        if let Some(x) = der.strip_prefix(ED25519_SPKI_PREFIX) {
            return PublicKey::from_raw(Algorithm::EdDSA, x, &[], kid);
        }
        if let Some(point) = der.strip_prefix(P256_SPKI_PREFIX) {
            if point.len() == 64 {
                let (x, y) = point.split_at(32);
                return PublicKey::from_raw(Algorithm::ES256, x, y, kid);
            }
        }
        Err(key_error(
            "not an Ed25519 or uncompressed EC P-256 public key (SubjectPublicKeyInfo)",
        ))
    }

    /// Every `PUBLIC KEY` block of a PEM text.
    fn from_pem(text: &str) -> Result<Vec<PublicKey>, SigningError> {
        let blocks = pem_blocks(text)?;
        if blocks.is_empty() {
            return Err(key_error("no PEM block found"));
        }
        let mut keys = Vec::with_capacity(blocks.len());
        for (label, der) in blocks {
            match label.as_str() {
                "PUBLIC KEY" => keys.push(PublicKey::from_spki_der(&der, None)?),
                "PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                    return Err(key_error(
                        "this is a private key; verify with the public key (PUBLIC KEY)",
                    ))
                }
                other => {
                    return Err(key_error(format!(
                        "unsupported PEM block {other:?} (expected PUBLIC KEY)"
                    )))
                }
            }
        }
        Ok(keys)
    }

    /// A public JWK (`OKP`/`Ed25519` or `EC`/`P-256`). Private members are refused.
    pub fn from_jwk(jwk: &Value) -> Result<PublicKey, SigningError> {
        let parsed = JwkParts::parse(jwk)?;
        if parsed.d.is_some() {
            return Err(key_error(
                "this JWK holds a private key (\"d\"); distribute and pin public keys only",
            ));
        }
        PublicKey::from_raw(parsed.alg, &parsed.x, &parsed.y, parsed.kid.as_deref())
    }

    /// Public keys from a file's contents: PEM, a JWK, or a JWK set (`{"keys": [...]}`).
    pub fn parse(bytes: &[u8]) -> Result<Vec<PublicKey>, SigningError> {
        let text = std::str::from_utf8(bytes).map_err(|_| key_error("not UTF-8 text"))?;
        let trimmed = text.trim_start();
        if trimmed.starts_with("-----BEGIN") {
            return PublicKey::from_pem(text);
        }
        if trimmed.starts_with('{') {
            let value = canonical::parse_strict(text.as_bytes())
                .map_err(|e| key_error(format!("not a JWK: {e}")))?;
            return match value.get("keys") {
                Some(Value::Array(keys)) => keys.iter().map(PublicKey::from_jwk).collect(),
                Some(_) => Err(key_error("\"keys\" must be an array of JWKs")),
                None => Ok(vec![PublicKey::from_jwk(&value)?]),
            };
        }
        Err(key_error("expected a PEM public key, a JWK or a JWK set"))
    }

    /// The algorithm the key verifies (and the only one a signature by it may name).
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id signatures name this key by.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The same key under another id.
    fn with_kid(mut self, kid: &str) -> Result<PublicKey, SigningError> {
        check_kid(kid)?;
        self.kid = kid.to_string();
        Ok(self)
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url).
    fn thumbprint(&self) -> String {
        let x = URL_SAFE_NO_PAD.encode(&self.x);
        // Members in lexicographic order, no whitespace: the RFC's required form.
        let text = match self.alg {
            Algorithm::EdDSA => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
            Algorithm::ES256 => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(&self.y)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
    }

    /// The public JWK, with `kid`, `alg` and `use: sig`.
    pub fn to_jwk(&self) -> Value {
        let mut m = Map::new();
        match self.alg {
            Algorithm::EdDSA => {
                m.insert("kty".into(), "OKP".into());
                m.insert("crv".into(), "Ed25519".into());
                m.insert("x".into(), URL_SAFE_NO_PAD.encode(&self.x).into());
            }
            Algorithm::ES256 => {
                m.insert("kty".into(), "EC".into());
                m.insert("crv".into(), "P-256".into());
                m.insert("x".into(), URL_SAFE_NO_PAD.encode(&self.x).into());
                m.insert("y".into(), URL_SAFE_NO_PAD.encode(&self.y).into());
            }
        }
        m.insert("kid".into(), self.kid.clone().into());
        m.insert("alg".into(), self.alg.as_str().into());
        m.insert("use".into(), "sig".into());
        Value::Object(m)
    }

    /// DER `SubjectPublicKeyInfo`.
    fn to_spki_der(&self) -> Vec<u8> {
        let mut der = Vec::with_capacity(91);
        match self.alg {
            Algorithm::EdDSA => der.extend_from_slice(ED25519_SPKI_PREFIX),
            Algorithm::ES256 => der.extend_from_slice(P256_SPKI_PREFIX),
        }
        der.extend_from_slice(&self.x);
        der.extend_from_slice(&self.y);
        der
    }

    /// PEM `PUBLIC KEY`.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.to_spki_der())
    }
}

/// A private key bundles can be signed with.
pub struct PrivateKey {
    pub(super) encoding: EncodingKey,
    /// PKCS#8 DER, as loaded or generated.
    pkcs8: Vec<u8>,
    public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.public.alg)
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A key from PKCS#8 DER (Ed25519 or EC P-256).
    fn from_pkcs8_der(der: &[u8], kid: Option<&str>) -> Result<PrivateKey, SigningError> {
        let head = der.get(..40).unwrap_or(der);
        if contains(head, ED25519_OID) {
            let seed = ed25519_seed(der)?;
            return PrivateKey::from_seed(Algorithm::EdDSA, &seed, kid);
        }
        if contains(head, EC_PUBLIC_KEY_OID) {
            if !contains(head, P256_OID) {
                return Err(key_error(
                    "an EC key on a curve other than P-256 (only ES256 is supported)",
                ));
            }
            return PrivateKey::from_ec_der(der.to_vec(), kid);
        }
        Err(key_error(
            "unsupported private key type (expected Ed25519 or EC P-256 in PKCS#8)",
        ))
    }

    /// A key from PEM: `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1, P-256).
    fn from_pem(text: &str) -> Result<PrivateKey, SigningError> {
        let blocks = pem_blocks(text)?;
        let mut found = None;
        for (label, der) in blocks {
            match label.as_str() {
                "PRIVATE KEY" | "EC PRIVATE KEY" if found.is_some() => {
                    return Err(key_error("more than one private key in the file"))
                }
                "PRIVATE KEY" => found = Some(der),
                "EC PRIVATE KEY" => {
                    if !contains(&der, P256_OID) {
                        return Err(key_error(
                            "an EC key on a curve other than P-256 (only ES256 is supported)",
                        ));
                    }
                    found = Some(sec1_to_pkcs8(&der));
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(key_error(
                        "encrypted private keys are not supported; decrypt it first (openssl pkcs8 -nocrypt)",
                    ))
                }
                "PUBLIC KEY" => {
                    return Err(key_error("this is a public key; signing needs the private key"))
                }
                // Parameters (`EC PARAMETERS`) and other blocks are not keys: skip them.
                _ => {}
            }
        }
        let der = found.ok_or_else(|| key_error("no PRIVATE KEY block found"))?;
        PrivateKey::from_pkcs8_der(&der, None)
    }

    /// A private JWK (`OKP`/`Ed25519` or `EC`/`P-256` with `d`).
    pub fn from_jwk(jwk: &Value) -> Result<PrivateKey, SigningError> {
        let parts = JwkParts::parse(jwk)?;
        let Some(d) = parts.d.as_deref() else {
            return Err(key_error("this JWK has no private part (\"d\")"));
        };
        let seed: [u8; 32] = d
            .try_into()
            .map_err(|_| key_error("\"d\" must be 32 bytes"))?;
        let key = PrivateKey::from_seed(parts.alg, &seed, parts.kid.as_deref())?;
        if key.public.x != parts.x || key.public.y != parts.y {
            return Err(key_error(
                "the JWK's public part does not belong to its \"d\"",
            ));
        }
        Ok(key)
    }

    /// A private key from a file's contents: PEM or a private JWK.
    pub fn parse(bytes: &[u8]) -> Result<PrivateKey, SigningError> {
        let text = std::str::from_utf8(bytes).map_err(|_| key_error("not UTF-8 text"))?;
        let trimmed = text.trim_start();
        if trimmed.starts_with("-----BEGIN") {
            return PrivateKey::from_pem(text);
        }
        if trimmed.starts_with('{') {
            let value = canonical::parse_strict(text.as_bytes())
                .map_err(|e| key_error(format!("not a JWK: {e}")))?;
            return PrivateKey::from_jwk(&value);
        }
        Err(key_error("expected a PEM private key or a private JWK"))
    }

    /// A key from 32 secret bytes: the Ed25519 seed, or the P-256 scalar (which must be
    /// below the group order; random bytes fail this with probability about 2^-32, so a
    /// generator simply draws again).
    pub fn from_seed(
        alg: Algorithm,
        seed: &[u8; 32],
        kid: Option<&str>,
    ) -> Result<PrivateKey, SigningError> {
        match alg {
            Algorithm::EdDSA => {
                let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
                der.extend_from_slice(seed);
                let encoding = EncodingKey::from_ed_der(&der);
                let jwk =
                    crate::jose::jwk_from_encoding_key(&encoding, jsonwebtoken::Algorithm::EdDSA)
                        .map_err(|e| key_error(format!("not a valid Ed25519 key: {e}")))?;
                let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
                    return Err(key_error("not a valid Ed25519 key"));
                };
                let x = b64url_decode(&okp.x).map_err(key_error)?;
                let public = PublicKey::from_raw(Algorithm::EdDSA, &x, &[], kid)?;
                PrivateKey::checked(encoding, der, public)
            }
            Algorithm::ES256 => {
                let mut der = P256_PKCS8_SHORT_PREFIX.to_vec();
                der.extend_from_slice(seed);
                let key = PrivateKey::from_ec_der(der, kid)?;
                // Keep the public key in the encoding, as OpenSSL does.
                let mut full = P256_PKCS8_FULL_PREFIX.to_vec();
                full.extend_from_slice(seed);
                full.extend_from_slice(P256_PKCS8_PUBLIC_TAG);
                full.extend_from_slice(&key.public.x);
                full.extend_from_slice(&key.public.y);
                Ok(PrivateKey {
                    encoding: EncodingKey::from_ec_der(&full),
                    pkcs8: full,
                    public: key.public,
                })
            }
        }
    }

    fn from_ec_der(der: Vec<u8>, kid: Option<&str>) -> Result<PrivateKey, SigningError> {
        let encoding = EncodingKey::from_ec_der(&der);
        let jwk = crate::jose::jwk_from_encoding_key(&encoding, jsonwebtoken::Algorithm::ES256)
            .map_err(|e| key_error(format!("not a valid EC P-256 key: {e}")))?;
        let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm else {
            return Err(key_error("not a valid EC P-256 key"));
        };
        let x = b64url_decode(&ec.x).map_err(key_error)?;
        let y = b64url_decode(&ec.y).map_err(key_error)?;
        let public = PublicKey::from_raw(Algorithm::ES256, &x, &y, kid)?;
        PrivateKey::checked(encoding, der, public)
    }

    /// Sign a probe and verify it with the derived public key, so a key that loads is a
    /// key that works.
    fn checked(
        encoding: EncodingKey,
        pkcs8: Vec<u8>,
        public: PublicKey,
    ) -> Result<PrivateKey, SigningError> {
        let alg = public.alg.jwt();
        let sig = crate::jose::sign(b"probe", &encoding, alg)
            .map_err(|e| key_error(format!("cannot sign with this key: {e}")))?;
        match crate::jose::verify(&sig, b"probe", &public.decoding, alg) {
            Ok(true) => Ok(PrivateKey {
                encoding,
                pkcs8,
                public,
            }),
            _ => Err(key_error("the private key does not match its public key")),
        }
    }

    /// The algorithm the key signs with.
    pub fn alg(&self) -> Algorithm {
        self.public.alg
    }

    /// The key id its signatures name (the public key's).
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The matching public key, to pin or publish.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The same key under another id.
    pub fn with_kid(mut self, kid: &str) -> Result<PrivateKey, SigningError> {
        self.public = self.public.with_kid(kid)?;
        Ok(self)
    }

    /// PEM `PRIVATE KEY` (PKCS#8).
    pub fn to_pkcs8_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.pkcs8)
    }
}

pub(super) fn check_kid(kid: &str) -> Result<(), SigningError> {
    if kid.is_empty() || kid.len() > MAX_KID_LEN || kid.chars().any(char::is_control) {
        return Err(key_error(format!(
            "key id must be 1 to {MAX_KID_LEN} characters without control characters"
        )));
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The 32-byte seed of a PKCS#8 Ed25519 key (v1, or v2 with the public key).
fn ed25519_seed(der: &[u8]) -> Result<[u8; 32], SigningError> {
    let seed = if let Some(rest) = der.strip_prefix(ED25519_PKCS8_V1_PREFIX) {
        Some(rest).filter(|r| r.len() == 32)
    } else if let Some(rest) = der.strip_prefix(ED25519_PKCS8_V2_PREFIX) {
        rest.get(..32).filter(|_| rest.len() == 32 + 3 + 32)
    } else {
        None
    };
    seed.and_then(|s| <[u8; 32]>::try_from(s).ok())
        .ok_or_else(|| key_error("malformed PKCS#8 Ed25519 private key"))
}

/// Wrap a SEC1 `ECPrivateKey` (P-256) in PKCS#8.
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    let mut algorithm = vec![0x30, 0x13];
    algorithm.extend_from_slice(EC_PUBLIC_KEY_OID);
    algorithm.extend_from_slice(P256_OID);
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&algorithm);
    body.push(0x04);
    der_length(sec1.len(), &mut body);
    body.extend_from_slice(sec1);
    let mut out = vec![0x30];
    der_length(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(0));
        out.extend_from_slice(&bytes);
    }
}

/// The (label, DER) blocks of a PEM text. Encapsulated headers (legacy encryption) are refused.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, SigningError> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        match current.take() {
            None => {
                if let Some(label) = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    current = Some((label.to_string(), String::new()));
                }
            }
            Some((label, mut body)) => {
                if let Some(end) = line
                    .strip_prefix("-----END ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    if end != label {
                        return Err(key_error(format!(
                            "PEM block BEGIN {label} ends with END {end}"
                        )));
                    }
                    let der = STANDARD
                        .decode(body.as_bytes())
                        .map_err(|_| key_error(format!("PEM block {label} is not valid base64")))?;
                    blocks.push((label, der));
                } else if line.contains(':') {
                    return Err(key_error(
                        "encrypted (legacy PEM) keys are not supported; decrypt the key first",
                    ));
                } else {
                    body.push_str(line);
                    current = Some((label, body));
                }
            }
        }
    }
    if let Some((label, _)) = current {
        return Err(key_error(format!("PEM block {label} has no END line")));
    }
    Ok(blocks)
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The members of an `OKP`/`Ed25519` or `EC`/`P-256` JWK that matter here.
struct JwkParts {
    alg: Algorithm,
    x: Vec<u8>,
    y: Vec<u8>,
    d: Option<Vec<u8>>,
    kid: Option<String>,
}

impl JwkParts {
    fn parse(jwk: &Value) -> Result<JwkParts, SigningError> {
        let Value::Object(m) = jwk else {
            return Err(key_error("a JWK must be a JSON object"));
        };
        let text = |name: &str| -> Result<Option<&str>, SigningError> {
            match m.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(key_error(format!("JWK member {name:?} must be a string"))),
            }
        };
        let bytes = |name: &str, len: usize| -> Result<Option<Vec<u8>>, SigningError> {
            let Some(s) = text(name)? else {
                return Ok(None);
            };
            let b = b64url_decode(s).map_err(|e| key_error(format!("JWK {name:?}: {e}")))?;
            if b.len() != len {
                return Err(key_error(format!("JWK {name:?} must be {len} bytes")));
            }
            Ok(Some(b))
        };
        let alg = match (text("kty")?, text("crv")?) {
            (Some("OKP"), Some("Ed25519")) => Algorithm::EdDSA,
            (Some("EC"), Some("P-256")) => Algorithm::ES256,
            (Some(kty), crv) => {
                return Err(key_error(format!(
                    "unsupported JWK kty {kty:?} crv {:?} (expected OKP/Ed25519 or EC/P-256)",
                    crv.unwrap_or("")
                )))
            }
            (None, _) => return Err(key_error("JWK has no \"kty\"")),
        };
        if let Some(declared) = text("alg")? {
            if declared != alg.as_str() {
                return Err(key_error(format!(
                    "JWK \"alg\" is {declared:?} but the key is an {alg} key"
                )));
            }
        }
        if let Some(u) = text("use")? {
            if u != "sig" {
                return Err(key_error("JWK \"use\" must be \"sig\""));
            }
        }
        let x = bytes("x", 32)?.ok_or_else(|| key_error("JWK has no \"x\""))?;
        let y = match alg {
            Algorithm::EdDSA => {
                if m.contains_key("y") {
                    return Err(key_error("an OKP JWK has no \"y\""));
                }
                Vec::new()
            }
            Algorithm::ES256 => bytes("y", 32)?.ok_or_else(|| key_error("JWK has no \"y\""))?,
        };
        let d = bytes("d", 32)?;
        let kid = text("kid")?.map(str::to_string);
        Ok(JwkParts { alg, x, y, d, kid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        let mut out = Vec::new();
        der_length(0x7f, &mut out);
        der_length(0x80, &mut out);
        der_length(0x1234, &mut out);
        assert_eq!(out, vec![0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn pem_round_trip() {
        let pem = pem_encode("PUBLIC KEY", &[1u8; 100]);
        assert_eq!(
            pem_blocks(&pem).ok(),
            Some(vec![("PUBLIC KEY".to_string(), vec![1u8; 100])])
        );
    }
}
