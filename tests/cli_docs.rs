//! Shell completions and the manual page, generated from the clap definitions: the bash script
//! loads and completes the subcommands; the page renders with `man -l` and documents the exit
//! status and the environment.
#![cfg(unix)]

#[macro_use]
mod support;

use std::process::Command;

use support::{text, Project};

fn codex_box(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_codex-box")).args(args).output().unwrap()
}

#[test]
fn bash_completion_loads_and_offers_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("codex-box.bash");
    let out = codex_box(&["completions", "bash"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(&script, &out.stdout).unwrap();
    let probe = format!(
        "source {}; complete -p codex-box; f=$(complete -p codex-box | sed 's/.* -F \\([^ ]*\\) .*/\\1/'); \
         COMP_WORDS=(codex-box ''); COMP_CWORD=1; COMP_LINE='codex-box '; COMP_POINT=10; \
         $f codex-box '' codex-box; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let s = text(&out.stdout);
    assert!(s.starts_with("complete ") && s.contains(" codex-box\n"), "{s}{}", text(&out.stderr));
    for sub in ["run", "doctor", "egress", "sandbox", "gc", "image", "completions", "man"] {
        assert!(s.lines().any(|l| l == sub), "{sub} offered: {s}");
    }
    assert!(!s.lines().any(|l| l == "companion"), "the hidden companion is not offered");
    for shell in ["zsh", "fish", "powershell"] {
        let out = codex_box(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let out = codex_box(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
    assert!(text(&out.stderr).contains("possible values: bash"), "{}", text(&out.stderr));
}

#[test]
fn the_manual_page_renders_with_the_exit_status_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("codex-box.1");
    let out = codex_box(&["man"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(&page, &out.stdout).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANWIDTH", "200")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "man -l: {}", text(&out.stderr));
    // Without a terminal, man marks bold and underline by overstriking (X BACKSPACE X): undo that.
    let mut plain = String::new();
    for c in text(&out.stdout).chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    let s: String = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "codex-box - Run the Codex CLI agent",
        "--allow-preset",
        "SUBCOMMANDS",
        "Exit status:",
        "125 when codex-box itself fails",
        "OPENAI_API_KEY held by codex-box's API relay",
    ] {
        assert!(s.contains(want), "{want} in the page: {s}");
    }
    // --help shows the same.
    let help = text(&codex_box(&["--help"]).stdout);
    assert!(help.contains("125 when codex-box itself") && help.contains("CODEX_BOX_CA_CERTS"), "{help}");
}

/// `--quiet` keeps only errors (and warnings): each notice beside the control that prints it, the
/// command's own stdout and stderr untouched, an error still on stderr with exit 125.
#[test]
fn quiet_keeps_errors_and_the_commands_own_output_and_drops_summaries_and_notices() {
    let t = tempfile::tempdir().unwrap();
    let (work, state) = (t.path().join("work"), t.path().join("state"));
    std::fs::create_dir_all(&work).unwrap();
    let sandbox = |quiet: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_codex-box"));
        if quiet {
            c.arg("--quiet");
        }
        // Network by name with a resolver nobody answers: the proxy's summary, no packet leaves.
        c.args(["sandbox", "-s", "workspace-write", "--allow-domain", "allowed.test", "--dns-server", "127.0.0.1:9"])
            .args(["--", "sh", "-c", "echo out; echo err >&2; exit 3"])
            .env("XDG_STATE_HOME", &state)
            .current_dir(&work)
            .output()
            .unwrap()
    };
    let loud = sandbox(false);
    assert_eq!((loud.status.code(), text(&loud.stdout).as_str()), (Some(3), "out\n"));
    assert!(text(&loud.stderr).contains("codex-box: proxy: 0 allowed, 0 denied"), "control: {}", text(&loud.stderr));
    let quiet = sandbox(true);
    assert_eq!((quiet.status.code(), text(&quiet.stdout).as_str()), (Some(3), "out\n"), "stdout untouched");
    assert_eq!(text(&quiet.stderr), "err\n", "only the command's own stderr");

    // An error is still said, with its exit status.
    let out = codex_box(&["--quiet", "run", "--work_dir", "/nonexistent-codex-box-quiet", "--", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("/nonexistent-codex-box-quiet"), "{}", text(&out.stderr));

    // A session: the command's own output untouched, the warning about an open egress kept; `gc`'s
    // notice dropped.
    need_docker!();
    let p = Project::new();
    let session = |quiet: bool| {
        let wd = p.wd.to_str().unwrap().to_string();
        // --quiet after the subcommand here (Project::cmd puts its resolver flag first).
        let mut args: Vec<&str> = vec!["run"];
        if quiet {
            args.push("--quiet");
        }
        args.extend(["--work_dir", &wd, "--egress", "open", "--network", "none", "--trust"]);
        args.extend(["--", "sh", "-c", "echo out; echo err >&2"]);
        p.cmd(&args).output().unwrap()
    };
    let loud = session(false);
    let quiet = session(true);
    for out in [&loud, &quiet] {
        assert_eq!((out.status.code(), text(&out.stdout).as_str()), (Some(0), "out\n"), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("err\n"), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("warning: --egress open"), "warnings stay: {}", text(&out.stderr));
    }
    let gc = |quiet: bool| {
        let mut args: Vec<&str> = vec!["gc"];
        if quiet {
            args.push("-q");
        }
        p.cmd(&args).output().unwrap()
    };
    let (loud, quiet) = (gc(false), gc(true));
    assert!(loud.status.success() && quiet.status.success());
    let said = text(&loud.stderr);
    assert!(said.contains("nothing to remove") || said.contains("removed"), "control: {said}");
    assert_eq!(text(&quiet.stderr), "", "--quiet gc says nothing");
}
