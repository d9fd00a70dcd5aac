//! Network by name (`--allow-domain`), the part the native backends share: the proxy's
//! configuration (pure), and codex-box serving the allowlisting proxy ([`crate::proxy`]) from
//! its own process while the sandboxed command runs.
//!
//! Where the proxy listens is the backend's: Linux opens the listener inside the sandbox's private
//! network namespace (`linux::egress`); macOS has no such namespace, so the proxy listens on the
//! host's loopback ([`bind_loopback`]) and the Seatbelt profile lets the command reach that one
//! port. What this module enforces is the proxy's: a connection through it leaves only to an
//! allowed name and port. That the proxy is the command's only way out is the backend's job.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener};
use std::path::Path;

use crate::policy::DomainPolicy;
use crate::proxy::{Log, Proxy, ProxyConfig, ProxyError, Summary};

/// How many loopback ports [`bind_loopback`] tries before giving up.
pub const PORT_TRIES: usize = 16;

/// Why the proxy cannot run.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("cannot start the egress proxy's runtime: {0}")]
    Runtime(io::Error),
    #[error(transparent)]
    Log(#[from] crate::proxy::log::LogError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("cannot serve the egress proxy on its listening socket: {0}")]
    Listener(io::Error),
    #[error("cannot listen on 127.0.0.1 for the egress proxy: {0}; check that the loopback interface is up")]
    Bind(io::Error),
    #[error("cannot reserve [::1]:{port} beside the egress proxy on 127.0.0.1:{port} (so that nothing else listens where the sandbox may connect): {error}")]
    Reserve { port: u16, error: io::Error },
    #[error("no loopback port was free on both 127.0.0.1 and [::1] for the egress proxy after {0} tries; close some local servers and retry")]
    NoPort(usize),
}

/// Points the command's tools at the proxy at `addr` ([`crate::proxy::session_env`]), replacing
/// variables of the same names in `vars`.
/// The user's own `GIT_CONFIG_COUNT` entries are kept: git's `http.proxy` is appended after them.
pub fn point_at(vars: &mut Vec<(String, String)>, addr: SocketAddr) {
    let get = |vars: &[(String, String)], k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let user_git: usize = get(vars, "GIT_CONFIG_COUNT").and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| {
        vars.retain(|(name, _)| *name != k);
        vars.push((k, v));
    };
    for (k, v) in crate::proxy::session_env(addr) {
        match k.as_str() {
            "GIT_CONFIG_COUNT" => set(vars, k, (user_git + 1).to_string()),
            "GIT_CONFIG_KEY_0" => set(vars, format!("GIT_CONFIG_KEY_{user_git}"), v),
            "GIT_CONFIG_VALUE_0" => set(vars, format!("GIT_CONFIG_VALUE_{user_git}"), v),
            _ => set(vars, k, v),
        }
    }
}

/// The proxy, ready before the sandbox starts (so that a bad resolver or log path stops the run
/// before the command exists).
pub struct Prepared {
    rt: tokio::runtime::Runtime,
    config: ProxyConfig,
    log: Log,
}

/// Builds the runtime, checks the resolver and opens the log (`None`: counts only).
pub fn prepare(d: &DomainPolicy, log_path: Option<&Path>, print_denials: bool) -> Result<Prepared, EgressError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("codex-box-proxy")
        .enable_all()
        .build()
        .map_err(EgressError::Runtime)?;
    let config = d.proxy_config();
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
    /// Kept until the proxy stops (see [`Loopback`]).
    _reserved: Option<tokio::net::TcpSocket>,
}

impl Prepared {
    /// Also serves the API relay on the proxy's listener.
    #[cfg(target_os = "linux")]
    pub fn with_relay(mut self, relay: Option<std::sync::Arc<crate::proxy::relay::RelayConfig>>) -> Prepared {
        self.config.relay = relay;
        self
    }

    /// Serves on `listener` (already bound and listening).
    pub fn serve(self, listener: TcpListener) -> Result<Running, EgressError> {
        self.serve_with(listener, None)
    }

    /// Serves on the host's loopback, keeping the [::1] twin of the port reserved meanwhile.
    pub fn serve_loopback(self, loopback: Loopback) -> Result<Running, EgressError> {
        self.serve_with(loopback.listener, loopback.reserved)
    }

