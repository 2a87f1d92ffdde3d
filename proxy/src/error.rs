//! The one catalogue of API errors: PostgREST's `{code, message, details,
//! hint}` with the HTTP status each has, built here only (`response`
//! renders them; `db` turns a database error into one).

use crate::auth::AuthError;
use crate::webhooks::WebhookError;
use clerk_jwt::TokenError;
use http::StatusCode;
use std::borrow::Cow;

/// An API error: what went wrong, for whom to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Text, or (PGRST201) an array of the candidate relationships.
    pub details: Option<serde_json::Value>,
    pub hint: Option<String>,
    /// Headers the answer carries: a 401's `WWW-Authenticate`, a 416's
    /// `Content-Range`.
    pub headers: Vec<(Cow<'static, str>, String)>,
}

impl ApiError {
    pub fn not_found_path(path: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: Cow::Borrowed("PGRST125"),
            message: "Invalid path specified in request URL".into(),
            details: Some(format!("No endpoint at {path}").into()),
            hint: None,
            headers: Vec::new(),
        }
    }

    /// 405 PGRST101: `/rpc/f` takes GET, HEAD and POST only.
    pub fn invalid_rpc_method(method: &str) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "PGRST101", format!("Cannot use the {method} method on RPC"), None, None)
    }

    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: Cow::Borrowed("PGRST117"),
            message: format!("Unsupported HTTP method: {method}"),
            details: Some(format!("{path} does not accept {method} in this version").into()),
            hint: None,
            headers: Vec::new(),
        }
    }

    pub fn unavailable(message: &str, details: &str) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: Cow::Borrowed("PGRST000"),
            message: message.to_owned(),
            details: Some(details.to_owned().into()),
            hint: None,
            headers: Vec::new(),
        }
    }

    /// 503 for a request the shutdown ended (see `Pool::cancel_lent`).
    /// 504 when a statement outlived `db-statement-timeout` without
    /// PostgreSQL stopping it, and the proxy cancelled it.
    pub fn statement_deadline(limit: std::time::Duration) -> ApiError {
        ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: Cow::Borrowed("57014"),
            message: "canceling statement due to statement timeout".into(),
            details: Some(
                format!("the statement ran past db-statement-timeout ({} ms) and was cancelled by clerk-proxy", limit.as_millis()).into(),
            ),
            hint: None,
            headers: Vec::new(),
        }
    }

    pub fn shutting_down(details: &str) -> ApiError {
        ApiError::unavailable("The server is shutting down", details)
    }

    /// PostgREST's answer when no pooled connection frees up within
    /// `db-pool-acquisition-timeout`.
    /// 503 (PostgREST answers 504 here; a busy pool is the service being
    /// unavailable, not an upstream timing out, and retrying clients and
    /// load balancers treat 503 as "try again").
    pub fn pool_timeout(waited_secs: u64) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: Cow::Borrowed("PGRST003"),
            message: "Timed out acquiring connection from connection pool.".into(),
            details: Some(format!("every pooled connection stayed busy for {waited_secs} s (db-pool-acquisition-timeout)").into()),
            hint: None,
            headers: Vec::new(),
        }
    }

    /// 429 for `rate-limit-per-user` / `rate-limit-per-ip` (`limit` names
    /// which); the `Retry-After` header is added by the caller.
    pub fn too_many_requests(limit: &str, per_second: u32) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: Cow::Borrowed("PGRST429"),
            message: "Too many requests".into(),
            details: Some(format!("more than {per_second} requests per second ({limit})").into()),
            hint: Some("Retry after the number of seconds in the Retry-After header".into()),
            headers: Vec::new(),
        }
    }

    /// A request the HTTP layer refuses before it is read whole: too slow
    /// (408), too long a URL (414), too many or too large headers (431),
    /// too many connections (429 from one address, 503 in all).
    pub fn http_limit(status: StatusCode, message: &str, details: String) -> ApiError {
        let code = match status.as_u16() {
            408 => "PGRST408",
            414 => "PGRST414",
            429 => "PGRST429",
            431 => "PGRST431",
            _ => "PGRST000",
        };
        ApiError {
            status,
            code: Cow::Borrowed(code),
            message: message.to_owned(),
            details: Some(details.into()),
            hint: None,
            headers: Vec::new(),
        }
    }

    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: Cow::Borrowed("PGRST413"),
            message: format!("The request body is larger than {limit} bytes"),
            details: None,
            hint: None,
            headers: Vec::new(),
        }
    }

    pub fn internal(message: &str) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: Cow::Borrowed("PGRST000"),
            message: message.to_owned(),
            details: None,
            hint: None,
            headers: Vec::new(),
        }
    }

    /// 400 PGRST100: the query string or a header does not parse.
    /// 416 PGRST103 for a range that selects nothing.
    pub fn parse(e: crate::request::ParseError) -> ApiError {
        if e.unsatisfiable {
            return ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "PGRST103", e.message, Some(e.details), None);
        }
        ApiError::bad_request("PGRST100", e.message, Some(e.details))
    }

    /// 416 PGRST103: an offset past the counted rows (`Content-Range: */N`).
    pub fn offset_past_end(offset: u64, total: i64) -> ApiError {
        ApiError {
            headers: vec![("content-range".into(), format!("*/{total}"))],
            ..ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "PGRST103",
                "Requested range not satisfiable".into(),
                Some(format!("An offset of {offset} was requested, but there are only {total} rows.")),
                None,
            )
        }
    }

    /// A header of the answer (`www-authenticate`, `content-range`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// 400 PGRST122: `Prefer: handling=strict` with preferences not understood.
    pub fn invalid_preferences(unknown: &[String]) -> ApiError {
        ApiError::bad_request(
            "PGRST122",
            "Invalid preferences given with handling=strict".into(),
            Some(format!("Invalid preferences: {}", unknown.join(", "))),
        )
    }

    fn bad_request(code: &'static str, message: String, details: Option<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message, details, None)
    }

    /// A database error with PostgREST's SQLSTATE → HTTP status mapping;
    /// the database's message, detail and hint are kept.
    pub fn from_db(e: &tokio_postgres::Error, anonymous: bool) -> ApiError {
        let Some(db) = e.as_db_error() else {
            return ApiError::unavailable("Database connection error", &e.to_string());
        };
        let code = db.code().code();
        if code == "PGRST" {
            return raised(db.message(), db.detail());
        }
        let status = status_for_sqlstate(code, anonymous);
        ApiError {
            status,
            code: Cow::Owned(code.to_owned()),
            message: db.message().to_owned(),
            details: db.detail().map(|d| d.into()),
            hint: db.hint().map(str::to_owned),
            headers: if status == StatusCode::UNAUTHORIZED { vec![("www-authenticate".into(), "Bearer".to_owned())] } else { Vec::new() },
        }
    }
}

