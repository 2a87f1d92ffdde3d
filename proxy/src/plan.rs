//! Stage 3: an `ApiRequest` resolved against the schema cache. Unknown
//! tables, columns, functions and arguments are refused here, before any
//! SQL exists; what comes out names only things the cache holds.

use crate::request::{Condition, Operand, Operator, QueryParams, Return};
use crate::response::ApiError;
use crate::schema::{Argument, Column, Function, Relation, SchemaCache};
use http::StatusCode;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    pub column: Column,
    pub alias: Option<String>,
    pub cast: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Where {
    Compare { column: Column, negated: bool, op: Operator, operand: Operand },
    Group { any: bool, negated: bool, children: Vec<Where> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ordering {
    pub column: Column,
    pub descending: bool,
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    pub relation: Relation,
    /// Empty: every column.
    pub select: Vec<Selected>,
    pub filter: Vec<Where>,
    pub order: Vec<Ordering>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteKind {
    /// Rows as a JSON array; `columns`: every key any row has.
    Insert { columns: Vec<Column>, rows_json: String },
    /// One JSON object; `columns`: its keys.
    Update { columns: Vec<Column>, row_json: String },
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WritePlan {
    pub relation: Relation,
    pub kind: WriteKind,
    pub filter: Vec<Where>,
    /// What `return=representation` returns (empty: every column).
    pub returning: Vec<Selected>,
    pub return_: Return,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    pub function: Function,
    /// Argument and its value as text (NULL: JSON null).
    pub args: Vec<(Argument, Option<String>)>,
}

pub fn read(cache: &SchemaCache, name: &str, q: &QueryParams) -> Result<ReadPlan, ApiError> {
    let relation = cache.relation(name).ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        code: "PGRST205".into(),
        message: format!("Could not find the table '{}.{name}' in the schema cache", cache.default_schema),
        details: None,
        hint: None,
        www_authenticate: None,
    })?;
    let column = |n: &str| column_of(relation, n);
    let select = q
        .select
        .iter()
        .filter(|s| s.column != "*" || s.alias.is_some() || s.cast.is_some())
        .map(|s| Ok(Selected { column: column(&s.column)?, alias: s.alias.clone(), cast: s.cast.clone() }))
        .collect::<Result<_, ApiError>>()?;
    Ok(ReadPlan {
        relation: relation.clone(),
        select,
        filter: q.conditions.iter().map(|c| resolve(relation, c)).collect::<Result<_, _>>()?,
        order: q
            .order
            .iter()
            .map(|o| Ok(Ordering { column: column(&o.column)?, descending: o.descending, nulls_first: o.nulls_first }))
            .collect::<Result<_, ApiError>>()?,
        limit: q.limit,
        offset: q.offset,
    })
}

fn column_of(relation: &Relation, name: &str) -> Result<Column, ApiError> {
    relation.column(name).cloned().ok_or_else(|| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "42703".into(),
        message: format!("column {}.{name} does not exist", relation.name),
        details: None,
        hint: Some(format!(
            "Columns of {}: {}",
            relation.name,
            relation.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        )),
        www_authenticate: None,
    })
}

fn resolve(relation: &Relation, c: &Condition) -> Result<Where, ApiError> {
    Ok(match c {
        Condition::Filter { column, negated, op, operand } => {
            Where::Compare { column: column_of(relation, column)?, negated: *negated, op: *op, operand: operand.clone() }
        }
        Condition::Group { any, negated, children } => Where::Group {
            any: *any,
            negated: *negated,
            children: children.iter().map(|c| resolve(relation, c)).collect::<Result<_, _>>()?,
        },
    })
}

/// `POST` (insert), `PATCH` (update) or `DELETE` on a table.
pub fn write(cache: &SchemaCache, name: &str, method: &str, q: &QueryParams, body: &[u8], return_: Return) -> Result<WritePlan, ApiError> {
    let read = read(cache, name, q)?;
    let relation = read.relation;
    let body_error = |message: &str, details: Option<String>| ApiError::bad_request("PGRST102", message.to_owned(), details);
    let parse_body = || -> Result<Value, ApiError> {
        serde_json::from_slice(body).map_err(|e| body_error("Empty or invalid json", Some(e.to_string())))
    };
    let columns_of = |keys: Vec<&String>| -> Result<Vec<Column>, ApiError> {
        keys.into_iter()
            .map(|k| {
                relation.column(k).cloned().ok_or_else(|| ApiError {
                    status: StatusCode::BAD_REQUEST,
                    code: "PGRST204".into(),
                    message: format!("Could not find the '{k}' column of '{}' in the schema cache", relation.name),
                    details: None,
                    hint: None,
                    www_authenticate: None,
                })
            })
            .collect()
    };
    let kind = match method {
        "POST" => {
            let rows = match parse_body()? {
                Value::Array(rows) => rows,
                object @ Value::Object(_) => vec![object],
                _ => return Err(body_error("The body must be a JSON object or an array of objects", None)),
            };
            let mut keys: Vec<&String> = Vec::new();
            for row in &rows {
                let Value::Object(m) = row else {
                    return Err(body_error("Every element of the array must be a JSON object", None));
                };
                for k in m.keys() {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
            let columns = columns_of(keys)?;
            WriteKind::Insert { columns, rows_json: Value::Array(rows).to_string() }
        }
        "PATCH" => {
            let row = parse_body()?;
            let Value::Object(m) = &row else {
                return Err(body_error("The body of a PATCH must be a JSON object", None));
            };
            if m.is_empty() {
                return Err(body_error("The body of a PATCH names no column to change", None));
            }
            WriteKind::Update { columns: columns_of(m.keys().collect())?, row_json: row.to_string() }
        }
        _ => WriteKind::Delete,
    };
    Ok(WritePlan { relation, kind, filter: read.filter, returning: read.select, return_ })
}

/// A function call with named arguments (a JSON object, or query pairs).
pub fn call(cache: &SchemaCache, name: &str, given: &Map<String, Value>) -> Result<CallPlan, ApiError> {
    let fits = |f: &&Function| {
        given.keys().all(|k| f.args.iter().any(|a| &a.name == k))
            && f.args.iter().all(|a| a.has_default || given.contains_key(&a.name))
    };
    let function = cache.functions(name).iter().find(fits).ok_or_else(|| {
        let mut keys: Vec<&str> = given.keys().map(String::as_str).collect();
        keys.sort_unstable();
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "PGRST202".into(),
            message: format!("Could not find the function {}.{name}({}) in the schema cache", cache.default_schema, keys.join(", ")),
            details: None,
            hint: cache.functions(name).first().map(|f| {
                let args: Vec<String> = f.args.iter().map(|a| format!("{} {}", a.name, a.type_sql)).collect();
                format!("{name} takes ({})", args.join(", "))
            }),
            www_authenticate: None,
        }
    })?;
    let args = function
        .args
        .iter()
        .filter_map(|a| {
            given.get(&a.name).map(|v| {
                let text = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
                (a.clone(), text)
            })
        })
        .collect();
    Ok(CallPlan { function: function.clone(), args })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_query;
    use crate::schema::test_cache;
    use serde_json::json;

    #[test]
    fn resolves_known_names() {
        let q = parse_query("select=order_number,total:total_amount&status=eq.pending&order=created_at.desc", false).unwrap();
        let p = read(&test_cache(), "orders", &q).unwrap();
        assert_eq!(p.select[1].column.type_sql, "numeric(10,2)");
        assert_eq!(p.order[0].column.name, "created_at");
    }

    #[test]
    fn unknown_names_are_refused_before_sql() {
        let cache = test_cache();
        let e = read(&cache, "nope", &QueryParams::default()).unwrap_err();
        assert_eq!((e.status, e.code.as_ref()), (StatusCode::NOT_FOUND, "PGRST205"));
        for query in ["select=password", "secret=eq.1", "order=nope.desc", "or=(status.eq.a,nope.eq.b)"] {
            let e = read(&cache, "orders", &parse_query(query, false).unwrap()).unwrap_err();
            assert_eq!((e.status, e.code.as_ref()), (StatusCode::BAD_REQUEST, "42703"), "{query}");
        }
    }

    #[test]
    fn calls_match_named_arguments() {
        let cache = test_cache();
        let args = json!({"code": "SPRING", "order_id": 42}).as_object().unwrap().clone();
        let p = call(&cache, "redeem_coupon", &args).unwrap();
        assert_eq!(p.args[1].1.as_deref(), Some("42"));
        let missing = json!({"code": "SPRING"}).as_object().unwrap().clone();
        let e = call(&cache, "redeem_coupon", &missing).unwrap_err();
        assert_eq!(e.code, "PGRST202");
        assert!(e.hint.unwrap().contains("order_id bigint"));
        let extra = json!({"code": "A", "order_id": 1, "drop": 1}).as_object().unwrap().clone();
        assert!(call(&cache, "redeem_coupon", &extra).is_err());
    }
}
