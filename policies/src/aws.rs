//! AWS naming facts, in one leaf module: partitions and the region prefixes that place a
//! region in one, region names, the partitions' DNS suffixes, the Bedrock data-plane service
//! labels, the grammar of a Bedrock endpoint host (service name or endpoint-specific VPC
//! endpoint name) and the geographies of cross-region inference profiles.
//!
//! This module depends on nothing else in the crate (a unit test below keeps it that way), so
//! `bundle`, `destination`, `engine`, `request`, `audit`, the CLI and the plugin can all take
//! their naming facts from here without importing one another.
//!
//! # Endpoint host names
//!
//! A Bedrock endpoint host is `<service>.<region>.<dns suffix>` (a service name) or
//! `<vpce label>.<service>.<region>.vpce.<dns suffix>` (an endpoint-specific VPC endpoint
//! name; never under a dual-stack suffix). `<dns suffix>` is one of the partitions' DNS
//! suffixes (`DNS_SUFFIXES`).
//!
//! # The VPC endpoint label
//!
//! `vpce-<id>-<dns label>[-<zone>]`, read by `VpceLabel::parse`:
//!
//! * `<id>`: 8 or 17 lowercase hex digits (the endpoint id is `vpce-<id>`);
//! * `<dns label>`: lowercase letters and digits (AWS issues 8 of them; AWS documentation
//!   examples show shorter ones, such as `vpce-1a2b3c4d-5e6f`);
//! * `<zone>`: lowercase letters, digits and `-`, not ending with `-`; a real zonal name has
//!   an availability zone of the endpoint's region, `<region><letter>`.
//!
//! `parse_vpce_host` is the one reader of endpoint-specific names: bundle validation
//! (`parse_endpoint_host`, which further requires a Bedrock service, an 8-character DNS
//! label, a zone of the host's region and the region's own DNS suffix), zonal-name matching
//! in `destination` and the audit record's `vpcEndpointId` all go through it.

// ---- partitions ---------------------------------------------------------------------------

/// Region-name prefixes of the partitions other than `aws`, most specific first. A region
/// that matches none is in `aws`.
const PARTITION_REGION_PREFIXES: &[(&str, &str)] = &[
    ("us-gov-", "aws-us-gov"),
    ("cn-", "aws-cn"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc"),
];

/// The ARN partition a region belongs to.
pub fn partition_of_region(region: &str) -> &'static str {
    PARTITION_REGION_PREFIXES
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, partition)| partition)
}

/// Is `p` shaped like an ARN partition: `aws` or `aws-<lowercase alnum and dash>` (`aws-cn`,
/// `aws-us-gov`, `aws-iso-b`, ...)?
pub(crate) fn is_partition(p: &str) -> bool {
    match p.strip_prefix("aws") {
        Some("") => true,
        Some(rest) => rest.strip_prefix('-').is_some_and(|tail| {
            !tail.is_empty()
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }),
        None => false,
    }
}

// ---- regions ------------------------------------------------------------------------------

/// Is `region` shaped like an AWS region (`us-east-1`, `us-gov-west-1`, `eusc-de-east-1`)?
pub(crate) fn is_region(region: &str) -> bool {
    let mut parts = region.split('-');
    let Some(first) = parts.next() else {
        return false;
    };
    if first.len() < 2 || !first.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    let Some((last, middle)) = rest.split_last() else {
        return false;
    };
    !middle.is_empty()
        && middle
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.len() <= 3
        && last.bytes().all(|b| b.is_ascii_digit())
}

// ---- DNS suffixes -------------------------------------------------------------------------

/// A partition's DNS suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DnsSuffix {
    /// The ARN partition it serves (`aws`, `aws-cn`, ...).
    pub(crate) partition: &'static str,
    /// The suffix itself, without a leading dot (`amazonaws.com`).
    pub(crate) suffix: &'static str,
    /// A dual-stack suffix (`api.aws`, ...): service names only, no VPC endpoint names.
    pub(crate) dual_stack: bool,
}

const fn suffix(partition: &'static str, suffix: &'static str, dual_stack: bool) -> DnsSuffix {
    DnsSuffix {
        partition,
        suffix,
        dual_stack,
    }
}

