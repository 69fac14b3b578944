//! Helpers for `tests/runner.rs`: starting runs of the fake (or real) Packer under a unique
//! marker, following them, and proving afterwards that no process of the run is left.

use kiln::runner::{self, Limits, Run, RunReport, RunSpec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");
pub const FAKE_PACKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/fake-packer");
pub const SECRET_VAR: &str = "AWS_SECRET_ACCESS_KEY";

/// One test run: its directory and the marker every process of it carries in its environment.
pub struct TestRun {
    pub tmp: tempfile::TempDir,
    pub marker: String,
}

impl TestRun {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        TestRun {
            tmp,
            marker: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("run")
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir().join("output.log")).expect("output.log")
    }

    /// The environment for the supervisor: the marker plus `extra`.
    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("KILN_TEST_RUN".to_string(), self.marker.clone()),
            ("FAKE_MARKER".to_string(), self.marker.clone()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// Starts the fake Packer in `mode`.
    pub async fn start_fake(&self, mode: &str, max_log_bytes: u64, extra: &[(&str, &str)]) -> Run {
        let spec = RunSpec {
            argv: [FAKE_PACKER, "build", "-machine-readable", "template.json"]
                .map(String::from)
                .to_vec(),
            cwd: None,
            redact_env: vec![SECRET_VAR.to_string()],
            max_log_bytes,
            ..Default::default()
        };
        let mut vars = vec![("FAKE_PACKER_MODE", mode)];
        vars.extend_from_slice(extra);
        let env = self.env(&vars);
        runner::start(Path::new(KILN), &self.dir(), &spec, &env)
            .await
            .expect("start")
    }

    /// Waits (up to 3 s) until no process carries the marker; panics naming the survivors.
    pub async fn assert_nothing_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let left = processes_with(&self.marker);
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes of the run are left: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The pid of this run's supervisor, if it is alive.
    pub fn supervisor_pid(&self) -> Option<i32> {
        processes_with(&self.marker)
            .into_iter()
            .find(|(_, cmd)| cmd.contains("__supervise"))
            .map(|(pid, _)| pid)
    }
}

/// What a test saw of a followed run.
pub struct Followed {
    pub report: RunReport,
    pub lines: Vec<(String, u64)>,
    pub took: Duration,
}

impl Followed {
    pub fn texts(&self) -> Vec<&str> {
        self.lines.iter().map(|(l, _)| l.as_str()).collect()
    }

    pub fn has_line(&self, needle: &str) -> bool {
        self.lines.iter().any(|(l, _)| l.contains(needle))
    }
}

pub fn limits(total: Option<u64>, idle: Option<u64>, grace_ms: u64) -> Limits {
    Limits {
        total: total.map(Duration::from_millis),
        idle: idle.map(Duration::from_millis),
        kill_grace: Duration::from_millis(grace_ms),
    }
}

/// Follows `run` from offset 0; cancels `cancel` once a line containing `cancel_on` arrives.
pub async fn follow(
    run: Run,
    limits: Limits,
    started_at: SystemTime,
    cancel_on: Option<&str>,
) -> Followed {
    let token = CancellationToken::new();
    let trigger = token.clone();
    let mut lines = Vec::new();
    let began = Instant::now();
    let report = run
        .follow(0, started_at, &limits, token, |line, offset| {
            if cancel_on.is_some_and(|needle| line.contains(needle)) {
                trigger.cancel();
            }
            lines.push((line.to_string(), offset));
        })
        .await;
    Followed {
        report,
        lines,
        took: began.elapsed(),
    }
}

/// Processes (pid, cmdline) whose environment holds `KILN_TEST_RUN=<marker>`.
pub fn processes_with(marker: &str) -> Vec<(i32, String)> {
    let wanted = format!("KILN_TEST_RUN={marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let pids = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok());
    pids.filter(|pid| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        environ
            .split(|&b| b == 0)
            .any(|var| var == wanted.as_bytes())
    })
    .map(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        (pid, String::from_utf8_lossy(&cmdline).replace('\0', " "))
    })
    .collect()
}

/// Sends `sig` to one process (not a group), for tests that play "kiln's machine crashed".
pub fn kill_pid(pid: i32, sig: i32) {
    std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
}
