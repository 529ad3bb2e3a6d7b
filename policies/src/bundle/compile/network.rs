//! `endpoints` (hosts, regions, cidrs, private DNS, FIPS), `network` (FIPS requirement,
//! profile geographies), `accounts` and `aws` (checked only: the guard does not decide on it).

use std::collections::{HashMap, HashSet};

use crate::aws::{self, BedrockService, EndpointKind};
use crate::bundle::cidr::Cidr;
use crate::bundle::schema::{AwsSide, Endpoint, Network};
use crate::bundle::validate::{self as v, Errors};

/// One endpoint, compiled. See `destination` for how requests are matched against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledEndpoint {
    /// The bundle's `host`: lower-case, no port. A request's canonical `:authority` must equal
    /// it (or be a zonal name of it).
    pub host: String,
    /// The bundle's `region`: the region ARNs, credential scopes and cross-region profiles in
    /// a request to this endpoint must agree with.
    pub region: String,
    /// The ARN partition of `region` (`aws`, `aws-us-gov`, `aws-cn`, ...).
    pub partition: &'static str,
    /// A VPC endpoint name or a service name (reached through private DNS).
    pub kind: EndpointKind,
    /// The Bedrock service the host serves (gives the expected SigV4 signing name).
    pub service: BedrockService,
    pub(crate) private_dns: bool,
    /// The host is a FIPS endpoint (read from the host's service label).
    pub fips: bool,
    /// The endpoint's network blocks: the original destination must be inside one, and so
    /// must every response's upstream address when any are listed.
    pub cidrs: Vec<Cidr>,
}

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn compile_endpoints(
    endpoints: &[Endpoint],
    fips_required: bool,
    errs: &mut Errors,
) -> (Vec<CompiledEndpoint>, HashMap<String, usize>) {
    if endpoints.is_empty() {
        errs.push(
            "endpoints",
            "at least one endpoint is required (requests may only go to listed endpoints)",
        );
    }
    let mut compiled = Vec::with_capacity(endpoints.len());
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        let region_ok = match ep.region.as_deref() {
            Some(region) => {
                let r = v::region(region);
                let ok = r.is_ok();
                errs.check(|| format!("{at}.region"), r);
                ok
            }
            None => {
                errs.push(format!("{at}.region"), "required");
                false
            }
        };
        let mut shape = None;
        match ep.host.as_deref() {
            Some(host) => {
                let region = ep.region.as_deref().filter(|_| region_ok);
                let dns_ok = v::host(host, region);
                if dns_ok.is_ok() {
                    match aws::parse_endpoint_host(host) {
                        Ok(s) => shape = Some(s),
                        Err(message) => errs.push(format!("{at}.host"), message),
                    }
                }
                errs.check(|| format!("{at}.host"), dns_ok);
                if let Some(first) = by_host.get(host) {
                    errs.push(
                        format!("{at}.host"),
                        format!("duplicate host {host:?} (also endpoints[{first}])"),
                    );
                }
            }
            None => errs.push(format!("{at}.host"), "required"),
        }
        let mut cidrs = Vec::with_capacity(ep.cidrs.len());
        for (j, text) in ep.cidrs.iter().enumerate() {
            match Cidr::parse(text) {
                Ok(c) => {
                    if cidrs.contains(&c) {
                        errs.push(format!("{at}.cidrs[{j}]"), format!("duplicate block {c}"));
                    }
                    cidrs.push(c);
                }
                Err(message) => errs.push(format!("{at}.cidrs[{j}]"), message),
            }
        }
        if let Some(shape) = shape {
            check_endpoint_shape(&at, ep, &shape, fips_required, errs);
        }
        if ep.private_dns && ep.cidrs.is_empty() {
            errs.push(
                format!("{at}.cidrs"),
                "a private_dns endpoint needs cidrs: its host name also resolves to the public endpoint, so only the address proves the PrivateLink path",
            );
        }
        let host = ep.host.clone().unwrap_or_default();
        let region = ep.region.clone().unwrap_or_default();
        by_host.entry(host.clone()).or_insert(i);
        compiled.push(CompiledEndpoint {
            partition: aws::partition_of_region(&region),
            host,
            region,
            kind: shape.map(|s| s.kind).unwrap_or_default(),
            service: shape.map(|s| s.service).unwrap_or_default(),
            private_dns: ep.private_dns,
            fips: shape.is_some_and(|s| s.fips),
            cidrs,
        });
    }
    (compiled, by_host)
}