/// The DNS suffixes of the partitions (a suffix may serve several partitions).
const DNS_SUFFIXES: &[DnsSuffix] = &[
    suffix("aws", "amazonaws.com", false),
    suffix("aws", "api.aws", true),
    suffix("aws-us-gov", "amazonaws.com", false),
    suffix("aws-us-gov", "api.aws", true),
    suffix("aws-cn", "amazonaws.com.cn", false),
    suffix("aws-cn", "api.amazonwebservices.com.cn", true),
    suffix("aws-iso", "c2s.ic.gov", false),
    suffix("aws-iso-b", "sc2s.sgov.gov", false),
    suffix("aws-iso-e", "cloud.adc-e.uk", false),
    suffix("aws-iso-f", "csp.hci.ic.gov", false),
    suffix("aws-eusc", "amazonaws.eu", false),
    suffix("aws-eusc", "api.amazonwebservices.eu", true),
];

/// `host` split into the labels before an AWS DNS suffix and that suffix (the first entry of
/// [`DNS_SUFFIXES`] that fits). `None` when the host is not under one.
fn split_dns_suffix(host: &str) -> Option<(&str, &'static DnsSuffix)> {
    DNS_SUFFIXES.iter().find_map(|s| {
        let prefix = host.strip_suffix(s.suffix)?.strip_suffix('.')?;
        Some((prefix, s))
    })
}

/// Does the DNS suffix `suffix` (dual-stack or not) belong to `partition`?
fn suffix_serves_partition(suffix: &str, dual_stack: bool, partition: &str) -> bool {
    DNS_SUFFIXES
        .iter()
        .any(|s| s.partition == partition && s.suffix == suffix && s.dual_stack == dual_stack)
}

// ---- Bedrock services ---------------------------------------------------------------------

/// Which Bedrock data-plane service an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BedrockService {
    /// `bedrock-runtime`: model invocation (InvokeModel, Converse, async invocation,
    /// guardrails) and the OpenAI- and Anthropic-compatible APIs.
    #[default]
    Runtime,
    /// `bedrock-agent-runtime`: inline agents, knowledge-base retrieval, rerank, prompt
    /// optimisation.
    AgentRuntime,
    /// `bedrock-mantle`: the OpenAI- and Anthropic-compatible APIs only.
    Mantle,
}

impl BedrockService {
    /// The SigV4 signing name (the credential scope's service).
    pub fn signing_name(self) -> &'static str {
        match self {
            BedrockService::Runtime | BedrockService::AgentRuntime => "bedrock",
            BedrockService::Mantle => "bedrock-mantle",
        }
    }

    /// The service's (non-FIPS) host label.
    pub fn label(self) -> &'static str {
        match self {
            BedrockService::Runtime => "bedrock-runtime",
            BedrockService::AgentRuntime => "bedrock-agent-runtime",
            BedrockService::Mantle => "bedrock-mantle",
        }
    }
}

/// Service labels of endpoint hosts: (label, service, FIPS).
const SERVICE_LABELS: &[(&str, BedrockService, bool)] = &[
    ("bedrock-runtime", BedrockService::Runtime, false),
    ("bedrock-runtime-fips", BedrockService::Runtime, true),
    ("bedrock-agent-runtime", BedrockService::AgentRuntime, false),
    (
        "bedrock-agent-runtime-fips",
        BedrockService::AgentRuntime,
        true,
    ),
    ("bedrock-mantle", BedrockService::Mantle, false),
];

/// The service and FIPS flag of a host's service label.
fn service_of_label(label: &str) -> Option<(BedrockService, bool)> {
    SERVICE_LABELS
        .iter()
        .find(|(l, ..)| *l == label)
        .map(|&(_, service, fips)| (service, fips))
}

// ---- the VPC endpoint host grammar --------------------------------------------------------

