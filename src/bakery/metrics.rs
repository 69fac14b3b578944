//! The bakery's metrics, declared here and rendered by prometheus-client in the OpenMetrics text
//! format (which Prometheus scrapes). Labels come from bounded sets only: request flavors, causes
//! ([`Cause`]), configured regions, matched routes.

use crate::bake::Cause;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Bake duration buckets, in seconds: from a fast failure to a two-hour bake.
const BUCKETS: [f64; 10] = [
    1.0, 5.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0, 7200.0,
];

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Flavor {
    flavor: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    success: bool,
    cause: &'static str,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ManifestBake {
    renderer: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
    provider: String,
}

type Durations = Family<Outcome, Histogram, fn() -> Histogram>;
type PhaseDurations = Family<PhaseLabels, Histogram, fn() -> Histogram>;

/// Phase duration buckets, in seconds: from an instant step to an hour-long provisioning.
const PHASE_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

pub struct Metrics {
    registry: Registry,
    requested: Family<Flavor, Counter>,
    completed: Durations,
    http: Family<Route, Counter>,
    manifest_bakes: Family<ManifestBake, Counter>,
    active: Gauge,
    queued: Gauge,
    phases: PhaseDurations,
    reclaimed_bytes: Counter,
    deleted_records: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let requested = Family::<Flavor, Counter>::default();
        let completed: Durations = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        let http = Family::<Route, Counter>::default();
        let phases: PhaseDurations = Family::new_with_constructor(|| Histogram::new(PHASE_BUCKETS));
        let (reclaimed_bytes, deleted_records) = (Counter::default(), Counter::default());
        let (active, queued) = (Gauge::default(), Gauge::default());
        let mut registry = Registry::default();
        let r = &mut registry;
        // Counters are exposed with `_total` appended (`kiln_bakes_requested_total`).
        let flavors = "Bake requests, by flavor (plain, duplicate, rebake)";
        r.register("kiln_bakes_requested", flavors, requested.clone());
        let finished = "Finished bakes, from request to result";
        r.register("kiln_bake_duration_seconds", finished, completed.clone());
        let running = "Bakes running or queued in this process";
        r.register("kiln_bakes_active", running, active.clone());
        r.register(
            "kiln_bakes_queued",
            "Bakes waiting for a slot",
            queued.clone(),
        );
        let routes = "HTTP requests, by matched route and status";
        r.register("kiln_http_requests", routes, http.clone());
        let manifest_bakes = Family::<ManifestBake, Counter>::default();
        let manifests = "Manifest bakes (/api/v2/manifest/bake), by renderer and outcome";
        r.register("kiln_manifest_bakes", manifests, manifest_bakes.clone());
        let timed = "Bake phases (launch, provision, …) as the builder's output timed them";
        r.register("kiln_bake_phase_seconds", timed, phases.clone());
        let freed = "Bytes of local files (run dirs, qemu images and staging) removed by retention";
        r.register(
            "kiln_retention_reclaimed_bytes",
            freed,
            reclaimed_bytes.clone(),
        );
        let forgotten = "Bake records deleted by retention";
        r.register(
            "kiln_retention_deleted_bakes",
            forgotten,
            deleted_records.clone(),
        );
        Metrics {
            registry,
            requested,
            completed,
            http,
            manifest_bakes,
            active,
            queued,
            phases,
            reclaimed_bytes,
            deleted_records,
        }
    }
}

impl Metrics {
    /// `flavor` is one of `plain`, `duplicate`, `rebake`.
    pub fn requested(&self, flavor: &'static str) {
        self.requested.get_or_create(&Flavor { flavor }).inc();
    }

    pub fn completed(&self, cause: Cause, region: &str, duration_ms: i64) {
        let outcome = Outcome {
            success: cause == Cause::Success,
            cause: cause.as_str(),
            region: region.to_string(),
        };
        let secs = duration_ms.max(0) as f64 / 1000.0;
        self.completed.get_or_create(&outcome).observe(secs);
    }

    /// `phase` and `provider` come from fixed tables (`builders::packer::timeline`, the providers).
    pub fn phase_seconds(&self, phase: &str, provider: &str, seconds: f64) {
        let labels = PhaseLabels {
            phase: phase.to_string(),
            provider: provider.to_string(),
        };
        self.phases.get_or_create(&labels).observe(seconds.max(0.0));
    }

    /// What retention removed: bytes of local files and bake records.
    pub fn reclaimed(&self, bytes: u64, records: u64) {
        self.reclaimed_bytes.inc_by(bytes);
        self.deleted_records.inc_by(records);
    }

    /// `route` is the matched route template, never the raw path.
    pub fn http(&self, route: &str, status: u16) {
        let route = Route {
            route: route.to_string(),
            status,
        };
        self.http.get_or_create(&route).inc();
    }

    /// One manifest bake: `renderer` is a renderer's label (`helm3`) or `unknown`; `outcome`
    /// one of `success`, `invalid`, `fetch_failed`, `render_failed`.
    pub fn manifest_bake(&self, renderer: &'static str, outcome: &'static str) {
        let labels = ManifestBake { renderer, outcome };
        self.manifest_bakes.get_or_create(&labels).inc();
    }

    /// The text exposition; `active` and `queued` are read at scrape time.
    pub fn render(&self, active: usize, queued: usize) -> String {
        self.active.set(i64::try_from(active).unwrap_or(i64::MAX));
        self.queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_each_series_with_its_labels() {
        let m = Metrics::default();
        m.requested("plain");
        m.requested("plain");
        m.completed(Cause::Success, "us-east-1", 90_000);
        m.http("/api/v1/{region}/status/{id}", 400);
        m.manifest_bake("helm3", "success");
        m.phase_seconds("provision", "aws", 42.0);
        m.reclaimed(4096, 3);
        let text = m.render(2, 1);
        for line in [
            "# TYPE kiln_bakes_requested counter",
            "kiln_bakes_requested_total{flavor=\"plain\"} 2",
            "# TYPE kiln_bake_duration_seconds histogram",
            "kiln_bake_duration_seconds_bucket{le=\"60.0\",success=\"true\",cause=\"success\",region=\"us-east-1\"} 0",
            "kiln_bake_duration_seconds_bucket{le=\"120.0\",success=\"true\",cause=\"success\",region=\"us-east-1\"} 1",
            "kiln_bake_duration_seconds_sum{success=\"true\",cause=\"success\",region=\"us-east-1\"} 90.0",
            "kiln_bake_duration_seconds_count{success=\"true\",cause=\"success\",region=\"us-east-1\"} 1",
            "kiln_bakes_active 2",
            "kiln_bakes_queued 1",
            "kiln_http_requests_total{route=\"/api/v1/{region}/status/{id}\",status=\"400\"} 1",
            "kiln_manifest_bakes_total{renderer=\"helm3\",outcome=\"success\"} 1",
            "kiln_bake_phase_seconds_bucket{le=\"60.0\",phase=\"provision\",provider=\"aws\"} 1",
            "kiln_bake_phase_seconds_sum{phase=\"provision\",provider=\"aws\"} 42.0",
            "kiln_retention_reclaimed_bytes_total 4096",
            "kiln_retention_deleted_bakes_total 3",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
