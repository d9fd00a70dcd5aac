//! The egress allowlist of a container session (issue 10), declared as data.
//!
//! The pipeline is: [`names`] merges the allowlist sources (built-in OpenAI names,
//! `OPENAI_ALLOWED_DOMAINS`, `--allow-domain`, the `[egress]` table of [`config`]), each entry
//! validated by [`entry`] (the types of an entry are in [`entry_types`]); [`resolve`] turns names
//! into addresses on the host (over DNS-over-TLS on Linux when asked: `dot`; the resolver's
//! settings and errors are in [`resolver_types`]); [`mod@aggregate`] merges addresses and literal
//! CIDRs into minimal v4/v6 sets; [`rules`] renders the `ipset restore`, `iptables-restore` and
//! `ip6tables-restore` texts the in-container entrypoint applies; [`hosts`] pins the names into
//! `/etc/hosts`; [`refresh`] computes live-refresh diffs as TTLs expire; [`counters`] summarises
//! what the firewall blocked. [`firewall_spec`] composes them.
//!
//! What it enforces: outbound TCP only to allowlisted addresses on the configured ports, DNS only to
//! one chosen resolver (off by default), private, link-local and gateway ranges closed unless listed
//! explicitly. What it does not: it filters by IP, not by name — anything else served from an
//! allowlisted address (a shared CDN front, a cloud load balancer) is reachable too, and a name
//! whose addresses change after resolution is only followed by a refresh. Nothing here touches the
//! kernel; the texts are applied by the caller.

pub mod aggregate;
pub mod config;
pub mod counters;
#[cfg(target_os = "linux")]
pub mod dot;
pub mod entry;
pub mod entry_types;
pub mod hosts;
pub mod names;
pub mod presets;
pub mod refresh;
pub mod resolve;
pub mod resolver_types;
pub mod rules;

pub use aggregate::{aggregate, AllowSets};
pub use config::{parse_dns_server, EgressConfig, DEFAULT_PORTS};
pub use entry::parse_entry;
pub use entry_types::{NameError, Source, Target};
pub use hosts::hosts_entries;
pub use names::{Allowlist, Entry, Inputs, BUILTIN_NAMES};
pub use refresh::{plan_refresh, RefreshPlan, RefreshSettings, RefreshState, SetEntry};
pub use resolve::{resolve_all, NameResolution, Resolution};
pub use resolver_types::{DnsTls, ResolveError, ResolverSettings};
pub use rules::{render, FirewallSpec, LogMode, RuleTexts};

/// The firewall for an allowlist once its names are resolved: resolved addresses and explicit
/// entries aggregated into the sets, explicit entries kept so those inside closed ranges are
/// opened. `closed` adds ranges to close (the Docker gateway, the host's addresses); `dns` is the
/// resolver to open port 53 to, `None` unless the user opted in.
pub fn firewall_spec(
    allowlist: &Allowlist,
    resolution: &Resolution,
    ports: Vec<u16>,
    dns: Option<std::net::SocketAddr>,
    closed: Vec<ipnet::IpNet>,
) -> FirewallSpec {
    let explicit = allowlist.nets();
    FirewallSpec {
        sets: aggregate(resolution.addresses(), &explicit),
        explicit,
        ports,
        dns,
        closed,
        log: LogMode::Off,
        only: Vec::new(),
        services: Vec::new(),
    }
}

/// Every error of the egress pipeline, for callers that handle them together.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Counter(#[from] counters::CounterError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::resolve::NameResolution;

    #[test]
    fn the_pipeline_composes() {
        let flags = vec!["10.1.2.3".to_string(), "pypi.org".to_string()];
        let list = Allowlist::merge(&Inputs { flags: &flags, ..Inputs::default() }).unwrap();
        let resolution = Resolution {
            names: vec![NameResolution {
                name: "pypi.org".into(),
                addrs: vec!["203.0.113.5".parse().unwrap()],
                min_ttl: None,
                error: None,
            }],
            resolver: String::new(),
        };
        let spec = firewall_spec(&list, &resolution, vec![443], None, vec![]);
        let shown: Vec<String> = spec.sets.nets().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["10.1.2.3/32", "203.0.113.5/32"]);
        let v4 = render(&spec).v4;
        assert!(v4.contains("-A OUTPUT -d 10.1.2.3/32 -p tcp -m multiport --dports 443 -m comment --comment \"codex-box explicit\" -j ACCEPT\n"));
        assert_eq!(hosts_entries(&resolution).lines().nth(1), Some("203.0.113.5\tpypi.org"));
    }
}
