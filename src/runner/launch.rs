//! Starting a run (spawning its supervisor) and re-attaching to one a previous kiln started.
//!
//! The supervisor is spawned without `kill_on_drop`: dropping a [`Run`] (or kiln dying) must
//! leave the bake running. It detaches into its own session itself, so kiln's process group
//! and terminal signals never reach it.

use super::layout::{self, RunSpec};
use super::signal;
use std::io::{self, ErrorKind};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// How long [`start`] waits for the supervisor to publish Packer's process group.
const START_TIMEOUT: Duration = Duration::from_secs(5);
const START_POLL: Duration = Duration::from_millis(5);

/// A started or re-attached run. Dropping it does not stop the run.
#[derive(Debug)]
pub struct Run {
    pub(super) dir: PathBuf,
    /// Packer's process group; 0 while unknown (not published yet, or a finished run without
    /// a `pgid` file).
    pub(super) pgid: i32,
    /// The supervisor, when this kiln process started it: its exit is the fastest end signal.
    pub(super) supervisor: Option<tokio::process::Child>,
    /// Packer's temp folder, removed by kiln if the supervisor could not do it.
    pub(super) temp_dir: Option<PathBuf>,
}

impl Run {
    /// Packer's process group id (its pid); 0 while unknown.
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Creates `run_dir`, writes `spec.json` and starts `kiln_exe __supervise run_dir` with `env`
/// added to its (and so Packer's) environment. Returns once Packer runs, i.e. its process group
/// is published; fails if the supervisor could not start it (the reason is in the error).
pub async fn start(
    kiln_exe: &Path,
    run_dir: &Path,
    spec: &RunSpec,
    env: &[(String, String)],
) -> io::Result<Run> {
    if spec.argv.is_empty() {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "a run needs a program to run",
        ));
    }
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(run_dir)
        .await?;
    let dir = tokio::fs::canonicalize(run_dir).await?;
    write_spec(&dir, spec).await?;
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(layout::SUPERVISOR_LOG))?;
    let mut supervisor = tokio::process::Command::new(kiln_exe)
        .arg("__supervise")
        .arg(&dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let pgid = wait_for_pgid(&dir, &mut supervisor).await?;
    tracing::debug!(run_dir = %dir.display(), pgid, "packer run started");
    Ok(Run {
        dir,
        pgid,
        supervisor: Some(supervisor),
        temp_dir: spec.temp_dir.clone(),
    })
}

/// Picks up a run started by an earlier kiln process. `None` if the run is lost: it never
/// finished (no `exit`), and neither its supervisor nor its process group is alive.
pub fn reattach(run_dir: &Path) -> Option<Run> {
    let pgid = layout::read_pgid(run_dir).ok().flatten();
    // A live supervisor without `pgid` yet is starting Packer (kiln died during `start`);
    // `follow` picks the group up once it is published.
    let alive = layout::supervisor_alive(run_dir) || pgid.is_some_and(signal::group_alive);
    // `exit` is read after the liveness checks: a supervisor that wrote it and died in between
    // is then not mistaken for a lost run.
    let finished = layout::read_exit(run_dir).ok().flatten().is_some();
    (alive || finished).then(|| Run {
        dir: run_dir.to_path_buf(),
        pgid: pgid.unwrap_or(0),
        supervisor: None,
        temp_dir: layout::read_spec(run_dir).ok().and_then(|s| s.temp_dir),
    })
}

/// Writes `spec.json` (0600, never over an existing one: one run per directory).
async fn write_spec(dir: &Path, spec: &RunSpec) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(spec).map_err(io::Error::other)?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(layout::SPEC))
        .await?;
    file.write_all(&json).await?;
    file.sync_all().await
}

async fn wait_for_pgid(dir: &Path, supervisor: &mut tokio::process::Child) -> io::Result<i32> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(pgid) = layout::read_pgid(dir)? {
            return Ok(pgid);
        }
        if let Some(status) = supervisor.try_wait()? {
            // Packer may have run and ended already; then `pgid` exists now.
            if let Some(pgid) = layout::read_pgid(dir)? {
                return Ok(pgid);
            }
            let why = tokio::fs::read_to_string(dir.join(layout::SUPERVISOR_LOG))
                .await
                .unwrap_or_default();
            return Err(io::Error::other(format!(
                "supervisor ended ({status}) before starting Packer: {}",
                why.trim()
            )));
        }
        if Instant::now() >= deadline {
            let _ = supervisor.start_kill();
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                "supervisor did not start Packer within 5 s",
            ));
        }
        tokio::time::sleep(START_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{Ending, Limits};
    use std::time::SystemTime;

    fn limits() -> Limits {
        Limits {
            total: None,
            idle: None,
            kill_grace: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_run_with_no_supervisor_group_or_exit_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        assert!(reattach(dir.path()).is_none());
        layout::write_atomic(dir.path(), layout::PGID, b"2147483000").unwrap();
        assert!(reattach(dir.path()).is_none());
    }

    #[tokio::test]
    async fn a_starting_supervisor_is_reattached_before_it_publishes_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let lock = layout::take_supervisor_lock(dir.path()).unwrap();
        let run = reattach(dir.path()).expect("a live supervisor");
        assert_eq!(run.pgid(), 0);
        layout::write_atomic(dir.path(), layout::EXIT, br#"{"code": 3}"#).unwrap();
        drop(lock);
        let report = run
            .follow(
                0,
                SystemTime::now(),
                &limits(),
                Default::default(),
                |_, _| {},
            )
            .await;
        assert_eq!(report.ending, Ending::Exited(3));
    }
}
