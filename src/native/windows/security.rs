//! SIDs and ACEs for the Windows backend: the session's capability SIDs, the logon SID, Everyone,
//! and one ACE added to (or revoked from) a path's DACL. Thin Win32 calls; the plan decides which.

use std::ffi::{c_void, OsStr};
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{GetLastError, LocalFree, ERROR_SUCCESS, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    GetNamedSecurityInfoW, SetEntriesInAclW, SetNamedSecurityInfoW, EXPLICIT_ACCESS_W, NO_MULTIPLE_TRUSTEE,
    SE_FILE_OBJECT, TRUSTEE_IS_SID, TRUSTEE_IS_UNKNOWN, TRUSTEE_W,
};
use windows_sys::Win32::Security::{
    CopySid, CreateWellKnownSid, DeriveCapabilitySidsFromName, GetLengthSid, GetTokenInformation, TokenGroups, ACL,
    DACL_SECURITY_INFORMATION, PSID, SECURITY_MAX_SID_SIZE, SID_AND_ATTRIBUTES, SUB_CONTAINERS_AND_OBJECTS_INHERIT,
    TOKEN_GROUPS,
};

use super::plan::Sid;
use super::WindowsError;

/// SE_GROUP_LOGON_ID: the group attribute that marks the logon SID.
const GROUP_LOGON_ID: u32 = 0xC000_0000;

pub(super) fn win32(what: impl Into<String>) -> WindowsError {
    // SAFETY: reads the calling thread's last-error value.
    WindowsError::Win32 { what: what.into(), code: unsafe { GetLastError() } }
}

pub(super) fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// A SID copied into memory we own.
#[derive(Clone)]
pub(super) struct OwnedSid(Vec<u8>);

impl OwnedSid {
    pub(super) fn as_psid(&self) -> PSID {
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

pub(super) fn well_known(kind: i32, what: &str) -> Result<OwnedSid, WindowsError> {
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
    let (mut groups, mut ngroups, mut caps, mut ncaps): (*mut PSID, u32, *mut PSID, u32) =
        (null_mut(), 0, null_mut(), 0);
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
pub(super) fn logon(token: HANDLE) -> Result<OwnedSid, WindowsError> {
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

pub(super) struct Sids {
    pub(super) logon: OwnedSid,
    pub(super) everyone: OwnedSid,
    pub(super) caps: Vec<(String, OwnedSid)>,
}

impl Sids {
    pub(super) fn get(&mut self, sid: &Sid) -> Result<OwnedSid, WindowsError> {
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
pub(super) fn set_ace(path: &Path, sid: &OwnedSid, mode: i32, rights: u32) -> Result<(), WindowsError> {
    let wpath = wide(path.as_os_str());
    let what = || format!("change the ACL of {}", path.display());
    let mut old: *mut ACL = null_mut();
    let mut sd: *mut c_void = null_mut();
    // SAFETY: out-pointers to locals; `sd` is freed with LocalFree below.
    let rc = unsafe {
        GetNamedSecurityInfoW(
            wpath.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            &mut old,
            null_mut(),
            &mut sd,
        )
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
            SetNamedSecurityInfoW(
                wpath.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                new,
                null(),
            )
        };
        if rc == ERROR_SUCCESS {
            Ok(())
        } else {
            Err(WindowsError::Win32 { what: what(), code: rc })
        }
    };
    // SAFETY: both were allocated by the calls above with LocalAlloc.
    unsafe {
        LocalFree(new as *mut c_void);
        LocalFree(sd);
    }
    result
}
