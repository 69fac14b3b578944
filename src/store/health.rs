//! Whether the store can really write and read now, for `/health` and for refusing new bakes
//! up front. A query that merely answers (`SELECT 1`) says nothing about a full disk, a
//! read-only remount or corrupted pages, so a probe writes and reads back for real:
//! - [`probe_dir`]: an unnamed temp file (`O_TMPFILE`, nothing is ever left behind) in the data
//!   dir, 4 KiB written, synced and read back — a full or read-only data dir fails here;
//! - each engine's own round trip (SQLite: a fresh connection, so the file is read from disk and
//!   not from this process's page cache, writes a row, reads it back and touches every table).
//!
//! A full data dir must not stop kiln from starting (to serve reads and say what is wrong), yet
//! opening SQLite in WAL mode needs a little room (its `-shm` file). So, as CockroachDB does with
//! its ballast, kiln keeps a **reserve** in the data dir ([`RESERVE`], [`RESERVE_BYTES`]
//! allocated): a store that cannot open releases it and tries again, and the probe re-creates it
//! and reads DOWN ("full") until there is room for it again.
//!
//! [`Probed`] caches the answer for [`PROBE_TTL`], so `/health` stays cheap however often it is
//! polled, and a recovered disk reads UP again within that time.

use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a probe's answer is reused.
pub const PROBE_TTL: Duration = Duration::from_secs(1);

/// What the data-dir probe writes: one page, enough that a full filesystem refuses it.
const PROBE_BYTES: usize = 4096;

/// The reserve's file in the data dir.
pub const RESERVE: &str = ".kiln-reserve";

/// The room the reserve keeps: enough to open the store and settle a few bakes.
pub const RESERVE_BYTES: u64 = 4 << 20;

/// Makes sure the reserve is there at full size, allocated (not sparse). Fails when the data
/// dir has no room for it, leaving no partial allocation behind.
pub fn keep_reserve(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(RESERVE);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == RESERVE_BYTES) {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    let allocated =
        match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, RESERVE_BYTES) {
            Ok(()) => Ok(()),
            // A filesystem without fallocate: zeros written out allocate as well.
            Err(rustix::io::Errno::OPNOTSUPP) => {
                let zeros = vec![0u8; 64 << 10];
                let mut f = &file;
                f.rewind().and_then(|_| {
                    (0..RESERVE_BYTES / zeros.len() as u64).try_for_each(|_| f.write_all(&zeros))
                })
            }
            Err(e) => Err(e.into()),
        };
    match allocated.and_then(|()| file.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = file.set_len(0);
            Err(e)
        }
    }
}

/// Frees the reserve so a full data dir has room to open the store; `true` when there was one.
pub fn release_reserve(dir: &Path) -> bool {
    std::fs::remove_file(dir.join(RESERVE)).is_ok()
}

/// Writes a page to the data dir and reads it back; `Err` says why not, for an operator.
pub fn probe_dir(dir: &Path) -> Result<(), String> {
    let page = [0x6b_u8; PROBE_BYTES];
    let round_trip = (|| -> std::io::Result<bool> {
        let mut f = tempfile::tempfile_in(dir)?;
        f.write_all(&page)?;
        f.sync_all()?;
        f.rewind()?;
        let mut back = Vec::with_capacity(PROBE_BYTES);
        f.read_to_end(&mut back)?;
        Ok(back == page)
    })();
    match round_trip {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the data dir {} does not read back what was written to it",
            dir.display()
        )),
        Err(e) => Err(describe_io(dir, &e)),
    }
}

/// An I/O error on the data dir in an operator's words.
pub fn describe_io(dir: &Path, e: &std::io::Error) -> String {
    let dir = dir.display();
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            format!("the data dir {dir} is full ({e}); free space there")
        }
        ErrorKind::ReadOnlyFilesystem => {
            format!("the data dir {dir} is on a read-only filesystem ({e})")
        }
        _ => format!("the data dir {dir} cannot be written ({e})"),
    }
}

/// A probe's answer, cached for [`PROBE_TTL`].
#[derive(Default)]
pub struct Probed {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Probed {
    /// The cached answer while fresh; else runs `probe` (one caller at a time) and keeps it.
    pub fn get(&self, probe: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < PROBE_TTL
        {
            return answer.clone();
        }
        let answer = probe();
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_dir_passes_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        probe_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_dir_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let e = probe_dir(&gone).unwrap_err();
        assert!(e.contains("gone") && e.contains("cannot be written"), "{e}");
    }

    #[test]
    fn the_reserve_is_kept_at_full_size_and_released() {
        let dir = tempfile::tempdir().unwrap();
        keep_reserve(dir.path()).unwrap();
        let reserve = dir.path().join(RESERVE);
        assert_eq!(std::fs::metadata(&reserve).unwrap().len(), RESERVE_BYTES);
        std::fs::write(&reserve, "short").unwrap();
        keep_reserve(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&reserve).unwrap().len(), RESERVE_BYTES);
        assert!(release_reserve(dir.path()));
        assert!(!reserve.exists() && !release_reserve(dir.path()));
    }

    #[test]
    fn answers_are_cached_for_the_ttl_then_probed_again() {
        let p = Probed::default();
        assert_eq!(p.get(|| Err("down".into())), Err("down".into()));
        assert_eq!(p.get(|| Ok(())), Err("down".into()), "cached");
        std::thread::sleep(PROBE_TTL + Duration::from_millis(50));
        assert_eq!(p.get(|| Ok(())), Ok(()));
    }
}
