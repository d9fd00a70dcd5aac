//! Container sessions against the real engine and the real codex-sandbox image.
#![cfg(unix)]

#[macro_use]
mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use support::*;

#[test]
fn command_runs_as_non_root_in_app_workdir_and_its_exit_code_comes_back() {
    need_docker!();
    let p = Project::new();
    let out = p.run_sh(&[], "id -u; pwd; exit 7");
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(agent_uid_inside().to_string().as_str()), "runs as the workdir owner, not root");
    assert_eq!(lines.next(), Some(p.app().as_str()));
    assert!(containers_for(&p.wd).is_empty(), "container removed after the command");
}

#[test]
fn stdout_and_stderr_are_separate_and_stdin_is_forwarded() {
    need_docker!();
    let p = Project::new();
    let out = p.run_sh(&[], "echo to-out; echo to-err >&2");
    assert_eq!(text(&out.stdout), "to-out\n");
    assert!(text(&out.stderr).contains("to-err") && !text(&out.stdout).contains("to-err"));
    let wd = p.wd.to_str().unwrap();
    let mut child = p
        .cmd(&["run", "--work_dir", wd, "--", "tr", "a-z", "A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "HELLO\n");
}

#[test]
fn auth_json_is_readable_not_writable_and_keeps_its_mode() {
    need_docker!();
    let p = Project::new();
    let dir = p.home.join(".codex");
    std::fs::create_dir_all(&dir).unwrap();
    let auth = dir.join("auth.json");
    std::fs::write(&auth, "{\"token\":\"t\"}").unwrap();
    chown(&auth);
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = p.run_sh(&[], "cat /codex_home/auth.json; echo; echo x >> /codex_home/auth.json && echo WROTE");
    assert!(text(&out.stdout).contains("\"token\""), "control: readable: {}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("WROTE"), "auth.json must not be writable");
    assert!(text(&out.stderr).contains("Read-only file system"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&auth).unwrap(), "{\"token\":\"t\"}");
    let meta = std::fs::metadata(&auth).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, owner_uid()), "mode and owner untouched");
    assert!(!p.wd.join(".codex/.environment/auth.json").exists(), "never copied");
    assert!(!p.wd.join(".codex/.environment/state/auth.json").exists(), "not kept");
    let homes = p.wd.join(".codex/.environment/homes");
    assert_eq!(std::fs::read_dir(&homes).unwrap().count(), 0, "no placeholder left: the home went with its session");
}

#[test]
fn read_only_mount_is_not_writable_while_the_workdir_is() {
    need_docker!();
    let p = Project::new();
    let cache = p.root.path().join("m2");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("settings.xml"), "<settings/>").unwrap();
    let c = cache.to_str().unwrap();
    let script = format!("cat /app{c}/settings.xml; touch /app{c}/new && echo RO-WROTE; touch ./new && echo WD-WROTE");
    let out = p.run_sh(&["--read-only", c], &script);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("<settings/>"), "{stdout} {}", text(&out.stderr));
    assert!(!stdout.contains("RO-WROTE"));
    assert!(stdout.contains("WD-WROTE"), "control: the workdir is writable");
    assert!(!cache.join("new").exists());
    let made = std::fs::metadata(p.wd.join("new")).unwrap();
    assert_eq!(made.uid(), owner_uid(), "files the agent makes belong to the invoking user (workdir owner)");
}

#[test]
fn config_and_prompts_are_copied_from_the_users_codex_dir() {
    need_docker!();
    let p = Project::new();
    let dir = p.home.join(".codex");
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    std::fs::write(dir.join("config.toml"), "model = \"test-model\"\n").unwrap();
    std::fs::write(dir.join("prompts/review.md"), "review it").unwrap();
    // The trusted prompts are read-only in the session (the state dir is shared with the project's
    // other sessions); the rest of the state is writable (control).
    let script = "cat /codex_home/config.toml /codex_home/prompts/review.md; echo $CODEX_HOME; \
                  (echo x > /codex_home/prompts/new.md) 2>/dev/null && echo WROTE-PROMPT; \
                  (echo x > /codex_home/scratch) 2>/dev/null && echo WROTE-STATE";
    let out = p.run_sh(&["--trust"], script);
    assert_eq!(
        text(&out.stdout),
        "model = \"test-model\"\nreview it/codex_home\nWROTE-STATE\n",
        "{}",
        text(&out.stderr)
    );
    assert!(p.wd.join(".codex/.environment/config.toml").is_file());
}

