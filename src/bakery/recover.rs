//! Start-up after a stop or a crash: nothing stays RUNNING. A running bake whose Packer still
//! runs (or finished while kiln was down) is re-attached and settled from its run dir; one whose
//! Packer is gone without a result is settled as lost; queued bakes go back in the queue in
//! their original order.

use super::logs::LogSink;
use super::{Bakery, lock};
use crate::bake::{BakeRecord, BakeRequest, Cause, Phase};
use crate::runner::{self, Limits};
use crate::store::StoreError;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// What start-up found, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub reattached: usize,
    pub requeued: usize,
    pub lost: usize,
}

impl Bakery {
    /// Settles or resumes every unfinished bake. Call once, inside the runtime, before serving.
    pub fn recover(&self) -> Result<Recovered, StoreError> {
        let mut found = Recovered::default();
        self.stop_settled_runs();
        self.sweep_temp();
        // On a shared store, other instances' bakes are theirs (or settled by `ha` if they died).
        let shared = self.inner.store.is_shared();
        let (running, queued): (Vec<_>, Vec<_>) = self
            .inner
            .store
            .unfinished()?
            .into_iter()
            .filter(|r| !shared || r.instance_id == self.inner.instance_id)
            .partition(|r| r.phase == Phase::Running);
        // Re-attached runs take their slots before anything queued may start.
        for record in running {
            let id = record.id.clone();
            self.recover_one(&id, || {
                if never_started(&self.run_dir(&record.id)) {
                    // Stopped after the bake was marked running but before Packer started:
                    // nothing ran, so it simply starts again.
                    let _ = std::fs::remove_dir_all(self.run_dir(&record.id));
                    self.requeue(record);
                    found.requeued += 1;
                } else if self.reattach(record.clone()) {
                    found.reattached += 1;
                } else {
                    self.settle_lost(&record);
                    found.lost += 1;
                }
            });
        }
        for record in queued {
            let id = record.id.clone();
            self.recover_one(&id, || {
                self.requeue(record);
                found.requeued += 1;
            });
        }
        Ok(found)
    }

    /// Recovers one stored bake. A panic on an odd record settles that bake FAILED
    /// (`internal_error`) and start-up goes on: one record must not put kiln in a crash loop.
    fn recover_one(&self, id: &str, recover: impl FnOnce()) {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(recover)) {
            let what = crate::telemetry::panic_text(&*panic);
            tracing::error!(bake = %id, panic = ?what, "recovering a stored bake panicked; settling it");
            self.finish(
                id,
                Phase::Failed,
                Cause::InternalError,
                "kiln could not recover this bake after a restart (see kiln's log); bake again"
                    .into(),
            );
        }
    }

    fn reattach(&self, record: BakeRecord) -> bool {
        let run_dir = self.run_dir(&record.id);
        let Some(run) = runner::reattach(&run_dir) else {
            return false;
        };
        let settings = self.settings();
        let req = stored_request(&record);
        let (total, idle) = match self.prepare(&record.region, &req) {
            Ok(p) => (p.timeout, p.idle_timeout),
            Err(_) => (settings.job_timeout(), settings.idle_timeout()),
        };
        let limits = Limits {
            total,
            idle,
            kill_grace: settings.kill_grace(),
        };
        let started = UNIX_EPOCH
            + Duration::from_millis(record.started_ms.unwrap_or(record.created_ms).max(0) as u64);
        let stored = self
            .inner
            .store
            .read_log(&record.id)
            .map(|l| l.len() as u64)
            .unwrap_or(0);
        let offset = LogSink::consumed_offset(&run_dir, stored);
        let token = CancellationToken::new();
        lock(&self.inner.active).insert(record.id.clone(), token.clone());
        // A re-attached run holds a slot like any running bake (beyond the limit if the limit
        // was lowered while kiln was down: the run exists either way).
        self.occupy_slot();
        let bakery = self.clone();
        let id = record.id.clone();
        self.spawn_in_slot(id.clone(), async move {
            let _ = bakery.inner.store.append_log(
                &id,
                "kiln: re-attached to this bake's Packer run after a restart\n",
            );
            bakery
                .follow(record, run, offset, started, limits, token)
                .await;
        });
        true
    }

    fn settle_lost(&self, record: &BakeRecord) {
        let error =
            "kiln restarted and this bake's Packer run was gone without a result; bake again";
        self.finish(
            &record.id,
            Phase::Failed,
            Cause::LostOnRestart,
            error.to_string(),
        );
    }

    fn requeue(&self, record: BakeRecord) {
        #[cfg(test)]
        super::queue::tests::maybe_panic(&record);
        let req = stored_request(&record);
        // The store keeps no secret: a masked value the request gave is `******` there, and
        // baking with that would make a wrong image. Say so instead.
        let masked = crate::providers::registry::masked_parameters(&self.settings());
        if let Some(name) = redacted_attribute(&req, &masked) {
            let error = format!(
                "could not re-queue after a restart: the request set the masked variable \
                 '{name}', whose value kiln does not keep at rest; bake again"
            );
            self.finish(&record.id, Phase::Failed, Cause::LostOnRestart, error);
            return;
        }
        match self.prepare(&record.region, &req) {
            Ok(prepared) => self.enqueue(record, prepared),
            Err(e) => {
                let error = format!("could not re-queue after a restart: {e}");
                self.finish(&record.id, Phase::Failed, Cause::LostOnRestart, error);
            }
        }
    }
}

