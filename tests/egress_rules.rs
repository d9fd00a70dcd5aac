//! The generated firewall texts, really applied with `ipset restore`, `iptables-restore` and
//! `ip6tables-restore` inside a network namespace this test creates (`cbx-test-<pid>`), wired by a
//! veth pair to a second namespace (`cbx-test-<pid>-h`) holding the test hosts and their listeners.
//! Every check has both sides: what is allowed connects, what is not is refused at once (a REJECT
//! the firewall produced — the hosts listen on every port tried). Needs root; otherwise skipped
//! ("skipped: …"), and failed under CI=true.
#![cfg(target_os = "linux")]

mod support;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use codex_box::egress::counters::parse_counters;
use codex_box::egress::resolve::NameResolution;
use codex_box::egress::{aggregate, plan_refresh, render, FirewallSpec, RefreshSettings, RefreshState, Resolution};
use ipnet::IpNet;
use support::netns::{unsupported, Netns};

const ALLOWED4: &str = "192.0.2.10";
const OTHER4: &str = "192.0.2.20";
const PRIVATE4: &str = "10.77.0.10";
const ALLOWED6: &str = "2001:db8::10";
const OTHER6: &str = "2001:db8::20";
/// 10.0.0.10 as IPv6 reaches it through a NAT64 gateway (here simply an address of the test host).
const NAT64_PRIVATE: &str = "64:ff9b::a00:a";

#[derive(Debug, PartialEq)]
enum Probe {
    Connected,
    Refused,
    TimedOut,
}

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// TCP connect from inside `ns`; a refusal must come back fast.
fn tcp(ns: &Netns, ip: &str, port: u16) -> Probe {
    let addr = sa(ip, port);
    ns.enter(move || {
        let start = Instant::now();
        let r = TcpStream::connect_timeout(&addr, Duration::from_secs(3));
        match r {
            Ok(_) => Probe::Connected,
            Err(e) if e.kind() == ErrorKind::TimedOut => Probe::TimedOut,
            Err(e) => {
                assert!(start.elapsed() < Duration::from_millis(500), "slow refusal: {e}");
                Probe::Refused
            }
        }
    })
}

/// A UDP datagram to port 53 from inside `ns`, answered by the echo server behind it.
fn udp53(ns: &Netns, ip: &str) -> Probe {
    let addr = sa(ip, 53);
    ns.enter(move || {
        let bind = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let s = UdpSocket::bind(bind).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.connect(addr).unwrap();
        let start = Instant::now();
        if s.send(b"ping").is_err() {
            return Probe::Refused;
        }
        let mut buf = [0u8; 16];
        match s.recv(&mut buf) {
            Ok(_) => Probe::Connected,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Probe::TimedOut,
            Err(e) => {
                assert!(start.elapsed() < Duration::from_millis(500), "slow refusal: {e}");
                Probe::Refused
            }
        }
    })
}

fn apply(ns: &Netns, spec: &FirewallSpec) {
    let t = render(spec);
    ns.exec(&["ipset", "restore", "-exist"], Some(&t.ipset)).unwrap();
    ns.exec(&["iptables-restore"], Some(&t.v4)).unwrap();
    ns.exec(&["ip6tables-restore"], Some(&t.v6)).unwrap();
}

