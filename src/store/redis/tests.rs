//! The Redis engine against a real, throwaway `redis-server` per test (a free loopback port, no
//! persistence, stopped by PID on drop): the whole conformance suite, then what only Redis has
//! (DB index, passwords, heartbeat expiry, surviving a Redis restart).
//!
//! Without `redis-server` these tests say so loudly and pass; `scripts/test` installs it, so CI
//! always runs them.

use super::*;
use crate::store::conformance::{sample_record, store_conformance_tests};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

const TIMEOUT: Duration = Duration::from_secs(2);

/// A `redis-server` child on a free loopback port.
pub(crate) struct TestRedis {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

fn redis_server() -> Option<&'static str> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

impl TestRedis {
    /// Starts one, or says loudly why it cannot and answers `None`.
    pub(crate) fn start(extra: &[&str]) -> Option<TestRedis> {
        if redis_server().is_none() {
            eprintln!(
                "\n*** SKIPPED: redis-server is not installed, so the Redis store is NOT tested \
                 (apt-get install redis-server; scripts/test does) ***\n"
            );
            return None;
        }
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = tempfile::tempdir().unwrap();
            let child = spawn(port, dir.path(), &extra);
            let mut server = TestRedis {
                port,
                child,
                dir,
                extra: extra.clone(),
            };
            if server.wait_ready() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on a free port after 5 tries");
    }

    /// Like [`TestRedis::start`], with the picked port serving TLS and the plain port off.
    pub(crate) fn start_tls(tls_args: &[&str]) -> Option<TestRedis> {
        redis_server()?;
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = tempfile::tempdir().unwrap();
            let mut extra: Vec<String> = tls_args.iter().map(|s| s.to_string()).collect();
            extra.extend([
                "--tls-port".into(),
                port.to_string(),
                "--port".into(),
                "0".into(),
            ]);
            let child = spawn(port, dir.path(), &extra);
            let mut server = TestRedis {
                port,
                child,
                dir,
                extra,
            };
            if server.wait_ready() {
                return Some(server);
            }
        }
        panic!("a TLS redis-server did not start on a free port after 5 tries");
    }

    pub(crate) fn uri(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// SIGKILL by PID, then reap.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it and starts it again on the same port.
    fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, self.dir.path(), &self.extra);
        assert!(self.wait_ready(), "redis-server did not restart");
    }
}

fn spawn(port: u16, dir: &std::path::Path, extra: &[String]) -> Child {
    Command::new(redis_server().unwrap_or("redis-server"))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args([
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server")
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A store on a fresh server (db 5, so the DB index is exercised everywhere).
fn fixture() -> Option<(Arc<RedisStore>, TestRedis)> {
    let server = TestRedis::start(&[])?;
    let store = RedisStore::open(&server.uri(5), TIMEOUT).unwrap();
    Some((Arc::new(store), server))
}

mod conformance {
    use super::*;
    store_conformance_tests!(match fixture() {
        Some(f) => f,
        None => return,
    });
}

#[test]
fn the_db_index_in_the_uri_is_honoured() {
    let Some(server) = TestRedis::start(&[]) else {
        return;
    };
    let one = RedisStore::open(&server.uri(1), TIMEOUT).unwrap();
    let two = RedisStore::open(&server.uri(2), TIMEOUT).unwrap();
    one.create(&sample_record("b", "ident"), true).unwrap();
    assert!(one.get("b").unwrap().is_some());
    assert_eq!(two.get("b").unwrap(), None);
    let client = redis::Client::open(server.uri(1)).unwrap();
    let mut raw = client.get_connection().unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg("kiln:bake:b")
        .query(&mut raw)
        .unwrap();
    assert!(exists, "the bake is in db 1");
}

#[test]
fn a_password_is_used_and_never_shown() {
    let Some(server) = TestRedis::start(&["--requirepass", "s3cret-pw"]) else {
        return;
    };
    let uri = |pw: &str| format!("redis://:{pw}@127.0.0.1:{}/0", server.port);
    let store = RedisStore::open(&uri("s3cret-pw"), TIMEOUT).unwrap();
    store.ping().unwrap();
    assert!(!store.target().contains("s3cret"), "{}", store.target());
    let Err(err) = RedisStore::open(&uri("wrong-pw"), TIMEOUT) else {
        panic!("a wrong password was accepted");
    };
    let msg = err.to_string();
    assert!(!msg.contains("wrong-pw") && msg.contains("******"), "{msg}");
}

#[test]
fn an_unreachable_redis_is_refused_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let Err(down) = RedisStore::open(&format!("redis://127.0.0.1:{port}"), TIMEOUT) else {
        panic!("nothing listens there");
    };
    assert!(matches!(down, StoreError::Unavailable(_)), "{down:?}");
    assert!(down.to_string().contains("cannot reach Redis"), "{down}");
    assert!(
        started.elapsed() < TIMEOUT,
        "a refused connection fails at once"
    );
}

#[test]
fn an_expired_heartbeat_makes_its_instance_dead_and_its_bakes_orphans() {
    let Some((store, _server)) = fixture() else {
        return;
    };
    let mut rec = sample_record("b", "ident");
    rec.instance_id = "short@h".into();
    store.create(&rec, true).unwrap();
    store
        .heartbeat("short@h", Duration::from_millis(200), &["b".into()], 1)
        .unwrap();
    assert_eq!(store.instances().unwrap().len(), 1);
    assert_eq!(store.claim_orphans("peer@h", 2).unwrap(), []);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(store.instances().unwrap(), []);
    let settled = store.claim_orphans("peer@h", 3).unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].cause, Some(crate::bake::Cause::Orphaned));
}

