//! clerk-proxy as an operator runs it: `/ready` following the database,
//! `/metrics` moving with the traffic, the limits (body size, statement
//! timeout, pool wait, rate limits), graceful shutdown on SIGTERM, and a
//! request log that never shows a token. Each test starts its own proxy
//! on a small database of its own (`clerk_ops`), so counters are exact.

use clerk_jwt::test_keys::{now, sign_hs256};
use pg_clerk_e2e::{admin_execute, admin_query_in, free_port, fresh_database, http, metric_sample, raw_http, start_proxy, Running};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SECRET: &str = "operations-test-secret-of-at-least-32-bytes";

/// A table, a slow function and one telling which backend answers.
fn ops_dsn() -> &'static str {
    static DSN: OnceLock<String> = OnceLock::new();
    DSN.get_or_init(|| {
        fresh_database(
            "clerk_ops",
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
             INSERT INTO items VALUES (1, 'one'), (2, 'two');
             GRANT SELECT, INSERT ON items TO anon, authenticated;
             CREATE FUNCTION slow(ms int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(ms / 1000.0); RETURN ms; END $$;
             CREATE FUNCTION slow_insert(id int, ms int) RETURNS int LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO items VALUES (id, 'slow'); PERFORM pg_sleep(ms / 1000.0); RETURN id; END $$;
             CREATE FUNCTION backend_pid() RETURNS int LANGUAGE sql AS 'SELECT pg_backend_pid()';
             GRANT EXECUTE ON FUNCTION slow(int), slow_insert(int, int), backend_pid() TO anon, authenticated;",
        )
    })
}

/// A proxy on `clerk_ops` with `extra` config lines and an admin port.
fn proxy(extra: &str) -> (Running, u16, u16) {
    let admin = free_port();
    let (running, port) = start_proxy(&format!(
        "db-uri = \"{}\"\ndb-anon-role = \"anon\"\njwt-secret = \"{SECRET}\"\nadmin-server-port = {admin}\n{extra}",
        ops_dsn()
    ));
    (running, port, admin)
}

fn token(user: &str) -> String {
    sign_hs256(&json!({"sub": user, "sid": "sess_ops", "iat": now(), "exp": now() + 600}), SECRET.as_bytes())
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".into(), format!("Bearer {token}"))]
}

