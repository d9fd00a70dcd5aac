//! The engine-neutral description of a session that the orchestration ([`super::run`]) hands to a
//! backend ([`super::Engine`]): what runs, as whom, with which mounts, limits and egress files.
//! Pure data; each backend translates it (Docker: `crate::docker::spec`).

use std::path::{Path, PathBuf};

use crate::session::codex_home::CodexHome;

/// Everything a backend needs to make the session's container(s): a pure value, made once from
/// the policy by [`super::run`], the same for every engine.
#[derive(Debug, Clone)]
pub struct Plan {
    pub image: String,
    pub work_dir: PathBuf,
    pub command: Vec<String>,
    pub tty: bool,
    /// Terminal size (rows, columns) at start, applied by the entrypoint before the agent runs.
    pub tty_size: Option<(u16, u16)>,
    pub uid: u32,
    pub gid: u32,
    pub home: CodexHome,
    pub read_only: Vec<PathBuf>,
    pub limits: Limits,
    pub allow_git_write: bool,
    pub extra_env: Vec<(String, String)>,
    /// Docker network to join (None: the engine's default).
    pub network: Option<String>,
    /// Whether the session directory holds a `hosts` file to mount at /etc/hosts.
    pub pinned_hosts: bool,
    /// The container's resolvers (only when DNS is allowed).
    pub dns: Vec<String>,
    /// Where the firewall is applied (when there is one).
    pub applier: Applier,
    /// OCI runtime of the agent's container (None: the engine's default).
    pub runtime: Option<String>,
    /// A directory private to the user for host-wide locks between codex-box processes
    /// (`$XDG_RUNTIME_DIR`, else the state directory): an engine that cannot create two
    /// containers at once gets one at a time (`crate::docker::create_lock`).
    pub lock_dir: Option<PathBuf>,
}

/// Where the egress firewall is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Applier {
    /// By the agent container's root entrypoint, before the agent exists. Cheapest; NET_ADMIN stays
    /// in the container's capability set (never in the agent's), so a host user with Docker access
    /// could `docker exec -u 0` and change the rules.
    #[default]
    Entrypoint,
    /// By a sidecar container that owns the network namespace; the agent's container joins it and has
    /// no NET_ADMIN at all. Costs one more container per session.
    Sidecar,
}

/// Resource limits of a session container.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub memory_bytes: i64,
    pub nano_cpus: Option<i64>,
    pub pids: i64,
}

/// Files written into the session directory (mounted read-only at /run/codex-box).
#[derive(Debug, Clone, Default)]
pub struct SessionFiles {
    pub init_hook: Option<PathBuf>,
    pub ca_pem: Vec<u8>,
    /// Codex's managed configuration layer (`codex_layer::managed_config`), mounted read-only.
    pub managed_config: String,
    /// Extra named files (e.g. firewall.ipset / firewall.v4 / firewall.v6).
    pub extra: Vec<(String, Vec<u8>)>,
}

/// The outcome of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: i32,
    pub oom_killed: bool,
    /// How often the process limit refused a fork (from the container's pids cgroup, when readable).
    pub pids_limit_hits: u64,
    pub container: String,
}

/// Where a session's companion listens on the session's network: its beacon (the firewall
/// verification's blocked target), and the proxy and the API relay when it serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompanionAddrs {
    pub beacon: std::net::SocketAddr,
    pub proxy: Option<std::net::SocketAddr>,
    pub relay: Option<std::net::SocketAddr>,
}

/// Work to start beside the session once its container runs: the firewall's live refresh.
pub struct Refresh {
    pub allow: crate::egress::Allowlist,
    pub resolver: crate::egress::ResolverSettings,
    /// Shortest re-resolution interval.
    pub min_delay: std::time::Duration,
    pub initial: crate::egress::Resolution,
}

/// The session's name for a workdir (its container's, its proxy log's): `codex_<sanitised path>`, with `_N` for the N-th concurrent session.
pub fn session_name(work_dir: &Path, n: u32) -> String {
    let mut s: String = work_dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    s = s.trim_matches('_').to_string();
    if s.len() > 100 {
        let h = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(s.as_bytes())[..4]);
        s = format!("{}_{h}", &s[s.len() - 90..]);
    }
    let base = format!("codex_{s}");
    if n <= 1 {
        base
    } else {
        format!("{base}_{n}")
    }
}