#[test]
fn the_store_fails_fast_while_redis_is_down_and_heals_when_it_is_back() {
    let Some((store, mut server)) = fixture() else {
        return;
    };
    store.create(&sample_record("a", "ident-a"), true).unwrap();
    server.stop();
    let started = Instant::now();
    for _ in 0..20 {
        let err = store.get("a").unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let err = store.append_log("a", "line\n").unwrap_err();
        assert!(
            err.to_string().contains("Redis at redis://127.0.0.1"),
            "{err}"
        );
    }
    assert!(started.elapsed() < TIMEOUT, "no call waits for a timeout");
    server.restart();
    // No persistence in this test: the server is empty again, but the store works at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.ping().is_err() {
        assert!(Instant::now() < deadline, "the store never reconnected");
        std::thread::sleep(Duration::from_millis(50));
    }
    store.create(&sample_record("b", "ident-b"), true).unwrap();
    store.append_log("b", "after the restart\n").unwrap();
    assert_eq!(store.read_log("b").unwrap(), "after the restart\n");
}

#[test]
fn the_probe_sees_a_redis_that_answers_ping_but_refuses_writes() {
    let Some((store, server)) = fixture() else {
        return;
    };
    store.probe().unwrap();
    let client = redis::Client::open(server.uri(5)).unwrap();
    let mut raw = client.get_connection().unwrap();
    let refuse = |n: u32, raw: &mut redis::Connection| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("min-replicas-to-write")
            .arg(n)
            .query::<()>(raw)
            .unwrap();
    };
    refuse(1, &mut raw);
    std::thread::sleep(crate::store::health::PROBE_TTL);
    store.ping().unwrap();
    let e = store.probe().unwrap_err().to_string();
    assert!(e.contains("NOREPLICAS") || e.contains("replicas"), "{e}");
    refuse(0, &mut raw);
    std::thread::sleep(crate::store::health::PROBE_TTL);
    store.probe().unwrap();
}

/// A CA and a server certificate for 127.0.0.1, made with the `openssl` command line.
fn make_certs(dir: &std::path::Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kiln test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ])
}

