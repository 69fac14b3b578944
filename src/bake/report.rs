//! What kiln learned from a bake's output, kept with the bake: how long each phase took (the
//! timeline) and, for a failed bake, what the failure most likely means (the diagnosis).
//! The names are part of kiln's API (`GET /api/kiln/v1/bakes/{id}`), which the web page renders.

use serde::{Deserialize, Serialize};

/// One phase of a bake as the builder's output showed it. `ended_ms` and `seconds` are `None`
/// while the phase runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub phase: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub seconds: Option<f64>,
}

/// Why a bake most likely failed and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// A stable code, e.g. `unauthorized_operation`.
    pub code: String,
    pub summary: String,
    pub hint: String,
}

impl Diagnosis {
    /// The line that ends a failed bake's log.
    pub fn log_line(&self) -> String {
        format!(
            "kiln: diagnosis [{}]: {} Hint: {}",
            self.code, self.summary, self.hint
        )
    }
}

/// A bake's timeline and diagnosis, stored with its record when it settles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BakeReport {
    #[serde(default)]
    pub timeline: Vec<PhaseTiming>,
    #[serde(default)]
    pub diagnosis: Option<Diagnosis>,
}

impl BakeReport {
    pub fn is_empty(&self) -> bool {
        self.timeline.is_empty() && self.diagnosis.is_none()
    }
}
