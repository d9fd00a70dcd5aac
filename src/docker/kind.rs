//! What kind of engine answered: Docker or Podman, rootful or rootless, local or in a virtual
//! machine — a pure function of the engine's own answers and where it listens.
//!
//! The session path has only the `/version` the connection makes (no extra round trip): the
//! product comes from its components (Podman's is "Podman Engine"), a VM from the address (Docker
//! Desktop, Colima, OrbStack, a Podman machine), from the platform and kernel names, or from the host
//! (macOS and Windows run engines only in VMs), and rootless from the owner of a local socket (an
//! engine's socket belongs to the user it runs as). That inference is wrong for a socket forwarded
//! from another host (`ssh -L` makes it yours); [`EngineKind::refine`] corrects it from `/info`
//! (`name=rootless` among Docker's SecurityOptions) and Podman's `/libpod/info`
//! (`host.security.rootless` — Podman's compat `/info` does not say rootless), which `doctor` asks.

use std::fmt;

use bollard::models::{SystemInfo, SystemVersion};

use super::discover::{Address, Found, Os, Source};

/// The product serving the Engine API (`/version`: a component named "Podman Engine" is Podman).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Product {
    #[default]
    Docker,
    Podman,
}

/// Whether an engine can enforce a session's `--memory`, `--cpus` and `--pids-limit`: a rootless
/// engine on cgroup v1 cannot (it has no cgroup of its own to delegate), and drops them.
pub fn limits_enforced(rootless: bool, cgroup_version: Option<&str>) -> bool {
    !(rootless && cgroup_version == Some("1"))
}

/// The engine as codex-box sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineKind {
    pub product: Product,
    /// The engine runs as an unprivileged user (its root is that user on the host).
    pub rootless: bool,
    /// The engine runs in a virtual machine (Docker Desktop, Colima, OrbStack, a Podman machine).
    pub vm: bool,
    /// The product's version (e.g. 20.10.24, 4.3.1).
    pub version: String,
    /// The Docker Engine API version it serves (Podman's compat API too).
    pub api_version: String,
    /// `rootless` and `vm` were checked against `/info` (else inferred from `/version` and the address).
    pub confirmed: bool,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.rootless { "rootless" } else { "rootful" };
        let place = if self.vm { "in a VM" } else { "local" };
        write!(f, "{who} {:?} {}, {place}", self.product, self.version)
    }
}

/// Addresses of engines that run in their own VM.
fn vm_path(a: &Address) -> bool {
    let Address::Unix(p) = a else { return false };
    let p = p.to_string_lossy();
    [
        "/.colima/",
        "/.lima/",
        "/.orbstack/",
        "/.docker/run/",
        "/.docker/desktop/",
        "/containers/podman/machine/",
        "podman-machine-",
    ]
    .iter()
    .any(|m| p.contains(m))
}

impl EngineKind {
    /// From the `/version` answer, the address and the socket's owner (`None`: not a local socket).
    pub fn from_version(v: &SystemVersion, at: &Found, socket_owner: Option<u32>, os: Os) -> EngineKind {
        let components = v.components.as_deref().unwrap_or_default();
        let platform = v.platform.as_ref().map(|p| p.name.as_str()).unwrap_or_default();
        let podman = components.iter().any(|c| c.name == "Podman Engine") || platform.contains("Podman");
        let kernel = v.kernel_version.as_deref().unwrap_or_default();
        let vm = os != Os::Linux
            || matches!(at.source, Source::Usual(p) if p.vm())
            || vm_path(&at.address)
            || platform.contains("Docker Desktop")
            || kernel.contains("linuxkit")
            || kernel.contains("orbstack");
        let version =
            v.version.clone().or_else(|| components.first().map(|c| c.version.clone())).unwrap_or_else(|| "?".into());
        EngineKind {
            product: if podman { Product::Podman } else { Product::Docker },
            rootless: !vm && socket_owner.is_some_and(|uid| uid != 0),
            vm,
            version,
            api_version: v.api_version.clone().unwrap_or_else(|| "?".into()),
            confirmed: false,
        }
    }

    /// Corrected by `/info` and, for Podman, `/libpod/info`'s `host.security.rootless`.
    pub fn refine(mut self, info: &SystemInfo, podman_rootless: Option<bool>) -> EngineKind {
        let os = info.operating_system.as_deref().unwrap_or_default();
        let name = info.name.as_deref().unwrap_or_default();
        self.vm |= os.contains("Docker Desktop")
            || os.contains("OrbStack")
            || name == "colima"
            || name.starts_with("colima-")
            || name.starts_with("lima-");
        let says_rootless = info
            .security_options
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|o| o.split(',').any(|kv| kv == "name=rootless"));
        match (self.product, podman_rootless) {
            (_, Some(r)) => {
                self.rootless = r;
                self.confirmed = true;
            }
            (Product::Docker, None) => {
                self.rootless = says_rootless;
                self.confirmed = true;
            }
            // Podman's compat /info does not say rootless: keep the inference, unconfirmed.
            (Product::Podman, None) => self.rootless |= says_rootless,
        }
        self
    }
}

