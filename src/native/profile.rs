//! Builds the one [`Policy`] of a native sandbox from a profile, a TOML file and flags.
//!
//! Layers, later wins: the built-in default (`read-only`) → top-level `sandbox_mode` and
//! `[sandbox_workspace_write]` (Codex's own `config.toml` keys) → `[permissions.NAME]` chosen with
//! `-P NAME` → command-line flags. Lists (writable roots, protected and hidden paths, kept variables)
//! accumulate. This module reads files and the environment; the backends never do.
//!
//! It does not enforce anything: `native::linux` translates the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::SandboxArgs;
use crate::egress::{NameError, Source};
use crate::policy::{DomainPolicy, EnvPolicy, FsPolicy, NetPolicy, Policy, SandboxMode};
use crate::proxy::Rules;

/// Credential stores hidden by default, relative to the home directory.
pub const CREDENTIAL_PATHS: &[&str] = &[
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".password-store",
    ".config/gcloud",
    ".kube",
    ".docker/config.json",
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".npmrc",
    ".pypirc",
    ".config/gh",
    ".config/hub",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    ".config/op",
    ".local/share/keyrings",
    ".config/containers/auth.json",
    ".gem/credentials",
];

/// Host service sockets hidden by default: reaching one is a way out of any sandbox.
pub const HOST_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/libvirt/libvirt-sock",
    "/run/snapd.socket",
];

/// Sockets of rootless engines below `$XDG_RUNTIME_DIR`, hidden with the host sockets even when
/// `hide_credentials = false` (their daemons live in their own network namespace, so
/// `/proc/net/unix` does not list them).
pub const RUNTIME_SOCKETS: &[&str] = &["docker.sock", "podman/podman.sock", "containerd-rootless/containerd.sock"];

/// Engine sockets below the home directory (Docker Desktop, Colima, Rancher Desktop, Lima).
pub const HOME_SOCKETS: &[&str] =
    &[".docker/run/docker.sock", ".docker/desktop/docker.sock", ".colima/default/docker.sock", ".rd/docker.sock"];

/// The (device, inode) of `p` when it is a socket itself (not a link to one).
fn socket_id(p: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = p.symlink_metadata().ok()?;
        m.file_type().is_socket().then(|| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = p;
        None
    }
}

/// Names that stay read-only at the top of every writable root, existing or not.
pub const PROTECTED_NAMES: &[&str] = &[".git", ".codex", ".agents"];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read config file {path}: {error}")]
    ReadConfig { path: PathBuf, error: std::io::Error },
    #[error("invalid config file {path}: {error}")]
    ParseConfig { path: PathBuf, error: Box<toml::de::Error> },
    #[error("unknown sandbox mode `{value}` in {origin}; use read-only, workspace-write or danger-full-access")]
    UnknownMode { value: String, origin: String },
    #[error("no profile [permissions.{name}] in {path}; defined: {available}")]
    UnknownProfile { name: String, path: PathBuf, available: String },
    #[error("-P {name} needs a config file with [permissions.{name}]; pass --config FILE")]
    NoConfig { name: String },
    #[error("{origin}: path `{path}` must be absolute (or start with ~/)")]
    RelativePath { path: String, origin: String },
    #[error("writable root {path} ({origin}) is not usable: {error}; create it or remove it")]
    BadRoot { path: PathBuf, origin: String, error: std::io::Error },
    #[error("writable root {path} ({origin}) is not a directory")]
    NotADirectory { path: PathBuf, origin: String },
    #[error("cannot determine the current directory: {0}")]
    Cwd(std::io::Error),
    #[error("--network does nothing in read-only mode; use -s workspace-write --network")]
    NetworkInReadOnly,
    #[error(transparent)]
    Domain(#[from] NameError),
    #[error("allowed domains do nothing with danger-full-access (it has the whole network); use -s workspace-write or read-only")]
    DomainsWithFullAccess,
    #[error("--deny-domain/--allow-port/--dns-server (deny_domains/allow_ports) without any allowed domain do nothing; add --allow-domain NAME")]
    DenyWithoutAllow,
    #[error("port 0 in --allow-port/allow_ports is not a destination port; use 1 to 65535, like --allow-port 8443")]
    PortZero,
    #[error("{path} ({origin}) is not a unix socket (a link or another file); name the socket itself")]
    NotASocket { path: PathBuf, origin: String },
}

