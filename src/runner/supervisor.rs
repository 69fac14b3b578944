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
//! - Packer's output goes through a FIFO that Packer's side holds open read-write
//!   ([`layout::OUTPUT_PIPE`]): should the supervisor die, Packer's writes still succeed, so it
//!   is not killed by SIGPIPE mid-bake and kiln can stop it cleanly.
//! - Masked variables reach Packer as an in-memory var file ([`SecretFile`]); their values are
//!   taken out of Packer's environment.
//! - Packer's temp folder is private and removed once Packer's group is gone; Packer's debug log
//!   in it (which holds every variable a provisioner gets) is unlinked as soon as it appears.
//! - Nothing is given up on a full disk: output waits in memory and `exit` is retried, with the
//!   lock held, until the disk takes them ([`persist`]); kiln meanwhile sees a live supervisor.

use super::layout::{self, ExitRecord, RunSpec};
use super::log::{self, LogWriter};
use super::secret_file::SecretFile;
use super::signal;
use crate::runner::redact::Redactor;
use crate::runner::temp;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How long output is still read after Packer's group was killed. Only a process that left the
/// group (its own `setsid`) can hold the pipe open longer; it is not waited for.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The longest pause between two tries to write `exit` or the log to a full disk.
const PERSIST_MAX_PAUSE: Duration = Duration::from_secs(5);

/// How long Packer's debug log is looked for in its temp folder (Packer makes it at once).
const DEBUG_LOG_WATCH: Duration = Duration::from_secs(30);

