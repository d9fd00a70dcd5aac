//! The walks over a tree: handing it over to an owner, and removing it. Each entry is listed, looked
//! at without following it, then opened or changed relative to the directory it is in; what
//! vanished or changed type in between is skipped or looked at again.

use std::ffi::OsStr;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};

use super::{race_point, Dir, FsError, Owner, Point, Walk, ATTEMPTS, MAX_DEPTH, MAX_LOOKS};

impl Dir {
    /// Gives this directory and everything below it to `owner` (links themselves, never what they
    /// point at), changing only what differs. Entries that vanish or change type meanwhile are
    /// skipped.
    pub fn hand_over(&self, owner: Owner) -> Result<Walk, FsError> {
        let mut walk = Walk::default();
        if self.set_owner(owner)? {
            walk.changed += 1;
        }
        self.hand_over_below(owner, 0, &mut walk)?;
        Ok(walk)
    }

    fn hand_over_below(&self, owner: Owner, depth: usize, walk: &mut Walk) -> Result<(), FsError> {
        for name in self.entries()? {
            race_point(self, &name, Point::Listed);
            let Some(meta) = self.meta_of(&name)? else {
                walk.skipped += 1;
                continue;
            };
            race_point(self, &name, Point::Looked);
            if meta.is_dir() {
                if depth >= MAX_DEPTH {
                    walk.too_deep += 1;
                    continue;
                }
                let sub = match self.open_dir(&name) {
                    Ok(sub) => sub,
                    Err(e) if e.vanished() => {
                        walk.skipped += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if sub.set_owner(owner)? {
                    walk.changed += 1;
                }
                sub.hand_over_below(owner, depth + 1, walk)?;
            } else if !meta.owned_by(owner) {
                // By name but without following it: whatever is at `name` now, it is in this
                // directory. (A directory swapped in meanwhile is changed itself, not entered.)
                let (uid, gid) = (Some(Uid::from_raw(owner.uid)), Some(Gid::from_raw(owner.gid)));
                match unistd::fchownat(Some(self.raw()), name.as_os_str(), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(()) => walk.changed += 1,
                    Err(Errno::ENOENT) => walk.skipped += 1,
                    Err(e) => return Err(FsError::Chown { path: self.path.join(&name), source: e.into() }),
                }
            }
        }
        Ok(())
    }

    /// Removes the entry `name` whatever it is — a directory with everything below it — never
    /// following a link. An entry that is gone already is fine; one that changes meanwhile is
    /// looked at again, a few times, then counted as [`Walk::left`].
    pub fn remove(&self, name: impl AsRef<OsStr>) -> Result<Walk, FsError> {
        let mut walk = Walk::default();
        let mut looks = MAX_LOOKS;
        self.remove_at(self.name(name.as_ref())?, 0, &mut walk, &mut looks)?;
        Ok(walk)
    }

    /// `looks`: how many more times, in the whole removal, an entry that changed may be looked at
    /// again — so an agent that keeps refilling a deep tree cannot keep codex-box at it for long.
    fn remove_at(&self, name: &OsStr, depth: usize, walk: &mut Walk, looks: &mut usize) -> Result<(), FsError> {
        let err = |e: Errno| FsError::Remove { path: self.path.join(name), source: e.into() };
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                if *looks == 0 {
                    break;
                }
                *looks -= 1;
            }
            race_point(self, name, Point::Listed);
            let Some(meta) = self.meta_of(name)? else { return Ok(()) };
            race_point(self, name, Point::Looked);
            if meta.is_dir() {
                if depth >= MAX_DEPTH {
                    walk.too_deep += 1;
                    return Ok(());
                }
                match self.open_dir(name) {
                    Ok(sub) => {
                        let kept = (walk.left, walk.too_deep);
                        for child in sub.entries()? {
                            sub.remove_at(&child, depth + 1, walk, looks)?;
                        }
                        if (walk.left, walk.too_deep) != kept {
                            // Something below stays, so this directory does too.
                            return Ok(());
                        }
                    }
                    Err(e) if e.vanished() => continue,
                    Err(e) => return Err(e),
                }
                match unistd::unlinkat(Some(self.raw()), name, UnlinkatFlags::RemoveDir) {
                    Ok(()) => {
                        walk.changed += 1;
                        return Ok(());
                    }
                    Err(Errno::ENOENT) => return Ok(()),
                    // Filled again, or swapped for something else: look again.
                    Err(Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOTDIR) => continue,
                    Err(e) => return Err(err(e)),
                }
            }
            match unistd::unlinkat(Some(self.raw()), name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => {
                    walk.changed += 1;
                    return Ok(());
                }
                Err(Errno::ENOENT) => return Ok(()),
                // A directory swapped in meanwhile (macOS says EPERM for a directory): look again.
                Err(Errno::EISDIR) => continue,
                #[cfg(not(target_os = "linux"))]
                Err(Errno::EPERM) => continue,
                Err(e) => return Err(err(e)),
            }
        }
        walk.left += 1;
        Ok(())
    }
}
