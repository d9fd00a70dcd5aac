//! Codex itself under the native sandbox (`codex-box sandbox --codex`), driven by a scripted model:
//! the model API is an HTTPS test host (test CA, the name `api.model.test` from the test's own DNS
//! server) in a network namespace this test makes; Codex reaches it only through codex-box's proxy.

use crate::support::dns_server::{TestDns, Zone};
use crate::support::netns::{self, Netns};
use crate::support::pki::Pki;
use crate::support::scripted_model::{self, FINAL};
use crate::support::text;
use crate::*;

use std::process::{Child, Command, Stdio};

/// The scripted model at `198.18.<third>.10:443` in a namespace of its own.
struct ModelHost {
    dns: TestDns,
    log: tempfile::TempDir,
    pki: Pki,
    server: Child,
    _ns: Netns,
}

impl ModelHost {
    fn start(third: u8, command: &str) -> Option<ModelHost> {
        if !require(netns::unsupported().is_none(), &netns::unsupported().unwrap_or_default()) || !python() {
            return None;
        }
        if !require(
            which("codex"),
            "the Codex CLI is not on PATH (scripts/setup.sh installs it: npm install -g @openai/codex)",
        ) {
            return None;
        }
        let pid = std::process::id();
        let outer = format!("cbxnc{third}{}", pid % 100_000);
        let (ns, ip) = Netns::with_test_host(&format!("cbx-nc{third}-{pid}"), &outer, third).unwrap();
        let pki = Pki::new("codex-box test model CA", &["api.model.test"]);
        let log = tempfile::tempdir().unwrap();
        let script = log.path().join("scripted_model.py");
        std::fs::write(&script, scripted_model::SERVER_PY).unwrap();
        let server = Command::new("ip")
            .args(["netns", "exec", &ns.name, PY])
            .arg(&script)
            .env("SCRIPTED_CERT", pki.path("server.pem"))
            .env("SCRIPTED_KEY", pki.path("server.key"))
            .env("SCRIPTED_LOG_DIR", log.path())
            .env("SCRIPTED_COMMAND", command)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Control: without the sandbox, this host reaches the model API directly.
        crate::support::wait_for_port(&format!("{ip}:443"), 30);
        let dns = TestDns::start(Zone::new(60).addr("api.model.test", &ip));
        Some(ModelHost { dns, log, pki, server, _ns: ns })
    }
}

