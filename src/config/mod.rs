//! kiln's configuration, in Rosco's `rosco.yml` shape: the keys Halyard and the Spinnaker
//! Operator write (`rosco.configDir`, `aws.bakeryDefaults.*`, …) plus kiln's own under `kiln:`.
//! It is read and checked once ([`load`]); the rest of kiln gets a typed [`Settings`].

mod clouds;
mod duration;
mod load;
mod model;
mod store;

pub use clouds::*;
pub use duration::{DurationText, parse_duration};
pub use load::{Loaded, load, load_str, relaxed_key};
pub use model::*;
pub use store::{
    DEFAULT_REDIS_CONNECTION, DEFAULT_REDIS_TIMEOUT_MS, Engine, EngineError,
    check_redis_connection, describe_redis,
};
