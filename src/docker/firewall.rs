//! The egress firewall of a container session, assembled from the egress core (`crate::egress`):
//! the allowlist is merged and validated before anything exists, resolved on the host, turned into
//! rule texts the entrypoint applies with one restore call per table, and pinned into /etc/hosts.
//!
//! Design (README "Egress"): a root entrypoint installs the rules in the session's network namespace
//! before any agent process exists, verifies them, then execs the agent with an empty bounding set and
//! no_new_privs — no process of the session can get NET_ADMIN back. NET_ADMIN stays in the container's
//! own capability set, so a *host* user with Docker access (`docker exec -u 0`) could change the rules.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::EgressSettings;
use crate::egress::{self, Allowlist, Inputs, Resolution};

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
pub fn allowlist(settings: &EgressSettings) -> Result<Allowlist, egress::NameError> {
    Allowlist::merge(&Inputs {
        builtin: true,
        env: settings.env.as_deref(),
        flags: &settings.flags,
        config: &settings.config,
    })
}

/// Resolves the allowlisted names on the host; warnings are returned, failures follow `strict`.
pub async fn resolve(
    allow: &Allowlist,
    settings: &EgressSettings,
) -> Result<(Resolution, Vec<String>), egress::ResolveError> {
    let rs = settings.resolver.clone();
    let res = egress::resolve_all(&allow.names(), &rs).await?;
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
) -> SessionFirewall {
    let closed: Vec<IpNet> = gateway.into_iter().map(IpNet::from).collect();
    let dns = settings.allow_dns.then_some(settings.resolver.server).flatten();
    let mut spec = egress::firewall_spec(allow, res, settings.ports.clone(), dns, closed);
    spec.log = egress::LogMode::Record;
    let texts = egress::render(&spec);
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
    out.push_str(&egress::hosts_entries(res));
    out
}

fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The gateway of the session's network (the host, seen from the container).
pub async fn gateway(docker: &bollard::Docker, network: Option<&str>) -> Option<IpAddr> {
    let net = docker.inspect_network(network.unwrap_or("bridge"), None).await.ok()?;
    let configs: Vec<(Option<String>, Option<String>)> =
        net.ipam?.config?.into_iter().map(|c| (c.gateway, c.subnet)).collect();
    gateway_from_ipam(&configs)
}

/// The gateway from a network's IPAM entries (gateway, subnet): the one given, else — as on the
/// engine's default bridge, whose IPAM config lists only the subnet — the subnet's first address,
/// which the engine gives its bridge.
pub fn gateway_from_ipam(configs: &[(Option<String>, Option<String>)]) -> Option<IpAddr> {
    let given = configs.iter().find_map(|(g, _)| g.as_deref()?.parse().ok());
    given.or_else(|| {
        configs.iter().find_map(|(_, subnet)| match subnet.as_deref()?.parse::<IpNet>().ok()? {
            IpNet::V4(n) if n.prefix_len() < 31 => Some(IpAddr::V4((u32::from(n.network()) + 1).into())),
            IpNet::V6(n) if n.prefix_len() < 127 => Some(IpAddr::V6((u128::from(n.network()) + 1).into())),
            _ => None,
        })
    })
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

    #[test]
    fn the_gateway_is_given_or_the_subnets_first_address() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(gateway_from_ipam(&[(None, some("172.17.0.0/16"))]), Some("172.17.0.1".parse().unwrap()));
        assert_eq!(
            gateway_from_ipam(&[(some("198.18.0.254"), some("198.18.0.0/24"))]),
            Some("198.18.0.254".parse().unwrap())
        );
        assert_eq!(
            gateway_from_ipam(&[(None, some("2001:db8::/64")), (some("10.0.0.1"), None)]),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(gateway_from_ipam(&[(None, some("fd00::/64"))]), Some("fd00::1".parse().unwrap()));
        assert_eq!(gateway_from_ipam(&[(None, None)]), None);
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
        let fw = assemble(&a, &res, &s, Some("172.17.0.1".parse().unwrap()));
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
}
