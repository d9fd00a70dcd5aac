//! The egress proxy against a direct connection, on loopback: one large download (256 MiB) as fast
//! as loopback goes (CPU-bound: through the proxy every byte crosses loopback twice, and client,
//! server and proxy share the machine's cores), one paced like a 1 Gbit/s link, and 200 small
//! requests, each on a new connection, through a CONNECT tunnel (the HTTPS path: a
//! ClientHello goes first and its SNI is checked) and through plain HTTP forwarding. Prints
//! throughput, per-request latency and the ratios (targets: >= 90 % of direct throughput, <= 1 ms
//! added per request). Everything runs on 127.0.0.1; names come from the test DNS server.

#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use codex_box::egress::{Inputs, ResolverSettings};
use codex_box::proxy::{sni, Limits, Log, Proxy, ProxyConfig, Rules};
use support::dns_server::{TestDns, Zone};

const BIG: u64 = 256 << 20;
const PACED: u64 = 64 << 20;
const SMALL_BODY: &[u8] = b"{\"name\":\"demo\",\"version\":\"1.0.0\"}\n";
const REQUESTS: usize = 200;

/// A server on 127.0.0.1: a connection that starts with a TLS record has it skipped (the
/// benchmark's stand-in for a handshake) and is then served like plain HTTP: `GET /big` streams
/// 256 MiB, anything else gets a small body; one request per connection.
fn server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let head = loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    got.extend_from_slice(&buf[..n]);
                    if got.first() == Some(&22) {
                        if let Ok(sni::Hello::Complete { .. }) = sni::parse(&got) {
                            let len = 5 + u16::from_be_bytes([got[3], got[4]]) as usize;
                            got.drain(..len);
                        } else {
                            continue;
                        }
                    }
                    if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        break String::from_utf8_lossy(&got[..end]).to_string();
                    }
                };
                if head.contains(" /paced ") {
                    // A 1 Gbit/s-class link: 8 MiB every 64 ms (125 MiB/s), 64 MiB in all.
                    let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {PACED}\r\nConnection: close\r\n\r\n");
                    let chunk = vec![b'x'; 8 << 20];
                    let start = Instant::now();
                    for i in 0..PACED >> 23 {
                        let due = start + Duration::from_millis(64 * i);
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        if s.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                } else if head.contains(" /big ") {
                    let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\nConnection: close\r\n\r\n");
                    let chunk = vec![b'x'; 1 << 20];
                    for _ in 0..BIG >> 20 {
                        if s.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                } else {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        SMALL_BODY.len()
                    );
                    let _ = s.write_all(SMALL_BODY);
                }
            });
        }
    });
    addr
}

#[derive(Clone, Copy)]
enum Path {
    Direct,
    Tunnel,
    Forward,
}

