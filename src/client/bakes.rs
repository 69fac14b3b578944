//! `kiln bakes list|show|logs [--follow]|cancel`: bakes on a running kiln (`list` in
//! [`super::list`]).

use super::bake::{ServerArgs, print_log};
use super::{progress, segment};
use anyhow::anyhow;
use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum BakesCommand {
    /// Bakes, newest first (`GET /api/kiln/v1/bakes`).
    List(super::list::ListArgs),
    /// A bake's state, timeline, diagnosis and image.
    Show {
        id: String,
        /// kiln's whole bake view, as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// A bake's log.
    Logs {
        id: String,
        /// Keep printing as the log grows, until the bake ends.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Cancel a queued or running bake.
    Cancel {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub fn run(config: Option<&Path>, cmd: &BakesCommand) -> ExitCode {
    let result = match cmd {
        BakesCommand::List(args) => return super::list::run(args),
        BakesCommand::Show { id, json, server } => {
            server.find(config).and_then(|s| show(&s, id, *json))
        }
        BakesCommand::Logs { id, follow, server } => {
            server.find(config).and_then(|s| print_log(&s, id, *follow))
        }
        BakesCommand::Cancel { id, server } => server.find(config).and_then(|s| cancel(&s, id)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kiln bakes: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn show(server: &super::Server, id: &str, json: bool) -> anyhow::Result<bool> {
    let a = server.get(&format!("/api/kiln/v1/bakes/{}", segment(id)))?;
    if !a.ok() {
        return Err(anyhow!("{}", a.message()));
    }
    let v = &a.body;
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
        return Ok(true);
    }
    println!("{}", progress::status_line(v, crate::bake::now_ms()));
    for (label, key) in [
        ("provider", "provider"),
        ("region", "region"),
        ("key", "rosco_key"),
    ] {
        if let Some(text) = v[key].as_str() {
            println!("{label}: {text}");
        }
    }
    let timeline = progress::timeline(v);
    if !timeline.is_empty() {
        println!("timeline:");
        for line in timeline {
            println!("{line}");
        }
    }
    match v["phase"].as_str() {
        Some("succeeded") => {
            for image in progress::images(v) {
                println!("image: {image}");
            }
        }
        Some("failed" | "canceled") => {
            for line in progress::failure(v) {
                println!("{}", progress::printable(&line));
            }
        }
        _ => {}
    }
    Ok(true)
}

fn cancel(server: &super::Server, id: &str) -> anyhow::Result<bool> {
    let a = server.get(&format!("/api/kiln/v1/bakes/{}", segment(id)))?;
    if !a.ok() {
        return Err(anyhow!("{}", a.message()));
    }
    let region = a.body["region"].as_str().unwrap_or("local").to_string();
    let c = server.get(&format!(
        "/api/v1/{}/cancel/{}",
        segment(&region),
        segment(id)
    ))?;
    if c.ok() {
        println!("{}", c.message());
        Ok(true)
    } else {
        eprintln!("kiln bakes cancel: {}", c.message());
        Ok(false)
    }
}
