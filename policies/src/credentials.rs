//! What credential a request carries: a SigV4 `Authorization` header (its credential scope),
//! a Bedrock API key (`Authorization: Bearer` or `x-api-key`), some other bearer token,
//! nothing, or something malformed.
//!
//! Nothing secret is kept: a SigV4 `Signature` is checked for shape and dropped, and an API
//! key or bearer token is reduced to its kind. The scope borrows from the header value, so
//! parsing allocates nothing.
//!
//! # SigV4 header form (strict)
//!
//! `AWS4-HMAC-SHA256 Credential=<akid>/<yyyymmdd>/<region>/<service>/aws4_request,
//! SignedHeaders=<h1;h2;...>, Signature=<64 lowercase hex>`: the algorithm written exactly
//! so, one space, then exactly the three parameters `Credential`, `SignedHeaders` and
//! `Signature`, each once, in any order, separated by `,` or `, ` (botocore writes `, `).
//! Anything else whose scheme reads `AWS4-HMAC-SHA256` in any letter case is malformed.
//!
//! # Bearer tokens
//!
//! `Authorization: Bearer <token>` (scheme in any letter case, one space) and
//! `x-api-key: <token>` carry a token of visible ASCII. A token starting `bedrock-api-key-` is
//! a short-term Bedrock API key, one starting `ABSK` a long-term key; any other token is an
//! unknown bearer token. A request with both an `Authorization` credential and `x-api-key`
//! is malformed (it is unclear which one AWS would use).
//!
//! When the bundle's identity header is `authorization` (the proxy-signed shape, where the
//! application sends its identity token there and Envoy signs after this filter), that header
//! is the identity token, not a credential, and is skipped here.

/// The SigV4 algorithm name.
const SIGV4_ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Prefix of a short-term Bedrock API key.
const SHORT_TERM_KEY_PREFIX: &str = "bedrock-api-key-";
/// Prefix of a long-term Bedrock API key.
const LONG_TERM_KEY_PREFIX: &str = "ABSK";

/// The credential scope and signed headers of a SigV4 `Authorization` header. Never holds the
/// signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigV4Scope<'a> {
    /// The access key id (an identifier, not a secret; log it hashed or shortened).
    pub access_key_id: &'a str,
    /// `YYYYMMDD`.
    pub date: &'a str,
    /// The region the request was signed for (shaped like a region name).
    pub region: &'a str,
    /// The signing name (`bedrock`, `bedrock-mantle`, ...).
    pub service: &'a str,
    /// The raw `SignedHeaders` value (`;`-separated lowercase names); see `signed_headers`.
    pub signed_headers: &'a str,
}

impl<'a> SigV4Scope<'a> {
    /// The signed header names.
    pub fn signed_headers(&self) -> impl Iterator<Item = &'a str> {
        self.signed_headers.split(';')
    }

    /// Is header `name` signed (compared case-insensitively)?
    pub fn signs(&self, name: &str) -> bool {
        self.signed_headers().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// The two kinds of Bedrock API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyKind {
    /// `bedrock-api-key-...`: a presigned SigV4 URL, valid up to 12 hours.
    ShortTerm,
    /// `ABSK...`: an IAM service-specific credential.
    LongTerm,
}

impl ApiKeyKind {
    /// `short-term Bedrock API key` / `long-term Bedrock API key`.
    pub fn describe(self) -> &'static str {
        match self {
            ApiKeyKind::ShortTerm => "short-term Bedrock API key",
            ApiKeyKind::LongTerm => "long-term Bedrock API key",
        }
    }
}

/// The header a bearer token came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHeader {
    /// `Authorization: Bearer <token>`.
    Authorization,
    /// `x-api-key: <token>`.
    XApiKey,
}

/// What credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No `Authorization` (other than the identity header) and no `x-api-key`.
    None,
    /// A well-formed SigV4 `Authorization` header.
    SigV4(SigV4Scope<'a>),
    /// A Bedrock API key, by its prefix.
    ApiKey {
        /// Short-term or long-term.
        kind: ApiKeyKind,
        /// The header it came in.
        header: TokenHeader,
    },
    /// A bearer token that is not a Bedrock API key format this filter knows.
    UnknownBearer {
        /// The header it came in.
        header: TokenHeader,
    },
    /// A credential header that is present but malformed (or repeated, or two of them).
    Malformed(CredentialError),
}

