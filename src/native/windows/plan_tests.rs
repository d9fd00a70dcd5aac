use std::path::{Path, PathBuf};

use super::*;
use crate::policy::{FsPolicy, NetPolicy, Policy};

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn cap(s: &str) -> Sid {
    Sid::Capability(s.to_string())
}

/// /proj exists with .codex; /proj/.git and .agents do not; /tmp-like root /nowhere does not exist.
fn exists(path: &Path) -> bool {
    ["/proj", "/proj/.codex", "/data", "/proj/.ssh-copy"].iter().any(|e| path == Path::new(e))
}

fn workspace(net: NetPolicy) -> Policy {
    Policy {
        fs: FsPolicy {
            read_roots: vec![p("/")],
            write_roots: vec![p("/proj"), p("/data"), p("/nowhere"), p("/proj")],
            protected: vec![p("/proj/.git"), p("/proj/.codex"), p("/proj/.agents")],
            deny_read: vec![p("/home/me/.ssh"), p("/proj/.ssh-copy"), p("/proj/missing-secret")],
            shared_tmp: false,
        },
        net,
        ..Policy::default()
    }
}

#[test]
fn token_is_write_restricted_with_session_root_logon_and_everyone_sids() {
    let plan = plan(&workspace(NetPolicy::None), "s1", &exists).unwrap().unwrap();
    assert!(plan.token.write_restricted && plan.token.disable_max_privilege && plan.token.deny_only_administrators);
    assert_eq!(
        plan.token.restricting,
        vec![cap("codex-box-s1"), cap("codex-box-s1-root-0"), cap("codex-box-s1-root-1"), Sid::Logon, Sid::Everyone]
    );
    assert_eq!(plan.skipped_roots, vec![p("/nowhere")]);
    assert!(plan.job.kill_on_job_close && plan.job.die_on_unhandled_exception);
}

#[test]
fn aces_grant_roots_then_deny_protected_paths_in_order() {
    let plan = plan(&workspace(NetPolicy::None), "s1", &exists).unwrap().unwrap();
    let got: Vec<(&str, Sid, Mode)> =
        plan.aces.iter().map(|a| (a.path.to_str().unwrap(), a.sid.clone(), a.mode)).collect();
    let deny =
        |path: &'static str| [(path, cap("codex-box-s1"), Mode::Deny), (path, cap("codex-box-s1-root-0"), Mode::Deny)];
    let mut want =
        vec![("/proj", cap("codex-box-s1-root-0"), Mode::Allow), ("/data", cap("codex-box-s1-root-1"), Mode::Allow)];
    for path in ["/proj/.git", "/proj/.codex", "/proj/.agents", "/proj/.ssh-copy"] {
        want.extend(deny(path));
    }
    assert_eq!(got, want);
    assert!(plan.aces.iter().all(|a| a.rights == Rights::Write));
    // No ACE ever names a SID the user's own processes carry.
    assert!(plan.aces.iter().all(|a| matches!(a.sid, Sid::Capability(_))), "{:?}", plan.aces);
    // Missing protected paths get placeholders; a missing deny-read path does not.
    assert_eq!(plan.placeholders, vec![p("/proj/.git"), p("/proj/.agents")]);
}

#[test]
fn undo_revokes_every_ace_newest_first_then_removes_placeholders() {
    let plan = plan(&workspace(NetPolicy::None), "s1", &exists).unwrap().unwrap();
    let revoked: Vec<(PathBuf, Sid)> = plan
        .undo
        .iter()
        .filter_map(|u| match u {
            Undo::Revoke { path, sid } => Some((path.clone(), sid.clone())),
            Undo::RemoveDir(_) => None,
        })
        .collect();
    let mut applied: Vec<(PathBuf, Sid)> = plan.aces.iter().map(|a| (a.path.clone(), a.sid.clone())).collect();
    applied.reverse();
    assert_eq!(revoked, applied);
    let n = plan.undo.len();
    assert_eq!(plan.undo[n - 2..], [Undo::RemoveDir(p("/proj/.agents")), Undo::RemoveDir(p("/proj/.git"))]);
    // Removing a placeholder comes after revoking its ACEs.
    let pos = |u: &Undo| plan.undo.iter().position(|x| x == u).unwrap();
    assert!(
        pos(&Undo::Revoke { path: p("/proj/.git"), sid: cap("codex-box-s1") }) < pos(&Undo::RemoveDir(p("/proj/.git")))
    );
}

