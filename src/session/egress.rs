//! The egress of a container session, assembled for any engine backend from the egress core
//! ([`crate::egress`], which knows nothing of sessions, proxies or policies): the
//! settings merged from flags, environment and `[egress]` ([`EgressSettings`]), the allowlist merged
//! and validated before anything exists, resolved on the host, turned into the rule texts the
//! session's entrypoint (or sidecar) applies with one restore call per table, and the names pinned
//! into /etc/hosts — or, with `--egress proxy`, the proxy's rules, its firewall that opens only the
//! proxy, and the proxy itself ([`start_proxy`]).
//!
//! Design (README "Egress"): the rules are installed in the session's network namespace before any
//! agent process exists and verified, then the agent runs with an empty bounding set and
//! no_new_privs. Only the gateway lookup (where the host is, seen from the session) is the backend's.
//!
//! What it enforces: see [`crate::egress`] and [`crate::proxy`]. What it does not: a tool that ignores
//! proxy settings fails closed; other containers on the same network can reach the proxy's port too.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::plan::CompanionAddrs;
use crate::egress::{self as core, Allowlist, Inputs, NameError, Resolution};
pub use crate::proxy::session_env;
use crate::proxy::Rules;

/// Which egress a container session gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EgressMode {
    /// The default-deny IP firewall with the allowlist (`--egress allowlist`).
    #[default]
    Allowlist,
    /// Only through the allowlisting proxy, by name (`--egress proxy`).
    Proxy,
    /// No firewall at all (`--egress open`).
    Open,
}

impl EgressMode {
    /// Parses the `--egress` value.
    pub fn parse(s: &str) -> Option<EgressMode> {
        match s {
            "allowlist" => Some(EgressMode::Allowlist),
            "proxy" => Some(EgressMode::Proxy),
            "open" => Some(EgressMode::Open),
            _ => None,
        }
    }
}

/// Egress settings merged from flags, environment and the project config.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressSettings {
    /// Which egress a session gets.
    pub mode: EgressMode,
    /// Deny entries of the proxy: `--deny-domain` values, and `deny` of the `[egress]` table.
    pub deny: Vec<String>,
    pub deny_config: Vec<String>,
    /// Print each proxy denial on stderr (`--log-denials`).
    pub log_denials: bool,
    pub flags: Vec<String>,
    pub env: Option<String>,
    pub config: Vec<String>,
    /// Presets: `--allow-preset` values, then `presets` of the `[egress]` table.
    pub presets: Vec<String>,
    pub ports: Vec<u16>,
    /// How the host resolves (the allowlist, the proxy's lookups): `--dns-server`/`--dns-tls-name`,
    /// else `dns_server`/`dns_tls_name` of the `[egress]` table, else the system resolver.
    pub resolver: core::ResolverSettings,
    pub allow_dns: bool,
    pub strict: bool,
    pub network: Option<String>,
    pub verify_blocked: Option<String>,
    pub verify_allowed: Option<String>,
    /// Shortest re-resolution interval.
    pub refresh_min: std::time::Duration,
}

impl Default for EgressSettings {
    /// Allowlist mode with the built-in names only, ports 443 and 80, the system resolver, DNS closed.
    fn default() -> Self {
        EgressSettings {
            mode: EgressMode::Allowlist,
            deny: Vec::new(),
            deny_config: Vec::new(),
            log_denials: false,
            flags: Vec::new(),
            env: None,
            config: Vec::new(),
            presets: Vec::new(),
            ports: core::config::DEFAULT_PORTS.to_vec(),
            resolver: core::ResolverSettings::default(),
            allow_dns: false,
            strict: false,
            network: None,
            verify_blocked: None,
            verify_allowed: None,
            refresh_min: std::time::Duration::from_secs(30),
        }
    }
}

/// What a session needs from the firewall.
#[derive(Debug, Clone)]
pub struct SessionFirewall {
    /// The allowlist and its first resolution, for the live refresh.
    pub allow: Allowlist,
    pub resolution: Resolution,
    /// `firewall.ipset`, `firewall.v4`, `firewall.v6` for the session directory.
    pub files: Vec<(String, Vec<u8>)>,
    /// The container's /etc/hosts: allowlisted names pinned to the host's resolution.
    pub hosts: String,
    /// The container's resolver, when DNS is allowed.
    pub dns: Vec<String>,
    /// Environment for the entrypoint's verification.
    pub env: Vec<(String, String)>,
}

