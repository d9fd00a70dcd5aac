use std::ffi::OsString;
use std::path::PathBuf;

use super::*;
use crate::policy::{FsPolicy, NetPolicy, Policy};

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn read_only() -> Policy {
    Policy {
        fs: FsPolicy {
            read_roots: vec![p("/")],
            deny_read: vec![p("/Users/me/.ssh"), p("/Users/me/.aws")],
            ..FsPolicy::default()
        },
        ..Policy::default()
    }
}

fn workspace(net: NetPolicy) -> Policy {
    Policy {
        fs: FsPolicy {
            read_roots: vec![p("/")],
            write_roots: vec![p("/Users/me/proj"), p("/private/tmp")],
            protected: vec![p("/Users/me/proj/.git"), p("/Users/me/proj/.codex"), p("/Users/me/proj/.agents")],
            deny_read: vec![p("/Users/me/.ssh")],
            shared_tmp: false,
        },
        net,
        ..Policy::default()
    }
}

/// The value of `(param "NAME")` as `sandbox-exec -D` would define it: split at the first `=`.
fn defined(args: &[OsString]) -> Vec<(String, OsString)> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "-D" {
            let def = it.next().expect("-D has a value").to_string_lossy().into_owned();
            let (k, v) = def.split_once('=').expect("NAME=VALUE");
            out.push((k.to_string(), OsString::from(v)));
        }
    }
    out
}

/// Every `(param "X")` in the text.
fn referenced(text: &str) -> Vec<String> {
    text.split("(param \"").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
}

/// Parentheses balance outside strings, regexes and comments: the text is one well-formed list per rule.
fn balanced(text: &str) -> bool {
    scan(text).1
}

/// The top-level lists of a profile (comments dropped, whitespace runs collapsed), and whether the
/// parentheses balance outside strings and comments.
fn scan(text: &str) -> (Vec<String>, bool) {
    let (mut out, mut cur) = (Vec::new(), String::new());
    let (mut depth, mut in_str, mut comment, mut prev) = (0i32, false, false, ' ');
    for c in text.chars() {
        match (comment, in_str, c) {
            (true, _, '\n') => comment = false,
            (true, _, _) => {}
            (false, true, '"') if prev != '\\' => in_str = false,
            (false, true, _) => {}
            (false, false, ';') => comment = true,
            (false, false, '"') => in_str = true,
            (false, false, '(') => depth += 1,
            (false, false, ')') => {
                depth -= 1;
                if depth < 0 {
                    return (out, false);
                }
            }
            _ => {}
        }
        if !comment && (depth > 0 || c == ')') {
            if !(c.is_whitespace() && (cur.ends_with(' ') || cur.is_empty())) {
                cur.push(if c.is_whitespace() && !in_str { ' ' } else { c });
            }
            if depth == 0 {
                out.push(std::mem::take(&mut cur).replace(" )", ")"));
            }
        }
        prev = c;
    }
    (out, depth == 0 && !in_str)
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn read_only_reads_minus_hidden_and_writes_nothing() {
    let prof = plan(&read_only(), None).unwrap().expect("read-only is sandboxed");
    let t = &prof.text;
    assert!(t.contains("(deny default)"));
    assert!(balanced(t), "{t}");
    assert!(t.contains("(allow file-read*\n  (require-all (subpath (param \"READABLE_ROOT_0\"))"), "{t}");
    assert!(t.contains("(require-not (subpath (param \"DENY_READ_0\")))"));
    assert!(t.contains("(require-not (subpath (param \"DENY_READ_1\")))"));
    // The only writes are the base's terminal and null-device rules.
    assert!(!t.contains("(allow file-write*\n  (require-all") && !t.contains("(allow file-write* (subpath"), "{t}");
    assert!(!t.contains("network-outbound") && !t.contains("network-bind"), "{t}");
    assert_eq!(
        prof.params,
        vec![
            ("READABLE_ROOT_0".to_string(), p("/")),
            ("DENY_READ_0".to_string(), p("/Users/me/.ssh")),
            ("DENY_READ_1".to_string(), p("/Users/me/.aws")),
        ]
    );
}

#[test]
fn workspace_write_without_network() {
    let prof = plan(&workspace(NetPolicy::None), None).unwrap().unwrap();
    let t = &prof.text;
    assert!(balanced(t), "{t}");
    let write_rules: Vec<&str> = t.split("(allow file-write*").skip(1).collect();
    assert_eq!(write_rules.len(), 2, "one rule per writable root: {t}");
    assert!(write_rules[0].starts_with("\n  (require-all (subpath (param \"WRITABLE_ROOT_0\"))"), "{t}");
    for prot in ["PROTECTED_0", "PROTECTED_1", "PROTECTED_2"] {
        assert!(write_rules[0].contains(&format!("(require-not (subpath (param \"{prot}\")))")), "{prot}: {t}");
        assert!(!write_rules[1].contains(prot), "the project's protected paths are not excluded from /private/tmp");
    }
    // /private/tmp has nothing below it to exclude: a plain subpath rule, not a require-all.
    assert!(t.contains("(allow file-write* (subpath (param \"WRITABLE_ROOT_1\")))"), "{t}");
    // ~/.ssh is outside every writable root: excluded from reads only.
    assert_eq!(lines_with(t, "DENY_READ_0").len(), 1);
    assert!(!t.contains("network-outbound"), "{t}");
    let names: Vec<&str> = prof.params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "READABLE_ROOT_0",
            "DENY_READ_0",
            "WRITABLE_ROOT_0",
            "PROTECTED_0",
            "PROTECTED_1",
            "PROTECTED_2",
            "WRITABLE_ROOT_1"
        ]
    );
}

