//! A request to decide, and how one is read from a captured raw HTTP/1.1 request; the identity
//! step, done as the filter does it.

use std::cell::RefCell;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::args;
use super::{CliError, CliResult};
use policies::bundle::CompiledPolicy;
use policies::decision::Decision;
use policies::engine::RuleTrace;
use policies::identity::{self, Caller, Jwks, Principal, Verifier};
use policies::request::RequestFacts;

/// One request, as the proxy would hand it to the engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RequestSpec {
    pub(crate) method: String,
    /// Raw `:path`, query included.
    pub(crate) path: Vec<u8>,
    /// `:authority`; `None` means the Host header, else the bundle's first endpoint.
    pub(crate) authority: Option<String>,
    pub(crate) scheme: String,
    /// Lower-cased names, values as bytes, in order, repeats kept.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) destination: Option<IpAddr>,
    /// A caller given by hand (`Verified`: as if its token had verified). `Anonymous`: the
    /// caller is whatever the request's identity header carries, verified as the filter does.
    pub(crate) caller: Caller,
    /// An identity token to send in the bundle's identity header (`--token`, a case's `token`).
    pub(crate) token: Option<Token>,
}

/// An identity token. It is never printed: `Debug` shows its fingerprint only.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(Vec<u8>);

impl Token {
    pub(crate) fn new(bytes: Vec<u8>) -> Token {
        Token(bytes)
    }

    /// The token given as a command-line value: the token itself, or `@FILE` (`@-`: stdin) to
    /// read it from a file, without one trailing newline.
    pub(crate) fn from_arg(value: &str) -> Result<Token, String> {
        let Some(file) = value.strip_prefix('@') else {
            return Ok(Token(value.as_bytes().to_vec()));
        };
        let mut bytes = super::source::read_input(file)?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Ok(Token(bytes))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", identity::fingerprint(&self.0))
    }
}

/// A verified caller for `test` cases and `explain`: what a token's claims would give.
pub(crate) fn verified_caller(
    subject: String,
    groups: Vec<String>,
    claims: serde_json::Map<String, serde_json::Value>,
    issuer: Option<String>,
) -> Caller {
    Caller::Verified(Arc::new(Principal {
        issuer: issuer.unwrap_or_default(),
        subject,
        groups,
        claims,
    }))
}

/// A JWKS file standing in for a provider's remote JWKS (`--jwks PROVIDER=FILE`, a case file's
/// `jwks` member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JwksFile {
    pub(crate) provider: String,
    pub(crate) path: String,
    /// Where it was given, for messages (`--jwks`, `the case file's "jwks"`).
    pub(crate) origin: String,
}

/// Parse `PROVIDER=FILE`.
pub(crate) fn parse_jwks_arg(text: &str) -> Result<JwksFile, String> {
    match text.split_once('=') {
        Some((provider, path)) if !provider.is_empty() && !path.is_empty() => Ok(JwksFile {
            provider: provider.to_string(),
            path: path.to_string(),
            origin: "--jwks".to_string(),
        }),
        _ => Err(format!("--jwks {text:?} is not PROVIDER=FILE")),
    }
}

/// Read one `--jwks PROVIDER=FILE` into `files`, refusing a provider given twice.
pub(crate) fn push_jwks_arg(
    parser: &mut lexopt::Parser,
    command: &'static str,
    files: &mut Vec<JwksFile>,
) -> CliResult<()> {
    let entry =
        parse_jwks_arg(&args::value(parser, command)?).map_err(|e| CliError::usage(command, e))?;
    if files.iter().any(|f| f.provider == entry.provider) {
        return Err(CliError::usage(
            command,
            format!("--jwks is given twice for provider {:?}", entry.provider),
        ));
    }
    files.push(entry);
    Ok(())
}

