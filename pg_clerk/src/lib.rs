//! pg_clerk: Clerk identity as a first-class thing inside PostgreSQL.
//!
//! The pure logic lives in plain modules with their own unit tests
//! (`clerk_id`, `claims`, and token verification in the shared `clerk_jwt`
//! crate); the Postgres glue is thin
//! (`types`, `identity`, `gucs`) and the SQL definitions are readable
//! files under `src/sql/`, included in order below.

pub mod claims;
pub mod clerk_id;

mod fmgr;
mod gucs;
mod identity;
mod pseudonym;
mod types;

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

::pgrx::pg_module_magic!();

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::define();
}

pgrx::extension_sql_file!("sql/types.sql", name = "types", bootstrap);
pgrx::extension_sql_file!("sql/identity.sql", name = "identity", requires = ["types"]);
pgrx::extension_sql_file!("sql/business.sql", name = "business", requires = ["identity"]);
pgrx::extension_sql_file!("sql/pseudonym.sql", name = "pseudonym", requires = ["business"]);
pgrx::extension_sql_file!("sql/rls.sql", name = "rls", requires = ["pseudonym"], finalize);

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
