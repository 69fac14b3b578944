//! The FIFO queue: at most `kiln.jobs.maxConcurrent` bakes run; the others wait in arrival
//! order. One function, [`Bakery::pump`], starts waiting bakes whenever a slot is free, so the
//! order never depends on which task the runtime polls first. The limit is read at each pump,
//! so a reloaded config applies to the next start.
//!
//! Every task that holds a slot runs through [`Bakery::spawn_in_slot`]: whatever happens in it,
//! a panic included, the slot is freed and the bake is settled.

use super::{Bakery, lock, now_ms};
use crate::bake::{BakeRecord, Cause, Phase};
use crate::providers::Prepared;
use crate::store::Transition;
use futures_util::FutureExt;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub(super) struct Queue {
    pub waiting: VecDeque<Waiting>,
    pub running: usize,
}

pub(super) struct Waiting {
    pub record: BakeRecord,
    pub prepared: Prepared,
    pub token: CancellationToken,
}

impl Bakery {
    /// Queues a stored bake; it starts when a slot is free.
    pub(super) fn enqueue(&self, record: BakeRecord, prepared: Prepared) {
        let token = CancellationToken::new();
        lock(&self.inner.active).insert(record.id.clone(), token.clone());
        lock(&self.inner.queue).waiting.push_back(Waiting {
            record,
            prepared,
            token,
        });
        self.pump();
    }

    /// Counts a run that did not come through the queue (a re-attached one) as running.
    pub(super) fn occupy_slot(&self) {
        lock(&self.inner.queue).running += 1;
    }

    /// Frees a slot and starts what waits.
    pub(super) fn release_slot(&self) {
        {
            let mut q = lock(&self.inner.queue);
            q.running = q.running.saturating_sub(1);
        }
        self.pump();
    }

    /// Starts waiting bakes, oldest first, while slots are free.
    pub(super) fn pump(&self) {
        let max = self.settings().max_concurrent();
        loop {
            let next = {
                let mut q = lock(&self.inner.queue);
                if q.running >= max {
                    return;
                }
                let Some(next) = q.waiting.pop_front() else {
                    return;
                };
                if !next.token.is_cancelled() {
                    q.running += 1;
                }
                next
            };
            if next.token.is_cancelled() {
                lock(&self.inner.active).remove(&next.record.id);
                continue;
            }
            let bakery = self.clone();
            let id = next.record.id.clone();
            self.spawn_in_slot(id, async move { bakery.run_slot(next).await });
        }
    }

