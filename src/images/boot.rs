//! Booting an image to check it: qemu with the image's own kernel and initrd, the disk in
//! snapshot mode (the check never changes the image it checks), a restricted user network
//! whose only way in is SSH forwarded from a loopback port, and commands run over `ssh`.
//!
//! The check ([`BootCheck`]) passes when systemd reports the system `running` (every unit
//! started: `degraded`, meaning a unit failed, fails the check and names the failed units,
//! because a failing unit is often the baked app itself) and every package the bake installed
//! is installed.

use crate::recipe::PackageType;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How to boot an image.
#[derive(Debug, Clone)]
pub struct BootSpec {
    pub disk: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    /// `tcg` or `kvm`.
    pub accelerator: String,
    /// Where the VM's console and qemu's own messages go.
    pub serial_log: PathBuf,
}

/// Why a boot check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot start qemu: {0}")]
    Start(String),
    #[error("the VM stopped before SSH answered; last console lines:\n{0}")]
    Exited(String),
    #[error("SSH did not answer within {0:?}; last console lines:\n{1}")]
    SshTimeout(Duration, String),
    #[error("ssh failed: {0}")]
    Ssh(String),
    #[error("systemd reports the system '{state}', not 'running'; failed units: {units}")]
    NotRunning { state: String, units: String },
    #[error("package '{0}' is not installed in the image: {1}")]
    PackageMissing(String, String),
    #[error("canceled")]
    Canceled,
}

/// A running VM; killed when dropped.
pub struct Vm {
    child: Child,
    pub port: u16,
    serial_log: PathBuf,
}

