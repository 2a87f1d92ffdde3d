//! `clerk-jwks-url`: the instance's JWKS over HTTPS, fetched at start-up
//! and again when a token names a key we do not have (Clerk rotated its
//! keys), at most once per `clerk-jwks-refresh-interval` (30 s). If the
//! endpoint is down the keys already fetched keep working.

use clerk_jwt::KeySet;
use std::time::Duration;

#[derive(Clone)]
pub struct RemoteJwks {
    pub url: String,
    agent: ureq::Agent,
}

impl RemoteJwks {
    pub fn new(url: &str) -> RemoteJwks {
        let config = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build();
        RemoteJwks { url: url.to_owned(), agent: config.into() }
    }

    /// Fetches and parses the key set (blocking; call off the async path).
    pub fn fetch(&self) -> Result<KeySet, String> {
        let mut response = self.agent.get(&self.url).call().map_err(|e| format!("cannot fetch {}: {e}", self.url))?;
        let text = response.body_mut().read_to_string().map_err(|e| format!("cannot read {}: {e}", self.url))?;
        KeySet::from_jwks(&text).map_err(|e| format!("{}: {e}", self.url))
    }
}
