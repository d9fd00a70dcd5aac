//! Filesystem: writes outside the roots, protected paths, link and rename escapes, hidden credentials, /tmp.

use crate::*;
use std::path::Path;

#[test]
fn writes_outside_the_roots_are_refused() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let o = fx.outside.display();
    let r = sh(
        &fx,
        &["--full-auto"],
        &format!(
            "echo new > inside && echo inside-ok; echo x > {o}/new; echo new=$?; echo x > {o}/target; echo over=$?"
        ),
    );
    assert!(r.out.contains("inside-ok"), "{}{}", r.out, r.err);
    assert!(failed(&r.out, "new") && failed(&r.out, "over"), "{}", r.out);
    assert!(r.err.contains("Permission denied"), "Landlock answers EACCES: {}", r.err);
    assert!(!fx.outside.join("new").exists());
    assert_eq!(std::fs::read_to_string(fx.outside.join("target")).unwrap(), "original");
    assert_eq!(std::fs::read_to_string(fx.work.join("inside")).unwrap(), "new\n");
}

#[test]
fn writable_root_flag_and_profiles_open_more() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let o = fx.outside.display();
    let r = sh(&fx, &["-w", &o.to_string()], &format!("echo x > {o}/new && echo ok"));
    assert!(r.out.contains("ok"), "{}", r.err);
    let cfg = fx.home.join("cfg.toml");
    std::fs::write(
        &cfg,
        format!("[permissions.out]\nsandbox_mode = \"workspace-write\"\nwritable_roots = [\"{o}\"]\n"),
    )
    .unwrap();
    let r = sh(&fx, &["--config", cfg.to_str().unwrap(), "-P", "out"], &format!("echo y > {o}/p && echo ok"));
    assert!(r.out.contains("ok"), "{}", r.err);
    let r = sh(&fx, &["--config", cfg.to_str().unwrap()], &format!("echo y > {o}/q; echo rc=$?"));
    assert!(failed(&r.out, "rc"), "without -P the default read-only applies: {}", r.out);
}

#[test]
fn git_codex_and_agents_stay_read_only() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    std::fs::create_dir_all(fx.work.join(".git/hooks")).unwrap();
    std::fs::create_dir_all(fx.work.join(".codex")).unwrap();
    std::fs::write(fx.work.join(".codex/config.toml"), "safe").unwrap();
    let r = sh(
        &fx,
        &["--full-auto"],
        "echo ok > src.txt && echo ctl-ok; \
        echo evil > .git/hooks/pre-commit; echo hook=$?; echo evil > .codex/config.toml; echo codex=$?; \
        mkdir .agents; echo agents=$?; mkdir -p .agents/x; echo agentsx=$?",
    );
    assert!(r.out.contains("ctl-ok"), "{}", r.err);
    for k in ["hook", "codex", "agents", "agentsx"] {
        assert!(failed(&r.out, k), "{k}: {}", r.out);
    }
    assert!(r.err.contains("Read-only file system"), "{}", r.err);
    assert!(!fx.work.join(".git/hooks/pre-commit").exists());
    assert_eq!(std::fs::read_to_string(fx.work.join(".codex/config.toml")).unwrap(), "safe");
    assert!(!fx.work.join(".agents").exists(), "the placeholder is removed afterwards");

    let r = sh(&fx, &["--full-auto", "--allow-git-write"], "echo ok > .git/hooks/pre-commit && echo git-ok");
    assert!(r.out.contains("git-ok"), "{}", r.err);
}

#[test]
fn creating_git_where_none_exists_is_refused() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let r = sh(
        &fx,
        &["--full-auto"],
        "mkdir other && echo ctl-ok; mkdir .git; echo mk=$?; \
        git init -q . 2>/dev/null; echo init=$?; echo x > .git/HEAD; echo head=$?",
    );
    assert!(r.out.contains("ctl-ok"), "{}", r.err);
    assert!(failed(&r.out, "mk") && failed(&r.out, "head"), "{}", r.out);
    assert!(!r.out.contains("init=0"), "{}", r.out);
    assert!(!fx.work.join(".git").exists());
    assert!(fx.work.join("other").is_dir());
}

#[test]
fn symlink_hardlink_and_rename_escapes_fail() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let t = fx.outside.join("target");
    let r = sh(
        &fx,
        &["--full-auto"],
        &format!(
            "echo a > a; ln -s a l && echo b > l && ln a h && mv h m && echo ctl-ok; \
         ln -s {t} sym; echo x > sym; echo sym=$?; \
         ln {t} hard; echo hard=$?; \
         mv {t} stolen; echo mv=$?",
            t = t.display()
        ),
    );
    assert!(r.out.contains("ctl-ok"), "{}{}", r.out, r.err);
    for k in ["sym", "hard", "mv"] {
        assert!(failed(&r.out, k), "{k}: {}", r.out);
    }
    assert_eq!(std::fs::read_to_string(&t).unwrap(), "original");
    assert!(!fx.work.join("hard").exists() && !fx.work.join("stolen").exists());
}

