//! Issue 11, the operator's side, against the real binary: `files:` contents written verbatim
//! (16), no write through symlinks in configDir or beside the config file (17), no secret taken
//! on the command line (18), and `/health` and new bakes under storage faults — damaged pages,
//! a full data dir, a read-only data dir — with recovery (19, 20).
//!
//! The full and read-only data dir tests mount a small tmpfs (root only: chmod does not stop
//! root, a real filesystem does). Without root they are skipped with a message; the README's
//! test command runs as root.

use crate::admin::{bakery, kiln_cli, text};
use crate::harness::*;
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "kilnFaultsSecret/DoNotEcho+0123456789abc";

/// A script the way operators write them: shell `${…}` that must reach configDir as written.
const SCRIPT: &str = "#!/bin/bash\nset -eu\narr=(a b)\necho \"${packages:-none}\" \"${arr[@]}\" \"${HOME}\" \"${NOT_SET_ANYWHERE}\"\n";

fn files_config(extra: &str) -> String {
    format!(
        "files:\n  profiles__rosco__packer__scripts__verbatim.sh: {}\n{extra}",
        serde_json::to_string(SCRIPT).unwrap()
    )
}

#[test]
fn files_contents_reach_config_dir_verbatim_through_start_up_and_validate() {
    let data = tempfile::tempdir().unwrap();
    let config_dir = format!(
        "rosco:\n  configDir: {}\n",
        data.path().join("packer").display()
    );
    let kiln = Kiln::start(data.path(), &files_config(&config_dir));
    let written = std::fs::read_to_string(data.path().join("packer/scripts/verbatim.sh")).unwrap();
    assert_eq!(written, SCRIPT);
    let (ok, out) = validate(&kiln.config);
    assert!(ok, "{out}");
    assert!(out.contains("OK      config"), "{out}");
}

fn validate(config: &Path) -> (bool, String) {
    let out = kiln_cli(config, &["config", "validate"], "");
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

#[test]
fn a_files_entry_never_lands_outside_config_dir_through_a_symlinked_folder() {
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("packer")).unwrap();
    symlink(outside.path(), data.path().join("packer/scripts")).unwrap();
    let config = data.path().join("kiln.yml");
    let config_dir = format!(
        "rosco:\n  configDir: {}\n",
        data.path().join("packer").display()
    );
    std::fs::write(&config, files_config(&config_dir)).unwrap();

    let out = Command::new(KILN)
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data.path())
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "kiln started: {stderr}");
    assert!(
        stderr.contains("scripts__verbatim.sh") && stderr.contains("symlink"),
        "{stderr}"
    );
    let (ok, out) = validate(&config);
    assert!(
        !ok && out.contains("FAILED  configDir") && out.contains("symlink"),
        "{out}"
    );
    let leaked: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert!(leaked.is_empty(), "written outside configDir: {leaked:?}");
}

#[test]
fn config_edits_never_follow_a_symlink_planted_at_a_predictable_temp_path() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "someone else's file\n").unwrap();
    let config = dir.path().join("kiln.yml");
    std::fs::write(&config, "server:\n  port: 8087\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The old writer's temp path was `.kiln.yml.kiln-tmp-<pid>`: plant it for the next pids.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1000);
    for pid in last..last + 300 {
        symlink(
            &victim,
            dir.path().join(format!(".kiln.yml.kiln-tmp-{pid}")),
        )
        .unwrap();
    }
    let args = [
        "edit",
        "--aws-access-key",
        "AKIAFAULTS0000000001",
        "--aws-secret-key",
    ];
    let out = bakery(&config, &args, &format!("{SECRET}\n"));
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "someone else's file\n"
    );
    let meta = std::fs::symlink_metadata(&config).unwrap();
    assert!(meta.is_file(), "the config became a symlink");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&config).unwrap().contains(SECRET));
    let strays: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp") && !n.starts_with(".kiln.yml.kiln-tmp-"))
        .collect();
    assert!(strays.is_empty(), "temp files left behind: {strays:?}");
}

