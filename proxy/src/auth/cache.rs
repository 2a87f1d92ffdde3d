//! Verified tokens, kept until they expire, keyed by the SHA-256 of the
//! token (the token itself is never stored). Bounded: when full, expired
//! entries go first, then the ones closest to expiry.

use clerk_jwt::Claims;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

type Entry = (Arc<Claims>, Arc<str>, u64);

pub struct TokenCache {
    max_entries: usize,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl TokenCache {
    pub fn new(max_entries: usize) -> TokenCache {
        TokenCache { max_entries, entries: Mutex::new(HashMap::new()) }
    }

    /// The claims of a token verified before, if it has not expired since.
    pub fn get(&self, token: &str) -> Option<(Arc<Claims>, Arc<str>)> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key) {
            Some((claims, json, exp)) if *exp > now() => Some((claims.clone(), json.clone())),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers a verified token's claims; returns them with their JSON text.
    pub fn insert(&self, token: &str, claims: Claims) -> (Arc<Claims>, Arc<str>) {
        let json: Arc<str> = serde_json::Value::Object(claims.clone()).to_string().into();
        let exp = claims.get("exp").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let claims = Arc::new(claims);
        if self.max_entries == 0 {
            return (claims, json);
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max_entries {
            let t = now();
            entries.retain(|_, (_, _, exp)| *exp > t);
            if entries.len() >= self.max_entries {
                // Drop the half closest to expiry: amortised O(1) per insert.
                let mut exps: Vec<u64> = entries.values().map(|(_, _, e)| *e).collect();
                exps.sort_unstable();
                let cutoff = exps[exps.len() / 2];
                entries.retain(|_, (_, _, e)| *e > cutoff);
            }
        }
        entries.insert(Sha256::digest(token.as_bytes()).into(), (claims.clone(), json.clone(), exp));
        (claims, json)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(exp: u64) -> Claims {
        json!({"sub": "user_1", "exp": exp}).as_object().unwrap().clone()
    }

    #[test]
    fn never_serves_an_expired_token() {
        let cache = TokenCache::new(10);
        cache.insert("expired", claims(now() - 1));
        assert!(cache.get("expired").is_none());
        cache.insert("fresh", claims(now() + 60));
        assert!(cache.get("fresh").is_some());
    }

    #[test]
    fn stays_within_its_bound() {
        let cache = TokenCache::new(100);
        for i in 0..1000 {
            cache.insert(&format!("token{i}"), claims(now() + 60 + i));
            assert!(cache.len() <= 100);
        }
        // The newest (latest-expiring) entry survives eviction.
        assert!(cache.get("token999").is_some());
    }

    #[test]
    fn a_zero_size_cache_stores_nothing() {
        let cache = TokenCache::new(0);
        cache.insert("t", claims(now() + 60));
        assert!(cache.get("t").is_none());
    }
}
