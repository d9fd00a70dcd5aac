//! Which hosts the proxy lets through: a pure function of the requested host, the allowlist and
//! the denylist.
//!
//! Patterns, like Codex's network profiles: `name.example` matches that name only; `*.example.com`
//! matches its subdomains but not `example.com`; `**.example.com` matches `example.com` and its
//! subdomains; `*` alone matches every name (and every public IP literal) — only where it is given
//! explicitly; an IP address or CIDR matches IP-literal requests inside it and also opens those
//! addresses when a name resolves to them (see [`Rules::address_allowed`]). A deny match always
//! beats an allow match. Names are compared lowercased, without a trailing dot.
//!
//! What it enforces: the decision for a host *as requested* (CONNECT target, absolute-form URL).
//! What it does not: look names up or check what they resolve to — [`super::server`] does that and
//! asks [`Rules::address_allowed`] for each address.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::egress::entry::parse_entry;
use crate::egress::entry_types::{NameError, Problem, Source, Target};
use crate::egress::names::{split_list, BUILTIN_NAMES};
use crate::egress::Inputs;

/// One allow or deny pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `api.example.com`: that name only.
    Exact(String),
    /// `*.example.com`: strict subdomains of `example.com`.
    Subdomains(String),
    /// `**.example.com`: `example.com` and its subdomains.
    ApexAndSubdomains(String),
    /// `*`: every name and every public address.
    Any,
    /// An IP address or CIDR.
    Net(IpNet),
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(n) => f.write_str(n),
            Pattern::Subdomains(n) => write!(f, "*.{n}"),
            Pattern::ApexAndSubdomains(n) => write!(f, "**.{n}"),
            Pattern::Any => f.write_str("*"),
            Pattern::Net(n) => write!(f, "{}", Target::Net(*n)),
        }
    }
}

impl Pattern {
    /// Parses one entry: a wildcard prefix (`*.`, `**.`), `*`, or anything
    /// [`parse_entry`] accepts (a name, an IP address, a CIDR).
    pub fn parse(input: &str, origin: Source) -> Result<Pattern, NameError> {
        let s = input.trim();
        if s == "*" {
            return Ok(Pattern::Any);
        }
        let (rest, make): (&str, fn(String) -> Pattern) = if let Some(r) = s.strip_prefix("**.") {
            (r, Pattern::ApexAndSubdomains)
        } else if let Some(r) = s.strip_prefix("*.") {
            (r, Pattern::Subdomains)
        } else {
            (s, Pattern::Exact)
        };
        let wildcard = rest.len() != s.len();
        // The name after the prefix must itself be valid (and carry no further wildcard).
        let target = parse_entry(rest, origin).map_err(|e| match e {
            NameError::Entry { problem, .. } => NameError::Entry { input: input.to_string(), origin, problem },
            other => other,
        })?;
        match target {
            Target::Name(n) => Ok(make(n)),
            Target::Net(net) if !wildcard => Ok(Pattern::Net(net)),
            Target::Net(_) => Err(NameError::Entry { input: input.to_string(), origin, problem: Problem::Wildcard }),
        }
    }

    fn matches_name(&self, host: &str) -> bool {
        let sub = |base: &str| {
            host.len() > base.len() + 1 && host.ends_with(base) && host.as_bytes()[host.len() - base.len() - 1] == b'.'
        };
        match self {
            Pattern::Exact(n) => host == n,
            Pattern::Subdomains(base) => sub(base),
            Pattern::ApexAndSubdomains(base) => host == base || sub(base),
            Pattern::Any => true,
            Pattern::Net(_) => false,
        }
    }

    fn matches_addr(&self, ip: IpAddr, explicit_only: bool) -> bool {
        match self {
            Pattern::Net(n) => n.contains(&ip),
            Pattern::Any => !explicit_only && is_public(ip),
            _ => false,
        }
    }
}

