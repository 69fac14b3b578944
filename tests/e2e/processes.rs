//! Processes and files under attack (issue 11, items 11, 12, 13, 15): a killed supervisor leaks
//! no cloud resource and no Packer, no secret-bearing file survives a SIGKILL, kiln needs no
//! `$TMPDIR`/`$XDG_RUNTIME_DIR` and leaves no temp files, and Packer never phones home. Real
//! Packer 1.6.6 against moto on loopback.

use crate::harness::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The value of a masked variable: it must reach Packer and no file, log or answer.
const TOKEN: &str = "kilnMaskedToken-0123456789abcdefXYZ";
const SECRET: &str = "kilnProcessesSecret/0123456789abcdefghij";
/// Folders that do not exist: kiln must not need them.
const NO_TMPDIR: &str = "/nonexistent/kiln-test/tmpdir";
const NO_RUNTIME_DIR: &str = "/nonexistent/kiln-test/runtime";

/// The no-SSH moto template, with a masked variable `kiln_token` that its provisioner prints
/// (as a digest, and as-is to prove redaction), and a sleep that keeps the bake in flight.
fn template(seconds: u32) -> String {
    let text = std::fs::read_to_string(format!("{REPO}/tests/fixtures/packer/aws-ebs-nossh.json"))
        .unwrap();
    let mut t: Value = serde_json::from_str(&text).unwrap();
    t["variables"]["kiln_token"] = json!("");
    t["provisioners"][0]["environment_vars"]
        .as_array_mut()
        .unwrap()
        .push(json!("TOKEN={{user `kiln_token`}}"));
    t["provisioners"][0]["inline"] = json!([
        "echo token=$TOKEN",
        "printf 'token digest %s\\n' \"$(printf %s \"$TOKEN\" | sha256sum | cut -c1-64)\"",
        "echo slow provisioner starts",
        format!("sleep {seconds}"),
        "echo slow provisioner done"
    ]);
    t.to_string()
}

fn config(moto: &Moto, seed: &Value, seconds: u32) -> String {
    let base = moto_config(moto, seed, SECRET, "kiln:\n  jobs:\n    killGrace: 30s\n")
        .replace(
            "    awsSkipValidation: true\n",
            "    awsSkipValidation: true\n    maskedPackerParameters: [aws_access_key, aws_secret_key, kiln_token]\n",
        )
        .replace(
            "templateFile: aws-ebs-nossh.json",
            "templateFile: aws-ebs-token.json",
        );
    with_file(&base, "aws-ebs-token.json", &template(seconds))
}

fn request() -> Value {
    json!({"package": "nginx", "base_os": "ubuntu", "extended_attributes": {"kiln_token": TOKEN}})
}

/// kiln with the marker, no usable `$TMPDIR`/`$XDG_RUNTIME_DIR`, and an empty
/// `CHECKPOINT_DISABLE` (which Packer takes as "phone home"): whatever Packer gets, kiln set.
fn start(data: &Path, yaml: &str, mark: &str) -> Kiln {
    start_marked(
        data,
        yaml,
        mark,
        &[
            ("TMPDIR", NO_TMPDIR),
            ("XDG_RUNTIME_DIR", NO_RUNTIME_DIR),
            ("CHECKPOINT_DISABLE", ""),
        ],
    )
}

/// The pid of the supervisor of bake `id`.
fn supervisor_of(mark: &str, id: &str) -> String {
    processes_mentioning(mark)
        .into_iter()
        .find(|p| p.contains("__supervise") && p.contains(id))
        .and_then(|p| p.split(':').next().map(String::from))
        .unwrap_or_else(|| panic!("no supervisor for {id}"))
}

fn kill9(pid: &str) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .unwrap();
    assert!(status.success());
}

fn assert_builder_running(moto: &Moto) {
    let instances = moto.inspect("instances", &["us-east-1"]);
    assert!(
        instances
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["state"] == "running"),
        "the builder instance runs: {instances}"
    );
}

