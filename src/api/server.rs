//! Serving the API over TCP, with the defences `axum::serve` does not offer: a header-read
//! timeout, a cap on open connections, and a graceful stop with a deadline.
//!
//! - **Header-read timeout** (`kiln.http.headerReadTimeout`): hyper's HTTP/1 timer. It runs
//!   whenever hyper waits for a request's head: on a new connection and on a kept-alive one after
//!   each response (hyper restarts it then), so it is also the idle keep-alive timeout. A client
//!   that sends nothing, or dribbles its headers, is dropped when it runs out.
//! - **Connection cap** (`kiln.http.maxConnections`, lowered to what the open-files limit leaves
//!   room for): when every slot is taken, a new connection evicts the oldest connection that
//!   has not sent a single request yet (a half-open one), so a flood of half-open connections
//!   cannot keep `/health` or a bake request out; if every open connection has made a request,
//!   the new one is closed at once rather than left in the kernel's backlog. Stopping `accept`
//!   instead would let the same flood hold every slot until the timeout, over and over.
//! - **Graceful stop**: on stop, the listener closes, connections that never sent a request
//!   close at once, the others finish the request they are serving and close; live log streams
//!   end on the same signal (see `kiln::stream_logs`). Whatever is still open after
//!   [`SHUTDOWN_GRACE`] is dropped.
//!
//! The accept loop and the eviction are hand-written: hyper-util's `auto` server and axum's
//! `serve` have neither a connection cap nor eviction.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long open connections (and live log streams) get to finish after a stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Open files kiln keeps for itself besides connections: the store, run dirs and logs,
/// supervisor pipes, the runtime.
const RESERVED_FILES: u64 = 128;