    fn serve_with(
        self,
        listener: TcpListener,
        reserved: Option<tokio::net::TcpSocket>,
    ) -> Result<Running, EgressError> {
        let _in = self.rt.enter();
        listener.set_nonblocking(true).map_err(EgressError::Listener)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(EgressError::Listener)?;
        let proxy = Proxy::serve(listener, self.config, self.log)?;
        drop(_in);
        Ok(Running { rt: self.rt, proxy, _reserved: reserved })
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

/// The proxy's listener on the host's loopback: `127.0.0.1:PORT`, listening, and `[::1]:PORT`
/// bound but never listening. Seatbelt can only name the host `localhost`, which also matches
/// ::1, so a profile allowing `localhost:PORT` would let the command reach whatever another
/// program listened on at `[::1]:PORT`; holding that address for the run keeps it codex-box's.
/// Connections to it get nothing (refused on Linux; on macOS they may wait until they time out).
pub struct Loopback {
    listener: TcpListener,
    reserved: Option<tokio::net::TcpSocket>,
}

impl Loopback {
    /// Where the proxy listens (what the command's proxy variables name).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port()))
    }

    /// The port, for the sandbox profile.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// Whether `[::1]:PORT` is held (`false`: the host has no IPv6 loopback, so nothing can listen
    /// there either).
    pub fn reserves_ipv6(&self) -> bool {
        self.reserved.is_some()
    }
}

/// Opens [`Loopback`] on an ephemeral port free on both 127.0.0.1 and [::1].
pub fn bind_loopback() -> Result<Loopback, EgressError> {
    let (listener, reserved) = pick(
        PORT_TRIES,
        || {
            let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
            let port = l.local_addr()?.port();
            Ok((l, port))
        },
        |port| {
            let s = tokio::net::TcpSocket::new_v6()?;
            s.bind(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0)))?;
            Ok(s)
        },
    )?;
    Ok(Loopback { listener, reserved })
}

/// Whether a bind to `[::1]` failed because the host has no IPv6 loopback at all.
fn no_ipv6_loopback(e: &io::Error) -> bool {
    #[cfg(unix)]
    if matches!(e.raw_os_error(), Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT)) {
        return true;
    }
    e.kind() == io::ErrorKind::AddrNotAvailable
}

