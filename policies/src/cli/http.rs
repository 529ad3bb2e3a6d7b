//! A request to decide, and how one is read from a captured raw HTTP/1.1 request.

use std::net::IpAddr;

use crate::bundle::CompiledPolicy;
use std::sync::Arc;

use crate::decision::Decision;
use crate::identity::{Caller, Principal};
use crate::request::RequestFacts;

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
    /// The caller, as if its token had verified (`Anonymous`: no token was sent).
    pub(crate) caller: Caller,
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

    /// Run the engine on this request.
    pub(crate) fn decide(&self, policy: &CompiledPolicy) -> Decision {
        let (authority, _) = self.effective_authority(policy);
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let facts = RequestFacts {
            method: self.method.as_bytes(),
            path: &self.path,
            authority: authority.as_bytes(),
            scheme: self.scheme.as_bytes(),
            headers: &headers,
            body: self.body.as_deref(),
            original_destination: self.destination,
            // The CLI verifies no token: the caller is what the case or `--caller-*` says.
            caller: self.caller.clone(),
        };
        crate::engine::decide(policy, &facts)
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
