//! What the container body needs to know about the engine ([`spec::EngineProfile`]), asked once per
//! session: the product (`/version`), whether it runs rootless (`/info`'s security options; for
//! Podman, whose compat `/info` does not say, the uid of the process serving a local socket), the
//! host ids a rootless engine runs as, its own resource limits, and its cgroup version.
//!
//! A remote engine (`DOCKER_HOST=tcp://…`) is taken for what `/version` and `/info` say; what only
//! a local socket can tell (owner, limits) is then unknown, and the engine's defaults apply.

use std::path::Path;

use bollard::Docker;

use super::spec::{EngineProfile, Product};

/// What a session learns about its engine.
#[derive(Debug, Clone, Default)]
pub struct Probed {
    pub profile: EngineProfile,
    /// The serving process's RLIMIT_NOFILE and RLIMIT_NPROC (name, soft, hard), when it is local.
    pub limits: Vec<(String, i64, i64)>,
    /// `/info`'s CgroupVersion ("1", "2").
    pub cgroup_version: Option<String>,
}

/// What a session learns about its engine. For a local socket whose serving process the kernel
/// names (SO_PEERCRED) nothing more is asked of the engine: the product comes from the `/version`
/// the connection already made (`known`), rootless from the process's uid, limits from its
/// `/proc/PID/limits` (when that process is the engine itself), the cgroup version from this host.
/// Otherwise (a remote engine, or no `known`) the engine's `/version` and `/info` say what they can.
pub async fn probe(docker: &Docker, socket: Option<&Path>, known: Option<Product>) -> Probed {
    let peer = socket.and_then(peer);
    if let (Some(p), Some(product)) = (peer, known) {
        let rootless = p.uid != 0;
        let limits = engine_limits(p);
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        return Probed {
            profile: EngineProfile { product, rootless, owner: rootless.then_some((p.uid, p.gid)) },
            limits,
            cgroup_version: Some(if v2 { "2" } else { "1" }.to_string()),
        };
    }
    let components: Vec<String> = docker
        .version()
        .await
        .ok()
        .and_then(|v| v.components)
        .map(|c| c.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    let info = docker.info().await.ok();
    let security: Vec<String> = info.as_ref().and_then(|i| i.security_options.clone()).unwrap_or_default();
    let cgroup_version = info.as_ref().and_then(|i| i.cgroup_version.as_ref()).map(|v| v.to_string());
    let product = known.unwrap_or_else(|| product(&components));
    let says_rootless = security.iter().any(|o| o.split(',').any(|f| f == "name=rootless"));
    let rootless = says_rootless || (product == Product::Podman && peer.is_some_and(|p| p.uid != 0));
    let owner = peer.filter(|_| rootless).map(|p| (p.uid, p.gid));
    let limits = peer.map(engine_limits).unwrap_or_default();
    Probed { profile: EngineProfile { product, rootless, owner }, limits, cgroup_version }
}

/// Podman names its component "Podman Engine"; anything else is taken for Docker.
pub fn product(components: &[String]) -> Product {
    if components.iter().any(|c| c.starts_with("Podman")) {
        Product::Podman
    } else {
        Product::Docker
    }
}

/// The socket of a local engine, where discovery found one.
pub fn local_socket(found: &super::discover::Found) -> Option<&Path> {
    match &found.address {
        super::discover::Address::Unix(p) => Some(p),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    pid: i32,
    uid: u32,
    gid: u32,
}

/// The process serving a Unix socket (SO_PEERCRED, Linux).
#[cfg(target_os = "linux")]
fn peer(path: &Path) -> Option<Peer> {
    let s = std::os::unix::net::UnixStream::connect(path).ok()?;
    let c = nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some(Peer { pid: c.pid(), uid: c.uid(), gid: c.gid() })
}

/// Elsewhere (macOS: the engine runs in a VM) the serving process is not a local one.
#[cfg(not(target_os = "linux"))]
fn peer(_: &Path) -> Option<Peer> {
    None
}

/// The serving process's limits, when that process is the engine itself. A socket can be served by
/// something else in front of the engine (systemd's socket activation, a relay, Docker Desktop's
/// host-side proxy): its limits say nothing of the engine's, and the engine's defaults then apply.
fn engine_limits(p: Peer) -> Vec<(String, i64, i64)> {
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", p.pid)).unwrap_or_default();
    if !is_engine_process(&comm) {
        return Vec::new();
    }
    std::fs::read_to_string(format!("/proc/{}/limits", p.pid)).map(|t| parse_limits(&t)).unwrap_or_default()
}

/// Whether a `/proc/PID/comm` names an engine's own process (dockerd, or `podman system service`).
pub fn is_engine_process(comm: &str) -> bool {
    matches!(comm.trim_end(), "dockerd" | "podman")
}

/// RLIMIT_NOFILE and RLIMIT_NPROC from a `/proc/PID/limits` text, as Engine API ulimit names.
/// "unlimited" is left out (the engine's default is then no lower).
pub fn parse_limits(text: &str) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for (label, name) in [("Max open files", "nofile"), ("Max processes", "nproc")] {
        let Some(rest) = text.lines().find_map(|l| l.strip_prefix(label)) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(Ok(soft)), Some(Ok(hard))) = (f.first().map(|s| s.parse()), f.get(1).map(|s| s.parse())) {
            out.push((name.to_string(), soft, hard));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_is_told_by_its_component() {
        assert_eq!(product(&["Podman Engine".into(), "Conmon".into()]), Product::Podman);
        assert_eq!(product(&["Engine".into(), "containerd".into()]), Product::Docker);
        assert_eq!(product(&[]), Product::Docker);
    }

    #[test]
    fn limits_are_trusted_only_from_the_engine_itself() {
        assert!(is_engine_process("dockerd\n"));
        assert!(is_engine_process("podman\n"));
        for relay in ["systemd\n", "socat\n", "com.docker.backend\n", "container-1a2b\n", ""] {
            assert!(!is_engine_process(relay), "{relay:?}");
        }
    }

    #[test]
    fn limits_are_read_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             32768                32768                processes \n\
                    Max open files            1024                 20000                files     \n\
                    Max locked memory         unlimited            unlimited            bytes     \n";
        assert_eq!(parse_limits(text), vec![("nofile".to_string(), 1024, 20000), ("nproc".to_string(), 32768, 32768)]);
        assert!(parse_limits("Max open files            unlimited            unlimited            files\n").is_empty());
    }
}
