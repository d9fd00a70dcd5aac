//! Live refresh of the allow sets while a session runs, as pure diffs.
//!
//! A [`RefreshState`] remembers, for every address learned from a name, when it expires (the
//! answer's TTL), plus the explicit IPs/CIDRs, and the aggregated sets currently installed.
//! [`plan_refresh`] takes a new [`Resolution`] and the current time and returns the `ipset` lines
//! to add (first) and delete (after), the next state, and how long to wait before resolving again
//! (the smallest TTL, clamped to [`RefreshSettings::min_delay`]..[`RefreshSettings::max_delay`]).
//!
//! What it enforces: an address disappears only once it has been absent for its TTL plus a grace
//! period, so a name that rotates addresses or a transient DNS failure does not cut connections;
//! explicit entries never age out. What it does not: it does not run a timer or touch the kernel —
//! the caller sleeps and applies [`RefreshPlan::ipset_text`] with `ipset restore -exist`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::aggregate::{aggregate, AllowSets};
use super::resolve::Resolution;
use super::rules::{SET_V4, SET_V6};

/// Timing of the refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    /// How long an expired address stays after its TTL.
    pub grace: Duration,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        RefreshSettings {
            grace: Duration::from_secs(300),
            min_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(600),
        }
    }
}

/// What is installed and until when each learned address is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    explicit: Vec<IpNet>,
    learned: BTreeMap<IpAddr, Instant>,
    installed: AllowSets,
}

/// One entry of the current set: a learned address with its expiry, or an explicit network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetEntry {
    Learned { addr: IpAddr, expires: Instant },
    Explicit(IpNet),
}

impl RefreshState {
    /// The state right after the first install of `resolution` and `explicit` at `now`.
    pub fn new(explicit: Vec<IpNet>, resolution: &Resolution, now: Instant) -> Self {
        let mut state = RefreshState { explicit, learned: BTreeMap::new(), installed: AllowSets::default() };
        state.learn(resolution, now);
        state.installed = state.desired();
        state
    }

    /// The aggregated sets the kernel holds.
    pub fn installed(&self) -> &AllowSets {
        &self.installed
    }

    /// Every entry with its expiry, explicit ones first.
    pub fn entries(&self) -> Vec<SetEntry> {
        let explicit = self.explicit.iter().map(|n| SetEntry::Explicit(*n));
        let learned = self.learned.iter().map(|(a, e)| SetEntry::Learned { addr: *a, expires: *e });
        explicit.chain(learned).collect()
    }

    fn learn(&mut self, resolution: &Resolution, now: Instant) {
        for name in &resolution.names {
            let expires = now + name.min_ttl.unwrap_or_default();
            for addr in &name.addrs {
                let e = self.learned.entry(*addr).or_insert(expires);
                *e = (*e).max(expires);
            }
        }
    }

    fn desired(&self) -> AllowSets {
        aggregate(self.learned.keys().copied(), &self.explicit)
    }
}

/// The result of one refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPlan {
    /// Networks to add to the sets (applied first).
    pub add: Vec<IpNet>,
    /// Networks to delete (applied after the additions).
    pub remove: Vec<IpNet>,
    /// When to resolve again.
    pub next_delay: Duration,
    /// The state once the plan is applied.
    pub state: RefreshState,
}

impl RefreshPlan {
    pub fn is_noop(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// `ipset restore -exist` input: additions, then deletions.
    pub fn ipset_text(&self) -> String {
        let set = |n: &IpNet| {
            if matches!(n, IpNet::V4(_)) {
                SET_V4
            } else {
                SET_V6
            }
        };
        let mut out = String::new();
        for n in &self.add {
            let _ = writeln!(out, "add {} {n} -exist", set(n));
        }
        for n in &self.remove {
            let _ = writeln!(out, "del {} {n} -exist", set(n));
        }
        out
    }
}

/// Merges a new resolution at `now` into `state`; see the module doc.
pub fn plan_refresh(
    state: &RefreshState,
    resolution: &Resolution,
    now: Instant,
    settings: &RefreshSettings,
) -> RefreshPlan {
    let mut next = state.clone();
    next.learn(resolution, now);
    next.learned.retain(|_, expires| now < *expires + settings.grace);
    let desired = next.desired();
    let old: BTreeSet<IpNet> = state.installed.nets().collect();
    let new: BTreeSet<IpNet> = desired.nets().collect();
    let add = new.difference(&old).copied().collect();
    let remove = old.difference(&new).copied().collect();
    next.installed = desired;

    let ttl = resolution.names.iter().filter(|n| !n.addrs.is_empty()).filter_map(|n| n.min_ttl).min();
    let ageing = next
        .learned
        .values()
        .map(|e| (*e + settings.grace).saturating_duration_since(now))
        .filter(|d| !d.is_zero())
        .min();
    let wait = match (ttl, ageing) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(settings.min_delay),
    };
    RefreshPlan { add, remove, next_delay: wait.clamp(settings.min_delay, settings.max_delay), state: next }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::resolve::NameResolution;

