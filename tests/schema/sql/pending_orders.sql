-- Pending orders do not hold stock for ever (issue 15, finding 3): a
-- customer put all the stock in the cart, called place_order and never
-- paid; the stock stayed at 0. cancel_order() lets the customer release
-- their own pending, unpaid order; expire_pending_orders() (a scheduler's,
-- also run by place_order) releases those older than the configured time.

INSERT INTO products (product_id, name, slug, price, stock_quantity) VALUES
    (9661, 'Hoard mug', 'ho-mug', 10, 5), (9662, 'Hoard cup', 'ho-cup', 4, 3);
INSERT INTO coupons (code, discount_type, discount_value, usage_limit) VALUES ('HOARD1', 'fixed_amount', 2, 1);

-- The attack: user_h1 takes all the stock and a coupon that can be used once.
BEGIN;
SELECT regress.act_as('{"sub": "user_h1"}');
INSERT INTO cart (product_id, quantity) VALUES (9661, 5), (9662, 1);
SELECT order_id AS h1_order FROM place_order('H One', 'h1@example.com', '{}') \gset
SELECT status, subtotal, total_amount FROM redeem_coupon('HOARD1', :h1_order);
COMMIT;
SELECT product_id, stock_quantity FROM products WHERE product_id IN (9661, 9662) ORDER BY product_id;
SELECT used_count FROM coupons WHERE code = 'HOARD1';

-- Another customer cannot cancel it: the same answer as for an order that
-- does not exist (numbers replaced by #). Nor can anonymous callers.
BEGIN;
SELECT regress.act_as('{"sub": "user_h2"}');
SELECT regexp_replace(regress.error_of(format('SELECT cancel_order(%s)', :h1_order)), 'order [0-9]+', 'order #') AS someone_elses,
       regexp_replace(regress.error_of($$SELECT cancel_order(424242)$$), 'order [0-9]+', 'order #') AS no_such_order;
ROLLBACK;
BEGIN;
SET LOCAL ROLE anon;
SELECT regress.error_of(format('SELECT cancel_order(%s)', :h1_order)) AS anonymous;
ROLLBACK;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT regress.error_of(format('SELECT cancel_order(%s)', :h1_order)) AS no_user;
ROLLBACK;
SELECT status, (SELECT stock_quantity FROM products WHERE product_id = 9661) AS stock FROM orders WHERE order_id = :h1_order;

-- The owner cancels: stock and the coupon use come back; twice is refused.
BEGIN;
SELECT regress.act_as('{"sub": "user_h1"}');
SELECT status, payment_status FROM cancel_order(:h1_order);
SELECT regexp_replace(regress.error_of(format('SELECT cancel_order(%s)', :h1_order)), 'ORD-[0-9-]+', 'ORD-#', 'g') AS cancel_again;
COMMIT;
SELECT product_id, stock_quantity FROM products WHERE product_id IN (9661, 9662) ORDER BY product_id;
SELECT used_count, (SELECT count(*) FROM coupon_usage u WHERE u.order_id = :h1_order) AS usages FROM coupons WHERE code = 'HOARD1';

-- A paid order is not cancelled this way (that is a refund).
BEGIN;
SELECT regress.act_as('{"sub": "user_h1"}');
INSERT INTO cart (product_id, quantity) VALUES (9662, 1);
SELECT order_id AS paid_order FROM place_order('H One', 'h1@example.com', '{}') \gset
COMMIT;
UPDATE orders SET payment_status = 'paid' WHERE order_id = :paid_order;
BEGIN;
SELECT regress.act_as('{"sub": "user_h1"}');
SELECT regexp_replace(regress.error_of(format('SELECT cancel_order(%s)', :paid_order)), 'ORD-[0-9-]+', 'ORD-#', 'g') AS cancel_paid;
ROLLBACK;
-- Staff with orders:write may cancel anyone's pending, unpaid order.
UPDATE orders SET payment_status = 'failed' WHERE order_id = :paid_order;
BEGIN;
SELECT regress.act_as('{"sub": "user_hstaff", "metadata": {"role": "admin"}}');
SELECT status FROM cancel_order(:paid_order);
ROLLBACK;

-- Expiry: pending, unpaid orders older than the limit are released; recent,
-- paid or shipped ones are not.
BEGIN;
SELECT regress.act_as('{"sub": "user_h3"}');
INSERT INTO cart (product_id, quantity) VALUES (9661, 2);
SELECT order_id AS old_order FROM place_order('H Three', 'h3@example.com', '{}') \gset
INSERT INTO cart (product_id, quantity) VALUES (9661, 1);
SELECT order_id AS recent_order FROM place_order('H Three', 'h3@example.com', '{}') \gset
COMMIT;
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status, created_at) VALUES
    (9663, 'user_h3', 'H', 'h@example.com', '{}', 1, 1, 'pending', 'paid', now() - interval '3 hours'),
    (9664, 'user_h3', 'H', 'h@example.com', '{}', 1, 1, 'shipped', 'pending', now() - interval '3 hours');
