//! codex-box: run the Codex CLI agent, or any command, behind a boundary a prompt injection cannot
//! talk its way out of. See REQUIREMENTS.md for the design.

#[cfg(unix)]
pub mod app;
pub mod ca_certs;
pub mod cli;
pub mod codex_layer;
#[cfg(unix)]
pub mod companion;
pub mod config;
pub mod docker;
pub mod doctor;
pub mod egress;
#[cfg(unix)]
pub mod fs_handle;
pub mod host_env;
pub mod native;
pub mod notice;
pub mod paths;
pub mod policy;
pub mod proxy;
pub mod secrets;
#[cfg(unix)]
pub mod session;
pub mod trust;