/// `RAISE SQLSTATE 'PGRST' USING message = '{"code": …, "message": …}',
/// detail = '{"status": …, "headers": {…}}'`: the answer a function chose,
/// as PostgREST gives it; else 500 `PGRST121`.
fn raised(message: &str, detail: Option<&str>) -> ApiError {
    use serde_json::Value;
    let unparsable = |details: String, hint: &str| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error".into(),
            Some(details),
            Some(hint.into()),
        )
    };
    const MESSAGE_HINT: &str =
        "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.";
    const DETAIL_HINT: &str = "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.";
    let body = match serde_json::from_str::<Value>(message) {
        Ok(Value::Object(m)) if m.get("code").is_some_and(Value::is_string) && m.get("message").is_some_and(Value::is_string) => m,
        _ => return unparsable(format!("Invalid JSON value for MESSAGE: '{message}'"), MESSAGE_HINT),
    };
    let Some(detail) = detail else {
        return unparsable("DETAIL is missing in the RAISE statement".into(), DETAIL_HINT);
    };
    let parsed = serde_json::from_str::<Value>(detail).ok().and_then(|d| {
        let status = StatusCode::from_u16(u16::try_from(d.get("status")?.as_u64()?).ok()?).ok()?;
        let headers: Vec<(Cow<'static, str>, String)> = d
            .get("headers")?
            .as_object()?
            .iter()
            .map(|(k, v)| Some((Cow::Owned(k.to_ascii_lowercase()), v.as_str()?.to_owned())))
            .collect::<Option<_>>()?;
        Some((status, headers))
    });
    let Some((status, headers)) = parsed else {
        return unparsable(format!("Invalid JSON value for DETAIL: '{detail}'"), DETAIL_HINT);
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    ApiError {
        status,
        code: Cow::Owned(text("code").unwrap_or_default()),
        message: text("message").unwrap_or_default(),
        details: body.get("details").filter(|v| !v.is_null()).cloned(),
        hint: text("hint"),
        headers,
    }
}

/// 406 `PGRST107`: no media type of `Accept` can be served.
pub fn not_acceptable(accept: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_ACCEPTABLE, "PGRST107", format!("None of these media types are available: {accept}"), None, None)
}

