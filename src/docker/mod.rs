//! Container sessions through the Docker Engine API (bollard; the docker CLI is never run).
//!
//! `engine` connects, `context` and `image` make the image, `spec` declares the container as a pure
//! value, `session` runs it and removes it, `gc` removes what a killed codex-box left, `tty` handles
//! the local terminal.

pub mod context;
pub mod engine;
pub mod firewall;
pub mod gc;
pub mod refresh;
pub mod image;
pub mod session;
pub mod spec;
pub mod tty;
