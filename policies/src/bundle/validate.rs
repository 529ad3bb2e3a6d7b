//! Field-level checks. Each returns the message to attach to the field's path; `compile`
//! walks the bundle, calls these, and collects every failure.

use super::FieldError;
use crate::aws::{is_region, KNOWN_GEOGRAPHIES};

/// Collects every problem found in one pass over the bundle.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<FieldError>);

impl Errors {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Record `result`'s error, if any, under `path`.
    pub(crate) fn check(&mut self, path: impl FnOnce() -> String, result: Result<(), String>) {
        if let Err(message) = result {
            self.push(path(), message);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The one `apiVersion` this engine reads.
pub const API_VERSION: &str = "bedrock-guard/v1";
/// The bundle's `kind`.
pub const KIND: &str = "PolicyBundle";

/// Longest model pattern (the API's own limit on a model identifier).
pub(crate) const MAX_MODEL_PATTERN: usize = 2048;
/// Largest body limit a bundle may set (Bedrock's own request limit is about 25 MB).
pub(crate) const MAX_BODY_LIMIT: u64 = 25_000_000;

/// Signing algorithms a provider may pin.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];
const HMAC_ALGORITHMS: &[&str] = &["HS256", "HS384", "HS512"];

/// Header names that cannot carry the identity token: hop-by-hop and body-framing headers
/// (Envoy or the upstream interprets them), headers SigV4 or Bedrock give meaning to, and
/// headers Envoy itself sets or trusts. `authorization` is deliberately allowed: in the
/// proxy-signed shape the application sends its token there and Envoy signs afterwards.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "expect",
    "cookie",
    "x-api-key",
    "via",
    "forwarded",
    "x-request-id",
];
const RESERVED_HEADER_PREFIXES: &[&str] = &["x-amz-", "x-amzn-", "x-envoy-", "x-forwarded-"];

/// `[a-z0-9][a-z0-9-]{0,62}`.
pub(crate) fn bundle_name(name: &str) -> Result<(), String> {
    let ok = matches!(name.as_bytes().first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} must be 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            name
        ))
    }
}

/// 1 to 64 visible ASCII characters.
pub(crate) fn revision(revision: &str) -> Result<(), String> {
    if revision.is_empty() {
        return Err("must not be empty".to_string());
    }
    if revision.len() > 64 {
        return Err(format!(
            "is {} characters long (at most 64)",
            revision.len()
        ));
    }
    if !revision.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "must be visible ASCII characters only (no spaces or control characters)".to_string(),
        );
    }
    Ok(())
}

