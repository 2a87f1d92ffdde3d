//! Row-level security that stays index-friendly as the shop grows (issue
//! 19): on the reference schema with 100,000 orders (300,000 lines) of
//! 5,000 customers, the plans of a customer's typical requests, as the
//! proxy sends them (`Accept: application/vnd.pgrst.plan+json` with
//! `db-plan-enabled`, under the customer's role and claims), find the
//! user-data rows through an index on the owner, the organization or the
//! key, never by a sequential scan or an index read to the end; and staff
//! (admin, manager, employee), who run as `clerk_staff`, see exactly what
//! the permission model gives them: every row where their role has the
//! permission, their own rows elsewhere.

use clerk_jwt::test_keys::{now, sign_hs256};
use pg_clerk_e2e::{admin_execute, admin_query_in, fresh_api_database, http, start_proxy};
use serde_json::{json, Value};

const DB: &str = "pg_clerk_scale";
const SECRET: &str = "a-local-development-secret-of-32-bytes!";
const ORDERS: i64 = 100_000;
const CUSTOMERS: i64 = 5_000;

/// Relations whose sequential scan in a customer's plan is a bug.
const USER_DATA: [&str; 8] = ["orders", "order_items", "cart", "wishlist", "product_reviews", "coupon_usage", "audit_log", "projects"];