fn settled_by_supervisor_death(kiln: &Kiln, id: &str) {
    let s = kiln.wait(id, Duration::from_secs(90));
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("CANCELED"), Some("FAILURE")),
        "{}",
        kiln.log(id)
    );
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["cause"], "supervisor_died", "{view}");
    let log = kiln.log(id);
    assert!(log.contains("supervisor"), "{log}");
}

fn temp_entries(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_killed_supervisor_s_packer_is_stopped_and_cleans_up_its_builder_key_pair_and_group() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let kiln = start(data.path(), &config(&moto, &seed, 300), &mark);
    let id = kiln.bake_id("us-east-1", &request());
    wait_for_log(&kiln, &id, "slow provisioner starts");
    assert_builder_running(&moto);

    let began = Instant::now();
    kill9(&supervisor_of(&mark, &id));
    settled_by_supervisor_death(&kiln, &id);
    eprintln!(
        "bake settled {:?} after its supervisor was killed",
        began.elapsed()
    );
    assert_nothing_left(&mark, &[kiln.pid()]);
    assert_cloud_clean(&moto);
    assert!(
        temp_entries(data.path()).is_empty(),
        "{:?}",
        temp_entries(data.path())
    );
}

#[test]
fn after_a_sigkill_of_kiln_and_its_supervisor_no_file_holds_a_secret_and_the_restart_cleans_up() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let yaml = config(&moto, &seed, 300);
    let mut kiln = start(data.path(), &yaml, &mark);
    let id = kiln.bake_id("us-east-1", &request());
    wait_for_log(&kiln, &id, "slow provisioner starts");
    assert_builder_running(&moto);
    let supervisor = supervisor_of(&mark, &id);
    kiln.kill();
    kill9(&supervisor);
    std::thread::sleep(Duration::from_millis(500));

    // Packer still runs, holding the token; no file of kiln's holds it (the config file holds
    // the AWS secret by the test's own doing, so that one is checked in kiln's files only).
    let packer_alive = processes_mentioning(&mark)
        .iter()
        .any(|p| p.contains("packer") && p.contains("build"));
    assert!(packer_alive, "Packer outlives its supervisor (no SIGPIPE)");
    let holding = files_containing(data.path(), TOKEN);
    assert!(
        holding.is_empty(),
        "files holding the masked variable: {holding:?}"
    );
    let holding: Vec<_> = files_containing(data.path(), SECRET)
        .into_iter()
        .filter(|p| !p.ends_with("kiln.yml"))
        .collect();
    assert!(
        holding.is_empty(),
        "files holding the AWS secret: {holding:?}"
    );
    assert!(!Path::new(NO_TMPDIR).exists() && !Path::new(NO_RUNTIME_DIR).exists());

    let kiln = start(data.path(), &yaml, &mark);
    settled_by_supervisor_death(&kiln, &id);
    assert_nothing_left(&mark, &[kiln.pid()]);
    assert_cloud_clean(&moto);
    assert!(
        temp_entries(data.path()).is_empty(),
        "{:?}",
        temp_entries(data.path())
    );
    assert!(files_containing(data.path(), TOKEN).is_empty());
}

