use std::path::PathBuf;

use super::*;
use crate::docker::discover::{Address, Found, Place, Source};

fn at(path: &str, source: Source) -> Option<Found> {
    Some(Found { address: Address::Unix(path.into()), source })
}

fn kind(product: Product, rootless: bool, vm: bool) -> Option<EngineKind> {
    Some(EngineKind { product, rootless, vm, version: "20.10.24".into(), api_version: "1.41".into(), confirmed: true })
}

fn healthy() -> Facts {
    Facts {
        host_os: "linux",
        found: at("/var/run/docker.sock", Source::Usual(Place::RootfulDocker)),
        engine: Ok(EngineInfo {
            version: "20.10.24".into(),
            api_version: "1.41".into(),
            negotiated_api: "1.41".into(),
            os: "linux/amd64".into(),
        }),
        kind: kind(Product::Docker, false, false),
        podman_init: None,
        cgroup_version: Some("2".into()),
        podman_seccomp: None,
        socket: Some(Socket {
            path: "/var/run/docker.sock".into(),
            exists: true,
            accessible: true,
            mode: 0o140660,
            group: "docker".into(),
        }),
        image_name: "codex-sandbox".into(),
        image: Some(Ok(true)),
        image_tools: Some(Ok(facts::IMAGE_TOOLS.iter().map(|t| (t.to_string(), true)).collect())),
        companion: Some(Ok("/opt/codex-box-linux-x86_64".into())),
        kernel: Some(Kernel {
            landlock_abi: Some(4),
            seccomp: true,
            user_notif: true,
            userns: true,
            apparmor_restrict_userns: None,
        }),
        sandbox_exec: false,
        bwrap: None,
        dns: Ok(vec![("api.openai.com".into(), Ok(2)), ("chatgpt.com".into(), Ok(1))]),
        state: Some(facts::StateDir { path: "/home/u/.local/state/codex-box".into(), writable: Ok(()), project: None }),
    }
}

#[test]
fn a_state_dir_that_cannot_be_written_or_lies_in_a_project_fails() {
    let bad = |writable: Result<(), String>, project: Option<&str>| {
        let state = facts::StateDir { path: "/p/.state/codex-box".into(), writable, project: project.map(Into::into) };
        checks(&Facts { state: Some(state), ..healthy() })
    };
    let c = bad(Err("/p/.state is not writable by this user".into()), None);
    assert_eq!(status(&c, "state-dir"), Status::Fail);
    assert!(fix(&c, "state-dir").contains("XDG_STATE_HOME"));
    assert_eq!(exit_code(&c), 1);
    let c = bad(Ok(()), Some("/p"));
    assert_eq!(status(&c, "state-dir"), Status::Fail);
    assert!(c.iter().any(|x| x.detail.contains("inside the project /p")), "{c:?}");
    assert_eq!(status(&bad(Ok(()), None), "state-dir"), Status::Ok, "control");
    assert_eq!(status(&checks(&Facts { state: None, ..healthy() }), "state-dir"), Status::Warn);
}

#[test]
fn the_state_dir_is_looked_at_without_being_made() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap();
    let (proj, home) = (root.join("proj"), root.join("home"));
    std::fs::create_dir_all(proj.join(".git")).unwrap();
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // In a project found by its .git, from anywhere; in the current directory, whatever it holds.
    let s = facts::state_dir(&proj.join("sub/.state/codex-box"), Some(&elsewhere), Some(&home));
    assert_eq!(s.project, Some(proj.clone()));
    assert!(s.writable.is_ok() && !proj.join("sub").exists(), "nothing made");
    let s = facts::state_dir(&elsewhere.join("s/codex-box"), Some(&elsewhere), Some(&home));
    assert_eq!(s.project, Some(elsewhere.clone()));
    // Controls: beside the project, and below a home holding the user's ~/.codex.
    assert_eq!(facts::state_dir(&root.join("state/codex-box"), Some(&proj), Some(&home)).project, None);
    assert_eq!(facts::state_dir(&home.join(".local/state/codex-box"), Some(&proj), Some(&home)).project, None);
    // A file in the way: it cannot be made.
    std::fs::write(root.join("file"), "").unwrap();
    let s = facts::state_dir(&root.join("file/codex-box"), None, None);
    assert!(s.writable.unwrap_err().contains("is not a directory"));
}

