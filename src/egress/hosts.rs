//! `/etc/hosts` lines pinning allowlisted names to the addresses resolved on the host.
//!
//! What it enforces: inside the container every allowlisted name resolves, without DNS, to exactly
//! the addresses the firewall opened. What it does not: follow later changes — a refresh updates the
//! sets, not the file — or stop a tool from asking DNS (that is refused by the firewall).

use std::fmt::Write as _;

use super::resolve::Resolution;

/// `/etc/hosts` lines pinning every resolved name to its addresses, so the agent needs no DNS.
pub fn hosts_entries(resolution: &Resolution) -> String {
    let mut out = String::from("# codex-box: allowlisted names, resolved on the host\n");
    for n in &resolution.names {
        for ip in &n.addrs {
            let _ = writeln!(out, "{ip}\t{}", n.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::resolve::NameResolution;
    use std::net::IpAddr;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn hosts_pin_every_address() {
        let r = Resolution {
            names: vec![NameResolution {
                name: "api.openai.com".into(),
                addrs: ips(&["203.0.113.1", "2001:db8::1"]),
                min_ttl: None,
                error: None,
            }],
            resolver: String::new(),
        };
        assert_eq!(
            hosts_entries(&r),
            "# codex-box: allowlisted names, resolved on the host\n203.0.113.1\tapi.openai.com\n2001:db8::1\tapi.openai.com\n"
        );
    }
}
