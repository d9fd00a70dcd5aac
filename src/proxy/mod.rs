//! Domain-level egress (issue 6): an allowlisting HTTP proxy, because an IP allowlist cannot tell
//! apart names that share an address (a CDN front, a load balancer serving several registries).
//!
//! [`rules`] decides by the requested name (exact, `*.` subdomains, `**.` apex and subdomains, `*`,
//! IP/CIDR; deny beats allow); [`http`] parses the request head (CONNECT or absolute-form plain
//! HTTP) and rewrites it for the upstream; [`sni`] reads the server name of the TLS ClientHello in
//! a CONNECT tunnel; [`server`] ties them together with the proxy's own resolver, limits and clean
//! shutdown; [`log`] records every decision; [`intercept`] (Linux) terminates TLS for the hosts a
//! secret is bound to, and only those, to add it.
//!
//! What it enforces: a connection leaves only to an allowed name (as stated in CONNECT / the URL,
//! and for TLS in the SNI too), on an allowed port, at an address the rules allow (non-public
//! answers only when an IP entry opens them). What it does not: intercept TLS, except for the hosts
//! a secret is bound to ([`intercept`]). Inside any other allowed tunnel the client can ask the server for another virtual host (an HTTP `Host` differing from
//! the SNI: domain fronting), which a shared front may honour; and the proxy only sees traffic
//! that is sent to it — the container firewall ([`crate::egress::rules::render_proxy_only`]) is
//! what makes it the only way out.

pub mod env;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod http;
#[cfg(target_os = "linux")]
pub mod intercept;
pub mod log;
mod pipe;
pub mod relay;
pub mod rules;
pub mod server;
pub mod sni;

pub use env::session_env;
pub use log::{Log, Summary};
pub use rules::{Decision, Host, Pattern, Rules};
pub use server::{Limits, Proxy, ProxyConfig, ProxyError};
