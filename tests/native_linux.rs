//! The native Linux sandbox, attacked for real. Every test runs the built `codex-box sandbox` as a
//! child process and pairs each escape attempt with a control that succeeds, and checks an errno or an
//! effect only the sandbox produces. Skips say why and fail under CI=true.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_codex-box");
const PY: &str = "/usr/bin/python3";

/// Returns false (and says why) when a prerequisite is missing; panics instead under CI=true.
fn require(ok: bool, reason: &str) -> bool {
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("required under CI: {reason}");
        }
        eprintln!("skipped: {reason}");
    }
    ok
}

fn sandbox_works() -> bool {
    let out = Command::new(BIN).args(["sandbox", "--", "true"]).output().unwrap();
    require(out.status.success(), &format!("the kernel refuses the sandbox: {}", String::from_utf8_lossy(&out.stderr)))
}

fn python() -> bool {
    require(Path::new(PY).exists(), "no /usr/bin/python3")
}

/// A project directory, a directory outside it and a home, all outside /tmp (so Landlock, not the
/// private /tmp, is what refuses).
struct Fx {
    _dir: tempfile::TempDir,
    work: PathBuf,
    outside: PathBuf,
    home: PathBuf,
}

fn fx() -> Fx {
    let dir = tempfile::Builder::new().prefix("native-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = dir.path().canonicalize().unwrap();
    let (work, outside, home) = (root.join("work"), root.join("outside"), root.join("home"));
    for d in [&work, &outside, &home] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(outside.join("target"), "original").unwrap();
    Fx { _dir: dir, work, outside, home }
}

/// Whether the script printed `key=N` with N non-zero (dash exits 2 for a failed redirection).
fn failed(out: &str, key: &str) -> bool {
    out.split_whitespace().any(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')).is_some_and(|n| n != "0"))
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn output(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn cmd(fx: &Fx, flags: &[&str], argv: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("sandbox").args(flags).arg("--").args(argv).current_dir(&fx.work).env("HOME", &fx.home);
    c.env_remove("CODEX_BOX_SANDBOX_PRETEND_MISSING").env_remove("XDG_CONFIG_HOME");
    c
}

fn sh(fx: &Fx, flags: &[&str], script: &str) -> Run {
    output(cmd(fx, flags, &["sh", "-c", script]).output().unwrap())
}

#[test]
fn writes_outside_the_roots_are_refused() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let o = fx.outside.display();
    let r = sh(&fx, &["--full-auto"], &format!(
        "echo new > inside && echo inside-ok; echo x > {o}/new; echo new=$?; echo x > {o}/target; echo over=$?"
    ));
    assert!(r.out.contains("inside-ok"), "{}{}", r.out, r.err);
    assert!(failed(&r.out, "new") && failed(&r.out, "over"), "{}", r.out);
    assert!(r.err.contains("Permission denied"), "Landlock answers EACCES: {}", r.err);
    assert!(!fx.outside.join("new").exists());
    assert_eq!(std::fs::read_to_string(fx.outside.join("target")).unwrap(), "original");
    assert_eq!(std::fs::read_to_string(fx.work.join("inside")).unwrap(), "new\n");
}

#[test]
fn writable_root_flag_and_profiles_open_more() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let o = fx.outside.display();
    let r = sh(&fx, &["-w", &o.to_string()], &format!("echo x > {o}/new && echo ok"));
    assert!(r.out.contains("ok"), "{}", r.err);
    let cfg = fx.home.join("cfg.toml");
    std::fs::write(&cfg, format!("[permissions.out]\nsandbox_mode = \"workspace-write\"\nwritable_roots = [\"{o}\"]\n")).unwrap();
    let r = sh(&fx, &["--config", cfg.to_str().unwrap(), "-P", "out"], &format!("echo y > {o}/p && echo ok"));
    assert!(r.out.contains("ok"), "{}", r.err);
    let r = sh(&fx, &["--config", cfg.to_str().unwrap()], &format!("echo y > {o}/q; echo rc=$?"));
    assert!(failed(&r.out, "rc"), "without -P the default read-only applies: {}", r.out);
}

#[test]
fn git_codex_and_agents_stay_read_only() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    std::fs::create_dir_all(fx.work.join(".git/hooks")).unwrap();
    std::fs::create_dir_all(fx.work.join(".codex")).unwrap();
    std::fs::write(fx.work.join(".codex/config.toml"), "safe").unwrap();
    let r = sh(&fx, &["--full-auto"], "echo ok > src.txt && echo ctl-ok; \
        echo evil > .git/hooks/pre-commit; echo hook=$?; echo evil > .codex/config.toml; echo codex=$?; \
        mkdir .agents; echo agents=$?; mkdir -p .agents/x; echo agentsx=$?");
    assert!(r.out.contains("ctl-ok"), "{}", r.err);
    for k in ["hook", "codex", "agents", "agentsx"] {
        assert!(failed(&r.out, k), "{k}: {}", r.out);
    }
    assert!(r.err.contains("Read-only file system"), "{}", r.err);
    assert!(!fx.work.join(".git/hooks/pre-commit").exists());
    assert_eq!(std::fs::read_to_string(fx.work.join(".codex/config.toml")).unwrap(), "safe");
    assert!(!fx.work.join(".agents").exists(), "the placeholder is removed afterwards");

    let r = sh(&fx, &["--full-auto", "--allow-git-write"], "echo ok > .git/hooks/pre-commit && echo git-ok");
    assert!(r.out.contains("git-ok"), "{}", r.err);
}

#[test]
fn creating_git_where_none_exists_is_refused() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let r = sh(&fx, &["--full-auto"], "mkdir other && echo ctl-ok; mkdir .git; echo mk=$?; \
        git init -q . 2>/dev/null; echo init=$?; echo x > .git/HEAD; echo head=$?");
    assert!(r.out.contains("ctl-ok"), "{}", r.err);
    assert!(failed(&r.out, "mk") && failed(&r.out, "head"), "{}", r.out);
    assert!(!r.out.contains("init=0"), "{}", r.out);
    assert!(!fx.work.join(".git").exists());
    assert!(fx.work.join("other").is_dir());
}

