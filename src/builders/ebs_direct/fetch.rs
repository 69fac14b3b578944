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

/// The per-bake copy: sparse (`cp --sparse=always`, which finds the holes with SEEK_DATA and
/// keeps zero runs as holes; a hand-written copy would have to do both).
pub async fn copy(base: &Path, to: &Path) -> Result<(), FetchError> {
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
