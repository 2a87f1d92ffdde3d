//! One request's way through the stages, as plain data in and out:
//! auth → request → plan → sql → db → response. The Pingora glue in
//! `main.rs` only reads the HTTP request and writes what this returns.

use crate::action::{Action, ApiRequest, CallMethod, WriteMethod};
use crate::auth::{Authenticator, Caller, Credential};
use crate::config::{Config, OpenApiMode, TxEnd};
use crate::db::{Access, Finish, Pool, RequestContext, RowsAllowed};
use crate::error::ApiError;
use crate::replicas::{self, Replicas};
use crate::request::{self, Count, Target};
use crate::response::{self, Format};
use crate::schema::Schemas;
use crate::schema::{RawBody, SchemaCache};
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
    /// The primary (`db-uri`): writes, the schema, webhooks, the sync worker.
    pub pool: Pool,
    /// Hot standbys for read-only requests (`db-replica-uris`; may be none).
    pub replicas: Arc<Replicas>,
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
    pub aggregates_enabled: bool,
    pub plans_enabled: bool,
    pub tx_end: TxEnd,
    pub openapi_mode: OpenApiMode,
    pub openapi_server_url: String,
    pub cors: edge::Cors,
    pub trusted_proxies: edge::TrustedProxies,
    /// Each exposed schema's `search_path`: itself, then `db-extra-search-path`.
    pub search_paths: std::collections::HashMap<String, String>,
    /// The proxy's own statements (webhooks, `/metrics`): the first
    /// schema's, never what a pooled session was left with.
    pub own_search_path: String,
}

