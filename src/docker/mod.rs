//! Container sessions through the Docker Engine API (bollard; the docker CLI is never run).
//!
//! `discover` finds the engine (flag, environment, docker context, the usual sockets), `engine`
//! connects to it, `kind` says what it is (Docker or Podman, rootless, in a VM), `context` and
//! `image` make the image, `spec` declares the container as a pure value, `session` runs it and
//! removes it, `gc` removes what a killed codex-box left, `network` finds the host as the session
//! sees it (egress itself is assembled in `crate::session::egress`), `tty` handles the local
//! terminal. `gc`, `session`, `spec` and `tty` need a Unix host (uids, termios, signals); on Windows
//! container sessions are not supported yet.

#[cfg(unix)]
pub mod cgroup;
#[cfg(unix)]
pub mod companion;
pub mod context;
#[cfg(unix)]
pub mod create_lock;
pub mod discover;
pub mod engine;
#[cfg(unix)]
pub mod gc;
pub mod image;
pub mod kind;
pub mod network;
#[cfg(unix)]
pub mod profile;
pub mod refresh;
#[cfg(unix)]
pub mod seccomp;
#[cfg(unix)]
pub mod session;
#[cfg(unix)]
pub mod spec;
#[cfg(unix)]
pub mod tty;

/// The Docker Engine backend of the session seam ([`crate::session::Engine`]).
#[cfg(unix)]
pub struct DockerEngine {
    pub docker: bollard::Docker,
    /// The static codex-box for companion containers, when given (`CODEX_BOX_COMPANION_BIN`).
    pub companion_bin: Option<std::path::PathBuf>,
    found: discover::Found,
    kind: kind::EngineKind,
}

/// What the Docker backend can fail with (each message as its module words it).
#[cfg(unix)]
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Session(#[from] session::SessionError),
    #[error(transparent)]
    Companion(#[from] companion::CompanionError),
    #[error("collecting codex-box containers left by killed sessions: {0}")]
    Collect(#[from] bollard::errors::Error),
}

#[cfg(unix)]
impl DockerEngine {
    /// Connects to the engine `--engine` (`flag`) or the environment names, else the first of the
    /// usual sockets ([`discover`]).
    pub async fn connect(
        flag: Option<&str>,
        env: &crate::host_env::HostEnv,
    ) -> Result<DockerEngine, engine::EngineError> {
        let c = engine::connect_with(flag, env).await?;
        Ok(DockerEngine { docker: c.docker, companion_bin: None, found: c.found, kind: c.kind })
    }

    /// What the engine is, from the `/version` of the connection (no extra request; see [`kind`]).
    pub fn kind(&self) -> &kind::EngineKind {
        &self.kind
    }

    /// Where the engine was found.
    pub fn found(&self) -> &discover::Found {
        &self.found
    }
}

#[cfg(unix)]
impl crate::session::Engine for DockerEngine {
    type Error = DockerError;

    async fn collect_orphans(&self) -> Result<Vec<String>, DockerError> {
        Ok(gc::collect(&self.docker, false).await?)
    }

    async fn ensure_image(&self, image: &str, ca_certs: &[std::path::PathBuf]) -> Result<(), DockerError> {
        Ok(image::ensure(&self.docker, image, ca_certs).await?)
    }

    async fn gateway(&self, network: Option<&str>) -> Option<std::net::IpAddr> {
        network::gateway(&self.docker, network).await
    }

    async fn beacon(&self, network: Option<&str>) -> Result<std::net::SocketAddr, DockerError> {
        Ok(companion::beacon(&self.docker, network, self.companion_bin.as_deref()).await?)
    }

    type Companion = companion::SessionCompanion;

    async fn start_companion(
        &self,
        network: Option<&str>,
        job: &crate::companion::CompanionJob,
        log: std::sync::Arc<crate::proxy::Log>,
    ) -> Result<(crate::session::CompanionAddrs, companion::SessionCompanion), DockerError> {
        let labels = std::collections::HashMap::from([
            (spec::LABEL.to_string(), "1".to_string()),
            (format!("{}.pid", spec::LABEL), std::process::id().to_string()),
            (format!("{}.host", spec::LABEL), gc::hostname()),
        ]);
        let c = companion::start(&self.docker, network, job, log, labels, self.companion_bin.as_deref()).await?;
        Ok((c.addrs, c))
    }

    async fn stop_companion(&self, c: companion::SessionCompanion) {
        companion::stop(&self.docker, c).await
    }

    async fn run(
        &self,
        plan: crate::session::Plan,
        files: crate::session::SessionFiles,
        refresh: Option<crate::session::Refresh>,
    ) -> Result<crate::session::Outcome, DockerError> {
        let product = Some(self.kind.product);
        Ok(session::run(&self.docker, profile::local_socket(&self.found), product, plan, &files, refresh).await?)
    }
}