#[test]
fn workspace_write_with_network_and_loopback() {
    let t = plan(&workspace(NetPolicy::Full), None).unwrap().unwrap().text;
    assert!(
        t.contains("\n(allow network-outbound)\n") && t.contains("(global-name \"com.apple.mDNSResponder\")"),
        "{t}"
    );
    let fs = workspace(NetPolicy::None).fs;
    let t = profile(&fs, Network::Loopback).unwrap().text;
    assert!(t.contains("(allow network-outbound (remote ip \"localhost:*\"))"), "{t}");
    assert!(!t.contains("\n(allow network-outbound)\n"), "loopback is not full network: {t}");
    assert!(balanced(&t));
}

fn domains() -> NetPolicy {
    NetPolicy::Domains(Box::new(crate::policy::DomainPolicy {
        rules: crate::proxy::Rules::default(),
        ports: vec![443],
        resolver: crate::egress::ResolverSettings::default(),
    }))
}

/// The top-level lists of a profile, comments dropped and whitespace runs collapsed.
fn forms(text: &str) -> Vec<String> {
    scan(text).0
}

const PROXY_RULE: &str = "(allow network-outbound (remote tcp (string-append \"localhost:\" (param \"PROXY_PORT\"))))";

#[test]
fn danger_full_access_runs_without_seatbelt_and_domains_need_the_proxy_port() {
    let policy = Policy { full_access: true, net: NetPolicy::Full, ..read_only() };
    assert_eq!(plan(&policy, None).unwrap(), None);
    assert_eq!(plan(&policy, Some(43128)).unwrap(), None);
    let err = plan(&workspace(domains()), None).unwrap_err();
    assert_eq!(err, SbplError::NoProxy);
    assert!(err.to_string().contains("--egress proxy"), "{err}");
    // The port matters only for allowed domains.
    for net in [NetPolicy::None, NetPolicy::Full] {
        assert_eq!(plan(&workspace(net.clone()), Some(43128)), plan(&workspace(net), None));
    }
    assert_eq!(Network::of(&domains(), Some(8)), Ok(Network::Proxy(8)));
}

