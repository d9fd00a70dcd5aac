//! The codex home of a session, prepared on the host before the container exists.
//!
//! Layout (host): `<WORK_DIR>/.codex/.environment/` (or `--codex-home`) holds the *trusted* inputs —
//! `config.toml`, `init.sh`, `prompts/` — which the agent can never write: the whole `.codex` is mounted
//! read-only over the writable workdir, and the codex home itself is not mounted. What Codex writes lives
//! in the session's own home `homes/<id>/` (mounted at `/codex_home`; see [`super::own_home`]) and in
//! `sessions/` (or `--sessions-path`), which every session of the project shares. A session's home is
//! made fresh at its start — fresh copies of config.toml and prompts, a copy of the kept history — and
//! removed at its end, after its history and logs are merged into the kept store `state/`; so
//! nothing the agent wrote there steers the next session, and no start or end touches a home in use.
//!
//! `homes/`, `state/` and `sessions/` are written while codex-box (perhaps as root) works in them,
//! by running agents (their own home, `sessions/`) or other codex-box processes. All that work goes
//! through directory handles ([`crate::fs_handle`]): from the work dir down, no component is followed
//! if it is a link; inside, nothing is reached by path, so whatever an agent swaps, codex-box changes
//! nothing outside those trees, and what vanishes under it is skipped rather than failing the start.
//! As root, what codex-box makes there is created with the agent's owner ([`prepare_for`]); the walk
//! that follows only repairs what others left (an older codex-box, a run as another user).
//!
//! Not covered: paths outside the work dir (`--codex-home`, `--sessions-path` elsewhere, the user's
//! sources) are the user's and are followed like any path; Docker resolves the mount sources itself.
//!
//! `auth.json` is never copied: the first one found is mounted read-only, and its mode is never touched.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::own_home::{self, Lease};
use super::policy::SessionPolicy;
use crate::fs_handle::{Dir, FsError, Owner};

/// Files and directories of a home that survive from one session to the next (merged into the kept
/// store `state/` at a session's end, see [`super::own_home`]).
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
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// The prepared codex home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexHome {
    /// Trusted directory (`.codex/.environment`).
    pub env_dir: PathBuf,
    /// The session's own writable home (`homes/<id>`), mounted at /codex_home.
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
    /// The trusted prompts directory (`.environment/prompts`), if any: mounted read-only over the
    /// state's copy, like the trusted config.toml, so no running session steers another's.
    pub prompts: Option<PathBuf>,
    /// The topmost directory below the work dir that this run created (`.codex`, or `.environment`
    /// in an existing `.codex`), as (work dir, path below it): removed again when the session fails
    /// to start ([`undo`]).
    pub made_here: Option<(PathBuf, PathBuf)>,
}

