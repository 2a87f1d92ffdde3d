//! Stage 2: HTTP → a typed `ApiRequest`. Only syntax is checked here
//! (PostgREST's query grammar); names are checked against the schema in
//! `plan`. Nothing here touches the database.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/{table-or-view}`
    Relation(String),
    /// `/rpc/{function}`
    Rpc(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectItem {
    pub column: String,
    /// `data->a->>b`: the JSON path after the column.
    pub path: JsonPath,
    pub alias: Option<String>,
    pub cast: Option<String>,
    /// `amount.sum()`, `count()` (then `column` is `*`); `db-aggregates-enabled`.
    pub aggregate: Option<Aggregate>,
}

/// An aggregate in `select`, PostgREST's: `col.sum()::text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub function: AggregateFn,
    /// The cast of the result (`::text` after the parentheses).
    pub cast: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFn {
    /// `count()`: the rows.
    CountRows,
    /// `col.count()`: the column's non-null values.
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggregateFn {
    fn named(name: &str) -> Option<AggregateFn> {
        Some(match name {
            "count" => AggregateFn::Count,
            "sum" => AggregateFn::Sum,
            "avg" => AggregateFn::Avg,
            "min" => AggregateFn::Min,
            "max" => AggregateFn::Max,
            _ => return None,
        })
    }

    /// Its SQL function, and the key it answers under without an alias.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFn::CountRows | AggregateFn::Count => "count",
            AggregateFn::Sum => "sum",
            AggregateFn::Avg => "avg",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
        }
    }
}

/// `->key`, `->>key`, `->0`: steps into a JSON (or any, through
/// `to_jsonb`) column, as in PostgREST's `select`, filters and `order`.
pub type JsonPath = Vec<JsonStep>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    /// `->>`: the value as text (else `->`, as jsonb).
    pub as_text: bool,
    pub key: JsonKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonKey {
    Name(String),
    Index(i64),
}

/// `data->a->>b` → ("data", [->a, ->>b]); a double-quoted column name
/// (`"column with spaces"`) may hold any character, as in PostgREST.
pub fn split_field(field: &str) -> Result<(String, JsonPath), ParseError> {
    let (column, mut rest) = match field.strip_prefix('"') {
        Some(quoted) => {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => name.extend(chars.next().map(|(_, c)| c)),
                    Some((i, '"')) => break i + 1,
                    Some((_, c)) => name.push(c),
                    None => return Err(err("Invalid query string", format!("{field}: unterminated quoted name"))),
                }
            };
            let rest = &quoted[end..];
            if name.is_empty() || name.chars().any(char::is_control) || !(rest.is_empty() || rest.starts_with("->")) {
                return Err(err("Invalid query string", format!("{field} is not a valid column name")));
            }
            (name, rest)
        }
        None => {
            let start = field.find("->").unwrap_or(field.len());
            check_identifier(&field[..start], "column")?;
            (field[..start].to_owned(), &field[start..])
        }
    };
    let mut path = Vec::new();
    while !rest.is_empty() {
        let (as_text, after) = match rest.strip_prefix("->>") {
            Some(a) => (true, a),
            None => (false, rest.strip_prefix("->").ok_or_else(|| err("Invalid JSON path", format!("\"{field}\": expected -> or ->>")))?),
        };
        let end = after.find("->").unwrap_or(after.len());
        let key = &after[..end];
        if key.is_empty() {
            return Err(err("Invalid JSON path", format!("\"{field}\" has an empty key")));
        }
        let key = match key.parse::<i64>() {
            Ok(i) => JsonKey::Index(i),
            Err(_) => {
                check_identifier(key, "JSON key")?;
                JsonKey::Name(key.to_owned())
            }
        };
        path.push(JsonStep { as_text, key });
        rest = &after[end..];
    }
    Ok((column, path))
}

/// A filter: the operator with the operand it takes, so an operator can
/// never meet an operand of the wrong shape. Names and SQL come from
/// `OPERATORS`, the one table the parser, its error text and the SQL
/// builder read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `eq gt gte lt lte neq isdistinct`: a value of the column's type.
    Compare(CompareOp, String),
    /// `like ilike` (`*` for `%`), `match imatch` (POSIX regular expressions).
    Pattern(PatternOp, String),
    /// `op(any).{a,b}` / `op(all).{a,b}` on a comparison or pattern.
    Quantified { op: QuantifiedOp, all: bool, values: Vec<String> },
    /// `in.(a,b,"c,d")`
    In(Vec<String>),
    /// `is.null|not_null|true|false|unknown` (any case)
    Is(IsValue),
    /// `fts plfts phfts wfts`, with an optional `(language)`.
    Fts { kind: FtsKind, language: Option<String>, query: String },
    /// `cs cd ov sl sr nxr nxl adj`: a value of the column's (array, range
    /// or jsonb) type, e.g. `{a,b}` or `[1,10)`.
    Set(SetOp, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    IsDistinct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternOp {
    Like,
    Ilike,
    Match,
    Imatch,
}

/// The operators `any`/`all` apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantifiedOp {
    Compare(CompareOp),
    Pattern(PatternOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtsKind {
    /// `to_tsquery`
    Fts,
    /// `plainto_tsquery`
    Plain,
    /// `phraseto_tsquery`
    Phrase,
    /// `websearch_to_tsquery`
    Websearch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Contains,
    ContainedIn,
    Overlaps,
    StrictlyLeft,
    StrictlyRight,
    NotExtendsRight,
    NotExtendsLeft,
    Adjacent,
}

/// What an operator name stands for, and how its operand is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorKind {
    Compare(CompareOp),
    Pattern(PatternOp),
    In,
    Is,
    Fts(FtsKind),
    Set(SetOp),
}

/// PostgREST's operators: name, kind, SQL operator (or function).
pub const OPERATORS: &[(&str, OperatorKind, &str)] = &[
    ("eq", OperatorKind::Compare(CompareOp::Eq), "="),
    ("neq", OperatorKind::Compare(CompareOp::Neq), "<>"),
    ("gt", OperatorKind::Compare(CompareOp::Gt), ">"),
    ("gte", OperatorKind::Compare(CompareOp::Gte), ">="),
    ("lt", OperatorKind::Compare(CompareOp::Lt), "<"),
    ("lte", OperatorKind::Compare(CompareOp::Lte), "<="),
    ("isdistinct", OperatorKind::Compare(CompareOp::IsDistinct), "IS DISTINCT FROM"),
    ("like", OperatorKind::Pattern(PatternOp::Like), "LIKE"),
    ("ilike", OperatorKind::Pattern(PatternOp::Ilike), "ILIKE"),
    ("match", OperatorKind::Pattern(PatternOp::Match), "~"),
    ("imatch", OperatorKind::Pattern(PatternOp::Imatch), "~*"),
    ("in", OperatorKind::In, "= ANY"),
    ("is", OperatorKind::Is, "IS"),
    ("fts", OperatorKind::Fts(FtsKind::Fts), "to_tsquery"),
    ("plfts", OperatorKind::Fts(FtsKind::Plain), "plainto_tsquery"),
    ("phfts", OperatorKind::Fts(FtsKind::Phrase), "phraseto_tsquery"),
    ("wfts", OperatorKind::Fts(FtsKind::Websearch), "websearch_to_tsquery"),
    ("cs", OperatorKind::Set(SetOp::Contains), "@>"),
    ("cd", OperatorKind::Set(SetOp::ContainedIn), "<@"),
    ("ov", OperatorKind::Set(SetOp::Overlaps), "&&"),
    ("sl", OperatorKind::Set(SetOp::StrictlyLeft), "<<"),
    ("sr", OperatorKind::Set(SetOp::StrictlyRight), ">>"),
    ("nxr", OperatorKind::Set(SetOp::NotExtendsRight), "&<"),
    ("nxl", OperatorKind::Set(SetOp::NotExtendsLeft), "&>"),
    ("adj", OperatorKind::Set(SetOp::Adjacent), "-|-"),
];

impl OperatorKind {
    fn named(name: &str) -> Option<OperatorKind> {
        OPERATORS.iter().find(|(n, _, _)| *n == name).map(|(_, k, _)| *k)
    }

    /// The SQL operator or function of this kind.
    pub fn sql(self) -> &'static str {
        OPERATORS.iter().find(|(_, k, _)| *k == self).map(|(_, _, sql)| *sql).expect("every kind is in OPERATORS")
    }
}

