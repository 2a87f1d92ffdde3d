//! Input functions of `clerk_user_id`, `clerk_org_id`, `clerk_session_id`.
//!
//! Only the two ways a value enters the database need code: text input
//! and binary receive, and both validate. Output, send, comparison and
//! hashing are the byte-wise built-ins (`textout`, `textsend`, `byteacmp`,
//! `hashvarlena`, …) bound in `sql/types.sql`, since the stored form is
//! exactly a text varlena.

use crate::clerk_id::IdKind;
use crate::fmgr::{c_function, raise, text_datum};
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION;

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

macro_rules! id_type_functions {
    ($($kind:expr => $in:ident, $recv:ident;)*) => {$(
        c_function! { fn $in(fcinfo) -> Datum { input($kind, fcinfo) } }
        c_function! { fn $recv(fcinfo) -> Datum { receive($kind, fcinfo) } }
    )*};
}

id_type_functions! {
    IdKind::User => clerk_user_id_in, clerk_user_id_recv;
    IdKind::Org => clerk_org_id_in, clerk_org_id_recv;
    IdKind::Session => clerk_session_id_in, clerk_session_id_recv;
}