/// A requested host: a normalised name or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Host {
    /// Normalises a host as a client sent it (`[v6]` brackets already removed): lowercased, one
    /// trailing dot stripped, LDH labels. `None` for anything that is not a valid host.
    pub fn parse(s: &str) -> Option<Host> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        if s.contains('/') || s.contains('*') {
            return None;
        }
        match parse_entry(s, Source::Flag) {
            Ok(Target::Name(n)) if n.len() == s.trim_end_matches('.').len() => Some(Host::Name(n)),
            _ => None,
        }
    }
}

/// Why a request was allowed or refused; shown in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this allow pattern.
    Allow(Pattern),
    /// Refused by this deny pattern.
    Denied(Pattern),
    /// No allow pattern matches.
    NotAllowed,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(p) => write!(f, "allow {p}"),
            Decision::Denied(p) => write!(f, "deny {p}"),
            Decision::NotAllowed => f.write_str("not in the allowlist"),
        }
    }
}

/// The proxy's allow and deny patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub allow: Vec<Pattern>,
    pub deny: Vec<Pattern>,
}

impl Rules {
    /// Merges the allowlist sources of [`Inputs`] (built-in names, `OPENAI_ALLOWED_DOMAINS`,
    /// `--allow-domain`, `[egress] allow`), accepting wildcards, and the deny entries
    /// (`--deny-domain`, `[egress] deny`). The first invalid entry is the error.
    pub fn merge(inputs: &Inputs<'_>, deny: &[String], deny_config: &[String]) -> Result<Rules, NameError> {
        let builtin = if inputs.builtin { BUILTIN_NAMES } else { &[] };
        let presets = crate::egress::presets::resolve(inputs.presets)?;
        let allow = builtin
            .iter()
            .map(|s| (*s, Source::Builtin))
            .chain(
                presets.iter().flat_map(|p| p.allow.iter().chain(p.proxy.iter()).map(|s| (*s, Source::Preset(p.name)))),
            )
            .chain(inputs.env.into_iter().flat_map(split_list).map(|s| (s, Source::Env)))
            .chain(inputs.flags.iter().map(|s| (s.as_str(), Source::Flag)))
            .chain(inputs.config.iter().map(|s| (s.as_str(), Source::Config)));
        let deny = deny
            .iter()
            .map(|s| (s.as_str(), Source::DenyFlag))
            .chain(deny_config.iter().map(|s| (s.as_str(), Source::DenyConfig)));
        Rules::from_entries(allow, deny)
    }

    /// Rules from (entry, where it came from) pairs, de-duplicated; the first invalid entry is the
    /// error.
    pub fn from_entries<'a>(
        allow: impl IntoIterator<Item = (&'a str, Source)>,
        deny: impl IntoIterator<Item = (&'a str, Source)>,
    ) -> Result<Rules, NameError> {
        let mut rules = Rules::default();
        for (input, origin) in allow {
            let p = Pattern::parse(input, origin)?;
            if !rules.allow.contains(&p) {
                rules.allow.push(p);
            }
        }
        for (input, origin) in deny {
            let p = Pattern::parse(input, origin)?;
            if !rules.deny.contains(&p) {
                rules.deny.push(p);
            }
        }
        Ok(rules)
    }

    /// The decision for a requested host. An IP literal is allowed by a containing IP/CIDR entry,
    /// or by `*` when it is a public address.
    pub fn decide(&self, host: &Host) -> Decision {
        let matches = |p: &Pattern| match host {
            Host::Name(n) => p.matches_name(n),
            Host::Ip(ip) => p.matches_addr(*ip, false),
        };
        if let Some(p) = self.deny.iter().find(|p| matches(p)) {
            return Decision::Denied(p.clone());
        }
        match self.allow.iter().find(|p| matches(p)) {
            Some(p) => Decision::Allow(p.clone()),
            None => Decision::NotAllowed,
        }
    }

    /// Whether the proxy may connect to `ip`, an address an allowed name resolved to: never when
    /// a deny IP/CIDR covers it; a public address always; a loopback, private, link-local,
    /// unspecified or otherwise non-public one only when an allow IP/CIDR entry covers it.
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        if self.deny.iter().any(|p| matches!(p, Pattern::Net(n) if n.contains(&ip))) {
            return false;
        }
        is_public(ip) || self.allow.iter().any(|p| p.matches_addr(ip, true))
    }
}

