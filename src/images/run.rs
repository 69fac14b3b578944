//! Running the external tools that build images (debootstrap, chroot, mkfs.ext4, qemu-img,
//! ssh-keygen): output goes to a log file, progress to the terminal, and a failure names the
//! step and quotes the end of the log.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A command that failed, with the end of its log.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed ({how}); the end of {log}:\n{tail}", log = log.display())]
pub struct CommandFailed {
    pub what: String,
    pub how: String,
    pub log: PathBuf,
    pub tail: String,
}

/// Prints `[ 12.3s] message` lines, timed from the start of the whole job.
pub struct Progress {
    started: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            started: Instant::now(),
            quiet,
        }
    }

    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn say(&self, message: &str) {
        if !self.quiet {
            println!("[{:6.1}s] {message}", self.elapsed());
        }
    }
}

/// How often a long step reports that it is still going.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Runs `cmd` with stdout and stderr appended to `log`; while it runs, says every
/// [`HEARTBEAT`] what it is doing and the log's last line.
pub fn run_logged(
    cmd: &mut Command,
    what: &str,
    log: &Path,
    progress: &Progress,
) -> Result<(), CommandFailed> {
    let failed = |how: String| CommandFailed {
        what: what.to_string(),
        how,
        log: log.to_path_buf(),
        tail: tail(log, 25),
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| failed(format!("cannot open its log: {e}")))?;
    let err_file = file
        .try_clone()
        .map_err(|e| failed(format!("cannot open its log: {e}")))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file)
        .spawn()
        .map_err(|e| failed(format!("cannot start it: {e}")))?;
    let step_started = Instant::now();
    let mut next_beat = step_started + HEARTBEAT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(failed(status.to_string())),
            Ok(None) => {}
            Err(e) => return Err(failed(format!("cannot wait for it: {e}"))),
        }
        if Instant::now() >= next_beat {
            let last = tail(log, 1);
            progress.say(&format!(
                "  … {what}: {:.0}s so far; {}",
                step_started.elapsed().as_secs_f64(),
                last.trim()
            ));
            next_beat += HEARTBEAT;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a short command and returns its stdout; failure carries its stderr.
pub fn output(cmd: &mut Command, what: &str) -> Result<String, CommandFailed> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CommandFailed {
            what: what.into(),
            how: format!("cannot start it: {e}"),
            log: PathBuf::from("(stderr)"),
            tail: String::new(),
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(CommandFailed {
        what: what.into(),
        how: out.status.to_string(),
        log: PathBuf::from("(stderr)"),
        tail: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
    })
}

/// The last `n` lines of a text file (empty when unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether `program` is on `PATH` (or is a path to an executable).
pub fn have(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| executable(&dir.join(program)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_names_the_step_and_quotes_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let p = Progress::new(true);
        run_logged(Command::new("sh").args(["-c", "echo fine"]), "ok", &log, &p).unwrap();
        let e = run_logged(
            Command::new("sh").args(["-c", "echo first; echo boom >&2; exit 3"]),
            "the step",
            &log,
            &p,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("the step failed (exit status: 3)"),
            "{text}"
        );
        assert!(text.ends_with("fine\nfirst\nboom"), "{text}");
        assert!(have("sh") && !have("no-such-program-kiln"));
    }
}
