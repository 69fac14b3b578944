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