fn get(port: u16, path: &str) -> (u16, String, Value) {
    let (status, head, body) = http(port, "GET", path, &[], None);
    (status, head, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// The value of one sample (`name{labels}` exactly as exposed); 0 when absent.
/// A sample's value; a request series not seen yet is 0, any other sample
/// must be there.
fn metric(admin_port: u16, sample: &str) -> f64 {
    match metric_sample(admin_port, sample) {
        Some(v) => v,
        None if sample.starts_with("clerk_proxy_http_requests_total{") => 0.0,
        None => panic!("no {sample} in /metrics"),
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

#[test]
fn ready_follows_the_database() {
    let dsn = fresh_database("clerk_ops_ready", "SELECT 1");
    let admin = free_port();
    let (proxy, port) = start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\nadmin-server-port = {admin}"));
    let (status, _, body) = get(admin, "/ready");
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["status"].as_str(), body["failed"].clone()), (Some("ready"), json!([])));
    assert_eq!(body["checks"]["keys"]["ok"], true);

    // The database goes away: no new connections, existing ones ended.
    admin_execute(
        "postgres",
        "ALTER DATABASE clerk_ops_ready ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'clerk_ops_ready';",
    );
    let (status, _, body) = get(admin, "/ready");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failed"], json!(["database"]), "{body}");
    assert!(body["checks"]["database"]["error"].as_str().unwrap().contains("clerk_ops_ready"), "{body}");
    assert_eq!(body["checks"]["schema_cache"]["ok"], true);
    assert_eq!(get(port, "/live").0, 200, "the process is still live");

    admin_execute("postgres", "ALTER DATABASE clerk_ops_ready ALLOW_CONNECTIONS true");
    assert_eq!(get(admin, "/ready").0, 200, "ready again once the database is back");
    drop(proxy);

    // Keys: counted; none and no db-anon-role, every request would be a 401.
    let (_ops, _, ops_admin) = self::proxy("");
    assert_eq!(get(ops_admin, "/ready").2["checks"]["keys"], json!({"ok": true, "keys": 1}));
    let keyless_admin = free_port();
    let (_keyless, _) = start_proxy(&format!("db-uri = \"{}\"\nadmin-server-port = {keyless_admin}", ops_dsn()));
    let (status, _, body) = get(keyless_admin, "/ready");
    assert_eq!((status, body["failed"].clone()), (503, json!(["keys"])), "{body}");
    admin_execute("postgres", "DROP DATABASE clerk_ops_ready WITH (FORCE)");
}

#[test]
fn metrics_count_requests_by_known_route_and_status() {
    let (_proxy, port, admin) = proxy("db-pool = 3\nclerk-webhook-secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"");
    let items = "clerk_proxy_http_requests_total{route=\"items\",status=\"200\"}";
    let other = "clerk_proxy_http_requests_total{route=\"other\",status=\"404\"}";
    let rpc = "clerk_proxy_http_requests_total{route=\"rpc/slow\",status=\"200\"}";
    let count = "clerk_proxy_http_request_duration_seconds_count";
    let before = [items, other, rpc, count].map(|m| metric(admin, m));
    assert_eq!(get(port, "/items").0, 200);
    assert_eq!(get(port, "/items?id=eq.1").0, 200);
    assert_eq!(get(port, "/rpc/slow?ms=1").0, 200);
    // Unknown tables and paths share one label: clients cannot mint new series.
    assert_eq!(get(port, "/no_such_table_x1").0, 404);
    assert_eq!(get(port, "/no/such/path").0, 404);
    let after = [items, other, rpc, count].map(|m| metric(admin, m));
    assert_eq!([after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3] - before[3]], [2.0, 2.0, 1.0, 5.0]);
    let (_, _, text) = http(admin, "GET", "/metrics", &[], None);
    assert!(!text.contains("no_such_table_x1"), "{text}");
    assert!(text.contains("# TYPE clerk_proxy_http_request_duration_seconds histogram"));
    assert_eq!(metric(admin, "clerk_proxy_db_pool_max_connections"), 3.0);
    assert_eq!(metric(admin, "clerk_proxy_db_pool_connections{state=\"in_use\"}"), 0.0);
    assert!(metric(admin, "clerk_proxy_db_pool_connections{state=\"idle\"}") >= 1.0);

    // A webhook without a signature is refused before the database.
    let rejected = "clerk_proxy_webhooks_total{outcome=\"rejected\"}";
    let before = metric(admin, rejected);
    assert_eq!(http(port, "POST", "/webhooks/clerk", &[], Some("{}")).0, 400);
    assert_eq!(metric(admin, rejected) - before, 1.0);
    // The API port does not serve the admin endpoints.
    assert_eq!(get(port, "/ready").0, 404);
}

#[test]
fn a_body_over_server_max_body_is_413_and_the_proxy_keeps_serving() {
    let (_proxy, port, _) = proxy("server-max-body = 1024");
    let big = format!("{{\"id\": 9, \"name\": \"{}\"}}", "x".repeat(2000));
    let (status, _, body) = http(port, "POST", "/items", &[], Some(&big));
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "PGRST413");
    assert!(body["message"].as_str().unwrap().contains("1024 bytes"), "{body}");
    // Nothing was written, and the next requests are served.
    assert_eq!(get(port, "/items?id=eq.9").2, json!([]));
    let (status, _, body) = http(port, "POST", "/items", &[], Some("{\"id\": 3, \"name\": \"three\"}"));
    assert_eq!(status, 201, "{body}");
    admin_execute("clerk_ops", "DELETE FROM items WHERE id = 3");
}

#[test]
fn a_statement_over_db_statement_timeout_is_504_and_its_connection_serves_the_next_request() {
    let (_proxy, port, _) = proxy("db-pool = 1\ndb-statement-timeout = 300");
    let (status, _, pid) = get(port, "/rpc/backend_pid");
    assert_eq!(status, 200, "{pid}");
    let started = Instant::now();
    let (status, _, body) = get(port, "/rpc/slow?ms=3000");
    assert_eq!((status, body["code"].as_str()), (504, Some("57014")), "{body}");
    assert!(started.elapsed() < Duration::from_millis(2500), "cancelled at the timeout, not after the sleep");
    // The one pooled connection is still there and still usable.
    let (status, _, again) = get(port, "/rpc/backend_pid");
    assert_eq!((status, again), (200, pid));
}

#[test]
fn a_request_waiting_longer_than_db_pool_acquisition_timeout_is_503_pgrst003() {
    let (_proxy, port, admin) = proxy("db-pool = 1\ndb-pool-acquisition-timeout = 1");
    let slow = std::thread::spawn(move || get(port, "/rpc/slow?ms=3000").0);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (status, _, body) = get(port, "/items");
    assert_eq!((status, body["code"].as_str()), (503, Some("PGRST003")), "{body}");
    assert!(started.elapsed() >= Duration::from_millis(900) && started.elapsed() < Duration::from_millis(2500));
    assert_eq!(metric(admin, "clerk_proxy_db_pool_timeouts_total"), 1.0);
    assert_eq!(metric(admin, "clerk_proxy_db_pool_connections{state=\"in_use\"}"), 1.0);
    assert_eq!(slow.join().unwrap(), 200, "the slow request itself completes");
    assert_eq!(get(port, "/items").0, 200);
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let (_proxy, port, admin) = proxy("rate-limit-per-user = 3\nrate-limit-per-ip = 1000");
    let alice = bearer(&token("user_opsAlice"));
    // A burst of 10 spans at most two one-second windows: 3 to 6 pass.
    let statuses: Vec<(u16, String, String)> = (0..10).map(|_| http(port, "GET", "/items", &alice, None)).collect();
    let passed = statuses.iter().filter(|s| s.0 == 200).count();
    let limited: Vec<_> = statuses.iter().filter(|s| s.0 == 429).collect();
    assert!((3..=6).contains(&passed) && passed + limited.len() == 10, "{statuses:?}");
    assert_rate_limited(&limited, "rate-limit-per-user");
    assert_eq!(metric(admin, "clerk_proxy_rate_limited_total{limit=\"user\"}"), limited.len() as f64);
    // Another user has a budget of their own; after a second, so has Alice again.
    assert_eq!(http(port, "GET", "/items", &bearer(&token("user_opsBob")), None).0, 200);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(http(port, "GET", "/items", &alice, None).0, 200);

    // Per address: anonymous requests too.
    let (_proxy, port, admin) = proxy("rate-limit-per-ip = 2");
    let statuses: Vec<(u16, String, String)> = (0..8).map(|_| http(port, "GET", "/items", &[], None)).collect();
    let limited: Vec<_> = statuses.iter().filter(|s| s.0 == 429).collect();
    assert!(limited.len() >= 4 && statuses.iter().all(|s| s.0 == 200 || s.0 == 429), "{statuses:?}");
    assert_rate_limited(&limited, "rate-limit-per-ip");
    assert_eq!(metric(admin, "clerk_proxy_rate_limited_total{limit=\"ip\"}"), limited.len() as f64);
}

/// 429 answers as PostgREST shapes them, naming the limit's key.
fn assert_rate_limited(answers: &[&(u16, String, String)], key: &str) {
    for (_, head, body) in answers {
        assert_eq!(header(head, "retry-after"), Some("1"), "{head}");
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "PGRST429");
        assert!(body["details"].as_str().unwrap().contains(key), "{body}");
    }
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_refuses_new_connections_and_exits_0() {
    let (mut proxy, port, _) = proxy("server-shutdown-grace = 10");
    let slow = std::thread::spawn(move || get(port, "/rpc/slow?ms=2000"));
    std::thread::sleep(Duration::from_millis(500));
    let signalled = sigterm(&proxy);
    std::thread::sleep(Duration::from_millis(300));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "new connections are refused");
    let (status, _, body) = slow.join().unwrap();
    assert_eq!((status, body), (200, json!(2000)), "the request in flight completed");
    assert_eq!(wait_for_exit(&mut proxy, signalled, Duration::from_secs(10)), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exits once drained, not after the whole grace period: {:?}",
        signalled.elapsed()
    );
}