impl Bakery {
    /// Stops Packer runs of this data dir whose bake was settled while kiln was away (another
    /// instance declared them orphaned, or a cancel came through a peer): nobody waits for
    /// their image, so they must not keep cloud resources busy.
    fn stop_settled_runs(&self) {
        use crate::runner::{STOP_SIGNAL, layout, signal_group};
        let Ok(entries) = std::fs::read_dir(self.data_dir().join("runs")) else {
            return;
        };
        for dir in entries.flatten().map(|e| e.path()) {
            let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(String::from) else {
                continue;
            };
            let settled = matches!(self.inner.store.get(&id), Ok(Some(r)) if r.phase.is_finished());
            if !settled {
                continue;
            }
            // Also a Packer whose supervisor died: nobody else would stop it.
            if let Ok(Some(pgid)) = layout::read_pgid(&dir)
                && (layout::supervisor_alive(&dir) || runner::group_alive(pgid))
            {
                tracing::warn!(bake = %id, "stopping a Packer run whose bake was settled while kiln was away");
                let _ = signal_group(pgid, STOP_SIGNAL);
            }
        }
    }
}

impl Bakery {
    /// Removes what dead runs (and crashed validates) left in kiln's temp folder; the folders of
    /// Packer runs that still live stay.
    fn sweep_temp(&self) {
        use crate::runner::layout;
        let live: Vec<std::path::PathBuf> = std::fs::read_dir(self.data_dir().join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|dir| {
                layout::supervisor_alive(dir)
                    || layout::read_pgid(dir)
                        .ok()
                        .flatten()
                        .is_some_and(runner::group_alive)
            })
            .filter_map(|dir| layout::read_spec(&dir).ok()?.temp_dir)
            .collect();
        crate::runner::temp::sweep(&self.data_dir(), &live);
    }
}

/// Whether a run dir shows that Packer was never started: no pgid written and no supervisor.
fn never_started(run_dir: &std::path::Path) -> bool {
    use crate::runner::layout;
    !run_dir.join(layout::PGID).exists()
        && !run_dir.join(layout::EXIT).exists()
        && !layout::supervisor_alive(run_dir)
}

/// The first masked extended attribute whose stored value is the redaction mark.
fn redacted_attribute(req: &BakeRequest, masked: &[String]) -> Option<String> {
    req.extended_attributes
        .iter()
        .flatten()
        .find(|(k, v)| masked.contains(k) && v.as_str() == Some("******"))
        .map(|(k, _)| k.clone())
}

/// A stored bake's request as its provider re-prepares it: bound to what it resolved when it
/// was created (AWS: the source image), so a re-prepared bake looks nothing up (no network I/O
/// at start-up) and bakes from the same image.
fn stored_request(record: &BakeRecord) -> BakeRequest {
    match crate::providers::registry::find(&record.provider) {
        Some(p) => p.stored_request(record),
        None => serde_json::from_value(record.request.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn a_stored_request_with_a_redacted_masked_value_is_told_apart() {
        let masked = vec!["api_token".to_string()];
        let req: BakeRequest = serde_json::from_value(serde_json::json!({
            "extended_attributes": {"api_token": "******", "other": "******"}
        }))
        .unwrap();
        assert_eq!(
            redacted_attribute(&req, &masked).as_deref(),
            Some("api_token")
        );
        let plain: BakeRequest = serde_json::from_value(serde_json::json!({
            "extended_attributes": {"other": "******"}
        }))
        .unwrap();
        assert_eq!(redacted_attribute(&plain, &masked), None);
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::tests::{PANIC_PACKAGE, bakery, request};
    use crate::bake::{Cause, Phase};

    #[tokio::test]
    async fn a_stored_bake_whose_recovery_panics_is_settled_and_start_up_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let bakery = bakery(dir.path());
        let mut ids = Vec::new();
        for package in [PANIC_PACKAGE, "nginx"] {
            let req = request(package);
            let prepared = bakery.prepare("us-east-1", &req).unwrap();
            let record = bakery.new_record("us-east-1", &req, &prepared, "ec2");
            bakery.store().create(&record, true).unwrap();
            ids.push(record.id);
        }
        let found = bakery.recover().expect("start-up goes on");
        assert_eq!(found.requeued, 1);
        let odd = bakery.store().get(&ids[0]).unwrap().unwrap();
        assert_eq!(
            (odd.phase, odd.cause),
            (Phase::Failed, Some(Cause::InternalError))
        );
        assert!(odd.error.unwrap().contains("could not recover"));
        assert_ne!(
            bakery.store().get(&ids[1]).unwrap().unwrap().phase,
            Phase::Failed,
            "the other bake was re-queued"
        );
    }
}