/// PGRST116: a single object was asked for and `rows` rows came.
pub fn not_one_row(rows: i64) -> ApiError {
    ApiError {
        status: StatusCode::NOT_ACCEPTABLE,
        code: Cow::Borrowed("PGRST116"),
        message: "JSON object requested, multiple (or no) rows returned".into(),
        details: Some(format!("Results contain {rows} rows, application/vnd.pgrst.object+json requires 1 row").into()),
        hint: None,
        headers: Vec::new(),
    }
}

/// PostgREST's table, plus `PT<status>` codes raised by SQL functions.
pub fn status_for_sqlstate(code: &str, anonymous: bool) -> StatusCode {
    let exact = match code {
        "23503" | "23505" => Some(409),
        "25006" => Some(405),
        "42883" | "42P01" => Some(404),
        "42501" => Some(if anonymous { 401 } else { 403 }),
        "57014" => Some(504),
        // The server is shutting down or ended the session: try again.
        "57P01" | "57P02" | "57P03" => Some(503),
        "53400" => Some(500),
        "P0001" => Some(400),
        _ => None,
    };
    let n = exact.unwrap_or_else(|| {
        if let Some(status) = code.strip_prefix("PT").and_then(|s| s.parse::<u16>().ok()) {
            return status;
        }
        match &code[..2.min(code.len())] {
            "08" | "53" => 503,
            "0L" | "0P" | "28" => 403,
            "22" | "23" | "42" => 400,
            _ => 500,
        }
    });
    StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Schema-cache errors (PGRST2xx), with PostgREST's wording.
impl ApiError {
    /// 404 PGRST205: no such table or view in the request's schema.
    /// `known`: the relations the schema has, for "Perhaps you meant".
    pub fn unknown_relation<'a>(schema: &str, name: &str, known: impl IntoIterator<Item = &'a str>) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "PGRST205",
            format!("Could not find the table '{schema}.{name}' in the schema cache"),
            None,
            closest(name, known).map(|m| format!("Perhaps you meant the table '{schema}.{m}'")),
        )
    }

    /// 400 PGRST200: no foreign key between the two.
    /// `hint`: the `!hint` of the embed; `related`: the relations `outer`
    /// has a relationship with, for "Perhaps you meant".
    pub fn no_relationship<'a>(
        schema: &str,
        outer: &str,
        embedded: &str,
        hint: Option<&str>,
        related: impl IntoIterator<Item = &'a str>,
    ) -> ApiError {
        let using = hint.map(|h| format!(" using the hint '{h}'")).unwrap_or_default();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "PGRST200",
            format!("Could not find a relationship between '{outer}' and '{embedded}' in the schema cache"),
            Some(format!("Searched for a foreign key relationship between '{outer}' and '{embedded}'{using} in the schema '{schema}', but no matches were found.")),
            closest(embedded, related).map(|m| format!("Perhaps you meant '{m}' instead of '{embedded}'.")),
        )
    }

    /// 300 PGRST201: several relationships; `details` is PostgREST's array
    /// of `{cardinality, embedding, relationship}`.
    pub fn ambiguous_relationship(outer: &str, embedded: &str, candidates: &[Candidate]) -> ApiError {
        let details = candidates
            .iter()
            .map(|c| {
                serde_json::json!({
                    "cardinality": c.cardinality,
                    "embedding": format!("{outer} with {embedded}"),
                    "relationship": c.relationship,
                })
            })
            .collect();
        ApiError {
            details: Some(serde_json::Value::Array(details)),
            ..ApiError::new(
                StatusCode::MULTIPLE_CHOICES,
                "PGRST201",
                format!("Could not embed because more than one relationship was found for '{outer}' and '{embedded}'"),
                None,
                Some(format!(
                    "Try changing '{embedded}' to one of the following: {}. Find the desired relationship in the 'details' key.",
                    candidates.iter().map(|c| format!("'{embedded}!{}'", c.hint)).collect::<Vec<_>>().join(", ")
                )),
            )
        }
    }

    /// 404 PGRST202: no function of that name takes these arguments
    /// (`keys`, sorted). The hint names an overload of that name with its
    /// parameters, else a function of a close name. `json_body`: the
    /// arguments came in a JSON body (a single unnamed json parameter could
    /// have taken it).
    pub fn no_function(cache: &crate::schema::SchemaCache, name: &str, keys: &[&str], json_body: bool) -> ApiError {
        let schema = &cache.default_schema;
        let (called, searched) = match keys {
            [] => (format!("{schema}.{name} without parameters"), "without parameters".to_owned()),
            [one] => (format!("{schema}.{name}({one})"), format!("with parameter {one}")),
            many => (format!("{schema}.{name}({})", many.join(", ")), format!("with parameters {}", many.join(", "))),
        };
        let hint = match cache.functions(name).first() {
            Some(f) => {
                let mut params: Vec<&str> = f.args.iter().map(|a| a.name.as_str()).collect();
                params.sort_unstable();
                Some(format!("Perhaps you meant to call the function {schema}.{name}({})", params.join(", ")))
            }
            None => closest(name, cache.all_functions().into_iter().map(|f| f.name.as_str()))
                .map(|m| format!("Perhaps you meant to call the function {schema}.{m}")),
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            "PGRST202",
            format!("Could not find the function {called} in the schema cache"),
            Some(format!(
                "Searched for the function {schema}.{name} {searched}{}, but no matches were found in the schema cache.",
                if json_body { " or with a single unnamed json/jsonb parameter" } else { "" }
            )),
            hint,
        )
    }

    /// 404 PGRST202: a raw body (text, xml, bytea) and no function of that
    /// name with one unnamed parameter of its type.
    pub fn no_raw_function(schema: &str, name: &str, type_sql: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "PGRST202",
            format!("Could not find the function {schema}.{name} in the schema cache"),
            Some(format!("Searched for the function {schema}.{name} with a single unnamed {type_sql} parameter, but no matches were found in the schema cache.")),
            None,
        )
    }

    /// 300 PGRST203: several overloads take these arguments.
    pub fn ambiguous_function(candidates: &[String]) -> ApiError {
        ApiError::new(
            StatusCode::MULTIPLE_CHOICES,
            "PGRST203",
            format!("Could not choose the best candidate function between: {}", candidates.join(", ")),
            None,
            Some("Try renaming the parameters or the function itself in the database so function overloading can be resolved".into()),
        )
    }

    /// 400 42703: a column the relation does not have, in PostgreSQL's
    /// words (`columns`: those it has, for PostgreSQL's hint).
    pub fn unknown_column<'a>(relation: &str, name: &str, columns: impl IntoIterator<Item = &'a str>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "42703",
            format!("column {relation}.{name} does not exist"),
            None,
            closest(name, columns).map(|m| format!("Perhaps you meant to reference the column \"{relation}.{m}\".")),
        )
    }

    /// 400 PGRST204: a body key that is no column of the relation.
    pub fn unknown_body_column(relation: &str, key: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "PGRST204",
            format!("Could not find the '{key}' column of '{relation}' in the schema cache"),
            None,
            None,
        )
    }

    /// 400 PGRST100: `Clerk-Read-After` is not what a write's response sent.
    pub fn invalid_read_after(value: &str) -> ApiError {
        let shown: String = value.chars().take(40).collect();
        let cut = if shown.len() < value.len() { "…" } else { "" };
        ApiError::bad_request(
            "PGRST100",
            format!("Invalid Clerk-Read-After header: {shown}{cut}"),
            Some("expected a WAL position such as 16/B374D848, as a write's response sends it in Clerk-Read-After".into()),
        )
    }

    /// 400 PGRST100: the HTTP request itself is malformed.
    pub fn malformed_http(details: &str) -> ApiError {
        ApiError::bad_request("PGRST100", "Malformed HTTP request".into(), Some(details.into()))
    }

    /// 400 PGRST100: a cast to a type that looks names up in the catalogs.
    pub fn cast_not_allowed(type_name: &str) -> ApiError {
        ApiError::bad_request(
            "PGRST100",
            format!("casting to \"{type_name}\" is not allowed"),
            Some("object identifier types (regclass, regrole, regproc, ...) look names up in the system catalogs".into()),
        )
    }

    /// 400 42704, as PostgreSQL words it: a cast to a type that does not exist.
    pub fn unknown_type(type_name: &str) -> ApiError {
        ApiError::bad_request("42704", format!("type \"{type_name}\" does not exist"), None)
    }

    /// 400 PGRST108: filters, order or limit on an embed the select does not name.
    pub fn not_embedded(path: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "PGRST108",
            format!("'{path}' is not an embedded resource in this request"),
            None,
            Some(format!("Verify that '{path}' is included in the 'select' query parameter.")),
        )
    }

    /// 400 PGRST118: `order=rel(col)` on an embed of many rows.
    pub fn order_by_to_many(outer: &str, embedded: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "PGRST118",
            format!("A related order on '{embedded}' is not possible"),
            Some(format!("'{outer}' and '{embedded}' do not form a many-to-one or one-to-one relationship")),
            None,
        )
    }

    /// 500 PGRST111: `response.headers` is not what PostgREST reads.
    pub fn bad_response_headers() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PGRST111",
            "response.headers guc must be a JSON array composed of objects with a single key and a string value".into(),
            None,
            None,
        )
    }

    /// 500 PGRST112: `response.status` is not a status code.
    pub fn bad_response_status() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "PGRST112", "response.status guc must be a valid status code".into(), None, None)
    }

    /// 400 PGRST100: a request whose statement would have too many subqueries.
    pub fn too_complex(subqueries: usize, limit: usize) -> ApiError {
        ApiError::bad_request(
            "PGRST100",
            "The request is too complex".into(),
            Some(format!("its embeds, embed filters (rel=is.null) and related orders make {subqueries} subqueries; the limit is {limit}")),
        )
    }

    /// 400 PGRST100: two items of `select` would answer under one key.
    pub fn key_twice(key: &str) -> ApiError {
        ApiError::bad_request(
            "PGRST100",
            "Invalid select".into(),
            Some(format!("two items of select are answered as \"{key}\": give one of them another alias (alias:column)")),
        )
    }

    /// 400 PGRST123: an aggregate with `db-aggregates-enabled = false`.
    pub fn aggregates_disabled() -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "PGRST123", "Use of aggregate functions is not allowed".into(), None, None)
    }

    /// 400 PGRST124: `handling=strict, max-affected=N` and more rows (rolled back).
    pub fn max_affected_exceeded(rows: i64) -> ApiError {
        ApiError::bad_request(
            "PGRST124",
            "Query result exceeds max-affected preference constraint".into(),
            Some(format!("The query affects {rows} rows")),
        )
    }

    /// 405 PGRST105: a PUT whose filters are not exactly its primary key.
    pub fn put_filters_not_key() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "PGRST105",
            "Filters must include all and only primary key columns with 'eq' operators".into(),
            None,
            None,
        )
    }

    /// 400 PGRST109: `limit`/`offset` on a PATCH or DELETE without `order`
    /// (which rows a limited update or delete takes would be arbitrary).
    pub fn limit_without_order() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "PGRST109",
            "A 'limit' was applied without an explicit 'order'".into(),
            None,
            Some("Apply an 'order' using unique column(s)".into()),
        )
    }

    /// 400 PGRST110: a limited update or delete changed more rows than its
    /// `limit` (its `order` was not by unique columns); rolled back.
    pub fn limit_surpassed(rows: i64, limit: u64) -> ApiError {
        ApiError::bad_request(
            "PGRST110",
            "The maximum number of rows allowed to change was surpassed".into(),
            Some(format!("Results contain {rows} rows changed but the maximum number allowed is {limit}")),
        )
    }

    /// 400 PGRST100: a limited update or delete ordered by an embed's
    /// column, which cannot name the relation's own rows.
    pub fn limited_order_related(key: &str) -> ApiError {
        ApiError::bad_request(
            "PGRST100",
            "Unsupported order for a limited update or delete".into(),
            Some(format!("order by the relation's own (unique) columns, not by {key}(…)")),
        )
    }

    /// 400 PGRST114
    pub fn put_with_range() -> ApiError {
        ApiError::bad_request("PGRST114", "limit/offset querystring parameters are not allowed for PUT".into(), None)
    }

    /// 400 PGRST115: the body's primary key is not the URL's.
    pub fn put_key_mismatch() -> ApiError {
        ApiError::bad_request("PGRST115", "Payload values do not match URL in primary key column(s)".into(), None)
    }

    /// 400 PGRST102: a body that cannot be read.
    pub fn invalid_body(message: String, details: Option<String>) -> ApiError {
        ApiError::bad_request("PGRST102", message, details)
    }

    /// 406 PGRST106: a profile that is not one of `db-schemas`.
    pub fn invalid_schema(profile: &str, exposed: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST106",
            format!("Invalid schema: {profile}"),
            None,
            Some(format!("Only the following schemas are exposed: {exposed}")),
        )
    }

    fn new(status: StatusCode, code: &'static str, message: String, details: Option<String>, hint: Option<String>) -> ApiError {
        ApiError { status, code: Cow::Borrowed(code), message, details: details.map(Into::into), hint, headers: Vec::new() }
    }
}

