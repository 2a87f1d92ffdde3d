-- Coupons: the discount rule, then redeem_coupon() and each refusal.

-- The rule (pg_clerk): percentage rounded to cents and capped; fixed never
-- above the subtotal; never negative.
SELECT clerk_coupon_discount('percentage', 10, 199.99) AS ten_percent,
       clerk_coupon_discount('percentage', 10, 500, 20) AS capped_at_20,
       clerk_coupon_discount('fixed_amount', 15, 9.99) AS fixed_above_subtotal,
       clerk_coupon_discount('fixed_amount', 5, 0) AS zero_subtotal,
       clerk_coupon_discount('percentage', 100, 42.42) AS everything;
SELECT regress.error_of($$SELECT clerk_coupon_discount('bogo', 1, 10)$$) AS unknown_type,
       regress.error_of($$SELECT clerk_coupon_discount('fixed_amount', -5, 10)$$) AS negative;

INSERT INTO coupons (code, discount_type, discount_value, minimum_amount, maximum_discount, usage_limit, used_count, is_active, starts_at, expires_at) VALUES
    ('TENOFF', 'percentage', 10, 50, 20, 5, 0, true, NULL, NULL),
    ('FIVE', 'fixed_amount', 5, 0, NULL, NULL, 0, true, NULL, NULL),
    ('SPRING', 'percentage', 15, 0, NULL, NULL, 0, true, '2026-03-01', '2026-04-30 23:00+00'),
    ('FUTURE', 'fixed_amount', 5, 0, NULL, NULL, 0, true, '2099-01-01', NULL),
    ('OFF', 'fixed_amount', 5, 0, NULL, NULL, 0, false, NULL, NULL),
    ('GONE', 'fixed_amount', 5, 0, NULL, 2, 2, true, NULL, NULL);

SELECT setval('order_number_seq', 9000);  -- so the numbers in messages below are fixed
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, tax_amount, shipping_cost, total_amount, status, created_at) VALUES
    (9001, 'user_k1', 'K', 'k@example.com', '{}', 300.00, 10.00, 5.00, 315.00, 'pending', '2026-05-01'),
    (9002, 'user_k1', 'K', 'k@example.com', '{}', 30.00, 0, 0, 30.00, 'pending', '2026-05-01'),
    (9003, 'user_k1', 'K', 'k@example.com', '{}', 80.00, 0, 0, 80.00, 'shipped', '2026-05-01'),
    (9004, 'user_k2', 'L', 'l@example.com', '{}', 80.00, 0, 0, 80.00, 'pending', '2026-05-01'),
    (9005, 'user_k1', 'K', 'k@example.com', '{}', 80.00, 0, 0, 80.00, 'pending', '2026-05-01');

-- Every refusal below is one failed attempt; more than the per-user limit
-- of failed attempts (tested in hardening.sql).
UPDATE shop_settings SET coupon_failure_limit = 100;
BEGIN;
SELECT regress.act_as('{"sub": "user_k1"}');
-- Success: 10% of 300 capped at 20; total = subtotal - discount + tax + shipping.
SELECT order_number IS NOT NULL AS has_number, subtotal, discount_amount, total_amount FROM redeem_coupon(' tenoff ', 9001);
SELECT discount_applied FROM coupon_usage WHERE order_id = 9001;
-- Each refusal: its own SQLSTATE (PostgREST's PT<status>) and code in DETAIL.
SELECT name, regress.error_of(format('SELECT redeem_coupon(%L, %s)', code, order_id)) AS result
  FROM (VALUES ('unknown code', 'NOPE', 9005), ('empty code', '  ', 9005),
               ('inactive', 'OFF', 9005), ('expired', 'SPRING', 9005), ('not started', 'FUTURE', 9005),
               ('minimum not met', 'TENOFF', 9002), ('used up', 'GONE', 9005),
               ('already used by me', 'TENOFF', 9005), ('order has a coupon', 'FIVE', 9001),
               ('order not pending', 'FIVE', 9003), ('someone else''s order', 'FIVE', 9004),
               ('no such order', 'FIVE', 424242)) t(name, code, order_id);
COMMIT;

SELECT code, used_count FROM coupons WHERE code IN ('TENOFF', 'FIVE', 'GONE') ORDER BY code;

BEGIN;
SET LOCAL ROLE authenticated;
SELECT regress.error_of($$SELECT redeem_coupon('FIVE', 9005)$$) AS anonymous;
ROLLBACK;

-- Customers cannot list coupon codes; they can see their own usage.
BEGIN;
SELECT regress.act_as('{"sub": "user_k1"}');
SELECT count(*) AS coupons_visible FROM coupons;
SELECT count(*) AS my_usages FROM coupon_usage;
ROLLBACK;

UPDATE shop_settings SET coupon_failure_limit = DEFAULT;
DELETE FROM coupon_redemption_failures WHERE user_id = 'user_k1';
DELETE FROM orders WHERE order_id BETWEEN 9001 AND 9005;
DELETE FROM coupons WHERE code IN ('TENOFF', 'FIVE', 'SPRING', 'FUTURE', 'OFF', 'GONE');
