//! Issue 12: what Orca's real requests and Rosco's own specs expect, against the real binary,
//! real Packer and moto. Orca's bake stage replayed through a whole pipeline run and a re-run;
//! source images given by name resolved before Packer runs (EC2 itself against moto, Rosco's
//! Clouddriver lookup against a stand-in on loopback, the dynamic `aws.base.*` key and its live
//! reload).

use crate::harness::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "kilnSpinnakerSecret/DoNotLeak+0123456789ab";
const BAKE_LIMIT: Duration = Duration::from_secs(180);

/// The body Orca's `CreateBakeTask` sends for a bake stage (snake_case, nulls kept, the package
/// type upper case, stage-context extras passed through).
fn orca_body(suffix: &str) -> Value {
    json!({
        "user": "deploy-bot@example.com",
        "package": "kato_1.0-h12.170cdbd_all",
        "package_type": "DEB",
        "package_artifacts": [],
        "build_host": "https://jenkins.example.com/",
        "job": "kato/master",
        "build_number": "12",
        "commit_hash": "170cdbd",
        "build_info_url": "https://jenkins.example.com/job/kato/12/",
        "cloud_provider_type": "aws",
        "base_label": "release",
        "base_os": "ubuntu",
        "base_name": null,
        "base_ami": null,
        "vm_type": "hvm",
        "store_type": "ebs",
        "enhanced_networking": false,
        "ami_name": null,
        "account_name": null,
        "sku": null,
        "offer": null,
        "publisher": null,
        "os_type": null,
        "custom_managed_image_name": null,
        "ami_suffix": suffix,
        "upgrade": "true",
        "extended_attributes": {"aws_associate_public_ip_address": "false", "note": " "},
        "region": "us-east-1",
        "regions": ["us-east-1"],
        "rebake": false,
        "type": "bake",
        "refId": "1",
        "requisiteStageRefIds": [],
        "comments": "Bakes kato for prod.\nRebake after a base image update.",
        "stageTimeoutMs": 3600000
    })
}

fn orca_post(kiln: &Kiln, body: &Value, execution: &str) -> Response {
    http(
        &kiln.addr,
        "POST",
        "/api/v1/us-east-1/bake",
        &[("X-SPINNAKER-EXECUTION-ID", execution)],
        body.to_string().as_bytes(),
    )
}

#[test]
fn a_rerun_pipeline_gets_its_earlier_bake_back_with_its_own_ami_and_name() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));

    // Run 1: bake, monitor, read the result, as Orca's Create/Monitor/CompletedBakeTask do.
    let r = orca_post(
        &kiln,
        &orca_body("20261202120000"),
        "01EXEC1:01STAGE1:01TASK1",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let s = kiln.wait(&id, BAKE_LIMIT);
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("COMPLETED"), Some("SUCCESS")),
        "{}",
        kiln.log(&id)
    );
    let first = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    let ami = first["ami"].as_str().unwrap().to_string();
    assert_eq!(first["image_name"], "kato-all-20261202120000-ubuntu");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    let vars = &view["recipe"]["variables"];
    assert_eq!(vars["upgrade"], "true", "a string 'true' is Rosco's true");
    assert_eq!(vars["aws_associate_public_ip_address"], "false");
    assert!(vars.get("note").is_none(), "an empty attribute is dropped");
    assert_eq!(vars["package_type"], "deb");

    // Run 2 of the same pipeline: a fresh suffix, the same package: no second bake.
    let r = orca_post(
        &kiln,
        &orca_body("20261203090000"),
        "01EXEC2:01STAGE1:01TASK1",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let again = r.json();
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["state"], "COMPLETED");
    assert!(r.header("X-Kiln-Reused").is_some());
    let second = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    assert_eq!(second["ami"], ami.as_str());
    assert_eq!(second["image_name"], "kato-all-20261202120000-ubuntu");
    // Deck's "Rebake" still bakes anew, under the new suffix.
    let r = http(
        &kiln.addr,
        "POST",
        "/api/v1/us-east-1/bake?rebake=1",
        &[("X-SPINNAKER-EXECUTION-ID", "01EXEC3:01STAGE1:01TASK1")],
        orca_body("20261204090000").to_string().as_bytes(),
    );
    let rebaked = r.json()["id"].as_str().unwrap().to_string();
    assert_ne!(rebaked, id);
    assert_eq!(kiln.wait(&rebaked, BAKE_LIMIT)["state"], "COMPLETED");
    let third = kiln
        .get(&format!("/api/v1/us-east-1/bake/{rebaked}"))
        .json();
    assert_eq!(third["image_name"], "kato-all-20261204090000-ubuntu");
    assert_ne!(third["ami"], ami.as_str());

    // What Rosco refuses stays a 400: a boolean that is none.
    let mut bad = orca_body("1");
    bad["upgrade"] = json!("yes");
    let r = orca_post(&kiln, &bad, "01EXEC4:01STAGE1:01TASK1");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("'upgrade'"));
}

