//! Native sandboxes: the backend seam between the one [`Policy`] and the host kernel.
//!
//! `profile` builds the policy from flags and TOML; `env` scrubs secrets from the environment; `exe`
//! finds the program to run;
//! `egress` serves the allowlisting proxy for network by name (Linux and macOS); the
//! platform backend (`linux`: Landlock + seccomp + namespaces; `macos`: Seatbelt through sandbox-exec;
//! `windows`: a write-restricted token, ACLs and a job object) enforces it and reports an
//! [`Enforcement`]. Each backend's pure translation (Seatbelt profile, Windows plan) compiles on every
//! platform so it is unit-tested on Linux. No backend reads configuration.

pub mod codex;
pub mod egress;
pub mod env;
pub mod exe;
pub mod profile;

#[cfg(target_os = "linux")]
pub mod linux;
pub mod macos;
pub mod windows;

use crate::cli::{Platform, SandboxArgs};
use crate::policy::Policy;

/// A kernel feature the Linux backend relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Landlock,
    Seccomp,
    UserNs,
    /// User namespaces that look available but are refused when the sandbox starts (tests only).
    UserNsAtClone,
}

impl Feature {
    /// Parses `landlock`, `seccomp`, `userns` or `userns-at-clone` (for
    /// `CODEX_BOX_SANDBOX_PRETEND_MISSING`, which tests use instead of kernel mocks).
    pub fn parse(s: &str) -> Option<Feature> {
        match s {
            "landlock" => Some(Feature::Landlock),
            "seccomp" => Some(Feature::Seccomp),
            "userns" => Some(Feature::UserNs),
            "userns-at-clone" => Some(Feature::UserNsAtClone),
            _ => None,
        }
    }
}

/// What the host kernel offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    pub landlock_abi: Option<u32>,
    pub seccomp: bool,
    pub user_notif: bool,
    pub userns: bool,
}

/// What the sandbox enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    Full,
    /// Accepted with `--allow-degraded`: what is not enforced.
    Partial(Vec<String>),
}

/// Run options that are not policy.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub allow_degraded: bool,
    pub log_denials: bool,
    pub verbose: bool,
    /// Where the egress proxy logs its decisions (network by name); `None`: counts only.
    pub proxy_log: Option<std::path::PathBuf>,
    /// The API relay the proxy also serves (`--codex` with an API key and network by name).
    #[cfg(target_os = "linux")]
    pub relay: Option<std::sync::Arc<crate::proxy::relay::RelayConfig>>,
}

