//! The edge: dispatches parsed flags to the room that handles them; errors become one line with a
//! fix, outcomes exit codes. The engine backend is chosen here (one line per backend).

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, Command, EgressArgs, GcArgs, ImageBuildArgs, ImageCommand, SessionArgs};
use crate::docker::{context, engine, gc, image, tty, DockerEngine};
use crate::host_env::HostEnv;
use crate::session::{self, SessionPolicy};

/// Runs the parsed command line; returns the process exit code.
pub async fn main(cli: Cli) -> Result<i32> {
    let at = cli.engine.as_deref();
    match cli.command {
        None => {
            let mut command = vec!["codex".to_string()];
            command.extend(cli.codex_args);
            run_session(&cli.session, at, command, tty::interactive()).await
        }
        Some(Command::Run(r)) => {
            if r.tty && !tty::interactive() {
                bail!("--tty needs a terminal on stdin and stdout; drop --tty to run without one");
            }
            run_session(&r.session, at, r.command, r.tty).await
        }
        Some(Command::Image(ImageCommand::Build(b))) => build_image(&b, at).await,
        Some(Command::Image(ImageCommand::Bootstrap(b))) => {
            let docker = docker(at).await?;
            let tag = b.tag.clone().unwrap_or_else(|| format!("codex-box-base:{}", b.suite));
            image::bootstrap(&docker, &b.suite, b.mirror.as_deref(), &tag).await?;
            Ok(0)
        }
        Some(Command::Image(ImageCommand::ImportRootfs(i))) => {
            let docker = docker(at).await?;
            image::import_rootfs(&docker, &i.dir, &i.tag).await?;
            Ok(0)
        }
        Some(Command::Egress(e)) => show_egress(&e, at).await,
        // Dispatched by main before the async runtime starts.
        Some(Command::Sandbox(args)) => crate::native::run_cli(&args),
        Some(Command::Doctor(d)) => crate::doctor::run(&d, at).await,
        Some(Command::Gc(GcArgs { all })) => collect(all, at).await,
        // Dispatched by main on every platform.
        Some(Command::Completions { .. } | Command::Man) => Ok(crate::cli::print_docs(cli.command.as_ref())),
    }
}

/// The engine `--engine` (`at`) or the environment names, else the first usual socket.
async fn docker(at: Option<&str>) -> Result<bollard::Docker> {
    Ok(engine::connect_with(at, &HostEnv::from_process()).await?.docker)
}

/// The session's policy from the flags, the environment and the project, built once.
fn policy(args: &SessionArgs, env: &HostEnv) -> Result<SessionPolicy> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(SessionPolicy::build(args, env.clone(), &cwd)?)
}

/// A container session: checked before any engine is asked, then run on the Docker Engine.
async fn run_session(args: &SessionArgs, at: Option<&str>, command: Vec<String>, interactive: bool) -> Result<i32> {
    let env = HostEnv::from_process();
    let policy = policy(args, &env)?;
    let size = if interactive { tty::size() } else { None };
    let checked = session::check(&policy, command, interactive, size)?;
    // Before anything is created: a wrong or missing engine leaves nothing behind.
    let mut engine = DockerEngine::connect(at, &env).await?;
    engine.companion_bin = policy.env.companion_bin.clone();
    session::run(&engine, checked).await
}

/// `codex-box egress`: the gateway comes from the engine when one answers.
async fn show_egress(e: &EgressArgs, at: Option<&str>) -> Result<i32> {
    if let Some(name) = &e.preset {
        print!("{}", session::report::presets(name, e.json)?);
        return Ok(0);
    }
    let env = HostEnv::from_process();
    let policy = policy(&e.session, &env)?;
    if let Some(crate::cli::EgressAction::Why { target }) = &e.action {
        return session::report::why(&policy, target, e.json).await;
    }
    let engine = DockerEngine::connect(at, &env).await.ok();
    session::report::egress(&policy, engine.as_ref(), e.json, e.rules).await
}

async fn build_image(b: &ImageBuildArgs, at: Option<&str>) -> Result<i32> {
    let docker = docker(at).await?;
    let spec = image::BuildSpec {
        tag: b.tag.clone().unwrap_or_else(|| context::default_tag(b.codex_version.as_deref())),
        base: b.base.clone(),
        codex_version: b.codex_version.clone().unwrap_or_else(|| "latest".into()),
        node: b.node.clone(),
        ca_certs: b.ca_cert.iter().cloned().chain(HostEnv::from_process().ca_certs).collect(),
        no_cache: b.no_cache,
    };
    match image::build(&docker, &spec).await {
        Err(e @ image::ImageError::Interrupted { .. }) => {
            eprintln!("codex-box: {e}");
            Ok(130)
        }
        r => r.map(|()| 0).map_err(Into::into),
    }
}

async fn collect(all: bool, at: Option<&str>) -> Result<i32> {
    let docker = docker(at).await?;
    let containers =
        gc::collect(&docker, all).await.context("collecting codex-box containers left by killed sessions")?;
    // What was removed is said before the next step can fail.
    for r in &containers {
        println!("removed {r}");
    }
    let names = gc::collect_building_tags(&docker).await.context("collecting names of interrupted image builds")?;
    for r in &names {
        println!("removed {r}");
    }
    if containers.is_empty() && names.is_empty() {
        crate::notice!("codex-box: nothing to remove");
    }
    Ok(0)
}
