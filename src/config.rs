//! Merges flags and environment into one session configuration, once. Backends never read the
//! environment themselves: everything they need arrives in [`SessionConfig`].

use std::path::{Path, PathBuf};

use std::net::SocketAddr;

use serde::Deserialize;

use crate::cli::SessionArgs;
use crate::egress::EgressConfig;

/// The project's own codex-box configuration, relative to the workdir. Read-only to the agent (the
/// whole `.codex` is mounted read-only) and approved like the init hook (trust on change).
pub const PROJECT_CONFIG: &str = ".codex/codex-box.toml";

/// `.codex/codex-box.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    pub egress: EgressConfig,
    pub limits: LimitsConfig,
}

/// `[limits]` of the project config; flags win.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

impl ProjectConfig {
    /// Reads the project config; a missing file is the default.
    pub fn load(work_dir: &Path) -> Result<Self, ConfigError> {
        let path = work_dir.join(PROJECT_CONFIG);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Toml { path, message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }
}

/// Egress settings merged from flags, environment and the project config.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressSettings {
    /// No firewall at all (`--egress open`).
    pub open: bool,
    /// Only through the allowlisting proxy (`--egress proxy`).
    pub proxy: bool,
    /// Deny entries of the proxy: `--deny-domain` values, and `deny` of the `[egress]` table.
    pub deny: Vec<String>,
    pub deny_config: Vec<String>,
    /// Print each proxy denial on stderr (`--log-denials`).
    pub log_denials: bool,
    pub flags: Vec<String>,
    pub env: Option<String>,
    pub config: Vec<String>,
    pub ports: Vec<u16>,
    /// How the host resolves (the allowlist, the proxy's lookups): `--dns-server`/`--dns-tls-name`,
    /// else `dns_server`/`dns_tls_name` of the `[egress]` table, else the system resolver.
    pub resolver: crate::egress::ResolverSettings,
    pub allow_dns: bool,
    pub strict: bool,
    pub network: Option<String>,
    pub verify_blocked: Option<String>,
    pub verify_allowed: Option<String>,
    /// Shortest re-resolution interval.
    pub refresh_min: std::time::Duration,
}

impl Default for EgressSettings {
    /// Allowlist mode with the built-in names only, ports 443 and 80, the system resolver, DNS closed.
    fn default() -> Self {
        EgressSettings {
            open: false,
            proxy: false,
            deny: Vec::new(),
            deny_config: Vec::new(),
            log_denials: false,
            flags: Vec::new(),
            env: None,
            config: Vec::new(),
            ports: crate::egress::config::DEFAULT_PORTS.to_vec(),
            resolver: crate::egress::ResolverSettings::default(),
            allow_dns: false,
            strict: false,
            network: None,
            verify_blocked: None,
            verify_allowed: None,
            refresh_min: std::time::Duration::from_secs(30),
        }
    }
}

/// Default image name.
pub const DEFAULT_IMAGE: &str = "codex-sandbox";
/// Default process limit of a session container.
pub const DEFAULT_PIDS_LIMIT: i64 = 512;
/// Default memory limit of a session container (bytes): 4 GiB.
pub const DEFAULT_MEMORY: i64 = 4 << 30;

/// The environment variables codex-box reads, captured once at start-up.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub home: Option<PathBuf>,
    pub codex_config_dir: Option<PathBuf>,
    pub workspace_root_dir: Option<PathBuf>,
    pub openai_allowed_domains: Option<String>,
    pub ca_certs: Vec<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let path = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Env {
            home: path("HOME"),
            codex_config_dir: path("CODEX_CONFIG_DIR"),
            workspace_root_dir: path("WORKSPACE_ROOT_DIR"),
            openai_allowed_domains: std::env::var("OPENAI_ALLOWED_DOMAINS").ok(),
            ca_certs: std::env::var("CODEX_BOX_CA_CERTS")
                .map(|v| v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect())
                .unwrap_or_default(),
            state_dir: path("XDG_STATE_HOME")
                .map(|p| p.join("codex-box"))
                .or_else(|| path("HOME").map(|h| h.join(".local/state/codex-box"))),
        }
    }
}