/// Registers images in moto (copies of its ubuntu AMI, owned by moto's account, a second apart
/// so their creation dates differ) and returns their ids in order. moto's copies are not
/// EBS-backed, so Packer refuses them as a source ("invalid root device type"): bakes from them
/// show which id reached Packer; successful bakes use moto's pre-seeded EBS images.
fn register_images(moto: &Moto, names: &[&str]) -> Vec<String> {
    let script = r#"
import json, sys, time, boto3
ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=sys.argv[1],
                   aws_access_key_id="AKIAKILNSEEDFAKE0000", aws_secret_access_key="x")
ids = []
for i, name in enumerate(sys.argv[2:]):
    if i:
        time.sleep(1.1)
    ids.append(ec2.copy_image(SourceImageId="ami-785db401", SourceRegion="us-east-1", Name=name)["ImageId"])
print(json.dumps(ids))
"#;
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(&moto.endpoint)
        .args(names)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// moto's config with extra base images, whose source is `source` (a name) or, with
/// `None`, left to the dynamic key.
fn base_image(id: &str, source: Option<&str>, most_recent: bool) -> String {
    let source = source
        .map(|s| format!("sourceAmi: '{s}', "))
        .unwrap_or_default();
    format!(
        "    - baseImage: {{id: {id}, packageType: deb}}\n      virtualizationSettings:\n      - {{region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, {source}mostRecent: {most_recent}, sshUserName: ubuntu}}\n"
    )
}

/// `moto_config` with `images` appended to its base images and `extra` top-level YAML.
fn config_with(moto: &Moto, seed: &Value, images: &[String], extra: &str) -> String {
    let base = moto_config(moto, seed, SECRET, extra);
    let marker = "debianRepository:";
    let at = base.find(marker).unwrap();
    format!("{}{}{}", &base[..at], images.concat(), &base[at..])
}

fn source_of(kiln: &Kiln, id: &str) -> (Value, Value) {
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    (
        view["recipe"]["source_image"].clone(),
        view["recipe"]["variables"]["aws_source_ami"].clone(),
    )
}

fn builder_ran_from(moto: &Moto, ami: &str) -> bool {
    let instances = moto.inspect("instances", &["us-east-1"]);
    instances
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["image_id"] == ami)
}

