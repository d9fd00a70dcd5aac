//! The egress firewall of container sessions, with real packets — only to hosts this test creates:
//! its own Docker network with HTTP test hosts, and its own DNS server on loopback.
#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::dns_server::{dead_address, TestDns, Zone};
use support::docker_net::{TestHost, TestNet};
use support::*;

/// An HTTP server on 80 (v4+v6) and a UDP echo on 53, as root in the test host.
const HOST_PY: &str = "python3 -c \"import socket,threading\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',53))\ndef echo():\n  while True:\n    d,a=s.recvfrom(512); s.sendto(d,a)\nthreading.Thread(target=echo,daemon=True).start()\nimport http.server,socketserver\nclass S(http.server.ThreadingHTTPServer): address_family=socket.AF_INET6\nS(('::',80),http.server.SimpleHTTPRequestHandler).serve_forever()\"";

/// The test network `cbx-egress-TAG-PID` on `v4` ("198.51.100") and `v6` ("2001:db8:77") with three
/// test hosts: .10, .11, .12 / ::10, ::11, ::12.
fn test_net(tag: &str, v4: &str, v6: &str) -> TestNet {
    let mut net = TestNet::new("cbx-egress", tag, v4, Some(v6));
    for last in [10, 11, 12] {
        net.add(TestHost::sh(last, HOST_PY));
    }
    // Wait until the hosts answer (from the host: no firewall on this path).
    for last in [10, 11, 12] {
        net.wait_for(last, &[80], 20);
    }
    net
}

fn udp_echo_answers(addr: &str) -> bool {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(b"ping", addr).unwrap();
    let mut buf = [0u8; 16];
    matches!(s.recv_from(&mut buf), Ok((4, _)))
}

#[test]
fn only_allowlisted_destinations_are_reachable_and_the_agent_cannot_change_the_rules() {
    if !docker_ready("egress firewall") {
        return;
    }
    allowlist_holds("entrypoint", "main", "198.51.100", "2001:db8:77", None);
}

#[test]
fn the_same_holds_with_the_firewall_in_a_sidecar() {
    if !docker_ready("egress firewall (sidecar)") {
        return;
    }
    allowlist_holds("sidecar", "side", "198.18.80", "2001:db8:80", None);
}

#[test]
fn the_same_holds_for_an_agent_under_gvisor() {
    if !docker_ready("egress firewall (gVisor)") || !gvisor() {
        return;
    }
    // --runtime runsc selects the sidecar applier: rules set inside gVisor would not apply.
    allowlist_holds("auto", "gvisor", "198.18.82", "2001:db8:82", Some("runsc"));
}

#[test]
fn under_gvisor_the_entrypoint_applier_fails_closed() {
    if !docker_ready("gVisor entrypoint applier") || !gvisor() {
        return;
    }
    let p = Project::new();
    let out = p.run_sh(&["--runtime", "runsc", "--firewall-applier", "entrypoint"], "echo AGENT-STARTED");
    assert_eq!(out.status.code(), Some(125));
    assert!(!text(&out.stdout).contains("AGENT-STARTED"));
    assert!(text(&out.stderr).contains("--firewall-applier sidecar"), "{}", text(&out.stderr));
}

