//! Landlock: the filesystem allowlist, TCP denial with network off (ABI 4+) and scoping of signals and
//! abstract unix sockets to the sandbox (ABI 6+). Hand-built against the kernel UAPI.
//!
//! `plan` (pure) decides which rights each path gets for the running ABI, handling every filesystem
//! right that ABI knows; `prepare` creates the ruleset in the supervisor; `restrict_self` applies it in
//! the child before exec. It does not hide readable files below a readable root (that is the mount
//! namespace's job), nor mediate `connect()` on unix socket paths, nor anything for danger-full-access.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::sys::errno;
use crate::policy::FsPolicy;

pub const EXECUTE: u64 = 1 << 0;
pub const WRITE_FILE: u64 = 1 << 1;
pub const READ_FILE: u64 = 1 << 2;
pub const READ_DIR: u64 = 1 << 3;
pub const REFER: u64 = 1 << 13;
pub const TRUNCATE: u64 = 1 << 14;
pub const IOCTL_DEV: u64 = 1 << 15;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;
const CREATE_RULESET_VERSION: u32 = 1 << 0;
const RULE_PATH_BENEATH: u32 = 1;

/// The newest ABI this code knows; newer kernels are used at this level.
pub const KNOWN_ABI: u32 = 7;

/// Rights allowed in a rule on a non-directory.
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
const READ_RIGHTS: u64 = EXECUTE | READ_FILE | READ_DIR;

/// Every filesystem right the given ABI can restrict.
pub fn fs_rights(abi: u32) -> u64 {
    let mut r = (1 << 13) - 1; // ABI 1: EXECUTE ..= MAKE_SYM
    if abi >= 2 {
        r |= REFER;
    }
    if abi >= 3 {
        r |= TRUNCATE;
    }
    if abi >= 5 {
        r |= IOCTL_DEV;
    }
    r
}

/// Character devices that stay writable (and usable as terminals) in every mode. Other devices
/// (camera, sound, input, GPU, kvm, fuse, tun, disks) are not even readable.
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx", "/dev/pts"];
/// Readable devices.
const READ_DEVICES: &[&str] = &["/dev/random", "/dev/urandom"];

/// What to hand the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub abi: u32,
    pub handled_fs: u64,
    pub handled_net: u64,
    pub scoped: u64,
    pub rules: Vec<(PathBuf, u64)>,
}

/// Translates the filesystem policy for a kernel ABI (pure). A read root `/` becomes read rights on
/// each entry of `top_level` except `/dev` (plus listing everywhere), so that devices are opt-in.
/// `private_shm`: /dev/shm is the sandbox's own tmpfs and is writable.
pub fn plan(fs: &FsPolicy, network_off: bool, abi: u32, top_level: &[PathBuf], private_shm: bool) -> Plan {
    let abi = abi.min(KNOWN_ABI);
    let all = fs_rights(abi);
    let read = READ_RIGHTS & all;
    let mut rules: Vec<(PathBuf, u64)> = Vec::new();
    for root in &fs.read_roots {
        if root.as_os_str() == "/" {
            rules.push((root.clone(), READ_DIR));
            rules.extend(top_level.iter().filter(|p| p.as_os_str() != "/dev").map(|p| (p.clone(), read)));
        } else {
            rules.push((root.clone(), read));
        }
    }
    rules.extend(fs.write_roots.iter().map(|p| (p.clone(), all)));
    let dev = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV | READ_DIR;
    rules.extend(DEVICES.iter().map(|d| (PathBuf::from(d), dev & all)));
    rules.extend(READ_DEVICES.iter().map(|d| (PathBuf::from(d), READ_FILE)));
    if private_shm {
        rules.push((PathBuf::from("/dev/shm"), all));
    }
    Plan {
        abi,
        handled_fs: all,
        handled_net: if network_off && abi >= 4 { NET_BIND_TCP | NET_CONNECT_TCP } else { 0 },
        scoped: if abi >= 6 { SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL } else { 0 },
        rules,
    }
}

/// What the ABI leaves unenforced, for the report.
pub fn gaps(abi: u32) -> Vec<&'static str> {
    let mut g = Vec::new();
    if abi < 2 {
        g.push("Landlock ABI < 2: renames and links across directories are refused outright");
    }
    if abi < 3 {
        g.push("Landlock ABI < 3: truncation of readable files is not restricted");
    }
    if abi < 4 {
        g.push("Landlock ABI < 4: no TCP restriction by Landlock (seccomp and the network namespace still apply)");
    }
    if abi < 5 {
        g.push("Landlock ABI < 5: device ioctls are not restricted");
    }
    if abi < 6 {
        g.push("Landlock ABI < 6: no signal/abstract-socket scoping (the PID and network namespaces still apply)");
    }
    g
}

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("Landlock is not available (errno {0}): it needs Linux 5.13+ built with CONFIG_SECURITY_LANDLOCK and `landlock` in the `lsm=` boot parameter; or pass --allow-degraded to run without it")]
    Unsupported(i32),
    #[error("cannot create the Landlock ruleset: {0}")]
    Create(std::io::Error),
}

