//! `jwt-role-claim-key`: where in the claims the database role is, in
//! PostgREST's JSPath: `.role`, `.metadata.db_role`, `."https://x.com/role"`,
//! array indexes `.roles[0]`, a filter that picks the first string of an
//! array that matches: `.roles[?(@ == "admin")]`, with `==`, `!=`, `^==`
//! (starts with), `==^` (ends with), `*==` (contains), and a slice of the
//! value found, as Python slices: `.role[3:]`, `.roles[0][:-1]`. A leading
//! `$` (JSONPath's root) is accepted.

use serde_json::{Map, Value};

/// The verified claims (`clerk_jwt::Claims`).
type Claims = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Filter(Condition, String),
    /// `[a:b]` of a string (characters) or an array; negative counts from the end.
    Slice(Option<i64>, Option<i64>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Equals,
    NotEquals,
    StartsWith,
    EndsWith,
    Contains,
}

impl Condition {
    /// Longest first, so `==^` is not read as `==`. Ends-with is spelt
    /// `==^` in PostgREST's documentation and `$==` in some of its releases.
    const SYNTAX: [(&'static str, Condition); 6] = [
        ("^==", Condition::StartsWith),
        ("==^", Condition::EndsWith),
        ("$==", Condition::EndsWith),
        ("*==", Condition::Contains),
        ("==", Condition::Equals),
        ("!=", Condition::NotEquals),
    ];

    fn holds(self, text: &str, operand: &str) -> bool {
        match self {
            Condition::Equals => text == operand,
            Condition::NotEquals => text != operand,
            Condition::StartsWith => text.starts_with(operand),
            Condition::EndsWith => text.ends_with(operand),
            Condition::Contains => text.contains(operand),
        }
    }

    fn syntax(self) -> &'static str {
        Condition::SYNTAX.iter().find(|(_, c)| *c == self).map(|(s, _)| *s).expect("every condition has its syntax")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<Step>);

impl ClaimPath {
    pub fn parse(text: &str) -> Result<ClaimPath, String> {
        let mut steps = Vec::new();
        let mut rest = text.trim();
        rest = rest.strip_prefix('$').filter(|r| r.starts_with(['.', '['])).unwrap_or(rest);
        while !rest.is_empty() {
            if let Some(filter) = rest.strip_prefix("[?(@") {
                let (step, tail) = parse_filter(filter)?;
                steps.push(step);
                rest = tail;
            } else if let Some(index) = rest.strip_prefix('[') {
                let end = index.find(']').ok_or("unterminated [index]")?;
                let inside = &index[..end];
                let bound = |b: &str| -> Result<Option<i64>, String> {
                    if b.trim().is_empty() {
                        return Ok(None);
                    }
                    b.trim().parse::<i64>().map(Some).map_err(|_| format!("\"[{inside}]\" is not a slice"))
                };
                match inside.split_once(':') {
                    Some((from, to)) => steps.push(Step::Slice(bound(from)?, bound(to)?)),
                    None => steps.push(Step::Index(inside.parse::<usize>().map_err(|_| format!("\"[{inside}]\" is not an array index"))?)),
                }
                rest = &index[end + 1..];
            } else {
                rest = rest.strip_prefix('.').ok_or_else(|| format!("expected '.' at \"{rest}\" (e.g. .role or .metadata.role)"))?;
                let (key, tail) = if let Some(quoted) = rest.strip_prefix('"') {
                    let end = quoted.find('"').ok_or("unterminated quoted segment")?;
                    (&quoted[..end], &quoted[end + 1..])
                } else {
                    let end = rest.find(['.', '[']).unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                };
                if key.is_empty() {
                    return Err("empty segment".into());
                }
                steps.push(Step::Key(key.to_owned()));
                rest = tail;
            }
        }
        match steps.first() {
            None => Err("empty path".into()),
            Some(Step::Key(_)) => Ok(ClaimPath(steps)),
            Some(_) => Err("the path starts with a key (e.g. .roles[0])".into()),
        }
    }

    /// The role at this path, which must be a non-empty string.
    pub fn lookup(&self, claims: &Claims) -> Result<String, String> {
        let Some(Step::Key(first)) = self.0.first() else { unreachable!("parse makes paths that start with a key") };
        let mut value = claims.get(first).cloned();
        for step in &self.0[1..] {
            value = value.and_then(|v| match step {
                Step::Key(key) => v.get(key).cloned(),
                Step::Index(i) => v.get(i).cloned(),
                Step::Filter(condition, operand) => {
                    v.as_array()?.iter().find(|item| item.as_str().is_some_and(|text| condition.holds(text, operand))).cloned()
                }
                Step::Slice(from, to) => match &v {
                    Value::String(text) => {
                        let chars: Vec<char> = text.chars().collect();
                        let (a, b) = slice_bounds(chars.len(), *from, *to);
                        Some(Value::String(chars[a..b].iter().collect()))
                    }
                    Value::Array(items) => {
                        let (a, b) = slice_bounds(items.len(), *from, *to);
                        Some(Value::Array(items[a..b].to_vec()))
                    }
                    _ => None,
                },
            });
        }
        match value {
            Some(Value::String(role)) if !role.is_empty() => Ok(role.clone()),
            _ => Err(format!("the token has no role at {}", self.display())),
        }
    }

