//! The session's companion on the Docker Engine API ([`crate::companion`] is the program): its image,
//! made from a static Linux build of codex-box through the API (never a host path mounted), the
//! per-network beacon (reused), and the per-session proxy whose log lines are followed.
//!
//! The container bodies are pure ([`body`]); what talks to the engine is thin.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::spec::LABEL;
use crate::companion::{CompanionJob, BEACON_PORT, JOB_ENV, PROXY_PORT, READY, RELAY_ENV, RELAY_PORT};
use crate::session::CompanionAddrs;

/// What can go wrong with the companion.
#[derive(Debug, thiserror::Error)]
pub enum CompanionError {
    #[error("no static Linux build of codex-box for the session's companion container (it runs the firewall's verification target and, with --egress proxy, the proxy, on the session's network). Build one with `cargo build --release --locked --target x86_64-unknown-linux-musl --bin codex-box` (scripts/setup.sh does), or point CODEX_BOX_COMPANION_BIN at one; looked at: {looked}")]
    NoBinary { looked: String },
    #[error("{path} (CODEX_BOX_COMPANION_BIN) is not a static Linux executable for {arch}; point it at a `--target {arch}-unknown-linux-musl` build of codex-box")]
    NotStatic { path: PathBuf, arch: &'static str },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the engine refused the companion container ({what}): {source}")]
    Engine { what: &'static str, source: bollard::errors::Error },
    #[error("the companion container stopped or was not ready within {secs} s; its output: {output}")]
    NotReady { secs: u64, output: String },
    #[error("the companion container has no address on the session's network ({network})")]
    NoAddress { network: String },
}

fn engine(what: &'static str) -> impl FnOnce(bollard::errors::Error) -> CompanionError {
    move |source| CompanionError::Engine { what, source }
}

/// A running companion of one session.
pub struct SessionCompanion {
    pub id: String,
    pub addrs: CompanionAddrs,
    pump: tokio::task::JoinHandle<()>,
}

/// The static codex-box to put in the companion image: `CODEX_BOX_COMPANION_BIN`, this executable
/// when it is static, or a static build beside it (`codex-box-linux-<arch>`, or cargo's
/// `../<arch>-unknown-linux-musl/{release,debug}/codex-box` from `target/<profile>/`).
pub fn binary(explicit: Option<&Path>) -> Result<PathBuf, CompanionError> {
    let arch = std::env::consts::ARCH;
    if let Some(p) = explicit {
        return match is_static_elf(p) {
            Ok(true) => Ok(p.to_path_buf()),
            Ok(false) => Err(CompanionError::NotStatic { path: p.to_path_buf(), arch }),
            Err(source) => Err(CompanionError::Read { path: p.to_path_buf(), source }),
        };
    }
    let exe = std::env::current_exe().ok();
    let mut looked = Vec::new();
    if let Some(exe) = &exe {
        looked.push(exe.clone());
        if let Some(dir) = exe.parent() {
            looked.push(dir.join(format!("codex-box-linux-{arch}")));
            let musl = dir.join("..").join(format!("{arch}-unknown-linux-musl"));
            let profile = dir.file_name().map(|p| p.to_os_string()).unwrap_or_default();
            looked.push(musl.join(&profile).join("codex-box"));
            looked.push(musl.join("release").join("codex-box"));
        }
    }
    for p in &looked {
        if matches!(is_static_elf(p), Ok(true)) {
            return Ok(p.clone());
        }
    }
    let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    Err(CompanionError::NoBinary { looked: looked.join(", ") })
}

/// Whether `path` is a 64-bit little-endian ELF executable of this machine's architecture with no
/// program interpreter (statically linked).
pub fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut head = vec![0u8; 64];
    if f.read_exact(&mut head).is_err() {
        return Ok(false);
    }
    let machine = match std::env::consts::ARCH {
        "x86_64" => 0x3e,
        "aarch64" => 0xb7,
        _ => return Ok(false),
    };
    if &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 || u16::from_le_bytes([head[18], head[19]]) != machine {
        return Ok(false);
    }
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().unwrap());
    let phentsize = u16::from_le_bytes([head[0x36], head[0x37]]) as u64;
    let phnum = u16::from_le_bytes([head[0x38], head[0x39]]) as u64;
    if phentsize < 4 || phnum > 256 {
        return Ok(false);
    }
    use std::io::Seek;
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    f.seek(std::io::SeekFrom::Start(phoff))?;
    if f.read_exact(&mut ph).is_err() {
        return Ok(false);
    }
    const PT_INTERP: u32 = 3;
    Ok(ph.chunks(phentsize as usize).all(|p| u32::from_le_bytes(p[..4].try_into().unwrap()) != PT_INTERP))
}

