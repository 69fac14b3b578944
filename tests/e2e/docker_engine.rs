//! A real Docker bake through the real `kiln` binary, with podman standing in for the Docker
//! engine (no dockerd runs on this machine): Packer 1.6.6 runs the shipped `docker.json`, pulls
//! the base image from a registry on loopback, runs `install_packages.sh` in the container against
//! an apt repository on loopback, commits, tags and pushes to the same registry; the pushed image
//! is then pulled and run to show the package installed.
//!
//! The `docker` Packer calls is this test's own wrapper, first on kiln's PATH: `podman` with the
//! test's own storage (vfs), runtime (runc: crun refuses this machine's hybrid cgroups), ulimits
//! (no CAP_SYS_RESOURCE here, so podman's default of raising them fails), host network and a
//! registries.conf that marks the loopback registry insecure. Nothing of it is kiln code, and
//! nothing outside the test's temp folder is configured. The base is a debootstrap tarball
//! (`tests/support/docker-base.sh`, cached in `$KILN_TEST_DOCKER_BASE`, default
//! `target/docker-base`), imported and pushed to the loopback registry: no registry beyond
//! loopback is ever asked.
//!
//! Needs root, podman, runc, docker-registry, debootstrap and dpkg-dev: the test fails (never
//! skips) when one is missing; `scripts/test` installs them.

use crate::harness::*;
use crate::vm::{ChildGuard, on_path, port_answers, serve_directory};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PKG: &str = "kiln-dock";
const PKG_VERSION: &str = "1.0.0";
const BASE: &str = "kiln-base:bookworm";

fn require(tool: &str, package: &str) -> PathBuf {
    assert!(
        on_path(tool),
        "{tool} is missing; install it (scripts/test does): apt-get install -y --no-install-recommends {package}"
    );
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap()
}

/// The base rootfs tarball, built once.
fn base_tarball() -> PathBuf {
    let dir = std::env::var_os("KILN_TEST_DOCKER_BASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target/docker-base"));
    let tar = dir.join("rootfs.tar");
    if !tar.exists() {
        eprintln!(
            "docker_engine: building the base rootfs in {} (once, ~1 min)",
            dir.display()
        );
        let status = Command::new(format!("{REPO}/tests/support/docker-base.sh"))
            .arg(&dir)
            .stdin(Stdio::null())
            .status()
            .expect("run docker-base.sh");
        assert!(
            status.success(),
            "docker-base.sh {} failed: {status}",
            dir.display()
        );
    }
    tar
}

/// A resource limit for the containers, in podman's `--ulimit` spelling: 4096, or this process's
/// hard limit when lower. Rootful podman asks for far more by default, which needs
/// CAP_SYS_RESOURCE (this machine's root lacks it); podman also runs conmon with a lower hard
/// NPROC than its caller's (32768 here), so the caller's own hard limit can fail as well.
fn container_limit(name: &str) -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no '{name}' in /proc/self/limits"));
    let hard = line[name.len()..].split_whitespace().nth(1).unwrap();
    let limit = hard.parse::<u64>().map_or(4096, |h| h.min(4096));
    format!("{limit}:{limit}")
}

/// podman behind a `docker` wrapper, all its state under `dir`.
struct Engine {
    dir: PathBuf,
    bin: PathBuf,
}

