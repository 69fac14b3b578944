//! The in-process tier: kiln's router served by `Application` on a loopback port inside the test
//! process, with a temporary SQLite store. Needs no root, Packer, moto, qemu or Redis, so a plain
//! `cargo test` passes on a laptop. Packer is a stand-in script that fails the way Packer fails
//! (success paths run real Packer in the e2e tier, `--features e2e`).

use kiln::startup::Application;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// A "packer" that prints a machine-readable error and exits 1, as Packer does when a build fails.
const FAILING_PACKER: &str = "#!/bin/sh\n\
    echo \"$(date +%s),,ui,error,Build 'amazon-ebs' errored: stand-in failure\"\n\
    exit 1\n";

struct Served {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(data: &Path) -> Served {
    serve_with(data, FAILING_PACKER).await
}

async fn serve_with(data: &Path, script: &str) -> Served {
    use std::os::unix::fs::PermissionsExt;
    let packer = data.join("stand-in-packer");
    std::fs::write(&packer, script).unwrap();
    std::fs::set_permissions(&packer, std::fs::Permissions::from_mode(0o755)).unwrap();
    let yaml = format!(
        r#"kiln:
  dataDir: {data}
  packerPath: {packer}
aws:
  enabled: true
  bakeryDefaults:
    awsAccessKey: AKIAKILNAPPTEST00001
    awsSecretKey: kiln-app-test-secret
    templateFile: aws-ebs.json
    baseImages:
    - baseImage: {{id: ubuntu, shortDescription: v16.04, packageType: deb}}
      virtualizationSettings:
      - {{region: us-east-1, virtualizationType: hvm, instanceType: t3.micro, sourceAmi: ami-12345678, sshUserName: ubuntu}}
"#,
        data = data.display(),
        packer = packer.display(),
    );
    let settings = kiln::config::load_str(&yaml, &|_| None).unwrap().settings;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Application::build_with_exe(settings, listener, KILN.into()).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    Served {
        base,
        stop: Some(tx),
        done,
    }
}

impl Served {
    async fn call(&self, method: &'static str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        tokio::task::spawn_blocking(move || {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .new_agent();
            let mut resp = match (method, body) {
                ("POST", Some(b)) => agent
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(b.to_string().as_bytes()),
                ("POST", None) => agent.post(&url).send_empty(),
                _ => agent.get(&url).call(),
            }
            .unwrap();
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
        .await
        .unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_options_and_clear_400s_through_the_whole_router() {
    let data = tempfile::tempdir().unwrap();
    let kiln = serve(data.path()).await;

    let (status, health) = kiln.call("GET", "/health", None).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("UP")),
        "{health}"
    );
    let (status, options) = kiln.call("GET", "/bakeOptions/aws", None).await;
    assert_eq!(status, 200);
    assert_eq!(options["baseImages"][0]["id"], "ubuntu", "{options}");
    let (status, plugins) = kiln.call("GET", "/installedPlugins", None).await;
    assert_eq!((status, plugins), (200, json!([])));

