//! Container sessions, for any engine: the one [`SessionPolicy`] (`policy`), the engine-neutral
//! [`Plan`] a backend receives (`plan`), the seam a backend implements ([`Engine`]), and the
//! orchestration that goes from one to the other in a fixed order (`run`) — unit-tested against a
//! recording fake of the seam. The Docker Engine backend lives in `crate::docker`; a new engine is a
//! new folder implementing [`Engine`] plus one line in `crate::app`.

pub mod codex_home;
pub mod egress;
pub mod engine;
pub mod own_home;
pub mod plan;
pub mod policy;
pub mod report;
pub mod run;
#[cfg(test)]
mod run_tests;

pub use engine::Engine;
pub use plan::{Applier, CompanionAddrs, Limits, Outcome, Plan, Refresh, SessionFiles};
pub use policy::{Egress, GitWrite, SessionPolicy, Trust};
pub use run::{check, run, Checked};