/// The first label of an endpoint-specific VPC endpoint name, `vpce-<id>-<dns label>[-<zone>]`
/// (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VpceLabel<'a> {
    /// `vpce-<id>`: the VPC endpoint id.
    pub(crate) endpoint_id: &'a str,
    /// The endpoint's DNS label (`abcd1234`).
    pub(crate) dns_label: &'a str,
    /// The zone of a zonal name (`us-east-1a`).
    pub(crate) zone: Option<&'a str>,
    /// The label without its zone: `vpce-<id>-<dns label>` (the regional name's first label).
    pub(crate) regional: &'a str,
}

impl<'a> VpceLabel<'a> {
    /// Read a VPC endpoint label; `None` when it is not one.
    pub(crate) fn parse(label: &'a str) -> Option<Self> {
        let rest = label.strip_prefix("vpce-")?;
        let (id, rest) = rest.split_once('-')?;
        let id_ok = matches!(id.len(), 8 | 17)
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let (dns_label, zone) = match rest.split_once('-') {
            Some((dns_label, zone)) => (dns_label, Some(zone)),
            None => (rest, None),
        };
        let dns_label_ok = !dns_label.is_empty()
            && dns_label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let zone_ok = zone.is_none_or(|z| {
            !z.is_empty()
                && !z.ends_with('-')
                && z.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if !(id_ok && dns_label_ok && zone_ok) {
            return None;
        }
        let id_end = "vpce-".len() + id.len();
        let regional_end = id_end + 1 + dns_label.len();
        Some(VpceLabel {
            endpoint_id: label.get(..id_end)?,
            dns_label,
            zone,
            regional: label.get(..regional_end)?,
        })
    }

    /// The DNS label has the 8 characters of a name AWS issues.
    pub(crate) fn dns_label_is_issued_form(&self) -> bool {
        self.dns_label.len() == 8
    }

    /// Is the zone (if any) an availability zone of `region`, `<region><letter>`? True for a
    /// regional name.
    pub(crate) fn zone_in_region(&self, region: &str) -> bool {
        self.zone.is_none_or(|zone| {
            zone.strip_suffix(|c: char| c.is_ascii_lowercase())
                .is_some_and(|r| r == region)
        })
    }
}

/// An endpoint-specific VPC endpoint name,
/// `<vpce label>.<service>.<region>.vpce.<dns suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VpceHost<'a> {
    /// The first label, `vpce-<id>-<dns label>[-<zone>]`.
    pub(crate) label: VpceLabel<'a>,
    /// The service label (any AWS service's; [`service_of_label`] says which Bedrock one).
    pub(crate) service: &'a str,
    /// The region label, shaped like a region name.
    pub(crate) region: &'a str,
    /// The DNS suffix the name is under (never a dual-stack one).
    pub(crate) suffix: &'static DnsSuffix,
    /// Everything after the first label: `<service>.<region>.vpce.<dns suffix>`.
    pub(crate) rest: &'a str,
}

/// The labels of a Bedrock endpoint host under an AWS DNS suffix (not yet checked beyond
/// their number and the `vpce` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EndpointLabels<'a> {
    /// The first label of an endpoint-specific name.
    vpce_label: Option<&'a str>,
    service: &'a str,
    region: &'a str,
    suffix: &'static DnsSuffix,
}

/// Why a host is not shaped like a Bedrock endpoint name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndpointLabelsError {
    /// Not under an AWS DNS suffix.
    Suffix,
    /// Under one, but neither `<service>.<region>` nor `<label>.<service>.<region>.vpce`
    /// (a VPC endpoint name under a dual-stack suffix included).
    Labels,
}

/// Split an endpoint host into its labels (see the module documentation).
fn endpoint_labels(host: &str) -> Result<EndpointLabels<'_>, EndpointLabelsError> {
    let (prefix, suffix) = split_dns_suffix(host).ok_or(EndpointLabelsError::Suffix)?;
    let mut labels = prefix.split('.');
    let parts = (
        labels.next(),
        labels.next(),
        labels.next(),
        labels.next(),
        labels.next(),
    );
    let (vpce_label, service, region) = match parts {
        (Some(service), Some(region), None, None, None) => (None, service, region),
        (Some(first), Some(service), Some(region), Some("vpce"), None) if !suffix.dual_stack => {
            (Some(first), service, region)
        }
        _ => return Err(EndpointLabelsError::Labels),
    };
    Ok(EndpointLabels {
        vpce_label,
        service,
        region,
        suffix,
    })
}

