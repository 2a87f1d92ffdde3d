//! The reference schema under concurrency, on a real cluster: order numbers
//! stay unique with parallel writers, and coupon limits hold with parallel
//! redemptions. Each test works on its own users and coupons.

use pg_clerk_e2e::schema_dsn;
use std::sync::Arc;
use tokio::sync::Barrier;
use tokio_postgres::{Client, NoTls};

async fn connect() -> Client {
    let (client, connection) = tokio_postgres::connect(&schema_dsn(), NoTls).await.expect("connect to the schema database");
    tokio::spawn(connection);
    client
}

/// A pending order for `user`, inserted as the owner would; returns its id.
async fn pending_order(db: &Client, user: &str, subtotal: &str) -> i64 {
    db.query_one(
        "INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount)
         VALUES ($1::text::clerk_user_id, 'Test', 'test@example.com', '{}', $2::text::numeric, $2::text::numeric)
         RETURNING order_id",
        &[&user, &subtotal],
    )
    .await
    .unwrap()
    .get(0)
}

/// Redeems `code` on `order` as Clerk user `user`, as clerk-proxy would run it.
/// Ok(()) or Err(the DETAIL code of the refusal).
async fn redeem_as(db: &Client, user: &str, code: &str, order: i64) -> Result<(), String> {
    db.batch_execute("BEGIN").await.unwrap();
    db.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&format!(r#"{{"sub":"{user}"}}"#)]).await.unwrap();
    db.batch_execute("SET LOCAL ROLE authenticated").await.unwrap();
    match db.query_one("SELECT (redeem_coupon($1, $2)).order_id", &[&code, &order]).await {
        Ok(_) => {
            db.batch_execute("COMMIT").await.unwrap();
            Ok(())
        }
        Err(e) => {
            db.batch_execute("ROLLBACK").await.unwrap();
            let db_error = e.as_db_error().unwrap_or_else(|| panic!("not a database error: {e}"));
            Err(db_error.detail().unwrap_or("").to_owned())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_numbers_stay_unique_with_8_parallel_writers() {
    const SESSIONS: usize = 8;
    const ORDERS_EACH: usize = 1000;
    let barrier = Arc::new(Barrier::new(SESSIONS));
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let db = connect().await;
            let insert = db
                .prepare(
                    "INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount)
                          VALUES ($1::text::clerk_user_id, 'Load', 'load@example.com', '{}', 1, 1)",
                )
                .await
                .unwrap();
            let user = format!("user_numbers{s}");
            barrier.wait().await;
            for _ in 0..ORDERS_EACH {
                db.execute(&insert, &[&user]).await.expect("every insert succeeds");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let db = connect().await;
    let row = db
        .query_one(
            "SELECT count(*), count(DISTINCT order_number), bool_and(order_number ~ '^ORD-[0-9]{4}-[0-9]{6,}$')
               FROM orders WHERE user_id::text LIKE 'user_numbers%'",
            &[],
        )
        .await
        .unwrap();
    let (total, distinct, well_formed): (i64, i64, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(total, (SESSIONS * ORDERS_EACH) as i64);
    assert_eq!(distinct, total, "no duplicate order numbers");
    assert!(well_formed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_limit_holds_with_50_parallel_redemptions() {
    const USERS: usize = 50;
    let db = connect().await;
    db.batch_execute("INSERT INTO coupons (code, discount_type, discount_value, usage_limit) VALUES ('RUSH10', 'fixed_amount', 5, 10)")
        .await
        .unwrap();
    let mut orders = Vec::new();
    for u in 0..USERS {
        orders.push(pending_order(&db, &format!("user_rush{u}"), "40.00").await);
    }
    let barrier = Arc::new(Barrier::new(USERS));
    let mut tasks = Vec::new();
    for (u, order) in orders.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let db = connect().await;
            barrier.wait().await;
            redeem_as(&db, &format!("user_rush{u}"), "RUSH10", order).await
        }));
    }
    let mut successes = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => successes += 1,
            Err(code) => assert_eq!(code, "coupon_exhausted", "the only refusal is the limit"),
        }
    }
    assert_eq!(successes, 10);
    let row = db
        .query_one(
            "SELECT used_count, (SELECT count(*) FROM coupon_usage u WHERE u.coupon_id = c.coupon_id),
                    (SELECT count(*) FROM orders o JOIN coupon_usage u USING (order_id)
                      WHERE u.coupon_id = c.coupon_id AND o.discount_amount = 5 AND o.total_amount = 35)
               FROM coupons c WHERE code = 'RUSH10'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (10, 10, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_user_redeeming_twice_at_once_succeeds_once() {
    let db = connect().await;
    db.batch_execute("INSERT INTO coupons (code, discount_type, discount_value) VALUES ('TWICE', 'percentage', 10)").await.unwrap();
    let first = pending_order(&db, "user_twice", "100.00").await;
    let second = pending_order(&db, "user_twice", "100.00").await;
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = [first, second]
        .into_iter()
        .map(|order| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let db = connect().await;
                barrier.wait().await;
                redeem_as(&db, "user_twice", "TWICE", order).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.contains(&Err("coupon_already_used".to_owned())), "{results:?}");
    let used: i32 = db.query_one("SELECT used_count FROM coupons WHERE code = 'TWICE'", &[]).await.unwrap().get(0);
    assert_eq!(used, 1);
}

/// The attack run's race: a customer changes their cart line (product and
/// quantity) over and over while placing orders; each order's total must
/// still be the sum of its lines, at the prices of the products on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_total_matches_its_lines_while_the_cart_changes() {
    const ORDERS: usize = 150;
    let user = "user_2raceEve";
    let owner = connect().await;
    owner
        .batch_execute(
            "INSERT INTO products (name, slug, price, stock_quantity) VALUES
                 ('Race cheap', 'race-cheap', 5.00, 1000000), ('Race dear', 'race-dear', 50.00, 1000000)
             ON CONFLICT (slug) DO NOTHING;
             -- One customer placing 150 unpaid orders (the default cap is 3).
             UPDATE shop_settings SET max_pending_orders = 100000",
        )
        .await
        .unwrap();
    let ids: Vec<i64> = owner
        .query("SELECT product_id FROM products WHERE slug IN ('race-cheap', 'race-dear') ORDER BY price", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (cheap, dear) = (ids[0], ids[1]);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let toggler = {
        let done = done.clone();
        tokio::spawn(async move {
            let db = connect().await;
            let mut flip = false;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (product, quantity) = if flip { (dear, 20) } else { (cheap, 1) };
                flip = !flip;
                // A deadlock victim (each side retries) is not what this checks.
                if let Err(e) = db
                    .execute(
                        "UPDATE cart SET product_id = $1, quantity = $2 WHERE user_id = $3::text::clerk_user_id",
                        &[&product, &quantity, &user],
                    )
                    .await
                {
                    assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED), "{e:?}");
                }
            }
        })
    };
    let buyer = connect().await;
    let mut placed = 0;
    while placed < ORDERS {
        owner
            .execute(
                "INSERT INTO cart (user_id, product_id, quantity) SELECT $1::text::clerk_user_id, $2, 1
                  WHERE NOT EXISTS (SELECT FROM cart WHERE user_id = $1::text::clerk_user_id)",
                &[&user, &cheap],
            )
            .await
            .unwrap();
        buyer.batch_execute("BEGIN").await.unwrap();
        buyer.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&format!(r#"{{"sub":"{user}"}}"#)]).await.unwrap();
        buyer.batch_execute("SET LOCAL ROLE authenticated").await.unwrap();
        match buyer.query_one("SELECT (place_order('Eve', 'eve@example.com', '{}')).order_id", &[]).await {
            Ok(_) => {
                buyer.batch_execute("COMMIT").await.unwrap();
                placed += 1;
            }
            Err(e) => {
                buyer.batch_execute("ROLLBACK").await.unwrap();
                assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED), "place_order: {e:?}");
            }
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    toggler.await.unwrap();
    let wrong = owner
        .query(
            "SELECT o.order_id, o.subtotal::text, string_agg(i.product_name || ' x' || i.quantity || ' @ ' || i.unit_price, ', ')
               FROM orders o JOIN order_items i USING (order_id) JOIN products p ON p.product_id = i.product_id
              WHERE o.user_id = $1::text::clerk_user_id
              GROUP BY o.order_id
             HAVING o.subtotal <> sum(i.total_price) OR bool_or(i.unit_price <> p.price)",
            &[&user],
        )
        .await
        .unwrap();
    let shown: Vec<String> =
        wrong.iter().map(|r| format!("order {} total {}: {}", r.get::<_, i64>(0), r.get::<_, String>(1), r.get::<_, String>(2))).collect();
    assert!(shown.is_empty(), "{} of {ORDERS} orders disagree with their lines:\n{}", shown.len(), shown.join("\n"));
}
