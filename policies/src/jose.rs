//! The process's `jsonwebtoken` crypto provider: verification by the RustCrypto crates, and
//! signing only with the `signing` feature.
//!
//! `jsonwebtoken`'s own RustCrypto provider names its signers, so every program that verifies
//! through it also links RSA private-key operations, ECDSA signing (RFC 6979) and Ed25519
//! signing. The guard's module only verifies (tokens and bundle signatures), and V8 compiles
//! every function of it in every Envoy: without the `signing` feature (the plugin's build) those
//! signers are not linked. The CLI signs bundles and builds with the feature (the default).
//!
//! The verifiers do what `jsonwebtoken`'s RustCrypto verifiers do, with the same crates: RSA
//! PKCS#1 v1.5 and PSS over SHA-2 (`rsa`), ECDSA P-256 / P-384 over SHA-256 / SHA-384 with
//! fixed-size `r || s` signatures (`p256`, `p384`), Ed25519 (`ed25519-dalek`). HMAC is never
//! verified (a token or bundle naming it is refused before it gets here; the provider refuses
//! it too). A key of the wrong family is refused as `InvalidKeyFormat`, as there.

use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::SignatureScheme;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::digest::const_oid::AssociatedOid;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Installs [`PROVIDER`] as the process default unless a provider is already installed. The
/// engine calls it before every use of `jsonwebtoken`'s crypto: without an installed provider and
/// without its RustCrypto feature, `jsonwebtoken` falls back to one that panics, which would take
/// the VM down. A program that calls `jsonwebtoken` itself should call this first (the first
/// provider used becomes the process's).
pub fn ensure_provider() {
    // Err only means a provider is already installed (this one, or in a test the caller's).
    let _ = CryptoProvider::install_default(&PROVIDER);
}

/// `jsonwebtoken::crypto::verify` with [`PROVIDER`] installed first. Every verification in the
/// engine goes through here (tests/engine/jose_provider.rs checks the sources).
pub(crate) fn verify(
    signature_b64: &str,
    message: &[u8],
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<bool> {
    ensure_provider();
    jsonwebtoken::crypto::verify(signature_b64, message, key, alg)
}

/// `jsonwebtoken::crypto::sign` with [`PROVIDER`] installed first (an error without the
/// `signing` feature).
pub(crate) fn sign(message: &[u8], key: &EncodingKey, alg: Algorithm) -> Result<String> {
    ensure_provider();
    jsonwebtoken::crypto::sign(message, key, alg)
}

/// `Jwk::from_encoding_key` with [`PROVIDER`] installed first.
pub(crate) fn jwk_from_encoding_key(
    key: &EncodingKey,
    alg: Algorithm,
) -> Result<jsonwebtoken::jwk::Jwk> {
    ensure_provider();
    jsonwebtoken::jwk::Jwk::from_encoding_key(key, alg)
}

/// Verification by the RustCrypto crates; signing delegated to `jsonwebtoken`'s RustCrypto
/// provider with the `signing` feature, refused without it.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_from_private,
        rsa_pub_components_from_public_key: rsa_from_public,
        ec_pub_components_from_private_key: ec_from_private,
        ed_pub_components_from_private_key: ed_from_private,
        compute_digest,
    },
};

/// The RSA algorithms this provider verifies: PKCS#1 v1.5 and PSS, each with SHA-256, -384 and
/// -512.
pub const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let family = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => AlgorithmFamily::Rsa,
        Algorithm::ES256 | Algorithm::ES384 => AlgorithmFamily::Ec,
        Algorithm::EdDSA => AlgorithmFamily::Ed,
        // HMAC, and any algorithm a later jsonwebtoken adds: never verified here.
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(match alg {
        Algorithm::ES256 => Box::new(Es256(
            p256::ecdsa::VerifyingKey::from_sec1_bytes(key.try_get_as_bytes()?)
                .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?,
        )),
        Algorithm::ES384 => Box::new(Es384(
            p384::ecdsa::VerifyingKey::from_sec1_bytes(key.try_get_as_bytes()?)
                .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?,
        )),
        Algorithm::EdDSA => {
            let bytes = key
                .try_get_as_bytes()?
                .get(..32)
                .and_then(|b| <&[u8; 32]>::try_from(b).ok())
                .ok_or(Error::from(ErrorKind::InvalidEddsaKey))?;
            Box::new(EdDsa(
                ed25519_dalek::VerifyingKey::from_bytes(bytes)
                    .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?,
            ))
        }
        rsa_alg => Box::new(Rsa {
            alg: *rsa_alg,
            key: key.clone(),
        }),
    })
}

type SigResult = std::result::Result<(), rsa::signature::Error>;

