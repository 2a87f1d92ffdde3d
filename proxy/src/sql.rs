//! Stage 4: a plan → one SQL statement. Identifiers come from the schema
//! cache and are quoted; every value is a bound parameter (sent as text
//! and cast to the column's or argument's type by Postgres).
//! Each statement returns one row: the JSON body as text (NULL when none
//! is wanted), the number of rows, and the total count when asked for (a
//! write: how many rows an upsert inserted).

use crate::plan::{
    ArgValue, Body, CallPlan, EmbedPlan, Limited, Link, Ordering, ReadPlan, RowMatch, Selected, Where, WriteKind, WritePlan, SCALAR_COLUMN,
};
use crate::request::{AggregateFn, Count, Filter, IsValue, JsonKey, JsonStep, PatternOp, QuantifiedOp, Resolution, Return};
use crate::schema::{Column, Returns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Option<String>>,
    /// `EXPLAIN` of the rows a read matches, for planned counts, and how
    /// many of `params` it uses.
    pub explain: Option<(String, usize)>,
    /// The statement is an `EXPLAIN` whose output is the body (JSON or text).
    pub plan_json: Option<bool>,
}

impl Statement {
    pub fn new(sql: String, params: Vec<Option<String>>) -> Statement {
        Statement { sql, params, explain: None, plan_json: None }
    }
}

/// A `like`/`ilike` pattern with PostgREST's `*` for `%`; regular
/// expressions as given.
fn pattern(op: PatternOp, value: &str) -> String {
    match op {
        PatternOp::Like | PatternOp::Ilike => value.replace('*', "%"),
        PatternOp::Match | PatternOp::Imatch => value.to_owned(),
    }
}

/// `"name"` with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The alias of the relation read at embedding depth `depth`.
fn alias(depth: usize) -> String {
    format!("_pgrst_t{depth}")
}

/// `alias."column"`, or `"column"` when `alias` is empty.
fn column_ref(alias: &str, name: &str) -> String {
    if alias.is_empty() {
        ident(name)
    } else {
        format!("{alias}.{}", ident(name))
    }
}

#[derive(Default)]
struct Builder {
    params: Vec<Option<String>>,
    /// How a row read from a CTE (a write's `RETURNING`, a call's result)
    /// becomes the relation's row type again, for computed columns.
    row_cast: Option<RowCast>,
    /// A function call read as a relation: run once, in this CTE, whatever
    /// reads its rows (the rows answered and the count).
    call_cte: Option<String>,
}

enum RowCast {
    /// The CTE's row has the relation's columns: `alias::type`.
    Whole(String),
    /// It has more: `ROW(alias."a", …)::type` of these columns.
    Columns(String, Vec<String>),
}

impl Builder {
    /// A placeholder for `value`, cast to `type_sql`.
    fn param(&mut self, value: Option<String>, type_sql: &str) -> String {
        self.params.push(value);
        format!("CAST(${} AS {type_sql})", self.params.len())
    }

    /// A column, or a JSON path into it (through `to_jsonb`, as PostgREST
    /// does, so json, jsonb and any other type work); keys and indexes are
    /// parameters.
    fn field(&mut self, alias: &str, column: &Column, path: &[JsonStep]) -> String {
        let col = match &column.computed_by {
            // A computed column: its function applied to the row.
            Some(schema) => {
                let row = match &self.row_cast {
                    None => alias.to_owned(),
                    Some(RowCast::Whole(row_type)) => format!("{alias}::{row_type}"),
                    Some(RowCast::Columns(row_type, columns)) => {
                        format!("ROW({})::{row_type}", columns.iter().map(|c| column_ref(alias, c)).collect::<Vec<_>>().join(", "))
                    }
                };
                format!("{}.{}({row})", ident(schema), ident(&column.name))
            }
            None => column_ref(alias, &column.name),
        };
        if path.is_empty() {
            return col;
        }
        let mut out = format!("to_jsonb({col})");
        for step in path {
            let arrow = if step.as_text { "->>" } else { "->" };
            let key = match &step.key {
                JsonKey::Name(k) => self.param(Some(k.clone()), "text"),
                JsonKey::Index(i) => self.param(Some(i.to_string()), "integer"),
            };
            out = format!("{out}{arrow}{key}");
        }
        out
    }

    fn condition(&mut self, w: &Where, depth: usize) -> String {
        let alias = &alias(depth);
        match w {
            Where::Related { embed, exists } => {
                let source = self.source(&embed.read, depth + 1, Some(&embed.link));
                format!("{}EXISTS (SELECT 1 FROM {source})", if *exists { "" } else { "NOT " })
            }
            Where::Filter { column, path, negated, filter } => {
                let col = self.field(alias, column, path);
                // What a filter value is read as: the column's type, or
                // text after `->>` and jsonb after `->`.
                let value_type = match path.last() {
                    None => column.value_type.as_str(),
                    Some(step) if step.as_text => "text",
                    Some(_) => "jsonb",
                };
                // A string type keeps its own LIKE (citext's ignores case);
                // another type is matched as its text, as PostgREST matches it.
                let string = ["text", "character varying", "bpchar", "name"].contains(&value_type) || value_type.ends_with("citext");
                let text = if string { col.clone() } else { format!("{col}::text") };
                let test = match filter {
                    Filter::Compare(op, v) => format!("{col} {} {}", op.sql(), self.param(Some(v.clone()), value_type)),
                    Filter::Pattern(op, v) => format!("{text} {} {}", op.sql(), self.param(Some(pattern(*op, v)), "text")),
                    Filter::Quantified { op, all, values } => {
                        let quantifier = if *all { "ALL" } else { "ANY" };
                        match op {
                            QuantifiedOp::Compare(op) => {
                                let array = self.param(Some(array_literal(values)), &format!("{value_type}[]"));
                                format!("{col} {} {quantifier}({array})", op.sql())
                            }
                            QuantifiedOp::Pattern(op) => {
                                let patterns: Vec<String> = values.iter().map(|v| pattern(*op, v)).collect();
                                format!("{text} {} {quantifier}({})", op.sql(), self.param(Some(array_literal(&patterns)), "text[]"))
                            }
                        }
                    }
                    Filter::In(items) => {
                        let array = array_literal(items);
                        format!("{col} = ANY({})", self.param(Some(array), &format!("{value_type}[]")))
                    }
                    Filter::Is(v) => format!(
                        "{col} IS {}",
                        match v {
                            IsValue::Null => "NULL",
                            IsValue::NotNull => "NOT NULL",
                            IsValue::True => "TRUE",
                            IsValue::False => "FALSE",
                            IsValue::Unknown => "UNKNOWN",
                        }
                    ),
                    Filter::Fts { kind, language, query } => {
                        // A tsvector column as it is; text (or json) through to_tsvector, as PostgREST does.
                        let config = language.as_ref().map(|l| format!("{}, ", self.param(Some(l.clone()), "regconfig")));
                        let config = config.unwrap_or_default();
                        let vector = if value_type == "tsvector" { col.clone() } else { format!("to_tsvector({config}{col})") };
                        format!("{vector} @@ {}({config}{})", kind.function(), self.param(Some(query.clone()), "text"))
                    }
                    Filter::Set(op, v) => format!("{col} {} {}", op.sql(), self.param(Some(v.clone()), value_type)),
                };
                if *negated {
                    format!("NOT ({test})")
                } else {
                    test
                }
            }
            Where::Group { any, negated, children } => {
                let joined =
                    children.iter().map(|c| self.condition(c, depth)).collect::<Vec<_>>().join(if *any { " OR " } else { " AND " });
                let group = if children.is_empty() { "true".to_owned() } else { format!("({joined})") };
                if *negated {
                    format!("NOT {group}")
                } else {
                    group
                }
            }
        }
    }

