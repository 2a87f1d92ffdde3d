//! Stage 1 of a request: who is calling. The token comes from
//! `Authorization: Bearer …` or Clerk's `__session` cookie; it is verified
//! (`clerk_jwt`), its claims cached until they expire, and mapped to the
//! database role the request runs as. No token means the anonymous role.

mod cache;
mod jwks;
mod role;

use crate::config::{Config, ConfigError};
use cache::TokenCache;
use clerk_jwt::{Claims, KeySet, Rules, TokenError, Verifier};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The verified caller of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Anonymous { role: String },
    User { role: String, claims: Arc<Claims>, claims_json: Arc<str>, credential: Credential },
}

/// Where a user's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer`: a page must send it on purpose.
    Bearer,
    /// Clerk's `__session` cookie: the browser attaches it to requests
    /// other sites make too (`edge::check_cookie_write`).
    SessionCookie,
}

impl Caller {
    pub fn role(&self) -> &str {
        match self {
            Caller::Anonymous { role } | Caller::User { role, .. } => role,
        }
    }
}

pub struct Authenticator {
    verifier: RwLock<Arc<Verifier>>,
    /// Keys from files, PEM and secret; the fetched JWKS is added to them.
    static_keys: KeySet,
    remote: Option<jwks::RemoteJwks>,
    rules: Rules,
    last_fetch: Mutex<Instant>,
    refresh_interval: std::time::Duration,
    cache: TokenCache,
    /// How a verified token's database role is chosen.
    role_source: RoleSource,
    anon_role: Option<String>,
    /// `db-allowed-roles`: what a token's role may be.
    allowed_roles: Vec<String>,
    /// `clerk-publishable-key`: as a bearer token, "no user" (what
    /// supabase-js sends when signed out).
    publishable_key: Option<String>,
}

/// Why a request's credentials were refused (always 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// `Authorization` present but not `Bearer <token>`.
    BadAuthorizationHeader,
    /// No token and no `db-anon-role`.
    AnonymousDisabled,
    Token(TokenError),
    /// The role claim is missing or not a string.
    BadRoleClaim(String),
    /// The role claim names a role outside `db-allowed-roles`.
    RoleNotAllowed(String),
}

