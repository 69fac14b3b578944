//! Where bakes are kept. One trait, [`BakeStore`], with one engine per backend: the embedded
//! SQLite engine is the default. Every engine passes the same conformance suite
//! ([`conformance`]), so the bakery never knows which one it talks to.
//!
//! Rules every engine keeps:
//! - `create` is atomic: of two requests with the same identity, exactly one creates a bake and
//!   the other gets that bake back.
//! - A finished bake never changes phase again (`Phase::can_become`), so a late update never
//!   resurrects a canceled bake.
//! - Logs are appended in chunks and read back whole; nothing rewrites a whole log.
//! - An engine several kiln instances share ([`BakeStore::is_shared`]) keeps their heartbeats,
//!   and settles a bake as orphaned only when its owner's heartbeat is gone, exactly once.

#[cfg(test)]
pub(crate) mod conformance;
mod engine;
pub mod health;
pub mod listing;
#[cfg(feature = "redis")]
mod redis;
mod sqlite;

pub use engine::{OpenError, open};
pub use listing::{BakeFilter, Batch, Cursor, Page};
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use sqlite::SqliteStore;

use crate::bake::{BakeDetails, BakeRecord, BakeReport, Cause, Phase};
use std::time::Duration;

/// A store failure. Engines map their own errors into this one.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or answered with an error.
    #[error("bake store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read back.
    #[error("bake store holds an unreadable record: {0}")]
    Corrupt(String),
    /// The store answers but cannot take writes now (a full or read-only data dir, a damaged
    /// database file): reads may still work, new bakes cannot be recorded. The text says why.
    #[error("bake store cannot write: {0}")]
    Unwritable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Decoded records, without those that could not be decoded (each logged); an outage is still
/// an error.
pub(crate) fn skip_unreadable(
    records: impl IntoIterator<Item = StoreResult<BakeRecord>>,
) -> StoreResult<Vec<BakeRecord>> {
    let mut readable = Vec::new();
    for r in records {
        match r {
            Ok(record) => readable.push(record),
            Err(StoreError::Corrupt(why)) => {
                tracing::warn!(error = ?why, "skipping a stored bake that cannot be read");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(readable)
}

/// A finished bake as retention sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settled {
    pub id: String,
    pub provider: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Which finished bakes retention deletes: those settled before `before_ms`, and those beyond
/// the newest `keep` (newest by creation). The SQLite engine says the same in SQL.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn too_old(
    mut settled: Vec<Settled>,
    before_ms: Option<i64>,
    keep: Option<usize>,
) -> Vec<Settled> {
    settled.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    settled
        .into_iter()
        .enumerate()
        .filter(|(i, s)| {
            before_ms.is_some_and(|t| s.updated_ms < t) || keep.is_some_and(|k| *i >= k)
        })
        .map(|(_, s)| s)
        .collect()
}

/// The answer to [`BakeStore::create`].
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// The record was stored; it is the bake for its identity now.
    New,
    /// A reusable bake (queued, running or succeeded) with the same identity exists; it is
    /// returned and nothing was stored.
    Existing(Box<BakeRecord>),
}

/// A change of phase, with what goes with it.
#[derive(Debug, Clone, Default)]
pub struct Transition {
    pub cause: Option<Cause>,
    pub error: Option<String>,
    pub details: Option<BakeDetails>,
    /// The timeline and diagnosis learned from the output (replaces the stored one).
    pub report: Option<BakeReport>,
}

/// A kiln instance whose heartbeat is live, as its last heartbeat tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// When it last beat (its own clock, ms since the epoch).
    pub beat_ms: i64,
    /// The bakes it said it was queuing or running then.
    pub running: Vec<String>,
}

pub trait BakeStore: Send + Sync {
    /// Stores a new bake unless `reuse` is true and a reusable bake with the same identity
    /// exists. With `reuse == false` (a rebake) the new bake replaces the identity's binding.
    fn create(&self, record: &BakeRecord, reuse: bool) -> StoreResult<Created>;

    fn get(&self, id: &str) -> StoreResult<Option<BakeRecord>>;

    /// A bake's phase (what a status poll needs); an engine may read just that.
    fn phase(&self, id: &str) -> StoreResult<Option<Phase>> {
        Ok(self.get(id)?.map(|r| r.phase))
    }

