//! Retention: what kiln deletes of its own, and when (`kiln.retention`, `kiln gc`).
//!
//! - Settled bake records (with logs) older than `bakes.maxAge`, or beyond the newest
//!   `bakes.maxCount` — through the store's `delete_finished`, which never deletes a queued or
//!   running bake.
//! - Local files under the data dir: a bake's run dir (`runs/<id>`) once it is settled and its
//!   supervisor wrote `exit`, qemu staging (`staging/<id>`) once settled, and qemu images
//!   (`images/<id>`) of deleted bakes or older than `images.maxAge`.
//!
//! Invariants: nothing of a bake this process queues or runs, or the store calls unfinished, is
//! touched; a folder entry that is not a plain directory named like a bake id is left alone
//! (no symlink is followed); nothing in any cloud is deleted — AMIs are the user's.

use super::Bakery;
use crate::runner::layout;
use crate::store::StoreError;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// The local folders retention looks after, by their name under the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Runs,
    Staging,
    Images,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Runs, Kind::Staging, Kind::Images];

    fn dir(self) -> &'static str {
        match self {
            Kind::Runs => "runs",
            Kind::Staging => "staging",
            Kind::Images => "images",
        }
    }
}

/// What the store says about the bake a folder belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// No such bake (deleted, or never stored).
    Gone,
    Unfinished,
    Settled {
        at_ms: i64,
    },
}

/// The rule: whether a bake's folder of `kind` goes. `run_done`: its supervisor wrote `exit`
/// and is gone (only a run dir has one).
pub(crate) fn goes(
    kind: Kind,
    known: Known,
    run_done: bool,
    images_max_age: Option<Duration>,
    now_ms: i64,
) -> bool {
    match (kind, known) {
        (_, Known::Unfinished) => false,
        (Kind::Runs, _) => run_done,
        (Kind::Staging, _) | (Kind::Images, Known::Gone) => true,
        (Kind::Images, Known::Settled { at_ms }) => images_max_age.is_some_and(|age| {
            now_ms.saturating_sub(at_ms) > i64::try_from(age.as_millis()).unwrap_or(i64::MAX)
        }),
    }
}

/// One folder removed.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub bake: String,
    pub kind: Kind,
    pub bytes: u64,
}

/// What a retention run freed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Bake records deleted (with their logs).
    pub deleted_bakes: Vec<String>,
    pub removed: Vec<Removed>,
    /// Bytes of local files removed.
    pub bytes: u64,
}

impl Bakery {
    /// Runs retention now (blocking: call it on a blocking thread). A store error stops it
    /// before any local file is removed.
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let settings = self.settings();
        let r = &settings.kiln.retention;
        let now = super::now_ms();
        let before = r
            .bakes
            .max_age
            .map(|a| now.saturating_sub(i64::try_from(a.0.as_millis()).unwrap_or(i64::MAX)));
        let mut report = GcReport::default();
        if before.is_some() || r.bakes.max_count.is_some() {
            let deleted = self
                .inner
                .store
                .delete_finished(before, r.bakes.max_count)?;
            report.deleted_bakes = deleted.into_iter().map(|(id, _)| id).collect();
        }
        let data_dir = settings.data_dir();
        let images_max_age = r.images.max_age.map(|a| a.0);
        for kind in Kind::ALL {
            let Ok(entries) = std::fs::read_dir(data_dir.join(kind.dir())) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(id) = entry.file_name().to_str().map(String::from) else {
                    continue;
                };
                // Plain directories named like a bake id only; a symlink is not followed.
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if !is_dir || !is_bake_id(&id) {
                    continue;
                }
                let known = self.known(&id)?;
                let run_done = kind == Kind::Runs && run_is_done(&path);
                if !goes(kind, known, run_done, images_max_age, now) {
                    continue;
                }
                let bytes = size_of(&path);
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {
                        report.bytes += bytes;
                        report.removed.push(Removed {
                            bake: id,
                            kind,
                            bytes,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "retention could not remove a folder")
                    }
                }
            }
        }
        self.inner
            .metrics
            .reclaimed(report.bytes, report.deleted_bakes.len() as u64);
        tracing::info!(
            deleted_bakes = report.deleted_bakes.len(),
            folders = report.removed.len(),
            bytes = report.bytes,
            "retention ran"
        );
        Ok(report)
    }

    /// The bake's state for retention: one this process queues or runs is unfinished whatever
    /// the store says.
    fn known(&self, id: &str) -> Result<Known, StoreError> {
        if super::lock(&self.inner.active).contains_key(id) {
            return Ok(Known::Unfinished);
        }
        Ok(match self.inner.store.get(id)? {
            None => Known::Gone,
            Some(r) if !r.phase.is_finished() => Known::Unfinished,
            Some(r) => Known::Settled {
                at_ms: r.updated_ms,
            },
        })
    }

    /// Removes a settled qemu bake's local image (what `DELETE` of the bake does); returns the
    /// bytes freed. An unfinished bake's folder is left alone.
    pub fn remove_local_image(&self, id: &str) -> u64 {
        if !is_bake_id(id) || !matches!(self.known(id), Ok(Known::Settled { .. })) {
            return 0;
        }
        let mut freed = 0;
        for dir in [
            crate::images::image_dir(&self.data_dir(), id),
            crate::images::staging_dir(&self.data_dir(), id),
        ] {
            if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                let bytes = size_of(&dir);
                if std::fs::remove_dir_all(&dir).is_ok() {
                    freed += bytes;
                }
            }
        }
        self.inner.metrics.reclaimed(freed, 0);
        freed
    }

    /// Runs retention every `kiln.retention.interval` (default 1h; `0s`: never by itself) until
    /// kiln stops. The first run is one interval after start.
    pub(super) fn start_retention(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let bakery = self.clone();
        runtime.spawn(async move {
            loop {
                let every = bakery.settings().retention_interval();
                // A schedule turned off is looked at again a minute later (a reload may set it).
                let wait = every.unwrap_or(Duration::from_secs(60));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = bakery.inner.shutdown.cancelled() => return,
                }
                if every.is_none() {
                    continue;
                }
                let b = bakery.clone();
                match tokio::task::spawn_blocking(move || b.gc()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "retention skipped: the store failed"),
                    Err(e) => tracing::warn!(error = %e, "retention failed"),
                }
            }
        });
    }
}

