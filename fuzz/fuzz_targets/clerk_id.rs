//! Arbitrary bytes → the id validation behind the input, receive and cast
//! functions of clerk_user_id / clerk_org_id / clerk_session_id
//! (pg_clerk/src/clerk_id.rs, included by path: the pure module, without
//! the pgrx symbols the extension needs a Postgres backend for).
//!
//! Never panics, and agrees with an independent statement of the rule in
//! the README: the type's lower-case prefix, then one or more ASCII letters
//! or digits, at most 64 bytes in all.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../pg_clerk/src/clerk_id.rs"]
#[allow(dead_code)]
mod clerk_id;

use clerk_id::IdKind;

const KINDS: [(IdKind, &[u8], &str); 3] = [
    (IdKind::User, b"user_", "clerk_user_id"),
    (IdKind::Org, b"org_", "clerk_org_id"),
    (IdKind::Session, b"sess_", "clerk_session_id"),
];

fn valid(prefix: &[u8], value: &[u8]) -> bool {
    value.len() <= 64
        && value.len() > prefix.len()
        && &value[..prefix.len()] == prefix
        && value[prefix.len()..].iter().all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'))
}

fn check(kind: IdKind, prefix: &[u8], sql_type: &str, value: &[u8]) {
    let result = kind.validate(value);
    assert_eq!(result.is_ok(), valid(prefix, value), "{sql_type} {:?}: {result:?}", String::from_utf8_lossy(value));
    if let Err(e) = result {
        // The message and the DETAIL line are built for every rejection.
        assert!(e.to_string().contains(sql_type), "{e}");
        let detail = e.detail();
        assert!(!detail.is_empty());
        if value.len() > 64 {
            assert!(detail.contains(&format!("{} bytes", value.len())), "{detail}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Random bytes rarely start with a prefix: the first byte may pick a
    // kind whose prefix is put in front, so the part after it gets explored.
    if let Some((&first, rest)) = data.split_first() {
        let (kind, prefix, sql_type) = KINDS[usize::from(first % 3)];
        if first & 0x80 != 0 {
            let mut with_prefix = prefix.to_vec();
            with_prefix.extend_from_slice(rest);
            for (k, p, t) in KINDS {
                check(k, p, t, &with_prefix);
            }
        } else {
            check(kind, prefix, sql_type, rest);
        }
    }
    for (kind, prefix, sql_type) in KINDS {
        check(kind, prefix, sql_type, data);
    }
});
