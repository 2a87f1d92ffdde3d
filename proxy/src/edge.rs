//! The edge of a request, before anything else reads it: CORS as PostgREST
//! answers it (the preflight, and the headers on every answer), which
//! client address to believe (`server-trusted-proxies`), and whether a
//! write carrying Clerk's session cookie comes from a page allowed to use
//! it (cross-site request forgery).

use crate::error::ApiError;
use http::{HeaderValue, Response, StatusCode};
use std::net::IpAddr;

/// PostgREST's lists (its `Cors.hs`, through wai-cors).
const ALLOW_METHODS: &str = "GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD";
const EXPOSE_HEADERS: &str =
    "Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit";
const MAX_AGE: &str = "86400";

/// `server-cors-allowed-origins`: empty, any origin (`*`, never with
/// credentials); else exactly these, each echoed with credentials allowed.
#[derive(Debug, Clone)]
pub struct Cors {
    allowed: Vec<String>,
    /// `Access-Control-Expose-Headers`: PostgREST's list (and
    /// `Clerk-Read-After` when reads may go to replicas).
    expose: HeaderValue,
}

impl Default for Cors {
    fn default() -> Cors {
        Cors::new(Vec::new())
    }
}

/// What `Access-Control-Allow-Origin` says to one origin.
enum Grant<'a> {
    Anyone,
    /// A listed origin: echoed, with `Access-Control-Allow-Credentials`.
    Listed(&'a str),
}

impl Cors {
    pub fn new(allowed: Vec<String>) -> Cors {
        Cors { allowed, expose: HeaderValue::from_static(EXPOSE_HEADERS) }
    }

    /// Pages may read `Clerk-Read-After` (`db-replica-uris` is set).
    pub fn exposing_read_after(self) -> Cors {
        let expose = HeaderValue::from_str(&format!("{EXPOSE_HEADERS}, Clerk-Read-After")).expect("a valid header value");
        Cors { expose, ..self }
    }

    fn grant<'a>(&self, origin: &'a str) -> Option<Grant<'a>> {
        if self.allowed.is_empty() {
            Some(Grant::Anyone)
        } else {
            self.allowed.iter().any(|o| o == origin).then_some(Grant::Listed(origin))
        }
    }

    /// Whether `origin` is one of `server-cors-allowed-origins`.
    pub fn lists(&self, origin: &str) -> bool {
        self.allowed.iter().any(|o| o == origin)
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and an
    /// allowed `Access-Control-Request-Method`): 200, no body, no database
    /// work. None: not a preflight PostgREST's middleware answers (the
    /// request goes on, as there).
    pub fn preflight(&self, method: &str, header: impl Fn(&str) -> Option<String>) -> Option<Response<Vec<u8>>> {
        if method != "OPTIONS" {
            return None;
        }
        let origin = header("origin")?;
        let requested = header("access-control-request-method")?;
        if !ALLOW_METHODS.split(", ").any(|m| m == requested.trim()) {
            return None;
        }
        let grant = self.grant(&origin)?;
        let mut response = Response::builder().status(StatusCode::OK).body(Vec::new()).expect("valid response");
        set_origin(&mut response, &grant);
        let headers = response.headers_mut();
        headers.insert("access-control-allow-methods", HeaderValue::from_static(ALLOW_METHODS));
        if let Some(asked) = header("access-control-request-headers") {
            // Authorization, what was asked (as asked), then the simple headers.
            let asked: Vec<&str> = asked.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
            let mut allow = vec!["Authorization"];
            allow.extend(asked);
            allow.extend(["Accept", "Accept-Language", "Content-Language"]);
            if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                headers.insert("access-control-allow-headers", v);
            }
        }
        headers.insert("access-control-max-age", HeaderValue::from_static(MAX_AGE));
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        Some(response)
    }

    /// The CORS headers of an answer to a request from `origin` (none for
    /// an origin that is not allowed: the browser then keeps the answer
    /// from the page).
    pub fn decorate(&self, origin: Option<&str>, response: &mut Response<Vec<u8>>) {
        let Some(grant) = origin.and_then(|o| self.grant(o)) else { return };
        set_origin(response, &grant);
        response.headers_mut().insert("access-control-expose-headers", self.expose.clone());
    }
}

fn set_origin(response: &mut Response<Vec<u8>>, grant: &Grant) {
    let headers = response.headers_mut();
    match grant {
        Grant::Anyone => {
            headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        }
        Grant::Listed(origin) => {
            if let Ok(v) = HeaderValue::from_str(origin) {
                headers.insert("access-control-allow-origin", v);
                headers.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
            }
        }
    }
}

