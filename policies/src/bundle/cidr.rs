//! IPv4 and IPv6 CIDR blocks, parsed strictly.
//!
//! Addresses are read with the standard library's parsers (which refuse leading zeros in IPv4
//! octets, so `010.0.0.0` cannot mean two different networks). The prefix length is required,
//! decimal without leading zeros, and host bits must be zero: `10.20.0.1/16` is refused because
//! the author may have meant `10.20.0.1/32`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cidr {
    /// An IPv4 block.
    V4 {
        /// The network address, host bits zero.
        network: u32,
        /// The prefix length, 0 to 32.
        prefix: u8,
    },
    /// An IPv6 block.
    V6 {
        /// The network address, host bits zero.
        network: u128,
        /// The prefix length, 0 to 128.
        prefix: u8,
    },
}

impl Cidr {
    /// Parse `address/prefix`.
    pub(crate) fn parse(text: &str) -> Result<Cidr, String> {
        let Some((addr, prefix)) = text.split_once('/') else {
            return Err(format!(
                "{text:?} has no prefix length (write {text}/32 or {text}/128 for one address)"
            ));
        };
        let prefix = parse_prefix(prefix).ok_or_else(|| {
            format!("{text:?}: prefix length must be a decimal number without leading zeros")
        })?;
        if let Ok(v4) = addr.parse::<Ipv4Addr>() {
            if prefix > 32 {
                return Err(format!("{text:?}: IPv4 prefix length must be at most 32"));
            }
            let bits = u32::from(v4);
            let network = bits & mask32(prefix);
            if network != bits {
                return Err(format!(
                    "{text:?} has host bits set (did you mean {}/{prefix}?)",
                    Ipv4Addr::from(network)
                ));
            }
            return Ok(Cidr::V4 { network, prefix });
        }
        if let Ok(v6) = addr.parse::<Ipv6Addr>() {
            if prefix > 128 {
                return Err(format!("{text:?}: IPv6 prefix length must be at most 128"));
            }
            let bits = u128::from(v6);
            let network = bits & mask128(prefix);
            if network != bits {
                return Err(format!(
                    "{text:?} has host bits set (did you mean {}/{prefix}?)",
                    Ipv6Addr::from(network)
                ));
            }
            return Ok(Cidr::V6 { network, prefix });
        }
        Err(format!("{text:?} is not an IPv4 or IPv6 address"))
    }

    /// Is `addr` inside this block? An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
    /// compared as the IPv4 address it carries.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match (self, addr) {
            (Cidr::V4 { network, prefix }, IpAddr::V4(a)) => {
                u32::from(a) & mask32(*prefix) == *network
            }
            (Cidr::V6 { network, prefix }, IpAddr::V6(a)) => {
                u128::from(a) & mask128(*prefix) == *network
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cidr::V4 { network, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(*network)),
            Cidr::V6 { network, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(*network)),
        }
    }
}

fn parse_prefix(text: &str) -> Option<u8> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_cover_the_edges() {
        assert_eq!(mask32(0), 0);
        assert_eq!(mask32(32), u32::MAX);
        assert_eq!(mask32(8), 0xff00_0000);
        assert_eq!(mask128(0), 0);
        assert_eq!(mask128(128), u128::MAX);
    }

    #[test]
    fn contains_respects_prefix() {
        let c = Cidr::parse("10.20.0.0/16").unwrap();
        assert!(c.contains("10.20.255.1".parse().unwrap()));
        assert!(!c.contains("10.21.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.20.0.9".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn refuses_ambiguous_forms() {
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("10.0.0.0/08").is_err());
        assert!(Cidr::parse("010.0.0.0/8").is_err());
        assert!(Cidr::parse("10.0.0.1/8").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("fd00::/8").is_ok());
        assert!(Cidr::parse("fd00::1/8").is_err());
        assert!(Cidr::parse("fd00::/129").is_err());
        assert!(Cidr::parse("[fd00::]/8").is_err());
    }
}
