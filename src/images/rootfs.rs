//! The steps of a base image: a minimal Debian root filesystem (debootstrap), the kernel,
//! systemd and sshd installed in a chroot, the system configured for a VM on a restricted
//! network, and the filesystem packed into a qcow2 disk.
//!
//! The chroot needs `/proc`, `/sys`, `/dev` and `/dev/pts`; [`Mounts`] unmounts them on every
//! path out (drop included), and nothing under a root filesystem is ever deleted while
//! something is mounted below it ([`mounted_under`]): deleting through a bind mount of `/dev`
//! would delete the host's device nodes.

use super::run::{CommandFailed, Progress, run_logged};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a base image has besides minbase: the cloud kernel (virtio drivers, small), systemd as
/// init, sshd, sudo, iproute2, dbus (systemctl and logind behave as on a real system) and
/// CA certificates.
pub const PACKAGES: [&str; 7] = [
    "linux-image-cloud-amd64",
    "systemd-sysv",
    "openssh-server",
    "sudo",
    "iproute2",
    "dbus",
    "ca-certificates",
];

/// The chroot's API filesystems, mounted in this order and unmounted in reverse.
const MOUNTS: [(&str, &[&str]); 4] = [
    ("proc", &["-t", "proc", "proc"]),
    ("sys", &["-t", "sysfs", "sysfs"]),
    ("dev", &["--bind", "/dev"]),
    ("dev/pts", &["--bind", "/dev/pts"]),
];

/// The API filesystems of a chroot, unmounted when dropped.
pub struct Mounts {
    mounted: Vec<PathBuf>,
}

impl Mounts {
    pub fn mount(rootfs: &Path) -> std::io::Result<Mounts> {
        let mut mounts = Mounts {
            mounted: Vec::new(),
        };
        for (dir, args) in MOUNTS {
            let target = rootfs.join(dir);
            std::fs::create_dir_all(&target)?;
            let status = Command::new("mount").args(args).arg(&target).status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "mount {} {} failed ({status})",
                    args.join(" "),
                    target.display()
                )));
            }
            mounts.mounted.push(target);
        }
        Ok(mounts)
    }

    /// Unmounts everything; lazily when a plain unmount fails (a process still inside).
    pub fn unmount(&mut self) {
        while let Some(target) = self.mounted.pop() {
            let plain = Command::new("umount").arg(&target).status();
            if !plain.is_ok_and(|s| s.success()) {
                let _ = Command::new("umount").arg("-l").arg(&target).status();
            }
        }
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Mount points at or below `dir`, from `/proc/self/mounts`.
pub fn mounted_under(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let table = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(&dir))
        .collect()
}

/// Removes a directory tree, refusing while anything is mounted below it.
pub fn remove_tree(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let mounted = mounted_under(dir);
    if !mounted.is_empty() {
        return Err(format!(
            "{} still has mounts below it ({}); unmount them, then retry",
            dir.display(),
            mounted
                .iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))
}

/// `debootstrap --variant=minbase <suite> <rootfs> <mirror>`.
pub fn debootstrap(
    suite: &str,
    mirror: &str,
    rootfs: &Path,
    log: &Path,
    p: &Progress,
) -> Result<(), CommandFailed> {
    run_logged(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(suite)
            .arg(rootfs)
            .arg(mirror),
        "debootstrap",
        log,
        p,
    )
}

/// Installs [`PACKAGES`] in the chroot. No service may start on this host meanwhile:
/// `policy-rc.d` answers 101 ("forbidden") to invoke-rc.d until [`configure`] removes it.
pub fn install_packages(rootfs: &Path, log: &Path, p: &Progress) -> anyhow::Result<()> {
    write(
        rootfs,
        "usr/sbin/policy-rc.d",
        "#!/bin/sh\nexit 101\n",
        0o755,
    )?;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write(rootfs, "etc/resolv.conf", &resolv, 0o644)?;
    let mut mounts = Mounts::mount(rootfs)?;
    let chroot = |args: &[&str]| {
        let mut c = Command::new("chroot");
        c.arg(rootfs)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C.UTF-8");
        c
    };
    run_logged(
        &mut chroot(&["apt-get", "update", "-q"]),
        "apt-get update in the chroot",
        log,
        p,
    )?;
    let mut install = chroot(&["apt-get", "install", "-y", "-q", "--no-install-recommends"]);
    install.args(PACKAGES);
    run_logged(&mut install, "apt-get install in the chroot", log, p)?;
    run_logged(&mut chroot(&["apt-get", "clean"]), "apt-get clean", log, p)?;
    // Networking by systemd-networkd (DHCP from qemu's user network); nothing waits for
    // "network online", which would cost its 2 min timeout on every boot without a route out.
    for args in [
        ["systemctl", "enable", "systemd-networkd.service"],
        ["systemctl", "mask", "systemd-networkd-wait-online.service"],
    ] {
        run_logged(&mut chroot(&args), &args.join(" "), log, p)?;
    }
    mounts.unmount();
    Ok(())
}

/// The VM's configuration: hostname, fstab, DHCP, root's SSH key, and no apt sources (the
/// bake VM's network is restricted: a bake brings its packages or names its repository).
pub fn configure(
    rootfs: &Path,
    hostname: &str,
    apt_line: &str,
    pubkey: &str,
) -> anyhow::Result<()> {
    std::fs::remove_file(rootfs.join("usr/sbin/policy-rc.d"))?;
    write(rootfs, "etc/hostname", &format!("{hostname}\n"), 0o644)?;
    let hosts = format!(
        "127.0.0.1 localhost\n127.0.1.1 {hostname}\n::1 localhost ip6-localhost ip6-loopback\n"
    );
    write(rootfs, "etc/hosts", &hosts, 0o644)?;
    write(rootfs, "etc/fstab", "/dev/vda / ext4 defaults 0 1\n", 0o644)?;
    write(rootfs, "etc/resolv.conf", "", 0o644)?;
    let network = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n";
    write(
        rootfs,
        "etc/systemd/network/20-dhcp.network",
        network,
        0o644,
    )?;
    let sources = format!(
        "# kiln base image: bakes run on a restricted network, so no source is enabled here.\n# The mirror this image was built from:\n# {apt_line}\n"
    );
    write(rootfs, "etc/apt/sources.list", &sources, 0o644)?;
    if let Ok(entries) = std::fs::read_dir(rootfs.join("etc/apt/sources.list.d")) {
        for e in entries.flatten() {
            std::fs::remove_file(e.path())?;
        }
    }
    let lists = rootfs.join("var/lib/apt/lists");
    if let Ok(entries) = std::fs::read_dir(&lists) {
        for e in entries.flatten().filter(|e| e.path().is_file()) {
            std::fs::remove_file(e.path())?;
        }
    }
    let ssh = rootfs.join("root/.ssh");
    std::fs::create_dir_all(&ssh)?;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700))?;
    write(rootfs, "root/.ssh/authorized_keys", pubkey, 0o600)?;
    Ok(())
}

