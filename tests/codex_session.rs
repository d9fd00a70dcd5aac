//! The main job end to end: Codex in a codex-box session, driven by a scripted model, runs a shell
//! command that edits the user's checkout — through `codex exec` and through the interactive TUI.
//!
//! Only hosts this test creates: its own Docker network with the scripted model API (HTTPS with a test
//! CA, the name `api.model.test` from the test's own DNS server) and a plain HTTP host that is not
//! allowlisted.
#![cfg(unix)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use support::dns_server::{TestDns, Zone};
use support::docker_net::{TestHost, TestNet};
use support::pki::Pki;
use support::pty::Pty;
use support::scripted_model::{self, FINAL};
use support::*;

const MODEL_NAME: &str = "api.model.test";

/// A Docker network with the scripted model at `.10` (HTTPS) and a plain HTTP host at `.11`.
struct ModelNet {
    // First: the hosts go before the directory they mount.
    net: TestNet,
    srv: tempfile::TempDir,
    pki: Pki,
    dns: TestDns,
}

impl ModelNet {
    fn new(tag: &str, v4: &str) -> ModelNet {
        let pki = Pki::new("codex-box test model CA", &[MODEL_NAME]);
        let srv = tempfile::tempdir().unwrap();
        std::fs::write(srv.path().join("scripted_model.py"), scripted_model::SERVER_PY).unwrap();
        for f in ["server.pem", "server.key"] {
            std::fs::copy(pki.path(f), srv.path().join(f)).unwrap();
        }
        std::fs::create_dir(srv.path().join("log")).unwrap();
        let src = srv.path().to_str().unwrap();
        let env = [
            "SCRIPTED_CERT=/srv/server.pem",
            "SCRIPTED_KEY=/srv/server.key",
            "SCRIPTED_LOG_DIR=/srv/log",
            "SCRIPTED_COMMAND_FILE=/srv/command.txt",
        ];
        let mut net = TestNet::new("cbx-model", tag, v4, None);
        net.add(TestHost::new(10, &["python3", "/srv/scripted_model.py"]).env(&env).bind(src, "/srv"));
        net.add(TestHost::new(11, &["python3", "-m", "http.server", "80"]).env(&env).bind(src, "/srv"));
        let dns = TestDns::start(Zone::new(60).addr(MODEL_NAME, &format!("{v4}.10")));
        net.wait_for(10, &[443], 30);
        net.wait_for(11, &[80], 30);
        ModelNet { net, srv, pki, dns }
    }

    /// The shell command the scripted model asks Codex to run next.
    fn script(&self, command: &str) {
        std::fs::write(self.srv.path().join("command.txt"), command).unwrap();
        for e in std::fs::read_dir(self.srv.path().join("log")).unwrap().flatten() {
            std::fs::remove_file(e.path()).unwrap();
        }
    }

    fn log(&self) -> std::path::PathBuf {
        self.srv.path().join("log")
    }

    /// `codex-box` flags that put a session on this network with only the model API allowlisted.
    fn session_args(&self, p: &Project, config_dir: &Path) -> Vec<String> {
        [
            "--work_dir",
            p.wd.to_str().unwrap(),
            "--config",
            config_dir.to_str().unwrap(),
            "--trust",
            "--network",
            &self.net.name,
            "--dns-server",
            &self.dns.addr.to_string(),
            "--allow-domain",
            MODEL_NAME,
            "--ca-cert",
            self.pki.path("ca.pem").to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// A git project owned by the agent's uid with one committed file, and a Codex config dir.
fn git_project() -> (Project, tempfile::TempDir) {
    let p = Project::new();
    std::fs::write(p.wd.join("hello.txt"), "hello\n").unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "safe.directory=*",
            ])
            .args(args)
            .current_dir(&p.wd)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["add", "hello.txt"]);
    git(&["commit", "-q", "-m", "first"]);
    let owner = owner_uid();
    Command::new("chown").args(["-R", &format!("{owner}:{owner}")]).arg(&p.wd).status().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let base_url = format!("https://{MODEL_NAME}/v1");
    std::fs::write(cfg.path().join("config.toml"), scripted_model::codex_config(&base_url, &p.app())).unwrap();
    (p, cfg)
}

/// The API key the user has on the host; it must never be visible in the session.
const KEY: &str = "sk-test-SECRET-4242";

