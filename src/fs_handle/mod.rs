//! Directory handles for host-side work in trees an agent can write at the same moment.
//!
//! codex-box, sometimes as root, creates, fills, cleans and hands over directories that a running
//! agent can change while it works (the codex home's `state/` and `sessions/`, shared by every
//! session of a project). Work done there by path can be redirected: an entry seen as a directory
//! can be a symbolic link a microsecond later, and the kernel follows every component of a path but
//! the last. A [`Dir`] is an open directory, and everything is done relative to one, one path
//! component at a time, never following a link:
//!
//! - directories are opened with `openat(O_DIRECTORY | O_NOFOLLOW)`; a path of several components
//!   below a handle with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it
//!   (Linux 5.6), else component by component with the same result;
//! - owners change with `fchown` on an open directory or `fchownat(AT_SYMLINK_NOFOLLOW)` on an
//!   entry, and only where they differ;
//! - entries go with `unlinkat`; files are made with `O_CREAT | O_EXCL | O_NOFOLLOW`, given their
//!   owner and mode through their descriptor, and put in place with `renameat`.
//!
//! Guaranteed: whatever an agent swaps, and whenever, nothing outside the tree below the handle a
//! walk starts from is opened, changed or removed. An entry that vanishes or changes type while it
//! is worked on is skipped (or looked at again), never an error, so one session's busy agent cannot
//! make another session fail to start.
//!
//! Not guaranteed: a handle is only as good as the way it was opened — [`Dir::open_trusted`]
//! follows links and is for paths the user chose, which no agent can write. A hard link is inside
//! the tree as far as this module can tell (the kernel refuses links across mounts, and, with
//! `fs.protected_hardlinks`, to files the agent does not own). What codex-box writes can be changed
//! by the agent afterwards, and an entry a concurrent agent keeps refilling may outlive a removal.
//! Walks go [`MAX_DEPTH`] levels deep and no further.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, Gid, Uid};

/// How deep a walk or a removal goes below its handle (Codex's own trees are a few levels deep).
/// Each level holds one descriptor open.
pub const MAX_DEPTH: usize = 64;

/// How often an entry that changes under a removal or a replacement is looked at again.
const ATTEMPTS: usize = 4;

/// How many such second looks one removal takes in all.
const MAX_LOOKS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot open the directory {path}: {source}{}", advice(.source))]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot create {path}: {source}{}", advice(.source))]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot read the directory {path}: {source}{}", advice(.source))]
    List { path: PathBuf, source: io::Error },
    #[error("cannot look at {path}: {source}{}", advice(.source))]
    Stat { path: PathBuf, source: io::Error },
    #[error("cannot change the owner of {path}: {source}{}", advice(.source))]
    Chown { path: PathBuf, source: io::Error },
    #[error("cannot change the mode of {path}: {source}{}", advice(.source))]
    Chmod { path: PathBuf, source: io::Error },
    #[error("cannot remove {path}: {source}{}; remove it by hand", advice(.source))]
    Remove { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}{}", advice(.source))]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} is a symbolic link, and codex-box never follows one where an agent can write; replace it with a real directory")]
    Link { path: PathBuf },
    #[error("{name} is not a plain name below {dir}: codex-box goes one path component at a time there, never `..`")]
    BadName { dir: PathBuf, name: PathBuf },
}

impl FsError {
    /// The system error, if there is one.
    pub fn io(&self) -> Option<&io::Error> {
        match self {
            FsError::Open { source, .. }
            | FsError::Create { source, .. }
            | FsError::List { source, .. }
            | FsError::Stat { source, .. }
            | FsError::Chown { source, .. }
            | FsError::Chmod { source, .. }
            | FsError::Remove { source, .. }
            | FsError::Write { source, .. } => Some(source),
            FsError::Link { .. } | FsError::BadName { .. } => None,
        }
    }

