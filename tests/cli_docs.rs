//! Shell completions and the manual page, generated from the clap definitions: the bash script
//! loads and completes the subcommands; the page renders with `man -l` and documents the exit
//! status and the environment.
#![cfg(unix)]

mod support;

use std::process::Command;

use support::text;

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
