//! The codex home of a session, prepared on the host before the container exists.
//!
//! Layout (host): `<WORK_DIR>/.codex/.environment/` (or `--codex-home`) holds the *trusted* inputs —
//! `config.toml`, `init.sh`, `prompts/` — which the agent can never write: the whole `.codex` is mounted
//! read-only over the writable workdir, and the codex home itself is not mounted. What Codex writes lives
//! in `state/` (mounted at `/codex_home`) and `sessions/` (or `--sessions-path`). `state/` is rebuilt at
//! every start: everything but `history.jsonl` and `log/` is removed and fresh copies of config.toml
//! and prompts are put in, so nothing the agent wrote there steers the next session.
//!
//! `auth.json` is never copied: the first one found is mounted read-only, and its mode is never touched.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::session::SessionPolicy as SessionConfig;

/// Files and directories of `state/` that survive from one session to the next.
pub const KEPT_STATE: &[&str] = &["history.jsonl", "log"];

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot create {path}: {source}; check its permissions or choose another --codex-home")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("cannot copy {from} to {to}: {source}")]
    Copy { from: PathBuf, to: PathBuf, source: std::io::Error },
    #[error("cannot clean {path}: {source}; remove it by hand")]
    Clean { path: PathBuf, source: std::io::Error },
    #[error("--config {0}: no config.toml there; pass a config.toml file or a directory containing one")]
    NoConfigInDir(PathBuf),
}

/// The prepared codex home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexHome {
    /// Trusted directory (`.codex/.environment`).
    pub env_dir: PathBuf,
    /// Writable state, mounted at /codex_home.
    pub state_dir: PathBuf,
    /// Writable sessions directory, mounted at /codex_home/sessions.
    pub sessions_dir: PathBuf,
    /// auth.json mounted read-only at /codex_home/auth.json.
    pub auth: Option<PathBuf>,
    /// The trusted init hook (`init.sh`, executable), if any.
    pub init_hook: Option<PathBuf>,
    /// The trusted config.toml, if any.
    pub config_toml: Option<PathBuf>,
    /// Trusted files codex-box wrote in this run from the user's own sources (flags, CODEX_CONFIG_DIR,
    /// ~/.codex): approved by the user's act, unlike files that came with the project.
    pub from_user: Vec<PathBuf>,
    /// Whether codex-box created the sessions directory in this run (then it is codex-box's to hand over).
    pub made_sessions_dir: bool,
}

/// Directories searched for config, auth.json and prompts, in order (see REQUIREMENTS.md §2.3).
pub fn search_dirs(cfg: &SessionConfig) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(c) = &cfg.config {
        dirs.push(if c.is_dir() { c.clone() } else { c.parent().map(Path::to_path_buf).unwrap_or_default() });
    }
    if let Some(d) = &cfg.env.codex_config_dir {
        dirs.push(d.clone());
    }
    if let Some(h) = &cfg.env.home {
        dirs.push(h.join(".codex"));
        dirs.push(h.join(".config/codex"));
    }
    dirs.push(cfg.work_dir.join("codex"));
    dirs.push(cfg.work_dir.join(".codex"));
    dirs
}

/// The auth.json to mount: `--auth_file`/CODEX_AUTH_FILE, then the search dirs, then `.environment`.
pub fn find_auth(cfg: &SessionConfig, env_dir: &Path) -> Option<PathBuf> {
    if let Some(a) = &cfg.auth_file {
        return Some(a.clone());
    }
    search_dirs(cfg)
        .into_iter()
        .map(|d| d.join("auth.json"))
        .chain(std::iter::once(env_dir.join("auth.json")))
        .find(|p| p.is_file())
}

/// Prepares the codex home for a session.
pub fn prepare(cfg: &SessionConfig) -> Result<CodexHome, HomeError> {
    let env_dir = cfg.codex_home.clone().unwrap_or_else(|| cfg.work_dir.join(".codex/.environment"));
    mkdir(&env_dir)?;

    // config.toml: --config overrides; otherwise copied once if missing.
    let trusted_config = env_dir.join("config.toml");
    let mut from_user = Vec::new();
    let explicit = match &cfg.config {
        Some(c) if c.is_dir() => {
            let f = c.join("config.toml");
            if !f.is_file() {
                return Err(HomeError::NoConfigInDir(c.clone()));
            }
            Some(f)
        }
        Some(c) => Some(c.clone()),
        None => None,
    };
    if let Some(src) = explicit {
        if src != trusted_config {
            copy_fresh(&src, &trusted_config, 0o644)?;
        }
        from_user.push(trusted_config.clone());
    } else if !trusted_config.exists() {
        let mut fallbacks: Vec<PathBuf> = cfg.env.codex_config_dir.iter().cloned().collect();
        if let Some(h) = &cfg.env.home {
            fallbacks.push(h.join(".codex"));
            fallbacks.push(h.join(".config/codex"));
        }
        if let Some(src) = fallbacks.iter().map(|d| d.join("config.toml")).find(|p| p.is_file()) {
            copy_fresh(&src, &trusted_config, 0o644)?;
            from_user.push(trusted_config.clone());
        }
    }

    // Prompts: the first prompts dir found, copied without overwriting.
    if let Some(src) = search_dirs(cfg).into_iter().map(|d| d.join("prompts")).find(|p| p.is_dir()) {
        if src != env_dir.join("prompts") {
            copy_dir_no_overwrite(&src, &env_dir.join("prompts"))?;
        }
    }

    // Init hook: --init_script is copied to init.sh and made executable.
    let init = env_dir.join("init.sh");
    if let Some(src) = &cfg.init_script {
        if *src != init {
            copy_fresh(src, &init, 0o755)?;
        }
        from_user.push(init.clone());
    }
    let init_hook =
        fs::metadata(&init).ok().filter(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).map(|_| init);

    let sessions_dir = cfg.sessions_path.clone().unwrap_or_else(|| env_dir.join("sessions"));
    let made_sessions_dir = !sessions_dir.exists();
    mkdir(&sessions_dir)?;
    let state_dir = env_dir.join("state");
    mkdir(&state_dir)?;
    rebuild_state(&state_dir, trusted_config.is_file().then_some(&trusted_config), &env_dir.join("prompts"))?;

    Ok(CodexHome {
        auth: find_auth(cfg, &env_dir),
        config_toml: trusted_config.is_file().then_some(trusted_config),
        env_dir,
        state_dir,
        sessions_dir,
        init_hook,
        from_user,
        made_sessions_dir,
    })
}

