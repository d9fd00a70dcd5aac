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

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;

use crate::egress::ResolverSettings;
use crate::policy::DomainPolicy;
use crate::proxy::{Limits, Log, Proxy, ProxyConfig, ProxyError, Summary};

/// Where the proxy listens inside the sandbox's namespace (private to it: no port clash).
pub const LISTEN: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 3128);

/// Steps of [`open_in_namespace`], reported as the failure's detail.
pub const STEPS: [&str; 5] = [
    "bring up loopback in the sandbox's network namespace",
    "create the proxy's socket in the sandbox",
    "bind the proxy's socket to 127.0.0.1:3128 in the sandbox",
    "listen on the proxy's socket in the sandbox",
    "hand the proxy's socket to codex-box",
];

/// `struct ifreq` with the flags member of its union.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// In init, inside the new namespaces (async-signal-safe): brings loopback up, listens at
/// [`LISTEN`] and sends the listener over `sock`. On failure returns (step, errno).
pub fn open_in_namespace(sock: RawFd) -> Result<(), (u32, i32)> {
    let errno = super::spawn::errno;
    // SAFETY: plain system calls on descriptors opened here, with stack buffers; each is closed
    // before returning.
    unsafe {
        let ctl = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if ctl < 0 {
            return Err((0, errno()));
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
            return Err((0, e));
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err((1, errno()));
        }
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: LISTEN.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*LISTEN.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let step = if libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len) < 0 {
            Some(2)
        } else if libc::listen(fd, 1024) < 0 {
            Some(3)
        } else if let Err(e) = super::notify::send_fd(sock, fd) {
            libc::close(fd);
            return Err((4, e));
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

/// Why the proxy cannot run.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("cannot start the egress proxy's runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Log(#[from] crate::proxy::log::LogError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("cannot use the proxy's socket from the sandbox: {0}")]
    Listener(std::io::Error),
}

/// The proxy, ready before the sandbox starts (so that a bad resolver or log path stops the run
/// before the command exists).
pub struct Prepared {
    rt: tokio::runtime::Runtime,
    config: ProxyConfig,
    log: Log,
}

/// The configuration the proxy decides with (pure).
pub fn config(d: &DomainPolicy) -> ProxyConfig {
    ProxyConfig {
        rules: d.rules.clone(),
        ports: d.ports.clone(),
        resolver: ResolverSettings { server: d.dns_server, ..ResolverSettings::default() },
        limits: Limits::default(),
    }
}

/// Builds the runtime, checks the resolver and opens the log (`None`: counts only).
pub fn prepare(d: &DomainPolicy, log_path: Option<&Path>, print_denials: bool) -> Result<Prepared, EgressError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("codex-box-proxy")
        .enable_all()
        .build()
        .map_err(EgressError::Runtime)?;
    let config = config(d);
    {
        let _in = rt.enter();
        crate::egress::resolve::resolver(&config.resolver).map_err(ProxyError::from)?;
    }
    let log = match log_path {
        Some(p) => Log::file(p, print_denials)?,
        None => Log::memory(print_denials),
    };
    Ok(Prepared { rt, config, log })
}

/// A proxy serving the sandbox.
pub struct Running {
    rt: tokio::runtime::Runtime,
    proxy: Proxy,
}

impl Prepared {
    /// Serves on the listener init sent.
    pub fn serve(self, listener: OwnedFd) -> Result<Running, EgressError> {
        let _in = self.rt.enter();
        let std_listener = std::net::TcpListener::from(listener);
        std_listener.set_nonblocking(true).map_err(EgressError::Listener)?;
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(EgressError::Listener)?;
        let proxy = Proxy::serve(listener, self.config, self.log)?;
        drop(_in);
        Ok(Running { rt: self.rt, proxy })
    }
}

impl Running {
    /// Ends every connection and returns the counts.
    pub fn finish(self) -> Summary {
        let summary = self.rt.block_on(self.proxy.shutdown());
        self.rt.shutdown_timeout(std::time::Duration::from_millis(200));
        summary
    }
}

/// The variables that point the command's tools at the proxy.
pub fn env() -> Vec<(String, String)> {
    crate::proxy::session_env(SocketAddr::V4(LISTEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_pointed_at_the_listener_in_its_namespace() {
        let env = env();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("HTTPS_PROXY"), "http://127.0.0.1:3128");
        assert_eq!(get("http_proxy"), "http://127.0.0.1:3128");
        assert!(get("JAVA_TOOL_OPTIONS").contains("-Dhttps.proxyPort=3128"));
    }

    #[test]
    fn the_proxy_decides_with_the_policy() {
        let rules = crate::proxy::Rules::from_entries(
            [("**.example.org", crate::egress::Source::Flag)],
            [("bad.example.org", crate::egress::Source::DenyFlag)],
        )
        .unwrap();
        let d = DomainPolicy {
            rules: rules.clone(),
            ports: vec![443],
            dns_server: Some("127.0.0.1:5353".parse().unwrap()),
        };
        let c = config(&d);
        assert_eq!(c.rules, rules);
        assert_eq!(c.ports, vec![443]);
        assert_eq!(c.resolver.server, d.dns_server);
    }
}
