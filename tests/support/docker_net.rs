//! The one fixture for tests that need their own Docker network: a network `PREFIX-TAG-PID` on
//! `V4.0/24` (gateway `.1`), optionally with `V6::/64` too, and test hosts on it, each described by
//! a [`TestHost`] — its last octet (`V4.N`, and `V6::N`), entrypoint argv, environment and an
//! optional bind mount — run as root from the test image. Creating one first removes what a killed
//! earlier run of the same test left (networks `PREFIX-TAG-PID` whose process is gone, and the
//! containers on them), which would hold the subnet — but not the network of a run still going;
//! dropping it removes the hosts and the network.
//!
//! It sends no packet itself except the TCP connects of [`TestNet::wait_for`] to its own hosts.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig, Mount, MountType,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptions, ListNetworksOptions, RemoveContainerOptions};
use bollard::Docker;

/// One test host: `V4.last` (and `V6::last` on a network with IPv6).
pub struct TestHost {
    pub last: u8,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    /// `(host directory, path in the container)`.
    pub bind: Option<(String, String)>,
}

impl TestHost {
    pub fn new(last: u8, entrypoint: &[&str]) -> TestHost {
        TestHost { last, entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(), env: Vec::new(), bind: None }
    }

    /// `sh -c SCRIPT`.
    pub fn sh(last: u8, script: &str) -> TestHost {
        TestHost::new(last, &["sh", "-c", script])
    }

    pub fn env(mut self, env: &[&str]) -> TestHost {
        self.env = env.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn bind(mut self, source: &str, target: &str) -> TestHost {
        self.bind = Some((source.to_string(), target.to_string()));
        self
    }
}

/// A Docker network with test hosts; removed on drop.
pub struct TestNet {
    pub name: String,
    pub v4: String,
    v6: Option<String>,
    hosts: Vec<String>,
    rt: tokio::runtime::Runtime,
}

fn force() -> Option<RemoveContainerOptions> {
    Some(RemoveContainerOptions { force: true, ..Default::default() })
}

/// Whether `pid` is a running process (signal 0 reaches it, or it belongs to someone else).
fn alive(pid: i32) -> bool {
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH))
}

/// Removes the networks `{prefix}{pid}` of runs that are gone, with the containers on them.
async fn remove_leftovers(d: &Docker, prefix: &str) {
    let filters = HashMap::from([("name".to_string(), vec![prefix.to_string()])]);
    let nets = d.list_networks(Some(ListNetworksOptions { filters: Some(filters) })).await.unwrap();
    for old in nets.into_iter().filter_map(|n| n.name) {
        // Only this test's own networks (not `{prefix}side-…` of another tag), of runs that are gone
        // (its own pid too: a process that had this pid before), not a concurrent run's.
        let Some(pid) = old.strip_prefix(prefix).and_then(|p| p.parse::<i32>().ok()) else { continue };
        if pid != std::process::id() as i32 && alive(pid) {
            continue;
        }
        if let Ok(info) = d.inspect_network(&old, None).await {
            for c in info.containers.unwrap_or_default().into_values().filter_map(|c| c.name) {
                let _ = d.remove_container(&c, force()).await;
            }
        }
        let _ = d.remove_network(&old).await;
    }
}

impl TestNet {
    /// Creates `{prefix}-{tag}-{pid}` on `v4` ("198.51.100": `198.51.100.0/24`) and, with `v6`
    /// ("2001:db8:77"), `2001:db8:77::/64` too.
    pub fn new(prefix: &str, tag: &str, v4: &str, v6: Option<&str>) -> TestNet {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let name = format!("{prefix}-{tag}-{}", std::process::id());
        rt.block_on(async {
            let d = codex_box::docker::engine::connect().await.unwrap();
            remove_leftovers(&d, &format!("{prefix}-{tag}-")).await;
            let mut subnets = vec![IpamConfig {
                subnet: Some(format!("{v4}.0/24")),
                gateway: Some(format!("{v4}.1")),
                ..Default::default()
            }];
            if let Some(v6) = v6 {
                subnets.push(IpamConfig {
                    subnet: Some(format!("{v6}::/64")),
                    gateway: Some(format!("{v6}::1")),
                    ..Default::default()
                });
            }
            d.create_network(NetworkCreateRequest {
                name: name.clone(),
                enable_ipv6: v6.map(|_| true),
                ipam: Some(Ipam { config: Some(subnets), ..Default::default() }),
                ..Default::default()
            })
            .await
            .unwrap();
        });
        TestNet { name, v4: v4.to_string(), v6: v6.map(String::from), hosts: Vec::new(), rt }
    }

    /// Creates and starts `host` as `{name}-h{last}`.
    pub fn add(&mut self, host: TestHost) {
        let cname = format!("{}-h{}", self.name, host.last);
        let endpoint = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some(format!("{}.{}", self.v4, host.last)),
                ipv6_address: self.v6.as_ref().map(|v6| format!("{v6}::{}", host.last)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mounts = host.bind.map(|(source, target)| {
            vec![Mount { target: Some(target), source: Some(source), typ: Some(MountType::BIND), ..Default::default() }]
        });
        let body = ContainerCreateBody {
            image: Some(super::image()),
            entrypoint: Some(host.entrypoint),
            env: (!host.env.is_empty()).then_some(host.env),
            user: Some("0".into()),
            working_dir: Some("/tmp".into()),
            host_config: Some(HostConfig { network_mode: Some(self.name.clone()), mounts, ..Default::default() }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(self.name.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        self.rt.block_on(async {
            let d = codex_box::docker::engine::connect().await.unwrap();
            let _ = d.remove_container(&cname, force()).await;
            let opts = CreateContainerOptions { name: Some(cname.clone()), ..Default::default() };
            d.create_container(Some(opts), body).await.unwrap();
            self.hosts.push(cname.clone());
            d.start_container(&cname, None).await.unwrap();
        });
    }

    /// Waits until host `V4.last` accepts TCP on each of `ports` (from this host: no firewall on
    /// that path), at most `secs` seconds each.
    pub fn wait_for(&self, last: u8, ports: &[u16], secs: u64) {
        for port in ports {
            super::wait_for_port(&format!("{}.{last}:{port}", self.v4), secs);
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        self.rt.block_on(async {
            let d = codex_box::docker::engine::connect().await.unwrap();
            for h in &self.hosts {
                let _ = d.remove_container(h, force()).await;
            }
            // And what sessions left on it on purpose: codex-box's beacon of this network.
            if let Ok(info) = d.inspect_network(&self.name, None).await {
                for c in info.containers.unwrap_or_default().into_values().filter_map(|c| c.name) {
                    let _ = d.remove_container(&c, force()).await;
                }
            }
            let _ = d.remove_network(&self.name).await;
        });
    }
}
