//! Connections to Redis: a small pool of synchronous connections that heals by itself.
//!
//! Invariants:
//! - A connection that failed at the connection level (I/O, dropped, timed out) is never used
//!   again; the next call opens a new one. A server's error reply leaves the connection good.
//! - A pooled connection that turns out dead (Redis restarted while it sat idle) is replaced by
//!   a fresh one once, in the same call: a dead socket never ran the command, so nothing runs
//!   twice. A call on a fresh connection is never retried (its outcome may be unknown).
//! - While Redis is unreachable, connecting is retried at most once per backoff step (50 ms,
//!   doubling to 1 s); calls in between fail at once, so callers never queue behind timeouts.
//! - Messages name Redis by a URI without its password.

use crate::store::{StoreError, StoreResult};
use redis::{Client, Connection, RedisError, RedisResult};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Idle connections kept for reuse; more may be open at once, and are closed after use.
const MAX_IDLE: usize = 16;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub(super) struct Pool {
    client: Client,
    /// The URI without its password, for messages.
    target: String,
    /// `redis.timeout`: for connecting, and for each reply.
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    outage: Mutex<Outage>,
}

/// When connecting may be tried again after a failure.
#[derive(Default)]
struct Outage {
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Pool {
    pub(super) fn new(
        uri: &str,
        target: String,
        timeout: Duration,
        ca_pem: Option<Vec<u8>>,
    ) -> StoreResult<Pool> {
        // rustls needs one process-wide crypto provider; a second install (another store, a
        // test) is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match ca_pem {
            None => Client::open(uri),
            Some(root_cert) => Client::build_with_tls(
                uri,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            ),
        }
        .map_err(|e| {
            StoreError::Unavailable(format!("redis.connection '{target}' is not usable: {e}"))
        })?;
        Ok(Pool {
            client,
            target,
            timeout,
            idle: Mutex::new(Vec::new()),
            outage: Mutex::new(Outage::default()),
        })
    }

    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// Runs `f` on a connection; see the module invariants for what happens on failure.
    pub(super) fn run<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> StoreResult<T> {
        let pooled = lock(&self.idle).pop();
        if let Some(mut conn) = pooled {
            match f(&mut conn) {
                Ok(v) => {
                    self.put_back(conn);
                    return Ok(v);
                }
                // Dead while idle: it never ran the command. Try once on a fresh connection.
                Err(e) if is_dead(&e) => {
                    tracing::debug!(error = %e, "a pooled Redis connection was dead; reconnecting");
                }
                Err(e) => {
                    if !is_broken(&e) {
                        self.put_back(conn);
                    }
                    return Err(self.failed(what, &e));
                }
            }
        }
        let mut conn = self.connect(what)?;
        match f(&mut conn) {
            Ok(v) => {
                self.put_back(conn);
                Ok(v)
            }
            Err(e) => {
                if !is_broken(&e) {
                    self.put_back(conn);
                }
                Err(self.failed(what, &e))
            }
        }
    }

    fn connect(&self, what: &str) -> StoreResult<Connection> {
        if let Some(at) = lock(&self.outage).retry_at
            && Instant::now() < at
        {
            return Err(StoreError::Unavailable(format!(
                "{what}: Redis at {} is unreachable (reconnecting)",
                self.target
            )));
        }
        let opened = self
            .client
            .get_connection_with_timeout(self.timeout)
            .and_then(|c| {
                c.set_read_timeout(Some(self.timeout))?;
                c.set_write_timeout(Some(self.timeout))?;
                Ok(c)
            });
        let mut outage = lock(&self.outage);
        match opened {
            Ok(conn) => {
                if outage.retry_at.take().is_some() {
                    tracing::info!(redis = %self.target, "Redis is reachable again");
                }
                outage.backoff = Duration::ZERO;
                Ok(conn)
            }
            Err(e) => {
                if outage.retry_at.is_none() {
                    tracing::warn!(redis = %self.target, error = %e, "Redis is unreachable");
                }
                outage.backoff = (outage.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                outage.retry_at = Some(Instant::now() + outage.backoff);
                Err(StoreError::Unavailable(format!(
                    "{what}: cannot reach Redis at {}: {e}",
                    self.target
                )))
            }
        }
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    fn failed(&self, what: &str, e: &RedisError) -> StoreError {
        StoreError::Unavailable(format!("{what} (Redis at {}): {e}", self.target))
    }
}

/// The connection itself failed (not the command): it must not be used again.
fn is_broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}

/// The peer was gone before the command could reach it (not a timeout, whose outcome is
/// unknown).
fn is_dead(e: &RedisError) -> bool {
    (e.is_connection_dropped() || e.is_connection_refusal()) && !e.is_timeout()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing is left half-done under these locks: a poisoned one is still good.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
