//! Following a run to its end: tail `output.log`, enforce the limits, stop Packer politely.
//!
//! The end is known from the supervisor (its `exit` file, written after the log is complete),
//! so a run is over when the exit is known *and* the log has been read to its end. When this
//! kiln started the supervisor, its exit wakes us at once; for a re-attached run the `exit`
//! file is polled alongside the log.
//!
//! Stopping (cancel, total or idle limit) sends [`STOP_SIGNAL`] to Packer's process group:
//! Packer then cancels its builds and cleans up after itself (terminates the builder instance,
//! deletes the temporary key pair and security group) before exiting 1. A bare SIGKILL would
//! leak those cloud resources, so it comes only after `kill_grace`, if Packer has not ended.
//!
//! A Packer whose supervisor died without recording an end (killed, out of memory) is stopped
//! the same way ([`StoppedBy::SupervisorDied`]), whether this kiln or a restarted one notices:
//! nobody records its output or its result any more, and left alone it would keep its builder
//! instance running. Its output FIFO is kept drained meanwhile, so its cleanup never blocks on a
//! full pipe; that output is discarded (only the supervisor can redact it).

use super::launch::Run;
use super::layout::{self, ExitRecord};
use super::signal;
use super::tail::Tail;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// What asks Packer's process group to stop.
///
/// Why SIGINT to the group (measured with Packer 1.6.6, null builder + a sleeping shell-local):
/// - SIGINT to the group: 210 of 210 runs cancelled and exited 1 within ~0.1 s. The wrapper
///   process ignores SIGINT, the real Packer gets it once, the plugins ignore it, and the
///   provisioner's local shell dies of it.
/// - SIGTERM to the group: 11 of 222 runs exited **0** after cancelling, most likely because
///   the wrapper forwards SIGTERM, so Packer gets it twice and the second can land after Packer
///   stopped listening. A stopped bake must never read as a success (callers should still go
///   by [`RunReport::stopped_by`], not by the exit code alone).
/// - SIGTERM (or SIGINT) to the wrapper pid alone: SIGINT is ignored; SIGTERM cancels, but a
///   local provisioner script keeps running to its end first.
pub const STOP_SIGNAL: i32 = signal::SIGINT;

/// How often the log and the `exit` file are looked at while nothing happens.
const POLL: Duration = Duration::from_millis(20);

/// The longest pause between looks at the log of a run whose supervisor is ours. Its exit wakes
/// the follower at once, so for such a run polling only paces the live log: after each look
/// that finds nothing new the pause doubles, from [`POLL`] up to this; new output brings it
/// back to [`POLL`]. (64 bakes looked at every 20 ms are 3,200 wake-ups a second.)
const QUIET_POLL: Duration = Duration::from_millis(320);

/// The limits of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest a run may take, measured from its start.
    pub total: Option<Duration>,
    /// The longest Packer may stay silent (it can stall on SSH or WinRM without a word).
    pub idle: Option<Duration>,
    /// How long Packer gets to clean up after [`STOP_SIGNAL`] before its group is SIGKILLed.
    pub kill_grace: Duration,
}

/// How Packer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// Nobody knows: no `exit` file, and neither the supervisor nor the process group is alive.
    Lost,
}

/// What made kiln stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedBy {
    Canceled,
    Timeout,
    IdleTimeout,
    /// The supervisor died while Packer ran: nobody would record its result.
    SupervisorDied,
}

/// The outcome of [`Run::follow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub ending: Ending,
    /// Set when kiln stopped the run; the first reason wins.
    pub stopped_by: Option<StoppedBy>,
    /// SIGKILL was needed because Packer outlived the grace after [`STOP_SIGNAL`].
    pub killed: bool,
    /// The last non-empty line seen: what Packer was last doing.
    pub last_line: Option<String>,
}

impl From<ExitRecord> for Ending {
    fn from(record: ExitRecord) -> Self {
        match record {
            ExitRecord::Code(code) => Ending::Exited(code),
            ExitRecord::Signal(sig) => Ending::Signaled(sig),
        }
    }
}

