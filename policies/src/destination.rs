//! Destination rules: which `:authority` a request may name, which endpoint that is, which
//! addresses may stand behind it, and which cross-region profile geographies fit its region.
//!
//! # The authority
//!
//! `canonical_authority` reads `:authority` only (never `Host`, `X-Forwarded-Host` or
//! `x-envoy-*`). It is ASCII-lowercased (DNS is case-insensitive) and refused, each with its
//! own fixed detail, when it carries user information (`@`), is an IP literal (any `[...]`, a
//! bare IPv6 address, or a name whose last label is numeric such as `10.0.0.1`), names a port
//! other than `443` or `80`, ends with a dot, has an empty label, a character outside
//! `[a-z0-9.-]`, a label longer than 63 bytes or more than 253 bytes in all. `:80` is
//! accepted because SDKs reach the sidecar over plain HTTP with
//! `AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://bedrock-runtime.<region>.amazonaws.com`; Envoy
//! originates TLS upstream either way.
//!
//! # Endpoints
//!
//! A bundle `endpoints[i].host` is one of two shapes (see `aws::parse_endpoint_host`, the one
//! reader of AWS host names):
//!
//! * an **endpoint-specific VPC endpoint name**,
//!   `vpce-<8 or 17 hex>-<8 lowercase alnum>.<service>.<region>.vpce.<dns suffix>`, where
//!   `<service>` is `bedrock-runtime`, `bedrock-runtime-fips`, `bedrock-agent-runtime`,
//!   `bedrock-agent-runtime-fips` or `bedrock-mantle`. Its zonal variants
//!   (`vpce-...-<suffix>-<region><letter>.<service>...`) match the entry without being listed;
//!   a zonal name whose zone belongs to another region does not. A zonal name may also be
//!   listed on its own (it then matches only itself).
//! * a **service name** (`bedrock-runtime[-fips].<region>.amazonaws.com`,
//!   `bedrock-agent-runtime[-fips].<region>.amazonaws.com`, the dual-stack `*.api.aws`
//!   forms, `bedrock-mantle.<region>.api.aws`, and the other partitions' suffixes). Such a
//!   name reaches PrivateLink only through the VPC's private hosted zone, so the entry needs
//!   `private_dns: true` and `cidrs`.
//!
//! Matching is exact host equality after canonicalisation (plus the zonal rule above): a
//! lookalike, another region, or a dual-stack/mantle host that is not listed is refused.
//!
//! # Addresses
//!
//! * **Original destination** (transparent interception): when the proxy knows the address
//!   the client dialled, it must lie in the matched entry's `cidrs`. An entry without `cidrs`
//!   (only VPC endpoint names may omit them) refuses a request whose original destination is
//!   known: with transparent interception the client, not Envoy, chose that address, and no
//!   block vouches for it. List the endpoint's subnet blocks in `cidrs` to accept it.
//! * **Upstream address** (response time): `upstream_allowed` checks Envoy's
//!   `upstream.address` against the entry's `cidrs`. An entry without `cidrs` accepts any
//!   upstream: Envoy resolved the endpoint-specific name itself, and that public record
//!   resolves only to the endpoint's private addresses. List `cidrs` to have it checked too.
//!
//! # Cross-region profile geographies
//!
//! `aws::geography_serves` says whether a profile geography can be used from an endpoint region:
//! `us` on commercial `us-*` regions, `us-gov` on `us-gov-*`, `eu` on commercial `eu-*`,
//! `apac`, `jp` and `au` on `ap-*`, `ca` on `ca-*`, `global` anywhere; any other prefix is
//! unknown (the engine allows an unknown prefix only when `network.profile_geographies`
//! lists it explicitly).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::aws;
use crate::bundle::{CompiledEndpoint, CompiledPolicy};
use crate::decision::Reason;

// AWS naming facts this module's callers also use, at their former paths.
pub use crate::aws::{geography_serves, BedrockService, EndpointKind};

/// Longest DNS name, in bytes.
const MAX_HOST_LEN: usize = 253;
/// Longest DNS label, in bytes.
const MAX_LABEL_LEN: usize = 63;

