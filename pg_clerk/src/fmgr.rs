//! The few fmgr-level helpers the C-callable functions share: reading
//! text-like arguments, returning text-like values, raising errors.
//!
//! The id types have the same on-disk form as `text` (a varlena of ASCII
//! bytes), so these helpers serve all of them.

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Declares a V1 C-callable function `$name(fcinfo) -> Datum` guarded by
/// pgrx (Rust panics and Postgres errors cross the boundary safely).
macro_rules! c_function {
    ($(#[$meta:meta])* fn $name:ident($fcinfo:ident) -> Datum $body:block) => {
        ::paste::paste! {
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub extern "C" fn [<pg_finfo_ $name>]() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
                const V1: ::pgrx::pg_sys::Pg_finfo_record = ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1
            }
        }
        $(#[$meta])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name($fcinfo: ::pgrx::pg_sys::FunctionCallInfo) -> ::pgrx::pg_sys::Datum {
            // What #[pg_guard] does: Rust panics and Postgres errors cross
            // the FFI boundary as Postgres errors.
            unsafe { ::pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(move || $body) }
        }
    };
}
pub(crate) use c_function;

/// The bytes of a text-like argument, read in place when the value is
/// inline and uncompressed (always, for ids of at most 64 bytes), else
/// detoasted.
///
/// # Safety
/// Argument `n` must exist, be non-NULL and be a varlena.
pub unsafe fn arg_bytes<'a>(fcinfo: FunctionCallInfo, n: usize) -> &'a [u8] {
    use pgrx::varlena::{varatt_is_1b, varatt_is_1b_e, varatt_is_4b_u, vardata_any, varsize_any_exhdr};
    unsafe {
        let mut v: *const pg_sys::varlena = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n).cast_mut_ptr();
        let inline = varatt_is_4b_u(v) || (varatt_is_1b(v) && !varatt_is_1b_e(v));
        if !inline {
            v = pg_sys::pg_detoast_datum_packed(v.cast_mut());
        }
        std::slice::from_raw_parts(vardata_any(v) as *const u8, varsize_any_exhdr(v))
    }
}

/// A text-like value (text, or one of the id types) as a Datum.
pub fn text_datum(bytes: &[u8]) -> Datum {
    unsafe { Datum::from(pg_sys::cstring_to_text_with_len(bytes.as_ptr().cast(), bytes.len() as i32)) }
}

pub fn return_null(fcinfo: FunctionCallInfo) -> Datum {
    unsafe { pgrx::fcinfo::pg_return_null(fcinfo) }
}

/// Raises an ERROR with a SQLSTATE, message, detail and hint.
pub fn raise(code: PgSqlErrorCode, message: String, detail: Option<String>, hint: Option<&str>) -> ! {
    let mut report = pgrx::pg_sys::panic::ErrorReport::new(code, message, "pg_clerk");
    if let Some(d) = detail {
        report = report.set_detail(d);
    }
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}
