-- Issue 15, finding 6 (low): projects.created_by is the creator; cart and
-- wishlist refuse inactive products (as not found), so does place_order;
-- redeem_coupon stops a user probing codes without limit.

-- projects.created_by: members cannot choose or change it.
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1", "org_id": "org_hd", "org_role": "org:member"}');
SELECT regress.error_of($$INSERT INTO projects (name, created_by) VALUES ('Forged', 'user_hdboss')$$) AS forge_creator;
INSERT INTO projects (name) VALUES ('Mine');
SELECT name, created_by FROM projects;
SELECT regress.error_of($$UPDATE projects SET created_by = 'user_hdboss'$$) AS change_creator;
UPDATE projects SET name = 'Still mine';
SELECT name, created_by FROM projects;
ROLLBACK;

-- Inactive products: not found for cart and wishlist, like unknown ids.
INSERT INTO products (product_id, name, slug, price, stock_quantity, is_active) VALUES
    (9681, 'Sold mug', 'hd-mug', 10, 10, true), (9682, 'Secret prototype', 'hd-proto', 99, 10, false);
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT t, regress.error_of(stmt) AS result FROM (VALUES
    ('cart, inactive',      $$INSERT INTO cart (product_id) VALUES (9682)$$),
    ('cart, unknown',       $$INSERT INTO cart (product_id) VALUES (424242)$$),
    ('wishlist, inactive',  $$INSERT INTO wishlist (product_id) VALUES (9682)$$),
    ('wishlist, unknown',   $$INSERT INTO wishlist (product_id) VALUES (424242)$$),
    ('cart, active',        $$INSERT INTO cart (product_id) VALUES (9681)$$),
    ('wishlist, active',    $$INSERT INTO wishlist (product_id) VALUES (9681)$$),
    ('cart, to inactive',   $$UPDATE cart SET product_id = 9682 WHERE product_id = 9681$$),
    ('wishlist, to inactive', $$UPDATE wishlist SET product_id = 9682 WHERE product_id = 9681$$),
    ('cart, quantity',      $$UPDATE cart SET quantity = 2 WHERE product_id = 9681$$)
  ) v(t, stmt);
COMMIT;
-- A product withdrawn after it was put in the cart: place_order answers
-- not found too, without its name.
UPDATE products SET is_active = false WHERE product_id = 9681;
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT regress.error_of($$SELECT place_order('H D', 'hd@example.com', '{}')$$) AS withdrawn;
SELECT count(*) AS cart_lines_kept FROM cart;
ROLLBACK;

-- Probing coupon codes: 10 failed attempts in 10 minutes, then PT429.
INSERT INTO coupons (code, discount_type, discount_value) VALUES ('HDREAL', 'fixed_amount', 1);
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount) VALUES
    (9681, 'user_hd1', 'H', 'h@example.com', '{}', 10, 10), (9682, 'user_hd2', 'H', 'h2@example.com', '{}', 10, 10);
-- As the proxy runs a request: the failure aborts it and it rolls back,
-- yet the attempt is counted (written in a transaction of its own).
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
\set VERBOSITY terse
SELECT redeem_coupon('NOPE1', 9681);
\set VERBOSITY default
ROLLBACK;
SELECT count(*) AS failures_counted FROM coupon_redemption_failures WHERE user_id = 'user_hd1';
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT count(*) AS refused FROM generate_series(2, 10) g
 WHERE regress.error_of(format('SELECT redeem_coupon(%L, 9681)', 'NOPE' || g)) LIKE 'PT404:%';
ROLLBACK;
SELECT count(*) AS failures_counted FROM coupon_redemption_failures WHERE user_id = 'user_hd1';
-- The 11th attempt is refused, even with a real code.
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT regress.error_of($$SELECT redeem_coupon('HDREAL', 9681)$$) AS eleventh;
ROLLBACK;
-- Other users are not affected; nobody but the owner reads the counts or
-- records a failure.
BEGIN;
SELECT regress.act_as('{"sub": "user_hd2"}');
SELECT regress.error_of($$SELECT redeem_coupon('NOPE', 9682)$$) AS other_user;
SELECT regress.error_of($$SELECT * FROM coupon_redemption_failures$$) AS read_failures,
       regress.error_of($$DELETE FROM coupon_redemption_failures$$) AS clear_failures,
       regress.error_of($$SELECT record_coupon_failure('user_hd1', 'x')$$) AS record_failure;
