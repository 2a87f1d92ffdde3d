//! Attacks from the security review (issue 15), each performed as written
//! against the real proxy binary and a database of its own with the
//! reference schema and the demo data, as a signed-up customer or as
//! anonymous. Each one failed before its fix.

use clerk_jwt::test_keys::{now, sign, sign_header, KID};
use pg_clerk_e2e::{admin_execute, admin_query_in, fresh_api_database, free_port, http, metric_sample, start_proxy, Running};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const DB: &str = "pg_clerk_security";
const ISSUER: &str = "https://clerk.example.com";
const PARTY: &str = "https://app.example.com";
const ALICE: &str = "user_2demoAlice";
const BOB: &str = "user_2demoBob";

/// The database, with two helpers the attacks read settings through.
fn database() -> &'static str {
    static DSN: OnceLock<String> = OnceLock::new();
    DSN.get_or_init(|| {
        let dsn = fresh_api_database(DB);
        admin_execute(
            DB,
            "CREATE FUNCTION public.request_setting(name text) RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_setting(name, true) $$;
             GRANT EXECUTE ON FUNCTION public.request_setting(text) TO anon, authenticated;
             -- Ignores the statement timeout's cancel once, as JIT compilation does.
             CREATE FUNCTION public.outlast_timeout() RETURNS text LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO categories (name, slug) VALUES ('outlast', 'outlast');
                 BEGIN PERFORM pg_sleep(3); EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(20); END;
                 RETURN 'finished';
             END $$ SECURITY DEFINER;
             GRANT EXECUTE ON FUNCTION public.outlast_timeout() TO anon;",
        );
        dsn
    })
}

fn pem_path() -> String {
    format!("{}/../tests/fixtures/test_rs256_public.pem", env!("CARGO_MANIFEST_DIR"))
}

/// A proxy on `database()`, networkless (the PEM key), plus `extra` lines.
fn proxy_with(extra: &str, admin_port: u16) -> (Running, u16) {
    start_proxy(&format!(
        "db-uri = \"{}\"\ndb-anon-role = \"anon\"\nclerk-public-key = \"@{}\"\nclerk-issuer = \"{ISSUER}\"\n\
         clerk-authorized-parties = \"{PARTY}\"\nclerk-clock-skew = 0\nadmin-server-port = {admin_port}\n{extra}",
        database(),
        pem_path()
    ))
}

fn proxy() -> &'static (Running, u16, u16) {
    static PROXY: OnceLock<(Running, u16, u16)> = OnceLock::new();
    PROXY.get_or_init(|| {
        let admin = free_port();
        let (running, port) = proxy_with("db-statement-timeout = 500", admin);
        (running, port, admin)
    })
}

