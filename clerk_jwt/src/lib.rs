//! Verification of Clerk session tokens, shared by the `pg_clerk` extension
//! (`clerk_authenticate()`) and `clerk-proxy`. No I/O and no threads, so it
//! runs inside a Postgres backend as it does in the proxy.
//!
//! Signatures are checked by jsonwebtoken's `aws_lc_rs` backend: AWS-LC,
//! compiled from C by `aws-lc-sys` with its symbols prefixed
//! (`aws_lc_0_47_0_*`), so it does not clash with the OpenSSL a Postgres
//! server links; its one-time library init is a lazy `std::sync::Once`.
//! An RS256 check takes ~17 µs, where the pure-Rust `rsa` crate took
//! ~120-190 µs. Exactly one jsonwebtoken backend feature may be enabled in
//! the whole build, or it panics on first use: crates that sign test tokens
//! go through `test_keys` instead of naming jsonwebtoken themselves.
//!
//! A token is accepted only when its header's algorithm is one a configured
//! key is for: RS256/ES256/EdDSA keys from a JWKS or PEM, HS256 only with a
//! configured secret. So `alg: none`, and HS256 signed with a public key as
//! the secret (algorithm confusion), are refused before any key is used.

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::fmt;

/// Tokens longer than this are refused unread (Clerk's are ~1 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

pub type Claims = Map<String, Value>;

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The keys tokens may be signed with.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// The signing keys of a JWKS document (what Clerk serves at
    /// `/.well-known/jwks.json`). Keys of unknown types are skipped; a set
    /// with no usable key is an error.
    pub fn from_jwks(json: &str) -> Result<KeySet, String> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys: Vec<Key> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let alg = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
                    AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                    _ => return None,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(Key { kid: jwk.common.key_id.clone(), alg, key })
            })
            .collect();
        if keys.is_empty() {
            return Err("the JWKS holds no usable signing key (RSA, EC P-256 or Ed25519)".into());
        }
        Ok(KeySet { keys })
    }

    /// A PEM public key (RSA, EC P-256 or Ed25519): networkless verification.
    pub fn from_pem(pem: &str) -> Result<KeySet, String> {
        let bytes = pem.as_bytes();
        let (alg, key) = if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
            (Algorithm::RS256, k)
        } else if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
            (Algorithm::ES256, k)
        } else if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
            (Algorithm::EdDSA, k)
        } else {
            return Err("not a PEM public key (RSA, EC P-256 or Ed25519)".into());
        };
        Ok(KeySet { keys: vec![Key { kid: None, alg, key }] })
    }

    /// An HS256 shared secret (local development; Clerk signs with RS256).
    pub fn hs256(secret: &[u8]) -> KeySet {
        KeySet { keys: vec![Key { kid: None, alg: Algorithm::HS256, key: DecodingKey::from_secret(secret) }] }
    }

    /// Both sets' keys.
    pub fn with(mut self, other: KeySet) -> KeySet {
        self.keys.extend(other.keys);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key for a token header: by `kid` when it has one; else, or when
    /// no key has that id, the only key for its algorithm that has no id (a
    /// PEM key, which stands for the instance whatever `kid` its tokens
    /// carry: Clerk's always carry one).
    fn find(&self, alg: Algorithm, kid: Option<&str>) -> Result<&Key, TokenError> {
        let candidates = || self.keys.iter().filter(move |k| k.alg == alg);
        if let Some(key) = kid.and_then(|kid| candidates().find(|k| k.kid.as_deref() == Some(kid))) {
            return Ok(key);
        }
        let mut unnamed = candidates().filter(|k| k.kid.is_none() || kid.is_none());
        match (unnamed.next(), unnamed.next()) {
            (Some(only), None) => Ok(only),
            _ => Err(TokenError::UnknownKey(kid.map(str::to_owned))),
        }
    }

    fn has_algorithm(&self, alg: Algorithm) -> bool {
        self.keys.iter().any(|k| k.alg == alg)
    }
}