/// The current time, seconds since the epoch (the filter uses the host's clock).
pub(crate) fn system_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The filter's identity step for the CLI: the bundle's own verifier (`new_verifier`: the
/// inline keys), the keys of remote providers from stand-in files, and a fixed clock.
pub(crate) struct IdentityCheck {
    verifier: Option<Verifier>,
    /// Providers whose keys are remote and for which no file was given.
    remote_without_keys: Vec<String>,
    now: u64,
}

impl IdentityCheck {
    /// Set up for `policy`. `files` stand in for remote JWKS (the first one given for a
    /// provider wins); each must name a provider of the bundle that has `remote_jwks`.
    pub(crate) fn new(
        policy: &CompiledPolicy,
        files: &[JwksFile],
        now: u64,
    ) -> Result<IdentityCheck, String> {
        let mut verifier = policy.new_verifier();
        let providers = policy.identity_providers();
        let names: Vec<&str> = providers.iter().filter_map(|p| p.name.as_deref()).collect();
        let mut loaded: Vec<&str> = Vec::new();
        for file in files {
            let provider = providers
                .iter()
                .find(|p| p.name.as_deref() == Some(file.provider.as_str()));
            let (Some(provider), Some(verifier)) = (provider, verifier.as_mut()) else {
                return Err(format!(
                    "{}: the bundle has no identity provider named {:?} ({})",
                    file.origin,
                    file.provider,
                    if names.is_empty() {
                        "it has no identity block".to_string()
                    } else {
                        format!("its providers: {}", names.join(", "))
                    }
                ));
            };
            if provider.remote_jwks.is_none() {
                return Err(format!(
                    "{}: identity provider {:?} has no remote_jwks: its keys are the ones inline in the bundle",
                    file.origin, file.provider
                ));
            }
            if loaded.contains(&file.provider.as_str()) {
                continue;
            }
            let document = super::source::read_input(&file.path)?;
            let fetched = Jwks::parse(&document).map_err(|e| {
                format!(
                    "{}: {}: not a usable JWKS for provider {:?}: {e}",
                    file.origin, file.path, file.provider
                )
            })?;
            // As the filter does after a fetch: the inline keys (when any) plus the fetched ones.
            let keys = match verifier
                .keys()
                .keys(&file.provider)
                .filter(|k| !k.is_empty())
            {
                Some(inline) => inline.merged_with(&fetched),
                None => fetched,
            };
            verifier
                .set_keys(&file.provider, keys)
                .map_err(|e| format!("{}: {e}", file.origin))?;
            loaded.push(file.provider.as_str());
        }
        let remote_without_keys = providers
            .iter()
            .filter(|p| p.remote_jwks.is_some())
            .filter_map(|p| p.name.clone())
            .filter(|name| !loaded.contains(&name.as_str()))
            .collect();
        Ok(IdentityCheck {
            verifier,
            remote_without_keys,
            now,
        })
    }
}

/// Why a request cannot be decided as the filter would decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdentityInputError {
    /// The token is for a provider whose keys are remote, and no file stands in for them.
    RemoteKeys { provider: String },
    /// A token was given and the request already carries the identity header.
    TokenTwice { header: String },
    /// A token was given and the bundle has no identity providers to verify it with.
    NoIdentity,
}

impl IdentityInputError {
    /// The message, with `how` telling how to give a provider's keys (`--jwks PROVIDER=FILE`).
    pub(crate) fn message(&self, how: &str) -> String {
        match self {
            IdentityInputError::RemoteKeys { provider } => format!(
                "the token is for identity provider {provider:?}, whose keys are remote \
                 (remote_jwks, fetched by the filter): give them from a file with {}",
                how.replace("PROVIDER", provider)
            ),
            IdentityInputError::TokenTwice { header } => format!(
                "a token is given and the request already has the identity header {header}: give the token once"
            ),
            IdentityInputError::NoIdentity => {
                "a token is given but the bundle has no identity block: there is nothing to verify it against"
                    .to_string()
            }
        }
    }
}

/// The engine's decision and the caller it decided for.
#[derive(Debug, Clone)]
pub(crate) struct Decided {
    pub(crate) decision: Decision,
    /// What the identity step handed the engine (`Anonymous` for bundles without identity).
    pub(crate) caller: Caller,
    /// The caller was given by hand (`caller`, `--caller-*`), not verified from a token.
    pub(crate) given: bool,
    /// The fingerprint of the token in the identity header (never the token).
    pub(crate) token_fingerprint: Option<String>,
    /// When the token was verified (seconds since the epoch), if it was.
    pub(crate) verified_at: Option<u64>,
    /// The engine's own trace of the decision: the step that decided, the rules it tried.
    pub(crate) trace: RuleTrace,
}