/// One relationship of an ambiguous embed (PGRST201's `details`).
pub struct Candidate {
    /// `many-to-one`, `one-to-many`, `one-to-one` or `many-to-many`.
    pub cardinality: &'static str,
    /// `<constraint> using <table>(<columns>) and <table>(<columns>)`.
    pub relationship: String,
    /// What `!hint` picks it: the constraint's name.
    pub hint: String,
}

/// The name of `known` closest to `name`, as PostgreSQL suggests one: the
/// fewest edits, and no more edits than half the name's length.
fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = name.chars().count() / 2;
    known
        .into_iter()
        .filter(|k| *k != name)
        .map(|k| (levenshtein(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Refusals of the edge and the limits.
impl ApiError {
    /// 403 CPCS1: a write with Clerk's session cookie from another site.
    pub fn cookie_write_refused(origin: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "CPCS1",
            format!("A request authenticated by the session cookie cannot write from {origin}"),
            Some("only pages of this API's origin or of server-cors-allowed-origins may write with Clerk's __session cookie".into()),
            Some("send the session token as Authorization: Bearer <token> (await session.getToken()), or list the origin in server-cors-allowed-origins".into()),
        )
    }

    /// 429 PGRST429: the client already runs its share of the pool.
    pub fn client_busy(max: usize) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "PGRST429",
            "Too many requests".into(),
            Some(format!("{max} requests of this client are already running (db-max-connections-per-client)")),
            Some("Retry when one of them has finished".into()),
        )
    }
}

