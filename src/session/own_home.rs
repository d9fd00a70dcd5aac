//! Each running session's own writable codex home, and the kept store its history and logs are
//! merged into (issue #21).
//!
//! Layout (host), below the codex home `.codex/.environment`: `homes/<id>/` is one session's home,
//! mounted at `/codex_home`, made fresh at its start and removed at its end; `state/` is the
//! store of what is kept across sessions — `history.jsonl` and `log/` — which no container mounts,
//! so only codex-box writes it. Two sessions on one project never share a writable home: neither
//! a start nor an end touches a home in use, and nothing one session writes in its home reaches
//! another, except the kept files, merged when a session ends:
//!
//! - `history.jsonl`: the lines of the session's history that the store does not hold yet are
//!   appended to it (a new home starts with a copy of the store's);
//! - `log/*`: each regular file is appended to the store's file of that name (a new home starts
//!   with no logs).
//!
//! Appends are single `O_APPEND` writes, so two sessions ending at once lose nothing of each
//! other's. A running session holds an exclusive `flock` on its home's directory for as long as
//! codex-box runs; a start collects (merges, then removes) every home whose lock is free — a
//! session whose codex-box was killed. The lock is taken by the one who made the directory, then
//! the directory is checked to be still there, so a collector racing a start cannot take a home
//! just made.
//!
//! The merge reads the agent's files through handles, never following a link, regular files only,
//! and at most [`MAX_KEPT`] bytes each; what else the agent wrote in its home is dropped with it.
//!
//! Not covered: a history that Codex trims in one session is not trimmed in the store (the store
//! only grows); an agent can read (not write) the other sessions' homes through the read-only
//! `.codex`, and can hold a lock on a dead session's home for as long as it runs, which only
//! delays that home's collection.

use std::collections::HashSet;
use std::ffi::OsString;
use std::sync::Arc;

use crate::fs_handle::{Dir, FsError, Owner};

/// The directory of the running sessions' homes, below the codex home.
pub const HOMES: &str = "homes";
/// The store of what is kept across sessions, below the codex home.
pub const STORE: &str = "state";
/// The largest kept file (history, one log) a merge reads; a larger one is left out, with a warning.
pub const MAX_KEPT: u64 = 64 << 20;

/// The lock a running session holds on its own home: while any clone lives, no other codex-box
/// collects the home.
#[derive(Clone)]
pub struct Lease {
    home: Arc<Dir>,
    name: OsString,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", self.home.path().display())
    }
}

impl Lease {
    /// The home's open directory.
    pub fn dir(&self) -> &Dir {
        &self.home
    }

    /// The home's name below `homes/`.
    pub fn name(&self) -> &std::ffi::OsStr {
        &self.name
    }
}

/// Makes a new home below `homes`, locked; returns its handle (in the lease) and its name.
pub fn create(homes: &Dir, owner: Option<Owner>) -> Result<Lease, FsError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = OsString::from(format!("{}-{:x}-{n}", std::process::id(), nanos));
        let (dir, created) = homes.create_dir(&name, 0o755, owner)?;
        // Made by someone else (a name in use), or a collector holds it, or removed it before the
        // lock was ours: another name.
        if !created || !dir.try_lock()? || dir.removed()? {
            last = Some(name);
            continue;
        }
        return Ok(Lease { home: Arc::new(dir), name });
    }
    let path = homes.path().join(last.unwrap_or_default());
    Err(FsError::Create { path, source: std::io::Error::other("no free name for a session home after 16 tries") })
}

/// Puts the kept history into a new home: a copy of the store's `history.jsonl`.
pub fn seed(lease: &Lease, store: &Dir, owner: Option<Owner>) -> Result<(), FsError> {
    if let Some(data) = store.read_regular("history.jsonl", MAX_KEPT)? {
        lease.home.write_new("history.jsonl", &data, 0o600, owner)?;
    }
    Ok(())
}