impl Authenticator {
    /// Loads the keys named by the configuration (files are read now, so a
    /// bad key stops start-up rather than failing every request).
    pub fn from_config(config: &Config) -> Result<Authenticator, ConfigError> {
        let mut keys = KeySet::default();
        if let Some(path) = &config.clerk_jwks_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("clerk-jwks-file: cannot read {path}: {e}")))?;
            keys = keys.with(KeySet::from_jwks(&text).map_err(|e| ConfigError(format!("clerk-jwks-file {path}: {e}")))?);
        }
        if let Some(pem) = &config.clerk_public_key {
            let pem = match pem.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|e| ConfigError(format!("clerk-public-key: cannot read {path}: {e}")))?
                }
                None => pem.clone(),
            };
            keys = keys.with(KeySet::from_pem(&pem).map_err(|e| ConfigError(format!("clerk-public-key: {e}")))?);
        }
        if let Some(secret) = &config.jwt_secret {
            keys = keys.with(KeySet::hs256(secret.as_bytes()));
        }
        let remote = config.clerk_jwks_url.as_deref().map(jwks::RemoteJwks::new);
        let all_keys = match &remote {
            Some(r) => keys.clone().with(r.fetch().map_err(|e| ConfigError(format!("clerk-jwks-url: {e}")))?),
            None => keys.clone(),
        };
        let rules = Rules {
            issuer: config.clerk_issuer.clone(),
            audience: config.jwt_aud.clone(),
            authorized_parties: config.clerk_authorized_parties.clone(),
            clock_skew_secs: config.clerk_clock_skew,
            accept_jwt_templates: config.clerk_accept_jwt_templates,
            max_lifetime_secs: config.clerk_max_token_lifetime_secs,
        };
        // The configuration refuses both keys at once (`Config::from_raw`).
        let role_source = match (&config.jwt_role_claim_key, &config.db_staff_role) {
            (Some(key), _) => RoleSource::Claim(role::ClaimPath::parse(key).map_err(|e| ConfigError(format!("jwt-role-claim-key: {e}")))?),
            (None, Some(role)) => RoleSource::Staff(StaffRule { role: role.clone(), staff_org: config.clerk_staff_org.clone() }),
            (None, None) => RoleSource::Authenticated,
        };
        Ok(Authenticator {
            verifier: RwLock::new(Arc::new(Verifier::new(all_keys, rules.clone()))),
            static_keys: keys,
            remote,
            rules,
            last_fetch: Mutex::new(Instant::now()),
            refresh_interval: Duration::from_secs(config.clerk_jwks_refresh_interval_secs),
            cache: TokenCache::new(config.jwt_cache_max_entries as usize),
            role_source,
            anon_role: config.db_anon_role.clone(),
            allowed_roles: config.db_allowed_roles.clone(),
            publishable_key: config.clerk_publishable_key.clone(),
        })
    }

    /// Whether requests can be served: some key to verify tokens with, or
    /// anonymous requests only (`db-anon-role` and no key configured).
    pub fn keys_loaded(&self) -> bool {
        self.key_count() > 0 || self.anon_role.is_some()
    }

    /// Verification keys in use (configured and fetched).
    pub fn key_count(&self) -> usize {
        self.verifier().key_count()
    }

    fn verifier(&self) -> Arc<Verifier> {
        self.verifier.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Verifies, and on an unknown key id refetches the JWKS once (rate
    /// limited) and tries again: Clerk may have rotated its keys.
    async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match self.verifier().verify(token) {
            Err(TokenError::UnknownKey(_)) if self.refresh_due() => {
                self.refresh().await;
                self.verifier().verify(token)
            }
            result => result,
        }
    }

    fn refresh_due(&self) -> bool {
        let Some(_) = &self.remote else { return false };
        let mut last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() < self.refresh_interval {
            return false;
        }
        *last = Instant::now();
        true
    }

    /// Refetches the JWKS; on failure the keys we have stay in use.
    async fn refresh(&self) {
        let Some(remote) = self.remote.clone() else { return };
        let url = remote.url.clone();
        let fetched =
            tokio::task::spawn_blocking(move || remote.fetch()).await.unwrap_or_else(|e| Err(format!("the fetch task failed: {e}")));
        match fetched {
            Ok(keys) => {
                let verifier = Verifier::new(self.static_keys.clone().with(keys), self.rules.clone());
                *self.verifier.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(verifier);
                crate::metrics::count(&crate::metrics::JWKS_REFRESH_OK);
                log::info!("refreshed the JWKS from {url}");
            }
            Err(e) => {
                crate::metrics::count(&crate::metrics::JWKS_REFRESH_FAILED);
                log::warn!("JWKS refresh failed, keeping the keys we have: {e}");
            }
        }
    }

    /// Who is calling, from the request's `Authorization` and `Cookie` headers.
    pub async fn authenticate(&self, authorization: Option<&str>, cookie: Option<&str>) -> Result<Caller, AuthError> {
        let found = request_token(authorization, cookie)?
            .filter(|(token, credential)| !(*credential == Credential::Bearer && self.publishable_key.as_deref() == Some(*token)));
        let Some((token, credential)) = found else {
            return match &self.anon_role {
                Some(role) => Ok(Caller::Anonymous { role: role.clone() }),
                None => Err(AuthError::AnonymousDisabled),
            };
        };
        let (claims, claims_json) = match self.cache.get(token) {
            Some(hit) => {
                crate::metrics::count(&crate::metrics::JWT_CACHE_HITS);
                hit
            }
            None => {
                crate::metrics::count(&crate::metrics::JWT_CACHE_MISSES);
                let claims = self.verify(token).await.map_err(AuthError::Token)?;
                self.cache.insert(token, claims)
            }
        };
        let role = match &self.role_source {
            RoleSource::Claim(path) => path.lookup(&claims).map_err(AuthError::BadRoleClaim)?,
            RoleSource::Staff(staff) if staff.is_staff(&claims) => staff.role.clone(),
            RoleSource::Staff(_) | RoleSource::Authenticated => "authenticated".to_owned(),
        };
        if !self.allowed_roles.contains(&role) {
            return Err(AuthError::RoleNotAllowed(role));
        }
        Ok(Caller::User { role, claims, claims_json, credential })
    }
}

