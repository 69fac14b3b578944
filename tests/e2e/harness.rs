//! Test harness: a blocking HTTP client, a moto server, and a kiln process, each stopped by PID
//! when dropped.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// The venv holding moto (`scripts/test` creates it; moto-start.sh creates it when missing).
pub fn venv() -> PathBuf {
    std::env::var_os("KILN_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target/test-venv"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client (Connection: close), enough for kiln's API.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A moto EC2 server on a free loopback port, stopped by PID on drop.
pub struct Moto {
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    pid: i32,
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_env(&[])
    }

    /// moto with the EBS direct API gaps patched (`tests/support/moto-ebs.py`), unrecorded.
    pub fn start_ebs() -> Moto {
        Self::start_env(&[("KILN_MOTO_EBS", "1")])
    }

    pub fn start_env(env: &[(&str, &str)]) -> Moto {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..3 {
            let port = free_port();
            let out = Command::new(format!("{REPO}/tests/support/moto-start.sh"))
                .arg(venv())
                .arg(port.to_string())
                .arg(dir.path())
                .envs(env.iter().copied())
                .output()
                .expect("run moto-start.sh");
            if out.status.success() {
                let pid = std::fs::read_to_string(dir.path().join("moto.pid"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                return Moto {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    dir,
                    pid,
                };
            }
            eprintln!(
                "moto did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        panic!("moto_server did not start; is python3-venv available? (scripts/test installs it)");
    }

    pub fn python(&self) -> PathBuf {
        venv().join("bin/python")
    }

    /// A fresh VPC and subnet, and the source AMI: `{source_ami, vpc_id, subnet_id}`.
    pub fn seed(&self) -> Value {
        let out = Command::new(self.python())
            .arg(format!("{REPO}/tests/support/moto-seed.py"))
            .arg(&self.endpoint)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "moto-seed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `moto-inspect.py <args…>` against this server.
    pub fn inspect(&self, what: &str, args: &[&str]) -> Value {
        let mut cmd = Command::new(self.python());
        cmd.arg(format!("{REPO}/tests/support/moto-inspect.py"))
            .arg(what);
        if what == "calls" {
            cmd.arg(self.dir.path().join("moto_recording.jsonl"));
        } else {
            cmd.arg(&self.endpoint);
        }
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "moto-inspect {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // SAFETY-free: plain kill(1) of the PID we started.
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

/// A running `kiln serve`, stopped (SIGKILL) on drop.
pub struct Kiln {
    pub addr: String,
    pub data: PathBuf,
    pub config: PathBuf,
    pub stderr: PathBuf,
    child: Child,
}

impl Kiln {
    /// Starts kiln with a config file written into `data`.
    pub fn start(data: &Path, config_yaml: &str) -> Kiln {
        std::fs::create_dir_all(data).unwrap();
        let config = data.join("kiln.yml");
        std::fs::write(&config, config_yaml).unwrap();
        Self::start_with(data, &config)
    }

    pub fn start_with(data: &Path, config: &Path) -> Kiln {
        Self::start_env(data, config, &[])
    }

    /// Starts kiln with extra environment (inherited by its supervisors and Packer).
    pub fn start_env(data: &Path, config: &Path, env: &[(&str, &str)]) -> Kiln {
        Self::start_custom(data, config, env, |_| {})
    }

    /// Starts kiln with extra environment and whatever `customize` sets on its command (a
    /// resource limit, say).
    pub fn start_custom(
        data: &Path,
        config: &Path,
        env: &[(&str, &str)],
        customize: impl FnOnce(&mut Command),
    ) -> Kiln {
        let stderr = data.join("kiln.stderr.log");
        let addr_file = data.join("kiln.addr");
        let _ = std::fs::remove_file(&addr_file);
        let mut command = Command::new(KILN);
        customize(&mut command);
        let child = command
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data)
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&stderr)
                    .unwrap(),
            )
            .spawn()
            .expect("start kiln");
        let mut kiln = Kiln {
            addr: String::new(),
            data: data.to_path_buf(),
            config: config.to_path_buf(),
            stderr,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(a) = std::fs::read_to_string(&addr_file)
                && !a.trim().is_empty()
            {
                kiln.addr = a.trim().to_string();
                return kiln;
            }
            if let Ok(Some(status)) = kiln.child.try_wait() {
                panic!(
                    "kiln exited ({status}): {}",
                    std::fs::read_to_string(&kiln.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "kiln did not start: {}",
            std::fs::read_to_string(&kiln.stderr).unwrap_or_default()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn get(&self, path: &str) -> Response {
        http(&self.addr, "GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        http(&self.addr, "POST", path, &[], body.to_string().as_bytes())
    }

    pub fn bake(&self, region: &str, body: &Value) -> Value {
        let r = self.post(&format!("/api/v1/{region}/bake"), body);
        assert_eq!(r.status, 200, "bake request failed: {}", r.body);
        r.json()
    }

    /// Requests a bake and returns its id.
    pub fn bake_id(&self, region: &str, body: &Value) -> String {
        self.bake(region, body)["id"]
            .as_str()
            .expect("bake id")
            .to_string()
    }

    /// Waits until a bake is no longer RUNNING and returns its status.
    pub fn wait(&self, id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.get(&format!("/api/v1/us-east-1/status/{id}")).json();
            if s["state"] != "RUNNING" {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "bake {id} still running after {limit:?}; log: {}",
                self.log(id)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self, id: &str) -> String {
        let r = self.get(&format!("/api/v1/us-east-1/logs/{id}"));
        if r.status == 200 {
            r.json()["logsContent"].as_str().unwrap_or("").to_string()
        } else {
            String::new()
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the process to exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Kiln {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every process whose command line or environment mentions `marker`.
pub fn processes_mentioning(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline);
        if text.contains(marker) || String::from_utf8_lossy(&environ).contains(marker) {
            found.push(format!("{name}: {}", text.replace('\0', " ")));
        }
    }
    found
}

/// Every file under `dir` whose content holds `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        // Regular files only, links not followed: reading a run's FIFO would block.
        let (p, Ok(kind)) = (e.path(), e.file_type()) else {
            continue;
        };
        if kind.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if kind.is_file()
            && std::fs::read(&p)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            hits.push(p);
        }
    }
    hits
}

/// The kiln config for bakes against `moto`, with the test-only no-SSH templates delivered
/// through `files:` (as the Spinnaker Operator delivers custom templates).
pub fn moto_config(moto: &Moto, seed: &Value, secret: &str, extra: &str) -> String {
    let nossh = std::fs::read_to_string(format!("{REPO}/tests/fixtures/packer/aws-ebs-nossh.json"))
        .unwrap();
    let multi = std::fs::read_to_string(format!(
        "{REPO}/tests/fixtures/packer/aws-multi-ebs-nossh.json"
    ))
    .unwrap();
    let files = serde_json::json!({
        "profiles__rosco__packer__aws-ebs-nossh.json": nossh,
        "profiles__rosco__packer__aws-multi-ebs-nossh.json": multi,
    });
    format!(
        r#"aws:
  enabled: true
  bakeryDefaults:
    awsAccessKey: AKIAKILNTESTKEY00001
    awsSecretKey: {secret}
    awsSubnetId: {subnet}
    awsVpcId: {vpc}
    awsEc2Endpoint: {endpoint}
    awsSkipValidation: true
    templateFile: aws-ebs-nossh.json
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
        sourceAmiOwner: "099720109477"
        sshUserName: ubuntu
debianRepository: http://repo.example.invalid/apt stable main
files: {files}
{extra}
"#,
        subnet = seed["subnet_id"].as_str().unwrap(),
        vpc = seed["vpc_id"].as_str().unwrap(),
        endpoint = moto.endpoint,
        ami = seed["source_ami"].as_str().unwrap(),
    )
}

/// A unique marker for kiln's environment: every supervisor and Packer process inherits it.
pub fn marker() -> String {
    format!("KILN_TEST_MARK={}", uuid::Uuid::new_v4())
}

/// kiln started on `data` with the config `yaml`, the marker and `env` in its environment.
pub fn start_marked(data: &Path, yaml: &str, mark: &str, env: &[(&str, &str)]) -> Kiln {
    std::fs::create_dir_all(data).unwrap();
    let config = data.join("kiln.yml");
    std::fs::write(&config, yaml).unwrap();
    let (k, v) = mark.split_once('=').unwrap();
    let mut all = vec![(k, v)];
    all.extend_from_slice(env);
    Kiln::start_env(data, &config, &all)
}

/// Waits until no process carries the marker but the kiln processes named.
pub fn assert_nothing_left(mark: &str, kilns: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<String> = processes_mentioning(mark)
            .into_iter()
            .filter(|p| !kilns.iter().any(|k| p.starts_with(&format!("{k}:"))))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (up to two minutes) until the bake's log holds `needle`.
pub fn wait_for_log(kiln: &Kiln, id: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !kiln.log(id).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "'{needle}' never appeared; log: {}",
            kiln.log(id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A config from [`moto_config`] with one more configDir file in its `files:` map (a second
/// `files:` map would clash).
pub fn with_file(config: &str, name: &str, contents: &str) -> String {
    let text = serde_json::to_string(contents).unwrap();
    config.replacen(
        "files: {",
        &format!("files: {{\"profiles__rosco__packer__{name}\": {text},"),
        1,
    )
}

/// No builder instance running, no key pair, no security group but the VPC defaults.
pub fn assert_cloud_clean(moto: &Moto) {
    for i in moto
        .inspect("instances", &["us-east-1"])
        .as_array()
        .unwrap()
    {
        assert_eq!(i["state"], "terminated", "builder instance left: {i}");
    }
    assert_eq!(
        moto.inspect("keypairs", &["us-east-1"]),
        json!([]),
        "temporary key pair left"
    );
    let groups = moto.inspect("security-groups", &["us-east-1"]);
    let left: Vec<_> = groups
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["group_name"] != "default")
        .collect();
    assert!(left.is_empty(), "temporary security group left: {left:?}");
}

/// A config whose "Packer" is the misbehaving stand-in (`tests/support/fake-packer`), with a 1 s
/// kill grace and `extra` appended (lines under `kiln:`, or further top-level keys).
pub fn fake_packer_config(extra: &str) -> String {
    stand_in_config(
        &format!("{REPO}/tests/support/fake-packer"),
        &format!("  jobs:\n    killGrace: 1s\n{extra}"),
    )
}

/// A config whose Packer is the stand-in script `packer`, with one base image (`ubuntu`,
/// us-east-1) and `kiln_extra` appended under `kiln:`.
pub fn stand_in_config(packer: &str, kiln_extra: &str) -> String {
    format!(
        r#"aws:
  enabled: true
  bakeryDefaults:
    templateFile: aws-ebs.json
    baseImages:
    - baseImage: {{id: ubuntu, packageType: deb}}
      virtualizationSettings:
      - {{region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-785db401}}
kiln:
  packerPath: {packer}
{kiln_extra}
"#
    )
}
