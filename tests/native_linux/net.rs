//! Network: TCP, UDP, unix-socket paths and abstract sockets to listeners outside.

use crate::*;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

const CONNECT: &str = r#"
import socket, sys
kind, addr = sys.argv[1], sys.argv[2]
try:
    if kind == "tcp":
        s = socket.create_connection(("127.0.0.1", int(addr)), timeout=2); s.sendall(b"hi")
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"hi", ("127.0.0.1", int(addr)))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(("\0" + addr) if kind == "abstract" else addr); s.sendall(b"hi")
    print("connected")
except OSError as e:
    print("refused errno", e.errno)
"#;

fn connect(fx: &Fx, flags: &[&str], kind: &str, addr: &str) -> Run {
    output(cmd(fx, flags, &[PY, "-c", CONNECT, kind, addr]).output().unwrap())
}

#[test]
fn network_is_off_for_tcp_udp_and_abstract_unix_sockets() {
    if !sandbox_works() || !python() {
        return;
    }
    use std::os::linux::net::SocketAddrExt;
    let fx = fx();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port().to_string();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let udp_port = udp.local_addr().unwrap().port().to_string();
    let name = format!("codex-box-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let abs = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();

    for flags in [&[][..], &["--full-auto"][..]] {
        assert_eq!(connect(&fx, flags, "tcp", &tcp_port).out.trim(), "refused errno 1", "tcp {flags:?}");
        assert_eq!(connect(&fx, flags, "udp", &udp_port).out.trim(), "refused errno 1", "udp {flags:?}");
        let r = connect(&fx, flags, "abstract", &name);
        assert!(r.out.starts_with("refused"), "abstract {flags:?}: {}", r.out);
    }
    // Abstract sockets stay scoped by Landlock (ABI 6+) even when the network is on.
    if require(landlock_abi() >= 6, "Landlock ABI < 6: no abstract-socket scoping to test") {
        let r = connect(&fx, &["-s", "workspace-write", "--network"], "abstract", &name);
        assert!(r.out.starts_with("refused errno 1"), "{}{}", r.out, r.err);
    }

    // Controls: the same listeners are reachable with the network on / without a sandbox.
    assert_eq!(connect(&fx, &["-s", "workspace-write", "--network"], "tcp", &tcp_port).out.trim(), "connected");
    let mut s = tcp.accept().unwrap().0;
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    assert_eq!(connect(&fx, &["-s", "workspace-write", "--network"], "udp", &udp_port).out.trim(), "connected");
    assert_eq!(udp.recv(&mut buf).unwrap(), 2);
    assert_eq!(connect(&fx, &["-s", "danger-full-access"], "abstract", &name).out.trim(), "connected");
    drop(abs);
}

#[test]
fn unix_socket_paths_in_the_host_tmp_are_out_of_reach() {
    if !sandbox_works() || !python() {
        return;
    }
    let fx = fx();
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let path = dir.path().join("sock");
    let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let p = path.to_str().unwrap();
    let r = connect(&fx, &["--full-auto"], "unix", p);
    assert_eq!(r.out.trim(), "refused errno 2", "the private /tmp hides it: {}{}", r.out, r.err);
    assert_eq!(connect(&fx, &["-s", "danger-full-access"], "unix", p).out.trim(), "connected");
}

#[test]
fn service_sockets_and_configured_paths_are_hidden() {
    if !sandbox_works() || !python() {
        return;
    }
    let fx = fx();
    let sock = fx.outside.join("svc.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let p = sock.to_str().unwrap();
    // Every socket listening by path when the sandbox starts is hidden, wherever it is...
    let r = connect(&fx, &[], "unix", p);
    assert_eq!(r.out.trim(), "refused errno 111", "{}{}", r.out, r.err);
    // ...unless kept with --allow-unix-socket (or hide_sockets = false): the control.
    assert_eq!(connect(&fx, &["--allow-unix-socket", p], "unix", p).out.trim(), "connected");
    let open = fx.home.join("open.toml");
    std::fs::write(&open, "[permissions.p]\nhide_sockets = false\n").unwrap();
    assert_eq!(connect(&fx, &["--config", open.to_str().unwrap(), "-P", "p"], "unix", p).out.trim(), "connected");
    // deny_read hides it even when allowed.
    let cfg = fx.home.join("cfg.toml");
    std::fs::write(&cfg, format!("[permissions.p]\ndeny_read = [\"{p}\"]\n")).unwrap();
    let r = connect(&fx, &["--config", cfg.to_str().unwrap(), "-P", "p", "--allow-unix-socket", p], "unix", p);
    assert_eq!(r.out.trim(), "refused errno 111", "{}{}", r.out, r.err);
    // A socket the command makes itself (in its writable root) works.
    let own = "import socket,os; s=socket.socket(socket.AF_UNIX); s.bind('own.sock'); s.listen(); \
               c=socket.socket(socket.AF_UNIX); c.connect('own.sock'); print('own ok')";
    let r = output(cmd(&fx, &["--full-auto"], &[PY, "-c", own]).output().unwrap());
    assert_eq!(r.out.trim(), "own ok", "{}", r.err);
    // The host's real service sockets (whatever this machine runs: containerd, Docker, D-Bus…).
    for s in ["/var/run/docker.sock", "/var/run/docker/containerd/containerd.sock", "/run/dbus/system_bus_socket"] {
        if Path::new(s).exists() {
            let r = connect(&fx, &[], "unix", s);
            assert!(r.out.starts_with("refused"), "{s} is a way out of any sandbox: {}", r.out);
        }
    }
}

#[test]
fn a_socket_behind_a_directory_the_sandbox_cannot_search_stays_out_of_reach_and_does_not_stop_it() {
    // Another user's runtime directory (0700) with a listening socket, like a rootless engine's
    // /run/user/UID/podman/podman.sock: the sandbox's user namespace cannot search it, so hiding
    // it is neither possible nor needed; the run must start and the socket stay unreachable.
    if !sandbox_works() || !python() || !nix::unistd::geteuid().is_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let fx = fx();
    let dir = fx.outside.join("run-user-65534");
    std::fs::create_dir(&dir).unwrap();
    let sock = dir.join("podman.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let p = sock.to_str().unwrap();
    // Control: on the host (root) the socket answers.
    assert!(std::os::unix::net::UnixStream::connect(&sock).is_ok());
    let r = connect(&fx, &[], "unix", p);
    assert_eq!(r.out.trim(), "refused errno 13", "the sandbox started and cannot reach it: {}{}", r.out, r.err);
}
