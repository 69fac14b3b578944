//! The admin commands of Alibaba, Tencent, Huawei and Oracle Cloud against the real binary:
//! `kiln config provider <cloud> bakery edit|show` and `base-image add|edit|delete|list`. The
//! secrets are read from standard input, never printed, refused on the command line; what the
//! commands write is what `kiln serve` reads (`show`, `list` and a recipe's 400 prove it).

use crate::admin::{kiln_cli, text};
use serde_norway::Value;
use std::path::Path;

const SECRET: &str = "kilnCloudAdminSecret/DoNotPrint+0123";

fn cloud(config: &Path, name: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut all = vec!["config", "provider", name, "bakery"];
    all.extend_from_slice(args);
    let out = kiln_cli(config, &all, stdin);
    let (o, e) = text(&out);
    (out.status.success(), o, e)
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.yml");
    std::fs::write(&path, "# the operator's file\nserver:\n  port: 8087\n").unwrap();
    (dir, path)
}

#[test]
fn each_clouds_bakery_edit_writes_roscos_keys_and_reads_its_secret_from_stdin() {
    let (_d, path) = file();
    let secret_line = format!("{SECRET}\n");
    for (name, args, secret_key) in [
        (
            "alicloud",
            vec![
                "edit",
                "--alicloud-access-key",
                "LTAI-1",
                "--alicloud-secret-key",
                "--alicloud-v-switch-id",
                "vsw-1",
                "--alicloud-vpc-id",
                "vpc-1",
                "--template-file",
                "alicloud-multi.json",
            ],
            Some("alicloudSecretKey"),
        ),
        (
            "tencentcloud",
            vec![
                "edit",
                "--secret-id",
                "AKID-1",
                "--secret-key",
                "--subnet-id",
                "subnet-1",
                "--vpc-id",
                "vpc-1",
                "--associate-public-ip-address",
                "false",
            ],
            Some("secretKey"),
        ),
        (
            "huaweicloud",
            vec![
                "edit",
                "--auth-url",
                "https://iam.example.invalid/v3",
                "--username",
                "baker",
                "--password",
                "--project-name",
                "cn-north-4",
                "--domain-name",
                "example",
                "--insecure",
                "false",
                "--eip-bandwidth-size",
                "5",
                "--security-group",
                "sg-1",
            ],
            Some("password"),
        ),
        (
            "oracle",
            vec![
                "edit",
                "--availability-domain",
                "lrFb:US-ASHBURN-AD-1",
                "--subnet-id",
                "ocid1.subnet.x",
                "--instance-shape",
                "VM.Standard2.1",
            ],
            None,
        ),
    ] {
        let (ok, out, err) = cloud(&path, name, &args, &secret_line);
        assert!(ok, "{name}: {err}");
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "{name} printed the secret"
        );
        if let Some(key) = secret_key {
            assert!(
                out.contains(&format!("{name}.bakeryDefaults.{key}: (set)")),
                "{out}"
            );
            assert_eq!(
                yaml(&path)[name]["bakeryDefaults"][key],
                Value::from(SECRET)
            );
        }
        assert_eq!(yaml(&path)[name]["enabled"], Value::from(true));
        let (ok, shown, err) = cloud(&path, name, &["show"], "");
        assert!(ok, "{err}");
        assert!(!shown.contains(SECRET), "{name}: show printed the secret");
        if secret_key.is_some() {
            assert!(shown.contains("******"), "{shown}");
        }
    }
    let d = yaml(&path);
    assert_eq!(
        d["alicloud"]["bakeryDefaults"]["alicloudVSwitchId"],
        Value::from("vsw-1")
    );
    assert_eq!(
        d["tencentcloud"]["bakeryDefaults"]["associatePublicIpAddress"],
        Value::from(false)
    );
    assert_eq!(
        d["huaweicloud"]["bakeryDefaults"]["eipBandwidthSize"],
        Value::from(5)
    );
    assert_eq!(
        d["oracle"]["bakeryDefaults"]["instanceShape"],
        Value::from("VM.Standard2.1")
    );
    assert_eq!(
        d["server"]["port"],
        Value::from(8087),
        "the operator's keys survive"
    );

    // A secret on the command line is refused before anything is parsed, and not repeated.
    for (name, flag) in [
        ("alicloud", "--alicloud-secret-key"),
        ("tencentcloud", "--secret-key"),
        ("huaweicloud", "--password"),
    ] {
        let before = std::fs::read_to_string(&path).unwrap();
        let out = kiln_cli(
            &path,
            &[
                "config",
                "provider",
                name,
                "bakery",
                "edit",
                flag,
                "hush-9876",
            ],
            "",
        );
        let (o, e) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {e}");
        assert!(!o.contains("hush") && !e.contains("hush"), "{e}");
        assert!(e.contains(&format!("{flag} alone")), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }
    // --no-credentials drops the keys.
    let (ok, out, _) = cloud(&path, "alicloud", &["edit", "--no-credentials"], "");
    assert!(ok);
    assert!(
        out.contains("alicloud.bakeryDefaults.alicloudSecretKey: (removed)"),
        "{out}"
    );
    assert!(yaml(&path)["alicloud"]["bakeryDefaults"]["alicloudAccessKey"].is_null());
}

