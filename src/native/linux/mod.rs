//! The Linux backend: translates a [`Policy`] into namespaces, mounts, Landlock and seccomp, runs the
//! command as a child and reports what was enforced.
//!
//! Enforced with full kernel support: writes only inside the writable roots (Landlock, every right of
//! the running ABI); .git/.codex/.agents and protected paths read-only inside them; credential stores
//! hidden; private /tmp and /dev/shm; devices opt-in; no ptrace/process_vm/io_uring/TIOCSTI; PID, IPC
//! and (network off or by name) network namespaces; network by name only through the proxy
//! (`egress`); no capabilities, no_new_privs. Not enforced: reads outside the hidden paths, CPU/memory
//! limits, unix sockets reachable by path.

mod child;
mod egress;

/// Where the egress proxy (and the API relay) listens inside the sandbox's network namespace.
pub const PROXY_LISTEN: std::net::SocketAddrV4 = egress::LISTEN;
mod landlock;
mod launch;
mod mounts;
mod namespaces;
mod notify;
mod seccomp;
mod spawn;
mod sys;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::native::{env, exe, Enforcement, Feature, Options, Outcome, Support};
use crate::policy::{DomainPolicy, NetPolicy, Policy};

#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    #[error(transparent)]
    Landlock(#[from] landlock::LandlockError),
    #[error(transparent)]
    Spawn(#[from] spawn::SpawnError),
    #[error("seccomp is not available in this kernel (CONFIG_SECCOMP_FILTER); use a kernel with it or pass --allow-degraded")]
    NoSeccomp,
    #[error("user namespaces are not available: {0}; or pass --allow-degraded to run without them")]
    NoUserNs(String),
    #[error("--log-denials needs seccomp user notification (Linux 5.0+), which this kernel lacks; drop --log-denials")]
    NoUserNotif,
    #[error("allowed domains need a network namespace whose only way out is the proxy, and user namespaces are not available: {0}; without them the sandbox cannot restrict the network to names (--allow-degraded does not change this)")]
    DomainsNeedNamespaces(String),
    #[error(transparent)]
    Egress(#[from] crate::native::egress::EgressError),
    #[error("command not found: `{0}` (searched PATH)")]
    NotFound(String),
    #[error("cannot create the placeholder {path} that keeps it read-only: {error}; create it yourself or drop it from protected_paths")]
    Placeholder { path: PathBuf, error: std::io::Error },
    #[error("sandbox setup failed: cannot {step}: {error}{advice}")]
    Setup { step: launch::SetupStep, error: std::io::Error, advice: String },
    #[error("cannot determine the current directory: {0}")]
    Cwd(std::io::Error),
}

impl LinuxError {
    /// Whether the kernel refused the user namespace (or its capabilities, as AppArmor does).
    pub fn is_userns_refusal(&self) -> bool {
        matches!(self, LinuxError::Spawn(spawn::SpawnError::Namespaces { .. }))
            || matches!(self, LinuxError::Setup { advice, .. } if !advice.is_empty())
    }

    /// The shell's exit code for a command that could not be run (127 not found, 126 not executable).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            LinuxError::NotFound(_) => Some(127),
            LinuxError::Setup { step: launch::SetupStep::Exec(_), error, .. } => {
                Some(if error.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 })
            }
            _ => None,
        }
    }
}

fn pretend() -> Vec<Feature> {
    let v = std::env::var("CODEX_BOX_SANDBOX_PRETEND_MISSING").unwrap_or_default();
    v.split(',').filter_map(|s| Feature::parse(s.trim())).collect()
}

/// What the running kernel offers (honouring `CODEX_BOX_SANDBOX_PRETEND_MISSING`, for tests).
pub fn probe() -> Support {
    let mut s = probe_quick();
    s.user_notif = s.seccomp && user_notif_available();
    s
}

/// `probe` without the user-notification check (a procfs read), which only --log-denials needs.
fn probe_quick() -> Support {
    let fake = pretend();
    let landlock_abi = if fake.contains(&Feature::Landlock) { None } else { landlock::abi().ok() };
    // SAFETY: integer prctl query.
    let seccomp = !fake.contains(&Feature::Seccomp) && unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0;
    let userns = !fake.contains(&Feature::UserNs)
        && std::fs::read_to_string("/proc/sys/user/max_user_namespaces").map_or(true, |s| s.trim() != "0");
    Support { landlock_abi, seccomp, user_notif: false, userns }
}

