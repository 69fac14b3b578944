//! AWS bakes against moto with real Packer: credentials, network, sharing and copying, dedupe,
//! failures, and secrets that never leak.

use crate::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

const SECRET: &str = "kilnTestSecretKey/DoNotLeak+0123456789abcd";

fn request(pkg: &str) -> serde_json::Value {
    json!({
        "package": pkg,
        "base_os": "ubuntu",
        "cloud_provider_type": "aws",
        "build_number": "4",
        "commit_hash": "abc123",
        "user": "pipeline",
    })
}

#[test]
fn a_spinnaker_shaped_request_bakes_an_ami_with_the_bakerys_keys_and_network() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));
    let body = request("hello_1.0-h4.abc123_all");
    let r = http(
        &kiln.addr,
        "POST",
        "/api/v1/us-east-1/bake",
        &[("X-SPINNAKER-EXECUTION-ID", "exec-1:stage")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let status = r.json();
    assert_eq!(status["state"], "RUNNING");
    let id = status["id"].as_str().unwrap().to_string();
    assert_eq!(status["resource_id"], id);

    // While Packer runs, no process on the machine carries the secret in its argv.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut finished = None;
    while Instant::now() < deadline {
        for p in processes_mentioning("packer") {
            assert!(!p.contains(SECRET), "secret in argv: {p}");
        }
        let s = kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
        if s["state"] != "RUNNING" {
            finished = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = finished.expect("bake did not finish");
    assert_eq!(s["state"], "COMPLETED", "log: {}", kiln.log(&id));
    assert_eq!(s["result"], "SUCCESS");

    let bake = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    let ami = bake["ami"].as_str().expect("ami").to_string();
    assert!(ami.starts_with("ami-"), "{bake}");
    assert_eq!(bake["artifact"]["type"], "aws/image");
    assert_eq!(bake["artifact"]["location"], "us-east-1");
    assert_eq!(bake["artifact"]["reference"], ami);
    let name = bake["image_name"].as_str().unwrap();
    assert!(
        name.starts_with("hello-all-") && name.ends_with("-ubuntu"),
        "{name}"
    );

    let image = moto.inspect("image", &["us-east-1", &ami]);
    assert_eq!(image["exists"], true);
    assert_eq!(image["tags"]["appversion"], "hello-1.0-h4.abc123");
    let instances = moto.inspect("instances", &["us-east-1"]);
    let builder = instances
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image_id"] == seed["source_ami"])
        .expect("builder instance");
    assert_eq!(builder["subnet_id"], seed["subnet_id"]);
    assert_eq!(builder["vpc_id"], seed["vpc_id"]);
    assert_eq!(builder["instance_type"], "t3.micro");
    let calls = moto.inspect("calls", &[]);
    let packer_calls: Vec<_> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "RunInstances")
        .collect();
    assert!(!packer_calls.is_empty());
    assert!(
        packer_calls
            .iter()
            .all(|c| c["access_key"] == "AKIAKILNTESTKEY00001"),
        "{packer_calls:?}"
    );

    // Logs by bake and by image; the secret is nowhere kiln writes or answers.
    let log = kiln.log(&id);
    assert!(log.contains("amazon-ebs"), "{log}");
    let by_image = kiln.get(&format!("/api/v1/us-east-1/logs/image/{ami}"));
    assert_eq!(by_image.status, 200);
    let kiln_view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).body;
    for text in [
        &log,
        &kiln_view,
        &bake.to_string(),
        &std::fs::read_to_string(&kiln.stderr).unwrap(),
    ] {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
    }
    let leaked: Vec<_> = files_containing(data.path(), SECRET)
        .into_iter()
        .filter(|p| !p.ends_with("kiln.yml"))
        .collect();
    assert!(leaked.is_empty(), "secret in data dir files: {leaked:?}");
}

#[test]
fn extended_attributes_override_the_default_subnet_and_vpc() {
    let moto = Moto::start();
    let seed = moto.seed();
    let other = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));
    let mut body = request("nginx");
    body["extended_attributes"] =
        json!({"aws_subnet_id": other["subnet_id"], "aws_vpc_id": other["vpc_id"]});
    let id = kiln.bake_id("us-east-1", &body);
    let s = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&id));
    let instances = moto.inspect("instances", &["us-east-1"]);
    let builder = instances
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image_id"] == seed["source_ami"])
        .unwrap();
    assert_eq!(builder["subnet_id"], other["subnet_id"]);
    assert_eq!(builder["vpc_id"], other["vpc_id"]);
}

#[test]
fn share_with_and_copy_to_give_launch_permissions_and_a_copy_per_region() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));
    let mut body = request("nginx");
    body["template_file_name"] = json!("aws-multi-ebs-nossh.json");
    body["extended_attributes"] =
        json!({"share_with": "111122223333, 444455556666", "copy_to": "us-west-2"});
    let id = kiln.bake_id("us-east-1", &body);
    let s = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&id));
    let east = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    let west = kiln.get(&format!("/api/v1/us-west-2/bake/{id}")).json();
    assert_eq!(east["artifact"]["location"], "us-east-1");
    assert_eq!(west["artifact"]["location"], "us-west-2");
    assert_ne!(east["ami"], west["ami"]);
    assert_eq!(east["regions"], json!(["us-east-1", "us-west-2"]));
    for (region, bake) in [("us-east-1", &east), ("us-west-2", &west)] {
        let image = moto.inspect("image", &[region, bake["ami"].as_str().unwrap()]);
        let mut users: Vec<String> =
            serde_json::from_value(image["launch_permission_user_ids"].clone()).unwrap();
        users.sort();
        assert_eq!(
            users,
            vec!["111122223333", "444455556666"],
            "{region}: {image}"
        );
    }
    let missing = kiln.get(&format!("/api/v1/eu-west-1/bake/{id}"));
    assert_eq!(missing.status, 400, "{}", missing.body);
}