impl CompareOp {
    pub fn sql(self) -> &'static str {
        OperatorKind::Compare(self).sql()
    }
}

impl PatternOp {
    pub fn sql(self) -> &'static str {
        OperatorKind::Pattern(self).sql()
    }
}

impl SetOp {
    pub fn sql(self) -> &'static str {
        OperatorKind::Set(self).sql()
    }
}

impl FtsKind {
    pub fn function(self) -> &'static str {
        OperatorKind::Fts(self).sql()
    }
}

/// The operator names, for error messages.
fn operator_names() -> String {
    OPERATORS.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Filter {
        column: String,
        path: JsonPath,
        negated: bool,
        filter: Filter,
    },
    /// `or=(…)` / `and=(…)`, possibly negated (`not.or=(…)`).
    Group {
        any: bool,
        negated: bool,
        children: Vec<Condition>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    /// `rel(col)`: a column of a to-one embed (`order=clients(name).desc`).
    pub related: Option<String>,
    pub column: String,
    pub path: JsonPath,
    pub descending: bool,
    pub nulls_first: Option<bool>,
}

/// `[alias:]relation[!hint][!inner](select…)` inside `select=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed {
    pub relation: String,
    pub alias: Option<String>,
    /// `...rel(cols)`: the columns lifted into the outer row.
    pub spread: bool,
    /// A foreign key's name or column, to pick one of several relationships.
    pub hint: Option<String>,
    /// `!inner`: outer rows without a matching embedded row are left out.
    pub inner: bool,
    /// Empty means `*`.
    pub select: Vec<SelectItem>,
    pub embeds: Vec<Embed>,
}

impl Embed {
    /// The key of the embedded value in each row, and the prefix of its
    /// filters (`order_items.quantity=gt.1`).
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.relation)
    }
}

/// Filters, order and range for one level: the top or an embed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub conditions: Vec<Condition>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// Empty means `*`.
    pub select: Vec<SelectItem>,
    pub embeds: Vec<Embed>,
    pub conditions: Vec<Condition>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    /// Scopes of embeds, by dotted path of keys (`order_items`, `a.b`).
    pub nested: std::collections::BTreeMap<String, Scope>,
    /// `columns=a,b`: the body keys an insert or update uses.
    pub columns: Option<Vec<String>>,
    /// `on_conflict=a,b`: the unique columns an upsert matches on.
    pub on_conflict: Option<Vec<String>>,
    /// `?arg=value` pairs that are not filters, for `GET /rpc/…`.
    pub rpc_args: Vec<(String, String)>,
}

/// What `Prefer: return=…` asks a write to answer with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Return {
    #[default]
    Minimal,
    HeadersOnly,
    Representation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact,
    /// The planner's estimate (`EXPLAIN`): cheap, approximate.
    Planned,
    /// Exact up to a limit, the planner's estimate beyond it.
    Estimated,
}

/// `Prefer: resolution=…`: what an insert does with a row whose key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// The `Prefer` header. Unknown preferences are ignored, as PostgREST
/// does, unless `handling=strict` asks for an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefer {
    pub return_: Return,
    /// `return=…` was given (echoed in `Preference-Applied`).
    pub return_given: bool,
    pub count: Option<Count>,
    pub resolution: Option<Resolution>,
    /// `missing=default`: keys a row lacks take the column default, not NULL.
    pub missing_default: bool,
    /// `handling=strict`
    pub strict: bool,
    /// `handling=…` was given (echoed in `Preference-Applied`).
    pub handling_given: bool,
    pub max_affected: Option<u64>,
    /// `tx=rollback` (true) or `tx=commit` (false).
    pub tx_rollback: Option<bool>,
    /// `timezone=…`: the transaction's TimeZone (checked against the
    /// database's time zones before it is applied).
    pub timezone: Option<String>,
    /// What was not understood, for `handling=strict`.
    pub unknown: Vec<String>,
}