/// The host's CA bundle, put in the image for the proxy's DNS-over-TLS.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The image's tag: from the binary's and the bundle's identity (path, size, modification time),
/// so a rebuilt codex-box gets a new image without hashing megabytes at every session start.
pub fn image_tag(bin: &Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    for p in [bin, Path::new(CA_BUNDLE)] {
        h.update(p.as_os_str().as_encoded_bytes());
        if let Ok(m) = std::fs::metadata(p) {
            h.update(m.len().to_le_bytes());
            let t = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            h.update(t.map(|t| t.as_nanos()).unwrap_or(0).to_le_bytes());
        }
    }
    format!("codex-box-companion:{}", hex::encode(&h.finalize()[..6]))
}

/// Makes the companion image when it is missing: a root filesystem of the binary (and the CA
/// bundle), imported through the API.
pub async fn ensure_image(docker: &Docker, bin: &Path) -> Result<String, CompanionError> {
    let tag = image_tag(bin);
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let read = |p: &Path| std::fs::read(p).map_err(|source| CompanionError::Read { path: p.into(), source });
    let mut files = vec![("codex-box", read(bin)?, 0o755)];
    if let Ok(bundle) = std::fs::read(CA_BUNDLE) {
        files.push(("etc/ssl/certs/ca-certificates.crt", bundle, 0o644));
    }
    let tar = rootfs_tar(&files).map_err(|source| CompanionError::Read { path: bin.into(), source })?;
    let (repo, t) = tag.split_once(':').unwrap_or((&tag, "latest"));
    let opts = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(t.into()),
        changes: vec![r#"ENTRYPOINT ["/codex-box", "companion"]"#.into(), "USER 65534:65534".into()],
        ..Default::default()
    };
    // The entrypoint and user are also set at each create: Podman's compatible API drops `changes`.
    let tar = futures_util::stream::once(async move { Ok(bytes::Bytes::from(tar)) });
    super::image::import(docker, opts, tar).await.map_err(engine("importing its image"))?;
    Ok(tag)
}

/// A tar of `files` (name, content, mode) with the directories they need and an empty `/tmp`.
pub fn rootfs_tar(files: &[(&str, Vec<u8>, u32)]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = vec!["tmp".into()];
    for (name, _, _) in files {
        let mut d = Path::new(name).parent();
        while let Some(p) = d.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(p.to_string_lossy().into_owned());
            d = p.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if d == "tmp" { 0o1777 } else { 0o755 });
        h.set_size(0);
        b.append_data(&mut h, format!("{d}/"), std::io::empty())?;
    }
    for (name, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data.as_slice())?;
    }
    b.into_inner()
}

/// The beacon's container name on `network`.
pub fn beacon_name(network: Option<&str>) -> String {
    let net: String = network
        .unwrap_or("default")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect();
    format!("codex-box-beacon-{net}")
}

