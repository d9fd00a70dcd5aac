//! Where the host is, seen from a session on the engine's network: the network's gateway (closed by
//! the firewall, and the default verification target).

use std::net::IpAddr;

use ipnet::IpNet;

/// The gateway of the session's network (the host, seen from the container).
pub async fn gateway(docker: &bollard::Docker, network: Option<&str>) -> Option<IpAddr> {
    let net = docker.inspect_network(network.unwrap_or("bridge"), None).await.ok()?;
    let configs: Vec<(Option<String>, Option<String>)> =
        net.ipam?.config?.into_iter().map(|c| (c.gateway, c.subnet)).collect();
    gateway_from_ipam(&configs)
}

/// The gateway from a network's IPAM entries (gateway, subnet): the one given, else — as on the
/// engine's default bridge, whose IPAM config lists only the subnet — the subnet's first address,
/// which the engine gives its bridge.
pub fn gateway_from_ipam(configs: &[(Option<String>, Option<String>)]) -> Option<IpAddr> {
    let given = configs.iter().find_map(|(g, _)| g.as_deref()?.parse().ok());
    given.or_else(|| {
        configs.iter().find_map(|(_, subnet)| match subnet.as_deref()?.parse::<IpNet>().ok()? {
            IpNet::V4(n) if n.prefix_len() < 31 => Some(IpAddr::V4((u32::from(n.network()) + 1).into())),
            IpNet::V6(n) if n.prefix_len() < 127 => Some(IpAddr::V6((u128::from(n.network()) + 1).into())),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_is_given_or_the_subnets_first_address() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(gateway_from_ipam(&[(None, some("172.17.0.0/16"))]), Some("172.17.0.1".parse().unwrap()));
        assert_eq!(
            gateway_from_ipam(&[(some("198.18.0.254"), some("198.18.0.0/24"))]),
            Some("198.18.0.254".parse().unwrap())
        );
        assert_eq!(
            gateway_from_ipam(&[(None, some("2001:db8::/64")), (some("10.0.0.1"), None)]),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(gateway_from_ipam(&[(None, some("fd00::/64"))]), Some("fd00::1".parse().unwrap()));
        assert_eq!(gateway_from_ipam(&[(None, None)]), None);
    }
}
