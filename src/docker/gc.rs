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

/// Removes orphaned (or, with `all`, every) codex-box container. Returns the names removed.
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
}
