//! Every pg_clerk setting, in one place, with who may change it.
//!
//! All of them are `SUSET`: a role that could change the keys, the issuer
//! or `require_verified` could undo verified mode, so only a superuser
//! (postgresql.conf, `ALTER SYSTEM`, `ALTER DATABASE … SET`) may.
//! `pg_clerk.verified_claims` is written by `clerk_authenticate()` only,
//! transaction-locally, so it disappears at COMMIT/ROLLBACK and follows
//! the transaction into parallel workers.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::{CStr, CString};

pub static JWKS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static AUTHORIZED_PARTIES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static CLOCK_SKEW: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static REQUIRE_VERIFIED: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static VERIFIED_CLAIMS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub const VERIFIED_CLAIMS_NAME: &CStr = c"pg_clerk.verified_claims";

pub fn define() {
    GucRegistry::define_string_guc(
        c"pg_clerk.jwks",
        c"JSON Web Key Set (the JSON document) that clerk_authenticate() verifies tokens with.",
        c"Copy it from https://<your-clerk-frontend-api>/.well-known/jwks.json.",
        &JWKS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_clerk.issuer",
        c"Required iss claim of verified tokens (your Clerk Frontend API URL); empty accepts any.",
        c"",
        &ISSUER,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_clerk.authorized_parties",
        c"Comma-separated origins accepted in the azp claim; empty accepts any.",
        c"As in Clerk's SDKs, a token without azp is accepted.",
        &AUTHORIZED_PARTIES,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_clerk.clock_skew",
        c"Seconds of clock difference tolerated when checking exp and nbf.",
        c"",
        &CLOCK_SKEW,
        0,
        600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"pg_clerk.require_verified",
        c"Identity functions read only claims verified by clerk_authenticate() in this transaction.",
        c"When on, a hand-set request.jwt.claims is ignored, so knowing the database password is not enough to act as a user.",
        &REQUIRE_VERIFIED,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        VERIFIED_CLAIMS_NAME,
        c"Claims verified by clerk_authenticate() in this transaction (set by pg_clerk only).",
        c"",
        &VERIFIED_CLAIMS,
        GucContext::Suset,
        GucFlags::NO_SHOW_ALL | GucFlags::NO_RESET_ALL | GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE,
    );
}

/// The raw bytes of a string setting, without copying; empty when unset.
pub fn raw_bytes(setting: &'static GucSetting<Option<CString>>) -> &'static [u8] {
    // SAFETY: Postgres owns the string and keeps it alive until the setting
    // changes, which cannot happen while our function runs.
    unsafe {
        let ptr = *setting.as_ptr();
        if ptr.is_null() {
            &[]
        } else {
            CStr::from_ptr(ptr).to_bytes()
        }
    }
}

pub fn string(setting: &'static GucSetting<Option<CString>>) -> Option<String> {
    let bytes = raw_bytes(setting);
    if bytes.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}
