//! Merges flags and environment into one session configuration, once. Backends never read the
//! environment themselves: everything they need arrives in [`SessionConfig`].

use std::path::{Path, PathBuf};

use std::net::SocketAddr;

use serde::Deserialize;

use crate::egress::EgressConfig;
pub use crate::paths::{absolute, canonical_lenient, containing};

/// The project's own codex-box configuration, relative to the workdir. Read-only to the agent (the
/// whole `.codex` is mounted read-only) and approved like the init hook (trust on change).
pub const PROJECT_CONFIG: &str = ".codex/codex-box.toml";

/// `.codex/codex-box.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    pub egress: EgressConfig,
    pub limits: LimitsConfig,
    /// `[secrets.NAME]`: values from the host added as a header for the hosts named.
    pub secrets: std::collections::BTreeMap<String, crate::secrets::SecretConfig>,
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

/// Default image name.
pub const DEFAULT_IMAGE: &str = "codex-sandbox";
/// Default process limit of a session container.
pub const DEFAULT_PIDS_LIMIT: i64 = 512;
/// Default memory limit of a session container (bytes): 4 GiB.
pub const DEFAULT_MEMORY: i64 = 4 << 30;

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
    #[error("{path}: {message}Fix the file (keys: [egress] allow, deny, ports, dns_server, dns_tls_name, allow_dns, strict; [limits] memory, cpus, pids; [secrets.NAME] hosts, env, file, header, prefix)")]
    Toml { path: PathBuf, message: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Egress(#[from] crate::egress::NameError),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
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
}
