//! Rosco's `AWSBakeHandlerSpec` cases of the source image, against a stand-in lookup: ids pass
//! through, names resolve by Rosco's rule, the dynamic key, the 400 message, and the identity.

use crate::bake::BakeRequest;
use crate::config::Settings;
use crate::providers::recipe::{Prepared, RecipeContext};
use crate::providers::registry::prepare;
use crate::services::source_images::{Candidate, LookupError, NameQuery, SourceImages};
use serde_json::{Value, json};
use std::sync::Mutex;

const CONFIG: &str = r#"
aws:
  enabled: true
  defaultAccount: test
  base:
    bionic.hvm.release.us-east-1: ami-0bionic1
    trusty:
      hvm:
        candidate:
          us-east-1: trusty-candidate-*
  bakeryDefaults:
    defaultVirtualizationType: hvm
    baseImages:
    - baseImage: {id: ubuntu, packageType: deb}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-12345678}
    - baseImage: {id: xenial, packageType: deb}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, mostRecent: true,
         sourceAmi: ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-}
    - baseImage: {id: xenial-not-recent, packageType: deb}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, mostRecent: false,
         sourceAmi: ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-, sourceAmiOwner: "099720109477"}
    - baseImage: {id: bionic, packageType: deb}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro}
    - baseImage: {id: trusty, packageType: deb}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro}
"#;

/// A stand-in lookup answering with the spec's three xenial images, recording its queries.
#[derive(Default)]
struct StandIn {
    seen: Mutex<Vec<NameQuery>>,
    fail: bool,
}

impl SourceImages for StandIn {
    fn find(&self, q: &NameQuery) -> Result<Vec<Candidate>, LookupError> {
        self.seen.lock().unwrap().push(q.clone());
        if self.fail {
            return Err(LookupError {
                name: q.name.clone(),
                detail: "HTTP 503 (after 3 tries)".into(),
            });
        }
        let image = |id: &str, date: &str| Candidate {
            id: Some(id.into()),
            virtualization_type: Some("hvm".into()),
            creation_date: Some(date.into()),
        };
        Ok(match q.name.as_str() {
            n if n.starts_with("ubuntu/images/hvm-ssd/ubuntu-xenial") => vec![
                image("ami-20200126", "2020-02-26T00:00:00Z"),
                image("ami-20201210", "2021-01-10T00:00:00Z"),
                image("ami-20201009", "2020-11-09T00:00:00Z"),
            ],
            "trusty-candidate-*" => vec![image("ami-0trusty2", "2020-01-01T00:00:00Z")],
            "evil" => vec![image(
                "{{env `AWS_SECRET_ACCESS_KEY`}}",
                "2020-01-01T00:00:00Z",
            )],
            _ => Vec::new(),
        })
    }
    fn via(&self) -> &'static str {
        "stand-in"
    }
}

fn settings() -> Settings {
    crate::config::load_str(CONFIG, &|_| None).unwrap().settings
}

fn prepare_with(
    settings: &Settings,
    images: &StandIn,
    body: Value,
    now_ms: i64,
) -> Result<Prepared, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aws-ebs.json"), "{}").unwrap();
    let req = BakeRequest::from_json(body.to_string().as_bytes()).map_err(|e| e.0)?;
    let ctx = RecipeContext {
        settings,
        config_dir: dir.path(),
        region: "us-east-1",
        now_ms,
        images,
    };
    prepare(&req, &ctx).map_err(|e| e.to_string())
}

fn var<'a>(p: &'a Prepared, name: &str) -> Option<&'a str> {
    p.plan
        .variables
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_configured_id_is_used_as_it_is_and_nothing_is_looked_up() {
    let images = StandIn::default();
    let p = prepare_with(
        &settings(),
        &images,
        json!({"package": "kato", "base_os": "ubuntu"}),
        1,
    )
    .unwrap();
    assert_eq!(var(&p, "aws_source_ami"), Some("ami-12345678"));
    assert_eq!(p.source_name, None);
    assert!(images.seen.lock().unwrap().is_empty());
    assert!(var(&p, "aws_source_ami_name").is_none());
}

#[test]
fn a_name_resolves_by_roscos_most_recent_rule_before_packer_runs() {
    let images = StandIn::default();
    for (os, expected) in [
        ("xenial", "ami-20201210"),
        ("xenial-not-recent", "ami-20200126"),
    ] {
        let p = prepare_with(
            &settings(),
            &images,
            json!({"package": "kato", "base_os": os}),
            1,
        )
        .unwrap();
        assert_eq!(var(&p, "aws_source_ami"), Some(expected), "{os}");
        assert_eq!(
            p.source_name.as_deref(),
            Some("ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-")
        );
        assert_eq!(p.identity.inputs["source_image"], expected);
    }
    let seen = images.seen.lock().unwrap();
    // account: the request's, else aws.defaultAccount; owners: sourceAmiOwner, else self.
    assert_eq!(seen[0].account.as_deref(), Some("test"));
    assert_eq!(seen[0].owners, vec!["self"]);
    assert_eq!(seen[1].owners, vec!["099720109477"]);
    assert_eq!(seen[0].region, "us-east-1");
}

