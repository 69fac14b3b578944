//! The Google and Docker providers through the real binary: the admin CLI writes their config,
//! `kiln config validate` runs Packer 1.6.6 over gce.json and docker.json with the variables a
//! recipe gives them, `/bakeOptions` lists them as Rosco does, a request is refused with GCE's
//! name rule, and a Docker bake runs the real Packer (which fails here: this machine has no Docker
//! daemon) and settles with Packer's error. Nothing reaches Google or a registry.

use crate::admin::{kiln_cli, text};
use crate::harness::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn google_and_docker_are_configured_validated_offered_and_baked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("kiln.yml");
    std::fs::write(
        &config,
        format!(
            "kiln:\n  dataDir: {}\ngoogle:\n  accounts:\n  - {{name: my-google-account, project: kiln-e2e}}\n",
            data.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = kiln_cli(&config, args, "");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        stdout
    };
    run(&[
        "config",
        "provider",
        "google",
        "bakery",
        "edit",
        "--zone",
        "us-central1-f",
        "--network",
        "default",
        "--use-internal-ip",
        "false",
    ]);
    run(&[
        "config",
        "provider",
        "google",
        "bakery",
        "base-image",
        "add",
        "bionic",
        "--package-type",
        "deb",
        "--is-image-family",
        "true",
        "--source-image-family",
        "ubuntu-1804-lts",
    ]);
    run(&[
        "config",
        "provider",
        "docker",
        "bakery",
        "edit",
        "--target-repository",
        "registry.kiln.invalid:5000",
    ]);
    run(&[
        "config",
        "provider",
        "docker",
        "bakery",
        "base-image",
        "add",
        "jammy",
        "--package-type",
        "deb",
        "--source-image",
        "ubuntu:22.04",
    ]);
    let again = kiln_cli(
        &config,
        &[
            "config",
            "provider",
            "docker",
            "bakery",
            "base-image",
            "add",
            "jammy",
        ],
        "",
    );
    assert!(!again.status.success() && text(&again).1.contains("exists"));
    assert!(
        run(&[
            "config",
            "provider",
            "google",
            "bakery",
            "base-image",
            "list"
        ])
        .contains("bionic: family ubuntu-1804-lts")
    );
    assert!(
        run(&[
            "config",
            "provider",
            "docker",
            "bakery",
            "base-image",
            "list"
        ])
        .contains("jammy: ubuntu:22.04")
    );

    // Packer validates both shipped templates with the variables kiln's recipe passes.
    let out = kiln_cli(&config, &["config", "validate"], "");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for t in ["gce.json", "docker.json"] {
        assert!(
            stdout.lines().any(|l| l == format!("OK      {t}")),
            "{stdout}"
        );
    }

    let yaml = std::fs::read_to_string(&config).unwrap();
    let mut kiln = Kiln::start(&data, &yaml);
    let options = kiln.get("/bakeOptions/gce").json();
    assert_eq!(options["cloudProvider"], "gce", "{options}");
    assert_eq!(options["baseImages"][0]["id"], "bionic");
    assert_eq!(options["baseImages"][0]["isImageFamily"], true);
    let all = kiln.get("/bakeOptions").json();
    let clouds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["cloudProvider"].as_str())
        .collect();
    assert_eq!(clouds, ["gce", "docker"], "{all}");

    let refused = kiln.post(
        "/api/v1/global/bake",
        &json!({"package": "nginx", "base_os": "bionic", "cloud_provider_type": "gce", "ami_name": "9lives"}),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("not a GCE image name"),
        "{}",
        refused.body
    );

    // The real Packer runs docker.json and fails for want of a Docker daemon: the bake settles
    // with Packer's reason, never hangs.
    let id = kiln.bake_id(
        "global",
        &json!({"package": "nginx", "base_os": "jammy", "cloud_provider_type": "docker", "commit_hash": "abc1234"}),
    );
    let done = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(done["result"], "FAILURE", "{done}");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["provider"], "docker");
    assert_eq!(
        view["recipe"]["variables"]["docker_target_image_tag"], "abc1234",
        "{view}"
    );
    assert_eq!(view["recipe"]["template"], "docker.json");
    assert!(
        kiln.log(&id).to_lowercase().contains("docker"),
        "{}",
        kiln.log(&id)
    );
    kiln.stop();
}
