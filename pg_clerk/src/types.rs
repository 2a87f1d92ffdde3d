//! Input functions of `clerk_user_id`, `clerk_org_id`, `clerk_session_id`.
//!
//! Only the ways a value enters the database need code: text input,
//! binary receive and the cast from text, and all of them validate. Output, send, comparison and
//! hashing are the byte-wise built-ins (`textout`, `textsend`, `byteacmp`,
//! `hashvarlena`, …) bound in `sql/types.sql`, since the stored form is
//! exactly a text varlena.

use crate::clerk_id::IdKind;
use crate::fmgr::{arg_bytes, c_function, raise, text_datum};
use pgrx::pg_sys::{self, Datum};
use pgrx::PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION;
use std::cmp::Ordering;

fn validated(kind: IdKind, bytes: &[u8]) -> pg_sys::Datum {
    if let Err(e) = kind.validate(bytes) {
        raise(ERRCODE_INVALID_TEXT_REPRESENTATION, e.to_string(), Some(e.detail()), None);
    }
    text_datum(bytes)
}

/// `typinput`: arg 0 is a C string.
unsafe fn input(kind: IdKind, fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let cstr = unsafe { std::ffi::CStr::from_ptr(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0).cast_mut_ptr()) };
    validated(kind, cstr.to_bytes())
}

/// `typreceive`: arg 0 is the StringInfo of the wire message; the binary
/// form of an id is its text, as for `text`.
unsafe fn receive(kind: IdKind, fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let buf: *mut pg_sys::StringInfoData = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0).cast_mut_ptr();
        let remaining = ((*buf).len - (*buf).cursor) as usize;
        let bytes = std::slice::from_raw_parts((*buf).data.add((*buf).cursor as usize) as *const u8, remaining);
        (*buf).cursor = (*buf).len;
        validated(kind, bytes)
    }
}

/// The cast from `text`/`varchar`: validate, then hand back the very same
/// datum, since a valid text is already a valid id (no copy, no
/// text → cstring → id round trip).
unsafe fn from_text(kind: IdKind, fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    if let Err(e) = kind.validate(unsafe { arg_bytes(fcinfo, 0) }) {
        raise(ERRCODE_INVALID_TEXT_REPRESENTATION, e.to_string(), Some(e.detail()), None);
    }
    unsafe { pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0) }
}

macro_rules! id_type_functions {
    ($($kind:expr => $in:ident, $recv:ident, $from_text:ident;)*) => {$(
        c_function! { fn $in(fcinfo) -> Datum { input($kind, fcinfo) } }
        c_function! { fn $recv(fcinfo) -> Datum { receive($kind, fcinfo) } }
        c_function! { fn $from_text(fcinfo) -> Datum { from_text($kind, fcinfo) } }
    )*};
}

id_type_functions! {
    IdKind::User => clerk_user_id_in, clerk_user_id_recv, clerk_user_id_from_text;
    IdKind::Org => clerk_org_id_in, clerk_org_id_recv, clerk_org_id_from_text;
    IdKind::Session => clerk_session_id_in, clerk_session_id_recv, clerk_session_id_from_text;
}

/// Compares argument 0 with argument 1 byte by byte (memcmp, then length):
/// the order of `COLLATE "C"`, the same on every locale.
fn compare(fcinfo: pg_sys::FunctionCallInfo) -> Ordering {
    unsafe { arg_bytes(fcinfo, 0).cmp(arg_bytes(fcinfo, 1)) }
}

macro_rules! comparison_functions {
    ($($name:ident => $test:expr;)*) => {$(
        c_function! { fn $name(fcinfo) -> Datum { Datum::from(($test)(compare(fcinfo))) } }
    )*};
}

comparison_functions! {
    clerk_id_eq => Ordering::is_eq;
    clerk_id_ne => Ordering::is_ne;
    clerk_id_lt => Ordering::is_lt;
    clerk_id_le => Ordering::is_le;
    clerk_id_gt => Ordering::is_gt;
    clerk_id_ge => Ordering::is_ge;
}

c_function! {
    fn clerk_id_cmp(fcinfo) -> Datum {
        Datum::from(compare(fcinfo) as i32)
    }
}

macro_rules! builtin_functions {
    ($($name:ident => $builtin:path;)*) => {$(
        c_function! { fn $name(fcinfo) -> Datum { $builtin(fcinfo) } }
    )*};
}

builtin_functions! {
    clerk_id_out => pg_sys::textout;
    clerk_id_send => pg_sys::textsend;
    clerk_id_hash => pg_sys::hashvarlena;
    clerk_id_hash_extended => pg_sys::hashvarlenaextended;
    // bytea's sort support: memcmp with abbreviated keys.
    clerk_id_sortsupport => pg_sys::bytea_sortsupport;
}

c_function! {
    /// The casts to text and varchar: the same bytes, through a function
    /// rather than `WITHOUT FUNCTION`. A binary-coercible cast lets the
    /// planner match `id::text` to an index on `id`, and PostgreSQL 18's
    /// LIKE prefix support then looks up the index's collation, which a
    /// non-collatable type does not have ("cache lookup failed for
    /// collation 0" for `WHERE id::text LIKE 'user_%'`).
    fn clerk_id_to_text(fcinfo) -> Datum {
        // The argument is already a valid text datum; returning it as is,
        // as varchar(varchar, integer, boolean) does, copies nothing.
        pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0)
    }
}
