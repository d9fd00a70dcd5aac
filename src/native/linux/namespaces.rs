//! User, mount, PID, IPC and (with network off) network namespaces: which to create, the one-line
//! uid/gid maps that keep the caller's own ids, and the advice when the kernel refuses them.
//!
//! The sandboxed command keeps its real uid (mapped to itself) and loses every capability before
//! exec (see `spawn`). Namespaces alone do not restrict files: Landlock does.

use std::ffi::CStr;

use super::sys::errno;

/// Namespaces of the sandbox's init process.
pub fn clone_flags(network_off: bool) -> libc::c_int {
    let mut f = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    if network_off {
        f |= libc::CLONE_NEWNET;
    }
    f
}

/// `/proc/self/uid_map` and `gid_map` contents mapping an id to itself.
pub fn id_map(id: u32) -> String {
    format!("{id} {id} 1\n")
}

/// Writes `data` to `path` (async-signal-safe). Returns the errno on failure.
pub fn write_file(path: &CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: `path` is a valid C string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `data` is valid for `data.len()` bytes; `fd` is ours and closed below.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let e = errno();
    // SAFETY: closing the fd opened above.
    unsafe { libc::close(fd) };
    if n != data.len() as isize {
        Err(e)
    } else {
        Ok(())
    }
}

fn sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Advice for a refused user namespace, from the host's sysctls.
pub fn userns_advice() -> String {
    if sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return "user namespaces are disabled: run `sysctl -w user.max_user_namespaces=15000`".into();
    }
    if sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "unprivileged user namespaces are disabled: run `sysctl -w kernel.unprivileged_userns_clone=1`".into();
    }
    if sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return "AppArmor restricts unprivileged user namespaces: run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or give codex-box an AppArmor profile with `userns,`".into();
    }
    "user namespaces are refused here (inside a container, its seccomp profile usually blocks them: run codex-box on the host or with --security-opt seccomp=unconfined)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_the_callers_id() {
        assert_eq!(id_map(1000), "1000 1000 1\n");
    }

    #[test]
    fn network_namespace_only_without_network() {
        assert_ne!(clone_flags(true) & libc::CLONE_NEWNET, 0);
        assert_eq!(clone_flags(false) & libc::CLONE_NEWNET, 0);
        assert_ne!(clone_flags(false) & libc::CLONE_NEWPID, 0);
    }
}
