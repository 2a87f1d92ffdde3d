#!/usr/bin/env bash
# `make test`: every suite, against real PostgreSQL 15 clusters that this
# script creates and always removes (also on failure or Ctrl-C).
#   1. Rust unit tests (proxy, clerk_jwt; the extension's pure modules run in 2.)
#   2. pgrx tests: the extension inside a Postgres pgrx starts
#   3. SQL regression tests of the extension (pg_clerk/regress)
#   4. SQL regression tests of the reference schema (tests/schema), with
#      sql/ applied twice to show every file is safe to re-run
#   5. end-to-end tests (tests/): binary protocol clients, concurrency of
#      the schema, the proxy binary, properties of the API under random
#      requests from many users (tests/properties.rs)
#   6. a short run of each fuzz target (fuzz/, FUZZ_SMOKE_SECONDS each,
#      default 15; `make fuzz` runs them longer)
#   7. the postgrest-js suite (tests/postgrest-js): the proxy driven by the
#      real @supabase/postgrest-js client, as an app uses it, and the demo's
#      storefront page in headless Chromium calling it with supabase-js
#      from another origin (node --test)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PORT=${PG_CLERK_TEST_PORT:-54329}
work=$(owned_tmpdir test)
cleanup() {
  "$ROOT/scripts/cluster.sh" stop "$work/cluster" || true
  [ -d "$work/pgrx/data" ] && sudo_stop_pgrx || true
  rm -rf "$work"
}
sudo_stop_pgrx() {
  if is_root; then sudo -u postgres "$PG_BIN/pg_ctl" -D "$work/pgrx/data" -m immediate stop >/dev/null 2>&1
  else "$PG_BIN/pg_ctl" -D "$work/pgrx/data" -m immediate stop >/dev/null 2>&1; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "1/7 unit tests (clerk-proxy, clerk_jwt)"
cargo test -q -p clerk-proxy -p clerk_jwt

say "2/7 pgrx tests (pg_clerk inside PostgreSQL 15)"
install -d -m 700 "$work/pgrx"; is_root && chown postgres:postgres "$work/pgrx"
runas=(); is_root && runas=(--runas postgres)
(cd pg_clerk && cargo pgrx test pg15 "${runas[@]}" --pgdata "$work/pgrx/data")

say "3/7 SQL regression tests of the extension"
install_extension   # the plain build, over the one pgrx test installed
"$ROOT/scripts/cluster.sh" start "$work/cluster" "$PORT"
eval "$(pg_clerk/regress/tokens.sh)"
mkdir -p "$work/regress" "$work/regress-schema"
PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres \
  "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
  --inputdir=pg_clerk/regress --outputdir="$work/regress" \
  --dbname=pg_clerk_regress --load-extension=pg_clerk \
  setup types identity rls verified \
  || { cat "$work/regress/regression.diffs" >&2 2>/dev/null; exit 1; }

# A database with the extension and the reference schema.
new_schema_db() { # new_schema_db NAME
  psql_su "$PORT" postgres -c "CREATE DATABASE $1"
  psql_su "$PORT" "$1" -c "CREATE EXTENSION pg_clerk"
  apply_schema "$PORT" "$1"
}

say "4/7 SQL regression tests of the reference schema"
new_schema_db pg_clerk_schema
apply_schema "$PORT" pg_clerk_schema
PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres \
  "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
  --use-existing --inputdir=tests/schema --outputdir="$work/regress-schema" --dbname=pg_clerk_schema \
  setup constraints order_numbers tiers coupons orders audit webhooks analytics outbox reviews staff_roles client_keys pending_orders webhook_order private_columns hardening \
  || { cat "$work/regress-schema/regression.diffs" >&2 2>/dev/null; exit 1; }

say "5/7 end-to-end tests"
cargo build -q -p clerk-proxy
psql_su "$PORT" postgres -c "CREATE DATABASE pg_clerk_e2e"
psql_su "$PORT" pg_clerk_e2e -c "CREATE EXTENSION pg_clerk"
new_schema_db pg_clerk_concurrency
new_schema_db pg_clerk_api
psql_su "$PORT" pg_clerk_api -f demo/data.sql >/dev/null
PG_CLERK_TEST_DSN="host=127.0.0.1 port=$PORT user=postgres dbname=pg_clerk_e2e" \
PG_CLERK_TEST_SCHEMA_DSN="host=127.0.0.1 port=$PORT user=postgres dbname=pg_clerk_concurrency" \
PG_CLERK_TEST_API_DSN="host=127.0.0.1 port=$PORT user=authenticator dbname=pg_clerk_api" \
CLERK_PROXY_BIN="$ROOT/target/debug/clerk-proxy" \
  cargo test -q -p pg_clerk_e2e

say "6/7 fuzz smoke run (cargo fuzz, ${FUZZ_SMOKE_SECONDS:-15}s per target)"
FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-15} scripts/fuzz.sh

say "7/7 postgrest-js conformance suite (tests/postgrest-js)"
(cd tests/postgrest-js && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd demo/storefront && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
PGOPTIONS='-c client_min_messages=warning' psql_su "$PORT" pg_clerk_api -f tests/postgrest-js/fixtures.sql >/dev/null
(cd tests/postgrest-js &&
  PG_CLERK_TEST_API_DSN="host=127.0.0.1 port=$PORT user=authenticator dbname=pg_clerk_api" \
  CLERK_PROXY_BIN="$ROOT/target/debug/clerk-proxy" \
    node --test --test-reporter=spec)

say "all test suites passed"