/// One request; returns the number of body-and-head bytes received.
fn request(path: Path, server: SocketAddr, proxy: SocketAddr, target: &str) -> u64 {
    let host = format!("bench.test:{}", server.port());
    let hello = sni::synthetic_hello(Some("bench.test"), 16384);
    let mut s = match path {
        Path::Direct => TcpStream::connect(server).unwrap(),
        _ => TcpStream::connect(proxy).unwrap(),
    };
    s.set_nodelay(true).unwrap();
    match path {
        Path::Direct => {
            s.write_all(&hello).unwrap();
            write!(s, "GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        }
        Path::Tunnel => {
            write!(s, "CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(s.read(&mut b).unwrap(), 1, "proxy closed the CONNECT");
                head.push(b[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
            s.write_all(&hello).unwrap();
            write!(s, "GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        }
        Path::Forward => write!(s, "GET http://{host}{target} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap(),
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    total
}

/// User + system CPU time of this process so far.
fn cpu_seconds() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let server = server();
    let dns = TestDns::start(Zone::new(300).addr("bench.test", "127.0.0.1"));
    let flags = vec!["bench.test".to_string(), "127.0.0.1".to_string()];
    let rules = Rules::merge(&Inputs { flags: &flags, ..Inputs::default() }, &[], &[]).unwrap();
    let config = ProxyConfig {
        rules,
        ports: vec![server.port()],
        resolver: ResolverSettings { server: Some(dns.addr), tls: None, timeout: Duration::from_secs(5) },
        limits: Limits::default(),
        #[cfg(target_os = "linux")]
        relay: None,
        #[cfg(target_os = "linux")]
        intercept: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let proxy = rt.block_on(Proxy::start("127.0.0.1:0".parse().unwrap(), config, Log::memory(false))).unwrap();
    let paddr = proxy.addr();
    // Warm up: the resolver's cache, the page cache, the allocator.
    for p in [Path::Direct, Path::Tunnel, Path::Forward] {
        assert!(request(p, server, paddr, "/small") > 0);
    }

    println!(
        "large download: {} MiB, median of 3 (and best); CPU = the whole process (client, server, proxy) per GiB",
        BIG >> 20
    );
    let mut direct_mbps = 0.0;
    let mut direct_cpu = 0.0;
    for (name, p) in [("direct", Path::Direct), ("CONNECT tunnel", Path::Tunnel), ("plain HTTP forward", Path::Forward)]
    {
        let runs: Vec<(f64, f64)> = (0..3)
            .map(|_| {
                let (t, cpu) = (Instant::now(), cpu_seconds());
                let n = request(p, server, paddr, "/big");
                assert!(n > BIG, "{name}: short download ({n} bytes)");
                ((BIG >> 20) as f64 / t.elapsed().as_secs_f64(), (cpu_seconds() - cpu) * (1 << 30) as f64 / BIG as f64)
            })
            .collect();
        let mbps = median(runs.iter().map(|r| r.0).collect());
        let best = runs.iter().map(|r| r.0).fold(0.0, f64::max);
        let cpu = median(runs.iter().map(|r| r.1).collect());
        if matches!(p, Path::Direct) {
            (direct_mbps, direct_cpu) = (mbps, cpu);
            println!("  {name:<20} {mbps:8.0} MiB/s [best {best:.0}]  CPU {cpu:.3} s/GiB");
        } else {
            println!(
                "  {name:<20} {mbps:8.0} MiB/s [best {best:.0}]  ({:.0} % of direct)  CPU {cpu:.3} s/GiB (proxy's share: +{:.3} s/GiB)",
                100.0 * mbps / direct_mbps,
                cpu - direct_cpu
            );
        }
    }

    println!("paced download: {} MiB from a server sending 125 MiB/s (a 1 Gbit/s-class link)", PACED >> 20);
    let mut direct_paced = 0.0;
    for (name, p) in [("direct", Path::Direct), ("CONNECT tunnel", Path::Tunnel), ("plain HTTP forward", Path::Forward)]
    {
        let t = Instant::now();
        let n = request(p, server, paddr, "/paced");
        assert!(n > PACED, "{name}: short download ({n} bytes)");
        let mbps = (PACED >> 20) as f64 / t.elapsed().as_secs_f64();
        if matches!(p, Path::Direct) {
            direct_paced = mbps;
            println!("  {name:<20} {mbps:8.1} MiB/s");
        } else {
            println!("  {name:<20} {mbps:8.1} MiB/s  ({:.0} % of direct)", 100.0 * mbps / direct_paced);
        }
    }

    println!("{REQUESTS} small requests, a new connection each; best of 5 rounds (median in brackets)");
    let mut direct_ms = (0.0, 0.0);
    for (name, p) in [("direct", Path::Direct), ("CONNECT tunnel", Path::Tunnel), ("plain HTTP forward", Path::Forward)]
    {
        let rounds: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..REQUESTS {
                    assert!(request(p, server, paddr, "/small") > 0);
                }
                t.elapsed().as_secs_f64() * 1000.0 / REQUESTS as f64
            })
            .collect();
        let best = rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let med = median(rounds);
        if matches!(p, Path::Direct) {
            direct_ms = (best, med);
            println!("  {name:<20} {best:7.3} ms/request [{med:.3}]");
        } else {
            println!(
                "  {name:<20} {best:7.3} ms/request [{med:.3}]  (+{:.3} ms added [+{:.3}])",
                best - direct_ms.0,
                med - direct_ms.1
            );
        }
    }
    let summary = rt.block_on(proxy.shutdown());
    println!("{summary}");
}
