//! The OpenAPI 3 document served at `/`: the tables, views, columns and
//! functions of the schema cache, limited (with `openapi-mode =
//! follow-privileges`) to what the caller's role may use.

use crate::schema::{Column, Function, Relation, SchemaCache};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What the caller's role may do, from `PRIVILEGES_SQL`; None: everything
/// (`openapi-mode = ignore-privileges`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Privileges {
    /// Relation → [select, insert, update, delete].
    pub relations: BTreeMap<String, [bool; 4]>,
    pub functions: BTreeSet<String>,
}

/// Run as the caller's role, in the request's transaction; `$1` is the
/// exposed schema. One row: `{"relations": {name: [s,i,u,d]}, "functions": [names]}`.
pub const PRIVILEGES_SQL: &str = "
SELECT json_build_object(
  'relations', (SELECT coalesce(json_object_agg(c.relname, json_build_array(
                  has_any_column_privilege(c.oid, 'SELECT'), has_any_column_privilege(c.oid, 'INSERT'),
                  has_any_column_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'))), '{}')
                  FROM pg_class c
                 WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'v', 'm', 'f', 'p')),
  'functions', (SELECT coalesce(json_agg(DISTINCT p.proname), '[]')
                  FROM pg_proc p
                 WHERE p.pronamespace = $1::regnamespace AND p.prokind = 'f' AND has_function_privilege(p.oid, 'EXECUTE'))
)::text, 1::bigint, NULL::bigint";

impl Privileges {
    pub fn from_json(text: &str) -> Option<Privileges> {
        serde_json::from_str::<Value>(text).ok().map(|v| Privileges {
            relations: v["relations"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, flags)| {
                            let f = |i: usize| flags.get(i).and_then(Value::as_bool).unwrap_or(false);
                            (k.clone(), [f(0), f(1), f(2), f(3)])
                        })
                        .collect()
                })
                .unwrap_or_default(),
            functions: v["functions"]
                .as_array()
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        })
    }
}

/// The JSON Schema of a column or argument type.
fn type_schema(type_sql: &str) -> Value {
    if let Some(element) = type_sql.strip_suffix("[]") {
        return json!({"type": "array", "items": type_schema(element)});
    }
    let base = type_sql.split('(').next().unwrap_or(type_sql).trim();
    match base {
        "smallint" => json!({"type": "integer", "format": "int16"}),
        "integer" => json!({"type": "integer", "format": "int32"}),
        "bigint" => json!({"type": "integer", "format": "int64"}),
        "numeric" => json!({"type": "number", "format": type_sql}),
        "real" => json!({"type": "number", "format": "float"}),
        "double precision" => json!({"type": "number", "format": "double"}),
        "boolean" => json!({"type": "boolean"}),
        "json" | "jsonb" => json!({"description": format!("any JSON ({type_sql})")}),
        "timestamp with time zone" | "timestamp without time zone" => json!({"type": "string", "format": "date-time"}),
        "date" => json!({"type": "string", "format": "date"}),
        "uuid" => json!({"type": "string", "format": "uuid"}),
        "clerk_user_id" => json!({"type": "string", "format": "clerk_user_id", "pattern": "^user_[A-Za-z0-9]+$"}),
        "clerk_org_id" => json!({"type": "string", "format": "clerk_org_id", "pattern": "^org_[A-Za-z0-9]+$"}),
        "clerk_session_id" => json!({"type": "string", "format": "clerk_session_id", "pattern": "^sess_[A-Za-z0-9]+$"}),
        "character varying" | "character" => {
            let max = type_sql.split('(').nth(1).and_then(|n| n.trim_end_matches(')').parse::<u64>().ok());
            match max {
                Some(n) => json!({"type": "string", "maxLength": n}),
                None => json!({"type": "string"}),
            }
        }
        "text" => json!({"type": "string"}),
        _ => json!({"type": "string", "format": type_sql}),
    }
}

