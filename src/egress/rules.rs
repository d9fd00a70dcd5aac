//! The firewall as text: `ipset restore`, `iptables-restore` and `ip6tables-restore` inputs, as
//! pure functions of a [`FirewallSpec`].
//!
//! The in-container entrypoint runs, as root with NET_ADMIN and NET_RAW:
//! `ipset restore -exist < firewall.ipset; iptables-restore < firewall.v4; ip6tables-restore <
//! firewall.v6`. The ipset text creates its sets with `-exist`, flushes and fills them, so it can be
//! applied twice; each iptables text is a whole `*filter` table, so one restore is atomic.
//!
//! What it enforces, in OUTPUT order: established traffic; DNS (UDP and TCP) only to the one
//! chosen resolver when opted in, every other port-53 packet and Docker's embedded resolver
//! (127.0.0.11) rejected, even over loopback; loopback; explicit allowlist entries inside closed
//! ranges; private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, and those IPv4 ranges with
//! loopback as NAT64/6to4 reach them), link-local (169.254/16,
//! fe80::/10) and the caller's extra ranges (Docker gateway, host addresses) rejected; TCP to the
//! allow sets on the configured ports; everything else rejected (TCP reset, ICMP port unreachable or
//! ICMPv6 administratively prohibited) so tools fail fast. Policies are DROP; IPv6 neighbour
//! discovery is allowed. Every decision rule has a `codex-box …` comment so counters can be read
//! back ([`super::counters`]). What it does not: filter by name, inspect TLS, or limit rates.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::aggregate::AllowSets;

/// The ipset names.
pub const SET_V4: &str = "codex_allow4";
pub const SET_V6: &str = "codex_allow6";
/// Capacity of each set.
pub const MAX_SET_ENTRIES: usize = 262_144;
/// The chain every rejected packet goes through (optional log, then REJECT).
pub const REJECT_CHAIN: &str = "CODEX_REJECT";
/// Docker's embedded resolver on user-defined networks.
pub const DOCKER_DNS: &str = "127.0.0.11";
/// Ranges closed unless an explicit entry covers them.
pub const CLOSED_V4: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"];
pub const CLOSED_V6: &[&str] = &["fc00::/7", "fe80::/10", "64:ff9b:1::/48"];

/// The closed IPv4 ranges (and loopback) as IPv6 reaches them: through NAT64 (`64:ff9b::/96`) and
/// 6to4 (`2002::/16`), so an allowlisted name answering with `64:ff9b::a00:1` cannot reach 10.0.0.1
/// on a network with a NAT64 gateway.
pub fn closed_v4_in_v6() -> Vec<IpNet> {
    let mut out = Vec::new();
    for s in CLOSED_V4.iter().copied().chain(["127.0.0.0/8"]) {
        let Ok(IpNet::V4(n)) = s.parse::<IpNet>() else { continue };
        let o = n.network().octets();
        let (hi, lo) = (u16::from_be_bytes([o[0], o[1]]), u16::from_be_bytes([o[2], o[3]]));
        let nat64 = std::net::Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo);
        let six_to_four = std::net::Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 0);
        for (addr, len) in [(nat64, 96 + n.prefix_len()), (six_to_four, 16 + n.prefix_len())] {
            if let Ok(net) = ipnet::Ipv6Net::new(addr, len) {
                out.push(IpNet::V6(net.trunc()));
            }
        }
    }
    out
}
/// Sets recording each blocked destination (address, protocol, port) with packet counters, for the
/// session-end summary ([`LogMode::Record`]).
pub const BLOCKED_V4: &str = "codex_blocked4";
pub const BLOCKED_V6: &str = "codex_blocked6";
/// Log prefix of [`LogMode::Log`] lines, read back by [`super::counters::summarise_log`].
pub const LOG_PREFIX: &str = "codex-box-deny ";

