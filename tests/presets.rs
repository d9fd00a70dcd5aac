//! Egress presets with real containers: `--allow-preset github` lets `git clone` and a release-asset
//! download through, in both egress modes, and a name outside the preset stays refused; without the
//! preset (the control) the same clone fails. Only hosts this test creates: its own Docker network
//! with two test hosts, and its own DNS server that answers GitHub's names (and two others) with
//! those hosts' addresses — nothing is ever asked of a public resolver or sent off this machine.
#![cfg(unix)]

mod support;

use support::dns_server::{TestDns, Zone};
use support::docker_net::{TestHost, TestNet};
use support::*;

const V4: &str = "198.18.98";

/// A test host serving a dumb-HTTP git repository and a release asset on port 80.
const HOST_SETUP: &str = r#"
set -e
export HOME=/tmp
mkdir -p /srv/o
echo "release asset" > /srv/asset.bin
git init -q -b main /tmp/work
git -C /tmp/work -c user.name=t -c user.email=t@t.test commit -q --allow-empty -m first
git clone -q --bare /tmp/work /srv/o/r.git
git --git-dir=/srv/o/r.git update-server-info
cd /srv
exec python3 -m http.server 80
"#;

fn net() -> TestNet {
    let mut net = TestNet::new("cbx-preset", "main", V4, None);
    net.add(TestHost::sh(10, HOST_SETUP));
    net.add(TestHost::sh(11, HOST_SETUP));
    net.wait_for(10, &[80], 30);
    net.wait_for(11, &[80], 30);
    net
}

/// GitHub's names on `.10`; a name in no preset and one in the npm preset on `.11`. Served on the
/// network's gateway, which the proxy's companion reaches too.
fn dns() -> TestDns {
    let (a, b) = (format!("{V4}.10"), format!("{V4}.11"));
    let zone = Zone::new(60)
        .addr("github.com", &a)
        .addr("codeload.github.com", &a)
        .addr("objects.githubusercontent.com", &a)
        .addr("gitlab.test", &b)
        .addr("registry.npmjs.org", &b);
    TestDns::start_on(zone, &format!("{V4}.1"))
}

const PROBES: &str = r#"
cd /tmp
if git clone -q http://github.com/o/r.git r 2>/dev/null; then echo CLONED; else echo CLONE-FAILED; fi
if curl -fsS --max-time 5 -o a.bin http://objects.githubusercontent.com/asset.bin 2>/dev/null; then echo DOWNLOADED; else echo DOWNLOAD-FAILED; fi
if curl -fsS --max-time 5 -o /dev/null http://gitlab.test/asset.bin 2>/dev/null; then echo OTHER-REACHED; else echo OTHER-REFUSED; fi
if curl -fsS --max-time 5 -o /dev/null http://registry.npmjs.org/asset.bin 2>/dev/null; then echo NPM-REACHED; else echo NPM-REFUSED; fi
"#;