/// Why a supervisor could not run Packer. Printed to `supervisor.log` with its cause ([`report`]).
#[derive(Debug, thiserror::Error)]
enum SupervisorError {
    #[error("failed to detach into a new session")]
    Session(#[source] io::Error),
    #[error("failed to take the run lock (is another supervisor running here?)")]
    Lock(#[source] io::Error),
    #[error("failed to read the run spec")]
    Spec(#[source] io::Error),
    #[error("the run spec has an empty argv")]
    EmptyArgv,
    #[error("failed to open the output log")]
    Log(#[source] io::Error),
    #[error("failed to prepare the masked variables")]
    SecretVars(#[source] io::Error),
    #[error("failed to make Packer's output pipe")]
    Pipe(#[source] io::Error),
    #[error("failed to start {program}")]
    Spawn { program: String, source: io::Error },
    #[error("failed to publish the process group")]
    Pgid(#[source] io::Error),
    #[error("failed to wait for Packer")]
    Wait(#[source] io::Error),
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
            let _ = writeln!(io::stderr(), "{}", report(&e));
            ExitCode::from(2)
        }
    }
}

/// The line `supervisor.log` gets for `e`: the error and its cause, each once.
fn report(e: &SupervisorError) -> String {
    format!("kiln supervisor: {}", crate::telemetry::Chain(e))
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
    let secret_file = spec
        .secret_vars
        .as_ref()
        .map(SecretFile::from_env)
        .transpose()
        .map_err(SupervisorError::SecretVars)?;
    let (pipe, mut child) = spawn(dir, &spec, secret_file.as_ref())?;
    let pgid = child.id() as i32;
    if let Err(e) = layout::write_atomic(dir, layout::PGID, format!("{pgid}\n").as_bytes()) {
        let _ = signal::signal_group(pgid, signal::SIGKILL);
        let _ = child.wait();
        remove_temp(&spec);
        return Err(SupervisorError::Pgid(e));
    }
    if let Some(dir) = spec.temp_dir.clone() {
        thread::spawn(move || unlink_debug_log(&dir));
    }
    let log = Arc::new(Mutex::new(writer));
    let status = pump_until_exit(pipe, &mut child, &log)?;
    drop(secret_file);
    SecretFile::remove_link(dir);
    remove_temp(&spec);
    let _ = std::fs::remove_file(dir.join(layout::OUTPUT_PIPE));
    persist("output.log", || lock(&log).drain(), thread::sleep);
    let record = exit_record(status);
    let json = serde_json::to_vec(&record).unwrap_or_default();
    persist(
        "exit",
        || layout::write_atomic(dir, layout::EXIT, &json),
        thread::sleep,
    );
    Ok(record)
}

/// Runs `write` until it succeeds, pausing between tries (50 ms, doubling up to
/// [`PERSIST_MAX_PAUSE`]). It never gives up: a result not written would make the bake lost, and
/// while this process lives (holding the run lock) kiln waits for it.
fn persist(what: &str, mut write: impl FnMut() -> io::Result<()>, mut pause: impl FnMut(Duration)) {
    let mut wait = Duration::from_millis(50);
    let mut failures = 0u64;
    while let Err(e) = write() {
        failures += 1;
        if failures == 1 || failures.is_power_of_two() {
            let _ = writeln!(
                io::stderr(),
                "kiln supervisor: cannot write {what} ({e}); retrying (try {failures})"
            );
        }
        pause(wait);
        wait = (wait * 2).min(PERSIST_MAX_PAUSE);
    }
}

fn remove_temp(spec: &RunSpec) {
    if let Some(dir) = &spec.temp_dir
        && let Err(e) = temp::remove(dir)
    {
        let _ = writeln!(
            io::stderr(),
            "kiln supervisor: failed to remove Packer's temp folder: {e}"
        );
    }
}

/// Unlinks Packer's debug log (`packer-log*`, which Packer 1.6.6 always writes to its temp
/// folder and which holds every variable a provisioner is given) as soon as it appears: Packer
/// keeps writing to its open descriptor, but no name is left on disk for the file to be found
/// by, and its space is freed when Packer ends, however it ends.
fn unlink_debug_log(dir: &Path) {
    let deadline = Instant::now() + DEBUG_LOG_WATCH;
    while Instant::now() < deadline {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let logs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("packer-log"))
            .map(|e| e.path())
            .collect();
        if !logs.is_empty() {
            for path in logs {
                let _ = std::fs::remove_file(path);
            }
            return;
        }
        thread::sleep(Duration::from_millis(2));
    }
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

/// Starts Packer in its own process group, stdout and stderr on one FIFO so their interleaving
/// survives, stdin closed. Our copy of Packer's end is closed on return, so the reader sees end
/// of input once Packer's tree is gone.
fn spawn(
    dir: &Path,
    spec: &RunSpec,
    secret_file: Option<&SecretFile>,
) -> Result<(File, Child), SupervisorError> {
    let mut argv = spec.argv.clone();
    if let (Some(vars), Some(file)) = (&spec.secret_vars, secret_file) {
        let arg = file.argument(dir).map_err(SupervisorError::SecretVars)?;
        argv.insert(vars.at.clamp(1, argv.len()), arg);
    }
    let program = argv[0].clone();
    let spawn_error = |source| SupervisorError::Spawn {
        program: program.clone(),
        source,
    };
    let (reader, packer_end) = output_fifo(dir).map_err(SupervisorError::Pipe)?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).process_group(0);
    cmd.stdout(packer_end.try_clone().map_err(spawn_error)?)
        .stderr(packer_end);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    for (_, env) in spec.secret_vars.iter().flat_map(|v| &v.vars) {
        cmd.env_remove(env);
    }
    if let Some(tmp) = &spec.temp_dir {
        cmd.envs(temp::env(tmp));
    }
    signal::restore_default_signals(&mut cmd);
    let child = cmd.spawn().map_err(spawn_error)?;
    Ok((reader, child))
}

/// Makes `output.pipe` and opens it: our read end, and Packer's end, opened read-write so that
/// Packer itself always counts as a reader (its writes never fail with EPIPE).
fn output_fifo(dir: &Path) -> io::Result<(File, File)> {
    let path = dir.join(layout::OUTPUT_PIPE);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )?;
    let packer_end = File::options().read(true).write(true).open(&path)?;
    // A writer exists (Packer's end), so opening for reading does not block.
    let reader = File::open(&path)?;
    Ok((reader, packer_end))
}

/// Copies output to the log until Packer exits, kills what is left of its group, then drains
/// the pipe (bounded by [`DRAIN_LIMIT`]).
fn pump_until_exit(
    pipe: File,
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
                "kiln supervisor: writing the output log failed at least once ({e}); retrying"
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
/// (Packer would block on a full pipe; the line waits in the log's backlog); the first such
/// error is returned at the end.
fn pump(pipe: File, log: &SharedLog) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_log_names_the_cause_once() {
        let e = SupervisorError::Spawn {
            program: "/opt/packer".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let cause = io::Error::from(io::ErrorKind::NotFound).to_string();
        assert_eq!(
            report(&e),
            format!("kiln supervisor: failed to start /opt/packer: {cause}")
        );
    }

    #[test]
    fn persist_retries_a_full_disk_with_growing_pauses_until_it_takes_the_write() {
        let mut tries = 0;
        let mut pauses = Vec::new();
        persist(
            "exit",
            || {
                tries += 1;
                if tries <= 8 {
                    Err(io::Error::from_raw_os_error(libc::ENOSPC))
                } else {
                    Ok(())
                }
            },
            |d| pauses.push(d),
        );
        assert_eq!(tries, 9);
        let ms: Vec<u128> = pauses.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1600, 3200, 5000]);
    }

    #[test]
    fn packer_can_write_to_its_fifo_after_the_reader_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (reader, mut packer_end) = output_fifo(dir.path()).unwrap();
        drop(reader);
        // With an anonymous pipe this would be EPIPE (and SIGPIPE for Packer).
        packer_end.write_all(b"still here\n").unwrap();
        let mut again = File::open(dir.path().join(layout::OUTPUT_PIPE)).unwrap();
        let mut buf = [0u8; 11];
        std::io::Read::read_exact(&mut again, &mut buf).unwrap();
        assert_eq!(&buf, b"still here\n");
    }
}
