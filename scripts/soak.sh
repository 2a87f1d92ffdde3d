#!/usr/bin/env bash
# `make soak`: a bounded soak, not part of `make test`. Mixed load against a
# release clerk-proxy (the setup of benches/load.sh: 100 users, their
# orders): each request is, at random, A GET /products by key (anonymous),
# B GET /orders or C POST /rpc/customer_tier as one of the 100 users.
# Every SOAK_INTERVAL seconds prints the proxy's memory and the requests
# and non-2xx answers so far (from its /metrics); at the end a table in
# target/bench/soak.md and whether memory stayed flat.
#
#   SOAK_SECONDS (600), SOAK_INTERVAL (10), SOAK_CONNECTIONS (16)
set -euo pipefail
export PG_CLERK_LOAD_PORT=${PG_CLERK_LOAD_PORT:-54337} PG_CLERK_LOAD_API_PORT=${PG_CLERK_LOAD_API_PORT:-3038}
source "$(dirname "$0")/../benches/load_setup.sh"

DURATION=${SOAK_SECONDS:-600}
INTERVAL=${SOAK_INTERVAL:-10}
CONNECTIONS=${SOAK_CONNECTIONS:-16}
OUT=${SOAK_OUT:-$ROOT/target/bench/soak.md}

# Sums clerk_proxy_http_requests_total: "all non2xx".
requests_so_far() {
  curl -fs "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^clerk_proxy_http_requests_total\{/ {
      n += $NF; if ($0 !~ /status="2/) bad += $NF } END {print n + 0, bad + 0}'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$proxy_pid/status"; }

# Where a slow answer comes from: PostgreSQL logs every statement that
# took it over 250 ms, and its checkpoints (log_checkpoints is on).
set_server_log log_min_duration_statement 250ms

# And whether the machine itself stalls: a process that sleeps 1 ms at a
# time notes each wake-up over 100 ms late, once at real-time priority
# (late there: the machine paused) and once as an ordinary process (late
# there only: it waited for a CPU).
rt=() rt_note=" (not available: not root; at ordinary priority)"
is_root && chrt -f 50 true 2>/dev/null && rt=(chrt -f 50) rt_note=""
"${rt[@]}" python3 scripts/hiccups.py "$work/hiccups-rt.txt" & hiccups_rt=$!
python3 scripts/hiccups.py "$work/hiccups.txt" & hiccups=$!
# And what a slow statement waits on: every 100 ms, the statements running
# for over 200 ms with their wait event (none: on a CPU or waiting for one).
printf '%s\n' "SELECT to_char(clock_timestamp(), 'HH24:MI:SS.MS'), pid, coalesce(wait_event_type || ':' || wait_event, 'none'),
  round(extract(epoch FROM clock_timestamp() - query_start) * 1000), left(query, 40) FROM pg_stat_activity
  WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND clock_timestamp() - query_start > interval '200 ms' \\watch 0.1" \
  | psql_su "$PORT" "$DB" -At -F ' ' >"$work/waits.txt" 2>/dev/null & waits=$!
probe=""
trap 'kill "$hiccups_rt" "$hiccups" "$waits" $probe 2>/dev/null || true; stop_throwaway_cluster' EXIT

# Time the hypervisor took from each virtual CPU (/proc/stat, in ticks).
steal_ticks() { awk '/^cpu[0-9]/ {printf "%s ", $9}' /proc/stat; }
steal_start=$(steal_ticks)

say "soak: ${DURATION}s of mixed load, $CONNECTIONS connections, a sample every ${INTERVAL}s"
LOAD_TOKENS="$work/tokens.txt" LOAD_MIX=1 wrk -t 1 -c "$CONNECTIONS" -d "${DURATION}s" --latency -s benches/load_users.lua "$API/" >"$work/wrk.txt" &
wrk_pid=$!
# And who waited for a CPU when: run-queue waits of the backends, the
# proxy's and wrk's threads, and steal per virtual CPU (soak-stalls.log).
"${rt[@]}" python3 scripts/stall_probe.py "$work/stalls.txt" "$proxy_pid,$wrk_pid" & probe=$!
rows=()
started=$(date +%s)
read -r last_n _ < <(requests_so_far)
first_rss=""
max_rss=0
while kill -0 "$wrk_pid" 2>/dev/null; do
  sleep "$INTERVAL"
  kill -0 "$wrk_pid" 2>/dev/null || break
  read -r n bad < <(requests_so_far)
  rss=$(rss_kb)
  [ -n "$first_rss" ] || first_rss=$rss
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss
  row="| $(( $(date +%s) - started )) | $(awk -v k="$rss" 'BEGIN {printf "%.1f MB", k / 1024}') | $n | $(( (n - last_n) / INTERVAL )) | $bad |"
  echo "$row" >&2
  rows+=("$row")
  last_n=$n
done
wait "$wrk_pid"
kill "$hiccups_rt" "$hiccups" "$waits" "$probe" 2>/dev/null || true
# hiccups FILE -> "N (longest M ms)": wake-ups over 250 ms late
hiccups() { awk '$2 > 250 {n++} $2 > m {m = $2} END {printf "%d (longest %d ms)", n, m}' "$1"; }
steal=$(awk -v a="$steal_start" -v b="$(steal_ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN {
  n = split(a, x, " "); split(b, y, " "); for (i = 1; i <= n; i++) printf "%scpu%d %.1f s", (i > 1 ? ", " : ""), i - 1, (y[i] - x[i]) / hz }')
read -r n bad < <(requests_so_far)
last_rss=$(rss_kb)
hwm=$(awk '/^VmHWM/ {printf "%.1f MB", $2 / 1024}' "/proc/$proxy_pid/status")
socket_errors=$(awk '/Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$work/wrk.txt")
# Which answers were not 2xx, and what the proxy said (log-level error).
metrics=$(curl -fs "http://127.0.0.1:$ADMIN_PORT/metrics")
not_2xx=$(awk '/^clerk_proxy_http_requests_total\{/ && !/status="2/' <<<"$metrics" | paste -sd ' ')
# Answers that took the proxy over 1 s (its histogram), next to wrk's timeouts.
slow=$(awk '/_duration_seconds_bucket\{le="1"\}/ {a = $NF} /_duration_seconds_bucket\{le="\+Inf"\}/ {b = $NF} END {print b - a}' <<<"$metrics")
server_log=$(server_log_since_set)
slow_statements=$(grep -c 'duration: ' <<<"$server_log" || true)
checkpoints=$(grep -c 'checkpoint complete' <<<"$server_log" || true)
mkdir -p "$(dirname "$OUT")"
cp "$work/proxy.log" "$(dirname "$OUT")/soak-proxy.log"
{ echo "soak from $(date -u -d "@$started" +%T) UTC to $(date -u +%T) UTC"; grep -E 'duration: |checkpoint' <<<"$server_log" || true; } \
  >"$(dirname "$OUT")/soak-postgres-slow.log"
{ echo "# wake-ups over 100 ms late, UTC time and ms late; real-time priority$rt_note"; cat "$work/hiccups-rt.txt"
  echo "# the same, as an ordinary process"; cat "$work/hiccups.txt"; } >"$(dirname "$OUT")/soak-hiccups.log"
cp "$work/stalls.txt" "$(dirname "$OUT")/soak-stalls.log"
grep -v '^$' "$work/waits.txt" >"$(dirname "$OUT")/soak-postgres-waits.log" || true
# stalls: "N (longest M ms)" of the probe's run-queue waits, steal bursts
stalls() { awk -v kind="$1" '$2 == kind {n++; v = (kind == "wait" ? $5 : $4); if (v > m) m = v} END {printf "%d (longest %d ms)", n, m}' "$work/stalls.txt"; }
waits_seen=$(awk '{print $3}' "$(dirname "$OUT")/soak-postgres-waits.log" | sort | uniq -c | sort -rn | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}')
slowest=$( (grep -o 'duration: [0-9.]* ms' <<<"$server_log" || true) | awk '$2 > m {m = $2} END {printf "%.0f ms", m}')
{
  echo "Soak: \`make soak\` (\`scripts/soak.sh\`), $(date -u +%Y-%m-%d), $(nproc) cores, ${DURATION}s, wrk -t1 -c $CONNECTIONS, each request at random GET /products?product_id=eq.N (anonymous), GET /orders or POST /rpc/customer_tier as one of $USERS users; clerk-proxy release, db-pool $DB_POOL. Requests and non-2xx from the proxy's /metrics; memory from /proc/PID/status."
  echo
  echo "| seconds | proxy RSS | requests so far | req/s (interval) | non-2xx so far |"
  echo "|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Total: $n requests, $bad non-2xx${not_2xx:+ ($not_2xx)}, $socket_errors socket errors (wrk: $(grep -o 'Socket errors.*' "$work/wrk.txt" || echo none); wrk counts a response slower than its 2 s timeout as one; the proxy answered $slow requests in over 1 s by its own histogram; PostgreSQL logged $slow_statements statements over 250 ms (the slowest $slowest) and $checkpoints checkpoints, in soak-postgres-slow.log; sampled every 100 ms, statements running over 200 ms were waiting on: ${waits_seen:-nothing seen}, in soak-postgres-waits.log; a process sleeping 1 ms at a time woke over 250 ms late $(hiccups "$work/hiccups-rt.txt") times at real-time priority$rt_note, $(hiccups "$work/hiccups.txt") as an ordinary process, in soak-hiccups.log; steal time taken by the hypervisor: ${steal:-none counted}; tasks that waited over 50 ms for a CPU: $(stalls wait), steal of 20 ms or more in 50 ms: $(stalls steal), in soak-stalls.log; scheduling: ${cpu_group:+one cpu cgroup, }autogroup $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo -)), proxy log in soak-proxy.log ($(wc -l <"$work/proxy.log") lines); RSS first sample $(awk -v k="$first_rss" 'BEGIN {printf "%.1f", k / 1024}') MB, last $(awk -v k="$last_rss" 'BEGIN {printf "%.1f", k / 1024}') MB, highest sample $(awk -v k="$max_rss" 'BEGIN {printf "%.1f", k / 1024}') MB, peak (VmHWM) $hwm; wrk latency p50 $(awk '$1 == "50%" {print $2}' "$work/wrk.txt"), p99 $(awk '$1 == "99%" {print $2}' "$work/wrk.txt") (not corrected for coordinated omission)."
} | tee "$OUT"
[ "$bad" = 0 ] && [ "$socket_errors" = 0 ]
