//! Bakes you can trust: cancel with cloud cleanup, the two limits, restarts (graceful or
//! SIGKILL), the queue, live logs. Real Packer against moto where the cloud matters; the fake
//! `packer` (tests/support/fake-packer) only to misbehave. Every test checks that nothing it
//! started is left running.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECRET: &str = "kilnLifecycleSecret/0123456789abcdefghij";

/// The no-SSH moto template with a provisioner that sleeps, so a bake stays in flight.
fn slow_template(seconds: u32) -> String {
    let text = std::fs::read_to_string(format!("{REPO}/tests/fixtures/packer/aws-ebs-nossh.json"))
        .unwrap();
    let mut t: Value = serde_json::from_str(&text).unwrap();
    t["provisioners"][0]["inline"] = json!([format!(
        "echo slow provisioner starts; sleep {seconds}; echo slow provisioner done"
    )]);
    t.to_string()
}

fn slow_config(moto: &Moto, seed: &Value, seconds: u32, extra: &str) -> String {
    let base = moto_config(moto, seed, SECRET, extra).replace(
        "templateFile: aws-ebs-nossh.json",
        "templateFile: aws-ebs-slow.json",
    );
    with_file(&base, "aws-ebs-slow.json", &slow_template(seconds))
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn cancel_stops_packer_which_cleans_up_the_builder_instance_key_pair_and_security_group() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let kiln = start_marked(data.path(), &slow_config(&moto, &seed, 120, ""), &mark, &[]);
    let id = id_of(&kiln.bake(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    ));
    wait_for_log(&kiln, &id, "slow provisioner starts");
    let during = moto.inspect("keypairs", &["us-east-1"]);
    assert!(
        !during.as_array().unwrap().is_empty(),
        "Packer's temporary key pair exists while baking"
    );

    let r = kiln.get(&format!("/api/v1/us-east-1/cancel/{id}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, format!("Canceled bake '{id}'."));
    let s = kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("CANCELED"), Some("FAILURE"))
    );
    assert_nothing_left(&mark, &[kiln.pid()]);

    assert_cloud_clean(&moto);
    assert!(
        kiln.log(&id).contains("Cancelling build"),
        "{}",
        kiln.log(&id)
    );

    // A finished bake cannot be canceled, and stays as it is.
    let again = kiln.get(&format!("/api/v1/us-east-1/cancel/{id}"));
    assert_eq!(again.status, 400);
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["cause"], "canceled");
}

#[test]
fn a_sigkilled_kiln_reattaches_to_its_running_bake_and_settles_it_with_the_ami() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let yaml = slow_config(&moto, &seed, 4, "");
    let mut kiln = start_marked(data.path(), &yaml, &mark, &[]);
    let id = id_of(&kiln.bake(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    ));
    wait_for_log(&kiln, &id, "slow provisioner starts");
    kiln.kill();

    let kiln = start_marked(data.path(), &yaml, &mark, &[]);
    let s = kiln.wait(&id, Duration::from_secs(120));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&id));
    let log = kiln.log(&id);
    assert!(log.contains("re-attached"), "{log}");
    assert!(log.contains("slow provisioner done"), "{log}");
    assert_eq!(
        log.matches("slow provisioner starts").count(),
        1,
        "no line twice: {log}"
    );
    let ami = kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json()["ami"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(moto.inspect("image", &["us-east-1", &ami])["exists"], true);
    assert_nothing_left(&mark, &[kiln.pid()]);
}

#[test]
fn a_graceful_stop_leaves_the_bake_running_for_the_next_start() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let yaml = slow_config(&moto, &seed, 3, "");
    let mut kiln = start_marked(data.path(), &yaml, &mark, &[]);
    let id = id_of(&kiln.bake(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    ));
    wait_for_log(&kiln, &id, "slow provisioner starts");
    kiln.stop();
    assert!(
        !processes_mentioning(&mark).is_empty(),
        "Packer keeps baking while kiln is down"
    );
    std::thread::sleep(Duration::from_secs(4));
    let kiln = start_marked(data.path(), &yaml, &mark, &[]);
    let s = kiln.wait(&id, Duration::from_secs(60));
    assert_eq!(s["state"], "COMPLETED", "{}", kiln.log(&id));
    assert!(kiln.log(&id).contains("slow provisioner done"));
    assert_nothing_left(&mark, &[kiln.pid()]);
}

#[test]
fn a_bake_whose_packer_died_while_kiln_was_down_ends_lost_not_running() {
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let yaml = fake_packer_config("");
    let mut kiln = start_marked(data.path(), &yaml, &mark, &[("FAKE_PACKER_MODE", "hang")]);
    let id = id_of(&kiln.bake(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    ));
    wait_for_log(&kiln, &id, "Waiting for instance");
    kiln.kill();
    for p in processes_mentioning(&mark) {
        let pid = p.split(':').next().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    assert_nothing_left(&mark, &[]);
    let kiln = start_marked(data.path(), &yaml, &mark, &[]);
    let s = kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("CANCELED"), Some("FAILURE"))
    );
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["cause"], "lost_on_restart");
    assert!(
        kiln.log(&id).contains("gone without a result"),
        "{}",
        kiln.log(&id)
    );
}

