//! `--egress proxy` with real containers — packets only to hosts this test creates: its own Docker
//! network with one test host serving HTTP (a page, an npm packument, a dumb-HTTP git repository)
//! and a raw TCP port 443, and its own DNS server on loopback that maps TWO names, allowed.test and
//! other.test, to that ONE address. Only the proxy's name check tells them apart.
#![cfg(unix)]

mod support;

use support::dns_server::{TestDns, Zone};
use support::docker_net::{TestHost, TestNet};
use support::proxy_probes;
use support::*;

/// The test host's content and servers (run as root in the test host); `TLS_RESPONDER` is
/// replaced by [`proxy_probes::TLS_RESPONDER_PY`].
const HOST_SETUP: &str = r#"
set -e
export HOME=/tmp
mkdir -p /srv
echo "hello from the test host" > /srv/index.html
python3 - <<'PY'
import json
open('/srv/demo', 'w').write(json.dumps({"name": "demo", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {"name": "demo", "version": "1.0.0", "dist": {"tarball": "http://allowed.test/demo-1.0.0.tgz"}}}}))
PY
git init -q -b main /tmp/work
git -C /tmp/work -c user.name=t -c user.email=t@t.test commit -q --allow-empty -m first
git clone -q --bare /tmp/work /srv/repo.git
git --git-dir=/srv/repo.git update-server-info
cd /srv
exec python3 -c "
import socket, threading, http.server
TLS_RESPONDER
http.server.ThreadingHTTPServer(('0.0.0.0', 80), http.server.SimpleHTTPRequestHandler).serve_forever()
"
"#;

/// The test network `cbx-proxy-TAG-PID` on `v4` with the test host ([`HOST_SETUP`]) at .10.
fn test_net(tag: &str, v4: &str) -> TestNet {
    let mut net = TestNet::new("cbx-proxy", tag, v4, None);
    net.add(TestHost::sh(10, &HOST_SETUP.replace("TLS_RESPONDER", proxy_probes::TLS_RESPONDER_PY)));
    net.wait_for(10, &[80, 443], 30);
    net
}

/// Runs in the session: probes by name through the proxy, a direct bypass, TLS tunnels with a
/// matching and a lying SNI, and git, npm and Java with only the environment codex-box sets (the
/// image has no pip module; pip honours the same HTTP(S)_PROXY variables as curl).
const SESSION: &str = r#"
PROBE
probe http://allowed.test/
probe http://www.allowed.test/
probe http://other.test/
probe --noproxy '*' http://TESTHOST/
probe --noproxy '*' http://GATEWAY:9/
curl -sS -o /dev/null --max-time 5 https://other.test/ 2>&1 | grep -o 'response 403' | sed 's/^/HTTPS other.test: /'
python3 - <<'PY'
TUNNELS
PY
git ls-remote http://allowed.test/repo.git 2>/dev/null | awk '{print "GIT " $2}'
git ls-remote http://other.test/repo.git >/dev/null 2>&1 || echo "GIT other.test refused"
echo "NPM $(npm view demo version --registry http://allowed.test/ 2>/dev/null)"
JAVA
"#;

/// [`SESSION`] with the shared pieces filled in.
fn session(test_host: &str, gateway: &str) -> String {
    SESSION
        .replace("PROBE", proxy_probes::PROBE_SH)
        .replace("TUNNELS", proxy_probes::TUNNELS_PY)
        .replace("JAVA", proxy_probes::JAVA_SH)
        .replace("TESTHOST", test_host)
        .replace("GATEWAY", gateway)
}

