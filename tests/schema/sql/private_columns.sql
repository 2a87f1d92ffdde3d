-- Data anonymous callers and customers should not read (issue 15,
-- finding 10): what products cost the shop (its margin, product_costs),
-- and who wrote a public review (the reviewer's Clerk user id and order id).

INSERT INTO products (product_id, name, slug, price, stock_quantity) VALUES
    (9671, 'Margin mug', 'pc-mug', 20, 10), (9672, 'Margin cup', 'pc-cup', 8, 10);
INSERT INTO product_costs (product_id, cost_price) VALUES (9671, 6.50), (9672, 2.10);
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status) VALUES
    (9671, 'user_pc1', 'P', 'p@example.com', '{}', 20, 20, 'delivered', 'paid');
INSERT INTO order_items (order_id, product_id, product_name, quantity, unit_price, total_price) VALUES (9671, 9671, 'Margin mug', 1, 20, 20);
INSERT INTO product_reviews (product_id, user_id, order_id, rating, title, is_verified_purchase, is_approved) VALUES
    (9671, 'user_pc1', 9671, 5, 'Approved one', true, true),
    (9672, 'user_pc1', NULL, 2, 'Waiting for moderation', false, false);

-- Costs: no privilege for anonymous callers; products has no cost column,
-- so `*` reads the catalogue as before.
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true) IS NOT NULL AS anonymous;
SELECT regress.error_of($$SELECT cost_price FROM products WHERE product_id = 9671$$) AS cost_price,
       regress.error_of($$SELECT * FROM product_costs$$) AS product_costs;
SELECT product_id, name, price, stock_quantity, is_active FROM products WHERE product_id IN (9671, 9672) ORDER BY product_id;
SELECT count(*) AS star_columns FROM (SELECT * FROM products WHERE product_id = 9671) p;
ROLLBACK;
-- A customer: no cost rows, and none written.
BEGIN;
SELECT regress.act_as('{"sub": "user_pc2"}');
SELECT count(*) AS costs_seen FROM product_costs;
SELECT regress.error_of($$INSERT INTO product_costs (product_id, cost_price) VALUES (9671, 0)$$) AS insert_cost;
WITH u AS (UPDATE product_costs SET cost_price = 0 RETURNING 1) SELECT count(*) AS costs_updated FROM u;
WITH d AS (DELETE FROM product_costs RETURNING 1) SELECT count(*) AS costs_deleted FROM d;
ROLLBACK;
-- A customer who is admin of an organization of their own: still none.
BEGIN;
SELECT regress.act_as('{"sub": "user_pc2", "o": {"id": "org_2pcOwn", "rol": "admin"}, "v": 2}');
SELECT count(*) AS costs_seen_as_org_admin FROM product_costs;
ROLLBACK;
-- Staff with products:write read and set costs.
BEGIN;
SELECT regress.act_as('{"sub": "user_pcstaff", "metadata": {"role": "manager"}}');
SELECT p.product_id, p.sku, p.price, c.cost_price FROM products p JOIN product_costs c USING (product_id)
 WHERE product_id IN (9671, 9672) ORDER BY product_id;
WITH u AS (UPDATE product_costs SET cost_price = 7.00 WHERE product_id = 9671 RETURNING product_id) SELECT count(*) AS cost_updated FROM u;
SELECT cost_price FROM product_costs WHERE product_id = 9671;
ROLLBACK;

-- Reviews: the public sees approved ones without user_id and order_id.
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true) IS NOT NULL AS anonymous;
SELECT regress.error_of($$SELECT user_id, order_id FROM product_reviews$$) AS reviews_table;
SELECT review_id > 0 AS has_id, product_id, rating, title, is_verified_purchase FROM public_reviews WHERE product_id IN (9671, 9672);
SELECT regress.error_of($$SELECT user_id FROM public_reviews$$) AS user_id,
       regress.error_of($$SELECT order_id FROM public_reviews$$) AS order_id;
ROLLBACK;
SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'public_reviews' ORDER BY ordinal_position;
-- Another customer: the same public view; none of user_pc1's rows in the table.
BEGIN;
SELECT regress.act_as('{"sub": "user_pc2"}');
SELECT count(*) AS others_rows FROM product_reviews WHERE product_id IN (9671, 9672);
SELECT product_id, title FROM public_reviews WHERE product_id IN (9671, 9672);
ROLLBACK;
-- The author sees their own rows, approved or not, with their ids.
BEGIN;
SELECT regress.act_as('{"sub": "user_pc1"}');
SELECT user_id, order_id, product_id, title, is_approved FROM product_reviews WHERE product_id IN (9671, 9672) ORDER BY product_id;
ROLLBACK;
-- Moderators (reviews:moderate) see every review.
BEGIN;
SELECT regress.act_as('{"sub": "user_pcstaff", "metadata": {"role": "manager"}}');
SELECT user_id, product_id, is_approved FROM product_reviews WHERE product_id IN (9671, 9672) ORDER BY product_id;
ROLLBACK;

DELETE FROM orders WHERE order_id = 9671;
DELETE FROM products WHERE product_id IN (9671, 9672);
