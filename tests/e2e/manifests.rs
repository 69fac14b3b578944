//! Manifest bakes (`POST /api/v2/manifest/bake/{type}`) through the real kiln binary, with real
//! renderers where this machine has an engine: Helm 3 is Helm's own engine (PyPI's
//! helm-python-sdk) behind `tests/support/helm-front`, Kustomize is kubectl's built-in one behind
//! `tests/support/kustomize-via-kubectl`. Helm 2 and Helmfile have no engine here: a recording
//! fake stands in and the tests check the argv and the flow (say so: the fakes only record and
//! print a canned manifest). Input artifacts come embedded, from an HTTP server and a Helm
//! repository on loopback (this file's `Files`), and from a local git repository; a stand-in
//! Clouddriver (`PUT /artifacts/fetch/`, no Clouddriver exists here) answers from the same
//! server.

use crate::harness::*;
use base64::Engine;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn sh(dir: &Path, script: &str) {
    let ok = Command::new("/bin/sh")
        .args(["-ec", script])
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "{script}");
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn script(path: &Path, text: &str) {
    write(path, text);
    sh(Path::new("/"), &format!("chmod 755 '{}'", path.display()));
}

/// A loopback HTTP server for files under `root` (GET; 404 when missing), and a stand-in
/// Clouddriver: `PUT /artifacts/fetch/` answers the file named by the artifact's `name`, or
/// 404. Records every request line.
struct Files {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Files {
    fn serve(root: PathBuf) -> Files {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                log.lock().unwrap().push(line.trim().to_string());
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let file = if method == "PUT" && path == "/artifacts/fetch/" {
                    let artifact: Value = serde_json::from_slice(&body).unwrap_or_default();
                    root.join(artifact["name"].as_str().unwrap_or("-"))
                } else {
                    root.join(path.trim_start_matches('/'))
                };
                let (status, data) = match std::fs::read(&file) {
                    Ok(data) if file.is_file() => (200, data),
                    _ => (404, b"not found".to_vec()),
                };
                // A file holding `REDIRECT <url>` answers a 302 to that URL.
                let text = String::from_utf8_lossy(&data).into_owned();
                let (status, data, location) = match text.strip_prefix("REDIRECT ") {
                    Some(to) => (302, Vec::new(), format!("Location: {}\r\n", to.trim())),
                    None => (status, data, String::new()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    data.len()
                );
                let _ = stream.write_all(&data);
            }
        });
        Files { url, seen }
    }
}

/// Everything one test needs: a chart, a git repository, files on loopback, the renderer
/// wrappers and fakes, and kiln configured with them.
struct Fixture {
    dir: tempfile::TempDir,
    files: Files,
    kiln: Kiln,
    chart_tgz: Vec<u8>,
    git: String,
}

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
const VALUES: &str = "replicas: 1\nimage:\n  tag: stable\n";
const TEMPLATE: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cfg
  namespace: {{ .Release.Namespace }}
data:
  replicas: {{ .Values.replicas | quote }}
  tag: {{ .Values.image.tag | quote }}
";
const TEST_HOOK: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n";
const FAKE_OUTPUT: &str = "---\n# Source: web/templates/cm.yaml\nkind: ConfigMap\n---\n# Source: web/templates/tests/t.yaml\nkind: Pod\n";

fn chart_at(dir: &Path) {
    write(&dir.join("Chart.yaml"), CHART);
    write(&dir.join("values.yaml"), VALUES);
    write(&dir.join("templates/cm.yaml"), TEMPLATE);
    write(&dir.join("templates/tests/t.yaml"), TEST_HOOK);
    write(
        &dir.join("crds/widget.yaml"),
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n",
    );
}

