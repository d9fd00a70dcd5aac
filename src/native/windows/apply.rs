//! Applies a Windows [`Plan`]: ACEs (undone on every exit path), the restricted token, the job
//! object, the process. Thin Win32 calls in the plan's order; no decisions are made here.

use std::ffi::{c_void, OsStr};
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, LocalFree, ERROR_SUCCESS, HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::Security::Authorization::{
    GetNamedSecurityInfoW, SetEntriesInAclW, SetNamedSecurityInfoW, DENY_ACCESS, EXPLICIT_ACCESS_W, GRANT_ACCESS,
    NO_MULTIPLE_TRUSTEE, REVOKE_ACCESS, SE_FILE_OBJECT, TRUSTEE_IS_SID, TRUSTEE_IS_UNKNOWN, TRUSTEE_W,
};
use windows_sys::Win32::Security::{
    CopySid, CreateRestrictedToken, CreateWellKnownSid, DeriveCapabilitySidsFromName, GetLengthSid, GetTokenInformation,
    TokenGroups, WinBuiltinAdministratorsSid, WinWorldSid, ACL, DACL_SECURITY_INFORMATION, DISABLE_MAX_PRIVILEGE,
    LUA_TOKEN, PSID, SECURITY_MAX_SID_SIZE, SID_AND_ATTRIBUTES, SUB_CONTAINERS_AND_OBJECTS_INHERIT, TOKEN_ADJUST_DEFAULT,
    TOKEN_ASSIGN_PRIMARY, TOKEN_DUPLICATE, TOKEN_GROUPS, TOKEN_QUERY, WRITE_RESTRICTED,
};
use windows_sys::Win32::Storage::FileSystem::{DELETE, FILE_DELETE_CHILD, FILE_GENERIC_WRITE};
use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation, SetInformationJobObject,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, GetCurrentProcess, GetExitCodeProcess, OpenProcessToken, ResumeThread, WaitForSingleObject,
    CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, INFINITE, PROCESS_INFORMATION, STARTUPINFOW,
};

use super::plan::{self, Mode, Plan, Sid, Undo};
use super::{cmdline, WindowsError};
use crate::native::{env, Enforcement, Options, Outcome};
use crate::policy::Policy;

/// SE_GROUP_LOGON_ID: the group attribute that marks the logon SID.
const GROUP_LOGON_ID: u32 = 0xC000_0000;

fn win32(what: impl Into<String>) -> WindowsError {
    // SAFETY: reads the calling thread's last-error value.
    WindowsError::Win32 { what: what.into(), code: unsafe { GetLastError() } }
}

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// A handle closed on drop.
struct Handle(HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the handle was returned by a successful Win32 call and is closed once.
            unsafe { CloseHandle(self.0) };
        }
    }
}

/// A SID copied into memory we own.
#[derive(Clone)]
struct OwnedSid(Vec<u8>);

impl OwnedSid {
    fn as_psid(&self) -> PSID {
        self.0.as_ptr() as PSID
    }

    /// Copies the SID at `sid`.
    ///
    /// # Safety
    /// `sid` must point at a valid SID.
    unsafe fn copy(sid: PSID) -> Result<OwnedSid, WindowsError> {
        // SAFETY: the caller guarantees a valid SID.
        let len = unsafe { GetLengthSid(sid) };
        let mut buf = vec![0u8; len as usize];
        // SAFETY: `buf` holds `len` bytes, the length the source SID reports.
        if unsafe { CopySid(len, buf.as_mut_ptr() as PSID, sid) } == 0 {
            return Err(win32("copy a SID"));
        }
        Ok(OwnedSid(buf))
    }
}

fn well_known(kind: i32, what: &str) -> Result<OwnedSid, WindowsError> {
    let mut buf = vec![0u8; SECURITY_MAX_SID_SIZE as usize];
    let mut len = SECURITY_MAX_SID_SIZE;
    // SAFETY: `buf` is SECURITY_MAX_SID_SIZE bytes, the size passed in `len`.
    if unsafe { CreateWellKnownSid(kind, null_mut(), buf.as_mut_ptr() as PSID, &mut len) } == 0 {
        return Err(win32(format!("create the {what} SID")));
    }
    buf.truncate(len as usize);
    Ok(OwnedSid(buf))
}

