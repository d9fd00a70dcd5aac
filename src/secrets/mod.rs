//! Secrets by name and host (`--secret NAME=HOST[,HOST…][:HEADER]`, `[secrets.NAME]` in
//! `.codex/codex-box.toml`): a value read on the host (from its environment or a file) that the
//! session's egress proxy adds as a header to requests for exactly the hosts it is bound to — and
//! that never enters the session.
//!
//! [`SecretSpec`]s are declared by flags and the project config and validated by [`resolve`],
//! once, before anything starts: the name, exact host names (no wildcard, no IP literal), a header
//! that can carry it, and the value itself (read here; an unset variable or an unreadable file is
//! an error). [`ca`] makes the per-session CA and the bound hosts' certificates; the proxy
//! ([`crate::proxy::intercept`]) terminates TLS for those hosts only and adds the header.
//!
//! What it enforces: the value leaves codex-box only towards the companion container that runs the
//! proxy, and from there only inside TLS to a bound host whose certificate the proxy verified, on
//! a request whose `Host` is that host. What it does not: keep a bound host from using or echoing
//! the secret, or stop the agent from *using* it through the proxy (it can make requests to the
//! bound host that carry it: that is what binding it means).

#[cfg(target_os = "linux")]
pub mod ca;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::proxy::{Host, Rules};

/// The header a secret goes in unless it names another.
pub const DEFAULT_HEADER: &str = "Authorization";
/// What precedes the value in [`DEFAULT_HEADER`] unless the config says otherwise.
pub const DEFAULT_PREFIX: &str = "Bearer ";
/// The longest secret value accepted (a header line must stay far below the proxy's head limit).
const MAX_VALUE: usize = 8 * 1024;

/// `[secrets.NAME]` of the project config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretConfig {
    /// The exact host names the secret is added for.
    pub hosts: Vec<String>,
    /// The host environment variable holding the value (default: the table's name).
    pub env: Option<String>,
    /// A file holding the value instead (absolute, or `~/…`), outside the workdir.
    pub file: Option<PathBuf>,
    /// The header (default `Authorization`).
    pub header: Option<String>,
    /// What precedes the value in the header (default `Bearer ` for `Authorization`, else nothing).
    pub prefix: Option<String>,
}

/// Where a secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env(String),
    File(PathBuf),
}

/// Where a secret was declared (named in errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Config,
}

/// One declared secret, not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub name: String,
    pub hosts: Vec<String>,
    pub source: Source,
    pub header: String,
    pub prefix: String,
    pub origin: Origin,
}

/// A secret's value: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Value(String);

impl Value {
    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// A validated secret with its value: what the proxy adds, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    /// Exact, lowercased host names.
    pub hosts: Vec<String>,
    pub header: String,
    /// The whole header value (`prefix` + the secret).
    pub value: Value,
}

/// A secret that cannot be used as declared; each names the secret and the fix.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("--secret {0:?} is not NAME=HOST[,HOST…][:HEADER]; e.g. --secret GITHUB_TOKEN=api.github.com (the value is read from the environment variable NAME)")]
    BadFlag(String),
    #[error("secret name {0:?} is not a plain name (letters, digits and _, not starting with a digit); use e.g. GITHUB_TOKEN")]
    BadName(String),
    #[error("secret {name} is bound to no host; name the exact hosts it is for, e.g. hosts = [\"api.github.com\"]")]
    NoHosts { name: String },
    #[error("secret {name} is bound to {host:?}, a wildcard: a secret is added only on requests to the exact names it is bound to (a wildcard would hand it to hosts you did not name); list each host, e.g. api.github.com")]
    Wildcard { name: String, host: String },
    #[error("secret {name} is bound to {host:?}, which is not a host name; bind it to the exact names it is for (an IP address cannot be given a certificate the session trusts)")]
    BadHost { name: String, host: String },
    #[error(
        "secret {name}: {header:?} cannot carry a secret; name a request header such as Authorization or X-Api-Key"
    )]
    BadHeader { name: String, header: String },
    #[error("secret {name} is declared twice (by --secret and [secrets.{name}] in .codex/codex-box.toml, or twice on the command line); keep one")]
    Duplicate { name: String },
    #[error(
        "secrets {first} and {second} both set the header {header} for {host}; bind them to different hosts or headers"
    )]
    SameHeader { first: String, second: String, header: String, host: String },
    #[error("secret {name}: [secrets.{name}] names both env and file; keep one")]
    TwoSources { name: String },
    #[error("secret {name}: the environment variable {var} is not set (or empty); export it before running codex-box, or read the value from a file (file = \"~/…\" under [secrets.{name}])")]
    EnvMissing { name: String, var: String },
    #[error("secret {name}: the environment variable {var} is not valid UTF-8")]
    EnvNotUtf8 { name: String, var: String },
    #[error("secret {name}: cannot read {path}: {source}; make the file readable by you, or fix the path")]
    FileUnreadable { name: String, path: PathBuf, source: std::io::Error },
    #[error("secret {name}: the file {path} must be an absolute path or start with ~/")]
    FileRelative { name: String, path: PathBuf },
    #[error("secret {name}: the file {path} is inside the work dir {work_dir}, which the agent can read; keep the value outside the project")]
    FileInWorkDir { name: String, path: PathBuf, work_dir: PathBuf },
    #[error("secret {name}: the value (from {from}) is empty, longer than 8 KiB, or holds a control character such as a line break; a header value cannot carry it")]
    BadValue { name: String, from: String },
    #[error("secret {name}: secrets are added by the egress proxy, and this session has {mode}; add --egress proxy (with --allow-domain for the bound hosts). The IP firewall (the default) cannot add a header to an HTTPS request")]
    NeedsProxy { name: String, mode: &'static str },
    #[error(
        "secret {name} is bound to {host}, which the proxy does not allow ({decision}); add --allow-domain {host}"
    )]
    HostNotAllowed { name: String, host: String, decision: String },
    #[error("secret {name}: secrets are added by a Linux build of codex-box only (it makes the session's CA and certificates with ring, which this build lacks); run codex-box on Linux or WSL2, or drop the secret")]
    Unsupported { name: String },
}