#[test]
fn bad_work_dirs_are_refused_before_any_container_exists() {
    let p = Project::new();
    let out = p.cmd(&["run", "--work_dir", "/", "--", "true"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("refusing to use /"), "{}", text(&out.stderr));
    let root = p.root.path().join("allowed");
    std::fs::create_dir_all(&root).unwrap();
    let out = p
        .cmd(&["run", "--work_dir", p.wd.to_str().unwrap(), "--", "true"])
        .env("WORKSPACE_ROOT_DIR", &root)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("outside WORKSPACE_ROOT_DIR"), "{}", text(&out.stderr));
    let out = p.cmd(&["run", "--work_dir", "/nonexistent/x", "--", "true"]).output().unwrap();
    assert!(text(&out.stderr).contains("/nonexistent/x"), "{}", text(&out.stderr));
    assert!(!p.wd.join(".codex").exists(), "nothing written for a refused session");
    if docker_ready("bad_work_dirs") {
        assert!(containers_for(&p.wd).is_empty());
        assert!(containers_for(std::path::Path::new("/")).is_empty());
    }
}

#[test]
fn init_hook_runs_first_and_a_failing_hook_aborts() {
    need_docker!();
    let p = Project::new();
    let hook = p.root.path().join("hook.sh");
    std::fs::write(&hook, "#!/bin/sh\necho hook-ran-as-$(id -u) > \"$SANDBOX_ENV_DIR/marker\"\n").unwrap();
    let h = hook.to_str().unwrap();
    let out = p.run_sh(&["--init_script", h], "cat /codex_home/marker");
    assert_eq!(text(&out.stdout), format!("hook-ran-as-{}\n", agent_uid_inside()), "{}", text(&out.stderr));
    // Without the flag the approved init.sh is used again.
    let out = p.run_sh(&[], "cat /codex_home/marker");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let q = Project::new();
    let bad = q.root.path().join("bad.sh");
    std::fs::write(&bad, "#!/bin/sh\necho hook-output\nexit 3\n").unwrap();
    let out = q.run_sh(&["--init_script", bad.to_str().unwrap()], "echo AGENT-STARTED");
    assert_eq!(out.status.code(), Some(3));
    assert!(!text(&out.stdout).contains("AGENT-STARTED"));
    assert!(text(&out.stdout).contains("hook-output"), "the hook's output is shown");
    assert!(text(&out.stderr).contains("init hook failed with exit code 3"), "{}", text(&out.stderr));
    assert!(containers_for(&q.wd).is_empty(), "no container left after a failing hook");
}

#[test]
fn no_container_remains_after_failure_or_sigint() {
    need_docker!();
    let p = Project::new();
    let out = p.run_sh(&[], "exit 1");
    assert_eq!(out.status.code(), Some(1));
    assert!(containers_for(&p.wd).is_empty());

    let wd = p.wd.to_str().unwrap();
    let child = p.cmd(&["run", "--work_dir", wd, "--", "sleep", "60"]).spawn().unwrap();
    assert!(wait_running(&p.wd, 30), "session did not start");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "SIGINT reaches the command: 128+2");
    assert!(containers_for(&p.wd).is_empty(), "removed after SIGINT");
}

