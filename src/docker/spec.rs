//! The container specification of a session: a pure function of the [`Plan`], unit-tested as a value.
//!
//! Enforced here: read-only root filesystem; tmpfs /tmp and home; every capability dropped but the few
//! the entrypoint needs to install the firewall and change user, and Docker's init needs to forward
//! signals to the agent (KILL) — the agent itself ends up with none;
//! `no-new-privileges`; Docker's default seccomp profile (never `unconfined`); Docker's init as PID 1;
//! pids/memory/cpu limits; the workdir writable with `.codex`, `codex`, `.agents` and `.git` read-only
//! over it (see [`protected_mounts`]); auth.json read-only; never the Docker socket.
//!
//! The engine's kind ([`EngineProfile`]: Docker or Podman, rootful or rootless) decides how the agent's
//! files come to belong to the user ([`identity`]) and what the engine needs spelt out ([`ulimits`]):
//! the agent never holds a capability on any of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, ResourcesUlimits};

use crate::codex_layer::MANAGED_CONFIG_PATH;
use crate::session::plan::{Applier, Plan};

/// Where the per-session directory (entrypoint, rules, approved hook) is mounted.
pub const RUN_DIR: &str = "/run/codex-box";
/// The session directory's copy of codex-box's Codex layer ([`crate::codex_layer::managed_config`]).
pub const MANAGED_CONFIG_FILE: &str = "codex-managed.toml";
/// Home of the agent user in the container (tmpfs).
pub const AGENT_HOME: &str = "/home/codex";
/// Label that marks codex-box's containers.
pub const LABEL: &str = "io.codex-box";

pub use super::kind::Product;

/// What the container body depends on about the engine: its product, whether it runs without root
/// (rootless Docker says so in `/info`'s security options; Podman's compat `/info` does not, its
/// socket's peer does), and — on a rootless engine — the host ids it runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineProfile {
    pub product: Product,
    pub rootless: bool,
    /// The host uid/gid of a rootless engine (the owner of the user namespace), when known.
    pub owner: Option<(u32, u32)>,
}

/// Who the agent is in the container, so that what it makes in the workdir belongs to the user on
/// the host, and how its tmpfs home is made writable for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `HostConfig.UsernsMode` (Podman's `keep-id`), or the engine's default.
    pub userns_mode: Option<String>,
    /// The ids the entrypoint gives the agent (`setpriv --reuid/--regid`), inside the container.
    pub uid: u32,
    pub gid: u32,
    /// The options of the tmpfs home.
    pub home_tmpfs: String,
    /// A mode the entrypoint (root, the tmpfs's owner: no capability needed) gives the home before
    /// the agent starts, where the engine cannot make it the agent's.
    pub home_mode: Option<&'static str>,
}

/// The agent's identity on `engine` for an agent that must write as host `uid`/`gid`:
///
/// * rootful Docker and rootful Podman: no user namespace, the agent runs as the host ids;
/// * rootless Podman: `keep-id` maps the engine's owner to the same ids inside, and the agent runs as
///   them (the entrypoint, container root, is a sub-uid on the host);
/// * rootless Docker: there is no such mapping, container root *is* the engine's owner on the host,
///   so the agent runs as root of the user namespace — with an empty bounding set and no_new_privs,
///   exactly as elsewhere, so it holds no capability; any other container uid would be a sub-uid
///   and its files would not be the user's.
///
/// Podman refuses tmpfs `uid=`/`gid=` options, and runc gives a tmpfs the mode of the image's
/// directory under it whatever `mode=` says, so there the entrypoint makes the home `1777`.
pub fn identity(engine: &EngineProfile, uid: u32, gid: u32) -> Identity {
    let tmpfs = "rw,nosuid,nodev,size=2g";
    match (engine.product, engine.rootless) {
        (Product::Docker, false) => Identity {
            userns_mode: None,
            uid,
            gid,
            home_tmpfs: format!("{tmpfs},mode=0755,uid={uid},gid={gid}"),
            home_mode: None,
        },
        (Product::Docker, true) => {
            Identity { userns_mode: None, uid: 0, gid: 0, home_tmpfs: format!("{tmpfs},mode=0755"), home_mode: None }
        }
        (Product::Podman, rootless) => {
            let (uid, gid) = if rootless { engine.owner.unwrap_or((uid, gid)) } else { (uid, gid) };
            Identity {
                userns_mode: rootless.then(|| "keep-id".to_string()),
                uid,
                gid,
                home_tmpfs: tmpfs.to_string(),
                home_mode: Some("1777"),
            }
        }
    }
}

