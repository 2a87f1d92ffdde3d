//! HTTP responses, and the one place that shapes error bodies: PostgREST's
//! `{code, message, details, hint}`, so postgrest-js reports them as usual.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::action::WriteMethod;
use crate::error::{not_acceptable, not_one_row, ApiError};
use crate::plan::Body;
use crate::request::Return;

pub fn json(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let body = body.to_string().into_bytes();
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("content-length", body.len())
        .body(body)
        .expect("static headers are valid")
}

/// The error's JSON body, and its `WWW-Authenticate` challenge.
impl ApiError {
    pub fn into_response(self) -> Response<Vec<u8>> {
        let mut response =
            json(self.status, &json!({"code": self.code, "message": self.message, "details": self.details, "hint": self.hint}));
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(&value)) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// `OPTIONS` on a path (not a CORS preflight): 200, no body, what the path
/// can take in `Allow`, and `Access-Control-Allow-Origin: *` (PostgREST's).
pub fn options(allow: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_LENGTH, "0")
        .header("access-control-allow-origin", "*")
        .header(http::header::ALLOW, allow)
        .body(Vec::new())
        .expect("valid headers")
}

/// The representation a client asked for with `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    /// `application/vnd.pgrst.object+json`: exactly one row, as an object.
    Object,
    /// `text/csv`: a header line, then one line per row.
    Csv,
    /// `application/vnd.pgrst.plan`: the statement's `EXPLAIN`, not its rows.
    Plan(PlanFormat),
    /// One of `Offered::own` (by its index): the value as is.
    Raw(usize),
    /// `application/geo+json` (PostGIS): the rows as a FeatureCollection.
    GeoJson,
}

/// What a request can be answered in beyond JSON, CSV and one object.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offered<'a> {
    /// `db-plan-enabled`.
    pub plans: bool,
    /// PostGIS is installed.
    pub geojson: bool,
    /// Media types of the target's own: the function's return domain, or
    /// its handler aggregates.
    pub own: &'a [&'a str],
}

/// `application/vnd.pgrst.plan[+json|+text]; for="…"; options=a|b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanFormat {
    /// `+json` (else text).
    pub json: bool,
    /// The `for` media type: the representation whose statement is explained.
    pub of_object: bool,
    pub of_csv: bool,
    pub analyze: bool,
    pub verbose: bool,
    pub settings: bool,
    pub buffers: bool,
    pub wal: bool,
}

impl PlanFormat {
    /// `EXPLAIN (…)`'s options.
    pub fn explain_options(&self) -> String {
        let mut options = vec![if self.json { "FORMAT JSON" } else { "FORMAT TEXT" }];
        for (on, name) in [
            (self.analyze, "ANALYZE"),
            (self.verbose, "VERBOSE"),
            (self.settings, "SETTINGS"),
            (self.buffers, "BUFFERS"),
            (self.wal, "WAL"),
        ] {
            if on {
                options.push(name);
            }
        }
        options.join(", ")
    }

