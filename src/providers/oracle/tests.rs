//! Rosco's `OCIBakeHandlerSpec`, case by case (kiln's own code, Rosco's expectations), with the
//! real image-name and package rules instead of Rosco's mocks, and each account's key passphrase
//! in Packer's environment instead of the `oracle_pass_phrase` variable.

use crate::providers::spec_support::{PACKAGES_NAME, Spec, details_of, expect, vars};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const REGION: &str = "some-region";

fn spec() -> Spec {
    let yaml = r#"
oracle:
  enabled: true
  bakeryDefaults:
    availabilityDomain: "lrFb:US-ASHBURN-AD-1"
    subnetId: ocid1.subnet.oc1.iad.subnet
    instanceShape: VM.Standard1.1
    templateFile: oracle_template.json
    baseImages:
    - baseImage: {id: ubuntu16_04, packageType: DEB}
      virtualizationSettings: {baseImageId: ocid1.image.oc1.iad.ubuntu, sshUserName: ubuntu}
    - baseImage: {id: centos_7, packageType: DEB}
      virtualizationSettings: {baseImageId: ocid1.image.oc1.iad.centos, sshUserName: root}
  accounts:
  - name: account1
    compartmentId: ocid1.compartment.oc1..compartment
    userId: ocid1.user.oc1..user
    fingerprint: myfingerprint
    sshPrivateKeyFilePath: mysshPrivateKeyFilePath
    privateKeyPassphrase: mypassphrase
    tenancyId: ocid1.tenancy.oc1..tenancy
    region: us-ashburn-1
  - name: account2
    compartmentId: compartmentId2
    userId: userId2
    fingerprint: fingerprint2
    sshPrivateKeyFilePath: sshPrivateKeyFilePath2
    privateKeyPassphrase: mypassphrase2
    tenancyId: tenancyId2
    region: region2
"#;
    Spec::new(yaml, &["oracle_template.json", "custom-template.json"])
}

fn request(account: Option<&str>, os: &str, template: Option<&str>, package: &str) -> Value {
    let mut body = json!({
        "user": "someuser@gmail.com",
        "package": package,
        "base_os": os,
        "cloud_provider_type": "oracle",
    });
    if let Some(a) = account {
        body["account_name"] = json!(a);
    }
    if let Some(t) = template {
        body["template_file_name"] = json!(t);
    }
    body
}

fn expected(s: &Spec, account: usize, image: usize, name: &str) -> BTreeMap<String, String> {
    let accounts = [
        [
            "ocid1.compartment.oc1..compartment",
            "ocid1.tenancy.oc1..tenancy",
            "ocid1.user.oc1..user",
            "myfingerprint",
            "mysshPrivateKeyFilePath",
            "us-ashburn-1",
        ],
        [
            "compartmentId2",
            "tenancyId2",
            "userId2",
            "fingerprint2",
            "sshPrivateKeyFilePath2",
            "region2",
        ],
    ];
    let images = [
        ["ocid1.image.oc1.iad.ubuntu", "ubuntu"],
        ["ocid1.image.oc1.iad.centos", "root"],
    ];
    let a = accounts[account];
    let i = images[image];
    let dir = s.config_dir();
    expect(&[
        ("oracle_compartment_id", a[0]),
        ("oracle_tenancy_id", a[1]),
        ("oracle_user_id", a[2]),
        ("oracle_fingerprint", a[3]),
        ("oracle_ssh_private_key_file_path", a[4]),
        ("oracle_region", a[5]),
        ("oracle_availability_domain", "lrFb:US-ASHBURN-AD-1"),
        ("oracle_subnet_id", "ocid1.subnet.oc1.iad.subnet"),
        ("oracle_instance_shape", "VM.Standard1.1"),
        ("oracle_base_image_id", i[0]),
        ("oracle_ssh_user_name", i[1]),
        ("oracle_image_name", name),
        ("repository", "http://some-debian-repository"),
        ("package_type", "deb"),
        // What Rosco's real factory makes of PACKAGES_NAME (its spec mocks it).
        (
            "packages",
            "kato nflx-djangobase-enhanced=0.1-h12.170cdbd mongodb",
        ),
        ("configDir", &dir),
    ])
}