/// Removes a settled bake's run dir if its supervisor is done; returns the bytes freed.
pub(super) fn remove_finished_run(run_dir: &Path) -> u64 {
    if !run_is_done(run_dir) {
        return 0;
    }
    let bytes = size_of(run_dir);
    match std::fs::remove_dir_all(run_dir) {
        Ok(()) => bytes,
        Err(_) => 0,
    }
}

/// A run is done when its supervisor wrote `exit` and no longer lives, or when it never
/// started one (no pgid, no exit, no supervisor).
fn run_is_done(run_dir: &Path) -> bool {
    if layout::supervisor_alive(run_dir) {
        return false;
    }
    let exit = run_dir.join(layout::EXIT).exists();
    let pgid = layout::read_pgid(run_dir).ok().flatten();
    exit || pgid.is_none_or(|g| !crate::runner::group_alive(g))
}

/// kiln's bake ids are UUIDs; an id with anything but letters, digits, `-` and `_` is not one
/// (and could not escape its folder anyway).
fn is_bake_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The bytes of the regular files under `dir`, without following symlinks.
fn size_of(dir: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| size_of(&e.path()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn an_unfinished_bakes_folders_never_go() {
        for kind in Kind::ALL {
            assert!(!goes(
                kind,
                Known::Unfinished,
                true,
                Some(Duration::ZERO),
                i64::MAX
            ));
        }
    }

    #[test]
    fn run_dirs_go_once_their_supervisor_is_done() {
        let settled = Known::Settled { at_ms: 0 };
        assert!(goes(Kind::Runs, settled, true, None, 1));
        assert!(!goes(Kind::Runs, settled, false, None, 1));
        assert!(goes(Kind::Runs, Known::Gone, true, None, 1));
        assert!(!goes(Kind::Runs, Known::Gone, false, None, 1));
    }

    #[test]
    fn staging_goes_when_settled_and_images_by_age_or_with_their_bake() {
        let settled = Known::Settled { at_ms: 1_000 };
        assert!(goes(Kind::Staging, settled, false, None, 1_001));
        assert!(
            !goes(Kind::Images, settled, false, None, i64::MAX),
            "no age set: kept"
        );
        let hour_ms = 3_600_000;
        assert!(!goes(
            Kind::Images,
            settled,
            false,
            Some(HOUR),
            1_000 + hour_ms
        ));
        assert!(goes(
            Kind::Images,
            settled,
            false,
            Some(HOUR),
            1_001 + hour_ms
        ));
        assert!(goes(Kind::Images, Known::Gone, false, None, 0));
    }

    #[test]
    fn the_schedule_is_hourly_by_default_at_least_a_minute_and_off_at_zero() {
        let with = |yaml: &str| {
            crate::config::load_str(yaml, &|_| None)
                .unwrap()
                .settings
                .retention_interval()
        };
        assert_eq!(with("kiln: {}\n"), Some(HOUR));
        assert_eq!(
            with("kiln:\n  retention:\n    interval: 1ms\n"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            with("kiln:\n  retention:\n    interval: 2h\n"),
            Some(2 * HOUR)
        );
        assert_eq!(with("kiln:\n  retention:\n    interval: 0s\n"), None);
        let s = crate::config::load_str(
            "kiln:\n  retention:\n    bakes: {maxAge: 90d, maxCount: 10}\n    images: {maxAge: 30d}\n",
            &|_| None,
        )
        .unwrap()
        .settings;
        let r = &s.kiln.retention;
        assert_eq!(r.bakes.max_age.map(|d| d.0), Some(90 * 24 * HOUR));
        assert_eq!(r.bakes.max_count, Some(10));
        assert_eq!(r.images.max_age.map(|d| d.0), Some(30 * 24 * HOUR));
    }

    #[test]
    fn only_plain_ids_are_bake_ids() {
        assert!(is_bake_id("6f1c2a9e-0d1b-4c8e-9a3b-2f7d5e6c8b1a"));
        for bad in ["", "..", "a/b", "a b", ".hidden", &"x".repeat(129)] {
            assert!(!is_bake_id(bad), "{bad}");
        }
    }

    #[test]
    fn sizes_count_files_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![0u8; 10_000]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), b"12345").unwrap();
        std::fs::write(dir.path().join("sub/b"), b"123").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let link_len = std::fs::symlink_metadata(dir.path().join("link"))
            .unwrap()
            .len();
        assert_eq!(size_of(dir.path()), 8 + link_len);
        // Removing the run dir removes the link, never what it points to.
        std::fs::write(dir.path().join(layout::EXIT), b"0").unwrap();
        assert!(remove_finished_run(dir.path()) > 0);
        assert!(!dir.path().exists());
        assert!(outside.path().join("big").exists());
    }
}
