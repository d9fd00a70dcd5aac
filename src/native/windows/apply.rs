//! Applies a Windows [`Plan`]: ACEs (undone on every exit path), the restricted token, the job
//! object, the process. Thin Win32 calls in the plan's order; no decisions are made here.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::Security::Authorization::{DENY_ACCESS, GRANT_ACCESS, REVOKE_ACCESS};
use windows_sys::Win32::Security::{
    CreateRestrictedToken, WinBuiltinAdministratorsSid, WinWorldSid, DISABLE_MAX_PRIVILEGE, LUA_TOKEN,
    SID_AND_ATTRIBUTES, TOKEN_ADJUST_DEFAULT, TOKEN_ASSIGN_PRIMARY, TOKEN_DUPLICATE, TOKEN_QUERY, WRITE_RESTRICTED,
};
use windows_sys::Win32::Storage::FileSystem::{DELETE, FILE_DELETE_CHILD, FILE_GENERIC_WRITE};
use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation, SetInformationJobObject,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, GetCurrentProcess, GetExitCodeProcess, OpenProcessToken, ResumeThread, WaitForSingleObject,
    CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, INFINITE, PROCESS_INFORMATION, STARTUPINFOW,
};

use super::plan::{self, Mode, Plan, Sid, Undo};
use super::security::{logon, set_ace, well_known, wide, win32, OwnedSid, Sids};
use super::{cmdline, WindowsError};
use crate::native::{env, exe, Enforcement, Options, Outcome};
use crate::policy::Policy;

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

/// Runs `argv` under `policy`.
pub fn run(policy: &Policy, argv: &[String], opts: &Options) -> Result<Outcome, WindowsError> {
    let (vars, _removed) = env::scrub(
        std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())),
        &policy.env,
    );
    let path_var = vars.iter().find(|(k, _)| k.eq_ignore_ascii_case("PATH")).map(|(_, v)| v.as_str());
    let exe =
        exe::find_exe(&argv[0], path_var, &exe::WINDOWS).ok_or_else(|| WindowsError::NotFound(argv[0].clone()))?;
    let Some(plan) = plan::plan(policy, &session_id(), &|p| p.exists())? else {
        let status = std::process::Command::new(&exe).args(&argv[1..]).env_clear().envs(vars).status();
        let status = status.map_err(|e| WindowsError::Win32 {
            what: format!("start {}", exe.display()),
            code: e.raw_os_error().unwrap_or(0) as u32,
        })?;
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
        eprintln!(
            "codex-box: sandbox: {} ACE(s), {} restricting SID(s), job kills the tree",
            plan.aces.len(),
            plan.token.restricting.len()
        );
    }

    let mut token: HANDLE = null_mut();
    // SAFETY: the pseudo-handle of this process and an out-pointer to a local.
    if unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_DUPLICATE | TOKEN_QUERY | TOKEN_ASSIGN_PRIMARY | TOKEN_ADJUST_DEFAULT,
            &mut token,
        )
    } == 0
    {
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
    let enforcement =
        if plan.not_enforced.is_empty() { Enforcement::Full } else { Enforcement::Partial(plan.not_enforced) };
    Ok(Outcome { code, enforcement })
}

fn launch(
    plan: &Plan,
    sids: &mut Sids,
    token: HANDLE,
    exe: &Path,
    argv: &[String],
    vars: &[(String, String)],
) -> Result<i32, WindowsError> {
    let restricting: Vec<OwnedSid> = plan.token.restricting.iter().map(|s| sids.get(s)).collect::<Result<_, _>>()?;
    let restrict: Vec<SID_AND_ATTRIBUTES> =
        restricting.iter().map(|s| SID_AND_ATTRIBUTES { Sid: s.as_psid(), Attributes: 0 }).collect();
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
        CreateRestrictedToken(
            token,
            flags,
            ndisable,
            disable.as_ptr(),
            0,
            null(),
            restrict.len() as u32,
            restrict.as_ptr(),
            &mut restricted,
        )
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
        SetInformationJobObject(
            job.0,
            JobObjectExtendedLimitInformation,
            &limits as *const _ as *const c_void,
            std::mem::size_of_val(&limits) as u32,
        )
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
            restricted.0,
            app.as_ptr(),
            line.as_mut_ptr(),
            null(),
            null(),
            1,
            CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT,
            envb.as_mut_ptr() as *const c_void,
            null(),
            &si,
            &mut pi,
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