/// Whether rejected packets are also logged (counters are always kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogMode {
    #[default]
    Off,
    /// Kernel log, rate limited, with [`LOG_PREFIX`].
    Log,
    /// Netlink log group, for a userspace reader.
    Nflog(u16),
    /// Every rejected destination recorded in [`BLOCKED_V4`]/[`BLOCKED_V6`] (`hash:ip,port` with
    /// counters): a real, per-destination source for the summary, readable with `ipset list`.
    Record,
}

/// Everything the rule texts depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallSpec {
    /// Resolved addresses and explicit entries, aggregated.
    pub sets: AllowSets,
    /// Explicit IPs/CIDRs of the allowlist; those inside a closed range are opened before it.
    pub explicit: Vec<IpNet>,
    /// TCP ports open to the allow sets.
    pub ports: Vec<u16>,
    /// The one resolver reachable on its port (UDP and TCP), when DNS is allowed.
    pub dns: Option<SocketAddr>,
    /// More ranges to close: the Docker gateway, the host's addresses.
    pub closed: Vec<IpNet>,
    pub log: LogMode,
    /// Proxy mode (`--egress proxy`): when not empty, TCP goes only to these addresses and ports
    /// (the egress proxy on the host); the sets, explicit entries and ports above are not used.
    pub only: Vec<SocketAddr>,
    /// TCP addresses and ports of codex-box's own services open in every mode (the session
    /// companion's API relay), before any range is closed.
    pub services: Vec<SocketAddr>,
}

impl Default for FirewallSpec {
    fn default() -> Self {
        FirewallSpec {
            sets: AllowSets::default(),
            explicit: Vec::new(),
            ports: super::config::DEFAULT_PORTS.to_vec(),
            dns: None,
            closed: Vec::new(),
            log: LogMode::Off,
            only: Vec::new(),
            services: Vec::new(),
        }
    }
}

impl FirewallSpec {
    /// The firewall of a proxy-mode session: nothing but TCP to `proxy` (plus loopback), DNS
    /// closed like in allowlist mode.
    pub fn proxy_only(proxy: SocketAddr) -> FirewallSpec {
        FirewallSpec { ports: Vec::new(), only: vec![proxy], ..FirewallSpec::default() }
    }
}

/// The three texts the entrypoint applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTexts {
    pub ipset: String,
    pub v4: String,
    pub v6: String,
}

pub fn render(spec: &FirewallSpec) -> RuleTexts {
    let mut ipset = ipset_text(&spec.sets);
    if spec.log == LogMode::Record {
        for (set, family) in [(BLOCKED_V4, "inet"), (BLOCKED_V6, "inet6")] {
            let _ = writeln!(ipset, "create {set} hash:ip,port family {family} counters maxelem 65536 -exist");
            let _ = writeln!(ipset, "flush {set}");
        }
    }
    RuleTexts { ipset, v4: filter_text(spec, Family::V4), v6: filter_text(spec, Family::V6) }
}