    /// Runs a bake's task in the slot it holds. When the task ends, the slot is freed; when it
    /// panics, the bake is settled FAILED with cause `internal_error` first, and a Packer run it
    /// left behind is stopped (nobody follows it any more).
    pub(super) fn spawn_in_slot(
        &self,
        id: String,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        let bakery = self.clone();
        tokio::spawn(async move {
            if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                bakery.settle_panicked(&id, &*panic);
            }
            lock(&bakery.inner.active).remove(&id);
            bakery.release_slot();
        });
    }

    fn settle_panicked(&self, id: &str, panic: &(dyn std::any::Any + Send)) {
        let what = crate::telemetry::panic_text(panic);
        // The panic's text may hold request values: it goes to kiln's log only, escaped.
        tracing::error!(bake = %id, panic = ?what, "a bake's task panicked; settling the bake");
        self.finish(
            id,
            Phase::Failed,
            Cause::InternalError,
            "kiln failed internally while running this bake (see kiln's log); bake again".into(),
        );
        self.stop_run(id);
    }

    /// Stops the Packer run of a bake nobody follows any more: the stop signal to its process
    /// group (Packer deletes what it created), then SIGKILL after the grace period.
    fn stop_run(&self, id: &str) {
        use crate::runner::{STOP_SIGNAL, group_alive, layout, signal_group};
        let Ok(Some(pgid)) = layout::read_pgid(&self.run_dir(id)) else {
            return;
        };
        if !group_alive(pgid) {
            return;
        }
        tracing::warn!(bake = %id, "stopping the Packer run of a bake settled after a panic");
        let _ = signal_group(pgid, STOP_SIGNAL);
        let grace = self.settings().kill_grace();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if group_alive(pgid) {
                let _ = signal_group(pgid, libc::SIGKILL);
            }
        });
    }

    /// Runs one bake in a slot it already holds (the caller frees the slot).
    async fn run_slot(&self, w: Waiting) {
        #[cfg(test)]
        tests::maybe_panic(&w.record);
        let id = w.record.id.clone();
        // Retried through a store outage: a bake dropped here would stay queued for good.
        let start = || {
            let store = &self.inner.store;
            store.transition(&id, Phase::Running, Transition::default(), now_ms())
        };
        // A bake that was marked running when kiln stopped, before its Packer started, starts now.
        let record = if w.record.phase == Phase::Running {
            Some(w.record.clone())
        } else {
            self.until_stored("start", &id, start).await.flatten()
        };
        if let Some(record) = record {
            self.run_build(record, &w.prepared, w.token).await;
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::bake::BakeRequest;
    use crate::store::SqliteStore;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// The package name that makes a bake's task panic: only in this crate's unit tests
    /// (`cfg(test)`), never in a build of kiln.
    pub(in crate::bakery) const PANIC_PACKAGE: &str = "kiln-test-panic-in-bake-task";

    pub(in crate::bakery) fn maybe_panic(record: &BakeRecord) {
        if record.request["package"] == PANIC_PACKAGE {
            panic!("test hook: a bake's task panics");
        }
    }

    pub(in crate::bakery) fn bakery(dir: &std::path::Path) -> Bakery {
        let yaml = format!(
            r#"aws:
  enabled: true
  bakeryDefaults:
    templateFile: aws-ebs.json
    baseImages:
    - baseImage: {{id: ubuntu, packageType: deb}}
      virtualizationSettings:
      - {{region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-785db401}}
kiln:
  dataDir: {data}
  jobs: {{maxConcurrent: 1}}
"#,
            data = dir.display()
        );
        let settings = crate::config::load_str(&yaml, &|_| None).unwrap().settings;
        crate::templates::install(&settings).unwrap();
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        // No supervisor can start from here: a bake that does not panic fails to start Packer,
        // which is enough to see that it got the slot.
        Bakery::new(settings, store, dir.join("no-such-kiln"))
    }

    pub(in crate::bakery) fn request(package: &str) -> BakeRequest {
        serde_json::from_value(serde_json::json!({"package": package, "base_os": "ubuntu"}))
            .unwrap()
    }

    async fn settled(bakery: &Bakery, id: &str) -> BakeRecord {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = bakery.store().get(id).unwrap().unwrap();
            if r.phase.is_finished() {
                return r;
            }
            assert!(Instant::now() < deadline, "bake {id} still {}", r.phase);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_panic_in_a_bake_task_settles_the_bake_and_frees_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let bakery = bakery(dir.path());
        let panics = bakery
            .create("us-east-1", request(PANIC_PACKAGE), false, None)
            .unwrap()
            .record;
        let next = bakery
            .create("us-east-1", request("nginx"), false, None)
            .unwrap()
            .record;
        let r = settled(&bakery, &panics.id).await;
        assert_eq!(
            (r.phase, r.cause),
            (Phase::Failed, Some(Cause::InternalError))
        );
        assert!(r.error.unwrap().contains("failed internally"));
        // The one slot was freed: the next bake got it (and failed to start Packer here).
        let n = settled(&bakery, &next.id).await;
        assert_eq!(n.cause, Some(Cause::JobFailed), "{:?}", n.error);
        assert!(bakery.active_ids().is_empty());
        assert_eq!(lock(&bakery.inner.queue).running, 0);
    }
}
