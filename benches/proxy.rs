//! clerk-proxy's per-request work outside the database, side by side:
//! token verification cold (RS256) and cached, and a typical request
//! through the request → plan → sql stages.
//!
//! `Authenticator::authenticate` is async but, with the keys at hand, never
//! waits: it is polled once here, as the request's task polls it in the
//! proxy. A `block_on` per iteration would add the runtime's entry and exit
//! (~130 ns on the 2-core bench machine), which no request pays.

use clerk_jwt::test_keys::{now, sign};
use clerk_proxy::auth::Authenticator;
use clerk_proxy::config::Config;
use clerk_proxy::schema::{Column, Relation, SchemaCache, Writable};
use clerk_proxy::{plan, request, sql};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

fn authenticator(cache_entries: &str) -> Authenticator {
    let jwks = std::env::temp_dir().join(format!("clerk-proxy-bench-{}.json", std::process::id()));
    std::fs::write(&jwks, clerk_jwt::test_keys::JWKS).unwrap();
    let env = [
        ("CLERK_PROXY_DB_URI", "postgres://authenticator@127.0.0.1/app".to_owned()),
        ("CLERK_PROXY_CLERK_JWKS_FILE", jwks.display().to_string()),
        ("CLERK_PROXY_CLERK_ISSUER", "https://clerk.example.com".to_owned()),
        ("CLERK_PROXY_JWT_CACHE_MAX_ENTRIES", cache_entries.to_owned()),
    ];
    let config = Config::from_sources("", "bench", env.iter().map(|(k, v)| (k.to_string(), v.clone()))).unwrap();
    Authenticator::from_config(&config).unwrap()
}

/// The output of a future that completes on its first poll.
fn ready<F: Future>(future: F) -> F::Output {
    match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmarked future waited"),
    }
}

fn auth(c: &mut Criterion) {
    let token = sign(&json!({"sub": "user_2abcdefghijklmnopqrstuvwxyz", "sid": "sess_2abc", "iss": "https://clerk.example.com",
                             "azp": "https://app.example.com", "iat": now() - 5, "exp": now() + 3000, "nbf": now() - 5}));
    let header = format!("Bearer {token}");
    let (uncached, cached) = (authenticator("0"), authenticator("10000"));
    let mut g = c.benchmark_group("proxy auth");
    g.bench_function("RS256 verify, cold (cache off)", |b| {
        b.iter(|| ready(uncached.authenticate(Some(black_box(&header)), None)).unwrap())
    });
    g.bench_function("cached token", |b| b.iter(|| ready(cached.authenticate(Some(black_box(&header)), None)).unwrap()));
    g.finish();
}

fn stages(c: &mut Criterion) {
    let col = |n: &str, t: &str| Column {
        name: n.into(),
        type_sql: t.into(),
        value_type: t.into(),
        primary_key: n == "order_id",
        nullable: n != "order_id",
        has_default: n == "order_id" || n == "created_at",
        computed_by: None,
    };
    let orders = Relation {
        schema: "public".into(),
        name: "orders".into(),
        is_table: true,
        planner_counts_visible: false,
        row_addresses: true,
        writable: Writable::ALL,
        columns: [
            "order_id:bigint",
            "order_number:text",
            "user_id:clerk_user_id",
            "status:text",
            "total_amount:numeric(10,2)",
            "created_at:timestamp with time zone",
        ]
        .iter()
        .map(|s| s.split_once(':').map(|(n, t)| col(n, t)).unwrap())
        .collect(),
        computed: vec![],
    };
    let cache = SchemaCache::new("public", vec![orders], vec![], vec![]);
    let query = "select=order_number,status,total_amount&status=in.(pending,shipped)&total_amount=gte.10&order=created_at.desc&limit=20";
    c.bench_function("proxy stages/parse + plan + SQL (GET /orders, 2 filters, order, limit)", |b| {
        b.iter(|| {
            let q = request::parse_query(black_box(query), false).unwrap();
            let p = plan::read(&cache, "orders", &q).unwrap();
            sql::read(&p, None, 1000, false, sql::RowsAs::Json)
        })
    });
}

criterion_group!(benches, auth, stages);
criterion_main!(benches);