fn user_notif_available() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").is_ok_and(|s| s.contains("user_notif"))
}

fn cstr(s: &[u8]) -> CString {
    CString::new(s.iter().copied().filter(|b| *b != 0).collect::<Vec<u8>>()).unwrap_or_default()
}

/// Runs `argv` under `policy`.
pub fn run(policy: &Policy, argv: &[String], opts: &Options) -> Result<Outcome, LinuxError> {
    let domains = match &policy.net {
        NetPolicy::Domains(d) => Some(&**d),
        _ => None,
    };
    let network_off = policy.net == NetPolicy::None;
    let support = probe_quick();
    let mut missing: Vec<String> = Vec::new();
    let boundary = !policy.full_access;

    let landlock_abi = match (boundary, support.landlock_abi) {
        (false, _) => None,
        (true, Some(abi)) => Some(abi),
        (true, None) if opts.allow_degraded => {
            missing.push("Landlock: writes anywhere the user may write are NOT prevented".into());
            None
        }
        (true, None) => return Err(landlock::LandlockError::Unsupported(libc::ENOSYS).into()),
    };
    let use_seccomp = boundary && (support.seccomp || !opts.allow_degraded);
    if boundary && !support.seccomp {
        if !opts.allow_degraded {
            return Err(LinuxError::NoSeccomp);
        }
        missing.push("seccomp: ptrace, io_uring, TIOCSTI and non-unix sockets are NOT refused".into());
    }
    if opts.log_denials && use_seccomp && !user_notif_available() {
        return Err(LinuxError::NoUserNotif);
    }
    let use_ns = boundary && support.userns;
    if boundary && !support.userns {
        if domains.is_some() {
            return Err(LinuxError::DomainsNeedNamespaces(namespaces::userns_advice()));
        }
        if !opts.allow_degraded {
            return Err(LinuxError::NoUserNs(namespaces::userns_advice()));
        }
        missing.push("user namespaces: .git/.codex/.agents and protected paths are NOT read-only, credential stores NOT hidden, /tmp NOT private, no PID or network namespace".into());
    }

    let (mut vars, _removed) = env::scrub(
        std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())),
        &policy.env,
    );
    if domains.is_some() {
        crate::native::egress::point_at(&mut vars, std::net::SocketAddr::V4(egress::LISTEN));
    }
    let path_var = vars.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str());
    let exe = exe::find_exe(&argv[0], path_var, &exe::LINUX).ok_or_else(|| LinuxError::NotFound(argv[0].clone()))?;
    let cwd = std::env::current_dir().map_err(LinuxError::Cwd)?;

    let ctx = Ctx {
        policy,
        argv,
        opts,
        vars: &vars,
        exe: &exe,
        cwd: &cwd,
        network_off,
        domains,
        boundary,
        landlock_abi,
        use_seccomp,
    };
    if !missing.is_empty() {
        eprintln!("codex-box: degraded sandbox (--allow-degraded); NOT enforced:");
        for m in &missing {
            eprintln!("  - {m}");
        }
    }
    let code = match attempt(&ctx, use_ns) {
        Err(e) if use_ns && opts.allow_degraded && e.is_userns_refusal() && domains.is_none() => {
            let m = "user namespaces (refused by the kernel): .git/.codex/.agents and protected paths are NOT read-only, credential stores NOT hidden, /tmp NOT private, no PID or network namespace";
            eprintln!("codex-box: {e}\ncodex-box: degraded sandbox (--allow-degraded); NOT enforced:\n  - {m}");
            missing.push(m.into());
            attempt(&ctx, false)?
        }
        r => r?,
    };
    missing.extend(landlock_abi.map(landlock::gaps).unwrap_or_default().into_iter().map(String::from));
    let enforcement = if missing.is_empty() || !boundary { Enforcement::Full } else { Enforcement::Partial(missing) };
    Ok(Outcome { code, enforcement })
}

