//! Retention for real: `kiln gc` against a kiln that baked with real Packer on moto (record
//! count, local folders, a running bake left alone, AMIs never touched, what it freed in its
//! answer and in `/metrics`), and `DELETE` of a real qemu bake removing its image.

use crate::harness::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "kilnGcSecretKey/DoNotLeak+0123456789abcdef";

/// A moto config whose provisioner sleeps 120 s when the package name says `slow`, and
/// retention keeping one settled bake with no schedule (only `kiln gc`).
fn config(moto: &Moto, seed: &Value) -> String {
    let tpl = std::fs::read_to_string(format!("{REPO}/tests/fixtures/packer/aws-ebs-nossh.json"))
        .unwrap();
    let mut t: Value = serde_json::from_str(&tpl).unwrap();
    t["provisioners"][0]["inline"] = json!([
        "echo packages=$packages",
        "case \"$packages\" in *slow*) echo slow provisioner starts; sleep 120;; esac"
    ]);
    let extra = "kiln:\n  jobs:\n    killGrace: 30s\n  retention:\n    bakes:\n      maxCount: 1\n    interval: 0s\n";
    let base = moto_config(moto, seed, SECRET, extra).replace(
        "templateFile: aws-ebs-nossh.json",
        "templateFile: aws-ebs-maybe-slow.json",
    );
    with_file(&base, "aws-ebs-maybe-slow.json", &t.to_string())
}

fn plant(dir: &Path, bytes: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("file"), vec![7u8; bytes]).unwrap();
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
}