#[test]
fn sigterm_cancels_a_request_still_running_when_the_grace_period_is_over_and_says_so() {
    let (mut proxy, port, _) = proxy("server-shutdown-grace = 1\nlog-level = \"warn\"");
    let cut = std::thread::spawn(move || raw_http(port, b"GET /rpc/slow?ms=4000 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    std::thread::sleep(Duration::from_millis(500));
    let signalled = sigterm(&proxy);
    assert_eq!(wait_for_exit(&mut proxy, signalled, Duration::from_secs(3)), Some(0));
    let waited = signalled.elapsed();
    assert!(waited >= Duration::from_millis(900), "exited before the grace period was over: {waited:?}");
    let (status, _, body) = cut.join().unwrap().expect("the cancelled request is answered");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, body["message"].as_str()), (503, Some("The server is shutting down")), "{body}");
    assert!(body["details"].as_str().unwrap().contains("cancelled and its transaction rolled back"), "{body}");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut proxy.0.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("grace period over with 1 requests running: 1 statements cancelled (rolled back), 0 requests cut"), "{log}");
}

/// Without the cancel, the COMMIT pipelined behind the statement would
/// run once the statement ends, after the proxy is gone, and keep the row.
#[test]
fn writes_still_running_or_waiting_for_a_connection_when_the_grace_period_is_over_are_rolled_back() {
    let (mut proxy, port, _) = proxy("server-shutdown-grace = 1\ndb-pool = 1\nlog-level = \"warn\"");
    let insert = |id: u32| {
        let body = format!(r#"{{"id": {id}, "ms": 3000}}"#);
        let request = format!(
            "POST /rpc/slow_insert HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        std::thread::spawn(move || raw_http(port, request.as_bytes()))
    };
    let sent = Instant::now();
    let running = insert(90);
    std::thread::sleep(Duration::from_millis(200));
    let waiting = insert(91); // the one connection is busy: it waits for it
    std::thread::sleep(Duration::from_millis(300));
    let signalled = sigterm(&proxy);
    assert_eq!(wait_for_exit(&mut proxy, signalled, Duration::from_secs(4)), Some(0));
    for (request, what) in [(running, "cancelled and its transaction rolled back"), (waiting, "had not reached the database")] {
        let (status, _, body) = request.join().unwrap().expect("answered");
        let body = String::from_utf8(body).unwrap();
        assert!(status == 503 && body.contains(what), "{status} {body}");
    }
    // Past the moment the function would have returned and its COMMIT run.
    std::thread::sleep(Duration::from_millis(4000).saturating_sub(sent.elapsed()));
    let rows: i64 = admin_query_in("clerk_ops", "SELECT count(*) FROM items WHERE id IN (90, 91)")[0].get(0);
    assert_eq!(rows, 0, "a write cut at the end of the grace period committed");
}

fn sigterm(proxy: &Running) -> Instant {
    let signalled = Instant::now();
    let kill = std::process::Command::new("kill").args(["-TERM", &proxy.0.id().to_string()]).status().unwrap();
    assert!(kill.success());
    signalled
}

/// The exit code, once the proxy has exited; fails if it is still running
/// `limit` after the signal.
fn wait_for_exit(proxy: &mut Running, signalled: Instant, limit: Duration) -> Option<i32> {
    loop {
        if let Some(exit) = proxy.0.try_wait().unwrap() {
            return exit.code();
        }
        assert!(signalled.elapsed() < limit, "still running {limit:?} after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn request_log_lines_are_logfmt_and_never_show_a_token() {
    let (mut proxy, port, _) = proxy("log-level = \"info\"");
    let token = token("user_opsLog");
    assert_eq!(http(port, "GET", "/items?name=eq.s3cr3t-filter", &bearer(&token), None).0, 200);
    let cookie = vec![("Cookie".to_owned(), format!("__session={token}; theme=dark"))];
    assert_eq!(http(port, "GET", "/items", &cookie, None).0, 200);
    assert_eq!(http(port, "GET", "/no_such_table", &[], None).0, 404);
    assert_eq!(http(port, "GET", "/items", &bearer("not.a.jwt"), None).0, 401);
    proxy.0.kill().unwrap();
    proxy.0.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut proxy.0.stderr.take().unwrap(), &mut log).unwrap();
    let requests: Vec<&str> = log.lines().filter(|l| l.contains(" msg=request ")).collect();
    assert_eq!(requests.len(), 4, "{log}");
    assert!(requests.iter().all(|l| l.starts_with("ts=") && l.contains(" level=info ") && l.contains(" duration_ms=")), "{log}");
    assert!(requests[0].contains(" method=GET path=/items status=200 ") && requests[0].contains(" user=user_opsLog"), "{log}");
    assert!(requests[1].contains(" user=user_opsLog"), "{log}");
    assert!(requests[2].contains(" path=/no_such_table status=404 ") && requests[2].contains(" route=other user=anon"), "{log}");
    assert!(requests[3].contains(" status=401 ") && requests[3].contains(" user=anon"), "{log}");
    let signature = token.rsplit('.').next().unwrap();
    for secret in [token.as_str(), signature, "s3cr3t", "theme=dark", "not.a.jwt", SECRET] {
        assert!(!log.contains(secret), "the log shows {secret}: {log}");
    }
}
