//! The clerk-proxy binary: command line, start-up, and the Pingora glue.
//! The stages live in the library (`src/lib.rs`).

use async_trait::async_trait;
use clerk_proxy::{api, auth, config, db, response};
use config::Config;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::services::listening::Service;
use std::path::PathBuf;
use std::sync::Arc;
use std::process::ExitCode;

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
}

#[async_trait]
impl ServeHttp for ProxyApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let header = session.req_header();
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
        };
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) if req.body.len() + chunk.len() <= api::MAX_BODY => req.body.extend_from_slice(&chunk),
                Ok(Some(_)) => return response::ApiError::payload_too_large(api::MAX_BODY).into_response(),
                Ok(None) => break,
                Err(e) => return response::ApiError::bad_request("PGRST102", "Could not read the request body".into(), Some(e.to_string())).into_response(),
            }
        }
        if self.admin {
            api::handle_admin(&self.state, &req).await
        } else {
            api::handle(&self.state, &req).await
        }
    }
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
    env_logger::Builder::new().filter_level(config.log_level.as_filter()).init();
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
    let pool = db::Pool::new(&config.db_uri, config.db_pool).map_err(|e| format!("configuration error: {e}"))?;
    let schema = pool.load_schema(&config.db_schemas).map_err(|e| format!("{e} ({})", config::redact_uri(&config.db_uri)))?;
    log::info!("schema cache: {} tables and views in {}", schema.relation_count(), schema.default_schema);
    let options = api::ApiOptions::from_config(config);
    Ok(Arc::new(api::State { authenticator, schema: std::sync::RwLock::new(Arc::new(schema)), pool, webhooks, options }))
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
    let conf = ServerConf {
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        // SIGTERM: stop accepting at once, give in-flight requests 5 s.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    if let Some(port) = config.admin_server_port {
        let mut admin = Service::new("clerk-proxy admin".to_owned(), ProxyApp { state: state.clone(), admin: true });
        admin.add_tcp(&std::net::SocketAddr::new(config.server_host, port).to_string());
        server.add_service(admin);
    }
    let mut api = Service::new("clerk-proxy api".to_owned(), ProxyApp { state, admin: false });
    let addr = std::net::SocketAddr::new(config.server_host, config.server_port);
    api.add_tcp(&addr.to_string());
    server.add_service(api);
    eprintln!("clerk-proxy {} listening on http://{addr}", env!("CARGO_PKG_VERSION"));
    server.run_forever()
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
