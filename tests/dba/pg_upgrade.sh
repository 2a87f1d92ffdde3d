#!/usr/bin/env bash
# tests/dba/pg_upgrade.sh OLD_PORT NEW_PORT: a PostgreSQL 15 cluster using
# pg_clerk (the reference schema, the demo data and 100,000 orders keyed by
# clerk_user_id) upgraded with pg_upgrade to PostgreSQL 18, where pg_clerk
# is installed too: the same answers (tests/dba/answers.sql), the same ids,
# every btree index valid (amcheck, heapallindexed). Both majors must have
# the extension installed (scripts/lib.sh install_extension).
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OLD_PORT=$1 NEW_PORT=$2 DB=pg_clerk_upgrade
old_bin=$("$(pg_config_of 15)" --bindir)
new_bin=$("$(pg_config_of 18)" --bindir)
work=$(owned_tmpdir pg_upgrade)
cleanup() {
  PG_MAJOR=15 "$ROOT/scripts/cluster.sh" stop "$work/old" || true
  PG_MAJOR=18 "$ROOT/scripts/cluster.sh" stop "$work/new" || true
  rm -rf "$work"
}
trap cleanup EXIT
sql_at() { # sql_at BIN PORT [psql args]
  local bin=$1 port=$2; shift 2
  PGOPTIONS='-c client_min_messages=warning' "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$DB" "$@"
}
digest="SELECT md5(string_agg(order_id || ':' || user_id || ':' || order_number, ',' ORDER BY order_id)) FROM orders"

say "PostgreSQL 15 with pg_clerk, the reference schema and 100,000 orders"
PG_MAJOR=15 "$ROOT/scripts/cluster.sh" start "$work/old" "$OLD_PORT"
"$old_bin/psql" -X -q -h 127.0.0.1 -p "$OLD_PORT" -U postgres -d postgres -c "CREATE DATABASE $DB"
sql_at "$old_bin" "$OLD_PORT" -c "CREATE EXTENSION pg_clerk"
for f in "$ROOT"/sql/*.sql "$ROOT/demo/data.sql"; do sql_at "$old_bin" "$OLD_PORT" -f "$f" >/dev/null; done
sql_at "$old_bin" "$OLD_PORT" <<'SQL'
SET session_replication_role = replica;
INSERT INTO orders (order_number, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, created_at)
SELECT 'ORD-UP-' || n, ('user_2up' || (n % 10000))::clerk_user_id, 'N', 'n@example.com', '{}', 30, 30, 'confirmed',
       now() - make_interval(mins => n)
  FROM generate_series(1, 100000) n;
CREATE INDEX orders_user_hash ON orders USING hash (user_id);
ANALYZE;
SQL
sql_at "$old_bin" "$OLD_PORT" -f "$ROOT/tests/dba/answers.sql" >"$work/before.txt"
before=$(sql_at "$old_bin" "$OLD_PORT" -Atc "$digest")
# The PostgreSQL 15.20 of these machines (Debian's package as installed
# here) stamps every column with an attribute option, pg_attver, that no
# stock PostgreSQL knows: 18 refuses it when pg_upgrade restores the
# schema ("unrecognized parameter"). It carries no data; it is removed
# from the old catalog first, as a DBA on such a build would have to.
for db in template1 postgres "$DB"; do
  "$old_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$OLD_PORT" -U postgres -d "$db" -c "
    UPDATE pg_attribute
       SET attoptions = nullif(ARRAY(SELECT o FROM unnest(attoptions) o WHERE o NOT LIKE 'pg_attver=%'), '{}')
     WHERE attoptions::text LIKE '%pg_attver=%'"
done
PG_MAJOR=15 "$ROOT/scripts/cluster.sh" stop "$work/old"

say "pg_upgrade to PostgreSQL 18"
# Without data checksums, as the 15 cluster (18's initdb turns them on).
PG_MAJOR=18 INITDB_OPTIONS=--no-data-checksums "$ROOT/scripts/cluster.sh" start "$work/new" "$NEW_PORT"
PG_MAJOR=18 "$ROOT/scripts/cluster.sh" stop "$work/new"
(cd "$work" && as_owner "$new_bin/pg_upgrade" -U postgres -b "$old_bin" -B "$new_bin" \
   -d "$work/old/data" -D "$work/new/data" -p "$OLD_PORT" -P "$NEW_PORT" >"$work/pg_upgrade.log" 2>&1) \
  || { cat "$work/pg_upgrade.log" >&2; find "$work/new/data" -name 'pg_upgrade_*.log' -exec grep -h -B 3 -A 6 -E 'ERROR|FATAL' {} + >&2; exit 1; }
PG_MAJOR=18 "$ROOT/scripts/cluster.sh" start "$work/new" "$NEW_PORT"

sql_at "$new_bin" "$NEW_PORT" -f "$ROOT/tests/dba/answers.sql" >"$work/after.txt"
diff -u --label "PostgreSQL 15" --label "PostgreSQL 18 after pg_upgrade" "$work/before.txt" "$work/after.txt" >&2 \
  || { say "the upgraded cluster answers differently (above)"; exit 1; }
after=$(sql_at "$new_bin" "$NEW_PORT" -Atc "$digest")
[ "$before" = "$after" ] || { say "orders changed across pg_upgrade: $before, then $after"; exit 1; }
checked=$(sql_at "$new_bin" "$NEW_PORT" -At <<'SQL'
CREATE EXTENSION amcheck;
SELECT count(bt_index_check(c.oid, true))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
 WHERE a.amname = 'btree' AND c.relnamespace = 'public'::regnamespace;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM orders WHERE user_id = 'user_2up42';
SQL
)
[ "$(echo "$checked" | tail -1)" = 10 ] || { say "an index lookup after pg_upgrade: $checked"; exit 1; }
say "pg_upgrade 15 → 18: the same answers and ids; $(echo "$checked" | head -1) btree indexes pass amcheck"
