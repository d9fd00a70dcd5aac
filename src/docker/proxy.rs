//! `--egress proxy` for a container session: codex-box runs the allowlisting proxy
//! ([`crate::proxy`]) in its own process, bound to the session network's gateway (the host as seen
//! from the container) on an ephemeral port; the container's firewall opens only that address and
//! port ([`crate::egress::FirewallSpec::proxy_only`]), and the session's environment points every
//! common tool at it ([`session_env`]).
//!
//! What it enforces: no connection leaves the container except to the proxy, and the proxy
//! decides by name (see [`crate::proxy`]). What it does not: make a tool that ignores proxy
//! settings work — it fails closed (its direct connection is rejected). Other containers on the
//! same Docker network can reach the proxy's port too (they get the same allowlist, nothing more).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::EgressSettings;
use crate::egress::{self, Allowlist, Inputs, NameError, Resolution};
pub use crate::proxy::session_env;
use crate::proxy::{Limits, Log, Proxy, ProxyConfig, ProxyError, Rules};

use super::firewall::{hosts_file, SessionFirewall};

/// The proxy's rules from the session's allowlist sources: built-in names, `OPENAI_ALLOWED_DOMAINS`,
/// `--allow-domain` and `[egress] allow` (wildcards accepted), and the deny entries.
pub fn rules(settings: &EgressSettings) -> Result<Rules, NameError> {
    let inputs =
        Inputs { builtin: true, env: settings.env.as_deref(), flags: &settings.flags, config: &settings.config };
    Rules::merge(&inputs, &settings.deny, &settings.deny_config)
}

/// The session's firewall in proxy mode: a pure function of the proxy's address and the settings.
/// Only the proxy is reachable; the entrypoint checks that `--verify-blocked` (default: port 9 of
/// the gateway) is not and that the proxy is, before the agent starts. No name is pinned: the
/// proxy resolves names itself.
pub fn assemble(proxy: SocketAddr, settings: &EgressSettings, gateway: IpAddr) -> SessionFirewall {
    // Direct attempts (a tool that ignores the proxy settings) are recorded and summarised at the
    // end, like every rejected destination in allowlist mode.
    let spec = egress::FirewallSpec { log: egress::LogMode::Record, ..egress::FirewallSpec::proxy_only(proxy) };
    let texts = egress::render(&spec);
    let files = vec![
        ("firewall.ipset".to_string(), texts.ipset.into_bytes()),
        ("firewall.v4".to_string(), texts.v4.into_bytes()),
        ("firewall.v6".to_string(), texts.v6.into_bytes()),
    ];
    let blocked = settings.verify_blocked.clone().unwrap_or_else(|| SocketAddr::new(gateway, 9).to_string());
    let allowed = settings.verify_allowed.clone().unwrap_or_else(|| proxy.to_string());
    let mut env =
        vec![("CODEX_BOX_VERIFY_BLOCKED".to_string(), blocked), ("CODEX_BOX_VERIFY_ALLOWED".to_string(), allowed)];
    env.extend(session_env(proxy));
    SessionFirewall {
        allow: Allowlist::default(),
        resolution: Resolution::default(),
        files,
        hosts: hosts_file(&Resolution::default()),
        dns: Vec::new(),
        env,
    }
}

/// Where a session's proxy log goes: `<state dir>/proxy/<container>-<pid>.log` (the container's
/// first-choice name and codex-box's pid, so concurrent sessions never share a file).
pub fn log_path(state_dir: &Path, container: &str) -> PathBuf {
    state_dir.join("proxy").join(format!("{container}-{}.log", std::process::id()))
}

/// Starts the proxy for a session on `gateway`, port chosen by the kernel.
pub async fn start(rules: Rules, settings: &EgressSettings, gateway: IpAddr, log: Log) -> Result<Proxy, ProxyError> {
    let config = ProxyConfig {
        rules,
        ports: settings.ports.clone(),
        resolver: settings.resolver.clone(),
        limits: Limits::default(),
    };
    Proxy::start(SocketAddr::new(gateway, 0), config, log).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EgressSettings {
        EgressSettings {
            proxy: true,
            flags: vec!["**.pypi.org".into(), "*.npmjs.org".into()],
            env: Some("github.com".into()),
            deny: vec!["evil.pypi.org".into()],
            ..EgressSettings::default()
        }
    }

    #[test]
    fn rules_accept_wildcards_and_keep_the_builtins() {
        let r = rules(&settings()).unwrap();
        let host = |s: &str| crate::proxy::Host::parse(s).unwrap();
        assert!(r.decide(&host("api.openai.com")).allowed() && r.decide(&host("files.pypi.org")).allowed());
        assert!(r.decide(&host("registry.npmjs.org")).allowed() && !r.decide(&host("evil.pypi.org")).allowed());
        let mut bad = settings();
        bad.deny = vec!["a..b".into()];
        assert!(rules(&bad).unwrap_err().to_string().contains("a..b"));
        // The IP-firewall mode still refuses wildcards.
        assert!(super::super::firewall::allowlist(&settings())
            .unwrap_err()
            .to_string()
            .contains("wildcards cannot be enforced by an IP firewall"));
    }

    #[test]
    fn the_firewall_opens_only_the_proxy_and_verifies_both_sides() {
        let fw = assemble("172.17.0.1:40000".parse().unwrap(), &settings(), "172.17.0.1".parse().unwrap());
        let v4 = String::from_utf8(fw.files[1].1.clone()).unwrap();
        let accepts: Vec<&str> =
            v4.lines().filter(|l| l.starts_with("-A OUTPUT") && l.ends_with("-j ACCEPT")).collect();
        assert_eq!(
            accepts,
            [
                "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                "-A OUTPUT -o lo -j ACCEPT",
                "-A OUTPUT -d 172.17.0.1/32 -p tcp -m tcp --dport 40000 -m comment --comment \"codex-box proxy\" -j ACCEPT",
            ]
        );
        assert_eq!(fw.env[0], ("CODEX_BOX_VERIFY_BLOCKED".into(), "172.17.0.1:9".into()));
        assert_eq!(fw.env[1], ("CODEX_BOX_VERIFY_ALLOWED".into(), "172.17.0.1:40000".into()));
        assert!(fw.dns.is_empty() && !fw.hosts.contains("openai"));
        assert_eq!(
            log_path(Path::new("/s"), "codex_x"),
            PathBuf::from(format!("/s/proxy/codex_x-{}.log", std::process::id()))
        );
    }
}
