//! The embedded engine: every bake in one SQLite file (WAL mode), behind one connection.
//!
//! Invariants:
//! - Every change that reads before it writes runs in one `BEGIN IMMEDIATE` transaction. The
//!   mutex already serializes this process; IMMEDIATE also keeps another process on the same
//!   file from slipping in between the read and the write.
//! - `identities` is the dedupe binding: an identity maps to the one bake an identical request
//!   gets back. `bakes.identity` is only what the bake was made for.
//! - A log is append-only chunks. A chunk's `seq` is its byte offset in the whole log, so chunks
//!   sort by it and a follower seeks to its offset through the primary key. Empty chunks are not
//!   stored (they would share the next chunk's offset), nor are chunks for unknown bakes (a late
//!   writer must not leave orphan rows behind a deleted bake).
//! - `user_version` is the schema version. A newer schema is refused, never touched.

use super::health::{self, Probed};
use super::{BakeStore, Batch, Created, Cursor, StoreError, StoreResult, Transition};
use crate::bake::{BakeDetails, BakeRecord, Cause, Phase};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The schema this build writes. Bump it with a migration when the tables change.
const SCHEMA_VERSION: i64 = 2;

/// How long a statement waits for another process's write lock before reporting the store busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bakes (
    id TEXT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL,
    identity TEXT NOT NULL,
    region TEXT NOT NULL,
    provider TEXT NOT NULL,
    phase TEXT NOT NULL,
    cause TEXT,
    request TEXT NOT NULL,
    recipe TEXT NOT NULL,
    inputs TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    started_ms INTEGER,
    details TEXT,
    error TEXT,
    execution_id TEXT,
    instance_id TEXT NOT NULL,
    report TEXT
);
CREATE INDEX IF NOT EXISTS bakes_by_phase ON bakes (phase, created_ms);
CREATE INDEX IF NOT EXISTS bakes_by_execution ON bakes (execution_id);
CREATE TABLE IF NOT EXISTS identities (
    identity TEXT PRIMARY KEY NOT NULL,
    bake_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identities_by_bake ON identities (bake_id);
CREATE TABLE IF NOT EXISTS bake_logs (
    bake_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    chunk TEXT NOT NULL,
    PRIMARY KEY (bake_id, seq)
);
CREATE TABLE IF NOT EXISTS images (
    region TEXT NOT NULL,
    image TEXT NOT NULL,
    bake_id TEXT NOT NULL,
    PRIMARY KEY (region, image)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS images_by_bake ON images (bake_id);
";

/// From schema 1 to 2: the timeline and diagnosis (`report`, JSON).
const MIGRATE_1_TO_2: &str = "ALTER TABLE bakes ADD COLUMN report TEXT;";

/// The `bakes` columns in [`RawBake::from_row`] order; a macro so queries stay `&'static str`.
macro_rules! columns {
    () => {
        "id, key, identity, region, provider, phase, cause, request, recipe, inputs, created_ms, \
         updated_ms, started_ms, details, error, execution_id, instance_id, report"
    };
}

const BY_ID: &str = concat!("SELECT ", columns!(), " FROM bakes WHERE id = ?1");
const PHASE_BY_ID: &str = "SELECT phase FROM bakes WHERE id = ?1";
const DETAILS_BY_ID: &str = "SELECT details FROM bakes WHERE id = ?1";
const BY_IDENTITY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM bakes WHERE id = (SELECT bake_id FROM identities WHERE identity = ?1)"
);
const UNFINISHED: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM bakes WHERE phase IN ('queued', 'running') ORDER BY created_ms, rowid"
);
// Newest first below a position; `(created_ms, id) < (?1, ?2)` walks `bakes_by_age`.
const OLDER_THAN: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM bakes WHERE ?1 IS NULL OR (created_ms, id) < (?1, ?2) \
     ORDER BY created_ms DESC, id DESC LIMIT ?3"
);
/// Added after schema version 1 without a bump: created on every open, old files included.
const LATER_INDEXES: &str = "CREATE INDEX IF NOT EXISTS bakes_by_age ON bakes (created_ms, id);";
const INSERT: &str = concat!(
    "INSERT INTO bakes (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
);
const BIND: &str = "INSERT INTO identities (identity, bake_id) VALUES (?1, ?2) \
                    ON CONFLICT (identity) DO UPDATE SET bake_id = excluded.bake_id";
