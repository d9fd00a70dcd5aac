//! Command-line definitions (clap). Parsing only: the merge into a policy happens in `config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// What `--help` adds after the flags: the exit status and every environment variable read.
pub const AFTER_HELP: &str = "\
Exit status: the command's own (the agent's, or the sandboxed command's); 125 when codex-box itself
fails (bad input, no engine, a refused start) — nothing is left behind then.

Environment (besides the variables shown with their flags):
  OPENAI_API_KEY          held by codex-box's API relay; a session gets a placeholder
  OPENAI_ALLOWED_DOMAINS  extra allowlisted names (space or comma separated)
  CODEX_BOX_CA_CERTS      extra CA certificate files, separated like PATH
  CODEX_BOX_COMPANION_BIN a static Linux codex-box for the companion container
  CODEX_CONFIG_DIR        a Codex config directory (config.toml, auth.json, prompts/)
  CODEX_HOME              your Codex home (sandbox --codex copies its trusted inputs)
  WORKSPACE_ROOT_DIR      the workdir must be inside it
  CODEX_BOX_ENGINE        the container engine's address (below --engine)
  DOCKER_HOST             the engine's address, below CODEX_BOX_ENGINE
  DOCKER_CONTEXT          the docker CLI context naming the engine (else the current one)
  DOCKER_CONFIG           the docker CLI's directory, for its contexts (default ~/.docker)
  DOCKER_TLS_VERIFY       with a TCP DOCKER_HOST: a TLS engine, refused (not supported yet)
  XDG_STATE_HOME          codex-box's state (default ~/.local/state/codex-box)
  XDG_CONFIG_HOME, XDG_RUNTIME_DIR, TMPDIR, HOME, TERM, PATH

Shell completions: `codex-box completions bash|zsh|fish|powershell`; manual page: `codex-box man`.";

/// Run the Codex CLI agent, or any command, in a disposable hardened container or a native sandbox.
#[derive(Debug, Parser)]
#[command(name = "codex-box", version, args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub session: SessionArgs,

    /// The container engine: a socket path, unix:///PATH or tcp://HOST:PORT (also CODEX_BOX_ENGINE;
    /// default: DOCKER_HOST, the docker context, then the usual Docker and Podman sockets).
    #[arg(long = "engine", global = true, value_name = "ADDR")]
    pub engine: Option<String>,

    /// Print only errors and warnings on stderr: no progress, summaries or notices (the command's
    /// own output is untouched).
    #[arg(short = 'q', long = "quiet", global = true)]
    pub quiet: bool,

    /// Arguments passed to `codex` (use `--` before arguments that look like codex-box's own).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CODEX_ARGS")]
    pub codex_args: Vec<String>,
}

/// `codex-box --engine ADDR --quiet SUBCOMMAND …` as `codex-box SUBCOMMAND --engine ADDR --quiet …`:
/// any flag before a subcommand makes clap read the rest as Codex's arguments
/// (`args_conflicts_with_subcommands`), so a leading global flag would start a Codex session with
/// the subcommand's name as its prompt.
pub fn hoist_globals(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let mut width = 0;
    loop {
        match args.get(1 + width).and_then(|a| a.to_str()) {
            Some("--engine") => width += 2,
            Some(a) if a.starts_with("--engine=") || a == "--quiet" || a == "-q" => width += 1,
            _ => break,
        }
    }
    if width == 0 {
        return args;
    }
    let Some(next) = args.get(1 + width).and_then(|a| a.to_str()) else { return args };
    let cmd = Cli::command();
    if cmd.get_subcommands().any(|c| c.get_name() == next || c.get_all_aliases().any(|a| a == next)) {
        let flags: Vec<_> = args.drain(1..1 + width).collect();
        let at = 2;
        args.splice(at..at, flags);
    }
    args
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command (not Codex) in a session container without a terminal; exits with its code.
    Run(RunArgs),
    /// Build or import the codex-sandbox image.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Remove containers left behind by a codex-box that was killed.
    Gc(GcArgs),
    /// Show the egress allowlist, what each name resolves to, and the firewall rules a session gets.
    Egress(EgressArgs),
    /// Run a command in a native sandbox (Landlock + seccomp + namespaces on Linux), no container.
    Sandbox(SandboxArgs),
    /// Check that this host can run sessions (engine, image, firewall tools) and sandbox natively.
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout: `codex-box man > codex-box.1`.
    Man,
}

