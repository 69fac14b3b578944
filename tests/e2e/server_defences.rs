//! The HTTP server under hostile clients (issue 11, items 9, 10 and 7's start-up part), against
//! the real binary: half-open and idle connections under a low open-files limit, SIGTERM while
//! log streams and half-open requests are open, and a stored record that cannot be read. The
//! fake `packer` stands in only to keep a bake running or to finish one at once.

use crate::harness::*;
use serde_json::{Value, json};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A unique marker in kiln's environment: every supervisor and Packer process inherits it.
fn marker() -> (String, String) {
    (
        "KILN_TEST_MARK".to_string(),
        uuid::Uuid::new_v4().to_string(),
    )
}

fn start(data: &Path, yaml: &str, env: &[(&str, &str)], nofile: Option<(u64, u64)>) -> Kiln {
    std::fs::create_dir_all(data).unwrap();
    let config = data.join("kiln.yml");
    std::fs::write(&config, yaml).unwrap();
    Kiln::start_custom(data, &config, env, |cmd| {
        if let Some((soft, hard)) = nofile {
            // SAFETY: setrlimit is async-signal-safe; it only limits the child about to exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: soft,
                        rlim_max: hard,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
    })
}

/// One request with a short read timeout: a server that cannot answer fails the test quickly.
fn quick(addr: &str, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut s = connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no answer: {text:?}"))?;
    Ok((status, text))
}

/// A connection that gives up after 2 s (a server that accepts nothing fills its backlog, and
/// then a plain connect waits for minutes).
fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// `n` connections that never finish a request: every other one sends half a request head,
/// the rest send nothing.
fn half_open(addr: &str, n: usize) -> Vec<TcpStream> {
    // Stops at the first connection that cannot be made: the server takes no more.
    (0..n)
        .map_while(|i| {
            let mut s = connect(addr).ok()?;
            if i % 2 == 0 {
                let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: kiln\r\nX-Slow: ");
            }
            Some(s)
        })
        .collect()
}

/// How long until the server closes `s` (it reads EOF or a reset), at most `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(t.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(_) => return Some(t.elapsed()),
        }
    }
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn soft_open_files_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    line.split_whitespace().nth(3).unwrap().to_string()
}

