//! `kiln bake`: starts a bake on a running kiln (`POST /api/kiln/v1/{region}/bakes`) and follows
//! it to its end — the live log (the SSE stream), its phase, step and elapsed time — then prints
//! the image id or path on stdout (everything else goes to stderr, so `id=$(kiln bake …)`
//! works). Exit codes: 0 succeeded, 1 failed (with the error, the diagnosis and the log's
//! tail), 2 refused or unreachable, 130 canceled from here (Ctrl-C, answered yes).

use super::sse::Events;
use super::{Server, progress, segment};
use anyhow::{Context, anyhow};
use clap::Args;
use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct BakeArgs {
    /// The package(s) to install (Rosco's `package`; several separated by spaces or commas).
    #[arg(long)]
    pub package: String,
    /// The base OS (a base image's id in bakeOptions).
    #[arg(long)]
    pub base_os: String,
    /// The region (default `local` for qemu; required for the others).
    #[arg(long)]
    pub region: Option<String>,
    /// The cloud provider (aws, qemu, …; default: kiln's defaultCloudProviderType).
    #[arg(long)]
    pub provider: Option<String>,
    /// A package artifact: a local file (sent as its absolute file:// path, so the server
    /// must see the same file) or an http(s):// URL. Repeatable.
    #[arg(long = "artifact", value_name = "FILE|URL")]
    pub artifacts: Vec<String>,
    /// An extended attribute, KEY=VALUE. Repeatable.
    #[arg(short = 'e', value_name = "KEY=VALUE")]
    pub extended: Vec<String>,
    /// Bake again even if an identical bake exists.
    #[arg(long)]
    pub rebake: bool,
    /// One status line instead of the live log.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Where the running kiln is.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// kiln's URL, e.g. http://127.0.0.1:8087 (default: $KILN_SERVER, else the local config's).
    #[arg(long)]
    pub server: Option<String>,
}

impl ServerArgs {
    pub fn find(&self, config: Option<&Path>) -> anyhow::Result<Server> {
        Server::find(self.server.as_deref(), config, None, None)
    }
}

/// `kiln bake …`.
pub fn run(config: Option<&Path>, args: &BakeArgs) -> ExitCode {
    let started = (|| {
        let server = args.server.find(config)?;
        let (region, body) = request(args)?;
        Ok::<_, anyhow::Error>((server, region, body))
    })();
    let (server, region, body) = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kiln bake: {e:#}");
            return ExitCode::from(2);
        }
    };
    let path = format!(
        "/api/kiln/v1/{}/bakes{}",
        segment(&region),
        if args.rebake { "?rebake=1" } else { "" }
    );
    let answer = match server.post_json(&path, &body) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kiln bake: {e:#}");
            return ExitCode::from(2);
        }
    };
    if !answer.ok() {
        eprintln!(
            "kiln bake: kiln refused the bake (HTTP {}): {}",
            answer.status,
            answer.message()
        );
        return ExitCode::from(2);
    }
    let view = answer.body["bake"].clone();
    let Some(id) = view["id"].as_str().map(String::from) else {
        eprintln!("kiln bake: kiln's answer has no bake id: {}", answer.body);
        return ExitCode::from(2);
    };
    if answer.body["reused"].as_bool() == Some(true) {
        eprintln!(
            "kiln: reusing bake {id}: {} (--rebake bakes again)",
            answer.body["reason"].as_str().unwrap_or("same identity")
        );
    } else {
        eprintln!("kiln: bake {id} started on {}", server.base());
    }
    follow(&server, &id, args.quiet)
}

/// The bake request from the flags, and its region.
fn request(args: &BakeArgs) -> anyhow::Result<(String, Value)> {
    let provider = args.provider.as_deref();
    let region = match (&args.region, provider) {
        (Some(r), _) => r.clone(),
        (None, Some("qemu")) => "local".to_string(),
        (None, _) => {
            return Err(anyhow!(
                "give --region (only qemu bakes default to `local`)"
            ));
        }
    };
    let mut body = Map::new();
    body.insert("package".into(), args.package.clone().into());
    body.insert("base_os".into(), args.base_os.clone().into());
    body.insert("user".into(), whoami().into());
    if let Some(p) = provider {
        body.insert("cloud_provider_type".into(), p.into());
    }
    if !args.artifacts.is_empty() {
        let artifacts = args
            .artifacts
            .iter()
            .map(|a| artifact(a))
            .collect::<anyhow::Result<Vec<_>>>()?;
        body.insert("package_artifacts".into(), artifacts.into());
    }
    if !args.extended.is_empty() {
        let mut attrs = Map::new();
        for kv in &args.extended {
            let (k, v) = kv
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| anyhow!("-e '{kv}': expected KEY=VALUE"))?;
            attrs.insert(k.to_string(), typed(v));
        }
        body.insert("extended_attributes".into(), attrs.into());
    }
    Ok((region, Value::Object(body)))
}