/// What the model asks Codex to run: edit a file and show the diff, then try the escapes: write a
/// hook, reach a host outside the allowlist, find the API key in every environment, command line
/// and readable file of the session (the pattern is written so that the search's own command line
/// does not match it); the control finds the placeholder the session has instead, the same way.
fn edit_and_escape(other_host: &str) -> String {
    format!(
        "printf 'changed by the model\\n' > hello.txt && git --no-pager diff; \
         if (echo evil > .git/hooks/pre-commit) 2>/dev/null; then echo HOOK-WRITTEN; else echo HOOK-REFUSED; fi; \
         if curl -sS -o /dev/null --max-time 5 http://{other_host}/ 2>/dev/null; then echo OTHER-REACHED; else echo OTHER-REFUSED; fi; \
         w='/proc/[0-9]*/environ /proc/[0-9]*/cmdline /codex_home /home /run /etc /tmp /app'; \
         if grep -rsqa 'SECRE[T]-4242' $w 2>/dev/null; then echo KEY-FOUND; else echo KEY-ABSENT; fi; \
         if grep -rsqa 'codex-box-relay-holds-the-ke[y]' /proc/[0-9]*/environ; then echo PLACEHOLDER-FOUND; fi; \
         echo RELAY-FILES-$(curl -s --path-as-is -o /dev/null -w '%{{http_code}}' --max-time 5 \"$OPENAI_BASE_URL/files\"); \
         echo RELAY-DOTS-$(curl -s --path-as-is -o /dev/null -w '%{{http_code}}' --max-time 5 \"$OPENAI_BASE_URL/responses/../files\"); \
         echo RELAY-MODELS-$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 \"$OPENAI_BASE_URL/models\")"
    )
}