fn session(p: &Project, net: &TestNet, dns: &TestDns, extra: &[&str]) -> (String, String) {
    let dns_addr = dns.addr.to_string();
    let mut args = vec!["--network", net.name.as_str(), "--dns-server", &dns_addr];
    args.extend_from_slice(extra);
    let out = p.run_sh(&args, PROBES);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{extra:?}: {stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn the_github_preset_lets_a_clone_and_a_release_download_through_and_nothing_else() {
    if !docker_ready("egress presets") {
        return;
    }
    let net = net();
    let dns = dns();
    let p = Project::new();
    let all_refused = "CLONE-FAILED\nDOWNLOAD-FAILED\nOTHER-REFUSED\nNPM-REFUSED\n";
    let through = "CLONED\nDOWNLOADED\nOTHER-REFUSED\nNPM-REFUSED\n";
    // The IP firewall: the preset's names are resolved and pinned like any allowlisted name.
    let (out, err) = session(&p, &net, &dns, &[]);
    assert_eq!(out, all_refused, "control, no preset: {err}");
    let (out, err) = session(&p, &net, &dns, &["--allow-preset", "github"]);
    assert_eq!(out, through, "{err}");
    // The same from the project's config.
    std::fs::create_dir_all(p.wd.join(".codex")).unwrap();
    std::fs::write(p.wd.join(".codex/codex-box.toml"), "[egress]\npresets = [\"github\"]\n").unwrap();
    let (out, err) = session(&p, &net, &dns, &["--trust"]);
    assert_eq!(out, through, "[egress] presets: {err}");
    std::fs::remove_file(p.wd.join(".codex/codex-box.toml")).unwrap();
    // The proxy: by name (and *.githubusercontent.com); the end names what would allow a refusal.
    let (out, err) = session(&p, &net, &dns, &["--egress", "proxy", "--allow-preset", "github"]);
    assert_eq!(out, through, "{err}");
    assert!(err.contains("to allow registry.npmjs.org: --allow-domain registry.npmjs.org"), "{err}");
    assert!(err.contains("--allow-preset npm"), "{err}");
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn an_unknown_preset_is_refused_before_anything_exists_and_presets_are_listed() {
    let p = Project::new();
    let wd = p.wd.to_str().unwrap();
    let out = p.cmd(&["run", "--work_dir", wd, "--allow-preset", "gitlab", "--", "true"]).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("unknown egress preset \"gitlab\"") && err.contains("github, go, gradle"), "{err}");
    assert!(!p.wd.join(".codex").exists(), "nothing written");
    let out = p.cmd(&["egress", "--preset", "github"]).output().unwrap();
    let s = text(&out.stdout);
    assert!(
        out.status.success()
            && s.contains("  objects.githubusercontent.com\n")
            && s.contains("*.githubusercontent.com"),
        "{s}"
    );
    let out = p.cmd(&["egress", "--preset"]).output().unwrap();
    let s = text(&out.stdout);
    for name in ["github", "maven", "gradle", "npm", "pypi", "crates", "go"] {
        assert!(s.lines().any(|l| l.starts_with(name)), "{name} listed: {s}");
    }
    let out = p.cmd(&["egress", "--preset", "maven", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["presets"][0]["allow"][1], "repo1.maven.org");
}

#[test]
fn egress_why_answers_with_the_rule_or_what_to_add_and_its_exit_status() {
    let p = Project::new();
    p.dns.set_zone(
        Zone::new(60)
            .addr("allowed.test", "192.0.2.10")
            .addr("cdn.shared.test", "192.0.2.10")
            .addr("github.com", "192.0.2.20")
            .addr("rebind.test", "10.1.2.3"),
    );
    let why = |args: &[&str]| {
        let mut a = vec!["egress", "--allow-domain", "allowed.test"];
        a.extend_from_slice(args);
        let out = p.cmd(&a).output().unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = why(&["why", "allowed.test"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with(
            "allowed.test:443: allowed (allowlist mode): allowed.test is allowlisted (from --allow-domain)"
        ),
        "{out}"
    );
    let (code, out, _) = why(&["why", "github.com:443"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("refused")
            && out.contains("to allow it: --allow-domain github.com")
            && out.contains("--allow-preset github"),
        "{out}"
    );
    // The IP firewall decides by address: a name sharing an allowlisted name's address gets through.
    let (code, out, _) = why(&["why", "cdn.shared.test"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("also allowed.test's") && out.contains("--egress proxy decides by name"), "{out}");
    let (code, out, _) = why(&["why", "allowed.test:22"]);
    assert!(code == Some(1) && out.contains("port 22 is not open"), "{out}");
    let (code, out, _) = why(&["--allow-domain", "rebind.test", "why", "rebind.test"]);
    assert!(code == Some(1) && out.contains("10.1.2.3 is a private"), "{out}");
    // The proxy decides by name, with --json for scripts.
    let (code, out, err) =
        why(&["--egress", "proxy", "--allow-domain", "**.shared.test", "--json", "why", "cdn.shared.test"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["mode"].as_str(), v["allowed"].as_bool()), (Some("proxy"), Some(true)));
    assert!(v["reason"].as_str().unwrap().contains("**.shared.test"), "{v}");
    let (code, _, err) = why(&["why", "bad host!"]);
    assert!(code == Some(125) && err.contains("is not HOST[:PORT]"), "{err}");
}

#[test]
fn egress_json_is_json_in_every_mode() {
    let p = Project::new();
    for mode in ["open", "proxy"] {
        let out = p.cmd(&["egress", "--egress", mode, "--allow-preset", "npm", "--json"]).output().unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{mode}: {e}: {}", text(&out.stdout)));
        assert_eq!(v["mode"], mode);
    }
    let out = p.cmd(&["egress", "--egress", "proxy", "--allow-preset", "npm", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["allow"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().contains("registry.npmjs.org")), "{v}");
}