pub fn parse_prefer(header: Option<&str>) -> Prefer {
    let mut p = Prefer::default();
    // A preference given twice keeps its first value, as PostgREST reads it.
    let mut given: Vec<&str> = Vec::new();
    for item in header.unwrap_or("").split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let name = item.split_once('=').map_or(item, |(n, _)| n);
        const KNOWN: [&str; 8] = ["return", "count", "resolution", "missing", "handling", "tx", "max-affected", "timezone"];
        if KNOWN.contains(&name) {
            if given.contains(&name) {
                continue;
            }
            given.push(name);
        }
        match item {
            "return=minimal" => (p.return_, p.return_given) = (Return::Minimal, true),
            "return=headers-only" => (p.return_, p.return_given) = (Return::HeadersOnly, true),
            "return=representation" => (p.return_, p.return_given) = (Return::Representation, true),
            "count=exact" => p.count = Some(Count::Exact),
            "count=planned" => p.count = Some(Count::Planned),
            "count=estimated" => p.count = Some(Count::Estimated),
            "resolution=merge-duplicates" => p.resolution = Some(Resolution::MergeDuplicates),
            "resolution=ignore-duplicates" => p.resolution = Some(Resolution::IgnoreDuplicates),
            "missing=default" => p.missing_default = true,
            "missing=null" => p.missing_default = false,
            "handling=strict" => (p.strict, p.handling_given) = (true, true),
            "handling=lenient" => (p.strict, p.handling_given) = (false, true),
            "tx=rollback" => p.tx_rollback = Some(true),
            "tx=commit" => p.tx_rollback = Some(false),
            other => match (other.strip_prefix("max-affected=").map(str::parse::<u64>), other.strip_prefix("timezone=")) {
                (Some(Ok(n)), _) => p.max_affected = Some(n),
                (_, Some(tz)) if !tz.is_empty() => p.timezone = Some(tz.to_owned()),
                _ => p.unknown.push(other.to_owned()),
            },
        }
    }
    p
}

impl Return {
    pub fn name(self) -> &'static str {
        match self {
            Return::Minimal => "minimal",
            Return::HeadersOnly => "headers-only",
            Return::Representation => "representation",
        }
    }
}

impl Count {
    pub fn name(self) -> &'static str {
        match self {
            Count::Exact => "exact",
            Count::Planned => "planned",
            Count::Estimated => "estimated",
        }
    }
}

const BACKWARDS_RANGE: &str = "The lower boundary must be lower than or equal to the upper boundary in the Range header.";

/// `Range: 0-9` (or `items=0-9`, `10-`): (offset, limit). A range that
/// ends before it starts is unsatisfiable (416), as PostgREST answers it.
pub fn parse_range(header: &str) -> Result<(u64, Option<u64>), ParseError> {
    let spec = header.trim().strip_prefix("items=").unwrap_or(header.trim());
    let bad = || err("Invalid range", format!("\"{header}\" must look like 0-9 or 10-"));
    let (from, to) = spec.split_once('-').ok_or_else(bad)?;
    let from: u64 = from.trim().parse().map_err(|_| bad())?;
    match to.trim() {
        "" => Ok((from, None)),
        to => {
            let to: u64 = to.parse().map_err(|_| bad())?;
            if to < from {
                return Err(unsatisfiable(BACKWARDS_RANGE));
            }
            Ok((from, Some((to - from).saturating_add(1))))
        }
    }
}

/// Deepest nesting of `or`/`and` trees and of embeds (the parsers recurse).
const MAX_NESTING: usize = 32;

/// Most embeds in one request, at all depths together: each is a subquery,
/// and a few kilobytes of `select` can otherwise ask for hundreds of them
/// (a plan that takes seconds to build, and minutes to JIT-compile).
pub const MAX_EMBEDS: usize = 32;

fn count_embeds(embeds: &[Embed]) -> usize {
    embeds.iter().map(|e| 1 + count_embeds(&e.embeds)).sum()
}

impl QueryParams {
    /// Whether `select` names an aggregate, or spreads an embed of many
    /// rows (arrays, PostgREST v13), at any depth: `db-aggregates-enabled`.
    pub fn has_aggregates(&self) -> bool {
        fn any(items: &[SelectItem], embeds: &[Embed]) -> bool {
            items.iter().any(|i| i.aggregate.is_some()) || embeds.iter().any(|e| any(&e.select, &e.embeds))
        }
        any(&self.select, &self.embeds)
    }
}

/// A request the client got wrong: HTTP 400, PostgREST's PGRST100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub details: String,
    /// A range that selects nothing (416 PGRST103), not a syntax error (400 PGRST100).
    pub unsatisfiable: bool,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message, self.details)
    }
}

fn err(message: &str, details: String) -> ParseError {
    ParseError { message: message.to_owned(), details, unsatisfiable: false }
}

fn unsatisfiable(details: &str) -> ParseError {
    ParseError { message: "Requested range not satisfiable".into(), details: details.into(), unsatisfiable: true }
}

/// `/orders` → Relation("orders"), `/rpc/place_order` → Rpc(...).
pub fn parse_target(path: &str) -> Option<Target> {
    let decoded = decode(path.trim_start_matches('/')).ok()?;
    let mut parts = decoded.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("rpc"), Some(f), None) if !f.is_empty() => Some(Target::Rpc(f.to_owned())),
        (Some(r), None, None) if !r.is_empty() && r != "rpc" => Some(Target::Relation(r.to_owned())),
        _ => None,
    }
}

fn decode(s: &str) -> Result<String, ParseError> {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| err("Invalid query string", format!("\"{s}\" is not valid UTF-8 after percent-decoding")))
}

