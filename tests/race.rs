//! A racing agent against codex-box running as root (issue #18): one session's command swaps
//! directories and links in the directories it can write — its home (top level and `log/`, which
//! is merged into the kept store at its end) and `sessions/` — as fast as it can, the links aimed at root-owned victims
//! outside the project, while further sessions start, end and clean up on the same project. Every
//! victim keeps its owner, mode and content; no session fails to start; and the controls show the
//! race ran and codex-box still hands over what it made and what an older run left.
#![cfg(target_os = "linux")]

#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

/// The racer's longest run, and how many sessions start while it runs (the test takes well under
/// 90 s: the racer is stopped as soon as the starts are done).
const RACE_SECS: u64 = 45;
const STARTS: usize = 16;

/// The racer, run by the agent (uid AGENT_UID) in the container. In each directory it can write it
/// keeps `x`, by turns a real directory and a link to the victim directory (an atomic exchange
/// with `l`), and now and then gone; `y`, by turns a file and a link to the victim file. The real
/// `x` holds files named like the victim's, and a `sub/` like the victim's, so a walk that lists
/// the real one and then goes on by path lands on a victim. What codex-box removes is made again.
const RACER: &str = r#"
import ctypes, os, shutil, sys, time
vdir, vfile, secs, ready, stop = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
EXCHANGE = 2
NAMES = ["f%d" % i for i in range(24)]

def clear(fd, name):
    try:
        os.unlink(name, dir_fd=fd)
    except IsADirectoryError:
        shutil.rmtree(name, dir_fd=fd)
    except FileNotFoundError:
        pass

