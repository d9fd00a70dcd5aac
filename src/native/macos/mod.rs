//! The macOS backend: translates a [`Policy`] into a Seatbelt profile (`sbpl`) and runs the command
//! through `/usr/bin/sandbox-exec -p PROFILE -D NAME=PATH … -- CMD`, with canonical paths (`paths`)
//! and a scrubbed environment.
//!
//! Network by name (`--allow-domain`): macOS has no private network namespace, so codex-box serves
//! its allowlisting proxy ([`crate::native::egress`]) on the host's loopback, `127.0.0.1:PORT` (an
//! ephemeral port, its `[::1]` twin held so nothing else can listen there), the profile allows
//! outbound TCP to `localhost:PORT` and nothing else, and the command's proxy variables name it.
//!
//! Enforced by the kernel (Seatbelt): reads only below the readable roots minus hidden paths, writes
//! only below the writable roots minus .git/.codex/.agents and protected paths, no network unless the
//! policy allows it — with allowed domains, TCP to the proxy's port only (no DNS, no UDP, no other
//! port), the proxy deciding by name — signals and ptrace-like inspection only inside the sandbox.
//! Not enforced: a private /tmp (the host's is shared), resource limits, and the command outliving
//! a killed codex-box (there is no parent-death signal on macOS). With allowed domains: the proxy on
//! the host's loopback is reachable by every other process of the host too (same allowlist); a
//! process the command leaves behind keeps its profile, so after the run it can reach whatever
//! listens on that port then; tools that ignore the proxy variables, or verify TLS through the
//! system's trust service (trustd, left closed: it fetches certificate URLs outside the sandbox),
//! fail instead of connecting. `danger-full-access` runs the command without sandbox-exec.
//!
//! The generator, the path canonicaliser and the proxy's loopback listener compile everywhere and
//! are unit-tested on Linux; the code that starts processes exists only on macOS and has not been
//! run by this project: nothing here has been run on a Mac, only cross-compiled.

pub mod denials;
pub mod paths;
pub mod sbpl;

use crate::policy::Policy;

#[derive(Debug, thiserror::Error)]
pub enum MacosError {
    #[error(transparent)]
    Profile(#[from] sbpl::SbplError),
    #[error("{} is missing; it is part of every macOS since 10.5 — check the system installation, or use the container mode", sbpl::SANDBOX_EXEC)]
    NoSandboxExec,
    #[error("command not found: `{0}` (searched PATH)")]
    NotFound(String),
    #[error("cannot start {program}: {error}")]
    Spawn { program: String, error: std::io::Error },
    #[error("cannot wait for the sandboxed command: {0}")]
    Wait(std::io::Error),
    #[error("cannot start `log stream` for --log-denials: {0}; drop --log-denials")]
    LogStream(std::io::Error),
    #[error(transparent)]
    Egress(#[from] crate::native::egress::EgressError),
}

impl MacosError {
    /// The shell's exit code for a command that could not be run.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            MacosError::NotFound(_) => Some(127),
            _ => None,
        }
    }
}

/// What the policy asks for that Seatbelt cannot give (reported as `Enforcement::Partial`).
pub fn gaps(policy: &Policy) -> Vec<String> {
    let mut gaps = Vec::new();
    if !policy.full_access && !policy.fs.shared_tmp {
        gaps.push("private /tmp: the host's /tmp is shared (Seatbelt has no mount namespace)".to_string());
    }
    gaps
}

#[cfg(target_os = "macos")]
pub use run::{probe, run};

#[cfg(target_os = "macos")]
mod run {
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;
    use std::process::Command;

    use super::{denials, gaps, paths, sbpl, MacosError};
    use crate::native::{egress, env, exe, Enforcement, Options, Outcome};
    use crate::policy::{NetPolicy, Policy};

    /// Whether `sandbox-exec` is there.
    pub fn probe() -> bool {
        Path::new(sbpl::SANDBOX_EXEC).is_file()
    }

