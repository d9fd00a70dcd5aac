//! The environment that points a sandboxed command's tools at the egress proxy, shared by the
//! container session (`--egress proxy`) and the native sandbox (`--allow-domain`). Pure.

use std::net::{IpAddr, SocketAddr};

/// The environment that sends a command's tools through the proxy at `proxy`: the usual proxy
/// variables (both cases), npm's own, git's (`http.proxy` through `GIT_CONFIG_*`), and the JVM's
/// system properties through `JAVA_TOOL_OPTIONS` (Java's own HTTP clients, Gradle, Maven: Wagon reads
/// them, and Maven 3.9's native transport once `aether.connector.http.useSystemProperties` is set).
pub fn session_env(proxy: SocketAddr) -> Vec<(String, String)> {
    let url = format!("http://{proxy}");
    let host = match proxy.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let port = proxy.port();
    let no_proxy = "localhost,127.0.0.1,::1";
    let mut env: Vec<(String, String)> = Vec::new();
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "npm_config_proxy", "npm_config_https_proxy"] {
        env.push((k.into(), url.clone()));
    }
    env.push(("NO_PROXY".into(), no_proxy.into()));
    env.push(("no_proxy".into(), no_proxy.into()));
    env.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
    env.push(("GIT_CONFIG_COUNT".into(), "1".into()));
    env.push(("GIT_CONFIG_KEY_0".into(), "http.proxy".into()));
    env.push(("GIT_CONFIG_VALUE_0".into(), url));
    env.push((
        "JAVA_TOOL_OPTIONS".into(),
        format!(
            "-Dhttp.proxyHost={host} -Dhttp.proxyPort={port} -Dhttps.proxyHost={host} -Dhttps.proxyPort={port} -Dhttp.nonProxyHosts=localhost|127.0.0.1 -Daether.connector.http.useSystemProperties=true"
        ),
    ));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_env_points_every_tool_at_the_proxy() {
        let env = session_env("172.17.0.1:40000".parse().unwrap());
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("{k}"));
        for k in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "npm_config_proxy",
            "npm_config_https_proxy",
            "GIT_CONFIG_VALUE_0",
        ] {
            assert_eq!(get(k), "http://172.17.0.1:40000", "{k}");
        }
        assert_eq!(get("NO_PROXY"), "localhost,127.0.0.1,::1");
        assert_eq!((get("GIT_CONFIG_COUNT"), get("GIT_CONFIG_KEY_0")), ("1", "http.proxy"));
        assert_eq!(
            get("JAVA_TOOL_OPTIONS"),
            "-Dhttp.proxyHost=172.17.0.1 -Dhttp.proxyPort=40000 -Dhttps.proxyHost=172.17.0.1 -Dhttps.proxyPort=40000 -Dhttp.nonProxyHosts=localhost|127.0.0.1 -Daether.connector.http.useSystemProperties=true"
        );
        let v6 = session_env("[fd00::1]:3128".parse().unwrap());
        assert!(v6.iter().any(|(k, v)| k == "JAVA_TOOL_OPTIONS" && v.starts_with("-Dhttp.proxyHost=[fd00::1] ")));
    }
}
