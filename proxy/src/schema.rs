//! The schema cache: the tables, views, columns and functions the API
//! exposes (`db-schemas`), read from the catalog at start-up. Every
//! identifier that reaches SQL comes from here.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// As `format_type` prints it: `clerk_user_id`, `numeric(10,2)`.
    pub type_sql: String,
    /// What a filter's value is read as: the type without its modifiers
    /// (`numeric`, not `numeric(10,2)`, which would round the value before
    /// comparing), a domain's base type, as an untyped literal would be.
    pub value_type: String,
    pub primary_key: bool,
    pub nullable: bool,
    /// Has a default (or is an identity column): may be left out of an insert.
    pub has_default: bool,
    /// A computed column: the schema of the function of the same name that
    /// takes the relation's row (`full_name(people)`), read as PostgREST
    /// reads it; never written, and not part of `*`.
    pub computed_by: Option<String>,
}

impl Column {
    /// A column of a result (a function's), not of a table.
    pub fn of_result(name: String, type_sql: String) -> Column {
        Column { name, value_type: type_sql.clone(), type_sql, primary_key: false, nullable: true, has_default: false, computed_by: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    /// A table (or partitioned/foreign table); false for views.
    pub is_table: bool,
    /// The planner's row estimates ignore row-level security, so they may
    /// be shown (`count=planned`) only for relations that have none: tables
    /// without RLS, not views (which may read tables that have it).
    pub planner_counts_visible: bool,
    /// Its rows have addresses (`tableoid`, `ctid`) that name each one: a
    /// plain or partitioned table, not a view or a foreign table.
    pub row_addresses: bool,
    /// What the relation can take, whatever the privileges:
    /// `pg_relation_is_updatable` (views with triggers or auto-updatable).
    pub writable: Writable,
    pub columns: Vec<Column>,
    /// Computed columns (`Column::computed_by`): named in `select`, filters
    /// and `order` only.
    pub computed: Vec<Column>,
}

/// `pg_relation_is_updatable`'s bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Writable {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

impl Writable {
    pub const ALL: Writable = Writable { insert: true, update: true, delete: true };

    /// From the mask (PostgreSQL's CmdType bits: 4 update, 8 insert, 16 delete).
    pub fn from_mask(mask: i32) -> Writable {
        Writable { insert: mask & 8 != 0, update: mask & 4 != 0, delete: mask & 16 != 0 }
    }
}

impl Function {
    /// One unnamed `json`/`jsonb` parameter: PostgREST passes it the whole
    /// request body (or the query's arguments as one object).
    pub fn takes_whole_body(&self) -> bool {
        matches!(self.args.as_slice(), [a] if a.name.is_empty() && matches!(a.type_sql.as_str(), "json" | "jsonb"))
    }

    /// One unnamed parameter of the type a raw body of `media` is passed
    /// as (`text/plain` → text, `text/xml` → xml, `application/octet-stream`
    /// → bytea), as PostgREST does.
    pub fn takes_raw_body(&self, media: RawBody) -> bool {
        matches!(self.args.as_slice(), [a] if a.name.is_empty() && a.type_sql == media.type_sql())
    }

    /// The variadic parameter (the last), if any.
    pub fn variadic_arg(&self) -> Option<&Argument> {
        self.args.last().filter(|_| self.variadic)
    }
}

/// A media type a function's result is answered in, as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub name: String,
    /// A domain over `bytea`: the bytes (else the text).
    pub binary: bool,
}

/// A media type handler (PostgREST v12's): an aggregate returning a domain
/// named after a media type, of one relation's rows or of any
/// (`anyelement`); a read asking for that type gets its value as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHandler {
    pub media: MediaType,
    /// The aggregate, schema-qualified and quoted.
    pub aggregate: String,
    /// The relation it aggregates the rows of; None: any.
    pub relation: Option<String>,
}

/// Aggregates returning a media-type domain, of the exposed schema.
pub const MEDIA_HANDLERS_SQL: &str = "
SELECT format('%I.%I', n.nspname, p.proname), t.typname::text, t.typbasetype = 'bytea'::regtype,
       (SELECT c.relname::text FROM pg_type it JOIN pg_class c ON c.oid = it.typrelid WHERE it.oid = p.proargtypes[0])
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_type t ON t.oid = p.prorettype
 WHERE p.prokind = 'a' AND p.pronargs = 1 AND t.typtype = 'd' AND t.typname LIKE '%/%' AND n.nspname = $1
   AND (p.proargtypes[0] = 'anyelement'::regtype OR EXISTS (SELECT 1 FROM pg_type it WHERE it.oid = p.proargtypes[0] AND it.typrelid <> 0))";

/// A POST body passed whole to a function's one unnamed parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawBody {
    Text,
    Xml,
    Bytes,
}

impl RawBody {
    pub const ALL: [RawBody; 3] = [RawBody::Text, RawBody::Xml, RawBody::Bytes];

    pub fn from_media_type(media: &str) -> Option<RawBody> {
        match media {
            "text/plain" => Some(RawBody::Text),
            "text/xml" => Some(RawBody::Xml),
            "application/octet-stream" => Some(RawBody::Bytes),
            _ => None,
        }
    }

    pub fn type_sql(self) -> &'static str {
        match self {
            RawBody::Text => "text",
            RawBody::Xml => "xml",
            RawBody::Bytes => "bytea",
        }
    }
}

/// What a function returns, in the shapes PostgREST answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returns {
    /// Rows with named columns (`set`: any number; else one, answered as
    /// an object or `null`).
    Rows { set: bool, row: RowType },
    /// Values of one type (`set`: any number, a JSON array): the column
    /// `pgrst_scalar` of the result read as a relation.
    Scalar { set: bool, type_sql: String },
    /// 204, no body.
    Void,
}

/// Whose rows a function returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowType {
    /// An exposed table's or view's: read as that relation (its
    /// relationships embed).
    Relation(String),
    /// A composite type's, or the function's OUT / TABLE parameters.
    Columns(Vec<Column>),
}

