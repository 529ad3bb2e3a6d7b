//! Who is calling, as far as the engine is concerned: the outcome of authenticating the
//! request's identity token, computed by the shell (which owns the mutable verifier and the
//! clock) and handed to the engine in `RequestFacts::caller`.

use std::sync::Arc;

use super::{IdentityError, Malformed, Principal, TokenHash, Verifier};

/// The authentication outcome for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Caller {
    /// Not authenticated: the bundle has no `identity` block (or nobody asked). Rules that name
    /// principals never match such a request; a bundle with identity refuses it as
    /// `identity_missing`.
    #[default]
    Anonymous,
    /// A verified token's principal.
    Verified(Arc<Principal>),
    /// The bundle requires a token and the request carries none.
    Missing,
    /// The token failed verification.
    Invalid(IdentityError),
    /// The issuer's keys are not available (a remote JWKS never fetched, or stale past its
    /// bound): the request cannot be judged, so it is refused as `policy_unavailable`.
    Unavailable,
}

/// Find the identity token in the request headers. For the `authorization` header the value
/// must be `Bearer <token>` (scheme case-insensitive, exactly one space); for any other header
/// the whole value is the token. A repeated identity header is malformed (never "first wins").
pub fn extract_token<'h>(
    header: &str,
    headers: &[(&str, &'h [u8])],
) -> Result<Option<&'h [u8]>, IdentityError> {
    let mut found = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(header));
    let Some((_, value)) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(IdentityError::Malformed(Malformed::DuplicateMember));
    }
    if header.eq_ignore_ascii_case("authorization") {
        let scheme = value
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case(b"bearer "));
        return match (scheme, value.get(7..)) {
            (Some(_), Some(token)) if !token.is_empty() => Ok(Some(token)),
            _ => Err(IdentityError::Malformed(Malformed::Shape)),
        };
    }
    if value.is_empty() {
        return Err(IdentityError::Malformed(Malformed::Empty));
    }
    Ok(Some(value))
}

/// The outcome of authenticating one request, with the token's hash when it carried one (also
/// for a token that failed verification), so records of one token can be correlated. The
/// token is hashed once: the same hash keys the verified-token cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authentication {
    /// Who is calling.
    pub caller: Caller,
    /// SHA-256 of the identity token, when the request carried one.
    pub token: Option<TokenHash>,
}

/// Authenticate the request: extract the token from `header` and verify it at `now`.
/// `unavailable(provider)` tells whether a provider's keys are currently unusable (stale or
/// never fetched); a token that needs such a provider yields [`Caller::Unavailable`].
pub fn authenticate(
    verifier: &mut Verifier,
    header: &str,
    headers: &[(&str, &[u8])],
    now: u64,
    unavailable: impl Fn(&str) -> bool,
) -> Authentication {
    let token = match extract_token(header, headers) {
        Ok(Some(token)) => token,
        Ok(None) => {
            return Authentication {
                caller: Caller::Missing,
                token: None,
            }
        }
        Err(e) => {
            return Authentication {
                caller: Caller::Invalid(e),
                token: None,
            }
        }
    };
    let hash = TokenHash::of(token);
    let caller = match verifier.verify_hashed(token, &hash, now) {
        Ok(verified) => Caller::Verified(verified.principal),
        Err(IdentityError::UnknownKey { provider }) if unavailable(&provider) => {
            Caller::Unavailable
        }
        Err(e) => Caller::Invalid(e),
    };
    Authentication {
        caller,
        token: Some(hash),
    }
}