/// The allowlist scenario on a test network `v4.0/24` + `v6::/64` with the given applier.
fn allowlist_holds(applier: &str, tag: &str, v4: &str, v6: &str, runtime: Option<&str>) {
    let net = test_net(tag, v4, v6);
    let dns = TestDns::start(
        Zone::new(60)
            .addr("allowed.test", &format!("{v4}.10"))
            .addr("allowed.test", &format!("{v6}::10"))
            .addr("blocked.test", &format!("{v4}.11"))
            .addr("blocked.test", &format!("{v6}::11")),
    );
    // Controls without the sandbox: every test host answers HTTP and the UDP echo on 53.
    assert!(udp_echo_answers(&format!("{v4}.10:53")), "control: host A answers on UDP 53");
    assert!(std::net::TcpStream::connect(format!("{v4}.11:80")).is_ok(), "control: host B answers");

    let p = Project::new();
    // A setuid-root copy of iptables in the workdir: no_new_privs must make the bit worthless.
    let ipt = p.wd.join("iptables");
    std::fs::copy("/usr/sbin/xtables-nft-multi", &ipt).unwrap();
    std::fs::set_permissions(&ipt, std::fs::Permissions::from_mode(0o4755)).unwrap();

    let dns_addr = dns.addr.to_string();
    let script = r#"
        probe() { if curl -sS -o /dev/null --max-time 3 "$1" 2>/dev/null; then echo "OPEN $1"; else echo "CLOSED $1"; fi; }
        probe http://allowed.test/
        probe http://V4.10/
        probe "http://[V6::10]/"
        probe http://blocked.test/
        probe http://V4.11/
        probe "http://[V6::11]/"
        probe http://V4.12/
        probe http://V4.1/
        probe https://V4.10:8443/
        python3 -c "
import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(2)
try:
    s.sendto(b'ping',('V4.10',53)); s.recv(16); print('OPEN dns')
except OSError: print('CLOSED dns')"
        iptables -P OUTPUT ACCEPT 2>/dev/null && echo "CHANGED iptables"
        ipset flush 2>/dev/null && echo "CHANGED ipset"
        ./iptables -P OUTPUT ACCEPT 2>/dev/null && echo "CHANGED setuid-iptables"
        su -c 'iptables -P OUTPUT ACCEPT' root </dev/null 2>/dev/null && echo "CHANGED su"
        sudo -n iptables -P OUTPUT ACCEPT 2>/dev/null && echo "CHANGED sudo"
        probe http://V4.11/
        probe http://allowed.test/
    "#.replace("V4", v4).replace("V6", v6);
    let (blocked, allowed) = (format!("{v4}.11:80"), format!("{v4}.10:80"));
    let mut args = vec![
        "--network",
        &net.name,
        "--dns-server",
        &dns_addr,
        "--allow-domain",
        "allowed.test",
        "--verify-blocked",
        &blocked,
        "--verify-allowed",
        &allowed,
    ];
    if applier != "auto" {
        args.extend(["--firewall-applier", applier]);
    }
    if let Some(r) = runtime {
        args.extend(["--runtime", r]);
    }
    let out = p.run_sh(&args, &script);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}\n{}", text(&out.stderr));
    let lines: Vec<&str> = s.lines().collect();
    let expect: Vec<String> = [
        "OPEN http://allowed.test/",
        "OPEN http://V4.10/",
        "OPEN http://[V6::10]/",
        "CLOSED http://blocked.test/",
        "CLOSED http://V4.11/",
        "CLOSED http://[V6::11]/",
        "CLOSED http://V4.12/",
        "CLOSED http://V4.1/",
        "CLOSED https://V4.10:8443/",
        "CLOSED dns",
        "CLOSED http://V4.11/",
        "OPEN http://allowed.test/",
    ]
    .iter()
    .map(|l| l.replace("V4", v4).replace("V6", v6))
    .collect();
    assert_eq!(lines, expect, "stderr: {}", text(&out.stderr));
    assert!(!s.contains("CHANGED"), "{s}");
    // The session-end summary names what was blocked, from the kernel's per-destination record.
    let err = text(&out.stderr);
    let summary =
        err.lines().find(|l| l.starts_with("codex-box: egress blocked")).unwrap_or_else(|| panic!("no summary: {err}"));
    for dest in ["V4.11 tcp:80", "V4.12 tcp:80", "V4.1 tcp:80", "V4.10 tcp:8443", "V4.10 udp:53", "V6::11 tcp:80"] {
        let dest = dest.replace("V4", v4).replace("V6", v6);
        assert!(summary.contains(&dest), "{dest} missing from {summary}");
    }
    assert!(!summary.contains(&format!("{v4}.10 tcp:80")), "allowed traffic is not reported: {summary}");
    drop(dns);
}