impl Relation {
    /// The `Allow` header of `OPTIONS` on it, as PostgREST builds it.
    pub fn allow(&self) -> String {
        let w = self.writable;
        let has_pk = self.columns.iter().any(|c| c.primary_key);
        let mut methods = vec!["OPTIONS,GET,HEAD"];
        methods.extend(
            [(w.insert, "POST"), (w.insert && w.update && has_pk, "PUT"), (w.update, "PATCH"), (w.delete, "DELETE")]
                .into_iter()
                .filter_map(|(on, m)| on.then_some(m)),
        );
        methods.join(",")
    }

    /// A stored column (what a write may name).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// A stored or computed column (what a read may name).
    pub fn readable_column(&self, name: &str) -> Option<&Column> {
        self.column(name).or_else(|| self.computed.iter().find(|c| c.name == name))
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
    /// The parameters a call passes (IN, INOUT, VARIADIC), in order.
    pub args: Vec<Argument>,
    pub returns: Returns,
    pub volatile: bool,
    /// The last argument is `VARIADIC`.
    pub variadic: bool,
    /// The relation (of the function's schema) whose row is its one
    /// argument, when it returns one value: a computed column of it.
    pub computes_column_of: Option<String>,
    /// The relation whose row is its one argument (computed columns and
    /// computed relationships).
    pub row_argument_of: Option<String>,
    /// `ROWS 1`: a set-returning function declared to return one row.
    pub one_row: bool,
    /// Returns a domain named after a media type (PostgREST's media type
    /// handler: `CREATE DOMAIN "text/html" AS text`): answered as is, with
    /// that `Content-Type`, when `Accept` asks for it.
    pub media_type: Option<MediaType>,
    /// `format_type` of the return type.
    pub return_type: String,
}

/// A view's column and where it comes from: (view column, table, table
/// column), read from the view's rule.
type ViewColumnOrigin = (String, String, String);

/// A foreign key between two exposed relations: what resource embedding
/// follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
    /// Its columns are exactly a primary key or unique constraint of
    /// `table`: one-to-one, an object from both sides.
    pub one_to_one: bool,
}

/// How many rows of the embedded relation one outer row has, as PostgREST
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    ManyToOne,
    OneToMany,
    OneToOne,
    ManyToMany,
}

impl Cardinality {
    pub fn name(self) -> &'static str {
        match self {
            Cardinality::ManyToOne => "many-to-one",
            Cardinality::OneToMany => "one-to-many",
            Cardinality::OneToOne => "one-to-one",
            Cardinality::ManyToMany => "many-to-many",
        }
    }

    /// Embedded as an object (or null), not an array.
    pub fn to_one(self) -> bool {
        matches!(self, Cardinality::ManyToOne | Cardinality::OneToOne)
    }
}

/// How a relation reaches another one it embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub cardinality: Cardinality,
    /// The foreign key's constraint name (many-to-many: the junction's).
    pub constraint: String,
    /// The relation embedded.
    pub target: String,
    /// (outer column, embedded column) pairs that must be equal; through a
    /// junction, (outer column, junction column).
    pub join: Vec<(String, String)>,
    pub junction: Option<Junction>,
    /// The foreign key is from a table to itself.
    pub is_self: bool,
}

/// The table between the two sides of a many-to-many relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Junction {
    pub table: String,
    /// The junction's foreign keys to the outer and the embedded relation.
    pub outer_constraint: String,
    pub target_constraint: String,
    /// (junction column, embedded column) pairs that must be equal.
    pub target_join: Vec<(String, String)>,
}

impl Relationship {
    /// The one column on the outer side, when the key has one (what
    /// `rel!column` and `column(*)` name).
    pub fn outer_column(&self) -> Option<&str> {
        match self.join.as_slice() {
            [(outer, _)] if self.junction.is_none() => Some(outer),
            _ => None,
        }
    }

