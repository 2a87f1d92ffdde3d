//! Prometheus text for the admin listener's `/metrics`. Counters are
//! atomics bumped where things happen (requests in `api`, the pool in `db`,
//! the sync worker in `sync`); gauges that belong to a live object (the
//! pool, the outbox in the database) are read at scrape time and handed
//! to `render`.
//!
//! Label values are bounded: a request's `route` is a table, view or
//! function name from the schema cache, or one of a few fixed labels
//! (`/`, `webhook`, `live`, `other`), never a path a client made up.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

pub static SYNC_DELIVERED: AtomicU64 = AtomicU64::new(0);
pub static SYNC_FAILED: AtomicU64 = AtomicU64::new(0);
pub static SYNC_DEAD: AtomicU64 = AtomicU64::new(0);

/// API requests between their header being read and their response being
/// written; graceful shutdown waits for this to reach 0.
pub static REQUESTS_IN_FLIGHT: AtomicI64 = AtomicI64::new(0);

/// Requests that found every pooled connection busy and had to wait.
pub static POOL_WAITS: AtomicU64 = AtomicU64::new(0);
/// Requests that waited `db-pool-acquisition-timeout` in vain.
pub static POOL_TIMEOUTS: AtomicU64 = AtomicU64::new(0);
/// Statements the proxy cancelled itself, past db-statement-timeout.
pub static DEADLINE_CANCELS: AtomicU64 = AtomicU64::new(0);
pub static CLIENT_GONE_CANCELS: AtomicU64 = AtomicU64::new(0);
/// Database connections the pool opened (a steady value: connections are reused).
pub static DB_CONNECTIONS_OPENED: AtomicU64 = AtomicU64::new(0);

/// Connections refused at accept, by which cap.
pub static CONNECTIONS_REFUSED_TOTAL: AtomicU64 = AtomicU64::new(0);
pub static CONNECTIONS_REFUSED_IP: AtomicU64 = AtomicU64::new(0);
/// Requests refused by the HTTP layer before the API saw them: too slow
/// (408), too long a URL (414), too many or too large headers (431).
pub static HTTP_REFUSED_408: AtomicU64 = AtomicU64::new(0);
pub static HTTP_REFUSED_414: AtomicU64 = AtomicU64::new(0);
pub static HTTP_REFUSED_431: AtomicU64 = AtomicU64::new(0);

/// Requests refused with 429, by what was limited.
pub static RATE_LIMITED_USER: AtomicU64 = AtomicU64::new(0);
pub static RATE_LIMITED_IP: AtomicU64 = AtomicU64::new(0);
pub static RATE_LIMITED_CLIENT: AtomicU64 = AtomicU64::new(0);

/// `POST /webhooks/clerk` by outcome: applied, ignored and duplicate are
/// `clerk_apply_webhook`'s answers; rejected: refused before the database
/// (signature, timestamp, headers); failed: the database refused it.
pub static WEBHOOK_APPLIED: AtomicU64 = AtomicU64::new(0);
pub static WEBHOOK_IGNORED: AtomicU64 = AtomicU64::new(0);
pub static WEBHOOK_DUPLICATE: AtomicU64 = AtomicU64::new(0);
pub static WEBHOOK_REJECTED: AtomicU64 = AtomicU64::new(0);
pub static WEBHOOK_FAILED: AtomicU64 = AtomicU64::new(0);

/// Read-only requests a standby answered, and those it could not take
/// (then the primary answered).
pub static REPLICA_READS: AtomicU64 = AtomicU64::new(0);
pub static REPLICA_FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// Verified-token cache lookups, and JWKS refetches (unknown `kid`).
pub static JWT_CACHE_HITS: AtomicU64 = AtomicU64::new(0);
pub static JWT_CACHE_MISSES: AtomicU64 = AtomicU64::new(0);
pub static JWKS_REFRESH_OK: AtomicU64 = AtomicU64::new(0);
pub static JWKS_REFRESH_FAILED: AtomicU64 = AtomicU64::new(0);

pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Upper bounds of the latency histogram's buckets, in seconds.
/// Most answers take under a millisecond: the first buckets resolve that.
const BUCKETS: [f64; 16] = [0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Requests by route, then status; a new pair takes the write lock once.
static REQUESTS: RwLock<BTreeMap<String, BTreeMap<u16, AtomicU64>>> = RwLock::new(BTreeMap::new());
/// Per bucket (not cumulative; the last one is +Inf), then the sum in µs.
static LATENCY: [AtomicU64; BUCKETS.len() + 1] = [const { AtomicU64::new(0) }; BUCKETS.len() + 1];
static LATENCY_SUM_MICROS: AtomicU64 = AtomicU64::new(0);

/// Records one answered API request.
pub fn observe_request(route: &str, status: u16, elapsed: Duration) {
    let known = {
        let map = REQUESTS.read().unwrap_or_else(|p| p.into_inner());
        map.get(route).and_then(|s| s.get(&status)).map(|n| n.fetch_add(1, Ordering::Relaxed)).is_some()
    };
    if !known {
        let mut map = REQUESTS.write().unwrap_or_else(|p| p.into_inner());
        map.entry(route.to_owned()).or_default().entry(status).or_insert_with(|| AtomicU64::new(0)).fetch_add(1, Ordering::Relaxed);
    }
    let seconds = elapsed.as_secs_f64();
    let bucket = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
    LATENCY[bucket].fetch_add(1, Ordering::Relaxed);
    LATENCY_SUM_MICROS.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
}

/// The pool at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub max: usize,
    pub in_use: usize,
    pub idle: usize,
}

/// Escapes a label value (`\`, `"`, newline), as the text format asks.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// `outbox`: (state, rows) pairs, when the database answered.
/// One standby (`db-replica-uris`) as its last check found it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaReport {
    /// `host:port`
    pub label: String,
    /// serving, lagging, down or not_standby
    pub state: &'static str,
    /// Behind the primary, when it is a standby that answers.
    pub lag_seconds: Option<f64>,
    /// Why it is down.
    pub error: Option<String>,
    pub pool: PoolStats,
}

