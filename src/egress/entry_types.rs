//! The types of one allowlist entry, shared by [`super::entry`] (which validates an entry) and
//! [`super::names`] (which merges the sources), which both import them from here so that neither
//! imports the other: where an entry came from ([`Source`]), what it is once validated ([`Target`]),
//! what is wrong with an invalid one ([`Problem`], with its fix) and the error that names the entry
//! and its source ([`NameError`]).
//!
//! Only data and messages: the validation itself is in [`super::entry`].

use std::fmt;

use ipnet::IpNet;

/// Where an allowlist entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Builtin,
    Env,
    Flag,
    Config,
    /// `--deny-domain`.
    DenyFlag,
    /// `[egress] deny`.
    DenyConfig,
    /// `allow_domains` / `deny_domains` of a native sandbox profile.
    Profile,
    /// A preset (`--allow-preset`, `[egress] presets`), by name.
    Preset(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Source::Preset(name) = self {
            return write!(f, "preset {name}");
        }
        f.write_str(match self {
            Source::Preset(_) => unreachable!(),
            Source::Builtin => "built-in list",
            Source::Env => "OPENAI_ALLOWED_DOMAINS",
            Source::Flag => "--allow-domain",
            Source::Config => "[egress] allow in the config file",
            Source::DenyFlag => "--deny-domain",
            Source::DenyConfig => "[egress] deny in the config file",
            Source::Profile => "allow_domains/deny_domains of the sandbox config file",
        })
    }
}

/// A validated allowlist entry: a normalised host name, or a network (an IP literal is a /32 or
/// /128 network).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Name(String),
    Net(IpNet),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Name(name) => f.write_str(name),
            Target::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Target::Net(net) => write!(f, "{net}"),
        }
    }
}

/// What is wrong with an entry; each has its own fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Empty,
    Url { host: String },
    Port { host: String },
    Wildcard,
    Char(char),
    NameLength(usize),
    LabelLength(usize),
    EmptyLabel,
    Hyphen(String),
    SingleLabel,
    BadAddress,
    Prefix { max: u8 },
    HostBits { suggestion: IpNet },
    Everything,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => write!(f, "the entry is empty"),
            Problem::Url { .. } => write!(f, "it is a URL, not a host name"),
            Problem::Port { .. } => write!(f, "it has a port"),
            Problem::Wildcard => write!(f, "wildcards cannot be enforced by an IP firewall"),
            Problem::Char(c) => write!(f, "the character {c:?} is not allowed in a host name"),
            Problem::NameLength(n) => {
                write!(f, "the name is {n} characters long, the limit is 253")
            }
            Problem::LabelLength(n) => write!(f, "a label is {n} characters long, the limit is 63"),
            Problem::EmptyLabel => write!(f, "it has an empty label (a leading dot or two dots)"),
            Problem::Hyphen(l) => write!(f, "the label {l:?} starts or ends with '-'"),
            Problem::SingleLabel => write!(f, "it is a single label, not a fully qualified name"),
            Problem::BadAddress => write!(f, "it looks like an IP address but is not a valid one"),
            Problem::Prefix { max } => {
                write!(f, "the prefix length is not a number from 1 to {max}")
            }
            Problem::HostBits { .. } => write!(f, "the address has bits set beyond the prefix"),
            Problem::Everything => write!(f, "it would allow every address"),
        }
    }
}

impl Problem {
    /// How to fix it, naming the corrected entry where there is one.
    pub fn fix(&self) -> String {
        let generic = "give a host name (api.example.com), an IP address or a CIDR (203.0.113.0/24)";
        match self {
            Problem::Empty => "remove the empty entry".into(),
            Problem::Url { host } => format!("give the host name only: {host}"),
            Problem::Port { host } => {
                format!("give the host name only ({host}); ports are set with `ports` in [egress]")
            }
            Problem::Wildcard => "list each name explicitly (api.example.com)".into(),
            Problem::SingleLabel => "use the fully qualified name (host.example.com)".into(),
            Problem::HostBits { suggestion } => format!("did you mean {suggestion}?"),
            Problem::Everything => "remove it; for unrestricted network use full network access instead".into(),
            Problem::Char(c) if !c.is_ascii() => {
                "write an internationalised name in its ASCII (xn--, punycode) form".into()
            }
            _ => generic.into(),
        }
    }
}

/// An allowlist input that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid allowlist entry {input:?} (from {origin}): {problem}; fix: {}", problem.fix())]
    Entry { input: String, origin: Source, problem: Problem },
    #[error(
        "invalid DNS server {input:?} (from {origin}): expected an IP address and an optional \
         port, like 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53"
    )]
    DnsServer { input: String, origin: &'static str },
    #[error(
        "invalid DNS-over-TLS name {input:?} (from {origin}): {problem}; fix: give the host name the \
         resolver's certificate is issued for, like dns.example.com (a port goes in --dns-server IP:PORT)"
    )]
    DnsTlsName { input: String, origin: &'static str, problem: String },
    #[error(
        "{tls_name} needs {server}: DNS-over-TLS goes to a resolver you choose, never to the \
         system's; fix: add {server} with the resolver's IP address (port 853 unless you give one), \
         like {example}, or drop {tls_name}"
    )]
    DnsTlsWithoutServer { tls_name: &'static str, server: &'static str, example: &'static str },
    #[error(
        "invalid [egress] ports {ports:?}: list at least one TCP port from 1 to 65535, \
         like ports = [443, 80]"
    )]
    Ports { ports: Vec<u16> },
    #[error(
        "unknown egress preset {name:?} (from --allow-preset or [egress] presets); the presets are: \
         {known}; `codex-box egress --preset NAME` shows what one allows"
    )]
    UnknownPreset { name: String, known: String },
}
