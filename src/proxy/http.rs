//! The request head a client sends to the proxy, parsed from bytes: pure and bounded.
//!
//! Accepted: `CONNECT host:port HTTP/1.x` (authority form) and absolute-form plain HTTP
//! (`GET http://host[:port]/path HTTP/1.x`). Tokenising is done by `httparse`; this module adds the
//! limits (head size, header count), the target parsing (no userinfo, no `https://` — TLS goes
//! through CONNECT — no origin-form: this is a proxy, not a server) and the rewrite of a plain HTTP
//! head for the upstream: origin-form request line, `Host` set to the target, hop-by-hop headers
//! and every header named in `Connection` dropped, `Connection: close` added.
//!
//! What it does not: read bodies. A request whose body is framed by `Transfer-Encoding` is refused
//! ([`HeadError::Chunked`]): the proxy only forwards bodies it can delimit (`Content-Length`), so
//! a second request can never be smuggled behind the first one to the same upstream.

use std::fmt;

use super::rules::Host;

/// Bounds of a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Bytes up to and including the blank line.
    pub max_head: usize,
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits { max_head: 16 * 1024, max_headers: 64 }
    }
}

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A tunnel to host:port.
    Connect { host: Host, port: u16 },
    /// A plain HTTP request to forward: the target, and the head to send upstream.
    Http { method: String, host: Host, port: u16, upstream_head: Vec<u8>, content_length: u64 },
}

impl Request {
    pub fn host(&self) -> &Host {
        match self {
            Request::Connect { host, .. } | Request::Http { host, .. } => host,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Request::Connect { port, .. } | Request::Http { port, .. } => *port,
        }
    }

    pub fn method(&self) -> &str {
        match self {
            Request::Connect { .. } => "CONNECT",
            Request::Http { method, .. } => method,
        }
    }
}

/// A head that cannot be used; each maps to an HTTP status for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request head longer than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    #[error("invalid target host {0:?}")]
    BadHost(String),
    #[error("only http:// URLs are forwarded (use CONNECT for https)")]
    Scheme,
    #[error("a request body framed by Transfer-Encoding is not forwarded over plain HTTP (use HTTPS)")]
    Chunked,
}

impl HeadError {
    /// The status line sent to the client.
    pub fn status(&self) -> &'static str {
        match self {
            HeadError::TooLarge(_) => "431 Request Header Fields Too Large",
            HeadError::TooManyHeaders(_) => "431 Request Header Fields Too Large",
            HeadError::Chunked => "411 Length Required",
            _ => "400 Bad Request",
        }
    }
}

/// The outcome of parsing what has been received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed (and allowed: the buffer is within the limits).
    Partial,
    /// A complete head of `len` bytes; anything after it is body or tunnel data.
    Complete { request: Request, len: usize },
}

/// Headers that describe the client–proxy connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8], limits: HeadLimits) -> Result<Parsed, HeadError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders(limits.max_headers)),
        Err(_) => return Err(HeadError::Malformed("not an HTTP/1.x request")),
    };
    let len = match status {
        httparse::Status::Partial if buf.len() >= limits.max_head => return Err(HeadError::TooLarge(limits.max_head)),
        httparse::Status::Partial => return Ok(Parsed::Partial),
        httparse::Status::Complete(len) if len > limits.max_head => return Err(HeadError::TooLarge(limits.max_head)),
        httparse::Status::Complete(len) => len,
    };
    let method = req.method.ok_or(HeadError::Malformed("no method"))?;
    let target = req.path.ok_or(HeadError::Malformed("no target"))?;
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = authority(target, None)?;
        return Ok(Parsed::Complete { request: Request::Connect { host, port }, len });
    }
    let rest = match target.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &target[7..],
        _ if target.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) => return Err(HeadError::Scheme),
        _ if target.starts_with('/') => {
            return Err(HeadError::Malformed("origin-form target: this is a proxy, send an absolute URL"))
        }
        _ => return Err(HeadError::Scheme),
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(split);
    let (host, port) = authority(auth, Some(80))?;
    let path = match path.split('#').next().unwrap_or("") {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };

    let mut content_length: Option<u64> = None;
    let mut dropped: Vec<String> = Vec::new();
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if name == "transfer-encoding" {
            return Err(HeadError::Chunked);
        }
        if name == "content-length" {
            let v = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok());
            match (v, content_length) {
                (None, _) => return Err(HeadError::Malformed("invalid Content-Length")),
                (Some(a), Some(b)) if a != b => return Err(HeadError::Malformed("conflicting Content-Length")),
                (Some(a), _) => content_length = Some(a),
            }
        }
        if name == "connection" || name == "proxy-connection" {
            for token in String::from_utf8_lossy(h.value).split(',') {
                dropped.push(token.trim().to_ascii_lowercase());
            }
        }
    }
    let mut head = Vec::with_capacity(len + 64);
    head.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: ").as_bytes());
    head.extend_from_slice(host_header(&host, port).as_bytes());
    head.extend_from_slice(b"\r\n");
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&name.as_str()) || dropped.contains(&name) {
            continue;
        }
        head.extend_from_slice(h.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(h.value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Parsed::Complete {
        request: Request::Http {
            method: method.to_string(),
            host,
            port,
            upstream_head: head,
            content_length: content_length.unwrap_or(0),
        },
        len,
    })
}

