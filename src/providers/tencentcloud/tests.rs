//! Rosco's `TencentCloudBakeHandlerSpec`, case by case (kiln's own code, Rosco's expectations),
//! with the real image-name and package rules instead of Rosco's mocks, and the secret id and
//! key in Packer's environment instead of its variables.

use crate::providers::spec_support::{PACKAGES_NAME, Spec, details_of, expect, vars};
use serde_json::json;
use std::collections::BTreeMap;

const REGION: &str = "ap-guangzhou";
const ZONE: &str = "ap-guangzhou-3";
const INSTANCE_TYPE: &str = "S3.SMALL1";
const SOURCE_IMAGE_ID: &str = "img-pyqx34y1";

fn spec(extra: &str) -> Spec {
    let yaml = format!(
        r#"
tencentcloud:
  enabled: true
  bakeryDefaults:
    templateFile: tencentcloud_template.json
{extra}
    baseImages:
    - baseImage: {{id: ubuntu-1604, packageType: DEB}}
      virtualizationSettings:
      - {{region: {REGION}, zone: {ZONE}, instanceType: {INSTANCE_TYPE}, sourceImageId: {SOURCE_IMAGE_ID}, sshUserName: ubuntu}}
"#
    );
    Spec::new(
        &yaml,
        &["tencentcloud_template.json", "somePackerTemplate.json"],
    )
}

