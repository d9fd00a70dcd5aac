//! The one session policy: flags ([`SessionArgs`]), the captured environment ([`HostEnv`]), the
//! project's `.codex/codex-box.toml` ([`ProjectConfig`]) and defaults, merged and validated once
//! ([`SessionPolicy::build`]). Every choice is an enum; bad input fails here, before anything exists,
//! with a [`ConfigError`] naming the input and the fix.

use std::path::{Path, PathBuf};

use super::egress::{EgressMode, EgressSettings};
use crate::cli::SessionArgs;
use crate::config::{
    absolute, containing, parse_size, resolve_work_dir, valid_host_port, ConfigError, ProjectConfig, DEFAULT_IMAGE,
    DEFAULT_MEMORY, DEFAULT_PIDS_LIMIT,
};
use crate::egress::Allowlist;
use crate::host_env::HostEnv;
use crate::proxy::Rules;
use crate::secrets;

pub use super::plan::{Applier, Limits};

/// The egress of a session, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Egress {
    /// No firewall (`--egress open`): the user is warned.
    Open,
    /// The default-deny IP firewall opening the allowlist's addresses.
    Allowlist(Allowlist),
    /// Only the allowlisting proxy, deciding by name with these rules.
    Proxy(Rules),
}

/// Whether the agent may write `.git` (`--allow-git-write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitWrite {
    ReadOnly,
    Writable,
}

/// How a new or changed init hook / config is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Shown and confirmed in a terminal; refused without one.
    AskOnChange,
    /// `--trust`: accepted as it is now.
    Accept,
}

/// Everything a container session needs, validated once: flags, environment, the project's
/// `.codex/codex-box.toml` and defaults. Nothing after it reads the environment or the CLI types.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub work_dir: PathBuf,
    pub image: String,
    pub init_script: Option<PathBuf>,
    pub read_only: Vec<PathBuf>,
    pub sessions_path: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub auth_file: Option<PathBuf>,
    pub codex_home: Option<PathBuf>,
    pub ca_certs: Vec<PathBuf>,
    pub limits: Limits,
    /// The egress, validated: the allowlist or the proxy's rules.
    pub egress: Egress,
    /// The egress knobs shared by the modes (sources, ports, resolver, verification, refresh).
    pub egress_settings: EgressSettings,
    /// Where the firewall is applied.
    pub applier: Applier,
    /// OCI runtime of the agent's container (`--runtime`; None: the engine's default).
    pub runtime: Option<String>,
    pub git_write: GitWrite,
    pub trust: Trust,
    /// Secrets the proxy adds for the hosts they are bound to, read and validated.
    pub secrets: Vec<crate::secrets::Secret>,
    pub env: HostEnv,
}

