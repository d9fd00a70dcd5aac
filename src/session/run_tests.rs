//! The session orchestration against a recording fake of the engine seam: what is asked of the
//! engine and in which order, what the plan holds, and what is stopped on each failure path.
//! Traffic only on loopback (the fake's gateway is 127.0.0.1; the resolver is a dead loopback port).

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use super::engine::Engine;
use super::plan::{CompanionAddrs, Outcome, Plan, Refresh, SessionFiles};
use super::policy::SessionPolicy;
use crate::cli::SessionArgs;
use crate::companion::CompanionJob;
use crate::host_env::HostEnv;

// The test DNS server of the integration tests: answers on 127.0.0.1 from a table.
#[path = "../../tests/support/dns_server.rs"]
#[allow(dead_code)]
mod dns_server;

#[derive(Debug, thiserror::Error)]
#[error("fake engine: {0}")]
struct FakeError(&'static str);

/// What the fake saw while `run` was called: the plan, the files, and whether the proxy and the
/// verification target answered at that moment.
#[derive(Default)]
struct Seen {
    plan: Option<Plan>,
    files: Option<SessionFiles>,
    refresh: bool,
    proxy_answered: Option<bool>,
    verify_target_answered: Option<bool>,
}

#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
    gateway: Option<IpAddr>,
    fail_image: bool,
    fail_run: bool,
    /// The beacon of the fake's network: a listener on loopback, as long as the fake lives.
    beacon: RefCell<Option<TcpListener>>,
    /// The job the companion was started with.
    job: RefCell<Option<CompanionJob>>,
    seen: RefCell<Seen>,
}

/// The fake's session companion: the real proxy on loopback, built from the job as the companion
/// builds it (when the job has one), a stand-in relay listener, and a beacon.
struct FakeCompanion {
    proxy: Option<crate::proxy::Proxy>,
    _relay: Option<TcpListener>,
    _beacon: TcpListener,
    _roots: tempfile::TempDir,
}

fn env_of<'a>(plan: &'a Plan, key: &str) -> Option<&'a str> {
    plan.extra_env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn answers(addr: &str) -> bool {
    addr.parse().is_ok_and(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok())
}

impl Engine for Fake {
    type Error = FakeError;

    async fn collect_orphans(&self) -> Result<Vec<String>, FakeError> {
        self.calls.borrow_mut().push("collect_orphans".into());
        Ok(Vec::new())
    }

    async fn ensure_image(&self, image: &str, _: &[PathBuf]) -> Result<(), FakeError> {
        self.calls.borrow_mut().push(format!("ensure_image {image}"));
        if self.fail_image {
            return Err(FakeError("no such image"));
        }
        Ok(())
    }

    async fn gateway(&self, network: Option<&str>) -> Option<IpAddr> {
        self.calls.borrow_mut().push(format!("gateway {}", network.unwrap_or("default")));
        self.gateway
    }

    async fn beacon(&self, network: Option<&str>) -> Result<SocketAddr, FakeError> {
        self.calls.borrow_mut().push(format!("beacon {}", network.unwrap_or("default")));
        let mut b = self.beacon.borrow_mut();
        let l = b.get_or_insert_with(|| TcpListener::bind("127.0.0.1:0").unwrap());
        Ok(l.local_addr().unwrap())
    }

    type Companion = FakeCompanion;

    async fn start_companion(
        &self,
        network: Option<&str>,
        job: &CompanionJob,
        log: Arc<crate::proxy::Log>,
    ) -> Result<(CompanionAddrs, FakeCompanion), FakeError> {
        let what = [job.proxy.as_ref().map(|_| "proxy"), job.relay.as_ref().map(|_| "relay")];
        let what: Vec<&str> = what.into_iter().flatten().collect();
        self.calls.borrow_mut().push(format!("start_companion {} {}", network.unwrap_or("default"), what.join("+")));
        *self.job.borrow_mut() = Some(job.clone());
        let roots = tempfile::tempdir().unwrap();
        let proxy = match &job.proxy {
            Some(p) => {
                let config = p.proxy_config(roots.path()).map_err(|_| FakeError("bad job"))?;
                let log = crate::proxy::Log::memory(false);
                Some(crate::proxy::Proxy::start("127.0.0.1:0".parse().unwrap(), config, log).await.unwrap())
            }
            None => None,
        };
        log.record_line("2026-12-03T00:00:00Z\tdeny\tother.test:443\tCONNECT\tnot in the allowlist");
        let beacon = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = job.relay.as_ref().map(|_| TcpListener::bind("127.0.0.1:0").unwrap());
        let addrs = CompanionAddrs {
            beacon: beacon.local_addr().unwrap(),
            proxy: proxy.as_ref().map(|p| p.addr()),
            relay: relay.as_ref().map(|r| r.local_addr().unwrap()),
        };
        Ok((addrs, FakeCompanion { proxy, _relay: relay, _beacon: beacon, _roots: roots }))
    }

