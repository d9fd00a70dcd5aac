//! codex-box's companion: this same binary (built static for Linux), run by the engine in a small
//! container of its own on a session's network (`codex-box companion`, hidden). It is what makes
//! egress independent of where the engine runs — on this host, in a rootless namespace, in a VM:
//!
//! * the **beacon** (`--beacon PORT`): a TCP listener that accepts and closes. It is the firewall
//!   verification's blocked target — something the session's network really reaches when no
//!   firewall is in force, so the verification can fail on every engine (a closed port would refuse
//!   whether a firewall is there or not). One per network, reused by every session on it.
//! * the **proxy** (`--proxy PORT`, proxy mode): the allowlisting proxy of [`crate::proxy`], built
//!   from a [`ProxyJob`] in the environment with the same merge the host runs, resolving names from
//!   the session's network. Every decision is one log line on stdout, which codex-box on the host
//!   follows into the session's log file and summary. One per session.
//!
//! It runs as nobody, read-only, without capabilities, in its own PID namespace: the agent can only
//! connect to it (and, through the firewall, only to the proxy port).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::egress::{DnsTls, Inputs, ResolverSettings};
use crate::policy::DomainPolicy;
use crate::proxy::{Log, Proxy, ProxyConfig, Rules};

/// The beacon's port in the companion.
pub const BEACON_PORT: u16 = 3129;
/// The proxy's port in the companion.
pub const PROXY_PORT: u16 = 3128;
/// The relay's port in the companion.
pub const RELAY_PORT: u16 = 3130;
/// The environment variable carrying the [`ProxyJob`] (JSON).
pub const JOB_ENV: &str = "CODEX_BOX_PROXY_JOB";
/// The environment variable carrying the [`RelayJob`] (JSON).
pub const RELAY_ENV: &str = "CODEX_BOX_RELAY_JOB";
/// The line the companion prints once it listens.
pub const READY: &str = "codex-box companion: ready";
/// Where the companion writes the DNS-over-TLS roots it was given (its only writable place).
const ROOTS_DIR: &str = "/tmp";

/// What the proxy companion serves: the proxy's inputs as the session's policy holds them (merged
/// again inside with the same code, so both sides agree), and its resolver.
// Unknown fields are refused: a companion built from an older codex-box fails to start rather than
// serve a policy it does not fully understand (e.g. ignore deny entries or presets it predates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyJob {
    pub env: Option<String>,
    pub flags: Vec<String>,
    pub config: Vec<String>,
    pub presets: Vec<String>,
    pub deny: Vec<String>,
    pub deny_config: Vec<String>,
    pub ports: Vec<u16>,
    pub dns_server: Option<SocketAddr>,
    pub dns_tls_name: Option<String>,
    /// PEM text of the CA files trusted for DNS-over-TLS besides the image's bundle.
    pub dns_roots_pem: Vec<String>,
    pub timeout_ms: u64,
    /// The hosts secrets are bound to (absent without secrets, so an older companion still serves
    /// a job without them — and refuses one with them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intercept: Option<InterceptJob>,
}

/// What the proxy needs to add secrets ([`crate::proxy::intercept`]): each bound host's certificate
/// (signed by the session's CA, whose key is already gone) and key, the headers to add there, and
/// the CA files the upstream side trusts besides the image's bundle.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterceptJob {
    pub hosts: Vec<BoundHostJob>,
    /// PEM text of the session's extra CA files.
    pub roots_pem: Vec<String>,
}

/// One bound host of an [`InterceptJob`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundHostJob {
    pub host: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// (secret name, header, whole header value).
    pub headers: Vec<(String, String, String)>,
}

impl std::fmt::Debug for InterceptJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<(&str, Vec<&str>)> = self
            .hosts
            .iter()
            .map(|h| (h.host.as_str(), h.headers.iter().map(|(s, _, _)| s.as_str()).collect()))
            .collect();
        f.debug_struct("InterceptJob").field("hosts", &hosts).finish()
    }
}

