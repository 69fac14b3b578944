//! The in-process tier: kiln's router served by `Application` on a loopback port inside the test
//! process, with a temporary SQLite store. Needs no root, Packer, moto, qemu or Redis, so a plain
//! `cargo test` passes on a laptop. Packer is a stand-in script that fails the way Packer fails
//! (success paths run real Packer in the e2e tier, `--features e2e`).

use kiln::bake::{BakeDetails, BakeRecord, Phase};
use kiln::startup::Application;
use kiln::store::{
    BakeStore, Batch, Created, Cursor, Instance, SqliteStore, StoreResult, Transition,
};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    serve_custom(data, FAILING_PACKER, |store| store).await
}

/// [`serve`] with another stand-in Packer.
async fn serve_with(data: &Path, script: &str) -> Served {
    serve_custom(data, script, |store| store).await
}

/// [`serve`] on the SQLite store `wrap` decorates.
async fn serve_wrapped(
    data: &Path,
    wrap: impl FnOnce(Arc<dyn BakeStore>) -> Arc<dyn BakeStore>,
) -> Served {
    serve_custom(data, FAILING_PACKER, wrap).await
}

async fn serve_custom(
    data: &Path,
    script: &str,
    wrap: impl FnOnce(Arc<dyn BakeStore>) -> Arc<dyn BakeStore>,
) -> Served {
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
    std::fs::create_dir_all(data).unwrap();
    let store = wrap(Arc::new(SqliteStore::open(&data.join("kiln.db")).unwrap()));
    let app = Application::build_with_store(settings, listener, KILN.into(), store).unwrap();
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

/// A store that takes `delay_ms` before every call: a slow disk or a Redis far away.
struct SlowStore {
    inner: Arc<dyn BakeStore>,
    delay_ms: Arc<AtomicU64>,
}

impl SlowStore {
    fn wait(&self) {
        std::thread::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)));
    }
}

impl BakeStore for SlowStore {
    fn create(&self, record: &BakeRecord, reuse: bool) -> StoreResult<Created> {
        self.wait();
        self.inner.create(record, reuse)
    }
    fn get(&self, id: &str) -> StoreResult<Option<BakeRecord>> {
        self.wait();
        self.inner.get(id)
    }
    fn phase(&self, id: &str) -> StoreResult<Option<Phase>> {
        self.wait();
        self.inner.phase(id)
    }
    fn details(&self, id: &str) -> StoreResult<Option<BakeDetails>> {
        self.wait();
        self.inner.details(id)
    }
    fn get_by_identity(&self, identity: &str) -> StoreResult<Option<BakeRecord>> {
        self.wait();
        self.inner.get_by_identity(identity)
    }
    fn transition(
        &self,
        id: &str,
        phase: Phase,
        change: Transition,
        now_ms: i64,
    ) -> StoreResult<Option<BakeRecord>> {
        self.wait();
        self.inner.transition(id, phase, change, now_ms)
    }
    fn append_log(&self, id: &str, chunk: &str) -> StoreResult<()> {
        self.wait();
        self.inner.append_log(id, chunk)
    }
    fn read_log(&self, id: &str) -> StoreResult<String> {
        self.wait();
        self.inner.read_log(id)
    }
    fn read_log_from(&self, id: &str, offset: usize) -> StoreResult<String> {
        self.wait();
        self.inner.read_log_from(id, offset)
    }
    fn map_image(&self, region: &str, image: &str, id: &str) -> StoreResult<()> {
        self.wait();
        self.inner.map_image(region, image, id)
    }
    fn bake_for_image(&self, region: &str, image: &str) -> StoreResult<Option<String>> {
        self.wait();
        self.inner.bake_for_image(region, image)
    }
    fn unbind(&self, id: &str) -> StoreResult<()> {
        self.wait();
        self.inner.unbind(id)
    }
    fn delete_by_executions(&self, execution_ids: &[String]) -> StoreResult<usize> {
        self.wait();
        self.inner.delete_by_executions(execution_ids)
    }
    fn unfinished(&self) -> StoreResult<Vec<BakeRecord>> {
        self.wait();
        self.inner.unfinished()
    }
    fn ping(&self) -> StoreResult<()> {
        self.wait();
        self.inner.ping()
    }
    fn probe(&self) -> StoreResult<()> {
        self.wait();
        self.inner.probe()
    }
    fn instances(&self) -> StoreResult<Vec<Instance>> {
        self.wait();
        self.inner.instances()
    }
    fn older_than(&self, cursor: Option<&Cursor>, n: usize) -> StoreResult<Batch> {
        self.wait();
        self.inner.older_than(cursor, n)
    }
    fn delete_finished(
        &self,
        settled_before_ms: Option<i64>,
        keep: Option<usize>,
    ) -> StoreResult<Vec<(String, String)>> {
        self.wait();
        self.inner.delete_finished(settled_before_ms, keep)
    }
}