/// Why a destination was refused (always `destination_not_privatelink`). The texts are fixed:
/// they never echo request bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// No authority, or only a port.
    #[error("the authority is empty")]
    Empty,
    /// User information (`user@host`).
    #[error("the authority contains user information")]
    Userinfo,
    /// An IP address rather than a host name: `[...]`, a bare IPv6 address, or a numeric last
    /// label (`10.0.0.1`, `2130706433`).
    #[error("the authority is an IP address literal")]
    IpLiteral,
    /// A port other than `:443` or `:80`.
    #[error("the authority names a port other than 443 or 80")]
    Port,
    /// A trailing dot (`bedrock-runtime.us-east-1.amazonaws.com.`).
    #[error("the authority ends with a dot")]
    TrailingDot,
    /// Two dots in a row, or a leading dot.
    #[error("the authority has an empty label")]
    EmptyLabel,
    /// A byte outside `[A-Za-z0-9.-]`.
    #[error("the authority contains a character outside a-z, 0-9, '.' and '-'")]
    Character,
    /// A label longer than 63 bytes.
    #[error("the authority has a label longer than 63 characters")]
    LabelTooLong,
    /// A host longer than 253 bytes.
    #[error("the authority is longer than 253 characters")]
    TooLong,
    /// A well-formed host that names no bundle endpoint.
    #[error("the request's authority is not a configured endpoint")]
    NotConfigured,
    /// The address the client dialled is outside the endpoint's `cidrs`.
    #[error("the original destination address is outside the endpoint's cidrs")]
    OriginalDestinationOutside,
    /// The proxy knows the address the client dialled, but the endpoint lists no `cidrs` to
    /// check it against.
    #[error("the original destination address cannot be verified: the endpoint lists no cidrs")]
    OriginalDestinationUnverified,
}

impl DestinationError {
    /// Always `destination_not_privatelink`.
    pub fn reason(&self) -> Reason {
        Reason::DestinationNotPrivatelink
    }
}

/// A canonical host name (lowercase, no port), held inline: canonicalising allocates nothing.
#[derive(Clone, Copy)]
pub struct CanonicalHost {
    buf: [u8; MAX_HOST_LEN],
    len: usize,
}

impl CanonicalHost {
    fn new() -> Self {
        CanonicalHost {
            buf: [0; MAX_HOST_LEN],
            len: 0,
        }
    }

    /// Append `bytes`; false (and nothing appended) when they do not fit.
    fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.len.saturating_add(bytes.len());
        match self.buf.get_mut(self.len..end) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                self.len = end;
                true
            }
            None => false,
        }
    }

    /// The host name: lower-case ASCII, no port, at most 253 bytes.
    pub fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for CanonicalHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CanonicalHost")
            .field(&self.as_str())
            .finish()
    }
}

impl PartialEq for CanonicalHost {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CanonicalHost {}

/// Canonicalise `:authority` as received: see the module documentation.
pub fn canonical_authority(authority: &[u8]) -> Result<CanonicalHost, DestinationError> {
    if authority.is_empty() {
        return Err(DestinationError::Empty);
    }
    if authority.contains(&b'@') {
        return Err(DestinationError::Userinfo);
    }
    if authority.contains(&b'[') || authority.contains(&b']') {
        return Err(DestinationError::IpLiteral);
    }
    if std::str::from_utf8(authority).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok()) {
        return Err(DestinationError::IpLiteral);
    }
    let host = match authority.iter().position(|&b| b == b':') {
        None => authority,
        Some(colon) => {
            let (host, port) = authority.split_at(colon);
            if !matches!(port, b":443" | b":80") {
                return Err(DestinationError::Port);
            }
            host
        }
    };
    if host.is_empty() {
        return Err(DestinationError::Empty);
    }
    if host.ends_with(b".") {
        return Err(DestinationError::TrailingDot);
    }
    if host.len() > MAX_HOST_LEN {
        return Err(DestinationError::TooLong);
    }
    let mut out = CanonicalHost::new();
    for &b in host {
        let lower = b.to_ascii_lowercase();
        if !(lower.is_ascii_lowercase() || lower.is_ascii_digit() || matches!(lower, b'.' | b'-')) {
            return Err(DestinationError::Character);
        }
        if !out.push(&[lower]) {
            return Err(DestinationError::TooLong);
        }
    }
    let text = out.as_str();
    for label in text.split('.') {
        if label.is_empty() {
            return Err(DestinationError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(DestinationError::LabelTooLong);
        }
    }
    // `10.0.0.1`, `127.1`, `2130706433`: a numeric last label is never a DNS host name.
    if text
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DestinationError::IpLiteral);
    }
    Ok(out)
}