/// Removes everything from `state` but [`KEPT_STATE`] (never following links), then puts fresh copies
/// of the trusted config and prompts in.
pub fn rebuild_state(state: &Path, config: Option<&PathBuf>, prompts: &Path) -> Result<(), HomeError> {
    let entries = fs::read_dir(state).map_err(|source| HomeError::Clean { path: state.into(), source })?;
    for e in entries {
        let e = e.map_err(|source| HomeError::Clean { path: state.into(), source })?;
        let path = e.path();
        let meta = fs::symlink_metadata(&path).map_err(|source| HomeError::Clean { path: path.clone(), source })?;
        let name = e.file_name();
        let kept = KEPT_STATE.iter().any(|k| name == *k);
        let real = (name == "history.jsonl" && meta.is_file()) || (name == "log" && meta.is_dir());
        if kept && real {
            continue;
        }
        let r = if meta.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        r.map_err(|source| HomeError::Clean { path, source })?;
    }
    if let Some(c) = config {
        copy_fresh(c, &state.join("config.toml"), 0o644)?;
    }
    if prompts.is_dir() {
        copy_dir_no_overwrite(prompts, &state.join("prompts"))?;
    }
    Ok(())
}

/// Removes the empty mount-point files Docker created in `state` for nested mounts.
pub fn remove_mount_points(home: &CodexHome) {
    let auth = home.state_dir.join("auth.json");
    if fs::symlink_metadata(&auth).map(|m| m.is_file() && m.len() == 0).unwrap_or(false) {
        let _ = fs::remove_file(&auth);
    }
    let _ = fs::remove_dir(home.state_dir.join("sessions"));
}

fn mkdir(p: &Path) -> Result<(), HomeError> {
    fs::create_dir_all(p).map_err(|source| HomeError::Create { path: p.into(), source })
}

/// Copies `from` to `to` through a temporary file and a rename: never half-written, never through a
/// symlink planted at `to`.
pub fn copy_fresh(from: &Path, to: &Path, mode: u32) -> Result<(), HomeError> {
    let err = |source| HomeError::Copy { from: from.into(), to: to.into(), source };
    let data = fs::read(from).map_err(err)?;
    let tmp = to.with_file_name(format!(".{}.codex-box-tmp", to.file_name().and_then(|n| n.to_str()).unwrap_or("f")));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(err)?;
    let written = f.write_all(&data).and_then(|_| f.set_permissions(fs::Permissions::from_mode(mode)));
    drop(f);
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, to)) {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

fn copy_dir_no_overwrite(from: &Path, to: &Path) -> Result<(), HomeError> {
    mkdir(to)?;
    let err = |source| HomeError::Copy { from: from.into(), to: to.into(), source };
    for e in fs::read_dir(from).map_err(err)? {
        let e = e.map_err(err)?;
        let target = to.join(e.file_name());
        let ft = e.file_type().map_err(err)?;
        if ft.is_dir() {
            copy_dir_no_overwrite(&e.path(), &target)?;
        } else if ft.is_file() && fs::symlink_metadata(&target).is_err() {
            copy_fresh(&e.path(), &target, 0o644)?;
        }
    }
    Ok(())
}

/// When codex-box runs as root the agent does not: hands the directories codex-box itself made and
/// fills (`state/`, the default `sessions/`) to the agent's uid/gid. Never the user's own files.
pub fn hand_over(home: &CodexHome, uid: u32, gid: u32) -> Result<(), HomeError> {
    fn walk(p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
        if fs::symlink_metadata(p)?.is_dir() {
            for e in fs::read_dir(p)? {
                walk(&e?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    let mut dirs = vec![&home.state_dir];
    if home.made_sessions_dir || home.sessions_dir == home.env_dir.join("sessions") {
        dirs.push(&home.sessions_dir);
    }
    for d in dirs {
        walk(d, uid, gid).map_err(|source| HomeError::Create { path: d.clone(), source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::SessionArgs;
    use crate::host_env::HostEnv as Env;

    fn cfg(home: &Path, wd: &Path, args: SessionArgs, config_dir: Option<PathBuf>) -> SessionConfig {
        let env = Env { home: Some(home.into()), codex_config_dir: config_dir, ..Env::default() };
        let mut a = args;
        a.work_dir = Some(wd.into());
        SessionConfig::build(&a, env, wd).unwrap()
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
}