#[test]
fn symlink_hardlink_and_rename_escapes_fail() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let t = fx.outside.join("target");
    let r = sh(&fx, &["--full-auto"], &format!(
        "echo a > a; ln -s a l && echo b > l && ln a h && mv h m && echo ctl-ok; \
         ln -s {t} sym; echo x > sym; echo sym=$?; \
         ln {t} hard; echo hard=$?; \
         mv {t} stolen; echo mv=$?", t = t.display()
    ));
    assert!(r.out.contains("ctl-ok"), "{}{}", r.out, r.err);
    for k in ["sym", "hard", "mv"] {
        assert!(failed(&r.out, k), "{k}: {}", r.out);
    }
    assert_eq!(std::fs::read_to_string(&t).unwrap(), "original");
    assert!(!fx.work.join("hard").exists() && !fx.work.join("stolen").exists());
}

#[test]
fn credential_stores_are_hidden_by_default() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    std::fs::create_dir(fx.home.join(".ssh")).unwrap();
    std::fs::write(fx.home.join(".ssh/id_ed25519"), "PRIVATE-KEY-MATERIAL").unwrap();
    std::fs::write(fx.home.join(".netrc"), "machine x password NETRC-SECRET").unwrap();
    std::fs::write(fx.home.join("notes.txt"), "visible\n").unwrap();
    let r = sh(&fx, &[], "cat ~/notes.txt; cat ~/.ssh/id_ed25519; echo key=$?; cat ~/.netrc; ls ~/.ssh; echo ls=$?");
    assert!(r.out.contains("visible"), "{}", r.err);
    assert!(failed(&r.out, "key") && failed(&r.out, "ls"), "{}", r.out);
    assert!(!r.out.contains("PRIVATE-KEY") && !r.out.contains("NETRC-SECRET"), "{}", r.out);
    let cfg = fx.home.join("cfg.toml");
    std::fs::write(&cfg, "[permissions.open]\nhide_credentials = false\n").unwrap();
    let r = sh(&fx, &["--config", cfg.to_str().unwrap(), "-P", "open"], "cat ~/.ssh/id_ed25519");
    assert!(r.out.contains("PRIVATE-KEY"), "configurable: {}", r.err);
}

