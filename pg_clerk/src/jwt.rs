//! RS256 verification of Clerk session tokens against a JWKS, as
//! `clerk_authenticate()` does inside the database. Pure Rust.
//!
//! Only RS256 is accepted (what Clerk signs with): `alg: none`, HS256
//! (including the "RSA public key as HMAC secret" confusion) and anything
//! else are refused before any key is touched.

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::fmt;

/// Tokens longer than this are refused unread (Clerk's are ~1 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

pub struct Verifier {
    keys: Vec<(Option<String>, DecodingKey)>,
    issuer: Option<String>,
    authorized_parties: Vec<String>,
    clock_skew_secs: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    TooLarge(usize),
    Malformed(String),
    UnsupportedAlgorithm(String),
    UnknownKey(Option<String>),
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    UnauthorizedParty(String),
    PendingSession,
    InvalidClaims(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLarge(n) => write!(f, "token is {n} bytes; the limit is {MAX_TOKEN_BYTES}"),
            TokenError::Malformed(why) => write!(f, "token is not a well-formed JWT: {why}"),
            TokenError::UnsupportedAlgorithm(alg) => write!(f, "token algorithm \"{alg}\" is not accepted (only RS256)"),
            TokenError::UnknownKey(Some(kid)) => write!(f, "token key id \"{kid}\" is not in pg_clerk.jwks"),
            TokenError::UnknownKey(None) => write!(f, "token has no kid and pg_clerk.jwks holds more than one key"),
            TokenError::BadSignature => write!(f, "token signature does not verify"),
            TokenError::Expired => write!(f, "token has expired"),
            TokenError::NotYetValid => write!(f, "token is not valid yet (nbf is in the future)"),
            TokenError::WrongIssuer => write!(f, "token issuer does not match pg_clerk.issuer"),
            TokenError::UnauthorizedParty(azp) => write!(f, "token azp \"{azp}\" is not in pg_clerk.authorized_parties"),
            TokenError::PendingSession => write!(f, "token belongs to a pending session (sts: pending)"),
            TokenError::InvalidClaims(why) => write!(f, "token claims are invalid: {why}"),
        }
    }
}

impl std::error::Error for TokenError {}

impl Verifier {
    /// Builds a verifier from a JWKS document. Keys that are not RSA
    /// signing keys are skipped; a set with no usable key is an error.
    pub fn from_jwks(
        jwks_json: &str,
        issuer: Option<String>,
        authorized_parties: Vec<String>,
        clock_skew_secs: u64,
    ) -> Result<Verifier, String> {
        let set: JwkSet = serde_json::from_str(jwks_json).map_err(|e| format!("pg_clerk.jwks is not a JWKS document: {e}"))?;
        let keys: Vec<_> = set
            .keys
            .iter()
            .filter(|k| matches!(k.algorithm, AlgorithmParameters::RSA(_)))
            .filter_map(|k| DecodingKey::from_jwk(k).ok().map(|key| (k.common.key_id.clone(), key)))
            .collect();
        if keys.is_empty() {
            return Err("pg_clerk.jwks holds no RSA signing key".into());
        }
        Ok(Verifier { keys, issuer, authorized_parties, clock_skew_secs })
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge(token.len()));
        }
        let header = read_header(token)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg != "RS256" {
            return Err(TokenError::UnsupportedAlgorithm(alg.to_owned()));
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let key = match kid {
            Some(kid) => self.keys.iter().find(|(k, _)| k.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
        .map(|(_, key)| key)
        .ok_or_else(|| TokenError::UnknownKey(kid.map(str::to_owned)))?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = self.clock_skew_secs;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.set_required_spec_claims(&["exp", "iss"]);
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::WrongIssuer,
                ErrorKind::MissingRequiredClaim(c) => TokenError::InvalidClaims(format!("\"{c}\" is missing")),
                ErrorKind::InvalidAlgorithm => TokenError::UnsupportedAlgorithm(alg.to_owned()),
                _ => TokenError::Malformed(e.to_string()),
            })?
            .claims;

        if let (false, Some(azp)) = (self.authorized_parties.is_empty(), claims.get("azp").and_then(Value::as_str)) {
            if !self.authorized_parties.iter().any(|p| p == azp) {
                return Err(TokenError::UnauthorizedParty(azp.to_owned()));
            }
        }
        if claims.get("sts").and_then(Value::as_str) == Some("pending") {
            return Err(TokenError::PendingSession);
        }
        match claims.get("sub") {
            Some(Value::String(_)) => Ok(claims),
            _ => Err(TokenError::InvalidClaims("\"sub\" is missing".into())),
        }
    }
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

#[cfg(any(test, feature = "pg_test"))]
pub mod test_keys {
    //! A fixed RSA key pair for tests only (never used for anything real),
    //! and a signer that makes tokens with it.
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::Value;

    pub const PRIVATE_PEM: &str = include_str!("../tests/fixtures/test_rs256_private.pem");
    pub const JWKS: &str = include_str!("../tests/fixtures/test_jwks.json");
    pub const KID: &str = "ins_test_key_1";

    pub fn sign(claims: &Value) -> String {
        sign_with(claims, Some(KID))
    }

    pub fn sign_with(claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &EncodingKey::from_rsa_pem(PRIVATE_PEM.as_bytes()).unwrap()).unwrap()
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

    fn verifier() -> Verifier {
        Verifier::from_jwks(JWKS, Some("https://clerk.example.com".into()), vec!["https://app.example.com".into()], 5)
            .unwrap()
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

        // HS256 keyed with the public key's bytes: the classic confusion attack.
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header { kid: Some(KID.into()), ..jsonwebtoken::Header::new(Algorithm::HS256) },
            &claims(json!({})),
            &jsonwebtoken::EncodingKey::from_secret(JWKS.as_bytes()),
        )
        .unwrap();
        assert_eq!(v.verify(&hs).unwrap_err(), TokenError::UnsupportedAlgorithm("HS256".into()));

        // A valid signature on someone else's payload.
        let good = sign(&claims(json!({})));
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(v.verify(&forged).unwrap_err(), TokenError::BadSignature);
    }

    #[test]
    fn jwks_errors_are_clear() {
        assert!(Verifier::from_jwks("nope", None, vec![], 5).err().unwrap().contains("not a JWKS"));
        assert!(Verifier::from_jwks(r#"{"keys":[]}"#, None, vec![], 5).err().unwrap().contains("no RSA"));
    }
}
