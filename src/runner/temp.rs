//! kiln's own temp folder, `<dataDir>/tmp` (0700): Packer's temp files for each run and the
//! scratch copy `kiln config validate` works in. kiln never uses `$TMPDIR` or
//! `$XDG_RUNTIME_DIR`: they may not exist, and a shared temp folder is no place for the files
//! Packer writes (its debug log holds every variable a provisioner is given, secrets included).
//!
//! Why not the run dir itself: Packer 1.6.6 puts its plugins' Unix sockets in its temp folder,
//! and a socket path has at most 107 bytes; `<dataDir>/tmp/<12 chars>/packer-plugin<10 digits>`
//! leaves room for a data dir path of about 60 bytes.
//!
//! Lifecycle: a run's folder is made by [`crate::runner::start`], removed by its supervisor
//! once Packer's process group is gone (or by kiln, if the supervisor died), and whatever a crash
//! left behind is swept at kiln's next start ([`sweep`]).

use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The environment variables that point Packer (and the libraries and scripts it runs) at its
/// temp folder: Packer's own `PACKER_TMP_DIR`, and `TMPDIR` for everything else.
pub const ENV: [&str; 2] = ["TMPDIR", "PACKER_TMP_DIR"];

/// How old a `kiln config validate` scratch folder must be before a start-up sweep removes it
/// (a validate may run while kiln starts).
const SCRATCH_MAX_AGE: Duration = Duration::from_secs(3600);

/// The prefix of `kiln config validate`'s scratch folders.
pub const SCRATCH_PREFIX: &str = "validate-";

/// The longest Unix socket path (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What Packer 1.6.6 appends to its temp folder for a plugin's socket: `/packer-plugin` and a
/// random number of up to 10 digits.
const PLUGIN_SOCKET_NAME: usize = "/packer-plugin".len() + 10;

/// `<dataDir>/tmp` as an absolute path (Packer runs in configDir, so a relative one would point
/// elsewhere), created 0700 if missing (an existing one is made 0700 too).
pub fn root(data_dir: &Path) -> io::Result<PathBuf> {
    let root = std::path::absolute(data_dir.join("tmp"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
    Ok(root)
}

/// A new, empty, 0700 folder in `<dataDir>/tmp` with a short random name, removed when the
/// returned guard is dropped (unless it is kept with [`tempfile::TempDir::keep`]).
pub fn folder(data_dir: &Path, prefix: &str) -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .rand_bytes(12)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(root(data_dir)?)
}

/// Fails, saying what to change, when Packer could not make its plugin sockets in `dir`.
pub fn check_socket_room(dir: &Path) -> io::Result<()> {
    let len = dir.as_os_str().len() + PLUGIN_SOCKET_NAME;
    if len <= MAX_SOCKET_PATH {
        return Ok(());
    }
    Err(io::Error::new(
        ErrorKind::InvalidInput,
        format!(
            "Packer's temp folder {} is {} bytes too long for its plugin sockets (Unix socket paths have at most {MAX_SOCKET_PATH} bytes): give kiln.dataDir a shorter path",
            dir.display(),
            len - MAX_SOCKET_PATH
        ),
    ))
}

/// Points Packer at `dir` for its temp files.
pub fn env(dir: &Path) -> Vec<(String, String)> {
    ENV.iter()
        .map(|k| (k.to_string(), dir.display().to_string()))
        .collect()
}

/// Removes `dir` and everything in it; a missing folder is fine.
pub fn remove(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes what earlier kiln processes left in `<dataDir>/tmp`, except the folders in `keep`
/// (those of Packer runs that still live) and validate scratch folders younger than an hour.
pub fn sweep(data_dir: &Path, keep: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(data_dir.join("tmp")) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if keep.iter().any(|k| k == &path) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        if name.starts_with(SCRATCH_PREFIX) && age < SCRATCH_MAX_AGE {
            continue;
        }
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed a temp folder left by an earlier run")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a left-over temp folder")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_private_short_and_swept_unless_kept() {
        let data = tempfile::tempdir().unwrap();
        let run = folder(data.path(), "r").unwrap().keep();
        let other = folder(data.path(), "r").unwrap().keep();
        let scratch = folder(data.path(), SCRATCH_PREFIX).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data.path().join("tmp")), 0o700);
        assert_eq!(mode(&run), 0o700);
        assert_eq!(run.file_name().unwrap().len(), 13);
        std::fs::write(other.join("packer-log123"), "x").unwrap();
        sweep(data.path(), std::slice::from_ref(&run));
        assert!(run.is_dir(), "a live run's folder stays");
        assert!(!other.exists(), "a dead run's folder goes");
        assert!(scratch.path().is_dir(), "a fresh validate scratch stays");
    }

    #[test]
    fn a_data_dir_too_long_for_packers_sockets_is_named() {
        assert!(check_socket_room(Path::new("/var/lib/kiln/tmp/rAbCdEfGhIjKl")).is_ok());
        let long = format!("/{}/tmp/rAbCdEfGhIjKl", "d".repeat(80));
        let err = check_socket_room(Path::new(&long)).unwrap_err().to_string();
        assert!(
            err.contains("kiln.dataDir") && err.contains("too long"),
            "{err}"
        );
    }

    #[test]
    fn a_relative_data_dir_gives_an_absolute_folder() {
        let dir = folder(Path::new("target/tmp-relative-test"), "r").unwrap();
        assert!(dir.path().is_absolute(), "{:?}", dir.path());
    }

    #[test]
    fn packer_is_pointed_at_the_folder() {
        let env = env(Path::new("/d/tmp/rX"));
        assert_eq!(
            env,
            vec![
                ("TMPDIR".to_string(), "/d/tmp/rX".to_string()),
                ("PACKER_TMP_DIR".to_string(), "/d/tmp/rX".to_string())
            ]
        );
    }
}
