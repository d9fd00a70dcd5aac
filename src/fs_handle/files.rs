//! Files in a directory handle: made new (`O_EXCL | O_NOFOLLOW`) with their owner and mode set
//! through their descriptor, put in place by `renameat`, removed by `unlinkat` — never through a link.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};

use super::{mode, own, Dir, FsError, Meta, Owner, ATTEMPTS};

impl Dir {
    /// Removes the entry `name` when it is not a directory and `pred` holds for it; returns whether
    /// it did.
    pub fn remove_file_if(&self, name: impl AsRef<OsStr>, pred: impl FnOnce(&Meta) -> bool) -> Result<bool, FsError> {
        let name = self.name(name.as_ref())?;
        match self.meta_of(name)? {
            Some(m) if !m.is_dir() && pred(&m) => {}
            _ => return Ok(false),
        }
        match unistd::unlinkat(Some(self.raw()), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT | Errno::EISDIR) => Ok(false),
            Err(e) => Err(FsError::Remove { path: self.path.join(name), source: e.into() }),
        }
    }

    /// Removes the directory `name` if it is empty; returns whether it did.
    pub fn remove_empty_dir(&self, name: impl AsRef<OsStr>) -> Result<bool, FsError> {
        let name = self.name(name.as_ref())?;
        match unistd::unlinkat(Some(self.raw()), name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOTDIR) => Ok(false),
            Err(e) => Err(FsError::Remove { path: self.path.join(name), source: e.into() }),
        }
    }

    /// Creates the file `name`, which must not exist (not even as a link), open for writing.
    pub fn create_file(&self, name: impl AsRef<OsStr>, bits: u32) -> Result<File, FsError> {
        let name = self.name(name.as_ref())?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        fcntl::openat(Some(self.raw()), name, flags, mode(bits))
            .map(|fd| File::from(own(fd)))
            .map_err(|e| FsError::Create { path: self.path.join(name), source: e.into() })
    }

    /// Writes a new file `name` with `data`, mode `bits` and `owner`, unless something (anything)
    /// is there already; returns whether it wrote.
    pub fn write_new(
        &self,
        name: impl AsRef<OsStr>,
        data: &[u8],
        bits: u32,
        owner: Option<Owner>,
    ) -> Result<bool, FsError> {
        let name = self.name(name.as_ref())?;
        let file = match self.create_file(name, 0o600) {
            Ok(f) => f,
            Err(e) if e.io().map(io::Error::kind) == Some(io::ErrorKind::AlreadyExists) => return Ok(false),
            Err(e) => return Err(e),
        };
        if let Err(e) = fill(file, data, bits, owner) {
            let _ = unistd::unlinkat(Some(self.raw()), name, UnlinkatFlags::NoRemoveDir);
            return Err(FsError::Write { path: self.path.join(name), source: e });
        }
        Ok(true)
    }

    /// Puts a file `name` with `data`, mode `bits` and `owner` in place of whatever is there (a
    /// link is replaced, never followed; a directory is removed first), through a new temporary
    /// file and a rename, so it is never seen half-written.
    pub fn replace_file(
        &self,
        name: impl AsRef<OsStr>,
        data: &[u8],
        bits: u32,
        owner: Option<Owner>,
    ) -> Result<(), FsError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = self.name(name.as_ref())?;
        let path = self.path.join(name);
        let mut last: io::Error = Errno::ENOENT.into();
        for _ in 0..ATTEMPTS {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut tmp = OsString::from(format!(".codex-box-{}-{n}.", std::process::id()));
            tmp.push(name);
            let file = match self.create_file(&tmp, 0o600) {
                Ok(f) => f,
                Err(e) if e.io().map(io::Error::kind) == Some(io::ErrorKind::AlreadyExists) => continue,
                Err(e) => return Err(e),
            };
            let result = fill(file, data, bits, owner).and_then(|()| {
                fcntl::renameat(Some(self.raw()), tmp.as_os_str(), Some(self.raw()), name).map_err(io::Error::from)
            });
            let Err(e) = result else { return Ok(()) };
            let _ = unistd::unlinkat(Some(self.raw()), tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
            match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                // A directory is in the way: removed, then again.
                Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST => {
                    self.remove(name)?;
                }
                // The temporary file was removed under us (another codex-box cleaning): again.
                Errno::ENOENT => {}
                _ => return Err(FsError::Write { path, source: e }),
            }
            last = e;
        }
        Err(FsError::Write { path, source: last })
    }
}

impl Dir {
    /// Reads the regular file `name` without following a link there (nor blocking on a FIFO
    /// swapped in): `None` when there is none, or something else is there (a link, a directory, a
    /// device), or it is larger than `max` bytes.
    pub fn read_regular(&self, name: impl AsRef<OsStr>, max: u64) -> Result<Option<Vec<u8>>, FsError> {
        use std::io::Read;
        let name = self.name(name.as_ref())?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let file = match fcntl::openat(Some(self.raw()), name, flags, stat::Mode::empty()) {
            Ok(fd) => File::from(own(fd)),
            Err(Errno::ENOENT | Errno::ELOOP | Errno::ENXIO | Errno::EISDIR) => return Ok(None),
            Err(e) => return Err(FsError::Stat { path: self.path.join(name), source: e.into() }),
        };
        let err = |source| FsError::Stat { path: self.path.join(name), source };
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() || meta.len() > max {
            return Ok(None);
        }
        let mut data = Vec::with_capacity(meta.len() as usize);
        file.take(max.saturating_add(1)).read_to_end(&mut data).map_err(err)?;
        Ok((data.len() as u64 <= max).then_some(data))
    }

    /// Appends `data` to the regular file `name`, never through a link; a new file gets mode
    /// `bits` and `owner`. One `O_APPEND` write: what two processes append at once never overwrites
    /// the other's.
    pub fn append_file(
        &self,
        name: impl AsRef<OsStr>,
        data: &[u8],
        bits: u32,
        owner: Option<Owner>,
    ) -> Result<(), FsError> {
        let name = self.name(name.as_ref())?;
        let path = self.path.join(name);
        if self.write_new(name, data, bits, owner)? {
            return Ok(());
        }
        let flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let mut file = fcntl::openat(Some(self.raw()), name, flags, stat::Mode::empty())
            .map(|fd| File::from(own(fd)))
            .map_err(|e| FsError::Write { path: path.clone(), source: e.into() })?;
        let meta = file.metadata().map_err(|source| FsError::Write { path: path.clone(), source })?;
        if !meta.is_file() {
            return Err(FsError::Write {
                path,
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        file.write_all(data).map_err(|source| FsError::Write { path, source })
    }
}

/// Writes `data` to a file just created, then gives it its owner and mode through its descriptor.
fn fill(mut file: File, data: &[u8], bits: u32, owner: Option<Owner>) -> io::Result<()> {
    file.write_all(data)?;
    if let Some(o) = owner {
        unistd::fchown(file.as_raw_fd(), Some(Uid::from_raw(o.uid)), Some(Gid::from_raw(o.gid)))?;
    }
    stat::fchmod(file.as_raw_fd(), mode(bits))?;
    Ok(())
}
