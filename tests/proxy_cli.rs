//! The clerk-proxy binary as an operator meets it: flags, configuration
//! errors that name the key, and a running server answering /live.

use pg_clerk_e2e::{api_dsn, http, proxy_bin, start_proxy};
use std::process::Command;

fn proxy(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(proxy_bin());
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn version_and_help() {
    let out = proxy(&["--version"], &[]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("clerk-proxy 0."));
    let out = proxy(&["--help"], &[]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--config FILE"));
    let out = proxy(&["--bogus"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn configuration_errors_stop_start_up_and_name_the_key() {
    let out = proxy(&[], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("db-uri is required"));

    let out = proxy(&[], &[("CLERK_PROXY_DB_URI", "postgres://a@h/d"), ("CLERK_PROXY_SERVER_PORT", "http")]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server-port (environment variable CLERK_PROXY_SERVER_PORT)"), "{err}");

    let out = proxy(&[], &[("CLERK_PROXY_DB_URI", "postgres://a@h/d"), ("CLERK_PROXY_CLERK_JWKS_FILE", "/nonexistent/jwks.json")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("clerk-jwks-file: cannot read /nonexistent/jwks.json"));

    let out = proxy(&[], &[("CLERK_PROXY_DB_URI", "postgres://authenticator@127.0.0.1:1/nowhere")]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect with db-uri"));

    let out = proxy(&["/nonexistent/proxy.conf"], &[]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file /nonexistent/proxy.conf"));
}

#[test]
fn serves_live_and_postgrest_errors() {
    let (_proxy, port) = start_proxy(&format!("db-uri = \"{}\"\ndb-anon-role = \"anon\"", api_dsn()));
    let (status, _, body) = http(port, "GET", "/live", &[], None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"live\""), "{body}");
    let (status, _, body) = http(port, "GET", "/no/such/endpoint", &[], None);
    assert_eq!(status, 404);
    assert!(body.contains("\"code\":\"PGRST125\""), "{body}");
    let (status, _, _) = http(port, "DELETE", "/live", &[], None);
    assert_eq!(status, 405);
}