/// Resource limits the engine must be given explicitly. Rootful Podman raises RLIMIT_NOFILE and
/// RLIMIT_NPROC to its own defaults unless told, which fails without CAP_SYS_RESOURCE ("error setting
/// rlimit type 7"); the engine's own limits (`engine_limits`: name, soft, hard — what Docker passes on
/// by itself) are what a container gets on Docker, so Podman is given them.
pub fn ulimits(engine: &EngineProfile, engine_limits: &[(String, i64, i64)]) -> Option<Vec<ResourcesUlimits>> {
    if engine.product != Product::Podman || engine_limits.is_empty() {
        return None;
    }
    Some(
        engine_limits
            .iter()
            .map(|(name, soft, hard)| ResourcesUlimits {
                name: Some(name.clone()),
                soft: Some(*soft),
                hard: Some(*hard),
            })
            .collect(),
    )
}

/// Whether the engine honours `HostConfig.Runtime` (`--runtime`): Podman's Docker-compatible API
/// (4.3) accepts the field and ignores it, so a session asking for gVisor would run under runc.
pub fn runtime_honoured(engine: &EngineProfile) -> bool {
    engine.product == Product::Docker
}

/// Whether the engine can enforce `--memory`, `--cpus` and `--pids-limit`: a rootless engine on
/// cgroup v1 cannot (it has no cgroup of its own to delegate), and drops them.
pub fn limits_enforced(engine: &EngineProfile, cgroup_version: Option<&str>) -> bool {
    super::kind::limits_enforced(engine.rootless, cgroup_version)
}

/// A [`Plan`] placed on this engine: the session directory it mounts and the labels that mark its
/// containers (made by `super::session` when the session starts). Reads as the plan it wraps.
#[derive(Debug, Clone)]
pub struct Placed {
    pub plan: Plan,
    /// The per-session directory mounted read-only at [`RUN_DIR`].
    pub session_dir: PathBuf,
    pub labels: HashMap<String, String>,
    /// The engine it runs on.
    pub engine: EngineProfile,
    /// The engine's own resource limits (name, soft, hard), when it runs on this host: [`ulimits`].
    pub engine_limits: Vec<(String, i64, i64)>,
    /// A seccomp profile file for the agent's container (Podman: [`super::seccomp`]); `None`: the
    /// engine's default.
    pub seccomp: Option<PathBuf>,
}

impl std::ops::Deref for Placed {
    type Target = Plan;
    fn deref(&self) -> &Plan {
        &self.plan
    }
}

impl std::ops::DerefMut for Placed {
    fn deref_mut(&mut self) -> &mut Plan {
        &mut self.plan
    }
}

/// Capabilities of the agent's container: what the entrypoint needs to change user and empty the
/// bounding set (SETUID, SETGID, SETPCAP), what Docker's init needs to signal the agent (KILL), and —
/// only when the entrypoint applies the firewall itself — NET_ADMIN and NET_RAW.
pub fn agent_caps(applier: Applier, firewall_here: bool) -> Vec<String> {
    let mut caps = vec!["SETUID", "SETGID", "SETPCAP", "KILL"];
    if firewall_here && applier == Applier::Entrypoint {
        caps.extend(["NET_ADMIN", "NET_RAW"]);
    }
    caps.into_iter().map(String::from).collect()
}

/// Name of the firewall sidecar of a session container.
pub fn sidecar_name(agent: &str) -> String {
    format!("{agent}_fw")
}

fn is_verify_env(k: &str) -> bool {
    k.starts_with("CODEX_BOX_VERIFY_")
}