/// What one attempt needs.
struct Ctx<'a> {
    policy: &'a Policy,
    argv: &'a [String],
    opts: &'a Options,
    vars: &'a [(String, String)],
    exe: &'a Path,
    cwd: &'a Path,
    network_off: bool,
    /// Network by name: a network namespace whose only way out is the proxy.
    domains: Option<&'a DomainPolicy>,
    boundary: bool,
    landlock_abi: Option<u32>,
    use_seccomp: bool,
}

/// Builds the launch (with or without namespaces), runs it, and removes the placeholders.
fn attempt(c: &Ctx, use_ns: bool) -> Result<i32, LinuxError> {
    let policy = c.policy;
    if use_ns && pretend().contains(&Feature::UserNsAtClone) {
        let error = std::io::Error::from_raw_os_error(libc::EPERM);
        return Err(spawn::SpawnError::Namespaces { error, advice: namespaces::userns_advice() }.into());
    }
    let mut placeholders = Vec::new();
    let mut steps = Vec::new();
    if use_ns {
        for p in &policy.fs.protected {
            if p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                eprintln!(
                    "codex-box: warning: protected path {} is a symbolic link: its target is read-only, the link itself can be replaced",
                    p.display()
                );
            }
        }
        for p in mounts::placeholders(&policy.fs, &mounts::host_kind) {
            if let Err(error) = std::fs::create_dir(&p) {
                remove(&placeholders);
                return Err(LinuxError::Placeholder { path: p.clone(), error });
            }
            placeholders.push(p);
        }
        // Hide what a path resolves to (e.g. /var/run/docker.sock is /run/docker.sock): one mount
        // each, and a symlinked ~/.ssh is hidden where it really lives.
        let mut fs = policy.fs.clone();
        fs.deny_read = fs
            .deny_read
            .iter()
            .filter(|p| p.exists())
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        steps = mounts::prepare(&mounts::plan(&fs, c.cwd, true, &mounts::host_kind));
    }
    let result = launch_and_wait(c, use_ns, steps);
    remove(&placeholders);
    result
}

fn remove(placeholders: &[PathBuf]) {
    for p in placeholders.iter().rev() {
        let _ = std::fs::remove_dir(p);
    }
}

fn launch_and_wait(c: &Ctx, use_ns: bool, steps: Vec<mounts::Prepared>) -> Result<i32, LinuxError> {
    let (policy, opts, network_off) = (c.policy, c.opts, c.network_off);
    let landlock = match c.landlock_abi {
        Some(abi) => {
            // Top-level symlinks (/bin -> usr/bin) point into other top-level entries: no rule needed.
            let top: Vec<PathBuf> = std::fs::read_dir("/")
                .map(|d| {
                    d.flatten().filter(|e| e.file_type().is_ok_and(|t| !t.is_symlink())).map(|e| e.path()).collect()
                })
                .unwrap_or_default();
            let plan = landlock::plan(&policy.fs, network_off, abi, &top, use_ns);
            Some((landlock::create(&plan)?, landlock::prepare_rules(&plan)))
        }
        None => None,
    };
    let sockets = match (network_off, c.domains) {
        (true, _) => seccomp::Sockets::Unix,
        (false, Some(_)) => seccomp::Sockets::UnixAndIp,
        (false, None) => seccomp::Sockets::Any,
    };
    let rules = seccomp::rules(sockets);
    let new_net = network_off || c.domains.is_some();
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let launch = launch::Launch {
        exe: cstr(c.exe.as_os_str().as_bytes()),
        argv: c.argv.iter().map(|a| cstr(a.as_bytes())).collect(),
        envp: c.vars.iter().map(|(k, v)| cstr(format!("{k}={v}").as_bytes())).collect(),
        cwd: cstr(c.cwd.as_os_str().as_bytes()),
        namespaces: use_ns
            .then(|| (namespaces::clone_flags(new_net), namespaces::id_map(uid), namespaces::id_map(gid))),
        mounts: steps,
        landlock,
        harden: c.boundary,
        seccomp: c.use_seccomp.then(|| seccomp::compile(&rules, opts.log_denials)),
        notify: opts.log_denials && c.use_seccomp,
        proxy: use_ns && c.domains.is_some(),
        // Capabilities the kernel does not know answer EINVAL, which the child ignores.
        cap_last: 63,
    };
    if opts.verbose {
        for g in c.landlock_abi.map(landlock::gaps).unwrap_or_default() {
            eprintln!("codex-box: sandbox: {g}");
        }
        eprintln!(
            "codex-box: sandbox: {}; seccomp {}; namespaces {}; {} writable root(s), {} protected, {} hidden, /tmp {}",
            c.landlock_abi.map_or("no Landlock".into(), |a| format!("Landlock ABI {a}")),
            if c.use_seccomp { format!("{} rules", rules.len()) } else { "off".into() },
            if use_ns {
                if new_net {
                    "user+mount+pid+ipc+net"
                } else {
                    "user+mount+pid+ipc"
                }
            } else {
                "none"
            },
            policy.fs.write_roots.len(),
            policy.fs.protected.len(),
            policy.fs.deny_read.len(),
            if policy.fs.shared_tmp || !use_ns { "shared" } else { "private" },
        );
    }
    if let (true, Some(d)) = (opts.verbose, c.domains) {
        eprintln!(
            "codex-box: sandbox: network only through the proxy at {} ({} allowed, {} denied pattern(s), ports {:?})",
            egress::LISTEN,
            d.rules.allow.len(),
            d.rules.deny.len(),
            d.ports
        );
    }
    // Before the command exists: a resolver or log that cannot work stops the run here.
    let proxy = match c.domains {
        Some(d) => Some(
            crate::native::egress::prepare(d, opts.proxy_log.as_deref(), opts.log_denials)?
                .with_relay(opts.relay.clone()),
        ),
        None => None,
    };
    run_tree(&launch, &rules, opts, proxy)
}

