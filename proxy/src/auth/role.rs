//! `jwt-role-claim-key`: where in the claims the database role is, in
//! PostgREST's syntax: `.role`, `.metadata.db_role`, `."https://x.com/role"`.

use clerk_jwt::Claims;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    pub fn parse(text: &str) -> Result<ClaimPath, String> {
        let mut segments = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            rest = rest.strip_prefix('.').ok_or_else(|| format!("expected '.' at \"{rest}\" (e.g. .role or .metadata.role)"))?;
            let (segment, tail) = if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted.find('"').ok_or("unterminated quoted segment")?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            if segment.is_empty() {
                return Err("empty segment".into());
            }
            segments.push(segment.to_owned());
            rest = tail;
        }
        if segments.is_empty() {
            return Err("empty path".into());
        }
        Ok(ClaimPath(segments))
    }

    /// The role at this path, which must be a non-empty string.
    pub fn lookup(&self, claims: &Claims) -> Result<String, String> {
        let mut value = claims.get(&self.0[0]);
        for segment in &self.0[1..] {
            value = value.and_then(|v| v.get(segment));
        }
        match value {
            Some(Value::String(role)) if !role.is_empty() => Ok(role.clone()),
            _ => Err(format!("the token has no role at {}", self.display())),
        }
    }

    fn display(&self) -> String {
        self.0.iter().map(|s| format!(".{s}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_postgrest_paths() {
        assert_eq!(ClaimPath::parse(".role").unwrap().0, ["role"]);
        assert_eq!(ClaimPath::parse(".metadata.db_role").unwrap().0, ["metadata", "db_role"]);
        assert_eq!(ClaimPath::parse(".\"https://x.com/role\"").unwrap().0, ["https://x.com/role"]);
        for bad in ["", "role", "..", ".\"open", ".a."] {
            assert!(ClaimPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn looks_up_a_string_role() {
        let claims = json!({"metadata": {"db_role": "staff", "n": 1}}).as_object().unwrap().clone();
        assert_eq!(ClaimPath::parse(".metadata.db_role").unwrap().lookup(&claims).unwrap(), "staff");
        assert!(ClaimPath::parse(".metadata.n").unwrap().lookup(&claims).is_err());
        assert!(ClaimPath::parse(".nope").unwrap().lookup(&claims).is_err());
    }
}