/// The firewall sidecar: owns the network namespace, applies and verifies the rules from the session
/// directory, then holds the namespace. Small, read-only, only NET_ADMIN and NET_RAW.
pub fn sidecar_body(plan: &Placed) -> ContainerCreateBody {
    let mut labels = plan.labels.clone();
    labels.insert(format!("{LABEL}.role"), "firewall".into());
    let env: Vec<String> =
        plan.extra_env.iter().filter(|(k, _)| is_verify_env(k)).map(|(k, v)| format!("{k}={v}")).collect();
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        entrypoint: Some(vec!["/bin/sh".into(), format!("{RUN_DIR}/sidecar.sh")]),
        cmd: Some(vec![]),
        env: Some(env),
        user: Some("0:0".into()),
        hostname: Some("codex-box".into()),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            mounts: Some(vec![bind(&plan.session_dir, RUN_DIR.into(), true)]),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            init: Some(true),
            // The agent's container joins this network namespace: both in the same user namespace.
            userns_mode: identity(&plan.engine, plan.uid, plan.gid).userns_mode,
            ulimits: ulimits(&plan.engine, &plan.engine_limits),
            pids_limit: Some(32),
            memory: Some(64 << 20),
            memory_swap: Some(64 << 20),
            network_mode: plan.network.clone(),
            dns: (!plan.dns.is_empty()).then(|| plan.dns.clone()),
            auto_remove: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A path inside the container for a host path: `/app` + the absolute host path.
pub fn container_path(host: &Path) -> String {
    format!("/app{}", host.display())
}

pub use crate::session::plan::session_name as container_name;

/// A read-only or read-write bind mount.
fn bind(source: &Path, target: String, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountType::BIND),
        source: Some(source.display().to_string()),
        target: Some(target),
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// An empty read-only tmpfs: makes a path that does not exist yet impossible to create.
fn empty_ro(target: String) -> Mount {
    Mount {
        typ: Some(MountType::TMPFS),
        target: Some(target),
        read_only: Some(true),
        tmpfs_options: Some(bollard::models::MountTmpfsOptions {
            size_bytes: Some(4096),
            mode: Some(0o555),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Paths inside the workdir that stay read-only, and host paths that may be created as mount points
/// (and must be removed again after the session if they are still empty).
///
/// `.codex` and `codex` (Codex's config locations, searched for auth.json and prompts) and `.agents`
/// are always read-only. `.git` is read-only as a whole unless `allow_git_write`: protecting only
/// `hooks` and `config` is not enough, because git also follows files such as `.git/commondir` that an
/// agent could write to point the host's git at hooks of its choosing. A path that does not exist gets
/// an empty read-only tmpfs, so it cannot be created either; every protected path is a mount point, so
/// it cannot be renamed away and replaced.
pub fn protected_mounts(work_dir: &Path, allow_git_write: bool) -> (Vec<Mount>, Vec<PathBuf>) {
    let mut mounts = Vec::new();
    let mut created = Vec::new();
    let mut rels = vec![".codex", "codex", ".agents"];
    if !allow_git_write {
        rels.push(".git");
    }
    for rel in rels {
        let host = work_dir.join(rel);
        let target = container_path(&host);
        if std::fs::symlink_metadata(&host).is_ok() {
            mounts.push(bind(&host, target, true));
        } else {
            created.push(host);
            mounts.push(empty_ro(target));
        }
    }
    (mounts, created)
}

/// The environment of the container process (the entrypoint passes it on to the agent).
pub fn env(plan: &Placed) -> Vec<String> {
    let id = identity(&plan.engine, plan.uid, plan.gid);
    let mut env = vec![
        format!("CODEX_HOME=/codex_home"),
        format!("SANDBOX_ENV_DIR=/codex_home"),
        format!("HOME={AGENT_HOME}"),
        format!("USER=codex"),
        format!("CODEX_BOX_UID={}", id.uid),
        format!("CODEX_BOX_GID={}", id.gid),
        format!("CODEX_BOX_WORKDIR={}", container_path(&plan.work_dir)),
        "LANG=C.UTF-8".to_string(),
    ];
    if let Some(mode) = id.home_mode {
        env.push(format!("CODEX_BOX_HOME_MODE={mode}"));
    }
    if let (true, Some((rows, cols))) = (plan.tty, plan.tty_size) {
        env.push(format!("CODEX_BOX_TTY_SIZE={rows} {cols}"));
    }
    if !plan.read_only.is_empty() {
        let ro: Vec<String> = plan.read_only.iter().map(|p| container_path(p)).collect();
        env.push(format!("CODEX_BOX_READ_ONLY={}", ro.join(":")));
    }
    if plan.home.init_hook.is_some() {
        env.push(format!("CODEX_BOX_INIT={RUN_DIR}/init.sh"));
    }
    env.extend(plan.extra_env.iter().map(|(k, v)| format!("{k}={v}")));
    env
}

/// The full create body, and the host paths Docker may create as mount points. `sidecar` names the
/// firewall sidecar whose network namespace the container joins (sidecar mode).
pub fn container_body(plan: &Placed, sidecar: Option<&str>) -> (ContainerCreateBody, Vec<PathBuf>) {
    let mut mounts = vec![bind(&plan.work_dir, container_path(&plan.work_dir), false)];
    let (protected, created) = protected_mounts(&plan.work_dir, plan.allow_git_write);
    mounts.extend(protected);
    for p in &plan.read_only {
        mounts.push(bind(p, container_path(p), true));
    }
    mounts.push(bind(&plan.home.state_dir, "/codex_home".into(), false));
    mounts.push(bind(&plan.home.sessions_dir, "/codex_home/sessions".into(), false));
    // The trusted prompts over the state's copy, read-only: the state is shared by the project's
    // sessions, and a running agent must not rewrite what a session starting now reads. (config.toml
    // stays writable: Codex writes it itself, e.g. when the user trusts the project in the TUI.)
    if let Some(prompts) = &plan.home.prompts {
        mounts.push(bind(prompts, "/codex_home/prompts".into(), true));
    }
    if let Some(auth) = &plan.home.auth {
        mounts.push(bind(auth, "/codex_home/auth.json".into(), true));
    }
    mounts.push(bind(&plan.session_dir, RUN_DIR.into(), true));
    // codex-box's layer of Codex configuration: Codex runs its commands directly in this container.
    mounts.push(bind(&plan.session_dir.join(MANAGED_CONFIG_FILE), MANAGED_CONFIG_PATH.into(), true));
    if plan.pinned_hosts {
        mounts.push(bind(&plan.session_dir.join("hosts"), "/etc/hosts".into(), true));
    }

    let id = identity(&plan.engine, plan.uid, plan.gid);
    let tmpfs: HashMap<String, String> = [
        ("/tmp".to_string(), "rw,nosuid,nodev,size=2g,mode=1777".to_string()),
        (AGENT_HOME.to_string(), id.home_tmpfs),
    ]
    .into_iter()
    .collect();

    let host = HostConfig {
        mounts: Some(mounts),
        tmpfs: Some(tmpfs),
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(agent_caps(
            if sidecar.is_some() { Applier::Sidecar } else { Applier::Entrypoint },
            plan.pinned_hosts,
        )),
        security_opt: Some(
            std::iter::once("no-new-privileges:true".to_string())
                .chain(plan.seccomp.iter().map(|p| format!("seccomp={}", p.display())))
                .collect(),
        ),
        init: Some(true),
        // Joining the sidecar's network namespace needs its user namespace too (rootless Podman
        // makes one per keep-id container).
        userns_mode: match (sidecar, id.userns_mode) {
            (Some(s), Some(_)) => Some(format!("container:{s}")),
            (_, mode) => mode,
        },
        ulimits: ulimits(&plan.engine, &plan.engine_limits),
        pids_limit: Some(plan.limits.pids),
        memory: Some(plan.limits.memory_bytes),
        memory_swap: Some(plan.limits.memory_bytes),
        nano_cpus: plan.limits.nano_cpus,
        auto_remove: Some(false),
        runtime: plan.runtime.clone(),
        network_mode: match sidecar {
            Some(s) => Some(format!("container:{s}")),
            None => plan.network.clone(),
        },
        dns: (sidecar.is_none() && !plan.dns.is_empty()).then(|| plan.dns.clone()),
        ..Default::default()
    };
    let mut env = env(plan);
    if sidecar.is_some() {
        env.retain(|e| !is_verify_env(e));
        env.push("CODEX_BOX_FIREWALL=sidecar".into());
    }
    let body = ContainerCreateBody {
        image: Some(plan.image.clone()),
        entrypoint: Some(vec!["/bin/sh".into(), format!("{RUN_DIR}/entrypoint.sh")]),
        cmd: Some(plan.command.clone()),
        env: Some(env),
        working_dir: Some(container_path(&plan.work_dir)),
        user: Some("0:0".into()),
        // A container that joins another's network namespace takes its hostname.
        hostname: sidecar.is_none().then(|| "codex-box".into()),
        tty: Some(plan.tty),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        labels: Some(plan.labels.clone()),
        host_config: Some(host),
        ..Default::default()
    };
    (body, created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::codex_home::CodexHome;
    use crate::session::plan::Limits;

    fn plan(wd: &Path) -> Placed {
        Placed {
            session_dir: "/tmp/s".into(),
            labels: HashMap::new(),
            engine: EngineProfile::default(),
            engine_limits: vec![("nofile".into(), 1024, 4096)],
            seccomp: None,
            plan: Plan {
                image: "codex-sandbox".into(),
                work_dir: wd.into(),
                command: vec!["codex".into()],
                tty: false,
                tty_size: None,
                uid: 1234,
                gid: 999,
                home: CodexHome {
                    env_dir: wd.join(".codex/.environment"),
                    state_dir: wd.join(".codex/.environment/state"),
                    sessions_dir: wd.join(".codex/.environment/sessions"),
                    auth: Some("/home/u/.codex/auth.json".into()),
                    init_hook: Some(wd.join(".codex/.environment/init.sh")),
                    config_toml: None,
                    from_user: vec![],
                    made_sessions_dir: false,
                    made_here: None,
                    prompts: Some(wd.join(".codex/.environment/prompts")),
                },
                read_only: vec!["/home/u/.m2".into()],
                limits: Limits { memory_bytes: 1 << 30, nano_cpus: Some(1_500_000_000), pids: 256 },
                allow_git_write: false,
                extra_env: vec![],
                network: None,
                pinned_hosts: true,
                dns: vec![],
                applier: Applier::Entrypoint,
                runtime: None,
                lock_dir: None,
            },
        }
    }

    fn find<'a>(mounts: &'a [Mount], target: &str) -> &'a Mount {
        mounts.iter().find(|m| m.target.as_deref() == Some(target)).unwrap_or_else(|| panic!("no mount at {target}"))
    }

    #[test]
    fn sidecar_mode_moves_net_admin_and_verification_to_the_sidecar() {
        let t = tempfile::tempdir().unwrap();
        let mut p = plan(t.path());
        p.extra_env = vec![("CODEX_BOX_VERIFY_BLOCKED".into(), "198.51.100.11:80".into())];
        p.network = Some("testnet".into());
        p.dns = vec!["192.0.2.53".into()];
        let (agent, _) = container_body(&p, Some("codex_x_fw"));
        let h = agent.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("container:codex_x_fw"));
        let caps = h.cap_add.unwrap();
        assert!(!caps.iter().any(|c| c.starts_with("NET_")), "{caps:?}");
        assert!(agent.hostname.is_none() && h.dns.is_none());
        let env = agent.env.unwrap();
        assert!(env.contains(&"CODEX_BOX_FIREWALL=sidecar".to_string()));
        assert!(!env.iter().any(|e| e.starts_with("CODEX_BOX_VERIFY_")));
        let side = sidecar_body(&p);
        let sh = side.host_config.unwrap();
        assert_eq!(sh.cap_add, Some(vec!["NET_ADMIN".to_string(), "NET_RAW".to_string()]));
        assert_eq!(sh.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(sh.network_mode.as_deref(), Some("testnet"));
        assert_eq!(sh.readonly_rootfs, Some(true));
        assert_eq!(side.env, Some(vec!["CODEX_BOX_VERIFY_BLOCKED=198.51.100.11:80".to_string()]));
        // Entrypoint mode keeps NET_ADMIN in the container (never in the agent's set).
        let (agent, _) = container_body(&p, None);
        assert!(agent.host_config.unwrap().cap_add.unwrap().contains(&"NET_ADMIN".to_string()));
    }

    #[test]
    fn the_agents_files_are_the_users_on_every_engine() {
        let docker = EngineProfile::default();
        let id = identity(&docker, 1234, 999);
        assert_eq!((id.uid, id.gid, id.userns_mode), (1234, 999, None));
        assert!(id.home_tmpfs.ends_with("mode=0755,uid=1234,gid=999"));
        // Rootless Docker: container root is the user; any other uid would be a sub-uid.
        let rootless = EngineProfile { rootless: true, owner: Some((1001, 1001)), ..docker };
        let id = identity(&rootless, 1234, 999);
        assert_eq!((id.uid, id.gid, id.userns_mode), (0, 0, None));
        assert!(!id.home_tmpfs.contains("uid="));
        // Podman refuses tmpfs uid=; rootless Podman maps its owner with keep-id.
        let podman = EngineProfile { product: Product::Podman, ..docker };
        let id = identity(&podman, 1234, 999);
        assert_eq!((id.uid, id.userns_mode.as_deref()), (1234, None));
        assert!(!id.home_tmpfs.contains("uid=") && id.home_mode == Some("1777"));
        let id = identity(&EngineProfile { rootless: true, owner: Some((1001, 1002)), ..podman }, 1234, 999);
        assert_eq!((id.uid, id.gid, id.userns_mode.as_deref()), (1001, 1002, Some("keep-id")));

        let t = tempfile::tempdir().unwrap();
        let mut p = plan(t.path());
        p.engine = EngineProfile { rootless: true, ..podman };
        let (body, _) = container_body(&p, None);
        let h = body.host_config.unwrap();
        assert_eq!(h.userns_mode.as_deref(), Some("keep-id"));
        assert_eq!(h.ulimits.unwrap()[0].name.as_deref(), Some("nofile"));
        assert!(body.env.unwrap().contains(&"CODEX_BOX_UID=1234".to_string()), "owner unknown: the invoking user");
        assert_eq!(body.user.as_deref(), Some("0:0"));
    }

    #[test]
    fn podman_gets_the_engines_own_rlimits_and_docker_nothing() {
        let limits = vec![("nofile".to_string(), 1024, 20000), ("nproc".to_string(), 32768, 32768)];
        let podman = EngineProfile { product: Product::Podman, ..Default::default() };
        let u = ulimits(&podman, &limits).unwrap();
        assert_eq!((u[1].name.as_deref(), u[1].soft, u[1].hard), (Some("nproc"), Some(32768), Some(32768)));
        assert!(ulimits(&EngineProfile::default(), &limits).is_none());
        assert!(ulimits(&podman, &[]).is_none(), "unknown limits: the engine's defaults");
        assert!(limits_enforced(&podman, Some("1")));
        assert!(!runtime_honoured(&podman) && runtime_honoured(&EngineProfile::default()));
        assert!(!limits_enforced(&EngineProfile { rootless: true, ..podman }, Some("1")));
        assert!(limits_enforced(&EngineProfile { rootless: true, ..podman }, Some("2")));
    }

    #[test]
    fn names() {
        assert_eq!(container_name(Path::new("/home/u/my proj"), 1), "codex_home_u_my_proj");
        assert_eq!(container_name(Path::new("/home/u/p"), 2), "codex_home_u_p_2");
        let long = PathBuf::from(format!("/{}", "x".repeat(300)));
        assert!(container_name(&long, 1).len() < 110);
    }

    #[test]
    fn hardened_host_config() {
        let t = tempfile::tempdir().unwrap();
        let (body, _) = container_body(&plan(t.path()), None);
        let h = body.host_config.unwrap();
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        let caps = h.cap_add.unwrap();
        assert!(!caps.iter().any(|c| c == "SYS_ADMIN" || c == "DAC_OVERRIDE" || c == "CHOWN"), "{caps:?}");
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges:true".to_string()]));
        assert_eq!(h.init, Some(true));
        assert_eq!(h.pids_limit, Some(256));
        assert_eq!(h.memory, Some(1 << 30));
        assert_eq!(h.memory_swap, Some(1 << 30));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert!(h.binds.is_none() && h.privileged.is_none());
        let tmpfs = h.tmpfs.unwrap();
        assert!(tmpfs["/home/codex"].contains("uid=1234,gid=999"));
        assert!(tmpfs["/tmp"].contains("mode=1777"));
        let mounts = h.mounts.unwrap();
        assert!(!mounts.iter().any(|m| m.source.as_deref().unwrap_or("").contains("docker.sock")));
        assert_eq!(body.user.as_deref(), Some("0:0"), "only the entrypoint is root; it drops to CODEX_BOX_UID");
    }

    #[test]
    fn mounts_and_protected_paths() {
        let t = tempfile::tempdir().unwrap();
        let wd = t.path();
        std::fs::create_dir_all(wd.join(".git/hooks")).unwrap();
        std::fs::write(wd.join(".git/config"), "").unwrap();
        std::fs::create_dir_all(wd.join(".codex")).unwrap();
        std::fs::create_dir_all(wd.join("codex")).unwrap();
        let (body, created) = container_body(&plan(wd), None);
        let mounts = body.host_config.unwrap().mounts.unwrap();
        let app = container_path(wd);
        assert_eq!(find(&mounts, &app).read_only, Some(false));
        assert_eq!(body.working_dir.as_deref(), Some(app.as_str()));
        for p in [".codex", "codex", ".git"] {
            let m = find(&mounts, &format!("{app}/{p}"));
            assert_eq!((m.typ, m.read_only), (Some(MountType::BIND), Some(true)), "{p}");
        }
        let agents = find(&mounts, &format!("{app}/.agents"));
        assert_eq!((agents.typ, agents.read_only), (Some(MountType::TMPFS), Some(true)));
        assert_eq!(created, vec![wd.join(".agents")]);
        assert_eq!(find(&mounts, "/codex_home/auth.json").read_only, Some(true));
        let prompts = find(&mounts, "/codex_home/prompts");
        assert_eq!(prompts.read_only, Some(true), "the trusted prompts, read-only over the state's copy");
        assert!(prompts.source.as_deref().unwrap().ends_with(".codex/.environment/prompts"));
        assert_eq!(find(&mounts, "/codex_home").read_only, Some(false));
        assert_eq!(find(&mounts, "/app/home/u/.m2").read_only, Some(true));
        assert_eq!(find(&mounts, RUN_DIR).read_only, Some(true));
        assert_eq!(find(&mounts, "/etc/hosts").source.as_deref(), Some("/tmp/s/hosts"));
        let layer = find(&mounts, MANAGED_CONFIG_PATH);
        assert_eq!((layer.source.as_deref(), layer.read_only), (Some("/tmp/s/codex-managed.toml"), Some(true)));
        // Protections come after the workdir mount, so they lie over it.
        let pos = |t: &str| mounts.iter().position(|m| m.target.as_deref() == Some(t)).unwrap();
        assert!(pos(&app) < pos(&format!("{app}/.codex")));
        let env = body.env.unwrap();
        assert!(env.contains(&"CODEX_HOME=/codex_home".to_string()));
        assert!(env.contains(&format!("CODEX_BOX_INIT={RUN_DIR}/init.sh")));
    }

    #[test]
    fn git_protection_follows_the_switch_and_missing_repos() {
        let t = tempfile::tempdir().unwrap();
        let wd = t.path();
        let (m, created) = protected_mounts(wd, false);
        let git = m.iter().find(|m| m.target.as_deref() == Some(&format!("{}/.git", container_path(wd)))).unwrap();
        assert_eq!((git.typ, git.read_only), (Some(MountType::TMPFS), Some(true)), "no repository can be created");
        assert!(created.contains(&wd.join(".git")));
        std::fs::create_dir_all(wd.join(".git/hooks")).unwrap();
        let (m, _) = protected_mounts(wd, true);
        assert!(!m.iter().any(|m| m.target.as_deref().unwrap_or("").contains(".git")));
    }
}
