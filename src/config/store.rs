//! Which store engine the config names (`kiln.store`) and the Redis settings' own rules, checked
//! when the config is loaded; opening the engine is the store's (`crate::store::open`).
//!
//! Invariants:
//! - [`Engine`] lists every engine kiln has, compiled in or not, so a config error can tell an
//!   unknown name from an engine this build lacks (and which cargo feature brings it).
//! - Nothing here holds a secret: URIs are described without their password.

/// Rosco's default `redis.connection`.
pub const DEFAULT_REDIS_CONNECTION: &str = "redis://localhost:6379";
/// Rosco's default `redis.timeout`, in ms.
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 2000;

/// A store engine, by its `kiln.store` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// One node's embedded SQLite file in the data dir (the default).
    Sqlite,
    /// A Redis several kiln instances share (the default `redis` feature).
    Redis,
}

/// Why `kiln.store` names no engine this build can run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("'{0}' is not a store engine kiln knows (expected one of: sqlite, redis)")]
    Unknown(String),
    #[error(
        "the '{name}' store engine is not compiled into this build (rebuild kiln with \
         `cargo build --release --features {feature}`, or use kiln.store: sqlite)"
    )]
    NotCompiled {
        name: &'static str,
        feature: &'static str,
    },
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Sqlite, Engine::Redis];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Redis => "redis",
        }
    }

    /// The cargo feature that compiles the engine in (`None`: always there).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Engine::Sqlite => None,
            Engine::Redis => Some("redis"),
        }
    }

    pub fn is_compiled(self) -> bool {
        match self {
            Engine::Sqlite => true,
            Engine::Redis => cfg!(feature = "redis"),
        }
    }

    /// The engine `kiln.store` names (default sqlite), if this build has it.
    pub fn from_config(name: Option<&str>) -> Result<Engine, EngineError> {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(Engine::Sqlite);
        };
        let engine = Engine::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| EngineError::Unknown(name.to_string()))?;
        match engine.feature() {
            Some(feature) if !engine.is_compiled() => Err(EngineError::NotCompiled {
                name: engine.name(),
                feature,
            }),
            _ => Ok(engine),
        }
    }
}

/// Checks a `redis.connection` URI without connecting: `redis://[[user]:password@]host[:port]
/// [/db]`, TLS (`rediss://…`, same form), or a Unix socket (`redis+unix:///path?db=N`,
/// `unix:///path`). A build without the Redis engine says TLS is not compiled in.
pub fn check_redis_connection(uri: &str) -> Result<(), String> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(format!(
            "'{}' is not a Redis URI (expected redis://[:password@]host:port[/db])",
            describe_redis(uri)
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "redis" | "valkey" => {}
        "redis+unix" | "unix" | "valkey+unix" => return Ok(()),
        "rediss" | "valkeys" if cfg!(feature = "redis") => {}
        "rediss" | "valkeys" => {
            return Err(
                "TLS to Redis (rediss://) is not compiled into this build (it was built with \
                 --no-default-features); build kiln with the default features"
                    .to_string(),
            );
        }
        other => {
            return Err(format!(
                "'{other}://' is not a Redis URI scheme (expected redis://[:password@]host:port[/db])"
            ));
        }
    }
    let after_host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let path = after_host.split_once('/').map_or("", |(_, p)| p);
    let db = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(format!(
            "'{db}' in '{}' is not a database index (expected a number, e.g. redis://host:6379/2)",
            describe_redis(uri)
        ));
    }
    Ok(())
}

/// A Redis URI fit for messages: any password is replaced by `******`.
pub fn describe_redis(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    match rest.rsplit_once('@') {
        Some((creds, host)) => {
            let user = creds.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:******@{host}")
        }
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_engine_is_sqlite_and_names_are_case_insensitive() {
        assert_eq!(Engine::from_config(None).unwrap(), Engine::Sqlite);
        assert_eq!(Engine::from_config(Some(" ")).unwrap(), Engine::Sqlite);
        assert_eq!(Engine::from_config(Some("SQLite")).unwrap(), Engine::Sqlite);
    }

    #[test]
    fn an_unknown_engine_is_told_apart_from_one_not_compiled_in() {
        let e = Engine::from_config(Some("mongo")).unwrap_err().to_string();
        assert!(
            e.contains("not a store engine") && e.contains("sqlite, redis"),
            "{e}"
        );
        let redis = Engine::from_config(Some("redis"));
        if cfg!(feature = "redis") {
            assert_eq!(redis.unwrap(), Engine::Redis);
        } else {
            let e = redis.unwrap_err().to_string();
            assert!(
                e.contains("not compiled") && e.contains("default features"),
                "{e}"
            );
        }
    }

    #[test]
    fn redis_uris_are_checked_and_tls_is_accepted_when_compiled_in() {
        for ok in [
            "redis://localhost:6379",
            "redis://:s3cret@r.internal:6380/2",
            "redis://user:pw@10.0.0.1",
            "redis+unix:///run/redis.sock?db=1",
        ] {
            assert_eq!(check_redis_connection(ok), Ok(()), "{ok}");
        }
        let tls = check_redis_connection("rediss://:pw@r:6379/1");
        if cfg!(feature = "redis") {
            assert_eq!(tls, Ok(()));
        } else {
            let e = tls.unwrap_err();
            assert!(e.contains("TLS") && e.contains("not compiled"), "{e}");
        }
        let db = check_redis_connection("redis://:pw@r:6379/cache").unwrap_err();
        assert!(db.contains("database index") && !db.contains("pw@"), "{db}");
        assert!(check_redis_connection("http://r").is_err());
        assert!(check_redis_connection("localhost:6379").is_err());
    }

    #[test]
    fn a_described_uri_hides_its_password() {
        assert_eq!(
            describe_redis("redis://:s3cret@r:6379/1"),
            "redis://:******@r:6379/1"
        );
        assert_eq!(describe_redis("redis://r:6379"), "redis://r:6379");
    }
}
