//! Discovery over a temporary root: real unix sockets bound in it, a fake HOME and XDG_RUNTIME_DIR
//! passed in through `HostEnv` (the process environment is never changed).

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::*;

/// The host's files under `root` (an absolute path `/x` is `root/x`); `denied` sockets exist but
/// cannot be opened (the tests run as root, which access(2) never refuses).
struct Rooted {
    root: tempfile::TempDir,
    denied: Vec<PathBuf>,
    _listeners: Vec<UnixListener>,
}

impl Rooted {
    fn new() -> Self {
        Rooted { root: tempfile::tempdir().unwrap(), denied: Vec::new(), _listeners: Vec::new() }
    }

    fn map(&self, p: &Path) -> PathBuf {
        self.root.path().join(p.strip_prefix("/").unwrap_or(p))
    }

    /// Binds a real unix socket at `p` (inside the root).
    fn sock(mut self, p: &str) -> Self {
        let at = self.map(Path::new(p));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        self._listeners.push(UnixListener::bind(&at).unwrap());
        self
    }

    fn deny(mut self, p: &str) -> Self {
        self.denied.push(PathBuf::from(p));
        self.sock(p)
    }

    fn file(self, p: &str, text: &str) -> Self {
        let at = self.map(Path::new(p));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, text).unwrap();
        self
    }
}

impl HostFs for Rooted {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(self.map(path))
    }
    fn exists(&self, path: &Path) -> bool {
        self.map(path).exists()
    }
    fn socket(&self, path: &Path) -> SocketState {
        match socket_state(&self.map(path)) {
            SocketState::Usable if self.denied.iter().any(|d| d == path) => SocketState::Denied,
            s => s,
        }
    }
}

fn env() -> HostEnv {
    HostEnv {
        home: Some("/home/u".into()),
        runtime_dir: Some("/run/user/1000".into()),
        tmpdir: Some("/tmp".into()),
        ..HostEnv::default()
    }
}

fn meta_dir(config: &str, name: &str) -> String {
    format!("{config}/contexts/meta/{}", hex::encode(sha2::Sha256::digest(name.as_bytes())))
}

fn unix(p: &str) -> Address {
    Address::Unix(p.into())
}

#[test]
fn accepted_address_forms() {
    assert_eq!(parse_address("/var/run/docker.sock"), Ok(unix("/var/run/docker.sock")));
    assert_eq!(parse_address("unix:///run/podman/podman.sock"), Ok(unix("/run/podman/podman.sock")));
    assert_eq!(parse_address(" UNIX:///x.sock "), Ok(unix("/x.sock")));
    assert_eq!(parse_address("tcp://127.0.0.1:2375"), Ok(Address::Tcp("127.0.0.1:2375".into())));
    assert_eq!(parse_address("http://localhost:2375/"), Ok(Address::Tcp("localhost:2375".into())));
    assert_eq!(parse_address("tcp://[::1]:2375"), Ok(Address::Tcp("[::1]:2375".into())));
    assert_eq!(unix("/a b.sock").to_string(), "unix:///a b.sock");
}

#[test]
fn refused_address_forms_say_why_and_what_to_write() {
    let e = |s: &str| parse_address(s).unwrap_err();
    assert_eq!(e(""), AddressError::Empty);
    assert_eq!(e("unix://"), AddressError::Empty);
    assert_eq!(e("docker.sock"), AddressError::Relative("docker.sock".into()));
    assert_eq!(e("unix://run/docker.sock"), AddressError::Relative("run/docker.sock".into()));
    assert_eq!(e("localhost:2375"), AddressError::Relative("localhost:2375".into()));
    assert_eq!(e("ftp://x"), AddressError::Scheme("ftp".into()));
    assert_eq!(e("fd://"), AddressError::Scheme("fd".into()));
    assert_eq!(e("tcp://host"), AddressError::NoPort("tcp://host".into()));
    assert_eq!(e("tcp://:2375"), AddressError::NoPort("tcp://:2375".into()));
    assert_eq!(e("tcp://h:2375/v1"), AddressError::NoPort("tcp://h:2375/v1".into()));
    assert_eq!(e("npipe:////./pipe/docker_engine"), AddressError::PipeOffWindows);
    let ssh = e("ssh://me@build-host").to_string();
    assert!(
        ssh.contains("SSH are not supported yet") && ssh.contains("ssh -nNT -L /tmp/engine.sock:/var/run/docker.sock"),
        "{ssh}"
    );
    assert!(ssh.contains("--engine unix:///tmp/engine.sock"), "{ssh}");
    assert!(e("https://h:2376").to_string().contains("TLS (https://)"));
    assert!(e("ftp://x").to_string().contains("unix:///PATH or tcp://HOST:PORT"));
    // The whole error names the input and where it came from.
    let err = find(Some("ftp://x"), &env(), Os::Linux, &Rooted::new()).unwrap_err().to_string();
    assert!(err.contains("`ftp://x` (from --engine)") && err.contains("scheme `ftp://`"), "{err}");
}

