//! The Windows plan of a [`Policy`]: which token, which ACEs on which paths in which order, how to
//! undo them, which job object — a pure function, compiled everywhere and unit-tested on Linux.
//!
//! How the boundary works: the command runs with a *write-restricted* token (`CreateRestrictedToken`
//! with `WRITE_RESTRICTED`). Every write is then checked twice: once as the user, and once against
//! the token's restricting SIDs only. Those are capability SIDs made for this session (one for the
//! session, one per writable root), the logon SID (console and desktop) and Everyone (the NUL device,
//! pipes). So a write succeeds only where an ACE grants it to one of them: each writable root gets an
//! inheritable allow-write ACE for its capability SID, and protected paths inside get inheritable
//! deny-write ACEs for the session's capability SIDs — SIDs no other process carries, so the user's
//! own processes are unaffected. The ACEs are removed afterwards (revoke by SID, newest first).
//!
//! Enforced: writes only in the writable roots (and wherever Everyone may write), protected paths
//! read-only, no administrator group or privileges, the whole process tree killed with the job.
//! NOT enforced, and reported: reads (a write-restricted token ignores its restricting SIDs when
//! reading, so deny-read paths stay readable — they are only kept from being written), network (a
//! restricted token does not block sockets; that needs Windows Filtering Platform rules and
//! administrator rights), resource limits.

use std::path::{Path, PathBuf};

use crate::policy::{NetPolicy, Policy};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("the Windows sandbox cannot restrict the network to names (--allow-domain, allow_domains) yet; use network_access = true/false, or a container session with --egress proxy")]
    Allowlist,
    #[error("sandbox policy path {0} is not absolute; write it as an absolute path")]
    Relative(PathBuf),
}

/// A SID named by the plan; the applying code turns it into a real one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sid {
    /// The logon SID of the current logon session (S-1-5-5-X-Y), found in the token.
    Logon,
    /// S-1-1-0.
    Everyone,
    /// The capability SID derived from this name (`DeriveCapabilitySidsFromName`, S-1-15-3-…).
    Capability(String),
}

/// The rights an ACE is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rights {
    /// FILE_GENERIC_WRITE | DELETE | FILE_DELETE_CHILD: create, modify, rename, delete.
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Allow,
    Deny,
}

/// One ACE added to a path's DACL (inherited by everything below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub path: PathBuf,
    pub sid: Sid,
    pub mode: Mode,
    pub rights: Rights,
}

/// One step of the undo, run newest first after the command (and on any failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Remove every explicit ACE for `sid` from `path`'s DACL.
    Revoke { path: PathBuf, sid: Sid },
    /// Remove a placeholder directory created for a protected path that did not exist.
    RemoveDir(PathBuf),
}

/// The restricted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub write_restricted: bool,
    pub disable_max_privilege: bool,
    /// BUILTIN\Administrators becomes deny-only.
    pub deny_only_administrators: bool,
    pub restricting: Vec<Sid>,
}

/// The job object the command runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: when codex-box exits, the whole tree dies.
    pub kill_on_job_close: bool,
    /// JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION: no error dialog keeps a crashed process alive.
    pub die_on_unhandled_exception: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub token: Token,
    /// Protected paths that do not exist yet: created as empty directories so they can carry a
    /// deny ACE (otherwise the command could create them), removed afterwards.
    pub placeholders: Vec<PathBuf>,
    /// Applied in this order.
    pub aces: Vec<Ace>,
    pub undo: Vec<Undo>,
    pub job: Job,
    /// Writable roots that do not exist on this host (e.g. `/tmp`), left out.
    pub skipped_roots: Vec<PathBuf>,
    /// What the policy asks for that this plan does not enforce.
    pub not_enforced: Vec<String>,
}

/// The capability name of the session.
pub fn session_capability(session: &str) -> String {
    format!("codex-box-{session}")
}

/// The capability name of writable root number `i` of the session.
pub fn root_capability(session: &str, i: usize) -> String {
    format!("codex-box-{session}-root-{i}")
}