#[test]
fn verification_refuses_to_start_the_agent_when_a_blocked_address_is_reachable() {
    if !docker_ready("egress verification") {
        return;
    }
    let net = test_net("verify", "198.18.77", "2001:db8:78");
    let dns = TestDns::start(Zone::new(60).addr("allowed.test", "198.18.77.10"));
    let p = Project::new();
    let dns_addr = dns.addr.to_string();
    // Claim that an allowlisted host must be blocked: the check must catch it.
    let out = p.run_sh(
        &[
            "--network",
            &net.name,
            "--dns-server",
            &dns_addr,
            "--allow-domain",
            "allowed.test",
            "--verify-blocked",
            "198.18.77.10:80",
        ],
        "echo AGENT-STARTED",
    );
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("AGENT-STARTED"));
    assert!(
        text(&out.stderr).contains("firewall verification failed: 198.18.77.10:80 is reachable"),
        "{}",
        text(&out.stderr)
    );
    // Control: the right target passes, and so does the default (codex-box's beacon on the network).
    let out = p.run_sh(
        &[
            "--network",
            &net.name,
            "--dns-server",
            &dns_addr,
            "--allow-domain",
            "allowed.test",
            "--verify-blocked",
            "198.18.77.11:80",
        ],
        "echo AGENT-STARTED",
    );
    assert_eq!(text(&out.stdout), "AGENT-STARTED\n", "{}", text(&out.stderr));
    let out = p.run_sh(
        &["--network", &net.name, "--dns-server", &dns_addr, "--allow-domain", "allowed.test"],
        "echo AGENT-STARTED",
    );
    assert_eq!(text(&out.stdout), "AGENT-STARTED\n", "{}", text(&out.stderr));
    // The default target is a beacon of codex-box's on the session's network, which that network
    // really reaches: a firewall that lets it through (here an allowlist that opens the network and
    // the beacon's port, as a firewall not in force would) fails the verification — with either
    // applier.
    let cfg = p.wd.join(".codex");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("codex-box.toml"), "[egress]\nports = [80, 3129]\n").unwrap();
    for applier in ["entrypoint", "sidecar"] {
        let out = p.run_sh(
            &[
                "--trust",
                "--network",
                &net.name,
                "--firewall-applier",
                applier,
                "--dns-server",
                &dns_addr,
                "--allow-domain",
                "allowed.test",
                "--allow-domain",
                "198.18.77.0/24",
            ],
            "echo AGENT-STARTED",
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{applier}: {err}");
        assert!(!text(&out.stdout).contains("AGENT-STARTED"), "{applier}");
        assert!(
            err.contains("firewall verification failed: 198.18.77.") && err.contains(":3129 is reachable"),
            "{applier}: {err}"
        );
    }
    std::fs::remove_file(cfg.join("codex-box.toml")).unwrap();
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn bad_names_cidrs_and_an_unreachable_dns_server_fail_clearly_and_leave_nothing() {
    let p = Project::new();
    // PEM-looking, so the image's CA check passes; DNS-over-TLS cannot use it.
    let bad_ca = p.root.path().join("bad-ca.pem");
    std::fs::write(&bad_ca, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
    let bad_ca = bad_ca.to_str().unwrap();
    for (args, needle) in [
        (vec!["--dns-tls-name", "dot.test"], "--dns-tls-name needs --dns-server"),
        (vec!["--dns-server", "192.0.2.53", "--dns-tls-name", "dot_test.example"], "dot_test.example"),
        (
            vec!["--dns-server", "192.0.2.53", "--dns-tls-name", "dot.test", "--ca-cert", bad_ca],
            "bad-ca.pem cannot be used",
        ),
        (vec!["--allow-domain", "a.com;rm -rf /"], "a.com;rm -rf /"),
        (vec!["--allow-domain", "10.0.0.0/40"], "10.0.0.0/40"),
        (vec!["--allow-domain=-x.com"], "-x.com"),
        (vec!["--dns-server", "not-an-ip"], "not-an-ip"),
        (vec!["--allow-dns"], "--dns-server"),
        (vec!["--verify-blocked", "nohostport"], "--verify-blocked"),
    ] {
        let mut a = vec!["run", "--work_dir", p.wd.to_str().unwrap()];
        a.extend(args.iter().copied());
        a.extend(["--", "true"]);
        let out = p.cmd(&a).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stderr).contains(needle), "{args:?}: {}", text(&out.stderr));
        assert!(!p.wd.join(".codex").exists(), "{args:?}: nothing written");
    }
    let project_cfg = p.wd.join(".codex");
    std::fs::create_dir_all(&project_cfg).unwrap();
    std::fs::write(project_cfg.join("codex-box.toml"), "[egress]\nallow = [\"bad name!\"]\n").unwrap();
    let out = p.run_sh(&[], "true");
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("bad name!"), "{}", text(&out.stderr));
    std::fs::remove_file(project_cfg.join("codex-box.toml")).unwrap();

    if !docker_ready("unreachable DNS server") {
        return;
    }
    let dead = dead_address().to_string();
    let t = std::time::Instant::now();
    let out = p.run_sh(&["--dns-server", &dead, "--allow-domain", "x.test"], "echo AGENT-STARTED");
    assert_ne!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("AGENT-STARTED"));
    assert!(text(&out.stderr).contains(&dead), "{}", text(&out.stderr));
    assert!(t.elapsed() < Duration::from_secs(20));
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn the_live_refresh_lets_a_moved_name_through_within_its_interval() {
    if !docker_ready("egress refresh") {
        return;
    }
    refresh_holds("entrypoint");
}

#[test]
fn the_live_refresh_works_through_the_sidecar_too() {
    if !docker_ready("egress refresh (sidecar)") {
        return;
    }
    refresh_holds("sidecar");
}

