//! What `codex-box doctor` observes, gathered by thin code: the engine and its socket, the image and
//! the firewall tools inside it (one short container, no network), the kernel features the native
//! sandbox uses (the same probe it uses, so `CODEX_BOX_SANDBOX_PRETEND_MISSING` applies), and DNS
//! for the built-in allowlist names. Judging the facts is `doctor::checks`' job, not this module's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;

use crate::docker::discover::{Address, Found};
use crate::docker::kind::{self, EngineKind, Product};
use crate::docker::{engine, image};
use crate::egress::{resolve_all, ResolverSettings, BUILTIN_NAMES};
use crate::host_env::HostEnv;

/// Tools the session entrypoint needs inside the image.
pub const IMAGE_TOOLS: &[&str] = &["iptables-restore", "ip6tables-restore", "ipset", "setpriv"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
    /// The API version codex-box negotiated.
    pub negotiated_api: String,
    pub os: String,
}

/// The engine's unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub path: PathBuf,
    pub exists: bool,
    /// Readable and writable by this process (access(2)).
    pub accessible: bool,
    pub mode: u32,
    /// Group name (or number) owning the socket.
    pub group: String,
}

/// Kernel features of a Linux host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub landlock_abi: Option<u32>,
    pub seccomp: bool,
    pub user_notif: bool,
    pub userns: bool,
    /// `kernel.apparmor_restrict_unprivileged_userns`, when the kernel has it.
    pub apparmor_restrict_userns: Option<bool>,
}

/// Per built-in name: the number of addresses, or why it did not resolve.
pub type NameLookups = Vec<(String, Result<usize, String>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub host_os: &'static str,
    /// The engine's address and where it came from; `None` when none could be chosen (`engine`
    /// says why).
    pub found: Option<Found>,
    /// Engine details, or the reason (with its advice) it cannot be used.
    pub engine: Result<EngineInfo, String>,
    /// What the engine is, checked against `/info` (and Podman's `/libpod/info`).
    pub kind: Option<EngineKind>,
    /// For a local Podman: where catatonit (its `--init`) is, if anywhere.
    pub podman_init: Option<Option<PathBuf>>,
    /// `/info`'s CgroupVersion ("1", "2"), when the engine said.
    pub cgroup_version: Option<String>,
    /// For a local Podman: the seccomp profile sessions get (Podman's own, user namespaces refused),
    /// or why there is none (`crate::docker::seccomp::podman_profile`).
    pub podman_seccomp: Option<Result<(), String>>,
    /// `None` when the engine is not at a unix socket.
    pub socket: Option<Socket>,
    pub image_name: String,
    /// `None`: not checked (no engine).
    pub image: Option<Result<bool, String>>,
    /// (tool, found); `None`: not checked (no image).
    pub image_tools: Option<Result<Vec<(String, bool)>, String>>,
    /// The static codex-box for companion containers, or why there is none; `None`: not a Unix host.
    pub companion: Option<Result<PathBuf, String>>,
    /// `None` on macOS and Windows.
    pub kernel: Option<Kernel>,
    pub sandbox_exec: bool,
    pub bwrap: Option<PathBuf>,
    /// (name, number of addresses or the failure), or why no resolver could be built.
    pub dns: Result<NameLookups, String>,
    /// codex-box's state directory (approvals, proxy logs); `None` when neither XDG_STATE_HOME nor
    /// HOME is set.
    pub state: Option<StateDir>,
}

/// What doctor sees of the state directory (`$XDG_STATE_HOME/codex-box`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    pub path: PathBuf,
    /// Why codex-box could not write it (or create it, when it does not exist yet).
    pub writable: Result<(), String>,
    /// The project it lies in: the current directory (a session's default work dir), or a
    /// directory above it holding `.git` or `.codex` (neither the home directory nor `/`).
    pub project: Option<PathBuf>,
}

/// Looks at the state directory `path` without creating or changing anything: whether this user
/// can write it (or create it: its nearest existing parent), and whether it lies in a project.
pub fn state_dir(path: &Path, cwd: Option<&Path>, home: Option<&Path>) -> StateDir {
    let writable = writable_dir(path);
    let canon = crate::paths::canonical_lenient(path);
    let cwd = cwd.map(crate::paths::canonical_lenient).filter(|c| c.parent().is_some());
    let home = home.map(crate::paths::canonical_lenient);
    let project = match cwd {
        Some(c) if canon.starts_with(&c) => Some(c),
        _ => canon
            .ancestors()
            .filter(|a| a.parent().is_some() && Some(*a) != home.as_deref())
            .find(|a| a.join(".git").exists() || a.join(".codex").is_dir())
            .map(Path::to_path_buf),
    };
    StateDir { path: path.to_path_buf(), writable, project }
}

