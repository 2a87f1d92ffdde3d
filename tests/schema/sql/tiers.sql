-- Customer tiers: Bronze < 100 <= Silver < 500 <= Gold < 1000 <= VIP,
-- from paid orders that were not cancelled or refunded.

SELECT spent, clerk_customer_tier(spent) AS tier
  FROM unnest(ARRAY[0, 99.99, 100, 499.99, 500, 999.99, 1000, 25000]::numeric[]) spent;
SELECT clerk_customer_tier(150, 50, 200, 300) AS custom_thresholds;
SELECT regress.error_of($$SELECT clerk_customer_tier(10, 500, 100, 1000)$$) AS bad_thresholds;

-- user_t1 has paid 999.99, plus orders that must not count.
INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status) VALUES
    ('user_t1', 'T', 't@example.com', '{}', 900, 900, 'delivered', 'paid'),
    ('user_t1', 'T', 't@example.com', '{}', 99.99, 99.99, 'shipped', 'paid'),
    ('user_t1', 'T', 't@example.com', '{}', 500, 500, 'pending', 'pending'),
    ('user_t1', 'T', 't@example.com', '{}', 700, 700, 'cancelled', 'paid'),
    ('user_t1', 'T', 't@example.com', '{}', 800, 800, 'refunded', 'paid');

BEGIN;
SELECT regress.act_as('{"sub": "user_t1"}');
SELECT customer_tier() AS my_tier;
-- A customer cannot read someone else's tier.
SELECT regress.error_of($$SELECT customer_tier_of('user_t2')$$);
ROLLBACK;

-- One more cent of paid orders makes VIP.
INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status)
VALUES ('user_t1', 'T', 't@example.com', '{}', 0.01, 0.01, 'confirmed', 'paid');
BEGIN;
SELECT regress.act_as('{"sub": "user_t1"}');
SELECT customer_tier() AS my_tier;
ROLLBACK;

-- Staff with orders:read (here an org manager) may read anyone's.
BEGIN;
SELECT regress.act_as('{"sub": "user_staff", "org_id": "org_shop", "org_role": "org:manager"}');
SELECT customer_tier_of('user_t1') AS t1, customer_tier_of('user_nobody') AS nobody;
ROLLBACK;

BEGIN;
SET LOCAL ROLE authenticated;
SELECT regress.error_of($$SELECT customer_tier()$$) AS anonymous;
ROLLBACK;
DELETE FROM orders WHERE user_id = 'user_t1';
