//! One container session, start to end: session directory, create, attach, start, stream, wait,
//! remove. The container and the session directory are removed on every path out — normal exit,
//! failure, error, SIGINT/SIGTERM/SIGHUP — and `gc` catches what a SIGKILL left.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, KillContainerOptions, RemoveContainerOptions,
    ResizeContainerTTYOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

use super::spec::{self, Placed, LABEL};
use super::tty;
use crate::session::plan::Plan;
pub use crate::session::plan::{Outcome, Refresh, SessionFiles};

/// The session entrypoint and the agent wrapper (see firewall/).
pub const ENTRYPOINT: &str = include_str!("../../firewall/entrypoint.sh");
pub const AGENT_WRAPPER: &str = include_str!("../../firewall/agent.sh");
/// The firewall applier shared by the entrypoint and the sidecar, and the sidecar's own script.
pub const APPLY: &str = include_str!("../../firewall/apply.sh");
pub const SIDECAR: &str = include_str!("../../firewall/sidecar.sh");

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot prepare the session directory {path}: {source}")]
    SessionDir { path: PathBuf, source: std::io::Error },
    #[error("creating the session container: {0}")]
    Create(bollard::errors::Error),
    #[error("{0} sessions already run on this work dir; end one, or run `codex-box gc` if they were killed")]
    TooMany(u32),
    #[error("starting the session container: {0}. {advice}", advice = start_advice(.0))]
    Start(bollard::errors::Error),
    #[error("attaching to the session container: {0}")]
    Attach(bollard::errors::Error),
    #[error("interrupted before the session started; nothing was left behind")]
    Interrupted,
    #[error("the firewall sidecar did not come up; the agent was not started:\n{0}")]
    Sidecar(String),
    #[error("--runtime {0}: Podman's Docker-compatible API ignores the runtime a container asks for, so the session would not run under it; make it Podman's default runtime (`runtime = \"{0}\"` under [engine] in containers.conf) and run without --runtime, or use Docker")]
    RuntimeIgnored(String),
    #[error(transparent)]
    Seccomp(super::seccomp::SeccompError),
    #[error("lost the container engine during the session ({0}); the session has ended here. If the engine comes back with the session's container still running, the next session start or `codex-box gc` removes it")]
    EngineLost(String),
    #[error("cannot lock {path} (codex-box creates one container at a time on rootless Podman, whose keep-id lookup cannot take two at once): {source}. Fix: make its directory writable for you, or point XDG_RUNTIME_DIR at a private directory that is")]
    CreateLock { path: PathBuf, source: std::io::Error },
}

/// What to do about a container that would not start.
fn start_advice(e: &bollard::errors::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("error setting rlimit") {
        "The engine could not raise the container's resource limits (it lacks CAP_SYS_RESOURCE); give Podman limits it can set: `default_ulimits = [\"nofile=N:N\", \"nproc=N:N\"]` under [containers] in /etc/containers/containers.conf, at most its own (`ulimit -Hn`, `ulimit -Hu`)"
    } else if text.contains("catatonit") || text.contains("init binary") {
        "The engine has no init binary for `init: true`: install catatonit (Podman) or tini"
    } else {
        "If the message names a mount, check that the path exists and the engine runs on this host"
    }
}

/// Writes the per-session directory: world-readable (the entrypoint runs as a root without
/// DAC_OVERRIDE, the wrapper as the agent) and read-only inside the container.
pub fn write_session_dir(files: &SessionFiles) -> Result<tempfile::TempDir, SessionError> {
    // The owner's pid in the name: `gc` removes the directory of a codex-box killed before its
    // container (which names the directory in a label) existed.
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}{}-", super::gc::SESSION_DIR_PREFIX, std::process::id()))
        .tempdir()
        .map_err(|source| SessionError::SessionDir { path: std::env::temp_dir(), source })?;
    let err = |source| SessionError::SessionDir { path: dir.path().to_path_buf(), source };
    let put = |name: &str, data: &[u8], mode: u32| -> std::io::Result<()> {
        let p = dir.path().join(name);
        std::fs::write(&p, data)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
    };
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).map_err(err)?;
    put("entrypoint.sh", ENTRYPOINT.as_bytes(), 0o644).map_err(err)?;
    put("agent.sh", AGENT_WRAPPER.as_bytes(), 0o644).map_err(err)?;
    put("apply.sh", APPLY.as_bytes(), 0o644).map_err(err)?;
    put("sidecar.sh", SIDECAR.as_bytes(), 0o644).map_err(err)?;
    put(super::spec::MANAGED_CONFIG_FILE, files.managed_config.as_bytes(), 0o644).map_err(err)?;
    if let Some(h) = &files.init_hook {
        let data = std::fs::read(h).map_err(|source| SessionError::SessionDir { path: h.clone(), source })?;
        put("init.sh", &data, 0o755).map_err(err)?;
    }
    if !files.ca_pem.is_empty() {
        put("ca.pem", &files.ca_pem, 0o644).map_err(err)?;
    }
    for (name, data) in &files.extra {
        put(name, data, 0o644).map_err(err)?;
    }
    Ok(dir)
}

