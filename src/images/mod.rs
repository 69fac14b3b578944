//! Local images for the `qemu` provider: the base images a bake starts from and the qcow2
//! images bakes produce, all on this machine.
//!
//! In the data dir:
//!
//! | path | what |
//! |---|---|
//! | `base-images/<id>/` | a base image built by `kiln base-image build <id>` ([`build`]): `disk.qcow2` (ext4, no bootloader), `vmlinuz`, `initrd.img`, `id_ed25519` (root's SSH key) and `base-image.json`, written last |
//! | `images/<bake id>/` | a baked image: `<image name>.qcow2`, its own `vmlinuz` and `initrd.img` (taken from the image, so a kernel upgraded by the bake boots) and `image.json` ([`ImageInfo`]) |
//! | `staging/<bake id>/` | while a bake runs (the qemu provider stages it): the package artifacts uploaded to the VM, the boot files Packer downloads, the VM's serial log |
//!
//! Base images in the data dir are offered without configuration; `qemu.baseImages` in the
//! config adds others (and wins on the same id).

mod baked;
mod boot;
mod build;
mod catalog;
mod cli;
pub mod rootfs;
mod run;

pub use baked::{ImageInfo, read_image_info, write_image_info};
pub use boot::{BootCheck, BootError, BootReport, BootSpec, Ssh, Vm};
pub use build::{BuildError, BuildOptions, Outcome as Built, build_base_image, host_mirror};
pub use catalog::{
    BaseManifest, LocalBaseImage, Origin, base_images, find_base_image, read_manifest,
};
pub use cli::{BaseImageCommand, run_cli};

use std::path::{Path, PathBuf};

/// The kernel command line for kiln's images: an ext4 root on the first virtio disk.
pub const DEFAULT_APPEND: &str = "root=/dev/vda rw console=ttyS0";
/// Where package artifacts appear inside the build VM.
pub const GUEST_ARTIFACTS_DIR: &str = "/tmp/kiln-artifacts";
/// The image file of a base image, and its other files.
pub const DISK: &str = "disk.qcow2";
pub const KERNEL: &str = "vmlinuz";
pub const INITRD: &str = "initrd.img";
pub const SSH_KEY: &str = "id_ed25519";

pub fn base_images_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("base-images")
}

/// `images/<bake id>`. Bake ids used here were checked by [`safe_name`].
pub fn image_dir(data_dir: &Path, bake_id: &str) -> PathBuf {
    data_dir.join("images").join(bake_id)
}

pub fn staging_dir(data_dir: &Path, bake_id: &str) -> PathBuf {
    data_dir.join("staging").join(bake_id)
}

/// Whether `name` can be one path component: letters, digits, `.`, `_`, `-` and `+`, not
/// starting with `.`, at most 200 characters. Base image ids, bake ids and image names of
/// qemu bakes become file names, so a request must not be able to leave the data dir.
pub fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

/// The command that boots an image the way kiln's boot check does, with the console on the
/// terminal and SSH forwarded to `127.0.0.1:2222`.
pub fn boot_command(disk: &Path, kernel: &Path, initrd: &Path, append: &str) -> String {
    format!(
        "qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -kernel {} -initrd {} -append '{append}' -drive file={},if=virtio,format=qcow2 -netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22 -device virtio-net-pci,netdev=n0",
        kernel.display(),
        initrd.display(),
        disk.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_a_directory_are_not_safe() {
        for ok in [
            "bookworm",
            "kiln-sample-all-1700000000000-bookworm",
            "a_b.c+1",
        ] {
            assert!(safe_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a b", "x\0"] {
            assert!(!safe_name(bad), "{bad:?}");
        }
        assert!(!safe_name(&"a".repeat(201)));
    }
}
