//! Errors that people read name their cause once (issue 13, item 7): an error type that keeps
//! its cause leaves it out of its own message, and kiln prints the chain once.

use crate::harness::*;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_bake_store_that_cannot_open_is_named_once_in_kilns_exit_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A folder where the database file belongs: SQLite cannot open it.
    std::fs::create_dir_all(data.join("kiln.db")).unwrap();
    let config = dir.path().join("kiln.yml");
    std::fs::write(&config, "aws:\n  enabled: true\n").unwrap();
    let out = Command::new(KILN)
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the bake store: failed to open the sqlite bake store: "),
        "{stderr}"
    );
    assert_eq!(count(&stderr, "bake store unavailable"), 1, "{stderr}");
    assert_eq!(
        count(&stderr, "unable to open database file"),
        1,
        "{stderr}"
    );
}

#[test]
fn a_packer_that_cannot_start_is_named_once_in_the_bakes_error() {
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let yaml = r#"aws:
  enabled: true
  bakeryDefaults:
    templateFile: aws-ebs.json
    baseImages:
    - baseImage: {id: ubuntu, packageType: deb}
      virtualizationSettings:
      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-785db401}
kiln:
  packerPath: /nonexistent/kiln-test/packer
"#;
    let kiln = start_marked(data.path(), yaml, &mark, &[]);
    let id = kiln.bake_id(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    );
    let s = kiln.wait(&id, Duration::from_secs(60));
    assert_eq!(s["result"], "FAILURE", "{s}");
    let seen = format!("{s} {}", kiln.log(&id));
    assert!(
        seen.contains("failed to start /nonexistent/kiln-test/packer: "),
        "{seen}"
    );
    assert_eq!(count(&seen, "No such file or directory"), 1, "{seen}");
    assert_nothing_left(&mark, &[kiln.pid()]);
}