    fn res(entries: &[(&str, &[&str], u64)]) -> Resolution {
        Resolution {
            names: entries
                .iter()
                .map(|(name, addrs, ttl)| NameResolution {
                    name: name.to_string(),
                    addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
                    min_ttl: (!addrs.is_empty()).then(|| Duration::from_secs(*ttl)),
                    error: None,
                })
                .collect(),
            resolver: String::new(),
        }
    }

    fn show(nets: &[IpNet]) -> Vec<String> {
        nets.iter().map(|n| n.to_string()).collect()
    }

    const S: RefreshSettings = RefreshSettings {
        grace: Duration::from_secs(120),
        min_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(600),
    };

    #[test]
    fn new_addresses_are_added_and_old_ones_age_out_after_ttl_plus_grace() {
        let t0 = Instant::now();
        let explicit = vec!["198.51.100.0/24".parse().unwrap()];
        let state = RefreshState::new(explicit, &res(&[("a.example", &["203.0.113.1"], 60)]), t0);

        // At 60 s the name moved: the new address is added, the old one is kept (grace).
        let p = plan_refresh(&state, &res(&[("a.example", &["203.0.113.9"], 60)]), t0 + Duration::from_secs(60), &S);
        assert_eq!(show(&p.add), ["203.0.113.9/32"]);
        assert!(p.remove.is_empty());
        assert_eq!(p.next_delay, Duration::from_secs(60));
        assert_eq!(p.ipset_text(), "add codex_allow4 203.0.113.9/32 -exist\n");

        // At 181 s the old address (expired at 60 s, grace 120 s) goes; the explicit CIDR stays.
        let p = plan_refresh(&p.state, &res(&[("a.example", &["203.0.113.9"], 60)]), t0 + Duration::from_secs(181), &S);
        assert!(p.add.is_empty());
        assert_eq!(show(&p.remove), ["203.0.113.1/32"]);
        assert_eq!(p.ipset_text(), "del codex_allow4 203.0.113.1/32 -exist\n");
        assert!(p.state.installed().contains("198.51.100.7".parse().unwrap()));
        assert_eq!(p.state.entries()[0], SetEntry::Explicit("198.51.100.0/24".parse().unwrap()));
    }

    #[test]
    fn a_failed_lookup_keeps_addresses_until_they_age_out() {
        let t0 = Instant::now();
        let state = RefreshState::new(vec![], &res(&[("a.example", &["2001:db8::1"], 300)]), t0);
        let failed = res(&[("a.example", &[], 0)]);
        let p = plan_refresh(&state, &failed, t0 + Duration::from_secs(400), &S);
        assert!(p.is_noop());
        // Due to age out at 420 s: come back then, but not sooner than the minimum delay.
        assert_eq!(p.next_delay, Duration::from_secs(30));
        let p = plan_refresh(&p.state, &failed, t0 + Duration::from_secs(420), &S);
        assert_eq!(p.ipset_text(), "del codex_allow6 2001:db8::1/128 -exist\n");
        assert_eq!(p.next_delay, Duration::from_secs(30));
    }

    #[test]
    fn aggregation_changes_are_diffed_as_networks_additions_first() {
        let t0 = Instant::now();
        let state = RefreshState::new(vec![], &res(&[("a.example", &["203.0.113.4"], 3600)]), t0);
        let p = plan_refresh(&state, &res(&[("b.example", &["203.0.113.5"], 3600)]), t0 + Duration::from_secs(10), &S);
        assert_eq!(p.ipset_text(), "add codex_allow4 203.0.113.4/31 -exist\ndel codex_allow4 203.0.113.4/32 -exist\n");
        assert_eq!(p.next_delay, Duration::from_secs(600), "long TTLs are clamped");
    }

    #[test]
    fn a_longer_ttl_extends_the_expiry() {
        let t0 = Instant::now();
        let state = RefreshState::new(vec![], &res(&[("a.example", &["203.0.113.1"], 10)]), t0);
        let p = plan_refresh(&state, &res(&[("a.example", &["203.0.113.1"], 1000)]), t0 + Duration::from_secs(5), &S);
        assert_eq!(
            p.state.entries(),
            [SetEntry::Learned { addr: "203.0.113.1".parse().unwrap(), expires: t0 + Duration::from_secs(1005) }]
        );
    }
}