    fn display(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Step::Key(k) if k.contains(|c: char| !(c.is_alphanumeric() || c == '_')) => format!(".\"{k}\""),
                Step::Key(k) => format!(".{k}"),
                Step::Index(i) => format!("[{i}]"),
                Step::Filter(c, operand) => format!("[?(@ {} \"{operand}\")]", c.syntax()),
                Step::Slice(from, to) => {
                    format!("[{}:{}]", from.map(|n| n.to_string()).unwrap_or_default(), to.map(|n| n.to_string()).unwrap_or_default())
                }
            })
            .collect()
    }
}

/// Python's slice bounds of `[from:to]` on `len` items, as a range that
/// is always valid (empty when it selects nothing).
fn slice_bounds(len: usize, from: Option<i64>, to: Option<i64>) -> (usize, usize) {
    let at = |n: i64| if n < 0 { (len as i64 + n).max(0) as usize } else { (n as usize).min(len) };
    let a = from.map_or(0, at);
    let b = to.map_or(len, at);
    (a, b.max(a))
}

/// `[?(@ == "admin")]` after `[?(@`: the step and what follows it.
fn parse_filter(text: &str) -> Result<(Step, &str), String> {
    let bad = || format!("expected a filter like [?(@ == \"admin\")] at \"[?(@{text}\"");
    let text = text.trim_start();
    let (condition, rest) =
        Condition::SYNTAX.iter().find_map(|(syntax, c)| text.strip_prefix(syntax).map(|rest| (*c, rest))).ok_or_else(bad)?;
    let quoted = rest.trim_start().strip_prefix('"').ok_or_else(bad)?;
    let end = quoted.find('"').ok_or_else(bad)?;
    let tail = quoted[end + 1..].trim_start().strip_prefix(")]").ok_or_else(bad)?;
    Ok((Step::Filter(condition, quoted[..end].to_owned()), tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    #[test]
    fn parses_postgrest_paths() {
        assert_eq!(ClaimPath::parse(".role").unwrap().0, [key("role")]);
        assert_eq!(ClaimPath::parse(".metadata.db_role").unwrap().0, [key("metadata"), key("db_role")]);
        assert_eq!(ClaimPath::parse(".\"https://x.com/role\"").unwrap().0, [key("https://x.com/role")]);
        assert_eq!(ClaimPath::parse(".realm_access.roles[1]").unwrap().0, [key("realm_access"), key("roles"), Step::Index(1)]);
        assert_eq!(
            ClaimPath::parse(".roles[?(@ ^== \"db_\")]").unwrap().0,
            [key("roles"), Step::Filter(Condition::StartsWith, "db_".into())]
        );
        assert_eq!(ClaimPath::parse(".roles[?(@==^\"_db\")]").unwrap().0[1], Step::Filter(Condition::EndsWith, "_db".into()));
        assert_eq!(ClaimPath::parse(".roles[?(@ $== \"_db\")]").unwrap().0[1], Step::Filter(Condition::EndsWith, "_db".into()));
        for bad in ["", "role", "..", ".\"open", ".a.", "[0]", ".a[x]", ".a[1", ".a[?(@ = \"x\")]", ".a[?(@ == x)]", ".a[?(@ == \"x\"]"] {
            assert!(ClaimPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn looks_up_a_string_role() {
        let claims = json!({"metadata": {"db_role": "staff", "n": 1}, "roles": ["viewer", "db_admin", "x_db"], "https://x.com/role": "r"})
            .as_object()
            .unwrap()
            .clone();
        let at = |path: &str| ClaimPath::parse(path).unwrap().lookup(&claims);
        assert_eq!(at(".metadata.db_role").unwrap(), "staff");
        assert_eq!(at(".\"https://x.com/role\"").unwrap(), "r");
        assert_eq!(at(".roles[1]").unwrap(), "db_admin");
        assert_eq!(at(".roles[?(@ == \"viewer\")]").unwrap(), "viewer");
        assert_eq!(at(".roles[?(@ != \"viewer\")]").unwrap(), "db_admin");
        assert_eq!(at(".roles[?(@ ^== \"db_\")]").unwrap(), "db_admin");
        assert_eq!(at(".roles[?(@ ==^ \"_db\")]").unwrap(), "x_db");
        assert_eq!(at(".roles[?(@ *== \"admin\")]").unwrap(), "db_admin");
        assert!(at(".roles[?(@ == \"root\")]").unwrap_err().contains(".roles[?(@ == \"root\")]"));
        assert!(at(".roles[9]").is_err());
        assert!(at(".metadata.n").is_err());
        assert!(at(".nope").is_err());
        assert!(at(".metadata[0]").is_err());
        // Slices of the value found, as Python's; `$` as JSONPath's root.
        let claims = json!({"role": "app_db_admin", "roles": ["x", "db_admin"]}).as_object().unwrap().clone();
        let at = |path: &str| ClaimPath::parse(path).unwrap().lookup(&claims);
        assert_eq!(at(".role[4:]").unwrap(), "db_admin");
        assert_eq!(at(".role[:-6]").unwrap(), "app_db");
        assert_eq!(at(".role[-5:]").unwrap(), "admin");
        assert_eq!(at(".roles[-1:][0]").unwrap(), "db_admin");
        assert_eq!(at("$.roles[?(@ ^== \"db\")][3:]").unwrap(), "admin");
        assert!(at(".role[20:]").is_err(), "an empty slice is no role");
        assert!(ClaimPath::parse(".role[a:b]").is_err());
        assert_eq!(ClaimPath::parse(".role[1:-1]").unwrap().display(), ".role[1:-1]");
    }
}
