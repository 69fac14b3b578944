//! `kiln base-image build <suite>`: a Debian base image for the `qemu` provider, built once and
//! cached in `<dataDir>/base-images/<suite>/` (see [`super`] for the files).
//!
//! debootstrap (minbase, from the Debian mirror this machine's apt uses), then the cloud
//! kernel, systemd and sshd in a chroot, a fresh SSH key for root, and an ext4 filesystem
//! packed into qcow2 with the kernel and initrd beside it. ~45 s on a 2-core machine.
//!
//! It is built in `.<suite>.build/` and moved into place with its manifest already inside, so
//! a base image directory is complete or absent; a lock file serialises concurrent builds of
//! one suite. Re-running is a no-op unless `rebuild`.

use super::catalog::{BaseManifest, read_manifest};
use super::rootfs::{self, mounted_under, remove_tree};
use super::run::{CommandFailed, Progress, have, output};
use super::{DISK, INITRD, KERNEL, SSH_KEY, base_images_dir, safe_name};
use crate::digest::sha256_file;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub data_dir: PathBuf,
    /// The Debian suite; also the base image's id.
    pub suite: String,
    /// The Debian mirror; default: the one this machine's apt uses.
    pub mirror: Option<String>,
    pub rebuild: bool,
    /// The filesystem's size (sparse), as mkfs.ext4 reads it: `4G`.
    pub disk_size: String,
    /// No progress lines (tests).
    pub quiet: bool,
}

/// Why a base image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "kiln base-image build needs root: debootstrap, chroot and the chroot's mounts do; run it as root (sudo kiln base-image build {0})"
    )]
    NotRoot(String),
    #[error("{tool} is missing; install it: apt-get install -y --no-install-recommends {package}")]
    MissingTool { tool: String, package: String },
    #[error(
        "'{0}' is not a suite debootstrap knows (no /usr/share/debootstrap/scripts/{0}); use bookworm or trixie"
    )]
    UnknownSuite(String),
    #[error(transparent)]
    Command(#[from] CommandFailed),
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    /// 2 for what the caller must fix before anything runs (root, tools, name), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            BuildError::NotRoot(_)
            | BuildError::MissingTool { .. }
            | BuildError::UnknownSuite(_) => 2,
            _ => 1,
        }
    }
}

impl From<anyhow::Error> for BuildError {
    fn from(e: anyhow::Error) -> Self {
        BuildError::Other(format!("{e:#}"))
    }
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError::Other(e.to_string())
    }
}

/// What a build found or made.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub dir: PathBuf,
    pub manifest: BaseManifest,
    /// False when the image was there already.
    pub built: bool,
}

/// Tools a build runs, with the Debian package that has each.
const TOOLS: [(&str, &str); 6] = [
    ("debootstrap", "debootstrap"),
    ("chroot", "coreutils"),
    ("mount", "mount"),
    ("mkfs.ext4", "e2fsprogs"),
    ("qemu-img", "qemu-utils"),
    ("ssh-keygen", "openssh-client"),
];

