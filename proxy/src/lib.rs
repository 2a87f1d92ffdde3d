//! clerk-proxy: verifies Clerk session JWTs and serves a PostgREST-compatible
//! API over PostgreSQL. One module per stage of a request, in its order:
//! `config` (once, at start-up) → `auth` → `request` → `plan` (against the
//! `schema` cache) → `sql` → `db` (on the server `replicas` picks) → `response`; `api` runs a request through
//! them; `admin` answers operational endpoints, `metrics`, `access_log` and `limits` watch and bound the traffic; `webhooks` takes Clerk's events; `sync` sends customer metadata back to Clerk.

// ApiError is the whole catalogue entry (status, code, message, details,
// hint, headers): large, and returned only on the error path. Boxing it
// would cost an allocation per error and change every signature, for no
// measured gain.
#![allow(clippy::result_large_err)]

pub mod access_log;
pub mod action;
pub mod admin;
pub mod api;
pub mod auth;
pub mod body;
pub mod config;
pub mod db;
pub mod edge;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod plan;
pub mod replicas;
pub mod request;
pub mod response;
pub mod schema;
pub mod sql;
pub mod sync;
pub mod webhooks;