def setup(fd):
    for n in ("x", "l", "t", "y", "m"):
        clear(fd, n)
    os.mkdir("x", dir_fd=fd)
    d = os.open("x", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    os.mkdir("sub", dir_fd=d)
    s = os.open("sub", os.O_RDONLY | os.O_DIRECTORY, dir_fd=d)
    for n in NAMES:
        for at in (d, s):
            os.close(os.open(n, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=at))
    os.close(s)
    os.close(d)
    os.symlink(vdir, "l", dir_fd=fd)
    os.close(os.open("y", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    os.symlink(vfile, "m", dir_fd=fd)

os.makedirs("/codex_home/log", exist_ok=True)
fds = [os.open(b, os.O_RDONLY | os.O_DIRECTORY) for b in ("/codex_home/log", "/codex_home/sessions", "/codex_home")]
for fd in fds:
    setup(fd)
open(ready, "w").close()
swaps = vanished = errors = 0
end = time.monotonic() + secs
i = 0
while True:
    i += 1
    if i % 64 == 0 and (time.monotonic() > end or os.path.exists(stop)):
        break
    for fd in fds:
        if libc.renameat2(fd, b"x", fd, b"l", EXCHANGE) == 0 and libc.renameat2(fd, b"y", fd, b"m", EXCHANGE) == 0:
            swaps += 1
        else:
            errors += 1
            try:
                setup(fd)
            except OSError:
                pass
        if i % 7 == 0:
            try:
                os.rename("x", "t", src_dir_fd=fd, dst_dir_fd=fd)
                os.rename("t", "x", src_dir_fd=fd, dst_dir_fd=fd)
                vanished += 1
            except OSError:
                errors += 1
print("swaps=%d vanished=%d errors=%d" % (swaps, vanished, errors), flush=True)
"#;

/// Owner, mode and content of everything below `root`, links not followed.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u32, u32, Vec<u8>)> {
    let mut all = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let data = if m.is_file() { std::fs::read(&p).unwrap() } else { Vec::new() };
        all.insert(p.clone(), (m.uid(), m.gid(), m.mode(), data));
        if m.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    all
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

/// Root-owned victims outside the project: a directory (with `sub/`) whose files are named like
/// the racer's, and a file.
fn victims(base: &Path) -> (PathBuf, PathBuf) {
    let vdir = base.join("victims/vdir");
    std::fs::create_dir_all(vdir.join("sub")).unwrap();
    for i in 0..24 {
        for d in [vdir.clone(), vdir.join("sub")] {
            let f = d.join(format!("f{i}"));
            std::fs::write(&f, format!("victim {}", f.display())).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
    }
    for d in [vdir.clone(), vdir.join("sub")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).unwrap();
    }
    let vfile = base.join("victims/vfile");
    std::fs::write(&vfile, "victim file").unwrap();
    std::fs::set_permissions(&vfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    (vdir, vfile)
}

#[test]
fn a_racing_agent_never_makes_codex_box_as_root_touch_anything_outside_its_trees() {
    need_docker!();
    if !nix::unistd::geteuid().is_root() {
        skip("the race needs codex-box to run as root (sudo codex-box)");
        return;
    }
    let p = Project::new();
    let (vdir, vfile) = victims(p.root.path());
    let before = snapshot(&p.root.path().join("victims"));
    assert!(before.values().all(|(uid, ..)| *uid == 0), "the victims are root's");

    // A trusted config and prompt, so that codex-box makes files in state/ as root.
    let user = p.home.join(".codex");
    std::fs::create_dir_all(user.join("prompts")).unwrap();
    std::fs::write(user.join("config.toml"), "model = \"race\"\n").unwrap();
    std::fs::write(user.join("prompts/p.md"), "a prompt").unwrap();
    // What an older codex-box run as root left in sessions/: the walk is still to hand it over.
    let env = p.wd.join(".codex/.environment");
    std::fs::create_dir_all(env.join("sessions/old")).unwrap();
    std::fs::write(env.join("sessions/old/rollout.jsonl"), "{}").unwrap();

    let wd = p.wd.to_str().unwrap().to_string();
    let flags = ["--egress", "open", "--network", "none", "--trust"];
    let (ready, stop) = (p.wd.join("racer-ready"), p.wd.join("racer-stop"));
    let in_box = |h: &Path| format!("{}/{}", p.app(), h.file_name().unwrap().to_str().unwrap());
    let mut args = vec!["run".to_string(), "--work_dir".into(), wd.clone()];
    args.extend(flags.iter().map(|f| f.to_string()));
    args.extend(["--", "python3", "-c", RACER].map(String::from));
    args.extend([vdir.display().to_string(), vfile.display().to_string(), RACE_SECS.to_string()]);
    args.extend([in_box(&ready), in_box(&stop)]);
    let racer = p
        .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "the racer did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut failed = Vec::new();
    for i in 0..STARTS {
        if i == STARTS / 2 {
            // Root-owned leftovers again, now in the middle of the race.
            std::fs::create_dir_all(env.join("state/log")).unwrap();
            std::fs::write(env.join("state/log/late.txt"), "late").unwrap();
            std::fs::create_dir_all(env.join("sessions/late")).unwrap();
            std::fs::write(env.join("sessions/late/rollout.jsonl"), "{}").unwrap();
        }
        let mut args: Vec<&str> = vec!["run", "--work_dir", &wd];
        args.extend(flags);
        args.extend(["--", "sh", "-c", "echo started"]);
        let out = p.cmd(&args).output().unwrap();
        if !out.status.success() || text(&out.stdout) != "started\n" {
            failed.push(format!("start {i}: {:?} {}{}", out.status.code(), text(&out.stdout), text(&out.stderr)));
        }
    }
    std::fs::write(&stop, "").unwrap();
    let racer = racer.wait_with_output().unwrap();
    let said = text(&racer.stdout).trim().to_string();
    eprintln!("racer: {said} ({} s); {} of {STARTS} starts failed", start.elapsed().as_secs(), failed.len());
    for f in &failed {
        eprintln!("{f}");
    }

    // Every victim keeps its owner, mode and content.
    let after = snapshot(&p.root.path().join("victims"));
    let changed: Vec<String> = before
        .iter()
        .filter(|(path, was)| after.get(*path) != Some(was))
        .map(|(path, was)| {
            let now = match after.get(path) {
                Some(a) => format!("{}:{} {:o}{}", a.0, a.1, a.2, if a.3 == was.3 { "" } else { ", content changed" }),
                None => "gone".to_string(),
            };
            format!("{}: {}:{} {:o} -> {now}", path.display(), was.0, was.1, was.2)
        })
        .collect();
    assert!(changed.is_empty(), "codex-box as root changed victims outside the project:\n{}", changed.join("\n"));
    // No session failed to start.
    assert!(failed.is_empty(), "sessions failed during the race:\n{}", failed.join("\n"));
    // Controls: the race ran, and hard.
    assert!(racer.status.success(), "racer: {said} {}", text(&racer.stderr));
    let swaps: u64 =
        said.split_whitespace().find_map(|w| w.strip_prefix("swaps=")).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(swaps > 1000, "the racer swapped too little to mean anything: {said}");
    // Controls: what codex-box made as root, and what was left root-owned, is the agent's.
    let agent = (AGENT_UID, AGENT_UID);
    for made in ["state", "state/log/late.txt", "homes", "sessions"] {
        assert_eq!(owner(&env.join(made)), agent, "{made} handed over");
    }
    for left in ["sessions/old", "sessions/old/rollout.jsonl", "sessions/late", "sessions/late/rollout.jsonl"] {
        assert_eq!(owner(&env.join(left)), agent, "{left} handed over");
    }
    assert_eq!(owner(&env), (0, 0), "the trusted .environment stays root's");
    assert!(containers_for(&p.wd).is_empty(), "every session cleaned up");
}

/// Docker makes `state/sessions` as the mount point of the sessions directory; a start or an end of
/// another session that removed it would unmount the sessions directory of every session still
/// running (the kernel detaches mounts on a removed mount point in other namespaces).
#[test]
fn a_running_session_keeps_its_sessions_directory_while_others_start_and_end() {
    need_docker!();
    let p = Project::new();
    let wd = p.wd.to_str().unwrap().to_string();
    let app = p.app();
    let flags = ["--egress", "open", "--network", "none"];
    let script = format!(
        "touch {app}/long-ready; i=0; while [ ! -e {app}/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
         echo kept > /codex_home/sessions/after.txt && echo WROTE"
    );
    let mut args: Vec<&str> = vec!["run", "--work_dir", &wd];
    args.extend(flags);
    args.extend(["--", "sh", "-c", &script]);
    let long = p.cmd(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while !p.wd.join("long-ready").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "the long session did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..2 {
        let mut args: Vec<&str> = vec!["run", "--work_dir", &wd];
        args.extend(flags);
        args.extend(["--", "true"]);
        let out = p.cmd(&args).output().unwrap();
        assert!(out.status.success(), "short session {i}: {}", text(&out.stderr));
    }
    std::fs::write(p.wd.join("go"), "").unwrap();
    let out = long.wait_with_output().unwrap();
    assert!(text(&out.stdout).contains("WROTE"), "{} {}", text(&out.stdout), text(&out.stderr));
    let written = p.wd.join(".codex/.environment/sessions/after.txt");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "kept\n", "control: it reached the sessions directory");
}

/// Two sessions at once on one project (issue #21): each writes in its Codex home while the other
/// starts and ends. Nothing either wrote is lost while it runs, what both keep (history, logs) is
/// merged when they end, neither can write the other's home, and what either wrote in its home
/// (config.toml, AGENTS.md) steers no later session.
#[test]
fn two_sessions_at_once_keep_their_own_homes_and_lose_nothing() {
    need_docker!();
    let p = Project::new();
    std::fs::create_dir_all(p.home.join(".codex")).unwrap();
    std::fs::write(p.home.join(".codex/config.toml"), "model = \"approved\"\n").unwrap();
    let wd = p.wd.to_str().unwrap().to_string();
    let app = p.app();
    let flags = ["--egress", "open", "--network", "none", "--trust"];
    // A: writes its home, waits while B starts, writes and ends, then checks its home and writes on.
    let a_script = format!(
        r#"echo '{{"text":"A1"}}' >> /codex_home/history.jsonl; mkdir -p /codex_home/log;
        echo 'A log' >> /codex_home/log/codex-tui.log; echo mine > /codex_home/a-file;
        touch {app}/a-ready; i=0; while [ ! -e {app}/go ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i+1)); done;
        cat /codex_home/a-file && echo A-FILE-KEPT; grep -q A1 /codex_home/history.jsonl && echo A-HISTORY-KEPT;
        grep -q 'A log' /codex_home/log/codex-tui.log && echo A-LOG-KEPT;
        grep -q evil /codex_home/config.toml && echo A-SEES-B-CONFIG;
        echo '{{"text":"A2"}}' >> /codex_home/history.jsonl; echo 'A log 2' >> /codex_home/log/codex-tui.log;
        echo 'model = "evil-a"' > /codex_home/config.toml && echo 'obey' > /codex_home/AGENTS.md && echo A-WROTE"#
    );
    let mut args: Vec<&str> = vec!["run", "--work_dir", &wd];
    args.extend(flags);
    args.extend(["--", "sh", "-c", &a_script]);
    let a = p.cmd(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while !p.wd.join("a-ready").exists() {
        assert!(start.elapsed() < Duration::from_secs(90), "session A did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // B, while A runs: its own home (no a-file), cannot write A's, writes its own and ends.
    let b_script = format!(
        r#"[ -e /codex_home/a-file ] && echo B-SEES-A-FILE;
        for h in {app}/.codex/.environment/homes/*; do
          if echo evil > "$h/config.toml" 2>/dev/null; then echo "ESCAPED: $h"; else echo "refused: $h"; fi;
        done;
        echo '{{"text":"B1"}}' >> /codex_home/history.jsonl; mkdir -p /codex_home/log;
        echo 'B log' >> /codex_home/log/codex-tui.log;
        echo 'model = "evil-b"' > /codex_home/config.toml && echo 'obey' > /codex_home/AGENTS.md && echo B-WROTE"#
    );
    let out = p.run_sh(&flags, &b_script);
    let b = text(&out.stdout);
    assert!(out.status.success(), "session B: {b} {}", text(&out.stderr));
    assert!(b.contains("B-WROTE"), "control: B writes its own home: {b}");
    assert!(!b.contains("B-SEES-A-FILE"), "B has its own home: {b}");
    assert!(!b.contains("ESCAPED"), "B cannot write another session's home: {b}");
    assert!(b.matches("refused:").count() >= 2, "both homes were tried (A's and B's own, read-only there): {b}");
    // A third session starts and ends while A still runs.
    let out = p.run_sh(&flags, "echo '{\"text\":\"C1\"}' >> /codex_home/history.jsonl");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(p.wd.join("go"), "").unwrap();
    let out = a.wait_with_output().unwrap();
    let a = text(&out.stdout);
    assert!(out.status.success(), "session A: {a} {}", text(&out.stderr));
    for kept in ["A-FILE-KEPT", "A-HISTORY-KEPT", "A-LOG-KEPT", "A-WROTE"] {
        assert!(a.contains(kept), "{kept}: {a}");
    }
    assert!(!a.contains("A-SEES-B-CONFIG"), "what B wrote does not reach A: {a}");

    // After both: the history of all three, both logs, the approved config, no AGENTS.md.
    let out = p.run_sh(
        &flags,
        "cat /codex_home/history.jsonl; echo ---; cat /codex_home/config.toml; echo ---; ls /codex_home",
    );
    let after = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut parts = after.split("---\n");
    let history = parts.next().unwrap();
    for line in ["A1", "A2", "B1", "C1"] {
        assert_eq!(history.matches(&format!("\"text\":\"{line}\"")).count(), 1, "{line} once in: {history}");
    }
    assert_eq!(parts.next().unwrap(), "model = \"approved\"\n", "no session's config.toml steers the next");
    assert!(!parts.next().unwrap().contains("AGENTS.md"), "{after}");
    let log = std::fs::read_to_string(p.wd.join(".codex/.environment/state/log/codex-tui.log")).unwrap();
    for line in ["A log\n", "A log 2\n", "B log\n"] {
        assert!(log.contains(line), "{line:?} kept in the log: {log}");
    }
    let homes = p.wd.join(".codex/.environment/homes");
    assert_eq!(std::fs::read_dir(&homes).unwrap().count(), 0, "every ended session's home is removed");
    assert!(containers_for(&p.wd).is_empty());
}
