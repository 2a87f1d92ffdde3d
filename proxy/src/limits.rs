//! Connection limits: `server-max-connections` and
//! `server-max-connections-per-ip`, counted from accept to close, so slow
//! or idle clients cannot hold every socket.
//!
//! Rate limits: `rate-limit-per-ip` (checked first, for every API request
//! but `/live`) and `rate-limit-per-user` (once the token is verified, by
//! its `sub`), in requests per second: exact counts per key in one-second
//! windows (a shared approximate sketch counted other clients' traffic
//! against honest ones under a flood). The map holds the keys seen in the
//! current second only. IPv6 addresses count per /64, the block one
//! subscriber gets, so an attacker cannot take a fresh key per address.

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics;
use http::Response;
use http::StatusCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Open connections, in all and per client address.
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<OpenConnections>,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection counted as open until this is dropped.
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
}

impl ConnectionLimits {
    pub fn from_config(c: &Config) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(c.server_max_connections, c.server_max_connections_per_ip)
    }

    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits { max_total, max_per_ip, open: Mutex::new(OpenConnections::default()) })
    }

    /// Counts a new connection from `ip`, or the answer that refuses it.
    pub fn open(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<ConnectionSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            metrics::count(&metrics::CONNECTIONS_REFUSED_TOTAL);
            return Err(ApiError::http_limit(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many connections",
                format!("the server has {} connections open (server-max-connections)", self.max_total),
            ));
        }
        if let Some(ip) = ip {
            let mine = open.per_ip.entry(ip).or_default();
            if *mine >= self.max_per_ip {
                metrics::count(&metrics::CONNECTIONS_REFUSED_IP);
                return Err(ApiError::http_limit(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many connections from this address",
                    format!("{} connections are open from {ip} (server-max-connections-per-ip)", self.max_per_ip),
                ));
            }
            *mine += 1;
        }
        open.total += 1;
        Ok(ConnectionSlot { limits: self.clone(), ip })
    }

    /// Connections open now.
    pub fn open_count(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(ip) = self.ip {
            if let Some(n) = open.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    open.per_ip.remove(&ip);
                }
            }
        }
    }
}

struct Limit {
    window: Mutex<Window>,
    per_second: u32,
    started: std::time::Instant,
}

/// Requests per key in the current second.
#[derive(Default)]
struct Window {
    second: u64,
    counts: HashMap<u64, u32>,
}

impl Limit {
    fn new(per_second: Option<u32>) -> Option<Limit> {
        per_second.map(|per_second| Limit { window: Mutex::new(Window::default()), per_second, started: std::time::Instant::now() })
    }

    /// Counts one request for `key`; whether it is over the limit.
    fn over<K: std::hash::Hash>(&self, key: &K) -> bool {
        use std::hash::BuildHasher;
        let hash = foldhash::quality::FixedState::with_seed(0x5eed).hash_one(key);
        let second = self.started.elapsed().as_secs();
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if window.second != second {
            window.second = second;
            window.counts.clear();
        }
        let count = window.counts.entry(hash).or_default();
        *count = count.saturating_add(1);
        *count > self.per_second
    }
}

/// The key an address is limited by: IPv4 as is, IPv6 by its /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

pub struct RateLimits {
    per_user: Option<Limit>,
    per_ip: Option<Limit>,
    running: ClientSlots,
}

