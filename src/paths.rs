//! Path helpers shared by the session policy, the native sandbox and the macOS backend: resolving
//! links leniently (paths that do not exist yet) and asking which root contains a path.

use std::path::{Path, PathBuf};

/// `path` with every symbolic link resolved. A path that does not exist yet keeps its missing tail
/// below its deepest existing ancestor, resolved: where it is, or would be once created.
pub fn canonical_lenient(path: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(path) {
        return c;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if parent != path => canonical_lenient(parent).join(name),
        _ => path.to_path_buf(),
    }
}

/// The first of `roots` that contains `path` (both taken as [`canonical_lenient`]).
pub fn containing<'a>(path: &Path, roots: impl IntoIterator<Item = &'a PathBuf>) -> Option<&'a PathBuf> {
    let p = canonical_lenient(path);
    roots.into_iter().find(|r| p.starts_with(canonical_lenient(r)))
}

/// `p` made absolute against `cwd` (not canonicalised).
pub fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}