#[test]
fn without_tmpdir_a_bake_with_a_masked_variable_and_validate_work_and_leave_no_temp_files() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let yaml = config(&moto, &seed, 6);
    let kiln = start(data.path(), &yaml, &mark);
    let id = kiln.bake_id("us-east-1", &request());
    wait_for_log(&kiln, &id, "slow provisioner starts");

    // Packer never phones home: kiln set CHECKPOINT_DISABLE=1 (its own environment has it empty).
    let pgid = std::fs::read_to_string(data.path().join(format!("runs/{id}/pgid"))).unwrap();
    let environ = std::fs::read(format!("/proc/{}/environ", pgid.trim())).unwrap();
    let vars: Vec<String> = environ
        .split(|&b| b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(vars.iter().any(|v| v == "CHECKPOINT_DISABLE=1"), "{vars:?}");
    let tmp = vars.iter().find_map(|v| v.strip_prefix("TMPDIR=")).unwrap();
    assert!(
        tmp.starts_with(&data.path().join("tmp").display().to_string()),
        "Packer's temp folder is kiln's own: {tmp}"
    );
    assert!(
        !vars.iter().any(|v| v.contains(TOKEN)),
        "no secret in Packer's environment"
    );

    let s = kiln.wait(&id, Duration::from_secs(120));
    let log = kiln.log(&id);
    assert_eq!(s["state"], "COMPLETED", "{log}");
    assert_eq!(s["result"], "SUCCESS", "{log}");
    let digest = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(TOKEN.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert!(
        log.contains(&format!("token digest {digest}")),
        "Packer got the token: {log}"
    );
    assert!(
        log.contains("token=******") && !log.contains(TOKEN),
        "{log}"
    );
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).body;
    assert!(!view.contains(TOKEN), "{view}");
    assert!(
        view.contains("<masked variables, in memory>"),
        "the shown command says where the masked variables went: {view}"
    );
    assert_nothing_left(&mark, &[kiln.pid()]);
    assert!(
        temp_entries(data.path()).is_empty(),
        "{:?}",
        temp_entries(data.path())
    );
    assert!(files_containing(data.path(), TOKEN).is_empty());

    // `kiln config validate` too: its scratch copy and Packer's temp files go to the data dir.
    let config = data.path().join("kiln.yml");
    let with_dir = format!("{yaml}\n");
    let with_dir = with_dir.replacen(
        "kiln:\n",
        &format!("kiln:\n  dataDir: {}\n", data.path().display()),
        1,
    );
    std::fs::write(&config, with_dir).unwrap();
    let out = std::process::Command::new(KILN)
        .arg("--config")
        .arg(&config)
        .args(["config", "validate"])
        .env("TMPDIR", NO_TMPDIR)
        .env("XDG_RUNTIME_DIR", NO_RUNTIME_DIR)
        .env("CHECKPOINT_DISABLE", "")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("OK      aws-ebs-token.json"), "{text}");
    assert!(
        temp_entries(data.path()).is_empty(),
        "{:?}",
        temp_entries(data.path())
    );
}

/// Unmounts a test's tmpfs when dropped (lazily: a killed kiln may still hold files in it).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_bake_whose_packer_finished_while_the_data_dir_was_full_is_settled_with_its_ami_later() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&data)
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    }
    let _unmount = Unmount(data.clone());
    // A stand-in for Packer that misbehaves only in timing: it ends when told to, with a result.
    let go = dir.path().join("go");
    let packer = dir.path().join("packer-at-will");
    std::fs::write(
        &packer,
        format!(
            "#!/bin/sh\necho \"$(date +%s),,ui,say,waiting for the go\"\nwhile [ ! -e {go} ]; do sleep 0.05; done\n\
             echo \"$(date +%s),amazon-ebs,artifact-count,1\"\n\
             echo \"$(date +%s),amazon-ebs,artifact,0,id,us-east-1:ami-0fulldisk\"\n\
             echo \"$(date +%s),amazon-ebs,artifact,0,end\"\nexit 0\n",
            go = go.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&packer, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let yaml = stand_in_config(&packer.display().to_string(), "");
    let mark = marker();
    let kiln = start(&data, &yaml, &mark);
    let id = kiln.bake_id(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    );
    wait_for_log(&kiln, &id, "waiting for the go");

    let filler = data.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    std::fs::write(&go, "").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let s = kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
    assert_eq!(
        s["state"], "RUNNING",
        "not settled (nor lost) while its result waits: {s}"
    );
    assert!(!data.join(format!("runs/{id}/exit")).exists());

    std::fs::remove_file(&filler).unwrap();
    let s = kiln.wait(&id, Duration::from_secs(60));
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("COMPLETED"), Some("SUCCESS")),
        "{}",
        kiln.log(&id)
    );
    let bake = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    assert_eq!(bake["ami"], "ami-0fulldisk", "{bake}");
    assert_nothing_left(&mark, &[kiln.pid()]);
}
