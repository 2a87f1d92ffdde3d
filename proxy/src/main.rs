//! The clerk-proxy binary: command line, start-up, and the Pingora glue.
//! The stages live in the library (`src/lib.rs`).

use async_trait::async_trait;
use clerk_proxy::{access_log, api, auth, config, db, edge, error, limits, metrics};
use config::Config;
use http::Response;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::Stream;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch, UnixShutdownSignalWatch};
use pingora_core::services::listening::Service;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
clerk-proxy: Clerk-authenticated, PostgREST-compatible API for PostgreSQL

Usage:
  clerk-proxy --config FILE     run with a PostgREST-style config file
  clerk-proxy FILE              the same (PostgREST's form)
  clerk-proxy                   run from CLERK_PROXY_* / PGRST_* environment variables only
  clerk-proxy --help | --version

Every config key can be set as CLERK_PROXY_<KEY> (e.g. CLERK_PROXY_DB_URI);
see README.md for the keys.";

/// The HTTP application: reads the request off the wire, hands it to `api`
/// (`admin`: the admin listener's routes instead of the API's).
struct ProxyApp {
    state: Arc<api::State>,
    admin: bool,
    /// `server-max-body`.
    max_body: usize,
    /// `server-header-timeout`, `server-body-timeout`.
    header_timeout: Duration,
    body_timeout: Duration,
}

/// Longest request target (path and query) accepted; longer is 414.
const MAX_URI_BYTES: usize = 32 * 1024;
/// Most request headers accepted; more is 431 (Pingora's parser stops at 256).
const MAX_HEADER_COUNT: usize = 100;

/// Pingora's `ServeHttp` loop, with deadlines: the head must arrive within
/// `server-header-timeout` in all (Pingora's own timeout restarts at every
/// read, so a client sending a byte at a time would hold the connection
/// for ever), and what the HTTP layer refuses gets a status, not a reset.
#[async_trait]
impl HttpServerApp for ProxyApp {
    async fn process_new_http(self: &Arc<Self>, mut session: ServerSession, shutdown: &ShutdownWatch) -> Option<ReusedHttpStream> {
        let refused = match tokio::time::timeout(self.header_timeout, session.read_request()).await {
            Ok(Ok(true)) => head_refusal(&session),
            Ok(Ok(false)) => return None, // closed before sending anything
            Ok(Err(e)) if *e.etype() == pingora_core::InvalidHTTPHeader => Some(invalid_head(&e)),
            Ok(Err(_)) => return None, // the connection failed mid-head
            Err(_) => {
                metrics::count(&metrics::HTTP_REFUSED_408);
                Some(error::ApiError::http_limit(
                    http::StatusCode::REQUEST_TIMEOUT,
                    "Request timeout",
                    format!("the request head did not arrive within {} s (server-header-timeout)", self.header_timeout.as_secs()),
                ))
            }
        };
        if let Some(refused) = refused {
            let _ = write_response(&mut session, refused.into_response()).await;
            return None;
        }
        session.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        // None: the client closed the connection before its answer.
        let response = self.response(&mut session).await?;
        write_response(&mut session, response).await.ok()?;
        let persistent_settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(c) => c.map(|s| ReusedHttpStream::from_reusable_stream(s, persistent_settings)),
            Err(e) => {
                log::debug!("cannot finish the response: {e}");
                None
            }
        }
    }
}

/// A head that was read but is refused: too long a URL, too many headers.
fn head_refusal(session: &ServerSession) -> Option<error::ApiError> {
    let head = session.req_header();
    let uri_len = head.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(uri_too_long(uri_len));
    }
    if head.headers.len() > MAX_HEADER_COUNT {
        metrics::count(&metrics::HTTP_REFUSED_431);
        return Some(error::ApiError::http_limit(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
            format!("the request has {} headers; the limit is {MAX_HEADER_COUNT}", head.headers.len()),
        ));
    }
    None
}

