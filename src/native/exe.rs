//! Finding the program to run: the one `find_exe` of every backend, with what differs by platform
//! declared as a [`Lookup`] ([`LINUX`], [`MACOS`], [`WINDOWS`]).
//!
//! A command that names a path is taken as given; otherwise the directories of PATH (the scrubbed
//! environment's, or the platform's default when it has none) are searched in order, each with the
//! platform's suffixes, for the first candidate the platform can run. What it does not do: read the
//! host's PATH itself (the caller passes the sandbox's), resolve symbolic links, or honour PATHEXT
//! on Windows (the suffixes are a fixed list). It compiles everywhere, so every platform's lookup
//! is unit-tested on Linux.

use std::path::{Path, PathBuf};

/// How one platform looks a command up.
#[derive(Clone, Copy)]
pub struct Lookup {
    /// The directories searched when the environment has no PATH.
    pub default_path: &'static str,
    /// What separates PATH's directories.
    pub separator: char,
    /// Appended to the command in this order ("" is the command itself).
    pub suffixes: &'static [&'static str],
    /// Whether the command names a path (then it is not searched for).
    pub names_a_path: fn(&str) -> bool,
    /// Whether a candidate is something to run.
    pub runnable: fn(&Path) -> bool,
}

/// The command as given when it names a path, else the first runnable candidate on `path` (`None`:
/// the platform's default directories).
pub fn find_exe(cmd: &str, path: Option<&str>, how: &Lookup) -> Option<PathBuf> {
    if (how.names_a_path)(cmd) {
        return Some(PathBuf::from(cmd));
    }
    path.unwrap_or(how.default_path)
        .split(how.separator)
        .filter(|d| !d.is_empty())
        .find_map(|d| how.suffixes.iter().map(|s| Path::new(d).join(format!("{cmd}{s}"))).find(|p| (how.runnable)(p)))
}

/// Whether `p` is a regular file with an execute bit (what Unix runs from PATH).
#[cfg(unix)]
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(unix)]
fn has_slash(cmd: &str) -> bool {
    cmd.contains('/')
}

/// Linux: a command with a `/` is a path; PATH defaults to /usr/local/bin:/usr/bin:/bin.
#[cfg(unix)]
pub const LINUX: Lookup = Lookup {
    default_path: "/usr/local/bin:/usr/bin:/bin",
    separator: ':',
    suffixes: &[""],
    names_a_path: has_slash,
    runnable: is_executable,
};

/// macOS: as Linux, with PATH defaulting to /usr/bin:/bin:/usr/sbin:/sbin.
#[cfg(unix)]
pub const MACOS: Lookup = Lookup { default_path: "/usr/bin:/bin:/usr/sbin:/sbin", ..LINUX };

/// Windows: a command of more than one component (or absolute) is a path; PATH is `;`-separated with
/// no default; .exe, .com, .bat and .cmd are tried before the bare name; any file is runnable.
pub const WINDOWS: Lookup = Lookup {
    default_path: "",
    separator: ';',
    suffixes: &[".exe", ".com", ".bat", ".cmd", ""],
    names_a_path: |cmd| {
        let p = Path::new(cmd);
        p.components().count() > 1 || p.is_absolute()
    },
    runnable: |p| p.is_file(),
};

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(p: &Path, mode: u32) {
        std::fs::write(p, "").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn unix_finds_the_first_executable_on_path() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        file(&a.path().join("tool"), 0o644);
        file(&b.path().join("tool"), 0o755);
        let path = format!("{}::{}", a.path().display(), b.path().display());
        assert_eq!(find_exe("tool", Some(&path), &LINUX), Some(b.path().join("tool")), "not executable: skipped");
        assert_eq!(find_exe("missing", Some(&path), &LINUX), None);
        assert_eq!(find_exe("./tool", Some(&path), &LINUX), Some(PathBuf::from("./tool")), "a path is taken as given");
        let sh = find_exe("sh", None, &LINUX).unwrap();
        assert!(["/usr/local/bin/sh", "/usr/bin/sh", "/bin/sh"].contains(&sh.to_str().unwrap()), "{sh:?}");
        assert_eq!(MACOS.default_path, "/usr/bin:/bin:/usr/sbin:/sbin");
    }

    #[test]
    fn windows_tries_the_suffixes_in_order_on_a_semicolon_path() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        file(&a.path().join("tool.cmd"), 0o644);
        file(&b.path().join("tool.exe"), 0o644);
        file(&b.path().join("tool.bat"), 0o644);
        let path = format!("{};{}", a.path().display(), b.path().display());
        assert_eq!(find_exe("tool", Some(&path), &WINDOWS), Some(a.path().join("tool.cmd")), "first directory first");
        let path = b.path().display().to_string();
        assert_eq!(find_exe("tool", Some(&path), &WINDOWS), Some(b.path().join("tool.exe")), ".exe before .bat");
        assert_eq!(find_exe("tool", None, &WINDOWS), None, "no default PATH");
        assert_eq!(find_exe("dir/tool", None, &WINDOWS), Some(PathBuf::from("dir/tool")));
    }
}
