#!/usr/bin/env bash
# `make demo`: a throwaway PostgreSQL (15; PG_MAJOR=18 for 18) with pg_clerk and sql/ applied,
# and clerk-proxy on 127.0.0.1:3000. Ctrl-C stops everything and removes
# the cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PORT=${PG_CLERK_DEMO_PORT:-54330}
API_PORT=${PG_CLERK_DEMO_API_PORT:-3000}
ADMIN_PORT=${PG_CLERK_DEMO_ADMIN_PORT:-3001}
STOREFRONT_PORT=${PG_CLERK_DEMO_STOREFRONT_PORT:-3002}
DB=pg_clerk_demo

say "building clerk-proxy and pg_clerk"
cargo build -q -p clerk-proxy
install_extension
(cd demo/storefront && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

say "starting PostgreSQL $PG_MAJOR on 127.0.0.1:$PORT"
start_throwaway_cluster demo "$PORT"
trap 'stop_throwaway_cluster; say "demo stopped; cluster removed"' EXIT
psql_su "$PORT" postgres -c "CREATE DATABASE $DB"
psql_su "$PORT" "$DB" -c "CREATE EXTENSION pg_clerk"
say "applying sql/ (the reference schema) and demo/data.sql"
apply_schema "$PORT" "$DB"
psql_su "$PORT" "$DB" -f demo/data.sql >/dev/null

# A throwaway signing key stands in for your Clerk instance's: the proxy
# trusts its public half, and the demo tokens below are signed with it.
source "$ROOT/scripts/jwt.sh"
openssl genrsa -out "$work/demo_key.pem" 2048 2>/dev/null
openssl rsa -in "$work/demo_key.pem" -pubout -out "$work/demo_pub.pem" 2>/dev/null
demo_token() { # demo_token USER_ID
  local now; now=$(date +%s)
  sign_rs256 "$work/demo_key.pem" '{"alg":"RS256","typ":"JWT"}' \
    "{\"sub\":\"$1\",\"sid\":\"sess_demo\",\"iss\":\"https://clerk.demo.local\",\"iat\":$now,\"nbf\":$((now - 5)),\"exp\":$((now + 86400))}"
}
ALICE_TOKEN=$(demo_token user_2demoAlice)
BOB_TOKEN=$(demo_token user_2demoBob)
# A Clerk publishable key names the Frontend API: pk_test_ + base64("<host>$").
PUBLISHABLE_KEY="pk_test_$(printf 'clerk.demo.local$' | base64 | tr -d '\n')"

cat >"$work/clerk-proxy.conf" <<CONF
db-uri = "postgres://authenticator@127.0.0.1:$PORT/$DB"
db-schemas = "public"
db-anon-role = "anon"
db-staff-role = "clerk_staff"
server-host = "127.0.0.1"
server-port = $API_PORT
admin-server-port = $ADMIN_PORT
clerk-public-key = "@$work/demo_pub.pem"
clerk-issuer = "https://clerk.demo.local"
# One client's requests running at once (a few expensive ones cannot hold
# the whole pool of 10).
db-max-connections-per-client = 4
# What supabase-js sends as the bearer token when signed out: anonymous.
clerk-publishable-key = "$PUBLISHABLE_KEY"
# The demo tokens live a day; Clerk's own live 60 s (default limit 3600).
clerk-max-token-lifetime = 86400
log-level = "info"
CONF
target/debug/clerk-proxy --config "$work/clerk-proxy.conf" &
proxy_pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$API_PORT/live" >/dev/null 2>&1 && break
  kill -0 "$proxy_pid" 2>/dev/null || { say "clerk-proxy failed to start"; exit 1; }
  sleep 0.1
done
# The storefront: a static page on its own origin calling the API from the
# browser with supabase-js.
STOREFRONT_PORT=$STOREFRONT_PORT API_URL="http://127.0.0.1:$API_PORT" PUBLISHABLE_KEY=$PUBLISHABLE_KEY \
  ALICE_TOKEN=$ALICE_TOKEN BOB_TOKEN=$BOB_TOKEN node demo/storefront/serve.mjs >/dev/null &
storefront_pid=$!
trap 'kill "$storefront_pid" 2>/dev/null || true; stop_throwaway_cluster; say "demo stopped; cluster removed"' EXIT

cat <<MSG

  pg_clerk demo is running
  ------------------------
  PostgreSQL $PG_MAJOR   127.0.0.1:$PORT, database $DB, extension pg_clerk + sql/ applied
  storefront      http://127.0.0.1:$STOREFRONT_PORT   (open it in a browser: supabase-js from another origin)
  clerk-proxy     http://127.0.0.1:$API_PORT   (config: $work/clerk-proxy.conf)
                  admin: http://127.0.0.1:$ADMIN_PORT/ready, /metrics

  Demo data: a coffee shop catalogue; customers user_2demoAlice (Gold tier,
  2 orders, 2 cart lines) and user_2demoBob (Bronze, 1 pending order);
  coupons SPRING (active), WELCOME10 (min 50), WINTER (expired), LAUNCH (used up).

  Tokens (valid 24 h, signed by a demo key the proxy trusts):
    ALICE=$ALICE_TOKEN
    BOB=$BOB_TOKEN

  Try the API (in another terminal, after pasting the two lines above):
    curl -s http://127.0.0.1:$API_PORT/live
    curl -s 'http://127.0.0.1:$API_PORT/products?select=name,price&order=price.desc&limit=3'
    curl -s -H "Authorization: Bearer \$ALICE" 'http://127.0.0.1:$API_PORT/orders?select=order_number,status,total_amount'
    curl -s -H "Authorization: Bearer \$BOB"   'http://127.0.0.1:$API_PORT/orders?select=order_number,status,total_amount'
    curl -s -H "Authorization: Bearer \$BOB" 'http://127.0.0.1:$API_PORT/orders?user_id=eq.user_2demoAlice'   # [] : RLS
    curl -s -H "Authorization: Bearer \$ALICE" http://127.0.0.1:$API_PORT/rpc/customer_tier                  # "Gold"
    curl -s -H "Authorization: Bearer \$BOB" -H 'Content-Type: application/json' \\
         -d '{"code":"WELCOME10","order_id":3}' http://127.0.0.1:$API_PORT/rpc/redeem_coupon
    curl -s http://127.0.0.1:$API_PORT/orders                                                  # 401: anon
    curl -s -H "Authorization: Bearer \$ALICE" \
         'http://127.0.0.1:$API_PORT/orders?select=order_number,order_items(product_name,quantity,products(slug))'  # embedding
    curl -s -H 'Accept: text/csv' 'http://127.0.0.1:$API_PORT/products?select=name,price&order=name'   # CSV
    curl -s http://127.0.0.1:$API_PORT/ | head -c 400; echo                                   # OpenAPI 3 (anon's view)
    curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep clerk_proxy_http_requests_total

    psql -h 127.0.0.1 -p $PORT -U postgres $DB
      -- act as Alice, the way clerk-proxy will for her token:
      BEGIN;
      SELECT set_config('request.jwt.claims', '{"sub":"user_2demoAlice"}', true);
      SET LOCAL ROLE authenticated;
      SELECT order_number, status, total_amount FROM orders;    -- only hers (RLS)
      SELECT customer_tier();                                    -- Gold
      SELECT order_number, subtotal, total_amount FROM place_order('Alice Martin', 'alice@example.com', '{"city": "Lyon"}');
      SELECT total_amount FROM redeem_coupon('SPRING', (SELECT max(order_id) FROM orders));
      SELECT redeem_coupon('WINTER', 3);                         -- PT404: not her order
      COMMIT;
      SELECT 'usr_2abc'::clerk_user_id;                          -- ERROR 22P02, says why

  Stop: Ctrl-C (stops the proxy and PostgreSQL, removes the cluster).

MSG
wait "$proxy_pid"
