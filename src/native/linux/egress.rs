//! Network by name (`--allow-domain`): the command gets a network namespace with nothing but
//! loopback, and on it, at [`LISTEN`], a listening socket that init opens and hands to codex-box.
//! codex-box serves the allowlisting proxy ([`crate::proxy`]) on that socket from the host's
//! namespace, so the proxy's own connections leave from the host while the command's only way out
//! is the proxy. No setns, no privilege: init owns the namespace it creates.
//!
//! What it enforces: a connection leaves the sandbox only through the proxy, which decides by name
//! (and SNI); UDP, DNS, ICMP and direct TCP have no route (the namespace has no other interface);
//! seccomp refuses sockets other than unix and IP ones. What it does not: make tools that ignore
//! the proxy variables work (they fail closed), or look inside TLS.
//!
//! The proxy itself (configuration, runtime, log, shutdown) is shared with macOS:
//! [`crate::native::egress`].

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{OwnedFd, RawFd};

use super::sys::errno;
use crate::native::egress::{EgressError, Prepared, Running};

/// Where the proxy listens inside the sandbox's namespace (private to it: no port clash).
pub const LISTEN: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 3128);

/// Steps of [`open_in_namespace`], reported (as `u32`) as the failure's detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ProxyStep {
    Loopback = 0,
    Socket = 1,
    Bind = 2,
    Listen = 3,
    Send = 4,
}

impl ProxyStep {
    /// The step a reported detail names; an unknown one is taken as the first.
    pub fn from_u32(v: u32) -> ProxyStep {
        use ProxyStep::*;
        [Loopback, Socket, Bind, Listen, Send].into_iter().find(|s| *s as u32 == v).unwrap_or(Loopback)
    }
}

impl std::fmt::Display for ProxyStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProxyStep::Loopback => "bring up loopback in the sandbox's network namespace",
            ProxyStep::Socket => "create the proxy's socket in the sandbox",
            ProxyStep::Bind => "bind the proxy's socket to 127.0.0.1:3128 in the sandbox",
            ProxyStep::Listen => "listen on the proxy's socket in the sandbox",
            ProxyStep::Send => "hand the proxy's socket to codex-box",
        })
    }
}

/// `struct ifreq` with the flags member of its union.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// In init, inside the new namespaces (async-signal-safe): brings loopback up, listens at
/// [`LISTEN`] and sends the listener over `sock`. On failure returns (step, errno).
pub fn open_in_namespace(sock: RawFd) -> Result<(), (ProxyStep, i32)> {
    // SAFETY: plain system calls on descriptors opened here, with stack buffers; each is closed
    // before returning.
    unsafe {
        let ctl = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if ctl < 0 {
            return Err((ProxyStep::Loopback, errno()));
        }
        let mut req = IfReq { name: [0; 16], flags: 0, _pad: [0; 22] };
        req.name[..2].copy_from_slice(b"lo");
        let up = libc::ioctl(ctl, libc::SIOCGIFFLAGS as _, &mut req) >= 0 && {
            req.flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(ctl, libc::SIOCSIFFLAGS as _, &req) >= 0
        };
        let e = errno();
        libc::close(ctl);
        if !up {
            return Err((ProxyStep::Loopback, e));
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err((ProxyStep::Socket, errno()));
        }
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: LISTEN.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*LISTEN.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let step = if libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len) < 0 {
            Some(ProxyStep::Bind)
        } else if libc::listen(fd, 1024) < 0 {
            Some(ProxyStep::Listen)
        } else if let Err(e) = super::notify::send_fd(sock, fd) {
            libc::close(fd);
            return Err((ProxyStep::Send, e));
        } else {
            None
        };
        let e = errno();
        libc::close(fd);
        match step {
            Some(s) => Err((s, e)),
            None => Ok(()),
        }
    }
}

/// Serves the proxy on the listener init sent from the sandbox's namespace.
pub fn serve(prepared: Prepared, listener: OwnedFd) -> Result<Running, EgressError> {
    prepared.serve(std::net::TcpListener::from(listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_pointed_at_the_listener_in_its_namespace() {
        let mut env = Vec::new();
        crate::native::egress::point_at(&mut env, std::net::SocketAddr::V4(LISTEN));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("HTTPS_PROXY"), "http://127.0.0.1:3128");
        assert_eq!(get("http_proxy"), "http://127.0.0.1:3128");
        assert!(get("JAVA_TOOL_OPTIONS").contains("-Dhttps.proxyPort=3128"));
    }
}
