//! The resolver's settings and errors, shared by [`super::resolve`] (the lookups) and `super::dot`
//! (DNS-over-TLS trust, Linux builds only), which both import them from here so that neither imports
//! the other's types: [`ResolverSettings`] (which server, over TLS or not, the deadline), [`DnsTls`]
//! (the name the server's certificate must match and the extra CA files) and [`ResolveError`].
//!
//! Only data and messages: nothing here resolves, reads a file or opens a connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_resolver::net::NetError;

/// How to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSettings {
    /// `None`: the system resolver from `/etc/resolv.conf`.
    pub server: Option<SocketAddr>,
    /// Query `server` over TLS (DNS-over-TLS) instead of UDP/TCP; needs `server`.
    pub tls: Option<DnsTls>,
    /// Deadline for all names together.
    pub timeout: Duration,
}

/// DNS-over-TLS to the chosen server: what its certificate must be valid for, and whom to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTls {
    /// The host name (or IP address) the server's certificate must be valid for, validated.
    pub name: String,
    /// CA certificate files (PEM) trusted besides the system's bundle: the session's `--ca-cert`
    /// and `CODEX_BOX_CA_CERTS`.
    pub extra_roots: Vec<PathBuf>,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        ResolverSettings { server: None, tls: None, timeout: Duration::from_secs(5) }
    }
}

impl ResolverSettings {
    pub(super) fn describe_server(&self) -> String {
        match (self.server, &self.tls) {
            (Some(addr), Some(tls)) => format!("DNS-over-TLS server {addr} (certificate for {})", tls.name),
            (Some(addr), None) => format!("DNS server {addr}"),
            (None, _) => "the system resolver (/etc/resolv.conf)".to_string(),
        }
    }
}

/// Resolution that could not be done, or whose result the caller refuses.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "cannot use the system resolver: {source}; fix: check /etc/resolv.conf or pass \
         --dns-server IP[:port]"
    )]
    SystemConfig { source: NetError },
    #[error(
        "no allowlisted name could be resolved by {resolver} ({details}); fix: check that the \
         resolver is reachable from the host, or choose one with --dns-server IP[:port]"
    )]
    Unreachable { resolver: String, details: String },
    #[error(
        "strict mode: allowlisted names not resolved by {resolver}: {details}; fix: correct or \
         remove them, or drop --strict to continue with a warning"
    )]
    Unresolved { resolver: String, details: String },
    #[error(
        "--dns-tls-name {name}: DNS-over-TLS is only built into codex-box for Linux; fix: drop \
         --dns-tls-name (or dns_tls_name in the config) to resolve with plain DNS"
    )]
    TlsUnsupported { name: String },
    #[error(
        "--dns-tls-name {name} needs the server to query; fix: give it with --dns-server IP[:port] \
         (port 853 by default)"
    )]
    TlsWithoutServer { name: String },
    #[error(
        "cannot read the CA certificates in {path} (for the DNS-over-TLS server): {source}; fix: \
         pass a readable PEM file with --ca-cert or CODEX_BOX_CA_CERTS"
    )]
    TlsCaRead { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} cannot be used as a CA for the DNS-over-TLS server: {problem}; fix: pass a PEM file \
         of CA certificates (-----BEGIN CERTIFICATE-----) with --ca-cert or CODEX_BOX_CA_CERTS"
    )]
    TlsCaInvalid { path: PathBuf, problem: String },
    #[error(
        "no CA certificate to check the DNS-over-TLS server {name} with: none of {searched} has \
         one and no other CA was given; fix: install the ca-certificates package, or pass the CA \
         that issued the server's certificate with --ca-cert FILE or CODEX_BOX_CA_CERTS"
    )]
    TlsNoRoots { name: String, searched: String },
    #[error("cannot set up TLS for the DNS-over-TLS server {name}: {message}")]
    TlsConfig { name: String, message: String },
}