    /// The system error, for callers that report an `io::Error` (a link in the way is `ELOOP`, a
    /// bad name `InvalidInput`).
    pub fn into_io(self) -> io::Error {
        match self {
            FsError::Open { source, .. }
            | FsError::Create { source, .. }
            | FsError::List { source, .. }
            | FsError::Stat { source, .. }
            | FsError::Chown { source, .. }
            | FsError::Chmod { source, .. }
            | FsError::Remove { source, .. }
            | FsError::Write { source, .. } => source,
            FsError::Link { .. } => Errno::ELOOP.into(),
            e @ FsError::BadName { .. } => io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
        }
    }

    /// Whether the entry vanished or changed type (a directory swapped for a link or a file): what a
    /// racing agent causes, skipped by walks.
    pub fn vanished(&self) -> bool {
        matches!(self, FsError::Link { .. }) || self.io().is_some_and(vanished)
    }
}

fn vanished(e: &io::Error) -> bool {
    matches!(Errno::from_raw(e.raw_os_error().unwrap_or(0)), Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP)
}

fn advice(e: &io::Error) -> &'static str {
    match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
        Errno::ELOOP => "; a symbolic link is in the way, and codex-box never follows one where an agent can write",
        Errno::ENOTDIR => "; a directory was expected there",
        Errno::EACCES | Errno::EPERM => "; check its owner and permissions",
        Errno::EROFS => "; the file system is read-only",
        Errno::EMFILE | Errno::ENFILE => "; too many open files: raise the limit (ulimit -n)",
        _ => "",
    }
}

/// A uid and gid to give files to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What `lstat` says about an entry (never through a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    pub len: u64,
}

// `mode_t` is a u16 on macOS: the conversions are not useless there.
#[allow(clippy::useless_conversion)]
impl Meta {
    fn of(st: &stat::FileStat) -> Meta {
        Meta {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: u32::from(st.st_mode),
            len: u64::try_from(st.st_size).unwrap_or(0),
        }
    }
    fn kind(&self) -> u32 {
        self.mode & u32::from(libc::S_IFMT)
    }
    pub fn is_dir(&self) -> bool {
        self.kind() == u32::from(libc::S_IFDIR)
    }
    pub fn is_file(&self) -> bool {
        self.kind() == u32::from(libc::S_IFREG)
    }
    pub fn is_symlink(&self) -> bool {
        self.kind() == u32::from(libc::S_IFLNK)
    }
    fn owned_by(&self, o: Owner) -> bool {
        (self.uid, self.gid) == (o.uid, o.gid)
    }
}

/// What a walk or a removal did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Walk {
    /// Entries whose owner changed, or that were removed.
    pub changed: u64,
    /// Entries that vanished or changed type while looked at.
    pub skipped: u64,
    /// Directories not entered: deeper than [`MAX_DEPTH`].
    pub too_deep: u64,
    /// Entries a removal gave up on after a few looks (something kept changing them).
    pub left: u64,
}

/// An open directory. Every operation is relative to it and never follows a link; `path` is only
/// for messages.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open(2)/openat(2) in this module and nothing
    // else owns it; the OwnedFd closes it exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn dir_flags() -> OFlag {
    // O_NONBLOCK: should the kernel ever get past O_DIRECTORY to a FIFO, the open does not hang.
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits as libc::mode_t)
}

/// Where walks pause so unit tests can change the tree at the moment a racing agent would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// The entry was listed and is about to be looked at.
    Listed,
    /// The entry was looked at (`lstat`) and is about to be opened, changed or removed.
    Looked,
}

#[cfg(test)]
type Hook = Box<dyn FnMut(&Path, &OsStr, Point)>;

#[cfg(test)]
thread_local! {
    static RACE: std::cell::RefCell<Option<Hook>> = std::cell::RefCell::new(None);
}

fn race_point(dir: &Dir, name: &OsStr, at: Point) {
    #[cfg(test)]
    RACE.with(|r| {
        if let Some(f) = r.borrow_mut().as_mut() {
            f(&dir.path, name, at)
        }
    });
    #[cfg(not(test))]
    let _ = (dir, name, at);
}

