//! Trust on change, in the manner of direnv's `allow`: codex-box remembers, outside the workdir (in the
//! user's state directory), the content hash of the init hook and config.toml it last ran with for each
//! workdir. New or changed files are shown and confirmed in a terminal; without one, codex-box refuses
//! and names the file and the flag that accepts it. A cloned repository cannot run its own hook unasked.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{file} is new or changed since you last approved it for {work_dir}. Review it, then run again with --trust (or run in a terminal and answer the prompt)")]
    Unapproved { file: PathBuf, work_dir: PathBuf },
    #[error("you declined {0}; nothing was started")]
    Declined(PathBuf),
    #[error("cannot record approvals in {path}: {source}; set XDG_STATE_HOME to a writable directory")]
    Store { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

/// The files whose content must be approved, with their current hashes (absent files are omitted).
pub fn current(files: &[&Path]) -> Result<BTreeMap<String, String>, TrustError> {
    let mut m = BTreeMap::new();
    for f in files {
        match std::fs::read(f) {
            Ok(data) => {
                m.insert(f.display().to_string(), hex::encode(Sha256::digest(&data)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(TrustError::Read { path: f.to_path_buf(), source }),
        }
    }
    Ok(m)
}

/// Where approvals for a workdir are kept.
pub fn store_path(state_dir: &Path, work_dir: &Path) -> PathBuf {
    let key = hex::encode(&Sha256::digest(work_dir.as_os_str().as_encoded_bytes())[..16]);
    state_dir.join("trust").join(format!("{key}.json"))
}

fn load(path: &Path) -> BTreeMap<String, String> {
    std::fs::read(path).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
}

/// Files whose current content differs from what was approved.
pub fn changed(approved: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<PathBuf> {
    now.iter().filter(|(f, h)| approved.get(*f) != Some(*h)).map(|(f, _)| PathBuf::from(f)).collect()
}

/// Checks the files; asks in a terminal, refuses without one unless `accept`. Records approvals.
/// `preapproved` files were given explicitly on this command line and count as approved.
pub fn check(
    state_dir: &Path,
    work_dir: &Path,
    files: &[&Path],
    preapproved: &[PathBuf],
    accept: bool,
    interactive: bool,
) -> Result<(), TrustError> {
    let store = store_path(state_dir, work_dir);
    let approved = load(&store);
    let now = current(files)?;
    let pending: Vec<PathBuf> = changed(&approved, &now).into_iter().filter(|f| !preapproved.contains(f)).collect();
    if !pending.is_empty() && !accept {
        if !interactive {
            return Err(TrustError::Unapproved { file: pending[0].clone(), work_dir: work_dir.into() });
        }
        for f in &pending {
            let text = std::fs::read_to_string(f).unwrap_or_else(|_| "(not text)".into());
            eprintln!("codex-box: {} is new or changed since you last approved it:", f.display());
            eprintln!("----8<----");
            for line in text.lines().take(60) {
                eprintln!("{line}");
            }
            if text.lines().count() > 60 {
                eprintln!("… ({} more lines)", text.lines().count() - 60);
            }
            eprintln!("----8<----");
            eprint!("Use it for this project? [y/N] ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                return Err(TrustError::Declined(f.clone()));
            }
        }
    }
    if approved != now {
        let dir = store.parent().expect("store has a parent");
        std::fs::create_dir_all(dir).map_err(|source| TrustError::Store { path: dir.into(), source })?;
        let tmp = store.with_extension("tmp");
        let data = serde_json::to_vec_pretty(&now).expect("map serialises");
        std::fs::write(&tmp, data)
            .and_then(|_| std::fs::rename(&tmp, &store))
            .map_err(|source| TrustError::Store { path: store.clone(), source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_changed_and_approved() {
        let t = tempfile::tempdir().unwrap();
        let (state, wd) = (t.path().join("state"), t.path().join("wd"));
        std::fs::create_dir_all(&wd).unwrap();
        let hook = wd.join("init.sh");
        std::fs::write(&hook, "echo one").unwrap();
        let files = [hook.as_path()];
        let e = check(&state, &wd, &files, &[], false, false).unwrap_err();
        assert!(e.to_string().contains("init.sh") && e.to_string().contains("--trust"), "{e}");
        check(&state, &wd, &files, &[], true, false).unwrap();
        check(&state, &wd, &files, &[], false, false).unwrap();
        std::fs::write(&hook, "echo two").unwrap();
        assert!(check(&state, &wd, &files, &[], false, false).is_err());
        check(&state, &wd, &files, std::slice::from_ref(&hook), false, false).unwrap();
        check(&state, &wd, &files, &[], false, false).unwrap();
        // A removed file needs no approval; a reappearing one does again.
        std::fs::remove_file(&hook).unwrap();
        check(&state, &wd, &files, &[], false, false).unwrap();
        std::fs::write(&hook, "echo two").unwrap();
        assert!(check(&state, &wd, &files, &[], false, false).is_err());
    }
}