#[test]
fn only_the_proxy_is_reachable_and_it_tells_names_on_one_address_apart() {
    if !docker_ready("egress proxy") {
        return;
    }
    let v4 = "198.18.91";
    let net = test_net("main", v4);
    // On the network's gateway (this host): the proxy runs in a companion on the network.
    let dns = TestDns::start_on(
        Zone::new(60)
            .addr("allowed.test", &format!("{v4}.10"))
            .addr("www.allowed.test", &format!("{v4}.10"))
            .addr("other.test", &format!("{v4}.10")),
        &format!("{v4}.1"),
    );
    let p = Project::new();
    let dns_addr = dns.addr.to_string();
    let script = session(&format!("{v4}.10"), &format!("{v4}.1"));
    let out = p.run_sh(
        &[
            "--network",
            &net.name,
            "--egress",
            "proxy",
            "--dns-server",
            &dns_addr,
            "--allow-domain",
            "**.allowed.test",
            "--log-denials",
        ],
        &script,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let expect = [
        "OPEN http://allowed.test/",
        "OPEN http://www.allowed.test/",
        "CLOSED http://other.test/",
        &format!("CLOSED --noproxy * http://{v4}.10/"),
        &format!("CLOSED --noproxy * http://{v4}.1:9/"),
        "HTTPS other.test: response 403",
        proxy_probes::TUNNELS_EXPECTED[0],
        proxy_probes::TUNNELS_EXPECTED[1],
        proxy_probes::TUNNELS_EXPECTED[2],
        "GIT HEAD",
        "GIT refs/heads/main",
        "GIT other.test refused",
        "NPM 1.0.0",
        "JAVA 200",
    ];
    assert_eq!(lines, expect, "stderr: {stderr}");

    // The per-session log, in the state dir (not the workdir), and the end-of-session summary.
    let dir = p.state.join("codex-box/proxy");
    let logs: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(logs.len(), 1, "{dir:?}");
    let log = std::fs::read_to_string(logs[0].path()).unwrap();
    assert!(log.contains("\tallow\tallowed.test:80\tGET\tallow **.allowed.test\n"), "{log}");
    assert!(log.contains("\tdeny\tother.test:80\tGET\tnot in the allowlist\n"), "{log}");
    assert!(log.contains("\tdeny\tallowed.test:443\tCONNECT\tTLS server name other.test does not match the CONNECT host allowed.test\n"), "{log}");
    assert!(
        stderr.contains("codex-box: proxy denied GET other.test:80: not in the allowlist"),
        "--log-denials: {stderr}"
    );
    let summary =
        stderr.lines().find(|l| l.starts_with("codex-box: proxy: ")).unwrap_or_else(|| panic!("no summary: {stderr}"));
    assert!(summary.contains(" denied; denied most: other.test ("), "{summary}");
    assert!(containers_for(&p.wd).is_empty());
    drop(dns);
}

#[test]
fn wildcards_are_refused_in_ip_mode_and_accepted_in_proxy_mode() {
    let p = Project::new();
    let out =
        p.cmd(&["egress", "--work_dir", p.wd.to_str().unwrap(), "--allow-domain", "*.example.test"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("wildcards cannot be enforced by an IP firewall"), "{}", text(&out.stderr));
    let out = p
        .cmd(&[
            "egress",
            "--work_dir",
            p.wd.to_str().unwrap(),
            "--egress",
            "proxy",
            "--allow-domain",
            "*.example.test",
            "--deny-domain",
            "bad.example.test",
        ])
        .output()
        .unwrap();
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        s.contains("allow:\n  api.openai.com\n") && s.contains("  *.example.test\ndeny:\n  bad.example.test\n"),
        "{s}"
    );
    let out =
        p.cmd(&["egress", "--work_dir", p.wd.to_str().unwrap(), "--deny-domain", "bad.example.test"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("--deny-domain only applies with --egress proxy"), "{}", text(&out.stderr));
}

/// Runs the three name probes (allowed, not allowed, direct) in a proxy-mode session with `flags`;
/// asserts success and returns stdout's lines and stderr.
fn three_probes(p: &Project, v4: &str, dns: &TestDns, flags: &[&str], extra: &str) -> (Vec<String>, String) {
    let script = format!(
        "{}probe http://allowed.test/\nprobe http://other.test/\nprobe --noproxy '*' http://{v4}.10/\n{extra}",
        proxy_probes::PROBE_SH
    );
    let dns_addr = dns.addr.to_string();
    let mut args = vec!["--egress", "proxy", "--dns-server", &dns_addr, "--allow-domain", "allowed.test"];
    args.extend_from_slice(flags);
    let out = p.run_sh(&args, &script);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{flags:?}: {stdout}\n{stderr}");
    (stdout.lines().map(String::from).collect(), stderr)
}

/// What [`three_probes`] prints when the proxy is the only way out.
fn three_expected(v4: &str) -> Vec<String> {
    vec![
        "OPEN http://allowed.test/".into(),
        "CLOSED http://other.test/".into(),
        format!("CLOSED --noproxy * http://{v4}.10/"),
    ]
}

fn names_zone(v4: &str) -> Zone {
    Zone::new(60).addr("allowed.test", &format!("{v4}.10")).addr("other.test", &format!("{v4}.10"))
}

#[test]
fn proxy_mode_works_with_the_sidecar_applier_and_on_the_default_bridge() {
    if !docker_ready("egress proxy with the sidecar applier") {
        return;
    }
    let v4 = "198.18.92";
    let net = test_net("sidecar", v4);
    let dns = TestDns::start_on(names_zone(v4), &format!("{v4}.1"));
    let p = Project::new();
    let (lines, stderr) = three_probes(&p, v4, &dns, &["--network", &net.name, "--firewall-applier", "sidecar"], "");
    assert_eq!(lines, three_expected(v4), "{stderr}");
    // The common case: the engine's default bridge (the proxy companion on it too), entrypoint
    // applier. The test host is on another bridge, which the engine isolates from this one, so
    // only what needs no upstream is probed: the proxy refuses a name outside the allowlist, and a
    // direct connection fails.
    let script = format!("{}probe http://other.test/\nprobe --noproxy '*' http://{v4}.1:9/\n", proxy_probes::PROBE_SH);
    let dns_addr = dns.addr.to_string();
    let out = p.run_sh(&["--egress", "proxy", "--dns-server", &dns_addr, "--allow-domain", "allowed.test"], &script);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "default bridge: {stdout}\n{stderr}");
    assert_eq!(stdout, format!("CLOSED http://other.test/\nCLOSED --noproxy * http://{v4}.1:9/\n"), "{stderr}");
    assert!(stderr.contains("codex-box: proxy: 0 allowed, 1 denied"), "{stderr}");
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn proxy_mode_holds_for_an_agent_under_gvisor() {
    if !docker_ready("egress proxy under gVisor") || !gvisor() {
        return;
    }
    let v4 = "198.18.95";
    let net = test_net("gvisor", v4);
    let dns = TestDns::start_on(names_zone(v4), &format!("{v4}.1"));
    let p = Project::new();
    // --runtime runsc picks the sidecar applier: rules set inside gVisor would not apply.
    let flags = ["--network", &net.name, "--runtime", "runsc"];
    let (lines, stderr) =
        three_probes(&p, v4, &dns, &flags, "dmesg 2>/dev/null | grep -qi gvisor && echo UNDER-GVISOR\n");
    let mut expected = three_expected(v4);
    expected.push("UNDER-GVISOR".into());
    assert_eq!(lines, expected, "{stderr}");
    assert!(containers_for(&p.wd).is_empty());
}
