//! `codex-box doctor` run as a real binary on this machine: with the engine and image present, and
//! with features made absent by configuration (a DOCKER_HOST socket that does not exist, an image name
//! that does not exist, `CODEX_BOX_SANDBOX_PRETEND_MISSING`) — never by mocking the kernel.
//! Needs the Docker engine and the codex-sandbox image; without them "skipped: …", failed under CI=true.
#![cfg(target_os = "linux")]

#[macro_use]
mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::{image, text};

/// `codex-box doctor ARGS`, resolving the built-in names through a loopback test DNS server that
/// answers them with documentation addresses (never the host's resolver).
fn doctor(args: &[&str], env: &[(&str, &str)]) -> Output {
    let (mut c, _dns) = doctor_cmd(args, env);
    c.output().expect("run codex-box doctor")
}

/// [`doctor`]'s command, not yet run, and the test DNS server it asks (kept while it runs).
fn doctor_cmd(args: &[&str], env: &[(&str, &str)]) -> (Command, support::dns_server::TestDns) {
    let zone = codex_box::egress::BUILTIN_NAMES
        .iter()
        .fold(support::dns_server::Zone::new(60), |z, n| z.addr(n, "192.0.2.10"));
    let dns = support::dns_server::TestDns::start(zone);
    let mut c = Command::new(env!("CARGO_BIN_EXE_codex-box"));
    c.arg("doctor")
        .arg(format!("--dns-server={}", dns.addr))
        .args(args)
        .env("CODEX_DOCKER_IMAGE", image())
        .env_remove("CODEX_BOX_SANDBOX_PRETEND_MISSING");
    for (k, v) in env {
        c.env(k, v);
    }
    (c, dns)
}

/// The `--json` report: check name → (status, fix).
fn report(out: &Output) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output does not parse: {e}\n{}", text(&out.stdout)));
    let arr = v.as_array().expect("a JSON array");
    arr.iter()
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            assert!(["ok", "warn", "fail"].contains(&s("status").as_str()), "{c}");
            assert!(!s("detail").is_empty(), "{c}");
            (s("check"), s("status"), s("fix"))
        })
        .collect()
}

fn get<'a>(r: &'a [(String, String, String)], name: &str) -> &'a (String, String, String) {
    r.iter().find(|c| c.0 == name).unwrap_or_else(|| panic!("no check {name} in {r:?}"))
}

#[test]
fn healthy_host_passes_and_json_has_one_object_per_check() {
    need_docker!();
    let human = doctor(&[], &[]);
    assert_eq!(human.status.code(), Some(0), "{}{}", text(&human.stdout), text(&human.stderr));
    let out = text(&human.stdout);
    for line in [
        "ok    engine",
        "ok    image ",
        "ok    image-tools",
        "ok    companion",
        "ok    landlock",
        "ok    seccomp",
        "ok    userns",
    ] {
        assert!(out.lines().any(|l| l.starts_with(line)), "missing `{line}` in\n{out}");
    }
    let json = doctor(&["--json"], &[]);
    assert_eq!(json.status.code(), Some(0));
    let r = report(&json);
    let checks = out.lines().filter(|l| !l.trim_start().starts_with("fix:")).count();
    assert_eq!(r.len(), checks, "one JSON object per human line");
    let mut names: Vec<&str> = r.iter().map(|c| c.0.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), r.len(), "check names are unique");
    for name in [
        "engine",
        "api-version",
        "socket",
        "image",
        "image-tools",
        "companion",
        "landlock",
        "seccomp",
        "userns",
        "bubblewrap",
    ] {
        assert_eq!(get(&r, name).1, "ok", "{name}: {r:?}");
    }
    assert_eq!(get(&r, "dns").1, "ok", "the built-in names resolve through the test DNS server");
}

#[test]
fn engine_absent_fails_with_docker_host_fix() {
    let out = doctor(&["--json"], &[("DOCKER_HOST", "unix:///nonexistent/codex-box-test/docker.sock")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let r = report(&out);
    let engine = get(&r, "engine");
    assert_eq!(engine.1, "fail");
    assert!(engine.2.contains("DOCKER_HOST"), "{engine:?}");
    assert_eq!(get(&r, "socket").1, "fail");
    // The kernel checks still run without an engine.
    assert!(["ok", "warn"].contains(&get(&r, "landlock").1.as_str()));
    let human = doctor(&[], &[("DOCKER_HOST", "unix:///nonexistent/codex-box-test/docker.sock")]);
    assert_eq!(human.status.code(), Some(1));
    assert!(text(&human.stdout).lines().any(|l| l.starts_with("FAIL  engine")));
}

#[test]
fn image_absent_fails_with_build_fix() {
    need_docker!();
    let missing = "codex-box-doctor-test-nonexistent:none";
    for out in [doctor(&["--json"], &[("CODEX_DOCKER_IMAGE", missing)]), doctor(&["--json", "--image", missing], &[])] {
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let r = report(&out);
        assert_eq!(get(&r, "engine").1, "ok");
        let img = get(&r, "image");
        assert_eq!(img.1, "fail");
        assert!(img.2.contains(&format!("codex-box image build --tag {missing}")), "{img:?}");
    }
}

#[test]
fn kernel_features_absent_warn_without_failing() {
    need_docker!();
    let out = doctor(&["--json"], &[("CODEX_BOX_SANDBOX_PRETEND_MISSING", "landlock,userns")]);
    assert_eq!(out.status.code(), Some(0), "the container path still works: {}", text(&out.stdout));
    let r = report(&out);
    assert_eq!(get(&r, "landlock").1, "warn");
    assert!(get(&r, "landlock").2.contains("5.13"));
    assert_eq!(get(&r, "userns").1, "warn");
    assert_eq!(get(&r, "seccomp").1, "ok", "only what was pretended missing is missing");
}

/// The state directory (approvals of trust on change): not writable, or inside a project, fails —
/// each beside the control that passes on this same host.
#[test]
fn a_state_dir_that_cannot_be_written_or_lies_in_a_project_fails() {
    need_docker!();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap();
    let proj = root.join("proj");
    std::fs::create_dir_all(proj.join(".git")).unwrap();
    let file = root.join("a-file");
    std::fs::write(&file, "").unwrap();
    let run = |state: &std::path::Path, cwd: &std::path::Path| {
        let s = state.to_str().unwrap().to_string();
        let (mut c, _dns) = doctor_cmd(&["--json"], &[("XDG_STATE_HOME", &s)]);
        let out = c.current_dir(cwd).output().unwrap();
        let r = report(&out);
        (out.status.code(), get(&r, "state-dir").clone())
    };
    // Control: beside the project, run from it.
    let (code, line) = run(&root.join("state"), &proj);
    assert_eq!((code, line.1.as_str()), (Some(0), "ok"), "{line:?}");
    // Inside the project, found by its .git from elsewhere, and as the current directory.
    for (state, cwd) in [(proj.join(".state"), root.clone()), (proj.join("sub/state"), proj.clone())] {
        let (code, line) = run(&state, &cwd);
        assert_eq!((code, line.1.as_str()), (Some(1), "fail"), "{line:?}");
        assert!(line.2.contains("XDG_STATE_HOME"), "{line:?}");
    }
    assert!(!proj.join(".state").exists() && !proj.join("sub").exists(), "doctor makes nothing");
    // Not writable: a file in the way (so it holds as root too).
    let (code, line) = run(&file, &root);
    assert_eq!((code, line.1.as_str()), (Some(1), "fail"), "{line:?}");
}