impl Engine {
    fn new(dir: &Path, podman: &Path, registry: &str) -> Engine {
        let conf = dir.join("conf");
        let bin = dir.join("bin");
        for d in [&conf, &bin, &dir.join("tmp")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let (nofile, nproc) = (
            container_limit("Max open files"),
            container_limit("Max processes"),
        );
        std::fs::write(
            conf.join("containers.conf"),
            format!(
                "[containers]\nnetns = \"host\"\ndefault_ulimits = [\"nofile={nofile}\", \"nproc={nproc}\"]\n\
                 [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\ntmp_dir = \"{tmp}\"\nimage_copy_tmp_dir = \"{tmp}\"\n",
                tmp = dir.join("tmp").display()
            ),
        )
        .unwrap();
        std::fs::write(
            conf.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                dir.join("storage").display(),
                dir.join("run").display()
            ),
        )
        .unwrap();
        std::fs::write(
            conf.join("registries.conf"),
            format!("[[registry]]\nlocation = \"{registry}\"\ninsecure = true\n"),
        )
        .unwrap();
        let wrapper = bin.join("docker");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n# docker_engine.rs: the Docker CLI Packer calls is podman with this test's own state.\n\
                 export CONTAINERS_CONF={c}/containers.conf CONTAINERS_STORAGE_CONF={c}/storage.conf \
                 CONTAINERS_REGISTRIES_CONF={c}/registries.conf TMPDIR={tmp}\n\
                 echo \"$1\" >> {calls}\nexec {podman} \"$@\"\n",
                c = conf.display(),
                tmp = dir.join("tmp").display(),
                calls = dir.join("calls.log").display(),
                podman = podman.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Engine {
            dir: dir.to_path_buf(),
            bin,
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("docker"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the docker wrapper")
    }

    /// Runs `docker args…` and answers its stdout; panics with its output on failure.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "docker {args:?}: {stdout}{stderr}");
        stdout
    }

    /// The subcommands Packer called, in order.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Containers first (their runtime state may hold mounts under the temp dir), then images.
        let _ = self.docker(&["rm", "--all", "--force"]);
        let _ = self.docker(&["rmi", "--all", "--force"]);
    }
}

/// The distribution registry (Debian's docker-registry) on a free loopback port, its data in `dir`.
fn start_registry(binary: &Path, dir: &Path) -> (ChildGuard, u16) {
    for _ in 0..3 {
        let port = free_port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog: {{disabled: true}}\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: {}\n",
                dir.join("registry-data").display(),
                uuid::Uuid::new_v4().simple()
            ),
        )
        .unwrap();
        let mut registry = ChildGuard(
            Command::new(binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
                .spawn()
                .expect("start docker-registry"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if port_answers(port) {
                return (registry, port);
            }
            if let Ok(Some(_)) = registry.0.try_wait() {
                break; // the port was most likely taken meanwhile: try another
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "docker_engine: registry on {port} did not come up: {}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }
    panic!("could not start docker-registry on loopback");
}

/// GET on the loopback registry's API.
fn registry_get(port: u16, path: &str) -> Value {
    let r = http(&format!("127.0.0.1:{port}"), "GET", path, &[], b"");
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&*dir)))
        .map(String::from)
        .collect()
}

