//! PostgREST's answers, case by case from its spec (test/spec/Feature/Query:
//! RpcSpec, SingularSpec, UpsertSpec, InsertSpec, RangeSpec,
//! EmbedDisambiguationSpec; fixtures named as there), through the binary on
//! a fixture of this file's own: every function's result read as a
//! relation, arguments of every shape, computed columns, write statuses and
//! headers, the error messages clients match on, and `jwt-role-claim-key`
//! in PostgREST's JSPath.

use clerk_jwt::test_keys::{now, sign_hs256};
use pg_clerk_e2e::{admin_execute, admin_query_in, fresh_database, http, server_has, start_proxy, Running, REQUEST_SETTING_FUNCTION};
use serde_json::{json, Value};
use std::sync::OnceLock;

const DB: &str = "pg_clerk_answers";
const SECRET: &str = "a-local-development-secret-of-32-bytes!";

const FIXTURE: &str = "
CREATE TABLE public.clients (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.projects (id integer PRIMARY KEY, name text NOT NULL, client_id integer REFERENCES public.clients(id));
INSERT INTO public.clients VALUES (1, 'Microsoft'), (2, 'Apple');
INSERT INTO public.projects VALUES (1, 'Windows 7', 1), (2, 'Windows 10', 1), (3, 'IOS', 2), (4, 'OSX', 2), (5, 'Orphan', NULL);
CREATE FUNCTION public.getallprojects() RETURNS SETOF public.projects LANGUAGE sql STABLE AS $$ SELECT * FROM public.projects $$;
CREATE FUNCTION public.getproject(id integer) RETURNS SETOF public.projects LANGUAGE sql STABLE AS $$ SELECT * FROM public.projects p WHERE p.id = $1 $$;
-- A computed column of projects (PostgREST reads `projects.name_upper` as name_upper(projects)).
CREATE FUNCTION public.name_upper(public.projects) RETURNS text LANGUAGE sql STABLE AS $$ SELECT upper($1.name) $$;
CREATE TYPE public.point_2d AS (x integer, y integer);
CREATE FUNCTION public.ret_point_2d() RETURNS public.point_2d LANGUAGE sql IMMUTABLE AS $$ SELECT ROW(10, 5)::public.point_2d $$;
CREATE FUNCTION public.point_sum(p public.point_2d) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT p.x + p.y $$;
CREATE FUNCTION public.single_out_param(num integer, OUT num_plus_one integer) LANGUAGE sql IMMUTABLE AS $$ SELECT num + 1 $$;
CREATE FUNCTION public.many_out_params(OUT my_json json, OUT num integer, OUT str text) LANGUAGE sql IMMUTABLE AS $$ SELECT '{\"a\": 1}'::json, 3, 'four' $$;
CREATE FUNCTION public.single_column_table_return() RETURNS TABLE (a text) LANGUAGE sql IMMUTABLE AS $$ SELECT 'A' $$;
CREATE FUNCTION public.get_username_and_status(name_param text DEFAULT NULL) RETURNS TABLE (username text, status text) LANGUAGE sql STABLE AS
  $$ SELECT * FROM (VALUES ('supabot', 'ONLINE'), ('kiwicopple', 'OFFLINE'), ('awailas', 'ONLINE'), ('dragarcia', 'OFFLINE')) v(u, s)
     WHERE name_param IS NULL OR u = name_param $$;
CREATE FUNCTION public.add_them(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE FUNCTION public.sayhello(name text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'Hello, ' || name $$;
CREATE FUNCTION public.ret_null() RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT NULL::integer $$;
CREATE FUNCTION public.ret_setof_integers() RETURNS SETOF integer LANGUAGE sql IMMUTABLE AS $$ VALUES (1), (2), (3) $$;
CREATE TABLE public.void_calls (n integer);
CREATE FUNCTION public.ret_void() RETURNS void LANGUAGE sql AS $$ INSERT INTO public.void_calls VALUES (1) $$;
CREATE FUNCTION public.variadic_param(VARIADIC v text[] DEFAULT '{}') RETURNS text[] LANGUAGE sql IMMUTABLE AS $$ SELECT v $$;
CREATE FUNCTION public.unnamed_text_param(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
CREATE FUNCTION public.unnamed_xml_param(xml) RETURNS xml LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
CREATE FUNCTION public.unnamed_bytea_param(bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
CREATE FUNCTION public.callcounter() RETURNS bigint LANGUAGE sql VOLATILE AS $$ INSERT INTO public.void_calls VALUES (2) RETURNING 1::bigint $$;
-- Access modes (PostgREST's docs/references/transactions.rst): a POST of a
-- STABLE or IMMUTABLE function runs READ ONLY, even when it calls a writer.
CREATE FUNCTION public.stable_callcounter() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT public.callcounter() $$;
CREATE FUNCTION public.access_mode_stable() RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_setting('transaction_read_only') $$;
CREATE FUNCTION public.access_mode_volatile() RETURNS text LANGUAGE sql VOLATILE AS $$ SELECT current_setting('transaction_read_only') $$;
-- Two foreign keys between agents and departments (EmbedDisambiguationSpec).
CREATE TABLE public.departments (id integer PRIMARY KEY, name text, head_id integer);
CREATE TABLE public.agents (id integer PRIMARY KEY, name text, department_id integer REFERENCES public.departments(id));
ALTER TABLE public.departments ADD CONSTRAINT departments_head_id_fkey FOREIGN KEY (head_id) REFERENCES public.agents(id);
-- Upserts (UpsertSpec) and CSV inserts (InsertSpec).
CREATE TABLE public.tiobe_pls (name text PRIMARY KEY, rank integer);
INSERT INTO public.tiobe_pls VALUES ('Java', 1), ('C', 2);
CREATE TABLE public.no_pk (a text, b text);
CREATE TABLE public.car_models (name text, year integer, PRIMARY KEY (name, year));
CREATE TABLE public.tagged (id integer PRIMARY KEY, tags text[]);
INSERT INTO public.tagged VALUES (1, '{1,2}');
CREATE FUNCTION public.shout(public.tiobe_pls) RETURNS text LANGUAGE sql STABLE AS $$ SELECT upper($1.name) $$;
-- A function that writes: its side effects happen once, and not at all
-- when the answer is an error.
CREATE TABLE public.call_log (id serial PRIMARY KEY, note text);
CREATE FUNCTION public.log_calls(note text, times integer DEFAULT 1) RETURNS SETOF public.call_log LANGUAGE sql AS
  $$ INSERT INTO public.call_log (note) SELECT note FROM generate_series(1, times) RETURNING * $$;
-- Answers set by functions (RpcSpec: response.headers / response.status, RAISE 'PGRST').
CREATE FUNCTION public.get_projects_and_guc_headers() RETURNS SETOF public.projects LANGUAGE plpgsql STABLE AS $$ BEGIN
  PERFORM set_config('response.headers', '[{\"X-Test\": \"key1=val1; someValue; key2=val2\"}, {\"X-Test-2\": \"key1=val1\"}]', true);
  RETURN QUERY SELECT * FROM public.projects; END $$;
CREATE FUNCTION public.send_body_status_403() RETURNS json LANGUAGE plpgsql STABLE AS $$ BEGIN
  PERFORM set_config('response.status', '403', true); RETURN json_build_object('message', 'invalid user or password'); END $$;
CREATE FUNCTION public.send_bad_status() RETURNS json LANGUAGE plpgsql STABLE AS $$ BEGIN
  PERFORM set_config('response.status', 'bad', true); RETURN NULL; END $$;
CREATE FUNCTION public.bad_guc_headers_1() RETURNS void LANGUAGE plpgsql STABLE AS $$ BEGIN
  PERFORM set_config('response.headers', '{\"X-Test\": \"invalid structure for headers\"}', true); END $$;
CREATE FUNCTION public.set_cookie_twice() RETURNS void LANGUAGE plpgsql STABLE AS $$ BEGIN
  PERFORM set_config('response.headers', '[{\"Set-Cookie\": \"sessionid=38afes7a8; HttpOnly; Path=/\"}, {\"Set-Cookie\": \"id=a3fWa; Secure; HttpOnly\"}]', true); END $$;
CREATE FUNCTION public.raise_pgrst() RETURNS void LANGUAGE plpgsql AS $$ BEGIN
  RAISE SQLSTATE 'PGRST' USING message = '{\"code\":\"123\",\"message\":\"ABC\",\"details\":\"DEF\",\"hint\":\"XYZ\"}',
    detail = '{\"status\":332,\"status_text\":\"My Custom Status\",\"headers\":{\"X-Header\":\"str\"}}'; END $$;
CREATE FUNCTION public.raise_bad_pgrst() RETURNS void LANGUAGE plpgsql AS $$ BEGIN
  RAISE SQLSTATE 'PGRST' USING message = '{\"code\":\"123\",\"message\":\"ABC\"}', detail = 'INVALID'; END $$;
CREATE FUNCTION public.raise_pt402() RETURNS void LANGUAGE plpgsql AS $$ BEGIN
  RAISE SQLSTATE 'PT402' USING message = 'Payment Required', detail = 'Quota exceeded', hint = 'Upgrade your plan'; END $$;
CREATE FUNCTION public.framing_headers() RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN
  PERFORM set_config('response.headers', '[{\"Content-Length\": \"500\"}, {\"Transfer-Encoding\": \"chunked\"}, {\"X-Ok\": \"1\"}]', true); RETURN 'x'; END $$;
CREATE FUNCTION public.informational_status() RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN
  PERFORM set_config('response.status', '101', true); RETURN 'x'; END $$;
-- Media type handlers (CustomMediaSpec): domains named after a media type.
CREATE DOMAIN public.\"text/plain\" AS text;
CREATE DOMAIN public.\"image/png\" AS bytea;
CREATE FUNCTION public.welcome() RETURNS public.\"text/plain\" LANGUAGE sql IMMUTABLE AS $$ SELECT 'Welcome to PostgREST' $$;
CREATE FUNCTION public.welcome_twice() RETURNS SETOF public.\"text/plain\" LANGUAGE sql IMMUTABLE AS $$ VALUES ('Welcome'), ('Welcome') $$;
CREATE FUNCTION public.ret_image() RETURNS public.\"image/png\" LANGUAGE sql IMMUTABLE AS $$ SELECT '\\x89504e47'::bytea $$;
CREATE DOMAIN public.\"text/tab-separated-values\" AS text;
CREATE FUNCTION public.projects_tsv_step(acc text, p public.projects) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT coalesce(acc, '') || p.id || E'\\t' || p.name || E'\\n' $$;
CREATE FUNCTION public.projects_tsv_final(acc text) RETURNS public.\"text/tab-separated-values\" LANGUAGE sql IMMUTABLE AS $$ SELECT acc $$;
CREATE AGGREGATE public.projects_tsv(public.projects) (sfunc = public.projects_tsv_step, stype = text, finalfunc = public.projects_tsv_final);
CREATE DOMAIN public.\"application/x-names\" AS text;
CREATE FUNCTION public.names_step(acc text, r anyelement) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN acc IS NULL THEN '' ELSE acc || ', ' END || (to_jsonb(r)->>'name') $$;
CREATE FUNCTION public.names_final(acc text) RETURNS public.\"application/x-names\" LANGUAGE sql IMMUTABLE AS $$ SELECT acc $$;
CREATE AGGREGATE public.names_of(anyelement) (sfunc = public.names_step, stype = text, finalfunc = public.names_final);
-- db-pre-request: refuses a request that says x-block: yes, and sets a header.
CREATE FUNCTION public.pre_check() RETURNS void LANGUAGE plpgsql STABLE AS $$ BEGIN
  IF current_setting('request.headers', true)::json->>'x-block' = 'yes' THEN
    RAISE SQLSTATE 'PT403' USING message = 'blocked by db-pre-request';
  END IF;
  PERFORM set_config('response.headers', '[{\"Cache-Control\": \"no-store\"}]', true); END $$;
-- Limited update and delete (LimitedMutationSpec): a table, views over it
-- (ordered by a unique column, by a composite key, by a column that is not
-- unique) and a table without a key (ordered by ctid).
CREATE TABLE public.limited_items (id integer PRIMARY KEY, name text);
CREATE VIEW public.limited_items_view AS SELECT id, name FROM public.limited_items;
CREATE VIEW public.limited_items_wnonuniq_view AS SELECT id, name, 'static'::text AS static FROM public.limited_items;
CREATE TABLE public.limited_items_no_pk (id integer, name text);
-- Numbers as PostgreSQL has them: every digit, and the column's scale.
CREATE TABLE public.exact_numbers (id integer PRIMARY KEY, n numeric, price numeric(10,2));
CREATE FUNCTION public.echo_numeric(x numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT x $$;
-- Filter values compared as written, not cut to the column's size first.
CREATE TABLE public.sized_values (id integer PRIMARY KEY, price numeric(10,2), code varchar(3), letters char(3), bits bit(3));
INSERT INTO public.sized_values VALUES (1, 6.50, 'abc', 'abc', B'101');
CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN public.smallpos AS public.posint CHECK (VALUE < 1000);
CREATE TABLE public.domain_values (id integer PRIMARY KEY, sp public.smallpos);
INSERT INTO public.domain_values VALUES (1, 5);
CREATE TABLE public.wide_items (a integer, b integer, c integer, d integer, e integer, f integer, g integer);
CREATE TABLE public.private_items (id integer PRIMARY KEY, name text);
-- How requests are read (UpdateSpec, InsertSpec, RpcSpec, Preferences).
CREATE TABLE public.read_items (name text PRIMARY KEY, rank integer DEFAULT 42);
GRANT USAGE ON SCHEMA public TO anon;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO anon;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO anon;
REVOKE ALL ON public.private_items FROM anon;
";

fn proxy() -> u16 {
    static P: OnceLock<(Running, u16)> = OnceLock::new();
    P.get_or_init(|| {
        let dsn = fresh_database(DB, &format!("{FIXTURE}\n{REQUEST_SETTING_FUNCTION}"));
        start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\njwt-secret = \"{SECRET}\"\n"))
    })
    .1
}

fn raw(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String, String) {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    http(proxy(), method, path, &headers, body)
}

fn call(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, Value) {
    let (status, _, text) = raw(method, path, headers, body);
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
}

const OBJECT: (&str, &str) = ("Accept", "application/vnd.pgrst.object+json");

// RpcSpec: every function's result is a relation.
#[test]
fn functions_returning_rows_take_select_filters_order_and_ranges() {
    let (status, rows) = call("GET", "/rpc/getallprojects?id=gt.1&id=lt.5&select=id&order=id", &[], None);
    assert_eq!((status, rows), (200, json!([{"id": 2}, {"id": 3}, {"id": 4}])));
    // The issue's silent wrong answer: filters on a RETURNS TABLE function were ignored.
    let (status, rows) = call("POST", "/rpc/get_username_and_status?status=neq.ONLINE&order=username", &[], Some("{}"));
    assert_eq!(
        (status, rows),
        (200, json!([{"username": "dragarcia", "status": "OFFLINE"}, {"username": "kiwicopple", "status": "OFFLINE"}]))
    );
    let (status, rows) =
        call("GET", "/rpc/get_username_and_status?select=username&status=eq.ONLINE&order=username.desc&limit=1", &[], None);
    assert_eq!((status, rows), (200, json!([{"username": "supabot"}])));
    let (status, row) = call("GET", "/rpc/get_username_and_status?name_param=awailas", &[OBJECT], None);
    assert_eq!((status, row), (200, json!({"username": "awailas", "status": "ONLINE"})));
    // Embedding works on a function's rows of a table.
    let (status, rows) = call("GET", "/rpc/getallprojects?select=name,clients(name)&id=eq.3", &[], None);
    assert_eq!((status, rows), (200, json!([{"name": "IOS", "clients": {"name": "Apple"}}])));
    let (status, head, body) = raw("HEAD", "/rpc/getallprojects", &[("Prefer", "count=exact")], None);
    assert_eq!((status, header(&head, "content-range").as_deref(), body.as_str()), (200, Some("0-4/5"), ""));
    let (status, head, _) = raw("GET", "/rpc/getallprojects?order=id&limit=1&offset=1", &[("Prefer", "count=exact")], None);
    assert_eq!((status, header(&head, "content-range").as_deref()), (206, Some("1-1/5")));
    let (status, head, _) = raw("GET", "/rpc/getallprojects?order=id&limit=1&offset=1", &[], None);
    assert_eq!((status, header(&head, "content-range").as_deref()), (200, Some("1-1/*")));
    let (status, rows) = call("GET", "/rpc/single_column_table_return", &[], None);
    assert_eq!((status, rows), (200, json!([{"a": "A"}])));
}

#[test]
fn functions_returning_one_row_answer_an_object() {
    assert_eq!(call("GET", "/rpc/ret_point_2d", &[], None), (200, json!({"x": 10, "y": 5})));
    assert_eq!(call("GET", "/rpc/ret_point_2d?select=y", &[], None), (200, json!({"y": 5})));
    assert_eq!(call("GET", "/rpc/ret_point_2d?x=eq.0", &[], None), (200, Value::Null), "filtered out: null");
    assert_eq!(call("GET", "/rpc/single_out_param?num=5", &[], None), (200, json!({"num_plus_one": 6})));
    assert_eq!(call("GET", "/rpc/many_out_params", &[], None), (200, json!({"my_json": {"a": 1}, "num": 3, "str": "four"})));
    let (status, head, _) = raw("GET", "/rpc/ret_point_2d", &[("Prefer", "count=exact")], None);
    assert_eq!((status, header(&head, "content-range").as_deref()), (200, Some("0-0/1")));
}

#[test]
fn scalar_functions_answer_values_and_void_answers_204() {
    assert_eq!(call("GET", "/rpc/add_them?a=1&b=2", &[], None), (200, json!(3)));
    assert_eq!(call("POST", "/rpc/sayhello", &[], Some(r#"{"name": "world"}"#)), (200, json!("Hello, world")));
    assert_eq!(call("GET", "/rpc/ret_null", &[], None), (200, Value::Null));
    assert_eq!(call("GET", "/rpc/ret_setof_integers", &[], None), (200, json!([1, 2, 3])));
    // A set of scalars is the column pgrst_scalar.
    assert_eq!(call("GET", "/rpc/ret_setof_integers?pgrst_scalar=gt.1&order=pgrst_scalar.desc", &[], None), (200, json!([3, 2])));
    let (status, err) = call("GET", "/rpc/ret_setof_integers?nope=eq.1", &[], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("42703")), "{err}");
    // SingularSpec: one value passes a single-object Accept; a set must have one row.
    assert_eq!(call("GET", "/rpc/sayhello?name=x", &[OBJECT], None), (200, json!("Hello, x")));
    let (status, err) = call("GET", "/rpc/getallprojects", &[OBJECT], None);
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST116")), "{err}");
    let (status, err) = call("GET", "/rpc/getproject?id=99", &[OBJECT], None);
    assert_eq!((status, err["details"].as_str()), (406, Some("Results contain 0 rows, application/vnd.pgrst.object+json requires 1 row")));
    assert_eq!(call("GET", "/rpc/getproject?id=1&select=name", &[OBJECT], None), (200, json!({"name": "Windows 7"})));
    let (status, head, body) = raw("POST", "/rpc/ret_void", &[], Some("{}"));
    assert_eq!((status, body.as_str(), header(&head, "content-type")), (204, "", None));
    assert_eq!(admin_query_in(DB, "SELECT count(*)::int FROM void_calls WHERE n = 1")[0].get::<_, i32>(0), 1, "the void function ran");
    // A volatile function through GET runs read-only: 405, nothing written.
    let (status, err) = call("GET", "/rpc/callcounter", &[], None);
    assert_eq!((status, err["code"].as_str()), (405, Some("25006")), "{err}");
    assert_eq!(call("POST", "/rpc/callcounter", &[], None), (200, json!(1)));
    // A POST runs READ WRITE only for a VOLATILE function.
    assert_eq!(call("POST", "/rpc/access_mode_volatile", &[], None), (200, json!("off")));
    assert_eq!(call("POST", "/rpc/access_mode_stable", &[], None), (200, json!("on")));
    assert_eq!(call("GET", "/rpc/access_mode_volatile", &[], None), (200, json!("on")));
    let written = || admin_query_in(DB, "SELECT count(*)::int FROM void_calls WHERE n = 2")[0].get::<_, i32>(0);
    let before = written();
    let (status, err) = call("POST", "/rpc/stable_callcounter", &[], None);
    assert_eq!((status, err["code"].as_str()), (405, Some("25006")), "{err}");
    assert_eq!(err["message"], "cannot execute INSERT in a read-only transaction");
    assert_eq!(written(), before, "a STABLE function wrote through POST");
}

#[test]
fn arguments_of_every_shape() {
    // Variadic: a JSON array, or repeated keys of a GET.
    assert_eq!(
        call("POST", "/rpc/variadic_param", &[], Some(r#"{"v": ["hi", "hello", "there"]}"#)),
        (200, json!(["hi", "hello", "there"]))
    );
    assert_eq!(call("GET", "/rpc/variadic_param?v=hi&v=there", &[], None), (200, json!(["hi", "there"])));
    assert_eq!(call("GET", "/rpc/variadic_param?v=hi", &[], None), (200, json!(["hi"])));
    assert_eq!(call("GET", "/rpc/variadic_param", &[], None), (200, json!([])));
    // Other parameters: the last of a repeated key.
    assert_eq!(call("GET", "/rpc/sayhello?name=ignored&name=world", &[], None), (200, json!("Hello, world")));
    // A composite parameter from a JSON object.
    assert_eq!(call("POST", "/rpc/point_sum", &[], Some(r#"{"p": {"x": 2, "y": 40}}"#)), (200, json!(42)));
    // An array body: its first object.
    assert_eq!(call("POST", "/rpc/add_them", &[], Some(r#"[{"a": 1, "b": 2}, {"a": 4, "b": 8}]"#)), (200, json!(3)));
    // Raw bodies to one unnamed text, xml or bytea parameter.
    assert_eq!(
        call("POST", "/rpc/unnamed_text_param", &[("Content-Type", "text/plain")], Some("unnamed text arg")),
        (200, json!("unnamed text arg"))
    );
    if server_has("libxml") {
        assert_eq!(
            call("POST", "/rpc/unnamed_xml_param", &[("Content-Type", "text/xml")], Some("<a>text</a>")),
            (200, json!("<a>text</a>"))
        );
        let (status, err) = call("POST", "/rpc/unnamed_xml_param", &[("Content-Type", "text/xml")], Some("<"));
        assert_eq!((status, err["code"].as_str()), (400, Some("2200N")), "{err}");
    }
    let (status, bytes) = call("POST", "/rpc/unnamed_bytea_param", &[("Content-Type", "application/octet-stream")], Some("a\\b\"c"));
    assert_eq!((status, bytes), (200, json!("\\x615c622263")), "the bytes as they came, backslash included");
    let (status, err) = call("POST", "/rpc/add_them", &[("Content-Type", "text/plain")], Some("1"));
    assert_eq!((status, err["code"].as_str()), (404, Some("PGRST202")), "{err}");
}

// Computed columns: named in select, filters and order; not part of `*`.
#[test]
fn computed_columns() {
    let (status, rows) = call("GET", "/projects?select=id,name_upper&name_upper=like.WIN*&order=name_upper.desc", &[], None);
    assert_eq!((status, rows), (200, json!([{"id": 1, "name_upper": "WINDOWS 7"}, {"id": 2, "name_upper": "WINDOWS 10"}])));
    let (status, rows) = call("GET", "/projects?id=eq.3", &[], None);
    assert_eq!((status, rows), (200, json!([{"id": 3, "name": "IOS", "client_id": 2}])));
    let (status, rows) = call("GET", "/rpc/getallprojects?select=shout:name_upper&id=eq.4", &[], None);
    assert_eq!((status, rows), (200, json!([{"shout": "OSX"}])));
    let (status, rows) =
        call("PATCH", "/projects?id=eq.4&select=name_upper", &[("Prefer", "return=representation")], Some(r#"{"name": "macOS"}"#));
    assert_eq!((status, rows), (200, json!([{"name_upper": "MACOS"}])));
    // A computed column is never written.
    let (status, err) = call("POST", "/projects", &[], Some(r#"{"id": 9, "name": "x", "name_upper": "X"}"#));
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST204")), "{err}");
}

// The messages postgrest-js users match on.
#[test]
fn error_messages_as_postgrest_words_them() {
    let (status, err) = call("GET", "/projcts", &[], None);
    assert_eq!(
        (status, err),
        (
            404,
            json!({"code": "PGRST205", "details": null, "hint": "Perhaps you meant the table 'public.projects'", "message": "Could not find the table 'public.projcts' in the schema cache"})
        )
    );
    let (status, err) = call("GET", "/projects?select=nme", &[], None);
    assert_eq!(
        (status, err),
        (
            400,
            json!({"code": "42703", "details": null, "hint": "Perhaps you meant to reference the column \"projects.name\".", "message": "column projects.nme does not exist"})
        )
    );
    let (status, err) = call("GET", "/projects?select=*,client(*)", &[], None);
    assert_eq!(
        (status, err),
        (
            400,
            json!({"code": "PGRST200", "hint": "Perhaps you meant 'clients' instead of 'client'.",
                   "message": "Could not find a relationship between 'projects' and 'client' in the schema cache",
                   "details": "Searched for a foreign key relationship between 'projects' and 'client' in the schema 'public', but no matches were found."})
        )
    );
    let (status, err) = call("GET", "/projects?select=*,clients!nope(*)", &[], None);
    assert_eq!(err["details"], json!("Searched for a foreign key relationship between 'projects' and 'clients' using the hint 'nope' in the schema 'public', but no matches were found."), "{status}");
    // EmbedDisambiguationSpec: details are the candidate relationships.
    let (status, err) = call("GET", "/agents?select=*,departments(*)", &[], None);
    assert_eq!(
        (status, err),
        (
            300,
            json!({
                "code": "PGRST201",
                "details": [
                    {"cardinality": "many-to-one", "embedding": "agents with departments", "relationship": "agents_department_id_fkey using agents(department_id) and departments(id)"},
                    {"cardinality": "one-to-many", "embedding": "agents with departments", "relationship": "departments_head_id_fkey using agents(id) and departments(head_id)"}
                ],
                "hint": "Try changing 'departments' to one of the following: 'departments!agents_department_id_fkey', 'departments!departments_head_id_fkey'. Find the desired relationship in the 'details' key.",
                "message": "Could not embed because more than one relationship was found for 'agents' and 'departments'"
            })
        )
    );
    // RpcSpec's PGRST202 wording.
    let (status, err) = call("GET", "/rpc/sayhell", &[], None);
    assert_eq!(
        (status, err),
        (
            404,
            json!({"code": "PGRST202", "hint": "Perhaps you meant to call the function public.sayhello",
                   "message": "Could not find the function public.sayhell without parameters in the schema cache",
                   "details": "Searched for the function public.sayhell without parameters, but no matches were found in the schema cache."})
        )
    );
    let (status, err) = call("GET", "/rpc/add_them?a=1&b=2&smthelse=blabla", &[], None);
    assert_eq!(
        (status, err),
        (
            404,
            json!({"code": "PGRST202", "hint": "Perhaps you meant to call the function public.add_them(a, b)",
                   "message": "Could not find the function public.add_them(a, b, smthelse) in the schema cache",
                   "details": "Searched for the function public.add_them with parameters a, b, smthelse, but no matches were found in the schema cache."})
        )
    );
}

// UpsertSpec / InsertSpec: statuses, Preference-Applied and Location.
#[test]
fn write_statuses_and_headers() {
    let merge = ("Prefer", "return=representation, resolution=merge-duplicates");
    let (status, head, body) = raw("POST", "/tiobe_pls", &[merge], Some(r#"[{"name": "Python", "rank": 3}, {"name": "Java", "rank": 4}]"#));
    let rows: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, rows), (201, json!([{"name": "Python", "rank": 3}, {"name": "Java", "rank": 4}])), "one row inserted");
    assert_eq!(header(&head, "preference-applied").as_deref(), Some("resolution=merge-duplicates, return=representation"));
    assert_eq!(header(&head, "content-range").as_deref(), Some("*/*"));
    let (status, body) = call("POST", "/tiobe_pls", &[merge], Some(r#"[{"name": "C", "rank": 5}]"#));
    assert_eq!((status, body), (200, json!([{"name": "C", "rank": 5}])), "nothing inserted: 200");
    let (status, body) = call(
        "POST",
        "/tiobe_pls",
        &[("Prefer", "return=representation, resolution=ignore-duplicates")],
        Some(r#"[{"name": "C", "rank": 9}]"#),
    );
    assert_eq!((status, body), (201, json!([])), "ignore-duplicates stays 201");
    // A table without a key: the resolution is not applied (nor echoed).
    let (status, head, _) =
        raw("POST", "/no_pk", &[("Prefer", "return=representation, resolution=merge-duplicates")], Some(r#"{"a": "1", "b": "0"}"#));
    assert_eq!((status, header(&head, "preference-applied").as_deref()), (201, Some("return=representation")));
    raw("POST", "/no_pk", &[], Some(r#"{"a": "2", "b": "0"}"#));
    // PATCH: 204 and the rows' range.
    let (status, head, body) = raw("PATCH", "/no_pk?b=eq.0", &[], Some(r#"{"b": "1"}"#));
    assert_eq!(
        (status, header(&head, "content-range").as_deref(), body.as_str(), header(&head, "content-type")),
        (204, Some("0-1/*"), "", None)
    );
    // PUT: 201 inserted, 200 replaced (with the row), 204 without.
    let representation = ("Prefer", "return=representation");
    assert_eq!(
        call("PUT", "/tiobe_pls?name=eq.Go", &[representation], Some(r#"{"name": "Go", "rank": 8}"#)),
        (201, json!([{"name": "Go", "rank": 8}]))
    );
    assert_eq!(
        call("PUT", "/tiobe_pls?name=eq.Go", &[representation], Some(r#"{"name": "Go", "rank": 7}"#)),
        (200, json!([{"name": "Go", "rank": 7}]))
    );
    assert_eq!(call("PUT", "/tiobe_pls?name=eq.Go", &[], Some(r#"{"name": "Go", "rank": 6}"#)).0, 204);
    // return=headers-only: the new row's Location, its key escaped.
    let (status, head, body) =
        raw("POST", "/car_models", &[("Prefer", "return=headers-only")], Some(r#"{"name": "Enzo & co", "year": 2021}"#));
    assert_eq!((status, body.as_str()), (201, ""));
    assert_eq!(header(&head, "location").as_deref(), Some("/car_models?name=eq.Enzo%20%26%20co&year=eq.2021"));
    assert_eq!(header(&head, "preference-applied").as_deref(), Some("return=headers-only"));
    // CSV bodies: NULL is null, an empty field the empty string.
    let (status, rows) =
        call("POST", "/no_pk?select=a,b", &[("Content-Type", "text/csv"), representation], Some("a,b\nNULL,foo\n\"x,y\",\n"));
    assert_eq!((status, rows), (201, json!([{"a": null, "b": "foo"}, {"a": "x,y", "b": ""}])));
    let (status, err) = call("POST", "/no_pk", &[("Content-Type", "text/csv")], Some("a,b\n1\n"));
    assert_eq!((status, err["message"].as_str()), (400, Some("All lines must have same number of fields")));
}

// RangeSpec: what no range can satisfy is 416.
#[test]
fn unsatisfiable_ranges_are_416() {
    let (status, head, body) = raw("GET", "/projects?offset=100", &[("Prefer", "count=exact")], None);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, err, header(&head, "content-range")),
        (
            416,
            json!({"code": "PGRST103", "details": "An offset of 100 was requested, but there are only 5 rows.", "hint": null, "message": "Requested range not satisfiable"}),
            Some("*/5".into())
        )
    );
    let (status, head, _) = raw("GET", "/projects?offset=5", &[("Prefer", "count=exact")], None);
    assert_eq!((status, header(&head, "content-range").as_deref()), (206, Some("*/5")), "an offset at the end is 206");
    let (status, err) = call("GET", "/projects", &[("Range", "1-0")], None);
    assert_eq!(
        (status, err["details"].as_str()),
        (416, Some("The lower boundary must be lower than or equal to the upper boundary in the Range header."))
    );
    let (status, err) = call("GET", "/projects?limit=-1", &[], None);
    assert_eq!((status, err["details"].as_str()), (416, Some("Limit should be greater than or equal to zero.")));
    // Without a count nothing is known to be past the end.
    assert_eq!(call("GET", "/projects?offset=100", &[], None), (200, json!([])));
}

// jwt-role-claim-key in PostgREST's JSPath, filters included; the role
// found must still be one of db-allowed-roles.
#[test]
fn role_claim_key_in_postgrest_jspath() {
    proxy();
    admin_execute("postgres", "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'db_reader') THEN CREATE ROLE db_reader NOLOGIN; END IF; END $$; GRANT db_reader TO authenticator; GRANT anon TO db_reader");
    let dsn = pg_clerk_e2e::with_dbname(&pg_clerk_e2e::api_dsn(), DB);
    let (_running, port) = start_proxy(&format!(
        "db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\njwt-secret = \"{SECRET}\"\ndb-allowed-roles = \"authenticated,db_reader\"\njwt-role-claim-key = \".app.roles[?(@ ^== \\\"db_\\\")]\"\n"
    ));
    let t = now();
    let role_of = |roles: Value| {
        let token = sign_hs256(
            &json!({"sub": "user_2jspath", "sid": "sess_j", "iat": t, "exp": t + 60, "app": {"roles": roles}}),
            SECRET.as_bytes(),
        );
        let headers = vec![("Authorization".to_owned(), format!("Bearer {token}"))];
        let (status, _, body) = http(port, "GET", "/rpc/request_setting?name=role", &headers, None);
        (status, body)
    };
    assert_eq!(role_of(json!(["viewer", "db_reader"])), (200, "\"db_reader\"".to_owned()));
    // A matching role outside db-allowed-roles, and no match at all, are refused.
    assert_eq!(role_of(json!(["db_owner"])).0, 401);
    assert_eq!(role_of(json!(["viewer"])).0, 401);
    assert_eq!(role_of(json!("db_reader")).0, 401, "not an array");
}

// `select` lists exactly what comes back: only embeds, `rel()` for
// filtering only, `*` next to other items.
#[test]
fn select_answers_exactly_what_it_names() {
    let (status, rows) = call("GET", "/projects?select=client:clients(name)&id=eq.1", &[], None);
    assert_eq!((status, rows), (200, json!([{"client": {"name": "Microsoft"}}])), "only the embed");
    let (status, rows) = call("GET", "/projects?select=*,clients()&id=eq.1", &[], None);
    assert_eq!((status, rows), (200, json!([{"id": 1, "name": "Windows 7", "client_id": 1}])), "an empty embed is not answered");
    let (status, rows) = call("GET", "/clients?select=name,projects!inner()&projects.name=eq.IOS", &[], None);
    assert_eq!((status, rows), (200, json!([{"name": "Apple"}])), "it still filters");
    let (status, rows) = call("GET", "/projects?select=*,up:name_upper&id=eq.3", &[], None);
    assert_eq!((status, rows), (200, json!([{"id": 3, "name": "IOS", "client_id": 2, "up": "IOS"}])));
    let (status, head, body) = raw("GET", "/projects?select=projects:clients(id)&id=eq.2", &[], None);
    assert_eq!((status, body.matches("\"projects\"").count()), (200, 1), "{head}{body}");
    let (status, body) =
        call("POST", "/clients?select=projects(id)", &[("Prefer", "return=representation")], Some(r#"{"id": 3, "name": "Nokia"}"#));
    assert_eq!((status, body), (201, json!([{"projects": []}])), "a write's representation too");
}

// A call that writes runs once, counted or not, and an answer that is an
// error (406 single object, 416 range) keeps none of its writes.
#[test]
fn a_writing_call_runs_once_and_errors_keep_nothing() {
    proxy();
    let logged = |note: &str| admin_query_in(DB, &format!("SELECT count(*)::int FROM call_log WHERE note = '{note}'"))[0].get::<_, i32>(0);
    let (status, head, _) = raw("POST", "/rpc/log_calls", &[("Prefer", "count=exact")], Some(r#"{"note": "counted"}"#));
    assert_eq!((status, header(&head, "content-range").as_deref(), logged("counted")), (200, Some("0-0/1"), 1));
    let (status, err) = call("POST", "/rpc/log_calls", &[OBJECT], Some(r#"{"note": "two", "times": 2}"#));
    assert_eq!((status, err["code"].as_str(), logged("two")), (406, Some("PGRST116"), 0), "{err}");
    let (status, row) = call("POST", "/rpc/log_calls?select=note", &[OBJECT], Some(r#"{"note": "one"}"#));
    assert_eq!((status, row, logged("one")), (200, json!({"note": "one"}), 1));
    let (status, err) = call("POST", "/rpc/log_calls?offset=5", &[("Prefer", "count=exact")], Some(r#"{"note": "past", "times": 2}"#));
    assert_eq!((status, err["code"].as_str(), logged("past")), (416, Some("PGRST103"), 0), "{err}");
    // Computed columns of an upsert's rows (merge: the rows carry the inserted flag).
    let (status, rows) = call(
        "POST",
        "/tiobe_pls?select=name,shout",
        &[("Prefer", "return=representation, resolution=merge-duplicates")],
        Some(r#"{"name": "Rust", "rank": 9}"#),
    );
    assert_eq!((status, rows), (201, json!([{"name": "Rust", "shout": "RUST"}])));
    let (status, rows) = call(
        "POST",
        "/tiobe_pls?select=*,shout",
        &[("Prefer", "return=representation, resolution=merge-duplicates")],
        Some(r#"{"name": "Rust", "rank": 10}"#),
    );
    assert_eq!((status, rows), (200, json!([{"name": "Rust", "rank": 10, "shout": "RUST"}])));
}

// Casts in select, arrays included (`::int[]`).
#[test]
fn casts_to_arrays() {
    let (status, rows) = call("GET", "/tagged?select=id::text,numbers:tags::int[]", &[], None);
    assert_eq!((status, rows), (200, json!([{"id": "1", "numbers": [1, 2]}])));
    let (status, err) = call("GET", "/tagged?select=tags::nope[]", &[], None);
    assert_eq!((status, err["message"].as_str()), (400, Some("type \"nope[]\" does not exist")));
    let (status, err) = call("GET", "/tagged?select=tags::regrole[]", &[], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST100")), "{err}");
}

// Filters on whether an embed has a row, and ordering by a to-one embed's
// column (PostgREST's null filtering on embedded resources, related orders).
#[test]
fn embed_null_filters_and_related_order() {
    let names = |rows: &Value| rows.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let (status, rows) = call("GET", "/projects?select=name,clients(name)&clients=not.is.null&id=lt.4&order=id", &[], None);
    assert_eq!((status, names(&rows)), (200, vec!["Windows 7".to_owned(), "Windows 10".into(), "IOS".into()]), "{rows}");
    let (status, rows) = call("GET", "/projects?select=name,clients()&clients=is.null", &[], None);
    assert_eq!((status, rows), (200, json!([{"name": "Orphan"}])));
    let (status, rows) = call("GET", "/projects?select=name,clients(name)&or=(clients.is.null,name.eq.IOS)&order=id", &[], None);
    assert_eq!((status, names(&rows)), (200, vec!["IOS".to_owned(), "Orphan".into()]), "{rows}");
    let (status, rows) = call("GET", "/projects?select=name,clients(name)&id=lt.4&order=clients(name).desc,name", &[], None);
    assert_eq!((status, names(&rows)), (200, vec!["Windows 10".to_owned(), "Windows 7".into(), "IOS".into()]), "{rows}");
    let (status, err) = call("GET", "/clients?select=name,projects(name)&order=projects(name)", &[], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST118")), "{err}");
    let (status, err) = call("GET", "/projects?select=name&order=clients(name)", &[], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST108")), "{err}");
    let (status, err) = call("GET", "/projects?select=name,clients(name)&clients=eq.1", &[], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("42703")), "{err}");
}

// RpcSpec: functions set the answer's headers and status; RAISE 'PGRST'
// chooses the whole answer; db-pre-request runs first and may refuse.
#[test]
fn functions_set_headers_and_status() {
    let (status, head, body) = raw("GET", "/rpc/get_projects_and_guc_headers?id=eq.2&select=id", &[], None);
    assert_eq!((status, body.as_str()), (200, r#"[{"id":2}]"#));
    assert_eq!(header(&head, "x-test").as_deref(), Some("key1=val1; someValue; key2=val2"));
    assert_eq!(header(&head, "x-test-2").as_deref(), Some("key1=val1"));
    assert_eq!(call("GET", "/rpc/send_body_status_403", &[], None), (403, json!({"message": "invalid user or password"})));
    assert_eq!(
        call("GET", "/rpc/send_bad_status", &[], None),
        (500, json!({"code": "PGRST112", "details": null, "hint": null, "message": "response.status guc must be a valid status code"}))
    );
    let (status, err) = call("GET", "/rpc/bad_guc_headers_1", &[], None);
    assert_eq!(
        (status, err),
        (
            500,
            json!({"code": "PGRST111", "details": null, "hint": null, "message": "response.headers guc must be a JSON array composed of objects with a single key and a string value"})
        )
    );
    let (status, head, _) = raw("GET", "/rpc/set_cookie_twice", &[], None);
    assert_eq!((status, head.to_ascii_lowercase().matches("set-cookie:").count()), (204, 2), "{head}");
    let (status, head, body) = raw("POST", "/rpc/raise_pgrst", &[], Some("{}"));
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, err, header(&head, "x-header")),
        (332, json!({"code": "123", "message": "ABC", "details": "DEF", "hint": "XYZ"}), Some("str".into()))
    );
    let (status, err) = call("POST", "/rpc/raise_bad_pgrst", &[], Some("{}"));
    assert_eq!(
        (status, err),
        (
            500,
            json!({"code": "PGRST121", "message": "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error", "details": "Invalid JSON value for DETAIL: 'INVALID'",
                   "hint": "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'."})
        )
    );
    assert_eq!(
        call("POST", "/rpc/raise_pt402", &[], Some("{}")),
        (402, json!({"code": "PT402", "details": "Quota exceeded", "hint": "Upgrade your plan", "message": "Payment Required"}))
    );
    // The message's framing stays the proxy's; a status is a final one.
    let (status, head, body) = raw("GET", "/rpc/framing_headers", &[], None);
    assert_eq!(
        (status, body.as_str(), header(&head, "x-ok").as_deref(), header(&head, "content-length").as_deref()),
        (200, "\"x\"", Some("1"), Some("3"))
    );
    assert_eq!(header(&head, "transfer-encoding"), None);
    assert_eq!(call("GET", "/rpc/informational_status", &[], None).1["code"], "PGRST112");
    // A later request on the same connections does not inherit them.
    let (status, head, _) = raw("GET", "/projects?id=eq.1&select=id", &[], None);
    assert_eq!((status, header(&head, "x-test")), (200, None));
    // db-pre-request.
    proxy();
    let dsn = pg_clerk_e2e::with_dbname(&pg_clerk_e2e::api_dsn(), DB);
    let (_running, port) = start_proxy(&format!(
        "db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\ndb-pre-request = \"public.pre_check\"\njwt-secret = \"{SECRET}\"\n"
    ));
    let (status, head, _) = http(port, "GET", "/projects?id=eq.1&select=id", &[], None);
    assert_eq!((status, header(&head, "cache-control").as_deref()), (200, Some("no-store")));
    let blocked = vec![("X-Block".to_owned(), "yes".to_owned())];
    let (status, _, body) = http(port, "DELETE", "/projects?id=eq.1", &blocked, None);
    assert_eq!((status, body.contains("blocked by db-pre-request")), (403, true), "{body}");
    assert_eq!(call("GET", "/projects?id=eq.1&select=id", &[], None), (200, json!([{"id": 1}])), "nothing deleted");
}

// Media types: q-values, CSV of calls and writes, PGRST107, and
// (db-plan-enabled) the statement's plan (PlanSpec).
#[test]
fn media_types_and_plans() {
    assert_eq!(
        call("GET", "/projects?id=eq.1", &[("Accept", "text/plain")], None),
        (406, json!({"code": "PGRST107", "details": null, "hint": null, "message": "None of these media types are available: text/plain"}))
    );
    let (status, head, body) = raw("GET", "/projects?select=id&id=eq.1", &[("Accept", "application/json;q=0.5, text/csv")], None);
    assert_eq!((status, body.as_str(), header(&head, "content-type").as_deref()), (200, "id\n1", Some("text/csv; charset=utf-8")));
    let csv = [("Accept", "text/csv")];
    // QuerySpec's CSV: PostgreSQL's record text of each row (text with a space quoted).
    assert_eq!(
        raw("GET", "/rpc/getallprojects?select=id,name&id=lt.3&order=id", &csv, None).2,
        "id,name\n1,\"Windows 7\"\n2,\"Windows 10\""
    );
    assert_eq!(raw("GET", "/projects?select=id,name&id=eq.999", &csv, None).2, "\n", "no rows: no header");
    assert_eq!(raw("GET", "/tagged?select=id,tags", &csv, None).2, "id,tags\n1,\"{1,2}\"");
    assert_eq!(raw("GET", "/rpc/ret_setof_integers", &csv, None).2, "pgrst_scalar\n1\n2\n3");
    let (status, _, body) = raw(
        "POST",
        "/no_pk?select=a,b",
        &[("Content-Type", "text/csv"), ("Accept", "text/csv"), ("Prefer", "return=representation")],
        Some("a,b\nbar,baz"),
    );
    assert_eq!((status, body.as_str()), (201, "a,b\nbar,baz"));
    let plan = [("Accept", "application/vnd.pgrst.plan+json")];
    let (status, err) = call("GET", "/projects?id=in.(1,2,3)", &plan, None);
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST107")), "off by default: {err}");
    proxy();
    let dsn = pg_clerk_e2e::with_dbname(&pg_clerk_e2e::api_dsn(), DB);
    let (_running, port) =
        start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\ndb-plan-enabled = true\njwt-secret = \"{SECRET}\"\n"));
    let with = |accept: &str| vec![("Accept".to_owned(), accept.to_owned())];
    let (status, head, body) = http(port, "GET", "/projects?id=in.(1,2,3)", &with("application/vnd.pgrst.plan+json"), None);
    let explained: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, header(&head, "content-type").as_deref()),
        (200, Some("application/vnd.pgrst.plan+json; for=\"application/json\"; charset=utf-8"))
    );
    assert!(explained[0]["Plan"]["Total Cost"].is_number(), "{body}");
    let (status, _, body) = http(port, "GET", "/projects?id=in.(1,2,3)", &with("application/vnd.pgrst.plan"), None);
    assert!(status == 200 && body.starts_with("Aggregate"), "{status} {body}");
    // ANALYZE of a write runs it, and keeps nothing.
    let (status, head, body) =
        http(port, "POST", "/rpc/log_calls", &with("application/vnd.pgrst.plan+json; options=analyze"), Some(r#"{"note": "explained"}"#));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&head, "content-type").as_deref(),
        Some("application/vnd.pgrst.plan+json; for=\"application/json\"; options=analyze; charset=utf-8")
    );
    assert!(body.contains("\"Actual Rows\""), "{body}");
    assert_eq!(admin_query_in(DB, "SELECT count(*)::int FROM call_log WHERE note = 'explained'")[0].get::<_, i32>(0), 0);
}

// CustomMediaSpec: a function returning a domain named after a media type
// answers its value as is when Accept asks for that type.
#[test]
fn media_type_handlers() {
    let (status, head, body) = raw("GET", "/rpc/welcome", &[("Accept", "text/plain")], None);
    assert_eq!(
        (status, body.as_str(), header(&head, "content-type").as_deref()),
        (200, "Welcome to PostgREST", Some("text/plain; charset=utf-8"))
    );
    assert_eq!(call("GET", "/rpc/welcome", &[], None), (200, json!("Welcome to PostgREST")), "JSON by default");
    let (status, err) = call("GET", "/rpc/welcome", &[("Accept", "text/xml")], None);
    assert_eq!((status, err["message"].as_str()), (406, Some("None of these media types are available: text/xml")));
    let (status, err) = call("GET", "/rpc/welcome_twice", &[("Accept", "text/plain")], None);
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST107")), "a set is not served raw");
    // The bytes of a domain over bytea, as they are (read off the socket: not UTF-8).
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", proxy())).unwrap();
    let accept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/png,*/*;q=0.8";
    write!(socket, "GET /rpc/ret_image HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type").as_deref(), Some("image/png"));
    assert_eq!(&answer[split + 4..], &[0x89, 0x50, 0x4e, 0x47]);
}

// PostGIS (Debian's postgresql-15-postgis-3, installed by `make test`):
// `Accept: application/geo+json` answers a FeatureCollection. The
// PostgreSQL 18 that `make test` also runs (PyPI's build) has no PostGIS:
// there (see server_has) the test checks that the media type is not
// offered and stops.
#[test]
fn geojson_with_postgis() {
    // Without PostGIS the media type is not offered.
    let (status, err) = call("GET", "/projects?id=eq.1", &[("Accept", "application/geo+json")], None);
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST107")));
    if !server_has("postgis") {
        return;
    }
    let dsn = fresh_database(
        "pg_clerk_geo",
        "CREATE EXTENSION postgis;
         CREATE TABLE public.shops (id integer PRIMARY KEY, address text, shop_geom geometry(POINT, 4326));
         INSERT INTO public.shops VALUES (1, '1369 Cambridge St', 'SRID=4326;POINT(-71.10044 42.373695)'), (2, '757 Massachusetts Ave', 'SRID=4326;POINT(-71.10543 42.366432)');
         GRANT USAGE ON SCHEMA public TO anon;
         GRANT SELECT ON public.shops TO anon;",
    );
    let (_running, port) = start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\njwt-secret = \"{SECRET}\"\n"));
    let geo = vec![("Accept".to_owned(), "application/geo+json".to_owned())];
    let (status, head, body) = http(port, "GET", "/shops?id=eq.1", &geo, None);
    assert_eq!((status, header(&head, "content-type").as_deref()), (200, Some("application/geo+json; charset=utf-8")), "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-71.10044, 42.373695]}, "properties": {"id": 1, "address": "1369 Cambridge St"}}]})
    );
    let (status, _, body) = http(port, "GET", "/shops?id=eq.3", &geo, None);
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()), (200, json!({"type": "FeatureCollection", "features": []})));
}

// CustomMediaSpec: handler aggregates for a relation's rows (its own when
// `select` is all columns, else any relation's).
#[test]
fn media_type_handler_aggregates() {
    let (status, head, body) = raw("GET", "/projects?id=lt.3&order=id", &[("Accept", "text/tab-separated-values")], None);
    assert_eq!((status, header(&head, "content-type").as_deref()), (200, Some("text/tab-separated-values; charset=utf-8")), "{body}");
    assert_eq!(body, "1\tWindows 7\n2\tWindows 10\n");
    let (status, _, body) = raw("GET", "/projects?select=name&id=eq.1", &[("Accept", "text/tab-separated-values")], None);
    assert_eq!(
        (status, body.as_str()),
        (
            406,
            r#"{"code":"PGRST107","details":null,"hint":null,"message":"None of these media types are available: text/tab-separated-values"}"#
        ),
        "the relation's own handler needs select=*"
    );
    let (status, _, body) = raw("GET", "/clients?select=name&order=id", &[("Accept", "application/x-names")], None);
    assert_eq!((status, body.as_str()), (200, "Microsoft, Apple"), "a handler of any relation");
}

// LimitedMutationSpec: PATCH and DELETE with `limit`/`offset` change the
// rows a read with the same filters, order and range would give, never all
// the matching ones.
#[test]
fn limited_updates_and_deletes() {
    let rows_after = |table: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>| {
        proxy();
        admin_execute(DB, &format!("DELETE FROM {table}; INSERT INTO {table} VALUES (1, 'item-1'), (2, 'item-2'), (3, 'item-3')"));
        let (status, answer) = call(method, path, headers, body);
        assert!(status < 300, "{method} {path}: {status} {answer}");
        let rows = admin_query_in(DB, &format!("SELECT id, name FROM {table} ORDER BY id"));
        rows.iter().map(|r| format!("{}:{}", r.get::<_, i32>(0), r.get::<_, String>(1))).collect::<Vec<_>>().join(" ")
    };
    let body = Some(r#"{"name": "updated"}"#);
    // Deletes.
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items?order=id&limit=1&offset=1", &[], None), "1:item-1 3:item-3");
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items?order=id&limit=1&id=gt.1", &[], None), "1:item-1 3:item-3");
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items?order=id.desc&limit=2", &[], None), "1:item-1");
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items_view?order=id&limit=1&offset=1", &[], None), "1:item-1 3:item-3");
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items_view?order=id,name&limit=1&offset=1", &[], None), "1:item-1 3:item-3");
    assert_eq!(
        rows_after("limited_items_no_pk", "DELETE", "/limited_items_no_pk?order=ctid&limit=1&offset=1", &[], None),
        "1:item-1 3:item-3"
    );
    // Updates.
    assert_eq!(rows_after("limited_items", "PATCH", "/limited_items?order=id&limit=2", &[], body), "1:updated 2:updated 3:item-3");
    assert_eq!(rows_after("limited_items", "PATCH", "/limited_items?order=id&limit=1&id=gt.2", &[], body), "1:item-1 2:item-2 3:updated");
    assert_eq!(rows_after("limited_items", "PATCH", "/limited_items?order=id&limit=1&offset=1", &[], body), "1:item-1 2:updated 3:item-3");
    assert_eq!(
        rows_after("limited_items", "PATCH", "/limited_items_view?order=id&limit=1&offset=1", &[], body),
        "1:item-1 2:updated 3:item-3"
    );
    assert_eq!(
        rows_after("limited_items_no_pk", "PATCH", "/limited_items_no_pk?order=ctid&limit=1", &[], body),
        "1:updated 2:item-2 3:item-3"
    );
    // The answer is the changed rows only.
    admin_execute(DB, "DELETE FROM limited_items; INSERT INTO limited_items VALUES (1, 'item-1'), (2, 'item-2'), (3, 'item-3')");
    let representation = ("Prefer", "return=representation");
    assert_eq!(call("PATCH", "/limited_items?order=id.desc&limit=1&select=id", &[representation], body), (200, json!([{"id": 3}])));
    // The Range header does not limit a write; limit and offset do.
    let range = |r: &'static str| ("Range", r);
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items", &[range("0-0")], None), "");
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items?id=gte.2", &[range("0-0")], None), "1:item-1");
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items?order=id", &[range("0-0")], None), "");
    assert_eq!(rows_after("limited_items", "DELETE", "/limited_items?order=id&limit=2&offset=1", &[range("1-1")], None), "1:item-1");
    assert_eq!(rows_after("limited_items", "PATCH", "/limited_items", &[range("0-0")], body), "1:updated 2:updated 3:updated");
    assert_eq!(
        rows_after("limited_items", "PATCH", "/limited_items?order=id&limit=1&offset=1", &[range("0-0")], body),
        "1:item-1 2:updated 3:item-3"
    );
    // Without an order, refused: which rows would be arbitrary. Nothing changes.
    let no_order = json!({"code": "PGRST109", "details": null, "hint": "Apply an 'order' using unique column(s)", "message": "A 'limit' was applied without an explicit 'order'"});
    admin_execute(DB, "DELETE FROM limited_items; INSERT INTO limited_items VALUES (1, 'item-1'), (2, 'item-2'), (3, 'item-3')");
    assert_eq!(call("DELETE", "/limited_items?limit=1&offset=1", &[], None), (400, no_order.clone()));
    assert_eq!(call("PATCH", "/limited_items?limit=1&offset=1", &[], body), (400, no_order.clone()));
    assert_eq!(call("DELETE", "/limited_items?offset=1", &[], None), (400, no_order));
    // Ordered by a column that is not unique: more rows than the limit
    // would change; refused and rolled back.
    let surpassed = json!({"code": "PGRST110", "details": "Results contain 3 rows changed but the maximum number allowed is 1", "hint": null, "message": "The maximum number of rows allowed to change was surpassed"});
    assert_eq!(call("DELETE", "/limited_items_wnonuniq_view?order=static&limit=1", &[], None), (400, surpassed.clone()));
    assert_eq!(call("PATCH", "/limited_items_wnonuniq_view?order=static&limit=1", &[], body), (400, surpassed));
    let kept = admin_query_in(DB, "SELECT count(*)::int FROM limited_items WHERE name LIKE 'item-%'")[0].get::<_, i32>(0);
    assert_eq!(kept, 3, "a refused limited write kept nothing");
    // On a table, exactly the rows the read picks (by address): an order
    // that is not unique changes `limit` rows, never rows outside the
    // filters, and an offset alone takes the rows past it.
    let collide = "DELETE FROM limited_items; INSERT INTO limited_items VALUES (1, 'same'), (2, 'same'), (3, 'same'), (4, NULL)";
    let after = |method: &str, path: &str, body: Option<&str>| {
        admin_execute(DB, collide);
        let (status, answer) = call(method, path, &[representation], body);
        let rows = admin_query_in(DB, "SELECT id, coalesce(name, '-') FROM limited_items ORDER BY id");
        (status, answer, rows.iter().map(|r| format!("{}:{}", r.get::<_, i32>(0), r.get::<_, String>(1))).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        after("PATCH", "/limited_items?id=eq.2&order=name&limit=100&select=id", body),
        (200, json!([{"id": 2}]), "1:same 2:updated 3:same 4:-".to_owned())
    );
    assert_eq!(
        after("DELETE", "/limited_items?id=in.(2,3)&order=name&offset=1&select=id", None).2,
        "1:same 2:same 4:-",
        "the filters hold, and one row is past the offset"
    );
    assert_eq!(after("PATCH", "/limited_items?order=name&limit=2&select=id", body).1.as_array().map(Vec::len), Some(2));
    assert_eq!(
        after("PATCH", "/limited_items?order=name.nullsfirst&limit=1&select=id", body),
        (200, json!([{"id": 4}]), "1:same 2:same 3:same 4:updated".to_owned()),
        "a NULL order value is a row like any other"
    );
    // On a view, the rows are found again by the order's columns (as
    // PostgREST), within the filters.
    assert_eq!(
        after("PATCH", "/limited_items_wnonuniq_view?id=eq.2&order=static&limit=5&select=id", body),
        (200, json!([{"id": 2}]), "1:same 2:updated 3:same 4:-".to_owned())
    );
    // An order through an embed cannot name the relation's rows.
    let (status, err) = call("DELETE", "/projects?select=id,clients(name)&order=clients(name)&limit=1", &[], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST100")), "{err}");
}

// How PostgREST reads a request's parts: empty PATCH bodies, `columns=`,
// array keys, methods on functions, query arguments of a POST call,
// repeated parameters and preferences, `Range` on HEAD.
#[test]
fn request_parts_are_read_as_postgrest_reads_them() {
    proxy();
    let reset = || admin_execute(DB, "DELETE FROM read_items; INSERT INTO read_items VALUES ('a', 1), ('b', 2)");
    let ranks = || {
        admin_query_in(DB, "SELECT name || ':' || coalesce(rank::text, '-') FROM read_items ORDER BY name")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let representation = ("Prefer", "return=representation");
    // UpdateSpec: an empty object or array changes nothing: 204, or 200 [].
    reset();
    let (status, head, body) = raw("PATCH", "/read_items?name=eq.a", &[], Some("{}"));
    assert_eq!((status, header(&head, "content-range").as_deref(), body.as_str()), (204, Some("*/*"), ""));
    assert_eq!(call("PATCH", "/read_items?name=eq.a", &[representation], Some("[]")), (200, json!([])));
    let defaults = ("Prefer", "return=representation, missing=default");
    assert_eq!(call("PATCH", "/read_items?name=eq.a&columns=rank", &[defaults], Some("[]")), (200, json!([])));
    assert_eq!(ranks(), "a:1 b:2");
    // Changing nothing still needs rights on the table.
    let (status, err) = call("PATCH", "/private_items?id=eq.1", &[], Some("{}"));
    assert_eq!((status, err["code"].as_str()), (401, Some("42501")), "{err}");
    // With missing=default each set of keys is an INSERT of its own: their number is bounded.
    let sets: Vec<Value> = (1..=65u32)
        .map(|i| {
            Value::Object(
                ["a", "b", "c", "d", "e", "f", "g"]
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| i & (1 << bit) != 0)
                    .map(|(_, k)| (k.to_string(), json!(1)))
                    .collect(),
            )
        })
        .collect();
    let (status, err) =
        call("POST", "/wide_items?columns=a,b,c,d,e,f,g", &[("Prefer", "missing=default")], Some(&Value::Array(sets).to_string()));
    assert_eq!(
        (status, err["code"].as_str(), err["message"].as_str()),
        (400, Some("PGRST102"), Some("Too many different sets of keys")),
        "{err}"
    );
    // InsertSpec: without `columns=`, every object has the same keys.
    let (status, err) = call("POST", "/read_items", &[], Some(r#"[{"name": "c"}, {"name": "d", "rank": 3}]"#));
    assert_eq!((status, err["message"].as_str(), err["code"].as_str()), (400, Some("All object keys must match"), Some("PGRST102")));
    // `columns=` names every column written: absent keys are NULL, or with
    // missing=default their default.
    assert_eq!(
        call(
            "POST",
            "/read_items?columns=name,rank&select=name,rank",
            &[representation],
            Some(r#"[{"name": "c"}, {"name": "d", "rank": 3}]"#)
        ),
        (201, json!([{"name": "c", "rank": null}, {"name": "d", "rank": 3}]))
    );
    assert_eq!(
        call("POST", "/read_items?columns=name,rank", &[("Prefer", "return=representation, missing=default")], Some(r#"{"name": "e"}"#)),
        (201, json!([{"name": "e", "rank": 42}]))
    );
    assert_eq!(
        call("PATCH", "/read_items?name=eq.a&columns=rank", &[representation], Some(r#"{"name": "x"}"#)),
        (200, json!([{"name": "a", "rank": null}]))
    );
    assert_eq!(
        call(
            "PATCH",
            "/read_items?name=eq.b&columns=rank",
            &[("Prefer", "return=representation, missing=default")],
            Some(r#"{"name": "x"}"#)
        ),
        (200, json!([{"name": "b", "rank": 42}]))
    );
    // A PUT takes its whole body, whatever `columns=` says.
    assert_eq!(
        call("PUT", "/read_items?name=eq.f&columns=name", &[representation], Some(r#"{"name": "f", "rank": 7}"#)),
        (201, json!([{"name": "f", "rank": 7}]))
    );
    // A DELETE has no missing values to apply.
    let (_, head, _) = raw("DELETE", "/read_items?name=eq.f", &[("Prefer", "return=minimal, missing=default")], None);
    assert_eq!(header(&head, "preference-applied").as_deref(), Some("return=minimal"));
    // RpcSpec: other methods on a function; a POST's query has filters, not arguments.
    for method in ["PUT", "PATCH", "DELETE"] {
        assert_eq!(
            call(method, "/rpc/sayhello", &[], Some("{}")),
            (405, json!({"code": "PGRST101", "details": null, "hint": null, "message": format!("Cannot use the {method} method on RPC")}))
        );
    }
    let (status, err) = call("POST", "/rpc/sayhello?name=x", &[], Some(r#"{"name": "y"}"#));
    assert_eq!((status, err["code"].as_str(), err["message"].as_str()), (400, Some("PGRST100"), Some("failed to parse filter (x)")));
    assert_eq!(call("POST", "/rpc/sayhello?columns=name", &[], Some(r#"{"name": "y", "junk": 1}"#)), (200, json!("Hello, y")));
    // A parameter or preference given twice keeps its first value; every
    // Prefer header counts.
    reset();
    assert_eq!(
        call("GET", "/read_items?select=name&select=rank&order=name.desc&order=name.asc", &[], None),
        (200, json!([{"name": "b"}, {"name": "a"}]))
    );
    let (status, head, _) =
        raw("PATCH", "/read_items?name=eq.a", &[("Prefer", "return=representation, return=minimal")], Some(r#"{"rank": 5}"#));
    assert_eq!((status, header(&head, "preference-applied").as_deref()), (200, Some("return=representation")));
    let (_, head, _) = raw("GET", "/read_items", &[("Prefer", "count=exact"), ("Prefer", "count=planned, handling=strict")], None);
    assert_eq!(header(&head, "content-range").as_deref(), Some("0-1/2"));
    assert_eq!(header(&head, "preference-applied").as_deref(), Some("count=exact, handling=strict"));
    // `Range` is read on GET only.
    let (status, head, _) = raw("HEAD", "/read_items", &[("Range", "0-0"), ("Prefer", "count=exact")], None);
    assert_eq!((status, header(&head, "content-range").as_deref()), (200, Some("0-1/2")));
    let (status, head, _) = raw("GET", "/read_items", &[("Range", "0-0"), ("Prefer", "count=exact")], None);
    assert_eq!((status, header(&head, "content-range").as_deref()), (206, Some("0-0/2")));
}

// Values pass through as PostgreSQL reads and writes them: a number keeps
// every digit on the way in (bodies, arguments) and out (a single object
// keeps its keys' order and the column's scale).
#[test]
fn numbers_keep_every_digit() {
    let big = "12345678901234567890.123456789";
    let (status, _, body) =
        raw("POST", "/exact_numbers", &[("Prefer", "return=representation")], Some(&format!(r#"{{"id": 1, "n": {big}, "price": 14.5}}"#)));
    assert_eq!((status, body.as_str()), (201, format!(r#"[{{"id":1,"n":{big},"price":14.50}}]"#).as_str()));
    assert_eq!(admin_query_in(DB, "SELECT n::text FROM exact_numbers WHERE id = 1")[0].get::<_, String>(0), big);
    let (status, _, body) = raw("GET", "/exact_numbers?id=eq.1", &[OBJECT], None);
    assert_eq!((status, body.as_str()), (200, format!(r#"{{"id":1,"n":{big},"price":14.50}}"#).as_str()));
    let (status, _, body) = raw("POST", "/rpc/echo_numeric", &[], Some(&format!(r#"{{"x": {big}}}"#)));
    assert_eq!((status, body.as_str()), (200, big));
    let (status, _, body) =
        raw("PATCH", "/exact_numbers?id=eq.1&select=n", &[("Prefer", "return=representation"), OBJECT], Some(r#"{"n": 1.10}"#));
    assert_eq!((status, body.as_str()), (200, r#"{"n":1.10}"#));
}

// A filter's value is an untyped literal in PostgREST: compared with the
// column as written, never first rounded or cut to the column's size.
#[test]
fn filter_values_are_not_cut_to_the_column_size() {
    let ids = |query: &str| call("GET", &format!("/sized_values?select=id&{query}"), &[], None);
    let none = (200, json!([]));
    let one = (200, json!([{"id": 1}]));
    assert_eq!(ids("price=lte.6.4999"), none);
    assert_eq!(ids("price=eq.6.5"), one);
    assert_eq!(ids("price=gt.6.495&price=lt.7"), one);
    assert_eq!(ids("code=eq.abcdef"), none);
    assert_eq!(ids("code=in.(abcdef,xyz)"), none);
    assert_eq!(ids("code=eq(any).{abcdef}"), none);
    assert_eq!(ids("letters=eq.abcd"), none);
    assert_eq!(ids("letters=eq.abc"), one);
    assert_eq!(ids("bits=eq.1011"), none);
    assert_eq!(ids("bits=eq.101"), one);
    assert_eq!(ids("code=like.ab*"), one);
    // A domain's value is read as its base type (through domains over domains): no CHECK on a filter.
    assert_eq!(call("GET", "/domain_values?select=id&sp=eq.-1", &[], None), none);
    assert_eq!(call("GET", "/domain_values?select=id&sp=eq.5", &[], None), one);
}

// RangeSpec / ApiRequest: `Range` and `limit`/`offset` both apply (their
// intersection); `rel=is.null` names the embed, also one named after a column.
#[test]
fn ranges_intersect_and_null_filters_name_embeds() {
    let (status, head, body) = raw("GET", "/projects?select=id&order=id&offset=2", &[("Range", "1-3")], None);
    assert_eq!(
        (status, header(&head, "content-range").as_deref(), body.as_str()),
        (
            200,
            Some("2-3/*"),
            r#"[{"id":3}, 
 {"id":4}]"#
        )
    );
    let (status, rows) = call("GET", "/projects?select=id&order=id&limit=2&offset=1", &[("Range", "0-5")], None);
    assert_eq!((status, rows), (200, json!([{"id": 2}, {"id": 3}])));
    let (status, rows) =
        call("GET", "/projects?select=id,client_id(name)&client_id.name=eq.Apple&client_id=not.is.null&order=id", &[], None);
    assert_eq!((status, rows), (200, json!([{"id": 3, "client_id": {"name": "Apple"}}, {"id": 4, "client_id": {"name": "Apple"}}])));
    let (status, rows) = call("GET", "/projects?select=id,client_id(name)&client_id.name=eq.Apple&client_id=is.null&order=id", &[], None);
    assert_eq!((status, rows), (200, json!([{"id": 1, "client_id": null}, {"id": 2, "client_id": null}, {"id": 5, "client_id": null}])));
}
