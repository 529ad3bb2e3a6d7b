//! Destination enforcement: authority canonicalisation, endpoint matching (regional and
//! zonal VPC endpoint names, private-DNS service names), original destination and upstream
//! address checks.

use std::net::IpAddr;

use policies::destination::{
    self, canonical_authority, find_endpoint, parse_upstream_address, resolve, upstream_allowed,
    BedrockService, DestinationError, EndpointKind,
};
use policies::CompiledPolicy;
use serde_json::json;

const SERVICE: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const VPCE: &str = "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com";
const VPCE_ZONAL: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234-us-east-1a.bedrock-runtime.us-east-1.vpce.amazonaws.com";
const VPCE_CIDRS: &str =
    "vpce-0123abcd-wxyz9876.bedrock-agent-runtime.us-east-1.vpce.amazonaws.com";
const V6_SERVICE: &str = "bedrock-runtime.eu-west-1.api.aws";
const MANTLE: &str = "bedrock-mantle.us-east-1.api.aws";

fn policy_with(endpoints: serde_json::Value) -> CompiledPolicy {
    let v = json!({
        "apiVersion": "bedrock-guard/v1",
        "kind": "PolicyBundle",
        "metadata": { "name": "destinations", "revision": "1" },
        "endpoints": endpoints,
    });
    CompiledPolicy::from_json(v.to_string().as_bytes()).expect("test bundle compiles")
}

