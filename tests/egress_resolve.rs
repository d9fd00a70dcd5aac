//! Resolution against a tiny DNS server on loopback: A+AAAA, CNAME chains and their TTLs, NXDOMAIN
//! as a warning or a strict error, and an unreachable or slow server failing in bounded time.
#![cfg(unix)]

mod support;

use std::time::{Duration, Instant};

use codex_box::egress::resolve::LookupFailure;
use codex_box::egress::{resolve_all, ResolverSettings};
use support::dns_server::{dead_address, TestDns, Zone};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn settings(dns: &TestDns, timeout_ms: u64) -> ResolverSettings {
    ResolverSettings { server: Some(dns.addr), tls: None, timeout: Duration::from_millis(timeout_ms) }
}

#[tokio::test]
async fn a_and_aaaa_records_and_cname_chains_are_followed() {
    let dns = TestDns::start(
        Zone::new(300)
            .addr("api.example.test", "192.0.2.1")
            .addr("api.example.test", "2001:db8::1")
            .cname_ttl("www.example.test", "edge.example.test", Some(60))
            .cname("edge.example.test", "api.example.test"),
    );
    let r = resolve_all(&names(&["API.example.test", "www.example.test."]), &settings(&dns, 3000)).await.unwrap();
    let shown: Vec<String> = r.names[0].addrs.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["192.0.2.1", "2001:db8::1"]);
    assert_eq!(r.names[0].min_ttl, Some(Duration::from_secs(300)));
    assert_eq!(r.names[0].error, None);
    assert_eq!(r.names[1].addrs, r.names[0].addrs, "chain www -> edge -> api");
    assert_eq!(r.names[1].min_ttl, Some(Duration::from_secs(60)), "the CNAME's TTL counts");
    assert!(r.verdict(true).unwrap().is_empty());
}

#[tokio::test]
async fn nxdomain_is_a_warning_or_a_strict_error() {
    let dns = TestDns::start(
        Zone::new(60).addr("ok.example.test", "192.0.2.7").cname("v4only.example.test", "ok.example.test"),
    );
    let r = resolve_all(&names(&["ok.example.test", "missing.example.test"]), &settings(&dns, 3000)).await.unwrap();
    assert_eq!(r.names[1].error, Some(LookupFailure::NoSuchName));
    let warnings = r.verdict(false).unwrap();
    assert_eq!(warnings, ["allowlisted name not resolved, skipped: missing.example.test: no such name (NXDOMAIN)"]);
    let err = r.verdict(true).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "strict mode: allowlisted names not resolved by DNS server {}: missing.example.test",
            dns.addr
        )),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_clearly_in_bounded_time() {
    let server = dead_address();
    let s = ResolverSettings { server: Some(server), tls: None, timeout: Duration::from_millis(1000) };
    let start = Instant::now();
    let r = resolve_all(&names(&["a.example.test", "b.example.test"]), &s).await.unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    assert!(r.names.iter().all(|n| n.addrs.is_empty() && n.error.is_some()));
    let err = r.verdict(false).unwrap_err().to_string();
    assert!(err.starts_with(&format!("no allowlisted name could be resolved by DNS server {server}")), "{err}");
    assert!(err.contains("fix: check that the resolver is reachable"), "{err}");
}

#[tokio::test]
async fn a_slow_server_is_cut_at_the_overall_deadline() {
    let dns = TestDns::start(Zone::new(60).addr("slow.example.test", "192.0.2.8").delay(Duration::from_secs(3)));
    let start = Instant::now();
    let r = resolve_all(&names(&["slow.example.test"]), &settings(&dns, 500)).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(1500), "took {:?}", start.elapsed());
    assert_eq!(r.names[0].error, Some(LookupFailure::TimedOut));
}

#[tokio::test]
async fn names_are_resolved_concurrently() {
    let mut zone = Zone::new(60).delay(Duration::from_millis(200));
    let list: Vec<String> = (0..20).map(|i| format!("n{i}.example.test")).collect();
    for (i, n) in list.iter().enumerate() {
        zone = zone.addr(n, &format!("198.51.100.{}", i + 1));
    }
    let dns = TestDns::start(zone);
    let start = Instant::now();
    let r = resolve_all(&list, &settings(&dns, 3000)).await.unwrap();
    let elapsed = start.elapsed();
    assert!(r.names.iter().all(|n| n.addrs.len() == 1), "{r:?}");
    assert!(elapsed < Duration::from_millis(1000), "20 names x 200 ms took {elapsed:?}");
}
