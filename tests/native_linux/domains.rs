//! Network by name (`--allow-domain`) — packets only to hosts this test creates: a network
//! namespace holding one test host (HTTP on 80 with a page, an npm packument, a pip index with a
//! wheel and a dumb-HTTP git repository; a raw TCP port 443 that answers a TLS ClientHello), joined
//! to the host by a veth pair, and a DNS server on loopback that maps several names — allowed.test,
//! other.test, api/www.allowed.test — to that ONE address, and inside.test to 127.0.0.1. Only the
//! proxy's name check tells them apart.

use crate::support::dns_server::{TestDns, Zone};
use crate::support::netns::{self, Netns};
use crate::support::proxy_probes;
use crate::*;

use std::process::{Child, Command, Stdio};

/// The test host: builds its content in the directory it is given, then serves it.
const HOST: &str = r#"
import base64, hashlib, http.server, json, os, socket, subprocess, sys, threading, zipfile
root = sys.argv[1]
os.chdir(root)
open('index.html', 'w').write('hello from the test host\n')
json.dump({"name": "demo", "dist-tags": {"latest": "1.0.0"},
           "versions": {"1.0.0": {"name": "demo", "version": "1.0.0",
                                  "dist": {"tarball": "http://allowed.test/demo-1.0.0.tgz"}}}}, open('demo', 'w'))
files = {"demo/__init__.py": b"", "demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
         "demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
record = "".join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"
                 for n, d in files.items()) + "demo-1.0.dist-info/RECORD,,\n"
os.makedirs('simple/demo', exist_ok=True)
with zipfile.ZipFile('simple/demo/demo-1.0-py3-none-any.whl', 'w') as z:
    for n, d in files.items():
        z.writestr(n, d)
    z.writestr("demo-1.0.dist-info/RECORD", record)
open('simple/demo/index.html', 'w').write('<a href="demo-1.0-py3-none-any.whl">demo-1.0-py3-none-any.whl</a>\n')
git = lambda *a: subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t.test', *a], check=True,
                                capture_output=True)
os.makedirs('maven2/org/test/parent/1.0', exist_ok=True)
open('maven2/org/test/parent/1.0/parent-1.0.pom', 'w').write(
    '<project><modelVersion>4.0.0</modelVersion><groupId>org.test</groupId><artifactId>parent</artifactId>'
    '<version>1.0</version><packaging>pom</packaging></project>\n')
git('init', '-q', '-b', 'main', 'work')
git('-C', 'work', 'commit', '-q', '--allow-empty', '-m', 'first')
git('clone', '-q', '--bare', 'work', 'repo.git')
git('--git-dir=repo.git', 'update-server-info')
TLS_RESPONDER
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(('0.0.0.0', 80), Quiet).serve_forever()
"#;

/// A namespace with the test host at `<net>.10`, the host's side of the veth at `<net>.1`.
struct TestHost {
    ip: String,
    dns: TestDns,
    server: Child,
    _content: tempfile::TempDir,
    _ns: Netns,
}

