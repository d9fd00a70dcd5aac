//! Merges resolved addresses and explicit IPs/CIDRs into minimal IPv4 and IPv6 sets.
//!
//! What it enforces: no duplicates, no entry covered by another, adjacent networks merged
//! (`ipnet`'s aggregation), so the ipset holds as few entries as possible. What it does not: it
//! does not decide what is reachable — private and link-local ranges stay closed by [`super::rules`]
//! unless an explicit entry covers them.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The minimal allow sets, one per family, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowSets {
    pub v4: Vec<Ipv4Net>,
    pub v6: Vec<Ipv6Net>,
}

impl AllowSets {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an address falls in either set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.v4.iter().any(|n| n.contains(&ip)),
            IpAddr::V6(ip) => self.v6.iter().any(|n| n.contains(&ip)),
        }
    }

    /// Every network of both families, v4 first.
    pub fn nets(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.v4.iter().map(|n| IpNet::V4(*n)).chain(self.v6.iter().map(|n| IpNet::V6(*n)))
    }
}

/// Aggregates host addresses and networks into [`AllowSets`]. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) are counted as IPv4.
pub fn aggregate(addrs: impl IntoIterator<Item = IpAddr>, nets: &[IpNet]) -> AllowSets {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let all = addrs.into_iter().map(IpNet::from).chain(nets.iter().copied());
    for net in all {
        match net {
            IpNet::V4(n) => v4.push(n.trunc()),
            IpNet::V6(n) => match n.addr().to_ipv4_mapped() {
                Some(ip) if n.prefix_len() >= 96 => {
                    v4.push(Ipv4Net::new(ip, n.prefix_len() - 96).unwrap_or(Ipv4Net::from(ip)).trunc())
                }
                _ => v6.push(n.trunc()),
            },
        }
    }
    AllowSets { v4: Ipv4Net::aggregate(&v4), v6: Ipv6Net::aggregate(&v6) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &AllowSets) -> Vec<String> {
        s.nets().map(|n| n.to_string()).collect()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn duplicates_and_adjacent_addresses_merge() {
        let sets = aggregate(ips(&["203.0.113.4", "203.0.113.5", "203.0.113.5", "203.0.113.6", "2001:db8::1"]), &[]);
        assert_eq!(show(&sets), ["203.0.113.4/31", "203.0.113.6/32", "2001:db8::1/128"]);
    }

    #[test]
    fn covered_entries_disappear_into_cidrs() {
        let nets: Vec<IpNet> =
            ["198.51.100.0/24", "198.51.101.0/24", "2001:db8::/32"].iter().map(|s| s.parse().unwrap()).collect();
        let sets = aggregate(ips(&["198.51.100.77", "2001:db8:1::5", "192.0.2.1"]), &nets);
        assert_eq!(show(&sets), ["192.0.2.1/32", "198.51.100.0/23", "2001:db8::/32"]);
        assert!(sets.contains("198.51.101.200".parse().unwrap()));
        assert!(!sets.contains("198.51.102.1".parse().unwrap()));
        assert_eq!(sets.len(), 3);
    }

    #[test]
    fn mapped_v6_addresses_count_as_v4() {
        let sets = aggregate(ips(&["::ffff:192.0.2.9"]), &[]);
        assert_eq!(show(&sets), ["192.0.2.9/32"]);
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(aggregate(Vec::new(), &[]).is_empty());
    }
}