/// Parses the query string (without `?`). `is_rpc`: unknown keys are
/// function arguments rather than filters when they have no operator.
pub fn parse_query(query: &str, is_rpc: bool) -> Result<QueryParams, ParseError> {
    let mut params = QueryParams::default();
    let mut top = Scope::default();
    // `select`, `columns`, `on_conflict` and each `order` given twice keep
    // their first value, as PostgREST reads them (`limit`, `offset`: the last).
    let mut given: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (decode(raw_key)?, decode(raw_value)?);
        let first_wins = matches!(key.as_str(), "select" | "columns" | "on_conflict") || key == "order" || key.ends_with(".order");
        if first_wins {
            if given.contains(&key) {
                continue;
            }
            given.push(key.clone());
        }
        match key.as_str() {
            "select" => {
                (params.select, params.embeds) = parse_select(&value, 0)?;
                let n = count_embeds(&params.embeds);
                if n > MAX_EMBEDS {
                    return Err(err("Invalid select", format!("the select has {n} embedded resources; the limit is {MAX_EMBEDS}")));
                }
            }
            "columns" => params.columns = Some(parse_names(&value, "columns")?),
            "on_conflict" => params.on_conflict = Some(parse_names(&value, "on_conflict")?),
            "order" | "limit" | "offset" | "or" | "and" | "not.or" | "not.and" => add_to_scope(&mut top, &key, &value)?,
            _ if is_rpc && !key.contains('.') && !looks_like_filter(&value) => params.rpc_args.push((key, value)),
            _ => {
                // `a.b.limit=1`: the scope of the embed at path `a.b`.
                let (path, name) = split_scope_key(&key);
                let scope = match path {
                    Some(path) => params.nested.entry(path.to_owned()).or_default(),
                    None => &mut top,
                };
                add_to_scope(scope, name, &value)?;
            }
        }
    }
    params.conditions = top.conditions;
    params.order = top.order;
    params.limit = top.limit;
    params.offset = top.offset;
    Ok(params)
}

/// `order_items.quantity` → (Some("order_items"), "quantity");
/// `a.b.not.or` → (Some("a.b"), "not.or"); `status` → (None, "status").
fn split_scope_key(key: &str) -> (Option<&str>, &str) {
    for suffix in ["not.or", "not.and"] {
        if let Some(path) = key.strip_suffix(suffix).and_then(|p| p.strip_suffix('.')) {
            return (Some(path), &key[key.len() - suffix.len()..]);
        }
    }
    if key == "not.or" || key == "not.and" {
        return (None, key);
    }
    match key.rsplit_once('.') {
        Some((path, name)) => (Some(path), name),
        None => (None, key),
    }
}

fn add_to_scope(scope: &mut Scope, key: &str, value: &str) -> Result<(), ParseError> {
    match key {
        "order" => scope.order = parse_order(value)?,
        "limit" if value.trim().starts_with('-') && value.trim()[1..].parse::<u64>().is_ok() => {
            return Err(unsatisfiable("Limit should be greater than or equal to zero."))
        }
        "limit" => scope.limit = Some(parse_count("limit", value)?),
        "offset" => scope.offset = Some(parse_count("offset", value)?),
        "or" | "and" | "not.or" | "not.and" => {
            let negated = key.starts_with("not.");
            let any = key.ends_with("or");
            scope.conditions.push(Condition::Group { any, negated, children: parse_group_body(value, 0)? });
        }
        _ => scope.conditions.push(parse_filter(key, value)?),
    }
    Ok(())
}

/// `a,b,c` (column names).
fn parse_names(value: &str, what: &str) -> Result<Vec<String>, ParseError> {
    value
        .split(',')
        .map(|n| {
            // postgrest-js sends `columns="a","b"`.
            let n = n.trim();
            let n = n.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(n);
            check_identifier(n, what).map(|_| n.to_owned())
        })
        .collect()
}

fn looks_like_filter(value: &str) -> bool {
    let v = value.strip_prefix("not.").unwrap_or(value);
    v.split_once('.').is_some_and(|(op, _)| {
        let name = op.split_once('(').map_or(op, |(n, _)| n);
        OperatorKind::named(name).is_some()
    })
}

fn parse_count(name: &str, value: &str) -> Result<u64, ParseError> {
    value.parse().map_err(|_| err("Invalid query string", format!("{name} must be a non-negative integer, got \"{value}\"")))
}

fn check_identifier(name: &str, what: &str) -> Result<(), ParseError> {
    // Names are looked up in the schema cache later; here only reject what
    // no column name can be (quotes and separators of this grammar).
    if name.is_empty() || name.chars().any(|c| matches!(c, '"' | ',' | '(' | ')') || c.is_control()) {
        return Err(err("Invalid query string", format!("\"{name}\" is not a valid {what} name")));
    }
    Ok(())
}

/// The columns and the embeds of a `select=` (or of an embed's parentheses).
fn parse_select(value: &str, depth: usize) -> Result<(Vec<SelectItem>, Vec<Embed>), ParseError> {
    if depth > MAX_NESTING {
        return Err(err("Invalid select", format!("embeds are nested more than {MAX_NESTING} levels deep")));
    }
    let (mut items, mut embeds) = (Vec::new(), Vec::new());
    for raw in split_top_level(value) {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(err("Invalid select", format!("\"{value}\" has an empty item")));
        }
        let (alias, rest) = match raw.split_once(':') {
            Some((a, r)) if !a.is_empty() && !r.starts_with(':') && !a.contains('(') => (Some(a.to_owned()), r),
            _ => (None, raw),
        };
        if let Some(a) = &alias {
            check_identifier(a, "alias")?;
        }
        let (rest, aggregate) = split_aggregate(rest)?;
        if let (Some(open), None) = (rest.find('('), &aggregate) {
            embeds.push(parse_embed(&rest[..open], &rest[open..], alias, depth)?);
            continue;
        }
        if let Some(Aggregate { cast: Some(t), .. }) = &aggregate {
            check_type_name(t)?;
        }
        if aggregate.as_ref().is_some_and(|a| a.function == AggregateFn::CountRows) {
            items.push(SelectItem { column: "*".into(), path: Vec::new(), alias, cast: None, aggregate });
            continue;
        }
        let (column, cast) = match rest.split_once("::") {
            Some((c, t)) => (c, Some(t.to_owned())),
            None => (rest, None),
        };
        let (column, path) = split_field(column)?;
        if let Some(t) = &cast {
            check_type_name(t)?;
        }
        items.push(SelectItem { column, path, alias, cast, aggregate });
    }
    Ok((items, embeds))
}

