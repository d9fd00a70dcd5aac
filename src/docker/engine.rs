//! Connecting to the engine [`discover`](super::discover) chose: one `GET /version` (bounded by
//! [`ANSWER_TIMEOUT`]) proves it answers, gives the API version to speak and the [`EngineKind`];
//! an engine older than API [`MIN_API`] is refused. Every failure names the address, where it came
//! from and the fix; nothing is created before this succeeds.

use std::error::Error as _;
use std::time::Duration;

use bollard::{ClientVersion, Docker};

use super::discover::{self, Address, DiscoverError, Found, Os};
use super::kind::EngineKind;
use crate::host_env::HostEnv;

/// The oldest Engine API codex-box speaks: 1.40 (Docker 19.03). Debian's Docker 20.10 and Podman
/// 4's compat API serve 1.41.
pub const MIN_API: (usize, usize) = (1, 40);

/// How long the engine has to answer `/version` (a socket that accepts and never answers, a VM
/// that is still starting).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Request timeout of the connection used afterwards (bollard's default).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Why the engine cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("no Docker engine answers at {at}: {detail}. Fix: {}", at.source.fix())]
    Unreachable { at: Box<Found>, detail: String },
    #[error("permission denied on the Docker socket {at}. Add your user to the docker group (`sudo usermod -aG docker $USER`, then log in again), run codex-box as a user who may open the socket, or name an engine of your own with --engine (rootless Docker or Podman)")]
    Permission { at: Box<Found> },
    #[error("the engine at {at} accepted the connection but did not answer /version within {} s. If it is starting, try again; else restart it. Fix: {}", ANSWER_TIMEOUT.as_secs(), at.source.fix())]
    NoAnswer { at: Box<Found> },
    #[error("the engine at {at} is {product} with API {api}, older than {}.{} (Docker 19.03), the oldest codex-box speaks. Upgrade it (Docker 20.10 or later, Podman 4 or later), or name a newer engine with --engine", MIN_API.0, MIN_API.1)]
    TooOld { at: Box<Found>, product: String, api: String },
    #[error("what answers at {at} is not a Docker-API engine ({detail}). Fix: {}", at.source.fix())]
    NotAnEngine { at: Box<Found>, detail: String },
    #[error("the Docker engine at {at} answered with an error: {source}")]
    Api { at: Box<Found>, source: bollard::errors::Error },
}

/// An engine that answered, what it is, and where it was found.
pub struct Connection {
    pub docker: Docker,
    pub found: Found,
    pub kind: EngineKind,
    /// The `/version` answer.
    pub version: bollard::models::SystemVersion,
}

/// A client for `address` speaking `api` (no I/O but bollard's existence check of a socket path).
fn client(at: &Found, api: &ClientVersion) -> Result<Docker, EngineError> {
    let r = match &at.address {
        #[cfg(unix)]
        Address::Unix(p) => Docker::connect_with_unix(&p.to_string_lossy(), REQUEST_TIMEOUT_SECS, api),
        Address::Tcp(h) => Docker::connect_with_http(&format!("tcp://{h}"), REQUEST_TIMEOUT_SECS, api),
        #[cfg(windows)]
        Address::Pipe(p) => Docker::connect_with_named_pipe(p, REQUEST_TIMEOUT_SECS, api),
        #[allow(unreachable_patterns)]
        _ => {
            let detail = "not supported on this platform".into();
            return Err(EngineError::Unreachable { at: Box::new(at.clone()), detail });
        }
    };
    r.map_err(|e| classify(at, e))
}

fn parse_api(v: &str) -> Option<(usize, usize)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The owner of a local socket (the user its engine runs as, unless forwarded).
fn socket_owner(a: &Address) -> Option<u32> {
    #[cfg(unix)]
    if let Address::Unix(p) = a {
        use std::os::unix::fs::MetadataExt;
        return std::fs::metadata(p).ok().map(|m| m.uid());
    }
    let _ = a;
    None
}

/// Connects to `at`: one `/version`, the API version checked and spoken, the kind inferred.
pub async fn open(at: Found) -> Result<Connection, EngineError> {
    open_within(at, ANSWER_TIMEOUT).await
}