#[test]
fn a_source_name_resolves_through_ec2_by_roscos_rule_before_packer_runs() {
    let moto = Moto::start();
    let seed = moto.seed();
    let ids = register_images(&moto, &["kiln-base-1", "kiln-base-2"]);
    let data = tempfile::tempdir().unwrap();
    let images = [
        base_image("newest", Some("kiln-base-*"), true),
        base_image("first", Some("kiln-base-*"), false),
    ];
    let kiln = Kiln::start(data.path(), &config_with(&moto, &seed, &images, ""));
    let body = |os: &str| json!({"package": "kato", "base_os": os, "ami_suffix": "1"});

    let newest = kiln.bake_id("us-east-1", &body("newest"));
    let first = kiln.bake_id("us-east-1", &body("first"));
    for (id, want) in [(&newest, &ids[1]), (&first, &ids[0])] {
        let (source, var) = source_of(&kiln, id);
        assert_eq!(
            source,
            json!({"id": want, "name": "kiln-base-*", "via": "ec2"})
        );
        assert_eq!(var, want.as_str());
        // Packer was handed that id (and refuses moto's non-EBS copy).
        kiln.wait(id, BAKE_LIMIT);
        let log = kiln.log(id);
        assert!(log.contains("invalid root device type"), "{log}");
    }
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{newest}")).json();
    assert_eq!(view["inputs"]["source_image"], ids[1].as_str());

    // No image by that name: Rosco's 400, before Packer runs.
    let mut none = body("newest");
    none["base_ami"] = json!("kiln-nothing-*");
    let r = kiln.post("/api/v1/us-east-1/bake", &none);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "No base image found for os 'newest', vm type 'hvm', region 'us-east-1', label: 'null', account: 'null'"
    );
}

/// A stand-in Clouddriver on loopback: answers `GET /aws/images/find` with whatever `reply`
/// gives for the request line, and records the request lines.
struct Clouddriver {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Clouddriver {
    fn start(reply: impl Fn(&str) -> (u16, String) + Send + 'static) -> Clouddriver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let line = line.trim().to_string();
                let (status, body) = reply(&line);
                log.lock().unwrap().push(line);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Clouddriver { url, seen }
    }
}

/// Clouddriver's `images/find` answer: `(name, virtualization type, creation date, id)`.
fn named_images(images: &[(&str, &str, &str, &str)]) -> String {
    let list: Vec<Value> = images
        .iter()
        .map(|(name, vt, date, id)| {
            json!({"imageName": name, "attributes": {"virtualizationType": vt, "creationDate": date},
                   "amis": {"us-east-1": [id]}, "tagsByImageId": {}, "accounts": ["prod"]})
        })
        .collect();
    Value::Array(list).to_string()
}

#[test]
fn with_clouddriver_names_resolve_roscos_way_and_the_dynamic_key_reloads_live() {
    let moto = Moto::start();
    let seed = moto.seed();
    // moto's pre-seeded EBS images (xenial and trusty), so Packer bakes from either.
    let (old, new) = ("ami-1e749f67".to_string(), "ami-785db401".to_string());
    let newer = Arc::new(Mutex::new(false));
    let answer = {
        let (old, new, newer) = (old.clone(), new.clone(), newer.clone());
        move |line: &str| -> (u16, String) {
            if line.contains("q=broken") {
                return (503, "{}".into());
            }
            if !line.contains("q=cd-base") {
                return (200, "[]".into());
            }
            // Clouddriver's order is not by date; a newer pv image must not count for hvm.
            let mut images = vec![
                (
                    "cd-base-old",
                    "hvm",
                    "2026-01-01T00:00:00.000Z",
                    old.as_str(),
                ),
                (
                    "cd-base-pv",
                    "paravirtual",
                    "2026-12-01T00:00:00.000Z",
                    "ami-0pv0pv0pv",
                ),
                (
                    "cd-base-new",
                    "hvm",
                    "2026-06-01T00:00:00.000Z",
                    new.as_str(),
                ),
            ];
            if *newer.lock().unwrap() {
                images.push((
                    "cd-base-newer",
                    "hvm",
                    "2026-09-01T00:00:00.000Z",
                    old.as_str(),
                ));
            }
            (200, named_images(&images))
        }
    };
    let cd = Clouddriver::start(answer);
    let extra = |dynamic: &str| {
        format!(
            "services:\n  clouddriver:\n    baseUrl: {}\naws:\n  defaultAccount: prod\n  base:\n    dyn.hvm.release.us-east-1: {dynamic}\n",
            cd.url
        )
    };
    let images = [
        base_image("named", Some("cd-base"), true),
        base_image("dyn", None, false),
    ];
    let data = tempfile::tempdir().unwrap();
    // moto_config starts with `aws:`; the extra `aws:` keys go into the same mapping.
    let yaml = |dynamic: &str| merged_aws(&config_with(&moto, &seed, &images, ""), &extra(dynamic));
    let kiln = Kiln::start(data.path(), &yaml("cd-base"));

    let named = kiln.bake_id(
        "us-east-1",
        &json!({"package": "kato", "base_os": "named", "account_name": "test", "ami_suffix": "1"}),
    );
    assert_eq!(
        kiln.wait(&named, BAKE_LIMIT)["state"],
        "COMPLETED",
        "{}",
        kiln.log(&named)
    );
    assert_eq!(
        source_of(&kiln, &named),
        (
            json!({"id": new, "name": "cd-base", "via": "clouddriver"}),
            json!(new)
        )
    );
    assert!(
        builder_ran_from(&moto, &new),
        "no builder instance from {new}"
    );
    let line = cd.seen.lock().unwrap()[0].clone();
    assert!(
        line.starts_with("GET /aws/images/find?q=cd-base&"),
        "{line}"
    );
    assert!(
        line.contains("account=test") && line.contains("region=us-east-1"),
        "{line}"
    );

    // The dynamic key names the base (mostRecent false: Clouddriver's first hvm image).
    let dyn_body =
        json!({"package": "kato", "base_os": "dyn", "base_label": "release", "ami_suffix": "1"});
    let first = kiln.bake_id("us-east-1", &dyn_body);
    assert_eq!(source_of(&kiln, &first).1, json!(old));
    assert!(
        cd.seen
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .contains("account=prod")
    );
    assert_eq!(kiln.wait(&first, BAKE_LIMIT)["state"], "COMPLETED");
    // It changes with a live reload: an id now.
    std::fs::write(&kiln.config, yaml(seed["source_ami"].as_str().unwrap())).unwrap();
    let r = kiln.post("/api/kiln/v1/reload", &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    // (A new suffix: AMI names are unique, as Orca's fresh suffix on every run makes them.)
    let mut dyn_body = dyn_body;
    dyn_body["ami_suffix"] = json!("2");
    let second = kiln.bake_id("us-east-1", &dyn_body);
    assert_ne!(second, first);
    assert_eq!(
        source_of(&kiln, &second),
        (Value::Null, seed["source_ami"].clone())
    );
    let s = kiln.wait(&second, BAKE_LIMIT);
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&second));

