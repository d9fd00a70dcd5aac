//! The usual places of an engine's socket, in the order they are tried, and what this process can
//! do with each (through [`HostFs`], a rooted fake in the tests).

use std::path::{Path, PathBuf};

use super::Address;
use crate::host_env::HostEnv;

/// A usual socket and what normally listens there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    RootfulDocker,
    RootlessDocker,
    RootfulPodman,
    RootlessPodman,
    DockerDesktop,
    Colima,
    OrbStack,
    PodmanMachine,
}

impl Place {
    pub fn name(self) -> &'static str {
        match self {
            Place::RootfulDocker => "rootful Docker",
            Place::RootlessDocker => "rootless Docker",
            Place::RootfulPodman => "rootful Podman",
            Place::RootlessPodman => "rootless Podman",
            Place::DockerDesktop => "Docker Desktop",
            Place::Colima => "Colima",
            Place::OrbStack => "OrbStack",
            Place::PodmanMachine => "Podman machine",
        }
    }

    /// The engine runs in a virtual machine of its own.
    pub fn vm(self) -> bool {
        matches!(self, Place::DockerDesktop | Place::Colima | Place::OrbStack | Place::PodmanMachine)
    }

    /// How a user starts the engine usually found here.
    pub fn start(self) -> &'static str {
        match self {
            Place::RootfulDocker => "`sudo systemctl start docker` (or run `dockerd` as root)",
            Place::RootlessDocker => "`systemctl --user start docker`",
            Place::RootfulPodman => "`sudo systemctl start podman.socket`",
            Place::RootlessPodman => "`systemctl --user start podman.socket`",
            Place::DockerDesktop => "start Docker Desktop",
            Place::Colima => "`colima start`",
            Place::OrbStack => "start OrbStack",
            Place::PodmanMachine => "`podman machine start`",
        }
    }
}
/// What this process can do with a usual socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    Missing,
    /// There, but this user may not open it (or see it).
    Denied,
    Usable,
}

/// The files discovery reads and the sockets it looks at (a rooted fake in tests).
pub trait HostFs {
    /// The file's text; `NotFound` when it is absent.
    fn read(&self, path: &Path) -> std::io::Result<String>;
    fn exists(&self, path: &Path) -> bool;
    fn socket(&self, path: &Path) -> SocketState;
}

/// The host's own files.
pub struct RealFs;

impl HostFs for RealFs {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    #[cfg(unix)]
    fn socket(&self, path: &Path) -> SocketState {
        socket_state(path)
    }

    #[cfg(not(unix))]
    fn socket(&self, path: &Path) -> SocketState {
        if path.exists() {
            SocketState::Usable
        } else {
            SocketState::Missing
        }
    }
}

/// A unix socket's state for this process: `Usable` when it is a socket and access(2) grants read
/// and write.
#[cfg(unix)]
pub fn socket_state(path: &Path) -> SocketState {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            let ok = std::ffi::CString::new(path.as_os_str().as_bytes()).is_ok_and(|c| {
                // SAFETY: a NUL-terminated path; access(2) only reads it.
                unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) == 0 }
            });
            if ok {
                SocketState::Usable
            } else {
                SocketState::Denied
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => SocketState::Denied,
        _ => SocketState::Missing,
    }
}

/// The host platform, for the usual sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Macos,
    Windows,
}

impl Os {
    pub fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::Macos
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Linux
        }
    }
}

/// The usual places, in the order they are tried.
pub fn usual(env: &HostEnv, os: Os) -> Vec<(Place, Address)> {
    if os == Os::Windows {
        return vec![
            (Place::DockerDesktop, Address::Pipe("//./pipe/docker_engine".into())),
            (Place::PodmanMachine, Address::Pipe("//./pipe/podman-machine-default".into())),
        ];
    }
    let mut out: Vec<(Place, PathBuf)> = vec![(Place::RootfulDocker, "/var/run/docker.sock".into())];
    if let Some(r) = &env.runtime_dir {
        out.push((Place::RootlessDocker, r.join("docker.sock")));
    }
    out.push((Place::RootfulPodman, "/run/podman/podman.sock".into()));
    if let Some(r) = &env.runtime_dir {
        out.push((Place::RootlessPodman, r.join("podman/podman.sock")));
    }
    if let Some(h) = &env.home {
        out.push((Place::DockerDesktop, h.join(".docker/run/docker.sock")));
        out.push((Place::DockerDesktop, h.join(".docker/desktop/docker.sock")));
        out.push((Place::Colima, h.join(".colima/default/docker.sock")));
        out.push((Place::Colima, h.join(".colima/docker.sock")));
        out.push((Place::OrbStack, h.join(".orbstack/run/docker.sock")));
        out.push((Place::PodmanMachine, h.join(".local/share/containers/podman/machine/podman.sock")));
        out.push((Place::PodmanMachine, h.join(".local/share/containers/podman/machine/qemu/podman.sock")));
    }
    if os == Os::Macos {
        if let Some(t) = &env.tmpdir {
            out.push((Place::PodmanMachine, t.join("podman/podman-machine-default-api.sock")));
        }
    }
    out.into_iter().map(|(p, a)| (p, Address::Unix(a))).collect()
}
