//! The bake domain: what a pipeline asks for ([`BakeRequest`]), the life of a bake ([`Phase`]) and
//! what is kept about it ([`BakeRecord`]). Nothing here does I/O.

mod artifact;
pub mod input;
mod lenient;
mod record;
mod report;
mod request;
mod status;

pub use artifact::Artifact;
pub use record::{BakeDetails, BakeRecord, Recipe, SourceImage};
pub use report::{BakeReport, Diagnosis, PhaseTiming};
pub use request::{BakeRequest, RequestError, present};
pub use status::{BakeResult, BakeState, BakeStatus, Cause, Phase};

/// Now, in milliseconds since the epoch: how records keep time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
