//! The detached JWS itself: `sign` / `sign_canonical` build it, `verify` /
//! `verify_canonical` check it, and `parse_header` holds the protected header to exactly
//! `alg`, `kid` and `typ`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::keys::check_kid;
use super::{b64url_decode, key_error, Algorithm, PrivateKey, PublicKey, SigningError};
use crate::canonical;

/// The `typ` of every bundle signature.
pub const JWS_TYPE: &str = "bedrock-guard-bundle+jws";

/// Sign a JSON bundle (its canonical form). Returns the detached compact JWS.
pub fn sign(bundle_json: &[u8], key: &PrivateKey) -> Result<String, SigningError> {
    sign_canonical(&canonical::canonicalize(bundle_json)?, key)
}

/// Sign bytes that are already the canonical form of a bundle.
pub fn sign_canonical(canonical: &[u8], key: &PrivateKey) -> Result<String, SigningError> {
    let header = header_json(key.alg(), key.kid());
    let header_b64 = URL_SAFE_NO_PAD.encode(header.as_bytes());
    let input = signing_input(&header_b64, canonical);
    let signature = crate::jose::sign(input.as_bytes(), &key.encoding, key.alg().jwt())
        .map_err(|e| key_error(format!("signing failed: {e}")))?;
    Ok(format!("{header_b64}..{signature}"))
}

fn header_json(alg: Algorithm, kid: &str) -> String {
    let mut m = Map::new();
    m.insert("alg".into(), alg.as_str().into());
    m.insert("kid".into(), kid.into());
    m.insert("typ".into(), JWS_TYPE.into());
    // Members are inserted in sorted order, so this is also the canonical form.
    Value::Object(m).to_string()
}

fn signing_input(header_b64: &str, canonical: &[u8]) -> String {
    format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(canonical))
}

/// The policy check a loader runs: with no pinned keys nothing is required and nothing is
/// checked (`Ok(None)`); with pinned keys a signature is required and must verify (`Ok(Some(kid))`).
pub fn verify(
    bundle_json: &[u8],
    jws: Option<&str>,
    trusted: &[PublicKey],
) -> Result<Option<String>, SigningError> {
    if trusted.is_empty() {
        return Ok(None);
    }
    let Some(jws) = jws else {
        return Err(SigningError::Missing);
    };
    let canonical = canonical::canonicalize(bundle_json)?;
    verify_canonical(&canonical, jws, trusted).map(Some)
}

/// Verify a detached JWS over bytes that are already canonical. Returns the key id that
/// verified it.
pub fn verify_canonical(
    canonical: &[u8],
    jws: &str,
    trusted: &[PublicKey],
) -> Result<String, SigningError> {
    let jws = jws.trim_matches(|c: char| c.is_ascii_whitespace());
    if jws.is_empty() {
        return Err(SigningError::Missing);
    }
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(payload), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SigningError::Malformed(
            "expected three dot-separated parts (header..signature)".into(),
        ));
    };
    if !payload.is_empty() {
        return Err(SigningError::AttachedPayload);
    }
    let header_bytes =
        b64url_decode(header_b64).map_err(|e| SigningError::Malformed(format!("header: {e}")))?;
    let (alg, kid) = parse_header(&header_bytes)?;
    let signature = b64url_decode(signature_b64)
        .map_err(|e| SigningError::Malformed(format!("signature: {e}")))?;

    if trusted.is_empty() {
        return Err(SigningError::NoTrustedKeys);
    }
    let named: Vec<&PublicKey> = trusted.iter().filter(|k| k.kid == kid).collect();
    let Some(first) = named.first() else {
        return Err(SigningError::UnknownKey(kid));
    };
    let candidates: Vec<&&PublicKey> = named.iter().filter(|k| k.alg == alg).collect();
    if candidates.is_empty() {
        return Err(SigningError::AlgorithmMismatch {
            kid,
            key: first.alg,
            header: alg,
        });
    }
    if signature.len() != alg.signature_len() {
        return Err(SigningError::BadSignature(kid));
    }
    let input = signing_input(header_b64, canonical);
    for key in candidates {
        if let Ok(true) =
            crate::jose::verify(signature_b64, input.as_bytes(), &key.decoding, alg.jwt())
        {
            return Ok(kid);
        }
    }
    Err(SigningError::BadSignature(kid))
}

/// Parse the protected header: exactly `alg`, `kid` and `typ`, each once.
fn parse_header(bytes: &[u8]) -> Result<(Algorithm, String), SigningError> {
    let header = canonical::parse_strict(bytes)
        .map_err(|e| SigningError::Header(format!("not valid JSON: {e}")))?;
    let Value::Object(members) = header else {
        return Err(SigningError::Header("not a JSON object".into()));
    };
    if let Some(extra) = members
        .keys()
        .find(|k| !matches!(k.as_str(), "alg" | "kid" | "typ"))
    {
        return Err(SigningError::Header(format!(
            "unexpected member {extra:?} (only alg, kid and typ are allowed)"
        )));
    }
    let text = |name: &str| match members.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(SigningError::Header(format!("{name} must be a string"))),
        None => Err(SigningError::Header(format!("{name} is missing"))),
    };
    let alg_name = text("alg")?;
    let alg = Algorithm::from_name(&alg_name).ok_or(SigningError::AlgorithmNotAllowed(alg_name))?;
    let kid = text("kid")?;
    check_kid(&kid).map_err(|_| SigningError::Header("kid is empty or malformed".into()))?;
    let typ = text("typ")?;
    if typ != JWS_TYPE {
        return Err(SigningError::Header(format!(
            "typ is {typ:?}, expected {JWS_TYPE:?}"
        )));
    }
    Ok((alg, kid))
}