    /// The answer's `Content-Type`, as PostgREST echoes it.
    pub fn content_type(&self) -> String {
        let of = if self.of_object {
            "application/vnd.pgrst.object+json"
        } else if self.of_csv {
            "text/csv"
        } else {
            "application/json"
        };
        let options: Vec<&str> = [
            (self.analyze, "analyze"),
            (self.verbose, "verbose"),
            (self.settings, "settings"),
            (self.buffers, "buffers"),
            (self.wal, "wal"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        let options = if options.is_empty() { String::new() } else { format!("; options={}", options.join("|")) };
        format!("application/vnd.pgrst.plan+{}; for=\"{of}\"{options}; charset=utf-8", if self.json { "json" } else { "text" })
    }

    /// From a media range's parameters; None when one is not understood.
    fn parse<'a>(json: bool, params: impl Iterator<Item = &'a str>) -> Option<PlanFormat> {
        let mut plan = PlanFormat { json, ..PlanFormat::default() };
        for param in params {
            let (name, value) = param.split_once('=')?;
            let value = value.trim().trim_matches('"');
            match name.trim() {
                "for" => match value {
                    "application/json" | "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => {}
                    "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => plan.of_object = true,
                    "text/csv" => plan.of_csv = true,
                    _ => return None,
                },
                "options" => {
                    for option in value.split('|') {
                        match option.trim() {
                            "analyze" => plan.analyze = true,
                            "verbose" => plan.verbose = true,
                            "settings" => plan.settings = true,
                            "buffers" => plan.buffers = true,
                            "wal" => plan.wal = true,
                            _ => return None,
                        }
                    }
                }
                "charset" | "q" => {}
                _ => return None,
            }
        }
        Some(plan)
    }
}

/// The media type of `Accept` to answer with: the ranges by q-value
/// (highest first, in order among equals; q=0 never), the first that can be
/// served; 406 `PGRST107` when none can.
pub fn negotiate(accept: Option<&str>, offered: Offered) -> Result<Format, ApiError> {
    let Offered { plans, geojson, own } = offered;
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Format::Json);
    };
    let mut ranges: Vec<(u16, &str)> = accept
        .split(',')
        .map(|range| {
            let q = range
                .split(';')
                .skip(1)
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16);
            (q, range)
        })
        .filter(|(q, _)| *q > 0)
        .collect();
    ranges.sort_by_key(|(q, _)| std::cmp::Reverse(*q));
    for (_, range) in ranges {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let format = match media {
            "application/json"
            | "application/*"
            | "*/*"
            | "application/openapi+json"
            | "application/vnd.pgrst.array+json"
            | "application/vnd.pgrst.array" => Some(Format::Json),
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => Some(Format::Object),
            "text/csv" => Some(Format::Csv),
            "application/geo+json" if geojson => Some(Format::GeoJson),
            "application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+text" if plans => PlanFormat::parse(false, parts).map(Format::Plan),
            "application/vnd.pgrst.plan+json" if plans => PlanFormat::parse(true, parts).map(Format::Plan),
            // The target's own, or none.
            other => own.iter().position(|own| own.eq_ignore_ascii_case(other)).map(Format::Raw),
        };
        if let Some(format) = format {
            return Ok(format);
        }
    }
    Err(not_acceptable(accept))
}

/// `;nulls=stripped` on the chosen JSON media type (postgrest-js
/// `stripNulls()`): fields that are null are left out of each row.
pub fn strips_nulls(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            matches!(parts.next(), Some("application/vnd.pgrst.array+json" | "application/vnd.pgrst.object+json"))
                && parts.any(|p| p == "nulls=stripped")
        })
    })
}

/// The body as one object, for `Accept: application/vnd.pgrst.object+json`:
/// 406 unless exactly one row.
fn single_object(body: &str, rows: i64) -> Result<String, ApiError> {
    if rows != 1 {
        return Err(not_one_row(rows));
    }
    // The row's own text, as PostgreSQL wrote it: parsed and written again
    // it would lose its keys' order (and numbers' trailing zeros).
    let row = body.trim().strip_prefix('[').and_then(|b| b.strip_suffix(']')).map(str::trim);
    row.filter(|r| !r.is_empty()).map(str::to_owned).ok_or_else(|| ApiError::internal("unexpected JSON from the database"))
}

fn respond(status: StatusCode, body: Option<String>, format: Format, extra: &[(&str, String)]) -> Response<Vec<u8>> {
    let plan_type;
    let content_type = match format {
        Format::Object => "application/vnd.pgrst.object+json; charset=utf-8",
        Format::Csv => "text/csv; charset=utf-8",
        Format::Json => "application/json; charset=utf-8",
        Format::Plan(plan) => {
            plan_type = plan.content_type();
            plan_type.as_str()
        }
        // Set by `raw`.
        Format::Raw(_) => "application/octet-stream",
        Format::GeoJson => "application/geo+json; charset=utf-8",
    };
    let mut builder = Response::builder().status(status);
    if body.is_some() {
        builder = builder.header("content-type", content_type);
    }
    for (name, value) in extra {
        builder = builder.header(*name, value.as_str());
    }
    let bytes = body.map(String::into_bytes).unwrap_or_default();
    builder.header("content-length", bytes.len()).body(bytes).expect("valid headers")
}

