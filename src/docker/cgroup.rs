//! The session container's cgroups as the host sees them, for the limits report: how often the pids
//! limit refused a fork (`pids.events`) and whether the memory limit killed a process (`memory.events`
//! on cgroup v2, `memory.oom_control` on v1 — Podman on v1 does not record an OOM kill in the
//! container's state). Found from the container's first process through `/proc/PID/cgroup`, wherever
//! the engine put it: Docker's `docker/<id>` or `docker-<id>.scope`, Podman's `libpod-<id>` under
//! `libpod_parent` or `machine.slice`, a rootless engine's cgroup under the user's slice.
//!
//! Not read: the cgroups of a remote engine, or of an engine in another cgroup namespace than
//! codex-box; a rootless engine on cgroup v1 sets no limits at all (`spec::limits_enforced`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const ROOT: &str = "/sys/fs/cgroup";

/// The files sampled while a session runs.
#[derive(Debug, Default)]
pub struct Watch {
    pids_events: Option<PathBuf>,
    memory_events: Option<PathBuf>,
}

/// One reading.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub pids_max_hits: u64,
    pub oom_kills: u64,
}

/// The highest readings of a session.
#[derive(Debug, Default)]
pub struct Counters {
    pub pids_max_hits: AtomicU64,
    pub oom_kills: AtomicU64,
}

impl Counters {
    pub fn record(&self, s: Sample) {
        self.pids_max_hits.fetch_max(s.pids_max_hits, Ordering::Relaxed);
        self.oom_kills.fetch_max(s.oom_kills, Ordering::Relaxed);
    }
}

impl Watch {
    /// The files of the container whose first process is `pid` (a host pid), or rootful Docker's
    /// usual places for container `id`.
    pub fn find(pid: Option<i64>, id: &str) -> Watch {
        let unified = Path::new(ROOT).join("cgroup.controllers").exists();
        let proc = pid.filter(|p| *p > 0).and_then(|p| std::fs::read_to_string(format!("/proc/{p}/cgroup")).ok());
        let dir = |controller: &str| proc.as_deref().and_then(|t| controller_dir(t, unified, controller));
        let pids_events = dir("pids")
            .and_then(|d| limited_ancestor(&d, "pids.max", "pids.events"))
            .or_else(|| docker_fallback(id, "pids", "pids.events"));
        let memory_file = if unified { "memory.events" } else { "memory.oom_control" };
        let memory_events = dir("memory")
            .and_then(|d| {
                limited_ancestor(&d, if unified { "memory.max" } else { "memory.limit_in_bytes" }, memory_file)
            })
            .or_else(|| docker_fallback(id, "memory", memory_file));
        Watch { pids_events, memory_events }
    }

    pub fn sample(&self) -> Sample {
        let read = |p: &Option<PathBuf>, key: &str| {
            p.as_deref().and_then(|p| std::fs::read_to_string(p).ok()).map_or(0, |t| counter(&t, key))
        };
        Sample { pids_max_hits: read(&self.pids_events, "max"), oom_kills: read(&self.memory_events, "oom_kill") }
    }
}

/// From `dir` upwards, the first cgroup whose `limit` file holds a number (the one the engine set):
/// its `file`.
fn limited_ancestor(dir: &Path, limit: &str, file: &str) -> Option<PathBuf> {
    let mut dir = dir;
    loop {
        let limited = std::fs::read_to_string(dir.join(limit))
            .is_ok_and(|m| m.trim() != "max" && m.trim() != "9223372036854771712");
        if limited && dir.join(file).exists() {
            return Some(dir.join(file));
        }
        dir = dir.parent().filter(|d| d.starts_with(ROOT) && d.components().count() > 4)?;
    }
}

fn docker_fallback(id: &str, controller: &str, file: &str) -> Option<PathBuf> {
    [
        format!("{ROOT}/{controller}/docker/{id}/{file}"),
        format!("{ROOT}/{controller}/system.slice/docker-{id}.scope/{file}"),
        format!("{ROOT}/docker/{id}/{file}"),
        format!("{ROOT}/system.slice/docker-{id}.scope/{file}"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// The directory of `controller`'s cgroup named in a `/proc/PID/cgroup` text: the v1 line that lists
/// the controller, under `/sys/fs/cgroup/<controller>`, or on a unified hierarchy the `0::` line under
/// `/sys/fs/cgroup`.
pub fn controller_dir(proc_cgroup: &str, unified: bool, controller: &str) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        let rel = path.trim_start_matches('/');
        if unified && controllers.is_empty() {
            return Some(Path::new(ROOT).join(rel));
        }
        if !unified && controllers.split(',').any(|c| c == controller) {
            return Some(Path::new(ROOT).join(controller).join(rel));
        }
    }
    None
}

/// The number after `key` in a flat-keyed cgroup file (`max 3`, `oom_kill 1`); 0 without it.
pub fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroups_are_read_from_proc() {
        let v1 = "12:pids:/libpod_parent/libpod-abc\n11:memory:/libpod_parent/libpod-abc\n4:cpu,cpuacct:/x\n0::/\n";
        assert_eq!(
            controller_dir(v1, false, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids/libpod_parent/libpod-abc"))
        );
        assert_eq!(controller_dir(v1, false, "cpuacct"), Some(PathBuf::from("/sys/fs/cgroup/cpuacct/x")));
        let v2 = "0::/user.slice/user-1001.slice/user@1001.service/user.slice/libpod-abc.scope/container\n";
        assert_eq!(
            controller_dir(v2, true, "pids"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/user.slice/user-1001.slice/user@1001.service/user.slice/libpod-abc.scope/container"
            ))
        );
        assert_eq!(controller_dir("1:name=systemd:/x\n", false, "pids"), None);
    }

    #[test]
    fn counters() {
        assert_eq!(counter("max 17\n", "max"), 17);
        assert_eq!(counter("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill"), 2);
        assert_eq!(counter("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n", "max"), 5);
        assert_eq!(counter("", "max"), 0);
    }
}
