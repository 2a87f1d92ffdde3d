//! One request's way through the stages, as plain data in and out:
//! auth → request → plan → sql → db → response. The Pingora glue in
//! `main.rs` only reads the HTTP request and writes what this returns.

use crate::auth::{Authenticator, Caller, Credential};
use crate::config::{Config, OpenApiMode, TxEnd};
use crate::db::{Finish, Pool, RequestContext, RowsAllowed};
use crate::request::{self, Count, Target};
use crate::error::ApiError;
use crate::response::{self, Format};
use crate::schema::Schemas;
use crate::webhooks::{self, WebhookVerifier};
use crate::{access_log, admin, edge, limits, metrics, plan, sql};
use http::Response;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The HTTP request, already read off the wire.
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address: the TCP peer, or what a trusted proxy says
    /// (`edge::TrustedProxies`). `rate-limit-per-ip`, the request log, and
    /// `x-forwarded-for` / `x-real-ip` in `request.headers`.
    pub client_ip: Option<IpAddr>,
    /// Why the request could not be read whole (a body over
    /// `server-max-body`): answered as is, counted and logged like any other.
    pub refused: Option<ApiError>,
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
    pub schema: RwLock<Arc<Schemas>>,
    pub pool: Pool,
    /// None when `clerk-webhook-secret` is unset: the endpoint is off.
    pub webhooks: Option<WebhookVerifier>,
    pub options: ApiOptions,
    pub limits: limits::RateLimits,
}

/// The configuration keys that shape API answers.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub max_rows: Option<u64>,
    pub allow_exact_count: bool,
    pub tx_end: TxEnd,
    pub openapi_mode: OpenApiMode,
    pub openapi_server_url: String,
    pub cors: edge::Cors,
    pub trusted_proxies: edge::TrustedProxies,
    /// Each exposed schema's `search_path`: itself, then `db-extra-search-path`.
    pub search_paths: std::collections::HashMap<String, String>,
}

impl ApiOptions {
    pub fn from_config(c: &Config) -> ApiOptions {
        ApiOptions {
            max_rows: c.db_max_rows,
            allow_exact_count: c.db_allow_exact_count,
            tx_end: c.db_tx_end,
            openapi_mode: c.openapi_mode,
            openapi_server_url: c.openapi_server_proxy_uri.clone().unwrap_or_else(|| "/".into()),
            cors: edge::Cors::new(c.server_cors_allowed_origins.clone()),
            trusted_proxies: edge::TrustedProxies::new(c.server_trusted_proxies.clone(), c.server_trusted_proxy_header),
            search_paths: c.db_schemas.iter().map(|s| (s.clone(), search_path(s, &c.db_extra_search_path))).collect(),
        }
    }

    /// `count=estimated` counts exactly up to this many rows.
    fn estimate_above(&self) -> u64 {
        self.max_rows.unwrap_or(1000)
    }
}

