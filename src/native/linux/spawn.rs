//! The supervisor's side of the process tree: codex-box → init (PID 1 of the new namespaces, see
//! `child`) → the command.
//!
//! Everything the children need is built here first, so they only make system calls after clone.
//! `start` clones with the namespaces and waits until the command is exec'd or a child reports a
//! setup failure (stage, errno) through a close-on-exec pipe; `wait` returns the exit code (128+N for
//! a signal) as soon as init reports that nothing is left in the namespace. SIGINT/SIGTERM/SIGHUP/
//! SIGQUIT sent to codex-box are forwarded (not those the terminal already sent to the whole group);
//! the caller's handlers are restored afterwards. Init dies with codex-box (PR_SET_PDEATHSIG) and takes
//! the PID namespace with it. It does not limit resources.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::launch::{ChildFailure, Ends, Launch, FORWARDED, RECORD};
use super::sys::{errno, raw_fork, status_code};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot {what}: {error}")]
    Os { what: &'static str, error: std::io::Error },
    #[error("cannot start the sandbox: clone with namespaces failed: {error}; {advice}")]
    Namespaces { error: std::io::Error, advice: String },
}

/// A started tree: its init (or command) pid, the seccomp listener, the proxy's listener, or the
/// child's setup failure.
pub struct Started {
    pub pid: libc::pid_t,
    pub listener: Option<OwnedFd>,
    pub proxy: Option<OwnedFd>,
    pub failure: Option<ChildFailure>,
    saved: [libc::sigaction; 4],
    /// Init writes the command's exit code here once every process of the namespace is dead, so the
    /// supervisor need not wait for the kernel to tear the namespaces down.
    done: Option<OwnedFd>,
}

static CHILD: AtomicI32 = AtomicI32::new(0);
/// Inits that reported but were still tearing their namespaces down.
static PENDING: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

/// Reaps the inits left by earlier runs that have finished by now.
fn reap_pending() {
    if let Ok(mut pending) = PENDING.lock() {
        // SAFETY: non-blocking waits on our own children.
        pending.retain(|&pid| unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0);
    }
}

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    if !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL {
        return; // from the terminal: the command's process group got it too
    }
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn os(what: &'static str) -> SpawnError {
    SpawnError::Os { what, error: std::io::Error::last_os_error() }
}

fn sigset(sigs: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
    }
    set
}

fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

/// Closes the descriptors of a pair that was created (-1 entries are skipped).
fn close_raw(fds: &[RawFd; 2]) {
    for fd in fds.iter().filter(|fd| **fd >= 0) {
        // SAFETY: closing a descriptor this function's caller created and nothing else owns.
        unsafe { libc::close(*fd) };
    }
}