/// Read an endpoint-specific VPC endpoint name (lowercase, no port, no trailing dot): a VPC
/// endpoint label, a service label of `[a-z0-9-]`, a region name, `vpce` and a DNS suffix
/// that is not dual-stack. `None` for anything else. Whether the service is a Bedrock one,
/// the DNS label has 8 characters, the zone belongs to the region and the suffix to the
/// region's partition is left to the caller (see [`parse_endpoint_host`]).
pub(crate) fn parse_vpce_host(host: &str) -> Option<VpceHost<'_>> {
    let labels = endpoint_labels(host).ok()?;
    let first = labels.vpce_label?;
    let service_ok = !labels.service.is_empty()
        && labels
            .service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !service_ok || !is_region(labels.region) {
        return None;
    }
    Some(VpceHost {
        label: VpceLabel::parse(first)?,
        service: labels.service,
        region: labels.region,
        suffix: labels.suffix,
        rest: host.get(first.len() + 1..)?,
    })
}

// ---- endpoint hosts -----------------------------------------------------------------------

/// The two shapes an endpoint host may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointKind {
    /// An endpoint-specific name under `vpce.<suffix>` (regional or zonal).
    #[default]
    VpcEndpoint,
    /// A public service name, reaching PrivateLink through private DNS.
    ServiceName,
}

/// What an endpoint host name says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostShape<'a> {
    /// Endpoint-specific VPC endpoint name or service name.
    pub(crate) kind: EndpointKind,
    /// The Bedrock service the host serves.
    pub(crate) service: BedrockService,
    /// A FIPS service label (`bedrock-runtime-fips`, ...).
    pub(crate) fips: bool,
    /// Under a dual-stack suffix (`api.aws`, ...).
    pub(crate) dual_stack: bool,
    /// A zonal VPC endpoint name.
    pub(crate) zonal: bool,
    /// The region the host names.
    pub(crate) region: &'a str,
}

const SHAPES: &str = "expected an endpoint-specific VPC endpoint name \
    (vpce-<id>-<suffix>.bedrock-runtime.<region>.vpce.amazonaws.com; also bedrock-runtime-fips, \
    bedrock-agent-runtime[-fips] and bedrock-mantle) or a service name \
    (bedrock-runtime[-fips].<region>.amazonaws.com, bedrock-agent-runtime[-fips].<region>.amazonaws.com, \
    their dual-stack .api.aws forms, or bedrock-mantle.<region>.api.aws)";

const VPCE_LABEL_SHAPE: &str =
    "must be vpce-<8 or 17 lowercase hex digits>-<8 lowercase letters or digits>, \
    optionally followed by -<availability zone of the endpoint's region>";

