//! Validation of one allowlist entry: a host name, an IP address or a CIDR.
//!
//! What it enforces: names are LDH (letters, digits, hyphen), labels at most 63 characters, the
//! whole name at most 253, at least two labels, lowercased, one trailing dot stripped; no wildcards
//! (the firewall filters by IP, so `*.example.com` cannot be expressed); CIDRs without host bits and
//! never `/0`. Anything else is refused with a [`Problem`] that has its own fix. What it does not:
//! it does not check that a name exists — that is [`super::resolve`]'s job.

use std::net::IpAddr;

use ipnet::IpNet;

pub use super::entry_types::Problem;
use super::entry_types::{NameError, Source, Target};

/// Validates and normalises one entry.
pub fn parse_entry(input: &str, origin: Source) -> Result<Target, NameError> {
    let fail = |problem| NameError::Entry { input: input.to_string(), origin, problem };
    let s = input.trim();
    if s.is_empty() {
        return Err(fail(Problem::Empty));
    }
    if let Some((_, rest)) = s.split_once("://") {
        let host = rest.split(['/', ':', '?', '#']).next().unwrap_or("").to_string();
        return Err(fail(Problem::Url { host }));
    }
    if let Some((addr, prefix)) = s.split_once('/') {
        if let Ok(ip) = addr.parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let net = match prefix.parse::<u8>() {
                Ok(p) if p <= max => IpNet::new(ip, p).map_err(|_| fail(Problem::Prefix { max }))?,
                _ => return Err(fail(Problem::Prefix { max })),
            };
            if net.prefix_len() == 0 {
                return Err(fail(Problem::Everything));
            }
            if net.trunc() != net {
                return Err(fail(Problem::HostBits { suggestion: net.trunc() }));
            }
            return Ok(Target::Net(net));
        }
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        if ip.is_unspecified() {
            return Err(fail(Problem::Everything));
        }
        return Ok(Target::Net(IpNet::from(ip)));
    }
    parse_name(s).map(Target::Name).map_err(fail)
}

/// Validates and normalises a host name (no IP address, no wildcard).
pub(crate) fn parse_name(s: &str) -> Result<String, Problem> {
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    if name.contains('*') {
        return Err(Problem::Wildcard);
    }
    if let Some((host, port)) = name.rsplit_once(':') {
        if !host.contains(':') && port.parse::<u16>().is_ok() {
            return Err(Problem::Port { host: host.to_string() });
        }
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.')) {
        return Err(Problem::Char(c));
    }
    if name.len() > 253 {
        return Err(Problem::NameLength(name.len()));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(Problem::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(Problem::LabelLength(label.len()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Problem::Hyphen(label.to_string()));
        }
    }
    if labels.len() < 2 {
        return Err(Problem::SingleLabel);
    }
    if labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit())) {
        return Err(Problem::BadAddress);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        parse_entry(input, Source::Flag).unwrap().to_string()
    }

    fn err(input: &str) -> String {
        parse_entry(input, Source::Flag).unwrap_err().to_string()
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(ok("API.OpenAI.com."), "api.openai.com");
        assert_eq!(ok(" x-1.example.org "), "x-1.example.org");
        assert_eq!(ok(&format!("{}.com", "a".repeat(63))), format!("{}.com", "a".repeat(63)));
    }

    #[test]
    fn addresses_and_cidrs_are_accepted() {
        assert_eq!(ok("203.0.113.7"), "203.0.113.7");
        assert_eq!(ok("203.0.113.0/24"), "203.0.113.0/24");
        assert_eq!(ok("2001:DB8::1"), "2001:db8::1");
        assert_eq!(ok("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(ok("10.1.2.3/32"), "10.1.2.3");
    }

    #[test]
    fn shell_metacharacters_are_refused_with_the_entry_and_source() {
        assert_eq!(
            err("a.com;rm -rf /"),
            "invalid allowlist entry \"a.com;rm -rf /\" (from --allow-domain): the character ';' \
             is not allowed in a host name; fix: give a host name (api.example.com), an IP \
             address or a CIDR (203.0.113.0/24)"
        );
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        assert!(err("-x.com").contains("the label \"-x\" starts or ends with '-'"));
        assert!(err("x-.com").contains("starts or ends with '-'"));
        assert!(err("a..com").contains("empty label"));
        assert!(err(".a.com").contains("empty label"));
        assert!(err(&format!("{}.com", "a".repeat(64))).contains("64 characters long, the limit is 63"));
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(err(&long).contains("259 characters long, the limit is 253"));
        assert!(err("localhost").contains("fix: use the fully qualified name"));
        assert!(err("a_b.com").contains("'_'"));
        assert!(err("bücher.example").contains("fix: write an internationalised name in its ASCII"));
        assert!(err("").contains("fix: remove the empty entry"));
        assert!(err("1.2.3").contains("looks like an IP address"));
        assert!(err("999.1.1.1").contains("looks like an IP address"));
    }

    #[test]
    fn wildcards_urls_and_ports_get_a_specific_fix() {
        assert!(err("*.openai.com").contains("wildcards cannot be enforced by an IP firewall; fix: list each name"));
        assert!(err("https://api.example.com/v1").contains("fix: give the host name only: api.example.com"));
        assert!(err("api.example.com:443").contains("ports are set with `ports` in [egress]"));
    }

    #[test]
    fn bad_cidrs_are_refused() {
        assert!(err("1.2.3.4/40").contains("(from --allow-domain): the prefix length is not a number from 1 to 32"));
        assert!(err("2001:db8::/129").contains("from 1 to 128"));
        assert!(err("10.1.2.3/8").contains("fix: did you mean 10.0.0.0/8?"));
        assert!(err("0.0.0.0/0").contains("would allow every address"));
        assert!(err("::/0").contains("would allow every address"));
        assert!(err("0.0.0.0").contains("would allow every address"));
    }
}
