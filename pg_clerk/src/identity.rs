//! `current_clerk_*()`, `clerk_has_permission()` and `clerk_authenticate()`.
//!
//! RLS policies call these once per row, so the claims are parsed once per
//! distinct claims text: each call reads the setting's bytes (no copy),
//! compares them with the last text parsed in this backend and reuses
//! that parse when equal. Errors are cached the same way and raised on
//! every call, so a bad `sub` can never read as anonymous.

use crate::claims::Identity;
use crate::fmgr::{arg_bytes, c_function, raise, return_null, text_datum};
use crate::gucs;
use clerk_jwt::{split_list, KeySet, Rules, Verifier};
use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use pgrx::PgSqlErrorCode::*;
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::rc::Rc;

/// The last claims text seen and what it parsed to.
struct Parsed {
    text: Vec<u8>,
    identity: Result<Rc<Identity>, String>,
}

thread_local! {
    static LAST_CLAIMS: RefCell<Option<Parsed>> = const { RefCell::new(None) };
    static LAST_VERIFIER: RefCell<Option<(Vec<u8>, Rc<Verifier>)>> = const { RefCell::new(None) };
}

const REQUEST_CLAIMS: &CStr = c"request.jwt.claims";

/// The claims text in force: what `clerk_authenticate()` verified in this
/// transaction, else (unless `pg_clerk.require_verified`) `request.jwt.claims`.
fn claims_text() -> &'static [u8] {
    let verified = gucs::raw_bytes(&gucs::VERIFIED_CLAIMS);
    if !verified.is_empty() || gucs::REQUIRE_VERIFIED.get() {
        return verified;
    }
    // SAFETY: GetConfigOption returns NULL or a string Postgres owns until
    // the setting changes; we only read it during this call.
    unsafe {
        let ptr = pg_sys::GetConfigOption(REQUEST_CLAIMS.as_ptr(), true, false);
        if ptr.is_null() {
            &[]
        } else {
            CStr::from_ptr(ptr).to_bytes()
        }
    }
}

/// Runs `f` on the current identity, parsing only when the text changed.
fn with_identity<R>(f: impl FnOnce(&Identity) -> R) -> R {
    let text = claims_text();
    let identity = LAST_CLAIMS.with_borrow_mut(|last| {
        if last.as_ref().is_none_or(|p| p.text != text) {
            let parsed =
                std::str::from_utf8(text).map_err(|e| e.to_string()).and_then(|s| Identity::from_claims_json(s).map_err(|e| e.to_string()));
            *last = Some(Parsed { text: text.to_vec(), identity: parsed.map(Rc::new) });
        }
        last.as_ref().map(|p| p.identity.clone()).expect("just filled")
    });
    match identity {
        Ok(identity) => f(&identity),
        Err(why) => raise(
            ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!("pg_clerk: invalid request claims: {why}"),
            None,
            Some("request.jwt.claims must hold the JSON claims of a verified Clerk session token."),
        ),
    }
}

fn text_or_null(fcinfo: FunctionCallInfo, value: Option<&str>) -> Datum {
    match value {
        Some(v) => text_datum(v.as_bytes()),
        None => return_null(fcinfo),
    }
}

/// `current_clerk_user()`, `_org()`, `_session()`, `_org_role()`: one
/// field of the identity, NULL when absent.
macro_rules! identity_field_functions {
    ($($name:ident => $field:ident;)*) => {$(
        c_function! { fn $name(fcinfo) -> Datum { with_identity(|id| text_or_null(fcinfo, id.$field.as_deref())) } }
    )*};
}

identity_field_functions! {
    current_clerk_user => user;
    current_clerk_org => org;
    current_clerk_session => session;
    current_clerk_org_role => org_role;
}

c_function! {
    /// `clerk_has_permission(text) → bool` (STRICT: NULL in, NULL out).
    fn clerk_has_permission(fcinfo) -> Datum {
        let wanted = arg_bytes(fcinfo, 0);
        with_identity(|id| Datum::from(id.permissions.iter().any(|p| p.as_bytes() == wanted)))
    }
}