#[test]
fn the_requests_base_ami_wins_and_is_looked_up_when_a_name() {
    let images = StandIn::default();
    let body = json!({"package": "kato", "base_os": "ubuntu", "account_name": "prod",
                      "base_ami": "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*"});
    let p = prepare_with(&settings(), &images, body, 1).unwrap();
    assert_eq!(var(&p, "aws_source_ami"), Some("ami-20200126"));
    assert_eq!(
        images.seen.lock().unwrap()[0].account.as_deref(),
        Some("prod")
    );
    let body = json!({"package": "kato", "base_os": "xenial", "base_ami": "ami-0given"});
    let p = prepare_with(&settings(), &images, body, 1).unwrap();
    assert_eq!(var(&p, "aws_source_ami"), Some("ami-0given"));
}

#[test]
fn the_dynamic_key_names_the_base_when_none_is_configured() {
    let images = StandIn::default();
    let body = json!({"package": "kato", "base_os": "bionic", "base_label": "release"});
    let p = prepare_with(&settings(), &images, body, 1).unwrap();
    assert_eq!(var(&p, "aws_source_ami"), Some("ami-0bionic1"));
    let body = json!({"package": "kato", "base_os": "trusty", "base_label": "CANDIDATE"});
    let p = prepare_with(&settings(), &images, body, 1).unwrap();
    assert_eq!(var(&p, "aws_source_ami"), Some("ami-0trusty2"));
    assert_eq!(p.source_name.as_deref(), Some("trusty-candidate-*"));
}

#[test]
fn no_match_is_roscos_400_message_before_packer() {
    let images = StandIn::default();
    let body = json!({"package": "kato", "base_os": "trusty", "base_label": "previous"});
    let e = prepare_with(&settings(), &images, body, 1).unwrap_err();
    assert_eq!(
        e,
        "No base image found for os 'trusty', vm type 'hvm', region 'us-east-1', label: 'previous', account: 'test'"
    );
    let body = json!({"package": "kato", "base_os": "ubuntu", "base_ami": "nothing-by-this-name"});
    let e = prepare_with(&settings(), &images, body, 1).unwrap_err();
    assert!(e.starts_with("No base image found for os 'ubuntu'"), "{e}");
    assert!(e.ends_with("label: 'null', account: 'test'"), "{e}");
    // An answer that is no image id is no match, never a Packer value.
    let body = json!({"package": "kato", "base_os": "ubuntu", "base_ami": "evil"});
    let e = prepare_with(&settings(), &images, body, 1).unwrap_err();
    assert!(e.starts_with("No base image found for os 'ubuntu'"), "{e}");
}

#[test]
fn a_failed_lookup_is_no_400_but_says_why() {
    let images = StandIn {
        fail: true,
        ..StandIn::default()
    };
    let req = BakeRequest {
        base_os: Some("xenial".into()),
        ..BakeRequest::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let s = settings();
    let ctx = RecipeContext {
        settings: &s,
        config_dir: dir.path(),
        region: "us-east-1",
        now_ms: 1,
        images: &images,
    };
    let e = super::select(&req, &ctx).unwrap_err();
    assert!(matches!(e, super::BakeError::Lookup(_)), "{e:?}");
    assert!(e.to_string().contains("HTTP 503 (after 3 tries)"), "{e}");
}

#[test]
fn the_identity_covers_the_resolved_id_and_not_the_suffix() {
    let images = StandIn::default();
    let run = |suffix: &str, now: i64| {
        let body = json!({"package": "kato", "base_os": "xenial", "ami_suffix": suffix});
        prepare_with(&settings(), &images, body, now).unwrap()
    };
    let (first, second) = (run("20260101120000", 1), run("20260102120000", 2));
    assert_eq!(first.identity.digest, second.identity.digest);
    assert_eq!(
        var(&first, "aws_target_ami"),
        Some("kato-all-20260101120000-xenial")
    );
    assert_eq!(
        first.identity.inputs["image_name"],
        "kato-all-{suffix}-xenial"
    );
    // The clock names a bake without a suffix: also left out.
    let body = || json!({"package": "kato", "base_os": "xenial"});
    let a = prepare_with(&settings(), &images, body(), 1000).unwrap();
    let b = prepare_with(&settings(), &images, body(), 2000).unwrap();
    assert_eq!(a.identity.digest, b.identity.digest);
    // A new base AMI is a new bake.
    let other = json!({"package": "kato", "base_os": "xenial-not-recent", "ami_suffix": "1"});
    let c = prepare_with(&settings(), &images, other, 1).unwrap();
    assert_ne!(
        c.identity.inputs["source_image"],
        first.identity.inputs["source_image"]
    );
}

#[test]
fn orcas_forwarded_values_are_read_as_roscos_jackson_reads_them() {
    let images = StandIn::default();
    let body = json!({"package": "kato", "base_os": "ubuntu", "upgrade": "true",
                      "vm_type": "HVM", "package_type": "DEB", "enhanced_networking": "false",
                      "build_number": 42, "base_label": null, "package_artifacts": [],
                      "extended_attributes": {"aws_instance_type": "  m5.large ", "blank": " ",
                                              "aws_subnet_id": ""}});
    let p = prepare_with(&settings(), &images, body, 1).unwrap();
    assert_eq!(var(&p, "upgrade"), Some("true"));
    assert_eq!(var(&p, "aws_instance_type"), Some("m5.large"));
    assert!(var(&p, "blank").is_none() && var(&p, "aws_subnet_id").is_none());
    assert!(var(&p, "aws_ena_support").is_none());
}