impl TestHost {
    /// `third`: the third octet of 198.18.x.0/24 (one per test, so tests can run side by side).
    fn start(third: u8) -> Option<TestHost> {
        if !require(netns::unsupported().is_none(), &netns::unsupported().unwrap_or_default()) {
            return None;
        }
        let pid = std::process::id();
        let outer = format!("cbxnd{third}{}", pid % 100_000);
        let (ns, ip) = Netns::with_test_host(&format!("cbx-nd{third}-{pid}"), &outer, third).unwrap();
        let content = tempfile::tempdir().unwrap();
        let server = Command::new("ip")
            .args(["netns", "exec", &ns.name, PY, "-c", &HOST.replace("TLS_RESPONDER", proxy_probes::TLS_RESPONDER_PY)])
            .arg(content.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        for port in [80, 443] {
            crate::support::wait_for_port(&format!("{ip}:{port}"), 30);
        }
        let zone = Zone::new(60)
            .addr("allowed.test", &ip)
            .addr("api.allowed.test", &ip)
            .addr("www.allowed.test", &ip)
            .addr("other.test", &ip)
            .addr("inside.test", "127.0.0.1");
        Some(TestHost { ip, dns: TestDns::start(zone), server, _content: content, _ns: ns })
    }

    /// The flags that point the proxy at the test DNS server.
    fn dns_flag(&self) -> String {
        format!("--dns-server={}", self.dns.addr)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Probes from inside the sandbox: by name through the proxy, the direct ways around it, TLS
/// tunnels with a matching and a lying SNI, and a malformed request that must not harm the next.
const PROBES: &str = r#"
PROBE
probe http://allowed.test/
probe http://api.allowed.test/
probe http://www.allowed.test/
probe http://other.test/
probe http://inside.test/
probe http://allowed.test:8080/
probe --noproxy '*' http://TESTHOST/
curl -sS -o /dev/null --max-time 5 https://other.test/ 2>&1 | grep -o 'response 403' | sed 's/^/HTTPS other.test: /'
/usr/bin/python3 - <<'PY'
TUNNELS
try:
    socket.getaddrinfo('allowed.test', 80)
    print('DNS answered')
except OSError:
    print('DNS failed')
bad = socket.create_connection((h, int(p)), timeout=5)
bad.sendall(b'\x00\xff GARBAGE \r\n\r\n')
print('MALFORMED', head(bad).split(b'\r\n')[0].decode())
ok = socket.create_connection((h, int(p)), timeout=5)
ok.sendall(b'GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n')
print('AFTER', head(ok).split(b'\r\n')[0].decode())
PY
"#;

#[test]
fn only_the_proxy_leads_out_and_it_tells_names_on_one_address_apart() {
    if !sandbox_works() || !python() {
        return;
    }
    let Some(host) = TestHost::start(93) else { return };
    let fx = fx();
    let state = fx.home.join("state");
    let dns = host.dns_flag();
    let flags = [
        "-s",
        "workspace-write",
        "--allow-domain",
        "**.allowed.test",
        "--deny-domain",
        "www.allowed.test",
        "--allow-domain",
        "inside.test",
        &dns,
        "--log-denials",
    ];
    let script = PROBES
        .replace("PROBE", proxy_probes::PROBE_SH)
        .replace("TUNNELS", proxy_probes::TUNNELS_PY)
        .replace("TESTHOST", &host.ip);
    let mut c = cmd(&fx, &flags, &["sh", "-c", &script]);
    let r = output(c.env("XDG_STATE_HOME", &state).output().unwrap());
    let lines: Vec<&str> = r.out.lines().collect();
    let has = |l: &str| lines.contains(&l);
    let why = format!("stdout:\n{}\nstderr:\n{}", r.out, r.err);
    assert_eq!(r.code, 0, "{why}");
    // Names on one address: the allowed ones pass, the others are refused by name.
    assert!(has("OPEN http://allowed.test/") && has("OPEN http://api.allowed.test/"), "{why}");
    assert!(has("CLOSED http://www.allowed.test/"), "deny beats allow: {why}");
    assert!(has("CLOSED http://other.test/") && has("HTTPS other.test: response 403"), "{why}");
    // An allowed name that resolves to a loopback address, and a port not allowed.
    assert!(has("CLOSED http://inside.test/") && has("CLOSED http://allowed.test:8080/"), "{why}");
    // No way around the proxy: no route to the host's address, no DNS.
    assert!(has(&format!("CLOSED --noproxy * http://{}/", host.ip)) && has("DNS failed"), "{why}");
    // The ClientHello must name the CONNECT host.
    for line in proxy_probes::TUNNELS_EXPECTED {
        assert!(has(line), "{line}: {why}");
    }
    // A malformed request gets its 400 and harms nothing else.
    assert!(has("MALFORMED HTTP/1.1 400 Bad Request") && has("AFTER HTTP/1.0 200 OK"), "{why}");
    // --log-denials, the summary and the per-run log.
    assert!(r.err.contains("codex-box: proxy denied GET other.test:80: not in the allowlist"), "{why}");
    assert!(r.err.contains("loopback") || r.err.contains("not public"), "the refused answer is explained: {why}");
    let summary = r.err.lines().find(|l| l.starts_with("codex-box: proxy:")).unwrap_or_else(|| panic!("{why}"));
    assert!(summary.contains(" allowed, ") && summary.contains("log: "), "{summary}");
    let log_dir = state.join("codex-box/proxy");
    let log: String =
        std::fs::read_dir(&log_dir).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert!(log.lines().any(|l| l.contains("\tallow\tallowed.test:80\tGET\tallow **.allowed.test")), "{log}");
    assert!(log.lines().any(|l| l.contains("\tdeny\tother.test:80\tGET\tnot in the allowlist")), "{log}");

    // Controls: the same address is reachable directly with the network on, and from the host.
    let open = sh(&fx, &["-s", "workspace-write", "--network"], &format!("curl -fsS --max-time 5 http://{}/", host.ip));
    assert_eq!(open.out, "hello from the test host\n", "{}", open.err);
    let direct =
        Command::new("curl").args(["-fsS", "--max-time", "5", &format!("http://{}/", host.ip)]).output().unwrap();
    assert!(direct.status.success());
}

/// Tools with nothing but the environment codex-box sets: curl, git, npm, pip, Java, Maven (where
/// the project says where to fetch from — a mirror — and codex-box's variables say how).
const TOOLS: &str = r#"
export npm_config_cache=/tmp/npm-cache npm_config_update_notifier=false PIP_DISABLE_PIP_VERSION_CHECK=1
echo "CURL $(curl -fsS --max-time 5 http://allowed.test/)"
git clone -q http://allowed.test/repo.git clone 2>&1 && echo "GIT $(git -C clone log --format=%s)"
git ls-remote http://other.test/repo.git >/dev/null 2>&1 || echo "GIT other.test refused"
echo "NPM $(npm view demo version --registry http://allowed.test/ 2>/dev/null)"
npm view demo version --registry http://other.test/ >/dev/null 2>&1 || echo "NPM other.test refused"
/usr/bin/python3 -m pip download -q --no-cache-dir --no-deps -d /tmp/dl --index-url http://allowed.test/simple/ \
  --trusted-host allowed.test demo 2>&1 && echo "PIP $(ls /tmp/dl)"
/usr/bin/python3 -m pip download -q --no-cache-dir --no-deps -d /tmp/dl2 --index-url http://other.test/simple/ \
  --trusted-host other.test --retries 0 --timeout 5 demo >/dev/null 2>&1 || echo "PIP other.test refused"
JAVA
mkdir -p /tmp/mvn && cd /tmp/mvn
cat > pom.xml <<'XML'
<project><modelVersion>4.0.0</modelVersion><artifactId>child</artifactId>
<parent><groupId>org.test</groupId><artifactId>parent</artifactId><version>1.0</version><relativePath/></parent></project>
XML
for h in allowed.test other.test; do
  printf '<settings><mirrors><mirror><id>t</id><mirrorOf>*</mirrorOf><url>http://%s/maven2</url></mirror></mirrors></settings>' $h > s-$h.xml
  if mvn -B -q -s s-$h.xml -Dmaven.repo.local=/tmp/m2-$h validate >/dev/null 2>&1; then echo "MAVEN $h parent resolved"; else echo "MAVEN $h refused"; fi
done
"#;

#[test]
fn tools_work_through_the_proxy_with_only_the_environment_codex_box_sets() {
    if !sandbox_works() || !python() {
        return;
    }
    let Some(host) = TestHost::start(94) else { return };
    let fx = fx();
    let flags = ["-s", "workspace-write", "--allow-domain", "allowed.test", &host.dns_flag()];
    let script = TOOLS.replace("JAVA", proxy_probes::JAVA_SH);
    let r =
        output(cmd(&fx, &flags, &["sh", "-c", &script]).env("XDG_STATE_HOME", fx.home.join("state")).output().unwrap());
    let why = format!("stdout:\n{}\nstderr:\n{}", r.out, r.err);
    for line in [
        "CURL hello from the test host",
        "GIT first",
        "GIT other.test refused",
        "NPM 1.0.0",
        "NPM other.test refused",
        "PIP demo-1.0-py3-none-any.whl",
        "PIP other.test refused",
        "JAVA 200",
        "MAVEN allowed.test parent resolved",
        "MAVEN other.test refused",
    ] {
        assert!(r.out.lines().any(|l| l == line), "missing {line:?}: {why}");
    }
    // The clone landed in the project, written through the sandbox's writable root.
    assert!(fx.work.join("clone/.git").is_dir());
}

#[test]
fn bad_domain_input_is_explained_and_runs_nothing() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let state = fx.home.join("state");
    for (flags, expect) in [
        (&["-s", "workspace-write", "--allow-domain", "a..b"][..], "\"a..b\""),
        (&["-s", "workspace-write", "--deny-domain", "x.test"][..], "add --allow-domain"),
        (&["-s", "workspace-write", "--allow-domain", "x.test", "--dns-server", "nope"][..], "--dns-server"),
        (&["-s", "danger-full-access", "--allow-domain", "x.test"][..], "danger-full-access"),
        (&["-s", "workspace-write", "--network", "--allow-domain", "x.test"][..], "--network"),
    ] {
        let r = output(cmd(&fx, flags, &["touch", "ran"]).env("XDG_STATE_HOME", &state).output().unwrap());
        assert_ne!(r.code, 0, "{flags:?}");
        assert!(r.err.contains(expect), "{flags:?}: {}", r.err);
        assert!(!fx.work.join("ran").exists(), "{flags:?} ran the command");
        assert!(!state.exists(), "{flags:?} left a log behind");
    }
    // Without user namespaces there is no network namespace, so no way to confine the command to
    // the proxy: refused even with --allow-degraded, and nothing runs.
    let mut c = cmd(&fx, &["-s", "workspace-write", "--allow-degraded", "--allow-domain", "x.test"], &["touch", "ran"]);
    let r = output(c.env("CODEX_BOX_SANDBOX_PRETEND_MISSING", "userns").output().unwrap());
    assert_ne!(r.code, 0);
    assert!(r.err.contains("allowed domains need a network namespace"), "{}", r.err);
    assert!(!fx.work.join("ran").exists());
    // A state directory the command could write gets no log (the command could plant links there
    // for a later run): a warning, and the run goes on.
    let inside = fx.work.join(".state");
    let mut c = cmd(&fx, &["-s", "workspace-write", "--allow-domain", "x.test"], &["true"]);
    let r = output(c.env("XDG_STATE_HOME", &inside).output().unwrap());
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains("not writing the proxy log"), "{}", r.err);
    assert!(!inside.join("codex-box/proxy").exists());
    // Control: the same command runs when the input is good.
    let r =
        output(cmd(&fx, &["-s", "workspace-write", "--allow-domain", "x.test"], &["touch", "ran"]).output().unwrap());
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(fx.work.join("ran").exists());
}
