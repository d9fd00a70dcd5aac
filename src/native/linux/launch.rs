//! What the supervisor (`spawn`) and the children (`child`) share, so that each imports it from here
//! and neither imports the other: the [`Launch`] the supervisor prepares before clone, the children's
//! ends of its pipes ([`Ends`]), the signals forwarded to the command ([`FORWARDED`]), and the record
//! a child writes when setup fails — a [`Stage`], a detail (which mount, which rule, which step) and
//! the errno ([`report`] writes it, [`ChildFailure::decode`] reads it).
//!
//! Only data and the record's encoding: no policy, and nothing here runs before clone except
//! building values.

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
