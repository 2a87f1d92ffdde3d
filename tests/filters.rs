//! Every PostgREST filter operator through the proxy binary, on a fixture
//! of the test's own with the column types they apply to (text, arrays,
//! ranges, jsonb, tsvector), answered as PostgREST's documentation says
//! (docs: API → Tables and Views → Operators).

use pg_clerk_e2e::{fresh_database, http, start_proxy, Running};
use serde_json::{json, Value};
use std::sync::OnceLock;

const SETUP: &str = "
CREATE TABLE public.items (
    id      integer PRIMARY KEY,
    name    text,
    tags    text[],
    nums    integer[],
    period  int4range,
    doc     jsonb,
    body    text,
    search  tsvector
);
INSERT INTO public.items VALUES
    (1, 'Apple',   '{fruit,red}',        '{1,2,3}', '[1,10)',  '{\"a\": 1, \"b\": [1, 2]}', 'The fat cats ate the rats',  to_tsvector('english', 'The fat cats ate the rats')),
    (2, 'Banana',  '{fruit,yellow}',     '{4,5}',   '[10,20)', '{\"a\": 2}',                'Fat rats, thin cats',         to_tsvector('english', 'Fat rats, thin cats')),
    (3, 'avocado', '{vegetable,green}',  '{6}',     '[30,40)', '{\"b\": [3]}',              'Nothing to see here',         to_tsvector('english', 'Nothing to see here')),
    (4, NULL,      '{}',                 NULL,      NULL,      NULL,                        NULL,                          NULL);
GRANT SELECT ON public.items TO anon;
";

fn proxy() -> u16 {
    static P: OnceLock<(Running, u16)> = OnceLock::new();
    P.get_or_init(|| {
        let dsn = fresh_database("pg_clerk_filters", SETUP);
        start_proxy(&format!("db-uri = \"{dsn}\"\ndb-anon-role = \"anon\"\n"))
    })
    .1
}

/// What a browser sends for `>` (JSON paths), spaces and quotes.
fn url(query: &str) -> String {
    query.replace('>', "%3E").replace(' ', "%20").replace('\'', "%27")
}

/// The ids a filter selects, in order.
fn ids(filter: &str) -> Value {
    let rows = read(&format!("select=id&order=id&{filter}"));
    Value::Array(rows.as_array().unwrap().iter().map(|r| r["id"].clone()).collect())
}

fn refused_url(filter: &str) -> Value {
    refused(&url(filter))
}

