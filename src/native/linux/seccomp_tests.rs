use super::*;

/// A classic-BPF interpreter for the few instructions `compile` emits.
fn run(prog: &[sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    let mut data = Vec::new();
    data.extend_from_slice(&(nr as i32).to_ne_bytes());
    data.extend_from_slice(&arch.to_ne_bytes());
    data.extend_from_slice(&0u64.to_ne_bytes());
    for a in args {
        data.extend_from_slice(&a.to_ne_bytes());
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => acc = u32::from_ne_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
            JEQ | JGE | JSET => {
                let t = match i.code {
                    JEQ => acc == i.k,
                    JGE => acc >= i.k,
                    _ => acc & i.k != 0,
                };
                pc += if t { i.jt } else { i.jf } as usize;
            }
            RET => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

fn check(net_off: bool, nr: i64, args: [u64; 6]) -> u32 {
    run(&compile(&rules(if net_off { Sockets::Unix } else { Sockets::Any }), false), AUDIT_ARCH, nr, args)
}

#[test]
fn always_refused_calls_get_eperm() {
    for nr in [
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_mount,
    ] {
        assert_eq!(check(false, nr, [0; 6]), EPERM, "syscall {nr}");
    }
    assert_eq!(check(false, libc::SYS_read, [0; 6]), ALLOW);
    assert_eq!(check(false, libc::SYS_openat, [0; 6]), ALLOW);
}

#[test]
fn only_terminal_injection_ioctls_are_refused() {
    assert_eq!(check(false, libc::SYS_ioctl, [0, libc::TIOCSTI, 0, 0, 0, 0]), EPERM);
    assert_eq!(check(false, libc::SYS_ioctl, [0, libc::TIOCLINUX, 0, 0, 0, 0]), EPERM);
    // the kernel reads cmd as 32 bits: garbage in the high word must not bypass the rule
    assert_eq!(check(false, libc::SYS_ioctl, [0, 0xffff_ffff_0000_0000 | libc::TIOCSTI, 0, 0, 0, 0]), EPERM);
    assert_eq!(check(false, libc::SYS_ioctl, [0, libc::TIOCGWINSZ, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn sockets_other_than_unix_are_refused_only_with_network_off() {
    let inet = [libc::AF_INET as u64, 1, 0, 0, 0, 0];
    let unix = [libc::AF_UNIX as u64, 1, 0, 0, 0, 0];
    assert_eq!(check(true, libc::SYS_socket, inet), EPERM);
    assert_eq!(check(true, libc::SYS_socket, [libc::AF_INET6 as u64, 2, 0, 0, 0, 0]), EPERM);
    assert_eq!(check(true, libc::SYS_socket, unix), ALLOW);
    assert_eq!(check(false, libc::SYS_socket, inet), ALLOW);
}

#[test]
fn new_user_namespaces_are_refused_and_clone3_falls_back() {
    let newuser = libc::CLONE_NEWUSER as u64;
    assert_eq!(check(false, libc::SYS_unshare, [newuser, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(check(false, libc::SYS_clone, [newuser | libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(check(false, libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(check(false, libc::SYS_clone3, [0; 6]), libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
}

#[test]
fn network_by_name_allows_ip_sockets_and_nothing_else() {
    let prog = compile(&rules(Sockets::UnixAndIp), false);
    let socket = |family: i32| run(&prog, AUDIT_ARCH, libc::SYS_socket, [family as u64, 1, 0, 0, 0, 0]);
    for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
        assert_eq!(socket(family), ALLOW, "family {family}");
    }
    for family in [libc::AF_NETLINK, libc::AF_PACKET, libc::AF_VSOCK, libc::AF_BLUETOOTH, 0, 9999] {
        assert_eq!(socket(family), EPERM, "family {family}");
    }
    // A high word does not turn a refused family into an allowed one, nor the reverse.
    assert_eq!(run(&prog, AUDIT_ARCH, libc::SYS_socket, [(1 << 32) | libc::AF_INET as u64, 1, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run(&prog, AUDIT_ARCH, libc::SYS_socket, [(1 << 32) | libc::AF_PACKET as u64, 1, 0, 0, 0, 0]), EPERM);
    // Other calls are judged as before.
    assert_eq!(run(&prog, AUDIT_ARCH, libc::SYS_ptrace, [0; 6]), EPERM);
    assert_eq!(run(&prog, AUDIT_ARCH, libc::SYS_read, [0; 6]), ALLOW);
}

#[test]
fn foreign_architectures_and_x32_are_killed() {
    let prog = compile(&rules(Sockets::Any), false);
    assert_eq!(run(&prog, 0x4000_0003, libc::SYS_read, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    if cfg!(target_arch = "x86_64") {
        assert_eq!(run(&prog, AUDIT_ARCH, 0x4000_0000, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    }
}

#[test]
fn notify_mode_sends_denials_to_the_supervisor() {
    let prog = compile(&rules(Sockets::Unix), true);
    assert_eq!(run(&prog, AUDIT_ARCH, libc::SYS_ptrace, [0; 6]), libc::SECCOMP_RET_USER_NOTIF);
    assert_eq!(run(&prog, AUDIT_ARCH, libc::SYS_clone3, [0; 6]), libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    assert!(prog.len() < 4096);
}

#[test]
fn denials_are_described() {
    let r = rules(Sockets::Unix);
    assert_eq!(describe(&r, libc::SYS_socket, &[2, 1, 0, 0, 0, 0]), "socket(family 2 AF_INET)");
    assert_eq!(describe(&r, libc::SYS_ptrace, &[16, 42, 0, 0, 0, 0]), "ptrace(request 16, pid 42)");
}