/// A read: `Content-Range: first-last/total`, 206 when the range is not
/// the whole (counted) result. A function's one row or value is the body
/// as is; `void` is 204.
/// `media`: the media type of a `Body::Raw` answer.
pub fn rows(
    r: crate::db::Outcome,
    offset: u64,
    format: Format,
    shape: Body,
    media: Option<&crate::schema::MediaType>,
) -> Result<Response<Vec<u8>>, ApiError> {
    if let Some(total) = r.total.filter(|t| offset > 0 && offset > *t as u64) {
        return Err(ApiError::offset_past_end(offset, total));
    }
    let total = r.total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
    let range = if r.rows > 0 { format!("{}-{}/{total}", offset, offset + r.rows as u64 - 1) } else { format!("*/{total}") };
    // A value of the target's own media type, as is.
    if let (Format::Raw(_), Some(media)) = (format, media) {
        return Ok(raw(r, media));
    }
    let body = match (shape, format) {
        (_, Format::Plan(_)) => return Ok(respond(StatusCode::OK, r.body, format, &[])),
        (Body::Nothing, _) => return Ok(respond(StatusCode::NO_CONTENT, None, format, &[("content-range", range)])),
        (Body::Row | Body::Value, _) => r.body.unwrap_or_else(|| "null".into()),
        (Body::Rows | Body::Values, Format::Object) => single_object(&r.body.unwrap_or_else(|| "[]".into()), r.rows)?,
        // Written by the statement (`sql::RowsAs::Csv`).
        (Body::Rows | Body::Values, Format::Csv) => r.body.unwrap_or_else(|| "\n".into()),
        (Body::Rows | Body::Values, Format::Json | Format::Raw(_) | Format::GeoJson) => r.body.unwrap_or_else(|| "[]".into()),
        (Body::Raw, _) => return Err(ApiError::internal("no media type for a raw answer")),
    };
    let partial = r.total.is_some_and(|t| t > r.rows) && format != Format::Object;
    let status = if partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    Ok(respond(status, Some(body), format, &[("content-range", range)]))
}

