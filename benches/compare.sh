#!/usr/bin/env bash
# Two clerk-proxy binaries side by side on one cluster (the setup of
# benches/load.sh), in alternating rounds, for a change whose effect is
# smaller than the noise between two separate `make bench` runs:
#
#   benches/compare.sh OLD_BINARY NEW_BINARY
#
# Each round, for each binary: GET /orders (B) closed loop (wrk,
# COMPARE_CONNECTIONS, default 8) with the proxy's CPU time and context
# switches per request, then open loop at the same COMPARE_RATE for both
# (oha --latency-correction, default 2600/s): p50, p99, p99.9.
#   COMPARE_ROUNDS (4), COMPARE_SECONDS (8) per run.
set -euo pipefail
if [ $# != 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then echo "usage: benches/compare.sh OLD_BINARY NEW_BINARY" >&2; exit 2; fi
old_bin=$(realpath "$1") new_bin=$(realpath "$2")
LOAD_PROXY_BIN=$old_bin source "$(dirname "$0")/load_setup.sh"
command -v oha >/dev/null || { say "oha is missing: run make bench (it installs it)"; exit 1; }
ROUNDS=${COMPARE_ROUNDS:-4}
SECS=${COMPARE_SECONDS:-8}
CONNECTIONS=${COMPARE_CONNECTIONS:-8}
RATE=${COMPARE_RATE:-2600}
export LOAD_TOKENS="$work/tokens.txt"

# The second proxy: the same configuration, ports + 10.
sed -e "s/^server-port = .*/server-port = $((API_PORT + 10))/" -e "s/^admin-server-port = .*/admin-server-port = $((ADMIN_PORT + 10))/" \
  "$work/proxy.conf" >"$work/proxy-new.conf"
"$new_bin" --config "$work/proxy-new.conf" 2>"$work/proxy-new.log" &
new_pid=$!
trap 'kill -INT "$new_pid" 2>/dev/null || true; stop_throwaway_cluster' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$((API_PORT + 10))/live" >/dev/null 2>&1 && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
tick=$(getconf CLK_TCK)

say "$ROUNDS rounds: closed loop at $CONNECTIONS connections, open loop at $RATE/s, ${SECS}s each"
echo "| round | binary | closed-loop req/s | proxy CPU µs / request | context switches / request | open-loop p50 | p99 | p99.9 |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
for round in $(seq 1 "$ROUNDS"); do
  # Which goes first alternates, so neither always runs on a warmer cluster.
  sides="old new"; [ $((round % 2)) = 0 ] && sides="new old"
  for side in $sides; do
    if [ "$side" = old ]; then pid=$proxy_pid port=$API_PORT bin=$old_bin; else pid=$new_pid port=$((API_PORT + 10)) bin=$new_bin; fi
    t0=$(cpu_ticks "$pid") s0=$(switches "$pid")
    out=$(wrk -t1 -c "$CONNECTIONS" -d "${SECS}s" -s benches/load_users.lua "http://127.0.0.1:$port/orders")
    t1=$(cpu_ticks "$pid") s1=$(switches "$pid")
    rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    cost=$(awk -v t=$((t1 - t0)) -v hz="$tick" -v s=$((s1 - s0)) -v n="$n" 'BEGIN {printf "%.1f | %.2f", t * 1e6 / hz / n, s / n}')
    open=$(oha --worker-threads 1 -z "${SECS}s" -c 16 -q "$RATE" --latency-correction --no-tui --output-format json \
             -H "Authorization: Bearer $token" "http://127.0.0.1:$port/orders" | python3 -c '
import json, sys
p = json.load(sys.stdin)["latencyPercentiles"]
print(" | ".join("%.2f ms" % (p[k] * 1000) for k in ("p50", "p99", "p99.9")))')
    echo "| $round | $side: $(basename "$bin") | $rps | $cost | $open |"
  done
done
