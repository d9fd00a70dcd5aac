//! `--secret NAME=HOST` end to end: the proxy adds the secret as a header on HTTPS requests to
//! the bound host only, through a CA made for the session; the session holds no trace of it.
//!
//! Only hosts this test creates: its own Docker network (198.18.105.0/24) with one HTTPS test host
//! (its own test CA) that answers for two names from the test's own DNS server on the network's
//! gateway — api.bound.test (the secret is bound to it) and other.test (allowed, not bound) — and
//! records the `Host` and `Authorization` of every request that reaches it.
#![cfg(target_os = "linux")]

mod support;

use support::dns_server::{TestDns, Zone};
use support::docker_net::{TestHost, TestNet};
use support::pki::Pki;
use support::*;

const BOUND: &str = "api.bound.test";
const OTHER: &str = "other.test";
/// The secret's value on the host. The searches in the session spell it so that their own command
/// lines do not match (`tok-SECRE[T]-7731`).
const VALUE: &str = "tok-SECRET-7731";

/// The test host: HTTPS on 443, one JSON line per request in /srv/log/requests.jsonl.
const RECORDER_PY: &str = r#"
import http.server, json, ssl, threading
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        rec = {"host": self.headers.get("Host"), "path": self.path, "auth": self.headers.get_all("Authorization") or []}
        with lock:
            with open("/srv/log/requests.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        body = ("hello from " + str(self.headers.get("Host"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/srv/server.pem", "/srv/server.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

struct SecretNet {
    net: TestNet,
    srv: tempfile::TempDir,
    pki: Pki,
    dns: TestDns,
}

impl SecretNet {
    fn new(tag: &str, v4: &str) -> SecretNet {
        let pki = Pki::new("codex-box test secrets CA", &[BOUND, OTHER]);
        let srv = tempfile::tempdir().unwrap();
        std::fs::write(srv.path().join("recorder.py"), RECORDER_PY).unwrap();
        for f in ["server.pem", "server.key"] {
            std::fs::copy(pki.path(f), srv.path().join(f)).unwrap();
        }
        std::fs::create_dir(srv.path().join("log")).unwrap();
        let mut net = TestNet::new("cbx-secret", tag, v4, None);
        net.add(TestHost::new(10, &["python3", "/srv/recorder.py"]).bind(srv.path().to_str().unwrap(), "/srv"));
        let host = format!("{v4}.10");
        let dns = TestDns::start_on(Zone::new(60).addr(BOUND, &host).addr(OTHER, &host), &format!("{v4}.1"));
        net.wait_for(10, &[443], 30);
        SecretNet { net, srv, pki, dns }
    }

    /// The requests that reached the test host: (host, path, Authorization values).
    fn requests(&self) -> Vec<(String, String, Vec<String>)> {
        let text = std::fs::read_to_string(self.srv.path().join("log/requests.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let auth = v["auth"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
                (v["host"].as_str().unwrap_or("").to_string(), v["path"].as_str().unwrap().to_string(), auth)
            })
            .collect()
    }

    fn args(&self) -> Vec<String> {
        let dns = self.dns.addr.to_string();
        let ca = self.pki.path("ca.pem");
        [
            "--network",
            &self.net.name,
            "--egress",
            "proxy",
            "--dns-server",
            &dns,
            "--allow-domain",
            BOUND,
            "--allow-domain",
            OTHER,
            "--ca-cert",
            ca.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// Inside the session: requests to both hosts, a fronting attempt, a client that brings its own
/// CA bundle (as a pinning client would), the certificates' issuers, the search for the secret
/// beside a planted marker, and the session's CA bundle.
const SESSION: &str = r#"
echo "BOUND $(curl -sS --max-time 10 https://api.bound.test/bound 2>&1)"
echo "OTHER $(curl -sS --max-time 10 https://other.test/other 2>&1)"
echo "REPLACED $(curl -sS --max-time 10 -H 'Authorization: Bearer made-up' https://api.bound.test/replaced 2>&1)"
echo "FRONT $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Host: other.test' https://api.bound.test/front)"
echo "ISSUER-BOUND $(curl -sv -o /dev/null --max-time 10 https://api.bound.test/issuer 2>&1 | grep -o 'issuer: .*' | head -1)"
echo "ISSUER-OTHER $(curl -sv -o /dev/null --max-time 10 https://other.test/issuer 2>&1 | grep -o 'issuer: .*' | head -1)"
if curl -s -o /dev/null --max-time 10 --cacert "$TESTCA" https://api.bound.test/pinned; then echo PINNED-BOUND-OK; else echo PINNED-BOUND-FAILED; fi
if curl -s -o /dev/null --max-time 10 --cacert "$TESTCA" https://other.test/pinned; then echo PINNED-OTHER-OK; else echo PINNED-OTHER-FAILED; fi
echo plant-MARKER-5150 > /tmp/planted
PLANTED=plant-MARKER-5150 sleep 30 &
sleep 0.3
w='/proc/[0-9]*/environ /proc/[0-9]*/cmdline /codex_home /home /run /etc /tmp /app'
if grep -rsqa 'tok-SECRE[T]-7731' $w 2>/dev/null; then echo SECRET-FOUND; else echo SECRET-ABSENT; fi
if grep -rsqa 'plant-MARKE[R]-5150' /proc/[0-9]*/environ 2>/dev/null; then echo MARKER-IN-ENVIRON; fi
if grep -rsqa 'plant-MARKE[R]-5150' $w 2>/dev/null; then echo MARKER-FOUND; fi
kill %1 2>/dev/null
echo CA-BEGIN; cat /run/codex-box/ca.pem; echo CA-END
"#;

/// The PEM blocks of `text`.
fn pem_blocks(text: &str) -> Vec<String> {
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|b| b.split("-----END CERTIFICATE-----").next())
        .map(|b| b.split_whitespace().collect::<String>())
        .collect()
}

/// Whether any file below `dir` holds `needle` (links not followed).
fn found_below(dir: &std::path::Path, needle: &str) -> Option<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return None };
    for e in rd.flatten() {
        let (p, t) = (e.path(), e.file_type().ok()?);
        if t.is_dir() {
            if let Some(f) = found_below(&p, needle) {
                return Some(f);
            }
        } else if t.is_file()
            && std::fs::read(&p)
                .is_ok_and(|d| String::from_utf8_lossy(&d).split_whitespace().collect::<String>().contains(needle))
        {
            return Some(p);
        }
    }
    None
}

#[test]
fn a_bound_secret_reaches_its_host_only_and_the_session_holds_no_trace_of_it() {
    if !docker_ready("secrets end to end") {
        return;
    }
    let net = SecretNet::new("main", "198.18.105");
    let p = Project::new();
    std::fs::copy(net.pki.path("ca.pem"), p.wd.join("testca.pem")).unwrap();
    let wd = p.wd.to_str().unwrap().to_string();
    let mut args = vec!["run".to_string(), "--work_dir".into(), wd.clone()];
    args.extend(net.args());
    args.extend(["--secret".into(), format!("TOKEN={BOUND}")]);
    args.extend([
        "--".into(),
        "sh".into(),
        "-c".into(),
        SESSION.replace("$TESTCA", &format!("{}/testca.pem", p.app())),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.cmd(&args).env("TOKEN", VALUE).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = |prefix: &str| stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or_default().to_string();

    // Both hosts answer; the bound one got the secret (replacing what the client sent), the other not.
    assert_eq!(line("BOUND "), "BOUND hello from api.bound.test", "{stdout}\n{stderr}");
    assert_eq!(line("OTHER "), "OTHER hello from other.test", "{stdout}\n{stderr}");
    assert_eq!(line("REPLACED "), "REPLACED hello from api.bound.test");
    let seen = net.requests();
    let auth = |path: &str| seen.iter().find(|r| r.1 == path).map(|r| r.2.clone());
    assert_eq!(auth("/bound"), Some(vec![format!("Bearer {VALUE}")]), "{seen:?}");
    assert_eq!(auth("/replaced"), Some(vec![format!("Bearer {VALUE}")]), "{seen:?}");
    assert_eq!(auth("/other"), Some(vec![]), "the host it is not bound to gets no secret: {seen:?}");
    // Another Host inside the bound host's TLS is refused before anything is sent.
    assert_eq!(line("FRONT "), "FRONT 421");
    assert_eq!(auth("/front"), None);
    // The bound host's certificate is the session CA's; the other tunnel is untouched: the client
    // sees the test host's own certificate.
    assert!(line("ISSUER-BOUND").contains("codex-box session CA"), "{stdout}");
    assert!(line("ISSUER-OTHER").contains("codex-box test secrets CA"), "{stdout}");
    // A client with its own CA bundle (as a pinning one) fails closed for the bound host only.
    assert!(stdout.contains("PINNED-BOUND-FAILED") && stdout.contains("PINNED-OTHER-OK"), "{stdout}");
    assert_eq!(auth("/pinned").map(|a| a.is_empty()), Some(true), "only the other host's request arrived");
    // No trace of the secret in the session; the same search finds the planted marker.
    assert!(stdout.contains("SECRET-ABSENT") && !stdout.contains("SECRET-FOUND"), "{stdout}");
    assert!(stdout.contains("MARKER-IN-ENVIRON") && stdout.contains("MARKER-FOUND"), "control: {stdout}");

    // The log records that the secret was added, and why the pinned client failed — never the value.
    let logs: Vec<String> = std::fs::read_dir(p.state.join("codex-box/proxy"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    let log = logs.join("\n");
    assert!(
        log.contains("\tallow\tapi.bound.test:443\tGET\tallow api.bound.test; secret TOKEN added (Authorization)"),
        "{log}"
    );
    assert!(log.contains("does not accept the session's certificate for api.bound.test"), "{log}");
    assert!(log.contains("Host other.test is not api.bound.test"), "{log}");
    assert!(!log.contains("SECRET-7731") && !stderr.contains("SECRET-7731"), "{log}\n{stderr}");

    // The session's CA is gone with the session: in no file of the project, the state or the
    // session directories, and not trusted by the next session, which gets its own.
    let ca_text = stdout.split("CA-BEGIN").nth(1).and_then(|s| s.split("CA-END").next()).unwrap_or_default();
    let test_ca = pem_blocks(&std::fs::read_to_string(net.pki.path("ca.pem")).unwrap());
    let session_cas: Vec<String> = pem_blocks(ca_text).into_iter().filter(|b| !test_ca.contains(b)).collect();
    assert_eq!(session_cas.len(), 1, "one session CA beside the --ca-cert: {ca_text}");
    let ca = &session_cas[0];
    let session_dirs = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("codex-box-session-"))
        .map(|e| e.path());
    for dir in std::iter::once(p.root.path().to_path_buf()).chain(session_dirs) {
        assert_eq!(found_below(&dir, ca), None, "the session CA was left in {}", dir.display());
    }
    let mut again = vec!["run".to_string(), "--work_dir".into(), wd];
    again.extend(net.args());
    again.extend(["--secret".into(), format!("TOKEN={BOUND}")]);
    again.extend([
        "--".into(),
        "sh".into(),
        "-c".into(),
        "cat /run/codex-box/ca.pem /etc/ssl/certs/ca-certificates.crt".into(),
    ]);
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    let out = p.cmd(&again).env("TOKEN", VALUE).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let next = pem_blocks(&text(&out.stdout));
    assert!(next.iter().any(|b| test_ca.contains(b)), "control: the next session's bundle was read");
    assert!(!next.contains(ca), "the next session does not trust the old session's CA");
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn bad_secrets_are_refused_before_anything_starts() {
    let p = Project::new();
    let wd = p.wd.to_str().unwrap().to_string();
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["run", "--work_dir", &wd, "--egress", "proxy", "--allow-domain", BOUND];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "true"]);
        let mut c = p.cmd(&args);
        c.env_remove("TOKEN");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (out.status.code(), text(&out.stderr))
    };
    let (code, err) = run(&["--secret", "TOKEN=*"], &[("TOKEN", VALUE)]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("secret TOKEN is bound to \"*\", a wildcard"), "{err}");
    let (code, err) = run(&["--secret", &format!("TOKEN={BOUND}")], &[]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("secret TOKEN: the environment variable TOKEN is not set"), "{err}");
    let (code, err) = run(&["--secret", &format!("TOKEN={OTHER}")], &[("TOKEN", VALUE)]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("which the proxy does not allow") && err.contains("--allow-domain other.test"), "{err}");
    // In the default mode there is no proxy to add it: a clear error.
    let out = p
        .cmd(&["run", "--work_dir", &wd, "--allow-domain", BOUND, "--secret", &format!("TOKEN={BOUND}"), "--", "true"])
        .env("TOKEN", VALUE)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("add --egress proxy"), "{}", text(&out.stderr));
    // An unreadable file in [secrets]: a directory, and a path that does not exist.
    std::fs::create_dir_all(p.wd.join(".codex")).unwrap();
    for (file, why) in [(p.home.display().to_string(), "Is a directory"), ("/nonexistent/token".into(), "No such file")]
    {
        std::fs::write(
            p.wd.join(".codex/codex-box.toml"),
            format!("[secrets.FILE_TOKEN]\nhosts = [\"{BOUND}\"]\nfile = \"{file}\"\n"),
        )
        .unwrap();
        let (code, err) = run(&[], &[]);
        assert_eq!(code, Some(125), "{err}");
        assert!(err.contains(&format!("secret FILE_TOKEN: cannot read {file}")) && err.contains(why), "{err}");
    }
    // Nothing was made: no codex home in the project, no container.
    let made: Vec<String> = std::fs::read_dir(p.wd.join(".codex"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into())
        .collect();
    assert_eq!(made, ["codex-box.toml"]);
    assert!(std::fs::read_dir(&p.wd).unwrap().count() == 1, "only .codex in the project");
    assert!(!p.state.join("codex-box/proxy").exists(), "no proxy log");
    if docker_ready("bad secrets: no container left") {
        assert!(containers_for(&p.wd).is_empty());
    }
}