fn status(checks: &[Check], name: &str) -> Status {
    checks.iter().find(|c| c.check == name).unwrap_or_else(|| panic!("no check {name}: {checks:?}")).status
}

fn fix(checks: &[Check], name: &str) -> String {
    checks.iter().find(|c| c.check == name).and_then(|c| c.fix.clone()).unwrap_or_default()
}

#[test]
fn a_healthy_host_is_all_ok() {
    let c = checks(&healthy());
    assert!(c.iter().all(|c| c.status == Status::Ok), "{c:?}");
    assert_eq!(exit_code(&c), 0);
    let names: Vec<&str> = c.iter().map(|c| c.check).collect();
    assert_eq!(
        names,
        [
            "engine",
            "api-version",
            "engine-kind",
            "engine-limits",
            "socket",
            "image",
            "image-tools",
            "companion",
            "landlock",
            "seccomp",
            "userns",
            "apparmor-userns",
            "bubblewrap",
            "dns",
            "state-dir"
        ]
    );
}

#[test]
fn no_engine_fails_and_names_docker_host() {
    let f = Facts {
        engine: Err("no Docker engine answers at unix:///nope.sock (from DOCKER_HOST)".into()),
        found: at("/nope.sock", Source::DockerHost),
        kind: None,
        socket: Some(Socket {
            path: "/nope.sock".into(),
            exists: false,
            accessible: false,
            mode: 0,
            group: "0".into(),
        }),
        image: None,
        image_tools: None,
        ..healthy()
    };
    let c = checks(&f);
    assert_eq!(status(&c, "engine"), Status::Fail);
    assert!(fix(&c, "engine").contains("DOCKER_HOST"), "{c:?}");
    assert!(c[0].detail.contains("/nope.sock"), "{c:?}");
    assert_eq!(status(&c, "engine-kind"), Status::Warn);
    assert_eq!(status(&c, "socket"), Status::Fail);
    assert_eq!(status(&c, "image"), Status::Warn);
    assert_eq!(exit_code(&c), 1);
}

#[test]
fn socket_permission_names_the_group() {
    let f = Facts {
        socket: Some(Socket {
            path: "/var/run/docker.sock".into(),
            exists: true,
            accessible: false,
            mode: 0o140660,
            group: "docker".into(),
        }),
        ..healthy()
    };
    let c = checks(&f);
    assert_eq!(status(&c, "socket"), Status::Fail);
    assert!(fix(&c, "socket").contains("usermod -aG docker"), "{c:?}");
    let tcp = Facts {
        socket: None,
        found: Some(Found { address: Address::Tcp("10.0.0.1:2375".into()), source: Source::Flag }),
        ..healthy()
    };
    assert_eq!(status(&checks(&tcp), "socket"), Status::Ok);
}

#[test]
fn missing_image_or_tools_fail_with_the_build_command() {
    let c = checks(&Facts { image: Some(Ok(false)), image_tools: None, image_name: "nope:1".into(), ..healthy() });
    assert_eq!(status(&c, "image"), Status::Fail);
    assert!(fix(&c, "image").contains("codex-box image build --tag nope:1"));
    assert_eq!(exit_code(&c), 1);
    let mut tools: Vec<(String, bool)> = facts::IMAGE_TOOLS.iter().map(|t| (t.to_string(), true)).collect();
    tools[2].1 = false;
    let c = checks(&Facts { image_tools: Some(Ok(tools)), ..healthy() });
    assert_eq!(status(&c, "image-tools"), Status::Fail);
    assert!(c.iter().any(|c| c.detail.contains("lacks ipset")), "{c:?}");
}

