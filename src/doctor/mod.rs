//! `codex-box doctor`: can this host run a session, and how well can it sandbox natively?
//!
//! `facts` gathers what is observed (engine, socket, image, kernel features, DNS) with thin code;
//! [`checks`] turns those facts into ok / warn / fail lines, each with the fix — a pure function,
//! unit-tested here. Only what the default path (a container session) needs can fail, so the exit
//! code is non-zero exactly when a session cannot work; native-sandbox gaps and unresolvable
//! allowlist names are warnings. It changes nothing on the host.

pub mod facts;

use serde::Serialize;

pub use facts::{EngineInfo, Facts, Kernel, Socket};

use crate::docker::kind::{EngineKind, Product};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(check: &'static str, detail: impl Into<String>) -> Check {
    Check { check, status: Status::Ok, detail: detail.into(), fix: None }
}

fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { check, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
}

fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { check, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
}

/// The oldest Engine API codex-box is tested with (Debian's docker.io, Engine 20.10); older ones
/// down to [`crate::docker::engine::MIN_API`] connect with a warning, older still are refused.
pub const MIN_API: (u32, u32) = (1, 41);

fn api_tuple(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// What the engine's kind means for sessions.
fn kind_meaning(k: &EngineKind) -> String {
    let mut m = Vec::new();
    m.push(if k.rootless {
        "rootless: the engine and its containers run as its user (container root is that user on this host, other container uids are its subordinate ids), so files sessions write in the workdir are owned through that mapping and a container escape gains only that user's rights"
    } else if k.vm {
        "rootful inside its VM: the VM, not this host, is what a container escape reaches"
    } else {
        "rootful: the engine runs as root on this host; whoever can open its socket is root here, and sessions run the agent as your uid"
    });
    if k.vm {
        m.push("in a VM: bind mounts work only for paths the VM shares with this host (keep the workdir and --read-only paths under a shared folder such as your home), and the session's network is the VM's");
    }
    if k.product == Product::Podman {
        m.push("Podman: the session's --init needs catatonit where the engine runs");
    }
    m.join("; ")
}

fn engine_checks(f: &Facts, out: &mut Vec<Check>) {
    let at = f.found.as_ref().map_or_else(|| "no engine address".to_string(), |x| x.to_string());
    let fix = f.found.as_ref().map_or_else(
        || "name the engine with --engine, CODEX_BOX_ENGINE or DOCKER_HOST, or start one at a usual socket".to_string(),
        |x| x.source.fix(),
    );
    match (&f.engine, &f.kind) {
        (Ok(e), Some(k)) => {
            out.push(ok("engine", format!("{:?} {} ({}) answers at {at}", k.product, e.version, e.os)));
            match api_tuple(&e.api_version) {
                Some(v) if v >= MIN_API => out.push(ok(
                    "api-version",
                    format!("engine API {}, codex-box talks {}", e.api_version, e.negotiated_api),
                )),
                _ => out.push(warn(
                    "api-version",
                    format!(
                        "engine API {} is older than {}.{}, the oldest tested",
                        e.api_version, MIN_API.0, MIN_API.1
                    ),
                    "upgrade the engine (Docker 20.10 or later, Podman 4 or later)",
                )),
            }
            let how = if k.confirmed { "" } else { " (inferred from /version and the socket; /info did not answer)" };
            out.push(ok("engine-kind", format!("{k}{how}: {}", kind_meaning(k))));
        }
        (engine, _) => {
            let msg = engine.as_ref().err().cloned().unwrap_or_else(|| "the engine did not say what it is".into());
            out.push(fail("engine", msg, fix.clone()));
            out.push(warn("api-version", "not checked: no engine", "fix the engine first"));
            out.push(warn("engine-kind", "not checked: no engine", "fix the engine first"));
        }
    }
    match &f.podman_init {
        None => {}
        Some(Some(p)) => out.push(ok("engine-init", format!("catatonit (Podman's --init) at {}", p.display()))),
        Some(None) => out.push(fail(
            "engine-init",
            "catatonit is missing: Podman cannot start a session's init (--init)",
            "install catatonit (`sudo apt-get install catatonit`, `sudo dnf install catatonit`)",
        )),
    }
    session_differences(f, out);
    match &f.socket {
        None => out.push(ok("socket", format!("{at} is not a local socket; nothing to check"))),
        Some(s) if !s.exists => out.push(fail("socket", format!("{} does not exist", s.path.display()), fix)),
        Some(s) if !s.accessible => out.push(fail(
            "socket",
            format!(
                "{} (mode {:o}, group {}) is not readable and writable by this user",
                s.path.display(),
                s.mode & 0o777,
                s.group
            ),
            format!(
                "add your user to the `{}` group (`sudo usermod -aG {} $USER`, then log in again)",
                s.group, s.group
            ),
        )),
        Some(s) => out.push(ok(
            "socket",
            format!("{} (mode {:o}, group {}) is accessible", s.path.display(), s.mode & 0o777, s.group),
        )),
    }
}

/// Where sessions on this engine differ from rootful Docker: limits a rootless engine on cgroup v1
/// cannot set, and the seccomp profile a local Podman's sessions get.
fn session_differences(f: &Facts, out: &mut Vec<Check>) {
    let Some(k) = &f.kind else { return };
    let cgroup = f.cgroup_version.as_deref();
    if crate::docker::kind::limits_enforced(k.rootless, cgroup) {
        let on = cgroup.map_or_else(String::new, |v| format!(" (cgroup v{v})"));
        out.push(ok("engine-limits", format!("sessions' --memory, --cpus and --pids-limit are enforced{on}")));
    } else {
        out.push(warn(
            "engine-limits",
            "this rootless engine runs on cgroup v1: sessions' --memory, --cpus and --pids-limit are not enforced (each session warns and runs without them)",
            "boot with cgroup v2 (`systemd.unified_cgroup_hierarchy=1`) and delegate its controllers to your user, or use a rootful engine",
        ));
    }
    match &f.podman_seccomp {
        None => {}
        Some(Ok(())) => out.push(ok(
            "engine-seccomp",
            "sessions get Podman's seccomp profile with user namespaces refused, as Docker's default does",
        )),
        Some(Err(e)) => out.push(warn(
            "engine-seccomp",
            format!("{e}: sessions run with Podman's built-in default, which lets the agent create user namespaces"),
            "install containers-common (`sudo apt-get install golang-github-containers-common`, `sudo dnf install containers-common`)",
        )),
    }
}

fn image_checks(f: &Facts, out: &mut Vec<Check>) {
    let image = &f.image_name;
    let build = format!(
        "build it: `codex-box image build --tag {image}` (or choose another with --image / CODEX_DOCKER_IMAGE)"
    );
    match &f.image {
        None => out.push(warn("image", format!("{image}: not checked: no engine"), "fix the engine first")),
        Some(Err(e)) => out.push(fail("image", format!("cannot inspect {image}: {e}"), build.clone())),
        Some(Ok(false)) => out.push(fail("image", format!("session image {image} is not present"), build.clone())),
        Some(Ok(true)) => out.push(ok("image", format!("session image {image} is present"))),
    }
    match &f.image_tools {
        None => out.push(warn("image-tools", format!("{image}: not checked: no image"), "fix the image first")),
        Some(Err(e)) => out.push(fail("image-tools", format!("cannot run a command in {image}: {e}"), build)),
        Some(Ok(tools)) => {
            let missing: Vec<&str> = tools.iter().filter(|(_, found)| !found).map(|(t, _)| t.as_str()).collect();
            if missing.is_empty() {
                let all: Vec<&str> = tools.iter().map(|(t, _)| t.as_str()).collect();
                out.push(ok("image-tools", format!("{} found in {image}", all.join(", "))));
            } else {
                out.push(fail(
                    "image-tools",
                    format!("{image} lacks {}: the egress firewall cannot be applied", missing.join(", ")),
                    format!("rebuild the image with `codex-box image build --tag {image}` (it installs iptables, ipset and util-linux)"),
                ));
            }
        }
    }
}

fn companion_check(f: &Facts, out: &mut Vec<Check>) {
    match &f.companion {
        None => {}
        Some(Ok(path)) => out.push(ok(
            "companion",
            format!(
                "static build {} (run in a companion container: the firewall's verification target, the proxy, the API relay)",
                path.display()
            ),
        )),
        Some(Err(e)) => out.push(fail(
            "companion",
            "no static Linux build of codex-box for the companion container: sessions with a firewall or the proxy cannot start",
            e.clone(),
        )),
    }
}

fn kernel_checks(f: &Facts, out: &mut Vec<Check>) {
    let degraded = "the native sandbox (`codex-box sandbox`) refuses to run without it unless --allow-degraded";
    let Some(k) = &f.kernel else {
        out.push(match f.host_os {
            "macos" if f.sandbox_exec => ok("native-sandbox", "macOS: Seatbelt through /usr/bin/sandbox-exec"),
            "macos" => {
                warn("native-sandbox", "macOS: /usr/bin/sandbox-exec is missing", "check the macOS installation")
            }
            os => warn(
                "native-sandbox",
                format!("{os}: write-restricted token; reads and network are NOT restricted"),
                "use container sessions (WSL2) for a full boundary; the native sandbox needs --allow-degraded",
            ),
        });
        return;
    };
    out.push(match k.landlock_abi {
        Some(abi) => ok("landlock", format!("Landlock ABI {abi}")),
        None => warn(
            "landlock",
            format!("Landlock is not available: {degraded}"),
            "use Linux 5.13+ with Landlock enabled (boot with lsm=landlock,… or CONFIG_LSM including landlock)",
        ),
    });
    out.push(match (k.seccomp, k.user_notif) {
        (true, true) => ok("seccomp", "seccomp filters and user notification (--log-denials)"),
        (true, false) => {
            warn("seccomp", "seccomp filters, but no user notification: --log-denials is unavailable", "use Linux 5.0+")
        }
        (false, _) => {
            warn("seccomp", format!("seccomp is not available: {degraded}"), "use a kernel with CONFIG_SECCOMP_FILTER")
        }
    });
    out.push(if k.userns {
        ok("userns", "user namespaces available (also for network by name: `sandbox --allow-domain`)")
    } else {
        warn(
            "userns",
            format!("user namespaces are not available: {degraded}; `sandbox --allow-domain` is refused"),
            "raise user.max_user_namespaces (`sudo sysctl -w user.max_user_namespaces=15000`)",
        )
    });
    out.push(match k.apparmor_restrict_userns {
        Some(true) => warn(
            "apparmor-userns",
            "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): the native sandbox fails for non-root users",
            "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or an AppArmor profile allowing userns for codex-box",
        ),
        Some(false) => ok("apparmor-userns", "AppArmor does not restrict unprivileged user namespaces"),
        None => ok("apparmor-userns", "no AppArmor user-namespace restriction on this kernel"),
    });
    out.push(ok(
        "bubblewrap",
        match &f.bwrap {
            Some(p) => format!(
                "not needed (found at {}, unused): the native sandbox calls Landlock, seccomp and namespaces itself",
                p.display()
            ),
            None => "not needed: the native sandbox calls Landlock, seccomp and namespaces itself".to_string(),
        },
    ));
}

fn dns_check(f: &Facts, out: &mut Vec<Check>) {
    match &f.dns {
        Err(e) => out.push(warn(
            "dns",
            format!("no resolver: {e}"),
            "check /etc/resolv.conf; sessions need DNS to build the allowlist",
        )),
        Ok(names) => {
            let bad: Vec<String> =
                names.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n} ({e})"))).collect();
            if bad.is_empty() {
                out.push(ok("dns", format!("all {} built-in allowlist names resolve", names.len())));
            } else {
                out.push(warn(
                    "dns",
                    format!(
                        "{} of {} built-in allowlist names do not resolve: {}",
                        bad.len(),
                        names.len(),
                        bad.join(", ")
                    ),
                    "check the DNS server or proxy; sessions still start, but those names stay blocked by the firewall",
                ));
            }
        }
    }
}