#[cfg(target_os = "linux")]
impl InterceptJob {
    /// The job for a session's secrets and its freshly made CA; `roots_pem`: the session's CA files.
    pub fn new(secrets: &[crate::secrets::Secret], ca: &crate::secrets::ca::SessionCa, roots_pem: Vec<String>) -> Self {
        let hosts = ca
            .leaves
            .iter()
            .map(|l| BoundHostJob {
                host: l.host.clone(),
                cert_pem: l.cert_pem.clone(),
                key_pem: l.key_pem.clone(),
                headers: secrets
                    .iter()
                    .filter(|s| s.hosts.contains(&l.host))
                    .map(|s| (s.name.clone(), s.header.clone(), s.value.expose().to_string()))
                    .collect(),
            })
            .collect();
        InterceptJob { hosts, roots_pem }
    }

    /// The proxy's side of it, the extra roots written as files in `roots_dir`.
    pub fn intercept(&self, roots_dir: &Path) -> Result<crate::proxy::intercept::Intercept> {
        use crate::proxy::intercept::{server_config, BoundHost, Injection};
        let mut extra_roots = Vec::new();
        for (i, pem) in self.roots_pem.iter().enumerate() {
            let path = roots_dir.join(format!("codex-box-secret-root-{i}.pem"));
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            extra_roots.push(path);
        }
        let mut upstream =
            crate::egress::dot::client_config(&DnsTls { name: "the hosts secrets are bound to".into(), extra_roots })?;
        upstream.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut hosts = std::collections::HashMap::new();
        for h in &self.hosts {
            let server = std::sync::Arc::new(server_config(&h.host, &h.cert_pem, &h.key_pem)?);
            let injections = h
                .headers
                .iter()
                .map(|(secret, header, value)| Injection {
                    secret: secret.clone(),
                    header: header.clone(),
                    value: value.clone(),
                })
                .collect();
            hosts.insert(h.host.clone(), BoundHost { server, injections });
        }
        Ok(crate::proxy::intercept::Intercept { hosts, upstream: std::sync::Arc::new(upstream) })
    }
}

impl ProxyJob {
    /// The job for a session's settings; `roots_pem` is the text of `resolver.tls.extra_roots`.
    pub fn new(s: &crate::session::egress::EgressSettings, roots_pem: Vec<String>) -> ProxyJob {
        ProxyJob {
            env: s.env.clone(),
            flags: s.flags.clone(),
            config: s.config.clone(),
            presets: s.presets.clone(),
            deny: s.deny.clone(),
            deny_config: s.deny_config.clone(),
            ports: s.ports.clone(),
            dns_server: s.resolver.server,
            dns_tls_name: s.resolver.tls.as_ref().map(|t| t.name.clone()),
            dns_roots_pem: roots_pem,
            timeout_ms: s.resolver.timeout.as_millis() as u64,
            intercept: None,
        }
    }

    /// The proxy's rules: the session's merge ([`crate::session::egress::proxy_rules`]).
    pub fn rules(&self) -> Result<Rules, crate::egress::NameError> {
        let inputs = Inputs {
            builtin: true,
            env: self.env.as_deref(),
            flags: &self.flags,
            config: &self.config,
            presets: &self.presets,
        };
        Rules::merge(&inputs, &self.deny, &self.deny_config)
    }

    /// The proxy's configuration, its DNS-over-TLS roots written as files in `roots_dir`.
    pub fn proxy_config(&self, roots_dir: &Path) -> Result<ProxyConfig> {
        let mut extra_roots = Vec::new();
        for (i, pem) in self.dns_roots_pem.iter().enumerate() {
            let path = roots_dir.join(format!("codex-box-root-{i}.pem"));
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            extra_roots.push(path);
        }
        let resolver = ResolverSettings {
            server: self.dns_server,
            tls: self.dns_tls_name.clone().map(|name| DnsTls { name, extra_roots }),
            timeout: std::time::Duration::from_millis(self.timeout_ms),
        };
        let domains = DomainPolicy { rules: self.rules()?, ports: self.ports.clone(), resolver };
        #[allow(unused_mut)]
        let mut config = domains.proxy_config();
        match &self.intercept {
            None => {}
            #[cfg(target_os = "linux")]
            Some(i) => config.intercept = Some(std::sync::Arc::new(i.intercept(roots_dir)?)),
            #[cfg(not(target_os = "linux"))]
            Some(_) => anyhow::bail!("secrets are added by a Linux companion only"),
        }
        Ok(config)
    }
}

