//! Azure's admin commands and the accounts of Google, Oracle and Azure against the real binary:
//! `kiln config provider azure bakery edit|show|base-image …` writing Rosco's `azure` block, and
//! `kiln config provider <google|oracle|azure> account add|edit|delete|list` writing
//! `<cloud>.accounts`. Secrets come from stdin and never appear on any command's output; what
//! the commands write is what `kiln serve` loads (`show`, `list`, and a running kiln's reload).

use crate::admin::{kiln_cli, text};
use crate::harness::*;
use serde_norway::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const SECRET: &str = "kilnAccountSecret/DoNotPrint+0123";
const ROTATED: &str = "kilnAccountRotated/DoNotPrint+4567";
/// What the Google key file holds: never on kiln's output, never in the config.
const KEY_CONTENTS: &str = "kilnGoogleKeyContents-DoNotCopy";

/// Every output of every command of a test, to check no secret ever appears.
#[derive(Default)]
struct Outputs(Vec<String>);

impl Outputs {
    /// `kiln config provider <args>` with `stdin`: (success, stdout, stderr).
    fn run(&mut self, config: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut all = vec!["config", "provider"];
        all.extend_from_slice(args);
        let out = kiln_cli(config, &all, stdin);
        let (o, e) = text(&out);
        self.0.push(format!("{args:?}\n{o}\n{e}"));
        (out.status.success(), o, e)
    }

    fn none_holds(&self, needles: &[&str]) {
        for output in &self.0 {
            for n in needles {
                assert!(!output.contains(n), "an output holds {n}: {output}");
            }
        }
    }
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.yml");
    std::fs::write(&path, "# the operator's file\nserver:\n  port: 8087\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir, path)
}

/// Halyard's example of Azure's bakery block, as the commands below must write it.
const AZURE_BLOCK: &str = "
azure:
  bakeryDefaults:
    templateFile: azure-linux.pkr.hcl
    baseImages:
    - baseImage: {id: ubuntu-1804, shortDescription: v18.04, publisher: Canonical, offer: UbuntuServer, sku: 18.04-LTS, version: 18.04.201804262, osType: Linux, packageType: deb}
";

#[test]
fn azure_bakery_edit_show_and_base_images_write_roscos_block() {
    let (_d, path) = file();
    let mut o = Outputs::default();
    let edit = [
        "azure",
        "bakery",
        "edit",
        "--template-file",
        "azure-linux.pkr.hcl",
    ];
    let (ok, out, err) = o.run(&path, &edit, "");
    assert!(ok, "{err}");
    assert!(
        out.contains("azure.bakeryDefaults.templateFile: (unset) → azure-linux.pkr.hcl"),
        "{out}"
    );
    let add = [
        "azure",
        "bakery",
        "base-image",
        "add",
        "ubuntu-1804",
        "--short-description",
        "v18.04",
        "--publisher",
        "Canonical",
        "--offer",
        "UbuntuServer",
        "--sku",
        "18.04-LTS",
        "--image-version",
        "18.04.201804262",
        "--os-type",
        "Linux",
        "--package-type",
        "deb",
    ];
    let (ok, _, err) = o.run(&path, &add, "");
    assert!(ok, "{err}");
    let written = yaml(&path);
    let expected: Value = serde_norway::from_str(AZURE_BLOCK).unwrap();
    assert_eq!(
        written["azure"]["bakeryDefaults"],
        expected["azure"]["bakeryDefaults"]
    );
    assert_eq!(written["azure"]["enabled"], Value::from(true));
    assert_eq!(written["server"]["port"], Value::from(8087));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("virtualizationSettings"), "{text}");
    // Rosco's order inside baseImage.
    let order = [
        "id:",
        "shortDescription:",
        "publisher:",
        "offer:",
        "sku:",
        "version:",
        "osType:",
        "packageType:",
    ];
    let at: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");

    let (ok, listed, _) = o.run(&path, &["azure", "bakery", "base-image", "list"], "");
    assert!(ok);
    assert_eq!(
        listed.trim(),
        "ubuntu-1804: Canonical:UbuntuServer:18.04-LTS"
    );
    let (ok, shown, err) = o.run(&path, &["azure", "bakery", "show"], "");
    assert!(ok, "{err}");
    let shown: Value = serde_norway::from_str(&shown).unwrap();
    assert_eq!(
        shown["azure"]["bakeryDefaults"]["baseImages"][0]["baseImage"]["sku"],
        Value::from("18.04-LTS")
    );
    assert_eq!(
        shown["azure"]["bakeryDefaults"]["templateFile"],
        Value::from("azure-linux.pkr.hcl")
    );

