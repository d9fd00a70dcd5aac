//! The `[egress]` table of the config file, and the host's resolver: an address (`IP[:port]`) and,
//! for DNS-over-TLS, the name its certificate must be valid for.
//!
//! What it enforces: known keys only, at least one valid port, a DNS server that is an IP address
//! with an optional non-zero port (53 by default, 853 with DNS-over-TLS), a DNS-over-TLS name that is
//! a valid host name (or IP address) and never without a server. What it does not: merge with
//! flags — the caller does that once, into the policy.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::entry::parse_name;
use super::entry_types::NameError;
use super::resolver_types::{DnsTls, ResolverSettings};

/// Ports allowed to allowlisted addresses when the configuration does not say otherwise.
pub const DEFAULT_PORTS: &[u16] = &[443, 80];

/// The port of a DNS-over-TLS server given without one (RFC 7858).
pub const DOT_PORT: u16 = 853;

/// Parses `IP[:port]` (`[v6]:port` with a port), port 53 by default.
/// `origin` names where it came from (`--dns-server`, `[egress] dns_server`).
pub fn parse_dns_server(input: &str, origin: &'static str) -> Result<SocketAddr, NameError> {
    parse_server(input, origin, 53)
}

fn parse_server(input: &str, origin: &'static str, default_port: u16) -> Result<SocketAddr, NameError> {
    let s = input.trim();
    let addr = s
        .parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, default_port)))
        .map_err(|_| NameError::DnsServer { input: input.to_string(), origin })?;
    if addr.port() == 0 || addr.ip().is_unspecified() {
        return Err(NameError::DnsServer { input: input.to_string(), origin });
    }
    Ok(addr)
}

/// Where a resolver choice came from, for messages: the flags or the `[egress]` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverOrigin {
    pub server: &'static str,
    pub tls_name: &'static str,
    /// How to give a server there.
    pub example: &'static str,
}

/// `--dns-server` and `--dns-tls-name`.
pub const FROM_FLAGS: ResolverOrigin =
    ResolverOrigin { server: "--dns-server", tls_name: "--dns-tls-name", example: "--dns-server 192.0.2.53" };

/// `dns_server` and `dns_tls_name` of the `[egress]` table.
pub const FROM_CONFIG: ResolverOrigin = ResolverOrigin {
    server: "[egress] dns_server",
    tls_name: "[egress] dns_tls_name",
    example: "dns_server = \"192.0.2.53\"",
};

/// The resolver from a server (`IP[:port]`) and a DNS-over-TLS name, both from `origin` (pure):
/// none, the system resolver; a server alone, plain DNS to it (port 53 by default); with a name,
/// DNS-over-TLS to it (port 853 by default), trusting `extra_roots` besides the system's CAs. A name
/// without a server is an error: DoT goes to a resolver the user chose, never to the system's.
pub fn resolver_settings(
    server: Option<&str>,
    tls_name: Option<&str>,
    origin: ResolverOrigin,
    extra_roots: &[PathBuf],
) -> Result<ResolverSettings, NameError> {
    let tls = match (server, tls_name) {
        (None, Some(_)) => {
            return Err(NameError::DnsTlsWithoutServer {
                tls_name: origin.tls_name,
                server: origin.server,
                example: origin.example,
            })
        }
        (_, Some(name)) => {
            Some(DnsTls { name: parse_tls_name(name, origin.tls_name)?, extra_roots: extra_roots.to_vec() })
        }
        (_, None) => None,
    };
    let port = if tls.is_some() { DOT_PORT } else { 53 };
    let server = server.map(|s| parse_server(s, origin.server, port)).transpose()?;
    Ok(ResolverSettings { server, tls, ..ResolverSettings::default() })
}

/// A DNS-over-TLS name: a host name (normalised like an allowlist entry) or an IP address (for a
/// certificate issued to the address).
pub fn parse_tls_name(input: &str, origin: &'static str) -> Result<String, NameError> {
    let fail = |problem: String| NameError::DnsTlsName { input: input.to_string(), origin, problem };
    let s = input.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if s.is_empty() {
        return Err(fail("it is empty".into()));
    }
    if s.contains("://") {
        return Err(fail("it is a URL, not a host name".into()));
    }
    if s.contains('*') {
        return Err(fail("it is a wildcard, not the one name the server is checked against".into()));
    }
    parse_name(s).map_err(|p| fail(p.to_string()))
}

