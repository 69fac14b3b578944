//! After Packer built a qemu image: its kernel and initrd (downloaded from the VM by the
//! template) moved beside it, its size and SHA-256, the boot check when the bake asked for it
//! (`boot_test`), and `image.json`, which kiln's API shows. Safe to run twice for one bake (a
//! kiln restarted meanwhile re-attaches and finishes again).

use super::{boot_test_requested, installed_names};
use crate::bake::{BakeRecord, BakeRequest};
use crate::digest::sha256_file;
use crate::images::{
    BootCheck, BootSpec, DEFAULT_APPEND, INITRD, ImageInfo, KERNEL, boot_command, image_dir,
    staging_dir, write_image_info,
};
use crate::recipe::PackageType;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Finishes a bake whose Packer run succeeded. An error fails the bake with its message.
pub(super) async fn finish(
    data_dir: &Path,
    record: &BakeRecord,
    say: &mut (dyn FnMut(&str) + Send),
    cancel: &CancellationToken,
) -> Result<ImageInfo, String> {
    let var = |name: &str| {
        record
            .recipe
            .variables
            .get(name)
            .cloned()
            .unwrap_or_default()
    };
    let dir = image_dir(data_dir, &record.id);
    let stage = staging_dir(data_dir, &record.id);
    let image = dir.join(var("qemu_vm_name"));
    if !image.is_file() {
        return Err(format!(
            "Packer finished but the image {} is missing",
            image.display()
        ));
    }
    for name in [KERNEL, INITRD] {
        let (from, to) = (stage.join("boot").join(name), dir.join(name));
        if from.is_file() {
            std::fs::rename(&from, &to).map_err(|e| format!("cannot move {name}: {e}"))?;
        } else if !to.is_file() {
            return Err(format!(
                "Packer finished but did not download the image's {name} (expected {})",
                from.display()
            ));
        }
    }
    let hashed = image.clone();
    let sha256 = tokio::task::spawn_blocking(move || sha256_file(&hashed))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read {}: {e}", image.display()))?;
    let size = std::fs::metadata(&image).map(|m| m.len()).unwrap_or(0);
    let append = Some(var("qemu_append")).filter(|a| !a.is_empty());
    let append = append.unwrap_or_else(|| DEFAULT_APPEND.into());
    let (kernel, initrd) = (dir.join(KERNEL), dir.join(INITRD));
    let mut info = ImageInfo {
        bake_id: record.id.clone(),
        image_name: record.recipe.name.clone(),
        boot_command: boot_command(&image, &kernel, &initrd, &append),
        image,
        size,
        sha256,
        kernel,
        initrd,
        append,
        ssh_user_name: var("qemu_ssh_username"),
        ssh_key: PathBuf::from(var("qemu_ssh_private_key_file")),
        boot_check: None,
        boot_check_error: None,
    };
    say(&format!(
        "kiln: image {} ({} MiB, sha256 {})",
        info.image.display(),
        info.size >> 20,
        info.sha256
    ));

    let req: BakeRequest = serde_json::from_value(record.request.clone()).unwrap_or_default();
    let mut result = Ok(());
    if boot_test_requested(&req).unwrap_or(false) {
        let kind: PackageType = var("package_type").parse().unwrap_or(PackageType::Deb);
        let check = BootCheck {
            spec: BootSpec {
                disk: info.image.clone(),
                kernel: info.kernel.clone(),
                initrd: info.initrd.clone(),
                append: info.append.clone(),
                accelerator: Some(var("qemu_accelerator"))
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| "tcg".into()),
                serial_log: stage.join("boot-check-console.log"),
            },
            user: info.ssh_user_name.clone(),
            key: info.ssh_key.clone(),
            package_type: kind,
            packages: installed_names(kind, &req),
        };
        let outcome = tokio::select! {
            r = check.run(say) => r.map_err(|e| e.to_string()),
            _ = cancel.cancelled() => Err("canceled during the boot check".to_string()),
        };
        match outcome {
            Ok(report) => {
                say(&format!(
                    "kiln: boot check passed in {:.1}s",
                    report.seconds
                ));
                info.boot_check = Some(report);
            }
            Err(e) => {
                info.boot_check_error = Some(e.clone());
                result = Err(format!("boot check failed: {e}"));
            }
        }
    }
    write_image_info(&dir, &info)
        .map_err(|e| format!("cannot write {}/image.json: {e}", dir.display()))?;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&stage);
        say(&format!("kiln: boot it with: {}", info.boot_command));
    }
    result.map(|()| info)
}

/// Rosco's `Bake` for a qemu bake: the artifact `qemu/image` at location `local`, whose
/// reference is the qcow2's path.
pub(super) fn bake_details(data_dir: &Path, record: &BakeRecord) -> crate::bake::BakeDetails {
    use crate::bake::{Artifact, BakeDetails};
    let vm_name = record
        .recipe
        .variables
        .get("qemu_vm_name")
        .cloned()
        .unwrap_or_default();
    let image = image_dir(data_dir, &record.id).join(vm_name);
    let req: BakeRequest = serde_json::from_value(record.request.clone()).unwrap_or_default();
    BakeDetails {
        id: record.id.clone(),
        ami: None,
        image_name: Some(record.recipe.name.clone()),
        regions: Some(vec![record.region.clone()]),
        artifact: Some(Artifact {
            kind: Some("qemu/image".into()),
            name: Some(record.recipe.name.clone()),
            location: Some(record.region.clone()),
            reference: Some(image.display().to_string()),
            uuid: Some(record.id.clone()),
            metadata: Some(crate::providers::provider::build_info(&req)),
            ..Artifact::default()
        }),
        artifacts: None,
        base_ami: None,
    }
}
