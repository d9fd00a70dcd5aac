//! codex-box's binary: parse, run, print errors as one line with a fix on stderr.

use clap::Parser;

fn main() {
    // The companion container's entry point (not a user command, so not in --help or completions).
    #[cfg(unix)]
    if std::env::args().nth(1).as_deref() == Some("companion") {
        std::process::exit(companion(std::env::args().skip(2).collect()));
    }
    let cli = codex_box::cli::Cli::parse_from(codex_box::cli::hoist_globals(std::env::args_os().collect()));
    codex_box::notice::set_quiet(cli.quiet);
    if let Some(c @ (codex_box::cli::Command::Completions { .. } | codex_box::cli::Command::Man)) = &cli.command {
        std::process::exit(codex_box::cli::print_docs(Some(c)));
    }
    // The native sandbox forks and sandboxes a child: it runs before (and without) the async runtime.
    if let Some(codex_box::cli::Command::Sandbox(args)) = &cli.command {
        if cli.engine.is_some() {
            eprintln!("codex-box: --engine names a container engine; the native sandbox (`codex-box sandbox`) uses none: drop --engine");
            std::process::exit(125);
        }
        std::process::exit(codex_box::native::run_cli(args).unwrap_or_else(|e| {
            eprintln!("codex-box: {e:#}");
            125
        }));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("codex-box: cannot start the async runtime: {e}");
            std::process::exit(125);
        }
    };
    let code = match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("codex-box: {e:#}");
            125
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_millis(50));
    std::process::exit(code);
}

#[cfg(unix)]
fn companion(args: Vec<String>) -> i32 {
    let run = || -> anyhow::Result<i32> {
        let (beacon, proxy, relay) = codex_box::companion::parse_args(&args)?;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        rt.block_on(codex_box::companion::run(beacon, proxy, relay))
    };
    run().unwrap_or_else(|e| {
        eprintln!("codex-box companion: {e:#}");
        125
    })
}

#[cfg(unix)]
async fn run(cli: codex_box::cli::Cli) -> anyhow::Result<i32> {
    codex_box::app::main(cli).await
}

/// Windows: only the native sandbox and doctor are available; container sessions need a Unix host for now.
#[cfg(not(unix))]
async fn run(cli: codex_box::cli::Cli) -> anyhow::Result<i32> {
    if let Some(codex_box::cli::Command::Doctor(d)) = &cli.command {
        return codex_box::doctor::run(d, cli.engine.as_deref()).await;
    }
    anyhow::bail!(
        "container sessions are not supported on Windows yet; run codex-box inside WSL2, \
         or use the native sandbox: `codex-box sandbox -- CMD`"
    )
}
