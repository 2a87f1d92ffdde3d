# shellcheck shell=bash
# Sourced by benches/load.sh and scripts/soak.sh: a throwaway cluster with
# the reference schema, the demo data and LOAD_USERS (100) customers with
# two orders each, one RS256 token per customer ($work/tokens.txt, in user
# order), and a release clerk-proxy on it ($proxy_pid; stopped on exit).
#
#   PG_CLERK_LOAD_PORT      the cluster's port (54336)
#   PG_CLERK_LOAD_API_PORT  the proxy's port (3036); admin listener +1
#   LOAD_DB_POOL            the proxy's db-pool (8)
#   LOAD_PROXY_BIN          a clerk-proxy binary to measure instead of
#                           building target/release/clerk-proxy (A/B runs)
#   LOAD_CPU_GROUP          1 (default): everything in one cpu cgroup
#                           (join_cpu_group in scripts/lib.sh); 0: not
#   LOAD_SHOP_ORDERS        orders of other customers to add (0): the shop's
#                           size (3 lines each, 10 orders per customer),
#                           so the customers' requests are measured against
#                           a table of that size
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
source "$ROOT/scripts/jwt.sh"
cd "$ROOT" || exit 1

PORT=${PG_CLERK_LOAD_PORT:-54336}
API_PORT=${PG_CLERK_LOAD_API_PORT:-3036}
ADMIN_PORT=$((API_PORT + 1))
DB_POOL=${LOAD_DB_POOL:-8}
USERS=${LOAD_USERS:-100}
DB=pg_clerk_load
API="http://127.0.0.1:$API_PORT"

command -v wrk >/dev/null || { say "wrk is missing: run make bench (it installs it)"; exit 1; }
install_extension --release
PROXY_BIN=${LOAD_PROXY_BIN:-target/release/clerk-proxy}
if [ -z "${LOAD_PROXY_BIN:-}" ]; then
  say "building clerk-proxy (release)"
  cargo build -q --release -p clerk-proxy
fi

join_cpu_group "$(basename "$0" .sh)"
start_throwaway_cluster "$(basename "$0" .sh)" "$PORT"
psql_su "$PORT" postgres -c "CREATE DATABASE $DB"
psql_su "$PORT" "$DB" -c "CREATE EXTENSION pg_clerk"
apply_schema "$PORT" "$DB"
psql_su "$PORT" "$DB" -f demo/data.sql >/dev/null
# user_load001 .. user_load100, two paid orders each (as Alice in the demo).
psql_su "$PORT" "$DB" >/dev/null <<SQL
INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status, created_at)
SELECT format('user_load%s', lpad(u::text, 3, '0')), 'Load ' || u, format('load%s@example.com', u),
       '{"line1": "1 Bench Street", "city": "Lyon", "postcode": "69003", "country": "FR"}',
       10 * k + u, 10 * k + u, 'delivered', 'paid', now() - k * interval '1 day'
  FROM generate_series(1, $USERS) u, generate_series(1, 2) k;
ANALYZE;
SQL
SHOP_ORDERS=${LOAD_SHOP_ORDERS:-0}
if [ "$SHOP_ORDERS" -gt 0 ]; then
  say "adding $SHOP_ORDERS orders ($((3 * SHOP_ORDERS)) lines) of $((SHOP_ORDERS / 10)) other customers"
  # Without the triggers (order numbers, audit): seconds, not minutes.
  psql_su "$PORT" "$DB" >/dev/null <<SQL
SET session_replication_role = replica;
INSERT INTO orders (order_number, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status, created_at)
SELECT 'ORD-SHOP-' || n, ('user_2shop' || (n % greatest($SHOP_ORDERS / 10, 1)))::clerk_user_id, 'Shop', 'shop@example.com', '{}', 30, 30,
       'delivered', 'paid', now() - make_interval(mins => n)
  FROM generate_series(1, $SHOP_ORDERS) n;
INSERT INTO order_items (order_id, product_id, product_name, quantity, unit_price, total_price)
SELECT o.order_id, 1 + (o.order_id + k) % 8, 'Shop line', 1, 10, 10
  FROM orders o CROSS JOIN generate_series(1, 3) k
 WHERE o.order_number LIKE 'ORD-SHOP-%';
ANALYZE;
SQL
fi

openssl genrsa -out "$work/key.pem" 2048 2>/dev/null
openssl rsa -in "$work/key.pem" -pubout -out "$work/pub.pem" 2>/dev/null
now=$(date +%s)
for u in $(seq -f '%03g' 1 "$USERS"); do
  sign_rs256 "$work/key.pem" '{"alg":"RS256","typ":"JWT"}' \
    "{\"sub\":\"user_load$u\",\"sid\":\"sess_load$u\",\"iss\":\"https://clerk.load.local\",\"iat\":$now,\"nbf\":$((now - 5)),\"exp\":$((now + 86400))}"
  echo
done >"$work/tokens.txt"
token=$(head -1 "$work/tokens.txt")

cat >"$work/proxy.conf" <<CONF
db-uri = "postgres://authenticator@127.0.0.1:$PORT/$DB"
db-anon-role = "anon"
db-staff-role = "clerk_staff"
db-pool = $DB_POOL
server-port = $API_PORT
admin-server-port = $ADMIN_PORT
clerk-public-key = "@$work/pub.pem"
clerk-issuer = "https://clerk.load.local"
# The load tokens live a day (a run outlasts Clerk's 60 s tokens).
clerk-max-token-lifetime = 86400
CONF
"$PROXY_BIN" --config "$work/proxy.conf" 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 100); do curl -fs "$API/live" >/dev/null 2>&1 && break; sleep 0.1; done
body=$(curl -fs -H "Authorization: Bearer $token" "$API/orders")
[ "$(printf '%s' "$body" | grep -o '"order_id"' | wc -l)" = 2 ] || { say "unexpected /orders answer: $body"; exit 1; }

# set_server_log SETTING VALUE: a logging setting of the cluster, in
# effect when this returns; $log_start is where the server log stands,
# and server_log_since_set prints what was logged after it.
set_server_log() {
  psql_su "$PORT" "$DB" -c "ALTER SYSTEM SET $1 = '$2'" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  log_start=$(stat -c %s "$work/cluster/server.log")
}
server_log_since_set() { tail -c +"$((log_start + 1))" "$work/cluster/server.log"; }

# proxy_memory: "VmRSS / VmHWM" of the proxy, in MB.
proxy_memory() {
  awk '/^VmRSS/ {rss = $2} /^VmHWM/ {hwm = $2} END {printf "%.0f / %.0f MB", rss / 1024, hwm / 1024}' "/proc/$proxy_pid/status"
}
