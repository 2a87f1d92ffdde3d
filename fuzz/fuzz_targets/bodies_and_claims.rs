//! Arbitrary bytes → the CSV request-body reader (proxy/src/body.rs) and
//! the `jwt-role-claim-key` JSPath (proxy/src/auth/role.rs): neither may
//! panic. CSV either reads into rows that each have the header's keys or
//! is refused; a path that parses looks up arbitrary claims without
//! panicking and finds a non-empty string or nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proxy/src/body.rs"]
#[allow(dead_code)]
mod body;

#[path = "../../proxy/src/auth/role.rs"]
#[allow(dead_code)]
mod role;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(serde_json::Value::Array(rows)) = body::csv_rows(&text) {
        let header = text.lines().next().unwrap_or_default();
        for row in &rows {
            let keys = row.as_object().expect("each CSV row is an object").len();
            assert!(keys >= 1 && keys <= header.len() + 1, "{text:?}");
        }
    }
    // With a newline: the path, then claims as JSON.
    let (path, claims) = text.split_once('\n').unwrap_or((&text, "{\"role\": \"x\", \"roles\": [\"a\", 1, \"db_b\"]}"));
    if let Ok(path) = role::ClaimPath::parse(path) {
        if let Ok(serde_json::Value::Object(claims)) = serde_json::from_str(claims) {
            if let Ok(role) = path.lookup(&claims) {
                assert!(!role.is_empty());
            }
        }
    }
});
