//! The `qemu` provider for real: `kiln base-image build bookworm` (debootstrap, cached in
//! `$KILN_TEST_QEMU_CACHE`, default `target/qemu-base`; the first test that needs it builds it), then a
//! bake of the sample app's .deb given as a `file://` package artifact through kiln's API,
//! Packer's qemu builder under TCG with a restricted network, and kiln's boot check. The marker
//! file is read out of the resulting qcow2 with debugfs.
//!
//! Needs root, packer, qemu-system-x86_64, qemu-img, debootstrap, debugfs, ssh, dpkg-deb: the
//! tests fail (never skip) when one is missing.

use crate::harness::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| dir.join(tool).is_file())
}

/// Fails (does not skip) with what to install when the machine cannot run these tests.
pub(crate) fn require_tools() {
    let mut missing = Vec::new();
    if effective_uid() != Some(0) {
        missing.push(
            "root (debootstrap and chroot build the base image): run the tests as root".to_string(),
        );
    }
    for (tool, package) in [
        ("packer", "packer"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("qemu-img", "qemu-utils (install it AFTER qemu-system-x86)"),
        ("debootstrap", "debootstrap"),
        ("debugfs", "e2fsprogs"),
        ("ssh", "openssh-client"),
        ("dpkg-deb", "dpkg"),
    ] {
        if !on_path(tool) {
            missing.push(format!(
                "{tool}: apt-get install -y --no-install-recommends {package}"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "the qemu tests cannot run here; missing:\n  {}",
        missing.join("\n  ")
    );
}

/// The data dir holding the cached `base-images/bookworm` (built here when missing).
pub(crate) fn cache() -> PathBuf {
    let dir = std::env::var_os("KILN_TEST_QEMU_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target/qemu-base"));
    let t = Instant::now();
    let out = Command::new(KILN)
        .args(["base-image", "build", "bookworm", "--data-dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run kiln base-image build");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kiln base-image build failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("qemu: base image ready in {:.1?}:\n{text}", t.elapsed());
    dir
}

fn manifest(cache: &Path) -> Value {
    let path = cache.join("base-images/bookworm/base-image.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn base_image_is_built_once_and_offered_from_the_data_dir_and_config() {
    require_tools();
    let cache = cache();
    let again = Command::new(KILN)
        .args(["base-image", "build", "bookworm", "--data-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && text.contains("nothing to do"),
        "{text}"
    );
    let m = manifest(&cache);
    let dir = cache.join("base-images/bookworm");
    for f in ["disk", "kernel", "initrd", "sshKey"] {
        assert!(dir.join(m[f].as_str().unwrap()).is_file(), "{f}: {m}");
    }
    assert_eq!(m["sshUserName"], "root");

    // Without root, a build says so and exits 2 before touching anything.
    let empty = tempfile::tempdir().unwrap();
    let unprivileged = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", KILN])
        .args(["base-image", "build", "bookworm", "--data-dir"])
        .arg(empty.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unprivileged.stderr);
    assert_eq!(unprivileged.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(!empty.path().join("data").exists());

    // Found in the data dir without configuration; a configured image joins it.
    let data = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(cache.join("base-images"), data.path().join("base-images")).unwrap();
    let config = format!(
        "qemu:\n  enabled: true\n  baseImages:\n  - id: custom\n    shortDescription: configured\n    disk: {d}/disk.qcow2\n    kernel: {d}/vmlinuz\n    initrd: {d}/initrd.img\n    sshKey: {d}/id_ed25519\n",
        d = dir.display()
    );
    let kiln = Kiln::start(data.path(), &config);
    let options = kiln.get("/bakeOptions/qemu").json();
    let ids: Vec<&str> = options["baseImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["custom", "bookworm"], "{options}");
    assert_eq!(
        kiln.get("/bakeOptions/qemu/baseImages/bookworm").json()["packageType"],
        "DEB"
    );

    // Requests the provider cannot bake are refused before Packer runs, saying what to fix.
    let refused = |body: Value, needle: &str| {
        let r = kiln.post("/api/v1/local/bake", &body);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(needle), "{needle}: {}", r.body);
    };
    let base =
        json!({"package": "kiln-sample", "base_os": "bookworm", "cloud_provider_type": "qemu"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    refused(
        with("base_os", json!("jessie")),
        "available: [custom, bookworm]",
    );
    refused(
        with(
            "package_artifacts",
            json!([{"type": "deb", "reference": "file:///nonexistent/kiln-sample_1_all.deb"}]),
        ),
        "cannot be read",
    );
    refused(
        with(
            "extended_attributes",
            json!({"qemu_source_disk": "/etc/shadow"}),
        ),
        "cannot be overridden",
    );
    refused(
        with("extended_attributes", json!({"boot_test": "maybe"})),
        "use true or false",
    );
    refused(with("request_id", json!("../../etc")), "request_id");
    let r = kiln.post("/api/v1/us-east-1/bake", &base);
    assert!(
        r.status == 400 && r.body.contains("use region 'local'"),
        "{}",
        r.body
    );
}

#[test]
fn a_local_deb_is_baked_into_a_qcow2_that_boots() {
    require_tools();
    let cache = cache();
    let base_sha = manifest(&cache)["diskSha256"].as_str().unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(format!("{REPO}/examples/sample-app/build-deb.sh"))
        .arg(work.path())
        .arg("1.2.3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-deb.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(cache.join("base-images"), data.join("base-images")).unwrap();
    let kiln = Kiln::start(&data, "qemu:\n  enabled: true\n");
    let started = Instant::now();
    let body = json!({
        "package": "kiln-sample",
        "base_os": "bookworm",
        "cloud_provider_type": "qemu",
        "build_number": "7",
        "package_artifacts": [{"type": "deb", "reference": format!("file://{deb}")}],
        "extended_attributes": {"boot_test": true},
    });
    let id = kiln.bake_id("local", &body);
    let status = kiln.wait(&id, Duration::from_secs(900));
    let log = kiln.log(&id);
    eprintln!("qemu: bake + boot check took {:.1?}", started.elapsed());
    assert_eq!(status["result"], "SUCCESS", "{status}\n{log}");
    for line in [
        "kiln: staged file://",
        "packages=/tmp/kiln-artifacts/kiln-sample_1.2.3_all.deb",
        "Setting up kiln-sample (1.2.3)",
        "kiln: boot check: systemd: running",
        "kiln: boot check: kiln-sample 1.2.3 is installed",
        "kiln: boot check passed",
    ] {
        assert!(log.contains(line), "{line} is not in the log:\n{log}");
    }

    let bake = kiln.get(&format!("/api/v1/local/bake/{id}")).json();
    let artifact = &bake["artifact"];
    assert_eq!(
        (artifact["type"].as_str(), artifact["location"].as_str()),
        (Some("qemu/image"), Some("local")),
        "{bake}"
    );
    let image = PathBuf::from(artifact["reference"].as_str().unwrap());
    assert_eq!(image.parent().unwrap(), data.join("images").join(&id));
    assert_eq!(artifact["metadata"]["build_number"], "7");

    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    let info = &view["image"];
    assert_eq!(info["image"].as_str(), image.to_str(), "{view}");
    assert_eq!(
        info["size"].as_u64(),
        Some(std::fs::metadata(&image).unwrap().len())
    );
    assert_eq!(info["sha256"].as_str().unwrap(), sha256(&image));
    for f in ["kernel", "initrd"] {
        assert!(
            Path::new(info[f].as_str().unwrap()).is_file(),
            "{f}: {info}"
        );
    }
    assert_eq!(info["boot_check"]["system_state"], "running");
    assert_eq!(info["boot_check"]["packages"], json!(["kiln-sample 1.2.3"]));
    assert!(
        info["boot_command"]
            .as_str()
            .unwrap()
            .contains("restrict=on")
    );
    assert!(
        !data.join("staging").join(&id).exists(),
        "staging is removed"
    );

    // The package's file is in the image's filesystem.
    let raw = work.path().join("image.raw");
    let convert = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&image)
        .arg(&raw)
        .status()
        .unwrap();
    assert!(convert.success());
    let cat = Command::new("debugfs")
        .args(["-R", "cat /usr/share/kiln-sample/marker"])
        .arg(&raw)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout).trim(),
        "kiln-sample 1.2.3"
    );

    // The base image was only read; no VM of this bake is left running.
    let base_disk = cache.join("base-images/bookworm/disk.qcow2");
    assert_eq!(sha256(&base_disk), base_sha, "the base image changed");
    let left = processes_mentioning(&format!("images/{id}"));
    assert!(left.is_empty(), "processes left: {left:?}");
}