#[test]
fn what_codex_box_makes_in_the_project_is_the_owners_and_a_failed_start_leaves_nothing() {
    need_docker!();
    let p = Project::new();
    let owner = std::fs::metadata(&p.wd).unwrap().uid();
    // The engine refuses the container (no such network): nothing of this run stays in the project.
    let out = p.run_sh(&["--network", "codex-box-no-such-network"], "true");
    assert_ne!(out.status.code(), Some(0));
    assert!(!p.wd.join(".codex").exists(), "a failed start leaves no .codex: {}", text(&out.stderr));
    assert!(containers_for(&p.wd).is_empty());
    let beacon = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let d = codex_box::docker::engine::connect().await.unwrap();
        d.inspect_container("codex-box-beacon-codex-box-no-such-network", None).await.is_ok()
    });
    assert!(!beacon, "no beacon stays for a network that does not exist");
    // Control: a session that starts keeps its codex home, and (codex-box as root on someone
    // else's project) nothing in it is root's.
    let out = p.run_sh(&["--init_script", "/bin/true"], "true");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let env = p.wd.join(".codex/.environment");
    for path in [p.wd.join(".codex"), env.clone(), env.join("init.sh"), env.join("state"), env.join("sessions")] {
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), owner, "{} is the project owner's", path.display());
    }
}