/// Collects the homes below `homes` whose session ended without doing so (their lock is free):
/// merges what they kept into `store`, then removes them. Returns the warnings (a home that could
/// not be merged or removed stays for the next start; it never stops this one).
pub fn collect(homes: &Dir, store: &Dir, owner: Option<Owner>) -> Vec<String> {
    let mut warnings = Vec::new();
    let Ok(names) = homes.entries() else { return warnings };
    for name in names {
        // Only codex-box writes `homes/` (it is below the read-only `.codex`): anything but a
        // directory is left alone.
        let Ok(dir) = homes.open_dir(&name) else { continue };
        match dir.try_lock() {
            Ok(true) => {}
            _ => continue,
        }
        if dir.removed().unwrap_or(true) {
            continue;
        }
        let lease = Lease { home: Arc::new(dir), name };
        warnings.extend(merge(&lease, store, owner));
        if let Err(e) = homes.remove(&lease.name) {
            warnings.push(format!("could not remove the ended session's home {}: {e}", lease.home.path().display()));
        }
    }
    warnings
}

/// At a session's end: merges its home's kept files into `store`, then removes the home (still
/// locked meanwhile). Returns the warnings.
pub fn finish(homes: &Dir, store: &Dir, lease: Lease, owner: Option<Owner>) -> Vec<String> {
    let mut warnings = merge(&lease, store, owner);
    if let Err(e) = homes.remove(&lease.name) {
        warnings.push(format!("could not remove the session's home {}: {e}", lease.home.path().display()));
    }
    warnings
}

/// Merges the kept files of `lease`'s home into `store` (see the module's doc). Returns warnings.
fn merge(lease: &Lease, store: &Dir, owner: Option<Owner>) -> Vec<String> {
    let mut warnings = Vec::new();
    let home = &lease.home;
    let mut warn = |what: &str, e: FsError| warnings.push(format!("could not keep {what}: {e}"));
    match home.read_regular("history.jsonl", MAX_KEPT) {
        Ok(Some(data)) => {
            if let Err(e) = merge_history(store, &data, owner) {
                warn("the session's history", e);
            }
        }
        Ok(None) => too_large(home, "history.jsonl", &mut warnings),
        Err(e) => warn("the session's history", e),
    }
    let Ok(log) = home.open_dir("log") else { return warnings };
    let Ok(names) = log.entries() else { return warnings };
    let mut store_log = None;
    for name in names {
        let data = match log.read_regular(&name, MAX_KEPT) {
            Ok(Some(d)) if !d.is_empty() => d,
            Ok(Some(_)) => continue,
            Ok(None) => {
                too_large(&log, &name, &mut warnings);
                continue;
            }
            Err(e) => {
                warnings.push(format!("could not keep the session's log: {e}"));
                continue;
            }
        };
        if store_log.is_none() {
            match store.create_dir("log", 0o755, owner) {
                Ok((d, _)) => store_log = Some(d),
                Err(e) => {
                    warnings.push(format!("could not keep the session's logs: {e}"));
                    return warnings;
                }
            }
        }
        if let Err(e) = store_log.as_ref().expect("made above").append_file(&name, &data, 0o600, owner) {
            warnings.push(format!("could not keep the session's log: {e}"));
        }
    }
    warnings
}

/// A warning when `name` in `dir` is a regular file over [`MAX_KEPT`] (else nothing: not there,
/// or not a regular file, which a merge leaves out silently).
fn too_large(dir: &Dir, name: impl AsRef<std::ffi::OsStr>, warnings: &mut Vec<String>) {
    let name = name.as_ref();
    if let Ok(Some(m)) = dir.meta_of(name) {
        if m.is_file() && m.len > MAX_KEPT {
            warnings.push(format!(
                "left out {} ({} MiB, over {} MiB): it stays out of the kept history and logs",
                dir.path().join(name).display(),
                m.len >> 20,
                MAX_KEPT >> 20
            ));
        }
    }
}

/// Appends to the store's `history.jsonl` the lines of `session` it does not hold yet, in order.
fn merge_history(store: &Dir, session: &[u8], owner: Option<Owner>) -> Result<(), FsError> {
    let kept = store.read_regular("history.jsonl", u64::MAX)?.unwrap_or_default();
    let add = new_lines(&kept, session);
    if add.is_empty() {
        return Ok(());
    }
    store.append_file("history.jsonl", &add, 0o600, owner)
}

/// The lines of `session` that `kept` does not hold, each ending in a newline (and one before them
/// when `kept` does not end in one).
pub fn new_lines(kept: &[u8], session: &[u8]) -> Vec<u8> {
    let known: HashSet<&[u8]> = kept.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for line in session.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if !known.contains(line) && seen.insert(line) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    if !out.is_empty() && !kept.is_empty() && !kept.ends_with(b"\n") {
        out.insert(0, b'\n');
    }
    out
}
