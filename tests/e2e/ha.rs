//! Several kiln instances on one Redis (the default `redis` feature): any instance answers any bake,
//! one bake per identity across instances, a dead instance's bakes settled as orphaned by a
//! live one, a restarted instance re-attaching its own, and a Redis restart in mid-bake losing
//! nothing. Each test starts its own `redis-server` on a free loopback port (stopped by PID),
//! kiln processes with separate data dirs, and the fake Packers in tests/support; each checks
//! that nothing it started is left running.

mod support;

use crate::harness::*;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn a_bake_on_one_instance_is_followed_listed_and_canceled_on_the_other() {
    let Some(redis) = Redis::start() else { return };
    let yaml = config(&redis, "fake-packer", 4);
    let hang = [("FAKE_PACKER_MODE", "hang")];
    let (a, b) = (instance(&yaml, &hang), instance(&yaml, &hang));
    let id = id_of(&a.kiln.bake("us-east-1", &request("nginx")));
    wait_for_log(&b.kiln, &id, "Waiting for instance");
    let s = b.kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
    assert_eq!(s["state"], "RUNNING");
    assert_eq!(view(&b.kiln, &id)["phase"], "running");

    let all = b.kiln.get("/status/all").json();
    let a_id = instance_id(&a.kiln);
    assert_eq!(all["instance"], instance_id(&b.kiln));
    assert_eq!(all["instances"][&a_id]["status"], "RUNNING", "{all}");
    assert_eq!(
        all["instances"][&a_id]["bakes"][0]["id"],
        id.as_str(),
        "{all}"
    );
    assert_eq!(
        all["instances"][instance_id(&b.kiln)]["status"],
        "IDLE",
        "{all}"
    );

    // Canceled through B: A owns the Packer run and stops it.
    let r = b.kiln.get(&format!("/api/v1/us-east-1/cancel/{id}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_nothing_left(&a.mark, &[a.kiln.pid()]);
    let s = a.kiln.get(&format!("/api/v1/us-east-1/status/{id}")).json();
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("CANCELED"), Some("FAILURE"))
    );
    wait_for_log(&b.kiln, &id, "Cancelling build");
}

