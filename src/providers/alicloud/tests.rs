//! Rosco's `AliCloudBakeHandlerSpec`, case by case (kiln's own code, Rosco's expectations), with
//! kiln's differences said where they are: the real image-name and package rules instead of
//! Rosco's mocks, and the access keys in Packer's environment instead of its variables.

use crate::providers::spec_support::{
    PACKAGES_NAME, PACKAGES_PARAMETER, Spec, details_of, expect, vars,
};
use serde_json::json;

const REGION: &str = "cn-hangzhou";
const UBUNTU: &str = "ubuntu_16_04_64.vhd";
const TRUSTY: &str = "trusty_16_04_64.vhd";

fn spec(extra: &str) -> Spec {
    let yaml = format!(
        r#"
alicloud:
  enabled: true
  bakeryDefaults:
    templateFile: alicloud_template.json
{extra}
    baseImages:
    - baseImage: {{id: ubuntu, packageType: DEB}}
      virtualizationSettings:
      - {{region: {REGION}, instanceType: ecs.c5.large, sourceImage: {UBUNTU}, sshUserName: root}}
      - {{region: {REGION}, instanceType: ecs.g5.large, sourceImage: {UBUNTU}, sshUserName: root}}
    - baseImage: {{id: trusty, packageType: DEB}}
      virtualizationSettings:
      - {{region: {REGION}, instanceType: ecs.c5.large, sourceImage: {TRUSTY}, sshUserName: root}}
"#
    );
    Spec::new(
        &yaml,
        &["alicloud_template.json", "somePackerTemplate.json"],
    )
}

