//! Azure through the real `kiln` binary and real Packer 1.6.6 in HCL mode, with nothing reaching
//! Azure (no emulator exists; Packer's azure-arm builder would log in to Microsoft's cloud):
//! `/bakeOptions/azure` with the marketplace images and Rosco's 400s; `kiln config validate`
//! running Packer over the shipped `azure-*.pkr.hcl` templates with the recipe's variables; and a
//! bake through an HCL probe template (a `files:` entry, Packer's null builder) that prints a
//! digest of the service principal's id and secret as Packer got them (from kiln's in-memory var
//! file) and azure-arm's result lines, which kiln turns into Rosco's `azure/image` answer.

use crate::admin::{kiln_cli, text};
use crate::harness::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

const CLIENT_ID: &str = "kiln-azure-client-0123";
const SECRET: &str = "kilnAzureAppKey/DoNotLeak+0123456789";

/// The variables kiln passes an Azure bake, declared (Packer refuses undeclared ones in HCL).
const PROBE: &str = r#"
variable "azure_client_id" {
  type      = string
  default   = ""
  sensitive = true
}
variable "azure_client_secret" {
  type      = string
  default   = ""
  sensitive = true
}
variable "azure_location" { default = "" }
variable "azure_image_publisher" { default = "" }
variable "azure_image_offer" { default = "" }
variable "azure_image_sku" { default = "" }
variable "azure_resource_group" { default = "" }
variable "azure_subscription_id" { default = "" }
variable "azure_tenant_id" { default = "" }
variable "azure_object_id" { default = "" }
variable "azure_managed_image_name" { default = "" }
variable "appversion" { default = "" }
variable "repository" { default = "" }
variable "package_type" { default = "" }
variable "packages" { default = "" }
variable "configDir" { default = "" }

source "null" "probe" {
  communicator = "none"
}

build {
  sources = ["source.null.probe"]
  provisioner "shell-local" {
    environment_vars = [
      "ID=${var.azure_client_id}",
      "SECRET=${var.azure_client_secret}",
      "SUB=${var.azure_subscription_id}",
      "RG=${var.azure_resource_group}",
      "NAME=${var.azure_managed_image_name}",
      "WHERE=${var.azure_location}",
      "FROM=${var.azure_image_publisher}:${var.azure_image_offer}:${var.azure_image_sku}",
    ]
    inline = [
      "printf 'client_id=%s\\n' \"$(printf %s \"$ID\" | sha256sum | cut -c1-64)\"",
      "printf 'client_secret=%s\\n' \"$(printf %s \"$SECRET\" | sha256sum | cut -c1-64)\"",
      "echo \"from $FROM in $WHERE\"",
      "echo \"ManagedImageName: $NAME\"",
      "echo \"ManagedImageId: /subscriptions/$SUB/resourceGroups/$RG/providers/Microsoft.Compute/images/$NAME\"",
    ]
  }
}
"#;

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn config(data: &std::path::Path) -> String {
    let files = json!({ "profiles__rosco__packer__azure-probe.pkr.hcl": PROBE });
    format!(
        r#"kiln:
  dataDir: {data}
azure:
  enabled: true
  bakeryDefaults:
    templateFile: azure-linux.pkr.hcl
    baseImages:
    - baseImage:
        id: ubuntu-1804
        shortDescription: v18.04
        detailedDescription: Ubuntu Server 18.04-LTS
        publisher: Canonical
        offer: UbuntuServer
        sku: 18.04-LTS
        version: 18.04.201804262
        osType: linux
        packageType: deb
    - baseImage:
        id: windows-2012-r2
        shortDescription: 2012 R2
        publisher: MicrosoftWindowsServer
        offer: WindowsServer
        sku: 2012-R2-Datacenter
        osType: windows
        packageType: nupkg
        templateFile: azure-windows.pkr.hcl
  accounts:
  - name: my-azure-account
    clientId: {CLIENT_ID}
    appKey: "{SECRET}"
    tenantId: 00000000-0000-0000-0000-0000000000aa
    subscriptionId: 00000000-0000-0000-0000-0000000000bb
    objectId: 00000000-0000-0000-0000-0000000000cc
    packerResourceGroup: kiln-images
    packerStorageAccount: kilnstorage
files: {files}
"#,
        data = data.display()
    )
}