const UPDATE_PHASE: &str = "UPDATE bakes SET phase = ?2, cause = ?3, error = ?4, details = ?5, \
                            updated_ms = ?6, started_ms = ?7, report = ?8 WHERE id = ?1";
// Finished bakes settled before ?1, or beyond the newest ?2 finished ones.
const OLD_FINISHED: &str = "SELECT id, provider FROM bakes WHERE phase NOT IN ('queued', 'running') \
     AND (updated_ms < ?1 OR id IN (SELECT id FROM bakes WHERE phase NOT IN ('queued', 'running') \
     ORDER BY created_ms DESC, rowid DESC LIMIT -1 OFFSET ?2))";
const DELETE_BAKE: [&str; 4] = [
    "DELETE FROM bake_logs WHERE bake_id = ?1",
    "DELETE FROM images WHERE bake_id = ?1",
    "DELETE FROM identities WHERE bake_id = ?1",
    "DELETE FROM bakes WHERE id = ?1",
];
// The next chunk starts where the last one ends; nothing is stored for an unknown bake.
const APPEND_LOG: &str = "INSERT INTO bake_logs (bake_id, seq, chunk) \
     SELECT ?1, COALESCE((SELECT seq + length(CAST(chunk AS BLOB)) FROM bake_logs \
         WHERE bake_id = ?1 ORDER BY seq DESC LIMIT 1), 0), ?2 \
     WHERE EXISTS (SELECT 1 FROM bakes WHERE id = ?1)";
// From the chunk holding byte ?2 on (or from the start when ?2 precedes every chunk).
const READ_LOG_FROM: &str = "SELECT seq, chunk FROM bake_logs WHERE bake_id = ?1 AND seq >= \
     COALESCE((SELECT MAX(seq) FROM bake_logs WHERE bake_id = ?1 AND seq <= ?2), 0) ORDER BY seq";
const MAP_IMAGE: &str = "INSERT INTO images (region, image, bake_id) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (region, image) DO UPDATE SET bake_id = excluded.bake_id";
const IMAGE_BAKE: &str = "SELECT bake_id FROM images WHERE region = ?1 AND image = ?2";
const UNBIND: &str = "DELETE FROM identities WHERE bake_id = ?1";
const DELETE_EXECUTION_DEPENDENTS: [&str; 3] = [
    "DELETE FROM bake_logs WHERE bake_id IN (SELECT id FROM bakes WHERE execution_id = ?1)",
    "DELETE FROM images WHERE bake_id IN (SELECT id FROM bakes WHERE execution_id = ?1)",
    "DELETE FROM identities WHERE bake_id IN (SELECT id FROM bakes WHERE execution_id = ?1)",
];
// After the dependents, so their statements can still find the execution's bakes.
const DELETE_EXECUTION_BAKES: &str = "DELETE FROM bakes WHERE execution_id = ?1";

