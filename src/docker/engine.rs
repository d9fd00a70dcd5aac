//! Connecting to the Docker engine: `DOCKER_HOST` or the local socket, API version negotiated (Debian's
//! docker.io is Engine 20.10 / API 1.41), and the failures a user meets turned into advice.

use std::error::Error as _;

use bollard::Docker;

/// Why the engine cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no Docker engine answers at {host}: {detail}. Start one (e.g. `sudo systemctl start docker`, or run `dockerd` as root) or point DOCKER_HOST at a running engine")]
    Unreachable { host: String, detail: String },
    #[error("permission denied on the Docker socket {host}. Add your user to the docker group (`sudo usermod -aG docker $USER`, then log in again) or run codex-box with access to the socket")]
    Permission { host: String },
    #[error("the Docker engine at {host} answered with an error: {source}")]
    Api { host: String, source: bollard::errors::Error },
}

/// Where codex-box looks for the engine.
pub fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// Connects and negotiates the API version; the `/version` call that negotiation makes is also the
/// proof that the engine answers (no separate ping on the start-up path).
pub async fn connect() -> Result<Docker, EngineError> {
    let host = host();
    let docker = Docker::connect_with_defaults().map_err(|e| classify(&host, e))?;
    let docker = docker.negotiate_version().await.map_err(|e| classify(&host, e))?;
    Ok(docker)
}

/// Turns a transport error into the advice a user needs.
pub fn classify(host: &str, e: bollard::errors::Error) -> EngineError {
    if let bollard::errors::Error::SocketNotFoundError(p) = &e {
        return EngineError::Unreachable { host: host.into(), detail: format!("socket {p} does not exist") };
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::PermissionDenied => EngineError::Permission { host: host.into() },
                std::io::ErrorKind::NotFound => {
                    EngineError::Unreachable { host: host.into(), detail: "the socket does not exist".into() }
                }
                _ => EngineError::Unreachable { host: host.into(), detail: io.to_string() },
            };
        }
        src = s.source();
    }
    match e {
        bollard::errors::Error::DockerResponseServerError { .. } | bollard::errors::Error::JsonDataError { .. } => {
            EngineError::Api { host: host.into(), source: e }
        }
        other => EngineError::Unreachable { host: host.into(), detail: other.to_string() },
    }
}
