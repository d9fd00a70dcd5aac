//! Environment scrubbing: variables that look like secrets do not reach the sandboxed command unless
//! named with `--keep-env` (or `keep_all_env`). Pure; matching is on names only, so a secret in a
//! harmless-looking name (e.g. a password inside `DATABASE_URL`) still passes.

use crate::policy::EnvPolicy;

/// Substrings of a variable name (upper-cased) that mark it as a secret.
pub const SECRET_MARKERS: &[&str] =
    &["KEY", "SECRET", "TOKEN", "PASS", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE", "SESSION_ID"];

/// Prefixes of variable names that belong to credential-bearing tools.
pub const SECRET_PREFIXES: &[&str] = &["AWS_", "AZURE_", "GOOGLE_", "GCP_", "GCLOUD_", "VAULT_", "KUBECONFIG"];

/// Names that match a marker but only carry an identity (git's author and committer).
pub const HARMLESS_PREFIXES: &[&str] = &["GIT_AUTHOR_", "GIT_COMMITTER_"];

/// Whether a variable name looks like it carries a secret.
pub fn looks_secret(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    if HARMLESS_PREFIXES.iter().any(|p| up.starts_with(p)) {
        return false;
    }
    SECRET_MARKERS.iter().any(|m| up.contains(m)) || SECRET_PREFIXES.iter().any(|p| up.starts_with(p))
}

/// Splits `vars` into (passed on, names removed), then applies `policy.set`.
pub fn scrub<I>(vars: I, policy: &EnvPolicy) -> (Vec<(String, String)>, Vec<String>)
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (k, v) in vars {
        if policy.keep_all || !looks_secret(&k) || policy.keep.iter().any(|n| n == &k) {
            kept.push((k, v));
        } else {
            removed.push(k);
        }
    }
    for (k, v) in &policy.set {
        kept.retain(|(name, _)| name != k);
        kept.push((k.clone(), v.clone()));
    }
    (kept, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[&str]) -> Vec<(String, String)> {
        names.iter().map(|n| (n.to_string(), "v".to_string())).collect()
    }

    #[test]
    fn secrets_are_removed_and_ordinary_variables_kept() {
        let (kept, removed) = scrub(
            vars(&[
                "PATH",
                "HOME",
                "OPENAI_API_KEY",
                "GITHUB_TOKEN",
                "DB_PASSWORD",
                "AWS_REGION",
                "MY_SECRET",
                "SSH_AUTH_SOCK",
                "LANG",
                "TERM",
                "npm_config__auth",
                "GIT_AUTHOR_NAME",
                "HTTP_AUTHORIZATION",
            ]),
            &EnvPolicy::default(),
        );
        let kept: Vec<_> = kept.into_iter().map(|(k, _)| k).collect();
        assert_eq!(kept, ["PATH", "HOME", "LANG", "TERM", "GIT_AUTHOR_NAME"]);
        assert_eq!(removed.len(), 8);
    }

    #[test]
    fn keep_names_a_variable_exactly() {
        let policy = EnvPolicy { keep: vec!["OPENAI_API_KEY".into()], ..EnvPolicy::default() };
        let (kept, removed) = scrub(vars(&["OPENAI_API_KEY", "OPENAI_API_KEY_2"]), &policy);
        assert_eq!(kept, vars(&["OPENAI_API_KEY"]));
        assert_eq!(removed, ["OPENAI_API_KEY_2"]);
    }

    #[test]
    fn keep_all_and_set() {
        let policy = EnvPolicy { keep_all: true, set: vec![("A".into(), "1".into())], ..EnvPolicy::default() };
        let (kept, removed) = scrub(vars(&["A", "X_TOKEN"]), &policy);
        assert_eq!(kept, vec![("X_TOKEN".into(), "v".into()), ("A".into(), "1".into())]);
        assert!(removed.is_empty());
    }
}
