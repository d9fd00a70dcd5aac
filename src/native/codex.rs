//! `codex-box sandbox --codex`: Codex itself under the native sandbox.
//!
//! Codex runs its commands directly inside codex-box's boundary (its own bubblewrap sandbox cannot nest
//! here, see [`crate::codex_layer`]), so the boundary is drawn around Codex and everything it starts:
//!
//! * **Codex's home** is codex-box's, per project: `<state>/codex/<project>-<hash>/home` is `CODEX_HOME`,
//!   writable (sessions database, logs, caches, `tmp/`), and rebuilt at every start the way a container
//!   session's is ([`crate::session::codex_home::rebuild_state`]): everything but `history.jsonl` and `log/` is
//!   removed, then fresh copies of the trusted inputs — `config.toml` and `prompts/` from the user's
//!   Codex home (`$CODEX_HOME`, else `~/.codex`) — are put in, and stay read-only during the run.
//!   `sessions/` lives beside it (kept; linked as `home/sessions`). So nothing Codex or a command writes
//!   there steers the next run, and the user's own Codex home is never written.
//! * **auth.json** is the user's, reached read-only through a link (`home/auth.json`): Codex signs in
//!   with it, but neither Codex nor a command can change it. A ChatGPT token that expires during a run
//!   is refreshed in memory; it is not saved.
//! * **the network** reaches only Codex's API names (the built-in allowlist) and the user's
//!   `--allow-domain` names, through codex-box's proxy by name; `--network` opens it fully instead.
//! * **the workspace** (the current directory) is writable unless `-s read-only` is given, with
//!   `.git`, `.codex` and `.agents` read-only as in every native sandbox.
//! * `OPENAI_API_KEY` and `CODEX_API_KEY` are kept (Codex needs them; they are otherwise scrubbed).
//!
//! Not enforced: the agent can read the API key or auth.json it is given (see the credentials issue);
//! two concurrent runs on one project share (and rebuild) one home.

use std::path::{Path, PathBuf};

/// Environment variables Codex needs although they look like secrets.
pub const KEPT_ENV: &[&str] = &["OPENAI_API_KEY", "CODEX_API_KEY"];

/// Paths inside the prepared home that stay read-only for the run: the trusted copies.
pub const PROTECTED: &[&str] = &["config.toml", "prompts"];

#[derive(Debug, thiserror::Error)]
pub enum CodexError {
    #[error(
        "--codex: no `codex` program on PATH; install the Codex CLI (npm install -g @openai/codex) or add it to PATH"
    )]
    NoCodex,
    #[error("--codex needs a state directory for Codex's home: set HOME or XDG_STATE_HOME")]
    NoStateDir,
    #[cfg(unix)]
    #[error("--codex: {0}")]
    Home(#[from] crate::session::codex_home::HomeError),
    #[error("--codex: cannot link {link} to {target}: {source}")]
    Link { link: PathBuf, target: PathBuf, source: std::io::Error },
    #[error(transparent)]
    InnerSandbox(#[from] crate::codex_layer::InnerSandboxError),
}

/// Where a project's Codex home lives (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `CODEX_HOME` of the run.
    pub home: PathBuf,
    /// Kept across runs; linked as `home/sessions`.
    pub sessions: PathBuf,
    /// The user's Codex home: the source of the trusted inputs and of auth.json.
    pub user_home: PathBuf,
}

impl Layout {
    /// `state_dir` is codex-box's state directory; `codex_home_env` is `$CODEX_HOME`.
    pub fn new(state_dir: &Path, project: &Path, home: Option<&Path>, codex_home_env: Option<&Path>) -> Option<Layout> {
        use sha2::Digest;
        let hash = hex::encode(&sha2::Sha256::digest(project.as_os_str().as_encoded_bytes())[..6]);
        let name: String = project
            .file_name()
            .map(|n| n.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect())
            .unwrap_or_else(|| "root".into());
        let base = state_dir.join("codex").join(format!("{name}-{hash}"));
        let user_home = codex_home_env.map(Path::to_path_buf).or_else(|| home.map(|h| h.join(".codex")))?;
        Some(Layout { home: base.join("home"), sessions: base.join("sessions"), user_home })
    }

    /// The trusted paths inside the home that are read-only during the run.
    pub fn protected(&self) -> Vec<PathBuf> {
        PROTECTED.iter().map(|p| self.home.join(p)).collect()
    }
}

/// Codex's command line: the program, codex-box's layer (`-c sandbox_mode=…`), the user's arguments.
pub fn argv(program: &Path, user_args: &[String]) -> Vec<String> {
    let mut argv = vec![program.display().to_string()];
    argv.extend(crate::codex_layer::CLI_OVERRIDE.iter().map(|s| s.to_string()));
    argv.extend(user_args.iter().cloned());
    argv
}

/// Finds `codex` on `path` (a PATH value).
#[cfg(unix)]
pub fn find_codex(path: Option<&std::ffi::OsStr>) -> Result<PathBuf, CodexError> {
    std::env::split_paths(path.ok_or(CodexError::NoCodex)?)
        .map(|d| d.join("codex"))
        .find(|p| super::exe::is_executable(p))
        .ok_or(CodexError::NoCodex)
}

