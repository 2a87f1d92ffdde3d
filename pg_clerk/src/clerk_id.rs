//! Clerk identifiers: what a valid `user_…`, `org_…` or `sess_…` id is.
//!
//! Pure Rust, no Postgres: the SQL types in `types.rs` and the claims parser
//! both call `IdKind::validate`, so there is one definition of "valid".

use std::fmt;

/// Longest id accepted, in bytes, prefix included. Clerk's ids are 31–32
/// bytes today; 64 leaves room and bounds index entries.
pub const MAX_ID_LEN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    User,
    Org,
    Session,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::User => "user_",
            IdKind::Org => "org_",
            IdKind::Session => "sess_",
        }
    }

    /// The SQL type that holds this kind of id.
    pub const fn sql_type(self) -> &'static str {
        match self {
            IdKind::User => "clerk_user_id",
            IdKind::Org => "clerk_org_id",
            IdKind::Session => "clerk_session_id",
        }
    }

    /// Checks `value` is `<prefix>` + one or more ASCII letters or digits,
    /// at most `MAX_ID_LEN` bytes.
    pub fn validate(self, value: &[u8]) -> Result<(), IdError> {
        let prefix = self.prefix().as_bytes();
        let reason = if value.len() > MAX_ID_LEN {
            Reason::TooLong(value.len())
        } else if !value.starts_with(prefix) {
            Reason::WrongPrefix
        } else if value.len() == prefix.len() {
            Reason::Empty
        } else if let Some(&b) = value[prefix.len()..].iter().find(|b| !b.is_ascii_alphanumeric()) {
            Reason::BadByte(b)
        } else {
            return Ok(());
        };
        Err(IdError { kind: self, value: String::from_utf8_lossy(value).into_owned(), reason })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Reason {
    TooLong(usize),
    WrongPrefix,
    Empty,
    BadByte(u8),
}

/// A rejected id: says which type, which value and why, so the message
/// is enough to fix the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdError {
    pub kind: IdKind,
    pub value: String,
    reason: Reason,
}

impl IdError {
    /// The "why", for an error's DETAIL line.
    pub fn detail(&self) -> String {
        let prefix = self.kind.prefix();
        match self.reason {
            Reason::TooLong(n) => format!("The value is {n} bytes long; the limit is {MAX_ID_LEN}."),
            Reason::WrongPrefix => format!("A {} starts with \"{prefix}\" (lower case).", self.kind.sql_type()),
            Reason::Empty => format!("Nothing follows \"{prefix}\"."),
            Reason::BadByte(b) if b.is_ascii_graphic() || b == b' ' => {
                format!("'{}' is not allowed: only ASCII letters and digits may follow \"{prefix}\".", b as char)
            }
            Reason::BadByte(b) => {
                format!("Byte 0x{b:02x} is not allowed: only ASCII letters and digits may follow \"{prefix}\".")
            }
        }
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Long values are cut in the message; the detail gives the length.
        let shown: String = self.value.chars().take(80).collect();
        let ellipsis = if shown.len() < self.value.len() { "…" } else { "" };
        write!(f, "invalid input syntax for type {}: \"{shown}{ellipsis}\"", self.kind.sql_type())
    }
}

impl std::error::Error for IdError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_clerk_shaped_ids() {
        assert!(IdKind::User.validate(b"user_2NNEqL2nrIRdJ194ndJqAHwEfxC").is_ok());
        assert!(IdKind::User.validate(b"user_1").is_ok());
        assert!(IdKind::Org.validate(b"org_2abc").is_ok());
        assert!(IdKind::Session.validate(b"sess_Z9").is_ok());
        let longest = format!("user_{}", "a".repeat(MAX_ID_LEN - 5));
        assert!(IdKind::User.validate(longest.as_bytes()).is_ok());
    }

    #[test]
    fn rejects_malformed_ids_with_a_reason() {
        for (bad, needle) in [
            ("usr_1", "starts with \"user_\""),
            ("user_", "Nothing follows"),
            ("user_a b", "' ' is not allowed"),
            ("USER_a", "starts with \"user_\""),
            ("user_a-b", "'-' is not allowed"),
            ("user_é", "0xc3"),
            ("org_abc", "starts with \"user_\""),
            ("", "starts with"),
        ] {
            let err = IdKind::User.validate(bad.as_bytes()).unwrap_err();
            assert!(err.detail().contains(needle), "{bad}: {}", err.detail());
            assert!(err.to_string().contains("clerk_user_id"), "{err}");
        }
        let too_long = format!("user_{}", "a".repeat(MAX_ID_LEN - 4));
        let err = IdKind::User.validate(too_long.as_bytes()).unwrap_err();
        assert!(err.detail().contains("65 bytes"), "{}", err.detail());
    }

    #[test]
    fn kinds_do_not_accept_each_other() {
        assert!(IdKind::Org.validate(b"user_1").is_err());
        assert!(IdKind::Session.validate(b"org_1").is_err());
        assert!(IdKind::User.validate(b"sess_1").is_err());
    }
}
