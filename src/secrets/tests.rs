use super::*;
use crate::egress::entry_types::Source as From;

fn rules(allow: &[&str]) -> Rules {
    Rules::from_entries(allow.iter().map(|a| (*a, From::Flag)), []).unwrap()
}

fn env(k: &str) -> Option<std::ffi::OsString> {
    match k {
        "GH_TOKEN" => Some("ghp_VALUE".into()),
        "API_KEY" => Some("k-VALUE".into()),
        "BROKEN" => Some("line\nbreak".into()),
        _ => None,
    }
}

fn run(specs: &[SecretSpec], wd: &Path) -> Result<Vec<Secret>, SecretError> {
    let r = rules(&["api.github.com", "**.example.test"]);
    resolve(specs, Egress::Proxy(&r), &env, Some(Path::new("/nonexistent-home")), wd)
}

fn err(specs: &[SecretSpec]) -> String {
    run(specs, Path::new("/nonexistent-wd")).unwrap_err().to_string()
}

#[test]
fn a_flag_names_the_variable_and_the_hosts_and_the_header_defaults_to_a_bearer_token() {
    let s = parse_flag("GH_TOKEN=api.github.com").unwrap();
    assert_eq!(
        (s.name.as_str(), s.hosts.as_slice(), &s.source, s.header.as_str(), s.prefix.as_str()),
        ("GH_TOKEN", &["api.github.com".to_string()][..], &Source::Env("GH_TOKEN".into()), "Authorization", "Bearer ")
    );
    let s = parse_flag("API_KEY=a.example.test, B.example.test:X-Api-Key").unwrap();
    assert_eq!((s.hosts.len(), s.header.as_str(), s.prefix.as_str()), (2, "X-Api-Key", ""));
    for bad in ["GH_TOKEN", "=api.github.com", "GH_TOKEN=", "GH_TOKEN=,"] {
        assert!(matches!(parse_flag(bad), Err(SecretError::BadFlag(_))), "{bad}");
    }
    let got = run(&[parse_flag("GH_TOKEN=API.github.com").unwrap()], Path::new("/x")).unwrap();
    assert_eq!(got[0].hosts, ["api.github.com"]);
    assert_eq!(got[0].value.expose(), "Bearer ghp_VALUE");
    let shown = format!("{got:?}");
    assert!(!shown.contains("ghp_VALUE") && shown.contains("<hidden>"), "{shown}");
}

#[test]
fn the_config_table_reads_a_file_outside_the_work_dir_or_a_named_variable() {
    let t = tempfile::tempdir().unwrap();
    let wd = t.path().join("proj");
    std::fs::create_dir(&wd).unwrap();
    std::fs::write(t.path().join("token"), "file-VALUE\n").unwrap();
    std::fs::write(wd.join("token"), "x").unwrap();
    let table: BTreeMap<String, SecretConfig> = toml::from_str(&format!(
        "[FROM_FILE]\nhosts = [\"a.example.test\"]\nfile = \"{}\"\nheader = \"X-Token\"\n\
         [GH]\nhosts = [\"api.github.com\"]\nenv = \"GH_TOKEN\"\nprefix = \"token \"\n",
        t.path().join("token").display()
    ))
    .unwrap();
    let got = run(&from_config(&table).unwrap(), &wd).unwrap();
    assert_eq!(
        (got[0].name.as_str(), got[0].header.as_str(), got[0].value.expose()),
        ("FROM_FILE", "X-Token", "file-VALUE")
    );
    assert_eq!((got[1].header.as_str(), got[1].value.expose()), ("Authorization", "token ghp_VALUE"));
    // A file the agent can read is no place for it; a relative path is refused.
    let inside: BTreeMap<String, SecretConfig> =
        toml::from_str(&format!("[S]\nhosts = [\"a.example.test\"]\nfile = \"{}\"\n", wd.join("token").display()))
            .unwrap();
    let e = run(&from_config(&inside).unwrap(), &wd).unwrap_err().to_string();
    assert!(e.contains("inside the work dir") && e.contains("agent can read"), "{e}");
    let rel: BTreeMap<String, SecretConfig> =
        toml::from_str("[S]\nhosts = [\"a.example.test\"]\nfile = \"token\"\n").unwrap();
    assert!(run(&from_config(&rel).unwrap(), &wd).unwrap_err().to_string().contains("absolute path or start with ~/"));
    let two: BTreeMap<String, SecretConfig> =
        toml::from_str("[S]\nhosts = [\"a.example.test\"]\nfile = \"/x\"\nenv = \"Y\"\n").unwrap();
    assert!(matches!(from_config(&two), Err(SecretError::TwoSources { .. })));
    assert!(toml::from_str::<BTreeMap<String, SecretConfig>>("[S]\nhost = [\"a\"]\n").is_err(), "unknown keys refused");
}

#[test]
fn bad_input_is_refused_with_the_secret_and_the_fix_named() {
    let flag = |s: &str| vec![parse_flag(s).unwrap()];
    let e = err(&flag("GH_TOKEN=*"));
    assert!(e.starts_with("secret GH_TOKEN is bound to \"*\", a wildcard") && e.contains("list each host"), "{e}");
    assert!(err(&flag("GH_TOKEN=*.github.com")).contains("a wildcard"));
    assert!(err(&flag("GH_TOKEN=**.github.com")).contains("a wildcard"));
    assert!(err(&flag("GH_TOKEN=192.0.2.1")).contains("not a host name"));
    let e = err(&flag("MISSING_TOKEN=api.github.com"));
    assert!(e.contains("the environment variable MISSING_TOKEN is not set") && e.contains("export it"), "{e}");
    assert!(err(&flag("BROKEN=api.github.com")).contains("control character"));
    let e = err(&flag("GH_TOKEN=other.test"));
    assert!(
        e.contains("bound to other.test, which the proxy does not allow") && e.contains("--allow-domain other.test"),
        "{e}"
    );
    assert!(err(&flag("GH_TOKEN=api.github.com:Host")).contains("cannot carry a secret"));
    assert!(err(&flag("GH_TOKEN=api.github.com:Bad Header")).contains("cannot carry a secret"));
    assert!(err(&flag("1X=api.github.com")).contains("not a plain name"));
    let twice = [parse_flag("GH_TOKEN=api.github.com").unwrap(), parse_flag("GH_TOKEN=api.github.com").unwrap()];
    assert!(err(&twice).contains("declared twice"));
    let clash = [parse_flag("GH_TOKEN=api.github.com").unwrap(), parse_flag("API_KEY=api.github.com").unwrap()];
    assert!(err(&clash).contains("both set the header Authorization for api.github.com"));
    let file =
        SecretSpec { source: Source::File("/nonexistent/token".into()), ..parse_flag("F=api.github.com").unwrap() };
    let e = err(&[file]);
    assert!(e.starts_with("secret F: cannot read /nonexistent/token: ") && e.contains("fix the path"), "{e}");
    // No proxy, no secret: named with the mode and the fix.
    let e = resolve(
        &flag("GH_TOKEN=api.github.com"),
        Egress::NoProxy("--egress allowlist (the IP firewall, no proxy)"),
        &env,
        None,
        Path::new("/x"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("add --egress proxy") && e.contains("--egress allowlist"), "{e}");
}