ROLLBACK;
-- Once the window has passed, the user may try again.
UPDATE coupon_redemption_failures SET failed_at = failed_at - interval '11 minutes' WHERE user_id = 'user_hd1';
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT order_id, discount_amount FROM redeem_coupon('HDREAL', 9681);
ROLLBACK;
-- One user's attempts take turns (a lock held until the transaction
-- ends), so parallel calls cannot all count the same failures and all try
-- a code (60 parallel calls tried 16 codes against a cap of 10). While
-- user_hd1's attempt is open here, another of theirs, on a second
-- connection, waits and gives up at its lock_timeout, before trying any
-- code; another user's does not wait. (The second attempt names another
-- of user_hd1's orders, so no row lock is in its way.)
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount) VALUES
    (9683, 'user_hd1', 'H', 'h@example.com', '{}', 10, 10);
SELECT format('dbname=%s user=%s host=%s port=%s', current_database(), current_user,
              btrim(split_part(current_setting('unix_socket_directories'), ',', 1)), current_setting('port')) AS dsn \gset
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT order_id, discount_amount FROM redeem_coupon('HDREAL', 9681);
RESET ROLE;
SELECT who, result FROM (VALUES ('user_hd1'), ('user_hd2')) v(who),
  LATERAL shop_private.dblink(:'dsn', format($q$SET lock_timeout = '300ms';
      SELECT set_config('request.jwt.claims', '{"sub": "%s"}', false);
      SET ROLE authenticated;
      SELECT regress.error_of('SELECT redeem_coupon(''NOPE'', %s)')$q$,
      who, CASE who WHEN 'user_hd1' THEN 9683 ELSE 9682 END)) AS t(result text);
ROLLBACK;
DELETE FROM orders WHERE order_id = 9683;
SELECT count(*) AS failures_counted FROM coupon_redemption_failures WHERE user_id = 'user_hd1' AND failed_at > now() - interval '10 minutes';
-- The limit and the window are settings.
UPDATE coupon_redemption_failures SET failed_at = now() WHERE user_id = 'user_hd1';
UPDATE shop_settings SET coupon_failure_limit = 20;
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT order_id, discount_amount FROM redeem_coupon('HDREAL', 9681);
ROLLBACK;
UPDATE shop_settings SET coupon_failure_limit = DEFAULT;
-- GDPR erasure removes a user's failure records.
SELECT erase_clerk_user('user_hd2') IS NOT NULL AS erased;
SELECT count(*) AS failures_left FROM coupon_redemption_failures WHERE user_id = 'user_hd2';

DELETE FROM coupon_redemption_failures WHERE user_id = 'user_hd1';
DELETE FROM orders WHERE order_id IN (9681, 9682);
DELETE FROM coupons WHERE code = 'HDREAL';
DELETE FROM products WHERE product_id IN (9681, 9682);

-- The extension's setup helpers are the DBA's: not executable by the API
-- roles (POST /rpc/clerk_apply_policies answered "must be owner", and
-- clerk_owner_condition described tables to anyone). The identity
-- functions stay callable.
SELECT f, has_function_privilege('anon', f, 'EXECUTE') AS anon, has_function_privilege('authenticated', f, 'EXECUTE') AS authenticated,
       has_function_privilege('clerk_staff', f, 'EXECUTE') AS clerk_staff
  FROM unnest(ARRAY['clerk_apply_policies(regclass,name,text)', 'clerk_owner_condition(regclass,name,regtype,text)',
                    'clerk_enable_rls(regclass,name)', 'clerk_enable_org_rls(regclass,name)', 'clerk_random_bytes(integer)',
                    'clerk_authenticate(text)', 'current_clerk_user()', 'current_clerk_org()']) f;
BEGIN;
SET LOCAL ROLE anon;
SELECT regress.error_of($$SELECT clerk_apply_policies('cart', 'x', 'true')$$) AS anon_apply_policies;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT regress.error_of($$SELECT clerk_owner_condition('cart', 'user_id', 'clerk_user_id', 'current_clerk_user()')$$) AS probe_columns,
       regress.error_of($$SELECT clerk_enable_rls('cart', 'product_id')$$) AS enable_rls;
ROLLBACK;

-- The schema's trigger and SECURITY DEFINER functions pin their
-- search_path (none listed), and only the owner makes temporary objects,
-- so no caller's search_path or pg_temp can stand in for the schema's
-- tables or functions.
SELECT p.oid::regprocedure AS unpinned FROM pg_proc p
 WHERE p.pronamespace::regnamespace::text IN ('public', 'analytics', 'analytics_private', 'shop_private')
   AND (p.prosecdef OR p.prorettype = 'trigger'::regtype)
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
 ORDER BY 1;
SELECT r AS role, has_database_privilege(r, current_database(), 'TEMP') AS temp
  FROM unnest(ARRAY['anon', 'authenticated', 'clerk_staff', 'authenticator', 'bi_reader', 'clerk_webhook', 'clerk_sync']) r;
BEGIN;
SELECT regress.act_as('{"sub": "user_hd1"}');
SELECT regress.error_of($$CREATE TEMP TABLE cart (i int)$$) AS temp_table;
ROLLBACK;
