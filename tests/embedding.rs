//! Resource embedding as PostgREST infers and answers it (issue 18), the
//! cases ported from its spec (test/spec/Feature/Query: QuerySpec's
//! one-to-one and many-to-many, EmbedDisambiguationSpec, ComputedRelsSpec,
//! EmbedInnerJoinSpec), on a fixture of this file's own with PostgREST's
//! fixture names: one-to-one, many-to-many through a junction, a table
//! that references itself, computed relationships, and embedding by a
//! foreign key's column or constraint name. Every answer is parsed by a
//! strict parser that refuses duplicate keys.

use pg_clerk_e2e::{fresh_database, http, parse_strict, start_proxy, Running};
use serde_json::{json, Value};
use std::sync::OnceLock;

const DB: &str = "pg_clerk_embedding";

const FIXTURE: &str = "
CREATE TABLE public.clients (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.projects (id integer PRIMARY KEY, name text NOT NULL, client_id integer);
ALTER TABLE public.projects ADD CONSTRAINT client FOREIGN KEY (client_id) REFERENCES public.clients(id);
INSERT INTO public.clients VALUES (1, 'Microsoft'), (2, 'Apple');
INSERT INTO public.projects VALUES (1, 'Windows 7', 1), (2, 'Windows 10', 1), (3, 'IOS', 2), (4, 'OSX', 2), (5, 'Orphan', NULL);
-- one-to-one: the key column is unique
CREATE TABLE public.country (id integer PRIMARY KEY, name text);
CREATE TABLE public.capital (id integer PRIMARY KEY, name text, country_id integer UNIQUE REFERENCES public.country(id));
INSERT INTO public.country VALUES (1, 'Afghanistan'), (2, 'Algeria');
INSERT INTO public.capital VALUES (1, 'Kabul', 1), (2, 'Algiers', 2);
-- many-to-many: both keys in the junction's primary key
CREATE TABLE public.users (id integer PRIMARY KEY, name text);
CREATE TABLE public.tasks (id integer PRIMARY KEY, name text, project_id integer REFERENCES public.projects(id));
CREATE TABLE public.users_tasks (user_id integer REFERENCES public.users(id), task_id integer REFERENCES public.tasks(id), PRIMARY KEY (task_id, user_id));
INSERT INTO public.users VALUES (1, 'Angela Martin'), (2, 'Michael Scott'), (3, 'Dwight Schrute');
INSERT INTO public.tasks VALUES (1, 'Design w7', 1), (2, 'Code w7', 1), (3, 'Design w10', 2), (4, 'Code w10', 2);
INSERT INTO public.users_tasks VALUES (1, 1), (3, 1), (1, 2), (2, 3);
-- a table that references itself
CREATE TABLE public.family_tree (id text PRIMARY KEY, name text, parent text);
ALTER TABLE public.family_tree ADD CONSTRAINT pptr FOREIGN KEY (parent) REFERENCES public.family_tree(id);
INSERT INTO public.family_tree VALUES ('1', 'Parental Unit', NULL), ('2', 'Kid One', '1'), ('3', 'Kid Two', '1'), ('4', 'Grandkid One', '2'), ('5', 'Grandkid Two', '3');
-- two keys between the same tables: a hint picks one
CREATE TABLE public.person (id integer PRIMARY KEY, name text);
CREATE TABLE public.message (id integer PRIMARY KEY, body text, sender integer REFERENCES public.person(id), recipient integer REFERENCES public.person(id));
INSERT INTO public.person VALUES (1, 'John'), (2, 'Jane');
INSERT INTO public.message VALUES (1, 'Hello Jane', 1, 2), (2, 'Hi John', 2, 1);
-- computed relationships
CREATE TABLE public.designers (id integer PRIMARY KEY, name text);
CREATE TABLE public.videogames (id integer PRIMARY KEY, name text, designer_id integer REFERENCES public.designers(id));
INSERT INTO public.designers VALUES (1, 'Sid Meier'), (2, 'Hironobu Sakaguchi');
INSERT INTO public.videogames VALUES (1, 'Civilization I', 1), (2, 'Civilization II', 1), (3, 'Final Fantasy I', 2), (4, 'Final Fantasy II', 2);
CREATE FUNCTION public.computed_designers(public.videogames) RETURNS SETOF public.designers LANGUAGE sql STABLE ROWS 1
  AS $$ SELECT * FROM public.designers WHERE id = $1.designer_id $$;
CREATE FUNCTION public.computed_videogames(public.designers) RETURNS SETOF public.videogames LANGUAGE sql STABLE
  AS $$ SELECT * FROM public.videogames WHERE designer_id = $1.id $$;
-- views: relationships through columns that are plain references
CREATE VIEW public.projects_view AS SELECT * FROM public.projects;
CREATE VIEW public.projects_view_alt AS SELECT id AS t_id, name, client_id AS c_id FROM public.projects;
CREATE VIEW public.clients_view AS SELECT id, upper(name) AS name FROM public.clients;
CREATE TABLE public.addresses (id integer PRIMARY KEY, info jsonb);
INSERT INTO public.addresses VALUES (1, '{\"city\": \"Paris\"}'), (2, '{\"city\": \"Paris\"}'), (3, '{\"city\": \"Oslo\"}');
-- money to aggregate
CREATE TABLE public.project_invoices (id integer PRIMARY KEY, invoice_total numeric NOT NULL, project_id integer REFERENCES public.projects(id));
INSERT INTO public.project_invoices VALUES (1, 100, 1), (2, 200, 1), (3, 500, 2), (4, 1000, 3);
-- Writes whose representation is aggregated: the rows they change are counted.
CREATE TABLE public.aggregated_writes (id integer PRIMARY KEY, n integer);
INSERT INTO public.aggregated_writes VALUES (1, 0), (2, 0), (3, 0);
GRANT USAGE ON SCHEMA public TO anon;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon;
GRANT UPDATE, DELETE ON public.aggregated_writes TO anon;
";

fn proxy() -> u16 {
    static P: OnceLock<(Running, u16)> = OnceLock::new();
    P.get_or_init(|| {
        let dsn = fresh_database(DB, FIXTURE);
        start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\njwt-secret = \"a-local-development-secret-of-32-bytes!\"\n"))
    })
    .1
}