    // Hostile input is a 400 naming the field, before anything runs.
    let (status, err) = kiln
        .call(
            "POST",
            "/api/v1/us-east-1/bake",
            Some(json!({"package": "nginx", "base_os": "ubuntu",
                "extended_attributes": {"x": "{{env `AWS_SECRET_ACCESS_KEY`}}"}})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("extended_attributes"),
        "{err}"
    );
    let (status, err) = kiln
        .call(
            "POST",
            "/api/v1/us-east-1/bake",
            Some(json!(["not", "an", "object"])),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("JSON object"),
        "{err}"
    );
    kiln.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bake_whose_packer_fails_settles_failure_with_packers_error_and_no_secret() {
    let data = tempfile::tempdir().unwrap();
    let kiln = serve(data.path()).await;
    let (status, created) = kiln
        .call(
            "POST",
            "/api/v1/us-east-1/bake",
            Some(json!({"package": "nginx", "base_os": "ubuntu", "cloud_provider_type": "aws"})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (_, s) = kiln
            .call("GET", &format!("/api/v1/us-east-1/status/{id}"), None)
            .await;
        if s["state"] != "RUNNING" && s["state"] != "PENDING" {
            break s;
        }
        assert!(Instant::now() < deadline, "never settled: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (status["state"].as_str(), status["result"].as_str()),
        (Some("CANCELED"), Some("FAILURE")),
        "{status}"
    );
    let (_, view) = kiln
        .call("GET", &format!("/api/kiln/v1/bakes/{id}"), None)
        .await;
    assert_eq!(view["cause"], "job_failed", "{view}");
    assert!(
        view["error"]
            .as_str()
            .unwrap_or("")
            .contains("exited with code 1"),
        "{view}"
    );
    assert!(!view.to_string().contains("kiln-app-test-secret"), "{view}");
    let (_, logs) = kiln
        .call("GET", &format!("/api/v1/us-east-1/logs/{id}"), None)
        .await;
    let text = logs["logsContent"].as_str().unwrap_or_default();
    assert!(text.contains("stand-in failure"), "{logs}");
    assert!(!text.contains("kiln-app-test-secret"), "{logs}");
    kiln.stop().await;
}

/// A "packer" that launches, then fails the way EC2 refuses an instance over the account's limit.
const LIMITED_PACKER: &str = "#!/bin/sh\n\
    t=$(date +%s)\n\
    echo \"$t,,ui,say,==> amazon-ebs: Launching a source AWS instance...\"\n\
    echo \"$t,,ui,error,==> amazon-ebs: Error launching source instance: InstanceLimitExceeded: You have requested more instances (21) than your current instance limit of 20 allows\"\n\
    echo \"$t,amazon-ebs,error,Error launching source instance: InstanceLimitExceeded: You have requested more instances (21) than your current instance limit of 20 allows\"\n\
    exit 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bake_has_its_timeline_and_diagnosis_and_gc_frees_its_leftovers() {
    let data = tempfile::tempdir().unwrap();
    let kiln = serve_with(data.path(), LIMITED_PACKER).await;
    let (status, created) = kiln
        .call(
            "POST",
            "/api/kiln/v1/us-east-1/bakes",
            Some(json!({"package": "nginx", "base_os": "ubuntu", "cloud_provider_type": "aws"})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["bake"]["timeline"], json!([]), "{created}");
    assert_eq!(created["bake"]["diagnosis"], Value::Null);
    let id = created["bake"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let (_, v) = kiln
            .call("GET", &format!("/api/kiln/v1/bakes/{id}"), None)
            .await;
        if v["phase"] == "failed" {
            break v;
        }
        assert!(Instant::now() < deadline, "never settled: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(view["diagnosis"]["code"], "instance_capacity", "{view}");
    assert!(
        view["diagnosis"]["hint"]
            .as_str()
            .unwrap()
            .contains("maxConcurrent")
    );
    let timeline = view["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 1, "{view}");
    assert_eq!(timeline[0]["phase"], "launch");
    assert!(timeline[0]["seconds"].as_f64().unwrap() >= 0.0);
    let (_, logs) = kiln
        .call("GET", &format!("/api/v1/us-east-1/logs/{id}"), None)
        .await;
    let text = logs["logsContent"].as_str().unwrap_or_default();
    let last = text.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("kiln: diagnosis [instance_capacity]: "),
        "{text}"
    );
    // The settled bake's run dir is gone; staging a crash left behind goes with `gc`.
    assert!(!data.path().join("runs").join(&id).exists());
    let staging = data.path().join("staging").join(&id);
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("x.deb"), vec![0u8; 5000]).unwrap();
    let (status, gc) = kiln.call("POST", "/api/kiln/v1/gc", None).await;
    assert_eq!(status, 200, "{gc}");
    assert_eq!(gc["bytes"], 5000, "{gc}");
    assert_eq!(gc["removed"][0]["kind"], "staging");
    assert_eq!(
        gc["deleted_bakes"],
        json!([]),
        "no record rule set: none deleted"
    );
    assert!(!staging.exists());
    let (_, metrics) = kiln.call("GET", "/metrics", None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("kiln_bake_phase_seconds_count{phase=\"launch\",provider=\"aws\"} 1"),
        "{metrics}"
    );
    // The run dir removed at settling counts too.
    let reclaimed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kiln_retention_reclaimed_bytes_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(reclaimed > 5000, "{metrics}");
    kiln.stop().await;
}
