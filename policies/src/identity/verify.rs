//! Token verification: shape and header checks, provider and key selection, the signature
//! (through `jsonwebtoken`), then the claims against `now`.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::json::{self, JsonErrorKind};

use super::cache::{TokenCache, TokenHash, VerifiedToken, DEFAULT_CACHE_CAPACITY};
use super::jwks::{signature_algorithm, Jwks};
use super::keyset::{IdentityConfigError, KeySet, ProviderSpec};
use super::principal::Principal;
use super::{IdentityError, Malformed};

/// Header parameters refused when present: `crit` (RFC 7515 §4.1.11: we understand no
/// extension), key-carrying or key-locating parameters (never trusted, so a token that relies on
/// them is not ours), and the JWE / unencoded-payload markers.
const FORBIDDEN_HEADERS: [&str; 8] = ["crit", "jku", "x5u", "jwk", "x5c", "enc", "zip", "b64"];

/// Accepted `typ` values, compared case-insensitively (RFC 7515 §4.1.9 lets the `application/`
/// prefix be omitted, so both spellings name the same media type).
const ACCEPTED_TYPES: [&str; 4] = ["JWT", "at+jwt", "application/JWT", "application/at+jwt"];

/// Verifies `token` against the providers and keys in `keys`, at time `now` (seconds since the
/// epoch). No caching: see [`Verifier`].
pub fn verify(token: &[u8], keys: &KeySet, now: u64) -> Result<VerifiedToken, IdentityError> {
    let segments = split(token, keys.max_token_bytes())?;
    let header_members = decode_object(segments.header)?;
    let header = check_header(&header_members)?;
    let claims = decode_object(segments.payload)?;

    // The unverified `iss` only selects the provider whose keys may verify the token.
    let provider = match claims.get("iss") {
        Some(Value::String(issuer)) => keys.by_issuer(issuer),
        Some(_) => return Err(Malformed::ClaimType("iss").into()),
        None => return Err(Malformed::MissingClaim("iss").into()),
    }
    .ok_or(IdentityError::UnknownIssuer)?;
    let spec = &provider.spec;
    if token.len() > spec.max_token_bytes {
        return Err(Malformed::TooLarge.into());
    }
    if !spec.algorithms.contains(&header.alg) {
        return Err(IdentityError::AlgorithmNotAllowed);
    }
    let key = provider
        .keys
        .get(header.kid)
        .ok_or_else(|| IdentityError::UnknownKey {
            provider: spec.name.clone(),
        })?;
    if !key.allows(header.alg) {
        return Err(IdentityError::AlgorithmNotAllowed);
    }
    check_signature(&segments, key.decoding_key(), header.alg)?;

    let (principal, expires_at) = check_claims(claims, spec, now)?;
    Ok(VerifiedToken {
        principal: Arc::new(principal),
        expires_at,
    })
}

/// Size cap, charset, and exactly three segments, header and payload non-empty. An empty
/// signature is left to the algorithm and signature checks, so `alg: none` tokens (which carry
/// one) are reported as `algorithm_not_allowed`.
fn split(token: &[u8], max_bytes: usize) -> Result<Segments<'_>, Malformed> {
    if token.is_empty() {
        return Err(Malformed::Empty);
    }
    if token.len() > max_bytes {
        return Err(Malformed::TooLarge);
    }
    if !token
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Malformed::Charset);
    }
    let mut segments = token.split(|b| *b == b'.');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(payload), Some(signature), None)
            if !header.is_empty() && !payload.is_empty() =>
        {
            Ok(Segments {
                header,
                payload,
                signing_input: token
                    .get(..header.len() + 1 + payload.len())
                    .ok_or(Malformed::Shape)?,
                // ASCII, checked above.
                signature: std::str::from_utf8(signature).map_err(|_| Malformed::Charset)?,
            })
        }
        _ => Err(Malformed::Shape),
    }
}

/// A token's three segments, and the signing input (`header.payload`, as sent).
struct Segments<'t> {
    header: &'t [u8],
    payload: &'t [u8],
    signing_input: &'t [u8],
    signature: &'t str,
}

/// Canonical unpadded base64url (the `base64` engine refuses padding and non-zero trailing
/// bits), then strict JSON that must be an object.
fn decode_object(segment: &[u8]) -> Result<Map<String, Value>, Malformed> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Malformed::Base64)?;
    match json::parse(&bytes, json::Options::JOSE) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err(Malformed::NotAnObject),
        Err(e) if e.kind() == JsonErrorKind::DuplicateMember => Err(Malformed::DuplicateMember),
        Err(_) => Err(Malformed::Json),
    }
}

