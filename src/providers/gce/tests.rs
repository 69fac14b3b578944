//! Rosco's `GCEBakeHandlerSpec` cases: the variables and their conditions, source image or
//! family, accounts, the deprecated defaults, Rosco's 400 messages, GCE's image-name rule, and
//! the result's shape.

use crate::bake::BakeRequest;
use crate::builders::packer::output::Outcome;
use crate::config::Settings;
use crate::providers::provider::{test_record, test_run};
use crate::providers::recipe::{Prepared, RecipeContext};
use crate::providers::registry::{find, prepare};
use crate::services::source_images::NoLookup;
use serde_json::{Value, json};

const CONFIG: &str = r#"
google:
  enabled: true
  accounts:
  - {name: my-google-account, project: some-gcp-project}
  - {name: another-google-account, project: another-gcp-project, jsonPath: /secrets/another.json}
  bakeryDefaults:
    zone: us-central1-a
    network: default
    templateFile: gce_template.json
    baseImages:
    - baseImage: {id: precise, packageType: deb}
      virtualizationSettings: {sourceImage: ubuntu-1204-precise-v20150910}
    - baseImage: {id: centos, packageType: rpm}
      virtualizationSettings: {sourceImage: centos-6-v20160119}
    - baseImage: {id: xenial, packageType: deb, isImageFamily: true}
      virtualizationSettings: {sourceImageFamily: ubuntu-1604-lts}
    - baseImage: {id: yakkety, packageType: deb}
      virtualizationSettings: {sourceImage: ubuntu-1610-yakkety-v20170502, sourceImageFamily: ubuntu-1610}
    - baseImage: {id: coyote, packageType: deb}
      virtualizationSettings: {}
  gce:
    bakeryDefaults:
      networkProjectId: some-xpn-host-project
      subnetwork: custom-subnetwork
      baseImages:
      - baseImage: {id: trusty, packageType: deb}
        virtualizationSettings: {sourceImage: ubuntu-1404-trusty-v20160122}
"#;

fn settings(yaml: &str) -> Settings {
    crate::config::load_str(yaml, &|_| None).unwrap().settings
}

fn bake(settings: &Settings, body: Value) -> Result<Prepared, String> {
    let dir = tempfile::tempdir().unwrap();
    for t in ["gce_template.json", "gce.json"] {
        std::fs::write(dir.path().join(t), "{}").unwrap();
    }
    let req = BakeRequest::from_json(body.to_string().as_bytes()).map_err(|e| e.0)?;
    let ctx = RecipeContext {
        settings,
        config_dir: dir.path(),
        region: "global",
        now_ms: 1_700_000_000_000,
        images: &NoLookup,
    };
    prepare(&req, &ctx).map_err(|e| e.to_string())
}