/// `[sandbox_workspace_write]`, as in Codex.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct WorkspaceWriteToml {
    #[serde(default)]
    pub writable_roots: Vec<String>,
    pub network_access: Option<bool>,
    pub exclude_tmpdir_env_var: Option<bool>,
    pub exclude_slash_tmp: Option<bool>,
}

/// `[permissions.NAME]`: a named profile.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsToml {
    pub sandbox_mode: Option<String>,
    #[serde(default)]
    pub writable_roots: Vec<String>,
    pub network_access: Option<bool>,
    pub exclude_tmpdir_env_var: Option<bool>,
    pub exclude_slash_tmp: Option<bool>,
    pub allow_git_write: Option<bool>,
    /// Extra paths kept read-only inside writable roots (need not exist).
    #[serde(default)]
    pub protected_paths: Vec<String>,
    /// Extra paths hidden from the sandbox.
    #[serde(default)]
    pub deny_read: Vec<String>,
    /// Hide the built-in list of credential stores (default true).
    pub hide_credentials: Option<bool>,
    /// Hide every unix socket that is listening by path when the sandbox starts (default true).
    pub hide_sockets: Option<bool>,
    /// Sockets kept reachable although `hide_sockets` is on.
    #[serde(default)]
    pub allow_unix_sockets: Vec<String>,
    #[serde(default)]
    pub keep_env: Vec<String>,
    pub keep_all_env: Option<bool>,
    pub shared_tmp: Option<bool>,
    /// Network only to these names, through the filtering proxy.
    #[serde(default)]
    pub allow_domains: Vec<String>,
    /// Names refused even when allowed.
    #[serde(default)]
    pub deny_domains: Vec<String>,
    /// Destination ports the proxy connects to (default 443 and 80).
    #[serde(default)]
    pub allow_ports: Vec<u16>,
}

/// The parts of a config file the sandbox reads; other keys (Codex's) are ignored.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ConfigToml {
    pub sandbox_mode: Option<String>,
    pub sandbox_workspace_write: Option<WorkspaceWriteToml>,
    #[serde(default)]
    pub permissions: BTreeMap<String, PermissionsToml>,
}

/// Merged settings before paths are resolved (pure data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: SandboxMode,
    /// (path as written, where it came from)
    pub writable_roots: Vec<(String, String)>,
    pub network: bool,
    pub exclude_tmpdir_env_var: bool,
    pub exclude_slash_tmp: bool,
    pub allow_git_write: bool,
    pub protected: Vec<(String, String)>,
    pub deny_read: Vec<(String, String)>,
    pub hide_credentials: bool,
    pub hide_sockets: bool,
    /// (path as written, where it came from)
    pub allow_unix_sockets: Vec<(String, String)>,
    pub keep_env: Vec<String>,
    pub keep_all_env: bool,
    pub shared_tmp: bool,
    /// (entry, where it came from)
    pub allow_domains: Vec<(String, Source)>,
    pub deny_domains: Vec<(String, Source)>,
    /// The proxy's resolver, from `--dns-server` and `--dns-tls-name` (extra CAs come from the host).
    pub resolver: crate::egress::ResolverSettings,
    /// Destination ports for allowed domains (empty: 443 and 80).
    pub ports: Vec<u16>,
    /// `--codex`: Codex's home for this run (writable, its trusted copies read-only).
    pub codex: Option<super::codex::Layout>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: SandboxMode::ReadOnly,
            writable_roots: Vec::new(),
            network: false,
            exclude_tmpdir_env_var: false,
            exclude_slash_tmp: false,
            allow_git_write: false,
            protected: Vec::new(),
            deny_read: Vec::new(),
            hide_credentials: true,
            hide_sockets: true,
            allow_unix_sockets: Vec::new(),
            keep_env: Vec::new(),
            keep_all_env: false,
            shared_tmp: false,
            allow_domains: Vec::new(),
            deny_domains: Vec::new(),
            resolver: crate::egress::ResolverSettings::default(),
            ports: Vec::new(),
            codex: None,
        }
    }
}