    // edit changes a key and removes one with an empty value; refusals name what to fix.
    let edit = [
        "azure",
        "bakery",
        "base-image",
        "edit",
        "ubuntu-1804",
        "--image-version",
        "latest",
        "--short-description",
        "",
    ];
    let (ok, out, err) = o.run(&path, &edit, "");
    assert!(ok, "{err}");
    assert!(
        out.contains("baseImage.version: 18.04.201804262 → latest"),
        "{out}"
    );
    let image = &yaml(&path)["azure"]["bakeryDefaults"]["baseImages"][0]["baseImage"];
    assert_eq!(image["version"], Value::from("latest"));
    assert!(image["shortDescription"].is_null());
    for (args, message) in [
        (
            &["edit", "ubuntu-1804", "--region", "westeurope"][..],
            "leave out --region",
        ),
        (
            &["edit", "ubuntu-1804", "--source-image", "x"],
            "--source-image is not a azure base-image setting",
        ),
        (&["add", "ubuntu-1804"], "base image 'ubuntu-1804' exists"),
        (&["edit", "nope", "--sku", "x"], "'nope' does not exist"),
        (&["delete", "nope"], "'nope' does not exist"),
    ] {
        let before = std::fs::read_to_string(&path).unwrap();
        let mut all = vec!["azure", "bakery", "base-image"];
        all.extend_from_slice(args);
        let (ok, _, err) = o.run(&path, &all, "");
        assert!(!ok && err.contains(message), "{args:?}: {err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }
    // Another cloud refuses Azure's flags.
    let google = [
        "google",
        "bakery",
        "base-image",
        "add",
        "x",
        "--publisher",
        "p",
    ];
    let (ok, _, err) = o.run(&path, &google, "");
    assert!(!ok && err.contains("--publisher is not a google"), "{err}");

    let delete = ["azure", "bakery", "base-image", "delete", "ubuntu-1804"];
    let (ok, out, err) = o.run(&path, &delete, "");
    assert!(ok, "{err}");
    assert!(
        out.contains("azure.bakeryDefaults.baseImages[ubuntu-1804]: removed"),
        "{out}"
    );
    let (_, listed, _) = o.run(&path, &["azure", "bakery", "base-image", "list"], "");
    assert_eq!(listed.trim(), "no base images");
}

/// `<cloud> account <args>`.
fn account(
    o: &mut Outputs,
    path: &Path,
    cloud: &str,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    let mut all = vec![cloud, "account"];
    all.extend_from_slice(args);
    o.run(path, &all, stdin)
}

#[test]
fn accounts_of_google_oracle_and_azure_are_added_edited_listed_and_deleted() {
    let (dir, path) = file();
    let mut o = Outputs::default();
    let secret_line = format!("{SECRET}\n");
    let key = dir.path().join("google-key.json");
    std::fs::write(&key, format!("{{\"private_key\": \"{KEY_CONTENTS}\"}}")).unwrap();
    let pem = dir.path().join("oci_api_key.pem");
    std::fs::write(
        &pem,
        format!("-----BEGIN PRIVATE KEY-----\n{KEY_CONTENTS}\n"),
    )
    .unwrap();
    let (key_s, pem_s) = (key.to_str().unwrap(), pem.to_str().unwrap());

    // Google: the key file must exist; its path is written, never its contents.
    let missing = dir.path().join("missing.json");
    let args = [
        "add",
        "my-google",
        "--project",
        "p1",
        "--json-path",
        missing.to_str().unwrap(),
    ];
    let (ok, _, err) = account(&mut o, &path, "google", &args, "");
    assert!(!ok, "{err}");
    assert!(
        err.contains("--json-path") && err.contains("must name an existing file"),
        "{err}"
    );
    assert!(!std::fs::read_to_string(&path).unwrap().contains("google"));
    let args = ["add", "my-google", "--project", "p1", "--json-path", key_s];
    let (ok, out, err) = account(&mut o, &path, "google", &args, "");
    assert!(ok, "{err}");
    assert!(out.contains("google.accounts[my-google]: added"), "{out}");
    let expected: Value = serde_norway::from_str(&format!(
        "[{{name: my-google, project: p1, jsonPath: '{key_s}'}}]"
    ))
    .unwrap();
    assert_eq!(yaml(&path)["google"]["accounts"], expected);

    // Oracle: every Halyard flag, the passphrase from stdin.
    let args = [
        "add",
        "my-oci",
        "--compartment-id",
        "ocid1.compartment.x",
        "--user-id",
        "ocid1.user.x",
        "--fingerprint",
        "aa:bb",
        "--ssh-private-key-file-path",
        pem_s,
        "--private-key-passphrase",
        "--tenancy-id",
        "ocid1.tenancy.x",
        "--region",
        "us-ashburn-1",
    ];
    let (ok, out, err) = account(&mut o, &path, "oracle", &args, &secret_line);
    assert!(ok, "{err}");
    assert!(
        out.contains("oracle.accounts[my-oci].privateKeyPassphrase: (set)"),
        "{out}"
    );
    let expected: Value = serde_norway::from_str(&format!(
        "[{{name: my-oci, compartmentId: ocid1.compartment.x, userId: ocid1.user.x, \
         fingerprint: 'aa:bb', sshPrivateKeyFilePath: '{pem_s}', tenancyId: ocid1.tenancy.x, \
         region: us-ashburn-1, privateKeyPassphrase: '{SECRET}'}}]"
    ))
    .unwrap();
    assert_eq!(yaml(&path)["oracle"]["accounts"], expected);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "a file holding a passphrase is the owner's only"
    );

    // Azure: every Halyard flag, the app key from stdin.
    let args = [
        "add",
        "azure-1",
        "--client-id",
        "123ABC-456DEF",
        "--tenant-id",
        "DEF456",
        "--subscription-id",
        "123ABC",
        "--object-id",
        "2121ce3f",
        "--app-key",
        "--packer-resource-group",
        "resGroup",
        "--packer-storage-account",
        "packerStorage",
    ];
    let (ok, out, err) = account(&mut o, &path, "azure", &args, &secret_line);
    assert!(ok, "{err}");
    assert!(
        out.contains("azure.accounts[azure-1].appKey: (set)"),
        "{out}"
    );
    let expected: Value = serde_norway::from_str(&format!(
        "[{{name: azure-1, clientId: 123ABC-456DEF, tenantId: DEF456, subscriptionId: 123ABC, \
         objectId: 2121ce3f, packerResourceGroup: resGroup, packerStorageAccount: packerStorage, \
         appKey: '{SECRET}'}}]"
    ))
    .unwrap();
    assert_eq!(yaml(&path)["azure"]["accounts"], expected);
    // The file loads as kiln loads it.
    let (ok, _, err) = o.run(&path, &["azure", "bakery", "show"], "");
    assert!(ok, "the file does not load: {err}");

    // list: names and fields as loaded, secrets masked.
    let (ok, listed, err) = account(&mut o, &path, "azure", &["list"], "");
    assert!(ok, "{err}");
    assert!(listed.starts_with("- name: azure-1\n"), "{listed}");
    let v: Value = serde_norway::from_str(&listed).unwrap();
    assert_eq!(v[0]["name"], Value::from("azure-1"));
    assert_eq!(v[0]["clientId"], Value::from("123ABC-456DEF"));
    assert_eq!(v[0]["appKey"], Value::from("******"));
    let (_, listed, _) = account(&mut o, &path, "oracle", &["list"], "");
    let v: Value = serde_norway::from_str(&listed).unwrap();
    assert_eq!(v[0]["privateKeyPassphrase"], Value::from("******"));
    assert_eq!(v[0]["sshPrivateKeyFilePath"], Value::from(pem_s));
    let (_, listed, _) = account(&mut o, &path, "google", &["list"], "");
    let v: Value = serde_norway::from_str(&listed).unwrap();
    assert_eq!(v[0]["jsonPath"], Value::from(key_s));

    // edit: a new secret, a changed key, a key removed by an empty value.
    let args = [
        "edit",
        "azure-1",
        "--app-key",
        "--object-id",
        "",
        "--tenant-id",
        "T2",
    ];
    let (ok, out, err) = account(&mut o, &path, "azure", &args, &format!("{ROTATED}\n"));
    assert!(ok, "{err}");
    assert!(
        out.contains("azure.accounts[azure-1].tenantId: DEF456 → T2"),
        "{out}"
    );
    assert!(
        out.contains("azure.accounts[azure-1].objectId: 2121ce3f → (unset)"),
        "{out}"
    );
    let a = &yaml(&path)["azure"]["accounts"][0];
    assert_eq!(a["appKey"], Value::from(ROTATED));
    assert!(a["objectId"].is_null());

    // Refusals, each leaving the file as it was.
    let cases: [(&str, &[&str], &str); 9] = [
        (
            "azure",
            &["add", "azure-1", "--client-id", "x"],
            "account 'azure-1' exists",
        ),
        (
            "azure",
            &["edit", "azure-2", "--client-id", "x"],
            "account 'azure-2' does not exist; the azure accounts are: azure-1",
        ),
        (
            "oracle",
            &["delete", "nope"],
            "account 'nope' does not exist; the oracle accounts are: my-oci",
        ),
        (
            "google",
            &["add", "My Google"],
            "account name 'My Google' is not valid",
        ),
        (
            "google",
            &["edit", "my-google", "--json-path", "/nonexistent/key.json"],
            "must name an existing file",
        ),
        (
            "oracle",
            &["edit", "my-oci", "--ssh-private-key-file-path", "/tmp"],
            "must name an existing file",
        ),
        (
            "azure",
            &["add", "azure-2", "--app-key"],
            "the secret is empty",
        ),
        (
            "azure",
            &["add", "azure-2", "--client-id", "x", "--subscription-id"],
            "a value is required",
        ),
        (
            "google",
            &["add", "g2", "--app-key"],
            "unexpected argument '--app-key'",
        ),
    ];
    for (cloud, args, message) in cases {
        let before = std::fs::read_to_string(&path).unwrap();
        let (ok, _, err) = account(&mut o, &path, cloud, args, "");
        assert!(!ok && err.contains(message), "{cloud} {args:?}: {err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "{args:?}");
    }
    // A secret on the command line is refused before anything is parsed, and not repeated.
    for (cloud, flag) in [
        ("azure", "--app-key"),
        ("oracle", "--private-key-passphrase"),
    ] {
        let before = std::fs::read_to_string(&path).unwrap();
        let args = ["account", "edit", "x", flag, "hush-9876"];
        let out = kiln_cli(
            &path,
            &[&["config", "provider", cloud][..], &args].concat(),
            "",
        );
        let (so, se) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{cloud}: {se}");
        assert!(!so.contains("hush") && !se.contains("hush"), "{se}");
        assert!(se.contains(&format!("{flag} alone")), "{se}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }

    // delete, down to none.
    for (cloud, name) in [
        ("google", "my-google"),
        ("oracle", "my-oci"),
        ("azure", "azure-1"),
    ] {
        let (ok, out, err) = account(&mut o, &path, cloud, &["delete", name], "");
        assert!(ok, "{err}");
        assert!(
            out.contains(&format!("{cloud}.accounts[{name}]: removed")),
            "{out}"
        );
        let (ok, listed, _) = account(&mut o, &path, cloud, &["list"], "");
        assert!(ok);
        assert_eq!(listed.trim(), format!("no {cloud} accounts"));
    }
    let (ok, _, err) = account(&mut o, &path, "azure", &["delete", "azure-1"], "");
    assert!(!ok && err.contains("there are no azure accounts"), "{err}");
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains(KEY_CONTENTS)
    );

    o.none_holds(&[SECRET, ROTATED, KEY_CONTENTS]);
}

/// A running kiln picks up an account written by the CLI on `kiln deploy apply`, naming the
/// changed keys (a changed secret by its path only).
#[test]
fn a_running_kiln_reloads_the_accounts_the_cli_wrote() {
    let data = tempfile::tempdir().unwrap();
    let config = format!("kiln:\n  packerPath: {REPO}/tests/support/fake-packer\n");
    let kiln = Kiln::start(data.path(), &config);
    let mut o = Outputs::default();
    let args = ["add", "azure-1", "--client-id", "C1", "--app-key"];
    let (ok, _, err) = account(&mut o, &kiln.config, "azure", &args, &format!("{SECRET}\n"));
    assert!(ok, "{err}");
    let apply = |o: &mut Outputs| {
        let data = kiln.data.to_str().unwrap();
        let out = kiln_cli(&kiln.config, &["deploy", "apply", "--data-dir", data], "");
        let (so, se) = text(&out);
        o.0.push(format!("{so}\n{se}"));
        assert!(out.status.success(), "{so}{se}");
        so
    };
    let applied = apply(&mut o);
    for key in [
        "azure.accounts[0].appKey",
        "azure.accounts[0].clientId",
        "azure.accounts[0].name",
    ] {
        assert!(applied.contains(&format!("changed: {key}")), "{applied}");
    }
    let args = ["edit", "azure-1", "--app-key"];
    let (ok, _, err) = account(
        &mut o,
        &kiln.config,
        "azure",
        &args,
        &format!("{ROTATED}\n"),
    );
    assert!(ok, "{err}");
    let applied = apply(&mut o);
    assert!(
        applied.contains("changed: azure.accounts[0].appKey"),
        "{applied}"
    );
    assert!(!applied.contains("clientId"), "{applied}");
    let log = std::fs::read_to_string(&kiln.stderr).unwrap_or_default();
    o.0.push(log);
    o.none_holds(&[SECRET, ROTATED]);
}
