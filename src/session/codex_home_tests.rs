//! Tests of the codex home: search order, rebuild, hand-over through handles.

use super::*;
use crate::cli::SessionArgs;
use crate::host_env::HostEnv;

fn cfg(home: &Path, wd: &Path, args: SessionArgs, config_dir: Option<PathBuf>) -> SessionPolicy {
    let env = HostEnv { home: Some(home.into()), codex_config_dir: config_dir, ..HostEnv::default() };
    let mut a = args;
    a.work_dir = Some(wd.into());
    SessionPolicy::build(&a, env, wd).unwrap()
}

#[test]
fn auth_search_order() {
    let t = tempfile::tempdir().unwrap();
    let (home, wd, cdir) = (t.path().join("home"), t.path().join("wd"), t.path().join("cdir"));
    for d in [
        home.join(".codex"),
        home.join(".config/codex"),
        wd.join("codex"),
        wd.join(".codex/.environment"),
        cdir.clone(),
    ] {
        fs::create_dir_all(&d).unwrap();
    }
    let candidates = [
        cdir.join("auth.json"),
        home.join(".codex/auth.json"),
        home.join(".config/codex/auth.json"),
        wd.join("codex/auth.json"),
        wd.join(".codex/auth.json"),
        wd.join(".codex/.environment/auth.json"),
    ];
    for c in &candidates {
        fs::write(c, "{}").unwrap();
    }
    let env_dir = wd.join(".codex/.environment");
    // Each removal exposes the next candidate.
    for (i, expected) in candidates.iter().enumerate() {
        let c = cfg(&home, &wd, SessionArgs::default(), Some(cdir.clone()));
        assert_eq!(find_auth(&c, &env_dir).as_ref(), Some(expected), "step {i}");
        fs::remove_file(expected).unwrap();
    }
    let c = cfg(&home, &wd, SessionArgs::default(), Some(cdir.clone()));
    assert_eq!(find_auth(&c, &env_dir), None);
    // --auth_file beats everything.
    let explicit = t.path().join("mine.json");
    fs::write(&explicit, "{}").unwrap();
    fs::write(&candidates[0], "{}").unwrap();
    let c = cfg(&home, &wd, SessionArgs { auth_file: Some(explicit.clone()), ..Default::default() }, Some(cdir));
    assert_eq!(find_auth(&c, &env_dir), Some(explicit.canonicalize().unwrap()));
}

#[test]
fn config_and_prompts_copied_and_each_session_gets_a_fresh_home() {
    let t = tempfile::tempdir().unwrap();
    let (home, wd) = (t.path().join("home"), t.path().join("wd"));
    fs::create_dir_all(home.join(".codex/prompts")).unwrap();
    fs::create_dir_all(&wd).unwrap();
    fs::write(home.join(".codex/config.toml"), "model = \"a\"\n").unwrap();
    fs::write(home.join(".codex/prompts/p.md"), "from home").unwrap();
    let c = cfg(&home, &wd, SessionArgs::default(), None);
    let (h, lease) = prepare(&c).unwrap();
    assert!(h.state_dir.starts_with(h.env_dir.join("homes")), "{}", h.state_dir.display());
    assert_eq!(fs::read_to_string(h.env_dir.join("config.toml")).unwrap(), "model = \"a\"\n");
    assert_eq!(fs::read_to_string(h.state_dir.join("config.toml")).unwrap(), "model = \"a\"\n");
    assert_eq!(fs::read_to_string(h.env_dir.join("prompts/p.md")).unwrap(), "from home");
    // Not overwritten once present.
    fs::write(h.env_dir.join("prompts/p.md"), "edited").unwrap();
    fs::write(home.join(".codex/config.toml"), "model = \"b\"\n").unwrap();
    // What an agent writes into its home is gone next time, except history and logs, which are kept.
    fs::write(h.state_dir.join("config.toml"), "evil").unwrap();
    fs::write(h.state_dir.join("AGENTS.md"), "evil").unwrap();
    fs::write(h.state_dir.join("history.jsonl"), "kept\n").unwrap();
    std::os::unix::fs::symlink("/etc", h.state_dir.join("log")).unwrap();
    finish(&h, lease, None);
    assert!(!h.state_dir.exists(), "the ended session's home is removed");
    let (h, _lease) = prepare(&c).unwrap();
    assert_eq!(fs::read_to_string(h.env_dir.join("prompts/p.md")).unwrap(), "edited");
    assert_eq!(fs::read_to_string(h.env_dir.join("config.toml")).unwrap(), "model = \"a\"\n");
    assert_eq!(fs::read_to_string(h.state_dir.join("config.toml")).unwrap(), "model = \"a\"\n");
    assert!(!h.state_dir.join("AGENTS.md").exists());
    assert!(fs::symlink_metadata(h.state_dir.join("log")).is_err(), "a symlinked log/ is not kept");
    assert!(fs::symlink_metadata(h.env_dir.join("state/log")).is_err(), "nor read through");
    assert_eq!(fs::read_to_string(h.state_dir.join("history.jsonl")).unwrap(), "kept\n");
    assert!(h.sessions_dir.ends_with(".codex/.environment/sessions") && h.sessions_dir.is_dir());
}

