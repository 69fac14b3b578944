//! Writing a file under a folder so that it lands inside that folder whatever symlinks someone
//! planted there: every folder on the way is opened relative to its parent with `O_NOFOLLOW`
//! (a symlinked folder is refused, never followed), and the file is written to a temp file of a
//! random name created with `O_CREAT|O_EXCL|O_NOFOLLOW` (a symlink planted at a predictable path
//! is never written through), then renamed over the target (a symlink at the target is
//! replaced, not followed).
//!
//! Hand-written over rustix's `*at` calls because that is all it takes: cap-std offers the same
//! confinement but brings a dozen crates for these four calls.

use anyhow::{Context, bail};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

/// Writes `content` at `root/rel` with `mode`, creating the folders of `rel` as needed. `root`
/// itself may be a symlink (the operator chose it); nothing below it may be.
pub(crate) fn write(root: &Path, rel: &Path, content: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(n),
            _ => bail!("{} is not a plain relative path", rel.display()),
        }
    }
    let Some((name, folders)) = names.split_last() else {
        bail!("an empty path names no file");
    };
    let mut dir = rustix::fs::open(root, dir_flags(), Mode::empty())
        .with_context(|| format!("cannot open {}", root.display()))?;
    let mut at = root.to_path_buf();
    for folder in folders {
        at.push(folder);
        dir = open_or_make_folder(&dir, folder)
            .with_context(|| format!("cannot write under {}", at.display()))?;
    }
    let tmp = format!(
        ".{}.{}.kiln-tmp",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    );
    let written = write_new(&dir, &tmp, content, mode)
        .and_then(|()| rustix::fs::renameat(&dir, tmp.as_str(), &dir, *name).map_err(Into::into));
    if let Err(e) = written {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        return Err(e).with_context(|| format!("cannot write {}", root.join(rel).display()));
    }
    let _ = rustix::fs::fsync(&dir);
    Ok(())
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Opens `name` in `dir` as a real folder (made when missing); a symlink is refused.
fn open_or_make_folder(dir: &OwnedFd, name: &std::ffi::OsStr) -> anyhow::Result<OwnedFd> {
    let flags = dir_flags() | OFlags::NOFOLLOW;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(Errno::LOOP | Errno::NOTDIR) => bail!(
            "it is a symlink or not a folder; kiln writes only into real folders inside configDir"
        ),
        Err(e) => return Err(e.into()),
    }
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => anyhow::anyhow!(
            "it is a symlink or not a folder; kiln writes only into real folders inside configDir"
        ),
        e => e.into(),
    })
}

/// Creates `name` (it must not exist, not even as a symlink) 0600, writes, sets `mode`, syncs.
fn write_new(dir: &OwnedFd, name: &str, content: &[u8], mode: u32) -> std::io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(content)?;
    rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn a_file_is_written_with_its_folders_and_mode() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), Path::new("a/b/x.sh"), b"#!/bin/sh\n", 0o755).unwrap();
        let p = root.path().join("a/b/x.sh");
        assert_eq!(std::fs::read(&p).unwrap(), b"#!/bin/sh\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let left: Vec<_> = std::fs::read_dir(root.path().join("a/b"))
            .unwrap()
            .collect();
        assert_eq!(left.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn a_symlinked_folder_is_refused_and_nothing_lands_outside() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("scripts")).unwrap();
        let e = write(root.path(), Path::new("scripts/x.sh"), b"x", 0o644).unwrap_err();
        assert!(format!("{e:#}").contains("symlink"), "{e:#}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "theirs").unwrap();
        symlink(&victim, root.path().join("x.json")).unwrap();
        write(root.path(), Path::new("x.json"), b"ours", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "theirs");
        let target = root.path().join("x.json");
        assert!(!std::fs::symlink_metadata(&target).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(target).unwrap(), "ours");
    }
}
