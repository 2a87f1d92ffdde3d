//! Verified tokens, kept until they expire. Bounded: when full, expired
//! entries go first, then the ones closest to expiry.
//!
//! The map is keyed by the token text itself, hashed with foldhash (fast,
//! not cryptographic, randomly seeded per process). A hit therefore needs
//! the exact same token bytes: two tokens that hash alike share a bucket
//! and the map's key comparison tells them apart, so a collision can only
//! cost a probe, never return another token's identity. Hashing the token
//! this way is ~10x cheaper than the SHA-256 it replaces. Only tokens that
//! verified are stored (at most `max_entries`, each at most
//! `clerk_jwt::MAX_TOKEN_BYTES`), and each is dropped at its `exp`.

use clerk_jwt::Claims;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

type Entry = (Arc<Claims>, Arc<str>, u64);

pub struct TokenCache<S = foldhash::fast::RandomState> {
    max_entries: usize,
    entries: Mutex<HashMap<Box<str>, Entry, S>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl TokenCache {
    pub fn new(max_entries: usize) -> TokenCache {
        TokenCache::with_hasher(max_entries, Default::default())
    }
}

impl<S: BuildHasher> TokenCache<S> {
    /// A cache whose map hashes with `hasher` (tests force collisions with it).
    pub fn with_hasher(max_entries: usize, hasher: S) -> TokenCache<S> {
        TokenCache { max_entries, entries: Mutex::new(HashMap::with_hasher(hasher)) }
    }

    /// The claims of a token verified before, if it has not expired since.
    pub fn get(&self, token: &str) -> Option<(Arc<Claims>, Arc<str>)> {
        if self.max_entries == 0 {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // `get` compares the whole stored token with `token`, not just its hash.
        match entries.get(token) {
            Some((claims, json, exp)) if *exp > now() => Some((claims.clone(), json.clone())),
            Some(_) => {
                entries.remove(token);
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
        if entries.len() >= self.max_entries && !entries.contains_key(token) {
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
        entries.insert(token.into(), (claims.clone(), json.clone(), exp));
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

    fn user_claims(sub: &str) -> Claims {
        json!({"sub": sub, "exp": now() + 60}).as_object().unwrap().clone()
    }

    /// Hashes every token to the same value: all entries share one bucket.
    #[derive(Clone, Default)]
    struct Collide;
    impl BuildHasher for Collide {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }
    struct Constant;
    impl std::hash::Hasher for Constant {
        fn finish(&self) -> u64 {
            42
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn never_serves_an_expired_token() {
        let cache = TokenCache::new(10);
        cache.insert("expired", claims(now() - 1));
        assert!(cache.get("expired").is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped when seen");
        cache.insert("fresh", claims(now() + 60));
        assert!(cache.get("fresh").is_some());
    }

    #[test]
    fn colliding_tokens_never_get_each_others_claims() {
        let cache = TokenCache::with_hasher(10, Collide);
        let (alice, bob) = ("header.alice.signature", "header.bob.signature");
        cache.insert(alice, user_claims("user_alice"));
        // Same hash, different bytes: a miss, not Alice's identity.
        assert!(cache.get(bob).is_none());
        assert!(cache.get("header.alice.signaturf").is_none());
        assert!(cache.get("header.alice.signature ").is_none());
        cache.insert(bob, user_claims("user_bob"));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(alice).unwrap().0["sub"], "user_alice");
        assert_eq!(cache.get(bob).unwrap().0["sub"], "user_bob");
        assert!(cache.get(bob).unwrap().1.contains("\"sub\":\"user_bob\""));
    }

    #[test]
    fn a_hit_needs_the_exact_token() {
        let cache = TokenCache::new(10);
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJl";
        cache.insert(token, user_claims("user_1"));
        assert!(cache.get(token).is_some());
        assert!(cache.get(&token[..token.len() - 1]).is_none());
        assert!(cache.get(&format!("{token}A")).is_none());
        assert!(cache.get(&token.to_uppercase()).is_none());
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
