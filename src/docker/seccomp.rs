//! The agent's seccomp profile on Podman. Docker's default profile refuses user namespaces to a
//! process without CAP_SYS_ADMIN (`unshare`, `clone` with namespace flags, `clone3`); Podman's own
//! default (`/usr/share/containers/seccomp.json`) allows them to everyone — measured: `unshare -Ur`
//! works for the agent there. codex-box closes that kernel surface on Podman too (REQUIREMENTS §2.3a)
//! by giving the session Podman's own profile with those calls refused as Docker refuses them.
//!
//! Not covered: a Podman reached remotely (its profile file is not on this host; the session is then
//! started with the engine's default and a warning), and architectures whose `clone` takes its flags
//! in another argument (s390x).

use serde_json::{json, Value};

/// Where a local Podman reads its default profile (the first that exists wins, as in Podman).
pub const PODMAN_PROFILES: &[&str] = &["/etc/containers/seccomp.json", "/usr/share/containers/seccomp.json"];

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET: the flags Docker's profile masks out of `clone` without CAP_SYS_ADMIN.
const NAMESPACE_FLAGS: u64 = 0x7E02_0000;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("reading Podman's seccomp profile {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("Podman's seccomp profile {path} is not a profile codex-box can extend: {reason}")]
    Parse { path: String, reason: String },
}

/// Podman's profile `profile` (its JSON text) with user and other namespaces refused: `unshare`
/// fails with EPERM, `clone` is allowed only without namespace flags, `clone3` reports ENOSYS (so
/// libc falls back to `clone`). Pure.
pub fn without_namespaces(profile: &str) -> Result<String, String> {
    let mut p: Value = serde_json::from_str(profile).map_err(|e| e.to_string())?;
    let rules = p.get_mut("syscalls").and_then(Value::as_array_mut).ok_or("no syscalls list")?;
    for rule in rules.iter_mut() {
        let unconditional = ["args", "includes", "excludes"].iter().all(|k| {
            rule.get(k)
                .is_none_or(|v| v.as_array().map_or(v.as_object().is_some_and(|o| o.is_empty()), |a| a.is_empty()))
        });
        if rule.get("action").and_then(Value::as_str) == Some("SCMP_ACT_ALLOW") && unconditional {
            if let Some(names) = rule.get_mut("names").and_then(Value::as_array_mut) {
                names.retain(|n| !matches!(n.as_str(), Some("clone" | "clone3" | "unshare")));
            }
        }
    }
    rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
    rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    rules.push(json!({"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}));
    serde_json::to_string(&p).map_err(|e| e.to_string())
}

/// The profile for a Podman session, from the local Podman's default; `None` when there is none on
/// this host.
pub fn podman_profile() -> Option<Result<String, SeccompError>> {
    let path = PODMAN_PROFILES.iter().find(|p| std::path::Path::new(p).is_file())?;
    Some(
        std::fs::read_to_string(path).map_err(|source| SeccompError::Read { path: path.to_string(), source }).and_then(
            |t| without_namespaces(&t).map_err(|reason| SeccompError::Parse { path: path.to_string(), reason }),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_refused_and_the_rest_of_the_profile_kept() {
        let podman = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
            {"names":["read","clone","clone3","unshare","mount"],"action":"SCMP_ACT_ALLOW","args":[],"includes":{},"excludes":{}},
            {"names":["setns"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
        let out: Value = serde_json::from_str(&without_namespaces(podman).unwrap()).unwrap();
        let rules = out["syscalls"].as_array().unwrap();
        assert_eq!(rules[0]["names"], json!(["read", "mount"]));
        assert_eq!(rules[1]["names"], json!(["setns"]), "conditional rules untouched");
        let of = |n: &str| {
            rules.iter().filter(|r| r["names"].as_array().unwrap().iter().any(|x| x == n)).collect::<Vec<_>>()
        };
        assert_eq!(of("unshare")[0]["errnoRet"], 1);
        assert_eq!(of("clone3")[0]["errnoRet"], 38);
        assert_eq!(of("clone")[0]["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(out["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(without_namespaces("{}").is_err());
    }
}