fn relation_schema(r: &Relation) -> Value {
    let properties: Map<String, Value> = r
        .columns
        .iter()
        .map(|c: &Column| {
            let mut s = type_schema(&c.type_sql);
            if c.nullable {
                s["nullable"] = json!(true);
            }
            if c.primary_key {
                s["description"] = json!("Primary key");
            }
            (c.name.clone(), s)
        })
        .collect();
    let required: Vec<&str> = r.columns.iter().filter(|c| !c.nullable && !c.has_default).map(|c| c.name.as_str()).collect();
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn reference(kind: &str, name: &str) -> Value {
    json!({"$ref": format!("#/components/{kind}/{}", name.replace('~', "~0").replace('/', "~1"))})
}

fn error_response() -> Value {
    json!({"description": "Error: PostgREST's {code, message, details, hint}", "content": {"application/json": {"schema": reference("schemas", "Error")}}})
}

fn relation_path(r: &Relation, can: [bool; 4], parameters: &mut Map<String, Value>) -> Value {
    let filters: Vec<Value> = r
        .columns
        .iter()
        .map(|c| {
            let name = format!("rowFilter.{}.{}", r.name, c.name);
            parameters.insert(
                name.clone(),
                json!({"name": c.name, "in": "query", "required": false, "schema": {"type": "string"},
                       "description": format!("Filter on {} ({}), e.g. eq.value, in.(a,b), is.null", c.name, c.type_sql)}),
            );
            reference("parameters", &name)
        })
        .collect();
    let rows = json!({"type": "array", "items": reference("schemas", &r.name)});
    let body = json!({"required": true, "content": {
        "application/json": {"schema": {"oneOf": [reference("schemas", &r.name), rows.clone()]}}}});
    let mut ops = Map::new();
    let with = |common: &[&str], extra: &[Value]| -> Vec<Value> {
        common.iter().map(|p| reference("parameters", p)).chain(extra.iter().cloned()).collect()
    };
    if can[0] {
        ops.insert(
            "get".into(),
            json!({
            "tags": [r.name], "summary": format!("Read {}", r.name),
            "parameters": with(&["select", "order", "limit", "offset", "range", "preferCount"], &filters),
            "responses": {
                "200": {"description": "The rows", "content": {
                    "application/json": {"schema": rows}, "text/csv": {"schema": {"type": "string"}},
                    "application/vnd.pgrst.object+json": {"schema": reference("schemas", &r.name)}}},
                "206": {"description": "Part of the rows (see Content-Range)"},
                "default": error_response()}}),
        );
    }
    if can[1] {
        ops.insert(
            "post".into(),
            json!({
            "tags": [r.name], "summary": format!("Insert (or upsert) {}", r.name),
            "parameters": with(&["select", "columns", "on_conflict", "preferPost"], &[]),
            "requestBody": body, "responses": {"201": {"description": "Created"}, "default": error_response()}}),
        );
    }
    if can[2] {
        ops.insert(
            "patch".into(),
            json!({
            "tags": [r.name], "summary": format!("Update {}", r.name),
            "parameters": with(&["select", "columns", "preferReturn"], &filters),
            "requestBody": {"required": true, "content": {"application/json": {"schema": reference("schemas", &r.name)}}},
            "responses": {"200": {"description": "The updated rows"}, "204": {"description": "Updated"}, "default": error_response()}}),
        );
    }
    if can[1] && can[2] && r.is_table && r.columns.iter().any(|c| c.primary_key) {
        ops.insert(
            "put".into(),
            json!({
            "tags": [r.name], "summary": format!("Insert or replace one {} row by primary key", r.name),
            "parameters": with(&["preferReturn"], &filters),
            "requestBody": {"required": true, "content": {"application/json": {"schema": reference("schemas", &r.name)}}},
            "responses": {"200": {"description": "The row"}, "204": {"description": "Upserted"}, "default": error_response()}}),
        );
    }
    if can[3] {
        ops.insert(
            "delete".into(),
            json!({
            "tags": [r.name], "summary": format!("Delete {}", r.name),
            "parameters": with(&["preferReturn"], &filters),
            "responses": {"200": {"description": "The deleted rows"}, "204": {"description": "Deleted"}, "default": error_response()}}),
        );
    }
    Value::Object(ops)
}

fn function_path(f: &Function) -> Value {
    let properties: Map<String, Value> = f.args.iter().map(|a| (a.name.clone(), type_schema(&a.type_sql))).collect();
    let required: Vec<&str> = f.args.iter().filter(|a| !a.has_default).map(|a| a.name.as_str()).collect();
    let result = json!({"200": {"description": "The function's result"}, "default": error_response()});
    let mut arguments = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        arguments["required"] = json!(required); // OpenAPI 3.0: never an empty list
    }
    let mut ops = Map::new();
    ops.insert(
        "post".into(),
        json!({
        "tags": ["(rpc) functions"], "summary": format!("Call {}", f.name),
        "requestBody": {"required": !required.is_empty(), "content": {"application/json": {"schema": arguments}}},
        "responses": result}),
    );
    if !f.volatile {
        let params: Vec<Value> = f
            .args
            .iter()
            .map(|a| json!({"name": a.name, "in": "query", "required": !a.has_default, "schema": type_schema(&a.type_sql)}))
            .collect();
        ops.insert("get".into(), json!({"tags": ["(rpc) functions"], "summary": format!("Call {} (read-only)", f.name), "parameters": params, "responses": result}));
    }
    Value::Object(ops)
}