#[test]
fn a_docker_bake_runs_on_podman_and_pushes_an_image_with_the_package() {
    let t0 = Instant::now();
    let podman = require("podman", "podman");
    require("runc", "runc");
    let registry_bin = require("docker-registry", "docker-registry");
    require("dpkg-scanpackages", "dpkg-dev");
    let base = base_tarball();

    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let (registry, reg_port) = start_registry(&registry_bin, work);
    let registry_addr = format!("127.0.0.1:{reg_port}");
    let engine = Engine::new(&work.join("engine"), &podman, &registry_addr);

    // The base, in the loopback registry only: Packer's pull must fetch it from there.
    let source = format!("{registry_addr}/{BASE}");
    engine.ok(&["import", base.to_str().unwrap(), &source]);
    engine.ok(&["push", &source]);
    engine.ok(&["rmi", "--all", "--force"]);
    let t_base = t0.elapsed();

    // The package, in an apt repository on loopback.
    let out = Command::new(format!("{REPO}/tests/support/make-test-deb.sh"))
        .arg(work.join("deb"))
        .args([PKG, PKG_VERSION])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (repo_server, repo_port) = serve_directory(&work.join("deb/repo"), &work.join("http.log"));

    let data = work.join("data");
    let config = format!(
        r#"docker:
  enabled: true
  bakeryDefaults:
    targetRepository: {registry_addr}
    baseImages:
    - baseImage: {{id: bookworm, packageType: deb}}
      virtualizationSettings: {{sourceImage: "{source}"}}
debianRepository: "[trusted=yes] http://127.0.0.1:{repo_port}/ ./"
"#
    );
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("kiln.yml"), &config).unwrap();
    let path = std::env::join_paths(
        std::iter::once(engine.bin.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut kiln = Kiln::start_env(
        &data,
        &data.join("kiln.yml"),
        &[
            ("PATH", path.to_str().unwrap()),
            ("CHECKPOINT_DISABLE", "1"),
        ],
    );

    let build_info = "http://ci.example.invalid/job/kiln-dock/7/";
    let id = kiln.bake_id(
        "global",
        &json!({
            "package": format!("{PKG}_{PKG_VERSION}"),
            "base_os": "bookworm",
            "cloud_provider_type": "docker",
            "build_number": "7",
            "commit_hash": "abc1234",
            "build_info_url": build_info,
        }),
    );
    let t_bake = Instant::now();
    let done = kiln.wait(&id, Duration::from_secs(300));
    let t_bake = t_bake.elapsed();
    assert_eq!(done["state"], "COMPLETED", "{done}\n{}", kiln.log(&id));
    assert_eq!(done["result"], "SUCCESS", "{done}\n{}", kiln.log(&id));

    // GET bake: the pushed reference from the docker-tag post-processor's `Repository:` line.
    let image = format!("{registry_addr}/{PKG}:abc1234");
    let bake = kiln.get(&format!("/api/v1/global/bake/{id}")).json();
    assert_eq!(bake["image_name"], image.as_str(), "{bake}");
    assert_eq!(bake["artifact"]["type"], "docker/image", "{bake}");
    assert_eq!(bake["artifact"]["reference"], image.as_str(), "{bake}");
    assert_eq!(bake["artifact"]["name"], PKG, "{bake}");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    let appversion = view["recipe"]["variables"]["appversion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(appversion, "kiln-dock-1.0.0-h7.abc1234", "{view}");

    // Packer drove the engine through the wrapper: pull, run, cp, exec, commit, tag, push.
    let calls = engine.calls();
    for step in ["pull", "run", "cp", "exec", "commit", "tag", "push"] {
        assert!(
            calls.iter().any(|c| c == step),
            "no `docker {step}`: {calls:?}"
        );
    }
    // The package came from the loopback repository.
    let served = std::fs::read_to_string(work.join("http.log")).unwrap();
    assert!(
        served.contains(&format!("{PKG}_{PKG_VERSION}_all.deb")),
        "the .deb was never fetched: {served}"
    );

    // The registry holds the tag; a fresh pull of it runs with the package installed, no
    // bake-time repository or policy-rc.d left in it, and the request's labels.
    let tags = registry_get(reg_port, &format!("/v2/{PKG}/tags/list"));
    assert_eq!(tags["tags"], json!(["abc1234"]), "{tags}");
    engine.ok(&["rmi", "--all", "--force"]);
    let shown = engine.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &image,
        "-c",
        "cat /usr/share/kiln-dock/marker; dpkg-query -W -f '${Status} ${Version}\\n' kiln-dock; \
         ls -A /etc/apt/sources.list.d; test -e /usr/sbin/policy-rc.d && echo policy-rc.d left; true",
    ]);
    assert_eq!(
        shown, "kiln-dock 1.0.0\ninstall ok installed 1.0.0\n",
        "what the pushed image holds"
    );
    let labels: Value = serde_json::from_str(&engine.ok(&[
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &image,
    ]))
    .unwrap();
    assert_eq!(labels["appversion"], appversion.as_str(), "{labels}");
    assert_eq!(labels["build_info_url"], build_info, "{labels}");

    // Nothing left running or mounted under the test's folder once the engine is cleared.
    kiln.stop();
    drop(repo_server);
    drop(engine);
    drop(registry);
    let marker = work.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_mentioning(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(processes_mentioning(&marker), Vec::<String>::new());
    assert_eq!(mounts_under(work), Vec::<String>::new());
    eprintln!(
        "docker_engine: base imported and pushed in {t_base:.1?}, bake {t_bake:.1?}, all {:.1?}",
        t0.elapsed()
    );
}
