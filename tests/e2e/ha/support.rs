//! Helpers for the Redis tests: a `redis-server` of the test's own (stopped by PID), kiln
//! instances on it with their own data dirs and process markers, and polling that waits out a
//! 503 while Redis is away.

use crate::harness::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
/// The test config's `kiln.ha`: beat every second, settle orphans within 4 s (a heartbeat
/// lives 3 s, so a test machine under load may miss two beats without a false orphan).
pub(super) const ORPHAN_TIMEOUT: Duration = Duration::from_secs(4);

/// A `redis-server` on a free loopback port, with its data dir; stopped by PID on drop. It
/// also holds the instances' shared configDir: instances of one deployment read one config
/// (the bake identity covers the configDir path and its files).
pub(super) struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    config_dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    /// `None` (said loudly) when redis-server is not installed; scripts/test installs it.
    pub(super) fn start() -> Option<Redis> {
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
    pub(super) fn up(&mut self) {
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
    pub(super) fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// The URI kiln uses: db 3, so the DB index is honoured end to end.
    pub(super) fn uri(&self) -> String {
        format!("redis://127.0.0.1:{}/3", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.down();
    }
}

pub(super) fn config(redis: &Redis, packer: &str, max_concurrent: usize) -> String {
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
pub(super) struct Instance {
    pub(super) kiln: Kiln,
    pub(super) mark: String,
    _data: tempfile::TempDir,
}

pub(super) fn instance(yaml: &str, env: &[(&str, &str)]) -> Instance {
    let data = tempfile::tempdir().unwrap();
    let mark = format!("KILN_TEST_MARK={}", uuid::Uuid::new_v4());
    let kiln = start(data.path(), yaml, &mark, env);
    Instance {
        kiln,
        mark,
        _data: data,
    }
}

pub(super) fn start(data: &Path, yaml: &str, mark: &str, env: &[(&str, &str)]) -> Kiln {
    let config = data.join("kiln.yml");
    std::fs::write(&config, yaml).unwrap();
    let (k, v) = mark.split_once('=').unwrap();
    let mut all = vec![(k, v)];
    all.extend_from_slice(env);
    Kiln::start_env(data, &config, &all)
}

pub(super) fn instance_id(kiln: &Kiln) -> String {
    std::fs::read_to_string(kiln.data.join("instance-id"))
        .unwrap()
        .trim()
        .to_string()
}

pub(super) fn request(package: &str) -> Value {
    json!({"package": package, "base_os": "ubuntu"})
}

pub(super) fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// Polls `GET path` (200s only: a 503 while Redis is away is waited out) until `done` holds.
pub(super) fn poll(
    kiln: &Kiln,
    path: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
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

pub(super) fn view(kiln: &Kiln, id: &str) -> Value {
    kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json()
}

pub(super) fn kill_marked(mark: &str) {
    for p in processes_mentioning(mark) {
        let pid = p.split(':').next().unwrap_or("");
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
}