/// Why a credential header is malformed. Fixed texts: they never echo header bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A SigV4 header with a byte that is neither visible ASCII nor a space.
    #[error("authorization header contains a character that is not visible ASCII or space")]
    Character,
    /// An `Authorization` scheme other than SigV4 and `Bearer`.
    #[error("authorization scheme is neither AWS4-HMAC-SHA256 nor Bearer")]
    UnknownScheme,
    /// The SigV4 algorithm is not written exactly `AWS4-HMAC-SHA256` and one space.
    #[error("SigV4 authorization must be exactly `AWS4-HMAC-SHA256 ` followed by its parameters")]
    SigV4Algorithm,
    /// Parameters not separated by `,` or `, `, or an empty one.
    #[error("SigV4 authorization parameters must be separated by ',' or ', '")]
    SigV4Separator,
    /// A parameter other than `Credential`, `SignedHeaders` and `Signature`.
    #[error(
        "SigV4 authorization has a parameter other than Credential, SignedHeaders and Signature"
    )]
    SigV4UnknownParameter,
    /// A parameter given twice.
    #[error("SigV4 authorization repeats a parameter")]
    SigV4RepeatedParameter,
    /// No `Credential`.
    #[error("SigV4 authorization has no Credential")]
    SigV4MissingCredential,
    /// No `SignedHeaders`.
    #[error("SigV4 authorization has no SignedHeaders")]
    SigV4MissingSignedHeaders,
    /// No `Signature`.
    #[error("SigV4 authorization has no Signature")]
    SigV4MissingSignature,
    /// The credential scope is not `<access key id>/<yyyymmdd>/<region>/<service>/aws4_request`
    /// with each part of its shape.
    #[error("SigV4 credential is not <access key id>/<yyyymmdd>/<region>/<service>/aws4_request")]
    SigV4CredentialScope,
    /// `SignedHeaders` is not a `;`-separated list of lower-case header names.
    #[error("SigV4 SignedHeaders is not a ';'-separated list of lowercase header names")]
    SigV4SignedHeaders,
    /// `Signature` is not 64 lower-case hex digits.
    #[error("SigV4 Signature is not 64 lowercase hex digits")]
    SigV4Signature,
    /// `Bearer` not followed by one space and a token of visible ASCII.
    #[error("bearer authorization must be `Bearer ` followed by a token of visible ASCII")]
    BearerToken,
    /// An `x-api-key` value that is not a token of visible ASCII.
    #[error("x-api-key must be a token of visible ASCII")]
    ApiKeyValue,
    /// Both an `Authorization` credential and `x-api-key`: which one AWS would use is unclear.
    #[error("request carries both an authorization credential and an x-api-key header")]
    TwoCredentials,
    /// `Authorization` or `x-api-key` more than once.
    #[error("a credential header appears more than once")]
    Repeated,
}

/// The credential carried by `headers` (every pair, names in any case). `identity_header` is
/// skipped when it is `authorization` (see the module documentation).
pub fn detect<'a>(headers: &[(&str, &'a [u8])], identity_header: &str) -> Credential<'a> {
    let skip_authorization = identity_header.eq_ignore_ascii_case("authorization");
    let mut authorization: Option<&'a [u8]> = None;
    let mut api_key: Option<&'a [u8]> = None;
    for &(name, value) in headers {
        let slot = if name.eq_ignore_ascii_case("authorization") && !skip_authorization {
            &mut authorization
        } else if name.eq_ignore_ascii_case("x-api-key") {
            &mut api_key
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Credential::Malformed(CredentialError::Repeated);
        }
    }
    match (authorization, api_key) {
        (None, None) => Credential::None,
        (Some(value), None) => parse_authorization(value),
        (None, Some(value)) => parse_api_key(value),
        (Some(_), Some(_)) => Credential::Malformed(CredentialError::TwoCredentials),
    }
}