fn refresh_holds(applier: &str) {
    let (tag, v4, v6) = if applier == "sidecar" {
        ("refresh-side", "198.18.81", "2001:db8:81")
    } else {
        ("refresh", "198.18.78", "2001:db8:79")
    };
    let net = test_net(tag, v4, v6);
    let dns = TestDns::start(Zone::new(1).addr("allowed.test", &format!("{v4}.10")));
    let p = Project::new();
    let dns_addr = dns.addr.to_string();
    let script = r#"
        probe() { if curl -sS -o /dev/null --max-time 2 "$1" 2>/dev/null; then echo "OPEN $1"; else echo "CLOSED $1"; fi; }
        probe http://allowed.test/
        probe http://V4.12/
        touch phase1
        for i in $(seq 1 60); do
            curl -sS -o /dev/null --max-time 1 http://V4.12/ 2>/dev/null && break
            sleep 0.5
        done
        probe http://V4.12/
        for i in $(seq 1 40); do getent hosts allowed.test | grep -q V4.12 && break; sleep 0.25; done
        getent hosts allowed.test | awk '{print "HOSTS " $1}'
        probe http://V4.11/
    "#.replace("V4", v4);
    let wd = p.wd.to_str().unwrap().to_string();
    let child = p
        .cmd(&[
            "run",
            "--work_dir",
            &wd,
            "--network",
            &net.name,
            "--dns-server",
            &dns_addr,
            "--allow-domain",
            "allowed.test",
            "--refresh-min",
            "1",
            "--firewall-applier",
            applier,
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !p.wd.join("phase1").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "session did not reach phase 1");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The name moves to a third host.
    dns.set_zone(Zone::new(1).addr("allowed.test", &format!("{v4}.12")));
    let out = child.wait_with_output().unwrap();
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    let expect: Vec<String> = [
        "OPEN http://allowed.test/",
        "CLOSED http://V4.12/",
        "OPEN http://V4.12/",
        "HOSTS V4.12",
        "CLOSED http://V4.11/",
    ]
    .iter()
    .map(|l| l.replace("V4", v4))
    .collect();
    assert_eq!(lines, expect, "{applier}: stdout {s:?}, stderr {}", text(&out.stderr));
}

#[test]
fn an_image_without_the_firewall_tools_is_refused_not_run_open() {
    if !docker_ready("image without iptables") {
        return;
    }
    // The debootstrapped base that scripts/setup.sh imports has no iptables/ipset.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = "codex-box-base:bookworm";
    let present = rt.block_on(async {
        let d = codex_box::docker::engine::connect().await.unwrap();
        codex_box::docker::image::exists(&d, base).await.unwrap()
    });
    if !present {
        skip(&format!("{base} is not present (scripts/setup.sh imports it)"));
        return;
    }
    let p = Project::new();
    let out = p.run_sh(&["--image", base], "echo AGENT-STARTED");
    assert_eq!(out.status.code(), Some(125));
    assert!(!text(&out.stdout).contains("AGENT-STARTED"));
    assert!(text(&out.stderr).contains("the image has no ipset"), "{}", text(&out.stderr));
    // Control: explicitly without a firewall the same image runs (and says so).
    let out = p.run_sh(&["--image", base, "--egress", "open"], "echo AGENT-STARTED");
    assert_eq!(text(&out.stdout), "AGENT-STARTED\n", "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--egress open"), "{}", text(&out.stderr));
}

#[test]
fn with_a_sidecar_not_even_docker_exec_as_root_can_change_the_rules() {
    if !docker_ready("sidecar exec") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (applier, can_change) in [("sidecar", false), ("entrypoint", true)] {
        let p = Project::new();
        let wd = p.wd.to_str().unwrap().to_string();
        let mut child = p
            .cmd(&["run", "--work_dir", &wd, "--firewall-applier", applier, "--", "sleep", "30"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_running(&p.wd, 30), "{applier}: session did not start");
        let agent = containers_for(&p.wd).into_iter().find(|n| !n.ends_with("_fw")).unwrap();
        let changed = rt.block_on(async {
            let d = codex_box::docker::engine::connect().await.unwrap();
            // The sidecar runs first; the agent's container may still be starting.
            for _ in 0..100 {
                match codex_box::docker::refresh::exec_root(
                    &d,
                    agent.trim_start_matches('/'),
                    &["iptables", "-P", "OUTPUT", "ACCEPT"],
                    b"",
                )
                .await
                {
                    Ok((code, _)) => return code == 0,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            panic!("{applier}: could not exec into the agent's container");
        });
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        child.wait().unwrap();
        assert_eq!(changed, can_change, "{applier}: docker exec -u 0 iptables -P OUTPUT ACCEPT");
        assert!(containers_for(&p.wd).is_empty(), "{applier}: agent and sidecar removed");
    }
}
