//! The run directory: the only channel between kiln and a supervisor, so that a kiln started
//! later can pick up a run from the files alone.
//!
//! | file             | written by           | meaning                                              |
//! |------------------|----------------------|------------------------------------------------------|
//! | `spec.json`      | kiln, before spawn   | what to run ([`RunSpec`]); never holds secrets        |
//! | `lock`           | supervisor           | flock-held for the supervisor's whole life            |
//! | `pgid`           | supervisor, atomic   | Packer's pid, which is also its process group id      |
//! | `output.pipe`    | supervisor           | FIFO carrying Packer's stdout and stderr ([`OUTPUT_PIPE`]) |
//! | `output.log`     | supervisor, appended | redacted, capped Packer output, one line per line     |
//! | `exit`           | supervisor, atomic   | how Packer ended; written after the log is complete   |
//! | `supervisor.log` | supervisor           | the supervisor's own stdout/stderr (diagnostics)      |
//!
//! Atomic files are written to a temporary name and renamed, so a reader sees all or nothing.

use serde::{Deserialize, Serialize};
use std::fs::{self, File, TryLockError};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

pub const SPEC: &str = "spec.json";
pub const LOCK: &str = "lock";
pub const PGID: &str = "pgid";
pub const OUTPUT: &str = "output.log";
/// Packer's stdout and stderr. A FIFO rather than an anonymous pipe, and opened read-write on
/// Packer's side, so that Packer's writes never fail with EPIPE (a Go program dies of SIGPIPE on
/// a broken stdout, before it could clean up its cloud resources) if the supervisor dies: kiln
/// can then open the FIFO itself, keep it drained, and stop Packer cleanly.
pub const OUTPUT_PIPE: &str = "output.pipe";
pub const EXIT: &str = "exit";
pub const SUPERVISOR_LOG: &str = "supervisor.log";

/// The default cap of `output.log`: 10 MiB.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;

/// What the supervisor runs. Secrets travel in the supervisor's environment, never here: this
/// file stays on disk for the life of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The program and its arguments, run without a shell.
    pub argv: Vec<String>,
    /// Packer's working directory; the supervisor's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Names of environment variables whose values are masked in `output.log`.
    #[serde(default)]
    pub redact_env: Vec<String>,
    /// After this many bytes, `output.log` keeps only Packer's result lines.
    #[serde(default = "default_max_log_bytes")]
    pub max_log_bytes: u64,
    /// Masked Packer variables, handed to Packer as a var file that exists only in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_vars: Option<SecretVars>,
    /// Packer's private temp folder (`TMPDIR`, `PACKER_TMP_DIR`): created before the run,
    /// removed once Packer's process group is gone (see [`crate::runner::temp`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_dir: Option<PathBuf>,
}

/// Which Packer variables the supervisor builds its in-memory var file from: each value is read
/// from the named variable of the supervisor's environment (so `spec.json` holds names only),
/// and the file goes to Packer as one `-var-file=/proc/<supervisor>/fd/<n>` argument inserted
/// into `argv` at index `at`. The descriptor is a sealed memfd: no file is ever on a disk, and
/// a path under /proc also reaches a Packer started through `sudo` (which closes inherited
/// descriptors). The variables named here are removed from Packer's own environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVars {
    pub at: usize,
    /// `(Packer variable, environment variable holding its value)`.
    pub vars: Vec<(String, String)>,
}

fn default_max_log_bytes() -> u64 {
    DEFAULT_MAX_LOG_BYTES
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            argv: Vec::new(),
            cwd: None,
            redact_env: Vec::new(),
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            secret_vars: None,
            temp_dir: None,
        }
    }
}

/// How Packer ended, as stored in `exit`: `{"code": N}` or `{"signal": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitRecord {
    Code(i32),
    Signal(i32),
}

/// Writes `contents` to `dir/name` so that readers see either no file or the whole file.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(name))
}

/// Reads `spec.json`.
pub fn read_spec(dir: &Path) -> io::Result<RunSpec> {
    let bytes = fs::read(dir.join(SPEC))?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(ErrorKind::InvalidData, e))
}

/// Reads `exit`; `Ok(None)` while it does not exist.
pub fn read_exit(dir: &Path) -> io::Result<Option<ExitRecord>> {
    match fs::read(dir.join(EXIT)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads `pgid`; `Ok(None)` while it does not exist.
pub fn read_pgid(dir: &Path) -> io::Result<Option<i32>> {
    match fs::read_to_string(dir.join(PGID)) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes the supervisor lock of `dir`, held until the returned file is closed (at the latest
/// when the supervisor dies, however it dies). Fails if another supervisor holds it.
pub fn take_supervisor_lock(dir: &Path) -> io::Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))?;
    // std's file lock is flock(2) on Linux: it lasts until `file` is closed, however the
    // process ends.
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(io::Error::new(
            ErrorKind::WouldBlock,
            "the run lock is held",
        )),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Whether a supervisor is alive for `dir`, i.e. holds its lock.
pub fn supervisor_alive(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK)) else {
        return false;
    };
    // Taking the lock ourselves means nobody holds it; closing `file` releases it at once.
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_records_use_the_documented_wire_form() {
        assert_eq!(
            serde_json::to_string(&ExitRecord::Code(1)).unwrap(),
            r#"{"code":1}"#
        );
        assert_eq!(
            serde_json::to_string(&ExitRecord::Signal(9)).unwrap(),
            r#"{"signal":9}"#
        );
        let back: ExitRecord = serde_json::from_str(r#"{"signal": 15}"#).unwrap();
        assert_eq!(back, ExitRecord::Signal(15));
    }

    #[test]
    fn a_spec_needs_only_argv_and_cwd() {
        let spec: RunSpec =
            serde_json::from_str(r#"{"argv": ["packer", "build"], "cwd": null}"#).unwrap();
        assert_eq!(spec.max_log_bytes, DEFAULT_MAX_LOG_BYTES);
        assert!(spec.redact_env.is_empty());
    }

    #[test]
    fn missing_files_read_as_none_and_written_ones_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), None);
        assert_eq!(read_pgid(dir.path()).unwrap(), None);
        write_atomic(dir.path(), EXIT, br#"{"code": 0}"#).unwrap();
        write_atomic(dir.path(), PGID, b"4242\n").unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), Some(ExitRecord::Code(0)));
        assert_eq!(read_pgid(dir.path()).unwrap(), Some(4242));
    }

    #[test]
    fn the_lock_tells_whether_a_supervisor_lives() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!supervisor_alive(dir.path()));
        let held = take_supervisor_lock(dir.path()).unwrap();
        assert!(supervisor_alive(dir.path()));
        assert!(take_supervisor_lock(dir.path()).is_err());
        drop(held);
        assert!(!supervisor_alive(dir.path()));
    }
}