/// `host.security.rootless` of a Podman `/libpod/info` body.
pub fn libpod_rootless(body: &str) -> Option<bool> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.pointer("/host/security/rootless")?.as_bool()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::docker::discover::Place;

    fn version(name: &str) -> SystemVersion {
        let text =
            std::fs::read_to_string(format!("{}/src/docker/testdata/{name}.version.json", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn info(name: &str) -> SystemInfo {
        let text =
            std::fs::read_to_string(format!("{}/src/docker/testdata/{name}.info.json", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn libpod(name: &str) -> Option<bool> {
        let path = format!("{}/src/docker/testdata/{name}.libpod-info.json", env!("CARGO_MANIFEST_DIR"));
        libpod_rootless(&std::fs::read_to_string(path).unwrap())
    }

    fn at(path: &str, source: Source) -> Found {
        Found { address: Address::Unix(PathBuf::from(path)), source }
    }

    #[test]
    fn rootful_docker_from_its_recorded_answers() {
        let found = at("/var/run/docker.sock", Source::Usual(Place::RootfulDocker));
        let k = EngineKind::from_version(&version("docker-20.10-rootful"), &found, Some(0), Os::Linux);
        assert_eq!((k.product, k.rootless, k.vm), (Product::Docker, false, false));
        assert_eq!((k.version.as_str(), k.api_version.as_str()), ("20.10.24+dfsg1", "1.41"));
        let k = k.refine(&info("docker-20.10-rootful"), None);
        assert!(!k.rootless && !k.vm && k.confirmed, "{k:?}");
        assert_eq!(k.to_string(), "rootful Docker 20.10.24+dfsg1, local");
    }

    #[test]
    fn podman_is_named_by_its_version_answer_and_rootless_by_libpod_info() {
        let found = at("/run/podman/podman.sock", Source::Usual(Place::RootfulPodman));
        let k = EngineKind::from_version(&version("podman-4.3-rootful"), &found, Some(0), Os::Linux);
        assert_eq!((k.product, k.rootless, k.vm), (Product::Podman, false, false));
        assert_eq!((k.version.as_str(), k.api_version.as_str()), ("4.3.1", "1.41"));
        let k = k.refine(&info("podman-4.3-rootful"), libpod("podman-4.3-rootful"));
        assert!(!k.rootless && k.confirmed);

        // Rootless Podman: the socket is the user's; compat /info does not say rootless, libpod does.
        let found = at("/run/user/65534/podman/podman.sock", Source::DockerHost);
        let v = version("podman-4.3-rootless");
        let k = EngineKind::from_version(&v, &found, Some(65534), Os::Linux);
        assert_eq!((k.product, k.rootless, k.confirmed), (Product::Podman, true, false));
        let rootless_info = info("podman-4.3-rootless");
        assert!(!rootless_info.security_options.clone().unwrap_or_default().iter().any(|o| o.contains("rootless")));
        // A socket forwarded by root (owner 0) to a rootless Podman: /info alone cannot tell, libpod can.
        let forwarded = EngineKind::from_version(&v, &found, Some(0), Os::Linux);
        assert!(!forwarded.clone().refine(&rootless_info, None).rootless);
        let k = forwarded.refine(&rootless_info, libpod("podman-4.3-rootless"));
        assert!(k.rootless && k.confirmed, "{k:?}");
        assert_eq!(k.to_string(), "rootless Podman 4.3.1, local");
    }

    #[test]
    fn a_forwarded_socket_is_corrected_by_info() {
        // A rootful engine reached through a socket this user owns (`ssh -L`): inferred rootless,
        // then corrected by Docker's /info, which would list name=rootless were it so.
        let found = at("/tmp/engine.sock", Source::Flag);
        let k = EngineKind::from_version(&version("docker-20.10-rootful"), &found, Some(1000), Os::Linux);
        assert!(k.rootless && !k.confirmed);
        assert!(!k.refine(&info("docker-20.10-rootful"), None).rootless);
    }

    #[test]
    fn vm_engines_by_place_path_and_host() {
        let v = version("docker-20.10-rootful");
        for (path, source) in [
            ("/home/u/.docker/run/docker.sock", Source::Usual(Place::DockerDesktop)),
            ("/home/u/.colima/default/docker.sock", Source::DockerHost),
            ("/Users/u/.orbstack/run/docker.sock", Source::Flag),
            ("/home/u/.local/share/containers/podman/machine/qemu/podman.sock", Source::Usual(Place::PodmanMachine)),
        ] {
            let k = EngineKind::from_version(&v, &at(path, source), Some(1000), Os::Linux);
            assert!(k.vm && !k.rootless, "{path}: {k:?}");
        }
        let mac = EngineKind::from_version(&v, &at("/var/run/docker.sock", Source::Flag), Some(0), Os::Macos);
        assert!(mac.vm);
        let tcp = Found { address: Address::Tcp("127.0.0.1:2375".into()), source: Source::DockerHost };
        let k = EngineKind::from_version(&v, &tcp, None, Os::Linux);
        assert!(!k.vm && !k.rootless);
    }
}
