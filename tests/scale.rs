//! Beyond one machine, each part real and on 127.0.0.1: a hot standby made
//! here with `pg_basebackup -R` serving the reads (and the primary taking
//! them while it is stopped), PgBouncer in transaction mode between the
//! proxy and PostgreSQL, and three proxies behind HAProxy, one stopped
//! under load. The primary is the test cluster of `make test`.

use clerk_jwt::test_keys::{now, sign, sign_hs256, JWKS};
use pg_clerk_e2e::{
    admin_execute, admin_query_in, api_dsn, free_port, fresh_api_database, head_value, http, start_proxy, FakeClerk, Running,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SECRET: &str = "a-local-development-secret-of-32-bytes!";

/// One scenario at a time: each counts failures under load.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn token(sub: &str, staff: bool) -> String {
    let mut claims = json!({"sub": sub, "sid": "sess_scale", "iat": now() - 5, "nbf": now() - 5, "exp": now() + 900});
    if staff {
        claims["metadata"] = json!({"role": "employee"});
    }
    sign_hs256(&claims, SECRET.as_bytes())
}

/// (status, head, JSON body) of one request.
fn call(port: u16, method: &str, path: &str, token: Option<&str>, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, String, Value) {
    let mut all: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Some(t) = token {
        all.push(("Authorization".into(), format!("Bearer {t}")));
    }
    let (status, head, text) = http(port, method, path, &all, body.map(Value::to_string).as_deref());
    (status, head, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Runs `work(thread, iteration)` on `threads` threads until `duration`
/// has passed (while `during` runs on this thread); returns how many calls
/// there were and what failed.
fn under_load(
    threads: usize,
    duration: Duration,
    work: impl Fn(usize, u64) -> Result<(), String> + Sync,
    during: impl FnOnce(),
) -> (u64, Vec<String>) {
    let calls = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (calls, failures, stop, work) = (&calls, &failures, &stop, &work);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = work(t, i) {
                        failures.lock().unwrap().push(e);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        let started = Instant::now();
        during();
        std::thread::sleep(duration.saturating_sub(started.elapsed()));
        stop.store(true, Ordering::Relaxed);
    });
    (calls.into_inner(), failures.into_inner().unwrap())
}

// ---- processes: the PostgreSQL binaries of the test cluster, PgBouncer, HAProxy

/// A PostgreSQL program of the test cluster's major (`PG_MAJOR`, as
/// `scripts/lib.sh` finds it).
fn pg_tool(name: &str) -> String {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib.sh");
        let out = Command::new("bash").args(["-c", &format!("source {lib} && printf %s \"$PG_BIN\"")]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    });
    format!("{bin}/{name}")
}

