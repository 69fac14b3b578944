//! Alibaba, Tencent, Huawei and Oracle Cloud through the real `kiln` binary and real Packer 1.6.6,
//! with nothing reaching a cloud: `/bakeOptions` and Rosco's 400s; each cloud's credentials
//! reaching Packer through its environment (a `files:` template with Packer's null builder and
//! a shell-local step prints a digest of what Packer got) and nowhere else; and a Huawei Cloud
//! bake failing at once, naming the plugin Packer 1.6.6 lacks.

use crate::harness::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

const ALI_SECRET: &str = "kilnAliSecret/DoNotLeak+0123456789";
const TC_SECRET: &str = "kilnTencentSecret/DoNotLeak+0123456789";
const HW_SECRET: &str = "kilnHuaweiPassword/DoNotLeak+0123456789";
const OCI_SECRET: &str = "kilnOciPassphrase/DoNotLeak+0123456789";

/// A template for any of the four clouds: no cloud, just a digest of each credential Packer's
/// environment holds, and the variables it was given.
const ENV_PROBE: &str = r#"{
  "builders": [{"type": "null", "communicator": "none"}],
  "provisioners": [{
    "type": "shell-local",
    "inline": [
      "for v in ALICLOUD_ACCESS_KEY ALICLOUD_SECRET_KEY TENCENTCLOUD_SECRET_ID TENCENTCLOUD_SECRET_KEY HUAWEICLOUD_PASSWORD OCI_KEY_PASSPHRASE; do eval \"x=\\${$v-}\"; printf '%s=%s\\n' \"$v\" \"$(printf %s \"$x\" | sha256sum | cut -c1-64)\"; done"
    ]
  }]
}"#;

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn config() -> String {
    let files = json!({ "profiles__rosco__packer__env-probe.json": ENV_PROBE });
    format!(
        r#"alicloud:
  enabled: true
  bakeryDefaults:
    alicloudAccessKey: LTAI-kiln-test
    alicloudSecretKey: "{ALI_SECRET}"
    templateFile: alicloud.json
    baseImages:
    - baseImage: {{id: ubuntu-1804, shortDescription: v18.04, packageType: deb}}
      virtualizationSettings:
      - {{region: cn-hangzhou, instanceType: ecs.c5.large, sourceImage: ubuntu_18_04_64_20G_alibase_20190624.vhd, sshUserName: root}}
tencentcloud:
  enabled: true
  bakeryDefaults:
    secretId: AKID-kiln-test
    secretKey: "{TC_SECRET}"
    baseImages:
    - baseImage: {{id: ubuntu-1604, packageType: deb}}
      virtualizationSettings:
      - {{region: ap-guangzhou, zone: ap-guangzhou-3, instanceType: S3.SMALL1, sourceImageId: img-pyqx34y1, sshUsername: ubuntu}}
huaweicloud:
  enabled: true
  bakeryDefaults:
    authUrl: https://iam.example.invalid/v3
    username: baker
    password: "{HW_SECRET}"
    baseImages:
    - baseImage: {{id: ubuntu-1604, packageType: deb}}
      virtualizationSettings:
      - {{region: cn-north-1, instanceType: s3.small.1, sourceImageId: f1dd2272-7041-479e-9663-646632b6ac00, sshUserName: ubuntu, eipType: 5_bgp}}
oracle:
  enabled: true
  bakeryDefaults:
    availabilityDomain: "lrFb:US-ASHBURN-AD-1"
    subnetId: ocid1.subnet.oc1.iad.kiln
    instanceShape: VM.Standard2.1
    baseImages:
    - baseImage: {{id: ubuntu16_04, packageType: deb}}
      virtualizationSettings: {{baseImageId: ocid1.image.oc1.iad.ubuntu, sshUserName: ubuntu}}
  accounts:
  - name: oci-kiln
    compartmentId: ocid1.compartment.oc1..kiln
    userId: ocid1.user.oc1..kiln
    fingerprint: "12:34"
    sshPrivateKeyFilePath: /nonexistent/oci_api_key.pem
    privateKeyPassphrase: "{OCI_SECRET}"
    tenancyId: ocid1.tenancy.oc1..kiln
    region: us-ashburn-1
files: {files}
"#
    )
}