    // Nothing found: Rosco's 400. Clouddriver failing: three tries 3 s apart, then a 503.
    let mut body = json!({"package": "kato", "base_os": "named", "base_ami": "nothing"});
    let r = kiln.post("/api/v1/us-east-1/bake", &body);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "No base image found for os 'named', vm type 'hvm', region 'us-east-1', label: 'null', account: 'prod'"
    );
    body["base_ami"] = json!("broken");
    let before = cd.seen.lock().unwrap().len();
    let started = Instant::now();
    let r = kiln.post("/api/v1/us-east-1/bake", &body);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(started.elapsed() >= Duration::from_secs(6));
    assert_eq!(cd.seen.lock().unwrap().len() - before, 3);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("broken") && message.contains("after 3 tries"),
        "{message}"
    );
}

/// Merges `extra`'s `aws:` keys (and its other top-level keys) into `yaml`.
fn merged_aws(yaml: &str, extra: &str) -> String {
    let mut base: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    let more: serde_norway::Value = serde_norway::from_str(extra).unwrap();
    for (k, v) in more.as_mapping().unwrap() {
        match (base.get_mut(k), v) {
            (Some(serde_norway::Value::Mapping(into)), serde_norway::Value::Mapping(from)) => {
                for (k2, v2) in from {
                    into.insert(k2.clone(), v2.clone());
                }
            }
            _ => {
                base.as_mapping_mut().unwrap().insert(k.clone(), v.clone());
            }
        }
    }
    serde_norway::to_string(&base).unwrap()
}
