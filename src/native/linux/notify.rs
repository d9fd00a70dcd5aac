//! `--log-denials`: the supervisor side of seccomp user notification. The filter sends every refused
//! system call here; a thread records the caller, the call and its arguments, and answers EPERM, so the
//! command sees the same error as without logging. Only seccomp denials are recorded: Landlock and
//! mount-namespace refusals (EACCES, EROFS, ENOENT) are not, because their audit records need the
//! kernel audit subsystem.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

use super::sys::errno;

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
    let thread =
        std::thread::Builder::new().name("codex-box-seccomp-notify".into()).spawn(move || serve(listener, wake_raw))?;
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
            if errno() == libc::EINTR {
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

/// Receives the listener the command's process sent before exec (non-blocking).
pub fn recv_fd(sock: RawFd) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; the pointers set below stay valid for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: `msg` describes valid buffers; the received fd is taken over below.
    unsafe {
        if libc::recvmsg(sock, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) < 0 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd);
        Some(OwnedFd::from_raw_fd(fd))
    }
}

/// Sends `fd` over a unix socket (async-signal-safe: stack buffers only).
pub fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), i32> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut cbuf = [0u64; 8];
    // SAFETY: as in recv_fd; CMSG macros stay inside `cbuf`, sized for one fd.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}
