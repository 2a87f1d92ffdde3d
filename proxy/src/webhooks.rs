//! `POST /webhooks/clerk`: Clerk's events, delivered by Svix. The
//! signature is checked here (HMAC-SHA256 of `id.timestamp.body` with the
//! `whsec_` secret, every `v1,` signature tried in constant time, timestamp
//! within 5 minutes); applying the event is `clerk_apply_webhook()` in SQL,
//! run as the `clerk_webhook` role in one transaction, once per svix-id.

use crate::error::ApiError;
use crate::sql::Statement;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a delivery's timestamp may be from our clock, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

pub struct WebhookVerifier {
    key: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum WebhookError {
    MissingHeader(&'static str),
    BadTimestamp,
    OutsideTolerance(i64),
    BadSignature,
}

impl WebhookVerifier {
    /// From `clerk-webhook-secret`: `whsec_` + base64.
    pub fn from_secret(secret: &str) -> Result<WebhookVerifier, String> {
        let encoded = secret.strip_prefix("whsec_").ok_or("must start with whsec_ (copy it from the Clerk dashboard)")?;
        let key = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| "the part after whsec_ is not base64")?;
        Ok(WebhookVerifier { key })
    }

    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), WebhookError> {
        let id = id.ok_or(WebhookError::MissingHeader("svix-id"))?;
        let timestamp = timestamp.ok_or(WebhookError::MissingHeader("svix-timestamp"))?;
        let signatures = signatures.ok_or(WebhookError::MissingHeader("svix-signature"))?;
        let ts: i64 = timestamp.trim().parse().map_err(|_| WebhookError::BadTimestamp)?;
        if (now - ts).abs() > TOLERANCE_SECS {
            return Err(WebhookError::OutsideTolerance(now - ts));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        let candidates = signatures.split_whitespace().filter_map(|s| s.strip_prefix("v1,"));
        for candidate in candidates {
            if let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(candidate) {
                if mac.clone().verify_slice(&sig).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(WebhookError::BadSignature)
    }
}

/// The statement applying a verified event.
pub fn apply(svix_id: &str, body: &[u8]) -> Result<Statement, ApiError> {
    let body = std::str::from_utf8(body)
        .ok()
        .filter(|b| serde_json::from_str::<serde_json::Value>(b).is_ok())
        .ok_or_else(|| ApiError::invalid_body("The webhook body is not JSON".into(), None))?;
    Ok(Statement::new(
        "SELECT json_build_object('outcome', clerk_apply_webhook(CAST($1 AS text), CAST($2 AS jsonb)))::text, 1::bigint, NULL::bigint"
            .into(),
        vec![Some(svix_id.to_owned()), Some(body.to_owned())],
    ))
}

#[cfg(test)]
pub fn sign(secret_key: &[u8], id: &str, ts: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn key() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(&SECRET[6..]).unwrap()
    }

    #[test]
    fn accepts_any_matching_v1_signature() {
        let v = WebhookVerifier::from_secret(SECRET).unwrap();
        let body = br#"{"type":"user.created"}"#;
        let good = sign(&key(), "msg_1", 1000, body);
        let header = format!("v1,AAAA {good} v2,zzz");
        assert_eq!(v.verify(Some("msg_1"), Some("1000"), Some(&header), body, 1010), Ok(()));
    }

    #[test]
    fn refusals() {
        let v = WebhookVerifier::from_secret(SECRET).unwrap();
        let body = br#"{"type":"user.created"}"#;
        let good = sign(&key(), "msg_1", 1000, body);
        assert_eq!(v.verify(None, Some("1000"), Some(&good), body, 1000), Err(WebhookError::MissingHeader("svix-id")));
        assert_eq!(v.verify(Some("msg_1"), Some("soon"), Some(&good), body, 1000), Err(WebhookError::BadTimestamp));
        assert_eq!(v.verify(Some("msg_1"), Some("1000"), Some(&good), body, 1000 + 301), Err(WebhookError::OutsideTolerance(301)));
        assert_eq!(v.verify(Some("msg_1"), Some("1000"), Some(&good), body, 1000 - 301), Err(WebhookError::OutsideTolerance(-301)));
        assert_eq!(v.verify(Some("msg_2"), Some("1000"), Some(&good), body, 1000), Err(WebhookError::BadSignature));
        assert_eq!(
            v.verify(Some("msg_1"), Some("1000"), Some(&good), br#"{"type":"user.deleted"}"#, 1000),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(v.verify(Some("msg_1"), Some("1000"), Some("v1,!!!"), body, 1000), Err(WebhookError::BadSignature));
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        assert!(WebhookVerifier::from_secret("MfKQ9r8").is_err());
        assert!(WebhookVerifier::from_secret("whsec_***").is_err());
    }
}
