//! Bundle signatures: a detached JWS (RFC 7515, compact serialisation, detached content as in
//! Appendix F) over the canonical form of the bundle (see `canonical`).
//!
//! * Protected header, exactly: `{"alg":"EdDSA"|"ES256","kid":"<key id>","typ":"bedrock-guard-bundle+jws"}`.
//! * Signing input: `base64url(header) "." base64url(canonical bundle)`. The payload is the
//!   standard base64url one (no RFC 7797 `b64: false`), so any JOSE library can verify a
//!   signature once it is handed the payload.
//! * Output: `base64url(header) ".." base64url(signature)` (the payload part left empty).
//!
//! Keys: Ed25519 (`EdDSA`, the default) or EC P-256 (`ES256`), as PEM (PKCS#8 private keys,
//! SEC1 `EC PRIVATE KEY` too; SPKI public keys) or JWK (`OKP`/`Ed25519`, `EC`/`P-256`, or a
//! JWK set). A key's id is its JWK `kid` when it has one, else its RFC 7638 thumbprint.
//!
//! Verification refuses, by name: a missing signature when keys are pinned, an algorithm
//! other than EdDSA or ES256 (or other than the key's own), an unknown key id, a bad
//! signature, a header with any member besides `alg`, `kid` and `typ` (or a repeated one, or
//! the wrong `typ`), and an attached payload.
//!
//! Layout: `keys` (algorithms, public and private keys, PEM/DER/JWK parsing and encoding),
//! `jws` (signing and verifying the detached JWS), `envelope` (the plugin configuration that
//! carries a bundle and its signature). Everything public is re-exported here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::canonical::CanonicalError;

mod envelope;
mod jws;
mod keys;

pub use envelope::{parse_plugin_config, plugin_config, PluginConfig};
pub use jws::{sign, sign_canonical, verify, verify_canonical, JWS_TYPE};
pub use keys::{Algorithm, PrivateKey, PublicKey};

/// Why signing or verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// Keys are pinned and the bundle came without a signature.
    #[error("the bundle is not signed, but signing keys are pinned")]
    Missing,
    /// A signature to check, and no key to check it with.
    #[error("no trusted keys to verify the signature with")]
    NoTrustedKeys,
    /// Not a compact JWS: the wrong number of parts, or a part that is not base64url.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// A protected header that is not exactly `alg`, `kid` and this `typ`.
    #[error("signature header: {0}")]
    Header(String),
    /// The JWS carries a payload instead of leaving it empty (`header..signature`).
    #[error(
        "the signature carries its payload; a bundle signature is detached (header..signature)"
    )]
    AttachedPayload,
    /// An `alg` other than EdDSA and ES256 (the name, as the header gives it).
    #[error("algorithm {0:?} is not allowed (EdDSA or ES256)")]
    AlgorithmNotAllowed(String),
    /// No trusted key has the header's `kid` (the id).
    #[error("no trusted key has id {0:?}")]
    UnknownKey(String),
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    #[error("key {kid:?} is a {key} key but the signature says {header}")]
    AlgorithmMismatch {
        /// The key id.
        kid: String,
        /// The key's algorithm.
        key: Algorithm,
        /// The algorithm the header names.
        header: Algorithm,
    },
    /// The signature does not verify with the key its `kid` names (the id).
    #[error("the signature does not verify with key {0:?} (bundle changed since signing, or another key signed it)")]
    BadSignature(String),
    /// The bundle has no canonical form, so there is nothing to sign or verify.
    #[error("bundle: {0}")]
    Bundle(#[from] CanonicalError),
    /// A key that cannot be read or used: wrong type, curve or encoding, an invalid point, a
    /// private key where a public one belongs, a bad key id.
    #[error("key: {0}")]
    Key(String),
    /// A plugin configuration that is not a bundle or a well-formed envelope.
    #[error("plugin configuration: {0}")]
    Config(String),
}

pub(super) fn key_error(message: impl Into<String>) -> SigningError {
    SigningError::Key(message.into())
}

pub(super) fn b64url_decode(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| "not unpadded base64url".to_string())
}
