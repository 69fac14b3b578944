//! Running a bake: wait for a slot, start Packer under its supervisor, follow its output, and
//! settle the bake the moment Packer exits (no polling interval in between).

use super::logs::{FLUSH_EVERY, LogSink};
use super::{Bakery, lock, now_ms};
use crate::bake::{BakeDetails, BakeRecord, Cause, Phase};
use crate::builders::{self, packer::output::Outcome};
use crate::providers::{self, Prepared, RunContext};
use crate::runner::{self, Ending, Limits, Run, RunReport, StoppedBy};
use crate::store::Transition;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

impl Bakery {
    /// Runs a queued bake: the provider's staging, then its build plan under a supervisor.
    pub(super) async fn run_build(
        &self,
        record: BakeRecord,
        prepared: &Prepared,
        token: CancellationToken,
    ) {
        let settings = self.settings();
        let run_dir = self.run_dir(&record.id);
        let data_dir = settings.data_dir();
        let packer = settings.packer_path();
        let Some(provider) = providers::registry::find(&record.provider) else {
            let e = std::io::Error::other(format!("no provider '{}'", record.provider));
            return self.fail_to_start(&record, &e);
        };
        let mut p = prepared.clone();
        let run = RunContext {
            data_dir: &data_dir,
            packer: &packer,
            record: &record,
        };
        match provider.before_run(run, &mut p).await {
            Ok(notes) => {
                for n in notes {
                    let _ = self.inner.store.append_log(&record.id, &format!("{n}\n"));
                }
            }
            Err(e) => return self.fail_to_start(&record, &*e),
        }
        let temp_dir = match crate::runner::temp::folder(&data_dir, "r")
            .and_then(|dir| crate::runner::temp::check_socket_room(dir.path()).map(|()| dir))
        {
            Ok(dir) => dir,
            Err(e) => return self.fail_to_start(&record, &e),
        };
        p.plan.run = Some(builders::PlanRun {
            bake_id: record.id.clone(),
            kiln_exe: self.inner.kiln_exe.clone(),
        });
        let launch = builders::launch(&p.plan, &settings, Some(temp_dir.path().to_path_buf()));
        // Request values in the command are shown escaped: they cannot forge a log line.
        tracing::info!(bake = %record.id, builder = p.plan.builder.name(), command = %crate::telemetry::Escaped(&record.recipe.command.join(" ")), "starting the build");
        let started =
            runner::start(&self.inner.kiln_exe, &run_dir, &launch.spec, &launch.env).await;
        let run = match started {
            Ok(run) => run,
            Err(e) => return self.fail_to_start(&record, &e),
        };
        // From here the run owns the folder (its supervisor removes it).
        let _ = temp_dir.keep();
        let limits = Limits {
            total: p.timeout,
            idle: p.idle_timeout,
            kill_grace: settings.kill_grace(),
        };
        self.follow(record, run, 0, SystemTime::now(), limits, token)
            .await;
    }

    /// Follows a run from `offset` until Packer has exited, then settles the bake.
    pub(super) async fn follow(
        &self,
        record: BakeRecord,
        run: Run,
        offset: u64,
        started: SystemTime,
        limits: Limits,
        token: CancellationToken,
    ) {
        let run_dir = self.run_dir(&record.id);
        let settings = self.settings();
        let mut sink = LogSink::new(
            self.inner.store.clone(),
            &record.id,
            run_dir.clone(),
            settings.max_log_bytes(),
        )
        .timed(&record, self.inner.timelines.clone());
        if offset > 0 {
            sink.start_at(offset);
            replay(&mut sink, &run_dir, offset);
        }
        let sink = Arc::new(Mutex::new(sink));
        let ticker = spawn_flusher(sink.clone());
        let report = {
            let sink = sink.clone();
            run.follow(offset, started, &limits, token.clone(), move |line, end| {
                lock(&sink).line(line, end);
            })
            .await
        };
        ticker.abort();
        let mut sink = match Arc::try_unwrap(sink) {
            Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
            Err(shared) => std::mem::replace(
                &mut *lock(&shared),
                LogSink::new(self.inner.store.clone(), &record.id, run_dir.clone(), 0),
            ),
        };
        // The provider's checks of the made image (qemu: its files, digest, boot check) decide
        // too.
        let mut after = None;
        if (report.ending, report.stopped_by) == (Ending::Exited(0), None)
            && let Some(provider) = providers::registry::find(&record.provider)
        {
            let mut say = |line: &str| {
                sink.note(line);
                sink.flush();
            };
            let data_dir = self.data_dir();
            let packer = self.settings().packer_path();
            let run = RunContext {
                data_dir: &data_dir,
                packer: &packer,
                record: &record,
            };
            after = provider.after_run(run, &mut say, &token).await.err();
        }
        let settled = self
            .settle(&record, &report, &limits, &mut sink, after)
            .await;
        sink.flush();
        if let Some(provider) = providers::registry::find(&record.provider) {
            provider.cleanup(&self.data_dir(), &record);
        }
        sink.unpublish();
        // The log is stored and the bake settled: the run dir has served its purpose. Only a
        // run whose supervisor wrote `exit` (Packer is gone) is removed.
        if settled {
            let freed = super::retention::remove_finished_run(&run_dir);
            if freed > 0 {
                self.inner.metrics.reclaimed(freed, 0);
            }
        }
    }