fn policy() -> CompiledPolicy {
    policy_with(json!([
        { "host": SERVICE, "region": "us-east-1", "private_dns": true, "cidrs": ["10.20.0.0/16"] },
        { "host": VPCE, "region": "us-east-1" },
        { "host": VPCE_CIDRS, "region": "us-east-1", "cidrs": ["10.30.1.0/24", "fd00:30::/64"] },
    ]))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

/// The host of the endpoint `authority` resolves to, or the refusal.
fn host_of(p: &CompiledPolicy, authority: &str) -> Result<String, DestinationError> {
    resolve(p, authority.as_bytes(), None).map(|ep| ep.host.clone())
}

#[track_caller]
fn refused(p: &CompiledPolicy, authority: &str, expected: DestinationError) {
    assert_eq!(host_of(p, authority), Err(expected), "{authority}");
    assert_eq!(
        expected.reason(),
        policies::Reason::DestinationNotPrivatelink
    );
}

// ---- canonicalisation ----------------------------------------------------------------------

#[test]
fn uppercase_authority_is_lowercased_before_matching() {
    let p = policy();
    assert_eq!(
        host_of(&p, "Bedrock-Runtime.US-EAST-1.AmazonAWS.com"),
        Ok(SERVICE.into())
    );
    assert_eq!(
        canonical_authority(b"VPCE-0A1B.Example").unwrap().as_str(),
        "vpce-0a1b.example"
    );
}

#[test]
fn ports_443_and_80_and_none_are_accepted() {
    let p = policy();
    for authority in [
        SERVICE.to_string(),
        format!("{SERVICE}:443"),
        format!("{SERVICE}:80"),
    ] {
        assert_eq!(host_of(&p, &authority), Ok(SERVICE.into()), "{authority}");
    }
}

#[test]
fn other_ports_are_refused() {
    let p = policy();
    for port in [
        ":8443", ":0443", ":4430", ":", ":443:443", ":80:443", ":+443", ": 443",
    ] {
        refused(&p, &format!("{SERVICE}{port}"), DestinationError::Port);
    }
}

#[test]
fn trailing_dot_is_refused() {
    refused(
        &policy(),
        "bedrock-runtime.us-east-1.amazonaws.com.",
        DestinationError::TrailingDot,
    );
    refused(
        &policy(),
        "bedrock-runtime.us-east-1.amazonaws.com.:443",
        DestinationError::TrailingDot,
    );
}

#[test]
fn userinfo_is_refused() {
    let p = policy();
    refused(&p, &format!("user@{SERVICE}"), DestinationError::Userinfo);
    refused(
        &p,
        &format!("user:pw@{SERVICE}:443"),
        DestinationError::Userinfo,
    );
    refused(
        &p,
        &format!("{SERVICE}@evil.example"),
        DestinationError::Userinfo,
    );
}

#[test]
fn ip_literals_are_refused() {
    let p = policy();
    for authority in [
        "10.20.0.5",
        "10.20.0.5:443",
        "127.1",
        "2130706433",
        "[fd00::1]",
        "[fd00::1]:443",
        "[::ffff:10.20.0.5]:443",
        "fd00::1",
        "::1",
        "[v1.bedrock-runtime.us-east-1.amazonaws.com]",
    ] {
        refused(&p, authority, DestinationError::IpLiteral);
    }
}

#[test]
fn empty_labels_and_empty_authority_are_refused() {
    let p = policy();
    refused(
        &p,
        "bedrock-runtime..us-east-1.amazonaws.com",
        DestinationError::EmptyLabel,
    );
    refused(
        &p,
        ".bedrock-runtime.us-east-1.amazonaws.com",
        DestinationError::EmptyLabel,
    );
    refused(&p, "", DestinationError::Empty);
    refused(&p, ":443", DestinationError::Empty);
}

#[test]
fn characters_outside_the_dns_alphabet_are_refused() {
    let p = policy();
    for authority in [
        "bedrock_runtime.us-east-1.amazonaws.com",
        "bedrock-runtime.us-east-1.amazonaws.com ",
        " bedrock-runtime.us-east-1.amazonaws.com",
        "bedrock-runtime.us-east-1.amazonaws.com\0",
        "bedrock-runtime.us-east-1.amazonaws.com/x",
        "bedrock-runtime.us-east-1.amazonaws.com%2e",
        "bedrock-runtime.us-east-1.amazonaws.c\u{f6}m",
        "bedrock-runtime.us-east-1.amazonaws.com\t",
    ] {
        refused(&p, authority, DestinationError::Character);
    }
    assert_eq!(
        resolve(&p, b"bedrock-runtime.us-east-1.amazonaws.\xc3\xa7om", None).map(|_| ()),
        Err(DestinationError::Character)
    );
}

#[test]
fn label_and_name_length_limits() {
    let p = policy();
    let long_label = format!("{}.amazonaws.com", "a".repeat(64));
    refused(&p, &long_label, DestinationError::LabelTooLong);
    let ok_label = format!("{}.amazonaws.com", "a".repeat(63));
    refused(&p, &ok_label, DestinationError::NotConfigured);
    let long_name = vec!["abc"; 64].join(".");
    assert!(long_name.len() > 253);
    refused(&p, &long_name, DestinationError::TooLong);
}

#[test]
fn each_refusal_has_its_own_fixed_detail() {
    let all = [
        DestinationError::Empty,
        DestinationError::Userinfo,
        DestinationError::IpLiteral,
        DestinationError::Port,
        DestinationError::TrailingDot,
        DestinationError::EmptyLabel,
        DestinationError::Character,
        DestinationError::LabelTooLong,
        DestinationError::TooLong,
        DestinationError::NotConfigured,
        DestinationError::OriginalDestinationOutside,
        DestinationError::OriginalDestinationUnverified,
    ];
    let texts: std::collections::HashSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), all.len());
}

// ---- matching ------------------------------------------------------------------------------

#[test]
fn vpce_regional_name_is_accepted() {
    assert_eq!(host_of(&policy(), VPCE), Ok(VPCE.into()));
}

#[test]
fn vpce_zonal_name_matches_its_regional_entry_without_being_listed() {
    let p = policy();
    assert_eq!(host_of(&p, VPCE_ZONAL), Ok(VPCE.into()));
    assert_eq!(
        host_of(&p, &VPCE_ZONAL.to_ascii_uppercase()),
        Ok(VPCE.into())
    );
    let zone_f = VPCE_ZONAL.replace("-us-east-1a.", "-us-east-1f.");
    assert_eq!(host_of(&p, &zone_f), Ok(VPCE.into()));
}

