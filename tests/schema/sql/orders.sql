-- place_order(): the caller's cart becomes an order, all or nothing.

INSERT INTO products (name, slug, sku, price, stock_quantity) VALUES
    ('Mug', 'po-mug', 'PO-MUG', 12.50, 10),
    ('Beans', 'po-beans', 'PO-BEANS', 8.00, 3);

BEGIN;
SELECT regress.act_as('{"sub": "user_p1"}');
INSERT INTO cart (product_id, quantity) VALUES ((SELECT product_id FROM products WHERE slug = 'po-mug'), 2);
INSERT INTO cart (product_id, quantity, selected_attributes)
    VALUES ((SELECT product_id FROM products WHERE slug = 'po-beans'), 1, '{"grind": "espresso"}');
SELECT order_number LIKE 'ORD-%' AS numbered, status, payment_status, subtotal, total_amount
  FROM place_order('Pat One', 'pat@example.com', '{"city": "Lyon"}');
-- Lines snapshot name, sku and price; the cart is empty.
SELECT product_name, product_sku, selected_attributes, quantity, unit_price, total_price
  FROM order_items ORDER BY order_item_id;
SELECT count(*) AS cart_lines FROM cart;
COMMIT;
SELECT slug, stock_quantity FROM products WHERE slug LIKE 'po-%' ORDER BY slug;

-- A price change later does not change the order.
UPDATE products SET price = 99 WHERE slug = 'po-mug';
SELECT DISTINCT unit_price FROM order_items WHERE product_sku = 'PO-MUG';

-- Not enough stock: a clear error, and nothing changed.
BEGIN;
SELECT regress.act_as('{"sub": "user_p2"}');
INSERT INTO cart (product_id, quantity) VALUES ((SELECT product_id FROM products WHERE slug = 'po-mug'), 1);
INSERT INTO cart (product_id, quantity) VALUES ((SELECT product_id FROM products WHERE slug = 'po-beans'), 5);
SELECT regress.error_of($$SELECT place_order('Pat Two', 'two@example.com', '{}')$$);
SELECT count(*) AS cart_lines_kept FROM cart;
SELECT count(*) AS my_orders FROM orders;
DELETE FROM cart;
SELECT regress.error_of($$SELECT place_order('Pat Two', 'two@example.com', '{}')$$) AS empty_cart;
COMMIT;
SELECT slug, stock_quantity FROM products WHERE slug LIKE 'po-%' ORDER BY slug;

-- Orders and their lines are private: user_p2 sees none of user_p1's.
BEGIN;
SELECT regress.act_as('{"sub": "user_p2"}');
SELECT count(*) AS orders_seen, (SELECT count(*) FROM order_items) AS lines_seen FROM orders;
-- ... and cannot change an order's payment status (only orders:write may).
WITH u AS (UPDATE orders SET payment_status = 'paid' RETURNING 1) SELECT count(*) AS updated FROM u;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_p1"}');
WITH u AS (UPDATE orders SET payment_status = 'paid' RETURNING 1) SELECT count(*) AS own_order_updated FROM u;
SELECT regress.error_of($$INSERT INTO orders (billing_name, billing_email, billing_address, subtotal, total_amount) VALUES ('x', 'x', '{}', 0, 0)$$) AS direct_insert;
ROLLBACK;
-- Staff: employees read all orders; admins may also change them.
BEGIN;
SELECT regress.act_as('{"sub": "user_emp", "org_id": "org_shop", "org_role": "org:employee"}');
SELECT count(*) > 0 AS employee_sees_orders FROM orders WHERE user_id = 'user_p1';
WITH u AS (UPDATE orders SET status = 'confirmed' WHERE user_id = 'user_p1' RETURNING 1) SELECT count(*) AS employee_updated FROM u;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_adm", "metadata": {"role": "admin"}}');
WITH u AS (UPDATE orders SET status = 'confirmed' WHERE user_id = 'user_p1' RETURNING 1) SELECT count(*) AS admin_updated FROM u;
ROLLBACK;

-- The catalogue: anyone reads active products; only products:write writes.
BEGIN;
SET LOCAL ROLE anon;
SELECT count(*) > 0 AS anon_reads_catalogue FROM products;
SELECT regress.error_of($$UPDATE products SET price = 0$$) AS anon_write;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_p1"}');
WITH u AS (UPDATE products SET price = 0 RETURNING 1) SELECT count(*) AS customer_updated FROM u;
SELECT regress.error_of($$INSERT INTO products (name, slug, price) VALUES ('Fake', 'fake', 1)$$) AS customer_insert;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_mgr", "org_id": "org_shop", "org_role": "org:manager"}');
WITH u AS (UPDATE products SET price = price WHERE slug LIKE 'po-%' RETURNING 1) SELECT count(*) AS manager_updated FROM u;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_x", "permissions": ["products:write"]}');
WITH u AS (UPDATE products SET price = price WHERE slug LIKE 'po-%' RETURNING 1) SELECT count(*) AS token_permission_updated FROM u;
ROLLBACK;

-- Carts are bounded. The attack: distinct selected_attributes make new
-- lines (288k lines in 24 POSTs), and each place_order then locked and
-- copied all of them, holding a pooled connection for seconds. A cart
-- holds at most shop_settings.max_cart_lines lines (100), a variant at
-- most 2 kB of JSON.
BEGIN;
SELECT regress.act_as('{"sub": "user_p3"}');
SELECT product_id AS mug FROM products WHERE slug = 'po-mug' \gset
INSERT INTO cart (product_id, selected_attributes) SELECT :mug, jsonb_build_object('n', g) FROM generate_series(1, 100) g;
SELECT regress.error_of(format($$INSERT INTO cart (product_id, selected_attributes) VALUES (%s, '{"n": 101}')$$, :mug)) AS line_101,
       regress.error_of(format($$INSERT INTO cart (product_id, selected_attributes)
                                 SELECT %s, jsonb_build_object('m', g) FROM generate_series(1, 1000) g$$, :mug)) AS bulk;
-- Upserting a line the cart already has is no new line; removing one makes room.
INSERT INTO cart (product_id, quantity, selected_attributes) VALUES (:mug, 3, '{"n": 1}')
    ON CONFLICT (user_id, product_id, selected_attributes) DO UPDATE SET quantity = EXCLUDED.quantity;
DELETE FROM cart WHERE selected_attributes = '{"n": 100}';
INSERT INTO cart (product_id, selected_attributes) VALUES (:mug, '{"n": 101}');
SELECT count(*) AS cart_lines, sum(quantity) AS items FROM cart;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_p3"}');
SELECT regress.error_of(format($$INSERT INTO cart (product_id, selected_attributes) VALUES (%s, %L)$$,
                               :mug, jsonb_build_object('note', repeat('x', 2000)))) AS variant_2kb,
       regress.error_of(format($$INSERT INTO cart (product_id, selected_attributes) VALUES (%s, %L)$$,
                               :mug, jsonb_build_object('note', repeat('x', 2100)))) AS variant_over_2kb,
       regress.error_of($$UPDATE cart SET selected_attributes = jsonb_build_object('note', repeat('y', 5000))$$) AS grow_variant;
ROLLBACK;
-- The API roles wait at most 2 s for a lock (the proxy applies a role's
-- settings to each request), so requests queued behind another's
-- FOR UPDATE give up instead of holding connections until statement_timeout.
SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
 WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND r.rolname IN ('anon', 'authenticated', 'clerk_staff') ORDER BY r.rolname;
