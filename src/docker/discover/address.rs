//! Engine addresses as a user writes them: an absolute socket path, `unix://PATH`,
//! `tcp://HOST:PORT` or `http://HOST:PORT` (plain HTTP), `npipe://PATH` on Windows. Remote engines
//! over SSH or TLS are refused with the way to reach them through a forwarded socket (issue #15).

use std::fmt;
use std::path::PathBuf;

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A unix socket (absolute path).
    Unix(PathBuf),
    /// Plain HTTP to `HOST:PORT` (no TLS).
    Tcp(String),
    /// A Windows named pipe (`//./pipe/NAME`).
    Pipe(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Tcp(h) => write!(f, "tcp://{h}"),
            Address::Pipe(p) => write!(f, "npipe://{p}"),
        }
    }
}
pub(super) const FORWARD: &str = "forward the remote engine's socket and name the local end: \
    `ssh -nNT -L /tmp/engine.sock:/var/run/docker.sock USER@HOST &` then `--engine unix:///tmp/engine.sock`";
const FORMS: &str = "name the engine as an absolute socket path, unix:///PATH or tcp://HOST:PORT";

/// Why an address is not one codex-box can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("it is empty; {FORMS}")]
    Empty,
    #[error("`{0}` is not an absolute path; {FORMS}")]
    Relative(String),
    #[error("remote engines over {what} are not supported yet (issue #15); {FORWARD}")]
    Remote { what: &'static str },
    #[error("codex-box does not know the scheme `{0}://`; {FORMS}")]
    Scheme(String),
    #[error("`{0}` names no port; write tcp://HOST:PORT (2375 is the engine's plain-HTTP port)")]
    NoPort(String),
    #[error("named pipes (npipe://) exist only on Windows; {FORMS}")]
    PipeOffWindows,
    #[error("unix sockets are not supported by Windows builds; name a named pipe (npipe:////./pipe/docker_engine)")]
    UnixOnWindows,
}

/// Parses an engine address: an absolute socket path, `unix://PATH`, `tcp://HOST:PORT`,
/// `http://HOST:PORT`, or (Windows) `npipe://PATH`. `ssh://` and `https://` are refused for now.
pub fn parse_address(input: &str) -> Result<Address, AddressError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(AddressError::Empty);
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return unix(s);
    };
    match scheme.to_ascii_lowercase().as_str() {
        "unix" => unix(rest),
        "tcp" | "http" => {
            let hp = rest.trim_end_matches('/');
            match hp.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && !hp.contains('/') && p.parse::<u16>().is_ok() => {
                    Ok(Address::Tcp(hp.to_string()))
                }
                _ => Err(AddressError::NoPort(s.to_string())),
            }
        }
        "ssh" => Err(AddressError::Remote { what: "SSH" }),
        "https" => Err(AddressError::Remote { what: "TLS (https://)" }),
        "npipe" if cfg!(windows) => Ok(Address::Pipe(rest.to_string())),
        "npipe" => Err(AddressError::PipeOffWindows),
        other => Err(AddressError::Scheme(other.to_string())),
    }
}

fn unix(path: &str) -> Result<Address, AddressError> {
    if cfg!(windows) {
        return Err(AddressError::UnixOnWindows);
    }
    if path.is_empty() {
        return Err(AddressError::Empty);
    }
    if !path.starts_with('/') {
        return Err(AddressError::Relative(path.to_string()));
    }
    Ok(Address::Unix(PathBuf::from(path)))
}
