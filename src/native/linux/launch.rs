//! What the supervisor (`spawn`) and the children (`child`) share, so that each imports it from here
//! and neither imports the other: the [`Launch`] the supervisor prepares before clone, the children's
//! ends of its pipes ([`Ends`]), the signals forwarded to the command ([`FORWARDED`]), and the record
//! a child writes when setup fails — a [`Stage`], a detail (which mount, which rule, which step) and
//! the errno ([`report`] writes it, [`ChildFailure::decode`] reads it) — and the [`SetupStep`] such a
//! record names in an error message.
//!
//! Only data and the record's encoding: no policy, and nothing here runs before clone except
//! building values.

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};

use super::egress::ProxyStep;
use super::mounts;

/// Everything the children need, prepared by the supervisor.
pub struct Launch {
    pub exe: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: CString,
    /// `Some((clone flags, uid_map, gid_map))` to create namespaces.
    pub namespaces: Option<(libc::c_int, String, String)>,
    pub mounts: Vec<mounts::Prepared>,
    /// The ruleset and its rules, added in the command's process after the mounts.
    pub landlock: Option<(OwnedFd, Vec<(CString, u64)>)>,
    /// Drop capabilities and set no_new_privs (not for danger-full-access).
    pub harden: bool,
    pub seccomp: Option<Vec<libc::sock_filter>>,
    pub notify: bool,
    /// Network by name: init opens the proxy's listener in the new network namespace
    /// (see `egress`) and sends it to the supervisor.
    pub proxy: bool,
    pub cap_last: u32,
}

/// The children's ends of the supervisor's pipes: setup status, seccomp listener socket, exit
/// code, proxy listener socket.
#[derive(Clone, Copy)]
pub struct Ends {
    pub pipe: RawFd,
    pub sock: RawFd,
    pub done: RawFd,
    pub proxy: RawFd,
}

/// The signals the supervisor forwards to init and init forwards to the command.
pub const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Setup stages reported by the children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    IdMap = 1,
    Mount = 2,
    Chdir = 3,
    Fork = 4,
    Caps = 5,
    NoNewPrivs = 6,
    Landlock = 7,
    Seccomp = 8,
    SendListener = 9,
    Exec = 10,
    LandlockRule = 11,
    Proxy = 12,
}

impl Stage {
    fn from_u32(v: u32) -> Option<Stage> {
        use Stage::*;
        [IdMap, Mount, Chdir, Fork, Caps, NoNewPrivs, Landlock, Seccomp, SendListener, Exec, LandlockRule, Proxy]
            .into_iter()
            .find(|s| *s as u32 == v)
    }
}

/// The size of a failure record on the status pipe: stage, detail, errno.
pub const RECORD: usize = 12;

/// A setup failure in a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildFailure {
    pub stage: Stage,
    pub detail: u32,
    pub errno: i32,
}

impl ChildFailure {
    /// Reads the record [`report`] wrote (an unknown stage is taken as [`Stage::Exec`]).
    pub fn decode(rec: &[u8; RECORD]) -> ChildFailure {
        let word = |i: usize| [rec[i], rec[i + 1], rec[i + 2], rec[i + 3]];
        ChildFailure {
            stage: Stage::from_u32(u32::from_ne_bytes(word(0))).unwrap_or(Stage::Exec),
            detail: u32::from_ne_bytes(word(4)),
            errno: i32::from_ne_bytes(word(8)),
        }
    }
}

/// In a child: writes the failure record to the status pipe and leaves (exit code 125) without
/// running destructors. Async-signal-safe.
pub fn report(pipe: RawFd, stage: Stage, detail: u32, err: i32) -> ! {
    let mut rec = [0u8; RECORD];
    rec[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
    rec[4..8].copy_from_slice(&detail.to_ne_bytes());
    rec[8..].copy_from_slice(&err.to_ne_bytes());
    // SAFETY: writing a stack buffer to our pipe, then leaving without running destructors.
    unsafe {
        libc::write(pipe, rec.as_ptr().cast(), rec.len());
        libc::_exit(125)
    }
}

/// The setup step a child could not take, with its object, as error messages name it ("cannot
/// {step}").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    IdMap,
    /// The mount's description, `None` when the detail names no mount.
    Mount(Option<String>),
    /// The working directory.
    Chdir(String),
    Fork,
    Caps,
    NoNewPrivs,
    Landlock,
    /// The path of the rule, `None` when the detail names no rule.
    LandlockRule(Option<String>),
    Seccomp,
    SendListener,
    /// The executable.
    Exec(String),
    Proxy(ProxyStep),
}