/// Two sessions at once: each has its own home, untouched while the other starts and ends; what
/// both keep is merged, nothing overwritten.
#[test]
fn concurrent_sessions_keep_their_own_homes_and_their_history_and_logs_are_merged() {
    let t = tempfile::tempdir().unwrap();
    let (home, wd) = (t.path().join("home"), t.path().join("wd"));
    fs::create_dir_all(&wd).unwrap();
    let c = cfg(&home, &wd, SessionArgs::default(), None);
    let (a, lease_a) = prepare(&c).unwrap();
    let (b, lease_b) = prepare(&c).unwrap();
    assert_ne!(a.state_dir, b.state_dir);
    for (h, who) in [(&a, "a"), (&b, "b")] {
        fs::write(h.state_dir.join("history.jsonl"), format!("{{\"text\":\"{who}1\"}}\n")).unwrap();
        fs::create_dir(h.state_dir.join("log")).unwrap();
        fs::write(h.state_dir.join("log/codex-tui.log"), format!("{who} log\n")).unwrap();
        fs::write(h.state_dir.join("scratch"), who).unwrap();
    }
    // b ends, then a third session starts and ends, while a runs: a's home is as it was.
    finish(&b, lease_b, None);
    let (c3, lease_c) = prepare(&c).unwrap();
    assert_eq!(fs::read_to_string(c3.state_dir.join("history.jsonl")).unwrap(), "{\"text\":\"b1\"}\n");
    finish(&c3, lease_c, None);
    assert_eq!(fs::read_to_string(a.state_dir.join("scratch")).unwrap(), "a");
    assert_eq!(fs::read_to_string(a.state_dir.join("log/codex-tui.log")).unwrap(), "a log\n");
    // a writes on, then ends.
    fs::write(a.state_dir.join("history.jsonl"), "{\"text\":\"a1\"}\n{\"text\":\"a2\"}\n").unwrap();
    finish(&a, lease_a, None);
    let store = a.env_dir.join("state");
    assert_eq!(
        fs::read_to_string(store.join("history.jsonl")).unwrap(),
        "{\"text\":\"b1\"}\n{\"text\":\"a1\"}\n{\"text\":\"a2\"}\n"
    );
    assert_eq!(fs::read_to_string(store.join("log/codex-tui.log")).unwrap(), "b log\na log\n");
    assert_eq!(fs::read_dir(a.env_dir.join("homes")).unwrap().count(), 0, "every home removed");
    assert!(!store.join("scratch").exists());
}