#[test]
fn credential_stores_are_hidden_by_default() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    std::fs::create_dir(fx.home.join(".ssh")).unwrap();
    std::fs::write(fx.home.join(".ssh/id_ed25519"), "PRIVATE-KEY-MATERIAL").unwrap();
    std::fs::write(fx.home.join(".netrc"), "machine x password NETRC-SECRET").unwrap();
    std::fs::write(fx.home.join("notes.txt"), "visible\n").unwrap();
    let r = sh(&fx, &[], "cat ~/notes.txt; cat ~/.ssh/id_ed25519; echo key=$?; cat ~/.netrc; ls ~/.ssh; echo ls=$?");
    assert!(r.out.contains("visible"), "{}", r.err);
    assert!(failed(&r.out, "key") && failed(&r.out, "ls"), "{}", r.out);
    assert!(!r.out.contains("PRIVATE-KEY") && !r.out.contains("NETRC-SECRET"), "{}", r.out);
    let cfg = fx.home.join("cfg.toml");
    std::fs::write(&cfg, "[permissions.open]\nhide_credentials = false\n").unwrap();
    let r = sh(&fx, &["--config", cfg.to_str().unwrap(), "-P", "open"], "cat ~/.ssh/id_ed25519");
    assert!(r.out.contains("PRIVATE-KEY"), "configurable: {}", r.err);
}

#[test]
fn tmp_is_private() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let host = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    std::fs::write(host.path(), "host-tmp").unwrap();
    let mark = format!("/tmp/codex-box-private-{}", std::process::id());
    let r = sh(
        &fx,
        &["--full-auto"],
        &format!("cat {}; echo cat=$?; echo in > {mark} && echo wrote", host.path().display()),
    );
    assert!(failed(&r.out, "cat") && r.out.contains("wrote"), "{}{}", r.out, r.err);
    assert!(!Path::new(&mark).exists(), "a file written in the sandbox's /tmp is not on the host");
    let r = sh(&fx, &["-s", "danger-full-access"], &format!("cat {}", host.path().display()));
    assert_eq!(r.out, "host-tmp");
}

#[test]
fn read_only_refuses_every_write_and_full_access_allows_them() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    std::fs::write(fx.work.join("f"), "data\n").unwrap();
    let o = fx.outside.display();
    let script = format!(
        "cat f; echo x > f; echo f=$?; echo x > new; echo new=$?; echo x > /tmp/t; echo tmp=$?; \
        echo x > ~/h; echo home=$?; echo x > {o}/o; echo out=$?; mkdir d; echo dir=$?"
    );
    let r = sh(&fx, &[], &script);
    assert!(r.out.starts_with("data"), "{}", r.err);
    for k in ["f", "new", "tmp", "home", "out", "dir"] {
        assert!(failed(&r.out, k), "{k}: {}", r.out);
    }
    assert_eq!(std::fs::read_to_string(fx.work.join("f")).unwrap(), "data\n");
    let r = sh(&fx, &["-s", "danger-full-access"], &script);
    for k in ["f=0", "new=0", "home=0", "out=0", "dir=0"] {
        assert!(r.out.contains(k), "{k}: {}{}", r.out, r.err);
    }
    assert!(fx.outside.join("o").exists());
}

#[test]
fn devices_are_opt_in_and_dev_shm_is_private() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let readable: Vec<&str> =
        ["/dev/kvm", "/dev/fuse", "/dev/loop0", "/dev/video0", "/dev/snd/timer", "/dev/dri/card0"]
            .into_iter()
            .filter(|d| std::fs::File::open(d).is_ok())
            .collect();
    let host_shm = format!("/dev/shm/codex-box-test-{}", std::process::id());
    std::fs::write(&host_shm, "host").unwrap();
    let r = sh(
        &fx,
        &[],
        &format!(
            "head -c4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok; cat {host_shm}; echo shm=$?; \
         echo s > /dev/shm/mine && echo shm-write-ok; for d in {}; do head -c1 $d >/dev/null; echo dev=$?; done",
            readable.join(" ")
        ),
    );
    std::fs::remove_file(&host_shm).unwrap();
    assert!(r.out.starts_with("4\nnull-ok"), "controls: {}{}", r.out, r.err);
    assert!(failed(&r.out, "shm") && r.out.contains("shm-write-ok"), "{}", r.out);
    assert!(!Path::new("/dev/shm/mine").exists());
    if require(!readable.is_empty(), "no device readable on this host to try") {
        assert_eq!(r.out.matches("dev=1").count(), readable.len(), "{readable:?}: {}{}", r.out, r.err);
    }
}

#[test]
fn a_project_below_tmp_stays_usable_and_exclude_slash_tmp_holds() {
    if !sandbox_works() {
        return;
    }
    let fx = fx();
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let work = dir.path().canonicalize().unwrap();
    std::fs::write(work.join("data.txt"), "in-tmp\n").unwrap();
    let cfg = fx.home.join("cfg.toml");
    std::fs::write(&cfg, "[sandbox_workspace_write]\nexclude_slash_tmp = true\n").unwrap();
    let run = |flags: &[&str], script: &str| {
        output(cmd(&fx, flags, &["sh", "-c", script]).current_dir(&work).output().unwrap())
    };
    let r = run(&[], "cat data.txt; echo x > data.txt; echo ro=$?");
    assert!(r.out.starts_with("in-tmp\n") && failed(&r.out, "ro"), "read-only cwd below /tmp: {}{}", r.out, r.err);
    let r = run(
        &["--config", cfg.to_str().unwrap(), "--full-auto"],
        "echo x > new && echo cwd-ok; echo x > /tmp/t; echo tmp=$?",
    );
    assert!(r.out.contains("cwd-ok") && failed(&r.out, "tmp"), "{}{}", r.out, r.err);
    assert_eq!(std::fs::read_to_string(work.join("new")).unwrap(), "x\n");
}