/// Labels of a session container: codex-box's mark, the owner (host + pid) and the workdir.
pub fn labels(work_dir: &Path, session_dir: &Path) -> HashMap<String, String> {
    [
        (LABEL.to_string(), "1".to_string()),
        (format!("{LABEL}.workdir"), work_dir.display().to_string()),
        (format!("{LABEL}.pid"), std::process::id().to_string()),
        (format!("{LABEL}.host"), super::gc::hostname()),
        (format!("{LABEL}.session-dir"), session_dir.display().to_string()),
    ]
    .into()
}

/// Runs a session to its end and removes everything it made. Returns the command's exit code.
pub async fn run(
    docker: &Docker,
    socket: Option<&Path>,
    product: Option<spec::Product>,
    plan: Plan,
    files: &SessionFiles,
    refresh: Option<Refresh>,
) -> Result<Outcome, SessionError> {
    let probed = super::profile::probe(docker, socket, product).await;
    if let (Some(rt), false) = (&plan.runtime, spec::runtime_honoured(&probed.profile)) {
        return Err(SessionError::RuntimeIgnored(rt.clone()));
    }
    if !spec::limits_enforced(&probed.profile, probed.cgroup_version.as_deref()) {
        eprintln!("codex-box: warning: this rootless engine runs on cgroup v1 and cannot enforce --memory, --cpus or --pids-limit; the session runs without them (cgroup v2 with delegation enforces them)");
    }
    let session_dir = write_session_dir(files)?;
    let seccomp = match (probed.profile.product, super::seccomp::podman_profile()) {
        (spec::Product::Podman, Some(profile)) => {
            let path = session_dir.path().join("seccomp.json");
            let text = profile.map_err(SessionError::Seccomp)?;
            std::fs::write(&path, text).map_err(|source| SessionError::SessionDir { path: path.clone(), source })?;
            Some(path)
        }
        (spec::Product::Podman, None) => {
            eprintln!("codex-box: warning: Podman's seccomp profile is not on this host, so the agent can create user namespaces (Podman's default allows them; Docker's does not)");
            None
        }
        _ => None,
    };
    let labels = labels(&plan.work_dir, session_dir.path());
    let plan = Placed {
        plan,
        session_dir: session_dir.path().to_path_buf(),
        labels,
        engine: probed.profile,
        engine_limits: probed.limits,
        seccomp,
    };
    let (_, created_points) = spec::protected_mounts(&plan.work_dir, plan.allow_git_write);
    // Only mount points that do not exist now are ours to remove afterwards.
    let created_points: Vec<PathBuf> =
        created_points.into_iter().filter(|p| std::fs::symlink_metadata(p).is_err()).collect();

    let started: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let (cancel_tx, mut cancel_rx) = tokio::sync::watch::channel(false);
    let signals = tokio::spawn(forward_signals(docker.clone(), started.clone(), cancel_tx, plan.tty));

    let name_slot: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let sidecar_slot: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let seen = Arc::new(super::cgroup::Counters::default());
    let result = tokio::select! {
        r = drive(docker, &plan, name_slot.clone(), sidecar_slot.clone(), started.clone(), seen.clone(), refresh) => r,
        _ = cancel_rx.wait_for(|c| *c) => Err(SessionError::Interrupted),
    };
    signals.abort();

    // Cleanup on every path.
    let name = name_slot.lock().expect("not poisoned").clone();
    let pids_hits = seen.pids_max_hits.load(std::sync::atomic::Ordering::Relaxed);
    // Podman on cgroup v1 does not record an OOM kill in the container's state; the cgroup does.
    let mut oom = seen.oom_kills.load(std::sync::atomic::Ordering::Relaxed) > 0;
    let side = sidecar_slot.lock().expect("not poisoned").clone();
    let agent_cleanup = async {
        let mut oom = false;
        if let Some(name) = &name {
            if let Ok(info) = docker.inspect_container(name, None).await {
                oom = info.state.and_then(|s| s.oom_killed).unwrap_or(false);
            }
            let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            let _ = docker.remove_container(name, Some(opts)).await;
        }
        oom
    };
    let sidecar_cleanup = async {
        if let Some(side) = &side {
            if result.is_ok() {
                let list = "ipset list codex_blocked4 2>/dev/null; ipset list codex_blocked6 2>/dev/null";
                if let Ok((_, text)) = super::refresh::exec_root(docker, side, &["sh", "-c", list], b"").await {
                    if let Some(line) = blocked_summary(&text) {
                        crate::notice!("codex-box: egress blocked {line}");
                    }
                }
            }
            let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            return docker.remove_container(side, Some(opts)).await.is_ok();
        }
        true
    };
    // The sidecar holds the namespace, so its record outlives the agent: both are cleaned at once.
    let (agent_oom, side_removed) = tokio::join!(agent_cleanup, sidecar_cleanup);
    oom |= agent_oom;
    // Podman refuses to remove a container another one still depends on (the agent joined its
    // network namespace): once the agent is gone, again.
    if let (false, Some(side)) = (side_removed, &side) {
        let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        let _ = docker.remove_container(side, Some(opts)).await;
    }
    for p in created_points.iter().rev() {
        let _ = std::fs::remove_dir(p);
    }
    crate::session::codex_home::remove_mount_points(&plan.home);
    drop(session_dir);
    let exit_code = result?;
    Ok(Outcome { exit_code, oom_killed: oom, pids_limit_hits: pids_hits, container: name.unwrap_or_default() })
}

