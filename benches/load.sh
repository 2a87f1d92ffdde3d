#!/usr/bin/env bash
# HTTP load against clerk-proxy next to pgbench running the identical SQL
# transactions on the same cluster, in one run: the proxy's cost is the
# ratio. The transactions are not written by hand: one request of each
# kind is sent with log_statement = 'all' and benches/pglog_to_pgbench.py
# turns what the server logged into pgbench scripts.
#
#   A cheap     GET /products?product_id=eq.3&select=product_id,name,price, anonymous
#   B RLS list  GET /orders as one of 100 users (a token per request, at random)
#   C RPC       POST /rpc/customer_tier as one of the same 100 users
#
# Per workload and concurrency: wrk (closed loop: req/s; the mean latency
# is connections / req/s, wrk's own latency figures are not used, see the
# note in the output), pgbench statement by statement, pgbench with the
# statements pipelined (as the proxy sends them). Then, at half of the
# proxy's peak rate, open loop: oha --latency-correction against pgbench
# -R (both count latency from the scheduled start): "p99 added".
#
#   LOAD_SECONDS (10) per closed-loop run, LOAD_OPEN_SECONDS (30) per
#   open-loop run (a p99 needs more samples than a mean), LOAD_CONCURRENCY ("8 32 64"), LOAD_PGBENCH_MODE (prepared), LOAD_WORKLOADS
#   ("A B C"), LOAD_OUT (target/bench/load.md); see benches/load_setup.sh
#   for ports and the pool.
set -euo pipefail
source "$(dirname "$0")/load_setup.sh"

SECONDS_EACH=${LOAD_SECONDS:-10}
OPEN_SECONDS=${LOAD_OPEN_SECONDS:-30}
CONCURRENCY=${LOAD_CONCURRENCY:-"8 32 64"}
WORKLOADS=${LOAD_WORKLOADS:-"A B C"}
# pgbench prepares its statements as clerk-proxy does (db-prepared-statements);
# LOAD_PGBENCH_MODE=extended compares with parsing every statement.
PGBENCH_MODE=${LOAD_PGBENCH_MODE:-prepared}
OUT=${LOAD_OUT:-$ROOT/target/bench/load.md}
OPEN_LOOP_CONNECTIONS=16
OHA=$(command -v oha || true)

# --- The transactions, as the server saw them --------------------------------
say "capturing the proxy's transactions (log_statement = all, $((1 + 2 * USERS)) requests)"
set_server_log log_statement all
start=$log_start
curl -fs -o /dev/null "$API/products?product_id=eq.3&select=product_id,name,price"
while read -r t; do
  curl -fs -o /dev/null -H "Authorization: Bearer $t" "$API/orders"
  curl -fs -o /dev/null -X POST -H "Authorization: Bearer $t" -H "Content-Type: application/json" -d '{}' "$API/rpc/customer_tier"
done <"$work/tokens.txt"
set_server_log log_statement none
captured=$(python3 benches/pglog_to_pgbench.py "$work/cluster/server.log" "$start" "$work/sql")
[ "$(sort <<<"$captured" | tr '\n' ' ')" = "orders $USERS products 1 rpc_customer_tier $USERS " ] \
  || { say "unexpected transactions in the log: $captured"; exit 1; }
last=$(printf '%03d' "$USERS")
grep -q "\"sub\":\"user_load$last\"" "$work/sql/orders_$last.sql" \
  || { say "the last /orders transaction is not the last user's: $(cat "$work/sql/orders_$last.sql")"; exit 1; }
# One of each next to the table, to read what was compared.
mkdir -p "$(dirname "$OUT")"
for f in products_001 orders_001 rpc_customer_tier_001; do cp "$work/sql/$f.sql" "$(dirname "$OUT")/load_$f.sql"; done

# pgbench's -f arguments for a workload: NAME [pipelined]; all captured
# transactions of that kind, one picked at random per transaction.
scripts() {
  local f suffix=${2:+_pipelined}
  for f in "$work/sql/$1"_[0-9][0-9][0-9]"$suffix".sql; do printf -- '-f\n%s@1\n' "$f"; done
}

# --- Runners: each sets its results in globals -------------------------------
# wrk_run CONNECTIONS [wrk args...] URL -> rps mean errors
wrk_run() {
  local c=$1 w; shift
  w=$(wrk -t 1 -c "$c" -d "${SECONDS_EACH}s" "$@")
  rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$w")
  mean=$(awk -v c="$c" -v r="$rps" 'BEGIN {printf "%.2f ms", (r > 0 ? 1000 * c / r : 0)}')
  errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$w")
}

# pgbench_run CONNECTIONS [pgbench args...] -> tps lat
pgbench_run() {
  local c=$1 out; shift
  out=$("$PG_BIN/pgbench" -n -M "$PGBENCH_MODE" -h 127.0.0.1 -p "$PORT" -U authenticator -c "$c" -j 1 -T "$SECONDS_EACH" "$@" "$DB" 2>&1) \
    || { say "pgbench failed: $(tail -5 <<<"$out")"; exit 1; }
  tps=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$out")
  lat=$(awk '/^latency average/ {printf "%.2f ms", $4}' <<<"$out")
}

