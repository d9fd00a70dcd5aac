//! The mount namespace: a private /tmp (roots below /tmp are bound back in), read-only binds over
//! protected paths inside writable roots (.git, .codex, .agents, configured ones), empty read-only
//! tmpfs or /dev/null over hidden paths (credential stores), and a fresh /proc for the PID namespace.
//!
//! `plan` is pure (it is given what exists); `apply` runs in the sandbox's init process, before
//! Landlock and seccomp, with pre-built C strings only. It does not make anything read-only that
//! Landlock already refuses, and does not hide unix sockets other than those listed as hidden.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::sys::errno;
use crate::policy::FsPolicy;

/// What a path is on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// One mount-namespace step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Open (O_PATH) a host path below /tmp, slot `slot`, before the private /tmp hides it.
    Hold {
        slot: usize,
        path: PathBuf,
    },
    /// The private, empty /tmp.
    PrivateTmp,
    /// Create a directory (or an empty file) in the private /tmp as a mount point.
    MkDir(PathBuf),
    MkFile(PathBuf),
    /// Bind the host object held in slot `src` at its own path.
    BindHost {
        src: usize,
        target: PathBuf,
        readonly: bool,
    },
    /// Make a protected path read-only.
    ReadOnly(PathBuf),
    /// Hide a directory under an empty, read-only, mode-000 tmpfs.
    HideDir(PathBuf),
    /// Hide a file under a read-only /dev/null.
    HideFile(PathBuf),
    /// A private, empty /dev/shm.
    PrivateShm,
    /// Mount a /proc that shows only the sandbox's PID namespace.
    Proc,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<Op>,
}

/// At most this many roots below /tmp are bound back into the private /tmp.
pub const MAX_HELD: usize = 32;

fn under(p: &Path, root: &Path) -> bool {
    p.starts_with(root)
}

/// Protected paths that need a placeholder on the host: missing, inside a writable root, parent present.
pub fn placeholders(fs: &FsPolicy, kind: &dyn Fn(&Path) -> Option<Kind>) -> Vec<PathBuf> {
    fs.protected
        .iter()
        .filter(|p| fs.write_roots.iter().any(|r| under(p, r) && *p != r))
        .filter(|p| kind(p).is_none() && p.symlink_metadata().is_err())
        .filter(|p| p.parent().is_some_and(|d| kind(d) == Some(Kind::Dir)))
        .cloned()
        .collect()
}

/// Translates the filesystem policy into mount steps (pure; `kind` says what exists).
pub fn plan(fs: &FsPolicy, cwd: &Path, pid_ns: bool, kind: &dyn Fn(&Path) -> Option<Kind>) -> Plan {
    let tmp = Path::new("/tmp");
    // No MS_PRIVATE pass over the tree: a mount namespace owned by a new user namespace gets
    // shared mounts as slaves, so nothing propagates back to the host.
    let mut plan = Plan { ops: Vec::new() };
    let mut visible_in_tmp: Vec<PathBuf> = Vec::new();
    if !fs.shared_tmp {
        let mut binds = Vec::new();
        let mut wanted: Vec<(PathBuf, bool)> =
            fs.write_roots.iter().filter(|r| under(r, tmp) && *r != tmp).map(|r| (r.clone(), false)).collect();
        if under(cwd, tmp) && cwd != tmp && !fs.write_roots.iter().any(|r| under(cwd, r)) {
            wanted.push((cwd.to_path_buf(), true));
        }
        wanted.sort();
        let mut made: Vec<PathBuf> = Vec::new();
        for (path, readonly) in wanted {
            if visible_in_tmp.iter().any(|v| under(&path, v)) || visible_in_tmp.len() == MAX_HELD {
                continue;
            }
            let Some(k) = kind(&path) else { continue };
            for anc in path.ancestors().skip(1).collect::<Vec<_>>().into_iter().rev() {
                if under(anc, tmp) && anc != tmp && !made.iter().any(|m| m == anc) {
                    made.push(anc.to_path_buf());
                    binds.push(Op::MkDir(anc.to_path_buf()));
                }
            }
            let slot = visible_in_tmp.len();
            plan.ops.push(Op::Hold { slot, path: path.clone() });
            binds.push(if k == Kind::Dir { Op::MkDir(path.clone()) } else { Op::MkFile(path.clone()) });
            binds.push(Op::BindHost { src: slot, target: path.clone(), readonly });
            visible_in_tmp.push(path);
        }
        plan.ops.push(Op::PrivateTmp);
        plan.ops.extend(binds);
    }
    let visible = |p: &Path| fs.shared_tmp || !under(p, tmp) || visible_in_tmp.iter().any(|v| under(p, v));
    for p in &fs.protected {
        if fs.write_roots.iter().any(|r| under(p, r)) && kind(p).is_some() && visible(p) {
            plan.ops.push(Op::ReadOnly(p.clone()));
        }
    }
    // Parents first; anything below a hidden directory is hidden with it (and has no mount point).
    let mut deny: Vec<&PathBuf> = fs.deny_read.iter().filter(|p| visible(p)).collect();
    deny.sort();
    deny.dedup();
    let mut hidden_dirs: Vec<&PathBuf> = Vec::new();
    for p in deny {
        if hidden_dirs.iter().any(|d| under(p, d)) {
            continue;
        }
        match kind(p) {
            Some(Kind::Dir) => {
                hidden_dirs.push(p);
                plan.ops.push(Op::HideDir(p.clone()));
            }
            Some(Kind::File) => plan.ops.push(Op::HideFile(p.clone())),
            None => {}
        }
    }
    if pid_ns {
        plan.ops.push(Op::PrivateShm);
        plan.ops.push(Op::Proc);
    }
    plan
}

