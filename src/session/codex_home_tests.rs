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
fn config_and_prompts_copied_state_rebuilt() {
    let t = tempfile::tempdir().unwrap();
    let (home, wd) = (t.path().join("home"), t.path().join("wd"));
    fs::create_dir_all(home.join(".codex/prompts")).unwrap();
    fs::create_dir_all(&wd).unwrap();
    fs::write(home.join(".codex/config.toml"), "model = \"a\"\n").unwrap();
    fs::write(home.join(".codex/prompts/p.md"), "from home").unwrap();
    let c = cfg(&home, &wd, SessionArgs::default(), None);
    let h = prepare(&c).unwrap();
    assert_eq!(fs::read_to_string(h.env_dir.join("config.toml")).unwrap(), "model = \"a\"\n");
    assert_eq!(fs::read_to_string(h.state_dir.join("config.toml")).unwrap(), "model = \"a\"\n");
    assert_eq!(fs::read_to_string(h.env_dir.join("prompts/p.md")).unwrap(), "from home");
    // Not overwritten once present.
    fs::write(h.env_dir.join("prompts/p.md"), "edited").unwrap();
    fs::write(home.join(".codex/config.toml"), "model = \"b\"\n").unwrap();
    // What an agent writes into state/ is gone next time, except history and logs.
    fs::write(h.state_dir.join("config.toml"), "evil").unwrap();
    fs::write(h.state_dir.join("AGENTS.md"), "evil").unwrap();
    fs::write(h.state_dir.join("history.jsonl"), "kept").unwrap();
    std::os::unix::fs::symlink("/etc", h.state_dir.join("log")).unwrap();
    let h = prepare(&c).unwrap();
    assert_eq!(fs::read_to_string(h.env_dir.join("prompts/p.md")).unwrap(), "edited");
    assert_eq!(fs::read_to_string(h.env_dir.join("config.toml")).unwrap(), "model = \"a\"\n");
    assert_eq!(fs::read_to_string(h.state_dir.join("config.toml")).unwrap(), "model = \"a\"\n");
    assert!(!h.state_dir.join("AGENTS.md").exists());
    assert!(fs::symlink_metadata(h.state_dir.join("log")).is_err(), "a symlinked log/ is removed");
    assert_eq!(fs::read_to_string(h.state_dir.join("history.jsonl")).unwrap(), "kept");
    assert!(h.sessions_dir.ends_with(".codex/.environment/sessions") && h.sessions_dir.is_dir());
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
    let h = prepare(&c).unwrap();
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
    let h = prepare_for(&cfg(&home, &wd, SessionArgs::default(), None), Some(agent)).unwrap();
    for p in ["state", "state/config.toml", "state/prompts", "state/prompts/p.md", "sessions", "sessions/old"] {
        assert_eq!(owner_of(&h.env_dir.join(p)), (agent.uid, agent.gid), "{p}");
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
fn mount_points_are_handled_without_following_links_and_sessions_stays() {
    use std::os::unix::fs::symlink;
    let t = tempfile::tempdir().unwrap();
    let (home, wd) = (t.path().join("home"), t.path().join("wd"));
    fs::create_dir_all(&wd).unwrap();
    let h = prepare(&cfg(&home, &wd, SessionArgs::default(), None)).unwrap();
    fs::write(h.state_dir.join("auth.json"), "").unwrap();
    fs::create_dir(h.state_dir.join("sessions")).unwrap();
    remove_mount_points(&h);
    assert!(!h.state_dir.join("auth.json").exists(), "the auth.json mount point is removed");
    // The sessions mount point stays, after the session and at the next start, while empty:
    // removing it would unmount other running sessions' sessions directory.
    assert!(h.state_dir.join("sessions").is_dir());
    let h = prepare(&cfg(&home, &wd, SessionArgs::default(), None)).unwrap();
    assert!(h.state_dir.join("sessions").is_dir());
    fs::write(h.state_dir.join("sessions/x"), "").unwrap();
    let h = prepare(&cfg(&home, &wd, SessionArgs::default(), None)).unwrap();
    assert!(!h.state_dir.join("sessions").exists(), "not empty: not a mount point, removed");
    // Links in their place are left, and so is what they point at.
    let (empty_file, empty_dir) = (t.path().join("empty"), t.path().join("empty.d"));
    fs::write(&empty_file, "").unwrap();
    fs::create_dir(&empty_dir).unwrap();
    symlink(&empty_file, h.state_dir.join("auth.json")).unwrap();
    remove_mount_points(&h);
    assert!(empty_file.is_file() && h.state_dir.join("auth.json").is_symlink());
    // A link named sessions is no mount point: removed at the next start, and only the link.
    symlink(&empty_dir, h.state_dir.join("sessions")).unwrap();
    let h = prepare(&cfg(&home, &wd, SessionArgs::default(), None)).unwrap();
    assert!(empty_dir.is_dir() && fs::symlink_metadata(h.state_dir.join("sessions")).is_err());
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
    let h = prepare(&c).unwrap();
    assert!(!h.env_dir.join("prompts/id_rsa").exists(), "a linked prompts dir is not copied");
    fs::remove_file(wd.join("codex/prompts")).unwrap();
    fs::create_dir_all(wd.join("codex/prompts")).unwrap();
    fs::write(wd.join("codex/prompts/p.md"), "real").unwrap();
    let h = prepare(&c).unwrap();
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
    let h = prepare_for(&cfg(&home, &wd, SessionArgs::default(), None), Some(Owner { uid: 4245, gid: 4246 })).unwrap();
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
    let h = prepare_for(&cfg(&home, &wd, SessionArgs::default(), None), None).unwrap();
    assert_eq!(h.made_here, Some((wd.clone(), PathBuf::from(".codex/.environment"))));
    undo(&h).unwrap();
    assert!(wd.join(".codex/codex-box.toml").exists() && !wd.join(".codex/.environment").exists());
}