/// The body of a companion container: codex-box's static binary as nobody, read-only, no
/// capability, no new privileges, small limits; the beacon (no job) restarts with the engine, a
/// session's companion gets its jobs and is labelled like its session (collected if codex-box is
/// killed).
pub fn body(
    image: &str,
    network: Option<&str>,
    job: Option<(&CompanionJob, HashMap<String, String>)>,
) -> ContainerCreateBody {
    let mut cmd = vec!["--beacon".to_string(), BEACON_PORT.to_string()];
    let mut env = Vec::new();
    let mut labels = HashMap::from([(format!("{LABEL}.role"), "beacon".to_string())]);
    if let Some((job, session_labels)) = &job {
        if let Some(p) = &job.proxy {
            cmd.extend(["--proxy".to_string(), PROXY_PORT.to_string()]);
            env.push(format!("{JOB_ENV}={}", serde_json::to_string(p).expect("a job serialises")));
        }
        if let Some(r) = &job.relay {
            cmd.extend(["--relay".to_string(), RELAY_PORT.to_string()]);
            env.push(format!("{RELAY_ENV}={}", serde_json::to_string(r).expect("a job serialises")));
        }
        labels = session_labels.clone();
        labels.insert(format!("{LABEL}.role"), "companion".into());
    }
    let session = job.is_some();
    ContainerCreateBody {
        image: Some(image.to_string()),
        // Also in the image, but Podman's compatible import drops the image's ENTRYPOINT.
        entrypoint: Some(vec!["/codex-box".into(), "companion".into()]),
        cmd: Some(cmd),
        env: Some(env),
        user: Some("65534:65534".into()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: network.map(str::to_string),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            memory: Some(if session { 256 << 20 } else { 16 << 20 }),
            pids_limit: Some(if session { 64 } else { 8 }),
            tmpfs: Some(HashMap::from([("/tmp".to_string(), "rw,noexec,nosuid,size=4m".to_string())])),
            restart_policy: (!session).then_some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container's address on `network` (or its only network).
async fn address(docker: &Docker, id: &str, network: Option<&str>) -> Result<IpAddr, CompanionError> {
    let info = docker.inspect_container(id, None).await.map_err(engine("inspecting it"))?;
    address_in(&info, network)
}

/// The address in an inspection's network settings.
fn address_in(
    info: &bollard::models::ContainerInspectResponse,
    network: Option<&str>,
) -> Result<IpAddr, CompanionError> {
    let nets = info.network_settings.as_ref().and_then(|n| n.networks.clone()).unwrap_or_default();
    let pick = network.and_then(|n| nets.get(n)).or_else(|| (nets.len() == 1).then(|| nets.values().next()).flatten());
    pick.and_then(|e| e.ip_address.as_deref()?.parse().ok())
        .or_else(|| pick.and_then(|e| e.global_ipv6_address.as_deref()?.parse().ok()))
        .ok_or_else(|| CompanionError::NoAddress { network: network.unwrap_or("the engine's default").into() })
}

/// Follows `id`'s output until the ready line (or its end, or `secs`); the lines after it go to
/// `rest` when given. Returns the output so far when it never got ready.
async fn wait_ready(
    docker: &Docker,
    id: &str,
    secs: u64,
    rest: Option<Arc<crate::proxy::Log>>,
) -> Result<Option<tokio::task::JoinHandle<()>>, CompanionError> {
    let opts = LogsOptions { follow: true, stdout: true, stderr: true, ..Default::default() };
    let mut stream = docker.logs(id, Some(opts));
    let mut seen = String::new();
    let mut pending = String::new();
    let ready = tokio::time::timeout(Duration::from_secs(secs), async {
        while let Some(Ok(chunk)) = stream.next().await {
            pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            while let Some(i) = pending.find('\n') {
                let line: String = pending.drain(..=i).collect();
                if line.trim_end() == READY {
                    return true;
                }
                seen.push_str(&line);
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !ready {
        seen.push_str(&pending);
        return Err(CompanionError::NotReady { secs, output: seen.trim().to_string() });
    }
    Ok(rest.map(|log| {
        tokio::spawn(async move {
            while let Some(Ok(chunk)) = stream.next().await {
                pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                while let Some(i) = pending.find('\n') {
                    let line: String = pending.drain(..=i).collect();
                    log.record_line(line.trim_end_matches(['\n', '\r']));
                }
            }
        })
    }))
}

/// The beacon of `network`: reused when it runs, started when it stopped (the engine restarted),
/// made when missing (a concurrent session may make it first).
pub async fn beacon(docker: &Docker, network: Option<&str>, bin: Option<&Path>) -> Result<SocketAddr, CompanionError> {
    let name = beacon_name(network);
    for _ in 0..3 {
        match docker.inspect_container(&name, None).await {
            Ok(info) if info.state.as_ref().and_then(|s| s.running) == Some(true) => {
                // Running: its inspection already holds the address (one request per session start).
                return Ok(SocketAddr::new(address_in(&info, network)?, BEACON_PORT));
            }
            Ok(_) => {
                if docker.start_container(&name, None).await.is_err() {
                    // Its network may have been made again under the same name: make it anew.
                    let _ = docker.remove_container(&name, force()).await;
                    continue;
                }
            }
            Err(_) => {
                let image = ensure_image(docker, &binary(bin)?).await?;
                let opts = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
                match docker.create_container(Some(opts), body(&image, network, None)).await {
                    Ok(_) => {
                        if let Err(e) = docker.start_container(&name, None).await {
                            // E.g. its network does not exist: nothing of this start stays.
                            let _ = docker.remove_container(&name, force()).await;
                            return Err(engine("starting the beacon")(e));
                        }
                    }
                    // A concurrent session made it first (Docker: 409; Podman: 500 "already in use").
                    Err(e) if super::session::name_taken(&e) => {}
                    Err(e) => return Err(engine("creating the beacon")(e)),
                }
            }
        }
        wait_ready(docker, &name, 10, None).await?;
        return Ok(SocketAddr::new(address(docker, &name, network).await?, BEACON_PORT));
    }
    Err(CompanionError::NotReady { secs: 0, output: format!("{name} could not be started") })
}

fn force() -> Option<RemoveContainerOptions> {
    Some(RemoveContainerOptions { force: true, ..Default::default() })
}

/// Starts a session's companion; its decision lines go to `log` until [`stop`].
pub async fn start(
    docker: &Docker,
    network: Option<&str>,
    job: &CompanionJob,
    log: Arc<crate::proxy::Log>,
    labels: HashMap<String, String>,
    bin: Option<&Path>,
) -> Result<SessionCompanion, CompanionError> {
    let image = ensure_image(docker, &binary(bin)?).await?;
    let created = docker
        .create_container(None::<CreateContainerOptions>, body(&image, network, Some((job, labels))))
        .await
        .map_err(engine("creating it"))?;
    let id = created.id;
    let started = async {
        docker.start_container(&id, None).await.map_err(engine("starting it"))?;
        let pump = wait_ready(docker, &id, 15, Some(log)).await?.expect("a pump was asked for");
        let ip = address(docker, &id, network).await?;
        Ok::<_, CompanionError>((ip, pump))
    }
    .await;
    match started {
        Ok((ip, pump)) => {
            let addrs = CompanionAddrs {
                beacon: SocketAddr::new(ip, BEACON_PORT),
                proxy: job.proxy.as_ref().map(|_| SocketAddr::new(ip, PROXY_PORT)),
                relay: job.relay.as_ref().map(|_| SocketAddr::new(ip, RELAY_PORT)),
            };
            Ok(SessionCompanion { id, addrs, pump })
        }
        Err(e) => {
            let _ = docker.remove_container(&id, force()).await;
            Err(e)
        }
    }
}

/// Stops the companion (its last lines reach the log) and removes it.
pub async fn stop(docker: &Docker, c: SessionCompanion) {
    let _ = docker.stop_container(&c.id, Some(StopContainerOptions { t: Some(2), ..Default::default() })).await;
    let _ = tokio::time::timeout(Duration::from_secs(3), c.pump).await;
    let _ = docker.remove_container(&c.id, force()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_companion_is_nobody_read_only_without_capabilities_and_small() {
        let b = body("codex-box-companion:x", None, None);
        assert_eq!(b.user.as_deref(), Some("65534:65534"));
        assert_eq!(b.cmd.as_deref(), Some(&["--beacon".to_string(), BEACON_PORT.to_string()][..]));
        let h = b.host_config.unwrap();
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        assert!(h.cap_add.is_none() && h.privileged.is_none() && h.pid_mode.is_none());
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_string()]));
        assert_eq!((h.memory, h.pids_limit, h.network_mode), (Some(16 << 20), Some(8), None));
        assert!(h.binds.is_none() && h.mounts.is_none(), "nothing of the host is mounted");
        assert_eq!(h.restart_policy.unwrap().name, Some(RestartPolicyNameEnum::UNLESS_STOPPED));
        assert_eq!(b.labels.unwrap().get("io.codex-box.role").map(String::as_str), Some("beacon"));
    }

    #[test]
    fn a_sessions_companion_carries_its_jobs_and_its_sessions_labels() {
        let proxy = crate::companion::ProxyJob::new(&crate::session::egress::EgressSettings::default(), Vec::new());
        let relay = crate::companion::RelayJob {
            upstream: "https://api.openai.com/v1".into(),
            key: "sk-x".into(),
            roots_pem: Vec::new(),
            upstream_addrs: Vec::new(),
            dns_server: None,
            timeout_ms: 5000,
        };
        let job = CompanionJob { proxy: Some(proxy.clone()), relay: Some(relay.clone()) };
        let labels = HashMap::from([("io.codex-box".to_string(), "1".to_string())]);
        let b = body("img", Some("testnet"), Some((&job, labels)));
        let cmd = b.cmd.unwrap();
        assert_eq!(cmd[2..], ["--proxy", "3128", "--relay", "3130"].map(String::from));
        let env = b.env.unwrap();
        let json = env[0].strip_prefix(&format!("{JOB_ENV}=")).unwrap();
        assert_eq!(serde_json::from_str::<crate::companion::ProxyJob>(json).unwrap(), proxy);
        let json = env[1].strip_prefix(&format!("{RELAY_ENV}=")).unwrap();
        assert!(serde_json::from_str::<crate::companion::RelayJob>(json).unwrap() == relay);
        let labels = b.labels.unwrap();
        assert_eq!(labels.get("io.codex-box").map(String::as_str), Some("1"), "collected when codex-box dies");
        assert_eq!(labels.get("io.codex-box.role").map(String::as_str), Some("companion"));
        let h = b.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("testnet"));
        assert!(h.restart_policy.is_none());
        // A relay alone: no proxy.
        let job = CompanionJob { proxy: None, relay: Some(relay) };
        let cmd = body("img", None, Some((&job, HashMap::new()))).cmd.unwrap();
        assert_eq!(cmd[2..], ["--relay", "3130"].map(String::from));
    }

    #[test]
    fn beacon_names_are_per_network_and_plain() {
        assert_eq!(beacon_name(None), "codex-box-beacon-default");
        assert_eq!(beacon_name(Some("my net/x")), "codex-box-beacon-my_net_x");
    }

    #[test]
    fn a_static_build_is_told_from_a_dynamic_one() {
        // This test binary is dynamically linked (glibc): it has an interpreter.
        let me = std::env::current_exe().unwrap();
        assert!(!is_static_elf(&me).unwrap());
        assert!(!is_static_elf(Path::new("/bin/sh")).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let not_elf = dir.path().join("x");
        std::fs::write(&not_elf, "#!/bin/sh\n").unwrap();
        assert!(!is_static_elf(&not_elf).unwrap());
        assert!(matches!(binary(Some(&not_elf)), Err(CompanionError::NotStatic { .. })));
    }

    #[test]
    fn the_image_holds_the_binary_and_an_empty_tmp() {
        let tar = rootfs_tar(&[("codex-box", b"ELF".to_vec(), 0o755), ("etc/ssl/certs/b.crt", b"PEM".to_vec(), 0o644)])
            .unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let names: Vec<(String, u32)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap())
            })
            .collect();
        for want in [("codex-box", 0o755), ("tmp/", 0o1777), ("etc/ssl/certs/", 0o755), ("etc/ssl/certs/b.crt", 0o644)]
        {
            assert!(names.contains(&(want.0.to_string(), want.1)), "{want:?} in {names:?}");
        }
    }
}