/// What a valid token must also satisfy.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Required `iss` (your Clerk Frontend API URL).
    pub issuer: Option<String>,
    /// Required `aud`. Unset: session tokens must have none (JWT templates
    /// may carry any when `accept_jwt_templates`).
    pub audience: Option<String>,
    /// Accepted `azp` origins; empty accepts any. When set, a token must
    /// carry one of them (as `@clerk/backend` enforces since its fix for
    /// tokens that left `azp` out to skip the check).
    pub authorized_parties: Vec<String>,
    /// Leeway on `exp`, `nbf` and `iat`.
    pub clock_skew_secs: u64,
    /// Accept tokens of Clerk JWT templates too. Otherwise only session
    /// tokens: a `sid`, and no `aud` unless `audience` asks for one. The
    /// instance signs both with the same keys.
    pub accept_jwt_templates: bool,
    /// Longest accepted lifetime, `exp - iat`, in seconds (Clerk's session
    /// tokens live 60 s).
    pub max_lifetime_secs: u64,
}

/// `Rules::max_lifetime_secs` by default.
pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 3600;

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            issuer: None,
            audience: None,
            authorized_parties: Vec::new(),
            clock_skew_secs: 0,
            accept_jwt_templates: false,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        }
    }
}

pub struct Verifier {
    keys: KeySet,
    rules: Rules,
    /// jsonwebtoken's checks for each accepted algorithm, built once from
    /// `rules` rather than on every token.
    validations: Vec<(Algorithm, Validation)>,
}

/// Why a token was refused; `Display` is the message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    TooLarge(usize),
    Malformed(String),
    UnsupportedAlgorithm(String),
    UnknownKey(Option<String>),
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    UnauthorizedParty(String),
    PendingSession,
    InvalidClaims(String),
    /// A header `typ` other than `JWT` (e.g. `at+jwt`, an OAuth access token).
    WrongType(String),
    /// A header `crit`: extensions that must be understood, and none are.
    CriticalExtension(String),
    /// Not a session token (no `sid`, or an `aud`), and JWT templates are not accepted.
    NotASessionToken(&'static str),
    /// `exp - iat` beyond `Rules::max_lifetime_secs`.
    TooLongLived {
        lifetime: i64,
        limit: u64,
    },
}

impl TokenError {
    /// Whether the token was well-formed and signed but its claims are not
    /// acceptable now (PostgREST reports these as PGRST303, others PGRST301).
    pub fn is_claims_error(&self) -> bool {
        matches!(
            self,
            TokenError::Expired
                | TokenError::NotYetValid
                | TokenError::WrongIssuer
                | TokenError::WrongAudience
                | TokenError::UnauthorizedParty(_)
                | TokenError::PendingSession
                | TokenError::InvalidClaims(_)
                | TokenError::NotASessionToken(_)
                | TokenError::TooLongLived { .. }
        )
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLarge(n) => write!(f, "token is {n} bytes; the limit is {MAX_TOKEN_BYTES}"),
            TokenError::Malformed(why) => write!(f, "token is not a well-formed JWT: {why}"),
            TokenError::UnsupportedAlgorithm(alg) => write!(f, "token algorithm \"{alg}\" is not accepted"),
            TokenError::UnknownKey(Some(kid)) => write!(f, "token key id \"{kid}\" is not among the configured keys"),
            TokenError::UnknownKey(None) => write!(f, "token has no kid and more than one key could have signed it"),
            TokenError::BadSignature => write!(f, "token signature does not verify"),
            TokenError::Expired => write!(f, "token has expired"),
            TokenError::NotYetValid => write!(f, "token is not valid yet (nbf is in the future)"),
            TokenError::WrongIssuer => write!(f, "token issuer is not the configured one"),
            TokenError::WrongAudience => write!(f, "token audience is not the configured one"),
            TokenError::UnauthorizedParty(azp) => write!(f, "token azp \"{azp}\" is not an authorized party"),
            TokenError::PendingSession => write!(f, "token belongs to a pending session (sts: pending)"),
            TokenError::InvalidClaims(why) => write!(f, "token claims are invalid: {why}"),
            TokenError::WrongType(typ) => write!(f, "token type {typ} is not accepted: only JWT session tokens are"),
            TokenError::CriticalExtension(crit) => write!(f, "token header names critical extensions {crit}, which are not supported"),
            TokenError::NotASessionToken(why) => {
                write!(f, "token is not a Clerk session token: {why}")
            }
            TokenError::TooLongLived { lifetime, limit } => {
                write!(f, "token lifetime (exp - iat) is {lifetime} s; the limit is {limit} s")
            }
        }
    }
}

impl std::error::Error for TokenError {}