    /// Turns a run's report into the bake's final phase, details and metrics. Its writes are
    /// retried until the store takes them (see `ha`): a store outage delays a result, never
    /// loses it. Says whether the bake's log and result are stored.
    async fn settle(
        &self,
        record: &BakeRecord,
        report: &RunReport,
        limits: &Limits,
        sink: &mut LogSink,
        after: Option<String>,
    ) -> bool {
        let now = now_ms();
        let last = sink
            .last_text
            .clone()
            .unwrap_or_else(|| "(no output)".into());
        let (phase, cause, error) = match (report.ending, report.stopped_by) {
            (_, Some(StoppedBy::Canceled)) => (Phase::Canceled, Cause::Canceled, "canceled on request".to_string()),
            (_, Some(StoppedBy::Timeout)) => (
                Phase::Failed,
                Cause::Timeout,
                format!("stopped: the bake's total time limit of {} was reached; Packer was last doing: {last}", human(limits.total)),
            ),
            (_, Some(StoppedBy::IdleTimeout)) => (
                Phase::Failed,
                Cause::IdleTimeout,
                format!("stopped: Packer printed nothing for {} (the no-output limit); it was last doing: {last}", human(limits.idle)),
            ),
            (Ending::Exited(0), None) => (Phase::Succeeded, Cause::Success, String::new()),
            (Ending::Exited(code), None) => (Phase::Failed, Cause::JobFailed, failure(&sink.outcome.errors, &format!("packer exited with code {code}"))),
            (Ending::Signaled(sig), None) => (Phase::Failed, Cause::JobFailed, format!("packer was killed by signal {sig}")),
            (_, Some(StoppedBy::SupervisorDied)) => (
                Phase::Failed,
                Cause::SupervisorDied,
                "kiln's supervisor of this bake's Packer run died, so nobody could record its result; kiln stopped Packer (the stop signal to its process group, then SIGKILL after kiln.jobs.killGrace) so it cleaned up its builder instance, key pair and security group; bake again".to_string(),
            ),
            (Ending::Lost, None) => (
                Phase::Failed,
                Cause::LostOnRestart,
                "the Packer run for this bake ended without a recorded result (its supervisor was gone, e.g. killed while kiln was down); bake again".to_string(),
            ),
        };
        let (phase, cause, error) = match after {
            Some(e) if phase == Phase::Succeeded => (Phase::Failed, Cause::JobFailed, e),
            _ => (phase, cause, error),
        };
        if phase != Phase::Succeeded {
            sink.note(&format!("kiln: bake {}: {error}", phase.as_str()));
        }
        if report.killed {
            sink.note("kiln: Packer did not stop within the grace period after the stop signal and was killed (kiln.jobs.killGrace)");
        }
        sink.timeline.end(now);
        // Why it failed, from the errors and the log's end; the diagnosis ends the log.
        let diagnosis = (phase == Phase::Failed)
            .then(|| {
                let mut errors = sink.outcome.errors.clone();
                errors.push(error.clone());
                crate::diagnosis::diagnose(&errors, sink.tail())
            })
            .flatten();
        if let Some(d) = &diagnosis {
            sink.note(&d.log_line());
        }
        let bake_report = crate::bake::BakeReport {
            timeline: sink.timeline.phases().to_vec(),
            diagnosis,
        };
        for p in &bake_report.timeline {
            if let Some(secs) = p.seconds {
                self.inner
                    .metrics
                    .phase_seconds(&p.phase, &record.provider, secs);
            }
        }
        let details = (phase == Phase::Succeeded).then(|| self.details(record, &sink.outcome));
        let change = Transition {
            cause: Some(cause),
            error: (!error.is_empty()).then_some(error),
            details: details.clone(),
            report: Some(bake_report),
        };
        let id = record.id.as_str();
        let mut images: Vec<(&str, &str)> = Vec::new();
        if let Some(d) = &details {
            for a in d.artifacts.iter().flatten() {
                if let (Some(loc), Some(reference)) = (&a.location, &a.reference) {
                    images.push((loc, reference));
                }
            }
            if d.artifacts.is_none()
                && let Some(ami) = &d.ami
            {
                images.push((&record.region, ami));
            }
        }
        let store = &self.inner.store;
        for (region, image) in images {
            let map = || store.map_image(region, image, id);
            self.until_stored("image", id, map).await;
        }
        // The log is complete before the phase changes, so a follower that sees the end has
        // seen every line.
        if self
            .until_stored("log", id, || sink.try_flush())
            .await
            .is_none()
        {
            return false;
        }
        let settled = || store.transition(id, phase, change.clone(), now);
        match self.until_stored("result", id, settled).await {
            Some(Some(done)) => {
                self.inner
                    .metrics
                    .completed(cause, &done.region, now - done.created_ms);
                true
            }
            // Settled already (a cancel): the log is stored all the same.
            Some(None) => true,
            None => false,
        }
    }

