//! The edge: turns parsed flags into actions, errors into one line with a fix, outcomes into exit codes.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, Command, GcArgs, ImageCommand, SessionArgs};
use crate::codex_home;
use crate::config::{Env, SessionConfig};
use crate::docker::{context, engine, firewall, gc, image, proxy, session, spec, tty};

/// Runs the parsed command line; returns the process exit code.
pub async fn main(cli: Cli) -> Result<i32> {
    match cli.command {
        None => {
            let mut command = vec!["codex".to_string()];
            command.extend(cli.codex_args);
            run_session(&cli.session, command, tty::interactive()).await
        }
        Some(Command::Run(r)) => {
            if r.tty && !tty::interactive() {
                bail!("--tty needs a terminal on stdin and stdout; drop --tty to run without one");
            }
            run_session(&r.session, r.command, r.tty).await
        }
        Some(Command::Image(ImageCommand::Build(b))) => {
            let docker = engine::connect().await?;
            let env = Env::from_process();
            let spec = image::BuildSpec {
                tag: b.tag.clone().unwrap_or_else(|| context::default_tag(b.codex_version.as_deref())),
                base: b.base.clone(),
                codex_version: b.codex_version.clone().unwrap_or_else(|| "latest".into()),
                node: b.node.clone(),
                ca_certs: b.ca_cert.iter().cloned().chain(env.ca_certs).collect(),
                no_cache: b.no_cache,
            };
            image::build(&docker, &spec).await?;
            Ok(0)
        }
        Some(Command::Image(ImageCommand::Bootstrap(b))) => {
            let docker = engine::connect().await?;
            let tag = b.tag.clone().unwrap_or_else(|| format!("codex-box-base:{}", b.suite));
            image::bootstrap(&docker, &b.suite, b.mirror.as_deref(), &tag).await?;
            Ok(0)
        }
        Some(Command::Image(ImageCommand::ImportRootfs(i))) => {
            let docker = engine::connect().await?;
            image::import_rootfs(&docker, &i.dir, &i.tag).await?;
            Ok(0)
        }
        Some(Command::Egress(e)) => show_egress(&e).await,
        // Dispatched by main before the async runtime starts.
        Some(Command::Sandbox(args)) => crate::native::run_cli(&args),
        Some(Command::Doctor(d)) => Ok(crate::doctor::run(&d).await),
        Some(Command::Gc(GcArgs { all })) => {
            let docker = engine::connect().await?;
            let removed =
                gc::collect(&docker, all).await.context("collecting codex-box containers left by killed sessions")?;
            for r in &removed {
                println!("removed {r}");
            }
            if removed.is_empty() {
                eprintln!("codex-box: nothing to remove");
            }
            Ok(0)
        }
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

async fn run_session(args: &SessionArgs, command: Vec<String>, interactive: bool) -> Result<i32> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let env = Env::from_process();
    let cfg = SessionConfig::build(args, env, &cwd)?;
    let certs = context::read_ca_certs(&cfg.ca_certs)?;
    if !cfg.egress.open {
        crate::egress::resolve::check(&cfg.egress.resolver)?;
    }

    // Everything that can be refused is checked before anything is created.
    let mut outside: Vec<(&str, &PathBuf)> = Vec::new();
    if let Some(h) = &cfg.codex_home {
        outside.push(("--codex-home", h));
    }
    if let Some(s) = &cfg.sessions_path {
        outside.push(("--sessions-path", s));
    }
    confirm_outside(&cfg.work_dir, &outside)?;

    let allow = if cfg.egress.open || cfg.egress.proxy { None } else { Some(firewall::allowlist(&cfg.egress)?) };
    let mut proxy_rules = if cfg.egress.proxy { Some(proxy::rules(&cfg.egress)?) } else { None };

    let docker = engine::connect().await?;
    let (uid, gid) = agent_ids(&cfg.work_dir);
    let root = nix::unistd::getuid().is_root();
    // As root, what the agent is to write is made the agent's as it is made (see codex_home).
    let home = codex_home::prepare_for(&cfg, root.then_some(crate::fs_handle::Owner { uid, gid }))?;
    if let Some(state) = &cfg.env.state_dir {
        let owned = [
            home.env_dir.join("init.sh"),
            home.env_dir.join("config.toml"),
            cfg.work_dir.join(crate::config::PROJECT_CONFIG),
        ];
        let files: Vec<&Path> = owned.iter().map(PathBuf::as_path).collect();
        crate::trust::check(state, &cfg.work_dir, &files, &home.from_user, args.trust, std::io::stdin().is_terminal())?;
    }
    if let Ok(removed) = gc::collect(&docker, false).await {
        for r in removed {
            eprintln!("codex-box: removed {r}, left by a codex-box that was killed");
        }
    }
    image::ensure(&docker, &cfg.image, &cfg.ca_certs).await?;

    let mut session_proxy = None;
    // The default verification target: a listener of our own on the network's gateway (this host).
    // Were the firewall not in force, a connection to it would succeed, so the check cannot pass by
    // luck (a closed port would refuse either way). It lives until the session ends.
    let mut verify_listener = None;
    let fw = match &allow {
        None if proxy_rules.is_some() => {
            let rules = proxy_rules.take().unwrap_or_default();
            let (fw, p, l) = start_proxy(&docker, &cfg, rules).await?;
            session_proxy = Some(p);
            verify_listener = l;
            Some(fw)
        }
        None => {
            eprintln!("codex-box: warning: --egress open: the session has unrestricted network access");
            None
        }
        Some(allow) => {
            let (res, _) = firewall::resolve(allow, &cfg.egress).await?;
            let unresolved: Vec<&str> = res.failures().map(|n| n.name.as_str()).collect();
            if !unresolved.is_empty() {
                eprintln!(
                    "codex-box: warning: {} allowlisted name(s) did not resolve and stay unreachable: {} (see `codex-box egress`; --strict makes this an error)",
                    unresolved.len(),
                    unresolved.join(", ")
                );
            }
            let gw = firewall::gateway(&docker, cfg.egress.network.as_deref()).await;
            let mut egress = cfg.egress.clone();
            if let (None, Some(ip)) = (&egress.verify_blocked, gw) {
                if let Ok(l) = std::net::TcpListener::bind((ip, 0)) {
                    egress.verify_blocked = l.local_addr().ok().map(|a| a.to_string());
                    verify_listener = Some(l);
                }
            }
            Some(firewall::assemble(allow, &res, &egress, gw))
        }
    };

    if root && !writable_by(&cfg.work_dir, uid, gid) {
        eprintln!(
            "codex-box: warning: the agent runs as uid {uid} and cannot write {} (owned by root); run codex-box as the user who owns the project, or give uid {uid} write access",
            cfg.work_dir.display()
        );
    }
    let mut extra_env = Vec::new();
    if interactive {
        extra_env.push(("TERM".to_string(), std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into())));
    }
    if let Ok(k) = std::env::var("OPENAI_API_KEY") {
        extra_env.push(("OPENAI_API_KEY".to_string(), k));
    }
    if let Some(fw) = &fw {
        extra_env.extend(fw.env.iter().cloned());
    }
    let plan = spec::Plan {
        image: cfg.image.clone(),
        work_dir: cfg.work_dir.clone(),
        command,
        tty: interactive,
        tty_size: if interactive { tty::size() } else { None },
        uid,
        gid,
        home: home.clone(),
        read_only: cfg.read_only.clone(),
        session_dir: PathBuf::new(),
        limits: cfg.limits.clone(),
        allow_git_write: args.allow_git_write,
        labels: Default::default(),
        extra_env,
        network: cfg.egress.network.clone(),
        pinned_hosts: fw.is_some(),
        applier: match (args.firewall_applier.as_deref(), args.runtime.as_deref()) {
            (Some("sidecar"), _) => spec::Applier::Sidecar,
            (Some(_), _) | (None, None | Some("runc")) => spec::Applier::Entrypoint,
            // Rules set inside a sandboxing runtime (gVisor) need not reach the kernel's netfilter.
            (None, Some(_)) => spec::Applier::Sidecar,
        },
        runtime: args.runtime.clone(),
        dns: fw.as_ref().map(|f| f.dns.clone()).unwrap_or_default(),
    };
    let refresh = fw.as_ref().filter(|_| session_proxy.is_none()).map(|f| session::Refresh {
        allow: f.allow.clone(),
        egress: cfg.egress.clone(),
        initial: f.resolution.clone(),
    });
    let files = session::SessionFiles {
        init_hook: home.init_hook.clone(),
        ca_pem: certs.iter().flat_map(|(_, d)| d.iter().copied().chain(std::iter::once(b'\n'))).collect(),
        extra: fw
            .map(|f| {
                let mut files = f.files;
                files.push(("hosts".to_string(), f.hosts.into_bytes()));
                files
            })
            .unwrap_or_default(),
    };
    let outcome = session::run(&docker, plan, &files, refresh).await;
    if let Some(p) = session_proxy {
        eprintln!("codex-box: {}", p.shutdown().await);
    }
    drop(verify_listener);
    let outcome = outcome?;
    if outcome.oom_killed {
        eprintln!(
            "codex-box: the session ran out of memory (limit {} MiB) and was killed; raise it with --memory, e.g. --memory 8g",
            cfg.limits.memory_bytes >> 20
        );
    }
    if outcome.pids_limit_hits > 0 {
        eprintln!(
            "codex-box: the session hit its process limit ({} processes) {} times; raise it with --pids-limit, e.g. --pids-limit {}",
            cfg.limits.pids,
            outcome.pids_limit_hits,
            cfg.limits.pids * 2
        );
    }
    Ok(outcome.exit_code)
}