#[test]
fn vpce_zonal_name_of_another_region_is_refused() {
    let p = policy();
    for authority in [
        VPCE_ZONAL.replace("-us-east-1a.", "-us-west-2a."),
        VPCE_ZONAL.replace("-us-east-1a.", "-us-east-2a."),
        VPCE_ZONAL.replace("-us-east-1a.", "-us-east-1."),
        VPCE_ZONAL.replace("-us-east-1a.", "-us-east-1ab."),
        VPCE_ZONAL.replace("-us-east-1a.", "-us-east-11."),
        VPCE_ZONAL.replace("-us-east-1a.", "us-east-1a."),
        VPCE_ZONAL.replace("-us-east-1a.", "-us-east-1a-us-east-1a."),
        VPCE_ZONAL.replace(".vpce.", ".vpcx."),
        // The zone of the listed region, but the host itself names another region.
        VPCE_ZONAL.replace(".us-east-1.vpce", ".us-west-2.vpce"),
    ] {
        refused(&p, &authority, DestinationError::NotConfigured);
    }
}

#[test]
fn zonal_rule_applies_only_to_vpc_endpoint_entries() {
    let p = policy();
    refused(
        &p,
        "bedrock-runtime-us-east-1a.us-east-1.amazonaws.com",
        DestinationError::NotConfigured,
    );
}

#[test]
fn vpce_of_another_endpoint_id_or_service_is_refused() {
    let p = policy();
    for authority in [
        VPCE.replace("0a1b2c3d4e5f67890", "0a1b2c3d4e5f67891"),
        VPCE.replace("abcd1234", "abcd1235"),
        VPCE.replace("bedrock-runtime", "bedrock-agent-runtime"),
        VPCE.replace("bedrock-runtime", "bedrock-runtime-fips"),
        VPCE.replace("us-east-1", "us-west-2"),
    ] {
        refused(&p, &authority, DestinationError::NotConfigured);
    }
}

#[test]
fn lookalike_suffixes_and_prefixes_are_refused() {
    let p = policy();
    for authority in [
        "bedrock-runtime.us-east-1.amazonaws.com.evil.example",
        "xbedrock-runtime.us-east-1.amazonaws.com",
        "bedrock-runtimex.us-east-1.amazonaws.com",
        "evil.bedrock-runtime.us-east-1.amazonaws.com",
        "bedrock-runtime.us-east-1.amazonaws.co",
        "bedrock-runtime.us-east-1.amazonaws.com.cn",
        "bedrock-runtime.us-east-1.amazonaws",
        "bedrock-runtime-us-east-1.amazonaws.com",
        "bedrock-runtime.us-west-2.amazonaws.com",
        "bedrock-runtime-fips.us-east-1.amazonaws.com",
        "bedrock.us-east-1.amazonaws.com",
        "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com.evil.example",
        "x.vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com",
    ] {
        refused(&p, authority, DestinationError::NotConfigured);
    }
}

#[test]
fn dual_stack_and_mantle_hosts_are_refused_unless_listed() {
    let p = policy();
    for authority in [
        "bedrock-runtime.us-east-1.api.aws",
        "bedrock-runtime-fips.us-east-1.api.aws",
        "bedrock-agent-runtime.us-east-1.api.aws",
        MANTLE,
    ] {
        refused(&p, authority, DestinationError::NotConfigured);
    }
    let listed = policy_with(json!([
        { "host": V6_SERVICE, "region": "eu-west-1", "private_dns": true, "cidrs": ["fd00:20::/48"] },
        { "host": MANTLE, "region": "us-east-1", "private_dns": true, "cidrs": ["10.40.0.0/16"] },
    ]));
    assert_eq!(host_of(&listed, V6_SERVICE), Ok(V6_SERVICE.into()));
    let mantle = resolve(&listed, MANTLE.as_bytes(), None).unwrap();
    assert_eq!(mantle.service, BedrockService::Mantle);
    assert_eq!(mantle.service.signing_name(), "bedrock-mantle");
    assert_eq!(mantle.kind, EndpointKind::ServiceName);
    // Listing the dual-stack name does not admit the IPv4-only one, nor the other way round.
    refused(
        &listed,
        "bedrock-runtime.eu-west-1.amazonaws.com",
        DestinationError::NotConfigured,
    );
}

