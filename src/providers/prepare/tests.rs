//! Unit tests of `prepare`: what a request may influence, one spelling per template, the
//! identity of request-given secrets, and no panic on any input.

use crate::bake::BakeRequest;
use crate::builders::Builder;
use crate::config::Settings;
use crate::providers::recipe::{Prepared, RecipeContext};
use crate::providers::registry::prepare;
use crate::services::source_images::NoLookup;
use proptest::prelude::*;
use serde_json::{Value, json};

const CONFIG: &str = r#"
aws:
  enabled: true
  bakeryDefaults:
    maskedPackerParameters: [aws_secret_key, repo_password]
    baseImages:
    - baseImage: {id: ubuntu, packageType: deb}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-12345678}
    - baseImage: {id: bookworm, packageType: deb, builder: ebs-direct}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-12345678}
    - baseImage: {id: windows, packageType: nupkg, osType: windows}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-12345678}
templatesNeedingRoot: [./aws-chroot.json]
"#;

struct Fixture {
    settings: Settings,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for t in ["aws-ebs.json", "aws-chroot.json"] {
            std::fs::write(dir.path().join(t), "{}").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let settings = crate::config::load_str(CONFIG, &|_| None).unwrap().settings;
        Fixture { settings, dir }
    }

    fn prepare_in(&self, region: &str, body: &Value) -> Result<Prepared, String> {
        let req = BakeRequest::from_json(body.to_string().as_bytes()).map_err(|e| e.0)?;
        let ctx = RecipeContext {
            settings: &self.settings,
            config_dir: self.dir.path(),
            region,
            now_ms: 1,
            images: &NoLookup,
        };
        prepare(&req, &ctx).map_err(|e| e.to_string())
    }

    fn prepare(&self, body: Value) -> Result<Prepared, String> {
        self.prepare_in("us-east-1", &body)
    }
}