impl Dir {
    /// Opens `path` following links: only for a path the user chose and no agent can write (the
    /// work dir, `--codex-home`, the state directory). Everything below is then reached through
    /// the handle.
    pub fn open_trusted(path: &Path) -> Result<Dir, FsError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        fcntl::open(path, flags, Mode::empty())
            .map(|fd| Dir { fd: own(fd), path: path.to_path_buf() })
            .map_err(|e| FsError::Open { path: path.to_path_buf(), source: e.into() })
    }

    /// The path this handle was opened as (for messages; never used to reach anything).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn name<'a>(&self, name: &'a OsStr) -> Result<&'a OsStr, FsError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
            return Err(FsError::BadName { dir: self.path.clone(), name: name.into() });
        }
        Ok(name)
    }

    fn components<'a>(&self, rel: &'a Path) -> Result<Vec<&'a OsStr>, FsError> {
        rel.components()
            .filter(|c| *c != Component::CurDir)
            .map(|c| match c {
                Component::Normal(n) => Ok(n),
                _ => Err(FsError::BadName { dir: self.path.clone(), name: rel.into() }),
            })
            .collect()
    }

    /// Opens the directory `name` in this one; a link or a non-directory there is an error
    /// (`ELOOP`/`ENOTDIR`, see [`FsError::vanished`]).
    pub fn open_dir(&self, name: impl AsRef<OsStr>) -> Result<Dir, FsError> {
        let name = self.name(name.as_ref())?;
        let path = self.path.join(name);
        match fcntl::openat(Some(self.raw()), name, dir_flags(), Mode::empty()) {
            Ok(fd) => Ok(Dir { fd: own(fd), path }),
            // Linux says ENOTDIR for a link opened with O_DIRECTORY | O_NOFOLLOW: say which it is.
            Err(e @ (Errno::ENOTDIR | Errno::ELOOP)) => match self.meta_of(name) {
                Ok(Some(m)) if m.is_symlink() => Err(FsError::Link { path }),
                _ => Err(FsError::Open { path, source: e.into() }),
            },
            Err(e) => Err(FsError::Open { path, source: e.into() }),
        }
    }

    /// Opens the directory at `rel` below this one, refusing `..`, absolute paths and a link at
    /// any component.
    pub fn open_beneath(&self, rel: &Path) -> Result<Dir, FsError> {
        let parts = self.components(rel)?;
        #[cfg(target_os = "linux")]
        if !parts.is_empty() {
            let how = fcntl::OpenHow::new().flags(dir_flags()).resolve(
                fcntl::ResolveFlag::RESOLVE_BENEATH
                    | fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                    | fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
            let path = self.path.join(rel);
            match fcntl::openat2(self.raw(), rel, how) {
                Ok(fd) => return Ok(Dir { fd: own(fd), path }),
                // No openat2 (before Linux 5.6, or refused by a seccomp filter), a rename elsewhere
                // on the system asked for a retry, or a link or a file on the way: the walk below
                // gives the same answer, and says which component it is.
                Err(
                    Errno::ENOSYS
                    | Errno::EPERM
                    | Errno::EINVAL
                    | Errno::E2BIG
                    | Errno::EAGAIN
                    | Errno::ELOOP
                    | Errno::ENOTDIR
                    | Errno::EXDEV,
                ) => {}
                Err(e) => return Err(FsError::Open { path, source: e.into() }),
            }
        }
        self.open_components(&parts)
    }

    fn open_components(&self, parts: &[&OsStr]) -> Result<Dir, FsError> {
        let mut dir = Dir { fd: self.fd.try_clone().map_err(|source| self.open_err(source))?, path: self.path.clone() };
        for part in parts {
            dir = dir.open_dir(part)?;
        }
        Ok(dir)
    }

    fn open_err(&self, source: io::Error) -> FsError {
        FsError::Open { path: self.path.clone(), source }
    }

    /// Creates the directory `name` (mode `mode`, less the umask) or opens the one there, never
    /// following a link; `owner` is given to a directory it creates. Returns the directory and
    /// whether it was created.
    pub fn create_dir(&self, name: impl AsRef<OsStr>, bits: u32, owner: Option<Owner>) -> Result<(Dir, bool), FsError> {
        let name = self.name(name.as_ref())?;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let created = match stat::mkdirat(Some(self.raw()), name, mode(bits)) {
                Ok(()) => true,
                Err(Errno::EEXIST) => false,
                Err(e) => return Err(FsError::Create { path: self.path.join(name), source: e.into() }),
            };
            match self.open_dir(name) {
                Ok(d) => {
                    if let (true, Some(o)) = (created, owner) {
                        d.set_owner(o)?;
                    }
                    return Ok((d, created));
                }
                // Removed between the two calls (by another codex-box cleaning up): again.
                Err(e) if e.io().and_then(io::Error::raw_os_error) == Some(libc::ENOENT) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.open_err(Errno::ENOENT.into())))
    }

    /// Creates (or opens) every directory of `rel` below this one, never following a link.
    /// Returns the last one and whether it was created.
    pub fn create_dir_beneath(&self, rel: &Path, bits: u32, owner: Option<Owner>) -> Result<(Dir, bool), FsError> {
        let parts = self.components(rel)?;
        let mut dir = self.open_components(&[])?;
        let mut created = false;
        for part in parts {
            (dir, created) = dir.create_dir(part, bits, owner)?;
        }
        Ok((dir, created))
    }

    /// The names in this directory (without `.` and `..`); none when it was removed meanwhile.
    pub fn entries(&self) -> Result<Vec<OsString>, FsError> {
        let err = |e: Errno| FsError::List { path: self.path.clone(), source: e.into() };
        let mut d = match nix::dir::Dir::openat(Some(self.raw()), ".", dir_flags(), Mode::empty()) {
            Ok(d) => d,
            Err(Errno::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut names = Vec::new();
        for e in d.iter() {
            let n = e.map_err(err)?.file_name().to_bytes().to_vec();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(&n).to_os_string());
            }
        }
        Ok(names)
    }

    /// This directory's own metadata.
    pub fn meta(&self) -> Result<Meta, FsError> {
        stat::fstat(self.raw())
            .map(|s| Meta::of(&s))
            .map_err(|e| FsError::Stat { path: self.path.clone(), source: e.into() })
    }

    /// The entry `name` itself (a link is not followed); `None` when there is none.
    pub fn meta_of(&self, name: impl AsRef<OsStr>) -> Result<Option<Meta>, FsError> {
        let name = self.name(name.as_ref())?;
        match stat::fstatat(Some(self.raw()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(Meta::of(&s))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(FsError::Stat { path: self.path.join(name), source: e.into() }),
        }
    }

    /// Gives this directory to `owner` unless it has it already; returns whether it changed.
    pub fn set_owner(&self, owner: Owner) -> Result<bool, FsError> {
        if self.meta()?.owned_by(owner) {
            return Ok(false);
        }
        unistd::fchown(self.raw(), Some(Uid::from_raw(owner.uid)), Some(Gid::from_raw(owner.gid)))
            .map(|()| true)
            .map_err(|e| FsError::Chown { path: self.path.clone(), source: e.into() })
    }

    /// Takes an exclusive `flock` on this directory without waiting; returns whether it got it.
    /// Held until this handle (every clone of its descriptor) is closed — so also when the
    /// process is killed.
    pub fn try_lock(&self) -> Result<bool, FsError> {
        // SAFETY: flock(2) on a descriptor this handle owns; no memory is passed.
        let r = unsafe { libc::flock(self.raw(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(true);
        }
        match Errno::last() {
            Errno::EWOULDBLOCK => Ok(false),
            e => Err(FsError::Open { path: self.path.clone(), source: e.into() }),
        }
    }

    /// Whether this directory was removed since it was opened (no name refers to it any more).
    pub fn removed(&self) -> Result<bool, FsError> {
        stat::fstat(self.raw())
            .map(|s| s.st_nlink == 0)
            .map_err(|e| FsError::Stat { path: self.path.clone(), source: e.into() })
    }

    /// Sets this directory's permission bits.
    pub fn set_mode(&self, bits: u32) -> Result<(), FsError> {
        stat::fchmod(self.raw(), mode(bits)).map_err(|e| FsError::Chmod { path: self.path.clone(), source: e.into() })
    }
}

mod files;
mod walk;

#[cfg(test)]
pub(crate) mod tests;
