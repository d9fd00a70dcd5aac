//! Shared helpers for tests that need a real Docker engine and the codex-sandbox image.
#![allow(dead_code)]

/// Returns from the test (with a visible skip) when the engine or image is missing; fails under CI=true.
#[allow(unused_macros)]
macro_rules! need_docker {
    () => {
        if !$crate::support::docker_ready(module_path!()) {
            return;
        }
    };
}

pub mod dns_server;
pub mod docker_net;
pub mod engine_proxy;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod pki;
pub mod proxy_probes;
pub mod pty;
pub mod scripted_model;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The owner of the tests' projects when they run as root (codex-box then runs the agent as the
/// workdir's owner).
pub const AGENT_UID: u32 = 4242;

/// The host uid that owns the tests' projects and everything the agent makes in them: [`AGENT_UID`]
/// when the tests run as root (rootful engines), else the user running them (a rootless engine's
/// owner, .ci/run's `codexbox`).
pub fn owner_uid() -> u32 {
    if nix::unistd::getuid().is_root() {
        AGENT_UID
    } else {
        nix::unistd::getuid().as_raw()
    }
}

fn owner_gid() -> u32 {
    if nix::unistd::getuid().is_root() {
        AGENT_UID
    } else {
        nix::unistd::getgid().as_raw()
    }
}

/// What the engine under test says of itself (`/version`, `/info`: independent of the session's own
/// probe, which the tests' expectations are thereby checked against).
fn probed() -> codex_box::docker::profile::Probed {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let found =
            codex_box::docker::discover::find_here(None, &codex_box::host_env::HostEnv::from_process()).unwrap();
        let d = codex_box::docker::engine::connect().await.unwrap();
        codex_box::docker::profile::probe(&d, codex_box::docker::profile::local_socket(&found), None).await
    })
}

/// The agent's uid inside the container (`id -u`) on the engine under test: the owner's, except on
/// rootless Docker, where the owner is container root ([`codex_box::docker::spec::identity`]).
pub fn agent_uid_inside() -> u32 {
    let probed = probed();
    codex_box::docker::spec::identity(&probed.profile, owner_uid(), owner_gid()).uid
}

/// Whether the engine under test is rootless Podman (its own `/info`), where codex-box makes one
/// container at a time across its processes ([`codex_box::docker::create_lock`]).
pub fn rootless_podman() -> bool {
    let p = probed().profile;
    p.product == codex_box::docker::kind::Product::Podman && p.rootless
}

/// Whether process `pid` waits for a `flock` (a `->` line of /proc/locks names the waiter).
pub fn waits_for_a_flock(pid: u32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&"->") && f.get(2) == Some(&"FLOCK") && f.get(5) == Some(&pid.to_string().as_str())
    })
}

pub fn image() -> String {
    std::env::var("CODEX_BOX_TEST_IMAGE").unwrap_or_else(|_| "codex-sandbox".into())
}

/// Whether the engine and the image are there. Under CI their absence is a failure, never a skip
/// ([`skip`]).
pub fn docker_ready(test: &str) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reason = rt.block_on(async {
        match codex_box::docker::engine::connect().await {
            Err(e) => Some(format!("no Docker engine: {e}")),
            Ok(d) => match codex_box::docker::image::exists(&d, &image()).await {
                Ok(true) => None,
                Ok(false) => Some(format!("image {} missing (build it: codex-box image build)", image())),
                Err(e) => Some(e.to_string()),
            },
        }
    });
    match reason {
        None => true,
        Some(r) => skip(&format!("{test}: {r}")),
    }
}

/// Whether the engine under test can enforce `--memory`, `--cpus` and `--pids-limit`
/// ([`codex_box::docker::spec::limits_enforced`]: not a rootless engine on cgroup v1). Where it
/// cannot, a limit test checks instead that codex-box says so, and never runs its fork bomb or memory
/// hog unbounded on the host.
pub fn limits_enforced() -> bool {
    let probed = probed();
    codex_box::docker::spec::limits_enforced(&probed.profile, probed.cgroup_version.as_deref())
}

