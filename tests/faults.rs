//! Faults played on an engine of the test's own making, run once (not per engine): a Docker engine
//! whose data root is a small loop-mounted disk, so that a build can fill it (issue #21). Needs root,
//! `dockerd` and `mkfs.ext4` (scripts/setup.sh installs Docker); under CI their absence is a failure.
#![cfg(target_os = "linux")]

#[macro_use]
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A second dockerd beside the host's: its data root on a 160 MiB ext4 image mounted through a loop
/// device, its own exec root, socket, configuration (none) and bridge (one the test makes: a daemon
/// without a bridge would take the host engine's `docker0` away), no iptables rules. Dropped: the
/// daemon stopped, the disk unmounted, the bridge removed.
struct SmallEngine {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    bridge: String,
}

impl SmallEngine {
    fn start() -> SmallEngine {
        let dir = tempfile::tempdir().unwrap();
        let bridge = format!("cbxfull{}", std::process::id() % 100_000);
        // A run killed before its Drop left its bridge (and 198.18.120.1/24) behind: removed first.
        let links = Command::new("ip").args(["-o", "link", "show", "type", "bridge"]).output().unwrap();
        for stale in
            text(&links.stdout).lines().filter_map(|l| l.split(": ").nth(1)).filter(|n| n.starts_with("cbxfull"))
        {
            let _ = Command::new("ip").args(["link", "del", stale]).status();
        }
        let mut engine = SmallEngine { dir, daemon: None, bridge };
        let (img, disk) = (engine.dir.path().join("disk.img"), engine.disk());
        std::fs::create_dir_all(&disk).unwrap();
        run("truncate", &["-s", "160M", img.to_str().unwrap()]);
        run("mkfs.ext4", &["-q", "-F", img.to_str().unwrap()]);
        run("mount", &["-o", "loop", img.to_str().unwrap(), disk.to_str().unwrap()]);
        run("ip", &["link", "add", &engine.bridge, "type", "bridge"]);
        run("ip", &["addr", "add", "198.18.120.1/24", "dev", &engine.bridge]);
        run("ip", &["link", "set", &engine.bridge, "up"]);
        let config = engine.dir.path().join("daemon.json");
        std::fs::write(&config, "{}").unwrap();
        let p = |name: &str| engine.dir.path().join(name).to_str().unwrap().to_string();
        let daemon = Command::new("dockerd")
            .args(["--config-file", &p("daemon.json"), "--data-root", disk.join("data").to_str().unwrap()])
            .args(["--exec-root", &p("exec"), "--pidfile", &p("dockerd.pid"), "-H", &format!("unix://{}", p("sock"))])
            .args(["--bridge", &engine.bridge, "--iptables=false", "--ip6tables=false", "--ip-masq=false"])
            // Its own containerd namespace and a layer store in its data root, even where a system
            // containerd runs (it would otherwise share the host daemon's, and fill the host's disk).
            .args([
                "--containerd-namespace",
                &engine.bridge,
                "--containerd-plugins-namespace",
                &format!("{}p", engine.bridge),
            ])
            .args(["--storage-driver", "overlay2"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p("dockerd.log")).unwrap())
            .spawn()
            .unwrap();
        engine.daemon = Some(daemon);
        let start = Instant::now();
        while !engine.answers() {
            let log = std::fs::read_to_string(p("dockerd.log")).unwrap_or_default();
            assert!(start.elapsed() < Duration::from_secs(60), "the test's dockerd did not come up:\n{log}");
            std::thread::sleep(Duration::from_millis(300));
        }
        engine
    }

    fn disk(&self) -> PathBuf {
        self.dir.path().join("disk")
    }

    fn url(&self) -> String {
        format!("unix://{}", self.dir.path().join("sock").display())
    }

    fn answers(&self) -> bool {
        Command::new("curl")
            .args(["-sf", "--max-time", "2", "--unix-socket", self.dir.path().join("sock").to_str().unwrap()])
            .arg("http://d/_ping")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn free_bytes(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.disk()).unwrap();
        s.blocks_available() * s.fragment_size()
    }
}

impl Drop for SmallEngine {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let pid = nix::unistd::Pid::from_raw(d.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            while d.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = Command::new("umount").arg("-l").arg(self.disk()).status();
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", text(&out.stderr));
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `codex-box image build` on an engine whose disk fills during the build (issue #21): the build
/// fails with codex-box's status, the step's own "No space left on device" (the fault really
/// happened), what to do about a full disk and how to retry; nothing is tagged — neither the user's
/// tag nor the build's own name — no build container is left, and the disk has its room back.
#[test]
fn a_build_that_fills_the_engines_disk_tags_nothing_and_says_the_disk_is_full() {
    let root = nix::unistd::geteuid().is_root();
    if !require(root && have("dockerd") && have("mkfs.ext4"), "needs root, dockerd and mkfs.ext4 (scripts/setup.sh)") {
        return;
    }
    let engine = SmallEngine::start();
    let p = Project::new();
    let rootfs = p.root.path().join("rootfs");
    // apt-get appends to a file until the disk is full, then fails as a step would.
    fake_rootfs(
        &rootfs,
        "/bin/cat",
        "#!/bin/sh\nwhile cat /bin/cat /bin/cat /bin/cat /bin/cat >>/fill; do :; done\nexit 1\n",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = codex_box::host_env::HostEnv::from_process();
    let docker = rt.block_on(codex_box::docker::engine::connect_with(Some(&engine.url()), &env)).unwrap().docker;
    rt.block_on(codex_box::docker::image::import_rootfs(&docker, &rootfs, "codex-box-test-fillbase:1")).unwrap();
    let free = engine.free_bytes();

    let tag = "codex-box-test-full:1";
    let out = p
        .cmd(&["image", "build", "--base", "codex-box-test-fillbase:1", "--tag", tag])
        .env("CODEX_BOX_ENGINE", engine.url())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("No space left on device"), "the step filled the disk: {err}");
    assert!(err.contains("The engine's disk is full: free space there"), "{err}");
    assert!(err.contains("run `codex-box image build` again"), "{err}");
    assert!(!err.contains('\x1b'), "no terminal escapes from the builder in the message: {err:?}");

    assert!(!rt.block_on(codex_box::docker::image::exists(&docker, tag)).unwrap(), "nothing tagged {tag}");
    let names = image_names(&rt, &docker);
    assert!(!names.iter().any(|n| n.contains("codex-box-building-")), "no building name left: {names:?}");
    let all = bollard::query_parameters::ListContainersOptions { all: true, ..Default::default() };
    let left = rt.block_on(docker.list_containers(Some(all))).unwrap();
    assert!(left.is_empty(), "no build container left: {left:?}");
    assert!(engine.free_bytes() + (8 << 20) >= free, "the disk has its room back: {} of {free}", engine.free_bytes());
}