/// The same database, with `db-aggregates-enabled = true`.
fn aggregating_proxy() -> u16 {
    static P: OnceLock<(Running, u16)> = OnceLock::new();
    P.get_or_init(|| {
        proxy();
        let dsn = pg_clerk_e2e::with_dbname(&pg_clerk_e2e::api_dsn(), DB);
        start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\ndb-aggregates-enabled = true\njwt-secret = \"a-local-development-secret-of-32-bytes!\"\n"))
    })
    .1
}

fn get(path: &str) -> (u16, Value) {
    get_from(proxy(), path)
}

fn get_from(port: u16, path: &str) -> (u16, Value) {
    let (status, _, body) = http(port, "GET", path, &[], None);
    let value = parse_strict(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, value)
}

#[test]
fn the_strict_parser_refuses_duplicate_keys() {
    assert!(parse_strict(r#"[{"a": 1, "a": 2}]"#).is_err());
    assert!(parse_strict(r#"[{"a": {"b": 1}, "b": {"b": 2}}]"#).is_ok());
}

// No answer has a key twice: an item named again is answered once; two
// items under one key are refused.
#[test]
fn no_key_twice() {
    assert_eq!(get("/projects?select=id,id&id=eq.1"), (200, json!([{"id": 1}])));
    assert_eq!(get("/projects?select=*,id&id=eq.1").1, json!([{"id": 1, "name": "Windows 7", "client_id": 1}]));
    for path in [
        "/projects?select=*,name:client_id&id=eq.1",
        "/projects?select=client_id,client_id:clients(name)",
        "/projects?select=name,...clients(name)",
    ] {
        let (status, err) = get(path);
        assert_eq!((status, err["code"].as_str()), (400, Some("PGRST100")), "{path}: {err}");
    }
}

// QuerySpec "one to one relationships": an object from both sides.
#[test]
fn one_to_one_is_an_object_from_both_sides() {
    assert_eq!(
        get("/country?select=name,capital(name)&order=id"),
        (200, json!([{"name": "Afghanistan", "capital": {"name": "Kabul"}}, {"name": "Algeria", "capital": {"name": "Algiers"}}]))
    );
    assert_eq!(
        get("/capital?select=name,country(name)&order=id"),
        (200, json!([{"name": "Kabul", "country": {"name": "Afghanistan"}}, {"name": "Algiers", "country": {"name": "Algeria"}}]))
    );
    // By the key's constraint name and by the referenced column.
    assert_eq!(
        get("/capital?select=name,capital_country_id_fkey(name)&order=id"),
        (
            200,
            json!([{"name": "Kabul", "capital_country_id_fkey": {"name": "Afghanistan"}}, {"name": "Algiers", "capital_country_id_fkey": {"name": "Algeria"}}])
        )
    );
    assert_eq!(
        get("/country?select=name,id(name)&order=id").1,
        json!([{"name": "Afghanistan", "id": {"name": "Kabul"}}, {"name": "Algeria", "id": {"name": "Algiers"}}])
    );
}

// QuerySpec "many to many": through users_tasks.
#[test]
fn many_to_many_through_a_junction() {
    assert_eq!(
        get("/tasks?select=id,users(id)&order=id&users.order=id"),
        (
            200,
            json!([{"id": 1, "users": [{"id": 1}, {"id": 3}]}, {"id": 2, "users": [{"id": 1}]}, {"id": 3, "users": [{"id": 2}]}, {"id": 4, "users": []}])
        )
    );
    assert_eq!(
        get("/users?select=name,tasks(name)&id=eq.1&tasks.order=id"),
        (200, json!([{"name": "Angela Martin", "tasks": [{"name": "Design w7"}, {"name": "Code w7"}]}]))
    );
    assert_eq!(
        get("/users?select=name,tasks!users_tasks(id)&id=eq.2").1,
        json!([{"name": "Michael Scott", "tasks": [{"id": 3}]}]),
        "the junction as hint"
    );
    // RelatedQueriesSpec: a many-to-many embed as a filter.
    assert_eq!(get("/users?select=name,tasks()&tasks.id=eq.1&tasks=is.null&order=id").1, json!([{"name": "Michael Scott"}]));
    assert_eq!(get("/users?select=name,tasks!inner(id)&tasks.id=eq.3").1, json!([{"name": "Michael Scott", "tasks": [{"id": 3}]}]));
}

// EmbedDisambiguationSpec: a table that references itself.
#[test]
fn a_table_that_references_itself() {
    assert_eq!(
        get("/family_tree?id=in.(3,4)&select=id,parent(id,name,parent(*))&order=id"),
        (
            200,
            json!([
                {"id": "3", "parent": {"id": "1", "name": "Parental Unit", "parent": null}},
                {"id": "4", "parent": {"id": "2", "name": "Kid One", "parent": {"id": "1", "name": "Parental Unit", "parent": null}}}
            ])
        )
    );
    assert_eq!(
        get("/family_tree?id=eq.1&select=id,name,children:family_tree!parent(id,name,children:family_tree!parent(id,name))&children.order=id&children.children.order=id"),
        (
            200,
            json!([{"id": "1", "name": "Parental Unit", "children": [
                {"id": "2", "name": "Kid One", "children": [{"id": "4", "name": "Grandkid One"}]},
                {"id": "3", "name": "Kid Two", "children": [{"id": "5", "name": "Grandkid Two"}]}
            ]}])
        )
    );
    assert_eq!(
        get("/family_tree?id=eq.2&select=id,kids:family_tree(id)").1,
        json!([{"id": "2", "kids": [{"id": "4"}]}]),
        "the table's name: its children"
    );
}

// Two keys to the same table: the column, the constraint or the alias picks.
#[test]
fn hints_and_embedding_by_column_or_constraint() {
    assert_eq!(
        get("/message?select=id,body,sender:person!sender(name),recipient:person!recipient(name)&order=id"),
        (
            200,
            json!([{"id": 1, "body": "Hello Jane", "sender": {"name": "John"}, "recipient": {"name": "Jane"}}, {"id": 2, "body": "Hi John", "sender": {"name": "Jane"}, "recipient": {"name": "John"}}])
        )
    );
    assert_eq!(get("/message?select=id,sender(name)&id=eq.1").1, json!([{"id": 1, "sender": {"name": "John"}}]), "the key column itself");
    assert_eq!(
        get("/projects?id=in.(1,3)&select=id,name,client_id(id,name)&order=id").1,
        json!([{"id": 1, "name": "Windows 7", "client_id": {"id": 1, "name": "Microsoft"}}, {"id": 3, "name": "IOS", "client_id": {"id": 2, "name": "Apple"}}])
    );
    assert_eq!(
        get("/projects?id=in.(1,3)&select=id,client(name)&order=id").1,
        json!([{"id": 1, "client": {"name": "Microsoft"}}, {"id": 3, "client": {"name": "Apple"}}]),
        "the constraint's name"
    );
    let (status, err) = get("/message?select=id,sender:person!space(name)");
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST200")), "{err}");
    let (status, err) = get("/message?select=id,person(name)");
    assert_eq!((status, err["code"].as_str(), err["details"].as_array().map(Vec::len)), (300, Some("PGRST201"), Some(2)), "{err}");
    // !left is the default; !inner keeps the rows that have one.
    assert_eq!(get("/projects?select=id,clients!left(id)&id=eq.5").1, json!([{"id": 5, "clients": null}]));
    assert_eq!(get("/projects?select=id,clients!inner(id)&order=id").1.as_array().map(Vec::len), Some(4));
    assert_eq!(get("/projects?id=eq.5&select=id,tasks(id)").1, json!([{"id": 5, "tasks": []}]));
}

// ComputedRelsSpec: functions of a row returning rows of another.
#[test]
fn computed_relationships() {
    assert_eq!(
        get("/videogames?select=name,designer:computed_designers(name)&order=id"),
        (
            200,
            json!([
                {"name": "Civilization I", "designer": {"name": "Sid Meier"}},
                {"name": "Civilization II", "designer": {"name": "Sid Meier"}},
                {"name": "Final Fantasy I", "designer": {"name": "Hironobu Sakaguchi"}},
                {"name": "Final Fantasy II", "designer": {"name": "Hironobu Sakaguchi"}}
            ])
        )
    );
    assert_eq!(
        get("/designers?select=name,videogames:computed_videogames(name)&order=id&videogames.order=id"),
        (
            200,
            json!([
                {"name": "Sid Meier", "videogames": [{"name": "Civilization I"}, {"name": "Civilization II"}]},
                {"name": "Hironobu Sakaguchi", "videogames": [{"name": "Final Fantasy I"}, {"name": "Final Fantasy II"}]}
            ])
        )
    );
    assert_eq!(
        get("/designers?select=name,computed_videogames!inner(name)&computed_videogames.name=like.*II&order=id").1.as_array().map(Vec::len),
        Some(2)
    );
    let (status, err) = get("/designers?select=id,computed_videogames(id)&order=computed_videogames(id).desc");
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST118")), "{err}");
}

// SpreadQueriesSpec: a to-one embed's columns lifted into the row; of many
// rows (v13), each an array, with aggregates enabled.
#[test]
fn spread_embeds() {
    assert_eq!(
        get("/projects?select=id,...clients(client_name:name)&order=id"),
        (
            200,
            json!([{"id": 1, "client_name": "Microsoft"}, {"id": 2, "client_name": "Microsoft"}, {"id": 3, "client_name": "Apple"}, {"id": 4, "client_name": "Apple"}, {"id": 5, "client_name": null}])
        )
    );
    assert_eq!(
        get("/country?select=name,...capital(capital:name)&order=id").1,
        json!([{"name": "Afghanistan", "capital": "Kabul"}, {"name": "Algeria", "capital": "Algiers"}])
    );
    assert_eq!(
        get("/tasks?select=name,...projects(project:name,...clients(client:name))&id=eq.1").1,
        json!([{"name": "Design w7", "project": "Windows 7", "client": "Microsoft"}]),
        "a spread inside a spread"
    );
    assert_eq!(
        get("/users?select=*,tasks:users_tasks(...tasks(*))&id=eq.1&tasks.order=task_id").1,
        json!([{"id": 1, "name": "Angela Martin", "tasks": [{"id": 1, "name": "Design w7", "project_id": 1}, {"id": 2, "name": "Code w7", "project_id": 1}]}]),
        "the junction's columns left out"
    );
    let (status, err) = get("/clients?select=name,...projects(project:name)");
    assert_eq!(
        (status, err),
        (400, json!({"code": "PGRST123", "details": null, "hint": null, "message": "Use of aggregate functions is not allowed"}))
    );
    assert_eq!(
        get_from(aggregating_proxy(), "/clients?select=name,...projects(project:name)&order=id&projects.order=id"),
        (200, json!([{"name": "Microsoft", "project": ["Windows 7", "Windows 10"]}, {"name": "Apple", "project": ["IOS", "OSX"]}]))
    );
}

// AggregateFunctionsSpec: off by default (PGRST123); grouped by the other
// selected columns; inside embeds; `rel(count)`.
#[test]
fn aggregates() {
    let (status, err) = get("/project_invoices?select=invoice_total.sum()");
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST123")));
    let (status, err) = get("/projects?select=name,project_invoices(invoice_total.sum())");
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST123")), "inside an embed too");
    assert_eq!(
        get("/clients?select=name,projects(count)&order=id"),
        (200, json!([{"name": "Microsoft", "projects": [{"count": 2}]}, {"name": "Apple", "projects": [{"count": 2}]}])),
        "rel(count) is PostgreSQL's count(rel), not an aggregate of PostgREST's"
    );
    let on = aggregating_proxy();
    assert_eq!(get_from(on, "/projects?select=count()"), (200, json!([{"count": 5}])));
    assert_eq!(get_from(on, "/projects?select=cnt:count()::text").1, json!([{"cnt": "5"}]));
    assert_eq!(get_from(on, "/project_invoices?select=invoice_total.sum()").1, json!([{"sum": 1800}]));
    assert_eq!(
        get_from(on, "/projects?select=c:count(),client_id&order=client_id.desc").1,
        json!([{"c": 1, "client_id": null}, {"c": 2, "client_id": 2}, {"c": 2, "client_id": 1}])
    );
    assert_eq!(
        get_from(on, "/project_invoices?select=total:invoice_total.sum()::text,project_id&order=project_id").1,
        json!([{"total": "300", "project_id": 1}, {"total": "500", "project_id": 2}, {"total": "1000", "project_id": 3}])
    );
    assert_eq!(get_from(on, "/project_invoices?select=invoice_total::int.max()").1, json!([{"max": 1000}]));
    assert_eq!(
        get_from(on, "/projects?select=name,project_invoices(invoice_total.sum())&order=id").1,
        json!([
            {"name": "Windows 7", "project_invoices": [{"sum": 300}]},
            {"name": "Windows 10", "project_invoices": [{"sum": 500}]},
            {"name": "IOS", "project_invoices": [{"sum": 1000}]},
            {"name": "OSX", "project_invoices": [{"sum": null}]},
            {"name": "Orphan", "project_invoices": [{"sum": null}]}
        ])
    );
    assert_eq!(
        get_from(on, "/project_invoices?select=project_id,total:invoice_total.sum(),projects(name)&order=project_id&limit=1").1,
        json!([{"project_id": 1, "total": 300, "projects": {"name": "Windows 7"}}])
    );
    // Grouped by an embed, a spread's columns and a JSON path, as PostgREST groups.
    assert_eq!(
        get_from(on, "/projects?select=client_id,n:count(),clients(name)&order=client_id").1,
        json!([{"client_id": 1, "n": 2, "clients": {"name": "Microsoft"}}, {"client_id": 2, "n": 2, "clients": {"name": "Apple"}}, {"client_id": null, "n": 1, "clients": null}])
    );
    let sorted = |v: Value, key: &str| {
        let mut rows = v.as_array().unwrap().clone();
        rows.sort_by_key(|r| r[key].to_string());
        Value::Array(rows)
    };
    assert_eq!(
        sorted(get_from(on, "/project_invoices?select=total:invoice_total.sum(),...projects(name)").1, "name"),
        json!([{"total": 1000, "name": "IOS"}, {"total": 500, "name": "Windows 10"}, {"total": 300, "name": "Windows 7"}])
    );
    assert_eq!(
        sorted(get_from(on, "/addresses?select=info-%3E%3Ecity,count()").1, "city"),
        json!([{"city": "Oslo", "count": 1}, {"city": "Paris", "count": 2}])
    );
}

// Relationships through views whose columns are plain references to a
// table's (QuerySpec / EmbedDisambiguationSpec on projects_view).
#[test]
fn embedding_through_views() {
    let expected = json!([{"id": 1, "name": "Windows 7", "clients": {"id": 1, "name": "Microsoft"}, "tasks": [{"id": 1, "name": "Design w7"}, {"id": 2, "name": "Code w7"}]}]);
    assert_eq!(get("/projects_view?id=eq.1&select=id,name,clients(*),tasks(id,name)&tasks.order=id"), (200, expected));
    assert_eq!(
        get("/projects_view_alt?t_id=eq.1&select=t_id,name,clients(*),tasks(id,name)&tasks.order=id").1,
        json!([{"t_id": 1, "name": "Windows 7", "clients": {"id": 1, "name": "Microsoft"}, "tasks": [{"id": 1, "name": "Design w7"}, {"id": 2, "name": "Code w7"}]}])
    );
    assert_eq!(
        get("/tasks?id=eq.1&select=id,name,projects_view(id,name)").1,
        json!([{"id": 1, "name": "Design w7", "projects_view": {"id": 1, "name": "Windows 7"}}])
    );
    assert_eq!(
        get("/clients_view?id=eq.2&select=name,projects(name)&projects.order=id").1,
        json!([{"name": "APPLE", "projects": [{"name": "IOS"}, {"name": "OSX"}]}]),
        "a view to a table"
    );
    assert_eq!(
        get("/projects_view?id=eq.3&select=name,clients_view(name)").1,
        json!([{"name": "IOS", "clients_view": {"name": "APPLE"}}]),
        "a view to a view"
    );
    // By the key's name: the table, not the views over it.
    assert_eq!(get("/projects?id=eq.3&select=name,client(name)").1, json!([{"name": "IOS", "client": {"name": "Apple"}}]));
}

/// An aggregated `select` answers one row however many a write changed:
/// `max-affected` and a single-object `Accept` count the rows changed.
#[test]
fn aggregated_write_representations_count_the_rows_changed() {
    let port = aggregating_proxy();
    let patch = |headers: &[(&str, &str)]| {
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (status, _, body) = http(port, "PATCH", "/aggregated_writes?select=count()", &headers, Some(r#"{"n": 1}"#));
        (status, serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body)))
    };
    let changed = || pg_clerk_e2e::admin_query_in(DB, "SELECT count(*)::int FROM aggregated_writes WHERE n = 1")[0].get::<_, i32>(0);
    let representation = ("Prefer", "return=representation");
    let (status, err) = patch(&[("Prefer", "return=representation, handling=strict, max-affected=1")]);
    assert_eq!((status, err["details"].as_str()), (400, Some("The query affects 3 rows")), "{err}");
    assert_eq!(changed(), 0, "rolled back");
    let (status, err) = patch(&[("Prefer", "return=representation"), ("Accept", "application/vnd.pgrst.object+json")]);
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST116")), "{err}");
    assert_eq!(changed(), 0, "rolled back");
    assert_eq!(patch(&[representation]), (200, json!([{"count": 3}])));
    assert_eq!(changed(), 3);
}