/// PostgREST's grammar of a cast: letters, digits and '_', then `[]` for an
/// array (the type itself is looked up in the schema cache by `plan`).
fn check_type_name(t: &str) -> Result<(), ParseError> {
    let base = t.trim_end_matches("[]");
    if base.is_empty() || !base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(err("Invalid query string", format!("\"{t}\" is not a type name")));
    }
    Ok(())
}

/// `amount::int.sum()::text` → (`amount::int`, sum, cast text); `count()`
/// → count of rows; anything else as it is.
fn split_aggregate(item: &str) -> Result<(&str, Option<Aggregate>), ParseError> {
    let (call, cast) = match item.rsplit_once("()::") {
        Some((call, cast)) => (call, Some(cast.to_owned())),
        None => match item.strip_suffix("()") {
            Some(call) => (call, None),
            None => return Ok((item, None)),
        },
    };
    if call == "count" {
        return Ok(("", Some(Aggregate { function: AggregateFn::CountRows, cast })));
    }
    match call.rsplit_once('.').and_then(|(field, f)| AggregateFn::named(f).map(|f| (field, f))) {
        Some((field, function)) if !field.is_empty() => Ok((field, Some(Aggregate { function, cast }))),
        // `rel()`: an empty embed.
        _ if cast.is_none() && !call.contains('.') => Ok((item, None)),
        _ => Err(err("Invalid select", format!("\"{item}\": an aggregate is column.sum(), .avg(), .count(), .min(), .max() or count()"))),
    }
}

/// `order_items!inner` + `(product_name,quantity)`
fn parse_embed(head: &str, body: &str, alias: Option<String>, depth: usize) -> Result<Embed, ParseError> {
    let inner_text = body.strip_prefix('(').and_then(|b| b.strip_suffix(')')).ok_or_else(|| {
        err("Invalid select", format!("\"{head}{body}\": an embed is relation(columns), with nothing after the parenthesis"))
    })?;
    let (spread, head) = match head.strip_prefix("...") {
        Some(_) if alias.is_some() => {
            return Err(err("Invalid select", format!("\"{head}\": a spread embed takes no alias, its columns may")))
        }
        Some(rest) => (true, rest),
        None => (false, head),
    };
    let mut parts = head.split('!');
    let relation = parts.next().unwrap_or("");
    check_identifier(relation, "relation")?;
    let (mut hint, mut inner) = (None, false);
    for part in parts {
        match part {
            "inner" => inner = true,
            "left" => inner = false,
            other => {
                check_identifier(other, "relationship hint")?;
                hint = Some(other.to_owned());
            }
        }
    }
    let (select, embeds) = if inner_text.trim().is_empty() { (Vec::new(), Vec::new()) } else { parse_select(inner_text, depth + 1)? };
    Ok(Embed { relation: relation.to_owned(), alias, spread, hint, inner, select, embeds })
}

fn parse_order(value: &str) -> Result<Vec<OrderTerm>, ParseError> {
    value
        .split(',')
        .map(|term| {
            let mut parts = term.trim().split('.');
            let field = parts.next().unwrap_or("");
            let (related, field) = match field.strip_suffix(')').and_then(|f| f.split_once('(')) {
                Some((relation, column)) => {
                    check_identifier(relation, "relation")?;
                    (Some(relation.to_owned()), column)
                }
                None => (None, field),
            };
            let (column, path) = split_field(field)?;
            let mut t = OrderTerm { related, column, path, descending: false, nulls_first: None };
            for modifier in parts {
                match modifier {
                    "asc" => t.descending = false,
                    "desc" => t.descending = true,
                    "nullsfirst" => t.nulls_first = Some(true),
                    "nullslast" => t.nulls_first = Some(false),
                    other => {
                        return Err(err("Invalid order", format!("\"{other}\" in \"{term}\": use asc, desc, nullsfirst or nullslast")))
                    }
                }
            }
            Ok(t)
        })
        .collect()
}

/// `col=[not.]op.value`
fn parse_filter(field: &str, value: &str) -> Result<Condition, ParseError> {
    let (column, path) = split_field(field)?;
    let column = column.as_str();
    // PostgREST's message (what clients match on); the details say how to fix it.
    let filter_error = |details: String| err(&format!("failed to parse filter ({value})"), details);
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (op_name, operand) = rest
        .split_once('.')
        .ok_or_else(|| filter_error(format!("\"{column}={value}\" must be column=operator.value, e.g. {column}=eq.42")))?;
    // `op`, `op(any)` / `op(all)`, or a full-text operator's `fts(language)`.
    let (name, modifier) = match op_name.split_once('(') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| filter_error(format!("\"{op_name}\": a modifier must be in parentheses, e.g. eq(any)")))?;
            (name, Some(inner))
        }
        None => (op_name, None),
    };
    let kind = OperatorKind::named(name).ok_or_else(|| filter_error(format!("unknown operator \"{name}\" ({})", operator_names())))?;
    let filter = match (kind, modifier) {
        (OperatorKind::Compare(op), Some(q @ ("any" | "all"))) => {
            Filter::Quantified { op: QuantifiedOp::Compare(op), all: q == "all", values: parse_braces(operand).map_err(|e| filter_error(e.details))? }
        }
        (OperatorKind::Pattern(op), Some(q @ ("any" | "all"))) => {
            Filter::Quantified { op: QuantifiedOp::Pattern(op), all: q == "all", values: parse_braces(operand).map_err(|e| filter_error(e.details))? }
        }
        (OperatorKind::Fts(kind), language) => {
            if let Some(language) = language {
                check_identifier(language, "text search configuration")?;
            }
            Filter::Fts { kind, language: language.map(str::to_owned), query: operand.to_owned() }
        }
        (_, Some(modifier)) => {
            return Err(filter_error(format!("\"{name}({modifier})\": only eq, neq, gt, gte, lt, lte, like, ilike, match and imatch take (any) or (all), and the fts operators a (language)")))
        }
        (OperatorKind::Compare(op), None) => Filter::Compare(op, operand.to_owned()),
        (OperatorKind::Pattern(op), None) => Filter::Pattern(op, operand.to_owned()),
        (OperatorKind::In, None) => Filter::In(parse_list(operand).map_err(|e| filter_error(e.details))?),
        (OperatorKind::Is, None) => Filter::Is(match operand.to_ascii_lowercase().as_str() {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            _ => return Err(filter_error(format!("is.{operand}: use is.null, is.not_null, is.true, is.false or is.unknown"))),
        }),
        (OperatorKind::Set(op), None) => Filter::Set(op, operand.to_owned()),
    };
    Ok(Condition::Filter { column: column.to_owned(), path, negated, filter })
}

