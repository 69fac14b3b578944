//! Bake life cycle. kiln tracks five phases; the v1 wire shows Rosco's three states and two
//! results, so the mapping lives here and nowhere else.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a bake is in its life. Transitions go forward only: `Queued → Running → {Succeeded,
/// Failed, Canceled}`, or straight from `Queued` to `Canceled`. A finished bake never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Queued,
        Phase::Running,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Canceled => "canceled",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Canceled)
    }

    /// Whether a bake in this phase answers an identical request instead of a new bake.
    pub fn is_reusable(self) -> bool {
        matches!(self, Phase::Queued | Phase::Running | Phase::Succeeded)
    }

    /// Whether moving from `self` to `next` is allowed.
    pub fn can_become(self, next: Phase) -> bool {
        match self {
            Phase::Queued => next != Phase::Queued,
            Phase::Running => next.is_finished(),
            _ => false,
        }
    }

    /// Rosco's wire view: a queued bake reads RUNNING (what Orca expects), and a failed bake reads
    /// CANCELED/FAILURE as Rosco reports a non-zero Packer exit.
    pub fn wire(self) -> (BakeState, Option<BakeResult>) {
        match self {
            Phase::Queued | Phase::Running => (BakeState::Running, None),
            Phase::Succeeded => (BakeState::Completed, Some(BakeResult::Success)),
            Phase::Failed | Phase::Canceled => (BakeState::Canceled, Some(BakeResult::Failure)),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown phase name; it lists the valid ones.
#[derive(Debug, thiserror::Error)]
#[error("unknown bake phase '{0}' (expected one of: queued, running, succeeded, failed, canceled)")]
pub struct UnknownPhase(String);

impl FromStr for Phase {
    type Err = UnknownPhase;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPhase(s.to_string()))
    }
}

/// Why a bake ended the way it did; a bounded set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Success,
    JobFailed,
    Timeout,
    IdleTimeout,
    Canceled,
    Orphaned,
    LostOnRestart,
    /// kiln's supervisor of the Packer run died; kiln stopped Packer so it cleaned up.
    SupervisorDied,
    /// kiln itself failed (a panic in the bake's task); the log says more.
    InternalError,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Success => "success",
            Cause::JobFailed => "job_failed",
            Cause::Timeout => "timeout",
            Cause::IdleTimeout => "idle_timeout",
            Cause::Canceled => "canceled",
            Cause::Orphaned => "orphaned",
            Cause::LostOnRestart => "lost_on_restart",
            Cause::SupervisorDied => "supervisor_died",
            Cause::InternalError => "internal_error",
        }
    }
}

/// Rosco's `BakeStatus.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BakeState {
    Running,
    Completed,
    Canceled,
}

/// Rosco's `BakeStatus.result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BakeResult {
    Success,
    Failure,
}

/// Rosco's `BakeStatus` JSON: exactly `id, state, result, resource_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BakeStatus {
    pub id: String,
    pub state: BakeState,
    pub result: Option<BakeResult>,
    pub resource_id: String,
}

impl BakeStatus {
    pub fn of(id: &str, phase: Phase) -> Self {
        let (state, result) = phase.wire();
        BakeStatus {
            id: id.to_string(),
            state,
            result,
            resource_id: id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_round_trips_through_its_name_and_json() {
        for p in Phase::ALL {
            assert_eq!(p.as_str().parse::<Phase>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
            assert_eq!(serde_json::from_str::<Phase>(&json).unwrap(), p);
        }
    }

    #[test]
    fn an_unknown_phase_lists_the_valid_ones() {
        let err = "done".parse::<Phase>().unwrap_err().to_string();
        assert!(
            err.contains("queued, running, succeeded, failed, canceled"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_bake_reads_canceled_failure_on_the_wire_as_in_rosco() {
        assert_eq!(
            Phase::Failed.wire(),
            (BakeState::Canceled, Some(BakeResult::Failure))
        );
        assert_eq!(Phase::Queued.wire(), (BakeState::Running, None));
        let json = serde_json::to_value(BakeStatus::of("x", Phase::Succeeded)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id":"x","state":"COMPLETED","result":"SUCCESS","resource_id":"x"})
        );
    }

    #[test]
    fn finished_bakes_never_change() {
        for done in [Phase::Succeeded, Phase::Failed, Phase::Canceled] {
            for next in Phase::ALL {
                assert!(!done.can_become(next));
            }
        }
        assert!(Phase::Queued.can_become(Phase::Canceled));
        assert!(!Phase::Running.can_become(Phase::Queued));
    }
}