/// The running kernel's Landlock ABI version.
pub fn abi() -> Result<u32, LandlockError> {
    // SAFETY: the version query takes no pointers (NULL attr, size 0).
    let v = unsafe {
        libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, CREATE_RULESET_VERSION)
    };
    if v < 0 {
        return Err(LandlockError::Unsupported(errno()));
    }
    Ok(v as u32)
}

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Creates the (empty) ruleset in the supervisor; close-on-exec.
pub fn create(plan: &Plan) -> Result<OwnedFd, LandlockError> {
    let attr =
        RulesetAttr { handled_access_fs: plan.handled_fs, handled_access_net: plan.handled_net, scoped: plan.scoped };
    // Older kernels know a shorter struct; the size must not cover fields they do not know.
    let size = match plan.abi {
        0..=3 => 8,
        4 | 5 => 16,
        _ => std::mem::size_of::<RulesetAttr>(),
    };
    // SAFETY: `attr` is a valid landlock_ruleset_attr of at least `size` bytes.
    let fd = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, &attr as *const RulesetAttr, size, 0u32) };
    if fd < 0 {
        return Err(LandlockError::Create(std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel returned a new fd owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The rules as C strings, so the child can add them without allocating.
pub fn prepare_rules(plan: &Plan) -> Vec<(CString, u64)> {
    plan.rules
        .iter()
        .filter_map(|(p, a)| CString::new(p.as_os_str().as_bytes()).ok().map(|c| (c, a & plan.handled_fs)))
        .collect()
}

/// Adds the rules, in the sandbox's own mount namespace: a rule on a directory that a mount covers
/// (the private /tmp) would not apply to what is mounted over it. Missing paths are skipped.
/// Async-signal-safe; on failure returns the rule's index and the errno.
pub fn add_rules(ruleset: RawFd, rules: &[(CString, u64)]) -> Result<(), (usize, i32)> {
    for (i, (path, access)) in rules.iter().enumerate() {
        // SAFETY: `path` is a valid C string.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            match errno() {
                libc::ENOENT | libc::ENOTDIR => continue,
                e => return Err((i, e)),
            }
        }
        // SAFETY: stat is plain old data; all-zero is valid and fstat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is open and `st` a valid out-pointer.
        let is_dir = unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let rule =
            PathBeneathAttr { allowed_access: if is_dir { *access } else { *access & FILE_RIGHTS }, parent_fd: fd };
        // SAFETY: `rule` is a valid packed landlock_path_beneath_attr; both fds are open.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                RULE_PATH_BENEATH,
                &rule as *const PathBeneathAttr,
                0u32,
            )
        };
        let e = errno();
        // SAFETY: closing the fd opened above.
        unsafe { libc::close(fd) };
        if rc < 0 {
            return Err((i, e));
        }
    }
    Ok(())
}

/// Enforces the ruleset on the calling thread and its future children. Async-signal-safe.
pub fn restrict_self(ruleset: RawFd) -> Result<(), i32> {
    // SAFETY: plain system call on an fd we own; no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) };
    if rc < 0 {
        return Err(errno());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> FsPolicy {
        FsPolicy { read_roots: vec!["/".into()], write_roots: vec!["/w".into()], ..FsPolicy::default() }
    }

    fn top() -> Vec<PathBuf> {
        vec!["/dev".into(), "/etc".into(), "/usr".into()]
    }

    #[test]
    fn every_right_of_the_abi_is_handled() {
        assert_eq!(fs_rights(1).count_ones(), 13);
        assert_eq!(fs_rights(3), fs_rights(1) | REFER | TRUNCATE);
        assert_eq!(fs_rights(7).count_ones(), 16);
        let p = plan(&fs(), true, 7, &top(), false);
        assert_eq!(p.handled_fs, fs_rights(7));
        assert_eq!(p.rules[0], ("/".into(), READ_DIR));
        assert_eq!(p.rules[1], ("/etc".into(), READ_RIGHTS));
        assert_eq!(p.rules[2], ("/usr".into(), READ_RIGHTS));
        assert_eq!(p.rules[3], ("/w".into(), fs_rights(7)));
        assert!(!p.rules.iter().any(|(p, _)| p == std::path::Path::new("/dev")), "devices are opt-in");
        assert!(!p.rules.iter().any(|(p, _)| p == std::path::Path::new("/dev/shm")));
        assert!(plan(&fs(), true, 7, &top(), true).rules.contains(&("/dev/shm".into(), fs_rights(7))));
        assert_eq!(p.scoped, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL);
        assert_eq!(p.handled_net, NET_BIND_TCP | NET_CONNECT_TCP);
    }

    #[test]
    fn older_abis_get_what_they_know() {
        let p = plan(&fs(), true, 3, &top(), false);
        assert_eq!(p.handled_net, 0);
        assert_eq!(p.scoped, 0);
        assert_eq!(p.handled_fs & IOCTL_DEV, 0);
        assert_eq!(gaps(3).len(), 3);
        assert!(gaps(7).is_empty());
        assert_eq!(plan(&fs(), true, 99, &top(), false).abi, KNOWN_ABI);
    }

    #[test]
    fn network_on_leaves_tcp_alone_and_devices_stay_usable() {
        let p = plan(&fs(), false, 7, &top(), false);
        assert_eq!(p.handled_net, 0);
        let null = p.rules.iter().find(|(p, _)| p == std::path::Path::new("/dev/null")).unwrap();
        assert_ne!(null.1 & WRITE_FILE, 0);
        assert_ne!(null.1 & TRUNCATE, 0);
    }
}