/// `db-max-connections-per-client`: database work one client (a user's
/// `sub`, else the client address) may have running at once, so one
/// client's expensive requests cannot take the whole pool. None: no cap.
pub struct ClientSlots {
    max: Option<usize>,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// One running request of a client, until dropped.
pub struct ClientSlot {
    running: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl ClientSlots {
    pub fn new(max: Option<usize>) -> ClientSlots {
        ClientSlots { max, running: Arc::default() }
    }

    /// A slot for `key`, or the 429 that says this client is at its cap.
    pub fn take(&self, key: String) -> Result<Option<ClientSlot>, ApiError> {
        let Some(max) = self.max else { return Ok(None) };
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mine = running.entry(key.clone()).or_default();
        if *mine >= max {
            metrics::count(&metrics::RATE_LIMITED_CLIENT);
            return Err(ApiError::client_busy(max));
        }
        *mine += 1;
        Ok(Some(ClientSlot { running: self.running.clone(), key }))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

/// A request over a limit: answered 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// The configuration key that limited it.
    pub key: &'static str,
    pub per_second: u32,
}

impl Limited {
    pub fn into_response(self) -> Response<Vec<u8>> {
        let mut response = ApiError::too_many_requests(self.key, self.per_second).into_response();
        // Counting windows are one second long: the next one starts within 1 s.
        response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        response
    }
}

impl RateLimits {
    pub fn from_config(c: &Config) -> RateLimits {
        RateLimits {
            per_user: Limit::new(c.rate_limit_per_user),
            per_ip: Limit::new(c.rate_limit_per_ip),
            running: ClientSlots::new(c.db_max_connections_per_client),
        }
    }

    /// A slot of `db-max-connections-per-client` for the request's
    /// database work: by the user's `sub`, else by the client address.
    pub fn running(&self, sub: Option<&str>, ip: Option<IpAddr>) -> Result<Option<ClientSlot>, ApiError> {
        let key = match (sub, ip) {
            (Some(sub), _) => format!("user {sub}"),
            (None, Some(ip)) => format!("address {}", ip_key(ip)),
            (None, None) => "anonymous".to_owned(),
        };
        self.running.take(key)
    }

    pub fn check_ip(&self, ip: Option<IpAddr>) -> Result<(), Limited> {
        check(self.per_ip.as_ref(), ip.map(ip_key).as_ref(), "rate-limit-per-ip", &metrics::RATE_LIMITED_IP)
    }

    /// `sub`: the verified token's subject (anonymous requests are limited by address only).
    pub fn check_user(&self, sub: Option<&str>) -> Result<(), Limited> {
        check(self.per_user.as_ref(), sub.as_ref(), "rate-limit-per-user", &metrics::RATE_LIMITED_USER)
    }
}

fn check<K: std::hash::Hash>(limit: Option<&Limit>, key: Option<&K>, name: &'static str, counter: &AtomicU64) -> Result<(), Limited> {
    match (limit, key) {
        (Some(limit), Some(key)) if limit.over(key) => {
            metrics::count(counter);
            Err(Limited { key: name, per_second: limit.per_second })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(user: Option<u32>, ip: Option<u32>) -> RateLimits {
        RateLimits { per_user: Limit::new(user), per_ip: Limit::new(ip), running: ClientSlots::new(None) }
    }

    #[test]
    fn refuses_above_the_limit_per_key_and_answers_429_with_retry_after() {
        let l = limits(Some(3), None);
        for _ in 0..3 {
            assert!(l.check_user(Some("user_a")).is_ok());
        }
        let refused = l.check_user(Some("user_a")).unwrap_err();
        assert_eq!(refused, Limited { key: "rate-limit-per-user", per_second: 3 });
        assert!(l.check_user(Some("user_b")).is_ok(), "another user has a budget of their own");
        assert!(l.check_user(None).is_ok() && l.check_ip(Some([127, 0, 0, 1].into())).is_ok(), "unset limits never refuse");
        let response = refused.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["code"], "PGRST429");
    }

    #[test]
    fn connections_are_capped_per_address_and_in_all_until_they_close() {
        let limits = ConnectionLimits::new(3, 2);
        let (a, b) = (Some(IpAddr::from([10, 0, 0, 1])), Some(IpAddr::from([10, 0, 0, 2])));
        let first = limits.open(a).unwrap();
        let _second = limits.open(a).unwrap();
        assert_eq!(limits.open(a).err().unwrap().status, StatusCode::TOO_MANY_REQUESTS);
        let _third = limits.open(b).unwrap();
        assert_eq!(limits.open(b).err().unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        assert_eq!(limits.open_count(), 2);
        assert!(limits.open(a).is_ok(), "a closed connection frees its slot");
        assert_eq!(limits.open.lock().unwrap().per_ip.len(), 2);
    }

    // Attack run: under a flood from many addresses, a shared sketch refused
    // an honest client at 4 req/s against a limit of 5.
    #[test]
    fn counts_are_exact_per_key_whatever_the_others_send() {
        let l = limits(None, Some(5));
        let honest = Some(IpAddr::from([192, 0, 2, 1]));
        for n in 0..50_000u32 {
            let _ = l.check_ip(Some(IpAddr::from(n.to_be_bytes())));
        }
        for _ in 0..5 {
            assert!(l.check_ip(honest).is_ok());
        }
        assert!(l.check_ip(honest).is_err());
        // One IPv6 /64 is one client.
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        for ip in [a, b, a, b, a] {
            assert!(l.check_ip(Some(ip)).is_ok());
        }
        assert!(l.check_ip(Some(b)).is_err(), "a and b share one budget of 5");
        assert!(l.check_ip(Some(other)).is_ok());
    }

    #[test]
    fn a_client_runs_at_most_its_share_at_once() {
        let slots = ClientSlots::new(Some(2));
        let a = slots.take("user_a".into()).unwrap();
        let _b = slots.take("user_a".into()).unwrap();
        let refused = slots.take("user_a".into()).err().unwrap();
        assert_eq!((refused.status, refused.code.as_ref()), (StatusCode::TOO_MANY_REQUESTS, "PGRST429"));
        assert!(slots.take("user_b".into()).unwrap().is_some(), "another client has slots of its own");
        drop(a);
        assert!(slots.take("user_a".into()).is_ok(), "a finished request frees its slot");
        assert!(ClientSlots::new(None).take("x".into()).unwrap().is_none());
    }

    #[test]
    fn the_window_moves_on() {
        let l = limits(None, Some(1));
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(l.check_ip(ip).is_ok());
        assert!(l.check_ip(ip).is_err());
        std::thread::sleep(Duration::from_millis(1100));
        assert!(l.check_ip(ip).is_ok());
    }
}