/// Parses `--secret NAME=HOST[,HOST…][:HEADER]`: the value comes from the environment variable
/// NAME; the header is `Authorization: Bearer …` unless HEADER names another (then the bare value).
pub fn parse_flag(s: &str) -> Result<SecretSpec, SecretError> {
    let bad = || SecretError::BadFlag(s.to_string());
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (hosts, header) = match rest.split_once(':') {
        Some((h, header)) => (h, Some(header.trim().to_string())),
        None => (rest, None),
    };
    let hosts: Vec<String> = hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect();
    if name.trim().is_empty() || hosts.is_empty() {
        return Err(bad());
    }
    let name = name.trim().to_string();
    let prefix = if header.is_none() { DEFAULT_PREFIX } else { "" };
    Ok(SecretSpec {
        source: Source::Env(name.clone()),
        name,
        hosts,
        header: header.unwrap_or_else(|| DEFAULT_HEADER.to_string()),
        prefix: prefix.to_string(),
        origin: Origin::Flag,
    })
}

/// The specs of the `[secrets]` table, in name order.
pub fn from_config(table: &BTreeMap<String, SecretConfig>) -> Result<Vec<SecretSpec>, SecretError> {
    table
        .iter()
        .map(|(name, c)| {
            let source = match (&c.env, &c.file) {
                (Some(_), Some(_)) => return Err(SecretError::TwoSources { name: name.clone() }),
                (None, Some(f)) => Source::File(f.clone()),
                (Some(v), None) => Source::Env(v.clone()),
                (None, None) => Source::Env(name.clone()),
            };
            let header = c.header.clone().unwrap_or_else(|| DEFAULT_HEADER.to_string());
            let default_prefix = if header.eq_ignore_ascii_case(DEFAULT_HEADER) { DEFAULT_PREFIX } else { "" };
            Ok(SecretSpec {
                name: name.clone(),
                hosts: c.hosts.clone(),
                source,
                header,
                prefix: c.prefix.clone().unwrap_or_else(|| default_prefix.to_string()),
                origin: Origin::Config,
            })
        })
        .collect()
}

/// Headers a secret may not go in: framing, routing and hop-by-hop headers.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "expect",
];

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_header(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !RESERVED.iter().any(|r| s.eq_ignore_ascii_case(r))
}

/// The host names of a spec, validated and lowercased.
fn hosts(spec: &SecretSpec) -> Result<Vec<String>, SecretError> {
    if spec.hosts.is_empty() {
        return Err(SecretError::NoHosts { name: spec.name.clone() });
    }
    let mut out: Vec<String> = Vec::new();
    for h in &spec.hosts {
        let err = |wild: bool| {
            let (name, host) = (spec.name.clone(), h.clone());
            if wild {
                SecretError::Wildcard { name, host }
            } else {
                SecretError::BadHost { name, host }
            }
        };
        if h.contains('*') {
            return Err(err(true));
        }
        match Host::parse(h.trim()) {
            Some(Host::Name(n)) => {
                if !out.contains(&n) {
                    out.push(n)
                }
            }
            _ => return Err(err(false)),
        }
    }
    Ok(out)
}