#[test]
fn identical_requests_share_a_bake_and_rebake_starts_a_new_one() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));
    let body = request("redis-server");
    let first = kiln.bake_id("us-east-1", &body);
    let again = kiln.post("/api/v1/us-east-1/bake", &body);
    assert_eq!(
        again.json()["id"],
        first.as_str(),
        "same identity while running"
    );
    assert!(
        again
            .header("X-Kiln-Reused")
            .is_some_and(|h| h.contains(&first))
    );
    assert_eq!(
        kiln.wait(&first, Duration::from_secs(120))["state"],
        "COMPLETED"
    );
    assert_eq!(
        kiln.bake("us-east-1", &body)["id"],
        first.as_str(),
        "same identity after success"
    );

    let mut changed = body.clone();
    changed["extended_attributes"] = json!({"aws_associate_public_ip_address": "false"});
    let other = kiln.bake_id("us-east-1", &changed);
    assert_ne!(other, first, "an extended attribute changes the image");

    let r = kiln.post("/api/v1/us-east-1/bake?rebake=1", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let rebake = r.json()["id"].as_str().unwrap().to_string();
    assert_ne!(rebake, first);
    assert_eq!(
        kiln.wait(&rebake, Duration::from_secs(120))["state"],
        "COMPLETED"
    );
    assert_eq!(
        kiln.bake("us-east-1", &body)["id"],
        rebake.as_str(),
        "the rebake is the bake now"
    );
    kiln.wait(&other, Duration::from_secs(120));
}

#[test]
fn an_unknown_source_ami_ends_canceled_failure_with_packers_error_in_the_log() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));
    let mut body = request("nginx");
    body["base_ami"] = json!("ami-deadbeef");
    let id = kiln.bake_id("us-east-1", &body);
    let s = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(s["state"], "CANCELED");
    assert_eq!(s["result"], "FAILURE");
    let log = kiln.log(&id);
    assert!(log.contains("ami-deadbeef"), "{log}");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["phase"], "failed");
    assert_eq!(view["cause"], "job_failed");
    // A failed bake is baked again.
    assert_ne!(kiln.bake("us-east-1", &body)["id"], id.as_str());
}

#[test]
fn a_source_image_given_by_name_is_looked_up_in_ec2_by_kiln_without_clouddriver() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));
    let mut body = request("nginx");
    let name = "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721";
    body["base_ami"] = json!(name);
    let id = kiln.bake_id("us-east-1", &body);
    let s = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&id));
    // Packer got the id (owner 099720109477, the setting's sourceAmiOwner).
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(
        view["recipe"]["source_image"],
        json!({"id": "ami-785db401", "name": name, "via": "ec2"})
    );
    assert_eq!(
        view["recipe"]["variables"]["aws_source_ami"],
        "ami-785db401"
    );
    assert!(
        kiln.log(&id).contains("Found Image ID: ami-785db401"),
        "{}",
        kiln.log(&id)
    );
}

#[test]
fn without_bakery_keys_kilns_own_lookup_signs_with_the_default_chain() {
    // No awsAccessKey/awsSecretKey: kiln's EC2 client takes credentials from the default chain
    // (here the environment, as on EKS or with a profile), as Packer does. The metadata service
    // is switched off so nothing can try a non-loopback address.
    const CHAIN_KEY: &str = "AKIAKILNCHAINKEY0001";
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let yaml = moto_config(&moto, &seed, SECRET, "").replace(
        &format!("    awsAccessKey: AKIAKILNTESTKEY00001\n    awsSecretKey: {SECRET}\n"),
        "",
    );
    assert!(!yaml.contains("awsSecretKey"), "{yaml}");
    let config = data.path().join("kiln.yml");
    std::fs::write(&config, &yaml).unwrap();
    let kiln = Kiln::start_env(
        data.path(),
        &config,
        &[
            ("AWS_ACCESS_KEY_ID", CHAIN_KEY),
            ("AWS_SECRET_ACCESS_KEY", "kiln-chain-secret"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ],
    );
    let mut body = request("nginx");
    body["base_ami"] = json!("ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721");
    let id = kiln.bake_id("us-east-1", &body);
    let s = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&id));
    let calls = moto.inspect("calls", &[]);
    let lookup = calls.as_array().unwrap().iter().find(|c| {
        c["action"] == "DescribeImages"
            && c["params"].to_string().contains("Filter.1.Name")
            && c["access_key"] == CHAIN_KEY
    });
    assert!(
        lookup.is_some(),
        "kiln's name lookup with the chain's key: {calls}"
    );
}