/// What exists on the host, following symlinks.
pub fn host_kind(p: &Path) -> Option<Kind> {
    std::fs::metadata(p).ok().map(|m| if m.is_dir() { Kind::Dir } else { Kind::File })
}

/// A step ready for the child: C strings built in the supervisor, so the child does not allocate.
#[derive(Debug)]
pub struct Prepared {
    op: Op,
    target: CString,
}

pub fn cstring(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| CString::from(c"/nonexistent\u{1}"))
}

/// Builds the C strings.
pub fn prepare(plan: &Plan) -> Vec<Prepared> {
    plan.ops
        .iter()
        .map(|op| {
            let target = match op {
                Op::PrivateTmp => c"/tmp".into(),
                Op::Proc => c"/proc".into(),
                Op::PrivateShm => c"/dev/shm".into(),
                Op::Hold { path, .. } | Op::BindHost { target: path, .. } => cstring(path),
                Op::MkDir(p) | Op::MkFile(p) | Op::ReadOnly(p) | Op::HideDir(p) | Op::HideFile(p) => cstring(p),
            };
            Prepared { op: op.clone(), target }
        })
        .collect()
}

/// `/proc/self/fd/N` in a stack buffer (no allocation).
fn fd_path(fd: i32, buf: &mut [u8; 32]) -> &CStr {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.max(0) as u32, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[prefix.len() + i] = digits[len - 1 - i];
    }
    buf[prefix.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/nonexistent")
}

impl Prepared {
    /// Human name of the step, for errors.
    pub fn describe(&self) -> String {
        match &self.op {
            Op::PrivateTmp => "mount the private /tmp".into(),
            Op::Hold { path, .. } => format!("open {} before hiding /tmp", path.display()),
            Op::MkDir(p) | Op::MkFile(p) => format!("create mount point {} in the private /tmp", p.display()),
            Op::BindHost { target, .. } => format!("bind {} into the private /tmp", target.display()),
            Op::ReadOnly(p) => format!("make {} read-only", p.display()),
            Op::HideDir(p) | Op::HideFile(p) => format!("hide {}", p.display()),
            Op::Proc => "mount /proc for the PID namespace".into(),
            Op::PrivateShm => "mount the private /dev/shm".into(),
        }
    }
}

fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    let ptr = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is NULL or a valid NUL-terminated string living across the call.
    let rc = unsafe { libc::mount(ptr(src), target.as_ptr(), ptr(fstype), flags, ptr(data).cast()) };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Remounts a bind mount read-only, keeping the flags the kernel locks (nosuid, nodev, ...).
