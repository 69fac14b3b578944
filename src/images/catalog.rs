//! Which base images the `qemu` provider offers: those configured in `qemu.baseImages`, then
//! those `kiln base-image build` left in the data dir (a directory counts once its
//! `base-image.json` exists; the builder writes it last).

use super::{DEFAULT_APPEND, base_images_dir, safe_name};
use crate::config::{BaseImage, QemuBaseImage, Settings};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The manifest of a built base image (`base-images/<id>/base-image.json`). File names are
/// relative to its directory, so the directory can be moved or shared as a cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BaseManifest {
    pub id: String,
    pub suite: String,
    pub mirror: String,
    pub short_description: String,
    pub package_type: String,
    pub disk: String,
    pub kernel: String,
    pub initrd: String,
    pub kernel_version: String,
    pub ssh_user_name: String,
    pub ssh_key: String,
    pub disk_sha256: String,
    pub built_at_ms: i64,
    pub build_seconds: f64,
}

/// Where a base image was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    Config,
    DataDir,
}

/// A base image ready to bake from, with absolute paths.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalBaseImage {
    pub id: String,
    pub short_description: Option<String>,
    pub package_type: Option<String>,
    pub template_file: Option<String>,
    pub custom_repository: Option<String>,
    pub disk: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    pub ssh_user_name: String,
    pub ssh_key: PathBuf,
    /// What identifies the disk's content: its SHA-256 for built images, else its size and
    /// modification time (hashing a configured multi-GiB disk per request would be too slow).
    pub fingerprint: String,
    pub origin: Origin,
}

impl LocalBaseImage {
    /// Rosco's base image shape, for `bakeOptions`.
    pub fn base_image(&self) -> BaseImage {
        BaseImage {
            id: self.id.clone(),
            short_description: self.short_description.clone(),
            detailed_description: Some(format!("qcow2 {}", self.disk.display())),
            package_type: self.package_type.clone(),
            template_file: self.template_file.clone(),
            os_type: Some("linux".into()),
            custom_repository: self.custom_repository.clone(),
            ..BaseImage::default()
        }
    }

    fn from_config(c: &QemuBaseImage) -> LocalBaseImage {
        LocalBaseImage {
            id: c.id.clone(),
            short_description: c.short_description.clone(),
            package_type: c.package_type.clone(),
            template_file: c.template_file.clone(),
            custom_repository: c.custom_repository.clone(),
            disk: c.disk.clone(),
            kernel: c.kernel.clone(),
            initrd: c.initrd.clone(),
            append: c.append.clone().unwrap_or_else(|| DEFAULT_APPEND.into()),
            ssh_user_name: c.ssh_user_name.clone().unwrap_or_else(|| "root".into()),
            ssh_key: c.ssh_key.clone(),
            fingerprint: [&c.disk, &c.kernel, &c.initrd]
                .map(|p| stat_fingerprint(p))
                .join(","),
            origin: Origin::Config,
        }
    }

    fn from_manifest(dir: &Path, m: BaseManifest) -> LocalBaseImage {
        LocalBaseImage {
            id: m.id,
            short_description: Some(m.short_description).filter(|s| !s.is_empty()),
            package_type: Some(m.package_type).filter(|s| !s.is_empty()),
            template_file: None,
            custom_repository: None,
            disk: dir.join(m.disk),
            kernel: dir.join(m.kernel),
            initrd: dir.join(m.initrd),
            append: DEFAULT_APPEND.into(),
            ssh_user_name: m.ssh_user_name,
            ssh_key: dir.join(m.ssh_key),
            fingerprint: format!("sha256:{}", m.disk_sha256),
            origin: Origin::DataDir,
        }
    }

    /// The files this image needs that are missing, for a clear error before Packer runs.
    pub fn missing_files(&self) -> Vec<String> {
        [
            ("disk", &self.disk),
            ("kernel", &self.kernel),
            ("initrd", &self.initrd),
            ("sshKey", &self.ssh_key),
        ]
        .into_iter()
        .filter(|(_, p)| !p.is_absolute() || !p.is_file())
        .map(|(what, p)| format!("{what} {}", p.display()))
        .collect()
    }
}