fn refused(filter: &str) -> Value {
    let (status, _, body) = http(proxy(), "GET", &format!("/items?{filter}"), &[], None);
    assert_eq!(status, 400, "{filter}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn comparisons_and_patterns() {
    assert_eq!(ids("name=isdistinct.Apple"), json!([2, 3, 4]), "NULL is distinct from Apple");
    assert_eq!(ids("name=neq.Apple"), json!([2, 3]), "NULL <> Apple is not true");
    assert_eq!(ids("name=match.^[AB]"), json!([1, 2]));
    assert_eq!(ids("name=imatch.^a"), json!([1, 3]));
    assert_eq!(ids("name=not.imatch.^a"), json!([2]));
    assert_eq!(ids("name=like.*an*"), json!([2]));
    assert_eq!(ids("name=ilike.A*"), json!([1, 3]));
}

#[test]
fn any_and_all() {
    assert_eq!(ids("id=eq(any).{1,3}"), json!([1, 3]));
    assert_eq!(ids("id=gt(all).{1,2}"), json!([3, 4]));
    assert_eq!(ids("id=neq(all).{1,2}"), json!([3, 4]));
    assert_eq!(ids("name=like(any).{A*,B*}"), json!([1, 2]));
    assert_eq!(ids("name=ilike(all).{a*,*o}"), json!([3]));
    assert_eq!(ids("name=match(any).{^Ap,^av}"), json!([1, 3]));
    assert_eq!(ids("name=not.like(any).{A*,B*}"), json!([3]));
}

#[test]
fn is_takes_any_case_and_not_null() {
    assert_eq!(ids("name=is.null"), json!([4]));
    assert_eq!(ids("name=is.NULL"), json!([4]));
    assert_eq!(ids("name=is.not_null"), json!([1, 2, 3]));
    assert_eq!(ids("name=not.is.null"), json!([1, 2, 3]));
    let err = refused("name=is.maybe");
    assert_eq!(err["code"], "PGRST100");
    assert!(err["details"].as_str().unwrap().contains("is.not_null"), "{err}");
}

#[test]
fn arrays_ranges_and_jsonb() {
    assert_eq!(ids("tags=cs.{fruit}"), json!([1, 2]));
    assert_eq!(ids("tags=cs.{fruit,red}"), json!([1]));
    assert_eq!(ids("tags=cd.{fruit,red,yellow}"), json!([1, 2, 4]), "the empty array is contained in any");
    assert_eq!(ids("tags=ov.{red,green}"), json!([1, 3]));
    assert_eq!(ids("nums=ov.{3,6}"), json!([1, 3]));
    assert_eq!(ids("tags=not.cs.{fruit}"), json!([3, 4]));
    assert_eq!(ids("period=sl.[20,30)"), json!([1, 2]));
    assert_eq!(ids("period=sr.[15,25)"), json!([3]));
    assert_eq!(ids("period=nxr.[5,25)"), json!([1, 2]));
    assert_eq!(ids("period=nxl.[5,25)"), json!([2, 3]));
    assert_eq!(ids("period=adj.[20,30)"), json!([2, 3]));
    assert_eq!(ids("period=ov.[5,12)"), json!([1, 2]));
    assert_eq!(ids("period=cs.[2,3)"), json!([1]));
    assert_eq!(ids("doc=cs.{%22a%22:1}"), json!([1]));
    assert_eq!(ids("doc=cs.{%22b%22:[3]}"), json!([3]));
    assert_eq!(ids("doc=cd.{%22a%22:2,%22c%22:0}"), json!([2]));
}

#[test]
fn full_text_search() {
    assert_eq!(ids("search=fts.cat%20%26%20rat"), json!([1, 2]));
    assert_eq!(ids("search=fts(english).cats%20%26%20fat"), json!([1, 2]));
    assert_eq!(ids("search=plfts.fat%20cat"), json!([1, 2]));
    assert_eq!(ids("search=phfts(english).fat%20cats"), json!([1]), "a phrase: fat next to cats");
    assert_eq!(ids("search=wfts(english).%22fat%20rats%22%20-thin"), json!([]));
    assert_eq!(ids("search=wfts(english).cats%20-thin"), json!([1]));
    assert_eq!(ids("search=not.fts.rat"), json!([3]));
    // A text column is searched through to_tsvector, as PostgREST does.
    assert_eq!(ids("body=fts(english).cat"), json!([1, 2]));
}

#[test]
fn operators_inside_logic_trees() {
    assert_eq!(ids("or=(tags.cs.{red},name.like(any).{Ban*,x})"), json!([1, 2]));
    assert_eq!(ids("or=(period.adj.%22[20,30)%22,name.eq.%22Apple%22)"), json!([1, 2, 3]));
    assert_eq!(ids("and=(name.not.is.null,nums.ov.{1,4})"), json!([1, 2]));
    assert_eq!(ids("or=(search.fts(english).thin,id.eq(any).{3})"), json!([2, 3]));
}

#[test]
fn unknown_operators_and_modifiers_are_refused() {
    let err = refused("name=equals.x");
    assert_eq!(err["message"], "failed to parse filter (equals.x)");
    assert!(err["details"].as_str().unwrap().contains("isdistinct, like, ilike, match, imatch, in, is, fts"), "{err}");
    for bad in ["id=in(any).{1}", "id=eq(some).{1}", "id=eq(any).1,2", "tags=cs(any).{a}", "search=fts(eng%22).x"] {
        assert_eq!(refused(bad)["code"], "PGRST100", "{bad}");
    }
}

/// Rows of a read, as JSON.
fn read(query: &str) -> Value {
    let (status, _, body) = http(proxy(), "GET", &url(&format!("/items?{query}")), &[], None);
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str(&body).unwrap()
}

// PostgREST's JSON columns: `->` keeps JSON, `->>` gives text; the output
// key is the last key of the path (docs: API → JSON Columns).
#[test]
fn json_paths_in_select_filters_and_order() {
    assert_eq!(read("select=id,doc->a&id=lt.4&order=id"), json!([{"id": 1, "a": 1}, {"id": 2, "a": 2}, {"id": 3, "a": null}]));
    assert_eq!(read("select=id,doc->>a&id=lt.3&order=id"), json!([{"id": 1, "a": "1"}, {"id": 2, "a": "2"}]));
    assert_eq!(read("select=first:doc->b->0&id=eq.1"), json!([{"first": 1}]));
    assert_eq!(read("select=doc->b->1&id=eq.1"), json!([{"b": 2}]), "an index takes the last key's name");
    assert_eq!(read("select=doc->b->>0::integer&id=eq.3"), json!([{"b": 3}]));
    assert_eq!(ids("doc->>a=eq.1"), json!([1]));
    assert_eq!(ids("doc->a=eq.2"), json!([2]), "-> compares as jsonb");
    assert_eq!(ids("doc->b->0=eq.3"), json!([3]));
    assert_eq!(ids("doc->>a=in.(1,2)"), json!([1, 2]));
    assert_eq!(ids("doc->b=cs.[2]"), json!([1]));
    assert_eq!(ids("or=(doc->>a.eq.2,doc->b->>0.eq.3)"), json!([2, 3]));
    assert_eq!(read("select=id&id=lt.4&order=doc->>a.desc.nullslast"), json!([{"id": 2}, {"id": 1}, {"id": 3}]));
    // Keys are values, never SQL.
    assert_eq!(ids("doc->>a'; DROP TABLE items; --=is.null"), json!([1, 2, 3, 4]));
    assert_eq!(refused_url("doc->>a');--=is.null")["code"], "PGRST100");
    let (status, _, _) = http(proxy(), "GET", &url("/items?select=doc->"), &[], None);
    assert_eq!(status, 400);
}
