//! codex-box's own layer of Codex configuration: Codex runs its commands directly inside codex-box's
//! boundary, because its own sandbox cannot exist there.
//!
//! Codex on Linux puts every command the model runs in bubblewrap, which needs user namespaces. A
//! container session refuses them to the agent (Docker's default seccomp profile, kept on purpose: user
//! namespaces open kernel attack surface), and the native sandbox's seccomp filter refuses them too. So
//! Codex's inner sandbox would make every command fail. Instead codex-box sets Codex's `sandbox_mode` to
//! `danger-full-access` in a layer of its own — never by changing the user's files:
//!
//! * **container sessions**: [`managed_config`] is mounted read-only at [`MANAGED_CONFIG_PATH`], the
//!   system-wide managed layer that outranks `config.toml`, profiles and `-c` overrides, for every Codex
//!   started in the session (also `codex-box run -- codex exec …`);
//! * **native sandbox** (`codex-box sandbox --codex`): [`CLI_OVERRIDE`] is put in front of the user's
//!   Codex arguments (a root-level `-c` outranks `config.toml` and profiles; the host's
//!   `/etc/codex` is not codex-box's to change).
//!
//! Everything else of the user's configuration stays, the approval policy included. What confines the
//! commands instead is the boundary codex-box enforces around Codex itself ([`Boundary`]).
//!
//! An explicit request for Codex's inner sandbox on Codex's command line (`-s read-only`,
//! `--sandbox workspace-write`, `-c sandbox_mode=…`, `codex sandbox …`) is refused with
//! [`InnerSandboxError`] before anything is created; one in `config.toml` only gets a note
//! ([`config_note`]), since the layer above it wins and the file is shared with Codex outside codex-box.

use std::fmt;

/// Where the managed layer is mounted in a session container (Codex reads it on Linux).
pub const MANAGED_CONFIG_PATH: &str = "/etc/codex/managed_config.toml";

/// The sandbox mode codex-box's layer sets.
pub const SANDBOX_MODE: &str = "danger-full-access";

/// The Codex arguments the native sandbox puts in front of the user's: `-c sandbox_mode="…"`.
pub const CLI_OVERRIDE: [&str; 2] = ["-c", "sandbox_mode=\"danger-full-access\""];

/// The boundary that confines Codex's commands instead of its own sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// A codex-box container session.
    Container,
    /// `codex-box sandbox --codex`.
    Native,
}

impl Boundary {
    fn why(self) -> &'static str {
        match self {
            Boundary::Container => {
                "Codex's own sandbox (bubblewrap) needs user namespaces, which the session container refuses to the agent on purpose (Docker's seccomp profile; they open kernel attack surface), so every command would fail"
            }
            Boundary::Native => {
                "Codex's own sandbox (bubblewrap) needs user namespaces, which codex-box's native sandbox refuses to the commands inside it on purpose (they open kernel attack surface), so every command would fail"
            }
        }
    }

    fn instead(self) -> &'static str {
        match self {
            Boundary::Container => {
                "Codex runs its commands directly in the session container, which is the boundary: only the workdir is writable (.git, .codex and .agents read-only), no capabilities, the egress firewall or proxy, resource limits"
            }
            Boundary::Native => {
                "Codex runs its commands directly inside codex-box's sandbox, which is the boundary: Landlock lets them write only the workspace and Codex's state (its config, prompts and the project's .git/.codex read-only), seccomp and namespaces confine them, and the network reaches only the allowed names through codex-box's proxy"
            }
        }
    }
}

/// The managed configuration layer of a container session (pure; mounted read-only): the inner
/// sandbox off, and — when the API key stays with codex-box — the way to its relay.
pub fn managed_config(relay: Option<&RelayLayer>) -> String {
    let mut out = format!(
        "# Written by codex-box for this session (read-only; not your config.toml).\n\
         # {why}. {instead}.\n\
         # Your config.toml, profiles and approval policy stay as they are.\n\
         sandbox_mode = \"{SANDBOX_MODE}\"\n",
        why = Boundary::Container.why(),
        instead = Boundary::Container.instead(),
    );
    if let Some(r) = relay {
        out.push_str(&format!(
            "# The API key stays with codex-box: requests go through its relay to {}, which adds it.\n",
            r.upstream
        ));
        out.push_str(&r.toml);
    }
    out
}

/// The API key a session sees instead of the real one (which stays with codex-box's relay).
pub const PLACEHOLDER_KEY: &str = "codex-box-relay-holds-the-key";

/// OpenAI's API, where the built-in provider goes unless `openai_base_url` says otherwise.
pub const DEFAULT_API: &str = "https://api.openai.com/v1";

