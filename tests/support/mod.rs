//! Helpers shared by the egress integration tests and benches: a tiny DNS server, throwaway network
//! namespaces, and explicit skips that fail under CI=true.
#![allow(dead_code)]

pub mod dns_server;
pub mod netns;

/// Skips a test with a visible reason, or fails it when `CI=true` (CI must run everything).
pub fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and this test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
}