/// A new directory the cluster's owner may write (standbys, pooler files).
fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pg_clerk-scale-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if is_root() {
        run(Command::new("chown").arg("postgres:postgres").arg(&dir));
    }
    dir
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program` run as the cluster's owner: `postgres` when we are root
/// (initdb, pg_ctl and pg_basebackup refuse root).
fn as_owner(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("sudo");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn primary_port() -> u16 {
    api_dsn().split_whitespace().find_map(|kv| kv.strip_prefix("port=")).expect("a port in PG_CLERK_TEST_API_DSN").parse().unwrap()
}

/// A child process killed (and waited for) when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A hot standby of the test cluster.
struct Standby {
    data: PathBuf,
    port: u16,
}

impl Standby {
    /// `pg_basebackup -R` of the primary (streaming the WAL it needs), on
    /// a port of its own, started and consistent.
    fn create(name: &str) -> Standby {
        let data = work_dir(name).join("data");
        let port = free_port();
        run(as_owner(&pg_tool("pg_basebackup"))
            .args(["-h", "127.0.0.1", "-p", &primary_port().to_string(), "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "-D"])
            .arg(&data));
        // The primary's postgresql.conf came along: a port and socket of its own.
        let conf = format!("\nport = {port}\nunix_socket_directories = '{}'\n", data.display());
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        let standby = Standby { data, port };
        standby.start();
        standby
    }

    fn start(&self) {
        run(as_owner(&pg_tool("pg_ctl"))
            .args(["-w", "-t", "60", "-l"])
            .arg(self.data.join("server.log"))
            .arg("-D")
            .arg(&self.data)
            .arg("start"));
    }

    /// A fast shutdown: sessions are ended (57P01), as when a DBA stops it.
    fn stop(&self) {
        run(as_owner(&pg_tool("pg_ctl")).args(["-w", "-m", "fast", "-D"]).arg(&self.data).arg("stop"));
    }

    fn query(&self, db: &str, sql: &str) -> Vec<tokio_postgres::Row> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dsn = format!("host=127.0.0.1 port={} user=postgres dbname={db}", self.port);
            let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// Stops replaying WAL (`pg_wal_replay_pause`) until `resume`.
    fn pause_replay(&self, db: &str) {
        self.query(db, "SELECT pg_wal_replay_pause()");
        wait_until("replay paused", Duration::from_secs(10), || {
            self.query(db, "SELECT pg_get_wal_replay_pause_state()")[0].get::<_, String>(0) == "paused"
        });
    }

    fn resume_replay(&self, db: &str) {
        self.query(db, "SELECT pg_wal_replay_resume()");
    }

    fn postmaster(&self) -> libc::pid_t {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid")).expect("a running standby");
        pid.lines().next().unwrap().trim().parse().unwrap()
    }

    /// SIGSTOP / SIGCONT to the postmaster alone: the sessions it has keep
    /// answering, a new connection hangs in its login.
    fn freeze_postmaster(&self, frozen: bool) {
        // SAFETY: kill(2) with the pid of a postmaster this test started.
        unsafe { libc::kill(self.postmaster(), if frozen { libc::SIGSTOP } else { libc::SIGCONT }) };
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            self.freeze_postmaster(false);
        }
        let _ = as_owner(&pg_tool("pg_ctl")).args(["-w", "-m", "immediate", "-D"]).arg(&self.data).arg("stop").output();
        let _ = self.data.parent().map(std::fs::remove_dir_all);
    }
}

fn admin_state(admin_port: u16) -> Value {
    let (_, _, body) = http(admin_port, "GET", "/ready", &[], None);
    serde_json::from_str(&body).unwrap()
}

fn replica_state(admin_port: u16) -> String {
    admin_state(admin_port)["checks"]["replicas"][0]["state"].as_str().unwrap_or_default().to_owned()
}

// ---- a hot standby

/// Fixtures: which server answered, and what the caller's cart holds there.
const REPLICA_FIXTURES: &str = "
    CREATE FUNCTION served_by_standby() RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT pg_is_in_recovery() $$;
    CREATE FUNCTION cart_as_seen() RETURNS json LANGUAGE sql STABLE
        AS $$ SELECT json_build_object('standby', pg_is_in_recovery(), 'lines', (SELECT count(*) FROM cart)) $$;
    GRANT EXECUTE ON FUNCTION served_by_standby(), cart_as_seen() TO anon, authenticated;";

fn proxy_with_standby(db_uri: &str, standby: &Standby, db: &str, max_lag: u32) -> (Running, u16, u16) {
    let admin = free_port();
    let (running, port) = start_proxy(&format!(
        "db-uri = \"{db_uri}\"\ndb-anon-role = \"anon\"\njwt-secret = \"{SECRET}\"\nadmin-server-port = {admin}\n\
         db-replica-uris = \"postgres://authenticator@127.0.0.1:{}/{db}\"\ndb-replica-max-lag = {max_lag}",
        standby.port
    ));
    wait_until("the standby to serve reads", Duration::from_secs(15), || replica_state(admin) == "serving");
    (running, port, admin)
}

#[test]
fn reads_go_to_a_hot_standby_writes_to_the_primary_and_a_stopped_standby_costs_no_request() {
    let _serial = serial();
    const DB: &str = "pg_clerk_scale";
    let db_uri = fresh_api_database(DB);
    admin_execute(DB, REPLICA_FIXTURES);
    let standby = Standby::create("standby-replica");
    let (_proxy, port, admin) = proxy_with_standby(&db_uri, &standby, DB, 30);
    // db-uri naming the standby: not ready, every write would fail.
    let misplaced = free_port();
    let (_misplaced, _) = start_proxy(&format!(
        "db-uri = \"postgres://authenticator@127.0.0.1:{}/{DB}\"\ndb-anon-role = \"anon\"\njwt-secret = \"{SECRET}\"\nadmin-server-port = {misplaced}",
        standby.port
    ));
    let ready = admin_state(misplaced);
    assert_eq!((&ready["status"], &ready["failed"]), (&json!("unavailable"), &json!(["database"])), "{ready}");
    assert!(ready["checks"]["database"]["error"].as_str().unwrap_or_default().starts_with("db-uri is a standby"), "{ready}");
    let reader = token("user_scaleReader", false);

    // Reads on the standby, writes (and POST calls) on the primary.
    for _ in 0..4 {
        assert_eq!(call(port, "GET", "/rpc/served_by_standby", None, &[], None).2, json!(true));
        assert_eq!(call(port, "HEAD", "/rpc/served_by_standby", None, &[], None).0, 200);
    }
    assert_eq!(call(port, "POST", "/rpc/served_by_standby", None, &[], Some(&json!({}))).2, json!(false));
    let ready = admin_state(admin);
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["replicas"][0]["replica"], format!("127.0.0.1:{}", standby.port));
    assert!(ready["checks"]["replicas"][0]["lag_ms"].as_u64().is_some(), "{ready}");

    // Read-your-writes: replay paused, so the standby cannot have the write.
    standby.pause_replay(DB);
    let (status, head, rows) = call(
        port,
        "POST",
        "/cart",
        Some(&reader),
        &[("Prefer", "return=representation"), ("Origin", "https://shop.example")],
        Some(&json!({"product_id": 1, "quantity": 2})),
    );
    assert_eq!(status, 201, "{rows}");
    let exposed = head_value(&head, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.ends_with(", Clerk-Read-After"), "a page may read it: {exposed}");
    let after =
        head_value(&head, "clerk-read-after").unwrap_or_else(|| panic!("a write's answer names its WAL position: {head}")).to_owned();
    let seen = |headers: &[(&str, &str)]| call(port, "GET", "/rpc/cart_as_seen", Some(&reader), headers, None).2;
    assert_eq!(seen(&[]), json!({"standby": true, "lines": 0}), "without the header: the standby, which has not replayed it");
    assert_eq!(seen(&[("Clerk-Read-After", &after)]), json!({"standby": false, "lines": 1}), "with it: the primary");
    standby.resume_replay(DB);
    wait_until("the standby to serve the read-after read once replayed", Duration::from_secs(10), || {
        seen(&[("Clerk-Read-After", &after)]) == json!({"standby": true, "lines": 1})
    });
    let (status, _, error) = call(port, "GET", "/rpc/cart_as_seen", Some(&reader), &[("Clerk-Read-After", "yesterday")], None);
    assert_eq!((status, &error["code"]), (400, &json!("PGRST100")), "{error}");
    // Only what may have written says where the WAL was (it tells the
    // cluster's write activity): not reads, not calls of STABLE functions.
    assert!(head_value(&call(port, "GET", "/cart", Some(&reader), &[], None).1, "clerk-read-after").is_none());
    let (status, head, _) = call(port, "POST", "/rpc/cart_as_seen", Some(&reader), &[], Some(&json!({})));
    assert_eq!(status, 200);
    assert!(head_value(&head, "clerk-read-after").is_none(), "{head}");
    // Anonymous requests have no writes to wait for: the header does not steer them to the primary.
    let (_, _, by_standby) = call(port, "GET", "/rpc/served_by_standby", None, &[("Clerk-Read-After", "FFFFFFFF/FFFFFFFF")], None);
    assert_eq!(by_standby, json!(true));
    // A committed write whose WAL position cannot be read is still answered as committed.
    admin_execute(DB, "REVOKE EXECUTE ON FUNCTION pg_current_wal_insert_lsn() FROM PUBLIC");
    let (status, head, rows) =
        call(port, "POST", "/cart", Some(&reader), &[("Prefer", "return=representation")], Some(&json!({"product_id": 3})));
    admin_execute(DB, "GRANT EXECUTE ON FUNCTION pg_current_wal_insert_lsn() TO PUBLIC");
    assert_eq!((status, rows[0]["product_id"].as_i64()), (201, Some(3)), "{rows}");
    assert!(head_value(&head, "clerk-read-after").is_none(), "{head}");

    // A lagging standby is skipped: a proxy allowing 1 s of lag.
    let (_strict, strict_port, strict_admin) = proxy_with_standby(&db_uri, &standby, DB, 1);
    standby.pause_replay(DB);
    let (status, _, _) = call(strict_port, "POST", "/cart", Some(&reader), &[], Some(&json!({"product_id": 2})));
    assert_eq!(status, 201);
    wait_until("the standby to read as lagging", Duration::from_secs(10), || replica_state(strict_admin) == "lagging");
    assert_eq!(call(strict_port, "GET", "/rpc/served_by_standby", None, &[], None).2, json!(false));
    let metrics = http(strict_admin, "GET", "/metrics", &[], None).2;
    assert!(metrics.contains(&format!("clerk_proxy_replica_serving{{replica=\"127.0.0.1:{}\"}} 0\n", standby.port)), "{metrics}");
    standby.resume_replay(DB);
    wait_until("the caught-up standby to serve again", Duration::from_secs(10), || {
        call(strict_port, "GET", "/rpc/served_by_standby", None, &[], None).2 == json!(true)
    });

    // The standby stopped under load, then started again: no request fails,
    // none waits 2 s, and reads come back to the standby.
    let answers = Mutex::new(Vec::new());
    let slowest = Mutex::new(Duration::ZERO);
    let (calls, failures) = under_load(
        8,
        Duration::from_secs(9),
        |_, _| {
            let started = Instant::now();
            let (status, _, body) = call(port, "GET", "/rpc/served_by_standby", None, &[], None);
            let took = started.elapsed();
            let mut s = slowest.lock().unwrap();
            *s = (*s).max(took);
            answers.lock().unwrap().push((Instant::now(), body.clone()));
            if status == 200 {
                Ok(())
            } else {
                Err(format!("{status}: {body}"))
            }
        },
        || {
            std::thread::sleep(Duration::from_secs(2));
            standby.stop();
            std::thread::sleep(Duration::from_secs(3));
            standby.start();
        },
    );
    assert!(
        failures.is_empty(),
        "{} of {calls} reads failed while the standby stopped: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let answers = answers.into_inner().unwrap();
    let by_standby: Vec<bool> = answers.iter().map(|(_, b)| *b == json!(true)).collect();
    let first_primary = by_standby.iter().position(|s| !s).expect("the primary answered while the standby was down");
    assert!(first_primary > 0, "the standby answered before it stopped");
    assert!(by_standby.last() == Some(&true), "reads went back to the standby once it returned");
    assert!(*slowest.lock().unwrap() < Duration::from_secs(2), "no read waited for the stopped standby: {:?}", slowest.lock().unwrap());
    let metrics = http(admin, "GET", "/metrics", &[], None).2;
    let sample = |name: &str| metrics.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok()).unwrap_or(0.0);
    assert!(sample("clerk_proxy_replica_reads_total") > 0.0, "{metrics}");

    // A standby that answers on the sessions it has but can take no new
    // one (its postmaster hangs): the pool's sessions ended, the proxy's
    // new connection gives up after 2 s, the primary answers, and the
    // standby stays out (its next check needs a new connection too)
    // until the postmaster runs again.
    wait_until("the standby to serve again", Duration::from_secs(15), || replica_state(admin) == "serving");
    standby.query(DB, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'authenticator' AND query NOT LIKE 'SELECT pg_is_in_recovery()%'");
    standby.freeze_postmaster(true);
    let started = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..10 {
        let one = Instant::now();
        let (status, _, body) = call(port, "GET", "/rpc/served_by_standby", None, &[], None);
        answers.push((status, body, one.elapsed()));
    }
    let total = started.elapsed();
    standby.freeze_postmaster(false);
    assert!(answers.iter().all(|(status, body, _)| *status == 200 && *body == json!(false)), "{answers:?}");
    assert!(answers.iter().all(|(_, _, took)| *took < Duration::from_secs(3)), "no read waits for a hung standby past 2 s: {answers:?}");
    assert!(total < Duration::from_secs(6), "only the first read waited: {total:?} for 10");
    wait_until("the thawed standby to serve reads again", Duration::from_secs(15), || {
        call(port, "GET", "/rpc/served_by_standby", None, &[], None).2 == json!(true)
    });
}

// ---- PgBouncer in transaction mode

const BOUNCER_USERS: usize = 14;
const BOUNCER_ORDERS_EACH: usize = 7;

/// A server this test started (PgBouncer, HAProxy) on 127.0.0.1: killed,
/// then its files removed, when dropped.
struct Daemon {
    port: u16,
    dir: PathBuf,
    _child: Child,
}

impl Daemon {
    fn spawn(what: &str, dir: PathBuf, port: u16, command: &mut Command) -> Daemon {
        let child = Child(command.spawn().unwrap_or_else(|e| panic!("{what} (installed by make test): {e}")));
        wait_until(&format!("{what} to listen"), Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Daemon { port, dir, _child: child }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PgBouncer in transaction mode in front of the test cluster, with a
/// server pool of `pool_size` connections per database and user.
fn start_pgbouncer(db: &str, pool_size: u32) -> Daemon {
    let dir = work_dir("pgbouncer");
    let port = free_port();
    std::fs::write(dir.join("userlist.txt"), "\"authenticator\" \"\"\n\"postgres\" \"\"\n").unwrap();
    let conf = dir.join("pgbouncer.ini");
    std::fs::write(
            &conf,
            format!(
                "[databases]\n{db} = host=127.0.0.1 port={} dbname={db}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\npool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n\
                 ignore_startup_parameters = extra_float_digits,options\nlogfile = {}\n",
                primary_port(),
                dir.join("userlist.txt").display(),
                dir.join("pgbouncer.log").display()
            ),
        )
        .unwrap();
    if is_root() {
        Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap();
    }
    // pgbouncer refuses root; -u drops to postgres (and the child stays pgbouncer itself).
    let mut command = Command::new("pgbouncer");
    if is_root() {
        command.args(["-u", "postgres"]);
    }
    Daemon::spawn("pgbouncer", dir, port, command.arg("-q").arg(&conf))
}

/// Fixtures: what each transaction runs as, and many users' orders.
const BOUNCER_FIXTURES: &str = "
    CREATE FUNCTION whoami() RETURNS json LANGUAGE sql STABLE AS $$
      SELECT json_build_object('role', current_user, 'user', current_clerk_user(),
                               'claims_sub', current_setting('request.jwt.claims', true)::json->>'sub',
                               'path', current_setting('request.path', true)) $$;
    GRANT EXECUTE ON FUNCTION whoami() TO anon, authenticated, clerk_staff;
    GRANT EXECUTE ON FUNCTION clerk_authenticate(text) TO authenticator;";

fn bouncer_user(i: usize) -> String {
    format!("user_bouncer{i:02}")
}

#[test]
fn through_pgbouncer_in_transaction_mode_no_request_inherits_another_ones_role_claims_or_rows() {
    let _serial = serial();
    const DB: &str = "pg_clerk_bouncer";
    fresh_api_database(DB);
    admin_execute(DB, BOUNCER_FIXTURES);
    admin_execute(
        DB,
        &format!(
            "INSERT INTO orders (order_number, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status)
             SELECT 'ORD-B-' || u || '-' || k, ('user_bouncer' || lpad(u::text, 2, '0'))::clerk_user_id, 'N', 'n@example.com', '{{}}', 10, 10, 'confirmed'
               FROM generate_series(0, {}) u, generate_series(1, {BOUNCER_ORDERS_EACH}) k;
             ALTER DATABASE {DB} SET pg_clerk.jwks = '{}';",
            BOUNCER_USERS - 1,
            JWKS.replace('\'', "''")
        ),
    );
    let all_orders: i64 = admin_query_in(DB, "SELECT count(*) FROM orders")[0].get(0);
    let bouncer = start_pgbouncer(DB, 3);
    let admin = free_port();
    let (_proxy, port) = start_proxy(&format!(
        "db-uri = \"postgres://authenticator@127.0.0.1:{}/{DB}\"\ndb-prepared-statements = false\ndb-pool = 16\n\
         db-anon-role = \"anon\"\ndb-staff-role = \"clerk_staff\"\njwt-secret = \"{SECRET}\"\ndb-statement-timeout = 7000\nadmin-server-port = {admin}",
        bouncer.port
    ));
    // 14 customers, 2 employees (orders:read: every order) and anonymous.
    let users: Vec<(String, bool, String)> = (0..BOUNCER_USERS + 2)
        .map(|i| {
            let staff = i >= BOUNCER_USERS;
            let id = bouncer_user(i);
            (id.clone(), staff, token(&id, staff))
        })
        .collect();
    let server_connections = || -> i64 {
        admin_query_in(DB, &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}' AND usename = 'authenticator'"))[0].get(0)
    };
    let most_server_connections = AtomicU64::new(0);
    let verified_checks = AtomicU64::new(0);
    let (calls, failures) = under_load(
        users.len() + 3,
        Duration::from_secs(10),
        |t, i| {
            if t == users.len() {
                // Anonymous: never anyone's identity.
                let (status, _, me) = call(port, "GET", "/rpc/whoami", None, &[], None);
                let expected = json!({"role": "anon", "user": null, "claims_sub": null, "path": "/rpc/whoami"});
                return if status == 200 && me == expected { Ok(()) } else { Err(format!("anonymous saw {status} {me}")) };
            }
            if t > users.len() {
                return verified_transactions(bouncer.port, DB, t, i, &verified_checks);
            }
            let (id, staff, token) = &users[t];
            let role = if *staff { "clerk_staff" } else { "authenticated" };
            let (status, _, me) = call(port, "GET", "/rpc/whoami", Some(token), &[], None);
            let expected = json!({"role": role, "user": id, "claims_sub": id, "path": "/rpc/whoami"});
            if status != 200 || me != expected {
                return Err(format!("{id} saw {status} {me}"));
            }
            let (status, _, rows) = call(port, "GET", "/orders?select=user_id", Some(token), &[], None);
            let rows = rows.as_array().cloned().unwrap_or_default();
            let foreign = rows.iter().filter(|r| r["user_id"] != json!(id)).count();
            match (*staff, status) {
                (false, 200) if foreign == 0 && rows.len() == BOUNCER_ORDERS_EACH => {}
                (true, 200) if rows.len() as i64 == all_orders => {}
                _ => return Err(format!("{id}: {status}, {} rows, {foreign} of others", rows.len())),
            }
            if !staff && i % 3 == 0 {
                // A write and its undo, each answered with the caller's own row.
                let line = json!({"product_id": 1 + (i % 5), "quantity": 1});
                let (status, _, added) = call(port, "POST", "/cart", Some(token), &[("Prefer", "return=representation")], Some(&line));
                let cart_id = added[0]["cart_id"].as_i64().unwrap_or_default();
                if status != 201 || added[0]["user_id"] != json!(id) {
                    return Err(format!("{id}: cart insert {status} {added}"));
                }
                let (status, _, gone) =
                    call(port, "DELETE", &format!("/cart?cart_id=eq.{cart_id}"), Some(token), &[("Prefer", "return=representation")], None);
                if status != 200 || gone.as_array().map(Vec::len) != Some(1) {
                    return Err(format!("{id}: cart delete {status} {gone}"));
                }
            }
            Ok(())
        },
        || {
            for _ in 0..16 {
                std::thread::sleep(Duration::from_millis(500));
                most_server_connections.fetch_max(server_connections() as u64, Ordering::Relaxed);
            }
        },
    );
    assert!(failures.is_empty(), "{} of {calls} failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    assert!(calls > 300, "only {calls} calls in 10 s");
    assert!(verified_checks.load(Ordering::Relaxed) > 20, "verified-mode transactions ran");
    // The proxy's 16 connections shared PgBouncer's 3 (and 3 for postgres).
    let most = most_server_connections.load(Ordering::Relaxed);
    assert!((1..=3).contains(&most), "{most} server connections for authenticator behind a pool of 3");
    let opened = pg_clerk_e2e::metric_sample(admin, "clerk_proxy_db_connections_opened_total").unwrap();
    assert!(opened > 3.0, "the proxy opened {opened} connections to PgBouncer");
}

/// Verified mode through the same pooler, as an app using
/// `clerk_authenticate` directly: a transaction's verified identity ends
/// with it, whatever server connection the next transaction gets.
fn verified_transactions(port: u16, db: &str, thread: usize, i: u64, checks: &AtomicU64) -> Result<(), String> {
    let user = format!("user_verified{thread}x{i}");
    let token = sign(&json!({"sub": user, "sid": "sess_v", "iat": now() - 5, "nbf": now() - 5, "exp": now() + 600}));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dsn = format!("host=127.0.0.1 port={port} user=postgres dbname={db}");
        let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let verified = client
            .simple_query(&format!(
                "BEGIN; SET LOCAL pg_clerk.require_verified = on; SELECT clerk_authenticate('{token}'); SELECT current_clerk_user()::text; COMMIT"
            ))
            .await
            .map_err(|e| e.to_string())?;
        let seen: Vec<String> = verified
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect();
        if seen != [user.clone(), user.clone()] {
            return Err(format!("verified {user}, saw {seen:?}"));
        }
        // Next transaction, maybe on another server connection: nobody, even with hand-set claims.
        let after = client
            .simple_query(&format!(
                "BEGIN; SET LOCAL pg_clerk.require_verified = on; SELECT set_config('request.jwt.claims', '{{\"sub\":\"{user}\"}}', true);
                 SELECT coalesce(current_clerk_user()::text, 'nobody'), current_setting('pg_clerk.verified_claims', true); COMMIT"
            ))
            .await
            .map_err(|e| e.to_string())?;
        let rows: Vec<(String, String)> = after
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) if r.len() == 2 => Some((r.get(0)?.to_owned(), r.get(1).unwrap_or("").to_owned())),
                _ => None,
            })
            .collect();
        if rows != [("nobody".to_owned(), String::new())] {
            return Err(format!("after {user}'s transaction: {rows:?}"));
        }
        checks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })
}

// ---- three proxies behind HAProxy

/// HAProxy in front of `backends` (API port, admin port): round robin,
/// `/ready` checked every 300 ms, a refused or dropped connection
/// retried on another proxy.
fn start_haproxy(backends: &[(u16, u16)]) -> Daemon {
    let dir = work_dir("haproxy");
    let port = free_port();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, (api, admin))| format!("  server p{i} 127.0.0.1:{api} check port {admin} inter 300ms fall 1 rise 2\n"))
        .collect();
    let conf = dir.join("haproxy.cfg");
    std::fs::write(
            &conf,
            format!(
                "global\n  maxconn 2000\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 20s\n  timeout server 20s\n\
                 retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response\n\n\
                 frontend api\n  bind 127.0.0.1:{port}\n  default_backend proxies\n\n\
                 backend proxies\n  balance roundrobin\n  http-request disable-l7-retry if !METH_GET\n  option httpchk GET /ready\n  http-check expect status 200\n{servers}"
            ),
        )
        .unwrap();
    Daemon::spawn("haproxy", dir, port, Command::new("haproxy").args(["-db", "-q", "-f"]).arg(&conf))
}

#[test]
fn three_proxies_behind_haproxy_one_stopped_under_load_no_request_fails_and_the_sync_delivers_once() {
    let _serial = serial();
    const DB: &str = "pg_clerk_fleet";
    let db_uri = fresh_api_database(DB);
    let clerk = FakeClerk::start();
    let mut fleet: Vec<(Running, u16, u16)> = (0..3)
        .map(|_| {
            let admin = free_port();
            let (running, port) = start_proxy(&format!(
                "db-uri = \"{db_uri}\"\ndb-anon-role = \"anon\"\njwt-secret = \"{SECRET}\"\nadmin-server-port = {admin}\nserver-shutdown-grace = 5\n\
                 clerk-api-url = \"{}\"\nclerk-secret-key = \"sk_test_fleet\"",
                clerk.url
            ));
            (running, port, admin)
        })
        .collect();
    let balancer = start_haproxy(&fleet.iter().map(|(_, api, admin)| (*api, *admin)).collect::<Vec<_>>());
    let alice = token("user_2demoAlice", false);
    wait_until("HAProxy to see the three proxies ready", Duration::from_secs(10), || {
        call(balancer.port, "GET", "/orders?select=user_id", Some(&alice), &[], None).0 == 200
    });
    let buyers: Vec<String> = (0..30).map(|i| format!("user_fleet{i:02}")).collect();
    let (calls, failures) = under_load(
        12,
        Duration::from_secs(8),
        |t, i| {
            let (status, _, body) = if t % 3 == 0 {
                call(balancer.port, "GET", "/orders?select=user_id", Some(&alice), &[], None)
            } else {
                call(balancer.port, "GET", &format!("/products?select=product_id&limit={}", 1 + i % 5), None, &[], None)
            };
            match status {
                200 if t % 3 != 0 || body.as_array().is_some_and(|rows| rows.iter().all(|r| r["user_id"] == "user_2demoAlice")) => Ok(()),
                _ => Err(format!("{status}: {body}")),
            }
        },
        || {
            // Paid orders for the sync workers of all three to deliver,
            // while the three run.
            for user in &buyers {
                admin_execute(
                    DB,
                    &format!(
                        "INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status)
                         VALUES ('{user}', 'F', 'f@example.com', '{{}}', 20, 20, 'confirmed', 'paid')"
                    ),
                );
            }
            wait_until("every buyer's metadata delivered", Duration::from_secs(30), || {
                admin_query_in(
                    DB,
                    "SELECT count(*) FROM clerk_metadata_outbox WHERE state = 'delivered' AND user_id::text LIKE 'user_fleet%'",
                )[0]
                .get::<_, i64>(0)
                    == buyers.len() as i64
            });
            std::thread::sleep(Duration::from_secs(1));
            let served = pg_clerk_e2e::metric_sample(fleet[1].2, "clerk_proxy_http_requests_total{route=\"products\",status=\"200\"}");
            assert!(served.unwrap_or(0.0) > 0.0, "the proxy about to stop had its share of the load");
            // SAFETY: kill(2) with the pid of a proxy we started.
            unsafe { libc::kill(fleet[1].0 .0.id() as libc::pid_t, libc::SIGTERM) };
        },
    );
    assert!(failures.is_empty(), "{} of {calls} requests failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    assert!(calls > 200, "only {calls} requests in 8 s");
    let stopped = fleet[1].0 .0.wait().unwrap();
    assert!(stopped.success(), "the proxy stopped by SIGTERM exited cleanly: {stopped}");
    for (_, _, admin) in [&fleet[0], &fleet[2]] {
        let served =
            pg_clerk_e2e::metric_sample(*admin, "clerk_proxy_http_requests_total{route=\"products\",status=\"200\"}").unwrap_or(0.0);
        assert!(served > 0.0, "each proxy left took its share");
    }
    // Every paid order's metadata reached Clerk exactly once, whichever worker took it.
    for user in &buyers {
        assert_eq!(clerk.requests_for(user).len(), 1, "{user}'s metadata was sent once");
    }
    fleet.clear();
}