#[test]
fn tls_redis_is_spoken_with_a_trusted_ca_and_refused_without_it() {
    if redis_server().is_none() {
        return eprintln!("\n*** SKIPPED: redis-server is not installed: TLS NOT tested ***\n");
    }
    let certs = tempfile::tempdir().unwrap();
    if !make_certs(certs.path()) {
        return eprintln!("\n*** SKIPPED: the openssl command failed: TLS NOT tested ***\n");
    }
    let path = |name: &str| certs.path().join(name).display().to_string();
    // Plain port 0 (off), TLS on the port the harness picked; clients need no certificate.
    let Some(server) = TestRedis::start_tls(&[
        "--tls-cert-file",
        &path("server.pem"),
        "--tls-key-file",
        &path("server.key"),
        "--tls-ca-cert-file",
        &path("ca.pem"),
        "--tls-auth-clients",
        "no",
    ]) else {
        return;
    };
    let uri = format!("rediss://127.0.0.1:{}/4", server.port);
    let ca = std::fs::read(certs.path().join("ca.pem")).unwrap();
    let store = RedisStore::open_with(&uri, TIMEOUT, Some(ca)).expect("TLS with our CA");
    let record = sample_record("tls-1", "ident-tls");
    store.create(&record, true).unwrap();
    assert_eq!(store.get("tls-1").unwrap().unwrap().id, "tls-1");
    // The system's roots do not know the test CA: the handshake fails, saying so.
    let Err(untrusted) = RedisStore::open(&uri, TIMEOUT) else {
        panic!("a server certificate from an unknown CA was trusted");
    };
    assert!(
        matches!(untrusted, StoreError::Unavailable(_)),
        "{untrusted:?}"
    );
    // Plain Redis to a TLS port fails too, instead of hanging.
    let started = Instant::now();
    assert!(RedisStore::open(&format!("redis://127.0.0.1:{}", server.port), TIMEOUT).is_err());
    assert!(started.elapsed() < TIMEOUT * 3);
}

#[test]
fn bakes_stored_before_the_age_index_existed_are_listed_after_the_next_open() {
    let Some(server) = TestRedis::start(&[]) else {
        return;
    };
    let store = RedisStore::open(&server.uri(0), TIMEOUT).unwrap();
    for (id, ms) in [("older", 100), ("newer", 200)] {
        let r = BakeRecord {
            created_ms: ms,
            ..sample_record(id, &format!("ident-{id}"))
        };
        store.create(&r, true).unwrap();
    }
    // As an earlier kiln left it: no index and no marker.
    let client = redis::Client::open(server.uri(0)).unwrap();
    let mut raw = client.get_connection().unwrap();
    redis::cmd("DEL")
        .arg("kiln:bakes")
        .arg("kiln:bakes-indexed")
        .query::<()>(&mut raw)
        .unwrap();
    let all = crate::store::BakeFilter::default();
    assert!(store.list(&all, None, 10).unwrap().bakes.is_empty());
    let reopened = RedisStore::open(&server.uri(0), TIMEOUT).unwrap();
    let ids: Vec<String> = reopened
        .list(&all, None, 10)
        .unwrap()
        .bakes
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["newer", "older"]);
}

#[test]
fn an_age_member_reads_back_as_its_position() {
    let m = age_member(1_700_000_000_000, "a:b");
    assert_eq!(m, "00000001700000000000:a:b");
    assert_eq!(
        member_position(&m),
        Some(Cursor {
            created_ms: 1_700_000_000_000,
            id: "a:b".to_string()
        })
    );
    assert!(age_member(9, "z") < age_member(10, "a"));
    assert_eq!(member_position("short"), None);
}

#[test]
fn a_bake_deleted_behind_the_index_is_skipped_and_its_member_dropped() {
    let Some((store, server)) = fixture() else {
        return;
    };
    for (id, ms) in [("kept", 100), ("gone", 200)] {
        let r = BakeRecord {
            created_ms: ms,
            ..sample_record(id, &format!("ident-{id}"))
        };
        store.create(&r, true).unwrap();
    }
    let client = redis::Client::open(server.uri(5)).unwrap();
    let mut raw = client.get_connection().unwrap();
    redis::cmd("DEL")
        .arg("kiln:bake:gone")
        .query::<()>(&mut raw)
        .unwrap();
    let all = crate::store::BakeFilter::default();
    let ids: Vec<String> = store
        .list(&all, None, 10)
        .unwrap()
        .bakes
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["kept"]);
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg("kiln:bakes")
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(members, [age_member(100, "kept")]);
}