impl State {
    pub fn schema(&self) -> Arc<Schemas> {
        self.schema.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace_schema(&self, schemas: Schemas) {
        *self.schema.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(schemas);
    }
}

/// What the request log and the metrics learn about a request as it goes
/// through the stages.
struct Trace {
    /// The metrics' route label: bounded (see `metrics`).
    route: String,
    /// The verified token's `sub`.
    user: Option<String>,
}

/// An API request: rate limits, the endpoint, then one line in the request
/// log and the request metrics.
pub async fn handle(state: &State, req: &HttpRequest) -> Response<Vec<u8>> {
    // Before anything else, as PostgREST's CORS middleware: a preflight
    // costs no database work and no log line.
    if let Some(preflight) = state.options.cors.preflight(&req.method, |name| req.header(name).map(str::to_owned)) {
        return preflight;
    }
    let started = Instant::now();
    let mut trace = Trace { route: "other".into(), user: None };
    let mut response = route(state, req, &mut trace).await;
    // OPTIONS answers carry PostgREST's own `*` only.
    if req.method != "OPTIONS" {
        state.options.cors.decorate(req.header("origin"), &mut response);
    }
    finish(req, &trace, response.status().as_u16(), started.elapsed());
    response
}

async fn route(state: &State, req: &HttpRequest, trace: &mut Trace) -> Response<Vec<u8>> {
    if let Some(refused) = &req.refused {
        return refused.clone().into_response();
    }
    if let Some(r) = admin::route(&req.method, &req.path) {
        trace.route = "live".into();
        return r;
    }
    if let Err(limited) = state.limits.check_ip(req.client_ip) {
        return limited.into_response();
    }
    if req.path == "/webhooks/clerk" {
        trace.route = "webhook".into();
        return clerk_webhook(state, req).await.unwrap_or_else(ApiError::into_response);
    }
    serve(state, req, trace).await.unwrap_or_else(ApiError::into_response)
}

fn finish(req: &HttpRequest, trace: &Trace, status: u16, elapsed: Duration) {
    metrics::observe_request(&trace.route, status, elapsed);
    if log::log_enabled!(target: access_log::TARGET, log::Level::Info) {
        let entry = access_log::Entry {
            method: &req.method,
            path: &req.path,
            status,
            duration: elapsed,
            route: &trace.route,
            user: trace.user.as_deref(),
            ip: req.client_ip,
        };
        log::info!(target: access_log::TARGET, "{}", access_log::request_fields(&entry));
    }
}

/// How long `/ready` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The admin listener (`admin-server-port`): `/live`, `/ready` and
/// `/metrics`, never exposed on the API port.
pub async fn handle_admin(state: &State, req: &HttpRequest) -> Response<Vec<u8>> {
    if req.path == "/ready" && (req.method == "GET" || req.method == "HEAD") {
        // The schema cache is loaded before the listeners start (start-up
        // fails otherwise) and a failed reload keeps it: it is reported, not
        // checked. Keys fail the check when there is nothing to verify with.
        let readiness = admin::Readiness {
            database: state.pool.ping(READY_TIMEOUT).await,
            schema_relations: Some(state.schema().relation_count()),
            keys_loaded: state.authenticator.keys_loaded(),
            key_count: state.authenticator.key_count(),
        };
        return readiness.into_response();
    }
    if req.path == "/metrics" && (req.method == "GET" || req.method == "HEAD") {
        let statement = crate::sql::Statement::new(
            "SELECT coalesce(json_agg(json_build_array(state, users)), '[]')::text, count(*), NULL::bigint FROM clerk_metadata_outbox_status".into(),
            vec![],
        );
        let ctx = RequestContext { role: "clerk_sync", claims: "", method: "GET", path: "/metrics", headers: "{}", cookies: "{}", role_settings: None, anonymous: false, search_path: "", timezone: "" };
        let outbox: Option<Vec<(String, i64)>> = match state.pool.run_if_free(&ctx, true, &statement).await {
            Ok(r) => serde_json::from_str::<Vec<(String, i64)>>(r.body.as_deref().unwrap_or("[]")).ok(),
            Err(_) => None, // the outbox is optional (sql/007), the database may be down or the pool busy
        };
        let body = metrics::render(state.pool.stats(), outbox.as_deref()).into_bytes();
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
    let rejected = |e: ApiError| {
        metrics::count(&metrics::WEBHOOK_REJECTED);
        e
    };
    verifier
        .verify(req.header("svix-id"), req.header("svix-timestamp"), req.header("svix-signature"), &req.body, now)
        .map_err(|e| rejected(e.into_api_error()))?;
    let statement = webhooks::apply(req.header("svix-id").unwrap_or_default(), &req.body).map_err(rejected)?;
    let ctx = RequestContext {
        role: "clerk_webhook",
        claims: "",
        method: "POST",
        path: &req.path,
        headers: "{}",
        cookies: "{}",
        role_settings: None,
        anonymous: false,
        search_path: "",
        timezone: "",
    };
    let outcome = state.pool.run(&ctx, false, &statement).await.inspect_err(|_| metrics::count(&metrics::WEBHOOK_FAILED))?;
    let applied: Option<Value> = outcome.body.as_deref().and_then(|b| serde_json::from_str(b).ok());
    match applied.as_ref().and_then(|v| v["outcome"].as_str()) {
        Some("applied") => metrics::count(&metrics::WEBHOOK_APPLIED),
        Some("ignored") => metrics::count(&metrics::WEBHOOK_IGNORED),
        Some("duplicate") => metrics::count(&metrics::WEBHOOK_DUPLICATE),
        _ => metrics::count(&metrics::WEBHOOK_FAILED),
    }
    response::called(outcome)
}

async fn serve(state: &State, req: &HttpRequest, trace: &mut Trace) -> Result<Response<Vec<u8>>, ApiError> {
    // supabase-js sends the schema it means with every request: Accept-Profile
    // for reads, Content-Profile for writes and POST /rpc (PostgREST's rule).
    let schemas = state.schema();
    let profile = if matches!(req.method.as_str(), "GET" | "HEAD") { req.header("accept-profile") } else { req.header("content-profile") };
    let schema = schemas
        .profile(profile.map(str::trim))
        .ok_or_else(|| ApiError::invalid_schema(profile.unwrap_or_default().trim(), &schemas.names()))?;
    let target = match req.path.as_str() {
        "/" => None,
        path => Some(request::parse_target(path).ok_or_else(|| ApiError::not_found_path(path))?),
    };
    // Only names the schema cache knows become labels.
    trace.route = match &target {
        None => "/".into(),
        Some(Target::Relation(name)) if schema.relation(name).is_some() => name.clone(),
        Some(Target::Rpc(name)) if !schema.functions(name).is_empty() => format!("rpc/{name}"),
        Some(_) => "other".into(),
    };
    if req.method == "OPTIONS" {
        return Ok(response::options(&plan::allow(&schema, target.as_ref())?));
    }
    let caller = state
        .authenticator
        .authenticate(req.header("authorization"), req.header("cookie"))
        .await
        .map_err(|e| e.into_api_error())?;
    if let Caller::User { credential: Credential::SessionCookie, .. } = &caller {
        edge::check_cookie_write(&state.options.cors, &req.method, req.header("origin"), req.header("host"), req.header("sec-fetch-site"))?;
    }
    if let Caller::User { claims, .. } = &caller {
        trace.user = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        if let Err(limited) = state.limits.check_user(trace.user.as_deref()) {
            return Ok(limited.into_response());
        }
    }
    let options = &state.options;
    let parse_error = |e: request::ParseError| ApiError::bad_request("PGRST100", e.message, Some(e.details));
    let mut prefer = request::parse_prefer(req.header("prefer"));
    // A time zone the database does not know is a preference not understood.
    if let Some(tz) = prefer.timezone.take() {
        if schema.knows_timezone(&tz) {
            prefer.timezone = Some(tz);
        } else {
            prefer.unknown.push(format!("timezone={tz}"));
        }
    }
    if prefer.strict && !prefer.unknown.is_empty() {
        return Err(ApiError::bad_request(
            "PGRST122",
            "Invalid preferences given with handling=strict".into(),
            Some(format!("Invalid preferences: {}", prefer.unknown.join(", "))),
        ));
    }
    if prefer.count == Some(Count::Exact) && !options.allow_exact_count {
        prefer.count = Some(Count::Estimated); // db-allow-exact-count = false
    }
    let format = response::negotiate(req.header("accept"))?;
    let is_read = matches!(req.method.as_str(), "GET" | "HEAD");
    if format == Format::Csv && !(is_read && matches!(target, Some(Target::Relation(_)))) {
        return Err(crate::error::not_acceptable("text/csv", "text/csv is served for reads of tables and views only"));
    }
    let mut applied: Vec<String> = prefer.timezone.iter().map(|tz| format!("timezone={tz}")).collect();
    let (statement, read_only, answer) = match (req.method.as_str(), &target) {
        ("GET" | "HEAD", None) => {
            if options.openapi_mode == OpenApiMode::Disabled {
                return Err(ApiError::not_found_path(&req.path));
            }
            let statement = sql::Statement::new(crate::openapi::PRIVILEGES_SQL.into(), vec![Some(schema.default_schema.clone())]);
            (statement, true, Answer::OpenApi)
        }
        ("GET" | "HEAD", Some(Target::Relation(name))) => {
            let mut q = request::parse_query(&req.query, false).map_err(parse_error)?;
            bound_rows(&mut q, req.header("range"), options.max_rows).map_err(parse_error)?;
            let p = plan::read(&schema, name, &q)?;
            if let Some(count) = prefer.count {
                applied.push(format!("count={}", count_name(count)));
            }
            let answer = Answer::Rows { offset: q.offset.unwrap_or(0), head: req.method == "HEAD", columns: output_columns(&p) };
            (sql::read(&p, prefer.count, options.estimate_above(), response::strips_nulls(req.header("accept"))), true, answer)
        }
        ("POST" | "PUT" | "PATCH" | "DELETE", Some(Target::Relation(name))) => {
            let q = request::parse_query(&req.query, false).map_err(parse_error)?;
            let body = json_body(req)?;
            let p = plan::write(&schema, name, &req.method, &q, &body, &prefer)?;
            if let (Some(r), "POST") = (prefer.resolution, req.method.as_str()) {
                applied.push(match r {
                    request::Resolution::MergeDuplicates => "resolution=merge-duplicates".into(),
                    request::Resolution::IgnoreDuplicates => "resolution=ignore-duplicates".into(),
                });
            }
            if prefer.missing_default {
                applied.push("missing=default".into());
            }
            (sql::write(&p), false, Answer::Written { created: req.method == "POST", return_: prefer.return_ })
        }
        ("GET" | "HEAD" | "POST", Some(Target::Rpc(name))) => {
            let mut q = request::parse_query(&req.query, true).map_err(parse_error)?;
            let args = match req.method.as_str() {
                "POST" => body_object(&json_body(req)?)?,
                _ => query_args(std::mem::take(&mut q.rpc_args)),
            };
            let call = plan::call(&schema, name, &args)?;
            // GET calls run READ ONLY, so a volatile function cannot write through GET.
            let read_only = req.method != "POST";
            if let Some(relation) = call.function.rows_of().map(str::to_owned) {
                // Rows of a table or view: read as that relation, as PostgREST does.
                bound_rows(&mut q, req.header("range"), options.max_rows).map_err(parse_error)?;
                let p = plan::call_as_relation(&schema, &relation, call, &q)?;
                if let Some(count) = prefer.count {
                    applied.push(format!("count={}", count_name(count)));
                }
                let answer = Answer::Rows { offset: q.offset.unwrap_or(0), head: req.method == "HEAD", columns: output_columns(&p) };
                (sql::read(&p, prefer.count, options.estimate_above(), response::strips_nulls(req.header("accept"))), read_only, answer)
            } else {
                refuse_relation_parts_on_rpc(&q, req.header("range"), prefer.count.is_some(), format)?;
                (sql::call(&call), read_only, Answer::Called)
            }
        }
        (method, _) => return Err(ApiError::method_not_allowed(method, &req.path)),
    };
    let at_most = match (prefer.strict, prefer.max_affected, read_only) {
        (true, Some(max), false) => {
            applied.push(format!("max-affected={max}"));
            Some(max)
        }
        _ => None,
    };
    let exactly_one = format == Format::Object && matches!(answer, Answer::Written { .. });
    let finish = if options.tx_end.rolls_back(prefer.tx_rollback) {
        Finish::Rollback
    } else if at_most.is_some() || exactly_one {
        Finish::CommitIf(RowsAllowed { at_most, exactly_one })
    } else {
        Finish::Commit
    };
    if prefer.tx_rollback.is_some() && matches!(options.tx_end, TxEnd::CommitAllowOverride | TxEnd::RollbackAllowOverride) {
        applied.push(format!("tx={}", if finish == Finish::Rollback { "rollback" } else { "commit" }));
    }
    // As PostgREST: the claims carry the role the request runs as, and an
    // anonymous request's are `{"role": "<db-anon-role>"}`.
    let claims = match &caller {
        Caller::Anonymous { role } => json!({ "role": role }).to_string(),
        Caller::User { claims, claims_json, .. } if claims.contains_key("role") => claims_json.to_string(),
        // The verified (cached) JSON with the role put in front: no re-encoding.
        Caller::User { claims_json, role, .. } => match claims_json.strip_prefix('{').filter(|rest| *rest != "}") {
            Some(rest) => format!("{{\"role\":{},{rest}", Value::String(role.clone())),
            None => json!({ "role": role }).to_string(),
        },
    };
    // The client's address replaces what it said about itself.
    let client = req.client_ip.map(|ip| ip.to_string());
    let headers = json_object(
        req.headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "authorization" | "cookie" | "x-forwarded-for" | "x-real-ip"))
            .cloned()
            .chain(client.iter().flat_map(|ip| [("x-forwarded-for".to_owned(), ip.clone()), ("x-real-ip".to_owned(), ip.clone())])),
    );
    let cookies = json_object(
        req.header("cookie")
            .unwrap_or("")
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            // Clerk's session token (and its suffixed and development
            // variants) stays out of SQL, as `authorization` does.
            .filter(|(k, _)| !is_credential_cookie(k))
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let ctx = RequestContext {
        role: caller.role(),
        claims: &claims,
        method: &req.method,
        path: &req.path,
        headers: &headers,
        cookies: &cookies,
        role_settings: schema.role_settings(caller.role()),
        anonymous: matches!(caller, Caller::Anonymous { .. }),
        search_path: options.search_paths.get(&schema.default_schema).map_or("", String::as_str),
        timezone: prefer.timezone.as_deref().unwrap_or(""),
    };
    let _running = state.limits.running(trace.user.as_deref(), req.client_ip)?;
    let mut result = state.pool.run_and(&ctx, read_only, &statement, finish).await?;
    result.total = match prefer.count {
        // Counted up to the limit and more rows: the planner's figure, or
        // unknown where it would see through RLS (`sql::read`).
        Some(Count::Planned | Count::Estimated) if result.total.is_some_and(|t| t as u64 > options.estimate_above()) => result.planned,
        Some(Count::Planned) => result.planned.or(result.total),
        _ => result.total,
    };
    let mut response = match answer {
        Answer::OpenApi => {
            let privileges = match options.openapi_mode {
                OpenApiMode::IgnorePrivileges => None,
                _ => Some(crate::openapi::Privileges::from_json(result.body.as_deref().unwrap_or("{}")).unwrap_or_default()),
            };
            let document = crate::openapi::document(&schema, privileges.as_ref(), &options.openapi_server_url);
            let mut r = response::json(http::StatusCode::OK, &document);
            r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/openapi+json; charset=utf-8"));
            if req.method == "HEAD" {
                r.body_mut().clear();
            }
            r
        }
        Answer::Rows { offset, head, columns } => response::rows(result, offset, head, format, &columns)?,
        Answer::Written { created, return_ } => response::written(result, created, return_, format == Format::Object, &req.path)?,
        Answer::Called => response::called(result)?,
    };
    if !applied.is_empty() {
        if let Ok(value) = http::HeaderValue::from_str(&applied.join(", ")) {
            response.headers_mut().insert("preference-applied", value);
        }
    }
    Ok(response)
}

/// How to answer once the statement has run.
enum Answer {
    Rows { offset: u64, head: bool, columns: Vec<String> },
    Written { created: bool, return_: request::Return },
    Called,
    OpenApi,
}

fn min_limit(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn count_name(c: Count) -> &'static str {
    match c {
        Count::Exact => "exact",
        Count::Planned => "planned",
        Count::Estimated => "estimated",
    }
}

/// The keys of each returned row, in order (the CSV header).
fn output_columns(p: &plan::ReadPlan) -> Vec<String> {
    let columns: Vec<String> = if p.select.is_empty() {
        p.relation.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        p.select.iter().map(|s| s.output_name().to_owned()).collect()
    };
    columns.into_iter().chain(p.embeds.iter().map(|e| e.key.clone())).collect()
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

/// `"schema", "extra", …` for `search_path`.
fn search_path(schema: &str, extra: &[String]) -> String {
    std::iter::once(schema)
        .chain(extra.iter().map(String::as_str).filter(|e| *e != schema))
        .map(sql::ident)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `GET /rpc/…`'s arguments; a repeated key is an array argument
/// (`?ids=1&ids=2`), as PostgREST reads it.
fn query_args(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut args = Map::new();
    for (k, v) in pairs {
        let value = match args.remove(&k) {
            None => Value::String(v),
            Some(Value::Array(mut values)) => {
                values.push(Value::String(v));
                Value::Array(values)
            }
            Some(first) => Value::Array(vec![first, Value::String(v)]),
        };
        args.insert(k, value);
    }
    args
}

/// `limit`/`offset` from `Range`, capped by `db-max-rows`.
fn bound_rows(q: &mut request::QueryParams, range: Option<&str>, max_rows: Option<u64>) -> Result<(), request::ParseError> {
    if let Some(range) = range {
        let (offset, limit) = request::parse_range(range)?;
        q.offset = Some(offset);
        q.limit = min_limit(q.limit, limit);
    }
    q.limit = min_limit(q.limit, max_rows);
    Ok(())
}

/// PostgREST treats every function's result as a relation (`select`,
/// filters, `order`, `limit`, `Range`, counts, a single object). clerk-proxy
/// does so for set-returning functions of a table's or view's rows; for
/// other functions asking for any of it is refused rather than ignored: an
/// ignored filter would answer rows the caller excluded.
fn refuse_relation_parts_on_rpc(q: &request::QueryParams, range: Option<&str>, count: bool, format: Format) -> Result<(), ApiError> {
    let asked: Vec<&str> = [
        (!q.select.is_empty() || !q.embeds.is_empty(), "select"),
        (!q.conditions.is_empty() || !q.nested.is_empty(), "filters"),
        (!q.order.is_empty(), "order"),
        (q.limit.is_some() || q.offset.is_some() || range.is_some(), "limit, offset or Range"),
        (count, "Prefer: count"),
        (format == Format::Object, "Accept: application/vnd.pgrst.object+json"),
    ]
    .into_iter()
    .filter_map(|(on, what)| on.then_some(what))
    .collect();
    if asked.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "PGRST100",
        "Unsupported query on a function result".into(),
        Some(format!("{} on /rpc/… is not supported by clerk-proxy yet: call the function without it, or read a view", asked.join(", "))),
    ))
}

/// A write's body as JSON, by its `Content-Type` as PostgREST reads it:
/// JSON (also when the header is missing), or a form, which is one object
/// of strings; anything else is 400 `PGRST102`, never parsed as JSON.
fn json_body(req: &HttpRequest) -> Result<std::borrow::Cow<'_, [u8]>, ApiError> {
    let media = req.header("content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match media.as_deref() {
        None | Some("application/json") => Ok(std::borrow::Cow::Borrowed(&req.body)),
        Some("application/x-www-form-urlencoded") => {
            let text = String::from_utf8_lossy(&req.body);
            let pairs = text.split('&').filter(|p| !p.is_empty()).map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
                (decode(k), decode(v))
            });
            Ok(std::borrow::Cow::Owned(json_object(pairs).into_bytes()))
        }
        Some(other) => Err(ApiError::bad_request("PGRST102", format!("Content-Type not acceptable: {other}"), None)),
    }
}

fn json_object(pairs: impl Iterator<Item = (String, String)>) -> String {
    Value::Object(pairs.map(|(k, v)| (k, Value::String(v))).collect()).to_string()
}

/// Cookies that carry a Clerk credential: `__session`, `__session_<suffix>`,
/// and the development instances' `__clerk_db_jwt`.
fn is_credential_cookie(name: &str) -> bool {
    name == "__session" || name.starts_with("__session_") || name.starts_with("__clerk_db_jwt")
}