/// `codex-box gc` removes the name an image build runs under when its codex-box is gone (a build
/// interrupted by SIGKILL, or finished by the engine after its client left), and keeps the name of a
/// builder still running (the control: the same name with a live pid).
#[test]
fn gc_removes_the_build_names_of_builders_that_are_gone_and_keeps_a_running_ones() {
    need_docker!();
    let p = Project::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let docker = rt.block_on(codex_box::docker::engine::connect()).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let live = codex_box::docker::image::building_tag("codex-box-test-gcbuild:1");
    let dead = live.replace(&format!("-building-{}-", std::process::id()), &format!("-building-{gone_pid}-"));
    assert_ne!(live, dead);
    for name in [&live, &dead] {
        let (repo, tag) = name.split_once(':').unwrap();
        let opts = bollard::query_parameters::TagImageOptions { repo: Some(repo.into()), tag: Some(tag.into()) };
        rt.block_on(docker.tag_image(&image(), Some(opts))).unwrap();
    }
    let out = p.cmd(&["gc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let has = |n: &str| rt.block_on(codex_box::docker::image::exists(&docker, n)).unwrap();
    assert!(!has(&dead), "the name of a builder that is gone was removed");
    assert!(has(&live), "the name of a running builder stays");
    rt.block_on(codex_box::docker::image::untag(&docker, &live));
    assert!(has(&image()), "the image itself stays");
}

#[test]
fn gc_removes_what_a_killed_codex_box_left() {
    need_docker!();
    let p = Project::new();
    let wd = p.wd.to_str().unwrap();
    // A session that another test starts meanwhile collects orphans too and may take this one
    // first (more likely on a slower engine): then the scenario is played again.
    for attempt in 1..=6 {
        let mut child = p.cmd(&["run", "--work_dir", wd, "--", "sleep", "60"]).spawn().unwrap();
        assert!(wait_running(&p.wd, 30), "session did not start");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(containers_for(&p.wd).len(), 1, "SIGKILL leaves the container");
        // Two collectors at once (every session start collects too): neither fails, the first to
        // remove it says so, and the other waits until it is gone.
        let gc = || {
            let mut c = p.cmd(&["gc"]);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        };
        let (a, b) = (gc(), gc());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        for out in [&a, &b] {
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        assert!(containers_for(&p.wd).is_empty());
        let said = format!("{}{}", text(&a.stdout), text(&b.stdout));
        if said.contains("removed codex_") {
            return;
        }
        assert!(attempt < 6, "no gc reported the orphan in six attempts: {said}");
    }
}

/// The engine going away mid-session (issue #21: stopped, restarted, the connection to it closed):
/// codex-box talks to the engine through a stand-in socket the test takes away while the
/// command runs. The session ends at once with exit 125 and a message that says what happened and
/// how the container is collected; the container is still there on the real engine (the control:
/// the fault really left it), and the next session start collects it.
#[test]
fn an_engine_lost_mid_session_ends_it_with_a_message_and_the_next_start_collects_its_container() {
    use std::io::BufRead;
    need_docker!();
    let p = Project::new();
    let wd = p.wd.to_str().unwrap();
    // Every session start collects orphans: another test's may take this one before it is counted;
    // then the scenario is played again.
    for attempt in 1..=4 {
        let proxy = support::engine_proxy::EngineProxy::start();
        let mut child = p
            .cmd(&["run", "--work_dir", wd, "--", "sh", "-c", "echo up; exec sleep 120"])
            .env("CODEX_BOX_ENGINE", proxy.url())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        if first != "up\n" {
            let out = child.wait_with_output().unwrap();
            panic!("the session did not run through the stand-in: {first:?} {}", text(&out.stderr));
        }
        let cut = std::time::Instant::now();
        proxy.cut();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(cut.elapsed().as_secs() < 60, "codex-box did not notice the engine was gone");
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(125), "{err}");
        assert!(err.contains("lost the container engine during the session"), "{err}");
        assert!(err.contains("codex-box gc"), "it says how the container is collected: {err}");
        let left = containers_for(&p.wd);
        if left.is_empty() {
            assert!(attempt < 4, "another start collected the container before it was counted, four times");
            continue;
        }
        assert_eq!(left.len(), 1, "the container stays on the engine: {left:?}");
        let out = p.run_sh(&[], "echo next");
        assert_eq!(text(&out.stdout), "next\n", "{}", text(&out.stderr));
        assert!(containers_for(&p.wd).is_empty(), "the next start collected the lost session's container");
        return;
    }
}

/// SIGKILL at each stage of start-up (issue #21): whatever the moment, `gc` and the next start leave
/// nothing — no container, no session directory, no session home.
#[test]
fn a_codex_box_killed_at_any_moment_of_its_start_leaves_nothing_gc_and_the_next_start_do_not_collect() {
    need_docker!();
    let p = Project::new();
    let wd = p.wd.to_str().unwrap();
    // Its own temporary directory, so the session directories are this test's to count.
    let tmp = p.root.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let flags = ["--egress", "open", "--network", "none", "--trust"];
    let session_dirs = || {
        std::fs::read_dir(&tmp)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("codex-box-session-"))
            .count()
    };
    let homes = p.wd.join(".codex/.environment/homes");
    let count = |d: &std::path::Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    let (mut with_container, mut with_home) = (0, 0);
    for delay_ms in [0u64, 30, 80, 150, 250, 400, 600, 900, 1400] {
        let mut args = vec!["run", "--work_dir", wd];
        args.extend(flags);
        args.extend(["--", "sleep", "30"]);
        let mut child = p
            .cmd(&args)
            .env("TMPDIR", &tmp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        // A create the engine was still doing when its client died ends meanwhile.
        std::thread::sleep(std::time::Duration::from_millis(300));
        with_container += usize::from(!containers_for(&p.wd).is_empty());
        with_home += usize::from(count(&homes) > 0);
        let out = p.cmd(&["gc"]).env("TMPDIR", &tmp).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(containers_for(&p.wd).is_empty(), "killed after {delay_ms} ms: gc left a container");
        assert_eq!(session_dirs(), 0, "killed after {delay_ms} ms: gc left a session directory");
    }
    eprintln!("kills that left a container: {with_container}, a session home: {with_home}");
    assert!(with_container > 0 && with_home > 0, "control: the kills hit the start ({with_container}, {with_home})");
    // The next start collects the homes the killed ones left, and ends leaving none.
    std::fs::create_dir_all(&homes).unwrap();
    let out = p.run_sh(&flags, "ls /codex_home >/dev/null && echo ok");
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
    assert_eq!(count(&homes), 0, "every home collected: {:?}", std::fs::read_dir(&homes).unwrap().collect::<Vec<_>>());
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn interactive_session_sees_a_tty_of_the_right_size() {
    need_docker!();
    let p = Project::new();
    let wd = p.wd.to_str().unwrap();
    let cmd = p.cmd(&["run", "--tty", "--work_dir", wd, "--", "sh", "-c", "stty size; test -t 0 && echo IS-A-TTY"]);
    let (status, seen) = run_in_pty(cmd, 33, 101, "IS-A-TTY");
    assert!(status.success(), "{seen}");
    assert!(seen.contains("33 101"), "terminal size propagated: {seen:?}");
    assert!(seen.contains("IS-A-TTY"), "{seen:?}");
}

#[test]
fn codex_is_installed_in_the_image() {
    need_docker!();
    let p = Project::new();
    let out = p.run_sh(&[], "codex --version");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("codex-cli "), "{}", text(&out.stdout));
}

#[test]
fn shipped_init_hooks_work() {
    need_docker!();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Project::new();
    let hook = repo.join("init-hooks/sandbox-setup.sh");
    let out = p.run_sh(
        &["--init_script", hook.to_str().unwrap()],
        "git config user.name; echo $NPM_CONFIG_PREFIX; git -C . status >/dev/null 2>&1; echo ok",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("codex (sandbox)") && s.contains("/home/codex/.npm-global"), "{s}");

    // Java 25: refused with advice when no JDK 25 is mounted; configured when one is.
    let q = Project::new();
    let java = repo.join("init-hooks/sandbox-setup-java-25.sh");
    let out = q.run_sh(&["--init_script", java.to_str().unwrap()], "echo AGENT");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no JDK 25 found"), "{}", text(&out.stderr));
    let host = q.root.path().join("u");
    let jdk = host.join(".sdkman/candidates/java/25-tem/bin");
    std::fs::create_dir_all(&jdk).unwrap();
    std::fs::write(jdk.join("java"), "#!/bin/sh\necho 'openjdk version \"25\"'\n").unwrap();
    std::fs::set_permissions(jdk.join("java"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(host.join(".m2/repository")).unwrap();
    let sdk = host.join(".sdkman/candidates/java/25-tem");
    let m2 = host.join(".m2");
    let out = q.run_sh(
        &[
            "--init_script",
            java.to_str().unwrap(),
            "--trust",
            "--read-only",
            sdk.to_str().unwrap(),
            "--read-only",
            m2.to_str().unwrap(),
        ],
        "java -version; echo $MAVEN_ARGS; cat $HOME/.m2/settings.xml",
    );
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s} {}", text(&out.stderr));
    assert!(s.contains("openjdk version \"25\""), "{s}");
    assert!(s.contains(&format!("-Dmaven.repo.local.tail=/app{}/repository", m2.display())), "{s}");
    assert!(s.contains("<localRepository>/home/codex/.m2/repository</localRepository>"), "{s}");
}

#[test]
fn an_unreachable_engine_and_a_forbidden_socket_are_explained() {
    let p = Project::new();
    let out = p.cmd(&["run", "--", "true"]).env("DOCKER_HOST", "unix:///nonexistent/docker.sock").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(
        err.contains("no Docker engine answers at unix:///nonexistent/docker.sock") && err.contains("DOCKER_HOST"),
        "{err}"
    );
    assert!(!p.wd.join(".codex").exists(), "nothing written when the engine is missing");
    if !docker_ready("socket permission") {
        return;
    }
    // A user outside the docker group (uid AGENT_UID, no groups) on the real socket.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", &AGENT_UID.to_string(), "--regid", &AGENT_UID.to_string(), "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_codex-box"))
        .args(["run", "--work_dir", p.wd.to_str().unwrap(), "--", "true"])
        .env("HOME", &p.home)
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("permission denied on the Docker socket") && err.contains("docker group"), "{err}");
}

#[test]
fn bad_image_build_inputs_are_refused_before_the_engine_builds() {
    let p = Project::new();
    let out = p.cmd(&["image", "build", "--node", "19"]).output().unwrap();
    if text(&out.stderr).contains("no Docker engine") {
        // Fails under CI=true (an engine is required there), an explicit skip elsewhere.
        assert!(!docker_ready("image build inputs"), "the engine answers docker_ready but not codex-box");
        return;
    }
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("--node 19"), "{}", text(&out.stderr));
    let der = p.root.path().join("corp.der");
    std::fs::write(&der, [0x30u8, 0x82, 0x01, 0x0a]).unwrap();
    let out = p.cmd(&["image", "build", "--ca-cert", der.to_str().unwrap()]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("corp.der") && text(&out.stderr).contains("PEM"), "{}", text(&out.stderr));
}

#[test]
fn a_writable_mount_outside_the_workdir_needs_a_terminal_confirmation() {
    let p = Project::new();
    let outside = p.root.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    for flag in ["--sessions-path", "--codex-home"] {
        let out = p.cmd(&["run", flag, outside.to_str().unwrap(), "--", "true"]).output().unwrap();
        assert_ne!(out.status.code(), Some(0));
        let err = text(&out.stderr);
        assert!(err.contains(flag) && err.contains("outside the work dir") && err.contains("terminal"), "{err}");
    }
    assert!(!p.wd.join(".codex").exists());
    // Control: inside the workdir no confirmation is needed.
    if docker_ready("sessions path inside") {
        let inside = p.wd.join("my-sessions");
        let out = p.run_sh(&["--sessions-path", inside.to_str().unwrap()], "echo s > /codex_home/sessions/x");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(inside.join("x").is_file());
    }
}

#[test]
fn two_sessions_on_one_workdir_get_distinct_containers() {
    need_docker!();
    let p = Project::new();
    let wd = p.wd.to_str().unwrap();
    let first = p.cmd(&["run", "--work_dir", wd, "--", "sleep", "8"]).spawn().unwrap();
    assert!(wait_running(&p.wd, 30));
    let out = p.run_sh(&[], "hostname >/dev/null; echo second-ran");
    assert_eq!(text(&out.stdout), "second-ran\n", "{}", text(&out.stderr));
    let names = containers_for(&p.wd);
    assert_eq!(names.len(), 1, "only the first remains while it runs: {names:?}");
    let mut first = first;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(143), "SIGTERM reaches the command: 128+15");
    assert!(containers_for(&p.wd).is_empty());
}

