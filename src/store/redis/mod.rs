//! The Redis engine (`kiln.store: redis`; in the default build, left out by
//! `--no-default-features`): the store several kiln
//! instances share. It keeps the same rules as SQLite (the conformance suite checks them) and
//! adds the instances' heartbeats.
//!
//! Keys (all under `kiln:`):
//! - `bake:<id>` hash, one field per record column (see `codec`);
//! - `identity:<identity>` string: the bake an identical request gets back (the dedupe binding);
//! - `unfinished` zset of queued and running bake ids, scored by `created_ms`;
//! - `bakes` zset of every bake, all scored 0, member `<created_ms, 20 digits>:<id>` ([`age_member`]):
//!   lexicographic order is the listing's `(created_ms, id)` order (`ZREVRANGEBYLEX`);
//! - `execution:<execution id>` set of the bake ids created under a pipeline execution;
//! - `log:<id>` string, grown with `APPEND` only; a follower reads from its offset (`GETRANGE`);
//! - `images:<region>` hash image → bake id, and `bake-images:<id>` set of `[region, image]`;
//! - `heartbeat:<instance>` string `{beat_ms, running}` with a TTL, and `instances` set.
//!
//! Invariants:
//! - Every change that reads before it writes is one Lua script (see `scripts`): atomic on the
//!   server, one round trip, no check-then-set race between instances.
//! - A failed call is `StoreError::Unavailable`; nothing panics; connections heal by themselves
//!   (see `conn`). The DB index in the URI is honoured (Rosco ignores it).

mod codec;
mod conn;
mod scripts;
#[cfg(test)]
pub(crate) mod tests;