#[test]
fn the_total_and_no_output_limits_stop_packer_and_the_log_says_which_fired() {
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let yaml = fake_packer_config("");
    let kiln = start_marked(data.path(), &yaml, &mark, &[("FAKE_PACKER_MODE", "silent")]);
    let idle = json!({"package": "a", "base_os": "ubuntu", "extended_attributes": {"kiln_idle_timeout": "1s"}});
    let id = id_of(&kiln.bake("us-east-1", &idle));
    assert_eq!(kiln.wait(&id, Duration::from_secs(30))["state"], "CANCELED");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["cause"], "idle_timeout", "{view}");
    assert!(
        kiln.log(&id).contains("no-output limit"),
        "{}",
        kiln.log(&id)
    );
    assert_nothing_left(&mark, &[kiln.pid()]);
    drop(kiln);

    let kiln = start_marked(
        data.path(),
        &yaml,
        &mark,
        &[("FAKE_PACKER_MODE", "ignore-term")],
    );
    let total =
        json!({"package": "b", "base_os": "ubuntu", "extended_attributes": {"kiln_timeout": "1s"}});
    let id = id_of(&kiln.bake("us-east-1", &total));
    assert_eq!(kiln.wait(&id, Duration::from_secs(30))["state"], "CANCELED");
    let view = kiln.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view["cause"], "timeout", "{view}");
    let log = kiln.log(&id);
    assert!(log.contains("total time limit of 1s"), "{log}");
    assert!(
        log.contains("was killed"),
        "SIGTERM was ignored, so SIGKILL followed: {log}"
    );
    assert_nothing_left(&mark, &[kiln.pid()]);
    let metrics = kiln.get("/metrics").body;
    assert!(metrics.contains("cause=\"timeout\""), "{metrics}");
}

#[test]
fn extra_bakes_wait_in_a_fifo_queue_that_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let yaml = fake_packer_config("    maxConcurrent: 1");
    let mut kiln = start_marked(data.path(), &yaml, &mark, &[("FAKE_PACKER_MODE", "hang")]);
    let bake = |k: &Kiln, pkg: &str| {
        id_of(&k.bake("us-east-1", &json!({"package": pkg, "base_os": "ubuntu"})))
    };
    let a = bake(&kiln, "a");
    let b = bake(&kiln, "b");
    let c = bake(&kiln, "c");
    let view = |k: &Kiln, id: &str| k.get(&format!("/api/kiln/v1/bakes/{id}")).json();
    assert_eq!(view(&kiln, &b)["phase"], "queued");
    assert_eq!(view(&kiln, &b)["queue_position"], 1);
    assert_eq!(view(&kiln, &c)["queue_position"], 2);
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/status/{b}")).json()["state"],
        "RUNNING",
        "Orca sees RUNNING"
    );
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/cancel/{b}")).status,
        200
    );
    assert_eq!(view(&kiln, &b)["phase"], "canceled");
    assert_eq!(view(&kiln, &c)["queue_position"], 1);

    wait_for_log(&kiln, &a, "Waiting for instance");
    kiln.kill();
    let kiln = start_marked(data.path(), &yaml, &mark, &[("FAKE_PACKER_MODE", "hang")]);
    assert_eq!(
        view(&kiln, &a)["phase"],
        "running",
        "re-attached: {}",
        kiln.log(&a)
    );
    assert_eq!(
        view(&kiln, &c)["phase"],
        "queued",
        "still waiting after the restart"
    );
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/cancel/{a}")).status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while view(&kiln, &c)["phase"] != "running" {
        assert!(Instant::now() < deadline, "the queued bake never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/cancel/{c}")).status,
        200
    );
    assert_nothing_left(&mark, &[kiln.pid()]);
}

#[test]
fn a_log_stream_follows_a_bake_live_and_ends_with_it() {
    let moto = Moto::start();
    let seed = moto.seed();
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let kiln = start_marked(data.path(), &slow_config(&moto, &seed, 2, ""), &mark, &[]);
    let id = id_of(&kiln.bake(
        "us-east-1",
        &json!({"package": "nginx", "base_os": "ubuntu"}),
    ));
    let started = Instant::now();
    let r = kiln.get(&format!("/api/kiln/v1/bakes/{id}/logs/stream"));
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.contains("text/event-stream"))
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the stream stayed open while the bake ran"
    );
    assert!(r.body.contains("slow provisioner starts"), "{}", r.body);
    assert!(r.body.contains("slow provisioner done"));
    assert!(r.body.contains("event: end"), "{}", r.body);
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json()["state"],
        "COMPLETED"
    );
}

#[test]
fn delete_stops_a_running_bake_and_the_next_identical_request_bakes_again() {
    let data = tempfile::tempdir().unwrap();
    let mark = marker();
    let kiln = start_marked(
        data.path(),
        &fake_packer_config(""),
        &mark,
        &[("FAKE_PACKER_MODE", "hang")],
    );
    let body = json!({"package": "nginx", "base_os": "ubuntu", "spinnaker_execution_id": "exec-7:stage-1"});
    let id = id_of(&kiln.bake("us-east-1", &body));
    wait_for_log(&kiln, &id, "Waiting for instance");
    let r = http(
        &kiln.addr,
        "DELETE",
        "/api/v1/us-east-1/bake",
        &[],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        format!(
            "Deleted bake 'bake:aws:ubuntu:nginx:us-east-1:hvm:enhancedNWDisabled' with id '{id}'."
        )
    );
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json()["state"],
        "CANCELED"
    );
    let again = id_of(&kiln.bake("us-east-1", &body));
    assert_ne!(again, id, "the deleted bake no longer answers");

    // Deleting a pipeline execution's bakes stops and forgets them.
    let r = kiln.post(
        "/api/v1/bakes/delete-requests",
        &json!({"pipelineExecutionIds": ["exec-7"]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        kiln.get(&format!("/api/v1/us-east-1/status/{again}"))
            .status,
        400
    );
    assert_nothing_left(&mark, &[kiln.pid()]);
}