    /// A bake's details (what `GET /api/v1/{region}/bake/{id}` needs): `None` for an unknown
    /// bake and for one without details alike. An engine may read just that.
    fn details(&self, id: &str) -> StoreResult<Option<BakeDetails>> {
        Ok(self.get(id)?.and_then(|r| r.details))
    }

    /// The bake currently bound to an identity, whatever its phase.
    fn get_by_identity(&self, identity: &str) -> StoreResult<Option<BakeRecord>>;

    /// Moves a bake to `phase` if [`Phase::can_become`] allows it. Returns the updated record, or
    /// `None` when the bake is unknown or the move is not allowed (nothing changes then).
    fn transition(
        &self,
        id: &str,
        phase: Phase,
        change: Transition,
        now_ms: i64,
    ) -> StoreResult<Option<BakeRecord>>;

    /// Appends a chunk to the bake's log.
    fn append_log(&self, id: &str, chunk: &str) -> StoreResult<()>;

    /// The whole log so far (empty when there is none).
    fn read_log(&self, id: &str) -> StoreResult<String>;

    /// The log from byte `offset` on, for followers that have read up to there.
    fn read_log_from(&self, id: &str, offset: usize) -> StoreResult<String>;

    /// Records that `image` in `region` was made by bake `id`.
    fn map_image(&self, region: &str, image: &str, id: &str) -> StoreResult<()>;

    fn bake_for_image(&self, region: &str, image: &str) -> StoreResult<Option<String>>;

    /// Forgets the identity binding of bake `id`, so the next identical request bakes again.
    /// The bake record itself stays readable by id.
    fn unbind(&self, id: &str) -> StoreResult<()>;

    /// Deletes every bake created under these pipeline executions (ids before the first `:`).
    fn delete_by_executions(&self, execution_ids: &[String]) -> StoreResult<usize>;

    /// Deletes finished bakes (with their logs, image mappings and identity bindings) that
    /// settled before `settled_before_ms`, and those beyond the newest `keep` finished bakes
    /// (newest by creation). Queued and running bakes are never deleted. Returns the deleted
    /// bakes' ids and providers, so their local files can go too.
    fn delete_finished(
        &self,
        settled_before_ms: Option<i64>,
        keep: Option<usize>,
    ) -> StoreResult<Vec<(String, String)>>;

    /// Bakes not finished yet (queued or running), oldest first. A record that cannot be read
    /// back is left out with a warning (see [`skip_unreadable`]): start-up recovers the others
    /// instead of failing, again at every restart, on one bad record.
    fn unfinished(&self) -> StoreResult<Vec<BakeRecord>>;

    /// Up to `n` bakes strictly older than `after` (all bakes when `None`) in the order
    /// `(created_ms, id)` descending, bytewise on `id`: the engine's part of a listing.
    fn older_than(&self, after: Option<&Cursor>, n: usize) -> StoreResult<Batch>;

    /// A page of bakes matching `filter`, newest first, after `after`; see [`listing`].
    fn list(&self, filter: &BakeFilter, after: Option<&Cursor>, limit: usize) -> StoreResult<Page> {
        listing::list(self, filter, after, limit)
    }

    /// Checks the backend answers.
    fn ping(&self) -> StoreResult<()>;

    /// Checks the store can write and read back now, for `/health` and before a new bake: a
    /// real round trip (see [`health`]), cached briefly by engines for which it costs I/O.
    fn probe(&self) -> StoreResult<()> {
        self.ping()
    }

    /// Whether several kiln instances share this store. One node's own store (SQLite) answers
    /// false: every bake in it is that node's, so the heartbeat methods below do nothing.
    fn is_shared(&self) -> bool {
        false
    }

    /// Records that `instance` is alive for `ttl` from now, queuing or running `running`.
    fn heartbeat(
        &self,
        _instance: &str,
        _ttl: Duration,
        _running: &[String],
        _now_ms: i64,
    ) -> StoreResult<()> {
        Ok(())
    }

    /// The instances whose heartbeat is live, by id.
    fn instances(&self) -> StoreResult<Vec<Instance>> {
        Ok(Vec::new())
    }

    /// Settles, in one atomic step, every unfinished bake whose owner (`instance_id`) has no
    /// live heartbeat: it becomes failed with cause `orphaned`, and a line in its log says why.
    /// Returns the settled bakes. Of several racing claimers, each bake goes to exactly one.
    fn claim_orphans(&self, _claimer: &str, _now_ms: i64) -> StoreResult<Vec<BakeRecord>> {
        Ok(Vec::new())
    }
}