fn check_absolute(p: &Path) -> Result<(), PlanError> {
    // `C:\x` and `\\server\share` are absolute on Windows; on the Linux test host `/x` is.
    if p.is_absolute() || p.has_root() {
        Ok(())
    } else {
        Err(PlanError::Relative(p.to_path_buf()))
    }
}

/// The plan of `policy` for session `session` (unique per run), or `None` for `danger-full-access`.
/// `exists` says whether a path exists (the only fact taken from the host).
pub fn plan(policy: &Policy, session: &str, exists: &dyn Fn(&Path) -> bool) -> Result<Option<Plan>, PlanError> {
    if policy.full_access {
        return Ok(None);
    }
    if matches!(policy.net, NetPolicy::Domains(_)) {
        return Err(PlanError::Allowlist);
    }
    let fs = &policy.fs;
    for p in fs.write_roots.iter().chain(&fs.protected).chain(&fs.deny_read) {
        check_absolute(p)?;
    }
    let session_sid = Sid::Capability(session_capability(session));
    let mut roots: Vec<(PathBuf, Sid)> = Vec::new();
    let mut skipped_roots = Vec::new();
    for root in &fs.write_roots {
        if roots.iter().any(|(r, _)| r == root) {
            continue;
        }
        if exists(root) {
            roots.push((root.clone(), Sid::Capability(root_capability(session, roots.len()))));
        } else {
            skipped_roots.push(root.clone());
        }
    }

    let mut aces: Vec<Ace> = Vec::new();
    for (root, sid) in &roots {
        aces.push(Ace { path: root.clone(), sid: sid.clone(), mode: Mode::Allow, rights: Rights::Write });
    }
    // Protected paths, then deny-read paths (kept from being written), inside a writable root.
    let mut placeholders = Vec::new();
    let mut kept: Vec<&PathBuf> = Vec::new();
    for p in fs.protected.iter().chain(fs.deny_read.iter()) {
        if kept.contains(&p) {
            continue;
        }
        let owners: Vec<&Sid> = roots.iter().filter(|(r, _)| p.starts_with(r)).map(|(_, s)| s).collect();
        if owners.is_empty() {
            continue;
        }
        kept.push(p);
        if !exists(p) {
            if fs.deny_read.contains(p) && !fs.protected.contains(p) {
                continue; // nothing to keep; creating it is allowed as for any file
            }
            placeholders.push(p.clone());
        }
        for sid in std::iter::once(&session_sid).chain(owners) {
            aces.push(Ace { path: p.clone(), sid: sid.clone(), mode: Mode::Deny, rights: Rights::Write });
        }
    }

    let mut undo: Vec<Undo> = Vec::new();
    for a in aces.iter().rev() {
        let step = Undo::Revoke { path: a.path.clone(), sid: a.sid.clone() };
        if !undo.contains(&step) {
            undo.push(step);
        }
    }
    undo.extend(placeholders.iter().rev().map(|p| Undo::RemoveDir(p.clone())));

    let mut restricting = vec![session_sid];
    restricting.extend(roots.iter().map(|(_, s)| s.clone()));
    restricting.extend([Sid::Logon, Sid::Everyone]);

    let mut not_enforced = Vec::new();
    if !fs.deny_read.is_empty() {
        not_enforced.push(
            "hidden paths: credential stores and deny-read paths stay READABLE (a write-restricted token does not restrict reads); they are only kept from being written".to_string(),
        );
    }
    if policy.net == NetPolicy::None {
        not_enforced.push(
            "network: NOT blocked (a restricted token does not restrict sockets; blocking needs Windows Filtering Platform rules and administrator rights)".to_string(),
        );
    }
    if !fs.shared_tmp {
        not_enforced.push("private temporary directory: the host's is shared".to_string());
    }

    Ok(Some(Plan {
        token: Token {
            write_restricted: true,
            disable_max_privilege: true,
            deny_only_administrators: true,
            restricting,
        },
        placeholders,
        aces,
        undo,
        job: Job { kill_on_job_close: true, die_on_unhandled_exception: true },
        skipped_roots,
        not_enforced,
    }))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