UPDATE orders SET created_at = now() - interval '2 hours' WHERE order_id = :old_order;
SELECT stock_quantity AS stock_before FROM products WHERE product_id = 9661;
-- Not for API callers.
BEGIN;
SELECT regress.act_as('{"sub": "user_h3", "metadata": {"role": "admin"}}');
SELECT regress.error_of($$SELECT expire_pending_orders(interval '1 hour')$$) AS as_admin_user;
ROLLBACK;
BEGIN;
SET LOCAL ROLE anon;
SELECT regress.error_of($$SELECT expire_pending_orders()$$) AS as_anon;
ROLLBACK;
-- The scheduler (here the owner; clerk_sync may too).
BEGIN;
SET LOCAL ROLE clerk_sync;
SELECT expire_pending_orders(interval '1 hour') AS expired;
COMMIT;
SELECT order_id = :old_order AS is_old, status FROM orders WHERE user_id = 'user_h3' ORDER BY order_id;
SELECT stock_quantity AS stock_after FROM products WHERE product_id = 9661;
-- The default limit is shop_settings.pending_order_ttl.
UPDATE orders SET created_at = now() - interval '20 minutes' WHERE order_id = :recent_order;
SELECT expire_pending_orders() AS expired_at_30_minutes;
UPDATE shop_settings SET pending_order_ttl = interval '10 minutes';
SELECT expire_pending_orders() AS expired_at_10_minutes;
UPDATE shop_settings SET pending_order_ttl = DEFAULT;

-- place_order releases expired orders first: user_h4 hoards all the mugs
-- and never pays; an hour later user_h5 can buy them.
BEGIN;
SELECT regress.act_as('{"sub": "user_h4"}');
INSERT INTO cart (product_id, quantity) SELECT 9661, stock_quantity FROM products WHERE product_id = 9661;
SELECT order_id AS hoard FROM place_order('H Four', 'h4@example.com', '{}') \gset
COMMIT;
BEGIN;
SELECT regress.act_as('{"sub": "user_h5"}');
INSERT INTO cart (product_id, quantity) VALUES (9661, 2);
SELECT regress.error_of($$SELECT place_order('H Five', 'h5@example.com', '{}')$$) AS while_hoarded;
ROLLBACK;
UPDATE orders SET created_at = now() - interval '1 hour' WHERE order_id = :hoard;
BEGIN;
SELECT regress.act_as('{"sub": "user_h5"}');
INSERT INTO cart (product_id, quantity) VALUES (9661, 2);
SELECT status FROM place_order('H Five', 'h5@example.com', '{}');
COMMIT;
SELECT status AS hoard_status FROM orders WHERE order_id = :hoard;
SELECT stock_quantity FROM products WHERE product_id = 9661;

-- One customer holds at most shop_settings.max_pending_orders unpaid
-- orders (3): the fourth is refused until one is paid or cancelled.
BEGIN;
SELECT regress.act_as('{"sub": "user_h6"}');
INSERT INTO cart (product_id, quantity) VALUES (9661, 1);
SELECT status FROM place_order('H Six', 'h6@example.com', '{}');
INSERT INTO cart (product_id, quantity) VALUES (9661, 1);
SELECT status FROM place_order('H Six', 'h6@example.com', '{}');
INSERT INTO cart (product_id, quantity) VALUES (9661, 1);
SELECT order_id AS third FROM place_order('H Six', 'h6@example.com', '{}') \gset
INSERT INTO cart (product_id, quantity) VALUES (9661, 1);
SELECT regress.error_of($$SELECT place_order('H Six', 'h6@example.com', '{}')$$) AS fourth;
SELECT status FROM cancel_order(:third);
SELECT status FROM place_order('H Six', 'h6@example.com', '{}');
ROLLBACK;

DELETE FROM orders WHERE user_id IN ('user_h1', 'user_h3', 'user_h4', 'user_h5');
DELETE FROM coupons WHERE code = 'HOARD1';
DELETE FROM products WHERE product_id IN (9661, 9662);
