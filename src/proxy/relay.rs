//! The API relay: the one place a session's API key lives. Codex in the session is pointed at it
//! (`http://<companion>:3130/v1`) with a placeholder key; the relay lets through only the API paths
//! Codex needs, replaces the `Authorization` header with the real key, and forwards over TLS to the
//! real upstream, verifying its certificate (the companion's CA bundle and the session's
//! `--ca-cert`s). Responses (server-sent events, a WebSocket after an upgrade) come back as they are.
//!
//! [`rewrite`] is pure: which request goes up, and exactly what head it carries. One request per
//! connection (`Connection: close` upstream); a request body only by `Content-Length`; anything
//! else the client sends is never forwarded with the key.

#[cfg(target_os = "linux")]
use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::time::{Duration, SystemTime};

#[cfg(target_os = "linux")]
use tokio::io::{AsyncReadExt, AsyncWriteExt};
#[cfg(target_os = "linux")]
use tokio::net::{TcpListener, TcpStream};

#[cfg(target_os = "linux")]
use super::log::{Event, Log};

/// The path prefix Codex is given (its base URL is `http://<relay>/v1`).
pub const PREFIX: &str = "/v1";
/// The longest request head accepted.
#[cfg(target_os = "linux")]
const MAX_HEAD: usize = 64 * 1024;

/// Where the relay forwards: `https://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    /// The upstream's path prefix (`/v1` for OpenAI's API), without a trailing slash.
    pub prefix: String,
}

impl Upstream {
    /// Parses an `https://` base URL; plain `http://` is refused (the key would travel in clear).
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let rest = url.strip_prefix("https://").ok_or_else(|| {
            format!("the API base URL {url:?} is not https://; codex-box forwards the API key over TLS only")
        })?;
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("the API base URL {url:?} has no plain host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
                Ok(p) => (h, p),
                Err(_) => return Err(format!("the API base URL {url:?} has a bad port")),
            },
            _ => (authority, 443),
        };
        let prefix = format!("/{}", path.trim_matches('/'));
        let prefix = if prefix == "/" { String::new() } else { prefix };
        Ok(Upstream { host: host.trim_start_matches('[').trim_end_matches(']').to_lowercase(), port, prefix })
    }

    /// `host` or `host:port` for a `Host` header and the log.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    Forward {
        /// The head sent upstream, with the real key.
        head: Vec<u8>,
        /// Request-body bytes to forward (`Content-Length`).
        body_len: u64,
        /// A WebSocket upgrade: both directions are piped after the head.
        upgrade: bool,
        method: String,
        /// The path as requested (for the log).
        path: String,
    },
    Refuse {
        status: &'static str,
        reason: String,
        method: String,
    },
}

/// The API paths Codex uses, after the prefix: the Responses API (and its sub-resources such as
/// compaction) and the model list.
fn allowed(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or(path);
    // Plain segments only: no dot segments, escapes or empty segments an upstream could normalise
    // into another path.
    let plain = p.chars().all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c)) && !p.contains("//");
    plain && (p == "/responses" || p.starts_with("/responses/") || p == "/models")
}

/// Headers never forwarded from the client: the ones the relay sets itself, hop-by-hop ones, and
/// any credential the client made up.
const DROPPED: &[&str] = &[
    "host",
    "authorization",
    "proxy-authorization",
    "proxy-connection",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "content-length",
    "upgrade",
    "openai-organization",
    "openai-project",
    "cookie",
];