impl ApiOptions {
    pub fn from_config(c: &Config) -> ApiOptions {
        ApiOptions {
            max_rows: c.db_max_rows,
            allow_exact_count: c.db_allow_exact_count,
            aggregates_enabled: c.db_aggregates_enabled,
            plans_enabled: c.db_plan_enabled,
            tx_end: c.db_tx_end,
            openapi_mode: c.openapi_mode,
            openapi_server_url: c.openapi_server_proxy_uri.clone().unwrap_or_else(|| "/".into()),
            cors: match c.db_replica_uris.is_empty() {
                true => edge::Cors::new(c.server_cors_allowed_origins.clone()),
                false => edge::Cors::new(c.server_cors_allowed_origins.clone()).exposing_read_after(),
            },
            trusted_proxies: edge::TrustedProxies::new(c.server_trusted_proxies.clone(), c.server_trusted_proxy_header),
            search_paths: c.db_schemas.iter().map(|s| (s.clone(), search_path(s, &c.db_extra_search_path))).collect(),
            own_search_path: search_path(c.db_schemas.first().map_or("public", String::as_str), &c.db_extra_search_path),
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
            replicas: state.replicas.reports(),
        };
        return readiness.into_response();
    }
    if req.path == "/metrics" && (req.method == "GET" || req.method == "HEAD") {
        let statement = crate::sql::Statement::new(
            "SELECT coalesce(json_agg(json_build_array(state, users)), '[]')::text, count(*), NULL::bigint FROM clerk_metadata_outbox_status".into(),
            vec![],
        );
        let ctx = RequestContext::own("clerk_sync", "GET", "/metrics", &state.options.own_search_path);
        let outbox: Option<Vec<(String, i64)>> = match state.pool.run_if_free(&ctx, true, &statement).await {
            Ok(r) => serde_json::from_str::<Vec<(String, i64)>>(r.body.as_deref().unwrap_or("[]")).ok(),
            Err(_) => None, // the outbox is optional (sql/007), the database may be down or the pool busy
        };
        let body = metrics::render(state.pool.stats(), &state.replicas.reports(), outbox.as_deref()).into_bytes();
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
        .map_err(|e| rejected(e.into()))?;
    let statement = webhooks::apply(req.header("svix-id").unwrap_or_default(), &req.body).map_err(rejected)?;
    let ctx = RequestContext::own("clerk_webhook", "POST", &req.path, &state.options.own_search_path);
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
    let action = Action::from_http(&req.method, &req.path)?;
    let schemas = state.schema();
    // Only names the schema cache knows become labels.
    let known = |schema: &SchemaCache, action: &Action| match action {
        Action::OpenApi { .. } | Action::Options { target: None } => "/".into(),
        Action::Read { relation, .. } | Action::Write { relation, .. } | Action::Options { target: Some(Target::Relation(relation)) }
            if schema.relation(relation).is_some() =>
        {
            relation.clone()
        }
        Action::Call { function, .. } | Action::Options { target: Some(Target::Rpc(function)) }
            if !schema.functions(function).is_empty() =>
        {
            format!("rpc/{function}")
        }
        _ => "other".into(),
    };
    trace.route = known(schemas.default_cache(), &action);
    if let Action::Options { target } = &action {
        let profile = req.header("content-profile").map(str::trim);
        let schema = schemas.profile(profile).ok_or_else(|| ApiError::invalid_schema(profile.unwrap_or_default(), &schemas.names()))?;
        return Ok(response::options(&plan::allow(&schema, target.as_ref())?));
    }
    let caller = state.authenticator.authenticate(req.header("authorization"), req.header("cookie")).await.map_err(ApiError::from)?;
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
    let api = ApiRequest::read(action, req, &schemas, options)?;
    trace.route = known(&api.schema, &api.action);
    let prepared = prepare(&api, req, options)?;
    let ctx = RequestContext {
        role: caller.role(),
        claims: &claims_json(&caller),
        method: &req.method,
        path: &req.path,
        headers: &request_headers(req),
        cookies: &request_cookies(req),
        role_settings: api.schema.role_settings(caller.role()),
        anonymous: matches!(caller, Caller::Anonymous { .. }),
        search_path: options.search_paths.get(&api.schema.default_schema).map_or("", String::as_str),
        timezone: api.prefer.timezone.as_deref().unwrap_or(""),
        api: true,
    };
    // Anonymous requests have no writes of their own to wait for: their
    // reads are not steered to the primary by the header.
    let read_after = replicas::read_after(req.header(replicas::READ_AFTER_HEADER))?.filter(|_| !ctx.anonymous);
    let _running = state.limits.running(trace.user.as_deref(), req.client_ip)?;
    let mut result = state.replicas.run(&state.pool, &ctx, prepared.access, read_after, &prepared.statement, prepared.finish).await?;
    // Only a request that may have written says where the WAL was: the
    // position tells the cluster's write activity, which a read (or a call
    // of a function that cannot write) has no reason to learn.
    let commit_lsn = result.commit_lsn.take().filter(|_| match prepared.writes {
        Writes::Never => false,
        Writes::WhenRowsChanged => result.rows > 0,
        Writes::Maybe => true,
    });
    result.total = match api.prefer.count.filter(|_| matches!(prepared.answer, Answer::Rows { .. })) {
        // Counted up to the limit and more rows: the planner's figure, or
        // unknown where it would see through RLS (`sql::read`).
        Some(Count::Planned | Count::Estimated) if result.total.is_some_and(|t| t as u64 > options.estimate_above()) => result.planned,
        Some(Count::Planned) => result.planned.or(result.total),
        _ => result.total,
    };
    let head = api.action.head();
    let (set_headers, set_status) = (result.response_headers.take(), result.response_status.take());
    let mut response = match prepared.answer {
        Answer::OpenApi => {
            let privileges = match options.openapi_mode {
                OpenApiMode::IgnorePrivileges => None,
                _ => Some(crate::openapi::Privileges::from_json(result.body.as_deref().unwrap_or("{}")).unwrap_or_default()),
            };
            let document = crate::openapi::document(&api.schema, privileges.as_ref(), &options.openapi_server_url);
            let mut r = response::json(http::StatusCode::OK, &document);
            r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/openapi+json; charset=utf-8"));
            r
        }
        Answer::Rows { offset, body, media } => response::rows(result, offset, api.format, body, media.as_ref())?,
        Answer::Written { method, return_ } => {
            response::written(result, method, return_, api.format, api.prefer.count.is_some(), &req.path)?
        }
    };
    response::apply_settings(&mut response, set_headers.as_deref(), set_status.as_deref())?;
    if head {
        response.body_mut().clear();
    }
    if !prepared.applied.is_empty() {
        if let Ok(value) = http::HeaderValue::from_str(&prepared.applied.join(", ")) {
            response.headers_mut().insert("preference-applied", value);
        }
    }
    if let Some(lsn) = commit_lsn.and_then(|l| http::HeaderValue::from_str(&l.to_string()).ok()) {
        response.headers_mut().insert(replicas::READ_AFTER_HEADER, lsn);
    }
    Ok(response)
}

/// A request made ready to run: its statement, how its transaction ends,
/// and how to answer.
struct Prepared {
    statement: sql::Statement,
    access: Access,
    writes: Writes,
    finish: Finish,
    answer: Answer,
    /// `Preference-Applied`
    applied: Vec<String>,
}

/// Whether a request may have written, for `Clerk-Read-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    /// Reads, plans, calls of STABLE / IMMUTABLE functions (which cannot write).
    Never,
    /// Table writes: when they touched rows.
    WhenRowsChanged,
    /// `POST` calls of VOLATILE functions: whatever they return.
    Maybe,
}