/// A local engine's `GET /_ping` headers as a `/version` answer (Linux, a unix socket): the API
/// version, and the product and its version from `Server` (`Docker/20.10.24 (linux)`,
/// `Libpod/4.3.1 (linux)`) — what the session needs, without the `/version` that costs Podman
/// ~300 ms. `None` when anything is missing or odd: the caller asks `/version`.
/// `Err(())`: the engine accepted the connection and did not answer in time.
#[cfg(target_os = "linux")]
async fn ping_version(at: &Found, timeout: Duration) -> Result<Option<bollard::models::SystemVersion>, ()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Address::Unix(path) = &at.address else { return Ok(None) };
    let Ok(mut s) = tokio::net::UnixStream::connect(path).await else { return Ok(None) };
    let answer = tokio::time::timeout(timeout, async {
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").await.ok()?;
        let mut buf = Vec::new();
        (&mut s).take(16 * 1024).read_to_end(&mut buf).await.ok()?;
        Some(buf)
    })
    .await
    .map_err(|_| ())?;
    Ok(answer.and_then(|a| ping_headers(&String::from_utf8_lossy(&a))))
}

/// The `/_ping` answer's status and headers as a `/version` answer (pure).
pub fn ping_headers(answer: &str) -> Option<bollard::models::SystemVersion> {
    let head = answer.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n");
    if lines.next()?.split(' ').nth(1).is_none_or(|c| c != "200") {
        return None;
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let api = get("api-version").filter(|v| parse_api(v).is_some())?;
    let server = get("server")?;
    let (name, version) = server.split(' ').next()?.split_once('/')?;
    let component = match (name, get("libpod-api-version")) {
        ("Libpod", _) | (_, Some(_)) => "Podman Engine",
        ("Docker", None) => "Engine",
        _ => return None,
    };
    Some(bollard::models::SystemVersion {
        version: Some(version.to_string()),
        api_version: Some(api),
        components: Some(vec![bollard::models::SystemVersionComponents {
            name: component.to_string(),
            version: version.to_string(),
            details: None,
        }]),
        ..Default::default()
    })
}

/// [`open`] with its own answer timeout (tests).
pub async fn open_within(at: Found, timeout: Duration) -> Result<Connection, EngineError> {
    #[cfg(target_os = "linux")]
    let pinged = match ping_version(&at, timeout).await {
        Err(()) => return Err(EngineError::NoAnswer { at: Box::new(at) }),
        // Old enough to refuse: `/version` says what it is, for the message.
        Ok(v) => v.filter(|v| v.api_version.as_deref().and_then(parse_api).is_some_and(|a| a >= MIN_API)),
    };
    #[cfg(not(target_os = "linux"))]
    let pinged: Option<bollard::models::SystemVersion> = None;
    let version = match pinged {
        Some(v) => v,
        None => {
            let probe = client(&at, bollard::API_DEFAULT_VERSION)?;
            match tokio::time::timeout(timeout, probe.version()).await {
                Err(_) => return Err(EngineError::NoAnswer { at: Box::new(at) }),
                Ok(r) => r.map_err(|e| classify(&at, e))?,
            }
        }
    };
    let product = version
        .components
        .as_deref()
        .unwrap_or_default()
        .first()
        .map(|c| format!("{} {}", c.name, c.version))
        .or_else(|| version.version.as_ref().map(|v| format!("version {v}")))
        .unwrap_or_else(|| "an engine of unknown version".into());
    let api_text = version.api_version.clone().unwrap_or_default();
    let Some(api) = parse_api(&api_text) else {
        let detail = format!("its /version has no ApiVersion: `{api_text}`");
        return Err(EngineError::NotAnEngine { at: Box::new(at), detail });
    };
    if api < MIN_API {
        return Err(EngineError::TooOld { at: Box::new(at), product, api: api_text });
    }
    let default = bollard::API_DEFAULT_VERSION;
    let speak = if api < (default.major_version, default.minor_version) {
        ClientVersion { major_version: api.0, minor_version: api.1 }
    } else {
        *default
    };
    let docker = client(&at, &speak)?;
    let kind = EngineKind::from_version(&version, &at, socket_owner(&at.address), Os::current());
    Ok(Connection { docker, found: at, kind, version })
}

/// Discovers (`--engine` value, then the environment in `env`) and connects.
pub async fn connect_with(flag: Option<&str>, env: &HostEnv) -> Result<Connection, EngineError> {
    open(discover::find_here(flag, env)?).await
}

/// Connects as the process environment says, without a flag (tests and benches).
pub async fn connect() -> Result<Docker, EngineError> {
    Ok(connect_with(None, &HostEnv::from_process()).await?.docker)
}

/// Turns a transport error into the advice a user needs.
pub fn classify(at: &Found, e: bollard::errors::Error) -> EngineError {
    let at = Box::new(at.clone());
    if let bollard::errors::Error::SocketNotFoundError(p) = &e {
        return EngineError::Unreachable { detail: format!("socket {p} does not exist"), at };
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::PermissionDenied => EngineError::Permission { at },
                std::io::ErrorKind::NotFound => {
                    EngineError::Unreachable { at, detail: "the socket does not exist".into() }
                }
                std::io::ErrorKind::ConnectionRefused => {
                    EngineError::Unreachable { at, detail: "connection refused (nothing listens there)".into() }
                }
                _ => EngineError::Unreachable { at, detail: io.to_string() },
            };
        }
        src = s.source();
    }
    match e {
        bollard::errors::Error::JsonDataError { .. } | bollard::errors::Error::JsonSerdeError { .. } => {
            EngineError::NotAnEngine { at, detail: e.to_string() }
        }
        bollard::errors::Error::DockerResponseServerError { .. } => EngineError::Api { at, source: e },
        other => EngineError::Unreachable { at, detail: other.to_string() },
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn ping_headers_say_the_api_and_the_product() {
        let docker = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nOstype: linux\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\nContent-Length: 2\r\n\r\nOK";
        let v = ping_headers(docker).unwrap();
        assert_eq!((v.api_version.as_deref(), v.version.as_deref()), (Some("1.41"), Some("20.10.24+dfsg1")));
        assert_eq!(v.components.unwrap()[0].name, "Engine");
        let podman = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)\r\n\r\nOK";
        let v = ping_headers(podman).unwrap();
        assert_eq!(v.components.as_ref().unwrap()[0].name, "Podman Engine");
        assert_eq!(v.version.as_deref(), Some("4.3.1"));
        // Anything else is asked through /version.
        for odd in [
            "HTTP/1.1 500 Oops\r\nApi-Version: 1.41\r\nServer: Docker/20.10 (linux)\r\n\r\n",
            "HTTP/1.1 200 OK\r\nServer: Docker/20.10 (linux)\r\n\r\nOK",
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\n\r\nOK",
            "HTTP/1.1 200 OK\r\nApi-Version: x\r\nServer: Docker/20.10 (linux)\r\n\r\nOK",
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nServer: nginx/1.2\r\n\r\nOK",
            "garbage",
        ] {
            assert!(ping_headers(odd).is_none(), "{odd:?}");
        }
    }
    use crate::docker::discover::Source;

    fn at(p: &std::path::Path) -> Found {
        Found { address: Address::Unix(p.to_path_buf()), source: Source::Flag }
    }

    /// A fake engine answering every request with `body` as JSON.
    fn fake_engine(path: &std::path::Path, body: &'static str) {
        let l = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_socket_that_accepts_but_never_answers_times_out_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mute.sock");
        let _l = UnixListener::bind(&p).unwrap();
        let e = rt().block_on(open_within(at(&p), Duration::from_millis(300))).err().unwrap();
        assert!(matches!(e, EngineError::NoAnswer { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("unix://{}", p.display())) && msg.contains("from --engine"), "{msg}");
    }

    #[test]
    fn a_stale_socket_is_refused_and_a_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stale.sock");
        drop(UnixListener::bind(&p).unwrap());
        let msg = rt().block_on(open(at(&p))).err().unwrap().to_string();
        assert!(msg.contains("no Docker engine answers at") && msg.contains("connection refused"), "{msg}");
        let missing = dir.path().join("none.sock");
        let msg = rt().block_on(open(at(&missing))).err().unwrap().to_string();
        assert!(msg.contains("does not exist") && msg.contains("--engine"), "{msg}");
    }

    #[test]
    fn old_and_foreign_answers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.sock");
        fake_engine(
            &old,
            r#"{"Version":"1.12.6","ApiVersion":"1.24","Components":[{"Name":"Engine","Version":"1.12.6"}]}"#,
        );
        let e = rt().block_on(open(at(&old))).err().unwrap();
        let msg = e.to_string();
        assert!(matches!(e, EngineError::TooOld { .. }), "{msg}");
        assert!(msg.contains("Engine 1.12.6 with API 1.24") && msg.contains("Upgrade"), "{msg}");
        let foreign = dir.path().join("foreign.sock");
        fake_engine(&foreign, r#"{"hello":"world"}"#);
        let e = rt().block_on(open(at(&foreign))).err().unwrap();
        assert!(matches!(e, EngineError::NotAnEngine { .. }), "{e}");
    }

    #[test]
    fn api_versions_compare_as_numbers() {
        assert!(parse_api("1.9").unwrap() < MIN_API);
        assert!(parse_api("1.41").unwrap() >= MIN_API);
        assert!(parse_api("1.100").unwrap() > parse_api("1.41").unwrap());
        assert_eq!(parse_api("x"), None);
    }
}
