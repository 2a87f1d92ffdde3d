#!/usr/bin/env bash
# Beyond one machine, measured on one: a read-heavy mix (9 reads to 1 POST
# /rpc: benches/load_users.lua, LOAD_MIX=read) through clerk-proxy
#   - on the primary alone, and on the primary plus one hot standby
#     (pg_basebackup -R of it; db-replica-uris): the routing's cost and the
#     share of reads the standby served;
#   - straight to PostgreSQL and through PgBouncer in transaction mode, both
#     with db-prepared-statements = false (a pooler in transaction mode
#     needs it), and straight with prepared statements (the default).
# Everything runs on this machine's cores: the standby adds no capacity
# here, so the point is the overhead and that it stays correct.
#
#   SCALE_SECONDS (10) per run, SCALE_CONCURRENCY ("8 32"), SCALE_OUT
#   (target/bench/scale.md); the cluster, users and first proxy come from
#   benches/load_setup.sh.
set -euo pipefail
source "$(dirname "$0")/load_setup.sh"

SECONDS_EACH=${SCALE_SECONDS:-10}
CONCURRENCY=${SCALE_CONCURRENCY:-"8 32"}
OUT=${SCALE_OUT:-$ROOT/target/bench/scale.md}
STANDBY_PORT=$((PORT + 10))
BOUNCER_PORT=$((PORT + 11))

pids=()
scale_cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    if kill "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; fi
  done
  as_owner "$PG_BIN/pg_ctl" -D "$work/standby" -m immediate -w stop >/dev/null 2>&1 || true
  stop_throwaway_cluster
}
trap scale_cleanup EXIT

say "a hot standby of the load cluster (pg_basebackup -R), port $STANDBY_PORT"
as_owner "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -R -X stream -c fast -D "$work/standby"
printf "\nport = %s\nunix_socket_directories = '%s'\n" "$STANDBY_PORT" "$work/standby" | as_owner tee -a "$work/standby/postgresql.conf" >/dev/null
as_owner "$PG_BIN/pg_ctl" -D "$work/standby" -l "$work/standby/server.log" -w -t 60 start >/dev/null

say "PgBouncer (transaction mode, a pool of $DB_POOL) on port $BOUNCER_PORT"
printf '"authenticator" ""\n' >"$work/userlist.txt"
cat >"$work/pgbouncer.ini" <<CONF
[databases]
$DB = host=127.0.0.1 port=$PORT dbname=$DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = transaction
default_pool_size = $DB_POOL
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,options
logfile = $work/pgbouncer.log
CONF
bouncer_user=(); is_root && { chown postgres:postgres "$work/pgbouncer.ini" "$work/userlist.txt"; bouncer_user=(-u postgres); }
pgbouncer -q "${bouncer_user[@]}" "$work/pgbouncer.ini" &
pids+=($!)

# start_variant NAME API_PORT EXTRA_CONFIG: another proxy, like the first but for EXTRA_CONFIG.
start_variant() {
  grep -v -e '^server-port' -e '^admin-server-port' -e '^db-uri' "$work/proxy.conf" >"$work/$1.conf"
  printf 'server-port = %s\nadmin-server-port = %s\n%s\n' "$2" "$(($2 + 1))" "$3" >>"$work/$1.conf"
  "$PROXY_BIN" --config "$work/$1.conf" 2>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$2/live" >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "$1 did not start: $(tail -5 "$work/$1.log")"; exit 1
}
PRIMARY="db-uri = \"postgres://authenticator@127.0.0.1:$PORT/$DB\""
start_variant standby $((API_PORT + 2)) "$PRIMARY
db-replica-uris = \"postgres://authenticator@127.0.0.1:$STANDBY_PORT/$DB\""
start_variant unprepared $((API_PORT + 4)) "$PRIMARY
db-prepared-statements = false"
start_variant bouncer $((API_PORT + 6)) "db-uri = \"postgres://authenticator@127.0.0.1:$BOUNCER_PORT/$DB\"
db-prepared-statements = false"
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$((API_PORT + 3))/ready" | grep -q '"state":"serving"' && break; sleep 0.1
done

metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

