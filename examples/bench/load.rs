//! The API load generator: N keep-alive connections, each sending one GET at a time (closed
//! loop, like `wrk`), on a single-threaded runtime so the generator takes at most one of the
//! machine's cores. Latency is measured per request, from writing it to reading its last byte.

use crate::procs;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub secs: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU seconds kiln used during the measured window.
    pub kiln_cpu_s: f64,
    /// CPU seconds this generator used during the measured window.
    pub client_cpu_s: f64,
    /// CPU seconds the rest of the machine (other users' processes) used meanwhile.
    pub others_cpu_s: f64,
}

impl LoadResult {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests, "errors": self.errors, "secs": self.secs,
            "rps": self.rps, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms, "max_ms": self.max_ms,
            "kiln_cpu_s": self.kiln_cpu_s, "client_cpu_s": self.client_cpu_s,
            "others_cpu_s": self.others_cpu_s,
            "kiln_cpu_us_per_request": self.kiln_cpu_s * 1e6 / (self.requests.max(1) as f64),
        })
    }
}

/// GETs `paths` (chosen pseudo-randomly per request) over `conns` connections: `warmup`
/// unmeasured, then `measure`.
pub fn run(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    conns: usize,
    warmup: Duration,
    measure: Duration,
    kiln_pid: u32,
) -> LoadResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let begin = Instant::now();
        let start = begin + warmup;
        let end = start + measure;
        let tasks: Vec<_> = (0..conns)
            .map(|i| {
                let paths = paths.clone();
                tokio::spawn(connection(addr, paths, i as u64, start, end))
            })
            .collect();
        tokio::time::sleep_until(start.into()).await;
        let (kiln0, client0) = (procs::cpu_seconds(kiln_pid), procs::own_cpu_seconds());
        let busy0 = procs::machine_busy_seconds();
        tokio::time::sleep_until(end.into()).await;
        let (kiln1, client1) = (procs::cpu_seconds(kiln_pid), procs::own_cpu_seconds());
        let busy1 = procs::machine_busy_seconds();
        let mut lat = Vec::new();
        let (mut requests, mut errors) = (0, 0);
        for t in tasks {
            let (l, n, e) = t.await.expect("load task");
            lat.extend(l);
            requests += n;
            errors += e;
        }
        lat.sort_unstable();
        let secs = measure.as_secs_f64();
        let pct = |p: f64| crate::percentile_us(&lat, p) / 1000.0;
        LoadResult {
            requests,
            errors,
            secs,
            rps: requests as f64 / secs,
            p50_ms: pct(50.0),
            p90_ms: pct(90.0),
            p99_ms: pct(99.0),
            max_ms: lat.last().copied().unwrap_or(0) as f64 / 1000.0,
            kiln_cpu_s: kiln1 - kiln0,
            client_cpu_s: client1 - client0,
            others_cpu_s: ((busy1 - busy0) - (kiln1 - kiln0) - (client1 - client0)).max(0.0),
        }
    })
}

/// One connection's closed loop. Returns latencies (µs) of the requests inside the measured
/// window, how many completed there, and how many failed (non-200 or I/O errors).
async fn connection(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    seed: u64,
    start: Instant,
    end: Instant,
) -> (Vec<u32>, u64, u64) {
    let mut lat = Vec::with_capacity(1 << 16);
    let (mut done, mut errors) = (0u64, 0u64);
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 64 * 1024];
    let mut stream = None;
    while Instant::now() < end {
        if stream.is_none() {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let path = &paths[(rng % paths.len() as u64) as usize];
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let sent = Instant::now();
        let ok = match exchange(s, req.as_bytes(), &mut buf).await {
            Ok(status) => status == 200,
            Err(_) => {
                stream = None;
                false
            }
        };
        let got = Instant::now();
        if sent >= start && got <= end {
            done += 1;
            if ok {
                lat.push(got.duration_since(sent).as_micros().min(u32::MAX as u128) as u32);
            }
        }
        if !ok {
            errors += 1;
        }
    }
    (lat, done, errors)
}

/// Writes a request and reads its whole response (`Content-Length` framed; kiln's JSON answers
/// always are). Returns the status.
async fn exchange(
    s: &mut tokio::net::TcpStream,
    req: &[u8],
    buf: &mut [u8],
) -> std::io::Result<u16> {
    s.write_all(req).await?;
    let mut have = 0;
    loop {
        if have == buf.len() {
            return Err(std::io::Error::other("response too large"));
        }
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
        let Some(head) = crate::http::find(&buf[..have], b"\r\n\r\n") else {
            continue;
        };
        let text = std::str::from_utf8(&buf[..head]).map_err(std::io::Error::other)?;
        let len = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .ok_or_else(|| std::io::Error::other("no content-length"))?;
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let total = head + 4 + len;
        if total > buf.len() {
            return Err(std::io::Error::other("response too large"));
        }
        while have < total {
            let n = s.read(&mut buf[have..total]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            have += n;
        }
        return Ok(status);
    }
}
