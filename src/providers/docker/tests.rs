//! Rosco's `DockerBakeHandlerSpec` cases: the variables, the tag's sources, the organization
//! prefix, Rosco's message, the repository-name rule, reuse despite a clock-made tag, and the
//! result's shape.

use crate::bake::BakeRequest;
use crate::builders::packer::output::{Outcome, PackerEvent, UiLevel};
use crate::config::Settings;
use crate::providers::RunContext;
use crate::providers::provider::test_record;
use crate::providers::recipe::{Prepared, RecipeContext};
use crate::providers::registry::{find, prepare};
use crate::services::source_images::NoLookup;
use serde_json::{Value, json};

const CONFIG: &str = r#"
docker:
  enabled: true
  bakeryDefaults:
    targetRepository: my-docker-repository:5000
    templateFile: docker_template.json
    baseImages:
    - baseImage: {id: ubuntu, packageType: deb}
      virtualizationSettings: {sourceImage: ubuntu:precise}
    - baseImage: {id: centos, packageType: rpm}
      virtualizationSettings: {sourceImage: centos:6}
"#;

fn bake_at(body: Value, now_ms: i64) -> Result<Prepared, String> {
    let settings: Settings = crate::config::load_str(CONFIG, &|_| None).unwrap().settings;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("docker_template.json"), "{}").unwrap();
    let req = BakeRequest::from_json(body.to_string().as_bytes()).map_err(|e| e.0)?;
    let ctx = RecipeContext {
        settings: &settings,
        config_dir: dir.path(),
        region: "global",
        now_ms,
        images: &NoLookup,
    };
    prepare(&req, &ctx).map_err(|e| e.to_string())
}

fn bake(body: Value) -> Result<Prepared, String> {
    bake_at(body, 1_700_000_000_000)
}

fn var<'a>(p: &'a Prepared, name: &str) -> Option<&'a str> {
    p.plan.variable(name)
}

#[test]
fn ubuntu_gets_rosco_s_variables_with_the_commit_as_tag() {
    let p = bake(json!({"package": "kato redis-server", "base_os": "ubuntu",
        "cloud_provider_type": "docker", "commit_hash": "35b6f1c"}))
    .unwrap();
    let names: Vec<&str> = p.plan.variables.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "docker_source_image",
            "docker_target_image",
            "docker_target_image_tag",
            "docker_target_repository"
        ]
    );
    assert_eq!(var(&p, "docker_source_image"), Some("ubuntu:precise"));
    assert_eq!(var(&p, "docker_target_image"), Some("kato"));
    assert_eq!(var(&p, "docker_target_image_tag"), Some("35b6f1c"));
    assert_eq!(
        var(&p, "docker_target_repository"),
        Some("my-docker-repository:5000")
    );
    assert_eq!(var(&p, "packages"), Some("kato redis-server"));
    assert_eq!(p.template_name, "docker_template.json");
}

#[test]
fn the_tag_attribute_wins_and_the_organization_prefixes_the_name() {
    let p = bake(
        json!({"package": "kato", "base_os": "centos", "cloud_provider_type": "docker",
        "commit_hash": "35b6f1c", "organization": "my-org",
        "extended_attributes": {"docker_target_image_tag": "my-tag"}}),
    )
    .unwrap();
    assert_eq!(var(&p, "docker_target_image"), Some("my-org/kato"));
    assert_eq!(var(&p, "docker_target_image_tag"), Some("my-tag"));
    assert_eq!(var(&p, "package_type"), Some("rpm"));
}

#[test]
fn without_a_tag_the_clock_tags_and_reuse_still_works() {
    let a = bake_at(
        json!({"package": "kato", "base_os": "ubuntu", "cloud_provider_type": "docker"}),
        1_700_000_000_001,
    )
    .unwrap();
    let b = bake_at(
        json!({"package": "kato", "base_os": "ubuntu", "cloud_provider_type": "docker"}),
        1_700_000_000_002,
    )
    .unwrap();
    assert_eq!(var(&a, "docker_target_image_tag"), Some("1700000000001"));
    assert_eq!(var(&a, "appversion"), Some("1700000000001"));
    assert_eq!(a.identity.digest, b.identity.digest);
    let tagged = bake(json!({"package": "kato", "base_os": "ubuntu", "cloud_provider_type": "docker", "commit_hash": "abc"})).unwrap();
    assert_ne!(a.identity.digest, tagged.identity.digest);
}

#[test]
fn rosco_s_message_and_the_repository_name_rule() {
    let e = bake(json!({"package": "kato", "base_os": "wily", "cloud_provider_type": "docker"}))
        .unwrap_err();
    assert_eq!(e, "No virtualization settings found for 'wily'.");
    let e = bake(json!({"package": "kato", "base_os": "ubuntu", "cloud_provider_type": "docker", "ami_name": "My_App"})).unwrap_err();
    assert!(
        e.contains("not a Docker repository name") && e.contains("ami_name"),
        "{e}"
    );
    let e = bake(json!({"package": "kato", "base_os": "ubuntu", "cloud_provider_type": "docker", "organization": "a//b"})).unwrap_err();
    assert!(e.contains("not a Docker repository name"), "{e}");
}

#[test]
fn the_result_is_the_pushed_repository() {
    let p = bake(json!({"package": "kato", "base_os": "ubuntu", "cloud_provider_type": "docker", "commit_hash": "35b6f1c"})).unwrap();
    let record = test_record(&p, "global", json!({}));
    let mut outcome = Outcome::default();
    outcome.feed(&PackerEvent::Ui {
        level: UiLevel::Say,
        text: "    docker (docker-tag): Repository: my-docker-repository:5000/kato:35b6f1c".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let d = find("docker").unwrap().details(
        RunContext {
            data_dir: dir.path(),
            record: &record,
        },
        &outcome,
    );
    assert_eq!(d.ami, None);
    assert_eq!(
        d.image_name.as_deref(),
        Some("my-docker-repository:5000/kato:35b6f1c")
    );
    let a = d.artifact.unwrap();
    assert_eq!(a.kind.as_deref(), Some("docker/image"));
    assert_eq!(a.name.as_deref(), Some("kato"));
    assert_eq!(
        a.reference.as_deref(),
        Some("my-docker-repository:5000/kato:35b6f1c")
    );
}
