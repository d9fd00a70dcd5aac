//! The Windows backend: a write-restricted token, temporary ACEs on the writable roots and protected
//! paths, and a job object that kills the whole tree (see `plan` for how the boundary works).
//!
//! Enforced: writes only in the writable roots (and wherever Everyone may write), .git/.codex/.agents
//! and protected paths read-only, no administrator rights or privileges, the process tree dies with
//! codex-box. NOT enforced: reads (hidden paths stay readable), the network, resource limits, a
//! private temporary directory. Because of that the sandbox always runs degraded on Windows and
//! needs `--allow-degraded` (unless the policy asks for nothing it cannot do).
//!
//! `plan` and `cmdline` are pure and unit-tested on Linux; `apply` and `security` (Win32 calls through
//! windows-sys) exist only on Windows, are checked by `cargo check --target x86_64-pc-windows-gnu`,
//! and have not been run by this project's CI.

pub mod cmdline;
pub mod plan;

#[cfg(windows)]
mod apply;
#[cfg(windows)]
mod security;

#[cfg(windows)]
pub use apply::run;

#[derive(Debug, thiserror::Error)]
pub enum WindowsError {
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error("the Windows sandbox cannot enforce: {}; pass --allow-degraded to run anyway, or use the container mode (WSL2)", .0.join("; "))]
    Degraded(Vec<String>),
    #[error("command not found: `{0}` (searched PATH)")]
    NotFound(String),
    #[error("cannot {what}: Windows error {code}")]
    Win32 { what: String, code: u32 },
    #[error("cannot create the placeholder {path} that keeps it read-only: {error}")]
    Placeholder { path: std::path::PathBuf, error: std::io::Error },
}

impl WindowsError {
    /// The shell's exit code for a command that could not be run.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            WindowsError::NotFound(_) => Some(127),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_names_every_gap_and_the_fix() {
        let e = WindowsError::Degraded(vec!["network: NOT blocked".into(), "reads".into()]);
        let s = e.to_string();
        assert!(s.contains("network: NOT blocked; reads") && s.contains("--allow-degraded"), "{s}");
        assert_eq!(WindowsError::NotFound("x".into()).exit_code(), Some(127));
    }
}