#[test]
fn gaps_are_reported_honestly() {
    let plan = plan(&workspace(NetPolicy::None), "s1", &exists).unwrap().unwrap();
    let all = plan.not_enforced.join("\n");
    assert!(all.contains("network: NOT blocked"), "{all}");
    assert!(all.contains("READABLE"), "{all}");
    assert!(all.contains("temporary"), "{all}");
    let open =
        Policy { fs: FsPolicy { shared_tmp: true, ..FsPolicy::default() }, net: NetPolicy::Full, ..Policy::default() };
    let plan = super::plan(&open, "s2", &exists).unwrap().unwrap();
    assert!(plan.not_enforced.is_empty(), "{:?}", plan.not_enforced);
    assert!(plan.aces.is_empty());
    assert_eq!(plan.token.restricting, vec![cap("codex-box-s2"), Sid::Logon, Sid::Everyone]);
}

#[test]
fn sessions_get_their_own_sids() {
    let a = plan(&workspace(NetPolicy::None), "s1", &exists).unwrap().unwrap();
    let b = plan(&workspace(NetPolicy::None), "s2", &exists).unwrap().unwrap();
    for sid in &a.token.restricting {
        if matches!(sid, Sid::Capability(_)) {
            assert!(!b.token.restricting.contains(sid), "{sid:?} shared between sessions");
        }
    }
}

#[test]
fn full_access_allowlist_and_relative_paths() {
    let full = Policy { full_access: true, ..workspace(NetPolicy::Full) };
    assert_eq!(plan(&full, "s", &exists).unwrap(), None);
    let allow = workspace(NetPolicy::Domains(Box::new(crate::policy::DomainPolicy {
        rules: crate::proxy::Rules::default(),
        ports: vec![443],
        resolver: crate::egress::ResolverSettings::default(),
    })));
    assert_eq!(plan(&allow, "s", &exists).unwrap_err(), PlanError::Allowlist);
    let rel = Policy { fs: FsPolicy { write_roots: vec![p("proj")], ..FsPolicy::default() }, ..Policy::default() };
    let err = plan(&rel, "s", &exists).unwrap_err();
    assert_eq!(err, PlanError::Relative(p("proj")));
    assert!(err.to_string().contains("proj"));
}

/// From the profile layer to the plan, with the host's real paths.
#[test]
fn workspace_write_from_the_profile_layer() {
    use crate::native::profile::{build_policy, Host, Settings};
    use crate::policy::SandboxMode;

    let dir = tempfile::tempdir().unwrap();
    let proj = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir(proj.join(".git")).unwrap();
    let host = Host {
        cwd: proj.clone(),
        home: None,
        tmpdir: None,
        runtime_dir: None,
        unix_sockets: Vec::new(),
        ca_certs: Vec::new(),
    };
    let settings =
        Settings { mode: SandboxMode::WorkspaceWrite, exclude_slash_tmp: true, network: true, ..Settings::default() };
    let policy = build_policy(&settings, &host).unwrap();
    let plan = plan(&policy, "t", &|p: &Path| p.exists()).unwrap().unwrap();
    assert_eq!(
        plan.aces[0],
        Ace { path: proj.clone(), sid: cap("codex-box-t-root-0"), mode: Mode::Allow, rights: Rights::Write }
    );
    for name in [".git", ".codex", ".agents"] {
        assert!(plan.aces.iter().any(|a| a.path == proj.join(name) && a.mode == Mode::Deny), "{name}: {:?}", plan.aces);
    }
    assert_eq!(
        plan.placeholders,
        vec![proj.join(".codex"), proj.join(".agents")],
        ".git exists, the others get placeholders"
    );
    assert!(!plan.not_enforced.iter().any(|m| m.starts_with("network")), "network was asked for: nothing missing");
}