/// The `[egress]` table of the config file; the lead merges it into the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Extra names, IP addresses and CIDRs.
    pub allow: Vec<String>,
    /// Presets (`presets/presets.toml`) whose names are allowed.
    pub presets: Vec<String>,
    /// Names (wildcards allowed), IPs and CIDRs the egress proxy refuses even when allowed.
    pub deny: Vec<String>,
    /// TCP ports open to allowlisted addresses.
    pub ports: Vec<u16>,
    /// Resolver used on the host, and the only one reachable from the container with `allow_dns`.
    pub dns_server: Option<String>,
    /// Query `dns_server` over TLS; its certificate must be valid for this name.
    pub dns_tls_name: Option<String>,
    /// Open port 53 (UDP and TCP) to `dns_server` only.
    pub allow_dns: bool,
    /// An unresolvable name is an error rather than a warning.
    pub strict: bool,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            allow: Vec::new(),
            presets: Vec::new(),
            deny: Vec::new(),
            ports: DEFAULT_PORTS.to_vec(),
            dns_server: None,
            dns_tls_name: None,
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

    /// The resolver of `dns_server` and `dns_tls_name` ([`resolver_settings`]).
    pub fn resolver(&self, extra_roots: &[PathBuf]) -> Result<ResolverSettings, NameError> {
        resolver_settings(self.dns_server.as_deref(), self.dns_tls_name.as_deref(), FROM_CONFIG, extra_roots)
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
        assert_eq!(c.resolver(&[]).unwrap().server, Some("192.0.2.53:53".parse().unwrap()));
        assert_eq!(c.resolver(&[]).unwrap().tls, None);
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

    #[test]
    fn a_tls_name_makes_the_server_dns_over_tls_on_port_853_by_default() {
        let roots = vec![PathBuf::from("/etc/corp-ca.pem")];
        let r = resolver_settings(Some("192.0.2.53"), Some("DNS.Example.com."), FROM_FLAGS, &roots).unwrap();
        assert_eq!(r.server, Some("192.0.2.53:853".parse().unwrap()));
        assert_eq!(r.tls, Some(DnsTls { name: "dns.example.com".into(), extra_roots: roots.clone() }));
        let r = resolver_settings(Some("[2001:db8::53]:8853"), Some("2001:db8::53"), FROM_FLAGS, &roots).unwrap();
        assert_eq!(r.server, Some("[2001:db8::53]:8853".parse().unwrap()));
        assert_eq!(r.tls.unwrap().name, "2001:db8::53");
        let plain = resolver_settings(Some("192.0.2.53"), None, FROM_FLAGS, &roots).unwrap();
        assert_eq!((plain.server, plain.tls), (Some("192.0.2.53:53".parse().unwrap()), None));
        assert_eq!(resolver_settings(None, None, FROM_FLAGS, &roots).unwrap(), ResolverSettings::default());
        let c: EgressConfig =
            toml::from_str("dns_server = \"192.0.2.53\"\ndns_tls_name = \"dns.example.com\"\n").unwrap();
        assert_eq!(c.resolver(&[]).unwrap().server, Some("192.0.2.53:853".parse().unwrap()));
    }

    #[test]
    fn a_tls_name_needs_a_server_and_must_be_a_host_name() {
        let e = resolver_settings(None, Some("dns.example.com"), FROM_FLAGS, &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "--dns-tls-name needs --dns-server: DNS-over-TLS goes to a resolver you choose, never to \
             the system's; fix: add --dns-server with the resolver's IP address (port 853 unless you \
             give one), like --dns-server 192.0.2.53, or drop --dns-tls-name"
        );
        let c: EgressConfig = toml::from_str("dns_tls_name = \"dns.example.com\"\n").unwrap();
        let e = c.resolver(&[]).unwrap_err().to_string();
        assert!(e.starts_with("[egress] dns_tls_name needs [egress] dns_server:"), "{e}");
        assert!(e.contains("like dns_server = \"192.0.2.53\""), "{e}");
        let bad =
            |name: &str| resolver_settings(Some("192.0.2.53"), Some(name), FROM_FLAGS, &[]).unwrap_err().to_string();
        assert_eq!(
            bad("dns..example.com"),
            "invalid DNS-over-TLS name \"dns..example.com\" (from --dns-tls-name): it has an empty label \
             (a leading dot or two dots); fix: give the host name the resolver's certificate is issued \
             for, like dns.example.com (a port goes in --dns-server IP:PORT)"
        );
        assert!(bad("dns.example.com:853").contains("it has a port"));
        assert!(bad("https://dns.example.com/").contains("it is a URL"));
        assert!(bad("*.example.com").contains("it is a wildcard"));
        assert!(bad("dns_server.example.com").contains("'_' is not allowed"));
        assert!(bad(" ").contains("it is empty"));
        assert!(bad("dns").contains("a single label"));
        // The server is still checked, with its own message.
        let e = resolver_settings(Some("dns.example.com"), Some("dns.example.com"), FROM_FLAGS, &[]).unwrap_err();
        assert!(e.to_string().starts_with("invalid DNS server \"dns.example.com\" (from --dns-server)"), "{e}");
    }
}