/// Directories searched for config, auth.json and prompts, in order (see REQUIREMENTS.md §2.3).
pub fn search_dirs(cfg: &SessionPolicy) -> Vec<PathBuf> {
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
pub fn find_auth(cfg: &SessionPolicy, env_dir: &Path) -> Option<PathBuf> {
    if let Some(a) = &cfg.auth_file {
        return Some(a.clone());
    }
    search_dirs(cfg)
        .into_iter()
        .map(|d| d.join("auth.json"))
        .chain(std::iter::once(env_dir.join("auth.json")))
        .find(|p| p.is_file() && no_link_below(&cfg.work_dir, p))
}

/// Whether no component of `p` below `work_dir` is a symbolic link (true for paths outside it). The
/// workdir is the agent's to write: a link planted there (`codex/auth.json -> /etc/shadow`,
/// `codex/prompts -> ~/.ssh`) must not make codex-box mount or copy what it points at.
fn no_link_below(work_dir: &Path, p: &Path) -> bool {
    let Ok(rel) = p.strip_prefix(work_dir) else { return true };
    let mut cur = work_dir.to_path_buf();
    rel.components().all(|c| {
        cur.push(c);
        fs::symlink_metadata(&cur).is_ok_and(|m| !m.file_type().is_symlink())
    })
}

/// Reads a regular file without following a link at its name (nor blocking on a FIFO swapped in).
pub(crate) fn read_no_follow(p: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut data = Vec::new();
    f.read_to_end(&mut data)?;
    Ok(data)
}

/// Prepares the codex home for a session, changing no owner (see [`prepare_for`]).
pub fn prepare(cfg: &SessionPolicy) -> Result<(CodexHome, Lease), HomeError> {
    prepare_for(cfg, None)
}

/// Prepares the codex home for a session. With `agent` (codex-box runs as root, the agent does not),
/// what the agent writes — `state/` and what codex-box puts in it, and the sessions directory when
/// it is the default one or codex-box made it — is created with the agent's owner, and whatever
/// else in those trees is not the agent's is handed over (never the user's own files elsewhere).
/// The session's own home is locked by the returned [`Lease`] until [`finish`].
pub fn prepare_for(cfg: &SessionPolicy, agent: Option<Owner>) -> Result<(CodexHome, Lease), HomeError> {
    let env_dir = cfg.codex_home.clone().unwrap_or_else(|| cfg.work_dir.join(".codex/.environment"));
    let made_here = first_missing(&cfg.work_dir, &env_dir);
    let project = project_owner(&cfg.work_dir, &env_dir, agent);
    let (env, _) = open_dir(&cfg.work_dir, &env_dir, project)?;

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
            copy_into(&src, &env, "config.toml", 0o644, project)?;
        }
        from_user.push(trusted_config.clone());
    } else if !trusted_config.exists() {
        let mut fallbacks: Vec<PathBuf> = cfg.env.codex_config_dir.iter().cloned().collect();
        if let Some(h) = &cfg.env.home {
            fallbacks.push(h.join(".codex"));
            fallbacks.push(h.join(".config/codex"));
        }
        if let Some(src) = fallbacks.iter().map(|d| d.join("config.toml")).find(|p| p.is_file()) {
            copy_into(&src, &env, "config.toml", 0o644, project)?;
            from_user.push(trusted_config.clone());
        }
    }

    // Prompts: the first prompts dir found, copied without overwriting.
    let prompts_dirs = search_dirs(cfg).into_iter().map(|d| d.join("prompts"));
    if let Some(src) = prompts_dirs.into_iter().find(|p| p.is_dir() && no_link_below(&cfg.work_dir, p)) {
        if src != env_dir.join("prompts") {
            let (prompts, _) = env.create_dir("prompts", 0o755, project)?;
            copy_tree(&src, &prompts, project)?;
        }
    }

    // Init hook: --init_script is copied to init.sh and made executable.
    let init = env_dir.join("init.sh");
    if let Some(src) = &cfg.init_script {
        if *src != init {
            copy_into(src, &env, "init.sh", 0o755, project)?;
        }
        from_user.push(init.clone());
    }
    let init_hook =
        fs::metadata(&init).ok().filter(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).map(|_| init);

    let sessions_dir = cfg.sessions_path.clone().unwrap_or_else(|| env_dir.join("sessions"));
    let own_sessions = sessions_dir == env_dir.join("sessions");
    let (sessions, made_sessions_dir) = open_dir(&cfg.work_dir, &sessions_dir, agent)?;
    let (store, _) = env.create_dir(own_home::STORE, 0o755, agent)?;
    let (homes, _) = env.create_dir(own_home::HOMES, 0o755, agent)?;
    // Homes of sessions whose codex-box was killed: merged and removed; those in use are not touched.
    for w in own_home::collect(&homes, &store, agent) {
        eprintln!("codex-box: warning: {w}");
    }
    let lease = own_home::create(&homes, agent)?;
    let state_dir = env_dir.join(own_home::HOMES).join(lease.name());
    own_home::seed(&lease, &store, agent)?;
    let config = trusted_config.is_file().then_some(trusted_config);
    rebuild_state_in(lease.dir(), config.as_deref(), &env_dir.join("prompts"), agent)?;
    if let Some(agent) = agent {
        store.hand_over(agent)?;
        lease.dir().hand_over(agent)?;
        if made_sessions_dir || own_sessions {
            sessions.hand_over(agent)?;
        }
    }

    let prompts = Some(env_dir.join("prompts")).filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()));
    let home = CodexHome {
        auth: find_auth(cfg, &env_dir),
        prompts,
        config_toml: config,
        env_dir,
        state_dir,
        sessions_dir,
        init_hook,
        from_user,
        made_sessions_dir,
        made_here,
    };
    Ok((home, lease))
}

/// At a session's end (or a failed start): merges its home's history and logs into the kept store
/// and removes the home (see [`super::own_home`]); problems are warnings, never errors — the
/// session has run.
pub fn finish(home: &CodexHome, lease: Lease, agent: Option<Owner>) {
    let dirs = open_existing(home, &home.env_dir.join(own_home::HOMES))
        .and_then(|homes| Ok((homes, open_existing(home, &home.env_dir.join(own_home::STORE))?)));
    let warnings = match dirs {
        Ok((homes, store)) => own_home::finish(&homes, &store, lease, agent),
        Err(e) => vec![format!("could not keep the session's history and logs: {e}")],
    };
    for w in warnings {
        eprintln!("codex-box: warning: {w}");
    }
}