impl Verifier {
    /// Keys tokens are checked against.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub fn new(keys: KeySet, rules: Rules) -> Verifier {
        let mut validations: Vec<(Algorithm, Validation)> = Vec::new();
        for key in &keys.keys {
            if !validations.iter().any(|(a, _)| *a == key.alg) {
                validations.push((key.alg, validation(key.alg, &rules)));
            }
        }
        Verifier { keys, rules, validations }
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge(token.len()));
        }
        let header = read_header(token)?;
        match header.get("typ") {
            None => {}
            // Exactly "JWT", as Clerk's SDKs compare it (Clerk issues nothing else).
            Some(Value::String(typ)) if typ == "JWT" => {}
            Some(other) => return Err(TokenError::WrongType(other.to_string())),
        }
        if let Some(crit) = header.get("crit") {
            return Err(TokenError::CriticalExtension(crit.to_string()));
        }
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = match alg_name {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            "HS256" => Algorithm::HS256,
            _ => return Err(TokenError::UnsupportedAlgorithm(alg_name.to_owned())),
        };
        if !self.keys.has_algorithm(alg) {
            return Err(TokenError::UnsupportedAlgorithm(alg_name.to_owned()));
        }
        let key = self.keys.find(alg, header.get("kid").and_then(Value::as_str))?;
        // There is one for every algorithm a key is for, so this always finds it.
        let (_, validation) =
            self.validations.iter().find(|(a, _)| *a == alg).ok_or_else(|| TokenError::UnsupportedAlgorithm(alg_name.to_owned()))?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::WrongIssuer,
                ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::WrongAudience,
                ErrorKind::MissingRequiredClaim(c) => TokenError::InvalidClaims(format!("\"{c}\" is missing")),
                ErrorKind::InvalidAlgorithm => TokenError::UnsupportedAlgorithm(alg_name.to_owned()),
                _ => TokenError::Malformed(e.to_string()),
            })?
            .claims;

        self.check_times(&claims)?;
        // jsonwebtoken accepts an array `iss` holding the issuer; Clerk
        // issues a string.
        if claims.get("iss").is_some_and(|iss| !iss.is_string()) {
            return Err(TokenError::WrongIssuer);
        }
        match claims.get("azp") {
            None if self.rules.authorized_parties.is_empty() => {}
            None => return Err(TokenError::UnauthorizedParty("(none)".into())),
            Some(Value::String(azp)) => {
                if !self.rules.authorized_parties.is_empty() && !self.rules.authorized_parties.iter().any(|p| p == azp) {
                    return Err(TokenError::UnauthorizedParty(azp.to_owned()));
                }
            }
            // Clerk's SDKs skip the check for a non-string azp: fail closed.
            Some(other) => return Err(TokenError::UnauthorizedParty(other.to_string())),
        }
        if !self.rules.accept_jwt_templates {
            if !matches!(claims.get("sid"), Some(Value::String(sid)) if !sid.is_empty()) {
                return Err(TokenError::NotASessionToken("it has no sid"));
            }
            if self.rules.audience.is_none() && claims.contains_key("aud") {
                return Err(TokenError::NotASessionToken("it has an aud"));
            }
        }
        if claims.get("sts").and_then(Value::as_str) == Some("pending") {
            return Err(TokenError::PendingSession);
        }
        match claims.get("sub") {
            Some(Value::String(_)) => Ok(claims),
            None => Err(TokenError::InvalidClaims("\"sub\" is missing".into())),
            Some(_) => Err(TokenError::InvalidClaims("\"sub\" is not a string".into())),
        }
    }

    /// `exp`, `nbf` and `iat` against the clock, with the skew as leeway:
    /// expired from `exp + skew` on (RFC 7519: "on or after"), not valid
    /// before `nbf - skew`, not issued after `now + skew`, and living at
    /// most `max_lifetime_secs`.
    fn check_times(&self, claims: &Claims) -> Result<(), TokenError> {
        let skew = self.rules.clock_skew_secs as f64;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let time = |name: &str| -> Result<Option<f64>, TokenError> {
            match claims.get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => n
                    .as_f64()
                    .filter(|t| t.is_finite())
                    .map(Some)
                    .ok_or_else(|| TokenError::InvalidClaims(format!("\"{name}\" is out of range"))),
                Some(_) => Err(TokenError::InvalidClaims(format!("\"{name}\" is not a number"))),
            }
        };
        let exp = time("exp")?.ok_or_else(|| TokenError::InvalidClaims("\"exp\" is missing".into()))?;
        let iat = time("iat")?.ok_or_else(|| TokenError::InvalidClaims("\"iat\" is missing".into()))?;
        if now >= exp + skew {
            return Err(TokenError::Expired);
        }
        if time("nbf")?.is_some_and(|nbf| nbf > now + skew) {
            return Err(TokenError::NotYetValid);
        }
        if iat > now + skew {
            return Err(TokenError::InvalidClaims("\"iat\" is in the future".into()));
        }
        let lifetime = exp - iat;
        if lifetime > self.rules.max_lifetime_secs as f64 {
            return Err(TokenError::TooLongLived { lifetime: lifetime as i64, limit: self.rules.max_lifetime_secs });
        }
        Ok(())
    }
}

