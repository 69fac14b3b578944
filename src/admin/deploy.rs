//! `kiln deploy apply`: asks the running kiln to reload its config file
//! (`POST /api/kiln/v1/reload`) and prints the answer. The server is found the way it was
//! configured: the data dir's `kiln.addr` (written by `kiln serve` once it listens) wins, else
//! `server.address:server.port` from the same config file.

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    let addr = server_addr(config, args)?;
    let (status, body) = post(addr, "/api/kiln/v1/reload")
        .with_context(|| format!("cannot reach kiln at {addr}; is `kiln serve` running?"))?;
    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
    if status == 200 {
        print_applied(&answer);
        return Ok(true);
    }
    let reason = answer["message"].as_str().unwrap_or(&body);
    eprintln!("kiln at {addr} refused the config (HTTP {status}); the old config stays active:");
    eprintln!("  {reason}");
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

/// `kiln.addr` in the data dir, else the configured address (a wildcard means this host). A
/// config that does not load still finds kiln through `--data-dir`, so the server's own
/// refusal is what the operator reads.
fn server_addr(config: Option<&Path>, args: &ApplyArgs) -> anyhow::Result<SocketAddr> {
    let loaded = crate::config::load(config);
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| loaded.as_ref().ok().map(|l| l.settings.data_dir()));
    let addr_file = data_dir.map(|d| d.join("kiln.addr"));
    let addr = match addr_file.as_ref().map(|f| (f, std::fs::read_to_string(f))) {
        Some((file, Ok(text))) => text
            .trim()
            .parse::<SocketAddr>()
            .with_context(|| format!("{} does not hold an address", file.display()))?,
        _ => {
            let settings = loaded?.settings;
            let ip: IpAddr = settings.server.address.parse().with_context(|| {
                format!(
                    "server.address '{}' is not an IP address",
                    settings.server.address
                )
            })?;
            SocketAddr::new(ip, args.port.unwrap_or(settings.server.port))
        }
    };
    Ok(match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new("::1".parse()?, addr.port()),
        _ => addr,
    })
}

/// A bodiless POST through ureq (which handles chunked and sized bodies); returns the status and
/// the body. An HTTP error status is an answer to print, not a failure.
fn post(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // kiln is on this host: an HTTP(S)_PROXY in the operator's environment is not for it.
        .proxy(None)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut answer = agent.post(format!("http://{addr}{path}")).send_empty()?;
    let status = answer.status().as_u16();
    let body = answer.body_mut().read_to_string()?;
    Ok((status, body))
}
