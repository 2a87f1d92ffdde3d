//! Stage 5: the database. A pool of connections (as `authenticator`),
//! driven by the request threads' runtime, and the per-request transaction:
//! BEGIN; role and request.* settings; the statement; COMMIT — sent
//! pipelined, so the set-up costs no extra round trip.

use crate::error::ApiError;
use crate::metrics::{self, PoolStats};
use crate::schema::{self, SchemaCache, Schemas};
use crate::sql::Statement;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{CancelToken, Client, NoTls};

/// What the transaction exposes to SQL as `request.*` settings.
pub struct RequestContext<'a> {
    pub role: &'a str,
    /// JSON text of the claims, as PostgREST sets `request.jwt.claims`:
    /// the verified claims with the `role` the request runs as, or
    /// `{"role":"<anon role>"}`.
    pub claims: &'a str,
    /// No token: database errors of privilege answer 401, not 403.
    pub anonymous: bool,
    /// The request's schema, then `db-extra-search-path`, as PostgREST
    /// sets `search_path` (for functions that name tables unqualified);
    /// empty: the login role's.
    pub search_path: &'a str,
    /// `Prefer: timezone=…` (a known time zone); empty: the session's.
    pub timezone: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// JSON objects, names lower-cased.
    pub headers: &'a str,
    pub cookies: &'a str,
    /// The role's own settings (`ALTER ROLE … SET`), applied last.
    pub role_settings: Option<&'a schema::RoleSettings>,
    /// An API request: `db-pre-request` runs first (not for the proxy's own work).
    pub api: bool,
}

impl<'a> RequestContext<'a> {
    /// The proxy's own work (webhooks, metrics) as `role`: no claims, no
    /// request headers, no `db-pre-request`.
    pub fn own(role: &'a str, method: &'a str, path: &'a str, search_path: &'a str) -> RequestContext<'a> {
        RequestContext {
            role,
            claims: "",
            method,
            path,
            headers: "{}",
            cookies: "{}",
            role_settings: None,
            anonymous: false,
            search_path,
            timezone: "",
            api: false,
        }
    }
}

pub struct Pool {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    options: PoolOptions,
    /// A connection of its own for readiness checks, so that probes
    /// neither take pooled connections nor fail while the pool is busy.
    probe: tokio::sync::Mutex<Option<Client>>,
    /// Drives the start-up schema read, the schema listener and the
    /// metadata sync.
    runtime: BackgroundRuntime,
    /// The cancel keys of the connections lent to requests, by connection
    /// id, for `cancel_lent` at the end of the shutdown grace period.
    lent: Mutex<HashMap<u64, Arc<CancelToken>>>,
    next_conn_id: AtomicU64,
    /// Set by `cancel_lent`: a cancelled statement then answers 503.
    cancelling: AtomicBool,
    /// `setup_sql(options)`.
    setup: String,
}

/// A runtime that may be dropped anywhere: the pool goes with the last
/// request task that holds it, which at shutdown can be a worker of
/// Pingora's runtime, where a plain Runtime's drop panics (it blocks).
struct BackgroundRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for BackgroundRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("present until drop")
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The configuration keys that shape the pool and each transaction.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// `db-pool`: connections at most.
    pub size: u32,
    /// `db-pool-acquisition-timeout`: how long a request waits for a free
    /// connection before a 503 `PGRST003`.
    pub acquisition_timeout: Duration,
    /// `db-statement-timeout`: each request's `statement_timeout`; None
    /// leaves the server's (or role's) setting alone.
    pub statement_timeout: Option<Duration>,
    /// `db-prepared-statements`
    pub prepared_statements: bool,
    /// `db-jit`: leave PostgreSQL's JIT setting alone (else off per request).
    pub jit: bool,
    /// `db-pre-request`, as the statement that calls it.
    pub pre_request: Option<String>,
    /// Read the WAL position after each committed write (`Outcome::commit_lsn`):
    /// on when reads may go to replicas, for read-your-writes.
    pub commit_lsn: bool,
    /// How long opening a connection may take, login included (the
    /// driver's own `connect_timeout` covers only the TCP connect): the
    /// primary's is `db-pool-acquisition-timeout`, a standby's shorter,
    /// so that the primary serves instead.
    pub connect_timeout: Duration,
}

impl PoolOptions {
    pub fn from_config(c: &crate::config::Config) -> PoolOptions {
        PoolOptions {
            size: c.db_pool,
            acquisition_timeout: Duration::from_secs(c.db_pool_acquisition_timeout_secs),
            statement_timeout: Some(Duration::from_millis(c.db_statement_timeout_ms)).filter(|t| !t.is_zero()),
            prepared_statements: c.db_prepared_statements,
            jit: c.db_jit,
            pre_request: c.db_pre_request.as_deref().map(|name| {
                let function = name.split('.').map(crate::sql::ident).collect::<Vec<_>>().join(".");
                format!("SELECT {function}()")
            }),
            commit_lsn: !c.db_replica_uris.is_empty(),
            connect_timeout: Duration::from_secs(c.db_pool_acquisition_timeout_secs),
        }
    }
}

