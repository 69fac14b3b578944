//! The admin commands against the real binary: `kiln config provider aws bakery edit|show`,
//! `base-image add|edit|delete|list` and `kiln config validate` (real Packer). Secrets are read
//! from standard input and must never be printed; the operator's other keys must survive.

use crate::harness::*;
use serde_norway::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const SECRET: &str = "kilnAdminSecret/DoNotPrint+0123456789xyz";

/// Runs `kiln --config FILE <args>` with `stdin` as standard input.
pub fn kiln_cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(KILN)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kiln");
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kiln config provider aws bakery <args>`.
pub fn bakery(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut all = vec!["config", "provider", "aws", "bakery"];
    all.extend_from_slice(args);
    kiln_cli(config, &all, stdin)
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const OPERATOR_FILE: &str = r#"# the operator's own file
server:
  port: 8087
debianRepository: http://repo.example.invalid/apt stable main
aws:
  enabled: false
  bakery-defaults:
    aws-subnet-id: subnet-old
    templateFile: aws-ebs.json
files:
  profiles__rosco__packer__scripts__hello.sh: |
    #!/bin/sh
    echo hello
"#;

#[test]
fn bakery_edit_reads_the_secret_from_stdin_never_prints_it_and_keeps_the_operators_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kiln.yml");
    std::fs::write(&config, OPERATOR_FILE).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = [
        "edit",
        "--aws-access-key",
        "AKIAADMINTEST0000001",
        "--aws-secret-key",
        "--aws-subnet",
        "subnet-new",
        "--aws-associate-public-ip-address",
        "false",
    ];
    let out = bakery(&config, &args, &format!("{SECRET}\n"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    assert!(
        stdout.contains("aws.bakeryDefaults.awsSubnetId: subnet-old → subnet-new"),
        "{stdout}"
    );
    assert!(stdout.contains("awsSecretKey: (set)"), "{stdout}");
    assert!(stdout.contains("aws.enabled: false → true"), "{stdout}");
    assert!(stderr.contains("comments were not kept"), "{stderr}");
    assert_eq!(mode(&config), 0o600, "a file holding a secret is 0600");

    let v = yaml(&config);
    let d = &v["aws"]["bakeryDefaults"];
    assert_eq!(v["aws"]["enabled"], Value::Bool(true));
    assert_eq!(d["awsSubnetId"].as_str(), Some("subnet-new"));
    assert_eq!(d["awsSecretKey"].as_str(), Some(SECRET));
    assert_eq!(d["awsAssociatePublicIpAddress"], Value::Bool(false));
    assert_eq!(d["templateFile"].as_str(), Some("aws-ebs.json"));
    assert!(v["aws"].get("bakery-defaults").is_none(), "{v:?}");
    assert!(d.get("aws-subnet-id").is_none(), "replaced, not duplicated");
    assert_eq!(v["server"]["port"].as_u64(), Some(8087));
    assert!(v["debianRepository"].as_str().is_some());
    let script = &v["files"]["profiles__rosco__packer__scripts__hello.sh"];
    assert_eq!(script.as_str(), Some("#!/bin/sh\necho hello\n"));

    let shown = bakery(&config, &["show"], "");
    let (stdout, stderr) = text(&shown);
    assert!(shown.status.success(), "{stderr}");
    assert!(stdout.contains("awsSecretKey: '******'"), "{stdout}");
    assert!(stdout.contains("awsSubnetId: subnet-new"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));

    let out = bakery(&config, &["edit", "--no-credentials"], "");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("awsSecretKey: (removed)"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    let d = yaml(&config)["aws"]["bakeryDefaults"].clone();
    assert!(d.get("awsAccessKey").is_none() && d.get("awsSecretKey").is_none());
    assert_eq!(d["awsSubnetId"].as_str(), Some("subnet-new"));
}

#[test]
fn an_empty_secret_is_refused_and_a_missing_file_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("new.yml");
    let args = ["edit", "--aws-access-key", "AKIAX", "--aws-secret-key"];
    let out = bakery(&config, &args, "\n");
    assert!(!out.status.success());
    assert!(text(&out).1.contains("secret is empty"), "{:?}", text(&out));
    assert!(!config.exists(), "nothing written on refusal");

    let out = bakery(&config, &["edit", "--aws-vpc-id", "vpc-1"], "");
    assert!(out.status.success(), "{:?}", text(&out));
    let v = yaml(&config);
    assert_eq!(
        v["aws"]["bakeryDefaults"]["awsVpcId"].as_str(),
        Some("vpc-1")
    );
    assert_eq!(mode(&config), 0o644, "no secret, an ordinary file");

    let half = bakery(&config, &["edit", "--aws-access-key", "AKIAONLY"], "");
    assert!(
        !half.status.success(),
        "an access key alone would stop start-up"
    );
    assert!(text(&half).1.contains("go together"), "{:?}", text(&half));
}

#[test]
fn base_images_are_added_edited_listed_and_deleted_with_halyards_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kiln.yml");
    std::fs::write(&config, OPERATOR_FILE).unwrap();
    let img = |args: &[&str]| {
        let mut all = vec!["base-image"];
        all.extend_from_slice(args);
        bakery(&config, &all, "")
    };
    let add = [
        "add",
        "jammy",
        "--short-description",
        "Ubuntu 22.04",
        "--package-type",
        "deb",
        "--region",
        "us-east-1",
        "--instance-type",
        "t3.small",
        "--source-ami",
        "ami-12345678",
        "--ssh-user-name",
        "ubuntu",
    ];
    let out = img(&add);
    assert!(out.status.success(), "{:?}", text(&out));

    let again = img(&["add", "jammy"]);
    assert!(!again.status.success());
    let hint = "use `kiln config provider aws bakery base-image edit jammy`";
    assert!(
        text(&again).1.contains("base image 'jammy' exists; "),
        "{:?}",
        text(&again)
    );
    assert!(text(&again).1.contains(hint));
    let same_region = img(&["add", "jammy", "--region", "us-east-1"]);
    assert!(!same_region.status.success());
    assert!(
        text(&same_region).1.contains(hint),
        "{:?}",
        text(&same_region)
    );

    let out = img(&[
        "edit",
        "jammy",
        "--region",
        "us-west-2",
        "--source-ami",
        "ami-2222",
        "--spot-price",
        "0",
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let out = img(&[
        "edit",
        "jammy",
        "--region",
        "us-east-1",
        "--instance-type",
        "t3.large",
    ]);
    assert!(
        text(&out).0.contains("instanceType: t3.small → t3.large"),
        "{:?}",
        text(&out)
    );
    let missing = img(&["edit", "nope", "--os-type", "linux"]);
    assert!(
        text(&missing)
            .1
            .contains("base image 'nope' does not exist")
    );

    assert!(
        img(&[
            "add",
            "windows",
            "--package-type",
            "nupkg",
            "--os-type",
            "windows"
        ])
        .status
        .success()
    );
    let list = text(&img(&["list"])).0;
    assert!(
        list.contains("jammy: us-east-1 (hvm), us-west-2 (hvm)"),
        "{list}"
    );
    assert!(list.contains("windows: (no regions)"), "{list}");

    let v = yaml(&config);
    let jammy = &v["aws"]["bakeryDefaults"]["baseImages"][0];
    assert_eq!(
        jammy["baseImage"]["shortDescription"].as_str(),
        Some("Ubuntu 22.04")
    );
    let east = &jammy["virtualizationSettings"][0];
    assert_eq!(east["instanceType"].as_str(), Some("t3.large"));
    assert_eq!(east["sshUserName"].as_str(), Some("ubuntu"));
    assert_eq!(
        jammy["virtualizationSettings"][1]["spotPrice"].as_str(),
        Some("0")
    );
    assert_eq!(
        v["aws"]["bakeryDefaults"]["aws-subnet-id"].as_str(),
        Some("subnet-old"),
        "keys the edit does not set stay as written"
    );

    assert!(img(&["delete", "windows"]).status.success());
    let gone = img(&["delete", "windows"]);
    assert!(!gone.status.success());
    assert!(!text(&img(&["list"])).0.contains("windows"));
}

fn validate(config: &Path) -> (bool, String) {
    let out = kiln_cli(config, &["config", "validate"], "");
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

#[test]
fn config_validate_passes_a_good_config_and_names_a_broken_template() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = format!(
        r#"kiln:
  dataDir: {data}
aws:
  enabled: true
  bakeryDefaults:
    templateFile: aws-ebs.json
    baseImages:
    - baseImage: {{id: jammy, packageType: deb}}
      virtualizationSettings:
      - {{region: us-east-1, instanceType: t3.micro, sourceAmi: ami-12345678, sshUserName: ubuntu}}
"#,
        data = data.display()
    );
    let config = dir.path().join("kiln.yml");
    std::fs::write(&config, &good).unwrap();
    let (ok, out) = validate(&config);
    assert!(ok, "{out}");
    for t in ["aws-ebs.json", "aws-multi-ebs.json", "aws-chroot.json"] {
        assert!(out.contains(&format!("OK      {t}")), "{out}");
    }
    assert!(!data.exists(), "validating changes nothing on disk");

    let broken =
        format!("{good}files:\n  profiles__rosco__packer__custom.json: '{{\"builders\": [ }}'\n");
    std::fs::write(&config, broken).unwrap();
    let (ok, out) = validate(&config);
    assert!(!ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("custom.json"))
        .unwrap_or_default();
    assert!(
        line.starts_with("FAILED") && line.contains("parse"),
        "{out}"
    );
    assert!(out.contains("OK      aws-ebs.json"), "{out}");

    std::fs::write(&config, "server: [port\n").unwrap();
    let (ok, out) = validate(&config);
    assert!(!ok && out.contains("malformed YAML"), "{out}");
}