/// The endpoint a canonical host names: an exact entry, or the regional VPC endpoint entry a
/// zonal name belongs to.
pub fn find_endpoint<'p>(policy: &'p CompiledPolicy, host: &str) -> Option<&'p CompiledEndpoint> {
    find_endpoint_index(policy, host).and_then(|i| policy.endpoints().get(i))
}

/// [`find_endpoint`], as an index into [`CompiledPolicy::endpoints`].
fn find_endpoint_index(policy: &CompiledPolicy, host: &str) -> Option<usize> {
    if let Some(i) = policy.endpoint_index(host) {
        return Some(i);
    }
    let regional = regional_name_of_zonal(host)?;
    policy
        .endpoint_index(regional.as_str())
        .filter(|&i| policy.endpoints().get(i).map(|ep| ep.kind) == Some(EndpointKind::VpcEndpoint))
}

/// `vpce-<id>-<sfx>-<region><letter>.<service>.<region>.vpce.<suffix>` →
/// `vpce-<id>-<sfx>.<service>.<region>.vpce.<suffix>`; `None` for anything else, including a
/// zone of another region. Read by `aws::parse_vpce_host`, the one VPC endpoint name reader.
fn regional_name_of_zonal(host: &str) -> Option<CanonicalHost> {
    let name = aws::parse_vpce_host(host)?;
    if name.label.zone.is_none() || !name.label.zone_in_region(name.region) {
        return None;
    }
    let mut out = CanonicalHost::new();
    let fits = out.push(name.label.regional.as_bytes())
        && out.push(b".")
        && out.push(name.rest.as_bytes());
    fits.then_some(out)
}

/// The whole request-side destination check: the authority must canonicalise and name an
/// endpoint, and the original destination, when known, must be inside its `cidrs`.
pub fn resolve<'p>(
    policy: &'p CompiledPolicy,
    authority: &[u8],
    original_destination: Option<IpAddr>,
) -> Result<&'p CompiledEndpoint, DestinationError> {
    Target::of(policy, authority).resolve(policy, original_destination)
}

/// Response-time check ([`Target::upstream_allowed`] on the request's raw `:authority`).
pub fn upstream_allowed(policy: &CompiledPolicy, authority: &[u8], upstream: IpAddr) -> bool {
    Target::of(policy, authority).upstream_allowed(policy, upstream)
}

/// Where a request is bound: its canonical `:authority` and the bundle endpoint it names,
/// computed once per request (by `engine::evaluate`) and kept by the shell for the
/// response-time checks. `Copy`, and allocation-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The canonical authority (lower-case, no default port), or why it does not canonicalise.
    host: Result<CanonicalHost, DestinationError>,
    /// The index, in [`CompiledPolicy::endpoints`], of the endpoint the host names (an exact
    /// entry, or the regional VPC endpoint entry of a zonal name).
    endpoint: Option<usize>,
}

impl Target {
    /// Canonicalise `authority` and find its endpoint.
    pub(crate) fn of(policy: &CompiledPolicy, authority: &[u8]) -> Target {
        let host = canonical_authority(authority);
        let endpoint = host
            .as_ref()
            .ok()
            .and_then(|h| find_endpoint_index(policy, h.as_str()));
        Target { host, endpoint }
    }

    /// The canonical authority, when it canonicalises.
    pub fn host(&self) -> Option<&CanonicalHost> {
        self.host.as_ref().ok()
    }

    /// The request-side destination check: the authority must canonicalise and name an
    /// endpoint, and the original destination address (when the proxy knows it) must be
    /// inside that endpoint's `cidrs`.
    pub(crate) fn resolve<'p>(
        &self,
        policy: &'p CompiledPolicy,
        original_destination: Option<IpAddr>,
    ) -> Result<&'p CompiledEndpoint, DestinationError> {
        self.host?;
        let endpoint = self
            .endpoint(policy)
            .ok_or(DestinationError::NotConfigured)?;
        if let Some(addr) = original_destination {
            endpoint.check_original_destination(addr)?;
        }
        Ok(endpoint)
    }

    /// The bundle endpoint the request is bound for.
    pub fn endpoint<'p>(&self, policy: &'p CompiledPolicy) -> Option<&'p CompiledEndpoint> {
        self.endpoint.and_then(|i| policy.endpoints().get(i))
    }

    /// Response-time check: may the answer have come from `upstream`? Inside the endpoint's
    /// `cidrs` (any address when it lists none); never when the request named no endpoint.
    pub fn upstream_allowed(&self, policy: &CompiledPolicy, upstream: IpAddr) -> bool {
        self.endpoint(policy)
            .is_some_and(|endpoint| endpoint.upstream_allowed(upstream))
    }

    /// The name an endpoint is quarantined under: the bundle entry's host (a zonal name shares
    /// its regional entry's), or the canonical authority when no entry matches (a dry-run
    /// bundle lets such a request through).
    pub fn quarantine_key<'s>(&'s self, policy: &'s CompiledPolicy) -> Option<&'s str> {
        self.endpoint(policy)
            .map(|e| e.host.as_str())
            .or_else(|| self.host().map(CanonicalHost::as_str))
    }
}