    async fn stop_companion(&self, c: FakeCompanion) {
        self.calls.borrow_mut().push("stop_companion".into());
        if let Some(p) = c.proxy {
            p.shutdown().await;
        }
    }

    async fn run(&self, plan: Plan, files: SessionFiles, refresh: Option<Refresh>) -> Result<Outcome, FakeError> {
        self.calls.borrow_mut().push("run".into());
        let mut seen = self.seen.borrow_mut();
        if let Some(proxy) = env_of(&plan, "HTTPS_PROXY") {
            seen.proxy_answered = Some(answers(proxy.trim_start_matches("http://").trim_end_matches('/')));
        }
        if let Some(target) = env_of(&plan, "CODEX_BOX_VERIFY_BLOCKED") {
            seen.verify_target_answered = Some(answers(target));
        }
        seen.refresh = refresh.is_some();
        seen.plan = Some(plan);
        seen.files = Some(files);
        if self.fail_run {
            return Err(FakeError("the container died"));
        }
        Ok(Outcome { exit_code: 7, oom_killed: false, pids_limit_hits: 0, container: "codex_fake".into() })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    wd: PathBuf,
    state: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let (wd, state) = (base.join("proj"), base.join("state"));
    std::fs::create_dir_all(&wd).unwrap();
    Fixture { _dir: dir, wd, state }
}

fn policy(f: &Fixture, egress: &str, extra: impl FnOnce(&mut SessionArgs)) -> SessionPolicy {
    // The proxy runs in a companion, where loopback is its own: a test-network address nobody
    // answers on (no query is made: no request reaches the fake's proxy).
    let dns = if egress == "proxy" { "198.18.0.53:53" } else { "127.0.0.1:9" };
    policy_with_dns(f, egress, dns, extra)
}

fn policy_with_dns(f: &Fixture, egress: &str, dns: &str, extra: impl FnOnce(&mut SessionArgs)) -> SessionPolicy {
    let mut args = SessionArgs {
        work_dir: Some(f.wd.clone()),
        egress: egress.into(),
        trust: true,
        // A resolver nobody answers on loopback: nothing leaves this host.
        dns_server: Some(dns.into()),
        ..SessionArgs::default()
    };
    extra(&mut args);
    let env = HostEnv { state_dir: Some(f.state.join("codex-box")), ..HostEnv::default() };
    SessionPolicy::build(&args, env, &f.wd).unwrap()
}

fn run(fake: &Fake, policy: &SessionPolicy, command: &[&str]) -> anyhow::Result<i32> {
    let command = command.iter().map(|s| s.to_string()).collect();
    let checked = super::check(policy, command, false, None)?;
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(super::run(fake, checked))
}

fn calls(fake: &Fake) -> Vec<String> {
    fake.calls.borrow().clone()
}

#[test]
fn an_open_session_asks_the_engine_in_order_and_passes_the_exit_code_on() {
    let f = fixture();
    let fake = Fake::default();
    let p = policy(&f, "open", |_| {});
    assert_eq!(run(&fake, &p, &["sh", "-c", "exit 7"]).unwrap(), 7);
    assert_eq!(calls(&fake), ["collect_orphans", "ensure_image codex-sandbox", "run"]);
    let seen = fake.seen.borrow();
    let plan = seen.plan.as_ref().unwrap();
    assert_eq!(plan.command, ["sh", "-c", "exit 7"]);
    assert_eq!(plan.work_dir, f.wd);
    assert!(!plan.pinned_hosts && !plan.allow_git_write && !plan.tty);
    assert!(plan.home.state_dir.starts_with(f.wd.join(".codex/.environment")));
    assert!(seen.files.as_ref().unwrap().extra.is_empty(), "no firewall files without a firewall");
    assert!(!seen.refresh);
}

#[test]
fn an_explicit_inner_sandbox_is_refused_before_the_engine_is_asked() {
    let f = fixture();
    let p = policy(&f, "open", |_| {});
    let e = super::check(&p, vec!["codex".into(), "-s".into(), "read-only".into()], false, None).err().unwrap();
    assert!(e.to_string().contains("Codex's own sandbox"), "{e}");
    assert!(!f.wd.join(".codex").exists(), "nothing was created");
}

#[test]
fn the_proxy_runs_during_the_session_and_is_stopped_after_it() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    let p = policy(&f, "proxy", |a| {
        a.allow_git_write = true;
        a.allow_domain = vec!["**.allowed.test".into()];
        a.deny_domain = vec!["bad.allowed.test".into()];
    });
    assert_eq!(run(&fake, &p, &["true"]).unwrap(), 7);
    assert_eq!(
        calls(&fake),
        [
            "collect_orphans",
            "ensure_image codex-sandbox",
            "start_companion default proxy",
            "gateway default",
            "run",
            "stop_companion"
        ]
    );
    // The proxy companion got the session's own rules (the same merge as on the host).
    let job = fake.job.borrow().clone().unwrap().proxy.unwrap();
    let want = crate::session::egress::proxy_rules(&p.egress_settings).unwrap();
    assert_eq!(format!("{:?}", job.rules().unwrap()), format!("{want:?}"));
    assert_eq!(job.dns_server, p.egress_settings.resolver.server);
    let seen = fake.seen.borrow();
    let plan = seen.plan.as_ref().unwrap();
    assert!(plan.pinned_hosts && plan.allow_git_write);
    // While the agent ran: the proxy answered, and so did the default blocked target — the
    // companion's beacon, which only a firewall in force can make the verification find closed.
    assert_eq!(seen.proxy_answered, Some(true));
    assert_eq!(seen.verify_target_answered, Some(true));
    let v4 = &seen.files.as_ref().unwrap().extra.iter().find(|(n, _)| n == "firewall.v4").unwrap().1;
    let proxy = env_of(plan, "HTTPS_PROXY").unwrap().trim_start_matches("http://").trim_end_matches('/').to_string();
    let port = proxy.rsplit(':').next().unwrap();
    assert!(String::from_utf8_lossy(v4).contains(&format!("--dport {port}")), "the firewall opens only the proxy");
    assert_eq!(env_of(plan, "CODEX_BOX_VERIFY_ALLOWED"), Some(proxy.as_str()));
    assert!(!seen.refresh, "names are the proxy's to resolve: no refresh");
    // Afterwards: the proxy is gone, and its lines reached the session's log file on the host.
    assert!(!answers(&proxy), "the proxy was shut down");
    let logs: Vec<_> = std::fs::read_dir(f.state.join("codex-box/proxy")).unwrap().collect();
    assert_eq!(logs.len(), 1);
    let text = std::fs::read_to_string(logs[0].as_ref().unwrap().path()).unwrap();
    assert!(text.contains("deny\tother.test:443"), "{text}");
}