/// A path or value a user gave that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("work dir {path}: {source}; pass an existing directory with --work_dir")]
    WorkDirMissing { path: PathBuf, source: std::io::Error },
    #[error("work dir {0} is not a directory; pass a directory with --work_dir")]
    WorkDirNotDir(PathBuf),
    #[error("refusing to use / as the work dir: the whole host would be writable by the agent; pass a project directory with --work_dir")]
    WorkDirRoot,
    #[error("codex-box's state directory {state} is inside {mount}, which the agent can write: it could rewrite the init-hook approvals and logs kept there for the next session; set XDG_STATE_HOME to a directory outside it")]
    StateInsideWritable { state: PathBuf, mount: PathBuf },
    #[error("work dir {path} is outside WORKSPACE_ROOT_DIR ({root}); choose a directory inside it or change WORKSPACE_ROOT_DIR")]
    OutsideWorkspaceRoot { path: PathBuf, root: PathBuf },
    #[error("WORKSPACE_ROOT_DIR {path}: {source}; set it to an existing directory")]
    WorkspaceRootMissing { path: PathBuf, source: std::io::Error },
    #[error("--read-only {path}: {source}; pass an existing path")]
    ReadOnlyMissing { path: PathBuf, source: std::io::Error },
    #[error("--{flag} {path}: {source}; pass an existing file")]
    FileMissing { flag: &'static str, path: PathBuf, source: std::io::Error },
    #[error("--memory {0:?} is not a size; use e.g. 512m, 4g or a number of bytes")]
    BadMemory(String),
    #[error("--cpus {0} must be a positive number, e.g. 1.5")]
    BadCpus(f64),
    #[error("--pids-limit {0} must be at least 16")]
    BadPids(i64),
    #[error("{path}: {message}Fix the file (keys: [egress] allow, deny, ports, dns_server, dns_tls_name, allow_dns, strict; [limits] memory, cpus, pids)")]
    Toml { path: PathBuf, message: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Egress(#[from] crate::egress::NameError),
    #[error(
        "--allow-dns needs the resolver to open: give it with --dns-server IP (or dns_server in {PROJECT_CONFIG})"
    )]
    AllowDnsWithoutServer,
    #[error("--allow-dns: the container's resolver must listen on port 53, not {0}")]
    AllowDnsPort(SocketAddr),
    #[error(
        "--allow-dns opens plain DNS to the resolver from the session, which cannot use the \
         DNS-over-TLS chosen with --dns-tls-name {0} (or dns_tls_name in {PROJECT_CONFIG}); fix: drop \
         --allow-dns (allowlisted names are pinned in /etc/hosts) or the DNS-over-TLS name"
    )]
    AllowDnsWithTls(String),
    #[error("--deny-domain only applies with --egress proxy (the IP firewall allows listed names only, so there is nothing to deny); add --egress proxy or drop --deny-domain")]
    DenyWithoutProxy,
    #[error("--{flag} {value:?} is not HOST:PORT; use e.g. 192.0.2.10:443")]
    BadHostPort { flag: &'static str, value: String },
}

/// Resource limits of a session container.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub memory_bytes: i64,
    pub nano_cpus: Option<i64>,
    pub pids: i64,
}

/// Everything a container session needs, validated.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub work_dir: PathBuf,
    pub image: String,
    pub init_script: Option<PathBuf>,
    pub read_only: Vec<PathBuf>,
    pub sessions_path: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub auth_file: Option<PathBuf>,
    pub codex_home: Option<PathBuf>,
    pub ca_certs: Vec<PathBuf>,
    pub limits: Limits,
    pub egress: EgressSettings,
    pub env: Env,
}

