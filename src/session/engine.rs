//! The seam between the session orchestration and a container engine: four operations, each one
//! call of the orchestration. A backend implements them against its engine's API (Docker Engine:
//! `crate::docker::DockerEngine`); tests implement them with a recording fake.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use super::plan::{CompanionAddrs, Outcome, Plan, Refresh, SessionFiles};
use crate::companion::CompanionJob;

/// A container engine a session can run on.
// `async fn` in this trait: it is used generically (never as `dyn`) and its futures are awaited in
// place, so the missing `Send` bound on them costs nothing.
#[allow(async_fn_in_trait)]
pub trait Engine {
    /// The backend's own error; its message is shown to the user as it is.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Removes what sessions of killed codex-box processes left; returns what it removed.
    async fn collect_orphans(&self) -> Result<Vec<String>, Self::Error>;

    /// Makes `image` available (builds codex-box's own image, pulls others).
    async fn ensure_image(&self, image: &str, ca_certs: &[PathBuf]) -> Result<(), Self::Error>;

    /// The host's address as seen from a session on `network` (None: the engine's default network),
    /// if the engine has one the host owns.
    async fn gateway(&self, network: Option<&str>) -> Option<IpAddr>;

    /// A listener of codex-box's own on `network` that the session's firewall must block: the
    /// verification's blocked target, which the network really reaches when no firewall is in
    /// force (a companion container, made once per network and reused).
    async fn beacon(&self, network: Option<&str>) -> Result<SocketAddr, Self::Error>;

    /// A running companion of one session, until [`Engine::stop_companion`].
    type Companion;

    /// Starts the session's companion on `network` (the proxy and/or the API relay of `job`, and a
    /// beacon); each decision line it prints goes to `log`.
    async fn start_companion(
        &self,
        network: Option<&str>,
        job: &CompanionJob,
        log: Arc<crate::proxy::Log>,
    ) -> Result<(CompanionAddrs, Self::Companion), Self::Error>;

    /// Stops the companion (its last lines reach the log) and removes it.
    async fn stop_companion(&self, companion: Self::Companion);

    /// Runs the session to its end and removes everything it made, on every path.
    async fn run(&self, plan: Plan, files: SessionFiles, refresh: Option<Refresh>) -> Result<Outcome, Self::Error>;
}