#[test]
fn compiled_endpoints_know_their_kind_service_and_fips() {
    let p = policy_with(json!([
        { "host": "vpce-0a1b2c3d-abcd1234.bedrock-runtime-fips.us-east-1.vpce.amazonaws.com", "region": "us-east-1" },
        { "host": "bedrock-agent-runtime.us-east-1.amazonaws.com", "region": "us-east-1", "private_dns": true, "cidrs": ["10.0.0.0/8"] },
    ]));
    let vpce = &p.endpoints()[0];
    assert_eq!(
        (vpce.kind, vpce.service, vpce.fips),
        (EndpointKind::VpcEndpoint, BedrockService::Runtime, true)
    );
    let agent = &p.endpoints()[1];
    assert_eq!(
        (agent.kind, agent.service, agent.fips),
        (
            EndpointKind::ServiceName,
            BedrockService::AgentRuntime,
            false
        )
    );
    assert_eq!(agent.service.signing_name(), "bedrock");
}

#[test]
fn find_endpoint_takes_a_canonical_host() {
    let p = policy();
    assert!(find_endpoint(&p, VPCE_ZONAL).is_some());
    assert!(find_endpoint(&p, &VPCE_ZONAL.to_ascii_uppercase()).is_none());
}

// ---- original destination ------------------------------------------------------------------

#[test]
fn original_destination_inside_the_cidrs_is_accepted() {
    let p = policy();
    assert!(resolve(&p, SERVICE.as_bytes(), Some(ip("10.20.3.4"))).is_ok());
    assert!(resolve(&p, VPCE_CIDRS.as_bytes(), Some(ip("10.30.1.255"))).is_ok());
    // IPv4-mapped IPv6 is compared as the IPv4 address it carries.
    assert!(resolve(&p, SERVICE.as_bytes(), Some(ip("::ffff:10.20.0.9"))).is_ok());
}

#[test]
fn original_destination_outside_the_cidrs_is_refused() {
    let p = policy();
    for addr in ["10.21.0.1", "52.94.0.10", "10.30.2.1", "fd00:20::1"] {
        let authority = if addr.starts_with("10.30") {
            VPCE_CIDRS
        } else {
            SERVICE
        };
        assert_eq!(
            resolve(&p, authority.as_bytes(), Some(ip(addr))).map(|_| ()),
            Err(DestinationError::OriginalDestinationOutside),
            "{addr}"
        );
    }
}

#[test]
fn original_destination_in_an_ipv6_cidr() {
    let p = policy();
    assert!(resolve(&p, VPCE_CIDRS.as_bytes(), Some(ip("fd00:30::1234"))).is_ok());
    assert_eq!(
        resolve(&p, VPCE_CIDRS.as_bytes(), Some(ip("fd00:31::1"))).map(|_| ()),
        Err(DestinationError::OriginalDestinationOutside)
    );
}

#[test]
fn original_destination_cannot_be_vouched_for_by_an_entry_without_cidrs() {
    let p = policy();
    assert!(resolve(&p, VPCE.as_bytes(), None).is_ok());
    assert_eq!(
        resolve(&p, VPCE.as_bytes(), Some(ip("10.20.0.1"))).map(|_| ()),
        Err(DestinationError::OriginalDestinationUnverified)
    );
    assert_eq!(
        resolve(&p, VPCE_ZONAL.as_bytes(), Some(ip("10.20.0.1"))).map(|_| ()),
        Err(DestinationError::OriginalDestinationUnverified)
    );
}

// ---- upstream address (response side) ------------------------------------------------------

