//! Arbitrary bytes → clerk-proxy's query-string grammar (proxy/src/request.rs):
//! `parse_target`, `parse_query` (table and RPC), `parse_prefer` and
//! `parse_range` must never panic, whatever the client sends; each either
//! parses or returns a `ParseError` (a 400).
//!
//! The module is included by path rather than through the clerk-proxy
//! crate: it is pure (its only dependency is percent-encoding), and this
//! keeps the instrumented build to a few crates instead of Pingora's tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proxy/src/request.rs"]
#[allow(dead_code)]
mod request;

fuzz_target!(|data: &[u8]| {
    // The proxy hands these functions &str (URI parts and header values);
    // invalid UTF-8 never reaches them, so map it the way a client could.
    let text = String::from_utf8_lossy(data);
    // The whole input as each part of a request; with a newline, the first
    // line is the path and the rest the query string, as in `path?query`.
    let (path, query) = text.split_once('\n').unwrap_or((&text, &text));
    let _ = request::parse_target(path);
    let _ = request::parse_target(&text);
    for is_rpc in [false, true] {
        match request::parse_query(query, is_rpc) {
            Ok(params) => {
                // Parsing is a function of its input.
                assert_eq!(request::parse_query(query, is_rpc).as_ref().ok(), Some(&params));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let _ = request::parse_prefer(Some(&text));
    match request::parse_range(&text) {
        Ok((_, Some(limit))) => assert!(limit >= 1, "a range always covers at least one row: {text:?}"),
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
