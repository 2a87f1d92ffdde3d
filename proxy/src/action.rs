//! Stage 2: the HTTP request read as what it asks for, before any name is
//! checked against the schema: the method and path as an `Action`, then
//! (once the caller is known) the exposed schema it addresses, its query,
//! `Prefer`, `Range` and the negotiated media type as an `ApiRequest`.
//! Nothing here touches the database.

use crate::api::HttpRequest;
use crate::error::ApiError;
use crate::request::{self, Prefer, QueryParams, Target};
use crate::response::{self, Format};
use crate::schema::{SchemaCache, Schemas};
use std::sync::Arc;

/// The HTTP methods the API answers; anything else is 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub fn parse(method: &str) -> Option<Method> {
        Some(match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// GET and HEAD: they name their schema with `Accept-Profile`, the
    /// others with `Content-Profile` (PostgREST's rule).
    pub fn reads(self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }
}

/// What a write to a table or view does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    /// `POST`: insert, or upsert with `Prefer: resolution=…`.
    Insert,
    /// `PUT`: insert or replace one row, named by its primary key.
    Upsert,
    /// `PATCH`
    Update,
    /// `DELETE`
    Delete,
}

/// How a function is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMethod {
    /// `GET` (or `HEAD`, `head`): arguments from the query, run read-only.
    Read { head: bool },
    /// `POST`: arguments from the body.
    Post,
}

/// The method on the path, as one of the things the API does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `GET /`: the OpenAPI document of the schema.
    OpenApi {
        head: bool,
    },
    Read {
        relation: String,
        head: bool,
    },
    Write {
        relation: String,
        method: WriteMethod,
    },
    Call {
        function: String,
        method: CallMethod,
    },
    /// `OPTIONS` on a path: what it allows.
    Options {
        target: Option<Target>,
    },
}

impl Action {
    /// 404 for a path that names nothing, 405 for a method the path
    /// cannot take.
    pub fn from_http(method: &str, path: &str) -> Result<Action, ApiError> {
        let target = match path {
            "/" => None,
            path => Some(request::parse_target(path).ok_or_else(|| ApiError::not_found_path(path))?),
        };
        let not_allowed = || ApiError::method_not_allowed(method, path);
        let rpc_refuses = || ApiError::invalid_rpc_method(method);
        let Some(method) = Method::parse(method) else {
            return Err(if matches!(target, Some(Target::Rpc(_))) { rpc_refuses() } else { not_allowed() });
        };
        Ok(match (method, target) {
            (Method::Options, target) => Action::Options { target },
            (Method::Get | Method::Head, None) => Action::OpenApi { head: method == Method::Head },
            (Method::Get | Method::Head, Some(Target::Relation(relation))) => Action::Read { relation, head: method == Method::Head },
            (Method::Get | Method::Head, Some(Target::Rpc(function))) => {
                Action::Call { function, method: CallMethod::Read { head: method == Method::Head } }
            }
            (Method::Post, Some(Target::Rpc(function))) => Action::Call { function, method: CallMethod::Post },
            (Method::Post, Some(Target::Relation(relation))) => Action::Write { relation, method: WriteMethod::Insert },
            (Method::Put, Some(Target::Relation(relation))) => Action::Write { relation, method: WriteMethod::Upsert },
            (Method::Patch, Some(Target::Relation(relation))) => Action::Write { relation, method: WriteMethod::Update },
            (Method::Delete, Some(Target::Relation(relation))) => Action::Write { relation, method: WriteMethod::Delete },
            (Method::Put | Method::Patch | Method::Delete, Some(Target::Rpc(_))) => return Err(rpc_refuses()),
            (Method::Post | Method::Put | Method::Patch | Method::Delete, None) => return Err(not_allowed()),
        })
    }

    /// Whether the request names its schema with `Accept-Profile`.
    fn reads(&self) -> bool {
        match self {
            Action::OpenApi { .. } | Action::Read { .. } => true,
            Action::Call { method, .. } => matches!(method, CallMethod::Read { .. }),
            Action::Write { .. } | Action::Options { .. } => false,
        }
    }

    /// HEAD: the headers of the GET, no body.
    pub fn head(&self) -> bool {
        matches!(
            self,
            Action::OpenApi { head: true } | Action::Read { head: true, .. } | Action::Call { method: CallMethod::Read { head: true }, .. }
        )
    }
}

/// A request, read: everything the plan needs, checked for syntax only.
pub struct ApiRequest {
    pub action: Action,
    /// The exposed schema it addresses (its profile, else the first).
    pub schema: Arc<SchemaCache>,
    pub query: QueryParams,
    pub prefer: Prefer,
    pub format: Format,
    /// `;nulls=stripped` on the JSON media type.
    pub strip_nulls: bool,
    /// `Range: a-b`: (offset, limit).
    pub range: Option<(u64, Option<u64>)>,
    /// The media type of the target's own the client asked for (`Format::Raw`).
    pub own_media: Option<OwnMedia>,
}

/// A media type a target answers in as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnMedia {
    pub media: crate::schema::MediaType,
    /// For a read: the handler aggregate, and whether it takes the
    /// relation's row type (else any).
    pub aggregate: Option<(String, bool)>,
}

