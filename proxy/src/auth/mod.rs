//! Stage 1 of a request: who is calling. The token comes from
//! `Authorization: Bearer …` or Clerk's `__session` cookie; it is verified
//! (`clerk_jwt`), its claims cached until they expire, and mapped to the
//! database role the request runs as. No token means the anonymous role.

mod cache;
mod role;

use crate::config::{Config, ConfigError};
use crate::response::ApiError;
use cache::TokenCache;
use clerk_jwt::{Claims, KeySet, Rules, TokenError, Verifier};
use http::StatusCode;
use std::sync::Arc;

/// The verified caller of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Anonymous { role: String },
    User { role: String, claims: Arc<Claims>, claims_json: Arc<str> },
}

impl Caller {
    pub fn role(&self) -> &str {
        match self {
            Caller::Anonymous { role } | Caller::User { role, .. } => role,
        }
    }
}

pub struct Authenticator {
    verifier: Verifier,
    cache: TokenCache,
    role_claim_key: Option<role::ClaimPath>,
    anon_role: Option<String>,
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
}

impl AuthError {
    /// PostgREST's error body and a `WWW-Authenticate` challenge.
    pub fn into_api_error(self) -> ApiError {
        let (code, message) = match &self {
            AuthError::BadAuthorizationHeader => ("PGRST301", "Authorization header must be \"Bearer <token>\"".to_owned()),
            AuthError::AnonymousDisabled => ("PGRST302", "Anonymous access is disabled: send a Clerk session token".to_owned()),
            AuthError::Token(e) if e.is_claims_error() => ("PGRST303", e.to_string()),
            AuthError::Token(e) => ("PGRST301", e.to_string()),
            AuthError::BadRoleClaim(why) => ("PGRST303", why.clone()),
        };
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: code.into(),
            message,
            details: None,
            hint: None,
            www_authenticate: Some(match self {
                AuthError::AnonymousDisabled => "Bearer".to_owned(),
                _ => "Bearer error=\"invalid_token\"".to_owned(),
            }),
        }
    }
}

impl Authenticator {
    /// Loads the keys named by the configuration (files are read now, so a
    /// bad key stops start-up rather than failing every request).
    pub fn from_config(config: &Config) -> Result<Authenticator, ConfigError> {
        let mut keys = KeySet::default();
        if let Some(path) = &config.clerk_jwks_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("clerk-jwks-file: cannot read {path}: {e}")))?;
            keys = keys.with(KeySet::from_jwks(&text).map_err(|e| ConfigError(format!("clerk-jwks-file {path}: {e}")))?);
        }
        if let Some(pem) = &config.clerk_public_key {
            let pem = match pem.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("clerk-public-key: cannot read {path}: {e}")))?,
                None => pem.clone(),
            };
            keys = keys.with(KeySet::from_pem(&pem).map_err(|e| ConfigError(format!("clerk-public-key: {e}")))?);
        }
        if let Some(secret) = &config.jwt_secret {
            keys = keys.with(KeySet::hs256(secret.as_bytes()));
        }
        if config.clerk_jwks_url.is_some() {
            return Err(ConfigError(
                "clerk-jwks-url: fetching the JWKS over HTTP is not available in this version; \
                 download it once and use clerk-jwks-file, or use clerk-public-key"
                    .into(),
            ));
        }
        let rules = Rules {
            issuer: config.clerk_issuer.clone(),
            audience: config.jwt_aud.clone(),
            authorized_parties: config.clerk_authorized_parties.clone(),
            clock_skew_secs: config.clerk_clock_skew,
        };
        let role_claim_key = match &config.jwt_role_claim_key {
            Some(key) => Some(role::ClaimPath::parse(key).map_err(|e| ConfigError(format!("jwt-role-claim-key: {e}")))?),
            None => None,
        };
        Ok(Authenticator {
            verifier: Verifier::new(keys, rules),
            cache: TokenCache::new(config.jwt_cache_max_entries as usize),
            role_claim_key,
            anon_role: config.db_anon_role.clone(),
        })
    }

    /// Who is calling, from the request's `Authorization` and `Cookie` headers.
    pub fn authenticate(&self, authorization: Option<&str>, cookie: Option<&str>) -> Result<Caller, AuthError> {
        let Some(token) = request_token(authorization, cookie)? else {
            return match &self.anon_role {
                Some(role) => Ok(Caller::Anonymous { role: role.clone() }),
                None => Err(AuthError::AnonymousDisabled),
            };
        };
        let (claims, claims_json) = match self.cache.get(token) {
            Some(hit) => hit,
            None => {
                let claims = self.verifier.verify(token).map_err(AuthError::Token)?;
                self.cache.insert(token, claims)
            }
        };
        let role = match &self.role_claim_key {
            Some(path) => path.lookup(&claims).map_err(AuthError::BadRoleClaim)?,
            None => "authenticated".to_owned(),
        };
        Ok(Caller::User { role, claims, claims_json })
    }
}