impl Pool {
    pub fn new(db_uri: &str, options: PoolOptions) -> Result<Pool, String> {
        let config: tokio_postgres::Config = db_uri.parse().map_err(|e| format!("db-uri is not a valid connection string: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("clerk-proxy-db")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the database runtime: {e}"))?;
        Ok(Pool {
            config,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(options.size as usize)),
            setup: setup_sql(&options),
            options,
            probe: tokio::sync::Mutex::new(None),
            runtime: BackgroundRuntime(Some(runtime)),
            lent: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(0),
            cancelling: AtomicBool::new(false),
        })
    }

    /// Opens a connection whose socket is driven by the calling runtime:
    /// Pingora's, for pooled connections. A query's way out and its answer
    /// then need no wake-up of a thread of another runtime (3 context
    /// switches a request instead of 8, a lower p99; see the README's HTTP
    /// load section). Pingora's runtime stays work-stealing: its no-steal
    /// mode (a single-threaded runtime per thread) measured 15% more CPU a
    /// request, as every client socket stays with the thread that accepted it.
    /// A server that accepts the TCP connection but never finishes the
    /// login (a stopped postmaster) fails it after `connect_timeout`.
    async fn connect(&self) -> Result<Client, String> {
        let timeout = self.options.connect_timeout;
        let (client, connection) = tokio::time::timeout(timeout, self.config.connect(NoTls))
            .await
            .map_err(|_| format!("no connection within {} ms", timeout.as_millis()))?
            .map_err(|e| error_text(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::warn!("database connection closed: {e}");
            }
        });
        Ok(client)
    }

    /// A connection, waiting at most `db-pool-acquisition-timeout` for
    /// one (`wait` false: not at all; for `/metrics`, which must not queue
    /// behind requests).
    async fn get(&self, wait: bool) -> Result<Pooled<'_>, Failure> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if !wait => return Err(ApiError::unavailable("No free database connection", "every pooled connection is in use").into()),
            Err(_) => {
                metrics::count(&metrics::POOL_WAITS);
                let wait = self.options.acquisition_timeout;
                tokio::time::timeout(wait, self.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| {
                        metrics::count(&metrics::POOL_TIMEOUTS);
                        // Every connection busy that long: another server may take it.
                        Failure { error: ApiError::pool_timeout(wait.as_secs()), server_unavailable: true }
                    })?
                    .expect("the semaphore is never closed")
            }
        };
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            std::iter::from_fn(|| idle.pop()).find(|c| !c.client.is_closed())
        };
        let client = match reused {
            Some(c) => c,
            None => {
                let client = self.connect().await.map_err(|e| Failure {
                    error: ApiError::unavailable("Could not connect to the database", &e),
                    server_unavailable: true,
                })?;
                metrics::count(&metrics::DB_CONNECTIONS_OPENED);
                Conn::new(client, self.next_conn_id.fetch_add(1, Ordering::Relaxed))
            }
        };
        {
            // Past the grace period nothing new starts: checked under the
            // lock `cancel_lent` takes, so no connection escapes its cancel.
            let mut lent = self.lent.lock().unwrap_or_else(|p| p.into_inner());
            if self.cancelling.load(Ordering::Relaxed) {
                return Err(ApiError::shutting_down(
                    "the request had not reached the database when server-shutdown-grace ran out; retry it",
                )
                .into());
            }
            lent.insert(client.id, client.cancel.clone());
        }
        Ok(Pooled { client: Some(client), pool: self, clean: false, _permit: permit })
    }

    /// At the end of the shutdown grace period: asks PostgreSQL to cancel
    /// the statement running on each connection lent to a request. A cut
    /// write then fails, and the COMMIT pipelined behind it rolls back,
    /// instead of committing after the proxy is gone. Each cancel request
    /// (a connection of its own) gets `timeout`; returns how many were sent.
    pub fn cancel_lent(&self, timeout: Duration) -> usize {
        let keys: Vec<Arc<CancelToken>> = {
            let lent = self.lent.lock().unwrap_or_else(|p| p.into_inner());
            self.cancelling.store(true, Ordering::Relaxed);
            lent.values().cloned().collect()
        };
        self.runtime.block_on(async {
            let sent = keys.iter().map(|key| tokio::time::timeout(timeout, key.cancel_query(NoTls)));
            futures_util::future::join_all(sent).await.into_iter().filter(|r| matches!(r, Ok(Ok(())))).count()
        })
    }

    /// A request's database error as an answer; a statement cancelled by
    /// `cancel_lent` is a 503 that says what happened to it.
    fn api_error(&self, e: &tokio_postgres::Error, anonymous: bool) -> ApiError {
        if self.cancelling.load(Ordering::Relaxed) && e.code() == Some(&SqlState::QUERY_CANCELED) {
            return ApiError::shutting_down(
                "the request was still running when server-shutdown-grace ran out: its statement was cancelled and its transaction rolled back; retry it",
            );
        }
        ApiError::from_db(e, anonymous)
    }

    /// The connection settings and runtime, for workers that keep their own
    /// connection (the metadata sync).
    pub fn config(&self) -> tokio_postgres::Config {
        self.config.clone()
    }

    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Connections lent out and idle, for `/metrics`.
    pub fn stats(&self) -> PoolStats {
        let max = self.options.size as usize;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).len();
        PoolStats { max, in_use: max - self.permits.available_permits().min(max), idle }
    }

    /// Whether the database answers `SELECT 1` within `timeout`, on the
    /// probe connection (opened again when it was closed), for `/ready`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let mut probe = self.probe.lock().await;
        let result = tokio::time::timeout(timeout, self.ping_on(&mut probe))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())));
        if result.is_err() {
            *probe = None;
        }
        result
    }

    /// A probe connection that fails (ended by a restart, or by
    /// `pg_terminate_backend`) is replaced once before the answer counts.
    /// `db-uri` on a standby is not ready: every write would fail.
    async fn ping_on(&self, probe: &mut Option<Client>) -> Result<(), String> {
        if let Some(client) = probe.as_ref().filter(|c| !c.is_closed()) {
            if let Ok(recovering) = in_recovery(client).await {
                return writable(recovering);
            }
        }
        let client = self.connect().await.map_err(|e| format!("cannot connect: {e}"))?;
        let recovering = in_recovery(&client).await?;
        *probe = Some(client);
        writable(recovering)
    }

    /// Which of `roles` are superusers or bypass row-level security (at
    /// start-up: a token must never run as one).
    pub fn privileged_roles(&self, roles: &[String]) -> Result<Vec<String>, String> {
        self.runtime.block_on(async {
            let client = self.connect().await.map_err(|e| format!("cannot connect with db-uri: {e}"))?;
            let rows = client
                .query_typed(
                    "SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) AND (rolsuper OR rolbypassrls) ORDER BY 1",
                    &[(&roles, Type::TEXT_ARRAY)],
                )
                .await
                .map_err(|e| format!("cannot read the roles: {}", error_text(&e)))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Reads the schema cache (at start-up, before serving), on a
    /// connection of its own: the pool's are opened by the request threads.
    pub fn load_schema(&self, schemas: &[String]) -> Result<Schemas, String> {
        self.runtime.block_on(async {
            let client = self.connect().await.map_err(|e| format!("cannot connect with db-uri: {e}"))?;
            read_schema(&client, schemas).await
        })
    }

    /// Keeps a connection that `LISTEN`s on `pgrst`: `NOTIFY pgrst,
    /// 'reload schema'` (or an empty payload, as PostgREST accepts) reads
    /// the schema again and hands it to `reloaded`. If the connection drops
    /// it reconnects and reloads once, since a notice may have been missed.
    pub fn watch_schema(&self, schemas: Vec<String>, reloaded: impl Fn(Schemas) + Send + Sync + 'static) {
        let config = self.config.clone();
        self.runtime.spawn(async move {
            let mut first = true;
            loop {
                if let Err(e) = listen_once(&config, &schemas, &reloaded, !first).await {
                    log::warn!("schema reload listener: {e}; reconnecting in 1 s");
                }
                first = false;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Runs `statement` in one transaction carrying the request's identity.
    pub async fn run(&self, ctx: &RequestContext<'_>, read_only: bool, statement: &Statement) -> Result<Outcome, ApiError> {
        self.run_and(ctx, read_only, statement, Finish::Commit).await
    }

    /// `run`, ending the transaction as `finish` says.
    pub async fn run_and(
        &self,
        ctx: &RequestContext<'_>,
        read_only: bool,
        statement: &Statement,
        finish: Finish,
    ) -> Result<Outcome, ApiError> {
        self.attempt(ctx, read_only, statement, finish).await.map_err(|f| f.error)
    }

    /// `run_and`, telling apart a server that could not take the request
    /// (which another server may answer) from an answer.
    pub async fn attempt(
        &self,
        ctx: &RequestContext<'_>,
        read_only: bool,
        statement: &Statement,
        finish: Finish,
    ) -> Result<Outcome, Failure> {
        let conn = self.get(true).await?;
        self.run_on(conn, ctx, read_only, statement, finish).await
    }

    /// `run`, only if a connection is free right now (else 503 at once).
    pub async fn run_if_free(&self, ctx: &RequestContext<'_>, read_only: bool, statement: &Statement) -> Result<Outcome, ApiError> {
        let conn = self.get(false).await.map_err(|f| f.error)?;
        self.run_on(conn, ctx, read_only, statement, Finish::Commit).await.map_err(|f| f.error)
    }

    async fn run_on(
        &self,
        mut conn: Pooled<'_>,
        ctx: &RequestContext<'_>,
        read_only: bool,
        statement: &Statement,
        finish: Finish,
    ) -> Result<Outcome, Failure> {
        let begin = if read_only { "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY" } else { "BEGIN ISOLATION LEVEL READ COMMITTED" };
        let setup = self.setup.as_str();
        let timeout_ms = self.options.statement_timeout.map(|t| t.as_millis().to_string()).unwrap_or_default();
        let role_settings = ctx.role_settings.map_or("{}", |s| s.json.as_str());
        let setup_params: [&(dyn ToSql + Sync); 10] = [
            &ctx.role,
            &ctx.claims,
            &ctx.method,
            &ctx.path,
            &ctx.headers,
            &ctx.cookies,
            &role_settings,
            &ctx.search_path,
            &ctx.timezone,
            &timeout_ms,
        ];
        let setup_params = &setup_params[..if self.options.statement_timeout.is_some() { 10 } else { 9 }];
        // The role's statement_timeout, if it sets one, replaces ours.
        let statement_timeout = ctx.role_settings.and_then(|s| s.statement_timeout).unwrap_or(self.options.statement_timeout);
        let params: Vec<&(dyn ToSql + Sync)> = statement.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        // Prepared once per connection (a round trip the first time only),
        // so Postgres neither parses nor plans them again.
        let anonymous = ctx.anonymous;
        let (setup_prepared, statement_prepared) = if self.options.prepared_statements {
            let pooled = conn.client.as_mut().expect("present until drop");
            (pooled.prepare(setup, setup_params.len()).await, pooled.prepare(&statement.sql, params.len()).await)
        } else {
            (None, None)
        };
        let client = &conn.client.as_ref().expect("present until drop").client;
        let pre_request = async {
            match self.options.pre_request.as_deref().filter(|_| ctx.api) {
                Some(sql) => client.batch_execute(sql).await,
                None => Ok(()),
            }
        };
        let explain = async {
            match &statement.explain {
                Some((sql, n)) => query(client, None, sql, &params[..*n]).await.map(Some),
                None => Ok(None),
            }
        };
        // Pipelined: everything is sent before the first answer is read. If
        // the statement fails, COMMIT ends the aborted transaction as a
        // rollback. `CommitIf` must see the row count first, so it costs
        // one more round trip.
        let end = match finish {
            Finish::Commit => Some("COMMIT"),
            Finish::Rollback => Some("ROLLBACK"),
            Finish::CommitIf(_) => None,
        };
        // The WAL position after a write's commit, for read-your-writes: any
        // replica that has replayed it has the write.
        let lsn_after_commit = self.options.commit_lsn && !read_only;
        let commit_lsn = async {
            match end {
                Some("COMMIT") if lsn_after_commit => query(client, None, CURRENT_LSN_SQL, &[]).await.map(Some),
                _ => Ok(None),
            }
        };
        let pipeline = async {
            tokio::join!(
                client.batch_execute(begin),
                query(client, setup_prepared.as_ref(), setup, setup_params),
                pre_request,
                explain,
                query(client, statement_prepared.as_ref(), &statement.sql, &params),
                async {
                    match end {
                        Some(end) => client.batch_execute(end).await,
                        None => Ok(()),
                    }
                },
                commit_lsn,
            )
        };
        // PostgreSQL checks statement_timeout only where it checks for
        // interrupts (not while compiling a plan, for one): past it and a
        // margin, the proxy cancels the statement itself and answers 504.
        // The connection is then dropped, not reused.
        // If this future is dropped before the answer (the client hung up),
        // the statement is cancelled rather than left to run (and commit).
        let in_flight = CancelOnDrop(Some(conn.client.as_ref().expect("present until drop").cancel.clone()));
        let (begun, set_up, pre_requested, estimate, result, ended, committed_at) = match statement_timeout {
            None => pipeline.await,
            Some(limit) => match tokio::time::timeout(limit + DEADLINE_MARGIN, pipeline).await {
                Ok(done) => done,
                Err(_) => {
                    in_flight.disarm();
                    let cancel = conn.client.as_ref().expect("present until drop").cancel.clone();
                    let _ = tokio::time::timeout(DEADLINE_MARGIN, cancel.cancel_query(NoTls)).await;
                    metrics::count(&metrics::DEADLINE_CANCELS);
                    return Err(ApiError::statement_deadline(limit).into());
                }
            },
        };
        in_flight.disarm();
        let db_error =
            |e: tokio_postgres::Error| Failure { server_unavailable: server_unavailable(&e), error: self.api_error(&e, anonymous) };
        let outcome = (|| {
            begun.map_err(db_error)?;
            set_up.map_err(db_error)?;
            pre_requested.map_err(db_error)?;
            let estimate = estimate.map_err(db_error)?;
            let rows = result.map_err(db_error)?;
            if let Some(json) = statement.plan_json {
                // EXPLAIN's output: one JSON document, or lines of text.
                let body = if json {
                    rows.first().and_then(|r| r.try_get::<_, JsonText>(0).ok()).map(|JsonText(t)| t)
                } else {
                    Some(rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect::<Vec<_>>().join("\n"))
                };
                return Ok(Outcome {
                    body,
                    rows: 0,
                    total: None,
                    planned: None,
                    response_headers: None,
                    response_status: None,
                    commit_lsn: None,
                });
            }
            let row = rows.first().ok_or_else(|| ApiError::internal("the statement returned no row"))?;
            let planned = estimate.as_deref().and_then(planned_rows);
            // API statements end with the `response.headers` and `response.status` a function set.
            let (response_headers, response_status) =
                if row.len() >= 5 { (row.get::<_, Option<String>>(3), row.get::<_, Option<String>>(4)) } else { (None, None) };
            Ok(Outcome {
                body: row.get(0),
                rows: row.get(1),
                total: row.get(2),
                planned,
                response_headers,
                response_status,
                commit_lsn: None,
            })
        })();
        if let Finish::CommitIf(allowed) = finish {
            let rows = outcome.as_ref().map(|o| o.rows as u64).ok();
            let exceeded = allowed.at_most.is_some_and(|max| rows.is_some_and(|r| r > max));
            let surpassed = allowed.within_limit.filter(|limit| rows.is_some_and(|r| r > *limit));
            let not_one = allowed.exactly_one && rows.is_some_and(|r| r != 1);
            let total = outcome.as_ref().ok().and_then(|o| o.total);
            let past_end = allowed.offset_within_total.is_some_and(|offset| total.is_some_and(|t| offset > 0 && offset > t as u64));
            let commit = !(exceeded || surpassed.is_some() || not_one || past_end);
            client.batch_execute(if commit { "COMMIT" } else { "ROLLBACK" }).await.map_err(db_error)?;
            let committed_at = match commit && lsn_after_commit && outcome.is_ok() {
                true => after_commit(query(client, None, CURRENT_LSN_SQL, &[]).await.map(Some)),
                false => None,
            };
            conn.clean = true;
            if let Some(limit) = surpassed {
                let rows = outcome.map(|o| o.rows).unwrap_or_default();
                return Err(ApiError::limit_surpassed(rows, limit).into());
            }
            if exceeded {
                let rows = outcome.map(|o| o.rows).unwrap_or_default();
                return Err(ApiError::max_affected_exceeded(rows).into());
            }
            return outcome.map(|o| Outcome { commit_lsn: committed_at, ..o });
        }
        ended.map_err(db_error)?;
        let committed_at = after_commit(committed_at);
        conn.clean = true;
        outcome.map(|o| Outcome { commit_lsn: committed_at, ..o })
    }
}

/// The request's identity as transaction-local settings, and its limits
/// (one statement, so it costs no extra round trip in the pipeline).
fn setup_sql(options: &PoolOptions) -> String {
    let mut sql = "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), \
                   set_config('request.method', $3, true), set_config('request.path', $4, true), \
                   set_config('request.headers', $5, true), set_config('request.cookies', $6, true), \
                   set_config('search_path', coalesce(nullif($8, ''), current_setting('search_path')), true), \
                   set_config('timezone', coalesce(nullif($9, ''), current_setting('timezone')), true), \
                   set_config('response.headers', '', true), set_config('response.status', '', true)"
        .to_owned();
    if options.statement_timeout.is_some() {
        sql.push_str(", set_config('statement_timeout', $10, true)");
    }
    // Set per transaction, so it holds behind any pooler too.
    if !options.jit {
        sql.push_str(", set_config('jit', 'off', true)");
    }
    // Last, so a role's own statement_timeout (or jit) wins.
    sql.push_str(", (SELECT count(set_config(s.key, s.value, true)) FROM json_each_text($7::json) s)");
    sql
}

/// Armed while a request's statements run: dropped armed (the request's
/// future was dropped because its client went away), it asks PostgreSQL to
/// cancel them, so the work neither runs on nor commits for nobody.
struct CancelOnDrop(Option<Arc<CancelToken>>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let (Some(token), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            metrics::count(&metrics::CLIENT_GONE_CANCELS);
            runtime.spawn(async move {
                let _ = tokio::time::timeout(DEADLINE_MARGIN, token.cancel_query(NoTls)).await;
            });
        }
    }
}

/// How long past `db-statement-timeout` the proxy waits before it cancels
/// a statement itself (and how long it gives the cancel request).
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

async fn in_recovery(client: &Client) -> Result<bool, String> {
    let answer = client.simple_query("SELECT pg_is_in_recovery()").await.map_err(|e| error_text(&e))?;
    Ok(answer.iter().any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("t"))))
}

fn writable(in_recovery: bool) -> Result<(), String> {
    match in_recovery {
        true => Err("db-uri is a standby (in recovery): every write would fail; point db-uri at the primary".into()),
        false => Ok(()),
    }
}

/// An error's text, with the server's message for a database error
/// (whose Display is only "db error").
pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// What a request's transaction may do, and so where it may run
/// (PostgREST's access modes: `docs/references/transactions.rst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// GET and HEAD: READ ONLY, on a standby when one serves reads.
    Read,
    /// POST of a STABLE or IMMUTABLE function: READ ONLY, on the primary
    /// as every POST.
    ReadOnPrimary,
    /// Table writes and POST of a VOLATILE function: READ WRITE, on the primary.
    Write,
}

impl Access {
    pub fn read_only(self) -> bool {
        self != Access::Write
    }
}

/// How a request's transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Commit,
    /// `Prefer: tx=rollback`: run everything, keep nothing.
    Rollback,
    /// Commit only when the rows touched are allowed, else roll back.
    CommitIf(RowsAllowed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowsAllowed {
    /// `Prefer: handling=strict, max-affected=N` (else PGRST124).
    pub at_most: Option<u64>,
    /// A limited update or delete's `limit` (else PGRST110).
    pub within_limit: Option<u64>,
    /// `Accept: application/vnd.pgrst.object+json` on a write (or a
    /// function call that may write): exactly one row, else nothing is kept
    /// (and the answer is 406 PGRST116).
    pub exactly_one: bool,
    /// A counted call's offset: past the last row nothing is kept (and the
    /// answer is 416 PGRST103).
    pub offset_within_total: Option<u64>,
}

/// The planner's row estimate from `EXPLAIN (FORMAT JSON)`.
fn planned_rows(rows: &[tokio_postgres::Row]) -> Option<i64> {
    let JsonText(plan) = rows.first()?.try_get(0).ok()?;
    let plan: serde_json::Value = serde_json::from_str(&plan).ok()?;
    plan.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64().map(|r| r.round() as i64)
}

/// A database error with the server's own message (tokio-postgres's
/// `Display` says only "db error").
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The schema cache of each exposed schema, from the catalog.
async fn read_schema(client: &Client, schemas: &[String]) -> Result<Schemas, String> {
    let relations = client
        .query_typed(schema::RELATIONS_SQL, &[(&schemas, Type::TEXT_ARRAY)])
        .await
        .map_err(|e| format!("cannot read the schema: {}", db_message(&e)))?
        .into_iter()
        .map(|r| schema::ColumnRow {
            schema: r.get(0),
            relation: r.get(1),
            is_table: r.get(7),
            planner_counts_visible: r.get(8),
            row_addresses: r.get(10),
            writable: schema::Writable::from_mask(r.get(9)),
            column: schema::Column {
                name: r.get(2),
                type_sql: r.get(3),
                value_type: r.get(11),
                primary_key: r.get(4),
                nullable: r.get(5),
                has_default: r.get(6),
                computed_by: None,
            },
        });
    let relations = schema::group_columns(relations);
    let functions = client
        .query_typed(schema::FUNCTIONS_SQL, &[(&schemas, Type::TEXT_ARRAY)])
        .await
        .map_err(|e| format!("cannot read the schema: {}", db_message(&e)))?
        .into_iter()
        .map(|r| {
            schema::FunctionRow {
                schema: r.get(0),
                name: r.get(1),
                arg_names: r.get(2),
                arg_types: r.get(3),
                n_defaults: r.get(4),
                returns_set: r.get(5),
                kind: r.get(6),
                volatile: r.get(7),
                relation: r.get(8),
                column_names: r.get(9),
                column_types: r.get(10),
                return_type: r.get(11),
                variadic: r.get(12),
                row_argument_of: r.get(13),
                one_row: r.get(14),
                media_type: r.get(15),
                media_type_binary: r.get(16),
            }
            .into_function()
        })
        .collect::<Vec<_>>();
    let role_settings = client
        .query_typed(schema::ROLE_SETTINGS_SQL, &[])
        .await
        .map_err(|e| format!("cannot read the roles' settings: {}", db_message(&e)))?
        .into_iter()
        .map(|r| schema::RoleSettingRow { role: r.get(0), name: r.get(1), value: r.get(2) })
        .collect::<Vec<_>>();
    let types = client
        .query_typed(schema::TYPES_SQL, &[])
        .await
        .map_err(|e| format!("cannot read the types: {}", db_message(&e)))?
        .into_iter()
        .map(|r| schema::TypeRow { schema: r.get(0), name: r.get(1) })
        .collect::<Vec<_>>();
    let geojson: Option<String> = client
        .query_typed(schema::GEOJSON_SQL, &[])
        .await
        .map_err(|e| format!("cannot look for PostGIS: {}", db_message(&e)))?
        .first()
        .map(|r| r.get(0));
    let timezones: Vec<String> = client
        .query_typed(schema::TIMEZONES_SQL, &[])
        .await
        .map_err(|e| format!("cannot read the time zones: {}", db_message(&e)))?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let mut caches = Vec::new();
    for name in schemas {
        let foreign_keys = client
            .query_typed(schema::FOREIGN_KEYS_SQL, &[(name, Type::TEXT)])
            .await
            .map_err(|e| format!("cannot read the foreign keys: {}", db_message(&e)))?
            .into_iter()
            .map(|r| schema::ForeignKey {
                name: r.get(0),
                table: r.get(1),
                columns: r.get(2),
                referenced_table: r.get(3),
                referenced_columns: r.get(4),
                one_to_one: r.get(5),
            })
            .collect();
        let view_columns = client
            .query_typed(schema::VIEW_COLUMNS_SQL, &[(name, Type::TEXT)])
            .await
            .map_err(|e| format!("cannot read the views' columns: {}", db_message(&e)))?
            .into_iter()
            .map(|r| schema::ViewColumn { view: r.get(0), column: r.get(1), source: r.get(2), source_column: r.get(3) });
        let handlers = client
            .query_typed(schema::MEDIA_HANDLERS_SQL, &[(name, Type::TEXT)])
            .await
            .map_err(|e| format!("cannot read the media type handlers: {}", db_message(&e)))?
            .into_iter()
            .map(|r| schema::MediaHandler {
                aggregate: r.get(0),
                media: schema::MediaType { name: r.get(1), binary: r.get(2) },
                relation: r.get(3),
            })
            .collect();
        // `new` keeps the relations and functions of `name` only.
        let cache = SchemaCache::new(name, relations.clone(), functions.clone(), foreign_keys)
            .with_view_columns(view_columns)
            .with_types(types.clone())
            .with_role_settings(role_settings.clone())
            .with_timezones(timezones.clone())
            .with_geojson(geojson.clone())
            .with_media_handlers(handlers);
        caches.push(cache);
    }
    Ok(Schemas::new(caches))
}

/// One listening connection's life: LISTEN, then reload on each notice.
async fn listen_once(
    config: &tokio_postgres::Config,
    schemas: &[String],
    reloaded: &(impl Fn(Schemas) + Send + Sync),
    reload_now: bool,
) -> Result<(), String> {
    use futures_util::StreamExt;
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    let messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let driver = tokio::spawn(messages.for_each(move |m| {
        if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = m {
            let _ = tx.send(n.payload().to_owned());
        }
        futures_util::future::ready(())
    }));
    client.batch_execute("LISTEN pgrst").await.map_err(|e| e.to_string())?;
    if reload_now {
        reloaded(read_schema(&client, schemas).await?);
    }
    while let Some(payload) = notices.recv().await {
        if payload.is_empty() || payload == "reload schema" {
            reloaded(read_schema(&client, schemas).await?);
            log::info!("schema cache reloaded (NOTIFY pgrst)");
        }
    }
    driver.abort();
    Err("the listening connection closed".into())
}

/// A `json` value's text (its binary format is the text itself).
struct JsonText(String);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(JsonText(std::str::from_utf8(raw)?.to_owned()))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }
}

/// What a statement returned (see `sql`).
pub struct Outcome {
    /// JSON text; None when the client asked for no body.
    pub body: Option<String>,
    pub rows: i64,
    /// Every matching row, when `Prefer: count=exact|estimated` asked.
    pub total: Option<i64>,
    /// The planner's estimate, when `count=planned|estimated` asked.
    pub planned: Option<i64>,
    /// `response.headers` / `response.status` as a function set them.
    pub response_headers: Option<String>,
    pub response_status: Option<String>,
    /// Where the primary's WAL was after this write committed
    /// (`PoolOptions::commit_lsn`).
    pub commit_lsn: Option<Lsn>,
}

/// Why a request's transaction did not give an answer.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    /// The server could not take the request (no connection, shutting
    /// down, the connection lost, a standby cancelling for recovery): a
    /// read-only request may run on another server instead.
    pub server_unavailable: bool,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure { error, server_unavailable: false }
    }
}

