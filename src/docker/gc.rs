//! Removing what a killed codex-box left behind: containers labelled as codex-box's whose owning
//! process on this host is gone (or all of them with `--all`), and their session directories.

use std::collections::HashMap;

use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use bollard::Docker;

use super::spec::LABEL;

/// This host's name, as recorded in the owner label.
pub fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Whether a process with this pid exists on this host.
pub fn pid_alive(pid: i32) -> bool {
    pid > 0 && !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH))
}

/// Whether a container with these labels is an orphan: made on this host by a process that is gone.
pub fn is_orphan(labels: &HashMap<String, String>, host: &str) -> bool {
    let owner_host = labels.get(&format!("{LABEL}.host")).map(String::as_str);
    let pid = labels.get(&format!("{LABEL}.pid")).and_then(|p| p.parse::<i32>().ok());
    matches!((owner_host, pid), (Some(h), Some(p)) if h == host && !pid_alive(p))
}

/// Waits (at most ten seconds) until the engine no longer knows the container.
async fn wait_gone(docker: &Docker, id: &str) {
    for _ in 0..100 {
        if let Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) =
            docker.inspect_container(id, None).await
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// How a session directory's name begins (`<prefix><owner pid>-<random>`, in the temporary directory).
pub const SESSION_DIR_PREFIX: &str = "codex-box-session-";

/// The owner pid in a session directory's name, if it is one.
pub fn session_dir_owner(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(SESSION_DIR_PREFIX)?;
    let (pid, random) = rest.split_once('-')?;
    (!random.is_empty()).then_some(())?;
    pid.parse().ok()
}

/// Removes the session directories in `tmp` whose owning codex-box is gone: what a codex-box
/// killed during start, before its container existed, left (a container's own directory goes with
/// it). Returns how many it removed. Directories of other users it may not remove are left.
pub fn collect_session_dirs(tmp: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(session_dir_owner) else { continue };
        // Only real directories (never a link someone put there), of dead owners.
        if pid_alive(pid) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if std::fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Removes orphaned (or, with `all`, every) codex-box container, and the session directories of
/// codex-box processes killed before their container existed. Returns the names of the containers
/// removed.
pub async fn collect(docker: &Docker, all: bool) -> Result<Vec<String>, bollard::errors::Error> {
    let filters: HashMap<String, Vec<String>> = [("label".to_string(), vec![format!("{LABEL}=1")])].into();
    let opts = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    // Podman names a container that is being cleaned up after its exit "stopped", a state the API
    // does not know: the listing fails to parse until the clean-up is done (well under a second).
    let mut tries = 0;
    let list = loop {
        match docker.list_containers(Some(opts.clone())).await {
            Err(bollard::errors::Error::JsonDataError { .. }) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            other => break other?,
        }
    };
    let host = hostname();
    collect_session_dirs(&std::env::temp_dir());
    let mut removed = Vec::new();
    for c in list {
        let labels = c.labels.clone().unwrap_or_default();
        if !(all || is_orphan(&labels, &host)) {
            continue;
        }
        let Some(id) = c.id else { continue };
        let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_else(|| id.clone());
        let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match docker.remove_container(&id, Some(opts)).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            // Another codex-box (every session start collects orphans) is removing it: wait for that.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message })
                if message.contains("already in progress") =>
            {
                wait_gone(docker, &id).await
            }
            Err(e) => return Err(e),
        }
        if let Some(dir) = labels.get(&format!("{LABEL}.session-dir")) {
            let _ = std::fs::remove_dir_all(dir);
        }
        removed.push(name.trim_start_matches('/').to_string());
    }
    Ok(removed)
}

/// Removes the names that image builds of codex-box processes now gone still hold
/// (`REPO:codex-box-building-PID-HOST`: a build interrupted, or finished by the engine after its client
/// left). Returns the names removed.
pub async fn collect_building_tags(docker: &Docker) -> Result<Vec<String>, bollard::errors::Error> {
    let images = docker.list_images(None::<bollard::query_parameters::ListImagesOptions>).await?;
    let (mut removed, host) = (Vec::new(), hostname());
    for name in images.into_iter().flat_map(|i| i.repo_tags) {
        if super::image::building_owner(&name, &host).is_some_and(|pid| !pid_alive(pid))
            && super::image::untag(docker, &name).await
        {
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_dead_owners_on_this_host() {
        let host = hostname();
        let l = |h: &str, p: &str| -> HashMap<String, String> {
            [(format!("{LABEL}.host"), h.to_string()), (format!("{LABEL}.pid"), p.to_string())].into()
        };
        assert!(!is_orphan(&l(&host, &std::process::id().to_string()), &host), "we are alive");
        // A pid beyond pid_max never exists.
        assert!(is_orphan(&l(&host, "2147483646"), &host));
        assert!(!is_orphan(&l("another-host", "2147483646"), &host), "never another host's");
        assert!(!is_orphan(&HashMap::new(), &host));
    }

    #[test]
    fn session_dirs_of_dead_owners_are_collected_and_no_other() {
        assert_eq!(session_dir_owner("codex-box-session-42-abc"), Some(42));
        assert_eq!(session_dir_owner("codex-box-session-abc"), None, "an older name: no owner known");
        assert_eq!(session_dir_owner("codex-box-session-42-"), None);
        let t = tempfile::tempdir().unwrap();
        let dead = t.path().join("codex-box-session-2147483646-x");
        let alive = t.path().join(format!("codex-box-session-{}-x", std::process::id()));
        let other = t.path().join("codex-box-sessionx-2147483646-x");
        let target = t.path().join("target");
        for d in [&dead, &alive, &other, &target] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
        }
        let link = t.path().join("codex-box-session-2147483645-l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(collect_session_dirs(t.path()), 1);
        assert!(!dead.exists(), "a dead owner's directory goes");
        assert!(alive.join("sub").is_dir() && other.is_dir(), "control: a live owner's, and other names, stay");
        assert!(target.join("sub").is_dir() && link.is_symlink(), "a link is not followed");
    }
}
