//! Getting the session image: build it through the Engine API from the in-process context, pull it,
//! or — on hosts without a registry — make a Debian base with debootstrap and import it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use bollard::Docker;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::context::{self, ContextError};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub tag: String,
    pub base: String,
    pub codex_version: String,
    pub node: String,
    pub ca_certs: Vec<PathBuf>,
    pub no_cache: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("--node {0}: unsupported; use 18, 20 or 22")]
    BadNode(String),
    #[error("building {tag} failed at {step}:\n{output}\n{message}\nFix the cause above and run `codex-box image build` again")]
    BuildStep { tag: String, step: String, output: String, message: String },
    #[error("building {tag}: the engine failed: {source}")]
    Build { tag: String, source: bollard::errors::Error },
    #[error("building {tag} was interrupted; nothing was tagged {tag}: run `codex-box image build` again to build it")]
    Interrupted { tag: String },
    #[error("pulling {image} failed: {source}. Check the name and your registry access, or build it: `codex-box image build --tag {image}`")]
    Pull { image: String, source: bollard::errors::Error },
    #[error("inspecting image {image}: {source}")]
    Inspect { image: String, source: bollard::errors::Error },
    #[error("root filesystem {path}: {reason}")]
    Rootfs { path: PathBuf, reason: String },
    #[error("importing {path} as {tag}: {source}")]
    Import { path: PathBuf, tag: String, source: bollard::errors::Error },
    #[error("debootstrap failed ({status}); see its output above. Is the `debootstrap` package installed and the Debian mirror reachable?")]
    Debootstrap { status: String },
    #[error("cannot run debootstrap: {0}. Install it (`apt-get install debootstrap`) and run as root")]
    DebootstrapSpawn(std::io::Error),
    #[error("temporary directory: {0}")]
    Temp(std::io::Error),
}

fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    if crate::notice::quiet() {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    pb.set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("static template"));
    pb.enable_steady_tick(Duration::from_millis(120));
    pb.set_message(msg);
    pb
}

/// Whether the engine has the image.
pub async fn exists(docker: &Docker, image: &str) -> Result<bool, ImageError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(source) => Err(ImageError::Inspect { image: image.into(), source }),
    }
}

/// Makes sure the image exists: codex-sandbox names are built, others pulled.
pub async fn ensure(docker: &Docker, image: &str, ca_certs: &[PathBuf]) -> Result<(), ImageError> {
    if exists(docker, image).await? {
        return Ok(());
    }
    if context::is_buildable(image) {
        crate::notice!("codex-box: image {image} is missing; building it (once)");
        let spec = BuildSpec {
            tag: image.into(),
            base: "debian:bookworm-slim".into(),
            codex_version: context::pinned_version(image).unwrap_or("latest").into(),
            node: "22".into(),
            ca_certs: ca_certs.to_vec(),
            no_cache: false,
        };
        build(docker, &spec).await
    } else {
        pull(docker, image).await
    }
}

