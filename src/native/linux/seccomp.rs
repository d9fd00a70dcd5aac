//! The seccomp filter: a rule table (data) compiled to classic BPF (pure, unit-tested with a small
//! BPF interpreter), and a thin `install`.
//!
//! Enforces, for the sandboxed process and everything it starts: no `ptrace`, no
//! `process_vm_readv/writev`, no io_uring, no `ioctl(TIOCSTI/TIOCLINUX)` (typing into the terminal),
//! no new user namespaces, no mount-table or kernel-module/keyring/bpf/perf calls, with network
//! off no socket other than AF_UNIX, and with network by name no socket other than AF_UNIX, AF_INET
//! and AF_INET6. Refused calls return EPERM (or, with `--log-denials`, are sent to
//! the supervisor, which records them and answers EPERM). System calls of another architecture (x32,
//! 32-bit compat) kill the process. It does not look at paths: files are Landlock's and the mount
//! namespace's job.

use std::os::fd::{FromRawFd, OwnedFd};

use libc::sock_filter;

use super::sys::errno;

/// When a rule applies, beyond the system call number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Always,
    /// The low 32 bits of argument `arg` are none of `values`.
    ArgNotIn {
        arg: u8,
        values: &'static [u32],
    },
    /// The low 32 bits of argument `arg` equal `value`.
    ArgEq {
        arg: u8,
        value: u32,
    },
    /// Argument `arg` has any of the bits of `mask` (low 32 bits).
    ArgAnyBits {
        arg: u8,
        mask: u32,
    },
}

/// One refused system call (or variant of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub nr: i64,
    pub name: &'static str,
    pub cond: Cond,
    /// errno returned.
    pub errno: i32,
    /// A real denial (logged with `--log-denials`); `false` for compatibility answers like clone3's ENOSYS.
    pub denial: bool,
}

const fn deny(nr: i64, name: &'static str, cond: Cond) -> Rule {
    Rule { nr, name, cond, errno: libc::EPERM, denial: true }
}

/// System calls refused whatever the policy.
const ALWAYS: &[(i64, &str)] = &[
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_process_vm_readv, "process_vm_readv"),
    (libc::SYS_process_vm_writev, "process_vm_writev"),
    (libc::SYS_io_uring_setup, "io_uring_setup"),
    (libc::SYS_io_uring_enter, "io_uring_enter"),
    (libc::SYS_io_uring_register, "io_uring_register"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_mount, "mount"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_open_tree, "open_tree"),
    (libc::SYS_move_mount, "move_mount"),
    (libc::SYS_fsopen, "fsopen"),
    (libc::SYS_fsconfig, "fsconfig"),
    (libc::SYS_fsmount, "fsmount"),
    (libc::SYS_fspick, "fspick"),
    (libc::SYS_mount_setattr, "mount_setattr"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_request_key, "request_key"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_delete_module, "delete_module"),
];

/// Which socket families the command may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sockets {
    /// Network on: every family.
    Any,
    /// Network off: AF_UNIX only.
    Unix,
    /// Network by name: AF_UNIX, AF_INET and AF_INET6, inside a network namespace whose only way
    /// out is the proxy (no netlink, no packet sockets).
    UnixAndIp,
}

const UNIX: &[u32] = &[libc::AF_UNIX as u32];
const UNIX_AND_IP: &[u32] = &[libc::AF_UNIX as u32, libc::AF_INET as u32, libc::AF_INET6 as u32];

/// The rule table for a policy.
pub fn rules(sockets: Sockets) -> Vec<Rule> {
    let mut r: Vec<Rule> = ALWAYS.iter().map(|&(nr, name)| deny(nr, name, Cond::Always)).collect();
    for (cmd, name) in [(libc::TIOCSTI, "ioctl(TIOCSTI)"), (libc::TIOCLINUX, "ioctl(TIOCLINUX)")] {
        r.push(deny(libc::SYS_ioctl, name, Cond::ArgEq { arg: 1, value: cmd as u32 }));
    }
    let newuser = libc::CLONE_NEWUSER as u32;
    r.push(deny(libc::SYS_unshare, "unshare(CLONE_NEWUSER)", Cond::ArgAnyBits { arg: 0, mask: newuser }));
    r.push(deny(libc::SYS_clone, "clone(CLONE_NEWUSER)", Cond::ArgAnyBits { arg: 0, mask: newuser }));
    // clone3 passes its flags in memory seccomp cannot read: answer ENOSYS so libc falls back to clone.
    r.push(Rule { nr: libc::SYS_clone3, name: "clone3", cond: Cond::Always, errno: libc::ENOSYS, denial: false });
    match sockets {
        Sockets::Any => {}
        Sockets::Unix => r.push(deny(libc::SYS_socket, "socket(non-AF_UNIX)", Cond::ArgNotIn { arg: 0, values: UNIX })),
        Sockets::UnixAndIp => r.push(deny(
            libc::SYS_socket,
            "socket(not AF_UNIX/AF_INET/AF_INET6)",
            Cond::ArgNotIn { arg: 0, values: UNIX_AND_IP },
        )),
    }
    r
}