/// Every check, in report order (pure).
pub fn checks(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    engine_checks(f, &mut out);
    image_checks(f, &mut out);
    companion_check(f, &mut out);
    kernel_checks(f, &mut out);
    dns_check(f, &mut out);
    state_check(f, &mut out);
    out
}

/// The state directory holds the approvals of trust on change: a session needs to write it, and
/// refuses to start when it lies in the project (an agent could approve its own hook there).
fn state_check(f: &Facts, out: &mut Vec<Check>) {
    const FIX: &str = "set XDG_STATE_HOME to a directory you own outside every project (default ~/.local/state)";
    let Some(s) = &f.state else {
        out.push(warn(
            "state-dir",
            "no state directory: neither XDG_STATE_HOME nor HOME is set, so sessions run without trust on change (approvals of init hooks and config.toml) and keep proxy logs in memory only",
            "set HOME, or XDG_STATE_HOME to a directory outside every project",
        ));
        return;
    };
    let at = s.path.display();
    if let Err(why) = &s.writable {
        out.push(fail(
            "state-dir",
            format!("state directory {at}: {why}; sessions cannot record approvals there"),
            format!("make it writable by this user, or {FIX}"),
        ));
    } else if let Some(project) = &s.project {
        out.push(fail(
            "state-dir",
            format!("state directory {at} lies inside the project {}: an agent working there could edit the approvals, so sessions on it are refused", project.display()),
            FIX,
        ));
    } else {
        out.push(ok("state-dir", format!("{at} is writable and outside the current project")));
    }
}

