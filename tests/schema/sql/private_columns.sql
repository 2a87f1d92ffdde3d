-- Data anonymous callers and customers should not read (issue 15,
-- finding 5): products.cost_price (the shop's margin), and who wrote a
-- public review (the reviewer's Clerk user id and order id).

INSERT INTO products (product_id, name, slug, price, cost_price, stock_quantity) VALUES
    (9671, 'Margin mug', 'pc-mug', 20, 6.50, 10), (9672, 'Margin cup', 'pc-cup', 8, 2.10, 10);
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status) VALUES
    (9671, 'user_pc1', 'P', 'p@example.com', '{}', 20, 20, 'delivered', 'paid');
INSERT INTO order_items (order_id, product_id, product_name, quantity, unit_price, total_price) VALUES (9671, 9671, 'Margin mug', 1, 20, 20);
INSERT INTO product_reviews (product_id, user_id, order_id, rating, title, is_verified_purchase, is_approved) VALUES
    (9671, 'user_pc1', 9671, 5, 'Approved one', true, true),
    (9672, 'user_pc1', NULL, 2, 'Waiting for moderation', false, false);

-- cost_price: refused to anonymous callers and customers, also through `*`;
-- the other columns are read as before.
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true) IS NOT NULL AS anonymous;
SELECT regress.error_of($$SELECT cost_price FROM products WHERE product_id = 9671$$) AS cost_price,
       regress.error_of($$SELECT * FROM products WHERE product_id = 9671$$) AS star;
SELECT product_id, name, price, stock_quantity, is_active FROM products WHERE product_id IN (9671, 9672) ORDER BY product_id;
SELECT regress.error_of($$SELECT * FROM product_costs$$) AS product_costs;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_pc2"}');
SELECT regress.error_of($$SELECT cost_price FROM products WHERE product_id = 9671$$) AS cost_price,
       regress.error_of($$SELECT p.product_id FROM products p WHERE p.cost_price < 7$$) AS filter_on_cost;
SELECT count(*) AS costs_seen FROM product_costs;
ROLLBACK;
-- Staff with products:write read costs through product_costs, and still
-- set them.
BEGIN;
SELECT regress.act_as('{"sub": "user_pcstaff", "metadata": {"role": "manager"}}');
SELECT product_id, sku, price, cost_price FROM product_costs WHERE product_id IN (9671, 9672) ORDER BY product_id;
WITH u AS (UPDATE products SET cost_price = 7.00 WHERE product_id = 9671 RETURNING product_id, price) SELECT count(*) AS cost_updated FROM u;
SELECT cost_price FROM product_costs WHERE product_id = 9671;
SELECT regress.error_of($$SELECT cost_price FROM products WHERE product_id = 9671$$) AS direct_read;
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
