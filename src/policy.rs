//! The one policy value. Flags, environment and TOML are merged into it once; backends (the Docker
//! session, the native sandboxes) only translate it and never read configuration themselves.

use std::path::PathBuf;

/// What a sandboxed process may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub fs: FsPolicy,
    pub net: NetPolicy,
    pub env: EnvPolicy,
}

/// Filesystem access.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsPolicy {
    /// Readable (and executable) roots.
    pub read_roots: Vec<PathBuf>,
    /// Writable roots.
    pub write_roots: Vec<PathBuf>,
    /// Paths that stay read-only inside writable roots, whether or not they exist yet.
    pub protected: Vec<PathBuf>,
    /// Paths that must not be readable at all.
    pub deny_read: Vec<PathBuf>,
}

/// Network access.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetPolicy {
    /// No network except loopback inside the sandbox.
    #[default]
    None,
    /// Unrestricted network.
    Full,
    /// Only the listed names, IP literals and CIDRs (egress allowlist).
    Allowlist(Vec<String>),
}

/// Which environment variables reach the sandboxed process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPolicy {
    /// Variables kept even when they look like secrets.
    pub keep: Vec<String>,
    /// Variables set explicitly.
    pub set: Vec<(String, String)>,
}