/// A verifier holding a parsed public key whose signatures have one fixed-size encoding.
macro_rules! fixed_key_verifier {
    ($name:ident, $key:ty, $signature:ty, $alg:expr) => {
        struct $name($key);

        impl rsa::signature::Verifier<Vec<u8>> for $name {
            fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> SigResult {
                let signature = <$signature>::from_slice(signature)?;
                rsa::signature::Verifier::verify(&self.0, msg, &signature)
            }
        }

        impl JwtVerifier for $name {
            fn algorithm(&self) -> Algorithm {
                $alg
            }
        }
    };
}

fixed_key_verifier!(
    Es256,
    p256::ecdsa::VerifyingKey,
    p256::ecdsa::Signature,
    Algorithm::ES256
);
fixed_key_verifier!(
    Es384,
    p384::ecdsa::VerifyingKey,
    p384::ecdsa::Signature,
    Algorithm::ES384
);
fixed_key_verifier!(
    EdDsa,
    ed25519_dalek::VerifyingKey,
    ed25519_dalek::Signature,
    Algorithm::EdDSA
);

struct Rsa {
    alg: Algorithm,
    key: DecodingKey,
}

impl rsa::signature::Verifier<Vec<u8>> for Rsa {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> SigResult {
        match self.alg {
            Algorithm::RS256 => {
                rsa_verify::<_, Sha256>(Pkcs1v15Sign::new::<Sha256>(), self, msg, signature)
            }
            Algorithm::RS384 => {
                rsa_verify::<_, Sha384>(Pkcs1v15Sign::new::<Sha384>(), self, msg, signature)
            }
            Algorithm::RS512 => {
                rsa_verify::<_, Sha512>(Pkcs1v15Sign::new::<Sha512>(), self, msg, signature)
            }
            Algorithm::PS256 => rsa_verify::<_, Sha256>(Pss::new::<Sha256>(), self, msg, signature),
            Algorithm::PS384 => rsa_verify::<_, Sha384>(Pss::new::<Sha384>(), self, msg, signature),
            Algorithm::PS512 => rsa_verify::<_, Sha512>(Pss::new::<Sha512>(), self, msg, signature),
            _ => Err(rsa::signature::Error::new()),
        }
    }
}

fn rsa_verify<S: SignatureScheme, H: Digest + AssociatedOid>(
    scheme: S,
    rsa: &Rsa,
    msg: &[u8],
    signature: &[u8],
) -> SigResult {
    let digest = H::digest(msg);
    let key = match rsa.key.kind() {
        DecodingKeyKind::SecretOrDer(der) => {
            RsaPublicKey::from_pkcs1_der(der).map_err(rsa::signature::Error::from_source)?
        }
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                .map_err(rsa::signature::Error::from_source)?
        }
    };
    key.verify(scheme, &digest, signature)
        .map_err(rsa::signature::Error::from_source)
}

impl JwtVerifier for Rsa {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(feature = "signing")]
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as SIGNING;

#[cfg(feature = "signing")]
fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn jsonwebtoken::crypto::JwtSigner>> {
    (SIGNING.signer_factory)(alg, key)
}

#[cfg(not(feature = "signing"))]
fn signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn jsonwebtoken::crypto::JwtSigner>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

#[cfg(feature = "signing")]
fn rsa_from_private(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    (SIGNING.key_utils.rsa_pub_components_from_private_key)(der)
}

#[cfg(not(feature = "signing"))]
fn rsa_from_private(_: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidKeyFormat.into())
}

fn rsa_from_public(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    use rsa::traits::PublicKeyParts as _;
    let key = RsaPublicKey::from_pkcs1_der(der)
        .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
    Ok((key.n().to_bytes_be(), key.e().to_bytes_be()))
}

#[cfg(feature = "signing")]
fn ec_from_private(der: &[u8], alg: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    (SIGNING.key_utils.ec_pub_components_from_private_key)(der, alg)
}

#[cfg(not(feature = "signing"))]
fn ec_from_private(_: &[u8], _: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidKeyFormat.into())
}

#[cfg(feature = "signing")]
fn ed_from_private(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    (SIGNING.key_utils.ed_pub_components_from_private_key)(der, curve)
}

#[cfg(not(feature = "signing"))]
fn ed_from_private(_: &[u8], _: &EllipticCurve) -> Result<Vec<u8>> {
    Err(ErrorKind::InvalidKeyFormat.into())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    Ok(match hash {
        ThumbprintHash::SHA256 => Sha256::digest(data).to_vec(),
        ThumbprintHash::SHA384 => Sha384::digest(data).to_vec(),
        ThumbprintHash::SHA512 => Sha512::digest(data).to_vec(),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    })
}