/// Merges and validates the allowlist (no network, no engine): bad input fails here.
pub fn allowlist(settings: &EgressSettings) -> Result<Allowlist, NameError> {
    Allowlist::merge(&Inputs {
        builtin: true,
        env: settings.env.as_deref(),
        flags: &settings.flags,
        config: &settings.config,
        presets: &settings.presets,
    })
}

/// Resolves the allowlisted names on the host; warnings are returned, failures follow `strict`.
pub async fn resolve(
    allow: &Allowlist,
    settings: &EgressSettings,
) -> Result<(Resolution, Vec<String>), core::ResolveError> {
    let rs = settings.resolver.clone();
    let res = core::resolve_all(&allow.names(), &rs).await?;
    let warnings = res.verdict(settings.strict)?;
    Ok((res, warnings))
}

/// The session's firewall: a pure function of the allowlist, its resolution, the settings and the
/// network's gateway (closed, and the default verification target).
pub fn assemble(
    allow: &Allowlist,
    res: &Resolution,
    settings: &EgressSettings,
    gateway: Option<IpAddr>,
    services: &[SocketAddr],
) -> SessionFirewall {
    let closed: Vec<IpNet> = gateway.into_iter().map(IpNet::from).collect();
    let dns = settings.allow_dns.then_some(settings.resolver.server).flatten();
    let mut spec = core::firewall_spec(allow, res, settings.ports.clone(), dns, closed);
    spec.log = core::LogMode::Record;
    spec.services = services.to_vec();
    let texts = core::render(&spec);
    let files = vec![
        ("firewall.ipset".to_string(), texts.ipset.into_bytes()),
        ("firewall.v4".to_string(), texts.v4.into_bytes()),
        ("firewall.v6".to_string(), texts.v6.into_bytes()),
    ];
    let hosts = hosts_file(res);
    let mut env = Vec::new();
    let blocked = settings.verify_blocked.clone().or_else(|| gateway.map(|g| host_port(g, 9)));
    if let Some(b) = blocked {
        env.push(("CODEX_BOX_VERIFY_BLOCKED".to_string(), b));
    }
    if let Some(a) = &settings.verify_allowed {
        env.push(("CODEX_BOX_VERIFY_ALLOWED".to_string(), a.clone()));
    }
    SessionFirewall {
        allow: allow.clone(),
        resolution: res.clone(),
        files,
        hosts,
        dns: dns.map(|d| vec![d.ip().to_string()]).unwrap_or_default(),
        env,
    }
}

/// The whole /etc/hosts of a session (mounted read-only from the session directory; codex-box
/// rewrites it in place on refresh).
pub fn hosts_file(res: &Resolution) -> String {
    let mut out =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tcodex-box\n");
    out.push_str(&core::hosts_entries(res));
    out
}

fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The proxy's rules from the session's allowlist sources: built-in names, `OPENAI_ALLOWED_DOMAINS`,
/// `--allow-domain` and `[egress] allow` (wildcards accepted), and the deny entries.
pub fn proxy_rules(settings: &EgressSettings) -> Result<Rules, NameError> {
    let inputs = Inputs {
        builtin: true,
        env: settings.env.as_deref(),
        flags: &settings.flags,
        config: &settings.config,
        presets: &settings.presets,
    };
    Rules::merge(&inputs, &settings.deny, &settings.deny_config)
}

/// The session's firewall in proxy mode: a pure function of the proxy companion's addresses, the
/// settings and the network's gateway. Only the proxy is reachable; the entrypoint checks that
/// `--verify-blocked` (default: the companion's beacon, on the same address as the proxy) is not
/// and that the proxy is, before the agent starts. No name is pinned: the proxy resolves names.
pub fn assemble_proxy(
    proxy: SocketAddr,
    addrs: CompanionAddrs,
    settings: &EgressSettings,
    gateway: Option<IpAddr>,
) -> SessionFirewall {
    // Direct attempts (a tool that ignores the proxy settings) are recorded and summarised at the
    // end, like every rejected destination in allowlist mode.
    let spec = core::FirewallSpec {
        log: core::LogMode::Record,
        closed: gateway.map(IpNet::from).into_iter().collect(),
        services: addrs.relay.into_iter().collect(),
        ..core::FirewallSpec::proxy_only(proxy)
    };
    let texts = core::render(&spec);
    let files = vec![
        ("firewall.ipset".to_string(), texts.ipset.into_bytes()),
        ("firewall.v4".to_string(), texts.v4.into_bytes()),
        ("firewall.v6".to_string(), texts.v6.into_bytes()),
    ];
    let blocked = settings.verify_blocked.clone().unwrap_or_else(|| addrs.beacon.to_string());
    let allowed = settings.verify_allowed.clone().unwrap_or_else(|| proxy.to_string());
    let mut env =
        vec![("CODEX_BOX_VERIFY_BLOCKED".to_string(), blocked), ("CODEX_BOX_VERIFY_ALLOWED".to_string(), allowed)];
    env.extend(session_env(proxy));
    // The relay is reached directly, never through the proxy.
    if let Some(relay) = addrs.relay {
        for (k, v) in env.iter_mut().filter(|(k, _)| k.eq_ignore_ascii_case("no_proxy")) {
            let _ = k;
            v.push_str(&format!(",{}", relay.ip()));
        }
    }
    SessionFirewall {
        allow: Allowlist::default(),
        resolution: Resolution::default(),
        files,
        hosts: hosts_file(&Resolution::default()),
        dns: Vec::new(),
        env,
    }
}

