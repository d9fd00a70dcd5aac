//! Processes: signals, ptrace, /proc, terminal injection, io_uring, user namespaces, exit codes, tree death, environment.

use crate::*;
use std::io::Write;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

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
    // Generous: the kernel tears the PID namespace down asynchronously, slowly on a loaded machine.
    let t = Instant::now();
    while alive() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(), "the sandboxed tree outlived codex-box");
}

#[test]
fn secret_environment_variables_are_scrubbed() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let script = "echo key=$MY_API_KEY tok=$GH_TOKEN plain=$PLAIN_VAR";
    let run = |flags: &[&str]| {
        output(
            cmd(&fx, flags, &["sh", "-c", script])
                .env("MY_API_KEY", "sk-secret")
                .env("GH_TOKEN", "ghp")
                .env("PLAIN_VAR", "hello")
                .output()
                .unwrap(),
        )
    };
    let r = run(&[]);
    assert_eq!(r.out.trim(), "key= tok= plain=hello");
    let r = run(&["--keep-env", "MY_API_KEY"]);
    assert_eq!(r.out.trim(), "key=sk-secret tok= plain=hello");
}

#[test]
fn the_terminal_is_inherited() {
    if !sandbox_works() || !require(Path::new("/usr/bin/script").exists(), "no script(1) to make a pty") {
        return;
    }
    let fx = fx();
    let inner =
        format!("{BIN} sandbox -- sh -c 'test -t 0 && test -t 1 && tty && stty size >/dev/null && echo tty-ok'");
    let r = output(
        Command::new("/usr/bin/script")
            .args(["-qec", &inner, "/dev/null"])
            .current_dir(&fx.work)
            .env("HOME", &fx.home)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    assert!(r.out.contains("/dev/pts/") && r.out.contains("tty-ok"), "{}{}", r.out, r.err);
}
