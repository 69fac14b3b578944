//! Running Packer so that a bake survives a kiln restart, even a SIGKILL of kiln.
//!
//! kiln never reads Packer's output through a pipe of its own: a dead kiln would take Packer
//! down with it. Instead each run gets a directory and a small supervisor process
//! (`kiln __supervise <run_dir>`, see [`supervise`]) that runs Packer, writes its output to
//! `output.log` and its end to `exit` ([`layout`] lists the files). kiln [`start`]s a run and
//! [`Run::follow`]s it; a restarted kiln [`reattach`]es to the runs the previous one left.
//!
//! Invariants:
//! - Packer runs in a process group of its own and is only ever signalled as a group, so its
//!   plugins and provisioner shells get the signal too ([`signal`]).
//! - Stopping is SIGINT to the group, a grace period, then SIGKILL: Packer cleans up its cloud
//!   resources when interrupted ([`STOP_SIGNAL`] says why SIGINT and not SIGTERM).
//! - Secrets travel only in the supervisor's environment and memory (masked variables reach
//!   Packer as an in-memory var file, [`SecretVars`]), never in a file, and never reach
//!   `output.log` ([`crate::runner::redact`]).
//! - A Packer whose supervisor died is not left to run unsupervised: kiln stops it as it stops
//!   a canceled bake, so it cleans up its cloud resources ([`StoppedBy::SupervisorDied`]).
//! - `output.log` is bounded ([`log`]) and Packer's result lines survive the bound.

mod follow;
mod launch;
pub mod layout;
mod log;
pub mod redact;
mod secret_file;
pub mod signal;
mod supervisor;
mod tail;
pub mod temp;

pub use follow::{Ending, Limits, RunReport, STOP_SIGNAL, StoppedBy};
pub use launch::{Run, reattach, start};
pub use layout::{ExitRecord, RunSpec, SecretVars};
pub use log::{LINE_TRUNCATED, MAX_LINE_BYTES, is_result_line};
pub use secret_file::SecretFile;
pub use signal::{group_alive, signal_group};
pub use supervisor::supervise;