# percentiles FILE COLUMN -> "p50 p99" in ms of the µs values in COLUMN
percentiles() {
  awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{v[NR] = $1} END {
    if (NR == 0) {print "- -"; exit}
    i50 = int(NR * 0.50); if (i50 < 1) i50 = 1; i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
    printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }'
}

# oha_run RATE [oha args...] URL -> orps op50 op99 oerrors (open loop, corrected)
oha_run() {
  local rate=$1 json; shift
  json=$("$OHA" --worker-threads 1 -z "${OPEN_SECONDS}s" -c "$OPEN_LOOP_CONNECTIONS" -q "$rate" --latency-correction --no-tui --output-format json "$@")
  read -r orps op50 op99 oerrors < <(python3 -c '
import json, sys
r = json.load(sys.stdin)
codes = r.get("statusCodeDistribution", {})
# Requests still in flight when the run ends are listed as errors too.
bad = (sum(n for code, n in codes.items() if not code.startswith("2"))
       + sum(n for e, n in r.get("errorDistribution", {}).items() if "deadline" not in e))
p = r["latencyPercentiles"]
print(round(r["summary"]["requestsPerSec"]), "%.2f" % (p["p50"] * 1000), "%.2f" % (p["p99"] * 1000), bad)' <<<"$json")
}

# pgbench_rate_run RATE [pgbench args...] -> rtps rp50 rp99 (latency from the scheduled start)
pgbench_rate_run() {
  local rate=$1 out; shift
  rm -f "$work"/pglat*
  out=$("$PG_BIN/pgbench" -n -M "$PGBENCH_MODE" -h 127.0.0.1 -p "$PORT" -U authenticator -c "$OPEN_LOOP_CONNECTIONS" -j 1 \
        -T "$OPEN_SECONDS" -R "$rate" -l --log-prefix="$work/pglat" "$@" "$DB" 2>&1) \
    || { say "pgbench failed: $(tail -5 <<<"$out")"; exit 1; }
  rtps=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$out")
  read -r rp50 rp99 < <(cat "$work"/pglat* | percentiles /dev/stdin 3)
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'; }

# --- The runs ------------------------------------------------------------------
declare -A NAME URL_OF WRK_ARGS SQL_OF
# shellcheck disable=SC2016 # backquotes for Markdown, not expansion
NAME[A]='A cheap: `GET /products?product_id=eq.3&select=product_id,name,price`, anonymous'
URL_OF[A]="$API/products?product_id=eq.3&select=product_id,name,price"; WRK_ARGS[A]=""; SQL_OF[A]=products
NAME[B]="B RLS list: \`GET /orders\` as one of $USERS users (2 rows each)"
URL_OF[B]="$API/orders"; WRK_ARGS[B]="-s benches/load_users.lua"; SQL_OF[B]=orders
NAME[C]="C RPC: \`POST /rpc/customer_tier\` as one of $USERS users"
URL_OF[C]="$API/rpc/customer_tier"; WRK_ARGS[C]="-s benches/load_users.lua"; SQL_OF[C]=rpc_customer_tier
export LOAD_TOKENS="$work/tokens.txt"

rows=()
open_rows=()
declare -A PEAK RATIOS ADDED
for w in $WORKLOADS; do
  if [ "$w" = C ]; then export LOAD_METHOD=POST LOAD_BODY='{}'; else unset LOAD_METHOD LOAD_BODY; fi
  mapfile -t plain < <(scripts "${SQL_OF[$w]}")
  mapfile -t piped < <(scripts "${SQL_OF[$w]}" pipelined)
  PEAK[$w]=0
  for c in $CONCURRENCY; do
    say "$w, $c connections: wrk against clerk-proxy, then pgbench (plain, pipelined), ${SECONDS_EACH}s each"
    # shellcheck disable=SC2086
    wrk_run "$c" ${WRK_ARGS[$w]} "${URL_OF[$w]}"
    mem=$(proxy_memory)
    [ "$rps" -gt "${PEAK[$w]}" ] && PEAK[$w]=$rps
    pgbench_run "$c" "${plain[@]}"; tps_plain=$tps; lat_plain=$lat
    pgbench_run "$c" "${piped[@]}"; tps_piped=$tps; lat_piped=$lat
    RATIOS[$w]+="${RATIOS[$w]:+ / }$(ratio "$rps" "$tps_piped")"
    rows+=("| $w | $c | **$rps** | $mean | $errors | $mem | $tps_plain | $lat_plain | $tps_piped | $lat_piped | $(ratio "$rps" "$tps_plain") | **$(ratio "$rps" "$tps_piped")** |")
  done
  if [ -n "$OHA" ]; then
    rate=$(( PEAK[$w] / 2 ))
    say "$w: open loop at $rate/s (half of the proxy's peak): oha, then pgbench -R (pipelined)"
    oha_args=(-H "Authorization: Bearer $token")
    [ "$w" = A ] && oha_args=()
    [ "$w" = C ] && oha_args+=(-m POST -T application/json -d '{}')
    oha_run "$rate" "${oha_args[@]}" "${URL_OF[$w]}"
    # The same single user as oha's one token (user 001).
    one=("${piped[0]}" "${piped[1]%@1}")
    pgbench_rate_run "$rate" "${one[@]}"
    added=$(awk -v a="$op99" -v b="$rp99" 'BEGIN { printf "%+.2f ms", a - b }')
    ADDED[$w]=$added
    open_rows+=("| $w | $rate | $orps | $op50 ms | $op99 ms | $oerrors | $rtps | $rp50 ms | $rp99 ms | **$added** |")
    if [ "$w" = B ] || [ -z "${LIVE_RATE:-}" ]; then LIVE_RATE=$rate; fi
  fi
done
# The load generator and one HTTP hop alone: /live touches no database.
if [ -n "$OHA" ] && [ -n "${LIVE_RATE:-}" ]; then
  say "open loop at $LIVE_RATE/s against /live (no database): oha's own share"
  oha_run "$LIVE_RATE" "$API/live"
  open_rows+=("| \`/live\` (no database) | $LIVE_RATE | $orps | $op50 ms | $op99 ms | $oerrors | – | – | – | – |")
fi

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
pg_version=$(psql_su "$PORT" "$DB" -Atc "SHOW server_version")
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- proxy || echo "+changes")
mkdir -p "$(dirname "$OUT")"
{
  echo "Dataset: $(psql_su "$PORT" "$DB" -Atc "SELECT count(*) FROM orders") orders, $(psql_su "$PORT" "$DB" -Atc "SELECT count(*) FROM order_items") order lines (LOAD_SHOP_ORDERS=${LOAD_SHOP_ORDERS:-0})."
  echo "Machine: $(nproc) cores ($cpu), PostgreSQL $pg_version; clerk-proxy (release, commit $commit, db-pool $DB_POOL, $(nproc) Pingora threads), PostgreSQL and the load generators all on this machine. Command: \`make bench\` (\`benches/load.sh\`), $(date -u +%Y-%m-%d), ${SECONDS_EACH}s per closed-loop run, ${OPEN_SECONDS}s per open-loop run."
  echo
  for w in $WORKLOADS; do echo "- ${NAME[$w]}"; done
  echo
  echo "Closed loop: $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}') -t1 for req/s; latency there is the mean, connections / req/s (Little's law). wrk's own latency distribution is not reported: on this machine it contradicts its own throughput (e.g. a mean of 26 ms at 8 connections and 7,950 req/s, where the mean can only be 1.0 ms; oha on the same request: p99 2.4 ms), and a closed loop's p99 is not corrected for coordinated omission anyway: see the open-loop table for percentiles. pgbench -M $PGBENCH_MODE -j1 with the identical transactions (captured from the server log, $USERS claim sets for B and C, one picked at random per transaction), statement by statement and pipelined (\`\\startpipeline\`, as the proxy sends them). Ratios: proxy req/s over pgbench tps at the same number of connections."
  echo
  echo "| workload | connections | proxy req/s | mean latency | non-2xx + socket errors | proxy RSS / peak (VmRSS / VmHWM) | pgbench tps | latency avg | pgbench tps, pipelined | latency avg | proxy / pgbench | proxy / pgbench pipelined |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  if [ ${#open_rows[@]} -gt 0 ]; then
    echo
    echo "Open loop at half of the proxy's peak req/s above: $("$OHA" --version | head -1) -c $OPEN_LOOP_CONNECTIONS -q RATE --latency-correction (latency from each request's scheduled start) against pgbench -R RATE -c $OPEN_LOOP_CONNECTIONS with the pipelined transaction (its latency also counts from the scheduled start), one user's token and claims for B and C. p99 added = proxy p99 − pgbench p99. The \`/live\` row is oha and one HTTP hop to the proxy with no database work, at the RLS list's rate: the share of the load generator and the extra process in the path."
    echo
    echo "| workload | rate /s | proxy req/s | proxy p50 | proxy p99 | non-2xx + errors | pgbench tps | pgbench p50 | pgbench p99 | p99 added |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${open_rows[@]}"
  else
    echo
    echo "(oha is not installed: no open-loop run; \`make bench\` installs it.)"
  fi
  echo
  echo "Issue 7's goals: A (cheap) ≥ 15,000 req/s: peak **${PEAK[A]:-–} req/s**. B (RLS list) ≥ 70% (aim 90%) of pgbench's tps for the same SQL (pipelined): **${RATIOS[B]:-–}** (by connections: $CONCURRENCY); p99 added at half of peak < 1 ms: **${ADDED[B]:-–}**."
} | tee "$OUT"