/// How Codex in a session reaches the API through codex-box's relay, which holds the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayLayer {
    /// Where the relay forwards (the provider's own base URL).
    pub upstream: String,
    /// The managed layer's lines that point Codex at the relay.
    pub toml: String,
    /// The same as `-c` values, for Codex's command line (the native sandbox).
    pub overrides: Vec<String>,
}

/// The relay layer for the user's trusted `config.toml` (pure): the built-in OpenAI provider gets
/// `openai_base_url` = the relay (its upstream: the user's `openai_base_url`, else OpenAI's API); a
/// custom `model_provider` whose `env_key` is `OPENAI_API_KEY` gets its table again with `base_url`
/// = the relay. `None` when the provider in use does not take `OPENAI_API_KEY`: the session then
/// needs no key at all.
pub fn relay_layer(config_toml: Option<&str>, relay_url: &str) -> Option<RelayLayer> {
    let config: toml::Table = config_toml.and_then(|t| t.parse().ok()).unwrap_or_default();
    let provider = config.get("model_provider").and_then(|v| v.as_str()).filter(|p| *p != "openai");
    match provider {
        None => {
            let upstream = config.get("openai_base_url").and_then(|v| v.as_str()).unwrap_or(DEFAULT_API).to_string();
            let mut t = toml::Table::new();
            t.insert("openai_base_url".into(), relay_url.into());
            let overrides = vec![format!("openai_base_url={}", toml::Value::from(relay_url))];
            Some(RelayLayer { upstream, toml: toml::to_string(&t).ok()?, overrides })
        }
        Some(id) => {
            let table = config.get("model_providers")?.get(id)?.as_table()?;
            if table.get("env_key").and_then(|v| v.as_str()) != Some("OPENAI_API_KEY") {
                return None;
            }
            let upstream = table.get("base_url")?.as_str()?.to_string();
            let mut mine = table.clone();
            mine.insert("base_url".into(), relay_url.into());
            let mut providers = toml::Table::new();
            providers.insert(id.to_string(), mine.into());
            let mut t = toml::Table::new();
            t.insert("model_providers".into(), providers.into());
            let key = if id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                id.to_string()
            } else {
                toml::Value::from(id).to_string()
            };
            let overrides = vec![format!("model_providers.{key}.base_url={}", toml::Value::from(relay_url))];
            Some(RelayLayer { upstream, toml: toml::to_string(&t).ok()?, overrides })
        }
    }
}

/// What on Codex's command line asked for its inner sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InnerSandboxAsk {
    /// `-s MODE` / `--sandbox MODE` with a mode other than danger-full-access.
    Mode(String),
    /// `-c sandbox_mode=…` (or a `permissions`/`default_permissions` override).
    Override(String),
    /// `--full-auto` (workspace-write in the Codex versions that still have it).
    FullAuto,
    /// The `codex sandbox` subcommand.
    SandboxCommand,
}

impl fmt::Display for InnerSandboxAsk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InnerSandboxAsk::Mode(m) => write!(f, "`--sandbox {m}`"),
            InnerSandboxAsk::Override(o) => write!(f, "`-c {o}`"),
            InnerSandboxAsk::FullAuto => write!(f, "`--full-auto`"),
            InnerSandboxAsk::SandboxCommand => write!(f, "`codex sandbox`"),
        }
    }
}

/// Codex's command line asks for the sandbox that cannot run inside codex-box's boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ask} asks for Codex's own sandbox, which cannot work here: {why}. {instead}; nothing was started. Drop {ask} (your approval policy still applies; `-a`/`--ask-for-approval` chooses it)")]
pub struct InnerSandboxError {
    pub ask: InnerSandboxAsk,
    why: &'static str,
    instead: &'static str,
}

/// Whether `argv` runs Codex (its program's file name is `codex`).
pub fn is_codex(argv: &[String]) -> bool {
    argv.first().and_then(|p| std::path::Path::new(p).file_name()).is_some_and(|n| n == "codex")
}

/// Checks Codex's arguments (without the program name) for a request of its inner sandbox.
/// Arguments after `--` are the prompt or a command and are not options.
pub fn check_args(args: &[String], boundary: Boundary) -> Result<(), InnerSandboxError> {
    match find_ask(args) {
        None => Ok(()),
        Some(ask) => Err(InnerSandboxError { ask, why: boundary.why(), instead: boundary.instead() }),
    }
}

/// Checks a whole command line: only when it runs Codex.
pub fn check_command(argv: &[String], boundary: Boundary) -> Result<(), InnerSandboxError> {
    if is_codex(argv) {
        check_args(&argv[1..], boundary)
    } else {
        Ok(())
    }
}

