//! The masked variables' var file, in memory only: a sealed memfd that the supervisor holds and
//! Packer opens as `/proc/<supervisor pid>/fd/<n>` (Packer 1.6.6 reads `-var-file` with a plain
//! open, and /proc also works for a Packer started through `sudo`, which closes inherited
//! descriptors). Nothing is ever written to a disk, so nothing is left for a SIGKILL to strand;
//! the file goes away with the supervisor.

use super::layout::SecretVars;
use rustix::fs::{MemfdFlags, SealFlags};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// A var file in memory, alive as long as this value.
#[derive(Debug)]
pub struct SecretFile {
    file: File,
}

impl SecretFile {
    /// Builds the var file from `vars`, reading each value from the environment variable named
    /// beside it.
    pub fn from_env(vars: &SecretVars) -> io::Result<SecretFile> {
        let mut map = serde_json::Map::new();
        for (name, env) in &vars.vars {
            let value = std::env::var(env).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("the value of masked variable '{name}' is missing (${env} is unset)"),
                )
            })?;
            map.insert(name.clone(), serde_json::Value::String(value));
        }
        Self::new(serde_json::Value::Object(map).to_string().as_bytes())
    }

    /// A sealed, close-on-exec memfd holding `contents`.
    pub fn new(contents: &[u8]) -> io::Result<SecretFile> {
        let fd: OwnedFd = rustix::fs::memfd_create(
            "kiln-secret-vars",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        let mut file = File::from(fd);
        file.write_all(contents)?;
        // Nobody can change it afterwards, not even through /proc.
        rustix::fs::fcntl_add_seals(
            &file,
            SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
        )?;
        Ok(SecretFile { file })
    }

    /// The path Packer opens: this process's descriptor under /proc.
    pub fn proc_path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.file.as_raw_fd())
    }

    /// The `-var-file=` argument for Packer, through a link named `masked-variables.json` in
    /// `dir` that points at [`Self::proc_path`]: Packer 1.6.6 reads an HCL template's var files
    /// only by a `.json` or `.hcl` suffix ("Could not guess format of …" otherwise, measured),
    /// and a JSON template's any way. The link holds no secret, and it is dangling once this
    /// process is gone; [`Self::remove_link`] removes it.
    pub fn argument(&self, dir: &Path) -> io::Result<String> {
        let link = dir.join(LINK);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(self.proc_path(), &link)?;
        Ok(format!("-var-file={}", link.display()))
    }

    /// Removes the link [`Self::argument`] made in `dir`.
    pub fn remove_link(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(LINK));
    }
}

/// The name of the var file's link in the run's folder.
const LINK: &str = "masked-variables.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_reads_back_through_proc_and_cannot_be_changed() {
        let file = SecretFile::new(br#"{"token":"s3cr3t"}"#).unwrap();
        assert!(file.proc_path().starts_with("/proc/"));
        // Every open starts at the beginning, however often Packer reads it.
        for _ in 0..2 {
            let text = std::fs::read_to_string(file.proc_path()).unwrap();
            assert_eq!(text, r#"{"token":"s3cr3t"}"#);
        }
        assert!(std::fs::write(file.proc_path(), "changed").is_err());
        let target = std::fs::read_link(file.proc_path()).unwrap();
        assert!(
            target
                .to_string_lossy()
                .starts_with("/memfd:kiln-secret-vars"),
            "{target:?}"
        );
    }

    #[test]
    fn packer_gets_a_json_named_link_to_the_file_which_holds_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = SecretFile::new(br#"{"token":"s3cr3t"}"#).unwrap();
        let arg = file.argument(dir.path()).unwrap();
        let path = arg.strip_prefix("-var-file=").unwrap();
        assert!(path.ends_with(".json"), "{arg}");
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            r#"{"token":"s3cr3t"}"#
        );
        assert_eq!(
            std::fs::read_link(path).unwrap().to_string_lossy(),
            file.proc_path()
        );
        SecretFile::remove_link(dir.path());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn values_come_from_the_named_environment_variables() {
        let vars = SecretVars {
            at: 0,
            vars: vec![("api_token".into(), "KILN_TEST_SECRET_FILE_ENV".into())],
        };
        assert!(
            SecretFile::from_env(&vars).is_err(),
            "an unset variable is an error"
        );
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var("KILN_TEST_SECRET_FILE_ENV", "v\"al") };
        let file = SecretFile::from_env(&vars).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file.proc_path()).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"api_token": "v\"al"}));
    }
}
