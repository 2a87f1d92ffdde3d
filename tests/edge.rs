//! What a browser app meets first (issue 16), through the real proxy
//! binary: CORS as PostgREST answers it (preflights, and the headers on
//! every answer, errors included), supabase-js's `/rest/v1/` layout,
//! Clerk's publishable key as "no user" and as the source of the JWKS URL
//! and issuer, the session cookie refused for writes from other sites,
//! `Content-Type`, request lines curl sends unencoded, and client
//! addresses that only trusted proxies may state.

use base64::Engine;
use clerk_jwt::test_keys::{now, sign, JWKS};
use pg_clerk_e2e::{
    admin_execute, admin_query_in, free_port, fresh_api_database, head_value, http, raw_http, serve_jwks, start_proxy, Running,
    REQUEST_SETTING_FUNCTION,
};
use serde_json::{json, Value};
use std::sync::OnceLock;

const DB: &str = "pg_clerk_edge";
const ISSUER: &str = "https://clerk.example.com";
const ALICE: &str = "user_2demoAlice";
const BOB: &str = "user_2demoBob";
const SHOP: &str = "https://shop.example";

fn database() -> &'static str {
    static DSN: OnceLock<String> = OnceLock::new();
    DSN.get_or_init(|| {
        let dsn = fresh_api_database(DB);
        admin_execute(DB, REQUEST_SETTING_FUNCTION);
        dsn
    })
}

fn proxy_with(extra: &str) -> (Running, u16) {
    let jwks = format!("{}/../tests/fixtures/test_jwks.json", env!("CARGO_MANIFEST_DIR"));
    start_proxy(&format!(
        "db-uri = \"{}\"\ndb-anon-role = \"anon\"\ndb-staff-role = \"clerk_staff\"\nclerk-jwks-file = \"{jwks}\"\nclerk-issuer = \"{ISSUER}\"\nserver-max-body = 4096\n{extra}",
        database()
    ))
}

/// A proxy with no CORS list (PostgREST's default: any origin).
fn open_proxy() -> u16 {
    static P: OnceLock<(Running, u16)> = OnceLock::new();
    P.get_or_init(|| proxy_with("")).1
}

/// A proxy that lists the shop's origin.
fn listed_proxy() -> u16 {
    static P: OnceLock<(Running, u16)> = OnceLock::new();
    P.get_or_init(|| proxy_with(&format!("server-cors-allowed-origins = \"{SHOP}, https://admin.shop.example\""))).1
}

fn token(user: &str) -> String {
    let t = now();
    sign(&json!({"sub": user, "sid": "sess_edge", "iss": ISSUER, "iat": t, "nbf": t - 5, "exp": t + 60}))
}