fn body(extra: Value) -> Value {
    let mut b =
        json!({"package": "nginx", "cloud_provider_type": "azure", "user": "someuser@gmail.com"});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[test]
fn azure_is_offered_validated_refused_roscos_way_and_baked_through_an_hcl_template() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kiln = Kiln::start(&data, &config(&data));

    let options = kiln.get("/bakeOptions/azure").json();
    assert_eq!(options["cloudProvider"], "azure", "{options}");
    let ubuntu = &options["baseImages"][0];
    assert_eq!(
        (
            &ubuntu["id"],
            &ubuntu["publisher"],
            &ubuntu["offer"],
            &ubuntu["sku"],
            &ubuntu["version"],
            &ubuntu["packageType"]
        ),
        (
            &json!("ubuntu-1804"),
            &json!("Canonical"),
            &json!("UbuntuServer"),
            &json!("18.04-LTS"),
            &json!("18.04.201804262"),
            &json!("DEB")
        ),
        "{options}"
    );
    assert_eq!(options["baseImages"][1]["packageType"], "NUPKG");

    for (extra, message) in [
        (
            json!({"base_os": "plan9"}),
            "No virtualization settings found for 'plan9'.",
        ),
        (
            json!({"base_os": "ubuntu-1804", "account_name": "nope"}),
            "Could not resolve Azure account: (account_name=nope).",
        ),
        (
            json!({"os_type": "linux", "publisher": "Canonical"}),
            "the request has no offer, sku",
        ),
    ] {
        let r = kiln.post("/api/v1/westus/bake", &body(extra));
        assert_eq!(r.status, 400, "{}", r.body);
        let got = r.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(got.contains(message), "{got}");
    }

    // A bake through the probe: Packer reads the HCL template, the masked variables through
    // kiln's in-memory var file, and kiln scrapes azure-arm's result lines.
    let b = body(json!({
        "base_os": "ubuntu-1804",
        "template_file_name": "azure-probe.pkr.hcl",
        "build_number": "42",
        "base_name": "production",
        "build_info_url": "http://ci.example.com/job/42/",
    }));
    let id = kiln.bake_id("westus", &b);
    let status = kiln.wait(&id, Duration::from_secs(120));
    let log = kiln.log(&id);
    assert_eq!(status["state"], "COMPLETED", "{log}");
    assert_eq!(status["result"], "SUCCESS", "{log}");
    for line in [
        format!("client_id={}", sha(CLIENT_ID)),
        format!("client_secret={}", sha(SECRET)),
        "from Canonical:UbuntuServer:18.04-LTS in westus".to_string(),
    ] {
        assert!(log.contains(&line), "{line} not in {log}");
    }
    let bake = kiln.get(&format!("/api/v1/westus/bake/{id}")).json();
    let image = "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/kiln-images/providers/Microsoft.Compute/images/42-production";
    assert_eq!(bake["image_name"], "42-production", "{bake}");
    assert_eq!(bake["ami"], image, "{bake}");
    assert_eq!(bake["artifact"]["type"], "azure/image", "{bake}");
    assert_eq!(bake["artifact"]["reference"], image, "{bake}");
    assert_eq!(bake["artifact"]["location"], "westus", "{bake}");
    assert_eq!(
        bake["artifact"]["metadata"]["build_info_url"],
        "http://ci.example.com/job/42/"
    );

    // The service principal is nowhere but the config file.
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).body;
    assert!(view.contains("azure_location=westus"), "{view}");
    assert!(view.contains("<masked variables, in memory>"), "{view}");
    let stderr = std::fs::read_to_string(&kiln.stderr).unwrap_or_default();
    for (what, text) in [
        ("log", &log),
        ("view", &view),
        ("bake", &bake.to_string()),
        ("kiln's log", &stderr),
    ] {
        assert!(!text.contains(SECRET), "the secret in the {what}");
        assert!(!text.contains(CLIENT_ID), "the client id in the {what}");
    }
    let holding = files_containing(&data, SECRET);
    assert!(
        holding.iter().all(|f| f.ends_with("kiln.yml")),
        "files holding the secret: {holding:?}"
    );

    // Packer validates the shipped templates the config selects with the recipe's variables.
    let out = kiln_cli(&kiln.config, &["config", "validate"], "");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for t in [
        "azure-linux.pkr.hcl",
        "azure-windows.pkr.hcl",
        "azure-linux-managed-image.pkr.hcl",
        "azure-windows-managed-image.pkr.hcl",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("OK      {t}"))),
            "{t}: {stdout}"
        );
    }
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
}