/// A write's answer, as PostgREST gives it: POST 201 (200 when an
/// upsert inserted nothing), PUT 201 or 200 with the row, else 204; PATCH
/// and DELETE 200 with rows, else 204. `path`: the table's path, for the
/// `Location` of one created row (`return=headers-only`).
/// `counted`: `Prefer: count=…` was given (the range then ends `/N`).
pub fn written(
    r: crate::db::Outcome,
    method: WriteMethod,
    return_: Return,
    format: Format,
    counted: bool,
    path: &str,
) -> Result<Response<Vec<u8>>, ApiError> {
    if let Format::Plan(_) = format {
        return Ok(respond(StatusCode::OK, r.body, format, &[]));
    }
    let single = format == Format::Object;
    // Whatever the write answers with (its transaction was rolled back: `db::RowsAllowed`).
    if single && r.rows != 1 {
        return Err(not_one_row(r.rows));
    }
    let total = if counted { r.rows.to_string() } else { "*".to_owned() };
    let range = match method {
        WriteMethod::Update if r.rows > 0 => format!("0-{}/{total}", r.rows - 1),
        _ => format!("*/{total}"),
    };
    let range = ("content-range", range);
    // `inserted`: how many rows an upsert inserted (the statement's third column).
    let inserted_none = r.total == Some(0);
    let status = match (method, return_) {
        (WriteMethod::Insert, _) if inserted_none => StatusCode::OK,
        (WriteMethod::Insert, _) => StatusCode::CREATED,
        (WriteMethod::Upsert, Return::Representation) if inserted_none => StatusCode::OK,
        (WriteMethod::Upsert, Return::Representation) => StatusCode::CREATED,
        (WriteMethod::Update | WriteMethod::Delete, Return::Representation) => StatusCode::OK,
        (WriteMethod::Upsert | WriteMethod::Update | WriteMethod::Delete, Return::Minimal | Return::HeadersOnly) => StatusCode::NO_CONTENT,
    };
    match (return_, r.body) {
        (Return::HeadersOnly, Some(keys)) if method == WriteMethod::Insert && r.rows == 1 => {
            let keys: Vec<Value> = serde_json::from_str(&keys).map_err(|_| ApiError::internal("unexpected JSON from the database"))?;
            let encode = |v: &str| percent_encoding::utf8_percent_encode(v, QUERY_VALUE).to_string();
            let query: Vec<String> = keys
                .first()
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| match v {
                            Value::Null => format!("{}=is.null", encode(k)),
                            Value::String(text) => format!("{}=eq.{}", encode(k), encode(text)),
                            other => format!("{}=eq.{}", encode(k), encode(&other.to_string())),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let location = ("location", format!("{path}?{}", query.join("&")));
            Ok(respond(status, None, Format::Json, &[range, location]))
        }
        (Return::Representation, Some(body)) => {
            let body = match format {
                Format::Object => single_object(&body, r.rows)?,
                Format::Csv | Format::Json | Format::Plan(_) | Format::Raw(_) | Format::GeoJson => body,
            };
            Ok(respond(status, Some(body), format, &[range]))
        }
        _ => Ok(respond(status, None, Format::Json, &[range])),
    }
}

/// What a `Location` query value escapes.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `response.headers` and `response.status` as a function of the request
/// set them, as PostgREST applies them: each header (a JSON array of
/// one-key objects) replaces ours of that name, repeated names are all
/// sent, except those that frame the message; the status (200 to 599)
/// replaces ours. Malformed: 500 `PGRST111` / `PGRST112`.
pub fn apply_settings(r: &mut Response<Vec<u8>>, headers: Option<&str>, status: Option<&str>) -> Result<(), ApiError> {
    if let Some(text) = headers {
        let pairs: Vec<(http::HeaderName, http::HeaderValue)> = serde_json::from_str::<Vec<serde_json::Map<String, Value>>>(text)
            .ok()
            .and_then(|objects| {
                objects
                    .into_iter()
                    .map(|o| match o.into_iter().collect::<Vec<_>>().as_slice() {
                        [(name, Value::String(value))] => {
                            Some((http::HeaderName::from_bytes(name.as_bytes()).ok()?, http::HeaderValue::from_str(value).ok()?))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .ok_or_else(ApiError::bad_response_headers)?;
        // The message's framing and the connection are the proxy's: a
        // function cannot make one answer read as two.
        let framing = |n: &http::HeaderName| {
            matches!(
                n.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "upgrade" | "te" | "trailer" | "proxy-connection"
            )
        };
        let pairs: Vec<_> = pairs.into_iter().filter(|(n, _)| !framing(n)).collect();
        for (name, _) in &pairs {
            r.headers_mut().remove(name);
        }
        for (name, value) in pairs {
            r.headers_mut().append(name, value);
        }
    }
    if let Some(text) = status {
        let digits: String = text.trim().chars().take_while(char::is_ascii_digit).collect();
        // A final answer's status: not 1xx (the body would be lost), not past 599.
        let status = digits.parse::<u16>().ok().filter(|n| (200..=599).contains(n));
        *r.status_mut() = status.and_then(|n| StatusCode::from_u16(n).ok()).ok_or_else(ApiError::bad_response_status)?;
    }
    Ok(())
}

/// A function's value in its own media type, as is (bytes came
/// base64-encoded).
fn raw(r: crate::db::Outcome, media: &crate::schema::MediaType) -> Response<Vec<u8>> {
    use base64::Engine;
    let (media, binary) = (media.name.as_str(), media.binary);
    let text = r.body.unwrap_or_default();
    let bytes = if binary {
        base64::engine::general_purpose::STANDARD.decode(text.replace('\n', "")).unwrap_or_default()
    } else {
        text.into_bytes()
    };
    let content_type = if media.starts_with("text/") { format!("{media}; charset=utf-8") } else { media.to_owned() };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .header("content-length", bytes.len())
        .body(bytes)
        .expect("valid headers")
}

/// A JSON value the database computed (the webhook's outcome).
pub fn called(r: crate::db::Outcome) -> Result<Response<Vec<u8>>, ApiError> {
    Ok(respond(StatusCode::OK, Some(r.body.unwrap_or_else(|| "null".into())), Format::Json, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_first_servable_type() {
        let negotiate = |a| negotiate(a, Offered::default());
        assert_eq!(negotiate(None).unwrap(), Format::Json);
        assert_eq!(negotiate(Some("text/html,application/xhtml+xml,*/*;q=0.8")).unwrap(), Format::Json);
        assert_eq!(negotiate(Some("text/csv")).unwrap(), Format::Csv);
        assert_eq!(negotiate(Some("application/vnd.pgrst.object+json")).unwrap(), Format::Object);
        assert_eq!(negotiate(Some("application/vnd.pgrst.array+json;nulls=stripped")).unwrap(), Format::Json);
        // q-values: the highest first; q=0 never.
        assert_eq!(negotiate(Some("application/json;q=0.5, text/csv")).unwrap(), Format::Csv);
        assert_eq!(negotiate(Some("text/csv;q=0, application/json;q=0.1")).unwrap(), Format::Json);
        assert!(negotiate(Some("text/csv;q=0")).is_err());
        // Plans only with db-plan-enabled.
        assert!(negotiate(Some("application/vnd.pgrst.plan+json")).is_err());
        let plan = super::negotiate(
            Some("application/vnd.pgrst.plan+json; for=\"application/vnd.pgrst.object\"; options=analyze|buffers"),
            Offered { plans: true, ..Offered::default() },
        )
        .unwrap();
        let Format::Plan(plan) = plan else { panic!("{plan:?}") };
        assert_eq!(plan.explain_options(), "FORMAT JSON, ANALYZE, BUFFERS");
        assert_eq!(
            plan.content_type(),
            "application/vnd.pgrst.plan+json; for=\"application/vnd.pgrst.object+json\"; options=analyze|buffers; charset=utf-8"
        );
        assert_eq!(
            super::negotiate(Some("application/vnd.pgrst.plan"), Offered { plans: true, ..Offered::default() }).unwrap(),
            Format::Plan(PlanFormat::default())
        );
        assert!(super::negotiate(Some("application/vnd.pgrst.plan; options=drop"), Offered { plans: true, ..Offered::default() }).is_err());
        assert!(negotiate(Some("application/geo+json")).is_err());
        assert_eq!(
            super::negotiate(Some("application/geo+json"), Offered { geojson: true, ..Offered::default() }).unwrap(),
            Format::GeoJson
        );
        // A function's own media type.
        assert_eq!(
            super::negotiate(Some("text/html"), Offered { own: &["text/plain", "text/html"], ..Offered::default() }).unwrap(),
            Format::Raw(1)
        );
        assert!(super::negotiate(Some("text/html"), Offered { own: &["text/plain"], ..Offered::default() }).is_err());
        assert!(strips_nulls(Some("application/vnd.pgrst.array+json;nulls=stripped")));
        assert!(strips_nulls(Some("application/vnd.pgrst.object+json; nulls=stripped")));
        assert!(!strips_nulls(Some("application/json")));
        let e = negotiate(Some("application/xml")).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code.as_ref()), (406, "PGRST107"));
    }

    #[test]
    fn error_body_has_postgrest_fields() {
        let r = ApiError::not_found_path("/nope").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["code"], "PGRST125");
        assert_eq!(body["hint"], Value::Null);
        assert!(body["details"].as_str().unwrap().contains("/nope"));
    }
}
