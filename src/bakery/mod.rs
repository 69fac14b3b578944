//! The bakery service: it takes requests, deduplicates them by bake identity, queues them,
//! runs Packer, and settles each bake exactly once. HTTP handlers call it and nothing else; it
//! knows nothing of HTTP.
//!
//! Invariants:
//! - A bake's phase changes only through [`BakeStore::transition`], which refuses to change a
//!   finished bake; so a late result can never resurrect a canceled bake.
//! - Every bake that enters the queue is settled: by its run, by a cancel, or at the next start
//!   (re-attached, re-queued or marked lost).
//! - Secrets are only in memory and in Packer's environment.

mod create;
mod ha;
mod logs;
mod metrics;
mod queue;
mod recover;
mod retention;
pub use recover::Recovered;
pub use retention::{GcReport, Kind as RetentionKind, Removed};
mod run;

use crate::bake::now_ms;
pub use create::{CreateError, Created};
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics};
use queue::Queue;

use crate::bake::{BakeRecord, Cause, Phase};
use crate::config::Settings;
use crate::store::{BakeStore, StoreError, Transition};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use tokio_util::sync::CancellationToken;

/// Shared handle to the bakery.
#[derive(Clone)]
pub struct Bakery {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RwLock<Arc<Settings>>,
    store: Arc<dyn BakeStore>,
    instance_id: String,
    kiln_exe: PathBuf,
    /// Bakes this process is queuing or running, with the token that stops them.
    active: Mutex<HashMap<String, CancellationToken>>,
    /// Bakes waiting for a slot, in arrival order, and how many run now: the FIFO queue.
    queue: Mutex<Queue>,
    metrics: Metrics,
    /// The timelines of the bakes this process follows, while they run.
    timelines: logs::LiveTimelines,
    /// Stops background work on shutdown, without canceling bakes.
    shutdown: CancellationToken,
}

/// Why a cancel did not happen (Rosco's 400 message).
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("Unable to locate incomplete bake with id '{0}'.")]
    NotIncomplete(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Bakery {
    /// A bakery on `store`. Its instance id is its data dir's own (see `ha`). On a shared store
    /// it starts heartbeating at once: call it inside the runtime, before [`Bakery::recover`].
    pub fn new(settings: Settings, store: Arc<dyn BakeStore>, kiln_exe: PathBuf) -> Bakery {
        let instance_id = ha::stable_instance_id(&settings.data_dir());
        let bakery = Bakery {
            inner: Arc::new(Inner {
                settings: RwLock::new(Arc::new(settings)),
                store,
                instance_id,
                kiln_exe,
                active: Mutex::new(HashMap::new()),
                queue: Mutex::new(Queue::default()),
                metrics: Metrics::default(),
                timelines: Default::default(),
                shutdown: CancellationToken::new(),
            }),
        };
        bakery.start_ha();
        bakery.start_retention();
        bakery
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.inner
            .settings
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the settings for bakes created from now on; running bakes keep theirs.
    pub fn replace_settings(&self, settings: Settings) {
        match self.inner.settings.write() {
            Ok(mut s) => *s = Arc::new(settings),
            Err(p) => *p.into_inner() = Arc::new(settings),
        }
        // A raised `maxConcurrent` starts waiting bakes now, not at the next bake's end.
        self.pump();
    }

    pub fn store(&self) -> &Arc<dyn BakeStore> {
        &self.inner.store
    }

    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A bake's timeline: the live one while this process follows it, else the stored one.
    pub fn timeline(&self, r: &BakeRecord) -> Vec<crate::bake::PhaseTiming> {
        if !r.phase.is_finished()
            && let Some(live) = lock(&self.inner.timelines).get(&r.id)
        {
            return live.clone();
        }
        r.report.timeline.clone()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.settings().data_dir()
    }

    fn run_dir(&self, id: &str) -> PathBuf {
        self.data_dir().join("runs").join(id)
    }

    /// Ids of the bakes this process is running or queuing.
    pub fn active_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.inner.active).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether this process runs the bake's task now (not just queues it): its log may still
    /// grow after its phase reads finished (a canceled bake's Packer says its last lines).
    pub fn runs_here(&self, id: &str) -> bool {
        lock(&self.inner.active).contains_key(id) && self.queue_position(id).is_none()
    }

    /// The 1-based queue position of a waiting bake.
    pub fn queue_position(&self, id: &str) -> Option<usize> {
        lock(&self.inner.queue)
            .waiting
            .iter()
            .position(|w| w.record.id == id)
            .map(|p| p + 1)
    }

    pub fn queued_count(&self) -> usize {
        lock(&self.inner.queue).waiting.len()
    }

    /// Cancels a queued or running bake: it reads CANCELED at once, and its Packer (if any) is
    /// stopped with SIGINT to its process group, given the grace period to clean up, then killed.
    pub fn cancel(&self, id: &str) -> Result<BakeRecord, CancelError> {
        let now = now_ms();
        let change = Transition {
            cause: Some(Cause::Canceled),
            error: Some("canceled on request".into()),
            details: None,
            report: None,
        };
        let record = self
            .inner
            .store
            .transition(id, Phase::Canceled, change, now)?
            .ok_or_else(|| CancelError::NotIncomplete(id.to_string()))?;
        if let Some(token) = lock(&self.inner.active).get(id) {
            token.cancel();
        }
        lock(&self.inner.queue)
            .waiting
            .retain(|w| w.record.id != id);
        self.inner
            .metrics
            .completed(Cause::Canceled, &record.region, now - record.created_ms);
        Ok(record)
    }

    /// Ends a bake: logs `error` into the bake's log, moves it to `phase` (if it is not finished
    /// already) and counts it. Every end of a bake goes through here or through `settle`.
    pub(crate) fn finish(
        &self,
        id: &str,
        phase: Phase,
        cause: Cause,
        error: String,
    ) -> Option<BakeRecord> {
        let _ = self.inner.store.append_log(id, &format!("kiln: {error}\n"));
        let now = now_ms();
        let change = Transition {
            cause: Some(cause),
            error: Some(error),
            details: None,
            report: None,
        };
        let done = self
            .inner
            .store
            .transition(id, phase, change, now)
            .ok()
            .flatten()?;
        self.inner
            .metrics
            .completed(cause, &done.region, now - done.created_ms);
        Some(done)
    }

    /// Stops background work; bakes keep running under their supervisors and are re-attached by
    /// the next start.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