/// Codex options that take the next argument as their value (so it is not the subcommand).
const VALUE_OPTIONS: &[&str] = &[
    "-m",
    "--model",
    "-p",
    "--profile",
    "-C",
    "--cd",
    "-a",
    "--ask-for-approval",
    "-i",
    "--image",
    "--add-dir",
    "--local-provider",
    "--enable",
    "--disable",
    "--remote",
    "--remote-auth-token-env",
    "--color",
    "-o",
    "--output-last-message",
    "--output-schema",
    "--thread-source",
    "--cyber-access-program",
];

fn find_ask(args: &[String]) -> Option<InnerSandboxAsk> {
    let mut positional_seen = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let next = args.get(i + 1).map(String::as_str);
        if a == "--" {
            return None;
        }
        let mode = match a {
            "-s" | "--sandbox" => {
                i += 1;
                next
            }
            _ => a.strip_prefix("--sandbox=").or_else(|| a.strip_prefix("-s").filter(|v| !v.is_empty())),
        };
        if let Some(m) = mode {
            if m.trim_matches(|c| c == '"' || c == '\'') != SANDBOX_MODE {
                return Some(InnerSandboxAsk::Mode(m.to_string()));
            }
            i += 1;
            continue;
        }
        let over = match a {
            "-c" | "--config" => {
                i += 1;
                next
            }
            _ => a.strip_prefix("--config=").or_else(|| a.strip_prefix("-c").filter(|v| !v.is_empty())),
        };
        if let Some(o) = over {
            if let Some((key, value)) = o.split_once('=') {
                let key = key.trim();
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                let sandboxing = (key == "sandbox_mode" || key.ends_with(".sandbox_mode")) && value != SANDBOX_MODE;
                if sandboxing || key == "default_permissions" {
                    return Some(InnerSandboxAsk::Override(o.to_string()));
                }
            }
            i += 1;
            continue;
        }
        if a == "--full-auto" {
            return Some(InnerSandboxAsk::FullAuto);
        }
        if VALUE_OPTIONS.contains(&a) {
            i += 2;
            continue;
        }
        // The first positional argument is Codex's subcommand (or the prompt).
        if !a.starts_with('-') && !positional_seen {
            positional_seen = true;
            if a == "sandbox" {
                return Some(InnerSandboxAsk::SandboxCommand);
            }
        }
        i += 1;
    }
    None
}