    /// The one column on the embedded side, when the key has one.
    pub fn target_column(&self) -> Option<&str> {
        match self.join.as_slice() {
            [(_, target)] if self.junction.is_none() => Some(target),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
pub struct SchemaCache {
    /// The first of `db-schemas`: where unqualified names resolve.
    pub default_schema: String,
    relations: HashMap<String, Relation>,
    functions: HashMap<String, Vec<Function>>,
    foreign_keys: Vec<ForeignKey>,
    /// Types a `select=column::type` cast may name, by the name a client
    /// writes (lower case), as a quoted, schema-qualified SQL name.
    types: HashMap<String, String>,
    /// `ALTER ROLE … SET` of the roles requests run as (`ROLE_SETTINGS_SQL`).
    role_settings: HashMap<String, RoleSettings>,
    /// `pg_timezone_names`, for `Prefer: timezone=…`.
    timezones: std::collections::HashSet<String>,
    /// PostGIS's `ST_AsGeoJSON(record)`, schema-qualified, when installed:
    /// `Accept: application/geo+json`.
    geojson: Option<String>,
    media_handlers: Vec<MediaHandler>,
    /// Functions of a relation's row returning rows of another.
    computed_relationships: Vec<ComputedRelationship>,
}

/// A computed relationship (PostgREST's): `f(outer) RETURNS [SETOF] target`,
/// embedded as `f(…)`; to-one unless it returns a set of more than one row
/// (`SETOF … ROWS 1` is to-one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedRelationship {
    pub schema: String,
    pub name: String,
    pub outer: String,
    pub target: String,
    pub to_one: bool,
}

/// The cache of every exposed schema (`db-schemas`), the first the
/// default: a request names another with `Accept-Profile` (reads) or
/// `Content-Profile` (writes, `POST /rpc`), as with PostgREST.
#[derive(Debug)]
pub struct Schemas {
    caches: Vec<std::sync::Arc<SchemaCache>>,
}

impl Schemas {
    /// `caches` in `db-schemas` order; at least one.
    pub fn new(caches: Vec<SchemaCache>) -> Schemas {
        assert!(!caches.is_empty(), "db-schemas names at least one schema");
        Schemas { caches: caches.into_iter().map(std::sync::Arc::new).collect() }
    }

    pub fn default_cache(&self) -> &std::sync::Arc<SchemaCache> {
        &self.caches[0]
    }

    /// The cache of `profile` (None: the default); None when it is not exposed.
    pub fn profile(&self, profile: Option<&str>) -> Option<std::sync::Arc<SchemaCache>> {
        match profile {
            None => Some(self.caches[0].clone()),
            Some(name) => self.caches.iter().find(|c| c.default_schema == name).cloned(),
        }
    }

    /// The exposed schemas, comma-separated (PGRST106's hint).
    pub fn names(&self) -> String {
        self.caches.iter().map(|c| c.default_schema.as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn relation_count(&self) -> usize {
        self.caches.iter().map(|c| c.relation_count()).sum()
    }

    pub fn several(&self) -> bool {
        self.caches.len() > 1
    }
}

/// A role's own settings, applied to each of its requests' transactions
/// as PostgREST applies an impersonated role's settings.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RoleSettings {
    /// A JSON object of name → value, for `json_each_text`.
    pub json: String,
    /// The role's `statement_timeout`, when it sets one (Some(None): `0`,
    /// no timeout), which replaces `db-statement-timeout` for its requests.
    pub statement_timeout: Option<Option<std::time::Duration>>,
}

impl RoleSettings {
    fn from_pairs(pairs: Vec<(String, String)>) -> RoleSettings {
        let statement_timeout = pairs
            .iter()
            .rev()
            .find(|(n, _)| n == "statement_timeout")
            .and_then(|(_, v)| parse_duration_ms(v))
            .map(|ms| Some(std::time::Duration::from_millis(ms)).filter(|d| !d.is_zero()));
        let object: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(n, v)| (n, serde_json::Value::String(v))).collect();
        RoleSettings { json: serde_json::Value::Object(object).to_string(), statement_timeout }
    }
}

/// A time setting as PostgreSQL reads it (`statement_timeout = '3s'`): a
/// number with an optional unit (us, ms, s, min, h, d; none: ms), in ms.
fn parse_duration_ms(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let per_unit = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    Some((number * per_unit).round() as u64)
}

/// One row of `ROLE_SETTINGS_SQL`.
#[derive(Debug, Clone)]
pub struct RoleSettingRow {
    pub role: String,
    pub name: String,
    pub value: String,
}

/// One row of `TYPES_SQL`.
#[derive(Debug, Clone)]
pub struct TypeRow {
    pub schema: String,
    pub name: String,
}

impl SchemaCache {
    pub fn new(default_schema: &str, relations: Vec<Relation>, functions: Vec<Function>, foreign_keys: Vec<ForeignKey>) -> SchemaCache {
        let mut relations: HashMap<String, Relation> =
            relations.into_iter().filter(|r| r.schema == default_schema).map(|r| (r.name.clone(), r)).collect();
        for f in functions.iter().filter(|f| f.schema == default_schema) {
            if let Some(relation) = f.computes_column_of.as_ref().and_then(|r| relations.get_mut(r)) {
                if relation.column(&f.name).is_none() {
                    relation
                        .computed
                        .push(Column { computed_by: Some(f.schema.clone()), ..Column::of_result(f.name.clone(), f.return_type.clone()) });
                }
            }
        }
        let computed_relationships = functions
            .iter()
            .filter(|f| f.schema == default_schema)
            .filter_map(|f| match (&f.row_argument_of, &f.returns) {
                (Some(outer), Returns::Rows { set, row: RowType::Relation(target) }) if relations.contains_key(target) => {
                    Some(ComputedRelationship {
                        schema: f.schema.clone(),
                        name: f.name.clone(),
                        outer: outer.clone(),
                        target: target.clone(),
                        to_one: !set || f.one_row,
                    })
                }
                _ => None,
            })
            .collect();
        let mut by_name: HashMap<String, Vec<Function>> = HashMap::new();
        // Arguments are passed by name: a function with an unnamed one
        // cannot be called through the API.
        for f in functions.into_iter().filter(|f| {
            f.schema == default_schema
                && (f.args.iter().all(|a| !a.name.is_empty()) || f.takes_whole_body() || RawBody::ALL.iter().any(|m| f.takes_raw_body(*m)))
        }) {
            by_name.entry(f.name.clone()).or_default().push(f);
        }
        SchemaCache {
            default_schema: default_schema.to_owned(),
            relations,
            computed_relationships,
            geojson: None,
            media_handlers: Vec::new(),
            functions: by_name,
            foreign_keys,
            types: HashMap::new(),
            role_settings: HashMap::new(),
            timezones: Default::default(),
        }
    }

    /// The cache with the relationships of views, as PostgREST infers them:
    /// a view whose columns reference all the columns of a table's foreign
    /// key (or of the key it references) has that relationship too, under
    /// the same name, with its own columns; one referencing all of a
    /// table's primary key has that key.
    pub fn with_view_columns(mut self, rows: impl IntoIterator<Item = ViewColumn>) -> SchemaCache {
        // view → column → (relation, column), the last of a name winning.
        let mut direct: HashMap<String, HashMap<String, (String, String)>> = HashMap::new();
        for r in rows {
            if self.relations.contains_key(&r.view) && r.view != r.source {
                direct.entry(r.view).or_default().insert(r.column, (r.source, r.source_column));
            }
        }
        // Through views of views, down to a table.
        let resolve = |view: &str, column: &str| -> Option<(String, String)> {
            let mut at = (view.to_owned(), column.to_owned());
            for _ in 0..16 {
                match direct.get(&at.0).and_then(|cols| cols.get(&at.1)) {
                    Some(next) => at = next.clone(),
                    None => return Some(at).filter(|(rel, _)| rel != view),
                }
            }
            None
        };
        let mut by_view: Vec<(String, Vec<ViewColumnOrigin>)> = Vec::new();
        for (view, columns) in &direct {
            let mut mapped: Vec<ViewColumnOrigin> =
                columns.keys().filter_map(|c| resolve(view, c).map(|(table, tc)| (c.clone(), table, tc))).collect();
            mapped.sort();
            by_view.push((view.clone(), mapped));
        }
        by_view.sort();
        // The view's columns for all of `columns` of `table`, in order.
        let cover = |mapped: &[ViewColumnOrigin], table: &str, columns: &[String]| -> Option<Vec<String>> {
            columns.iter().map(|c| mapped.iter().find(|(_, t, tc)| t == table && tc == c).map(|(vc, _, _)| vc.clone())).collect()
        };
        let base: Vec<ForeignKey> = self.foreign_keys.clone();
        for fk in &base {
            let from: Vec<(String, Vec<String>)> = std::iter::once((fk.table.clone(), fk.columns.clone()))
                .chain(by_view.iter().filter_map(|(v, m)| cover(m, &fk.table, &fk.columns).map(|cols| (v.clone(), cols))))
                .collect();
            let to: Vec<(String, Vec<String>)> = std::iter::once((fk.referenced_table.clone(), fk.referenced_columns.clone()))
                .chain(
                    by_view
                        .iter()
                        .filter_map(|(v, m)| cover(m, &fk.referenced_table, &fk.referenced_columns).map(|cols| (v.clone(), cols))),
                )
                .collect();
            for (i, (table, columns)) in from.iter().enumerate() {
                for (j, (referenced_table, referenced_columns)) in to.iter().enumerate() {
                    if i == 0 && j == 0 {
                        continue; // the table's own key, already there
                    }
                    self.foreign_keys.push(ForeignKey {
                        name: fk.name.clone(),
                        table: table.clone(),
                        columns: columns.clone(),
                        referenced_table: referenced_table.clone(),
                        referenced_columns: referenced_columns.clone(),
                        one_to_one: fk.one_to_one,
                    });
                }
            }
        }
        for (view, mapped) in &by_view {
            let Some(table) = mapped.first().map(|(_, t, _)| t.clone()) else { continue };
            let key: Vec<String> = self
                .relations
                .get(&table)
                .map(|r| r.columns.iter().filter(|c| c.primary_key).map(|c| c.name.clone()).collect())
                .unwrap_or_default();
            if let (false, Some(columns)) = (key.is_empty(), cover(mapped, &table, &key)) {
                if let Some(v) = self.relations.get_mut(view) {
                    for c in v.columns.iter_mut().filter(|c| columns.contains(&c.name)) {
                        c.primary_key = true;
                    }
                }
            }
        }
        self
    }

    /// The cache with PostGIS's `ST_AsGeoJSON(record)` (GEOJSON_SQL).
    pub fn with_geojson(mut self, function: Option<String>) -> SchemaCache {
        self.geojson = function;
        self
    }

    /// The cache with the media type handlers (MEDIA_HANDLERS_SQL).
    pub fn with_media_handlers(mut self, handlers: Vec<MediaHandler>) -> SchemaCache {
        self.media_handlers = handlers;
        self
    }

    /// The handlers a read of `relation` may answer with, as PostgREST looks
    /// them up: the relation's own (only when `select` is all columns), then
    /// those of any relation.
    pub fn media_handlers(&self, relation: &str, all_columns: bool) -> Vec<&MediaHandler> {
        let own = self.media_handlers.iter().filter(|h| all_columns && h.relation.as_deref() == Some(relation));
        own.chain(self.media_handlers.iter().filter(|h| h.relation.is_none())).collect()
    }

    /// PostGIS's `ST_AsGeoJSON(record)`, when installed.
    pub fn geojson(&self) -> Option<&str> {
        self.geojson.as_deref()
    }

    /// The cache with the database's time zone names.
    pub fn with_timezones(mut self, names: impl IntoIterator<Item = String>) -> SchemaCache {
        self.timezones = names.into_iter().collect();
        self
    }

    /// Whether `name` is a time zone the database knows (`Prefer: timezone`).
    pub fn knows_timezone(&self, name: &str) -> bool {
        self.timezones.contains(name)
    }

    /// The cache with the roles' settings (`ROLE_SETTINGS_SQL`'s rows, this
    /// database's after the global ones, so they win).
    pub fn with_role_settings(mut self, rows: impl IntoIterator<Item = RoleSettingRow>) -> SchemaCache {
        let mut by_role: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for r in rows {
            let pairs = by_role.entry(r.role).or_default();
            pairs.retain(|(n, _)| *n != r.name);
            pairs.push((r.name, r.value));
        }
        self.role_settings = by_role.into_iter().map(|(role, pairs)| (role, RoleSettings::from_pairs(pairs))).collect();
        self
    }

    /// The settings of `role` (none: an empty object).
    pub fn role_settings(&self, role: &str) -> Option<&RoleSettings> {
        self.role_settings.get(role)
    }

    /// The cache with the types casts may name (`TYPES_SQL`'s rows).
    pub fn with_types(mut self, rows: impl IntoIterator<Item = TypeRow>) -> SchemaCache {
        self.types = rows.into_iter().map(|t| (t.name.to_lowercase(), format!("{}.{}", quote(&t.schema), quote(&t.name)))).collect();
        self
    }

    /// The SQL for a cast's type name: a type the database has, by its
    /// catalog name (`int4`) or SQL's (`integer`), as a quoted identifier,
    /// so nothing of the request reaches the SQL text. None: no such type.
    pub fn cast_type(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        // SQL's spellings that the grammar turns into catalog names.
        let catalog_name = match name.as_str() {
            "int" | "integer" => "int4",
            "smallint" => "int2",
            "bigint" => "int8",
            "real" => "float4",
            "float" => "float8",
            "boolean" => "bool",
            "decimal" | "dec" => "numeric",
            "char" | "character" => "bpchar",
            other => other,
        };
        self.types.get(catalog_name).map(String::as_str)
    }

    /// Every relation, sorted by name (for the OpenAPI document).
    pub fn relations(&self) -> Vec<&Relation> {
        let mut all: Vec<&Relation> = self.relations.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Every function overload, sorted by name.
    pub fn all_functions(&self) -> Vec<&Function> {
        let mut all: Vec<&Function> = self.functions.values().flatten().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Every relationship `outer` has, as PostgREST infers them: each
    /// foreign key from it (many-to-one, or one-to-one when the key's
    /// columns are unique), each to it (one-to-many, or one-to-one), and
    /// many-to-many through a junction table whose primary key holds the
    /// columns of two foreign keys, one to each side.
    pub fn relationships_of(&self, outer: &str) -> Vec<Relationship> {
        let pairs = |a: &[String], b: &[String]| a.iter().cloned().zip(b.iter().cloned()).collect::<Vec<_>>();
        let mut found = Vec::new();
        for fk in self.foreign_keys.iter().filter(|fk| fk.table == outer) {
            found.push(Relationship {
                cardinality: if fk.one_to_one { Cardinality::OneToOne } else { Cardinality::ManyToOne },
                constraint: fk.name.clone(),
                target: fk.referenced_table.clone(),
                join: pairs(&fk.columns, &fk.referenced_columns),
                junction: None,
                is_self: fk.table == fk.referenced_table,
            });
        }
        for fk in self.foreign_keys.iter().filter(|fk| fk.referenced_table == outer) {
            found.push(Relationship {
                cardinality: if fk.one_to_one { Cardinality::OneToOne } else { Cardinality::OneToMany },
                constraint: fk.name.clone(),
                target: fk.table.clone(),
                join: pairs(&fk.referenced_columns, &fk.columns),
                junction: None,
                is_self: fk.table == fk.referenced_table,
            });
        }
        for to_outer in self.foreign_keys.iter().filter(|fk| fk.referenced_table == outer && !fk.one_to_one) {
            let Some(junction) = self.relations.get(&to_outer.table) else { continue };
            let key: Vec<&str> = junction.columns.iter().filter(|c| c.primary_key).map(|c| c.name.as_str()).collect();
            for to_target in self.foreign_keys.iter().filter(|fk| fk.table == to_outer.table && fk.name != to_outer.name && !fk.one_to_one)
            {
                if to_outer.columns.iter().chain(&to_target.columns).all(|c| key.contains(&c.as_str())) {
                    found.push(Relationship {
                        cardinality: Cardinality::ManyToMany,
                        constraint: junction.name.clone(),
                        target: to_target.referenced_table.clone(),
                        join: pairs(&to_outer.referenced_columns, &to_outer.columns),
                        junction: Some(Junction {
                            table: junction.name.clone(),
                            outer_constraint: to_outer.name.clone(),
                            target_constraint: to_target.name.clone(),
                            target_join: pairs(&to_target.columns, &to_target.referenced_columns),
                        }),
                        is_self: to_target.referenced_table == outer,
                    });
                }
            }
        }
        found
    }

    /// The computed relationship `name` of `outer`, if a function makes one.
    pub fn computed_relationship(&self, outer: &str, name: &str) -> Option<&ComputedRelationship> {
        self.computed_relationships.iter().find(|c| c.outer == outer && c.name == name)
    }

    /// The relations `name` has a relationship with (for "Perhaps you meant").
    pub fn related(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = self.relationships_of(name).into_iter().map(|r| r.target).collect();
        names.sort();
        names.dedup();
        names
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

/// `"name"` with embedded quotes doubled.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Types a cast may name: the ones visible on the search path (as an
/// unqualified name in SQL would find them), not pseudo-types.
/// Types whose input looks its text up in the system catalogs: the object
/// identifier types (`'authenticator'::regrole` tells whether that role
/// exists) and `aclitem` (`'x=r/postgres'` names roles), so casts may not
/// name them.
pub fn looks_up_catalog(type_name: &str) -> bool {
    const LOOKUPS: [&str; 12] = [
        "aclitem",
        "regclass",
        "regcollation",
        "regconfig",
        "regdictionary",
        "regnamespace",
        "regoper",
        "regoperator",
        "regproc",
        "regprocedure",
        "regrole",
        "regtype",
    ];
    let name = type_name.trim().to_ascii_lowercase();
    let name = name.rsplit('.').next().unwrap_or_default().trim_matches('"').trim_start_matches('_');
    LOOKUPS.contains(&name.trim_end_matches("[]"))
}

/// Settings made with `ALTER ROLE … SET` (also `IN DATABASE` this one)
/// that any role may set (context `user`), as PostgREST applies them; those
/// needing privileges are left out so they cannot fail a request.
pub const ROLE_SETTINGS_SQL: &str = "
SELECT r.rolname::text, kv[1], kv[2]
  FROM pg_db_role_setting s
  JOIN pg_roles r ON r.oid = s.setrole
  CROSS JOIN LATERAL unnest(s.setconfig) c(setting)
  CROSS JOIN LATERAL regexp_match(c.setting, '^([^=]+)=(.*)$', 's') kv
  JOIN pg_settings ps ON ps.name = kv[1] AND ps.context = 'user'
 WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
 ORDER BY s.setdatabase, r.rolname";

pub const TIMEZONES_SQL: &str = "SELECT name FROM pg_timezone_names";

/// PostGIS's `ST_AsGeoJSON(record, …)`, schema-qualified, if installed.
pub const GEOJSON_SQL: &str = "
SELECT format('%I.%I', n.nspname, p.proname)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname = 'st_asgeojson' AND p.proargtypes[0] = 'record'::regtype
 LIMIT 1";

pub const TYPES_SQL: &str = "
SELECT n.nspname::text, t.typname::text
  FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typisdefined AND t.typtype <> 'p' AND pg_type_is_visible(t.oid)";

/// The catalog query `db` runs to fill the cache: relations and columns
/// the API may expose, one row per column.
pub const RELATIONS_SQL: &str = "
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(a.attnum = ANY(pk.indkey), false), NOT a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '', c.relkind IN ('r', 'p', 'f'),
       c.relkind IN ('r', 'p', 'f', 'm') AND NOT c.relrowsecurity, pg_relation_is_updatable(c.oid, true),
       c.relkind IN ('r', 'p'),
       CASE format_type(v.oid, NULL) WHEN 'character' THEN 'bpchar' WHEN 'character[]' THEN 'bpchar[]'
            WHEN 'bit' THEN '\"bit\"' WHEN 'bit[]' THEN '\"bit\"[]' ELSE format_type(v.oid, NULL) END
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  CROSS JOIN LATERAL (
    WITH RECURSIVE d(oid, typtype, typbasetype) AS (
      SELECT t.oid, t.typtype, t.typbasetype FROM pg_type t WHERE t.oid = a.atttypid
      UNION ALL
      SELECT b.oid, b.typtype, b.typbasetype FROM d JOIN pg_type b ON b.oid = d.typbasetype WHERE d.typtype = 'd')
    SELECT d.oid FROM d WHERE d.typtype <> 'd') v
  LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
 WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND n.nspname = ANY($1::text[])
 ORDER BY n.nspname, c.relname, a.attnum";

/// Functions, one row per function: the parameters a call passes, and
/// what it returns (`kind`: void, relation, columns or scalar; the columns
/// of OUT / TABLE parameters, else of a composite type).
pub const FUNCTIONS_SQL: &str = "
SELECT n.nspname, p.proname,
       ARRAY(SELECT coalesce(p.proargnames[k.i], '')
               FROM unnest(coalesce(p.proargmodes, array_fill('i'::\"char\", ARRAY[p.pronargs::int]))) WITH ORDINALITY k(mode, i)
              WHERE k.mode IN ('i', 'b', 'v') ORDER BY k.i),
       ARRAY(SELECT format_type(a.t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY a(t, i) ORDER BY a.i),
       p.pronargdefaults::int, p.proretset,
       CASE WHEN p.prorettype = 'void'::regtype THEN 'void'
            WHEN rc.relkind IN ('r', 'v', 'm', 'p', 'f') AND rc.relnamespace = p.pronamespace THEN 'relation'
            WHEN out.names <> '{}' OR t.typtype = 'c' THEN 'columns'
            ELSE 'scalar' END,
       p.provolatile = 'v', rc.relname::text,
       CASE WHEN out.names <> '{}' THEN out.names ELSE attrs.names END,
       CASE WHEN out.names <> '{}' THEN out.types ELSE attrs.types END,
       format_type(p.prorettype, NULL), p.provariadic <> 0,
       (SELECT ac.relname::text FROM pg_type at JOIN pg_class ac ON ac.oid = at.typrelid
         WHERE p.pronargs = 1 AND at.oid = p.proargtypes[0] AND ac.relnamespace = p.pronamespace),
       p.prorows = 1,
       CASE WHEN t.typtype = 'd' AND t.typname LIKE '%/%' THEN t.typname::text END,
       t.typbasetype = 'bytea'::regtype
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_type t ON t.oid = p.prorettype
  LEFT JOIN pg_class rc ON rc.oid = t.typrelid
  CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(coalesce(p.proargnames[k.i], 'column' || k.i) ORDER BY k.i), '{}') AS names,
           coalesce(array_agg(format_type(p.proallargtypes[k.i], NULL) ORDER BY k.i), '{}') AS types
      FROM unnest(p.proargmodes) WITH ORDINALITY k(mode, i) WHERE k.mode IN ('o', 'b', 't')) out
  CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}') AS names,
           coalesce(array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum), '{}') AS types
      FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) attrs
 WHERE n.nspname = ANY($1::text[]) AND p.prokind = 'f'
   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)";

/// Foreign keys whose both ends are exposed, one row each, columns in
/// key order; whether their columns are exactly a primary key or unique
/// constraint of the referencing table (one-to-one).
pub const FOREIGN_KEYS_SQL: &str = "
SELECT con.conname::text, src.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.i),
       dst.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i),
       EXISTS (SELECT 1 FROM pg_constraint u
                WHERE u.conrelid = con.conrelid AND u.contype IN ('p', 'u')
                  AND (SELECT array_agg(x ORDER BY x) FROM unnest(u.conkey) x) = (SELECT array_agg(x ORDER BY x) FROM unnest(con.conkey) x))
  FROM pg_constraint con
  JOIN pg_class src ON src.oid = con.conrelid
  JOIN pg_class dst ON dst.oid = con.confrelid
  JOIN pg_namespace n ON n.oid = src.relnamespace AND n.oid = dst.relnamespace
 WHERE con.contype = 'f' AND con.conparentid = 0 AND n.nspname = $1
 ORDER BY con.conname";

/// Columns of views (and materialized views) that are plain references to
/// a column of a relation of the same schema, read from the view's rule as
/// PostgREST reads it (`:resorigtbl` / `:resorigcol` of its target list;
/// subqueries come first in the rule's text, so the last match of a name is
/// the view's own). One row per (view, column, relation, column).
pub const VIEW_COLUMNS_SQL: &str = "
SELECT v.relname::text, m.m[1], t.relname::text, a.attname::text
  FROM pg_class v
  JOIN pg_namespace n ON n.oid = v.relnamespace
  JOIN pg_rewrite r ON r.ev_class = v.oid AND r.rulename = '_RETURN'
  CROSS JOIN LATERAL regexp_matches(r.ev_action::text, ':resname (\\S+) :ressortgroupref \\d+ :resorigtbl (\\d+) :resorigcol (\\d+) :resjunk false', 'g')
       WITH ORDINALITY m(m, i)
  JOIN pg_class t ON t.oid = m.m[2]::oid AND t.relnamespace = v.relnamespace
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = m.m[3]::int AND NOT a.attisdropped
 WHERE v.relkind IN ('v', 'm') AND n.nspname = $1
 ORDER BY v.relname, m.i";

/// One row of `VIEW_COLUMNS_SQL`.
#[derive(Debug, Clone)]
pub struct ViewColumn {
    pub view: String,
    pub column: String,
    pub source: String,
    pub source_column: String,
}

/// One row of `RELATIONS_SQL`.
pub struct ColumnRow {
    pub schema: String,
    pub relation: String,
    pub is_table: bool,
    pub planner_counts_visible: bool,
    pub row_addresses: bool,
    pub writable: Writable,
    pub column: Column,
}

/// Rows of `RELATIONS_SQL`, grouped into relations.
pub fn group_columns(rows: impl IntoIterator<Item = ColumnRow>) -> Vec<Relation> {
    let mut out: Vec<Relation> = Vec::new();
    for ColumnRow { schema, relation, is_table, planner_counts_visible, row_addresses, writable, column } in rows {
        match out.last_mut() {
            Some(r) if r.schema == schema && r.name == relation => r.columns.push(column),
            _ => out.push(Relation {
                schema,
                name: relation,
                is_table,
                planner_counts_visible,
                row_addresses,
                writable,
                columns: vec![column],
                computed: Vec::new(),
            }),
        }
    }
    out
}

/// One row of `FUNCTIONS_SQL`.
pub struct FunctionRow {
    pub schema: String,
    pub name: String,
    pub arg_names: Vec<String>,
    pub arg_types: Vec<String>,
    pub n_defaults: i32,
    pub returns_set: bool,
    /// `void`, `relation`, `columns` or `scalar`.
    pub kind: String,
    pub volatile: bool,
    pub relation: Option<String>,
    pub column_names: Vec<String>,
    pub column_types: Vec<String>,
    pub return_type: String,
    pub variadic: bool,
    pub row_argument_of: Option<String>,
    /// `prorows = 1`.
    pub one_row: bool,
    /// The return type's name when it is a domain named like a media type.
    pub media_type: Option<String>,
    pub media_type_binary: bool,
}

impl FunctionRow {
    pub fn into_function(self) -> Function {
        let first_default = self.arg_types.len().saturating_sub(self.n_defaults.max(0) as usize);
        let names = self.arg_names;
        let args = self
            .arg_types
            .into_iter()
            .enumerate()
            .map(|(i, type_sql)| Argument { name: names.get(i).cloned().unwrap_or_default(), type_sql, has_default: i >= first_default })
            .collect();
        let set = self.returns_set;
        let returns = match (self.kind.as_str(), self.relation) {
            ("void", _) => Returns::Void,
            ("relation", Some(name)) => Returns::Rows { set, row: RowType::Relation(name) },
            ("columns" | "relation", _) => Returns::Rows {
                set,
                row: RowType::Columns(
                    self.column_names
                        .into_iter()
                        .zip(self.column_types)
                        .map(|(name, type_sql)| Column::of_result(name, type_sql))
                        .collect(),
                ),
            },
            _ => Returns::Scalar { set, type_sql: self.return_type.clone() },
        };
        // A function returning a relation's rows is a computed relationship, not a column.
        let computes_column_of = self
            .row_argument_of
            .clone()
            .filter(|_| !set && returns != Returns::Void && !matches!(returns, Returns::Rows { row: RowType::Relation(_), .. }));
        Function {
            schema: self.schema,
            name: self.name,
            args,
            returns,
            volatile: self.volatile,
            variadic: self.variadic,
            computes_column_of,
            row_argument_of: self.row_argument_of,
            one_row: self.one_row,
            media_type: self.media_type.map(|name| MediaType { name, binary: self.media_type_binary }),
            return_type: self.return_type,
        }
    }
}

/// A function of `schema` taking `args` (name, type) with `n_defaults`
/// trailing defaults (tests).
#[cfg(test)]
pub fn test_function(name: &str, args: &[(&str, &str)], n_defaults: i32, returns: Returns) -> Function {
    let row = FunctionRow {
        schema: "public".into(),
        name: name.into(),
        arg_names: args.iter().map(|(n, _)| (*n).into()).collect(),
        arg_types: args.iter().map(|(_, t)| (*t).into()).collect(),
        n_defaults,
        returns_set: false,
        kind: "scalar".into(),
        volatile: true,
        relation: None,
        column_names: vec![],
        column_types: vec![],
        return_type: "json".into(),
        variadic: false,
        row_argument_of: None,
        one_row: false,
        media_type: None,
        media_type_binary: false,
    };
    Function { returns, ..row.into_function() }
}

#[cfg(test)]
pub fn test_cache() -> SchemaCache {
    let table = |name: &str, key: &str, columns: &[(&str, &str)]| Relation {
        schema: "public".into(),
        name: name.into(),
        is_table: true,
        planner_counts_visible: name != "orders",
        row_addresses: true,
        writable: Writable::ALL,
        columns: columns
            .iter()
            .map(|(n, t)| Column {
                primary_key: *n == key,
                nullable: *n != key,
                has_default: *n == key,
                ..Column::of_result((*n).into(), (*t).into())
            })
            .collect(),
        computed: Vec::new(),
    };
    let orders = table(
        "orders",
        "order_id",
        &[
            ("order_id", "bigint"),
            ("order_number", "text"),
            ("user_id", "clerk_user_id"),
            ("status", "text"),
            ("total_amount", "numeric(10,2)"),
            ("notes", "text"),
            ("created_at", "timestamp with time zone"),
        ],
    );
    let items = table(
        "order_items",
        "order_item_id",
        &[("order_item_id", "bigint"), ("order_id", "bigint"), ("product_id", "bigint"), ("product_name", "text"), ("quantity", "integer")],
    );
    let products = table("products", "product_id", &[("product_id", "bigint"), ("name", "text"), ("price", "numeric(10,2)")]);
    let fk = |name: &str, table: &str, column: &str, referenced: &str| ForeignKey {
        name: name.into(),
        table: table.into(),
        columns: vec![column.into()],
        referenced_table: referenced.into(),
        referenced_columns: vec![column.into()],
        one_to_one: false,
    };
    let redeem = test_function(
        "redeem_coupon",
        &[("code", "text"), ("order_id", "bigint")],
        0,
        Returns::Rows { set: false, row: RowType::Columns(vec![Column::of_result("discount".into(), "numeric".into())]) },
    );
    SchemaCache::new(
        "public",
        vec![orders, items, products],
        vec![redeem],
        vec![
            fk("order_items_order_id_fkey", "order_items", "order_id", "orders"),
            fk("order_items_product_id_fkey", "order_items", "product_id", "products"),
        ],
    )
    .with_types(
        ["int4", "text", "numeric", "clerk_user_id"]
            .map(|n| TypeRow { schema: if n == "clerk_user_id" { "public".into() } else { "pg_catalog".into() }, name: n.into() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_catalog_rows() {
        let row = |relation: &str, column: &str, primary_key: bool| ColumnRow {
            schema: "public".into(),
            relation: relation.into(),
            is_table: true,
            planner_counts_visible: true,
            row_addresses: true,
            writable: Writable::from_mask(if relation == "a" { 28 } else { 0 }),
            column: Column { primary_key, nullable: !primary_key, ..Column::of_result(column.into(), "int".into()) },
        };
        let r = group_columns(vec![row("a", "x", true), row("a", "y", false), row("b", "z", false)]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].columns.len(), 2);
        assert!(r[0].columns[0].primary_key && !r[0].columns[1].primary_key);
        // PostgREST's OptionsSpec: a table with a key; a read-only view.
        assert_eq!(r[0].allow(), "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE");
        assert_eq!(r[1].allow(), "OPTIONS,GET,HEAD");
        let no_key = Relation { columns: vec![r[0].columns[1].clone()], ..r[0].clone() };
        assert_eq!(no_key.allow(), "OPTIONS,GET,HEAD,POST,PATCH,DELETE");
        let insert_only = Relation { writable: Writable::from_mask(8), ..r[0].clone() };
        assert_eq!(insert_only.allow(), "OPTIONS,GET,HEAD,POST");
    }

    #[test]
    fn defaults_are_the_trailing_arguments() {
        let f = test_function("f", &[("a", "int"), ("b", "int")], 1, Returns::Void);
        assert!(!f.args[0].has_default && f.args[1].has_default);
    }

    #[test]
    fn only_the_default_schema_is_exposed() {
        let c = test_cache();
        assert!(c.relation("orders").is_some());
        assert!(c.relation("pg_class").is_none());
        assert_eq!(c.functions("redeem_coupon").len(), 1);
    }

    #[test]
    fn casts_name_catalog_types_as_quoted_identifiers() {
        let c = test_cache();
        assert_eq!(c.cast_type("integer"), Some("\"pg_catalog\".\"int4\""));
        assert_eq!(c.cast_type("TEXT"), Some("\"pg_catalog\".\"text\""));
        assert_eq!(c.cast_type("clerk_user_id"), Some("\"public\".\"clerk_user_id\""));
        for bad in ["text FROM products _pgrst_t0 UNION SELECT rolname FROM pg_roles UNION SELECT name", "nope", "text\"", ""] {
            assert_eq!(c.cast_type(bad), None, "{bad}");
        }
    }

    #[test]
    fn role_settings_become_json_and_a_statement_timeout() {
        let row = |role: &str, name: &str, value: &str| RoleSettingRow { role: role.into(), name: name.into(), value: value.into() };
        let c = test_cache().with_role_settings([
            row("anon", "statement_timeout", "10s"),
            row("anon", "work_mem", "1MB"),
            row("anon", "statement_timeout", "3s"), // IN DATABASE: wins
            row("authenticated", "statement_timeout", "0"),
            row("staff", "work_mem", "64MB"),
        ]);
        let anon = c.role_settings("anon").unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&anon.json).unwrap(),
            serde_json::json!({"work_mem": "1MB", "statement_timeout": "3s"})
        );
        assert_eq!(anon.statement_timeout, Some(Some(std::time::Duration::from_secs(3))));
        assert_eq!(c.role_settings("authenticated").unwrap().statement_timeout, Some(None));
        assert_eq!(c.role_settings("staff").unwrap().statement_timeout, None);
        assert!(c.role_settings("nobody").is_none());
        for (text, ms) in
            [("250", Some(250)), ("1.5s", Some(1500)), ("2min", Some(120_000)), ("500us", Some(1)), ("1 h", Some(3_600_000)), ("x", None)]
        {
            assert_eq!(parse_duration_ms(text), ms, "{text}");
        }
    }

    #[test]
    fn casts_to_catalog_lookups_are_recognised() {
        for t in ["regrole", "REGCLASS", "pg_catalog.regproc", "_regtype", "regnamespace[]", "aclitem", "_aclitem"] {
            assert!(looks_up_catalog(t), "{t}");
        }
        for t in ["text", "region", "int4", "registered"] {
            assert!(!looks_up_catalog(t), "{t}");
        }
    }

    #[test]
    fn relationships_go_both_ways() {
        let c = test_cache();
        let down: Vec<Relationship> = c.relationships_of("orders").into_iter().filter(|r| r.target == "order_items").collect();
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].cardinality, Cardinality::OneToMany);
        assert_eq!(down[0].join, [("order_id".to_owned(), "order_id".to_owned())]);
        let up: Vec<Relationship> = c.relationships_of("order_items").into_iter().filter(|r| r.target == "products").collect();
        assert!(up[0].cardinality.to_one() && up[0].constraint == "order_items_product_id_fkey");
        // order_items' key is its own id, not (order_id, product_id): no many-to-many.
        assert!(!c.relationships_of("orders").iter().any(|r| r.target == "products"));
    }
}
