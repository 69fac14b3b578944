//! Bake recipes as Rosco makes them, checked on the command line kiln hands to real Packer
//! (recorded in the bake's recipe) and on the AMI Packer made in moto; CI artifacts that pin
//! versions; and a bake identity that reuses only what is really the same.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "kilnRecipesSecret/0123456789abcdefghijkl";

/// A custom template that runs a script from configDir, to show scripts count by content.
fn hook_template() -> String {
    let text = std::fs::read_to_string(format!("{REPO}/tests/fixtures/packer/aws-ebs-nossh.json"))
        .unwrap();
    let mut t: Value = serde_json::from_str(&text).unwrap();
    t["provisioners"][0]
        .as_object_mut()
        .unwrap()
        .remove("inline");
    t["provisioners"][0]["script"] = json!("{{user `configDir`}}/hook.sh");
    t.to_string()
}

fn start() -> (Moto, tempfile::TempDir, Kiln) {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let centos = format!(
        "    baseImages:\n    - baseImage: {{id: centos, packageType: rpm, templateFile: aws-multi-ebs-nossh.json}}\n      virtualizationSettings:\n      - {{region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: {}}}\n",
        seed["source_ami"].as_str().unwrap()
    );
    let extra = format!(
        "yumRepository: http://yum.example.invalid/el7\nrosco:\n  configDir: {}",
        data.path().join("packer").display()
    );
    let yaml = moto_config(&moto, &seed, SECRET, &extra)
        .replacen("    baseImages:\n", &centos, 1)
        .replacen(
            "files: {",
            &format!(
                "files: {{\"profiles__rosco__packer__hook.json\": {}, \"profiles__rosco__packer__hook.sh\": \"#!/bin/sh\\necho hook v1\\n\", ",
                serde_json::to_string(&hook_template()).unwrap()
            ),
            1,
        );
    let kiln = Kiln::start(data.path(), &yaml);
    (moto, data, kiln)
}

/// Bakes with real Packer; returns the bake id and the command line kiln ran, as `[arg] [arg]`.
fn bake(kiln: &Kiln, body: &Value) -> (String, String) {
    let id = kiln.bake_id("us-east-1", body);
    let s = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&id));
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    let argv: Vec<String> = serde_json::from_value(view["recipe"]["command"].clone()).unwrap();
    (
        id,
        argv.iter()
            .map(|a| format!("[{a}]"))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn argv_of(kiln: &Kiln, body: &Value) -> String {
    bake(kiln, body).1
}

#[test]
fn roscos_examples_give_roscos_packages_and_appversion() {
    let (moto, _d, kiln) = start();
    let argv = argv_of(
        &kiln,
        &json!({"package": "nflx-djangobase-enhanced_0.1-h12.170cdbd_all kato redis-server", "base_os": "ubuntu",
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
            && argv.contains("[repository=http://repo.example.invalid/apt stable main]"),
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

    let (id, _) = bake(
        &kiln,
        &json!({"package": "nflx-djangobase-enhanced_0.1-h12.170cdbd_all kato redis-server",
        "base_os": "ubuntu", "build_number": "12", "commit_hash": "170cdbd", "job": "some/job-name"}),
    );
    let ami = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json()["ami"]
        .as_str()
        .unwrap()
        .to_string();
    let image = moto.inspect("image", &["us-east-1", &ami]);
    assert_eq!(
        image["tags"]["appversion"], "nflx-djangobase-enhanced-0.1-h12.170cdbd/some-job-name/12",
        "{image}"
    );
    assert!(
        kiln.log(&id)
            .contains("packages=nflx-djangobase-enhanced=0.1-h12.170cdbd kato redis-server"),
        "the provisioner saw it"
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
        rpm.contains("[repository=http://yum.example.invalid/el7]"),
        "{rpm}"
    );
    assert!(
        rpm.contains("[aws_target_ami=kato-app-x86_64-1.0-centos]"),
        "{rpm}"
    );
    assert!(
        rpm.contains("aws-multi-ebs-nossh.json]"),
        "the base image's template: {rpm}"
    );
    let bare = argv_of(
        &kiln,
        &json!({"package": "reno-server", "base_os": "ubuntu", "upgrade": true}),
    );
    assert!(
        !bare.contains("appversion="),
        "a bare name has no appversion: {bare}"
    );
    assert!(bare.contains("[upgrade=true]"), "{bare}");
}

#[test]
fn ci_artifacts_pin_the_version_of_a_bare_package() {
    let (_moto, _d, kiln) = start();
    let artifact = |name: &str| json!({"type": "deb", "name": name, "reference": format!("https://ci.example/{name}")});
    let argv = argv_of(
        &kiln,
        &json!({"package": "hello", "base_os": "ubuntu", "package_artifacts": [artifact("hello_2.3-h4.abc123_all.deb")]}),
    );
    assert!(argv.contains("[packages=hello=2.3-h4.abc123]"), "{argv}");
    let by_reference = argv_of(
        &kiln,
        &json!({"package": "hello", "base_os": "ubuntu", "ami_suffix": "2",
                "package_artifacts": [{"type": "deb", "reference": "https://ci.example/builds/hello_2.5-h9.def_all.deb"}]}),
    );
    assert!(
        by_reference.contains("[packages=hello=2.5-h9.def]"),
        "{by_reference}"
    );
    let r = kiln.post(
        "/api/v1/us-east-1/bake",
        &json!({"package": "hello", "base_os": "ubuntu",
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
fn changed_scripts_or_attributes_make_a_new_bake_and_the_reason_for_reuse_is_visible() {
    let (_moto, data, kiln) = start();
    let body = json!({"package": "nginx", "base_os": "ubuntu", "template_file_name": "hook.json"});
    let (first, _) = bake(&kiln, &body);
    assert!(kiln.log(&first).contains("hook v1"), "{}", kiln.log(&first));
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
    assert_eq!(view["inputs"]["template"]["name"], "hook.json");
    assert!(
        view["inputs"]["scripts"]["hook.sh"].is_string(),
        "the script the template runs: {view}"
    );

    // The script's content changes: a new bake.
    std::fs::write(
        data.path().join("packer/hook.sh"),
        "#!/bin/sh\necho hook v2\n",
    )
    .unwrap();
    let (second, _) = bake(&kiln, &body);
    assert_ne!(second, first);
    assert!(kiln.log(&second).contains("hook v2"));
    let mut upgraded = body.clone();
    upgraded["upgrade"] = json!(true);
    assert_ne!(
        kiln.bake("us-east-1", &upgraded)["id"],
        second.as_str(),
        "upgrade changes the image"
    );
    let mut attribute = body.clone();
    attribute["extended_attributes"] = json!({"aws_ena_support": "true"});
    let third = kiln.bake_id("us-east-1", &attribute);
    assert_ne!(third, second, "an extended attribute changes the image");
    kiln.wait(&third, Duration::from_secs(120));
}
