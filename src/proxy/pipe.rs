//! Moving bytes once a request is allowed: a CONNECT tunnel (both directions until both ends
//! close) and one forwarded plain HTTP exchange (exactly `Content-Length` request-body bytes up,
//! the response down until the upstream closes). Both end after `idle` without a byte moving.
//!
//! On Linux the bulk direction goes through `splice(2)` (socket → pipe → socket, no copy through
//! user space); elsewhere, and for the bounded request body, a plain read/write loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Last activity, in milliseconds since `start`, shared by both directions of a connection.
pub(crate) struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity { start: Instant::now(), last: AtomicU64::new(0) }
    }

    pub(crate) fn touch(&self) {
        self.last.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `idle`.
    pub(crate) async fn idle(&self, idle: Duration) {
        let tick = (idle / 4).max(Duration::from_millis(20));
        loop {
            tokio::time::sleep(tick).await;
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            if self.start.elapsed().saturating_sub(last) >= idle {
                return;
            }
        }
    }
}

const BUF: usize = 256 * 1024;

/// Copies through a user-space buffer; `limit` bytes at most (then the write side stays open),
/// or until end of stream (then the write side is shut down).
async fn copy_half(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    activity: &Activity,
    limit: Option<u64>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; BUF.min(usize::try_from(limit.unwrap_or(u64::MAX)).unwrap_or(BUF).max(1))];
    let mut left = limit.unwrap_or(u64::MAX);
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = from.read(&mut buf[..want]).await?;
        if n == 0 {
            break;
        }
        activity.touch();
        to.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    if limit.is_none() {
        to.shutdown().await?;
    }
    Ok(())
}

/// Copies until end of stream, then shuts the write side down: `splice(2)` on Linux.
async fn stream_half(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, activity: &Activity) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if let Ok(pipe) = splice::Pipe::new() {
        splice::run(&pipe, from.as_ref(), to.as_ref(), activity).await?;
        return to.shutdown().await;
    }
    copy_half(&mut from, &mut to, activity, None).await
}

/// Both directions until both ends close, an error, or `idle` without traffic. `first` (the
/// ClientHello already read) is sent to the upstream before anything else.
pub(crate) async fn tunnel(client: TcpStream, mut upstream: TcpStream, first: &[u8], idle: Duration) {
    if upstream.write_all(first).await.is_err() {
        return;
    }
    let activity = Activity::new();
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let both = async { tokio::try_join!(stream_half(cr, uw, &activity), stream_half(ur, cw, &activity)) };
    tokio::select! {
        _ = both => {}
        _ = activity.idle(idle) => {}
    }
}

/// One plain HTTP request: the rewritten head, exactly `content_length` body bytes (`early` holds
/// those already read with the head), then the response until the upstream closes (it was sent
/// `Connection: close`). Nothing after the body is ever sent upstream.
pub(crate) async fn forward(
    client: TcpStream,
    mut upstream: TcpStream,
    head: &[u8],
    mut early: Vec<u8>,
    content_length: u64,
    idle: Duration,
) {
    early.truncate(usize::try_from(content_length).unwrap_or(usize::MAX));
    if upstream.write_all(head).await.is_err() || upstream.write_all(&early).await.is_err() {
        return;
    }
    let remaining = content_length - early.len() as u64;
    let activity = Activity::new();
    let (mut cr, cw) = client.into_split();
    let (ur, mut uw) = upstream.into_split();
    let body = async {
        let _ = copy_half(&mut cr, &mut uw, &activity, Some(remaining)).await;
        // Keep both halves (closing them could reset the exchange) until the response is done.
        std::future::pending::<()>().await
    };
    let response = stream_half(ur, cw, &activity);
    // The response ends the exchange; the request body runs beside it (a server may answer early).
    tokio::select! {
        _ = body => {}
        _ = response => {}
        _ = activity.idle(idle) => {}
    }
}

#[cfg(target_os = "linux")]
mod splice {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use tokio::io::Interest;
    use tokio::net::TcpStream;

    use super::Activity;

    const CHUNK: usize = 1 << 20;

    /// A non-blocking pipe, closed on drop.
    pub(super) struct Pipe {
        read: OwnedFd,
        write: OwnedFd,
    }

    impl Pipe {
        pub(super) fn new() -> io::Result<Pipe> {
            let mut fds = [0; 2];
            // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
            let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            // A larger pipe moves more per call; failing to grow it is harmless.
            // SAFETY: fcntl on a descriptor we own, with an integer argument.
            unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
            Ok(Pipe { read, write })
        }
    }

    fn splice(from: i32, to: i32, len: usize) -> io::Result<usize> {
        // SAFETY: both descriptors are open for the duration of the call; null offsets mean
        // "use and advance the file position", the only mode for sockets and pipes.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Socket → pipe → socket until end of stream. Readiness comes from tokio; a WouldBlock
    /// clears it so the next wait is real.
    pub(super) async fn run(pipe: &Pipe, from: &TcpStream, to: &TcpStream, activity: &Activity) -> io::Result<()> {
        loop {
            from.readable().await?;
            let n = match from.try_io(Interest::READABLE, || splice(from.as_raw_fd(), pipe.write.as_raw_fd(), CHUNK)) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            activity.touch();
            let mut left = n;
            while left > 0 {
                to.writable().await?;
                match to.try_io(Interest::WRITABLE, || splice(pipe.read.as_raw_fd(), to.as_raw_fd(), left)) {
                    Ok(m) => left -= m,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