/// Starts the tree. Returns once the command is exec'd (or a child reported a failure).
pub fn start(l: &Launch) -> Result<Started, SpawnError> {
    reap_pending();
    let argv = null_terminated(&l.argv);
    let envp = null_terminated(&l.envp);
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(os("create the status pipe"));
    }
    // SAFETY: pipe2 returned two fresh fds.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut done = [-1; 2];
    // SAFETY: `done` has room for two descriptors.
    if l.namespaces.is_some() && unsafe { libc::pipe2(done.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(os("create the exit pipe"));
    }
    let mut pair = [-1; 2];
    // SAFETY: `pair` has room for two descriptors.
    if l.notify
        && unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, pair.as_mut_ptr()) }
            < 0
    {
        let e = os("create the notification socket");
        close_raw(&done);
        return Err(e);
    }
    let mut proxy_pair = [-1; 2];
    // SAFETY: `proxy_pair` has room for two descriptors.
    if l.proxy
        && unsafe {
            libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, proxy_pair.as_mut_ptr())
        } < 0
    {
        let e = os("create the proxy socket pair");
        close_raw(&done);
        close_raw(&pair);
        return Err(e);
    }

    // SAFETY: sigaction is plain data; all-zero is valid before sigaction fills it.
    let mut saved: [libc::sigaction; 4] = unsafe { std::mem::zeroed() };
    // SAFETY: installing a handler that only calls async-signal-safe functions; the caller's
    // handlers are saved and put back by `wait`.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = forward as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        for (s, old) in FORWARDED.iter().zip(saved.iter_mut()) {
            libc::sigaction(*s, &sa, old);
        }
    }
    let mut blocked = FORWARDED.to_vec();
    blocked.push(libc::SIGCHLD);
    let block = sigset(&blocked);
    // SAFETY: sigset_t is plain data filled by sigprocmask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old) };

    let pid = raw_fork(l.namespaces.as_ref().map_or(0, |n| n.0));
    if pid == 0 {
        super::child::child(
            l,
            &argv,
            &envp,
            Ends { pipe: wr.as_raw_fd(), sock: pair[1], done: done[1], proxy: proxy_pair[1] },
            &block,
            &old,
        );
    }
    let clone_err = std::io::Error::last_os_error();
    CHILD.store(pid.max(0), Ordering::SeqCst);
    // SAFETY: restoring the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(wr);
    if pair[1] >= 0 {
        // SAFETY: closing the child's end, which we own.
        unsafe { libc::close(pair[1]) };
    }
    // SAFETY: pair[0], proxy_pair[0] and done[0] are ours if created; proxy_pair[1] and done[1]
    // are init's.
    let ours = (pair[0] >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pair[0]) });
    // SAFETY: as above.
    let proxy_ours = (proxy_pair[0] >= 0).then(|| unsafe {
        libc::close(proxy_pair[1]);
        OwnedFd::from_raw_fd(proxy_pair[0])
    });
    // SAFETY: as above.
    let done_rd = (done[0] >= 0).then(|| unsafe {
        libc::close(done[1]);
        OwnedFd::from_raw_fd(done[0])
    });
    if pid < 0 {
        restore_signals(&saved);
        return Err(SpawnError::Namespaces { error: clone_err, advice: super::namespaces::userns_advice() });
    }
    let mut rec = [0u8; RECORD];
    let n = loop {
        // SAFETY: reading into a stack buffer from our pipe end.
        let n = unsafe { libc::read(rd.as_raw_fd(), rec.as_mut_ptr().cast(), rec.len()) };
        if n >= 0 || errno() != libc::EINTR {
            break n;
        }
    };
    if n == RECORD as isize {
        let f = ChildFailure::decode(&rec);
        return Ok(Started { pid, listener: None, proxy: None, failure: Some(f), saved, done: None });
    }
    let listener = ours.and_then(|s| super::notify::recv_fd(s.as_raw_fd()));
    // Init sent it before starting the command, which has exec'd by now.
    let proxy = proxy_ours.and_then(|s| super::notify::recv_fd(s.as_raw_fd()));
    Ok(Started { pid, listener, proxy, failure: None, saved, done: done_rd })
}

/// Waits for the tree; returns the exit code (128+N for a signal).
pub fn wait(started: &Started) -> i32 {
    let pid = started.pid;
    if let Some(code) = started.done.as_ref().and_then(|d| read_code(d.as_raw_fd())) {
        // Everything in the namespace is dead; init is only tearing the namespaces down. Reap it if
        // it is gone, else at the next start (a process that exits reaps nothing anyway).
        // SAFETY: reaping our own child without blocking.
        if unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0 {
            if let Ok(mut pending) = PENDING.lock() {
                pending.push(pid);
            }
        }
        CHILD.store(0, Ordering::SeqCst);
        restore_signals(&started.saved);
        return code;
    }
    let mut st = 0;
    loop {
        // SAFETY: waiting on our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            break;
        }
        if r < 0 && errno() != libc::EINTR {
            st = 125 << 8;
            break;
        }
    }
    CHILD.store(0, Ordering::SeqCst);
    restore_signals(&started.saved);
    status_code(st)
}

/// The exit code init reports, or None when it died without reporting.
fn read_code(fd: RawFd) -> Option<i32> {
    let mut b = [0u8; 4];
    loop {
        // SAFETY: reading into a stack buffer from our pipe end.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 4) };
        if n == 4 {
            return Some(i32::from_ne_bytes(b));
        }
        if n >= 0 || errno() != libc::EINTR {
            return None;
        }
    }
}

fn restore_signals(saved: &[libc::sigaction; 4]) {
    for (s, old) in FORWARDED.iter().zip(saved) {
        // SAFETY: putting back the caller's disposition saved by `start`.
        unsafe { libc::sigaction(*s, old, std::ptr::null_mut()) };
    }
}