/// Facts about the host the policy depends on.
#[derive(Debug, Clone)]
pub struct Host {
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    pub tmpdir: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR` (session bus, agents, rootless container sockets).
    pub runtime_dir: Option<PathBuf>,
    /// Unix sockets bound to a path in this network namespace (`/proc/net/unix`), that exist as
    /// sockets on this filesystem: the host's services (containerd, D-Bus, journald, agents, …).
    pub unix_sockets: Vec<PathBuf>,
    /// `CODEX_BOX_CA_CERTS` (':'-separated PEM files): trusted besides the system's CAs for
    /// DNS-over-TLS.
    pub ca_certs: Vec<PathBuf>,
}

impl Host {
    /// The facts of this process: its directory, the captured environment, the listening sockets.
    pub fn current(env: &crate::host_env::HostEnv) -> Result<Host, ProfileError> {
        Ok(Host {
            cwd: std::env::current_dir().map_err(ProfileError::Cwd)?,
            home: env.home.clone(),
            tmpdir: env.tmpdir.clone(),
            runtime_dir: env.runtime_dir.clone(),
            unix_sockets: listening_sockets(),
            ca_certs: env.ca_certs.clone(),
        })
    }
}

/// The paths of `/proc/net/unix` (pure): the last column when it is a path; abstract (`@…`) and
/// unnamed sockets have none. De-duplicated, in order.
pub fn parse_proc_net_unix(text: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in text.lines().skip(1) {
        // Num RefCount Protocol Flags Type St Inode [Path]; the path may contain spaces.
        let mut rest = line.trim_start();
        for _ in 0..7 {
            rest = rest.find(' ').map_or("", |i| rest[i..].trim_start());
        }
        if rest.starts_with('/') {
            push_unique(&mut out, PathBuf::from(rest));
        }
    }
    out
}

/// The host's listening unix sockets (Linux; empty elsewhere or when `/proc` cannot be read).
fn listening_sockets() -> Vec<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let text = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
        parse_proc_net_unix(&text)
            .into_iter()
            .filter(|p| p.symlink_metadata().is_ok_and(|m| m.file_type().is_socket()))
            .collect()
    }
    #[cfg(not(unix))]
    Vec::new()
}

fn mode(value: &str, origin: &str) -> Result<SandboxMode, ProfileError> {
    SandboxMode::parse(value)
        .ok_or_else(|| ProfileError::UnknownMode { value: value.to_string(), origin: origin.to_string() })
}

fn tagged<'a>(list: &'a [String], origin: &str) -> impl Iterator<Item = (String, String)> + 'a {
    let origin = origin.to_string();
    list.iter().map(move |p| (p.clone(), origin.clone()))
}

/// Parses a config file's text.
pub fn parse_config(text: &str, path: &Path) -> Result<ConfigToml, ProfileError> {
    toml::from_str(text).map_err(|e| ProfileError::ParseConfig { path: path.to_path_buf(), error: Box::new(e) })
}

/// Merges the layers into settings (pure).
pub fn merge(config: Option<(&Path, &ConfigToml)>, args: &SandboxArgs) -> Result<Settings, ProfileError> {
    let mut s = Settings::default();
    if let Some((path, cfg)) = config {
        let origin = path.display().to_string();
        if let Some(m) = &cfg.sandbox_mode {
            s.mode = mode(m, &format!("sandbox_mode in {origin}"))?;
        }
        if let Some(ww) = &cfg.sandbox_workspace_write {
            let o = format!("[sandbox_workspace_write] in {origin}");
            s.writable_roots.extend(tagged(&ww.writable_roots, &o));
            s.network = ww.network_access.unwrap_or(s.network);
            s.exclude_tmpdir_env_var = ww.exclude_tmpdir_env_var.unwrap_or(s.exclude_tmpdir_env_var);
            s.exclude_slash_tmp = ww.exclude_slash_tmp.unwrap_or(s.exclude_slash_tmp);
        }
    }
    if let Some(name) = &args.permissions_profile {
        let (path, cfg) = config.ok_or_else(|| ProfileError::NoConfig { name: name.clone() })?;
        let p = cfg.permissions.get(name).ok_or_else(|| ProfileError::UnknownProfile {
            name: name.clone(),
            path: path.to_path_buf(),
            available: if cfg.permissions.is_empty() {
                "none".to_string()
            } else {
                cfg.permissions.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })?;
        let o = format!("[permissions.{name}] in {}", path.display());
        if let Some(m) = &p.sandbox_mode {
            s.mode = mode(m, &o)?;
        }
        s.writable_roots.extend(tagged(&p.writable_roots, &o));
        s.network = p.network_access.unwrap_or(s.network);
        s.exclude_tmpdir_env_var = p.exclude_tmpdir_env_var.unwrap_or(s.exclude_tmpdir_env_var);
        s.exclude_slash_tmp = p.exclude_slash_tmp.unwrap_or(s.exclude_slash_tmp);
        s.allow_domains.extend(p.allow_domains.iter().map(|d| (d.clone(), Source::Profile)));
        s.deny_domains.extend(p.deny_domains.iter().map(|d| (d.clone(), Source::Profile)));
        s.ports.extend(&p.allow_ports);
        s.allow_git_write = p.allow_git_write.unwrap_or(s.allow_git_write);
        s.protected.extend(tagged(&p.protected_paths, &o));
        s.deny_read.extend(tagged(&p.deny_read, &o));
        s.hide_credentials = p.hide_credentials.unwrap_or(s.hide_credentials);
        s.hide_sockets = p.hide_sockets.unwrap_or(s.hide_sockets);
        s.allow_unix_sockets.extend(tagged(&p.allow_unix_sockets, &o));
        s.keep_env.extend(p.keep_env.iter().cloned());
        s.keep_all_env = p.keep_all_env.unwrap_or(s.keep_all_env);
        s.shared_tmp = p.shared_tmp.unwrap_or(s.shared_tmp);
    }
    if let Some(m) = &args.sandbox_mode {
        s.mode = mode(m, "--sandbox-mode")?;
    }
    if args.full_auto {
        s.mode = SandboxMode::WorkspaceWrite;
        s.network = false;
    }
    if !args.writable_root.is_empty() && s.mode == SandboxMode::ReadOnly {
        s.mode = SandboxMode::WorkspaceWrite;
    }
    s.writable_roots
        .extend(args.writable_root.iter().map(|p| (p.to_string_lossy().into_owned(), "--writable-root".to_string())));
    if args.network {
        if s.mode == SandboxMode::ReadOnly {
            return Err(ProfileError::NetworkInReadOnly);
        }
        s.network = true;
    }
    s.allow_domains.extend(args.allow_domain.iter().map(|d| (d.clone(), Source::Flag)));
    s.deny_domains.extend(args.deny_domain.iter().map(|d| (d.clone(), Source::DenyFlag)));
    s.ports.extend(&args.allow_port);
    if s.ports.contains(&0) {
        return Err(ProfileError::PortZero);
    }
    if args.dns_server.is_some() || args.dns_tls_name.is_some() {
        s.resolver = crate::egress::config::resolver_settings(
            args.dns_server.as_deref(),
            args.dns_tls_name.as_deref(),
            crate::egress::config::FROM_FLAGS,
            &[],
        )?;
    }
    if args.codex {
        // Codex edits the workspace unless a mode was chosen, and reaches its API by name.
        if args.sandbox_mode.is_none() && !args.full_auto && s.mode == SandboxMode::ReadOnly {
            s.mode = SandboxMode::WorkspaceWrite;
        }
        if !s.network && s.mode != SandboxMode::DangerFullAccess {
            s.allow_domains.extend(crate::egress::BUILTIN_NAMES.iter().map(|n| (n.to_string(), Source::Builtin)));
        }
        s.keep_env.extend(super::codex::KEPT_ENV.iter().map(|k| k.to_string()));
    }
    s.allow_git_write |= args.allow_git_write;
    s.allow_unix_sockets.extend(
        args.allow_unix_socket.iter().map(|p| (p.to_string_lossy().into_owned(), "--allow-unix-socket".to_string())),
    );
    s.keep_env.extend(args.keep_env.iter().cloned());
    Ok(s)
}

/// Resolves `~/`, refuses relative paths (except flags, which are relative to the cwd).
fn resolve(raw: &str, origin: &str, host: &Host) -> Result<PathBuf, ProfileError> {
    if let Some(rest) = raw.strip_prefix("~/") {
        if let Some(home) = &host.home {
            return Ok(home.join(rest));
        }
    }
    let p = Path::new(raw);
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else if origin.starts_with("--") {
        Ok(host.cwd.join(p))
    } else {
        Err(ProfileError::RelativePath { path: raw.to_string(), origin: origin.to_string() })
    }
}

fn writable_dir(path: &Path, origin: &str) -> Result<PathBuf, ProfileError> {
    let canon = std::fs::canonicalize(path).map_err(|error| ProfileError::BadRoot {
        path: path.to_path_buf(),
        origin: origin.to_string(),
        error,
    })?;
    if !canon.is_dir() {
        return Err(ProfileError::NotADirectory { path: canon, origin: origin.to_string() });
    }
    Ok(canon)
}

fn push_unique(list: &mut Vec<PathBuf>, p: PathBuf) {
    if !list.contains(&p) {
        list.push(p);
    }
}

/// Turns settings into the policy: resolves and checks paths against the host.
pub fn build_policy(s: &Settings, host: &Host) -> Result<Policy, ProfileError> {
    let mut fs = FsPolicy { read_roots: vec![PathBuf::from("/")], shared_tmp: s.shared_tmp, ..FsPolicy::default() };
    if s.mode == SandboxMode::WorkspaceWrite {
        let cwd = writable_dir(&host.cwd, "the current directory")?;
        let mut project_roots = vec![cwd];
        for (raw, origin) in &s.writable_roots {
            let root = writable_dir(&resolve(raw, origin, host)?, origin)?;
            push_unique(&mut project_roots, root);
        }
        for root in &project_roots {
            for name in PROTECTED_NAMES {
                if *name == ".git" && s.allow_git_write {
                    continue;
                }
                push_unique(&mut fs.protected, root.join(name));
            }
            push_unique(&mut fs.write_roots, root.clone());
        }
        if !s.exclude_slash_tmp {
            push_unique(&mut fs.write_roots, PathBuf::from("/tmp"));
        }
        if let (false, Some(t)) = (s.exclude_tmpdir_env_var, &host.tmpdir) {
            if let Ok(t) = std::fs::canonicalize(t) {
                push_unique(&mut fs.write_roots, t);
            }
        }
    }
    for (raw, origin) in &s.protected {
        push_unique(&mut fs.protected, resolve(raw, origin, host)?);
    }
    if s.hide_credentials {
        if let Some(home) = &host.home {
            for rel in CREDENTIAL_PATHS {
                push_unique(&mut fs.deny_read, home.join(rel));
            }
        }
        if let Some(dir) = &host.runtime_dir {
            push_unique(&mut fs.deny_read, dir.clone());
        }
    }
    if s.hide_sockets {
        // Allowed sockets are matched by identity, never through a link: a link the command planted
        // at an allowed path must not un-hide another socket.
        let mut allowed = Vec::new();
        for (raw, origin) in &s.allow_unix_sockets {
            let p = resolve(raw, origin, host)?;
            match p.symlink_metadata() {
                Err(_) => {} // not there now: nothing to keep reachable
                Ok(_) => allowed.push(
                    socket_id(&p)
                        .ok_or_else(|| ProfileError::NotASocket { path: p.clone(), origin: origin.clone() })?,
                ),
            }
        }
        let runtime = host.runtime_dir.iter().flat_map(|d| RUNTIME_SOCKETS.iter().map(move |r| d.join(r)));
        let home = host.home.iter().flat_map(|h| HOME_SOCKETS.iter().map(move |r| h.join(r)));
        let sockets =
            HOST_SOCKETS.iter().map(PathBuf::from).chain(runtime).chain(home).chain(host.unix_sockets.iter().cloned());
        for sock in sockets {
            if !socket_id(&sock).is_some_and(|id| allowed.contains(&id)) {
                push_unique(&mut fs.deny_read, sock);
            }
        }
    }
    for (raw, origin) in &s.deny_read {
        push_unique(&mut fs.deny_read, resolve(raw, origin, host)?);
    }
    let net = match (s.mode, s.network) {
        _ if !s.allow_domains.is_empty() => NetPolicy::Domains(Box::new(domains(s, host)?)),
        _ if !s.deny_domains.is_empty() || !s.ports.is_empty() || s.resolver != Default::default() => {
            return Err(ProfileError::DenyWithoutAllow)
        }
        (SandboxMode::DangerFullAccess, _) | (SandboxMode::WorkspaceWrite, true) => NetPolicy::Full,
        _ => NetPolicy::None,
    };
    let mut env = EnvPolicy { keep: s.keep_env.clone(), set: Vec::new(), keep_all: s.keep_all_env };
    if let Some(codex) = &s.codex {
        // codex-box made these paths itself (they need not exist yet): no canonicalisation.
        for root in [&codex.home, &codex.sessions] {
            push_unique(&mut fs.write_roots, root.clone());
        }
        for p in codex.protected() {
            push_unique(&mut fs.protected, p);
        }
        // The user's own Codex home (config, auth.json) stays read-only even inside a writable root.
        push_unique(&mut fs.protected, codex.user_home.clone());
        env.set.push(("CODEX_HOME".into(), codex.home.display().to_string()));
    }
    Ok(Policy { fs, net, env, full_access: s.mode == SandboxMode::DangerFullAccess })
}

/// Network by name: only with a sandbox that has a boundary. It narrows a `network_access = true`
/// from the config (`--network` and `--allow-domain` together are refused by the parser).
fn domains(s: &Settings, host: &Host) -> Result<DomainPolicy, ProfileError> {
    if s.mode == SandboxMode::DangerFullAccess {
        return Err(ProfileError::DomainsWithFullAccess);
    }
    let entries = |l: &[(String, Source)]| l.iter().map(|(d, o)| (d.clone(), *o)).collect::<Vec<_>>();
    let (allow, deny) = (entries(&s.allow_domains), entries(&s.deny_domains));
    let rules =
        Rules::from_entries(allow.iter().map(|(d, o)| (d.as_str(), *o)), deny.iter().map(|(d, o)| (d.as_str(), *o)))?;
    let mut ports: Vec<u16> = Vec::new();
    for p in if s.ports.is_empty() { crate::egress::DEFAULT_PORTS } else { &s.ports } {
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    let mut resolver = s.resolver.clone();
    if let Some(tls) = &mut resolver.tls {
        tls.extra_roots = host.ca_certs.clone();
    }
    Ok(DomainPolicy { rules, ports, resolver })
}

/// The config file to read: `--config`, else ~/.config/codex-box/config.toml when it exists.
pub fn config_path(args: &SandboxArgs, host: &Host, config_home: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = &args.config {
        // A Codex config directory (like `codex-box --config DIR`) means its config.toml.
        return Some(if p.is_dir() { p.join("config.toml") } else { p.clone() });
    }
    let base = config_home.map(Path::to_path_buf).or_else(|| host.home.as_ref().map(|h| h.join(".config")))?;
    Some(base.join("codex-box/config.toml")).filter(|p| p.is_file())
}

/// Reads the config (if any), merges it with the flags and builds the policy.
pub fn policy_from_args(
    args: &SandboxArgs,
    host: &Host,
    config_home: Option<&Path>,
    codex: Option<&super::codex::Layout>,
) -> Result<Policy, ProfileError> {
    let loaded = match config_path(args, host, config_home) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|error| ProfileError::ReadConfig { path: path.clone(), error })?;
            Some((path.clone(), parse_config(&text, &path)?))
        }
        None => None,
    };
    let mut settings = merge(loaded.as_ref().map(|(p, c)| (p.as_path(), c)), args)?;
    settings.codex = codex.cloned();
    build_policy(&settings, host)
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
