//! Baked qemu images: `images/<bake id>/image.json`, what kiln's API shows of a local image.

use super::boot::BootReport;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A baked qemu image (`images/<bake id>/image.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub bake_id: String,
    pub image_name: String,
    /// The qcow2 file.
    pub image: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    pub ssh_user_name: String,
    pub ssh_key: PathBuf,
    /// One command that boots the image with its console on the terminal.
    pub boot_command: String,
    pub boot_check: Option<BootReport>,
    pub boot_check_error: Option<String>,
}

/// Reads a baked image's `image.json`.
pub fn read_image_info(data_dir: &Path, bake_id: &str) -> Option<ImageInfo> {
    if !super::safe_name(bake_id) {
        return None;
    }
    let bytes = std::fs::read(super::image_dir(data_dir, bake_id).join("image.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `dir/image.json` so that readers see all of it or none.
pub fn write_image_info(dir: &Path, info: &ImageInfo) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    crate::runner::layout::write_atomic(dir, "image.json", &json)
}