/// The server's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The configured limits, with `max_connections` lowered to what `open_files` (the
    /// process's open-files limit) leaves room for.
    pub fn new(settings: &crate::config::Settings, open_files: u64) -> Limits {
        let room = open_files.saturating_sub(RESERVED_FILES).max(16);
        let wanted = settings.max_connections();
        let max_connections = wanted.min(usize::try_from(room).unwrap_or(usize::MAX));
        if max_connections < wanted && settings.kiln.http.max_connections.is_some() {
            tracing::warn!(
                wanted,
                allowed = max_connections,
                open_files,
                "kiln.http.maxConnections is more than the open-files limit leaves room for; \
                 raise the limit (ulimit -n, LimitNOFILE=) or lower the setting"
            );
        }
        Limits {
            header_read_timeout: settings.header_read_timeout(),
            max_connections,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then stops within the grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let registry = Arc::new(Mutex::new(Registry::new(limits.max_connections)));
    let tracker = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // Each trouble is logged once when it starts, not for every connection.
    let (mut refused_logged, mut accept_failing) = (false, false);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                accept_failing = false;
                stream
            }
            Err(e) => {
                // Out of file descriptors (EMFILE/ENFILE) or a connection reset before accept:
                // wait a moment rather than spin; connections closing free descriptors.
                if !accept_failing {
                    tracing::warn!(error = %e, "cannot accept a connection; retrying");
                    accept_failing = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = Registry::admit(&registry) else {
            if !refused_logged {
                tracing::warn!(
                    max = limits.max_connections,
                    "every connection slot holds a client that made a request; closing new \
                     connections until one ends (kiln.http.maxConnections)"
                );
                refused_logged = true;
            }
            drop(stream);
            continue;
        };
        refused_logged = false;
        let router = router.clone();
        let served = slot.served.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            served.store(true, Ordering::Relaxed);
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, req).await }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        let grace = limits.shutdown_grace;
        tracker.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                _ = slot.evict.cancelled() => {
                    tracing::debug!("closed a connection that sent no request, to admit a new one");
                }
                _ = stop.cancelled() => {
                    // A connection that never sent a whole request head has nothing to finish.
                    if slot.served.load(Ordering::Relaxed) {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(grace, conn).await;
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    tracker.close();
    // Each connection ends within the grace period; this bound is a second belt.
    let _ = tokio::time::timeout(
        limits.shutdown_grace + Duration::from_secs(1),
        tracker.wait(),
    )
    .await;
    Ok(())
}

/// The open connections, oldest first.
struct Registry {
    limit: usize,
    next: u64,
    open: BTreeMap<u64, Entry>,
}

struct Entry {
    served: Arc<AtomicBool>,
    evict: CancellationToken,
}

/// One admitted connection; it leaves the registry when dropped.
struct Slot {
    id: u64,
    served: Arc<AtomicBool>,
    evict: CancellationToken,
    registry: Arc<Mutex<Registry>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        crate::bakery::lock(&self.registry).open.remove(&self.id);
    }
}

impl Registry {
    fn new(limit: usize) -> Registry {
        Registry {
            limit: limit.max(1),
            next: 0,
            open: BTreeMap::new(),
        }
    }

    /// Admits a connection, evicting the oldest one that never made a request when full;
    /// `None` when every open connection has made one.
    fn admit(registry: &Arc<Mutex<Registry>>) -> Option<Slot> {
        let mut r = crate::bakery::lock(registry);
        if r.open.len() >= r.limit {
            let victim = r
                .open
                .iter()
                .find(|(_, e)| !e.served.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(e) = r.open.remove(&victim) {
                e.evict.cancel();
            }
        }
        let id = r.next;
        r.next += 1;
        let served = Arc::new(AtomicBool::new(false));
        let evict = CancellationToken::new();
        r.open.insert(
            id,
            Entry {
                served: served.clone(),
                evict: evict.clone(),
            },
        );
        Some(Slot {
            id,
            served,
            evict,
            registry: registry.clone(),
        })
    }
}

/// Raises the open-files soft limit to the hard limit and returns the limit now in force, so
/// a host's low default (often 1024) does not cap connections and bakes.
pub fn raise_open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(limit: usize) -> Arc<Mutex<Registry>> {
        Arc::new(Mutex::new(Registry::new(limit)))
    }

    #[test]
    fn a_full_registry_evicts_the_oldest_connection_that_made_no_request() {
        let r = registry(3);
        let a = Registry::admit(&r).unwrap();
        let b = Registry::admit(&r).unwrap();
        let c = Registry::admit(&r).unwrap();
        a.served.store(true, Ordering::Relaxed);
        let d = Registry::admit(&r).expect("a half-open connection gives way");
        assert!(
            !a.evict.is_cancelled(),
            "a connection that made a request stays"
        );
        assert!(b.evict.is_cancelled(), "the oldest half-open one goes");
        assert!(!c.evict.is_cancelled() && !d.evict.is_cancelled());
        assert_eq!(r.lock().unwrap().open.len(), 3);
    }

    #[test]
    fn a_registry_full_of_served_connections_refuses_and_frees_slots_on_drop() {
        let r = registry(2);
        let a = Registry::admit(&r).unwrap();
        let b = Registry::admit(&r).unwrap();
        a.served.store(true, Ordering::Relaxed);
        b.served.store(true, Ordering::Relaxed);
        assert!(Registry::admit(&r).is_none());
        drop(a);
        assert!(Registry::admit(&r).is_some());
    }

    #[test]
    fn the_connection_cap_leaves_room_for_kiln_own_files() {
        let settings = crate::config::Settings::default();
        assert_eq!(Limits::new(&settings, 1 << 20).max_connections, 1024);
        assert_eq!(Limits::new(&settings, 256).max_connections, 128);
        assert_eq!(Limits::new(&settings, 10).max_connections, 16);
        assert_eq!(
            Limits::new(&settings, 256).header_read_timeout,
            Duration::from_secs(10)
        );
    }

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let got = raise_open_files_limit();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!((got, lim.rlim_cur), (lim.rlim_max, lim.rlim_max));
    }
}