fn request(extra: serde_json::Value) -> serde_json::Value {
    let mut body = json!({
        "user": "someuser@gmail.com",
        "package": PACKAGES_NAME,
        "base_os": "ubuntu-1604",
        "cloud_provider_type": "tencentcloud",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn expected(s: &Spec, image: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let dir = s.config_dir();
    let mut want = expect(&[
        ("tencentcloud_source_image_id", SOURCE_IMAGE_ID),
        ("tencentcloud_region", REGION),
        ("tencentcloud_zone", ZONE),
        ("tencentcloud_ssh_username", "ubuntu"),
        ("tencentcloud_instance_type", INSTANCE_TYPE),
        ("tencentcloud_target_image", image),
        ("repository", "http://some-debian-repository"),
        ("package_type", "deb"),
        // What Rosco's real factory makes of PACKAGES_NAME (its spec mocks it).
        (
            "packages",
            "kato nflx-djangobase-enhanced=0.1-h12.170cdbd mongodb",
        ),
        ("configDir", &dir),
    ]);
    want.extend(expect(extra));
    want
}

#[test]
fn produces_all_required_parameters_for_ubuntu() {
    let s = spec("");
    let p = s.prepare(REGION, request(json!({}))).unwrap();
    assert_eq!(p.image_name, "kato-all-1470391070464-ubuntu-1604");
    assert_eq!(vars(&p), expected(&s, &p.image_name, &[]));
    assert_eq!(p.plan.template, s.template("tencentcloud_template.json"));
    assert!(p.plan.env.is_empty());
}

#[test]
fn the_requests_template_file_name_overrides_the_template() {
    let s = spec("");
    let p = s
        .prepare(
            REGION,
            request(json!({"template_file_name": "somePackerTemplate.json"})),
        )
        .unwrap();
    assert_eq!(p.plan.template, s.template("somePackerTemplate.json"));
    assert_eq!(vars(&p), expected(&s, &p.image_name, &[]));
}

#[test]
fn extended_attributes_are_added() {
    let s = spec("");
    let attrs =
        json!({"extended_attributes": {"someAttr1": "someValue1", "someAttr2": "someValue2"}});
    let p = s.prepare(REGION, request(attrs)).unwrap();
    let want = expected(
        &s,
        &p.image_name,
        &[("someAttr1", "someValue1"), ("someAttr2", "someValue2")],
    );
    assert_eq!(vars(&p), want);
}

#[test]
fn the_requests_base_ami_overrides_the_source_image_id() {
    let s = spec("");
    let p = s
        .prepare(REGION, request(json!({"base_ami": "img-other"})))
        .unwrap();
    assert_eq!(vars(&p)["tencentcloud_source_image_id"], "img-other");
}

#[test]
fn unknown_os_and_unknown_region_are_400s_with_roscos_messages() {
    let s = spec("");
    let e = s
        .prepare(REGION, request(json!({"base_os": "centos"})))
        .unwrap_err();
    assert_eq!(e, "No virtualization settings found for 'centos'.");
    let e = s.prepare("ap-beijing", request(json!({}))).unwrap_err();
    assert_eq!(
        e,
        "No virtualization settings found for region 'ap-beijing', operating system 'ubuntu-1604'"
    );
}

#[test]
fn the_bake_key_ends_in_the_region_and_ignores_ami_suffix() {
    let s = spec("");
    let p = s
        .prepare(REGION, request(json!({"ami_name": "kato-app"})))
        .unwrap();
    assert_eq!(
        p.key,
        "bake:tencentcloud:ubuntu-1604:kato-app:kato|nflx-djangobase-enhanced_0.1-h12.170cdbd_all|mongodb:ap-guangzhou"
    );
    let one = s
        .prepare(REGION, request(json!({"ami_suffix": "1.0"})))
        .unwrap();
    let two = s
        .prepare(REGION, request(json!({"ami_suffix": "2.0"})))
        .unwrap();
    assert_eq!(one.key, two.key);
}

#[test]
fn network_settings_follow_roscos_conditions_and_keys_go_to_the_environment() {
    let s = spec(
        "    secretId: AKID-example\n    secretKey: the-secret-key\n    subnetId: subnet-1\n    vpcId: vpc-1\n    associatePublicIpAddress: false",
    );
    let p = s
        .prepare(REGION, request(json!({"build_info_url": "http://ci/1"})))
        .unwrap();
    let want = expected(
        &s,
        &p.image_name,
        &[
            ("tencentcloud_subnet_id", "subnet-1"),
            ("tencentcloud_vpc_id", "vpc-1"),
            ("tencentcloud_associate_public_ip_address", "false"),
        ],
    );
    // Rosco passes tencentcloud_secret_id/_key and no build_info_url; kiln neither on argv.
    assert_eq!(vars(&p), want);
    assert!(!format!("{:?}", p.plan.variables).contains("the-secret-key"));
    assert!(!p.identity.inputs.to_string().contains("the-secret-key"));
    assert!(!format!("{:?}", s.settings.tencentcloud).contains("the-secret-key"));
    assert_eq!(
        p.plan.env,
        [
            (
                "TENCENTCLOUD_SECRET_ID".to_string(),
                "AKID-example".to_string()
            ),
            (
                "TENCENTCLOUD_SECRET_KEY".to_string(),
                "the-secret-key".to_string()
            )
        ]
    );
    let half = spec("    secretKey: the-secret-key");
    assert!(
        half.prepare(REGION, request(json!({})))
            .unwrap()
            .plan
            .env
            .is_empty()
    );
}

#[test]
fn roscos_shipped_spelling_ssh_username_binds() {
    let s = Spec::new(
        "tencentcloud:\n  enabled: true\n  bakeryDefaults:\n    baseImages:\n    - baseImage: {id: ubuntu-1604}\n      virtualizationSettings:\n      - {region: ap-guangzhou, zone: ap-guangzhou-3, instanceType: S3.SMALL1, sourceImageId: img-1, sshUsername: ubuntu}\n",
        &["tencentcloud.json"],
    );
    let p = s.prepare(REGION, request(json!({}))).unwrap();
    assert_eq!(vars(&p)["tencentcloud_ssh_username"], "ubuntu");
    assert_eq!(p.plan.template, s.template("tencentcloud.json"));
}

#[test]
fn image_names_follow_cvm_rules() {
    let s = spec("");
    let e = s
        .prepare(REGION, request(json!({"ami_name": "k".repeat(40)})))
        .unwrap_err();
    assert!(e.contains("1 to 60") && e.contains("ami_name"), "{e}");
    let e = s
        .prepare(REGION, request(json!({"ami_name": "kato app"})))
        .unwrap_err();
    assert!(e.contains("' ' not allowed"), "{e}");
}

#[test]
fn the_artifact_is_read_from_the_builders_artifact_id() {
    // Packer 1.6.6's tencentcloud-cvm Artifact: Id() is sorted `region:image` pairs joined by
    // ','; String() "Tencentcloud images(<region>: <id>) were created." (builder/tencentcloud/cvm).
    let log = include_str!("../../../tests/fixtures/output/tencentcloud-cvm.log");
    let d = details_of(
        "tencentcloud",
        REGION,
        "kato-all-1470391070464-ubuntu-1604",
        log,
    );
    assert_eq!(d.ami.as_deref(), Some("img-gu2hy024"));
    assert_eq!(
        d.image_name.as_deref(),
        Some("kato-all-1470391070464-ubuntu-1604")
    );
    assert_eq!(d.regions, Some(vec![REGION.to_string()]));
    let a = d.artifact.unwrap();
    assert_eq!(a.kind.as_deref(), Some("tencentcloud/image"));
    assert_eq!(a.reference.as_deref(), Some("img-gu2hy024"));
    let none = details_of(
        "tencentcloud",
        REGION,
        "kato",
        "1,,ui,say,==> tencentcloud-cvm: Trying to check image name: packer-test...\n",
    );
    assert_eq!(none.ami, None);
}