/// Classify a bundle endpoint host (already checked to be a lowercase DNS name). The error is
/// the message for the entry's `host` field.
pub(crate) fn parse_endpoint_host(host: &str) -> Result<HostShape<'_>, String> {
    let labels = match endpoint_labels(host) {
        Ok(labels) => labels,
        Err(EndpointLabelsError::Suffix) => {
            return Err(format!("{host:?} is not under an AWS DNS suffix; {SHAPES}"))
        }
        Err(EndpointLabelsError::Labels) => {
            return Err(format!("{host:?} is not a Bedrock endpoint name; {SHAPES}"))
        }
    };
    let EndpointLabels {
        vpce_label,
        service: service_label,
        region,
        suffix: dns_suffix,
    } = labels;
    let dual_stack = dns_suffix.dual_stack;
    let Some((service, fips)) = service_of_label(service_label) else {
        return Err(format!(
            "{host:?}: {service_label:?} is not a Bedrock data-plane service \
             (bedrock-runtime, bedrock-runtime-fips, bedrock-agent-runtime, \
             bedrock-agent-runtime-fips, bedrock-mantle)"
        ));
    };
    if !is_region(region) {
        return Err(format!(
            "{host:?}: {region:?} is not an AWS region name; {SHAPES}"
        ));
    }
    let partition = partition_of_region(region);
    if !suffix_serves_partition(dns_suffix.suffix, dual_stack, partition) {
        return Err(format!(
            "{host:?}: the DNS suffix {:?} does not belong to region {region:?} (partition {partition})",
            dns_suffix.suffix
        ));
    }
    let mut zonal = false;
    let kind = match vpce_label {
        Some(label) => {
            // The same reader as `parse_vpce_host`: the labels above are what it checks too.
            let parsed = VpceLabel::parse(label)
                .filter(VpceLabel::dns_label_is_issued_form)
                .ok_or_else(|| {
                    format!("{host:?}: VPC endpoint label {label:?} {VPCE_LABEL_SHAPE}")
                })?;
            if let Some(zone) = parsed.zone {
                if !parsed.zone_in_region(region) {
                    return Err(format!(
                        "{host:?}: VPC endpoint label {label:?} names zone {zone:?}, which is not \
                         an availability zone of {region:?} (like {region}a)"
                    ));
                }
                zonal = true;
            }
            EndpointKind::VpcEndpoint
        }
        None => {
            if service == BedrockService::Mantle && !dual_stack {
                return Err(format!(
                    "{host:?}: the bedrock-mantle service name is bedrock-mantle.{region}.api.aws"
                ));
            }
            EndpointKind::ServiceName
        }
    };
    Ok(HostShape {
        kind,
        service,
        fips,
        dual_stack,
        zonal,
        region,
    })
}

// ---- cross-region profile geographies -----------------------------------------------------

/// Geographies of cross-region (system) inference profiles this filter knows.
pub(crate) const KNOWN_GEOGRAPHIES: &[&str] =
    &["us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"];

