//! Resolution of allowlisted names on the host, before the container starts.
//!
//! [`resolve_all`] looks every name up concurrently (A and AAAA, CNAME chains followed by the
//! resolver) under one overall deadline, with the system resolver (`/etc/resolv.conf`) or one
//! chosen server (`IP[:port]`, UDP with TCP fallback), or that server over TLS ([`DnsTls`],
//! DNS-over-TLS, Linux builds only: `super::dot`). Names are queried fully qualified, so no
//! search domain is appended. The result is a [`Resolution`] value: per name its addresses, the
//! smallest TTL of the answer (CNAMEs included) or why it failed. The caller decides what a failure
//! means with [`Resolution::verdict`]: a warning, or an error in strict mode.
//!
//! With DNS-over-TLS the server is queried over TLS only: a certificate that does not chain to the
//! trusted roots or is not valid for the name fails the lookup; there is no fallback to plain DNS.
//!
//! What it does not do: DNS-over-HTTPS, DNSSEC validation, or any check of what the addresses
//! are — private answers are closed later by [`super::rules`].
//!
//! The settings and errors are declared in [`super::resolver_types`] (shared with `super::dot`) and
//! re-exported here.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::{ResolverBuilder, TokioResolver};

pub use super::resolver_types::{DnsTls, ResolveError, ResolverSettings};

/// Why one name has no addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupFailure {
    /// NXDOMAIN: the name does not exist.
    NoSuchName,
    /// The name exists but has no A or AAAA record.
    NoAddresses,
    /// No answer before the deadline.
    TimedOut,
    /// The server could not be reached or answered with an error; the resolver's message.
    Failed(String),
}

impl LookupFailure {
    fn is_transport(&self) -> bool {
        matches!(self, LookupFailure::TimedOut | LookupFailure::Failed(_))
    }
}

impl std::fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupFailure::NoSuchName => f.write_str("no such name (NXDOMAIN)"),
            LookupFailure::NoAddresses => f.write_str("no A or AAAA record"),
            LookupFailure::TimedOut => f.write_str("no answer in time"),
            LookupFailure::Failed(msg) => f.write_str(msg),
        }
    }
}

/// The outcome for one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameResolution {
    pub name: String,
    /// A and AAAA addresses, sorted, without duplicates.
    pub addrs: Vec<IpAddr>,
    /// The smallest TTL in the answer (CNAME records included).
    pub min_ttl: Option<Duration>,
    pub error: Option<LookupFailure>,
}

/// The outcome for every name, in the order asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    pub names: Vec<NameResolution>,
    /// Which resolver answered, for messages.
    pub resolver: String,
}

/// One line per name: the name, its addresses and TTL, or why it failed.
impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = self.names.iter().map(|n| n.name.len()).max().unwrap_or(0);
        for n in &self.names {
            match (&n.error, n.min_ttl) {
                (Some(e), _) => writeln!(f, "{:<width$}  unresolved: {e}", n.name)?,
                (None, ttl) => {
                    let addrs: Vec<String> = n.addrs.iter().map(IpAddr::to_string).collect();
                    let ttl = ttl.map_or_else(String::new, |t| format!(" (ttl {}s)", t.as_secs()));
                    writeln!(f, "{:<width$}  {}{ttl}", n.name, addrs.join(" "))?
                }
            }
        }
        Ok(())
    }
}

impl Resolution {
    /// Every address of every name.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.names.iter().flat_map(|n| n.addrs.iter().copied())
    }

    /// The names that have no address.
    pub fn failures(&self) -> impl Iterator<Item = &NameResolution> {
        self.names.iter().filter(|n| n.addrs.is_empty())
    }

    /// What the failures mean: warnings to show, or an error when `strict` or when the resolver
    /// answered nothing at all (then the allowlist would silently be empty).
    pub fn verdict(&self, strict: bool) -> Result<Vec<String>, ResolveError> {
        let failed: Vec<String> = self
            .failures()
            .map(|n| format!("{}: {}", n.name, n.error.as_ref().map_or_else(|| "no address".into(), |e| e.to_string())))
            .collect();
        let all_transport = !self.names.is_empty()
            && self.names.iter().all(|n| n.error.as_ref().is_some_and(LookupFailure::is_transport));
        if all_transport {
            // One reason for every name (a refused connection, a certificate) is said once.
            let first = self.names[0].error.as_ref();
            let details = if self.names.len() > 1 && self.names.iter().all(|n| n.error.as_ref() == first) {
                let names: Vec<&str> = self.names.iter().map(|n| n.name.as_str()).collect();
                format!("{}: {}", names.join(", "), first.map_or_else(String::new, |e| e.to_string()))
            } else {
                failed.join("; ")
            };
            return Err(ResolveError::Unreachable { resolver: self.resolver.clone(), details });
        }
        if strict && !failed.is_empty() {
            return Err(ResolveError::Unresolved { resolver: self.resolver.clone(), details: failed.join("; ") });
        }
        Ok(failed.into_iter().map(|f| format!("allowlisted name not resolved, skipped: {f}")).collect())
    }
}