/// Creates (finding a free name), attaches, starts, streams and waits.
async fn drive(
    docker: &Docker,
    plan: &Placed,
    name_slot: Arc<Mutex<Option<String>>>,
    sidecar_slot: Arc<Mutex<Option<String>>>,
    started: Arc<Mutex<Option<String>>>,
    seen: Arc<super::cgroup::Counters>,
    refresh: Option<Refresh>,
) -> Result<i32, SessionError> {
    let with_sidecar = plan.pinned_hosts && plan.applier == crate::session::Applier::Sidecar;
    let conflict = name_taken;
    let mut n = 1;
    let (name, id) = loop {
        if n > 9 {
            return Err(SessionError::TooMany(9));
        }
        let name = spec::container_name(&plan.work_dir, n);
        let side = with_sidecar.then(|| spec::sidecar_name(&name));
        // A keep-id create (the sidecar's, else the agent's: with a sidecar the agent joins its user
        // namespace and needs no id lookup) holds the create lock while the engine takes it.
        let lock = || async {
            match (&plan.lock_dir, super::create_lock::needed(&plan.engine)) {
                (Some(dir), true) => super::create_lock::acquire(dir)
                    .await
                    .map(Some)
                    .map_err(|source| SessionError::CreateLock { path: super::create_lock::path(dir), source }),
                _ => Ok(None),
            }
        };
        if let Some(side) = &side {
            let opts = CreateContainerOptions { name: Some(side.clone()), ..Default::default() };
            let held = lock().await?;
            let created = docker.create_container(Some(opts), spec::sidecar_body(plan)).await;
            drop(held);
            match created {
                Ok(_) => *sidecar_slot.lock().expect("not poisoned") = Some(side.clone()),
                Err(e) if conflict(&e) => {
                    n += 1;
                    continue;
                }
                Err(e) => return Err(SessionError::Create(e)),
            }
        }
        let (body, _) = spec::container_body(plan, side.as_deref());
        let opts = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
        // The agent's container is created while the sidecar starts and applies the rules.
        let (created, sidecar_up) = match &side {
            Some(side) => tokio::join!(docker.create_container(Some(opts), body), start_sidecar(docker, side)),
            None => {
                let held = lock().await?;
                let created = docker.create_container(Some(opts), body).await;
                drop(held);
                (created, Ok(()))
            }
        };
        if let Err(e) = sidecar_up {
            if let Ok(r) = &created {
                let _ = docker
                    .remove_container(&r.id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
                    .await;
            }
            return Err(e);
        }
        match created {
            Ok(r) => break (name, r.id),
            Err(e) if conflict(&e) => {
                let taken = sidecar_slot.lock().expect("not poisoned").take();
                if let Some(side) = taken {
                    let _ = docker
                        .remove_container(&side, Some(RemoveContainerOptions { force: true, ..Default::default() }))
                        .await;
                }
                n += 1;
            }
            Err(e) => return Err(SessionError::Create(e)),
        }
    };
    *name_slot.lock().expect("not poisoned") = Some(name.clone());

    let attach = docker
        .attach_container(
            &name,
            Some(AttachContainerOptions {
                stream: true,
                stdin: true,
                stdout: true,
                stderr: true,
                logs: false,
                ..Default::default()
            }),
        )
        .await
        .map_err(SessionError::Attach)?;
    let mut output = attach.output;
    let mut input = attach.input;

    let raw = if plan.tty { tty::RawMode::enter().ok() } else { None };
    docker.start_container(&name, None).await.map_err(SessionError::Start)?;
    *started.lock().expect("not poisoned") = Some(name.clone());

    // The container's cgroups disappear with it: sample them while the session runs (and once more
    // when its output ends). They are found through its first process, wherever the engine put them.
    let pid = docker.inspect_container(&name, None).await.ok().and_then(|i| i.state).and_then(|s| s.pid);
    let cgroups = Arc::new(super::cgroup::Watch::find(pid, &id));
    let watcher = {
        let (cgroups, seen) = (cgroups.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                seen.record(cgroups.sample());
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        })
    };
    let refresher = refresh.map(|r| {
        let settings = crate::egress::RefreshSettings { min_delay: r.min_delay, ..Default::default() };
        let hosts = plan.session_dir.join("hosts");
        let target = sidecar_slot.lock().expect("not poisoned").clone().unwrap_or_else(|| name.clone());
        tokio::spawn(super::refresh::run(docker.clone(), target, hosts, r.allow, r.resolver, r.initial, settings))
    });
    if plan.tty {
        if let Some((rows, cols)) = tty::size() {
            let _ =
                docker.resize_container_tty(&name, ResizeContainerTTYOptions { h: rows as i32, w: cols as i32 }).await;
        }
        tokio::spawn(propagate_resize(docker.clone(), name.clone()));
    }

    // stdin → container; EOF closes the container's stdin (stdin_once).
    let stdin_task = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 8192];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if input.write_all(&buf[..n]).await.is_err() || input.flush().await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = input.shutdown().await;
    });

    // container → stdout / stderr, separately when there is no TTY.
    let out = std::io::stdout();
    let err = std::io::stderr();
    let mut stream_error = None;
    while let Some(item) = output.next().await {
        match item {
            Ok(LogOutput::StdErr { message }) => {
                let mut e = err.lock();
                let _ = e.write_all(&message);
                let _ = e.flush();
            }
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                let mut o = out.lock();
                let _ = o.write_all(&message);
                let _ = o.flush();
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                stream_error = Some(engine_error(&e));
                break;
            }
        }
    }
    stdin_task.abort();
    watcher.abort();
    seen.record(cgroups.sample());
    if let Some(r) = refresher {
        r.abort();
    }
    drop(raw);

    let mut wait = docker.wait_container(&name, None);
    let code = match wait.next().await {
        Some(Ok(r)) => r.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(_)) | None => match docker.inspect_container(&name, None).await {
            Ok(info) => info.state.and_then(|s| s.exit_code).unwrap_or(125),
            // The engine answers, but not about this container (removed by someone else, a state
            // its API cannot parse): the session's own failure, not a lost engine.
            Err(
                bollard::errors::Error::DockerResponseServerError { .. } | bollard::errors::Error::JsonDataError { .. },
            ) => 125,
            // Neither the wait nor an inspection gets through: the engine went away (stopped,
            // restarted, the connection to it closed), not the command.
            Err(e) => return Err(SessionError::EngineLost(stream_error.unwrap_or_else(|| engine_error(&e)))),
        },
    };
    Ok(code as i32)
}

