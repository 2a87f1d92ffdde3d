//! Verified JWT claims → the request's Clerk identity.
//!
//! Understands both Clerk session-token versions:
//! - v1: `org_id`, `org_role` (`org:admin`), `org_permissions` (`["org:invoices:read"]`);
//! - v2 (`"v": 2`): compact `o` claim `{id, rol: "admin", per: "read,manage", fpm: "3,2"}`
//!   with the org features in the top-level `fea` claim (`"o:invoices,o:teams"`).
//!
//! Both come out the same: role `org:admin`, permissions `org:<feature>:<permission>`.

use crate::clerk_id::{IdError, IdKind};
use serde_json::{Map, Value};
use std::fmt;

/// Who is making the request, as the claims say. Ids are validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub user: Option<String>,
    pub session: Option<String>,
    pub org: Option<String>,
    /// Canonical Clerk role key, always with the `org:` prefix.
    pub org_role: Option<String>,
    /// Canonical permission keys (`org:feature:permission`), plus any
    /// entries of a custom top-level `permissions` array of strings.
    pub permissions: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClaimsError {
    NotAnObject(String),
    BadId { claim: &'static str, error: IdError },
    WrongType { claim: &'static str, expected: &'static str },
}

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimsError::NotAnObject(why) => write!(f, "request.jwt.claims is not a JSON object: {why}"),
            ClaimsError::BadId { claim, error } => {
                write!(f, "claim \"{claim}\" is not a valid {}: \"{}\"", error.kind.sql_type(), error.value)
            }
            ClaimsError::WrongType { claim, expected } => write!(f, "claim \"{claim}\" must be {expected}"),
        }
    }
}

impl std::error::Error for ClaimsError {}

impl Identity {
    /// Parses the text of `request.jwt.claims`. Empty text (what a
    /// transaction-local setting reads back as afterwards) is anonymous.
    pub fn from_claims_json(text: &str) -> Result<Identity, ClaimsError> {
        if text.trim().is_empty() {
            return Ok(Identity::default());
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(claims)) => Identity::from_claims(&claims),
            Ok(other) => Err(ClaimsError::NotAnObject(format!("found {}", json_kind(&other)))),
            Err(e) => Err(ClaimsError::NotAnObject(e.to_string())),
        }
    }

    pub fn from_claims(claims: &Map<String, Value>) -> Result<Identity, ClaimsError> {
        let mut id = Identity {
            user: id_claim(claims, ("sub", "sub"), IdKind::User)?,
            session: id_claim(claims, ("sid", "sid"), IdKind::Session)?,
            ..Identity::default()
        };
        match claims.get("o") {
            Some(Value::Object(o)) => id.read_v2_org(o, claims)?,
            Some(Value::Null) | None => id.read_v1_org(claims)?,
            Some(_) => return Err(ClaimsError::WrongType { claim: "o", expected: "an object" }),
        }
        if let Some(extra) = claims.get("permissions") {
            id.permissions.extend(string_list(extra, "permissions")?);
        }
        Ok(id)
    }

    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    fn read_v1_org(&mut self, claims: &Map<String, Value>) -> Result<(), ClaimsError> {
        self.org = id_claim(claims, ("org_id", "org_id"), IdKind::Org)?;
        self.org_role = str_claim(claims, ("org_role", "org_role"))?.map(org_prefixed);
        if let Some(perms) = claims.get("org_permissions") {
            self.permissions = string_list(perms, "org_permissions")?;
        }
        Ok(())
    }

    /// v2: permissions are `fea` (org features, in order) × `o.per` (names)
    /// through `o.fpm`: one bitmask per org feature, bit i = `per[i]`.
    fn read_v2_org(&mut self, o: &Map<String, Value>, claims: &Map<String, Value>) -> Result<(), ClaimsError> {
        self.org = id_claim(o, ("id", "o.id"), IdKind::Org)?;
        self.org_role = str_claim(o, ("rol", "o.rol"))?.map(org_prefixed);
        let per = comma_list(str_claim(o, ("per", "o.per"))?);
        let fpm = comma_list(str_claim(o, ("fpm", "o.fpm"))?);
        let features: Vec<&str> = comma_list(str_claim(claims, ("fea", "fea"))?)
            .into_iter()
            .filter_map(|f| f.split_once(':'))
            .filter(|(scope, _)| scope.contains('o'))
            .map(|(_, name)| name)
            .collect();
        for (feature, mask) in features.iter().zip(fpm) {
            let mask: u64 = mask.parse().map_err(|_| ClaimsError::WrongType { claim: "o.fpm", expected: "comma-separated integers" })?;
            for (bit, name) in per.iter().enumerate().take(64) {
                if mask & (1 << bit) != 0 {
                    self.permissions.push(format!("org:{feature}:{name}"));
                }
            }
        }
        Ok(())
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn org_prefixed(role: &str) -> String {
    if role.starts_with("org:") {
        role.to_owned()
    } else {
        format!("org:{role}")
    }
}

fn comma_list(s: Option<&str>) -> Vec<&str> {
    s.map(|s| s.split(',').map(str::trim).filter(|p| !p.is_empty()).collect()).unwrap_or_default()
}

/// A claim's key in its object and its name in messages (`o.rol` for `rol` inside `o`).
type ClaimKey = (&'static str, &'static str);

fn str_claim(claims: &Map<String, Value>, (key, claim): ClaimKey) -> Result<Option<&str>, ClaimsError> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ClaimsError::WrongType { claim, expected: "a string" }),
    }
}

