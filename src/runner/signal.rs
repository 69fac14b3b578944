//! The few process-level system calls the runner needs. This is the only file of
//! [`crate::runner`] with `unsafe`; every block is a plain libc call with no memory
//! arguments.
//!
//! Signals go to process *groups* (negative pid): Packer is a wrapper process that starts
//! `/usr/bin/packer`, which starts one plugin process per builder and provisioner, and
//! provisioners start shells. Signalling only the wrapper pid would leave the rest behind.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub use libc::{SIGINT, SIGKILL, SIGTERM};

/// Sends `sig` to every process of the group `pgid`. A group that no longer exists is not an
/// error: the caller wanted it gone.
pub fn signal_group(pgid: i32, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal process group {pgid}"),
        ));
    }
    // SAFETY: kill(2) takes no pointers; a negative pid addresses exactly the group `pgid`
    // (guarded above against 0, 1 and negatives, which would address far more).
    let rc = unsafe { libc::kill(-pgid, sig) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) => Ok(()),
        _ => Err(err),
    }
}

/// Whether any live process is still in the group `pgid`. Zombies do not count: where nothing
/// reaps orphans (a container whose PID 1 is not an init), a dead Packer lingers as a zombie and
/// kill(2) would still find its group.
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: signal 0 only checks existence and permission; kill(2) takes no pointers.
    let rc = unsafe { libc::kill(-pgid, 0) };
    // EPERM means the group exists but belongs to someone else: still alive.
    let exists = rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && live_member(pgid).unwrap_or(true)
}

/// Whether the process `pid` lives (a zombie does not count).
pub fn process_alive(pid: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Whether /proc shows a non-zombie process in the group; `None` when /proc cannot be read.
fn live_member(pgid: i32) -> Option<bool> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        if pgrp == Some(pgid) && state != Some("Z") {
            return Some(true);
        }
    }
    Some(false)
}

/// Detaches the calling process into a session of its own, so a terminal ^C or a signal to
/// kiln's process group never reaches it.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid(2) takes no arguments and only changes this process's session.
    let rc = unsafe { libc::setsid() };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Ignores SIGPIPE and SIGHUP in the calling process: the supervisor must outlive a closed
/// stdout and a hung-up terminal of the kiln that started it.
pub fn ignore_pipe_and_hangup() {
    for sig in [libc::SIGPIPE, libc::SIGHUP] {
        // SAFETY: installing SIG_IGN registers no handler code; signal(2) takes no pointers.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
}

/// Makes the child of `cmd` start with default dispositions of the signals kiln stops Packer
/// with and of SIGPIPE/SIGHUP: ignored signals survive exec, and a kiln started in the
/// background of a script (`kiln serve &`) inherits SIGINT and SIGQUIT ignored — a shell
/// provisioner could then never be interrupted. Undoes [`ignore_pipe_and_hangup`] too.
pub fn restore_default_signals(cmd: &mut Command) {
    let reset = || {
        for sig in [
            libc::SIGPIPE,
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGQUIT,
        ] {
            // SAFETY: signal(2) is async-signal-safe, so it may run between fork and exec.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
        Ok(())
    };
    // SAFETY: the closure only calls signal(2) (async-signal-safe), allocates nothing and takes
    // no locks, as a pre-exec hook must.
    unsafe { cmd.pre_exec(reset) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_gets_default_stop_signals_even_when_they_were_ignored() {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "grep '^SigIgn' /proc/self/status"]);
        // As if kiln itself had been started with SIGINT, SIGTERM and SIGPIPE ignored.
        // SAFETY: signal(2) only, as in `restore_default_signals`.
        unsafe {
            cmd.pre_exec(|| {
                for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGPIPE] {
                    libc::signal(sig, libc::SIG_IGN);
                }
                Ok(())
            })
        };
        restore_default_signals(&mut cmd);
        let out = String::from_utf8(cmd.output().expect("run sh").stdout).unwrap();
        let mask = u64::from_str_radix(out.trim().trim_start_matches("SigIgn:").trim(), 16)
            .expect("a SigIgn mask");
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGPIPE, libc::SIGQUIT] {
            assert_eq!(
                mask & (1 << (sig - 1)),
                0,
                "signal {sig} still ignored: {out}"
            );
        }
    }

    #[test]
    fn a_missing_group_is_dead_and_signalling_it_is_fine() {
        let mut child = Command::new("true")
            .process_group(0)
            .spawn()
            .expect("spawn true");
        let pgid = child.id() as i32;
        child.wait().expect("wait");
        assert!(!group_alive(pgid));
        signal_group(pgid, SIGTERM).expect("ESRCH is not an error");
    }

    #[test]
    fn a_running_group_is_alive_until_killed() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pgid = child.id() as i32;
        assert!(group_alive(pgid));
        signal_group(pgid, SIGKILL).expect("kill");
        child.wait().expect("wait");
        assert!(!group_alive(pgid));
    }

    #[test]
    fn refuses_to_signal_everyone() {
        assert!(signal_group(0, SIGTERM).is_err());
        assert!(signal_group(1, SIGTERM).is_err());
        assert!(!group_alive(-5));
    }
}
