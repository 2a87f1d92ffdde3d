//! The clerk-proxy binary: command line, start-up, and the Pingora glue.
//! The stages live in the library (`src/lib.rs`).

use async_trait::async_trait;
use clerk_proxy::{access_log, api, auth, config, db, limits, metrics, response};
use config::Config;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::apps::{HttpServerApp, ReusedHttpStream};
use pingora_core::protocols::http::ServerSession;
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
}

#[async_trait]
impl ServeHttp for ProxyApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if !self.admin {
            // The header is read: from now until the answer is written, graceful shutdown waits.
            let _ = IN_FLIGHT.try_with(|counted| {
                if !counted.swap(true, Ordering::Relaxed) {
                    metrics::REQUESTS_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let client_ip = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let header = session.req_header();
        let declared: Option<usize> = header.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse().ok());
        let mut req = api::HttpRequest {
            method: header.method.as_str().to_owned(),
            path: header.uri.path().to_owned(),
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
        while !too_large {
            match session.read_request_body().await {
                Ok(Some(chunk)) if req.body.len() + chunk.len() <= self.max_body => req.body.extend_from_slice(&chunk),
                Ok(Some(_)) => break,
                Ok(None) => break,
                Err(e) => {
                    req.refused = Some(response::ApiError::bad_request("PGRST102", "Could not read the request body".into(), Some(e.to_string())));
                    break;
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
            req.refused = Some(response::ApiError::payload_too_large(self.max_body));
        }
        if self.admin {
            api::handle_admin(&self.state, &req).await
        } else {
            api::handle(&self.state, &req).await
        }
    }
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
    let wait_until_drained = |deadline: Instant| {
        while in_flight() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let deadline = Instant::now() + grace;
    // A connection accepted just before the signal gets its request read.
    std::thread::sleep(Duration::from_millis(200).min(grace));
    wait_until_drained(deadline);
    let running = in_flight();
    if running == 0 {
        log::info!("shutdown: no request in flight, exiting");
        std::process::exit(0);
    }
    let cancelled = state.pool.cancel_lent(Duration::from_millis(500));
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
    log::info!("schema cache: {} tables and views in {}", schema.relation_count(), schema.default_schema);
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
    Ok(Arc::new(api::State { authenticator, schema: std::sync::RwLock::new(Arc::new(schema)), pool, webhooks, options, limits }))
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
    let max_body = config.server_max_body;
    if let Some(port) = config.admin_server_port {
        let mut admin = Service::new("clerk-proxy admin".to_owned(), ProxyApp { state: state.clone(), admin: true, max_body });
        admin.add_tcp(&std::net::SocketAddr::new(config.server_host, port).to_string());
        server.add_service(admin);
    }
    let mut api = Service::new("clerk-proxy api".to_owned(), Counted(Arc::new(ProxyApp { state: state.clone(), admin: false, max_body })));
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
        assert!(matches!(a(&["--config", "x.conf"]), Ok(Command::Run(Some(p))) if p == PathBuf::from("x.conf")));
        assert!(matches!(a(&["x.conf"]), Ok(Command::Run(Some(_)))));
        assert!(matches!(a(&[]), Ok(Command::Run(None))));
        assert!(matches!(a(&["--help"]), Ok(Command::Help)));
        assert!(matches!(a(&["--version"]), Ok(Command::Version)));
        assert!(a(&["--bogus"]).is_err());
        assert!(a(&["--config"]).is_err());
    }
}
