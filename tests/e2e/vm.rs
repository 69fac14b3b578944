//! The shipped `aws-ebs.json` + `install_packages.sh`, for real: moto plays EC2 and a local qemu
//! VM (TCG, restricted user-mode network) plays the builder instance Packer SSHes into. The VM
//! reaches exactly one thing besides its forwarded sshd: the test's apt repository, served on
//! the host's loopback and seen by the guest as `http://10.0.2.100/`.
//!
//! Needs root, qemu-system-x86_64, qemu-img, debootstrap, dpkg-dev, ssh: the test fails (never
//! skips) when one is missing. The Debian image is built once by `tests/support/vm-image.sh` into
//! `$KILN_TEST_VM_CACHE` (default `target/vm-image`; `scripts/test` pre-builds it).

use crate::harness::*;
use serde_json::json;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "kilnVmTestSecretKey/DoNotLeak+0123456789ab";
const PKG_NAME: &str = "kiln-vm-hello";
const PKG_VERSION: &str = "1.0.0-h1";
const KEY_PAIR: &str = "kiln-vm";

fn support(script: &str) -> String {
    format!("{REPO}/tests/support/{script}")
}

pub(crate) fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let p = dir.join(tool);
            p.metadata().is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Fails (does not skip) with what to install when the machine cannot run this test.
