//! The one policy value. Flags, environment and TOML are merged into it once; backends (the Docker
//! session, the native sandboxes) only translate it and never read configuration themselves.

use std::path::PathBuf;

/// What a sandboxed process may touch.
///
/// `Default` is the most closed value: nothing readable or writable, no network, secrets scrubbed,
/// private /tmp. Profiles ([`SandboxMode`]) and flags open it up; see `native::profile`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub fs: FsPolicy,
    pub net: NetPolicy,
    pub env: EnvPolicy,
    /// `danger-full-access`: no boundary at all (the environment policy still applies).
    pub full_access: bool,
}

/// The sandbox profiles, named as in Codex's `sandbox_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SandboxMode {
    /// Read everything (minus hidden credential stores), write nothing.
    #[default]
    ReadOnly,
    /// Read everything, write the working directory and the writable roots (and /tmp, $TMPDIR).
    WorkspaceWrite,
    /// No sandbox.
    DangerFullAccess,
}

impl SandboxMode {
    /// The name used in TOML and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::DangerFullAccess => "danger-full-access",
        }
    }

    /// Parses a profile name (`read-only`, `workspace-write`, `danger-full-access`).
    pub fn parse(name: &str) -> Option<SandboxMode> {
        [SandboxMode::ReadOnly, SandboxMode::WorkspaceWrite, SandboxMode::DangerFullAccess]
            .into_iter()
            .find(|m| m.name() == name)
    }
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
    /// Share the host's /tmp instead of giving the sandbox a private, empty one.
    pub shared_tmp: bool,
}

/// Network access.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetPolicy {
    /// No network except loopback inside the sandbox.
    #[default]
    None,
    /// Unrestricted network.
    Full,
    /// Only the names the rules allow, through codex-box's filtering proxy (the backend gives the
    /// command no other way out).
    Domains(Box<DomainPolicy>),
}

/// Network by name: what the egress proxy ([`crate::proxy`]) decides with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPolicy {
    /// Allowed and denied names (wildcards, IPs, CIDRs), validated.
    pub rules: crate::proxy::Rules,
    /// Destination ports the proxy connects to.
    pub ports: Vec<u16>,
    /// The resolver the proxy uses (`server: None`: the host's), over TLS when chosen.
    pub resolver: crate::egress::ResolverSettings,
}

impl DomainPolicy {
    /// The proxy's configuration for this policy (default limits): the one constructor, for
    /// container sessions (`--egress proxy`) and the native sandbox alike.
    pub fn proxy_config(&self) -> crate::proxy::ProxyConfig {
        crate::proxy::ProxyConfig {
            rules: self.rules.clone(),
            ports: self.ports.clone(),
            resolver: self.resolver.clone(),
            limits: crate::proxy::Limits::default(),
            #[cfg(target_os = "linux")]
            relay: None,
            #[cfg(target_os = "linux")]
            intercept: None,
        }
    }
}

/// Which environment variables reach the sandboxed process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPolicy {
    /// Variables kept even when they look like secrets.
    pub keep: Vec<String>,
    /// Variables set explicitly.
    pub set: Vec<(String, String)>,
    /// Pass every variable through, secrets included (default: scrub what looks like a secret).
    pub keep_all: bool,
}
