//! Firewall install time for 10, 1 000 and 10 000 CIDRs: one `ipset restore` of the generated
//! text (plus the two iptables restores) against one `ipset add` process per entry, inside a
//! network namespace this bench creates (`cbx-bench-<pid>`). Target: 10 000 entries under 200 ms.
//! The entries come from 198.18.0.0/15 (the benchmarking range) and no packet is sent.
// Linux only (network namespaces, iptables); elsewhere the bench is empty (checked, never run).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use codex_box::egress::rules::SET_V4;
use codex_box::egress::{aggregate, render, FirewallSpec};
use support::netns::{unsupported, Netns};

/// Runs a command on the calling thread's namespace, feeding it `stdin`.
fn run(argv: &[&str], stdin: &str) {
    let mut child =
        Command::new(argv[0]).args(&argv[1..]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("spawn");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "{argv:?} failed");
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    if let Some(reason) = unsupported() {
        support::skip(&reason);
        return;
    }
    let ns = Netns::add(&format!("cbx-bench-{}", std::process::id())).expect("namespace");
    println!("egress_install: ipset restore (one process) vs ipset add (one process per entry)");
    println!(
        "{:>7} {:>12} {:>16} {:>12} {:>14} {:>8}",
        "entries", "render", "ipset restore", "full install", "ipset add xN", "ratio"
    );
    for n in [10usize, 1_000, 10_000] {
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        let addrs: Vec<IpAddr> = (0..n as u32).map(|i| IpAddr::V4(Ipv4Addr::from(base + 2 * i))).collect();
        let t = Instant::now();
        let spec = FirewallSpec { sets: aggregate(addrs.clone(), &[]), ..FirewallSpec::default() };
        let texts = render(&spec);
        let render_time = t.elapsed();
        assert_eq!(spec.sets.v4.len(), n);

        let (restore, full) = ns.enter(move || {
            let t = Instant::now();
            run(&["ipset", "restore", "-exist"], &texts.ipset);
            let restore = t.elapsed();
            run(&["iptables-restore"], &texts.v4);
            run(&["ip6tables-restore"], &texts.v6);
            (restore, t.elapsed())
        });
        let count = ns.exec(&["ipset", "list", SET_V4, "-terse"], None).unwrap();
        let listed = String::from_utf8_lossy(&count.stdout).to_string();
        assert!(listed.contains(&format!("Number of entries: {n}")), "{listed}");

        let baseline = ns.enter(move || {
            run(&["ipset", "flush", SET_V4], "");
            let t = Instant::now();
            for a in &addrs {
                let ok =
                    Command::new("ipset").args(["add", SET_V4, &a.to_string(), "-exist"]).status().expect("ipset add");
                assert!(ok.success());
            }
            t.elapsed()
        });
        println!(
            "{n:>7} {:>12} {:>16} {:>14} {:>14} {:>7.0}x",
            ms(render_time),
            ms(restore),
            ms(full),
            ms(baseline),
            baseline.as_secs_f64() / restore.as_secs_f64()
        );
        if n == 10_000 {
            let verdict = if full < Duration::from_millis(200) { "met" } else { "MISSED" };
            println!("target: 10 000 entries installed (ipset + iptables) under 200 ms: {verdict}");
        }
    }
}