/// The SQLite engine. Cheap to share behind an `Arc`; all access goes through one connection.
pub struct SqliteStore {
    /// The database file (`None` in memory), for [`BakeStore::probe`].
    path: Option<PathBuf>,
    probed: Probed,
    // A std mutex, not an async one: every method is synchronous and nothing awaits while the
    // guard is held, so the lock is only ever held for the duration of a few statements.
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`, creating its directory and schema as needed.
    /// Keeps the data dir's reserve ([`health::keep_reserve`]); when the file cannot be opened
    /// (a full data dir has no room for SQLite's `-shm`), releases the reserve and tries once
    /// more, so kiln starts, serves reads and reads DOWN until there is room again.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let store = match Self::open_file(path) {
            Err(e) if health::release_reserve(dir) => {
                tracing::warn!(error = %e, dir = %dir.display(),
                    "cannot open the bake store; released the data dir's reserve and trying again (is the data dir full? /health says)");
                Self::open_file(path)?
            }
            opened => opened?,
        };
        if let Err(e) = health::keep_reserve(dir) {
            tracing::warn!(error = %health::describe_io(dir, &e), "no room for the data dir's reserve");
        }
        Ok(store)
    }

    fn open_file(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("failed to create {}: {e}", dir.display()))
            })?;
        }
        let what = format!("failed to open {}", path.display());
        let conn = Connection::open(path).or_unavailable(&what)?;
        // Set before anything else touches the file, so even the WAL switch waits for a peer.
        conn.busy_timeout(BUSY_TIMEOUT).or_unavailable(&what)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .or_unavailable(&what)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Still correct, only slower: readers then wait for writers.
            tracing::warn!(path = %path.display(), %mode, "bake store could not switch to WAL");
        }
        // Safe with WAL: a crash can lose the last commits but never corrupts the file.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .or_unavailable(&what)?;
        let mut store = Self::init(conn)?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// A private, empty in-memory store, for tests.
    pub fn open_in_memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory().or_unavailable("failed to open in-memory store")?)
    }

    /// Checks the schema version and creates the schema when the file is new.
    fn init(mut conn: Connection) -> StoreResult<Self> {
        const WHAT: &str = "failed to create the schema";
        let tx = begin(&mut conn)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .or_unavailable(WHAT)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Unavailable(format!(
                "the database has schema version {version} but this kiln knows only up to \
                 {SCHEMA_VERSION}; it was written by a newer kiln (upgrade kiln, or point it at \
                 another file)"
            )));
        }
        if version == 1 {
            tx.execute_batch(MIGRATE_1_TO_2).or_unavailable(WHAT)?;
        }
        if version < SCHEMA_VERSION {
            tx.execute_batch(SCHEMA).or_unavailable(WHAT)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .or_unavailable(WHAT)?;
        }
        tx.execute_batch(LATER_INDEXES).or_unavailable(WHAT)?;
        tx.commit().or_unavailable(WHAT)?;
        // Room for every statement this engine prepares, so none is ever re-prepared.
        conn.set_prepared_statement_cache_capacity(32);
        Ok(SqliteStore {
            path: None,
            probed: Probed::default(),
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic under the lock cannot leave half a change behind: an open transaction rolls
        // back when it is dropped during unwinding. So a poisoned connection is still good.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BakeStore for SqliteStore {
    fn create(&self, record: &BakeRecord, reuse: bool) -> StoreResult<Created> {
        const WHAT: &str = "failed to create bake";
        // Encode before taking the lock: it is the slow part and needs no database.
        let json = Encoded::of(record)?;
        let mut conn = self.conn();
        let tx = begin(&mut conn)?;
        if reuse
            && let Some(existing) = select_one(&tx, BY_IDENTITY, &record.identity)?
            && existing.phase.is_reusable()
        {
            // Dropping `tx` rolls back; nothing was written anyway.
            return Ok(Created::Existing(Box::new(existing)));
        }
        let r = record;
        tx.prepare_cached(INSERT)
            .and_then(|mut s| {
                s.execute(params![
                    r.id,
                    r.key,
                    r.identity,
                    r.region,
                    r.provider,
                    r.phase.as_str(),
                    r.cause.map(Cause::as_str),
                    json.request,
                    json.recipe,
                    json.inputs,
                    r.created_ms,
                    r.updated_ms,
                    r.started_ms,
                    json.details,
                    r.error,
                    r.execution_id,
                    r.instance_id,
                    json.report,
                ])
            })
            .or_unavailable(WHAT)?;
        tx.prepare_cached(BIND)
            .and_then(|mut s| s.execute([&r.identity, &r.id]))
            .or_unavailable(WHAT)?;
        tx.commit().or_unavailable(WHAT)?;
        Ok(Created::New)
    }

    fn get(&self, id: &str) -> StoreResult<Option<BakeRecord>> {
        select_one(&self.conn(), BY_ID, id)
    }

    fn phase(&self, id: &str) -> StoreResult<Option<Phase>> {
        const WHAT: &str = "failed to read bake";
        let conn = self.conn();
        let phase: Option<String> = conn
            .prepare_cached(PHASE_BY_ID)
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .or_unavailable(WHAT)?;
        phase
            .map(|p| p.parse::<Phase>().map_err(|e| corrupt(id, "phase", e)))
            .transpose()
    }

    fn details(&self, id: &str) -> StoreResult<Option<BakeDetails>> {
        const WHAT: &str = "failed to read bake";
        let conn = self.conn();
        let details: Option<Option<String>> = conn
            .prepare_cached(DETAILS_BY_ID)
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .or_unavailable(WHAT)?;
        details
            .flatten()
            .map(|text| from_json(id, "details", &text))
            .transpose()
    }

    fn get_by_identity(&self, identity: &str) -> StoreResult<Option<BakeRecord>> {
        select_one(&self.conn(), BY_IDENTITY, identity)
    }

    fn transition(
        &self,
        id: &str,
        phase: Phase,
        change: Transition,
        now_ms: i64,
    ) -> StoreResult<Option<BakeRecord>> {
        const WHAT: &str = "failed to update bake";
        let mut conn = self.conn();
        let tx = begin(&mut conn)?;
        let Some(mut rec) = select_one(&tx, BY_ID, id)? else {
            return Ok(None);
        };
        if !rec.phase.can_become(phase) {
            return Ok(None);
        }
        // A transition only adds: what it leaves out keeps its stored value.
        rec.phase = phase;
        rec.cause = change.cause.or(rec.cause);
        rec.error = change.error.or(rec.error);
        rec.details = change.details.or(rec.details);
        if let Some(report) = change.report {
            rec.report = report;
        }
        rec.updated_ms = now_ms;
        if phase == Phase::Running {
            rec.started_ms = Some(now_ms);
        }
        let details = rec
            .details
            .as_ref()
            .map(|d| to_json(id, "details", d))
            .transpose()?;
        let report = report_json(id, &rec.report)?;
        tx.prepare_cached(UPDATE_PHASE)
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    phase.as_str(),
                    rec.cause.map(Cause::as_str),
                    rec.error,
                    details,
                    now_ms,
                    rec.started_ms,
                    report,
                ])
            })
            .or_unavailable(WHAT)?;
        tx.commit().or_unavailable(WHAT)?;
        Ok(Some(rec))
    }

    fn append_log(&self, id: &str, chunk: &str) -> StoreResult<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(APPEND_LOG)
            .or_unavailable("failed to append log")?;
        stmt.execute([id, chunk])
            .or_unavailable("failed to append log")?;
        Ok(())
    }

    fn read_log(&self, id: &str) -> StoreResult<String> {
        self.read_log_from(id, 0)
    }

    fn read_log_from(&self, id: &str, offset: usize) -> StoreResult<String> {
        const WHAT: &str = "failed to read log";
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(READ_LOG_FROM).or_unavailable(WHAT)?;
        let seek = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![id, seek]).or_unavailable(WHAT)?;
        let mut log = String::new();
        while let Some(row) = rows.next().or_unavailable(WHAT)? {
            let seq: i64 = row.get(0).or_unavailable(WHAT)?;
            let chunk: String = row.get(1).or_unavailable(WHAT)?;
            let start = usize::try_from(seq).map_err(|_| corrupt(id, "bake_logs.seq", seq))?;
            // Only the first chunk can start before `offset`; a follower that stopped inside a
            // character moves on to the next whole one.
            let mut skip = offset.saturating_sub(start).min(chunk.len());
            while !chunk.is_char_boundary(skip) {
                skip += 1;
            }
            log.push_str(&chunk[skip..]);
        }
        Ok(log)
    }

    fn map_image(&self, region: &str, image: &str, id: &str) -> StoreResult<()> {
        let conn = self.conn();
        conn.prepare_cached(MAP_IMAGE)
            .and_then(|mut s| s.execute([region, image, id]))
            .or_unavailable("failed to map image")?;
        Ok(())
    }

    fn bake_for_image(&self, region: &str, image: &str) -> StoreResult<Option<String>> {
        let conn = self.conn();
        conn.prepare_cached(IMAGE_BAKE)
            .and_then(|mut s| s.query_row([region, image], |r| r.get(0)).optional())
            .or_unavailable("failed to look up image")
    }

    fn unbind(&self, id: &str) -> StoreResult<()> {
        let conn = self.conn();
        // By bake id, so a binding already moved to a rebake is left alone.
        conn.prepare_cached(UNBIND)
            .and_then(|mut s| s.execute([id]))
            .or_unavailable("failed to unbind bake")?;
        Ok(())
    }

    fn delete_by_executions(&self, execution_ids: &[String]) -> StoreResult<usize> {
        const WHAT: &str = "failed to delete bakes";
        let mut conn = self.conn();
        let tx = begin(&mut conn)?;
        let mut deleted = 0;
        for full in execution_ids {
            // Accept a whole `spinnaker_execution_id`: bakes are filed under its first part.
            let execution = full.split(':').next().unwrap_or(full);
            for sql in DELETE_EXECUTION_DEPENDENTS {
                tx.prepare_cached(sql)
                    .and_then(|mut s| s.execute([execution]))
                    .or_unavailable(WHAT)?;
            }
            deleted += tx
                .prepare_cached(DELETE_EXECUTION_BAKES)
                .and_then(|mut s| s.execute([execution]))
                .or_unavailable(WHAT)?;
        }
        tx.commit().or_unavailable(WHAT)?;
        Ok(deleted)
    }

    fn delete_finished(
        &self,
        settled_before_ms: Option<i64>,
        keep: Option<usize>,
    ) -> StoreResult<Vec<(String, String)>> {
        const WHAT: &str = "failed to delete old bakes";
        let before = settled_before_ms.unwrap_or(i64::MIN);
        let keep = keep.map_or(i64::MAX, |k| i64::try_from(k).unwrap_or(i64::MAX));
        let mut conn = self.conn();
        let tx = begin(&mut conn)?;
        let old: Vec<(String, String)> = tx
            .prepare_cached(OLD_FINISHED)
            .and_then(|mut s| {
                s.query_map(params![before, keep], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .or_unavailable(WHAT)?;
        for (id, _) in &old {
            for sql in DELETE_BAKE {
                tx.prepare_cached(sql)
                    .and_then(|mut s| s.execute([id]))
                    .or_unavailable(WHAT)?;
            }
        }
        tx.commit().or_unavailable(WHAT)?;
        Ok(old)
    }

    fn unfinished(&self) -> StoreResult<Vec<BakeRecord>> {
        const WHAT: &str = "failed to list unfinished bakes";
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(UNFINISHED).or_unavailable(WHAT)?;
        let raws = stmt
            .query_map([], RawBake::from_row)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .or_unavailable(WHAT)?;
        super::skip_unreadable(raws.into_iter().map(RawBake::decode))
    }

    fn older_than(&self, after: Option<&Cursor>, n: usize) -> StoreResult<Batch> {
        const WHAT: &str = "failed to list bakes";
        let raws = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(OLDER_THAN).or_unavailable(WHAT)?;
            stmt.query_map(
                params![
                    after.map(|c| c.created_ms),
                    after.map(|c| c.id.as_str()),
                    i64::try_from(n).unwrap_or(i64::MAX)
                ],
                RawBake::from_row,
            )
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .or_unavailable(WHAT)?
        };
        let last = raws.last().map(|r| Cursor {
            created_ms: r.created_ms,
            id: r.id.clone(),
        });
        let exhausted = raws.len() < n;
        let records = super::skip_unreadable(raws.into_iter().map(RawBake::decode))?;
        Ok(Batch {
            records,
            last,
            exhausted,
        })
    }

    fn ping(&self) -> StoreResult<()> {
        let conn = self.conn();
        conn.prepare_cached("SELECT 1")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .or_unavailable("failed to ping")?;
        Ok(())
    }

    fn probe(&self) -> StoreResult<()> {
        let Some(path) = &self.path else {
            return self.ping();
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        self.probed
            .get(|| {
                health::keep_reserve(dir).map_err(|e| health::describe_io(dir, &e))?;
                health::probe_dir(dir)?;
                probe_file(path)
            })
            .map_err(StoreError::Unwritable)
    }
}

/// How long the probe waits for this process's own writer before calling the store busy.
const PROBE_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// The database file's round trip on a connection of its own, so pages come from the file and
/// not from the serving connection's cache: open (no create), write a row in `kiln_health`,
/// read it back, and read the first row of every table (a damaged page fails here).
fn probe_file(path: &Path) -> Result<(), String> {
    use rusqlite::OpenFlags;
    let describe = |e: rusqlite::Error| {
        let damaged = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        );
        match e.sqlite_error_code() {
            _ if damaged => format!(
                "the database file {} is damaged ({e}); restore it from a backup",
                path.display()
            ),
            Some(rusqlite::ErrorCode::DiskFull) => format!(
                "the data dir of {} is full ({e}); free space there",
                path.display()
            ),
            Some(rusqlite::ErrorCode::ReadOnly) => format!(
                "the database file {} cannot be written ({e})",
                path.display()
            ),
            _ => format!(
                "the database file {} failed a write and read back ({e})",
                path.display()
            ),
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(describe)?;
    conn.busy_timeout(PROBE_BUSY_TIMEOUT).map_err(describe)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(describe)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS kiln_health (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL);",
    )
    .map_err(describe)?;
    tx.execute(
        "INSERT OR REPLACE INTO kiln_health (id, at_ms) VALUES (1, ?1)",
        [now],
    )
    .map_err(describe)?;
    let back: i64 = tx
        .query_row("SELECT at_ms FROM kiln_health WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map_err(describe)?;
    for table in ["bakes", "identities", "bake_logs", "images"] {
        let sql = format!("SELECT count(*) FROM (SELECT * FROM {table} LIMIT 1)");
        tx.query_row(&sql, [], |r| r.get::<_, i64>(0))
            .map_err(describe)?;
    }
    tx.commit().map_err(describe)?;
    if back != now {
        return Err(format!(
            "the database file {} does not read back what was written to it",
            path.display()
        ));
    }
    Ok(())
}

/// Starts a write transaction up front, so two writers never both read and then race to write.
fn begin(conn: &mut Connection) -> StoreResult<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .or_unavailable("failed to begin a transaction")
}

/// Runs a one-row bake query (`BY_ID` or `BY_IDENTITY`) and decodes the row.
fn select_one(conn: &Connection, sql: &'static str, key: &str) -> StoreResult<Option<BakeRecord>> {
    const WHAT: &str = "failed to read bake";
    let mut stmt = conn.prepare_cached(sql).or_unavailable(WHAT)?;
    let raw = stmt
        .query_row([key], RawBake::from_row)
        .optional()
        .or_unavailable(WHAT)?;
    raw.map(RawBake::decode).transpose()
}

/// A `bakes` row as stored, before its text columns are parsed.
struct RawBake {
    id: String,
    key: String,
    identity: String,
    region: String,
    provider: String,
    phase: String,
    cause: Option<String>,
    request: String,
    recipe: String,
    inputs: String,
    created_ms: i64,
    updated_ms: i64,
    started_ms: Option<i64>,
    details: Option<String>,
    error: Option<String>,
    execution_id: Option<String>,
    instance_id: String,
    report: Option<String>,
}

impl RawBake {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawBake {
            id: r.get(0)?,
            key: r.get(1)?,
            identity: r.get(2)?,
            region: r.get(3)?,
            provider: r.get(4)?,
            phase: r.get(5)?,
            cause: r.get(6)?,
            request: r.get(7)?,
            recipe: r.get(8)?,
            inputs: r.get(9)?,
            created_ms: r.get(10)?,
            updated_ms: r.get(11)?,
            started_ms: r.get(12)?,
            details: r.get(13)?,
            error: r.get(14)?,
            execution_id: r.get(15)?,
            instance_id: r.get(16)?,
            report: r.get(17)?,
        })
    }

    fn decode(self) -> StoreResult<BakeRecord> {
        let id = self.id.as_str();
        let phase = self
            .phase
            .parse::<Phase>()
            .map_err(|e| corrupt(id, "phase", e))?;
        // Causes are stored by their wire name, which is also their JSON string.
        let cause = self
            .cause
            .map(|c| serde_json::from_value::<Cause>(serde_json::Value::String(c)))
            .transpose()
            .map_err(|e| corrupt(id, "cause", e))?;
        let details = match &self.details {
            Some(text) => Some(from_json(id, "details", text)?),
            None => None,
        };
        let report = match &self.report {
            Some(text) => from_json(id, "report", text)?,
            None => Default::default(),
        };
        Ok(BakeRecord {
            report,
            request: from_json(id, "request", &self.request)?,
            recipe: from_json(id, "recipe", &self.recipe)?,
            inputs: from_json(id, "inputs", &self.inputs)?,
            phase,
            cause,
            details,
            id: self.id,
            key: self.key,
            identity: self.identity,
            region: self.region,
            provider: self.provider,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            started_ms: self.started_ms,
            error: self.error,
            execution_id: self.execution_id,
            instance_id: self.instance_id,
        })
    }
}

/// A record's JSON columns, encoded.
struct Encoded {
    request: String,
    recipe: String,
    inputs: String,
    details: Option<String>,
    report: Option<String>,
}

impl Encoded {
    fn of(r: &BakeRecord) -> StoreResult<Self> {
        Ok(Encoded {
            request: to_json(&r.id, "request", &r.request)?,
            recipe: to_json(&r.id, "recipe", &r.recipe)?,
            inputs: to_json(&r.id, "inputs", &r.inputs)?,
            details: r
                .details
                .as_ref()
                .map(|d| to_json(&r.id, "details", d))
                .transpose()?,
            report: report_json(&r.id, &r.report)?,
        })
    }
}

fn to_json<T: Serialize>(id: &str, column: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| corrupt(id, column, e))
}

/// An empty report is stored as NULL.
fn report_json(id: &str, report: &crate::bake::BakeReport) -> StoreResult<Option<String>> {
    (!report.is_empty())
        .then(|| to_json(id, "report", report))
        .transpose()
}

fn from_json<T: DeserializeOwned>(id: &str, column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(id, column, e))
}

fn corrupt(id: &str, column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("bake {id}, column {column}: {e}"))
}

/// Turns an SQLite error into [`StoreError::Unavailable`], saying what was being done.
trait OrUnavailable<T> {
    fn or_unavailable(self, what: &str) -> StoreResult<T>;
}

impl<T> OrUnavailable<T> for rusqlite::Result<T> {
    fn or_unavailable(self, what: &str) -> StoreResult<T> {
        self.map_err(|e| StoreError::Unavailable(format!("{what}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{sample_record, store_conformance_tests};
    use std::sync::{Arc, Barrier};
    use tempfile::TempDir;

    /// A file-backed store in its own temp dir; the dir lives as long as the pair.
    pub(super) fn temp_store() -> (Arc<SqliteStore>, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("kiln.db")).unwrap();
        (Arc::new(store), dir)
    }

    mod in_memory {
        use super::*;
        store_conformance_tests!(Arc::new(SqliteStore::open_in_memory().unwrap()));
    }

    mod on_disk {
        use super::*;
        store_conformance_tests!(temp_store());
    }

    #[test]
    fn the_probe_writes_and_reads_the_file_and_sees_damaged_pages_until_restored() {
        let (store, dir) = temp_store();
        store.create(&sample_record("b", "ident"), true).unwrap();
        store.append_log("b", "a line\n").unwrap();
        store.probe().unwrap();
        // Everything into the main file, then every page after the header overwritten.
        store
            .conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let file = dir.path().join("kiln.db");
        let good = std::fs::read(&file).unwrap();
        let mut bad = good.clone();
        bad[4096..].fill(0xa5);
        std::fs::write(&file, &bad).unwrap();
        std::thread::sleep(health::PROBE_TTL);
        let e = store.probe().unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("kiln.db"), "{e}");
        std::fs::write(&file, &good).unwrap();
        std::thread::sleep(health::PROBE_TTL);
        store.probe().unwrap();
    }

    #[test]
    fn the_probe_fails_when_the_data_dir_is_gone() {
        let (store, dir) = temp_store();
        store.probe().unwrap();
        std::fs::remove_dir_all(dir.path()).unwrap();
        std::thread::sleep(health::PROBE_TTL);
        let e = store.probe().unwrap_err();
        assert!(matches!(e, StoreError::Unwritable(_)), "{e}");
    }

    #[test]
    fn records_survive_reopening_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory that does not exist yet: open creates it.
        let path = dir.path().join("state").join("kiln.db");
        let store = SqliteStore::open(&path).unwrap();
        store.create(&sample_record("b", "ident"), true).unwrap();
        let running = store.transition("b", Phase::Running, Transition::default(), 9);
        let running = running.unwrap().unwrap();
        store.append_log("b", "first\n").unwrap();
        store.append_log("b", "second\n").unwrap();
        store.map_image("us-east-1", "ami-1", "b").unwrap();
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get("b").unwrap(), Some(running.clone()));
        assert_eq!(store.get_by_identity("ident").unwrap(), Some(running));
        assert_eq!(store.read_log("b").unwrap(), "first\nsecond\n");
        assert_eq!(
            store
                .bake_for_image("us-east-1", "ami-1")
                .unwrap()
                .as_deref(),
            Some("b")
        );
        store.append_log("b", "third\n").unwrap();
        assert_eq!(store.read_log_from("b", 6).unwrap(), "second\nthird\n");
    }

    #[test]
    fn phase_and_details_read_what_get_reads() {
        let (on_disk, _dir) = temp_store();
        let in_memory = Arc::new(SqliteStore::open_in_memory().unwrap());
        for store in [on_disk, in_memory] {
            assert_eq!(store.phase("nope").unwrap(), None);
            assert_eq!(store.details("nope").unwrap(), None);
            store.create(&sample_record("b", "ident"), true).unwrap();
            assert_eq!(store.phase("b").unwrap(), Some(Phase::Queued));
            assert_eq!(store.details("b").unwrap(), None);
            store
                .transition("b", Phase::Running, Transition::default(), 2)
                .unwrap();
            assert_eq!(store.phase("b").unwrap(), Some(Phase::Running));
            let details = BakeDetails {
                id: "b".into(),
                ami: Some("ami-1".into()),
                ..BakeDetails::default()
            };
            let done = Transition {
                cause: Some(Cause::Success),
                error: None,
                details: Some(details.clone()),
                report: None,
            };
            store.transition("b", Phase::Succeeded, done, 3).unwrap();
            let got = store.get("b").unwrap().unwrap();
            assert_eq!(store.phase("b").unwrap(), Some(Phase::Succeeded));
            assert_eq!(store.details("b").unwrap(), Some(details));
            assert_eq!(got.details, store.details("b").unwrap());
        }
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.db");
        drop(SqliteStore::open(&path).unwrap());
        let raw = Connection::open(&path).unwrap();
        raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(raw);
        let Err(err) = SqliteStore::open(&path) else {
            panic!("a newer schema was opened");
        };
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
                && msg.contains("newer kiln"),
            "{msg}"
        );
    }

    #[test]
    fn a_schema_1_file_gains_the_report_column_and_keeps_its_bakes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.db");
        {
            // What kiln wrote before reports: the schema without the column, version 1.
            let raw = Connection::open(&path).unwrap();
            let v1 = SCHEMA.replace(",\n    report TEXT\n", "\n");
            assert_ne!(v1, SCHEMA);
            raw.execute_batch(&v1).unwrap();
            raw.pragma_update(None, "user_version", 1).unwrap();
            let cols = columns!().replace(", report", "");
            raw.execute(
                &format!("INSERT INTO bakes ({cols}) VALUES ('old', 'k', 'i', 'r', 'aws', 'failed', NULL, '{{}}', \
                 '{{\"name\":\"n\",\"version\":null,\"command\":[],\"variables\":{{}},\"template\":\"t\"}}', '{{}}', 1, 2, NULL, NULL, NULL, NULL, 'me')"),
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let old = store.get("old").unwrap().unwrap();
        assert_eq!(old.report, Default::default());
        drop(store);
        let raw = Connection::open(&path).unwrap();
        let v: i64 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn an_unreadable_column_is_reported_with_the_bake_and_column() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create(&sample_record("b-7", "ident"), true).unwrap();
        store
            .conn()
            .execute("UPDATE bakes SET recipe = '{not json' WHERE id = 'b-7'", [])
            .unwrap();
        let err = store.get("b-7").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("b-7") && msg.contains("recipe"), "{msg}");
    }

    #[test]
    fn unfinished_leaves_out_a_record_that_cannot_be_read() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create(&sample_record("b-1", "i-1"), true).unwrap();
        store.create(&sample_record("b-2", "i-2"), true).unwrap();
        store
            .conn()
            .execute(
                "UPDATE bakes SET request = '{not json' WHERE id = 'b-1'",
                [],
            )
            .unwrap();
        let ids: Vec<String> = store
            .unfinished()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["b-2"]);
    }

    #[test]
    fn stores_on_one_file_racing_on_one_identity_create_exactly_one_bake() {
        const RACERS: usize = 8;
        let (first, dir) = temp_store();
        let path = dir.path().join("kiln.db");
        let start = Arc::new(Barrier::new(RACERS));
        // Each thread has its own connection, so only SQLite's locking keeps them apart.
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    let store = SqliteStore::open(&path).unwrap();
                    start.wait();
                    store.create(&sample_record(&format!("racer-{i}"), "contested"), true)
                })
            })
            .collect();
        let new = racers
            .into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .filter(|a| *a == Created::New)
            .count();
        assert_eq!(new, 1);
        assert!(first.get_by_identity("contested").unwrap().is_some());
    }
}
