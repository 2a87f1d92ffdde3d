//! The log format: logfmt, one line per event, on stderr. Every line starts
//! `ts=… level=…`; a request's line (target `clerk_proxy::access`, level
//! info) is
//!
//! ```text
//! ts=2026-11-24T10:00:00.123Z level=info msg=request method=GET path=/orders status=200 duration_ms=3.1 route=orders user=user_2abc ip=10.0.0.7
//! ```
//!
//! and any other line is `ts=… level=… target=… msg="…"`. What a request
//! line leaves out on purpose: the query string (filter values are user
//! data), every header (the token, cookies), the body.

use std::borrow::Cow;
use std::fmt::Write;

/// The log target of request lines (`log-level = info` shows them).
pub const TARGET: &str = "clerk_proxy::access";

/// One answered request.
pub struct Entry<'a> {
    pub method: &'a str,
    /// Without the query string.
    pub path: &'a str,
    pub status: u16,
    pub duration: std::time::Duration,
    /// The metrics' route label.
    pub route: &'a str,
    /// The verified token's `sub`; None: anonymous (or refused before
    /// the token was verified).
    pub user: Option<&'a str>,
    pub ip: Option<std::net::IpAddr>,
}

/// The `key=value …` part of a request line.
pub fn request_fields(e: &Entry) -> String {
    let mut line = String::new();
    let _ = write!(
        line,
        "msg=request method={} path={} status={} duration_ms={:.1} route={} user={}",
        value(e.method),
        value(e.path),
        e.status,
        e.duration.as_secs_f64() * 1000.0,
        value(e.route),
        value(e.user.unwrap_or("anon")),
    );
    if let Some(ip) = e.ip {
        let _ = write!(line, " ip={ip}");
    }
    line
}

/// A logfmt value: bare when it can be, else quoted with `"` and `\`
/// escaped; control characters are escaped so a value cannot forge a line.
pub fn value(v: &str) -> Cow<'_, str> {
    let bare = !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if bare {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// The whole line for a log record (`ts` is added by the caller).
pub fn record_fields(level: log::Level, target: &str, message: &str) -> String {
    let level = level.as_str().to_ascii_lowercase();
    if target == TARGET {
        format!("level={level} {message}")
    } else {
        format!("level={level} target={} msg={}", value(target), value(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn request_line_is_logfmt_and_says_anon() {
        let e = Entry {
            method: "GET",
            path: "/orders",
            status: 200,
            duration: Duration::from_micros(3140),
            route: "orders",
            user: None,
            ip: Some([10, 0, 0, 7].into()),
        };
        assert_eq!(request_fields(&e), "msg=request method=GET path=/orders status=200 duration_ms=3.1 route=orders user=anon ip=10.0.0.7");
        let e = Entry { user: Some("user_2abc"), ip: None, path: "/a b\"\n", ..e };
        assert_eq!(
            request_fields(&e),
            "msg=request method=GET path=\"/a b\\\"\\n\" status=200 duration_ms=3.1 route=orders user=user_2abc"
        );
    }

    #[test]
    fn other_records_quote_their_message() {
        assert_eq!(
            record_fields(log::Level::Warn, "clerk_proxy::db", "closed: x=1"),
            "level=warn target=clerk_proxy::db msg=\"closed: x=1\""
        );
        assert_eq!(record_fields(log::Level::Info, TARGET, "msg=request status=200"), "level=info msg=request status=200");
        assert_eq!(value("a\u{1b}b"), "\"a\\u{1b}b\"");
        assert_eq!(value(""), "\"\"");
    }
}