# mix_run PORT CONNECTIONS -> rps errors
mix_run() {
  local w
  w=$(LOAD_MIX=read LOAD_TOKENS="$work/tokens.txt" wrk -t 1 -c "$2" -d "${SECONDS_EACH}s" -s benches/load_users.lua "http://127.0.0.1:$1/")
  rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$w")
  errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$w")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'; }

rows=()
for c in $CONCURRENCY; do
  say "read-heavy mix, $c connections, ${SECONDS_EACH}s each: primary alone, primary + standby, unprepared, PgBouncer"
  mix_run "$API_PORT" "$c"; alone=$rps; e1=$errors
  before=$(metric $((API_PORT + 3)) clerk_proxy_replica_reads_total)
  mix_run $((API_PORT + 2)) "$c"; replicated=$rps; e2=$errors
  after=$(metric $((API_PORT + 3)) clerk_proxy_replica_reads_total)
  share=$(awk -v n="$((after - before))" -v r="$replicated" -v s="$SECONDS_EACH" 'BEGIN { printf "%.0f%%", (r > 0 ? 100 * n / (r * s) : 0) }')
  mix_run $((API_PORT + 4)) "$c"; direct=$rps; e3=$errors
  mix_run $((API_PORT + 6)) "$c"; pooled=$rps; e4=$errors
  if [ $((e1 + e2 + e3 + e4)) -gt 0 ]; then
    say "errors at $c connections ($e1 alone, $e2 with the standby, $e3 unprepared, $e4 through PgBouncer); the proxies' and PgBouncer's logs:"
    tail -n 5 "$work"/standby.log "$work"/unprepared.log "$work"/bouncer.log "$work"/pgbouncer.log "$work"/proxy.log >&2 || true
    for pid in "${pids[@]}" "$proxy_pid"; do kill -0 "$pid" 2>/dev/null || say "process $pid has exited"; done
  fi
  rows+=("| $c | $alone | $replicated | **$(ratio "$replicated" "$alone")** | $share | $direct | $pooled | **$(ratio "$pooled" "$direct")** | $((e1 + e2 + e3 + e4)) |")
done

# What sharing rate-limit counters through PostgreSQL would cost: the
# cheap read as the proxy runs it, then the same plus a counter upsert (an
# unlogged table keyed by user and second), which must run in a
# transaction of its own on the primary (a read-only one, or a standby's,
# cannot write).
say "shared rate-limit counters: pgbench, the cheap read without and with a counter upsert"
psql_su "$PORT" "$DB" -qc "CREATE UNLOGGED TABLE IF NOT EXISTS bench_rate_counts (user_key text, second bigint, n integer NOT NULL,
  PRIMARY KEY (user_key, second)); GRANT INSERT, UPDATE, SELECT ON bench_rate_counts TO authenticator"
cat >"$work/read.sql" <<'SQL'
\set p random(1, 8)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true), set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT product_id, name, price FROM products WHERE product_id = :p;
COMMIT;
SQL
{ cat "$work/read.sql"; cat <<'SQL'
\set u random(1, 100)
INSERT INTO bench_rate_counts VALUES ('user_load' || :u, floor(extract(epoch FROM clock_timestamp())), 1)
  ON CONFLICT (user_key, second) DO UPDATE SET n = bench_rate_counts.n + 1 RETURNING n;
SQL
} >"$work/read_counted.sql"
pgbench_tps() {
  "$PG_BIN/pgbench" -n -M prepared -h 127.0.0.1 -p "$PORT" -U authenticator -c 8 -j 1 -T "$SECONDS_EACH" -f "$1" "$DB" 2>&1 \
    | awk '/^tps/ {printf "%.0f", $3}'
}
plain_tps=$(pgbench_tps "$work/read.sql"); counted_tps=$(pgbench_tps "$work/read_counted.sql")
plain_tps2=$(pgbench_tps "$work/read.sql"); counted_tps2=$(pgbench_tps "$work/read_counted.sql")
sync_commit=$(psql_su "$PORT" "$DB" -Atc "SHOW synchronous_commit")

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- proxy || echo "+changes")
mkdir -p "$(dirname "$OUT")"
{
  echo "Machine: $(nproc) cores ($cpu), PostgreSQL $(psql_su "$PORT" "$DB" -Atc "SHOW server_version"), $(pgbouncer --version | head -1); primary, standby, PgBouncer, the proxies (release, commit $commit, db-pool $DB_POOL each, a standby's pool of as many) and wrk all on this machine. Command: \`make bench\` (\`benches/scale.sh\`), $(date -u +%Y-%m-%d), ${SECONDS_EACH}s per run."
  echo
  echo "Read-heavy mix: per request at random, 5 in 10 \`GET /orders\` as one of $USERS users, 4 in 10 \`GET /products?product_id=eq.N&select=…\` anonymous, 1 in 10 \`POST /rpc/customer_tier\` (runs on the primary). req/s from wrk -t1 (closed loop). \"Reads on the standby\": \`clerk_proxy_replica_reads_total\` over all requests of that run."
  echo
  echo "| connections | primary alone (req/s) | primary + standby | + standby / alone | requests on the standby | straight, unprepared | through PgBouncer | PgBouncer / straight | non-2xx + errors |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Rate-limit counters shared through PostgreSQL, what they would cost: pgbench -M prepared -c 8, ${SECONDS_EACH}s per run, two rounds: the cheap read as the proxy runs it (a READ ONLY transaction) **$plain_tps / $plain_tps2 tps**; the same plus a counter upsert in a transaction of its own on the primary (unlogged table, key (user, second)) **$counted_tps / $counted_tps2 tps** ($(ratio "$counted_tps" "$plain_tps") / $(ratio "$counted_tps2" "$plain_tps2")), with synchronous_commit = $sync_commit as this cluster runs (on, every counter commit also waits for a WAL flush). And every read would need the primary."
} | tee "$OUT"
