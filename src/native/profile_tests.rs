use super::*;

fn args() -> SandboxArgs {
    SandboxArgs { command: vec!["true".into()], ..SandboxArgs::default() }
}

fn host(dir: &Path) -> Host {
    Host {
        cwd: dir.to_path_buf(),
        home: Some(dir.join("home")),
        tmpdir: None,
        runtime_dir: Some("/run/user/1000".into()),
        unix_sockets: vec!["/run/containerd/other.sock".into(), "/srv/app/db.sock".into()],
        ca_certs: vec!["/etc/corp-ca.pem".into()],
    }
}

const CODEX_TOML: &str = r#"
model = "o3"
sandbox_mode = "workspace-write"
[sandbox_workspace_write]
writable_roots = ["/srv/data"]
network_access = true
exclude_slash_tmp = true
[permissions.ci]
sandbox_mode = "read-only"
deny_read = ["~/secrets"]
keep_env = ["CI_TOKEN"]
[permissions.dev]
writable_roots = ["~/cache"]
allow_git_write = true
"#;

#[test]
fn default_is_read_only_without_network() {
    let s = merge(None, &args()).unwrap();
    assert_eq!(s, Settings::default());
    let dir = tempfile::tempdir().unwrap();
    let p = build_policy(&s, &host(dir.path())).unwrap();
    assert!(p.fs.write_roots.is_empty());
    assert_eq!(p.net, NetPolicy::None);
    assert!(!p.full_access);
    assert!(p.fs.deny_read.contains(&dir.path().join("home/.ssh")));
    assert!(p.fs.deny_read.contains(&PathBuf::from("/var/run/docker.sock")));
    assert!(p.fs.deny_read.contains(&PathBuf::from("/run/user/1000")));
    let s = Settings { hide_credentials: false, hide_sockets: false, ..Settings::default() };
    assert!(build_policy(&s, &host(dir.path())).unwrap().fs.deny_read.is_empty());
}

#[test]
fn codex_keys_apply_and_profiles_override() {
    let cfg = parse_config(CODEX_TOML, Path::new("c.toml")).unwrap();
    let s = merge(Some((Path::new("c.toml"), &cfg)), &args()).unwrap();
    assert_eq!(s.mode, SandboxMode::WorkspaceWrite);
    assert!(s.network && s.exclude_slash_tmp);
    assert_eq!(s.writable_roots[0].0, "/srv/data");

    let a = SandboxArgs { permissions_profile: Some("ci".into()), ..args() };
    let s = merge(Some((Path::new("c.toml"), &cfg)), &a).unwrap();
    assert_eq!(s.mode, SandboxMode::ReadOnly);
    assert_eq!(s.keep_env, vec!["CI_TOKEN".to_string()]);
    assert_eq!(s.deny_read[0].0, "~/secrets");
}

#[test]
fn flags_win_over_toml() {
    let cfg = parse_config(CODEX_TOML, Path::new("c.toml")).unwrap();
    let a = SandboxArgs { full_auto: true, keep_env: vec!["X_KEY".into()], ..args() };
    let s = merge(Some((Path::new("c.toml"), &cfg)), &a).unwrap();
    assert_eq!(s.mode, SandboxMode::WorkspaceWrite);
    assert!(!s.network, "--full-auto means no network");
    let a = SandboxArgs { sandbox_mode: Some("danger-full-access".into()), ..args() };
    assert_eq!(merge(None, &a).unwrap().mode, SandboxMode::DangerFullAccess);
}

#[test]
fn writable_root_flag_turns_read_only_into_workspace_write() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra");
    std::fs::create_dir(&extra).unwrap();
    let a = SandboxArgs { writable_root: vec![extra.clone()], ..args() };
    let s = merge(None, &a).unwrap();
    assert_eq!(s.mode, SandboxMode::WorkspaceWrite);
    let p = build_policy(&s, &host(dir.path())).unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let extra = std::fs::canonicalize(&extra).unwrap();
    assert!(p.fs.write_roots.contains(&cwd));
    assert!(p.fs.write_roots.contains(&extra));
    assert!(p.fs.write_roots.contains(&PathBuf::from("/tmp")));
    for root in [&cwd, &extra] {
        for name in PROTECTED_NAMES {
            assert!(p.fs.protected.contains(&root.join(name)), "{name} protected in {root:?}");
        }
    }
}

