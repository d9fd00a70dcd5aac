//! `codex-box egress`: what a session's egress would be for the project's current settings — the
//! allowlist with where each entry came from, its resolution and the rules, or the proxy's patterns.

use anyhow::Result;

use super::egress;
use super::engine::Engine;
use super::policy::{Egress, SessionPolicy};

/// `HOST[:PORT]` (`[v6]:PORT` for IPv6) → host, port (443 when absent).
pub fn split_target(target: &str) -> Result<(String, u16)> {
    let bad = || {
        anyhow::anyhow!(
            "{target:?} is not HOST[:PORT]; give a name or IP address and an optional port, like github.com:443 or [2001:db8::1]:443"
        )
    };
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        (h.to_string(), after.strip_prefix(':'))
    } else if target.matches(':').count() == 1 {
        let (h, p) = target.split_once(':').unwrap_or((target, ""));
        (h.to_string(), Some(p))
    } else {
        (target.to_string(), None)
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
        None => 443,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || crate::egress::parse_entry(&host, crate::egress::Source::Flag).is_err() {
        return Err(bad());
    }
    Ok((host, port))
}

/// `codex-box egress why HOST[:PORT]`: the verdict for the project's current settings; exit status
/// 0 when allowed, 1 when refused.
pub async fn why(policy: &SessionPolicy, target: &str, json: bool) -> Result<i32> {
    let (host, port) = split_target(target)?;
    let settings = &policy.egress_settings;
    let (mode, verdict) = match &policy.egress {
        Egress::Open => {
            ("open", egress::Verdict { allowed: true, reason: "--egress open: no firewall".into(), hint: None })
        }
        Egress::Proxy(rules) => ("proxy", egress::why_proxy(rules, &settings.ports, &host, port)),
        Egress::Allowlist(allow) => {
            let (res, _) = egress::resolve(allow, settings).await?;
            let addrs: Vec<std::net::IpAddr> = match host.parse() {
                Ok(ip) => vec![ip],
                Err(_) => match res.names.iter().find(|n| n.name == host) {
                    Some(n) => n.addrs.clone(),
                    None => crate::egress::resolve_all(std::slice::from_ref(&host), &settings.resolver)
                        .await
                        .map(|r| r.addresses().collect())
                        .unwrap_or_default(),
                },
            };
            ("allowlist", egress::why_allowlist(allow, &res, &settings.ports, &host, port, &addrs))
        }
    };
    if json {
        let v = serde_json::json!({
            "target": format!("{host}:{port}"),
            "mode": mode,
            "allowed": verdict.allowed,
            "reason": verdict.reason,
            "hint": verdict.hint,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let word = if verdict.allowed { "allowed" } else { "refused" };
        println!("{host}:{port}: {word} ({mode} mode): {}", verdict.reason);
        if let Some(h) = &verdict.hint {
            println!("to allow it: {h}");
        }
    }
    Ok(if verdict.allowed { 0 } else { 1 })
}

/// `codex-box egress --preset [NAME]`: one preset's names and proxy patterns, or (empty name) the
/// list of presets; as JSON with `--json`.
pub fn presets(name: &str, json: bool) -> Result<String> {
    use crate::egress::presets;
    let chosen: Vec<&presets::Preset> =
        if name.is_empty() { presets::all().iter().collect() } else { vec![presets::get(name)?] };
    if json {
        let list: Vec<serde_json::Value> = chosen
            .iter()
            .map(|p| serde_json::json!({"name": p.name, "description": p.description, "allow": p.allow, "proxy": p.proxy}))
            .collect();
        return Ok(serde_json::to_string_pretty(&serde_json::json!({"version": presets::version(), "presets": list}))?);
    }
    let mut out = String::new();
    if name.is_empty() {
        for p in &chosen {
            out.push_str(&format!("{:<8} {}\n", p.name, p.description));
        }
        out.push_str("`codex-box egress --preset NAME` shows one; `--allow-preset NAME` (or presets = [\"NAME\"] under [egress]) uses it\n");
        return Ok(out);
    }
    let p = chosen[0];
    out.push_str(&format!("preset {}: {}\nallow (both egress modes):\n", p.name, p.description));
    for a in &p.allow {
        out.push_str(&format!("  {a}\n"));
    }
    if !p.proxy.is_empty() {
        out.push_str("proxy only (--egress proxy):\n");
        for a in &p.proxy {
            out.push_str(&format!("  {a}\n"));
        }
    }
    Ok(out)
}

/// `codex-box egress`: the allowlist with its sources, the resolution, and optionally the rules.
pub async fn egress<E: Engine>(
    policy: &SessionPolicy,
    engine: Option<&E>,
    json: bool,
    show_rules: bool,
) -> Result<i32> {
    let settings = &policy.egress_settings;
    let allow = match &policy.egress {
        Egress::Open => {
            if json {
                println!("{}", serde_json::json!({"mode": "open"}));
            } else {
                println!("egress: open (no firewall)");
            }
            return Ok(0);
        }
        Egress::Proxy(rules) => return Ok(show_proxy_rules(rules, settings, json)),
        Egress::Allowlist(allow) => allow,
    };
    let (res, warnings) = egress::resolve(allow, settings).await?;
    let gw = match engine {
        Some(e) => e.gateway(settings.network.as_deref()).await,
        None => None,
    };
    let fw = egress::assemble(allow, &res, settings, gw, &[]);
    if json {
        let names: Vec<serde_json::Value> = res
            .names
            .iter()
            .map(|n| {
                serde_json::json!({
                    "name": n.name,
                    "addresses": n.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "min_ttl": n.min_ttl,
                    "error": n.error.as_ref().map(|e| e.to_string()),
                })
            })
            .collect();
        let out = serde_json::json!({
            "names": names,
            "nets": allow.nets().iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            "ports": settings.ports,
            "dns": fw.dns,
            "warnings": warnings,
            "rules": show_rules.then(|| fw.files.iter().map(|(n, d)| (n.clone(), String::from_utf8_lossy(d).into_owned())).collect::<std::collections::BTreeMap<_, _>>()),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!("allowlist:\n{allow}");
    println!("resolution ({}):\n{res}", res.resolver);
    for w in &warnings {
        println!("warning: {w}");
    }
    println!(
        "ports: {:?}; DNS from the session: {}",
        settings.ports,
        if fw.dns.is_empty() { "closed".to_string() } else { fw.dns.join(", ") }
    );
    if show_rules {
        for (name, data) in &fw.files {
            println!("--- {name}\n{}", String::from_utf8_lossy(data));
        }
    }
    Ok(0)
}

/// `codex-box egress --egress proxy`: the proxy's allow and deny patterns (names are resolved by
/// the proxy at each request, so there is no resolution to show).
fn show_proxy_rules(rules: &crate::proxy::Rules, settings: &crate::session::egress::EgressSettings, json: bool) -> i32 {
    if json {
        let v = serde_json::json!({
            "mode": "proxy",
            "ports": settings.ports,
            "allow": rules.allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "deny": rules.deny.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return 0;
    }
    println!("egress: proxy (decided by name at each request; ports {:?})", settings.ports);
    println!("allow:");
    for p in &rules.allow {
        println!("  {p}");
    }
    println!("deny:");
    for p in &rules.deny {
        println!("  {p}");
    }
    0
}