/// A session whose codex-box was killed never finished: the next start merges and removes its home
/// — but never a home whose lock is held.
#[test]
fn a_killed_sessions_home_is_collected_by_the_next_start_and_a_locked_one_is_not() {
    let t = tempfile::tempdir().unwrap();
    let (home, wd) = (t.path().join("home"), t.path().join("wd"));
    fs::create_dir_all(&wd).unwrap();
    let c = cfg(&home, &wd, SessionArgs::default(), None);
    let (running, lease_running) = prepare(&c).unwrap();
    let (killed, lease_killed) = prepare(&c).unwrap();
    fs::write(running.state_dir.join("history.jsonl"), "running\n").unwrap();
    fs::write(killed.state_dir.join("history.jsonl"), "killed\n").unwrap();
    // Links the agent planted among its logs: never read, whatever they point at.
    let secret = t.path().join("secret");
    fs::write(&secret, "SECRET\n").unwrap();
    fs::create_dir(killed.state_dir.join("log")).unwrap();
    std::os::unix::fs::symlink(&secret, killed.state_dir.join("log/leak.log")).unwrap();
    fs::write(killed.state_dir.join("log/codex-tui.log"), "real\n").unwrap();
    drop(lease_killed); // what a SIGKILL does: the lock goes with the process
    let (next, _lease) = prepare(&c).unwrap();
    assert!(!killed.state_dir.exists(), "the killed session's home is collected");
    assert_eq!(fs::read_to_string(next.state_dir.join("history.jsonl")).unwrap(), "killed\n");
    let store = next.env_dir.join("state/log");
    assert_eq!(fs::read_to_string(store.join("codex-tui.log")).unwrap(), "real\n", "control: a real log is kept");
    assert!(fs::symlink_metadata(store.join("leak.log")).is_err(), "a linked log is not read");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "SECRET\n");
    assert_eq!(fs::read_to_string(running.state_dir.join("history.jsonl")).unwrap(), "running\n", "in use: kept");
    drop(lease_running);
}

#[test]
fn new_history_lines_are_those_the_store_lacks() {
    use super::own_home::new_lines;
    assert_eq!(new_lines(b"", b"a\nb\n"), b"a\nb\n");
    assert_eq!(new_lines(b"a\n", b"a\nb\n"), b"b\n");
    assert_eq!(new_lines(b"a", b"a\nb"), b"\nb\n", "a store without a final newline gets one");
    assert_eq!(new_lines(b"a\nb\n", b"b\n"), b"", "a trimmed history removes nothing");
    assert_eq!(new_lines(b"", b"x\nx\n"), b"x\n");
}

