//! The behaviours every [`BakeStore`] engine must show, written once against the trait.
//!
//! Each behaviour is a `pub(crate) fn` taking a fresh, empty store. [`store_conformance_tests!`]
//! expands to one `#[test]` per behaviour, so an engine gets the whole suite from one line:
//! `store_conformance_tests!(Arc::new(MyStore::new()))`, or `(Arc<MyStore>, guard)` when something
//! (a temp dir, a server) must outlive the store.
//!
//! Invariants: a behaviour uses only the trait and fixed timestamps (never the clock), and never
//! relies on ordering an engine is not asked to keep (e.g. among bakes created in the same ms).

use super::{BakeFilter, BakeStore, Created, Transition};
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
            delete_finished_removes_old_settled_bakes_only,
            a_report_is_stored_with_the_transition,
            unfinished_lists_queued_and_running_bakes_oldest_first,
            list_pages_every_bake_newest_first_with_ties_by_id,
            list_filters_by_phase_package_region_and_provider,
            a_bake_created_while_paging_is_neither_listed_twice_nor_skipped,
            list_caps_the_page_size_and_leaves_deleted_bakes_out,
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
        report: Default::default(),
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
        report: None,
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
        report: None,
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

pub(crate) fn delete_finished_removes_old_settled_bakes_only(store: Arc<dyn BakeStore>) {
    let at = |id: &str, phase: Phase, ms: i64| BakeRecord {
        phase,
        created_ms: ms,
        updated_ms: ms + 5,
        execution_id: Some("ex".to_string()),
        provider: if id.starts_with('q') { "qemu" } else { "aws" }.to_string(),
        ..sample_record(id, &format!("ident-{id}"))
    };
    for rec in [
        at("old", Phase::Succeeded, 100),
        at("q-old", Phase::Failed, 200),
        at("running-old", Phase::Running, 50),
        at("queued-old", Phase::Queued, 60),
        at("mid", Phase::Canceled, 300),
        at("new", Phase::Succeeded, 400),
    ] {
        created(&*store, &rec);
    }
    store.append_log("old", "log of old\n").unwrap();
    store.map_image("us-east-1", "ami-old", "old").unwrap();
    assert_eq!(
        store.delete_finished(None, None).unwrap(),
        vec![],
        "no rule, nothing"
    );
    // By age: settled before 250 (old at 105, q-old at 205); unfinished ones never.
    let mut gone = store.delete_finished(Some(250), None).unwrap();
    gone.sort();
    assert_eq!(
        gone,
        vec![
            ("old".to_string(), "aws".to_string()),
            ("q-old".to_string(), "qemu".to_string())
        ]
    );
    assert_eq!(store.get("old").unwrap(), None);
    assert_eq!(store.get_by_identity("ident-old").unwrap(), None);
    assert_eq!(store.read_log("old").unwrap(), "");
    assert_eq!(store.bake_for_image("us-east-1", "ami-old").unwrap(), None);
    for kept in ["running-old", "queued-old", "mid", "new"] {
        assert!(store.get(kept).unwrap().is_some(), "{kept}");
    }
    // By count: keep the newest finished one.
    assert_eq!(
        store.delete_finished(None, Some(1)).unwrap(),
        vec![("mid".to_string(), "aws".to_string())]
    );
    assert!(store.get("new").unwrap().is_some());
    assert_eq!(store.unfinished().unwrap().len(), 2);
    assert_eq!(
        store
            .delete_finished(Some(i64::MAX), Some(0))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.unfinished().unwrap().len(),
        2,
        "running and queued stay"
    );
}

pub(crate) fn a_report_is_stored_with_the_transition(store: Arc<dyn BakeStore>) {
    use crate::bake::{BakeReport, Diagnosis, PhaseTiming};
    created(&*store, &sample_record("r", "ident-r"));
    let report = BakeReport {
        timeline: vec![PhaseTiming {
            phase: "launch".into(),
            started_ms: 1000,
            ended_ms: Some(3500),
            seconds: Some(2.5),
        }],
        diagnosis: Some(Diagnosis {
            code: "ami_not_found".into(),
            summary: "s".into(),
            hint: "h".into(),
        }),
    };
    let failed = Transition {
        cause: Some(Cause::JobFailed),
        report: Some(report.clone()),
        ..Transition::default()
    };
    let done = store
        .transition("r", Phase::Failed, failed, 9)
        .unwrap()
        .unwrap();
    assert_eq!(done.report, report);
    assert_eq!(store.get("r").unwrap().unwrap().report, report);
    assert!(store.get_by_identity("ident-r").unwrap().unwrap().report == report);
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

/// Every page of a listing, followed to the end; the ids of each page.
fn all_pages(store: &dyn BakeStore, filter: &BakeFilter, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(filter, after.as_ref(), limit).unwrap();
        pages.push(page.bakes.into_iter().map(|r| r.id).collect());
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 100, "a listing that never ends");
    }
}

fn aged(id: &str, created_ms: i64) -> BakeRecord {
    BakeRecord {
        created_ms,
        ..sample_record(id, &format!("ident-{id}"))
    }
}