fn require_vm_tools() {
    let mut missing = Vec::new();
    if effective_uid() != Some(0) {
        missing.push("root (debootstrap/chroot build the VM image): run the e2e tests as root, e.g. `sudo -E cargo test --test e2e vm`".to_string());
    }
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("qemu-img", "qemu-utils (install it AFTER qemu-system-x86)"),
        ("debootstrap", "debootstrap"),
        ("mkfs.ext4", "e2fsprogs"),
        ("dpkg-scanpackages", "dpkg-dev"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
        ("python3", "python3"),
        ("packer", "packer"),
    ] {
        if !on_path(tool) {
            missing.push(format!(
                "{tool}: apt-get install -y --no-install-recommends {package}"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "this test needs a VM and cannot run here; missing:\n  {}",
        missing.join("\n  ")
    );
}

fn run_script(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cached VM image (built here when missing).
struct Image {
    disk: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    key: PathBuf,
}

fn vm_image() -> Image {
    let dir = std::env::var_os("KILN_TEST_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target/vm-image"));
    if !dir.join("disk.qcow2").exists() {
        eprintln!(
            "vm: building the VM image in {} (once, ~1 min)",
            dir.display()
        );
        let t = Instant::now();
        let status = Command::new(support("vm-image.sh"))
            .arg(&dir)
            .stdin(Stdio::null())
            .status()
            .expect("run vm-image.sh");
        assert!(
            status.success(),
            "vm-image.sh {} failed: {status}",
            dir.display()
        );
        eprintln!("vm: image built in {:.1?}", t.elapsed());
    }
    let image = Image {
        disk: dir.join("disk.qcow2"),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        key: dir.join("key"),
    };
    for p in [&image.kernel, &image.initrd, &image.key] {
        assert!(
            p.exists(),
            "{} is missing: remove {} and rerun",
            p.display(),
            dir.display()
        );
    }
    image
}

/// A child process killed (SIGKILL) and reaped on drop.
pub(crate) struct ChildGuard(pub(crate) Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn port_answers(port: u16) -> bool {
    TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// `python3 -m http.server` serving `dir` on a free loopback port.
pub(crate) fn serve_directory(dir: &Path, log: &Path) -> (ChildGuard, u16) {
    for _ in 0..3 {
        let port = free_port();
        let mut server = ChildGuard(
            // The venv's interpreter, not a `python3` from PATH: a pyenv shim would fork, and
            // killing the shim would leave the server running.
            Command::new(venv().join("bin/python"))
                .args(["-m", "http.server", "--bind", "127.0.0.1"])
                .arg(port.to_string())
                .arg("--directory")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .expect("start python3 -m http.server"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if port_answers(port) {
                return (server, port);
            }
            if let Ok(Some(_)) = server.0.try_wait() {
                break; // most likely the port was taken meanwhile: try another
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "vm: http.server on {port} did not come up: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    panic!("could not start python3 -m http.server on loopback");
}

/// The qemu VM started by vm-boot.sh: killed by its pidfile PID on drop, also when the test
/// fails. Only a process whose command line names this VM's workdir is ever signalled.
struct Vm {
    workdir: PathBuf,
    ssh_port: u16,
}

impl Vm {
    fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.workdir.join("qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        (cmdline.contains("qemu-system") && cmdline.contains(&*self.workdir.to_string_lossy()))
            .then_some(pid)
    }

    fn serial_tail(&self) -> String {
        let log = std::fs::read_to_string(self.workdir.join("serial.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn stop(&self) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && self.pid().is_some() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.pid().is_some() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Boots an overlay of the image; retries on another port when the ssh forward cannot bind.
fn boot_vm(image: &Image, repo_port: u16, workdir: &Path) -> Vm {
    for attempt in 0..3 {
        let vm = Vm {
            workdir: workdir.to_path_buf(),
            ssh_port: free_port(),
        };
        let out = Command::new(support("vm-boot.sh"))
            .arg(&image.disk)
            .arg(&image.kernel)
            .arg(&image.initrd)
            .arg(vm.ssh_port.to_string())
            .arg(repo_port.to_string())
            .arg(workdir)
            .stdin(Stdio::null())
            .output()
            .expect("run vm-boot.sh");
        if out.status.success() && vm.pid().is_some() {
            eprint!("{}", String::from_utf8_lossy(&out.stdout));
            return vm;
        }
        eprintln!(
            "vm: boot attempt {} failed ({}): {}{}",
            attempt + 1,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    panic!("could not boot the VM (see the attempts above)");
}

fn ssh(vm: &Vm, key: &Path, command: &str) -> std::process::Output {
    Command::new("ssh")
        .args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ])
        .arg(key)
        .arg("-p")
        .arg(vm.ssh_port.to_string())
        .arg("root@127.0.0.1")
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh")
}

fn ssh_ok(vm: &Vm, key: &Path, command: &str) -> String {
    let out = ssh(vm, key, command);
    assert!(
        out.status.success(),
        "ssh `{command}` failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ImportKeyPair into moto with the VM's public key, as an operator would before pointing kiln's
/// template at an existing key pair.
fn import_key_pair(moto: &Moto, name: &str, public_key: &Path) {
    const PY: &str = r#"
import sys, boto3
ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=sys.argv[1],
                   aws_access_key_id="AKIAKILNVMTESTFAKE00", aws_secret_access_key="kiln-vm-fake")
with open(sys.argv[3], "rb") as f:
    ec2.import_key_pair(KeyName=sys.argv[2], PublicKeyMaterial=f.read())
"#;
    run_script(
        Command::new(venv().join("bin/python"))
            .args(["-c", PY, &moto.endpoint, name])
            .arg(public_key),
        "import_key_pair",
    );
}

/// Like `harness::moto_config`, but with the SHIPPED aws-ebs.json (nothing delivered through
/// `files:`) and the test's apt repository as the guest sees it.
/// The bake's SSH key is a host path: the operator's, so it comes from a var file in configDir
/// (delivered through `files:`), not from the request.
fn vm_config(moto: &Moto, seed: &serde_json::Value, key: &std::path::Path) -> String {
    format!(
        r#"aws:
  enabled: true
  bakeryDefaults:
    awsAccessKey: AKIAKILNTESTKEY00001
    awsSecretKey: {SECRET}
    awsSubnetId: {subnet}
    awsVpcId: {vpc}
    awsEc2Endpoint: {endpoint}
    awsSkipValidation: true
    templateFile: aws-ebs.json
    baseImages:
    - baseImage:
        id: ubuntu
        shortDescription: v16.04
        packageType: deb
      virtualizationSettings:
      - region: us-east-1
        virtualizationType: hvm
        instanceType: t3.micro
        sourceAmi: {ami}
        sshUserName: root
debianRepository: "[trusted=yes] http://10.0.2.100/ ./"
files:
  profiles__rosco__packer__vm-ssh.json: '{{"aws_ssh_private_key_file": "{key}", "aws_ssh_keypair_name": "{KEY_PAIR}"}}'
"#,
        key = key.display(),
        subnet = seed["subnet_id"].as_str().unwrap(),
        vpc = seed["vpc_id"].as_str().unwrap(),
        endpoint = moto.endpoint,
        ami = seed["source_ami"].as_str().unwrap(),
    )
}

#[test]
fn the_shipped_aws_ebs_template_installs_a_deb_over_ssh_into_the_instance() {
    require_vm_tools();
    let image = vm_image();
    let work = tempfile::tempdir().unwrap();
    let vm_dir = work.path().join("vm");

    // moto first: moto-start.sh also creates the test venv whose python serves the repository.
    let moto = Moto::start();

    // The package and its flat apt repository, served on loopback.
    let deb = run_script(
        Command::new(support("make-test-deb.sh")).args([
            work.path().join("pkg").to_str().unwrap(),
            PKG_NAME,
            PKG_VERSION,
        ]),
        "make-test-deb.sh",
    );
    let deb_stem = Path::new(deb.trim())
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(deb_stem, format!("{PKG_NAME}_{PKG_VERSION}_all"));
    let (http_server, repo_port) =
        serve_directory(&work.path().join("pkg/repo"), &work.path().join("http.log"));

    // The "instance": boot it; seed moto and start kiln while it comes up.
    let t_boot = Instant::now();
    let vm = boot_vm(&image, repo_port, &vm_dir);
    let mut wait_ssh = ChildGuard(
        Command::new(support("vm-wait-ssh.sh"))
            .arg(vm.ssh_port.to_string())
            .arg(&image.key)
            .arg("180")
            .stdin(Stdio::null())
            .spawn()
            .expect("run vm-wait-ssh.sh"),
    );
    let seed = moto.seed();
    import_key_pair(&moto, KEY_PAIR, &image.key.with_extension("pub"));
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), &vm_config(&moto, &seed, &image.key));
    let ready = wait_ssh.0.wait().expect("wait for vm-wait-ssh.sh");
    assert!(
        ready.success(),
        "the VM's sshd did not come up; serial console:\n{}",
        vm.serial_tail()
    );
    let boot_time = t_boot.elapsed();
    eprintln!("vm: booted to ssh in {boot_time:.1?}");

    // The bake, exactly as Spinnaker would ask for it, plus where the instance's sshd is and
    // the operator's var file with the key.
    let t_bake = Instant::now();
    let status = kiln.bake(
        "us-east-1",
        &json!({
            "package": deb_stem,
            "base_os": "ubuntu",
            "cloud_provider_type": "aws",
            "var_file_name": "vm-ssh.json",
            "extended_attributes": {
                "aws_ssh_host": "127.0.0.1",
                "aws_ssh_port": vm.ssh_port.to_string(),
            },
        }),
    );
    let id = status["id"].as_str().expect("bake id").to_string();
    let done = kiln.wait(&id, Duration::from_secs(300));
    let bake_time = t_bake.elapsed();
    let log = kiln.log(&id);
    eprintln!("vm: bake {id} finished in {bake_time:.1?}: {done}");
    assert!(
        done["state"] == "COMPLETED" && done["result"] == "SUCCESS",
        "bake did not succeed: {done}\n--- kiln log ---\n{log}\n--- serial console ---\n{}",
        vm.serial_tail()
    );

    // For scripts/bench-builders: this bake's figures beside the ebs-direct builder's.
    if let Some(out) = std::env::var_os("KILN_BENCH_OUT") {
        let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
        let phases: serde_json::Map<String, serde_json::Value> = view["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["phase"].as_str().unwrap_or("").to_string(),
                    p["seconds"].clone(),
                )
            })
            .collect();
        let figures = json!({
            "wall_s": bake_time.as_secs_f64(),
            "instance_boot_s": boot_time.as_secs_f64(),
            "phases_s": phases,
        });
        std::fs::write(out, serde_json::to_vec_pretty(&figures).unwrap()).unwrap();
    }

    // EC2 side (moto): the AMI exists, and the builder instance used the imported key pair.
    let bake = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    let ami = bake["ami"]
        .as_str()
        .unwrap_or_else(|| panic!("no ami: {bake}"));
    let image_info = moto.inspect("image", &["us-east-1", ami]);
    assert_eq!(image_info["exists"], true, "{image_info}");
    let instances = moto.inspect("instances", &["us-east-1"]);
    assert!(
        instances
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["key_name"] == KEY_PAIR && i["image_id"] == seed["source_ami"]),
        "no builder instance with key pair {KEY_PAIR}: {instances}"
    );

    // An operator's key pair is not Packer's to delete (only temporary ones are).
    let key_pairs = moto.inspect("keypairs", &["us-east-1"]);
    assert!(
        key_pairs
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key_name"] == KEY_PAIR),
        "key pair {KEY_PAIR} is gone: {key_pairs}"
    );

    // Packer ran the shipped install_packages.sh over SSH, and it installed the package from
    // the repository.
    for needle in [
        format!("install_packages.sh: installing {PKG_NAME}={PKG_VERSION}"),
        format!("Setting up {PKG_NAME} ({PKG_VERSION})"),
        "install_packages.sh: done".to_string(),
    ] {
        assert!(log.contains(&needle), "log lacks `{needle}`:\n{log}");
    }
    assert!(!log.contains(SECRET), "the secret key leaked into the log");
    for line in log.lines().filter(|l| {
        [
            "Connected to SSH",
            "Provisioning with",
            "install_packages.sh",
            "Setting up",
            "AMI",
        ]
        .iter()
        .any(|k| l.contains(k))
    }) {
        eprintln!("vm: log: {line}");
    }
    let served = std::fs::read_to_string(work.path().join("http.log")).unwrap_or_default();
    assert!(
        served.contains(&format!("GET /./{deb_stem}.deb"))
            || served.contains(&format!("GET /{deb_stem}.deb")),
        "the guest did not fetch the .deb from the repository; http.server log:\n{served}"
    );

    // The instance itself.
    let marker = ssh_ok(
        &vm,
        &image.key,
        &format!("cat /usr/share/{PKG_NAME}/marker"),
    );
    assert_eq!(marker.trim(), format!("{PKG_NAME} {PKG_VERSION}"));
    let dpkg = ssh_ok(&vm, &image.key, &format!("dpkg -s {PKG_NAME}"));
    assert!(dpkg.contains("Status: install ok installed"), "{dpkg}");
    assert!(dpkg.contains(&format!("Version: {PKG_VERSION}")), "{dpkg}");
    let leftovers = ssh_ok(
        &vm,
        &image.key,
        "for f in /etc/apt/sources.list.d/kiln.list /usr/sbin/policy-rc.d /usr/sbin/policy-rc.d.kiln-saved; do [ -e \"$f\" ] && echo \"$f\"; done; true",
    );
    assert_eq!(leftovers.trim(), "", "bake-time files left in the instance");

    // Cleanup: the VM and the repository server go (also on failure, through Drop); prove that
    // no qemu of this test survives.
    drop(vm);
    drop(http_server);
    let marker = work.path().to_string_lossy().into_owned();
    // qemu, any guestfwd relay it ran (those end with their connection), the http.server.
    let deadline = Instant::now() + Duration::from_secs(5);
    let survivors = loop {
        let found = processes_mentioning(&marker);
        if found.is_empty() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        survivors.is_empty(),
        "processes of this test still running: {survivors:?}"
    );
    eprintln!(
        "vm: timings: boot to ssh {boot_time:.1?}, bake {bake_time:.1?}, whole test {:.1?}",
        t_boot.elapsed()
    );
}
