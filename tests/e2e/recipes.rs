//! Bake recipes as Rosco makes them, checked on the command line Packer receives (the fake
//! `packer` prints its argv into the bake's log), CI artifacts that pin versions, and a bake
//! identity that reuses only what is really the same.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

fn config(data: &std::path::Path) -> String {
    format!(
        r#"aws:
  enabled: true
  bakeryDefaults:
    templateFile: aws-ebs.json
    baseImages:
    - baseImage: {{id: trusty, packageType: deb}}
      virtualizationSettings:
      - {{region: us-east-1, virtualizationType: hvm, instanceType: t2.micro, sourceAmi: ami-785db401, sshUserName: ubuntu}}
    - baseImage: {{id: centos, packageType: rpm, templateFile: custom.json}}
      virtualizationSettings:
      - {{region: us-east-1, virtualizationType: hvm, instanceType: t2.micro, sourceAmi: ami-785db401}}
debianRepository: http://deb.example.invalid stable main
yumRepository: http://yum.example.invalid/el7
kiln:
  packerPath: {REPO}/tests/support/fake-packer
files:
  profiles__rosco__packer__custom.json: '{{"builders": []}}'
rosco:
  configDir: {}
"#,
        data.join("packer").display()
    )
}

fn start() -> (tempfile::TempDir, Kiln) {
    let data = tempfile::tempdir().unwrap();
    let yaml = config(data.path());
    let path = data.path().join("kiln.yml");
    std::fs::write(&path, yaml).unwrap();
    let kiln = Kiln::start_env(data.path(), &path, &[("FAKE_PACKER_MODE", "ok")]);
    (data, kiln)
}

/// Bakes and returns the argv line the fake Packer printed.
fn argv_of(kiln: &Kiln, body: &Value) -> String {
    let id = kiln.bake("us-east-1", body)["id"]
        .as_str()
        .unwrap()
        .to_string();
    kiln.wait(&id, Duration::from_secs(30));
    let log = kiln.log(&id);
    log.lines()
        .find(|l| l.contains("fake-packer argv:"))
        .unwrap_or_else(|| panic!("no argv in {log}"))
        .to_string()
}

#[test]
fn roscos_examples_give_roscos_packages_and_appversion() {
    let (_d, kiln) = start();
    let argv = argv_of(
        &kiln,
        &json!({"package": "nflx-djangobase-enhanced_0.1-h12.170cdbd_all kato redis-server", "base_os": "trusty",
                "build_number": "12", "commit_hash": "170cdbd", "job": "some/job-name"}),
    );
    assert!(
        argv.contains("[packages=nflx-djangobase-enhanced=0.1-h12.170cdbd kato redis-server]"),
        "{argv}"
    );
    assert!(
        argv.contains("[appversion=nflx-djangobase-enhanced-0.1-h12.170cdbd/some-job-name/12]"),
        "{argv}"
    );
    assert!(
        argv.contains("[package_type=deb]")
            && argv.contains("[repository=http://deb.example.invalid stable main]"),
        "{argv}"
    );
    assert!(
        argv.contains("[aws_target_ami=nflx-djangobase-enhanced-all-"),
        "{argv}"
    );
    assert!(
        argv.contains("[-machine-readable]") && argv.contains("[-color=false]"),
        "{argv}"
    );

    let rpm = argv_of(
        &kiln,
        &json!({"package": "kato-1.0-h3.x86_64", "base_os": "centos", "ami_name": "kato-app", "ami_suffix": "1.0"}),
    );
    assert!(
        rpm.contains("[packages=kato-1.0-h3]") && rpm.contains("[package_type=rpm]"),
        "{rpm}"
    );
    assert!(
        rpm.contains("[aws_target_ami=kato-app-x86_64-1.0-centos]"),
        "{rpm}"
    );
    assert!(
        rpm.contains("custom.json]"),
        "the base image's template: {rpm}"
    );
    let bare = argv_of(
        &kiln,
        &json!({"package": "reno-server", "base_os": "trusty", "upgrade": true}),
    );
    assert!(
        !bare.contains("appversion="),
        "a bare name has no appversion: {bare}"
    );
    assert!(bare.contains("[upgrade=true]"), "{bare}");
}

#[test]
fn ci_artifacts_pin_the_version_of_a_bare_package() {
    let (_d, kiln) = start();
    let artifact = |name: &str| json!({"type": "deb", "name": name, "reference": format!("https://ci.example/{name}")});
    let argv = argv_of(
        &kiln,
        &json!({"package": "hello", "base_os": "trusty", "package_artifacts": [artifact("hello_2.3-h4.abc123_all.deb")]}),
    );
    assert!(argv.contains("[packages=hello=2.3-h4.abc123]"), "{argv}");
    let by_reference = argv_of(
        &kiln,
        &json!({"package": "hello", "base_os": "trusty", "ami_suffix": "2",
                "package_artifacts": [{"type": "deb", "reference": "https://ci.example/builds/hello_2.5-h9.def_all.deb"}]}),
    );
    assert!(
        by_reference.contains("[packages=hello=2.5-h9.def]"),
        "{by_reference}"
    );
    let r = kiln.post(
        "/api/v1/us-east-1/bake",
        &json!({"package": "hello", "base_os": "trusty",
                "package_artifacts": [artifact("hello_2.3-h4.abc123_all.deb"), artifact("hello_2.4-h5.def456_all.deb")]}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("hello_2.3-h4.abc123_all.deb") && msg.contains("hello_2.4-h5.def456_all.deb"),
        "{msg}"
    );
}

#[test]
fn a_changed_template_makes_a_new_bake_and_the_reason_for_reuse_is_visible() {
    let (data, kiln) = start();
    let body = json!({"package": "nginx", "base_os": "trusty"});
    let first = kiln.bake("us-east-1", &body)["id"]
        .as_str()
        .unwrap()
        .to_string();
    kiln.wait(&first, Duration::from_secs(30));
    let r = kiln.post("/api/kiln/v1/us-east-1/bakes", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answer["reused"], true);
    assert_eq!(answer["bake"]["id"], first.as_str());
    assert!(
        answer["reason"].as_str().unwrap().contains(&first),
        "{answer}"
    );
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{first}")).json();
    assert_eq!(view["identity"].as_str().unwrap().len(), 64);
    assert_eq!(view["inputs"]["template"]["name"], "aws-ebs.json");
    assert!(
        view["inputs"]["scripts"]["install_packages.sh"].is_string(),
        "the script the template runs: {view}"
    );

    // The template's content changes: a new bake. (A custom file of the same name wins.)
    let template = data.path().join("packer/aws-ebs.json");
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(
        &template,
        text.replace("\"builders\"", "\"description\": \"changed\", \"builders\""),
    )
    .unwrap();
    let second = kiln.bake("us-east-1", &body)["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, first);
    kiln.wait(&second, Duration::from_secs(30));
    let upgraded = kiln.bake(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "trusty", "upgrade": true}),
    )["id"]
        .clone();
    assert_ne!(upgraded, second.as_str(), "upgrade changes the image");
}