/// What to add for each name the proxy refused most (from its summary): the flag, the project
/// config line, and the presets that would allow it — one line each.
pub fn allowance_hints(summary: &crate::proxy::Summary) -> Vec<String> {
    summary
        .top_denied
        .iter()
        .map(|(host, _)| {
            let mut line = format!(
                "to allow {host}: --allow-domain {host}, or allow = [\"{host}\"] under [egress] in {}",
                crate::config::PROJECT_CONFIG
            );
            let presets = core::presets::allowing(host);
            if !presets.is_empty() {
                let flags: Vec<String> = presets.iter().map(|p| format!("--allow-preset {p}")).collect();
                line.push_str(&format!(", or {} (the names that tool needs)", flags.join(" / ")));
            }
            line
        })
        .collect()
}

/// The answer of `codex-box egress why HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub allowed: bool,
    /// By which entry or rule, or why not.
    pub reason: String,
    /// What to add to allow it, when refused.
    pub hint: Option<String>,
}

fn hint_for(host: &str) -> String {
    let presets = core::presets::allowing(host);
    let mut h =
        format!("--allow-domain {host}, or allow = [\"{host}\"] under [egress] in {}", crate::config::PROJECT_CONFIG);
    if !presets.is_empty() {
        h.push_str(&format!(", or --allow-preset {}", presets.join(" / --allow-preset ")));
    }
    h
}

fn is_closed(ip: IpAddr) -> bool {
    let ranges = core::rules::CLOSED_V4.iter().chain(core::rules::CLOSED_V6).filter_map(|r| r.parse::<IpNet>().ok());
    ip.is_loopback() || ip.is_unspecified() || ranges.chain(core::rules::closed_v4_in_v6()).any(|n| n.contains(&ip))
}

/// Whether the IP firewall lets `host:port` through (pure): `host` is a name or an IP literal,
/// `addrs` what it resolves to now, `res` the allowlist's resolution.
pub fn why_allowlist(
    allow: &Allowlist,
    res: &Resolution,
    ports: &[u16],
    host: &str,
    port: u16,
    addrs: &[IpAddr],
) -> Verdict {
    let refuse = |reason: String, hint: Option<String>| Verdict { allowed: false, reason, hint };
    if !ports.contains(&port) {
        let open: Vec<String> = ports.iter().map(u16::to_string).collect();
        return refuse(
            format!("port {port} is not open (open: {})", open.join(", ")),
            Some(format!("add {port} to ports = [...] under [egress] in {}", crate::config::PROJECT_CONFIG)),
        );
    }
    let explicit = allow.nets();
    let by_name = allow.entries().iter().find(|e| e.target.to_string() == host);
    if addrs.is_empty() {
        return refuse(format!("{host} does not resolve"), None);
    }
    for ip in addrs {
        if let Some(net) = explicit.iter().find(|n| n.contains(ip)) {
            return Verdict { allowed: true, reason: format!("{ip} is inside the allowlist entry {net}"), hint: None };
        }
        if is_closed(*ip) {
            return refuse(
                format!("{ip} is a private, loopback or link-local address, closed unless an IP/CIDR entry opens it"),
                Some(format!("--allow-domain {ip} (only if you mean to open that address)")),
            );
        }
    }
    if let Some(e) = by_name {
        let sources: Vec<String> = e.sources.iter().map(ToString::to_string).collect();
        return Verdict {
            allowed: true,
            reason: format!(
                "{host} is allowlisted (from {}); its addresses are in the firewall's sets",
                sources.join(", ")
            ),
            hint: None,
        };
    }
    // Not allowlisted by name: the IP firewall still lets it through to an allowlisted name's address.
    for ip in addrs {
        if let Some(other) = res.names.iter().find(|n| n.addrs.contains(ip)) {
            return Verdict {
                allowed: true,
                reason: format!(
                    "{host} is not allowlisted, but its address {ip} is also {}'s, and the IP firewall decides by address (--egress proxy decides by name)",
                    other.name
                ),
                hint: None,
            };
        }
    }
    refuse(format!("{host} is not in the allowlist"), Some(hint_for(host)))
}