#[test]
fn twenty_racing_identical_requests_on_two_instances_make_one_bake() {
    let Some(redis) = Redis::start() else { return };
    let yaml = config(&redis, "fake-packer", 4);
    let hang = [("FAKE_PACKER_MODE", "hang")];
    let (a, b) = (instance(&yaml, &hang), instance(&yaml, &hang));
    let addrs = [a.kiln.addr.clone(), b.kiln.addr.clone()];
    let start = std::sync::Arc::new(std::sync::Barrier::new(20));
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let (addr, start) = (addrs[i % 2].clone(), start.clone());
            std::thread::spawn(move || {
                let body = request("nginx").to_string();
                start.wait();
                http(
                    &addr,
                    "POST",
                    "/api/v1/us-east-1/bake",
                    &[],
                    body.as_bytes(),
                )
            })
        })
        .collect();
    let mut ids: Vec<String> = racers
        .into_iter()
        .map(|r| {
            let r = r.join().unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            id_of(&r.json())
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one bake for one identity: {ids:?}");
    let r = a.kiln.get(&format!("/api/v1/us-east-1/cancel/{}", ids[0]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_nothing_left(&a.mark, &[a.kiln.pid()]);
    assert_nothing_left(&b.mark, &[b.kiln.pid()]);
}

#[test]
fn a_dead_instance_s_bakes_are_settled_orphaned_by_a_live_one_within_the_timeout() {
    let Some(redis) = Redis::start() else { return };
    let hang = [("FAKE_PACKER_MODE", "hang")];
    let mut a = instance(&config(&redis, "fake-packer", 1), &hang);
    let b = instance(&config(&redis, "fake-packer", 4), &hang);
    let running = id_of(&a.kiln.bake("us-east-1", &request("nginx")));
    let queued = id_of(&a.kiln.bake("us-east-1", &request("redis")));
    wait_for_log(&b.kiln, &running, "Waiting for instance");
    // Liveness, not staleness: silent for longer than the timeout, but its owner beats.
    std::thread::sleep(ORPHAN_TIMEOUT + Duration::from_millis(500));
    assert_eq!(view(&b.kiln, &running)["phase"], "running");
    assert_eq!(view(&b.kiln, &queued)["phase"], "queued");

    a.kiln.kill();
    kill_marked(&a.mark);
    let killed = Instant::now();
    let status = format!("/api/v1/us-east-1/status/{running}");
    let s = poll(&b.kiln, &status, Duration::from_secs(15), |s| {
        s["state"] != "RUNNING"
    });
    let took = killed.elapsed();
    assert!(
        took <= ORPHAN_TIMEOUT + Duration::from_millis(1500),
        "settled after {took:?}"
    );
    assert_eq!(
        (s["state"].as_str(), s["result"].as_str()),
        (Some("CANCELED"), Some("FAILURE"))
    );
    let a_id = instance_id(&a.kiln);
    for id in [&running, &queued] {
        let v = view(&b.kiln, id);
        assert_eq!(
            (v["phase"].as_str(), v["cause"].as_str()),
            (Some("failed"), Some("orphaned"))
        );
        assert!(
            b.kiln
                .log(id)
                .contains(&format!("kiln instance {a_id} stopped")),
            "{}",
            b.kiln.log(id)
        );
    }
    // An orphaned bake is not reused: the same request bakes again, on the live instance.
    let again = id_of(&b.kiln.bake("us-east-1", &request("nginx")));
    assert_ne!(again, running);
    let all = poll(&b.kiln, "/status/all", Duration::from_secs(10), |all| {
        all["instances"].get(&a_id).is_none()
    });
    assert_eq!(
        all["instances"][instance_id(&b.kiln)]["bakes"][0]["id"],
        again.as_str()
    );
    b.kiln.get(&format!("/api/v1/us-east-1/cancel/{again}"));
    assert_nothing_left(&b.mark, &[b.kiln.pid()]);
    assert_nothing_left(&a.mark, &[]);
}

#[test]
fn an_instance_restarted_with_its_data_dir_reattaches_its_bake_before_peers_settle_it() {
    let Some(redis) = Redis::start() else { return };
    let yaml = config(&redis, "redis-slow-packer.sh", 4);
    let slow = [("SLOW_PACKER_SECONDS", "5")];
    let mut a = instance(&yaml, &slow);
    let b = instance(&yaml, &slow);
    let a_id = instance_id(&a.kiln);
    let id = id_of(&a.kiln.bake("us-east-1", &request("nginx")));
    wait_for_log(&b.kiln, &id, "slow line 2 of 20");
    a.kiln.kill();
    // Packer goes on under its supervisor; the same data dir is the same instance.
    let data = a.kiln.data.clone();
    a.kiln = start(&data, &yaml, &a.mark, &slow);
    assert_eq!(instance_id(&a.kiln), a_id);
    let status = format!("/api/v1/us-east-1/status/{id}");
    let s = poll(&b.kiln, &status, Duration::from_secs(30), |s| {
        s["state"] != "RUNNING"
    });
    assert_eq!(s["state"], "COMPLETED", "{}", b.kiln.log(&id));
    assert_eq!(view(&b.kiln, &id)["cause"], "success");
    let log = b.kiln.log(&id);
    assert!(log.contains("re-attached"), "{log}");
    assert_eq!(log.matches("slow line 1 of 20").count(), 1, "{log}");
    assert!(log.contains("slow line 20 of 20"), "{log}");
    assert_nothing_left(&a.mark, &[a.kiln.pid()]);
}

#[test]
fn a_redis_restart_mid_bake_loses_neither_the_result_nor_the_log() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let yaml = config(&redis, "redis-slow-packer.sh", 4);
    let slow = [("SLOW_PACKER_SECONDS", "4")];
    let (a, b) = (instance(&yaml, &slow), instance(&yaml, &slow));
    let id = id_of(&a.kiln.bake("us-east-1", &request("nginx")));
    wait_for_log(&a.kiln, &id, "slow line 2 of 16");

    redis.down();
    let r = b.kiln.post("/api/v1/us-east-1/bake", &request("postgres"));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("bake store is unavailable"),
        "{}",
        r.body
    );
    assert_eq!(
        a.kiln.get(&format!("/api/v1/us-east-1/status/{id}")).status,
        503
    );
    // Packer finishes while Redis is away; its result waits in kiln.
    std::thread::sleep(Duration::from_secs(5));
    redis.up();

    let status = format!("/api/v1/us-east-1/status/{id}");
    let s = poll(&b.kiln, &status, Duration::from_secs(30), |s| {
        s["state"] != "RUNNING"
    });
    assert_eq!(s["state"], "COMPLETED", "{}", b.kiln.log(&id));
    let v = view(&b.kiln, &id);
    assert_eq!(v["cause"], "success", "not orphaned by the outage: {v}");
    let details = b.kiln.get(&format!("/api/v1/us-east-1/bake/{id}")).json();
    assert_eq!(details["ami"], "ami-0slow");
    let log = b.kiln.log(&id);
    for i in 1..=16 {
        let line = format!("slow line {i} of 16\n");
        assert_eq!(log.matches(&line).count(), 1, "{line:?} once in: {log}");
    }
    assert!(log.contains("redis-slow-packer done"), "{log}");
    let r = b.kiln.post("/api/v1/us-east-1/bake", &request("postgres"));
    assert_eq!(r.status, 200, "new bakes are taken again: {}", r.body);
    assert_nothing_left(&a.mark, &[a.kiln.pid()]);
}
