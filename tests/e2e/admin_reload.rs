//! Operating a running kiln: credentials and network set with the CLI reach Packer (moto checks
//! the access key of every call), `kiln deploy apply` and SIGHUP reload the config while a bake
//! runs (the bake keeps its recipe, the next one uses the new settings), and a bad config is
//! refused with 400 while the old one stays active.

use crate::admin::{bakery, kiln_cli, text};
use crate::harness::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const SECRET: &str = "kilnReloadSecret/DoNotPrint+0123456789ab";
const ACCESS_KEY: &str = "AKIAKILNADMINCLI0001";
const NEW_SECRET: &str = "kilnReloadRotated/DoNotPrint+9876543210";
const NEW_ACCESS_KEY: &str = "AKIAKILNADMINCLI0002";

/// moto's config without keys and network: the CLI sets them. `sleep` seconds in the
/// provisioner keep a bake in flight.
fn bare_config(moto: &Moto, seed: &Value, sleep: u32) -> String {
    let text = std::fs::read_to_string(format!("{REPO}/tests/fixtures/packer/aws-ebs-nossh.json"))
        .unwrap();
    let mut slow: Value = serde_json::from_str(&text).unwrap();
    slow["provisioners"][0]["inline"] =
        json!([format!("echo slow starts; sleep {sleep}; echo slow done")]);
    let entry = json!(slow.to_string());
    moto_config(moto, seed, "unused", "")
        .lines()
        .filter(|l| {
            !["awsAccessKey", "awsSecretKey", "awsSubnetId", "awsVpcId"]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "templateFile: aws-ebs-nossh.json",
            "templateFile: aws-ebs-slow.json",
        )
        .replacen(
            "files: {",
            &format!("files: {{\"profiles__rosco__packer__aws-ebs-slow.json\": {entry},"),
            1,
        )
}

fn set_network(config: &Path, net: &Value) {
    let args = [
        "edit",
        "--aws-subnet-id",
        net["subnet_id"].as_str().unwrap(),
        "--aws-vpc-id",
        net["vpc_id"].as_str().unwrap(),
    ];
    let out = bakery(config, &args, "");
    assert!(out.status.success(), "{:?}", text(&out));
}

fn set_keys(config: &Path, access: &str, secret: &str) {
    let args = ["edit", "--aws-access-key", access, "--aws-secret-key"];
    let out = bakery(config, &args, &format!("{secret}\n"));
    assert!(out.status.success(), "{:?}", text(&out));
}

fn deploy_apply(kiln: &Kiln) -> (bool, String, String) {
    let data = kiln.data.to_str().unwrap();
    let out = kiln_cli(&kiln.config, &["deploy", "apply", "--data-dir", data], "");
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

fn bake(kiln: &Kiln, package: &str) -> String {
    let body = json!({"package": package, "base_os": "ubuntu", "cloud_provider_type": "aws"});
    kiln.bake_id("us-east-1", &body)
}

/// The builder instance of a bake, found by the Name tag Packer gives it.
fn builder(kiln: &Kiln, moto: &Moto, id: &str) -> Value {
    let name = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json()["image_name"]
        .as_str()
        .unwrap()
        .to_string();
    let instances = moto.inspect("instances", &["us-east-1"]);
    instances
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tags"]["Name"] == format!("kiln bake: {name}"))
        .cloned()
        .unwrap_or_else(|| panic!("no builder for {name}: {instances}"))
}

fn wait_for_log(kiln: &Kiln, id: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !kiln.log(id).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "'{needle}' never appeared: {}",
            kiln.log(id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_bake_uses_the_credentials_and_subnet_set_with_the_cli() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("kiln.yml");
    std::fs::write(&config, bare_config(&moto, &seed, 0)).unwrap();
    set_keys(&config, ACCESS_KEY, SECRET);
    set_network(&config, &seed);

    let kiln = Kiln::start_with(data.path(), &config);
    let id = bake(&kiln, "nginx");
    let s = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&id));
    let b = builder(&kiln, &moto, &id);
    assert_eq!(b["subnet_id"], seed["subnet_id"]);
    assert_eq!(b["vpc_id"], seed["vpc_id"]);
    let calls = moto.inspect("calls", &[]);
    let run: Vec<&Value> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "RunInstances")
        .collect();
    assert!(
        !run.is_empty() && run.iter().all(|c| c["access_key"] == ACCESS_KEY),
        "{run:?}"
    );
    let stderr = std::fs::read_to_string(&kiln.stderr).unwrap();
    assert!(!stderr.contains(SECRET) && !kiln.log(&id).contains(SECRET));
}

