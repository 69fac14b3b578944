//! Templates and var files are named relative to `configDir` and must stay inside it: a request
//! must not make Packer read an arbitrary file on the bakery's machine.

use std::path::{Component, Path, PathBuf};

/// A file of configDir: its one spelling (relative to configDir, `.` and `..` folded away) and
/// its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// `aws-chroot.json` however the request spelled it (`./aws-chroot.json`,
    /// `x/../aws-chroot.json`): the name `templatesNeedingRoot`, the identity and logs use.
    pub name: String,
    pub path: PathBuf,
}

/// The one spelling of a name relative to configDir: `.` dropped, `a/..` folded, `/` between
/// parts. `None` for absolute names and names that climb out of configDir.
pub fn normal_name(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(name.trim()).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Resolves `name` inside `config_dir`. Refuses absolute paths, names that climb out, and
/// symlinks that lead outside; a missing file is refused too, so the request fails before
/// Packer runs.
pub fn resolve_in_config_dir(
    config_dir: &Path,
    name: &str,
    what: &str,
) -> Result<ConfigFile, String> {
    if name.trim().is_empty() {
        return Err(format!("{what} name is empty"));
    }
    let shown = crate::telemetry::escaped(name);
    let Some(normal) = normal_name(name) else {
        return Err(format!(
            "{what} {shown} must be a file name inside the bakery's configDir (no absolute paths, and '..' may not leave it)"
        ));
    };
    let root = config_dir
        .canonicalize()
        .map_err(|e| format!("configDir {} is not readable: {e}", config_dir.display()))?;
    let full = root.join(&normal);
    let real = full
        .canonicalize()
        .map_err(|_| format!("{what} {shown} was not found in the bakery's configDir"))?;
    if !real.starts_with(&root) {
        return Err(format!(
            "{what} {shown} leads outside the bakery's configDir"
        ));
    }
    if !real.is_file() {
        return Err(format!("{what} {shown} is not a file"));
    }
    Ok(ConfigFile {
        name: normal,
        path: full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_config_dir_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aws-ebs.json"), "{}").unwrap();
        assert!(resolve_in_config_dir(dir.path(), "aws-ebs.json", "template").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../x", "..", "."] {
            let e = resolve_in_config_dir(dir.path(), bad, "template").unwrap_err();
            assert!(e.contains("configDir"), "{bad}: {e}");
        }
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("sneaky.json")).unwrap();
        let e = resolve_in_config_dir(dir.path(), "sneaky.json", "template").unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = resolve_in_config_dir(dir.path(), "nope.json", "template").unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }

    #[test]
    fn every_spelling_of_a_template_is_one_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aws-chroot.json"), "{}").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for spelling in [
            "aws-chroot.json",
            "./aws-chroot.json",
            "sub/../aws-chroot.json",
            ".//./aws-chroot.json",
            " aws-chroot.json ",
        ] {
            let f = resolve_in_config_dir(dir.path(), spelling, "template").unwrap();
            assert_eq!(f.name, "aws-chroot.json", "{spelling}");
        }
        assert_eq!(normal_name("a/./b/../c.json").as_deref(), Some("a/c.json"));
        assert_eq!(normal_name("a/../../c.json"), None);
    }
}
