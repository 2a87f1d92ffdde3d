//! Stage 3: an `ApiRequest` resolved against the schema cache. Unknown
//! tables, columns, functions and arguments are refused here, before any
//! SQL exists; what comes out names only things the cache holds.

use crate::action::WriteMethod;
use crate::error::ApiError;
use crate::request::{
    AggregateFn, CompareOp, Condition, Embed, Filter, IsValue, JsonKey, JsonPath, Prefer, QueryParams, Resolution, Return, Scope, Target,
};
use crate::schema::{Argument, Cardinality, Column, Function, RawBody, Relation, Relationship, Returns, RowType, SchemaCache};
use serde_json::{Map, Value};

/// The keys of each row a level answers (`relation` with `*` when
/// `all_columns`, the selected items, the embeds or a spread's own keys).
fn answered_keys(relation: &Relation, all_columns: bool, select: &[Selected], embeds: &[EmbedPlan], out: &mut Vec<String>) {
    if all_columns {
        out.extend(relation.columns.iter().map(|c| c.name.clone()));
    }
    out.extend(select.iter().map(|s| s.output_name().to_owned()));
    for e in embeds.iter().filter(|e| !e.hidden) {
        if e.spread {
            answered_keys(&e.read.relation, e.read.all_columns, &e.read.select, &e.read.embeds, out);
        } else {
            out.push(e.key.clone());
        }
    }
}

impl WritePlan {
    /// The keys of each returned row, in order (the CSV header).
    pub fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        answered_keys(&self.relation, self.returning_all, &self.returning, &self.returning_embeds, &mut out);
        out
    }
}

impl ReadPlan {
    /// No answer has the same key twice: an item named again as it was
    /// (`select=id,id`, `select=*,id`) is answered once; two items under
    /// one key (`select=*,status:notes`) are a 400.
    fn one_key_each(&mut self) -> Result<(), ApiError> {
        let mut seen: Vec<Selected> = Vec::new();
        let all_columns = self.all_columns;
        self.select.retain(|s| {
            // A stored column as it is, which `*` answers already.
            let in_star = all_columns
                && s.alias.is_none()
                && s.path.is_empty()
                && s.cast.is_none()
                && s.aggregate.is_none()
                && s.column.computed_by.is_none();
            let again = in_star || seen.contains(s);
            seen.push(s.clone());
            !again
        });
        let mut sorted = self.keys();
        sorted.sort();
        match sorted.windows(2).find(|w| w[0] == w[1]) {
            Some(twice) => Err(ApiError::key_twice(&twice[0])),
            None => Ok(()),
        }
    }

    /// The keys of each answered row, in order (the CSV header), spread
    /// embeds' lifted ones included.
    pub fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        answered_keys(&self.relation, self.all_columns, &self.select, &self.embeds, &mut out);
        out
    }

    /// The subqueries its statement has: one per embed, embed filter and
    /// related order, each with those of the embed it reads.
    pub fn subqueries(&self) -> usize {
        fn within(w: &Where) -> usize {
            match w {
                Where::Filter { .. } => 0,
                Where::Group { children, .. } => children.iter().map(within).sum(),
                Where::Related { embed, .. } => 1 + embed.read.subqueries(),
            }
        }
        let embeds: usize = self.embeds.iter().map(|e| 1 + e.read.subqueries()).sum();
        let filters: usize = self.filter.iter().map(within).sum();
        let orders: usize = self.order.iter().filter_map(|o| o.through.as_ref()).map(|e| 1 + e.read.subqueries()).sum();
        embeds + filters + orders
    }

    /// Whether it aggregates (an aggregate in `select`, or the spread of an
    /// embed of many rows), at any depth: `db-aggregates-enabled`. `count`
    /// of an embed (`rel(count)`) is not one, as in PostgREST.
    pub fn aggregates(&self) -> bool {
        let named = |s: &Selected| matches!(s.aggregate, Some((f, _)) if !(f == AggregateFn::CountRows && s.column.name == "count"));
        self.select.iter().any(named) || self.embeds.iter().any(|e| (e.spread && !e.to_one) || e.read.aggregates())
    }
}

