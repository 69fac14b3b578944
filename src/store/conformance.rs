//! The behaviours every [`BakeStore`] engine must show, written once against the trait.
//!
//! Each behaviour is a `pub(crate) fn` taking a fresh, empty store. [`store_conformance_tests!`]
//! expands to one `#[test]` per behaviour, so an engine gets the whole suite from one line:
//! `store_conformance_tests!(Arc::new(MyStore::new()))`, or `(Arc<MyStore>, guard)` when something
//! (a temp dir, a server) must outlive the store.
//!
//! Invariants: a behaviour uses only the trait and fixed timestamps (never the clock), and never
//! relies on ordering an engine is not asked to keep (e.g. among bakes created in the same ms).

use super::{BakeStore, Created, Transition};
use crate::bake::{Artifact, BakeDetails, BakeRecord, Cause, Phase, Recipe};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

mod ha;
pub(crate) use ha::{
    claim_orphans_settles_only_bakes_whose_owner_has_no_heartbeat,
    heartbeats_list_live_instances_with_their_running_bakes,
    racing_claimers_settle_each_orphan_exactly_once,
};

/// What a conformance test runs against: a store, plus whatever must live as long as it.
pub(crate) trait Fixture {
    fn store(&self) -> Arc<dyn BakeStore>;
}

impl<S: BakeStore + 'static> Fixture for Arc<S> {
    fn store(&self) -> Arc<dyn BakeStore> {
        self.clone()
    }
}

impl<S: BakeStore + 'static, G> Fixture for (Arc<S>, G) {
    fn store(&self) -> Arc<dyn BakeStore> {
        self.0.clone()
    }
}

/// One `#[test]` per behaviour below, each on a fresh fixture from `$fixture` (an expression
/// giving a [`Fixture`]). Invoke it once per module.
macro_rules! store_conformance_tests {
    ($fixture:expr) => {
        $crate::store::conformance::store_conformance_tests!(@each $fixture;
            create_then_get_round_trips_every_field,
            unknown_ids_read_as_nothing,
            an_identical_identity_while_queued_running_or_succeeded_returns_the_existing_bake,
            a_failed_or_canceled_bake_is_not_reused,
            a_rebake_creates_a_new_bake_and_rebinds_the_identity,
            sixteen_threads_racing_on_one_identity_create_exactly_one_bake,
            a_finished_bake_never_changes_phase,
            moving_to_running_sets_started_ms,
            a_transition_keeps_its_cause_error_and_details,
            logs_append_and_read_back_in_order,
            read_log_from_returns_the_log_from_a_byte_offset,
            an_image_maps_back_to_its_bake,
            unbind_only_removes_its_own_binding,
            delete_by_executions_removes_the_bakes_and_returns_the_count,
            unfinished_lists_queued_and_running_bakes_oldest_first,
            ping_answers,
            heartbeats_list_live_instances_with_their_running_bakes,
            claim_orphans_settles_only_bakes_whose_owner_has_no_heartbeat,
            racing_claimers_settle_each_orphan_exactly_once,
        );
    };
    (@each $fixture:expr; $($behaviour:ident),+ $(,)?) => {
        $(
            #[test]
            fn $behaviour() {
                // Named, so a guard inside the fixture (a temp dir) outlives the whole test.
                let fixture = $fixture;
                $crate::store::conformance::$behaviour(
                    $crate::store::conformance::Fixture::store(&fixture),
                );
            }
        )+
    };
}
pub(crate) use store_conformance_tests;

/// A queued bake as the bakery would create it, under execution `exec-1`.
pub(crate) fn sample_record(id: &str, identity: &str) -> BakeRecord {
    BakeRecord {
        id: id.to_string(),
        key: format!("bake:aws:hvm:trusty:nginx:{identity}"),
        identity: identity.to_string(),
        region: "us-east-1".to_string(),
        provider: "aws".to_string(),
        phase: Phase::Queued,
        cause: None,
        request: json!({
            "package": "nginx", "base_os": "trusty", "cloud_provider_type": "aws",
            "spinnaker_execution_id": "exec-1:stage-1",
        }),
        recipe: Recipe {
            name: "nginx-all-20240101120000-trusty".to_string(),
            version: Some("nginx-1.0.0".to_string()),
            command: ["packer", "build", "-machine-readable", "aws-ebs.json"]
                .map(String::from)
                .to_vec(),
            variables: BTreeMap::from([("aws_region".to_string(), "us-east-1".to_string())]),
            template: "aws-ebs.json".to_string(),
            source_image: None,
            builder: None,
        },
        inputs: json!({"packages": ["nginx"], "base_os": "trusty"}),
        created_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_000_000,
        started_ms: None,
        details: None,
        error: None,
        execution_id: Some("exec-1".to_string()),
        instance_id: "kiln-test@localhost".to_string(),
    }
}

