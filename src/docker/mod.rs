//! Container sessions through the Docker Engine API (bollard; the docker CLI is never run).
//!
//! `engine` connects, `context` and `image` make the image, `spec` declares the container as a pure
//! value, `session` runs it and removes it, `gc` removes what a killed codex-box left, `network` finds
//! the host as the session sees it (egress itself is assembled in `crate::session::egress`), `tty`
//! handles the local terminal. `gc`, `session`, `spec` and `tty` need a
//! Unix host (uids, termios, signals); on Windows container sessions are not supported yet.

pub mod context;
pub mod engine;
#[cfg(unix)]
pub mod gc;
pub mod image;
pub mod network;
pub mod refresh;
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
}

/// What the Docker backend can fail with (each message as its module words it).
#[cfg(unix)]
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Session(#[from] session::SessionError),
    #[error("collecting codex-box containers left by killed sessions: {0}")]
    Collect(#[from] bollard::errors::Error),
}

#[cfg(unix)]
impl DockerEngine {
    /// Connects to the engine `DOCKER_HOST` names (default: the local socket).
    pub async fn connect() -> Result<DockerEngine, engine::EngineError> {
        Ok(DockerEngine { docker: engine::connect().await? })
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

    async fn run(
        &self,
        plan: crate::session::Plan,
        files: crate::session::SessionFiles,
        refresh: Option<crate::session::Refresh>,
    ) -> Result<crate::session::Outcome, DockerError> {
        Ok(session::run(&self.docker, plan, &files, refresh).await?)
    }
}