    /// Rosco's `Bake` for a successful run, in its provider's shape.
    fn details(&self, record: &BakeRecord, outcome: &Outcome) -> BakeDetails {
        let data_dir = self.data_dir();
        let packer = self.settings().packer_path();
        let run = RunContext {
            data_dir: &data_dir,
            packer: &packer,
            record,
        };
        match providers::registry::find(&record.provider) {
            Some(provider) => provider.details(run, outcome),
            None => providers::image_details(&record.provider, record, outcome),
        }
    }

    fn fail_to_start(&self, record: &BakeRecord, e: &(dyn std::error::Error + 'static)) {
        if let Some(provider) = providers::registry::find(&record.provider) {
            provider.cleanup(&self.data_dir(), record);
        }
        let error = format!("could not start the build: {}", crate::telemetry::Chain(e));
        self.finish(&record.id, Phase::Failed, Cause::JobFailed, error);
    }
}

fn failure(errors: &[String], fallback: &str) -> String {
    if errors.is_empty() {
        fallback.to_string()
    } else {
        errors.join("; ")
    }
}

/// A limit as the config spells durations (`30m`, `1h 30m`, `500ms`): humantime's form, which
/// the config loader also parses.
fn human(d: Option<Duration>) -> String {
    d.map_or_else(
        || "none".into(),
        |d| humantime::format_duration(d).to_string(),
    )
}

fn spawn_flusher(sink: Arc<Mutex<LogSink>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            tick.tick().await;
            lock(&sink).flush();
        }
    })
}

/// Feeds the lines stored before a restart to the result parser (not to the log again).
fn replay(sink: &mut LogSink, run_dir: &std::path::Path, upto: u64) {
    let Ok(bytes) = std::fs::read(run_dir.join("output.log")) else {
        return;
    };
    let end = (upto as usize).min(bytes.len());
    for line in String::from_utf8_lossy(&bytes[..end]).lines() {
        sink.replay(line);
    }
}

#[cfg(test)]
mod tests {
    use super::human;
    use std::time::Duration;

    #[test]
    fn limits_are_named_the_way_the_config_spells_them() {
        assert_eq!(human(Some(Duration::from_secs(1800))), "30m");
        assert_eq!(human(Some(Duration::from_secs(5400))), "1h 30m");
        assert_eq!(human(Some(Duration::from_secs(1))), "1s");
        assert_eq!(human(Some(Duration::from_millis(500))), "500ms");
        assert_eq!(human(None), "none");
    }
}
