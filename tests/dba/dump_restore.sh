#!/usr/bin/env bash
# tests/dba/dump_restore.sh PORT DB: pg_dump of DB (the reference schema
# with data: the id types, their operator classes, policies, functions)
# restored with pg_restore into a new database of the same cluster answers
# every question of tests/dba/answers.sql as DB does.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
PORT=$1 DB=$2 COPY=${2}_restored
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PGOPTIONS='-c client_min_messages=warning'

answers() { psql_su "$PORT" "$1" -f "$ROOT/tests/dba/answers.sql"; }

"$PG_BIN/pg_dump" -h 127.0.0.1 -p "$PORT" -U postgres -Fc -f "$work/dump" "$DB"
psql_su "$PORT" postgres -qc "DROP DATABASE IF EXISTS $COPY" -c "CREATE DATABASE $COPY"
"$PG_BIN/pg_restore" -h 127.0.0.1 -p "$PORT" -U postgres --exit-on-error -d "$COPY" "$work/dump"
answers "$DB" >"$work/before.txt"
answers "$COPY" >"$work/after.txt"
diff -u --label "$DB" --label "$COPY (pg_dump | pg_restore)" "$work/before.txt" "$work/after.txt" >&2 \
  || { say "the restored database answers differently (above)"; exit 1; }
psql_su "$PORT" postgres -qc "DROP DATABASE $COPY"
say "pg_dump | pg_restore of $DB: the same $(wc -l <"$work/before.txt") answers"
