//! Rosco's `HuaweiCloudBakeHandlerSpec`, case by case (kiln's own code, Rosco's expectations),
//! with the real image-name and package rules instead of Rosco's mocks, and the password in
//! Packer's environment instead of a masked variable.

use crate::providers::spec_support::{PACKAGES_NAME, Spec, details_of, expect, vars};
use serde_json::json;
use std::collections::BTreeMap;

const REGION: &str = "cn-north-1";
const UBUNTU: &str = "65da34a6-c829-43f7-a70e-f11fa26816dc";
const TRUSTY: &str = "76da34a6-c840-43f7-a79e-f11fa26817bb";

fn spec(extra: &str) -> Spec {
    let yaml = format!(
        r#"
huaweicloud:
  enabled: true
  bakeryDefaults:
    templateFile: huaweicloud_template.json
{extra}
    baseImages:
    - baseImage: {{id: ubuntu, packageType: DEB}}
      virtualizationSettings:
      - {{region: {REGION}, eipType: 5_bgp, sshUserName: root, instanceType: s3.medium.2, sourceImageId: {UBUNTU}}}
    - baseImage: {{id: trusty, packageType: DEB}}
      virtualizationSettings:
      - {{region: {REGION}, eipType: 5_bgp, sshUserName: root, instanceType: c3.large.4, sourceImageId: {TRUSTY}}}
"#
    );
    Spec::new(
        &yaml,
        &["huaweicloud_template.json", "somePackerTemplate.json"],
    )
}