/// Builds the codex-sandbox image, showing the current step; a failing step shows its output.
pub async fn build(docker: &Docker, spec: &BuildSpec) -> Result<(), ImageError> {
    if !matches!(spec.node.as_str(), "18" | "20" | "22") {
        return Err(ImageError::BadNode(spec.node.clone()));
    }
    let certs = context::read_ca_certs(&spec.ca_certs).map_err(ContextError::from)?;
    let tar = context::build_context(&certs)?;
    let args: HashMap<String, String> = [
        ("BASE_IMAGE", spec.base.as_str()),
        ("CODEX_VERSION", spec.codex_version.as_str()),
        ("NODE_MAJOR", spec.node.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // Built under a name of this process and tagged only once complete: an interrupted or failed
    // build (or one an engine finishes after its client left — Podman goes on) never leaves the
    // user's tag on a half-built image; `gc` removes what a dead builder's name still holds.
    let building = building_tag(&spec.tag);
    let opts = BuildImageOptions {
        t: Some(building.clone()),
        buildargs: Some(args),
        nocache: spec.no_cache,
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let pb = spinner(format!("building {}", spec.tag));
    let stream = docker.build_image(opts, None, Some(bollard::body_full(tar.into())));
    let built = tokio::select! {
        r = follow(stream, spec, &pb) => r,
        _ = tokio::signal::ctrl_c() => Err(ImageError::Interrupted { tag: spec.tag.clone() }),
    };
    pb.finish_and_clear();
    let result = match built {
        Ok(()) => {
            let (repo, tag) = split_tag(&spec.tag);
            let opts = bollard::query_parameters::TagImageOptions { repo: Some(repo.into()), tag: Some(tag.into()) };
            docker
                .tag_image(&building, Some(opts))
                .await
                .map_err(|source| ImageError::Build { tag: spec.tag.clone(), source })
        }
        Err(e) => Err(e),
    };
    // Bounded: after a Ctrl-C has been taken, a stuck engine must not keep the user waiting (what
    // is left under the name is `gc`'s).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), untag(docker, &building)).await;
    result?;
    crate::notice!("codex-box: built {}", spec.tag);
    Ok(())
}

/// The name a build of `tag` runs under in this process: `REPO:codex-box-building-PID-HOST`.
pub fn building_tag(tag: &str) -> String {
    format!("{}:{BUILDING_PREFIX}{}-{}", split_tag(tag).0, std::process::id(), tag_host(&this_host()))
}

/// This host's name, as `gc` compares it with a building name's.
#[cfg(unix)]
fn this_host() -> String {
    super::gc::hostname()
}

/// This host's name (Windows: no `gc` of building names there; the name only keeps builds apart).
#[cfg(not(unix))]
fn this_host() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

/// How the tag of an image being built begins (followed by the builder's pid and host).
pub const BUILDING_PREFIX: &str = "codex-box-building-";

/// A host name as a tag may hold it (`[A-Za-z0-9_.-]`, the whole tag at most 128 characters).
fn tag_host(host: &str) -> String {
    host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).take(80).collect()
}

/// The builder's pid in a building tag of a build started on this host (`host`), if it is one.
pub fn building_owner(reference: &str, host: &str) -> Option<i32> {
    let (pid, on) = split_tag(reference).1.strip_prefix(BUILDING_PREFIX)?.split_once('-')?;
    (on == tag_host(host)).then_some(())?;
    pid.parse().ok()
}

/// Removes the name `reference` (the image stays when another name holds it); absent is fine.
/// Whether the name is gone.
pub async fn untag(docker: &Docker, reference: &str) -> bool {
    let opts = bollard::query_parameters::RemoveImageOptions { noprune: false, force: false, ..Default::default() };
    match docker.remove_image(reference, Some(opts), None).await {
        Ok(_) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => true,
        Err(_) => false,
    }
}

/// A build error with what to do about the causes a user can fix on the engine: a full disk shows
/// in the engine's own error ("… no space left on device") or only in the failing step's output
/// (`cat: write error: No space left on device`, then "returned a non-zero code").
fn with_hint(error: String, output: &str) -> String {
    let full = |t: &str| t.to_ascii_lowercase().contains("no space left on device");
    if full(&error) || full(output) {
        format!("{error}\nThe engine's disk is full: free space there (`docker system prune`, `podman system prune`) or give its data root more room")
    } else {
        error
    }
}

/// Build output without terminal escape sequences (Docker's legacy builder colours a step's stderr
/// with `ESC[91m`), which would otherwise reach the user's terminal raw inside an error message.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' && c != '\u{9b}' {
            // Other control characters (BEL, a bare CR that would redraw the line, C1) go too.
            if !c.is_control() || c == '\n' || c == '\t' {
                out.push(c);
            }
            continue;
        }
        if c == '\u{9b}' || chars.peek() == Some(&'[') {
            if c == '\x1b' {
                chars.next();
            }
            chars.next();
            // Parameters and intermediates, up to the final byte (@ to ~).
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// Follows a build's output, showing the current step; a failing step is the error, with its output.
async fn follow(
    mut stream: impl futures_util::Stream<Item = Result<bollard::models::BuildInfo, bollard::errors::Error>> + Unpin,
    spec: &BuildSpec,
    pb: &ProgressBar,
) -> Result<(), ImageError> {
    let mut step = String::from("the first step");
    let mut output = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = info.stream {
                    if is_step(&s) {
                        step = s.trim().to_string();
                        output.clear();
                        pb.set_message(format!("{}: {}", spec.tag, truncate(&step, 100)));
                    } else {
                        // Kept raw and made plain whole: an escape sequence may span two chunks.
                        output.push_str(&s);
                        if let Some(last) = s.lines().rev().find(|l| !l.trim().is_empty()) {
                            pb.set_message(format!("{}: {}", truncate(&step, 60), truncate(plain(last).trim(), 60)));
                        }
                    }
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(ImageError::BuildStep {
                    tag: spec.tag.clone(),
                    step,
                    message: with_hint(error, &output),
                    output: tail(&plain(&output), 40),
                });
            }
            Err(source) => return Err(ImageError::Build { tag: spec.tag.clone(), source }),
        }
    }
    Ok(())
}