/// Refused credentials (PGRST3xx, always 401), with a `WWW-Authenticate` challenge.
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        let (code, message) = match &e {
            AuthError::BadAuthorizationHeader => ("PGRST301", "Authorization header must be \"Bearer <token>\"".to_owned()),
            AuthError::AnonymousDisabled => ("PGRST302", "Anonymous access is disabled: send a Clerk session token".to_owned()),
            // PostgREST's wording, which clients match on.
            AuthError::Token(TokenError::Expired) => ("PGRST303", "JWT expired".to_owned()),
            AuthError::Token(t) if t.is_claims_error() => ("PGRST303", t.to_string()),
            AuthError::Token(t) => ("PGRST301", t.to_string()),
            AuthError::BadRoleClaim(why) => ("PGRST303", why.clone()),
            AuthError::RoleNotAllowed(role) => {
                ("PGRST303", format!("the token's role \"{role}\" is not one this API runs requests as (db-allowed-roles)"))
            }
        };
        // The setting that would accept it, for the operator reading the log.
        let hint = match &e {
            AuthError::Token(TokenError::NotASessionToken(_)) => {
                Some("JWT-template tokens are accepted with clerk-accept-jwt-templates = true".to_owned())
            }
            AuthError::Token(TokenError::TooLongLived { .. }) => Some("clerk-max-token-lifetime sets the limit".to_owned()),
            _ => None,
        };
        let challenge = match e {
            AuthError::AnonymousDisabled => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        };
        ApiError {
            headers: vec![("www-authenticate".into(), challenge.to_owned())],
            ..ApiError::new(StatusCode::UNAUTHORIZED, code, message, None, hint)
        }
    }
}