/// Parse Envoy's `upstream.address` attribute (`10.0.0.5:443`, `[fd00::1]:443`) into the
/// address. `None` for anything else (a bare address without port, a pipe path, garbage).
pub fn parse_upstream_address(value: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(value)
        .ok()?
        .parse::<SocketAddr>()
        .ok()
        .map(|socket| socket.ip())
}

impl CompiledEndpoint {
    /// Is `addr` inside one of the entry's `cidrs`?
    fn in_cidrs(&self, addr: IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(addr))
    }

    /// The original destination the client dialled must be inside `cidrs`; an entry without
    /// `cidrs` cannot vouch for any address.
    fn check_original_destination(&self, addr: IpAddr) -> Result<(), DestinationError> {
        if self.cidrs.is_empty() {
            Err(DestinationError::OriginalDestinationUnverified)
        } else if self.in_cidrs(addr) {
            Ok(())
        } else {
            Err(DestinationError::OriginalDestinationOutside)
        }
    }

    /// May the response have come from `upstream`? Inside `cidrs`, or any address when the
    /// entry (a VPC endpoint name that Envoy resolved itself) lists none.
    pub(crate) fn upstream_allowed(&self, upstream: IpAddr) -> bool {
        self.cidrs.is_empty() || self.in_cidrs(upstream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zonal_to_regional() {
        let regional = regional_name_of_zonal(
            "vpce-0a1b2c3d4e5f67890-abcd1234-us-east-1a.bedrock-runtime.us-east-1.vpce.amazonaws.com",
        )
        .unwrap();
        assert_eq!(
            regional.as_str(),
            "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com"
        );
        assert!(regional_name_of_zonal(
            "vpce-0a1b2c3d4e5f67890-abcd1234-us-west-2a.bedrock-runtime.us-east-1.vpce.amazonaws.com"
        )
        .is_none());
        assert!(regional_name_of_zonal("bedrock-runtime.us-east-1.amazonaws.com").is_none());
    }

    /// A zonal name listed on its own matches only itself: a "zone of a zone" is not a zonal
    /// name of it (the VPC endpoint label grammar reads its zone as
    /// `us-east-1a-us-east-1b`, which is no zone of `us-east-1`). The matcher used to strip
    /// the last `-<region><letter>` and so found the listed zonal entry.
    #[test]
    fn zonal_name_of_a_listed_zonal_name_is_not_matched() {
        const LISTED: &str =
            "vpce-0a1b2c3d-abcd1234-us-east-1a.bedrock-runtime.us-east-1.vpce.amazonaws.com";
        const ZONE_OF_ZONE: &str =
            "vpce-0a1b2c3d-abcd1234-us-east-1a-us-east-1b.bedrock-runtime.us-east-1.vpce.amazonaws.com";
        assert!(regional_name_of_zonal(ZONE_OF_ZONE).is_none());
        let bundle = format!(
            r#"{{"apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle",
                "metadata": {{"name": "zonal", "revision": "1"}},
                "endpoints": [{{"host": "{LISTED}", "region": "us-east-1"}}]}}"#
        );
        let policy = CompiledPolicy::from_json(bundle.as_bytes()).unwrap();
        assert_eq!(
            resolve(&policy, LISTED.as_bytes(), None).map(|e| e.host.as_str()),
            Ok(LISTED)
        );
        assert_eq!(
            resolve(&policy, ZONE_OF_ZONE.as_bytes(), None).map(|e| e.host.as_str()),
            Err(DestinationError::NotConfigured)
        );
    }

    #[test]
    fn host_buffer_refuses_overflow() {
        let mut h = CanonicalHost::new();
        assert!(h.push(&[b'a'; MAX_HOST_LEN]));
        assert!(!h.push(b"a"));
        assert_eq!(h.as_str().len(), MAX_HOST_LEN);
    }
}