fn capability(name: &str) -> Result<OwnedSid, WindowsError> {
    let wname = wide(OsStr::new(name));
    let (mut groups, mut ngroups, mut caps, mut ncaps): (*mut PSID, u32, *mut PSID, u32) = (null_mut(), 0, null_mut(), 0);
    // SAFETY: every out-pointer points at a local; the arrays returned are freed below.
    let ok = unsafe { DeriveCapabilitySidsFromName(wname.as_ptr(), &mut groups, &mut ngroups, &mut caps, &mut ncaps) };
    if ok == 0 || ncaps == 0 || caps.is_null() {
        return Err(win32(format!("derive the capability SID {name}")));
    }
    // SAFETY: `caps` holds `ncaps` ≥ 1 valid SIDs.
    let sid = unsafe { OwnedSid::copy(*caps) };
    // SAFETY: frees each SID and both arrays, as DeriveCapabilitySidsFromName documents (LocalFree).
    unsafe {
        for i in 0..ngroups as usize {
            LocalFree(*groups.add(i));
        }
        for i in 0..ncaps as usize {
            LocalFree(*caps.add(i));
        }
        LocalFree(groups as *mut c_void);
        LocalFree(caps as *mut c_void);
    }
    sid
}

/// The logon SID of the current token.
fn logon(token: HANDLE) -> Result<OwnedSid, WindowsError> {
    let mut len = 0u32;
    // SAFETY: a size query with a null buffer.
    unsafe { GetTokenInformation(token, TokenGroups, null_mut(), 0, &mut len) };
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: `buf` holds at least `len` bytes, 8-aligned for TOKEN_GROUPS.
    if unsafe { GetTokenInformation(token, TokenGroups, buf.as_mut_ptr() as *mut c_void, len, &mut len) } == 0 {
        return Err(win32("read the groups of the current token"));
    }
    let groups = buf.as_ptr() as *const TOKEN_GROUPS;
    // SAFETY: the buffer now holds a TOKEN_GROUPS with GroupCount entries.
    let count = unsafe { (*groups).GroupCount } as usize;
    for i in 0..count {
        // SAFETY: i < GroupCount; the entries follow the count inside the same buffer.
        let g: SID_AND_ATTRIBUTES = unsafe { *(*groups).Groups.as_ptr().add(i) };
        if g.Attributes & GROUP_LOGON_ID == GROUP_LOGON_ID {
            // SAFETY: the SID points into `buf`, alive here.
            return unsafe { OwnedSid::copy(g.Sid) };
        }
    }
    Err(WindowsError::Win32 { what: "find the logon SID in the current token".into(), code: 0 })
}

struct Sids {
    logon: OwnedSid,
    everyone: OwnedSid,
    caps: Vec<(String, OwnedSid)>,
}

impl Sids {
    fn get(&mut self, sid: &Sid) -> Result<OwnedSid, WindowsError> {
        Ok(match sid {
            Sid::Logon => self.logon.clone(),
            Sid::Everyone => self.everyone.clone(),
            Sid::Capability(name) => match self.caps.iter().find(|(n, _)| n == name) {
                Some((_, s)) => s.clone(),
                None => {
                    let s = capability(name)?;
                    self.caps.push((name.clone(), s.clone()));
                    s
                }
            },
        })
    }
}