impl Vm {
    /// Starts qemu; retries with another port when the forward's port was taken meanwhile.
    pub async fn start(spec: &BootSpec) -> Result<Vm, BootError> {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| BootError::Start(e.to_string()))?;
            let _ = std::fs::remove_file(&spec.serial_log);
            let stderr = std::fs::File::create(qemu_log(spec))
                .map_err(|e| BootError::Start(format!("{}: {e}", qemu_log(spec).display())))?;
            let mut child = qemu_command(spec, port)
                .stderr(stderr)
                .spawn()
                .map_err(|e| BootError::Start(format!("qemu-system-x86_64: {e}")))?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            match child.try_wait() {
                Ok(None) => {
                    return Ok(Vm {
                        child,
                        port,
                        serial_log: spec.serial_log.clone(),
                    });
                }
                _ => last = super::run::tail(&qemu_log(spec), 5),
            }
        }
        Err(BootError::Start(last))
    }

    /// Waits until `ssh` runs a command; how long that took.
    pub async fn wait_for_ssh(
        &mut self,
        ssh: &Ssh,
        limit: Duration,
    ) -> Result<Duration, BootError> {
        let started = Instant::now();
        loop {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return Err(BootError::Exited(self.console_tail(20)));
            }
            if let Ok((0, _, _)) = ssh.run_once("true", Duration::from_secs(20)).await {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                return Err(BootError::SshTimeout(limit, self.console_tail(20)));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The console's last lines, without colour codes and carriage returns.
    pub fn console_tail(&self, lines: usize) -> String {
        plain(&super::run::tail(&self.serial_log, lines))
    }

    /// Stops the VM (a kill: its disk is a snapshot, nothing is lost).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn qemu_command(spec: &BootSpec, port: u16) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-accel", &spec.accelerator, "-m", "1024", "-smp", "2"])
        .args(["-display", "none", "-no-reboot", "-serial"])
        .arg(format!("file:{}", spec.serial_log.display()))
        .arg("-kernel")
        .arg(&spec.kernel)
        .arg("-initrd")
        .arg(&spec.initrd)
        .args(["-append", &spec.append, "-drive"])
        .arg(format!(
            "file={},if=virtio,format=qcow2,snapshot=on",
            spec.disk.display()
        ))
        .arg("-netdev")
        .arg(format!(
            "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22"
        ))
        .args(["-device", "virtio-net-pci,netdev=n0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    c
}

/// qemu's own messages (a port in use, a missing file), beside the console log.
fn qemu_log(spec: &BootSpec) -> PathBuf {
    spec.serial_log.with_extension("qemu.log")
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs commands in a VM over SSH (key auth, no host key kept: the VM is new every time).
#[derive(Debug, Clone)]
pub struct Ssh {
    pub user: String,
    pub key: PathBuf,
    pub port: u16,
}

impl Ssh {
    /// Runs `command`; its exit code and stdout. ssh's own failures (exit 255: the connection
    /// refused or dropped, as while the guest's network or sshd restarts) are retried a few
    /// times; a command in the VM that fails is not.
    pub async fn run(&self, command: &str, limit: Duration) -> Result<(i32, String), BootError> {
        let mut attempts = 0;
        loop {
            let (code, stdout, stderr) = self.run_once(command, limit).await?;
            if code != 255 {
                return Ok((code, stdout));
            }
            attempts += 1;
            if attempts == 5 {
                return Err(BootError::Ssh(format!("'{command}': {stderr}")));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn run_once(
        &self,
        command: &str,
        limit: Duration,
    ) -> Result<(i32, String, String), BootError> {
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-o", "ConnectTimeout=5", "-i"])
            .arg(&self.key)
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", self.user))
            .arg(command)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(limit, c.output())
            .await
            .map_err(|_| BootError::Ssh(format!("'{command}' took longer than {limit:?}")))?
            .map_err(|e| BootError::Ssh(format!("cannot run ssh: {e}")))?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        Ok((
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        ))
    }
}

/// What the boot check looks at.
#[derive(Debug, Clone)]
pub struct BootCheck {
    pub spec: BootSpec,
    pub user: String,
    pub key: PathBuf,
    pub package_type: PackageType,
    pub packages: Vec<String>,
}

/// A passed boot check.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BootReport {
    pub passed: bool,
    pub system_state: String,
    /// `name version` of each package checked.
    pub packages: Vec<String>,
    pub ssh_seconds: f64,
    pub seconds: f64,
}

impl BootCheck {
    /// Boots, checks, stops. `say` gets a line per step for the bake's log.
    pub async fn run(&self, say: &mut (dyn FnMut(&str) + Send)) -> Result<BootReport, BootError> {
        let started = Instant::now();
        let mut vm = Vm::start(&self.spec).await?;
        say(&format!(
            "kiln: boot check: booting {} ({}, restricted network, SSH on 127.0.0.1:{})",
            file_name(&self.spec.disk),
            self.spec.accelerator,
            vm.port
        ));
        let result = self.inspect(&mut vm, started, say).await;
        if result.is_err() {
            say(&format!(
                "kiln: boot check: last console lines:\n{}",
                vm.console_tail(15)
            ));
        }
        vm.stop().await;
        result
    }

    async fn inspect(
        &self,
        vm: &mut Vm,
        started: Instant,
        say: &mut (dyn FnMut(&str) + Send),
    ) -> Result<BootReport, BootError> {
        let ssh = Ssh {
            user: self.user.clone(),
            key: self.key.clone(),
            port: vm.port,
        };
        let to_ssh = vm.wait_for_ssh(&ssh, Duration::from_secs(300)).await?;
        say(&format!(
            "kiln: boot check: SSH answered after {:.1}s",
            to_ssh.as_secs_f64()
        ));
        let wait = "timeout 240 systemctl is-system-running --wait";
        let (_, state) = ssh.run(wait, Duration::from_secs(260)).await?;
        say(&format!("kiln: boot check: systemd: {state}"));
        if state != "running" {
            let (_, units) = ssh
                .run(
                    "systemctl --failed --no-legend --plain | cut -d' ' -f1",
                    Duration::from_secs(30),
                )
                .await?;
            let units = units.split_whitespace().collect::<Vec<_>>().join(", ");
            return Err(BootError::NotRunning {
                state,
                units: if units.is_empty() {
                    "none listed".into()
                } else {
                    units
                },
            });
        }
        let mut packages = Vec::new();
        for name in &self.packages {
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-_:".contains(&b))
            {
                return Err(BootError::PackageMissing(
                    name.clone(),
                    "not a package name".into(),
                ));
            }
            let query = match self.package_type {
                PackageType::Rpm => format!("rpm -q --qf '%{{VERSION}}-%{{RELEASE}}' '{name}'"),
                _ => format!("dpkg-query -W -f='${{Status}} ${{Version}}' '{name}'"),
            };
            let (code, out) = ssh.run(&query, Duration::from_secs(30)).await?;
            let version = match self.package_type {
                PackageType::Rpm => (code == 0).then_some(out.clone()),
                _ => out
                    .strip_prefix("install ok installed ")
                    .map(str::to_string),
            };
            let Some(version) = version else {
                let why = if out.is_empty() {
                    format!("exit {code}")
                } else {
                    out
                };
                return Err(BootError::PackageMissing(name.clone(), why));
            };
            say(&format!("kiln: boot check: {name} {version} is installed"));
            packages.push(format!("{name} {version}"));
        }
        Ok(BootReport {
            passed: true,
            system_state: state,
            packages,
            ssh_seconds: to_ssh.as_secs_f64(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// Text without ANSI escape sequences (`ESC [ … letter`) and carriage returns.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.next() == Some('[') {
                    for e in chars.by_ref() {
                        if e.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_text_loses_colours_and_carriage_returns() {
        let raw = "[\u{1b}[0;32m  OK  \u{1b}[0m] Started \u{1b}[0;1;39mssh.service\u{1b}[0m.\r";
        assert_eq!(plain(raw), "[  OK  ] Started ssh.service.");
    }
}