/// A head Pingora could not parse: too large or too many headers (431),
/// or not HTTP (400).
fn invalid_head(e: &pingora_core::Error) -> error::ApiError {
    let text = e.to_string();
    log::debug!("invalid request head: {}", text.chars().take(300).collect::<String>());
    if text.contains("larger than") || text.to_ascii_lowercase().contains("too many headers") {
        metrics::count(&metrics::HTTP_REFUSED_431);
        return error::ApiError::http_limit(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
            format!("at most {MAX_HEADER_COUNT} headers and 1 MiB of head"),
        );
    }
    // The http crate takes request targets up to 64 KiB only.
    if text.contains("invalid uri") && text.len() > MAX_URI_BYTES {
        return uri_too_long(text.len());
    }
    if text.contains("invalid uri") {
        return error::ApiError::malformed_http(
            "the URL holds characters that must be percent-encoded (such as > < \" { } | ^ ` and non-ASCII): encode > as %3E, or let curl do it with -G --data-urlencode 'select=…'",
        );
    }
    error::ApiError::malformed_http("the request head is not valid HTTP/1.1")
}

fn uri_too_long(len: usize) -> error::ApiError {
    metrics::count(&metrics::HTTP_REFUSED_414);
    error::ApiError::http_limit(
        http::StatusCode::URI_TOO_LONG,
        "URI too long",
        format!(
            "the request target is about {len} bytes; the limit is {MAX_URI_BYTES} (send long filters in the body of a POST /rpc/ call)"
        ),
    )
}

async fn write_response(session: &mut ServerSession, response: Response<Vec<u8>>) -> pingora_core::Result<()> {
    let (parts, body) = response.into_parts();
    if let Err(e) = session.write_response_header(Box::new(parts.into())).await {
        log::debug!("cannot write the response header: {e}");
        return Err(e);
    }
    if !body.is_empty() {
        if let Err(e) = session.write_response_body(body.into(), true).await {
            log::debug!("cannot write the response body: {e}");
            return Err(e);
        }
    }
    Ok(())
}