/// Where a verified token's database role comes from.
enum RoleSource {
    /// `jwt-role-claim-key`: the claim at that path (PostgREST's way).
    Claim(role::ClaimPath),
    /// `db-staff-role`: staff run as it, everyone else as `authenticated`.
    Staff(StaffRule),
    /// Neither: every verified token runs as `authenticated`.
    Authenticated,
}

/// Who runs as `db-staff-role`: a token that says its holder is staff the
/// way the reference schema's `app_role()` and `has_permission()` read it —
/// an application role other than `customer` in `metadata` or
/// `public_metadata` (a session-token template's claims, from what only the
/// shop writes), a template's non-empty `permissions`, or membership of the
/// staff organization while it is the active one. The database still
/// decides what that role may see (its policies check the permissions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRule {
    pub role: String,
    pub staff_org: Option<String>,
}

impl StaffRule {
    pub fn is_staff(&self, claims: &Claims) -> bool {
        use serde_json::Value;
        let app_role = ["metadata", "public_metadata"].iter().find_map(|k| claims.get(*k)?.get("role")?.as_str().filter(|r| !r.is_empty()));
        if app_role.is_some_and(|r| r != "customer") {
            return true;
        }
        if claims.get("permissions").and_then(Value::as_array).is_some_and(|p| !p.is_empty()) {
            return true;
        }
        // The active organization as pg_clerk reads it: v2's `o.id` when `o`
        // is an object, else v1's `org_id`. Any member of the staff
        // organization is staff (its role and permissions decide the rest).
        let org = match claims.get("o") {
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_str),
            _ => claims.get("org_id").and_then(Value::as_str),
        };
        matches!((&self.staff_org, org), (Some(staff), Some(org)) if staff == org)
    }
}

