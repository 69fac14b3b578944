//! Unpacking a fetched `.tar.gz` (a git/repo tarball) into a bake's work dir, treating it as
//! hostile: no entry may land outside the work dir (absolute paths, `..`, or through a symlink),
//! a symlink may only point inside it, hard links and device files are refused, and the number
//! of entries and the unpacked bytes are capped. Files are created new (never through an
//! existing file or link) with plain permissions.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The most entries one archive may hold.
pub const MAX_ENTRIES: usize = 20_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("the archive is not a readable .tar.gz: {0}")]
    Unreadable(String),
    #[error("the archive entry {0} would land outside the work dir")]
    Escapes(String),
    #[error("the archive entry {0} is a link kiln does not unpack ({1})")]
    Link(String, &'static str),
    #[error("the archive holds more than {0} entries")]
    TooManyEntries(usize),
    #[error("the archive unpacks to more than {0} bytes (kiln.manifests.maxArtifactBytes × 4)")]
    TooBig(u64),
    #[error("unpacking {0}: {1}")]
    Io(String, String),
}

/// The entry's path as a clean relative path, or None when it would escape.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a symlink at `link` (relative to the root) with `target` resolves inside the root,
/// read lexically (every other link was checked the same way when it was made).
fn target_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    for c in target.components() {
        match c {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// Whether any directory between `root` and `rel`'s parent is a symlink (entries never go
/// through a link, even one that points inside).
fn through_link(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for part in parent.iter() {
            at.push(part);
            if at
                .symlink_metadata()
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
            {
                return true;
            }
        }
    }
    false
}

/// Unpacks the gzip'd tar `bytes` into `root` (an existing, empty directory).
pub fn unpack_tgz(bytes: &[u8], root: &Path, max_bytes: u64) -> Result<(), ArchiveError> {
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
    let mut total: u64 = 0;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries(MAX_ENTRIES));
        }
        let mut entry = entry.map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
        let raw = entry
            .path()
            .map_err(|e| ArchiveError::Unreadable(e.to_string()))?
            .into_owned();
        let shown = crate::telemetry::escaped(&raw.to_string_lossy());
        let rel = inside(&raw).ok_or_else(|| ArchiveError::Escapes(shown.clone()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        if through_link(root, &rel) {
            return Err(ArchiveError::Escapes(shown));
        }
        let dest = root.join(&rel);
        let io = |e: io::Error| ArchiveError::Io(shown.clone(), e.to_string());
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&dest).map_err(io)?;
        } else if kind.is_file() {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let mode = entry.header().mode().unwrap_or(0o644);
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&dest)
                .map_err(io)?;
            let left = (max_bytes.saturating_sub(total)).saturating_add(1);
            let written = io::copy(&mut (&mut entry).take(left), &mut file).map_err(io)?;
            total += written;
            if total > max_bytes {
                return Err(ArchiveError::TooBig(max_bytes));
            }
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| ArchiveError::Unreadable(e.to_string()))?
                .ok_or_else(|| {
                    ArchiveError::Unreadable(format!("{shown}: a link without a target"))
                })?
                .into_owned();
            if !target_inside(&rel, &target) {
                return Err(ArchiveError::Link(shown, "it points outside the artifact"));
            }
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::os::unix::fs::symlink(&target, &dest).map_err(io)?;
        } else if kind.is_hard_link() {
            return Err(ArchiveError::Link(shown, "a hard link"));
        }
        // Anything else (pax headers, devices, FIFOs) is not part of a chart: skipped.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .tar.gz with raw header paths (tar's builder refuses `..`, which is what is tested).
    fn tgz(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            {
                let name = &mut h.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
            }
            if !link.is_empty() {
                let l = &mut h.as_old_mut().linkname;
                l[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            builder.append(&h, *data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    use tar::EntryType::{Directory, Link, Regular, Symlink};

    #[test]
    fn a_chart_unpacks_into_the_work_dir() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tgz(&[
            ("repo/", Directory, b"", ""),
            ("repo/Chart.yaml", Regular, b"name: a\n", ""),
            ("repo/templates/cm.yaml", Regular, b"kind: ConfigMap\n", ""),
            ("repo/current", Symlink, b"", "templates"),
        ]);
        unpack_tgz(&bytes, dir.path(), 1 << 20).unwrap();
        let chart = std::fs::read_to_string(dir.path().join("repo/Chart.yaml")).unwrap();
        assert_eq!(chart, "name: a\n");
        assert!(dir.path().join("repo/templates/cm.yaml").is_file());
    }

    #[test]
    fn entries_that_escape_are_refused() {
        for (entries, what) in [
            (vec![("../evil", Regular, &b"x"[..], "")], "dot-dot"),
            (vec![("/tmp/evil", Regular, &b"x"[..], "")], "absolute"),
            (vec![("out", Symlink, &b""[..], "../../etc")], "symlink out"),
            (vec![("out", Symlink, &b""[..], "/etc")], "absolute symlink"),
            (vec![("hard", Link, &b""[..], "/etc/passwd")], "hard link"),
            (
                vec![
                    ("in", Symlink, &b""[..], "."),
                    ("in/file", Regular, &b"x"[..], ""),
                ],
                "through a link",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("work");
            std::fs::create_dir(&root).unwrap();
            let e = unpack_tgz(&tgz(&entries), &root, 1 << 20).unwrap_err();
            assert!(
                matches!(e, ArchiveError::Escapes(_) | ArchiveError::Link(..)),
                "{what}: {e}"
            );
            assert!(!dir.path().join("evil").exists(), "{what}");
        }
    }

    #[test]
    fn the_unpacked_size_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'a'; 10_000];
        let bytes = tgz(&[("a", Regular, &big, ""), ("b", Regular, &big, "")]);
        let e = unpack_tgz(&bytes, dir.path(), 15_000).unwrap_err();
        assert_eq!(e, ArchiveError::TooBig(15_000));
    }

    #[test]
    fn garbage_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_tgz(b"not a tarball", dir.path(), 100).unwrap_err();
        assert!(matches!(e, ArchiveError::Unreadable(_)), "{e}");
    }
}