fn request(extra: Value) -> Value {
    let mut body = json!({"package": "nginx", "base_os": "ubuntu", "ami_suffix": "1"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn the_operators_variables_cannot_be_requested() {
    let f = Fixture::new();
    for owned in [
        "configDir",
        "aws_access_key",
        "aws_secret_key",
        "aws_session_token",
        "aws_ec2_endpoint",
    ] {
        let e = f
            .prepare(request(
                json!({"extended_attributes": {owned: "/tmp/evil"}}),
            ))
            .unwrap_err();
        assert!(
            e.contains(&format!("'{owned}'")) && e.contains("operator"),
            "{e}"
        );
    }
    let e = f
        .prepare(request(
            json!({"extended_attributes": {"qemu_kernel": "/x"}}),
        ))
        .unwrap_err();
    assert!(e.contains("qemu_kernel"), "{e}");
    let e = f
        .prepare(request(json!({"extended_attributes": {"a=b": "x"}})))
        .unwrap_err();
    assert!(e.contains("not a Packer variable name"), "{e}");
    for host_path in [
        "aws_ssh_private_key_file",
        "user_data_file",
        "output_directory",
        "http_dir",
        "Some_Path",
    ] {
        let e = f
            .prepare(request(
                json!({"extended_attributes": {host_path: "/etc/shadow"}}),
            ))
            .unwrap_err();
        assert!(
            e.contains(host_path) && e.contains("the bakery's host") && e.contains("var_file_name"),
            "{e}"
        );
    }
}

#[test]
fn the_builder_is_opted_into_per_base_image_or_per_bake_and_is_part_of_the_identity() {
    let f = Fixture::new();
    let packer = f.prepare(request(json!({}))).unwrap();
    assert_eq!(packer.plan.builder, Builder::Packer);
    assert!(packer.identity.inputs.get("builder").is_none());
    let by_attribute = f
        .prepare(request(
            json!({"extended_attributes": {"kiln_builder": "ebs-direct"}}),
        ))
        .unwrap();
    assert_eq!(by_attribute.plan.builder, Builder::EbsDirect);
    assert_eq!(by_attribute.identity.inputs["builder"], "ebs-direct");
    assert_ne!(by_attribute.identity.digest, packer.identity.digest);
    // kiln reads kiln_builder; Packer never sees it.
    assert!(
        !by_attribute
            .plan
            .variables
            .iter()
            .any(|(k, _)| k == "kiln_builder")
    );
    let by_base = f.prepare(request(json!({"base_os": "bookworm"}))).unwrap();
    assert_eq!(by_base.plan.builder, Builder::EbsDirect);
    // A bake may go back to Packer on an ebs-direct base.
    let back = f
        .prepare(request(
            json!({"base_os": "bookworm", "extended_attributes": {"kiln_builder": "packer"}}),
        ))
        .unwrap();
    assert_eq!(back.plan.builder, Builder::Packer);
}

#[test]
fn what_ebs_direct_cannot_honour_is_a_400_naming_the_field() {
    let f = Fixture::new();
    let ebs = json!({"kiln_builder": "ebs-direct"});
    let e = f
        .prepare(request(
            json!({"extended_attributes": ebs, "template_file_name": "aws-ebs.json"}),
        ))
        .unwrap_err();
    assert!(
        e.contains("kiln_builder") && e.contains("template_file_name"),
        "{e}"
    );
    let e = f
        .prepare(request(
            json!({"base_os": "windows", "package": "app", "extended_attributes": ebs}),
        ))
        .unwrap_err();
    assert!(e.contains("Windows"), "{e}");
    let e = f
        .prepare(request(
            json!({"extended_attributes": {"kiln_builder": "fast"}}),
        ))
        .unwrap_err();
    assert!(
        e.contains("kiln_builder") && e.contains("packer or ebs-direct"),
        "{e}"
    );
    let e = f
        .prepare(request(
            json!({"base_os": "bookworm", "template_file_name": "aws-ebs.json"}),
        ))
        .unwrap_err();
    assert!(e.contains("base image's builder"), "{e}");
}

#[test]
fn configdir_is_the_bakerys_and_every_spelling_of_a_template_is_one() {
    let f = Fixture::new();
    let plain = f
        .prepare(request(json!({"template_file_name": "aws-chroot.json"})))
        .unwrap();
    assert!(
        plain.plan.run_as_root,
        "templatesNeedingRoot lists ./aws-chroot.json"
    );
    let config_dir = plain
        .plan
        .variables
        .iter()
        .find(|(k, _)| k == "configDir")
        .unwrap();
    assert_eq!(config_dir.1, f.dir.path().display().to_string());
    for spelling in [
        "./aws-chroot.json",
        "sub/../aws-chroot.json",
        ".//aws-chroot.json",
    ] {
        let p = f
            .prepare(request(json!({"template_file_name": spelling})))
            .unwrap();
        assert_eq!(p.template_name, "aws-chroot.json", "{spelling}");
        assert!(p.plan.run_as_root, "{spelling}");
        assert_eq!(p.identity.digest, plain.identity.digest, "{spelling}");
    }
}

#[test]
fn request_given_secrets_are_never_the_same_bake() {
    let f = Fixture::new();
    let with = |pw: &str| {
        f.prepare(request(
            json!({"extended_attributes": {"repo_password": pw}}),
        ))
        .unwrap()
    };
    let (a, b, a_again) = (with("one"), with("two"), with("one"));
    assert_ne!(a.identity.digest, b.identity.digest);
    assert_ne!(a.identity.digest, a_again.identity.digest, "never reused");
    let shown = a.identity.inputs.to_string();
    assert!(!shown.contains("\"one\""), "{shown}");
    assert!(shown.contains("never reused"), "{shown}");
    // Without request-given secrets, identical requests stay the same bake.
    let plain = || f.prepare(request(json!({}))).unwrap().identity.digest;
    assert_eq!(plain(), plain());
}

#[test]
fn package_tokens_from_every_source_are_checked() {
    let f = Fixture::new();
    let e = f
        .prepare(request(
            json!({"package": "nginx -oDebug::pkgProblemResolver=1"}),
        ))
        .unwrap_err();
    assert!(e.starts_with("package: package '-oDebug"), "{e}");
    let e = f
        .prepare(request(
            json!({"extended_attributes": {"packages": "a;id"}}),
        ))
        .unwrap_err();
    assert!(e.starts_with("extended_attributes.packages: "), "{e}");
    let e = f
        .prepare(request(json!({"package": "hello", "package_artifacts": [
            {"type": "deb", "reference": "https://ci/x/hello_1.0$(id)_all.deb"}]})))
        .unwrap_err();
    assert!(e.starts_with("package_artifacts: "), "{e}");
}

#[test]
fn the_region_in_the_url_is_request_text_too() {
    let f = Fixture::new();
    for region in ["us-east-1\n", "{{env `HOME`}}"] {
        let e = f.prepare_in(region, &request(json!({}))).unwrap_err();
        assert!(e.starts_with("region (in the URL path): "), "{e}");
    }
}

#[test]
fn a_command_line_beyond_arg_max_is_a_400_not_a_failed_bake() {
    let f = Fixture::new();
    let attrs: serde_json::Map<String, Value> = (0..40)
        .map(|i| (format!("big_{i}"), Value::String("x".repeat(120_000))))
        .collect();
    let e = f
        .prepare(request(json!({"extended_attributes": attrs})))
        .unwrap_err();
    assert!(e.contains("ARG_MAX"), "{e}");
}

/// Every request field, as a string or inside the places strings go.
const FIELDS: [&str; 33] = [
    "request_id",
    "user",
    "package",
    "build_host",
    "job",
    "build_number",
    "commit_hash",
    "build_info_url",
    "cloud_provider_type",
    "base_label",
    "base_os",
    "base_name",
    "base_ami",
    "vm_type",
    "store_type",
    "ami_name",
    "ami_suffix",
    "instance_type",
    "organization",
    "template_file_name",
    "var_file_name",
    "account_name",
    "spinnaker_execution_id",
    "publisher",
    "offer",
    "sku",
    "os_type",
    "package_type",
    "custom_managed_image_name",
    "extended_attributes",
    "package_artifacts",
    "upgrade",
    "enhanced_networking",
];

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        ".{0,40}",
        any::<String>(),
        "[a-z{}$`'\"\\\\ \\-;|&=/.:_0-9\n\t\u{0}\u{1b}]{0,30}",
        (0usize..300_000).prop_map(|n| "a".repeat(n)),
        Just("{{env `AWS_SECRET_ACCESS_KEY`}}".to_string()),
        Just("ubuntu".to_string()),
        Just("aws".to_string()),
        Just("kiln_timeout".to_string()),
        Just("18446744073709551615h".to_string()),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any_text().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any_text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Item 7: the request path never panics, whatever any field holds.
    #[test]
    fn preparing_any_request_never_panics(
        fields in prop::collection::vec((0usize..FIELDS.len(), any_value()), 0..8),
        kiln_attrs in prop::collection::vec((prop_oneof![Just("kiln_timeout"), Just("kiln_idle_timeout"), Just("copy_to"), Just("share_with"), Just("packages"), Just("repository")], any_text()), 0..3),
        region in prop_oneof![Just("us-east-1".to_string()), any_text()],
    ) {
        let f = Fixture::new();
        let mut body = request(json!({}));
        for (i, v) in fields {
            body[FIELDS[i]] = v;
        }
        if !kiln_attrs.is_empty() {
            let attrs: serde_json::Map<String, Value> = kiln_attrs
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v)))
                .collect();
            body["extended_attributes"] = Value::Object(attrs);
        }
        let _ = f.prepare_in(&region, &body);
        let _ = BakeRequest::from_json(body.to_string().as_bytes());
    }

    #[test]
    fn reading_any_body_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = BakeRequest::from_json(&bytes);
    }
}