fn body(cloud: &str, os: &str) -> Value {
    json!({"package": "nginx", "base_os": os, "cloud_provider_type": cloud, "user": "someuser@gmail.com"})
}

#[test]
fn every_cloud_answers_bake_options_and_roscos_400s() {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &config());
    let all = kiln.get("/bakeOptions").json();
    let clouds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["cloudProvider"].as_str())
        .collect();
    for cloud in ["alicloud", "tencentcloud", "huaweicloud", "oracle"] {
        assert!(clouds.contains(&cloud), "{cloud} not in {all}");
    }
    let ali = kiln.get("/bakeOptions/alicloud").json();
    assert_eq!(ali["cloudProvider"], "alicloud");
    assert_eq!(ali["baseImages"][0]["id"], "ubuntu-1804");
    assert_eq!(ali["baseImages"][0]["shortDescription"], "v18.04");
    assert_eq!(ali["baseImages"][0]["packageType"], "DEB");
    assert_eq!(
        kiln.get("/bakeOptions/oracle").json()["baseImages"][0]["id"],
        "ubuntu16_04"
    );

    for (region, cloud, os, message) in [
        (
            "cn-hangzhou",
            "alicloud",
            "plan9",
            "No virtualization settings found for 'plan9'.",
        ),
        (
            "cn-beijing",
            "alicloud",
            "ubuntu-1804",
            "No virtualization settings found for region 'cn-beijing', operating system 'ubuntu-1804'.",
        ),
        (
            "ap-beijing",
            "tencentcloud",
            "ubuntu-1604",
            "No virtualization settings found for region 'ap-beijing', operating system 'ubuntu-1604'",
        ),
        (
            "cn-north-1",
            "huaweicloud",
            "plan9",
            "No virtualization settings found for 'plan9'.",
        ),
        (
            "us-ashburn-1",
            "oracle",
            "plan9",
            "No virtualization settings found for 'plan9'.",
        ),
    ] {
        let r = kiln.post(&format!("/api/v1/{region}/bake"), &body(cloud, os));
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["message"], message);
    }
    let mut bad = body("oracle", "ubuntu16_04");
    bad["account_name"] = json!("nope");
    let r = kiln.post("/api/v1/us-ashburn-1/bake", &bad);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("account_name=nope"), "{}", r.body);
    let mut bad = body("alicloud", "ubuntu-1804");
    bad["ami_name"] = json!("kato app");
    let r = kiln.post("/api/v1/cn-hangzhou/bake", &bad);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("ami_name"), "{}", r.body);
}

#[test]
fn credentials_reach_packer_in_its_environment_and_nowhere_else() {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &config());
    for (region, cloud, os, names) in [
        (
            "cn-hangzhou",
            "alicloud",
            "ubuntu-1804",
            vec![
                ("ALICLOUD_ACCESS_KEY", "LTAI-kiln-test"),
                ("ALICLOUD_SECRET_KEY", ALI_SECRET),
            ],
        ),
        (
            "ap-guangzhou",
            "tencentcloud",
            "ubuntu-1604",
            vec![
                ("TENCENTCLOUD_SECRET_ID", "AKID-kiln-test"),
                ("TENCENTCLOUD_SECRET_KEY", TC_SECRET),
            ],
        ),
        (
            "us-ashburn-1",
            "oracle",
            "ubuntu16_04",
            vec![("OCI_KEY_PASSPHRASE", OCI_SECRET)],
        ),
    ] {
        let mut b = body(cloud, os);
        b["template_file_name"] = json!("env-probe.json");
        let id = kiln.bake_id(region, &b);
        let s = kiln.wait(&id, Duration::from_secs(120));
        let log = kiln.log(&id);
        assert_eq!(s["state"], "COMPLETED", "{cloud}: {log}");
        for (name, value) in &names {
            let line = format!("{name}={}", sha(value));
            assert!(log.contains(&line), "{cloud}: {line} not in {log}");
        }
        let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).body;
        let bake = kiln.get(&format!("/api/v1/{region}/bake/{id}")).body;
        // The command line kiln ran (and shows) names the cloud's variables, no secret.
        assert!(view.contains(&format!("{cloud}_region=")), "{view}");
        for secret in [ALI_SECRET, TC_SECRET, HW_SECRET, OCI_SECRET] {
            for (what, text) in [("log", &log), ("view", &view), ("bake", &bake)] {
                assert!(!text.contains(secret), "{cloud}: a secret in the {what}");
            }
        }
    }
    let stderr = std::fs::read_to_string(&kiln.stderr).unwrap_or_default();
    for secret in [ALI_SECRET, TC_SECRET, HW_SECRET, OCI_SECRET] {
        assert!(!stderr.contains(secret), "a secret in kiln's log");
        let holding = files_containing(data.path(), secret);
        assert!(
            holding.iter().all(|f| f.ends_with("kiln.yml")),
            "files holding a secret: {holding:?}"
        );
    }
}