use super::health::Probed;
use super::{BakeStore, Batch, Created, Cursor, Instance, StoreError, StoreResult, Transition};
use crate::bake::{BakeRecord, Phase};
use crate::config::{check_redis_connection, describe_redis};
use codec::{corrupt, decode, encode, pairs, to_json};
use conn::Pool;
use redis::Connection;
use scripts::{PREFIX, Scripts};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// `id, phase, created_ms, updated_ms, provider` of a bake hash, as retention reads them.
type Hmget = (
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

/// The Redis engine: a connection pool and the compiled scripts. Cheap to share behind an
/// `Arc`; every method is one or two round trips.
pub struct RedisStore {
    pool: Pool,
    scripts: Scripts,
    /// This store's own `health:<uuid>` key, written and read back by [`BakeStore::probe`].
    probe_key: String,
    probed: Probed,
}

/// What a heartbeat key holds.
#[derive(Serialize, Deserialize)]
struct Beat {
    beat_ms: i64,
    running: Vec<String>,
}

impl RedisStore {
    /// Connects to the Redis at `uri` (`redis://[[user]:password@]host[:port][/db]`) with
    /// `timeout` for connecting and for each reply, and checks that it answers.
    pub fn open(uri: &str, timeout: Duration) -> StoreResult<RedisStore> {
        Self::open_with(uri, timeout, None)
    }

    /// [`RedisStore::open`], trusting only the PEM CA certificates in `ca_pem` for a
    /// `rediss://` URI (the system's roots when `None`).
    pub fn open_with(
        uri: &str,
        timeout: Duration,
        ca_pem: Option<Vec<u8>>,
    ) -> StoreResult<RedisStore> {
        let target = describe_redis(uri);
        check_redis_connection(uri)
            .map_err(|e| StoreError::Unavailable(format!("redis.connection: {e}")))?;
        let store = RedisStore {
            pool: Pool::new(uri, target, timeout, ca_pem)?,
            scripts: Scripts::new(),
            probe_key: key("health", &uuid::Uuid::new_v4().to_string()),
            probed: Probed::default(),
        };
        store.ping()?;
        store.index_older_bakes()?;
        Ok(store)
    }

    /// Adds bakes stored before the `bakes` age index existed to it, once per Redis (a marker key
    /// says it is done; running it twice, or racing another kiln, only re-adds members).
    fn index_older_bakes(&self) -> StoreResult<()> {
        const WHAT: &str = "failed to index older bakes";
        let marker = global("bakes-indexed");
        let done: bool = self
            .pool
            .run(WHAT, |c| redis::cmd("EXISTS").arg(&marker).query(c))?;
        if done {
            return Ok(());
        }
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = self.pool.run(WHAT, |c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(key("bake", "*"))
                    .arg("COUNT")
                    .arg(500)
                    .query(c)
            })?;
            for k in keys {
                let (id, ms): (Option<String>, Option<i64>) = self.pool.run(WHAT, |c| {
                    redis::cmd("HMGET")
                        .arg(&k)
                        .arg("id")
                        .arg("created_ms")
                        .query(c)
                })?;
                if let (Some(id), Some(ms)) = (id, ms) {
                    self.pool.run(WHAT, |c| {
                        redis::cmd("ZADD")
                            .arg(global("bakes"))
                            .arg(0)
                            .arg(age_member(ms, &id))
                            .query::<()>(c)
                    })?;
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.pool.run(WHAT, |c| {
            redis::cmd("SET").arg(&marker).arg(1).query::<()>(c)
        })
    }

    /// Where this store's Redis is, without the password.
    pub fn target(&self) -> &str {
        self.pool.target()
    }

    fn records(&self, hashes: Vec<Vec<String>>) -> StoreResult<Vec<BakeRecord>> {
        hashes
            .into_iter()
            .filter_map(|h| decode(pairs(h)).transpose())
            .collect()
    }
}

fn key(kind: &str, name: &str) -> String {
    format!("{PREFIX}{kind}:{name}")
}

/// A key that is one for the whole store (`unfinished`, `instances`).
fn global(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// A bake's member in the `bakes` age index: `created_ms` zero-padded to 20 digits, `:`, the id,
/// so that bytewise order is `(created_ms, id)` order (a negative time sorts as 0).
fn age_member(created_ms: i64, id: &str) -> String {
    format!("{:020}:{id}", created_ms.max(0))
}

/// The position an age-index member stands for ([`age_member`] read back).
fn member_position(member: &str) -> Option<Cursor> {
    let (ms, id) = member.split_at_checked(20)?;
    Some(Cursor {
        created_ms: ms.parse().ok()?,
        id: id.strip_prefix(':')?.to_string(),
    })
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

impl BakeStore for RedisStore {
    fn create(&self, record: &BakeRecord, reuse: bool) -> StoreResult<Created> {
        let fields = encode(record)?;
        let execution = record.execution_id.as_deref();
        let answer: Vec<String> = self.pool.run("failed to create bake", |c| {
            let mut inv = self.scripts.create.prepare_invoke();
            inv.key(key("identity", &record.identity))
                .key(key("bake", &record.id))
                .key(global("unfinished"))
                .key(key("execution", execution.unwrap_or("")))
                .key(global("bakes"))
                .arg(flag(reuse))
                .arg(&record.id)
                .arg(record.created_ms)
                .arg(record.phase.as_str())
                .arg(flag(execution.is_some()))
                .arg(age_member(record.created_ms, &record.id));
            for (field, value) in &fields {
                inv.arg(*field).arg(value);
            }
            inv.invoke(c)
        })?;
        let mut answer = answer.into_iter();
        match answer.next().as_deref() {
            Some("new") => Ok(Created::New),
            Some("existing") => decode(pairs(answer.collect()))?
                .map(|r| Created::Existing(Box::new(r)))
                .ok_or_else(|| corrupt(&record.identity, "identity", "bound to an empty bake")),
            other => Err(corrupt(
                &record.id,
                "create",
                format!("unexpected reply {other:?}"),
            )),
        }
    }

    fn get(&self, id: &str) -> StoreResult<Option<BakeRecord>> {
        let h: HashMap<String, String> = self.pool.run("failed to read bake", |c| {
            redis::cmd("HGETALL").arg(key("bake", id)).query(c)
        })?;
        decode(h)
    }

    fn get_by_identity(&self, identity: &str) -> StoreResult<Option<BakeRecord>> {
        let h: Vec<String> = self.pool.run("failed to read bake", |c| {
            self.scripts
                .by_identity
                .key(key("identity", identity))
                .invoke(c)
        })?;
        decode(pairs(h))
    }

    fn transition(
        &self,
        id: &str,
        phase: Phase,
        change: Transition,
        now_ms: i64,
    ) -> StoreResult<Option<BakeRecord>> {
        // A transition only adds: what it leaves out keeps its stored value.
        let mut set: Vec<(&str, String)> = Vec::new();
        if let Some(c) = change.cause {
            set.push(("cause", c.as_str().to_string()));
        }
        if let Some(e) = change.error {
            set.push(("error", e));
        }
        if let Some(d) = &change.details {
            set.push(("details", to_json(id, "details", d)?));
        }
        if let Some(r) = &change.report {
            set.push(("report", to_json(id, "report", r)?));
        }
        let h: Vec<String> = self.pool.run("failed to update bake", |c| {
            let mut inv = self.scripts.transition.prepare_invoke();
            inv.key(key("bake", id))
                .key(global("unfinished"))
                .arg(phase.as_str())
                .arg(now_ms)
                .arg(id);
            for (field, value) in &set {
                inv.arg(*field).arg(value);
            }
            inv.invoke(c)
        })?;
        decode(pairs(h))
    }

    fn append_log(&self, id: &str, chunk: &str) -> StoreResult<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.pool.run("failed to append log", |c| {
            self.scripts
                .append_log
                .key(key("bake", id))
                .key(key("log", id))
                .arg(chunk)
                .invoke::<i64>(c)
        })?;
        Ok(())
    }

    fn read_log(&self, id: &str) -> StoreResult<String> {
        self.read_log_from(id, 0)
    }

    fn read_log_from(&self, id: &str, offset: usize) -> StoreResult<String> {
        let start = i64::try_from(offset).unwrap_or(i64::MAX);
        let bytes: Vec<u8> = self.pool.run("failed to read log", |c| {
            redis::cmd("GETRANGE")
                .arg(key("log", id))
                .arg(start)
                .arg(-1)
                .query(c)
        })?;
        // A follower that stopped inside a character moves on to the next whole one.
        let skip = bytes.iter().take_while(|b| (**b & 0xC0) == 0x80).count();
        String::from_utf8(bytes[skip..].to_vec()).map_err(|e| corrupt(id, "log", e))
    }

    fn map_image(&self, region: &str, image: &str, id: &str) -> StoreResult<()> {
        let pair = to_json(id, "image", &[region, image])?;
        self.pool.run("failed to map image", |c| {
            redis::pipe()
                .atomic()
                .hset(key("images", region), image, id)
                .ignore()
                .sadd(key("bake-images", id), &pair)
                .ignore()
                .query::<()>(c)
        })
    }

    fn bake_for_image(&self, region: &str, image: &str) -> StoreResult<Option<String>> {
        self.pool.run("failed to look up image", |c| {
            redis::cmd("HGET")
                .arg(key("images", region))
                .arg(image)
                .query(c)
        })
    }

    fn unbind(&self, id: &str) -> StoreResult<()> {
        // By bake id, so a binding already moved to a rebake is left alone.
        self.pool.run("failed to unbind bake", |c| {
            self.scripts
                .unbind
                .key(key("bake", id))
                .arg(id)
                .invoke::<i64>(c)
        })?;
        Ok(())
    }

    fn delete_by_executions(&self, execution_ids: &[String]) -> StoreResult<usize> {
        if execution_ids.is_empty() {
            return Ok(0);
        }
        // A whole `spinnaker_execution_id` counts by its part before the first ':'.
        let sets: Vec<String> = execution_ids
            .iter()
            .map(|full| key("execution", full.split(':').next().unwrap_or(full)))
            .collect();
        let n: i64 = self.pool.run("failed to delete bakes", |c| {
            let mut inv = self.scripts.delete_executions.prepare_invoke();
            for set in &sets {
                inv.key(set);
            }
            inv.invoke(c)
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Finished bakes are found with `SCAN` (no index of them is kept: this runs when retention
    /// does, not per request), chosen here, and deleted by a script that deletes only bakes
    /// still finished — which, once finished, they stay.
    fn delete_finished(
        &self,
        settled_before_ms: Option<i64>,
        keep: Option<usize>,
    ) -> StoreResult<Vec<(String, String)>> {
        const WHAT: &str = "failed to delete old bakes";
        let pattern = format!("{PREFIX}bake:*");
        let keys: Vec<String> = self.pool.run(WHAT, |c| {
            let iter = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter::<String>(c)?;
            iter.collect::<Result<Vec<_>, _>>()
        })?;
        let mut candidates = Vec::new();
        for chunk in keys.chunks(500) {
            let fields: Vec<Hmget> = self.pool.run(WHAT, |c| {
                let mut pipe = redis::pipe();
                for k in chunk {
                    pipe.cmd("HMGET").arg(k).arg(&[
                        "id",
                        "phase",
                        "created_ms",
                        "updated_ms",
                        "provider",
                    ]);
                }
                pipe.query(c)
            })?;
            for (id, phase, created, updated, provider) in fields {
                let finished = phase
                    .and_then(|p| p.parse::<Phase>().ok())
                    .is_some_and(Phase::is_finished);
                if let (true, Some(id), Some(created), Some(updated)) =
                    (finished, id, created, updated)
                {
                    candidates.push(super::Settled {
                        id,
                        provider: provider.unwrap_or_default(),
                        created_ms: created,
                        updated_ms: updated,
                    });
                }
            }
        }
        let chosen = super::too_old(candidates, settled_before_ms, keep);
        let mut deleted = Vec::new();
        for chunk in chosen.chunks(200) {
            let ids: Vec<String> = self.pool.run(WHAT, |c| {
                let mut inv = self.scripts.delete_finished.prepare_invoke();
                for s in chunk {
                    inv.arg(&s.id);
                }
                inv.invoke(c)
            })?;
            deleted.extend(
                chunk
                    .iter()
                    .filter(|s| ids.contains(&s.id))
                    .map(|s| (s.id.clone(), s.provider.clone())),
            );
        }
        Ok(deleted)
    }

    fn unfinished(&self) -> StoreResult<Vec<BakeRecord>> {
        let hashes: Vec<Vec<String>> = self.pool.run("failed to list unfinished bakes", |c| {
            self.scripts.unfinished.key(global("unfinished")).invoke(c)
        })?;
        crate::store::skip_unreadable(
            hashes
                .into_iter()
                .filter_map(|h| decode(pairs(h)).transpose()),
        )
    }

    fn older_than(&self, after: Option<&Cursor>, n: usize) -> StoreResult<Batch> {
        let bound = after.map_or_else(
            || "+".to_string(),
            |c| format!("({}", age_member(c.created_ms, &c.id)),
        );
        let rows: Vec<Vec<String>> = self.pool.run("failed to list bakes", |c| {
            self.scripts
                .older_than
                .key(global("bakes"))
                .arg(&bound)
                .arg(n)
                .invoke(c)
        })?;
        let exhausted = rows.len() < n;
        let mut last = None;
        let mut readable = Vec::with_capacity(rows.len());
        for mut row in rows {
            if row.is_empty() {
                continue;
            }
            let member = row.remove(0);
            last = member_position(&member).or(last);
            readable.push(decode(pairs(row)));
        }
        let records =
            crate::store::skip_unreadable(readable.into_iter().filter_map(Result::transpose))?;
        Ok(Batch {
            records,
            last,
            exhausted,
        })
    }

    fn ping(&self) -> StoreResult<()> {
        self.pool.run("failed to ping", |c: &mut Connection| {
            redis::cmd("PING").query::<String>(c)
        })?;
        Ok(())
    }

    /// PING answers even when Redis refuses writes (a failed RDB save with
    /// `stop-writes-on-bgsave-error`, `maxmemory` reached): a short-lived key is written and
    /// read back instead.
    fn probe(&self) -> StoreResult<()> {
        let stamp = uuid::Uuid::new_v4().to_string();
        self.probed
            .get(|| {
                let back: Option<String> = self
                    .pool
                    .run("failed to write and read back", |c: &mut Connection| {
                        redis::pipe()
                            .cmd("SET")
                            .arg(&self.probe_key)
                            .arg(&stamp)
                            .arg("EX")
                            .arg(10)
                            .ignore()
                            .cmd("GET")
                            .arg(&self.probe_key)
                            .query::<(Option<String>,)>(c)
                            .map(|(v,)| v)
                    })
                    .map_err(|e| e.to_string())?;
                match back {
                    Some(v) if v == stamp => Ok(()),
                    _ => Err("Redis did not read back what was written to it".to_string()),
                }
            })
            .map_err(StoreError::Unavailable)
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn heartbeat(
        &self,
        instance: &str,
        ttl: Duration,
        running: &[String],
        now_ms: i64,
    ) -> StoreResult<()> {
        let beat = to_json(
            instance,
            "heartbeat",
            &Beat {
                beat_ms: now_ms,
                running: running.to_vec(),
            },
        )?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.pool.run("failed to store the heartbeat", |c| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(key("heartbeat", instance))
                .arg(&beat)
                .arg("PX")
                .arg(ttl_ms)
                .ignore()
                .sadd(global("instances"), instance)
                .ignore()
                .query::<()>(c)
        })
    }

    fn instances(&self) -> StoreResult<Vec<Instance>> {
        let flat: Vec<String> = self.pool.run("failed to list instances", |c| {
            self.scripts.instances.key(global("instances")).invoke(c)
        })?;
        let mut live = Vec::with_capacity(flat.len() / 2);
        for (id, beat) in pairs(flat) {
            let beat: Beat = serde_json::from_str(&beat)
                .map_err(|e| StoreError::Corrupt(format!("heartbeat of {id}: {e}")))?;
            live.push(Instance {
                id,
                beat_ms: beat.beat_ms,
                running: beat.running,
            });
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }

    fn claim_orphans(&self, claimer: &str, now_ms: i64) -> StoreResult<Vec<BakeRecord>> {
        let hashes: Vec<Vec<String>> = self.pool.run("failed to settle orphaned bakes", |c| {
            self.scripts
                .claim_orphans
                .key(global("unfinished"))
                .arg(now_ms)
                .arg(claimer)
                .invoke(c)
        })?;
        self.records(hashes)
    }
}