impl SessionPolicy {
    /// Validates flags against the environment. `cwd` is the directory codex-box was started in.
    pub fn build(args: &SessionArgs, env: HostEnv, cwd: &Path) -> Result<Self, ConfigError> {
        let work_dir = resolve_work_dir(args.work_dir.as_deref(), env.workspace_root_dir.as_deref(), cwd)?;
        let read_only = args
            .read_only
            .iter()
            .map(|p| {
                std::fs::canonicalize(cwd.join(p))
                    .map_err(|source| ConfigError::ReadOnlyMissing { path: p.clone(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let existing_file = |flag: &'static str, p: &Option<PathBuf>| -> Result<Option<PathBuf>, ConfigError> {
            p.as_ref()
                .map(|p| {
                    std::fs::canonicalize(cwd.join(p)).map_err(|source| ConfigError::FileMissing {
                        flag,
                        path: p.clone(),
                        source,
                    })
                })
                .transpose()
        };
        let init_script = existing_file("init_script", &args.init_script)?;
        let config = existing_file("config", &args.config)?;
        let auth_file = existing_file("auth_file", &args.auth_file)?;
        let mut ca_certs = Vec::new();
        for p in args.ca_cert.iter().chain(env.ca_certs.iter()) {
            ca_certs.push(existing_file("ca-cert", &Some(p.clone()))?.expect("some"));
        }
        let project = ProjectConfig::load(&work_dir)?;
        let memory = args.memory.clone().or(project.limits.memory.clone());
        let limits = Limits {
            memory_bytes: match &memory {
                Some(m) => parse_size(m).ok_or_else(|| ConfigError::BadMemory(m.clone()))?,
                None => DEFAULT_MEMORY,
            },
            nano_cpus: match args.cpus.or(project.limits.cpus) {
                Some(c) if c > 0.0 && c.is_finite() => Some((c * 1e9) as i64),
                Some(c) => return Err(ConfigError::BadCpus(c)),
                None => None,
            },
            pids: match args.pids_limit.or(project.limits.pids) {
                Some(p) if p >= 16 => p,
                Some(p) => return Err(ConfigError::BadPids(p)),
                None => DEFAULT_PIDS_LIMIT,
            },
        };
        let abs = |p: &Option<PathBuf>| p.as_ref().map(|p| absolute(cwd, p));
        // The server and its TLS name come from one place: flags replace the config's pair whole,
        // so a config's TLS name never applies to a server given on the command line.
        let resolver = if args.dns_server.is_some() || args.dns_tls_name.is_some() {
            crate::egress::config::resolver_settings(
                args.dns_server.as_deref(),
                args.dns_tls_name.as_deref(),
                crate::egress::config::FROM_FLAGS,
                &ca_certs,
            )?
        } else {
            project.egress.resolver(&ca_certs)?
        };
        let allow_dns = args.allow_dns || project.egress.allow_dns;
        match (allow_dns, resolver.server, &resolver.tls) {
            (true, None, _) => return Err(ConfigError::AllowDnsWithoutServer),
            (true, Some(_), Some(tls)) => return Err(ConfigError::AllowDnsWithTls(tls.name.clone())),
            (true, Some(a), None) if a.port() != 53 => return Err(ConfigError::AllowDnsPort(a)),
            _ => {}
        }
        for (flag, v) in [("verify-blocked", &args.verify_blocked), ("verify-allowed", &args.verify_allowed)] {
            if let Some(v) = v {
                if !valid_host_port(v) {
                    return Err(ConfigError::BadHostPort { flag, value: v.clone() });
                }
            }
        }
        let mode = EgressMode::parse(&args.egress).unwrap_or_default();
        if !args.deny_domain.is_empty() && mode != EgressMode::Proxy {
            return Err(ConfigError::DenyWithoutProxy);
        }
        let egress_settings = EgressSettings {
            mode,
            deny: args.deny_domain.clone(),
            deny_config: project.egress.deny.clone(),
            log_denials: args.log_denials,
            flags: args.allow_domain.clone(),
            env: env.openai_allowed_domains.clone(),
            config: project.egress.allow.clone(),
            presets: args.allow_preset.iter().chain(&project.egress.presets).cloned().collect(),
            ports: project.egress.ports()?,
            resolver,
            allow_dns,
            strict: args.strict || project.egress.strict,
            network: args.network.clone(),
            verify_blocked: args.verify_blocked.clone(),
            verify_allowed: args.verify_allowed.clone(),
            refresh_min: std::time::Duration::from_secs(args.refresh_min.max(1)),
        };
        let sessions_path = abs(&args.sessions_path);
        if let Some(state) = &env.state_dir {
            let writable = std::iter::once(&work_dir).chain(sessions_path.as_ref());
            if let Some(mount) = containing(state, writable) {
                return Err(ConfigError::StateInsideWritable { state: state.clone(), mount: mount.clone() });
            }
        }
        let egress = match mode {
            EgressMode::Open => Egress::Open,
            EgressMode::Allowlist => Egress::Allowlist(crate::session::egress::allowlist(&egress_settings)?),
            EgressMode::Proxy => Egress::Proxy(crate::session::egress::proxy_rules(&egress_settings)?),
        };
        let mut specs = args.secret.iter().map(|s| secrets::parse_flag(s)).collect::<Result<Vec<_>, _>>()?;
        specs.extend(secrets::from_config(&project.secrets)?);
        let for_secrets = match &egress {
            Egress::Proxy(rules) => secrets::Egress::Proxy(rules),
            Egress::Open => secrets::Egress::NoProxy("--egress open (no proxy)"),
            Egress::Allowlist(_) => secrets::Egress::NoProxy("--egress allowlist (the IP firewall, no proxy)"),
        };
        let secrets = secrets::resolve(&specs, for_secrets, &|k| env.vars.get(k), env.home.as_deref(), &work_dir)?;
        Ok(SessionPolicy {
            work_dir,
            image: args.image.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
            init_script,
            read_only,
            sessions_path,
            config,
            auth_file,
            codex_home: abs(&args.codex_home),
            ca_certs,
            limits,
            egress,
            egress_settings,
            applier: match (args.firewall_applier.as_deref(), args.runtime.as_deref()) {
                (Some("sidecar"), _) => Applier::Sidecar,
                (Some(_), _) | (None, None | Some("runc")) => Applier::Entrypoint,
                // Rules set inside a sandboxing runtime (gVisor) need not reach the kernel's netfilter.
                (None, Some(_)) => Applier::Sidecar,
            },
            runtime: args.runtime.clone(),
            git_write: if args.allow_git_write { GitWrite::Writable } else { GitWrite::ReadOnly },
            trust: if args.trust { Trust::Accept } else { Trust::AskOnChange },
            secrets,
            env,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PROJECT_CONFIG;

    #[test]
    fn the_resolver_and_its_tls_name_come_from_flags_or_the_config_whole() {
        let t = tempfile::tempdir().unwrap();
        let wd = t.path().canonicalize().unwrap();
        std::fs::create_dir_all(wd.join(".codex")).unwrap();
        std::fs::write(wd.join("corp.pem"), "").unwrap();
        std::fs::write(
            wd.join(PROJECT_CONFIG),
            "[egress]\ndns_server = \"192.0.2.53\"\ndns_tls_name = \"dns.corp.example\"\n",
        )
        .unwrap();
        let env = || HostEnv { ca_certs: vec![wd.join("corp.pem")], ..HostEnv::default() };
        let build = |a: SessionArgs| SessionPolicy::build(&a, env(), &wd).map(|c| c.egress_settings.resolver);
        let from_config = build(SessionArgs::default()).unwrap();
        assert_eq!(from_config.server, Some("192.0.2.53:853".parse().unwrap()));
        let tls = from_config.tls.unwrap();
        assert_eq!((tls.name.as_str(), tls.extra_roots), ("dns.corp.example", vec![wd.join("corp.pem")]));
        // A server on the command line is plain DNS unless --dns-tls-name comes with it.
        let plain = build(SessionArgs { dns_server: Some("192.0.2.54".into()), ..SessionArgs::default() }).unwrap();
        assert_eq!((plain.server, plain.tls), (Some("192.0.2.54:53".parse().unwrap()), None));
        let e = build(SessionArgs { dns_tls_name: Some("dns.example".into()), ..SessionArgs::default() });
        assert!(e.unwrap_err().to_string().starts_with("--dns-tls-name needs --dns-server"));
        let e = build(SessionArgs { allow_dns: true, ..SessionArgs::default() }).unwrap_err().to_string();
        assert!(e.starts_with("--allow-dns opens plain DNS to the resolver from the session"), "{e}");
        std::fs::write(wd.join(PROJECT_CONFIG), "[egress]\ndns_tls_name = \"dns.corp.example\"\n").unwrap();
        let e = build(SessionArgs::default()).unwrap_err().to_string();
        assert!(e.starts_with("[egress] dns_tls_name needs [egress] dns_server"), "{e}");
    }

    #[test]
    fn the_state_dir_must_be_out_of_the_agents_reach() {
        let t = tempfile::tempdir().unwrap();
        let wd = t.path().join("proj");
        std::fs::create_dir_all(&wd).unwrap();
        let args = crate::cli::SessionArgs { work_dir: Some(wd.clone()), ..Default::default() };
        let build = |state: PathBuf, a: &crate::cli::SessionArgs| {
            SessionPolicy::build(a, HostEnv { state_dir: Some(state), ..HostEnv::default() }, t.path())
        };
        // Inside the workdir (not created yet, reached through a symbolic link): refused.
        std::os::unix::fs::symlink(&wd, t.path().join("link")).unwrap();
        for state in [wd.join(".state/codex-box"), t.path().join("link/s/codex-box")] {
            let e = build(state.clone(), &args).unwrap_err().to_string();
            assert!(e.contains("XDG_STATE_HOME") && e.contains(&*wd.canonicalize().unwrap().to_string_lossy()), "{e}");
        }
        // Inside --sessions-path: refused too. Beside the workdir: fine.
        let sessions = t.path().join("sessions");
        let a = crate::cli::SessionArgs { sessions_path: Some(sessions.clone()), ..args.clone() };
        assert!(build(sessions.join("codex-box"), &a).is_err());
        assert!(build(t.path().join("state/codex-box"), &a).is_ok());
        assert!(build(t.path().join("proj-state"), &args).is_ok(), "a name prefix is not containment");
    }

    #[test]
    fn secrets_need_the_proxy_and_are_read_once_from_the_hosts_environment() {
        let t = tempfile::tempdir().unwrap();
        let wd = t.path().canonicalize().unwrap();
        let env = HostEnv { vars: crate::host_env::EnvVars::from_pairs([("GH_TOKEN", "ghp_x")]), ..HostEnv::default() };
        let args = |egress: &str| SessionArgs {
            egress: egress.into(),
            allow_domain: vec!["api.github.com".into()],
            secret: vec!["GH_TOKEN=api.github.com".into()],
            ..SessionArgs::default()
        };
        let p = SessionPolicy::build(&args("proxy"), env.clone(), &wd).unwrap();
        assert_eq!((p.secrets.len(), p.secrets[0].value.expose()), (1, "Bearer ghp_x"));
        assert!(!format!("{p:?}").contains("ghp_x"), "the policy's Debug hides it");
        for mode in ["allowlist", "open"] {
            let e = SessionPolicy::build(&args(mode), env.clone(), &wd).unwrap_err().to_string();
            assert!(e.contains("add --egress proxy") && e.contains(mode), "{e}");
        }
        // From the project config too.
        std::fs::create_dir_all(wd.join(".codex")).unwrap();
        std::fs::write(wd.join(PROJECT_CONFIG), "[secrets.GH_TOKEN]\nhosts = [\"*\"]\n").unwrap();
        let a = SessionArgs { secret: Vec::new(), ..args("proxy") };
        let e = SessionPolicy::build(&a, env, &wd).unwrap_err().to_string();
        assert!(e.contains("a wildcard"), "{e}");
    }

    #[test]
    fn choices_are_enums_decided_once() {
        let t = tempfile::tempdir().unwrap();
        let wd = t.path().canonicalize().unwrap();
        let build = |a: SessionArgs| SessionPolicy::build(&a, HostEnv::default(), &wd).unwrap();
        let p = build(SessionArgs { egress: "allowlist".into(), ..SessionArgs::default() });
        assert!(matches!(p.egress, Egress::Allowlist(ref a) if a.names().contains(&"api.openai.com".to_string())));
        assert_eq!((p.applier, p.git_write, p.trust), (Applier::Entrypoint, GitWrite::ReadOnly, Trust::AskOnChange));
        let p = build(SessionArgs {
            egress: "proxy".into(),
            runtime: Some("runsc".into()),
            allow_git_write: true,
            trust: true,
            ..SessionArgs::default()
        });
        assert!(matches!(p.egress, Egress::Proxy(_)));
        assert_eq!((p.applier, p.git_write, p.trust), (Applier::Sidecar, GitWrite::Writable, Trust::Accept));
        let p = build(SessionArgs {
            egress: "open".into(),
            firewall_applier: Some("sidecar".into()),
            ..SessionArgs::default()
        });
        assert_eq!((p.egress, p.applier), (Egress::Open, Applier::Sidecar));
        // A wildcard is validated once, for the mode that cannot enforce it.
        let e = SessionPolicy::build(
            &SessionArgs { egress: "allowlist".into(), allow_domain: vec!["*.x.org".into()], ..SessionArgs::default() },
            HostEnv::default(),
            &wd,
        );
        assert!(e.unwrap_err().to_string().contains("wildcards cannot be enforced by an IP firewall"));
    }
}