#[test]
fn old_api_warns() {
    let mut f = healthy();
    f.engine = Ok(EngineInfo { api_version: "1.40".into(), ..f.engine.clone().unwrap() });
    let c = checks(&f);
    assert_eq!(status(&c, "api-version"), Status::Warn);
    assert_eq!(exit_code(&c), 0);
}

#[test]
fn native_gaps_warn_but_do_not_fail() {
    let f = Facts {
        kernel: Some(Kernel {
            landlock_abi: None,
            seccomp: false,
            user_notif: false,
            userns: false,
            apparmor_restrict_userns: Some(true),
        }),
        bwrap: Some(PathBuf::from("/usr/bin/bwrap")),
        ..healthy()
    };
    let c = checks(&f);
    for name in ["landlock", "seccomp", "userns", "apparmor-userns"] {
        assert_eq!(status(&c, name), Status::Warn, "{name}");
    }
    assert!(fix(&c, "apparmor-userns").contains("kernel.apparmor_restrict_unprivileged_userns=0"));
    assert!(fix(&c, "landlock").contains("5.13"));
    assert_eq!(status(&c, "bubblewrap"), Status::Ok);
    assert_eq!(exit_code(&c), 0);
}

#[test]
fn unresolvable_names_warn() {
    let f = Facts {
        dns: Ok(vec![("a.example".into(), Ok(1)), ("b.example".into(), Err("no such name".into()))]),
        ..healthy()
    };
    let c = checks(&f);
    assert_eq!(status(&c, "dns"), Status::Warn);
    assert!(c.iter().any(|c| c.detail.contains("b.example (no such name)")));
    assert_eq!(exit_code(&c), 0);
}

#[test]
fn other_platforms_report_their_backend() {
    let mac = Facts { host_os: "macos", kernel: None, sandbox_exec: true, ..healthy() };
    assert_eq!(status(&checks(&mac), "native-sandbox"), Status::Ok);
    let win = Facts { host_os: "windows", kernel: None, socket: None, ..healthy() };
    let c = checks(&win);
    assert_eq!(status(&c, "native-sandbox"), Status::Warn);
    assert!(c.iter().any(|c| c.detail.contains("NOT restricted")));
}

#[test]
fn report_and_json_have_one_entry_per_check() {
    let f = Facts { image: Some(Ok(false)), image_tools: None, ..healthy() };
    let c = checks(&f);
    let text = render(&c);
    assert!(text.lines().any(|l| l.starts_with("FAIL  image ")), "{text}");
    assert!(text.contains("fix: build it"));
    let json: serde_json::Value = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), c.len());
    assert_eq!(arr[5]["check"], "image");
    assert_eq!(arr[5]["status"], "fail");
    assert_eq!(arr[0]["status"], "ok");
    assert!(arr[0].get("fix").is_none());
}

#[test]
fn tool_lines_are_parsed() {
    let t = facts::parse_tools("iptables-restore yes\nip6tables-restore yes\nipset no\n");
    assert_eq!(
        t,
        vec![
            ("iptables-restore".into(), true),
            ("ip6tables-restore".into(), true),
            ("ipset".into(), false),
            ("setpriv".into(), false)
        ]
    );
}