#[test]
fn packer_command_for_each_account_base_image_and_template() {
    let s = spec();
    // Rosco's `where:` table: account index, base image index, template, request.
    let rows = [
        (
            0,
            0,
            "oracle_template.json",
            request(None, "ubuntu16_04", None, PACKAGES_NAME),
        ),
        (
            0,
            1,
            "oracle_template.json",
            request(Some("account1"), "centos_7", None, PACKAGES_NAME),
        ),
        (
            1,
            0,
            "oracle_template.json",
            request(Some("account2"), "ubuntu16_04", None, PACKAGES_NAME),
        ),
        (
            1,
            1,
            "oracle_template.json",
            request(Some("account2"), "centos_7", None, PACKAGES_NAME),
        ),
        (
            0,
            0,
            "custom-template.json",
            request(
                None,
                "ubuntu16_04",
                Some("custom-template.json"),
                PACKAGES_NAME,
            ),
        ),
    ];
    let passphrases = ["mypassphrase", "mypassphrase2"];
    for (account, image, template, body) in rows {
        let p = s.prepare(REGION, body.clone()).unwrap();
        assert_eq!(
            vars(&p),
            expected(&s, account, image, &p.image_name),
            "{body}"
        );
        assert_eq!(p.plan.template, s.template(template), "{body}");
        // Rosco's oracle_pass_phrase variable: in Packer's environment instead.
        assert_eq!(
            p.plan.env,
            [(
                "OCI_KEY_PASSPHRASE".to_string(),
                passphrases[account].to_string()
            )]
        );
        assert!(!format!("{:?}", p.plan.variables).contains("mypassphrase"));
        assert!(!p.identity.inputs.to_string().contains("mypassphrase"));
    }
    assert!(!format!("{:?}", s.settings.oracle).contains("mypassphrase"));
}

#[test]
fn the_bake_key_ends_in_the_accounts_name() {
    let s = spec();
    let p = s
        .prepare(REGION, request(None, "ubuntu16_04", None, PACKAGES_NAME))
        .unwrap();
    assert_eq!(
        p.key,
        "bake:oracle:ubuntu16_04:kato|nflx-djangobase-enhanced_0.1-h12.170cdbd_all|mongodb:account1"
    );
    let p = s
        .prepare(
            REGION,
            request(
                None,
                "ubuntu16_04",
                Some("custom-template.json"),
                PACKAGES_NAME,
            ),
        )
        .unwrap();
    assert_eq!(
        p.key,
        "bake:oracle:ubuntu16_04:custom-template.json:kato|nflx-djangobase-enhanced_0.1-h12.170cdbd_all|mongodb:account1"
    );
    let p = s
        .prepare(
            REGION,
            request(Some("account2"), "ubuntu16_04", None, "kato"),
        )
        .unwrap();
    assert!(p.key.ends_with(":kato:account2"), "{}", p.key);
}

#[test]
fn unknown_os_and_unknown_account_are_400s_saying_what_to_change() {
    let s = spec();
    let e = s
        .prepare(REGION, request(None, "centos", None, PACKAGES_NAME))
        .unwrap_err();
    assert_eq!(e, "No virtualization settings found for 'centos'.");
    let e = s
        .prepare(
            REGION,
            request(Some("nope"), "ubuntu16_04", None, PACKAGES_NAME),
        )
        .unwrap_err();
    assert_eq!(
        e,
        "Could not resolve Oracle account: (account_name=nope). Set account_name to one of oracle.accounts (account1, account2)."
    );
    let none = Spec::new(
        "oracle:\n  enabled: true\n  bakeryDefaults:\n    baseImages:\n    - baseImage: {id: ubuntu16_04}\n      virtualizationSettings: {baseImageId: ocid1.image.x}\n",
        &["oci.json"],
    );
    let e = none
        .prepare(REGION, request(None, "ubuntu16_04", None, "kato"))
        .unwrap_err();
    assert!(
        e.contains("account_name=null") && e.contains("none configured"),
        "{e}"
    );
}

#[test]
fn image_names_follow_ocis_display_name_rule() {
    let s = spec();
    let mut body = request(None, "ubuntu16_04", None, "kato");
    body["ami_name"] = json!("k".repeat(250));
    let e = s.prepare(REGION, body).unwrap_err();
    assert!(e.contains("1 to 255") && e.contains("ami_name"), "{e}");
}

#[test]
fn the_artifact_is_the_images_ocid() {
    // Packer 1.6.6's oracle-oci Artifact: Id() is the image's OCID; String() "An image was
    // created: '<name>' (OCID: <ocid>) in region '<region>'" (builder/oracle/oci/artifact.go).
    let log = include_str!("../../../tests/fixtures/output/oracle-oci.log");
    let d = details_of("oracle", REGION, "gzRedis", log);
    let ocid = "ocid1.image.oc1.iad.aaaaaaaadf4m5nwa4lfm4eiakbxfyxpyt7ttvhx5srn5ptxgbdeh3res3aoa";
    assert_eq!(d.ami.as_deref(), Some(ocid));
    assert_eq!(d.image_name.as_deref(), Some("gzRedis"));
    let a = d.artifact.unwrap();
    assert_eq!(a.kind.as_deref(), Some("oracle/image"));
    assert_eq!(a.reference.as_deref(), Some(ocid));
    let none = details_of(
        "oracle",
        REGION,
        "gzRedis",
        "1,,ui,say,==> oracle-oci: Image created.\n",
    );
    assert_eq!(none.ami, None);
}
