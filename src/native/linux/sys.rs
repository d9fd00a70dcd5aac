//! Small system-call helpers shared by the Linux backend's modules: [`errno`] (the calling thread's
//! last error), [`raw_fork`] (a clone that behaves like fork) and [`status_code`] (a wait status as
//! the shell's exit code). All of them are async-signal-safe and allocate nothing, so the children
//! may call them between clone and exec. Nothing here decides policy.

/// The calling thread's `errno` after a failed system call (EIO if, impossibly, there is none).
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// `clone(flags | SIGCHLD)` without a new stack: like fork, with namespace flags. Returns the child's
/// pid in the parent, 0 in the child, -1 on failure (see [`errno`]).
pub fn raw_fork(flags: libc::c_int) -> libc::pid_t {
    // SAFETY: clone without CLONE_VM and a NULL stack behaves like fork: the child gets a copy of
    // this stack. The caller only runs async-signal-safe code in the child.
    unsafe {
        libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
            as libc::pid_t
    }
}

/// The exit code for a wait status: the code, 128+N for signal N, 125 otherwise.
pub fn status_code(st: libc::c_int) -> i32 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        125
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_the_last_failure() {
        // SAFETY: closing a descriptor that cannot be open.
        assert!(unsafe { libc::close(-1) } < 0);
        assert_eq!(errno(), libc::EBADF);
    }

    #[test]
    fn wait_statuses_become_shell_exit_codes() {
        assert_eq!(status_code(3 << 8), 3);
        assert_eq!(status_code(libc::SIGKILL), 128 + libc::SIGKILL);
    }
}
