//! `cargo bench --bench native_sandbox`: time `codex-box sandbox -- true` beside `/bin/true`, `bwrap`
//! (if installed), and `codex sandbox linux true` / `srt true` when on PATH (or named by `CODEX_BIN` /
//! `SRT_BIN`, e.g. the native codex binary rather than its node wrapper). Newer Codex CLIs spell it
//! `codex sandbox -- true`; the bench uses whichever works. Prints the median and 90th
//! percentile wall time, the peak RSS of the whole process tree (wait4's rusage, which covers the
//! reaped descendants), and ratios. Targets: ≤ 3 ms and ≤ 8 MiB for codex-box.
// Times the Linux sandbox; elsewhere the bench is empty (checked, never run).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs per command (override with BENCH_RUNS).
fn runs() -> usize {
    std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

fn on_path(name: &str) -> Option<String> {
    std::env::var("PATH").ok()?.split(':').map(|d| format!("{d}/{name}")).find(|p| std::path::Path::new(p).is_file())
}

#[derive(Default)]
struct Stats {
    times: Vec<Duration>,
    max_rss_kib: i64,
    failures: usize,
}

impl Stats {
    fn pct(&self, p: usize) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t[(t.len() * p / 100).min(t.len() - 1)]
    }
}

/// One run, reaped with wait4 for the tree's peak RSS.
// The child is reaped with wait4 (for its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn run_once(argv: &[String], st: &mut Stats, record: bool) {
    let t = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: rusage is plain old data, filled by wait4.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid out-pointers.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let el = t.elapsed();
    if !record {
        return;
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        st.failures += 1;
    }
    st.times.push(el);
    st.max_rss_kib = st.max_rss_kib.max(ru.ru_maxrss);
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_codex-box").to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut cases: Vec<(&str, Vec<String>)> = vec![
        ("/bin/true", s(&["/bin/true"])),
        ("codex-box sandbox -- true", vec![bin.clone(), "sandbox".into(), "--".into(), "true".into()]),
        (
            "codex-box sandbox --full-auto -- true",
            vec![bin, "sandbox".into(), "--full-auto".into(), "--".into(), "true".into()],
        ),
    ];
    if let Some(bwrap) = on_path("bwrap") {
        let mut v = s(&[
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--unshare-all",
            "--die-with-parent",
            "true",
        ]);
        v.insert(0, bwrap);
        cases.push(("bwrap (ro /, unshare-all) true", v));
    } else {
        println!("skipped: bwrap not installed");
    }
    match std::env::var("CODEX_BIN").ok().or_else(|| on_path("codex")) {
        Some(c) => {
            let old = vec![c.clone(), "sandbox".into(), "linux".into(), "true".into()];
            let ok = Command::new(&c).args(&old[1..]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
            if ok {
                cases.push(("codex sandbox linux true", old));
            } else {
                cases.push(("codex sandbox -- true", vec![c, "sandbox".into(), "--".into(), "true".into()]));
            }
        }
        None => println!("skipped: codex not on PATH"),
    }
    match std::env::var("SRT_BIN").ok().or_else(|| on_path("srt")) {
        Some(c) => cases.push(("srt true", vec![c, "true".into()])),
        None => println!("skipped: srt not on PATH"),
    }
    // Round-robin, so that load from other processes hits every command alike.
    let mut stats: Vec<Stats> = cases.iter().map(|_| Stats::default()).collect();
    let runs = runs();
    for i in 0..runs + 5 {
        for ((_, argv), st) in cases.iter().zip(stats.iter_mut()) {
            run_once(argv, st, i >= 5);
        }
    }
    let base = stats[0].pct(50);
    println!("{runs} runs each, round-robin, after 5 warm-up rounds");
    println!("{:<40} {:>10} {:>10} {:>12} {:>9}", "command", "median", "p90", "peak RSS", "vs true");
    let mut medians = Vec::new();
    for ((name, _), st) in cases.iter().zip(&stats) {
        medians.push((name, st.pct(50)));
        println!(
            "{:<40} {:>8.2}ms {:>8.2}ms {:>8.1} MiB {:>8.1}x{}",
            name,
            st.pct(50).as_secs_f64() * 1e3,
            st.pct(90).as_secs_f64() * 1e3,
            st.max_rss_kib as f64 / 1024.0,
            st.pct(50).as_secs_f64() / base.as_secs_f64(),
            if st.failures > 0 { format!("  ({} runs failed!)", st.failures) } else { String::new() },
        );
    }
    if let (Some(cb), Some(bw)) = (medians.get(1), medians.iter().find(|(n, _)| n.starts_with("bwrap"))) {
        println!("codex-box / bwrap: {:.2}x", cb.1.as_secs_f64() / bw.1.as_secs_f64());
    }
}