#[test]
fn allowed_domains_reach_the_proxy_port_over_tcp_and_nothing_else() {
    let prof = plan(&workspace(domains()), Some(43128)).unwrap().unwrap();
    let t = &prof.text;
    assert!(balanced(t), "{t}");
    assert!(t.contains(&format!("(param \"{PROXY_PORT}\")")), "{t}");
    let network: Vec<String> = forms(t).into_iter().filter(|f| f.contains("network")).collect();
    assert_eq!(network, [PROXY_RULE], "the one network rule: {t}");
    // No other port, no UDP (DNS), no listening, none of the services the full network opens.
    for absent in [
        "localhost:*",
        "\"*:",
        "remote ip",
        "udp",
        "network-inbound",
        "network-bind",
        "system-socket",
        "dnssd",
        "mDNSResponder",
        "DNSConfiguration",
        "configd",
        "trustd",
        "ocspd",
        "(allow network-outbound)",
    ] {
        assert!(!t.contains(absent), "{absent}: {t}");
    }
    // Exactly the no-network profile plus that rule.
    let none = plan(&workspace(NetPolicy::None), None).unwrap().unwrap();
    let mut without: Vec<String> = forms(t);
    without.retain(|f| f != PROXY_RULE);
    assert_eq!(without, forms(&none.text));
    assert!(
        without.iter().any(|f| f == "(deny default)") && without.iter().any(|f| f.starts_with("(allow file-write*"))
    );
    assert_eq!(prof.params, none.params);
    // The port is a parameter, never text.
    assert!(!t.contains("43128"), "{t}");
    assert_eq!(prof.proxy_port, Some(43128));
    let argv = vec!["/usr/bin/curl".to_string(), "https://example.org".to_string()];
    let args = sandbox_exec_args(&prof, &argv);
    let defs = defined(&args);
    assert!(defs.contains(&("PROXY_PORT".to_string(), OsString::from("43128"))), "{defs:?}");
    let tail = args.iter().position(|a| a == "--").unwrap();
    assert_eq!(&args[tail + 1..], &[OsString::from("/usr/bin/curl"), OsString::from("https://example.org")]);
    let mut used = referenced(t);
    used.sort();
    used.dedup();
    let mut names: Vec<String> = defs.iter().map(|(k, _)| k.clone()).collect();
    names.sort();
    assert_eq!(used, names, "every parameter used is defined, and every definition used");
}

#[test]
fn existing_network_modes_are_unchanged() {
    let fs = FsPolicy::default();
    let tail = |net| {
        let prof = profile(&fs, net).unwrap();
        assert_eq!(prof.proxy_port, None);
        assert!(!sandbox_exec_args(&prof, &["/bin/true".to_string()])
            .iter()
            .any(|a| a.to_string_lossy().contains("PROXY_PORT")));
        prof.text[prof.text.find("\n; Network:").unwrap()..].to_string()
    };
    assert_eq!(tail(Network::None), "\n; Network: none.\n");
    assert_eq!(
        tail(Network::Loopback),
        concat!(
            "\n; Network: loopback only.\n",
            "(allow network-outbound (remote ip \"localhost:*\"))\n",
            "(allow network-inbound (local ip \"localhost:*\"))\n",
            "(allow network-bind (local ip \"localhost:*\"))\n",
        )
    );
    assert_eq!(
        tail(Network::Full),
        concat!(
            "\n; Network: full, with the services DNS and TLS verification use.\n",
            "(allow network-outbound)\n",
            "(allow network-inbound)\n",
            "(allow network-bind)\n",
            "(allow system-socket)\n",
            "(allow mach-lookup\n",
            "  (global-name \"com.apple.dnssd.service\")\n",
            "  (global-name \"com.apple.mDNSResponder\")\n",
            "  (global-name \"com.apple.SystemConfiguration.configd\")\n",
            "  (global-name \"com.apple.SystemConfiguration.DNSConfiguration\")\n",
            "  (global-name \"com.apple.trustd.agent\")\n",
            "  (global-name \"com.apple.ocspd\"))\n",
        )
    );
    // The no-network profile has no network rule at all, not even for unix sockets.
    assert!(!forms(&profile(&fs, Network::None).unwrap().text).iter().any(|f| f.contains("network")));
}

#[test]
fn relative_paths_are_refused() {
    let fs = FsPolicy { write_roots: vec![p("proj")], ..FsPolicy::default() };
    let err = profile(&fs, Network::None).unwrap_err();
    assert_eq!(err, SbplError::Relative(p("proj")));
    assert!(err.to_string().contains("proj") && err.to_string().contains("absolute"));
}

