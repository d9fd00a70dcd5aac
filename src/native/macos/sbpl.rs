//! The Seatbelt profile (SBPL) of a [`Policy`]: a pure function, compiled on every platform so it is
//! unit-tested on Linux.
//!
//! The profile text never contains a path. Every path is a parameter — `(param "WRITABLE_ROOT_0")` in
//! the text, `-D WRITABLE_ROOT_0=/the/path` on `sandbox-exec`'s command line — so quotes, backslashes,
//! newlines or parentheses in a path cannot change the profile. Exclusions are written as
//! `(require-not (subpath …))` inside the allow rule they limit, so the result does not depend on how
//! Seatbelt orders competing allow and deny rules.
//!
//! Network by name ([`Network::Proxy`]) follows the same rule: the proxy's port is the `PROXY_PORT`
//! parameter, joined to `localhost:` by Seatbelt's `string-append`, so the text is the same for every
//! port. (Other projects use `(param …)` in a network address this way; this project has not run it.)
//!
//! Enforced by the profile: reads only below the readable and writable roots, minus the deny-read
//! paths; writes only below the writable roots, minus protected and deny-read paths; no network, the
//! loopback interface only, TCP to the egress proxy's loopback port only, or full network; signals
//! and process inspection only inside the sandbox. Not expressed here: a private /tmp (the host's
//! /tmp is shared), resource limits, the allowlist itself (the proxy decides by name).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::policy::{FsPolicy, NetPolicy, Policy};

/// Where macOS ships the Seatbelt launcher (an absolute path: never looked up in `PATH`).
pub const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// The fixed part of every profile.
pub const BASE: &str = include_str!("base.sbpl");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SbplError {
    #[error(
        "the allowed domains need codex-box's egress proxy, and the sandbox was planned without it; this is a bug in codex-box (please report it) — meanwhile use a container session with --egress proxy"
    )]
    NoProxy,
    #[error("sandbox policy path {0} is not absolute; write it as an absolute path (or start it with ~/)")]
    Relative(PathBuf),
}

/// What the sandboxed command may reach on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// No socket traffic at all (unix sockets included).
    None,
    /// Only `localhost`, any port: connect, bind and accept (no policy asks for it today; network by
    /// name uses the narrower [`Network::Proxy`]).
    Loopback,
    /// Anything, plus the DNS and certificate services name resolution and TLS need.
    Full,
    /// Network by name: outbound TCP to codex-box's egress proxy at `localhost:PORT` and nothing
    /// else — no other port, no UDP (so no DNS: the proxy resolves), no bind, no inbound, none of
    /// the DNS or certificate services `Full` opens.
    Proxy(u16),
}

impl Network {
    /// The network mode of a policy. Allowed domains need the port the proxy listens on
    /// (`proxy_port`); without it they are refused rather than silently widened.
    pub fn of(net: &NetPolicy, proxy_port: Option<u16>) -> Result<Network, SbplError> {
        match (net, proxy_port) {
            (NetPolicy::None, _) => Ok(Network::None),
            (NetPolicy::Full, _) => Ok(Network::Full),
            (NetPolicy::Domains(_), Some(port)) => Ok(Network::Proxy(port)),
            (NetPolicy::Domains(_), None) => Err(SbplError::NoProxy),
        }
    }
}

/// The parameter that carries the egress proxy's port ([`Network::Proxy`]).
pub const PROXY_PORT: &str = "PROXY_PORT";

/// A generated profile: its text and the parameter values `sandbox-exec -D` defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub text: String,
    /// (parameter name, path), in the order the text first uses them.
    pub params: Vec<(String, PathBuf)>,
    /// The value of the [`PROXY_PORT`] parameter, when the text uses it.
    pub proxy_port: Option<u16>,
}

/// The profile of `policy`, or `None` for `danger-full-access` (the command runs without Seatbelt).
/// Paths must already be canonical (see `paths::canonical_fs`): Seatbelt matches resolved paths.
/// `proxy_port`: where codex-box's egress proxy listens on loopback, for allowed domains.
pub fn plan(policy: &Policy, proxy_port: Option<u16>) -> Result<Option<Profile>, SbplError> {
    if policy.full_access {
        return Ok(None);
    }
    profile(&policy.fs, Network::of(&policy.net, proxy_port)?).map(Some)
}

/// Collects parameters, one per distinct (kind, path).
struct Params {
    list: Vec<(String, PathBuf)>,
}

impl Params {
    fn get(&mut self, kind: &str, path: &Path) -> Result<String, SbplError> {
        if !path.is_absolute() {
            return Err(SbplError::Relative(path.to_path_buf()));
        }
        let existing = self.list.iter().find(|(k, p)| p == path && k.rsplit_once('_').is_some_and(|(s, _)| s == kind));
        let name = match existing {
            Some((k, _)) => k.clone(),
            None => {
                let n = self.list.iter().filter(|(k, _)| k.rsplit_once('_').is_some_and(|(s, _)| s == kind)).count();
                let k = format!("{kind}_{n}");
                self.list.push((k.clone(), path.to_path_buf()));
                k
            }
        };
        Ok(format!("(param \"{name}\")"))
    }
}