fn request(extra: serde_json::Value) -> serde_json::Value {
    let mut body = json!({
        "user": "someuser@gmail.com",
        "package": PACKAGES_NAME,
        "base_os": "ubuntu",
        "cloud_provider_type": "alicloud",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn ubuntu_expected(s: &Spec, source: &str, image: &str) -> Vec<(String, String)> {
    let dir = s.config_dir();
    [
        ("alicloud_region", REGION),
        ("alicloud_ssh_username", "root"),
        ("alicloud_instance_type", "ecs.c5.large"),
        ("alicloud_source_image", source),
        ("alicloud_target_image", image),
        ("repository", "http://some-debian-repository"),
        ("package_type", "deb"),
        ("packages", PACKAGES_PARAMETER),
        ("configDir", dir.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn produces_all_required_parameters_for_ubuntu() {
    let s = spec("");
    let p = s.prepare(REGION, request(json!({}))).unwrap();
    assert_eq!(p.image_name, "kato-all-1470391070464-ubuntu");
    let want: Vec<(String, String)> = ubuntu_expected(&s, UBUNTU, &p.image_name);
    assert_eq!(vars(&p), want.into_iter().collect());
    assert_eq!(p.plan.template, s.template("alicloud_template.json"));
    assert!(p.plan.env.is_empty(), "no keys configured, none passed");
}

#[test]
fn the_requests_base_ami_overrides_the_source_image() {
    let s = spec("");
    let p = s
        .prepare(REGION, request(json!({"base_ami": "ubuntu_14_04_64.vhd"})))
        .unwrap();
    let want = ubuntu_expected(&s, "ubuntu_14_04_64.vhd", &p.image_name);
    assert_eq!(vars(&p), want.into_iter().collect());
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
    let want = ubuntu_expected(&s, UBUNTU, &p.image_name);
    assert_eq!(vars(&p), want.into_iter().collect());
}

#[test]
fn extended_attributes_are_added() {
    let s = spec("");
    let attrs =
        json!({"extended_attributes": {"someAttr1": "someValue1", "someAttr2": "someValue2"}});
    let p = s.prepare(REGION, request(attrs)).unwrap();
    let mut want: std::collections::BTreeMap<_, _> = ubuntu_expected(&s, UBUNTU, &p.image_name)
        .into_iter()
        .collect();
    want.extend(expect(&[
        ("someAttr1", "someValue1"),
        ("someAttr2", "someValue2"),
    ]));
    assert_eq!(vars(&p), want);
}

#[test]
fn unknown_os_and_unknown_region_are_400s_with_roscos_messages() {
    let s = spec("");
    let e = s
        .prepare(REGION, request(json!({"base_os": "centos"})))
        .unwrap_err();
    assert_eq!(e, "No virtualization settings found for 'centos'.");
    let e = s
        .prepare("cn-beijing", request(json!({"base_os": "trusty"})))
        .unwrap_err();
    assert_eq!(
        e,
        "No virtualization settings found for region 'cn-beijing', operating system 'trusty'."
    );
}

#[test]
fn no_source_image_anywhere_is_a_400_naming_both_places() {
    let s = Spec::new(
        "alicloud:\n  enabled: true\n  bakeryDefaults:\n    baseImages:\n    - baseImage: {id: ubuntu}\n      virtualizationSettings:\n      - {region: cn-hangzhou, instanceType: ecs.c5.large}\n",
        &["alicloud.json"],
    );
    let e = s.prepare(REGION, request(json!({}))).unwrap_err();
    assert!(e.contains("base_ami") && e.contains("sourceImage"), "{e}");
}

#[test]
fn the_bake_key_ends_in_the_region_and_ignores_ami_suffix() {
    let s = spec("");
    let p = s
        .prepare(REGION, request(json!({"ami_name": "kato-app"})))
        .unwrap();
    assert_eq!(
        p.key,
        "bake:alicloud:ubuntu:kato-app:kato|nflx-djangobase-enhanced_0.1-h12.170cdbd_all|mongodb:cn-hangzhou"
    );
    let one = s
        .prepare(REGION, request(json!({"ami_suffix": "1.0"})))
        .unwrap();
    let two = s
        .prepare(REGION, request(json!({"ami_suffix": "2.0"})))
        .unwrap();
    assert_eq!(
        one.key,
        "bake:alicloud:ubuntu:kato|nflx-djangobase-enhanced_0.1-h12.170cdbd_all|mongodb:cn-hangzhou"
    );
    assert_eq!(one.key, two.key);
}

fn trusty_with(
    attrs: serde_json::Value,
) -> (Spec, std::collections::BTreeMap<String, String>, String) {
    let s = spec("");
    let body = json!({
        "user": "someuser@gmail.com",
        "package": "nflx-djangobase-enhanced_0.1-h12.170cdbd_all",
        "base_os": "trusty",
        "build_host": "http://some-build-server:8080",
        "cloud_provider_type": "alicloud",
        "extended_attributes": attrs,
        "build_info_url": "http://some-build-server:8080/repogroup/repo/builds/320282",
    });
    let p = s.prepare(REGION, body).unwrap();
    let got = vars(&p);
    (s, got, p.image_name)
}

fn trusty_expected(
    s: &Spec,
    image: &str,
    extra: &[(&str, &str)],
) -> std::collections::BTreeMap<String, String> {
    let dir = s.config_dir();
    let mut want = expect(&[
        ("alicloud_region", REGION),
        ("alicloud_ssh_username", "root"),
        ("alicloud_instance_type", "ecs.c5.large"),
        ("alicloud_source_image", TRUSTY),
        ("alicloud_target_image", image),
        ("package_type", "deb"),
        ("repository", "http://some-debian-repository"),
        ("packages", "nflx-djangobase-enhanced=0.1-h12.170cdbd"),
        ("configDir", &dir),
        // Rosco's spec mocks this; its real factory (and kiln's) makes this one.
        ("appversion", "nflx-djangobase-enhanced-0.1"),
        ("build_host", "http://some-build-server:8080"),
        (
            "build_info_url",
            "http://some-build-server:8080/repogroup/repo/builds/320282",
        ),
    ]);
    want.extend(expect(extra));
    want
}

#[test]
fn share_with_names_each_account() {
    let (s, got, image) = trusty_with(json!({"share_with": "000001, 000002"}));
    let want = trusty_expected(
        &s,
        &image,
        &[("share_with_1", "000001"), ("share_with_2", "000002")],
    );
    assert_eq!(got, want);
}

#[test]
fn copy_to_names_each_region() {
    let (s, got, image) = trusty_with(json!({"copy_to": "cn-beijing, cn-shanghai"}));
    let want = trusty_expected(
        &s,
        &image,
        &[("copy_to_1", "cn-beijing"), ("copy_to_2", "cn-shanghai")],
    );
    assert_eq!(got, want);
}

#[test]
fn vswitch_vpc_and_keys_follow_roscos_conditions_and_keys_go_to_the_environment() {
    let s = spec(
        "    alicloudAccessKey: LTAI-access\n    alicloudSecretKey: the-secret-key\n    alicloudVSwitchId: vsw-1\n    alicloudVpcId: vpc-1",
    );
    let p = s.prepare(REGION, request(json!({}))).unwrap();
    let got = vars(&p);
    assert_eq!(got["alicloud_vswitch_id"], "vsw-1");
    assert_eq!(got["alicloud_vpc_id"], "vpc-1");
    // Rosco passes them as alicloud_access_key/alicloud_secret_key; kiln never on argv.
    assert!(!got.contains_key("alicloud_access_key") && !got.contains_key("alicloud_secret_key"));
    assert!(!format!("{:?}", p.plan.variables).contains("the-secret-key"));
    assert!(!p.identity.inputs.to_string().contains("the-secret-key"));
    assert_eq!(
        p.plan.env,
        [
            ("ALICLOUD_ACCESS_KEY".to_string(), "LTAI-access".to_string()),
            (
                "ALICLOUD_SECRET_KEY".to_string(),
                "the-secret-key".to_string()
            )
        ]
    );
    // Only both keys count, as in Rosco.
    let half = spec("    alicloudAccessKey: LTAI-access");
    assert!(
        half.prepare(REGION, request(json!({})))
            .unwrap()
            .plan
            .env
            .is_empty()
    );
    assert!(!format!("{:?}", half.settings.alicloud).contains("the-secret-key"));
    assert!(!format!("{:?}", s.settings.alicloud).contains("the-secret-key"));
}

#[test]
fn image_names_follow_ecs_rules() {
    let s = spec("");
    for (name, why) in [
        ("1kato", "may not start with '1'"),
        ("kato app", "' ' not allowed"),
        ("https://x", "http:// or https://"),
    ] {
        let e = s
            .prepare(REGION, request(json!({"ami_name": name})))
            .unwrap_err();
        assert!(e.contains(why) && e.contains("ami_name"), "{name}: {e}");
    }
    let long = "k".repeat(110);
    let e = s
        .prepare(REGION, request(json!({"ami_name": long})))
        .unwrap_err();
    assert!(e.contains("2 to 128"), "{e}");
    s.prepare(REGION, request(json!({"ami_name": "kato_app:1.0-x"})))
        .unwrap();
}

#[test]
fn the_artifact_lists_each_region_from_the_builders_artifact_id() {
    // Packer 1.6.6's alicloud-ecs Artifact: Id() is sorted `region:image` pairs joined by ','
    // and String() "Alicloud images were created:\n\n<region>: <id>…" (builder/alicloud/ecs).
    let log = include_str!("../../../tests/fixtures/output/alicloud-ecs.log");
    let d = details_of("alicloud", REGION, "kato-all-1470391070464-ubuntu", log);
    assert_eq!(d.ami.as_deref(), Some("m-12345abced"));
    assert_eq!(
        d.image_name.as_deref(),
        Some("kato-all-1470391070464-ubuntu")
    );
    assert_eq!(
        d.regions,
        Some(vec!["cn-beijing".into(), "cn-hangzhou".into()])
    );
    let a = d.artifact.unwrap();
    assert_eq!(a.kind.as_deref(), Some("alicloud/image"));
    assert_eq!(a.location.as_deref(), Some(REGION));
    assert_eq!(a.reference.as_deref(), Some("m-12345abced"));
    assert_eq!(d.artifacts.unwrap().len(), 2);
    // No artifact line: no image id, as Rosco's "returns null for missing image id".
    let none = details_of(
        "alicloud",
        REGION,
        "kato",
        "1,,ui,say,==> alicloud-ecs: Creating image: kato\n",
    );
    assert_eq!(none.ami, None);
}
