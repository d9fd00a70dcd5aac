//! The proxy server: accepts connections, reads one request head, decides by the requested host
//! ([`super::rules`]), resolves the name itself, refuses non-public answers that no IP entry opens,
//! and then either tunnels (CONNECT, after checking the TLS ClientHello's SNI against the CONNECT
//! host) or forwards one plain HTTP request with its `Content-Length` body.
//!
//! Limits: at most `max_connections` at once (the next one gets a 503 and is closed), a deadline
//! for the request head and the ClientHello, an idle timeout on tunnels, bounded heads
//! ([`super::http::HeadLimits`]). A malformed request gets a 4xx on its own connection only.
//! [`Proxy::shutdown`] stops accepting, ends every connection and returns the summary.
//!
//! What it enforces: the destination *name* a client states (CONNECT host, URL host) and, for
//! TLS, that the ClientHello names the same host; the destination port; that the proxy itself
//! only connects to addresses the rules allow. What it does not: look inside TLS — a client that
//! states an allowed name in both CONNECT and SNI but then sends another `Host` inside the
//! encrypted stream (domain fronting) reaches whatever that server routes it to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hickory_resolver::TokioResolver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::http::{self, HeadError, HeadLimits, Parsed, Request};
use super::log::{Event, Log, Summary};
use super::pipe::{forward, tunnel};
use super::rules::{Decision, Host, Rules};
use super::sni::{self, Hello};
use crate::egress::{ResolveError, ResolverSettings};

/// Bounds of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    /// A tunnel or response with no byte in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Deadline for the request head, and again for the ClientHello.
    pub head_timeout: Duration,
    /// Deadline for connecting to the upstream (all its addresses).
    pub connect_timeout: Duration,
    pub head: HeadLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            head_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            head: HeadLimits::default(),
        }
    }
}

/// Everything the server decides with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub rules: Rules,
    /// Destination ports allowed (CONNECT and plain HTTP alike).
    pub ports: Vec<u16>,
    /// The resolver the proxy uses (`server: None`: the host's).
    pub resolver: ResolverSettings,
    pub limits: Limits,
    /// The API relay served on the same listener (origin-form `/v1/…` requests), when the key
    /// stays with codex-box (the native sandbox's `--codex`).
    #[cfg(target_os = "linux")]
    pub relay: Option<std::sync::Arc<super::relay::RelayConfig>>,
    /// The hosts secrets are bound to, whose tunnels the proxy terminates to add them
    /// ([`super::intercept`]); every other tunnel stays uninspected.
    #[cfg(target_os = "linux")]
    pub intercept: Option<std::sync::Arc<super::intercept::Intercept>>,
}

/// The proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr} for the egress proxy: {source}; the address must belong to this host (with --egress proxy, the session network's gateway)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot read the egress proxy listener's address: {0}")]
    Listener(std::io::Error),
    #[error(transparent)]
    Resolver(#[from] ResolveError),
}

struct Shared {
    config: ProxyConfig,
    resolver: TokioResolver,
    log: Arc<Log>,
    cancel: CancellationToken,
}

/// A running proxy.
pub struct Proxy {
    addr: SocketAddr,
    cancel: CancellationToken,
    accept: tokio::task::JoinHandle<()>,
    permits: Arc<Semaphore>,
    max: usize,
    log: Arc<Log>,
}

impl Proxy {
    /// Binds `listen` (port 0: an ephemeral port) and serves until [`Proxy::shutdown`].
    pub async fn start(listen: SocketAddr, config: ProxyConfig, log: Log) -> Result<Proxy, ProxyError> {
        let listener = TcpListener::bind(listen).await.map_err(|source| ProxyError::Bind { addr: listen, source })?;
        Proxy::serve(listener, config, log)
    }

    /// Serves on a listener bound elsewhere — e.g. inside a sandbox's network namespace, where the
    /// sandboxed command can reach it while the proxy's own connections leave from the host's.
    pub fn serve(listener: TcpListener, config: ProxyConfig, log: Log) -> Result<Proxy, ProxyError> {
        let addr = listener.local_addr().map_err(ProxyError::Listener)?;
        let resolver = crate::egress::resolve::resolver(&config.resolver)?;
        let max = config.limits.max_connections.max(1);
        let permits = Arc::new(Semaphore::new(max));
        let cancel = CancellationToken::new();
        let log = Arc::new(log);
        let shared = Arc::new(Shared { config, resolver, log: log.clone(), cancel: cancel.clone() });
        let accept = tokio::spawn(accept_loop(listener, shared, permits.clone()));
        Ok(Proxy { addr, cancel, accept, permits, max, log })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counts so far.
    pub fn summary(&self) -> Summary {
        self.log.summary()
    }

    /// Stops accepting, ends every open connection (waiting at most two seconds for them to
    /// close) and returns the summary.
    pub async fn shutdown(self) -> Summary {
        self.cancel.cancel();
        let _ = self.accept.await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.permits.acquire_many(self.max as u32)).await;
        self.log.summary()
    }
}

