//! The ebs-direct builder end to end: a Spinnaker-shaped request with `kiln_builder:
//! ebs-direct` through the REST API, against moto serving EC2 and EBS on loopback with kiln's
//! patch for moto's EBS gaps (`tests/support/moto-ebs.py`). The base AMI is a GPT-partitioned
//! disk (the qemu test VM's ext4 filesystem at 1 MiB) uploaded through the EBS direct APIs.
//! The AMI's root snapshot is read back block by block and checked with e2fsck and debugfs.
//! Needs root (loop devices, mounts, chroot), qemu-img, e2fsprogs, dpkg-dev.

use crate::harness::{Kiln, Moto, REPO, marker, start_marked};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn vm_cache() -> PathBuf {
    std::env::var_os("KILN_TEST_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target/vm-image"))
}

fn snap(moto: &Moto, args: &[&str]) -> Value {
    let out = Command::new(moto.python())
        .arg(format!("{REPO}/tests/support/ebs-snap.py"))
        .args(args)
        .output()
        .expect("run ebs-snap.py");
    assert!(
        out.status.success(),
        "ebs-snap.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The partitioned base disk (built once from the qemu test VM image, cached under target/;
/// the VM image is built first when missing, as tests/e2e/vm.rs does).
fn base_disk(moto: &Moto) -> PathBuf {
    let qcow2 = vm_cache().join("disk.qcow2");
    if !qcow2.exists() {
        let status = Command::new(format!("{REPO}/tests/support/vm-image.sh"))
            .arg(vm_cache())
            .status()
            .expect("run vm-image.sh");
        assert!(
            status.success(),
            "vm-image.sh {} failed: {status}",
            vm_cache().display()
        );
    }
    let out = Path::new(REPO).join("target/ebs-base");
    std::fs::create_dir_all(&out).unwrap();
    let disk = out.join("disk.raw");
    snap(
        moto,
        &["disk", qcow2.to_str().unwrap(), disk.to_str().unwrap()],
    );
    disk
}

fn test_deb(dir: &Path) -> PathBuf {
    let out = Command::new(format!("{REPO}/tests/support/make-test-deb.sh"))
        .arg(dir)
        .args(["kiln-ebs-hello", "1.0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A .deb whose postinst sleeps: the install is still running when the test acts.
fn slow_deb(dir: &Path) -> PathBuf {
    let root = dir.join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: kiln-ebs-slow\nVersion: 1.0\nArchitecture: all\nMaintainer: kiln tests <kiln@example.invalid>\nDescription: sleeps in postinst\n",
    )
    .unwrap();
    std::fs::write(root.join("DEBIAN/postinst"), "#!/bin/sh\nsleep 120\n").unwrap();
    let chmod = Command::new("chmod")
        .args(["0755"])
        .arg(root.join("DEBIAN/postinst"))
        .status()
        .unwrap();
    assert!(chmod.success());
    let deb = dir.join("kiln-ebs-slow_1.0_all.deb");
    let built = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    deb
}

/// Processes whose root directory is `root` (a chroot's).
fn rooted_in(root: &Path) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("root")).is_ok_and(|r| r == root))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn config(moto: &Moto, ami: &str) -> String {
    format!(
        r#"aws:
  enabled: true
  bakeryDefaults:
    awsAccessKey: AKIAKILNTESTKEY00001
    awsSecretKey: ebs-test-secret-value
    awsEc2Endpoint: {e}
    awsEbsEndpoint: {e}
    awsSkipValidation: true
    baseImages:
    - baseImage:
        id: bookworm
        packageType: deb
      virtualizationSettings:
      - region: us-east-1
        virtualizationType: hvm
        instanceType: t3.micro
        sourceAmi: {ami}
        sshUserName: admin
"#,
        e = moto.endpoint
    )
}

fn request(deb: &Path) -> Value {
    // Shaped as Spinnaker's bake stage sends it.
    json!({
        "package": "kiln-ebs-hello",
        "base_os": "bookworm",
        "base_label": "release",
        "vm_type": "hvm",
        "cloud_provider_type": "aws",
        "user": "anonymous",
        "spinnaker_execution_id": "01JEBSDIRECT:stage-1",
        "build_host": "https://ci.example.invalid/",
        "package_artifacts": [{"type": "deb", "reference": format!("file://{}", deb.display())}],
        "extended_attributes": {"kiln_builder": "ebs-direct", "share_with": "111122223333"},
    })
}

fn debugfs(disk_fs: &Path, command: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", command])
        .arg(disk_fs)
        .output()
        .expect("debugfs (e2fsprogs)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Boots `disk` (TCG, no network, snapshot mode) and waits for the serial console's login prompt.
fn boot_to_login(disk: &Path, workdir: &Path) {
    std::fs::create_dir_all(workdir).unwrap();
    let serial = workdir.join("serial.log");
    let vm = vm_cache();
    let mut qemu = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-m",
            "768",
            "-smp",
            "2",
            "-cpu",
            "max,pmu=off",
        ])
        .args([
            "-display",
            "none",
            "-nodefaults",
            "-no-reboot",
            "-nic",
            "none",
        ])
        .arg("-kernel")
        .arg(vm.join("vmlinuz"))
        .arg("-initrd")
        .arg(vm.join("initrd.img"))
        .args(["-append", "root=/dev/vda1 ro console=ttyS0 panic=-1"])
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=raw,snapshot=on",
            disk.display()
        ))
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 (apt-get install qemu-system-x86)");
    let deadline = Instant::now() + Duration::from_secs(180);
    let booted = loop {
        let console = std::fs::read_to_string(&serial).unwrap_or_default();
        if console.contains("login:") {
            break Ok(());
        }
        if let Ok(Some(status)) = qemu.try_wait() {
            break Err(format!("qemu exited ({status})"));
        }
        if Instant::now() > deadline {
            break Err("no login prompt after 180 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = qemu.kill();
    let _ = qemu.wait();
    if let Err(e) = booted {
        let console = std::fs::read_to_string(&serial).unwrap_or_default();
        let tail: Vec<&str> = console.lines().rev().take(30).collect();
        panic!(
            "the read-back disk did not boot: {e}; console tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(dir.to_str().unwrap()))
        .map(String::from)
        .collect()
}

#[test]
fn an_ebs_direct_bake_writes_only_changed_blocks_into_a_child_of_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start_ebs();
    let disk = base_disk(&moto);
    let t = Instant::now();
    let base = snap(
        &moto,
        &[
            "base",
            &moto.endpoint,
            disk.to_str().unwrap(),
            "bookworm-base",
        ],
    );
    eprintln!("ebs-direct: base uploaded in {:.1?}", t.elapsed());
    let (ami, base_snap) = (
        base["ami"].as_str().unwrap(),
        base["snapshot"].as_str().unwrap(),
    );
    let deb = test_deb(&tmp.path().join("debs"));
    let mark = marker();
    let data = tmp.path().join("kiln");
    let kiln: Kiln = start_marked(&data, &config(&moto, ami), &mark, &[]);

    // Copied to a second region too, as Spinnaker's copy_to sends it.
    let mut first = request(&deb);
    first["extended_attributes"]["copy_to"] = json!("us-west-2");
    let t = Instant::now();
    let id = kiln.bake_id("us-east-1", &first);
    let status = kiln.wait(&id, Duration::from_secs(300));
    let log = kiln.log(&id);
    eprintln!("ebs-direct: bake took {:.1?}", t.elapsed());
    assert_eq!(status["result"], "SUCCESS", "{status}\n{log}");
    for phase in [
        "fetch",
        "copy",
        "mount",
        "install",
        "unmount",
        "diff",
        "upload",
        "complete",
        "register",
        "share",
        "copy_regions",
    ] {
        assert!(
            log.contains(&format!("ebs-direct: phase {phase} took ")),
            "{phase}: {log}"
        );
    }
    assert!(
        log.contains("installing /tmp/kiln-artifacts/kiln-ebs-hello_1.0_all.deb"),
        "{log}"
    );
    assert!(!log.contains("ebs-test-secret-value"));

    // GET bake answers like any AWS bake.
    let bake = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    let new_ami = bake["ami"].as_str().expect("ami").to_string();
    assert!(new_ami.starts_with("ami-") && new_ami != ami, "{bake}");
    assert!(
        bake["image_name"]
            .as_str()
            .unwrap()
            .starts_with("kiln-ebs-hello"),
        "{bake}"
    );
    // kiln's view names the builder, and the identity holds it.
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["recipe"]["builder"], "ebs-direct", "{view}");
    assert_eq!(view["inputs"]["builder"], "ebs-direct", "{view}");
    // kiln's timeline of the bake has the builder's phases, each with its time.
    let timeline = view["timeline"].as_array().cloned().unwrap_or_default();
    for phase in [
        "fetch", "copy", "mount", "install", "unmount", "diff", "upload", "complete", "register",
        "share",
    ] {
        assert!(
            timeline
                .iter()
                .any(|p| p["phase"] == phase && p["seconds"].as_f64().is_some()),
            "{phase}: {timeline:?}"
        );
    }
    eprintln!("ebs-direct: timeline {}", view["timeline"]);
    assert!(
        !data.join("staging").join(&id).exists()
            || std::fs::read_dir(data.join("staging").join(&id))
                .unwrap()
                .next()
                .is_none()
    );

    // The image: the base's mappings, root device, ENA and boot mode; its root is a new snapshot.
    let image = snap(&moto, &["image", &moto.endpoint, "us-east-1", &new_ami]);
    assert_eq!(image["RootDeviceName"], "/dev/xvda", "{image}");
    assert_eq!(image["EnaSupport"], true);
    assert_eq!(image["BootMode"], "legacy-bios");
    assert_eq!(image["BlockDeviceMappings"][1]["VirtualName"], "ephemeral0");
    let new_snap = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_snap, base_snap);
    assert_eq!(image["KilnTags"]["base_ami_id"], ami);
    assert_eq!(
        image["KilnTags"]["build_host"],
        "https://ci.example.invalid/"
    );
    assert_eq!(
        image["LaunchPermissions"][0]["UserId"], "111122223333",
        "{image}"
    );
    // The copy in us-west-2: in GET bake's regions, available before the bake answered, tagged
    // and shared like the original.
    assert_eq!(bake["regions"], json!(["us-east-1", "us-west-2"]), "{bake}");
    let copied_line = format!("Copied {new_ami} to us-west-2: ");
    let copy = log
        .lines()
        .find_map(|l| Some(l.split_once(copied_line.as_str())?.1.trim().to_string()))
        .unwrap_or_else(|| panic!("no copy in the log: {log}"));
    assert_ne!(copy, new_ami);
    let copied = snap(&moto, &["image", &moto.endpoint, "us-west-2", &copy]);
    assert_eq!(copied["State"], "available", "{copied}");
    assert_eq!(copied["KilnTags"]["base_ami_id"], ami, "{copied}");
    assert_eq!(
        copied["LaunchPermissions"][0]["UserId"], "111122223333",
        "{copied}"
    );
    assert!(
        log.contains(&format!("Shared {copy} with 111122223333")),
        "{log}"
    );

    // Only changed blocks were written into the child, and it inherits the rest from the base.
    let changed = snap(&moto, &["changed", &moto.endpoint, base_snap, &new_snap]);
    let n = changed.as_array().unwrap().len();
    assert!(n > 0 && n < 200, "{n} blocks written: {changed}");
    assert!(
        log.contains(&format!("{n} changed blocks of 512 KiB")),
        "{log}"
    );

    // Read back block by block: a filesystem that passes e2fsck, with the package installed.
    let back = tmp.path().join("back.raw");
    let got = snap(
        &moto,
        &[
            "download",
            &moto.endpoint,
            &new_snap,
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(got["block_size"], 524288);
    let fs = tmp.path().join("back.fs");
    let dd = Command::new("dd")
        .arg(format!("if={}", back.display()))
        .arg(format!("of={}", fs.display()))
        .args(["bs=1M", "skip=1", "conv=sparse", "status=none"])
        .status()
        .unwrap();
    assert!(dd.success());
    let fsck = Command::new("e2fsck")
        .args(["-fn"])
        .arg(&fs)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    assert!(debugfs(&fs, "cat /usr/share/kiln-ebs-hello/marker").contains("kiln-ebs-hello 1.0"));
    let status_file = debugfs(&fs, "cat /var/lib/dpkg/status");
    assert!(
        status_file.contains("Package: kiln-ebs-hello\nStatus: install ok installed"),
        "dpkg record missing"
    );
    // Nothing kiln added during the bake stays in the image.
    assert!(
        !debugfs(&fs, "ls -l /tmp").contains("kiln-"),
        "{}",
        debugfs(&fs, "ls -l /tmp")
    );
    assert!(
        debugfs(&fs, "stat /usr/sbin/policy-rc.d").contains("not found")
            || debugfs(&fs, "stat /usr/sbin/policy-rc.d").is_empty()
    );

    // Nothing is left mounted, attached or pending.
    assert!(mounts_under(&data).is_empty(), "{:?}", mounts_under(&data));
    let snaps = snap(&moto, &["snapshots", &moto.endpoint]);
    assert!(
        !snaps
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["state"] == "pending"),
        "{snaps}"
    );
    assert!(!data.join("ebs-work").join(&id).exists());

    // The strongest proof: the read-back disk (GPT, root on partition 1) boots under qemu to a
    // login prompt, with the test VM's kernel and initrd (the image boots them directly).
    let t = Instant::now();
    boot_to_login(&back, &tmp.path().join("boot"));
    eprintln!(
        "ebs-direct: read-back disk booted to login in {:.1?}",
        t.elapsed()
    );

    // A second identical request reuses the bake; the base is cached for the next one.
    let again = kiln.bake("us-east-1", &first);
    assert_eq!(again["id"], id.as_str(), "{again}");
    assert!(data.join("ebs-cache").join(base_snap).is_file());
}

#[test]
fn what_ebs_direct_cannot_honour_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start_ebs();
    let kiln = Kiln::start(
        &tmp.path().join("kiln"),
        &config(&moto, "ami-0123456789abcdef0"),
    );
    let mut body = json!({
        "package": "nginx", "base_os": "bookworm", "cloud_provider_type": "aws",
        "template_file_name": "aws-ebs.json",
        "extended_attributes": {"kiln_builder": "ebs-direct"},
    });
    let r = kiln.post("/api/v1/us-east-1/bake", &body);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("template_file_name"), "{}", r.body);
    body["template_file_name"] = Value::Null;
    body["extended_attributes"]["kiln_builder"] = json!("ebs-fast");
    let r = kiln.post("/api/v1/us-east-1/bake", &body);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("kiln_builder"), "{}", r.body);
}

