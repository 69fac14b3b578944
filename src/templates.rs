//! The files in `configDir`: kiln's shipped Packer templates and `install_packages.sh`, and the
//! operator's own files delivered through the config's `files:` map the Spinnaker Operator way
//! (`profiles__rosco__packer__<name>`, `__` being a path separator).
//!
//! Every write stays inside configDir: no folder on the way may be a symlink, and no temp file
//! has a predictable name (see [`confined`]). A file that already holds its contents is not
//! rewritten, so a start on a full or read-only disk does not fail for nothing.
//!
//! A custom file of the same name as a shipped one wins. kiln records the digest of each file it
//! writes (`.kiln-shipped.json`), so it can tell its own earlier copy (updated on upgrade) from a
//! file the operator put there (left alone).

mod confined;

use crate::config::Settings;
use crate::digest::sha256_hex;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Files kiln ships, with their contents, compiled into the binary.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "aws-ebs.json",
        include_str!("../config/packer/aws-ebs.json"),
    ),
    (
        "aws-multi-ebs.json",
        include_str!("../config/packer/aws-multi-ebs.json"),
    ),
    (
        "aws-chroot.json",
        include_str!("../config/packer/aws-chroot.json"),
    ),
    (
        "aws-multi-chroot.json",
        include_str!("../config/packer/aws-multi-chroot.json"),
    ),
    ("qemu.json", include_str!("../config/packer/qemu.json")),
    ("gce.json", include_str!("../config/packer/gce.json")),
    ("docker.json", include_str!("../config/packer/docker.json")),
    (
        "alicloud.json",
        include_str!("../config/packer/alicloud.json"),
    ),
    (
        "alicloud-multi.json",
        include_str!("../config/packer/alicloud-multi.json"),
    ),
    (
        "tencentcloud.json",
        include_str!("../config/packer/tencentcloud.json"),
    ),
    (
        "huaweicloud.json",
        include_str!("../config/packer/huaweicloud.json"),
    ),
    ("oci.json", include_str!("../config/packer/oci.json")),
    (
        "azure-linux.pkr.hcl",
        include_str!("../config/packer/azure-linux.pkr.hcl"),
    ),
    (
        "azure-linux-managed-image.pkr.hcl",
        include_str!("../config/packer/azure-linux-managed-image.pkr.hcl"),
    ),
    (
        "azure-windows.pkr.hcl",
        include_str!("../config/packer/azure-windows.pkr.hcl"),
    ),
    (
        "azure-windows-managed-image.pkr.hcl",
        include_str!("../config/packer/azure-windows-managed-image.pkr.hcl"),
    ),
    (
        "scripts/windows-configure-chocolatey.ps1",
        include_str!("../config/packer/scripts/windows-configure-chocolatey.ps1"),
    ),
    (
        "scripts/windows-install-packages.ps1",
        include_str!("../config/packer/scripts/windows-install-packages.ps1"),
    ),
    (
        "install_packages.sh",
        include_str!("../config/packer/install_packages.sh"),
    ),
];

const MANIFEST: &str = ".kiln-shipped.json";
const OPERATOR_PREFIX: &str = "profiles/rosco/packer/";

/// Prepares `configDir`: shipped files (unless overridden), then the `files:` entries.
pub fn install(settings: &Settings) -> anyhow::Result<()> {
    let dir = settings.config_dir();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create configDir {}", dir.display()))?;
    if let Err(e) = install_shipped(&dir) {
        tracing::warn!(config_dir = %dir.display(), error = %format!("{e:#}"), "could not install kiln's shipped templates; using what configDir holds");
    }
    install_files(&dir, &settings.files)
}

fn install_shipped(dir: &Path) -> anyhow::Result<()> {
    let manifest_path = dir.join(MANIFEST);
    let mut manifest: BTreeMap<String, String> = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for &(name, content) in SHIPPED {
        let target = dir.join(name);
        let current = std::fs::read(&target).ok().map(|b| sha256_hex(&b));
        let ours = current.is_none() || current == manifest.get(name).cloned();
        if !ours {
            tracing::info!(
                file = name,
                "configDir holds a custom {name}; it overrides the shipped one"
            );
            continue;
        }
        write_file(dir, Path::new(name), content.as_bytes())?;
        manifest.insert(name.to_string(), sha256_hex(content.as_bytes()));
    }
    let manifest = serde_json::to_vec_pretty(&manifest)?;
    if std::fs::read(&manifest_path).ok().as_deref() != Some(manifest.as_slice()) {
        confined::write(dir, Path::new(MANIFEST), &manifest, 0o644)?;
    }
    Ok(())
}