/// The rules that depend on what the host is: private DNS only (and always) for service
/// names, the `fips` flag and `network.fips_required` against the host's service label.
#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
fn check_endpoint_shape(
    at: &str,
    ep: &Endpoint,
    shape: &aws::HostShape<'_>,
    fips_required: bool,
    errs: &mut Errors,
) {
    match shape.kind {
        EndpointKind::ServiceName if !ep.private_dns => errs.push(
            format!("{at}.private_dns"),
            "a service name reaches PrivateLink only through the VPC endpoint's private DNS zone: \
             set private_dns: true and list the endpoint's cidrs, or name the endpoint by its \
             endpoint-specific vpce-....vpce.amazonaws.com name",
        ),
        EndpointKind::VpcEndpoint if ep.private_dns => errs.push(
            format!("{at}.private_dns"),
            "applies to service names only: an endpoint-specific vpce name always resolves to \
             the endpoint's own addresses; remove private_dns",
        ),
        _ => {}
    }
    if ep.fips && !shape.fips {
        errs.push(
            format!("{at}.fips"),
            "the host is not a FIPS endpoint (its service label has no -fips); \
             use bedrock-runtime-fips or bedrock-agent-runtime-fips",
        );
    }
    if fips_required && !shape.fips {
        errs.push(
            format!("{at}.host"),
            "network.fips_required is set but this is not a FIPS endpoint; use the \
             bedrock-runtime-fips (or bedrock-agent-runtime-fips) host",
        );
    }
}

/// `network.profile_geographies`: each a profile prefix (`[a-z-]`, 2 to 8 characters), no
/// duplicates. An empty list is allowed and refuses every cross-region profile.
#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn compile_network(network: &Network, errs: &mut Errors) -> Option<Vec<String>> {
    let geographies = network.profile_geographies.as_ref()?;
    for (j, geo) in geographies.iter().enumerate() {
        errs.check(
            || format!("network.profile_geographies[{j}]"),
            v::profile_geography(geo),
        );
        if geographies
            .get(..j)
            .is_some_and(|before| before.contains(geo))
        {
            errs.push(
                format!("network.profile_geographies[{j}]"),
                format!("duplicate geography {geo:?}"),
            );
        }
    }
    Some(geographies.clone())
}

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn compile_accounts(
    accounts: Option<&[String]>,
    errs: &mut Errors,
) -> Option<HashSet<String>> {
    let accounts = accounts?;
    if accounts.is_empty() {
        errs.push(
            "accounts",
            "is empty, which would refuse every account-scoped ARN; omit the field to allow any account",
        );
    }
    let mut set = HashSet::with_capacity(accounts.len());
    for (i, account) in accounts.iter().enumerate() {
        errs.check(|| format!("accounts[{i}]"), v::account(account));
        if !set.insert(account.clone()) {
            errs.push(
                format!("accounts[{i}]"),
                format!("duplicate account {account:?}"),
            );
        }
    }
    Some(set)
}

/// `aws`: checked, not compiled (only `bedrock-guard iam` reads it). An empty object, an empty
/// account list and a repeated account are refused, so that what is written is what the AWS
/// side gets.
#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn check_aws(aws: Option<&AwsSide>, errs: &mut Errors) {
    let Some(aws) = aws else {
        return;
    };
    if aws.principal_accounts.is_none() && aws.principal_org_id.is_none() {
        errs.push(
            "aws",
            "is empty; give principal_accounts and/or principal_org_id, or omit aws",
        );
    }
    if let Some(accounts) = &aws.principal_accounts {
        if accounts.is_empty() {
            errs.push(
                "aws.principal_accounts",
                "is empty, which no principal could satisfy; list the accounts or omit the field",
            );
        }
        for (i, account) in accounts.iter().enumerate() {
            errs.check(
                || format!("aws.principal_accounts[{i}]"),
                v::account(account),
            );
            if accounts
                .get(..i)
                .is_some_and(|before| before.contains(account))
            {
                errs.push(
                    format!("aws.principal_accounts[{i}]"),
                    format!("duplicate account {account:?}"),
                );
            }
        }
    }
    if let Some(org) = &aws.principal_org_id {
        errs.check(|| "aws.principal_org_id".to_string(), v::org_id(org));
    }
}