struct Header<'a> {
    alg: Algorithm,
    kid: &'a str,
}

fn check_header(header: &Map<String, Value>) -> Result<Header<'_>, IdentityError> {
    let alg = match header.get("alg") {
        // `none`, the HMAC family and anything unknown: not an algorithm we verify.
        Some(Value::String(name)) => {
            signature_algorithm(name).ok_or(IdentityError::AlgorithmNotAllowed)?
        }
        _ => return Err(Malformed::BadHeader("alg").into()),
    };
    if let Some(name) = FORBIDDEN_HEADERS
        .into_iter()
        .find(|name| header.contains_key(*name))
    {
        return Err(Malformed::ForbiddenHeader(name).into());
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) if ACCEPTED_TYPES.iter().any(|t| typ.eq_ignore_ascii_case(t)) => {}
        Some(_) => return Err(Malformed::BadHeader("typ").into()),
    }
    // Registered parameters that jsonwebtoken's header type reads as optional strings: a token
    // whose header gives them another type (null aside) was refused as malformed JSON when the
    // header went through it, and still is.
    if let Some(name) = ["cty", "x5t", "x5t#S256", "url", "nonce"]
        .into_iter()
        .find(|name| {
            header
                .get(*name)
                .is_some_and(|v| !(v.is_string() || v.is_null()))
        })
    {
        return Err(Malformed::BadHeader(name).into());
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.as_str(),
        _ => return Err(Malformed::BadHeader("kid").into()),
    };
    Ok(Header { alg, kid })
}

