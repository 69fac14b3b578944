//! Running one external program of a manifest bake (a renderer, or `git`): argv without a
//! shell, in its own process group, with a deadline (the whole group is killed when it passes),
//! a cap on stdout (over it, the group is killed too) and the tail of stderr kept for the error.
//! Blocking: call it from a blocking thread.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How much of stderr an error carries.
const STDERR_TAIL: usize = 8 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RunError {
    #[error("the executable '{0}' was not found or cannot be run ({1})")]
    NotFound(String, String),
    #[error("'{program}' exited with {status}: {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("'{0}' did not finish before the bake's time limit (kiln.manifests.timeout)")]
    TimedOut(String),
    #[error("'{0}' wrote more than {1} bytes (kiln.manifests.maxOutputBytes)")]
    TooMuchOutput(String, u64),
    #[error("'{0}': {1}")]
    Io(String, String),
}

/// What a program may use: the deadline and the stdout cap.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub deadline: Instant,
    pub max_stdout: u64,
}

/// Runs `argv` in `cwd` with only `env` (plus PATH) in its environment; answers its stdout.
pub fn run(
    argv: &[String],
    cwd: &Path,
    env: &[(&str, String)],
    bounds: Bounds,
) -> Result<Vec<u8>, RunError> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut cmd = Command::new(&program);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("TMPDIR", cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| RunError::NotFound(program.clone(), e.to_string()))?;
    let pgid = child.id() as i32;
    let kill_group = move || {
        // SAFETY: a plain signal to the process group kiln created for this child.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    };
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let cap = bounds.max_stdout;
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let read = (&mut stdout).take(cap + 1).read_to_end(&mut buf);
        let over = buf.len() as u64 > cap;
        if over {
            // The child would block on a full pipe: stop it now rather than at the deadline.
            kill_group();
        }
        (read.map(|_| buf), over)
    });
    let err_reader = std::thread::spawn(move || {
        let mut tail: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&chunk[..n]);
            if tail.len() > 2 * STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        tail
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= bounds.deadline => {
                kill_group();
                let _ = child.wait();
                break Err(RunError::TimedOut(program.clone()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(RunError::Io(program.clone(), e.to_string())),
        }
    };
    // The group may have left children holding the pipes; nothing of it may outlive the run.
    kill_group();
    // A process that left the group (its own session) may still hold a pipe: wait for the
    // readers only a little past the deadline, then give up on them (they end with it).
    let give_up = bounds.deadline + Duration::from_secs(1);
    while !(out_reader.is_finished() && err_reader.is_finished()) {
        if Instant::now() >= give_up {
            return Err(RunError::TimedOut(program));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (out, over) = out_reader
        .join()
        .map_err(|_| RunError::Io(program.clone(), "stdout reader panicked".into()))?;
    let err_tail = err_reader.join().unwrap_or_default();
    let status = status?;
    if over {
        return Err(RunError::TooMuchOutput(program, cap));
    }
    let out = out.map_err(|e| RunError::Io(program.clone(), e.to_string()))?;
    if !status.success() {
        let mut text = String::from_utf8_lossy(&err_tail).trim().to_string();
        if text.len() > STDERR_TAIL {
            let cut = text.len() - STDERR_TAIL;
            let cut = (cut..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text = format!("…{}", &text[cut..]);
        }
        let status = match status.code() {
            Some(code) => format!("exit code {code}"),
            None => "a signal".to_string(),
        };
        return Err(RunError::Failed {
            program,
            status,
            stderr: text,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(secs: u64, cap: u64) -> Bounds {
        Bounds {
            deadline: Instant::now() + Duration::from_secs(secs),
            max_stdout: cap,
        }
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn stdout_is_answered_and_the_environment_is_only_what_is_given() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY-free: a variable of kiln's own environment must not reach the program.
        let out = run(
            &sh("echo \"$FOO|$KILN_SECRET_TEST|$HOME\""),
            dir.path(),
            &[("FOO", "bar".into())],
            bounds(10, 1024),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.trim(), format!("bar||{}", dir.path().display()));
    }

    #[test]
    fn a_failure_carries_the_tail_of_stderr_and_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let e = run(
            &sh("echo oops >&2; exit 3"),
            dir.path(),
            &[],
            bounds(10, 1024),
        )
        .unwrap_err();
        assert_eq!(
            e,
            RunError::Failed {
                program: "/bin/sh".into(),
                status: "exit code 3".into(),
                stderr: "oops".into()
            }
        );
    }

    #[test]
    fn the_deadline_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        let script = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let start = Instant::now();
        let e = run(&sh(&script), dir.path(), &[], bounds(1, 1024)).unwrap_err();
        assert_eq!(e, RunError::TimedOut("/bin/sh".into()));
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            !marker.exists(),
            "a child of the group outlived the deadline"
        );
    }

    #[test]
    fn a_process_that_escaped_the_group_does_not_hold_the_run_past_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        // Whether the background process left the group before the shell ended (then it
        // holds the pipe: TimedOut) or not (then the group's kill ends it: the output) depends
        // on scheduling; either way the run ends near its deadline, not with the escapee.
        let r = run(
            &sh("setsid sleep 5 & sleep 0.2; echo started"),
            dir.path(),
            &[],
            bounds(1, 1024),
        );
        assert!(matches!(&r, Err(RunError::TimedOut(_)) | Ok(_)), "{r:?}");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn output_over_the_cap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = run(
            &sh("head -c 100000 /dev/zero"),
            dir.path(),
            &[],
            bounds(10, 1000),
        )
        .unwrap_err();
        assert_eq!(e, RunError::TooMuchOutput("/bin/sh".into(), 1000));
    }

    #[test]
    fn a_missing_executable_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = run(&["no-such-helm3".into()], dir.path(), &[], bounds(10, 10)).unwrap_err();
        assert!(
            e.to_string().contains("'no-such-helm3' was not found"),
            "{e}"
        );
    }
}