/// Binds with `listen` (returning the port), then holds the port's IPv6 twin with `reserve`;
/// a twin already taken means another port, at most `tries` times.
fn pick<L, R>(
    tries: usize,
    mut listen: impl FnMut() -> io::Result<(L, u16)>,
    mut reserve: impl FnMut(u16) -> io::Result<R>,
) -> Result<(L, Option<R>), EgressError> {
    for _ in 0..tries {
        let (listener, port) = listen().map_err(EgressError::Bind)?;
        match reserve(port) {
            Ok(r) => return Ok((listener, Some(r))),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) if no_ipv6_loopback(&e) => return Ok((listener, None)),
            Err(error) => return Err(EgressError::Reserve { port, error }),
        }
    }
    Err(EgressError::NoPort(tries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::ResolverSettings;

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
            resolver: ResolverSettings {
                server: Some("127.0.0.1:5353".parse().unwrap()),
                ..ResolverSettings::default()
            },
        };
        let c = d.proxy_config();
        assert_eq!(c.rules, rules);
        assert_eq!(c.ports, vec![443]);
        assert_eq!(c.resolver, d.resolver);
        assert_eq!(c.limits, crate::proxy::Limits::default());
    }

    #[test]
    fn the_command_is_pointed_at_the_proxy_and_its_own_proxy_settings_replaced() {
        let mut vars = vec![
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("HTTPS_PROXY".to_string(), "http://corp.example:8080".to_string()),
            ("no_proxy".to_string(), "*".to_string()),
        ];
        point_at(&mut vars, "127.0.0.1:43128".parse().unwrap());
        let all = |k: &str| vars.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(all("PATH"), ["/usr/bin:/bin"]);
        assert_eq!(all("HTTPS_PROXY"), ["http://127.0.0.1:43128"]);
        assert_eq!(all("http_proxy"), ["http://127.0.0.1:43128"]);
        assert_eq!(all("no_proxy"), ["localhost,127.0.0.1,::1"]);
        assert_eq!(all("GIT_CONFIG_VALUE_0"), ["http://127.0.0.1:43128"]);
        // The user's own git settings through the environment are kept; http.proxy comes after.
        let mut vars = vec![
            ("GIT_CONFIG_COUNT".to_string(), "1".to_string()),
            ("GIT_CONFIG_KEY_0".to_string(), "core.editor".to_string()),
            ("GIT_CONFIG_VALUE_0".to_string(), "vi".to_string()),
        ];
        point_at(&mut vars, "127.0.0.1:43128".parse().unwrap());
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("GIT_CONFIG_COUNT"), get("GIT_CONFIG_KEY_0"), get("GIT_CONFIG_VALUE_0")),
            (Some("2"), Some("core.editor"), Some("vi"))
        );
        assert_eq!(
            (get("GIT_CONFIG_KEY_1"), get("GIT_CONFIG_VALUE_1")),
            (Some("http.proxy"), Some("http://127.0.0.1:43128"))
        );
    }

    #[test]
    fn a_port_whose_ipv6_twin_is_taken_is_skipped() {
        let mut ports = [5001u16, 5002, 5003].into_iter();
        let mut listened = Vec::new();
        let got = pick(
            3,
            || {
                let p = ports.next().unwrap();
                listened.push(p);
                Ok((p, p))
            },
            |p| if p == 5001 { Err(io::Error::from(io::ErrorKind::AddrInUse)) } else { Ok(p) },
        )
        .unwrap();
        assert_eq!(got, (5002, Some(5002)));
        assert_eq!(listened, [5001, 5002]);
    }

    #[test]
    fn without_ipv6_loopback_nothing_is_reserved_and_other_failures_stop_the_run() {
        let no_v6 = pick(2, || Ok(((), 7)), |_| Err::<(), _>(io::Error::from(io::ErrorKind::AddrNotAvailable)));
        assert!(matches!(no_v6, Ok(((), None))));
        #[cfg(unix)]
        {
            let no_family = pick(2, || Ok(((), 7)), |_| Err::<(), _>(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)));
            assert!(matches!(no_family, Ok(((), None))));
        }
        let denied = pick(2, || Ok(((), 7)), |_| Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied)));
        let e = denied.unwrap_err();
        assert!(matches!(e, EgressError::Reserve { port: 7, .. }));
        assert!(e.to_string().contains("[::1]:7") && e.to_string().contains("127.0.0.1:7"), "{e}");
        let busy = pick(4, || Ok(((), 7)), |_| Err::<(), _>(io::Error::from(io::ErrorKind::AddrInUse)));
        let e = busy.unwrap_err();
        assert!(matches!(e, EgressError::NoPort(4)));
        assert!(e.to_string().contains("retry"), "{e}");
        let down = pick(2, || Err::<((), u16), _>(io::Error::from(io::ErrorKind::AddrNotAvailable)), |_| Ok(()));
        assert!(down.unwrap_err().to_string().contains("loopback interface"));
    }

    /// Both sides on the real host: the command's address accepts, the IPv6 twin is held.
    #[test]
    fn the_loopback_listener_accepts_and_its_ipv6_twin_cannot_be_taken() {
        let lo = bind_loopback().unwrap();
        let port = lo.port();
        assert_ne!(port, 0);
        assert_eq!(lo.addr(), SocketAddr::from(([127, 0, 0, 1], port)));
        let client = std::net::TcpStream::connect(lo.addr()).unwrap();
        let (_server, peer) = lo.listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let twin = TcpListener::bind(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0)));
        let err = twin.expect_err("[::1] twin of the proxy's port must not be free");
        if lo.reserves_ipv6() {
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        } else {
            assert!(no_ipv6_loopback(&err), "no IPv6 loopback, yet: {err}");
        }
    }

    /// The proxy is served on the loopback listener and stops cleanly.
    #[test]
    fn serves_on_loopback_and_finishes() {
        // A named resolver: the host's configuration plays no part (a denied name is never resolved).
        let d = DomainPolicy {
            rules: crate::proxy::Rules::default(),
            ports: vec![443],
            resolver: ResolverSettings { server: Some("127.0.0.1:9".parse().unwrap()), ..ResolverSettings::default() },
        };
        let prepared = prepare(&d, None, false).unwrap();
        let lo = bind_loopback().unwrap();
        let addr = lo.addr();
        let running = prepared.serve_loopback(lo).unwrap();
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n").unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
        let summary = running.finish();
        assert_eq!((summary.allowed, summary.denied), (0, 1));
    }
}
