//! Resolving 50 names against the test DNS server, which delays every answer by 100 ms: all names
//! at once (one `resolve_all`) against one name after the other. Concurrent wall time should be
//! close to one answer, not fifty.
// Needs a Unix host; elsewhere the bench is empty (checked, never run).
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use codex_box::egress::{resolve_all, ResolverSettings};
use support::dns_server::{TestDns, Zone};

#[tokio::main]
async fn main() {
    let delay = Duration::from_millis(100);
    let names: Vec<String> = (0..50).map(|i| format!("n{i}.bench.test")).collect();
    let mut zone = Zone::new(300).delay(delay);
    for (i, n) in names.iter().enumerate() {
        zone = zone.addr(n, &format!("198.18.0.{}", i + 1)).addr(n, &format!("2001:db8::{:x}", i + 1));
    }
    let dns = TestDns::start(zone);
    let settings = ResolverSettings { server: Some(dns.addr), tls: None, timeout: Duration::from_secs(10) };

    let t = Instant::now();
    let r = resolve_all(&names, &settings).await.expect("resolve");
    let concurrent = t.elapsed();
    assert!(r.names.iter().all(|n| n.addrs.len() == 2), "every name has A and AAAA");

    let t = Instant::now();
    for n in &names {
        let r = resolve_all(std::slice::from_ref(n), &settings).await.expect("resolve");
        assert_eq!(r.names[0].addrs.len(), 2);
    }
    let sequential = t.elapsed();
    println!("egress_resolve: 50 names (A+AAAA), each answer delayed {} ms", delay.as_millis());
    println!("  concurrent (resolve_all):  {:.0} ms ({} queries)", concurrent.as_secs_f64() * 1000.0, 100);
    println!("  sequential (one by one):   {:.0} ms", sequential.as_secs_f64() * 1000.0);
    println!(
        "  ratio: {:.1}x; concurrent / one answer: {:.2}",
        sequential.as_secs_f64() / concurrent.as_secs_f64(),
        concurrent.as_secs_f64() / delay.as_secs_f64()
    );
}