/// Pulls an image from its registry with progress.
pub async fn pull(docker: &Docker, image: &str) -> Result<(), ImageError> {
    let pb = spinner(format!("pulling {image}"));
    let opts = CreateImageOptions { from_image: Some(image.to_string()), ..Default::default() };
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let (Some(status), Some(p)) = (&info.status, &info.progress_detail) {
                    if let (Some(c), Some(t)) = (p.current, p.total) {
                        pb.set_message(format!("pulling {image}: {status} {}/{} MiB", c >> 20, t >> 20));
                    }
                }
            }
            Err(source) => {
                pb.finish_and_clear();
                return Err(ImageError::Pull { image: image.into(), source });
            }
        }
    }
    pb.finish_and_clear();
    Ok(())
}

/// Imports a root filesystem directory as an image (`POST /images/create?fromSrc=-`). The tar is made
/// in-process into an unnamed temporary file, then streamed to the engine.
pub async fn import_rootfs(docker: &Docker, dir: &Path, tag: &str) -> Result<(), ImageError> {
    let rootfs_err = |reason: String| ImageError::Rootfs { path: dir.into(), reason };
    if !dir.join("bin").exists() || !dir.join("etc").is_dir() {
        return Err(rootfs_err("not a root filesystem (no bin/ and etc/); pass the directory debootstrap made".into()));
    }
    let pb = spinner(format!("packing {}", dir.display()));
    let dir_owned = dir.to_path_buf();
    let file = tokio::task::spawn_blocking(move || pack_rootfs(&dir_owned))
        .await
        .map_err(|e| rootfs_err(e.to_string()))?
        .map_err(|e| rootfs_err(format!("{e}; run as root so every file is readable")))?;
    pb.set_message(format!("importing {} as {tag}", dir.display()));
    let (repo, tag_part) = split_tag(tag);
    let opts = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(tag_part.into()),
        changes: vec![
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "CMD [\"/bin/bash\"]".into(),
        ],
        ..Default::default()
    };
    let file = tokio::fs::File::from_std(file);
    let body = tokio_util::io::ReaderStream::new(file);
    let imported = import(docker, opts, body).await;
    pb.finish_and_clear();
    imported.map_err(|source| ImageError::Import { path: dir.into(), tag: tag.into(), source })?;
    crate::notice!("codex-box: imported {} as {tag}", dir.display());
    Ok(())
}

/// Imports a root filesystem (`POST /images/create?fromSrc=-`) under `opts`' repository and tag, and
/// returns once that name finds the image. Podman's compatible API imports without the name (and the
/// `changes`) it was given: the image is then tagged by the id the import reported.
pub async fn import(
    docker: &Docker,
    opts: CreateImageOptions,
    tar: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
) -> Result<(), bollard::errors::Error> {
    let (repo, tag) = (opts.repo.clone().unwrap_or_default(), opts.tag.clone().unwrap_or_else(|| "latest".into()));
    let mut stream = docker.create_image(Some(opts), Some(bollard::body_try_stream(tar)), None);
    let mut id = None;
    while let Some(item) = stream.next().await {
        id = item?.status.filter(|s| s.starts_with("sha256:")).or(id);
    }
    let name = format!("{repo}:{tag}");
    if docker.inspect_image(&name).await.is_err() {
        if let Some(id) = id {
            let opts = bollard::query_parameters::TagImageOptions { repo: Some(repo), tag: Some(tag) };
            docker.tag_image(&id, Some(opts)).await?;
        }
    }
    docker.inspect_image(&name).await.map(|_| ())
}