/// A slow store holds up the requests that need it, never the others: store calls (and the
/// file reads of a bake's view) run on blocking threads, not on the async workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_holds_up_only_the_requests_that_need_it() {
    let data = tempfile::tempdir().unwrap();
    let delay_ms = Arc::new(AtomicU64::new(0));
    let slow = delay_ms.clone();
    let kiln = Arc::new(
        serve_wrapped(data.path(), move |inner| {
            Arc::new(SlowStore {
                inner,
                delay_ms: slow,
            })
        })
        .await,
    );
    delay_ms.store(3000, Ordering::SeqCst);

    // Every store-bound route twice (more requests than async workers): one route that called
    // the store on an async worker would take both, and nothing else would answer.
    let mut waiting = Vec::new();
    let gets = [
        "/api/v1/us-east-1/status/no-such-bake",
        "/api/v1/us-east-1/bake/no-such-bake",
        "/api/v1/us-east-1/cancel/no-such-bake",
        "/api/v1/us-east-1/logs/no-such-bake",
        "/api/kiln/v1/bakes/no-such-bake",
        "/health",
    ];
    for path in gets {
        for _ in 0..2 {
            let k = kiln.clone();
            waiting.push(tokio::spawn(async move { k.call("GET", path, None).await }));
        }
    }
    for (path, body) in [
        (
            "/api/v1/us-east-1/bake",
            json!({"package": "nginx", "base_os": "ubuntu", "cloud_provider_type": "aws"}),
        ),
        (
            "/api/v1/bakes/delete-requests",
            json!({"pipelineExecutionIds": ["01HXYZ"]}),
        ),
    ] {
        for _ in 0..2 {
            let k = kiln.clone();
            let body = body.clone();
            waiting.push(tokio::spawn(async move {
                k.call("POST", path, Some(body)).await
            }));
        }
    }
    // Timed on this thread with a plain client: the runtime's own timers are served by the
    // same workers a regression would block.
    std::thread::sleep(Duration::from_millis(500));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    for path in ["/metrics", "/bakeOptions/aws", "/installedPlugins"] {
        let started = Instant::now();
        let status = agent
            .get(&format!("{}{path}", kiln.base))
            .call()
            .map(|r| r.status().as_u16());
        assert_eq!(status.ok(), Some(200), "{path}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{path} waited {:?} for a store it does not need",
            started.elapsed()
        );
    }
    assert!(
        waiting.iter().any(|w| !w.is_finished()),
        "the store was not slow: nothing waited on it"
    );

    delay_ms.store(0, Ordering::SeqCst);
    for w in waiting {
        let (status, answer) = w.await.unwrap();
        // Every held-up request answers in the end: a bake, or a clear 4xx.
        assert!(matches!(status, 200 | 400 | 404), "{status}: {answer}");
    }
    match Arc::try_unwrap(kiln) {
        Ok(k) => k.stop().await,
        Err(_) => panic!("a request still holds the server"),
    }
}

