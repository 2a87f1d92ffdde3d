//! The per-request work pg_clerk does in Rust, side by side:
//! id validation, claims → identity (v1 and v2 tokens, and a plain
//! serde_json parse for scale), and RS256 and HS256 verification as
//! `clerk_authenticate()` runs it. `make bench` runs this.

use clerk_jwt::test_keys::{sign_hs256, sign_with, KID};
use clerk_jwt::{KeySet, Rules, Verifier};
use criterion::{criterion_group, criterion_main, Criterion};
use pg_clerk::claims::Identity;
use pg_clerk::clerk_id::IdKind;
use std::hint::black_box;

const JWKS: &str = include_str!("../tests/fixtures/test_jwks.json");

const V1_CLAIMS: &str = r#"{"azp":"https://app.example.com","exp":1999999999,"iat":1700000000,"iss":"https://clerk.example.com","nbf":1699999990,"sid":"sess_2abcdefghijklmnopqrstuvwxyz","sub":"user_2abcdefghijklmnopqrstuvwxyz","org_id":"org_2abcdefghijklmnopqrstuvwxyz","org_role":"org:admin","org_slug":"acme","org_permissions":["org:invoices:read","org:invoices:create","org:teams:read"]}"#;
const V2_CLAIMS: &str = r#"{"azp":"https://app.example.com","exp":1999999999,"fea":"o:dashboard,o:teams","fva":[12,-1],"iat":1700000000,"iss":"https://clerk.example.com","nbf":1699999990,"o":{"fpm":"3,2","id":"org_2abcdefghijklmnopqrstuvwxyz","per":"manage,read","rol":"admin","slg":"acme"},"sid":"sess_2abcdefghijklmnopqrstuvwxyz","sts":"active","sub":"user_2abcdefghijklmnopqrstuvwxyz","v":2}"#;

fn ids(c: &mut Criterion) {
    let mut g = c.benchmark_group("clerk_user_id validation");
    g.bench_function("valid (32 bytes)", |b| b.iter(|| IdKind::User.validate(black_box(b"user_2NNEqL2nrIRdJ194ndJqAHwEfxC"))));
    g.bench_function("invalid (wrong prefix)", |b| b.iter(|| IdKind::User.validate(black_box(b"usr_2NNEqL2nrIRdJ194ndJqAHwEfxC"))));
    g.finish();
}

fn claims(c: &mut Criterion) {
    let mut g = c.benchmark_group("claims to identity");
    g.bench_function("v1 token", |b| b.iter(|| Identity::from_claims_json(black_box(V1_CLAIMS)).unwrap()));
    g.bench_function("v2 token (fpm decoded)", |b| b.iter(|| Identity::from_claims_json(black_box(V2_CLAIMS)).unwrap()));
    g.bench_function("serde_json::Value parse only (scale)", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(V2_CLAIMS)).unwrap())
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let rules = Rules {
        issuer: Some("https://clerk.example.com".into()),
        authorized_parties: vec!["https://app.example.com".into()],
        clock_skew_secs: 5,
        ..Rules::default()
    };
    let verifier = Verifier::new(KeySet::from_jwks(JWKS).unwrap(), rules.clone());
    let mut claims: serde_json::Value = serde_json::from_str(V2_CLAIMS).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    claims["exp"] = (now + 60).into();
    claims["nbf"] = (now - 10).into();
    claims["iat"] = (now - 10).into();
    let token = sign_with(&claims, Some(KID));
    assert!(verifier.verify(&token).is_ok(), "the benchmark token must verify");
    // HS256 (a shared secret, local development): the same claims, so the
    // difference to RS256 is the signature check.
    let secret = b"a-local-development-secret-of-32-bytes!";
    let hs_verifier = Verifier::new(KeySet::hs256(secret), rules);
    let hs_token = sign_hs256(&claims, secret);
    assert!(hs_verifier.verify(&hs_token).is_ok(), "the HS256 benchmark token must verify");

    let mut g = c.benchmark_group("clerk_authenticate path");
    g.bench_function("RS256 verify (2048-bit key)", |b| b.iter(|| verifier.verify(black_box(&token)).unwrap()));
    g.bench_function("HS256 verify", |b| b.iter(|| hs_verifier.verify(black_box(&hs_token)).unwrap()));
    g.bench_function("JWKS parse (verifier build)", |b| b.iter(|| KeySet::from_jwks(black_box(JWKS)).unwrap()));
    g.finish();
}

criterion_group!(benches, ids, claims, verify);
criterion_main!(benches);