/// Builds (or finds) the base image `opts.suite`.
pub fn build_base_image(opts: &BuildOptions) -> Result<Outcome, BuildError> {
    let suite = opts.suite.as_str();
    let script = Path::new("/usr/share/debootstrap/scripts").join(suite);
    if !safe_name(suite) || (have("debootstrap") && !script.exists()) {
        return Err(BuildError::UnknownSuite(suite.to_string()));
    }
    let root = base_images_dir(&opts.data_dir);
    let dir = root.join(suite);
    let p = Progress::new(opts.quiet);
    if let Some(m) = ready(&dir, suite).filter(|_| !opts.rebuild) {
        p.say(&format!(
            "base image {suite} is ready in {} (kernel {}); nothing to do (--rebuild builds it again)",
            dir.display(),
            m.kernel_version
        ));
        return Ok(Outcome {
            dir,
            manifest: m,
            built: false,
        });
    }
    if !is_root() {
        return Err(BuildError::NotRoot(suite.to_string()));
    }
    if let Some((tool, package)) = TOOLS.iter().find(|(t, _)| !have(t)) {
        return Err(BuildError::MissingTool {
            tool: tool.to_string(),
            package: package.to_string(),
        });
    }
    std::fs::create_dir_all(&root)?;
    let lock = std::fs::File::create(root.join(format!(".{suite}.lock")))?;
    if lock.try_lock().is_err() {
        p.say(&format!(
            "another build of {suite} is running; waiting for it"
        ));
        lock.lock()?;
    }
    if let Some(m) = ready(&dir, suite).filter(|_| !opts.rebuild) {
        p.say(&format!(
            "base image {suite} was built meanwhile: {}",
            dir.display()
        ));
        return Ok(Outcome {
            dir,
            manifest: m,
            built: false,
        });
    }
    let mirror = opts.mirror.clone().unwrap_or_else(host_mirror);
    let stage = root.join(format!(".{suite}.build"));
    let manifest = build_in(&stage, suite, &mirror, opts, &p)?;
    let old = root.join(format!(".{suite}.old"));
    remove_tree(&old).map_err(BuildError::Other)?;
    if dir.exists() {
        std::fs::rename(&dir, &old)?;
    }
    std::fs::rename(&stage, &dir)?;
    remove_tree(&old).map_err(BuildError::Other)?;
    p.say(&format!(
        "base image {suite} ready in {} (kernel {}); bake from it with cloud_provider_type qemu, base_os {suite}",
        dir.display(),
        manifest.kernel_version
    ));
    Ok(Outcome {
        dir,
        manifest,
        built: true,
    })
}

/// The manifest of a complete image in `dir`.
fn ready(dir: &Path, suite: &str) -> Option<BaseManifest> {
    read_manifest(dir).filter(|m| m.id == suite && dir.join(&m.disk).is_file())
}

fn build_in(
    stage: &Path,
    suite: &str,
    mirror: &str,
    opts: &BuildOptions,
    p: &Progress,
) -> Result<BaseManifest, BuildError> {
    let started = Instant::now();
    // A build that died hard may have left its chroot mounted.
    for m in mounted_under(stage).iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    remove_tree(stage).map_err(BuildError::Other)?;
    std::fs::create_dir_all(stage)?;
    let rootfs = stage.join("rootfs");
    let log = stage.join("build.log");
    p.say(&format!(
        "building base image {suite} in {} (log: {})",
        stage.display(),
        log.display()
    ));

    let t = Instant::now();
    p.say(&format!(
        "debootstrap --variant=minbase {suite} from {mirror}"
    ));
    rootfs::debootstrap(suite, mirror, &rootfs, &log, p)?;
    p.say(&format!(
        "debootstrap done ({:.1}s)",
        t.elapsed().as_secs_f64()
    ));

    let t = Instant::now();
    p.say(&format!(
        "installing {} in the chroot",
        rootfs::PACKAGES.join(" ")
    ));
    rootfs::install_packages(&rootfs, &log, p)?;
    p.say(&format!(
        "packages installed ({:.1}s)",
        t.elapsed().as_secs_f64()
    ));

    let t = Instant::now();
    let key = stage.join(SSH_KEY);
    output(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("kiln-base-image-{suite}"))
            .arg("-f")
            .arg(&key),
        "ssh-keygen",
    )?;
    let pubkey = std::fs::read_to_string(key.with_extension("pub"))?;
    let apt_line = format!("deb {mirror} {suite} main");
    rootfs::configure(&rootfs, &format!("kiln-{suite}"), &apt_line, &pubkey)?;
    let kernel_version = rootfs::boot_files(&rootfs, &stage.join(KERNEL), &stage.join(INITRD))?;
    p.say(&format!(
        "configured: root's SSH key, DHCP, no apt sources; kernel {kernel_version} ({:.1}s)",
        t.elapsed().as_secs_f64()
    ));

    let t = Instant::now();
    p.say(&format!(
        "making the {} ext4 disk and converting it to qcow2",
        opts.disk_size
    ));
    let disk = stage.join(DISK);
    rootfs::make_disk(&rootfs, &opts.disk_size, &disk, &log, p)?;
    remove_tree(&rootfs).map_err(BuildError::Other)?;
    let disk_sha256 = sha256_file(&disk)?;
    let size = std::fs::metadata(&disk).map(|m| m.len()).unwrap_or(0);
    p.say(&format!(
        "disk ready: {} MiB, sha256 {} ({:.1}s)",
        size >> 20,
        &disk_sha256[..12],
        t.elapsed().as_secs_f64()
    ));

    let manifest = BaseManifest {
        id: suite.to_string(),
        suite: suite.to_string(),
        mirror: mirror.to_string(),
        short_description: format!("Debian {suite} (kiln base image)"),
        package_type: "deb".into(),
        disk: DISK.into(),
        kernel: KERNEL.into(),
        initrd: INITRD.into(),
        kernel_version,
        ssh_user_name: "root".into(),
        ssh_key: SSH_KEY.into(),
        disk_sha256,
        built_at_ms: crate::bake::now_ms(),
        build_seconds: started.elapsed().as_secs_f64(),
    };
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| BuildError::Other(e.to_string()))?;
    std::fs::write(stage.join("base-image.json"), json)?;
    Ok(manifest)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The Debian mirror this machine's apt uses: the first non-security `deb` source whose URI