impl SetupStep {
    /// The step `f` reports, its detail resolved against the launch it failed in.
    pub fn of(f: &ChildFailure, l: &Launch) -> SetupStep {
        let i = f.detail as usize;
        match f.stage {
            Stage::IdMap => SetupStep::IdMap,
            Stage::Mount => SetupStep::Mount(l.mounts.get(i).map(|m| m.describe())),
            Stage::Chdir => SetupStep::Chdir(l.cwd.to_string_lossy().into_owned()),
            Stage::Fork => SetupStep::Fork,
            Stage::Caps => SetupStep::Caps,
            Stage::NoNewPrivs => SetupStep::NoNewPrivs,
            Stage::Landlock => SetupStep::Landlock,
            Stage::LandlockRule => SetupStep::LandlockRule(
                l.landlock.as_ref().and_then(|(_, r)| r.get(i)).map(|(p, _)| p.to_string_lossy().into_owned()),
            ),
            Stage::Seccomp => SetupStep::Seccomp,
            Stage::SendListener => SetupStep::SendListener,
            Stage::Exec => SetupStep::Exec(l.exe.to_string_lossy().into_owned()),
            Stage::Proxy => SetupStep::Proxy(ProxyStep::from_u32(f.detail)),
        }
    }
}

impl std::fmt::Display for SetupStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupStep::IdMap => f.write_str("write the uid/gid map of the user namespace"),
            SetupStep::Mount(Some(what)) => f.write_str(what),
            SetupStep::Mount(None) => f.write_str("mount"),
            SetupStep::Chdir(dir) => write!(f, "enter the working directory {dir}"),
            SetupStep::Fork => f.write_str("start the command inside the namespaces"),
            SetupStep::Caps => f.write_str("drop capabilities"),
            SetupStep::NoNewPrivs => f.write_str("set no_new_privs"),
            SetupStep::Landlock => f.write_str("enforce the Landlock ruleset"),
            SetupStep::LandlockRule(Some(path)) => write!(f, "add the Landlock rule for {path}"),
            SetupStep::LandlockRule(None) => f.write_str("add a Landlock rule"),
            SetupStep::Seccomp => f.write_str("install the seccomp filter"),
            SetupStep::SendListener => f.write_str("hand the seccomp listener to the supervisor"),
            SetupStep::Exec(exe) => write!(f, "execute {exe}"),
            SetupStep::Proxy(step) => step.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch {
        Launch {
            exe: CString::new("/usr/bin/true").unwrap(),
            argv: Vec::new(),
            envp: Vec::new(),
            cwd: CString::new("/work").unwrap(),
            namespaces: None,
            mounts: Vec::new(),
            landlock: None,
            harden: true,
            seccomp: None,
            notify: false,
            proxy: false,
            cap_last: 63,
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let mut rec = [0u8; RECORD];
        rec[..4].copy_from_slice(&(Stage::LandlockRule as u32).to_ne_bytes());
        rec[4..8].copy_from_slice(&7u32.to_ne_bytes());
        rec[8..].copy_from_slice(&libc::EACCES.to_ne_bytes());
        let f = ChildFailure::decode(&rec);
        assert_eq!(f, ChildFailure { stage: Stage::LandlockRule, detail: 7, errno: libc::EACCES });
        rec[..4].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(ChildFailure::decode(&rec).stage, Stage::Exec, "an unknown stage");
    }

    #[test]
    fn each_step_reads_as_before() {
        let l = launch();
        let step = |stage, detail| SetupStep::of(&ChildFailure { stage, detail, errno: 0 }, &l).to_string();
        assert_eq!(step(Stage::Exec, 0), "execute /usr/bin/true");
        assert_eq!(step(Stage::Chdir, 0), "enter the working directory /work");
        assert_eq!(step(Stage::Mount, 3), "mount");
        assert_eq!(step(Stage::LandlockRule, 0), "add a Landlock rule");
        assert_eq!(step(Stage::Proxy, 2), "bind the proxy's socket to 127.0.0.1:3128 in the sandbox");
        assert_eq!(step(Stage::Proxy, 99), "bring up loopback in the sandbox's network namespace");
        assert_eq!(step(Stage::IdMap, 0), "write the uid/gid map of the user namespace");
    }
}
