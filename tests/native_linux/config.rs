//! Degradation and configuration errors.

use crate::*;

#[test]
fn missing_kernel_features_stop_the_run_unless_degraded_is_allowed() {
    let fx = fx();
    for (feature, word) in [("landlock", "Landlock"), ("seccomp", "seccomp"), ("userns", "user namespaces")] {
        let r = output(
            cmd(&fx, &[], &["sh", "-c", "echo ran"])
                .env("CODEX_BOX_SANDBOX_PRETEND_MISSING", feature)
                .output()
                .unwrap(),
        );
        assert_ne!(r.code, 0);
        assert!(!r.out.contains("ran"), "never a silent run without the boundary");
        assert!(r.err.contains(word) && r.err.contains("--allow-degraded"), "{}", r.err);
        let r = output(
            cmd(&fx, &["--allow-degraded"], &["sh", "-c", "echo ran"])
                .env("CODEX_BOX_SANDBOX_PRETEND_MISSING", feature)
                .output()
                .unwrap(),
        );
        assert!(r.out.contains("ran"), "{}", r.err);
        assert!(r.err.contains("NOT enforced") && r.err.contains(word), "{}", r.err);
    }
}

#[test]
fn a_user_namespace_refused_at_start_is_reported_or_degraded() {
    let fx = fx();
    let pretend = ("CODEX_BOX_SANDBOX_PRETEND_MISSING", "userns-at-clone");
    let r = output(cmd(&fx, &["--full-auto"], &["sh", "-c", "echo ran"]).env(pretend.0, pretend.1).output().unwrap());
    assert_ne!(r.code, 0);
    assert!(!r.out.contains("ran") && r.err.contains("clone with namespaces failed"), "{}", r.err);
    assert!(!fx.work.join(".git").exists(), "placeholders are not left behind");
    let r = output(
        cmd(&fx, &["--full-auto", "--allow-degraded"], &["sh", "-c", "echo ran > f && cat f"])
            .env(pretend.0, pretend.1)
            .output()
            .unwrap(),
    );
    assert_eq!(r.out, "ran\n", "{}", r.err);
    assert!(r.err.contains("NOT enforced") && r.err.contains("refused by the kernel"), "{}", r.err);
}

#[test]
fn bad_config_and_flags_are_explained() {
    let fx = fx();
    let cfg = fx.home.join("bad.toml");
    std::fs::write(&cfg, "sandbox_mode = \"yolo\"\n").unwrap();
    let r = sh(&fx, &["--config", cfg.to_str().unwrap()], "true");
    assert_eq!(r.code, 125, "codex-box's own failures exit 125");
    assert!(r.err.contains("unknown sandbox mode `yolo`") && r.err.contains("bad.toml"), "{}", r.err);
    let r = sh(&fx, &["-P", "nope"], "true");
    assert!(r.err.contains("pass --config FILE"), "{}", r.err);
    let r = sh(&fx, &["-w", "/does/not/exist"], "true");
    assert!(r.err.contains("/does/not/exist") && r.err.contains("create it"), "{}", r.err);
    let r = sh(&fx, &["--config", "/does/not/exist.toml"], "true");
    assert!(r.err.contains("cannot read config file /does/not/exist.toml"), "{}", r.err);
}

#[test]
fn the_platform_is_optional_and_checked() {
    let fx = fx();
    let run = |args: &[&str]| {
        output(Command::new(BIN).args(args).current_dir(&fx.work).env("HOME", &fx.home).output().unwrap())
    };
    if sandbox_works() {
        assert_eq!(run(&["sandbox", "linux", "--", "sh", "-c", "exit 3"]).code, 3);
    }
    let r = run(&["sandbox", "macos", "--", "true"]);
    assert_eq!(r.code, 125, "codex-box's own failures exit 125");
    assert!(r.err.contains("macos sandbox cannot run on this linux host"), "{}", r.err);
    let r = run(&["sandbox", "--full-auto", "-s", "read-only", "--", "true"]);
    assert_ne!(r.code, 0, "{}", r.err);
}
