//! Operational endpoints. `/live`: the process is up and serving.
//! (`/ready` and `/metrics` join it when the proxy holds a pool and keys.)

use crate::response::{json, ApiError};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_answers_get_and_refuses_post() {
        assert_eq!(route("GET", "/live").unwrap().status(), StatusCode::OK);
        assert_eq!(route("POST", "/live").unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(route("GET", "/orders").is_none());
    }
}