#[test]
fn secret_environment_variables_are_scrubbed() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let script = "echo key=$MY_API_KEY tok=$GH_TOKEN plain=$PLAIN_VAR";
    let run = |flags: &[&str]| {
        output(cmd(&fx, flags, &["sh", "-c", script])
            .env("MY_API_KEY", "sk-secret").env("GH_TOKEN", "ghp").env("PLAIN_VAR", "hello").output().unwrap())
    };
    let r = run(&[]);
    assert_eq!(r.out.trim(), "key= tok= plain=hello");
    let r = run(&["--keep-env", "MY_API_KEY"]);
    assert_eq!(r.out.trim(), "key=sk-secret tok= plain=hello");
}

const CONNECT: &str = r#"
import socket, sys
kind, addr = sys.argv[1], sys.argv[2]
try:
    if kind == "tcp":
        s = socket.create_connection(("127.0.0.1", int(addr)), timeout=2); s.sendall(b"hi")
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"hi", ("127.0.0.1", int(addr)))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(("\0" + addr) if kind == "abstract" else addr); s.sendall(b"hi")
    print("connected")
except OSError as e:
    print("refused errno", e.errno)
"#;

fn connect(fx: &Fx, flags: &[&str], kind: &str, addr: &str) -> Run {
    output(cmd(fx, flags, &[PY, "-c", CONNECT, kind, addr]).output().unwrap())
}

#[test]
fn network_is_off_for_tcp_udp_and_abstract_unix_sockets() {
    if !sandbox_works() || !python() {
        return;
    }
    use std::os::linux::net::SocketAddrExt;
    let fx = fx();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port().to_string();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let udp_port = udp.local_addr().unwrap().port().to_string();
    let name = format!("codex-box-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let abs = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();

    for flags in [&[][..], &["--full-auto"][..]] {
        assert_eq!(connect(&fx, flags, "tcp", &tcp_port).out.trim(), "refused errno 1", "tcp {flags:?}");
        assert_eq!(connect(&fx, flags, "udp", &udp_port).out.trim(), "refused errno 1", "udp {flags:?}");
        let r = connect(&fx, flags, "abstract", &name);
        assert!(r.out.starts_with("refused"), "abstract {flags:?}: {}", r.out);
    }
    // Abstract sockets stay scoped by Landlock even when the network is on.
    let r = connect(&fx, &["--full-auto", "--network"], "abstract", &name);
    assert!(r.out.starts_with("refused errno 1"), "{}{}", r.out, r.err);

    // Controls: the same listeners are reachable with the network on / without a sandbox.
    assert_eq!(connect(&fx, &["--full-auto", "--network"], "tcp", &tcp_port).out.trim(), "connected");
    let mut s = tcp.accept().unwrap().0;
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    assert_eq!(connect(&fx, &["--full-auto", "--network"], "udp", &udp_port).out.trim(), "connected");
    assert_eq!(udp.recv(&mut buf).unwrap(), 2);
    assert_eq!(connect(&fx, &["-s", "danger-full-access"], "abstract", &name).out.trim(), "connected");
    drop(abs);
}

#[test]
fn unix_socket_paths_in_the_host_tmp_are_out_of_reach() {
    if !sandbox_works() || !python() {
        return;
    }
    let fx = fx();
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let path = dir.path().join("sock");
    let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let p = path.to_str().unwrap();
    let r = connect(&fx, &["--full-auto"], "unix", p);
    assert_eq!(r.out.trim(), "refused errno 2", "the private /tmp hides it: {}{}", r.out, r.err);
    assert_eq!(connect(&fx, &["-s", "danger-full-access"], "unix", p).out.trim(), "connected");
}

#[test]
fn processes_outside_cannot_be_signalled_traced_or_read() {
    if !sandbox_works() || !python() {
        return;
    }
    let fx = fx();
    let mut victim = Command::new("sleep").arg("30").env("VICTIM_MARK", "environ-secret").spawn().unwrap();
    let pid = victim.id().to_string();
    let script = r#"
import ctypes, os, sys
pid = int(sys.argv[1])
os.kill(os.getpid(), 0); print("self-signal-ok")
try: os.kill(pid, 0); print("signal-ok")
except OSError as e: print("signal errno", e.errno)
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, pid, 0, 0); print("ptrace", r, ctypes.get_errno())
try: print("environ", open(f"/proc/{pid}/environ","rb").read())
except OSError as e: print("environ errno", e.errno)
"#;
    let r = output(cmd(&fx, &["--log-denials"], &[PY, "-c", script, &pid]).output().unwrap());
    assert!(r.out.contains("self-signal-ok"), "{}{}", r.out, r.err);
    assert!(r.out.contains("signal errno 3"), "not visible in the PID namespace: {}", r.out);
    assert!(r.out.contains("ptrace -1 1"), "seccomp answers EPERM: {}", r.out);
    assert!(r.out.contains("environ errno 2"), "{}", r.out);
    assert!(!r.out.contains("environ-secret"));
    assert!(r.err.contains(&format!("denied: ptrace(request 16, pid {pid})")), "--log-denials: {}", r.err);
    // Control: without the boundary the same process is visible.
    let r = output(cmd(&fx, &["-s", "danger-full-access"], &[PY, "-c", script, &pid]).output().unwrap());
    assert!(r.out.contains("signal-ok") && r.out.contains("environ-secret"), "{}{}", r.out, r.err);
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[test]
fn terminal_injection_io_uring_and_new_user_namespaces_are_refused() {
    if !sandbox_works() || !python() {
        return;
    }
    let fx = fx();
    let script = r#"
import ctypes, fcntl, termios, os
libc = ctypes.CDLL(None, use_errno=True)
try: fcntl.ioctl(0, termios.TIOCSTI, b"x"); print("tiocsti ok")
except OSError as e: print("tiocsti errno", e.errno)
p = (ctypes.c_char * 120)()
r = libc.syscall(425, 4, p); print("io_uring", r, ctypes.get_errno())
r = libc.unshare(0x10000000); print("unshare", r, ctypes.get_errno())
"#;
    let r = output(cmd(&fx, &[], &[PY, "-c", script]).stdin(Stdio::null()).output().unwrap());
    assert!(r.out.contains("tiocsti errno 1"), "EPERM (ENOTTY without the filter): {}{}", r.out, r.err);
    assert!(r.out.contains("io_uring -1 1"), "{}", r.out);
    assert!(r.out.contains("unshare -1 1"), "{}", r.out);
    let r = sh(&fx, &[], "unshare -Ur true; echo rc=$?");
    assert!(failed(&r.out, "rc"), "{}{}", r.out, r.err);
    // Control: the same calls without the boundary.
    let r = output(cmd(&fx, &["-s", "danger-full-access"], &[PY, "-c", script]).stdin(Stdio::null()).output().unwrap());
    assert!(r.out.contains("tiocsti errno 25") && r.out.contains("unshare 0 0"), "{}{}", r.out, r.err);
}

#[test]
fn tmp_is_private() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let host = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    std::fs::write(host.path(), "host-tmp").unwrap();
    let mark = format!("/tmp/codex-box-private-{}", std::process::id());
    let r = sh(&fx, &["--full-auto"], &format!("cat {}; echo cat=$?; echo in > {mark} && echo wrote", host.path().display()));
    assert!(failed(&r.out, "cat") && r.out.contains("wrote"), "{}{}", r.out, r.err);
    assert!(!Path::new(&mark).exists(), "a file written in the sandbox's /tmp is not on the host");
    let r = sh(&fx, &["-s", "danger-full-access"], &format!("cat {}", host.path().display()));
    assert_eq!(r.out, "host-tmp");
}