/// Copies the newest kernel and its initrd out of the root filesystem; returns the kernel
/// version.
pub fn boot_files(rootfs: &Path, kernel: &Path, initrd: &Path) -> anyhow::Result<String> {
    let boot = rootfs.join("boot");
    let mut versions: Vec<String> = std::fs::read_dir(&boot)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("vmlinuz-").map(str::to_string)
        })
        .collect();
    versions.sort_by_key(|v| version_key(v));
    let Some(version) = versions.pop() else {
        anyhow::bail!(
            "no kernel in {}: was linux-image-cloud-amd64 installed?",
            boot.display()
        );
    };
    std::fs::copy(boot.join(format!("vmlinuz-{version}")), kernel)?;
    std::fs::copy(boot.join(format!("initrd.img-{version}")), initrd)?;
    Ok(version)
}

/// Orders `6.1.0-10-cloud-amd64` after `6.1.0-9-cloud-amd64`.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-'])
        .map(|part| (part.parse().unwrap_or(0), part.to_string()))
        .collect()
}

/// Packs the root filesystem into an ext4 filesystem of `size` (sparse; no partition table,
/// no bootloader) and converts it to qcow2.
pub fn make_disk(
    rootfs: &Path,
    size: &str,
    qcow2: &Path,
    log: &Path,
    p: &Progress,
) -> Result<(), CommandFailed> {
    let raw = qcow2.with_extension("raw");
    let mut mkfs = Command::new("mkfs.ext4");
    mkfs.args(["-q", "-F", "-L", "root", "-E", "root_owner=0:0", "-d"])
        .arg(rootfs)
        .arg(&raw)
        .arg(size);
    run_logged(&mut mkfs, "mkfs.ext4 -d", log, p)?;
    let mut convert = Command::new("qemu-img");
    convert
        .args(["convert", "-O", "qcow2"])
        .arg(&raw)
        .arg(qcow2);
    let result = run_logged(&mut convert, "qemu-img convert", log, p);
    let _ = std::fs::remove_file(&raw);
    result
}

fn write(root: &Path, rel: &str, content: &str, mode: u32) -> std::io::Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A symlink here (etc/resolv.conf often is one) must not be followed out of the tree.
    if path.is_symlink() {
        std::fs::remove_file(&path)?;
    }
    std::fs::write(&path, content)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_sort_numerically() {
        let mut v = [
            "6.1.0-10-cloud-amd64",
            "6.1.0-9-cloud-amd64",
            "5.10.0-30-cloud-amd64",
        ];
        v.sort_by_key(|v| version_key(v));
        assert_eq!(v.last(), Some(&"6.1.0-10-cloud-amd64"));
    }

    #[test]
    fn trees_with_mounts_below_are_not_removed() {
        let e = remove_tree(Path::new("/proc")).unwrap_err();
        assert!(e.contains("still has mounts"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
    }
}