/// Errors that say the server, not the request, failed: the connection
/// (class 08, or closed with no answer), shutdown and recovery (57P01–04),
/// and on a standby 40001, its cancellation for a conflict with recovery
/// (requests run READ COMMITTED, where nothing else raises it).
fn server_unavailable(e: &tokio_postgres::Error) -> bool {
    match e.code().map(SqlState::code) {
        None => e.as_db_error().is_none(),
        Some(code) => code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P04" | "40001"),
    }
}

/// A position in the write-ahead log (`pg_lsn`), as PostgreSQL prints it:
/// two hexadecimal halves, `16/B374D848`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl std::str::FromStr for Lsn {
    type Err = ();
    fn from_str(text: &str) -> Result<Lsn, ()> {
        let (high, low) = text.split_once('/').ok_or(())?;
        let half = |h: &str| match h.len() {
            1..=8 if h.bytes().all(|b| b.is_ascii_hexdigit()) => u32::from_str_radix(h, 16).map_err(|_| ()),
            _ => Err(()),
        };
        Ok(Lsn((u64::from(half(high)?) << 32) | u64::from(half(low)?)))
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The primary's WAL insert position: at or past the end of every commit
/// record already written (with `synchronous_commit = off` too).
const CURRENT_LSN_SQL: &str = "SELECT pg_current_wal_insert_lsn()::text";

/// The WAL position read after a commit. It is only a hint for
/// read-your-writes: when it cannot be read (the function revoked, the
/// connection lost after COMMIT's answer) the committed request is still
/// answered as such, without it.
fn after_commit(answer: Result<Option<Vec<tokio_postgres::Row>>, tokio_postgres::Error>) -> Option<Lsn> {
    match answer {
        Ok(rows) => rows?.first()?.try_get::<_, Option<String>>(0).ok()??.parse().ok(),
        Err(e) => {
            log::warn!("the WAL position after a commit could not be read ({}); answered without Clerk-Read-After", error_text(&e));
            None
        }
    }
}

/// A pooled connection and the statements prepared on it.
struct Conn {
    client: Client,
    /// Pool-wide, for `Pool::lent`.
    id: u64,
    cancel: Arc<CancelToken>,
    /// None: preparing it failed (it then runs unprepared, and the error,
    /// if it is the statement's own, comes from that run).
    prepared: HashMap<String, Option<tokio_postgres::Statement>>,
}

/// Distinct statements kept prepared per connection; past this the cache
/// starts over (query shapes vary with the filters a client sends).
const PREPARED_PER_CONNECTION: usize = 256;

impl Conn {
    fn new(client: Client, id: u64) -> Conn {
        let cancel = Arc::new(client.cancel_token());
        Conn { client, id, cancel, prepared: HashMap::new() }
    }

    /// `sql` (with `params` text parameters) prepared on this connection.
    /// It is prepared outside the request's transaction, as the pool's
    /// user; whatever that user may not parse (a schema only the request's
    /// role may use, a statement in error) stays unprepared.
    async fn prepare(&mut self, sql: &str, params: usize) -> Option<tokio_postgres::Statement> {
        if let Some(s) = self.prepared.get(sql) {
            return s.clone();
        }
        let s = self.client.prepare_typed(sql, &vec![Type::TEXT; params]).await.ok();
        if self.prepared.len() >= PREPARED_PER_CONNECTION {
            self.prepared.clear(); // dropping a Statement closes it on the server
        }
        self.prepared.insert(sql.to_owned(), s.clone());
        s
    }
}

/// Runs `sql` with text parameters: the prepared statement when there is
/// one, else parsed and planned for this call only.
async fn query(
    client: &Client,
    prepared: Option<&tokio_postgres::Statement>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    match prepared {
        Some(s) => client.query(s, params).await,
        None => {
            let typed: Vec<(&(dyn ToSql + Sync), Type)> = params.iter().map(|p| (*p, Type::TEXT)).collect();
            client.query_typed(sql, &typed).await
        }
    }
}

/// A connection on loan; it goes back to the pool only if its last
/// transaction completed (a request abandoned mid-way closes it instead).
struct Pooled<'a> {
    client: Option<Conn>,
    pool: &'a Pool,
    clean: bool,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.pool.lent.lock().unwrap_or_else(|p| p.into_inner()).remove(&client.id);
            if self.clean && !client.client.is_closed() {
                self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(client);
            }
        }
    }
}
