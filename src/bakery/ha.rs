//! Several kiln instances on one shared store (Redis): who is alive, who settles a dead
//! instance's bakes, and riding out a store outage.
//!
//! Invariants:
//! - An instance's id is stable for its data dir (`<dataDir>/instance-id`, `uuid@hostname`,
//!   written on first start), so a restarted instance re-attaches its own Packer runs.
//! - Each instance beats every `kiln.ha.heartbeat`; its heartbeat lives `orphanTimeout − heartbeat`.
//!   The first beat happens before `recover()`, so peers see a restarting instance as alive
//!   while it re-attaches.
//! - Liveness, not staleness: a bake is settled as orphaned only when its owner's heartbeat is
//!   gone, by the store's atomic claim (one settler per bake, never a live owner's bake). Queued
//!   bakes of a dead instance are settled too, not adopted: their request was prepared under the
//!   dead instance's configuration, and a caller that retries gets a fresh bake.
//! - An instance claims only after beating without failure for two intervals, so after a store
//!   outage every live peer has had a chance to beat again before anyone judges it dead.
//! - A bake canceled through another instance is stopped here within one interval.
//! - The bakery's own writes of a run's log and result are retried until the store takes them
//!   (`Bakery::until_stored`), so an outage delays them and loses nothing.

use super::{Bakery, lock, now_ms};
use crate::bake::Cause;
use crate::store::StoreResult;
use std::path::Path;
use std::time::{Duration, Instant};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// This data dir's instance id: read from `<dataDir>/instance-id`, or made and stored there on
/// first start. If it cannot be stored, a fresh id is used for this run (and said so).
pub(super) fn stable_instance_id(data_dir: &Path) -> String {
    let path = data_dir.join("instance-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if id.contains('@') && !id.chars().any(char::is_whitespace) {
            return id.to_string();
        }
        tracing::warn!(path = %path.display(), "ignoring a malformed instance id; making a new one");
    }
    let id = format!("{}@{}", uuid::Uuid::new_v4(), super::hostname());
    let tmp = data_dir.join(".instance-id.tmp");
    let stored = std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(&tmp, format!("{id}\n")))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = stored {
        tracing::warn!(path = %path.display(), error = %e,
            "cannot store the instance id; this run's bakes will not be re-attached after a restart");
    }
    id
}

impl Bakery {
    /// On a shared store: beats once now, then keeps beating, settling orphans and following
    /// remote cancels in a background task until shutdown. Does nothing on a one-node store.
    pub(super) fn start_ha(&self) {
        if !self.inner.store.is_shared() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no async runtime: this instance will not heartbeat");
            return;
        };
        let settings = self.settings();
        let (every, ttl) = (settings.heartbeat_every(), settings.heartbeat_ttl());
        let healthy_since = match self.beat(ttl) {
            Ok(()) => Some(Instant::now()),
            Err(e) => {
                tracing::warn!(error = %e, "first heartbeat failed; retrying");
                None
            }
        };
        let bakery = self.clone();
        runtime.spawn(async move { bakery.ha_loop(every, ttl, healthy_since).await });
    }

    async fn ha_loop(self, every: Duration, ttl: Duration, mut healthy_since: Option<Instant>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.inner.shutdown.cancelled() => return,
            }
            let bakery = self.clone();
            let claim_ok = healthy_since.is_some_and(|t| t.elapsed() >= every * 2);
            let beat = tokio::task::spawn_blocking(move || bakery.ha_tick(ttl, claim_ok)).await;
            match beat {
                Ok(Ok(())) => {
                    healthy_since.get_or_insert_with(Instant::now);
                }
                Ok(Err(e)) => {
                    if healthy_since.take().is_some() {
                        tracing::warn!(error = %e, "heartbeat failed; peers may soon judge this instance dead");
                    }
                }
                Err(e) => tracing::error!(error = %e, "the heartbeat task failed"),
            }
        }
    }

    /// One round: beat, then (when trusted) settle orphans and stop remotely canceled bakes.
    fn ha_tick(&self, ttl: Duration, claim: bool) -> StoreResult<()> {
        self.beat(ttl)?;
        if claim {
            self.settle_orphans();
        }
        self.stop_remotely_canceled();
        Ok(())
    }

    fn beat(&self, ttl: Duration) -> StoreResult<()> {
        self.inner
            .store
            .heartbeat(&self.inner.instance_id, ttl, &self.active_ids(), now_ms())
    }

    fn settle_orphans(&self) {
        let now = now_ms();
        match self.inner.store.claim_orphans(&self.inner.instance_id, now) {
            Ok(settled) => {
                for r in settled {
                    tracing::warn!(bake = %r.id, owner = %r.instance_id,
                        "settled a bake of a dead instance as orphaned");
                    self.inner
                        .metrics
                        .completed(Cause::Orphaned, &r.region, now - r.created_ms);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not look for orphaned bakes"),
        }
    }

    /// A cancel answered by another instance changes the stored phase only; this instance owns
    /// the Packer run, so it stops it here.
    fn stop_remotely_canceled(&self) {
        let active: Vec<_> = lock(&self.inner.active)
            .iter()
            .filter(|(_, token)| !token.is_cancelled())
            .map(|(id, token)| (id.clone(), token.clone()))
            .collect();
        for (id, token) in active {
            if let Ok(Some(r)) = self.inner.store.get(&id)
                && r.phase.is_finished()
            {
                tracing::info!(bake = %id, phase = %r.phase, "bake ended elsewhere; stopping it here");
                token.cancel();
            }
        }
    }

    /// Runs a store write until it succeeds, backing off from 100 ms to 5 s. `None` only when
    /// kiln is shutting down: the next start re-attaches the run and writes it then.
    pub(super) async fn until_stored<T>(
        &self,
        what: &str,
        id: &str,
        mut write: impl FnMut() -> StoreResult<T>,
    ) -> Option<T> {
        let mut wait = FIRST_RETRY;
        let mut failures = 0u32;
        loop {
            match write() {
                Ok(v) => {
                    if failures > 0 {
                        tracing::info!(bake = %id, what, failures, "stored after the store came back");
                    }
                    return Some(v);
                }
                Err(e) => {
                    if failures == 0 {
                        tracing::warn!(bake = %id, what, error = %e, "the store is unavailable; retrying until it is back");
                    }
                    failures += 1;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.shutdown.cancelled() => return None,
            }
            wait = (wait * 2).min(MAX_RETRY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_id_is_made_once_per_data_dir_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = stable_instance_id(&data);
        let (uuid, host) = first.split_once('@').unwrap();
        assert!(
            uuid::Uuid::parse_str(uuid).is_ok() && !host.is_empty(),
            "{first}"
        );
        assert_eq!(stable_instance_id(&data), first, "same data dir, same id");
        let other = stable_instance_id(&dir.path().join("other"));
        assert_ne!(other, first, "another data dir is another instance");
        std::fs::write(data.join("instance-id"), "garbage\n").unwrap();
        assert_ne!(
            stable_instance_id(&data),
            first,
            "a malformed id is replaced"
        );
    }
}