/// On an engine that cannot enforce limits: a session with `flag` says so (and the test stops there).
pub fn limits_not_enforced_are_stated(p: &Project, flag: &[&str]) -> bool {
    if limits_enforced() {
        return false;
    }
    let out = p.run_sh(flag, "true");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot enforce --memory, --cpus or --pids-limit"), "{}", text(&out.stderr));
    eprintln!("this engine cannot enforce limits: checked that codex-box says so, ran no fork bomb or memory hog");
    true
}

/// A project directory owned by [`owner_uid`], a fake HOME and a state dir.
pub struct Project {
    pub root: tempfile::TempDir,
    pub wd: PathBuf,
    pub home: PathBuf,
    pub state: PathBuf,
    /// The resolver every session of this project uses unless a test names its own: a test DNS
    /// server on loopback that knows no name, so no test sends a lookup to the host's resolver.
    pub dns: dns_server::TestDns,
}

impl Project {
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().canonicalize().unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let wd = base.join("proj");
        let home = base.join("home");
        let state = base.join("state");
        for d in [&wd, &home, &state] {
            std::fs::create_dir_all(d).unwrap();
        }
        chown(&wd);
        Project { root, wd, home, state, dns: dns_server::TestDns::start(dns_server::Zone::new(60)) }
    }

    /// `codex-box ARGS` with a clean environment pointing at this project. A session (`run`, or the
    /// default Codex command) resolves through [`Project::dns`] unless ARGS name a `--dns-server`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_codex-box"));
        let dns = format!("--dns-server={}", self.dns.addr);
        let mut args: Vec<&str> = args.to_vec();
        // A test about the resolver flags, or a project config that names its resolver, keeps its own.
        let flags = args.iter().take_while(|a| **a != "--");
        let named = flags
            .clone()
            .any(|a| ["--dns-server", "--dns-tls-name", "--allow-dns"].iter().any(|f| a.starts_with(f)))
            || std::fs::read_to_string(self.wd.join(".codex/codex-box.toml")).is_ok_and(|t| t.contains("dns_server"));
        match args.first() {
            _ if named => {}
            Some(&"run") | Some(&"egress") => args.insert(1, &dns),
            Some(a) if a.starts_with("--") => args.insert(0, &dns),
            _ => {}
        }
        c.args(args)
            .current_dir(&self.wd)
            .env("HOME", &self.home)
            .env("XDG_STATE_HOME", &self.state)
            .env("CODEX_DOCKER_IMAGE", image())
            .env_remove("CODEX_CONFIG_DIR")
            .env_remove("CODEX_AUTH_FILE")
            .env_remove("WORKSPACE_ROOT_DIR")
            .env_remove("OPENAI_ALLOWED_DOMAINS")
            .env_remove("CODEX_BOX_CA_CERTS")
            .stdin(std::process::Stdio::null());
        c
    }

    /// `codex-box run --work_dir WD [EXTRA] -- sh -c SCRIPT`.
    pub fn run_sh(&self, extra: &[&str], script: &str) -> Output {
        let wd = self.wd.to_str().unwrap().to_string();
        let mut args = vec!["run", "--work_dir", &wd];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        self.cmd(&args).output().unwrap()
    }

    /// The workdir as seen inside the container.
    pub fn app(&self) -> String {
        format!("/app{}", self.wd.display())
    }
}

pub fn chown(p: &Path) {
    std::os::unix::fs::chown(p, Some(owner_uid()), Some(owner_gid())).unwrap();
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Names of codex-box containers whose workdir label is `wd`.
pub fn containers_for(wd: &Path) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = codex_box::docker::engine::connect().await.unwrap();
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!("io.codex-box.workdir={}", wd.display())],
        )]);
        let opts = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        list(&d, opts).await.into_iter().flat_map(|c| c.names.unwrap_or_default()).collect()
    })
}