/// Writes the operator's `files:` entries under configDir.
fn install_files(dir: &Path, files: &BTreeMap<String, String>) -> anyhow::Result<()> {
    for (key, content) in files {
        let Some(rel) = operator_path(key)? else {
            tracing::warn!(
                file = key,
                "files: entry is not under profiles__rosco__packer__ and is ignored"
            );
            continue;
        };
        write_file(dir, &rel, content.as_bytes())
            .with_context(|| format!("files: entry '{key}'"))?;
    }
    Ok(())
}

/// `profiles__rosco__packer__scripts__x.sh` → `scripts/x.sh`; `None` for other prefixes.
pub fn operator_path(key: &str) -> anyhow::Result<Option<PathBuf>> {
    let path = key.replace("__", "/");
    let Some(rel) = path.strip_prefix(OPERATOR_PREFIX) else {
        return Ok(None);
    };
    let rel = PathBuf::from(rel);
    let inside =
        !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !inside {
        bail!(
            "files: entry '{key}' would be written outside configDir; use a plain file name under profiles__rosco__packer__"
        );
    }
    Ok(Some(rel))
}

/// Writes `dir/rel` atomically and confined to `dir`, unless it already is a plain file with
/// these contents and mode; scripts (`.sh`, or text starting with `#!`) are made executable.
fn write_file(dir: &Path, rel: &Path, content: &[u8]) -> anyhow::Result<()> {
    let script = rel.extension().is_some_and(|e| e == "sh") || content.starts_with(b"#!");
    let mode = if script { 0o755 } else { 0o644 };
    let target = dir.join(rel);
    let unchanged = std::fs::symlink_metadata(&target).is_ok_and(|m| {
        m.is_file()
            && m.permissions().mode() & 0o7777 == mode
            && std::fs::read(&target).is_ok_and(|b| b == content)
    });
    if unchanged {
        return Ok(());
    }
    confined::write(dir, rel, content, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings {
        let mut s = Settings::default();
        s.rosco.config_dir = Some(dir.to_path_buf());
        s
    }

    #[test]
    fn shipped_files_are_installed_and_a_custom_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        install(&settings(dir.path())).unwrap();
        let script = dir.path().join("install_packages.sh");
        assert!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o111 != 0);
        std::fs::write(dir.path().join("aws-ebs.json"), "{\"custom\": true}").unwrap();
        install(&settings(dir.path())).unwrap();
        let kept = std::fs::read_to_string(dir.path().join("aws-ebs.json")).unwrap();
        assert_eq!(kept, "{\"custom\": true}");
    }

    #[test]
    fn operator_files_map_double_underscores_to_folders() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.files.insert(
            "profiles__rosco__packer__scripts__hello.sh".into(),
            "#!/bin/sh\necho hi\n".into(),
        );
        s.files
            .insert("profiles__clouddriver.yml".into(), "x: 1".into());
        install(&s).unwrap();
        let script = dir.path().join("scripts/hello.sh");
        assert!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o111 != 0);
        assert!(!dir.path().join("clouddriver.yml").exists());
    }

    #[test]
    fn an_operator_file_never_lands_outside_through_a_symlinked_folder() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("scripts")).unwrap();
        let mut s = settings(dir.path());
        s.files.insert(
            "profiles__rosco__packer__scripts__evil.sh".into(),
            "#!/bin/sh\n".into(),
        );
        let e = install(&s).unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("scripts__evil.sh") && e.contains("symlink"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn planted_symlinks_at_temp_and_target_paths_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "theirs").unwrap();
        // The old predictable temp names, the manifest and a shipped file's own name.
        for name in [
            "aws-ebs.kiln-tmp",
            "install_packages.kiln-tmp",
            ".kiln-shipped.json",
            "qemu.json",
        ] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        install(&settings(dir.path())).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "theirs");
    }

    #[test]
    fn operator_files_cannot_leave_the_config_dir() {
        let e = operator_path("profiles__rosco__packer__..__..__etc__passwd").unwrap_err();
        assert!(e.to_string().contains("outside configDir"), "{e}");
    }
}
