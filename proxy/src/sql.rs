//! Stage 4: a plan → one SQL statement. Identifiers come from the schema
//! cache and are quoted; every value is a bound parameter (sent as text
//! and cast to the column's or argument's type by Postgres).
//! Each statement returns one row: the JSON body as text, and a row count.

use crate::plan::{CallPlan, ReadPlan, Where};
use crate::request::{IsValue, Operand, Operator};

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

pub fn read(plan: &ReadPlan) -> Statement {
    let mut b = Builder { params: Vec::new() };
    let columns = if plan.select.is_empty() {
        "*".to_owned()
    } else {
        plan.select
            .iter()
            .map(|s| {
                let mut expr = ident(&s.column.name);
                if let Some(cast) = &s.cast {
                    expr = format!("{expr}::{cast}");
                }
                let name = s.alias.as_deref().unwrap_or(&s.column.name);
                format!("{expr} AS {}", ident(name))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut sql = format!("SELECT {columns} FROM {}.{}", ident(&plan.relation.schema), ident(&plan.relation.name));
    if !plan.filter.is_empty() {
        let conditions: Vec<String> = plan.filter.iter().map(|w| b.condition(w)).collect();
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
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
    Statement {
        sql: format!("SELECT coalesce(json_agg(_pgrst_row), '[]')::text, count(*) FROM ({sql}) _pgrst_row"),
        params: b.params,
    }
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
        format!("SELECT coalesce(json_agg(_pgrst_row), '[]')::text, count(*) FROM {call} _pgrst_row")
    } else if f.returns_composite {
        format!("SELECT to_json(_pgrst_row)::text, 1::bigint FROM {call} _pgrst_row")
    } else {
        format!("SELECT to_json({call})::text, 1::bigint")
    };
    Statement { sql, params: b.params }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;
    use crate::request::parse_query;
    use crate::schema::test_cache;
    use serde_json::json;

    fn read_sql(query: &str) -> Statement {
        read(&plan::read(&test_cache(), "orders", &parse_query(query, false).unwrap()).unwrap())
    }

    #[test]
    fn values_are_parameters_and_names_are_quoted() {
        let s = read_sql("select=order_number,total:total_amount::text&status=eq.x');DROP TABLE orders;--&user_id=in.(user_a,\"user_b\")&limit=5");
        assert_eq!(
            s.sql,
            "SELECT coalesce(json_agg(_pgrst_row), '[]')::text, count(*) FROM (SELECT \"order_number\" AS \"order_number\", \
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
            "SELECT to_json(_pgrst_row)::text, 1::bigint FROM \"public\".\"redeem_coupon\"(\"code\" := CAST($1 AS text), \"order_id\" := CAST($2 AS bigint)) _pgrst_row"
        );
        assert_eq!(s.params, [Some("SPRING".into()), Some("7".into())]);
    }
}
