//! TLS termination for the hosts secrets are bound to (`--secret`, [`crate::secrets`]), and only
//! for them: after the proxy allowed a `CONNECT host:port` and checked the ClientHello's server
//! name, a bound host's tunnel is served here instead of being piped. The client gets the
//! session CA's certificate for that host; the proxy opens its own TLS connection to the host
//! (verified against the system bundle and the session's `--ca-cert`s), forwards one request
//! with the secret's header added, and the response back; then the connection closes
//! (`Connection: close`: each request comes on a new CONNECT).
//!
//! [`rewrite`] is pure: the request head as it goes up, or why not. A request whose `Host` is
//! not the bound host (domain fronting) or is not origin-form is refused, so the secret only ever
//! travels to the host it is bound to. A client that does not accept the session's certificate
//! (it pins certificates, or uses its own CA bundle) fails its handshake: there is no fallback to
//! an uninspected tunnel, and the log says why.
//!
//! What it does not do: HTTP/2 to the client (only `http/1.1` is offered), keep-alive, or look at
//! bodies and responses (the bytes after the head pass as they are, a WebSocket included).

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::log::{Event, Log};
use super::pipe::Activity;

/// The longest request head accepted from the client.
const MAX_HEAD: usize = 64 * 1024;

/// One header the proxy adds for a bound host.
#[derive(Clone, PartialEq, Eq)]
pub struct Injection {
    /// The secret's name (for the log).
    pub secret: String,
    pub header: String,
    /// The whole header value: never shown by `Debug`, never logged.
    pub value: String,
}

impl fmt::Debug for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injection").field("secret", &self.secret).field("header", &self.header).finish()
    }
}

/// What the proxy serves for one bound host.
pub struct BoundHost {
    pub server: Arc<rustls::ServerConfig>,
    pub injections: Vec<Injection>,
}

/// Every bound host, and the trust for the upstream side.
pub struct Intercept {
    pub hosts: HashMap<String, BoundHost>,
    pub upstream: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for Intercept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hosts: Vec<&String> = self.hosts.keys().collect();
        hosts.sort();
        f.debug_struct("Intercept").field("hosts", &hosts).finish()
    }
}

/// A bound host's TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the proxy cannot serve TLS for {host}: {message}")]
pub struct InterceptError {
    pub host: String,
    pub message: String,
}

/// The server side for `host`: its certificate and key (PEM), offering HTTP/1.1 only.
pub fn server_config(host: &str, cert_pem: &str, key_pem: &str) -> Result<rustls::ServerConfig, InterceptError> {
    let e = |message: String| InterceptError { host: host.to_string(), message };
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|x| e(x.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|x| e(x.to_string()))?;
    let provider = Arc::new(hickory_resolver::net::tls::default_provider());
    let mut c = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|x| e(x.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|x| e(x.to_string()))?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(c)
}

/// One request, as it goes up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub head: Vec<u8>,
    pub method: String,
    /// A WebSocket (or other) upgrade: both directions stay open after the response head.
    pub upgrade: bool,
}

/// Why a request was not forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: &'static str,
    pub reason: String,
    pub method: String,
}

/// Headers never forwarded from the client: the ones this sets itself and hop-by-hop ones.
const HOP: &[&str] = &["connection", "proxy-connection", "keep-alive", "proxy-authorization"];