/// `host:port`, `[v6]:port`, or a bare host when `default_port` is given. No userinfo.
fn authority(s: &str, default_port: Option<u16>) -> Result<(Host, u16), HeadError> {
    let bad = || HeadError::BadHost(s.chars().take(256).collect());
    if s.contains('@') {
        return Err(bad());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        (h, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match (port, default_port) {
        (Some(p), _) => p.parse::<u16>().ok().filter(|n| *n != 0 && n.to_string() == p).ok_or_else(bad)?,
        (None, Some(d)) => d,
        (None, None) => return Err(bad()),
    };
    let host = Host::parse(host).ok_or_else(bad)?;
    if matches!(host, Host::Ip(std::net::IpAddr::V6(_))) && !s.starts_with('[') {
        return Err(bad());
    }
    Ok((host, port))
}

fn host_header(host: &Host, port: u16) -> String {
    if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// A short response from the proxy itself (errors, refusals); the connection is closed after it.
pub fn response(status: &str, reason: &str) -> Vec<u8> {
    let body = format!("codex-box proxy: {reason}\n");
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.method(), self.host(), self.port())
    }
}

/// Reads a request head from `r`: the bytes up to and including the blank line, and whatever came
/// after it in the same reads. `None` when the peer closes or fails first, the head grows past
/// `max_head`, or `timeout` passes.
pub async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    max_head: usize,
    timeout: std::time::Duration,
) -> Option<(Vec<u8>, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(8192);
    let end = tokio::time::timeout(timeout, async {
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(i + 4);
            }
            if buf.len() > max_head {
                return None;
            }
            let mut chunk = [0u8; 8192];
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .ok()??;
    let rest = buf.split_off(end);
    Some((buf, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (Request, usize) {
        match parse(s.as_bytes(), HeadLimits::default()).unwrap() {
            Parsed::Complete { request, len } => (request, len),
            Parsed::Partial => panic!("partial: {s:?}"),
        }
    }

    fn err(s: &[u8]) -> HeadError {
        parse(s, HeadLimits::default()).unwrap_err()
    }

    #[test]
    fn connect_targets() {
        let (r, len) = ok("CONNECT Allowed.Test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n\x16\x03\x01");
        assert_eq!(r, Request::Connect { host: Host::Name("allowed.test".into()), port: 443 });
        assert_eq!(len, 61);
        let (r, _) = ok("CONNECT [2001:db8::1]:8443 HTTP/1.0\r\n\r\n");
        assert_eq!(r.to_string(), "CONNECT [2001:db8::1]:8443");
        for bad in [
            "CONNECT allowed.test HTTP/1.1\r\n\r\n",
            "CONNECT a@b.test:443 HTTP/1.1\r\n\r\n",
            "CONNECT b.test:0 HTTP/1.1\r\n\r\n",
            "CONNECT b.test:0443 HTTP/1.1\r\n\r\n",
            "CONNECT b.test:+443 HTTP/1.1\r\n\r\n",
            "CONNECT 2001:db8::1:443 HTTP/1.1\r\n\r\n",
            "CONNECT [b.test]:443 HTTP/1.1\r\n\r\n",
            "CONNECT *.b.test:443 HTTP/1.1\r\n\r\n",
            "CONNECT b.test:99999 HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(err(bad.as_bytes()), HeadError::BadHost(_)), "{bad:?}");
        }
    }

    #[test]
    fn plain_http_is_rewritten_for_the_upstream() {
        let (r, _) = ok("GET http://Allowed.Test/simple/pkg/?x=1#frag HTTP/1.1\r\nHost: other.test\r\nUser-Agent: pip\r\nProxy-Connection: keep-alive\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\nProxy-Authorization: Basic eA==\r\nAccept: */*\r\n\r\n");
        let Request::Http { method, host, port, upstream_head, content_length } = r else { panic!() };
        assert_eq!((method.as_str(), host, port, content_length), ("GET", Host::Name("allowed.test".into()), 80, 0));
        assert_eq!(
            String::from_utf8(upstream_head).unwrap(),
            "GET /simple/pkg/?x=1 HTTP/1.1\r\nHost: allowed.test\r\nUser-Agent: pip\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let (r, _) = ok("POST http://a.test:8080?q HTTP/1.0\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello");
        let Request::Http { upstream_head, content_length, port, .. } = r else { panic!() };
        assert_eq!((content_length, port), (5, 8080));
        assert!(String::from_utf8(upstream_head).unwrap().starts_with("POST /?q HTTP/1.1\r\nHost: a.test:8080\r\n"));
    }

    #[test]
    fn refusals_carry_a_status() {
        assert_eq!(err(b"GET https://a.test/ HTTP/1.1\r\n\r\n"), HeadError::Scheme);
        assert_eq!(err(b"GET ftp://a.test/ HTTP/1.1\r\n\r\n"), HeadError::Scheme);
        assert!(matches!(err(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), HeadError::Malformed(_)));
        assert!(matches!(err(b"GET http://u:p@a.test/ HTTP/1.1\r\n\r\n"), HeadError::BadHost(_)));
        assert_eq!(
            err(b"POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status(),
            "411 Length Required"
        );
        assert!(matches!(
            err(b"POST http://a.test/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            HeadError::Malformed(_)
        ));
        assert!(matches!(err(b"POST http://a.test/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), HeadError::Malformed(_)));
        assert!(matches!(err(b"\x16\x03\x01\x02\x00\x01"), HeadError::Malformed(_)));
        assert!(matches!(err(b"GET http://a.test/ HTTP/1.1\r\nBad Header\r\n\r\n"), HeadError::Malformed(_)));
    }

    #[test]
    fn limits_are_enforced_before_the_end_of_the_head() {
        let limits = HeadLimits { max_head: 64, max_headers: 2 };
        assert_eq!(parse(b"CONNECT a.test:443 HTTP/1.1\r\n", limits).unwrap(), Parsed::Partial);
        let long = format!("CONNECT a.test:443 HTTP/1.1\r\nX: {}", "y".repeat(64));
        assert_eq!(parse(long.as_bytes(), limits).unwrap_err(), HeadError::TooLarge(64));
        let many = "CONNECT a.test:443 HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(parse(many.as_bytes(), limits).unwrap_err(), HeadError::TooManyHeaders(2));
        assert_eq!(HeadError::TooLarge(1).status(), "431 Request Header Fields Too Large");
    }

    #[test]
    fn responses_are_complete_and_close() {
        let r = String::from_utf8(response("403 Forbidden", "other.test is not allowed")).unwrap();
        assert_eq!(r, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 43\r\nConnection: close\r\n\r\ncodex-box proxy: other.test is not allowed\n");
    }

    #[test]
    fn random_and_truncated_bytes_never_panic() {
        let seeds = vec![
            b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n".to_vec(),
            b"GET http://a.test:8080/x?y HTTP/1.1\r\nHost: b\r\nConnection: a, b\r\nContent-Length: 3\r\n\r\nabc"
                .to_vec(),
            b"CONNECT [2001:db8::1]:443 HTTP/1.0\r\n\r\n".to_vec(),
        ];
        let limits = HeadLimits { max_head: 256, max_headers: 8 };
        crate::proxy::fuzz::run(
            20_000,
            |bytes| {
                if let Ok(Parsed::Complete { len, request }) = parse(bytes, limits) {
                    assert!(len <= bytes.len() && len <= limits.max_head);
                    assert!(request.port() != 0);
                }
            },
            &seeds,
        );
    }
}