#[test]
fn an_allowlist_session_pins_names_verifies_and_refreshes() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    let dns = dns_server::TestDns::start(dns_server::Zone::new(60).addr("api.openai.com", "192.0.2.10"));
    let p = policy_with_dns(&f, "allowlist", &dns.addr.to_string(), |a| a.network = Some("testnet".into()));
    run(&fake, &p, &["true"]).unwrap();
    assert_eq!(
        calls(&fake),
        ["collect_orphans", "ensure_image codex-sandbox", "gateway testnet", "beacon testnet", "run"]
    );
    let seen = fake.seen.borrow();
    let plan = seen.plan.as_ref().unwrap();
    assert_eq!(plan.network.as_deref(), Some("testnet"));
    assert!(plan.pinned_hosts && seen.refresh);
    let names: Vec<&str> = seen.files.as_ref().unwrap().extra.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["firewall.ipset", "firewall.v4", "firewall.v6", "hosts"]);
    assert_eq!(seen.verify_target_answered, Some(true));
    let hosts = &seen.files.as_ref().unwrap().extra[3].1;
    assert!(String::from_utf8_lossy(hosts).contains("192.0.2.10\tapi.openai.com"), "the name is pinned");
}

#[test]
fn an_allowlist_nobody_resolves_is_refused_before_the_run() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    let p = policy(&f, "allowlist", |_| {});
    let e = run(&fake, &p, &["true"]).unwrap_err().to_string();
    assert!(e.contains("no allowlisted name could be resolved"), "{e}");
    assert!(!calls(&fake).contains(&"run".to_string()));
}