/// Sessions started at the same moment all run, and the engine still answers afterwards: the first
/// sessions on a network race to make its shared beacon (Podman answers the loser 500 "already in
/// use", not Docker's 409: this failed on Podman before that was read as "made by another"), and on
/// rootless Podman their keep-id creates wait for each other (next test). With and without the
/// egress sidecar.
#[test]
fn sessions_started_at_once_all_run_and_the_engine_survives() {
    need_docker!();
    let projects: Vec<Project> = (0..6).map(|_| Project::new()).collect();
    let children: Vec<_> = projects
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let wd = p.wd.to_str().unwrap().to_string();
            let mut args = vec!["run", "--work_dir", &wd];
            if i % 2 == 1 {
                args.extend_from_slice(&["--firewall-applier", "sidecar"]);
            }
            args.extend_from_slice(&["--", "sh", "-c", "echo started"]);
            p.cmd(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "session {i}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "started\n", "session {i}: {}", text(&out.stderr));
    }
    let out = projects[0].run_sh(&[], "echo still");
    assert_eq!(text(&out.stdout), "still\n", "the engine answers after them: {}", text(&out.stderr));
    for p in &projects {
        assert!(containers_for(&p.wd).is_empty());
    }
}

/// Rootless Podman 4.x crashes on `keep-id` creates at the same moment (shown here with 16
/// concurrent API creates: SIGSEGV in libsubid's `subid_get_uid_ranges`, containers/podman#23264),
/// so there codex-box makes one container at a time across its processes: while another holder
/// has the create lock, a session waits before creating anything and runs once it is released.
/// Control: on every other engine no lock is taken, and the session runs while it is held.
#[test]
fn on_rootless_podman_creates_wait_for_each_other_elsewhere_they_do_not() {
    use std::os::unix::io::AsRawFd;
    need_docker!();
    let p = Project::new();
    let run = tempfile::tempdir().unwrap();
    std::fs::set_permissions(run.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let lock = std::fs::File::create(run.path().join(codex_box::docker::create_lock::FILE_NAME)).unwrap();
    // SAFETY: flock(2) on a descriptor `lock` owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let wd = p.wd.to_str().unwrap();
    let child = p
        .cmd(&["run", "--work_dir", wd, "--", "sh", "-c", "echo ran"])
        .env("XDG_RUNTIME_DIR", run.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    if rootless_podman() {
        let waiting = (0..600).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            waits_for_a_flock(pid)
        });
        assert!(waiting, "the session never waited for the create lock");
        assert!(containers_for(&p.wd).is_empty(), "nothing is created while another create holds the lock");
        drop(lock);
        let out = child.wait_with_output().unwrap();
        assert_eq!(text(&out.stdout), "ran\n", "it runs once the lock is released: {}", text(&out.stderr));
    } else {
        let out = child.wait_with_output().unwrap();
        assert_eq!(text(&out.stdout), "ran\n", "{}", text(&out.stderr));
        assert!(!waits_for_a_flock(pid));
        drop(lock);
    }
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn the_main_job_runs_codex_interactively_with_the_remaining_arguments() {
    need_docker!();
    let p = Project::new();
    let wd = p.wd.to_str().unwrap();
    // `codex-box --work_dir DIR -- ARGS`: Codex in a terminal, ARGS passed to it.
    let (status, seen) = run_in_pty(p.cmd(&["--work_dir", wd, "--", "--version"]), 40, 120, "codex-cli ");
    assert!(status.success(), "{seen}");
    assert!(seen.contains("codex-cli "), "{seen:?}");
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn a_session_ca_certificate_is_trusted_by_the_agents_tools() {
    need_docker!();
    let p = Project::new();
    let pem = p.root.path().join("corp-proxy.pem");
    let marker = "MIIBcodexboxsessioncamarker";
    std::fs::write(&pem, format!("-----BEGIN CERTIFICATE-----\n{marker}\n-----END CERTIFICATE-----\n")).unwrap();
    let out = p.run_sh(
        &["--ca-cert", pem.to_str().unwrap()],
        "for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE GIT_SSL_CAINFO; do eval f=\\$$v; grep -q MIIBcodexboxsessioncamarker \"$f\" && echo \"$v ok\"; done; \
         grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\"",
    );
    let s = text(&out.stdout);
    for v in ["SSL_CERT_FILE ok", "NODE_EXTRA_CA_CERTS ok", "REQUESTS_CA_BUNDLE ok", "GIT_SSL_CAINFO ok"] {
        assert!(s.contains(v), "{v}: {s} {}", text(&out.stderr));
    }
    let count: usize = s.lines().last().unwrap().trim().parse().unwrap();
    assert!(count > 1, "the system bundle is kept beside the session's certificate: {s}");
    // Control: without --ca-cert the image's own bundle does not contain it.
    let out = p.run_sh(&[], "grep -q MIIBcodexboxsessioncamarker \"$SSL_CERT_FILE\" && echo FOUND || echo absent");
    assert_eq!(text(&out.stdout), "absent\n", "{}", text(&out.stderr));
}

/// Ctrl-C during `codex-box image build` (issue #21): the build stops with exit 130, says it was
/// interrupted, that nothing was tagged and how to retry, and the tag does not exist. The build runs
/// on a base whose `apt-get` (the first RUN step) sleeps, so it is interrupted mid-step; the build
/// runs under a name of its own (`REPO:codex-box-building-PID-HOST`), never the user's tag, and that
/// name is gone afterwards too. What this cannot show: a build an engine completes after its client
/// left (the reason for the building name) — no base here lets the whole session Dockerfile succeed;
/// the names are covered by unit tests (`image::building_*`) and the gc test above.
#[test]
fn an_interrupted_image_build_tags_nothing_and_says_how_to_retry() {
    if !docker_ready("image build through the engine's API") {
        return;
    }
    let p = Project::new();
    let rootfs = p.root.path().join("rootfs");
    fake_rootfs(&rootfs, "/bin/sleep", "#!/bin/sh\nsleep 20\nexit 1\n");
    let (base, tag) = (format!("codex-box-test-slowbase:{}", std::process::id()), "codex-box-test-interrupted:1");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let docker = rt.block_on(codex_box::docker::engine::connect()).unwrap();
    rt.block_on(codex_box::docker::image::import_rootfs(&docker, &rootfs, &base)).unwrap();

    let mut child = p
        .cmd(&["image", "build", "--base", &base, "--tag", tag])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // The context is sent and the sleeping step reached well within this.
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(child.try_wait().unwrap().is_none(), "the build was still running when interrupted");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains(&format!("building {tag} was interrupted; nothing was tagged")), "{err}");
    assert!(err.contains("run `codex-box image build` again"), "{err}");
    assert!(!rt.block_on(codex_box::docker::image::exists(&docker, tag)).unwrap(), "nothing tagged {tag}");
    let names = image_names(&rt, &docker);
    let building = format!("codex-box-test-interrupted:codex-box-building-{}-", pid.as_raw());
    assert!(!names.iter().any(|n| n.contains(&building)), "no building name left: {names:?}");
    // The build's container may still be stopping (Podman): the base is removed once it is free.
    let force = bollard::query_parameters::RemoveImageOptions { force: true, ..Default::default() };
    for _ in 0..40 {
        if !rt.block_on(codex_box::docker::image::exists(&docker, &base)).unwrap() {
            return;
        }
        let _ = rt.block_on(docker.remove_image(&base, Some(force.clone()), None));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("the test's base image {base} could not be removed");
}

/// `codex-box image build` through this engine's own build API (Docker's `Step N/M :`, Podman's
/// Buildah `STEP N/M:` lines): a base without a shell makes the first RUN fail; the error names that
/// step and tells how to retry, and no image is left under the tag. Control: the base image itself was
/// imported through the same API and exists.
#[test]
fn a_failing_image_build_names_its_step_and_tags_nothing() {
    if !docker_ready("image build through the engine's API") {
        return;
    }
    let p = Project::new();
    let rootfs = p.root.path().join("rootfs");
    // A root filesystem (bin/, etc/) with no shell in it.
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hostname"), "no-shell\n").unwrap();
    let (base, tag) = (format!("codex-box-test-noshell:{}", std::process::id()), "codex-box-test-buildfail:1");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let docker = rt.block_on(codex_box::docker::engine::connect()).unwrap();
    rt.block_on(codex_box::docker::image::import_rootfs(&docker, &rootfs, &base)).unwrap();
    assert!(rt.block_on(codex_box::docker::image::exists(&docker, &base)).unwrap(), "control: the base is there");

    let out = p.cmd(&["image", "build", "--base", &base, "--tag", tag]).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains(&format!("building {tag} failed at")), "{err}");
    let step = err.lines().find(|l| l.contains("failed at")).unwrap();
    assert!(step.contains("RUN") && step.contains("apt-get update"), "the failing step is named: {err}");
    assert!(err.contains("run `codex-box image build` again"), "{err}");
    assert!(!rt.block_on(codex_box::docker::image::exists(&docker, tag)).unwrap(), "nothing tagged {tag}");
    // The build's container may still be stopping (Podman): the base is removed once it is free.
    let force = bollard::query_parameters::RemoveImageOptions { force: true, ..Default::default() };
    for _ in 0..40 {
        if !rt.block_on(codex_box::docker::image::exists(&docker, &base)).unwrap() {
            return;
        }
        let _ = rt.block_on(docker.remove_image(&base, Some(force.clone()), None));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("the test's base image {base} could not be removed");
}