/// The chosen server: UDP with TCP fallback, or TLS only.
fn name_server(addr: SocketAddr, tls: Option<&DnsTls>) -> Result<NameServerConfig, ResolveError> {
    let mut ns = match tls {
        None => NameServerConfig::udp_and_tcp(addr.ip()),
        #[cfg(target_os = "linux")]
        Some(tls) => NameServerConfig::tls(addr.ip(), std::sync::Arc::from(tls.name.as_str())),
        #[cfg(not(target_os = "linux"))]
        Some(tls) => return Err(ResolveError::TlsUnsupported { name: tls.name.clone() }),
    };
    for conn in &mut ns.connections {
        conn.port = addr.port();
    }
    Ok(ns)
}

fn builder(settings: &ResolverSettings) -> Result<ResolverBuilder<TokioRuntimeProvider>, ResolveError> {
    let mut builder = match (settings.server, &settings.tls) {
        (Some(addr), tls) => {
            let config = ResolverConfig::from_name_servers(vec![name_server(addr, tls.as_ref())?]);
            let mut b = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
            #[cfg(target_os = "linux")]
            if let Some(tls) = tls {
                b = b.with_tls_config(super::dot::client_config(tls)?);
            }
            b.options_mut().use_hosts_file = ResolveHosts::Never;
            b
        }
        (None, Some(tls)) => return Err(ResolveError::TlsWithoutServer { name: tls.name.clone() }),
        (None, None) => TokioResolver::builder_tokio().map_err(|source| ResolveError::SystemConfig { source })?,
    };
    let opts = builder.options_mut();
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.preserve_intermediates = true;
    // Leave room for a retry inside the overall deadline.
    opts.timeout = (settings.timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    opts.attempts = 2;
    Ok(builder)
}

/// Checks, before anything starts, what a DNS-over-TLS resolver needs: that it is built in and that
/// its trust roots can be read. Plain DNS has nothing to check here.
pub fn check(settings: &ResolverSettings) -> Result<(), ResolveError> {
    match settings.tls {
        Some(_) => builder(settings).map(drop),
        None => Ok(()),
    }
}

/// A resolver with these settings, for callers that look names up one at a time and benefit from
/// its cache (the egress proxy).
pub fn resolver(settings: &ResolverSettings) -> Result<TokioResolver, ResolveError> {
    builder(settings)?.build().map_err(|source| ResolveError::SystemConfig { source })
}

/// Resolves every name concurrently; see the module doc. Errors only when no resolver can be
/// built; per-name failures are in the [`Resolution`].
pub async fn resolve_all(names: &[String], settings: &ResolverSettings) -> Result<Resolution, ResolveError> {
    let resolver = builder(settings)?.build().map_err(|source| ResolveError::SystemConfig { source })?;
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let lookups = names.iter().map(|name| {
        let resolver = &resolver;
        async move {
            let fqdn = format!("{}.", name.trim_end_matches('.'));
            let outcome = tokio::time::timeout_at(deadline, resolver.lookup_ip(fqdn)).await;
            let mut result = NameResolution { name: name.clone(), addrs: Vec::new(), min_ttl: None, error: None };
            match outcome {
                Err(_) => result.error = Some(LookupFailure::TimedOut),
                Ok(Err(e)) => result.error = Some(classify(&e)),
                Ok(Ok(lookup)) => {
                    let answers = lookup.as_lookup().answers();
                    result.min_ttl = answers.iter().map(|r| r.ttl).min().map(|t| Duration::from_secs(t.into()));
                    result.addrs = lookup.iter().collect();
                    result.addrs.sort();
                    result.addrs.dedup();
                    if result.addrs.is_empty() {
                        result.error = Some(LookupFailure::NoAddresses);
                    }
                }
            }
            result
        }
    });
    let names = futures_util::future::join_all(lookups).await;
    #[cfg(target_os = "linux")]
    let names = explain_tls_failures(settings, names).await;
    Ok(Resolution { names, resolver: settings.describe_server() })
}

/// With DNS-over-TLS, transport failures say only "no connections available": one handshake of our
/// own names the reason (an untrusted or mismatched certificate, no TLS on the port) and the fix.
#[cfg(target_os = "linux")]
async fn explain_tls_failures(settings: &ResolverSettings, mut names: Vec<NameResolution>) -> Vec<NameResolution> {
    let (Some(addr), Some(tls)) = (settings.server, settings.tls.clone()) else { return names };
    if !names.iter().any(|n| n.error.as_ref().is_some_and(LookupFailure::is_transport)) {
        return names;
    }
    let timeout = (settings.timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let name = tls.name.clone();
    let Ok(Err(why)) = tokio::task::spawn_blocking(move || super::dot::handshake(addr, &tls, timeout)).await else {
        return names;
    };
    let failure = LookupFailure::Failed(format!(
        "DNS-over-TLS handshake failed: {why} (the server's certificate must be valid for {name} and \
         issued by a system CA or one from --ca-cert / CODEX_BOX_CA_CERTS)"
    ));
    for n in names.iter_mut().filter(|n| n.error.as_ref().is_some_and(LookupFailure::is_transport)) {
        n.error = Some(failure.clone());
    }
    names
}

fn classify(e: &NetError) -> LookupFailure {
    if e.is_nx_domain() {
        LookupFailure::NoSuchName
    } else if e.is_no_records_found() {
        LookupFailure::NoAddresses
    } else if matches!(e, NetError::Timeout) {
        LookupFailure::TimedOut
    } else {
        LookupFailure::Failed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str, addrs: &[&str], error: Option<LookupFailure>) -> NameResolution {
        NameResolution {
            name: n.into(),
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            min_ttl: None,
            error,
        }
    }

    #[test]
    fn a_missing_name_is_a_warning_unless_strict() {
        let r = Resolution {
            names: vec![
                name("a.example", &["192.0.2.1"], None),
                name("b.example", &[], Some(LookupFailure::NoSuchName)),
            ],
            resolver: "DNS server 192.0.2.53:53".into(),
        };
        assert_eq!(
            r.verdict(false).unwrap(),
            ["allowlisted name not resolved, skipped: b.example: no such name (NXDOMAIN)"]
        );
        assert_eq!(
            r.verdict(true).unwrap_err().to_string(),
            "strict mode: allowlisted names not resolved by DNS server 192.0.2.53:53: b.example: no \
             such name (NXDOMAIN); fix: correct or remove them, or drop --strict to continue with a \
             warning"
        );
    }

    #[test]
    fn an_unreachable_resolver_is_an_error_even_when_not_strict() {
        let r = Resolution {
            names: vec![name("a.example", &[], Some(LookupFailure::TimedOut))],
            resolver: "DNS server 192.0.2.53:53".into(),
        };
        let e = r.verdict(false).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "no allowlisted name could be resolved by DNS server 192.0.2.53:53 (a.example: no answer in time)"
            ),
            "{e}"
        );
        assert!(Resolution::default().verdict(true).unwrap().is_empty());
        let same = Resolution {
            names: vec![
                name("a.example", &[], Some(LookupFailure::Failed("refused".into()))),
                name("b.example", &[], Some(LookupFailure::Failed("refused".into()))),
            ],
            resolver: "DNS server 192.0.2.53:53".into(),
        };
        let e = same.verdict(false).unwrap_err().to_string();
        assert!(e.starts_with("no allowlisted name could be resolved by DNS server 192.0.2.53:53 (a.example, b.example: refused); fix:"), "{e}");
    }

    #[test]
    fn a_resolution_is_shown_one_name_per_line() {
        let mut ok = name("api.example", &["192.0.2.1", "2001:db8::1"], None);
        ok.min_ttl = Some(Duration::from_secs(60));
        let r = Resolution {
            names: vec![ok, name("b.example", &[], Some(LookupFailure::NoSuchName))],
            resolver: String::new(),
        };
        assert_eq!(
            r.to_string(),
            "api.example  192.0.2.1 2001:db8::1 (ttl 60s)\nb.example    unresolved: no such name (NXDOMAIN)\n"
        );
    }
}