#[test]
fn a_secret_key_value_on_the_command_line_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kiln.yml");
    std::fs::write(&config, "server:\n  port: 8087\n").unwrap();
    let given = format!("--aws-secret-key={SECRET}");
    let dash = format!("-{SECRET}");
    for args in [
        vec![
            "edit",
            "--aws-access-key",
            "AKIAX",
            "--aws-secret-key",
            SECRET,
        ],
        vec!["edit", "--aws-access-key", "AKIAX", &given],
        vec![
            "edit",
            "--aws-secret-key",
            &dash,
            "--aws-access-key",
            "AKIAX",
        ],
    ] {
        let out = bakery(&config, &args, "");
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} accepted: {stdout}");
        assert!(
            !stdout.contains(SECRET) && !stderr.contains(&SECRET[1..]),
            "the value was printed: {stdout}{stderr}"
        );
        assert!(stderr.contains("--aws-secret-key alone"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            "server:\n  port: 8087\n"
        );
    }
}

#[test]
fn health_is_down_while_the_database_has_damaged_pages_and_up_once_restored() {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), "");
    assert_eq!(kiln.get("/health").status, 200);
    let db = data.path().join("kiln.db");
    // Everything into the main file (as SQLite itself does from time to time), then damage
    // every page after the header.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    let good = std::fs::read(&db).unwrap();
    let mut bad = good.clone();
    bad[4096..].fill(0xa5);
    std::fs::write(&db, &bad).unwrap();
    let down = health_until(&kiln.addr, 503);
    assert_eq!(down["status"], "DOWN", "{down}");
    let why = down["details"]["store"].as_str().unwrap();
    assert!(why.contains("damaged") && why.contains("kiln.db"), "{why}");
    std::fs::write(&db, &good).unwrap();
    assert_eq!(health_until(&kiln.addr, 200)["status"], "UP");
}

/// Polls `/health` until it answers `status` (the probe is cached for a second).
fn health_until(addr: &str, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http(addr, "GET", "/health", &[], b"");
        if r.status == status {
            return r.json();
        }
        assert!(
            Instant::now() < deadline,
            "/health still answers {}: {}",
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_string();
            line.split_whitespace().nth(2).map(|u| u == "0")
        })
        .unwrap_or(false)
}