/// Adds (or revokes) one ACE for `sid` on `path`, merged into its current DACL.
fn set_ace(path: &Path, sid: &OwnedSid, mode: i32, rights: u32) -> Result<(), WindowsError> {
    let wpath = wide(path.as_os_str());
    let what = || format!("change the ACL of {}", path.display());
    let mut old: *mut ACL = null_mut();
    let mut sd: *mut c_void = null_mut();
    // SAFETY: out-pointers to locals; `sd` is freed with LocalFree below.
    let rc = unsafe {
        GetNamedSecurityInfoW(wpath.as_ptr(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, null_mut(), null_mut(), &mut old, null_mut(), &mut sd)
    };
    if rc != ERROR_SUCCESS {
        return Err(WindowsError::Win32 { what: what(), code: rc });
    }
    let entry = EXPLICIT_ACCESS_W {
        grfAccessPermissions: rights,
        grfAccessMode: mode,
        grfInheritance: SUB_CONTAINERS_AND_OBJECTS_INHERIT,
        Trustee: TRUSTEE_W {
            pMultipleTrustee: null_mut(),
            MultipleTrusteeOperation: NO_MULTIPLE_TRUSTEE,
            TrusteeForm: TRUSTEE_IS_SID,
            TrusteeType: TRUSTEE_IS_UNKNOWN,
            ptstrName: sid.as_psid() as *mut u16,
        },
    };
    let mut new: *mut ACL = null_mut();
    // SAFETY: one valid entry; `old` is the DACL owned by `sd`; `new` is freed below.
    let rc = unsafe { SetEntriesInAclW(1, &entry, old, &mut new) };
    let result = if rc != ERROR_SUCCESS {
        Err(WindowsError::Win32 { what: what(), code: rc })
    } else {
        // SAFETY: `new` is a valid DACL; owner, group and SACL are left untouched (null).
        let rc = unsafe {
            SetNamedSecurityInfoW(wpath.as_ptr(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, null_mut(), null_mut(), new, null())
        };
        if rc == ERROR_SUCCESS { Ok(()) } else { Err(WindowsError::Win32 { what: what(), code: rc }) }
    };
    // SAFETY: both were allocated by the calls above with LocalAlloc.
    unsafe {
        LocalFree(new as *mut c_void);
        LocalFree(sd);
    }
    result
}

/// Runs the undo steps that apply to what was done, newest first; reports failures, never stops.
fn undo(plan: &Plan, sids: &mut Sids, applied: usize, placeholders: &[PathBuf]) {
    let done: Vec<(&Path, &Sid)> = plan.aces[..applied].iter().map(|a| (a.path.as_path(), &a.sid)).collect();
    for step in &plan.undo {
        match step {
            Undo::Revoke { path, sid } if done.contains(&(path.as_path(), sid)) => {
                let r = sids.get(sid).and_then(|s| set_ace(path, &s, REVOKE_ACCESS, 0));
                if let Err(e) = r {
                    eprintln!("codex-box: warning: could not remove the sandbox's ACE from {}: {e}", path.display());
                }
            }
            Undo::RemoveDir(p) if placeholders.contains(p) => {
                let _ = std::fs::remove_dir(p);
            }
            _ => {}
        }
    }
}

unsafe extern "system" fn ignore_ctrl(_kind: u32) -> i32 {
    1 // handled: the command in the same console gets its own Ctrl-C; codex-box waits for it
}

fn session_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}

fn find_exe(cmd: &str, path: Option<&str>) -> Option<PathBuf> {
    let p = Path::new(cmd);
    if p.components().count() > 1 || p.is_absolute() {
        return Some(p.to_path_buf());
    }
    let exts = [".exe", ".com", ".bat", ".cmd", ""];
    path.unwrap_or("").split(';').filter(|d| !d.is_empty()).find_map(|d| {
        exts.iter().map(|e| Path::new(d).join(format!("{cmd}{e}"))).find(|c| c.is_file())
    })
}

/// Runs `argv` under `policy`.
pub fn run(policy: &Policy, argv: &[String], opts: &Options) -> Result<Outcome, WindowsError> {
    let (vars, _removed) = env::scrub(
        std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())),
        &policy.env,
    );
    let path_var = vars.iter().find(|(k, _)| k.eq_ignore_ascii_case("PATH")).map(|(_, v)| v.as_str());
    let exe = find_exe(&argv[0], path_var).ok_or_else(|| WindowsError::NotFound(argv[0].clone()))?;
    let Some(plan) = plan::plan(policy, &session_id(), &|p| p.exists())? else {
        let status = std::process::Command::new(&exe).args(&argv[1..]).env_clear().envs(vars).status();
        let status = status.map_err(|e| WindowsError::Win32 { what: format!("start {}", exe.display()), code: e.raw_os_error().unwrap_or(0) as u32 })?;
        return Ok(Outcome { code: status.code().unwrap_or(1), enforcement: Enforcement::Full });
    };
    if !plan.not_enforced.is_empty() && !opts.allow_degraded {
        return Err(WindowsError::Degraded(plan.not_enforced.clone()));
    }
    if !plan.not_enforced.is_empty() {
        eprintln!("codex-box: degraded sandbox (--allow-degraded); NOT enforced:");
        for m in &plan.not_enforced {
            eprintln!("  - {m}");
        }
    }
    if opts.verbose {
        for r in &plan.skipped_roots {
            eprintln!("codex-box: sandbox: writable root {} does not exist here; left out", r.display());
        }
        eprintln!("codex-box: sandbox: {} ACE(s), {} restricting SID(s), job kills the tree", plan.aces.len(), plan.token.restricting.len());
    }

    let mut token: HANDLE = null_mut();
    // SAFETY: the pseudo-handle of this process and an out-pointer to a local.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_DUPLICATE | TOKEN_QUERY | TOKEN_ASSIGN_PRIMARY | TOKEN_ADJUST_DEFAULT, &mut token) } == 0 {
        return Err(win32("open the current process token"));
    }
    let token = Handle(token);
    let mut sids = Sids { logon: logon(token.0)?, everyone: well_known(WinWorldSid, "Everyone")?, caps: Vec::new() };

    let mut placeholders = Vec::new();
    for p in &plan.placeholders {
        if let Err(error) = std::fs::create_dir(p) {
            undo(&plan, &mut sids, 0, &placeholders);
            return Err(WindowsError::Placeholder { path: p.clone(), error });
        }
        placeholders.push(p.clone());
    }
    let mut applied = 0;
    let result = (|| {
        for ace in &plan.aces {
            let sid = sids.get(&ace.sid)?;
            let mode = if ace.mode == Mode::Allow { GRANT_ACCESS } else { DENY_ACCESS };
            set_ace(&ace.path, &sid, mode, FILE_GENERIC_WRITE | DELETE | FILE_DELETE_CHILD)?;
            applied += 1;
        }
        launch(&plan, &mut sids, token.0, &exe, argv, &vars)
    })();
    undo(&plan, &mut sids, applied, &placeholders);
    let code = result?;
    let enforcement = if plan.not_enforced.is_empty() { Enforcement::Full } else { Enforcement::Partial(plan.not_enforced) };
    Ok(Outcome { code, enforcement })
}