/// Refused webhook deliveries: codes of their own (CPWH: clerk-proxy
/// webhook), not the JWT ones.
impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> ApiError {
        let (status, code, message) = match &e {
            WebhookError::MissingHeader(h) => (StatusCode::BAD_REQUEST, "CPWH1", format!("The {h} header is missing")),
            WebhookError::BadTimestamp => (StatusCode::BAD_REQUEST, "CPWH2", "svix-timestamp is not a Unix timestamp".into()),
            WebhookError::OutsideTolerance(d) => (
                StatusCode::BAD_REQUEST,
                "CPWH3",
                format!("svix-timestamp is {d} s away from now; the limit is {} s", crate::webhooks::TOLERANCE_SECS),
            ),
            WebhookError::BadSignature => (StatusCode::UNAUTHORIZED, "CPWH4", "No svix-signature matches the body".into()),
        };
        let mut error = ApiError::new(status, code, message, None, None);
        // A 401 names how to authenticate (RFC 9110 §15.5.2): Svix's signature.
        if status == StatusCode::UNAUTHORIZED {
            error.headers.push(("www-authenticate".into(), "Svix realm=\"clerk-webhooks\"".to_owned()));
        }
        error
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggestions_are_close_names_only() {
        use super::closest;
        assert_eq!(closest("totl_amount", ["status", "total_amount", "notes"]), Some("total_amount"));
        assert_eq!(closest("prodcts", ["orders", "products"]), Some("products"));
        assert_eq!(closest("xyz", ["orders", "products"]), None);
        assert_eq!(closest("id", ["ids", "idx"]), Some("ids"));
    }

    #[test]
    fn sqlstate_mapping_follows_postgrest() {
        use super::status_for_sqlstate as s;
        assert_eq!(s("23505", false).as_u16(), 409);
        assert_eq!(s("42501", true).as_u16(), 401);
        assert_eq!(s("42501", false).as_u16(), 403);
        assert_eq!(s("PT404", false).as_u16(), 404);
        assert_eq!(s("22P02", false).as_u16(), 400);
        assert_eq!(s("57014", false).as_u16(), 504);
        assert_eq!(s("57P01", false).as_u16(), 503);
        assert_eq!(s("08006", false).as_u16(), 503);
        assert_eq!(s("XX000", false).as_u16(), 500);
        assert_eq!(s("28000", false).as_u16(), 403);
    }
}
