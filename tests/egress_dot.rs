//! DNS-over-TLS for the host's own resolution, against a real TLS server this test makes: a test CA
//! and a certificate for `dot.test` (the `openssl` CLI), a small python3 TLS server on 127.0.0.1
//! that reads length-prefixed DNS queries and forwards them over UDP to the test DNS server, writing
//! the answers back length-prefixed. Only loopback and names this test serves.
//!
//! Proves: the zone's answer comes back through TLS (library and CLI, flags and config file); a
//! wrong name, an unknown CA or plain DNS to the TLS port get no answer — and the DNS server behind
//! the TLS server is never asked, so nothing went around TLS.
#![cfg(target_os = "linux")]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use codex_box::egress::resolve::LookupFailure;
use codex_box::egress::{resolve_all, DnsTls, ResolverSettings};
use support::dns_server::{TestDns, Zone};

const NAME: &str = "name.test";
const ADDR: &str = "198.18.96.10";
/// A name the sandbox's proxy refuses once resolved, showing the address it got (no connection).
const LOOPBACK_NAME: &str = "loopback.test";

/// Reads length-prefixed DNS messages over TLS and relays each to the UDP server of argv[3]. With
/// argv[4], plain DNS over UDP on the same port is relayed to that server (a decoy).
const DOT_SERVER_PY: &str = r#"
import socket, ssl, sys, threading
cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
port = srv.getsockname()[1]

def decoy(upstream):
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    plain.bind(("127.0.0.1", port))
    while True:
        query, peer = plain.recvfrom(65535)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        u.sendto(query, ("127.0.0.1", upstream))
        plain.sendto(u.recvfrom(65535)[0], peer)

if len(sys.argv) > 4:
    threading.Thread(target=decoy, args=(int(sys.argv[4]),), daemon=True).start()
print(port, flush=True)

def exactly(c, n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk:
            return None
        b += chunk
    return b

def serve(raw):
    try:
        c = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as e:
        print("handshake failed:", e, file=sys.stderr, flush=True)
        raw.close()
        return
    with c:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        while True:
            head = exactly(c, 2)
            query = head and exactly(c, int.from_bytes(head, "big"))
            if not query:
                return
            u.sendto(query, ("127.0.0.1", upstream))
            answer, _ = u.recvfrom(65535)
            c.sendall(len(answer).to_bytes(2, "big") + answer)

while True:
    raw, _ = srv.accept()
    threading.Thread(target=serve, args=(raw,), daemon=True).start()
"#;

/// A test PKI: `ca.pem` issued `server.pem` for `dot.test`; `other-ca.pem` (another CA's) issued
/// nothing here.
struct Pki {
    main: support::pki::Pki,
    other: support::pki::Pki,
}

impl Pki {
    fn new() -> Pki {
        let main = support::pki::Pki::new("codex-box test DoT CA", &["dot.test"]);
        let other = support::pki::Pki::new("codex-box other test CA", &["unused.test"]);
        Pki { main, other }
    }

    fn path(&self, name: &str) -> PathBuf {
        match name {
            "other-ca.pem" => self.other.path("ca.pem"),
            _ => self.main.path(name),
        }
    }
}

/// The python3 DoT relay in front of a test DNS server; killed on drop.
struct DotServer {
    child: Child,
    addr: SocketAddr,
    dns: TestDns,
    /// Answers plain DNS on the same port, with [`DECOY_ADDR`].
    decoy: Option<TestDns>,
}

/// What the decoy answers for [`NAME`]: seeing it means a query went out as plain DNS.
const DECOY_ADDR: &str = "198.18.96.66";

impl DotServer {
    fn start(pki: &Pki) -> DotServer {
        Self::spawn(pki, None)
    }

    /// With a decoy: plain DNS over UDP to the same port is answered too, differently.
    fn with_decoy(pki: &Pki) -> DotServer {
        Self::spawn(pki, Some(TestDns::start(Zone::new(60).addr(NAME, DECOY_ADDR))))
    }

    fn spawn(pki: &Pki, decoy: Option<TestDns>) -> DotServer {
        let dns = TestDns::start(Zone::new(60).addr(NAME, ADDR).addr(LOOPBACK_NAME, "127.0.0.2"));
        let mut child = Command::new("python3")
            .args(["-c", DOT_SERVER_PY])
            .arg(pki.path("server.pem"))
            .arg(pki.path("server.key"))
            .arg(dns.addr.port().to_string())
            .args(decoy.as_ref().map(|d| d.addr.port().to_string()))
            .stdout(Stdio::piped())
            // Its handshake failures are expected here; the assertions name what the client saw.
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("DoT server did not start: {line:?}"));
        DotServer { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), dns, decoy }
    }

    /// Queries the DNS server behind the TLS server received.
    fn relayed(&self) -> usize {
        self.dns.queries.load(Ordering::SeqCst)
    }
}

