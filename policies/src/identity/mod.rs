//! Workload identity: JWT verification, JWKS handling, claims -> principal.
//!
//! Pure Rust, no proxy dependency. The bundle compiler builds [`ProviderSpec`]s and a
//! [`KeySet`]; the plugin feeds JWKS documents into it ([`Jwks::parse`], [`KeySet::set_keys`])
//! and calls [`Verifier::verify`] (cached) or [`verify`] (uncached) per request with the host's
//! clock.
//!
//! Decisions (each against a known JWT attack class, named in `policies/tests/engine/identity_verify.rs`):
//!
//! * **Time is an argument.** `jsonwebtoken` is used for the signature only: its own
//!   `exp`/`nbf` validation reads the system clock and is switched off, and `exp`, `nbf`, `iat`
//!   and the lifetime bound are checked here against `now`, on claims parsed strictly (a
//!   registered claim of the wrong JSON type is `malformed`, never "absent": the
//!   CVE-2026-25537 class of bug). NumericDates may be non-negative integers or finite floats;
//!   a float is rounded towards the stricter side (`exp` down, `nbf`/`iat` up).
//! * **Strict parsing before any crypto.** Size cap, exactly three base64url segments (header
//!   and payload non-empty), no padding/whitespace/std alphabet, JSON objects with no duplicate
//!   member at any depth (in header, claims and JWKS), `alg` from a fixed asymmetric list, no
//!   `crit`, `jku`, `x5u`, `jwk`, `x5c` (nor the JWE/unencoded-payload markers `enc`, `zip`,
//!   `b64`), a non-empty string `kid`, and `typ`, when present, `JWT` or `at+jwt`
//!   (case-insensitive, optionally with the `application/` prefix RFC 7515 §4.1.9 lets senders
//!   omit).
//! * **Keys are bound to their issuer.** The unverified `iss` only selects the provider; the
//!   `kid` is looked up in that provider's keys alone, and after the signature check the issuer
//!   is authenticated.
//! * **JWKS:** `kty: oct` and private key material make the whole document an error (a published
//!   secret is a misconfiguration worth failing loudly on; the previous keys stay in force).
//!   Keys not meant for signatures (`use` other than `sig`, `key_ops` without `verify`) and keys
//!   of types, curves or algorithms this module does not verify are skipped and reported by
//!   [`Jwks::skipped`], so an IdP that also publishes encryption keys keeps working.
//! * **Errors** carry one of the stable detail codes ([`IdentityError::as_str`]); messages never
//!   contain the token, a claim value or a `kid`.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod cache;
mod caller;
mod jwks;
mod keyset;
mod principal;
mod verify;

pub use cache::{fingerprint, TokenCache, TokenHash, VerifiedToken, DEFAULT_CACHE_CAPACITY};
pub use caller::{authenticate, extract_token, Authentication, Caller};
pub use jsonwebtoken::Algorithm;
pub use jwks::{
    Jwks, JwksError, SkipReason, SkippedKey, VerifyingKey, MAX_JWKS_BYTES, MAX_JWKS_KEYS,
};
pub use keyset::{IdentityConfigError, KeySet, ProviderSpec};
pub use principal::Principal;
pub use verify::{verify, Verifier, VerifierStats};

use std::fmt;

/// Why a token was refused. [`IdentityError::as_str`] gives the stable detail code used in the
/// deny response, the audit record and the metrics; several variants share a code so tests and
/// debug logs can tell the exact cause apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// `exp` (plus leeway) has passed. Code `expired`.
    Expired,
    /// `exp - iat` exceeds the provider's `max_lifetime_seconds`. Code `lifetime_too_long`: the
    /// issuer mints tokens valid for longer than the provider allows any token to be, so
    /// refreshing the token does not help (shorten the tokens' lifetime or raise the bound).
    LifetimeTooLong,
    /// `nbf` (minus leeway) is still in the future. Code `not_yet_valid`.
    NotYetValid,
    /// `iat` (minus leeway) is in the future. Code `not_yet_valid`.
    IssuedInFuture,
    /// The signature does not verify with the selected key. Code `bad_signature`.
    BadSignature,
    /// `iss` is a string but names no configured provider. Code `unknown_issuer`.
    UnknownIssuer,
    /// `aud` is missing, empty, or names none of the provider's audiences. Code `bad_audience`.
    BadAudience,
    /// The header's `alg` is not an accepted asymmetric algorithm, is not in the provider's
    /// list, or is not one the selected key may verify. Code `algorithm_not_allowed`.
    AlgorithmNotAllowed,
    /// The provider has no key with the header's `kid`: the caller may refresh that provider's
    /// JWKS (rate-limited) and retry. Code `unknown_key`.
    UnknownKey {
        /// The provider's configured name (never the token's `kid`).
        provider: String,
    },
    /// The token is not a well-formed, acceptable JWT. Code `malformed`.
    Malformed(Malformed),
}

