//! Rosco's v1 API answers as Rosco does, bad input gets a clear 4xx, and nothing is stored for it.
//! These tests need no Packer run: every request here is refused before one would start.

use crate::harness::*;
use serde_json::json;

const CONFIG: &str = r#"
aws:
  enabled: true
  bakery-defaults:
    template-file: aws-ebs.json
    base-images:
    - baseImage:
        id: trusty
        shortDescription: v14.04
        packageType: DEB
      virtualizationSettings:
      - region: us-east-1
        virtualizationType: hvm
        instanceType: t2.micro
        sourceAmi: ami-12345678
"#;

fn kiln() -> (tempfile::TempDir, Kiln) {
    let data = tempfile::tempdir().unwrap();
    let kiln = Kiln::start(data.path(), CONFIG);
    (data, kiln)
}

fn assert_refused(kiln: &Kiln, body: serde_json::Value, status: u16, message: &str) {
    let r = kiln.post("/api/v1/us-east-1/bake", &body);
    assert_eq!(r.status, status, "{}", r.body);
    let got = r.json();
    assert!(
        got["message"].as_str().unwrap_or("").contains(message),
        "expected '{message}' in {got}"
    );
    assert_eq!(got["path"], "/api/v1/us-east-1/bake");
}

#[test]
fn bad_requests_get_a_400_that_says_what_to_fix_and_nothing_is_stored() {
    let (_d, kiln) = kiln();
    assert_refused(
        &kiln,
        json!({"cloud_provider_type": "gce", "base_os": "trusty"}),
        400,
        "Unknown provider type 'gce'.",
    );
    assert_refused(
        &kiln,
        json!({"base_os": "plan9"}),
        400,
        "No virtualization settings found for 'plan9'.",
    );
    assert_refused(
        &kiln,
        json!({"base_os": "trusty", "vm_type": "pv"}),
        400,
        "No virtualization settings found for region 'us-east-1', operating system 'trusty', and vm type 'pv'.",
    );
    assert_refused(
        &kiln,
        json!({"base_os": "trusty", "upgrade": "often"}),
        400,
        "field 'upgrade'",
    );
    assert_refused(
        &kiln,
        json!({"base_os": "trusty", "template_file_name": "../../etc/passwd"}),
        400,
        "configDir",
    );
    assert_refused(
        &kiln,
        json!({"base_os": "trusty", "template_file_name": "missing.json"}),
        400,
        "not found",
    );
    assert_refused(
        &kiln,
        json!({"base_os": "trusty", "ami_name": "my app!"}),
        400,
        "'!'",
    );
    assert_refused(
        &kiln,
        json!({"base_os": "trusty", "request_id": "../../etc"}),
        400,
        "is not usable as a bake id",
    );
    let r = http(
        &kiln.addr,
        "POST",
        "/api/v1/us-east-1/bake",
        &[],
        b"{\"package\": ",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("malformed bake request")
    );
    let big = json!({"base_os": "trusty", "package": "x".repeat(1_100_000)});
    assert_eq!(kiln.post("/api/v1/us-east-1/bake", &big).status, 413);
    let status = kiln.get("/status/instance").json();
    assert_eq!(status["status"], "IDLE");
    assert_eq!(status["bakes"], json!([]));
}

#[test]
fn unknown_ids_answer_with_roscos_statuses_and_messages() {
    let (_d, kiln) = kiln();
    let r = kiln.get("/api/v1/us-east-1/status/nope");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Unable to retrieve status for 'nope'.");
    let r = kiln.get("/api/v1/us-east-1/bake/nope");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Unable to retrieve bake details for 'nope'."
    );
    let r = kiln.get("/api/v1/us-east-1/logs/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "Logs not found.");
    let r = kiln.get("/api/v1/us-east-1/logs/image/ami-nope");
    assert_eq!(r.status, 404);
    let r = kiln.get("/api/v1/us-east-1/cancel/nope");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Unable to locate incomplete bake with id 'nope'."
    );
    let r = http(
        &kiln.addr,
        "DELETE",
        "/api/v1/us-east-1/bake",
        &[],
        json!({"base_os": "trusty", "package": "x"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().starts_with(
        "Unable to locate bake with key 'bake:aws:trusty:x:us-east-1:hvm:enhancedNWDisabled'"
    ));
    let r = kiln.post(
        "/api/v1/bakes/delete-requests",
        &json!({"pipelineExecutionIds": ["exec-9"]}),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn bake_options_list_the_configured_base_images_in_roscos_shape() {
    let (_d, kiln) = kiln();
    let all = kiln.get("/bakeOptions").json();
    assert_eq!(all[0]["cloudProvider"], "aws");
    assert_eq!(all[0]["baseImages"][0]["id"], "trusty");
    assert_eq!(all[0]["baseImages"][0]["packageType"], "DEB");
    assert_eq!(all[0]["baseImages"][0]["osType"], "linux");
    assert_eq!(kiln.get("/bakeOptions/aws").json()["cloudProvider"], "aws");
    let r = kiln.get("/bakeOptions/gce");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"error": "bake.options.not.found", "status": "NOT_FOUND", "messages": ["Bake options not found. Cloud provider gce not found"]})
    );
    let r = kiln.get("/bakeOptions/aws/baseImages/xenial");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["messages"][0],
        "Bake options not found. Can't find base image with id xenial in aws base images: trusty"
    );
    assert_eq!(
        kiln.get("/bakeOptions/aws/baseImages/trusty").json()["shortDescription"],
        "v14.04"
    );
}

#[test]
fn health_status_and_metrics_answer() {
    let (_d, kiln) = kiln();
    assert_eq!(kiln.get("/health").json(), json!({"status": "UP"}));
    // Gate asks every service for its plugins.
    let plugins = kiln.get("/installedPlugins");
    assert_eq!((plugins.status, plugins.json()), (200, json!([])));
    let all = kiln.get("/status/all").json();
    let me = all["instance"].as_str().unwrap();
    assert!(me.contains('@'), "uuid@hostname: {me}");
    assert_eq!(all["instances"][me]["status"], "IDLE");
    let _ = kiln.get("/api/v1/us-east-1/status/nope");
    let metrics = kiln.get("/metrics").body;
    assert!(
        metrics.contains(
            "kiln_http_requests_total{route=\"/api/v1/{region}/status/{id}\",status=\"400\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("kiln_bakes_active 0"));
}