#[test]
fn a_missing_image_runs_nothing_and_starts_no_proxy() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), fail_image: true, ..Fake::default() };
    let p = policy(&f, "proxy", |_| {});
    let e = run(&fake, &p, &["true"]).unwrap_err();
    assert!(e.to_string().contains("no such image"), "{e}");
    assert_eq!(calls(&fake), ["collect_orphans", "ensure_image codex-sandbox"]);
}

#[test]
fn a_loopback_resolver_for_the_proxy_is_refused_before_the_engine_is_asked() {
    let f = fixture();
    let fake = Fake::default();
    let p = policy_with_dns(&f, "proxy", "127.0.0.1:5353", |_| {});
    let e = run(&fake, &p, &["true"]).unwrap_err().to_string();
    assert!(e.contains("127.0.0.1:5353 is a loopback address") && e.contains("companion container"), "{e}");
    assert!(calls(&fake).is_empty() && !f.wd.join(".codex").exists());
}

#[test]
fn a_failed_run_still_stops_the_proxy() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), fail_run: true, ..Fake::default() };
    let p = policy(&f, "proxy", |_| {});
    let e = run(&fake, &p, &["true"]).unwrap_err();
    assert!(e.to_string().contains("the container died"), "{e}");
    let seen = fake.seen.borrow();
    let proxy = env_of(seen.plan.as_ref().unwrap(), "HTTPS_PROXY").unwrap();
    assert!(!answers(proxy.trim_start_matches("http://").trim_end_matches('/')));
    assert_eq!(calls(&fake).last().map(String::as_str), Some("stop_companion"));
}

#[test]
fn the_api_key_stays_with_the_relay_and_the_session_gets_a_placeholder() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    let dns = dns_server::TestDns::start(dns_server::Zone::new(60).addr("api.openai.com", "192.0.2.10"));
    let mut p = policy_with_dns(&f, "allowlist", &dns.addr.to_string(), |_| {});
    p.env.openai_api_key = Some("sk-REAL-SECRET".into());
    run(&fake, &p, &["true"]).unwrap();
    // One companion, with the relay only; its beacon is the verification target (no network beacon).
    assert_eq!(
        calls(&fake),
        [
            "collect_orphans",
            "ensure_image codex-sandbox",
            "start_companion default relay",
            "gateway default",
            "run",
            "stop_companion"
        ]
    );
    let job = fake.job.borrow().clone().unwrap().relay.unwrap();
    assert_eq!((job.key.as_str(), job.upstream.as_str()), ("sk-REAL-SECRET", crate::codex_layer::DEFAULT_API));
    let seen = fake.seen.borrow();
    let (plan, files) = (seen.plan.as_ref().unwrap(), seen.files.as_ref().unwrap());
    assert_eq!(env_of(plan, "OPENAI_API_KEY"), Some(crate::codex_layer::PLACEHOLDER_KEY));
    let relay = env_of(plan, "OPENAI_BASE_URL").unwrap().to_string();
    assert!(relay.starts_with("http://127.0.0.1:") && relay.ends_with("/v1"), "{relay}");
    assert!(files.managed_config.contains(&format!("openai_base_url = \"{relay}\"")), "{}", files.managed_config);
    assert_eq!(seen.verify_target_answered, Some(true), "the companion's beacon");
    // The key is nowhere the session can see.
    let everything = format!("{:?}{:?}{}", plan.extra_env, plan.command, files.managed_config);
    assert!(!everything.contains("SECRET"), "{everything}");
    assert!(files.extra.iter().all(|(_, d)| !String::from_utf8_lossy(d).contains("SECRET")));
    // The firewall opens the relay's port.
    let v4 = String::from_utf8_lossy(&files.extra.iter().find(|(n, _)| n == "firewall.v4").unwrap().1).into_owned();
    let port = relay.trim_end_matches("/v1").rsplit(':').next().unwrap().to_string();
    assert!(v4.contains(&format!("--dport {port} -m comment --comment \"codex-box service\"")), "{v4}");
}