/// ends in `/debian`, from deb822 `.sources` files or `sources.list`; else deb.debian.org.
pub fn host_mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        texts.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    texts.extend(std::fs::read_to_string("/etc/apt/sources.list").ok());
    texts
        .iter()
        .find_map(|t| mirror_in(t))
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

fn mirror_in(text: &str) -> Option<String> {
    let is_debian = |u: &str| {
        (u.starts_with("http://") || u.starts_with("https://"))
            && u.trim_end_matches('/').ends_with("/debian")
    };
    text.lines().find_map(|line| {
        let line = line.trim();
        let uris = line
            .strip_prefix("URIs:")
            .map(|rest| rest.split_whitespace().collect());
        let one_line = || -> Option<Vec<&str>> {
            let mut words = line.strip_prefix("deb ")?.split_whitespace();
            let uri = words.find(|w| !w.starts_with('['))?;
            Some(vec![uri])
        };
        let found: Vec<&str> = uris.or_else(one_line)?;
        found
            .into_iter()
            .find(|u| is_debian(u))
            .map(|u| u.trim_end_matches('/').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_mirror_is_read_from_either_apt_format() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\nURIs: http://deb.debian.org/debian-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let classic = "deb https://packages.cloud.google.com/apt cloud-sdk main\ndeb [arch=amd64] http://ftp.de.debian.org/debian bookworm main\n";
        assert_eq!(
            mirror_in(classic).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        assert_eq!(
            mirror_in("deb http://security.debian.org/debian-security x main"),
            None
        );
    }

    #[test]
    fn unknown_suites_and_unsafe_names_are_refused_before_anything_runs() {
        let data = tempfile::tempdir().unwrap();
        for suite in ["../etc", "no-such-suite-kiln"] {
            let opts = BuildOptions {
                data_dir: data.path().into(),
                suite: suite.into(),
                mirror: None,
                rebuild: false,
                disk_size: "4G".into(),
                quiet: true,
            };
            match build_base_image(&opts) {
                Err(e @ BuildError::UnknownSuite(_)) => assert_eq!(e.exit_code(), 2),
                Err(BuildError::NotRoot(_) | BuildError::MissingTool { .. }) => {}
                other => panic!("{suite}: {other:?}"),
            }
        }
        assert!(!data.path().join("base-images").exists());
    }
}
