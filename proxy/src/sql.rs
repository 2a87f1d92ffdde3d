//! Stage 4: a plan → one SQL statement. Identifiers come from the schema
//! cache and are quoted; every value is a bound parameter (sent as text
//! and cast to the column's or argument's type by Postgres).
//! Each statement returns one row: the JSON body as text (NULL when none
//! is wanted), the number of rows, and the total count when asked for.

use crate::plan::{CallPlan, ReadPlan, Selected, Where, WriteKind, WritePlan};
use crate::request::{IsValue, Operand, Operator, Return};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Option<String>>,
}

/// `"name"` with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

struct Builder {
    params: Vec<Option<String>>,
}

impl Builder {
    /// A placeholder for `value`, cast to `type_sql`.
    fn param(&mut self, value: Option<String>, type_sql: &str) -> String {
        self.params.push(value);
        format!("CAST(${} AS {type_sql})", self.params.len())
    }

    fn condition(&mut self, w: &Where) -> String {
        match w {
            Where::Compare { column, negated, op, operand } => {
                let col = ident(&column.name);
                let test = match (op, operand) {
                    (Operator::Is, Operand::Is(v)) => format!(
                        "{col} IS {}",
                        match v {
                            IsValue::Null => "NULL",
                            IsValue::True => "TRUE",
                            IsValue::False => "FALSE",
                            IsValue::Unknown => "UNKNOWN",
                        }
                    ),
                    (Operator::In, Operand::List(items)) => {
                        let array = array_literal(items);
                        format!("{col} = ANY({})", self.param(Some(array), &format!("{}[]", column.type_sql)))
                    }
                    (Operator::Like | Operator::Ilike, Operand::Single(v)) => {
                        let pattern = self.param(Some(v.replace('*', "%")), "text");
                        let like = if *op == Operator::Like { "LIKE" } else { "ILIKE" };
                        format!("{col}::text {like} {pattern}")
                    }
                    (_, Operand::Single(v)) => {
                        let sym = match op {
                            Operator::Eq => "=",
                            Operator::Neq => "<>",
                            Operator::Gt => ">",
                            Operator::Gte => ">=",
                            Operator::Lt => "<",
                            _ => "<=",
                        };
                        format!("{col} {sym} {}", self.param(Some(v.clone()), &column.type_sql))
                    }
                    _ => "false".to_owned(), // unreachable: the parser pairs operators and operands
                };
                if *negated { format!("NOT ({test})") } else { test }
            }
            Where::Group { any, negated, children } => {
                let joined = children.iter().map(|c| self.condition(c)).collect::<Vec<_>>().join(if *any { " OR " } else { " AND " });
                let group = if children.is_empty() { "true".to_owned() } else { format!("({joined})") };
                if *negated { format!("NOT {group}") } else { group }
            }
        }
    }
}

/// `{"a","b\"c"}`: a Postgres array literal of text items.
fn array_literal(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{}\"", i.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    format!("{{{}}}", quoted.join(","))
}

