//! What the end-to-end tests share: where the database and the proxy
//! binary are (set by `scripts/test.sh`), and a Clerk id type for
//! binary-protocol clients.

use bytes::BytesMut;
use postgres_types::{FromSql, IsNull, ToSql, Type};
use std::error::Error;

/// The test cluster's connection string (a database with pg_clerk installed). These tests need the real
/// database `make test` starts, so a missing variable is a failure.
pub fn dsn() -> String {
    std::env::var("PG_CLERK_TEST_DSN").expect("PG_CLERK_TEST_DSN is not set: run these tests with `make test`")
}

/// A database with pg_clerk and the reference schema (sql/) applied.
pub fn schema_dsn() -> String {
    std::env::var("PG_CLERK_TEST_SCHEMA_DSN").expect("PG_CLERK_TEST_SCHEMA_DSN is not set: run these tests with `make test`")
}

/// The reference schema with the demo data, as the proxy's `db-uri`
/// (user `authenticator`).
pub fn api_dsn() -> String {
    std::env::var("PG_CLERK_TEST_API_DSN").expect("PG_CLERK_TEST_API_DSN is not set: run these tests with `make test`")
}

/// The same database as `api_dsn`, as its owner (to change the schema).
pub fn api_admin_dsn() -> String {
    api_dsn().replace("user=authenticator", "user=postgres")
}

/// Runs one statement on the API database as its owner.
pub fn admin_query(sql: &str) -> Vec<tokio_postgres::Row> {
    query_as(&api_admin_dsn(), sql)
}

/// Runs one statement on the API test cluster's database `db`, as its owner.
pub fn admin_query_in(db: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    query_as(&with_dbname(&api_admin_dsn(), db), sql)
}