/// `completions SHELL` and `man`: the script or page generated from these definitions, on stdout;
/// the exit status (other commands: 0, nothing printed).
pub fn print_docs(command: Option<&Command>) -> i32 {
    use clap::CommandFactory;
    let mut out = std::io::stdout();
    match command {
        Some(Command::Completions { shell }) => {
            clap_complete::generate(*shell, &mut Cli::command(), "codex-box", &mut out);
            0
        }
        Some(Command::Man) => match clap_mangen::Man::new(Cli::command()).render(&mut out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("codex-box: writing the manual page: {e}");
                125
            }
        },
        _ => 0,
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct DoctorArgs {
    /// Print the checks as a JSON array (one object per check).
    #[arg(long = "json")]
    pub json: bool,
    /// Session image to check (also CODEX_DOCKER_IMAGE; default codex-sandbox).
    #[arg(long = "image", env = "CODEX_DOCKER_IMAGE", value_name = "IMAGE")]
    pub image: Option<String>,
    /// Check that the built-in allowlist names resolve through this resolver (IP[:PORT]), as a
    /// session with --dns-server would (default: the host's resolver).
    #[arg(long = "dns-server", value_name = "ADDR")]
    pub dns_server: Option<String>,
}

/// Platform of a native sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    Linux,
    Macos,
    Windows,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SandboxArgs {
    /// Sandbox backend (default: this host's platform).
    #[arg(value_enum, value_name = "PLATFORM")]
    pub platform: Option<Platform>,

    /// TOML file with `sandbox_mode`, `[sandbox_workspace_write]` and `[permissions.NAME]` profiles
    /// (Codex's config.toml works; default: ~/.config/codex-box/config.toml if it exists).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Named profile `[permissions.NAME]` from the config file.
    #[arg(short = 'P', long = "permissions-profile", value_name = "NAME")]
    pub permissions_profile: Option<String>,

    /// read-only (default), workspace-write or danger-full-access.
    #[arg(short = 's', long = "sandbox-mode", value_name = "MODE")]
    pub sandbox_mode: Option<String>,

    /// workspace-write without network (like `codex --full-auto`).
    #[arg(long = "full-auto", conflicts_with_all = ["sandbox_mode", "network"])]
    pub full_auto: bool,

    /// Extra writable directory (repeatable); turns read-only into workspace-write.
    #[arg(short = 'w', long = "writable-root", value_name = "DIR")]
    pub writable_root: Vec<PathBuf>,

    /// Let the command write .git inside the writable roots (commits, hooks!); default read-only.
    #[arg(long = "allow-git-write")]
    pub allow_git_write: bool,

    /// Allow network access (workspace-write only; read-only never has network).
    #[arg(long = "network")]
    pub network: bool,

    /// Allow network only to this name, through codex-box's filtering proxy (repeatable; `*.x`
    /// subdomains, `**.x` apex and subdomains, IPs and CIDRs). The command gets a network namespace
    /// whose only way out is the proxy; HTTP(S)_PROXY and tool settings point at it.
    #[arg(long = "allow-domain", value_name = "NAME", conflicts_with = "network")]
    pub allow_domain: Vec<String>,

    /// Refuse this name even when --allow-domain allows it (repeatable; deny beats allow).
    #[arg(long = "deny-domain", value_name = "NAME")]
    pub deny_domain: Vec<String>,

    /// A destination port the proxy connects to (repeatable; default 443 and 80).
    #[arg(long = "allow-port", value_name = "PORT")]
    pub allow_port: Vec<u16>,

    /// The DNS server the proxy resolves allowed names with (IP[:PORT]; default: the host's).
    #[arg(long = "dns-server", value_name = "ADDR")]
    pub dns_server: Option<String>,

    /// Query --dns-server over TLS (DNS-over-TLS, port 853 unless given; Linux): its certificate must
    /// be valid for NAME and issued by a system CA or one in CODEX_BOX_CA_CERTS.
    #[arg(long = "dns-tls-name", value_name = "NAME")]
    pub dns_tls_name: Option<String>,

    /// Keep this unix socket reachable (repeatable); every socket listening by path when the sandbox
    /// starts is hidden otherwise (an agent, a database, containerd: ways out of any sandbox).
    #[arg(long = "allow-unix-socket", value_name = "PATH")]
    pub allow_unix_socket: Vec<PathBuf>,

    /// Keep this environment variable although it looks like a secret (repeatable).
    #[arg(long = "keep-env", value_name = "NAME")]
    pub keep_env: Vec<String>,

    /// Run even when the kernel cannot enforce everything, printing what is not enforced.
    #[arg(long = "allow-degraded")]
    pub allow_degraded: bool,

    /// After the command, list the system calls the sandbox refused (seccomp user notification);
    /// with allowed domains, also print each request the proxy refuses.
    #[arg(long = "log-denials")]
    pub log_denials: bool,

    /// Print the policy and what the kernel enforces before running.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Run Codex itself in the sandbox: the arguments after `--` are Codex's (none: the interactive
    /// TUI). Codex runs its commands directly inside this sandbox (its own cannot nest here); its
    /// home is codex-box's, per project, rebuilt from your config.toml and prompts at each start;
    /// the workspace is writable (`-s read-only` to review only) and the network reaches Codex's API
    /// names (plus --allow-domain) through the proxy.
    #[arg(long = "codex")]
    pub codex: bool,

    /// The command and its arguments (with --codex: Codex's arguments).
    #[arg(last = true, required_unless_present = "codex", value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Give the command a terminal (interactive), as the default Codex session has.
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct SessionArgs {
    /// Project directory, mounted read-write at /app<WORK_DIR> (default: the current directory).
    #[arg(long = "work_dir", visible_alias = "work-dir", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Init hook copied to the codex home as init.sh and run before the agent.
    #[arg(long = "init_script", visible_alias = "init-script", value_name = "FILE")]
    pub init_script: Option<PathBuf>,

    /// Extra path mounted read-only at /app<PATH> (repeatable).
    #[arg(long = "read-only", value_name = "PATH")]
    pub read_only: Vec<PathBuf>,

    /// Where Codex keeps its sessions (default: <codex home>/sessions).
    #[arg(long = "sessions-path", value_name = "DIR")]
    pub sessions_path: Option<PathBuf>,

    /// Codex config.toml, or a directory holding config.toml / auth.json / prompts.
    #[arg(long = "config", value_name = "FILE|DIR")]
    pub config: Option<PathBuf>,

    /// auth.json to mount read-only (also CODEX_AUTH_FILE).
    #[arg(long = "auth_file", visible_alias = "auth-file", env = "CODEX_AUTH_FILE", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,

    /// Host directory used as the codex home (default: <WORK_DIR>/.codex/.environment).
    #[arg(long = "codex-home", value_name = "DIR")]
    pub codex_home: Option<PathBuf>,

    /// Image to run (also CODEX_DOCKER_IMAGE; default codex-sandbox).
    #[arg(long = "image", env = "CODEX_DOCKER_IMAGE", value_name = "IMAGE")]
    pub image: Option<String>,

    /// Extra CA certificate (PEM) to trust inside the session (repeatable; also CODEX_BOX_CA_CERTS, ':'-separated).
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,

    /// Memory limit, e.g. 4g or 512m.
    #[arg(long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,

    /// CPU limit, e.g. 1.5.
    #[arg(long = "cpus", value_name = "N")]
    pub cpus: Option<f64>,

    /// Maximum number of processes in the container.
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<i64>,

    /// Accept the project's init hook and config.toml as they are now (they changed since you last
    /// approved them, or were never approved).
    #[arg(long = "trust")]
    pub trust: bool,

    /// Allow egress to this name, IP address or CIDR (repeatable; also OPENAI_ALLOWED_DOMAINS and
    /// `allow` in .codex/codex-box.toml).
    #[arg(long = "allow-domain", value_name = "NAME")]
    pub allow_domain: Vec<String>,

    /// Allow the names a tool needs: github, maven, gradle, npm, pypi, crates, go (repeatable; also
    /// `presets` in .codex/codex-box.toml; `codex-box egress --preset NAME` shows one).
    #[arg(long = "allow-preset", value_name = "PRESET")]
    pub allow_preset: Vec<String>,

    /// DNS server (IP[:port]) used on the host to resolve the allowlist (default: the system resolver).
    #[arg(long = "dns-server", value_name = "ADDR")]
    pub dns_server: Option<String>,

    /// Query --dns-server over TLS (DNS-over-TLS, port 853 unless given; Linux): its certificate must
    /// be valid for NAME and issued by a system CA or a --ca-cert. With either flag, the config's
    /// dns_server and dns_tls_name are not used.
    #[arg(long = "dns-tls-name", value_name = "NAME")]
    pub dns_tls_name: Option<String>,

    /// Let the session reach the --dns-server resolver on port 53 (and no other). Off by default:
    /// DNS is an exfiltration channel; allowlisted names are pinned in /etc/hosts instead.
    #[arg(long = "allow-dns")]
    pub allow_dns: bool,

    /// An allowlisted name that does not resolve is an error (default: a warning).
    #[arg(long = "strict")]
    pub strict: bool,

    /// Egress mode: `allowlist` (default-deny IP firewall), `proxy` (only through codex-box's
    /// allowlisting proxy, decided by name; wildcards allowed) or `open` (no firewall at all).
    #[arg(long = "egress", value_name = "MODE", default_value = "allowlist", value_parser = ["allowlist", "proxy", "open"])]
    pub egress: String,

    /// With --egress proxy: refuse this name, `*.domain`, `**.domain`, IP or CIDR even when an
    /// allow entry matches (repeatable; also `deny` in .codex/codex-box.toml).
    #[arg(long = "deny-domain", value_name = "NAME")]
    pub deny_domain: Vec<String>,

    /// With --egress proxy: print each request the proxy denies on stderr as it happens.
    #[arg(long = "log-denials")]
    pub log_denials: bool,

    /// With --egress proxy (Linux): add the value of the host environment variable NAME as
    /// `Authorization: Bearer …` (or as HEADER) to HTTPS requests for exactly these hosts; the
    /// session never holds it (repeatable; also [secrets.NAME] in .codex/codex-box.toml).
    #[arg(long = "secret", value_name = "NAME=HOST[,HOST…][:HEADER]")]
    pub secret: Vec<String>,
    /// Where the firewall is applied: `entrypoint` (the session container's root entrypoint, before the
    /// agent exists; fastest; the default with runc) or `sidecar` (a separate container owning the
    /// network namespace, so the session container never holds NET_ADMIN — not even for
    /// `docker exec -u 0`; the default with --runtime).
    #[arg(long = "firewall-applier", value_name = "WHERE", value_parser = ["entrypoint", "sidecar"])]
    pub firewall_applier: Option<String>,

    /// OCI runtime of the agent's container, e.g. `runsc` (gVisor: the agent's system calls go to a
    /// user-space kernel). Must be configured in the engine; the firewall sidecar keeps runc.
    #[arg(long = "runtime", value_name = "NAME")]
    pub runtime: Option<String>,

    /// Docker network the session joins (default: the engine's default bridge).
    #[arg(long = "network", value_name = "NAME")]
    pub network: Option<String>,

    /// Shortest interval, in seconds, between re-resolutions of the allowlist during a session
    /// (TTLs are followed above it).
    #[arg(long = "refresh-min", value_name = "SECS", default_value_t = 30)]
    pub refresh_min: u64,

    /// HOST:PORT that must be unreachable once the firewall is up, checked before the agent starts
    /// (default: port 9 of the network's gateway, i.e. this host).
    #[arg(long = "verify-blocked", value_name = "HOST:PORT")]
    pub verify_blocked: Option<String>,

    /// HOST:PORT of an allowlisted service that must be reachable before the agent starts.
    #[arg(long = "verify-allowed", value_name = "HOST:PORT")]
    pub verify_allowed: Option<String>,

    /// Let the agent write .git (commit). By default .git is read-only, because git on the host would
    /// run what an agent plants there (hooks, config, commondir).
    #[arg(long = "allow-git-write")]
    pub allow_git_write: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the codex-sandbox image through the Engine API.
    Build(ImageBuildArgs),
    /// Make a Debian base image without a registry: debootstrap, then import through the API.
    Bootstrap(BootstrapArgs),
    /// Import an existing root filesystem directory as an image.
    ImportRootfs(ImportRootfsArgs),
}

#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    /// @openai/codex version to install (default: latest).
    #[arg(long = "codex-version", value_name = "V")]
    pub codex_version: Option<String>,
    /// Node.js major version.
    #[arg(long = "node", value_name = "18|20|22", default_value = "22")]
    pub node: String,
    /// Tag of the image (default codex-sandbox, or codex-sandbox:<version> for a pinned version).
    #[arg(long = "tag", value_name = "T")]
    pub tag: Option<String>,
    /// Base image (build argument BASE_IMAGE).
    #[arg(long = "base", value_name = "IMAGE", default_value = "debian:bookworm-slim")]
    pub base: String,
    /// Extra CA certificate (PEM) to add to the image's trust store (repeatable; also CODEX_BOX_CA_CERTS).
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Build without the engine's layer cache.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Debian suite.
    #[arg(long = "suite", default_value = "bookworm")]
    pub suite: String,
    /// Debian mirror (default: debootstrap's).
    #[arg(long = "mirror", value_name = "URL")]
    pub mirror: Option<String>,
    /// Tag of the imported image (default codex-box-base:<suite>).
    #[arg(long = "tag", value_name = "T")]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportRootfsArgs {
    /// Root filesystem directory.
    pub dir: PathBuf,
    /// Tag of the imported image.
    #[arg(long = "tag", value_name = "T")]
    pub tag: String,
}

#[derive(Debug, Args)]
pub struct EgressArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Print the rule texts (ipset, iptables, ip6tables) too.
    #[arg(long = "rules")]
    pub rules: bool,
    /// Show what a preset allows (without NAME: list the presets) instead of the allowlist.
    #[arg(long = "preset", value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub preset: Option<String>,
    /// Machine-readable output.
    #[arg(long = "json")]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<EgressAction>,
}