/// `--egress proxy`: starts the session's proxy on the network's gateway and returns the
/// firewall that opens only it. The proxy lives until the caller shuts it down after the session.
/// Like the allowlist mode, the default verification target is a listener of codex-box's own on
/// the gateway (returned, to live as long as the session).
async fn start_proxy(
    docker: &bollard::Docker,
    cfg: &SessionConfig,
    rules: crate::proxy::Rules,
) -> Result<(firewall::SessionFirewall, crate::proxy::Proxy, Option<std::net::TcpListener>)> {
    let Some(gateway) = firewall::gateway(docker, cfg.egress.network.as_deref()).await else {
        bail!("--egress proxy: cannot find the gateway of the session's network (the host as seen from the container); the proxy needs a bridge network of a local engine");
    };
    let mut egress = cfg.egress.clone();
    let mut verify_listener = None;
    if egress.verify_blocked.is_none() {
        if let Ok(l) = std::net::TcpListener::bind((gateway, 0)) {
            egress.verify_blocked = l.local_addr().ok().map(|a| a.to_string());
            verify_listener = Some(l);
        }
    }
    let container = spec::container_name(&cfg.work_dir, 1);
    let log = match &cfg.env.state_dir {
        Some(state) => crate::proxy::Log::file(&proxy::log_path(state, &container), cfg.egress.log_denials)?,
        None => crate::proxy::Log::memory(cfg.egress.log_denials),
    };
    let p = proxy::start(rules, &egress, gateway, log).await?;
    Ok((proxy::assemble(p.addr(), &egress, gateway), p, verify_listener))
}