#[test]
fn codex_exec_in_a_session_runs_the_models_command_in_the_users_checkout() {
    if !docker_ready("codex exec end to end") {
        return;
    }
    let net = ModelNet::new("exec", "198.18.90");
    let other = format!("{}.11", net.net.v4);
    let (p, cfg) = git_project();
    net.script(&edit_and_escape(&other));

    let mut args = net.session_args(&p, cfg.path());
    args.extend(["--".into(), "exec".into(), "--skip-git-repo-check".into(), "edit hello.txt".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.cmd(&args).env("OPENAI_API_KEY", KEY).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "codex exec failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(FINAL), "the final answer reached the user: {stdout}\n{stderr}");

    // The command ran in the user's checkout, as the user.
    let hello = p.wd.join("hello.txt");
    assert_eq!(std::fs::read_to_string(&hello).unwrap(), "changed by the model\n");
    assert_eq!(std::fs::metadata(&hello).unwrap().uid(), owner_uid(), "the edited file stays the user's");
    // Its output reached the model in the next request.
    let seen = scripted_model::command_output(&net.log()).unwrap_or_else(|| panic!("no command output: {stderr}"));
    assert!(seen.contains("+changed by the model") && seen.contains("-hello"), "git diff reached the model: {seen}");
    // The escapes: .git is read-only, and a host outside the allowlist is unreachable.
    assert!(seen.contains("HOOK-REFUSED") && !seen.contains("HOOK-WRITTEN"), "{seen}");
    assert!(seen.contains("OTHER-REFUSED") && !seen.contains("OTHER-REACHED"), "{seen}");
    assert!(!p.wd.join(".git/hooks/pre-commit").exists());
    // The model received Codex's requests with the real key — added by codex-box's relay, over the
    // test CA's TLS — while the session held only a placeholder: the key was nowhere in it.
    assert!(scripted_model::requests(&net.log()).len() >= 2);
    let auths = scripted_model::authorizations(&net.log());
    assert!(!auths.is_empty() && auths.iter().all(|a| a == &format!("Bearer {KEY}")), "{auths:?}");
    assert!(seen.contains("KEY-ABSENT") && !seen.contains("KEY-FOUND"), "{seen}");
    assert!(seen.contains("PLACEHOLDER-FOUND"), "control: the search reads the session's environments: {seen}");
    // The agent cannot spend the key elsewhere through the relay: another API path, even dressed up
    // as a Responses path, is refused there; the control, the model list, goes through.
    assert!(seen.contains("RELAY-FILES-403") && seen.contains("RELAY-DOTS-403"), "{seen}");
    assert!(seen.contains("RELAY-MODELS-200"), "control: an allowed path reaches the model: {seen}");
    // The relay's log says it added the key, never what it is.
    let log_dir = p.state.join("codex-box/proxy");
    let logs: Vec<String> = std::fs::read_dir(&log_dir)
        .map(|d| d.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
        .unwrap_or_default();
    assert!(logs.iter().any(|l| l.contains("API key added")), "{logs:?}");
    assert!(logs.iter().all(|l| !l.contains("SECRET")), "{logs:?}");

    // Control: the same exchange with .git writable and the other host allowlisted reaches both.
    std::fs::write(&hello, "hello\n").unwrap();
    net.script(&edit_and_escape(&other));
    let mut args = net.session_args(&p, cfg.path());
    args.extend(["--allow-git-write".into(), "--allow-domain".into(), other.clone()]);
    args.extend(["--".into(), "exec".into(), "--skip-git-repo-check".into(), "edit hello.txt".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.cmd(&args).env("OPENAI_API_KEY", KEY).output().unwrap();
    assert!(out.status.success(), "control: {}\n{}", text(&out.stdout), text(&out.stderr));
    let seen = scripted_model::command_output(&net.log()).expect("control: command output");
    assert!(seen.contains("HOOK-WRITTEN") && seen.contains("OTHER-REACHED"), "control: {seen}");
}

#[test]
fn an_explicit_inner_sandbox_is_refused_with_the_reason_and_nothing_is_left() {
    if !docker_ready("inner sandbox refusal") {
        return;
    }
    let p = Project::new();
    let wd = p.wd.to_str().unwrap().to_string();
    for ask in [&["-s", "workspace-write"][..], &["exec", "--sandbox", "read-only", "hi"], &["sandbox", "--", "ls"]] {
        let mut args = vec!["--work_dir", wd.as_str(), "--"];
        args.extend_from_slice(ask);
        let out = p.cmd(&args).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{ask:?}: {err}");
        assert!(err.contains("Codex's own sandbox") && err.contains("user namespaces"), "{err}");
        assert!(err.contains("which is the boundary") && err.contains("Drop"), "{err}");
    }
    let out = p.run_sh(&[], "true");
    assert!(out.status.success(), "control: a session without the request starts: {}", text(&out.stderr));
    // Refused before anything was created; only the control made the codex home.
    let out = p.cmd(&["run", "--work_dir", &wd, "--", "codex", "-s", "read-only", "exec", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(containers_for(&p.wd).is_empty());
}

#[test]
fn the_interactive_tui_runs_the_models_command_too() {
    if !docker_ready("Codex TUI end to end") {
        return;
    }
    let net = ModelNet::new("tui", "198.18.97");
    let (p, cfg) = git_project();
    net.script("printf 'changed in the TUI\\n' > hello.txt && git --no-pager diff --stat");
    let mut args = net.session_args(&p, cfg.path());
    args.extend(["--".into(), "edit hello.txt".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = p.cmd(&args);
    cmd.env("OPENAI_API_KEY", KEY).env("TERM", "xterm-256color");
    let mut tui = Pty::spawn(cmd, 40, 120);
    let log = net.log();
    let answered = tui.wait_for(120, || scripted_model::command_output(&log).is_some());
    let requests: Vec<String> = scripted_model::requests(&log).iter().map(|r| r.to_string()).collect();
    assert!(
        answered,
        "the TUI never sent the command's output to the model; requests: {requests:#?}\nscreen:\n{}",
        tui.screen_text()
    );
    let seen = scripted_model::command_output(&log).unwrap_or_default();
    assert!(seen.contains("hello.txt | 2"), "{seen}");
    assert_eq!(std::fs::read_to_string(p.wd.join("hello.txt")).unwrap(), "changed in the TUI\n");
    assert!(tui.wait_for(30, || tui.screen_text().contains(FINAL)), "final answer shown:\n{}", tui.screen_text());
    // Leave the TUI as a user does (Ctrl-C twice); the session ends and its container goes. A Ctrl-C
    // that lands while the turn is still closing interrupts the turn instead of arming "again to
    // quit", so wait for the turn's end and press again, as a user would, until the TUI leaves.
    tui.wait_for(30, || tui.screen_text().contains("Worked for"));
    let mut exited = None;
    for _ in 0..5 {
        tui.send(b"\x03");
        std::thread::sleep(std::time::Duration::from_millis(300));
        tui.send(b"\x03");
        exited = tui.wait_exit_within(6);
        if exited.is_some() {
            break;
        }
    }
    if exited.is_none() {
        tui.wait_exit(0);
    }
    assert!(exited.is_some(), "the TUI did not exit on Ctrl-C:\n{}", tui.screen_text());
    assert!(containers_for(&p.wd).is_empty(), "the session container was removed");
}