/// The IPv4 address an IPv6 address carries where a network would deliver it to that IPv4
/// host: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and
/// 6to4 (`2002:AABB:CCDD::/48`). (Local-use NAT64, `64:ff9b:1::/48`, is never public.)
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let seg = v6.segments();
    let low = |hi: u16, lo: u16| std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if seg[..6] == [0; 6] && !(seg[6] == 0 && seg[7] <= 1) {
        return Some(low(seg[6], seg[7])); // ::a.b.c.d, not :: or ::1
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return Some(low(seg[1], seg[2]));
    }
    None
}

/// Not loopback, private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), link-local
/// (169.254/16, fe80::/10), unspecified, broadcast or multicast; an IPv6 address that carries an
/// IPv4 one (mapped, compatible, NAT64, 6to4) judged as that IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let seg = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg & 0xfe00) == 0xfc00
                || (seg & 0xffc0) == 0xfe80
                || v6.segments()[..3] == [0x64, 0xff9b, 1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> Rules {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        let deny: Vec<String> = deny.iter().map(|s| s.to_string()).collect();
        Rules::merge(&Inputs { flags: &allow, ..Inputs::default() }, &deny, &[]).unwrap()
    }

    fn host(s: &str) -> Host {
        Host::parse(s).unwrap_or_else(|| panic!("{s} is a host"))
    }

    fn allowed(r: &Rules, h: &str) -> bool {
        r.decide(&host(h)).allowed()
    }

    #[test]
    fn exact_names_match_only_themselves_case_and_trailing_dot_aside() {
        let r = rules(&["pypi.org"], &[]);
        assert!(allowed(&r, "pypi.org") && allowed(&r, "PyPI.ORG") && allowed(&r, "pypi.org."));
        assert!(!allowed(&r, "files.pypi.org") && !allowed(&r, "xpypi.org") && !allowed(&r, "pypi.org.evil.test"));
        assert_eq!(r.decide(&host("pypi.org")).to_string(), "allow pypi.org");
        assert_eq!(r.decide(&host("npmjs.org")), Decision::NotAllowed);
    }

    #[test]
    fn one_star_is_subdomains_only_two_stars_include_the_apex() {
        let r = rules(&["*.example.com", "**.example.org"], &[]);
        assert!(allowed(&r, "a.example.com") && allowed(&r, "a.b.example.com"));
        assert!(!allowed(&r, "example.com") && !allowed(&r, "badexample.com") && !allowed(&r, "example.com.evil.test"));
        assert!(allowed(&r, "example.org") && allowed(&r, "x.example.org"));
        assert!(!allowed(&r, "notexample.org"));
        assert_eq!(r.decide(&host("x.example.org")).to_string(), "allow **.example.org");
    }

    #[test]
    fn ipv6_addresses_carrying_ipv4_ones_are_judged_by_them() {
        let public = |s: &str| is_public(s.parse().unwrap());
        for private in
            ["::ffff:10.0.0.1", "::10.0.0.1", "64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:a00:1::1", "64:ff9b:1::1"]
        {
            assert!(!public(private), "{private}");
        }
        for ok in ["::ffff:198.51.100.7", "64:ff9b::c633:6407", "2002:c633:6407::1", "2001:db8::1"] {
            assert!(public(ok), "{ok}");
        }
        assert!(!public("::") && !public("::1"));
    }

    #[test]
    fn star_alone_allows_everything_named_but_only_public_addresses() {
        let r = rules(&["*"], &[]);
        assert!(allowed(&r, "anything.test") && allowed(&r, "203.0.113.7"));
        assert!(!allowed(&r, "10.0.0.1") && !allowed(&r, "127.0.0.1") && !allowed(&r, "169.254.169.254"));
        assert!(!rules(&["api.openai.com"], &[]).decide(&host("other.test")).allowed(), "no implicit allow-all");
    }

    #[test]
    fn deny_always_beats_allow() {
        let r = rules(
            &["*", "**.example.com", "bad.example.com"],
            &["bad.example.com", "*.corp.example.com", "203.0.113.0/24"],
        );
        assert!(allowed(&r, "good.example.com"));
        assert_eq!(r.decide(&host("bad.example.com")), Decision::Denied(Pattern::Exact("bad.example.com".into())));
        assert!(!allowed(&r, "x.corp.example.com"));
        assert!(allowed(&r, "corp.example.com"), "*. is subdomains only, in deny too");
        assert!(!allowed(&r, "203.0.113.9"));
        assert!(!r.address_allowed("203.0.113.9".parse().unwrap()), "a denied range stays closed for resolved names");
        assert_eq!(r.decide(&host("203.0.113.9")).to_string(), "deny 203.0.113.0/24");
    }

    #[test]
    fn ip_entries_open_literals_and_private_answers() {
        let r = rules(&["allowed.test", "127.0.0.1", "10.1.0.0/16"], &[]);
        assert!(allowed(&r, "127.0.0.1") && allowed(&r, "10.1.2.3"));
        assert!(!allowed(&r, "127.0.0.2") && !allowed(&r, "[::1]".trim_matches(['[', ']'])));
        assert!(r.address_allowed("127.0.0.1".parse().unwrap()));
        assert!(!r.address_allowed("127.0.0.2".parse().unwrap()));
        assert!(!r.address_allowed("192.168.1.1".parse().unwrap()));
        assert!(r.address_allowed("198.51.100.10".parse().unwrap()), "public");
        assert!(!r.address_allowed("::ffff:10.9.0.1".parse().unwrap()), "mapped v4 judged as v4");
        assert!(!r.address_allowed("fe80::1".parse().unwrap()) && !r.address_allowed("fd00::1".parse().unwrap()));
        assert!(!r.address_allowed("100.64.0.1".parse().unwrap()) && !r.address_allowed("0.0.0.0".parse().unwrap()));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_entry_and_source() {
        let bad = |s: &str| {
            let flags = vec![s.to_string()];
            Rules::merge(&Inputs { flags: &flags, ..Inputs::default() }, &[], &[]).unwrap_err().to_string()
        };
        assert!(bad("*.a.com;rm").contains("\"*.a.com;rm\" (from --allow-domain)"));
        assert!(bad("a.*.com").contains("wildcards"));
        assert!(bad("*.*.com").contains("wildcards"));
        assert!(bad("*.10.0.0.0/8").contains("wildcards"));
        assert!(bad("*.com").contains("single label"));
        assert!(bad("https://x.com").contains("give the host name only: x.com"));
        let deny = vec!["x..com".to_string()];
        let e = Rules::merge(&Inputs::default(), &[], &deny).unwrap_err().to_string();
        assert!(e.contains("(from [egress] allow in the config file)") || e.contains("x..com"), "{e}");
    }

    #[test]
    fn sources_merge_with_builtins_and_env() {
        let flags = vec!["**.pypi.org".to_string()];
        let r = Rules::merge(
            &Inputs { builtin: true, env: Some("*.npmjs.org, github.com"), flags: &flags, config: &[], presets: &[] },
            &[],
            &[],
        )
        .unwrap();
        assert!(allowed(&r, "api.openai.com") && allowed(&r, "registry.npmjs.org") && allowed(&r, "pypi.org"));
        assert!(!allowed(&r, "npmjs.org"));
        assert_eq!(r.allow.len(), BUILTIN_NAMES.len() + 3);
    }

    #[test]
    fn hosts_are_validated() {
        assert_eq!(Host::parse("Allowed.Test."), Some(Host::Name("allowed.test".into())));
        assert_eq!(Host::parse("::1"), Some(Host::Ip("::1".parse().unwrap())));
        for bad in ["", "a b.com", "*.x.com", "x.com/24", "10.0.0.0/8", "localhost", " x.com", "a..b", "x.com:80"] {
            assert_eq!(Host::parse(bad), None, "{bad:?}");
        }
    }
}