/// The whole document. `server_url`: `openapi-server-proxy-uri`, or `/`.
pub fn document(cache: &SchemaCache, privileges: Option<&Privileges>, server_url: &str) -> Value {
    let mut parameters: Map<String, Value> = [
        ("select", "query", "Columns and embedded relations, e.g. id,name,order_items(quantity)"),
        ("order", "query", "Ordering, e.g. created_at.desc.nullslast,id"),
        ("limit", "query", "At most this many rows"),
        ("offset", "query", "Skip this many rows"),
        ("columns", "query", "The body keys to use, e.g. name,price"),
        ("on_conflict", "query", "The unique columns an upsert matches on"),
    ]
    .into_iter()
    .map(|(name, place, description)| {
        (name.to_owned(), json!({"name": name, "in": place, "required": false, "schema": {"type": "string"}, "description": description}))
    })
    .collect();
    let header = |description: &str, values: &[&str]| json!({"name": "Prefer", "in": "header", "required": false, "description": description, "schema": {"type": "string", "enum": values}});
    parameters.insert("range".into(), json!({"name": "Range", "in": "header", "required": false, "schema": {"type": "string"}, "description": "Rows to return, e.g. 0-24"}));
    parameters.insert(
        "preferCount".into(),
        header("Count the matching rows (Content-Range)", &["count=exact", "count=planned", "count=estimated"]),
    );
    parameters
        .insert("preferReturn".into(), header("What to answer with", &["return=minimal", "return=headers-only", "return=representation"]));
    parameters.insert(
        "preferPost".into(),
        header(
            "Upsert and answer",
            &["return=minimal", "return=representation", "resolution=merge-duplicates", "resolution=ignore-duplicates", "missing=default"],
        ),
    );

    let mut paths = Map::new();
    paths.insert(
        "/".into(),
        json!({"get": {"tags": ["introspection"], "summary": "This OpenAPI document",
        "responses": {"200": {"description": "OpenAPI 3", "content": {"application/openapi+json": {}}}}}}),
    );
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "details": {"type": "string", "nullable": true}, "hint": {"type": "string", "nullable": true}}}),
    );
    for r in cache.relations() {
        let can = match privileges {
            None => [true, true, r.is_table, r.is_table],
            Some(p) => p.relations.get(&r.name).copied().unwrap_or_default(),
        };
        if !can.contains(&true) {
            continue;
        }
        schemas.insert(r.name.clone(), relation_schema(r));
        paths.insert(format!("/{}", r.name), relation_path(r, can, &mut parameters));
    }
    for f in cache.all_functions() {
        if privileges.is_some_and(|p| !p.functions.contains(&f.name)) || paths.contains_key(&format!("/rpc/{}", f.name)) {
            continue;
        }
        paths.insert(format!("/rpc/{}", f.name), function_path(f));
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "clerk-proxy", "version": env!("CARGO_PKG_VERSION"),
                 "description": format!("PostgREST-compatible API over the '{}' schema, as the calling role sees it", cache.default_schema)},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": parameters,
            "securitySchemes": {"clerk": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                          "description": "A Clerk session token"}}},
        "security": [{"clerk": []}, {}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::test_cache;

    #[test]
    fn follows_privileges() {
        let cache = test_cache();
        let all = document(&cache, None, "/");
        assert_eq!(all["openapi"], "3.0.3");
        assert!(all["paths"]["/orders"]["delete"].is_object());
        assert!(all["paths"]["/rpc/redeem_coupon"]["post"].is_object());
        assert!(all["paths"]["/rpc/redeem_coupon"]["get"].is_null(), "volatile functions are POST only");
        assert_eq!(all["components"]["schemas"]["orders"]["properties"]["user_id"]["pattern"], "^user_[A-Za-z0-9]+$");
        assert_eq!(all["components"]["schemas"]["orders"]["properties"]["total_amount"]["type"], "number");

        let read_only = Privileges::from_json(r#"{"relations": {"products": [true, false, false, false]}, "functions": []}"#).unwrap();
        let doc = document(&cache, Some(&read_only), "https://api.example.com");
        assert!(doc["paths"]["/products"]["get"].is_object());
        assert!(doc["paths"]["/products"]["post"].is_null());
        assert!(doc["paths"]["/orders"].is_null());
        assert!(doc["components"]["schemas"]["orders"].is_null());
        assert!(doc["paths"]["/rpc/redeem_coupon"].is_null());
        assert_eq!(doc["servers"][0]["url"], "https://api.example.com");
    }

    #[test]
    fn types_map_to_json_schema() {
        assert_eq!(type_schema("bigint")["format"], "int64");
        assert_eq!(type_schema("character varying(40)")["maxLength"], 40);
        assert_eq!(type_schema("text[]")["items"]["type"], "string");
        assert_eq!(type_schema("timestamp with time zone")["format"], "date-time");
    }
}