/// Who owns what codex-box makes in the project (`.codex`, `.environment`, the trusted copies): when
/// codex-box runs as root (`agent` given) on a project that is not root's, the project's owner, so
/// nothing it leaves there is root's; else whoever runs codex-box. A codex home outside the work dir
/// is the caller's.
fn project_owner(work_dir: &Path, env_dir: &Path, agent: Option<Owner>) -> Option<Owner> {
    use std::os::unix::fs::MetadataExt;
    agent?;
    below(work_dir, env_dir)?;
    let m = fs::metadata(work_dir).ok()?;
    (m.uid() != 0).then_some(Owner { uid: m.uid(), gid: m.gid() })
}

/// The first component of `target` below `work_dir` that does not exist yet (what creating `target`
/// would make): (work dir, its path below the work dir).
fn first_missing(work_dir: &Path, target: &Path) -> Option<(PathBuf, PathBuf)> {
    let rel = below(work_dir, target)?;
    let mut cur = PathBuf::new();
    for c in rel.components() {
        cur.push(c);
        if fs::symlink_metadata(work_dir.join(&cur)).is_err() {
            return Some((work_dir.to_path_buf(), cur));
        }
    }
    None
}

/// After a session that never started (the engine refused the container, an interrupt before it
/// ran): removes the directory this run created in the project ([`CodexHome::made_here`]) with all
/// codex-box put in it, never following a link, so a failed start leaves nothing behind.
pub fn undo(home: &CodexHome) -> Result<(), HomeError> {
    let Some((wd, rel)) = &home.made_here else { return Ok(()) };
    let Some(name) = rel.file_name() else { return Ok(()) };
    let root = Dir::open_trusted(wd)?;
    let dir = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => root.open_beneath(parent)?,
        None => root,
    };
    dir.remove(name)?;
    Ok(())
}

/// Opens the directory `target` of the codex home, creating what is missing (`owner` gets the last
/// component if it is created). Below the work dir, which the agent can write, no component is
/// followed if it is a link; elsewhere the path is the user's own and followed like any other.
/// Returns the directory and whether it was created.
fn open_dir(work_dir: &Path, target: &Path, owner: Option<Owner>) -> Result<(Dir, bool), HomeError> {
    if let Some(rel) = below(work_dir, target) {
        return Ok(Dir::open_trusted(work_dir)?.create_dir_beneath(rel, 0o755, owner)?);
    }
    let created = fs::symlink_metadata(target).is_err();
    fs::create_dir_all(target).map_err(|source| HomeError::Create { path: target.into(), source })?;
    let dir = Dir::open_trusted(target)?;
    if let (true, Some(o)) = (created, owner) {
        dir.set_owner(o)?;
    }
    Ok((dir, created))
}

/// `target` relative to `base` when it lies below it, in plain components only.
fn below<'a>(base: &Path, target: &'a Path) -> Option<&'a Path> {
    target.strip_prefix(base).ok().filter(|rel| rel.components().all(|c| matches!(c, Component::Normal(_))))
}

/// Opens an existing directory of a prepared home: below the work dir (the default layout,
/// `<work dir>/.codex/.environment`) no component is followed if it is a link; elsewhere only the
/// last one is not.
fn open_existing(home: &CodexHome, target: &Path) -> Result<Dir, HomeError> {
    if home.env_dir.ends_with(".codex/.environment") {
        if let Some(wd) = home.env_dir.parent().and_then(Path::parent) {
            if let Some(rel) = below(wd, target) {
                return Ok(Dir::open_trusted(wd)?.open_beneath(rel)?);
            }
        }
    }
    open_last_unfollowed(target)
}

/// Opens `path`, following links on the way (the caller's path) but not at its last component.
fn open_last_unfollowed(path: &Path) -> Result<Dir, HomeError> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            Ok(Dir::open_trusted(parent)?.open_dir(name)?)
        }
        _ => Ok(Dir::open_trusted(path)?),
    }
}

/// Removes everything from `state` but [`KEPT_STATE`] (never following links), then puts fresh copies
/// of the trusted config and prompts in. `state` itself must not be a link.
pub fn rebuild_state(state: &Path, config: Option<&PathBuf>, prompts: &Path) -> Result<(), HomeError> {
    rebuild_state_in(&open_last_unfollowed(state)?, config.map(PathBuf::as_path), prompts, None)
}

