//! `cargo bench --bench native_sandbox`: time `codex-box sandbox -- true` beside `/bin/true`, `bwrap`
//! (if installed), and `codex sandbox linux true` / `srt true` when on PATH. Prints the median and 90th
//! percentile wall time, the peak RSS of the whole process tree (wait4's rusage, which covers the
//! reaped descendants), and ratios. Targets: ≤ 3 ms and ≤ 8 MiB for codex-box.
// Times the Linux sandbox; elsewhere the bench is empty (checked, never run).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 200;

fn on_path(name: &str) -> Option<String> {
    std::env::var("PATH").ok()?.split(':').map(|d| format!("{d}/{name}")).find(|p| std::path::Path::new(p).is_file())
}

struct Stats {
    median: Duration,
    p90: Duration,
    max_rss_kib: i64,
    failures: usize,
}

// The child is reaped with wait4 (for its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn measure(argv: &[String]) -> Stats {
    let mut times = Vec::with_capacity(RUNS);
    let (mut rss, mut failures) = (0i64, 0usize);
    for i in 0..RUNS + 5 {
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
        if i < 5 {
            continue; // warm-up
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failures += 1;
        }
        times.push(el);
        rss = rss.max(ru.ru_maxrss);
    }
    times.sort();
    Stats { median: times[RUNS / 2], p90: times[RUNS * 9 / 10], max_rss_kib: rss, failures }
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_codex-box").to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut cases: Vec<(&str, Vec<String>)> = vec![
        ("/bin/true", s(&["/bin/true"])),
        ("codex-box sandbox -- true", vec![bin.clone(), "sandbox".into(), "--".into(), "true".into()]),
        ("codex-box sandbox --full-auto -- true", vec![bin, "sandbox".into(), "--full-auto".into(), "--".into(), "true".into()]),
    ];
    if let Some(bwrap) = on_path("bwrap") {
        let mut v = s(&["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--unshare-all", "--die-with-parent", "true"]);
        v.insert(0, bwrap);
        cases.push(("bwrap (ro /, unshare-all) true", v));
    } else {
        println!("skipped: bwrap not installed");
    }
    match on_path("codex") {
        Some(c) => cases.push(("codex sandbox linux true", vec![c, "sandbox".into(), "linux".into(), "true".into()])),
        None => println!("skipped: codex not on PATH"),
    }
    match on_path("srt") {
        Some(c) => cases.push(("srt true", vec![c, "true".into()])),
        None => println!("skipped: srt not on PATH"),
    }
    let base = measure(&cases[0].1).median;
    println!("{RUNS} runs each, after 5 warm-up runs");
    println!("{:<40} {:>10} {:>10} {:>12} {:>9}", "command", "median", "p90", "peak RSS", "vs true");
    let mut medians = Vec::new();
    for (name, argv) in &cases {
        let st = measure(argv);
        medians.push((name, st.median));
        println!(
            "{:<40} {:>8.2}ms {:>8.2}ms {:>8.1} MiB {:>8.1}x{}",
            name,
            st.median.as_secs_f64() * 1e3,
            st.p90.as_secs_f64() * 1e3,
            st.max_rss_kib as f64 / 1024.0,
            st.median.as_secs_f64() / base.as_secs_f64(),
            if st.failures > 0 { format!("  ({} runs failed!)", st.failures) } else { String::new() },
        );
    }
    if let (Some(cb), Some(bw)) = (medians.get(1), medians.iter().find(|(n, _)| n.starts_with("bwrap"))) {
        println!("codex-box / bwrap: {:.2}x", cb.1.as_secs_f64() / bw.1.as_secs_f64());
    }
}