/// The bearer token, else Clerk's `__session` cookie, else None.
fn request_token<'a>(authorization: Option<&'a str>, cookie: Option<&'a str>) -> Result<Option<&'a str>, AuthError> {
    if let Some(value) = authorization {
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::BadAuthorizationHeader)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::BadAuthorizationHeader);
        }
        return Ok(Some(token.trim()));
    }
    Ok(cookie.and_then(|c| {
        c.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(name, _)| *name == "__session").map(|(_, v)| v.trim())
    }).filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_jwt::test_keys::{now, sign, sign_hs256, JWKS};
    use serde_json::json;

    const SECRET: &str = "a-local-development-secret-of-32-bytes!";

    fn authenticator(extra_env: &[(&str, &str)]) -> Result<Authenticator, ConfigError> {
        let dir = std::env::temp_dir().join(format!("clerk-proxy-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, JWKS).unwrap();
        let mut env = vec![
            ("CLERK_PROXY_DB_URI".to_owned(), "postgres://authenticator@127.0.0.1/app".to_owned()),
            ("CLERK_PROXY_CLERK_JWKS_FILE".to_owned(), jwks.display().to_string()),
            ("CLERK_PROXY_CLERK_ISSUER".to_owned(), "https://clerk.example.com".to_owned()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Authenticator::from_config(&Config::from_sources("", "test", env).unwrap())
    }

    fn token(extra: serde_json::Value) -> String {
        let mut c = json!({"sub": "user_1", "iss": "https://clerk.example.com", "exp": now() + 60});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(&c)
    }

    #[test]
    fn bearer_header_or_session_cookie() {
        assert_eq!(request_token(Some("Bearer abc"), None), Ok(Some("abc")));
        assert_eq!(request_token(Some("bearer  abc "), None), Ok(Some("abc")));
        assert_eq!(request_token(None, Some("theme=dark; __session=xyz")), Ok(Some("xyz")));
        assert_eq!(request_token(None, Some("theme=dark")), Ok(None));
        assert_eq!(request_token(None, None), Ok(None));
        assert_eq!(request_token(Some("Basic dXNlcjpwdw=="), None), Err(AuthError::BadAuthorizationHeader));
        assert_eq!(request_token(Some("Bearer"), None), Err(AuthError::BadAuthorizationHeader));
    }

    #[test]
    fn a_valid_token_is_the_authenticated_role_with_its_claims() {
        let auth = authenticator(&[]).unwrap();
        let caller = auth.authenticate(Some(&format!("Bearer {}", token(json!({})))), None).unwrap();
        let Caller::User { role, claims, claims_json } = caller else { panic!("expected a user") };
        assert_eq!(role, "authenticated");
        assert_eq!(claims["sub"], "user_1");
        assert!(claims_json.contains("\"sub\":\"user_1\""));
    }

    #[test]
    fn no_token_is_anonymous_only_when_an_anon_role_is_configured() {
        assert_eq!(authenticator(&[]).unwrap().authenticate(None, None), Err(AuthError::AnonymousDisabled));
        let auth = authenticator(&[("CLERK_PROXY_DB_ANON_ROLE", "anon")]).unwrap();
        assert_eq!(auth.authenticate(None, None), Ok(Caller::Anonymous { role: "anon".into() }));
    }

    #[test]
    fn refusals_are_401_with_postgrest_codes() {
        let auth = authenticator(&[("CLERK_PROXY_DB_ANON_ROLE", "anon")]).unwrap();
        let expired = auth.authenticate(Some(&format!("Bearer {}", token(json!({"exp": now() - 60})))), None).unwrap_err();
        let e = expired.into_api_error();
        assert_eq!((e.status, e.code.as_ref()), (StatusCode::UNAUTHORIZED, "PGRST303"));
        let garbled = auth.authenticate(Some("Bearer not.a.jwt"), None).unwrap_err().into_api_error();
        assert_eq!((garbled.status, garbled.code.as_ref()), (StatusCode::UNAUTHORIZED, "PGRST301"));
        assert!(garbled.www_authenticate.unwrap().contains("invalid_token"));
        // HS256 is refused when no jwt-secret is configured.
        let hs = sign_hs256(&json!({"sub": "user_1", "exp": now() + 60}), SECRET.as_bytes());
        assert!(matches!(auth.authenticate(Some(&format!("Bearer {hs}")), None), Err(AuthError::Token(TokenError::UnsupportedAlgorithm(_)))));
    }

    #[test]
    fn hs256_for_local_development_with_a_secret() {
        let auth = authenticator(&[("CLERK_PROXY_JWT_SECRET", SECRET)]).unwrap();
        let hs = sign_hs256(&json!({"sub": "user_dev", "iss": "https://clerk.example.com", "exp": now() + 60}), SECRET.as_bytes());
        assert!(auth.authenticate(Some(&format!("Bearer {hs}")), None).is_ok());
    }

    #[test]
    fn role_from_the_configured_claim() {
        let auth = authenticator(&[("CLERK_PROXY_JWT_ROLE_CLAIM_KEY", ".metadata.db_role")]).unwrap();
        let caller = auth.authenticate(Some(&format!("Bearer {}", token(json!({"metadata": {"db_role": "staff"}})))), None).unwrap();
        assert_eq!(caller.role(), "staff");
        let missing = auth.authenticate(Some(&format!("Bearer {}", token(json!({})))), None).unwrap_err();
        assert!(matches!(missing, AuthError::BadRoleClaim(_)));
    }

    #[test]
    fn cached_tokens_are_reused_until_they_expire() {
        let auth = authenticator(&[]).unwrap();
        let t = token(json!({}));
        let first = auth.authenticate(Some(&format!("Bearer {t}")), None).unwrap();
        assert_eq!(auth.cache.len(), 1);
        let second = auth.authenticate(Some(&format!("Bearer {t}")), None).unwrap();
        assert_eq!(first, second);
        assert_eq!(auth.cache.len(), 1);
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