/// (status, head, body as JSON or text)
fn call(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String, Value) {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (status, head, text) = http(port, method, path, &headers, body);
    (status, head, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

const EXPOSED: &str =
    "Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit";

// PostgREST's CorsSpec, and what supabase-js asks for.
#[test]
fn preflights_are_answered_as_postgrest_does() {
    let port = open_proxy();
    let asked = [
        ("Origin", "http://example.com"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "apikey,authorization,content-profile,content-type,prefer,x-client-info"),
    ];
    for path in ["/", "/products", "/rest/v1/cart", "/rpc/place_order", "/nope"] {
        let (status, head, body) = call(port, "OPTIONS", path, &asked, None);
        assert_eq!((status, body), (200, json!("")), "{path}: {head}");
        assert_eq!(head_value(&head, "access-control-allow-origin"), Some("*"));
        assert_eq!(head_value(&head, "access-control-allow-methods"), Some("GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD"));
        assert_eq!(
            head_value(&head, "access-control-allow-headers"),
            Some("Authorization, apikey, authorization, content-profile, content-type, prefer, x-client-info, Accept, Accept-Language, Content-Language")
        );
        assert_eq!(head_value(&head, "access-control-max-age"), Some("86400"));
        assert_eq!(head_value(&head, "access-control-allow-credentials"), None);
    }
    // OPTIONS that is not a preflight: what the path can take.
    for (path, allow) in [
        ("/products", "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"),
        ("/rest/v1/products", "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"),
        ("/rpc/place_order", "OPTIONS,POST"),
        ("/rpc/customer_tier", "OPTIONS,GET,HEAD,POST"),
        ("/", "OPTIONS,GET,HEAD"),
    ] {
        let (status, head, _) = call(port, "OPTIONS", path, &[("Accept", "application/json")], None);
        assert_eq!(
            (status, head_value(&head, "allow"), head_value(&head, "access-control-allow-origin")),
            (200, Some(allow), Some("*")),
            "{path}"
        );
    }
    assert_eq!(call(port, "OPTIONS", "/nope", &[], None).0, 404);
}

#[test]
fn every_answer_errors_included_carries_cors_headers() {
    let port = open_proxy();
    let origin = ("Origin", "http://anyone.example");
    let alice = format!("Bearer {}", token(ALICE));
    let big = "x".repeat(5000);
    // (method, path, headers, body, status)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Option<&'a str>, u16);
    let cases: Vec<Case> = vec![
        ("GET", "/products?select=product_id&limit=2", vec![("Prefer", "count=exact")], None, 206),
        ("GET", "/products?select=nope", vec![], None, 400),
        ("GET", "/orders", vec![("Authorization", "Bearer not.a.token")], None, 401),
        ("POST", "/coupons", vec![("Authorization", &alice), ("Content-Type", "application/json")], Some(r#"{"code":"X"}"#), 403),
        ("GET", "/nope", vec![], None, 404),
        ("GET", "/products", vec![("Accept", "application/x-nope")], None, 406),
        ("POST", "/cart", vec![("Authorization", &alice)], Some(&big), 413),
        ("POST", "/cart", vec![("Authorization", &alice), ("Content-Type", "text/plain")], Some("{}"), 400),
    ];
    for (method, path, mut headers, body, expected) in cases {
        headers.push(origin);
        let (status, head, answer) = call(port, method, path, &headers, body);
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert_eq!(head_value(&head, "access-control-allow-origin"), Some("*"), "{method} {path}: {head}");
        assert_eq!(head_value(&head, "access-control-expose-headers"), Some(EXPOSED), "{method} {path}");
    }
    // Without Origin (curl), no CORS headers at all.
    let (_, head, _) = call(port, "GET", "/products?limit=1", &[], None);
    assert_eq!(head_value(&head, "access-control-allow-origin"), None);
}

#[test]
fn listed_origins_are_echoed_with_credentials_and_others_get_nothing() {
    let port = listed_proxy();
    let (status, head, _) = call(port, "OPTIONS", "/cart", &[("Origin", SHOP), ("Access-Control-Request-Method", "POST")], None);
    assert_eq!(
        (status, head_value(&head, "access-control-allow-origin"), head_value(&head, "access-control-allow-credentials")),
        (200, Some(SHOP), Some("true"))
    );
    let (status, head, _) = call(port, "GET", "/products?limit=1", &[("Origin", SHOP)], None);
    assert_eq!(
        (status, head_value(&head, "access-control-allow-origin"), head_value(&head, "access-control-allow-credentials")),
        (200, Some(SHOP), Some("true"))
    );
    // Never an arbitrary origin echoed with credentials; the request is
    // still answered (the browser keeps it from the page).
    let (status, head, _) = call(port, "GET", "/products?limit=1", &[("Origin", "http://invalid.com")], None);
    assert_eq!(
        (status, head_value(&head, "access-control-allow-origin"), head_value(&head, "access-control-allow-credentials")),
        (200, None, None)
    );
}

#[test]
fn supabase_js_paths_under_rest_v1_are_the_api() {
    let port = open_proxy();
    let alice = format!("Bearer {}", token(ALICE));
    let root = call(port, "GET", "/products?select=product_id&order=product_id&limit=3", &[], None);
    let prefixed = call(port, "GET", "/rest/v1/products?select=product_id&order=product_id&limit=3", &[], None);
    assert_eq!((prefixed.0, &prefixed.2), (200, &root.2));
    let (status, _, tier) =
        call(port, "POST", "/rest/v1/rpc/customer_tier", &[("Authorization", &alice), ("Content-Type", "application/json")], Some("{}"));
    assert_eq!((status, tier), (200, json!("Gold")));
    let (status, head, doc) = call(port, "GET", "/rest/v1/", &[], None);
    assert_eq!(status, 200, "{head}");
    assert!(doc["paths"]["/products"].is_object(), "{doc}");
    let (status, _, path) = call(port, "GET", "/rest/v1/rpc/request_setting?name=request.path", &[], None);
    assert_eq!((status, path), (200, json!("/rpc/request_setting")));
    assert_eq!(call(port, "GET", "/rest/v2/products", &[], None).0, 404);
}

#[test]
fn the_publishable_key_is_no_user_and_names_the_frontend_api() {
    // The key names a Frontend API on 127.0.0.1 that serves the JWKS.
    let jwks_url = serve_jwks(JWKS);
    let host = jwks_url.trim_start_matches("http://").trim_end_matches("/.well-known/jwks.json").to_owned();
    let pk = format!("pk_test_{}", base64::engine::general_purpose::STANDARD.encode(format!("{host}$")));
    let (_running, port) =
        start_proxy(&format!("db-uri = \"{}\"\ndb-anon-role = \"anon\"\nclerk-publishable-key = \"{pk}\"\n", database()));
    let issuer = format!("http://{host}");
    let t = now();
    let alice = sign(&json!({"sub": ALICE, "sid": "sess_pk", "iss": issuer, "iat": t, "nbf": t - 5, "exp": t + 60}));
    // supabase-js signed in: apikey is the key, the bearer is the session token.
    let signed_in = [("apikey", pk.as_str()), ("Authorization", &format!("Bearer {alice}"))];
    let (status, _, orders) = call(port, "GET", "/rest/v1/orders?select=user_id", &signed_in, None);
    assert_eq!(status, 200, "{orders}");
    assert!(!orders.as_array().unwrap().is_empty() && orders.as_array().unwrap().iter().all(|o| o["user_id"] == ALICE), "{orders}");
    // Signed out: the key as the bearer token is anonymous, not a 401.
    let signed_out = [("apikey", pk.as_str()), ("Authorization", &format!("Bearer {pk}"))];
    let (status, _, products) = call(port, "GET", "/rest/v1/products?select=product_id&limit=2", &signed_out, None);
    assert_eq!((status, products.as_array().map(Vec::len)), (200, Some(2)));
    let (status, _, err) = call(port, "GET", "/rest/v1/orders", &signed_out, None);
    assert_eq!((status, err["code"].as_str()), (401, Some("42501")), "{err}");
    // A token from another issuer is refused (the derived issuer holds).
    let other = sign(&json!({"sub": ALICE, "sid": "sess_pk", "iss": ISSUER, "iat": t, "nbf": t - 5, "exp": t + 60}));
    assert_eq!(call(port, "GET", "/orders", &[("Authorization", &format!("Bearer {other}"))], None).0, 401);
    // A malformed key stops start-up, naming the key.
    let conf = std::env::temp_dir().join(format!("clerk-proxy-edge-pk-{}.conf", std::process::id()));
    std::fs::write(
        &conf,
        format!("db-uri = \"{}\"\nclerk-publishable-key = \"pk_live_bm90LWEta2V5\"\nserver-port = {}\n", database(), free_port()),
    )
    .unwrap();
    let out = std::process::Command::new(pg_clerk_e2e::proxy_bin()).args(["--config", conf.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("clerk-publishable-key"), "{out:?}");
}

// The session cookie is attached by the browser to requests other sites
// make: writes with it only from the API's own or listed origins.
#[test]
fn the_session_cookie_writes_only_from_the_api_or_listed_origins() {
    let port = listed_proxy();
    let cookie = format!("__session={}", token(BOB));
    let own = format!("http://127.0.0.1:{port}");
    let add = r#"{"product_id": 8, "quantity": 1}"#;
    let host = format!("127.0.0.1:{port}");
    let post = |origin: Option<&str>| {
        let mut headers = vec![("Cookie", cookie.as_str()), ("Host", host.as_str()), ("Prefer", "resolution=merge-duplicates")];
        headers.extend(origin.map(|o| ("Origin", o)));
        call(port, "POST", "/cart?on_conflict=user_id,product_id,selected_attributes", &headers, Some(add))
    };
    let (status, head, err) = post(Some("https://evil.example"));
    assert_eq!((status, err["code"].as_str()), (403, Some("CPCS1")), "{err}");
    assert_eq!(head_value(&head, "access-control-allow-origin"), None);
    let (status, _, err) = post(Some("null"));
    assert_eq!(status, 403, "{err}");
    // No Origin, but the browser says the request comes from another site.
    let (status, _, err) = call(port, "POST", "/cart", &[("Cookie", &cookie), ("Sec-Fetch-Site", "cross-site")], Some(add));
    assert_eq!((status, err["code"].as_str()), (403, Some("CPCS1")), "{err}");
    assert!(admin_query_in(DB, &format!("SELECT 1 FROM cart WHERE user_id = '{BOB}' AND product_id = 8")).is_empty());
    // The first inserts (201), the others update the line (200, as PostgREST answers a merge that inserted nothing).
    for (origin, created) in [(Some(SHOP), 201), (Some(own.as_str()), 200), (None, 200)] {
        let (status, _, body) = post(origin);
        assert_eq!(status, created, "{origin:?}: {body}");
    }
    // Reads with the cookie from another origin are answered, but without
    // CORS headers the browser keeps them from that page.
    let (status, head, _) = call(port, "GET", "/cart", &[("Cookie", &cookie), ("Origin", "https://evil.example")], None);
    assert_eq!((status, head_value(&head, "access-control-allow-origin")), (200, None));
    // A bearer token is sent on purpose: any origin may write with it.
    let bearer = format!("Bearer {}", token(BOB));
    let (status, _, body) = call(
        port,
        "PATCH",
        "/cart?product_id=eq.8",
        &[("Authorization", &bearer), ("Origin", "https://evil.example"), ("Content-Type", "application/json")],
        Some(r#"{"quantity": 2}"#),
    );
    assert_eq!(status, 204, "{body}");
}

#[test]
fn write_bodies_must_be_json_a_form_or_csv() {
    let port = open_proxy();
    let alice = format!("Bearer {}", token(ALICE));
    for media in ["text/plain", "text/xml", "application/xml", "application/octet-stream"] {
        let (status, _, err) =
            call(port, "POST", "/wishlist", &[("Authorization", &alice), ("Content-Type", media)], Some(r#"{"product_id": 3}"#));
        assert_eq!(
            (status, err),
            (400, json!({"code": "PGRST102", "details": null, "hint": null, "message": format!("Content-Type not acceptable: {media}")}))
        );
    }
    // A raw text body goes to a function's one unnamed text parameter only, as PostgREST passes it.
    let (status, _, err) =
        call(port, "POST", "/rpc/customer_tier", &[("Authorization", &alice), ("Content-Type", "text/plain; charset=utf-8")], Some("{}"));
    assert_eq!(
        (status, err),
        (
            404,
            json!({"code": "PGRST202", "hint": null, "message": "Could not find the function public.customer_tier in the schema cache",
                   "details": "Searched for the function public.customer_tier with a single unnamed text parameter, but no matches were found in the schema cache."})
        )
    );
    assert!(admin_query_in(DB, &format!("SELECT 1 FROM wishlist WHERE user_id = '{ALICE}' AND product_id = 3")).is_empty());
    // JSON with a charset, no Content-Type at all, and a form are accepted.
    let (status, _, _) = call(
        port,
        "POST",
        "/wishlist",
        &[("Authorization", &alice), ("Content-Type", "application/json; charset=utf-8")],
        Some(r#"{"product_id": 3}"#),
    );
    assert_eq!(status, 201);
    let (status, _, rows) = call(
        port,
        "POST",
        "/wishlist?select=product_id",
        &[("Authorization", &alice), ("Content-Type", "application/x-www-form-urlencoded"), ("Prefer", "return=representation")],
        Some("product_id=5"),
    );
    assert_eq!((status, rows), (201, json!([{"product_id": 5}])));
    let (status, _, _) = call(port, "DELETE", "/wishlist?product_id=in.(3,5)", &[("Authorization", &alice)], None);
    assert_eq!(status, 204);
}

// What curl sends for PostgREST's documented examples typed as they are.
#[test]
fn request_lines_with_unencoded_characters_get_an_answer() {
    let port = open_proxy();
    let ask = |target: &str| raw_http(port, format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    let (status, _, body) = ask("/products?select=name,price&order=price.desc&limit=1").expect("an answer");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = ask("/products?select=name&name=eq.Stoneware%20Cup&price=gt.1&stock_quantity=not.is.null").expect("an answer");
    assert_eq!((status, serde_json::from_slice::<Value>(&body).unwrap()), (200, json!([{"name": "Stoneware Cup"}])));
    // Characters pingora escapes itself (UTF-8 too) are served, as values.
    let (status, _, body) = ask("/products?select=name&name=in.({a},b|c^d,café)").expect("an answer");
    assert_eq!((status, serde_json::from_slice::<Value>(&body).unwrap()), (200, json!([])));
    // A raw space is taken as %20 (pingora escapes it), as curl users mean.
    let (status, _, body) = ask("/products?select=name&name=eq.Stoneware Cup").expect("an answer");
    assert_eq!((status, serde_json::from_slice::<Value>(&body).unwrap()), (200, json!([{"name": "Stoneware Cup"}])));
    for target in ["/products?select=name,attributes->>color", "/products?select=name&name=eq.<b>", "/products?name=eq.\"Stoneware\""] {
        let (status, _, body) = ask(target).expect("an answer, not a dropped connection");
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, err["code"].as_str()), (400, Some("PGRST100")), "{target}");
        assert!(err["details"].as_str().unwrap().contains("percent-encoded"), "{err}");
    }
}

// The audit log records who the client is; a client cannot say so itself.
#[test]
fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let forged = [("X-Forwarded-For", "203.0.113.66"), ("X-Real-IP", "203.0.113.67")];
    let (status, _, said) = call(open_proxy(), "GET", "/rpc/request_setting?name=request.headers", &forged, None);
    assert_eq!(status, 200);
    let headers: Value = serde_json::from_str(said.as_str().unwrap()).unwrap();
    assert_eq!((&headers["x-forwarded-for"], &headers["x-real-ip"]), (&json!("127.0.0.1"), &json!("127.0.0.1")));
    // A write's audit row: the peer, not the forged address.
    admin_execute(
        DB,
        "INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount)
                       VALUES (9901, 'user_2edgeXff', 'X', 'x@example.com', '{}', 1, 1) ON CONFLICT DO NOTHING",
    );
    let xff = token("user_2edgeXff");
    let auth = format!("Bearer {xff}");
    let (status, _, body) = call(
        open_proxy(),
        "POST",
        "/rpc/cancel_order",
        &[("Authorization", &auth), ("X-Forwarded-For", "203.0.113.66"), ("Content-Type", "application/json")],
        Some(r#"{"order_id": 9901}"#),
    );
    assert_eq!(status, 200, "{body}");
    let ip: String = admin_query_in(
        DB,
        "SELECT host(ip_address) FROM audit_log WHERE resource_type = 'orders' AND resource_id = '9901' ORDER BY audit_id DESC LIMIT 1",
    )[0]
    .get(0);
    assert_eq!(ip, "127.0.0.1");
    // Behind a trusted proxy (the test's own address), its X-Forwarded-For holds.
    let (_trusting, port) = proxy_with("server-trusted-proxies = \"127.0.0.1/32\"");
    let (_, _, said) =
        call(port, "GET", "/rpc/request_setting?name=request.headers", &[("X-Forwarded-For", "198.51.100.9, 203.0.113.66")], None);
    let headers: Value = serde_json::from_str(said.as_str().unwrap()).unwrap();
    assert_eq!(headers["x-forwarded-for"], "203.0.113.66", "the hop the trusted proxy saw");
    // A proxy that sets X-Real-IP passes X-Forwarded-For on as the client
    // wrote it: only the configured header is believed.
    let (_real_ip, port) = proxy_with("server-trusted-proxies = \"127.0.0.1/32\"\nserver-trusted-proxy-header = \"x-real-ip\"");
    let (_, _, said) = call(
        port,
        "GET",
        "/rpc/request_setting?name=request.headers",
        &[("X-Forwarded-For", "1.2.3.4"), ("X-Real-IP", "198.51.100.8")],
        None,
    );
    let headers: Value = serde_json::from_str(said.as_str().unwrap()).unwrap();
    assert_eq!((&headers["x-forwarded-for"], &headers["x-real-ip"]), (&json!("198.51.100.8"), &json!("198.51.100.8")));
}