#[test]
fn a_huawei_bake_fails_at_once_naming_the_plugin_packer_lacks() {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &config());
    let id = kiln.bake_id("cn-north-1", &body("huaweicloud", "ubuntu-1604"));
    let s = kiln.wait(&id, Duration::from_secs(60));
    assert_eq!(s["state"], "CANCELED", "{s}");
    assert_eq!(s["result"], "FAILURE", "{s}");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    let error = view["error"].as_str().unwrap_or_default();
    for part in [
        "huaweicloud-ecs",
        "packer-plugin-huaweicloud",
        "kiln.packerPath",
    ] {
        assert!(error.contains(part), "{part} not in {view}");
    }
    let all = format!("{view} {}", kiln.log(&id));
    assert!(!all.contains(HW_SECRET));
    assert!(
        files_containing(data.path(), HW_SECRET)
            .iter()
            .all(|f| f.ends_with("kiln.yml"))
    );
}

/// `kiln config validate` checks each cloud's template with what a bake hands Packer: the
/// recipe's variables, the credentials in Packer's environment (alicloud-ecs and
/// tencentcloud-cvm refuse to validate without keys; oracle-oci decrypts its key file with the
/// passphrase), never a secret on its output; and names the builder Packer 1.6.6 lacks.
#[test]
fn config_validate_checks_each_cloud_with_its_credentials_and_names_a_missing_builder() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("oci_api_key.pem");
    let made = std::process::Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", OCI_SECRET, "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let data = dir.path().join("data");
    let yaml = format!(
        "kiln:\n  dataDir: {}\n{}",
        data.display(),
        config().replace("/nonexistent/oci_api_key.pem", &key.display().to_string())
    );
    let file = dir.path().join("kiln.yml");
    std::fs::write(&file, yaml).unwrap();
    let out = crate::admin::kiln_cli(&file, &["config", "validate"], "");
    let (stdout, stderr) = crate::admin::text(&out);
    assert!(
        !out.status.success(),
        "Huawei's template cannot pass: {stdout}"
    );
    for t in ["alicloud.json", "tencentcloud.json", "oci.json"] {
        assert!(
            stdout.lines().any(|l| l == format!("OK      {t}")),
            "{t} fully checked: {stdout}{stderr}"
        );
    }
    let huawei = stdout
        .lines()
        .find(|l| l.starts_with("FAILED  huaweicloud.json"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        huawei.contains("no huaweicloud-ecs builder") && huawei.contains("kiln.packerPath"),
        "{huawei}"
    );
    for secret in [ALI_SECRET, TC_SECRET, HW_SECRET, OCI_SECRET] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    // The wrong passphrase fails the Oracle template: the check is real.
    let wrong = std::fs::read_to_string(&file)
        .unwrap()
        .replace(OCI_SECRET, "not-the-passphrase");
    std::fs::write(&file, wrong).unwrap();
    let out = crate::admin::kiln_cli(&file, &["config", "validate"], "");
    let (stdout, _) = crate::admin::text(&out);
    assert!(
        stdout.lines().any(|l| l.starts_with("FAILED  oci.json")),
        "{stdout}"
    );
}