fn sample_details(id: &str) -> BakeDetails {
    BakeDetails {
        id: id.to_string(),
        ami: Some("ami-0123".to_string()),
        image_name: Some("nginx-all-20240101120000-trusty".to_string()),
        regions: Some(vec!["us-east-1".to_string()]),
        artifact: Some(Artifact {
            kind: Some("aws/image".to_string()),
            reference: Some("ami-0123".to_string()),
            location: Some("us-east-1".to_string()),
            ..Artifact::default()
        }),
        artifacts: None,
        base_ami: Some("ami-base".to_string()),
    }
}

pub(crate) fn created(store: &dyn BakeStore, record: &BakeRecord) {
    assert_eq!(
        store.create(record, true).unwrap(),
        Created::New,
        "{}",
        record.id
    );
}

pub(crate) fn create_then_get_round_trips_every_field(store: Arc<dyn BakeStore>) {
    let mut rec = sample_record("b-1", "ident-1");
    rec.phase = Phase::Succeeded;
    rec.cause = Some(Cause::Success);
    rec.started_ms = Some(1_700_000_000_500);
    rec.updated_ms = 1_700_000_009_000;
    rec.details = Some(sample_details("b-1"));
    rec.error = Some("ssh: handshake failed — ünïcode kept".to_string());
    rec.inputs = json!({"nested": {"list": [1, 2.5, null, true]}, "text": "café"});
    created(&*store, &rec);
    assert_eq!(store.get("b-1").unwrap(), Some(rec.clone()));
    assert_eq!(store.get_by_identity("ident-1").unwrap(), Some(rec));
}

pub(crate) fn unknown_ids_read_as_nothing(store: Arc<dyn BakeStore>) {
    assert_eq!(store.get("nope").unwrap(), None);
    assert_eq!(store.get_by_identity("nope").unwrap(), None);
    let moved = store.transition("nope", Phase::Running, Transition::default(), 1);
    assert_eq!(moved.unwrap(), None);
    assert_eq!(store.read_log("nope").unwrap(), "");
    assert_eq!(store.bake_for_image("us-east-1", "ami-nope").unwrap(), None);
    store.unbind("nope").unwrap();
}

pub(crate) fn an_identical_identity_while_queued_running_or_succeeded_returns_the_existing_bake(
    store: Arc<dyn BakeStore>,
) {
    for phase in [Phase::Queued, Phase::Running, Phase::Succeeded] {
        let identity = format!("ident-{phase}");
        let mut first = sample_record(&format!("first-{phase}"), &identity);
        first.phase = phase;
        created(&*store, &first);
        let second = sample_record(&format!("second-{phase}"), &identity);
        let answer = store.create(&second, true).unwrap();
        assert_eq!(answer, Created::Existing(Box::new(first)), "{phase}");
        assert_eq!(
            store.get(&second.id).unwrap(),
            None,
            "{phase}: nothing stored"
        );
    }
}

pub(crate) fn a_failed_or_canceled_bake_is_not_reused(store: Arc<dyn BakeStore>) {
    for phase in [Phase::Failed, Phase::Canceled] {
        let identity = format!("ident-{phase}");
        let mut first = sample_record(&format!("first-{phase}"), &identity);
        first.phase = phase;
        created(&*store, &first);
        let second = sample_record(&format!("second-{phase}"), &identity);
        created(&*store, &second);
        assert_eq!(store.get_by_identity(&identity).unwrap(), Some(second));
        assert_eq!(store.get(&first.id).unwrap(), Some(first), "{phase}: kept");
    }
}

pub(crate) fn a_rebake_creates_a_new_bake_and_rebinds_the_identity(store: Arc<dyn BakeStore>) {
    let mut first = sample_record("first", "ident");
    first.phase = Phase::Succeeded;
    created(&*store, &first);
    let rebake = sample_record("rebake", "ident");
    assert_eq!(store.create(&rebake, false).unwrap(), Created::New);
    assert_eq!(
        store.get_by_identity("ident").unwrap(),
        Some(rebake.clone())
    );
    assert_eq!(
        store.get("first").unwrap(),
        Some(first),
        "the old bake stays readable"
    );
    let third = sample_record("third", "ident");
    assert_eq!(
        store.create(&third, true).unwrap(),
        Created::Existing(Box::new(rebake))
    );
}