pub fn render(pool: PoolStats, replicas: &[ReplicaReport], outbox: Option<&[(String, i64)]>) -> String {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();

    header(
        &mut out,
        "clerk_proxy_http_requests_total",
        "counter",
        "API requests answered, by route (table, view or rpc/function; /, webhook, live, other) and HTTP status.",
    );
    for (route, statuses) in REQUESTS.read().unwrap_or_else(|p| p.into_inner()).iter() {
        for (status, n) in statuses {
            let _ = writeln!(out, "clerk_proxy_http_requests_total{{route=\"{}\",status=\"{status}\"}} {}", label(route), load(n));
        }
    }
    header(&mut out, "clerk_proxy_http_request_duration_seconds", "histogram", "Time from the request's header to its answer.");
    let mut cumulative = 0;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += load(&LATENCY[i]);
        let _ = writeln!(out, "clerk_proxy_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += load(&LATENCY[BUCKETS.len()]);
    let _ = writeln!(out, "clerk_proxy_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "clerk_proxy_http_request_duration_seconds_sum {}", load(&LATENCY_SUM_MICROS) as f64 / 1e6);
    let _ = writeln!(out, "clerk_proxy_http_request_duration_seconds_count {cumulative}");
    header(&mut out, "clerk_proxy_http_requests_in_flight", "gauge", "API requests being served.");
    let _ = writeln!(out, "clerk_proxy_http_requests_in_flight {}", REQUESTS_IN_FLIGHT.load(Ordering::Relaxed).max(0));
    header(
        &mut out,
        "clerk_proxy_rate_limited_total",
        "counter",
        "Requests refused with 429, by limit (rate-limit-per-user, rate-limit-per-ip, db-max-connections-per-client).",
    );
    for (by, counter) in [("user", &RATE_LIMITED_USER), ("ip", &RATE_LIMITED_IP), ("client", &RATE_LIMITED_CLIENT)] {
        let _ = writeln!(out, "clerk_proxy_rate_limited_total{{limit=\"{by}\"}} {}", load(counter));
    }
    header(
        &mut out,
        "clerk_proxy_connections_refused_total",
        "counter",
        "Connections refused at accept, by cap (server-max-connections, server-max-connections-per-ip).",
    );
    for (by, counter) in [("total", &CONNECTIONS_REFUSED_TOTAL), ("ip", &CONNECTIONS_REFUSED_IP)] {
        let _ = writeln!(out, "clerk_proxy_connections_refused_total{{limit=\"{by}\"}} {}", load(counter));
    }
    header(
        &mut out,
        "clerk_proxy_http_refused_total",
        "counter",
        "Requests refused before being read whole: 408 too slow, 414 URL too long, 431 headers.",
    );
    for (status, counter) in [("408", &HTTP_REFUSED_408), ("414", &HTTP_REFUSED_414), ("431", &HTTP_REFUSED_431)] {
        let _ = writeln!(out, "clerk_proxy_http_refused_total{{status=\"{status}\"}} {}", load(counter));
    }

    header(
        &mut out,
        "clerk_proxy_db_pool_connections",
        "gauge",
        "Pooled database connections by state (in_use: lent to a request; idle: open and free).",
    );
    let _ = writeln!(out, "clerk_proxy_db_pool_connections{{state=\"in_use\"}} {}", pool.in_use);
    let _ = writeln!(out, "clerk_proxy_db_pool_connections{{state=\"idle\"}} {}", pool.idle);
    header(&mut out, "clerk_proxy_db_pool_max_connections", "gauge", "db-pool: the most connections the pool opens.");
    let _ = writeln!(out, "clerk_proxy_db_pool_max_connections {}", pool.max);
    header(&mut out, "clerk_proxy_db_pool_waits_total", "counter", "Requests that found every connection in use and waited for one.");
    let _ = writeln!(out, "clerk_proxy_db_pool_waits_total {}", load(&POOL_WAITS));
    header(
        &mut out,
        "clerk_proxy_db_pool_timeouts_total",
        "counter",
        "Requests that waited db-pool-acquisition-timeout for a connection in vain (503 PGRST003).",
    );
    let _ = writeln!(out, "clerk_proxy_db_pool_timeouts_total {}", load(&POOL_TIMEOUTS));
    header(
        &mut out,
        "clerk_proxy_db_deadline_cancels_total",
        "counter",
        "Statements still running past db-statement-timeout that the proxy cancelled (504).",
    );
    let _ = writeln!(out, "clerk_proxy_db_deadline_cancels_total {}", load(&DEADLINE_CANCELS));
    header(
        &mut out,
        "clerk_proxy_db_client_gone_cancels_total",
        "counter",
        "Statements cancelled because their client closed the connection before the answer.",
    );
    let _ = writeln!(out, "clerk_proxy_db_client_gone_cancels_total {}", load(&CLIENT_GONE_CANCELS));
    header(&mut out, "clerk_proxy_db_connections_opened_total", "counter", "Database connections opened by the pool.");
    let _ = writeln!(out, "clerk_proxy_db_connections_opened_total {}", load(&DB_CONNECTIONS_OPENED));

    if !replicas.is_empty() {
        header(
            &mut out,
            "clerk_proxy_replica_serving",
            "gauge",
            "1 when the standby serves reads (answers, in recovery, within db-replica-max-lag).",
        );
        for r in replicas {
            let _ = writeln!(out, "clerk_proxy_replica_serving{{replica=\"{}\"}} {}", label(&r.label), u8::from(r.state == "serving"));
        }
        header(&mut out, "clerk_proxy_replica_lag_seconds", "gauge", "How far the standby's replay is behind the primary's WAL.");
        for r in replicas {
            if let Some(lag) = r.lag_seconds {
                let _ = writeln!(out, "clerk_proxy_replica_lag_seconds{{replica=\"{}\"}} {lag}", label(&r.label));
            }
        }
        header(&mut out, "clerk_proxy_replica_pool_connections", "gauge", "Each standby's pooled connections by state.");
        for r in replicas {
            for (state, n) in [("in_use", r.pool.in_use), ("idle", r.pool.idle)] {
                let _ = writeln!(out, "clerk_proxy_replica_pool_connections{{replica=\"{}\",state=\"{state}\"}} {n}", label(&r.label));
            }
        }
        header(&mut out, "clerk_proxy_replica_reads_total", "counter", "Read-only requests answered by a standby.");
        let _ = writeln!(out, "clerk_proxy_replica_reads_total {}", load(&REPLICA_READS));
        header(
            &mut out,
            "clerk_proxy_replica_fallbacks_total",
            "counter",
            "Reads a standby could not take (unreachable, shutting down, recovery conflict), answered by the primary.",
        );
        let _ = writeln!(out, "clerk_proxy_replica_fallbacks_total {}", load(&REPLICA_FALLBACKS));
    }

    header(&mut out, "clerk_proxy_jwt_cache_total", "counter", "Verified-token cache lookups by result (a miss verifies the signature).");
    for (result, counter) in [("hit", &JWT_CACHE_HITS), ("miss", &JWT_CACHE_MISSES)] {
        let _ = writeln!(out, "clerk_proxy_jwt_cache_total{{result=\"{result}\"}} {}", load(counter));
    }
    header(&mut out, "clerk_proxy_jwks_refreshes_total", "counter", "JWKS refetches (a token named an unknown kid) by result.");
    for (result, counter) in [("ok", &JWKS_REFRESH_OK), ("failed", &JWKS_REFRESH_FAILED)] {
        let _ = writeln!(out, "clerk_proxy_jwks_refreshes_total{{result=\"{result}\"}} {}", load(counter));
    }
    header(
        &mut out,
        "clerk_proxy_webhooks_total",
        "counter",
        "Clerk webhook deliveries by outcome (applied, ignored, duplicate; rejected: bad signature or timestamp; failed: database error).",
    );
    for (outcome, counter) in [
        ("applied", &WEBHOOK_APPLIED),
        ("ignored", &WEBHOOK_IGNORED),
        ("duplicate", &WEBHOOK_DUPLICATE),
        ("rejected", &WEBHOOK_REJECTED),
        ("failed", &WEBHOOK_FAILED),
    ] {
        let _ = writeln!(out, "clerk_proxy_webhooks_total{{outcome=\"{outcome}\"}} {}", load(counter));
    }

    header(&mut out, "clerk_metadata_sync_calls_total", "counter", "Calls to Clerk's metadata API by the sync worker, by result.");
    for (result, counter) in [("delivered", &SYNC_DELIVERED), ("failed", &SYNC_FAILED), ("dead", &SYNC_DEAD)] {
        let _ = writeln!(out, "clerk_metadata_sync_calls_total{{result=\"{result}\"}} {}", load(counter));
    }
    if let Some(rows) = outbox {
        header(
            &mut out,
            "clerk_metadata_outbox_rows",
            "gauge",
            "Rows of clerk_metadata_outbox by state (pending = queued or waiting for a retry).",
        );
        for state in ["pending", "delivered", "dead"] {
            let n = rows.iter().find(|(s, _)| s == state).map(|(_, n)| *n).unwrap_or(0);
            let _ = writeln!(out, "clerk_metadata_outbox_rows{{state=\"{state}\"}} {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let text = render(PoolStats { max: 4, in_use: 1, idle: 2 }, &[], Some(&[("pending".into(), 2), ("dead".into(), 1)]));
        assert!(text.contains("clerk_metadata_outbox_rows{state=\"pending\"} 2\n"));
        assert!(text.contains("clerk_metadata_outbox_rows{state=\"delivered\"} 0\n"));
        assert!(text.contains("# TYPE clerk_metadata_sync_calls_total counter\n"));
        assert!(text.contains("clerk_proxy_db_pool_connections{state=\"in_use\"} 1\nclerk_proxy_db_pool_connections{state=\"idle\"} 2\n"));
        assert!(text.contains("clerk_proxy_db_pool_max_connections 4\n"));
        assert!(!render(PoolStats::default(), &[], None).contains("outbox_rows"));
        assert!(!text.contains("replica"), "no standby, no replica series");
        let standby = |state, lag| ReplicaReport {
            label: "10.0.0.2:5432".into(),
            state,
            lag_seconds: lag,
            error: None,
            pool: PoolStats { max: 4, in_use: 3, idle: 1 },
        };
        let text = render(
            PoolStats::default(),
            &[standby("serving", Some(0.5)), ReplicaReport { label: "10.0.0.3:5432".into(), ..standby("down", None) }],
            None,
        );
        assert!(
            text.contains(
                "clerk_proxy_replica_serving{replica=\"10.0.0.2:5432\"} 1\nclerk_proxy_replica_serving{replica=\"10.0.0.3:5432\"} 0\n"
            ),
            "{text}"
        );
        assert!(text.contains("clerk_proxy_replica_lag_seconds{replica=\"10.0.0.2:5432\"} 0.5\n# "), "a down standby has no lag: {text}");
        assert!(text.contains("clerk_proxy_replica_pool_connections{replica=\"10.0.0.2:5432\",state=\"in_use\"} 3\n"));
    }

    #[test]
    fn requests_by_route_and_status_and_a_cumulative_histogram() {
        // Other tests in this process may record requests too: own route names.
        observe_request("metrics_test_a", 200, Duration::from_micros(500));
        observe_request("metrics_test_a", 200, Duration::from_millis(30));
        observe_request("metrics_test_a", 404, Duration::from_secs(20));
        observe_request("metrics_test \"b\"", 500, Duration::from_millis(2));
        let text = render(PoolStats::default(), &[], None);
        assert!(text.contains("clerk_proxy_http_requests_total{route=\"metrics_test_a\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("clerk_proxy_http_requests_total{route=\"metrics_test_a\",status=\"404\"} 1\n"));
        assert!(text.contains("clerk_proxy_http_requests_total{route=\"metrics_test \\\"b\\\"\",status=\"500\"} 1\n"));
        let bucket = |le: &str| -> u64 {
            let prefix = format!("clerk_proxy_http_request_duration_seconds_bucket{{le=\"{le}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap().parse().unwrap()
        };
        assert!(bucket("0.001") >= 1 && bucket("0.05") >= bucket("0.001") + 2 && bucket("+Inf") > bucket("10"));
        let count: u64 =
            text.lines().find_map(|l| l.strip_prefix("clerk_proxy_http_request_duration_seconds_count ")).unwrap().parse().unwrap();
        assert_eq!(count, bucket("+Inf"));
    }
}