/// Whether the proxy lets `host:port` through (pure).
pub fn why_proxy(rules: &Rules, ports: &[u16], host: &str, port: u16) -> Verdict {
    if !ports.contains(&port) {
        let open: Vec<String> = ports.iter().map(u16::to_string).collect();
        return Verdict {
            allowed: false,
            reason: format!("port {port} is not allowed (allowed: {})", open.join(", ")),
            hint: Some(format!("add {port} to ports = [...] under [egress] in {}", crate::config::PROJECT_CONFIG)),
        };
    }
    let Some(h) = crate::proxy::Host::parse(host) else {
        return Verdict { allowed: false, reason: format!("{host:?} is not a host name or IP address"), hint: None };
    };
    match rules.decide(&h) {
        crate::proxy::Decision::Allow(p) => Verdict {
            allowed: true,
            reason: format!("allowed by {p}; the proxy still refuses an answer that is a private, loopback or link-local address unless an IP/CIDR entry opens it"),
            hint: None,
        },
        crate::proxy::Decision::Denied(p) => Verdict { allowed: false, reason: format!("denied by {p} (deny beats allow)"), hint: None },
        crate::proxy::Decision::NotAllowed => {
            Verdict { allowed: false, reason: format!("{host} matches no allow pattern"), hint: Some(hint_for(host)) }
        }
    }
}

