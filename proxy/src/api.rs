//! One request's way through the stages, as plain data in and out:
//! auth → request → plan → sql → db → response. The Pingora glue in
//! `main.rs` only reads the HTTP request and writes what this returns.

use crate::auth::{Authenticator, Caller};
use crate::db::{Pool, RequestContext};
use crate::request::{self, Target};
use crate::response::{self, ApiError};
use crate::schema::SchemaCache;
use crate::webhooks::{self, WebhookVerifier};
use crate::{admin, plan, sql};
use http::Response;
use serde_json::{Map, Value};
use std::sync::{Arc, RwLock};

/// The HTTP request, already read off the wire.
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub struct State {
    pub authenticator: Authenticator,
    /// Swapped whole when the schema is reloaded; requests in flight keep
    /// the cache they started with.
    pub schema: RwLock<Arc<SchemaCache>>,
    pub pool: Pool,
    /// None when `clerk-webhook-secret` is unset: the endpoint is off.
    pub webhooks: Option<WebhookVerifier>,
}

impl State {
    pub fn schema(&self) -> Arc<SchemaCache> {
        self.schema.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace_schema(&self, cache: SchemaCache) {
        *self.schema.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cache);
    }
}

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

pub async fn handle(state: &State, req: &HttpRequest) -> Response<Vec<u8>> {
    if let Some(r) = admin::route(&req.method, &req.path) {
        return r;
    }
    if req.path == "/webhooks/clerk" {
        return clerk_webhook(state, req).await.unwrap_or_else(ApiError::into_response);
    }
    serve(state, req).await.unwrap_or_else(ApiError::into_response)
}

/// The admin listener (`admin-server-port`): `/live` and `/metrics`,
/// never exposed on the API port.
pub async fn handle_admin(state: &State, req: &HttpRequest) -> Response<Vec<u8>> {
    if req.path == "/metrics" && (req.method == "GET" || req.method == "HEAD") {
        let statement = crate::sql::Statement {
            sql: "SELECT coalesce(json_agg(json_build_array(state, users)), '[]')::text, count(*), NULL::bigint FROM clerk_metadata_outbox_status".into(),
            params: vec![],
        };
        let ctx = RequestContext { role: "clerk_sync", claims: "", method: "GET", path: "/metrics", headers: "{}", cookies: "{}" };
        let outbox: Option<Vec<(String, i64)>> = match state.pool.run(&ctx, true, &statement).await {
            Ok(r) => serde_json::from_str::<Vec<(String, i64)>>(r.body.as_deref().unwrap_or("[]")).ok(),
            Err(_) => None, // the outbox is optional (sql/007) and the database may be down
        };
        let body = crate::metrics::render(outbox.as_deref()).into_bytes();
        return Response::builder()
            .status(200)
            .header("content-type", "text/plain; version=0.0.4")
            .header("content-length", body.len())
            .body(body)
            .expect("valid headers");
    }
    admin::route(&req.method, &req.path).unwrap_or_else(|| ApiError::not_found_path(&req.path).into_response())
}

async fn clerk_webhook(state: &State, req: &HttpRequest) -> Result<Response<Vec<u8>>, ApiError> {
    let verifier = state.webhooks.as_ref().ok_or_else(|| ApiError::not_found_path(&req.path))?;
    if req.method != "POST" {
        return Err(ApiError::method_not_allowed(&req.method, &req.path));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    verifier
        .verify(req.header("svix-id"), req.header("svix-timestamp"), req.header("svix-signature"), &req.body, now)
        .map_err(|e| e.into_api_error())?;
    let statement = webhooks::apply(req.header("svix-id").unwrap_or_default(), &req.body)?;
    let ctx = RequestContext { role: "clerk_webhook", claims: "", method: "POST", path: &req.path, headers: "{}", cookies: "{}" };
    let outcome = state.pool.run(&ctx, false, &statement).await?;
    response::called(outcome)
}

async fn serve(state: &State, req: &HttpRequest) -> Result<Response<Vec<u8>>, ApiError> {
    let target = request::parse_target(&req.path).ok_or_else(|| ApiError::not_found_path(&req.path))?;
    let caller = state
        .authenticator
        .authenticate(req.header("authorization"), req.header("cookie"))
        .await
        .map_err(|e| e.into_api_error())?;
    let schema = state.schema();
    let parse_error = |e: request::ParseError| ApiError::bad_request("PGRST100", e.message, Some(e.details));
    let prefer = request::parse_prefer(req.header("prefer"));
    let single = wants_object(req);
    let (statement, read_only, answer) = match (req.method.as_str(), &target) {
        ("GET" | "HEAD", Target::Relation(name)) => {
            let mut q = request::parse_query(&req.query, false).map_err(parse_error)?;
            if let Some(range) = req.header("range") {
                let (offset, limit) = request::parse_range(range).map_err(parse_error)?;
                q.offset = Some(offset);
                q.limit = match (q.limit, limit) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let p = plan::read(&schema, name, &q)?;
            let offset = q.offset.unwrap_or(0);
            (sql::read(&p, prefer.count_exact), true, Answer::Rows { offset, head: req.method == "HEAD" })
        }
        ("POST" | "PATCH" | "DELETE", Target::Relation(name)) => {
            let q = request::parse_query(&req.query, false).map_err(parse_error)?;
            let p = plan::write(&schema, name, &req.method, &q, &req.body, prefer.return_)?;
            (sql::write(&p), false, Answer::Written { created: req.method == "POST", return_: prefer.return_ })
        }
        ("GET" | "HEAD" | "POST", Target::Rpc(name)) => {
            let q = request::parse_query(&req.query, true).map_err(parse_error)?;
            let args = if req.method == "POST" { body_object(&req.body)? } else { q.rpc_args.into_iter().map(|(k, v)| (k, Value::String(v))).collect() };
            let p = plan::call(&schema, name, &args)?;
            // GET calls run READ ONLY, so a volatile function cannot write through GET.
            (sql::call(&p), req.method != "POST", Answer::Called)
        }
        (method, _) => return Err(ApiError::method_not_allowed(method, &req.path)),
    };
    let claims = match &caller {
        Caller::Anonymous { .. } => String::new(),
        Caller::User { claims_json, .. } => claims_json.to_string(),
    };
    let headers = json_object(req.headers.iter().filter(|(n, _)| n != "authorization" && n != "cookie").cloned());
    let cookies = json_object(
        req.header("cookie")
            .unwrap_or("")
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let ctx = RequestContext { role: caller.role(), claims: &claims, method: &req.method, path: &req.path, headers: &headers, cookies: &cookies };
    let result = state.pool.run(&ctx, read_only, &statement).await?;
    match answer {
        Answer::Rows { offset, head } => response::rows(result, offset, head, single),
        Answer::Written { created, return_ } => response::written(result, created, return_, single, &req.path),
        Answer::Called => response::called(result),
    }
}

/// How to answer once the statement has run.
enum Answer {
    Rows { offset: u64, head: bool },
    Written { created: bool, return_: request::Return },
    Called,
}

fn wants_object(req: &HttpRequest) -> bool {
    req.header("accept").is_some_and(|a| a.contains("application/vnd.pgrst.object+json"))
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("PGRST102", "The request body must be a JSON object of named arguments".into(), None)),
        Err(e) => Err(ApiError::bad_request("PGRST102", "Empty or invalid json".into(), Some(e.to_string()))),
    }
}

fn json_object(pairs: impl Iterator<Item = (String, String)>) -> String {
    Value::Object(pairs.map(|(k, v)| (k, Value::String(v))).collect()).to_string()
}