/// Two namespaces: the client (firewalled) and the hosts, each host listening on TCP 443, 8443, 53
/// and echoing UDP 53.
fn topology(pid: u32) -> Result<(Netns, Netns), String> {
    let client = Netns::add(&format!("cbx-test-{pid}"))?;
    let hosts = Netns::add(&format!("cbx-test-{pid}-h"))?;
    let peer = hosts.name.clone();
    for ns in [&client, &hosts] {
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"], None)?;
    }
    client.exec(&["ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", &peer], None)?;
    for a in ["192.0.2.1/24", "10.77.0.1/24"] {
        client.exec(&["ip", "addr", "add", a, "dev", "veth0"], None)?;
    }
    for a in ["2001:db8::1/64", "64:ff9b::a00:1/96"] {
        client.exec(&["ip", "-6", "addr", "add", a, "dev", "veth0", "nodad"], None)?;
    }
    client.exec(&["ip", "link", "set", "veth0", "up"], None)?;
    for a in ["192.0.2.10/24", "192.0.2.20/24", "10.77.0.10/24"] {
        hosts.exec(&["ip", "addr", "add", a, "dev", "veth1"], None)?;
    }
    for a in ["2001:db8::10/64", "2001:db8::20/64", "64:ff9b::a00:a/96"] {
        hosts.exec(&["ip", "-6", "addr", "add", a, "dev", "veth1", "nodad"], None)?;
    }
    hosts.exec(&["ip", "link", "set", "veth1", "up"], None)?;
    // Wait for the carrier: a neighbour solicitation sent before it is lost.
    let deadline = Instant::now() + Duration::from_secs(5);
    for (ns, dev) in [(&client, "veth0"), (&hosts, "veth1")] {
        while !String::from_utf8_lossy(&ns.exec(&["ip", "link", "show", dev], None)?.stdout).contains("state UP") {
            if Instant::now() > deadline {
                return Err(format!("{dev} in {} did not come up", ns.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    hosts.enter(|| {
        for port in [443, 8443, 53] {
            let l = TcpListener::bind(("::", port)).expect("listen");
            std::thread::spawn(move || for _ in l.incoming() {});
        }
        // One UDP socket per address, so a reply leaves from the address that was asked.
        for host in [ALLOWED4, OTHER4, PRIVATE4, ALLOWED6, OTHER6] {
            let u = UdpSocket::bind(sa(host, 53)).expect("udp 53");
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while let Ok((n, peer)) = u.recv_from(&mut buf) {
                    let _ = u.send_to(&buf[..n], peer);
                }
            });
        }
    });
    Ok((client, hosts))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn generated_rules_allow_the_allowlist_and_reject_the_rest() {
    if let Some(reason) = unsupported() {
        support::skip(&reason);
        return;
    }
    let (client, _hosts) = topology(std::process::id()).expect("test namespaces");

    // Before any firewall everything answers: the refusals below are the firewall's.
    assert_eq!(tcp(&client, OTHER4, 443), Probe::Connected);
    assert_eq!(tcp(&client, OTHER6, 443), Probe::Connected);
    assert_eq!(tcp(&client, NAT64_PRIVATE, 443), Probe::Connected);
    assert_eq!(udp53(&client, OTHER4), Probe::Connected);

    // Names resolved to ALLOWED4, ALLOWED6 and (rebinding) PRIVATE4; port 443 only; no DNS.
    let resolved = [ip(ALLOWED4), ip(ALLOWED6), ip(PRIVATE4), ip(NAT64_PRIVATE)];
    let spec = FirewallSpec { sets: aggregate(resolved, &[]), ports: vec![443], ..FirewallSpec::default() };
    apply(&client, &spec);
    apply(&client, &spec); // idempotent

    assert_eq!(tcp(&client, ALLOWED4, 443), Probe::Connected);
    assert_eq!(tcp(&client, ALLOWED6, 443), Probe::Connected);
    assert_eq!(tcp(&client, OTHER4, 443), Probe::Refused);
    assert_eq!(tcp(&client, OTHER6, 443), Probe::Refused);
    assert_eq!(tcp(&client, ALLOWED4, 8443), Probe::Refused, "port not allowed");
    assert_eq!(tcp(&client, PRIVATE4, 443), Probe::Refused, "private range, not explicit");
    assert_eq!(tcp(&client, NAT64_PRIVATE, 443), Probe::Refused, "a private range through NAT64");
    assert_eq!(tcp(&client, OTHER4, 53), Probe::Refused);
    assert_eq!(udp53(&client, OTHER4), Probe::Refused);
    assert_eq!(udp53(&client, ALLOWED4), Probe::Refused);
    assert_eq!(udp53(&client, OTHER6), Probe::Refused);

    // The counters say what was blocked.
    let save = client.exec(&["iptables-save", "-c"], None).unwrap();
    let counts = parse_counters(&String::from_utf8_lossy(&save.stdout)).unwrap();
    let packets = |cat: &str, dest: Option<&str>| -> u64 {
        counts
            .iter()
            .filter(|c| c.category == cat && (dest.is_none() || c.destination.as_deref() == dest))
            .map(|c| c.packets)
            .sum()
    };
    assert!(packets("closed-range", Some("10.0.0.0/8")) >= 1);
    assert!(packets("dns", None) >= 3);
    assert!(packets("other", None) >= 2);
    assert!(packets("allow", None) >= 1);

    // Live refresh: the name moved from ALLOWED4 to OTHER4 and the old address aged out.
    let t0 = std::time::Instant::now();
    let moved = |addr: &str| Resolution {
        names: vec![NameResolution {
            name: "api.example.test".into(),
            addrs: vec![ip(addr)],
            min_ttl: Some(Duration::from_secs(60)),
            error: None,
        }],
        resolver: String::new(),
    };
    let state = RefreshState::new(vec![], &moved(ALLOWED4), t0);
    let later = t0 + Duration::from_secs(60) + RefreshSettings::default().grace;
    let plan = plan_refresh(&state, &moved(OTHER4), later, &RefreshSettings::default());
    client.exec(&["ipset", "restore", "-exist"], Some(&plan.ipset_text())).unwrap();
    assert_eq!(tcp(&client, OTHER4, 443), Probe::Connected);
    assert_eq!(tcp(&client, ALLOWED4, 443), Probe::Refused);

    // Opt in: PRIVATE4 listed explicitly, DNS to OTHER4 only.
    let explicit = vec![IpNet::from(ip(PRIVATE4))];
    let spec = FirewallSpec {
        sets: aggregate([ip(ALLOWED4), ip(ALLOWED6)], &explicit),
        explicit,
        ports: vec![443],
        dns: Some(sa(OTHER4, 53)),
        ..FirewallSpec::default()
    };
    apply(&client, &spec);
    assert_eq!(tcp(&client, PRIVATE4, 443), Probe::Connected);
    assert_eq!(udp53(&client, OTHER4), Probe::Connected);
    assert_eq!(tcp(&client, OTHER4, 53), Probe::Connected);
    assert_eq!(tcp(&client, OTHER4, 443), Probe::Refused, "the resolver gets DNS only");
    assert_eq!(udp53(&client, ALLOWED4), Probe::Refused);
    assert_eq!(udp53(&client, OTHER6), Probe::Refused);

    // An IPv6 resolver instead.
    let spec = FirewallSpec { dns: Some(sa(OTHER6, 53)), ..spec };
    apply(&client, &spec);
    assert_eq!(udp53(&client, OTHER6), Probe::Connected);
    assert_eq!(tcp(&client, OTHER6, 53), Probe::Connected);
    assert_eq!(udp53(&client, OTHER4), Probe::Refused);
    assert_eq!(tcp(&client, ALLOWED6, 443), Probe::Connected);
}
