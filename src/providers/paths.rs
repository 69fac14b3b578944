//! Templates and var files are named relative to `configDir` and must stay inside it: a request
//! must not make Packer read an arbitrary file on the bakery's machine.

use std::path::{Component, Path, PathBuf};

/// Resolves `name` inside `config_dir`. Refuses absolute paths, `..`, and symlinks that lead
/// outside; a missing file is refused too, so the request fails before Packer runs.
pub fn resolve_in_config_dir(config_dir: &Path, name: &str, what: &str) -> Result<PathBuf, String> {
    let rel = Path::new(name);
    if name.trim().is_empty() {
        return Err(format!("{what} name is empty"));
    }
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "{what} '{name}' must be a file name inside the bakery's configDir (no absolute paths or '..')"
        ));
    }
    let root = config_dir
        .canonicalize()
        .map_err(|e| format!("configDir {} is not readable: {e}", config_dir.display()))?;
    let full = root.join(rel);
    let real = full
        .canonicalize()
        .map_err(|_| format!("{what} '{name}' was not found in the bakery's configDir"))?;
    if !real.starts_with(&root) {
        return Err(format!(
            "{what} '{name}' leads outside the bakery's configDir"
        ));
    }
    if !real.is_file() {
        return Err(format!("{what} '{name}' is not a file"));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_config_dir_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aws-ebs.json"), "{}").unwrap();
        assert!(resolve_in_config_dir(dir.path(), "aws-ebs.json", "template").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../x"] {
            let e = resolve_in_config_dir(dir.path(), bad, "template").unwrap_err();
            assert!(e.contains("configDir"), "{bad}: {e}");
        }
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("sneaky.json")).unwrap();
        let e = resolve_in_config_dir(dir.path(), "sneaky.json", "template").unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = resolve_in_config_dir(dir.path(), "nope.json", "template").unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }
}
