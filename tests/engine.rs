//! Engine discovery and connection, through the real binary: `--engine` and the docker context
//! reach the real engine; a missing socket, a bad scheme, an SSH address, a missing context, a
//! context without a docker endpoint, a stale socket and an engine too old (a fake one on a unix
//! socket, with the real engine as the control) each fail with the input and the fix named, exit
//! non-zero and leave nothing behind (no container for the project, no `.codex/`).
#![cfg(target_os = "linux")]

#[macro_use]
mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::Digest;
use support::*;

/// The real engine's address as codex-box finds it from this test's environment.
fn real_engine() -> String {
    let env = codex_box::host_env::HostEnv::from_process();
    codex_box::docker::discover::find_here(None, &env).expect("an engine address").address.to_string()
}

/// `p.cmd(args)` with no engine chosen by the environment (each test sets what it means).
fn cmd(p: &Project, args: &[&str]) -> Command {
    let mut c = p.cmd(args);
    for k in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "CODEX_BOX_ENGINE"] {
        c.env_remove(k);
    }
    c
}

/// A docker CLI configuration directory whose current context `name` has `meta` as its meta.json.
fn docker_config(root: &Path, name: &str, meta: &str) -> PathBuf {
    let dir = root.join("docker-config");
    let id = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    std::fs::create_dir_all(dir.join("contexts/meta").join(&id)).unwrap();
    std::fs::write(dir.join("config.json"), format!(r#"{{"currentContext":"{name}"}}"#)).unwrap();
    std::fs::write(dir.join("contexts/meta").join(&id).join("meta.json"), meta).unwrap();
    dir
}

/// Exit 125, every `needle` on stderr, and nothing left behind for the project.
fn refused(p: &Project, out: &Output, needles: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!p.wd.join(".codex").exists(), "nothing written in the project: {err}");
    let left: Vec<_> = std::fs::read_dir(&p.wd).unwrap().collect();
    assert!(left.is_empty(), "the project dir stays empty: {left:?}");
}

#[test]
fn bad_engine_inputs_are_refused_naming_the_input_and_the_fix_leaving_nothing() {
    let p = Project::new();
    let stale = p.root.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let stale_arg = format!("unix://{}", stale.display());
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--engine", "/nonexistent.sock"],
            vec!["unix:///nonexistent.sock (from --engine)", "does not exist", "fix --engine"],
        ),
        (
            vec!["--engine", "ftp://x"],
            vec!["`ftp://x` (from --engine)", "scheme `ftp://`", "unix:///PATH or tcp://HOST:PORT"],
        ),
        (
            vec!["--engine", "ssh://me@build-host"],
            vec!["`ssh://me@build-host` (from --engine)", "not supported yet", "ssh -nNT -L", "--engine unix://"],
        ),
        (vec!["--engine", "docker.sock"], vec!["`docker.sock`", "not an absolute path"]),
        (vec!["--engine", "tcp://127.0.0.1"], vec!["`tcp://127.0.0.1`", "names no port"]),
        (vec!["--engine", &stale_arg], vec![&stale_arg, "connection refused"]),
    ];
    for (flags, needles) in cases {
        let mut args = vec!["run"];
        args.extend(&flags);
        args.extend(["--", "true"]);
        refused(&p, &cmd(&p, &args).output().unwrap(), &needles);
    }
    // From the environment: CODEX_BOX_ENGINE, and DOCKER_HOST is never replaced by a usual socket.
    let out = cmd(&p, &["run", "--", "true"]).env("CODEX_BOX_ENGINE", "https://h:2376").output().unwrap();
    refused(&p, &out, &["`https://h:2376` (from CODEX_BOX_ENGINE)", "TLS"]);
    let out = cmd(&p, &["run", "--", "true"]).env("DOCKER_HOST", "unix:///nonexistent/docker.sock").output().unwrap();
    refused(&p, &out, &["unix:///nonexistent/docker.sock (from DOCKER_HOST)", "DOCKER_HOST"]);
    if docker_ready("bad engine inputs: no container") {
        assert!(containers_for(&p.wd).is_empty());
    }
}