#[test]
fn upstream_address_parses_envoy_forms() {
    assert_eq!(
        parse_upstream_address(b"10.0.0.5:443"),
        Some(ip("10.0.0.5"))
    );
    assert_eq!(
        parse_upstream_address(b"[fd00::1]:443"),
        Some(ip("fd00::1"))
    );
    assert_eq!(
        parse_upstream_address(b"[::ffff:10.0.0.5]:8443"),
        Some(ip("::ffff:10.0.0.5"))
    );
}

#[test]
fn upstream_address_garbage_is_none() {
    for garbage in [
        &b""[..],
        b"10.0.0.5",
        b"fd00::1",
        b"fd00::1:443",
        b"[fd00::1]",
        b"10.0.0.5:",
        b"10.0.0.5:99999",
        b"010.0.0.5:443",
        b" 10.0.0.5:443",
        b"10.0.0.5:443 ",
        b"bedrock-runtime.us-east-1.amazonaws.com:443",
        b"/var/run/envoy.sock",
        b"10.0.0.5:443\0",
        b"\xff\xfe",
    ] {
        assert_eq!(parse_upstream_address(garbage), None, "{garbage:?}");
    }
}

#[test]
fn upstream_inside_the_endpoint_cidrs_is_allowed() {
    let p = policy();
    assert!(upstream_allowed(&p, SERVICE.as_bytes(), ip("10.20.0.7")));
    assert!(upstream_allowed(
        &p,
        b"Bedrock-Runtime.us-east-1.amazonaws.com:80",
        ip("10.20.0.7")
    ));
    assert!(upstream_allowed(
        &p,
        VPCE_CIDRS.as_bytes(),
        ip("fd00:30::9")
    ));
}

#[test]
fn upstream_outside_the_endpoint_cidrs_is_refused() {
    let p = policy();
    assert!(!upstream_allowed(
        &p,
        SERVICE.as_bytes(),
        ip("52.94.133.131")
    ));
    assert!(!upstream_allowed(&p, SERVICE.as_bytes(), ip("fd00:30::9")));
    assert!(!upstream_allowed(
        &p,
        VPCE_CIDRS.as_bytes(),
        ip("10.20.0.7")
    ));
}

#[test]
fn upstream_of_an_unknown_authority_is_refused() {
    let p = policy();
    assert!(!upstream_allowed(
        &p,
        b"bedrock-runtime.us-west-2.amazonaws.com",
        ip("10.20.0.7")
    ));
    assert!(!upstream_allowed(&p, b"10.20.0.7", ip("10.20.0.7")));
}

#[test]
fn upstream_of_a_vpce_entry_without_cidrs_is_not_address_checked() {
    let p = policy();
    assert!(upstream_allowed(&p, VPCE.as_bytes(), ip("10.99.0.1")));
    assert!(upstream_allowed(&p, VPCE_ZONAL.as_bytes(), ip("10.99.0.1")));
}

// ---- geographies ---------------------------------------------------------------------------

#[test]
fn geographies_serve_their_own_regions_only() {
    use destination::geography_serves;
    let cases = [
        ("us", "us-east-1", true),
        ("us", "us-west-2", true),
        ("us", "us-gov-west-1", false),
        ("us", "eu-west-1", false),
        ("us-gov", "us-gov-east-1", true),
        ("us-gov", "us-east-1", false),
        ("eu", "eu-central-1", true),
        ("eu", "us-east-1", false),
        ("eu", "eu-isoe-west-1", false),
        ("apac", "ap-southeast-2", true),
        ("jp", "ap-northeast-1", true),
        ("au", "ap-southeast-4", true),
        ("apac", "eu-west-1", false),
        ("ca", "ca-central-1", true),
        ("ca", "us-east-1", false),
        ("global", "us-east-1", true),
        ("global", "eu-west-3", true),
    ];
    for (geo, region, serves) in cases {
        assert_eq!(
            geography_serves(geo, region),
            Some(serves),
            "{geo} {region}"
        );
    }
    assert_eq!(geography_serves("sa", "sa-east-1"), None);
    assert_eq!(geography_serves("usa", "us-east-1"), None);
}