fn launch(plan: &Plan, sids: &mut Sids, token: HANDLE, exe: &Path, argv: &[String], vars: &[(String, String)]) -> Result<i32, WindowsError> {
    let restricting: Vec<OwnedSid> = plan.token.restricting.iter().map(|s| sids.get(s)).collect::<Result<_, _>>()?;
    let restrict: Vec<SID_AND_ATTRIBUTES> = restricting.iter().map(|s| SID_AND_ATTRIBUTES { Sid: s.as_psid(), Attributes: 0 }).collect();
    let admins = well_known(WinBuiltinAdministratorsSid, "Administrators")?;
    let disable = [SID_AND_ATTRIBUTES { Sid: admins.as_psid(), Attributes: 0 }];
    let mut flags = LUA_TOKEN;
    if plan.token.write_restricted {
        flags |= WRITE_RESTRICTED;
    }
    if plan.token.disable_max_privilege {
        flags |= DISABLE_MAX_PRIVILEGE;
    }
    let ndisable = if plan.token.deny_only_administrators { 1 } else { 0 };
    let mut restricted: HANDLE = null_mut();
    // SAFETY: arrays of SIDs owned by `restricting` and `admins`, alive for the call; out-pointer to a local.
    let ok = unsafe {
        CreateRestrictedToken(token, flags, ndisable, disable.as_ptr(), 0, null(), restrict.len() as u32, restrict.as_ptr(), &mut restricted)
    };
    if ok == 0 {
        return Err(win32("create the restricted token"));
    }
    let restricted = Handle(restricted);

    // SAFETY: an anonymous job object with default security.
    let job = Handle(unsafe { CreateJobObjectW(null(), null()) });
    if job.0.is_null() {
        return Err(win32("create the job object"));
    }
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    if plan.job.kill_on_job_close {
        limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    }
    if plan.job.die_on_unhandled_exception {
        limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
    }
    // SAFETY: `limits` is the structure this information class expects, with its exact size.
    let ok = unsafe {
        SetInformationJobObject(job.0, JobObjectExtendedLimitInformation, &limits as *const _ as *const c_void, std::mem::size_of_val(&limits) as u32)
    };
    if ok == 0 {
        return Err(win32("set the job object's limits"));
    }

    let mut line: Vec<u16> = {
        let mut v = argv.to_vec();
        v[0] = exe.to_string_lossy().into_owned();
        cmdline::command_line(&v).encode_utf16().chain(std::iter::once(0)).collect()
    };
    let mut envb = cmdline::env_block(vars);
    let app = wide(exe.as_os_str());
    let si = STARTUPINFOW { cb: std::mem::size_of::<STARTUPINFOW>() as u32, ..Default::default() };
    let mut pi = PROCESS_INFORMATION::default();
    // SAFETY: NUL-terminated application name and mutable command line, a double-NUL-terminated
    // UTF-16 environment block, a zeroed STARTUPINFOW with its size, an out-pointer to a local.
    let ok = unsafe {
        CreateProcessAsUserW(
            restricted.0, app.as_ptr(), line.as_mut_ptr(), null(), null(), 1,
            CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT, envb.as_mut_ptr() as *const c_void, null(), &si, &mut pi,
        )
    };
    if ok == 0 {
        return Err(win32(format!("start {}", exe.display())));
    }
    let (process, thread) = (Handle(pi.hProcess), Handle(pi.hThread));
    // SAFETY: both handles were just returned by CreateProcessAsUserW.
    if unsafe { AssignProcessToJobObject(job.0, process.0) } == 0 {
        return Err(win32("put the command in the job object"));
    }
    // SAFETY: installs a handler function that lives for the whole program.
    unsafe { SetConsoleCtrlHandler(Some(ignore_ctrl), 1) };
    // SAFETY: the thread handle of the suspended process.
    unsafe { ResumeThread(thread.0) };
    // SAFETY: a valid process handle.
    let waited = unsafe { WaitForSingleObject(process.0, INFINITE) };
    // SAFETY: removes the handler installed above.
    unsafe { SetConsoleCtrlHandler(Some(ignore_ctrl), 0) };
    if waited != WAIT_OBJECT_0 {
        return Err(win32("wait for the command"));
    }
    let mut code = 0u32;
    // SAFETY: a valid process handle and an out-pointer to a local.
    if unsafe { GetExitCodeProcess(process.0, &mut code) } == 0 {
        return Err(win32("read the command's exit code"));
    }
    Ok(code as i32)
}
