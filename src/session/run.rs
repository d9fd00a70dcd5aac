//! The orchestration of a container session, in a fixed order, for any [`Engine`]:
//!
//! 1. [`check`] (no engine, nothing created): Codex's inner sandbox not asked for, CA files readable,
//!    the chosen resolver usable, writable mounts outside the workdir confirmed;
//! 2. [`run`]: the codex home prepared (the session's own home, locked) and its trusted files
//!    approved (trust on change), orphans of
//!    killed sessions collected, the image made available, then the egress: the allowlist resolved
//!    and its firewall assembled, or the proxy started on the host's address in the session's network
//!    — each with a verification target that a missing firewall would let through (a listener of
//!    codex-box's own); then the engine runs the [`Plan`], and afterwards the proxy is shut down and
//!    the listener closed, whatever the outcome; limits that ended the session are named; the
//!    session's home's history and logs are merged into the kept store and the home removed.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};

use super::egress;
use super::engine::Engine;
use super::plan::{Outcome, Plan, Refresh, SessionFiles};
use super::policy::{Egress, GitWrite, SessionPolicy, Trust};
use crate::codex_layer::{self, Boundary};
use crate::session::codex_home;

/// A session that passed every check that needs no engine.
pub struct Checked<'a> {
    pub policy: &'a SessionPolicy,
    pub command: Vec<String>,
    /// With a terminal (the default Codex session, `run -t`).
    pub interactive: bool,
    /// The terminal's size at start (rows, columns).
    pub tty_size: Option<(u16, u16)>,
    /// The session's extra CA certificates, read.
    pub certs: Vec<(PathBuf, Vec<u8>)>,
}

/// Everything that can be refused before an engine is asked or anything is created.
pub fn check(
    policy: &SessionPolicy,
    command: Vec<String>,
    interactive: bool,
    tty_size: Option<(u16, u16)>,
) -> Result<Checked<'_>> {
    // Codex's own sandbox cannot exist in the container: an explicit request is refused up front.
    codex_layer::check_command(&command, Boundary::Container)?;
    let certs = crate::ca_certs::read_ca_certs(&policy.ca_certs)?;
    if policy.egress != Egress::Open {
        crate::egress::resolve::check(&policy.egress_settings.resolver)?;
    }
    if let (Egress::Proxy(_), Some(dns)) = (&policy.egress, policy.egress_settings.resolver.server) {
        if dns.ip().is_loopback() {
            bail!("--egress proxy: the DNS server {dns} is a loopback address, but the proxy runs in a companion container on the session's network, where that address is the container's own; give an address that network reaches (e.g. the network's gateway), or leave --dns-server out to use the engine's resolver");
        }
    }
    let mut outside: Vec<(&str, &PathBuf)> = Vec::new();
    if let Some(h) = &policy.codex_home {
        outside.push(("--codex-home", h));
    }
    if let Some(s) = &policy.sessions_path {
        outside.push(("--sessions-path", s));
    }
    confirm_outside(&policy.work_dir, &outside)?;
    Ok(Checked { policy, command, interactive, tty_size, certs })
}

/// The egress of a running session: the files and environment for the plan, and the session's
/// companion (proxy, API relay) that must live until the session ends.
struct EgressSetup<C> {
    firewall: Option<egress::SessionFirewall>,
    companion: Option<(C, Arc<crate::proxy::Log>)>,
    /// The API relay's base URL for the session, when the key stays with codex-box.
    relay_url: Option<String>,
    relay_layer: Option<codex_layer::RelayLayer>,
    /// The session's own CA (PEM), when the proxy adds secrets: trusted in the session only.
    session_ca: Option<String>,
}