#[derive(Debug, Subcommand, Clone)]
pub enum EgressAction {
    /// Would a session with these settings reach HOST[:PORT] (default port 443)? Names the entry or
    /// rule that allows it, or why not and what to add. Exit status 0 when allowed, 1 when refused.
    /// Flags go before `why`: `codex-box egress --egress proxy why github.com`.
    Why {
        #[arg(value_name = "HOST[:PORT]")]
        target: String,
    },
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Remove every codex-box container, also those of running sessions.
    #[arg(long = "all")]
    pub all: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("codex-box").chain(args.iter().copied())).unwrap()
    }

    fn hoisted(args: &[&str]) -> Cli {
        let argv = std::iter::once("codex-box").chain(args.iter().copied()).map(Into::into).collect();
        Cli::try_parse_from(hoist_globals(argv)).unwrap()
    }

    #[test]
    fn engine_is_taken_before_or_after_any_subcommand() {
        let c = hoisted(&["--engine", "unix:///e.sock", "gc", "--all"]);
        assert!(matches!(c.command, Some(Command::Gc(GcArgs { all: true }))), "{c:?}");
        assert_eq!(c.engine.as_deref(), Some("unix:///e.sock"));
        let c = hoisted(&["--engine=/e.sock", "doctor", "--json"]);
        assert!(matches!(c.command, Some(Command::Doctor(_))) && c.engine.as_deref() == Some("/e.sock"));
        let c = hoisted(&["run", "--engine", "/e.sock", "--", "true"]);
        assert!(matches!(c.command, Some(Command::Run(_))) && c.engine.as_deref() == Some("/e.sock"));
        let c = hoisted(&["--engine", "/e.sock", "image", "build"]);
        assert!(matches!(c.command, Some(Command::Image(_))) && c.engine.as_deref() == Some("/e.sock"));
        // The default session: --engine then Codex's own arguments.
        let c = hoisted(&["--engine", "/e.sock", "exec", "fix it"]);
        assert!(c.command.is_none() && c.engine.as_deref() == Some("/e.sock"));
        assert_eq!(c.codex_args, ["exec", "fix it"]);
    }

    #[test]
    fn quiet_is_taken_before_or_after_any_subcommand_and_with_engine() {
        for args in [
            &["--quiet", "gc"][..],
            &["-q", "--engine", "/e.sock", "gc"],
            &["--engine=/e.sock", "--quiet", "gc"],
            &["gc", "-q"],
        ] {
            let c = hoisted(args);
            assert!(matches!(c.command, Some(Command::Gc(_))) && c.quiet, "{args:?}: {c:?}");
        }
        let c = hoisted(&["--quiet", "exec", "fix it"]);
        assert!(c.command.is_none() && c.quiet && c.codex_args == ["exec", "fix it"], "{c:?}");
        assert!(!hoisted(&["gc"]).quiet, "control");
    }

    #[test]
    fn script_flags_and_codex_args() {
        let c = parse(&[
            "--work_dir",
            "/p",
            "--init_script",
            "h.sh",
            "--read-only",
            "/a",
            "--read-only",
            "/b",
            "--",
            "exec",
            "--full-auto",
            "fix it",
        ]);
        assert!(c.command.is_none());
        assert_eq!(c.session.work_dir.as_deref(), Some(std::path::Path::new("/p")));
        assert_eq!(c.session.read_only.len(), 2);
        assert_eq!(c.codex_args, vec!["exec", "--full-auto", "fix it"]);
        let c = parse(&["--work-dir", "/p", "--auth-file", "a.json", "--sessions-path", "/s", "--codex-home", "/h"]);
        assert_eq!(c.session.auth_file.as_deref(), Some(std::path::Path::new("a.json")));
        let c = parse(&["run", "--work_dir", ".", "--", "sh", "-c", "exit 3"]);
        match c.command {
            Some(Command::Run(r)) => assert_eq!(r.command, vec!["sh", "-c", "exit 3"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn proxy_mode_flags() {
        let c = parse(&[
            "run",
            "--egress",
            "proxy",
            "--allow-domain",
            "*.example.com",
            "--deny-domain",
            "bad.example.com",
            "--log-denials",
            "--",
            "true",
        ]);
        let Some(Command::Run(r)) = c.command else { panic!() };
        assert_eq!((r.session.egress.as_str(), r.session.deny_domain.len(), r.session.log_denials), ("proxy", 1, true));
        assert!(Cli::try_parse_from(["codex-box", "--egress", "socks"]).is_err());
    }

    #[test]
    fn unknown_flags_are_errors_naming_the_flag() {
        let e = Cli::try_parse_from(["codex-box", "run", "--bogus", "--", "true"]).unwrap_err();
        assert!(e.to_string().contains("--bogus"), "{e}");
    }
}
