#!/usr/bin/env bash
# HTTP load against clerk-proxy next to pgbench running the same SQL
# transaction on the same cluster, at the same concurrency, in one run:
# the proxy's cost is the ratio. GET /orders as a signed-in user (RLS).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
source "$ROOT/scripts/jwt.sh"
cd "$ROOT"

PORT=${PG_CLERK_LOAD_PORT:-54336}
API_PORT=${PG_CLERK_LOAD_API_PORT:-3036}
SECONDS_EACH=${LOAD_SECONDS:-10}
CONCURRENCY=${LOAD_CONCURRENCY:-"8 32"}
DB=pg_clerk_load
OUT=${LOAD_OUT:-$ROOT/target/bench/load.md}

command -v wrk >/dev/null || { say "wrk is missing: run make bench (it installs it)"; exit 1; }
install_extension --release
say "building clerk-proxy (release)"
cargo build -q --release -p clerk-proxy

start_throwaway_cluster load "$PORT"
psql_su "$PORT" postgres -c "CREATE DATABASE $DB"
psql_su "$PORT" "$DB" -c "CREATE EXTENSION pg_clerk"
apply_schema "$PORT" "$DB"
psql_su "$PORT" "$DB" -f demo/data.sql >/dev/null

openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
openssl rsa -in "$work/key.pem" -pubout -out "$work/pub.pem" 2>/dev/null
now=$(date +%s)
token=$(sign_rs256 "$work/key.pem" '{"alg":"RS256","typ":"JWT"}' \
  "{\"sub\":\"user_2demoAlice\",\"sid\":\"sess_load\",\"iss\":\"https://clerk.load.local\",\"nbf\":$((now - 5)),\"exp\":$((now + 3600))}")
claims=$(printf '%s' "$token" | cut -d. -f2 | tr '_-' '/+' | { b=$(cat); while [ $(( ${#b} % 4 )) -ne 0 ]; do b="$b="; done; printf '%s' "$b"; } | openssl base64 -d -A)

cat >"$work/proxy.conf" <<CONF
db-uri = "postgres://authenticator@127.0.0.1:$PORT/$DB"
db-anon-role = "anon"
db-pool = 8
server-port = $API_PORT
clerk-public-key = "@$work/pub.pem"
clerk-issuer = "https://clerk.load.local"
CONF
target/release/clerk-proxy --config "$work/proxy.conf" 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$API_PORT/live" >/dev/null 2>&1 && break; sleep 0.1; done
body=$(curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$API_PORT/orders")
[ "$(printf '%s' "$body" | grep -o '"order_id"' | wc -l)" = 2 ] || { say "unexpected /orders answer: $body"; exit 1; }

# The transaction clerk-proxy runs for that request, for pgbench.
cat >"$work/orders.sql" <<SQL
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '$claims', true), set_config('request.method', 'GET', true), set_config('request.path', '/orders', true), set_config('request.headers', '{}', true), set_config('request.cookies', '{}', true);
SELECT coalesce(json_agg(_pgrst_row), '[]')::text, count(*), NULL::bigint FROM (SELECT * FROM "public"."orders") _pgrst_row;
COMMIT;
SQL

# The same four statements sent as one pipeline, as clerk-proxy sends them.
{ echo '\startpipeline'; cat "$work/orders.sql"; echo '\endpipeline'; } >"$work/orders_pipelined.sql"

rows=()
for c in $CONCURRENCY; do
  say "concurrency $c: wrk against clerk-proxy, ${SECONDS_EACH}s"
  w=$(wrk -t 1 -c "$c" -d "${SECONDS_EACH}s" --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$API_PORT/orders")
  rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$w")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$w")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$w")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$w"); errors=${errors:-0}
  rss=$(awk '/VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$proxy_pid/status")
  say "concurrency $c: pgbench, same transaction, ${SECONDS_EACH}s"
  pg=$("$PG_BIN/pgbench" -n -M extended -h 127.0.0.1 -p "$PORT" -U authenticator -c "$c" -j 1 -T "$SECONDS_EACH" -f "$work/orders.sql" "$DB" 2>&1)
  tps=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$pg")
  lat=$(awk '/latency average/ {print $4 " ms"}' <<<"$pg")
  pgp=$("$PG_BIN/pgbench" -n -M extended -h 127.0.0.1 -p "$PORT" -U authenticator -c "$c" -j 1 -T "$SECONDS_EACH" -f "$work/orders_pipelined.sql" "$DB" 2>&1)
  tps_pipelined=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$pgp")
  ratio=$(awk -v a="$rps" -v b="$tps" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }')
  rows+=("| $c | $rps | $p50 | $p99 | $errors | $rss | $tps | $lat | $tps_pipelined | $ratio |")
done

mkdir -p "$(dirname "$OUT")"
{
  echo "GET /orders as a signed-in user (RLS, 2 rows), \`make bench\` ($(date -u +%Y-%m-%d)): $(nproc) cores, clerk-proxy (release, db-pool 8), PostgreSQL 15 and the load generators on the same machine; wrk -t1 ${SECONDS_EACH}s (p99 from wrk, not corrected for coordinated omission); pgbench -M extended -j1 with the identical transaction, sent statement by statement and as one pipeline."
  echo
  echo "| connections | proxy req/s | p50 | p99 | non-2xx | proxy RSS | pgbench tps | pgbench latency avg | pgbench tps, pipelined | proxy / pgbench |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT"