/// The request head `head` (complete) to the bound `host` (CONNECT port `port`) with `injections`
/// added — each replacing whatever the client sent under that name — or why not.
pub fn rewrite(head: &[u8], host: &str, port: u16, injections: &[Injection]) -> Result<Rewritten, Refused> {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = req.parse(head);
    let method = req.method.unwrap_or("-").to_string();
    let refuse = |status, reason: String| Refused { status, reason, method: method.clone() };
    match parsed {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(refuse("400 Bad Request", "not an HTTP/1 request".into())),
    }
    let target = req.path.unwrap_or("");
    if !target.starts_with('/') {
        return Err(refuse("400 Bad Request", format!("a request to {host} must be origin-form (/path)")));
    }
    let hosts: Vec<String> = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
        .collect();
    let default_port = format!("{host}:{port}");
    match hosts.as_slice() {
        [] => {}
        [h] if h.trim_end_matches('.') == host || *h == default_port => {}
        [h] => {
            return Err(refuse(
                "421 Misdirected Request",
                format!("Host {h} is not {host}, the host this connection and its secret are for"),
            ))
        }
        _ => return Err(refuse("400 Bad Request", "more than one Host header".into())),
    }
    let has = |name: &str| req.headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));
    if has("transfer-encoding") && has("content-length") {
        return Err(refuse("400 Bad Request", "both Transfer-Encoding and Content-Length".into()));
    }
    let upgrade = has("upgrade")
        && req.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("connection")
                && String::from_utf8_lossy(h.value).split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    let version = if req.version == Some(0) { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut out = format!("{method} {target} {version}\r\n").into_bytes();
    if hosts.is_empty() {
        out.extend_from_slice(
            format!("Host: {}\r\n", if port == 443 { host.to_string() } else { default_port }).as_bytes(),
        );
    }
    for h in req.headers.iter() {
        let drop = HOP.iter().any(|d| h.name.eq_ignore_ascii_case(d))
            || injections.iter().any(|i| h.name.eq_ignore_ascii_case(&i.header));
        if !drop {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    for i in injections {
        out.extend_from_slice(format!("{}: {}\r\n", i.header, i.value).as_bytes());
    }
    out.extend_from_slice(if upgrade { b"Connection: Upgrade\r\n\r\n" } else { b"Connection: close\r\n\r\n" });
    Ok(Rewritten { head: out, method, upgrade })
}

/// The client's stream with the ClientHello the proxy already read put back in front.
struct Replay {
    first: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.at < self.first.len() {
            let n = (self.first.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.first[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How one intercepted connection went: an event for the log.
fn event(host: &str, port: u16, allowed: bool, method: &str, reason: String) -> Event {
    Event {
        time: SystemTime::now(),
        allowed,
        target: format!("{host}:{port}"),
        host: host.to_string(),
        method: method.to_string(),
        reason,
    }
}

/// An allowed CONNECT tunnel: `hello` is the ClientHello already read from `client`, `upstream`
/// the TCP connection the proxy made to an allowed address of the host.
pub struct Tunnel {
    pub client: TcpStream,
    pub hello: Vec<u8>,
    pub upstream: TcpStream,
}

/// Serves one allowed CONNECT tunnel to the bound `host` (allowed by `rule`).
pub async fn serve(
    Tunnel { client, hello, upstream }: Tunnel,
    (host, port): (&str, u16),
    intercept: &Intercept,
    rule: &str,
    log: &Log,
    (head_timeout, idle): (Duration, Duration),
) {
    let Some(bound) = intercept.hosts.get(host) else { return };
    let acceptor = tokio_rustls::TlsAcceptor::from(bound.server.clone());
    let replay = Replay { first: hello, at: 0, inner: client };
    let mut tls = match tokio::time::timeout(head_timeout, acceptor.accept(replay)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            log.record(&event(host, port, false, "CONNECT", format!(
                "secret not added: TLS with the client failed ({e}); it does not accept the session's certificate for {host} (a client that pins certificates or brings its own CA bundle), and codex-box does not fall back to an uninspected tunnel for a host a secret is bound to"
            )));
            return;
        }
        Err(_) => {
            log.record(&event(host, port, false, "CONNECT", "no TLS handshake from the client in time".into()));
            return;
        }
    };
    let Some((buf, rest)) = super::http::read_head(&mut tls, MAX_HEAD, head_timeout).await else { return };
    let up = match rewrite(&buf, host, port, &bound.injections) {
        Ok(r) => r,
        Err(r) => {
            log.record(&event(host, port, false, &r.method, format!("secret not added: {}", r.reason)));
            let _ = tls.write_all(&super::http::response(r.status, &r.reason)).await;
            let _ = tls.shutdown().await;
            return;
        }
    };
    let name = match ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(_) => return,
    };
    let connector = tokio_rustls::TlsConnector::from(intercept.upstream.clone());
    let upstream = match tokio::time::timeout(head_timeout, connector.connect(name, upstream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = format!("secret not added: TLS with {host} failed: {e}");
            log.record(&event(host, port, false, &up.method, reason.clone()));
            let _ = tls.write_all(&super::http::response("502 Bad Gateway", &reason)).await;
            let _ = tls.shutdown().await;
            return;
        }
        Err(_) => {
            log.record(&event(host, port, false, &up.method, format!("TLS with {host} timed out")));
            return;
        }
    };
    let names: Vec<String> =
        bound.injections.iter().map(|i| format!("secret {} added ({})", i.secret, i.header)).collect();
    log.record(&event(host, port, true, &up.method, format!("allow {rule}; {}", names.join(", "))));
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let (mut cr, mut cw) = tokio::io::split(tls);
    if uw.write_all(&up.head).await.is_err() || uw.write_all(&rest).await.is_err() {
        return;
    }
    let activity = Activity::new();
    let up_dir = async {
        let _ = copy(&mut cr, &mut uw, &activity).await;
        let _ = uw.shutdown().await;
        std::future::pending::<()>().await
    };
    let down = async {
        let _ = copy(&mut ur, &mut cw, &activity).await;
        let _ = cw.shutdown().await;
    };
    // The response ends the exchange (the upstream closes after it, or, upgraded, when it is
    // done); nothing moving for `idle` ends it too.
    tokio::select! {
        _ = up_dir => {}
        _ = down => {}
        _ = activity.idle(idle) => {}
    }
}

/// Copies until end of stream, marking activity.
async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(r: &mut R, w: &mut W, a: &Activity) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        a.touch();
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Vec<Injection> {
        vec![Injection { secret: "GH".into(), header: "Authorization".into(), value: "Bearer ghp_REAL".into() }]
    }

    fn up(head: &str) -> String {
        String::from_utf8(rewrite(head.as_bytes(), "api.bound.test", 443, &token()).unwrap().head).unwrap()
    }

    fn refused(head: &str) -> &'static str {
        rewrite(head.as_bytes(), "api.bound.test", 443, &token()).unwrap_err().status
    }

    #[test]
    fn the_secret_replaces_what_the_client_sent_and_the_connection_closes_after_one_request() {
        let h = up("GET /user HTTP/1.1\r\nHost: api.bound.test\r\nauthorization: Bearer placeholder\r\n\
                    Accept: */*\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(
            h,
            "GET /user HTTP/1.1\r\nHost: api.bound.test\r\nAccept: */*\r\nAuthorization: Bearer ghp_REAL\r\n\
             Connection: close\r\n\r\n"
        );
        // The Host may carry the port, and is added for HTTP/1.0.
        assert!(up("POST /x HTTP/1.1\r\nHost: API.bound.test:443\r\nContent-Length: 2\r\n\r\n")
            .contains("Content-Length: 2\r\n"));
        assert!(up("GET / HTTP/1.0\r\n\r\n").starts_with("GET / HTTP/1.0\r\nHost: api.bound.test\r\n"));
        let ws = up("GET /ws HTTP/1.1\r\nHost: api.bound.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        assert!(
            ws.ends_with("Authorization: Bearer ghp_REAL\r\nConnection: Upgrade\r\n\r\n")
                && ws.contains("Upgrade: websocket")
        );
        assert!(!format!("{:?}", token()).contains("REAL"), "Debug hides the value");
    }

    #[test]
    fn the_secret_goes_only_to_its_host_on_a_well_formed_request() {
        // Domain fronting: another Host inside the bound host's TLS.
        assert_eq!(refused("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"), "421 Misdirected Request");
        assert_eq!(refused("GET / HTTP/1.1\r\nHost: api.bound.test.evil.test\r\n\r\n"), "421 Misdirected Request");
        assert_eq!(refused("GET / HTTP/1.1\r\nHost: api.bound.test:8443\r\n\r\n"), "421 Misdirected Request");
        assert_eq!(refused("GET / HTTP/1.1\r\nHost: api.bound.test\r\nHost: evil.test\r\n\r\n"), "400 Bad Request");
        assert_eq!(refused("GET http://evil.test/ HTTP/1.1\r\nHost: api.bound.test\r\n\r\n"), "400 Bad Request");
        assert_eq!(
            refused(
                "POST / HTTP/1.1\r\nHost: api.bound.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            "400 Bad Request"
        );
        assert_eq!(refused("\x16\x03\x01garbage\r\n\r\n"), "400 Bad Request");
    }
}