    /// Runs `argv` under `policy`.
    pub fn run(policy: &Policy, argv: &[String], opts: &Options) -> Result<Outcome, MacosError> {
        let canonical = Policy { fs: paths::canonical_fs(&policy.fs), ..policy.clone() };
        // Network by name: the proxy's port goes into the profile, so it is bound first.
        let domains = match &policy.net {
            NetPolicy::Domains(d) if !policy.full_access => Some(&**d),
            _ => None,
        };
        let loopback = domains.map(|_| egress::bind_loopback()).transpose()?;
        let profile = sbpl::plan(&canonical, loopback.as_ref().map(egress::Loopback::port))?;
        let (mut vars, _removed) = env::scrub(
            std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())),
            &policy.env,
        );
        if let Some(lo) = &loopback {
            egress::point_at(&mut vars, lo.addr());
        }
        let path_var = vars.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str());
        let exe =
            exe::find_exe(&argv[0], path_var, &exe::MACOS).ok_or_else(|| MacosError::NotFound(argv[0].clone()))?;
        let mut resolved = argv.to_vec();
        resolved[0] = exe.to_string_lossy().into_owned();
        let (program, mut cmd) = match &profile {
            None => (resolved[0].clone(), Command::new(&exe)),
            Some(p) => {
                if !probe() {
                    return Err(MacosError::NoSandboxExec);
                }
                let mut c = Command::new(sbpl::SANDBOX_EXEC);
                c.args(sbpl::sandbox_exec_args(p, &resolved));
                (sbpl::SANDBOX_EXEC.to_string(), c)
            }
        };
        if profile.is_none() {
            cmd.args(&argv[1..]);
        }
        cmd.env_clear().envs(vars);
        let missing = gaps(policy);
        if opts.verbose {
            match &profile {
                None => eprintln!("codex-box: sandbox: danger-full-access, no Seatbelt profile"),
                Some(p) => {
                    eprintln!("codex-box: sandbox: Seatbelt profile:\n{}", p.text);
                    for (k, v) in &p.params {
                        eprintln!("codex-box: sandbox:   {k} = {}", v.display());
                    }
                    if let Some(port) = p.proxy_port {
                        eprintln!("codex-box: sandbox:   {} = {port}", sbpl::PROXY_PORT);
                    }
                }
            }
            if let (Some(d), Some(lo)) = (domains, &loopback) {
                eprintln!(
                    "codex-box: sandbox: network only through the proxy at {} ({} allowed, {} denied pattern(s), ports {:?}; [::1]:{} {})",
                    lo.addr(),
                    d.rules.allow.len(),
                    d.rules.deny.len(),
                    d.ports,
                    lo.port(),
                    if lo.reserves_ipv6() { "reserved" } else { "absent (no IPv6 loopback)" },
                );
            }
            for g in &missing {
                eprintln!("codex-box: sandbox: not enforced: {g}");
            }
        }
        // Before the command exists: a resolver or log that cannot work stops the run here.
        let proxy = match (domains, loopback) {
            (Some(d), Some(lo)) => {
                Some(egress::prepare(d, opts.proxy_log.as_deref(), opts.log_denials)?.serve_loopback(lo)?)
            }
            _ => None,
        };
        let stream = match (opts.log_denials, &profile) {
            (true, Some(_)) => Some(denials::Stream::start().map_err(MacosError::LogStream)?),
            _ => None,
        };
        let mut child = cmd.spawn().map_err(|error| MacosError::Spawn { program, error })?;
        // The terminal sends SIGINT/SIGQUIT to the whole group: the command decides, codex-box waits.
        // SAFETY: setting a signal disposition to SIG_IGN and back has no memory-safety requirement.
        let saved = unsafe { [libc::signal(libc::SIGINT, libc::SIG_IGN), libc::signal(libc::SIGQUIT, libc::SIG_IGN)] };
        let status = child.wait();
        // SAFETY: restores the dispositions saved above.
        unsafe {
            libc::signal(libc::SIGINT, saved[0]);
            libc::signal(libc::SIGQUIT, saved[1]);
        }
        let status = status.map_err(MacosError::Wait)?;
        if let Some(running) = proxy {
            let summary = running.finish();
            crate::notice!("codex-box: {summary}");
        }
        if let Some(stream) = stream {
            let found = stream.finish();
            eprintln!("codex-box: the sandbox refused {} operation(s)", found.len());
            for d in &found {
                eprintln!("  denied: {} {} by {}({})", d.operation, d.target, d.process, d.pid);
            }
        }
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        let enforcement = if missing.is_empty() { Enforcement::Full } else { Enforcement::Partial(missing) };
        Ok(Outcome { code, enforcement })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::FsPolicy;

    #[test]
    fn a_private_tmp_is_reported_missing_unless_shared_or_unsandboxed() {
        let p = Policy::default();
        assert_eq!(gaps(&p).len(), 1);
        assert!(gaps(&p)[0].contains("/tmp"));
        let shared = Policy { fs: FsPolicy { shared_tmp: true, ..FsPolicy::default() }, ..Policy::default() };
        assert!(gaps(&shared).is_empty());
        assert!(gaps(&Policy { full_access: true, ..Policy::default() }).is_empty());
    }

    #[test]
    fn not_found_exits_127() {
        assert_eq!(MacosError::NotFound("x".into()).exit_code(), Some(127));
        assert_eq!(MacosError::NoSandboxExec.exit_code(), None);
    }
}
