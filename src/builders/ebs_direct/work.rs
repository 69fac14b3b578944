//! A bake's work folder (`<dataDir>/ebs-work/<bake id>`): the per-bake disk copy, its mount
//! point and what must be undone on any ending. The engine holds `lock` for its whole life, so
//! a sweep at kiln's start (after a crash, a SIGKILL, a reboot) releases exactly the folders
//! whose engine is gone, and never a running bake's.
//!
//! | file               | meaning                                                          |
//! |--------------------|------------------------------------------------------------------|
//! | `lock`             | flock-held by the engine                                          |
//! | `disk.raw`         | the per-bake copy of the base disk (sparse)                        |
//! | `root/`            | where its root filesystem is mounted                               |
//! | `pending-snapshot` | a started, not yet registered snapshot: deleted on failure/cancel |

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const LOCK: &str = "lock";
pub const DISK: &str = "disk.raw";
pub const ROOT: &str = "root";
pub const PENDING: &str = "pending-snapshot";

/// The engine's hold on its work folder.
pub struct Held {
    pub dir: PathBuf,
    _lock: File,
}

/// Creates the work folder (0700, anew: a previous run's leftovers are released first) and
/// takes its lock.
pub fn hold(dir: &Path) -> std::io::Result<Held> {
    if dir.exists() {
        release(dir);
    }
    std::fs::create_dir_all(dir.parent().unwrap_or(dir))?;
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700).create(dir)?;
    let lock = File::create(dir.join(LOCK))?;
    lock.try_lock().map_err(std::io::Error::other)?;
    Ok(Held {
        dir: dir.to_path_buf(),
        _lock: lock,
    })
}

/// Undoes everything local a bake left in `dir`: processes still running in its chroot are
/// killed, everything mounted below it is unmounted (deepest first; lazily if busy), loop
/// devices backed by its disk are detached, and the folder is removed. Returns what it did,
/// for the log. Never follows the image's symlinks: mount points come from the kernel's table.
pub fn release(dir: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    // Only the engine can delete a snapshot (it has the credentials); one it left is named here.
    if let Ok(id) = std::fs::read_to_string(dir.join(PENDING)) {
        notes.push(format!(
            "snapshot {} was started and never registered: delete it (EBS also stops it after {} minutes without a block)",
            id.trim(),
            super::SNAPSHOT_TIMEOUT_MINUTES
        ));
    }
    let root = dir.join(ROOT);
    let killed = kill_rooted_in(&root);
    if killed > 0 {
        notes.push(format!("stopped {killed} process(es) left in the chroot"));
    }
    let mut mounts = crate::images::rootfs::mounted_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in &mounts {
        let plain = Command::new("umount").arg(m).status();
        if !plain.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        notes.push(format!("unmounted {}", m.display()));
    }
    for dev in loops_of(&dir.join(DISK)) {
        let _ = Command::new("losetup").arg("-d").arg(&dev).status();
        notes.push(format!("detached {dev}"));
    }
    if let Err(e) = crate::images::rootfs::remove_tree(dir) {
        notes.push(e);
    }
    notes
}

/// Loop devices whose backing file is `disk` (`losetup -j`).
pub fn loops_of(disk: &Path) -> Vec<String> {
    let out = Command::new("losetup").arg("-j").arg(disk).output();
    let Ok(out) = out else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':').map(|(dev, _)| dev.trim().to_string()))
        .filter(|d| d.starts_with("/dev/loop"))
        .collect()
}

/// Kills (SIGKILL) every process whose root directory is `root`: a package's daemon that
/// started despite policy-rc.d would keep the filesystem busy and write into it after the diff.
pub fn kill_rooted_in(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let rooted = std::fs::read_link(e.path().join("root")).is_ok_and(|r| r == root);
        // SAFETY: kill(2) with a pid read from /proc and a valid signal; no memory is involved.
        if rooted && unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            killed += 1;
        }
    }
    killed
}

/// At kiln's start: releases every work folder whose engine is gone (its lock is free).
/// Returns the folders released.
pub fn sweep(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(super::spec::work_root(data_dir)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| release_if_ended(&e.path()).then(|| e.path()))
        .collect()
}

/// After a run ended (its engine may have been SIGKILLed after the grace): releases the bake's
/// work folder if its engine is gone. Notes go to kiln's log.
pub fn release_ended(data_dir: &Path, bake_id: &str) {
    let dir = super::spec::work_root(data_dir).join(bake_id);
    if dir.is_dir() {
        release_if_ended(&dir);
    }
}

fn release_if_ended(dir: &Path) -> bool {
    let free = match File::open(dir.join(LOCK)) {
        Ok(f) => f.try_lock().is_ok(),
        Err(_) => true,
    };
    if free {
        for note in release(dir) {
            tracing::warn!(dir = %dir.display(), "ebs-direct cleanup: {note}");
        }
    }
    free
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_releases_dead_folders_and_leaves_held_ones() {
        let data = tempfile::tempdir().unwrap();
        let root = crate::builders::ebs_direct::spec::work_root(data.path());
        let held = hold(&root.join("running")).unwrap();
        std::fs::create_dir_all(root.join("dead")).unwrap();
        std::fs::write(root.join("dead").join(LOCK), "").unwrap();
        let released = sweep(data.path());
        assert_eq!(released, vec![root.join("dead")]);
        assert!(!root.join("dead").exists());
        assert!(held.dir.join(LOCK).exists());
        drop(held);
        assert_eq!(sweep(data.path()), vec![root.join("running")]);
    }
}
