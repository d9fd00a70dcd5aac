//! Finding the container engine, in the order a user expects: `--engine`, `CODEX_BOX_ENGINE`,
//! `DOCKER_HOST`, the docker CLI's context (`DOCKER_CONTEXT`, else `currentContext` in
//! `$DOCKER_CONFIG/config.json`), then the usual sockets of rootful and rootless Docker, rootful
//! and rootless Podman, Docker Desktop, Colima, OrbStack and a Podman machine.
//!
//! An explicit source (flag, variable, context) is used as given: if it does not answer, that is the
//! error — codex-box never falls through to another engine behind the user's back. Only the usual
//! sockets are tried in turn: the first that exists and this user may open is taken (else the first
//! that exists, so the error names it and the permission fix). Every address says where it came from.
//!
//! Pure but for reading files and looking at sockets, which go through [`HostFs`] (a rooted fake in
//! the tests). Nothing here connects; `engine` does. `address` parses what a user writes (remote
//! engines over SSH or TLS are refused with the way to reach them through a forwarded socket, issue
//! #15), `cli_context` reads the docker CLI's context, `usual` lists the usual sockets.

mod address;
mod cli_context;
mod usual;

use std::fmt;
use std::path::{Path, PathBuf};

use address::FORWARD;
use cli_context::{context_address, context_fix, current_context, origin_text};

pub use address::{parse_address, Address, AddressError};
pub use cli_context::ContextOrigin;
#[cfg(unix)]
pub use usual::socket_state;
pub use usual::{usual, HostFs, Os, Place, RealFs, SocketState};

use crate::host_env::HostEnv;

/// Where the address came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    CodexBoxEngine,
    DockerHost,
    Context { name: String, origin: ContextOrigin, meta: PathBuf },
    Usual(Place),
}

impl Source {
    /// Named by the user (flag, variable, context): never replaced by another engine.
    pub fn explicit(&self) -> bool {
        !matches!(self, Source::Usual(_))
    }

    /// What to change when the engine there does not work.
    pub fn fix(&self) -> String {
        const ELSE: &str = "or name a running engine with --engine";
        match self {
            Source::Flag => "start the engine --engine names, or fix --engine (drop it to use DOCKER_HOST, the docker context or the usual sockets)".into(),
            Source::CodexBoxEngine => format!("start the engine CODEX_BOX_ENGINE names, fix or unset CODEX_BOX_ENGINE, {ELSE}"),
            Source::DockerHost => format!("start one or point DOCKER_HOST at a running engine (unset it to use the docker context or the usual sockets), {ELSE}"),
            Source::Context { name, .. } => format!(
                "start the engine of docker context `{name}`, switch context (`docker context use default` uses the usual sockets), {ELSE}"
            ),
            Source::Usual(p) => format!("start it ({}), {ELSE} or DOCKER_HOST", p.start()),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => write!(f, "from --engine"),
            Source::CodexBoxEngine => write!(f, "from CODEX_BOX_ENGINE"),
            Source::DockerHost => write!(f, "from DOCKER_HOST"),
            Source::Context { name, origin: ContextOrigin::Env, .. } => {
                write!(f, "docker context `{name}` from DOCKER_CONTEXT")
            }
            Source::Context { name, origin: ContextOrigin::Config(p), .. } => {
                write!(f, "docker context `{name}`, current in {}", p.display())
            }
            Source::Usual(p) => write!(f, "the usual {} socket", p.name()),
        }
    }
}