/// The command's exit code (128+N for a signal) and what was enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub enforcement: Enforcement,
}

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error("the native {0} sandbox is not supported on this platform yet; use the container mode (`codex-box run`)")]
    Unsupported(&'static str),
    #[error("the {asked} sandbox cannot run on this {host} host; omit the platform or use `codex-box sandbox {host}`")]
    WrongHost { asked: &'static str, host: &'static str },
    #[error(transparent)]
    Profile(#[from] profile::ProfileError),
    #[error("allowed domains with danger-full-access is not a policy any backend runs (full access has the whole network); use -s workspace-write or read-only")]
    DomainsWithFullAccess,
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Linux(#[from] linux::LinuxError),
    #[cfg(target_os = "macos")]
    #[error(transparent)]
    Macos(#[from] macos::MacosError),
    #[cfg(windows)]
    #[error(transparent)]
    Windows(#[from] windows::WindowsError),
}

fn name(p: Platform) -> &'static str {
    match p {
        Platform::Linux => "linux",
        Platform::Macos => "macos",
        Platform::Windows => "windows",
    }
}

fn host_platform() -> Platform {
    if cfg!(target_os = "macos") {
        Platform::Macos
    } else if cfg!(windows) {
        Platform::Windows
    } else {
        Platform::Linux
    }
}

/// Probes the host's sandboxing support.
pub fn probe() -> Option<Support> {
    #[cfg(target_os = "linux")]
    return Some(linux::probe());
    #[cfg(not(target_os = "linux"))]
    None
}

/// Enforces `policy` on `argv` with the host's backend.
pub fn apply(policy: &Policy, argv: &[String], opts: &Options) -> Result<Outcome, NativeError> {
    // The profile refuses this; no backend may ever run it (Linux would give no namespace at all).
    if policy.full_access && matches!(policy.net, crate::policy::NetPolicy::Domains(_)) {
        return Err(NativeError::DomainsWithFullAccess);
    }
    #[cfg(target_os = "linux")]
    return Ok(linux::run(policy, argv, opts)?);
    #[cfg(target_os = "macos")]
    return Ok(macos::run(policy, argv, opts)?);
    #[cfg(windows)]
    return Ok(windows::run(policy, argv, opts)?);
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        let _ = (policy, argv, opts);
        Err(NativeError::Unsupported(name(host_platform())))
    }
}

/// Where the proxy logs for a run: `<state dir>/proxy/sandbox-<pid>.log`, unless the command could
/// write there (a writable root containing the state directory — it could plant links for a later
/// run to follow): then no file, and a warning.
fn proxy_log_path(policy: &Policy, state_dir: &std::path::Path) -> Option<std::path::PathBuf> {
    // A private /tmp is the sandbox's own tmpfs, not the host's.
    let writable =
        policy.fs.write_roots.iter().filter(|r| policy.fs.shared_tmp || r.as_path() != std::path::Path::new("/tmp"));
    if let Some(root) = crate::config::containing(state_dir, writable) {
        eprintln!(
            "codex-box: warning: not writing the proxy log: the state directory {} is inside {}, which the command can write; set XDG_STATE_HOME outside it",
            state_dir.display(),
            root.display()
        );
        return None;
    }
    Some(state_dir.join("proxy").join(format!("sandbox-{}.log", std::process::id())))
}

/// `--codex`: Codex's command line (with codex-box's layer) and its home for this run.
#[cfg(unix)]
fn codex_run(
    args: &SandboxArgs,
    env: &crate::host_env::HostEnv,
    host: &profile::Host,
) -> anyhow::Result<(Vec<String>, Option<codex::Layout>)> {
    crate::codex_layer::check_args(&args.command, crate::codex_layer::Boundary::Native)
        .map_err(codex::CodexError::from)?;
    let program = codex::find_codex(env.path.as_deref())?;
    let state = env.state_dir.as_ref().ok_or(codex::CodexError::NoStateDir)?;
    let layout = codex::Layout::new(state, &host.cwd, env.home.as_deref(), env.codex_home.as_deref())
        .ok_or(codex::CodexError::NoStateDir)?;
    Ok((codex::argv(&program, &args.command), Some(layout)))
}

#[cfg(not(unix))]
fn codex_run(
    _: &SandboxArgs,
    _: &crate::host_env::HostEnv,
    _: &profile::Host,
) -> anyhow::Result<(Vec<String>, Option<codex::Layout>)> {
    anyhow::bail!("--codex: Codex under the native sandbox runs on Linux and macOS; on Windows use WSL2")
}

/// `--codex` with `OPENAI_API_KEY` and network by name (Linux): the key stays with codex-box. The
/// proxy in the sandbox's namespace also serves the API relay ([`crate::proxy::relay`]); Codex gets
/// `-c` overrides pointing the provider in use at it (`http://127.0.0.1:3128/v1`) and a placeholder
/// key, and `CODEX_API_KEY` is not passed. A provider that takes no `OPENAI_API_KEY` gets no key.
/// With `--network` (no proxy) the key is kept as before.
#[cfg(target_os = "linux")]
fn codex_relay(
    env: &crate::host_env::HostEnv,
    layout: &codex::Layout,
    policy: &mut crate::policy::Policy,
    argv: &mut Vec<String>,
) -> anyhow::Result<Option<std::sync::Arc<crate::proxy::relay::RelayConfig>>> {
    let (crate::policy::NetPolicy::Domains(d), Some(key)) = (&policy.net, &env.openai_api_key) else {
        return Ok(None);
    };
    let resolver = d.resolver.clone();
    let config = std::fs::read_to_string(layout.user_home.join("config.toml")).ok();
    let url = format!("http://{}{}", linux::PROXY_LISTEN, crate::proxy::relay::PREFIX);
    let drop_keys = |policy: &mut crate::policy::Policy| {
        policy.env.keep.retain(|k| !codex::KEPT_ENV.contains(&k.as_str()));
    };
    let Some(layer) = crate::codex_layer::relay_layer(config.as_deref(), &url) else {
        // The provider in use takes no OPENAI_API_KEY: the command needs no key at all.
        drop_keys(policy);
        return Ok(None);
    };
    let upstream = crate::proxy::relay::Upstream::parse(&layer.upstream).map_err(|e| {
        anyhow::anyhow!(
            "--codex: {e}; set the provider's base_url (or openai_base_url) in config.toml to an https:// URL"
        )
    })?;
    let tls = crate::egress::dot::client_config(&crate::egress::DnsTls {
        name: upstream.host.clone(),
        extra_roots: env.ca_certs.clone(),
    })?;
    drop_keys(policy);
    policy.env.set.push(("OPENAI_API_KEY".into(), crate::codex_layer::PLACEHOLDER_KEY.into()));
    let at = 1 + crate::codex_layer::CLI_OVERRIDE.len();
    for o in layer.overrides.iter().rev() {
        argv.splice(at..at, ["-c".to_string(), o.clone()]);
    }
    Ok(Some(std::sync::Arc::new(crate::proxy::relay::RelayConfig {
        upstream,
        addrs: Vec::new(),
        key: key.clone(),
        tls: std::sync::Arc::new(tls),
        resolver,
    })))
}

/// `codex-box sandbox [PLATFORM] [OPTIONS] -- CMD`: returns the exit code to exit with.
pub fn run_cli(args: &SandboxArgs) -> anyhow::Result<i32> {
    let host = host_platform();
    let asked = args.platform.unwrap_or(host);
    if asked != host {
        return Err(NativeError::WrongHost { asked: name(asked), host: name(host) }.into());
    }
    let env = crate::host_env::HostEnv::from_process();
    let host_facts = profile::Host::current(&env).map_err(NativeError::from)?;
    let (argv, codex) = if args.codex { codex_run(args, &env, &host_facts)? } else { (args.command.clone(), None) };
    #[allow(unused_mut)]
    let mut policy = profile::policy_from_args(args, &host_facts, env.config_home.as_deref(), codex.as_ref())
        .map_err(NativeError::from)?;
    #[allow(unused_mut)]
    let mut argv = argv;
    #[cfg(target_os = "linux")]
    let relay = match &codex {
        Some(layout) => codex_relay(&env, layout, &mut policy, &mut argv)?,
        None => None,
    };
    // Only now, with the policy valid: nothing is made for input that is refused. (Elsewhere
    // `codex_run` has already refused --codex.)
    #[cfg(unix)]
    if let Some(layout) = &codex {
        codex::prepare(layout)?;
    }
    let proxy_log = match (&policy.net, &env.state_dir) {
        (crate::policy::NetPolicy::Domains(_), Some(dir)) => proxy_log_path(&policy, dir),
        _ => None,
    };
    let opts = Options {
        allow_degraded: args.allow_degraded,
        log_denials: args.log_denials,
        verbose: args.verbose,
        proxy_log,
        #[cfg(target_os = "linux")]
        relay,
    };
    // The backend has already said, before the command ran, what it could not enforce.
    match apply(&policy, &argv, &opts) {
        Ok(outcome) => Ok(outcome.code),
        #[cfg(target_os = "linux")]
        Err(NativeError::Linux(e)) if e.exit_code().is_some() => {
            eprintln!("codex-box: {e}");
            Ok(e.exit_code().unwrap_or(1))
        }
        #[cfg(target_os = "macos")]
        Err(NativeError::Macos(e)) if e.exit_code().is_some() => {
            eprintln!("codex-box: {e}");
            Ok(e.exit_code().unwrap_or(1))
        }
        #[cfg(windows)]
        Err(NativeError::Windows(e)) if e.exit_code().is_some() => {
            eprintln!("codex-box: {e}");
            Ok(e.exit_code().unwrap_or(1))
        }
        Err(e) => Err(e.into()),
    }
}
