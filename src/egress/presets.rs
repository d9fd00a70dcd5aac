//! Presets: the names a tool needs, by tool (`presets/presets.toml`, versioned data compiled in).
//! `--allow-preset NAME` and `[egress] presets = [...]` add a preset's `allow` names to the
//! allowlist in both egress modes, and its `proxy` patterns in proxy mode (which can enforce them).
//!
//! Pure: parsing the embedded table, looking a preset up, and finding the presets that would allow
//! a refused name (for the hints at the end of a session).

use std::sync::OnceLock;

use super::entry_types::NameError;

/// The embedded table.
pub const DATA: &str = include_str!("../../presets/presets.toml");

/// One preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    /// Exact names (both egress modes).
    pub allow: Vec<&'static str>,
    /// Patterns only the proxy enforces.
    pub proxy: Vec<&'static str>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    description: String,
    allow: Vec<String>,
    #[serde(default)]
    proxy: Vec<String>,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Every preset, by name (parsed once; the table is checked by the unit tests).
pub fn all() -> &'static [Preset] {
    static ALL: OnceLock<Vec<Preset>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut table: toml::Table = DATA.parse().expect("presets/presets.toml parses");
        table.remove("version");
        let mut out: Vec<Preset> = table
            .into_iter()
            .map(|(name, v)| {
                let raw: Raw = v.try_into().expect("a preset has description, allow and proxy");
                Preset {
                    name: leak(name),
                    description: leak(raw.description),
                    allow: raw.allow.into_iter().map(leak).collect(),
                    proxy: raw.proxy.into_iter().map(leak).collect(),
                }
            })
            .collect();
        out.sort_by_key(|p| p.name);
        out
    })
}

/// The table's version.
pub fn version() -> i64 {
    DATA.parse::<toml::Table>().ok().and_then(|t| t.get("version")?.as_integer()).unwrap_or(0)
}

/// The preset called `name`, or an error listing the known ones.
pub fn get(name: &str) -> Result<&'static Preset, NameError> {
    all().iter().find(|p| p.name == name.trim().to_ascii_lowercase()).ok_or_else(|| NameError::UnknownPreset {
        name: name.to_string(),
        known: all().iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
    })
}

/// Every preset named in `names`, in order, each once; the first unknown one is the error.
pub fn resolve(names: &[String]) -> Result<Vec<&'static Preset>, NameError> {
    let mut out: Vec<&'static Preset> = Vec::new();
    for n in names {
        let p = get(n)?;
        if !out.iter().any(|q| q.name == p.name) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The presets that allow `host` exactly (what the IP firewall would open).
pub fn allowing(host: &str) -> Vec<&'static str> {
    all().iter().filter(|p| p.allow.contains(&host)).map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::entry::parse_entry;
    use crate::egress::Source;

    #[test]
    fn every_preset_entry_is_valid_in_the_mode_that_uses_it() {
        assert!(version() >= 1);
        let names: Vec<&str> = all().iter().map(|p| p.name).collect();
        assert_eq!(names, ["crates", "github", "go", "gradle", "maven", "npm", "pypi"]);
        for p in all() {
            assert!(!p.description.is_empty() && !p.allow.is_empty(), "{}", p.name);
            for e in &p.allow {
                // Exact names, valid for the IP firewall (and so for the proxy).
                assert!(matches!(parse_entry(e, Source::Preset(p.name)), Ok(crate::egress::Target::Name(_))), "{e}");
            }
            for e in &p.proxy {
                crate::proxy::Pattern::parse(e, Source::Preset(p.name)).unwrap_or_else(|err| panic!("{e}: {err}"));
            }
        }
    }

    #[test]
    fn presets_are_found_by_name_and_an_unknown_one_lists_them_all() {
        assert_eq!(get("GitHub").unwrap().name, "github");
        let e = get("gitlab").unwrap_err().to_string();
        assert!(e.contains("\"gitlab\"") && e.contains("github, go, gradle") && e.contains("--preset NAME"), "{e}");
        let r = resolve(&["maven".into(), "gradle".into(), "maven".into()]).unwrap();
        assert_eq!(r.iter().map(|p| p.name).collect::<Vec<_>>(), ["maven", "gradle"]);
        assert_eq!(allowing("repo1.maven.org"), ["gradle", "maven"]);
        assert!(allowing("example.com").is_empty());
    }
}
