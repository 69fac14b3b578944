//! `kiln bakes …`: bakes on a running kiln.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum BakesCommand {
    /// Bakes, newest first (`GET /api/kiln/v1/bakes`).
    List(super::list::ListArgs),
}

pub fn run(cmd: &BakesCommand) -> ExitCode {
    match cmd {
        BakesCommand::List(args) => super::list::run(args),
    }
}