/// A write authenticated by Clerk's session cookie is refused unless its
/// page's `Origin` is the API's own (http or https, this `Host`) or a listed
/// one: browsers attach the cookie to requests other sites make. Without
/// `Origin` (browsers send it with every write), `Sec-Fetch-Site` saying
/// another site is refused too; a request with neither is not a browser's.
pub fn check_cookie_write(
    cors: &Cors,
    method: &str,
    origin: Option<&str>,
    host: Option<&str>,
    fetch_site: Option<&str>,
) -> Result<(), ApiError> {
    if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    let from_elsewhere = match origin {
        None => matches!(fetch_site.map(str::trim), Some("cross-site" | "same-site")),
        Some(origin) => {
            let own = host.is_some_and(|h| {
                origin
                    .split_once("://")
                    .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest.eq_ignore_ascii_case(h.trim()))
            });
            !own && !cors.lists(origin)
        }
    };
    if !from_elsewhere {
        return Ok(());
    }
    Err(ApiError::cookie_write_refused(origin.unwrap_or("another site")))
}

/// supabase-js puts the API under `/rest/v1/`: those paths are served as
/// at the root (`/rest/v1` → `/`, `/rest/v1/orders` → `/orders`).
pub fn api_path(path: &str) -> &str {
    match path.strip_prefix("/rest/v1") {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// `server-trusted-proxies`: address ranges whose client-address header
/// (`server-trusted-proxy-header`) is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<Cidr>,
    header: ForwardedHeader,
}

/// The one header a trusted proxy states the client's address in. Only
/// that one: a proxy that sets one passes the other on as the client sent it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// Each proxy appends the address it saw (nginx's
    /// `$proxy_add_x_forwarded_for`, HAProxy's `option forwardfor`).
    #[default]
    XForwardedFor,
    /// The proxy replaces it with the address it saw (`X-Real-IP $remote_addr`).
    XRealIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `::1/128`, or an address alone (the whole address).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Cidr { network: address, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, normalise(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(u32::from(n) as u128, u32::from(a) as u128, self.prefix, 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(u128::from(n), u128::from(a), self.prefix, 128),
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    let shift = bits - prefix as u32;
    shift >= bits || (a >> shift) == (b >> shift)
}

/// IPv4 peers accepted on an IPv6 socket arrive as `::ffff:a.b.c.d`.
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl TrustedProxies {
    pub fn new(ranges: Vec<Cidr>, header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies { ranges, header }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// The client's address: the TCP peer, unless the peer is a trusted
    /// proxy; then, from its header, the last `X-Forwarded-For` hop that
    /// is not a trusted proxy (earlier entries are the client's to write),
    /// or `X-Real-IP`; the peer when the header says nothing usable.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>, real_ip: Option<&str>) -> Option<IpAddr> {
        let peer = peer.map(normalise)?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let stated = match self.header {
            ForwardedHeader::XForwardedFor => forwarded_for.and_then(|chain| {
                let hops: Vec<IpAddr> = chain.split(',').filter_map(|h| h.trim().parse().ok()).map(normalise).collect();
                hops.iter().rev().find(|h| !self.trusts(**h)).or(hops.first()).copied()
            }),
            ForwardedHeader::XRealIp => real_ip.and_then(|r| r.trim().parse().ok()).map(normalise),
        };
        Some(stated.unwrap_or(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    fn get<'a>(r: &'a Response<Vec<u8>>, name: &str) -> Option<&'a str> {
        r.headers().get(name).map(|v| v.to_str().unwrap())
    }

    // PostgREST's CorsSpec: "replies naively and permissively to preflight request".
    #[test]
    fn preflight_as_postgrest_answers_it() {
        let cors = Cors::default();
        let asked =
            [("origin", "http://example.com"), ("access-control-request-method", "POST"), ("access-control-request-headers", "Foo,Bar")];
        let r = cors.preflight("OPTIONS", header(&asked)).unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.body().is_empty());
        assert_eq!(get(&r, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&r, "access-control-allow-methods"), Some("GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD"));
        assert_eq!(get(&r, "access-control-allow-headers"), Some("Authorization, Foo, Bar, Accept, Accept-Language, Content-Language"));
        assert_eq!(get(&r, "access-control-max-age"), Some("86400"));
        assert_eq!(get(&r, "access-control-allow-credentials"), None);
        // Not preflights: no Origin, no requested method, a method not allowed.
        assert!(cors.preflight("OPTIONS", header(&[("access-control-request-method", "POST")])).is_none());
        assert!(cors.preflight("OPTIONS", header(&[("origin", "http://example.com")])).is_none());
        assert!(cors.preflight("OPTIONS", header(&[("origin", "http://e.com"), ("access-control-request-method", "TRACE")])).is_none());
        assert!(cors.preflight("GET", header(&asked)).is_none());
    }

    #[test]
    fn listed_origins_are_echoed_with_credentials_and_others_get_nothing() {
        let cors = Cors::new(vec!["http://example.com".into(), "http://example2.com".into()]);
        let r = cors.preflight("OPTIONS", header(&[("origin", "http://example.com"), ("access-control-request-method", "POST")])).unwrap();
        assert_eq!(get(&r, "access-control-allow-origin"), Some("http://example.com"));
        assert_eq!(get(&r, "access-control-allow-credentials"), Some("true"));
        assert!(cors
            .preflight("OPTIONS", header(&[("origin", "http://invalid.com"), ("access-control-request-method", "POST")]))
            .is_none());
        let mut answer = Response::new(Vec::new());
        cors.decorate(Some("http://invalid.com"), &mut answer);
        assert!(answer.headers().is_empty());
        cors.decorate(Some("http://example2.com"), &mut answer);
        assert_eq!(get(&answer, "access-control-allow-origin"), Some("http://example2.com"));
        assert_eq!(get(&answer, "access-control-expose-headers"), Some(EXPOSE_HEADERS));
        let mut any = Response::new(Vec::new());
        Cors::default().decorate(Some("http://anyone.example"), &mut any);
        assert_eq!((get(&any, "access-control-allow-origin"), get(&any, "access-control-allow-credentials")), (Some("*"), None));
        let mut no_origin = Response::new(Vec::new());
        Cors::default().decorate(None, &mut no_origin);
        assert!(no_origin.headers().is_empty());
    }

    #[test]
    fn cookie_writes_only_from_the_api_or_listed_origins() {
        let cors = Cors::new(vec!["https://shop.example".into()]);
        let host = Some("api.example:3000");
        let write = |cors: &Cors, method, origin, site| check_cookie_write(cors, method, origin, host, site);
        assert!(write(&cors, "POST", Some("https://evil.example"), None).is_err());
        assert_eq!(write(&cors, "DELETE", Some("null"), None).unwrap_err().status, 403);
        assert!(write(&cors, "POST", Some("https://shop.example"), None).is_ok());
        assert!(write(&cors, "PATCH", Some("http://api.example:3000"), None).is_ok());
        assert!(write(&cors, "PATCH", Some("ftp://api.example:3000"), None).is_err(), "own host, not an own origin");
        assert!(write(&cors, "GET", Some("https://evil.example"), None).is_ok());
        assert!(write(&cors, "POST", None, None).is_ok(), "not from a browser");
        assert!(write(&cors, "POST", None, Some("same-origin")).is_ok());
        assert!(write(&cors, "POST", None, Some("cross-site")).is_err());
        assert!(write(&cors, "POST", None, Some("same-site")).is_err());
        // Unset: any origin may read, not write with the cookie.
        assert!(write(&Cors::default(), "POST", Some("https://evil.example"), None).is_err());
    }

    #[test]
    fn supabase_paths_are_the_root_paths() {
        for (given, served) in [
            ("/rest/v1", "/"),
            ("/rest/v1/", "/"),
            ("/rest/v1/orders", "/orders"),
            ("/rest/v1/rpc/f", "/rpc/f"),
            ("/rest/v1x", "/rest/v1x"),
            ("/orders", "/orders"),
            ("/rest/v2/orders", "/rest/v2/orders"),
        ] {
            assert_eq!(api_path(given), served, "{given}");
        }
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(Some(ip("198.51.100.7")), Some("203.0.113.66"), Some("203.0.113.67")), Some(ip("198.51.100.7")));
        let ranges = vec![Cidr::parse("10.0.0.0/8").unwrap(), Cidr::parse("::1").unwrap()];
        let lb = TrustedProxies::new(ranges.clone(), ForwardedHeader::XForwardedFor);
        assert_eq!(lb.client_ip(Some(ip("10.1.2.3")), Some("203.0.113.66, 198.51.100.7, 10.0.0.9"), None), Some(ip("198.51.100.7")));
        assert_eq!(lb.client_ip(Some(ip("::1")), Some("garbage"), None), Some(ip("::1")));
        // Only the configured header: X-Real-IP is the client's to write here.
        assert_eq!(lb.client_ip(Some(ip("::ffff:10.1.2.3")), None, Some("198.51.100.8")), Some(ip("10.1.2.3")));
        let real_ip = TrustedProxies::new(ranges, ForwardedHeader::XRealIp);
        assert_eq!(real_ip.client_ip(Some(ip("10.1.2.3")), Some("1.2.3.4"), Some("198.51.100.8")), Some(ip("198.51.100.8")));
        assert_eq!(real_ip.client_ip(Some(ip("10.1.2.3")), Some("1.2.3.4"), None), Some(ip("10.1.2.3")));
        assert_eq!(lb.client_ip(Some(ip("192.0.2.1")), Some("10.0.0.1"), None), Some(ip("192.0.2.1")));
        for bad in ["10.0.0.0/33", "x", "::/129", ""] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }
}