/// `Ok` when `path` is a directory this user may write, or does not exist and its nearest existing
/// parent is one (so codex-box can create it).
fn writable_dir(path: &Path) -> Result<(), String> {
    let mut at = path;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(format!("{} is not a directory", at.display())),
            // Missing, or a file on the way (ENOTDIR): look at the parent.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                match at.parent() {
                    Some(p) => at = p,
                    None => return Err(format!("no part of {} exists", path.display())),
                }
            }
            Err(e) => return Err(format!("cannot look at {}: {e}", at.display())),
        }
    }
    if access_w(at) {
        Ok(())
    } else {
        let what = if at == path { String::new() } else { format!(" (to create {})", path.display()) };
        Err(format!("{} is not writable by this user{what}", at.display()))
    }
}

#[cfg(unix)]
fn access_w(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).is_ok_and(|c| {
        // SAFETY: a NUL-terminated path; access(2) only reads it.
        unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
    })
}

#[cfg(not(unix))]
fn access_w(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| !m.permissions().readonly())
}

fn host_os() -> &'static str {
    if cfg!(target_os = "macos") {
        "macos"
    } else if cfg!(windows) {
        "windows"
    } else {
        "linux"
    }
}

#[cfg(unix)]
fn socket(found: Option<&Found>) -> Option<Socket> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let Address::Unix(path) = &found?.address else { return None };
    let path = path.clone();
    let meta = std::fs::metadata(&path).ok();
    let accessible = std::ffi::CString::new(path.as_os_str().as_bytes()).is_ok_and(|c| {
        // SAFETY: a NUL-terminated path; access(2) only reads it.
        unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) == 0 }
    });
    let gid = meta.as_ref().map_or(0, |m| m.gid());
    let group = std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|g| {
            g.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == gid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| gid.to_string());
    Some(Socket { exists: meta.is_some(), accessible, mode: meta.map_or(0, |m| m.mode()), group, path })
}

#[cfg(not(unix))]
fn socket(_found: Option<&Found>) -> Option<Socket> {
    None
}

#[cfg(target_os = "linux")]
fn kernel() -> Option<Kernel> {
    let s = crate::native::linux::probe();
    let apparmor =
        std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").ok().map(|v| v.trim() == "1");
    Some(Kernel {
        landlock_abi: s.landlock_abi,
        seccomp: s.seccomp,
        user_notif: s.user_notif,
        userns: s.userns,
        apparmor_restrict_userns: apparmor,
    })
}

#[cfg(not(target_os = "linux"))]
fn kernel() -> Option<Kernel> {
    None
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn engine_info(c: &engine::Connection) -> EngineInfo {
    let v = &c.version;
    let api = c.docker.client_version();
    EngineInfo {
        version: v.version.clone().unwrap_or_else(|| "?".into()),
        api_version: v.api_version.clone().unwrap_or_else(|| "?".into()),
        negotiated_api: format!("{}.{}", api.major_version, api.minor_version),
        os: format!("{}/{}", v.os.clone().unwrap_or_default(), v.arch.clone().unwrap_or_default()),
    }
}

/// The kind checked against `/info` and, for Podman, `/libpod/info` (a failure keeps the inference),
/// and the cgroup version `/info` names.
async fn confirmed_kind(c: &engine::Connection) -> (EngineKind, Option<String>) {
    let Ok(info) = c.docker.info().await else { return (c.kind.clone(), None) };
    let podman_rootless = match c.kind.product {
        Product::Podman => libpod_info(&c.found.address).await.as_deref().and_then(kind::libpod_rootless),
        Product::Docker => None,
    };
    let cgroup = info.cgroup_version.as_ref().map(|v| v.to_string());
    (c.kind.clone().refine(&info, podman_rootless), cgroup)
}

/// The seccomp profile a local Podman's sessions get, or why there is none.
#[cfg(unix)]
fn podman_seccomp() -> Result<(), String> {
    match crate::docker::seccomp::podman_profile() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("Podman's seccomp profile (containers-common's seccomp.json) is not on this host".into()),
    }
}

/// Sessions need a Unix host; a Podman here would be a machine (a VM), which `gather` leaves out.
#[cfg(not(unix))]
fn podman_seccomp() -> Result<(), String> {
    Err("not checked on this host".into())
}

/// The body of Podman's `GET /v4.0.0/libpod/info` (bollard has no libpod call): one HTTP/1.0
/// request on the engine's own socket or loopback address, 5 s at most.
async fn libpod_info(a: &Address) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn ask<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) -> Option<String> {
        s.write_all(b"GET /v4.0.0/libpod/info HTTP/1.0\r\nHost: podman\r\n\r\n").await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8(buf).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
    }
    let fut = async {
        match a {
            #[cfg(unix)]
            Address::Unix(p) => ask(tokio::net::UnixStream::connect(p).await.ok()?).await,
            Address::Tcp(h) => ask(tokio::net::TcpStream::connect(h.as_str()).await.ok()?).await,
            #[allow(unreachable_patterns)]
            _ => None,
        }
    };
    tokio::time::timeout(Duration::from_secs(5), fut).await.ok().flatten()
}