/// The signature, by `jsonwebtoken`'s crypto backend alone, with exactly the one algorithm
/// already checked against the provider and the key, over the signing input (`header.payload`
/// as sent). The header and claims were parsed and checked above, strictly, so the token is not
/// handed to `jsonwebtoken::decode`: its own header and claims parsing would repeat that work
/// leniently, and linking it put about 50 KB of code in the module (its JWK and header
/// deserialisers) that V8 compiles in every Envoy.
fn check_signature(
    segments: &Segments<'_>,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<(), IdentityError> {
    match crate::jose::verify(segments.signature, segments.signing_input, key, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err(IdentityError::BadSignature),
        Err(error) => Err(match error.kind() {
            ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm => IdentityError::AlgorithmNotAllowed,
            ErrorKind::Base64(_) => Malformed::Base64.into(),
            // A key the backend cannot use: the token is not verified.
            _ => IdentityError::BadSignature,
        }),
    }
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number, integer or not. `floor`/`ceil` let
/// each check round towards rejection.
#[derive(Debug, Clone, Copy)]
struct NumericDate {
    floor: u64,
    ceil: u64,
}

impl NumericDate {
    fn parse(value: &Value) -> Option<NumericDate> {
        let Value::Number(number) = value else {
            return None;
        };
        if let Some(whole) = number.as_u64() {
            return Some(NumericDate {
                floor: whole,
                ceil: whole,
            });
        }
        if number.is_i64() {
            return None; // negative
        }
        let seconds = number.as_f64()?;
        // Up to 2^64, the first value a u64 cannot hold (NaN and infinities fall outside).
        if !(0.0..18_446_744_073_709_551_616.0).contains(&seconds) {
            return None;
        }
        Some(NumericDate {
            floor: seconds.floor() as u64,
            ceil: seconds.ceil() as u64,
        })
    }
}

fn optional_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<NumericDate>, Malformed> {
    claims
        .get(name)
        .map(|value| NumericDate::parse(value).ok_or(Malformed::ClaimType(name)))
        .transpose()
}

/// Validates the (already signature-verified) claims and builds the principal. Order: types of
/// registered claims and required claims (`malformed`), audience, time, principal and groups.
fn check_claims(
    claims: Map<String, Value>,
    spec: &ProviderSpec,
    now: u64,
) -> Result<(Principal, u64), IdentityError> {
    let exp = optional_date(&claims, "exp")?.ok_or(Malformed::MissingClaim("exp"))?;
    let nbf = optional_date(&claims, "nbf")?;
    let iat = optional_date(&claims, "iat")?;
    for name in ["sub", "jti"] {
        if claims.get(name).is_some_and(|value| !value.is_string()) {
            return Err(Malformed::ClaimType(name).into());
        }
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        None => Vec::new(),
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or(Malformed::ClaimType("aud")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Malformed::ClaimType("aud").into()),
    };
    let lifetime_bound = match spec.max_lifetime_seconds {
        Some(max) => Some((max, iat.ok_or(Malformed::MissingClaim("iat"))?)),
        None => None,
    };

    if !audiences
        .iter()
        .any(|aud| spec.audiences.iter().any(|accepted| accepted == aud))
    {
        return Err(IdentityError::BadAudience);
    }

    let leeway = spec.leeway_seconds;
    // RFC 7519 §4.1.4: valid only while now is before exp.
    if now >= exp.floor.saturating_add(leeway) {
        return Err(IdentityError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf.ceil > now.saturating_add(leeway)) {
        return Err(IdentityError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat.ceil > now.saturating_add(leeway)) {
        return Err(IdentityError::IssuedInFuture);
    }
    if let Some((max, iat)) = lifetime_bound {
        if exp.ceil.saturating_sub(iat.floor) > max {
            return Err(IdentityError::LifetimeTooLong);
        }
    }

    let subject = match claims.get(&spec.principal_claim) {
        Some(Value::String(subject)) if !subject.is_empty() => subject.clone(),
        _ => return Err(Malformed::Principal.into()),
    };
    let groups = match claims.get(&spec.groups_claim) {
        None => Vec::new(),
        Some(Value::String(list)) => list
            .split(' ')
            .filter(|group| !group.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => {
            let mut groups = Vec::with_capacity(items.len());
            for item in items {
                let group = item.as_str().ok_or(Malformed::Groups)?;
                if !group.is_empty() {
                    groups.push(group.to_owned());
                }
            }
            groups
        }
        Some(_) => return Err(Malformed::Groups.into()),
    };

    Ok((
        Principal {
            issuer: spec.issuer.clone(),
            subject,
            groups,
            claims,
        },
        exp.floor,
    ))
}

/// Counters that make the cache observable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// Tokens verified in full (parsing and signature), successful or not.
    pub full_verifications: u64,
    /// Tokens answered from the cache.
    pub cache_hits: u64,
}

/// [`verify`] behind a [`TokenCache`]: a token seen before and not yet expired is not verified
/// again. Changing a provider's keys through [`Verifier::set_keys`] empties the cache, so a
/// removed key stops vouching for tokens at once.
#[derive(Debug)]
pub struct Verifier {
    keys: KeySet,
    cache: TokenCache,
    stats: VerifierStats,
}

impl Verifier {
    /// A verifier with a cache of 1024 tokens (`DEFAULT_CACHE_CAPACITY`).
    pub fn new(keys: KeySet) -> Verifier {
        Verifier::with_cache_capacity(keys, DEFAULT_CACHE_CAPACITY)
    }

    /// A verifier with a cache of `capacity` tokens (0 disables the cache).
    pub fn with_cache_capacity(keys: KeySet, capacity: usize) -> Verifier {
        Verifier {
            keys,
            cache: TokenCache::new(capacity),
            stats: VerifierStats::default(),
        }
    }

    /// Verifies `token` at `now`, from the cache when possible.
    pub fn verify(&mut self, token: &[u8], now: u64) -> Result<VerifiedToken, IdentityError> {
        // Cap before hashing: the size limit holds for cached and uncached paths alike.
        if token.len() > self.keys.max_token_bytes() {
            return Err(Malformed::TooLarge.into());
        }
        self.verify_hashed(token, &TokenHash::of(token), now)
    }

    /// [`Verifier::verify`] for a caller that already hashed the token (`hash` must be
    /// `TokenHash::of(token)`): the token is hashed once per request.
    pub(crate) fn verify_hashed(
        &mut self,
        token: &[u8],
        hash: &TokenHash,
        now: u64,
    ) -> Result<VerifiedToken, IdentityError> {
        // The size limit holds for cached and uncached paths alike.
        if token.len() > self.keys.max_token_bytes() {
            return Err(Malformed::TooLarge.into());
        }
        let hash = *hash;
        if let Some(hit) = self.cache.get(&hash, now) {
            self.stats.cache_hits = self.stats.cache_hits.saturating_add(1);
            return Ok(hit);
        }
        self.stats.full_verifications = self.stats.full_verifications.saturating_add(1);
        let verified = verify(token, &self.keys, now)?;
        // A token accepted only thanks to the leeway is not cached.
        if verified.expires_at > now {
            self.cache
                .insert(hash, Arc::clone(&verified.principal), verified.expires_at);
        }
        Ok(verified)
    }

    /// Replaces a provider's keys; empties the cache when they changed. Returns whether they did.
    pub fn set_keys(&mut self, provider: &str, keys: Jwks) -> Result<bool, IdentityConfigError> {
        let changed = self.keys.set_keys(provider, keys)?;
        if changed {
            self.cache.clear();
        }
        Ok(changed)
    }

    /// The providers and their keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Cache and verification counters.
    pub fn stats(&self) -> VerifierStats {
        self.stats
    }

    /// Number of cached tokens.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}