/// Runs a checked session on `engine` to its end; returns the command's exit code.
pub async fn run<E: Engine>(engine: &E, s: Checked<'_>) -> Result<i32> {
    let policy = s.policy;
    let (uid, gid) = agent_ids(&policy.work_dir);
    let root = nix::unistd::getuid().is_root();
    // As root, what the agent is to write is made the agent's as it is made (see codex_home).
    let agent = root.then_some(crate::fs_handle::Owner { uid, gid });
    let (home, lease) = codex_home::prepare_for(policy, agent)?;
    let result = run_prepared(engine, s, &home, (uid, gid), root).await;
    // The session's own home: its history and logs merged into the kept store, then removed.
    codex_home::finish(&home, lease, agent);
    // Every error from here on comes before the agent ran: a failed start leaves nothing behind.
    if result.is_err() {
        if let Err(e) = codex_home::undo(&home) {
            eprintln!("codex-box: warning: could not remove what this run created in the project: {e}");
        }
    }
    result
}

/// [`run`] once the codex home is prepared.
async fn run_prepared<E: Engine>(
    engine: &E,
    s: Checked<'_>,
    home: &codex_home::CodexHome,
    (uid, gid): (u32, u32),
    root: bool,
) -> Result<i32> {
    let policy = s.policy;
    if let Some(note) = home
        .config_toml
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c).ok())
        .and_then(|t| codex_layer::config_note(&t, Boundary::Container))
    {
        crate::notice!("codex-box: {note}");
    }
    if let Some(state) = &policy.env.state_dir {
        let owned = [
            home.env_dir.join("init.sh"),
            home.env_dir.join("config.toml"),
            policy.work_dir.join(crate::config::PROJECT_CONFIG),
        ];
        let files: Vec<&Path> = owned.iter().map(PathBuf::as_path).collect();
        let accept = policy.trust == Trust::Accept;
        crate::trust::check(state, &policy.work_dir, &files, &home.from_user, accept, std::io::stdin().is_terminal())?;
    }
    if let Ok(removed) = engine.collect_orphans().await {
        for r in removed {
            crate::notice!("codex-box: removed {r}, left by a codex-box that was killed");
        }
    }
    engine.ensure_image(&policy.image, &policy.ca_certs).await?;
    // An API key in auth.json is the relay's too; that auth.json then stays out of the session.
    let mut home = home.clone();
    let auth_key = home.auth.as_deref().and_then(auth_api_key);
    if auth_key.is_some() {
        home.auth = None;
    }
    let key = policy.env.openai_api_key.clone().or(auth_key);
    let setup = egress_setup(engine, policy, &home, key.as_deref(), &s.certs).await?;

    if root && !writable_by(&policy.work_dir, uid, gid) {
        eprintln!(
            "codex-box: warning: the agent runs as uid {uid} and cannot write {} (owned by root): a rootful engine's Docker API (Docker, Podman) cannot map ids onto the workdir, so the agent never runs as root instead; run codex-box as the user who owns the project (with a rootless Podman, keep-id, or rootless Docker, the agent's files are then that user's), or give uid {uid} write access",
            policy.work_dir.display()
        );
    }
    let mut extra_env = Vec::new();
    if s.interactive {
        extra_env.push(("TERM".to_string(), policy.env.term.clone().unwrap_or_else(|| "xterm-256color".into())));
    }
    // The key stays with the relay: the session gets a placeholder and the relay's address.
    if let Some(url) = &setup.relay_url {
        extra_env.push(("OPENAI_API_KEY".to_string(), crate::codex_layer::PLACEHOLDER_KEY.to_string()));
        extra_env.push(("OPENAI_BASE_URL".to_string(), url.clone()));
    }
    let fw = setup.firewall.as_ref();
    if let Some(fw) = fw {
        extra_env.extend(fw.env.iter().cloned());
    }
    let plan = Plan {
        image: policy.image.clone(),
        work_dir: policy.work_dir.clone(),
        command: s.command,
        tty: s.interactive,
        tty_size: if s.interactive { s.tty_size } else { None },
        uid,
        gid,
        home: home.clone(),
        read_only: policy.read_only.clone(),
        limits: policy.limits.clone(),
        allow_git_write: policy.git_write == GitWrite::Writable,
        extra_env,
        network: policy.egress_settings.network.clone(),
        pinned_hosts: fw.is_some(),
        applier: policy.applier,
        runtime: policy.runtime.clone(),
        lock_dir: policy.env.runtime_dir.clone().or_else(|| policy.env.state_dir.clone()),
        dns: fw.map(|f| f.dns.clone()).unwrap_or_default(),
    };
    let refresh = fw.filter(|_| matches!(policy.egress, Egress::Allowlist(_))).map(|f| Refresh {
        allow: f.allow.clone(),
        resolver: policy.egress_settings.resolver.clone(),
        min_delay: policy.egress_settings.refresh_min,
        initial: f.resolution.clone(),
    });
    let files = SessionFiles {
        init_hook: home.init_hook.clone(),
        ca_pem: s
            .certs
            .iter()
            .map(|(_, d)| d.as_slice())
            .chain(setup.session_ca.as_deref().map(str::as_bytes))
            .flat_map(|d| d.iter().copied().chain(std::iter::once(b'\n')))
            .collect(),
        managed_config: codex_layer::managed_config(setup.relay_layer.as_ref()),
        extra: setup
            .firewall
            .as_ref()
            .map(|f| {
                let mut files = f.files.clone();
                files.push(("hosts".to_string(), f.hosts.clone().into_bytes()));
                files
            })
            .unwrap_or_default(),
    };
    let outcome = engine.run(plan, files, refresh).await;
    if let Some((c, log)) = setup.companion {
        engine.stop_companion(c).await;
        if matches!(policy.egress, Egress::Proxy(_)) {
            let summary = log.summary();
            crate::notice!("codex-box: {summary}");
            for hint in egress::allowance_hints(&summary) {
                crate::notice!("codex-box: {hint}");
            }
        }
    }
    let outcome = outcome?;
    report_limits(&outcome, policy);
    Ok(outcome.exit_code)
}