/// `codex-box egress`: the allowlist with its sources, the resolution, and optionally the rules.
async fn show_egress(e: &crate::cli::EgressArgs) -> Result<i32> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let cfg = SessionConfig::build(&e.session, Env::from_process(), &cwd)?;
    if cfg.egress.open {
        println!("egress: open (no firewall)");
        return Ok(0);
    }
    if cfg.egress.proxy {
        return show_proxy_rules(&cfg);
    }
    let allow = firewall::allowlist(&cfg.egress)?;
    let (res, warnings) = firewall::resolve(&allow, &cfg.egress).await?;
    let gw = match engine::connect().await {
        Ok(d) => firewall::gateway(&d, cfg.egress.network.as_deref()).await,
        Err(_) => None,
    };
    let fw = firewall::assemble(&allow, &res, &cfg.egress, gw);
    if e.json {
        let names: Vec<serde_json::Value> = res
            .names
            .iter()
            .map(|n| {
                serde_json::json!({
                    "name": n.name,
                    "addresses": n.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "min_ttl": n.min_ttl,
                    "error": n.error.as_ref().map(|e| e.to_string()),
                })
            })
            .collect();
        let out = serde_json::json!({
            "names": names,
            "nets": allow.nets().iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            "ports": cfg.egress.ports,
            "dns": fw.dns,
            "warnings": warnings,
            "rules": e.rules.then(|| fw.files.iter().map(|(n, d)| (n.clone(), String::from_utf8_lossy(d).into_owned())).collect::<std::collections::BTreeMap<_, _>>()),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!("allowlist:\n{allow}");
    println!("resolution ({}):\n{res}", res.resolver);
    for w in &warnings {
        println!("warning: {w}");
    }
    println!(
        "ports: {:?}; DNS from the session: {}",
        cfg.egress.ports,
        if fw.dns.is_empty() { "closed".to_string() } else { fw.dns.join(", ") }
    );
    if e.rules {
        for (name, data) in &fw.files {
            println!("--- {name}\n{}", String::from_utf8_lossy(data));
        }
    }
    Ok(0)
}

/// `codex-box egress --egress proxy`: the proxy's allow and deny patterns (names are resolved by
/// the proxy at each request, so there is no resolution to show).
fn show_proxy_rules(cfg: &SessionConfig) -> Result<i32> {
    let rules = proxy::rules(&cfg.egress)?;
    println!("egress: proxy (decided by name at each request; ports {:?})", cfg.egress.ports);
    println!("allow:");
    for p in &rules.allow {
        println!("  {p}");
    }
    println!("deny:");
    for p in &rules.deny {
        println!("  {p}");
    }
    Ok(0)
}
