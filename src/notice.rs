//! What codex-box says on stderr besides errors — progress, summaries, notices — and the global
//! `--quiet` that turns them off. Errors (the one line before exit 125, a failing build step's
//! output, why a session ended: out of memory, the process limit) and warnings (what is not as
//! asked: an open egress, limits an engine cannot enforce) are always printed; so is what the user
//! asked for by name (`--log-denials`, `sandbox -v`, `egress`, `doctor`), and the command's own
//! output is never touched.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Set once, from `--quiet`, before anything runs.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `eprintln!` unless `--quiet`: for progress, summaries and notices.
#[macro_export]
macro_rules! notice {
    ($($arg:tt)*) => {
        if !$crate::notice::quiet() {
            eprintln!($($arg)*);
        }
    };
}