/// The firewall (allowlist mode) or the proxy and its firewall (proxy mode); nothing when open.
/// Either is verified against a companion of codex-box's on the session's network (the network's
/// beacon, or the session companion's own), which a missing firewall would let through — on every
/// engine, wherever it runs its containers. With an API key, the session's companion also serves
/// the API relay that holds it (in every mode).
async fn egress_setup<E: Engine>(
    engine: &E,
    policy: &SessionPolicy,
    home: &codex_home::CodexHome,
    key: Option<&str>,
    certs: &[(PathBuf, Vec<u8>)],
) -> Result<EgressSetup<E::Companion>> {
    let settings = &policy.egress_settings;
    let network = settings.network.as_deref();
    // What the session's companion serves: the proxy, the relay; none means no companion.
    let config_toml = home.config_toml.as_ref().and_then(|c| std::fs::read_to_string(c).ok());
    let relay = key.and_then(|key| {
        // The relay's URL is only known once the companion runs; the upstream does not depend on it.
        let layer = codex_layer::relay_layer(config_toml.as_deref(), "http://relay/v1")?;
        Some(crate::companion::RelayJob {
            upstream: layer.upstream,
            key: key.to_string(),
            roots_pem: certs.iter().map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect(),
            upstream_addrs: Vec::new(),
            dns_server: settings.resolver.server,
            timeout_ms: settings.resolver.timeout.as_millis() as u64,
        })
    });
    let mut relay = relay;
    if let Some(r) = &mut relay {
        let up = crate::proxy::relay::Upstream::parse(&r.upstream).map_err(|e| {
            anyhow::anyhow!("{e}; set the provider's base_url (or openai_base_url) in config.toml to an https:// URL")
        })?;
        // Resolved here like the allowlist (the relay resolves only when this finds nothing).
        if up.host.parse::<std::net::IpAddr>().is_err() {
            if let Ok(res) = crate::egress::resolve_all(std::slice::from_ref(&up.host), &settings.resolver).await {
                r.upstream_addrs = res.addresses().collect();
            }
        }
    }
    let mut proxy = match &policy.egress {
        Egress::Proxy(_) => Some(crate::companion::ProxyJob::new(settings, dot_roots(settings, certs))),
        _ => None,
    };
    let session_ca = match proxy.as_mut() {
        Some(job) if !policy.secrets.is_empty() => Some(secrets_job(job, &policy.secrets, certs)?),
        _ => None,
    };
    let resolved = match &policy.egress {
        Egress::Allowlist(allow) => {
            let (res, _) = egress::resolve(allow, settings).await?;
            let unresolved: Vec<&str> = res.failures().map(|n| n.name.as_str()).collect();
            if !unresolved.is_empty() {
                eprintln!(
                    "codex-box: warning: {} allowlisted name(s) did not resolve and stay unreachable: {} (see `codex-box egress`; --strict makes this an error)",
                    unresolved.len(),
                    unresolved.join(", ")
                );
            }
            Some(res)
        }
        _ => None,
    };
    let job = crate::companion::CompanionJob { proxy, relay };
    let companion = if job.proxy.is_some() || job.relay.is_some() {
        let container = super::plan::session_name(&policy.work_dir, 1);
        let log = match &policy.env.state_dir {
            Some(state) => crate::proxy::Log::file(&egress::proxy_log_path(state, &container), settings.log_denials)?,
            None => crate::proxy::Log::memory(settings.log_denials),
        };
        let log = Arc::new(log);
        let (addrs, c) = engine.start_companion(network, &job, log.clone()).await?;
        Some((addrs, c, log))
    } else {
        None
    };
    let addrs = companion.as_ref().map(|(a, _, _)| *a);
    let relay_url = addrs.and_then(|a| a.relay).map(|r| format!("http://{r}{}", crate::proxy::relay::PREFIX));
    let relay_layer = relay_url.as_deref().and_then(|u| codex_layer::relay_layer(config_toml.as_deref(), u));
    let gw = match policy.egress {
        Egress::Open => None,
        _ => engine.gateway(network).await,
    };
    let firewall = match (&policy.egress, resolved) {
        (Egress::Open, _) => {
            eprintln!("codex-box: warning: --egress open: the session has unrestricted network access");
            None
        }
        (Egress::Allowlist(allow), Some(res)) => {
            let mut settings = settings.clone();
            if settings.verify_blocked.is_none() {
                let beacon = match addrs {
                    Some(a) => a.beacon,
                    None => engine.beacon(network).await?,
                };
                settings.verify_blocked = Some(beacon.to_string());
            }
            let services: Vec<std::net::SocketAddr> = addrs.and_then(|a| a.relay).into_iter().collect();
            Some(egress::assemble(allow, &res, &settings, gw, &services))
        }
        (Egress::Proxy(_), _) => {
            let a = addrs.expect("proxy mode starts a companion");
            Some(egress::assemble_proxy(a.proxy.expect("the companion serves the proxy"), a, settings, gw))
        }
        (Egress::Allowlist(_), None) => unreachable!("an allowlist is resolved"),
    };
    Ok(EgressSetup { firewall, companion: companion.map(|(_, c, l)| (c, l)), relay_url, relay_layer, session_ca })
}