#[test]
fn read_only_refuses_every_write_and_full_access_allows_them() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    std::fs::write(fx.work.join("f"), "data\n").unwrap();
    let o = fx.outside.display();
    let script = format!("cat f; echo x > f; echo f=$?; echo x > new; echo new=$?; echo x > /tmp/t; echo tmp=$?; \
        echo x > ~/h; echo home=$?; echo x > {o}/o; echo out=$?; mkdir d; echo dir=$?");
    let r = sh(&fx, &[], &script);
    assert!(r.out.starts_with("data"), "{}", r.err);
    for k in ["f", "new", "tmp", "home", "out", "dir"] {
        assert!(failed(&r.out, k), "{k}: {}", r.out);
    }
    assert_eq!(std::fs::read_to_string(fx.work.join("f")).unwrap(), "data\n");
    let r = sh(&fx, &["-s", "danger-full-access"], &script);
    for k in ["f=0", "new=0", "home=0", "out=0", "dir=0"] {
        assert!(r.out.contains(k), "{k}: {}{}", r.out, r.err);
    }
    assert!(fx.outside.join("o").exists());
}

#[test]
fn exit_codes_signals_and_stdin_pass_through() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    assert_eq!(sh(&fx, &[], "exit 7").code, 7);
    assert_eq!(sh(&fx, &[], "kill -KILL $$").code, 137);
    let mut c = cmd(&fx, &[], &["cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(b"through stdin").unwrap();
    assert_eq!(output(c.wait_with_output().unwrap()).out, "through stdin");
    assert_eq!(output(cmd(&fx, &[], &["no-such-command-xyz"]).output().unwrap()).code, 127);
    let r = sh(&fx, &[], "yes | head -n1");
    assert_eq!((r.out.as_str(), r.err.as_str()), ("y\n", ""), "SIGPIPE has its default action");

    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130), (libc::SIGHUP, 129)] {
        let mut child = cmd(&fx, &[], &["sleep", "30"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(code), "signal {sig} forwarded");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn the_whole_tree_dies_with_codex_box() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let marker = format!("31.{}", std::process::id());
    let mut child = cmd(&fx, &[], &["sh", "-c", &format!("sleep {marker} & sleep {marker}; wait")]).spawn().unwrap();
    let alive = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
    };
    let t = Instant::now();
    while !alive() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(alive(), "control: the sleeps run");
    child.kill().unwrap();
    child.wait().unwrap();
    let t = Instant::now();
    while alive() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(), "the sandboxed tree outlived codex-box");
}

