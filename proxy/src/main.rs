//! clerk-proxy: verifies Clerk session JWTs and serves a PostgREST-compatible
//! API over PostgreSQL. The request path, one module per stage:
//! config → (auth → request → plan → sql → db) → response; `admin` beside it.

mod admin;
mod auth;
mod config;
mod plan;
mod request;
mod schema;
mod sql;
mod response;

use async_trait::async_trait;
use config::Config;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::services::listening::Service;
use std::path::PathBuf;
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

/// The HTTP application: routes a request to the stage that owns it.
struct ProxyApp;

#[async_trait]
impl ServeHttp for ProxyApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let header = session.req_header();
        let method = header.method.as_str().to_owned();
        let path = header.uri.path().to_owned();
        admin::route(&method, &path).unwrap_or_else(|| response::ApiError::not_found_path(&path).into_response())
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
    // Keys are loaded now: a missing or unreadable key stops start-up.
    let authenticator = match auth::Authenticator::from_config(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("clerk-proxy: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    env_logger::Builder::new().filter_level(config.log_level.as_filter()).init();
    log::info!("starting with {config:?}");
    run(config, authenticator)
}

fn run(config: Config, _authenticator: auth::Authenticator) -> ExitCode {
    // The authenticator serves the request stages (request → plan → sql →
    // db) as they land; today only /live is routed.
    let conf = ServerConf {
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        // SIGTERM: stop accepting at once, give in-flight requests 5 s.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut api = Service::new("clerk-proxy api".to_owned(), ProxyApp);
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