/// One `allow` rule for `root`, minus the `exclusions` below it.
fn rule(out: &mut String, ops: &str, root: &str, exclusions: &[String]) {
    if exclusions.is_empty() {
        out.push_str(&format!("(allow {ops} (subpath {root}))\n"));
    } else {
        out.push_str(&format!("(allow {ops}\n  (require-all (subpath {root})"));
        for e in exclusions {
            out.push_str(&format!("\n    (require-not (subpath {e}))"));
        }
        out.push_str("))\n");
    }
}

/// The paths of `list` at or below `root` (lexically; paths are canonical), as parameters.
fn below(params: &mut Params, kind: &str, list: &[PathBuf], root: &Path) -> Result<Vec<String>, SbplError> {
    list.iter().filter(|p| p.starts_with(root)).map(|p| params.get(kind, p)).collect()
}

/// The profile for a filesystem policy and a network mode.
pub fn profile(fs: &FsPolicy, net: Network) -> Result<Profile, SbplError> {
    let mut params = Params { list: Vec::new() };
    let mut text = String::from(BASE);

    text.push_str("\n; Reads: the readable and writable roots, minus the deny-read paths.\n");
    let mut readable: Vec<&PathBuf> = fs.read_roots.iter().collect();
    readable.extend(fs.write_roots.iter().filter(|w| !fs.read_roots.iter().any(|r| w.starts_with(r))));
    for root in readable {
        let p = params.get(if fs.read_roots.contains(root) { "READABLE_ROOT" } else { "WRITABLE_ROOT" }, root)?;
        let excl = below(&mut params, "DENY_READ", &fs.deny_read, root)?;
        rule(&mut text, "file-read*", &p, &excl);
    }

    text.push_str("\n; Writes: the writable roots, minus protected and deny-read paths.\n");
    for root in &fs.write_roots {
        let p = params.get("WRITABLE_ROOT", root)?;
        let mut excl = below(&mut params, "PROTECTED", &fs.protected, root)?;
        excl.extend(below(&mut params, "DENY_READ", &fs.deny_read, root)?);
        rule(&mut text, "file-write*", &p, &excl);
    }

    text.push_str(match net {
        Network::None => "\n; Network: none.\n",
        Network::Loopback => concat!(
            "\n; Network: loopback only.\n",
            "(allow network-outbound (remote ip \"localhost:*\"))\n",
            "(allow network-inbound (local ip \"localhost:*\"))\n",
            "(allow network-bind (local ip \"localhost:*\"))\n",
        ),
        Network::Full => concat!(
            "\n; Network: full, with the services DNS and TLS verification use.\n",
            "(allow network-outbound)\n",
            "(allow network-inbound)\n",
            "(allow network-bind)\n",
            "(allow system-socket)\n",
            "(allow mach-lookup\n",
            "  (global-name \"com.apple.dnssd.service\")\n",
            "  (global-name \"com.apple.mDNSResponder\")\n",
            "  (global-name \"com.apple.SystemConfiguration.configd\")\n",
            "  (global-name \"com.apple.SystemConfiguration.DNSConfiguration\")\n",
            "  (global-name \"com.apple.trustd.agent\")\n",
            "  (global-name \"com.apple.ocspd\"))\n",
        ),
        // `tcp`, not `ip`: an `ip` address also matches UDP to that port. `localhost` is the only
        // host Seatbelt accepts besides `*`; it also matches ::1, which the caller keeps for itself.
        // No mach service is opened: not mDNSResponder (DNS is the proxy's), not trustd (it
        // fetches certificate URLs a client hands it, from outside the sandbox).
        Network::Proxy(_) => concat!(
            "\n; Network: TCP to codex-box's egress proxy on loopback only (port: the PROXY_PORT parameter).\n",
            "(allow network-outbound (remote tcp (string-append \"localhost:\" (param \"PROXY_PORT\"))))\n",
        ),
    });
    let proxy_port = match net {
        Network::Proxy(port) => Some(port),
        _ => None,
    };
    Ok(Profile { text, params: params.list, proxy_port })
}

/// `sandbox-exec`'s arguments (after the program name): `-p PROFILE -D NAME=PATH … [-D PROXY_PORT=N]
/// -- ARGV…`.
pub fn sandbox_exec_args(profile: &Profile, argv: &[String]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-p".into(), profile.text.clone().into()];
    for (name, path) in &profile.params {
        let mut def = OsString::from(format!("{name}="));
        def.push(path.as_os_str());
        args.push("-D".into());
        args.push(def);
    }
    if let Some(port) = profile.proxy_port {
        args.push("-D".into());
        args.push(format!("{PROXY_PORT}={port}").into());
    }
    args.push("--".into());
    args.extend(argv.iter().map(OsString::from));
    args
}

#[cfg(test)]
#[path = "sbpl_tests.rs"]
mod tests;