fn run_tree(
    launch: &launch::Launch,
    rules: &[seccomp::Rule],
    opts: &Options,
    proxy: Option<crate::native::egress::Prepared>,
) -> Result<i32, LinuxError> {
    let mut started = spawn::start(launch)?;
    if let Some(failure) = started.failure {
        spawn::wait(&started);
        return Err(explain(failure, launch));
    }
    let proxy = match (proxy, started.proxy.take()) {
        (Some(p), Some(listener)) => match egress::serve(p, listener) {
            Ok(running) => Some(running),
            Err(e) => {
                kill_tree(&started);
                return Err(e.into());
            }
        },
        (Some(_), None) => {
            kill_tree(&started);
            let error = std::io::Error::from_raw_os_error(libc::EPROTO);
            let step = launch::SetupStep::Proxy(egress::ProxyStep::Send);
            return Err(LinuxError::Setup { step, error, advice: String::new() });
        }
        (None, _) => None,
    };
    let logger = match started.listener.take() {
        Some(l) => match notify::start(l) {
            Ok(logger) => Some(logger),
            Err(error) => {
                kill_tree(&started);
                return Err(spawn::SpawnError::Os { what: "start the denial logger", error }.into());
            }
        },
        None => None,
    };
    let code = spawn::wait(&started);
    if let Some(running) = proxy {
        let summary = running.finish();
        crate::notice!("codex-box: {summary}");
    }
    if let Some(logger) = logger {
        let denials = logger.finish();
        if opts.log_denials {
            eprintln!("codex-box: the sandbox refused {} system call(s)", denials.len());
            for d in &denials {
                eprintln!("  denied: {} by pid {} ({})", seccomp::describe(rules, d.nr, &d.args), d.pid, d.comm);
            }
        }
    }
    Ok(code)
}

/// Kills a started tree (its init takes the namespace with it) and reaps it.
fn kill_tree(started: &spawn::Started) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(started.pid, libc::SIGKILL) };
    spawn::wait(started);
}

fn explain(f: launch::ChildFailure, l: &launch::Launch) -> LinuxError {
    let error = std::io::Error::from_raw_os_error(f.errno);
    let step = launch::SetupStep::of(&f, l);
    let advice = match (f.stage, f.errno) {
        (launch::Stage::IdMap | launch::Stage::Mount, libc::EPERM | libc::EACCES) => format!("; {}", namespaces::userns_advice()),
        (launch::Stage::Exec, libc::ENOENT) if l.exe.to_bytes().starts_with(b"/tmp/") => {
            "; it lives below /tmp, which is private in the sandbox: move it, add its directory with -w, or set shared_tmp = true".into()
        }
        _ => String::new(),
    };
    LinuxError::Setup { step, error, advice }
}
