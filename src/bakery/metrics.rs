//! The bakery's metrics, declared here and rendered in Prometheus' text format. Labels come from
//! bounded sets only: request flavors, causes ([`Cause`]), configured regions, matched routes.

use crate::bake::Cause;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Bake duration buckets, in seconds: from a fast failure to a two-hour bake.
const BUCKETS: [f64; 10] = [
    1.0, 5.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0, 7200.0,
];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<State>,
}

/// Bucket counts, count, and sum of seconds.
type Histogram = (Vec<u64>, u64, f64);

#[derive(Default)]
struct State {
    requested: BTreeMap<&'static str, u64>,
    /// (success, cause, region) → (bucket counts, count, sum seconds)
    completed: BTreeMap<(bool, &'static str, String), Histogram>,
    /// route → status → count; looked up by `&str`, so only a route's first request allocates.
    http: BTreeMap<String, BTreeMap<u16, u64>>,
}

impl Metrics {
    /// `flavor` is one of `plain`, `duplicate`, `rebake`.
    pub fn requested(&self, flavor: &'static str) {
        *super::lock(&self.inner)
            .requested
            .entry(flavor)
            .or_default() += 1;
    }

    pub fn completed(&self, cause: Cause, region: &str, duration_ms: i64) {
        let secs = duration_ms.max(0) as f64 / 1000.0;
        let mut s = super::lock(&self.inner);
        let key = (cause == Cause::Success, cause.as_str(), region.to_string());
        let entry = s
            .completed
            .entry(key)
            .or_insert_with(|| (vec![0; BUCKETS.len()], 0, 0.0));
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                entry.0[i] += 1;
            }
        }
        entry.1 += 1;
        entry.2 += secs;
    }

    /// `route` is the matched route template, never the raw path.
    pub fn http(&self, route: &str, status: u16) {
        let mut s = super::lock(&self.inner);
        match s.http.get_mut(route) {
            Some(by_status) => *by_status.entry(status).or_default() += 1,
            None => {
                s.http
                    .insert(route.to_string(), BTreeMap::from([(status, 1)]));
            }
        }
    }

    /// The text exposition; `active` and `queued` are read at scrape time.
    pub fn render(&self, active: usize, queued: usize) -> String {
        let s = super::lock(&self.inner);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP kiln_bakes_requested_total Bake requests, by flavor (plain, duplicate, rebake).\n# TYPE kiln_bakes_requested_total counter"
        );
        for (flavor, n) in &s.requested {
            let _ = writeln!(out, "kiln_bakes_requested_total{{flavor=\"{flavor}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP kiln_bake_duration_seconds Finished bakes, from request to result.\n# TYPE kiln_bake_duration_seconds histogram"
        );
        for ((success, cause, region), (buckets, count, sum)) in &s.completed {
            let labels = format!("success=\"{success}\",cause=\"{cause}\",region=\"{region}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "kiln_bake_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "kiln_bake_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "kiln_bake_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "kiln_bake_duration_seconds_count{{{labels}}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP kiln_bakes_active Bakes running or queued in this process.\n# TYPE kiln_bakes_active gauge\nkiln_bakes_active {active}"
        );
        let _ = writeln!(
            out,
            "# HELP kiln_bakes_queued Bakes waiting for a slot.\n# TYPE kiln_bakes_queued gauge\nkiln_bakes_queued {queued}"
        );
        let _ = writeln!(
            out,
            "# HELP kiln_http_requests_total HTTP requests, by matched route and status.\n# TYPE kiln_http_requests_total counter"
        );
        for (route, by_status) in &s.http {
            for (status, n) in by_status {
                let _ = writeln!(
                    out,
                    "kiln_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out
    }
}