/// The request head `head` (complete, ending in an empty line) as it goes upstream, or why not.
pub fn rewrite(head: &[u8], up: &Upstream, key: &str) -> Rewrite {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut req = httparse::Request::new(&mut headers);
    let refuse = |status, reason: &str, method: &str| Rewrite::Refuse {
        status,
        reason: reason.to_string(),
        method: method.to_string(),
    };
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return refuse("400 Bad Request", "not an HTTP request", "-"),
    }
    let method = req.method.unwrap_or("-").to_string();
    let path = req.path.unwrap_or("").to_string();
    if method != "GET" && method != "POST" {
        return refuse("405 Method Not Allowed", "only GET and POST reach the API", &method);
    }
    let Some(rest) = path.strip_prefix(PREFIX).filter(|r| allowed(r)) else {
        return refuse("403 Forbidden", &format!("{path} is not an API path Codex uses"), &method);
    };
    let value = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if value("transfer-encoding").is_some() {
        return refuse("411 Length Required", "a request body needs Content-Length", &method);
    }
    let body_len = match value("content-length").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return refuse("400 Bad Request", "bad Content-Length", &method),
    };
    let upgrade = method == "GET"
        && value("upgrade").as_deref() == Some("websocket")
        && value("connection").is_some_and(|c| c.split(',').any(|t| t.trim() == "upgrade"));
    let mut out =
        format!("{method} {}{rest} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n", up.prefix, up.authority());
    for h in req.headers.iter() {
        if DROPPED.iter().any(|d| h.name.eq_ignore_ascii_case(d)) {
            continue;
        }
        let v = String::from_utf8_lossy(h.value);
        if v.contains(['\r', '\n']) {
            return refuse("400 Bad Request", "a header value holds a line break", &method);
        }
        out.push_str(&format!("{}: {v}\r\n", h.name));
    }
    if body_len > 0 || method == "POST" {
        out.push_str(&format!("Content-Length: {body_len}\r\n"));
    }
    out.push_str(if upgrade { "Upgrade: websocket\r\nConnection: Upgrade\r\n" } else { "Connection: close\r\n" });
    out.push_str("\r\n");
    Rewrite::Forward { head: out.into_bytes(), body_len, upgrade, method, path }
}

#[cfg(target_os = "linux")]
/// Everything the relay serves with.
#[derive(Clone)]
pub struct RelayConfig {
    pub upstream: Upstream,
    /// The upstream's addresses, resolved by codex-box on the host (empty: resolve here).
    pub addrs: Vec<std::net::IpAddr>,
    pub key: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub resolver: crate::egress::ResolverSettings,
}

#[cfg(target_os = "linux")]
impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig").field("upstream", &self.upstream).field("key", &"<hidden>").finish()
    }
}

/// Whether a request head starting with `start` is origin-form to the relay's prefix
/// (`GET /v1/…`, `POST /v1/…`): the relay's, not the proxy's (which serves absolute-form and
/// CONNECT only). `None` while too little has arrived to tell.
pub fn is_relay_request(start: &[u8]) -> Option<bool> {
    let want: [&[u8]; 2] = [b"GET /v1/", b"POST /v1/"];
    if want.iter().any(|w| start.starts_with(w)) {
        return Some(true);
    }
    if want.iter().any(|w| w.starts_with(start)) {
        return None;
    }
    Some(false)
}

#[cfg(target_os = "linux")]
/// Serves one client connection of the relay (from a listener shared with the proxy).
pub async fn serve_one(client: TcpStream, config: &RelayConfig, resolver: &hickory_resolver::TokioResolver, log: &Log) {
    handle(client, config, resolver, log).await
}

#[cfg(target_os = "linux")]
/// Serves the relay on `listener` until the task is dropped; each request's decision goes to `log`
/// (that the key was added — never the key).
pub async fn serve(
    listener: TcpListener,
    config: RelayConfig,
    log: Arc<Log>,
) -> Result<(), crate::egress::ResolveError> {
    let resolver = crate::egress::resolve::resolver(&config.resolver)?;
    let shared = Arc::new((config, resolver, log));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let shared = shared.clone();
            tokio::spawn(async move {
                let (config, resolver, log) = &*shared;
                handle(client, config, resolver, log).await;
            });
        }
    });
    Ok(())
}

#[cfg(target_os = "linux")]
fn event(up: &Upstream, allowed: bool, method: &str, reason: String) -> Event {
    Event {
        time: SystemTime::now(),
        allowed,
        target: format!("{}:{}", up.host, up.port),
        host: up.host.clone(),
        method: method.to_string(),
        reason,
    }
}