#[test]
fn kiln_gc_deletes_old_bakes_and_their_files_but_never_a_running_bakes_nor_an_ami() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let kiln = Kiln::start(d, &config(&moto, &seed));
    let bake = |pkg: &str| {
        kiln.bake_id(
            "us-east-1",
            &json!({"package": pkg, "base_os": "ubuntu", "cloud_provider_type": "aws"}),
        )
    };
    let old = bake("alpha");
    assert_eq!(
        kiln.wait(&old, Duration::from_secs(120))["result"],
        "SUCCESS"
    );
    let old_ami = kiln.get(&format!("/api/v1/us-east-1/bake/{old}")).json()["ami"]
        .as_str()
        .unwrap()
        .to_string();
    let kept = bake("beta");
    assert_eq!(
        kiln.wait(&kept, Duration::from_secs(120))["result"],
        "SUCCESS"
    );
    let running = bake("slowpoke");
    wait_for_log(&kiln, &running, "slow provisioner starts");
    // Settled bakes' run dirs went when they settled; the running one's is there.
    assert!(!d.join("runs").join(&old).exists());
    assert!(d.join("runs").join(&running).join("pgid").exists());

    // Local files as a qemu bake would leave them, and a hostile link.
    plant(&d.join("images").join(&old), 1 << 20);
    plant(&d.join("staging").join(&kept), 4096);
    plant(&d.join("images").join(&kept), 4096);
    plant(&d.join("images").join(&running), 4096);
    plant(&d.join("staging").join(&running), 4096);
    let outside = tempfile::tempdir().unwrap();
    plant(outside.path(), 100);
    std::os::unix::fs::symlink(outside.path(), d.join("images").join("link")).unwrap();

    let out = Command::new(KILN)
        .args(["gc", "--server", &format!("http://{}", kiln.addr)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("removed images of bake {old} (1.0 MiB)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("removed staging of bake {kept}")),
        "{stdout}"
    );
    assert!(stdout.contains("deleted 1 bake record(s)"), "{stdout}");

    assert_eq!(kiln.get(&format!("/api/kiln/v1/bakes/{old}")).status, 404);
    assert_eq!(kiln.get(&format!("/api/kiln/v1/bakes/{kept}")).status, 200);
    assert!(!d.join("images").join(&old).exists());
    assert!(!d.join("staging").join(&kept).exists());
    assert!(
        d.join("images").join(&kept).exists(),
        "no images.maxAge: kept"
    );
    for kind in ["images", "staging"] {
        assert!(
            d.join(kind).join(&running).join("file").exists(),
            "{kind} of the running bake"
        );
    }
    assert!(d.join("runs").join(&running).join("pgid").exists());
    assert!(outside.path().join("file").exists() && d.join("images/link").exists());
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{running}")).json();
    assert_eq!(view["phase"], "running", "{view}");
    // Its timeline is live: provisioning now, not ended.
    let last = view["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["phase"].as_str(), last["ended_ms"].as_i64()),
        (Some("provision"), None),
        "{view}"
    );
    // The old bake's AMI is the user's: still there.
    assert_eq!(
        moto.inspect("image", &["us-east-1", &old_ami])["exists"],
        true
    );

    let metrics = kiln.get("/metrics").body;
    assert_eq!(metric(&metrics, "kiln_retention_deleted_bakes_total"), 1);
    assert!(metric(&metrics, "kiln_retention_reclaimed_bytes_total") >= (1 << 20) + 4096);

    // Canceled, the running bake settles; then its run dir is gone too.
    let cancel = Command::new(KILN)
        .args([
            "bakes",
            "cancel",
            &running,
            "--server",
            &format!("http://{}", kiln.addr),
        ])
        .output()
        .unwrap();
    assert!(
        cancel.status.success(),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while d.join("runs").join(&running).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "run dir of the canceled bake stays"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_cloud_clean(&moto);
}

#[test]
fn a_qemu_bake_by_kiln_bake_prints_its_image_path_and_delete_removes_the_image() {
    crate::qemu::require_tools();
    let cache = crate::qemu::cache();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(format!("{REPO}/examples/sample-app/build-deb.sh"))
        .arg(work.path())
        .arg("1.2.4")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(cache.join("base-images"), data.join("base-images")).unwrap();
    let kiln = Kiln::start(&data, "qemu:\n  enabled: true\n");

    let started = std::time::Instant::now();
    let out = Command::new(KILN)
        .args([
            "bake",
            "--package",
            "kiln-sample",
            "--base-os",
            "bookworm",
            "--provider",
            "qemu",
        ])
        .args(["--artifact", &deb, "-e", "boot_test=true"])
        .args(["--server", &format!("http://{}", kiln.addr)])
        .env("USER", "retention-test")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("qemu bake through kiln bake: {:.1?}", started.elapsed());
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let image = Path::new(stdout.trim());
    assert!(image.is_file(), "{stdout:?}");
    let id = image
        .parent()
        .and_then(|p| p.file_name())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(image.parent().unwrap(), data.join("images").join(&id));

    // The qemu timeline: Packer's boot, provision, shutdown (and convert), kiln's boot check.
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    let phases: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    eprintln!("qemu timeline: {}", view["timeline"]);
    let wanted: Vec<&str> = ["boot", "provision", "shutdown", "convert", "boot_check"]
        .into_iter()
        .filter(|p| *p != "convert" || phases.contains(&"convert"))
        .collect();
    assert_eq!(phases, wanted, "{view}");
    assert!(
        view["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["seconds"].is_number())
    );
    let metrics = kiln.get("/metrics").body;
    assert!(
        metrics.contains("kiln_bake_phase_seconds_count{phase=\"boot_check\",provider=\"qemu\"} 1"),
        "{metrics}"
    );

    // DELETE of the bake (Rosco's, by the same request) removes its image; the record stays.
    let request = json!({
        "package": "kiln-sample", "base_os": "bookworm", "user": "retention-test",
        "cloud_provider_type": "qemu",
        "package_artifacts": [{"name": Path::new(&deb).file_name().unwrap().to_string_lossy(),
            "reference": format!("file://{}", std::fs::canonicalize(&deb).unwrap().display())}],
        "extended_attributes": {"boot_test": true},
    });
    let r = http(
        &kiln.addr,
        "DELETE",
        "/api/v1/local/bake",
        &[],
        request.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&id), "{}", r.body);
    assert!(
        !data.join("images").join(&id).exists(),
        "the image is removed"
    );
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["image"], Value::Null);
    assert_eq!(view["phase"], "succeeded");
}
