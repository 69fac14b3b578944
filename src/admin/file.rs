//! The config file kiln serves, opened for an edit and written back atomically: a temp file in
//! the same folder, flushed, then renamed over the original, so a running kiln or a crash never
//! sees half a file. A file holding a secret (any cloud's) is made mode 0600; otherwise its mode
//! is kept.
//! The operator's other keys are kept; YAML comments are not (the tree is re-serialized).

use super::yaml::{self, Changes};
use anyhow::{Context, anyhow, bail};
use serde_norway::{Mapping, Value};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A config file being edited.
pub(crate) struct ConfigFile {
    /// The real file (symlinks followed), so the rename replaces the file, not the link.
    path: PathBuf,
    original: Option<String>,
    pub root: Mapping,
}

impl ConfigFile {
    /// Opens `path` for editing; a missing file is an empty configuration.
    pub(crate) fn open(path: &Path) -> anyhow::Result<ConfigFile> {
        let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let original = match std::fs::read_to_string(&real) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", real.display())),
        };
        let root = match original.as_deref().map(serde_norway::from_str::<Value>) {
            None => Mapping::new(),
            Some(Ok(Value::Null)) => Mapping::new(),
            Some(Ok(Value::Mapping(m))) => m,
            Some(Ok(_)) => bail!("{} does not hold a YAML mapping", real.display()),
            Some(Err(e)) => bail!("{} is not valid YAML ({e}); fix it first", real.display()),
        };
        Ok(ConfigFile {
            path: real,
            original,
            root,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the original text had comments, which a rewrite drops.
    pub(crate) fn had_comments(&self) -> bool {
        self.original
            .as_deref()
            .is_some_and(|t| t.lines().any(|l| l.trim_start().starts_with('#')))
    }

    /// Writes the tree back. Refuses when the edit turns a loadable file into one kiln would not
    /// start with (the reason is given); the original stays as it was.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        let text = serde_norway::to_string(&self.root).context("cannot write the YAML")?;
        let env = |k: &str| std::env::var(k).ok();
        let was_ok = self
            .original
            .as_deref()
            .is_none_or(|t| crate::config::load_str(t, &env).is_ok());
        if was_ok && let Err(e) = crate::config::load_str(&text, &env) {
            bail!(
                "not written: kiln would not start with the edited file: {e:#}; {} is unchanged",
                self.path.display()
            );
        }
        write_atomically(&self.path, text.as_bytes(), self.mode())
    }

    /// 0600 when the file holds a secret; else the file's current mode (0644 for a new file).
    fn mode(&self) -> u32 {
        if holds_secret(&self.root) {
            return 0o600;
        }
        std::fs::metadata(&self.path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644)
    }
}

/// Every secret key the admin commands write: `(cloud, section, key)`, the section a mapping
/// (`bakeryDefaults`) or a list of them (`accounts`).
const SECRETS: &[(&str, &str, &str)] = &[
    ("aws", "bakeryDefaults", "awsSecretKey"),
    ("alicloud", "bakeryDefaults", "alicloudSecretKey"),
    ("tencentcloud", "bakeryDefaults", "secretKey"),
    ("huaweicloud", "bakeryDefaults", "password"),
    ("oracle", "accounts", "privateKeyPassphrase"),
    ("azure", "accounts", "appKey"),
];

/// Whether any of [`SECRETS`] is set.
pub(crate) fn holds_secret(root: &Mapping) -> bool {
    let set = |m: &Mapping, key: &str| {
        yaml::get(m, key).is_some_and(|s| !yaml::text(Some(s)).trim().is_empty())
    };
    SECRETS.iter().any(|(cloud, section, key)| {
        let section = yaml::get(root, cloud)
            .and_then(Value::as_mapping)
            .and_then(|c| yaml::get(c, section));
        match section {
            Some(Value::Mapping(m)) => set(m, key),
            Some(Value::Sequence(list)) => list
                .iter()
                .filter_map(Value::as_mapping)
                .any(|m| set(m, key)),
            _ => false,
        }
    })
}

/// A temp file of a random name in the same folder, created new with mode 0600 before a byte is
/// written (tempfile's `O_CREAT|O_EXCL`: a symlink planted at any path is never followed, and
/// the secret is never readable by others even for a moment); write, flush, final mode, rename,
/// then flush the folder so the rename survives a crash.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let written = (|| -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".kiln-config-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    written.with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The file an edit writes: `--config` or `KILN_CONFIG`.
pub(crate) fn require_config(config: Option<&Path>) -> anyhow::Result<&Path> {
    config.ok_or_else(|| {
        anyhow!("which config file? pass --config FILE or set KILN_CONFIG (the file kiln serves)")
    })
}

/// Prints the changes (never a secret) and what the operator does next.
pub(crate) fn report(file: &ConfigFile, changes: &Changes) {
    if changes.0.is_empty() {
        println!("{}: no changes", file.path().display());
        return;
    }
    println!("{}:", file.path().display());
    for line in &changes.0 {
        println!("  {line}");
    }
    if file.had_comments() {
        eprintln!("note: the file was rewritten; its YAML comments were not kept");
    }
    eprintln!("run `kiln deploy apply` to apply it to the running kiln");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_a_secret_is_written_0600_and_others_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.yml");
        std::fs::write(&path, "x: 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut f = ConfigFile::open(&path).unwrap();
        f.root.insert("y".into(), 2.into());
        f.save().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let mut f = ConfigFile::open(&path).unwrap();
        let yaml = "aws:\n  bakeryDefaults:\n    awsAccessKey: A\n    awsSecretKey: S\n";
        f.root = serde_norway::from_str(yaml).unwrap();
        f.save().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn every_clouds_secret_and_an_accounts_makes_the_file_0600() {
        let holds = |y: &str| holds_secret(&serde_norway::from_str(y).unwrap());
        assert!(!holds(
            "aws: {bakeryDefaults: {awsAccessKey: A}}\nazure: {accounts: [{name: a}]}"
        ));
        assert!(holds("huaweicloud: {bakeryDefaults: {password: p}}"));
        assert!(holds(
            "oracle: {accounts: [{name: a}, {name: b, privateKeyPassphrase: p}]}"
        ));
        assert!(holds("azure: {accounts: [{name: a, app-key: k}]}"));
        assert!(!holds("azure: {accounts: [{name: a, appKey: ''}]}"));
    }

    #[test]
    fn a_symlink_planted_at_the_old_temp_path_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "theirs\n").unwrap();
        let path = dir.path().join("kiln.yml");
        std::fs::write(&path, "x: 1\n").unwrap();
        // What the old writer would have opened: `.kiln.yml.kiln-tmp-<pid>`.
        let planted = dir
            .path()
            .join(format!(".kiln.yml.kiln-tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let mut f = ConfigFile::open(&path).unwrap();
        let yaml = "aws:\n  bakeryDefaults:\n    awsAccessKey: A\n    awsSecretKey: S\n";
        f.root = serde_norway::from_str(yaml).unwrap();
        f.save().unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "theirs\n");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "the config is a plain file, not a symlink");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("tmp") && !n.starts_with(".kiln.yml.kiln-tmp-"))
            .collect();
        assert!(names.is_empty(), "temp files left: {names:?}");
    }

    #[test]
    fn an_edit_that_breaks_a_good_file_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.yml");
        std::fs::write(&path, "server:\n  port: 8087\n").unwrap();
        let mut f = ConfigFile::open(&path).unwrap();
        f.root.insert("server".into(), "eighty".into());
        let e = f.save().unwrap_err().to_string();
        assert!(e.contains("not written"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "server:\n  port: 8087\n"
        );
    }
}