#[test]
fn allow_git_write_unprotects_only_git() {
    let dir = tempfile::tempdir().unwrap();
    let a = SandboxArgs { full_auto: true, allow_git_write: true, ..args() };
    let p = build_policy(&merge(None, &a).unwrap(), &host(dir.path())).unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    assert!(!p.fs.protected.contains(&cwd.join(".git")));
    assert!(p.fs.protected.contains(&cwd.join(".codex")));
}

#[test]
fn exclusions_and_tmpdir() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t");
    std::fs::create_dir(&t).unwrap();
    let mut h = host(dir.path());
    h.tmpdir = Some(t.clone());
    let s = Settings { mode: SandboxMode::WorkspaceWrite, ..Settings::default() };
    let p = build_policy(&s, &h).unwrap();
    assert!(p.fs.write_roots.contains(&std::fs::canonicalize(&t).unwrap()));
    let s = Settings { exclude_slash_tmp: true, exclude_tmpdir_env_var: true, ..s };
    let p = build_policy(&s, &h).unwrap();
    assert_eq!(p.fs.write_roots, vec![std::fs::canonicalize(dir.path()).unwrap()]);
}

#[test]
fn errors_name_the_input_and_the_fix() {
    let err = parse_config("sandbox_mode = ", Path::new("/x/bad.toml")).unwrap_err();
    assert!(err.to_string().starts_with("invalid config file /x/bad.toml"), "{err}");

    let cfg = parse_config("sandbox_mode = \"yolo\"", Path::new("m.toml")).unwrap();
    let err = merge(Some((Path::new("m.toml"), &cfg)), &args()).unwrap_err();
    assert!(err.to_string().contains("`yolo` in sandbox_mode in m.toml; use read-only"), "{err}");

    let cfg = parse_config(CODEX_TOML, Path::new("c.toml")).unwrap();
    let a = SandboxArgs { permissions_profile: Some("nope".into()), ..args() };
    let err = merge(Some((Path::new("c.toml"), &cfg)), &a).unwrap_err();
    assert_eq!(err.to_string(), "no profile [permissions.nope] in c.toml; defined: ci, dev");
    assert!(matches!(merge(None, &a), Err(ProfileError::NoConfig { .. })));

    let err = parse_config("[permissions.x]\nwritable_root = []", Path::new("t.toml")).unwrap_err();
    assert!(err.to_string().contains("unknown field `writable_root`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let a = SandboxArgs { writable_root: vec![dir.path().join("missing")], ..args() };
    let err = build_policy(&merge(None, &a).unwrap(), &host(dir.path())).unwrap_err();
    assert!(err.to_string().contains("missing (--writable-root) is not usable"), "{err}");

    let s = Settings {
        mode: SandboxMode::WorkspaceWrite,
        writable_roots: vec![("rel".into(), "f.toml".into())],
        ..Settings::default()
    };
    let err = build_policy(&s, &host(dir.path())).unwrap_err();
    assert_eq!(err.to_string(), "f.toml: path `rel` must be absolute (or start with ~/)");

    let a = SandboxArgs { network: true, ..args() };
    assert!(matches!(merge(None, &a), Err(ProfileError::NetworkInReadOnly)));
}

#[test]
fn danger_full_access_has_network_and_no_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let s = Settings { mode: SandboxMode::DangerFullAccess, ..Settings::default() };
    let p = build_policy(&s, &host(dir.path())).unwrap();
    assert!(p.full_access);
    assert_eq!(p.net, NetPolicy::Full);
}

const DOMAINS_TOML: &str = r#"
sandbox_mode = "workspace-write"
[sandbox_workspace_write]
network_access = true
[permissions.fetch]
allow_domains = ["**.pypi.org", "files.pythonhosted.org"]
deny_domains = ["evil.pypi.org"]
allow_ports = [443]
"#;

#[test]
fn allowed_domains_narrow_the_network_to_names() {
    let cfg = parse_config(DOMAINS_TOML, Path::new("/c.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = SandboxArgs {
        permissions_profile: Some("fetch".into()),
        allow_domain: vec!["registry.npmjs.org".into()],
        deny_domain: vec!["bad.npmjs.org".into()],
        dns_server: Some("127.0.0.1:5353".into()),
        allow_port: vec![8443, 443],
        ..args()
    };
    let p = build_policy(&merge(Some((Path::new("/c.toml"), &cfg)), &a).unwrap(), &host(dir.path())).unwrap();
    let NetPolicy::Domains(d) = &p.net else { panic!("{:?}", p.net) };
    let h = |n: &str| crate::proxy::Host::parse(n).unwrap();
    // network_access = true from the config is narrowed, not widened.
    assert!(d.rules.decide(&h("pypi.org")).allowed() && d.rules.decide(&h("registry.npmjs.org")).allowed());
    assert!(!d.rules.decide(&h("evil.pypi.org")).allowed() && !d.rules.decide(&h("bad.npmjs.org")).allowed());
    assert!(!d.rules.decide(&h("example.com")).allowed());
    assert_eq!(d.ports, vec![443, 8443]);
    assert_eq!(d.resolver.server, Some("127.0.0.1:5353".parse().unwrap()));
    assert_eq!(d.resolver.tls, None);
    assert!(!p.full_access);

    // Read-only may fetch by name; without names there are no ports or resolver to speak of.
    let ro = SandboxArgs { allow_domain: vec!["example.org".into()], ..args() };
    let p = build_policy(&merge(None, &ro).unwrap(), &host(dir.path())).unwrap();
    assert!(matches!(&p.net, NetPolicy::Domains(d) if d.ports == vec![443, 80] && d.resolver.server.is_none()));
    assert!(p.fs.write_roots.is_empty());
}

#[test]
fn dns_over_tls_trusts_the_hosts_extra_cas() {
    let dir = tempfile::tempdir().unwrap();
    let a = SandboxArgs {
        allow_domain: vec!["example.org".into()],
        dns_server: Some("192.0.2.53".into()),
        dns_tls_name: Some("dns.example.org".into()),
        ..args()
    };
    let p = build_policy(&merge(None, &a).unwrap(), &host(dir.path())).unwrap();
    let NetPolicy::Domains(d) = &p.net else { panic!("{:?}", p.net) };
    assert_eq!(d.resolver.server, Some("192.0.2.53:853".parse().unwrap()));
    let tls = d.resolver.tls.as_ref().unwrap();
    assert_eq!((tls.name.as_str(), tls.extra_roots.clone()), ("dns.example.org", vec!["/etc/corp-ca.pem".into()]));
    let e = merge(None, &SandboxArgs { dns_server: None, ..a.clone() }).unwrap_err().to_string();
    assert!(e.starts_with("--dns-tls-name needs --dns-server:"), "{e}");
    let e = merge(None, &SandboxArgs { dns_tls_name: Some("a..b".into()), ..a }).unwrap_err().to_string();
    assert!(e.starts_with("invalid DNS-over-TLS name \"a..b\" (from --dns-tls-name)"), "{e}");
}

#[test]
fn domain_errors_name_the_input_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let policy = |a: SandboxArgs| merge(None, &a).and_then(|s| build_policy(&s, &host(dir.path())));
    let e = policy(SandboxArgs { allow_domain: vec!["a..b".into()], ..args() }).unwrap_err().to_string();
    assert!(e.contains("\"a..b\"") && e.contains("--allow-domain"), "{e}");
    let e = policy(SandboxArgs { allow_domain: vec!["ok.org".into()], deny_domain: vec!["-x".into()], ..args() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"-x\"") && e.contains("--deny-domain"), "{e}");
    let e = policy(SandboxArgs { deny_domain: vec!["x.org".into()], ..args() }).unwrap_err().to_string();
    assert!(e.contains("add --allow-domain"), "{e}");
    let e = policy(SandboxArgs { allow_port: vec![8443], ..args() }).unwrap_err().to_string();
    assert!(e.contains("add --allow-domain"), "{e}");
    let full =
        SandboxArgs { allow_domain: vec!["x.org".into()], sandbox_mode: Some("danger-full-access".into()), ..args() };
    assert!(policy(full).unwrap_err().to_string().contains("danger-full-access"));
    let e = policy(SandboxArgs { allow_domain: vec!["x.org".into()], allow_port: vec![0], ..args() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("--allow-port 8443"), "{e}");
    let e = policy(SandboxArgs { allow_domain: vec!["x.org".into()], dns_server: Some("nope".into()), ..args() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"nope\"") && e.contains("--dns-server"), "{e}");
    let bad = parse_config("[permissions.x]\nallow_domains = [\"a..b\"]\n", Path::new("/c.toml")).unwrap();
    let a = SandboxArgs { permissions_profile: Some("x".into()), ..args() };
    let e = merge(Some((Path::new("/c.toml"), &bad)), &a)
        .and_then(|s| build_policy(&s, &host(dir.path())))
        .unwrap_err()
        .to_string();
    assert!(e.contains("allow_domains/deny_domains of the sandbox config file"), "{e}");
}

#[test]
fn listening_sockets_are_read_from_proc_net_unix() {
    let text = "Num       RefCount Protocol Flags    Type St Inode Path
00000000e2671f34: 00000002 00000000 00010000 0001 01 2349651 /var/run/docker.sock
0000000025e51d3f: 00000003 00000000 00000000 0001 03 2349661 /var/run/docker/containerd/containerd.sock
0000000025e51d40: 00000003 00000000 00000000 0001 03 2349662 /var/run/docker/containerd/containerd.sock
0000000025e51d41: 00000002 00000000 00010000 0001 01 2349663 @/tmp/.X11-unix/X0
0000000025e51d42: 00000003 00000000 00000000 0001 03 2349664
0000000025e51d43: 00000002 00000000 00010000 0005 01 2349665 /run/my app/s p.sock
";
    let got = parse_proc_net_unix(text);
    let want: Vec<PathBuf> =
        ["/var/run/docker.sock", "/var/run/docker/containerd/containerd.sock", "/run/my app/s p.sock"]
            .iter()
            .map(PathBuf::from)
            .collect();
    assert_eq!(got, want);
    assert!(parse_proc_net_unix("").is_empty());
}

#[cfg(unix)]
#[test]
fn host_sockets_are_hidden_unless_allowed_or_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path());
    let p = build_policy(&merge(None, &args()).unwrap(), &h).unwrap();
    for s in ["/run/containerd/other.sock", "/srv/app/db.sock", "/var/run/docker.sock"] {
        assert!(p.fs.deny_read.contains(&PathBuf::from(s)), "{s}");
    }
    // Allowed by identity: the socket itself, not a link to it.
    let real = dir.path().join("db.sock");
    let _l = std::os::unix::net::UnixListener::bind(&real).unwrap();
    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let h = Host { unix_sockets: vec![real.clone(), "/run/containerd/other.sock".into()], ..host(dir.path()) };
    let a = SandboxArgs { allow_unix_socket: vec![real.clone()], ..args() };
    let p = build_policy(&merge(None, &a).unwrap(), &h).unwrap();
    assert!(!p.fs.deny_read.contains(&real));
    assert!(p.fs.deny_read.contains(&PathBuf::from("/run/containerd/other.sock")));
    let a = SandboxArgs { allow_unix_socket: vec![link.clone()], ..args() };
    let e = build_policy(&merge(None, &a).unwrap(), &h).unwrap_err().to_string();
    assert!(e.contains("link.sock") && e.contains("not a unix socket"), "{e}");
    let a = SandboxArgs { allow_unix_socket: vec![dir.path().join("gone.sock")], ..args() };
    assert!(build_policy(&merge(None, &a).unwrap(), &h).unwrap().fs.deny_read.contains(&real));
    // Rootless and desktop engines' sockets, which /proc/net/unix does not list.
    assert!(p.fs.deny_read.contains(&PathBuf::from("/run/user/1000/docker.sock")));
    assert!(p.fs.deny_read.contains(&dir.path().join("home/.docker/run/docker.sock")));
    let cfg = parse_config("[permissions.open]\nhide_sockets = false\n", Path::new("/c.toml")).unwrap();
    let a = SandboxArgs { permissions_profile: Some("open".into()), ..args() };
    let p = build_policy(&merge(Some((Path::new("/c.toml"), &cfg)), &a).unwrap(), &h).unwrap();
    assert!(!p.fs.deny_read.iter().any(|d| d.to_string_lossy().ends_with(".sock")), "{:?}", p.fs.deny_read);
    // Relative paths in TOML are refused like every other path there.
    let cfg = parse_config("[permissions.rel]\nallow_unix_sockets = [\"db.sock\"]\n", Path::new("/c.toml")).unwrap();
    let a = SandboxArgs { permissions_profile: Some("rel".into()), ..args() };
    let e = build_policy(&merge(Some((Path::new("/c.toml"), &cfg)), &a).unwrap(), &h).unwrap_err().to_string();
    assert!(e.contains("db.sock") && e.contains("absolute"), "{e}");
}
