//! The one catalogue of API errors: PostgREST's `{code, message, details,
//! hint}` with the HTTP status each has, built here only (`response`
//! renders them; `db` turns a database error into one).

use http::StatusCode;
use std::borrow::Cow;

/// An API error: what went wrong, for whom to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
    /// The `WWW-Authenticate` challenge of a 401.
    pub www_authenticate: Option<String>,
}

impl ApiError {
    pub fn not_found_path(path: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: Cow::Borrowed("PGRST125"),
            message: "Invalid path specified in request URL".into(),
            details: Some(format!("No endpoint at {path}")),
            hint: None,
            www_authenticate: None,
        }
    }

    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: Cow::Borrowed("PGRST117"),
            message: format!("Unsupported HTTP method: {method}"),
            details: Some(format!("{path} does not accept {method} in this version")),
            hint: None,
            www_authenticate: None,
        }
    }

    pub fn unavailable(message: &str, details: &str) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: Cow::Borrowed("PGRST000"),
            message: message.to_owned(),
            details: Some(details.to_owned()),
            hint: None,
            www_authenticate: None,
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
            details: Some(format!("the statement ran past db-statement-timeout ({} ms) and was cancelled by clerk-proxy", limit.as_millis())),
            hint: None,
            www_authenticate: None,
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
            details: Some(format!("every pooled connection stayed busy for {waited_secs} s (db-pool-acquisition-timeout)")),
            hint: None,
            www_authenticate: None,
        }
    }

    /// 429 for `rate-limit-per-user` / `rate-limit-per-ip` (`limit` names
    /// which); the `Retry-After` header is added by the caller.
    pub fn too_many_requests(limit: &str, per_second: u32) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: Cow::Borrowed("PGRST429"),
            message: "Too many requests".into(),
            details: Some(format!("more than {per_second} requests per second ({limit})")),
            hint: Some("Retry after the number of seconds in the Retry-After header".into()),
            www_authenticate: None,
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
        ApiError { status, code: Cow::Borrowed(code), message: message.to_owned(), details: Some(details), hint: None, www_authenticate: None }
    }

    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: Cow::Borrowed("PGRST413"),
            message: format!("The request body is larger than {limit} bytes"),
            details: None,
            hint: None,
            www_authenticate: None,
        }
    }

    pub fn internal(message: &str) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: Cow::Borrowed("PGRST000"),
            message: message.to_owned(),
            details: None,
            hint: None,
            www_authenticate: None,
        }
    }

    pub fn bad_request(code: &'static str, message: String, details: Option<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: Cow::Borrowed(code), message, details, hint: None, www_authenticate: None }
    }

    /// A database error with PostgREST's SQLSTATE → HTTP status mapping;
    /// the database's message, detail and hint are kept.
    pub fn from_db(e: &tokio_postgres::Error, anonymous: bool) -> ApiError {
        let Some(db) = e.as_db_error() else {
            return ApiError::unavailable("Database connection error", &e.to_string());
        };
        let code = db.code().code();
        let status = status_for_sqlstate(code, anonymous);
        ApiError {
            status,
            code: Cow::Owned(code.to_owned()),
            message: db.message().to_owned(),
            details: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
            www_authenticate: (status == StatusCode::UNAUTHORIZED).then(|| "Bearer".to_owned()),
        }
    }
}

/// 406 `PGRST107`.
pub fn not_acceptable(accept: &str, details: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_ACCEPTABLE,
        code: Cow::Borrowed("PGRST107"),
        message: format!("None of these media types are available: {accept}"),
        details: Some(details.to_owned()),
        hint: None,
        www_authenticate: None,
    }
}

/// PGRST116: a single object was asked for and `rows` rows came.
pub fn not_one_row(rows: i64) -> ApiError {
    ApiError {
        status: StatusCode::NOT_ACCEPTABLE,
        code: Cow::Borrowed("PGRST116"),
        message: "JSON object requested, multiple (or no) rows returned".into(),
        details: Some(format!("Results contain {rows} rows, application/vnd.pgrst.object+json requires 1 row")),
        hint: None,
        www_authenticate: None,
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
    pub fn unknown_relation(schema: &str, name: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "PGRST205", format!("Could not find the table '{schema}.{name}' in the schema cache"), None, None)
    }

    /// 400 PGRST200: no foreign key between the two.
    pub fn no_relationship(schema: &str, outer: &str, embedded: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "PGRST200",
            format!("Could not find a relationship between '{outer}' and '{embedded}' in the schema cache"),
            Some(format!("Searched for a foreign key relationship between '{outer}' and '{embedded}' in the schema '{schema}', but no matches were found.")),
            None,
        )
    }

    /// 300 PGRST201: several foreign keys; `constraints` names them.
    pub fn ambiguous_relationship(outer: &str, embedded: &str, constraints: &[&str]) -> ApiError {
        ApiError::new(
            StatusCode::MULTIPLE_CHOICES,
            "PGRST201",
            format!("Could not embed because more than one relationship was found for '{outer}' and '{embedded}'"),
            Some(constraints.join(", ")),
            Some(format!(
                "Try changing '{embedded}' to one of the following: {}. Find the desired relationship in the 'details' key.",
                constraints.iter().map(|c| format!("'{embedded}!{c}'")).collect::<Vec<_>>().join(", ")
            )),
        )
    }

    /// 404 PGRST202: no function of that name takes these arguments;
    /// `takes`: the signature of one that has the name.
    pub fn no_function(schema: &str, name: &str, keys: &[&str], takes: Option<String>) -> ApiError {
        let searched = match keys {
            [] => "without parameters".to_owned(),
            [one] => format!("with parameter {one}"),
            many => format!("with parameters {}", many.join(", ")),
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            "PGRST202",
            format!("Could not find the function {schema}.{name}({}) in the schema cache", keys.join(", ")),
            Some(format!("Searched for the function {schema}.{name} {searched} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.")),
            takes.map(|args| format!("{name} takes ({args})")),
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

    /// 400 42703: a column the relation does not have (`columns`: those it has).
    pub fn unknown_column(relation: &str, name: &str, columns: &[&str]) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "42703",
            format!("column {relation}.{name} does not exist"),
            None,
            Some(format!("Columns of {relation}: {}", columns.join(", "))),
        )
    }

    /// 400 PGRST204: a body key that is no column of the relation.
    pub fn unknown_body_column(relation: &str, key: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "PGRST204", format!("Could not find the '{key}' column of '{relation}' in the schema cache"), None, None)
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
        ApiError { status, code: Cow::Borrowed(code), message, details, hint, www_authenticate: None }
    }
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

#[cfg(test)]
mod tests {
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
