//! The schema cache: the tables, views, columns and functions the API
//! exposes (`db-schemas`), read from the catalog at start-up. Every
//! identifier that reaches SQL comes from here.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// As `format_type` prints it: `clerk_user_id`, `numeric(10,2)`.
    pub type_sql: String,
    pub primary_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
}

impl Relation {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    pub name: String,
    pub type_sql: String,
    pub has_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub schema: String,
    pub name: String,
    pub args: Vec<Argument>,
    pub returns_set: bool,
    /// Returns a row type (composite): the response is an object (or array
    /// of objects for `setof`), not a scalar.
    pub returns_composite: bool,
    pub volatile: bool,
}

#[derive(Debug, Default)]
pub struct SchemaCache {
    /// The first of `db-schemas`: where unqualified names resolve.
    pub default_schema: String,
    relations: HashMap<String, Relation>,
    functions: HashMap<String, Vec<Function>>,
}

impl SchemaCache {
    pub fn new(default_schema: &str, relations: Vec<Relation>, functions: Vec<Function>) -> SchemaCache {
        let mut by_name: HashMap<String, Vec<Function>> = HashMap::new();
        for f in functions.into_iter().filter(|f| f.schema == default_schema) {
            by_name.entry(f.name.clone()).or_default().push(f);
        }
        SchemaCache {
            default_schema: default_schema.to_owned(),
            relations: relations.into_iter().filter(|r| r.schema == default_schema).map(|r| (r.name.clone(), r)).collect(),
            functions: by_name,
        }
    }

    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations.get(name)
    }

    /// The overloads of a function.
    pub fn functions(&self, name: &str) -> &[Function] {
        self.functions.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn relation_count(&self) -> usize {
        self.relations.len()
    }
}

/// The catalog query `db` runs to fill the cache: relations and columns
/// the API may expose, one row per column.
pub const RELATIONS_SQL: &str = "
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(a.attnum = ANY(pk.indkey), false)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
 WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND n.nspname = ANY($1::text[])
 ORDER BY n.nspname, c.relname, a.attnum";

/// Functions with named arguments, one row per function.
pub const FUNCTIONS_SQL: &str = "
SELECT n.nspname, p.proname,
       coalesce(p.proargnames[1:p.pronargs], '{}')::text[],
       ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t),
       p.pronargdefaults::int, p.proretset, t.typtype = 'c', p.provolatile = 'v'
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_type t ON t.oid = p.prorettype
 WHERE n.nspname = ANY($1::text[]) AND p.prokind = 'f'";

/// One row of `RELATIONS_SQL` at a time, grouped into relations.
pub fn group_columns(rows: impl IntoIterator<Item = (String, String, String, String, bool)>) -> Vec<Relation> {
    let mut out: Vec<Relation> = Vec::new();
    for (schema, name, column, type_sql, primary_key) in rows {
        let column = Column { name: column, type_sql, primary_key };
        match out.last_mut() {
            Some(r) if r.schema == schema && r.name == name => r.columns.push(column),
            _ => out.push(Relation { schema, name, columns: vec![column] }),
        }
    }
    out
}

/// A function from one `FUNCTIONS_SQL` row.
pub fn function_from_row(
    schema: String,
    name: String,
    arg_names: Vec<String>,
    arg_types: Vec<String>,
    n_defaults: i32,
    returns_set: bool,
    returns_composite: bool,
    volatile: bool,
) -> Function {
    let first_default = arg_types.len().saturating_sub(n_defaults.max(0) as usize);
    let args = arg_types
        .into_iter()
        .enumerate()
        .map(|(i, type_sql)| Argument { name: arg_names.get(i).cloned().unwrap_or_default(), type_sql, has_default: i >= first_default })
        .collect();
    Function { schema, name, args, returns_set, returns_composite, volatile }
}

#[cfg(test)]
pub fn test_cache() -> SchemaCache {
    let col = |n: &str, t: &str| Column { name: n.into(), type_sql: t.into(), primary_key: n == "order_id" };
    let orders = Relation {
        schema: "public".into(),
        name: "orders".into(),
        columns: vec![
            col("order_id", "bigint"),
            col("order_number", "text"),
            col("user_id", "clerk_user_id"),
            col("status", "text"),
            col("total_amount", "numeric(10,2)"),
            col("notes", "text"),
            col("created_at", "timestamp with time zone"),
        ],
    };
    let redeem = function_from_row(
        "public".into(),
        "redeem_coupon".into(),
        vec!["code".into(), "order_id".into()],
        vec!["text".into(), "bigint".into()],
        0,
        false,
        true,
        true,
    );
    SchemaCache::new("public", vec![orders], vec![redeem])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_catalog_rows() {
        let rows = vec![
            ("public".into(), "a".into(), "x".into(), "int".into(), true),
            ("public".into(), "a".into(), "y".into(), "text".into(), false),
            ("public".into(), "b".into(), "z".into(), "int".into(), false),
        ];
        let r = group_columns(rows);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].columns.len(), 2);
        assert!(r[0].columns[0].primary_key && !r[0].columns[1].primary_key);
    }

    #[test]
    fn defaults_are_the_trailing_arguments() {
        let f = function_from_row("public".into(), "f".into(), vec!["a".into(), "b".into()], vec!["int".into(), "int".into()], 1, false, false, true);
        assert!(!f.args[0].has_default && f.args[1].has_default);
    }

    #[test]
    fn only_the_default_schema_is_exposed() {
        let c = test_cache();
        assert!(c.relation("orders").is_some());
        assert!(c.relation("pg_class").is_none());
        assert_eq!(c.functions("redeem_coupon").len(), 1);
    }
}