/// 1 when a check failed (a container session cannot work), else 0.
pub fn exit_code(checks: &[Check]) -> i32 {
    i32::from(checks.iter().any(|c| c.status == Status::Fail))
}

/// The human report: one line per check, the fix below a warning or failure.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut s = String::new();
    for c in checks {
        s.push_str(&format!("{:<4}  {:<width$}  {}\n", c.status.label(), c.check, c.detail));
        if let Some(fix) = &c.fix {
            s.push_str(&format!("{:<4}  {:<width$}  fix: {fix}\n", "", ""));
        }
    }
    s
}

/// `codex-box doctor [--json] [--image IMAGE] [--dns-server ADDR]` (`engine`: `--engine`): prints the
/// report, returns the exit code (a bad --dns-server is an error).
pub async fn run(args: &crate::cli::DoctorArgs, engine: Option<&str>) -> anyhow::Result<i32> {
    let image = args.image.clone().unwrap_or_else(|| "codex-sandbox".to_string());
    let server = match &args.dns_server {
        Some(s) => Some(crate::egress::parse_dns_server(s, "--dns-server")?),
        None => None,
    };
    let facts = facts::gather(&image, server, engine, &crate::host_env::HostEnv::from_process()).await;
    let checks = checks(&facts);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks).unwrap_or_else(|_| "[]".into()));
    } else {
        print!("{}", render(&checks));
    }
    Ok(exit_code(&checks))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