    /// ` WHERE …` of `filter` plus `extra` tests, or nothing.
    fn where_clause(&mut self, filter: &[Where], depth: usize, extra: Vec<String>) -> String {
        let mut tests: Vec<String> = filter.iter().map(|w| self.condition(w, depth)).collect();
        tests.extend(extra);
        if tests.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", tests.join(" AND "))
        }
    }

    /// What a level answers, read from `alias` (depth `depth`): every
    /// column when `all_columns`, the selected items, then one correlated
    /// subquery per embed that is answered (not `rel()`), or the columns of
    /// a spread embed.
    fn select_list(&mut self, all_columns: bool, select: &[Selected], embeds: &[EmbedPlan], depth: usize) -> String {
        let from = alias(depth);
        let mut items: Vec<String> = Vec::new();
        if all_columns {
            items.push(format!("{from}.*"));
        }
        for s in select {
            items.push(format!("{} AS {}", self.selected(&from, s), ident(s.output_name())));
        }
        for (name, expr) in self.embedded_items(embeds, depth) {
            items.push(format!("{expr} AS {}", ident(&name)));
        }
        items.join(", ")
    }

    /// A selected item's expression: the column (or JSON path) with its
    /// cast, in its aggregate with the result's cast.
    fn selected(&mut self, from: &str, s: &Selected) -> String {
        let value = |b: &mut Builder| {
            let expr = b.field(from, &s.column, &s.path);
            match &s.cast {
                // A JSON path binds looser than `::`.
                Some(cast) if s.path.is_empty() => format!("{expr}::{cast}"),
                Some(cast) => format!("({expr})::{cast}"),
                None => expr,
            }
        };
        match &s.aggregate {
            None => value(self),
            Some((function, cast)) => {
                let call = match function {
                    AggregateFn::CountRows => "count(*)".to_owned(),
                    f => format!("{}({})", f.name(), value(self)),
                };
                match cast {
                    Some(cast) => format!("({call})::{cast}"),
                    None => call,
                }
            }
        }
    }

    /// ` GROUP BY …` when the level aggregates: every other selected item
    /// (by position, so a JSON path's bound keys match), and for each embed
    /// or spread the outer columns it is joined on (it is one value per
    /// those: JSON values cannot be grouped themselves).
    fn group_by(
        &mut self,
        relation: &crate::schema::Relation,
        all_columns: bool,
        select: &[Selected],
        embeds: &[EmbedPlan],
        depth: usize,
    ) -> String {
        if !select.iter().any(|s| s.aggregate.is_some()) {
            return String::new();
        }
        let from = alias(depth);
        let mut keys: Vec<String> =
            if all_columns { relation.columns.iter().map(|c| column_ref(&from, &c.name)).collect() } else { Vec::new() };
        let first = if all_columns { relation.columns.len() } else { 0 } + 1;
        keys.extend(select.iter().enumerate().filter(|(_, s)| s.aggregate.is_none()).map(|(i, _)| (first + i).to_string()));
        for e in embeds.iter().filter(|e| !e.hidden) {
            let joined: Vec<&str> = match &e.link {
                Link::Keys(pairs) | Link::Junction { outer: pairs, .. } => pairs.iter().map(|(outer, _)| outer.as_str()).collect(),
                // A function of the row: the row, by its key.
                Link::Function { .. } => relation.columns.iter().filter(|c| c.primary_key).map(|c| c.name.as_str()).collect(),
            };
            keys.extend(joined.into_iter().map(|c| column_ref(&from, c)));
        }
        keys.dedup();
        if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", keys.join(", "))
        }
    }

    /// The answered embeds of a level at `depth`, as (key, expression):
    /// each embed as one JSON value, a spread embed's items lifted, each
    /// its value in the one related row (or, of many rows, an array).
    fn embedded_items(&mut self, embeds: &[EmbedPlan], depth: usize) -> Vec<(String, String)> {
        let mut items = Vec::new();
        for e in embeds.iter().filter(|e| !e.hidden) {
            if !e.spread {
                items.push((e.key.clone(), self.embed(e, depth + 1)));
                continue;
            }
            let inner = depth + 1;
            let from = alias(inner);
            let mut lifted: Vec<(String, String)> = Vec::new();
            if e.read.all_columns {
                lifted.extend(e.read.relation.columns.iter().map(|c| (c.name.clone(), column_ref(&from, &c.name))));
            }
            for s in &e.read.select {
                lifted.push((s.output_name().to_owned(), self.selected(&from, s)));
            }
            lifted.extend(self.embedded_items(&e.read.embeds, inner));
            for (name, expr) in lifted {
                let source = self.source(&e.read, inner, Some(&e.link));
                let value = if e.to_one {
                    format!("(SELECT {expr} FROM {source} LIMIT 1)")
                } else {
                    let tail = self.order_and_range(&e.read, inner);
                    format!("(SELECT coalesce(json_agg(_pgrst_v), '[]') FROM (SELECT {expr} AS _pgrst_v FROM {source}{tail}) _pgrst_s)")
                };
                items.push((name, value));
            }
        }
        items
    }

    /// `"schema"."table" alias WHERE …`: the rows of a level (joined to
    /// the outer level when embedded; `!inner` embeds must exist).
    /// `link`: how an embedded level's rows belong to the outer row.
    fn source(&mut self, plan: &ReadPlan, depth: usize, link: Option<&Link>) -> String {
        let me = alias(depth);
        let outer = || alias(depth - 1);
        let equal = |pairs: &[(String, String)], left: &str, right: &str| {
            pairs.iter().map(|(l, r)| format!("{} = {}", column_ref(right, r), column_ref(left, l))).collect::<Vec<_>>()
        };
        let junction = format!("_pgrst_j{depth}");
        let mut extra: Vec<String> = match link {
            None | Some(Link::Function { .. }) => Vec::new(),
            Some(Link::Keys(pairs)) => equal(pairs, &outer(), &me),
            Some(Link::Junction { outer: pairs, .. }) => equal(pairs, &outer(), &junction),
        };
        for e in plan.embeds.iter().filter(|e| e.inner) {
            let inner_source = self.source(&e.read, depth + 1, Some(&e.link));
            extra.push(format!("EXISTS (SELECT 1 FROM {inner_source})"));
        }
        let relation = match &plan.call {
            Some(call) => {
                let expr = self.call_expr(call);
                let rows = match call.function.returns {
                    // A scalar result is the one column `pgrst_scalar`, as PostgREST reads it.
                    Returns::Scalar { .. } | Returns::Void => format!("SELECT {expr} AS {}", ident(SCALAR_COLUMN)),
                    Returns::Rows { .. } => format!("SELECT * FROM {expr} _pgrst_c"),
                };
                self.call_cte = Some(format!("_pgrst_call AS MATERIALIZED ({rows})"));
                format!("_pgrst_call {me}")
            }
            None => {
                let table = format!("{}.{}", ident(&plan.relation.schema), ident(&plan.relation.name));
                match link {
                    Some(Link::Function { schema, name }) => format!("{}.{}({}) {me}", ident(schema), ident(name), outer()),
                    Some(Link::Junction { table: j, target, .. }) => format!(
                        "{table} {me} JOIN {}.{} {junction} ON {}",
                        ident(&plan.relation.schema),
                        ident(j),
                        equal(target, &junction, &me).join(" AND ")
                    ),
                    None | Some(Link::Keys(_)) => format!("{table} {me}"),
                }
            }
        };
        format!("{relation}{}", self.where_clause(&plan.filter, depth, extra))
    }

    /// `"schema"."f"("a" := $1, …)`
    fn call_expr(&mut self, plan: &CallPlan) -> String {
        let args: Vec<String> = plan
            .args
            .iter()
            .map(|(a, v)| {
                let value = match v {
                    ArgValue::Text(text) => self.param(text.clone(), &a.type_sql),
                    ArgValue::Record(json) => {
                        format!("json_populate_record(NULL::{}, {})", a.type_sql, self.param(Some(json.clone()), "json"))
                    }
                };
                let variadic = if plan.function.variadic_arg() == Some(a) { "VARIADIC " } else { "" };
                // An unnamed parameter (the whole body) is passed by position.
                if a.name.is_empty() {
                    format!("{variadic}{value}")
                } else {
                    format!("{variadic}{} := {value}", ident(&a.name))
                }
            })
            .collect();
        format!("{}.{}({})", ident(&plan.function.schema), ident(&plan.function.name), args.join(", "))
    }

    /// PostgREST's CSV of the rows `_pgrst_row`: the header (when there are
    /// rows), a newline, each row's record text without its parentheses.
    fn csv(&mut self, header: &[String]) -> String {
        let names = self.param(Some(header.join(",")), "text");
        format!(
            "CASE WHEN count(*) = 0 THEN '' ELSE {names} END || chr(10) || \
             coalesce(string_agg(substring(_pgrst_row::text, 2, length(_pgrst_row::text) - 2), chr(10)), '')"
        )
    }

    /// The ` WHERE …` of an update or delete: its filters, and for a
    /// limited one, among the rows those filters match, the ones a read with
    /// its order and range picks (PostgREST's `pgrst_affected_rows`).
    fn rows_written(&mut self, plan: &WritePlan, table: &str, limited: Option<&Limited>) -> String {
        let Some(l) = limited else { return self.where_clause(&plan.filter, 0, Vec::new()) };
        let keys: Vec<String> = match l.by {
            RowMatch::Address => ["tableoid", "ctid"].iter().map(|c| format!("{}.{c}", alias(0))).collect(),
            RowMatch::OrderColumns => l.order.iter().map(|o| format!("{}.{}", alias(0), ident(&o.column.name))).collect(),
        };
        let keys = keys.join(", ");
        let filter = self.where_clause(&plan.filter, 0, Vec::new());
        let range = self.order_and_range_of(&l.order, l.limit, l.offset, 0);
        let picked = format!("({keys}) IN (SELECT {keys} FROM {table} {}{filter}{range})", alias(0));
        self.where_clause(&plan.filter, 0, vec![picked])
    }

    /// ` ORDER BY … LIMIT … OFFSET …`
    fn order_and_range(&mut self, plan: &ReadPlan, depth: usize) -> String {
        self.order_and_range_of(&plan.order, plan.limit, plan.offset, depth)
    }

    fn order_and_range_of(&mut self, order: &[Ordering], limit: Option<u64>, offset: Option<u64>, depth: usize) -> String {
        let mut sql = String::new();
        if !order.is_empty() {
            let terms: Vec<String> = order
                .iter()
                .map(|o| {
                    let nulls = match o.nulls_first {
                        Some(true) => " NULLS FIRST",
                        Some(false) => " NULLS LAST",
                        None => "",
                    };
                    let key = match &o.through {
                        // A to-one embed's column: its one row's value.
                        Some(e) => {
                            let source = self.source(&e.read, depth + 1, Some(&e.link));
                            format!("(SELECT {} FROM {source} LIMIT 1)", self.field(&alias(depth + 1), &o.column, &o.path))
                        }
                        None => self.field(&alias(depth), &o.column, &o.path),
                    };
                    format!("{key} {}{nulls}", if o.descending { "DESC" } else { "ASC" })
                })
                .collect();
            sql.push_str(&format!(" ORDER BY {}", terms.join(", ")));
        }
        if let Some(limit) = limit {
            sql.push_str(&format!(" LIMIT {}", self.param(Some(limit.to_string()), "bigint")));
        }
        if let Some(offset) = offset {
            sql.push_str(&format!(" OFFSET {}", self.param(Some(offset.to_string()), "bigint")));
        }
        sql
    }

    /// An embed as one JSON value: an array of rows, or one row (or NULL).
    fn embed(&mut self, e: &EmbedPlan, depth: usize) -> String {
        let source = self.source(&e.read, depth, Some(&e.link));
        let list = self.select_list(e.read.all_columns, &e.read.select, &e.read.embeds, depth);
        let group = self.group_by(&e.read.relation, e.read.all_columns, &e.read.select, &e.read.embeds, depth);
        let rows = format!("_pgrst_e{depth}");
        if e.to_one {
            format!("(SELECT row_to_json({rows}) FROM (SELECT {list} FROM {source}{group} LIMIT 1) {rows})")
        } else {
            let tail = self.order_and_range(&e.read, depth);
            format!("(SELECT coalesce(json_agg({rows}), '[]') FROM (SELECT {list} FROM {source}{group}{tail}) {rows})")
        }
    }
}

