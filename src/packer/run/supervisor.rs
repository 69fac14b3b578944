//! The supervisor: `kiln __supervise <run_dir>`, one small process per Packer run.
//!
//! Why it exists: a bake takes minutes to an hour and must survive a kiln restart, even a
//! SIGKILL. If kiln read Packer's output through a pipe, kiln's death would close the pipe and
//! Packer would die of SIGPIPE (or block) mid-bake, leaking the cloud instance it was building.
//! So the supervisor owns the pipe and turns it into `output.log`; kiln only ever reads files.
//!
//! Invariants:
//! - It runs in a session of its own (`setsid`), so a ^C or a signal to kiln's group misses it.
//! - Packer runs in a process group of its own, whose id is published in `pgid` before any
//!   output is read: that is how kiln (this one or a later one) signals the whole Packer tree.
//! - When Packer exits, its group is SIGKILLed: a straggler left behind by Packer (a shell
//!   provisioner's background job) must not outlive the bake.
//! - `exit` is written only after the log is complete, so "exit file present" means "log final".
//! - It holds the `lock` file for its whole life, so kiln can tell a live supervisor from a dead
//!   one without trusting pids.

use super::layout::{self, ExitRecord, RunSpec};
use super::log::{self, LogWriter};
use super::signal;
use crate::packer::redact::Redactor;
use std::fs::File;
use std::io::{self, BufReader, PipeReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::Duration;

/// How long output is still read after Packer's group was killed. Only a process that left the
/// group (its own `setsid`) can hold the pipe open longer; it is not waited for.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Why a supervisor could not run Packer. Printed to `supervisor.log`.
#[derive(Debug, thiserror::Error)]
enum SupervisorError {
    #[error("failed to detach into a new session: {0}")]
    Session(#[source] io::Error),
    #[error("failed to take the run lock (is another supervisor running here?): {0}")]
    Lock(#[source] io::Error),
    #[error("failed to read the run spec: {0}")]
    Spec(#[source] io::Error),
    #[error("the run spec has an empty argv")]
    EmptyArgv,
    #[error("failed to open the output log: {0}")]
    Log(#[source] io::Error),
    #[error("failed to start {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("failed to publish the process group: {0}")]
    Pgid(#[source] io::Error),
    #[error("failed to wait for Packer: {0}")]
    Wait(#[source] io::Error),
    #[error("failed to write the exit file: {0}")]
    Exit(#[source] io::Error),
}

type SharedLog = Arc<Mutex<LogWriter<File>>>;

/// Runs the Packer command of `run_dir/spec.json` to its end. Exit code 0 once `exit` is
/// written, 2 if Packer could not be run (the reason is on stderr).
pub fn supervise(run_dir: &Path) -> ExitCode {
    match run(run_dir) {
        Ok(record) => {
            let json = serde_json::to_string(&record).unwrap_or_default();
            // Nobody may be reading our stdout any more; SIGPIPE is ignored and errors too.
            let _ = writeln!(io::stdout(), "{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "kiln supervisor: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(dir: &Path) -> Result<ExitRecord, SupervisorError> {
    signal::new_session().map_err(SupervisorError::Session)?;
    signal::ignore_pipe_and_hangup();
    let _lock = layout::take_supervisor_lock(dir).map_err(SupervisorError::Lock)?;
    let spec = read_spec(dir)?;
    let writer = LogWriter::new(
        open_log(dir)?,
        redactor_from_env(&spec.redact_env),
        spec.max_log_bytes,
    );
    let (pipe, mut child) = spawn(&spec)?;
    let pgid = child.id() as i32;
    if let Err(e) = layout::write_atomic(dir, layout::PGID, format!("{pgid}\n").as_bytes()) {
        let _ = signal::signal_group(pgid, signal::SIGKILL);
        let _ = child.wait();
        return Err(SupervisorError::Pgid(e));
    }
    let log = Arc::new(Mutex::new(writer));
    let status = pump_until_exit(pipe, &mut child, &log)?;
    let record = exit_record(status);
    let json = serde_json::to_vec(&record).map_err(|e| SupervisorError::Exit(e.into()))?;
    layout::write_atomic(dir, layout::EXIT, &json).map_err(SupervisorError::Exit)?;
    Ok(record)
}

fn read_spec(dir: &Path) -> Result<RunSpec, SupervisorError> {
    let bytes = std::fs::read(dir.join(layout::SPEC)).map_err(SupervisorError::Spec)?;
    let spec: RunSpec =
        serde_json::from_slice(&bytes).map_err(|e| SupervisorError::Spec(e.into()))?;
    if spec.argv.is_empty() {
        return Err(SupervisorError::EmptyArgv);
    }
    Ok(spec)
}

fn open_log(dir: &Path) -> Result<File, SupervisorError> {
    let mut options = File::options();
    options.create(true).append(true).mode(0o600);
    options
        .open(dir.join(layout::OUTPUT))
        .map_err(SupervisorError::Log)
}

/// The values of the named variables in our environment (Packer inherits the same ones).
fn redactor_from_env(names: &[String]) -> Redactor {
    let values = names
        .iter()
        .filter_map(std::env::var_os)
        .map(|v| v.to_string_lossy().into_owned());
    Redactor::new(values)
}

/// Starts Packer in its own process group, stdout and stderr on one pipe so their interleaving
/// survives, stdin closed. Our copies of the pipe's write end are closed on return, so the
/// reader sees end of input once Packer's tree is gone.
fn spawn(spec: &RunSpec) -> Result<(PipeReader, Child), SupervisorError> {
    let program = spec.argv[0].clone();
    let spawn_error = |source| SupervisorError::Spawn {
        program: program.clone(),
        source,
    };
    let (reader, writer) = io::pipe().map_err(spawn_error)?;
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .stdin(Stdio::null())
        .process_group(0);
    cmd.stdout(writer.try_clone().map_err(spawn_error)?)
        .stderr(writer);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    signal::restore_default_signals(&mut cmd);
    let child = cmd.spawn().map_err(spawn_error)?;
    Ok((reader, child))
}

/// Copies output to the log until Packer exits, kills what is left of its group, then drains
/// the pipe (bounded by [`DRAIN_LIMIT`]).
fn pump_until_exit(
    pipe: PipeReader,
    child: &mut Child,
    log: &SharedLog,
) -> Result<ExitStatus, SupervisorError> {
    let (done_tx, done_rx) = mpsc::channel();
    let pump_log = Arc::clone(log);
    thread::spawn(move || {
        let _ = done_tx.send(pump(pipe, &pump_log));
    });
    let status = child.wait().map_err(SupervisorError::Wait);
    if let Err(e) = signal::signal_group(child.id() as i32, signal::SIGKILL) {
        let _ = writeln!(
            io::stderr(),
            "kiln supervisor: failed to kill Packer's process group: {e}"
        );
    }
    match done_rx.recv_timeout(DRAIN_LIMIT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = writeln!(
                io::stderr(),
                "kiln supervisor: failed to write the output log: {e}"
            );
        }
        Err(_) => {
            let note = "kiln: stopped reading output: a process outside Packer's group still holds it open";
            let _ = lock(log).close(note);
        }
    }
    status
}

/// Reads the pipe line by line into the log. A failing log write does not stop the reading
/// (Packer would block on a full pipe); the first such error is returned at the end.
fn pump(pipe: PipeReader, log: &SharedLog) -> io::Result<()> {
    let mut input = BufReader::with_capacity(log::MAX_LINE_BYTES, pipe);
    let mut line = Vec::with_capacity(1024);
    let mut first_error = None;
    while let Some(cut) = log::read_capped_line(&mut input, &mut line, log::MAX_LINE_BYTES)? {
        if let Err(e) = lock(log).line(&line, cut) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, LogWriter<File>> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

fn exit_record(status: ExitStatus) -> ExitRecord {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitRecord::Code(code),
        (None, Some(sig)) => ExitRecord::Signal(sig),
        (None, None) => ExitRecord::Code(-1),
    }
}