#[test]
fn base_images_are_added_edited_listed_and_deleted_per_cloud() {
    let (_d, path) = file();
    let add = |name: &str, args: &[&str]| {
        let mut all = vec!["base-image", "add"];
        all.extend_from_slice(args);
        cloud(&path, name, &all, "")
    };
    let (ok, _, err) = add(
        "tencentcloud",
        &[
            "ubuntu-1604",
            "--short-description",
            "v16.04",
            "--package-type",
            "deb",
            "--region",
            "ap-guangzhou",
            "--zone",
            "ap-guangzhou-3",
            "--instance-type",
            "S3.SMALL1",
            "--source-image-id",
            "img-pyqx34y1",
            "--ssh-user-name",
            "ubuntu",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cloud(
        &path,
        "tencentcloud",
        &[
            "base-image",
            "edit",
            "ubuntu-1604",
            "--region",
            "ap-shanghai",
            "--zone",
            "ap-shanghai-2",
            "--source-image-id",
            "img-2",
        ],
        "",
    );
    assert!(ok, "{err}");
    let (ok, listed, _) = cloud(&path, "tencentcloud", &["base-image", "list"], "");
    assert!(ok);
    assert_eq!(listed.trim(), "ubuntu-1604: ap-guangzhou, ap-shanghai");
    let s = yaml(&path)["tencentcloud"]["bakeryDefaults"]["baseImages"][0].clone();
    assert_eq!(
        s["virtualizationSettings"][0]["zone"],
        Value::from("ap-guangzhou-3")
    );
    assert_eq!(
        s["virtualizationSettings"][1]["sourceImageId"],
        Value::from("img-2")
    );

    // Each cloud's own settings keys; another cloud's flag is refused, saying so.
    let (ok, _, err) = add(
        "alicloud",
        &["ubuntu", "--region", "cn-hangzhou", "--zone", "x"],
    );
    assert!(
        !ok && err.contains("--zone is not a alicloud base-image setting"),
        "{err}"
    );
    let (ok, _, err) = add("alicloud", &["ubuntu", "--instance-type", "ecs.c5.large"]);
    assert!(!ok && err.contains("--region"), "{err}");
    let (ok, _, err) = add(
        "alicloud",
        &[
            "ubuntu",
            "--region",
            "cn-hangzhou",
            "--instance-type",
            "ecs.c5.large",
            "--source-image",
            "ubuntu_18_04_64_20G_alibase_20190624.vhd",
            "--ssh-user-name",
            "root",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = add(
        "huaweicloud",
        &[
            "ubuntu",
            "--region",
            "cn-north-4",
            "--eip-type",
            "5_bgp",
            "--instance-type",
            "s3.small.1",
            "--source-image-id",
            "f1dd",
            "--ssh-user-name",
            "ubuntu",
        ],
    );
    assert!(ok, "{err}");
    // Oracle: one block per image, no region.
    let (ok, _, err) = add(
        "oracle",
        &[
            "ubuntu16_04",
            "--region",
            "us-ashburn-1",
            "--base-image-id",
            "ocid1.image.x",
        ],
    );
    assert!(!ok && err.contains("leave out --region"), "{err}");
    let (ok, _, err) = add(
        "oracle",
        &[
            "ubuntu16_04",
            "--base-image-id",
            "ocid1.image.x",
            "--ssh-user-name",
            "ubuntu",
        ],
    );
    assert!(ok, "{err}");
    let (_, listed, _) = cloud(&path, "oracle", &["base-image", "list"], "");
    assert_eq!(listed.trim(), "ubuntu16_04: ocid1.image.x");
    let (ok, _, err) = add("oracle", &["ubuntu16_04"]);
    assert!(!ok && err.contains("exists"), "{err}");

    // What the commands wrote is what kiln reads.
    let loaded = std::process::Command::new(crate::harness::KILN)
        .args(["--config"])
        .arg(&path)
        .args(["config", "provider", "alicloud", "bakery", "show"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        shown.contains("ubuntu_18_04_64_20G_alibase_20190624.vhd"),
        "{shown}"
    );

    for name in ["tencentcloud", "alicloud", "huaweicloud", "oracle"] {
        let id = if name == "tencentcloud" {
            "ubuntu-1604"
        } else if name == "oracle" {
            "ubuntu16_04"
        } else {
            "ubuntu"
        };
        let (ok, out, err) = cloud(&path, name, &["base-image", "delete", id], "");
        assert!(ok, "{err}");
        assert!(out.contains("removed"), "{out}");
        let (_, listed, _) = cloud(&path, name, &["base-image", "list"], "");
        assert_eq!(listed.trim(), "no base images");
    }
}
