use clap::Parser;

fn main() {
    let cli = codex_box::cli::Cli::parse();
    eprintln!("{cli:?}");
}
