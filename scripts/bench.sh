#!/usr/bin/env bash
# `make bench`: every benchmark. Results are printed and written under
# target/bench/ for the README's tables.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
mkdir -p target/bench

say "criterion micro-benchmarks (benches/identity.rs, benches/proxy.rs)"
cargo bench -q -p pg_clerk_benches 2>/dev/null | tee target/bench/criterion.log \
  | awk '/^Benchmarking|^Found|^  [0-9]+ \(|change:|^$/ {next}
         /time:/ { line = $0; sub(/^ +/, "", line)
                   if (line !~ /^time:/) { name = substr(line, 1, index(line, "time:") - 1); sub(/ +$/, "", name) }
                   split(substr(line, index(line, "[") + 1), f, " ")
                   printf "| %s | %s %s |\n", name, f[3], f[4]; next }
         {name = $0}' >target/bench/criterion.md
{ echo "| criterion (median) | time |"; echo "|---|---:|"; cat target/bench/criterion.md; } | tee target/bench/criterion.md.tmp
mv target/bench/criterion.md.tmp target/bench/criterion.md

say "SQL benchmarks (benches/identity_sql.sh)"
"$ROOT/benches/identity_sql.sh"

say "HTTP load: clerk-proxy next to pgbench (benches/load.sh)"
"$ROOT/benches/load.sh"

# Issue 19: the customers' workloads against a shop-sized orders table, next
# to the same at 10k orders (each run its own cluster and pgbench baseline).
for orders in 10000 1000000; do
  say "RLS at shop size: B and C with $orders other orders (benches/load.sh, LOAD_SHOP_ORDERS)"
  LOAD_SHOP_ORDERS=$orders LOAD_WORKLOADS="B C" LOAD_CONCURRENCY=${LOAD_SHOP_CONCURRENCY:-"8 32"} \
    LOAD_OUT="$ROOT/target/bench/load_shop_$orders.md" "$ROOT/benches/load.sh"
done

say "beyond one machine: a read-heavy mix with a hot standby and through PgBouncer (benches/scale.sh)"
"$ROOT/benches/scale.sh"