fn id_claim(claims: &Map<String, Value>, key: ClaimKey, kind: IdKind) -> Result<Option<String>, ClaimsError> {
    match str_claim(claims, key)? {
        None => Ok(None),
        Some(s) => match kind.validate(s.as_bytes()) {
            Ok(()) => Ok(Some(s.to_owned())),
            Err(error) => Err(ClaimsError::BadId { claim: key.1, error }),
        },
    }
}

fn string_list(v: &Value, claim: &'static str) -> Result<Vec<String>, ClaimsError> {
    let wrong = || ClaimsError::WrongType { claim, expected: "an array of strings" };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_owned).ok_or_else(wrong)).collect(),
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Identity {
        Identity::from_claims_json(s).unwrap()
    }

    #[test]
    fn empty_and_anonymous_claims() {
        assert_eq!(parse(""), Identity::default());
        assert_eq!(parse(r#"{"role":"anon"}"#), Identity::default());
    }

    #[test]
    fn v1_session_token() {
        let id = parse(
            r#"{"sub":"user_2abc","sid":"sess_9","org_id":"org_7","org_role":"org:admin",
                "org_permissions":["org:invoices:read","org:invoices:create"]}"#,
        );
        assert_eq!(id.user.as_deref(), Some("user_2abc"));
        assert_eq!(id.session.as_deref(), Some("sess_9"));
        assert_eq!(id.org.as_deref(), Some("org_7"));
        assert_eq!(id.org_role.as_deref(), Some("org:admin"));
        assert!(id.has_permission("org:invoices:create"));
        assert!(!id.has_permission("org:invoices:delete"));
    }

    #[test]
    fn v2_session_token_decodes_feature_permission_map() {
        // Clerk's documented example: dashboard = manage+read (3), teams = read (2).
        let id = parse(
            r#"{"v":2,"sub":"user_1","sid":"sess_1","fea":"o:dashboard,o:teams",
                "o":{"id":"org_1","rol":"admin","slg":"acme","per":"manage,read","fpm":"3,2"}}"#,
        );
        assert_eq!(id.org.as_deref(), Some("org_1"));
        assert_eq!(id.org_role.as_deref(), Some("org:admin"));
        let mut perms = id.permissions.clone();
        perms.sort();
        assert_eq!(perms, ["org:dashboard:manage", "org:dashboard:read", "org:teams:read"]);
        assert!(!id.has_permission("org:teams:manage"));
    }

    #[test]
    fn v2_user_features_are_not_org_permissions() {
        let id = parse(r#"{"v":2,"sub":"user_1","fea":"u:beta,o:teams","o":{"id":"org_1","rol":"member","per":"read","fpm":"1"}}"#);
        assert_eq!(id.permissions, ["org:teams:read"]);
    }

    #[test]
    fn custom_permissions_claim_is_added() {
        let id = parse(r#"{"sub":"user_1","permissions":["products:write"]}"#);
        assert!(id.has_permission("products:write"));
    }

    #[test]
    fn invalid_ids_and_shapes_are_errors_not_anonymous() {
        for bad in [
            r#"{"sub":"usr_1"}"#,
            r#"{"sub":"user_1","org_id":"user_2"}"#,
            r#"{"sub":"user_1","sid":"sess_"}"#,
            r#"{"sub":42}"#,
            r#"{"sub":"user_1","org_permissions":"org:a:b"}"#,
            r#"{"sub":"user_1","o":{"id":"org_1","per":"a","fpm":"x"},"fea":"o:f"}"#,
            r#"[1,2]"#,
            r#"{"sub":"#,
        ] {
            assert!(Identity::from_claims_json(bad).is_err(), "{bad}");
        }
        let err = Identity::from_claims_json(r#"{"sub":"usr_1"}"#).unwrap_err();
        assert_eq!(err.to_string(), "claim \"sub\" is not a valid clerk_user_id: \"usr_1\"");
    }
}