pub(crate) fn sixteen_threads_racing_on_one_identity_create_exactly_one_bake(
    store: Arc<dyn BakeStore>,
) {
    const RACERS: usize = 16;
    let start = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                store.create(&sample_record(&format!("racer-{i}"), "contested"), true)
            })
        })
        .collect();
    let answers: Vec<Created> = racers
        .into_iter()
        .map(|r| r.join().unwrap().unwrap())
        .collect();
    let winner = store.get_by_identity("contested").unwrap().unwrap();
    let new = answers.iter().filter(|a| **a == Created::New).count();
    assert_eq!(new, 1, "{answers:?}");
    for answer in &answers {
        if let Created::Existing(existing) = answer {
            assert_eq!(existing.id, winner.id);
        }
    }
    let stored = (0..RACERS)
        .filter(|i| store.get(&format!("racer-{i}")).unwrap().is_some())
        .count();
    assert_eq!(stored, 1);
}

pub(crate) fn a_finished_bake_never_changes_phase(store: Arc<dyn BakeStore>) {
    created(&*store, &sample_record("b", "ident"));
    assert!(
        store
            .transition("b", Phase::Queued, Transition::default(), 5)
            .unwrap()
            .is_none()
    );
    store
        .transition("b", Phase::Running, Transition::default(), 10)
        .unwrap()
        .unwrap();
    let cancel = Transition {
        cause: Some(Cause::Canceled),
        ..Transition::default()
    };
    let canceled = store
        .transition("b", Phase::Canceled, cancel, 20)
        .unwrap()
        .unwrap();
    // The runner's late report that Packer finished must not resurrect the bake.
    let late = Transition {
        cause: Some(Cause::Success),
        details: Some(sample_details("b")),
        ..Transition::default()
    };
    assert_eq!(
        store.transition("b", Phase::Succeeded, late, 30).unwrap(),
        None
    );
    for next in Phase::ALL {
        assert_eq!(
            store
                .transition("b", next, Transition::default(), 40)
                .unwrap(),
            None
        );
    }
    assert_eq!(store.get("b").unwrap(), Some(canceled));
}

pub(crate) fn moving_to_running_sets_started_ms(store: Arc<dyn BakeStore>) {
    created(&*store, &sample_record("b", "ident"));
    let running = store.transition("b", Phase::Running, Transition::default(), 1_000);
    let running = running.unwrap().unwrap();
    assert_eq!(
        (running.started_ms, running.updated_ms),
        (Some(1_000), 1_000)
    );
    assert_eq!(running.phase, Phase::Running);
    let done = store.transition("b", Phase::Succeeded, Transition::default(), 2_000);
    let done = done.unwrap().unwrap();
    assert_eq!((done.started_ms, done.updated_ms), (Some(1_000), 2_000));
    assert_eq!(store.get("b").unwrap(), Some(done));
}

pub(crate) fn a_transition_keeps_its_cause_error_and_details(store: Arc<dyn BakeStore>) {
    created(&*store, &sample_record("ok", "ident-ok"));
    created(&*store, &sample_record("bad", "ident-bad"));
    let success = Transition {
        cause: Some(Cause::Success),
        details: Some(sample_details("ok")),
        error: None,
    };
    let ok = store
        .transition("ok", Phase::Succeeded, success, 7)
        .unwrap()
        .unwrap();
    assert_eq!(ok.cause, Some(Cause::Success));
    assert_eq!(ok.details, Some(sample_details("ok")));
    let failure = Transition {
        cause: Some(Cause::Timeout),
        error: Some("packer ran past its 60m limit".to_string()),
        details: None,
    };
    let bad = store
        .transition("bad", Phase::Failed, failure, 8)
        .unwrap()
        .unwrap();
    assert_eq!(bad.error.as_deref(), Some("packer ran past its 60m limit"));
    assert_eq!(bad.cause, Some(Cause::Timeout));
    assert_eq!(store.get("ok").unwrap(), Some(ok));
    assert_eq!(store.get("bad").unwrap(), Some(bad));
}

const LOG_CHUNKS: [&str; 4] = [
    "==> amazon-ebs: Prevalidating AMI Name\n",
    "==> amazon-ebs: ünïcödé ☃ line\n",
    "x",
    "==> Builds finished. 🎉\n",
];

pub(crate) fn logs_append_and_read_back_in_order(store: Arc<dyn BakeStore>) {
    created(&*store, &sample_record("b", "ident"));
    created(&*store, &sample_record("other", "ident-other"));
    assert_eq!(store.read_log("b").unwrap(), "");
    for chunk in LOG_CHUNKS {
        store.append_log("b", chunk).unwrap();
        store.append_log("other", "interleaved\n").unwrap();
    }
    assert_eq!(store.read_log("b").unwrap(), LOG_CHUNKS.concat());
    assert_eq!(store.read_log("other").unwrap(), "interleaved\n".repeat(4));
}