#[test]
fn bad_docker_contexts_are_refused_naming_the_context_and_the_fix() {
    let p = Project::new();
    let empty = p.root.path().join("no-contexts");
    std::fs::create_dir_all(&empty).unwrap();
    let out =
        cmd(&p, &["run", "--", "true"]).env("DOCKER_CONFIG", &empty).env("DOCKER_CONTEXT", "nope").output().unwrap();
    refused(&p, &out, &["docker context `nope` (from DOCKER_CONTEXT) does not exist", "docker context ls", "unset it"]);
    let cfg = docker_config(p.root.path(), "k8s", r#"{"Name":"k8s","Metadata":{},"Endpoints":{"kubernetes":{}}}"#);
    let out = cmd(&p, &["run", "--", "true"]).env("DOCKER_CONFIG", &cfg).output().unwrap();
    let meta = format!("{}", cfg.display());
    refused(&p, &out, &["docker context `k8s` has no docker endpoint", &meta, "docker context use default"]);
}

#[test]
fn the_real_engine_through_the_flag_and_through_a_docker_context() {
    need_docker!();
    let p = Project::new();
    let real = real_engine();
    // The flag beats a DOCKER_HOST that would fail.
    let out = cmd(&p, &["run", "--engine", &real, "--", "true"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Before the subcommand too (`codex-box --engine ADDR gc`, not a Codex session named gc).
    let out = Command::new(env!("CARGO_BIN_EXE_codex-box"))
        .args(["--engine", &real, "gc"])
        .env("HOME", &p.home)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!p.home.join(".codex").exists());
    // The current docker context names the real engine.
    let meta = format!(
        r#"{{"Name":"codex-box-test","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{real}","SkipTLSVerify":false}}}}}}"#
    );
    let cfg = docker_config(p.root.path(), "codex-box-test", &meta);
    let out = cmd(&p, &["run", "--", "true"]).env("DOCKER_CONFIG", &cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(containers_for(&p.wd).is_empty());
}

/// A fake engine on a unix socket: `/_ping` answers OK, `/version` an old API; records each
/// request line.
fn old_engine(path: &Path) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let l = UnixListener::bind(path).unwrap();
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string();
            let body = if req.contains("/_ping") {
                "OK".to_string()
            } else {
                r#"{"Version":"1.12.6","ApiVersion":"1.24","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64","Components":[{"Name":"Engine","Version":"1.12.6","Details":{}}]}"#.to_string()
            };
            log.lock().unwrap().push(req);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nApi-Version: 1.24\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    seen
}

#[test]
fn an_engine_too_old_is_refused_and_the_real_one_is_not() {
    let p = Project::new();
    let sock = p.root.path().join("old-engine.sock");
    let seen = old_engine(&sock);
    let addr = format!("unix://{}", sock.display());
    let out = cmd(&p, &["run", "--engine", &addr, "--", "true"]).output().unwrap();
    refused(&p, &out, &[&addr, "Engine 1.12.6 with API 1.24", "older than 1.40", "Upgrade it", "--engine"]);
    // On Linux `/_ping`'s headers are asked first (they say the API version); an API too old to
    // speak sends codex-box to `/version` for what the engine is — and nothing more is asked.
    let asked = seen.lock().unwrap().clone();
    let expected = if cfg!(target_os = "linux") { 2 } else { 1 };
    assert_eq!(asked.len(), expected, "{asked:?}");
    if expected == 2 {
        assert!(asked[0].starts_with("GET /_ping"), "{asked:?}");
    }
    assert!(asked[expected - 1].starts_with("GET ") && asked[expected - 1].contains("/version"), "{asked:?}");
    // doctor says the same, as a failed engine check.
    let out =
        cmd(&p, &["doctor", "--json", "--engine", &addr, "--dns-server", &p.dns.addr.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let engine = v.as_array().unwrap().iter().find(|c| c["check"] == "engine").unwrap();
    assert_eq!(engine["status"], "fail");
    assert!(engine["detail"].as_str().unwrap().contains("API 1.24"), "{engine}");
    // The control: the same command against the real engine runs.
    need_docker!();
    let out = cmd(&p, &["run", "--engine", &real_engine(), "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn doctor_names_the_source_and_the_kind() {
    need_docker!();
    let p = Project::new();
    let zone = codex_box::egress::BUILTIN_NAMES
        .iter()
        .fold(support::dns_server::Zone::new(60), |z, n| z.addr(n, "192.0.2.10"));
    let dns = support::dns_server::TestDns::start(zone);
    let real = real_engine();
    let doctor = |extra: &[&str], env: &[(&str, &str)]| {
        let server = format!("--dns-server={}", dns.addr);
        let mut args = vec!["doctor", "--json", server.as_str()];
        args.extend(extra);
        let mut c = cmd(&p, &args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
        let get = |name: &str| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|c| c["check"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no {name}: {v}"))
        };
        (get("engine"), get("engine-kind"), v)
    };
    let (engine, kind, all) = doctor(&["--engine", &real], &[]);
    assert_eq!(engine["status"], "ok", "{engine}");
    assert!(engine["detail"].as_str().unwrap().contains(&format!("{real} (from --engine)")), "{engine}");
    let k = kind["detail"].as_str().unwrap();
    assert_eq!(kind["status"], "ok", "{kind}");
    assert!(k.contains("Docker") || k.contains("Podman"), "{k}");
    assert!(k.contains("rootful") || k.contains("rootless"), "{k}");
    assert!(k.contains("local") || k.contains("in a VM"), "{k}");
    // Where sessions differ by engine: the limits line always, the seccomp line for a local Podman
    // (whose own default profile would let the agent make user namespaces).
    let line = |name: &str| all.as_array().unwrap().iter().find(|c| c["check"] == name).cloned();
    let limits = line("engine-limits").unwrap_or_else(|| panic!("no engine-limits: {all}"));
    let expected = if support::limits_enforced() { "ok" } else { "warn" };
    assert_eq!(limits["status"], expected, "a rootless engine on cgroup v1 warns, others are ok: {limits}");
    match line("engine-seccomp") {
        Some(s) => {
            assert!(k.contains("Podman") && k.contains("local"), "{s} on {k}");
            assert_eq!(s["status"], "ok", "{s}");
            assert!(s["detail"].as_str().unwrap().contains("user namespaces refused"), "{s}");
        }
        None => assert!(k.contains("Docker"), "a local Podman has an engine-seccomp line: {all}"),
    }
    let (engine, ..) = doctor(&[], &[("DOCKER_HOST", &real)]);
    assert!(engine["detail"].as_str().unwrap().contains("(from DOCKER_HOST)"), "{engine}");
    let meta = format!(r#"{{"Endpoints":{{"docker":{{"Host":"{real}"}}}}}}"#);
    let cfg = docker_config(p.root.path(), "ctx-doctor", &meta);
    let (engine, ..) = doctor(&[], &[("DOCKER_CONFIG", cfg.to_str().unwrap())]);
    assert!(engine["detail"].as_str().unwrap().contains("docker context `ctx-doctor`, current in"), "{engine}");
    if real == "unix:///var/run/docker.sock" {
        let (engine, kind, _) = doctor(&[], &[]);
        assert!(engine["detail"].as_str().unwrap().contains("the usual rootful Docker socket"), "{engine}");
        assert!(kind["detail"].as_str().unwrap().starts_with("rootful Docker"), "{kind}");
    }
}