/// The engine's address and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub address: Address,
    pub source: Source,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.address, self.source)
    }
}
/// Why no engine address could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("the engine address `{input}` ({from}) is not usable: {problem}")]
    Address { input: String, from: Box<Source>, problem: AddressError },
    #[error("docker context `{name}` ({}) does not exist: no {}. List the contexts with `docker context ls`; {}", origin_text(origin), meta.display(), context_fix(origin))]
    ContextMissing { name: String, origin: ContextOrigin, meta: PathBuf },
    #[error("docker context `{name}` has no docker endpoint (Endpoints.docker.Host) in {}. Recreate it (`docker context create {name} --docker host=unix:///PATH`); {}", meta.display(), context_fix(origin))]
    ContextNoDocker { name: String, origin: ContextOrigin, meta: PathBuf },
    #[error("docker context `{name}` (from DOCKER_CONTEXT) cannot be looked up: neither DOCKER_CONFIG nor HOME is set. Set DOCKER_CONFIG to the docker CLI's directory, unset DOCKER_CONTEXT, or name the engine with --engine")]
    NoDockerConfig { name: String },
    #[error("DOCKER_HOST `{host}` with DOCKER_TLS_VERIFY set is a TLS engine: TLS engines are not supported yet (issue #15); {FORWARD}")]
    DockerHostTls { host: String },
    #[error("docker context `{name}` uses TLS ({}): TLS engines are not supported yet (issue #15); {FORWARD}", tls.display())]
    ContextTls { name: String, tls: PathBuf },
    #[error("cannot read {}: {detail}. Fix the file, or name the engine with --engine or DOCKER_HOST", path.display())]
    Unreadable { path: PathBuf, detail: String },
    #[error("no Docker or Podman engine found: none of the usual sockets exists ({}). Start one (`sudo systemctl start docker`, `systemctl --user start podman.socket`, Docker Desktop, `colima start`, `podman machine start`) or name it with --engine, CODEX_BOX_ENGINE or DOCKER_HOST", list(looked))]
    NothingFound { looked: Vec<Address> },
}
fn list(a: &[Address]) -> String {
    a.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
}
/// Chooses the engine: the first explicit source set (used as given), else the first usual socket.
pub fn find(flag: Option<&str>, env: &HostEnv, os: Os, fs: &dyn HostFs) -> Result<Found, DiscoverError> {
    let explicit = [
        (flag, Source::Flag),
        (env.engine.as_deref(), Source::CodexBoxEngine),
        (env.docker_host.as_deref(), Source::DockerHost),
    ];
    if let Some((input, source)) = explicit.into_iter().find_map(|(v, s)| v.map(|v| (v, s))) {
        // The docker CLI speaks TLS to DOCKER_HOST when DOCKER_TLS_VERIFY is set; plain HTTP would
        // only meet "client sent an HTTP request to an HTTPS server".
        if source == Source::DockerHost && env.docker_tls_verify && !input.trim_start().starts_with("unix://") {
            return Err(DiscoverError::DockerHostTls { host: input.to_string() });
        }
        return match parse_address(input) {
            Ok(address) => Ok(Found { address, source }),
            Err(problem) => Err(DiscoverError::Address { input: input.to_string(), from: Box::new(source), problem }),
        };
    }
    if let Some((name, origin)) = current_context(env, fs)? {
        return context_address(env, fs, name, origin);
    }
    let places = usual(env, os);
    let state = |a: &Address| match a {
        Address::Unix(p) => fs.socket(p),
        Address::Pipe(p) => fs.socket(Path::new(p)),
        Address::Tcp(_) => SocketState::Missing,
    };
    let states: Vec<SocketState> = places.iter().map(|(_, a)| state(a)).collect();
    let pick = |want: SocketState| places.iter().zip(&states).find(|(_, s)| **s == want).map(|(p, _)| p.clone());
    match pick(SocketState::Usable).or_else(|| pick(SocketState::Denied)) {
        Some((place, address)) => Ok(Found { address, source: Source::Usual(place) }),
        None => Err(DiscoverError::NothingFound { looked: places.into_iter().map(|(_, a)| a).collect() }),
    }
}

/// [`find`] on this host.
pub fn find_here(flag: Option<&str>, env: &HostEnv) -> Result<Found, DiscoverError> {
    find(flag, env, Os::current(), &RealFs)
}

#[cfg(all(test, unix))]
mod tests;