/// Whether the client's first bytes are a relay request (peeked: nothing is consumed).
#[cfg(target_os = "linux")]
async fn relay_request(client: &TcpStream, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; 16];
    loop {
        let n = match tokio::time::timeout_at(deadline, client.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        match super::relay::is_relay_request(&buf[..n]) {
            Some(yes) => return yes,
            None if n == 0 => return false,
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, permits: Arc<Semaphore>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let cancel = shared.cancel.clone();
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = handle(stream, &shared) => {}
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                let _ = stream.try_write(&http::response("503 Service Unavailable", "too many connections"));
            }
        }
    }
}

/// What became of one connection, for the log.
struct Refusal {
    status: &'static str,
    reason: String,
}

fn refuse(status: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal { status, reason: reason.into() }
}

async fn handle(mut client: TcpStream, shared: &Shared) {
    let limits = shared.config.limits;
    #[cfg(target_os = "linux")]
    if let Some(relay) = &shared.config.relay {
        if relay_request(&client, limits.head_timeout).await {
            return super::relay::serve_one(client, relay, &shared.resolver, &shared.log).await;
        }
    }
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let head = tokio::time::timeout(limits.head_timeout, read_head(&mut client, &mut buf, limits.head)).await;
    let (request, len) = match head {
        Err(_) => {
            return reply_refused(
                &mut client,
                shared,
                None,
                refuse("408 Request Timeout", "no complete request head in time"),
            )
            .await
        }
        Ok(Err(None)) => return,
        Ok(Err(Some(e))) => {
            let status = e.status();
            return reply_refused(&mut client, shared, None, refuse(status, e.to_string())).await;
        }
        Ok(Ok(r)) => r,
    };
    let rest = buf.split_off(len);
    let (host, port) = (request.host().clone(), request.port());
    if !shared.config.ports.contains(&port) {
        return reply_refused(
            &mut client,
            shared,
            Some(&request),
            refuse("403 Forbidden", {
                let allowed: Vec<String> = shared.config.ports.iter().map(u16::to_string).collect();
                format!("port {port} is not allowed (allowed: {})", allowed.join(", "))
            }),
        )
        .await;
    }
    let rule = match shared.config.rules.decide(&host) {
        Decision::Allow(p) => p,
        d => return reply_refused(&mut client, shared, Some(&request), refuse("403 Forbidden", d.to_string())).await,
    };
    let addrs = match addresses(shared, &host).await {
        Ok(a) => a,
        Err(r) => return reply_refused(&mut client, shared, Some(&request), r).await,
    };
    let upstream = match connect(&addrs, port, limits.connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            let r = refuse("502 Bad Gateway", format!("allowed by {rule}, but cannot connect: {e}"));
            return reply_refused(&mut client, shared, Some(&request), r).await;
        }
    };
    match request {
        Request::Connect { .. } => {
            if client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_err() {
                return;
            }
            let mut hello = rest;
            let checked = tokio::time::timeout(limits.head_timeout, read_hello(&mut client, &mut hello)).await;
            let verdict = match checked {
                Err(_) => Err("no TLS ClientHello in time".to_string()),
                Ok(Err(None)) => return,
                Ok(Err(Some(e))) => Err(e.to_string()),
                Ok(Ok(sni)) => check_sni(&host, sni.as_deref()),
            };
            if let Err(reason) = verdict {
                // The tunnel is already open: a refusal is a closed connection.
                record(shared, Some(&request), false, reason);
                return;
            }
            #[cfg(target_os = "linux")]
            if let (Some(ic), Host::Name(name)) = (&shared.config.intercept, &host) {
                if ic.hosts.contains_key(name) {
                    let timeouts = (limits.head_timeout, limits.idle_timeout);
                    let rule = rule.to_string();
                    let t = super::intercept::Tunnel { client, hello, upstream };
                    return super::intercept::serve(t, (name, port), ic, &rule, &shared.log, timeouts).await;
                }
            }
            record(shared, Some(&request), true, format!("allow {rule}"));
            tunnel(client, upstream, &hello, limits.idle_timeout).await;
        }
        Request::Http { ref upstream_head, content_length, .. } => {
            record(shared, Some(&request), true, format!("allow {rule}"));
            forward(client, upstream, upstream_head, rest, content_length, limits.idle_timeout).await;
        }
    }
}