/// The dispatcher: each action through plan → sql.
fn prepare(api: &ApiRequest, req: &HttpRequest, options: &ApiOptions) -> Result<Prepared, ApiError> {
    let schema = &api.schema;
    let prefer = &api.prefer;
    let mut q = api.query.clone();
    let read_answer = |p: &plan::ReadPlan, q: &request::QueryParams| {
        if p.aggregates() && !options.aggregates_enabled {
            return Err(ApiError::aggregates_disabled());
        }
        let media = api.own_media.as_ref().map(|o| o.media.clone());
        let columns = p.keys();
        let rows_as = match (api.format, &api.own_media) {
            (Format::GeoJson, _) => schema.geojson().map_or(sql::RowsAs::Json, sql::RowsAs::GeoJson),
            (Format::Raw(_), Some(crate::action::OwnMedia { media, aggregate: Some((aggregate, typed)) })) => sql::RowsAs::Handler {
                aggregate,
                binary: media.binary,
                row_type: typed.then(|| sql::qualified(&p.relation.schema, &p.relation.name)),
            },
            (Format::Csv, _) => sql::RowsAs::Csv(&columns),
            _ => sql::RowsAs::Json,
        };
        let statement = sql::read(p, prefer.count, options.estimate_above(), api.strip_nulls, rows_as);
        let answer = Answer::Rows { offset: q.offset.unwrap_or(0), body: p.body, media };
        Ok((statement, answer))
    };
    // An upsert's resolution is applied when there is a key to match on.
    let mut resolution_applied = false;
    let mut within_limit = None;
    let (statement, access, answer) = match &api.action {
        Action::Options { .. } => unreachable!("OPTIONS is answered before the request is read"),
        Action::OpenApi { .. } => {
            if options.openapi_mode == OpenApiMode::Disabled {
                return Err(ApiError::not_found_path(&req.path));
            }
            (
                sql::Statement::new(crate::openapi::PRIVILEGES_SQL.into(), vec![Some(schema.default_schema.clone())]),
                Access::Read,
                Answer::OpenApi,
            )
        }
        Action::Read { relation, .. } => {
            bound_rows(&mut q, api.range, options.max_rows);
            let p = plan::read(schema, relation, &q)?;
            let (statement, answer) = read_answer(&p, &q)?;
            (statement, Access::Read, answer)
        }
        Action::Write { relation, method } => {
            let body = json_body(req)?;
            let p = plan::write(schema, relation, *method, &q, &body, prefer)?;
            if !options.aggregates_enabled && p.returning.iter().any(|s| s.aggregate.is_some()) {
                return Err(ApiError::aggregates_disabled());
            }
            resolution_applied = *method == WriteMethod::Insert && matches!(p.kind, plan::WriteKind::Insert { on_conflict: Some(_), .. });
            within_limit = p.kind.limited().and_then(|l| l.limit);
            let columns = p.keys();
            let statement = sql::write(&p, (api.format == Format::Csv).then_some(columns.as_slice()));
            (statement, Access::Write, Answer::Written { method: *method, return_: prefer.return_ })
        }
        Action::Call { function, method } => {
            let args = match method {
                CallMethod::Post => call_body(req, api.query.columns.as_deref())?,
                CallMethod::Read { .. } => plan::CallArgs::Query(std::mem::take(&mut q.rpc_args)),
            };
            let call = plan::call(schema, function, &args)?;
            // GET calls run READ ONLY, so a volatile function cannot write
            // through GET; so do POST calls of a function that says it
            // does not write (STABLE, IMMUTABLE), as PostgREST runs them.
            let access = match method {
                CallMethod::Read { .. } => Access::Read,
                CallMethod::Post if call.function.volatile => Access::Write,
                CallMethod::Post => Access::ReadOnPrimary,
            };
            // Every function's result is read as a relation, as PostgREST does.
            bound_rows(&mut q, api.range, options.max_rows);
            let asked = match api.format {
                Format::Object => plan::Asked::Object,
                Format::Csv => plan::Asked::Rows,
                Format::Raw(_) => plan::Asked::Raw,
                Format::GeoJson => plan::Asked::Rows,
                Format::Json | Format::Plan(_) => plan::Asked::AsReturned,
            };
            let p = plan::call_read(schema, call, &q, asked)?;
            let (statement, answer) = read_answer(&p, &q)?;
            (statement, access, answer)
        }
    };
    // `Accept: application/vnd.pgrst.plan`: the statement's EXPLAIN instead
    // (an ANALYZE of a write runs it: nothing is kept).
    if let Format::Plan(plan) = api.format {
        return Ok(Prepared {
            statement: sql::explain(statement, &plan),
            access,
            writes: Writes::Never,
            finish: Finish::Rollback,
            answer,
            applied: Vec::new(),
        });
    }
    let at_most = match (prefer.strict, prefer.max_affected, access) {
        (true, Some(max), Access::Write | Access::ReadOnPrimary) => Some(max),
        (true, Some(_), Access::Read) | (false, _, _) | (_, None, _) => None,
    };
    // What would make the answer an error is decided before the commit, so
    // the error keeps nothing: a single object of other than one row, and
    // (a call that may write) an offset past the counted rows.
    let several_rows = matches!(answer, Answer::Rows { body: plan::Body::Rows | plan::Body::Values, .. });
    let exactly_one =
        api.format == Format::Object && (matches!(answer, Answer::Written { .. }) || (access == Access::Write && several_rows));
    let offset_within_total = match &answer {
        Answer::Rows { offset, .. } if access == Access::Write && prefer.count.is_some() => Some(*offset),
        _ => None,
    };
    let finish = if options.tx_end.rolls_back(prefer.tx_rollback) {
        Finish::Rollback
    } else if at_most.is_some() || within_limit.is_some() || exactly_one || offset_within_total.is_some() {
        Finish::CommitIf(RowsAllowed { at_most, within_limit, exactly_one, offset_within_total })
    } else {
        Finish::Commit
    };
    // `Preference-Applied`: what was applied, in PostgREST's order.
    let writes = matches!(answer, Answer::Written { .. });
    let tx_applied = prefer.tx_rollback.is_some() && matches!(options.tx_end, TxEnd::CommitAllowOverride | TxEnd::RollbackAllowOverride);
    let applied: Vec<String> = [
        prefer.resolution.filter(|_| resolution_applied).map(|r| match r {
            request::Resolution::MergeDuplicates => "resolution=merge-duplicates".to_owned(),
            request::Resolution::IgnoreDuplicates => "resolution=ignore-duplicates".to_owned(),
        }),
        (writes && prefer.missing_default && !matches!(answer, Answer::Written { method: WriteMethod::Delete, .. }))
            .then(|| "missing=default".to_owned()),
        (writes && prefer.return_given).then(|| format!("return={}", prefer.return_.name())),
        prefer.count.filter(|_| !matches!(answer, Answer::OpenApi)).map(|c| format!("count={}", c.name())),
        tx_applied.then(|| format!("tx={}", if finish == Finish::Rollback { "rollback" } else { "commit" })),
        prefer.handling_given.then(|| format!("handling={}", if prefer.strict { "strict" } else { "lenient" })),
        prefer.timezone.as_ref().map(|tz| format!("timezone={tz}")),
        at_most.map(|max| format!("max-affected={max}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let writes = match (&answer, access) {
        (_, Access::Read | Access::ReadOnPrimary) => Writes::Never,
        (Answer::Written { .. }, Access::Write) => Writes::WhenRowsChanged,
        (Answer::Rows { .. } | Answer::OpenApi, Access::Write) => Writes::Maybe,
    };
    Ok(Prepared { statement, access, writes, finish, answer, applied })
}

/// `request.jwt.claims` as PostgREST sets it: the claims carry the role
/// the request runs as, and an anonymous request's are `{"role": "<db-anon-role>"}`.
fn claims_json(caller: &Caller) -> String {
    match caller {
        Caller::Anonymous { role } => json!({ "role": role }).to_string(),
        Caller::User { claims, claims_json, role, .. } if claims.get("role").and_then(Value::as_str) == Some(role.as_str()) => {
            claims_json.to_string()
        }
        // A token's own `role` claim that is not the role it runs as (no
        // `jwt-role-claim-key`, or staff): the role run as replaces it.
        Caller::User { claims, role, .. } if claims.contains_key("role") => {
            let mut claims = (**claims).clone();
            claims.insert("role".into(), Value::String(role.clone()));
            Value::Object(claims).to_string()
        }
        // The verified (cached) JSON with the role put in front: no re-encoding.
        Caller::User { claims_json, role, .. } => match claims_json.strip_prefix('{').filter(|rest| *rest != "}") {
            Some(rest) => format!("{{\"role\":{},{rest}", Value::String(role.clone())),
            None => json!({ "role": role }).to_string(),
        },
    }
}

/// `request.headers`: the client's address replaces what it said about
/// itself; credentials stay out of SQL.
fn request_headers(req: &HttpRequest) -> String {
    let client = req.client_ip.map(|ip| ip.to_string());
    json_object(
        req.headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "authorization" | "cookie" | "x-forwarded-for" | "x-real-ip"))
            .cloned()
            .chain(client.iter().flat_map(|ip| [("x-forwarded-for".to_owned(), ip.clone()), ("x-real-ip".to_owned(), ip.clone())])),
    )
}

