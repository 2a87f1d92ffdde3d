//! Tests that need a running Postgres with the extension (`cargo pgrx test`).
//! The SQL-visible behaviour is covered, in a form a DBA can read, by the
//! regression suite in `pg_clerk/regress`; these cover what is awkward
//! there: tokens signed at test time and the per-backend caches.

#[pgrx::pg_schema]
mod tests {
    use clerk_jwt::test_keys::{now, sign, JWKS};
    use pgrx::prelude::*;
    use serde_json::json;

    fn one(sql: &str) -> Option<String> {
        Spi::get_one::<String>(sql).unwrap()
    }

    fn set_claims(claims: &str) {
        Spi::run(&format!("SELECT set_config('request.jwt.claims', '{claims}', true)")).unwrap();
    }

    fn configure_jwks() {
        Spi::run(&format!("SET LOCAL pg_clerk.jwks = '{JWKS}'")).unwrap();
        Spi::run("SET LOCAL pg_clerk.issuer = 'https://clerk.example.com'").unwrap();
    }

    fn token(sub: &str, exp_offset: i64) -> String {
        sign(&json!({"sub": sub, "sid": "sess_1", "iss": "https://clerk.example.com",
                     "iat": now() - 5, "exp": (now() as i64 + exp_offset), "nbf": now() - 5}))
    }

    #[pg_test]
    fn identity_follows_the_claims_text_within_one_transaction() {
        set_claims(r#"{"sub":"user_a"}"#);
        assert_eq!(one("SELECT current_clerk_user()::text").as_deref(), Some("user_a"));
        assert_eq!(one("SELECT current_clerk_user()::text").as_deref(), Some("user_a"));
        // A new text must not be answered from the cache of the old one.
        set_claims(r#"{"sub":"user_b","org_id":"org_1","org_role":"org:member"}"#);
        assert_eq!(one("SELECT current_clerk_user()::text").as_deref(), Some("user_b"));
        assert_eq!(one("SELECT current_clerk_org_role()").as_deref(), Some("org:member"));
        set_claims("");
        assert_eq!(one("SELECT current_clerk_user()::text"), None);
    }

    #[pg_test(error = "pg_clerk: invalid request claims: claim \"sub\" is not a valid clerk_user_id: \"usr_1\"")]
    fn a_bad_sub_is_an_error_every_time_not_anonymous() {
        set_claims(r#"{"sub":"usr_1"}"#);
        // The first call fails inside a subtransaction; the cached parse must fail again.
        let first = PgTryBuilder::new(|| one("SELECT current_clerk_user()::text")).catch_others(|_| Some("caught".into())).execute();
        assert_eq!(first.as_deref(), Some("caught"));
        one("SELECT current_clerk_user()::text");
    }

    #[pg_test]
    fn clerk_authenticate_makes_verified_claims_the_identity() {
        configure_jwks();
        let t = token("user_verified", 60);
        assert_eq!(one(&format!("SELECT clerk_authenticate('{t}')::text")).as_deref(), Some("user_verified"));
        assert_eq!(one("SELECT current_clerk_user()::text").as_deref(), Some("user_verified"));
        assert_eq!(one("SELECT current_clerk_session()::text").as_deref(), Some("sess_1"));
        // The PostgREST convention is filled too, for policies that read it.
        assert_eq!(one("SELECT current_setting('request.jwt.claims')::jsonb->>'sub'").as_deref(), Some("user_verified"));
        // Verified claims win over a hand-set request.jwt.claims.
        set_claims(r#"{"sub":"user_forged"}"#);
        assert_eq!(one("SELECT current_clerk_user()::text").as_deref(), Some("user_verified"));
    }

    #[pg_test]
    fn require_verified_ignores_hand_set_claims() {
        configure_jwks();
        Spi::run("SET LOCAL pg_clerk.require_verified = on").unwrap();
        set_claims(r#"{"sub":"user_forged"}"#);
        assert_eq!(one("SELECT current_clerk_user()::text"), None);
        let t = token("user_real", 60);
        Spi::run(&format!("SELECT clerk_authenticate('{t}')")).unwrap();
        assert_eq!(one("SELECT current_clerk_user()::text").as_deref(), Some("user_real"));
    }

    #[pg_test(error = "pg_clerk: token has expired")]
    fn expired_token_is_rejected() {
        configure_jwks();
        let t = token("user_late", -3600);
        Spi::run(&format!("SELECT clerk_authenticate('{t}')")).unwrap();
    }

    #[pg_test(error = "pg_clerk: token issuer is not the configured one")]
    fn wrong_issuer_is_rejected() {
        configure_jwks();
        let t = sign(&json!({"sub": "user_1", "iss": "https://evil.example.com", "exp": now() + 60}));
        Spi::run(&format!("SELECT clerk_authenticate('{t}')")).unwrap();
    }

    #[pg_test(error = "pg_clerk: pg_clerk.jwks is not set, so tokens cannot be verified")]
    fn authenticate_without_jwks_says_what_to_configure() {
        Spi::run("SELECT clerk_authenticate('a.b.c')").unwrap();
    }

    #[pg_test]
    fn verifier_is_rebuilt_when_settings_change() {
        configure_jwks();
        let t = token("user_1", 60);
        Spi::run(&format!("SELECT clerk_authenticate('{t}')")).unwrap();
        Spi::run("SET LOCAL pg_clerk.issuer = 'https://other.example.com'").unwrap();
        let after = PgTryBuilder::new(|| Spi::run(&format!("SELECT clerk_authenticate('{t}')")).is_ok()).catch_others(|_| false).execute();
        assert!(!after, "a changed issuer must be enforced at once");
    }

    /// Existing pseudonyms keep their values: clerk_hmac_sha256() gives
    /// pgcrypto's hmac(…, 'sha256') bytes for empty, short and long data
    /// and for keys shorter and longer than SHA-256's 64-byte block.
    /// (PostgreSQL 15 from Debian has pgcrypto; the PG 18 build has not.)
    #[cfg(feature = "pg15")]
    #[pg_test]
    fn hmac_sha256_is_pgcrypto_hmac() {
        Spi::run("CREATE EXTENSION IF NOT EXISTS pgcrypto").unwrap();
        let differ = Spi::get_one::<i64>(
            "SELECT count(*) FROM (
                 SELECT convert_to(repeat('user_' || md5(n::text), n % 9), 'UTF8') AS data,
                        substring(decode(repeat(md5((7 * n)::text), 6), 'hex') FOR 1 + n % 96) AS key
                   FROM generate_series(0, 999) n) c
              WHERE clerk_hmac_sha256(data, key) <> hmac(data, key, 'sha256')",
        )
        .unwrap();
        assert_eq!(differ, Some(0));
    }

    #[pg_test]
    fn random_bytes_are_the_length_asked_and_differ() {
        let same = Spi::get_one::<bool>("SELECT clerk_random_bytes(32) = clerk_random_bytes(32)").unwrap();
        assert_eq!(same, Some(false));
        let len = Spi::get_one::<i32>("SELECT length(clerk_random_bytes(32))").unwrap();
        assert_eq!(len, Some(32));
    }

    #[pg_test(error = "clerk_random_bytes: length must be 1 to 1024, got 0")]
    fn random_bytes_refuse_a_length_out_of_range() {
        Spi::run("SELECT clerk_random_bytes(0)").unwrap();
    }
}