fn request(extra: serde_json::Value) -> serde_json::Value {
    let mut body = json!({
        "user": "someuser@gmail.com",
        "package": PACKAGES_NAME,
        "base_os": "ubuntu",
        "cloud_provider_type": "huaweicloud",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn expected(
    s: &Spec,
    source: &str,
    image: &str,
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let dir = s.config_dir();
    let mut want = expect(&[
        ("huaweicloud_region", REGION),
        ("huaweicloud_eip_type", "5_bgp"),
        ("huaweicloud_ssh_username", "root"),
        ("huaweicloud_instance_type", "s3.medium.2"),
        ("huaweicloud_source_image_id", source),
        ("huaweicloud_image_name", image),
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
    assert_eq!(p.image_name, "kato-all-1470391070464-ubuntu");
    assert_eq!(vars(&p), expected(&s, UBUNTU, &p.image_name, &[]));
    assert_eq!(p.plan.template, s.template("huaweicloud_template.json"));
    assert!(p.plan.env.is_empty());
}

#[test]
fn the_requests_base_ami_overrides_the_source_image_id() {
    let s = spec("");
    let p = s
        .prepare(REGION, request(json!({"base_ami": "ubuntu_14_04_64.vhd"})))
        .unwrap();
    assert_eq!(
        vars(&p),
        expected(&s, "ubuntu_14_04_64.vhd", &p.image_name, &[])
    );
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
}

#[test]
fn extended_attributes_are_added() {
    let s = spec("");
    let attrs =
        json!({"extended_attributes": {"someAttr1": "someValue1", "someAttr2": "someValue2"}});
    let p = s.prepare(REGION, request(attrs)).unwrap();
    let want = expected(
        &s,
        UBUNTU,
        &p.image_name,
        &[("someAttr1", "someValue1"), ("someAttr2", "someValue2")],
    );
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
        .prepare("cn-north-4", request(json!({"base_os": "trusty"})))
        .unwrap_err();
    assert_eq!(
        e,
        "No virtualization settings found for region 'cn-north-4', operating system 'trusty'."
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
        "bake:huaweicloud:ubuntu:kato-app:kato|nflx-djangobase-enhanced_0.1-h12.170cdbd_all|mongodb:cn-north-1"
    );
    let one = s
        .prepare(REGION, request(json!({"ami_suffix": "1.0"})))
        .unwrap();
    let two = s
        .prepare(REGION, request(json!({"ami_suffix": "2.0"})))
        .unwrap();
    assert_eq!(one.key, two.key);
}

fn trusty(attrs: serde_json::Value) -> (Spec, crate::providers::Prepared) {
    let s = spec("");
    let body = json!({
        "user": "someuser@gmail.com",
        "package": "nflx-djangobase-enhanced_0.1-h12.170cdbd_all",
        "base_os": "trusty",
        "build_host": "http://some-build-server:8080",
        "cloud_provider_type": "huaweicloud",
        "extended_attributes": attrs,
        "build_info_url": "http://some-build-server:8080/repogroup/repo/builds/320282",
    });
    let p = s.prepare(REGION, body).unwrap();
    (s, p)
}

fn trusty_expected(s: &Spec, image: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let dir = s.config_dir();
    let mut want = expect(&[
        ("huaweicloud_region", REGION),
        ("huaweicloud_eip_type", "5_bgp"),
        ("huaweicloud_ssh_username", "root"),
        ("huaweicloud_instance_type", "c3.large.4"),
        ("huaweicloud_source_image_id", TRUSTY),
        ("huaweicloud_image_name", image),
        ("package_type", "deb"),
        ("repository", "http://some-debian-repository"),
        ("packages", "nflx-djangobase-enhanced=0.1-h12.170cdbd"),
        ("configDir", &dir),
        // Rosco's spec mocks the appversion; its real factory (and kiln's) makes this one.
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
fn share_with_and_copy_to_name_each_entry() {
    let (s, p) = trusty(json!({"share_with": "000001, 000002"}));
    let want = trusty_expected(
        &s,
        &p.image_name,
        &[("share_with_1", "000001"), ("share_with_2", "000002")],
    );
    assert_eq!(vars(&p), want);
    let (s, p) = trusty(json!({"copy_to": "cn-north-4, cn-east-3"}));
    let want = trusty_expected(
        &s,
        &p.image_name,
        &[("copy_to_1", "cn-north-4"), ("copy_to_2", "cn-east-3")],
    );
    assert_eq!(vars(&p), want);
}

#[test]
fn account_and_network_settings_follow_roscos_conditions_and_the_password_goes_to_the_environment()
{
    let s = spec(
        "    authUrl: https://iam.example.com/v3\n    username: baker\n    password: the-password\n    projectName: cn-north-1\n    domainName: example\n    insecure: false\n    vpcId: vpc-1\n    subnetId: subnet-1\n    securityGroup: sg-1\n    eipBandwidthSize: 2",
    );
    let p = s.prepare(REGION, request(json!({}))).unwrap();
    let want = expected(
        &s,
        UBUNTU,
        &p.image_name,
        &[
            ("huaweicloud_auth_url", "https://iam.example.com/v3"),
            ("huaweicloud_username", "baker"),
            ("huaweicloud_project_name", "cn-north-1"),
            ("huaweicloud_domain_name", "example"),
            ("huaweicloud_insecure", "false"),
            ("huaweicloud_vpc_id", "vpc-1"),
            ("huaweicloud_subnet_id", "subnet-1"),
            ("huaweicloud_security_group", "sg-1"),
            ("huaweicloud_eip_bandwidth_size", "2"),
        ],
    );
    assert_eq!(vars(&p), want);
    assert!(
        !format!("{:?}", p.plan)
            .replace("HUAWEICLOUD_PASSWORD\", \"the-password", "")
            .contains("the-password")
    );
    assert!(!p.identity.inputs.to_string().contains("the-password"));
    assert!(!format!("{:?}", s.settings.huaweicloud).contains("the-password"));
    assert_eq!(
        p.plan.env,
        [(
            "HUAWEICLOUD_PASSWORD".to_string(),
            "the-password".to_string()
        )]
    );
    // A bandwidth of 0 is left out, as in Rosco.
    let zero = spec("    eipBandwidthSize: 0");
    let p = zero.prepare(REGION, request(json!({}))).unwrap();
    assert!(!vars(&p).contains_key("huaweicloud_eip_bandwidth_size"));
}

#[test]
fn image_names_follow_ims_rules() {
    let s = spec("");
    let e = s
        .prepare(REGION, request(json!({"ami_name": "k".repeat(110)})))
        .unwrap_err();
    assert!(e.contains("1 to 128") && e.contains("ami_name"), "{e}");
    let e = s
        .prepare(REGION, request(json!({"ami_name": "kato:app"})))
        .unwrap_err();
    assert!(e.contains("':' not allowed"), "{e}");
    // Request values are trimmed, so a name never starts with a space; the rule still says so.
    let e = crate::providers::huaweicloud::NAME_RULE
        .check(" kato")
        .unwrap_err();
    assert!(e.to_string().contains("may not start with ' '"), "{e}");
}

#[test]
fn the_artifact_is_the_builders_image_id_in_the_bakes_region() {
    // The plugin's artifact (as Rosco scrapes it): "An image was created: <image id>".
    let log = "1,,ui,say,==> huaweicloud-ecs: Creating the image: packer-test-abc\n\
               1,huaweicloud-ecs,artifact-count,1\n\
               1,huaweicloud-ecs,artifact,0,builder-id,huawei.huaweicloud\n\
               1,huaweicloud-ecs,artifact,0,id,77da34a6-c829-43f7-a79e-f11fa26816cc\n\
               1,huaweicloud-ecs,artifact,0,string,An image was created: 77da34a6-c829-43f7-a79e-f11fa26816cc\n\
               1,huaweicloud-ecs,artifact,0,end\n";
    let d = details_of("huaweicloud", REGION, "packer-test-abc", log);
    assert_eq!(
        d.ami.as_deref(),
        Some("77da34a6-c829-43f7-a79e-f11fa26816cc")
    );
    assert_eq!(d.image_name.as_deref(), Some("packer-test-abc"));
    let a = d.artifact.unwrap();
    assert_eq!(a.kind.as_deref(), Some("huaweicloud/image"));
    assert_eq!(a.location.as_deref(), Some(REGION));
}

#[test]
fn a_request_cannot_redirect_or_replace_the_clouds_credentials() {
    let s = spec("    password: the-password");
    for name in [
        "huaweicloud_auth_url",
        "huaweicloud_insecure",
        "huaweicloud_password",
        "huaweicloud_username",
        "alicloud_secret_key",
        "tencentcloud_secret_key",
        "oracle_pass_phrase",
    ] {
        let body = request(json!({"extended_attributes": {name: "https://evil.example/v3"}}));
        let e = s.prepare(REGION, body).unwrap_err();
        assert!(e.contains(name) && e.contains("operator"), "{name}: {e}");
    }
    // The key file's path is the operator's too (a host path).
    let body = request(
        json!({"extended_attributes": {"oracle_ssh_private_key_file_path": "/etc/shadow"}}),
    );
    assert!(s.prepare(REGION, body).unwrap_err().contains("host"));
}