impl ApiRequest {
    /// `options`: `db-allow-exact-count` (off: exact counts are estimated)
    /// and `db-plan-enabled`.
    pub fn read(action: Action, http: &HttpRequest, schemas: &Schemas, options: &crate::api::ApiOptions) -> Result<ApiRequest, ApiError> {
        let header = |name: &str| http.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        // Every `Prefer` header counts, in order (PostgREST joins them).
        let prefer_headers: Vec<&str> = http.headers.iter().filter(|(n, _)| n == "prefer").map(|(_, v)| v.as_str()).collect();
        let profile = header(if action.reads() { "accept-profile" } else { "content-profile" }).map(str::trim);
        let schema = schemas.profile(profile).ok_or_else(|| ApiError::invalid_schema(profile.unwrap_or_default(), &schemas.names()))?;
        // Only a GET (or HEAD) call takes its arguments from the query; a
        // POST's query has filters only, as PostgREST parses it.
        let args_in_query = matches!(action, Action::Call { method: CallMethod::Read { .. }, .. });
        let query = request::parse_query(&http.query, args_in_query).map_err(ApiError::parse)?;
        let prefer_header = prefer_headers.join(", ");
        let mut prefer = request::parse_prefer((!prefer_headers.is_empty()).then_some(prefer_header.as_str()));
        // A time zone the database does not know is a preference not understood.
        if let Some(tz) = prefer.timezone.take() {
            if schema.knows_timezone(&tz) {
                prefer.timezone = Some(tz);
            } else {
                prefer.unknown.push(format!("timezone={tz}"));
            }
        }
        if prefer.strict && !prefer.unknown.is_empty() {
            return Err(ApiError::invalid_preferences(&prefer.unknown));
        }
        if prefer.count == Some(request::Count::Exact) && !options.allow_exact_count {
            prefer.count = Some(request::Count::Estimated);
        }
        let accept = header("accept");
        // Media types of the target's own: a function returning a domain
        // named after one, or a handler aggregate of the relation read.
        let own: Vec<OwnMedia> = match &action {
            Action::Call { function, .. } => schema
                .functions(function)
                .iter()
                .find_map(|f| f.media_type.clone())
                .map(|media| OwnMedia { media, aggregate: None })
                .into_iter()
                .collect(),
            Action::Read { relation, .. } => {
                let all_columns =
                    query.select.is_empty() && query.embeds.is_empty() || query.select.iter().all(|s| s.column == "*" && s.alias.is_none());
                schema
                    .media_handlers(relation, all_columns && query.embeds.is_empty())
                    .into_iter()
                    .map(|h| OwnMedia { media: h.media.clone(), aggregate: Some((h.aggregate.clone(), h.relation.is_some())) })
                    .collect()
            }
            _ => Vec::new(),
        };
        let names: Vec<&str> = own.iter().map(|o| o.media.name.as_str()).collect();
        let offered = response::Offered { plans: options.plans_enabled, geojson: schema.geojson().is_some(), own: &names };
        let format = response::negotiate(accept, offered)?;
        let own_media = match format {
            Format::Raw(i) => own.get(i).cloned(),
            _ => None,
        };
        // The OpenAPI document is JSON only.
        if format != Format::Json && matches!(action, Action::OpenApi { .. }) {
            return Err(crate::error::not_acceptable(accept.unwrap_or_default()));
        }
        // Range is for GET only, as PostgREST reads it (not HEAD, not writes).
        let gets = matches!(action, Action::Read { head: false, .. } | Action::Call { method: CallMethod::Read { head: false }, .. });
        let range = match (header("range"), gets) {
            (Some(range), true) => Some(request::parse_range(range).map_err(ApiError::parse)?),
            _ => None,
        };
        Ok(ApiRequest { action, schema, query, prefer, format, strip_nulls: response::strips_nulls(header("accept")), range, own_media })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_paths_become_actions() {
        assert_eq!(Action::from_http("GET", "/").unwrap(), Action::OpenApi { head: false });
        assert_eq!(Action::from_http("HEAD", "/orders").unwrap(), Action::Read { relation: "orders".into(), head: true });
        assert_eq!(Action::from_http("PUT", "/orders").unwrap(), Action::Write { relation: "orders".into(), method: WriteMethod::Upsert });
        assert_eq!(
            Action::from_http("GET", "/rpc/f").unwrap(),
            Action::Call { function: "f".into(), method: CallMethod::Read { head: false } }
        );
        assert_eq!(Action::from_http("OPTIONS", "/").unwrap(), Action::Options { target: None });
        for (method, path) in [("DELETE", "/"), ("TRACE", "/orders"), ("POST", "/")] {
            assert_eq!(Action::from_http(method, path).unwrap_err().code, "PGRST117", "{method} {path}");
        }
        // PostgREST's RpcSpec: other methods on a function.
        for method in ["PATCH", "PUT", "DELETE", "TRACE"] {
            let e = Action::from_http(method, "/rpc/f").unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code.as_ref(), e.message),
                (405, "PGRST101", format!("Cannot use the {method} method on RPC"))
            );
        }
        assert_eq!(Action::from_http("GET", "/a/b").unwrap_err().code, "PGRST125");
    }
}