/// `{a,b,"c,d"}` → ["a", "b", "c,d"]: the values of `op(any)` / `op(all)`.
fn parse_braces(text: &str) -> Result<Vec<String>, ParseError> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| err("Invalid filter", format!("{text}: the values must be in braces, e.g. eq(any).{{1,2,3}}")))?;
    split_top_level(inner).into_iter().map(|item| unquote_item(&item)).collect()
}

/// `(a,b,"c,d")` → ["a", "b", "c,d"]
fn parse_list(text: &str) -> Result<Vec<String>, ParseError> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| err("Invalid filter", format!("in.{text}: the list must be in parentheses, e.g. in.(1,2,3)")))?;
    split_top_level(inner).into_iter().map(|item| unquote_item(&item)).collect()
}

/// Splits on commas outside quotes and parentheses.
fn split_top_level(text: &str) -> Vec<String> {
    let (mut items, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0usize, false);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
                continue;
            }
            '"' => quoted = !quoted,
            '(' | '{' if !quoted => depth += 1,
            ')' | '}' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.is_empty() || !items.is_empty() {
        items.push(current);
    }
    items
}

fn unquote_item(item: &str) -> Result<String, ParseError> {
    let t = item.trim();
    match t.strip_prefix('"') {
        None => Ok(t.to_owned()),
        Some(rest) => {
            let body = rest.strip_suffix('"').ok_or_else(|| err("Invalid filter", format!("unterminated quote in {item}")))?;
            let mut out = String::new();
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
            }
            Ok(out)
        }
    }
}

/// `(a.eq.1,b.gt.2,and(c.lt.3,not.d.is.null))`
fn parse_group_body(value: &str, depth: usize) -> Result<Vec<Condition>, ParseError> {
    let tree_error = |details: String| err(&format!("failed to parse logic tree ({value})"), details);
    if depth > MAX_NESTING {
        return Err(tree_error(format!("or/and are nested more than {MAX_NESTING} levels deep")));
    }
    let inner = value
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| tree_error(format!("\"{value}\" must be in parentheses, e.g. or=(a.eq.1,b.eq.2)")))?;
    split_top_level(inner).iter().map(|item| parse_group_item(item.trim(), depth).map_err(|e| tree_error(e.details))).collect()
}