#[test]
fn the_engine_check_names_its_source_and_the_kind_says_what_it_means() {
    let c = checks(&healthy());
    assert!(
        c[0].detail.contains("Docker 20.10.24") && c[0].detail.contains("the usual rootful Docker socket"),
        "{c:?}"
    );
    let k = &c.iter().find(|c| c.check == "engine-kind").unwrap().detail;
    assert!(k.starts_with("rootful Docker 20.10.24, local: rootful"), "{k}");

    let rootless = Facts {
        found: at("/run/user/1000/podman/podman.sock", Source::DockerHost),
        kind: kind(Product::Podman, true, false),
        podman_init: Some(Some("/usr/libexec/podman/catatonit".into())),
        ..healthy()
    };
    let c = checks(&rootless);
    let k = &c.iter().find(|c| c.check == "engine-kind").unwrap().detail;
    assert!(k.contains("rootless Podman") && k.contains("subordinate ids") && k.contains("catatonit"), "{k}");
    assert_eq!(status(&c, "engine-init"), Status::Ok);
    assert!(c[0].detail.contains("from DOCKER_HOST"), "{c:?}");

    let no_init = Facts { podman_init: Some(None), ..rootless };
    let c = checks(&no_init);
    assert_eq!(status(&c, "engine-init"), Status::Fail);
    assert!(fix(&c, "engine-init").contains("install catatonit"));

    let vm = Facts {
        found: at("/Users/u/.colima/default/docker.sock", Source::Usual(Place::Colima)),
        kind: kind(Product::Docker, false, true),
        ..healthy()
    };
    let k = checks(&vm).into_iter().find(|c| c.check == "engine-kind").unwrap().detail;
    assert!(k.contains("in a VM: bind mounts work only for paths the VM shares"), "{k}");
}

#[test]
fn a_failed_discovery_fails_the_engine_with_the_generic_fix() {
    let f = Facts {
        found: None,
        engine: Err("docker context `nope` (from DOCKER_CONTEXT) does not exist".into()),
        kind: None,
        socket: None,
        image: None,
        image_tools: None,
        ..healthy()
    };
    let c = checks(&f);
    assert_eq!(status(&c, "engine"), Status::Fail);
    assert!(c[0].detail.contains("`nope`"));
    assert!(fix(&c, "engine").contains("--engine"));
}

#[test]
fn a_missing_static_build_fails_with_the_build_command() {
    let c = checks(&healthy());
    assert_eq!(status(&c, "companion"), Status::Ok);
    let f = Facts {
        companion: Some(Err(
            "no static Linux build … cargo build --release --locked --target x86_64-unknown-linux-musl --bin codex-box"
                .into(),
        )),
        ..healthy()
    };
    let c = checks(&f);
    assert_eq!(status(&c, "companion"), Status::Fail);
    let check = c.iter().find(|c| c.check == "companion").unwrap();
    assert!(check.fix.as_deref().unwrap().contains("--target x86_64-unknown-linux-musl"));
    assert_eq!(exit_code(&c), 1);
}

#[test]
fn where_sessions_differ_by_engine_doctor_says_so_with_the_fix() {
    let c = checks(&healthy());
    assert_eq!(status(&c, "engine-limits"), Status::Ok);
    assert!(c.iter().all(|c| c.check != "engine-seccomp"), "Docker's default profile needs no line: {c:?}");

    // A rootless engine on cgroup v1 sets no limits at all.
    let v1 = Facts { kind: kind(Product::Docker, true, false), cgroup_version: Some("1".into()), ..healthy() };
    let c = checks(&v1);
    assert_eq!(status(&c, "engine-limits"), Status::Warn);
    assert!(fix(&c, "engine-limits").contains("cgroup v2"), "{c:?}");
    // The same cgroup v1 under a rootful engine: enforced.
    let rootful_v1 = Facts { cgroup_version: Some("1".into()), ..healthy() };
    assert_eq!(status(&checks(&rootful_v1), "engine-limits"), Status::Ok);

    let podman = Facts {
        kind: kind(Product::Podman, false, false),
        podman_init: Some(Some("/usr/libexec/podman/catatonit".into())),
        podman_seccomp: Some(Ok(())),
        ..healthy()
    };
    assert_eq!(status(&checks(&podman), "engine-seccomp"), Status::Ok);
    let bare = Facts { podman_seccomp: Some(Err("Podman's seccomp profile … is not on this host".into())), ..podman };
    let c = checks(&bare);
    assert_eq!(status(&c, "engine-seccomp"), Status::Warn);
    let line = &c.iter().find(|c| c.check == "engine-seccomp").unwrap().detail;
    assert!(line.contains("user namespaces"), "{line}");
    assert!(fix(&c, "engine-seccomp").contains("containers-common"));
}
