//! clerk-proxy end to end: the binary, a real cluster with pg_clerk, the
//! reference schema and the demo data, and Clerk-style RS256 tokens. Each
//! user sees only their own rows; every kind of bad request is refused
//! with PostgREST's error shape; injection attempts stay values.

use clerk_jwt::test_keys::{now, sign, sign_hs256, sign_with};
use pg_clerk_e2e::{admin_query, api_dsn, free_port, http, metric_sample, serve_jwks, start_proxy, Running};
use serde_json::{json, Value};
use std::sync::OnceLock;

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ALICE: &str = "user_2demoAlice";
const BOB: &str = "user_2demoBob";

fn proxy() -> &'static (Running, u16) {
    static PROXY: OnceLock<(Running, u16)> = OnceLock::new();
    PROXY.get_or_init(|| {
        // Keys come over HTTP, as from Clerk's /.well-known/jwks.json.
        let jwks_url = serve_jwks(clerk_jwt::test_keys::JWKS);
        start_proxy(&format!(
            "db-uri = \"{}\"\ndb-anon-role = \"anon\"\ndb-staff-role = \"clerk_staff\"\nclerk-jwks-url = \"{jwks_url}\"\nclerk-issuer = \"https://clerk.example.com\"\n\
             clerk-authorized-parties = \"https://app.example.com\"\nclerk-webhook-secret = \"{WEBHOOK_SECRET}\"\nadmin-server-port = {}",
            api_dsn(),
            admin_port()
        ))
    })
}

/// The admin listener of `proxy()`.
fn admin_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(free_port)
}

/// `clerk_proxy_webhooks_total` for `outcome` on `proxy()` (only the
/// webhook test sends webhooks to it).
fn webhooks_counted(outcome: &str) -> u64 {
    let sample = format!("clerk_proxy_webhooks_total{{outcome=\"{outcome}\"}}");
    metric_sample(admin_port(), &sample).unwrap_or_else(|| panic!("no {sample} in /metrics")) as u64
}

fn token_for(user: &str) -> String {
    sign(&json!({"sub": user, "sid": "sess_e2e", "iss": "https://clerk.example.com", "azp": "https://app.example.com",
                 "iat": now() - 5, "exp": now() + 600, "nbf": now() - 5}))
}

fn get(path: &str, token: Option<&str>) -> (u16, Value) {
    call("GET", path, token, &[], None)
}

fn call(method: &str, path: &str, token: Option<&str>, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, Value) {
    let mut all: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Some(t) = token {
        all.push(("Authorization".into(), format!("Bearer {t}")));
    }
    let (status, _, body) = http(proxy().1, method, path, &all, body.map(|b| b.to_string()).as_deref());
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

fn users_of(rows: &Value) -> Vec<String> {
    let mut u: Vec<String> = rows.as_array().unwrap().iter().map(|r| r["user_id"].as_str().unwrap().to_owned()).collect();
    u.dedup();
    u
}

#[test]
fn each_user_sees_only_their_own_orders_and_cart() {
    let (alice, bob) = (token_for(ALICE), token_for(BOB));
    let (status, rows) = get("/orders?select=order_number,user_id,total_amount&order=order_number", Some(&alice));
    assert_eq!(status, 200, "{rows}");
    assert_eq!(users_of(&rows), [ALICE]);
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let (_, rows) = get("/orders", Some(&bob));
    assert_eq!(users_of(&rows), [BOB]);
    // Asking for the other user's rows explicitly returns nothing.
    let (status, rows) = get(&format!("/orders?user_id=eq.{ALICE}"), Some(&bob));
    assert_eq!((status, rows), (200, json!([])));
    let (_, cart) = get("/cart?select=user_id,quantity", Some(&alice));
    assert_eq!(users_of(&cart), [ALICE]);
    // Order lines follow their order.
    let (_, lines) = get("/order_items?select=order_id", Some(&bob));
    assert!(lines.as_array().unwrap().iter().all(|l| l["order_id"] == 3), "{lines}");
}

#[test]
fn anonymous_reads_the_catalogue_only() {
    let (status, products) = get("/products?select=name,price&is_active=is.true&order=price.desc&limit=3", None);
    assert_eq!(status, 200);
    assert_eq!(products.as_array().unwrap().len(), 3);
    assert_eq!(products[0]["name"], "Conical Burr Grinder");
    let (status, err) = get("/orders", None);
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["code"], "42501");
}

