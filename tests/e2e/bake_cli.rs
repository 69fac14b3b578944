//! `kiln bake` and `kiln bakes …`: the real binary as a client of a real kiln baking with real
//! Packer against moto — a bake to its AMI, a failing bake's diagnosis and log tail, Ctrl-C that
//! asks and cancels — plus the timeline and the phase metrics those bakes leave.

use crate::harness::*;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "kilnCliSecretKey/DoNotLeak+0123456789abcd";

/// `kiln <args…> --server <kiln>` with stdin closed; its output.
fn cli(kiln: &Kiln, args: &[&str]) -> Output {
    Command::new(KILN)
        .args(args)
        .args(["--server", &format!("http://{}", kiln.addr)])
        .stdin(Stdio::null())
        .output()
        .expect("run kiln")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A config whose template's provisioner sleeps `seconds` between two echo lines.
fn slow_config(moto: &Moto, seed: &Value, seconds: u32) -> String {
    let tpl = std::fs::read_to_string(format!("{REPO}/tests/fixtures/packer/aws-ebs-nossh.json"))
        .unwrap();
    let mut t: Value = serde_json::from_str(&tpl).unwrap();
    t["provisioners"][0]["inline"] = json!([
        "echo slow provisioner starts",
        format!("sleep {seconds}"),
        "echo slow provisioner done"
    ]);
    let base = moto_config(moto, seed, SECRET, "kiln:\n  jobs:\n    killGrace: 30s\n").replace(
        "templateFile: aws-ebs-nossh.json",
        "templateFile: aws-ebs-slow.json",
    );
    with_file(&base, "aws-ebs-slow.json", &t.to_string())
}

#[test]
fn kiln_bake_follows_a_real_bake_and_prints_its_ami_with_the_timeline() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &moto_config(&moto, &seed, SECRET, ""));
    let started = Instant::now();
    let out = cli(
        &kiln,
        &[
            "bake",
            "--package",
            "hello_1.0-h4.abc123_all",
            "--base-os",
            "ubuntu",
            "--region",
            "us-east-1",
            "--provider",
            "aws",
            "-e",
            "note=cli",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("kiln bake took {:.1?}", started.elapsed());
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    // stdout is the AMI alone; progress and the log went to stderr as plain lines.
    let ami = stdout.trim();
    assert!(ami.starts_with("ami-") && !ami.contains('\n'), "{stdout:?}");
    assert_eq!(moto.inspect("image", &["us-east-1", ami])["exists"], true);
    for line in [
        "kiln: bake ",
        "started on http://",
        "==> amazon-ebs: Launching a source AWS instance",
        "kiln: timeline",
        "  launch ",
        "succeeded",
    ] {
        assert!(stderr.contains(line), "{line:?} missing from:\n{stderr}");
    }
    assert!(
        !stderr.contains('\r') && !stderr.contains("\x1b["),
        "no terminal codes off a terminal"
    );

    // The view's timeline: every phase of this bake, in order, ended, non-negative.
    let id = kiln
        .get(&format!("/api/v1/us-east-1/logs/image/{ami}"))
        .json();
    assert!(id["logsContent"].is_string());
    let found = kiln.post("/api/kiln/v1/us-east-1/bakes", &json!({"package": "hello_1.0-h4.abc123_all", "base_os": "ubuntu", "cloud_provider_type": "aws", "extended_attributes": {"note": "cli"}, "user": std::env::var("USER").unwrap_or_else(|_| "kiln-cli".into())})).json();
    assert_eq!(found["reused"], true, "{found}");
    let view = &found["bake"];
    let id = view["id"].as_str().unwrap().to_string();
    let phases: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["launch", "provision", "stop", "create_image"],
        "{view}"
    );
    eprintln!("aws timeline on moto: {}", view["timeline"]);
    for p in view["timeline"].as_array().unwrap() {
        assert!(p["seconds"].as_f64().unwrap() >= 0.0, "{p}");
        assert!(p["ended_ms"].as_i64().unwrap() >= p["started_ms"].as_i64().unwrap());
    }
    assert_eq!(view["diagnosis"], Value::Null);
    let metrics = kiln.get("/metrics").body;
    for phase in phases {
        let line = format!("kiln_bake_phase_seconds_count{{phase=\"{phase}\",provider=\"aws\"}} 1");
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }
    // The settled bake's run dir is gone; its log is in the store.
    assert!(!data.path().join("runs").join(&id).exists());

    // `kiln bakes show|logs` find the server through KILN_SERVER too.
    let show = Command::new(KILN)
        .args(["bakes", "show", &id])
        .env("KILN_SERVER", format!("http://{}", kiln.addr))
        .output()
        .unwrap();
    let shown = text(&show.stdout);
    assert!(show.status.success(), "{shown}{}", text(&show.stderr));
    assert!(shown.contains(&format!("bake {id} succeeded")), "{shown}");
    assert!(
        shown.contains(&format!("image: {ami}")) && shown.contains("timeline:"),
        "{shown}"
    );
    let logs = cli(&kiln, &["bakes", "logs", &id]);
    assert!(
        text(&logs.stdout).contains("amazon-ebs"),
        "{}",
        text(&logs.stderr)
    );
    let followed = cli(&kiln, &["bakes", "logs", "--follow", &id]);
    assert!(followed.status.success());
    assert_eq!(text(&followed.stdout).trim(), kiln.log(&id).trim());
    let unknown = cli(&kiln, &["bakes", "show", "no-such-bake"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no bake with id 'no-such-bake'"));
    assert!(!shown.contains(SECRET) && !stderr.contains(SECRET));
}

#[test]
fn a_failing_bake_exits_non_zero_with_the_error_the_diagnosis_and_the_logs_tail() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let yaml = moto_config(&moto, &seed, SECRET, "").replace(
        &format!("awsSubnetId: {}", seed["subnet_id"].as_str().unwrap()),
        "awsSubnetId: subnet-deadbeef",
    );
    let kiln = Kiln::start(data.path(), &yaml);
    let out = cli(
        &kiln,
        &[
            "bake",
            "--package",
            "nginx",
            "--base-os",
            "ubuntu",
            "--region",
            "us-east-1",
            "--quiet",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(stdout, "", "nothing on stdout for a failed bake");
    for line in [
        "failed: ",
        "InvalidSubnetID.NotFound",
        "diagnosis [vpc_subnet]: ",
        "hint: check aws.bakeryDefaults.awsSubnetId",
        "kiln: the log's last lines:",
        "  kiln: diagnosis [vpc_subnet]",
    ] {
        assert!(stderr.contains(line), "{line:?} missing from:\n{stderr}");
    }
    // --quiet: no log lines while it ran, only status lines.
    let (while_running, _) = stderr.split_once("kiln: the log's last lines:").unwrap();
    assert!(!while_running.contains("==> amazon-ebs"), "{stderr}");

    // The view and the log say the same; the diagnosis is the log's last line.
    let id = stderr
        .split("kiln: bake ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["diagnosis"]["code"], "vpc_subnet", "{view}");
    let log = kiln.log(&id);
    assert!(
        log.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("kiln: diagnosis [vpc_subnet]"),
        "{log}"
    );

    // A request kiln refuses: exit 2 with kiln's message naming the field.
    let refused = cli(
        &kiln,
        &[
            "bake",
            "--package",
            "nginx",
            "--base-os",
            "no-such-os",
            "--region",
            "us-east-1",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("no-such-os"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn ctrl_c_asks_and_a_yes_cancels_the_bake() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &slow_config(&moto, &seed, 120));
    let err_file = data.path().join("cli.stderr");
    let mut child = Command::new(KILN)
        .args([
            "bake",
            "--package",
            "nginx",
            "--base-os",
            "ubuntu",
            "--region",
            "us-east-1",
        ])
        .args(["--server", &format!("http://{}", kiln.addr)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let read_err = || std::fs::read_to_string(&err_file).unwrap_or_default();
    wait_until(&read_err, "slow provisioner starts");
    let interrupted = Instant::now();
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_until(&read_err, "Cancel bake ");
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(90));
    let stderr = read_err();
    eprintln!("canceled in {:.1?}", interrupted.elapsed());
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("kiln: canceling bake"), "{stderr}");
    let id = stderr
        .split("Cancel bake ")
        .nth(1)
        .and_then(|s| s.split('?').next())
        .unwrap()
        .to_string();
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["phase"], "canceled", "{view}");
    // Packer cleaned up behind the canceled bake.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !data.path().join("runs").join(&id).join("exit").exists()
        && data.path().join("runs").join(&id).exists()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_cloud_clean(&moto);
}

fn wait_until(read: &dyn Fn() -> String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !read().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared:\n{}",
            read()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kiln bake did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