/// Where a local Podman finds catatonit for `--init` (its default `init_path`, then PATH).
fn podman_init() -> Option<PathBuf> {
    ["/usr/libexec/podman/catatonit", "/usr/lib/podman/catatonit"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| which("catatonit"))
}

/// Runs `command -v` for each tool in a short-lived container without network.
async fn image_tools(docker: &Docker, image: &str) -> Result<Vec<(String, bool)>, String> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    use bollard::query_parameters::{LogsOptions, RemoveContainerOptions};
    use futures_util::StreamExt;

    let script = format!(
        "for t in {}; do if command -v \"$t\" >/dev/null 2>&1; then echo \"$t yes\"; else echo \"$t no\"; fi; done",
        IMAGE_TOOLS.join(" ")
    );
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        cmd: Some(vec![script]),
        network_disabled: Some(true),
        labels: Some([("codex-box.doctor".to_string(), "1".to_string())].into()),
        host_config: Some(HostConfig { network_mode: Some("none".into()), ..Default::default() }),
        ..Default::default()
    };
    let id = docker.create_container(None, body).await.map_err(|e| e.to_string())?.id;
    let result = async {
        docker.start_container(&id, None).await.map_err(|e| e.to_string())?;
        let _ = docker.wait_container(&id, None).next().await;
        let mut logs = docker.logs(&id, Some(LogsOptions { stdout: true, stderr: true, ..Default::default() }));
        let mut text = String::new();
        while let Some(chunk) = logs.next().await {
            text.push_str(&chunk.map_err(|e| e.to_string())?.to_string());
        }
        Ok(parse_tools(&text))
    }
    .await;
    let _ = docker.remove_container(&id, Some(RemoveContainerOptions { force: true, ..Default::default() })).await;
    result
}

/// Parses `tool yes|no` lines; a tool without a line counts as missing.
pub fn parse_tools(text: &str) -> Vec<(String, bool)> {
    IMAGE_TOOLS.iter().map(|t| (t.to_string(), text.lines().any(|l| l.trim() == format!("{t} yes")))).collect()
}

async fn dns(server: Option<std::net::SocketAddr>) -> Result<NameLookups, String> {
    let names: Vec<String> = BUILTIN_NAMES.iter().map(|n| n.to_string()).collect();
    let settings = ResolverSettings { timeout: Duration::from_secs(3), server, ..ResolverSettings::default() };
    let r = resolve_all(&names, &settings).await.map_err(|e| e.to_string())?;
    Ok(r.names
        .into_iter()
        .map(|n| {
            let res = match n.error {
                Some(e) if n.addrs.is_empty() => Err(e.to_string()),
                _ if n.addrs.is_empty() => Err("no addresses".to_string()),
                _ => Ok(n.addrs.len()),
            };
            (n.name, res)
        })
        .collect())
}

/// Observes everything; never fails (a failure is a fact). `engine_flag` is `--engine`'s value.
pub async fn gather(
    image_name: &str,
    dns_server: Option<std::net::SocketAddr>,
    engine_flag: Option<&str>,
    env: &HostEnv,
) -> Facts {
    let found = crate::docker::discover::find_here(engine_flag, env);
    let container_side = async {
        let found = match &found {
            Ok(f) => f.clone(),
            Err(e) => return (Err(e.to_string()), None, None, None, None),
        };
        match engine::open(found).await {
            Err(e) => (Err(e.to_string()), None, None, None, None),
            Ok(c) => {
                let (kind, cgroup_version) = confirmed_kind(&c).await;
                let d = &c.docker;
                let present = image::exists(d, image_name).await.map_err(|e| e.to_string());
                let tools = match present {
                    Ok(true) => Some(image_tools(d, image_name).await),
                    _ => None,
                };
                (Ok(engine_info(&c)), Some(kind), cgroup_version, Some(present), tools)
            }
        }
    };
    let ((engine, kind, cgroup_version, image, image_tools), dns) = tokio::join!(container_side, dns(dns_server));
    let found = found.ok();
    let local_podman = kind.as_ref().filter(|k| k.product == Product::Podman && !k.vm);
    let podman_init = local_podman.map(|_| podman_init());
    let podman_seccomp = local_podman.map(|_| podman_seccomp());
    Facts {
        host_os: host_os(),
        socket: socket(found.as_ref()),
        found,
        engine,
        kind,
        podman_init,
        cgroup_version,
        podman_seccomp,
        image_name: image_name.to_string(),
        image,
        image_tools,
        #[cfg(unix)]
        companion: Some(crate::docker::companion::binary(env.companion_bin.as_deref()).map_err(|e| e.to_string())),
        #[cfg(not(unix))]
        companion: None,
        kernel: kernel(),
        sandbox_exec: std::path::Path::new("/usr/bin/sandbox-exec").is_file(),
        bwrap: which("bwrap"),
        dns,
        state: env
            .state_dir
            .as_deref()
            .map(|p| state_dir(p, std::env::current_dir().ok().as_deref(), env.home.as_deref())),
    }
}