fn query_as(dsn: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let (runtime, client) = client_for(dsn);
    runtime.block_on(client.query(sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A connection to `dsn` and the runtime that drives it, for one-off
/// statements from a test's own thread.
fn client_for(dsn: &str) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (client, connection) = runtime.block_on(tokio_postgres::connect(dsn, tokio_postgres::NoTls)).unwrap();
    runtime.spawn(connection);
    (runtime, client)
}

/// `dsn` (key=value form) with another `dbname`.
pub fn with_dbname(dsn: &str, name: &str) -> String {
    dsn.split_whitespace()
        .map(|kv| if kv.starts_with("dbname=") { format!("dbname={name}") } else { kv.to_owned() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A new database `name` on the API test cluster (dropped first if it is
/// there) with pg_clerk, the reference schema (sql/*.sql, in name order)
/// and the demo data, for tests that write a lot and must not disturb the
/// others; returns its DSN as the proxy's `authenticator`.
pub fn fresh_api_database(name: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (server, connection) = tokio_postgres::connect(&api_admin_dsn(), tokio_postgres::NoTls).await.unwrap();
        let connection = tokio::spawn(connection);
        server.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
        server.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        drop(server);
        let _ = connection.await;
        let (db, connection) = tokio_postgres::connect(&with_dbname(&api_admin_dsn(), name), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        db.batch_execute("SET client_min_messages = warning; CREATE EXTENSION pg_clerk").await.unwrap();
        let mut files: Vec<_> = std::fs::read_dir(root.join("sql")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.push(root.join("demo/data.sql"));
        for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "sql")) {
            let text = std::fs::read_to_string(file).unwrap();
            db.batch_execute(&text).await.unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        }
    });
    with_dbname(&api_dsn(), name)
}

/// Runs SQL as the superuser in database `db` of the API database's
/// cluster, with the simple query protocol (so `CREATE DATABASE` and
/// several statements work).
pub fn admin_execute(db: &str, sql: &str) {
    let (runtime, client) = client_for(&with_dbname(&api_admin_dsn(), db));
    runtime.block_on(client.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A new, empty database `name` in the test cluster (a leftover of an
/// earlier run is dropped first), set up with `setup` as the superuser;
/// returns its connection string for the proxy (user `authenticator`).
pub fn fresh_database(name: &str, setup: &str) -> String {
    admin_execute("postgres", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    admin_execute("postgres", &format!("CREATE DATABASE {name}"));
    admin_execute(name, setup);
    with_dbname(&api_dsn(), name)
}

pub fn proxy_bin() -> String {
    std::env::var("CLERK_PROXY_BIN").expect("CLERK_PROXY_BIN is not set: run these tests with `make test`")
}

pub async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&dsn(), tokio_postgres::NoTls).await.expect("connect to the test cluster");
    tokio::spawn(connection);
    client
}

/// A `clerk_user_id` / `clerk_org_id` / `clerk_session_id` value as a
/// binary-protocol client sends and receives it: the id's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkId(pub String);

fn is_clerk_id(ty: &Type) -> bool {
    matches!(ty.name(), "clerk_user_id" | "clerk_org_id" | "clerk_session_id")
}

impl ToSql for ClerkId {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        is_clerk_id(ty)
    }
    postgres_types::to_sql_checked!();
}

impl<'a> FromSql<'a> for ClerkId {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(ClerkId(std::str::from_utf8(raw)?.to_owned()))
    }
    fn accepts(ty: &Type) -> bool {
        is_clerk_id(ty)
    }
}

/// A running clerk-proxy, stopped when dropped.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Proxies kept in statics are never dropped: the test binary kills them
/// when it exits, so none outlives its run (and holds the output pipe open).
fn kill_at_exit(pid: u32) {
    static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn kill_children() {
        for pid in CHILDREN.lock().map(|c| c.clone()).unwrap_or_default() {
            // SAFETY: kill(2) with a pid we spawned; harmless if it is gone.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
    CHILDREN.lock().unwrap().push(pid);
    // SAFETY: registers a plain function with no arguments.
    REGISTER.call_once(|| unsafe {
        libc::atexit(kill_children);
    });
}

/// One sample of the admin listener's `/metrics` (`name{labels}` exactly
/// as exposed), or None when it is not there.
pub fn metric_sample(admin_port: u16, sample: &str) -> Option<f64> {
    let (status, _, text) = http(admin_port, "GET", "/metrics", &[], None);
    assert_eq!(status, 200, "{text}");
    text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')).map(|v| v.parse().unwrap())
}

/// A port nobody listens on, for a server a test starts. Taken from
/// 10000-19999, below Linux's ephemeral range (32768-60999), where a port
/// the kernel handed out could become a client socket's before the server
/// binds it; each test process starts at its own place and never returns a
/// port twice.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, std::process::id() % 10_000, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..10_000 {
        let port = 10_000 + (NEXT.fetch_add(1, Ordering::Relaxed) % 10_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 10000-19999")
}

/// Starts clerk-proxy with `config` (plus a free `server-port`) and waits
/// until it accepts connections.
pub fn start_proxy(config: &str) -> (Running, u16) {
    use std::time::{Duration, Instant};
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("clerk-proxy-test-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("proxy.conf");
    std::fs::write(&file, format!("{config}\nserver-port = {port}\n")).unwrap();
    let mut child = std::process::Command::new(proxy_bin())
        .args(["--config", file.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    kill_at_exit(child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    // Every listener: the API port and, when configured, the admin port
    // (they open one after the other).
    let admin =
        config.lines().find_map(|l| l.trim().strip_prefix("admin-server-port")?.trim().strip_prefix('=')?.trim().parse::<u16>().ok());
    let listening = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
    while !(listening(port) && admin.is_none_or(listening)) {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("clerk-proxy exited with {status}: {err}");
        }
        assert!(Instant::now() < deadline, "clerk-proxy did not start listening on {port} (admin {admin:?})");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Running(child), port)
}

/// One HTTP/1.1 request; returns (status, raw headers, body).
pub fn http(port: u16, method: &str, path: &str, headers: &[(String, String)], body: Option<&str>) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    // Host and Content-Type (JSON, with a body) unless given.
    let given = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !given("host") {
        request.push_str("Host: localhost\r\n");
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        if !given("content-type") {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
    (status, head, body)
}

/// One request sent as these exact bytes (garbage allowed); the status,
/// head and body of the answer, or None when the connection closed (or
/// 10 s passed) without one. Send `Connection: close` to get an answer
/// without waiting.
pub fn raw_http(port: u16, request: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let status = head.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()?;
    Some((status, head, out[end + 4..].to_vec()))
}

/// A JWKS endpoint on 127.0.0.1 (a real HTTP server, in a thread), serving
/// the test key set, as Clerk serves `/.well-known/jwks.json`.
pub fn serve_jwks(body: &'static str) -> String {
    serve_jwks_while(body, std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)))
}

/// `serve_jwks` that answers 503 while `up` is false (an outage).
pub fn serve_jwks_while(body: &'static str, up: std::sync::Arc<std::sync::atomic::AtomicBool>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = if up.load(std::sync::atomic::Ordering::Relaxed) {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                write!(stream, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            };
        }
    });
    url
}

/// A stand-in for Clerk's Backend API on 127.0.0.1: records every
/// `PATCH /v1/users/{id}/metadata` and answers with the statuses queued for
/// that user (200 once the queue is empty), optionally after a delay.
pub struct FakeClerk {
    pub url: String,
    state: std::sync::Arc<std::sync::Mutex<FakeClerkState>>,
}

#[derive(Default)]
struct FakeClerkState {
    requests: Vec<(String, serde_json::Value)>,
    script: std::collections::HashMap<String, Vec<(u16, u64)>>,
}

impl FakeClerk {
    pub fn start() -> FakeClerk {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = std::sync::Arc::new(std::sync::Mutex::new(FakeClerkState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 8192];
                    // Read the head, then Content-Length bytes of body.
                    loop {
                        let n = stream.read(&mut buf).unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        raw.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&raw).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                                let user = path.trim_start_matches("/v1/users/").trim_end_matches("/metadata").to_owned();
                                let json: serde_json::Value = serde_json::from_str(&body[..len]).unwrap_or(serde_json::Value::Null);
                                let (status, delay) = {
                                    let mut s = shared.lock().unwrap();
                                    s.requests.push((user.clone(), json));
                                    s.script.get_mut(&user).filter(|q| !q.is_empty()).map(|q| q.remove(0)).unwrap_or((200, 0))
                                };
                                std::thread::sleep(std::time::Duration::from_millis(delay));
                                let body = if status == 200 { "{\"object\":\"user\"}" } else { "{\"errors\":[]}" };
                                let retry = if status == 429 { "Retry-After: 1\r\n" } else { "" };
                                let _ = write!(stream, "HTTP/1.1 {status} X\r\n{retry}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                                return;
                            }
                        }
                    }
                });
            }
        });
        FakeClerk { url, state }
    }

    /// Answers the next calls for `user` with these (status, delay in ms).
    pub fn script(&self, user: &str, answers: &[(u16, u64)]) {
        self.state.lock().unwrap().script.insert(user.to_owned(), answers.to_vec());
    }

    /// The bodies received for `user`, in order.
    pub fn requests_for(&self, user: &str) -> Vec<serde_json::Value> {
        self.state.lock().unwrap().requests.iter().filter(|(u, _)| u == user).map(|(_, b)| b.clone()).collect()
    }
}