/// Can a profile of geography `geo` be invoked from an endpoint in `region`? `None` when the
/// geography is not a known one: `us` on commercial `us-*` regions, `us-gov` on `us-gov-*`,
/// `eu` on commercial `eu-*`, `apac`, `jp` and `au` on `ap-*`, `ca` on `ca-*`, `global`
/// anywhere.
pub fn geography_serves(geo: &str, region: &str) -> Option<bool> {
    let commercial = partition_of_region(region) == "aws";
    let serves = match geo {
        "global" => true,
        "us" => commercial && region.starts_with("us-"),
        "us-gov" => region.starts_with("us-gov-"),
        "eu" => commercial && region.starts_with("eu-"),
        "apac" | "jp" | "au" => commercial && region.starts_with("ap-"),
        "ca" => commercial && region.starts_with("ca-"),
        _ => return None,
    };
    Some(serves)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VPCE: &str =
        "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com";

    /// The module stays a leaf: it names nothing else in the crate.
    #[test]
    fn imports_nothing_from_the_crate() {
        let source = include_str!("aws.rs");
        let needle = concat!("crate", "::");
        for (n, line) in source.lines().enumerate() {
            assert!(
                !line.contains(needle),
                "aws.rs:{}: {line:?} refers to the crate; aws.rs must stay a leaf module",
                n + 1
            );
        }
    }

    #[test]
    fn region_shapes() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "eu-central-2",
            "eusc-de-east-1",
            "us-isob-east-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "us-east",
            "useast-1",
            "us-east-1a",
            "US-east-1",
            "u-east-1",
            "us--1",
            "us-east-1-",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn partitions_of_regions() {
        for (region, partition) in [
            ("us-east-1", "aws"),
            ("us-gov-west-1", "aws-us-gov"),
            ("cn-north-1", "aws-cn"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("us-isof-south-1", "aws-iso-f"),
            ("eu-isoe-west-1", "aws-iso-e"),
            ("eusc-de-east-1", "aws-eusc"),
            ("eu-central-2", "aws"),
        ] {
            assert_eq!(partition_of_region(region), partition, "{region}");
        }
    }

    #[test]
    fn vpce_host_parts() {
        let zonal = parse_vpce_host(
            "vpce-0a1b2c3d4e5f67890-abcd1234-us-east-1a.bedrock-runtime.us-east-1.vpce.amazonaws.com",
        )
        .unwrap();
        assert_eq!(zonal.label.endpoint_id, "vpce-0a1b2c3d4e5f67890");
        assert_eq!(zonal.label.dns_label, "abcd1234");
        assert_eq!(zonal.label.zone, Some("us-east-1a"));
        assert_eq!(zonal.label.regional, "vpce-0a1b2c3d4e5f67890-abcd1234");
        assert!(zonal.label.zone_in_region(zonal.region));
        assert_eq!(zonal.service, "bedrock-runtime");
        assert_eq!(zonal.region, "us-east-1");
        assert_eq!(zonal.suffix.suffix, "amazonaws.com");
        assert_eq!(zonal.rest, "bedrock-runtime.us-east-1.vpce.amazonaws.com");
        let regional = parse_vpce_host(VPCE).unwrap();
        assert_eq!(regional.label.zone, None);
        assert_eq!(regional.label.regional, "vpce-0a1b2c3d4e5f67890-abcd1234");
        for not_vpce in [
            "bedrock-runtime.us-east-1.amazonaws.com",
            "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.api.aws",
            "vpce-0a1b2c3d4e5f67890-abcd1234.us-east-1.vpce.amazonaws.com",
            "vpce-0a1b2c3d4e5f67890-abcd1234.x.bedrock-runtime.us-east-1.vpce.amazonaws.com",
            "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.useast1.vpce.amazonaws.com",
            "vpce-0a1b2c3d4-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com",
            "vpce-0a1b2c3d4e5f67890-abcd1234-.bedrock-runtime.us-east-1.vpce.amazonaws.com",
        ] {
            assert_eq!(parse_vpce_host(not_vpce), None, "{not_vpce}");
        }
    }

    /// Every host bundle validation accepts as a VPC endpoint name is one `parse_vpce_host`
    /// reads, with the same region and zone.
    #[test]
    fn bundle_vpce_names_are_read_by_the_one_parser() {
        for host in [
            VPCE,
            "vpce-0a1b2c3d-0000zzzz.bedrock-runtime-fips.us-east-1.vpce.amazonaws.com",
            "vpce-0a1b2c3d-abcd1234-us-gov-west-1b.bedrock-agent-runtime.us-gov-west-1.vpce.amazonaws.com",
            "vpce-0a1b2c3d-abcd1234.bedrock-runtime.cn-north-1.vpce.amazonaws.com.cn",
            "vpce-0a1b2c3d-abcd1234.bedrock-runtime.eusc-de-east-1.vpce.amazonaws.eu",
            "vpce-0a1b2c3d-abcd1234.bedrock-mantle.us-iso-east-1.vpce.c2s.ic.gov",
        ] {
            let shape = parse_endpoint_host(host).unwrap();
            assert_eq!(shape.kind, EndpointKind::VpcEndpoint, "{host}");
            let name = parse_vpce_host(host).unwrap();
            assert_eq!(name.region, shape.region, "{host}");
            assert_eq!(name.label.zone.is_some(), shape.zonal, "{host}");
        }
    }

    /// The one reader is lenient where the audit record was (AWS's documentation example
    /// `vpce-1a2b3c4d-5e6f`, a zone of another region); bundle validation is not.
    #[test]
    fn bundle_validation_is_stricter_than_the_reader() {
        for host in [
            "vpce-1a2b3c4d-5e6f.bedrock-runtime.us-east-1.vpce.amazonaws.com",
            "vpce-0a1b2c3d-abcd1234-us-west-2a.bedrock-runtime.us-east-1.vpce.amazonaws.com",
            "vpce-0a1b2c3d-abcd1234.s3.us-east-1.vpce.amazonaws.com",
            "vpce-0a1b2c3d-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com.cn",
        ] {
            assert!(parse_vpce_host(host).is_some(), "{host}");
            assert!(parse_endpoint_host(host).is_err(), "{host}");
        }
    }

    #[test]
    fn service_labels() {
        for &(label, service, fips) in SERVICE_LABELS {
            assert_eq!(service_of_label(label), Some((service, fips)));
            if !fips {
                assert_eq!(service.label(), label);
            }
        }
        assert_eq!(service_of_label("bedrock"), None);
    }
}