/// The bearer token, else Clerk's `__session` cookie, else None.
fn request_token<'a>(authorization: Option<&'a str>, cookie: Option<&'a str>) -> Result<Option<(&'a str, Credential)>, AuthError> {
    if let Some(value) = authorization {
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::BadAuthorizationHeader)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::BadAuthorizationHeader);
        }
        return Ok(Some((token.trim(), Credential::Bearer)));
    }
    Ok(cookie
        .and_then(|c| {
            c.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(name, _)| *name == "__session").map(|(_, v)| v.trim())
        })
        .filter(|t| !t.is_empty())
        .map(|t| (t, Credential::SessionCookie)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use clerk_jwt::test_keys::{now, sign, sign_hs256, JWKS};
    use http::StatusCode;
    use serde_json::json;

    const SECRET: &str = "a-local-development-secret-of-32-bytes!";

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    fn authenticator(extra_env: &[(&str, &str)]) -> Result<Authenticator, ConfigError> {
        // Written once per test process: tests run in parallel.
        static JWKS_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        let jwks = JWKS_FILE.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("clerk-proxy-auth-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("jwks.json");
            std::fs::write(&file, JWKS).unwrap();
            file
        });
        let mut env = vec![
            ("CLERK_PROXY_DB_URI".to_owned(), "postgres://authenticator@127.0.0.1/app".to_owned()),
            ("CLERK_PROXY_CLERK_JWKS_FILE".to_owned(), jwks.display().to_string()),
            ("CLERK_PROXY_CLERK_ISSUER".to_owned(), "https://clerk.example.com".to_owned()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Authenticator::from_config(&Config::from_sources("", "test", env).unwrap())
    }

    fn token(extra: serde_json::Value) -> String {
        let mut c = json!({"sub": "user_1", "sid": "sess_1", "iss": "https://clerk.example.com", "iat": now(), "exp": now() + 60});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(&c)
    }

    #[test]
    fn bearer_header_or_session_cookie() {
        assert_eq!(request_token(Some("Bearer abc"), None), Ok(Some(("abc", Credential::Bearer))));
        assert_eq!(request_token(Some("bearer  abc "), Some("__session=xyz")), Ok(Some(("abc", Credential::Bearer))));
        assert_eq!(request_token(None, Some("theme=dark; __session=xyz")), Ok(Some(("xyz", Credential::SessionCookie))));
        assert_eq!(request_token(None, Some("theme=dark")), Ok(None));
        assert_eq!(request_token(None, None), Ok(None));
        assert_eq!(request_token(Some("Basic dXNlcjpwdw=="), None), Err(AuthError::BadAuthorizationHeader));
        assert_eq!(request_token(Some("Bearer"), None), Err(AuthError::BadAuthorizationHeader));
    }

    #[test]
    fn a_valid_token_is_the_authenticated_role_with_its_claims() {
        let auth = authenticator(&[]).unwrap();
        let caller = block_on(auth.authenticate(Some(&format!("Bearer {}", token(json!({})))), None)).unwrap();
        let Caller::User { role, claims, claims_json, credential } = caller else { panic!("expected a user") };
        assert_eq!(credential, Credential::Bearer);
        assert_eq!(role, "authenticated");
        assert_eq!(claims["sub"], "user_1");
        assert!(claims_json.contains("\"sub\":\"user_1\""));
    }

    #[test]
    fn no_token_is_anonymous_only_when_an_anon_role_is_configured() {
        assert_eq!(block_on(authenticator(&[]).unwrap().authenticate(None, None)), Err(AuthError::AnonymousDisabled));
        let auth = authenticator(&[("CLERK_PROXY_DB_ANON_ROLE", "anon")]).unwrap();
        assert_eq!(block_on(auth.authenticate(None, None)), Ok(Caller::Anonymous { role: "anon".into() }));
    }

    #[test]
    fn the_publishable_key_as_a_bearer_token_is_no_user() {
        let pk = "pk_test_Zm9vLWJhci0xMy5jbGVyay5hY2NvdW50cy5kZXYk";
        let auth = authenticator(&[
            ("CLERK_PROXY_DB_ANON_ROLE", "anon"),
            ("CLERK_PROXY_CLERK_PUBLISHABLE_KEY", pk),
            ("CLERK_PROXY_CLERK_ISSUER", "https://clerk.example.com"),
        ])
        .unwrap();
        assert_eq!(block_on(auth.authenticate(Some(&format!("Bearer {pk}")), None)), Ok(Caller::Anonymous { role: "anon".into() }));
        // Any other string is a token to verify.
        assert!(block_on(auth.authenticate(Some(&format!("Bearer {pk}x")), None)).is_err());
    }

    #[test]
    fn refusals_are_401_with_postgrest_codes() {
        let auth = authenticator(&[("CLERK_PROXY_DB_ANON_ROLE", "anon")]).unwrap();
        let expired = block_on(auth.authenticate(Some(&format!("Bearer {}", token(json!({"exp": now() - 60})))), None)).unwrap_err();
        let e = ApiError::from(expired);
        assert_eq!((e.status, e.code.as_ref()), (StatusCode::UNAUTHORIZED, "PGRST303"));
        let garbled = ApiError::from(block_on(auth.authenticate(Some("Bearer not.a.jwt"), None)).unwrap_err());
        assert_eq!((garbled.status, garbled.code.as_ref()), (StatusCode::UNAUTHORIZED, "PGRST301"));
        assert!(garbled.header("www-authenticate").unwrap().contains("invalid_token"));
        // HS256 is refused when no jwt-secret is configured.
        let hs = sign_hs256(&json!({"sub": "user_1", "sid": "sess_1", "iat": now(), "exp": now() + 60}), SECRET.as_bytes());
        assert!(matches!(
            block_on(auth.authenticate(Some(&format!("Bearer {hs}")), None)),
            Err(AuthError::Token(TokenError::UnsupportedAlgorithm(_)))
        ));
    }

    #[test]
    fn hs256_for_local_development_with_a_secret() {
        let auth = authenticator(&[("CLERK_PROXY_JWT_SECRET", SECRET)]).unwrap();
        let hs = sign_hs256(
            &json!({"sub": "user_dev", "sid": "sess_1", "iss": "https://clerk.example.com", "iat": now(), "exp": now() + 60}),
            SECRET.as_bytes(),
        );
        assert!(block_on(auth.authenticate(Some(&format!("Bearer {hs}")), None)).is_ok());
    }

    #[test]
    fn role_from_the_configured_claim() {
        let auth = authenticator(&[
            ("CLERK_PROXY_JWT_ROLE_CLAIM_KEY", ".metadata.db_role"),
            ("CLERK_PROXY_DB_ALLOWED_ROLES", "authenticated,staff"),
        ])
        .unwrap();
        let caller =
            block_on(auth.authenticate(Some(&format!("Bearer {}", token(json!({"metadata": {"db_role": "staff"}})))), None)).unwrap();
        assert_eq!(caller.role(), "staff");
        let missing = block_on(auth.authenticate(Some(&format!("Bearer {}", token(json!({})))), None)).unwrap_err();
        assert!(matches!(missing, AuthError::BadRoleClaim(_)));
    }

    #[test]
    fn staff_are_told_by_what_only_the_shop_writes() {
        let rule = StaffRule { role: "clerk_staff".into(), staff_org: Some("org_staff".into()) };
        let staff = |claims: serde_json::Value| rule.is_staff(claims.as_object().unwrap());
        assert!(staff(serde_json::json!({"metadata": {"role": "admin"}})));
        assert!(staff(serde_json::json!({"public_metadata": {"role": "employee"}})));
        assert!(staff(serde_json::json!({"permissions": ["orders:read"]})));
        assert!(staff(serde_json::json!({"org_id": "org_staff", "org_role": "org:manager"})));
        assert!(staff(serde_json::json!({"o": {"id": "org_staff", "rol": "admin"}})));
        assert!(staff(serde_json::json!({"o": {"id": "org_staff", "per": "orders:read"}})), "permissions without a role");
        assert!(staff(serde_json::json!({"org_id": "org_staff", "org_role": null, "o": {"id": "org_staff"}})));
        for customer in [
            serde_json::json!({}),
            serde_json::json!({"metadata": {"role": "customer"}}),
            serde_json::json!({"metadata": {"role": ""}, "permissions": []}),
            serde_json::json!({"org_id": "org_other", "org_role": "org:admin"}),
            // v2 wins over v1, as pg_clerk reads them.
            serde_json::json!({"org_id": "org_staff", "o": {"id": "org_other", "rol": "admin"}}),
            serde_json::json!({"role": "admin"}),
        ] {
            assert!(!staff(customer.clone()), "{customer}");
        }
    }

    #[test]
    fn a_role_claim_reaches_only_allowed_roles() {
        let auth = authenticator(&[("CLERK_PROXY_JWT_ROLE_CLAIM_KEY", ".role"), ("CLERK_PROXY_DB_ANON_ROLE", "anon")]).unwrap();
        for role in ["clerk_webhook", "clerk_sync", "bi_reader", "authenticator", "postgres", "pg_read_all_data", "staff"] {
            let e = block_on(auth.authenticate(Some(&format!("Bearer {}", token(json!({"role": role})))), None)).unwrap_err();
            assert_eq!(e, AuthError::RoleNotAllowed(role.into()));
            let e = ApiError::from(e);
            assert_eq!((e.status, e.code.as_ref()), (StatusCode::UNAUTHORIZED, "PGRST303"));
            assert!(e.header("www-authenticate").is_some());
        }
        for role in ["authenticated", "anon"] {
            assert_eq!(block_on(auth.authenticate(Some(&format!("Bearer {}", token(json!({"role": role})))), None)).unwrap().role(), role);
        }
    }

    #[test]
    fn cached_tokens_are_reused_until_they_expire() {
        let auth = authenticator(&[]).unwrap();
        let t = token(json!({}));
        let first = block_on(auth.authenticate(Some(&format!("Bearer {t}")), None)).unwrap();
        assert_eq!(auth.cache.len(), 1);
        let second = block_on(auth.authenticate(Some(&format!("Bearer {t}")), None)).unwrap();
        assert_eq!(first, second);
        assert_eq!(auth.cache.len(), 1);
    }

    /// A JWKS endpoint on 127.0.0.1 whose answer the test can change.
    struct JwksServer {
        url: String,
        answer: Arc<Mutex<(u16, String)>>,
        hits: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl JwksServer {
        fn start(body: &str) -> JwksServer {
            use std::io::{Read, Write};
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
            let answer = Arc::new(Mutex::new((200, body.to_owned())));
            let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let (a, h) = (answer.clone(), hits.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let mut stream = stream.unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let (status, body) = a.lock().unwrap().clone();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            JwksServer { url, answer, hits }
        }

        fn hits(&self) -> usize {
            self.hits.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// The test JWKS with its key also listed under `extra_kid`.
    fn jwks_with_kid(extra_kid: &str) -> String {
        let mut set: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        let mut rotated = set["keys"][0].clone();
        rotated["kid"] = json!(extra_kid);
        set["keys"].as_array_mut().unwrap().push(rotated);
        set.to_string()
    }

    #[test]
    fn jwks_url_is_fetched_refetched_on_rotation_and_survives_an_outage() {
        let server = JwksServer::start(JWKS);
        let mut auth = authenticator(&[("CLERK_PROXY_CLERK_JWKS_FILE", ""), ("CLERK_PROXY_CLERK_JWKS_URL", &server.url)]).unwrap();
        auth.refresh_interval = std::time::Duration::ZERO;
        assert_eq!(server.hits(), 1, "fetched once at start-up");
        let bearer = |t: String| format!("Bearer {t}");
        assert!(block_on(auth.authenticate(Some(&bearer(token(json!({})))), None)).is_ok());
        assert_eq!(server.hits(), 1, "known keys need no fetch");

        // Clerk rotates: a token with a new kid makes the proxy refetch once.
        *server.answer.lock().unwrap() = (200, jwks_with_kid("ins_rotated"));
        let rotated = clerk_jwt::test_keys::sign_with(
            &json!({"sub": "user_1", "sid": "sess_1", "iss": "https://clerk.example.com", "iat": now(), "exp": now() + 60}),
            Some("ins_rotated"),
        );
        assert!(block_on(auth.authenticate(Some(&bearer(rotated)), None)).is_ok());
        assert_eq!(server.hits(), 2);

        // The endpoint goes down: unknown kids are 401 (not 500), known keys keep working.
        *server.answer.lock().unwrap() = (500, "down".into());
        let unknown = clerk_jwt::test_keys::sign_with(
            &json!({"sub": "user_1", "sid": "sess_1", "iss": "https://clerk.example.com", "iat": now(), "exp": now() + 60}),
            Some("ins_other"),
        );
        let err = block_on(auth.authenticate(Some(&bearer(unknown)), None)).unwrap_err();
        assert_eq!(ApiError::from(err).status, StatusCode::UNAUTHORIZED);
        assert!(block_on(auth.authenticate(Some(&bearer(token(json!({"sid": "sess_2"})))), None)).is_ok());
    }

    #[test]
    fn an_unreachable_jwks_url_stops_start_up() {
        let err = authenticator(&[("CLERK_PROXY_CLERK_JWKS_URL", "http://127.0.0.1:1/jwks.json")]).err().unwrap();
        assert!(err.0.starts_with("clerk-jwks-url: cannot fetch"), "{err}");
    }

    #[test]
    fn bad_key_configuration_stops_start_up_with_the_key_named() {
        let err = authenticator(&[("CLERK_PROXY_CLERK_JWKS_FILE", "/nonexistent/jwks.json")]).err().unwrap();
        assert!(err.0.starts_with("clerk-jwks-file: cannot read /nonexistent/jwks.json"), "{err}");
        let err = authenticator(&[("CLERK_PROXY_CLERK_PUBLIC_KEY", "not a pem")]).err().unwrap();
        assert!(err.0.starts_with("clerk-public-key:"), "{err}");
        let err = authenticator(&[("CLERK_PROXY_JWT_ROLE_CLAIM_KEY", "..")]).err().unwrap();
        assert!(err.0.starts_with("jwt-role-claim-key:"), "{err}");
    }
}
