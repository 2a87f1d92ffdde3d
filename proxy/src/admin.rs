//! Operational endpoints. `/live`: the process is up and serving (API and
//! admin ports). On the admin port only (`api::handle_admin`): `/ready`,
//! whether it can serve requests now, and `/metrics`.

use crate::error::ApiError;
use crate::response::json;
use http::{Response, StatusCode};
use serde_json::json as j;

/// Answers an admin path, or None when the path is not an admin endpoint.
pub fn route(method: &str, path: &str) -> Option<Response<Vec<u8>>> {
    match path {
        "/live" => Some(match method {
            "GET" | "HEAD" => json(StatusCode::OK, &j!({"status": "live", "version": env!("CARGO_PKG_VERSION")})),
            other => ApiError::method_not_allowed(other, path).into_response(),
        }),
        _ => None,
    }
}

/// What `/ready` checked: 200 when everything holds, else 503 naming the
/// failed checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// `SELECT 1` on the probe connection, or why not.
    pub database: Result<(), String>,
    /// Relations in the schema cache; None: not loaded.
    pub schema_relations: Option<usize>,
    /// Verification keys loaded (or `db-anon-role` only, which needs none).
    pub keys_loaded: bool,
    /// How many keys.
    pub key_count: usize,
    /// The standbys: reported, not checked (reads go to the primary
    /// while none serves).
    pub replicas: Vec<crate::metrics::ReplicaReport>,
}

impl Readiness {
    pub fn into_response(self) -> Response<Vec<u8>> {
        let database = match &self.database {
            Ok(()) => j!({"ok": true}),
            Err(e) => j!({"ok": false, "error": e}),
        };
        let schema = match self.schema_relations {
            Some(n) => j!({"ok": true, "relations": n}),
            None => j!({"ok": false, "error": "the schema cache is not loaded"}),
        };
        let keys = match self.keys_loaded {
            true => j!({"ok": true, "keys": self.key_count}),
            false => {
                j!({"ok": false, "keys": 0, "error": "no key to verify tokens with and no db-anon-role: every request would be refused"})
            }
        };
        let failed: Vec<&str> =
            [("database", self.database.is_ok()), ("schema_cache", self.schema_relations.is_some()), ("keys", self.keys_loaded)]
                .into_iter()
                .filter(|(_, ok)| !ok)
                .map(|(name, _)| name)
                .collect();
        let (status, word) = if failed.is_empty() { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "unavailable") };
        let mut checks = j!({"database": database, "schema_cache": schema, "keys": keys});
        if !self.replicas.is_empty() {
            checks["replicas"] = self
                .replicas
                .iter()
                .map(|r| {
                    let mut report = j!({"replica": r.label, "state": r.state, "pool": {"max": r.pool.max, "in_use": r.pool.in_use, "idle": r.pool.idle}});
                    if let Some(lag) = r.lag_seconds {
                        report["lag_ms"] = j!((lag * 1000.0).round() as u64);
                    }
                    if let Some(e) = &r.error {
                        report["error"] = j!(e);
                    }
                    report
                })
                .collect();
        }
        json(status, &j!({"status": word, "failed": failed, "checks": checks}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_holds() {
        let ok = Readiness { database: Ok(()), schema_relations: Some(12), keys_loaded: true, key_count: 2, replicas: Vec::new() };
        assert_eq!(ok.clone().into_response().status(), StatusCode::OK);
        let down = Readiness { database: Err("cannot connect: refused".into()), ..ok.clone() };
        let response = down.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["failed"], j!(["database"]));
        assert_eq!(body["checks"]["database"]["error"], "cannot connect: refused");
        assert_eq!(body["checks"]["schema_cache"], j!({"ok": true, "relations": 12}));
        assert_eq!(body["checks"]["keys"], j!({"ok": true, "keys": 2}));
        assert!(body["checks"].get("replicas").is_none());
        let keyless = Readiness { keys_loaded: false, key_count: 0, ..ok.clone() };
        let body: serde_json::Value = serde_json::from_slice(keyless.into_response().body()).unwrap();
        assert_eq!(body["failed"], j!(["keys"]));
        // A standby down leaves the proxy ready: the primary serves reads.
        let pool = crate::metrics::PoolStats { max: 10, in_use: 1, idle: 2 };
        let replicas = vec![
            crate::metrics::ReplicaReport { label: "s1:5432".into(), state: "serving", lag_seconds: Some(0.0123), error: None, pool },
            crate::metrics::ReplicaReport {
                label: "s2:5432".into(),
                state: "down",
                lag_seconds: None,
                error: Some("cannot connect".into()),
                pool,
            },
        ];
        let response = Readiness { replicas, ..ok }.into_response();
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(
            body["checks"]["replicas"],
            j!([
                {"replica": "s1:5432", "state": "serving", "lag_ms": 12, "pool": {"max": 10, "in_use": 1, "idle": 2}},
                {"replica": "s2:5432", "state": "down", "error": "cannot connect", "pool": {"max": 10, "in_use": 1, "idle": 2}}
            ])
        );
    }

    #[test]
    fn live_answers_get_and_refuses_post() {
        assert_eq!(route("GET", "/live").unwrap().status(), StatusCode::OK);
        assert_eq!(route("POST", "/live").unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(route("GET", "/orders").is_none());
    }
}