/// Lists containers; Podman's transient "stopped" state (a container being cleaned up) fails to
/// parse, so that is tried again, as `codex-box gc` does.
async fn list(
    d: &bollard::Docker,
    opts: bollard::query_parameters::ListContainersOptions,
) -> Vec<bollard::models::ContainerSummary> {
    for _ in 0..20 {
        match d.list_containers(Some(opts.clone())).await {
            Err(bollard::errors::Error::JsonDataError { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await
            }
            other => return other.unwrap(),
        }
    }
    panic!("the engine kept listing containers in a state the API does not know");
}

/// Waits until a container for `wd` is running (or the timeout passes).
pub fn wait_running(wd: &Path, secs: u64) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed().as_secs() < secs {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let running = rt.block_on(async {
            let d = codex_box::docker::engine::connect().await.unwrap();
            let filters = std::collections::HashMap::from([
                ("label".to_string(), vec![format!("io.codex-box.workdir={}", wd.display())]),
                ("status".to_string(), vec!["running".to_string()]),
            ]);
            let opts =
                bollard::query_parameters::ListContainersOptions { filters: Some(filters), ..Default::default() };
            !list(&d, opts).await.is_empty()
        });
        if running {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// The one skip rule of every test and bench: under CI (`CI=true` or `CI=1`) a test that cannot run
/// is a failure (this panics with the reason, since CI must run everything); elsewhere it prints
/// `skipped: <reason>` and returns false, so the caller returns.
pub fn skip(reason: &str) -> bool {
    if matches!(std::env::var("CI").as_deref(), Ok("true" | "1")) {
        panic!("CI is set and this test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
    false
}

/// `ok`, or, when a prerequisite is missing, [`skip`] with `reason`.
pub fn require(ok: bool, reason: &str) -> bool {
    ok || skip(reason)
}

/// Waits until `addr` accepts TCP connections (a test host coming up), at most `secs` seconds.
pub fn wait_for_port(addr: &str, secs: u64) {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)).is_err() {
        assert!(start.elapsed().as_secs() < secs, "test host {addr} did not come up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs `cmd` on a new pseudo-terminal of `rows` x `cols`, reading what it prints until `until` appears
/// or the terminal closes. Returns its exit status and the output.
pub fn run_in_pty(mut cmd: Command, rows: u16, cols: u16, until: &'static str) -> (std::process::ExitStatus, String) {
    let ws = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&ws), None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child =
        cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave).spawn().unwrap();
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&all).contains(until) {
                break;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let status = child.wait().unwrap();
    (status, reader.join().unwrap())
}

/// Whether the engine has the gVisor runtime (CI configures it; elsewhere an explicit skip).
pub fn gvisor() -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let has = rt.block_on(async {
        let d = codex_box::docker::engine::connect().await.unwrap();
        d.info().await.ok().and_then(|i| i.runtimes).is_some_and(|r| r.contains_key("runsc"))
    });
    require(has, "the engine has no runsc runtime (gVisor); .ci/run configures it")
}

/// A root filesystem for an image build's base, at `at`: dash as `/bin/sh`, `tool` (a program of
/// this host that needs only libc, e.g. `/bin/sleep`) at the same path, libc, and an executable
/// `/usr/bin/apt-get` (the session Dockerfile's first RUN step) with `apt_get` as its script.
pub fn fake_rootfs(at: &Path, tool: &str, apt_get: &str) {
    use std::os::unix::fs::PermissionsExt;
    for (from, to) in [
        ("/bin/dash", "bin/sh"),
        (tool, tool.trim_start_matches('/')),
        ("/lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6"),
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
    ] {
        let to = at.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap();
    }
    for d in ["usr/bin", "tmp", "etc"] {
        std::fs::create_dir_all(at.join(d)).unwrap();
    }
    let apt = at.join("usr/bin/apt-get");
    std::fs::write(&apt, apt_get).unwrap();
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every name (`REPO:TAG`) the engine's images hold.
pub fn image_names(rt: &tokio::runtime::Runtime, docker: &bollard::Docker) -> Vec<String> {
    rt.block_on(docker.list_images(None::<bollard::query_parameters::ListImagesOptions>))
        .unwrap()
        .into_iter()
        .flat_map(|i| i.repo_tags)
        .collect()
}