/// `true`/`false` as booleans (`-e boot_test=true`), everything else as text.
fn typed(v: &str) -> Value {
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(v.to_string()),
    }
}

/// A URL stays as it is; a file becomes its absolute `file://` path (checked to exist here).
fn artifact(a: &str) -> anyhow::Result<Value> {
    let reference =
        if a.starts_with("http://") || a.starts_with("https://") || a.starts_with("file://") {
            a.to_string()
        } else {
            let path = std::fs::canonicalize(a).with_context(|| format!("--artifact {a}"))?;
            if !path.is_file() {
                return Err(anyhow!("--artifact {a}: not a file"));
            }
            format!("file://{}", path.display())
        };
    let name = reference.rsplit('/').next().unwrap_or_default().to_string();
    Ok(json!({"name": name, "reference": reference}))
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "kiln-cli".to_string())
}

/// Set by the SIGINT handler; the follow loop asks what to do.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Routes Ctrl-C to [`INTERRUPTED`] (a flag is all a signal handler may safely set; libc
/// directly, since that is one call and kiln links libc already).
fn catch_ctrl_c() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// What the log reader tells the follow loop.
enum Streamed {
    Text(String),
    End,
    Lost(String),
}

/// Follows bake `id` to its end; the exit code says how it ended.
pub fn follow(server: &Server, id: &str, quiet: bool) -> ExitCode {
    catch_ctrl_c();
    let fancy = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
    let (tx, rx) = mpsc::channel();
    {
        let (server, id) = (server.clone(), id.to_string());
        std::thread::spawn(move || read_stream(&server, &id, &tx));
    }
    let mut view = Value::Null;
    let mut last_poll: Option<Instant> = None;
    let mut said = String::new();
    let mut stream_done = false;
    let mut finished_at: Option<Instant> = None;
    let mut canceled_here = false;
    let mut status_shown = false;
    let err = std::io::stderr();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Streamed::Text(text)) if !quiet => {
                let mut e = err.lock();
                if status_shown {
                    let _ = write!(e, "\r\x1b[2K");
                    status_shown = false;
                }
                let _ = write!(e, "{}", progress::printable(&text));
                if !text.ends_with('\n') {
                    let _ = writeln!(e);
                }
            }
            Ok(Streamed::Text(_)) => {}
            Ok(Streamed::End) => stream_done = true,
            Ok(Streamed::Lost(why)) => {
                eprintln!("kiln: the log stream was lost ({why}); following the bake's state");
                stream_done = true;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => stream_done = true,
        }
        if INTERRUPTED.swap(false, Ordering::SeqCst) {
            if status_shown {
                eprint!("\r\x1b[2K");
                status_shown = false;
            }
            if ask_to_cancel(id) {
                canceled_here = cancel(server, id, &view);
            } else {
                eprintln!("kiln: still following bake {id} (it goes on either way)");
            }
        }
        if last_poll.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            last_poll = Some(Instant::now());
            match server.get(&format!("/api/kiln/v1/bakes/{}", segment(id))) {
                Ok(a) if a.ok() => view = a.body,
                Ok(a) => {
                    eprintln!("kiln: cannot read bake {id}: {}", a.message());
                    return ExitCode::from(2);
                }
                Err(e) => eprintln!("kiln: {e:#}; retrying"),
            }
            let line = progress::status_line(&view, crate::bake::now_ms());
            if fancy {
                eprint!("\r\x1b[2K{line}");
                status_shown = true;
            } else {
                // Plain lines: only when the phase or step changes.
                let key = format!(
                    "{} {}",
                    view["phase"].as_str().unwrap_or(""),
                    progress::current_step(&view).unwrap_or("")
                );
                if key != said {
                    eprintln!("kiln: {line}");
                    said = key;
                }
            }
            let finished = matches!(
                view["phase"].as_str(),
                Some("succeeded" | "failed" | "canceled")
            );
            if finished && finished_at.is_none() {
                finished_at = Some(Instant::now());
            }
        }
        // Done once the state is final and the log is all here (or has had 5 s to arrive).
        if let Some(at) = finished_at
            && (stream_done || at.elapsed() > Duration::from_secs(5))
        {
            break;
        }
    }
    if status_shown {
        eprintln!();
    }
    report(server, &view, canceled_here)
}