c_function! {
    /// `current_clerk_claims() → jsonb`: the claims in force, NULL when none.
    fn current_clerk_claims(fcinfo) -> Datum {
        with_identity(|_| ()); // the same validation as the other functions
        let text = claims_text();
        if text.is_empty() {
            return return_null(fcinfo);
        }
        let cstring = CString::new(text).unwrap_or_default();
        pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(Datum::from(cstring.as_ptr()))])
            .unwrap_or_else(|| return_null(fcinfo))
    }
}

/// The verifier for the current settings, rebuilt only when they change.
fn verifier() -> Rc<Verifier> {
    let jwks = gucs::raw_bytes(&gucs::JWKS);
    if jwks.is_empty() {
        raise(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "pg_clerk: pg_clerk.jwks is not set, so tokens cannot be verified".into(),
            None,
            Some("As a superuser: ALTER SYSTEM SET pg_clerk.jwks = '<contents of https://<frontend-api>/.well-known/jwks.json>'; SELECT pg_reload_conf();"),
        );
    }
    let issuer = gucs::string(&gucs::ISSUER);
    let parties = gucs::string(&gucs::AUTHORIZED_PARTIES).map(|p| split_list(&p)).unwrap_or_default();
    let skew = gucs::CLOCK_SKEW.get().max(0) as u64;
    // The cache key covers every setting the verifier is built from.
    let key =
        [jwks, b"\0", issuer.as_deref().unwrap_or("").as_bytes(), b"\0", parties.join(",").as_bytes(), b"\0", skew.to_string().as_bytes()]
            .concat();
    LAST_VERIFIER.with_borrow_mut(|last| {
        if let Some((_, v)) = last.as_ref().filter(|(k, _)| *k == key) {
            return v.clone();
        }
        let keys = KeySet::from_jwks(&String::from_utf8_lossy(jwks))
            .unwrap_or_else(|why| raise(ERRCODE_INVALID_PARAMETER_VALUE, format!("pg_clerk: pg_clerk.jwks: {why}"), None, None));
        let rules = Rules { issuer, authorized_parties: parties, clock_skew_secs: skew, ..Rules::default() };
        let v = Rc::new(Verifier::new(keys, rules));
        *last = Some((key, v.clone()));
        v
    })
}

/// Sets a setting for the rest of the transaction, as `SET LOCAL` would.
fn set_local(name: &CStr, value: &str, context: pg_sys::GucContext::Type) {
    let value = CString::new(value).expect("JSON text has no NUL");
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            0,
            false,
        );
    }
}

c_function! {
    /// `clerk_authenticate(token text) → clerk_user_id`: verifies the token
    /// and makes its claims this transaction's identity.
    fn clerk_authenticate(fcinfo) -> Datum {
        let token = String::from_utf8_lossy(arg_bytes(fcinfo, 0)).into_owned();
        let claims = match verifier().verify(token.trim()) {
            Ok(claims) => claims,
            Err(why) => raise(
                ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
                format!("pg_clerk: {why}"),
                None,
                None,
            ),
        };
        let identity = Identity::from_claims(&claims).unwrap_or_else(|why| {
            raise(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, format!("pg_clerk: token claims are invalid: {why}"), None, None)
        });
        let json = serde_json::Value::Object(claims).to_string();
        // SUSET context: the setting is superuser-only, but this function
        // (not the caller) is the one writing it, after verification.
        set_local(gucs::VERIFIED_CLAIMS_NAME, &json, pg_sys::GucContext::PGC_SUSET);
        // Also the PostgREST/Supabase convention, for policies that read it.
        set_local(REQUEST_CLAIMS, &json, pg_sys::GucContext::PGC_USERSET);
        text_or_null(fcinfo, identity.user.as_deref())
    }
}
