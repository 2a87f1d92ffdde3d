//! Answers PostgREST gives that clerk-proxy got silently wrong (issue 17),
//! through the binary on a fixture of the test's own: a single-object write
//! that touches two rows keeps nothing, an upsert of key columns only
//! updates and returns the row, `request.jwt.claims` is set as PostgREST
//! sets it, a function's result is read as a relation, every exposed
//! schema is served by its profile.

use clerk_jwt::test_keys::{now, sign_hs256};
use pg_clerk_e2e::{admin_query_in, fresh_database, http, start_proxy, Running, REQUEST_SETTING_FUNCTION};
use serde_json::{json, Value};
use std::sync::OnceLock;

const DB: &str = "pg_clerk_core";
const SECRET: &str = "a-local-development-secret-of-32-bytes!";

fn proxy() -> u16 {
    static P: OnceLock<(Running, u16)> = OnceLock::new();
    P.get_or_init(|| {
        let dsn = fresh_database(
            DB,
            &format!(
                "CREATE TABLE public.people (username text PRIMARY KEY, status text NOT NULL DEFAULT 'ONLINE');
                 INSERT INTO public.people VALUES ('ann', 'ONLINE'), ('bob', 'OFFLINE'), ('cy', 'OFFLINE'), ('eve', 'IDLE'), ('fay', 'IDLE');
                 GRANT SELECT, INSERT, UPDATE, DELETE ON public.people TO anon, authenticated;
                 CREATE FUNCTION public.get_people() RETURNS SETOF public.people LANGUAGE sql STABLE AS $$ SELECT * FROM public.people $$;
                 CREATE FUNCTION public.people_with(prefix text) RETURNS SETOF public.people LANGUAGE sql STABLE AS $$ SELECT * FROM public.people WHERE username LIKE prefix || '%' $$;
                 CREATE FUNCTION public.twice(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT x * 2 $$;
                 CREATE FUNCTION public.twice(x text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT x || x $$;
                 CREATE FUNCTION public.twice(x integer, times integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT x * times $$;
                 CREATE FUNCTION public.total(nums integer[]) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT sum(n) FROM unnest(nums) n $$;
                 CREATE FUNCTION public.joined(words text[]) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT array_to_string(words, '+') $$;
                 CREATE FUNCTION public.echo(json) RETURNS json LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
                 CREATE FUNCTION public.usernames() RETURNS SETOF text LANGUAGE sql STABLE AS $$ SELECT username FROM public.people $$;
                 CREATE TABLE public.odd (\"column whitespace\" text, \"a,b\" integer);
                 INSERT INTO public.odd VALUES ('one', 1), ('two', 2);
                 GRANT SELECT, INSERT ON public.odd TO anon;
                 CREATE SCHEMA other;
                 GRANT USAGE ON SCHEMA other TO anon, authenticated;
                 CREATE TABLE other.notes (id integer PRIMARY KEY, body text);
                 INSERT INTO other.notes VALUES (1, 'from the other schema');
                 GRANT SELECT, INSERT ON other.notes TO anon, authenticated;
                 CREATE FUNCTION other.note_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM other.notes $$;
                 -- Names its table unqualified: found through the request's search_path.
                 CREATE FUNCTION other.first_note() RETURNS text LANGUAGE plpgsql STABLE AS $f$ BEGIN RETURN (SELECT body FROM notes WHERE id = 1); END $f$;
                 {REQUEST_SETTING_FUNCTION}"
            ),
        );
        start_proxy(&format!("db-uri = \"{dsn}\"\ndb-schemas = \"public, other\"\ndb-anon-role = \"anon\"\njwt-secret = \"{SECRET}\"\n"))
    })
    .1
}

fn call(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, Value) {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (status, _, text) = http(proxy(), method, path, &headers, body);
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Rows only this file's first test writes.
fn statuses() -> Vec<String> {
    admin_query_in(DB, "SELECT username || ':' || status FROM people WHERE username IN ('ann', 'eve', 'fay') ORDER BY username")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_single_object_write_touching_two_rows_keeps_nothing() {
    proxy();
    let before = statuses();
    let object = ("Accept", "application/vnd.pgrst.object+json");
    let (status, err) =
        call("PATCH", "/people?status=eq.IDLE", &[object, ("Prefer", "return=representation")], Some(r#"{"status": "AWAY"}"#));
    assert_eq!(status, 406, "{err}");
    assert_eq!(
        err,
        json!({"code": "PGRST116", "message": "JSON object requested, multiple (or no) rows returned",
               "details": "Results contain 2 rows, application/vnd.pgrst.object+json requires 1 row", "hint": null})
    );
    assert_eq!(statuses(), before, "both rows rolled back");
    let (status, err) = call("DELETE", "/people?username=eq.nobody", &[object], None);
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST116")));
    // Exactly one row: kept, and answered as an object.
    let (status, row) =
        call("PATCH", "/people?username=eq.ann", &[object, ("Prefer", "return=representation")], Some(r#"{"status": "BUSY"}"#));
    assert_eq!((status, row), (200, json!({"username": "ann", "status": "BUSY"})));
    assert!(statuses().contains(&"ann:BUSY".to_owned()));
}

#[test]
fn an_upsert_of_key_columns_only_updates_and_returns_the_row() {
    proxy();
    let merge = ("Prefer", "resolution=merge-duplicates,return=representation");
    let (status, rows) = call("POST", "/people?on_conflict=username", &[merge], Some(r#"{"username": "cy"}"#));
    assert_eq!((status, rows), (200, json!([{"username": "cy", "status": "OFFLINE"}])), "updated, nothing inserted: 200");
    let (status, rows) = call("POST", "/people?on_conflict=username", &[merge], Some(r#"[{"username": "cy"}, {"username": "dee"}]"#));
    assert_eq!((status, rows), (201, json!([{"username": "cy", "status": "OFFLINE"}, {"username": "dee", "status": "ONLINE"}])));
}

#[test]
fn request_jwt_claims_carry_the_role_as_postgrest_sets_them() {
    let claims = |auth: &[(&str, &str)]| {
        let (status, text) = call("GET", "/rpc/request_setting?name=request.jwt.claims", auth, None);
        assert_eq!(status, 200, "{text}");
        serde_json::from_str::<Value>(text.as_str().unwrap()).unwrap()
    };
    assert_eq!(claims(&[]), json!({"role": "anon"}));
    let t = now();
    let token = sign_hs256(&json!({"sub": "user_2core", "sid": "sess_core", "iat": t, "exp": t + 60}), SECRET.as_bytes());
    let bearer = format!("Bearer {token}");
    let user = claims(&[("Authorization", &bearer)]);
    assert_eq!((&user["sub"], &user["role"]), (&json!("user_2core"), &json!("authenticated")));
    // A token's own role claim that is not the role it runs as (no
    // jwt-role-claim-key here) never reaches SQL: policies reading
    // `auth.jwt()->>'role'` see the role the request has.
    let forged =
        sign_hs256(&json!({"sub": "user_2core", "sid": "sess_core", "iat": t, "exp": t + 60, "role": "postgres"}), SECRET.as_bytes());
    let user = claims(&[("Authorization", &format!("Bearer {forged}"))]);
    assert_eq!((&user["sub"], &user["role"]), (&json!("user_2core"), &json!("authenticated")), "{user}");
}

// PostgREST's bug report: `POST /rpc/get_username_and_status?status=neq.ONLINE`
// answered the ONLINE row. A function returning a table's rows is read as
// that table: select, filters, order, limit, Range, counts, single object.
#[test]
fn a_function_returning_rows_of_a_table_is_read_as_that_table() {
    let users = |rows: &Value| rows.as_array().unwrap().iter().map(|r| r["username"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let (status, rows) = call("POST", "/rpc/get_people?status=neq.ONLINE&username=in.(bob,cy,eve)&order=username", &[], Some("{}"));
    assert_eq!(status, 200, "{rows}");
    assert!(rows.as_array().unwrap().iter().all(|r| r["status"] != "ONLINE"), "{rows}");
    assert_eq!(users(&rows), ["bob", "cy", "eve"]);
    let (status, rows) = call("GET", "/rpc/get_people?select=username&username=in.(bob,cy)&order=username.desc&limit=1", &[], None);
    assert_eq!((status, rows), (200, json!([{"username": "cy"}])));
    let (status, rows) = call("GET", "/rpc/people_with?prefix=b&select=username", &[], None);
    assert_eq!((status, rows), (200, json!([{"username": "bob"}])));
    let (status, row) = call("GET", "/rpc/get_people?username=eq.bob", &[("Accept", "application/vnd.pgrst.object+json")], None);
    assert_eq!((status, row["username"].as_str()), (200, Some("bob")));
    let headers: Vec<(String, String)> =
        [("Prefer", "count=exact"), ("Range", "0-0")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (status, head, body) = http(proxy(), "GET", "/rpc/get_people?username=in.(bob,cy)&order=username", &headers, None);
    assert_eq!(status, 206, "{body}");
    assert!(head.to_ascii_lowercase().contains("content-range: 0-0/2"), "{head}");
    // A set of scalars is read as its one column, pgrst_scalar.
    let (status, err) = call("GET", "/rpc/usernames?select=x", &[], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("42703")), "{err}");
    let (status, names) = call("GET", "/rpc/usernames?pgrst_scalar=in.(bob,cy,zed)&order=pgrst_scalar.desc", &[], None);
    assert_eq!((status, names), (200, json!(["cy", "bob"])));
}

// Every db-schemas schema, chosen per request as PostgREST does.
#[test]
fn each_exposed_schema_is_served_by_its_profile() {
    let other = ("Accept-Profile", "other");
    let (status, err) = call("GET", "/notes", &[], None);
    assert_eq!((status, err["code"].as_str()), (404, Some("PGRST205")), "the default is the first schema: {err}");
    let (status, rows) = call("GET", "/notes?select=id,body", &[other], None);
    assert_eq!((status, rows), (200, json!([{"id": 1, "body": "from the other schema"}])));
    let (status, _) = call("POST", "/notes", &[("Content-Profile", "other")], Some(r#"{"id": 2, "body": "written"}"#));
    assert_eq!(status, 201);
    assert_eq!(admin_query_in(DB, "SELECT count(*)::int FROM other.notes")[0].get::<_, i32>(0), 2);
    let (status, n) = call("POST", "/rpc/note_count", &[("Content-Profile", "other")], Some("{}"));
    assert_eq!((status, n), (200, json!(2)));
    // search_path is the request's schema, then db-extra-search-path (public).
    let (status, body) = call("POST", "/rpc/first_note", &[("Content-Profile", "other")], Some("{}"));
    assert_eq!((status, body), (200, json!("from the other schema")));
    let (status, path) = call("GET", "/rpc/request_setting?name=search_path", &[], None);
    assert_eq!((status, path), (200, json!("\"public\"")));
    let (_, path) = call("GET", "/rpc/request_setting?name=search_path", &[("Accept-Profile", "other")], None);
    assert_eq!(path["code"], "PGRST202", "request_setting lives in public: {path}");
    let (status, doc) = call("GET", "/", &[other], None);
    assert_eq!(status, 200);
    assert!(doc["paths"]["/notes"].is_object() && doc["paths"]["/people"].is_null(), "the document of the profile's schema");
    // Reads take Accept-Profile, writes Content-Profile.
    let (status, _) = call("POST", "/notes", &[other], Some(r#"{"id": 3}"#));
    assert_eq!(status, 404, "Accept-Profile does not choose a write's schema");
}

#[test]
fn an_unexposed_schema_is_406_not_the_default_one() {
    let (status, _) = call("GET", "/people?select=username&limit=1", &[("Accept-Profile", "public")], None);
    assert_eq!(status, 200);
    let (status, err) = call("GET", "/people", &[("Accept-Profile", "nope")], None);
    assert_eq!(
        (status, err),
        (
            406,
            json!({"code": "PGRST106", "message": "Invalid schema: nope", "details": null, "hint": "Only the following schemas are exposed: public, other"})
        )
    );
    let (status, err) = call("POST", "/people", &[("Content-Profile", "nope")], Some(r#"{"username": "zed"}"#));
    assert_eq!((status, err["code"].as_str()), (406, Some("PGRST106")));
    assert!(admin_query_in(DB, "SELECT 1 FROM people WHERE username = 'zed'").is_empty());
}

// PostgREST's double-quoted names: a column name with spaces or commas.
#[test]
fn double_quoted_column_names() {
    let (status, rows) =
        call("GET", "/odd?select=%22column%20whitespace%22,%22a,b%22&%22a,b%22=eq.2&order=%22column%20whitespace%22", &[], None);
    assert_eq!((status, rows), (200, json!([{"column whitespace": "two", "a,b": 2}])));
}

// `POST` of `{}` inserts a row of defaults (it was invalid SQL, 400 42601).
#[test]
fn an_empty_object_inserts_the_defaults() {
    let representation = ("Prefer", "return=representation");
    let (status, rows) = call("POST", "/odd?select=%22a,b%22", &[representation], Some("{}"));
    assert_eq!((status, rows), (201, json!([{"a,b": null}])));
    let (status, rows) = call("POST", "/odd?select=%22a,b%22", &[representation], Some("[{}, {}]"));
    assert_eq!((status, rows), (201, json!([{"a,b": null}, {"a,b": null}])));
    // `[]`: nothing inserted, an empty answer.
    let (status, rows) = call("POST", "/odd", &[representation], Some("[]"));
    assert_eq!((status, rows), (201, json!([])));
    let (status, _) = call("POST", "/odd", &[], Some("[]"));
    assert_eq!(status, 201);
}

// A function with one unnamed json/jsonb parameter takes the whole body.
#[test]
fn a_single_unnamed_json_parameter_takes_the_whole_body() {
    let (status, echoed) = call("POST", "/rpc/echo", &[], Some(r#"{"a": 1, "b": [2, {"c": null}]}"#));
    assert_eq!((status, echoed), (200, json!({"a": 1, "b": [2, {"c": null}]})));
    let (status, echoed) = call("GET", "/rpc/echo?a=1&b=x", &[], None);
    assert_eq!((status, echoed), (200, json!({"a": "1", "b": "x"})));
}

// Overloads are chosen by argument names; when several take the same
// names PostgREST answers 300 PGRST203.
#[test]
fn overloads_by_argument_names_and_ambiguity() {
    let (status, n) = call("POST", "/rpc/twice", &[], Some(r#"{"x": 3, "times": 4}"#));
    assert_eq!((status, n), (200, json!(12)));
    let (status, err) = call("POST", "/rpc/twice", &[], Some(r#"{"x": 3}"#));
    assert_eq!(status, 300, "{err}");
    assert_eq!(err["code"], "PGRST203");
    let message = err["message"].as_str().unwrap();
    assert!(message.starts_with("Could not choose the best candidate function between: public.twice(x => integer)"), "{message}");
    assert!(message.contains("public.twice(x => text)"), "{message}");
}

// `Prefer: timezone`: the transaction's TimeZone, echoed in
// Preference-Applied; an unknown zone is not applied (and refused with
// handling=strict).
#[test]
fn prefer_timezone_sets_the_transaction_time_zone() {
    let headers: Vec<(String, String)> = vec![("Prefer".into(), "timezone=America/Los_Angeles".into())];
    let (status, head, body) = http(proxy(), "GET", "/rpc/request_setting?name=TimeZone", &headers, None);
    assert_eq!((status, body.as_str()), (200, "\"America/Los_Angeles\""));
    assert!(head.to_ascii_lowercase().contains("preference-applied: timezone=america/los_angeles"), "{head}");
    let (status, zone) = call("GET", "/rpc/request_setting?name=TimeZone", &[("Prefer", "timezone=Mars/Olympus")], None);
    assert_eq!(status, 200);
    assert_ne!(zone, json!("Mars/Olympus"));
    let (status, err) = call("GET", "/rpc/request_setting?name=TimeZone", &[("Prefer", "handling=strict, timezone=Mars/Olympus")], None);
    assert_eq!((status, err["code"].as_str()), (400, Some("PGRST122")), "{err}");
}

// Array arguments: a JSON array in the body, an array literal in a GET
// (a repeated key is the last value, as PostgREST reads it, unless the
// parameter is variadic).
#[test]
fn array_arguments_from_json_and_repeated_keys() {
    let (status, n) = call("POST", "/rpc/total", &[], Some(r#"{"nums": [1, 2, 3]}"#));
    assert_eq!((status, n), (200, json!(6)));
    let (status, err) = call("GET", "/rpc/total?nums=4&nums=5", &[], None);
    assert_eq!((status, err["message"].as_str()), (400, Some("malformed array literal: \"5\"")));
    let (status, n) = call("GET", "/rpc/total?nums=%7B7,8%7D", &[], None);
    assert_eq!((status, n), (200, json!(15)), "an array literal as one value");
    let (status, w) = call("POST", "/rpc/joined", &[], Some(r#"{"words": ["a,b", "c\"d", null]}"#));
    assert_eq!((status, w), (200, json!("a,b+c\"d")));
}
