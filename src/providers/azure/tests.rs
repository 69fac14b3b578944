//! Rosco's `AzureBakeHandlerSpec` and `AzureImageNameFactorySpec`, case by case (kiln's own code,
//! Rosco's expectations), with the real image-name and package rules instead of Rosco's mocks,
//! and the service principal's id and secret as masked variables (in memory, off the command
//! line) rather than beside the others.

use super::managed_image_name;
use crate::providers::spec_support::{
    DEBIAN_REPOSITORY, PACKAGES_NAME, PACKAGES_PARAMETER, Spec, details_of, expect, vars,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const REGION: &str = "westus";
const NUPKG_PACKAGES_NAME: &str = "googlechrome javaruntime";
const CHOCOLATEY_REPOSITORY: &str = "https://chocolatey.org/api/v2/";

fn spec() -> Spec {
    let yaml = format!(
        r#"
chocolateyRepository: {CHOCOLATEY_REPOSITORY}
azure:
  enabled: true
  bakeryDefaults:
    templateFile: azure-linux.pkr.hcl
    baseImages:
    - baseImage: {{id: ubuntu, shortDescription: v14.04, detailedDescription: Ubuntu Server 14.04.4-LTS, publisher: Canonical, offer: UbuntuServer, sku: 14.04.3-LTS, version: 14.04.201602171, packageType: DEB}}
    - baseImage: {{id: centos, shortDescription: "7", detailedDescription: OpenLogic CentOS 7.1.20150731, publisher: OpenLogic, offer: CentOS, sku: "7.1", version: 7.1.20150731, packageType: RPM, templateFile: azure-centos.json}}
    - baseImage: {{id: windows-2012-r2, shortDescription: 2012 R2, detailedDescription: Windows Server 2012 R2 Datacenter, publisher: MicrosoftWindowsServer, offer: WindowsServer, sku: 2012-R2-Datacenter, version: 4.0.20170111, packageType: NUPKG, templateFile: azure-windows.pkr.hcl}}
  accounts:
  - {{name: azure-1, clientId: 123ABC-456DEF, appKey: blahblah, tenantId: DEF456, objectId: 2121ce3f-ad4f-4c93-8e1d-62884a22eba6, subscriptionId: 123ABC, packerResourceGroup: resGroup, packerStorageAccount: packerStorage}}
  - {{name: azure-2, clientId: 456DEF-123ABC, appKey: foobar, tenantId: ABC123, objectId: 62884a22-8e1d-4c93-ad4f-2121ce3feba6, subscriptionId: 456DEF, packerResourceGroup: resGroup, packerStorageAccount: packerStorage}}
"#
    );
    Spec::new(
        &yaml,
        &[
            "azure-linux.pkr.hcl",
            "azure-linux-managed-image.pkr.hcl",
            "azure-windows.pkr.hcl",
            "azure-windows-managed-image.pkr.hcl",
            "azure-centos.json",
        ],
    )
}

fn request(extra: Value) -> Value {
    let mut body = json!({"user": "someuser@gmail.com", "cloud_provider_type": "azure"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn prepared(s: &Spec, extra: Value) -> crate::providers::Prepared {
    s.prepare(REGION, request(extra)).unwrap()
}

fn masked(p: &crate::providers::Prepared) -> BTreeMap<String, String> {
    p.plan.secret_variables.iter().cloned().collect()
}

/// Rosco's parameter map of account `azure-1` for a marketplace image.
fn account_one(
    publisher: &str,
    offer: &str,
    sku: &str,
    image: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("azure_resource_group", "resGroup".into()),
        ("azure_subscription_id", "123ABC".into()),
        ("azure_tenant_id", "DEF456".into()),
        (
            "azure_object_id",
            "2121ce3f-ad4f-4c93-8e1d-62884a22eba6".into(),
        ),
        ("azure_location", REGION.into()),
        ("azure_image_publisher", publisher.into()),
        ("azure_image_offer", offer.into()),
        ("azure_image_sku", sku.into()),
        ("azure_managed_image_name", image.into()),
    ]
}

fn with_common(
    mut pairs: Vec<(&'static str, String)>,
    s: &Spec,
    common: &[(&'static str, &str)],
) -> BTreeMap<String, String> {
    pairs.push(("configDir", s.config_dir()));
    pairs.extend(common.iter().map(|(k, v)| (*k, v.to_string())));
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[test]
fn produces_packer_command_with_all_required_parameters_for_ubuntu() {
    let s = spec();
    let p = prepared(
        &s,
        json!({"package": PACKAGES_NAME, "base_os": "ubuntu", "template_file_name": "azure-linux.pkr.hcl", "build_number": "42", "base_name": "production"}),
    );
    let want = with_common(
        account_one("Canonical", "UbuntuServer", "14.04.3-LTS", "42-production"),
        &s,
        &[
            ("repository", DEBIAN_REPOSITORY),
            ("package_type", "deb"),
            ("packages", PACKAGES_PARAMETER),
        ],
    );
    assert_eq!(vars(&p), want);
    assert_eq!(
        masked(&p),
        expect(&[
            ("azure_client_id", "123ABC-456DEF"),
            ("azure_client_secret", "blahblah")
        ])
    );
    assert_eq!(p.plan.template, s.template("azure-linux.pkr.hcl"));
}

#[test]
fn produces_packer_command_with_all_required_parameters_for_windows() {
    let s = spec();
    let p = prepared(
        &s,
        json!({"package": NUPKG_PACKAGES_NAME, "base_os": "windows-2012-r2", "build_number": "42", "base_name": "production"}),
    );
    let want = with_common(
        account_one(
            "MicrosoftWindowsServer",
            "WindowsServer",
            "2012-R2-Datacenter",
            "42-production",
        ),
        &s,
        &[
            ("repository", CHOCOLATEY_REPOSITORY),
            ("package_type", "nupkg"),
            ("packages", NUPKG_PACKAGES_NAME),
        ],
    );
    assert_eq!(vars(&p), want);
    assert_eq!(p.plan.template, s.template("azure-windows.pkr.hcl"));
}

#[test]
fn template_file_names_come_from_the_base_image_else_the_default() {
    let s = spec();
    let centos = prepared(&s, json!({"package": "nginx", "base_os": "centos"}));
    assert_eq!(centos.plan.template, s.template("azure-centos.json"));
    let ubuntu = prepared(&s, json!({"package": "nginx", "base_os": "ubuntu"}));
    assert_eq!(ubuntu.plan.template, s.template("azure-linux.pkr.hcl"));
}

#[test]
fn bake_options_list_every_base_image_with_its_marketplace_image() {
    let s = spec();
    let images = crate::providers::registry::find("azure")
        .unwrap()
        .base_images(&s.settings);
    assert_eq!(images.len(), 3);
    assert_eq!(
        images[2].listed,
        vec![
            ("publisher", "MicrosoftWindowsServer".to_string()),
            ("offer", "WindowsServer".into()),
            ("sku", "2012-R2-Datacenter".into()),
            ("version", "4.0.20170111".into()),
        ]
    );
}

/// Rosco's 'Create proper azure_image_name' table, through the real name factory: the name
/// Packer gets is `build_number-base_name` when both are given, else the image's name.
#[test]
fn the_managed_image_name_is_build_number_and_base_name_else_the_image_name() {
    let s = spec();
    let name = |extra: Value| {
        let mut body = json!({"package": NUPKG_PACKAGES_NAME, "base_os": "windows-2012-r2"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        vars(&prepared(&s, body))["azure_managed_image_name"].clone()
    };
    assert_eq!(
        name(json!({"build_number": "42", "base_name": "production"})),
        "42-production"
    );
    // Rosco's AzureImageNameFactory: base name (else the package), arch, release (else the
    // time), base_os.
    assert_eq!(
        name(json!({"build_number": "42"})),
        "googlechrome-all-1470391070464-windows-2012-r2"
    );
    assert_eq!(
        name(json!({"base_name": "production"})),
        "production-all-1470391070464-windows-2012-r2"
    );
    assert_eq!(
        name(json!({"base_name": "my-image", "base_label": "release"})),
        "my-image-all-release-windows-2012-r2"
    );
}

#[test]
fn managed_image_names_are_cleaned_as_rosco_cleans_them() {
    for (given, want) in [
        (
            "namethatexceeds.23char.acters",
            "namethatexceeds.23char.acters",
        ),
        ("42-production", "42-production"),
        (
            "test-with!>#characters.morethanmorethanmorethanmorethanmorethanmorethan.75characters",
            "test-withcharacters.morethanmorethanmorethanmorethanmorethanmorethan.75char",
        ),
        ("test-with!>#characters..-.", "test-withcharacters"),
    ] {
        assert_eq!(managed_image_name(given), want, "{given}");
    }
}

#[test]
fn image_source_parameters_for_a_base_image_a_marketplace_image_and_a_managed_image() {
    let s = spec();
    let v = vars(&prepared(
        &s,
        json!({"package": "x", "base_os": "windows-2012-r2"}),
    ));
    assert_eq!(v["azure_image_publisher"], "MicrosoftWindowsServer");
    assert_eq!(v["azure_image_offer"], "WindowsServer");
    assert_eq!(v["azure_image_sku"], "2012-R2-Datacenter");
    assert!(!v.contains_key("azure_custom_managed_image_name"));

    let p = prepared(
        &s,
        json!({"package": "x", "publisher": "Debian", "offer": "debian-10", "sku": "10", "os_type": "linux"}),
    );
    let v = vars(&p);
    assert_eq!(
        (
            v["azure_image_publisher"].as_str(),
            v["azure_image_offer"].as_str(),
            v["azure_image_sku"].as_str()
        ),
        ("Debian", "debian-10", "10")
    );
    assert!(!v.contains_key("azure_custom_managed_image_name"));
    assert_eq!(p.source_image, "Debian:debian-10:10");

    let p = prepared(
        &s,
        json!({"package": "x", "custom_managed_image_name": "docker.io-all-1666307955578-ubuntu-1804", "os_type": "linux"}),
    );
    let v = vars(&p);
    assert!(!v.contains_key("azure_image_publisher") && !v.contains_key("azure_image_sku"));
    assert_eq!(
        v["azure_custom_managed_image_name"],
        "docker.io-all-1666307955578-ubuntu-1804"
    );
}

#[test]
fn account_selection_base_label_and_base_name_are_in_the_bake_key() {
    let s = spec();
    let common =
        json!({"base_label": "release", "package": NUPKG_PACKAGES_NAME, "account_name": "azure-2"});
    let key = |extra: Value| {
        let mut body = common.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let p = prepared(&s, body);
        assert_eq!(masked(&p)["azure_client_id"], "456DEF-123ABC");
        p.key
    };
    assert_eq!(
        key(json!({"base_name": "my-image", "base_os": "windows-2012-r2"})),
        "bake:azure:windows-2012-r2:googlechrome|javaruntime:azure-2:release:my-image"
    );
    assert_eq!(
        key(
            json!({"base_name": "my-image", "offer": "UbuntuServer", "publisher": "Canonical", "sku": "18_04-lts-gen2"})
        ),
        "bake:azure:googlechrome|javaruntime:azure-2:Canonical:UbuntuServer:18_04-lts-gen2:release:my-image"
    );
    assert_eq!(
        key(
            json!({"base_name": "my-custom-image", "custom_managed_image_name": "docker.io-all-1666307955578-ubuntu-1804"})
        ),
        "bake:azure:googlechrome|javaruntime:azure-2:docker.io-all-1666307955578-ubuntu-1804:release:my-custom-image"
    );
}

#[test]
fn without_base_os_the_os_type_and_a_managed_image_pick_the_template_and_package_type() {
    let s = spec();
    for (os, managed, template, kind) in [
        ("windows", None, "azure-windows.pkr.hcl", "nupkg"),
        (
            "windows",
            Some("my-managed-image"),
            "azure-windows-managed-image.pkr.hcl",
            "nupkg",
        ),
        ("linux", None, "azure-linux.pkr.hcl", "deb"),
        (
            "linux",
            Some("my-managed-image"),
            "azure-linux-managed-image.pkr.hcl",
            "deb",
        ),
    ] {
        let mut body =
            json!({"package": "x", "os_type": os, "publisher": "P", "offer": "O", "sku": "S"});
        if let Some(m) = managed {
            body["custom_managed_image_name"] = json!(m);
        }
        let p = prepared(&s, body);
        assert_eq!(p.plan.template, s.template(template), "{os} {managed:?}");
        assert_eq!(vars(&p)["package_type"], kind, "{os} {managed:?}");
    }
    // The request's package type and template win.
    let p = prepared(
        &s,
        json!({"package": "x", "os_type": "linux", "package_type": "rpm", "template_file_name": "azure-centos.json", "publisher": "P", "offer": "O", "sku": "S"}),
    );
    assert_eq!(vars(&p)["package_type"], "rpm");
    assert_eq!(p.plan.template, s.template("azure-centos.json"));
}

#[test]
fn what_cannot_be_baked_is_a_400_that_says_what_to_set() {
    let s = spec();
    let refused = |extra: Value| s.prepare(REGION, request(extra)).unwrap_err();
    assert_eq!(
        refused(json!({"package": "x", "base_os": "nope"})),
        "No virtualization settings found for 'nope'."
    );
    let e = refused(json!({"package": "x", "base_os": "ubuntu", "account_name": "azure-9"}));
    assert!(
        e.starts_with("Could not resolve Azure account: (account_name=azure-9).")
            && e.contains("azure-1, azure-2"),
        "{e}"
    );
    let e = refused(json!({"package": "x", "os_type": "linux"}));
    assert!(
        e.contains("the request has no publisher, offer, sku")
            && e.contains("ubuntu, centos, windows-2012-r2"),
        "{e}"
    );
    let e = refused(json!({"package": "x", "os_type": "linux", "publisher": "Canonical"}));
    assert!(e.contains("no offer, sku"), "{e}");
    let e = refused(json!({"package": "x", "os_type": "solaris", "base_os": "ubuntu"}));
    assert!(e.contains("os_type") && e.contains("linux, windows"), "{e}");
    // A secret or template syntax in a request field is refused like any other.
    let e = refused(
        json!({"package": "x", "os_type": "linux", "custom_managed_image_name": "{{ env `HOME` }}"}),
    );
    assert!(e.contains("custom_managed_image_name"), "{e}");
    // The service principal and where it is trusted are the operator's.
    for name in [
        "azure_client_secret",
        "azure_client_id",
        "azure_subscription_id",
        "azure_tenant_id",
    ] {
        let e = refused(
            json!({"package": "x", "base_os": "ubuntu", "extended_attributes": {name: "mine"}}),
        );
        assert!(
            e.contains(name) && e.contains("bakery operator's setting"),
            "{e}"
        );
    }
}

#[test]
fn no_accounts_is_rosco_s_400() {
    let s = Spec::new(
        "azure:\n  enabled: true\n  bakeryDefaults:\n    baseImages:\n    - baseImage: {id: ubuntu, publisher: Canonical, offer: UbuntuServer, sku: 18.04-LTS}\n",
        &["azure-linux.pkr.hcl"],
    );
    let e = s
        .prepare(
            REGION,
            request(json!({"package": "x", "base_os": "ubuntu"})),
        )
        .unwrap_err();
    assert!(
        e.starts_with("Could not resolve Azure account: (account_name=null).")
            && e.contains("none configured"),
        "{e}"
    );
}

/// Rosco's four scraping cases: the managed image's name, and its id (the shared image gallery
/// version's when there is one), from Packer 1.6.6's azure-arm artifact text (its
/// `Artifact.String()` as `packer build -machine-readable` prints it, built from Packer's source).
#[test]
fn the_result_is_scraped_from_the_builders_artifact_lines() {
    let managed = concat!(
        "1700000000,,ui,say,Build 'azure-arm' finished.\n",
        "1700000001,,ui,say,\\n==> Builds finished. The artifacts of successful builds are:\n",
        "1700000001,azure-arm,artifact-count,1\n",
        "1700000001,azure-arm,artifact,0,builder-id,Azure.ResourceManagement.VMImage\n",
        "1700000001,azure-arm,artifact,0,id,/subscriptions/1/resourceGroups/rg/providers/Microsoft.Compute/images/pkroswfvmtp50x8\n",
        "1700000001,,ui,say,--> azure-arm: Azure.ResourceManagement.VMImage:\\n\\nOSType: Linux\\nManagedImageResourceGroupName: rg\\nManagedImageName: pkroswfvmtp50x8\\nManagedImageId: pkroswfvmtp50x8id\\nManagedImageLocation: westus\\n\n",
    );
    let d = details_of("azure", REGION, "fallback-name", managed);
    assert_eq!(d.id, "123");
    assert_eq!(d.ami.as_deref(), Some("pkroswfvmtp50x8id"));
    assert_eq!(d.image_name.as_deref(), Some("pkroswfvmtp50x8"));
    let a = d.artifact.unwrap();
    assert_eq!(a.kind.as_deref(), Some("azure/image"));
    assert_eq!(a.name.as_deref(), Some("pkroswfvmtp50x8"));
    assert_eq!(a.reference.as_deref(), Some("pkroswfvmtp50x8id"));
    assert_eq!(a.location.as_deref(), Some(REGION));

    let gallery = managed.replace(
        "ManagedImageLocation: westus",
        "ManagedImageLocation: westus\\nManagedImageSharedImageGalleryId: /subscriptions/0/resourceGroups/test-rg/providers/Microsoft.Compute/galleries/g/images/i/versions/1.0.9",
    );
    let d = details_of("azure", REGION, "fallback-name", &gallery);
    assert!(d.ami.unwrap().ends_with("/versions/1.0.9"));
    assert_eq!(d.image_name.as_deref(), Some("pkroswfvmtp50x8"));
}