/// Reads a secret's value through `env` (a variable's value) or from its file.
fn read_value(
    spec: &SecretSpec,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    home: Option<&Path>,
    work_dir: &Path,
) -> Result<String, SecretError> {
    let name = spec.name.clone();
    let (raw, from) = match &spec.source {
        Source::Env(var) => {
            let v = env(var).filter(|v| !v.is_empty());
            let v = v.ok_or_else(|| SecretError::EnvMissing { name: name.clone(), var: var.clone() })?;
            let v = v.into_string().map_err(|_| SecretError::EnvNotUtf8 { name: name.clone(), var: var.clone() })?;
            (v, format!("the environment variable {var}"))
        }
        Source::File(f) => {
            let path = match (f.strip_prefix("~"), home) {
                (Ok(rest), Some(h)) => h.join(rest),
                _ if f.is_absolute() => f.clone(),
                _ => return Err(SecretError::FileRelative { name, path: f.clone() }),
            };
            let real = std::fs::canonicalize(&path).map_err(|source| SecretError::FileUnreadable {
                name: name.clone(),
                path: path.clone(),
                source,
            })?;
            if real.starts_with(work_dir) {
                return Err(SecretError::FileInWorkDir { name, path: real, work_dir: work_dir.to_path_buf() });
            }
            let text = std::fs::read_to_string(&real).map_err(|source| SecretError::FileUnreadable {
                name: name.clone(),
                path: path.clone(),
                source,
            })?;
            (text.trim_end_matches(['\n', '\r']).to_string(), path.display().to_string())
        }
    };
    let value = format!("{}{raw}", spec.prefix);
    if raw.is_empty() || value.len() > MAX_VALUE || value.chars().any(|c| c.is_control()) {
        return Err(SecretError::BadValue { name, from });
    }
    Ok(value)
}

/// Where a session stands for secrets: the proxy's rules, or why there is no proxy.
pub enum Egress<'a> {
    Proxy(&'a Rules),
    /// No proxy: the mode, as [`SecretError::NeedsProxy`] shows it.
    NoProxy(&'static str),
}

/// Validates every spec and reads its value: the one place bad input is refused, before
/// anything starts. `env` looks up a host environment variable, `home` expands `~/`.
pub fn resolve(
    specs: &[SecretSpec],
    egress: Egress<'_>,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    home: Option<&Path>,
    work_dir: &Path,
) -> Result<Vec<Secret>, SecretError> {
    let mut out: Vec<Secret> = Vec::new();
    for spec in specs {
        if !valid_name(&spec.name) {
            return Err(SecretError::BadName(spec.name.clone()));
        }
        if out.iter().any(|s| s.name == spec.name) {
            return Err(SecretError::Duplicate { name: spec.name.clone() });
        }
        if let Source::Env(var) = &spec.source {
            if !valid_name(var) {
                return Err(SecretError::BadName(var.clone()));
            }
        }
        let hosts = hosts(spec)?;
        if !valid_header(&spec.header) {
            return Err(SecretError::BadHeader { name: spec.name.clone(), header: spec.header.clone() });
        }
        for s in &out {
            if let Some(h) = hosts.iter().find(|h| s.hosts.contains(h)) {
                if s.header.eq_ignore_ascii_case(&spec.header) {
                    return Err(SecretError::SameHeader {
                        first: s.name.clone(),
                        second: spec.name.clone(),
                        header: spec.header.clone(),
                        host: h.clone(),
                    });
                }
            }
        }
        match egress {
            Egress::NoProxy(mode) => return Err(SecretError::NeedsProxy { name: spec.name.clone(), mode }),
            Egress::Proxy(rules) => {
                for h in &hosts {
                    let d = rules.decide(&Host::Name(h.clone()));
                    if !d.allowed() {
                        return Err(SecretError::HostNotAllowed {
                            name: spec.name.clone(),
                            host: h.clone(),
                            decision: d.to_string(),
                        });
                    }
                }
            }
        }
        if !cfg!(target_os = "linux") {
            return Err(SecretError::Unsupported { name: spec.name.clone() });
        }
        let value = read_value(spec, env, home, work_dir)?;
        out.push(Secret { name: spec.name.clone(), hosts, header: spec.header.clone(), value: Value(value) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
