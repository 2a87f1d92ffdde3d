-- Who is shop staff (issue 15, finding 1). Any Clerk user can create an
-- organization and is its org:admin, so an organization role must grant
-- nothing outside that organization's own rows. Staff roles come only from
-- public metadata in the token (a session-token template) or from the
-- staff organization named in shop_settings (org_shop here, see setup).

INSERT INTO products (product_id, name, slug, price, stock_quantity) VALUES (9601, 'Staff mug', 'sr-mug', 10, 10);
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount) VALUES
    (9601, 'user_srvictim', 'Victim', 'victim@example.com', '{"line1": "1 Victim Road"}', 10, 10),
    (9602, 'user_x', 'X', 'x@example.com', '{}', 10, 10);
INSERT INTO product_reviews (product_id, user_id, rating, title) VALUES (9601, 'user_x', 5, 'My own mug');

-- Every attack of the finding, as the proxy runs a request: in a
-- transaction, role authenticated, the token's claims; undone afterwards
-- (a subtransaction rolled back), so each token starts from the same data.
-- A number is how many rows the statement read or changed; otherwise the
-- SQLSTATE it failed with.
CREATE FUNCTION regress.staff_attacks(claims text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    r text[];
BEGIN
    BEGIN
        PERFORM regress.act_as(claims);
        r := ARRAY[
            regress.rows_of($q$SELECT 1 FROM orders WHERE user_id = 'user_srvictim'$q$),
            regress.rows_of($q$SELECT 1 FROM audit_log LIMIT 1$q$),
            regress.rows_of($q$UPDATE orders SET payment_status = 'paid' WHERE order_id = 9602$q$),
            regress.rows_of($q$UPDATE products SET price = 0.01 WHERE product_id = 9601$q$),
            regress.rows_of($q$INSERT INTO coupons (code, discount_type, discount_value) VALUES ('SR100', 'percentage', 100)$q$),
            regress.rows_of($q$UPDATE product_reviews SET is_approved = true WHERE user_id = 'user_x' AND product_id = 9601$q$),
            regress.rows_of($q$SELECT customer_tier_of('user_srvictim')$q$),
            regress.rows_of($q$SELECT erase_clerk_user('user_srvictim')$q$)];
        RAISE EXCEPTION USING ERRCODE = 'RGUND';
    EXCEPTION WHEN SQLSTATE 'RGUND' THEN
        RETURN r;
    END;
END
$$;

SELECT token, r[1] AS read_orders, r[2] AS read_audit, r[3] AS pay_own, r[4] AS set_price,
       r[5] AS add_coupon, r[6] AS approve_own, r[7] AS tier_of, r[8] AS erase_other
  FROM (VALUES
    ('customer',                  '{"sub": "user_x"}'),
    -- Admins and staff roles of an organization the user made: nothing.
    ('v2 own org admin',          '{"sub": "user_x", "sid": "sess_x", "o": {"id": "org_own", "rol": "admin"}, "v": 2}'),
    ('v1 own org admin',          '{"sub": "user_x", "org_id": "org_own", "org_role": "org:admin"}'),
    ('v1 own org manager',        '{"sub": "user_x", "org_id": "org_own", "org_role": "org:manager"}'),
    ('v1 own org employee',       '{"sub": "user_x", "org_id": "org_own", "org_role": "org:employee"}'),
    ('v2 own org manager',        '{"sub": "user_x", "o": {"id": "org_own", "rol": "manager"}, "v": 2}'),
    -- ... nor that organization's permissions, whatever their names.
    ('v1 own org permissions',    '{"sub": "user_x", "org_id": "org_own", "org_role": "org:member", "org_permissions": ["orders:read", "org:orders:read", "orders:write", "org:orders:write", "products:write", "org:products:write", "coupons:write", "audit:read", "reviews:moderate", "users:erase"]}'),
    ('v2 own org permissions',    '{"sub": "user_x", "v": 2, "fea": "o:orders,o:products", "o": {"id": "org_own", "rol": "member", "per": "read,write", "fpm": "3,3"}}'),
    ('unsafe_metadata admin',     '{"sub": "user_x", "unsafe_metadata": {"role": "admin"}}'),
    -- The staff organization while active, metadata and template permissions: staff.
    ('v1 staff org admin',        '{"sub": "user_x", "org_id": "org_shop", "org_role": "org:admin"}'),
    ('v2 staff org admin',        '{"sub": "user_x", "sid": "sess_x", "o": {"id": "org_shop", "rol": "admin"}, "v": 2}'),
    ('v1 staff org employee',     '{"sub": "user_x", "org_id": "org_shop", "org_role": "org:employee"}'),
    ('v2 staff org permission',   '{"sub": "user_x", "v": 2, "fea": "o:orders", "o": {"id": "org_shop", "rol": "member", "per": "read", "fpm": "1"}}'),
    ('metadata admin',            '{"sub": "user_x", "metadata": {"role": "admin"}}'),
    ('public_metadata admin',     '{"sub": "user_x", "public_metadata": {"role": "admin"}}'),
    ('template permissions',      '{"sub": "user_x", "permissions": ["orders:read", "audit:read"]}'),
    ('v1 own org admin, metadata manager', '{"sub": "user_x", "org_id": "org_own", "org_role": "org:admin", "metadata": {"role": "manager"}}')
  ) t(token, claims), LATERAL regress.staff_attacks(claims) r;

-- The same attacks one by one with a v2 own-org admin token, with the messages.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "user_x", "sid": "sess_x", "o": {"id": "org_own", "rol": "admin"}, "v": 2}', true) IS NOT NULL AS signed_in;
SELECT app_role(), has_permission('orders:read') AS orders_read;
SELECT count(*) AS others_orders FROM orders WHERE user_id = 'user_srvictim';
SELECT count(*) AS audit_rows FROM audit_log;
WITH u AS (UPDATE orders SET payment_status = 'paid' WHERE order_id = 9602 RETURNING 1) SELECT count(*) AS paid_own FROM u;
WITH u AS (UPDATE products SET price = 0.01 WHERE product_id = 9601 RETURNING 1) SELECT count(*) AS prices_set FROM u;
SELECT regress.error_of($$INSERT INTO coupons (code, discount_type, discount_value) VALUES ('SR100', 'percentage', 100)$$) AS add_coupon;
SELECT regress.error_of($$UPDATE product_reviews SET is_approved = true WHERE user_id = 'user_x'$$) AS approve_own;
SELECT regress.error_of($$SELECT erase_clerk_user('user_srvictim')$$) AS erase_other;
-- Its own organization's rows stay its own (B2B projects).
INSERT INTO projects (name) VALUES ('Own org project');
SELECT org_id, name FROM projects;
ROLLBACK;

-- Only the owner reads or sets the staff organization.
BEGIN;
SELECT regress.act_as('{"sub": "user_x", "metadata": {"role": "admin"}}');
SELECT regress.error_of($$SELECT * FROM shop_settings$$) AS read_settings,
       regress.error_of($$UPDATE shop_settings SET staff_org_id = 'org_own'$$) AS set_staff_org;
ROLLBACK;
BEGIN;
SET LOCAL ROLE anon;
SELECT regress.error_of($$SELECT * FROM shop_settings$$) AS anon_read_settings;
ROLLBACK;

-- No staff organization configured: no organization makes staff.
BEGIN;
UPDATE shop_settings SET staff_org_id = NULL;
SELECT regress.act_as('{"sub": "user_x", "org_id": "org_shop", "org_role": "org:admin"}');
SELECT app_role(), has_permission('orders:read') AS orders_read;
ROLLBACK;

DELETE FROM product_reviews WHERE product_id = 9601;
DELETE FROM orders WHERE order_id IN (9601, 9602);
DELETE FROM products WHERE product_id = 9601;
DROP FUNCTION regress.staff_attacks(text);