/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}` (rule ids and provider names).
pub(crate) fn identifier(id: &str) -> Result<(), String> {
    let ok = matches!(id.as_bytes().first(), Some(b) if b.is_ascii_alphanumeric())
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
            id
        ))
    }
}

/// A lowercase header name of letters, digits and `-`, not one we or Envoy give meaning to.
pub(crate) fn identity_header(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.starts_with(':') {
        return Err(format!(
            "{name:?} is a pseudo-header; name a regular header"
        ));
    }
    if name.contains('_') {
        return Err(format!(
            "{name:?} contains '_': Envoy rejects requests with underscores in header names"
        ));
    }
    if name.len() > 128 {
        return Err("is longer than 128 characters".to_string());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "{name:?} must be a lowercase header name (a-z, 0-9 and '-')"
        ));
    }
    if RESERVED_HEADERS.contains(&name) {
        return Err(format!(
            "{name:?} is reserved (it frames, routes or signs the request); choose a dedicated header such as \"x-workload-identity\""
        ));
    }
    if let Some(prefix) = RESERVED_HEADER_PREFIXES
        .iter()
        .find(|p| name.starts_with(**p))
    {
        return Err(format!(
            "{name:?} uses the reserved prefix {prefix:?}; choose a dedicated header such as \"x-workload-identity\""
        ));
    }
    Ok(())
}

/// An `https` URL without userinfo, query or fragment (as OpenID Connect requires of issuers).
pub(crate) fn issuer(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("{url:?} must be an https:// URL"));
    };
    if url.len() > 2048 {
        return Err("is longer than 2048 characters".to_string());
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{url:?} must be visible ASCII without spaces or control characters"
        ));
    }
    if url.contains('#') {
        return Err(format!("{url:?} must not have a fragment"));
    }
    if url.contains('?') {
        return Err(format!("{url:?} must not have a query"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if authority.contains('@') {
        return Err(format!("{url:?} must not contain user information"));
    }
    Ok(())
}

/// Check one algorithm name.
pub(crate) fn algorithm(name: &str) -> Result<(), String> {
    if ALGORITHMS.contains(&name) {
        return Ok(());
    }
    if HMAC_ALGORITHMS.contains(&name) {
        return Err(format!(
            "{name}: HMAC algorithms need a shared secret; not supported in bundles"
        ));
    }
    if name.eq_ignore_ascii_case("none") {
        return Err("\"none\": unsigned tokens are never accepted".to_string());
    }
    Err(format!(
        "unknown algorithm {name:?} (known: {})",
        ALGORITHMS.join(", ")
    ))
}

/// A JWKS path on the cluster: starts with `/`, visible ASCII, no fragment.
pub(crate) fn jwks_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must start with '/'"));
    }
    if path.len() > 2048 {
        return Err("is longer than 2048 characters".to_string());
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) || path.contains('#') {
        return Err(format!(
            "{path:?} must be visible ASCII without spaces, control characters or '#'"
        ));
    }
    Ok(())
}

/// An Envoy cluster name: non-empty, visible ASCII.
pub(crate) fn cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{name:?} must be 1 to 255 visible ASCII characters (an Envoy cluster name)"
        ));
    }
    Ok(())
}

pub(crate) fn region(region: &str) -> Result<(), String> {
    if region.len() <= 32 && is_region(region) {
        Ok(())
    } else {
        Err(format!(
            "{region:?} is not an AWS region name (like \"us-east-1\" or \"us-gov-west-1\")"
        ))
    }
}

/// A lowercase DNS name: no trailing dot, no port, not an IP literal.
pub(crate) fn host(host: &str, region: Option<&str>) -> Result<(), String> {
    if host.is_empty() {
        return Err("must not be empty".to_string());
    }
    if host.len() > 253 {
        return Err(format!("is {} characters long (at most 253)", host.len()));
    }
    if host.contains(['[', ']']) || host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{host:?} is an IP address literal; name the endpoint by its DNS name and list addresses in cidrs"
        ));
    }
    if host.contains(':') {
        return Err(format!("{host:?} must not include a port"));
    }
    if host.ends_with('.') {
        return Err(format!("{host:?} must not end with a dot"));
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{host:?} must be lowercase"));
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "{host:?} has an empty label or a label longer than 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "{host:?}: label {label:?} must be a-z, 0-9 and '-', not starting or ending with '-'"
            ));
        }
    }
    if host
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{host:?} looks like an IP address (its last label is numeric); name the endpoint by its DNS name"
        ));
    }
    if let Some(region) = region {
        if let Some(other) = host.split('.').find(|l| is_region(l) && *l != region) {
            return Err(format!(
                "{host:?} names region {other:?} but the endpoint's region is {region:?}"
            ));
        }
    }
    Ok(())
}

/// A cross-region profile geography: the prefix of a system inference-profile id (`us`,
/// `us-gov`, `eu`, `apac`, `global`, ...): 2 to 8 characters of `a-z` and `-`.
pub(crate) fn profile_geography(geo: &str) -> Result<(), String> {
    let ok = (2..=8).contains(&geo.len())
        && geo.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        && !geo.starts_with('-')
        && !geo.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{geo:?} must be a profile prefix: 2 to 8 characters of a-z and '-' (known: {})",
            KNOWN_GEOGRAPHIES.join(", ")
        ))
    }
}

/// Exactly twelve ASCII digits.
pub(crate) fn account(account: &str) -> Result<(), String> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("{account:?} must be a 12-digit AWS account id"))
    }
}

/// An AWS Organizations id: `o-` and 10 to 32 lowercase letters or digits (the pattern of the
/// Organizations API's `OrganizationId`).
pub(crate) fn org_id(id: &str) -> Result<(), String> {
    let ok = id.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} must be an AWS Organizations id: \"o-\" and 10 to 32 lowercase letters or digits"
        ))
    }
}

/// A model pattern: 1 to 2048 characters of `[A-Za-z0-9._:/*?-]`.
pub(crate) fn model_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("must not be empty".to_string());
    }
    if pattern.len() > MAX_MODEL_PATTERN {
        return Err(format!(
            "is {} characters long (at most {MAX_MODEL_PATTERN})",
            pattern.len()
        ));
    }
    if let Some(bad) = pattern.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '*' | '?' | '-'))
    }) {
        return Err(format!(
            "{pattern:?} contains {bad:?}; model patterns use A-Z, a-z, 0-9, '.', '_', ':', '/', '-' and the wildcards '*' and '?'"
        ));
    }
    Ok(())
}

/// A principal pattern (subject, group or claim value): 1 to 1024 characters, no control
/// characters.
pub(crate) fn principal_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("must not be empty".to_string());
    }
    if pattern.len() > 1024 {
        return Err("is longer than 1024 characters".to_string());
    }
    if pattern.chars().any(char::is_control) {
        return Err("must not contain control characters".to_string());
    }
    Ok(())
}

/// A JWT claim name: 1 to 256 characters, no control characters.
pub(crate) fn claim_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(format!(
            "{name:?} must be 1 to 256 characters without control characters"
        ));
    }
    Ok(())
}

/// Free text (rule descriptions): at most 1024 characters, no control characters.
pub(crate) fn description(text: &str) -> Result<(), String> {
    if text.len() > 1024 {
        return Err("is longer than 1024 characters".to_string());
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(host("bedrock-runtime.us-east-1.amazonaws.com", Some("us-east-1")).is_ok());
        assert!(host("bedrock-runtime.us-east-1.amazonaws.com", Some("us-west-2")).is_err());
        assert!(host("10.0.0.1", None).is_err());
        assert!(host("a.b.", None).is_err());
        assert!(host("a.b:443", None).is_err());
        assert!(host("A.b", None).is_err());
        assert!(host("a..b", None).is_err());
        assert!(host("-a.b", None).is_err());
    }
}
