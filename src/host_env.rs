//! The environment variables codex-box reads, captured once at start-up and shared by container
//! sessions and the native sandbox. Nothing after this reads `std::env` for configuration.

use std::path::PathBuf;

/// Every environment variable codex-box reads (besides clap's `env =` flags).
#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `CODEX_CONFIG_DIR`: a Codex config directory (config.toml, auth.json, prompts/).
    pub codex_config_dir: Option<PathBuf>,
    /// `CODEX_HOME`: the user's Codex home (native `--codex` copies its trusted inputs).
    pub codex_home: Option<PathBuf>,
    /// `WORKSPACE_ROOT_DIR`: the workdir must be inside it.
    pub workspace_root_dir: Option<PathBuf>,
    /// `OPENAI_ALLOWED_DOMAINS`: extra allowlisted names (space or comma separated).
    pub openai_allowed_domains: Option<String>,
    /// `OPENAI_API_KEY`, passed to the agent of a container session.
    pub openai_api_key: Option<String>,
    /// `CODEX_BOX_CA_CERTS`: extra CA certificate files, split like `PATH` (`:` on Unix).
    pub ca_certs: Vec<PathBuf>,
    /// codex-box's state directory: `$XDG_STATE_HOME/codex-box`, else `~/.local/state/codex-box`.
    pub state_dir: Option<PathBuf>,
    /// `XDG_CONFIG_HOME` (the native sandbox's default config file lives below it).
    pub config_home: Option<PathBuf>,
    /// `TMPDIR` (writable in the native workspace-write profile).
    pub tmpdir: Option<PathBuf>,
    /// `XDG_RUNTIME_DIR` (session bus, agents, rootless engine sockets: hidden natively).
    pub runtime_dir: Option<PathBuf>,
    /// `TERM`, passed to an interactive session.
    pub term: Option<String>,
    /// `PATH`, where `codex` is looked up for the native `--codex`.
    pub path: Option<std::ffi::OsString>,
    /// `CODEX_BOX_COMPANION_BIN`: the static Linux codex-box for companion containers.
    pub companion_bin: Option<PathBuf>,
    /// `CODEX_BOX_ENGINE`: the container engine's address (a socket path or URL), below `--engine`.
    pub engine: Option<String>,
    /// `DOCKER_HOST`: the engine's address as the docker CLI takes it.
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`: the docker CLI context to use instead of the current one.
    pub docker_context: Option<String>,
    /// `DOCKER_CONFIG`: the docker CLI's configuration directory (default `~/.docker`).
    pub docker_config: Option<PathBuf>,
    /// `DOCKER_TLS_VERIFY` is set (non-empty): `DOCKER_HOST` is a TLS engine.
    pub docker_tls_verify: bool,
    /// The whole environment, for the variables a secret names (`--secret NAME=…`).
    pub vars: EnvVars,
}

/// The process environment, looked up by name only (a secret's variable); `Debug` shows no value.
#[derive(Clone, Default)]
pub struct EnvVars(std::collections::HashMap<String, std::ffi::OsString>);

impl EnvVars {
    /// A table of variables (tests, and [`HostEnv::from_process`]).
    pub fn from_pairs<K: Into<String>, V: Into<std::ffi::OsString>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        EnvVars(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<std::ffi::OsString> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

impl std::fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnvVars({} variables)", self.0.len())
    }
}

impl HostEnv {
    /// Reads the process environment (empty values count as unset).
    pub fn from_process() -> Self {
        let mut env = Self::from_vars(|k| std::env::var_os(k).filter(|v| !v.is_empty()));
        env.vars = EnvVars::from_pairs(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))));
        env
    }

    /// Builds the capture from a lookup function (tests pass a table).
    pub fn from_vars(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Self {
        let path = |k: &str| get(k).map(PathBuf::from);
        let text = |k: &str| get(k).and_then(|v| v.into_string().ok());
        let lossy = |k: &str| get(k).map(|v| v.to_string_lossy().into_owned());
        HostEnv {
            home: path("HOME"),
            codex_config_dir: path("CODEX_CONFIG_DIR"),
            codex_home: path("CODEX_HOME"),
            workspace_root_dir: path("WORKSPACE_ROOT_DIR"),
            openai_allowed_domains: text("OPENAI_ALLOWED_DOMAINS"),
            openai_api_key: text("OPENAI_API_KEY"),
            ca_certs: get("CODEX_BOX_CA_CERTS")
                .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
                .unwrap_or_default(),
            state_dir: path("XDG_STATE_HOME")
                .map(|p| p.join("codex-box"))
                .or_else(|| path("HOME").map(|h| h.join(".local/state/codex-box"))),
            config_home: path("XDG_CONFIG_HOME"),
            tmpdir: path("TMPDIR"),
            runtime_dir: path("XDG_RUNTIME_DIR"),
            term: text("TERM"),
            path: get("PATH"),
            companion_bin: path("CODEX_BOX_COMPANION_BIN"),
            // Lossy: an address that is not UTF-8 is still named in the error it leads to, never
            // dropped (dropping it would fall through to another engine).
            engine: lossy("CODEX_BOX_ENGINE"),
            docker_host: lossy("DOCKER_HOST"),
            docker_context: lossy("DOCKER_CONTEXT"),
            docker_config: path("DOCKER_CONFIG"),
            docker_tls_verify: get("DOCKER_TLS_VERIFY").is_some(),
            vars: EnvVars::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_split_rule_for_ca_certs_and_empty_values_are_unset() {
        let vars = |k: &str| match k {
            "CODEX_BOX_CA_CERTS" => Some("/a.pem::/b.pem:".into()),
            "HOME" => Some("/h".into()),
            "TMPDIR" => Some("".into()),
            _ => None,
        };
        let e = HostEnv::from_vars(|k| vars(k).filter(|v: &std::ffi::OsString| !v.is_empty()));
        assert_eq!(e.ca_certs, [PathBuf::from("/a.pem"), PathBuf::from("/b.pem")]);
        assert_eq!(e.state_dir, Some(PathBuf::from("/h/.local/state/codex-box")));
        assert_eq!(e.tmpdir, None);
        let e = HostEnv::from_vars(|k| (k == "XDG_STATE_HOME").then(|| "/s".into()));
        assert_eq!(e.state_dir, Some(PathBuf::from("/s/codex-box")));
    }
}