/// Prints how the bake ended; the exit code.
fn report(server: &Server, view: &Value, canceled_here: bool) -> ExitCode {
    let timeline = progress::timeline(view);
    if !timeline.is_empty() {
        eprintln!("kiln: timeline");
        for line in timeline {
            eprintln!("{line}");
        }
    }
    if view["phase"] == "succeeded" {
        let images = progress::images(view);
        eprintln!(
            "kiln: bake {} succeeded",
            view["id"].as_str().unwrap_or("?")
        );
        for image in images {
            println!("{image}");
        }
        return ExitCode::SUCCESS;
    }
    for line in progress::failure(view) {
        eprintln!("{}", progress::printable(&line));
    }
    let (id, region) = (
        view["id"].as_str().unwrap_or_default(),
        view["region"].as_str().unwrap_or_default(),
    );
    let logs = server.get(&format!("/api/v1/{}/logs/{}", segment(region), segment(id)));
    if let Ok(a) = logs
        && let Some(log) = a.body["logsContent"].as_str()
    {
        eprintln!("kiln: the log's last lines:");
        for line in progress::tail(log, 20) {
            eprintln!("  {}", progress::printable(line));
        }
    }
    if canceled_here && view["phase"] == "canceled" {
        ExitCode::from(130)
    } else {
        ExitCode::FAILURE
    }
}