/// `a AS "a", b::text AS "alias"`, or `*`.
fn select_list(select: &[Selected]) -> String {
    if select.is_empty() {
        return "*".to_owned();
    }
    select
        .iter()
        .map(|s| {
            let mut expr = ident(&s.column.name);
            if let Some(cast) = &s.cast {
                expr = format!("{expr}::{cast}");
            }
            format!("{expr} AS {}", ident(s.alias.as_deref().unwrap_or(&s.column.name)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn where_clause(b: &mut Builder, filter: &[Where]) -> String {
    if filter.is_empty() {
        return String::new();
    }
    let conditions: Vec<String> = filter.iter().map(|w| b.condition(w)).collect();
    format!(" WHERE {}", conditions.join(" AND "))
}

const AGGREGATE: &str = "coalesce(json_agg(_pgrst_row), '[]')::text, count(*)";

/// `count_exact`: also count every row the filters match (for
/// `Content-Range: 0-9/123`), ignoring limit and offset.
pub fn read(plan: &ReadPlan, count_exact: bool) -> Statement {
    let mut b = Builder { params: Vec::new() };
    let source = format!("{}.{}{}", ident(&plan.relation.schema), ident(&plan.relation.name), where_clause(&mut b, &plan.filter));
    let mut sql = format!("SELECT {} FROM {source}", select_list(&plan.select));
    if !plan.order.is_empty() {
        let terms: Vec<String> = plan
            .order
            .iter()
            .map(|o| {
                let nulls = match o.nulls_first {
                    Some(true) => " NULLS FIRST",
                    Some(false) => " NULLS LAST",
                    None => "",
                };
                format!("{} {}{nulls}", ident(&o.column.name), if o.descending { "DESC" } else { "ASC" })
            })
            .collect();
        sql.push_str(&format!(" ORDER BY {}", terms.join(", ")));
    }
    if let Some(limit) = plan.limit {
        sql.push_str(&format!(" LIMIT {}", b.param(Some(limit.to_string()), "bigint")));
    }
    if let Some(offset) = plan.offset {
        sql.push_str(&format!(" OFFSET {}", b.param(Some(offset.to_string()), "bigint")));
    }
    let total = if count_exact { format!("(SELECT count(*) FROM {source})") } else { "NULL::bigint".to_owned() };
    Statement { sql: format!("SELECT {AGGREGATE}, {total} FROM ({sql}) _pgrst_row"), params: b.params }
}

pub fn write(plan: &WritePlan) -> Statement {
    let mut b = Builder { params: Vec::new() };
    let table = format!("{}.{}", ident(&plan.relation.schema), ident(&plan.relation.name));
    let names = |columns: &[crate::schema::Column]| columns.iter().map(|c| ident(&c.name)).collect::<Vec<_>>().join(", ");
    let change = match &plan.kind {
        WriteKind::Insert { columns, rows_json } => {
            let body = b.param(Some(rows_json.clone()), "json");
            format!("INSERT INTO {table} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{table}, {body})", cols = names(columns))
        }
        WriteKind::Update { columns, row_json } => {
            let body = b.param(Some(row_json.clone()), "json");
            let cols = names(columns);
            let filter = where_clause(&mut b, &plan.filter);
            format!("UPDATE {table} SET ({cols}) = (SELECT {cols} FROM json_populate_record(NULL::{table}, {body})){filter}")
        }
        WriteKind::Delete => format!("DELETE FROM {table}{}", where_clause(&mut b, &plan.filter)),
    };
    // return=representation needs the rows (and SELECT rights); otherwise
    // only how many there were.
    let sql = match plan.return_ {
        Return::Representation => format!(
            "WITH _pgrst_rows AS ({change} RETURNING *) SELECT {AGGREGATE}, NULL::bigint FROM (SELECT {} FROM _pgrst_rows) _pgrst_row",
            select_list(&plan.returning)
        ),
        // headers-only: the primary key, for the Location of a new row.
        Return::HeadersOnly if plan.relation.columns.iter().any(|c| c.primary_key) => {
            let keys: Vec<String> = plan.relation.columns.iter().filter(|c| c.primary_key).map(|c| ident(&c.name)).collect();
            format!(
                "WITH _pgrst_rows AS ({change} RETURNING {keys}) SELECT {AGGREGATE}, NULL::bigint FROM _pgrst_rows _pgrst_row",
                keys = keys.join(", ")
            )
        }
        Return::Minimal | Return::HeadersOnly => {
            format!("WITH _pgrst_rows AS ({change} RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _pgrst_rows")
        }
    };
    Statement { sql, params: b.params }
}

pub fn call(plan: &CallPlan) -> Statement {
    let mut b = Builder { params: Vec::new() };
    let args: Vec<String> = plan
        .args
        .iter()
        .map(|(a, v)| format!("{} := {}", ident(&a.name), b.param(v.clone(), &a.type_sql)))
        .collect();
    let f = &plan.function;
    let call = format!("{}.{}({})", ident(&f.schema), ident(&f.name), args.join(", "));
    let sql = if f.returns_set {
        format!("SELECT {AGGREGATE}, NULL::bigint FROM {call} _pgrst_row")
    } else if f.returns_composite {
        format!("SELECT to_json(_pgrst_row)::text, 1::bigint, NULL::bigint FROM {call} _pgrst_row")
    } else {
        format!("SELECT to_json({call})::text, 1::bigint, NULL::bigint")
    };
    Statement { sql, params: b.params }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;
    use crate::request::{parse_query, QueryParams};
    use crate::schema::test_cache;
    use serde_json::json;

    fn read_sql(query: &str) -> Statement {
        read(&plan::read(&test_cache(), "orders", &parse_query(query, false).unwrap()).unwrap(), false)
    }

    #[test]
    fn values_are_parameters_and_names_are_quoted() {
        let s = read_sql("select=order_number,total:total_amount::text&status=eq.x');DROP TABLE orders;--&user_id=in.(user_a,\"user_b\")&limit=5");
        assert_eq!(
            s.sql,
            "SELECT coalesce(json_agg(_pgrst_row), '[]')::text, count(*), NULL::bigint FROM (SELECT \"order_number\" AS \"order_number\", \
             \"total_amount\"::text AS \"total\" FROM \"public\".\"orders\" WHERE \"status\" = CAST($1 AS text) \
             AND \"user_id\" = ANY(CAST($2 AS clerk_user_id[])) LIMIT CAST($3 AS bigint)) _pgrst_row"
        );
        assert_eq!(s.params, [Some("x');DROP TABLE orders;--".into()), Some("{\"user_a\",\"user_b\"}".into()), Some("5".into())]);
    }

    #[test]
    fn operators_negation_groups_and_order() {
        let s = read_sql("or=(status.eq.a,and(total_amount.gte.10,notes.not.is.null))&order_number=not.like.ORD-*&order=created_at.desc.nullslast");
        assert!(s.sql.contains(
            "WHERE (\"status\" = CAST($1 AS text) OR (\"total_amount\" >= CAST($2 AS numeric(10,2)) AND NOT (\"notes\" IS NULL))) \
             AND NOT (\"order_number\"::text LIKE CAST($3 AS text)) ORDER BY \"created_at\" DESC NULLS LAST"
        ), "{}", s.sql);
        assert_eq!(s.params[2].as_deref(), Some("ORD-%"));
    }

    #[test]
    fn exact_count_reuses_the_filters() {
        let s = read(&plan::read(&test_cache(), "orders", &parse_query("status=eq.a&limit=1", false).unwrap()).unwrap(), true);
        assert!(s.sql.contains("(SELECT count(*) FROM \"public\".\"orders\" WHERE \"status\" = CAST($1 AS text))"), "{}", s.sql);
        assert_eq!(s.params.len(), 2);
    }

    #[test]
    fn writes_take_the_body_as_one_parameter() {
        let cache = test_cache();
        let q = parse_query("order_id=eq.7&select=status", false).unwrap();
        let p = plan::write(&cache, "orders", "PATCH", &q, br#"{"status": "x'; drop table orders; --"}"#, Return::Representation).unwrap();
        let s = write(&p);
        assert_eq!(
            s.sql,
            "WITH _pgrst_rows AS (UPDATE \"public\".\"orders\" SET (\"status\") = (SELECT \"status\" FROM json_populate_record(NULL::\"public\".\"orders\", CAST($1 AS json))) \
             WHERE \"order_id\" = CAST($2 AS bigint) RETURNING *) SELECT coalesce(json_agg(_pgrst_row), '[]')::text, count(*), NULL::bigint \
             FROM (SELECT \"status\" AS \"status\" FROM _pgrst_rows) _pgrst_row"
        );
        let insert = plan::write(&cache, "orders", "POST", &QueryParams::default(), br#"[{"status": "a"}, {"notes": "b"}]"#, Return::Minimal).unwrap();
        let s = write(&insert);
        assert!(s.sql.starts_with("WITH _pgrst_rows AS (INSERT INTO \"public\".\"orders\" (\"status\", \"notes\") SELECT \"status\", \"notes\" FROM json_populate_recordset"), "{}", s.sql);
        assert!(s.sql.ends_with("RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _pgrst_rows"));
        let e = plan::write(&cache, "orders", "POST", &QueryParams::default(), br#"{"password": 1}"#, Return::Minimal).unwrap_err();
        assert_eq!(e.code, "PGRST204");
        assert!(plan::write(&cache, "orders", "PATCH", &QueryParams::default(), b"{}", Return::Minimal).is_err());
        assert!(plan::write(&cache, "orders", "POST", &QueryParams::default(), b"[1]", Return::Minimal).is_err());
    }

    #[test]
    fn identifiers_cannot_break_out_of_quotes() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(array_literal(&["a\"b".into(), "c\\d".into()]), "{\"a\\\"b\",\"c\\\\d\"}");
    }

    #[test]
    fn function_calls_use_named_arguments() {
        let cache = test_cache();
        let p = plan::call(&cache, "redeem_coupon", json!({"order_id": 7, "code": "SPRING"}).as_object().unwrap()).unwrap();
        let s = call(&p);
        assert_eq!(
            s.sql,
            "SELECT to_json(_pgrst_row)::text, 1::bigint, NULL::bigint FROM \"public\".\"redeem_coupon\"(\"code\" := CAST($1 AS text), \"order_id\" := CAST($2 AS bigint)) _pgrst_row"
        );
        assert_eq!(s.params, [Some("SPRING".into()), Some("7".into())]);
    }
}