/// A failed install leaves nothing behind, nor a builder SIGKILLed mid-install. Bakes against a
/// moto whose child-snapshot uploads are slow, so a bake can be caught mid-upload: canceled
/// (nothing pending, mounted or left in the work folder), and with kiln SIGKILLed (the next kiln
/// re-attaches; its start-up sweep leaves the running bake alone).
#[test]
fn a_failed_install_and_a_cancel_mid_upload_clean_up_and_a_killed_kiln_reattaches() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start_env(&[("KILN_MOTO_EBS", "1"), ("KILN_MOTO_EBS_PUT_DELAY", "2")]);
    let disk = base_disk(&moto);
    let base = snap(
        &moto,
        &[
            "base",
            &moto.endpoint,
            disk.to_str().unwrap(),
            "bookworm-base",
        ],
    );
    let ami = base["ami"].as_str().unwrap();
    let deb = test_deb(&tmp.path().join("debs"));
    let mark = marker();
    let data = tmp.path().join("kiln");
    let yaml = config(&moto, ami);
    let mut kiln = start_marked(&data, &yaml, &mark, &[]);

    // A failed install fails the bake with the script's error, and leaves nothing behind.
    let mut broken = request(&deb);
    broken["package"] = json!("kiln-no-such-package");
    broken["package_artifacts"] = json!([]);
    let id = kiln.bake_id("us-east-1", &broken);
    let s = kiln.wait(&id, Duration::from_secs(120));
    let log = kiln.log(&id);
    assert_eq!(s["result"], "FAILURE", "{s}\n{log}");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("install_packages.sh failed"),
        "{view}"
    );
    assert!(
        log.contains("failed to install package 'kiln-no-such-package'"),
        "{log}"
    );
    assert!(mounts_under(&data).is_empty(), "{:?}", mounts_under(&data));
    assert!(!data.join("ebs-work").join(&id).exists());

    // The builder SIGKILLed while a package's postinst runs in the chroot: kiln releases the
    // mount, the loop device and the chroot's processes once the run has ended.
    let slow = slow_deb(&tmp.path().join("slow"));
    let mut body = request(&slow);
    body["package"] = json!("kiln-ebs-slow");
    let id = kiln.bake_id("us-east-1", &body);
    crate::harness::wait_for_log(&kiln, &id, "Setting up kiln-ebs-slow");
    let root = data.join("ebs-work").join(&id).join("root");
    assert!(!mounts_under(&root).is_empty(), "mounted while installing");
    let builder = crate::harness::processes_mentioning(&mark)
        .into_iter()
        .find(|p| p.contains("__ebs-direct"))
        .expect("the builder process");
    let pid = builder.split(':').next().unwrap();
    assert!(
        Command::new("kill")
            .args(["-KILL", pid])
            .status()
            .unwrap()
            .success()
    );
    let s = kiln.wait(&id, Duration::from_secs(60));
    assert_eq!(s["result"], "FAILURE", "{s}");
    // The mount, the chroot's processes and then the work folder go once the run has ended
    // (the folder only when the builder's lock is free): wait for all three.
    let work = data.join("ebs-work").join(&id);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (!mounts_under(&data).is_empty() || !rooted_in(&root).is_empty() || work.exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(mounts_under(&data).is_empty(), "{:?}", mounts_under(&data));
    assert!(
        rooted_in(&root).is_empty(),
        "processes left in the chroot: {:?}",
        rooted_in(&root)
    );
    assert!(
        !work.exists(),
        "the work folder is left: {}",
        work.display()
    );

    // Cancel mid-upload.
    let id = kiln.bake_id("us-east-1", &request(&deb));
    crate::harness::wait_for_log(&kiln, &id, "uploading");
    let r = kiln.get(&format!("/api/v1/us-east-1/cancel/{id}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let s = kiln.wait(&id, Duration::from_secs(60));
    assert_eq!(s["state"], "CANCELED", "{s}");
    // The builder winds down after the cancel answered: wait for it, then look.
    crate::harness::assert_nothing_left(&mark, &[kiln.pid()]);
    crate::harness::wait_for_log(&kiln, &id, "Deleted the unfinished snapshot snap-");
    let snaps = snap(&moto, &["snapshots", &moto.endpoint]);
    assert!(
        !snaps
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["state"] == "pending"),
        "{snaps}"
    );
    assert!(mounts_under(&data).is_empty(), "{:?}", mounts_under(&data));
    assert!(!data.join("ebs-work").join(&id).exists());

    // SIGKILL kiln mid-upload; the next kiln re-attaches and settles the bake with its AMI.
    let mut other = request(&deb);
    other["build_host"] = json!("https://ci2.example.invalid/");
    let id = kiln.bake_id("us-east-1", &other);
    crate::harness::wait_for_log(&kiln, &id, "uploading");
    kiln.kill();
    let kiln = start_marked(&data, &yaml, &mark, &[]);
    let s = kiln.wait(&id, Duration::from_secs(120));
    let log = kiln.log(&id);
    assert_eq!(s["result"], "SUCCESS", "{s}\n{log}");
    assert!(log.contains("re-attached"), "{log}");
    let ami = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json()["ami"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        snap(&moto, &["image", &moto.endpoint, "us-east-1", &ami])["ImageId"],
        ami
    );
    assert!(mounts_under(&data).is_empty());
    crate::harness::assert_nothing_left(&mark, &[kiln.pid()]);
}