impl ProxyApp {
    async fn response(&self, session: &mut ServerSession) -> Option<Response<Vec<u8>>> {
        if !self.admin {
            // The header is read: from now until the answer is written, graceful shutdown waits.
            let _ = IN_FLIGHT.try_with(|counted| {
                if !counted.swap(true, Ordering::Relaxed) {
                    metrics::REQUESTS_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let peer = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let header = session.req_header();
        let forwarded = |name: &str| header.headers.get(name).and_then(|v| v.to_str().ok());
        let client_ip = self.state.options.trusted_proxies.client_ip(peer, forwarded("x-forwarded-for"), forwarded("x-real-ip"));
        let declared: Option<usize> = header.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse().ok());
        let mut req = api::HttpRequest {
            method: header.method.as_str().to_owned(),
            path: edge::api_path(header.uri.path()).to_owned(),
            query: header.uri.query().unwrap_or("").to_owned(),
            headers: header
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: Vec::new(),
            client_ip,
            refused: None,
        };
        let too_large = declared.is_some_and(|n| n > self.max_body);
        let body_deadline = tokio::time::Instant::now() + self.body_timeout;
        if !too_large {
            loop {
                match tokio::time::timeout_at(body_deadline, session.read_request_body()).await {
                    Ok(Ok(Some(chunk))) if req.body.len() + chunk.len() <= self.max_body => req.body.extend_from_slice(&chunk),
                    Ok(Ok(Some(_))) => break,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => {
                        req.refused = Some(error::ApiError::invalid_body("Could not read the request body".into(), Some(e.to_string())));
                        break;
                    }
                    Err(_) => {
                        metrics::count(&metrics::HTTP_REFUSED_408);
                        session.set_keepalive(None);
                        return Some(
                            error::ApiError::http_limit(
                                http::StatusCode::REQUEST_TIMEOUT,
                                "Request timeout",
                                format!("the request body did not arrive within {} s (server-body-timeout)", self.body_timeout.as_secs()),
                            )
                            .into_response(),
                        );
                    }
                }
            }
        }
        if too_large || (req.refused.is_none() && !session.is_body_done()) {
            // Read what the client is still sending (for at most 2 s, kept
            // nowhere), so it gets the 413 rather than a reset connection.
            session.set_total_drain_timeout(Some(Duration::from_secs(2)));
            let _ = session.drain_request_body().await;
            session.set_keepalive(None);
            req.body.clear();
            req.refused = Some(error::ApiError::payload_too_large(self.max_body));
        }
        if self.admin {
            return Some(api::handle_admin(&self.state, &req).await);
        }
        // Dropping the request's future when the client hangs up cancels its
        // statement (db::CancelOnDrop).
        tokio::select! {
            response = api::handle(&self.state, &req) => Some(response),
            () = client_gone(session) => {
                log::debug!("{} {}: the client closed the connection before the answer", req.method, req.path);
                None
            }
        }
    }
}

/// Resolves when the client closes the connection (FIN or reset) while its
/// request is being answered; never otherwise. Bytes of a pipelined next
/// request end keep-alive instead (that request is not answered; the
/// client retries it on a new connection, as HTTP/1.1 allows).
async fn client_gone(session: &mut ServerSession) {
    match session.read_body_or_idle(true).await {
        Err(e) if matches!(e.etype(), pingora_core::ConnectionClosed | pingora_core::ReadError) => {}
        _ => {
            session.set_keepalive(None);
            std::future::pending::<()>().await
        }
    }
}

/// The API listener's door: each connection counted from accept to close
/// against `server-max-connections` and `server-max-connections-per-ip`;
/// one over a cap gets its refusal and is closed before anything is read.
struct ConnectionGate {
    app: Arc<Counted>,
    limits: Arc<limits::ConnectionLimits>,
}

#[async_trait]
impl ServerApp for ConnectionGate {
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let ip = stream.get_socket_digest().and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let _slot = match self.limits.open(ip) {
            Ok(slot) => slot,
            Err(refused) => {
                use tokio::io::AsyncWriteExt;
                let _ = stream.write_all(&raw_response(refused.into_response())).await;
                let _ = stream.shutdown().await;
                return None;
            }
        };
        ServerApp::process_new(&self.app, stream, shutdown).await
    }
}

/// An answer as HTTP/1.1 bytes, closing the connection.
fn raw_response(response: Response<Vec<u8>>) -> Vec<u8> {
    let status = response.status();
    let mut head = format!("HTTP/1.1 {} {}\r\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    for (name, value) in response.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
    }
    head.push_str("connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(response.body());
    bytes
}

tokio::task_local! {
    /// Whether the request on this connection is counted in
    /// `REQUESTS_IN_FLIGHT` (set once its header is read).
    static IN_FLIGHT: Arc<AtomicBool>;
}

/// The API service: `ProxyApp`, with each request counted in flight from
/// its header until its response is written (a connection idle between
/// keep-alive requests is not counted).
struct Counted(Arc<ProxyApp>);

#[async_trait]
impl HttpServerApp for Counted {
    async fn process_new_http(self: &Arc<Self>, session: ServerSession, shutdown: &ShutdownWatch) -> Option<ReusedHttpStream> {
        let guard = InFlightGuard(Arc::new(AtomicBool::new(false)));
        IN_FLIGHT.scope(guard.0.clone(), self.0.process_new_http(session, shutdown)).await
    }
}

struct InFlightGuard(Arc<AtomicBool>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.load(Ordering::Relaxed) {
            metrics::REQUESTS_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Pingora's signal handling (SIGTERM graceful, SIGINT fast, SIGQUIT
/// upgrade), plus: on SIGTERM, exit as soon as no request is in flight
/// instead of always sleeping the whole grace period, and cancel the
/// statements still running when it is over. Pingora stops accepting
/// connections when this returns; its own stop, later, is the fallback.
struct ShutdownWhenDrained {
    grace: Duration,
    state: Arc<api::State>,
}

#[async_trait]
impl ShutdownSignalWatch for ShutdownWhenDrained {
    async fn recv(&self) -> ShutdownSignal {
        let signal = UnixShutdownSignalWatch.recv().await;
        if let ShutdownSignal::GracefulTerminate = signal {
            clerk_proxy::sync::STOPPING.store(true, Ordering::SeqCst);
            let (grace, state) = (self.grace, self.state.clone());
            log::info!("SIGTERM: no new connections; waiting up to {}s for requests in flight", grace.as_secs());
            std::thread::spawn(move || exit_when_drained(grace, &state));
        }
        signal
    }
}

/// How long the requests whose statements were cancelled get to answer
/// (503) before the process exits.
const CANCELLED_ANSWER_WAIT: Duration = Duration::from_secs(1);

fn exit_when_drained(grace: Duration, state: &api::State) {
    let in_flight = || metrics::REQUESTS_IN_FLIGHT.load(Ordering::Relaxed);
    // The metadata sync's round too: a call Clerk answered gets marked.
    let syncing = || clerk_proxy::sync::ROUND_IN_FLIGHT.load(Ordering::SeqCst);
    let wait_until_drained = |deadline: Instant| {
        while (in_flight() > 0 || syncing()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let deadline = Instant::now() + grace;
    // A connection accepted just before the signal gets its request read.
    std::thread::sleep(Duration::from_millis(200).min(grace));
    wait_until_drained(deadline);
    let running = in_flight();
    if running == 0 {
        if syncing() {
            log::warn!("shutdown: grace period over during a metadata sync round: its rows go back to the outbox (a call Clerk answered may be made again)");
        }
        log::info!("shutdown: no request in flight, exiting");
        std::process::exit(0);
    }
    let cancelled = state.pool.cancel_lent(Duration::from_millis(500)) + state.replicas.cancel_lent(Duration::from_millis(500));
    wait_until_drained(Instant::now() + CANCELLED_ANSWER_WAIT);
    log::warn!(
        "shutdown: grace period over with {running} requests running: {cancelled} statements cancelled (rolled back), {} requests cut",
        in_flight()
    );
    std::process::exit(0);
}

enum Command {
    Run(Option<PathBuf>),
    Help,
    Version,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    match args {
        [] => Ok(Command::Run(None)),
        [flag] if flag == "--help" || flag == "-h" => Ok(Command::Help),
        [flag] if flag == "--version" || flag == "-V" => Ok(Command::Version),
        [flag, file] if flag == "--config" || flag == "-c" => Ok(Command::Run(Some(file.into()))),
        [file] if !file.starts_with('-') => Ok(Command::Run(Some(file.into()))),
        _ => Err(format!("unexpected arguments: {}", args.join(" "))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config_path = match parse_args(&args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("clerk-proxy {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(path)) => path,
        Err(e) => {
            eprintln!("clerk-proxy: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("clerk-proxy: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    env_logger::Builder::new()
        .filter_level(config.log_level.as_filter())
        .format(|buf, record| {
            use std::io::Write;
            let fields = access_log::record_fields(record.level(), record.target(), &record.args().to_string());
            writeln!(buf, "ts={} {fields}", buf.timestamp_millis())
        })
        .init();
    log::info!("starting with {config:?}");
    match start(&config) {
        Ok(state) => run(&config, state),
        Err(e) => {
            eprintln!("clerk-proxy: {e}");
            ExitCode::from(1)
        }
    }
}

/// Everything that can stop start-up, in order: keys and secrets (read
/// and checked before any connection), the pool, the schema cache.
fn start(config: &Config) -> Result<Arc<api::State>, String> {
    let authenticator = auth::Authenticator::from_config(config).map_err(|e| format!("configuration error: {e}"))?;
    let webhooks = config
        .clerk_webhook_secret
        .as_deref()
        .map(clerk_proxy::webhooks::WebhookVerifier::from_secret)
        .transpose()
        .map_err(|e| format!("configuration error: clerk-webhook-secret {e}"))?;
    let pool = db::Pool::new(&config.db_uri, db::PoolOptions::from_config(config)).map_err(|e| format!("configuration error: {e}"))?;
    let schema = pool.load_schema(&config.db_schemas).map_err(|e| format!("{e} ({})", config::redact_uri(&config.db_uri)))?;
    log::info!("schema cache: {} tables and views in {}", schema.relation_count(), schema.names());
    let reachable: Vec<String> = config.db_allowed_roles.iter().chain(&config.db_anon_role).cloned().collect();
    let privileged = pool.privileged_roles(&reachable)?;
    if !privileged.is_empty() {
        return Err(format!(
            "configuration error: db-allowed-roles / db-anon-role name roles that bypass row-level security (superuser or BYPASSRLS): {}",
            privileged.join(", ")
        ));
    }
    let options = api::ApiOptions::from_config(config);
    let limits = limits::RateLimits::from_config(config);
    let replicas = Arc::new(clerk_proxy::replicas::Replicas::from_config(config).map_err(|e| format!("configuration error: {e}"))?);
    replicas.watch(&pool);
    Ok(Arc::new(api::State { authenticator, schema: std::sync::RwLock::new(Arc::new(schema)), pool, replicas, webhooks, options, limits }))
}

/// Starts the background work and the listeners; returns only on exit.
fn run(config: &Config, state: Arc<api::State>) -> ExitCode {
    if let Some(secret) = &config.clerk_secret_key {
        let api = clerk_proxy::sync::ClerkApi::new(&config.clerk_api_url, secret);
        clerk_proxy::sync::spawn(&state.pool.runtime(), state.pool.config(), api);
        log::info!("metadata sync to {} is on", config.clerk_api_url);
    }
    let reload_target = Arc::downgrade(&state);
    state.pool.watch_schema(config.db_schemas.clone(), move |cache| {
        if let Some(state) = reload_target.upgrade() {
            state.replace_schema(cache);
        }
    });
    let grace = config.server_shutdown_grace_secs;
    let conf = ServerConf {
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        // SIGTERM: stop accepting at once; requests in flight have
        // `server-shutdown-grace` seconds, then ShutdownWhenDrained cancels
        // their statements and exits within 1.5 s (sooner once they are
        // done), saying what it cut. Pingora's own stop is the fallback.
        grace_period_seconds: Some(grace + 3),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let app = |admin: bool| ProxyApp {
        state: state.clone(),
        admin,
        max_body: config.server_max_body,
        header_timeout: Duration::from_secs(config.server_header_timeout_secs),
        body_timeout: Duration::from_secs(config.server_body_timeout_secs),
    };
    if let Some(port) = config.admin_server_port {
        let mut admin = Service::new("clerk-proxy admin".to_owned(), app(true));
        admin.add_tcp(&std::net::SocketAddr::new(config.server_host, port).to_string());
        server.add_service(admin);
    }
    let gate = ConnectionGate { app: Arc::new(Counted(Arc::new(app(false)))), limits: limits::ConnectionLimits::from_config(config) };
    let mut api = Service::new("clerk-proxy api".to_owned(), gate);
    let addr = std::net::SocketAddr::new(config.server_host, config.server_port);
    api.add_tcp(&addr.to_string());
    server.add_service(api);
    eprintln!("clerk-proxy {} listening on http://{addr}", env!("CARGO_PKG_VERSION"));
    server.run(RunArgs { shutdown_signal: Box::new(ShutdownWhenDrained { grace: Duration::from_secs(grace), state }) });
    // As Pingora's run_forever: exit here, without waiting for the
    // database runtime's background work.
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(matches!(a(&["--config", "x.conf"]), Ok(Command::Run(Some(p))) if p == std::path::Path::new("x.conf")));
        assert!(matches!(a(&["x.conf"]), Ok(Command::Run(Some(_)))));
        assert!(matches!(a(&[]), Ok(Command::Run(None))));
        assert!(matches!(a(&["--help"]), Ok(Command::Help)));
        assert!(matches!(a(&["--version"]), Ok(Command::Version)));
        assert!(a(&["--bogus"]).is_err());
        assert!(a(&["--config"]).is_err());
    }
}
