//! Opening the store engine the config names (`kiln.store`, see [`crate::config::Engine`]).

use super::{BakeStore, SqliteStore, StoreError};
#[cfg(feature = "redis")]
use crate::config::{DEFAULT_REDIS_CONNECTION, DEFAULT_REDIS_TIMEOUT_MS};
use crate::config::{Engine, EngineError, Settings};
use std::sync::Arc;
#[cfg(feature = "redis")]
use std::time::Duration;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("failed to open the {engine} bake store")]
    Open {
        engine: &'static str,
        #[source]
        source: StoreError,
    },
}

/// Opens the engine `kiln.store` names: SQLite in the data dir, or the Redis at
/// `redis.connection` with `redis.timeout`.
pub fn open(settings: &Settings) -> Result<Arc<dyn BakeStore>, OpenError> {
    let engine = Engine::from_config(settings.kiln.store.as_deref())?;
    let opened: Result<Arc<dyn BakeStore>, StoreError> = match engine {
        Engine::Sqlite => {
            SqliteStore::open(&settings.data_dir().join("kiln.db")).map(|s| Arc::new(s) as _)
        }
        Engine::Redis => open_redis(settings),
    };
    opened.map_err(|source| OpenError::Open {
        engine: engine.name(),
        source,
    })
}

#[cfg(feature = "redis")]
fn open_redis(settings: &Settings) -> Result<Arc<dyn BakeStore>, StoreError> {
    let uri = settings
        .redis
        .connection
        .as_deref()
        .unwrap_or(DEFAULT_REDIS_CONNECTION);
    let timeout = settings.redis.timeout.unwrap_or(DEFAULT_REDIS_TIMEOUT_MS);
    let ca = settings
        .redis
        .ca_cert_file
        .as_deref()
        .map(|path| {
            std::fs::read(path).map_err(|e| {
                StoreError::Unavailable(format!(
                    "redis.caCertFile: cannot read {}: {e}",
                    path.display()
                ))
            })
        })
        .transpose()?;
    super::RedisStore::open_with(uri, Duration::from_millis(timeout.max(1)), ca)
        .map(|s| Arc::new(s) as _)
}

#[cfg(not(feature = "redis"))]
fn open_redis(_settings: &Settings) -> Result<Arc<dyn BakeStore>, StoreError> {
    Err(StoreError::Unavailable(
        "the redis engine is not compiled into this build (built with --no-default-features; build with the default features)".to_string(),
    ))
}
