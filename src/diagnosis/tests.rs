use super::*;
use crate::builders::packer::output::{Outcome, human_text, parse_line};

/// What kiln has when a bake fails: the errors Packer reported and the log's human text.
fn diagnose_output(raw: &str) -> Option<Diagnosis> {
    let mut outcome = Outcome::default();
    let mut log = String::new();
    for line in raw.lines() {
        match parse_line(line) {
            Some(event) => {
                outcome.feed(&event);
                if let Some(text) = human_text(&event) {
                    log.push_str(&text);
                    log.push('\n');
                }
            }
            None => log.push_str(line),
        }
    }
    // A build's error line (`<ts>,<builder>,error,…`) is an error even without its ui line.
    for line in raw.lines() {
        let f: Vec<&str> = line.splitn(4, ',').collect();
        if f.len() == 4 && f[2] == "error" && !f[1].is_empty() {
            outcome.errors.push(f[3].to_string());
        }
    }
    diagnose(&outcome.errors, &log)
}

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!("../../tests/fixtures/", $path))
    };
}

/// Each signature on output: captured from real Packer 1.6.6 (against moto, or the SSH chroot
/// bake) where moto can produce it, hand-made from AWS's documented messages where it cannot.
#[test]
fn each_signature_is_recognised_in_its_output() {
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        // captured
        (
            "output/ebs-bad-ami.log",
            fixture!("output/ebs-bad-ami.log"),
            "ami_not_found",
            None,
        ),
        (
            "output/ebs-ssh-install-fails.log",
            fixture!("output/ebs-ssh-install-fails.log"),
            "package_not_found",
            Some("package: kiln-missing"),
        ),
        (
            "diagnosis/moto-bad-subnet.log",
            fixture!("diagnosis/moto-bad-subnet.log"),
            "vpc_subnet",
            None,
        ),
        (
            "diagnosis/moto-bad-vpc.log",
            fixture!("diagnosis/moto-bad-vpc.log"),
            "vpc_subnet",
            None,
        ),
        (
            "diagnosis/moto-ssh-timeout.log",
            fixture!("diagnosis/moto-ssh-timeout.log"),
            "ssh_timeout",
            None,
        ),
        // hand-made from AWS's documented messages
        (
            "diagnosis/handmade-unauthorized.log",
            fixture!("diagnosis/handmade-unauthorized.log"),
            "unauthorized_operation",
            Some("missing action: ec2:RunInstances"),
        ),
        (
            "diagnosis/handmade-unauthorized-encoded.log",
            fixture!("diagnosis/handmade-unauthorized-encoded.log"),
            "unauthorized_operation",
            None,
        ),
        (
            "diagnosis/handmade-instance-limit.log",
            fixture!("diagnosis/handmade-instance-limit.log"),
            "instance_capacity",
            None,
        ),
        (
            "diagnosis/handmade-insufficient-capacity.log",
            fixture!("diagnosis/handmade-insufficient-capacity.log"),
            "instance_capacity",
            None,
        ),
        (
            "diagnosis/handmade-spot-price.log",
            fixture!("diagnosis/handmade-spot-price.log"),
            "spot_capacity",
            None,
        ),
        (
            "diagnosis/handmade-kms.log",
            fixture!("diagnosis/handmade-kms.log"),
            "kms_access",
            None,
        ),
        (
            "diagnosis/handmade-dpkg.log",
            fixture!("diagnosis/handmade-dpkg.log"),
            "package_install_failed",
            None,
        ),
        (
            "diagnosis/handmade-yum-missing.log",
            fixture!("diagnosis/handmade-yum-missing.log"),
            "package_not_found",
            Some("package: kiln-missing"),
        ),
        (
            "diagnosis/handmade-disk-full.log",
            fixture!("diagnosis/handmade-disk-full.log"),
            "disk_full",
            None,
        ),
    ];
    for (name, text, code, detail) in cases {
        let d = diagnose_output(text).unwrap_or_else(|| panic!("{name}: no diagnosis"));
        assert_eq!(d.code, *code, "{name}: {d:?}");
        assert!(!d.hint.is_empty());
        if let Some(detail) = detail {
            assert!(d.summary.contains(detail), "{name}: {}", d.summary);
        }
    }
    let encoded = diagnose_output(fixture!("diagnosis/handmade-unauthorized-encoded.log")).unwrap();
    assert!(!encoded.summary.contains("missing action"), "{encoded:?}");
}

#[test]
fn a_successful_or_unknown_failure_has_no_diagnosis() {
    assert_eq!(diagnose_output(fixture!("output/ebs-ssh.log")), None);
    assert_eq!(diagnose(&["packer exited with code 1".into()], ""), None);
}

#[test]
fn errors_come_before_the_log_and_the_log_is_read_from_its_end() {
    // The log mentions a package problem, the error is the real cause.
    let d = diagnose(
        &["InvalidAMIID.NotFound: The image id '[ami-1]' does not exist".into()],
        "E: Unable to locate package foo\n",
    )
    .unwrap();
    assert_eq!(d.code, "ami_not_found");
    // A signature far before the last 64 KiB of a long log is not the bake's end.
    let long = format!(
        "No space left on device\n{}",
        "x".repeat(LOG_TAIL_BYTES + 10)
    );
    assert_eq!(diagnose(&[], &long), None);
    // Hostile text: multi-byte characters at the cut, an endless "package name".
    let odd = format!(
        "{}Unable to locate package {}",
        "é".repeat(40_000),
        "a".repeat(10_000)
    );
    let d = diagnose(&[], &odd).unwrap();
    assert!(d.summary.len() < 400, "{}", d.summary.len());
}

#[test]
fn the_log_line_names_code_summary_and_hint() {
    let d = diagnose(&["InstanceLimitExceeded: too many".into()], "").unwrap();
    let line = d.log_line();
    assert!(
        line.starts_with("kiln: diagnosis [instance_capacity]: "),
        "{line}"
    );
    assert!(
        line.contains("Hint: lower kiln.jobs.maxConcurrent"),
        "{line}"
    );
}