#[test]
fn explicit_sources_in_order_flag_codex_box_engine_docker_host_context() {
    let fs = Rooted::new()
        .sock("/var/run/docker.sock")
        .file("/home/u/.docker/config.json", r#"{"currentContext":"ctx"}"#)
        .file(
            &format!("{}/meta.json", meta_dir("/home/u/.docker", "ctx")),
            r#"{"Name":"ctx","Endpoints":{"docker":{"Host":"unix:///ctx.sock"}}}"#,
        );
    let mut e =
        HostEnv { engine: Some("/engine.sock".into()), docker_host: Some("tcp://127.0.0.1:2375".into()), ..env() };
    let f = find(Some("unix:///flag.sock"), &e, Os::Linux, &fs).unwrap();
    assert_eq!((f.address, f.source), (unix("/flag.sock"), Source::Flag));
    let f = find(None, &e, Os::Linux, &fs).unwrap();
    assert_eq!((f.address, f.source), (unix("/engine.sock"), Source::CodexBoxEngine));
    e.engine = None;
    let f = find(None, &e, Os::Linux, &fs).unwrap();
    assert_eq!((f.address, f.source), (Address::Tcp("127.0.0.1:2375".into()), Source::DockerHost));
    e.docker_host = None;
    let f = find(None, &e, Os::Linux, &fs).unwrap();
    assert_eq!(f.address, unix("/ctx.sock"));
    assert!(
        matches!(&f.source, Source::Context { name, origin: ContextOrigin::Config(p), .. } if name == "ctx" && p == Path::new("/home/u/.docker/config.json")),
        "{f:?}"
    );
    assert_eq!(f.source.to_string(), "docker context `ctx`, current in /home/u/.docker/config.json");
}

#[test]
fn an_explicit_source_is_used_as_given_even_when_a_usual_socket_answers() {
    let fs = Rooted::new().sock("/var/run/docker.sock");
    let e = HostEnv { docker_host: Some("unix:///nonexistent.sock".into()), ..env() };
    let f = find(None, &e, Os::Linux, &fs).unwrap();
    assert_eq!((f.address, f.source), (unix("/nonexistent.sock"), Source::DockerHost));
    // A bad explicit value is an error, not a reason to look elsewhere.
    let e = HostEnv { engine: Some("relative.sock".into()), ..env() };
    let err = find(None, &e, Os::Linux, &fs).unwrap_err().to_string();
    assert!(err.contains("`relative.sock` (from CODEX_BOX_ENGINE)") && err.contains("not an absolute path"), "{err}");
}

#[test]
fn docker_context_beats_current_context_and_default_means_none() {
    let cfg = "/cfg";
    let fs = Rooted::new()
        .sock("/run/user/1000/docker.sock")
        .file(&format!("{cfg}/config.json"), r#"{"auths":{},"currentContext":"other"}"#)
        .file(
            &format!("{}/meta.json", meta_dir(cfg, "mine")),
            r#"{"Endpoints":{"docker":{"Host":"unix:///mine.sock"}}}"#,
        );
    let e = HostEnv { docker_context: Some("mine".into()), docker_config: Some(cfg.into()), ..env() };
    let f = find(None, &e, Os::Linux, &fs).unwrap();
    assert_eq!(f.address, unix("/mine.sock"));
    assert_eq!(f.source.to_string(), "docker context `mine` from DOCKER_CONTEXT");
    let e = HostEnv { docker_context: Some("default".into()), docker_config: Some(cfg.into()), ..env() };
    let f = find(None, &e, Os::Linux, &fs).unwrap();
    assert_eq!(f.source, Source::Usual(Place::RootlessDocker));
}

#[test]
fn context_failures_name_the_context_and_the_fix() {
    let cfg = "/cfg";
    let fs = Rooted::new()
        .sock("/var/run/docker.sock")
        .file(
            &format!("{}/meta.json", meta_dir(cfg, "k8s-only")),
            r#"{"Name":"k8s-only","Endpoints":{"kubernetes":{}}}"#,
        )
        .file(&format!("{}/meta.json", meta_dir(cfg, "remote")), r#"{"Endpoints":{"docker":{"Host":"ssh://me@box"}}}"#)
        .file(
            &format!("{}/meta.json", meta_dir(cfg, "tls")),
            r#"{"Endpoints":{"docker":{"Host":"tcp://10.0.0.2:2376"}}}"#,
        )
        .file(&format!("{cfg}/contexts/tls/{}/docker/ca.pem", hex::encode(sha2::Sha256::digest(b"tls"))), "x")
        .file("/bad/config.json", "{not json");
    let with = |name: &str| HostEnv { docker_context: Some(name.into()), docker_config: Some(cfg.into()), ..env() };
    let err = find(None, &with("nope"), Os::Linux, &fs).unwrap_err();
    assert!(matches!(err, DiscoverError::ContextMissing { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("docker context `nope` (from DOCKER_CONTEXT) does not exist")
            && msg.contains(&meta_dir(cfg, "nope")),
        "{msg}"
    );
    assert!(msg.contains("docker context ls") && msg.contains("unset it"), "{msg}");
    let msg = find(None, &with("k8s-only"), Os::Linux, &fs).unwrap_err().to_string();
    assert!(msg.contains("`k8s-only` has no docker endpoint") && msg.contains("docker context create"), "{msg}");
    let msg = find(None, &with("remote"), Os::Linux, &fs).unwrap_err().to_string();
    assert!(
        msg.contains("`ssh://me@box` (docker context `remote` from DOCKER_CONTEXT)") && msg.contains("SSH"),
        "{msg}"
    );
    let msg = find(None, &with("tls"), Os::Linux, &fs).unwrap_err().to_string();
    assert!(msg.contains("`tls` uses TLS") && msg.contains("ssh -nNT -L"), "{msg}");
    let bad = HostEnv { docker_config: Some("/bad".into()), ..env() };
    let msg = find(None, &bad, Os::Linux, &fs).unwrap_err().to_string();
    assert!(msg.contains("/bad/config.json") && msg.contains("not JSON"), "{msg}");
    // The name a context is stored under is the docker CLI's: sha256 of the name.
    assert_eq!(
        meta_dir("", "local"),
        "/contexts/meta/25bf8e1a2393f1108d37029b3df5593236c755742ec93465bbafa9b290bddcf6"
    );
}

#[test]
fn usual_sockets_in_order_the_first_usable_wins() {
    let fs = Rooted::new().sock("/home/u/.colima/default/docker.sock").sock("/run/user/1000/podman/podman.sock");
    assert_eq!(find(None, &env(), Os::Linux, &fs).unwrap().source, Source::Usual(Place::RootlessPodman));
    let fs = fs.sock("/run/user/1000/docker.sock");
    assert_eq!(find(None, &env(), Os::Linux, &fs).unwrap().source, Source::Usual(Place::RootlessDocker));
    let fs = fs.sock("/var/run/docker.sock");
    let f = find(None, &env(), Os::Linux, &fs).unwrap();
    assert_eq!((f.address, f.source), (unix("/var/run/docker.sock"), Source::Usual(Place::RootfulDocker)));
    let fs = Rooted::new().sock("/home/u/.colima/default/docker.sock").sock("/home/u/.orbstack/run/docker.sock");
    assert_eq!(find(None, &env(), Os::Linux, &fs).unwrap().source, Source::Usual(Place::Colima));
}

#[test]
fn a_socket_this_user_cannot_open_yields_to_one_it_can_and_is_named_when_alone() {
    let fs = Rooted::new().deny("/var/run/docker.sock").sock("/run/user/1000/docker.sock");
    assert_eq!(find(None, &env(), Os::Linux, &fs).unwrap().source, Source::Usual(Place::RootlessDocker));
    let fs = Rooted::new().deny("/var/run/docker.sock");
    let f = find(None, &env(), Os::Linux, &fs).unwrap();
    assert_eq!(f.address, unix("/var/run/docker.sock"), "kept, so the error is the permission and its fix");
}

#[test]
fn no_engine_anywhere_lists_where_it_looked() {
    let fs = Rooted::new().file("/var/run/docker.sock", "a regular file is no socket");
    let msg = find(None, &env(), Os::Linux, &fs).unwrap_err().to_string();
    for p in [
        "unix:///var/run/docker.sock",
        "unix:///run/user/1000/docker.sock",
        "unix:///run/podman/podman.sock",
        "unix:///run/user/1000/podman/podman.sock",
        "unix:///home/u/.docker/run/docker.sock",
        "unix:///home/u/.colima/default/docker.sock",
        "unix:///home/u/.colima/docker.sock",
        "unix:///home/u/.orbstack/run/docker.sock",
        "unix:///home/u/.local/share/containers/podman/machine/podman.sock",
        "unix:///home/u/.local/share/containers/podman/machine/qemu/podman.sock",
    ] {
        assert!(msg.contains(p), "{p} missing in {msg}");
    }
    assert!(!msg.contains("podman-machine-default-api.sock"), "macOS only: {msg}");
    assert!(msg.contains("--engine") && msg.contains("systemctl --user start podman.socket"), "{msg}");
}

#[test]
fn the_usual_places_per_platform() {
    let mac = usual(&env(), Os::Macos);
    assert_eq!(mac.last().unwrap(), &(Place::PodmanMachine, unix("/tmp/podman/podman-machine-default-api.sock")));
    let win = usual(&env(), Os::Windows);
    assert_eq!(win[0], (Place::DockerDesktop, Address::Pipe("//./pipe/docker_engine".into())));
    // Without HOME or XDG_RUNTIME_DIR only the system sockets remain.
    let bare: Vec<Address> = usual(&HostEnv::default(), Os::Linux).into_iter().map(|(_, a)| a).collect();
    assert_eq!(bare, [unix("/var/run/docker.sock"), unix("/run/podman/podman.sock")]);
}

#[test]
fn each_source_has_its_own_fix() {
    assert!(Source::DockerHost.fix().contains("DOCKER_HOST"));
    assert!(Source::CodexBoxEngine.fix().contains("CODEX_BOX_ENGINE"));
    assert!(Source::Flag.fix().contains("--engine"));
    assert!(Source::Usual(Place::Colima).fix().contains("colima start"));
    assert!(Source::Usual(Place::RootlessPodman).fix().contains("systemctl --user start podman.socket"));
    assert!(Source::Usual(Place::RootfulDocker).fix().contains("sudo systemctl start docker"));
    let c = Source::Context { name: "x".into(), origin: ContextOrigin::Env, meta: PathBuf::new() };
    assert!(c.fix().contains("docker context use default"));
}

#[test]
fn tls_and_a_missing_config_dir_are_refused_not_guessed() {
    let fs = Rooted::new().sock("/var/run/docker.sock").file("/contexts/meta/x/meta.json", "{}");
    let e = HostEnv { docker_host: Some("tcp://10.0.0.2:2376".into()), docker_tls_verify: true, ..env() };
    let msg = find(None, &e, Os::Linux, &fs).unwrap_err().to_string();
    assert!(
        msg.contains("DOCKER_HOST `tcp://10.0.0.2:2376` with DOCKER_TLS_VERIFY") && msg.contains("ssh -nNT -L"),
        "{msg}"
    );
    let e = HostEnv { docker_host: Some("unix:///x.sock".into()), docker_tls_verify: true, ..env() };
    assert_eq!(find(None, &e, Os::Linux, &fs).unwrap().address, unix("/x.sock"));
    // DOCKER_CONTEXT without HOME or DOCKER_CONFIG: an error, never a relative contexts/ directory.
    let e = HostEnv { docker_context: Some("x".into()), home: None, ..env() };
    let msg = find(None, &e, Os::Linux, &fs).unwrap_err().to_string();
    assert!(msg.contains("neither DOCKER_CONFIG nor HOME is set"), "{msg}");
}
