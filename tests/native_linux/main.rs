//! The native Linux sandbox, attacked for real. Every test runs the built `codex-box sandbox` as a
//! child process and pairs each escape attempt with a control that succeeds, and checks an errno or an
//! effect only the sandbox produces. Skips say why and fail under CI=true.
#![cfg(target_os = "linux")]

mod codex;
mod config;
mod domains;
mod fs;
mod net;
mod process;
#[path = "../support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_codex-box");
pub const PY: &str = "/usr/bin/python3";

/// Returns false (and says why) when a prerequisite is missing; panics instead under CI.
pub use support::require;

pub fn sandbox_works() -> bool {
    let out = Command::new(BIN).args(["sandbox", "--", "true"]).output().unwrap();
    require(out.status.success(), &format!("the kernel refuses the sandbox: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The Landlock ABI the sandbox reports with -v (0 when none).
pub fn landlock_abi() -> u32 {
    let out = Command::new(BIN).args(["sandbox", "-v", "--", "true"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    err.split("Landlock ABI ").nth(1).and_then(|r| r.split(';').next()).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

pub fn python() -> bool {
    require(Path::new(PY).exists(), "no /usr/bin/python3")
}

/// A project directory, a directory outside it and a home, all outside /tmp (so Landlock, not the
/// private /tmp, is what refuses).
pub struct Fx {
    _dir: tempfile::TempDir,
    pub work: PathBuf,
    pub outside: PathBuf,
    pub home: PathBuf,
}

/// Where fixtures live: the target directory, unless it is below /tmp (a checkout in /tmp): the
/// sandbox's private /tmp hides the host's, so read-only fixtures there would be invisible and the
/// tests would pass or fail for the wrong reason. /var/tmp is never made private.
fn fixture_base() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let canonical = target.canonicalize().unwrap_or_else(|_| target.clone());
    if canonical.starts_with("/tmp") {
        PathBuf::from("/var/tmp")
    } else {
        target
    }
}

pub fn fx() -> Fx {
    let dir = tempfile::Builder::new().prefix("native-").tempdir_in(fixture_base()).unwrap();
    let root = dir.path().canonicalize().unwrap();
    let (work, outside, home) = (root.join("work"), root.join("outside"), root.join("home"));
    for d in [&work, &outside, &home] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(outside.join("target"), "original").unwrap();
    Fx { _dir: dir, work, outside, home }
}

/// Whether the script printed `key=N` with N non-zero (dash exits 2 for a failed redirection).
pub fn failed(out: &str, key: &str) -> bool {
    out.split_whitespace().any(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')).is_some_and(|n| n != "0"))
}

pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

pub fn output(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn cmd(fx: &Fx, flags: &[&str], argv: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("sandbox").args(flags).arg("--").args(argv).current_dir(&fx.work).env("HOME", &fx.home);
    c.env_remove("CODEX_BOX_SANDBOX_PRETEND_MISSING").env_remove("XDG_CONFIG_HOME");
    c
}

pub fn sh(fx: &Fx, flags: &[&str], script: &str) -> Run {
    output(cmd(fx, flags, &["sh", "-c", script]).output().unwrap())
}