fn vars(p: &Prepared) -> Vec<(&str, &str)> {
    let vars = &p.plan.variables;
    vars.iter()
        .filter(|(k, _)| k != "configDir")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn precise_gets_rosco_s_variables_in_order() {
    let p = bake(
        &settings(CONFIG),
        json!({"package": "kato redis-server", "base_os": "precise", "cloud_provider_type": "gce",
               "build_host": "http://some-build-server:8080"}),
    )
    .unwrap();
    assert_eq!(
        vars(&p),
        [
            ("gce_project_id", "some-gcp-project"),
            ("gce_zone", "us-central1-a"),
            ("gce_network", "default"),
            ("gce_target_image", "kato-all-1700000000000-precise"),
            ("gce_source_image", "ubuntu-1204-precise-v20150910"),
            ("gce_network_project_id", "some-xpn-host-project"),
            ("gce_subnetwork", "custom-subnetwork"),
            ("repository", ""),
            ("package_type", "deb"),
            ("packages", "kato redis-server"),
            ("build_host", "http://some-build-server:8080"),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect::<Vec<_>>()
    );
    assert_eq!(p.template_name, "gce_template.json");
    assert_eq!(p.provider, "gce");
}

#[test]
fn base_ami_overrides_the_image_and_wins_over_a_family() {
    let s = settings(CONFIG);
    let p = bake(
        &s,
        json!({"package": "kato", "base_os": "xenial", "cloud_provider_type": "gce", "base_ami": "some-gce-image-name"}),
    )
    .unwrap();
    assert!(vars(&p).contains(&("gce_source_image", "some-gce-image-name")));
    assert!(
        !vars(&p)
            .iter()
            .any(|(k, _)| *k == "gce_source_image_family")
    );
    // A family alone is passed as a family; with both, the image wins.
    let family = bake(
        &s,
        json!({"package": "kato", "base_os": "xenial", "cloud_provider_type": "gce"}),
    )
    .unwrap();
    assert!(vars(&family).contains(&("gce_source_image_family", "ubuntu-1604-lts")));
    let both = bake(
        &s,
        json!({"package": "kato", "base_os": "yakkety", "cloud_provider_type": "gce"}),
    )
    .unwrap();
    assert!(vars(&both).contains(&("gce_source_image", "ubuntu-1610-yakkety-v20170502")));
    assert!(
        !vars(&both)
            .iter()
            .any(|(k, _)| *k == "gce_source_image_family")
    );
}

#[test]
fn the_account_named_picks_project_and_key_file_and_extended_attributes_override() {
    let s = settings(CONFIG);
    let p = bake(
        &s,
        json!({"package": "kato", "base_os": "trusty", "cloud_provider_type": "gce",
               "account_name": "another-google-account",
               "extended_attributes": {"gce_zone": "europe-west1-b", "gce_network": "other-network"}}),
    )
    .unwrap();
    let v = vars(&p);
    assert!(v.contains(&("gce_project_id", "another-gcp-project")));
    assert!(v.contains(&("gce_account_file", "/secrets/another.json")));
    assert!(v.contains(&("gce_zone", "europe-west1-b")));
    assert!(v.contains(&("gce_network", "other-network")));
    assert!(v.contains(&("gce_source_image", "ubuntu-1404-trusty-v20160122")));
    // A request cannot point Packer at a key file of its choosing.
    let e = bake(
        &s,
        json!({"package": "kato", "base_os": "trusty", "cloud_provider_type": "gce",
               "extended_attributes": {"gce_account_file": "/etc/shadow"}}),
    )
    .unwrap_err();
    assert!(e.contains("gce_account_file"), "{e}");
}

#[test]
fn rosco_s_messages_for_what_cannot_be_baked() {
    let s = settings(CONFIG);
    let e = bake(
        &s,
        json!({"package": "kato", "base_os": "wily", "cloud_provider_type": "gce"}),
    )
    .unwrap_err();
    assert_eq!(e, "No virtualization settings found for 'wily'.");
    let e = bake(
        &s,
        json!({"package": "kato", "base_os": "coyote", "cloud_provider_type": "gce"}),
    )
    .unwrap_err();
    assert_eq!(
        e,
        "No source image or source image family found for 'coyote'."
    );
    let none = settings(&CONFIG.replace("  accounts:\n  - {name: my-google-account, project: some-gcp-project}\n  - {name: another-google-account, project: another-gcp-project, jsonPath: /secrets/another.json}\n", ""));
    let e = bake(
        &none,
        json!({"package": "kato", "base_os": "precise", "cloud_provider_type": "gce"}),
    )
    .unwrap_err();
    assert!(
        e.starts_with("Could not resolve Google account: (account_name=null)."),
        "{e}"
    );
    let e = bake(&s, json!({"package": "kato", "base_os": "precise", "cloud_provider_type": "gce", "account_name": "nope"})).unwrap_err();
    assert!(
        e.starts_with("Could not resolve Google account: (account_name=nope)."),
        "{e}"
    );
    let disabled = settings("google: {enabled: false}");
    let e = bake(
        &disabled,
        json!({"package": "kato", "base_os": "precise", "cloud_provider_type": "gce"}),
    )
    .unwrap_err();
    assert_eq!(e, "Unknown provider type 'gce'.");
}

#[test]
fn image_names_follow_gce_s_rule() {
    let s = settings(CONFIG);
    let p = bake(
        &s,
        json!({"package": "kato", "ami_name": "Kato_Web.App", "base_os": "precise", "cloud_provider_type": "gce", "ami_suffix": "v1.2"}),
    )
    .unwrap();
    assert_eq!(p.image_name, "kato-web-app-all-v1-2-precise");
    let long = "a".repeat(80);
    let p = bake(
        &s,
        json!({"package": long, "base_os": "precise", "cloud_provider_type": "gce"}),
    )
    .unwrap();
    assert_eq!(p.image_name.len(), 63);
    let e = bake(&s, json!({"package": "kato", "base_os": "precise", "cloud_provider_type": "gce", "ami_name": "9lives"})).unwrap_err();
    assert!(
        e.contains("not a GCE image name") && e.contains("ami_name"),
        "{e}"
    );
    // The suffix still stays out of the identity.
    let a = bake(&s, json!({"package": "kato", "base_os": "precise", "cloud_provider_type": "gce", "ami_suffix": "1"})).unwrap();
    let b = bake(&s, json!({"package": "kato", "base_os": "precise", "cloud_provider_type": "gce", "ami_suffix": "2"})).unwrap();
    assert_eq!(a.identity.digest, b.identity.digest);
}

#[test]
fn the_deprecated_defaults_merge_under_the_current_ones() {
    let s = settings(CONFIG);
    let ids: Vec<String> = find("gce")
        .unwrap()
        .base_images(&s)
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(
        ids,
        ["precise", "centos", "xenial", "yakkety", "coyote", "trusty"]
    );
    let d = s.google.defaults();
    assert_eq!(d.zone.as_deref(), Some("us-central1-a"));
    assert_eq!(d.subnetwork.as_deref(), Some("custom-subnetwork"));
}

#[test]
fn the_result_is_the_image_name_referenced_by_its_compute_url() {
    let s = settings(CONFIG);
    let p = bake(&s, json!({"package": "kato", "base_os": "precise", "cloud_provider_type": "gce", "build_number": "7"})).unwrap();
    let record = test_record(&p, "global", json!({"build_number": "7"}));
    let mut outcome = Outcome::default();
    outcome
        .artifacts
        .push((String::new(), "kato-all-1700000000000-precise".into()));
    let run = test_run(&record);
    let d = find("gce").unwrap().details(run, &outcome);
    assert_eq!(d.ami, None);
    assert_eq!(
        d.image_name.as_deref(),
        Some("kato-all-1700000000000-precise")
    );
    let a = d.artifact.unwrap();
    assert_eq!(a.kind.as_deref(), Some("gce/image"));
    assert_eq!(
        a.reference.as_deref(),
        Some(
            "https://compute.googleapis.com/compute/v1/projects/some-gcp-project/global/images/kato-all-1700000000000-precise"
        )
    );
    assert_eq!(a.metadata.unwrap()["build_number"], "7");
}