/// Every scan of a user-data table in an EXPLAIN (FORMAT JSON) plan that
/// does not find its rows through an index on the owner or the key: a
/// sequential scan, or an index scan that only filters (an index on
/// created_at read to the end, the owner checked row by row, is what an
/// owner condition OR-ed with a staff check gave).
fn unindexed(plan: &Value, found: &mut Vec<String>) {
    match plan {
        Value::Object(node) => {
            if let Some(rel) = node.get("Relation Name").and_then(Value::as_str).filter(|r| USER_DATA.contains(r)) {
                let text = |k: &str| node.get(k).and_then(Value::as_str).unwrap_or("");
                let keyed = |cond: &str| ["user_id", "order_id", "org_id"].iter().any(|k| cond.contains(k));
                let ok = match text("Node Type") {
                    "Index Scan" | "Index Only Scan" => keyed(text("Index Cond")),
                    "Bitmap Heap Scan" => keyed(text("Recheck Cond")),
                    _ => false,
                };
                if !ok {
                    found.push(format!("{} of {rel} ({})", text("Node Type"), text("Filter")));
                }
            }
            node.values().for_each(|v| unindexed(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| unindexed(v, found)),
        _ => {}
    }
}

#[test]
fn a_customers_requests_use_indexes_at_100k_orders_and_staff_see_the_shop() {
    let dsn = fresh_api_database(DB);
    // Loaded without the triggers (audit, order numbers): the plans are the point.
    admin_execute(
        DB,
        &format!(
            "SET session_replication_role = replica;
             INSERT INTO orders (order_number, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, created_at)
             SELECT 'ORD-S-' || n, ('user_2scale' || (n % {CUSTOMERS}))::clerk_user_id, 'N', 'n@example.com', '{{}}', 30, 30, 'confirmed',
                    now() - make_interval(mins => n)
               FROM generate_series(1, {ORDERS}) n;
             INSERT INTO order_items (order_id, product_id, product_name, quantity, unit_price, total_price)
             SELECT o.order_id, 1 + (o.order_id + k) % 8, 'P', 1, 10, 10 FROM orders o, generate_series(1, 3) k WHERE o.order_number LIKE 'ORD-S-%';
             INSERT INTO cart (user_id, product_id) SELECT ('user_2scale' || u)::clerk_user_id, 1 + u % 8 FROM generate_series(0, {CUSTOMERS} - 1) u;
             INSERT INTO wishlist (user_id, product_id) SELECT ('user_2scale' || u)::clerk_user_id, 1 + u % 8 FROM generate_series(0, {CUSTOMERS} - 1) u;
             INSERT INTO product_reviews (product_id, user_id, rating) SELECT 1 + u % 8, ('user_2scale' || u)::clerk_user_id, 5 FROM generate_series(0, {CUSTOMERS} - 1) u;
             INSERT INTO coupons (code, discount_type, discount_value) VALUES ('SCALE', 'fixed_amount', 1);
             INSERT INTO coupon_usage (coupon_id, user_id, order_id, discount_applied)
             SELECT (SELECT coupon_id FROM coupons WHERE code = 'SCALE'), user_id, order_id, 1
               FROM orders WHERE order_number LIKE 'ORD-S-%' ORDER BY order_id LIMIT {CUSTOMERS};
             INSERT INTO projects (org_id, name, created_by)
             SELECT ('org_2scale' || (n % {CUSTOMERS}))::clerk_org_id, 'P' || n, ('user_2scale' || (n % {CUSTOMERS}))::clerk_user_id
               FROM generate_series(1, {ORDERS}) n;
             INSERT INTO audit_log (user_id, action, resource_type, resource_id)
             SELECT ('user_2scale' || (n % {CUSTOMERS}))::clerk_user_id, 'UPDATE', 'orders', n::text FROM generate_series(1, {ORDERS}) n;
             -- The staff member's own rows, which a role without the permission still sees.
             UPDATE orders SET user_id = 'user_2scaleStaff' WHERE order_id IN (SELECT order_id FROM orders ORDER BY order_id LIMIT 3);
             UPDATE product_reviews SET user_id = 'user_2scaleStaff' WHERE review_id = (SELECT min(review_id) FROM product_reviews);
             ANALYZE;"
        ),
    );
    let (_running, port) = start_proxy(&format!(
        "db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\ndb-staff-role = \"clerk_staff\"\ndb-plan-enabled = true\njwt-secret = \"{SECRET}\"\n"
    ));
    let t = now();
    let bearer = |claims: Value| {
        let mut c = json!({"sub": "user_2scale42", "sid": "sess_scale", "iat": t, "exp": t + 600});
        c.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
        format!("Bearer {}", sign_hs256(&c, SECRET.as_bytes()))
    };
    let customer = bearer(json!({}));
    let get = |path: &str, auth: &str, accept: &str| {
        let headers = vec![("Authorization".to_owned(), auth.to_owned()), ("Accept".to_owned(), accept.to_owned())];
        let (status, _, body) = http(port, "GET", path, &headers, None);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let one_of_theirs: i64 =
        admin_query_in(DB, "SELECT order_id FROM orders WHERE user_id = 'user_2scale42' ORDER BY order_id DESC LIMIT 1")[0].get(0);
    for path in [
        "/orders?select=order_id,order_number,total_amount,status,created_at&order=created_at.desc&limit=20".to_owned(),
        format!("/orders?order_id=eq.{one_of_theirs}"),
        format!("/orders?select=order_number,order_items(product_name,quantity,unit_price)&order_id=eq.{one_of_theirs}"),
        "/cart?select=product_id,quantity".to_owned(),
        "/wishlist?select=product_id".to_owned(),
        "/product_reviews?select=review_id,rating".to_owned(),
        "/coupon_usage?select=coupon_id".to_owned(),
        "/audit_log?select=audit_id&order=created_at.desc&limit=20".to_owned(),
    ] {
        let plan = get(&path, &customer, "application/vnd.pgrst.plan+json");
        let mut found = Vec::new();
        unindexed(&plan, &mut found);
        assert!(found.is_empty(), "{path}: {found:?} at {ORDERS} orders:\n{plan:#}");
    }
    let member = bearer(json!({"org_id": "org_2scale42", "org_role": "org:member"}));
    let path = "/projects?select=project_id,name&order=created_at.desc&limit=20";
    let mut found = Vec::new();
    unindexed(&get(path, &member, "application/vnd.pgrst.plan+json"), &mut found);
    assert!(found.is_empty(), "{path}: {found:?}");
    let projects = get("/projects?select=org_id", &member, "application/json");
    assert_eq!(projects.as_array().map(Vec::len), Some((ORDERS / CUSTOMERS) as usize));
    assert!(projects.as_array().unwrap().iter().all(|r| r["org_id"] == "org_2scale42"), "{projects}");
    // The answers themselves: their rows only.
    let rows = get("/orders?select=user_id&order=created_at.desc&limit=20", &customer, "application/json");
    assert_eq!(rows.as_array().map(Vec::len), Some(20));
    assert!(rows.as_array().unwrap().iter().all(|r| r["user_id"] == "user_2scale42"), "{rows}");
    // Staff (an application role from public metadata) see the whole shop, as before.
    let admin = bearer(json!({"sub": "user_2scaleStaff", "metadata": {"role": "admin"}}));
    let newest = get("/orders?select=order_id&order=created_at.desc&limit=50", &admin, "application/json");
    assert_eq!(newest.as_array().map(Vec::len), Some(50));
    let shop_newest: i64 = admin_query_in(DB, "SELECT order_id FROM orders ORDER BY created_at DESC LIMIT 1")[0].get(0);
    assert_eq!(newest[0]["order_id"], shop_newest, "the newest order of the shop, not the staff member's own");

    // Each staff role sees, table by table, what the permission model of
    // the old policies (permission OR owner) gave: counted by the proxy
    // under the role, computed here from role_permissions as superuser.
    let table_rules = [
        ("orders", "orders:read", "user_id = 'user_2scaleStaff'"),
        ("order_items", "orders:read", "order_id IN (SELECT order_id FROM orders WHERE user_id = 'user_2scaleStaff')"),
        ("coupon_usage", "orders:read", "user_id = 'user_2scaleStaff'"),
        ("product_reviews", "reviews:moderate", "user_id = 'user_2scaleStaff'"),
        ("coupons", "coupons:read", "false"),
        ("audit_log", "audit:read", "false"),
        ("product_costs", "products:write", "false"),
    ];
    for role in ["admin", "manager", "employee"] {
        let staff = bearer(json!({"sub": "user_2scaleStaff", "metadata": {"role": role}}));
        for (table, permission, own) in table_rules {
            let expected: i64 = admin_query_in(
                DB,
                &format!(
                    "SELECT count(*) FROM {table} WHERE EXISTS (SELECT FROM role_permissions
                      WHERE role = '{role}' AND permission IN ('{permission}', '*')) OR {own}"
                ),
            )[0]
            .get(0);
            let headers = vec![("Authorization".to_owned(), staff.clone()), ("Prefer".to_owned(), "count=exact".to_owned())];
            let (status, head, body) = http(port, "GET", &format!("/{table}?select=*&limit=0"), &headers, None);
            assert!(status == 200 || status == 206, "{role} {table}: {status} {body}");
            let total = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| l.strip_prefix("content-range: ")?.rsplit('/').next()?.trim().parse::<i64>().ok());
            assert_eq!(total, Some(expected), "{role} sees {table}: {head}");
        }
    }
}