pub(crate) fn list_pages_every_bake_newest_first_with_ties_by_id(store: Arc<dyn BakeStore>) {
    assert!(
        all_pages(&*store, &BakeFilter::default(), 2)
            .concat()
            .is_empty()
    );
    for (id, ms) in [
        ("a", 100),
        ("c", 300),
        ("b2", 200),
        ("b1", 200),
        ("b10", 200),
        ("d", 400),
    ] {
        created(&*store, &aged(id, ms));
    }
    let pages = all_pages(&*store, &BakeFilter::default(), 2);
    assert_eq!(
        pages,
        [vec!["d", "c"], vec!["b2", "b10"], vec!["b1", "a"]],
        "newest first; within one ms by id, bytewise, descending"
    );
    let one = all_pages(&*store, &BakeFilter::default(), 100);
    assert_eq!(one, [["d", "c", "b2", "b10", "b1", "a"]]);
}

pub(crate) fn list_filters_by_phase_package_region_and_provider(store: Arc<dyn BakeStore>) {
    let with = |id: &str, ms: i64, package: &str, region: &str, provider: &str| BakeRecord {
        region: region.to_string(),
        provider: provider.to_string(),
        request: json!({"package": package, "base_os": "trusty"}),
        ..aged(id, ms)
    };
    for r in [
        with("nginx-east", 100, "nginx", "us-east-1", "aws"),
        with(
            "both-west",
            200,
            "curl  nginx-extras nginx",
            "us-west-2",
            "aws",
        ),
        with("extras", 300, "nginx-extras", "us-east-1", "aws"),
        with("local", 400, "nginx", "local", "qemu"),
    ] {
        created(&*store, &r);
    }
    store
        .transition("local", Phase::Running, Transition::default(), 500)
        .unwrap()
        .unwrap();
    let ids = |filter: BakeFilter| all_pages(&*store, &filter, 1).concat();
    let package = |p: &str| BakeFilter {
        package: Some(p.to_string()),
        ..BakeFilter::default()
    };
    assert_eq!(ids(package("nginx")), ["local", "both-west", "nginx-east"]);
    assert_eq!(ids(package("nginx-extras")), ["extras", "both-west"]);
    assert!(ids(package("ngin")).is_empty(), "whole package names only");
    let region = BakeFilter {
        region: Some("us-east-1".to_string()),
        ..BakeFilter::default()
    };
    assert_eq!(ids(region), ["extras", "nginx-east"]);
    let provider = BakeFilter {
        provider: Some("qemu".to_string()),
        ..BakeFilter::default()
    };
    assert_eq!(ids(provider), ["local"]);
    let queued_aws_nginx = BakeFilter {
        phase: Some(Phase::Queued),
        provider: Some("aws".to_string()),
        ..package("nginx")
    };
    assert_eq!(ids(queued_aws_nginx), ["both-west", "nginx-east"]);
    let running = BakeFilter {
        phase: Some(Phase::Running),
        ..BakeFilter::default()
    };
    assert_eq!(ids(running), ["local"]);
}

pub(crate) fn a_bake_created_while_paging_is_neither_listed_twice_nor_skipped(
    store: Arc<dyn BakeStore>,
) {
    for i in 0..6 {
        created(&*store, &aged(&format!("old-{i}"), 100 + i));
    }
    let all = BakeFilter::default();
    let first = store.list(&all, None, 2).unwrap();
    // Newer bakes arrive between pages, one of them in the same ms as the newest listed.
    created(&*store, &aged("new-a", 1000));
    created(&*store, &aged("old-5x", 105));
    let mut seen: Vec<String> = first.bakes.into_iter().map(|r| r.id).collect();
    let mut after = first.next;
    while let Some(at) = after {
        let page = store.list(&all, Some(&at), 2).unwrap();
        seen.extend(page.bakes.into_iter().map(|r| r.id));
        after = page.next;
    }
    assert_eq!(seen, ["old-5", "old-4", "old-3", "old-2", "old-1", "old-0"]);
}

pub(crate) fn list_caps_the_page_size_and_leaves_deleted_bakes_out(store: Arc<dyn BakeStore>) {
    let cap = crate::store::listing::MAX_LIMIT;
    for i in 0..cap + 5 {
        let mut r = aged(&format!("b{i:04}"), i64::try_from(i).unwrap());
        r.execution_id = Some(format!("exec-{}", i % 2));
        created(&*store, &r);
    }
    let page = store.list(&BakeFilter::default(), None, 10_000).unwrap();
    assert_eq!(page.bakes.len(), cap);
    assert!(page.next.is_some());
    let page = store.list(&BakeFilter::default(), None, 0).unwrap();
    assert_eq!(page.bakes.len(), 1, "a limit of 0 reads as 1");
    store.delete_by_executions(&["exec-1".to_string()]).unwrap();
    let left = all_pages(&*store, &BakeFilter::default(), 50).concat();
    assert_eq!(left.len(), cap.div_ceil(2) + 3);
    assert!(
        left.iter()
            .all(|id| id[1..].parse::<usize>().unwrap() % 2 == 0),
        "{left:?}"
    );
}

pub(crate) fn ping_answers(store: Arc<dyn BakeStore>) {
    store.ping().unwrap();
}
