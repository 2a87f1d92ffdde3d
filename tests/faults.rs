//! clerk-proxy when things around it fail: the database going away under
//! load (fast 503s, no restart needed when it returns), the JWKS endpoint
//! going down (cached keys keep working, an unknown `kid` is a 401), and
//! clients hanging up mid-request (no pooled connection leaks). Each test
//! has a database of its own, so it can take it away.

use clerk_jwt::test_keys::{now, sign, sign_with, JWKS};
use pg_clerk_e2e::{admin_execute, admin_query, free_port, fresh_database, http, metric_sample, serve_jwks_while, start_proxy};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SETUP: &str = "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
     INSERT INTO items VALUES (1, 'one'), (2, 'two');
     GRANT SELECT ON items TO anon, authenticated;
     CREATE FUNCTION slow(ms int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(ms / 1000.0); RETURN ms; END $$;
     GRANT EXECUTE ON FUNCTION slow(int) TO anon, authenticated;";

fn status_and_code(port: u16, path: &str, headers: &[(String, String)]) -> (u16, Option<String>) {
    let (status, _, body) = http(port, "GET", path, headers, None);
    let code = serde_json::from_str::<Value>(&body).ok().and_then(|b| b["code"].as_str().map(str::to_owned));
    (status, code)
}

/// What one client saw: status, error code, how long the answer took.
type Seen = (u16, Option<String>, Duration);

/// Four clients keep asking `port` for `/items` while `outage` takes the
/// database away and brings it back; then until it serves again, which
/// must be within 5 s of `outage` returning. Every answer, in order.
fn answers_through(port: u16, outage: impl FnOnce()) -> Vec<Seen> {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let (status, code) = status_and_code(port, "/items?select=name", &[]);
                    seen.push((status, code, started.elapsed()));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    outage();
    let back = Instant::now();
    while status_and_code(port, "/items", &[]).0 != 200 {
        assert!(back.elapsed() < Duration::from_secs(5), "not serving again 5 s after the database returned");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
}

/// Every answer was a 200 or a 503 with PostgREST's connection codes (or
/// the server's "session ended" 57P0x), never a 500 or a dropped
/// connection; failures were fast; the last answers are 200s again.
fn assert_fast_503s_then_200s(seen: &[Seen]) {
    let failures: Vec<_> = seen.iter().filter(|(s, _, _)| *s != 200).collect();
    assert!(!failures.is_empty(), "the outage was not observed");
    for (status, code, took) in &failures {
        assert_eq!(*status, 503, "{code:?}");
        assert!(code.as_deref().is_some_and(|c| c == "PGRST000" || c == "PGRST001" || c.starts_with("57P")), "{code:?}");
        assert!(*took < Duration::from_secs(2), "a failure took {took:?}");
    }
    assert!(seen.last().is_some_and(|(s, _, _)| *s == 200), "the last answers are 200s again");
}

#[test]
fn the_database_going_away_under_load_is_a_fast_503_and_serving_resumes_without_a_restart() {
    let dsn = fresh_database("clerk_faults_db", SETUP);
    let (mut proxy, port) = start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\ndb-pool = 4"));
    assert_eq!(status_and_code(port, "/items", &[]).0, 200);
    let seen = answers_through(port, || {
        admin_execute(
            "postgres",
            "ALTER DATABASE clerk_faults_db ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'clerk_faults_db';",
        );
        std::thread::sleep(Duration::from_millis(1500));
        let down = status_and_code(port, "/items", &[]);
        assert_eq!(down.0, 503, "{down:?}");
        admin_execute("postgres", "ALTER DATABASE clerk_faults_db ALLOW_CONNECTIONS true");
    });
    assert_fast_503s_then_200s(&seen);
    assert!(proxy.0.try_wait().unwrap().is_none(), "the proxy is still running");
}

/// A PostgreSQL cluster of this test's own (scripts/cluster.sh), so it can
/// be stopped for real; stopped and removed when dropped.
struct OwnCluster {
    dir: std::path::PathBuf,
    port: u16,
}

impl OwnCluster {
    fn script(args: &[&str]) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/cluster.sh");
        let out = std::process::Command::new(script).args(args).output().unwrap();
        assert!(out.status.success(), "cluster.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    fn start() -> OwnCluster {
        let port = free_port();
        let cluster = OwnCluster { dir: std::env::temp_dir().join(format!("clerk-faults-cluster-{port}")), port };
        let _ = std::fs::remove_dir_all(&cluster.dir);
        cluster.up();
        cluster
    }
    fn up(&self) {
        Self::script(&["start", self.dir.to_str().unwrap(), &self.port.to_string()]);
    }
    fn down(&self) {
        Self::script(&["stop", self.dir.to_str().unwrap()]);
    }
    fn dsn(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn postgres_stopped_under_load_is_a_fast_503_and_serving_resumes_when_it_starts_again() {
    let cluster = OwnCluster::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&cluster.dsn(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE ROLE anon NOLOGIN; CREATE ROLE authenticated NOLOGIN; {SETUP}")).await.unwrap();
    });
    let (mut proxy, port) = start_proxy(&format!("db-uri = \"{}\"\ndb-anon-role = \"anon\"\ndb-pool = 4", cluster.dsn()));
    assert_eq!(status_and_code(port, "/items", &[]).0, 200);
    let seen = answers_through(port, || {
        // pg_ctl stop -m fast: every backend ends, then nothing listens.
        cluster.down();
        std::thread::sleep(Duration::from_millis(1000));
        let (status, _, body) = http(port, "GET", "/items", &[], None);
        assert_eq!(status, 503, "{body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (error["code"].as_str(), error["message"].as_str()),
            (Some("PGRST000"), Some("Could not connect to the database")),
            "{error}"
        );
        cluster.up();
    });
    assert_fast_503s_then_200s(&seen);
    assert!(proxy.0.try_wait().unwrap().is_none(), "the proxy is still running");
}

#[test]
fn with_the_jwks_endpoint_down_known_keys_keep_working_and_an_unknown_kid_is_401() {
    let dsn = fresh_database("clerk_faults_jwks", SETUP);
    let up = Arc::new(AtomicBool::new(true));
    let admin = free_port();
    // Refetch on every unknown kid (no rate limit), so the outage is met.
    let (_proxy, port) = start_proxy(&format!(
        "db-uri = \"{dsn}\"\nclerk-jwks-url = \"{}\"\nclerk-jwks-refresh-interval = 0\nadmin-server-port = {admin}",
        serve_jwks_while(JWKS, up.clone())
    ));
    let metric = |name: &str| -> u64 { metric_sample(admin, name).unwrap_or_else(|| panic!("no {name} in /metrics")) as u64 };
    let bearer = |token: &str| vec![("Authorization".to_owned(), format!("Bearer {token}"))];
    let claims = |user: &str| json!({"sub": user, "sid": "sess_faults", "iat": now(), "exp": now() + 600});
    let first = sign(&claims("user_2faultsA"));
    assert_eq!(status_and_code(port, "/items", &bearer(&first)).0, 200);
    assert_eq!(status_and_code(port, "/items", &bearer(&first)).0, 200);
    assert_eq!(metric("clerk_proxy_jwt_cache_total{result=\"miss\"}"), 1);
    assert_eq!(metric("clerk_proxy_jwt_cache_total{result=\"hit\"}"), 1);

    up.store(false, Ordering::Relaxed);
    // A token never seen before, signed with a key fetched earlier: verified
    // with the keys in memory, no fetch.
    assert_eq!(status_and_code(port, "/items", &bearer(&sign(&claims("user_2faultsB")))).0, 200);
    assert_eq!(metric("clerk_proxy_jwks_refreshes_total{result=\"failed\"}"), 0);
    // An unknown kid makes the proxy refetch; the endpoint fails; 401, not 500.
    let unknown = sign_with(&claims("user_2faultsC"), Some("ins_rotated_key"));
    assert_eq!(status_and_code(port, "/items", &bearer(&unknown)), (401, Some("PGRST301".to_owned())));
    assert_eq!(metric("clerk_proxy_jwks_refreshes_total{result=\"failed\"}"), 1);
    assert_eq!(metric("clerk_proxy_jwks_refreshes_total{result=\"ok\"}"), 0);
    // Still serving known tokens afterwards.
    assert_eq!(status_and_code(port, "/items", &bearer(&sign(&claims("user_2faultsD")))).0, 200);

    // The endpoint is back: the next unknown kid is refetched (still not
    // in the set, still 401) and the refresh counts as ok.
    up.store(true, Ordering::Relaxed);
    assert_eq!(status_and_code(port, "/items", &bearer(&unknown)), (401, Some("PGRST301".to_owned())));
    assert_eq!(metric("clerk_proxy_jwks_refreshes_total{result=\"ok\"}"), 1);
    assert_eq!(metric("clerk_proxy_jwt_cache_total{result=\"miss\"}"), 5);
}

#[test]
fn clients_hanging_up_mid_request_leak_no_pooled_connection() {
    let dsn = fresh_database("clerk_faults_hangup", SETUP);
    let (_proxy, port) = start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\ndb-pool = 2\ndb-pool-acquisition-timeout = 3"));
    // Twenty clients start a slow call and hang up at once.
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /rpc/slow?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        drop(s);
    }
    // The pool (2 connections) must still serve: a leaked permit or a
    // connection stuck in a transaction would make these wait and 503.
    std::thread::sleep(Duration::from_millis(600));
    for _ in 0..6 {
        let (status, code) = status_and_code(port, "/rpc/slow?ms=10", &[]);
        assert_eq!(status, 200, "{code:?}");
    }
    // And the server side holds at most the pool's connections (plus the
    // schema cache's LISTEN connection), none left inside a transaction.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = admin_query("SELECT count(*), count(*) FILTER (WHERE state LIKE 'idle in transaction%') FROM pg_stat_activity WHERE datname = 'clerk_faults_hangup' AND usename = 'authenticator'");
        let (total, in_transaction): (i64, i64) = (rows[0].get(0), rows[0].get(1));
        if total <= 3 && in_transaction == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{total} connections, {in_transaction} idle in transaction");
        std::thread::sleep(Duration::from_millis(100));
    }
}