impl Drop for ModelHost {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn which(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn codex_runs_the_models_command_in_the_workspace_and_nothing_else() {
    if !sandbox_works() {
        return;
    }
    let f = fx();
    let script = format!(
        "printf 'changed natively\\n' > hello.txt && git --no-pager diff; \
         if (echo x > {outside}/escape) 2>/dev/null; then echo OUTSIDE-WRITTEN; else echo OUTSIDE-REFUSED; fi; \
         if (echo x > .git/hooks/pre-commit) 2>/dev/null; then echo HOOK-WRITTEN; else echo HOOK-REFUSED; fi; \
         if (echo x >> \"$CODEX_HOME/config.toml\") 2>/dev/null; then echo CONFIG-WRITTEN; else echo CONFIG-REFUSED; fi; \
         if curl -sk --noproxy '*' -o /dev/null --max-time 5 https://IP/v1/models; then echo DIRECT-REACHED; else echo DIRECT-REFUSED; fi; \
         if grep -rsqa 'SECRE[T]-4343' /proc/[0-9]*/environ /proc/[0-9]*/cmdline \"$CODEX_HOME\" . 2>/dev/null; then echo KEY-FOUND; else echo KEY-ABSENT; fi; \
         if grep -rsqa 'codex-box-relay-holds-the-ke[y]' /proc/[0-9]*/environ; then echo PLACEHOLDER-FOUND; fi",
        outside = f.outside.display()
    );
    let Some(host) = ModelHost::start(41, &script.replace("IP", "198.18.41.10")) else { return };

    // A git project, the user's Codex config (the scripted provider) and the test CA outside /tmp.
    std::fs::write(f.work.join("hello.txt"), "hello\n").unwrap();
    for args in [&["init", "-q"][..], &["add", "hello.txt"], &["commit", "-q", "-m", "first"]] {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "safe.directory=*"])
            .args(args)
            .current_dir(&f.work)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let user_codex = f.home.join(".codex");
    std::fs::create_dir_all(&user_codex).unwrap();
    let config = scripted_model::codex_config("https://api.model.test/v1", f.work.to_str().unwrap());
    std::fs::write(user_codex.join("config.toml"), &config).unwrap();
    let ca = f.home.join("ca.pem");
    std::fs::copy(host.pki.path("ca.pem"), &ca).unwrap();
    let state = f.home.join("state");

    let out = Command::new(BIN)
        .args(["sandbox", "--codex", "--allow-domain", "api.model.test", &format!("--dns-server={}", host.dns.addr)])
        .args(["--", "exec", "--skip-git-repo-check", "edit hello.txt"])
        .current_dir(&f.work)
        .env("HOME", &f.home)
        .env("XDG_STATE_HOME", &state)
        .env("SSL_CERT_FILE", &ca)
        .env("OPENAI_API_KEY", "sk-test-SECRET-4343")
        .env("CODEX_BOX_CA_CERTS", &ca)
        .env_remove("CODEX_HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "codex exec under the native sandbox failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(FINAL), "{stdout}\n{stderr}");
    assert_eq!(std::fs::read_to_string(f.work.join("hello.txt")).unwrap(), "changed natively\n");
    let seen = scripted_model::command_output(host.log.path()).unwrap_or_else(|| panic!("no command output: {stderr}"));
    assert!(seen.contains("+changed natively"), "git diff reached the model: {seen}");
    for (refused, written) in [
        ("OUTSIDE-REFUSED", "OUTSIDE-WRITTEN"),
        ("HOOK-REFUSED", "HOOK-WRITTEN"),
        ("CONFIG-REFUSED", "CONFIG-WRITTEN"),
        ("DIRECT-REFUSED", "DIRECT-REACHED"),
    ] {
        assert!(seen.contains(refused) && !seen.contains(written), "{refused}: {seen}");
    }
    // The key stayed with codex-box: the model got it from the relay; the sandbox had a placeholder.
    let auths = scripted_model::authorizations(host.log.path());
    assert!(!auths.is_empty() && auths.iter().all(|a| a == "Bearer sk-test-SECRET-4343"), "{auths:?}");
    assert!(seen.contains("KEY-ABSENT") && !seen.contains("KEY-FOUND"), "{seen}");
    assert!(seen.contains("PLACEHOLDER-FOUND"), "control: the search reads the sandbox's environments: {seen}");
    assert!(!f.outside.join("escape").exists());
    assert!(!f.work.join(".git/hooks/pre-commit").exists());
    // The model API was reached through the proxy, by name.
    let proxy_logs = std::fs::read_dir(state.join("codex-box/proxy")).unwrap();
    let log: String = proxy_logs.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect();
    assert!(log.contains("api.model.test"), "the proxy log names the model API: {log}");
    // Codex kept its state in codex-box's home for the project; the user's Codex home is untouched.
    let homes: Vec<_> = std::fs::read_dir(state.join("codex-box/codex")).unwrap().flatten().collect();
    assert_eq!(homes.len(), 1);
    let sessions = homes[0].path().join("sessions");
    assert!(walk_count(&sessions) > 0, "Codex recorded its session in {}", sessions.display());
    let mut names: Vec<String> = std::fs::read_dir(&user_codex)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["config.toml"], "nothing written in the user's Codex home");
    assert_eq!(std::fs::read_to_string(user_codex.join("config.toml")).unwrap(), config);
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten().map(|e| if e.file_type().is_ok_and(|t| t.is_dir()) { walk_count(&e.path()) } else { 1 }).sum()
        })
        .unwrap_or(0)
}

#[test]
fn an_inner_sandbox_request_or_a_missing_codex_is_explained_and_makes_nothing() {
    let f = fx();
    let state = f.home.join("state");
    let run = |args: &[&str], path: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(["sandbox", "--codex", "--"]).args(args).current_dir(&f.work).env("XDG_STATE_HOME", &state);
        if let Some(p) = path {
            c.env("PATH", p);
        }
        c.output().unwrap()
    };
    let out = run(&["--sandbox", "workspace-write", "exec", "x"], None);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Codex's own sandbox") && err.contains("Landlock"), "{err}");
    let out = run(&["exec", "x"], Some("/nonexistent"));
    assert!(text(&out.stderr).contains("npm install -g @openai/codex"), "{}", text(&out.stderr));
    assert!(!state.exists(), "nothing was made for refused input");
}