/// `{"a","b\"c"}`: a Postgres array literal of text items.
fn array_literal(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{}\"", i.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    format!("{{{}}}", quoted.join(","))
}

/// A write's answer and how many rows it changed (not how many rows its
/// `select` answers: aggregates make those fewer).
const WRITTEN: &str = "coalesce(json_agg(_pgrst_row), '[]')::text, (SELECT count(*) FROM _pgrst_rows)";

/// What functions the statement ran set for the answer (PostgREST's
/// `response.headers` and `response.status`), read after the rows.
const RESPONSE_SETTINGS: &str =
    "nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '')";

/// `count`: also count the rows the filters match (for `Content-Range:
/// 0-9/123`), ignoring limit and offset: exactly, by the planner's
/// estimate, or exactly up to `estimate_above` rows and estimated beyond.
/// `strip_nulls`: leave null fields out of each row (top level).
/// How a read's rows become the body (beyond `plan.body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowsAs<'a> {
    Json,
    /// CSV as PostgREST writes it: a header of these names (none without
    /// rows), then each row's record text without its parentheses.
    Csv(&'a [String]),
    /// A FeatureCollection through PostGIS's `ST_AsGeoJSON(record)` (this function).
    GeoJson(&'a str),
    /// One value, a media type handler aggregate's of the rows (`row_type`:
    /// the rows as the relation's type, for an aggregate of that type).
    Handler {
        aggregate: &'a str,
        binary: bool,
        row_type: Option<String>,
    },
}

/// `"schema"."name"`
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

pub fn read(plan: &ReadPlan, count: Option<Count>, estimate_above: u64, strip_nulls: bool, rows_as: RowsAs) -> Statement {
    let mut b = Builder::default();
    if plan.call.as_ref().is_some_and(|c| matches!(c.function.returns, Returns::Rows { row: crate::schema::RowType::Relation(_), .. })) {
        // Rows of a table or view: computed columns take them as its row type.
        b.row_cast = Some(RowCast::Whole(format!("{}.{}", ident(&plan.relation.schema), ident(&plan.relation.name))));
    }
    let source = b.source(plan, 0, None);
    let source_params = b.params.len();
    let list = b.select_list(plan.all_columns, &plan.select, &plan.embeds, 0);
    let group = b.group_by(&plan.relation, plan.all_columns, &plan.select, &plan.embeds, 0);
    let tail = b.order_and_range(plan, 0);
    // The planner's estimate ignores RLS (a customer who sees one order
    // would learn how many there are in all): where it is not visible,
    // planned and estimated counts are exact up to `estimate_above` rows
    // and unknown beyond (`api` answers `*`).
    let planner = plan.relation.planner_counts_visible && plan.call.is_none();
    let capped = || format!("(SELECT count(*) FROM (SELECT 1 FROM {source} LIMIT {}) _pgrst_c)", estimate_above + 1);
    let total = match count {
        Some(Count::Exact) => format!("(SELECT count(*) FROM {source})"),
        Some(Count::Estimated) => capped(),
        Some(Count::Planned) if !planner => capped(),
        Some(Count::Planned) | None => "NULL::bigint".to_owned(),
    };
    let explain = (planner && matches!(count, Some(Count::Planned | Count::Estimated)))
        .then(|| (format!("EXPLAIN (FORMAT JSON) SELECT 1 FROM {source}"), source_params));
    let row = if strip_nulls { "json_strip_nulls(row_to_json(_pgrst_row))" } else { "_pgrst_row" };
    // As PostgREST: a function's one row or value is the body itself, and
    // counts as one row whatever the filters left.
    let aggregate = match (&rows_as, plan.body) {
        (RowsAs::GeoJson(function), Body::Rows) => {
            format!("json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg({function}(_pgrst_row)::json), '[]'))::text, count(*)")
        }
        (RowsAs::Handler { aggregate, binary, row_type }, _) => {
            let row = row_type.as_ref().map_or("_pgrst_row".to_owned(), |t| format!("_pgrst_row::{t}"));
            if *binary {
                format!("encode({aggregate}({row}), 'base64'), count(*)")
            } else {
                format!("{aggregate}({row})::text, count(*)")
            }
        }
        (RowsAs::Csv(header), Body::Rows | Body::Values) => format!("{}, count(*)", b.csv(header)),
        (_, body) => match body {
            Body::Rows => format!("coalesce(json_agg({row}), '[]')::text, count(*)"),
            Body::Row => format!("coalesce(json_agg({row})->0, 'null')::text, 1::bigint"),
            Body::Values => "coalesce(json_agg(_pgrst_row.\"pgrst_scalar\"), '[]')::text, count(*)".to_owned(),
            Body::Value => "coalesce(json_agg(_pgrst_row.\"pgrst_scalar\")->0, 'null')::text, 1::bigint".to_owned(),
            Body::Nothing => "NULL::text, 1::bigint".to_owned(),
            // The value's own text, or its bytes in base64 (a domain over bytea).
            Body::Raw => match plan.call.as_ref().and_then(|c| c.function.media_type.as_ref()) {
                Some(m) if m.binary => "encode((array_agg(_pgrst_row.\"pgrst_scalar\"))[1], 'base64'), 1::bigint".to_owned(),
                _ => "(array_agg(_pgrst_row.\"pgrst_scalar\"))[1]::text, 1::bigint".to_owned(),
            },
        },
    };
    let with = b.call_cte.as_ref().map(|cte| format!("WITH {cte} ")).unwrap_or_default();
    Statement {
        sql: format!("{with}SELECT {aggregate}, {total}, {RESPONSE_SETTINGS} FROM (SELECT {list} FROM {source}{group}{tail}) _pgrst_row"),
        params: b.params,
        explain,
        plan_json: None,
    }
}

/// `Accept: application/vnd.pgrst.plan`: the statement's `EXPLAIN`.
pub fn explain(statement: Statement, plan: &crate::response::PlanFormat) -> Statement {
    Statement {
        sql: format!("EXPLAIN ({}) {}", plan.explain_options(), statement.sql),
        params: statement.params,
        explain: None,
        plan_json: Some(plan.json),
    }
}

/// `csv`: the representation as CSV (`RowsAs::Csv`) of these names.
pub fn write(plan: &WritePlan, csv: Option<&[String]>) -> Statement {
    let mut b = Builder::default();
    let table = format!("{}.{}", ident(&plan.relation.schema), ident(&plan.relation.name));
    let names = |columns: &[crate::schema::Column]| columns.iter().map(|c| ident(&c.name)).collect::<Vec<_>>().join(", ");
    let changes: Vec<String> = match &plan.kind {
        WriteKind::Insert { groups, on_conflict } => groups
            .iter()
            .map(|(columns, rows_json)| {
                let body = b.param(Some(rows_json.clone()), "json");
                let cols = names(columns);
                let conflict = match on_conflict {
                    None => String::new(),
                    Some(c) => {
                        let set = |col: &crate::schema::Column| format!("{0} = EXCLUDED.{0}", ident(&col.name));
                        let mut updates: Vec<String> = columns.iter().filter(|col| !c.columns.contains(col)).map(set).collect();
                        // A row of key columns only is still updated (and returned), as PostgREST does.
                        if updates.is_empty() {
                            updates = columns.iter().map(set).collect();
                        }
                        let action = match c.resolution {
                            Resolution::MergeDuplicates if !updates.is_empty() => format!("DO UPDATE SET {}", updates.join(", ")),
                            // `{}`: no column to set.
                            Resolution::MergeDuplicates | Resolution::IgnoreDuplicates => "DO NOTHING".to_owned(),
                        };
                        format!(" ON CONFLICT ({}) {action}", names(&c.columns))
                    }
                };
                if columns.is_empty() {
                    // `{}`: a row of defaults for each element, as PostgREST does.
                    return format!("INSERT INTO {table} SELECT FROM json_array_elements({body}) _pgrst_body{conflict}");
                }
                format!(
                    "INSERT INTO {table} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{table}, {body}) _pgrst_body{conflict}"
                )
            })
            .collect(),
        WriteKind::Unchanged => Vec::new(),
        WriteKind::Update { columns, defaulted, row_json, limited } => {
            let mut set: Vec<String> = defaulted.iter().map(|c| format!("{} = DEFAULT", ident(&c.name))).collect();
            if !columns.is_empty() {
                let body = b.param(Some(row_json.clone()), "json");
                let cols = names(columns);
                set.insert(0, format!("({cols}) = (SELECT {cols} FROM json_populate_record(NULL::{table}, {body}))"));
            }
            let rows = b.rows_written(plan, &table, limited.as_ref());
            vec![format!("UPDATE {table} {} SET {}{rows}", alias(0), set.join(", "))]
        }
        WriteKind::Delete { limited } => {
            let rows = b.rows_written(plan, &table, limited.as_ref());
            vec![format!("DELETE FROM {table} {}{rows}", alias(0))]
        }
    };
    // return=representation needs the rows (and SELECT rights); otherwise
    // only how many there were (headers-only: the primary key, for the
    // Location of a new row).
    let keys: Vec<String> = plan.relation.columns.iter().filter(|c| c.primary_key).map(|c| ident(&c.name)).collect();
    // An upsert that may update answers 200 when it inserted nothing, as
    // PostgREST does: `xmax = 0` marks the rows it inserted (tables only).
    let merges = matches!(&plan.kind, WriteKind::Insert { on_conflict: Some(c), .. } if c.resolution == Resolution::MergeDuplicates);
    let flags_inserted = merges && plan.relation.is_table && !changes.is_empty();
    let mut returning = match plan.return_ {
        Return::Representation => "*".to_owned(),
        Return::HeadersOnly if !keys.is_empty() => keys.join(", "),
        Return::Minimal | Return::HeadersOnly => "1".to_owned(),
    };
    if flags_inserted {
        returning.push_str(", (xmax = 0) AS _pgrst_inserted");
    }
    let inserted = match (flags_inserted, merges) {
        (true, _) => "(SELECT count(*) FROM _pgrst_rows WHERE _pgrst_inserted)",
        (false, true) if changes.is_empty() => "0::bigint",
        _ => "NULL::bigint",
    };
    let rows_cte = match changes.as_slice() {
        // A PATCH that changes nothing still reads the table (as PostgREST
        // does), so the caller needs rights on it.
        [] if plan.kind == WriteKind::Unchanged => {
            format!("WITH _pgrst_rows AS (SELECT {returning} FROM {table} {} WHERE false)", alias(0))
        }
        // `[]`: nothing to insert, an empty answer (no rights needed on the table).
        [] => format!("WITH _pgrst_rows AS (SELECT {returning} FROM json_populate_recordset(NULL::{table}, '[]') _pgrst_none)"),
        [one] => format!("WITH _pgrst_rows AS ({one} RETURNING {returning})"),
        many => {
            let groups: Vec<String> = many.iter().enumerate().map(|(i, c)| format!("_pgrst_g{i} AS ({c} RETURNING {returning})")).collect();
            let union: Vec<String> = (0..many.len()).map(|i| format!("SELECT * FROM _pgrst_g{i}")).collect();
            format!("WITH {}, _pgrst_rows AS ({})", groups.join(", "), union.join(" UNION ALL "))
        }
    };
    // `*` would also return the inserted flag: the columns by name then.
    let mut returned = plan.returning.clone();
    let mut returning_all = plan.returning_all;
    if flags_inserted && returning_all {
        let every_column = plan.relation.columns.iter().map(|c| Selected {
            column: c.clone(),
            path: Vec::new(),
            alias: None,
            cast: None,
            aggregate: None,
        });
        returned = every_column.chain(returned).collect();
        returning_all = false;
    }
    let returned = &returned;
    // Computed columns of the returned rows take them as the table's row type.
    b.row_cast = Some(if flags_inserted {
        RowCast::Columns(table.clone(), plan.relation.columns.iter().map(|c| c.name.clone()).collect())
    } else {
        RowCast::Whole(table.clone())
    });
    let sql = match plan.return_ {
        Return::Representation => {
            let list = b.select_list(returning_all, returned, &plan.returning_embeds, 0);
            let body = match csv {
                Some(header) => format!("{}, (SELECT count(*) FROM _pgrst_rows)", b.csv(header)),
                None => WRITTEN.to_owned(),
            };
            format!(
                "{rows_cte} SELECT {body}, {inserted}, {RESPONSE_SETTINGS} FROM (SELECT {list} FROM _pgrst_rows {}) _pgrst_row",
                alias(0)
            )
        }
        Return::HeadersOnly if !keys.is_empty() => {
            format!(
                "{rows_cte} SELECT {WRITTEN}, {inserted}, {RESPONSE_SETTINGS} FROM (SELECT {} FROM _pgrst_rows) _pgrst_row",
                keys.join(", ")
            )
        }
        Return::Minimal | Return::HeadersOnly => {
            format!("{rows_cte} SELECT NULL::text, count(*), {inserted}, {RESPONSE_SETTINGS} FROM _pgrst_rows")
        }
    };
    Statement::new(sql, b.params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;
    use crate::request::{parse_prefer, parse_query, QueryParams};
    use crate::schema::test_cache;
    use serde_json::json;

    fn read_sql(query: &str) -> Statement {
        read(&plan::read(&test_cache(), "orders", &parse_query(query, false).unwrap()).unwrap(), None, 1000, false, RowsAs::Json)
    }

    fn write_sql(method: &str, query: &str, body: &[u8], prefer: &str) -> Result<Statement, crate::error::ApiError> {
        let method = match crate::action::Action::from_http(method, "/orders")? {
            crate::action::Action::Write { method, .. } => method,
            other => panic!("{other:?} is no write"),
        };
        let p = plan::write(&test_cache(), "orders", method, &parse_query(query, false).unwrap(), body, &parse_prefer(Some(prefer)))?;
        Ok(write(&p, None))
    }

    #[test]
    fn values_are_parameters_and_names_are_quoted() {
        let s = read_sql(
            "select=order_number,total:total_amount::text&status=eq.x');DROP TABLE orders;--&user_id=in.(user_a,\"user_b\")&limit=5",
        );
        assert_eq!(
            s.sql,
            "SELECT coalesce(json_agg(_pgrst_row), '[]')::text, count(*), NULL::bigint, nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '') FROM (SELECT _pgrst_t0.\"order_number\" AS \"order_number\", \
             _pgrst_t0.\"total_amount\"::\"pg_catalog\".\"text\" AS \"total\" FROM \"public\".\"orders\" _pgrst_t0 WHERE _pgrst_t0.\"status\" = CAST($1 AS text) \
             AND _pgrst_t0.\"user_id\" = ANY(CAST($2 AS clerk_user_id[])) LIMIT CAST($3 AS bigint)) _pgrst_row"
        );
        assert_eq!(s.params, [Some("x');DROP TABLE orders;--".into()), Some("{\"user_a\",\"user_b\"}".into()), Some("5".into())]);
        assert_eq!(s.explain, None);
    }

    #[test]
    fn operators_negation_groups_and_order() {
        let s = read_sql(
            "or=(status.eq.a,and(total_amount.gte.10,notes.not.is.null))&order_number=not.like.ORD-*&order=created_at.desc.nullslast",
        );
        assert!(s.sql.contains(
            "WHERE (_pgrst_t0.\"status\" = CAST($1 AS text) OR (_pgrst_t0.\"total_amount\" >= CAST($2 AS numeric(10,2)) AND NOT (_pgrst_t0.\"notes\" IS NULL))) \
             AND NOT (_pgrst_t0.\"order_number\" LIKE CAST($3 AS text)) ORDER BY _pgrst_t0.\"created_at\" DESC NULLS LAST"
        ), "{}", s.sql);
        assert_eq!(s.params[2].as_deref(), Some("ORD-%"));
    }

    #[test]
    fn counts_reuse_the_filters() {
        let p = plan::read(&test_cache(), "products", &parse_query("name=eq.a&limit=1", false).unwrap()).unwrap();
        let s = read(&p, Some(Count::Exact), 1000, false, RowsAs::Json);
        assert!(
            s.sql.contains("(SELECT count(*) FROM \"public\".\"products\" _pgrst_t0 WHERE _pgrst_t0.\"name\" = CAST($1 AS text))"),
            "{}",
            s.sql
        );
        assert_eq!(s.params.len(), 2);
        let s = read(&p, Some(Count::Planned), 1000, false, RowsAs::Json);
        assert_eq!(
            s.explain,
            Some((
                "EXPLAIN (FORMAT JSON) SELECT 1 FROM \"public\".\"products\" _pgrst_t0 WHERE _pgrst_t0.\"name\" = CAST($1 AS text)".into(),
                1
            ))
        );
        assert!(s.sql.contains("NULL::bigint, nullif"), "planned counts nothing exactly");
        let s = read(&p, Some(Count::Estimated), 100, false, RowsAs::Json);
        assert!(s.sql.contains("LIMIT 101) _pgrst_c)"), "{}", s.sql);
        assert!(s.explain.is_some());
    }

    #[test]
    fn no_planner_counts_where_row_security_hides_rows() {
        let p = plan::read(&test_cache(), "orders", &parse_query("status=eq.a", false).unwrap()).unwrap();
        for count in [Count::Planned, Count::Estimated] {
            let s = read(&p, Some(count), 100, false, RowsAs::Json);
            assert_eq!(s.explain, None, "{count:?}");
            assert!(s.sql.contains("LIMIT 101) _pgrst_c)"), "{}", s.sql);
        }
    }

    #[test]
    fn embeds_are_correlated_subqueries() {
        let s = read(
            &plan::read(
                &test_cache(),
                "orders",
                &parse_query("select=order_number,order_items!inner(quantity,products(name))&order_items.quantity=gt.1&order_items.order=quantity.desc&order_items.limit=2", false).unwrap(),
            )
            .unwrap(),
            None,
            1000,
            false,
            RowsAs::Json,
        );
        assert_eq!(
            s.sql,
            "SELECT coalesce(json_agg(_pgrst_row), '[]')::text, count(*), NULL::bigint, nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '') FROM (SELECT _pgrst_t0.\"order_number\" AS \"order_number\", \
             (SELECT coalesce(json_agg(_pgrst_e1), '[]') FROM (SELECT _pgrst_t1.\"quantity\" AS \"quantity\", \
             (SELECT row_to_json(_pgrst_e2) FROM (SELECT _pgrst_t2.\"name\" AS \"name\" FROM \"public\".\"products\" _pgrst_t2 \
             WHERE _pgrst_t2.\"product_id\" = _pgrst_t1.\"product_id\" LIMIT 1) _pgrst_e2) AS \"products\" \
             FROM \"public\".\"order_items\" _pgrst_t1 WHERE _pgrst_t1.\"quantity\" > CAST($2 AS integer) AND _pgrst_t1.\"order_id\" = _pgrst_t0.\"order_id\" \
             ORDER BY _pgrst_t1.\"quantity\" DESC LIMIT CAST($3 AS bigint)) _pgrst_e1) AS \"order_items\" \
             FROM \"public\".\"orders\" _pgrst_t0 WHERE EXISTS (SELECT 1 FROM \"public\".\"order_items\" _pgrst_t1 \
             WHERE _pgrst_t1.\"quantity\" > CAST($1 AS integer) AND _pgrst_t1.\"order_id\" = _pgrst_t0.\"order_id\")) _pgrst_row"
        );
        assert_eq!(s.params, [Some("1".into()), Some("1".into()), Some("2".into())]);
    }

    #[test]
    fn embedding_errors_follow_postgrest() {
        let cache = test_cache();
        let e = plan::read(&cache, "orders", &parse_query("select=*,products(*)", false).unwrap()).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code.as_ref()), (400, "PGRST200"));
        let e = plan::read(&cache, "orders", &parse_query("select=*&order_items.quantity=eq.1", false).unwrap()).unwrap_err();
        assert_eq!(e.code, "PGRST108");
        let e = plan::read(&cache, "orders", &parse_query("select=*,order_items(nope)", false).unwrap()).unwrap_err();
        assert_eq!(e.code, "42703");
        assert!(plan::read(&cache, "orders", &parse_query("select=*,order_items!order_items_order_id_fkey(*)", false).unwrap()).is_ok());
    }

    #[test]
    fn writes_take_the_body_as_one_parameter() {
        let s = write_sql("PATCH", "order_id=eq.7&select=status", br#"{"status": "x'; drop table orders; --"}"#, "return=representation")
            .unwrap();
        assert_eq!(
            s.sql,
            "WITH _pgrst_rows AS (UPDATE \"public\".\"orders\" _pgrst_t0 SET (\"status\") = (SELECT \"status\" FROM json_populate_record(NULL::\"public\".\"orders\", CAST($1 AS json))) \
             WHERE _pgrst_t0.\"order_id\" = CAST($2 AS bigint) RETURNING *) SELECT coalesce(json_agg(_pgrst_row), '[]')::text, (SELECT count(*) FROM _pgrst_rows), NULL::bigint, \
             nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '') \
             FROM (SELECT _pgrst_t0.\"status\" AS \"status\" FROM _pgrst_rows _pgrst_t0) _pgrst_row"
        );
        // Objects with different keys: `columns=` (as postgrest-js sends) names them all.
        assert_eq!(write_sql("POST", "", br#"[{"status": "a"}, {"notes": "b"}]"#, "").unwrap_err().code, "PGRST102");
        let s = write_sql("POST", "columns=status,notes", br#"[{"status": "a"}, {"notes": "b"}]"#, "").unwrap();
        assert!(s.sql.starts_with("WITH _pgrst_rows AS (INSERT INTO \"public\".\"orders\" (\"status\", \"notes\") SELECT \"status\", \"notes\" FROM json_populate_recordset"), "{}", s.sql);
        assert!(s.sql.ends_with("RETURNING 1) SELECT NULL::text, count(*), NULL::bigint, nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '') FROM _pgrst_rows"));
        assert_eq!(write_sql("POST", "", br#"{"password": 1}"#, "").unwrap_err().code, "PGRST204");
        // A PATCH naming no column changes nothing.
        assert!(write_sql("PATCH", "", b"{}", "").unwrap().sql.contains("FROM \"public\".\"orders\" _pgrst_t0 WHERE false"));
        assert!(write_sql("POST", "", b"[1]", "").is_err());
        // columns= picks the keys; the others are ignored, unknown ones refused.
        let s = write_sql("POST", "columns=status", br#"{"status": "a", "password": 1}"#, "").unwrap();
        assert!(s.sql.contains("(\"status\") SELECT \"status\" FROM"), "{}", s.sql);
        assert_eq!(write_sql("POST", "columns=password", br#"{"status": "a"}"#, "").unwrap_err().code, "PGRST204");
    }

    #[test]
    fn upserts_and_missing_defaults() {
        let s = write_sql("POST", "", br#"{"order_id": 1, "status": "a"}"#, "resolution=merge-duplicates").unwrap();
        assert!(
            s.sql.contains("_pgrst_body ON CONFLICT (\"order_id\") DO UPDATE SET \"status\" = EXCLUDED.\"status\" RETURNING 1"),
            "{}",
            s.sql
        );
        let s = write_sql("POST", "on_conflict=order_number", br#"{"order_number": "X", "status": "a"}"#, "resolution=ignore-duplicates")
            .unwrap();
        assert!(s.sql.contains("ON CONFLICT (\"order_number\") DO NOTHING"), "{}", s.sql);
        assert_eq!(write_sql("POST", "on_conflict=nope", b"{}", "resolution=ignore-duplicates").unwrap_err().code, "42703");
        // missing=default: one INSERT per set of keys, so absent keys get their defaults.
        let s = write_sql(
            "POST",
            "columns=status,notes",
            br#"[{"status": "a"}, {"status": "b", "notes": "n"}, {"status": "c"}]"#,
            "missing=default, return=representation",
        )
        .unwrap();
        assert!(s.sql.starts_with("WITH _pgrst_g0 AS (INSERT INTO \"public\".\"orders\" (\"status\") SELECT"), "{}", s.sql);
        assert!(s.sql.contains("_pgrst_g1 AS (INSERT INTO \"public\".\"orders\" (\"notes\", \"status\")"), "{}", s.sql);
        assert!(s.sql.contains("_pgrst_rows AS (SELECT * FROM _pgrst_g0 UNION ALL SELECT * FROM _pgrst_g1)"), "{}", s.sql);
        assert_eq!(s.params[0].as_deref(), Some(r#"[{"status":"a"},{"status":"c"}]"#));
    }

    #[test]
    fn put_replaces_one_row_by_primary_key() {
        let s = write_sql("PUT", "order_id=eq.7", br#"{"status": "a"}"#, "").unwrap();
        assert!(s.sql.contains("(\"order_id\", \"status\")") || s.sql.contains("(\"status\", \"order_id\")"), "{}", s.sql);
        assert!(s.sql.contains("ON CONFLICT (\"order_id\") DO UPDATE SET \"status\" = EXCLUDED.\"status\""), "{}", s.sql);
        assert!(!s.sql.contains("WHERE \""), "{}", s.sql);
        assert!(write_sql("PUT", "order_id=eq.7", br#"{"order_id": 7, "status": "a"}"#, "").is_ok());
        assert_eq!(write_sql("PUT", "order_id=eq.7", br#"{"order_id": 8}"#, "").unwrap_err().code, "PGRST115");
        for query in ["", "order_id=gt.7", "status=eq.a", "order_id=eq.7&status=eq.a"] {
            let e = write_sql("PUT", query, br#"{"status": "a"}"#, "").unwrap_err();
            assert_eq!((e.status.as_u16(), e.code.as_ref()), (405, "PGRST105"), "{query}");
        }
        assert_eq!(write_sql("PUT", "order_id=eq.7&limit=1", br#"{"status": "a"}"#, "").unwrap_err().code, "PGRST114");
        // Whether it inserted (201) or replaced (200) the row.
        assert!(s.sql.contains("RETURNING 1, (xmax = 0) AS _pgrst_inserted) SELECT NULL::text, count(*), (SELECT count(*) FROM _pgrst_rows WHERE _pgrst_inserted)"), "{}", s.sql);
        assert_eq!(write_sql("PUT", "order_id=eq.7", br#"[{"status": "a"}, {"status": "b"}]"#, "").unwrap_err().code, "PGRST102");
    }

    #[test]
    fn identifiers_cannot_break_out_of_quotes() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(array_literal(&["a\"b".into(), "c\\d".into()]), "{\"a\\\"b\",\"c\\\\d\"}");
    }

    #[test]
    fn function_calls_use_named_arguments() {
        let cache = test_cache();
        let args = plan::CallArgs::Json(json!({"order_id": 7, "code": "SPRING"}).as_object().unwrap().clone());
        let p = plan::call_read(
            &cache,
            plan::call(&cache, "redeem_coupon", &args).unwrap(),
            &parse_query("discount=gt.1", true).unwrap(),
            plan::Asked::AsReturned,
        )
        .unwrap();
        let s = read(&p, None, 1000, false, RowsAs::Json);
        assert_eq!(
            s.sql,
            "WITH _pgrst_call AS MATERIALIZED (SELECT * FROM \"public\".\"redeem_coupon\"(\"code\" := CAST($1 AS text), \"order_id\" := CAST($2 AS bigint)) _pgrst_c) \
             SELECT coalesce(json_agg(_pgrst_row)->0, 'null')::text, 1::bigint, NULL::bigint, nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '') FROM (SELECT _pgrst_t0.* FROM _pgrst_call _pgrst_t0 \
             WHERE _pgrst_t0.\"discount\" > CAST($3 AS numeric)) _pgrst_row"
        );
        // Counted, the function still runs once: the count reads the CTE.
        let counted = read(&p, Some(Count::Exact), 1000, false, RowsAs::Json);
        assert_eq!(counted.sql.matches("redeem_coupon").count(), 1, "{}", counted.sql);
        assert_eq!(s.params, [Some("SPRING".into()), Some("7".into()), Some("1".into())]);
        let _ = QueryParams::default();
    }
}
