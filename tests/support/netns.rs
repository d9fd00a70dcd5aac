//! Throwaway network namespaces (`ip netns`), deleted on drop, and running code inside one.

use std::io::Write;
use std::process::{Command, Output, Stdio};

pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates the namespace with loopback up; Err(reason) when this host cannot.
    pub fn add(name: &str) -> Result<Netns, String> {
        let _ = Command::new("ip").args(["netns", "del", name]).stderr(Stdio::null()).status();
        run(&["ip", "netns", "add", name], None)?;
        let ns = Netns { name: name.to_string() };
        ns.exec(&["ip", "link", "set", "lo", "up"], None)?;
        Ok(ns)
    }

    /// A namespace `name` joined to this host by a veth pair: the host's end `outer` at
    /// `198.18.<third>.1/24`, the namespace's `eth0` at `198.18.<third>.10/24` (returned).
    pub fn with_test_host(name: &str, outer: &str, third: u8) -> Result<(Netns, String), String> {
        let ns = Netns::add(name)?;
        let ip = format!("198.18.{third}.10");
        run(&["ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", &ns.name], None)?;
        run(&["ip", "addr", "add", &format!("198.18.{third}.1/24"), "dev", outer], None)?;
        run(&["ip", "link", "set", outer, "up"], None)?;
        ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"], None)?;
        ns.exec(&["ip", "link", "set", "eth0", "up"], None)?;
        Ok((ns, ip))
    }

    /// Runs a command inside the namespace, with optional standard input.
    pub fn exec(&self, argv: &[&str], stdin: Option<&str>) -> Result<Output, String> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        run(&full, stdin)
    }

    /// Runs `f` on a thread that has joined the namespace (sockets it creates stay there).
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open the namespace");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("thread inside the namespace panicked")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Runs a command; Err names the command, its status and stderr.
pub fn run(argv: &[&str], stdin: Option<&str>) -> Result<Output, String> {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| format!("writing to {}: {e}", argv[0]))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("waiting for {}: {e}", argv[0]))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}

/// Why namespace tests cannot run here, if they cannot.
pub fn unsupported() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root for network namespaces and iptables".into());
    }
    for tool in ["ip", "ipset", "iptables-restore", "ip6tables-restore"] {
        if run(&["sh", "-c", &format!("command -v {tool}")], None).is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}