/// What jsonwebtoken checks besides the signature: `alg`, `exp` present,
/// `iss`/`aud` when configured.
fn validation(alg: Algorithm, rules: &Rules) -> Validation {
    let mut validation = Validation::new(alg);
    // Times are checked by `check_times`, exactly (jsonwebtoken accepts
    // `exp` up to skew + 1 s).
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let mut required = vec!["exp"];
    if let Some(iss) = &rules.issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    match &rules.audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

fn read_header(token: &str) -> Result<Map<String, Value>, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("expected three dot-separated parts".into()));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| TokenError::Malformed(format!("header is not base64url: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| TokenError::Malformed(format!("header is not a JSON object: {e}")))
}

/// A comma-separated setting as a list, blanks dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

#[cfg(any(test, feature = "test-keys"))]
pub mod test_keys {
    //! A fixed RSA key pair made for tests only (tests/fixtures), and a
    //! signer that makes tokens with it.
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::Value;

    pub const PRIVATE_PEM: &str = include_str!("../../tests/fixtures/test_rs256_private.pem");
    pub const PUBLIC_PEM: &str = include_str!("../../tests/fixtures/test_rs256_public.pem");
    pub const JWKS: &str = include_str!("../../tests/fixtures/test_jwks.json");
    pub const KID: &str = "ins_test_key_1";

    pub fn sign(claims: &Value) -> String {
        sign_with(claims, Some(KID))
    }

    pub fn sign_with(claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &EncodingKey::from_rsa_pem(PRIVATE_PEM.as_bytes()).unwrap()).unwrap()
    }

    /// A token with exactly this header (RS256-signed with the test key
    /// whatever its `alg` says), for tests of header checks.
    pub fn sign_header(header: &Value, claims: &Value) -> String {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", b64(header), b64(claims));
        let key = EncodingKey::from_rsa_pem(PRIVATE_PEM.as_bytes()).unwrap();
        format!("{input}.{}", jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::RS256).unwrap())
    }

    pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
        encode(&Header::new(jsonwebtoken::Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    pub fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::*;
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"a-local-development-secret-of-32-bytes!";

    fn rules() -> Rules {
        Rules {
            issuer: Some("https://clerk.example.com".into()),
            authorized_parties: vec!["https://app.example.com".into()],
            clock_skew_secs: 5,
            ..Rules::default()
        }
    }

    fn verifier() -> Verifier {
        Verifier::new(KeySet::from_jwks(JWKS).unwrap(), rules())
    }

    fn claims(extra: Value) -> Value {
        let mut c = json!({"sub": "user_1", "sid": "sess_1", "iss": "https://clerk.example.com",
                           "azp": "https://app.example.com", "exp": now() + 60, "nbf": now() - 10, "iat": now() - 10});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn accepts_a_valid_token() {
        let c = verifier().verify(&sign(&claims(json!({})))).unwrap();
        assert_eq!(c["sub"], "user_1");
    }

    #[test]
    fn rejects_each_kind_of_bad_token() {
        let v = verifier();
        let cases: Vec<(String, TokenError)> = vec![
            (sign(&claims(json!({"exp": now() - 60}))), TokenError::Expired),
            (sign(&claims(json!({"nbf": now() + 60}))), TokenError::NotYetValid),
            (sign(&claims(json!({"iss": "https://evil.example.com"}))), TokenError::WrongIssuer),
            (sign(&claims(json!({"azp": "https://evil.example.com"}))), TokenError::UnauthorizedParty("https://evil.example.com".into())),
            (sign(&claims(json!({"sts": "pending"}))), TokenError::PendingSession),
            (sign_with(&claims(json!({})), Some("ins_other")), TokenError::UnknownKey(Some("ins_other".into()))),
            ("a.b".into(), TokenError::Malformed("expected three dot-separated parts".into())),
            ("x".repeat(MAX_TOKEN_BYTES + 1), TokenError::TooLarge(MAX_TOKEN_BYTES + 1)),
        ];
        for (token, want) in cases {
            assert_eq!(v.verify(&token).unwrap_err(), want);
        }
        let no_sub = sign(&json!({"iss": "https://clerk.example.com", "exp": now() + 60}));
        assert!(v.verify(&no_sub).unwrap_err().is_claims_error());
    }

    #[test]
    fn within_clock_skew_is_accepted() {
        let t = sign(&claims(json!({"exp": now() - 2})));
        assert!(verifier().verify(&t).is_ok());
    }

    #[test]
    fn rejects_alg_none_and_hs256_confusion_and_tampering() {
        let v = verifier();
        let payload = b64(&claims(json!({"sub": "user_evil"})));
        let none = format!("{}.{payload}.", b64(&json!({"alg": "none", "typ": "JWT"})));
        assert_eq!(v.verify(&none).unwrap_err(), TokenError::UnsupportedAlgorithm("none".into()));

        // HS256 keyed with the public key: refused because no secret is configured.
        let hs = sign_hs256(&claims(json!({})), PUBLIC_PEM.as_bytes());
        assert_eq!(v.verify(&hs).unwrap_err(), TokenError::UnsupportedAlgorithm("HS256".into()));
        // ... and also when a secret is configured, since it is not the secret.
        let both = Verifier::new(KeySet::from_jwks(JWKS).unwrap().with(KeySet::hs256(SECRET)), rules());
        assert_eq!(both.verify(&hs).unwrap_err(), TokenError::BadSignature);

        // A valid signature on someone else's payload.
        let good = sign(&claims(json!({})));
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(v.verify(&forged).unwrap_err(), TokenError::BadSignature);
    }

    #[test]
    fn hs256_works_only_with_a_configured_secret() {
        let v = Verifier::new(KeySet::hs256(SECRET), rules());
        assert!(v.verify(&sign_hs256(&claims(json!({})), SECRET)).is_ok());
        assert_eq!(
            v.verify(&sign_hs256(&claims(json!({})), b"another-secret-of-the-same-length!!!!!")).unwrap_err(),
            TokenError::BadSignature
        );
        // An RS256 token is not accepted by a secret-only verifier.
        assert_eq!(v.verify(&sign(&claims(json!({})))).unwrap_err(), TokenError::UnsupportedAlgorithm("RS256".into()));
    }

    #[test]
    fn pem_keys_verify_without_a_kid() {
        let v = Verifier::new(KeySet::from_pem(PUBLIC_PEM).unwrap(), rules());
        assert!(v.verify(&sign_with(&claims(json!({})), None)).is_ok());
        assert!(KeySet::from_pem("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----").is_err());
    }

    #[test]
    fn audience_is_enforced_when_configured() {
        let v = Verifier::new(KeySet::from_jwks(JWKS).unwrap(), Rules { audience: Some("api".into()), ..rules() });
        assert!(v.verify(&sign(&claims(json!({"aud": "api"})))).is_ok());
        assert_eq!(v.verify(&sign(&claims(json!({"aud": "other"})))).unwrap_err(), TokenError::WrongAudience);
        assert_eq!(v.verify(&sign(&claims(json!({})))).unwrap_err(), TokenError::WrongAudience);
    }

    fn sign_header(header: Value, claims: &Value) -> String {
        super::test_keys::sign_header(&header, claims)
    }

    #[test]
    fn pem_keys_match_any_kid_as_clerk_tokens_always_have_one() {
        let v = Verifier::new(KeySet::from_pem(PUBLIC_PEM).unwrap(), rules());
        assert!(v.verify(&sign_with(&claims(json!({})), Some("ins_2abc"))).is_ok());
    }

    #[test]
    fn header_typ_and_crit() {
        let v = verifier();
        assert!(v.verify(&sign_header(json!({"alg": "RS256", "kid": KID, "typ": "JWT"}), &claims(json!({})))).is_ok());
        assert!(v.verify(&sign_header(json!({"alg": "RS256", "kid": KID}), &claims(json!({})))).is_ok());
        for bad in ["at+jwt", "JOSE", "JWT ", "jwt"] {
            let t = sign_header(json!({"alg": "RS256", "kid": KID, "typ": bad}), &claims(json!({})));
            assert_eq!(v.verify(&t).unwrap_err(), TokenError::WrongType(format!("\"{bad}\"")));
        }
        let t = sign_header(json!({"alg": "RS256", "kid": KID, "crit": ["x-ext"], "x-ext": 1}), &claims(json!({})));
        assert!(matches!(v.verify(&t).unwrap_err(), TokenError::CriticalExtension(_)));
    }

    #[test]
    fn azp_that_is_not_a_string_is_refused() {
        let t = sign(&claims(json!({"azp": ["https://evil.example"]})));
        assert!(matches!(verifier().verify(&t).unwrap_err(), TokenError::UnauthorizedParty(_)));
        let open = Verifier::new(KeySet::from_jwks(JWKS).unwrap(), Rules { authorized_parties: vec![], ..rules() });
        assert!(matches!(open.verify(&sign(&claims(json!({"azp": 7})))).unwrap_err(), TokenError::UnauthorizedParty(_)));
        let no_azp = claims(json!({}));
        let mut no_azp = no_azp.as_object().unwrap().clone();
        no_azp.remove("azp");
        let no_azp = sign(&Value::Object(no_azp));
        assert_eq!(verifier().verify(&no_azp).unwrap_err(), TokenError::UnauthorizedParty("(none)".into()));
        assert!(open.verify(&no_azp).is_ok(), "no authorized parties configured: azp is not required");
    }

    #[test]
    fn an_issuer_array_is_not_the_issuer() {
        let v = Verifier::new(KeySet::from_jwks(JWKS).unwrap(), rules());
        let c = claims(json!({"iss": ["https://clerk.example.com"]}));
        assert!(matches!(v.verify(&sign(&c)), Err(TokenError::WrongIssuer)));
    }

    #[test]
    fn session_tokens_only_unless_templates_are_accepted() {
        let v = verifier();
        let mut template = claims(json!({"aud": "supabase", "exp": now() + 365 * 86_400, "metadata": {"role": "admin"}}));
        template.as_object_mut().unwrap().remove("sid");
        assert!(matches!(v.verify(&sign(&template)).unwrap_err(), TokenError::TooLongLived { .. }));
        let mut no_sid = claims(json!({}));
        no_sid.as_object_mut().unwrap().remove("sid");
        assert_eq!(v.verify(&sign(&no_sid)).unwrap_err(), TokenError::NotASessionToken("it has no sid"));
        assert_eq!(v.verify(&sign(&claims(json!({"aud": "supabase"})))).unwrap_err(), TokenError::NotASessionToken("it has an aud"));
        assert!(matches!(
            v.verify(&sign(&claims(json!({"exp": now() + 7200})))).unwrap_err(),
            TokenError::TooLongLived { limit: 3600, .. }
        ));
        let templates = Verifier::new(
            KeySet::from_jwks(JWKS).unwrap(),
            Rules { accept_jwt_templates: true, max_lifetime_secs: 400 * 86_400, ..rules() },
        );
        assert!(templates.verify(&sign(&template)).is_ok());
        let mut no_iat = claims(json!({}));
        no_iat.as_object_mut().unwrap().remove("iat");
        assert_eq!(v.verify(&sign(&no_iat)).unwrap_err(), TokenError::InvalidClaims("\"iat\" is missing".into()));
        assert!(v.verify(&sign(&claims(json!({"iat": now() + 60})))).unwrap_err().is_claims_error());
    }

    #[test]
    fn expiry_is_exact_at_zero_skew() {
        let v = Verifier::new(KeySet::from_jwks(JWKS).unwrap(), Rules { clock_skew_secs: 0, ..rules() });
        assert_eq!(v.verify(&sign(&claims(json!({"exp": now()})))).unwrap_err(), TokenError::Expired);
        assert!(v.verify(&sign(&claims(json!({"exp": now() + 2})))).is_ok());
        // With a skew, refused from exp + skew on.
        assert_eq!(verifier().verify(&sign(&claims(json!({"exp": now() - 5})))).unwrap_err(), TokenError::Expired);
        assert_eq!(verifier().verify(&sign(&claims(json!({"nbf": now() + 6})))).unwrap_err(), TokenError::NotYetValid);
        assert!(verifier().verify(&sign(&claims(json!({"nbf": now() + 4})))).is_ok());
    }

    #[test]
    fn jwks_errors_are_clear() {
        assert!(KeySet::from_jwks("nope").err().unwrap().contains("not a JWKS"));
        assert!(KeySet::from_jwks(r#"{"keys":[]}"#).err().unwrap().contains("no usable"));
    }
}