/// Makes the session's CA for the hosts secrets are bound to and gives the proxy their
/// certificates and headers; returns the CA certificate the session is to trust.
#[cfg(target_os = "linux")]
fn secrets_job(
    job: &mut crate::companion::ProxyJob,
    secrets: &[crate::secrets::Secret],
    certs: &[(PathBuf, Vec<u8>)],
) -> Result<String> {
    let mut hosts: Vec<String> = Vec::new();
    for h in secrets.iter().flat_map(|s| &s.hosts) {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    let ca = crate::secrets::ca::generate(&hosts)?;
    let roots = certs.iter().map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect();
    job.intercept = Some(crate::companion::InterceptJob::new(secrets, &ca, roots));
    for s in secrets {
        eprintln!(
            "codex-box: secret {} is added by the proxy as {} on HTTPS requests to {} (TLS terminated there with a CA made for this session)",
            s.name,
            s.header,
            s.hosts.join(", ")
        );
    }
    Ok(ca.ca_pem)
}

/// Secrets are refused by the policy on other platforms.
#[cfg(not(target_os = "linux"))]
fn secrets_job(
    _: &mut crate::companion::ProxyJob,
    secrets: &[crate::secrets::Secret],
    _: &[(PathBuf, Vec<u8>)],
) -> Result<String> {
    Err(crate::secrets::SecretError::Unsupported { name: secrets[0].name.clone() }.into())
}

/// The API key of an `auth.json` in API-key mode (a non-empty `OPENAI_API_KEY` and no ChatGPT
/// tokens); `None` for a ChatGPT sign-in or anything unreadable.
/// Read without following a link (the same reader as the codex home's trusted copies).
fn auth_api_key(path: &Path) -> Option<String> {
    let data = codex_home::read_no_follow(path).ok().filter(|d| d.len() <= 1 << 20)?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    let tokens = v.get("tokens").is_some_and(|t| !t.is_null());
    let key = v.get("OPENAI_API_KEY")?.as_str()?.trim();
    (!tokens && !key.is_empty()).then(|| key.to_string())
}

/// The PEM text of the CA files trusted for DNS-over-TLS (already read by [`check`]).
fn dot_roots(settings: &crate::session::egress::EgressSettings, certs: &[(PathBuf, Vec<u8>)]) -> Vec<String> {
    // `extra_roots` are the session's CA files, which [`check`] has read into `certs`.
    match &settings.resolver.tls {
        Some(tls) => certs
            .iter()
            .filter(|(p, _)| tls.extra_roots.contains(p))
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
            .collect(),
        None => Vec::new(),
    }
}

fn report_limits(outcome: &Outcome, policy: &SessionPolicy) {
    if outcome.oom_killed {
        eprintln!(
            "codex-box: the session ran out of memory (limit {} MiB) and was killed; raise it with --memory, e.g. --memory 8g",
            policy.limits.memory_bytes >> 20
        );
    }
    if outcome.pids_limit_hits > 0 {
        eprintln!(
            "codex-box: the session hit its process limit ({} processes) {} times; raise it with --pids-limit, e.g. --pids-limit {}",
            policy.limits.pids,
            outcome.pids_limit_hits,
            policy.limits.pids * 2
        );
    }
}

/// The uid/gid the agent runs as: the invoking user's; when codex-box runs as root, the workdir's owner
/// if that is not root, else 1000 — never 0.
pub fn agent_ids(work_dir: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    if uid != 0 {
        return (uid, gid);
    }
    match std::fs::metadata(work_dir) {
        Ok(m) if m.uid() != 0 => (m.uid(), m.gid()),
        _ => (1000, 1000),
    }
}

/// Whether uid/gid may write `dir` by its mode bits.
fn writable_by(dir: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .map(|m| {
            let mode = m.mode();
            (m.uid() == uid && mode & 0o200 != 0) || (m.gid() == gid && mode & 0o020 != 0) || mode & 0o002 != 0
        })
        .unwrap_or(false)
}

/// A writable mount outside the workdir needs a typed `yes` in a terminal.
fn confirm_outside(work_dir: &Path, paths: &[(&str, &PathBuf)]) -> Result<()> {
    for (flag, p) in paths {
        if p.starts_with(work_dir) {
            continue;
        }
        if !std::io::stdin().is_terminal() {
            bail!("{flag} {} is outside the work dir and would be writable by the agent; run in a terminal to confirm, or choose a path inside {}", p.display(), work_dir.display());
        }
        eprint!(
            "codex-box: {flag} {} is outside the work dir and will be WRITABLE by the agent. Type yes to continue: ",
            p.display()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            bail!("not confirmed; nothing was started");
        }
    }
    Ok(())
}