/// What a request to an engine that went away failed with, in words (bollard's own text for a lost
/// connection is "Error in the hyper legacy client: client error (Connect)").
fn engine_error(e: &bollard::errors::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // hyper's errors repeat their source's words in their own.
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// Whether creating a container failed because its name is taken: Docker answers 409, Podman 500
/// with "is already in use".
pub fn name_taken(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code: 409, .. } => true,
        bollard::errors::Error::DockerResponseServerError { status_code: 500, message } => {
            message.contains("already in use")
        }
        _ => false,
    }
}

/// Starts the firewall sidecar and waits until it reports the rules applied and verified; its output
/// is the error when it stops first.
async fn start_sidecar(docker: &Docker, side: &str) -> Result<(), SessionError> {
    let attach = docker
        .attach_container(
            side,
            Some(AttachContainerOptions {
                stream: true,
                stdout: true,
                stderr: true,
                logs: false,
                ..Default::default()
            }),
        )
        .await
        .map_err(SessionError::Attach)?;
    docker.start_container(side, None).await.map_err(SessionError::Start)?;
    let mut output = attach.output;
    let mut seen = String::new();
    while let Some(Ok(chunk)) = output.next().await {
        seen.push_str(&chunk.to_string());
        if seen.contains("codex-box-firewall-ready") {
            return Ok(());
        }
    }
    Err(SessionError::Sidecar(seen.trim().to_string()))
}

