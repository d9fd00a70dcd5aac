//! Allowlist sources, merged once and shown with where each entry came from.
//!
//! Sources, in this order: the built-in OpenAI/ChatGPT names ([`BUILTIN_NAMES`]), the value of
//! `OPENAI_ALLOWED_DOMAINS` (space or comma separated, passed in as a string: this module never
//! reads the environment), `--allow-domain` values, and `allow = [...]` of the `[egress]` TOML table
//! ([`super::config::EgressConfig`]). An entry is a host name, an IP address or a CIDR.
//!
//! What it enforces: every entry is validated ([`super::entry`]) and an invalid one is an error
//! naming the entry, its source and the fix; duplicates are merged, keeping every source for
//! display. What it does not: resolve names, or decide what a CIDR opens ([`super::rules`]).
//!
//! [`Source`], [`Target`] and [`NameError`] are declared in [`super::entry_types`] (shared with
//! [`super::entry`]) and re-exported here.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;

use super::entry::parse_entry;
pub use super::entry_types::{NameError, Source, Target};

/// Names the Codex CLI needs: the API, sign-in and token refresh, the ChatGPT backend used with a
/// ChatGPT sign-in, feature flags, and static assets.
pub const BUILTIN_NAMES: &[&str] = &[
    "api.openai.com",
    "auth.openai.com",
    "openai.com",
    "cdn.openai.com",
    "chatgpt.com",
    "chat.openai.com",
    "ab.chatgpt.com",
];

/// One entry with every source that listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub target: Target,
    pub sources: Vec<Source>,
}

/// The raw inputs of the allowlist, as the caller read them.
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    /// Include [`BUILTIN_NAMES`].
    pub builtin: bool,
    /// The value of `OPENAI_ALLOWED_DOMAINS`, if set.
    pub env: Option<&'a str>,
    /// `--allow-domain` values.
    pub flags: &'a [String],
    /// `allow` of the `[egress]` table.
    pub config: &'a [String],
    /// Preset names (`--allow-preset`, `[egress] presets`): their `allow` names.
    pub presets: &'a [String],
}

/// The merged, validated, de-duplicated allowlist, in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

impl Allowlist {
    /// Merges every source; the first invalid entry is the error.
    pub fn merge(inputs: &Inputs<'_>) -> Result<Self, NameError> {
        let mut list = Allowlist::default();
        let mut seen: BTreeMap<Target, usize> = BTreeMap::new();
        let builtin = if inputs.builtin { BUILTIN_NAMES } else { &[] };
        let presets = super::presets::resolve(inputs.presets)?;
        let raw = builtin
            .iter()
            .map(|s| (*s, Source::Builtin))
            .chain(presets.iter().flat_map(|p| p.allow.iter().map(|s| (*s, Source::Preset(p.name)))))
            .chain(inputs.env.into_iter().flat_map(split_list).map(|s| (s, Source::Env)))
            .chain(inputs.flags.iter().map(|s| (s.as_str(), Source::Flag)))
            .chain(inputs.config.iter().map(|s| (s.as_str(), Source::Config)));
        for (input, origin) in raw {
            let target = parse_entry(input, origin)?;
            match seen.get(&target) {
                Some(&i) if !list.entries[i].sources.contains(&origin) => list.entries[i].sources.push(origin),
                Some(_) => {}
                None => {
                    seen.insert(target.clone(), list.entries.len());
                    list.entries.push(Entry { target, sources: vec![origin] });
                }
            }
        }
        Ok(list)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The host names to resolve.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|e| match &e.target {
                Target::Name(n) => Some(n.clone()),
                Target::Net(_) => None,
            })
            .collect()
    }

    /// The explicit IP literals and CIDRs.
    pub fn nets(&self) -> Vec<IpNet> {
        self.entries
            .iter()
            .filter_map(|e| match e.target {
                Target::Net(n) => Some(n),
                Target::Name(_) => None,
            })
            .collect()
    }
}

/// One line per entry: the entry, then its sources.
impl fmt::Display for Allowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.entries.iter().map(|e| e.target.to_string().len()).max().unwrap_or(0);
        for e in &self.entries {
            let sources: Vec<String> = e.sources.iter().map(Source::to_string).collect();
            writeln!(f, "{:<width$}  {}", e.target.to_string(), sources.join(", "))?;
        }
        Ok(())
    }
}

/// Splits an `OPENAI_ALLOWED_DOMAINS`-style value on spaces and commas.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;

    #[test]
    fn sources_are_merged_deduplicated_and_kept() {
        let flags = vec!["API.openai.com".to_string(), "203.0.113.9".to_string()];
        let config = vec!["example.org".to_string(), "203.0.113.9/32".to_string()];
        let list = Allowlist::merge(&Inputs {
            builtin: true,
            env: Some(" pypi.org,files.pythonhosted.org  example.org"),
            flags: &flags,
            config: &config,
            presets: &[],
        })
        .unwrap();
        let api = list.entries().iter().find(|e| e.target.to_string() == "api.openai.com").unwrap();
        assert_eq!(api.sources, vec![Source::Builtin, Source::Flag]);
        let ip = list.entries().last().unwrap();
        assert_eq!(ip.target.to_string(), "203.0.113.9");
        assert_eq!(ip.sources, vec![Source::Flag, Source::Config]);
        assert_eq!(list.names().len(), BUILTIN_NAMES.len() + 3);
        assert_eq!(list.nets(), vec!["203.0.113.9/32".parse::<IpNet>().unwrap()]);
        let shown = list.to_string();
        assert!(
            shown.contains("example.org             OPENAI_ALLOWED_DOMAINS, [egress] allow in the config file\n"),
            "{shown}"
        );
    }

    #[test]
    fn an_invalid_env_entry_names_the_variable() {
        let e = Allowlist::merge(&Inputs { env: Some("ok.com bad!.com"), ..Inputs::default() });
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("invalid allowlist entry \"bad!.com\" (from OPENAI_ALLOWED_DOMAINS)"));
    }
}