/// Reads until a complete head; `Err(None)` when the client went away.
async fn read_head(
    client: &mut TcpStream,
    buf: &mut Vec<u8>,
    limits: HeadLimits,
) -> Result<(Request, usize), Option<HeadError>> {
    loop {
        match http::parse(buf, limits) {
            Ok(Parsed::Complete { request, len }) => return Ok((request, len)),
            Err(e) => return Err(Some(e)),
            Ok(Parsed::Partial) => {}
        }
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await.map_err(|_| None)?;
        if n == 0 {
            return Err(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until a complete ClientHello; returns its SNI. `Err(None)` when the client went away.
async fn read_hello(client: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<String>, Option<sni::SniError>> {
    loop {
        match sni::parse(buf) {
            Ok(Hello::Complete { sni }) => return Ok(sni),
            Err(e) => return Err(Some(e)),
            Ok(Hello::Partial) => {}
        }
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await.map_err(|_| None)?;
        if n == 0 {
            return Err(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The SNI must name the CONNECT host. A ClientHello without SNI passes only for an IP-literal
/// CONNECT (clients send none for addresses); an IP-literal CONNECT was allowed by an explicit
/// IP/CIDR entry, so its SNI is not checked.
pub fn check_sni(host: &Host, sni: Option<&str>) -> Result<(), String> {
    match (host, sni) {
        (Host::Ip(_), _) => Ok(()),
        (Host::Name(n), Some(s)) if s == n => Ok(()),
        (Host::Name(n), Some(s)) => Err(format!("TLS server name {s} does not match the CONNECT host {n}")),
        (Host::Name(n), None) => Err(format!("TLS ClientHello for {n} has no server name")),
    }
}

/// The addresses to connect to: the literal, or the allowed answers for a name.
async fn addresses(shared: &Shared, host: &Host) -> Result<Vec<IpAddr>, Refusal> {
    let name = match host {
        Host::Ip(ip) => return Ok(vec![*ip]),
        Host::Name(n) => n,
    };
    let lookup =
        tokio::time::timeout(shared.config.resolver.timeout, shared.resolver.lookup_ip(format!("{name}."))).await;
    let all: Vec<IpAddr> = match lookup {
        Err(_) => return Err(refuse("502 Bad Gateway", format!("{name} did not resolve in time"))),
        Ok(Err(e)) => return Err(refuse("502 Bad Gateway", format!("{name} does not resolve: {e}"))),
        Ok(Ok(l)) => l.iter().collect(),
    };
    let ok: Vec<IpAddr> = all.iter().copied().filter(|ip| shared.config.rules.address_allowed(*ip)).collect();
    if ok.is_empty() {
        let shown: Vec<String> = all.iter().map(IpAddr::to_string).collect();
        return Err(refuse(
            "403 Forbidden",
            format!("{name} resolves to {} (private, loopback, link-local or denied; allow the address explicitly to open it)", shown.join(", ")),
        ));
    }
    Ok(ok)
}

async fn connect(addrs: &[IpAddr], port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let attempt = async {
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for ip in addrs {
            match TcpStream::connect(SocketAddr::new(*ip, port)).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")))
}

fn record(shared: &Shared, request: Option<&Request>, allowed: bool, reason: String) {
    let (target, host, method) = match request {
        Some(r) => (format!("{}:{}", r.host(), r.port()), r.host().to_string(), r.method().to_string()),
        None => ("-".to_string(), "-".to_string(), "-".to_string()),
    };
    shared.log.record(&Event { time: SystemTime::now(), allowed, target, host, method, reason });
}

async fn reply_refused(client: &mut TcpStream, shared: &Shared, request: Option<&Request>, r: Refusal) {
    let shown = match request {
        Some(req) => format!("{req}: {}", r.reason),
        None => r.reason.clone(),
    };
    record(shared, request, false, r.reason);
    let _ = client.write_all(&http::response(r.status, &shown)).await;
    let _ = client.shutdown().await;
    // Read what the client still sends (a request body) for a moment: closing with unread data
    // would reset the connection, and the client could lose the answer.
    let drain = async {
        let mut buf = [0u8; 8192];
        let mut total = 0;
        while total < 1 << 20 {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_must_name_the_connect_host() {
        let name = Host::Name("allowed.test".into());
        assert_eq!(check_sni(&name, Some("allowed.test")), Ok(()));
        assert_eq!(
            check_sni(&name, Some("other.test")),
            Err("TLS server name other.test does not match the CONNECT host allowed.test".into())
        );
        assert!(check_sni(&name, None).unwrap_err().contains("has no server name"));
        assert_eq!(check_sni(&Host::Ip("203.0.113.80".parse().unwrap()), None), Ok(()));
    }
}
