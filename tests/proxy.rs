//! The egress proxy on loopback, with real sockets: a test DNS server maps several names to the
//! same loopback address, where one test upstream listens — so only the proxy's name check can
//! tell them apart. Packets go only to 127.0.0.0/8.
#![cfg(unix)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codex_box::egress::{Inputs, ResolverSettings};
use codex_box::proxy::{Limits, Log, Proxy, ProxyConfig, Rules};
use support::dns_server::{TestDns, Zone};

/// One upstream on 127.0.0.1: plain HTTP requests get `200` with a body naming the Host header
/// and path it received; a connection starting with a TLS record is echoed back byte for byte.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// Every byte of every TLS-looking connection, in order.
    tls_bytes: Arc<Mutex<Vec<u8>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let tls_bytes = Arc::new(Mutex::new(Vec::new()));
        let (c, t) = (connections.clone(), tls_bytes.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let t = t.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut buf = vec![0u8; 65536];
                    let mut got = Vec::new();
                    loop {
                        let n = match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if buf[0] == 22 || got.first() == Some(&22) {
                            got.extend_from_slice(&buf[..n]);
                            t.lock().unwrap().extend_from_slice(&buf[..n]);
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                            continue;
                        }
                        got.extend_from_slice(&buf[..n]);
                        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&got[..end]).to_string();
                            let line = head.lines().next().unwrap_or("").to_string();
                            let host = head.lines().find_map(|l| l.strip_prefix("Host: ")).unwrap_or("-").to_string();
                            let body = format!(
                                "{line} | host={host} | connection={}",
                                head.to_ascii_lowercase().contains("connection: close")
                            );
                            let _ = write!(
                                s,
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            return;
                        }
                    }
                });
            }
        });
        Upstream { addr, connections, tls_bytes }
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    proxy: Option<Proxy>,
    up: Upstream,
    _dns: TestDns,
    log_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(limits: Limits) -> Fixture {
        let up = Upstream::start();
        let dns = TestDns::start(
            Zone::new(60)
                .addr("allowed.test", "127.0.0.1")
                .addr("other.test", "127.0.0.1")
                .addr("a.wild.test", "127.0.0.1")
                .addr("bad.wild.test", "127.0.0.1")
                .addr("wild.test", "127.0.0.1")
                .addr("apex.test", "127.0.0.1")
                .addr("x.apex.test", "127.0.0.1")
                .addr("private.test", "127.0.0.2"),
        );
        let flags: Vec<String> =
            ["allowed.test", "*.wild.test", "**.apex.test", "private.test", "127.0.0.1"].map(String::from).to_vec();
        let deny = vec!["bad.wild.test".to_string()];
        let rules = Rules::merge(&Inputs { flags: &flags, ..Inputs::default() }, &deny, &[]).unwrap();
        let config = ProxyConfig {
            rules,
            ports: vec![up.addr.port()],
            resolver: ResolverSettings { server: Some(dns.addr), tls: None, timeout: Duration::from_secs(3) },
            limits,
            #[cfg(target_os = "linux")]
            relay: None,
            #[cfg(target_os = "linux")]
            intercept: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("proxy/test.log");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let log = Log::file(&log_path, false).unwrap();
        let proxy = rt.block_on(Proxy::start("127.0.0.1:0".parse().unwrap(), config, log)).unwrap();
        Fixture { rt, proxy: Some(proxy), up, _dns: dns, log_path, _dir: dir }
    }

    fn addr(&self) -> SocketAddr {
        self.proxy.as_ref().unwrap().addr()
    }

    fn client(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Sends `req` and returns everything the proxy answers until it closes.
    fn exchange(&self, req: &[u8]) -> String {
        let mut s = self.client();
        s.write_all(req).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn get(&self, host: &str) -> String {
        self.exchange(
            format!("GET http://{host}:{}/path?q=1 HTTP/1.1\r\nHost: ignored.test\r\n\r\n", self.up.addr.port())
                .as_bytes(),
        )
    }

    /// CONNECT host, then the ClientHello; the proxy's reply head, and what came back through the
    /// tunnel (the upstream echoes) before it closed or went quiet.
    fn connect_tls(&self, host: &str, hello: &[u8]) -> (String, Vec<u8>) {
        let mut s = self.client();
        write!(s, "CONNECT {host}:{} HTTP/1.1\r\nHost: {host}\r\n\r\n", self.up.addr.port()).unwrap();
        let head = read_head(&mut s);
        if !head.starts_with("HTTP/1.1 200") {
            return (head, Vec::new());
        }
        s.write_all(hello).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        let mut back = vec![0u8; hello.len()];
        let mut got = 0;
        while got < back.len() {
            match s.read(&mut back[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        back.truncate(got);
        (head, back)
    }

    fn shutdown(&mut self) -> String {
        let summary = self.rt.block_on(self.proxy.take().unwrap().shutdown());
        summary.to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A ClientHello made by OpenSSL (Python's ssl module, memory BIOs, no network) for `sni`.
fn openssl_hello(sni: &str) -> Option<Vec<u8>> {
    let script = "import ssl,sys\nctx=ssl.create_default_context()\ni=ssl.MemoryBIO();o=ssl.MemoryBIO()\ns=ctx.wrap_bio(i,o,server_hostname=sys.argv[1])\ntry: s.do_handshake()\nexcept ssl.SSLWantReadError: pass\nsys.stdout.buffer.write(o.read())";
    let out = std::process::Command::new("python3").args(["-c", script, sni]).output().ok()?;
    (out.status.success() && out.stdout.first() == Some(&22)).then_some(out.stdout)
}

fn hello(sni: &str) -> Option<Vec<u8>> {
    let h = openssl_hello(sni);
    if h.is_none() {
        support::skip("python3 with the ssl module is needed to make a real ClientHello");
    }
    h
}

#[test]
fn two_names_on_one_address_are_told_apart_over_plain_http() {
    let mut f = Fixture::new(Limits::default());
    let ok = f.get("allowed.test");
    let port = f.up.addr.port();
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.ends_with(&format!("GET /path?q=1 HTTP/1.1 | host=allowed.test:{port} | connection=true")),
        "Host rewritten, Connection: close: {ok}"
    );
    let before = f.up.connections.load(Ordering::SeqCst);
    let no = f.get("other.test");
    assert!(no.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{no}");
    assert!(no.contains("other.test") && no.contains("not in the allowlist"), "{no}");
    assert_eq!(f.up.connections.load(Ordering::SeqCst), before, "the refused name never reached the upstream");
    let summary = f.shutdown();
    assert!(summary.starts_with("proxy: 1 allowed, 1 denied; denied most: other.test (1)"), "{summary}");
    let log = f.log();
    assert!(log.contains(&format!("\tallow\tallowed.test:{port}\tGET\tallow allowed.test\n")), "{log}");
    assert!(log.contains(&format!("\tdeny\tother.test:{port}\tGET\tnot in the allowlist\n")), "{log}");
}

#[test]
fn connect_is_decided_by_its_host_and_by_the_client_hello_sni() {
    let Some(good) = hello("allowed.test") else { return };
    let Some(lying) = hello("other.test") else { return };
    let mut f = Fixture::new(Limits::default());
    let (head, back) = f.connect_tls("allowed.test", &good);
    assert_eq!(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    assert_eq!(back, good, "the ClientHello went through the tunnel and the echo came back");

    let (head, _) = f.connect_tls("other.test", &lying);
    assert!(head.starts_with("HTTP/1.1 403 Forbidden"), "{head}");

    f.up.tls_bytes.lock().unwrap().clear();
    let (head, back) = f.connect_tls("allowed.test", &lying);
    assert!(head.starts_with("HTTP/1.1 200"), "the CONNECT host is allowed: {head}");
    assert!(back.is_empty(), "SNI mismatch: the tunnel is closed");
    assert!(f.up.tls_bytes.lock().unwrap().is_empty(), "no byte of the lying ClientHello reached the upstream");

    let (_, back) = f.connect_tls("allowed.test", &codex_box::proxy::sni::synthetic_hello(None, 512));
    assert!(back.is_empty(), "no SNI for a name: refused");
    let (_, back) = f.connect_tls("allowed.test", b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
    assert!(back.is_empty(), "not TLS: refused");
    // An IP-literal CONNECT allowed by an IP entry needs no SNI.
    let no_sni = codex_box::proxy::sni::synthetic_hello(None, 512);
    let (head, back) = f.connect_tls("127.0.0.1", &no_sni);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(back, no_sni);

    f.shutdown();
    let log = f.log();
    assert!(log.contains("TLS server name other.test does not match the CONNECT host allowed.test"), "{log}");
    assert!(log.contains("has no server name") && log.contains("did not start with a TLS handshake"), "{log}");
}

#[test]
fn wildcards_deny_over_allow_private_answers_and_ports() {
    let f = Fixture::new(Limits::default());
    let status = |host: &str| f.get(host).lines().next().unwrap_or("").to_string();
    assert_eq!(status("a.wild.test"), "HTTP/1.1 200 OK");
    assert_eq!(status("wild.test"), "HTTP/1.1 403 Forbidden", "*. is subdomains only");
    assert_eq!(status("bad.wild.test"), "HTTP/1.1 403 Forbidden", "deny beats allow");
    assert!(f.get("bad.wild.test").contains("deny bad.wild.test"));
    assert_eq!(status("apex.test"), "HTTP/1.1 200 OK");
    assert_eq!(status("x.apex.test"), "HTTP/1.1 200 OK");
    let private = f.get("private.test");
    assert!(
        private.starts_with("HTTP/1.1 403") && private.contains("resolves to 127.0.0.2 (private, loopback"),
        "{private}"
    );
    assert_eq!(status("127.0.0.1"), "HTTP/1.1 200 OK", "an explicit IP entry opens the literal");
    assert_eq!(status("127.0.0.3"), "HTTP/1.1 403 Forbidden");
    let port = f.up.addr.port() ^ 1;
    let other_port = f.exchange(format!("CONNECT allowed.test:{port} HTTP/1.1\r\n\r\n").as_bytes());
    assert!(other_port.contains(&format!("port {port} is not allowed")), "{other_port}");
    // A refused request with a body still gets its answer.
    let body = "x".repeat(200_000);
    let refused = f.exchange(
        format!(
            "POST http://other.test:{}/ HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            f.up.addr.port(),
            body.len()
        )
        .as_bytes(),
    );
    assert!(refused.starts_with("HTTP/1.1 403 Forbidden"), "{refused}");
    let unknown = f.get("nowhere.allowed.test");
    assert!(unknown.starts_with("HTTP/1.1 403"), "{unknown}");
}

#[test]
fn malformed_and_oversized_requests_are_refused_without_harming_a_tunnel() {
    let Some(good) = hello("allowed.test") else { return };
    let limits =
        Limits { head: codex_box::proxy::http::HeadLimits { max_head: 2048, max_headers: 16 }, ..Limits::default() };
    let f = Fixture::new(limits);
    // A tunnel that stays open while the bad requests come in.
    let mut t = f.client();
    write!(t, "CONNECT allowed.test:{} HTTP/1.1\r\n\r\n", f.up.addr.port()).unwrap();
    assert!(read_head(&mut t).starts_with("HTTP/1.1 200"));
    t.write_all(&good).unwrap();
    let mut back = vec![0u8; good.len()];
    t.read_exact(&mut back).unwrap();

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"\x00\x01garbage\r\n\r\n".to_vec(), "400 Bad Request"),
        (b"GET /relative HTTP/1.1\r\nHost: allowed.test\r\n\r\n".to_vec(), "400 Bad Request"),
        (b"CONNECT allowed.test HTTP/1.1\r\n\r\n".to_vec(), "400 Bad Request"),
        (
            format!("GET http://allowed.test/ HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(4096)).into_bytes(),
            "431 Request Header Fields Too Large",
        ),
        (
            format!("GET http://allowed.test/ HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(20)).into_bytes(),
            "431 Request Header Fields Too Large",
        ),
        (
            b"POST http://allowed.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            "411 Length Required",
        ),
    ];
    for (req, status) in cases {
        let answer = f.exchange(&req);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{status}: {answer}");
    }
    // Still alive, both ways.
    t.write_all(b"\x16more").unwrap();
    let mut more = [0u8; 5];
    t.read_exact(&mut more).unwrap();
    assert_eq!(&more, b"\x16more");
}

#[test]
fn the_connection_limit_refuses_the_next_one_and_frees_up() {
    let limits = Limits { max_connections: 3, ..Limits::default() };
    let mut f = Fixture::new(limits);
    // Permits are taken in accept order, so the fourth connection finds none left.
    let held: Vec<TcpStream> = (0..3).map(|_| f.client()).collect();
    let refused = f.get("allowed.test");
    assert!(refused.starts_with("HTTP/1.1 503 Service Unavailable"), "{refused}");
    drop(held);
    // The permits come back as the proxy sees the three connections close.
    let start = std::time::Instant::now();
    while !f.get("allowed.test").starts_with("HTTP/1.1 200 OK") {
        assert!(start.elapsed() < Duration::from_secs(10), "the limit did not free up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Shutdown ends an open tunnel and stops accepting.
    let mut open = f.client();
    write!(open, "CONNECT allowed.test:{} HTTP/1.1\r\n\r\n", f.up.addr.port()).unwrap();
    assert!(read_head(&mut open).starts_with("HTTP/1.1 200"));
    let addr = f.addr();
    let start = std::time::Instant::now();
    f.shutdown();
    assert!(start.elapsed() < Duration::from_secs(2), "shutdown does not wait for idle tunnels");
    let mut rest = Vec::new();
    assert!(matches!(open.read_to_end(&mut rest), Ok(0)), "the tunnel was closed");
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[test]
fn a_listener_bound_elsewhere_is_served() {
    let up = Upstream::start();
    let flags = vec!["127.0.0.1".to_string()];
    let rules = Rules::merge(&Inputs { flags: &flags, ..Inputs::default() }, &[], &[]).unwrap();
    let config = ProxyConfig {
        rules,
        ports: vec![up.addr.port()],
        resolver: ResolverSettings::default(),
        limits: Limits::default(),
        #[cfg(target_os = "linux")]
        relay: None,
        #[cfg(target_os = "linux")]
        intercept: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Proxy::serve(l, config, Log::memory(false)).unwrap()
    });
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    write!(s, "GET http://127.0.0.1:{}/x HTTP/1.1\r\n\r\n", up.addr.port()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert_eq!(rt.block_on(proxy.shutdown()).allowed, 1);
}

#[test]
fn an_idle_tunnel_and_a_slow_head_time_out() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(400),
        head_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let f = Fixture::new(limits);
    let mut slow = f.client();
    slow.write_all(b"CONNECT allowed.te").unwrap();
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408 Request Timeout"), "{out}");
    let mut t = f.client();
    write!(t, "CONNECT 127.0.0.1:{} HTTP/1.1\r\n\r\n", f.up.addr.port()).unwrap();
    assert!(read_head(&mut t).starts_with("HTTP/1.1 200"));
    t.write_all(&codex_box::proxy::sni::synthetic_hello(None, 512)).unwrap();
    let start = std::time::Instant::now();
    let mut sink = Vec::new();
    let _ = t.read_to_end(&mut sink);
    assert!(start.elapsed() < Duration::from_secs(3), "closed after the idle timeout");
}