/// Asks whether to cancel: y/N on a terminal; from stdin otherwise, where an empty stdin
/// (nobody to answer) cancels, since Ctrl-C was the request.
fn ask_to_cancel(id: &str) -> bool {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    eprint!("\nCancel bake {id}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let read = stdin.lock().read_line(&mut answer);
    match (read, terminal) {
        (Ok(0), false) | (Err(_), false) => true,
        (Ok(_), _) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
        (Err(_), true) => false,
    }
}

/// Cancels through Rosco's cancel endpoint; says whether kiln took it.
fn cancel(server: &Server, id: &str, view: &Value) -> bool {
    let region = view["region"].as_str().unwrap_or("local");
    match server.get(&format!(
        "/api/v1/{}/cancel/{}",
        segment(region),
        segment(id)
    )) {
        Ok(a) if a.ok() => {
            eprintln!("kiln: canceling bake {id}");
            true
        }
        Ok(a) => {
            eprintln!("kiln: kiln did not cancel: {}", a.message());
            false
        }
        Err(e) => {
            eprintln!("kiln: {e:#}");
            false
        }
    }
}

/// Reads the log stream into `tx`, resuming from the last event id after a cut (a kiln
/// restart, a network blip), up to 30 times in a row.
fn read_stream(server: &Server, id: &str, tx: &mpsc::Sender<Streamed>) {
    let mut offset = 0usize;
    let mut failures = 0;
    loop {
        let cut = match server.stream(id, offset) {
            Ok(reader) => {
                let mut events = Events::new(BufReader::new(reader));
                loop {
                    match events.next_event() {
                        Ok(Some(e)) if e.kind.as_deref() == Some("end") => {
                            let _ = tx.send(Streamed::End);
                            return;
                        }
                        Ok(Some(e)) if e.kind.as_deref() == Some("stopping") => {
                            break "kiln is stopping".to_string();
                        }
                        Ok(Some(e)) => {
                            failures = 0;
                            if let Some(next) = e.id.and_then(|i| i.parse().ok()) {
                                offset = next;
                            }
                            if tx.send(Streamed::Text(e.data)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break "the stream ended".to_string(),
                        Err(e) => break e.to_string(),
                    }
                }
            }
            Err(e) => format!("{e:#}"),
        };
        failures += 1;
        if failures > 30 {
            let _ = tx.send(Streamed::Lost(cut));
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A log for stdout: as stored when piped, made printable on a terminal.
fn for_stdout(text: &str) -> std::borrow::Cow<'_, str> {
    if std::io::stdout().is_terminal() {
        progress::printable(text).into()
    } else {
        text.into()
    }
}

/// For `kiln bakes logs`: the whole log, or (following) the log as it grows until the bake ends.
pub fn print_log(server: &Server, id: &str, follow: bool) -> anyhow::Result<bool> {
    if !follow {
        let a = server.get(&format!("/api/kiln/v1/bakes/{}", segment(id)))?;
        if !a.ok() {
            return Err(anyhow!("{}", a.message()));
        }
        let region = a.body["region"].as_str().unwrap_or("local").to_string();
        let logs = server.get(&format!(
            "/api/v1/{}/logs/{}",
            segment(&region),
            segment(id)
        ))?;
        if !logs.ok() {
            return Err(anyhow!("{}", logs.message()));
        }
        let log = logs.body["logsContent"].as_str().unwrap_or_default();
        print!("{}", for_stdout(log));
        return Ok(true);
    }
    let (tx, rx) = mpsc::channel();
    {
        let (server, id) = (server.clone(), id.to_string());
        std::thread::spawn(move || read_stream(&server, &id, &tx));
    }
    let out = std::io::stdout();
    for msg in rx {
        match msg {
            Streamed::Text(t) => {
                let mut o = out.lock();
                let _ = write!(o, "{}", for_stdout(&t));
                if !t.ends_with('\n') {
                    let _ = writeln!(o);
                }
            }
            Streamed::End => return Ok(true),
            Streamed::Lost(why) => return Err(anyhow!("the log stream was lost: {why}")),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: BakeArgs,
    }

    fn parse(argv: &[&str]) -> BakeArgs {
        T::try_parse_from(std::iter::once("kiln-bake").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn flags_become_kilns_bake_request() {
        let dir = tempfile::tempdir().unwrap();
        let deb = dir.path().join("app_1.0_all.deb");
        std::fs::write(&deb, b"x").unwrap();
        let args = parse(&[
            "--package",
            "app",
            "--base-os",
            "bookworm",
            "--provider",
            "qemu",
            "--artifact",
            deb.to_str().unwrap(),
            "--artifact",
            "https://ci.example/app_1.0_all.deb",
            "-e",
            "boot_test=true",
            "-e",
            "note=a=b",
        ]);
        let (region, body) = request(&args).unwrap();
        assert_eq!(region, "local");
        assert_eq!(body["package"], "app");
        assert_eq!(body["base_os"], "bookworm");
        assert_eq!(body["cloud_provider_type"], "qemu");
        let local = format!("file://{}", std::fs::canonicalize(&deb).unwrap().display());
        assert_eq!(body["package_artifacts"][0]["reference"], local.as_str());
        assert_eq!(body["package_artifacts"][0]["name"], "app_1.0_all.deb");
        assert_eq!(
            body["package_artifacts"][1]["reference"],
            "https://ci.example/app_1.0_all.deb"
        );
        assert_eq!(body["extended_attributes"]["boot_test"], true);
        assert_eq!(body["extended_attributes"]["note"], "a=b");
    }

    #[test]
    fn what_cannot_be_a_request_is_refused_before_sending() {
        let no_region = parse(&["--package", "a", "--base-os", "b", "--provider", "aws"]);
        assert!(
            request(&no_region)
                .unwrap_err()
                .to_string()
                .contains("--region")
        );
        let bad_e = parse(&[
            "--package",
            "a",
            "--base-os",
            "b",
            "--region",
            "r",
            "-e",
            "novalue",
        ]);
        assert!(
            request(&bad_e)
                .unwrap_err()
                .to_string()
                .contains("KEY=VALUE")
        );
        let missing = parse(&[
            "--package",
            "a",
            "--base-os",
            "b",
            "--region",
            "r",
            "--artifact",
            "/nonexistent/x.deb",
        ]);
        assert!(
            request(&missing)
                .unwrap_err()
                .to_string()
                .contains("--artifact")
        );
    }
}