#[test]
fn filters_ranges_and_single_objects() {
    let alice = token_for(ALICE);
    let (status, rows) = get("/orders?select=status&or=(status.eq.shipped,total_amount.gt.1000)", Some(&alice));
    assert_eq!((status, rows), (200, json!([{"status": "shipped"}])));
    let (status, rows) = get("/orders?select=n:order_id&status=not.in.(shipped,cancelled)", Some(&alice));
    assert_eq!((status, rows), (200, json!([{"n": 1}])));
    let (status, one) =
        call("GET", "/orders?select=status&order_id=eq.2", Some(&alice), &[("Accept", "application/vnd.pgrst.object+json")], None);
    assert_eq!((status, one), (200, json!({"status": "shipped"})));
    let (status, err) = call("GET", "/orders", Some(&alice), &[("Accept", "application/vnd.pgrst.object+json")], None);
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST116")));
    let (_, headers, _) = http(proxy().1, "GET", "/products?select=name&limit=2&offset=1", &[], None);
    assert!(headers.to_ascii_lowercase().contains("content-range: 1-2/*"), "{headers}");
}

#[test]
fn functions_over_http() {
    let bob = token_for(BOB);
    let (status, tier) = get("/rpc/customer_tier", Some(&bob));
    assert_eq!((status, tier), (200, json!("Bronze")));
    let (status, order) = call("POST", "/rpc/redeem_coupon", Some(&bob), &[], Some(&json!({"code": "WELCOME10", "order_id": 3})));
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["discount_amount"], 10.00);
    // The function's own refusal keeps its status, message and detail code.
    let (status, err) = call("POST", "/rpc/redeem_coupon", Some(&bob), &[], Some(&json!({"code": "WINTER", "order_id": 3})));
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["details"], "order_has_coupon");
    let (status, err) = call("POST", "/rpc/redeem_coupon", Some(&bob), &[], Some(&json!({"code": "SPRING", "order_id": 1})));
    assert_eq!((status, err["details"].as_str()), (404, Some("order_not_found")), "{err}");
    // A volatile function through GET runs read-only: refused, nothing written.
    let (status, err) = get("/rpc/redeem_coupon?code=SPRING&order_id=3", Some(&bob));
    assert_eq!((status, err["code"].as_str()), (405, Some("25006")), "{err}");
    let (status, err) = call("POST", "/rpc/redeem_coupon", Some(&bob), &[], Some(&json!({"code": "SPRING"})));
    assert_eq!((status, err["code"].as_str()), (404, Some("PGRST202")), "{err}");
}