/// A header's value in a response head (names compared case-blind).
pub fn head_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `request_setting(name)`: lets API roles read a request setting (what
/// the proxy put in `request.headers`, `request.cookies`, `jit`, …).
pub const REQUEST_SETTING_FUNCTION: &str =
    "CREATE FUNCTION public.request_setting(name text) RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_setting(name, true) $$;
     GRANT EXECUTE ON FUNCTION public.request_setting(text) TO anon, authenticated;";

/// JSON text as a value, refusing an object with the same key twice (which
/// `serde_json` would keep silently, the last one winning): what every API
/// answer must parse as.
pub fn parse_strict(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str::<Strict>(text).map(|Strict(v)| v).map_err(|e| e.to_string())
}

/// A JSON value that refuses an object with the same key twice.
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Strict;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
                Ok(Strict(serde_json::Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
                Ok(Strict(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
                Ok(Strict(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
                Ok(Strict(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
                Ok(Strict(serde_json::Value::String(v.to_owned())))
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict(serde_json::Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
                let mut items = Vec::new();
                while let Some(Strict(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(Strict(serde_json::Value::Array(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some((k, Strict(v))) = map.next_entry::<String, Strict>()? {
                    if object.insert(k.clone(), v).is_some() {
                        return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
                    }
                }
                Ok(Strict(serde_json::Value::Object(object)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether the test server has `feature`: "postgis" (the extension is
/// available) or "libxml" (built with it, so the `xml` type works). A
/// feature the server lacks must be declared in PG_CLERK_TEST_SERVER_WITHOUT
/// (`make test` does for PyPI's PostgreSQL 18, which has neither), so that
/// a missing install fails the test instead of skipping its cases.
pub fn server_has(feature: &str) -> bool {
    let probe = match feature {
        "postgis" => "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'",
        "libxml" => "SELECT count(*) FROM pg_config() WHERE name = 'CONFIGURE' AND setting LIKE '%--with-libxml%'",
        _ => panic!("unknown server feature {feature}"),
    };
    if query_as(&with_dbname(&api_admin_dsn(), "postgres"), probe)[0].get::<_, i64>(0) > 0 {
        return true;
    }
    let declared = std::env::var("PG_CLERK_TEST_SERVER_WITHOUT").unwrap_or_default();
    assert!(
        declared.split_whitespace().any(|f| f == feature),
        "this PostgreSQL has no {feature}, and PG_CLERK_TEST_SERVER_WITHOUT does not say so (make test installs it for PostgreSQL 15)"
    );
    eprintln!("no {feature} on this server (PG_CLERK_TEST_SERVER_WITHOUT): the cases that need it are skipped");
    false
}