impl Drop for DotServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dot(server: &DotServer, name: &str, roots: Vec<PathBuf>) -> ResolverSettings {
    ResolverSettings {
        server: Some(server.addr),
        tls: Some(DnsTls { name: name.into(), extra_roots: roots }),
        timeout: Duration::from_secs(2),
    }
}

async fn lookup(settings: &ResolverSettings) -> codex_box::egress::NameResolution {
    resolve_all(&[NAME.to_string()], settings).await.unwrap().names.remove(0)
}

#[tokio::test]
async fn the_answer_comes_back_over_tls() {
    let pki = Pki::new();
    let server = DotServer::start(&pki);
    let settings = dot(&server, "dot.test", vec![pki.path("ca.pem")]);
    let r = resolve_all(&[NAME.to_string()], &settings).await.unwrap();
    assert_eq!(r.names[0].addrs, [ADDR.parse::<std::net::IpAddr>().unwrap()], "{r:?}");
    assert_eq!(r.names[0].min_ttl, Some(Duration::from_secs(60)));
    assert_eq!(r.resolver, format!("DNS-over-TLS server {} (certificate for dot.test)", server.addr));
    assert!(server.relayed() >= 1, "the answer came through the relay");
    // The proxy's long-lived resolver takes the same settings.
    let resolver = codex_box::egress::resolve::resolver(&settings).unwrap();
    let ips: Vec<_> = resolver.lookup_ip(format!("{NAME}.")).await.unwrap().iter().collect();
    assert_eq!(ips, [ADDR.parse::<std::net::IpAddr>().unwrap()]);
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_without_a_plain_dns_fallback() {
    let pki = Pki::new();
    let server = DotServer::start(&pki);
    let n = lookup(&dot(&server, "other.test", vec![pki.path("ca.pem")])).await;
    assert!(n.addrs.is_empty(), "{n:?}");
    let Some(LookupFailure::Failed(msg)) = &n.error else { panic!("{n:?}") };
    assert!(
        msg.starts_with(
            "DNS-over-TLS handshake failed: invalid peer certificate: certificate not valid for name \"other.test\""
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with(
            "(the server's certificate must be valid for other.test and issued by a system CA or one from --ca-cert / CODEX_BOX_CA_CERTS)"
        ),
        "{msg}"
    );
    assert_eq!(server.relayed(), 0, "no query may reach DNS around TLS");
}

#[tokio::test]
async fn a_server_whose_ca_is_not_trusted_fails() {
    let pki = Pki::new();
    let server = DotServer::start(&pki);
    // The system's CAs only, then the system's plus a CA that did not issue the certificate.
    for roots in [vec![], vec![pki.path("other-ca.pem")]] {
        let n = lookup(&dot(&server, "dot.test", roots.clone())).await;
        assert!(n.addrs.is_empty(), "{roots:?}: {n:?}");
        let Some(LookupFailure::Failed(msg)) = &n.error else { panic!("{roots:?}: {n:?}") };
        assert!(
            msg.starts_with("DNS-over-TLS handshake failed: invalid peer certificate: UnknownIssuer"),
            "{roots:?}: {msg}"
        );
    }
    assert_eq!(server.relayed(), 0);
}

#[tokio::test]
async fn plain_dns_to_the_tls_port_gets_no_answer() {
    let pki = Pki::new();
    let server = DotServer::start(&pki);
    let plain = ResolverSettings { server: Some(server.addr), tls: None, timeout: Duration::from_secs(2) };
    let r = resolve_all(&[NAME.to_string()], &plain).await.unwrap();
    assert!(r.names[0].addrs.is_empty(), "{r:?}");
    assert!(r.verdict(false).is_err(), "{r:?}");
    assert_eq!(server.relayed(), 0);
}

/// A port that answers plain DNS as well: a TLS failure still gets no address, so nothing fell back
/// to plain DNS; the decoy's answer to a plain query shows it would have been seen.
#[tokio::test]
async fn no_fallback_to_plain_dns_even_where_it_would_be_answered() {
    let pki = Pki::new();
    let server = DotServer::with_decoy(&pki);
    let decoy = server.decoy.as_ref().unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    for bad in [dot(&server, "other.test", vec![pki.path("ca.pem")]), dot(&server, "dot.test", vec![])] {
        let n = lookup(&bad).await;
        assert!(n.addrs.is_empty() && matches!(n.error, Some(LookupFailure::Failed(_))), "{n:?}");
    }
    assert_eq!(decoy.queries.load(Ordering::SeqCst), 0, "no plain query was sent");
    assert_eq!(lookup(&dot(&server, "dot.test", vec![pki.path("ca.pem")])).await.addrs, [ip(ADDR)]);
    let plain = ResolverSettings { server: Some(server.addr), tls: None, timeout: Duration::from_secs(2) };
    assert_eq!(lookup(&plain).await.addrs, [ip(DECOY_ADDR)], "the decoy answers plain DNS");
}

#[test]
fn a_ca_file_that_is_not_pem_stops_before_any_query() {
    let pki = Pki::new();
    std::fs::write(pki.path("not-pem.crt"), b"\x30\x82 DER, not PEM").unwrap();
    let settings = ResolverSettings {
        server: Some("127.0.0.1:853".parse().unwrap()),
        tls: Some(DnsTls { name: "dot.test".into(), extra_roots: vec![pki.path("not-pem.crt")] }),
        timeout: Duration::from_secs(1),
    };
    let e = codex_box::egress::resolve::check(&settings).unwrap_err().to_string();
    assert!(
        e.contains("not-pem.crt cannot be used as a CA for the DNS-over-TLS server: there is no certificate"),
        "{e}"
    );
}

/// `codex-box egress --json` through DoT: the flags with --ca-cert, then the project's config file
/// with CODEX_BOX_CA_CERTS; a wrong name is an error naming the resolver.
#[test]
fn the_cli_resolves_through_dot_from_flags_and_from_the_config_file() {
    let pki = Pki::new();
    let server = DotServer::start(&pki);
    let p = support::Project::new();
    let wd = p.wd.to_str().unwrap().to_string();
    let (addr, ca) = (server.addr.to_string(), pki.path("ca.pem").to_str().unwrap().to_string());
    let addresses = |out: &std::process::Output| -> Vec<String> {
        assert!(out.status.success(), "{}", support::text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let n = v["names"].as_array().unwrap().iter().find(|n| n["name"] == NAME).unwrap().clone();
        n["addresses"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
    };
    let flags = ["egress", "--json", "--work_dir", &wd, "--allow-domain", NAME, "--dns-server", &addr];
    let out = p.cmd(&[&flags[..], &["--dns-tls-name", "dot.test", "--ca-cert", &ca]].concat()).output().unwrap();
    assert_eq!(addresses(&out), [ADDR]);

    let out = p.cmd(&[&flags[..], &["--dns-tls-name", "other.test", "--ca-cert", &ca]].concat()).output().unwrap();
    let err = support::text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("no allowlisted name could be resolved by DNS-over-TLS server {addr}")), "{err}");

    let out = p.cmd(&["egress", "--json", "--work_dir", &wd, "--dns-tls-name", "dot.test"]).output().unwrap();
    let err = support::text(&out.stderr);
    assert!(!out.status.success() && err.contains("--dns-tls-name needs --dns-server"), "{err}");

    std::fs::create_dir_all(p.wd.join(".codex")).unwrap();
    std::fs::write(
        p.wd.join(".codex/codex-box.toml"),
        format!("[egress]\nallow = [\"{NAME}\"]\ndns_server = \"{addr}\"\ndns_tls_name = \"dot.test\"\n"),
    )
    .unwrap();
    let out = p.cmd(&["egress", "--json", "--work_dir", &wd]).env("CODEX_BOX_CA_CERTS", &ca).output().unwrap();
    assert_eq!(addresses(&out), [ADDR]);
    let out = p.cmd(&["egress", "--json", "--work_dir", &wd]).output().unwrap();
    let err = support::text(&out.stderr);
    assert!(!out.status.success() && err.contains("invalid peer certificate: UnknownIssuer"), "without the CA: {err}");
    assert!(server.relayed() >= 2);
}

/// A CONNECT through the sandbox's proxy (HTTPS_PROXY), printing the proxy's reply.
const CONNECT_PY: &str = r#"
import os, socket, sys, urllib.parse
u = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
s = socket.create_connection((u.hostname, u.port), timeout=10)
s.sendall(f"CONNECT {sys.argv[1]}:443 HTTP/1.1\r\nHost: {sys.argv[1]}:443\r\n\r\n".encode())
print(s.recv(4096).decode(errors="replace"))
"#;

/// `codex-box sandbox --allow-domain`: the proxy resolves through DoT, trusting CODEX_BOX_CA_CERTS;
/// with a wrong name it gets no address.
#[test]
fn the_sandbox_proxy_resolves_through_dot() {
    let bin = env!("CARGO_BIN_EXE_codex-box");
    let works = Command::new(bin).args(["sandbox", "--", "true"]).output().unwrap();
    if !works.status.success() {
        support::skip(&format!("the kernel refuses the sandbox: {}", String::from_utf8_lossy(&works.stderr)));
        return;
    }
    let pki = Pki::new();
    let server = DotServer::start(&pki);
    let home = tempfile::tempdir().unwrap();
    let run = |tls_name: &str| {
        let out = Command::new(bin)
            .args(["sandbox", "--allow-domain", LOOPBACK_NAME, "--dns-server", &server.addr.to_string()])
            .args(["--dns-tls-name", tls_name, "--", "python3", "-c", CONNECT_PY, LOOPBACK_NAME])
            .env("HOME", home.path())
            .env("CODEX_BOX_CA_CERTS", pki.path("ca.pem"))
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let out = run("dot.test");
    assert!(out.contains(&format!("{LOOPBACK_NAME} resolves to 127.0.0.2")), "{out}");
    let out = run("other.test");
    assert!(out.contains(&format!("{LOOPBACK_NAME} does not resolve")) && !out.contains("127.0.0.2"), "{out}");
}

/// A container session resolves its allowlist through DoT: the name is pinned in its /etc/hosts.
#[test]
fn a_container_session_pins_what_dot_answered() {
    if !support::docker_ready("DNS-over-TLS container session") {
        return;
    }
    let pki = Pki::new();
    let server = DotServer::start(&pki);
    let p = support::Project::new();
    let (addr, ca) = (server.addr.to_string(), pki.path("ca.pem").to_str().unwrap().to_string());
    let flags = ["--dns-server", &addr, "--dns-tls-name", "dot.test", "--ca-cert", &ca, "--allow-domain", NAME];
    let out = p.run_sh(&flags, &format!("grep -w {NAME} /etc/hosts"));
    assert_eq!(
        support::text(&out.stdout).split_whitespace().collect::<Vec<_>>(),
        [ADDR, NAME],
        "{}",
        support::text(&out.stderr)
    );
    assert!(support::containers_for(&p.wd).is_empty());
}
