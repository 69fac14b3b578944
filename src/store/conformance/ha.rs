//! The conformance behaviours of instances sharing a store: heartbeats and the orphan claim.
//! An engine that is one node's own (`is_shared() == false`) keeps no heartbeats and settles
//! no orphans; a shared one settles exactly the bakes whose owner has no live heartbeat, once.

use super::{created, sample_record};
use crate::bake::{BakeRecord, Cause, Phase};
use crate::store::{BakeStore, Instance};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// A long TTL: the heartbeats below must not expire while a test runs.
const LIVE: Duration = Duration::from_secs(60);

fn owned(id: &str, owner: &str, phase: Phase) -> BakeRecord {
    BakeRecord {
        instance_id: owner.to_string(),
        phase,
        ..sample_record(id, &format!("ident-{id}"))
    }
}

fn unfinished_ids(store: &dyn BakeStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .unfinished()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

pub(crate) fn heartbeats_list_live_instances_with_their_running_bakes(store: Arc<dyn BakeStore>) {
    store
        .heartbeat("b@host", LIVE, &["bake-2".into()], 2_000)
        .unwrap();
    store.heartbeat("a@host", LIVE, &[], 1_000).unwrap();
    // A later beat replaces the earlier one.
    store
        .heartbeat("a@host", LIVE, &["bake-1".into()], 1_500)
        .unwrap();
    let live = store.instances().unwrap();
    if !store.is_shared() {
        assert_eq!(live, [], "one node's store keeps no heartbeats");
        return;
    }
    let instance = |id: &str, beat_ms, running: &str| Instance {
        id: id.to_string(),
        beat_ms,
        running: vec![running.to_string()],
    };
    assert_eq!(
        live,
        [
            instance("a@host", 1_500, "bake-1"),
            instance("b@host", 2_000, "bake-2")
        ]
    );
}

pub(crate) fn claim_orphans_settles_only_bakes_whose_owner_has_no_heartbeat(
    store: Arc<dyn BakeStore>,
) {
    for rec in [
        owned("live-run", "live@h", Phase::Running),
        owned("live-q", "live@h", Phase::Queued),
        owned("dead-run", "dead@h", Phase::Running),
        owned("dead-q", "dead@h", Phase::Queued),
        owned("dead-done", "dead@h", Phase::Succeeded),
    ] {
        created(&*store, &rec);
    }
    store
        .heartbeat("live@h", LIVE, &["live-run".into()], 1_000)
        .unwrap();
    let mut settled: Vec<String> = store
        .claim_orphans("claimer@h", 5_000)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    settled.sort();
    if !store.is_shared() {
        assert_eq!(
            settled,
            Vec::<String>::new(),
            "one node settles its own bakes"
        );
        assert_eq!(
            unfinished_ids(&*store),
            ["dead-q", "dead-run", "live-q", "live-run"]
        );
        return;
    }
    assert_eq!(settled, ["dead-q", "dead-run"]);
    for id in ["dead-q", "dead-run"] {
        let r = store.get(id).unwrap().unwrap();
        assert_eq!(
            (r.phase, r.cause, r.updated_ms),
            (Phase::Failed, Some(Cause::Orphaned), 5_000),
            "{id}"
        );
        let error = r.error.unwrap_or_default();
        assert!(
            error.contains("dead@h") && error.contains("claimer@h"),
            "{error}"
        );
        assert!(
            store.read_log(id).unwrap().contains(&error),
            "{id}: the log says why"
        );
    }
    assert_eq!(
        store.get("dead-done").unwrap().unwrap().phase,
        Phase::Succeeded
    );
    assert_eq!(unfinished_ids(&*store), ["live-q", "live-run"]);
    assert_eq!(store.claim_orphans("claimer@h", 6_000).unwrap(), []);
    // An orphaned bake is not reused: the next identical request bakes again.
    created(&*store, &sample_record("again", "ident-dead-run"));
}

pub(crate) fn racing_claimers_settle_each_orphan_exactly_once(store: Arc<dyn BakeStore>) {
    const ORPHANS: usize = 12;
    const CLAIMERS: usize = 8;
    for i in 0..ORPHANS {
        let phase = if i % 2 == 0 {
            Phase::Queued
        } else {
            Phase::Running
        };
        created(&*store, &owned(&format!("orphan-{i}"), "dead@h", phase));
    }
    let start = Arc::new(Barrier::new(CLAIMERS));
    let claimers: Vec<_> = (0..CLAIMERS)
        .map(|i| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                store.claim_orphans(&format!("claimer-{i}@h"), 9_000)
            })
        })
        .collect();
    let mut settled: Vec<String> = claimers
        .into_iter()
        .flat_map(|c| c.join().unwrap().unwrap())
        .map(|r| r.id)
        .collect();
    settled.sort();
    if !store.is_shared() {
        assert_eq!(settled, Vec::<String>::new());
        return;
    }
    let mut expected: Vec<String> = (0..ORPHANS).map(|i| format!("orphan-{i}")).collect();
    expected.sort();
    assert_eq!(settled, expected, "each orphan settled exactly once");
    assert_eq!(unfinished_ids(&*store), Vec::<String>::new());
}