#[test]
fn init_script_copied_executable_and_source_untouched() {
    let t = tempfile::tempdir().unwrap();
    let (home, wd) = (t.path().join("home"), t.path().join("wd"));
    fs::create_dir_all(&wd).unwrap();
    fs::create_dir_all(&home).unwrap();
    let hook = t.path().join("hook.sh");
    fs::write(&hook, "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o600)).unwrap();
    let c = cfg(&home, &wd, SessionArgs { init_script: Some(hook.clone()), ..Default::default() }, None);
    let (h, _lease) = prepare(&c).unwrap();
    let init = h.init_hook.unwrap();
    assert_eq!(fs::metadata(&init).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(fs::metadata(&hook).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn copy_fresh_replaces_a_planted_symlink_instead_of_following_it() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let src = t.path().join("src");
    fs::write(&src, "new").unwrap();
    let to = t.path().join("to");
    std::os::unix::fs::symlink(&victim, &to).unwrap();
    copy_fresh(&src, &to, 0o644).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(fs::read_to_string(&to).unwrap(), "new");
    assert!(!fs::symlink_metadata(&to).unwrap().file_type().is_symlink());
}

#[test]
fn as_root_what_the_agent_writes_is_made_its_own_and_no_link_is_followed() {
    if !crate::fs_handle::tests::as_root("codex_home hand-over") {
        return;
    }
    use std::os::unix::fs::{symlink, MetadataExt};
    let t = tempfile::tempdir().unwrap();
    let (home, wd, outside) = (t.path().join("home"), t.path().join("wd"), t.path().join("outside"));
    fs::create_dir_all(home.join(".codex/prompts")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "root's").unwrap();
    fs::write(home.join(".codex/config.toml"), "model = \"a\"\n").unwrap();
    fs::write(home.join(".codex/prompts/p.md"), "p").unwrap();
    // Left by an older codex-box as root, and planted by an agent.
    let sessions = wd.join(".codex/.environment/sessions");
    fs::create_dir_all(sessions.join("old")).unwrap();
    fs::write(sessions.join("old/x.jsonl"), "{}").unwrap();
    symlink(&outside, sessions.join("l")).unwrap();
    symlink(&outside, sessions.join("old/l")).unwrap();
    let owner_of = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    let agent = Owner { uid: 4243, gid: 4244 };
    let (h, _lease) = prepare_for(&cfg(&home, &wd, SessionArgs::default(), None), Some(agent)).unwrap();
    for p in ["state", "homes", "sessions", "sessions/old"] {
        assert_eq!(owner_of(&h.env_dir.join(p)), (agent.uid, agent.gid), "{p}");
    }
    for p in ["", "config.toml", "prompts", "prompts/p.md"] {
        assert_eq!(owner_of(&h.state_dir.join(p)), (agent.uid, agent.gid), "the session's home: {p}");
    }
    for p in ["sessions/old/x.jsonl", "sessions/l", "sessions/old/l"] {
        assert_eq!(owner_of(&h.env_dir.join(p)), (agent.uid, agent.gid), "{p} (links themselves)");
    }
    for p in [wd.join(".codex"), h.env_dir.clone(), h.env_dir.join("config.toml"), outside.clone()] {
        assert_eq!(owner_of(&p), (0, 0), "{} stays root's", p.display());
    }
    assert_eq!(owner_of(&outside.join("secret")), (0, 0));
    // A kept log/ with a link inside, handed over again by the path-based entry point.
    fs::create_dir(h.state_dir.join("log")).unwrap();
    symlink(&outside, h.state_dir.join("log/l")).unwrap();
    hand_over(&h, agent.uid, agent.gid).unwrap();
    assert_eq!(owner_of(&h.state_dir.join("log/l")), (agent.uid, agent.gid));
    assert_eq!(owner_of(&outside), (0, 0));
    assert_eq!(owner_of(&outside.join("secret")), (0, 0));
}

#[test]
fn a_link_on_the_way_to_the_codex_home_is_refused_and_nothing_made_through_it() {
    use std::os::unix::fs::symlink;
    let t = tempfile::tempdir().unwrap();
    let (home, wd, elsewhere) = (t.path().join("home"), t.path().join("wd"), t.path().join("elsewhere"));
    for d in [&home, &wd, &elsewhere] {
        fs::create_dir_all(d).unwrap();
    }
    symlink(&elsewhere, wd.join(".codex")).unwrap();
    let c = cfg(&home, &wd, SessionArgs::default(), None);
    let e = prepare(&c).unwrap_err().to_string();
    assert!(e.contains("symbolic link") && e.contains(".codex"), "{e}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing made through the link");
    // The same for state/ itself.
    fs::remove_file(wd.join(".codex")).unwrap();
    fs::create_dir_all(wd.join(".codex/.environment")).unwrap();
    symlink(&elsewhere, wd.join(".codex/.environment/state")).unwrap();
    fs::write(elsewhere.join("keep"), "x").unwrap();
    let e = prepare(&c).unwrap_err().to_string();
    assert!(e.contains("state") && e.contains("symbolic link"), "{e}");
    assert_eq!(fs::read_to_string(elsewhere.join("keep")).unwrap(), "x", "nothing cleaned through the link");
    assert!(rebuild_state(&wd.join(".codex/.environment/state"), None, Path::new("/nonexistent")).is_err());
    assert_eq!(fs::read_to_string(elsewhere.join("keep")).unwrap(), "x");
}

#[test]
fn mount_points_go_with_the_sessions_own_home_and_no_link_is_followed() {
    use std::os::unix::fs::symlink;
    let t = tempfile::tempdir().unwrap();
    let (home, wd) = (t.path().join("home"), t.path().join("wd"));
    fs::create_dir_all(&wd).unwrap();
    let (h, lease) = prepare(&cfg(&home, &wd, SessionArgs::default(), None)).unwrap();
    fs::write(h.state_dir.join("auth.json"), "").unwrap();
    fs::create_dir(h.state_dir.join("sessions")).unwrap();
    remove_mount_points(&h);
    assert!(!h.state_dir.join("auth.json").exists(), "the auth.json mount point is removed");
    // Links in their place are left, and so is what they point at.
    let (empty_file, empty_dir) = (t.path().join("empty"), t.path().join("empty.d"));
    fs::write(&empty_file, "").unwrap();
    fs::create_dir(&empty_dir).unwrap();
    fs::write(empty_dir.join("x"), "").unwrap();
    symlink(&empty_file, h.state_dir.join("auth.json")).unwrap();
    remove_mount_points(&h);
    assert!(empty_file.is_file() && h.state_dir.join("auth.json").is_symlink());
    // The end of the session removes its home with its mount points, and only the links.
    fs::remove_dir(h.state_dir.join("sessions")).unwrap();
    symlink(&empty_dir, h.state_dir.join("sessions")).unwrap();
    finish(&h, lease, None);
    assert!(fs::symlink_metadata(&h.state_dir).is_err());
    assert!(empty_file.is_file() && empty_dir.join("x").is_file());
}

#[test]
fn links_planted_in_the_workdir_are_never_sources() {
    let t = tempfile::tempdir().unwrap();
    let (home, wd, secret) = (t.path().join("home"), t.path().join("wd"), t.path().join("secret"));
    for d in [&home, &wd, &secret] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(secret.join("id_rsa"), "PRIVATE").unwrap();
    fs::write(secret.join("auth.json"), "{\"secret\": 1}").unwrap();
    // What an agent (or a cloned repository) leaves in the project: links to host secrets.
    fs::create_dir_all(wd.join("codex")).unwrap();
    std::os::unix::fs::symlink(&secret, wd.join("codex/prompts")).unwrap();
    std::os::unix::fs::symlink(secret.join("auth.json"), wd.join("codex/auth.json")).unwrap();
    std::os::unix::fs::symlink(&secret, wd.join(".codex")).unwrap();
    let c = cfg(&home, &wd, SessionArgs::default(), None);
    assert_eq!(find_auth(&c, &wd.join(".codex/.environment")), None, "a linked auth.json is not mounted");
    // Control: the same files as real files in the project are used.
    fs::remove_file(wd.join("codex/auth.json")).unwrap();
    fs::write(wd.join("codex/auth.json"), "{}").unwrap();
    assert_eq!(find_auth(&c, &wd.join(".codex/.environment")), Some(wd.join("codex/auth.json")));
    fs::remove_file(wd.join(".codex")).unwrap();
    let (h, _lease) = prepare(&c).unwrap();
    assert!(!h.env_dir.join("prompts/id_rsa").exists(), "a linked prompts dir is not copied");
    fs::remove_file(wd.join("codex/prompts")).unwrap();
    fs::create_dir_all(wd.join("codex/prompts")).unwrap();
    fs::write(wd.join("codex/prompts/p.md"), "real").unwrap();
    let (h, _lease) = prepare(&c).unwrap();
    assert_eq!(fs::read_to_string(h.env_dir.join("prompts/p.md")).unwrap(), "real");
}

#[test]
fn as_root_on_someone_elses_project_what_codex_box_makes_is_theirs_and_undo_removes_it() {
    if !crate::fs_handle::tests::as_root("codex_home project owner") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let (home, wd) = (t.path().join("home"), t.path().join("wd"));
    fs::create_dir_all(home.join(".codex")).unwrap();
    fs::write(home.join(".codex/config.toml"), "model = \"a\"\n").unwrap();
    fs::create_dir_all(&wd).unwrap();
    std::os::unix::fs::chown(&wd, Some(4245), Some(4246)).unwrap();
    let (h, _lease) =
        prepare_for(&cfg(&home, &wd, SessionArgs::default(), None), Some(Owner { uid: 4245, gid: 4246 })).unwrap();
    for p in [wd.join(".codex"), h.env_dir.clone(), h.env_dir.join("config.toml")] {
        let m = fs::symlink_metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (4245, 4246), "{} is the project owner's", p.display());
    }
    assert_eq!(h.made_here, Some((wd.clone(), PathBuf::from(".codex"))));
    undo(&h).unwrap();
    assert!(!wd.join(".codex").exists(), "a failed start leaves nothing");
    // An existing .codex is the user's: only what this run made in it goes.
    fs::create_dir(wd.join(".codex")).unwrap();
    fs::write(wd.join(".codex/codex-box.toml"), "").unwrap();
    let (h, _lease) = prepare_for(&cfg(&home, &wd, SessionArgs::default(), None), None).unwrap();
    assert_eq!(h.made_here, Some((wd.clone(), PathBuf::from(".codex/.environment"))));
    undo(&h).unwrap();
    assert!(wd.join(".codex/codex-box.toml").exists() && !wd.join(".codex/.environment").exists());
}