/// A note for a `sandbox_mode` in the user's `config.toml` that codex-box's layer replaces.
pub fn config_note(config_toml: &str, boundary: Boundary) -> Option<String> {
    let table: toml::Table = config_toml.parse().ok()?;
    let mode = table.get("sandbox_mode")?.as_str()?;
    (mode != SANDBOX_MODE).then(|| {
        format!(
            "note: config.toml sets sandbox_mode = \"{mode}\", which codex-box replaces for this run: {}. {}.",
            boundary.why(),
            boundary.instead()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_relay_layer_points_the_provider_in_use_at_the_relay() {
        let relay = "http://172.17.0.5:3130/v1";
        // The built-in provider: its base URL, which the relay forwards to.
        let r = relay_layer(None, relay).unwrap();
        assert_eq!(r.upstream, DEFAULT_API);
        assert_eq!(r.overrides, [format!("openai_base_url=\"{relay}\"")]);
        let t: toml::Table = managed_config(Some(&r)).parse().unwrap();
        assert_eq!((t.len(), t["openai_base_url"].as_str()), (2, Some(relay)));
        let r = relay_layer(Some("openai_base_url = \"https://gw.corp.test/v1\"\nmodel = \"m\"\n"), relay).unwrap();
        assert_eq!(r.upstream, "https://gw.corp.test/v1");
        // A custom provider that takes the key: its table again, only base_url changed.
        let cfg = "model_provider = \"scripted\"\n[model_providers.scripted]\nname = \"s\"\n\
                   base_url = \"https://api.model.test/v1\"\nenv_key = \"OPENAI_API_KEY\"\nsupports_websockets = false\n";
        let r = relay_layer(Some(cfg), relay).unwrap();
        assert_eq!(r.upstream, "https://api.model.test/v1");
        let t: toml::Table = managed_config(Some(&r)).parse().unwrap();
        let p = t["model_providers"]["scripted"].as_table().unwrap();
        assert_eq!(p["base_url"].as_str(), Some(relay));
        assert_eq!(r.overrides, [format!("model_providers.scripted.base_url=\"{relay}\"")]);
        assert_eq!((p["name"].as_str(), p["supports_websockets"].as_bool()), (Some("s"), Some(false)));
        assert!(!t.contains_key("openai_base_url"));
        // A provider with another key (or none): no relay, and no key for the session.
        assert_eq!(relay_layer(Some(&cfg.replace("OPENAI_API_KEY", "AZURE_KEY")), relay), None);
        assert_eq!(relay_layer(Some("model_provider = \"ollama\"\n"), relay), None);
    }

    #[test]
    fn the_managed_layer_sets_only_the_sandbox_mode() {
        let t: toml::Table = managed_config(None).parse().unwrap();
        assert_eq!(t.len(), 1, "nothing but sandbox_mode: {t:?}");
        assert_eq!(t["sandbox_mode"].as_str(), Some("danger-full-access"));
        let c: toml::Table = CLI_OVERRIDE[1].parse().unwrap();
        assert_eq!(c["sandbox_mode"].as_str(), Some(SANDBOX_MODE));
        assert_eq!(CLI_OVERRIDE[0], "-c");
    }

    #[test]
    fn explicit_inner_sandbox_requests_are_found() {
        let ask = |a: &[&str]| find_ask(&v(a));
        assert_eq!(ask(&["-s", "workspace-write"]), Some(InnerSandboxAsk::Mode("workspace-write".into())));
        assert_eq!(ask(&["exec", "--sandbox", "read-only", "hi"]), Some(InnerSandboxAsk::Mode("read-only".into())));
        assert_eq!(ask(&["--sandbox=read-only"]), Some(InnerSandboxAsk::Mode("read-only".into())));
        assert_eq!(ask(&["-sworkspace-write"]), Some(InnerSandboxAsk::Mode("workspace-write".into())));
        assert_eq!(ask(&["--full-auto"]), Some(InnerSandboxAsk::FullAuto));
        assert_eq!(ask(&["sandbox", "--", "ls"]), Some(InnerSandboxAsk::SandboxCommand));
        assert_eq!(ask(&["-m", "o3", "sandbox"]), Some(InnerSandboxAsk::SandboxCommand));
        assert_eq!(
            ask(&["-c", "sandbox_mode=\"workspace-write\""]),
            Some(InnerSandboxAsk::Override("sandbox_mode=\"workspace-write\"".into()))
        );
        assert_eq!(
            ask(&["--config=default_permissions=\"x\""]),
            Some(InnerSandboxAsk::Override("default_permissions=\"x\"".into()))
        );
    }

    #[test]
    fn what_needs_no_inner_sandbox_passes() {
        let none = |a: &[&str]| assert_eq!(find_ask(&v(a)), None, "{a:?}");
        none(&[]);
        none(&["exec", "fix the failing test"]);
        none(&["-s", "danger-full-access"]);
        none(&["--dangerously-bypass-approvals-and-sandbox", "exec", "x"]);
        none(&["-a", "on-request", "-c", "model=\"o3\""]);
        none(&["exec", "--", "-s", "read-only"]); // after --: the prompt
        none(&["exec", "write a sandbox for me"]); // the prompt, not the subcommand
        none(&["exec", "sandbox"]); // the prompt of exec
        none(&["-c", "sandbox_mode=\"danger-full-access\""]);
    }

    #[test]
    fn only_codex_command_lines_are_checked() {
        assert!(check_command(&v(&["sh", "-c", "codex -s read-only"]), Boundary::Container).is_ok());
        assert!(check_command(&v(&["/usr/local/bin/codex", "-s", "read-only"]), Boundary::Container).is_err());
        let e = check_command(&v(&["codex", "--sandbox", "workspace-write"]), Boundary::Container).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`--sandbox workspace-write`") && msg.contains("user namespaces"), "{msg}");
        assert!(msg.contains("session container, which is the boundary") && msg.contains("Drop"), "{msg}");
        let n = check_args(&v(&["-s", "read-only"]), Boundary::Native).unwrap_err().to_string();
        assert!(n.contains("Landlock"), "{n}");
    }

    #[test]
    fn a_config_sandbox_mode_gets_a_note() {
        let n = config_note("sandbox_mode = \"workspace-write\"\nmodel = \"x\"\n", Boundary::Container).unwrap();
        assert!(n.contains("sandbox_mode = \"workspace-write\"") && n.contains("replaces"), "{n}");
        assert_eq!(config_note("sandbox_mode = \"danger-full-access\"\n", Boundary::Container), None);
        assert_eq!(config_note("model = \"x\"\n", Boundary::Container), None);
        assert_eq!(config_note("not toml [", Boundary::Container), None);
    }
}