impl IdentityError {
    /// The stable detail code.
    pub fn as_str(&self) -> &'static str {
        match self {
            IdentityError::Expired => "expired",
            IdentityError::LifetimeTooLong => "lifetime_too_long",
            IdentityError::NotYetValid | IdentityError::IssuedInFuture => "not_yet_valid",
            IdentityError::BadSignature => "bad_signature",
            IdentityError::UnknownIssuer => "unknown_issuer",
            IdentityError::BadAudience => "bad_audience",
            IdentityError::AlgorithmNotAllowed => "algorithm_not_allowed",
            IdentityError::UnknownKey { .. } => "unknown_key",
            IdentityError::Malformed(_) => "malformed",
        }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Expired => f.write_str("expired: the token's exp has passed"),
            IdentityError::LifetimeTooLong => {
                f.write_str("lifetime_too_long: the token's lifetime (exp - iat) exceeds the provider's max_lifetime_seconds")
            }
            IdentityError::NotYetValid => f.write_str("not_yet_valid: the token's nbf is ahead"),
            IdentityError::IssuedInFuture => {
                f.write_str("not_yet_valid: the token's iat is in the future")
            }
            IdentityError::BadSignature => f.write_str("bad_signature: signature does not verify"),
            IdentityError::UnknownIssuer => f.write_str("unknown_issuer: no provider for this iss"),
            IdentityError::BadAudience => f.write_str("bad_audience: no accepted aud"),
            IdentityError::AlgorithmNotAllowed => {
                f.write_str("algorithm_not_allowed: alg not accepted for this provider or key")
            }
            IdentityError::UnknownKey { provider } => {
                write!(
                    f,
                    "unknown_key: no key with the token's kid for provider {provider}"
                )
            }
            IdentityError::Malformed(why) => write!(f, "malformed: {why}"),
        }
    }
}

impl std::error::Error for IdentityError {}

/// The precise reason behind [`IdentityError::Malformed`]. Names of registered claims and
/// header parameters are fixed strings, never values from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Empty token.
    Empty,
    /// Longer than the provider's `max_token_bytes` (the size cap is applied before parsing,
    /// with the largest cap of all providers, and again with the selected provider's).
    TooLarge,
    /// A byte outside `[A-Za-z0-9_.-]` (padding `=`, `+`, `/`, whitespace, ...).
    Charset,
    /// Not exactly three dot-separated segments with a non-empty header and payload (JWE has
    /// five).
    Shape,
    /// A segment is not canonical unpadded base64url.
    Base64,
    /// A part is not valid JSON (or not UTF-8).
    Json,
    /// A JSON object has the same member twice.
    DuplicateMember,
    /// The header or claims set is not a JSON object.
    NotAnObject,
    /// A header parameter this verifier refuses when present (`crit`, `jku`, `x5u`, `jwk`,
    /// `x5c`, `enc`, `zip`, `b64`).
    ForbiddenHeader(&'static str),
    /// A header parameter that is missing or has a wrong type or value (`alg`, `kid`, `typ`).
    BadHeader(&'static str),
    /// A required registered claim is missing (`exp`, `iss`, `iat` when a maximum lifetime is
    /// set).
    MissingClaim(&'static str),
    /// A registered claim has the wrong JSON type (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`,
    /// `jti`); an array `iss` is one of these.
    ClaimType(&'static str),
    /// The principal claim is missing, not a string, or empty.
    Principal,
    /// The groups claim is neither an array of strings nor a string.
    Groups,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Empty => f.write_str("empty token"),
            Malformed::TooLarge => f.write_str("token too large"),
            Malformed::Charset => f.write_str("character outside the base64url alphabet"),
            Malformed::Shape => f.write_str("not a three-segment JWS"),
            Malformed::Base64 => f.write_str("segment is not canonical unpadded base64url"),
            Malformed::Json => f.write_str("part is not valid JSON"),
            Malformed::DuplicateMember => f.write_str("duplicate JSON member"),
            Malformed::NotAnObject => f.write_str("header or claims set is not a JSON object"),
            Malformed::ForbiddenHeader(name) => write!(f, "header parameter {name} refused"),
            Malformed::BadHeader(name) => write!(f, "header parameter {name} missing or invalid"),
            Malformed::MissingClaim(name) => write!(f, "claim {name} missing"),
            Malformed::ClaimType(name) => write!(f, "claim {name} has the wrong type"),
            Malformed::Principal => f.write_str("principal claim missing, empty or not a string"),
            Malformed::Groups => f.write_str("groups claim is not a string or string array"),
        }
    }
}

impl From<Malformed> for IdentityError {
    fn from(why: Malformed) -> Self {
        IdentityError::Malformed(why)
    }
}