#[test]
fn hundreds_of_half_open_connections_under_a_low_file_limit_leave_health_and_bakes_answering() {
    let data = tempfile::tempdir().unwrap();
    let kiln = start(data.path(), &fake_packer_config(""), &[], Some((256, 256)));
    assert_eq!(soft_open_files_limit(kiln.pid()), "256");
    let mut held = half_open(&kiln.addr, 500);
    assert!(held.len() >= 400, "only {} connections opened", held.len());
    std::thread::sleep(Duration::from_millis(300));

    let t = Instant::now();
    let (status, body) = quick(&kiln.addr, "GET", "/health", "").expect("/health answers");
    assert_eq!(status, 200, "{body}");
    let health = t.elapsed();
    let request = json!({"package": "nginx", "base_os": "ubuntu"}).to_string();
    let (status, body) = quick(&kiln.addr, "POST", "/api/v1/us-east-1/bake", &request)
        .expect("a bake request answers");
    assert_eq!(status, 200, "{body}");
    assert!(
        open_files(kiln.pid()) < 256,
        "kiln keeps below its file limit"
    );
    eprintln!(
        "{} half-open connections: /health answered in {health:?}; kiln holds {} files",
        held.len(),
        open_files(kiln.pid())
    );
    // The flood goes on while the bake runs: the bake still settles.
    held.extend(half_open(&kiln.addr, 200));
    let id = serde_json::from_str::<Value>(body.split("\r\n\r\n").nth(1).unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = quick(
            &kiln.addr,
            "GET",
            &format!("/api/v1/us-east-1/status/{id}"),
            "",
        )
        .expect("status answers");
        if text.contains("\"COMPLETED\"") {
            break;
        }
        assert!(Instant::now() < deadline, "bake never completed: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(held);
}

#[test]
fn the_open_files_soft_limit_is_raised_to_the_hard_limit_at_start() {
    let data = tempfile::tempdir().unwrap();
    let kiln = start(data.path(), &fake_packer_config(""), &[], Some((256, 4096)));
    assert_eq!(soft_open_files_limit(kiln.pid()), "4096");
}

#[test]
fn idle_and_half_open_connections_are_dropped_after_the_header_read_timeout() {
    let data = tempfile::tempdir().unwrap();
    let kiln = start(
        data.path(),
        &fake_packer_config("  http:\n    headerReadTimeout: 1s"),
        &[],
        None,
    );
    let opened = Instant::now();
    let mut silent = TcpStream::connect(&kiln.addr).unwrap();
    let mut partial = TcpStream::connect(&kiln.addr).unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: k")
        .unwrap();
    // A kept-alive connection: one whole request and its answer, then nothing.
    let mut kept = TcpStream::connect(&kiln.addr).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: kiln\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut first = [0u8; 512];
    let n = kept.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // The answer's body may still be in flight: drain it before timing the idle wait.
    std::thread::sleep(Duration::from_millis(100));
    kept.set_nonblocking(true).unwrap();
    let _ = kept.read(&mut first);
    kept.set_nonblocking(false).unwrap();

    for (what, s) in [
        ("a silent connection", &mut silent),
        ("half a request head", &mut partial),
        ("an idle kept-alive connection", &mut kept),
    ] {
        let closed = closed_within(s, Duration::from_secs(5)).map(|_| opened.elapsed());
        assert!(
            closed.is_some_and(|t| t < Duration::from_secs(4)),
            "{what} was not dropped after the 1s header-read timeout ({closed:?})"
        );
        eprintln!("{what}: dropped {closed:?} after it was opened");
    }
    let (status, _) = quick(&kiln.addr, "GET", "/health", "").unwrap();
    assert_eq!(status, 200);
}

#[test]
fn a_request_whose_body_stalls_is_answered_408_after_the_request_timeout() {
    let data = tempfile::tempdir().unwrap();
    let kiln = start(
        data.path(),
        &fake_packer_config("  http:\n    requestTimeout: 1s"),
        &[],
        None,
    );
    let mut s = connect(&kiln.addr).unwrap();
    let t = Instant::now();
    s.write_all(
        b"POST /api/v1/us-east-1/bake HTTP/1.1\r\nHost: kiln\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"package\": ",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut took = None;
    // Until the JSON body is complete (or kiln closes, or 5 s pass).
    while !answer.ends_with(b"}") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                took.get_or_insert(t.elapsed());
                answer.extend_from_slice(&chunk[..n]);
            }
        }
    }
    let took = took.expect("kiln answers a stalled body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("kiln.http.requestTimeout"), "{answer}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    eprintln!("a stalled body was answered 408 after {took:?}");
}

/// Opens the live log stream of a bake and reads until its first log event.
fn open_stream(addr: &str, id: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/kiln/v1/bakes/{id}/logs/stream HTTP/1.1\r\nHost: kiln\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("data:") {
        let n = s.read(&mut buf).expect("the stream sends the log");
        assert!(n > 0, "stream closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

fn wait_for_log(kiln: &Kiln, id: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kiln.log(id).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "'{needle}' never appeared; log: {}",
            kiln.log(id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_nothing_left(mark: &str, kiln_pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<String> = processes_mentioning(mark)
            .into_iter()
            .filter(|p| !p.starts_with(&format!("{kiln_pid}:")))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_ends_live_log_streams_and_exits_within_seconds_leaving_the_bake_running() {
    let data = tempfile::tempdir().unwrap();
    let (mk, mv) = marker();
    let env = [
        (mk.as_str(), mv.as_str()),
        ("FAKE_PACKER_MODE", "hang"),
        ("FAKE_PACKER_MAX_SECONDS", "90"),
    ];
    let yaml = fake_packer_config("");
    let mut kiln = start(data.path(), &yaml, &env, None);
    let id = kiln.bake_id(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    );
    wait_for_log(&kiln, &id, "Waiting for instance");
    let mut streams: Vec<TcpStream> = (0..3).map(|_| open_stream(&kiln.addr, &id)).collect();
    let held = half_open(&kiln.addr, 100);

    // A watchdog: a kiln that does not exit is killed after 15 s, and the timing below fails.
    let pid = kiln.pid();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(15));
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let t = Instant::now();
    kiln.stop();
    let took = t.elapsed();
    eprintln!(
        "kiln exited {took:?} after SIGTERM with 3 log streams and 100 half-open connections"
    );
    assert!(
        took < Duration::from_secs(5),
        "kiln took {took:?} to exit after SIGTERM"
    );
    for s in &mut streams {
        let mut rest = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.read_to_end(&mut rest)
            .expect("the stream ends with EOF, not a reset or a hang");
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.contains("event: stopping") && rest.ends_with("0\r\n\r\n"),
            "the stream ends cleanly: {rest:?}"
        );
    }
    drop(held);
    assert!(
        !processes_mentioning(&mv).is_empty(),
        "the bake's Packer keeps running while kiln is down"
    );

    let kiln = start(data.path(), &yaml, &env, None);
    wait_for_log(&kiln, &id, "re-attached");
    let s = kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
    assert_eq!(s["state"], "RUNNING");
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/cancel/{id}")).status,
        200
    );
    assert_nothing_left(&mv, kiln.pid());
    drop(watchdog);
}

#[test]
fn a_stored_bake_that_cannot_be_read_does_not_stop_start_up() {
    let data = tempfile::tempdir().unwrap();
    let (mk, mv) = marker();
    let env = [
        (mk.as_str(), mv.as_str()),
        ("FAKE_PACKER_MODE", "hang"),
        ("FAKE_PACKER_MAX_SECONDS", "90"),
    ];
    let yaml =
        fake_packer_config("").replace("killGrace: 1s", "killGrace: 1s\n    maxConcurrent: 1");
    let mut kiln = start(data.path(), &yaml, &env, None);
    let running = kiln.bake_id(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    );
    let queued = kiln.bake_id(
        "us-east-1",
        &json!({"package": "curl", "base_os": "ubuntu"}),
    );
    wait_for_log(&kiln, &running, "Waiting for instance");
    kiln.kill();
    let db = rusqlite::Connection::open(data.path().join("kiln.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE bakes SET request = '{not json' WHERE id = ?1",
            [&queued],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);

    let kiln = start(data.path(), &yaml, &env, None);
    assert_eq!(kiln.get("/health").status, 200);
    wait_for_log(&kiln, &running, "re-attached");
    let err = std::fs::read_to_string(&kiln.stderr).unwrap();
    assert!(
        err.contains("skipping a stored bake that cannot be read") && err.contains(&queued),
        "{err}"
    );
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/cancel/{running}"))
            .status,
        200
    );
    assert_nothing_left(&mv, kiln.pid());
}
