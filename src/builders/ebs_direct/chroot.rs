//! The image's root filesystem on this host: a loop device over the root partition of the
//! per-bake disk (`losetup -o OFFSET --sizelimit SIZE`: partition nodes from `losetup -P` need
//! udev, which containers often lack), mounted, and `install_packages.sh` run in a chroot with
//! /proc, /sys and /dev bound, the host's resolv.conf, and the staged artifacts.
//!
//! The image is not kiln's: before anything is mounted or written below the root, each path
//! kiln uses must be a real directory, never a symlink (a symlinked `/dev` would bind the host's
//! devices over a host path). Files kiln adds are created exclusively and removed afterwards.

use super::partition::Extent;
use super::say;
use super::spec::Spec;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Where the staged artifacts are in the image (the qemu provider's path: the `packages`
/// variable names them there).
const ARTIFACTS: &str = "tmp/kiln-artifacts";
const SCRIPT: &str = "tmp/kiln-install-packages.sh";
const RESOLV: &str = "etc/resolv.conf";
const RESOLV_SAVED: &str = "etc/resolv.conf.kiln-saved";
/// The install script's variables, as the templates pass them.
const SCRIPT_VARIABLES: [&str; 4] = ["repository", "package_type", "packages", "upgrade"];

async fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A loop device over `extent` of `disk`.
pub async fn attach(disk: &Path, extent: Extent) -> Result<String, String> {
    let dev = run(
        Command::new("losetup")
            .args(["--find", "--show", "--offset"])
            .arg(extent.offset.to_string())
            .arg("--sizelimit")
            .arg(extent.size.to_string())
            .arg(disk),
        "losetup (loop devices need root and /dev/loop-control)",
    )
    .await?;
    if !dev.starts_with("/dev/loop") {
        return Err(format!("losetup answered {dev:?}, not a loop device"));
    }
    Ok(dev)
}

pub async fn mount(dev: &str, root: &Path) -> Result<(), String> {
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    run(
        Command::new("mount")
            .args(["-o", "nosuid"])
            .arg(dev)
            .arg(root),
        "mount of the root filesystem",
    )
    .await
    .map(drop)
}

/// Unmounts the root filesystem (all writes reach the disk file) and detaches the loop device.
pub async fn unmount(dev: &str, root: &Path) -> Result<(), String> {
    run(
        Command::new("umount").arg(root),
        "umount of the root filesystem",
    )
    .await?;
    run(Command::new("losetup").arg("-d").arg(dev), "losetup -d").await?;
    Ok(())
}

/// `dir` below `root` is a real directory (created when missing), not a symlink.
fn real_dir(root: &Path, dir: &str) -> Result<PathBuf, String> {
    let path = root.join(dir);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => Ok(path),
        Ok(_) => Err(format!(
            "/{dir} in the image is not a directory (a symlink?); kiln will not write through it"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(&path)
                .map_err(|e| format!("cannot create /{dir} in the image: {e}"))?;
            Ok(path)
        }
        Err(e) => Err(format!("/{dir} in the image: {e}")),
    }
}

fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What [`install`] added to the image, removed again by [`Added::remove`].
#[derive(Default)]
struct Added {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    resolv_saved: Option<(PathBuf, PathBuf)>,
}

impl Added {
    fn remove(&mut self) {
        for f in self.files.drain(..) {
            let _ = std::fs::remove_file(f);
        }
        for d in self.dirs.drain(..) {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some((saved, original)) = self.resolv_saved.take() {
            let _ = std::fs::remove_file(&original);
            let _ = std::fs::rename(saved, original);
        }
    }
}

/// Runs the install script in a chroot of `root`, its output as the log's detail lines.
/// `variables`: the spec's and the masked ones.
pub async fn install(
    root: &Path,
    spec: &Spec,
    variables: &[(String, String)],
) -> Result<(), String> {
    for dir in ["proc", "sys", "dev", "tmp", "etc"] {
        real_dir(root, dir)?;
    }
    let mut added = Added::default();
    let result = install_inner(root, spec, variables, &mut added).await;
    super::work::kill_rooted_in(root);
    added.remove();
    result
}

async fn install_inner(
    root: &Path,
    spec: &Spec,
    variables: &[(String, String)],
    added: &mut Added,
) -> Result<(), String> {
    // The host's resolver, in place of the image's (often a symlink into /run).
    let resolv = root.join(RESOLV);
    let saved = root.join(RESOLV_SAVED);
    if std::fs::symlink_metadata(&resolv).is_ok() {
        std::fs::rename(&resolv, &saved).map_err(|e| format!("cannot set /{RESOLV} aside: {e}"))?;
        added.resolv_saved = Some((saved, resolv.clone()));
    }
    let host = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    create_new(&resolv, &host, 0o644)?;
    if added.resolv_saved.is_none() {
        added.files.push(resolv);
    }
    if let Some(from) = &spec.artifacts_dir {
        let to = root.join(ARTIFACTS);
        std::fs::create_dir(&to)
            .map_err(|e| format!("cannot create /{ARTIFACTS} in the image: {e}"))?;
        added.dirs.push(to.clone());
        for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let data =
                    std::fs::read(e.path()).map_err(|x| format!("{}: {x}", e.path().display()))?;
                create_new(&to.join(e.file_name()), &data, 0o644)?;
            }
        }
    }
    let script = std::fs::read(&spec.install_script)
        .map_err(|e| format!("cannot read {}: {e}", spec.install_script.display()))?;
    let script_path = root.join(SCRIPT);
    create_new(&script_path, &script, 0o755)?;
    added.files.push(script_path);

    let mut mounts = crate::images::rootfs::Mounts::mount(root)
        .map_err(|e| format!("cannot mount /proc, /sys and /dev in the image: {e}"))?;
    let mut cmd = Command::new("chroot");
    cmd.arg(root)
        .args(["/bin/bash", &format!("/{SCRIPT}")])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive");
    for name in SCRIPT_VARIABLES {
        let value = variables
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        cmd.env(name, value.unwrap_or(""));
    }
    let result = stream(cmd).await;
    mounts.unmount();
    result
}

/// Runs `cmd`, each output line a detail line of the log; fails on a non-zero exit.
async fn stream(mut cmd: Command) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run chroot: {e}"))?;
    let out = child.stdout.take().map(|o| BufReader::new(o).lines());
    let err = child.stderr.take().map(|e| BufReader::new(e).lines());
    let pump = |lines: Option<tokio::io::Lines<BufReader<_>>>| async move {
        if let Some(mut lines) = lines {
            while let Ok(Some(l)) = lines.next_line().await {
                say::message(&l);
            }
        }
    };
    let (_, _, status) = tokio::join!(
        pump(out),
        async {
            if let Some(mut lines) = err {
                while let Ok(Some(l)) = lines.next_line().await {
                    say::message(&l);
                }
            }
        },
        child.wait()
    );
    let status = status.map_err(|e| format!("install_packages.sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "install_packages.sh failed in the image's chroot ({status})"
        ))
    }
}
