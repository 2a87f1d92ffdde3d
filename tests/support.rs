//! What the end-to-end tests share: where the database and the proxy
//! binary are (set by `scripts/test.sh`), and a Clerk id type for
//! binary-protocol clients.

use bytes::BytesMut;
use postgres_types::{FromSql, IsNull, ToSql, Type};
use std::error::Error;

/// The test cluster's connection string (a database with pg_clerk installed). These tests need the real
/// database `make test` starts, so a missing variable is a failure.
pub fn dsn() -> String {
    std::env::var("PG_CLERK_TEST_DSN").expect("PG_CLERK_TEST_DSN is not set: run these tests with `make test`")
}

/// A database with pg_clerk and the reference schema (sql/) applied.
pub fn schema_dsn() -> String {
    std::env::var("PG_CLERK_TEST_SCHEMA_DSN").expect("PG_CLERK_TEST_SCHEMA_DSN is not set: run these tests with `make test`")
}

pub fn proxy_bin() -> String {
    std::env::var("CLERK_PROXY_BIN").expect("CLERK_PROXY_BIN is not set: run these tests with `make test`")
}

pub async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&dsn(), tokio_postgres::NoTls).await.expect("connect to the test cluster");
    tokio::spawn(connection);
    client
}

/// A `clerk_user_id` / `clerk_org_id` / `clerk_session_id` value as a
/// binary-protocol client sends and receives it: the id's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkId(pub String);

fn is_clerk_id(ty: &Type) -> bool {
    matches!(ty.name(), "clerk_user_id" | "clerk_org_id" | "clerk_session_id")
}

impl ToSql for ClerkId {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        is_clerk_id(ty)
    }
    postgres_types::to_sql_checked!();
}

impl<'a> FromSql<'a> for ClerkId {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(ClerkId(std::str::from_utf8(raw)?.to_owned()))
    }
    fn accepts(ty: &Type) -> bool {
        is_clerk_id(ty)
    }
}
