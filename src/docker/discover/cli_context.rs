//! The docker CLI's context: `DOCKER_CONTEXT`, else `currentContext` in `$DOCKER_CONFIG/config.json`
//! (default `~/.docker`); its endpoint in `contexts/meta/<sha256 of the name>/meta.json`
//! (`Endpoints.docker.Host`). The context `default` means none.

use std::path::PathBuf;

use sha2::Digest;

use super::{parse_address, DiscoverError, Found, HostFs, Source};
use crate::host_env::HostEnv;

/// How the docker CLI's context was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextOrigin {
    /// `DOCKER_CONTEXT`.
    Env,
    /// `currentContext` in this config.json (`docker context use …`).
    Config(PathBuf),
}

pub(super) fn origin_text(o: &ContextOrigin) -> String {
    match o {
        ContextOrigin::Env => "from DOCKER_CONTEXT".into(),
        ContextOrigin::Config(p) => format!("currentContext in {}", p.display()),
    }
}

pub(super) fn context_fix(o: &ContextOrigin) -> &'static str {
    match o {
        ContextOrigin::Env => "set DOCKER_CONTEXT to an existing context, unset it, or name the engine with --engine",
        ContextOrigin::Config(_) => {
            "`docker context use default` (the usual sockets) or another context, or name the engine with --engine"
        }
    }
}

/// The docker CLI's directory: `DOCKER_CONFIG`, else `~/.docker`.
fn docker_config_dir(env: &HostEnv) -> Option<PathBuf> {
    env.docker_config.clone().or_else(|| env.home.as_ref().map(|h| h.join(".docker")))
}

/// The context the docker CLI would use (`DOCKER_CONTEXT`, else config.json's `currentContext`);
/// `None` for none or `default`.
pub(super) fn current_context(
    env: &HostEnv,
    fs: &dyn HostFs,
) -> Result<Option<(String, ContextOrigin)>, DiscoverError> {
    if let Some(name) = &env.docker_context {
        return Ok((name != "default").then(|| (name.clone(), ContextOrigin::Env)));
    }
    let Some(dir) = docker_config_dir(env) else { return Ok(None) };
    let path = dir.join("config.json");
    let text = match fs.read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DiscoverError::Unreadable { path, detail: e.to_string() }),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| DiscoverError::Unreadable { path: path.clone(), detail: format!("not JSON ({e})") })?;
    Ok(match v.get("currentContext").and_then(|c| c.as_str()) {
        Some(name) if !name.is_empty() && name != "default" => Some((name.to_string(), ContextOrigin::Config(path))),
        _ => None,
    })
}

/// The docker endpoint of a named context, from its meta.json.
pub(super) fn context_address(
    env: &HostEnv,
    fs: &dyn HostFs,
    name: String,
    origin: ContextOrigin,
) -> Result<Found, DiscoverError> {
    // Never a relative `contexts/…` (the current directory may be the agent's project).
    let Some(dir) = docker_config_dir(env) else { return Err(DiscoverError::NoDockerConfig { name }) };
    let dir = dir.join("contexts");
    let id = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let meta = dir.join("meta").join(&id).join("meta.json");
    let text = match fs.read(&meta) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DiscoverError::ContextMissing { name, origin, meta })
        }
        Err(e) => return Err(DiscoverError::Unreadable { path: meta, detail: e.to_string() }),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| DiscoverError::Unreadable { path: meta.clone(), detail: format!("not JSON ({e})") })?;
    let host = v.pointer("/Endpoints/docker/Host").and_then(|h| h.as_str()).unwrap_or_default();
    if host.is_empty() {
        return Err(DiscoverError::ContextNoDocker { name, origin, meta });
    }
    let tls = dir.join("tls").join(&id).join("docker");
    if fs.exists(&tls) {
        return Err(DiscoverError::ContextTls { name, tls });
    }
    let source = Source::Context { name, origin, meta };
    let address = parse_address(host).map_err(|problem| DiscoverError::Address {
        input: host.to_string(),
        from: Box::new(source.clone()),
        problem,
    })?;
    Ok(Found { address, source })
}