#[cfg(target_os = "linux")]
async fn handle(mut client: TcpStream, config: &RelayConfig, resolver: &hickory_resolver::TokioResolver, log: &Log) {
    let up = &config.upstream;
    let Some((buf, rest)) = super::http::read_head(&mut client, MAX_HEAD, Duration::from_secs(30)).await else {
        return;
    };
    let (head, body_len, upgrade, method, path) = match rewrite(&buf, up, &config.key) {
        Rewrite::Forward { head, body_len, upgrade, method, path } => (head, body_len, upgrade, method, path),
        Rewrite::Refuse { status, reason, method } => {
            log.record(&event(up, false, &method, format!("relay: {reason}")));
            let _ = client.write_all(&super::http::response(status, &reason)).await;
            return;
        }
    };
    let upstream = match connect(up, config, resolver).await {
        Ok(s) => s,
        Err(e) => {
            log.record(&event(up, false, &method, format!("relay: {path}: cannot reach the API: {e}")));
            let _ = client
                .write_all(&super::http::response("502 Bad Gateway", &format!("cannot reach the API: {e}")))
                .await;
            return;
        }
    };
    log.record(&event(up, true, &method, format!("relay: {path}, API key added")));
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let (mut cr, mut cw) = client.into_split();
    if uw.write_all(&head).await.is_err() {
        return;
    }
    let up_dir = async {
        if upgrade {
            let _ = uw.write_all(&rest).await;
            let _ = tokio::io::copy(&mut cr, &mut uw).await;
        } else {
            let first = (rest.len() as u64).min(body_len) as usize;
            let _ = uw.write_all(&rest[..first]).await;
            let _ = tokio::io::copy(&mut (&mut cr).take(body_len - first as u64), &mut uw).await;
            let _ = uw.flush().await;
        }
    };
    let down = async {
        let _ = tokio::io::copy(&mut ur, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    // The response ends the exchange (the upstream closes after it); a WebSocket ends with either side.
    if upgrade {
        tokio::select! {
            _ = up_dir => {}
            _ = down => {}
        }
    } else {
        tokio::join!(up_dir, down);
    }
}

#[cfg(target_os = "linux")]
/// A TLS connection to the upstream, its certificate verified for its name.
async fn connect(
    up: &Upstream,
    config: &RelayConfig,
    resolver: &hickory_resolver::TokioResolver,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let addrs: Vec<std::net::IpAddr> = match up.host.parse() {
        Ok(ip) => vec![ip],
        Err(_) if !config.addrs.is_empty() => config.addrs.clone(),
        Err(_) => {
            let fqdn = format!("{}.", up.host);
            let lookup = tokio::time::timeout(Duration::from_secs(10), resolver.lookup_ip(fqdn)).await;
            match lookup {
                Ok(Ok(l)) => l.iter().collect(),
                Ok(Err(e)) => return Err(format!("{} does not resolve: {e}", up.host)),
                Err(_) => return Err(format!("{} did not resolve in time", up.host)),
            }
        }
    };
    let mut last = format!("{} has no address", up.host);
    for ip in addrs {
        let tcp = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect((ip, up.port))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                last = format!("{ip}:{}: {e}", up.port);
                continue;
            }
            Err(_) => {
                last = format!("{ip}:{}: timed out", up.port);
                continue;
            }
        };
        let name = rustls::pki_types::ServerName::try_from(up.host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(config.tls.clone());
        return match tokio::time::timeout(Duration::from_secs(10), tls.connect(name, tcp)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(format!("TLS with {}: {e}", up.host)),
            Err(_) => Err(format!("TLS with {} timed out", up.host)),
        };
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Upstream {
        Upstream::parse("https://api.openai.com/v1").unwrap()
    }

    fn forward(head: &str) -> (String, u64, bool) {
        match rewrite(head.as_bytes(), &up(), "sk-REAL") {
            Rewrite::Forward { head, body_len, upgrade, .. } => (String::from_utf8(head).unwrap(), body_len, upgrade),
            r => panic!("{head}: {r:?}"),
        }
    }

    fn refused(head: &str) -> String {
        match rewrite(head.as_bytes(), &up(), "sk-REAL") {
            Rewrite::Refuse { status, .. } => status.to_string(),
            r => panic!("{head}: {r:?}"),
        }
    }

    #[test]
    fn upstream_urls_are_https_hosts_with_a_prefix() {
        assert_eq!(up(), Upstream { host: "api.openai.com".into(), port: 443, prefix: "/v1".into() });
        let u = Upstream::parse("https://GW.corp.test:8443/openai/v1/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.prefix.as_str()), ("gw.corp.test", 8443, "/openai/v1"));
        assert_eq!(u.authority(), "gw.corp.test:8443");
        assert_eq!(Upstream::parse("https://h.test").unwrap().prefix, "");
        for bad in ["http://api.openai.com/v1", "https://", "https://u@h.test/", "https://h.test:x/", "api.openai.com"]
        {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_replaces_whatever_the_client_sent_and_only_the_api_paths_go_up() {
        let (head, len, upgrade) = forward(
            "POST /v1/responses HTTP/1.1\r\nHost: 172.17.0.5:3130\r\nAuthorization: Bearer codex-box-placeholder\r\n\
             Content-Type: application/json\r\nContent-Length: 12\r\nConnection: keep-alive\r\nCookie: a=b\r\n\r\n",
        );
        assert_eq!(
            head,
            "POST /v1/responses HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer sk-REAL\r\n\
             Content-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
        );
        assert_eq!((len, upgrade), (12, false));
        assert!(head.matches("Authorization").count() == 1 && !head.contains("placeholder"));
        forward("POST /v1/responses/compact HTTP/1.1\r\nContent-Length: 2\r\n\r\n");
        forward("GET /v1/models?client_version=0.171.0 HTTP/1.1\r\n\r\n");
        for path in [
            "/v1/files",
            "/v1/responsesX",
            "/v2/responses",
            "/responses",
            "/v1/../v1/files",
            "/v1/models/x",
            "/v1/responses/../files",
            "/v1/responses/%2e%2e/files",
            "/v1/responses//x",
        ] {
            assert_eq!(refused(&format!("GET {path} HTTP/1.1\r\n\r\n")), "403 Forbidden", "{path}");
        }
        assert_eq!(refused("DELETE /v1/responses/x HTTP/1.1\r\n\r\n"), "405 Method Not Allowed");
        assert_eq!(refused("POST /v1/responses HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), "411 Length Required");
        assert_eq!(refused("POST /v1/responses HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), "400 Bad Request");
        assert_eq!(refused("garbage\r\n\r\n"), "400 Bad Request");
    }

    #[test]
    fn relay_requests_are_told_from_proxy_requests_by_their_first_bytes() {
        assert_eq!(is_relay_request(b"POST /v1/responses HTTP/1.1"), Some(true));
        assert_eq!(is_relay_request(b"GET /v1/models"), Some(true));
        assert_eq!(is_relay_request(b"PO"), None);
        assert_eq!(is_relay_request(b""), None);
        assert_eq!(is_relay_request(b"CONNECT a.test:443 HTTP/1.1"), Some(false));
        assert_eq!(is_relay_request(b"GET http://a.test/ HTTP/1.1"), Some(false));
        assert_eq!(is_relay_request(b"GET /etc/passwd HTTP/1.1"), Some(false));
    }

    #[test]
    fn a_websocket_upgrade_keeps_its_handshake_headers() {
        let (head, _, upgrade) = forward(
            "GET /v1/responses HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert!(upgrade);
        assert!(
            head.contains("Sec-WebSocket-Key: abc\r\n")
                && head.ends_with("Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        );
        assert!(
            head.starts_with("GET /v1/responses HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer sk-REAL\r\n")
        );
    }
}