fn kustomization_at(dir: &Path) {
    write(
        &dir.join("base/kustomization.yaml"),
        "resources:\n- cm.yaml\n",
    );
    write(
        &dir.join("base/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  level: base\n",
    );
    write(
        &dir.join("overlays/prod/kustomization.yaml"),
        "resources:\n- ../../base\nnamePrefix: prod-\npatches:\n- path: level.yaml\n",
    );
    write(
        &dir.join("overlays/prod/level.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  level: prod\n",
    );
}

impl Fixture {
    fn new(extra: &str) -> Fixture {
        Self::with(extra, |_| {})
    }

    fn with(extra: &str, tweak: impl FnOnce(&Path)) -> Fixture {
        Self::full("", extra, tweak)
    }

    /// `helm_extra`: more `helm:` keys (indented lines).
    fn full(helm_extra: &str, extra: &str, tweak: impl FnOnce(&Path)) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let python = venv().join("bin/python");
        let probe = Command::new(&python)
            .args(["-c", "import helm_python"])
            .status();
        assert!(
            probe.is_ok_and(|s| s.success()),
            "{} cannot import helm_python: scripts/test installs helm-python-sdk into the test venv (KILN_TEST_VENV)",
            python.display()
        );
        assert!(
            Command::new("kubectl")
                .arg("version")
                .arg("--client")
                .output()
                .is_ok_and(|o| o.status.success()),
            "kubectl is missing: scripts/test installs it"
        );
        // The chart, packed as Helm packs it, served from a Helm repository on loopback.
        chart_at(&d.join("src/web"));
        let served = d.join("served");
        std::fs::create_dir_all(served.join("charts")).unwrap();
        sh(d, "tar -C src -czf served/charts/web-0.1.0.tgz web");
        let chart_tgz = std::fs::read(served.join("charts/web-0.1.0.tgz")).unwrap();
        write(
            &served.join("charts/index.yaml"),
            "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 0.1.0\n    urls:\n    - web-0.1.0.tgz\n",
        );
        write(&served.join("values/prod.yaml"), "replicas: 4\n");
        kustomization_at(&served.join("k"));
        std::fs::copy(
            served.join("charts/web-0.1.0.tgz"),
            served.join("web-chart"),
        )
        .unwrap();
        // A git repository with the chart and the overlays in subfolders.
        let repo = d.join("repo");
        chart_at(&repo.join("deploy/charts/web"));
        kustomization_at(&repo.join("deploy/k"));
        write(&repo.join("README"), "not deployed\n");
        sh(
            &repo,
            "git init -q -b main . && git add -A && git -c user.name=t -c user.email=t@example.com commit -qm chart",
        );
        let files = Files::serve(served);
        // The renderers.
        let tools = d.join("tools");
        script(
            &tools.join("helm3"),
            &format!(
                "#!/bin/sh\nHELM_FRONT_ARGV_LOG='{}' exec '{}' '{REPO}/tests/support/helm-front' \"$@\"\n",
                d.join("helm3.argv").display(),
                python.display()
            ),
        );
        for fake in ["helm2", "helmfile"] {
            // Records its argv (one per line) and prints a canned manifest: no engine here.
            script(
                &tools.join(fake),
                &format!(
                    "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\ncat <<'EOF'\n{FAKE_OUTPUT}EOF\n",
                    d.join(format!("{fake}.argv")).display()
                ),
            );
        }
        tweak(&tools);
        let yaml = format!(
            "helm:\n  v3ExecutablePath: {t}/helm3\n  v2ExecutablePath: {t}/helm2\n{helm_extra}\
             helmfile:\n  executablePath: {t}/helmfile\n\
             kustomize:\n  v3ExecutablePath: {REPO}/tests/support/kustomize-via-kubectl\n  v4ExecutablePath: {REPO}/tests/support/kustomize-via-kubectl\n\
             {extra}",
            t = tools.display()
        );
        let kiln = Kiln::start(&d.join("data"), &yaml);
        Fixture {
            git: format!("file://{}", repo.display()),
            dir,
            files,
            kiln,
            chart_tgz,
        }
    }

    fn bake(&self, kind: &str, body: Value) -> Response {
        self.kiln
            .post(&format!("/api/v2/manifest/bake/{kind}"), &body)
    }

    fn rendered(&self, kind: &str, body: Value) -> String {
        let r = self.bake(kind, body);
        assert_eq!(r.status, 200, "{}", r.body);
        let a = r.json();
        assert_eq!(a["type"], "embedded/base64", "{a}");
        unb64(&a["reference"])
    }

    fn argv(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.argv"))).unwrap_or_default()
    }

    fn work_dirs_left(&self) -> Vec<String> {
        std::fs::read_dir(self.kiln.data.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("manifest-"))
            .collect()
    }
}

const ALLOW_FILES: &str = "kiln:\n  manifests:\n    allowFileUrls: true\n";

#[test]
fn helm3_renders_a_real_chart_from_every_kind_of_input_artifact() {
    let f = Fixture::new(ALLOW_FILES);
    // Embedded chart archive, values over http, overrides as --set-string, CRDs.
    let out = f.rendered(
        "HELM3",
        json!({
            "templateRenderer": "HELM3", "outputName": "shop", "outputArtifactName": "shop-manifest",
            "namespace": "prod", "includeCRDs": true, "overrides": {"image.tag": "1.2.3"},
            "inputArtifacts": [
                {"type": "embedded/base64", "name": "web", "reference": b64(&f.chart_tgz)},
                {"type": "http/file", "reference": format!("{}/values/prod.yaml", f.files.url)}
            ]
        }),
    );
    assert!(
        out.contains("name: shop-cfg") && out.contains("namespace: prod"),
        "{out}"
    );
    assert!(
        out.contains("replicas: \"4\"") && out.contains("tag: \"1.2.3\""),
        "{out}"
    );
    assert!(out.contains("kind: CustomResourceDefinition"), "{out}");
    assert!(
        !out.contains("shop-test"),
        "chart tests must be removed: {out}"
    );
    let argv = f.argv("helm3");
    assert!(argv.contains(r#""template", "shop", "#) && argv.contains(r#""--namespace", "prod", "--include-crds", "--set-string", "image.tag=1.2.3", "--values""#), "{argv}");

    // A Helm repository on loopback (index.yaml, then the chart).
    let out = f.rendered(
        "helm3",
        json!({"outputName": "repo", "outputArtifactName": "m",
               "inputArtifacts": [{"type": "helm/chart", "name": "web", "version": "0.1.0",
                                   "location": format!("{}/charts", f.files.url)}]}),
    );
    assert!(
        out.contains("name: repo-cfg") && out.contains("tag: \"stable\""),
        "{out}"
    );
    let seen = f.files.seen.lock().unwrap().clone();
    assert!(
        seen.contains(&"GET /charts/index.yaml HTTP/1.1".to_string()),
        "{seen:?}"
    );

    // A git repository, the chart in a subfolder (helmChartFilePath), raw overrides.
    let out = f.rendered(
        "HELM3",
        json!({"outputName": "fromgit", "outputArtifactName": "m", "rawOverrides": true,
               "overrides": {"replicas": 7},
               "helmChartFilePath": "deploy/charts/web",
               "inputArtifacts": [{"type": "git/repo", "reference": f.git, "version": "main"}]}),
    );
    assert!(
        out.contains("name: fromgit-cfg") && out.contains("replicas: \"7\""),
        "{out}"
    );
    assert!(f.work_dirs_left().is_empty(), "{:?}", f.work_dirs_left());
}

#[test]
fn the_answer_is_roscos_artifact_and_each_bake_is_counted_and_logged() {
    let f = Fixture::new("");
    let r = f.bake(
        "HELM3",
        json!({"outputName": "a", "outputArtifactName": "my-manifest",
               "inputArtifacts": [{"type": "embedded/base64", "reference": b64(&f.chart_tgz)}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.json();
    let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["customKind", "metadata", "name", "reference", "type"],
        "{a}"
    );
    assert_eq!(a["name"], "my-manifest");
    assert_eq!(a["customKind"], false);
    let bad = f.bake("PACKER", json!({}));
    assert_eq!(bad.status, 400);
    let metrics = f.kiln.get("/metrics").body;
    assert!(
        metrics.contains("kiln_manifest_bakes_total{renderer=\"helm3\",outcome=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kiln_manifest_bakes_total{renderer=\"unknown\",outcome=\"invalid\"} 1"),
        "{metrics}"
    );
    let log = std::fs::read_to_string(&f.kiln.stderr).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("manifest bake"))
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("helm3") && lines[0].contains("success"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("unknown") && lines[1].contains("invalid"),
        "{}",
        lines[1]
    );
}

#[test]
fn kustomize_builds_from_git_and_from_a_kustomization_file_over_http() {
    let f = Fixture::new(ALLOW_FILES);
    for kind in ["KUSTOMIZE", "KUSTOMIZE4"] {
        let out = f.rendered(
            kind,
            json!({"templateRenderer": kind, "outputName": "k", "outputArtifactName": "k",
                   "inputArtifact": {"type": "git/repo", "reference": f.git, "version": "main",
                                     "location": "deploy/k"},
                   "kustomizeFilePath": "deploy/k/overlays/prod/kustomization.yaml"}),
        );
        assert!(
            out.contains("name: prod-app") && out.contains("level: prod"),
            "{kind}: {out}"
        );
    }
    // Rosco's older shape: the kustomization file itself, its files fetched next to it.
    let out = f.rendered(
        "KUSTOMIZE",
        json!({"outputArtifactName": "k",
               "inputArtifact": {"type": "http/file", "name": "k/overlays/prod/kustomization.yaml",
                                 "reference": format!("{}/k/overlays/prod/kustomization.yaml", f.files.url)}}),
    );
    assert!(
        out.contains("name: prod-app") && out.contains("level: prod"),
        "{out}"
    );
    assert!(f.work_dirs_left().is_empty());
}

#[test]
fn helm2_and_helmfile_get_roscos_command_lines_through_a_recording_fake() {
    let f = Fixture::new(ALLOW_FILES);
    let out = f.rendered(
        "HELM2",
        json!({"templateRenderer": "HELM2", "outputName": "old", "outputArtifactName": "m",
               "namespace": "ns", "includeCRDs": true, "apiVersions": "batch/v1", "kubeVersion": "1.16",
               "overrides": {"a": "b"}, "rawOverrides": true,
               "inputArtifacts": [{"type": "embedded/base64", "reference": b64(&f.chart_tgz)},
                                  {"type": "embedded/base64", "reference": b64(b"x: 1\n")}]}),
    );
    assert_eq!(
        out,
        "---\n# Source: web/templates/cm.yaml\nkind: ConfigMap\n"
    );
    let argv: Vec<String> = f.argv("helm2").lines().map(String::from).collect();
    assert_eq!(argv[0], "template");
    assert!(argv[1].ends_with("/chart.tgz"), "{argv:?}");
    assert_eq!(
        &argv[2..13],
        [
            "--name",
            "old",
            "--namespace",
            "ns",
            "--api-versions",
            "batch/v1",
            "--kube-version",
            "1.16",
            "--set",
            "a=b",
            "--values"
        ]
    );
    assert!(
        argv[13].ends_with("/values-1.yml") && argv.len() == 14,
        "{argv:?}"
    );

    let out = f.rendered(
        "HELMFILE",
        json!({"templateRenderer": "HELMFILE", "outputName": "hf", "outputArtifactName": "m",
               "environment": "staging", "namespace": "ns", "includeCRDs": true,
               "overrides": {"image.tag": "2"}, "helmfileFilePath": "deploy/charts/web/Chart.yaml",
               "inputArtifacts": [{"type": "git/repo", "reference": f.git, "version": "main"}]}),
    );
    assert!(!out.contains("tests/"), "{out}");
    let argv: Vec<String> = f.argv("helmfile").lines().map(String::from).collect();
    assert_eq!(&argv[..2], ["template", "--file"]);
    assert!(
        argv[2].ends_with("/tree/deploy/charts/web/Chart.yaml"),
        "{argv:?}"
    );
    let helm3 = format!("{}/tools/helm3", f.dir.path().display());
    assert_eq!(
        &argv[3..],
        [
            "--helm-binary",
            helm3.as_str(),
            "--environment",
            "staging",
            "--namespace",
            "ns",
            "--include-crds",
            "--set",
            "image.tag=2"
        ]
    );
}

#[test]
fn cloud_foundry_manifests_are_resolved_by_kiln() {
    let f = Fixture::new("");
    std::fs::write(
        f.dir.path().join("served/vars.yml"),
        "app:\n  name: shop\nroutes: [a.example, b.example]\n",
    )
    .unwrap();
    let template = "applications:\n- name: ((app.name))\n  routes:\n  - route: ((routes[1]))\n";
    let body = |t: &str| {
        json!({"templateRenderer": "CF", "outputName": "cf", "outputArtifactName": "cf",
               "manifestTemplate": {"type": "embedded/base64", "reference": b64(t.as_bytes())},
               "varsArtifacts": [{"type": "http/file", "reference": format!("{}/vars.yml", f.files.url)}]})
    };
    let out = f.rendered("CF", body(template));
    assert_eq!(
        out,
        "applications:\n- name: shop\n  routes:\n  - route: b.example\n"
    );
    let r = f.bake("CF", body("name: ((missing))\n"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "Unable to resolve values for the following keys: \n((missing))"
    );
}

#[test]
fn failures_answer_as_rosco_does_with_the_reason() {
    let f = Fixture::new("");
    // A chart whose template does not parse: Helm's own error comes back.
    let broken = f.dir.path().join("broken");
    chart_at(&broken.join("web"));
    write(
        &broken.join("web/templates/bad.yaml"),
        "x: {{ .Values.nope | badfunc }}\n",
    );
    sh(&broken, "tar -czf web.tgz web");
    let tgz = std::fs::read(broken.join("web.tgz")).unwrap();
    let r = f.bake(
        "HELM3",
        json!({"outputName": "b", "inputArtifacts": [{"type": "embedded/base64", "reference": b64(&tgz)}]}),
    );
    assert_eq!(r.status, 500, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("Bake failed: ") && message.contains("badfunc"),
        "{message}"
    );

    // A missing values file: the source's 404, with Rosco's words.
    let r = f.bake(
        "HELM3",
        json!({"outputName": "b", "inputArtifacts": [
            {"type": "embedded/base64", "reference": b64(&f.chart_tgz)},
            {"type": "http/file", "reference": format!("{}/values/none.yaml", f.files.url)}]}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to fetch helm values file: GET"),
        "{}",
        r.body
    );

    // Redirects are followed, but never to the instance metadata service.
    let served = f.dir.path().join("served");
    std::fs::write(served.join("moved.yaml"), "REDIRECT /values/prod.yaml").unwrap();
    std::fs::write(
        served.join("imds.yaml"),
        "REDIRECT http://169.254.169.254/latest/meta-data/",
    )
    .unwrap();
    let with_values = |name: &str| {
        json!({"outputName": "r", "inputArtifacts": [
            {"type": "embedded/base64", "reference": b64(&f.chart_tgz)},
            {"type": "http/file", "reference": format!("{}/{name}", f.files.url)}]})
    };
    let out = f.rendered("HELM3", with_values("moved.yaml"));
    assert!(out.contains("replicas: \"4\""), "{out}");
    let r = f.bake("HELM3", with_values("imds.yaml"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("link-local"), "{}", r.body);

    // file:// is off unless the operator allows it; git over file:// too.
    let r = f.bake(
        "KUSTOMIZE",
        json!({"inputArtifact": {"type": "git/repo", "reference": f.git}, "kustomizeFilePath": "deploy/k/kustomization.yaml"}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("http(s) only"), "{}", r.body);
    assert!(f.work_dirs_left().is_empty(), "{:?}", f.work_dirs_left());
}

#[test]
fn a_renderer_over_the_time_limit_is_killed_with_its_children() {
    let mark = marker();
    let f = Fixture::with("kiln:\n  manifests:\n    timeout: 2s\n", |tools| {
        script(
            &tools.join("helmfile"),
            &format!("#!/bin/sh\n(sleep 60; echo '{mark}') &\nexec sleep 60 # {mark}\n"),
        )
    });
    let started = Instant::now();
    let r = f.bake(
        "HELMFILE",
        json!({"inputArtifacts": [{"type": "embedded/base64", "reference": b64(b"releases: []\n")}]}),
    );
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("kiln.manifests.timeout"), "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_nothing_left(&mark, &[f.kiln.pid()]);
    assert!(f.work_dirs_left().is_empty());
}

#[test]
fn with_clouddriver_every_artifact_is_fetched_through_it() {
    let f = Fixture::with("", |_| {});
    // The same served folder answers PUT /artifacts/fetch/ by the artifact's name.
    let extra = format!("services:\n  clouddriver:\n    baseUrl: {}\n", f.files.url);
    let yaml = std::fs::read_to_string(&f.kiln.config).unwrap() + &extra;
    let data = f.dir.path().join("data2");
    let kiln = Kiln::start(&data, &yaml);
    let r = kiln.post(
        "/api/v2/manifest/bake/HELM3",
        &json!({"outputName": "cd", "inputArtifacts": [
            {"type": "gcs/object", "name": "web-chart", "reference": "gs://b/web.tgz"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(unb64(&r.json()["reference"]).contains("name: cd-cfg"));
    let r = kiln.post(
        "/api/v2/manifest/bake/HELM3",
        &json!({"outputName": "cd", "inputArtifacts": [{"type": "gcs/object", "name": "gone"}]}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.body.contains("Failed to fetch helm template"),
        "{}",
        r.body
    );
    let seen = f.files.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .filter(|l| l.starts_with("PUT /artifacts/fetch/ "))
            .count()
            >= 2,
        "{seen:?}"
    );
}

#[test]
fn long_overrides_reach_real_helm_through_a_values_file() {
    let f = Fixture::full("  overridesFileThreshold: 10\n", "", |_| {});
    for (raw, replicas) in [(false, "\"12\""), (true, "\"12\"")] {
        let out = f.rendered(
            "HELM3",
            json!({"outputName": "o", "rawOverrides": raw,
                   "overrides": {"image.tag": "from-a-file", "replicas": 12},
                   "inputArtifacts": [{"type": "embedded/base64", "reference": b64(&f.chart_tgz)}]}),
        );
        assert!(
            out.contains("tag: \"from-a-file\"") && out.contains(&format!("replicas: {replicas}")),
            "{out}"
        );
        let argv = f.argv("helm3");
        let last = argv.lines().last().unwrap();
        assert!(
            !last.contains("--set") && last.contains("overrides_"),
            "{last}"
        );
    }
}

#[test]
fn a_hostile_tarball_is_refused_and_nothing_lands_outside_the_work_dir() {
    let f = Fixture::new("");
    let d = f.dir.path();
    // Through the stand-in Clouddriver: a git/repo tarball holding a symlink to /tmp (entries
    // with `..` or through links are refused the same way: manifest::archive's unit tests).
    sh(
        d,
        "mkdir -p evil && ln -s /tmp evil/out && tar -C evil -czf served/evil.tgz out",
    );
    let extra = format!("services:\n  clouddriver:\n    baseUrl: {}\n", f.files.url);
    let yaml = std::fs::read_to_string(&f.kiln.config).unwrap() + &extra;
    let kiln = Kiln::start(&d.join("data2"), &yaml);
    let r = kiln.post(
        "/api/v2/manifest/bake/KUSTOMIZE",
        &json!({"inputArtifact": {"type": "git/repo", "name": "evil.tgz", "reference": "https://git.example/r.git"},
                "kustomizeFilePath": "out/kustomization.yaml"}),
    );
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("points outside the artifact"), "{}", r.body);
    let left: Vec<_> = std::fs::read_dir(d.join("data2/tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_operators_limits_apply_to_every_bake() {
    let f = Fixture::with(
        "kiln:\n  manifests:\n    maxConcurrent: 1\n    maxOutputBytes: 100\n    maxArtifactBytes: 50000\n",
        |tools| {
            script(
                &tools.join("helmfile"),
                "#!/bin/sh\nsleep 1\necho 'kind: A'\n",
            )
        },
    );
    // One bake at a time: two at once take two renderer runs end to end.
    let started = Instant::now();
    let body = json!({"inputArtifacts": [{"type": "embedded/base64", "reference": b64(b"releases: []\n")}]});
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (addr, body) = (f.kiln.addr.clone(), body.to_string());
            std::thread::spawn(move || {
                http(
                    &addr,
                    "POST",
                    "/api/v2/manifest/bake/HELMFILE",
                    &[],
                    body.as_bytes(),
                )
                .status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The renderer's output is capped: real Helm's output is over 100 bytes.
    let r = f.bake(
        "HELM3",
        json!({"outputName": "o", "inputArtifacts": [{"type": "embedded/base64", "reference": b64(&f.chart_tgz)}]}),
    );
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("kiln.manifests.maxOutputBytes"),
        "{}",
        r.body
    );

    // So is each artifact.
    std::fs::write(
        f.dir.path().join("served/big.yaml"),
        "a: ".to_string() + &"x".repeat(60_000),
    )
    .unwrap();
    let r = f.bake(
        "HELM3",
        json!({"outputName": "o", "inputArtifacts": [
            {"type": "embedded/base64", "reference": b64(&f.chart_tgz)},
            {"type": "http/file", "reference": format!("{}/big.yaml", f.files.url)}]}),
    );
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("kiln.manifests.maxArtifactBytes"),
        "{}",
        r.body
    );
    assert!(f.work_dirs_left().is_empty());
}

#[test]
fn a_stalled_request_body_on_the_manifest_route_still_gets_408() {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(
        data.path(),
        "kiln:\n  http:\n    requestTimeout: 1s\n  manifests:\n    timeout: 1s\n",
    );
    let mut s = std::net::TcpStream::connect(&kiln.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    write!(
        s,
        "POST /api/v2/manifest/bake/CF HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("kiln.http.requestTimeout"), "{answer}");
    // The request's limit plus the bake's: 2 s here.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