/// `ipset restore` input: both sets created (`-exist`), flushed, then filled. The create
/// parameters are fixed (up to [`MAX_SET_ENTRIES`] per set) so the same `create` line matches an
/// existing set whatever its content, which keeps the text idempotent.
pub fn ipset_text(sets: &AllowSets) -> String {
    let mut out = String::new();
    for (set, family) in [(SET_V4, "inet"), (SET_V6, "inet6")] {
        let _ = writeln!(out, "create {set} hash:net family {family} hashsize 1024 maxelem {MAX_SET_ENTRIES} -exist");
    }
    let _ = writeln!(out, "flush {SET_V4}");
    let _ = writeln!(out, "flush {SET_V6}");
    for net in &sets.v4 {
        let _ = writeln!(out, "add {SET_V4} {net} -exist");
    }
    for net in &sets.v6 {
        let _ = writeln!(out, "add {SET_V6} {net} -exist");
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn has(self, net: &IpNet) -> bool {
        matches!((self, net), (Family::V4, IpNet::V4(_)) | (Family::V6, IpNet::V6(_)))
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn port_lists(ports: &[u16]) -> Vec<String> {
    // multiport takes at most 15 ports per rule.
    ports.chunks(15).map(|c| c.iter().map(u16::to_string).collect::<Vec<_>>().join(",")).collect()
}

fn filter_text(spec: &FirewallSpec, family: Family) -> String {
    let (set, unreachable, closed_builtin) = match family {
        Family::V4 => (SET_V4, "icmp-port-unreachable", CLOSED_V4),
        Family::V6 => (SET_V6, "icmp6-adm-prohibited", CLOSED_V6),
    };
    let mut closed: Vec<IpNet> = closed_builtin.iter().filter_map(|s| s.parse().ok()).collect();
    if family == Family::V6 {
        closed.extend(closed_v4_in_v6());
    }
    closed.extend(spec.closed.iter().filter(|n| family.has(n)).map(IpNet::trunc));
    let mut r = Vec::<String>::new();
    let mut add = |s: String| r.push(s);
    add("*filter".into());
    add(":INPUT DROP [0:0]".into());
    add(":FORWARD DROP [0:0]".into());
    add(":OUTPUT DROP [0:0]".into());
    add(format!(":{REJECT_CHAIN} - [0:0]"));
    add("-A INPUT -i lo -j ACCEPT".into());
    add("-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT".into());
    if family == Family::V6 {
        for t in ["router-advertisement", "neighbour-solicitation", "neighbour-advertisement"] {
            add(format!("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT"));
        }
    }
    add("-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT".into());
    if family == Family::V6 {
        for t in ["router-solicitation", "neighbour-solicitation", "neighbour-advertisement"] {
            add(format!("-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT"));
        }
    }
    let dns = spec.dns.filter(|d| family.has(&IpNet::from(d.ip())));
    if let Some(d) = dns {
        let ip = IpNet::from(d.ip());
        for proto in ["udp", "tcp"] {
            add(format!(
                "-A OUTPUT -d {ip} -p {proto} -m {proto} --dport {} -m comment --comment \"codex-box dns-allowed\" -j ACCEPT",
                d.port()
            ));
        }
    }
    for proto in ["udp", "tcp"] {
        add(format!(
            "-A OUTPUT -p {proto} -m {proto} --dport 53 -m comment --comment \"codex-box dns\" -j {REJECT_CHAIN}"
        ));
    }
    let docker_dns: IpAddr = DOCKER_DNS.parse().unwrap_or(IpAddr::from([127, 0, 0, 11]));
    if family == Family::V4 && dns.map(|d| d.ip()) != Some(docker_dns) {
        add(format!("-A OUTPUT -d {docker_dns}/32 -m comment --comment \"codex-box docker-dns\" -j {REJECT_CHAIN}"));
    }
    add("-A OUTPUT -o lo -j ACCEPT".into());
    for target in spec.only.iter().filter(|t| family.has(&IpNet::from(t.ip()))) {
        add(format!(
            "-A OUTPUT -d {} -p tcp -m tcp --dport {} -m comment --comment \"codex-box proxy\" -j ACCEPT",
            IpNet::from(target.ip()),
            target.port()
        ));
    }
    for target in spec.services.iter().filter(|t| family.has(&IpNet::from(t.ip()))) {
        add(format!(
            "-A OUTPUT -d {} -p tcp -m tcp --dport {} -m comment --comment \"codex-box service\" -j ACCEPT",
            IpNet::from(target.ip()),
            target.port()
        ));
    }
    let ports = if spec.only.is_empty() { port_lists(&spec.ports) } else { Vec::new() };
    for net in spec.explicit.iter().filter(|n| family.has(n) && closed.iter().any(|c| overlaps(c, n))) {
        for p in &ports {
            add(format!(
                "-A OUTPUT -d {} -p tcp -m multiport --dports {p} -m comment --comment \"codex-box explicit\" -j ACCEPT",
                net.trunc()
            ));
        }
    }
    for net in closed.iter().filter(|_| spec.only.is_empty()) {
        add(format!("-A OUTPUT -d {net} -m comment --comment \"codex-box closed-range\" -j {REJECT_CHAIN}"));
    }
    for p in &ports {
        add(format!(
            "-A OUTPUT -p tcp -m set --match-set {set} dst -m multiport --dports {p} -m comment --comment \"codex-box allow\" -j ACCEPT"
        ));
    }
    add(format!("-A OUTPUT -m comment --comment \"codex-box other\" -j {REJECT_CHAIN}"));
    match spec.log {
        LogMode::Off => {}
        LogMode::Log => add(format!(
            "-A {REJECT_CHAIN} -m limit --limit 30/min --limit-burst 60 -j LOG --log-prefix \"{LOG_PREFIX}\""
        )),
        LogMode::Nflog(group) => {
            add(format!("-A {REJECT_CHAIN} -j NFLOG --nflog-group {group} --nflog-prefix \"codex-box\""))
        }
        LogMode::Record => {
            let blocked = if family == Family::V4 { BLOCKED_V4 } else { BLOCKED_V6 };
            add(format!("-A {REJECT_CHAIN} -j SET --add-set {blocked} dst,dst --exist"));
            add(format!(
                "-A {REJECT_CHAIN} -m set --match-set {blocked} dst,dst -m comment --comment \"codex-box recorded\""
            ));
        }
    }
    add(format!("-A {REJECT_CHAIN} -p tcp -j REJECT --reject-with tcp-reset"));
    add(format!("-A {REJECT_CHAIN} -j REJECT --reject-with {unreachable}"));
    add("COMMIT".into());
    let mut text = r.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::aggregate::aggregate;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ipset_text_creates_flushes_and_fills() {
        let sets = aggregate(ips(&["203.0.113.4", "203.0.113.5", "2001:db8::1"]), &[]);
        assert_eq!(
            ipset_text(&sets),
            "create codex_allow4 hash:net family inet hashsize 1024 maxelem 262144 -exist\n\
             create codex_allow6 hash:net family inet6 hashsize 1024 maxelem 262144 -exist\n\
             flush codex_allow4\n\
             flush codex_allow6\n\
             add codex_allow4 203.0.113.4/31 -exist\n\
             add codex_allow6 2001:db8::1/128 -exist\n"
        );
    }

    #[test]
    fn default_v4_table() {
        let spec = FirewallSpec::default();
        let expected = r#"*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
:CODEX_REJECT - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -p udp -m udp --dport 53 -m comment --comment "codex-box dns" -j CODEX_REJECT
-A OUTPUT -p tcp -m tcp --dport 53 -m comment --comment "codex-box dns" -j CODEX_REJECT
-A OUTPUT -d 127.0.0.11/32 -m comment --comment "codex-box docker-dns" -j CODEX_REJECT
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -d 10.0.0.0/8 -m comment --comment "codex-box closed-range" -j CODEX_REJECT
-A OUTPUT -d 172.16.0.0/12 -m comment --comment "codex-box closed-range" -j CODEX_REJECT
-A OUTPUT -d 192.168.0.0/16 -m comment --comment "codex-box closed-range" -j CODEX_REJECT
-A OUTPUT -d 100.64.0.0/10 -m comment --comment "codex-box closed-range" -j CODEX_REJECT
-A OUTPUT -d 169.254.0.0/16 -m comment --comment "codex-box closed-range" -j CODEX_REJECT
-A OUTPUT -p tcp -m set --match-set codex_allow4 dst -m multiport --dports 443,80 -m comment --comment "codex-box allow" -j ACCEPT
-A OUTPUT -m comment --comment "codex-box other" -j CODEX_REJECT
-A CODEX_REJECT -p tcp -j REJECT --reject-with tcp-reset
-A CODEX_REJECT -j REJECT --reject-with icmp-port-unreachable
COMMIT
"#;
        assert_eq!(render(&spec).v4, expected);
    }

    #[test]
    fn v6_table_allows_neighbour_discovery_and_rejects_administratively() {
        let v6 = render(&FirewallSpec::default()).v6;
        assert!(v6.contains("-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -j ACCEPT\n"));
        assert!(v6.contains("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-advertisement -j ACCEPT\n"));
        assert!(v6.contains("-A OUTPUT -d fc00::/7 -m comment --comment \"codex-box closed-range\" -j CODEX_REJECT\n-A OUTPUT -d fe80::/10 "));
        assert!(v6.contains("--match-set codex_allow6 dst"));
        assert!(v6.ends_with("-A CODEX_REJECT -j REJECT --reject-with icmp6-adm-prohibited\nCOMMIT\n"));
        assert!(!v6.contains("127.0.0.11"));
        // Private IPv4 reached through NAT64 or 6to4 is closed like the IPv4 range itself.
        for net in
            ["64:ff9b::a00:0/104", "64:ff9b::c0a8:0/112", "64:ff9b::7f00:0/104", "2002:a00::/24", "64:ff9b:1::/48"]
        {
            assert!(
                v6.contains(&format!(
                    "-A OUTPUT -d {net} -m comment --comment \"codex-box closed-range\" -j CODEX_REJECT\n"
                )),
                "{net}"
            );
        }
        assert!(!v6.contains("-d 64:ff9b::/96 "), "public IPv4 through NAT64 stays reachable when allowed");
    }

    #[test]
    fn dns_opens_only_for_the_chosen_resolver_in_its_family() {
        let spec = FirewallSpec { dns: Some("192.168.1.53:53".parse().unwrap()), ..FirewallSpec::default() };
        let t = render(&spec);
        let dns_lines: Vec<&str> = t.v4.lines().filter(|l| l.contains("53 ")).collect();
        assert_eq!(
            dns_lines,
            [
                "-A OUTPUT -d 192.168.1.53/32 -p udp -m udp --dport 53 -m comment --comment \"codex-box dns-allowed\" -j ACCEPT",
                "-A OUTPUT -d 192.168.1.53/32 -p tcp -m tcp --dport 53 -m comment --comment \"codex-box dns-allowed\" -j ACCEPT",
                "-A OUTPUT -p udp -m udp --dport 53 -m comment --comment \"codex-box dns\" -j CODEX_REJECT",
                "-A OUTPUT -p tcp -m tcp --dport 53 -m comment --comment \"codex-box dns\" -j CODEX_REJECT",
            ]
        );
        assert!(!t.v6.contains("dns-allowed"));
        let docker = FirewallSpec { dns: Some("127.0.0.11:53".parse().unwrap()), ..FirewallSpec::default() };
        assert!(!render(&docker).v4.contains("docker-dns"));
    }

    #[test]
    fn explicit_entries_in_closed_ranges_come_before_the_reject() {
        let explicit: Vec<IpNet> =
            ["10.1.0.0/16", "203.0.113.0/24", "fd00::5/128"].iter().map(|s| s.parse().unwrap()).collect();
        let spec = FirewallSpec {
            sets: aggregate(Vec::new(), &explicit),
            explicit,
            ports: vec![443],
            closed: vec!["198.51.100.1/32".parse().unwrap()],
            ..FirewallSpec::default()
        };
        let t = render(&spec);
        let pos = |text: &str, needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing"));
        let open = pos(&t.v4, "-A OUTPUT -d 10.1.0.0/16 -p tcp -m multiport --dports 443 -m comment --comment \"codex-box explicit\" -j ACCEPT\n");
        assert!(open < pos(&t.v4, "-A OUTPUT -d 10.0.0.0/8 "));
        assert!(t.v4.contains(
            "-A OUTPUT -d 198.51.100.1/32 -m comment --comment \"codex-box closed-range\" -j CODEX_REJECT\n"
        ));
        assert!(!t.v4.contains("-d 203.0.113.0/24"), "public explicit entries go through the set");
        assert!(t.v6.contains("-A OUTPUT -d fd00::5/128 -p tcp -m multiport --dports 443 -m comment --comment \"codex-box explicit\" -j ACCEPT\n"));
    }

    #[test]
    fn many_ports_are_split_for_multiport_and_logging_is_optional() {
        let spec = FirewallSpec { ports: (1..=16).collect(), log: LogMode::Log, ..FirewallSpec::default() };
        let v4 = render(&spec).v4;
        assert!(v4.contains("--dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -m comment"));
        assert!(v4.contains("--dports 16 -m comment"));
        assert!(v4.contains(
            "-A CODEX_REJECT -m limit --limit 30/min --limit-burst 60 -j LOG --log-prefix \"codex-box-deny \"\n"
        ));
        let nf = render(&FirewallSpec { log: LogMode::Nflog(5), ..FirewallSpec::default() }).v4;
        assert!(nf.contains("-A CODEX_REJECT -j NFLOG --nflog-group 5 --nflog-prefix \"codex-box\"\n"));
    }

    #[test]
    fn a_service_port_opens_before_the_closed_ranges_in_both_modes() {
        let relay: SocketAddr = "172.17.0.5:3130".parse().unwrap();
        for spec in [FirewallSpec::default(), FirewallSpec::proxy_only("172.17.0.5:3128".parse().unwrap())] {
            let texts = render(&FirewallSpec { services: vec![relay], ..spec });
            let v4 = texts.v4;
            let accept = "-A OUTPUT -d 172.17.0.5/32 -p tcp -m tcp --dport 3130 -m comment --comment \"codex-box service\" -j ACCEPT";
            let at = v4.find(accept).unwrap_or_else(|| panic!("{v4}"));
            assert!(v4.find("closed-range").is_none_or(|c| c > at), "{v4}");
            assert_eq!(v4.matches("--dport 3130").count(), 1);
            assert!(!texts.v6.contains("3130"));
        }
    }

    #[test]
    fn proxy_only_opens_the_proxy_port_and_nothing_else() {
        let spec = FirewallSpec {
            explicit: vec!["203.0.113.0/24".parse().unwrap()],
            closed: vec!["172.17.0.1/32".parse().unwrap()],
            ..FirewallSpec::proxy_only("172.17.0.1:41234".parse().unwrap())
        };
        let t = render(&spec);
        let expected = r#"*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
:CODEX_REJECT - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -p udp -m udp --dport 53 -m comment --comment "codex-box dns" -j CODEX_REJECT
-A OUTPUT -p tcp -m tcp --dport 53 -m comment --comment "codex-box dns" -j CODEX_REJECT
-A OUTPUT -d 127.0.0.11/32 -m comment --comment "codex-box docker-dns" -j CODEX_REJECT
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -d 172.17.0.1/32 -p tcp -m tcp --dport 41234 -m comment --comment "codex-box proxy" -j ACCEPT
-A OUTPUT -m comment --comment "codex-box other" -j CODEX_REJECT
-A CODEX_REJECT -p tcp -j REJECT --reject-with tcp-reset
-A CODEX_REJECT -j REJECT --reject-with icmp-port-unreachable
COMMIT
"#;
        assert_eq!(t.v4, expected);
        assert!(
            !t.v6.contains("codex-box proxy") && !t.v6.contains("codex-box allow") && t.v6.contains("codex-box other"),
            "{}",
            t.v6
        );
        assert!(!t.ipset.contains("add "), "the sets stay empty: {}", t.ipset);
        let v6 = render(&FirewallSpec::proxy_only("[fd00::1]:3128".parse().unwrap())).v6;
        assert!(v6.contains("-A OUTPUT -d fd00::1/128 -p tcp -m tcp --dport 3128 -m comment --comment \"codex-box proxy\" -j ACCEPT\n"), "{v6}");
    }
}