impl Served {
    /// A GET answered with its status, its headers (lower-case names) and its body as text.
    async fn get_raw(&self, path: &str) -> (u16, Vec<(String, String)>, String) {
        let url = format!("{}{path}", self.base);
        tokio::task::spawn_blocking(move || {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .new_agent();
            let mut resp = agent.get(&url).call().unwrap();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let status = resp.status().as_u16();
            (status, headers, resp.body_mut().read_to_string().unwrap())
        })
        .await
        .unwrap()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Waits until every bake in `ids` has finished (the stand-in Packer fails at once).
async fn settled(kiln: &Served, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in ids {
        loop {
            let (_, v) = kiln
                .call("GET", &format!("/api/kiln/v1/bakes/{id}"), None)
                .await;
            if v["phase"] == "failed" {
                break;
            }
            assert!(Instant::now() < deadline, "never settled: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_endpoint_pages_newest_first_filters_and_names_bad_parameters() {
    let data = tempfile::tempdir().unwrap();
    let kiln = serve(data.path()).await;
    let mut ids = Vec::new();
    for package in ["nginx", "curl", "nginx redis"] {
        let (status, created) = kiln
            .call(
                "POST",
                "/api/kiln/v1/us-east-1/bakes",
                Some(
                    json!({"package": package, "base_os": "ubuntu", "cloud_provider_type": "aws"}),
                ),
            )
            .await;
        assert_eq!(status, 200, "{created}");
        ids.push(created["bake"]["id"].as_str().unwrap().to_string());
        // Distinct creation times, so newest-first is the reverse of this order.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    settled(&kiln, &ids).await;

    let (status, first) = kiln.call("GET", "/api/kiln/v1/bakes?limit=2", None).await;
    assert_eq!(status, 200, "{first}");
    let listed: Vec<&str> = first["bakes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    // Each entry is the same object as the bake's own view.
    let (_, own) = kiln
        .call("GET", &format!("/api/kiln/v1/bakes/{}", ids[2]), None)
        .await;
    assert_eq!(first["bakes"][0], own);
    let cursor = first["next_cursor"].as_str().expect("a next cursor");
    let (_, second) = kiln
        .call(
            "GET",
            &format!("/api/kiln/v1/bakes?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second["bakes"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second["bakes"][0]["id"], ids[0].as_str());
    assert_eq!(second["next_cursor"], Value::Null);

    let (_, nginx) = kiln
        .call(
            "GET",
            "/api/kiln/v1/bakes?package=nginx&state=failed&provider=aws&region=us-east-1",
            None,
        )
        .await;
    let listed: Vec<&str> = nginx["bakes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[0].as_str()], "{nginx}");
    let (_, none) = kiln
        .call("GET", "/api/kiln/v1/bakes?state=running", None)
        .await;
    assert_eq!(none, json!({"bakes": [], "next_cursor": null}));

    // The CLI on the same endpoint: every page with --all, newest first; a refusal explained.
    let cli = |args: &[&str]| {
        let out = tokio::task::block_in_place(|| {
            std::process::Command::new(KILN)
                .args(["bakes", "list", "--server", &kiln.base])
                .args(args)
                .env_remove("KILN_SERVER")
                .output()
                .unwrap()
        });
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.success(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, text, _) = cli(&["--all", "--limit", "1"]);
    assert!(ok, "{text}");
    let rows: Vec<&str> = text.lines().skip(1).map(|l| &l[..36]).collect();
    assert_eq!(
        rows,
        [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()],
        "{text}"
    );
    let (ok, text, _) = cli(&["--limit", "2", "--package", "nginx"]);
    assert!(
        ok && text.contains("failed") && text.lines().count() == 3,
        "{text}"
    );
    let (ok, _, err) = cli(&["--state", "done"]);
    assert!(
        !ok && err.contains("HTTP 400") && err.contains("'state'"),
        "{err}"
    );

    for (query, names) in [
        ("state=done", "'state'"),
        ("limit=0", "'limit'"),
        ("cursor=not-a-cursor", "'cursor'"),
        ("package=a%20b", "'package'"),
        ("sort=asc", "'sort'"),
    ] {
        let (status, err) = kiln
            .call("GET", &format!("/api/kiln/v1/bakes?{query}"), None)
            .await;
        assert_eq!(status, 400, "{query}: {err}");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{query}: {err}");
    }
    kiln.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_and_openapi_are_served_from_the_binary_with_a_strict_policy() {
    let data = tempfile::tempdir().unwrap();
    let kiln = serve(data.path()).await;
    let (status, headers, page) = kiln.get_raw("/").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    let csp = header(&headers, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(page.contains("/ui/app.js") && page.contains("/ui/app.css"));
    for (asset, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let (status, headers, body) = kiln.get_raw(&format!("/ui/{asset}")).await;
        assert_eq!(status, 200, "{asset}");
        assert!(
            header(&headers, "content-type").starts_with(kind),
            "{asset}"
        );
        assert!(!header(&headers, "content-security-policy").is_empty());
        assert!(!body.is_empty());
    }
    let (status, _, body) = kiln.get_raw("/ui/..%2Fkiln.yml").await;
    assert_eq!(status, 404, "{body}");
    let (status, headers, body) = kiln.get_raw("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("application/json"));
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/kiln/v1/bakes"]["get"].is_object());
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