#[test]
fn a_reload_during_a_bake_leaves_it_running_and_the_next_bake_uses_the_new_subnet() {
    let moto = Moto::start();
    let (first, second) = (moto.seed(), moto.seed());
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("kiln.yml");
    std::fs::write(&config, bare_config(&moto, &first, 4)).unwrap();
    set_network(&config, &first);
    set_keys(&config, ACCESS_KEY, SECRET);
    let kiln = Kiln::start_with(data.path(), &config);
    let running = bake(&kiln, "nginx");
    wait_for_log(&kiln, &running, "slow starts");

    set_network(&config, &second);
    set_keys(&config, NEW_ACCESS_KEY, NEW_SECRET);
    let (ok, stdout, stderr) = deploy_apply(&kiln);
    assert!(ok, "{stdout}{stderr}");
    for key in ["awsSubnetId", "awsVpcId", "awsSecretKey"] {
        assert!(
            stdout.contains(&format!("changed: aws.bakeryDefaults.{key}")),
            "{stdout}"
        );
    }
    assert!(!stdout.contains(NEW_SECRET) && !stderr.contains(NEW_SECRET));
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/status/{running}"))
            .json()["state"],
        "RUNNING"
    );

    let s = kiln.wait(&running, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&running));
    assert!(kiln.log(&running).contains("slow done"));
    assert_eq!(
        builder(&kiln, &moto, &running)["subnet_id"],
        first["subnet_id"]
    );

    let next = bake(&kiln, "redis-server");
    let s = kiln.wait(&next, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&next));
    let b = builder(&kiln, &moto, &next);
    assert_eq!(
        (&b["subnet_id"], &b["vpc_id"]),
        (&second["subnet_id"], &second["vpc_id"])
    );
    assert!(
        !std::fs::read_to_string(&kiln.stderr)
            .unwrap()
            .contains(SECRET)
    );
}

/// A config for the fake `packer`: no cloud needed to check what the server serves.
fn fake_config(extra: &str) -> String {
    format!(
        r#"aws:
  enabled: true
  bakeryDefaults:
    baseImages:
    - baseImage: {{id: ubuntu, packageType: deb}}
      virtualizationSettings:
      - {{region: us-east-1, instanceType: t3.micro, sourceAmi: ami-785db401, sshUserName: ubuntu}}
kiln:
  packerPath: {REPO}/tests/support/fake-packer
{extra}"#
    )
}

fn base_image_ids(kiln: &Kiln) -> Vec<String> {
    let v = kiln.get("/bakeOptions/aws").json();
    v["baseImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_malformed_config_is_refused_with_400_and_kiln_keeps_serving_the_old_one() {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &fake_config(""));
    std::fs::write(&kiln.config, "aws: [enabled\n").unwrap();

    let (ok, stdout, stderr) = deploy_apply(&kiln);
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stderr.contains("malformed YAML") && stderr.contains("old config stays active"),
        "{stderr}"
    );
    let r = http(&kiln.addr, "POST", "/api/kiln/v1/reload", &[], b"");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("malformed YAML"),
        "{}",
        r.body
    );

    assert_eq!(base_image_ids(&kiln), vec!["ubuntu"]);
    let id = bake(&kiln, "nginx");
    assert_eq!(
        kiln.wait(&id, Duration::from_secs(30))["state"],
        "COMPLETED",
        "{}",
        kiln.log(&id)
    );
}

#[test]
fn a_change_kiln_cannot_apply_live_is_named_and_the_rest_applies() {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &fake_config(""));
    let yaml = fake_config(
        "  jobs:\n    maxConcurrent: 2\n  ha:\n    heartbeat: 2s\nserver:\n  address: 0.0.0.0\ndebianRepository: http://deb.example.invalid stable main\n",
    );
    std::fs::write(&kiln.config, yaml).unwrap();
    let r = http(&kiln.addr, "POST", "/api/kiln/v1/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let changed = json!(["debianRepository", "kiln.jobs.maxConcurrent"]);
    assert_eq!(v["changed"], changed, "{v}");
    let fixed = json!(["kiln.ha.heartbeat", "server.address"]);
    assert_eq!(v["restart_needed"], fixed, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("restart needed for: kiln.ha.heartbeat, server.address"),
        "{v}"
    );
    assert!(
        kiln.get("/health").status == 200,
        "still serving where it was"
    );
}

#[test]
fn sighup_reloads_the_config_file_and_logs_the_result() {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &fake_config(""));
    let args = [
        "base-image",
        "add",
        "noble",
        "--package-type",
        "deb",
        "--region",
        "us-east-1",
        "--source-ami",
        "ami-12345678",
        "--instance-type",
        "t3.micro",
    ];
    let out = bakery(&kiln.config, &args, "");
    assert!(out.status.success(), "{:?}", text(&out));
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &kiln.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while base_image_ids(&kiln) != ["ubuntu", "noble"] {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload: {:?}",
            base_image_ids(&kiln)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The new config is live before its log line is written: wait for the line.
    let logged = |log: &str| log.contains("SIGHUP") && log.contains("baseImages[1]");
    let mut log = std::fs::read_to_string(&kiln.stderr).unwrap();
    while !logged(&log) {
        assert!(
            Instant::now() < deadline,
            "the reload was not logged: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
        log = std::fs::read_to_string(&kiln.stderr).unwrap();
    }
    assert_eq!(kiln.get("/health").status, 200, "SIGHUP does not stop kiln");
}
