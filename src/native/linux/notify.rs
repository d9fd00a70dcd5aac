//! `--log-denials`: the supervisor side of seccomp user notification. The filter sends every refused
//! system call here; a thread records the caller, the call and its arguments, and answers EPERM, so the
//! command sees the same error as without logging. Only seccomp denials are recorded: Landlock and
//! mount-namespace refusals (EACCES, EROFS, ENOENT) are not, because their audit records need the
//! kernel audit subsystem.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread::JoinHandle;

/// One refused system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub pid: u32,
    pub comm: String,
    pub nr: i64,
    pub args: [u64; 6],
}

pub struct Logger {
    thread: JoinHandle<Vec<Denial>>,
    wake: OwnedFd,
}

/// Starts answering notifications from `listener`.
pub fn start(listener: OwnedFd) -> std::io::Result<Logger> {
    // SAFETY: eventfd takes integers and returns a new fd.
    let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if wake < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nothing else.
    let wake = unsafe { OwnedFd::from_raw_fd(wake) };
    let wake_raw = wake.as_raw_fd();
    let thread = std::thread::Builder::new()
        .name("codex-box-seccomp-notify".into())
        .spawn(move || serve(listener, wake_raw))?;
    Ok(Logger { thread, wake })
}

impl Logger {
    /// Stops (the command has exited) and returns what was refused.
    pub fn finish(self) -> Vec<Denial> {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        let r = self.thread.join().unwrap_or_default();
        drop(self.wake);
        r
    }
}

fn serve(listener: OwnedFd, wake: i32) -> Vec<Denial> {
    let mut out = Vec::new();
    loop {
        let mut fds = [
            libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: wake, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: `fds` is a valid array of two pollfd.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
            let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: RECV fills `n`, a correctly sized seccomp_notif.
            if unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) } == 0 {
                let comm = std::fs::read_to_string(format!("/proc/{}/comm", n.pid)).unwrap_or_default();
                out.push(Denial { pid: n.pid, comm: comm.trim().to_string(), nr: n.data.nr as i64, args: n.data.args });
                let resp = libc::seccomp_notif_resp { id: n.id, val: 0, error: -libc::EPERM, flags: 0 };
                // SAFETY: SEND reads a correctly sized seccomp_notif_resp.
                unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
            }
            continue;
        }
        if fds[1].revents != 0 || fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            break;
        }
    }
    out
}