fn remount_ro(target: &CStr) -> Result<(), i32> {
    // SAFETY: statvfs is plain old data; all-zero is valid and the call fills it.
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `target` is a valid C string and `sv` a valid out-pointer.
    if unsafe { libc::statvfs(target.as_ptr(), &mut sv) } < 0 {
        return Err(errno());
    }
    let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    for (st, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        // ST_RELATIME (<sys/statvfs.h>, 4096): the libc crate only defines it for glibc, not musl.
        (0x1000, libc::MS_RELATIME),
    ] {
        if sv.f_flag & st != 0 {
            flags |= ms;
        }
    }
    mount(None, target, None, flags, None)
}

/// Runs the steps. Returns the index of the failing step and its errno. Async-signal-safe.
pub fn apply(steps: &[Prepared]) -> Result<(), (usize, i32)> {
    let mut held = [-1i32; MAX_HELD];
    for (i, s) in steps.iter().enumerate() {
        let t = s.target.as_c_str();
        let r = match &s.op {
            Op::Hold { slot, .. } => {
                // SAFETY: `t` is a valid C string; the fd is closed when the process execs or exits.
                let fd = unsafe { libc::open(t.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
                held[*slot] = fd;
                if fd < 0 {
                    Err(errno())
                } else {
                    Ok(())
                }
            }
            Op::PrivateTmp => {
                mount(Some(c"tmpfs"), t, Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some(c"mode=1777"))
            }
            // SAFETY: `t` is a valid C string.
            Op::MkDir(_) => match unsafe { libc::mkdir(t.as_ptr(), 0o755) } {
                0 => Ok(()),
                _ if errno() == libc::EEXIST => Ok(()),
                _ => Err(errno()),
            },
            Op::MkFile(_) => {
                // SAFETY: `t` is a valid C string; the fd is closed right away.
                let fd = unsafe { libc::open(t.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644) };
                if fd < 0 {
                    Err(errno())
                } else {
                    // SAFETY: `fd` was just opened by us.
                    unsafe { libc::close(fd) };
                    Ok(())
                }
            }
            Op::BindHost { src, readonly, .. } => {
                let mut buf = [0u8; 32];
                let src = fd_path(held[*src], &mut buf);
                mount(Some(src), t, None, libc::MS_BIND | libc::MS_REC, None).and_then(|_| {
                    if *readonly {
                        remount_ro(t)
                    } else {
                        Ok(())
                    }
                })
            }
            Op::ReadOnly(_) => mount(Some(t), t, None, libc::MS_BIND | libc::MS_REC, None).and_then(|_| remount_ro(t)),
            Op::HideDir(_) => mount(
                Some(c"tmpfs"),
                t,
                Some(c"tmpfs"),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some(c"mode=000,size=4k"),
            ),
            Op::HideFile(_) => mount(Some(c"/dev/null"), t, None, libc::MS_BIND, None).and_then(|_| remount_ro(t)),
            Op::PrivateShm => {
                mount(Some(c"tmpfs"), t, Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some(c"mode=1777"))
            }
            Op::Proc => {
                mount(Some(c"proc"), t, Some(c"proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None)
            }
        };
        // A path to hide that the sandbox cannot even reach (a directory on the way it may not
        // search, e.g. another user's /run/user/UID holding a rootless engine's socket) is hidden
        // already: the command meets the same EACCES. Only then is the failed mount not an error.
        let r = match (&s.op, r) {
            (Op::HideDir(_) | Op::HideFile(_), Err(libc::EACCES)) if unreachable(t) => Ok(()),
            (_, r) => r,
        };
        r.map_err(|e| (i, e))?;
    }
    Ok(())
}

/// Whether looking `t` up fails for lack of search permission on a directory on the way.
/// Async-signal-safe.
fn unreachable(t: &std::ffi::CStr) -> bool {
    // SAFETY: `t` is a valid C string; `st` is written by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::lstat(t.as_ptr(), &mut st) };
    rc != 0 && errno() == libc::EACCES
}

#[cfg(test)]
#[path = "mounts_tests.rs"]
mod tests;