fn parse_group_item(item: &str, depth: usize) -> Result<Condition, ParseError> {
    let (negated, rest) = match item.strip_prefix("not.") {
        Some(r) if r.starts_with("or(") || r.starts_with("and(") => (true, r),
        _ => (false, item),
    };
    for (prefix, any) in [("or", true), ("and", false)] {
        if let Some(body) = rest.strip_prefix(prefix).filter(|b| b.starts_with('(')) {
            return Ok(Condition::Group { any, negated, children: parse_group_body(body, depth + 1)? });
        }
    }
    let (column, filter) =
        item.split_once('.').ok_or_else(|| err("Invalid logic tree", format!("\"{item}\" must be column.operator.value")))?;
    // In a tree, a value holding `,` or `)` is double-quoted (`name.eq."a,b"`).
    let (not, rest) = filter.strip_prefix("not.").map_or(("", filter), |r| ("not.", r));
    let filter = match rest.split_once('.') {
        Some((op, value)) if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') => {
            format!("{not}{op}.{}", unquote_item(value)?)
        }
        _ => filter.to_owned(),
    };
    parse_filter(column, &filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> QueryParams {
        parse_query(s, false).unwrap()
    }

    #[test]
    fn targets() {
        assert_eq!(parse_target("/orders"), Some(Target::Relation("orders".into())));
        assert_eq!(parse_target("/rpc/place_order"), Some(Target::Rpc("place_order".into())));
        assert_eq!(parse_target("/order%20items"), Some(Target::Relation("order items".into())));
        assert_eq!(parse_target("/"), None);
        assert_eq!(parse_target("/rpc"), None);
        assert_eq!(parse_target("/a/b"), None);
    }

    #[test]
    fn embeds_are_capped_in_total_not_only_in_depth() {
        // Two aliased embeds per level, 5 levels: 62 embeds in ~1 KB.
        let mut select = "product_id".to_owned();
        for _ in 0..5 {
            select = format!("product_id,a:order_items({select}),b:order_items({select})");
        }
        let e = parse_query(&format!("select={select}"), false).unwrap_err();
        assert_eq!(e.details, format!("the select has 62 embedded resources; the limit is {MAX_EMBEDS}"));
        assert!(parse_query("select=*,a:order_items(*,products(*)),b:order_items(*)", false).is_ok());
    }

    #[test]
    fn casts_are_type_names_only() {
        for bad in [
            "name::text FROM products _pgrst_t0 UNION SELECT rolname FROM pg_roles UNION SELECT name",
            "name::text;",
            "name::",
            "name::a-b",
        ] {
            assert!(parse_query(&format!("select={bad}"), false).is_err(), "{bad}");
        }
    }

    #[test]
    fn select_with_aliases_and_casts() {
        let p = q("select=order_number,total:total_amount::text,status");
        assert_eq!(p.select.len(), 3);
        assert_eq!(
            p.select[1],
            SelectItem {
                column: "total_amount".into(),
                path: vec![],
                alias: Some("total".into()),
                cast: Some("text".into()),
                aggregate: None
            }
        );
        assert!(parse_query("select=a::text;drop", false).is_err());
        // Double-quoted names hold what a bare name cannot.
        assert_eq!(q("select=%22column%20with,comma%22").select[0].column, "column with,comma");
        assert_eq!(
            q("%22my%20col%22=eq.1").conditions[0],
            Condition::Filter { column: "my col".into(), path: vec![], negated: false, filter: Filter::Compare(CompareOp::Eq, "1".into()) }
        );
        for bad in ["select=%22x", "select=%22x%22y", "select=%22%22"] {
            assert!(parse_query(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_with_not_in_and_is() {
        let p = q("status=eq.pending&total_amount=not.gt.100&order_id=in.(1,2,%223,4%22)&notes=is.null&billing_name=ilike.*mart*");
        assert_eq!(p.conditions.len(), 5);
        assert_eq!(
            p.conditions[1],
            Condition::Filter {
                column: "total_amount".into(),
                path: vec![],
                negated: true,
                filter: Filter::Compare(CompareOp::Gt, "100".into())
            }
        );
        assert_eq!(
            p.conditions[2],
            Condition::Filter {
                column: "order_id".into(),
                path: vec![],
                negated: false,
                filter: Filter::In(vec!["1".into(), "2".into(), "3,4".into()])
            }
        );
        assert!(matches!(p.conditions[3], Condition::Filter { filter: Filter::Is(IsValue::Null), .. }));
    }

    // PostgREST's operators (docs: tables_views, "Operators"), each with the
    // operand it takes.
    #[test]
    fn every_postgrest_operator_with_its_operand() {
        let one = |qs: &str| match q(qs).conditions.remove(0) {
            Condition::Filter { filter, .. } => filter,
            other => panic!("{other:?}"),
        };
        assert_eq!(one("a=isdistinct.5"), Filter::Compare(CompareOp::IsDistinct, "5".into()));
        assert_eq!(one("a=match.^A.*z$"), Filter::Pattern(PatternOp::Match, "^A.*z$".into()));
        assert_eq!(one("a=imatch.abc"), Filter::Pattern(PatternOp::Imatch, "abc".into()));
        assert_eq!(
            one("a=like(any).{O*,\"P,*\"}"),
            Filter::Quantified { op: QuantifiedOp::Pattern(PatternOp::Like), all: false, values: vec!["O*".into(), "P,*".into()] }
        );
        assert_eq!(
            one("a=gt(all).{1,2}"),
            Filter::Quantified { op: QuantifiedOp::Compare(CompareOp::Gt), all: true, values: vec!["1".into(), "2".into()] }
        );
        assert_eq!(
            one("a=fts(english).cat%20%26%20rat"),
            Filter::Fts { kind: FtsKind::Fts, language: Some("english".into()), query: "cat & rat".into() }
        );
        assert_eq!(one("a=wfts.\"a b\" -c"), Filter::Fts { kind: FtsKind::Websearch, language: None, query: "\"a b\" -c".into() });
        for (qs, op) in [
            ("cs", SetOp::Contains),
            ("cd", SetOp::ContainedIn),
            ("ov", SetOp::Overlaps),
            ("sl", SetOp::StrictlyLeft),
            ("sr", SetOp::StrictlyRight),
            ("nxr", SetOp::NotExtendsRight),
            ("nxl", SetOp::NotExtendsLeft),
            ("adj", SetOp::Adjacent),
        ] {
            assert_eq!(one(&format!("a={qs}.[1,5)")), Filter::Set(op, "[1,5)".into()));
        }
        assert_eq!(one("a=is.NOT_NULL"), Filter::Is(IsValue::NotNull));
        assert_eq!(one("a=is.True"), Filter::Is(IsValue::True));
        for bad in ["a=in(any).{1}", "a=eq(some).{1}", "a=eq(any).1,2", "a=is.maybe", "a=fts(eng\"lish).x", "a=nope.1", "a=cs(any).{1}"] {
            assert!(parse_query(bad, false).is_err(), "{bad}");
        }
        // Inside logic trees too.
        let p = q("or=(tags.cs.{a,b},name.ilike(any).{a*,b*},range.not.adj.\"[1,2)\",note.eq.\"a.b,c\")");
        let Condition::Group { children, .. } = &p.conditions[0] else { panic!() };
        assert_eq!(
            children,
            &vec![
                Condition::Filter {
                    column: "tags".into(),
                    path: vec![],
                    negated: false,
                    filter: Filter::Set(SetOp::Contains, "{a,b}".into())
                },
                Condition::Filter {
                    column: "name".into(),
                    path: vec![],
                    negated: false,
                    filter: Filter::Quantified {
                        op: QuantifiedOp::Pattern(PatternOp::Ilike),
                        all: false,
                        values: vec!["a*".into(), "b*".into()]
                    }
                },
                Condition::Filter {
                    column: "range".into(),
                    path: vec![],
                    negated: true,
                    filter: Filter::Set(SetOp::Adjacent, "[1,2)".into())
                },
                Condition::Filter {
                    column: "note".into(),
                    path: vec![],
                    negated: false,
                    filter: Filter::Compare(CompareOp::Eq, "a.b,c".into())
                },
            ]
        );
    }

    #[test]
    fn logic_trees_nest() {
        let p = q("or=(status.eq.pending,and(total_amount.gt.10,notes.not.is.null))");
        let Condition::Group { any: true, negated: false, children } = &p.conditions[0] else { panic!("{p:?}") };
        assert_eq!(children.len(), 2);
        assert!(matches!(&children[1], Condition::Group { any: false, children, .. } if children.len() == 2));
        assert!(matches!(q("not.and=(a.eq.1,b.eq.2)").conditions[0], Condition::Group { any: false, negated: true, .. }));
    }

    #[test]
    fn order_limit_offset() {
        let p = q("order=created_at.desc.nullslast,order_id&limit=10&offset=20");
        assert_eq!(
            p.order[0],
            OrderTerm { related: None, column: "created_at".into(), path: vec![], descending: true, nulls_first: Some(false) }
        );
        assert_eq!(p.order[1], OrderTerm { related: None, column: "order_id".into(), path: vec![], descending: false, nulls_first: None });
        assert_eq!((p.limit, p.offset), (Some(10), Some(20)));
    }

    #[test]
    fn bad_input_is_a_clear_400() {
        let e = parse_query("limit=-1", false).unwrap_err();
        assert!(e.unsatisfiable && e.details == "Limit should be greater than or equal to zero.", "{e}");
        for (query, needle) in [
            ("status=pending", "must be column=operator.value"),
            ("status=equals.x", "unknown operator \"equals\""),
            ("limit=x", "limit must be a non-negative integer"),
            ("order=a.sideways", "\"sideways\""),
            ("order_id=in.1,2", "must be in parentheses"),
            ("notes=is.maybe", "is.maybe"),
            ("or=a.eq.1", "must be in parentheses"),
            ("x=eq.%FF", "not valid UTF-8"),
            ("a\"b=eq.1", "not a valid column name"),
        ] {
            let e = parse_query(query, false).unwrap_err();
            assert!(e.to_string().contains(needle), "{query}: {e}");
        }
    }

    #[test]
    fn embeds_with_aliases_hints_and_scoped_filters() {
        let p = q("select=order_number,items:order_items!inner(product_name,quantity,products(name)),users!fk_user(*)\
                   &order_items.quantity=gt.1&items.order=quantity.desc&items.limit=2&items.products.name=like.M*&status=eq.paid");
        assert_eq!(p.select.len(), 1);
        assert_eq!(p.embeds.len(), 2);
        let items = &p.embeds[0];
        assert_eq!((items.relation.as_str(), items.key(), items.inner), ("order_items", "items", true));
        assert_eq!(items.select.len(), 2);
        assert_eq!(items.embeds[0].relation, "products");
        assert_eq!(p.embeds[1].hint.as_deref(), Some("fk_user"));
        assert_eq!(p.conditions.len(), 1, "status stays at the top");
        assert_eq!(p.nested["order_items"].conditions.len(), 1);
        assert_eq!(p.nested["items"].limit, Some(2));
        assert_eq!(p.nested["items"].order[0].column, "quantity");
        assert_eq!(p.nested["items.products"].conditions.len(), 1);
        let p = q("select=*,order_items(*)&order_items.not.or=(quantity.eq.1,quantity.eq.2)&not.and=(status.eq.a)");
        assert_eq!(p.select[0].column, "*");
        assert!(matches!(p.nested["order_items"].conditions[0], Condition::Group { negated: true, any: true, .. }));
        assert!(matches!(p.conditions[0], Condition::Group { negated: true, any: false, .. }));
        for bad in [
            "select=order_items(a",
            "select=order_items(a)x",
            "select=x:...order_items(a)",
            "select=a,,b",
            "select=\"x\"(a)",
            "select=a.sum()x",
            "select=a.median()",
        ] {
            assert!(parse_query(bad, false).is_err(), "{bad}");
        }
        // Spreads and aggregates.
        let p = q("select=...clients(name),total:amount::int.sum()::text,count()");
        assert!(p.embeds[0].spread && p.embeds[0].relation == "clients");
        assert_eq!(p.select[0].aggregate, Some(Aggregate { function: AggregateFn::Sum, cast: Some("text".into()) }));
        assert_eq!(
            (p.select[0].column.as_str(), p.select[0].cast.as_deref(), p.select[0].alias.as_deref()),
            ("amount", Some("int"), Some("total"))
        );
        assert_eq!(p.select[1].aggregate.as_ref().map(|a| a.function), Some(AggregateFn::CountRows));
        assert!(p.has_aggregates());
        assert!(!q("select=a,b(c)").has_aggregates());
        let p = q("columns=a,b&on_conflict=sku");
        assert_eq!(p.columns.unwrap(), ["a", "b"]);
        assert_eq!(p.on_conflict.unwrap(), ["sku"]);
    }

    #[test]
    fn deep_nesting_is_a_400_not_a_stack_overflow() {
        let deep_tree = format!("or=({}a.eq.1{})", "or(".repeat(1000), ")".repeat(1000));
        let e = parse_query(&deep_tree, false).unwrap_err();
        assert!(e.message.starts_with("failed to parse logic tree"), "{e}");
        assert!(e.details.contains("nested more than 32 levels"), "{e}");
        let deep_embed = format!("select={}a{}", "b(".repeat(1000), ")".repeat(1000));
        assert!(parse_query(&deep_embed, false).unwrap_err().details.contains("nested more than 32 levels"));
        let fine = format!("or=({}a.eq.1{})", "or(".repeat(10), ")".repeat(10));
        assert!(parse_query(&fine, false).is_ok());
    }

    #[test]
    fn prefer_and_range_headers() {
        assert_eq!(parse_range("0-18446744073709551615").unwrap(), (0, Some(u64::MAX)));
        let p = parse_prefer(Some("return=representation, count=exact"));
        assert_eq!((p.return_, p.count), (Return::Representation, Some(Count::Exact)));
        let p = parse_prefer(Some("resolution=merge-duplicates,missing=default, handling=strict, max-affected=5, tx=rollback, wat=1"));
        assert_eq!(p.resolution, Some(Resolution::MergeDuplicates));
        assert!(p.missing_default && p.strict);
        assert_eq!((p.max_affected, p.tx_rollback), (Some(5), Some(true)));
        assert_eq!(p.unknown, ["wat=1"]);
        assert_eq!(parse_prefer(Some("count=planned")).count, Some(Count::Planned));
        assert_eq!(parse_prefer(Some("max-affected=x")).unknown, ["max-affected=x"]);
        assert_eq!(parse_range("0-9").unwrap(), (0, Some(10)));
        assert_eq!(parse_range("items=10-").unwrap(), (10, None));
        assert!(parse_range("9-0").is_err());
        assert!(parse_range("a-b").is_err());
    }

    #[test]
    fn rpc_arguments_are_not_filters() {
        let p = parse_query("code=SPRING&order_id=42&limit=1", true).unwrap();
        assert_eq!(p.rpc_args, [("code".to_owned(), "SPRING".to_owned()), ("order_id".to_owned(), "42".to_owned())]);
        assert_eq!(p.limit, Some(1));
    }

    #[test]
    fn injection_attempts_stay_values() {
        let p = q("status=eq.x');DROP TABLE orders;--");
        assert_eq!(
            p.conditions[0],
            Condition::Filter {
                column: "status".into(),
                path: vec![],
                negated: false,
                filter: Filter::Compare(CompareOp::Eq, "x');DROP TABLE orders;--".into())
            }
        );
    }
}
