//! Container sessions through the Docker Engine API (bollard; the docker CLI is never run).
//!
//! `engine` connects, `context` and `image` make the image, `spec` declares the container as a pure
//! value, `session` runs it and removes it, `gc` removes what a killed codex-box left, `firewall` and
//! `proxy` set up egress, `tty` handles the local terminal. `gc`, `session`, `spec` and `tty` need a
//! Unix host (uids, termios, signals); on Windows container sessions are not supported yet.

pub mod context;
pub mod engine;
pub mod firewall;
#[cfg(unix)]
pub mod gc;
pub mod image;
pub mod proxy;
pub mod refresh;
#[cfg(unix)]
pub mod session;
#[cfg(unix)]
pub mod spec;
#[cfg(unix)]
pub mod tty;