#[test]
fn missing_kernel_features_stop_the_run_unless_degraded_is_allowed() {
    let fx = fx();
    for (feature, word) in [("landlock", "Landlock"), ("seccomp", "seccomp"), ("userns", "user namespaces")] {
        let r = output(cmd(&fx, &[], &["sh", "-c", "echo ran"]).env("CODEX_BOX_SANDBOX_PRETEND_MISSING", feature).output().unwrap());
        assert_ne!(r.code, 0);
        assert!(!r.out.contains("ran"), "never a silent run without the boundary");
        assert!(r.err.contains(word) && r.err.contains("--allow-degraded"), "{}", r.err);
        let r = output(cmd(&fx, &["--allow-degraded"], &["sh", "-c", "echo ran"]).env("CODEX_BOX_SANDBOX_PRETEND_MISSING", feature).output().unwrap());
        assert!(r.out.contains("ran"), "{}", r.err);
        assert!(r.err.contains("NOT enforced") && r.err.contains(word), "{}", r.err);
    }
}

#[test]
fn bad_config_and_flags_are_explained() {
    let fx = fx();
    let cfg = fx.home.join("bad.toml");
    std::fs::write(&cfg, "sandbox_mode = \"yolo\"\n").unwrap();
    let r = sh(&fx, &["--config", cfg.to_str().unwrap()], "true");
    assert_eq!(r.code, 1);
    assert!(r.err.contains("unknown sandbox mode `yolo`") && r.err.contains("bad.toml"), "{}", r.err);
    let r = sh(&fx, &["-P", "nope"], "true");
    assert!(r.err.contains("pass --config FILE"), "{}", r.err);
    let r = sh(&fx, &["-w", "/does/not/exist"], "true");
    assert!(r.err.contains("/does/not/exist") && r.err.contains("create it"), "{}", r.err);
    let r = sh(&fx, &["--config", "/does/not/exist.toml"], "true");
    assert!(r.err.contains("cannot read config file /does/not/exist.toml"), "{}", r.err);
}

#[test]
fn service_sockets_and_configured_paths_are_hidden() {
    if !sandbox_works() || !python() {
        return;
    }
    let fx = fx();
    let sock = fx.outside.join("svc.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let p = sock.to_str().unwrap();
    // Control (and the documented gap): a socket file the user can reach by path is reachable.
    assert_eq!(connect(&fx, &[], "unix", p).out.trim(), "connected");
    let cfg = fx.home.join("cfg.toml");
    std::fs::write(&cfg, format!("[permissions.p]\ndeny_read = [\"{p}\"]\n")).unwrap();
    let r = connect(&fx, &["--config", cfg.to_str().unwrap(), "-P", "p"], "unix", p);
    assert_eq!(r.out.trim(), "refused errno 111", "{}{}", r.out, r.err);
    if Path::new("/var/run/docker.sock").exists() {
        let r = sh(&fx, &[], "test -S /var/run/docker.sock && echo socket || echo hidden");
        assert_eq!(r.out.trim(), "hidden", "the Docker socket is a way out of any sandbox");
    }
}
