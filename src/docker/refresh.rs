//! Live refresh of a running session's firewall: allowlisted names are re-resolved on the host on an
//! interval that follows their TTLs; new addresses join the sets and /etc/hosts, stale ones age out
//! after a grace period (`crate::egress::refresh` plans the diff). Set changes are applied with
//! `docker exec` as root — the container keeps NET_ADMIN for this, its agent never has it; the hosts
//! file is rewritten on the host side of its read-only bind. Nothing reopens: only `add`/`del` of set
//! members, never a rule or a policy change.

use std::time::Instant;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::egress::{plan_refresh, resolve_all, Allowlist, RefreshSettings, RefreshState, Resolution};

/// Runs as root in the container: `cmd` with `stdin`; returns exit code and output.
pub async fn exec_root(
    docker: &Docker,
    container: &str,
    cmd: &[&str],
    stdin: &[u8],
) -> Result<(i64, String), bollard::errors::Error> {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                user: Some("0"),
                cmd: Some(cmd.to_vec()),
                ..Default::default()
            },
        )
        .await?;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, mut input } = docker.start_exec(&exec.id, None).await? {
        let _ = input.write_all(stdin).await;
        let _ = input.shutdown().await;
        drop(input);
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&chunk.to_string());
        }
    }
    let code = docker.inspect_exec(&exec.id).await?.exit_code.unwrap_or(-1);
    Ok((code, text))
}

/// /etc/hosts with the allowlisted names' lines replaced by the current resolution.
pub fn rewrite_hosts(current: &str, names: &[String], res: &Resolution) -> String {
    let mut out: String = current
        .lines()
        .filter(|l| !l.split_whitespace().skip(1).any(|h| names.iter().any(|n| n == h)))
        .map(|l| format!("{l}\n"))
        .collect();
    for n in &res.names {
        for ip in &n.addrs {
            out.push_str(&format!("{ip}\t{}\n", n.name));
        }
    }
    out
}

/// Re-resolves forever (until aborted with the session).
pub async fn run(
    docker: Docker,
    container: String,
    hosts: std::path::PathBuf,
    allow: Allowlist,
    rs: crate::egress::ResolverSettings,
    initial: Resolution,
    settings: RefreshSettings,
) {
    let names = allow.names();
    let mut state = RefreshState::new(allow.nets(), &initial, Instant::now());
    let mut delay = plan_refresh(&state, &initial, Instant::now(), &settings).next_delay;
    loop {
        tokio::time::sleep(delay).await;
        let Ok(res) = resolve_all(&names, &rs).await else {
            delay = settings.min_delay;
            continue;
        };
        let plan = plan_refresh(&state, &res, Instant::now(), &settings);
        delay = plan.next_delay;
        if plan.is_noop() {
            state = plan.state;
            continue;
        }
        match exec_root(&docker, &container, &["ipset", "restore", "-exist"], plan.ipset_text().as_bytes()).await {
            Ok((0, _)) => {}
            Ok((code, out)) => {
                eprintln!("codex-box: warning: refreshing the allow sets failed ({code}): {}", out.trim());
                continue;
            }
            Err(_) => return,
        }
        // The session's /etc/hosts is a read-only bind of this host file: rewritten in place (same
        // inode), the container sees the new content.
        if let Ok(current) = std::fs::read_to_string(&hosts) {
            let _ = std::fs::write(&hosts, rewrite_hosts(&current, &names, &res));
        }
        state = plan.state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::NameResolution;

    #[test]
    fn hosts_lines_of_allowlisted_names_are_replaced_others_kept() {
        let current = "127.0.0.1\tlocalhost\n198.51.100.10\tallowed.test\n172.17.0.2\tcodex-box\n";
        let res = Resolution {
            names: vec![NameResolution {
                name: "allowed.test".into(),
                addrs: vec!["198.51.100.12".parse().unwrap()],
                min_ttl: None,
                error: None,
            }],
            resolver: String::new(),
        };
        let out = rewrite_hosts(current, &["allowed.test".to_string()], &res);
        assert_eq!(out, "127.0.0.1\tlocalhost\n172.17.0.2\tcodex-box\n198.51.100.12\tallowed.test\n");
    }
}