pub(crate) fn read_log_from_returns_the_log_from_a_byte_offset(store: Arc<dyn BakeStore>) {
    created(&*store, &sample_record("b", "ident"));
    for chunk in LOG_CHUNKS {
        store.append_log("b", chunk).unwrap();
    }
    let full = LOG_CHUNKS.concat();
    // Every offset: chunk starts, chunk middles, inside multi-byte characters, past the end.
    for offset in 0..=full.len() + 3 {
        let from = (offset..=full.len())
            .find(|&i| full.is_char_boundary(i))
            .unwrap_or(full.len());
        let got = store.read_log_from("b", offset).unwrap();
        assert_eq!(got, full[from..], "offset {offset}");
    }
}

pub(crate) fn an_image_maps_back_to_its_bake(store: Arc<dyn BakeStore>) {
    created(&*store, &sample_record("b", "ident"));
    store.map_image("us-east-1", "ami-0123", "b").unwrap();
    assert_eq!(
        store
            .bake_for_image("us-east-1", "ami-0123")
            .unwrap()
            .as_deref(),
        Some("b")
    );
    assert_eq!(store.bake_for_image("eu-west-1", "ami-0123").unwrap(), None);
    assert_eq!(store.bake_for_image("us-east-1", "ami-9999").unwrap(), None);
}

pub(crate) fn unbind_only_removes_its_own_binding(store: Arc<dyn BakeStore>) {
    created(&*store, &sample_record("old", "ident"));
    assert_eq!(
        store.create(&sample_record("new", "ident"), false).unwrap(),
        Created::New
    );
    store.unbind("old").unwrap();
    let bound = store.get_by_identity("ident").unwrap().map(|r| r.id);
    assert_eq!(
        bound.as_deref(),
        Some("new"),
        "a stale unbind leaves the rebake bound"
    );
    store.unbind("new").unwrap();
    assert_eq!(store.get_by_identity("ident").unwrap(), None);
    assert!(
        store.get("new").unwrap().is_some(),
        "the record stays readable by id"
    );
    created(&*store, &sample_record("next", "ident"));
}

pub(crate) fn delete_by_executions_removes_the_bakes_and_returns_the_count(
    store: Arc<dyn BakeStore>,
) {
    let in_exec = |id: &str, exec: Option<&str>| BakeRecord {
        execution_id: exec.map(String::from),
        ..sample_record(id, &format!("ident-{id}"))
    };
    for rec in [
        in_exec("a1", Some("e1")),
        in_exec("a2", Some("e1")),
        in_exec("b1", Some("e2")),
        in_exec("c1", None),
    ] {
        created(&*store, &rec);
    }
    store.append_log("a1", "log of a1\n").unwrap();
    store.map_image("us-east-1", "ami-a1", "a1").unwrap();
    assert_eq!(store.delete_by_executions(&[]).unwrap(), 0);
    // A whole spinnaker_execution_id counts by its part before the first ':'.
    let ids = ["e1:stage-7".to_string(), "unknown".to_string()];
    assert_eq!(store.delete_by_executions(&ids).unwrap(), 2);
    for gone in ["a1", "a2"] {
        assert_eq!(store.get(gone).unwrap(), None, "{gone}");
        assert_eq!(
            store.get_by_identity(&format!("ident-{gone}")).unwrap(),
            None
        );
    }
    assert_eq!(store.read_log("a1").unwrap(), "");
    assert_eq!(store.bake_for_image("us-east-1", "ami-a1").unwrap(), None);
    assert!(store.get("b1").unwrap().is_some());
    assert!(store.get("c1").unwrap().is_some());
    assert_eq!(store.delete_by_executions(&["e1".to_string()]).unwrap(), 0);
}

pub(crate) fn unfinished_lists_queued_and_running_bakes_oldest_first(store: Arc<dyn BakeStore>) {
    let at = |id: &str, phase: Phase, created_ms: i64| BakeRecord {
        phase,
        created_ms,
        ..sample_record(id, &format!("ident-{id}"))
    };
    for rec in [
        at("newest", Phase::Queued, 400),
        at("done", Phase::Succeeded, 50),
        at("oldest", Phase::Queued, 100),
        at("failed", Phase::Failed, 150),
        at("middle", Phase::Queued, 200),
        at("canceled", Phase::Canceled, 250),
    ] {
        created(&*store, &rec);
    }
    store
        .transition("middle", Phase::Running, Transition::default(), 300)
        .unwrap()
        .unwrap();
    let ids: Vec<String> = store
        .unfinished()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["oldest", "middle", "newest"]);
}

pub(crate) fn ping_answers(store: Arc<dyn BakeStore>) {
    store.ping().unwrap();
}