/// [`rebuild_state`] on an open `state` directory; with `agent`, what it puts in is the agent's from
/// the start. What vanishes while it works is skipped. An empty `sessions` directory is kept: it is
/// the mount point of the sessions directory in every running session of the project.
pub fn rebuild_state_in(
    state: &Dir,
    config: Option<&Path>,
    prompts: &Path,
    agent: Option<Owner>,
) -> Result<(), HomeError> {
    for name in state.entries()? {
        let Some(meta) = state.meta_of(&name)? else { continue };
        let real = (name == "history.jsonl" && meta.is_file()) || (name == "log" && meta.is_dir());
        let kept = real && KEPT_STATE.iter().any(|k| name == *k);
        let mount_point = name == "sessions" && sessions_mount_point(state);
        if !(kept || mount_point) {
            state.remove(&name)?;
        }
    }
    if let Some(c) = config {
        copy_into(c, state, "config.toml", 0o644, agent)?;
    }
    if prompts.is_dir() {
        let (dir, _) = state.create_dir("prompts", 0o755, agent)?;
        copy_tree(prompts, &dir, agent)?;
    }
    Ok(())
}

/// Whether `state/sessions` is the empty directory Docker makes as the mount point of the sessions
/// directory. It stays: removing a mount point unmounts what is mounted on it in every other mount
/// namespace, so the sessions directory would vanish from every other session of the project still
/// running. Empty, and covered by the sessions mount in every container, it steers nothing.
fn sessions_mount_point(state: &Dir) -> bool {
    state.open_dir("sessions").and_then(|d| d.entries()).is_ok_and(|e| e.is_empty())
}

/// Removes the empty `auth.json` Docker created in `state` as the mount point of the auth file (the
/// empty `sessions` mount point stays, see [`rebuild_state_in`]).
pub fn remove_mount_points(home: &CodexHome) {
    let Ok(state) = open_existing(home, &home.state_dir) else { return };
    let _ = state.remove_file_if("auth.json", |m| m.is_file() && m.len == 0);
}

/// Copies `from` to `to` through a temporary file and a rename: never half-written, never through a
/// symlink planted at `to`. The directory of `to` is the caller's path, followed like any other.
pub fn copy_fresh(from: &Path, to: &Path, mode: u32) -> Result<(), HomeError> {
    let Some(name) = to.file_name() else {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name");
        return Err(HomeError::Copy { from: from.into(), to: to.into(), source });
    };
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    copy_into(from, &Dir::open_trusted(dir)?, name, mode, None)
}

/// Copies the trusted file `from` into `dir` as `name`, replacing what is there.
fn copy_into(
    from: &Path,
    dir: &Dir,
    name: impl AsRef<std::ffi::OsStr>,
    mode: u32,
    owner: Option<Owner>,
) -> Result<(), HomeError> {
    let to = dir.path().join(name.as_ref());
    let data = fs::read(from).map_err(|source| HomeError::Copy { from: from.into(), to, source })?;
    Ok(dir.replace_file(name, &data, mode, owner)?)
}

/// Copies the trusted tree `from` (links in it are skipped) into `to`, never overwriting anything
/// there and never following a link there.
fn copy_tree(from: &Path, to: &Dir, owner: Option<Owner>) -> Result<(), HomeError> {
    let err = |source| HomeError::Copy { from: from.into(), to: to.path().into(), source };
    for e in fs::read_dir(from).map_err(err)? {
        let e = e.map_err(err)?;
        let (name, ft) = (e.file_name(), e.file_type().map_err(err)?);
        if ft.is_dir() {
            match to.create_dir(&name, 0o755, owner) {
                Ok((sub, _)) => copy_tree(&e.path(), &sub, owner)?,
                // Something else is there (a link, a file): left as it is, like a file that exists.
                Err(x) if x.vanished() => {}
                Err(x) => return Err(x.into()),
            }
        } else if ft.is_file() && to.meta_of(&name)?.is_none() {
            let data = read_no_follow(&e.path()).map_err(err)?;
            to.write_new(&name, &data, 0o644, owner)?;
        }
    }
    Ok(())
}

/// When codex-box runs as root the agent does not: hands the directories codex-box itself made and
/// fills (`state/`, the default `sessions/`) to the agent's uid/gid. Never the user's own files, and
/// never what a link in them points at. [`prepare_for`] does this already, on the handles it opened.
pub fn hand_over(home: &CodexHome, uid: u32, gid: u32) -> Result<(), HomeError> {
    let agent = Owner { uid, gid };
    open_existing(home, &home.state_dir)?.hand_over(agent)?;
    open_existing(home, &home.env_dir.join(own_home::STORE))?.hand_over(agent)?;
    if home.made_sessions_dir || home.sessions_dir == home.env_dir.join("sessions") {
        open_existing(home, &home.sessions_dir)?.hand_over(agent)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "codex_home_tests.rs"]
mod tests;