impl Selected {
    /// The key in each JSON row: the alias, else the aggregate's name, else
    /// PostgREST's name for a JSON path (its last key; the column when there
    /// is none), else the column.
    pub fn output_name(&self) -> &str {
        if let Some(alias) = &self.alias {
            return alias;
        }
        if let Some((function, _)) = &self.aggregate {
            return function.name();
        }
        self.path
            .iter()
            .rev()
            .find_map(|step| match &step.key {
                JsonKey::Name(key) => Some(key.as_str()),
                JsonKey::Index(_) => None,
            })
            .unwrap_or(&self.column.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    /// Unused by `count()` (`AggregateFn::CountRows`).
    pub column: Column,
    pub path: JsonPath,
    pub alias: Option<String>,
    /// The cast's type, a quoted name from the schema cache.
    pub cast: Option<String>,
    /// An aggregate of the column, and the cast of its result.
    pub aggregate: Option<(AggregateFn, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Where {
    Filter {
        column: Column,
        path: JsonPath,
        negated: bool,
        filter: Filter,
    },
    Group {
        any: bool,
        negated: bool,
        children: Vec<Where>,
    },
    /// `rel=not.is.null` (`exists`) / `rel=is.null`: whether the embed has
    /// a row, as PostgREST filters on an embedded resource.
    Related {
        embed: Box<EmbedPlan>,
        exists: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ordering {
    /// A column of this to-one embed (`order=clients(name)`), not of the relation.
    pub through: Option<Box<EmbedPlan>>,
    pub column: Column,
    pub path: JsonPath,
    pub descending: bool,
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    pub relation: Relation,
    /// A set-returning function whose rows are read in place of the
    /// relation's (`POST /rpc/f?select=…&col=eq.x`).
    pub call: Option<CallPlan>,
    /// `*` (or no `select`): every stored column, before `select`'s items.
    pub all_columns: bool,
    /// The items named in `select` (none with only embeds: only they are answered).
    pub select: Vec<Selected>,
    pub embeds: Vec<EmbedPlan>,
    pub filter: Vec<Where>,
    pub order: Vec<Ordering>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub body: Body,
}

/// How the rows read become the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A JSON array of objects.
    Rows,
    /// The one row as an object, or `null` (a function returning one row).
    Row,
    /// A JSON array of the `pgrst_scalar` column's values.
    Values,
    /// The one value (a function returning one value).
    Value,
    /// Nothing (a `void` function): 204.
    Nothing,
    /// The one value as is, in the function's own media type.
    Raw,
}

/// What the client's `Accept` makes of a function's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// JSON as the function returns it (a set, one row, one value).
    AsReturned,
    /// One object: a set of values answers rows (`{"pgrst_scalar": …}`).
    Object,
    /// Rows whatever it returns (CSV).
    Rows,
    /// Its one value as is, in the media type it returns (406 for a set).
    Raw,
}

/// The column of a function's scalar result, as PostgREST names it.
pub const SCALAR_COLUMN: &str = "pgrst_scalar";

/// How an embedded relation's rows belong to an outer row.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// (outer column, embedded column) pairs that are equal.
    Keys(Vec<(String, String)>),
    /// Through a junction table: (outer column, junction column) pairs,
    /// then the junction's (junction column, embedded column) pairs.
    Junction { table: String, outer: Vec<(String, String)>, target: Vec<(String, String)> },
    /// A computed relationship: the rows a function returns for the outer row.
    Function { schema: String, name: String },
}

/// A related relation read for each row of the outer one.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedPlan {
    /// The key it appears under in each outer row.
    pub key: String,
    pub to_one: bool,
    pub inner: bool,
    /// An empty embed (`rel()`): it may filter, it is not answered.
    pub hidden: bool,
    /// `...rel(cols)`: its columns are lifted into the outer row (of an
    /// embed of many rows: each an array of its values).
    pub spread: bool,
    pub link: Link,
    pub read: ReadPlan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteKind {
    /// Rows as JSON arrays, one per group of rows with the same keys
    /// (one group unless `missing=default`); `columns` of each group.
    Insert {
        groups: Vec<(Vec<Column>, String)>,
        on_conflict: Option<OnConflict>,
    },
    /// One JSON object; `columns`: its keys (or those `columns=` names);
    /// `defaulted`: set to their defaults (`missing=default`).
    Update {
        columns: Vec<Column>,
        defaulted: Vec<Column>,
        row_json: String,
        limited: Option<Limited>,
    },
    Delete {
        limited: Option<Limited>,
    },
    /// A PATCH naming no column (`{}`, `[]`): nothing changes, but the
    /// table is still read, so the caller needs rights on it (as PostgREST).
    Unchanged,
}

impl WriteKind {
    /// A limited update's or delete's rows (`limit`/`offset`).
    pub fn limited(&self) -> Option<&Limited> {
        match self {
            WriteKind::Update { limited, .. } | WriteKind::Delete { limited } => limited.as_ref(),
            WriteKind::Insert { .. } | WriteKind::Unchanged => None,
        }
    }
}

/// With `missing=default`, the most different sets of keys the objects of
/// one insert may have (each is an INSERT of its own).
const MAX_KEY_SETS: usize = 64;

/// PostgREST's limited update and delete (`PATCH`/`DELETE` with `limit` or
/// `offset`): the rows a read with the same filters, `order` and range
/// would give.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    /// Never empty (else PGRST109); the relation's own columns.
    pub order: Vec<Ordering>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub by: RowMatch,
}

/// How the rows a limited write picked are found again by the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowMatch {
    /// By address (`tableoid`, `ctid`): exactly those rows.
    Address,
    /// By the order's columns, as PostgREST does (views, foreign tables):
    /// unless those are unique, other rows with the same values and the
    /// same filters match too; more than `limit` are rolled back (PGRST110).
    OrderColumns,
}

/// An upsert: what makes a row a duplicate, and what to do then.
#[derive(Debug, Clone, PartialEq)]
pub struct OnConflict {
    pub columns: Vec<Column>,
    pub resolution: Resolution,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WritePlan {
    pub relation: Relation,
    pub kind: WriteKind,
    pub filter: Vec<Where>,
    /// What `return=representation` returns: every column and/or these.
    pub returning_all: bool,
    pub returning: Vec<Selected>,
    pub returning_embeds: Vec<EmbedPlan>,
    pub return_: Return,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    pub function: Function,
    pub args: Vec<(Argument, ArgValue)>,
}

/// An argument's value as it is passed.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// Text PostgreSQL reads as the parameter's type (None: NULL).
    Text(Option<String>),
    /// A JSON object for a composite parameter, read with `json_populate_record`.
    Record(String),
}

/// A call's arguments: named in a JSON body, or query pairs of a `GET`
/// (a repeated key is the variadic parameter's list; otherwise the last
/// value wins, as PostgREST reads them).
#[derive(Debug, Clone, PartialEq)]
pub enum CallArgs {
    Json(Map<String, Value>),
    Query(Vec<(String, String)>),
    /// A POST body passed whole to the one unnamed text, xml or bytea parameter.
    Raw(crate::schema::RawBody, Vec<u8>),
}

fn unknown_relation(cache: &SchemaCache, name: &str) -> ApiError {
    ApiError::unknown_relation(&cache.default_schema, name, cache.relations().into_iter().map(|r| r.name.as_str()))
}

/// The `Allow` header of `OPTIONS` on a path, as PostgREST answers it:
/// what the relation or function can do, not what the caller may.
pub fn allow(cache: &SchemaCache, target: Option<&Target>) -> Result<String, ApiError> {
    match target {
        None => Ok("OPTIONS,GET,HEAD".into()),
        Some(Target::Relation(name)) => cache.relation(name).map(|r| r.allow()).ok_or_else(|| unknown_relation(cache, name)),
        Some(Target::Rpc(name)) => match cache.functions(name) {
            [] => Err(call(cache, name, &CallArgs::Json(Map::new())).expect_err("no function to call")),
            fns if fns.iter().all(|f| f.volatile) => Ok("OPTIONS,POST".into()),
            _ => Ok("OPTIONS,GET,HEAD,POST".into()),
        },
    }
}

pub fn read(cache: &SchemaCache, name: &str, q: &QueryParams) -> Result<ReadPlan, ApiError> {
    let relation = cache.relation(name).ok_or_else(|| unknown_relation(cache, name))?;
    read_relation(cache, relation, q)
}

fn read_relation(cache: &SchemaCache, relation: &Relation, q: &QueryParams) -> Result<ReadPlan, ApiError> {
    let top = Scope { conditions: q.conditions.clone(), order: q.order.clone(), limit: q.limit, offset: q.offset };
    let plan = level(cache, relation, &q.select, &q.embeds, &top, q, "")?;
    // No `select` at all: every column.
    let plan = ReadPlan { all_columns: plan.all_columns || (q.select.is_empty() && q.embeds.is_empty()), ..plan };
    if let Some(path) = q.nested.keys().find(|path| !embeds_path(&q.embeds, path)) {
        return Err(ApiError::not_embedded(path));
    }
    Ok(plan)
}

/// Whether `path` (`a.b`) names an embed of `embeds`.
fn embeds_path(embeds: &[Embed], path: &str) -> bool {
    let (first, rest) = path.split_once('.').map_or((path, None), |(a, b)| (a, Some(b)));
    embeds.iter().any(|e| (e.key() == first || e.relation == first) && rest.is_none_or(|r| embeds_path(&e.embeds, r)))
}

/// One level of a read: `relation` with its columns, embeds and scope.
fn level(
    cache: &SchemaCache,
    relation: &Relation,
    select: &[crate::request::SelectItem],
    embeds: &[Embed],
    scope: &Scope,
    q: &QueryParams,
    path: &str,
) -> Result<ReadPlan, ApiError> {
    let column = |n: &str| column_of(relation, n);
    let is_star = |s: &&crate::request::SelectItem| {
        s.column == "*" && s.path.is_empty() && s.alias.is_none() && s.cast.is_none() && s.aggregate.is_none()
    };
    let all_columns = select.iter().any(|s| is_star(&s));
    let select = select
        .iter()
        .filter(|s| !is_star(s))
        .map(|s| {
            let mut aggregate = s
                .aggregate
                .as_ref()
                .map(|a| Ok::<_, ApiError>((a.function, a.cast.as_deref().map(|t| cast_type(cache, t)).transpose()?)))
                .transpose()?;
            // `rel(count)`: PostgreSQL reads `rel.count` as count(rel), as PostgREST leaves it to.
            let legacy_count =
                s.column == "count" && s.path.is_empty() && aggregate.is_none() && relation.readable_column("count").is_none();
            if legacy_count {
                aggregate = Some((AggregateFn::CountRows, None));
            }
            let column = match aggregate {
                Some((AggregateFn::CountRows, _)) => Column::of_result(if legacy_count { "count" } else { "*" }.into(), "bigint".into()),
                _ => column(&s.column)?,
            };
            Ok(Selected {
                column,
                path: s.path.clone(),
                alias: s.alias.clone(),
                cast: s.cast.as_deref().map(|t| cast_type(cache, t)).transpose()?,
                aggregate,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    // Each embed, embed filter (`rel=is.null`) and related order is a
    // subquery, and one over an embed repeats that embed's own: counted
    // level by level, from the deepest, before anything is copied, so no
    // request builds a plan or a statement that grows as the product of its
    // references.
    let embeds: Vec<EmbedPlan> = embeds
        .iter()
        .map(|e| {
            let (target, to_one, link) = match cache.computed_relationship(&relation.name, &e.relation) {
                // A function of the outer row overrides a foreign key of that name, as in PostgREST.
                Some(c) => (c.target.as_str(), c.to_one, Link::Function { schema: c.schema.clone(), name: c.name.clone() }),
                None => {
                    let rel = relationship(cache, relation, e)?;
                    let to_one = rel.cardinality.to_one();
                    let target = cache.relation(&rel.target).map(|r| r.name.as_str()).ok_or_else(|| no_relationship(cache, relation, e))?;
                    let link = match rel.junction {
                        None => Link::Keys(rel.join),
                        Some(j) => Link::Junction { table: j.table, outer: rel.join, target: j.target_join },
                    };
                    (target, to_one, link)
                }
            };
            let target = cache.relation(target).ok_or_else(|| no_relationship(cache, relation, e))?;
            let key_path = if path.is_empty() { e.key().to_owned() } else { format!("{path}.{}", e.key()) };
            let name_path = if path.is_empty() { e.relation.clone() } else { format!("{path}.{}", e.relation) };
            let empty = Scope::default();
            let scope = q.nested.get(&key_path).or_else(|| q.nested.get(&name_path)).unwrap_or(&empty);
            Ok(EmbedPlan {
                key: e.key().to_owned(),
                to_one,
                inner: e.inner,
                // `rel()`: filters the outer rows only, not in the answer (PostgREST).
                hidden: e.select.is_empty() && e.embeds.is_empty(),
                spread: e.spread,
                link,
                read: level(cache, target, &e.select, &e.embeds, scope, q, &key_path)?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    // The subqueries the filters and orders over embeds would add, counted
    // before they are built (each copies its embed's plan).
    fn over_embeds(c: &Condition, embeds: &[EmbedPlan]) -> usize {
        match c {
            Condition::Filter { column, .. } => embeds.iter().find(|e| &e.key == column).map_or(0, |e| 1 + e.read.subqueries()),
            Condition::Group { children, .. } => children.iter().map(|c| over_embeds(c, embeds)).sum(),
        }
    }
    let embedded: usize = embeds.iter().map(|e| 1 + e.read.subqueries()).sum::<usize>()
        + scope.conditions.iter().map(|c| over_embeds(c, &embeds)).sum::<usize>()
        + scope
            .order
            .iter()
            .filter_map(|o| o.related.as_ref())
            .filter_map(|k| embeds.iter().find(|e| &e.key == k))
            .map(|e| 1 + e.read.subqueries())
            .sum::<usize>();
    if embedded > MAX_SUBQUERIES {
        return Err(ApiError::too_complex(embedded, MAX_SUBQUERIES));
    }
    let filter: Vec<Where> = scope.conditions.iter().map(|c| resolve(relation, &embeds, c)).collect::<Result<_, _>>()?;
    let order = scope
        .order
        .iter()
        .map(|o| {
            let through = match &o.related {
                None => None,
                Some(key) => {
                    let embed: &EmbedPlan = embeds.iter().find(|e| &e.key == key).ok_or_else(|| ApiError::not_embedded(key))?;
                    if !embed.to_one {
                        return Err(ApiError::order_by_to_many(&relation.name, key));
                    }
                    Some(Box::new(embed.clone()))
                }
            };
            let column = match &through {
                Some(e) => column_of(&e.read.relation, &o.column)?,
                // A table's row address, which every table has: what a
                // limited update or delete of a table without a key orders by.
                None if o.column == "ctid" && relation.row_addresses && relation.column("ctid").is_none() => {
                    Column::of_result("ctid".into(), "tid".into())
                }
                None => column(&o.column)?,
            };
            Ok(Ordering { through, column, path: o.path.clone(), descending: o.descending, nulls_first: o.nulls_first })
        })
        .collect::<Result<_, ApiError>>()?;
    let mut plan = ReadPlan {
        relation: relation.clone(),
        call: None,
        all_columns,
        select,
        embeds,
        filter,
        order,
        limit: scope.limit,
        offset: scope.offset,
        body: Body::Rows,
    };
    plan.one_key_each()?;
    Ok(plan)
}

/// Most subqueries one statement may have (`ReadPlan::subqueries`).
pub const MAX_SUBQUERIES: usize = 256;

/// A cast's type as SQL (see `SchemaCache::cast_type`); PostgREST passes
/// the name to PostgreSQL, which answers 42704 for an unknown type.
fn cast_type(cache: &SchemaCache, name: &str) -> Result<String, ApiError> {
    if crate::schema::looks_up_catalog(name) {
        return Err(ApiError::cast_not_allowed(name));
    }
    // `text[]`: the element type, looked up, then its array.
    let element = name.trim_end_matches("[]");
    let dimensions = (name.len() - element.len()) / 2;
    cache.cast_type(element).map(|t| format!("{t}{}", "[]".repeat(dimensions))).ok_or_else(|| ApiError::unknown_type(name))
}

fn no_relationship(cache: &SchemaCache, outer: &Relation, e: &Embed) -> ApiError {
    let related = cache.related(&outer.name);
    ApiError::no_relationship(&cache.default_schema, &outer.name, &e.relation, e.hint.as_deref(), related.iter().map(String::as_str))
}

/// The one relationship `e` follows from `outer`, found as PostgREST
/// finds it. Without a hint: by the embedded relation's name, else by a
/// foreign key's name, else by the one column of a key on the outer side
/// (a table's key to itself: its name embeds the children, the key column
/// the parent). With `!hint`: the relation's name, and a foreign key's
/// name, one of its columns (either side) or a junction table's name.
fn relationship(cache: &SchemaCache, outer: &Relation, e: &Embed) -> Result<Relationship, ApiError> {
    let all = cache.relationships_of(&outer.name);
    let target = e.relation.as_str();
    let mut found: Vec<Relationship> = match &e.hint {
        None => {
            let by_name: Vec<Relationship> = all
                .iter()
                .filter(|r| r.target == target && (!r.is_self || r.junction.is_some() || r.cardinality == Cardinality::OneToMany))
                .cloned()
                .collect();
            // By a key's name or column only to a table, not to a view (PostgREST's rule).
            let to_table = |r: &&Relationship| cache.relation(&r.target).is_some_and(|t| t.is_table);
            let by_constraint = || {
                all.iter()
                    .filter(|r| r.junction.is_none() && !r.is_self && r.constraint == target)
                    .filter(to_table)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            let by_column = || {
                let parent = |r: &&Relationship| !r.is_self || r.cardinality == Cardinality::ManyToOne;
                all.iter().filter(|r| r.outer_column() == Some(target)).filter(parent).filter(to_table).cloned().collect::<Vec<_>>()
            };
            [by_name, by_constraint(), by_column()].into_iter().find(|found| !found.is_empty()).unwrap_or_default()
        }
        Some(hint) => all
            .into_iter()
            .filter(|r| r.target == target)
            .filter(|r| match &r.junction {
                Some(j) => &j.table == hint,
                None if r.is_self => r.cardinality == Cardinality::OneToMany && r.target_column() == Some(hint),
                None => &r.constraint == hint || r.outer_column() == Some(hint) || r.target_column() == Some(hint),
            })
            .collect(),
    };
    match found.len() {
        0 => Err(no_relationship(cache, outer, e)),
        1 => Ok(found.remove(0)),
        _ => {
            let columns = |pairs: &[(String, String)], side: fn(&(String, String)) -> &String| {
                pairs.iter().map(side).cloned().collect::<Vec<_>>().join(", ")
            };
            let candidates: Vec<crate::error::Candidate> = found
                .iter()
                .map(|r| match &r.junction {
                    Some(j) => crate::error::Candidate {
                        cardinality: r.cardinality.name(),
                        relationship: format!(
                            "{} using {}({}) and {}({})",
                            j.table,
                            j.outer_constraint,
                            columns(&r.join, |p| &p.1),
                            j.target_constraint,
                            columns(&j.target_join, |p| &p.0)
                        ),
                        hint: j.table.clone(),
                    },
                    None => crate::error::Candidate {
                        cardinality: r.cardinality.name(),
                        relationship: format!(
                            "{} using {}({}) and {}({})",
                            r.constraint,
                            outer.name,
                            columns(&r.join, |p| &p.0),
                            r.target,
                            columns(&r.join, |p| &p.1)
                        ),
                        hint: r.constraint.clone(),
                    },
                })
                .collect();
            Err(ApiError::ambiguous_relationship(&outer.name, target, &candidates))
        }
    }
}

/// A column a read names: stored or computed.
fn column_of(relation: &Relation, name: &str) -> Result<Column, ApiError> {
    relation
        .readable_column(name)
        .cloned()
        .ok_or_else(|| ApiError::unknown_column(&relation.name, name, relation.columns.iter().map(|c| c.name.as_str())))
}

/// A condition on `relation`'s columns, or (`rel=is.null`, `rel=not.is.null`)
/// on whether one of its `embeds` has a row.
fn resolve(relation: &Relation, embeds: &[EmbedPlan], c: &Condition) -> Result<Where, ApiError> {
    Ok(match c {
        // `rel=is.null` names the embed even when a column has its name
        // (an embed by foreign-key column, `category_id(slug)`), as in PostgREST.
        Condition::Filter { column, path, negated, filter }
            if path.is_empty()
                && (relation.readable_column(column).is_none()
                    || matches!(filter, Filter::Is(IsValue::Null | IsValue::NotNull)) && embeds.iter().any(|e| &e.key == column)) =>
        {
            match (embeds.iter().find(|e| &e.key == column), filter) {
                (Some(embed), Filter::Is(IsValue::Null)) => Where::Related { embed: Box::new(embed.clone()), exists: *negated },
                (Some(embed), Filter::Is(IsValue::NotNull)) => Where::Related { embed: Box::new(embed.clone()), exists: !*negated },
                _ => return Err(column_of(relation, column).expect_err("not a column")),
            }
        }
        Condition::Filter { column, path, negated, filter } => {
            Where::Filter { column: column_of(relation, column)?, path: path.clone(), negated: *negated, filter: filter.clone() }
        }
        Condition::Group { any, negated, children } => Where::Group {
            any: *any,
            negated: *negated,
            children: children.iter().map(|c| resolve(relation, embeds, c)).collect::<Result<_, _>>()?,
        },
    })
}

/// `POST` (insert or upsert), `PUT` (upsert of one row by primary key),
/// `PATCH` (update) or `DELETE` on a table.
pub fn write(
    cache: &SchemaCache,
    name: &str,
    method: WriteMethod,
    q: &QueryParams,
    body: &[u8],
    prefer: &Prefer,
) -> Result<WritePlan, ApiError> {
    let read = read(cache, name, q)?;
    let relation = read.relation;
    let body_error = |message: &str, details: Option<String>| ApiError::invalid_body(message.to_owned(), details);
    let parse_body = || -> Result<Value, ApiError> {
        serde_json::from_slice(body).map_err(|e| body_error("Empty or invalid json", Some(e.to_string())))
    };
    let unknown_column = |k: &str| ApiError::unknown_body_column(&relation.name, k);
    let columns_of = |keys: &[&str]| -> Result<Vec<Column>, ApiError> {
        keys.iter().map(|k| relation.column(k).cloned().ok_or_else(|| unknown_column(k))).collect()
    };
    // `columns=` names the keys to use; other keys of the body are ignored
    // (not by a PUT, which takes its whole body, as PostgREST reads it).
    let columns = q.columns.as_ref().filter(|_| method != WriteMethod::Upsert);
    let wanted = |k: &str| columns.is_none_or(|c| c.iter().any(|c| c == k));
    if let Some(listed) = columns {
        columns_of(&listed.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    let mut filter = read.filter;
    let limited = || -> Result<Option<Limited>, ApiError> {
        if read.limit.is_none() && read.offset.unwrap_or(0) == 0 {
            return Ok(None);
        }
        if read.order.is_empty() {
            return Err(ApiError::limit_without_order());
        }
        if let Some(related) = read.order.iter().find_map(|o| o.through.as_ref()) {
            return Err(ApiError::limited_order_related(&related.key));
        }
        let by = if relation.row_addresses { RowMatch::Address } else { RowMatch::OrderColumns };
        Ok(Some(Limited { order: read.order.clone(), limit: read.limit, offset: read.offset, by }))
    };
    let kind = match method {
        WriteMethod::Insert | WriteMethod::Upsert => {
            let mut rows = match parse_body()? {
                Value::Array(rows) => rows,
                object @ Value::Object(_) => vec![object],
                _ => return Err(body_error("The body must be a JSON object or an array of objects", None)),
            };
            let mut on_conflict = None;
            if method == WriteMethod::Upsert {
                let key = put_key(&relation, &filter, q)?;
                let [Value::Object(row)] = rows.as_mut_slice() else {
                    return Err(body_error("The body of a PUT must be one JSON object", None));
                };
                for (column, value) in key {
                    match row.get(&column.name) {
                        None => {
                            row.insert(column.name.clone(), Value::String(value));
                        }
                        Some(given) if json_text(given) == value => {}
                        Some(_) => return Err(ApiError::put_key_mismatch()),
                    }
                }
                filter.clear();
                on_conflict = Some(OnConflict {
                    columns: relation.columns.iter().filter(|c| c.primary_key).cloned().collect(),
                    resolution: Resolution::MergeDuplicates,
                });
            } else if let Some(resolution) = prefer.resolution {
                let columns: Vec<Column> = match &q.on_conflict {
                    Some(names) => names.iter().map(|n| column_of(&relation, n)).collect::<Result<_, _>>()?,
                    None => relation.columns.iter().filter(|c| c.primary_key).cloned().collect(),
                };
                // No key to match on: a plain insert, the resolution not applied (as PostgREST).
                if !columns.is_empty() {
                    on_conflict = Some(OnConflict { columns, resolution });
                }
            }
            // Rows grouped by their set of keys: with missing=default each
            // group is its own INSERT, so absent keys take their defaults;
            // otherwise one group with every key (absent ones are NULL).
            let mut groups: Vec<(Vec<&str>, Vec<&Value>)> = Vec::new();
            // `columns=` names every column written: a key no object has is
            // NULL (with `missing=default`, each object's absent keys take defaults).
            if let (Some(listed), false, false) = (columns, prefer.missing_default, rows.is_empty()) {
                groups.push((listed.iter().map(String::as_str).collect(), Vec::new()));
            }
            for row in &rows {
                let Value::Object(m) = row else {
                    return Err(body_error("Every element of the array must be a JSON object", None));
                };
                let keys: Vec<&str> = m.keys().map(String::as_str).filter(|k| wanted(k)).collect();
                // Without `columns=`, every object must have the same keys (postgrest-js
                // sends `columns=` for arrays, naming every key any object has).
                if columns.is_none() && method == WriteMethod::Insert {
                    if let Some(Value::Object(first)) = rows.first() {
                        if first.len() != m.len() || !m.keys().all(|k| first.contains_key(k)) {
                            return Err(body_error("All object keys must match", None));
                        }
                    }
                }
                if prefer.missing_default {
                    match groups.iter_mut().find(|(k, _)| *k == keys) {
                        Some((_, members)) => members.push(row),
                        None => groups.push((keys, vec![row])),
                    }
                } else {
                    match groups.first_mut() {
                        Some((all, members)) => {
                            for k in keys {
                                if !all.contains(&k) {
                                    all.push(k);
                                }
                            }
                            members.push(row);
                        }
                        None => groups.push((keys, vec![row])),
                    }
                }
            }
            // Each set of keys is an INSERT of its own, planned before any
            // privilege is checked: their number is bounded.
            if groups.len() > MAX_KEY_SETS {
                return Err(body_error(
                    "Too many different sets of keys",
                    Some(format!(
                        "with missing=default the objects have {} different sets of keys; the limit is {MAX_KEY_SETS}",
                        groups.len()
                    )),
                ));
            }
            let groups = groups
                .into_iter()
                .map(|(keys, members)| Ok((columns_of(&keys)?, Value::Array(members.into_iter().cloned().collect()).to_string())))
                .collect::<Result<Vec<_>, ApiError>>()?;
            WriteKind::Insert { groups, on_conflict }
        }
        WriteMethod::Update => {
            let row = parse_body()?;
            let m = match &row {
                Value::Object(m) => m,
                // `[]`, like `{}`, changes nothing (PostgREST's UpdateSpec),
                // whatever `columns=` names.
                Value::Array(items) if items.is_empty() => &serde_json::Map::new(),
                _ => return Err(body_error("The body of a PATCH must be a JSON object", None)),
            };
            // `columns=` names every column set: one the body lacks is NULL,
            // or with `missing=default` its default.
            let (keys, defaulted): (Vec<&str>, Vec<&str>) = match columns {
                _ if m.is_empty() => (Vec::new(), Vec::new()),
                None => (m.keys().map(String::as_str).collect(), Vec::new()),
                Some(listed) if prefer.missing_default => listed.iter().map(String::as_str).partition(|k| m.contains_key(*k)),
                Some(listed) => (listed.iter().map(String::as_str).collect(), Vec::new()),
            };
            if keys.is_empty() && defaulted.is_empty() {
                WriteKind::Unchanged
            } else {
                WriteKind::Update {
                    columns: columns_of(&keys)?,
                    defaulted: columns_of(&defaulted)?,
                    row_json: row.to_string(),
                    limited: limited()?,
                }
            }
        }
        WriteMethod::Delete => WriteKind::Delete { limited: limited()? },
    };
    Ok(WritePlan {
        relation,
        kind,
        filter,
        returning_all: read.all_columns,
        returning: read.select,
        returning_embeds: read.embeds,
        return_: prefer.return_,
    })
}

/// `["a", 1, null, [2]]` → `{"a","1",NULL,{"2"}}`.
fn pg_array(items: &[Value]) -> String {
    let element = |v: &Value| match v {
        Value::Null => "NULL".to_owned(),
        Value::Array(inner) => pg_array(inner),
        other => format!("\"{}\"", json_text(other).replace('\\', "\\\\").replace('"', "\\\"")),
    };
    format!("{{{}}}", items.iter().map(element).collect::<Vec<_>>().join(","))
}

/// A JSON scalar as the text a URL filter would carry.
fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A PUT's URL must filter exactly the primary key with `eq`: the key's
/// columns and values.
fn put_key(relation: &Relation, filter: &[Where], q: &QueryParams) -> Result<Vec<(Column, String)>, ApiError> {
    let keys: Vec<&Column> = relation.columns.iter().filter(|c| c.primary_key).collect();
    let mut found = Vec::new();
    for w in filter {
        if let Where::Filter { column, path, negated: false, filter: Filter::Compare(CompareOp::Eq, v) } = w {
            if !path.is_empty() {
                found.clear();
                break;
            }
            if column.primary_key && !found.iter().any(|(c, _): &(Column, String)| c.name == column.name) {
                found.push((column.clone(), v.clone()));
                continue;
            }
        }
        found.clear();
        break;
    }
    if q.limit.is_some() || q.offset.is_some() {
        return Err(ApiError::put_with_range());
    }
    if keys.is_empty() || found.len() != keys.len() {
        return Err(ApiError::put_filters_not_key());
    }
    Ok(found)
}

/// A function's result read as a relation, as PostgREST reads every
/// function's: `select`, filters, `order` and the range apply to its rows
/// (a table's or view's, a composite type's, OUT parameters', or the one
/// `pgrst_scalar` column of a scalar result). `asked`: what the client's
/// `Accept` makes of the result.
pub fn call_read(cache: &SchemaCache, call: CallPlan, q: &QueryParams, asked: Asked) -> Result<ReadPlan, ApiError> {
    let object = asked == Asked::Object;
    let f = &call.function;
    let result = |columns: Vec<Column>| Relation {
        schema: f.schema.clone(),
        name: f.name.clone(),
        is_table: false,
        planner_counts_visible: false,
        row_addresses: false,
        writable: Default::default(),
        columns,
        computed: Vec::new(),
    };
    let scalar = |type_sql: &str| Column::of_result(SCALAR_COLUMN.into(), type_sql.into());
    let (relation, body) = match &f.returns {
        Returns::Rows { set, row: RowType::Relation(name) } => {
            (cache.relation(name).cloned().ok_or_else(|| unknown_relation(cache, name))?, rows_body(*set))
        }
        Returns::Rows { set, row: RowType::Columns(columns) } => (result(columns.clone()), rows_body(*set)),
        Returns::Scalar { set: true, type_sql } => (result(vec![scalar(type_sql)]), if object { Body::Rows } else { Body::Values }),
        Returns::Scalar { set: false, type_sql } => (result(vec![scalar(type_sql)]), Body::Value),
        Returns::Void => (result(vec![scalar("void")]), Body::Nothing),
    };
    let body = match (asked, body) {
        (Asked::Raw, Body::Value) => Body::Raw,
        // A set in a media type of its own is not served (PostgREST's 406).
        (Asked::Raw, _) => return Err(crate::error::not_acceptable(f.media_type.as_ref().map_or("", |m| m.name.as_str()))),
        (Asked::Rows, body) if body != Body::Nothing => Body::Rows,
        (_, body) => body,
    };
    let mut plan = read_relation(cache, &relation, q)?;
    plan.call = Some(call);
    plan.body = body;
    Ok(plan)
}

fn rows_body(set: bool) -> Body {
    if set {
        Body::Rows
    } else {
        Body::Row
    }
}

/// A function call: the overload that takes the arguments' names (or the
/// one unnamed json/jsonb parameter, which takes them all as one object,
/// or the one unnamed text/xml/bytea parameter a raw body goes to).
pub fn call(cache: &SchemaCache, name: &str, given: &CallArgs) -> Result<CallPlan, ApiError> {
    let overloads = cache.functions(name);
    if let CallArgs::Raw(media, bytes) = given {
        let f = overloads
            .iter()
            .find(|f| f.takes_raw_body(*media))
            .ok_or_else(|| ApiError::no_raw_function(&cache.default_schema, name, media.type_sql()))?;
        let text = match media {
            RawBody::Bytes => format!("\\x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            RawBody::Text | RawBody::Xml => {
                String::from_utf8(bytes.clone()).map_err(|_| ApiError::invalid_body("The body is not valid UTF-8".into(), None))?
            }
        };
        return Ok(CallPlan { function: f.clone(), args: vec![(f.args[0].clone(), ArgValue::Text(Some(text)))] });
    }
    let keys: Vec<&str> = match given {
        CallArgs::Json(m) => m.keys().map(String::as_str).collect(),
        CallArgs::Query(pairs) => {
            let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            keys
        }
        CallArgs::Raw(..) => unreachable!("answered above"),
    };
    let fits = |f: &&Function| {
        keys.iter().all(|k| f.args.iter().any(|a| a.name == *k)) && f.args.iter().all(|a| a.has_default || keys.contains(&a.name.as_str()))
    };
    let fitting: Vec<&Function> =
        overloads.iter().filter(|f| !f.takes_whole_body() && !f.args.iter().any(|a| a.name.is_empty())).filter(fits).collect();
    if fitting.len() > 1 {
        let mut candidates: Vec<String> = fitting
            .iter()
            .map(|f| {
                format!(
                    "{}.{name}({})",
                    f.schema,
                    f.args.iter().map(|a| format!("{} => {}", a.name, a.type_sql)).collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        candidates.sort();
        return Err(ApiError::ambiguous_function(&candidates));
    }
    let named = fitting.first().copied();
    if let (None, Some(whole)) = (named, overloads.iter().find(|f| f.takes_whole_body())) {
        let body = match given {
            CallArgs::Json(m) => Value::Object(m.clone()),
            CallArgs::Query(pairs) => Value::Object(pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
            CallArgs::Raw(..) => unreachable!("answered above"),
        };
        return Ok(CallPlan { function: whole.clone(), args: vec![(whole.args[0].clone(), ArgValue::Text(Some(body.to_string())))] });
    }
    let function = named.ok_or_else(|| {
        let mut keys = keys.clone();
        keys.sort_unstable();
        ApiError::no_function(cache, name, &keys, matches!(given, CallArgs::Json(_)))
    })?;
    let args = function
        .args
        .iter()
        .filter_map(|a| {
            let variadic = function.variadic_arg() == Some(a);
            let value = match given {
                CallArgs::Json(m) => m.get(&a.name).map(|v| json_arg(a, variadic, v))?,
                CallArgs::Query(pairs) => {
                    let mut values = pairs.iter().filter(|(k, _)| *k == a.name).map(|(_, v)| v.clone()).peekable();
                    values.peek()?;
                    if variadic {
                        let items: Vec<Value> = values.map(Value::String).collect();
                        ArgValue::Text(Some(pg_array(&items)))
                    } else {
                        ArgValue::Text(values.last())
                    }
                }
                CallArgs::Raw(..) => unreachable!("answered above"),
            };
            Some((a.clone(), value))
        })
        .collect();
    Ok(CallPlan { function: function.clone(), args })
}

/// A JSON body's value for parameter `a`.
fn json_arg(a: &Argument, variadic: bool, v: &Value) -> ArgValue {
    let is_json = matches!(a.type_sql.as_str(), "json" | "jsonb");
    match v {
        Value::Null => ArgValue::Text(None),
        Value::String(s) if variadic => ArgValue::Text(Some(pg_array(&[Value::String(s.clone())]))),
        Value::String(s) if !is_json => ArgValue::Text(Some(s.clone())),
        // A JSON array for an array (or variadic) parameter: PostgreSQL's array literal.
        Value::Array(items) if a.type_sql.ends_with("[]") => ArgValue::Text(Some(pg_array(items))),
        Value::Object(_) if !is_json => ArgValue::Record(v.to_string()),
        other => ArgValue::Text(Some(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_query;
    use crate::schema::test_cache;
    use http::StatusCode;
    use serde_json::json;

    #[test]
    fn json_arrays_become_postgres_array_literals() {
        assert_eq!(
            pg_array(&serde_json::from_str::<Vec<Value>>(r#"["a", 1, null, [2, "x\"y"], true]"#).unwrap()),
            r#"{"a","1",NULL,{"2","x\"y"},"true"}"#
        );
    }

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
    fn references_to_embeds_cannot_multiply_a_statement() {
        let cache = test_cache();
        // order_items(orders(order_items(…))), each level with three filters on its embed.
        let nested = |depth: usize| {
            let mut select = String::new();
            let mut filters = Vec::new();
            let mut path = Vec::new();
            for level in 0..depth {
                let name = if level % 2 == 0 { "order_items" } else { "orders" };
                select.push_str(&format!("{name}(*,"));
                let scope = path.join(".");
                let prefix = if scope.is_empty() { String::new() } else { format!("{scope}.") };
                filters.push(format!("{prefix}or=({name}.is.null,{name}.not.is.null,{name}.is.null)"));
                path.push(name);
            }
            select.push_str("order_id");
            select.push_str(&")".repeat(depth));
            format!("select=order_id,{select}&{}", filters.join("&"))
        };
        let started = std::time::Instant::now();
        let e = read(&cache, "orders", &parse_query(&nested(10), false).unwrap()).unwrap_err();
        assert_eq!((e.status.as_u16(), e.message.as_str()), (400, "The request is too complex"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "refused before it grows: {:?}", started.elapsed());
        assert!(read(&cache, "orders", &parse_query(&nested(3), false).unwrap()).is_ok());
    }

    #[test]
    fn calls_match_named_arguments() {
        let cache = test_cache();
        let json_args = |v: Value| CallArgs::Json(v.as_object().unwrap().clone());
        let p = call(&cache, "redeem_coupon", &json_args(json!({"code": "SPRING", "order_id": 42}))).unwrap();
        assert_eq!(p.args[1].1, ArgValue::Text(Some("42".into())));
        let e = call(&cache, "redeem_coupon", &json_args(json!({"code": "SPRING"}))).unwrap_err();
        assert_eq!(e.code, "PGRST202");
        assert_eq!(e.hint.as_deref(), Some("Perhaps you meant to call the function public.redeem_coupon(code, order_id)"));
        assert!(call(&cache, "redeem_coupon", &json_args(json!({"code": "A", "order_id": 1, "drop": 1}))).is_err());
        // GET: the last of a repeated key wins (no parameter is variadic).
        let p = call(
            &cache,
            "redeem_coupon",
            &CallArgs::Query(vec![("code".into(), "A".into()), ("order_id".into(), "1".into()), ("code".into(), "B".into())]),
        )
        .unwrap();
        assert_eq!(p.args[0].1, ArgValue::Text(Some("B".into())));
    }
}