/// One line summarising `ipset list` output of the blocked-destination sets: attempts, destinations,
/// the first ten with their counts. `None` when nothing was blocked.
pub fn blocked_summary(ipset_list: &str) -> Option<String> {
    let mut members = false;
    let mut dests: Vec<(String, u64)> = Vec::new();
    for line in ipset_list.lines() {
        if line.starts_with("Name:") {
            members = false;
        } else if line.starts_with("Members:") {
            members = true;
        } else if members {
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some(first) = f.first() else { continue };
            let packets = f.windows(2).find(|w| w[0] == "packets").and_then(|w| w[1].parse().ok()).unwrap_or(0);
            let dest = first.replacen(',', " ", 1);
            dests.push((dest, packets));
        }
    }
    if dests.is_empty() {
        return None;
    }
    let total: u64 = dests.iter().map(|d| d.1).sum();
    let shown: Vec<String> = dests.iter().take(10).map(|(d, p)| format!("{d} ({p})")).collect();
    let more = if dests.len() > 10 { ", ..." } else { "" };
    Some(format!("{total} packet(s) to {} destination(s): {}{more}", dests.len(), shown.join(", ")))
}

/// SIGINT/SIGTERM/SIGHUP: before the container runs, cancel; afterwards, forward to the container
/// (a second SIGINT kills it). In TTY mode Ctrl-C is a byte on the terminal, not a signal.
async fn forward_signals(
    docker: Docker,
    started: Arc<Mutex<Option<String>>>,
    cancel: tokio::sync::watch::Sender<bool>,
    _tty: bool,
) {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        return;
    };
    let mut interrupts = 0;
    loop {
        let sig = tokio::select! {
            _ = int.recv() => { interrupts += 1; if interrupts > 1 { "SIGKILL" } else { "SIGINT" } }
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
        };
        let name = started.lock().expect("not poisoned").clone();
        match name {
            Some(name) => {
                let _ = docker.kill_container(&name, Some(KillContainerOptions { signal: sig.into() })).await;
            }
            None => {
                let _ = cancel.send(true);
            }
        }
    }
}

async fn propagate_resize(docker: Docker, name: String) {
    let Ok(mut winch) = signal(SignalKind::window_change()) else { return };
    while winch.recv().await.is_some() {
        if let Some((rows, cols)) = tty::size() {
            let _ =
                docker.resize_container_tty(&name, ResizeContainerTTYOptions { h: rows as i32, w: cols as i32 }).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_summary_matches_the_entrypoints() {
        let list = "Name: codex_blocked4\nType: hash:ip,port\nMembers:\n198.51.100.11,tcp:80 packets 2 bytes 120\n198.51.100.10,udp:53 packets 1 bytes 60\nName: codex_blocked6\nMembers:\n2001:db8::11,tcp:80 packets 1 bytes 80\n";
        assert_eq!(
            blocked_summary(list).unwrap(),
            "4 packet(s) to 3 destination(s): 198.51.100.11 tcp:80 (2), 198.51.100.10 udp:53 (1), 2001:db8::11 tcp:80 (1)"
        );
        assert_eq!(blocked_summary("Name: codex_blocked4\nMembers:\n"), None);
    }

    #[test]
    fn session_dir_is_readable_and_holds_the_scripts() {
        let t = tempfile::tempdir().unwrap();
        let hook = t.path().join("h");
        std::fs::write(&hook, "#!/bin/sh\n").unwrap();
        let files = SessionFiles {
            init_hook: Some(hook),
            ca_pem: b"PEM".to_vec(),
            managed_config: "sandbox_mode = \"danger-full-access\"\n".into(),
            extra: vec![("firewall.v4".into(), b"*filter".to_vec())],
        };
        let d = write_session_dir(&files).unwrap();
        let mode = |n: &str| std::fs::metadata(d.path().join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("."), 0o755);
        assert_eq!(mode("init.sh"), 0o755);
        assert_eq!(mode("entrypoint.sh"), 0o644);
        assert_eq!(std::fs::read(d.path().join("ca.pem")).unwrap(), b"PEM");
        assert_eq!(std::fs::read(d.path().join("firewall.v4")).unwrap(), b"*filter");
    }
}
