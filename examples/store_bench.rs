//! The store benchmark (not a timed test): status reads per second and their latency, SQLite
//! against Redis, with 10,000 bakes stored. A status read is what `GET /api/v1/{region}/status/
//! {id}` asks of the store: one bake by id.
//!
//!     cargo run --release --example store_bench
//!
//! It starts a throwaway `redis-server` on a free loopback port (no persistence) and stops it by
//! PID at the end; SQLite is a file in a temp dir (WAL, as kiln runs it). Figures go to
//! BENCHMARKS.md ("Store").

use anyhow::Context;
use kiln::bake::{BakeRecord, Phase, Recipe};
use kiln::store::{BakeStore, RedisStore, SqliteStore};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BAKES: usize = 10_000;
const READS: usize = 50_000;
const THREADS: usize = 4;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn BakeStore> = Arc::new(SqliteStore::open(&dir.path().join("kiln.db"))?);
    let redis = RedisServer::start(dir.path())?;
    let uri = format!("redis://127.0.0.1:{}/0", redis.port);
    let redis_store: Arc<dyn BakeStore> = Arc::new(RedisStore::open(&uri, Duration::from_secs(2))?);
    println!(
        "{BAKES} bakes stored; {READS} status reads (get by id) per run, random ids; \
         {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<8} {:>10} {:>8} {:>12} {:>9} {:>9}",
        "engine", "creates/s", "threads", "reads/s", "p50 µs", "p99 µs"
    );
    for (name, store) in [("sqlite", sqlite), ("redis", redis_store)] {
        let started = Instant::now();
        for i in 0..BAKES {
            store.create(&record(i), true)?;
        }
        let creates = BAKES as f64 / started.elapsed().as_secs_f64();
        for threads in [1, THREADS] {
            let (rate, p50, p99) = reads(&store, threads)?;
            println!("{name:<8} {creates:>10.0} {threads:>8} {rate:>12.0} {p50:>9.0} {p99:>9.0}");
        }
    }
    drop(redis);
    Ok(())
}

/// `READS` reads spread over `threads`: (reads per second, p50 µs, p99 µs).
fn reads(store: &Arc<dyn BakeStore>, threads: usize) -> anyhow::Result<(f64, f64, f64)> {
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(store);
            std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
                let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ t as u64;
                let mut took = Vec::with_capacity(READS / threads);
                for _ in 0..READS / threads {
                    // xorshift: a cheap spread of ids, the same every run.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let id = format!("bake-{}", seed % BAKES as u64);
                    let t0 = Instant::now();
                    let found = store.get(&id)?;
                    took.push(t0.elapsed());
                    anyhow::ensure!(found.is_some_and(|r| r.id == id), "{id} not found");
                }
                Ok(took)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(READS);
    for w in workers {
        all.extend(
            w.join()
                .map_err(|_| anyhow::anyhow!("a reader panicked"))??,
        );
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    Ok((rate, at(0.50), at(0.99)))
}

/// A bake as the bakery stores it (request, recipe, inputs of realistic size).
fn record(i: usize) -> BakeRecord {
    let id = format!("bake-{i}");
    BakeRecord {
        key: format!("bake:aws:hvm:jammy:nginx-{i}"),
        identity: format!("{:064x}", i),
        region: "us-east-1".into(),
        provider: "aws".into(),
        phase: if i.is_multiple_of(10) {
            Phase::Running
        } else {
            Phase::Succeeded
        },
        cause: None,
        request: json!({"package": format!("nginx-{i}"), "base_os": "jammy",
            "cloud_provider_type": "aws", "spinnaker_execution_id": format!("exec-{i}:stage")}),
        recipe: Recipe {
            name: format!("nginx-{i}-all-20260101120000-jammy"),
            version: Some(format!("nginx-{i}-1.0.0")),
            command: [
                "packer",
                "build",
                "-machine-readable",
                "-var",
                "aws_region=us-east-1",
            ]
            .map(String::from)
            .to_vec(),
            variables: [
                ("aws_region", "us-east-1"),
                ("aws_instance_type", "t3.micro"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
            template: "aws-ebs.json".into(),
            source_image: None,
            builder: None,
        },
        inputs: json!({"packages": [format!("nginx-{i}")], "base_os": "jammy", "vm_type": "hvm"}),
        created_ms: 1_800_000_000_000 + i as i64,
        updated_ms: 1_800_000_000_000 + i as i64,
        started_ms: None,
        details: None,
        error: None,
        execution_id: Some(format!("exec-{i}")),
        instance_id: "bench@localhost".into(),
        report: Default::default(),
        id,
    }
}

/// A `redis-server` child on a free loopback port, killed by PID on drop.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start(dir: &std::path::Path) -> anyhow::Result<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start redis-server (apt-get install redis-server)")?;
        let server = RedisServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