/// Mutable state of one [`Run::follow`].
struct Follow {
    run: Run,
    limits: Limits,
    total_deadline: Option<Instant>,
    last_activity: Instant,
    /// The current pause between looks (see [`QUIET_POLL`]).
    poll: Duration,
    stop: Option<(StoppedBy, Instant)>,
    /// The stop signal went out (it waits while the process group is not known yet).
    stop_sent: bool,
    killed: bool,
    ending: Option<Ending>,
    last_line: Option<String>,
    /// Packer's output FIFO, opened by kiln once the supervisor is dead.
    orphan_pipe: Option<File>,
    /// Bytes of output read from `orphan_pipe` and dropped.
    discarded: u64,
}

impl Run {
    /// Delivers every complete line of the log from `from_offset` on (with the offset after
    /// it, to resume from), enforcing `limits` (`total` counts from `started_at`, so a
    /// re-attached run keeps its original start) until the run has ended and its log is read.
    pub async fn follow(
        self,
        from_offset: u64,
        started_at: SystemTime,
        limits: &Limits,
        cancel: CancellationToken,
        mut on_line: impl FnMut(&str, u64),
    ) -> RunReport {
        let mut tail = Tail::new(self.dir.join(layout::OUTPUT), from_offset);
        let mut state = Follow::new(self, *limits, started_at);
        loop {
            let was_known = state.ending.is_some();
            state.read(&mut tail, &mut on_line).await;
            if was_known {
                // `exit` is written after the log is complete: this read got everything.
                return state.report();
            }
            state.check_files();
            if state.ending.is_none() {
                state.enforce(&cancel);
                state.wait(&cancel).await;
            }
        }
    }
}

impl Follow {
    fn new(run: Run, limits: Limits, started_at: SystemTime) -> Self {
        let now = Instant::now();
        let elapsed = started_at.elapsed().unwrap_or_default();
        let total_deadline = limits
            .total
            .map(|total| now + total.saturating_sub(elapsed));
        Follow {
            run,
            limits,
            total_deadline,
            last_activity: now,
            poll: POLL,
            stop: None,
            stop_sent: false,
            killed: false,
            ending: None,
            last_line: None,
            orphan_pipe: None,
            discarded: 0,
        }
    }

    async fn read(&mut self, tail: &mut Tail, on_line: &mut impl FnMut(&str, u64)) {
        let last_line = &mut self.last_line;
        let mut deliver = |line: &str, offset: u64| {
            if !line.trim().is_empty() {
                *last_line = Some(line.to_string());
            }
            on_line(line, offset);
        };
        match tail.read_available(&mut deliver).await {
            Ok(0) => {}
            Ok(_) => {
                self.last_activity = Instant::now();
                self.poll = POLL;
            }
            Err(e) => {
                tracing::warn!(run_dir = %self.run.dir.display(), error = %e, "failed to read the packer log")
            }
        }
    }

    /// Learns the end from the run directory when no supervisor of ours will tell us.
    fn check_files(&mut self) {
        if self.ending.is_some() || self.run.supervisor.is_some() {
            return;
        }
        if self.run.pgid == 0 {
            self.run.pgid = layout::read_pgid(&self.run.dir).ok().flatten().unwrap_or(0);
        }
        if let Some(record) = self.read_exit() {
            self.ending = Some(record.into());
        } else if layout::supervisor_alive(&self.run.dir) {
            // Still at work (or retrying to write `exit` to a full disk): wait for it.
        } else if signal::group_alive(self.run.pgid) {
            if !signal::process_alive(self.run.pgid) {
                // Packer itself (the group's leader) has ended: what is left of its group goes,
                // as its supervisor would have done.
                let _ = signal::signal_group(self.run.pgid, signal::SIGKILL);
            } else if self.stop.is_none() {
                tracing::warn!(run_dir = %self.run.dir.display(), pgid = self.run.pgid, "the supervisor of a running packer died; stopping packer so it cleans up");
                self.terminate(StoppedBy::SupervisorDied, Instant::now());
            }
            self.drain_orphan();
        } else {
            // The supervisor writes `exit` before it dies: look once more, then give up.
            self.ending = Some(self.read_exit().map_or(Ending::Lost, Ending::from));
        }
    }

