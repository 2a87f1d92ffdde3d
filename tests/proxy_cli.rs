//! The clerk-proxy binary as an operator meets it: flags, configuration
//! errors that name the key, and a running server answering /live.

use pg_clerk_e2e::proxy_bin;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn proxy(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(proxy_bin());
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Sends one HTTP/1.1 request, returns (status, body).
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &str) -> (Running, u16) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("clerk-proxy-test-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("proxy.conf");
    std::fs::write(&file, format!("{config}\nserver-port = {port}\n")).unwrap();
    let child = proxy(&["--config", file.to_str().unwrap()], &[]).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "clerk-proxy did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Running(child), port)
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

    let out = proxy(&["/nonexistent/proxy.conf"], &[]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file /nonexistent/proxy.conf"));
}

#[test]
fn serves_live_and_postgrest_errors() {
    let (_proxy, port) = start("db-uri = \"postgres://authenticator@127.0.0.1:5432/app\"");
    let (status, body) = http(port, "GET", "/live");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"live\""), "{body}");
    let (status, body) = http(port, "GET", "/no/such/endpoint");
    assert_eq!(status, 404);
    assert!(body.contains("\"code\":\"PGRST125\""), "{body}");
    let (status, _) = http(port, "DELETE", "/live");
    assert_eq!(status, 405);
}
