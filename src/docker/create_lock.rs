//! One container create at a time per user on engines that cannot take two at once.
//!
//! Rootless Podman 4.x looks up the user's sub-id ranges through shadow's libsubid for every
//! `keep-id` container it creates, and libsubid is not thread-safe: two creates at the same moment
//! make the service fail one of them ("no subuid ranges found") or crash outright (SIGSEGV in
//! `subid_get_uid_ranges`, containers/podman#23264), taking every running session's API with it.
//! Concurrent sessions are a feature, so codex-box serialises its own creates on such an engine with
//! an exclusive `flock` on a file in a directory private to the user ([`crate::session::Plan`]'s
//! `lock_dir`: `$XDG_RUNTIME_DIR`, else the state directory). The lock is held for the create
//! calls only (tens of milliseconds) and released when the guard drops or the process dies.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::docker::kind::Product;
use crate::docker::spec::EngineProfile;

/// The lock file's name in the lock directory.
pub const FILE_NAME: &str = "codex-box-engine-create.lock";

/// Whether creates on `engine` must be serialised: rootless Podman (its `keep-id` lookup).
pub fn needed(engine: &EngineProfile) -> bool {
    engine.product == Product::Podman && engine.rootless
}

/// The lock file for `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Held lock; released on drop.
#[derive(Debug)]
pub struct Guard(#[allow(dead_code)] File);

/// Waits for the exclusive lock on `dir`'s lock file (made 0600, never through a symlink).
pub async fn acquire(dir: &Path) -> std::io::Result<Guard> {
    let path = path(dir);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        loop {
            // SAFETY: flock(2) on a descriptor `file` owns; no memory is passed.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Guard(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rootless_podman_needs_it() {
        let mut e = EngineProfile::default();
        for (product, rootless, want) in [
            (Product::Docker, false, false),
            (Product::Docker, true, false),
            (Product::Podman, false, false),
            (Product::Podman, true, true),
        ] {
            e.product = product;
            e.rootless = rootless;
            assert_eq!(needed(&e), want, "{product:?} rootless={rootless}");
        }
    }

    #[tokio::test]
    async fn a_second_holder_waits_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).await.unwrap();
        let d = dir.path().to_path_buf();
        let second = tokio::spawn(async move { acquire(&d).await.map(|_| ()) });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!second.is_finished(), "the second create must wait for the first");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), second).await.unwrap().unwrap().unwrap();
        let mode = std::fs::metadata(path(dir.path())).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    }

    #[tokio::test]
    async fn a_symlink_in_its_place_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, path(dir.path())).unwrap();
        assert!(acquire(dir.path()).await.is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
