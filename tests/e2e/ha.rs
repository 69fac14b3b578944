//! Several kiln instances on one Redis (`--features redis`): any instance answers any bake,
//! one bake per identity across instances, a dead instance's bakes settled as orphaned by a
//! live one, a restarted instance re-attaching its own, and a Redis restart in mid-bake losing
//! nothing. Each test starts its own `redis-server` on a free loopback port (stopped by PID),
//! kiln processes with separate data dirs, and the fake Packers in tests/support; each checks
//! that nothing it started is left running.

use crate::harness::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
/// The test config's `kiln.ha`: beat every second, settle orphans within 4 s (a heartbeat
/// lives 3 s, so a test machine under load may miss two beats without a false orphan).
const ORPHAN_TIMEOUT: Duration = Duration::from_secs(4);

/// A `redis-server` on a free loopback port, with its data dir; stopped by PID on drop. It
/// also holds the instances' shared configDir: instances of one deployment read one config
/// (the bake identity covers the configDir path and its files).
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    config_dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    /// `None` (said loudly) when redis-server is not installed; scripts/test installs it.
    fn start() -> Option<Redis> {
        if !Path::new(REDIS_SERVER).exists() {
            eprintln!(
                "\n*** SKIPPED: {REDIS_SERVER} is missing (apt-get install redis-server) ***\n"
            );
            return None;
        }
        let mut redis = Redis {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            config_dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.up();
        Some(redis)
    }

    /// Starts the server on its port and dir, with the append-only file on (so a restart keeps
    /// the data), and waits until it answers.
    fn up(&mut self) {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM by PID (Redis writes its append-only file and exits), then reap.
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// The URI kiln uses: db 3, so the DB index is honoured end to end.
    fn uri(&self) -> String {
        format!("redis://127.0.0.1:{}/3", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.down();
    }
}

fn config(redis: &Redis, packer: &str, max_concurrent: usize) -> String {
    format!(
        r#"aws:
  enabled: true
  bakeryDefaults:
    templateFile: aws-ebs.json
    baseImages:
    - baseImage: {{id: ubuntu, packageType: deb}}
      virtualizationSettings:
      - {{region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-785db401}}
rosco:
  configDir: {config_dir}
redis:
  connection: {uri}
  timeout: 1000
kiln:
  store: redis
  packerPath: {REPO}/tests/support/{packer}
  jobs:
    killGrace: 1s
    maxConcurrent: {max_concurrent}
  ha:
    heartbeat: 1s
    orphanTimeout: {orphan}s
"#,
        uri = redis.uri(),
        config_dir = redis.config_dir.path().display(),
        orphan = ORPHAN_TIMEOUT.as_secs(),
    )
}

/// A kiln on `redis` with its own data dir and process marker (`KILN_TEST_MARK=<uuid>`, which
/// its supervisors and Packer inherit).
struct Instance {
    kiln: Kiln,
    mark: String,
    _data: tempfile::TempDir,
}

fn instance(yaml: &str, env: &[(&str, &str)]) -> Instance {
    let data = tempfile::tempdir().unwrap();
    let mark = format!("KILN_TEST_MARK={}", uuid::Uuid::new_v4());
    let kiln = start(data.path(), yaml, &mark, env);
    Instance {
        kiln,
        mark,
        _data: data,
    }
}

fn start(data: &Path, yaml: &str, mark: &str, env: &[(&str, &str)]) -> Kiln {
    let config = data.join("kiln.yml");
    std::fs::write(&config, yaml).unwrap();
    let (k, v) = mark.split_once('=').unwrap();
    let mut all = vec![(k, v)];
    all.extend_from_slice(env);
    Kiln::start_env(data, &config, &all)
}

fn instance_id(kiln: &Kiln) -> String {
    std::fs::read_to_string(kiln.data.join("instance-id"))
        .unwrap()
        .trim()
        .to_string()
}

fn request(package: &str) -> Value {
    json!({"package": package, "base_os": "ubuntu"})
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// Polls `GET path` (200s only: a 503 while Redis is away is waited out) until `done` holds.
fn poll(kiln: &Kiln, path: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let r = kiln.get(path);
        if r.status == 200 && done(&r.json()) {
            return r.json();
        }
        assert!(
            Instant::now() < deadline,
            "{path}: still {} {}",
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_log(kiln: &Kiln, id: &str, needle: &str) {
    let path = format!("/api/v1/us-east-1/logs/{id}");
    poll(kiln, &path, Duration::from_secs(30), |l| {
        l["logsContent"].as_str().unwrap_or("").contains(needle)
    });
}

fn view(kiln: &Kiln, id: &str) -> Value {
    kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json()
}

/// Waits until no process carries `mark` but the kiln processes named.
fn assert_nothing_left(mark: &str, kilns: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<String> = processes_mentioning(mark)
            .into_iter()
            .filter(|p| !kilns.iter().any(|k| p.starts_with(&format!("{k}:"))))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {left:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill_marked(mark: &str) {
    for p in processes_mentioning(mark) {
        let pid = p.split(':').next().unwrap_or("");
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
}

#[test]
fn a_bake_on_one_instance_is_followed_listed_and_canceled_on_the_other() {
    let Some(redis) = Redis::start() else { return };
    let yaml = config(&redis, "fake-packer", 4);
    let hang = [("FAKE_PACKER_MODE", "hang")];
    let (a, b) = (instance(&yaml, &hang), instance(&yaml, &hang));
    let id = id_of(&a.kiln.bake("us-east-1", &request("nginx")));
    wait_for_log(&b.kiln, &id, "Waiting for instance");
    let s = b.kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
    assert_eq!(s["state"], "RUNNING");
    assert_eq!(view(&b.kiln, &id)["phase"], "running");

    let all = b.kiln.get("/status/all").json();
    let a_id = instance_id(&a.kiln);
    assert_eq!(all["instance"], instance_id(&b.kiln));
    assert_eq!(all["instances"][&a_id]["status"], "RUNNING", "{all}");
    assert_eq!(
        all["instances"][&a_id]["bakes"][0]["id"],
        id.as_str(),
        "{all}"
    );
    assert_eq!(
        all["instances"][instance_id(&b.kiln)]["status"],
        "IDLE",
        "{all}"
    );

    // Canceled through B: A owns the Packer run and stops it.
    let r = b.kiln.get(&format!("/api/v1/us-east-1/cancel/{id}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_nothing_left(&a.mark, &[a.kiln.pid()]);
    let s = a.kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("CANCELED"), Some("FAILURE"))
    );
    wait_for_log(&b.kiln, &id, "Cancelling build");
}

#[test]
fn twenty_racing_identical_requests_on_two_instances_make_one_bake() {
    let Some(redis) = Redis::start() else { return };
    let yaml = config(&redis, "fake-packer", 4);
    let hang = [("FAKE_PACKER_MODE", "hang")];
    let (a, b) = (instance(&yaml, &hang), instance(&yaml, &hang));
    let addrs = [a.kiln.addr.clone(), b.kiln.addr.clone()];
    let start = std::sync::Arc::new(std::sync::Barrier::new(20));
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let (addr, start) = (addrs[i % 2].clone(), start.clone());
            std::thread::spawn(move || {
                let body = request("nginx").to_string();
                start.wait();
                http(
                    &addr,
                    "POST",
                    "/api/v1/us-east-1/bake",
                    &[],
                    body.as_bytes(),
                )
            })
        })
        .collect();
    let mut ids: Vec<String> = racers
        .into_iter()
        .map(|r| {
            let r = r.join().unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            id_of(&r.json())
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one bake for one identity: {ids:?}");
    let r = a.kiln.get(&format!("/api/v1/us-east-1/cancel/{}", ids[0]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_nothing_left(&a.mark, &[a.kiln.pid()]);
    assert_nothing_left(&b.mark, &[b.kiln.pid()]);
}

#[test]
fn a_dead_instance_s_bakes_are_settled_orphaned_by_a_live_one_within_the_timeout() {
    let Some(redis) = Redis::start() else { return };
    let hang = [("FAKE_PACKER_MODE", "hang")];
    let mut a = instance(&config(&redis, "fake-packer", 1), &hang);
    let b = instance(&config(&redis, "fake-packer", 4), &hang);
    let running = id_of(&a.kiln.bake("us-east-1", &request("nginx")));
    let queued = id_of(&a.kiln.bake("us-east-1", &request("redis")));
    wait_for_log(&b.kiln, &running, "Waiting for instance");
    // Liveness, not staleness: silent for longer than the timeout, but its owner beats.
    std::thread::sleep(ORPHAN_TIMEOUT + Duration::from_millis(500));
    assert_eq!(view(&b.kiln, &running)["phase"], "running");
    assert_eq!(view(&b.kiln, &queued)["phase"], "queued");

    a.kiln.kill();
    kill_marked(&a.mark);
    let killed = Instant::now();
    let status = format!("/api/v1/us-east-1/status/{running}");
    let s = poll(&b.kiln, &status, Duration::from_secs(15), |s| {
        s["state"] != "RUNNING"
    });
    let took = killed.elapsed();
    assert!(
        took <= ORPHAN_TIMEOUT + Duration::from_millis(1500),
        "settled after {took:?}"
    );
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("CANCELED"), Some("FAILURE"))
    );
    let a_id = instance_id(&a.kiln);
    for id in [&running, &queued] {
        let v = view(&b.kiln, id);
        assert_eq!(
            (v["phase"].as_str(), v["cause"].as_str()),
            (Some("failed"), Some("orphaned"))
        );
        assert!(
            b.kiln
                .log(id)
                .contains(&format!("kiln instance {a_id} stopped")),
            "{}",
            b.kiln.log(id)
        );
    }
    // An orphaned bake is not reused: the same request bakes again, on the live instance.
    let again = id_of(&b.kiln.bake("us-east-1", &request("nginx")));
    assert_ne!(again, running);
    let all = poll(&b.kiln, "/status/all", Duration::from_secs(10), |all| {
        all["instances"].get(&a_id).is_none()
    });
    assert_eq!(
        all["instances"][instance_id(&b.kiln)]["bakes"][0]["id"],
        again.as_str()
    );
    b.kiln.get(&format!("/api/v1/us-east-1/cancel/{again}"));
    assert_nothing_left(&b.mark, &[b.kiln.pid()]);
    assert_nothing_left(&a.mark, &[]);
}

#[test]
fn an_instance_restarted_with_its_data_dir_reattaches_its_bake_before_peers_settle_it() {
    let Some(redis) = Redis::start() else { return };
    let yaml = config(&redis, "redis-slow-packer.sh", 4);
    let slow = [("SLOW_PACKER_SECONDS", "5")];
    let mut a = instance(&yaml, &slow);
    let b = instance(&yaml, &slow);
    let a_id = instance_id(&a.kiln);
    let id = id_of(&a.kiln.bake("us-east-1", &request("nginx")));
    wait_for_log(&b.kiln, &id, "slow line 2 of 20");
    a.kiln.kill();
    // Packer goes on under its supervisor; the same data dir is the same instance.
    let data = a.kiln.data.clone();
    a.kiln = start(&data, &yaml, &a.mark, &slow);
    assert_eq!(instance_id(&a.kiln), a_id);
    let status = format!("/api/v1/us-east-1/status/{id}");
    let s = poll(&b.kiln, &status, Duration::from_secs(30), |s| {
        s["state"] != "RUNNING"
    });
    assert_eq!(s["state"], "COMPLETED", "{}", b.kiln.log(&id));
    assert_eq!(view(&b.kiln, &id)["cause"], "success");
    let log = b.kiln.log(&id);
    assert!(log.contains("re-attached"), "{log}");
    assert_eq!(log.matches("slow line 1 of 20").count(), 1, "{log}");
    assert!(log.contains("slow line 20 of 20"), "{log}");
    assert_nothing_left(&a.mark, &[a.kiln.pid()]);
}

#[test]
fn a_redis_restart_mid_bake_loses_neither_the_result_nor_the_log() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let yaml = config(&redis, "redis-slow-packer.sh", 4);
    let slow = [("SLOW_PACKER_SECONDS", "4")];
    let (a, b) = (instance(&yaml, &slow), instance(&yaml, &slow));
    let id = id_of(&a.kiln.bake("us-east-1", &request("nginx")));
    wait_for_log(&a.kiln, &id, "slow line 2 of 16");

    redis.down();
    let r = b.kiln.post("/api/v1/us-east-1/bake", &request("postgres"));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("bake store is unavailable"),
        "{}",
        r.body
    );
    assert_eq!(
        a.kiln.get(&format!("/api/v1/us-east-1/status/{id}")).status,
        503
    );
    // Packer finishes while Redis is away; its result waits in kiln.
    std::thread::sleep(Duration::from_secs(5));
    redis.up();

    let status = format!("/api/v1/us-east-1/status/{id}");
    let s = poll(&b.kiln, &status, Duration::from_secs(30), |s| {
        s["state"] != "RUNNING"
    });
    assert_eq!(s["state"], "COMPLETED", "{}", b.kiln.log(&id));
    let v = view(&b.kiln, &id);
    assert_eq!(v["cause"], "success", "not orphaned by the outage: {v}");
    let details = b.kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    assert_eq!(details["ami"], "ami-0slow");
    let log = b.kiln.log(&id);
    for i in 1..=16 {
        let line = format!("slow line {i} of 16\n");
        assert_eq!(log.matches(&line).count(), 1, "{line:?} once in: {log}");
    }
    assert!(log.contains("redis-slow-packer done"), "{log}");
    let r = b.kiln.post("/api/v1/us-east-1/bake", &request("postgres"));
    assert_eq!(r.status, 200, "new bakes are taken again: {}", r.body);
    assert_nothing_left(&a.mark, &[a.kiln.pid()]);
}