/// A small tmpfs mounted at `at`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "kiln-test",
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }

    /// Makes the data dir read-only for every new open: a read-only bind mount over it. (A
    /// plain `remount,ro` is refused while kiln holds its database open for writing; the kernel
    /// forces one on a filesystem error, which a test cannot cause cleanly.)
    fn read_only(&self) {
        let ok = Command::new("mount")
            .args(["--bind", "-o", "ro"])
            .arg(&self.0)
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "read-only bind mount over {}",
            self.0.display()
        );
    }

    /// Undoes [`Tmpfs::read_only`].
    fn writable(&self) {
        let ok = Command::new("umount").arg(&self.0).status().unwrap();
        assert!(ok.success(), "umount the read-only bind mount");
    }

    /// Writes a file until the filesystem refuses more.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // The read-only bind mount (if a test failed with it on), then the tmpfs.
        for _ in 0..2 {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `kiln serve` on a fixed port, found by polling it: on a full data dir it cannot write
/// `kiln.addr`, which `Kiln::start` waits for. SIGKILLed on drop.
struct Served {
    addr: String,
    child: Child,
}

impl Served {
    fn start(data: &Path, config: &Path, stderr: &Path) -> Served {
        let port = free_port();
        let child = Command::new(KILN)
            .args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(data)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(stderr)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let mut served = Served {
            addr: format!("127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&served.addr).is_err() {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!(
                    "kiln exited ({status}): {}",
                    std::fs::read_to_string(stderr).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "kiln did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        served
    }

    fn get(&self, path: &str) -> Response {
        http(&self.addr, "GET", path, &[], b"")
    }

    fn bake(&self, package: &str) -> Response {
        let body = json!({"package": package, "base_os": "ubuntu", "cloud_provider_type": "aws"});
        http(
            &self.addr,
            "POST",
            "/api/v1/us-east-1/bake",
            &[],
            body.to_string().as_bytes(),
        )
    }

    fn wait(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let s = self.get(&format!("/api/v1/us-east-1/status/{id}")).json();
            if s["state"] != "RUNNING" {
                return s;
            }
            assert!(Instant::now() < deadline, "bake {id} still running");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_full_data_dir_reads_down_refuses_new_bakes_with_503_survives_a_start_and_recovers() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a small tmpfs as the full data dir needs root");
        return;
    }
    let moto = Moto::start();
    let seed = moto.seed();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let fs = Tmpfs::mount(&data, "48m");
    let config = tmp.path().join("kiln.yml");
    std::fs::write(&config, moto_config(&moto, &seed, SECRET, "")).unwrap();
    let stderr = tmp.path().join("kiln.stderr.log");
    let mut kiln = Served::start(&data, &config, &stderr);
    assert_eq!(health_until(&kiln.addr, 200)["status"], "UP");
    let r = kiln.bake("before_1.0_all");
    assert_eq!(r.status, 200, "{}", r.body);
    let before = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(kiln.wait(&before)["result"], "SUCCESS");

    let filler = fs.fill();
    let down = health_until(&kiln.addr, 503);
    let why = down["details"]["store"].as_str().unwrap().to_string();
    assert!(why.contains("full"), "{down}");
    let refused = kiln.bake("during_1.0_all");
    assert_eq!(refused.status, 503, "{}", refused.body);
    let message = refused.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("data dir") && message.contains("full"),
        "{message}"
    );

    // Space returns while kiln runs: UP again.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(health_until(&kiln.addr, 200)["status"], "UP");

    // A clean stop (SQLite removes its -wal and -shm), the disk fills, kiln starts again: it
    // serves reads, reads DOWN and refuses new bakes (the reserve gave SQLite its room).
    kiln.stop();
    let filler = fs.fill();
    let kiln = Served::start(&data, &config, &stderr);
    assert_eq!(health_until(&kiln.addr, 503)["status"], "DOWN");
    let status = kiln.get(&format!("/api/v1/us-east-1/status/{before}"));
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.json()["result"], "SUCCESS");
    assert_eq!(kiln.bake("during_1.0_all").status, 503);

    // Space returns: UP again, and a bake goes through with real Packer.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(health_until(&kiln.addr, 200)["status"], "UP");
    let r = kiln.bake("after_1.0_all");
    assert_eq!(r.status, 200, "{}", r.body);
    let after = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(kiln.wait(&after)["result"], "SUCCESS");
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(!log.contains(SECRET), "the secret reached kiln's log");
}

#[test]
fn a_read_only_data_dir_reads_down_refuses_new_bakes_and_recovers_when_writable() {
    if !is_root() {
        eprintln!("SKIPPED: remounting a tmpfs read-only as the data dir needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let fs = Tmpfs::mount(&data, "16m");
    let config = tmp.path().join("kiln.yml");
    // A bake the config can take (aws with a base image), so the 503 comes from the store.
    let config_yaml = "aws:\n  enabled: true\n  bakeryDefaults:\n    baseImages:\n    - baseImage: {id: ubuntu, packageType: deb}\n      virtualizationSettings:\n      - {region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-1, sshUserName: ubuntu}\n";
    std::fs::write(&config, config_yaml).unwrap();
    let stderr = tmp.path().join("kiln.stderr.log");
    let kiln = Served::start(&data, &config, &stderr);
    assert_eq!(health_until(&kiln.addr, 200)["status"], "UP");
    fs.read_only();
    let down = health_until(&kiln.addr, 503);
    let why = down["details"]["store"].as_str().unwrap();
    assert!(why.contains("read-only"), "{down}");
    let refused = kiln.bake("during_1.0_all");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("read-only"), "{}", refused.body);
    fs.writable();
    assert_eq!(health_until(&kiln.addr, 200)["status"], "UP");
}
