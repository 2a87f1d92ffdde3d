//! Attacks from the security review (issue 15), each performed as written
//! against the real proxy binary and a database of its own with the
//! reference schema and the demo data, as a signed-up customer or as
//! anonymous. Each one failed before its fix.

use clerk_jwt::test_keys::{now, sign, sign_header, KID};
use pg_clerk_e2e::{
    admin_execute, admin_query_in, free_port, fresh_api_database, head_value, http, metric_sample, start_proxy, Running,
    REQUEST_SETTING_FUNCTION,
};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const DB: &str = "pg_clerk_security";
const ISSUER: &str = "https://clerk.example.com";
const PARTY: &str = "https://app.example.com";
const ALICE: &str = "user_2demoAlice";
const BOB: &str = "user_2demoBob";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The database, with two helpers the attacks read settings through.
fn database() -> &'static str {
    static DSN: OnceLock<String> = OnceLock::new();
    DSN.get_or_init(|| {
        let dsn = fresh_api_database(DB);
        admin_execute(
            DB,
            &format!(
                "{REQUEST_SETTING_FUNCTION}
             -- Ignores the statement timeout's cancel once, as JIT compilation does.
             CREATE FUNCTION public.outlast_timeout() RETURNS text LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO categories (name, slug) VALUES ('outlast', 'outlast');
                 BEGIN PERFORM pg_sleep(3); EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(20); END;
                 RETURN 'finished';
             END $$ SECURITY DEFINER;
             GRANT EXECUTE ON FUNCTION public.outlast_timeout() TO anon;
             -- A write that takes 3 s, for a client that does not wait for it.
             CREATE FUNCTION public.slow_write(slug text) RETURNS text LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO categories (name, slug) VALUES ('slow', slow_write.slug);
                 PERFORM pg_sleep(3);
                 RETURN 'written';
             END $$ SECURITY DEFINER;
             GRANT EXECUTE ON FUNCTION public.slow_write(text) TO anon;
             CREATE FUNCTION public.sleep_for(ms integer) RETURNS text LANGUAGE sql AS $$ SELECT pg_sleep(ms / 1000.0)::text || 'slept' $$;
             GRANT EXECUTE ON FUNCTION public.sleep_for(integer) TO anon, authenticated;
             -- The proxy's db-statement-timeout for anonymous callers here;
             -- customers get a role setting of their own.
             ALTER ROLE anon IN DATABASE pg_clerk_security RESET statement_timeout;
             ALTER ROLE authenticated IN DATABASE pg_clerk_security SET statement_timeout = '2s';
             ALTER ROLE authenticated IN DATABASE pg_clerk_security SET work_mem = '2MB';"
            ),
        );
        dsn
    })
}

fn pem_path() -> String {
    format!("{}/../tests/fixtures/test_rs256_public.pem", env!("CARGO_MANIFEST_DIR"))
}

/// A proxy on `database()`, networkless (the PEM key), plus `extra` lines.
fn proxy_with(extra: &str, admin_port: u16) -> (Running, u16) {
    proxy_choosing_roles("db-staff-role = \"clerk_staff\"\nclerk-staff-org = \"org_2secStaff\"", extra, admin_port)
}

/// `roles`: how a token's database role is chosen (the staff rule, or
/// `jwt-role-claim-key`: not both).
fn proxy_choosing_roles(roles: &str, extra: &str, admin_port: u16) -> (Running, u16) {
    start_proxy(&format!(
        "db-uri = \"{}\"\ndb-anon-role = \"anon\"\n{roles}\nclerk-public-key = \"@{}\"\nclerk-issuer = \"{ISSUER}\"\n\
         clerk-authorized-parties = \"{PARTY}\"\nclerk-clock-skew = 0\nadmin-server-port = {admin_port}\n{extra}",
        database(),
        pem_path()
    ))
}

