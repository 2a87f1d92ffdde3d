//! HTTP responses, and the one place that shapes error bodies: PostgREST's
//! `{code, message, details, hint}`, so postgrest-js reports them as usual.

use http::{Response, StatusCode};
use serde_json::{json, Value};

pub fn json(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let body = body.to_string().into_bytes();
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("content-length", body.len())
        .body(body)
        .expect("static headers are valid")
}

/// An API error: what went wrong, for whom to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
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
            code: "PGRST125",
            message: "Invalid path specified in request URL".into(),
            details: Some(format!("No endpoint at {path}")),
            hint: None,
            www_authenticate: None,
        }
    }

    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "PGRST117",
            message: format!("Unsupported HTTP method: {method}"),
            details: Some(format!("{path} accepts GET and HEAD")),
            hint: None,
            www_authenticate: None,
        }
    }

    pub fn into_response(self) -> Response<Vec<u8>> {
        let mut response = json(
            self.status,
            &json!({"code": self.code, "message": self.message, "details": self.details, "hint": self.hint}),
        );
        if let Some(challenge) = self.www_authenticate.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
