#!/usr/bin/env bash
# tests/dba/versions.sh PORT: every released version of pg_clerk installs,
# and `ALTER EXTENSION pg_clerk UPDATE` from it gives exactly the objects of
# a fresh install of the current version (tests/dba/extension_catalogue.sql,
# object by object), keeping the data of tables that use the id types,
# their indexes valid (amcheck). Runs on a cluster of scripts/cluster.sh
# with the extension installed (scripts/lib.sh install_extension).
# A release that changes the extension's SQL adds its update script in
# pg_clerk/sql/ and its full script stays there: this test picks up both.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
PORT=$1
current=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PGOPTIONS='-c client_min_messages=warning'

psql_su "$PORT" postgres -qc "DROP DATABASE IF EXISTS pg_clerk_fresh" -c "CREATE DATABASE pg_clerk_fresh"
psql_su "$PORT" pg_clerk_fresh -qc "CREATE EXTENSION pg_clerk"
psql_su "$PORT" pg_clerk_fresh -f "$ROOT/tests/dba/extension_catalogue.sql" >"$work/fresh.txt"
[ "$(psql_su "$PORT" pg_clerk_fresh -Atc "SELECT extversion FROM pg_extension WHERE extname = 'pg_clerk'")" = "$current" ]

for script in "$ROOT"/pg_clerk/sql/pg_clerk--*.sql; do
  name=$(basename "$script" .sql)
  case "$name" in *--*--*) continue ;; esac   # update scripts
  old=${name#pg_clerk--}
  say "pg_clerk $old, then ALTER EXTENSION pg_clerk UPDATE to $current"
  db="pg_clerk_from_${old//./_}"
  psql_su "$PORT" postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  psql_su "$PORT" "$db" -q <<SQL
CREATE EXTENSION pg_clerk VERSION '$old';
CREATE EXTENSION IF NOT EXISTS amcheck;
CREATE TABLE accounts (
    user_id    clerk_user_id PRIMARY KEY,
    org_id     clerk_org_id,
    session_id clerk_session_id
);
CREATE INDEX accounts_org ON accounts (org_id);
CREATE INDEX accounts_session ON accounts USING hash (session_id);
INSERT INTO accounts
SELECT ('user_2v' || n)::clerk_user_id, ('org_2v' || n % 100)::clerk_org_id, ('sess_2v' || n)::clerk_session_id
  FROM generate_series(1, 20000) n;
CREATE TABLE before_update AS SELECT md5(string_agg(user_id || org_id || session_id, ',' ORDER BY user_id)) AS digest FROM accounts;
SQL
  psql_su "$PORT" "$db" -qc "ALTER EXTENSION pg_clerk UPDATE"
  psql_su "$PORT" "$db" -f "$ROOT/tests/dba/extension_catalogue.sql" >"$work/updated.txt"
  diff -u --label "fresh $current" --label "$old updated to $current" "$work/fresh.txt" "$work/updated.txt" >&2 \
    || { say "pg_clerk $old updated to $current differs from a fresh $current (above)"; exit 1; }
  psql_su "$PORT" "$db" -q >/dev/null <<'SQL'
SET enable_seqscan = off;
DO $$
BEGIN
    IF (SELECT digest FROM before_update) IS DISTINCT FROM
       (SELECT md5(string_agg(user_id || org_id || session_id, ',' ORDER BY user_id)) FROM accounts) THEN
        RAISE EXCEPTION 'the ids changed across the update';
    END IF;
    IF (SELECT count(*) FROM accounts WHERE org_id = 'org_2v7') <> 200
       OR (SELECT count(*) FROM accounts WHERE session_id = 'sess_2v12345') <> 1
       OR (SELECT count(*) FROM accounts WHERE user_id = 'user_2v777') <> 1 THEN
        RAISE EXCEPTION 'an index lookup lost rows across the update';
    END IF;
END
$$;
SELECT bt_index_check(i::regclass, true) FROM (VALUES ('accounts_pkey'), ('accounts_org')) v(i);
SQL
  psql_su "$PORT" postgres -qc "DROP DATABASE $db"
done
psql_su "$PORT" postgres -qc "DROP DATABASE pg_clerk_fresh"
say "every pg_clerk version updates to $current with the objects of a fresh install ($(wc -l <"$work/fresh.txt") objects)"