#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xC000_00B7;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(arg: u8) -> u32 {
    16 + 8 * arg as u32 // little-endian: the low word comes first
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Compiles the table. With `notify`, denials become SECCOMP_RET_USER_NOTIF (the supervisor answers).
pub fn compile(rules: &[Rule], notify: bool) -> Vec<sock_filter> {
    let mut p = vec![
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ, AUDIT_ARCH, 1, 0),
        stmt(RET, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(LD_W_ABS, OFF_NR),
    ];
    if cfg!(target_arch = "x86_64") {
        // x32 system calls (bit 30) would bypass the numbers below.
        p.push(jump(JGE, 0x4000_0000, 0, 1));
        p.push(stmt(RET, libc::SECCOMP_RET_KILL_PROCESS));
    }
    for r in rules {
        let action = if notify && r.denial {
            libc::SECCOMP_RET_USER_NOTIF
        } else {
            libc::SECCOMP_RET_ERRNO | (r.errno as u32 & libc::SECCOMP_RET_DATA)
        };
        p.push(stmt(LD_W_ABS, OFF_NR));
        match r.cond {
            Cond::Always => {
                p.push(jump(JEQ, r.nr as u32, 0, 1));
            }
            Cond::ArgNotIn { arg, values } => {
                // Not this call: skip the load, the comparisons and the return. A listed value:
                // skip the comparisons after it and the return.
                let n = values.len();
                debug_assert!(n <= 250, "jump offsets are 8 bits");
                p.push(jump(JEQ, r.nr as u32, 0, (n + 2) as u8));
                p.push(stmt(LD_W_ABS, off_arg_lo(arg)));
                for (i, v) in values.iter().enumerate() {
                    p.push(jump(JEQ, *v, (n - i) as u8, 0));
                }
            }
            Cond::ArgEq { arg, value } => {
                p.push(jump(JEQ, r.nr as u32, 0, 3));
                p.push(stmt(LD_W_ABS, off_arg_lo(arg)));
                p.push(jump(JEQ, value, 0, 1));
            }
            Cond::ArgAnyBits { arg, mask } => {
                p.push(jump(JEQ, r.nr as u32, 0, 3));
                p.push(stmt(LD_W_ABS, off_arg_lo(arg)));
                p.push(jump(JSET, mask, 0, 1));
            }
        }
        p.push(stmt(RET, action));
    }
    p.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
    p
}

/// Name of a refused system call, for `--log-denials`.
pub fn describe(rules: &[Rule], nr: i64, args: &[u64; 6]) -> String {
    let name = rules.iter().find(|r| r.nr == nr).map(|r| r.name).unwrap_or("syscall");
    let name = name.split('(').next().unwrap_or(name);
    match nr {
        libc::SYS_socket => format!("socket(family {}{})", args[0], family_name(args[0])),
        libc::SYS_ioctl => format!(
            "ioctl(fd {}, {})",
            args[0],
            if args[1] as u32 == libc::TIOCSTI as u32 { "TIOCSTI" } else { "TIOCLINUX" }
        ),
        libc::SYS_ptrace => format!("ptrace(request {}, pid {})", args[0], args[1] as i32),
        libc::SYS_unshare | libc::SYS_clone => format!("{name}(flags {:#x})", args[0]),
        _ => format!("{name}({:#x}, {:#x}, {:#x})", args[0], args[1], args[2]),
    }
}

fn family_name(f: u64) -> &'static str {
    match f as i32 {
        libc::AF_INET => " AF_INET",
        libc::AF_INET6 => " AF_INET6",
        libc::AF_NETLINK => " AF_NETLINK",
        libc::AF_PACKET => " AF_PACKET",
        _ => "",
    }
}

/// Installs the filter on the calling thread (no_new_privs must be set). Returns the notification
/// listener when `listener` is set. Async-signal-safe: no allocation.
pub fn install(prog: &[sock_filter], listener: bool) -> Result<Option<OwnedFd>, i32> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut sock_filter };
    let flags = if listener { libc::SECCOMP_FILTER_FLAG_NEW_LISTENER } else { 0 };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel copies the program.
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &fprog) };
    if rc < 0 {
        return Err(errno());
    }
    // SAFETY: with NEW_LISTENER the kernel returned a fresh fd that nothing else owns.
    Ok(listener.then(|| unsafe { OwnedFd::from_raw_fd(rc as i32) }))
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