impl RequestSpec {
    /// The authority the request is decided with, and whether it was defaulted to the
    /// bundle's first endpoint.
    pub(crate) fn effective_authority(&self, policy: &CompiledPolicy) -> (String, bool) {
        if let Some(a) = &self.authority {
            return (a.clone(), false);
        }
        if let Some((_, v)) = self.headers.iter().find(|(n, _)| n == "host") {
            return (String::from_utf8_lossy(v).into_owned(), false);
        }
        let first = policy
            .endpoints()
            .first()
            .map(|e| e.host.clone())
            .unwrap_or_default();
        (first, true)
    }

    /// The request's headers, with the token (if one was given) in the bundle's identity
    /// header, as the client would send it.
    fn wire_headers(
        &self,
        policy: &CompiledPolicy,
    ) -> Result<Vec<(String, Vec<u8>)>, IdentityInputError> {
        let mut headers = self.headers.clone();
        if let Some(Token(token)) = &self.token {
            if !policy.has_identity() {
                return Err(IdentityInputError::NoIdentity);
            }
            let header = policy.identity_header();
            if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(header)) {
                return Err(IdentityInputError::TokenTwice {
                    header: header.to_string(),
                });
            }
            let value = if header.eq_ignore_ascii_case("authorization") {
                [b"Bearer ".as_slice(), token].concat()
            } else {
                token.clone()
            };
            headers.push((header.to_string(), value));
        }
        Ok(headers)
    }

    /// Run the identity step and the engine on this request, as the filter does: with identity
    /// providers configured, the token in the identity header is verified with the bundle's
    /// verifier at `check.now()` (`identity::authenticate`), unless a caller was given by hand.
    pub(crate) fn decide(
        &self,
        policy: &CompiledPolicy,
        check: &mut IdentityCheck,
    ) -> Result<Decided, IdentityInputError> {
        let owned = self.wire_headers(policy)?;
        let headers: Vec<(&str, &[u8])> = owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let header = policy.identity_header();
        let token_fingerprint = match &check.verifier {
            Some(_) => identity::extract_token(header, &headers)
                .ok()
                .flatten()
                .map(identity::fingerprint),
            None => None,
        };
        // Without identity providers the engine decides as an anonymous caller, whoever is given.
        let given = matches!(self.caller, Caller::Verified(_)) && check.verifier.is_some();
        let (caller, token) = match (&mut check.verifier, given) {
            (None, _) => (Caller::Anonymous, None),
            (Some(_), true) => (self.caller.clone(), None),
            (Some(verifier), false) => {
                let missing = RefCell::new(None);
                let remote = &check.remote_without_keys;
                let unavailable = |provider: &str| {
                    let out = remote.iter().any(|r| r == provider);
                    if out {
                        *missing.borrow_mut() = Some(provider.to_string());
                    }
                    out
                };
                let auth =
                    identity::authenticate(verifier, header, &headers, check.now, unavailable);
                if let Caller::Unavailable = auth.caller {
                    return Err(IdentityInputError::RemoteKeys {
                        provider: missing.into_inner().unwrap_or_default(),
                    });
                }
                (auth.caller, auth.token)
            }
        };
        let (authority, _) = self.effective_authority(policy);
        let facts = RequestFacts {
            method: self.method.as_bytes(),
            path: &self.path,
            authority: authority.as_bytes(),
            scheme: self.scheme.as_bytes(),
            headers: &headers,
            body: self.body.as_deref(),
            original_destination: self.destination,
            caller: caller.clone(),
            token,
        };
        let verified_at = (!given && token_fingerprint.is_some()).then_some(check.now);
        let (decision, trace) = policies::engine::decide_traced(policy, &facts);
        Ok(Decided {
            decision,
            trace,
            caller,
            given,
            token_fingerprint,
            verified_at,
        })
    }
}

