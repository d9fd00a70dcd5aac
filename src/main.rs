use clap::Parser;

fn main() {
    let cli = codex_box::cli::Cli::parse();
    if let Some(codex_box::cli::Command::Sandbox(args)) = &cli.command {
        std::process::exit(codex_box::native::run_cli(args).unwrap_or_else(|e| {
            eprintln!("codex-box: {e:#}");
            1
        }));
    }
    eprintln!("{cli:?}");
}
