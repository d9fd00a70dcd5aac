//! The sandbox's side of the process tree: init (PID 1 of the new namespaces) and the command.
//!
//! Init writes the uid/gid maps, applies the mounts, opens the proxy's listener (network by name),
//! forks the command, forwards the signals the
//! supervisor sends, reaps orphans, and when the command exits kills what is left and reports the exit
//! code. The command drops every capability, sets no_new_privs, adds and enforces the Landlock rules,
//! installs seccomp and execs. Only system calls here (no allocation after clone); failures go back to
//! the supervisor as (stage, errno). Nothing here decides policy.

use std::os::fd::{AsRawFd, RawFd};

use super::launch::{report, Ends, Launch, Stage, FORWARDED};
use super::sys::{errno, raw_fork, status_code};
use super::{mounts, seccomp};

/// The first child: init of the namespaces (or, without namespaces, the command itself).
pub fn child(
    l: &Launch,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    ends: Ends,
    block: &libc::sigset_t,
    old: &libc::sigset_t,
) -> ! {
    let Ends { pipe, sock, done, proxy } = ends;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let Some((_, uid_map, gid_map)) = &l.namespaces else { command(l, argv, envp, ends, old) };
    if let Err(e) = super::namespaces::write_file(c"/proc/self/setgroups", b"deny")
        .and_then(|_| super::namespaces::write_file(c"/proc/self/uid_map", uid_map.as_bytes()))
        .and_then(|_| super::namespaces::write_file(c"/proc/self/gid_map", gid_map.as_bytes()))
    {
        report(pipe, Stage::IdMap, 0, e);
    }
    if let Err((i, e)) = mounts::apply(&l.mounts) {
        report(pipe, Stage::Mount, i as u32, e);
    }
    // SAFETY: `cwd` is a valid C string.
    if unsafe { libc::chdir(l.cwd.as_ptr()) } < 0 {
        report(pipe, Stage::Chdir, 0, errno());
    }
    if l.proxy {
        if let Err((step, e)) = super::egress::open_in_namespace(proxy) {
            report(pipe, Stage::Proxy, step as u32, e);
        }
        // SAFETY: closing init's end; the command must not hold it.
        unsafe { libc::close(proxy) };
    }
    // PID 1 only receives signals it has a handler for.
    for s in FORWARDED.iter().chain([libc::SIGCHLD].iter()) {
        // SAFETY: installing a no-op handler; the signals stay blocked and are taken by sigwaitinfo.
        unsafe { libc::signal(*s, noop as *const () as libc::sighandler_t) };
    }
    let w = raw_fork(0);
    if w == 0 {
        command(l, argv, envp, ends, old);
    }
    if w < 0 {
        report(pipe, Stage::Fork, 0, errno());
    }
    // SAFETY: closing our copies; the command keeps its own until exec.
    unsafe {
        libc::close(pipe);
        if sock >= 0 {
            libc::close(sock);
        }
    }
    loop {
        // SAFETY: siginfo_t is plain data filled by sigwaitinfo.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid set and out-pointer.
        let sig = unsafe { libc::sigwaitinfo(block, &mut info) };
        if sig == libc::SIGCHLD {
            loop {
                let mut st = 0;
                // SAFETY: reaping any child of init (orphans are re-parented to it).
                let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
                if pid <= 0 {
                    break;
                }
                if pid == w {
                    finish(status_code(st), done);
                }
            }
        } else if sig > 0 && info.si_code != libc::SI_KERNEL {
            // SAFETY: forwarding to the command.
            unsafe { libc::kill(w, sig) };
        }
    }
}

/// Init's handler for the signals it forwards: they stay blocked and are taken by sigwaitinfo, but
/// PID 1 only receives signals it has a handler for.
extern "C" fn noop(_sig: libc::c_int) {}

/// Init's end: kill and reap everything left in the namespace, report the code, leave.
fn finish(code: i32, done: RawFd) -> ! {
    // SAFETY: as PID 1, kill(-1) reaches every other process of the namespace; then reap them all,
    // write four bytes from the stack and leave without destructors.
    unsafe {
        libc::kill(-1, libc::SIGKILL);
        while libc::waitpid(-1, std::ptr::null_mut(), 0) > 0 || errno() == libc::EINTR {}
        libc::write(done, code.to_ne_bytes().as_ptr().cast(), 4);
        libc::_exit(code)
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The command's process: capabilities, no_new_privs, Landlock, seccomp, exec.
fn command(
    l: &Launch,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    ends: Ends,
    old: &libc::sigset_t,
) -> ! {
    let Ends { pipe, sock, .. } = ends;
    // SAFETY: integer prctls, default dispositions and the caller's signal mask, then
    // close-on-exec for every inherited descriptor above stderr (the kernel checks the range).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // SIGPIPE too: the Rust runtime ignores it, and an ignored signal survives exec.
        for s in FORWARDED.iter().chain([libc::SIGCHLD, libc::SIGPIPE].iter()) {
            libc::signal(*s, libc::SIG_DFL);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    }
    if !l.harden {
        // SAFETY: argv and envp are NULL-terminated arrays of valid C strings.
        unsafe { libc::execve(l.exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        report(pipe, Stage::Exec, 0, errno())
    }
    for cap in 0..=l.cap_last {
        // SAFETY: integer prctl; EINVAL for unknown capabilities is fine, and EPERM too outside a
        // user namespace (an unprivileged caller has nothing to drop).
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } < 0
            && errno() == libc::EPERM
            && l.namespaces.is_some()
        {
            report(pipe, Stage::Caps, cap, libc::EPERM);
        }
    }
    let hdr = CapHeader { version: 0x2008_0522, pid: 0 };
    let data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: clearing ambient capabilities, then capset with a v3 header and two data words.
    unsafe {
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        if libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) < 0 {
            report(pipe, Stage::Caps, 99, errno());
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            report(pipe, Stage::NoNewPrivs, 0, errno());
        }
    }
    if let Some((rs, rules)) = &l.landlock {
        if let Err((i, e)) = super::landlock::add_rules(rs.as_raw_fd(), rules) {
            report(pipe, Stage::LandlockRule, i as u32, e);
        }
        if let Err(e) = super::landlock::restrict_self(rs.as_raw_fd()) {
            report(pipe, Stage::Landlock, 0, e);
        }
    }
    if let Some(prog) = &l.seccomp {
        match seccomp::install(prog, l.notify) {
            Err(e) => report(pipe, Stage::Seccomp, 0, e),
            Ok(Some(listener)) => {
                if let Err(e) = super::notify::send_fd(sock, listener.as_raw_fd()) {
                    report(pipe, Stage::SendListener, 0, e);
                }
                // SAFETY: our copy of the listener must not reach the command.
                unsafe { libc::close(std::os::fd::IntoRawFd::into_raw_fd(listener)) };
            }
            Ok(None) => {}
        }
    }
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings.
    unsafe { libc::execve(l.exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    report(pipe, Stage::Exec, 0, errno())
}