impl SessionConfig {
    /// Validates flags against the environment. `cwd` is the directory codex-box was started in.
    pub fn build(args: &SessionArgs, env: Env, cwd: &Path) -> Result<Self, ConfigError> {
        let work_dir = resolve_work_dir(args.work_dir.as_deref(), env.workspace_root_dir.as_deref(), cwd)?;
        let read_only = args
            .read_only
            .iter()
            .map(|p| {
                std::fs::canonicalize(cwd.join(p))
                    .map_err(|source| ConfigError::ReadOnlyMissing { path: p.clone(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let existing_file = |flag: &'static str, p: &Option<PathBuf>| -> Result<Option<PathBuf>, ConfigError> {
            p.as_ref()
                .map(|p| {
                    std::fs::canonicalize(cwd.join(p)).map_err(|source| ConfigError::FileMissing {
                        flag,
                        path: p.clone(),
                        source,
                    })
                })
                .transpose()
        };
        let init_script = existing_file("init_script", &args.init_script)?;
        let config = existing_file("config", &args.config)?;
        let auth_file = existing_file("auth_file", &args.auth_file)?;
        let mut ca_certs = Vec::new();
        for p in args.ca_cert.iter().chain(env.ca_certs.iter()) {
            ca_certs.push(existing_file("ca-cert", &Some(p.clone()))?.expect("some"));
        }
        let project = ProjectConfig::load(&work_dir)?;
        let memory = args.memory.clone().or(project.limits.memory.clone());
        let limits = Limits {
            memory_bytes: match &memory {
                Some(m) => parse_size(m).ok_or_else(|| ConfigError::BadMemory(m.clone()))?,
                None => DEFAULT_MEMORY,
            },
            nano_cpus: match args.cpus.or(project.limits.cpus) {
                Some(c) if c > 0.0 && c.is_finite() => Some((c * 1e9) as i64),
                Some(c) => return Err(ConfigError::BadCpus(c)),
                None => None,
            },
            pids: match args.pids_limit.or(project.limits.pids) {
                Some(p) if p >= 16 => p,
                Some(p) => return Err(ConfigError::BadPids(p)),
                None => DEFAULT_PIDS_LIMIT,
            },
        };
        let abs = |p: &Option<PathBuf>| p.as_ref().map(|p| absolute(cwd, p));
        // The server and its TLS name come from one place: flags replace the config's pair whole,
        // so a config's TLS name never applies to a server given on the command line.
        let resolver = if args.dns_server.is_some() || args.dns_tls_name.is_some() {
            crate::egress::config::resolver_settings(
                args.dns_server.as_deref(),
                args.dns_tls_name.as_deref(),
                crate::egress::config::FROM_FLAGS,
                &ca_certs,
            )?
        } else {
            project.egress.resolver(&ca_certs)?
        };
        let allow_dns = args.allow_dns || project.egress.allow_dns;
        match (allow_dns, resolver.server, &resolver.tls) {
            (true, None, _) => return Err(ConfigError::AllowDnsWithoutServer),
            (true, Some(_), Some(tls)) => return Err(ConfigError::AllowDnsWithTls(tls.name.clone())),
            (true, Some(a), None) if a.port() != 53 => return Err(ConfigError::AllowDnsPort(a)),
            _ => {}
        }
        for (flag, v) in [("verify-blocked", &args.verify_blocked), ("verify-allowed", &args.verify_allowed)] {
            if let Some(v) = v {
                if !valid_host_port(v) {
                    return Err(ConfigError::BadHostPort { flag, value: v.clone() });
                }
            }
        }
        if !args.deny_domain.is_empty() && args.egress != "proxy" {
            return Err(ConfigError::DenyWithoutProxy);
        }
        let egress = EgressSettings {
            open: args.egress == "open",
            proxy: args.egress == "proxy",
            deny: args.deny_domain.clone(),
            deny_config: project.egress.deny.clone(),
            log_denials: args.log_denials,
            flags: args.allow_domain.clone(),
            env: env.openai_allowed_domains.clone(),
            config: project.egress.allow.clone(),
            ports: project.egress.ports()?,
            resolver,
            allow_dns,
            strict: args.strict || project.egress.strict,
            network: args.network.clone(),
            verify_blocked: args.verify_blocked.clone(),
            verify_allowed: args.verify_allowed.clone(),
            refresh_min: std::time::Duration::from_secs(args.refresh_min.max(1)),
        };
        let sessions_path = abs(&args.sessions_path);
        if let Some(state) = &env.state_dir {
            let writable = std::iter::once(&work_dir).chain(sessions_path.as_ref());
            if let Some(mount) = containing(state, writable) {
                return Err(ConfigError::StateInsideWritable { state: state.clone(), mount: mount.clone() });
            }
        }
        Ok(SessionConfig {
            work_dir,
            image: args.image.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
            init_script,
            read_only,
            sessions_path,
            config,
            auth_file,
            codex_home: abs(&args.codex_home),
            ca_certs,
            limits,
            egress,
            env,
        })
    }
}

/// `path` with every symbolic link resolved. A path that does not exist yet keeps its missing tail
/// below its deepest existing ancestor, resolved: where it is, or would be once created.
pub fn canonical_lenient(path: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(path) {
        return c;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if parent != path => canonical_lenient(parent).join(name),
        _ => path.to_path_buf(),
    }
}

/// The first of `roots` that contains `path` (both taken as [`canonical_lenient`]).
pub fn containing<'a>(path: &Path, roots: impl IntoIterator<Item = &'a PathBuf>) -> Option<&'a PathBuf> {
    let p = canonical_lenient(path);
    roots.into_iter().find(|r| p.starts_with(canonical_lenient(r)))
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// Canonicalises and checks the work dir: not `/`, a directory, inside WORKSPACE_ROOT_DIR if set.
pub fn resolve_work_dir(arg: Option<&Path>, root: Option<&Path>, cwd: &Path) -> Result<PathBuf, ConfigError> {
    let given = arg.map(|p| absolute(cwd, p)).unwrap_or_else(|| cwd.to_path_buf());
    let dir =
        std::fs::canonicalize(&given).map_err(|source| ConfigError::WorkDirMissing { path: given.clone(), source })?;
    if !dir.is_dir() {
        return Err(ConfigError::WorkDirNotDir(dir));
    }
    if dir == Path::new("/") {
        return Err(ConfigError::WorkDirRoot);
    }
    if let Some(root) = root {
        let root = std::fs::canonicalize(root)
            .map_err(|source| ConfigError::WorkspaceRootMissing { path: root.to_path_buf(), source })?;
        if !dir.starts_with(&root) {
            return Err(ConfigError::OutsideWorkspaceRoot { path: dir, root });
        }
    }
    Ok(dir)
}

/// `host:port` with a plain host (name, IPv4) or `[v6]:port`, and a numeric port.
pub fn valid_host_port(v: &str) -> bool {
    let Some((host, port)) = v.rsplit_once(':') else { return false };
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    port.parse::<u16>().is_ok_and(|p| p > 0)
        && !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

/// Parses `512m`, `4g`, `1.5g`, `1024k` or a plain number of bytes.
pub fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    let bytes = n * mult as f64;
    (n.is_finite() && bytes >= 6.0 * (1 << 20) as f64 && bytes < 9e18).then_some(bytes as i64)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4g"), Some(4 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("10485760"), Some(10 << 20));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("1k"), None, "below Docker's 6 MiB minimum");
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn project_config_is_strict_and_named_in_errors() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join(".codex")).unwrap();
        assert_eq!(ProjectConfig::load(t.path()).unwrap(), ProjectConfig::default());
        std::fs::write(t.path().join(PROJECT_CONFIG), "[egress]\nallow = [\"github.com\"]\n[limits]\npids = 99\n")
            .unwrap();
        let c = ProjectConfig::load(t.path()).unwrap();
        assert_eq!((c.egress.allow.clone(), c.limits.pids), (vec!["github.com".to_string()], Some(99)));
        std::fs::write(t.path().join(PROJECT_CONFIG), "[egress]\nalow = []\n").unwrap();
        let e = ProjectConfig::load(t.path()).unwrap_err().to_string();
        assert!(e.contains("codex-box.toml") && e.contains("alow"), "{e}");
    }

    #[test]
    fn the_resolver_and_its_tls_name_come_from_flags_or_the_config_whole() {
        let t = tempfile::tempdir().unwrap();
        let wd = t.path().canonicalize().unwrap();
        std::fs::create_dir_all(wd.join(".codex")).unwrap();
        std::fs::write(wd.join("corp.pem"), "").unwrap();
        std::fs::write(
            wd.join(PROJECT_CONFIG),
            "[egress]\ndns_server = \"192.0.2.53\"\ndns_tls_name = \"dns.corp.example\"\n",
        )
        .unwrap();
        let env = || Env { ca_certs: vec![wd.join("corp.pem")], ..Env::default() };
        let build = |a: SessionArgs| SessionConfig::build(&a, env(), &wd).map(|c| c.egress.resolver);
        let from_config = build(SessionArgs::default()).unwrap();
        assert_eq!(from_config.server, Some("192.0.2.53:853".parse().unwrap()));
        let tls = from_config.tls.unwrap();
        assert_eq!((tls.name.as_str(), tls.extra_roots), ("dns.corp.example", vec![wd.join("corp.pem")]));
        // A server on the command line is plain DNS unless --dns-tls-name comes with it.
        let plain = build(SessionArgs { dns_server: Some("192.0.2.54".into()), ..SessionArgs::default() }).unwrap();
        assert_eq!((plain.server, plain.tls), (Some("192.0.2.54:53".parse().unwrap()), None));
        let e = build(SessionArgs { dns_tls_name: Some("dns.example".into()), ..SessionArgs::default() });
        assert!(e.unwrap_err().to_string().starts_with("--dns-tls-name needs --dns-server"));
        let e = build(SessionArgs { allow_dns: true, ..SessionArgs::default() }).unwrap_err().to_string();
        assert!(e.starts_with("--allow-dns opens plain DNS to the resolver from the session"), "{e}");
        std::fs::write(wd.join(PROJECT_CONFIG), "[egress]\ndns_tls_name = \"dns.corp.example\"\n").unwrap();
        let e = build(SessionArgs::default()).unwrap_err().to_string();
        assert!(e.starts_with("[egress] dns_tls_name needs [egress] dns_server"), "{e}");
    }

    #[test]
    fn host_ports() {
        assert!(valid_host_port("192.0.2.1:80") && valid_host_port("[2001:db8::1]:443") && valid_host_port("h.test:9"));
        assert!(
            !valid_host_port("192.0.2.1")
                && !valid_host_port("a;b:1")
                && !valid_host_port("h:0")
                && !valid_host_port(":80")
        );
    }

    #[test]
    fn work_dir_rules() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let inside = root.join("proj");
        std::fs::create_dir(&inside).unwrap();
        assert_eq!(resolve_work_dir(Some(Path::new("proj")), None, &root).unwrap(), inside);
        assert!(matches!(resolve_work_dir(Some(Path::new("/")), None, &root), Err(ConfigError::WorkDirRoot)));
        let outside = tempfile::tempdir().unwrap();
        let err = resolve_work_dir(Some(outside.path()), Some(&root), &root).unwrap_err();
        assert!(matches!(err, ConfigError::OutsideWorkspaceRoot { .. }), "{err}");
        assert!(err.to_string().contains("WORKSPACE_ROOT_DIR"));
        std::fs::write(root.join("file"), "").unwrap();
        assert!(matches!(resolve_work_dir(Some(Path::new("file")), None, &root), Err(ConfigError::WorkDirNotDir(_))));
        assert!(matches!(
            resolve_work_dir(Some(Path::new("nope")), None, &root),
            Err(ConfigError::WorkDirMissing { .. })
        ));
        // A symlink pointing outside the root is judged by its target.
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        assert!(resolve_work_dir(Some(Path::new("link")), Some(&root), &root).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_state_dir_must_be_out_of_the_agents_reach() {
        let t = tempfile::tempdir().unwrap();
        let wd = t.path().join("proj");
        std::fs::create_dir_all(&wd).unwrap();
        let args = crate::cli::SessionArgs { work_dir: Some(wd.clone()), ..Default::default() };
        let build = |state: PathBuf, a: &crate::cli::SessionArgs| {
            SessionConfig::build(a, Env { state_dir: Some(state), ..Env::default() }, t.path())
        };
        // Inside the workdir (not created yet, reached through a symbolic link): refused.
        std::os::unix::fs::symlink(&wd, t.path().join("link")).unwrap();
        for state in [wd.join(".state/codex-box"), t.path().join("link/s/codex-box")] {
            let e = build(state.clone(), &args).unwrap_err().to_string();
            assert!(e.contains("XDG_STATE_HOME") && e.contains(&*wd.canonicalize().unwrap().to_string_lossy()), "{e}");
        }
        // Inside --sessions-path: refused too. Beside the workdir: fine.
        let sessions = t.path().join("sessions");
        let a = crate::cli::SessionArgs { sessions_path: Some(sessions.clone()), ..args.clone() };
        assert!(build(sessions.join("codex-box"), &a).is_err());
        assert!(build(t.path().join("state/codex-box"), &a).is_ok());
        assert!(build(t.path().join("proj-state"), &args).is_ok(), "a name prefix is not containment");
    }
}