    /// Reads and drops what Packer wrote since its supervisor died, so it never blocks on a full
    /// pipe while it cleans up.
    fn drain_orphan(&mut self) {
        if self.orphan_pipe.is_none() {
            self.orphan_pipe = File::options()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(self.run.dir.join(layout::OUTPUT_PIPE))
                .ok();
        }
        let Some(pipe) = self.orphan_pipe.as_mut() else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        // Until it would block (nothing more now) or ends (no writer left).
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            self.discarded += n as u64;
        }
    }

    fn read_exit(&self) -> Option<ExitRecord> {
        layout::read_exit(&self.run.dir).unwrap_or_else(|e| {
            tracing::warn!(run_dir = %self.run.dir.display(), error = %e, "unreadable exit file");
            None
        })
    }

    /// Starts stopping on cancel or an exceeded limit; SIGKILLs once the grace is over.
    fn enforce(&mut self, cancel: &CancellationToken) {
        let now = Instant::now();
        if let Some((_, since)) = self.stop {
            if !self.stop_sent {
                self.send_stop();
            }
            if !self.killed && now >= since + self.limits.kill_grace {
                self.kill();
            }
            return;
        }
        let idle_over = self
            .limits
            .idle
            .is_some_and(|idle| now >= self.last_activity + idle);
        let why = if cancel.is_cancelled() {
            Some(StoppedBy::Canceled)
        } else if self.total_deadline.is_some_and(|deadline| now >= deadline) {
            Some(StoppedBy::Timeout)
        } else if idle_over {
            Some(StoppedBy::IdleTimeout)
        } else {
            None
        };
        if let Some(why) = why {
            self.terminate(why, now);
        }
    }

    fn terminate(&mut self, why: StoppedBy, now: Instant) {
        tracing::info!(run_dir = %self.run.dir.display(), pgid = self.run.pgid, reason = ?why, "stopping packer (SIGINT to its group)");
        self.stop = Some((why, now));
        self.send_stop();
    }

    fn send_stop(&mut self) {
        if self.run.pgid == 0 {
            return;
        }
        self.stop_sent = true;
        if let Err(e) = signal::signal_group(self.run.pgid, STOP_SIGNAL) {
            tracing::warn!(pgid = self.run.pgid, error = %e, "failed to signal packer to stop");
        }
    }

    fn kill(&mut self) {
        if !signal::group_alive(self.run.pgid) {
            return;
        }
        tracing::warn!(run_dir = %self.run.dir.display(), pgid = self.run.pgid, "packer outlived its grace; SIGKILL");
        match signal::signal_group(self.run.pgid, signal::SIGKILL) {
            Ok(()) => self.killed = true,
            Err(e) => {
                tracing::warn!(pgid = self.run.pgid, error = %e, "failed to send SIGKILL to packer")
            }
        }
    }

    /// Sleeps until the next poll, a cancel, or (for our own supervisor) its exit.
    async fn wait(&mut self, cancel: &CancellationToken) {
        let stopping = self.stop.is_some();
        let Some(supervisor) = self.run.supervisor.as_mut() else {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = cancel.cancelled(), if !stopping => {}
            }
            return;
        };
        tokio::select! {
            status = supervisor.wait() => {
                if let Err(e) = &status {
                    tracing::warn!(run_dir = %self.run.dir.display(), error = %e, "failed to wait for the supervisor");
                }
                self.run.supervisor = None;
                // Without an `exit` file the supervisor died early: fall back to the files.
                self.ending = self.read_exit().map(Ending::from);
            }
            _ = tokio::time::sleep(self.poll) => {
                self.poll = (self.poll * 2).min(QUIET_POLL);
            }
            _ = cancel.cancelled(), if !stopping => {}
        }
    }

    fn report(self) -> RunReport {
        if self.discarded > 0 {
            tracing::warn!(run_dir = %self.run.dir.display(), bytes = self.discarded, "discarded packer output written after its supervisor died");
        }
        if let Some(dir) = &self.run.temp_dir
            && self.run.supervisor.is_none()
            && !layout::supervisor_alive(&self.run.dir)
            && let Err(e) = crate::runner::temp::remove(dir)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove packer's temp folder");
        }
        RunReport {
            ending: self.ending.unwrap_or(Ending::Lost),
            stopped_by: self.stop.map(|(why, _)| why),
            killed: self.killed,
            last_line: self.last_line,
        }
    }
}