/// Classify one `Authorization` value.
pub fn parse_authorization(value: &[u8]) -> Credential<'_> {
    let scheme_end = value.iter().position(|&b| b == b' ').unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if scheme.eq_ignore_ascii_case(SIGV4_ALGORITHM.as_bytes()) {
        return match parse_sigv4(value) {
            Ok(scope) => Credential::SigV4(scope),
            Err(e) => Credential::Malformed(e),
        };
    }
    if scheme.eq_ignore_ascii_case(b"Bearer") {
        return match rest.strip_prefix(b" ").and_then(token) {
            Some(t) => classify_token(t, TokenHeader::Authorization),
            None => Credential::Malformed(CredentialError::BearerToken),
        };
    }
    Credential::Malformed(CredentialError::UnknownScheme)
}

/// Classify one `x-api-key` value.
pub fn parse_api_key(value: &[u8]) -> Credential<'_> {
    match token(value) {
        Some(t) => classify_token(t, TokenHeader::XApiKey),
        None => Credential::Malformed(CredentialError::ApiKeyValue),
    }
}

/// A non-empty token of visible ASCII (no spaces).
fn token(value: &[u8]) -> Option<&[u8]> {
    (!value.is_empty() && value.iter().all(u8::is_ascii_graphic)).then_some(value)
}

fn classify_token(token: &[u8], header: TokenHeader) -> Credential<'static> {
    if token.starts_with(SHORT_TERM_KEY_PREFIX.as_bytes()) {
        Credential::ApiKey {
            kind: ApiKeyKind::ShortTerm,
            header,
        }
    } else if token.starts_with(LONG_TERM_KEY_PREFIX.as_bytes()) {
        Credential::ApiKey {
            kind: ApiKeyKind::LongTerm,
            header,
        }
    } else {
        Credential::UnknownBearer { header }
    }
}

/// Parse a SigV4 `Authorization` value strictly (see the module documentation).
pub fn parse_sigv4(value: &[u8]) -> Result<SigV4Scope<'_>, CredentialError> {
    if !value.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) {
        return Err(CredentialError::Character);
    }
    let text = std::str::from_utf8(value).map_err(|_| CredentialError::Character)?;
    let params = text
        .strip_prefix(SIGV4_ALGORITHM)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(CredentialError::SigV4Algorithm)?;

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for (i, part) in params.split(',').enumerate() {
        let part = if i == 0 {
            part
        } else {
            part.strip_prefix(' ').unwrap_or(part)
        };
        if part.is_empty() || part.contains(' ') {
            return Err(CredentialError::SigV4Separator);
        }
        let (name, value) = part
            .split_once('=')
            .ok_or(CredentialError::SigV4UnknownParameter)?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(CredentialError::SigV4UnknownParameter),
        };
        if slot.replace(value).is_some() {
            return Err(CredentialError::SigV4RepeatedParameter);
        }
    }
    let credential = credential.ok_or(CredentialError::SigV4MissingCredential)?;
    let signed_headers = signed_headers.ok_or(CredentialError::SigV4MissingSignedHeaders)?;
    let signature = signature.ok_or(CredentialError::SigV4MissingSignature)?;

    let mut scope = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(CredentialError::SigV4CredentialScope);
    };
    let scope_ok = is_access_key_id(access_key_id)
        && is_date(date)
        && region.len() <= 32
        && crate::aws::is_region(region)
        && is_service(service);
    if !scope_ok {
        return Err(CredentialError::SigV4CredentialScope);
    }
    if !signed_headers.split(';').all(is_header_name) {
        return Err(CredentialError::SigV4SignedHeaders);
    }
    let signature_ok = signature.len() == 64
        && signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !signature_ok {
        return Err(CredentialError::SigV4Signature);
    }
    Ok(SigV4Scope {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
    })
}

/// 1 to 128 ASCII letters and digits (IAM access key ids are 16 to 128; test suites use
/// shorter ones such as `AKIDEXAMPLE`).
fn is_access_key_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `YYYYMMDD` with a month 01-12 and a day 01-31.
fn is_date(date: &str) -> bool {
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = date.get(r)?;
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    date.len() == 8
        && digits(0..4).is_some()
        && digits(4..6).is_some_and(|m| (1..=12).contains(&m))
        && digits(6..8).is_some_and(|d| (1..=31).contains(&d))
}

/// 1 to 64 of `a-z`, `0-9` and `-` (a SigV4 signing name).
fn is_service(service: &str) -> bool {
    (1..=64).contains(&service.len())
        && service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// 1 to 128 of `a-z`, `0-9`, `-`, `_` and `.`.
fn is_header_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}