fn proxy() -> &'static (Running, u16, u16) {
    static PROXY: OnceLock<(Running, u16, u16)> = OnceLock::new();
    PROXY.get_or_init(|| {
        let admin = free_port();
        let (running, port) = proxy_with(&format!("db-statement-timeout = 500\nclerk-webhook-secret = \"{WEBHOOK_SECRET}\""), admin);
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
fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, String, Value) {
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

// 2. SQL through `::cast` in select, open to anonymous callers.
#[test]
fn a_cast_cannot_carry_sql() {
    let attack =
        "/products?select=name::text%20FROM%20products%20_pgrst_t0%20UNION%20SELECT%20rolname%20FROM%20pg_roles%20UNION%20SELECT%20name";
    let (status, body) = get(attack, None);
    assert_eq!(status, 400, "{body}");
    assert!(!body.to_string().contains("authenticator"), "{body}");
    let (status, body) = get("/products?select=name::nope&limit=1", None);
    assert_eq!((status, body["code"].as_str()), (400, Some("42704")), "{body}");
    assert_eq!(body["message"], "type \"nope\" does not exist");
    // Attack run: a cast to an object identifier type probes the catalogs
    // ('authenticator'::regrole answers whether that role exists).
    for lookup in ["regrole", "regclass", "pg_catalog.regproc", "aclitem", "_aclitem"] {
        let (status, body) = get(&format!("/products?select=name::{lookup}&limit=1"), None);
        assert_eq!((status, body["code"].as_str()), (400, Some("PGRST100")), "{lookup}: {body}");
    }
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
    let (_running, port) = proxy_choosing_roles("jwt-role-claim-key = \".role\"", "", free_port());
    let internal = ["clerk_webhook", "clerk_sync", "bi_reader", "authenticator", "postgres"];
    for role in internal {
        let t = token(ALICE, json!({"role": role}));
        let body = json!({"svix_id": "msg_x", "event": {"type": "organizationMembership.created"}});
        for (method, path, body) in [("POST", "/rpc/clerk_apply_webhook", Some(&body)), ("GET", "/orders", None)] {
            let (status, head, err) = request(port, method, path, Some(&t), &[], body);
            assert_eq!((status, err["code"].as_str()), (401, Some("PGRST303")), "{role} {path}: {err}");
            assert!(head_value(&head, "www-authenticate").is_some(), "{head}");
        }
    }
    let (status, _, _) = request(port, "GET", "/orders", Some(&token(ALICE, json!({"role": "authenticated"}))), &[], None);
    assert_eq!(status, 200);
    // A superuser or BYPASSRLS role named in the allowlist stops start-up.
    admin_execute("postgres", "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sec_bypass') THEN CREATE ROLE sec_bypass NOLOGIN BYPASSRLS; END IF; END $$");
    let conf = std::env::temp_dir().join("clerk-proxy-sec-bypass.conf");
    std::fs::write(
        &conf,
        format!(
            "db-uri = \"{}\"\nclerk-public-key = \"@{}\"\ndb-allowed-roles = \"authenticated,sec_bypass\"\nserver-port = {}\n",
            database(),
            pem_path(),
            free_port()
        ),
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
        assert!(head_value(&head, "www-authenticate").is_some_and(|c| c.contains("invalid_token")), "{name}: {head}");
    }
    // Signed and well-formed, but a sub that pg_clerk refuses: 403 28000, no challenge.
    let (status, head, err) = request(proxy().1, "GET", "/orders", Some(&token("usr_1", json!({}))), &[], None);
    assert_eq!((status, err["code"].as_str()), (403, Some("28000")), "{err}");
    assert_eq!(head_value(&head, "www-authenticate"), None);
}

// 11. Counts that see through RLS.
#[test]
fn planned_and_estimated_counts_do_not_see_through_row_security() {
    let alice = token(ALICE, json!({}));
    for count in ["planned", "estimated", "exact"] {
        let (status, head, rows) =
            request(proxy().1, "GET", "/orders?select=order_id", Some(&alice), &[("Prefer", &format!("count={count}"))], None);
        assert_eq!(status, 200, "{rows}");
        let visible = rows.as_array().unwrap().len();
        assert_eq!(head_value(&head, "content-range"), Some(format!("0-{}/{visible}", visible - 1).as_str()), "count={count}");
    }
    // An e-mail filter's estimate no longer tells a real address from an unknown one.
    let bob = token(BOB, json!({}));
    for email in ["alice@example.com", "nobody@example.com"] {
        let path = format!("/orders?billing_email=eq.{email}");
        let (_, head, _) = request(proxy().1, "GET", &path, Some(&bob), &[("Prefer", "count=planned")], None);
        assert_eq!(head_value(&head, "content-range"), Some("*/0"), "{email}");
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
    slow.write_all(b"POST /rpc/request_setting HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"na")
        .unwrap();
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

/// A customer of their own with one pending order of 20.00 and one review
/// awaiting moderation; returns the order id.
fn customer_with_order(user: &str) -> i64 {
    database();
    admin_execute(
        DB,
        &format!(
            "INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status)
             VALUES ('{user}', 'M', 'm@example.com', '{{}}', 20, 20, 'pending', 'pending');
             INSERT INTO product_reviews (product_id, user_id, rating, title) VALUES (8, '{user}', 5, 'mine')"
        ),
    );
    admin_query_in(DB, &format!("SELECT order_id FROM orders WHERE user_id = '{user}'"))[0].get(0)
}

fn one_text(sql: &str) -> String {
    database();
    admin_query_in(DB, sql)[0].get(0)
}

// 1. An organization's admin (which any user can become by creating one)
// is not a shop admin; org permissions grant nothing shop-wide.
#[test]
fn an_organization_role_grants_nothing_shop_wide() {
    let mallory = "user_2secMallory";
    let order = customer_with_order(mallory);
    let org_tokens = [
        (
            "v2 org:admin",
            token(mallory, json!({"o": {"id": "org_2secOwn", "rol": "admin", "per": "orders:read,orders:write,users:erase"}})),
        ),
        (
            "v1 org:admin",
            token(
                mallory,
                json!({"v": null, "org_id": "org_2secOwn", "org_role": "org:admin",
                                               "org_permissions": ["org:orders:read", "org:products:write", "coupons:write"]}),
            ),
        ),
        ("v1 org:manager", token(mallory, json!({"v": null, "org_id": "org_2secOwn", "org_role": "org:manager"}))),
        ("v2 org:employee", token(mallory, json!({"o": {"id": "org_2secOwn", "rol": "employee"}}))),
    ];
    let port = proxy().1;
    let price = one_text("SELECT price::text FROM products WHERE product_id = 1");
    for (what, t) in &org_tokens {
        // Every order with names and e-mails: only their own.
        let (status, rows) = get("/orders?select=user_id,billing_email", Some(t));
        assert_eq!(status, 200, "{what}: {rows}");
        assert_eq!(rows, json!([{"user_id": mallory, "billing_email": "m@example.com"}]), "{what}");
        // The audit log: nothing of anyone else.
        let (status, rows) = get(&format!("/audit_log?select=user_id&user_id=neq.{mallory}"), Some(t));
        assert_eq!((status, rows.clone()), (200, json!([])), "{what}");
        // Their own order marked paid, a product at 0.01: no row changes.
        for (path, patch) in [
            (format!("/orders?order_id=eq.{order}"), json!({"payment_status": "paid"})),
            ("/products?product_id=eq.1".to_owned(), json!({"price": 0.01})),
        ] {
            let (status, _, body) = request(port, "PATCH", &path, Some(t), &[("Prefer", "return=representation")], Some(&patch));
            assert!(status == 200 && body == json!([]) || status == 403, "{what} PATCH {path}: {status} {body}");
        }
        assert_eq!(one_text(&format!("SELECT payment_status FROM orders WHERE order_id = {order}")), "pending", "{what}");
        assert_eq!(one_text("SELECT price::text FROM products WHERE product_id = 1"), price, "{what}");
        // A 100 % coupon.
        let coupon = json!({"code": "SEC100", "discount_type": "percentage", "discount_value": 100});
        let (status, _, body) = request(port, "POST", "/coupons", Some(t), &[], Some(&coupon));
        assert_eq!((status, body["code"].as_str()), (403, Some("42501")), "{what}: {body}");
        // Approving their own review.
        let (status, _, body) = request(port, "PATCH", "/product_reviews?title=eq.mine", Some(t), &[], Some(&json!({"is_approved": true})));
        assert_eq!((status, body["details"].as_str()), (403, Some("review_approval_needs_moderator")), "{what}: {body}");
        // Erasing another user.
        let (status, _, body) = request(port, "POST", "/rpc/erase_clerk_user", Some(t), &[], Some(&json!({"target": BOB})));
        assert_eq!((status, body["code"].as_str()), (403, Some("PT403")), "{what}: {body}");
        assert_eq!(one_text("SELECT billing_email FROM orders WHERE order_id = 3"), "bob@example.com", "{what}");
    }
    // The one staff organization named in shop_settings is staff.
    admin_execute(DB, "UPDATE shop_settings SET staff_org_id = 'org_2secStaff'");
    let staff = token(mallory, json!({"o": {"id": "org_2secStaff", "rol": "admin"}}));
    let (status, rows) = get("/orders?select=order_id&order_id=in.(1,3)&order=order_id", Some(&staff));
    assert_eq!((status, rows), (200, json!([{"order_id": 1}, {"order_id": 3}])));
    // So is a role from public metadata, which users cannot write.
    let metadata = token(mallory, json!({"metadata": {"role": "manager"}}));
    let (status, rows) = get("/orders?select=order_id&order_id=in.(1,3)&order=order_id", Some(&metadata));
    assert_eq!((status, rows), (200, json!([{"order_id": 1}, {"order_id": 3}])));
}

// 7. Client-chosen primary keys.
#[test]
fn a_customer_cannot_choose_generated_keys() {
    let alice = token(ALICE, json!({}));
    database();
    let next: i64 = admin_query_in(DB, "SELECT coalesce(max(cart_id), 0) + 5 FROM cart")[0].get(0);
    for (path, row) in [
        ("/cart", json!([{"cart_id": next, "product_id": 2}, {"cart_id": next + 1, "product_id": 3}])),
        ("/wishlist", json!({"wishlist_id": 90_001, "product_id": 5})),
        ("/product_reviews", json!({"review_id": 90_001, "product_id": 5, "rating": 3})),
        ("/projects", json!({"project_id": 90_001, "org_id": "org_2demoAcme", "name": "x"})),
    ] {
        let (status, _, body) = request(proxy().1, "POST", path, Some(&alice), &[], Some(&row));
        assert_eq!((status, body["code"].as_str()), (403, Some("42501")), "{path}: {body}");
    }
    assert!(admin_query_in(DB, &format!("SELECT 1 FROM cart WHERE cart_id >= {next}")).is_empty());
}

// 8. Inventory hoarding: pending orders can be cancelled (and expire).
#[test]
fn pending_orders_are_cancelled_by_their_owner_and_release_stock() {
    let port = proxy().1;
    // Alice cannot cancel Bob's order (it is not found for her).
    let (status, _, body) = request(port, "POST", "/rpc/cancel_order", Some(&token(ALICE, json!({}))), &[], Some(&json!({"order_id": 3})));
    assert_eq!((status, body["code"].as_str()), (404, Some("PT404")), "{body}");
    let stock = || one_text("SELECT string_agg(stock_quantity::text, ',' ORDER BY product_id) FROM products WHERE product_id IN (2, 3)");
    let before: Vec<i64> = stock().split(',').map(|s| s.parse().unwrap()).collect();
    let (status, _, body) = request(port, "POST", "/rpc/cancel_order", Some(&token(BOB, json!({}))), &[], Some(&json!({"order_id": 3})));
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")), "{body}");
    let after: Vec<i64> = stock().split(',').map(|s| s.parse().unwrap()).collect();
    assert_eq!(after, vec![before[0] + 1, before[1] + 1], "order 3's one of each went back");
    // Twice is a conflict, not a second release.
    let (status, _, body) = request(port, "POST", "/rpc/cancel_order", Some(&token(BOB, json!({}))), &[], Some(&json!({"order_id": 3})));
    assert_eq!((status, body["code"].as_str()), (409, Some("PT409")), "{body}");
    // The expiry job is for the scheduler, not API callers.
    let (status, _, body) = request(port, "POST", "/rpc/expire_pending_orders", Some(&token(BOB, json!({}))), &[], Some(&json!({})));
    assert!(matches!(status, 403 | 404), "{status} {body}");
}

fn deliver(id: &str, body: &Value) -> (u16, Value) {
    use base64::Engine;
    use hmac::Mac;
    let ts = now() as i64;
    let key = base64::engine::general_purpose::STANDARD.decode(&WEBHOOK_SECRET[6..]).unwrap();
    let body = body.to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let headers = [("svix-id", id), ("svix-timestamp", &ts.to_string()), ("svix-signature", &format!("v1,{sig}"))];
    let (status, _, body) = request(proxy().1, "POST", "/webhooks/clerk", None, &headers, Some(&serde_json::from_str(&body).unwrap()));
    (status, body)
}

// 9. Webhooks out of order: an erased user stays erased, older updates lose.
#[test]
fn late_webhooks_do_not_resurrect_or_roll_back_users() {
    let user = |kind: &str, last: &str, at: i64| {
        json!({"type": kind, "timestamp": at + 5, "data": {"id": "user_2secHook", "first_name": "Olga", "last_name": last, "updated_at": at,
               "primary_email_address_id": "idn_1", "email_addresses": [{"id": "idn_1", "email_address": format!("{}@example.com", last.to_lowercase())}]}})
    };
    let t0 = 1_767_225_600_000_i64;
    assert_eq!(deliver("msg_sec_1", &user("user.created", "Orr", t0)), (200, json!({"outcome": "applied"})));
    assert_eq!(deliver("msg_sec_2", &user("user.updated", "Newer", t0 + 2000)), (200, json!({"outcome": "applied"})));
    assert_eq!(deliver("msg_sec_3", &user("user.updated", "Older", t0 + 1000)), (200, json!({"outcome": "stale"})));
    assert_eq!(one_text("SELECT last_name FROM clerk_users WHERE user_id = 'user_2secHook'"), "Newer");
    let deleted = json!({"type": "user.deleted", "timestamp": t0 + 3005, "data": {"id": "user_2secHook", "deleted": true}});
    assert_eq!(deliver("msg_sec_4", &deleted), (200, json!({"outcome": "applied"})));
    assert_eq!(deliver("msg_sec_5", &user("user.updated", "Back", t0 + 9000)), (200, json!({"outcome": "stale"})));
    assert_eq!(deliver("msg_sec_6", &user("user.created", "Again", t0 + 9500)), (200, json!({"outcome": "stale"})));
    assert!(admin_query_in(DB, "SELECT 1 FROM clerk_users WHERE user_id = 'user_2secHook'").is_empty());
}

// 10. Data anonymous callers should not read.
#[test]
fn costs_and_reviewers_stay_private() {
    let (status, body) = get("/products?select=cost_price&limit=1", None);
    assert_eq!((status, body["code"].as_str()), (400, Some("42703")), "{body}");
    let (status, rows) = get("/products?select=*&product_id=eq.1", None);
    assert_eq!(status, 200, "{rows}");
    assert!(rows[0].get("cost_price").is_none(), "{rows}");
    let (status, body) = get("/product_costs?select=cost_price", None);
    assert_eq!((status, body["code"].as_str()), (401, Some("42501")), "{body}");
    let (status, rows) = get("/product_costs?select=cost_price", Some(&token(BOB, json!({}))));
    assert_eq!((status, rows), (200, json!([])));
    let (status, body) = get("/product_reviews?select=user_id", None);
    assert_eq!((status, body["code"].as_str()), (401, Some("42501")), "{body}");
    let (status, rows) = get("/public_reviews?select=*&product_id=eq.4", None);
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["title"], "Consistent grind", "{rows}");
    assert!(rows[0].get("user_id").is_none() && rows[0].get("order_id").is_none(), "{rows}");
    let (status, rows) = get(&format!("/product_reviews?select=title&user_id=eq.{ALICE}"), Some(&token(BOB, json!({}))));
    assert_eq!((status, rows), (200, json!([])));
}

// Low: verifying a token again through the API is not offered (was 500).
#[test]
fn clerk_authenticate_is_not_callable_through_the_api() {
    let body = json!({"token": "a.b.c"});
    let (status, _, err) = request(proxy().1, "POST", "/rpc/clerk_authenticate", None, &[], Some(&body));
    assert_eq!((status, err["code"].as_str()), (401, Some("42501")), "{err}");
    let (status, _, err) = request(proxy().1, "POST", "/rpc/clerk_authenticate", Some(&token(ALICE, json!({}))), &[], Some(&body));
    assert_eq!((status, err["code"].as_str()), (403, Some("42501")), "{err}");
}

// Low: projects.created_by is the caller, inactive products are not found,
// coupon codes cannot be probed without limit.
#[test]
fn members_products_and_coupons_cannot_be_abused() {
    let port = proxy().1;
    let alice = token(ALICE, json!({"o": {"id": "org_2demoAcme", "rol": "member"}}));
    let row = json!({"org_id": "org_2demoAcme", "name": "sec-forged", "created_by": BOB});
    let (status, _, body) = request(port, "POST", "/projects", Some(&alice), &[("Prefer", "return=representation")], Some(&row));
    match status {
        201 => assert_eq!(body[0]["created_by"], ALICE, "{body}"),
        _ => assert_eq!((status, body["code"].as_str()), (403, Some("42501")), "{body}"),
    }
    assert!(admin_query_in(DB, &format!("SELECT 1 FROM projects WHERE name = 'sec-forged' AND created_by = '{BOB}'")).is_empty());
    admin_execute(DB, "INSERT INTO products (product_id, name, slug, price, stock_quantity, is_active) VALUES (9801, 'Unreleased', 'sec-unreleased', 10, 5, false) ON CONFLICT DO NOTHING");
    let (status, _, body) = request(port, "POST", "/cart", Some(&token(ALICE, json!({}))), &[], Some(&json!({"product_id": 9801})));
    assert_eq!((status, body["code"].as_str(), body["message"].as_str()), (404, Some("PT404"), Some("product 9801 not found")), "{body}");
    // Wrong codes: refused with 404 until the cap, then 429.
    let carol = token("user_2secCarol", json!({}));
    let order = customer_with_order("user_2secCarol");
    let mut statuses = vec![];
    for i in 0..12 {
        let (status, _, _) =
            request(port, "POST", "/rpc/redeem_coupon", Some(&carol), &[], Some(&json!({"code": format!("GUESS{i}"), "order_id": order})));
        statuses.push(status);
    }
    assert_eq!(statuses[..10], [404; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429, 429], "{statuses:?}");
}

// Attack run: a client that hangs up does not leave its statement running
// (holding a pool connection) or committing.
#[test]
fn a_statement_whose_client_hangs_up_is_cancelled_and_rolled_back() {
    use std::io::Write;
    let admin = free_port();
    let (_running, port) = proxy_with("db-statement-timeout = 0", admin);
    let body = r#"{"slug": "client-gone"}"#;
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        socket,
        "POST /rpc/slow_write HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    drop(socket);
    let started = Instant::now();
    let running = || {
        !admin_query_in(
            DB,
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%slow_write%' AND state = 'active' AND pid <> pg_backend_pid()",
        )
        .is_empty()
    };
    while running() && started.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!running(), "the statement still runs {:?} after its client left", started.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    assert!(admin_query_in(DB, "SELECT 1 FROM categories WHERE slug = 'client-gone'").is_empty(), "the write committed for nobody");
    assert_eq!(metric_sample(admin, "clerk_proxy_db_client_gone_cancels_total"), Some(1.0));
    // The same request, waited for, commits.
    let (status, _, answer) = request(port, "POST", "/rpc/slow_write", None, &[], Some(&json!({"slug": "client-stayed"})));
    assert_eq!((status, answer), (200, json!("written")));
}

// Attack run: an expensive anonymous read held a connection for the whole
// db-statement-timeout. Roles' own settings (ALTER ROLE … SET, as PostgREST
// applies them) now bound each role's requests: sql/ gives anon 3 s.
#[test]
fn each_role_runs_with_its_own_settings() {
    let alice = token(ALICE, json!({}));
    assert_eq!(get("/rpc/request_setting?name=statement_timeout", None), (200, json!("500ms")));
    assert_eq!(get("/rpc/request_setting?name=statement_timeout", Some(&alice)), (200, json!("2s")));
    assert_eq!(get("/rpc/request_setting?name=work_mem", Some(&alice)), (200, json!("2MB")));
    // A second is within the role's 2 s, though over db-statement-timeout.
    let (status, answer) = get("/rpc/sleep_for?ms=1000", Some(&alice));
    assert_eq!((status, answer), (200, json!("slept")));
    // sql/ bounds anonymous requests in the shop's database.
    let setting = admin_query_in(
        DB,
        "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
                                       WHERE d.datname = 'pg_clerk_api' AND s.setrole = 'anon'::regrole",
    );
    assert_eq!(setting.first().map(|r| r.get::<_, String>(0)).as_deref(), Some("statement_timeout=3s"));
}

// Attack run: a dozen expensive anonymous requests at once took the whole
// pool. db-max-connections-per-client caps what one client runs at once.
#[test]
fn one_client_cannot_take_the_whole_pool() {
    let admin = free_port();
    let (_running, port) = proxy_with("db-pool = 4\ndb-max-connections-per-client = 2\ndb-statement-timeout = 0", admin);
    let slow =
        |token: Option<String>| std::thread::spawn(move || request(port, "GET", "/rpc/sleep_for?ms=1500", token.as_deref(), &[], None));
    let anonymous: Vec<_> = (0..3)
        .map(|_| {
            let t = slow(None);
            std::thread::sleep(Duration::from_millis(100));
            t
        })
        .collect();
    let alice = slow(Some(token(ALICE, json!({"exp": now() + 60}))));
    let mut statuses: Vec<u16> = anonymous.into_iter().map(|t| t.join().unwrap().0).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 429], "two run, the third is refused at once");
    assert_eq!(alice.join().unwrap().0, 200, "another client still gets a connection");
    assert_eq!(metric_sample(admin, "clerk_proxy_rate_limited_total{limit=\"client\"}"), Some(1.0));
    assert_eq!(request(port, "GET", "/rpc/sleep_for?ms=1", None, &[], None).0, 200, "finished requests free their slots");
}