#[test]
fn tricky_paths_are_parameters_and_round_trip_exactly() {
    let tricky = [
        "/Users/me/it's \"quoted\"",
        "/Users/me/with space/and\ttab",
        "/Users/me/back\\slash\\",
        "/Users/me/new\nline",
        "/Users/me/ünïcødé/日本語/😀",
        "/Users/me/paren) (allow default) (",
        "/Users/me/a=b=c",
        "/Users/me/;comment",
        "/Users/me/#\"regex\"",
    ];
    for raw in tricky {
        let root = p(raw);
        let fs = FsPolicy {
            read_roots: vec![p("/")],
            write_roots: vec![root.clone()],
            protected: vec![root.join(".git")],
            deny_read: vec![root.join("secret")],
            shared_tmp: false,
        };
        let prof = profile(&fs, Network::None).unwrap();
        assert!(!prof.text.contains(raw), "raw path {raw:?} in the profile text");
        assert!(!prof.text.contains("(allow default)"), "{raw:?}");
        assert!(balanced(&prof.text), "{raw:?}: {}", prof.text);
        let argv = vec!["/bin/echo".to_string(), raw.to_string()];
        let args = sandbox_exec_args(&prof, &argv);
        assert_eq!(args[0], "-p");
        assert_eq!(args[1], OsString::from(prof.text.clone()));
        let tail = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(&args[tail + 1..], &[OsString::from("/bin/echo"), OsString::from(raw)]);
        let defs = defined(&args);
        let want: Vec<(String, OsString)> = vec![
            ("READABLE_ROOT_0".into(), "/".into()),
            ("WRITABLE_ROOT_0".into(), root.clone().into()),
            ("DENY_READ_0".into(), root.join("secret").into()),
            ("PROTECTED_0".into(), root.join(".git").into()),
        ];
        let mut got = defs.clone();
        got.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got, want_sorted, "{raw:?}");
        // Every parameter the text uses is defined, and every definition is used.
        let mut used = referenced(&prof.text);
        used.sort();
        used.dedup();
        let mut names: Vec<String> = defs.iter().map(|(k, _)| k.clone()).collect();
        names.sort();
        assert_eq!(used, names, "{raw:?}");
    }
}

#[test]
fn one_parameter_per_path_and_kind() {
    let fs = FsPolicy {
        read_roots: vec![p("/")],
        write_roots: vec![p("/w"), p("/w")],
        protected: vec![p("/w/.git"), p("/w/.git")],
        deny_read: vec![p("/w/.git")],
        shared_tmp: false,
    };
    let prof = profile(&fs, Network::None).unwrap();
    let names: Vec<&str> = prof.params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["READABLE_ROOT_0", "DENY_READ_0", "WRITABLE_ROOT_0", "PROTECTED_0"]);
}

/// From the profile layer to sandbox-exec's arguments, through a symlinked project (as macOS's /tmp is).
#[cfg(unix)]
#[test]
fn workspace_write_from_the_profile_layer_through_a_symlinked_project() {
    use crate::native::macos::paths::canonical_fs;
    use crate::native::profile::{build_policy, Host, Settings};
    use crate::policy::SandboxMode;

    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap().join("real project");
    std::fs::create_dir_all(real.join(".codex")).unwrap();
    let link = dir.path().join("proj");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let host = Host {
        cwd: link.clone(),
        home: Some(dir.path().join("home")),
        tmpdir: None,
        runtime_dir: None,
        unix_sockets: Vec::new(),
        ca_certs: Vec::new(),
    };
    let settings = Settings { mode: SandboxMode::WorkspaceWrite, exclude_slash_tmp: true, ..Settings::default() };
    let policy = build_policy(&settings, &host).unwrap();
    let canonical = Policy { fs: canonical_fs(&policy.fs), ..policy };
    let prof = plan(&canonical, None).unwrap().unwrap();
    let value = |name: &str| prof.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(value("WRITABLE_ROOT_0"), Some(real.clone()), "{:?}", prof.params);
    let protected: Vec<PathBuf> =
        prof.params.iter().filter(|(k, _)| k.starts_with("PROTECTED_")).map(|(_, v)| v.clone()).collect();
    for name in [".git", ".codex", ".agents"] {
        assert!(protected.contains(&real.join(name)), "{name}: {protected:?}");
    }
    assert!(!prof.text.contains("real project"));
    assert!(prof.params.iter().any(|(k, v)| k.starts_with("DENY_READ_") && v.ends_with(".ssh")));
}

#[test]
fn base_lets_scripts_write_to_their_own_descriptors_and_nothing_else_in_dev() {
    let t = profile(&FsPolicy::default(), Network::None).unwrap().text;
    assert!(t.contains("(literal \"/dev/stderr\")") && t.contains("(subpath \"/dev/fd\")"), "{t}");
    assert!(!t.contains("(subpath \"/dev\")"), "all of /dev is never opened: {t}");
    assert!(balanced(&t));
    // With no roots, nothing outside the base is readable or writable.
    assert!(!t.contains("(param "), "{t}");
}
