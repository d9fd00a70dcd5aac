//! Session start: `codex-box run -- true` with the egress firewall (10 allowlisted names) and a warm image beside a bare create/start/wait/remove of
//! the same image through the Engine API (and `docker run --rm IMAGE true` when the docker CLI is
//! there), in one run. Prints medians and ratios. Target: codex-box ≤ 1.3 × the bare API run.
//!
//! `cargo bench --bench session_start` (ITERATIONS=N to change the sample count;
//! CODEX_BOX_BENCH_ENGINES="unix:///var/run/docker.sock unix:///run/podman/podman.sock …" compares
//! on each engine in one run and ends with a table of the ratios;
//! CODEX_BOX_BASELINE_BIN=/path/to/an/older/codex-box also times that binary, for a regression check).
// Needs a Unix host; elsewhere the bench is empty (checked, never run).
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::RemoveContainerOptions;
use futures_util::StreamExt;

/// Ten allowlisted names, answered (with documentation addresses) by a test DNS server on loopback,
/// like the built-in names: the bench never asks the host's resolver.
const NAMES: [&str; 10] = [
    "deb.debian.org",
    "security.debian.org",
    "registry.npmjs.org",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "static.crates.io",
    "index.crates.io",
    "repo.maven.apache.org",
    "github.com",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let image = std::env::var("CODEX_BOX_TEST_IMAGE").unwrap_or_else(|_| "codex-sandbox".into());
    let n: usize = std::env::var("ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    // Every engine to compare on, by address (`CODEX_BOX_BENCH_ENGINES`, space separated: .ci/run's
    // matrix sets it); else the one the environment names.
    let engines: Vec<Option<String>> = match std::env::var("CODEX_BOX_BENCH_ENGINES") {
        Ok(list) if !list.trim().is_empty() => list.split_whitespace().map(|a| Some(a.to_string())).collect(),
        _ => vec![None],
    };
    let zone = NAMES
        .iter()
        .chain(codex_box::egress::BUILTIN_NAMES)
        .enumerate()
        .fold(support::dns_server::Zone::new(60), |z, (i, n)| z.addr(n, &format!("192.0.2.{}", 10 + i)));
    let dns = support::dns_server::TestDns::start(zone);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut summary = Vec::new();
    for engine in &engines {
        let env = codex_box::host_env::HostEnv::from_process();
        let docker = match rt.block_on(codex_box::docker::engine::connect_with(engine.as_deref(), &env)) {
            Ok(c) => c.docker,
            Err(e) => {
                support::skip(&format!("session_start bench: {e}"));
                continue;
            }
        };
        let name = engine.clone().unwrap_or_else(|| "the environment's engine".into());
        let ratio = bench_engine(&rt, &docker, engine.as_deref(), &name, &image, n, &dns);
        summary.push((name, ratio));
    }
    if summary.len() > 1 {
        println!("per engine: codex-box / bare API (target <= 1.30x on each)");
        for (name, ratio) in summary {
            println!("  {ratio:.2}x  {name}");
        }
    }
}

/// Times codex-box against a bare API run on one engine; prints the block; returns the ratio.
fn bench_engine(
    rt: &tokio::runtime::Runtime,
    docker: &bollard::Docker,
    engine: Option<&str>,
    name: &str,
    image: &str,
    n: usize,
    dns: &support::dns_server::TestDns,
) -> f64 {
    let dns_flag = format!("--dns-server={}", dns.addr);
    let wd = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_codex-box");
    let baseline = std::env::var_os("CODEX_BOX_BASELINE_BIN").filter(|_| engine.is_none());
    let run_with = |bin: &std::ffi::OsStr, applier: &str| {
        let t = Instant::now();
        let mut cmd = Command::new(bin);
        cmd.arg("run");
        if let Some(e) = engine {
            cmd.args(["--engine", e]);
        }
        let st = cmd
            .args(["--work_dir", wd.path().to_str().unwrap(), "--firewall-applier", applier, &dns_flag])
            .args(NAMES.iter().flat_map(|n| ["--allow-domain", n]))
            .args(["--", "true"])
            .env("CODEX_DOCKER_IMAGE", image)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "codex-box run failed on {name}");
        t.elapsed()
    };
    let run_box = |applier: &str| run_with(bin.as_ref(), applier);
    let bare = || {
        rt.block_on(async {
            let t = Instant::now();
            let body = ContainerCreateBody {
                image: Some(image.to_string()),
                cmd: Some(vec!["true".into()]),
                host_config: Some(HostConfig::default()),
                ..Default::default()
            };
            let id = docker.create_container(None, body).await.unwrap().id;
            docker.start_container(&id, None).await.unwrap();
            let _ = docker.wait_container(&id, None).next().await;
            docker
                .remove_container(&id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
                .await
                .unwrap();
            t.elapsed()
        })
    };
    let image_cli = image.to_string();
    let cli = (which("docker") && engine.is_none()).then_some({
        move || {
            let t = Instant::now();
            let st = Command::new("docker")
                .args(["run", "--rm", &image_cli, "true"])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
            t.elapsed()
        }
    });
    // Warm up every path once (the first firewalled session also makes the network's beacon).
    run_box("entrypoint");
    run_box("sidecar");
    bare();
    if let Some(old) = &baseline {
        run_with(old, "entrypoint");
    }
    let (mut a, mut b, mut c, mut sc, mut base) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        a.push(run_box("entrypoint"));
        if let Some(old) = &baseline {
            base.push(run_with(old, "entrypoint"));
        }
        sc.push(run_box("sidecar"));
        b.push(bare());
        if let Some(f) = &cli {
            c.push(f());
        }
    }
    let (ma, mb, ms_) = (median(a), median(b), median(sc));
    println!("session start on {name}, {n} runs each, image {image}");
    println!("  codex-box run (firewall, 10 allowlisted names + built-ins) -- true");
    println!("                                  median {:8.1} ms", ms(ma));
    println!("  same, --firewall-applier sidecar median {:8.1} ms", ms(ms_));
    println!("  bare API create/start/wait/rm   median {:8.1} ms", ms(mb));
    if !c.is_empty() {
        let mc = median(c);
        println!("  docker run --rm IMAGE true      median {:8.1} ms", ms(mc));
        println!("  ratio codex-box / docker run    {:.2}x", ma.as_secs_f64() / mc.as_secs_f64());
    }
    let ratio = ma.as_secs_f64() / mb.as_secs_f64();
    println!("  ratio codex-box / bare API      {ratio:.2}x  (target <= 1.30x)");
    println!("  ratio sidecar / bare API        {:.2}x", ms_.as_secs_f64() / mb.as_secs_f64());
    if !base.is_empty() {
        let mbase = median(base);
        println!("  baseline binary (same flags)    median {:8.1} ms", ms(mbase));
        println!(
            "  ratio codex-box / baseline      {:.2}x  (no regression: <= ~1.05x)",
            ma.as_secs_f64() / mbase.as_secs_f64()
        );
    }
    ratio
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}