/// Makes the home for this run: creates it, rebuilds it from the trusted inputs, links sessions and
/// auth.json. Runs before the sandbox exists (nothing inside runs concurrently on a first start;
/// a concurrent run on the same project is the shared-home case the module doc names).
#[cfg(unix)]
pub fn prepare(layout: &Layout) -> Result<(), CodexError> {
    use crate::session::codex_home::{rebuild_state, HomeError};
    for d in [&layout.home, &layout.sessions] {
        std::fs::create_dir_all(d).map_err(|source| HomeError::Create { path: d.clone(), source })?;
    }
    let config = layout.user_home.join("config.toml");
    let config = config.is_file().then_some(config);
    rebuild_state(&layout.home, config.as_ref(), &layout.user_home.join("prompts"))?;
    let link = |target: &Path, name: &str| -> Result<(), CodexError> {
        let link = layout.home.join(name);
        std::os::unix::fs::symlink(target, &link).map_err(|source| CodexError::Link {
            link,
            target: target.to_path_buf(),
            source,
        })
    };
    // An empty `sessions` directory is kept by the rebuild (a container's mount point); here the
    // name is the link's, whatever a run left there.
    let _ = std::fs::remove_dir(layout.home.join("sessions"));
    link(&layout.sessions, "sessions")?;
    let auth = layout.user_home.join("auth.json");
    if auth.is_file() {
        link(&auth, "auth.json")?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn layout_is_per_project_under_the_state_dir() {
        let l = Layout::new(Path::new("/s/codex-box"), Path::new("/w/my app"), Some(Path::new("/h")), None).unwrap();
        assert!(
            l.home.to_string_lossy().starts_with("/s/codex-box/codex/my_app-") && l.home.ends_with("home"),
            "{l:?}"
        );
        assert_eq!(l.sessions, l.home.parent().unwrap().join("sessions"));
        assert_eq!(l.user_home, PathBuf::from("/h/.codex"));
        let other =
            Layout::new(Path::new("/s/codex-box"), Path::new("/x/my app"), Some(Path::new("/h")), None).unwrap();
        assert_ne!(l.home, other.home, "two projects of one name get two homes");
        let env = Layout::new(Path::new("/s"), Path::new("/w"), Some(Path::new("/h")), Some(Path::new("/c"))).unwrap();
        assert_eq!(env.user_home, PathBuf::from("/c"), "$CODEX_HOME wins");
        assert_eq!(l.protected(), vec![l.home.join("config.toml"), l.home.join("prompts")]);
    }

    #[test]
    fn codex_gets_the_layer_before_the_users_arguments() {
        let a = argv(Path::new("/usr/bin/codex"), &["exec".into(), "-m".into(), "o3".into(), "go".into()]);
        assert_eq!(a, ["/usr/bin/codex", "-c", "sandbox_mode=\"danger-full-access\"", "exec", "-m", "o3", "go"]);
    }

    #[test]
    fn the_home_is_rebuilt_from_the_trusted_inputs_and_links_sessions_and_auth() {
        let t = tempfile::tempdir().unwrap();
        let user = t.path().join("user/.codex");
        std::fs::create_dir_all(user.join("prompts")).unwrap();
        std::fs::write(user.join("config.toml"), "model = \"m\"\n").unwrap();
        std::fs::write(user.join("prompts/p.md"), "p").unwrap();
        std::fs::write(user.join("auth.json"), "{}").unwrap();
        let l = Layout::new(&t.path().join("state"), Path::new("/w/p"), Some(&t.path().join("user")), None).unwrap();
        prepare(&l).unwrap();
        // What a run wrote: a steering file, a changed config, history (kept), a session (kept).
        std::fs::write(l.home.join("AGENTS.md"), "obey").unwrap();
        std::fs::write(l.home.join("config.toml"), "evil").unwrap();
        std::fs::write(l.home.join("history.jsonl"), "h").unwrap();
        std::fs::write(l.home.join("sessions/s.jsonl"), "s").unwrap();
        prepare(&l).unwrap();
        assert!(!l.home.join("AGENTS.md").exists());
        assert_eq!(std::fs::read_to_string(l.home.join("config.toml")).unwrap(), "model = \"m\"\n");
        assert_eq!(std::fs::read_to_string(l.home.join("prompts/p.md")).unwrap(), "p");
        assert_eq!(std::fs::read_to_string(l.home.join("history.jsonl")).unwrap(), "h");
        assert_eq!(std::fs::read_to_string(l.sessions.join("s.jsonl")).unwrap(), "s");
        assert_eq!(std::fs::read_link(l.home.join("auth.json")).unwrap(), user.join("auth.json"));
        assert_eq!(
            std::fs::read_to_string(user.join("config.toml")).unwrap(),
            "model = \"m\"\n",
            "the user's untouched"
        );
    }

    #[test]
    fn no_codex_on_path_is_explained() {
        let t = tempfile::tempdir().unwrap();
        let e = find_codex(Some(t.path().as_os_str())).unwrap_err().to_string();
        assert!(e.contains("npm install -g @openai/codex"), "{e}");
    }
}
