//! Canonical paths for Seatbelt, which matches the resolved path of a file (`/tmp/x` is seen as
//! `/private/tmp/x`). Touches the filesystem only to resolve symbolic links; compiled everywhere and
//! tested on Linux with real links. It enforces nothing.

use std::path::PathBuf;

use crate::policy::FsPolicy;

/// `path` with every symbolic link resolved; a path that does not exist yet (a protected `.git` not
/// created yet) keeps its missing tail below its deepest existing ancestor, resolved.
pub use crate::config::canonical_lenient as canonical;

fn all(list: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in list.iter().map(|p| canonical(p)) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The filesystem policy with canonical, de-duplicated paths.
pub fn canonical_fs(fs: &FsPolicy) -> FsPolicy {
    FsPolicy {
        read_roots: all(&fs.read_roots),
        write_roots: all(&fs.write_roots),
        protected: all(&fs.protected),
        deny_read: all(&fs.deny_read),
        shared_tmp: fs.shared_tmp,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_are_resolved_and_missing_tails_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap().join("real dir");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(canonical(&link), real);
        assert_eq!(canonical(&link.join(".git")), real.join(".git"));
        assert_eq!(canonical(&link.join("a/b")), real.join("a/b"));
        let fs = canonical_fs(&FsPolicy { write_roots: vec![link.clone(), real.clone()], ..FsPolicy::default() });
        assert_eq!(fs.write_roots, vec![real], "a root and a link to it are one root");
    }
}