/// `codex-box companion --beacon PORT [--proxy PORT] [--relay PORT]` (the engine starts it; it is not
/// a command for users, so it is parsed here, outside the CLI's help, manual and completions):
/// the ports of the beacon, the proxy and the relay.
pub fn parse_args(args: &[String]) -> Result<(u16, Option<u16>, Option<u16>)> {
    let (mut beacon, mut proxy, mut relay) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let port = it.next().and_then(|p| p.parse::<u16>().ok()).with_context(|| format!("{flag} needs a port"))?;
        match flag.as_str() {
            "--beacon" => beacon = Some(port),
            "--proxy" => proxy = Some(port),
            "--relay" => relay = Some(port),
            other => anyhow::bail!("unknown companion flag {other}"),
        }
    }
    Ok((beacon.context("--beacon PORT is required")?, proxy, relay))
}

/// What a session's companion serves besides its beacon.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompanionJob {
    pub proxy: Option<ProxyJob>,
    pub relay: Option<RelayJob>,
}

/// The API relay's job ([`crate::proxy::relay`]): where Codex's requests go, with which key, and
/// whom to trust for the upstream's certificate besides the image's bundle.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayJob {
    /// `https://host[:port][/prefix]`.
    pub upstream: String,
    pub key: String,
    /// PEM text of the session's extra CA files.
    pub roots_pem: Vec<String>,
    /// The upstream host's addresses as the host resolved them (empty: the relay resolves).
    pub upstream_addrs: Vec<std::net::IpAddr>,
    pub dns_server: Option<SocketAddr>,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for RelayJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayJob").field("upstream", &self.upstream).field("key", &"<hidden>").finish()
    }
}

#[cfg(target_os = "linux")]
impl RelayJob {
    /// The relay's configuration, the extra roots written as files in `roots_dir`.
    pub fn relay_config(&self, roots_dir: &Path) -> Result<crate::proxy::relay::RelayConfig> {
        let upstream = crate::proxy::relay::Upstream::parse(&self.upstream).map_err(anyhow::Error::msg)?;
        let mut extra_roots = Vec::new();
        for (i, pem) in self.roots_pem.iter().enumerate() {
            let path = roots_dir.join(format!("codex-box-relay-root-{i}.pem"));
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            extra_roots.push(path);
        }
        let tls = crate::egress::dot::client_config(&DnsTls { name: upstream.host.clone(), extra_roots })?;
        let resolver = ResolverSettings {
            server: self.dns_server,
            tls: None,
            timeout: std::time::Duration::from_millis(self.timeout_ms),
        };
        Ok(crate::proxy::relay::RelayConfig {
            upstream,
            addrs: self.upstream_addrs.clone(),
            key: self.key.clone(),
            tls: std::sync::Arc::new(tls),
            resolver,
        })
    }
}

fn job<T: serde::de::DeserializeOwned>(var: &str) -> Result<T> {
    serde_json::from_str(&std::env::var(var).with_context(|| format!("{var} unset"))?)
        .with_context(|| format!("reading {var}"))
}