/// `request.cookies`, without Clerk's session token (and its suffixed and
/// development variants), as `authorization` is left out of the headers.
fn request_cookies(req: &HttpRequest) -> String {
    json_object(
        req.header("cookie")
            .unwrap_or("")
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .filter(|(k, _)| !is_credential_cookie(k))
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
}

/// How to answer once the statement has run.
enum Answer {
    Rows { offset: u64, body: plan::Body, media: Option<crate::schema::MediaType> },
    Written { method: WriteMethod, return_: request::Return },
    OpenApi,
}

fn min_limit(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A `POST /rpc/…`'s arguments: a JSON object (of an array, the first
/// object, as PostgREST takes it), a form, or a raw body for a function's
/// one unnamed text, xml or bytea parameter.
/// `columns`: the body's keys to pass (`?columns=`; others are ignored).
fn call_body(req: &HttpRequest, columns: Option<&[String]>) -> Result<plan::CallArgs, ApiError> {
    if let Some(raw) = media_type(req).as_deref().and_then(RawBody::from_media_type) {
        return Ok(plan::CallArgs::Raw(raw, req.body.clone()));
    }
    let body = json_body(req)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(plan::CallArgs::Json(Map::new()));
    }
    let named = |mut m: Map<String, Value>| {
        if let Some(columns) = columns {
            m.retain(|k, _| columns.contains(k));
        }
        plan::CallArgs::Json(m)
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(named(m)),
        Ok(Value::Array(items)) => match items.into_iter().next() {
            Some(Value::Object(m)) => Ok(named(m)),
            None => Ok(plan::CallArgs::Json(Map::new())),
            Some(_) => Err(ApiError::invalid_body("All object keys must match".into(), None)),
        },
        Ok(_) => Err(ApiError::invalid_body("The request body must be a JSON object of named arguments".into(), None)),
        Err(e) => Err(ApiError::invalid_body("Empty or invalid json".into(), Some(e.to_string()))),
    }
}

/// The body's media type, lower-cased, without parameters.
fn media_type(req: &HttpRequest) -> Option<String> {
    req.header("content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// `"schema", "extra", …` for `search_path`.
fn search_path(schema: &str, extra: &[String]) -> String {
    std::iter::once(schema).chain(extra.iter().map(String::as_str).filter(|e| *e != schema)).map(sql::ident).collect::<Vec<_>>().join(", ")
}

/// `limit`/`offset` from `Range`, capped by `db-max-rows`.
fn bound_rows(q: &mut request::QueryParams, range: Option<(u64, Option<u64>)>, max_rows: Option<u64>) {
    // The rows both `Range` and `limit`/`offset` take (PostgREST's range intersection).
    if let Some((from, count)) = range {
        let given_from = q.offset.unwrap_or(0);
        let from_both = from.max(given_from);
        let end = min_limit(count.map(|c| from.saturating_add(c)), q.limit.map(|l| given_from.saturating_add(l)));
        q.offset = Some(from_both);
        q.limit = end.map(|e| e.saturating_sub(from_both));
    }
    q.limit = min_limit(q.limit, max_rows);
}

/// A write's body as JSON, by its `Content-Type` as PostgREST reads it:
/// JSON (also when the header is missing), a form (one object of strings),
/// or CSV (`csv_rows`); anything else is 400 `PGRST102`, never parsed as JSON.
fn json_body(req: &HttpRequest) -> Result<std::borrow::Cow<'_, [u8]>, ApiError> {
    match media_type(req).as_deref() {
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
        Some("text/csv") => {
            let text =
                std::str::from_utf8(&req.body).map_err(|_| ApiError::invalid_body("The CSV body is not valid UTF-8".into(), None))?;
            let rows = crate::body::csv_rows(text).map_err(|e| ApiError::invalid_body(e.0, None))?;
            Ok(std::borrow::Cow::Owned(rows.to_string().into_bytes()))
        }
        Some(other) => Err(ApiError::invalid_body(format!("Content-Type not acceptable: {other}"), None)),
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