/// Parse `name: value` (name lower-cased, value trimmed).
pub(crate) fn parse_header_line(line: &str) -> Result<(String, Vec<u8>), String> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| format!("header {line:?} is not `name: value`"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("header name {name:?} is not a token"));
    }
    Ok((
        name.to_ascii_lowercase(),
        value.trim_matches([' ', '\t']).as_bytes().to_vec(),
    ))
}

/// Read a captured HTTP/1.1 request: request line, headers, blank line, body. The target may
/// be origin-form (`/model/...`) or absolute-form (`http://host/model/...`, as SDKs send to an
/// `HTTP_PROXY`). As Envoy does, the Host header becomes `:authority` (in absolute-form the
/// URL's authority wins) and is not passed on as a header. A chunked body is de-chunked; a
/// `Content-Length` body is cut to its length.
pub(crate) fn parse_raw_request(raw: &[u8]) -> Result<RequestSpec, String> {
    let (head, body) = split_head(raw);
    let head =
        std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8".to_string())?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "request line {request_line:?} is not `METHOD TARGET HTTP/1.1`"
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("unsupported protocol version {version:?}"));
    }
    let mut spec = RequestSpec {
        method: method.to_string(),
        scheme: "http".to_string(),
        ..RequestSpec::default()
    };
    let absolute = ["http://", "https://"]
        .iter()
        .find_map(|scheme| target.strip_prefix(scheme).map(|rest| (scheme, rest)));
    match absolute {
        Some((scheme, rest)) => {
            spec.scheme = scheme.trim_end_matches("://").to_string();
            let split = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(split);
            spec.authority = Some(authority.to_string());
            spec.path = if path.is_empty() {
                b"/".to_vec()
            } else if path.starts_with('?') {
                format!("/{path}").into_bytes()
            } else {
                path.as_bytes().to_vec()
            };
        }
        None => spec.path = target.as_bytes().to_vec(),
    }
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err("obsolete header line folding is not supported".to_string());
        }
        let (name, value) = parse_header_line(line)?;
        if name == "host" {
            if spec.authority.is_none() {
                spec.authority = Some(String::from_utf8_lossy(&value).into_owned());
            }
            continue;
        }
        spec.headers.push((name, value));
    }
    let header = |name: &str| {
        spec.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let body = if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        dechunk(body)?
    } else if let Some(len) = header("content-length").and_then(|v| v.trim().parse::<usize>().ok())
    {
        body.get(..len).unwrap_or(body).to_vec()
    } else {
        body.to_vec()
    };
    if !body.is_empty() {
        spec.body = Some(body);
    }
    Ok(spec)
}

fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    for (sep, len) in [(&b"\r\n\r\n"[..], 4usize), (&b"\n\n"[..], 2)] {
        if let Some(i) = raw.windows(sep.len()).position(|w| w == sep) {
            return (
                raw.get(..i).unwrap_or_default(),
                raw.get(i + len..).unwrap_or_default(),
            );
        }
    }
    (raw, &[])
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body: missing chunk size line")?;
        let size_line = std::str::from_utf8(body.get(..line_end).unwrap_or_default())
            .map_err(|_| "chunked body: bad chunk size")?;
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("chunked body: bad chunk size {size_text:?}"))?;
        body = body.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("chunked body: chunk is truncated")?;
        out.extend_from_slice(chunk);
        body = body.get(size..).unwrap_or_default();
        body = body.strip_prefix(b"\r\n").unwrap_or(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_takes_the_url_authority() {
        let raw =
            b"POST http://bedrock-runtime.us-east-1.amazonaws.com/model/x.y/converse HTTP/1.1\r\n\
Host: bedrock-runtime.us-east-1.amazonaws.com\r\nContent-Type: application/json\r\n\r\n{}";
        let spec = parse_raw_request(raw).unwrap();
        assert_eq!(
            spec.authority.as_deref(),
            Some("bedrock-runtime.us-east-1.amazonaws.com")
        );
        assert_eq!(spec.path, b"/model/x.y/converse".to_vec());
        assert_eq!(spec.headers.len(), 1);
        assert_eq!(spec.body, Some(b"{}".to_vec()));
    }

    #[test]
    fn chunked_bodies_are_joined() {
        let raw = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert_eq!(parse_raw_request(raw).unwrap().body, Some(b"{}".to_vec()));
    }
}