fn stat_fingerprint(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(p) {
        Ok(m) => format!("{}:{}.{}", m.size(), m.mtime(), m.mtime_nsec()),
        Err(_) => "missing".into(),
    }
}

/// Reads `base-images/<name>/base-image.json`; `None` when it is absent or unreadable.
pub fn read_manifest(dir: &Path) -> Option<BaseManifest> {
    let bytes = std::fs::read(dir.join("base-image.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every base image of the `qemu` provider, configured ones first, each id once.
pub fn base_images(settings: &Settings) -> Vec<LocalBaseImage> {
    let mut out: Vec<LocalBaseImage> = settings
        .qemu
        .base_images
        .iter()
        .map(LocalBaseImage::from_config)
        .collect();
    let mut built = built_images(&base_images_dir(&settings.data_dir()));
    built.retain(|b| !out.iter().any(|c| c.id == b.id));
    out.extend(built);
    out
}

/// The base image named `id`, if the provider offers it.
pub fn find_base_image(settings: &Settings, id: &str) -> Option<LocalBaseImage> {
    if let Some(c) = settings.qemu.base_images.iter().find(|c| c.id == id) {
        return Some(LocalBaseImage::from_config(c));
    }
    if !safe_name(id) {
        return None;
    }
    let dir = base_images_dir(&settings.data_dir()).join(id);
    let m = read_manifest(&dir).filter(|m| m.id == id)?;
    Some(LocalBaseImage::from_manifest(&dir, m))
}

fn built_images(root: &Path) -> Vec<LocalBaseImage> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<LocalBaseImage> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path();
            let m = read_manifest(&dir).filter(|m| safe_name(&name) && m.id == name)?;
            Some(LocalBaseImage::from_manifest(&dir, m))
        })
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: &str) -> BaseManifest {
        BaseManifest {
            id: id.into(),
            suite: id.into(),
            package_type: "deb".into(),
            disk: "disk.qcow2".into(),
            kernel: "vmlinuz".into(),
            initrd: "initrd.img".into(),
            ssh_user_name: "root".into(),
            ssh_key: "id_ed25519".into(),
            disk_sha256: "abc".into(),
            ..BaseManifest::default()
        }
    }

    #[test]
    fn built_images_are_found_and_configured_ones_win() {
        let data = tempfile::tempdir().unwrap();
        for id in ["trixie", "bookworm"] {
            let dir = data.path().join("base-images").join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let json = serde_json::to_vec(&manifest(id)).unwrap();
            std::fs::write(dir.join("base-image.json"), json).unwrap();
        }
        // Incomplete (no manifest) and mismatched directories are not offered.
        std::fs::create_dir_all(data.path().join("base-images/half")).unwrap();
        let odd = data.path().join("base-images/odd");
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::write(
            odd.join("base-image.json"),
            serde_json::to_vec(&manifest("other")).unwrap(),
        )
        .unwrap();

        let mut s = Settings::default();
        s.kiln.data_dir = Some(data.path().to_path_buf());
        let ids: Vec<String> = base_images(&s).into_iter().map(|b| b.id).collect();
        assert_eq!(ids, ["bookworm", "trixie"]);
        let b = find_base_image(&s, "bookworm").unwrap();
        assert_eq!(b.origin, Origin::DataDir);
        assert_eq!(b.disk, data.path().join("base-images/bookworm/disk.qcow2"));
        assert_eq!(b.fingerprint, "sha256:abc");
        assert!(find_base_image(&s, "../bookworm").is_none());

        s.qemu.base_images.push(QemuBaseImage {
            id: "trixie".into(),
            disk: "/nonexistent/t.qcow2".into(),
            ..QemuBaseImage::default()
        });
        let all = base_images(&s);
        assert_eq!(all.len(), 2);
        let t = find_base_image(&s, "trixie").unwrap();
        assert_eq!(
            (t.origin, t.ssh_user_name.as_str()),
            (Origin::Config, "root")
        );
        assert!(t.missing_files().iter().any(|m| m.starts_with("disk ")));
    }
}