fn claims(user: &str, extra: Value) -> Value {
    let t = now();
    let mut c = json!({"sub": user, "sid": "sess_sec", "iss": ISSUER, "azp": PARTY, "iat": t, "nbf": t - 5, "exp": t + 60, "v": 2});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn token(user: &str, extra: Value) -> String {
    sign(&claims(user, extra))
}

/// (status, head, JSON body)
fn request(port: u16, method: &str, path: &str, token: Option<&str>, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, String, Value) {
    let mut all: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Some(t) = token {
        all.push(("Authorization".into(), format!("Bearer {t}")));
    }
    let (status, head, text) = http(port, method, path, &all, body.map(|b| b.to_string()).as_deref());
    (status, head, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn get(path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, _, body) = request(proxy().1, "GET", path, token, &[], None);
    (status, body)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

// 2. SQL through `::cast` in select, open to anonymous callers.
#[test]
fn a_cast_cannot_carry_sql() {
    let attack = "/products?select=name::text%20FROM%20products%20_pgrst_t0%20UNION%20SELECT%20rolname%20FROM%20pg_roles%20UNION%20SELECT%20name";
    let (status, body) = get(attack, None);
    assert_eq!(status, 400, "{body}");
    assert!(!body.to_string().contains("authenticator"), "{body}");
    let (status, body) = get("/products?select=name::nope&limit=1", None);
    assert_eq!((status, body["code"].as_str()), (400, Some("42704")), "{body}");
    assert_eq!(body["message"], "type \"nope\" does not exist");
    let (status, rows) = get("/products?select=product_id,price::text,stock:stock_quantity::integer&product_id=eq.1", None);
    assert_eq!(status, 200, "{rows}");
    assert!(rows[0]["price"].is_string() && rows[0]["stock"].is_i64(), "{rows}");
}

// 3. Work that outlasts the statement timeout.
#[test]
fn requests_run_without_jit_and_embeds_are_capped() {
    let (status, jit) = get("/rpc/request_setting?name=jit", None);
    assert_eq!((status, jit), (200, json!("off")));
    let mut select = "product_id".to_owned();
    for _ in 0..8 {
        select = format!("product_id,a:order_items({select}),b:order_items({select})");
    }
    let (status, body) = get(&format!("/products?select={}", select.replace(',', "%2C")), None);
    assert_eq!((status, body["code"].as_str()), (400, Some("PGRST100")), "{body}");
    assert!(body["details"].as_str().unwrap().contains("embedded resources; the limit is 32"), "{body}");
}

#[test]
fn a_statement_that_outlasts_the_timeout_is_cancelled_by_the_proxy_and_rolled_back() {
    let started = Instant::now();
    let (status, _, body) = request(proxy().1, "POST", "/rpc/outlast_timeout", None, &[], Some(&json!({})));
    let took = started.elapsed();
    assert_eq!((status, body["code"].as_str()), (504, Some("57014")), "{body}");
    assert!(took < Duration::from_secs(5), "answered after {took:?} (the function sleeps 20 s past its timeout)");
    assert_eq!(metric_sample(proxy().2, "clerk_proxy_db_deadline_cancels_total"), Some(1.0));
    assert!(admin_query_in(DB, "SELECT 1 FROM categories WHERE slug = 'outlast'").is_empty(), "the insert was rolled back");
    let (status, _) = get("/products?select=product_id&limit=1", None);
    assert_eq!(status, 200, "still serving");
}

// 4. Role claims cannot reach internal roles.
#[test]
fn a_role_claim_reaches_only_allowed_roles() {
    let (_running, port) = proxy_with("jwt-role-claim-key = \".role\"", free_port());
    let internal = ["clerk_webhook", "clerk_sync", "bi_reader", "authenticator", "postgres"];
    for role in internal {
        let t = token(ALICE, json!({"role": role}));
        let body = json!({"svix_id": "msg_x", "event": {"type": "organizationMembership.created"}});
        for (method, path, body) in [("POST", "/rpc/clerk_apply_webhook", Some(&body)), ("GET", "/orders", None)] {
            let (status, head, err) = request(port, method, path, Some(&t), &[], body);
            assert_eq!((status, err["code"].as_str()), (401, Some("PGRST303")), "{role} {path}: {err}");
            assert!(header(&head, "www-authenticate").is_some(), "{head}");
        }
    }
    let (status, _, _) = request(port, "GET", "/orders", Some(&token(ALICE, json!({"role": "authenticated"}))), &[], None);
    assert_eq!(status, 200);
    // A superuser or BYPASSRLS role named in the allowlist stops start-up.
    admin_execute("postgres", "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sec_bypass') THEN CREATE ROLE sec_bypass NOLOGIN BYPASSRLS; END IF; END $$");
    let conf = std::env::temp_dir().join("clerk-proxy-sec-bypass.conf");
    std::fs::write(
        &conf,
        format!("db-uri = \"{}\"\nclerk-public-key = \"@{}\"\ndb-allowed-roles = \"authenticated,sec_bypass\"\nserver-port = {}\n", database(), pem_path(), free_port()),
    )
    .unwrap();
    let out = std::process::Command::new(pg_clerk_e2e::proxy_bin()).args(["--config", conf.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bypass row-level security (superuser or BYPASSRLS): sec_bypass"), "{out:?}");
}

// 5. Session tokens only, checked as Clerk checks them.
#[test]
fn only_session_tokens_checked_as_clerk_checks_them_get_in() {
    let t = now();
    let header_with = |extra: Value| {
        let mut h = json!({"alg": "RS256", "kid": KID, "typ": "JWT"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    // Networkless mode takes real Clerk tokens, which always have a kid.
    let (status, _) = get("/orders", Some(&sign_header(&header_with(json!({"kid": "ins_2realclerkkid"})), &claims(ALICE, json!({})))));
    assert_eq!(status, 200);
    let refused = [
        ("azp not a string", sign_header(&header_with(json!({})), &claims(ALICE, json!({"azp": ["https://evil.example"]})))),
        ("an OAuth access token", sign_header(&header_with(json!({"typ": "at+jwt"})), &claims(ALICE, json!({})))),
        ("a critical extension", sign_header(&header_with(json!({"crit": ["x-pay"], "x-pay": 1})), &claims(ALICE, json!({})))),
        (
            "a JWT-template token",
            token(ALICE, json!({"sid": null, "aud": "supabase", "exp": t + 365 * 86_400, "metadata": {"role": "admin"}})),
        ),
        ("no sid", token(ALICE, json!({"sid": null}))),
        ("an aud", token(ALICE, json!({"aud": "supabase"}))),
        ("a year long", token(ALICE, json!({"exp": t + 365 * 86_400}))),
        ("exp is now (skew 0)", token(ALICE, json!({"exp": t}))),
        ("no iat", token(ALICE, json!({"iat": null}))),
        ("no azp while authorized parties are set", token(ALICE, json!({"azp": null}))),
        ("typ jwt in lower case", sign_header(&header_with(json!({"typ": "jwt"})), &claims(ALICE, json!({})))),
    ];
    for (name, bad) in refused {
        let (status, head, err) = request(proxy().1, "GET", "/orders", Some(&bad), &[], None);
        assert_eq!(status, 401, "{name}: {err}");
        assert!(header(&head, "www-authenticate").is_some_and(|c| c.contains("invalid_token")), "{name}: {head}");
    }
    // Signed and well-formed, but a sub that pg_clerk refuses: 403 28000, no challenge.
    let (status, head, err) = request(proxy().1, "GET", "/orders", Some(&token("usr_1", json!({}))), &[], None);
    assert_eq!((status, err["code"].as_str()), (403, Some("28000")), "{err}");
    assert_eq!(header(&head, "www-authenticate"), None);
}

// 11. Counts that see through RLS.
#[test]
fn planned_and_estimated_counts_do_not_see_through_row_security() {
    let alice = token(ALICE, json!({}));
    for count in ["planned", "estimated", "exact"] {
        let (status, head, rows) = request(proxy().1, "GET", "/orders?select=order_id", Some(&alice), &[("Prefer", &format!("count={count}"))], None);
        assert_eq!(status, 200, "{rows}");
        let visible = rows.as_array().unwrap().len();
        assert_eq!(header(&head, "content-range"), Some(format!("0-{}/{visible}", visible - 1).as_str()), "count={count}");
    }
    // An e-mail filter's estimate no longer tells a real address from an unknown one.
    let bob = token(BOB, json!({}));
    for email in ["alice@example.com", "nobody@example.com"] {
        let path = format!("/orders?billing_email=eq.{email}");
        let (_, head, _) = request(proxy().1, "GET", &path, Some(&bob), &[("Prefer", "count=planned")], None);
        assert_eq!(header(&head, "content-range"), Some("*/0"), "{email}");
    }
}

// Low: the session cookie never reaches SQL.
#[test]
fn the_session_cookie_stays_out_of_sql() {
    let alice = token(ALICE, json!({}));
    let cookie = format!("theme=dark; __session={alice}; __session_Ab12={alice}");
    let (status, _, cookies) = request(proxy().1, "GET", "/rpc/request_setting?name=request.cookies", None, &[("Cookie", &cookie)], None);
    assert_eq!(status, 200, "{cookies}");
    let cookies: Value = serde_json::from_str(cookies.as_str().unwrap()).unwrap();
    assert_eq!(cookies, json!({"theme": "dark"}));
}

// 6. Slow clients, too many connections, oversized heads.
#[test]
fn slow_clients_and_connection_floods_get_a_status_and_let_go() {
    use std::io::{Read, Write};
    let admin = free_port();
    let (_running, port) = proxy_with("server-header-timeout = 1\nserver-body-timeout = 1\nserver-max-connections-per-ip = 4", admin);
    let answer = |s: &mut std::net::TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    // A head sent a byte at a time: 408 once server-header-timeout is over.
    let started = Instant::now();
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /products HTTP/1.1\r\nHost: x\r\n").unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(300));
        if slow.write_all(b"X").is_err() {
            break;
        }
    }
    let text = answer(&mut slow);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("server-header-timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // A body that never arrives: 408 too.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"POST /rpc/request_setting HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"na").unwrap();
    let text = answer(&mut slow);
    assert!(text.starts_with("HTTP/1.1 408") && text.contains("server-body-timeout"), "{text}");

    // Idle connections from one address: the fifth is refused at once.
    let idle: Vec<_> = (0..4).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let text = answer(&mut fifth);
    assert!(text.starts_with("HTTP/1.1 429") && text.contains("server-max-connections-per-ip"), "{text}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    let (status, _, _) = request(port, "GET", "/products?select=product_id&limit=1", None, &[], None);
    assert_eq!(status, 200, "closed connections free their slots");

    // Too many headers, too long a URL: a status, not a reset.
    let mut many = b"GET /products HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
    for i in 0..200 {
        many.extend_from_slice(format!("X-Header-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(pg_clerk_e2e::raw_http(port, &many).map(|r| r.0), Some(431));
    for len in [40 * 1024, 64 * 1024] {
        let long = format!("GET /products?select={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(len));
        assert_eq!(pg_clerk_e2e::raw_http(port, long.as_bytes()).map(|r| r.0), Some(414), "{len}");
    }
    assert_eq!(metric_sample(admin, "clerk_proxy_connections_refused_total{limit=\"ip\"}"), Some(1.0));
    assert_eq!(metric_sample(admin, "clerk_proxy_http_refused_total{status=\"408\"}"), Some(2.0));
}