/// Where a session's proxy log goes: `<state dir>/proxy/<container>-<pid>.log` (the container's
/// first-choice name and codex-box's pid, so concurrent sessions never share a file).
pub fn proxy_log_path(state_dir: &Path, container: &str) -> PathBuf {
    state_dir.join("proxy").join(format!("{container}-{}.log", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::NameResolution;

    fn settings() -> EgressSettings {
        EgressSettings {
            flags: vec!["allowed.test".into(), "198.51.100.0/28".into()],
            env: Some("github.com, repo.maven.apache.org".into()),
            resolver: crate::egress::ResolverSettings {
                server: Some("127.0.0.1:5353".parse().unwrap()),
                ..crate::egress::ResolverSettings::default()
            },
            ..EgressSettings::default()
        }
    }

    fn proxy_settings() -> EgressSettings {
        EgressSettings {
            mode: EgressMode::Proxy,
            flags: vec!["**.pypi.org".into(), "*.npmjs.org".into()],
            env: Some("github.com".into()),
            deny: vec!["evil.pypi.org".into()],
            ..EgressSettings::default()
        }
    }

    #[test]
    fn allowlist_merges_builtin_env_and_flags_and_rejects_bad_names() {
        let a = allowlist(&settings()).unwrap();
        let names = a.names();
        assert!(names.contains(&"api.openai.com".to_string()) && names.contains(&"github.com".to_string()));
        assert!(names.contains(&"allowed.test".to_string()));
        assert_eq!(a.nets(), vec!["198.51.100.0/28".parse::<IpNet>().unwrap()]);
        let mut bad = settings();
        bad.flags = vec!["a.com;rm -rf /".into()];
        let e = allowlist(&bad).unwrap_err().to_string();
        assert!(e.contains("a.com;rm -rf /") && e.contains("--allow-domain"), "{e}");
    }

    #[test]
    fn assembled_firewall_pins_names_closes_the_gateway_and_verifies() {
        let s = settings();
        let a = allowlist(&s).unwrap();
        let res = Resolution {
            names: vec![NameResolution {
                name: "allowed.test".into(),
                addrs: vec!["203.0.113.10".parse().unwrap(), "2001:db8::10".parse().unwrap()],
                min_ttl: Some(std::time::Duration::from_secs(30)),
                error: None,
            }],
            resolver: String::new(),
        };
        let fw = assemble(&a, &res, &s, Some("172.17.0.1".parse().unwrap()), &[]);
        assert!(fw.hosts.contains("203.0.113.10\tallowed.test\n2001:db8::10\tallowed.test\n"), "{}", fw.hosts);
        assert!(fw.hosts.starts_with("127.0.0.1\tlocalhost\n"));
        let v4 = String::from_utf8(fw.files[1].1.clone()).unwrap();
        assert!(v4.contains(":OUTPUT DROP"), "{v4}");
        assert!(v4.contains("172.17.0.1"), "gateway closed: {v4}");
        assert!(v4.contains("-A CODEX_REJECT -j SET --add-set codex_blocked4 dst,dst --exist"), "{v4}");
        assert!(!v4.contains("--dport 53 -j ACCEPT"), "no DNS without the opt-in: {v4}");
        let ipset = String::from_utf8(fw.files[0].1.clone()).unwrap();
        assert!(
            ipset.contains("203.0.113.10") && ipset.contains("2001:db8::10") && ipset.contains("198.51.100.0/28"),
            "{ipset}"
        );
        assert_eq!(fw.env, vec![("CODEX_BOX_VERIFY_BLOCKED".to_string(), "172.17.0.1:9".to_string())]);
        assert!(fw.dns.is_empty());
    }
    #[test]
    fn rules_accept_wildcards_and_keep_the_builtins() {
        let r = proxy_rules(&proxy_settings()).unwrap();
        let host = |s: &str| crate::proxy::Host::parse(s).unwrap();
        assert!(r.decide(&host("api.openai.com")).allowed() && r.decide(&host("files.pypi.org")).allowed());
        assert!(r.decide(&host("registry.npmjs.org")).allowed() && !r.decide(&host("evil.pypi.org")).allowed());
        let mut bad = settings();
        bad.deny = vec!["a..b".into()];
        assert!(proxy_rules(&bad).unwrap_err().to_string().contains("a..b"));
        // The IP-firewall mode still refuses wildcards.
        assert!(allowlist(&proxy_settings())
            .unwrap_err()
            .to_string()
            .contains("wildcards cannot be enforced by an IP firewall"));
    }

    #[test]
    fn why_names_the_entry_the_shared_address_or_the_missing_allowance() {
        let a = allowlist(&settings()).unwrap();
        let mut res = Resolution::default();
        for (name, ip) in [("allowed.test", "192.0.2.10"), ("github.com", "192.0.2.20")] {
            res.names.push(crate::egress::NameResolution {
                name: name.into(),
                addrs: vec![ip.parse().unwrap()],
                min_ttl: Some(std::time::Duration::from_secs(60)),
                error: None,
            });
        }
        let ip = |s: &str| vec![s.parse::<IpAddr>().unwrap()];
        let v = why_allowlist(&a, &res, &[443], "allowed.test", 443, &ip("192.0.2.10"));
        assert!(v.allowed && v.reason.contains("from --allow-domain"), "{v:?}");
        let v = why_allowlist(&a, &res, &[443], "allowed.test", 22, &ip("192.0.2.10"));
        assert!(
            !v.allowed && v.reason.contains("port 22") && v.hint.as_deref().unwrap_or("").contains("ports"),
            "{v:?}"
        );
        let v = why_allowlist(&a, &res, &[443], "cdn.other.test", 443, &ip("192.0.2.20"));
        assert!(v.allowed && v.reason.contains("also github.com's"), "shared address: {v:?}");
        let v = why_allowlist(&a, &res, &[443], "pypi.org", 443, &ip("192.0.2.99"));
        assert!(!v.allowed, "{v:?}");
        let v = why_allowlist(&a, &res, &[443], "repo1.maven.org", 443, &ip("192.0.2.98"));
        assert!(v.hint.as_deref().unwrap_or("").contains("--allow-preset gradle / --allow-preset maven"));
        let v = why_allowlist(&a, &res, &[443], "rebind.test", 443, &ip("10.0.0.5"));
        assert!(!v.allowed && v.reason.contains("private"), "{v:?}");
        let v = why_allowlist(&a, &res, &[443], "198.51.100.3", 443, &ip("198.51.100.3"));
        assert!(v.allowed && v.reason.contains("198.51.100.0/28"), "explicit CIDR: {v:?}");
        let v = why_allowlist(&a, &res, &[443], "gone.test", 443, &[]);
        assert!(!v.allowed && v.reason.contains("does not resolve"));

        let rules = proxy_rules(&proxy_settings()).unwrap();
        assert!(why_proxy(&rules, &[443], "files.pypi.org", 443).allowed);
        let v = why_proxy(&rules, &[443], "evil.pypi.org", 443);
        assert!(!v.allowed && v.reason.contains("deny"), "{v:?}");
        let v = why_proxy(&rules, &[443], "crates.io", 443);
        assert!(!v.allowed && v.hint.as_deref().unwrap_or("").contains("--allow-preset crates"), "{v:?}");
        assert!(!why_proxy(&rules, &[443], "files.pypi.org", 80).allowed);
    }

    #[test]
    fn each_refused_name_gets_the_flag_the_config_line_and_a_preset() {
        let summary = crate::proxy::Summary {
            denied: 3,
            top_denied: vec![("github.com".into(), 2), ("evil.test".into(), 1)],
            ..Default::default()
        };
        let hints = allowance_hints(&summary);
        assert_eq!(
            hints[0],
            "to allow github.com: --allow-domain github.com, or allow = [\"github.com\"] under [egress] in .codex/codex-box.toml, or --allow-preset github (the names that tool needs)"
        );
        assert!(hints[1].ends_with("in .codex/codex-box.toml"), "{}", hints[1]);
    }

    #[test]
    fn presets_join_the_allowlist_and_the_proxy_rules_with_their_source() {
        let s = EgressSettings { presets: vec!["maven".into()], ..settings() };
        let a = allowlist(&s).unwrap();
        let e = a.entries().iter().find(|e| e.target.to_string() == "repo1.maven.org").unwrap();
        assert_eq!(e.sources, [crate::egress::Source::Preset("maven")]);
        let p = EgressSettings { presets: vec!["github".into()], ..proxy_settings() };
        let rules = proxy_rules(&p).unwrap();
        assert!(matches!(
            rules.decide(&crate::proxy::Host::parse("x.githubusercontent.com").unwrap()),
            crate::proxy::Decision::Allow(_)
        ));
        let bad = EgressSettings { presets: vec!["gitlab".into()], ..settings() };
        assert!(allowlist(&bad).unwrap_err().to_string().contains("unknown egress preset \"gitlab\""));
    }

    #[test]
    fn the_firewall_opens_only_the_proxy_and_verifies_both_sides() {
        let proxy = "172.17.0.5:3128".parse().unwrap();
        let addrs = CompanionAddrs {
            proxy: Some(proxy),
            beacon: "172.17.0.5:3129".parse().unwrap(),
            relay: Some("172.17.0.5:3130".parse().unwrap()),
        };
        let fw = assemble_proxy(proxy, addrs, &proxy_settings(), Some("172.17.0.1".parse().unwrap()));
        let v4 = String::from_utf8(fw.files[1].1.clone()).unwrap();
        let accepts: Vec<&str> =
            v4.lines().filter(|l| l.starts_with("-A OUTPUT") && l.ends_with("-j ACCEPT")).collect();
        assert_eq!(
            accepts,
            [
                "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                "-A OUTPUT -o lo -j ACCEPT",
                "-A OUTPUT -d 172.17.0.5/32 -p tcp -m tcp --dport 3128 -m comment --comment \"codex-box proxy\" -j ACCEPT",
                "-A OUTPUT -d 172.17.0.5/32 -p tcp -m tcp --dport 3130 -m comment --comment \"codex-box service\" -j ACCEPT",
            ]
        );
        let no_proxy = fw.env.iter().find(|(k, _)| k == "NO_PROXY").map(|(_, v)| v.as_str());
        assert!(no_proxy.is_some_and(|v| v.ends_with(",172.17.0.5")), "the relay is reached directly: {no_proxy:?}");
        // The blocked target is the companion's beacon: the same address, a port only the firewall closes.
        assert_eq!(fw.env[0], ("CODEX_BOX_VERIFY_BLOCKED".into(), "172.17.0.5:3129".into()));
        assert_eq!(fw.env[1], ("CODEX_BOX_VERIFY_ALLOWED".into(), "172.17.0.5:3128".into()));
        assert!(fw.env.contains(&("HTTPS_PROXY".into(), "http://172.17.0.5:3128".into())), "{:?}", fw.env);
        assert!(fw.dns.is_empty() && !fw.hosts.contains("openai"));
        assert_eq!(
            proxy_log_path(Path::new("/s"), "codex_x"),
            PathBuf::from(format!("/s/proxy/codex_x-{}.log", std::process::id()))
        );
    }
}