#[test]
fn every_kind_of_bad_token_is_401() {
    let base = json!({"sub": ALICE, "sid": "sess_e2e", "iss": "https://clerk.example.com", "azp": "https://app.example.com", "iat": now(), "exp": now() + 600});
    let with = |extra: Value| {
        let mut c = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // Alice's signature on Bob's claims.
    let (alice_token, bob_token) = (token_for(ALICE), token_for(BOB));
    let (a, b): (Vec<&str>, Vec<&str>) = (alice_token.split('.').collect(), bob_token.split('.').collect());
    let forged = format!("{}.{}.{}", a[0], b[1], a[2]);
    let cases = [
        ("payload edited", forged, "PGRST301"),
        ("expired", sign(&with(json!({"exp": now() - 60}))), "PGRST303"),
        ("not yet valid", sign(&with(json!({"nbf": now() + 600}))), "PGRST303"),
        ("wrong issuer", sign(&with(json!({"iss": "https://evil.example.com"}))), "PGRST303"),
        ("azp not authorized", sign(&with(json!({"azp": "https://evil.example.com"}))), "PGRST303"),
        ("pending session", sign(&with(json!({"sts": "pending"}))), "PGRST303"),
        ("unknown kid", sign_with(&base, Some("ins_unknown")), "PGRST301"),
        ("HS256 with the public key", sign_hs256(&base, include_bytes!("fixtures/test_rs256_public.pem")), "PGRST301"),
        ("alg none", format!("eyJhbGciOiJub25lIn0.{}.", "eyJzdWIiOiJ1c2VyXzJkZW1vQWxpY2UifQ"), "PGRST301"),
        ("garbled", "not-a-token".to_owned(), "PGRST301"),
        ("oversized", "a".repeat(9000), "PGRST301"),
    ];
    for (name, token, code) in cases {
        let (status, err) = get("/orders", Some(&token));
        assert_eq!((status, err["code"].as_str()), (401, Some(code)), "{name}: {err}");
    }
    let (status, err) = call("GET", "/orders", None, &[("Authorization", "Basic YWxpY2U6cHc=")], None);
    assert_eq!((status, err["code"].as_str()), (401, Some("PGRST301")), "{err}");
}

#[test]
fn bad_requests_are_clear_4xx_and_injection_stays_a_value() {
    let alice = token_for(ALICE);
    for (path, status, code) in [
        ("/no_such_table", 404, "PGRST205"),
        ("/orders?select=secret", 400, "42703"),
        ("/orders?nope=eq.1", 400, "42703"),
        ("/orders?status=equals.x", 400, "PGRST100"),
        ("/orders?order_id=eq.not-a-number", 400, "22P02"),
        ("/orders?user_id=eq.usr_bad", 400, "22P02"),
        ("/orders?limit=-5", 416, "PGRST103"),
        ("/orders?limit=x", 400, "PGRST100"),
    ] {
        let (s, err) = get(path, Some(&alice));
        assert_eq!((s, err["code"].as_str()), (status, Some(code)), "{path}: {err}");
    }
    let attacks = [
        "/products?name=eq.x%27%3B%20DROP%20TABLE%20products%3B--",
        "/products?select=name%2C(select%201)",
        "/products?order=name%3Bdrop%20table%20products",
        "/products?name=in.(a%22)%3Bdrop%20table%20products%3B--)",
    ];
    for path in attacks {
        let (status, _) = get(path, Some(&alice));
        assert!(status == 200 || status == 400, "{path}: {status}");
    }
    let (status, products) = get("/products?select=product_id", None);
    assert_eq!(status, 200);
    assert_eq!(products.as_array().unwrap().len(), 8, "the catalogue is intact (8 products)");
}

fn header_of(raw: &str, name: &str) -> Option<String> {
    raw.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
}

#[test]
fn writes_go_through_rls() {
    let (alice, bob) = (token_for(ALICE), token_for(BOB));
    let representation = [("Prefer", "return=representation")];
    // Insert: the owner comes from the token (column default current_clerk_user()).
    let (status, rows) = call(
        "POST",
        "/cart?select=user_id,product_id,quantity",
        Some(&alice),
        &representation,
        Some(&json!({"product_id": 5, "quantity": 1})),
    );
    assert_eq!((status, rows), (201, json!([{"user_id": ALICE, "product_id": 5, "quantity": 1}])));
    // Inserting a row for someone else is refused by the policy.
    let (status, err) = call("POST", "/cart", Some(&alice), &[], Some(&json!({"user_id": BOB, "product_id": 6})));
    assert_eq!((status, err["code"].as_str()), (403, Some("42501")), "{err}");
    // Bob's update and delete of Alice's line touch nothing.
    let port = proxy().1;
    let auth = |t: &str| vec![("Authorization".to_owned(), format!("Bearer {t}"))];
    let (status, headers, _) = http(port, "PATCH", "/cart?product_id=eq.5", &auth(&bob), Some(r#"{"quantity": 99}"#));
    assert_eq!((status, header_of(&headers, "content-range").as_deref()), (204, Some("*/*")));
    let (status, headers, _) = http(port, "DELETE", "/cart?product_id=eq.5", &auth(&bob), None);
    assert_eq!((status, header_of(&headers, "content-range").as_deref()), (204, Some("*/*")));
    // Alice's own update and delete work.
    let (status, rows) =
        call("PATCH", "/cart?product_id=eq.5&select=quantity", Some(&alice), &representation, Some(&json!({"quantity": 3})));
    assert_eq!((status, rows), (200, json!([{"quantity": 3}])));
    let (status, headers, _) = http(port, "DELETE", "/cart?product_id=eq.5", &auth(&alice), None);
    assert_eq!((status, header_of(&headers, "content-range").as_deref()), (204, Some("*/*")), "PostgREST's Content-Range of a DELETE");
    // return=headers-only: 201 and the new row's Location, by primary key.
    let (status, headers, body) = http(
        port,
        "POST",
        "/wishlist",
        &[auth(&alice), vec![("Prefer".to_owned(), "return=headers-only".to_owned())]].concat(),
        Some(r#"{"product_id": 7}"#),
    );
    assert_eq!(status, 201, "{body}");
    let location = header_of(&headers, "location").expect("a Location header");
    assert!(location.starts_with("/wishlist?wishlist_id=eq."), "{location}");
    let (status, rows) = get(&format!("{location}&select=user_id,product_id"), Some(&alice));
    assert_eq!((status, rows), (200, json!([{"user_id": ALICE, "product_id": 7}])));
    // Bad bodies and columns are 400s; anonymous writes are 401.
    let (status, err) = call("POST", "/cart", Some(&alice), &[], Some(&json!({"price": 0})));
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST204")), "{err}");
    let (status, _, body) = http(port, "POST", "/cart", &auth(&alice), Some("not json"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("PGRST102"));
    let (status, err) = call("POST", "/products", None, &[], Some(&json!({"name": "x", "slug": "x", "price": 1})));
    assert_eq!((status, err["code"].as_str()), (401, Some("42501")), "{err}");
}

#[test]
fn exact_counts_and_ranges() {
    let port = proxy().1;
    let count = vec![("Prefer".to_owned(), "count=exact".to_owned())];
    let (status, headers, body) = http(port, "GET", "/products?select=product_id&limit=2&order=product_id", &count, None);
    assert_eq!(status, 206, "{body}");
    assert_eq!(header_of(&headers, "content-range").as_deref(), Some("0-1/8"));
    let range = vec![("Range".to_owned(), "2-4".to_owned()), ("Prefer".to_owned(), "count=exact".to_owned())];
    let (status, headers, body) = http(port, "GET", "/products?select=product_id&order=product_id", &range, None);
    assert_eq!((status, header_of(&headers, "content-range").as_deref()), (206, Some("2-4/8")), "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!([{"product_id": 3}, {"product_id": 4}, {"product_id": 5}]));
    let (status, headers, body) = http(port, "HEAD", "/products", &count, None);
    assert_eq!((status, header_of(&headers, "content-range").as_deref(), body.as_str()), (200, Some("0-7/8"), ""));
}

#[test]
fn the_schema_cache_reloads_on_notify_without_a_restart() {
    let _ = proxy();
    assert_eq!(get("/reload_probe", None).0, 404);
    for statement in [
        "CREATE TABLE reload_probe (id int PRIMARY KEY, note text)",
        "INSERT INTO reload_probe VALUES (1, 'hello')",
        "GRANT SELECT ON reload_probe TO anon",
        "NOTIFY pgrst, 'reload schema'",
    ] {
        admin_query(statement);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, rows) = get("/reload_probe?select=note", None);
        if status == 200 {
            assert_eq!(rows, json!([{"note": "hello"}]));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the new table never appeared: {status} {rows}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Posts a Clerk event as Svix delivers it, signed with `secret`.
fn deliver(id: &str, ts: i64, body: &Value, secret: &str) -> (u16, Value) {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD.decode(&secret[6..]).unwrap();
    let body = body.to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let headers = vec![
        ("svix-id".to_owned(), id.to_owned()),
        ("svix-timestamp".to_owned(), ts.to_string()),
        ("svix-signature".to_owned(), format!("v1,{sig}")),
    ];
    let (status, _, body) = http(proxy().1, "POST", "/webhooks/clerk", &headers, Some(&body));
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

#[test]
fn signed_clerk_webhooks_sync_users_once_and_erase_on_delete() {
    let now = now() as i64;
    let created = json!({"type": "user.created", "data": {"id": "user_hook1", "first_name": "Hana", "last_name": "Hook",
        "primary_email_address_id": "idn_1", "email_addresses": [{"id": "idn_1", "email_address": "hana@example.com"}]}});
    assert_eq!(deliver("msg_hook_1", now, &created, WEBHOOK_SECRET), (200, json!({"outcome": "applied"})));
    assert_eq!(deliver("msg_hook_1", now, &created, WEBHOOK_SECRET), (200, json!({"outcome": "duplicate"})));
    let rows = admin_query("SELECT email FROM clerk_users WHERE user_id = 'user_hook1'");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "hana@example.com");

    // Forged, stale or unsigned deliveries change nothing.
    let forged = json!({"type": "user.created", "data": {"id": "user_hook2"}});
    let (status, err) = deliver("msg_hook_2", now, &forged, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(status, 401, "{err}");
    let (status, _) = deliver("msg_hook_3", now - 600, &forged, WEBHOOK_SECRET);
    assert_eq!(status, 400);
    let (status, _, _) = http(proxy().1, "POST", "/webhooks/clerk", &[], Some(&forged.to_string()));
    assert_eq!(status, 400);
    assert!(admin_query("SELECT 1 FROM clerk_users WHERE user_id = 'user_hook2'").is_empty());

    // user.deleted erases: her order is kept for the numbers, without her.
    admin_query(
        "INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount)
         VALUES ('user_hook1', 'Hana Hook', 'hana@example.com', '{}', 10, 10)",
    );
    let deleted = json!({"type": "user.deleted", "data": {"id": "user_hook1", "deleted": true}});
    assert_eq!(deliver("msg_hook_4", now, &deleted, WEBHOOK_SECRET), (200, json!({"outcome": "applied"})));
    let left = admin_query(
        "SELECT (SELECT count(*) FROM orders WHERE user_id = 'user_hook1' OR billing_email = 'hana@example.com')
              + (SELECT count(*) FROM clerk_users WHERE user_id = 'user_hook1'),
                (SELECT count(*) FROM orders WHERE billing_email = 'erased@invalid' AND total_amount = 10)",
    );
    assert_eq!((left[0].get::<_, i64>(0), left[0].get::<_, i64>(1) >= 1), (0, true));

    // An event type not mirrored is acknowledged and ignored; an event the
    // database refuses (a user without an id) is a 4xx and counted failed.
    let session = json!({"type": "session.created", "data": {"id": "sess_hook5"}});
    assert_eq!(deliver("msg_hook_5", now, &session, WEBHOOK_SECRET), (200, json!({"outcome": "ignored"})));
    let malformed = json!({"type": "user.created", "data": {"first_name": "Nobody"}});
    let (status, err) = deliver("msg_hook_6", now, &malformed, WEBHOOK_SECRET);
    assert!((400..500).contains(&status), "{status} {err}");
    let counted: Vec<u64> = ["applied", "duplicate", "ignored", "rejected", "failed"].iter().map(|o| webhooks_counted(o)).collect();
    assert_eq!(counted, [2, 1, 1, 3, 1]);
}

/// A second proxy with the protective settings: at most 5 rows a read,
/// no exact counts, `Prefer: tx=` honoured, no OpenAPI document.
fn guarded_proxy() -> u16 {
    static PROXY: OnceLock<(Running, u16)> = OnceLock::new();
    PROXY
        .get_or_init(|| {
            let jwks_url = serve_jwks(clerk_jwt::test_keys::JWKS);
            start_proxy(&format!(
                "db-uri = \"{}\"\ndb-anon-role = \"anon\"\ndb-staff-role = \"clerk_staff\"\nclerk-jwks-url = \"{jwks_url}\"\nclerk-issuer = \"https://clerk.example.com\"\n\
                 db-max-rows = 5\ndb-allow-exact-count = false\ndb-tx-end = \"commit-allow-override\"\nopenapi-mode = \"disabled\"",
                api_dsn()
            ))
        })
        .1
}

fn with_token(token: &str, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = vec![("Authorization".to_owned(), format!("Bearer {token}"))];
    h.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    h
}

#[test]
fn embedding_follows_foreign_keys_and_rls() {
    let (alice, bob) = (token_for(ALICE), token_for(BOB));
    // One-to-many: each order with its items.
    let (status, rows) = get("/orders?select=order_id,order_items(product_name,quantity)&order=order_id&order_id=lte.3", Some(&alice));
    assert_eq!(status, 200, "{rows}");
    let orders = rows.as_array().unwrap();
    assert_eq!(orders.len(), 2, "{rows}");
    assert_eq!(orders[0]["order_items"], json!([{"product_name": "Conical Burr Grinder", "quantity": 2}]));
    assert_eq!(orders[1]["order_items"].as_array().unwrap().len(), 4);
    // Many-to-one: an object (or null), with an alias.
    let (status, rows) = get("/order_items?select=quantity,product:products(name,price)&order_id=eq.1", Some(&alice));
    assert_eq!((status, rows), (200, json!([{"quantity": 2, "product": {"name": "Conical Burr Grinder", "price": 189.00}}])));
    // RLS applies inside embeds: from the public catalogue, Bob reaches
    // only his own order lines (product 3 is in Alice's order 2 and Bob's 3).
    let (status, rows) = get("/products?select=product_id,order_items(order_id)&product_id=eq.3", Some(&bob));
    assert_eq!((status, rows), (200, json!([{"product_id": 3, "order_items": [{"order_id": 3}]}])));
    let (_, rows) = get("/products?select=product_id,order_items(order_id)&product_id=eq.3", Some(&alice));
    assert_eq!(rows, json!([{"product_id": 3, "order_items": [{"order_id": 2}]}]));
    // !inner drops outer rows without a matching embedded row; filters,
    // order and limit inside an embed apply to it alone.
    let path = "/orders?select=order_id,order_items!inner(product_name)&order_items.product_name=eq.Stoneware%20Cup&order_id=lte.3";
    assert_eq!(get(path, Some(&alice)), (200, json!([{"order_id": 2, "order_items": [{"product_name": "Stoneware Cup"}]}])));
    let path =
        "/orders?select=order_id,order_items(product_name)&order_items.product_name=eq.Stoneware%20Cup&order_id=lte.3&order=order_id";
    assert_eq!(
        get(path, Some(&alice)).1,
        json!([{"order_id": 1, "order_items": []}, {"order_id": 2, "order_items": [{"product_name": "Stoneware Cup"}]}])
    );
    let path = "/orders?select=order_id,order_items(product_name,products(slug))&order_items.order=unit_price.desc&order_items.limit=1&order_id=eq.2";
    assert_eq!(
        get(path, Some(&alice)).1,
        json!([{"order_id": 2, "order_items": [{"product_name": "Gooseneck Kettle 1 L", "products": {"slug": "gooseneck-kettle"}}]}])
    );
    // No relationship, an unknown embedded column, a filter on a
    // relation that is not embedded: 400s before any SQL runs.
    for (path, code) in [
        ("/orders?select=*,coupons(*)", "PGRST200"),
        ("/orders?select=*,order_items(secret)", "42703"),
        ("/orders?order_items.quantity=eq.1", "PGRST108"),
    ] {
        let (status, err) = get(path, Some(&alice));
        assert_eq!((status, err["code"].as_str()), (400, Some(code)), "{path}: {err}");
    }
}

#[test]
fn upsert_put_and_write_preferences() {
    let (alice, bob) = (token_for(ALICE), token_for(BOB));
    let port = proxy().1;
    // ignore-duplicates: the existing (Alice, 2) row is skipped, the new one inserted.
    let (status, rows) = call(
        "POST",
        "/wishlist?on_conflict=user_id,product_id&select=product_id",
        Some(&alice),
        &[("Prefer", "resolution=ignore-duplicates,return=representation")],
        Some(&json!([{"product_id": 2}, {"product_id": 3}])),
    );
    assert_eq!((status, rows), (201, json!([{"product_id": 3}])));
    // merge-duplicates: Alice's line for product 1 gets the new quantity
    // (200: nothing inserted, as PostgREST answers); Bob's identical upsert
    // creates his own line (201) and leaves hers alone.
    let merge = [("Prefer", "resolution=merge-duplicates,return=representation")];
    let upsert = "/cart?on_conflict=user_id,product_id,selected_attributes&select=user_id,quantity";
    let (status, rows) = call("POST", upsert, Some(&alice), &merge, Some(&json!({"product_id": 1, "quantity": 5})));
    assert_eq!((status, rows), (200, json!([{"user_id": ALICE, "quantity": 5}])));
    let (status, rows) = call("POST", upsert, Some(&bob), &merge, Some(&json!({"product_id": 1, "quantity": 9})));
    assert_eq!((status, rows), (201, json!([{"user_id": BOB, "quantity": 9}])));
    assert_eq!(get("/cart?product_id=eq.1&select=quantity", Some(&alice)).1, json!([{"quantity": 5}]));
    // PUT: insert, then replace, by primary key (customers cannot choose
    // generated keys, so a staff member on the catalogue); a customer's PUT
    // is refused by the catalogue's policy.
    let staff =
        sign(&json!({"sub": "user_2demoStaff", "sid": "sess_e2e", "iss": "https://clerk.example.com", "azp": "https://app.example.com",
                             "iat": now() - 5, "exp": now() + 600, "metadata": {"role": "admin"}}));
    let path = "/categories?category_id=eq.9001";
    let (status, rows) = call(
        "PUT",
        &format!("{path}&select=category_id,slug"),
        Some(&staff),
        &[("Prefer", "return=representation")],
        Some(&json!({"name": "Put", "slug": "put"})),
    );
    assert_eq!((status, rows), (201, json!([{"category_id": 9001, "slug": "put"}])), "PUT inserted");
    let (status, rows) = call(
        "PUT",
        &format!("{path}&select=slug"),
        Some(&staff),
        &[("Prefer", "return=representation")],
        Some(&json!({"name": "Put", "slug": "put-1"})),
    );
    assert_eq!((status, rows), (200, json!([{"slug": "put-1"}])), "PUT replaced");
    let (status, _) = call("PUT", path, Some(&staff), &[], Some(&json!({"category_id": 9001, "name": "Put again", "slug": "put-again"})));
    assert_eq!(status, 204);
    let (status, err) = call("PUT", path, Some(&bob), &[], Some(&json!({"name": "Mine", "slug": "mine"})));
    assert_eq!((status, err["code"].as_str()), (403, Some("42501")), "{err}");
    assert_eq!(get(&format!("{path}&select=slug"), None).1, json!([{"slug": "put-again"}]));
    let (status, err) = call("PUT", path, Some(&staff), &[], Some(&json!({"category_id": 9002})));
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST115")), "{err}");
    let (status, err) = call("PUT", "/categories?slug=eq.put", Some(&staff), &[], Some(&json!({})));
    assert_eq!((status, err["code"].as_str()), (405, Some("PGRST105")), "{err}");
    let (status, err) = call("PUT", &format!("{path}&limit=1"), Some(&staff), &[], Some(&json!({})));
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST114")), "{err}");
    // Customers cannot choose a generated key (it could block others' inserts).
    let (status, err) = call("PUT", "/wishlist?wishlist_id=eq.9001", Some(&alice), &[], Some(&json!({"product_id": 5})));
    assert_eq!((status, err["code"].as_str()), (403, Some("42501")), "{err}");
    // missing=default: a row without `quantity` gets the column default (1),
    // not NULL (which the NOT NULL column refuses: 23502, 400).
    // Objects with different keys need `columns=` (postgrest-js sends it).
    let rows_body = json!([{"product_id": 8}, {"product_id": 7, "quantity": 2}]);
    let (status, err) = call("POST", "/cart", Some(&bob), &[], Some(&rows_body));
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST102")), "{err}");
    let (status, err) = call("POST", "/cart?columns=product_id,quantity", Some(&bob), &[], Some(&rows_body));
    assert_eq!((status, err["code"].as_str()), (400, Some("23502")), "{err}");
    let (status, rows) = call(
        "POST",
        "/cart?columns=product_id,quantity&select=product_id,quantity",
        Some(&bob),
        &[("Prefer", "missing=default,return=representation")],
        Some(&rows_body),
    );
    assert_eq!((status, rows), (201, json!([{"product_id": 8, "quantity": 1}, {"product_id": 7, "quantity": 2}])));
    // max-affected with handling=strict: too many rows → 400, nothing changed.
    let (status, err) =
        call("PATCH", "/cart", Some(&alice), &[("Prefer", "handling=strict,max-affected=1")], Some(&json!({"quantity": 42})));
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST124")), "{err}");
    assert!(!get("/cart?select=quantity", Some(&alice)).1.as_array().unwrap().iter().any(|r| r["quantity"] == 42));
    let (status, headers, _) = http(
        port,
        "PATCH",
        "/cart?product_id=eq.1",
        &with_token(&alice, &[("Prefer", "handling=strict, max-affected=1")]),
        Some(r#"{"quantity": 4}"#),
    );
    assert_eq!((status, header_of(&headers, "preference-applied").as_deref()), (204, Some("handling=strict, max-affected=1")));
    let (status, err) = call("GET", "/products", None, &[("Prefer", "handling=strict, count=maybe")], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST122")), "{err}");
    // tx=rollback: ignored with the default db-tx-end = commit; honoured
    // with commit-allow-override (the row is answered, then not kept).
    let guarded = guarded_proxy();
    let (status, headers, body) = http(
        guarded,
        "POST",
        "/wishlist?select=product_id",
        &with_token(&bob, &[("Prefer", "tx=rollback,return=representation")]),
        Some(r#"{"product_id": 1}"#),
    );
    assert_eq!(
        (status, header_of(&headers, "preference-applied").as_deref(), body.as_str()),
        (201, Some("return=representation, tx=rollback"), r#"[{"product_id":1}]"#)
    );
    assert_eq!(get("/wishlist?product_id=eq.1", Some(&bob)).1, json!([]));
    let (status, _, _) = http(port, "POST", "/wishlist", &with_token(&bob, &[("Prefer", "tx=rollback")]), Some(r#"{"product_id": 1}"#));
    assert_eq!(status, 201);
    assert_eq!(get("/wishlist?product_id=eq.1&select=product_id", Some(&bob)).1, json!([{"product_id": 1}]));
}

#[test]
fn csv_counts_and_row_limits() {
    let port = proxy().1;
    let csv = vec![("Accept".to_owned(), "text/csv".to_owned())];
    let (status, headers, body) = http(port, "GET", "/products?select=product_id,name,price&order=product_id&limit=2", &csv, None);
    assert_eq!(status, 200, "{body}");
    assert!(header_of(&headers, "content-type").unwrap().starts_with("text/csv"));
    assert_eq!(body, "product_id,name,price\n1,\"Ethiopia Yirgacheffe 250 g\",14.50\n2,\"Colombia Huila 1 kg\",42.00");
    let (status, _, body) = http(port, "GET", "/products?select=name,attributes&product_id=eq.7", &csv, None);
    assert_eq!((status, body.as_str()), (200, "name,attributes\n\"Stoneware Cup\",\"{\"\"colors\"\": [\"\"sand\"\", \"\"slate\"\"]}\""));
    let (status, _, body) = http(port, "GET", "/products?select=product_id,name&product_id=eq.999", &csv, None);
    assert_eq!((status, body.as_str()), (200, "\n"));
    let (status, err) = call("GET", "/products", None, &[("Accept", "application/xml")], None);
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST107")), "{err}");
    // CSV of a write's rows and of a call's result, as PostgREST answers them.
    let bob = token_for(BOB);
    let as_bob = |extra: &[(&str, &str)]| {
        let mut h = vec![("Authorization".to_owned(), format!("Bearer {bob}")), ("Accept".to_owned(), "text/csv".to_owned())];
        h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        h
    };
    let (status, _, body) =
        http(port, "POST", "/wishlist?select=product_id", &as_bob(&[("Prefer", "return=representation")]), Some(r#"{"product_id": 8}"#));
    assert_eq!((status, body.as_str()), (201, "product_id\n8"));
    admin_query("DELETE FROM wishlist WHERE user_id = 'user_2demoBob' AND product_id = 8");
    let (status, _, body) = http(port, "POST", "/rpc/customer_tier", &as_bob(&[]), Some("{}"));
    assert_eq!((status, body.lines().count()), (200, 2), "a header line and the value: {body}");
    // Planned counts come from the planner (a positive estimate, whatever
    // the table holds); estimated counts are exact for small results.
    let planned = vec![("Prefer".to_owned(), "count=planned".to_owned())];
    let (status, headers, _) = http(port, "HEAD", "/products?limit=1", &planned, None);
    let range = header_of(&headers, "content-range").unwrap();
    let total: i64 = range.strip_prefix("0-0/").unwrap().parse().unwrap_or_else(|_| panic!("{range}"));
    assert!(status == 206 || status == 200, "{status}");
    assert!(total > 0, "{range}");
    let estimated = vec![("Prefer".to_owned(), "count=estimated".to_owned())];
    let (status, headers, _) = http(port, "GET", "/products?limit=2", &estimated, None);
    assert_eq!((status, header_of(&headers, "content-range").as_deref()), (206, Some("0-1/8")));
    // db-max-rows = 5 caps every read; count=exact is served as estimated
    // when db-allow-exact-count = false: more than 5 rows, and products has
    // row-level security, so not the planner's figure (which ignores RLS)
    // but unknown.
    admin_query("ANALYZE products");
    let guarded = guarded_proxy();
    let exact = vec![("Prefer".to_owned(), "count=exact".to_owned())];
    let (status, headers, body) = http(guarded, "GET", "/products?select=product_id", &exact, None);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap().as_array().unwrap().len(), 5);
    assert_eq!((status, header_of(&headers, "content-range").as_deref()), (200, Some("0-4/*")));
    assert_eq!(header_of(&headers, "preference-applied").as_deref(), Some("count=estimated"));
}

#[test]
fn openapi_document_follows_privileges() {
    let port = proxy().1;
    let (status, headers, body) = http(port, "GET", "/", &[], None);
    assert_eq!(status, 200, "{body}");
    assert!(header_of(&headers, "content-type").unwrap().starts_with("application/openapi+json"));
    let anon: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(anon["openapi"], "3.0.3");
    assert!(anon["paths"]["/products"]["get"].is_object());
    assert!(anon["paths"]["/products"]["post"].is_null(), "anon may not insert products");
    for hidden in ["/cart", "/orders", "/audit_log", "/rpc/place_order"] {
        assert!(anon["paths"][hidden].is_null(), "{hidden} is not anon's");
    }
    let (status, _, body) = http(port, "GET", "/", &with_token(&token_for(ALICE), &[]), None);
    assert_eq!(status, 200);
    let user: Value = serde_json::from_str(&body).unwrap();
    for method in ["get", "post", "patch", "delete", "put"] {
        assert!(user["paths"]["/cart"][method].is_object(), "cart {method}");
    }
    assert!(user["paths"]["/rpc/place_order"]["post"]["requestBody"].is_object());
    // The audit log is readable (RLS decides which rows), never writable.
    assert!(user["paths"]["/audit_log"]["get"].is_object());
    for method in ["post", "patch", "delete"] {
        assert!(user["paths"]["/audit_log"][method].is_null(), "audit_log {method}");
    }
    assert!(user["paths"]["/role_permissions"].is_null(), "role_permissions is read through has_permission() only");
    assert_eq!(user["components"]["schemas"]["cart"]["properties"]["user_id"]["format"], "clerk_user_id");
    let (status, err) = call("GET", "/", None, &[], None);
    assert_eq!(status, 200, "{err}");
    let (status, _, _) = http(guarded_proxy(), "GET", "/", &[], None);
    assert_eq!(status, 404, "openapi-mode = disabled");
}

#[test]
fn schema_reloads_do_not_fail_requests_in_flight() {
    let port = proxy().1;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    statuses.push(http(port, "GET", "/products?select=product_id,name&limit=3", &[], None).0);
                }
                statuses
            })
        })
        .collect();
    for i in 0..15 {
        admin_query(&format!("COMMENT ON TABLE products IS 'reload {i}'"));
        admin_query("NOTIFY pgrst, 'reload schema'");
        std::thread::sleep(std::time::Duration::from_millis(60));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses: Vec<u16> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert!(statuses.len() > 20, "only {} requests ran", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
