//! The base snapshot, fetched once into `<dataDir>/ebs-cache/<snapshot id>` (a sparse raw
//! disk), and the per-bake copy of it. Blocks are fetched in parallel, each checked against its
//! SHA-256; the file appears under its name only when complete (rename), so a crash leaves at
//! most a `.part` file that the next fetch replaces. Concurrent bakes of one base fetch it once
//! (a lock per snapshot).

use crate::aws::AwsError;
use crate::aws::ebs::{BLOCK_SIZE, Ebs};
use futures_util::{StreamExt, TryStreamExt};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Parallel GetSnapshotBlock calls.
const WORKERS: usize = 16;
const GIB: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot {0}: {1}")]
    Bad(String, String),
    #[error("{0}")]
    NoRoom(String),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FetchError + 'a {
    move |source| FetchError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The cached base disk of `snapshot` (fetched now unless cached), and whether it was cached.
pub async fn base_disk(
    ebs: &Ebs,
    cache: &Path,
    snapshot: &str,
    max_gib: u64,
) -> Result<(PathBuf, bool), FetchError> {
    let path = cache.join(snapshot);
    if path.is_file() {
        return Ok((path, true));
    }
    std::fs::create_dir_all(cache).map_err(io("cannot create", cache))?;
    let lock_path = cache.join(format!(".{snapshot}.lock"));
    let lock = File::create(&lock_path).map_err(io("cannot create", &lock_path))?;
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| FetchError::Bad(snapshot.into(), e.to_string()))?
        .map_err(io("cannot lock", &lock_path))?;
    if path.is_file() {
        return Ok((path, true));
    }
    let listed = ebs.list_blocks(snapshot).await?;
    if listed.volume_size_gib == 0 || listed.volume_size_gib > max_gib {
        return Err(FetchError::Bad(
            snapshot.into(),
            format!(
                "a {} GiB volume (kiln takes 1 to {max_gib} GiB)",
                listed.volume_size_gib
            ),
        ));
    }
    let size = listed.volume_size_gib * GIB;
    // The blocks the snapshot holds are what the sparse file takes.
    ensure_room(
        cache,
        listed.blocks.len() as u64 * BLOCK_SIZE as u64,
        "the base disk",
    )?;
    let part = cache.join(format!(".{snapshot}.part"));
    let file = File::create(&part).map_err(io("cannot create", &part))?;
    file.set_len(size).map_err(io("cannot size", &part))?;
    let file = Arc::new(file);
    let blocks = listed.blocks;
    if blocks
        .iter()
        .any(|(i, _)| (i + 1) * BLOCK_SIZE as u64 > size)
    {
        return Err(FetchError::Bad(
            snapshot.into(),
            "a block lies outside the volume".into(),
        ));
    }
    futures_util::stream::iter(blocks)
        .map(|(index, token)| {
            let file = file.clone();
            let part = part.clone();
            async move {
                let data = ebs.get_block(snapshot, index, &token).await?;
                tokio::task::spawn_blocking(move || {
                    file.write_all_at(&data, index * BLOCK_SIZE as u64)
                        .map_err(io("cannot write", &part))
                })
                .await
                .map_err(|e| FetchError::Bad(snapshot.into(), e.to_string()))?
            }
        })
        .buffer_unordered(WORKERS)
        .try_collect::<Vec<()>>()
        .await?;
    file.sync_all().map_err(io("cannot sync", &part))?;
    std::fs::rename(&part, &path).map_err(io("cannot rename", &part))?;
    if let Ok(d) = File::open(cache) {
        let _ = d.sync_all();
    }
    drop(lock);
    Ok((path, false))
}

/// Fails with what to do when `dir`'s filesystem has less than `need` bytes free (a full data
/// dir would otherwise fail the bake half-way, with a write error).
fn ensure_room(dir: &Path, need: u64, what: &str) -> Result<(), FetchError> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| io("cannot stat", dir)(e.into()))?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    match room_error(need, free, what, dir) {
        Some(message) => Err(FetchError::NoRoom(message)),
        None => Ok(()),
    }
}

/// The message when `need` bytes do not fit in `free`.
fn room_error(need: u64, free: u64, what: &str, dir: &Path) -> Option<String> {
    const MIB: u64 = 1 << 20;
    (need > free).then(|| {
        format!(
            "{what} needs {} MiB in {}, which has {} MiB free: free space in kiln's data dir (kiln gc, kiln.retention) or give it more",
            need.div_ceil(MIB),
            dir.display(),
            free / MIB
        )
    })
}

/// The per-bake copy: sparse (`cp --sparse=always`, which finds the holes with SEEK_DATA and
/// keeps zero runs as holes; a hand-written copy would have to do both).
pub async fn copy(base: &Path, to: &Path) -> Result<(), FetchError> {
    // What the base takes on disk (it is sparse), and the copy will too.
    let allocated = std::fs::metadata(base)
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .map_err(io("cannot stat", base))?;
    ensure_room(
        to.parent().unwrap_or(to),
        allocated,
        "the bake's copy of the base disk",
    )?;
    let out = tokio::process::Command::new("cp")
        .arg("--sparse=always")
        .arg(base)
        .arg(to)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(io("cannot run cp for", to))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FetchError::Io {
            what: "cannot copy the base disk to",
            path: to.to_path_buf(),
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_that_does_not_fit_says_how_much_and_what_to_do() {
        let dir = Path::new("/var/lib/kiln/ebs-cache");
        assert_eq!(room_error(10 << 20, 10 << 20, "the base disk", dir), None);
        let e = room_error((3 << 30) + 1, 1 << 30, "the base disk", dir).unwrap();
        assert_eq!(
            e,
            "the base disk needs 3073 MiB in /var/lib/kiln/ebs-cache, which has 1024 MiB free: free space in kiln's data dir (kiln gc, kiln.retention) or give it more"
        );
        // On a real filesystem: nothing always fits, and u64::MAX bytes never do.
        let tmp = tempfile::tempdir().unwrap();
        assert!(ensure_room(tmp.path(), 0, "x").is_ok());
        assert!(matches!(
            ensure_room(tmp.path(), u64::MAX, "x"),
            Err(FetchError::NoRoom(_))
        ));
    }
}