fn pack_rootfs(dir: &Path) -> std::io::Result<std::fs::File> {
    let file = tempfile::tempfile()?;
    let mut b = tar::Builder::new(file);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let path = entry.path();
        // The engine provides these; device nodes debootstrap made are not needed.
        if ["dev", "proc", "sys"].iter().any(|n| name == *n) && path.is_dir() {
            b.append_path_with_name(&path, &name)?;
            continue;
        }
        if entry.file_type()?.is_dir() {
            b.append_dir_all(&name, &path)?;
        } else {
            b.append_path_with_name(&path, &name)?;
        }
    }
    let mut file = b.into_inner()?;
    use std::io::Seek;
    file.rewind()?;
    Ok(file)
}

fn split_tag(tag: &str) -> (&str, &str) {
    match tag.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (tag, "latest"),
    }
}

/// Runs `debootstrap --variant=minbase SUITE DIR [MIRROR]` into a temporary directory and imports it.
pub async fn bootstrap(docker: &Docker, suite: &str, mirror: Option<&str>, tag: &str) -> Result<(), ImageError> {
    let tmp = tempfile::Builder::new().prefix("codex-box-rootfs-").tempdir_in("/var/tmp").map_err(ImageError::Temp)?;
    let root = tmp.path().join("rootfs");
    let pb = spinner(format!("debootstrap {suite} (about a minute)"));
    let mut cmd = tokio::process::Command::new("debootstrap");
    cmd.arg("--variant=minbase").arg(suite).arg(&root);
    if let Some(m) = mirror {
        cmd.arg(m);
    }
    let out = cmd.output().await.map_err(ImageError::DebootstrapSpawn)?;
    pb.finish_and_clear();
    if !out.status.success() {
        eprintln!("{}", tail(&String::from_utf8_lossy(&out.stdout), 20));
        eprintln!("{}", tail(&String::from_utf8_lossy(&out.stderr), 20));
        return Err(ImageError::Debootstrap { status: out.status.to_string() });
    }
    import_rootfs(docker, &root, tag).await
}

/// A build step's header: Docker's `Step 2/9 : RUN …`, Podman's (Buildah's) `STEP 2/9: RUN …`.
fn is_step(line: &str) -> bool {
    line.strip_prefix("Step ")
        .or_else(|| line.strip_prefix("STEP "))
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_of_docker_and_podman_builds() {
        assert!(is_step("Step 2/9 : RUN apt-get update\n"));
        assert!(is_step("STEP 2/9: RUN apt-get update\n"));
        assert!(!is_step("Stepping through\n"));
        assert!(!is_step("hello\n"));
    }

    #[test]
    fn a_building_tag_names_its_builder() {
        let host = this_host();
        let t = building_tag("localhost:5000/codex-sandbox:1.2");
        assert!(t.starts_with(&format!("localhost:5000/codex-sandbox:codex-box-building-{}-", std::process::id())));
        assert_eq!(building_owner(&t, &host), Some(std::process::id() as i32));
        assert_eq!(building_owner(&t, "another-host"), None, "never another host's build");
        assert_eq!(building_owner("codex-sandbox:latest", &host), None);
        assert_eq!(building_owner(&format!("codex-sandbox:codex-box-building-x-{host}"), &host), None);
        assert_eq!(tag_host("a b/c"), "a_b_c");
    }

    #[test]
    fn a_full_disk_says_where_to_free_space() {
        let e = with_hint("write /var/lib/docker/tmp/x: no space left on device".into(), "");
        assert!(e.contains("disk is full") && e.contains("system prune"), "{e}");
        let e = with_hint("returned a non-zero code: 1".into(), "cat: write error: No space left on device\n");
        assert!(e.contains("disk is full"), "{e}");
        assert_eq!(with_hint("exit code 1".into(), "E: Unable to locate package\n"), "exit code 1");
    }

    #[test]
    fn build_output_loses_its_colours() {
        assert_eq!(plain("\x1b[91mcat: \x1b[0m\x1b[91mwrite error\x1b[0m\n"), "cat: write error\n");
        assert_eq!(plain("plain \x1b text"), "plain  text");
        assert_eq!(plain("bell\x07, redraw\r, osc-less \u{9b}31mred\n\tok"), "bell, redraw, osc-less red\n\tok");
    }

    #[test]
    fn tag_split() {
        assert_eq!(split_tag("codex-box-base:bookworm"), ("codex-box-base", "bookworm"));
        assert_eq!(split_tag("base"), ("base", "latest"));
        assert_eq!(split_tag("localhost:5000/base"), ("localhost:5000/base", "latest"));
    }

    #[test]
    fn text_helpers() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
