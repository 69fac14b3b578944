//! `kiln deploy apply`: asks the running kiln to reload its config file
//! (`POST /api/kiln/v1/reload`) and prints the answer. The server is found the way it was
//! configured: the data dir's `kiln.addr` (written by `kiln serve` once it listens) wins, else
//! `server.address:server.port` from the same config file.

use super::cli::ApplyArgs;
use anyhow::{Context, bail};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

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

/// A bodiless HTTP/1.1 POST; returns the status and the body.
fn post(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("kiln answered something that is not HTTP");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("kiln answered without a status")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
