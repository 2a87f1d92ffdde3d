-- What a database answers, as each kind of user: run against a database
-- and its copy (tests/dba/dump_restore.sh, pg_upgrade.sh), the outputs
-- must be the same. The reference schema with the demo data.
\pset format unaligned
\pset tuples_only on
SELECT 'pg_clerk ' || extversion FROM pg_extension WHERE extname = 'pg_clerk';
-- Rows per table (as the owner, past RLS).
SELECT format('SELECT %L || '' '' || count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname IN ('public', 'analytics_private')
 ORDER BY n.nspname, c.relname \gexec
SELECT format('policy %s on %s to %s: %s / %s', policyname, tablename, roles, qual, with_check)
  FROM pg_policies ORDER BY tablename, policyname;
-- A customer, through RLS and the identity functions.
BEGIN;
SELECT 'claims ' || set_config('request.jwt.claims', '{"sub": "user_2demoAlice", "sid": "sess_2demo"}', true);
SET LOCAL ROLE authenticated;
SELECT 'alice ' || current_clerk_user() || ' ' || customer_tier();
SELECT 'alice order ' || order_number || ' ' || total_amount || ' ' || status FROM orders ORDER BY order_number;
SELECT 'alice sees ' || count(*) || ' lines' FROM order_items;
COMMIT;
-- Anonymous.
BEGIN;
SET LOCAL ROLE anon;
SELECT 'anon product ' || name || ' ' || price FROM products ORDER BY product_id;
COMMIT;
-- The BI role: pseudonyms need the same key and the same HMAC.
BEGIN;
SET LOCAL ROLE bi_reader;
SELECT 'bi ' || customer || ' ' || order_week || ' ' || status || ' ' || total_amount_band FROM analytics.orders ORDER BY 1;
COMMIT;