/// `codex-box companion`: serves the beacon (and the proxy, and the relay) until SIGTERM; exit code.
pub async fn run(beacon: u16, proxy: Option<u16>, relay: Option<u16>) -> Result<i32> {
    use tokio::net::TcpListener;
    let listener = TcpListener::bind(("0.0.0.0", beacon)).await.with_context(|| format!("binding port {beacon}"))?;
    tokio::spawn(async move {
        // Accept and close: a connection that succeeds is all the verification needs to see.
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    });
    let proxy = match proxy {
        Some(port) => {
            let proxy: ProxyJob = job(JOB_ENV)?;
            let config = proxy.proxy_config(Path::new(ROOTS_DIR))?;
            Some(Proxy::start(SocketAddr::from(([0, 0, 0, 0], port)), config, Log::stdout()).await?)
        }
        None => None,
    };
    if let Some(port) = relay {
        #[cfg(target_os = "linux")]
        {
            let relay: RelayJob = job(RELAY_ENV)?;
            let config = relay.relay_config(Path::new(ROOTS_DIR))?;
            let listener =
                TcpListener::bind(("0.0.0.0", port)).await.with_context(|| format!("binding port {port}"))?;
            crate::proxy::relay::serve(listener, config, std::sync::Arc::new(Log::stdout())).await?;
        }
        #[cfg(not(target_os = "linux"))]
        anyhow::bail!("the API relay (port {port}) runs in a Linux companion only");
    }
    println!("{READY}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    if let Some(p) = proxy {
        p.shutdown().await;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::egress::{proxy_rules, EgressMode, EgressSettings};

    #[test]
    fn the_job_travels_as_json_and_gives_the_hosts_rules() {
        let s = EgressSettings {
            mode: EgressMode::Proxy,
            flags: vec!["**.pypi.org".into(), "*.npmjs.org".into()],
            env: Some("github.com".into()),
            config: vec!["crates.io".into()],
            presets: vec!["github".into()],
            deny: vec!["evil.pypi.org".into()],
            ports: vec![443],
            resolver: ResolverSettings { server: Some("198.18.0.53:53".parse().unwrap()), ..Default::default() },
            ..EgressSettings::default()
        };
        let job = ProxyJob::new(&s, Vec::new());
        let back: ProxyJob = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
        assert_eq!(back, job);
        assert_eq!(format!("{:?}", back.rules().unwrap()), format!("{:?}", proxy_rules(&s).unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let c = back.proxy_config(dir.path()).unwrap();
        assert_eq!((c.ports, c.resolver.server), (vec![443], s.resolver.server));
        assert!(c.resolver.tls.is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn secrets_reach_the_proxy_with_their_hosts_certificates_and_are_never_shown() {
        use crate::secrets::{parse_flag, resolve, Egress};
        let rules = Rules::from_entries([("api.bound.test", crate::egress::entry_types::Source::Flag)], []).unwrap();
        let get = |_: &str| Some(std::ffi::OsString::from("v-SECRET"));
        let secrets =
            resolve(&[parse_flag("TOKEN=api.bound.test").unwrap()], Egress::Proxy(&rules), &get, None, Path::new("/x"))
                .unwrap();
        let ca = crate::secrets::ca::generate(&secrets[0].hosts).unwrap();
        let mut job = ProxyJob::new(&EgressSettings::default(), Vec::new());
        job.intercept = Some(InterceptJob::new(&secrets, &ca, Vec::new()));
        let i = job.intercept.as_ref().unwrap();
        assert_eq!(i.hosts[0].headers, [("TOKEN".into(), "Authorization".into(), "Bearer v-SECRET".into())]);
        assert!(!format!("{job:?}").contains("SECRET") && !format!("{job:?}").contains("PRIVATE"), "{job:?}");
        let back: ProxyJob = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
        assert!(back == job);
        let dir = tempfile::tempdir().unwrap();
        let c = back.proxy_config(dir.path()).unwrap();
        let ic = c.intercept.unwrap();
        assert_eq!(ic.hosts.keys().collect::<Vec<_>>(), ["api.bound.test"]);
        assert_eq!(ic.upstream.alpn_protocols, [b"http/1.1".to_vec()]);
        // Without secrets the job carries no intercept field at all (an older companion takes it).
        let plain = serde_json::to_value(ProxyJob::new(&EgressSettings::default(), Vec::new())).unwrap();
        assert!(plain.get("intercept").is_none());
    }

    #[test]
    fn the_companions_arguments_are_its_ports() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&["--beacon", "3129"]).unwrap(), (3129, None, None));
        assert_eq!(a(&["--beacon", "1", "--relay", "3", "--proxy", "2"]).unwrap(), (1, Some(2), Some(3)));
        assert!(
            a(&["--proxy", "2"]).is_err() && a(&["--beacon"]).is_err() && a(&["--beacon", "1", "-x", "2"]).is_err()
        );
    }

    #[test]
    fn a_job_with_a_field_this_build_does_not_know_is_refused() {
        let job = ProxyJob::new(&EgressSettings::default(), Vec::new());
        let mut v = serde_json::to_value(&job).unwrap();
        v["newer_policy"] = serde_json::json!(["x"]);
        assert!(serde_json::from_value::<ProxyJob>(v).is_err());
    }

    #[test]
    fn dot_roots_are_written_where_the_companion_can_and_named_in_the_resolver() {
        let mut job = ProxyJob::new(&EgressSettings::default(), vec!["PEM-A".into(), "PEM-B".into()]);
        job.dns_server = Some("198.18.0.53:853".parse().unwrap());
        job.dns_tls_name = Some("dot.test".into());
        let dir = tempfile::tempdir().unwrap();
        let c = job.proxy_config(dir.path()).unwrap();
        let tls = c.resolver.tls.unwrap();
        assert_eq!(tls.name, "dot.test");
        let texts: Vec<String> = tls.extra_roots.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        assert_eq!(texts, ["PEM-A", "PEM-B"]);
    }
}
