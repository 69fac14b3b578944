//! `kiln deploy apply`: asks the running kiln to reload its config file
//! (`POST /api/kiln/v1/reload`) and prints the answer. The server is found the way it was
//! configured: the data dir's `kiln.addr` (written by `kiln serve` once it listens) wins, else
//! `server.address:server.port` from the same config file.

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where the running kiln is: as `kiln serve` was told.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The port kiln serves on, if it was started with --port.
    #[arg(long)]
    pub port: Option<u16>,
    /// kiln's data dir, if it was started with --data-dir (its kiln.addr file wins).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub(crate) fn apply(config: Option<&Path>, args: &ApplyArgs) -> anyhow::Result<bool> {
    let addr = crate::client::local_addr(config, args.data_dir.clone(), args.port)?;
    let server = crate::client::Server::find(Some(&format!("http://{addr}")), config, None, None)?;
    let answer = server
        .post_empty("/api/kiln/v1/reload")
        .with_context(|| format!("cannot reach kiln at {addr}; is `kiln serve` running?"))?;
    if answer.ok() {
        print_applied(&answer.body);
        return Ok(true);
    }
    eprintln!(
        "kiln at {addr} refused the config (HTTP {}); the old config stays active:",
        answer.status
    );
    eprintln!("  {}", answer.message());
    Ok(false)
}

fn print_applied(answer: &Value) {
    println!("{}", answer["message"].as_str().unwrap_or("reloaded"));
    for (title, key) in [
        ("changed", "changed"),
        ("restart needed for", "restart_needed"),
        ("warning", "warnings"),
    ] {
        for item in answer[key].as_array().into_iter().flatten() {
            println!("  {title}: {}", item.as_str().unwrap_or_default());
        }
    }
}
