//! The FIFO queue: at most `kiln.jobs.maxConcurrent` bakes run; the others wait in arrival
//! order. One function, [`Bakery::pump`], starts waiting bakes whenever a slot is free, so the
//! order never depends on which task the runtime polls first. The limit is read at each pump,
//! so a reloaded config applies to the next start.

use super::{Bakery, lock, now_ms};
use crate::bake::{BakeRecord, Phase};
use crate::providers::Prepared;
use crate::store::Transition;
use std::collections::VecDeque;
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
            tokio::spawn(async move { bakery.run_slot(next).await });
        }
    }

    /// Runs one bake in a slot it already holds, then frees the slot.
    async fn run_slot(&self, w: Waiting) {
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
            self.run_packer(record, &w.prepared, w.token).await;
        }
        lock(&self.inner.active).remove(&id);
        self.release_slot();
    }
}