#[test]
fn without_a_key_no_companion_starts_and_the_network_beacon_is_the_target() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    let dns = dns_server::TestDns::start(dns_server::Zone::new(60).addr("api.openai.com", "192.0.2.10"));
    let p = policy_with_dns(&f, "allowlist", &dns.addr.to_string(), |_| {});
    run(&fake, &p, &["true"]).unwrap();
    assert_eq!(
        calls(&fake),
        ["collect_orphans", "ensure_image codex-sandbox", "gateway default", "beacon default", "run"]
    );
    let seen = fake.seen.borrow();
    let plan = seen.plan.as_ref().unwrap();
    assert!(env_of(plan, "OPENAI_API_KEY").is_none() && env_of(plan, "OPENAI_BASE_URL").is_none());
    assert!(!seen.files.as_ref().unwrap().managed_config.contains("openai_base_url"));
}

#[test]
fn an_api_key_in_auth_json_goes_to_the_relay_and_the_file_stays_out() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    let dns = dns_server::TestDns::start(dns_server::Zone::new(60).addr("api.openai.com", "192.0.2.10"));
    let auth = f.wd.join("auth.json");
    std::fs::write(&auth, r#"{"OPENAI_API_KEY": "sk-FROM-AUTH-JSON", "tokens": null}"#).unwrap();
    let p = policy_with_dns(&f, "allowlist", &dns.addr.to_string(), |a| a.auth_file = Some(auth.clone()));
    run(&fake, &p, &["true"]).unwrap();
    let job = fake.job.borrow().clone().unwrap().relay.unwrap();
    assert_eq!(job.key, "sk-FROM-AUTH-JSON");
    let seen = fake.seen.borrow();
    let plan = seen.plan.as_ref().unwrap();
    assert_eq!(plan.home.auth, None, "auth.json is not mounted");
    assert_eq!(env_of(plan, "OPENAI_API_KEY"), Some(crate::codex_layer::PLACEHOLDER_KEY));
    // A ChatGPT sign-in stays as it is (mounted read-only; no relay for it yet).
    drop(seen);
    std::fs::write(&auth, r#"{"OPENAI_API_KEY": null, "tokens": {"id_token": "x"}}"#).unwrap();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    run(&fake, &p, &["true"]).unwrap();
    assert!(fake.job.borrow().is_none(), "no companion");
    assert!(fake.seen.borrow().plan.as_ref().unwrap().home.auth.is_some());
}

#[test]
fn a_secret_goes_to_the_proxys_job_and_only_its_sessions_ca_to_the_session() {
    let f = fixture();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    let mut args = SessionArgs {
        work_dir: Some(f.wd.clone()),
        egress: "proxy".into(),
        trust: true,
        dns_server: Some("198.18.0.53:53".into()),
        allow_domain: vec!["api.bound.test".into()],
        secret: vec!["TOKEN=api.bound.test".into()],
        ..SessionArgs::default()
    };
    let env = HostEnv {
        state_dir: Some(f.state.join("codex-box")),
        vars: crate::host_env::EnvVars::from_pairs([("TOKEN", "tok-SECRET")]),
        ..HostEnv::default()
    };
    let p = SessionPolicy::build(&args, env.clone(), &f.wd).unwrap();
    run(&fake, &p, &["true"]).unwrap();
    let job = fake.job.borrow().clone().unwrap().proxy.unwrap().intercept.unwrap();
    assert_eq!(job.hosts.len(), 1);
    assert_eq!(job.hosts[0].host, "api.bound.test");
    assert_eq!(job.hosts[0].headers[0].2, "Bearer tok-SECRET");
    let seen = fake.seen.borrow();
    let (plan, files) = (seen.plan.as_ref().unwrap(), seen.files.as_ref().unwrap());
    // The session trusts the session's CA, and holds neither the value nor any key.
    let ca = String::from_utf8_lossy(&files.ca_pem).into_owned();
    assert_eq!(ca.matches("BEGIN CERTIFICATE").count(), 1, "{ca}");
    let everything = format!("{:?}{:?}{}{ca}", plan.extra_env, plan.command, files.managed_config);
    assert!(!everything.contains("SECRET") && !everything.contains("PRIVATE KEY"), "{everything}");
    assert!(files.extra.iter().all(|(_, d)| !String::from_utf8_lossy(d).contains("SECRET")));
    drop(seen);
    // Without secrets: no intercept, no CA.
    args.secret.clear();
    let fake = Fake { gateway: Some("127.0.0.1".parse().unwrap()), ..Fake::default() };
    run(&fake, &SessionPolicy::build(&args, env, &f.wd).unwrap(), &["true"]).unwrap();
    assert!(fake.job.borrow().clone().unwrap().proxy.unwrap().intercept.is_none());
    assert!(fake.seen.borrow().files.as_ref().unwrap().ca_pem.is_empty());
}
