//! kiln's command-line client of a running kiln: `kiln bake`, `kiln bakes list|show|logs|cancel`,
//! `kiln gc` (and `kiln deploy apply`, through [`Server`]). One HTTP helper, over ureq: where
//! the server is, JSON calls with kiln's error shape, and the log stream (Server-Sent Events).
//!
//! The server is `--server URL`, else `$KILN_SERVER`, else the local kiln as configured: the
//! data dir's `kiln.addr` (written by `kiln serve` once it listens), else `server.address:
//! server.port` of the config file.

pub mod bake;
pub mod bakes;
pub mod list;
mod progress;
mod sse;

use anyhow::{Context, anyhow};
use serde_json::Value;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest JSON answer the client reads (a bake view with a 10 MiB log is not one of them).
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// A running kiln.
#[derive(Clone)]
pub struct Server {
    base: String,
    agent: ureq::Agent,
    stream_agent: ureq::Agent,
}

/// An answer: status and JSON (or the text as a JSON string when it is not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// kiln's error message (`message`), else the body; printable on a terminal.
    pub fn message(&self) -> String {
        let text = self.body["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| match &self.body {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        progress::printable(&text)
    }
}

/// GETs `base` + `path`: the status and the JSON body (`kiln bakes list` pages through it).
pub fn get_json(base: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let answer = Server::at(check_base(base)?).get(path)?;
    Ok((answer.status, answer.body))
}

impl Server {
    /// The server to talk to (see the module doc).
    pub fn find(
        explicit: Option<&str>,
        config: Option<&Path>,
        data_dir: Option<PathBuf>,
        port: Option<u16>,
    ) -> anyhow::Result<Server> {
        let from_env = std::env::var("KILN_SERVER").ok().filter(|s| !s.is_empty());
        let base = match explicit.map(String::from).or(from_env) {
            Some(url) => check_base(&url)?,
            None => format!("http://{}", local_addr(config, data_dir, port)?),
        };
        Ok(Server::at(base))
    }

    fn at(base: String) -> Server {
        let agent = |global: Option<Duration>| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                // kiln is usually on this host: an HTTP(S)_PROXY in the environment is not for it.
                .proxy(None)
                .timeout_connect(Some(Duration::from_secs(5)))
                .timeout_global(global)
                .build()
                .into()
        };
        Server {
            base,
            agent: agent(Some(Duration::from_secs(120))),
            // The log stream lasts as long as the bake; kiln sends a keep-alive comment every
            // 15 s, so a stalled connection shows as a read timeout.
            stream_agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .timeout_connect(Some(Duration::from_secs(5)))
                .timeout_recv_body(Some(Duration::from_secs(60)))
                .build()
                .into(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Answer> {
        let answer = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .map_err(|e| self.unreachable(e))?;
        read_answer(answer)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        let answer = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|e| self.unreachable(e))?;
        read_answer(answer)
    }

    pub fn post_empty(&self, path: &str) -> anyhow::Result<Answer> {
        let answer = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_empty()
            .map_err(|e| self.unreachable(e))?;
        read_answer(answer)
    }

    /// The bake's log stream from byte `from`, as a reader of SSE text.
    fn stream(&self, id: &str, from: usize) -> anyhow::Result<impl Read + use<>> {
        let path = format!("/api/kiln/v1/bakes/{}/logs/stream?from={from}", segment(id));
        let answer = self
            .stream_agent
            .get(format!("{}{path}", self.base))
            .header("Accept", "text/event-stream")
            .call()
            .map_err(|e| self.unreachable(e))?;
        if answer.status() != 200 {
            return Err(anyhow!("{}", read_answer(answer)?.message()));
        }
        Ok(answer.into_body().into_reader())
    }

    fn unreachable(&self, e: ureq::Error) -> anyhow::Error {
        anyhow!(
            "cannot reach kiln at {}: {e} (is `kiln serve` running? set --server or KILN_SERVER)",
            self.base
        )
    }
}

fn read_answer(mut answer: ureq::http::Response<ureq::Body>) -> anyhow::Result<Answer> {
    let status = answer.status().as_u16();
    let text = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .context("reading kiln's answer")?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Answer { status, body })
}

/// A server URL: `http(s)://host[:port]`, without a path, query or credentials.
fn check_base(url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            anyhow!("--server / KILN_SERVER '{url}' must start with http:// or https://")
        })?;
    if rest.is_empty()
        || rest.contains(['/', '?', '#', '@'])
        || rest.chars().any(char::is_whitespace)
    {
        return Err(anyhow!(
            "--server / KILN_SERVER '{url}' must be http(s)://host[:port], with no path, query or user"
        ));
    }
    Ok(url.to_string())
}

/// A bake id as one URL path segment: every byte outside the unreserved set percent-encoded
/// (hand-written: ureq takes a URL string, and this is the only encoding the client needs).
pub(crate) fn segment(id: &str) -> String {
    // "." and ".." would be dot-segments, which a URL resolves away.
    if id == "." || id == ".." {
        return id.replace('.', "%2E");
    }
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `kiln.addr` in the data dir, else the configured address (a wildcard means this host). A
/// config that does not load still finds kiln through `--data-dir`.
pub(crate) fn local_addr(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    port: Option<u16>,
) -> anyhow::Result<SocketAddr> {
    let loaded = crate::config::load(config);
    let data_dir = data_dir.or_else(|| loaded.as_ref().ok().map(|l| l.settings.data_dir()));
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
            SocketAddr::new(ip, port.unwrap_or(settings.server.port))
        }
    };
    Ok(match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new("::1".parse()?, addr.port()),
        _ => addr,
    })
}

/// `kiln gc`: runs retention on the server now and says what it freed.
pub fn gc(server: &Server) -> anyhow::Result<bool> {
    let answer = server.post_empty("/api/kiln/v1/gc")?;
    if !answer.ok() {
        eprintln!("kiln gc: {} (HTTP {})", answer.message(), answer.status);
        return Ok(false);
    }
    let b = &answer.body;
    let deleted = b["deleted_bakes"].as_array().map_or(0, Vec::len);
    let removed = b["removed"].as_array().cloned().unwrap_or_default();
    for r in &removed {
        println!(
            "removed {} of bake {} ({})",
            r["kind"].as_str().unwrap_or("?"),
            r["bake"].as_str().unwrap_or("?"),
            progress::bytes(r["bytes"].as_u64().unwrap_or(0))
        );
    }
    println!(
        "freed {} in {} folder(s); deleted {deleted} bake record(s)",
        progress::bytes(b["bytes"].as_u64().unwrap_or(0)),
        removed.len()
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_is_scheme_host_and_port_only() {
        assert_eq!(
            check_base("http://127.0.0.1:8087/").unwrap(),
            "http://127.0.0.1:8087"
        );
        assert_eq!(
            check_base("https://kiln.example").unwrap(),
            "https://kiln.example"
        );
        for bad in [
            "127.0.0.1:8087",
            "ftp://x",
            "http://",
            "http://a/b",
            "http://u:p@host",
            "http://h?x",
            "http://h x",
        ] {
            let e = check_base(bad).unwrap_err().to_string();
            assert!(e.contains("KILN_SERVER"), "{bad}: {e}");
        }
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(segment("6f1c-AB_9.x~"), "6f1c-AB_9.x~");
        assert_eq!(segment("../a b/c?d"), "..%2Fa%20b%2Fc%3Fd");
        assert_eq!(segment("é"), "%C3%A9");
        assert_eq!(segment(".."), "%2E%2E");
    }
}
