#!/usr/bin/env bash
# The soak's control: PostgreSQL alone, with pgbench running the soak's
# three kinds of transaction (one of each, as `make bench` captured them in
# target/bench/load_*_001.sql) from 16 clients, on the cluster the soak
# uses, with statements over 250 ms logged. Shows whether PostgreSQL stalls
# on this machine without clerk-proxy in the path.
#
#   PGBENCH_SOAK_SECONDS (300), PGBENCH_SOAK_RATE (empty: as fast as it goes;
#   e.g. 7200 for the soak's rate)
set -euo pipefail
export PG_CLERK_LOAD_PORT=${PG_CLERK_LOAD_PORT:-54338} PG_CLERK_LOAD_API_PORT=${PG_CLERK_LOAD_API_PORT:-3040}
source "$(dirname "$0")/load_setup.sh"
scripts=(target/bench/load_products_001.sql target/bench/load_orders_001.sql target/bench/load_rpc_customer_tier_001.sql)
for f in "${scripts[@]}"; do [ -f "$f" ] || { say "$f is missing: run make bench first (it captures the transactions)"; exit 1; }; done
# Only PostgreSQL under load: the proxy load_setup.sh started is stopped.
if kill -INT "$proxy_pid"; then wait "$proxy_pid" || true; fi
proxy_pid=
SECS=${PGBENCH_SOAK_SECONDS:-300}
RATE=${PGBENCH_SOAK_RATE:-}

script_args=(); for f in "${scripts[@]}"; do script_args+=(-f "$f"); done
set_server_log log_min_duration_statement 250ms
say "pgbench, 16 clients, ${SECS}s${RATE:+ at $RATE tps}, the soak's three transactions"
out=$("$PG_BIN/pgbench" -n -M prepared -h 127.0.0.1 -p "$PORT" -U authenticator -c 16 -j 1 -T "$SECS" ${RATE:+-R "$RATE"} \
        -l --log-prefix="$work/pglat" "${script_args[@]}" "$DB" 2>&1)
slow=$(server_log_since_set | grep -c 'duration: ' || true)
over_1s=$(cat "$work"/pglat* | awk '$3 > 1000000' | wc -l)
echo "pgbench: $(awk '/^number of transactions actually processed/ {print $NF}' <<<"$out") transactions, $(awk '/^tps/ {printf "%.0f", $3}' <<<"$out") tps; PostgreSQL logged $slow statements over 250 ms; $over_1s transactions took over 1 s"
