//! Codex driven by a scripted model: `scripted_model.py` (beside this file) stands in for the model
//! API over HTTPS with a test CA; the test reads every request that reached it.

use std::path::{Path, PathBuf};

/// The scripted model server's source, written into the directory a test host serves it from.
pub const SERVER_PY: &str = include_str!("scripted_model.py");

/// The final message the scripted model sends once it has seen the command's output.
pub const FINAL: &str = "scripted: done";

/// A Codex `config.toml` that talks to the scripted model at `base_url` with the key in
/// `OPENAI_API_KEY`, over HTTP streaming (no WebSocket), without retries or telemetry, trusting `project`.
pub fn codex_config(base_url: &str, project: &str) -> String {
    format!(
        "model = \"gpt-5.1-codex\"\nmodel_provider = \"scripted\"\n\
         check_for_update_on_startup = false\n\
         [model_providers.scripted]\nname = \"scripted\"\nbase_url = \"{base_url}\"\nwire_api = \"responses\"\n\
         env_key = \"OPENAI_API_KEY\"\nsupports_websockets = false\nrequest_max_retries = 0\nstream_max_retries = 0\n\
         [analytics]\nenabled = false\n[otel]\nmetrics_exporter = \"none\"\n\
         [projects.\"{project}\"]\ntrust_level = \"trusted\"\n[notice]\nhide_full_access_warning = true\n"
    )
}

/// The files `PREFIX-N.SUFFIX` the scripted model wrote in `dir`, in the order of N.
fn numbered(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// The requests the scripted model received (request-N.json in `dir`), in order.
pub fn requests(dir: &Path) -> Vec<serde_json::Value> {
    numbered(dir, "request-", ".json")
        .iter()
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect()
}

/// The output of the scripted shell call as it reached the model in a later request, if it did.
pub fn command_output(dir: &Path) -> Option<String> {
    requests(dir).iter().find_map(|r| {
        r["input"].as_array()?.iter().find_map(|i| {
            (i["type"] == "function_call_output" && i["call_id"] == "call_1").then(|| match &i["output"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
    })
}

/// The `Authorization` headers the scripted model received (auth-N.txt in `dir`), in order.
pub fn authorizations(dir: &Path) -> Vec<String> {
    numbered(dir, "auth-", ".txt").iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
}
