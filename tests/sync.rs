//! Customer metadata pushed to Clerk: clerk-proxy's sync worker against a
//! real HTTP server on 127.0.0.1 that stands in for Clerk's Backend API.
//! One test, run step by step, because it starts and kills proxies.

use pg_clerk_e2e::{admin_query as admin, api_dsn, free_port, http, start_proxy, FakeClerk};
use serde_json::json;
use std::time::{Duration, Instant};

fn paid_order(user: &str, amount: u32) {
    admin(&format!(
        "INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status)
         VALUES ('{user}', 'S', 's@example.com', '{{}}', {amount}, {amount}, 'confirmed', 'paid')"
    ));
}

fn state_of(user: &str) -> String {
    admin(&format!("SELECT state FROM clerk_metadata_outbox WHERE user_id = '{user}'")).first().map(|r| r.get(0)).unwrap_or_default()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A proxy with the sync worker on; returns it, its API port and its admin port.
fn proxy_with(clerk: &FakeClerk) -> (pg_clerk_e2e::Running, u16, u16) {
    let admin_port = free_port();
    let (running, port) = start_proxy(&format!(
        "db-uri = \"{}\"\ndb-anon-role = \"anon\"\nclerk-api-url = \"{}\"\nclerk-secret-key = \"sk_test_sync\"\nadmin-server-port = {admin_port}",
        api_dsn(),
        clerk.url
    ));
    (running, port, admin_port)
}

#[test]
fn metadata_reaches_clerk_once_through_failures_restarts_and_two_workers() {
    let clerk = FakeClerk::start();

    // A worker that dies between claim and mark: Clerk holds its call, we kill it.
    clerk.script("user_syncCrash", &[(200, 4000)]);
    let (mut doomed, _, _) = proxy_with(&clerk);
    paid_order("user_syncCrash", 30);
    wait_until("the first call for user_syncCrash", || !clerk.requests_for("user_syncCrash").is_empty());
    doomed.0.kill().unwrap();
    doomed.0.wait().unwrap();
    assert_eq!(state_of("user_syncCrash"), "pending", "the killed worker's transaction rolled back");

    // Restarted (and a second instance beside it): the row is delivered.
    let (_a, a_port, a_admin) = proxy_with(&clerk);
    let (_b, _, _) = proxy_with(&clerk);
    wait_until("user_syncCrash delivered after the restart", || state_of("user_syncCrash") == "delivered");

    // An order paid: one PATCH with the customer's metadata.
    paid_order("user_sync1", 120);
    wait_until("user_sync1 delivered", || state_of("user_sync1") == "delivered");
    let calls = clerk.requests_for("user_sync1");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["public_metadata"]["totalOrders"], 1);
    assert_eq!(calls[0]["public_metadata"]["totalSpent"], 120.0);
    assert_eq!(calls[0]["public_metadata"]["customerTier"], json!("Silver"));

    // Clerk down for a while (500, 500): delivered once it answers again.
    clerk.script("user_sync2", &[(500, 0), (500, 0)]);
    paid_order("user_sync2", 10);
    wait_until("user_sync2 delivered after two failures", || state_of("user_sync2") == "delivered");
    assert_eq!(clerk.requests_for("user_sync2").len(), 3);

    // 429 with Retry-After: 1 is honoured, then delivered; a 404 is final (dead).
    clerk.script("user_sync429", &[(429, 0)]);
    paid_order("user_sync429", 10);
    wait_until("user_sync429 delivered after a 429", || state_of("user_sync429") == "delivered");
    assert_eq!(clerk.requests_for("user_sync429").len(), 2);
    let waited = admin("SELECT delivered_at - queued_at >= interval '1 second' FROM clerk_metadata_outbox WHERE user_id = 'user_sync429'");
    assert!(waited[0].get::<_, bool>(0), "Retry-After was honoured");
    clerk.script("user_syncGone", &[(404, 0)]);
    paid_order("user_syncGone", 10);
    wait_until("user_syncGone dead", || state_of("user_syncGone") == "dead");

    // Two workers, many users at once: each user's metadata sent exactly once.
    admin(
        "INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status)
         SELECT ('user_syncMany' || g)::clerk_user_id, 'S', 's@example.com', '{}', 5, 5, 'confirmed', 'paid' FROM generate_series(1, 40) g",
    );
    wait_until("40 users delivered", || {
        admin("SELECT count(*) FROM clerk_metadata_outbox WHERE user_id::text LIKE 'user_syncMany%' AND state = 'delivered'")[0]
            .get::<_, i64>(0)
            == 40
    });
    std::thread::sleep(Duration::from_secs(1));
    for g in 1..=40 {
        assert_eq!(clerk.requests_for(&format!("user_syncMany{g}")).len(), 1, "user_syncMany{g}");
    }
    assert_eq!(clerk.requests_for("user_sync1").len(), 1, "nothing was sent twice");

    // The admin listener's /metrics shows the outbox and the worker's calls;
    // the API port does not serve it.
    let (status, _, metrics) = http(a_admin, "GET", "/metrics", &[], None);
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(-1.0)
    };
    assert!(value("clerk_metadata_outbox_rows{state=\"delivered\"}") >= 44.0, "{metrics}");
    assert!(value("clerk_metadata_outbox_rows{state=\"dead\"}") >= 1.0, "{metrics}");
    // (which of the two workers made the calls is up to SKIP LOCKED)
    assert!(value("clerk_metadata_sync_calls_total{result=\"delivered\"}") >= 0.0, "{metrics}");
    assert_eq!(http(a_admin, "GET", "/live", &[], None).0, 200);
    assert_eq!(http(a_port, "GET", "/metrics", &[], None).0, 404);

    // SIGTERM while the worker waits for Clerk's answer: the proxy marks
    // the call it made before exiting, so no other worker makes it again.
    drop((_a, _b));
    clerk.script("user_syncStop", &[(200, 2500)]);
    let (mut stopping, _, _) = proxy_with(&clerk);
    paid_order("user_syncStop", 15);
    wait_until("the call for user_syncStop", || !clerk.requests_for("user_syncStop").is_empty());
    // SAFETY: kill(2) with the pid of a proxy this test started.
    unsafe { libc::kill(stopping.0.id() as libc::pid_t, libc::SIGTERM) };
    let exited = stopping.0.wait().unwrap();
    assert!(exited.success(), "{exited}");
    assert_eq!(state_of("user_syncStop"), "delivered", "marked before the exit, not released to be sent again");
    let (_after, _, _) = proxy_with(&clerk);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(clerk.requests_for("user_syncStop").len(), 1, "sent once");
}
