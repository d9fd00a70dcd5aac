//! The `[egress]` table of the config file, and the resolver address (`IP[:port]`).
//!
//! What it enforces: known keys only, at least one valid port, a DNS server that is an IP address
//! with an optional non-zero port. What it does not: merge with flags — the caller does that once,
//! into the policy.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::names::NameError;

/// Ports allowed to allowlisted addresses when the configuration does not say otherwise.
pub const DEFAULT_PORTS: &[u16] = &[443, 80];

/// Parses `IP[:port]` (`[v6]:port` with a port), port 53 by default.
/// `origin` names where it came from (`--dns-server`, `[egress] dns_server`).
pub fn parse_dns_server(input: &str, origin: &'static str) -> Result<SocketAddr, NameError> {
    let s = input.trim();
    let addr = s
        .parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| NameError::DnsServer { input: input.to_string(), origin })?;
    if addr.port() == 0 || addr.ip().is_unspecified() {
        return Err(NameError::DnsServer { input: input.to_string(), origin });
    }
    Ok(addr)
}

/// The `[egress]` table of the config file; the lead merges it into the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Extra names, IP addresses and CIDRs.
    pub allow: Vec<String>,
    /// Names (wildcards allowed), IPs and CIDRs the egress proxy refuses even when allowed.
    pub deny: Vec<String>,
    /// TCP ports open to allowlisted addresses.
    pub ports: Vec<u16>,
    /// Resolver used on the host, and the only one reachable from the container with `allow_dns`.
    pub dns_server: Option<String>,
    /// Open port 53 (UDP and TCP) to `dns_server` only.
    pub allow_dns: bool,
    /// An unresolvable name is an error rather than a warning.
    pub strict: bool,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            allow: Vec::new(),
            deny: Vec::new(),
            ports: DEFAULT_PORTS.to_vec(),
            dns_server: None,
            allow_dns: false,
            strict: false,
        }
    }
}

impl EgressConfig {
    /// The ports, de-duplicated in order; none, or port 0, is an error.
    pub fn ports(&self) -> Result<Vec<u16>, NameError> {
        if self.ports.is_empty() || self.ports.contains(&0) {
            return Err(NameError::Ports { ports: self.ports.clone() });
        }
        let mut ports = self.ports.clone();
        let mut seen = std::collections::BTreeSet::new();
        ports.retain(|p| seen.insert(*p));
        Ok(ports)
    }

    /// The parsed `dns_server`, if any.
    pub fn dns_server(&self) -> Result<Option<SocketAddr>, NameError> {
        self.dns_server.as_deref().map(|s| parse_dns_server(s, "[egress] dns_server")).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_table_parses_with_defaults() {
        let c: EgressConfig = toml::from_str("").unwrap();
        assert_eq!(c, EgressConfig::default());
        assert_eq!(c.ports().unwrap(), vec![443, 80]);
        let c: EgressConfig = toml::from_str(
            "allow = [\"pypi.org\"]\nports = [443, 443, 8443]\ndns_server = \"192.0.2.53\"\nallow_dns = true\nstrict = true\n",
        )
        .unwrap();
        assert_eq!(c.ports().unwrap(), vec![443, 8443]);
        assert_eq!(c.dns_server().unwrap(), Some("192.0.2.53:53".parse().unwrap()));
        assert!(toml::from_str::<EgressConfig>("allwo = []").is_err());
        let bad = EgressConfig { ports: vec![], ..EgressConfig::default() };
        assert!(bad.ports().unwrap_err().to_string().contains("like ports = [443, 80]"));
    }

    #[test]
    fn dns_servers_parse_with_optional_port() {
        let p = |s| parse_dns_server(s, "--dns-server");
        assert_eq!(p("192.0.2.53").unwrap(), "192.0.2.53:53".parse().unwrap());
        assert_eq!(p("192.0.2.53:5353").unwrap(), "192.0.2.53:5353".parse().unwrap());
        assert_eq!(p("2001:db8::53").unwrap(), "[2001:db8::53]:53".parse().unwrap());
        assert_eq!(p("[2001:db8::53]:54").unwrap(), "[2001:db8::53]:54".parse().unwrap());
        assert_eq!(
            p("dns.example.com").unwrap_err().to_string(),
            "invalid DNS server \"dns.example.com\" (from --dns-server): expected an IP address \
             and an optional port, like 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53"
        );
    }
}
